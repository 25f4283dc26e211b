/* curl_uv.c — libcurl multi ↔ libuv glue (see curl_uv.h). */
#include "curl_uv.h"

#include <stdlib.h>

typedef struct sock_ctx {
    uv_poll_t poll; /* first: the handle's address is the context's */
    curl_socket_t fd;
    ag_curl_uv *cu;
    struct sock_ctx *prev, *next;
} sock_ctx;

struct ag_curl_uv {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer; /* CURLMOPT_TIMERFUNCTION */
    sock_ctx *socks;
    int handles_open; /* loop handles not yet closed */
    int closing;
    ag_curl_uv_done_fn done;
    ag_curl_uv_closed_fn closed;
    void *ud;
};

static void handle_closed(uv_handle_t *h)
{
    ag_curl_uv *cu = h->data;
    if (h->type == UV_POLL) {
        sock_ctx *c = (sock_ctx *)h;
        if (c->prev)
            c->prev->next = c->next;
        else
            cu->socks = c->next;
        if (c->next) c->next->prev = c->prev;
        free(c);
    }
    if (--cu->handles_open == 0 && cu->closing) {
        ag_curl_uv_closed_fn closed = cu->closed;
        void *ud = cu->ud;
        free(cu);
        if (closed) closed(ud);
    }
}

/* Hand every finished transfer to the owner. */
static void check_multi_info(ag_curl_uv *cu)
{
    CURLMsg *m;
    int left;
    while (!cu->closing && (m = curl_multi_info_read(cu->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL *easy = m->easy_handle;
        CURLcode res = m->data.result;
        curl_multi_remove_handle(cu->multi, easy);
        cu->done(cu->ud, easy, res);
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_ctx *c = (sock_ctx *)p;
    ag_curl_uv *cu = c->cu;
    if (cu->closing) return;
    int flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (!status && (events & UV_READABLE)) flags |= CURL_CSELECT_IN;
    if (!status && (events & UV_WRITABLE)) flags |= CURL_CSELECT_OUT;
    int running = 0;
    curl_multi_socket_action(cu->multi, c->fd, flags, &running);
    check_multi_info(cu);
}

static void on_timer(uv_timer_t *t)
{
    ag_curl_uv *cu = t->data;
    if (cu->closing) return;
    int running = 0;
    curl_multi_socket_action(cu->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(cu);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    ag_curl_uv *cu = userp;
    if (cu->closing) return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&cu->timer);
    else
        uv_timer_start(&cu->timer, on_timer, timeout_ms ? (uint64_t)timeout_ms : 1, 0);
    return 0;
}

static void close_sock(sock_ctx *c)
{
    if (uv_is_closing((uv_handle_t *)&c->poll)) return;
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, handle_closed);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    ag_curl_uv *cu = userp;
    sock_ctx *c = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (c) close_sock(c);
        return 0;
    }
    if (cu->closing) return -1;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) return -1;
        if (uv_poll_init_socket(cu->loop, &c->poll, s) != 0) {
            free(c);
            return -1;
        }
        c->fd = s;
        c->cu = cu;
        c->poll.data = cu;
        c->next = cu->socks;
        if (cu->socks) cu->socks->prev = c;
        cu->socks = c;
        cu->handles_open++;
        curl_multi_assign(cu->multi, s, c);
    }
    int ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev |= UV_WRITABLE;
    uv_poll_start(&c->poll, ev, on_poll);
    return 0;
}

ag_curl_uv *ag_curl_uv_new(uv_loop_t *loop, ag_curl_uv_done_fn done, void *ud)
{
    if (!loop || !done) return NULL;
    ag_curl_uv *cu = calloc(1, sizeof *cu);
    if (!cu) return NULL;
    cu->multi = curl_multi_init();
    if (!cu->multi) {
        free(cu);
        return NULL;
    }
    cu->loop = loop;
    cu->done = done;
    cu->ud = ud;
    curl_multi_setopt(cu->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(cu->multi, CURLMOPT_SOCKETDATA, cu);
    curl_multi_setopt(cu->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(cu->multi, CURLMOPT_TIMERDATA, cu);
    uv_timer_init(loop, &cu->timer); /* cannot fail on Linux */
    cu->timer.data = cu;
    cu->handles_open = 1;
    return cu;
}

CURLMcode ag_curl_uv_add(ag_curl_uv *cu, CURL *easy)
{
    if (!cu || cu->closing) return CURLM_BAD_HANDLE;
    return curl_multi_add_handle(cu->multi, easy);
}

void ag_curl_uv_remove(ag_curl_uv *cu, CURL *easy)
{
    if (cu && cu->multi && easy) curl_multi_remove_handle(cu->multi, easy);
}

void ag_curl_uv_close(ag_curl_uv *cu, ag_curl_uv_closed_fn closed)
{
    if (!cu || cu->closing) return;
    cu->closing = 1;
    cu->closed = closed;
    curl_multi_cleanup(cu->multi); /* may still call socket_cb with CURL_POLL_REMOVE */
    cu->multi = NULL;
    for (sock_ctx *c = cu->socks; c; c = c->next)
        close_sock(c);
    uv_timer_stop(&cu->timer);
    uv_close((uv_handle_t *)&cu->timer, handle_closed);
}

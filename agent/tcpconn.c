/* tcpconn.c — one TCP client connection on the libuv loop (see tcpconn.h). */
#include "tcpconn.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MS 2000

/* What the close callback reports once the socket is gone. */
typedef enum { WHY_NONE, WHY_CONNECT, WHY_LOST, WHY_ASKED } close_why;

struct ag_tcpconn {
    uv_loop_t *loop;
    ag_tcpconn_ops ops;
    void *ud;
    char *host;
    int port;
    int64_t connect_ms;

    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_getaddrinfo_t gai;
    uv_timer_t timer;   /* the connect timeout while connecting, else the owner's wait */
    uv_timer_t defer_h; /* on_deferred */
    int tcp_open;       /* tcp initialised and its close callback not yet run */
    int connecting, connected, gai_pending, gai_cancelled, freeing, refs;
    int fail_err,
        fail_resolving; /* an error found before any socket existed, reported from the timer */

    close_why why; /* reported by the close callback */
    int why_err;
    ag_tcp_lost why_how;

    struct sockaddr_storage addr;
    char rbuf[4096];
};

typedef struct wreq {
    uv_write_t req;
    char buf[];
} wreq;

static void unref(ag_tcpconn *c)
{
    if (--c->refs == 0) {
        free(c->host);
        free(c);
    }
}

static void on_handle_freed(uv_handle_t *h)
{
    unref(h->data);
}

/* ---- closing ------------------------------------------------------------------------ */

static void on_tcp_closed(uv_handle_t *h)
{
    ag_tcpconn *c = h->data;
    c->tcp_open = 0;
    c->connected = 0;
    c->connecting = 0;
    if (c->freeing) {
        unref(c);
        return;
    }
    close_why why = c->why;
    c->why = WHY_NONE;
    switch (why) {
    case WHY_CONNECT:
        c->ops.on_connect(c->ud, c->why_err, 0);
        break;
    case WHY_LOST:
        c->ops.on_lost(c->ud, c->why_err, c->why_how);
        break;
    case WHY_ASKED:
    case WHY_NONE:
        c->ops.on_closed(c->ud);
        break;
    }
}

/* Close the socket; the close callback reports why (the first reason wins). */
static void close_tcp(ag_tcpconn *c, close_why why, int err, ag_tcp_lost how)
{
    uv_timer_stop(&c->timer);
    c->connected = 0;
    if (!c->tcp_open || uv_is_closing((uv_handle_t *)&c->tcp)) return;
    c->why = why;
    c->why_err = err;
    c->why_how = how;
    uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

/* ---- reading and writing ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    ag_tcpconn *c = h->data;
    *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    ag_tcpconn *c = s->data;
    if (c->freeing || !c->connected || nread == 0) return;
    if (nread < 0) {
        close_tcp(c, WHY_LOST, (int)nread, AG_TCP_LOST_READ);
        return;
    }
    c->ops.on_data(c->ud, buf->base, (size_t)nread);
}

static void on_written(uv_write_t *req, int status)
{
    ag_tcpconn *c = req->handle->data;
    free(req);
    if (status < 0 && status != UV_ECANCELED && !c->freeing && c->connected)
        close_tcp(c, WHY_LOST, status, AG_TCP_LOST_WRITE);
}

int ag_tcpconn_write(ag_tcpconn *c, const void *buf, size_t len)
{
    if (!c || !c->connected || len > UINT32_MAX) return UV_ENOTCONN;
    wreq *w = malloc(sizeof *w + len);
    if (!w) return UV_ENOMEM;
    memcpy(w->buf, buf, len);
    uv_buf_t b = uv_buf_init(w->buf, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rc < 0) free(w);
    return rc;
}

/* ---- connecting --------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
    ag_tcpconn *c = t->data;
    if (c->freeing) return;
    if (c->fail_err) {
        int err = c->fail_err;
        c->fail_err = 0;
        c->ops.on_connect(c->ud, err, c->fail_resolving);
        return;
    }
    if (c->connecting) {
        close_tcp(c, WHY_CONNECT, UV_ETIMEDOUT, AG_TCP_LOST_READ);
        return;
    }
    c->ops.on_timeout(c->ud);
}

static void on_connected(uv_connect_t *req, int status)
{
    ag_tcpconn *c = req->data;
    if (status == UV_ECANCELED || c->freeing || !c->connecting) return;
    if (status < 0) {
        close_tcp(c, WHY_CONNECT, status, AG_TCP_LOST_READ);
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) {
        close_tcp(c, WHY_CONNECT, rc, AG_TCP_LOST_READ);
        return;
    }
    uv_timer_stop(&c->timer);
    c->connecting = 0;
    c->connected = 1;
    c->ops.on_connect(c->ud, 0, 0);
}

/* An error before any socket exists: reported from the loop like every other result. */
static void fail_soon(ag_tcpconn *c, int err, int resolving);

static void connect_now(ag_tcpconn *c)
{
    int rc = uv_tcp_init(c->loop, &c->tcp);
    if (rc != 0) {
        fail_soon(c, rc, 0);
        return;
    }
    c->tcp.data = c;
    c->tcp_open = 1;
    c->connecting = 1;
    c->conn.data = c;
    rc = uv_tcp_connect(&c->conn, &c->tcp, (const struct sockaddr *)&c->addr, on_connected);
    if (rc < 0) {
        close_tcp(c, WHY_CONNECT, rc, AG_TCP_LOST_READ);
        return;
    }
    uv_timer_start(&c->timer, on_timer, (uint64_t)c->connect_ms, 0);
}

static void fail_soon(ag_tcpconn *c, int err, int resolving)
{
    c->fail_resolving = resolving;
    c->fail_err = err; /* on_timer reports it */
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

static void set_port(ag_tcpconn *c)
{
    if (c->addr.ss_family == AF_INET)
        ((struct sockaddr_in *)&c->addr)->sin_port = htons((uint16_t)c->port);
    else
        ((struct sockaddr_in6 *)&c->addr)->sin6_port = htons((uint16_t)c->port);
}

static void on_gai(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    ag_tcpconn *c = req->data;
    c->gai_pending = 0;
    if (c->freeing) {
        if (res) uv_freeaddrinfo(res);
        unref(c);
        return;
    }
    if (c->gai_cancelled) {
        c->gai_cancelled = 0;
        if (res) uv_freeaddrinfo(res);
        c->ops.on_closed(c->ud);
        return;
    }
    if (status < 0 || !res) {
        if (res) uv_freeaddrinfo(res);
        c->ops.on_connect(c->ud, status < 0 ? status : UV_EAI_NONAME, 1);
        return;
    }
    const struct addrinfo *ai = res; /* prefer IPv4, as the SNMP driver does */
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            ai = a;
            break;
        }
    memset(&c->addr, 0, sizeof c->addr);
    memcpy(&c->addr, ai->ai_addr,
           ai->ai_addrlen < sizeof c->addr ? ai->ai_addrlen : sizeof c->addr);
    uv_freeaddrinfo(res);
    set_port(c);
    connect_now(c);
}

/* A literal IPv4/IPv6 address (IPv6 optionally in brackets) into c->addr. 1 or 0. */
static int literal_addr(ag_tcpconn *c)
{
    const char *a = c->host;
    char buf[64];
    size_t len = strlen(a);
    if (len > 2 && a[0] == '[' && a[len - 1] == ']' && len - 2 < sizeof buf) {
        memcpy(buf, a + 1, len - 2);
        buf[len - 2] = '\0';
        a = buf;
    }
    memset(&c->addr, 0, sizeof c->addr);
    if (uv_ip4_addr(a, c->port, (struct sockaddr_in *)&c->addr) == 0) return 1;
    if (uv_ip6_addr(a, c->port, (struct sockaddr_in6 *)&c->addr) == 0) return 1;
    return 0;
}

int ag_tcpconn_connect(ag_tcpconn *c, int64_t timeout_ms)
{
    if (!c || c->freeing || c->tcp_open || c->gai_pending || c->fail_err) return -1;
    c->connect_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_MS;
    if (literal_addr(c)) {
        connect_now(c);
        return 0;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->gai.data = c;
    int rc = uv_getaddrinfo(c->loop, &c->gai, on_gai, c->host, NULL, &hints);
    if (rc != 0) {
        fail_soon(c, rc, 1);
        return 0;
    }
    c->gai_pending = 1;
    return 0;
}

/* ---- the rest of the interface ------------------------------------------------------ */

ag_tcpconn *ag_tcpconn_new(uv_loop_t *loop, const char *host, int port, const ag_tcpconn_ops *ops,
                           void *ud)
{
    if (!loop || !host || !ops) return NULL;
    ag_tcpconn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->host = strdup(host);
    if (!c->host) {
        free(c);
        return NULL;
    }
    c->loop = loop;
    c->ops = *ops;
    c->ud = ud;
    c->port = port;
    c->connect_ms = DEFAULT_MS;
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->defer_h);
    c->timer.data = c;
    c->defer_h.data = c;
    return c;
}

void ag_tcpconn_wait(ag_tcpconn *c, int64_t ms)
{
    if (!c || c->freeing || c->connecting || c->fail_err) return;
    uv_timer_start(&c->timer, on_timer, (uint64_t)(ms > 0 ? ms : DEFAULT_MS), 0);
}

void ag_tcpconn_stop_wait(ag_tcpconn *c)
{
    if (c && !c->connecting && !c->fail_err) uv_timer_stop(&c->timer);
}

void ag_tcpconn_disconnect(ag_tcpconn *c)
{
    if (!c || c->freeing) return;
    if (c->gai_pending) {
        c->gai_cancelled = 1;
        uv_cancel((uv_req_t *)&c->gai); /* on_gai still runs and reports on_closed */
        return;
    }
    close_tcp(c, WHY_ASKED, 0, AG_TCP_LOST_READ);
}

static void on_defer(uv_timer_t *t)
{
    ag_tcpconn *c = t->data;
    if (!c->freeing) c->ops.on_deferred(c->ud);
}

void ag_tcpconn_defer(ag_tcpconn *c)
{
    if (c && !c->freeing) uv_timer_start(&c->defer_h, on_defer, 0, 0);
}

void ag_tcpconn_undefer(ag_tcpconn *c)
{
    if (c) uv_timer_stop(&c->defer_h);
}

int ag_tcpconn_connected(const ag_tcpconn *c)
{
    return c && c->connected && !c->freeing;
}

int ag_tcpconn_busy(const ag_tcpconn *c)
{
    return c && (c->tcp_open || c->gai_pending || c->fail_err);
}

void ag_tcpconn_free(ag_tcpconn *c)
{
    if (!c || c->freeing) return;
    c->freeing = 1;
    c->refs = 2;
    if (c->gai_pending) {
        c->refs++;
        uv_cancel((uv_req_t *)&c->gai); /* on_gai still runs, with UV_ECANCELED */
    }
    if (c->tcp_open) {
        c->refs++;
        if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
    }
    uv_timer_stop(&c->timer);
    uv_timer_stop(&c->defer_h);
    uv_close((uv_handle_t *)&c->timer, on_handle_freed);
    uv_close((uv_handle_t *)&c->defer_h, on_handle_freed);
}

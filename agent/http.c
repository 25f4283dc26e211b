/* http.c — the HTTP/JSON driver: the profile's "requests" (http_profile.h) one after another
 * over libcurl multi on the libuv loop, each answer mapped to samples by ag_http_map.
 *
 * The socket/timer glue is the uploader's (after curl's docs/examples/multi-uv.c): one CURLM
 * and one easy handle per device, a uv_poll_t per socket curl asks us to watch, one uv_timer_t
 * for curl's timeouts. done is delivered from a zero-delay timer, never from inside poll().
 * TLS certificates are verified unless tls_verify = no; basic auth from username/password
 * (never logged); each request is bounded by the device timeout and answers by 1 MiB.
 * Status: curl timeout → timeout; cannot connect/resolve → refused; 401/403 → auth; other
 * non-2xx, invalid JSON, answers too large → protocol (logged, rate-limited, naming the device
 * and the path). Values the profile cannot map are logged (rate-limited); the poll stays ok. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "http_profile.h"
#include "log.h"
#include "timeutil.h"

#define MAX_ANSWER (1u << 20)
#define LOG_EVERY_S 600
#define DEFAULT_TIMEOUT_MS 5000

typedef struct http_state http_state;

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    http_state *st;
    struct sock_ctx *prev, *next;
} sock_ctx;

struct http_state {
    uv_loop_t *loop;
    const ag_device *dev;
    const ag_profile *prof;
    ag_sink sink;
    ag_http_profile hp;
    char *base_url; /* "https://host:port" */
    char *bearer;   /* "Authorization: Bearer <password>"; wiped on free */

    CURLM *multi;
    CURL *easy;
    struct curl_slist *hdr; /* for the current request */
    uv_timer_t curl_timer;
    uv_timer_t done_h;
    sock_ctx *socks;
    int handles_open;
    int closing, busy, in_flight;

    size_t req;    /* index of the request in flight */
    int attempts;  /* of this request */
    int64_t ts_ms; /* of the poll: every sample carries it */
    ag_poll_status status;
    char detail[256];
    char *resp;
    size_t resp_len;
    int too_large;
    char curl_err[CURL_ERROR_SIZE];
    ag_http_identity id;
};

static void start_request(http_state *st);

/* ---- finishing ---------------------------------------------------------------------- */

static void deliver_done(uv_timer_t *t)
{
    http_state *st = t->data;
    if (st->closing || !st->busy) return;
    st->busy = 0;
    /* The sink may call poll() or close() from here: nothing of st is touched after. */
    st->sink.done(st->sink.ud, st->dev, st->status, st->status == AG_POLL_OK ? NULL : st->detail);
}

static void finish(http_state *st, ag_poll_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(http_state *st, ag_poll_status status, const char *fmt, ...)
{
    st->status = status;
    st->detail[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->detail, sizeof st->detail, fmt, ap);
        va_end(ap);
    }
    uv_timer_start(&st->done_h, deliver_done, 0, 0);
}

static void send_inventory(http_state *st)
{
    if (!st->sink.inventory) return;
    cm_device_info info = {0};
    info.id = st->dev->id;
    info.screen = st->dev->screen;
    info.kind = st->dev->kind ? st->dev->kind : st->prof->kind;
    info.vendor = st->id.vendor[0] ? st->id.vendor : st->prof->vendor;
    info.model = st->id.model[0] ? st->id.model : NULL;
    info.serial = st->id.serial[0] ? st->id.serial : NULL;
    info.firmware = st->id.firmware[0] ? st->id.firmware : NULL;
    info.profile = st->prof->name;
    st->sink.inventory(st->sink.ud, st->dev, &info);
}

/* ---- one answer --------------------------------------------------------------------- */

static void emit(void *ud, const char *metric, const char *unit, const cm_label *labels,
                 size_t nlabels, double value)
{
    http_state *st = ud;
    st->sink.point(st->sink.ud, st->dev, metric, unit, labels, nlabels, st->ts_ms, value);
}

static void protocol_error(http_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void protocol_error(http_state *st, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *path = st->hp.reqs[st->req].path;
    char key[CM_MAX_NAME + 64];
    snprintf(key, sizeof key, "http-proto %s %zu", st->dev->id, st->req);
    cm_log_limited(key, LOG_EVERY_S, CM_LOG_WARN, "http: device %s: %s: %s", st->dev->id, path,
                   why);
    finish(st, AG_POLL_PROTOCOL, "%s: %s", path, why);
}

/* Classify a failed transfer. */
static void transfer_failed(http_state *st, CURLcode res)
{
    const char *path = st->hp.reqs[st->req].path;
    const char *why = st->curl_err[0] ? st->curl_err : curl_easy_strerror(res);
    switch (res) {
    case CURLE_OPERATION_TIMEDOUT:
        if (st->attempts <= st->dev->retries) {
            start_request(st);
            return;
        }
        finish(st, AG_POLL_TIMEOUT, "%s: no answer within %lld ms", path,
               (long long)(st->dev->timeout_ms > 0 ? st->dev->timeout_ms : DEFAULT_TIMEOUT_MS));
        return;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        finish(st, AG_POLL_REFUSED, "%s: %s", path, why);
        return;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (st->too_large || res == CURLE_FILESIZE_EXCEEDED) {
            protocol_error(st, "answer larger than %u bytes", MAX_ANSWER);
            return;
        }
        break;
    default:
        break;
    }
    protocol_error(st, "%s", why);
}

static void request_done(http_state *st, CURLcode res)
{
    if (res != CURLE_OK) {
        transfer_failed(st, res);
        return;
    }
    const ag_http_request *r = &st->hp.reqs[st->req];
    long code = 0;
    curl_easy_getinfo(st->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code == 401 || code == 403) {
        finish(st, AG_POLL_AUTH, "%s: HTTP %ld (check username/password)", r->path, code);
        return;
    }
    if (code < 200 || code > 299) {
        protocol_error(st, "HTTP %ld", code);
        return;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(st->resp ? st->resp : "", st->resp_len, JSON_DECODE_ANY, &jerr);
    if (!doc) {
        protocol_error(st, "invalid JSON at %d:%d: %s", jerr.line, jerr.column, jerr.text);
        return;
    }
    char why[256];
    int bad = ag_http_map(r, doc, emit, st, &st->id, why, sizeof why);
    json_decref(doc);
    if (bad > 0) {
        char key[CM_MAX_NAME + 64];
        snprintf(key, sizeof key, "http-map %s %zu", st->dev->id, st->req);
        cm_log_limited(key, LOG_EVERY_S, CM_LOG_WARN,
                       "http: device %s: %s: %d value(s) not mapped (profile %s), first: %s",
                       st->dev->id, r->path, bad, st->prof->name, why);
    }
    st->req++;
    if (st->req < st->hp.nreqs) {
        st->attempts = 0;
        start_request(st);
        return;
    }
    send_inventory(st);
    finish(st, AG_POLL_OK, NULL);
}

/* ---- libcurl ↔ libuv glue ----------------------------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
    http_state *st = h->data;
    if (h->type == UV_POLL) {
        sock_ctx *c = (sock_ctx *)h;
        if (c->prev)
            c->prev->next = c->next;
        else
            st->socks = c->next;
        if (c->next) c->next->prev = c->prev;
        free(c);
    }
    if (--st->handles_open == 0 && st->closing) free(st);
}

static void check_done(http_state *st)
{
    CURLMsg *m;
    int left;
    while (st->multi && (m = curl_multi_info_read(st->multi, &left))) {
        if (m->msg != CURLMSG_DONE || m->easy_handle != st->easy) continue;
        CURLcode res = m->data.result;
        curl_multi_remove_handle(st->multi, st->easy);
        if (!st->in_flight) continue;
        st->in_flight = 0;
        request_done(st, res);
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_ctx *c = (sock_ctx *)p;
    http_state *st = c->st;
    if (st->closing) return;
    int flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (!status && (events & UV_READABLE)) flags |= CURL_CSELECT_IN;
    if (!status && (events & UV_WRITABLE)) flags |= CURL_CSELECT_OUT;
    int running = 0;
    curl_multi_socket_action(st->multi, c->fd, flags, &running);
    check_done(st);
}

static void on_curl_timer(uv_timer_t *t)
{
    http_state *st = t->data;
    if (st->closing) return;
    int running = 0;
    curl_multi_socket_action(st->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(st);
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    http_state *st = userp;
    if (st->closing) return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&st->curl_timer);
    else
        uv_timer_start(&st->curl_timer, on_curl_timer, timeout_ms ? (uint64_t)timeout_ms : 1, 0);
    return 0;
}

static int curl_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    http_state *st = userp;
    sock_ctx *c = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (c && !uv_is_closing((uv_handle_t *)&c->poll)) {
            uv_poll_stop(&c->poll);
            uv_close((uv_handle_t *)&c->poll, handle_closed);
        }
        return 0;
    }
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) return -1;
        if (uv_poll_init_socket(st->loop, &c->poll, s) != 0) {
            free(c);
            return -1;
        }
        c->fd = s;
        c->st = st;
        c->poll.data = st;
        c->next = st->socks;
        if (st->socks) st->socks->prev = c;
        st->socks = c;
        st->handles_open++;
        curl_multi_assign(st->multi, s, c);
    }
    int ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev |= UV_WRITABLE;
    uv_poll_start(&c->poll, ev, on_poll);
    return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userp)
{
    http_state *st = userp;
    size_t n = size * nmemb;
    if (n > MAX_ANSWER - st->resp_len) {
        st->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    char *r = realloc(st->resp, st->resp_len + n + 1);
    if (!r) return 0;
    memcpy(r + st->resp_len, ptr, n);
    st->resp = r;
    st->resp_len += n;
    r[st->resp_len] = '\0';
    return n;
}

/* ---- requests ------------------------------------------------------------------------ */

static void start_request(http_state *st)
{
    const ag_http_request *r = &st->hp.reqs[st->req];
    st->attempts++;
    free(st->resp);
    st->resp = NULL;
    st->resp_len = 0;
    st->too_large = 0;
    st->curl_err[0] = '\0';
    curl_slist_free_all(st->hdr);
    st->hdr = curl_slist_append(NULL, "Accept: application/json");
    if (st->hdr && r->body) st->hdr = curl_slist_append(st->hdr, "Content-Type: application/json");
    if (st->hdr && r->bearer_token && st->bearer) st->hdr = curl_slist_append(st->hdr, st->bearer);
    char url[2048];
    int n = snprintf(url, sizeof url, "%s%s", st->base_url, r->path);
    if (!st->hdr || n < 0 || (size_t)n >= sizeof url) {
        finish(st, AG_POLL_CONFIG, "%s: cannot build the request", r->path);
        return;
    }
    CURL *e = st->easy;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, st->hdr) != CURLE_OK;
    if (r->post) {
        const char *body = r->body ? r->body : "";
        bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body)) !=
               CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, body) != CURLE_OK;
    } else {
        bad |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) != CURLE_OK;
    }
    /* basic auth unless this request sends the password as a bearer token */
    int basic = st->dev->username && st->dev->username[0] && !r->bearer_token;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPAUTH, basic ? CURLAUTH_BASIC : CURLAUTH_NONE) !=
           CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERNAME, basic ? st->dev->username : NULL) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PASSWORD,
                            basic ? (st->dev->password ? st->dev->password : "") : NULL) !=
           CURLE_OK;
    if (bad) {
        finish(st, AG_POLL_CONFIG, "%s: libcurl refused an option", r->path);
        return;
    }
    CURLMcode mc = curl_multi_add_handle(st->multi, e);
    if (mc != CURLM_OK) {
        finish(st, AG_POLL_PROTOCOL, "%s: cannot start: %s", r->path, curl_multi_strerror(mc));
        return;
    }
    st->in_flight = 1;
}

/* ---- the driver interface ------------------------------------------------------------ */

static void free_state_strings(http_state *st)
{
    ag_http_profile_free(&st->hp);
    free(st->base_url);
    st->base_url = NULL;
    if (st->bearer) {
        memset(st->bearer, 0, strlen(st->bearer));
        free(st->bearer);
        st->bearer = NULL;
    }
    curl_slist_free_all(st->hdr);
    st->hdr = NULL;
    free(st->resp);
    st->resp = NULL;
}

static int setup_easy(http_state *st)
{
    CURL *e = st->easy;
    int64_t to = st->dev->timeout_ms > 0 ? st->dev->timeout_ms : DEFAULT_TIMEOUT_MS;
    int verify = !st->dev->tls || st->dev->tls_verify;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)to) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, st) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, st->curl_err) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_ANSWER) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "cinemon-agent") != CURLE_OK;
    return bad ? -1 : 0;
}

static int drv_open(uv_loop_t *loop, const ag_device *dev, const ag_profile_set *profiles,
                    const ag_sink *sink, void **state, char *err, size_t errlen)
{
    *state = NULL;
    if (!dev || !dev->id || !dev->address || !dev->address[0] || !sink || !sink->point ||
        !sink->done) {
        snprintf(err, errlen, "http: device without id, address or sink");
        return -1;
    }
    if (dev->port < 1 || dev->port > 65535) {
        snprintf(err, errlen, "device %s: port %d out of range", dev->id, dev->port);
        return -1;
    }
    if (!dev->profile) {
        snprintf(err, errlen, "device %s: an http device needs a profile", dev->id);
        return -1;
    }
    const ag_profile *prof = profiles ? ag_profile_find(profiles, dev->profile) : NULL;
    if (!prof) {
        snprintf(err, errlen, "device %s: profile '%s' not found", dev->id, dev->profile);
        return -1;
    }
    if (!prof->protocol || strcmp(prof->protocol, "http") != 0 || !prof->doc) {
        snprintf(err, errlen, "device %s: profile '%s' is not an http profile", dev->id,
                 dev->profile);
        return -1;
    }
    for (const char *p = dev->address; *p; p++)
        if (*p == '/' || *p == '@' || *p == '?' || *p == '#' || (unsigned char)*p <= 0x20) {
            snprintf(err, errlen, "device %s: address must be a host name or IP address",
                     dev->id);
            return -1;
        }
    http_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->loop = loop;
    st->dev = dev;
    st->prof = prof;
    st->sink = *sink;
    if (ag_http_profile_parse(prof->path ? prof->path : prof->name, prof->doc, &st->hp, err,
                              errlen) < 0) {
        free(st);
        return -1;
    }
    int v6 = strchr(dev->address, ':') != NULL && dev->address[0] != '[';
    size_t ulen = strlen(dev->address) + 32;
    st->base_url = malloc(ulen);
    if (st->base_url)
        snprintf(st->base_url, ulen, "%s://%s%s%s:%d", dev->tls ? "https" : "http", v6 ? "[" : "",
                 dev->address, v6 ? "]" : "", dev->port);
    if (dev->password && dev->password[0]) {
        size_t blen = strlen(dev->password) + 32;
        st->bearer = malloc(blen);
        if (st->bearer) snprintf(st->bearer, blen, "Authorization: Bearer %s", dev->password);
    }
    st->multi = curl_multi_init();
    st->easy = curl_easy_init();
    if (!st->base_url || (dev->password && dev->password[0] && !st->bearer) || !st->multi ||
        !st->easy || setup_easy(st) < 0) {
        snprintf(err, errlen, "device %s: cannot set up libcurl", dev->id);
        if (st->easy) curl_easy_cleanup(st->easy);
        if (st->multi) curl_multi_cleanup(st->multi);
        free_state_strings(st);
        free(st);
        return -1;
    }
    curl_multi_setopt(st->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(st->multi, CURLMOPT_SOCKETDATA, st);
    curl_multi_setopt(st->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(st->multi, CURLMOPT_TIMERDATA, st);
    uv_timer_init(loop, &st->curl_timer);
    uv_timer_init(loop, &st->done_h);
    st->curl_timer.data = st;
    st->done_h.data = st;
    st->handles_open = 2;
    *state = st;
    return 0;
}

static int drv_poll(void *state)
{
    http_state *st = state;
    if (!st || st->busy || st->closing) return -1;
    st->busy = 1;
    st->status = AG_POLL_OK;
    st->ts_ms = cm_now_ms();
    st->req = 0;
    st->attempts = 0;
    memset(&st->id, 0, sizeof st->id);
    start_request(st); /* curl starts from its timer callback: never done from here */
    return 0;
}

static void drv_close(void *state)
{
    http_state *st = state;
    if (!st || st->closing) return;
    st->closing = 1;
    if (st->in_flight) curl_multi_remove_handle(st->multi, st->easy);
    st->in_flight = 0;
    curl_easy_cleanup(st->easy);
    curl_multi_cleanup(st->multi); /* may still call curl_socket_cb with CURL_POLL_REMOVE */
    st->easy = NULL;
    st->multi = NULL;
    for (sock_ctx *c = st->socks; c; c = c->next)
        if (!uv_is_closing((uv_handle_t *)&c->poll)) {
            uv_poll_stop(&c->poll);
            uv_close((uv_handle_t *)&c->poll, handle_closed);
        }
    free_state_strings(st);
    uv_timer_stop(&st->curl_timer);
    uv_timer_stop(&st->done_h);
    uv_close((uv_handle_t *)&st->curl_timer, handle_closed);
    uv_close((uv_handle_t *)&st->done_h, handle_closed);
}

const ag_driver_ops ag_http_driver = {
    .name = "http",
    .open = drv_open,
    .poll = drv_poll,
    .close = drv_close,
};

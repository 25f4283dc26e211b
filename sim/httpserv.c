/* httpserv.c — HTTP/1.1 server for the simulator's HTTP devices (see httpserv.h). */
#include "httpserv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "netwrite.h"

#define CONN_BUF (SIM_HTTP_MAX_HEAD + SIM_HTTP_MAX_BODY) /* the most a connection buffers */
#define CONN_BUF0 4096                                   /* what it starts with */

/* ---- the pure request parser ----------------------------------------------------------- */

static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return 1;
    default:
        return 0;
    }
}

/* A header value byte: visible ASCII, obs-text, space or tab. */
static int is_vbyte(unsigned char c)
{
    return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f);
}

/* The next line in buf[*pos..lim): its start and length without CR LF. 1 found, 0 none. */
static int next_line(const char *buf, size_t lim, size_t *pos, const char **ls, size_t *ll)
{
    const char *nl = memchr(buf + *pos, '\n', lim - *pos);
    if (!nl) return 0;
    size_t end = (size_t)(nl - buf);
    *ls = buf + *pos;
    *ll = end - *pos;
    if (*ll > 0 && (*ls)[*ll - 1] == '\r') (*ll)--;
    *pos = end + 1;
    return 1;
}

/* Case-insensitive comparison of a counted string with a C string. */
static int ieq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

static int parse_request_line(const char *l, size_t n, sim_http_req *req)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)l[i]))
        i++;
    if (i == 0 || i >= sizeof req->method || i >= n || l[i] != ' ') return -400;
    memcpy(req->method, l, i);
    req->method[i] = '\0';
    size_t ts = ++i;
    while (i < n && (unsigned char)l[i] > 0x20 && (unsigned char)l[i] < 0x7f)
        i++;
    size_t tl = i - ts;
    if (tl == 0 || i >= n || l[i] != ' ') return -400;
    if (tl > SIM_HTTP_MAX_TARGET) return -414;
    if (l[ts] != '/') return -400;
    const char *q = memchr(l + ts, '?', tl);
    size_t pl = q ? (size_t)(q - (l + ts)) : tl;
    memcpy(req->path, l + ts, pl);
    req->path[pl] = '\0';
    if (q) {
        memcpy(req->query, q + 1, tl - pl - 1);
        req->query[tl - pl - 1] = '\0';
    }
    i++;
    if (n - i != 8 || memcmp(l + i, "HTTP/", 5) != 0) return -400;
    char maj = l[i + 5], dot = l[i + 6], min = l[i + 7];
    if (maj < '0' || maj > '9' || dot != '.' || min < '0' || min > '9') return -400;
    if (maj != '1') return -505;
    req->minor = min - '0';
    return 0;
}

/* Content-Length: 1*DIGIT, at most SIM_HTTP_MAX_BODY. */
static int parse_length(const char *v, size_t n, size_t *out)
{
    if (n == 0 || n > 19) return n == 0 ? -400 : -413;
    size_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return -400;
        x = x * 10 + (size_t)(v[i] - '0');
        if (x > SIM_HTTP_MAX_BODY) return -413;
    }
    *out = x;
    return 0;
}

/* Connection: a comma-separated token list. */
static void parse_connection(const char *v, size_t n, int *close, int *ka)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (ieq(v + s, i - s, "close")) *close = 1;
        if (ieq(v + s, i - s, "keep-alive")) *ka = 1;
    }
}

/* A quick verdict on an incomplete request line: a method of token bytes. */
static long early_check(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len && i < sizeof((sim_http_req *)0)->method && is_tchar((unsigned char)buf[i]))
        i++;
    if (i == len) return 0;
    if (i == 0 || i >= sizeof((sim_http_req *)0)->method || buf[i] != ' ') return -400;
    return 0;
}

long sim_http_parse(const char *buf, size_t len, sim_http_req *req)
{
    memset(req, 0, sizeof *req);
    if (!buf) return len ? -400 : 0;
    size_t pos = 0;
    /* a few empty lines before the request line are ignored (RFC 9112 §2.2) */
    while (pos < len && (buf[pos] == '\r' || buf[pos] == '\n')) {
        if (++pos > 8) return -400;
    }
    size_t lim = len < SIM_HTTP_MAX_HEAD ? len : SIM_HTTP_MAX_HEAD;
    const char *l;
    size_t n;
    if (pos >= lim) return len >= SIM_HTTP_MAX_HEAD ? -431 : 0;
    if (!next_line(buf, lim, &pos, &l, &n)) {
        long e = early_check(buf + pos, lim - pos);
        if (e < 0) return e;
        return len >= SIM_HTTP_MAX_HEAD ? -431 : 0;
    }
    int r = parse_request_line(l, n, req);
    if (r < 0) return r;
    int nheaders = 0, conn_close = 0, conn_ka = 0, have_len = 0;
    for (;;) {
        if (!next_line(buf, lim, &pos, &l, &n)) return len >= SIM_HTTP_MAX_HEAD ? -431 : 0;
        if (n == 0) break; /* end of the head */
        if (++nheaders > SIM_HTTP_MAX_HEADERS) return -431;
        size_t i = 0;
        while (i < n && is_tchar((unsigned char)l[i]))
            i++;
        if (i == 0 || i >= n || l[i] != ':') return -400; /* also obs-fold, space before ':' */
        const char *name = l;
        size_t nl = i++;
        for (size_t k = i; k < n; k++)
            if (!is_vbyte((unsigned char)l[k])) return -400;
        while (i < n && (l[i] == ' ' || l[i] == '\t'))
            i++;
        size_t vend = n;
        while (vend > i && (l[vend - 1] == ' ' || l[vend - 1] == '\t'))
            vend--;
        const char *v = l + i;
        size_t vl = vend - i;
        if (ieq(name, nl, "content-length")) {
            size_t cl = 0;
            r = parse_length(v, vl, &cl);
            if (r < 0) return r;
            if (have_len && cl != req->content_length) return -400;
            req->content_length = cl;
            have_len = 1;
        } else if (ieq(name, nl, "transfer-encoding")) {
            return -501;
        } else if (ieq(name, nl, "connection")) {
            parse_connection(v, vl, &conn_close, &conn_ka);
        } else if (ieq(name, nl, "expect")) {
            if (ieq(v, vl, "100-continue")) req->expect_continue = 1;
        }
    }
    req->head_complete = 1;
    req->head_len = pos;
    req->keep_alive = req->minor >= 1 ? !conn_close : (conn_ka && !conn_close);
    if (len - pos < req->content_length) return 0;
    req->body = buf + pos;
    return (long)(pos + req->content_length);
}

const char *sim_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

/* ---- the server -------------------------------------------------------------------------- */

typedef struct sim_hconn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* a delayed answer (fault "slow") */
    uv_shutdown_t shut;
    sim_httpserv *srv;
    struct sim_hconn *next;
    char *buf; /* input: cap bytes, grown up to CONN_BUF */
    size_t len, cap;
    char *pending; /* the answer held by the slow timer */
    size_t pending_len;
    int pending_close;
    int closing, shutting, mute, sent_continue;
} sim_hconn;

/* Write n bytes (copied) to the connection. */
static void send_bytes(sim_hconn *c, const char *b, size_t n)
{
    if (n == 0 || c->closing || c->shutting) return;
    sim_write_copy((uv_stream_t *)&c->tcp, b, n);
}

static void conn_freed(uv_handle_t *h)
{
    sim_hconn *c = h->data;
    if (--c->closing == 0) { /* both handles closed */
        free(c->pending);
        free(c->buf);
        free(c);
    }
}

static void conn_close(sim_hconn *c)
{
    if (c->closing) return;
    sim_httpserv *s = c->srv;
    for (sim_hconn **pp = &s->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    s->nconns--;
    c->closing = 2;
    uv_close((uv_handle_t *)&c->tcp, conn_freed);
    uv_close((uv_handle_t *)&c->timer, conn_freed);
}

static void on_shutdown(uv_shutdown_t *r, int status)
{
    (void)status;
    conn_close(r->data);
}

/* Close once the written answers have left (a graceful end of the connection). */
static void conn_finish(sim_hconn *c)
{
    if (c->closing || c->shutting) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    c->shutting = 1;
}

/* The whole answer (head and body) in one malloc'd block; its length in *out_len. */
static char *build_answer(const sim_http_resp *r, int keep, size_t *out_len)
{
    char head[512];
    int hn =
        snprintf(head, sizeof head,
                 "HTTP/1.1 %d %s\r\nServer: cinemon-sim\r\nContent-Length: %zu\r\n"
                 "%s%s%s%s%s%sConnection: %s\r\n\r\n",
                 r->status, sim_http_reason(r->status), r->len, r->ctype ? "Content-Type: " : "",
                 r->ctype ? r->ctype : "", r->ctype ? "\r\n" : "", r->allow ? "Allow: " : "",
                 r->allow ? r->allow : "", r->allow ? "\r\n" : "", keep ? "keep-alive" : "close");
    if (hn < 0 || (size_t)hn >= sizeof head) return NULL;
    char *m = malloc((size_t)hn + r->len + 1);
    if (!m) return NULL;
    memcpy(m, head, (size_t)hn);
    if (r->len) memcpy(m + hn, r->body, r->len);
    *out_len = (size_t)hn + r->len;
    return m;
}

static void send_answer(sim_hconn *c, const sim_http_resp *r, int keep)
{
    size_t n = 0;
    char *m = build_answer(r, keep, &n);
    if (!m) return;
    send_bytes(c, m, n);
    free(m);
    c->srv->responses++;
}

static void send_error(sim_hconn *c, int status)
{
    char body[96];
    int n = snprintf(body, sizeof body, "%d %s\n", status, sim_http_reason(status));
    sim_http_resp r = {
        .status = status, .ctype = "text/plain", .body = body, .len = n > 0 ? (size_t)n : 0};
    send_answer(c, &r, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sim_hconn *c = h->data;
    (void)suggested;
    if (c->cap - c->len < 1024 && c->cap < CONN_BUF) {
        size_t cap = c->cap * 4 < CONN_BUF ? c->cap * 4 : CONN_BUF;
        char *b = realloc(c->buf, cap);
        if (b) {
            c->buf = b;
            c->cap = cap;
        }
    }
    /* a full buffer gives libuv no room: UV_ENOBUFS closes the connection */
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void slow_fire(uv_timer_t *t);

static void process(sim_hconn *c)
{
    sim_httpserv *s = c->srv;
    while (!c->closing && !c->shutting && !c->pending && !c->mute && c->len > 0) {
        sim_http_req req;
        long r = sim_http_parse(c->buf, c->len, &req);
        if (r == 0) {
            if (req.head_complete && req.expect_continue && !c->sent_continue) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                send_bytes(c, cont, sizeof cont - 1);
                c->sent_continue = 1;
            }
            return;
        }
        s->requests++;
        c->sent_continue = 0;
        if (r < 0) {
            s->bad_requests++;
            send_error(c, (int)-r);
            conn_finish(c);
            return;
        }
        int64_t now = (int64_t)uv_now(s->loop);
        sim_fault f = sim_fault_decide(&s->fault, s->fault_rate, now);
        if (f != SIM_FAULT_NONE) {
            s->faults++;
            if (s->episode_until_ms < now + SIM_HTTP_EPISODE_MS)
                s->episode_until_ms = now + SIM_HTTP_EPISODE_MS;
        }
        if (f == SIM_FAULT_CLOSE) {
            conn_close(c);
            return;
        }
        if (f == SIM_FAULT_SILENT) { /* this connection never answers again */
            c->mute = 1;
            c->len = 0;
            return;
        }
        sim_http_resp resp = {0};
        s->handler(s->ctx, &req, now, now < s->episode_until_ms, &resp);
        if (resp.status == 0) resp.status = 500;
        if (resp.status >= 400 && resp.status < 500) s->bad_requests++;
        int keep = req.keep_alive;
        memmove(c->buf, c->buf + r, c->len - (size_t)r);
        c->len -= (size_t)r;
        if (f == SIM_FAULT_GARBLE) sim_fault_garble(&s->fault, (uint8_t *)resp.body, resp.len);
        if (f == SIM_FAULT_SLOW) {
            size_t n = 0;
            char *m = build_answer(&resp, keep, &n);
            free(resp.body);
            if (!m) {
                conn_close(c);
                return;
            }
            c->pending = m;
            c->pending_len = n;
            c->pending_close = !keep;
            uv_read_stop((uv_stream_t *)&c->tcp);
            uv_timer_start(&c->timer, slow_fire, SIM_FAULT_SLOW_MS, 0);
            return;
        }
        send_answer(c, &resp, keep);
        free(resp.body);
        if (!keep) {
            conn_finish(c);
            return;
        }
    }
}

static void slow_fire(uv_timer_t *t)
{
    sim_hconn *c = t->data;
    char *p = c->pending;
    size_t n = c->pending_len;
    c->pending = NULL;
    send_bytes(c, p, n);
    free(p);
    c->srv->responses++;
    if (c->pending_close) {
        conn_finish(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    process(c);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    sim_hconn *c = st->data;
    (void)buf;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (c->closing || c->shutting) return;
    c->len += (size_t)nread;
    if (c->mute) {
        c->len = 0;
        return;
    }
    process(c);
}

static void on_connection(uv_stream_t *l, int status)
{
    sim_httpserv *s = l->data;
    if (status < 0) return;
    sim_hconn *c = calloc(1, sizeof *c);
    char *b = malloc(CONN_BUF0);
    if (!c || !b) {
        free(c);
        free(b);
        return;
    }
    c->buf = b;
    c->cap = CONN_BUF0;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->next = s->conns;
    s->conns = c;
    s->nconns++;
    s->connections++;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (s->max_conns > 0 && s->nconns > s->max_conns) {
        sim_hconn *old = s->conns; /* the oldest is the last in the list */
        while (old->next)
            old = old->next;
        conn_close(old);
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int sim_httpserv_start(sim_httpserv *s, uv_loop_t *loop, const struct sockaddr *addr,
                       sim_http_handler handler, void *ctx, double fault_rate, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->handler = handler;
    s->ctx = ctx;
    s->fault_rate = fault_rate;
    s->fault.rng = seed;
    s->max_conns = SIM_HTTP_MAX_CONNS;
    int r = uv_tcp_init(loop, &s->listener);
    if (r != 0) return r;
    s->listening = 1;
    s->listener.data = s;
    r = uv_tcp_bind(&s->listener, addr, 0);
    if (r == 0) r = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    return r;
}

void sim_httpserv_stop(sim_httpserv *s)
{
    while (s->conns)
        conn_close(s->conns);
    if (s->listening && !uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, NULL);
}

/* tcpserv.c — TCP line server for the text-protocol devices (see tcpserv.h). */
#include "tcpserv.h"

#include <stdlib.h>
#include <string.h>

#include "netwrite.h"
#include "rng.h"

#define LINE_CAP 512

typedef struct sim_tconn {
    uv_tcp_t tcp;
    uv_timer_t slow; /* a delayed reply (fault "slow") */
    sim_tcpserv *srv;
    struct sim_tconn *next;
    sim_conn_state cs;
    char line[LINE_CAP];
    size_t len;
    char *pending; /* reply held by the slow timer */
    size_t pending_len;
    int closing, close_after;
} sim_tconn;

static void send_bytes(sim_tconn *c, const char *b, size_t n)
{
    if (n == 0 || c->closing) return;
    sim_write_copy((uv_stream_t *)&c->tcp, b, n);
}

static void conn_freed(uv_handle_t *h)
{
    sim_tconn *c = h->data;
    if (--c->closing == 0) { /* both handles closed */
        free(c->pending);
        free(c);
    }
}

static void conn_close(sim_tconn *c)
{
    if (c->closing) return;
    sim_tcpserv *s = c->srv;
    for (sim_tconn **pp = &s->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    s->nconns--;
    c->closing = 2;
    uv_close((uv_handle_t *)&c->tcp, conn_freed);
    uv_close((uv_handle_t *)&c->slow, conn_freed);
}

static void slow_fire(uv_timer_t *t)
{
    sim_tconn *c = t->data;
    char *p = c->pending;
    size_t n = c->pending_len;
    c->pending = NULL;
    send_bytes(c, p, n);
    free(p);
    if (c->close_after) conn_close(c);
}

static void handle_line(sim_tconn *c, const char *ln, size_t len)
{
    sim_tcpserv *s = c->srv;
    s->lines++;
    int64_t now = (int64_t)uv_now(s->loop);
    sim_fault f = sim_fault_decide(&s->fault, s->fault_rate, now);
    if (f != SIM_FAULT_NONE) s->faults[f]++;
    if (f == SIM_FAULT_CLOSE) {
        conn_close(c);
        return;
    }
    if (f == SIM_FAULT_SILENT) return;
    char out[1024];
    size_t n = 0;
    long rc = s->proto->line(s->dev, &c->cs, ln, len, now, out, sizeof out, &n);
    if (f == SIM_FAULT_GARBLE) sim_fault_garble(&s->fault, (uint8_t *)out, n);
    if (f == SIM_FAULT_SLOW && !c->pending && n > 0) {
        c->pending = malloc(n);
        if (c->pending) {
            memcpy(c->pending, out, n);
            c->pending_len = n;
            c->close_after = rc < 0;
            uv_timer_start(&c->slow, slow_fire, SIM_FAULT_SLOW_MS, 0);
            return;
        }
    }
    send_bytes(c, out, n);
    if (rc < 0) conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char rx[4096];
    (void)h, (void)suggested;
    *buf = uv_buf_init(rx, sizeof rx);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    sim_tconn *c = st->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    for (ssize_t i = 0; i < nread && !c->closing; i++) {
        char ch = buf->base[i];
        if (ch == '\r' || ch == '\n') {
            if (c->len > 0) handle_line(c, c->line, c->len);
            c->len = 0;
            continue;
        }
        if (c->len >= c->srv->proto->max_line || c->len >= LINE_CAP) {
            conn_close(c); /* over-long line */
            return;
        }
        c->line[c->len++] = ch;
    }
}

static void on_connection(uv_stream_t *l, int status)
{
    sim_tcpserv *s = l->data;
    if (status < 0) return;
    sim_tconn *c = calloc(1, sizeof *c);
    if (!c) return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->slow);
    c->tcp.data = c->slow.data = c;
    c->next = s->conns;
    s->conns = c;
    s->nconns++;
    s->connections++;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (s->proto->max_conns > 0 && s->nconns > s->proto->max_conns) {
        sim_tconn *old = s->conns; /* the oldest is the last in the list */
        while (old->next)
            old = old->next;
        conn_close(old);
    }
    int64_t now = (int64_t)uv_now(s->loop);
    if (now < s->fault.silent_until_ms) return; /* a silent device accepts but never speaks */
    char g[128];
    size_t n = s->proto->greet(s->dev, &c->cs, sim_rng_next(&s->fault.rng), g, sizeof g);
    send_bytes(c, g, n);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int sim_tcpserv_start(sim_tcpserv *s, uv_loop_t *loop, const struct sockaddr *addr,
                      const sim_line_proto *proto, void *dev, double fault_rate, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->proto = proto;
    s->dev = dev;
    s->fault_rate = fault_rate;
    s->fault.rng = seed;
    int r = uv_tcp_init(loop, &s->listener);
    if (r != 0) return r;
    s->listener.data = s;
    r = uv_tcp_bind(&s->listener, addr, 0);
    if (r == 0) r = uv_listen((uv_stream_t *)&s->listener, 64, on_connection);
    return r;
}

void sim_tcpserv_stop(sim_tcpserv *s)
{
    while (s->conns)
        conn_close(s->conns);
    if (!uv_is_closing((uv_handle_t *)&s->listener)) uv_close((uv_handle_t *)&s->listener, NULL);
}

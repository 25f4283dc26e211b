/* text.c — the driver for line-based text protocols over TCP (Dolby CP750/CP850/CP950, USL):
 * the profile's commands (text_profile.h) sent one at a time on one persistent connection.
 *
 * A poll: (resolve → connect, when there is no open connection) → for each command: send
 * `send` + line_end and wait for the first line matching `expect` (other lines, such as
 * unsolicited status, are skipped) → samples through ag_value_map_apply, identities into the
 * inventory → done (from a zero-delay timer or the socket's close callback, never from inside
 * poll()). The connection stays open for the next poll; after any error it is closed and the
 * next poll connects again. There is never more than one socket per device.
 *
 * Every wait is bounded by timeout_ms (from the command's send; unsolicited lines do not extend
 * it). Connect timeouts are retried `retries` times. A command whose wait ends after only
 * non-matching lines ends the poll as "protocol" (rate-limited warning naming device and
 * command); silence ends it as "timeout". A reused connection that the device has closed in
 * the meantime is replaced once, transparently. Lines longer than AG_TEXT_MAX_LINE are dropped. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "log.h"
#include "text_profile.h"
#include "timeutil.h"

#define LOG_EVERY_S 600

typedef enum { PH_IDLE, PH_RESOLVE, PH_CONNECT, PH_QUERY, PH_DONE } phase;

enum { INV_MODEL, INV_SERIAL, INV_FIRMWARE, INV_VENDOR, INV_N };
static const char *const inv_fields[INV_N] = {"model", "serial", "firmware", "vendor"};

typedef struct tx_state {
    uv_loop_t *loop;
    const ag_device *dev;
    const ag_profile *prof;
    ag_sink sink;
    ag_text_profile tp;
    int port;

    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_timer_t timer_h; /* the current wait */
    uv_timer_t done_h;  /* deferred done() */
    uv_getaddrinfo_t gai;
    int tcp_open;  /* the handle is initialised and its close callback has not run */
    int connected; /* connected and reading */
    int gai_pending, busy, closing, refs, reconnect;
    int reused;   /* this poll started on a connection opened by an earlier poll */
    int got_line; /* a line arrived during this poll */

    struct sockaddr_storage addr;
    phase ph;
    int attempts;
    int64_t ts_ms;
    ag_poll_status status;
    char detail[256];

    size_t cmd;    /* the command being answered */
    int unmatched; /* lines skipped while waiting for it */
    char last_unmatched[64];
    char line[AG_TEXT_MAX_LINE + 1];
    size_t linelen;
    int overflow; /* discarding the rest of a too-long line */
    char rbuf[4096];
    char val[AG_TEXT_MAX_LINE + 1];
    char inv[INV_N][CM_MAX_VALUE];
} tx_state;

typedef struct wreq {
    uv_write_t req;
    char buf[];
} wreq;

/* ---- finishing ---------------------------------------------------------------------- */

static void deliver_done(tx_state *st)
{
    if (st->closing || !st->busy) return;
    uv_timer_stop(&st->done_h); /* exactly one done, even when the socket also closed */
    st->busy = 0;
    st->ph = PH_IDLE;
    /* The sink may call poll() or close() from here: nothing of st is touched after. */
    st->sink.done(st->sink.ud, st->dev, st->status, st->status == AG_POLL_OK ? NULL : st->detail);
}

static void on_done_timer(uv_timer_t *t)
{
    deliver_done(t->data);
}

static void begin_connect(tx_state *st);

static void on_tcp_closed(uv_handle_t *h)
{
    tx_state *st = h->data;
    st->tcp_open = 0;
    st->connected = 0;
    if (st->closing) {
        if (--st->refs == 0) free(st);
        return;
    }
    if (st->reconnect) {
        st->reconnect = 0;
        begin_connect(st);
        return;
    }
    if (st->busy && st->ph == PH_DONE) deliver_done(st);
    /* otherwise an idle connection the device closed: the next poll connects again */
}

static void close_tcp(tx_state *st)
{
    st->connected = 0;
    if (st->tcp_open && !uv_is_closing((uv_handle_t *)&st->tcp))
        uv_close((uv_handle_t *)&st->tcp, on_tcp_closed);
}

static void finish(tx_state *st, ag_poll_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(tx_state *st, ag_poll_status status, const char *fmt, ...)
{
    if (st->ph == PH_DONE) return;
    st->ph = PH_DONE;
    st->status = status;
    st->reconnect = 0;
    st->detail[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->detail, sizeof st->detail, fmt, ap);
        va_end(ap);
    }
    uv_timer_stop(&st->timer_h);
    if (status != AG_POLL_OK && st->tcp_open)
        close_tcp(st); /* a fresh connection next time; done follows from on_tcp_closed */
    else if (status == AG_POLL_OK || !st->tcp_open)
        uv_timer_start(&st->done_h, on_done_timer, 0, 0);
}

static const char *cur_cmd(const tx_state *st)
{
    return st->cmd < st->tp.ncmds ? st->tp.cmds[st->cmd].send : "?";
}

/* Printable, bounded copy of device text for logs. */
static void shown(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[n] = '\0';
}

static void protocol_error(tx_state *st, const char *why)
{
    char key[CM_MAX_NAME + 32];
    snprintf(key, sizeof key, "text-proto %s %zu", st->dev->id, st->cmd);
    cm_log_limited(key, LOG_EVERY_S, CM_LOG_WARN, "text: device %s: '%s': %s (last line \"%s\")",
                   st->dev->id, cur_cmd(st), why, st->last_unmatched);
    finish(st, AG_POLL_PROTOCOL, "'%s': %s", cur_cmd(st), why);
}

/* ---- commands ----------------------------------------------------------------------- */

static void on_timeout(uv_timer_t *t)
{
    tx_state *st = t->data;
    if (st->closing || !st->busy || st->ph == PH_DONE) return;
    if (st->ph == PH_CONNECT && st->attempts <= st->dev->retries) {
        st->reconnect = 1; /* a fresh connection once the old one is closed */
        close_tcp(st);
        return;
    }
    if (st->ph == PH_QUERY && st->unmatched > 0) {
        protocol_error(st, "no reply line matched the expected pattern");
        return;
    }
    finish(st, AG_POLL_TIMEOUT, "%s: no answer within %lld ms",
           st->ph == PH_QUERY ? cur_cmd(st) : "connect", (long long)st->dev->timeout_ms);
}

static void arm_timer(tx_state *st)
{
    int64_t ms = st->dev->timeout_ms > 0 ? st->dev->timeout_ms : 2000;
    uv_timer_start(&st->timer_h, on_timeout, (uint64_t)ms, 0);
}

/* The socket failed (read error, EOF, write error). */
static void connection_lost(tx_state *st, int err)
{
    if (st->closing) return;
    int querying = st->busy && st->ph == PH_QUERY;
    if (querying && st->reused && !st->got_line) {
        /* The device dropped the idle connection before this poll: connect once more. */
        st->reused = 0;
        st->reconnect = 1;
        uv_timer_stop(&st->timer_h);
        st->ph = PH_CONNECT;
        close_tcp(st);
    } else if (querying) {
        snprintf(st->last_unmatched, sizeof st->last_unmatched, "(%s)", uv_err_name(err));
        protocol_error(st, err == UV_EOF ? "connection closed by the device" : "connection failed");
    } else {
        /* idle, or between the last reply and the deferred done: the next poll connects
         * again (a done still due comes from the timer or from on_tcp_closed, once) */
        close_tcp(st);
    }
}

static void on_written(uv_write_t *req, int status)
{
    tx_state *st = req->handle->data;
    free(req);
    if (status < 0 && status != UV_ECANCELED) connection_lost(st, status);
}

static void send_cmd(tx_state *st)
{
    const ag_text_cmd *c = &st->tp.cmds[st->cmd];
    size_t sl = strlen(c->send), el = strlen(st->tp.line_end);
    wreq *w = malloc(sizeof *w + sl + el);
    if (!w) {
        finish(st, AG_POLL_PROTOCOL, "out of memory");
        return;
    }
    memcpy(w->buf, c->send, sl);
    memcpy(w->buf + sl, st->tp.line_end, el);
    st->unmatched = 0;
    st->last_unmatched[0] = '\0';
    uv_buf_t b = uv_buf_init(w->buf, (unsigned)(sl + el));
    int rc = uv_write(&w->req, (uv_stream_t *)&st->tcp, &b, 1, on_written);
    if (rc < 0) {
        free(w);
        connection_lost(st, rc);
        return;
    }
    arm_timer(st);
}

static void send_inventory(tx_state *st)
{
    if (!st->sink.inventory) return;
    cm_device_info info = {0};
    info.id = st->dev->id;
    info.screen = st->dev->screen;
    info.kind = st->dev->kind ? st->dev->kind : st->prof->kind;
    info.vendor = st->inv[INV_VENDOR][0] ? st->inv[INV_VENDOR] : st->prof->vendor;
    info.model = st->inv[INV_MODEL][0] ? st->inv[INV_MODEL] : NULL;
    info.serial = st->inv[INV_SERIAL][0] ? st->inv[INV_SERIAL] : NULL;
    info.firmware = st->inv[INV_FIRMWARE][0] ? st->inv[INV_FIRMWARE] : NULL;
    info.profile = st->prof->name;
    st->sink.inventory(st->sink.ud, st->dev, &info);
}

static void take_value(tx_state *st, const ag_text_cmd *c, const char *v)
{
    if (c->identity) {
        for (int i = 0; i < INV_N; i++)
            if (strcmp(c->identity, inv_fields[i]) == 0)
                snprintf(st->inv[i], sizeof st->inv[i], "%s", v);
        return;
    }
    ag_raw raw = {AG_RAW_STR, 0, v, strlen(v)};
    double x;
    char why[160];
    int rc = ag_value_map_apply(&c->map, &raw, &x, why, sizeof why);
    if (rc == 0) {
        st->sink.point(st->sink.ud, st->dev, c->metric, c->unit, NULL, 0, st->ts_ms, x);
    } else if (rc < 0) {
        char key[CM_MAX_NAME + 32];
        snprintf(key, sizeof key, "text-value %s %zu", st->dev->id, st->cmd);
        cm_log_limited(key, LOG_EVERY_S, CM_LOG_WARN, "text: device %s: '%s': %s (no sample)",
                       st->dev->id, c->send, why);
    }
}

static void start_commands(tx_state *st)
{
    st->ph = PH_QUERY;
    st->cmd = 0;
    send_cmd(st);
}

static void on_line(tx_state *st, const char *line, size_t len)
{
    st->got_line = 1;
    const ag_text_cmd *c = &st->tp.cmds[st->cmd];
    if (!ag_text_match(c, line, len, st->val, sizeof st->val)) {
        st->unmatched++; /* unsolicited or foreign: skipped until the wait ends */
        shown(line, len, st->last_unmatched, sizeof st->last_unmatched);
        return;
    }
    uv_timer_stop(&st->timer_h);
    take_value(st, c, st->val);
    if (++st->cmd >= st->tp.ncmds) {
        send_inventory(st);
        finish(st, AG_POLL_OK, NULL);
        return;
    }
    send_cmd(st);
}

/* ---- the socket --------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    tx_state *st = h->data;
    *buf = uv_buf_init(st->rbuf, sizeof st->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tx_state *st = s->data;
    if (st->closing || nread == 0) return;
    if (nread < 0) {
        connection_lost(st, (int)nread);
        return;
    }
    for (ssize_t i = 0; i < nread && !st->closing; i++) {
        char ch = buf->base[i];
        if (ch == '\r' || ch == '\n') {
            size_t len = st->linelen;
            int dropped = st->overflow;
            st->linelen = 0;
            st->overflow = 0;
            if (len == 0 || dropped) continue; /* CR LF, empty lines, the end of a long line */
            if (st->busy && st->ph == PH_QUERY) on_line(st, st->line, len);
            continue; /* lines outside a poll are unsolicited: dropped */
        }
        if (st->overflow) continue;
        if (st->linelen >= AG_TEXT_MAX_LINE) {
            st->overflow = 1;
            st->linelen = 0;
            continue;
        }
        st->line[st->linelen++] = ch;
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    tx_state *st = req->data;
    if (status == UV_ECANCELED || st->closing || st->ph != PH_CONNECT) return;
    if (status < 0) {
        finish(st, AG_POLL_REFUSED, "cannot connect to %s port %d: %s", st->dev->address, st->port,
               uv_strerror(status));
        return;
    }
    uv_timer_stop(&st->timer_h);
    st->linelen = 0;
    st->overflow = 0;
    int rc = uv_read_start((uv_stream_t *)&st->tcp, on_alloc, on_read);
    if (rc < 0) {
        finish(st, AG_POLL_REFUSED, "cannot read: %s", uv_strerror(rc));
        return;
    }
    st->connected = 1;
    start_commands(st);
}

static void connect_now(tx_state *st)
{
    st->attempts++;
    st->ph = PH_CONNECT;
    if (uv_tcp_init(st->loop, &st->tcp) != 0) {
        finish(st, AG_POLL_REFUSED, "cannot create a socket");
        return;
    }
    st->tcp.data = st;
    st->tcp_open = 1;
    st->conn.data = st;
    int rc = uv_tcp_connect(&st->conn, &st->tcp, (const struct sockaddr *)&st->addr, on_connect);
    if (rc < 0) {
        finish(st, AG_POLL_REFUSED, "cannot connect to %s port %d: %s", st->dev->address, st->port,
               uv_strerror(rc));
        return;
    }
    arm_timer(st);
}

static void set_port(tx_state *st)
{
    if (st->addr.ss_family == AF_INET)
        ((struct sockaddr_in *)&st->addr)->sin_port = htons((uint16_t)st->port);
    else
        ((struct sockaddr_in6 *)&st->addr)->sin6_port = htons((uint16_t)st->port);
}

static void on_gai(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    tx_state *st = req->data;
    st->gai_pending = 0;
    if (st->closing) {
        if (res) uv_freeaddrinfo(res);
        if (--st->refs == 0) free(st);
        return;
    }
    if (status < 0 || !res) {
        finish(st, AG_POLL_REFUSED, "cannot resolve %s: %s", st->dev->address, uv_strerror(status));
        if (res) uv_freeaddrinfo(res);
        return;
    }
    const struct addrinfo *ai = res; /* prefer IPv4, as the other drivers do */
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            ai = a;
            break;
        }
    memset(&st->addr, 0, sizeof st->addr);
    memcpy(&st->addr, ai->ai_addr,
           ai->ai_addrlen < sizeof st->addr ? ai->ai_addrlen : sizeof st->addr);
    uv_freeaddrinfo(res);
    set_port(st);
    connect_now(st);
}

/* A literal IPv4/IPv6 address (IPv6 optionally in brackets) into st->addr. 1 or 0. */
static int literal_addr(tx_state *st)
{
    const char *a = st->dev->address;
    char buf[64];
    size_t len = strlen(a);
    if (len > 2 && a[0] == '[' && a[len - 1] == ']' && len - 2 < sizeof buf) {
        memcpy(buf, a + 1, len - 2);
        buf[len - 2] = '\0';
        a = buf;
    }
    memset(&st->addr, 0, sizeof st->addr);
    if (uv_ip4_addr(a, st->port, (struct sockaddr_in *)&st->addr) == 0) return 1;
    if (uv_ip6_addr(a, st->port, (struct sockaddr_in6 *)&st->addr) == 0) return 1;
    return 0;
}

static void begin_connect(tx_state *st)
{
    if (literal_addr(st)) {
        connect_now(st);
        return;
    }
    st->ph = PH_RESOLVE;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = uv_getaddrinfo(st->loop, &st->gai, on_gai, st->dev->address, NULL, &hints);
    if (rc != 0) {
        finish(st, AG_POLL_REFUSED, "cannot resolve %s: %s", st->dev->address, uv_strerror(rc));
        return;
    }
    st->gai_pending = 1;
}

/* ---- the driver interface ----------------------------------------------------------- */

static int drv_open(uv_loop_t *loop, const ag_device *dev, const ag_profile_set *profiles,
                    const ag_sink *sink, void **state, char *err, size_t errlen)
{
    *state = NULL;
    if (!dev || !dev->id || !dev->address || !dev->address[0] || !sink || !sink->point ||
        !sink->done) {
        snprintf(err, errlen, "text: device without id, address or sink");
        return -1;
    }
    if (!dev->profile) {
        snprintf(err, errlen, "device %s: protocol text needs a profile", dev->id);
        return -1;
    }
    const ag_profile *prof = profiles ? ag_profile_find(profiles, dev->profile) : NULL;
    if (!prof) {
        snprintf(err, errlen, "device %s: profile '%s' not found", dev->id, dev->profile);
        return -1;
    }
    if (!prof->protocol || strcmp(prof->protocol, "text") != 0 || !prof->doc) {
        snprintf(err, errlen, "device %s: profile '%s' is not a text profile", dev->id,
                 dev->profile);
        return -1;
    }
    tx_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (ag_text_profile_parse(prof->doc, prof->path ? prof->path : prof->name, &st->tp, err,
                              errlen) < 0) {
        free(st);
        return -1;
    }
    st->port = dev->port > 0 ? dev->port : st->tp.port;
    if (st->port < 1 || st->port > 65535) {
        snprintf(err, errlen, "device %s: no port (neither in the device nor in profile '%s')",
                 dev->id, prof->name);
        ag_text_profile_free(&st->tp);
        free(st);
        return -1;
    }
    st->loop = loop;
    st->dev = dev;
    st->prof = prof;
    st->sink = *sink;
    uv_timer_init(loop, &st->timer_h);
    uv_timer_init(loop, &st->done_h);
    st->timer_h.data = st;
    st->done_h.data = st;
    st->gai.data = st;
    *state = st;
    return 0;
}

static int drv_poll(void *state)
{
    tx_state *st = state;
    if (!st || st->busy || st->closing) return -1;
    st->busy = 1;
    st->status = AG_POLL_OK;
    st->ts_ms = cm_now_ms();
    st->attempts = 0;
    st->reconnect = 0;
    st->got_line = 0;
    st->cmd = 0;
    for (int i = 0; i < INV_N; i++)
        st->inv[i][0] = '\0';
    if (st->connected && st->tcp_open && !uv_is_closing((uv_handle_t *)&st->tcp)) {
        st->reused = 1;
        start_commands(st); /* its done is deferred like every other */
        return 0;
    }
    st->reused = 0;
    if (st->tcp_open) { /* the old socket is still closing: connect once it is gone */
        st->ph = PH_CONNECT;
        st->reconnect = 1;
        return 0;
    }
    begin_connect(st);
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    tx_state *st = h->data;
    if (--st->refs == 0) free(st);
}

static void drv_close(void *state)
{
    tx_state *st = state;
    if (!st || st->closing) return;
    st->closing = 1;
    ag_text_profile_free(&st->tp);
    st->refs = 2;
    if (st->gai_pending) {
        st->refs++;
        uv_cancel((uv_req_t *)&st->gai); /* on_gai still runs, with UV_ECANCELED */
    }
    if (st->tcp_open) {
        st->refs++;
        if (!uv_is_closing((uv_handle_t *)&st->tcp))
            uv_close((uv_handle_t *)&st->tcp, on_tcp_closed);
    }
    uv_timer_stop(&st->timer_h);
    uv_timer_stop(&st->done_h);
    uv_close((uv_handle_t *)&st->timer_h, on_handle_closed);
    uv_close((uv_handle_t *)&st->done_h, on_handle_closed);
}

const ag_driver_ops ag_text_driver = {
    .name = "text",
    .open = drv_open,
    .poll = drv_poll,
    .close = drv_close,
};

/* text.c — the driver for command/reply protocols over TCP, line-based (Dolby CP750/CP850/CP950,
 * USL) or binary (NEC NC-series): the profile's commands (text_profile.h) sent one at a time on
 * one persistent connection.
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
 * the meantime is replaced once, transparently. Lines longer than AG_TEXT_MAX_LINE are dropped.
 *
 * Binary profiles (NEC NC-series style, text_profile.h): each command's request bytes go out and
 * exactly one reply frame answers it. Its length comes from the profile (fixed, or a header
 * byte); a bad checksum, unexpected first bytes, the device's error reply, bytes after the
 * frame, a frame too short for a value, or a partial frame when the wait ends all end the poll
 * as "protocol", naming device and command. The socket plumbing is tcpconn.h's. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "log.h"
#include "tcpconn.h"
#include "text_profile.h"
#include "timeutil.h"

#define LOG_EVERY_S 600

typedef enum { PH_IDLE, PH_CONNECT, PH_QUERY, PH_DONE } phase;

enum { INV_MODEL, INV_SERIAL, INV_FIRMWARE, INV_VENDOR, INV_N };
static const char *const inv_fields[INV_N] = {"model", "serial", "firmware", "vendor"};

typedef struct tx_state {
    const ag_device *dev;
    const ag_profile *prof;
    ag_sink sink;
    ag_text_profile tp;
    int port;

    ag_tcpconn *conn; /* the socket, the wait timer and the deferred done() */
    int busy, reconnect;
    int reused;   /* this poll started on a connection opened by an earlier poll */
    int got_line; /* a line (or reply bytes) arrived during this poll */

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
    int overflow;                        /* discarding the rest of a too-long line */
    unsigned char bin[AG_BIN_MAX_REPLY]; /* the binary reply so far */
    size_t binlen;
    char val[AG_TEXT_MAX_LINE + 1];
    char inv[INV_N][CM_MAX_VALUE];
} tx_state;

/* ---- finishing ---------------------------------------------------------------------- */

static void deliver_done(tx_state *st)
{
    if (!st->busy) return;
    ag_tcpconn_undefer(st->conn); /* exactly one done, even when the socket also closed */
    st->busy = 0;
    st->ph = PH_IDLE;
    /* The sink may call poll() or close() from here: nothing of st is touched after. */
    st->sink.done(st->sink.ud, st->dev, st->status, st->status == AG_POLL_OK ? NULL : st->detail);
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
    ag_tcpconn_stop_wait(st->conn);
    if (status != AG_POLL_OK && ag_tcpconn_busy(st->conn))
        ag_tcpconn_disconnect(st->conn); /* a fresh connection next time; done follows */
    else
        ag_tcpconn_defer(st->conn);
}

static const char *cur_cmd(const tx_state *st)
{
    if (st->cmd >= st->tp.ncmds) return "?";
    const ag_text_cmd *c = &st->tp.cmds[st->cmd];
    return c->send ? c->send : c->hex;
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
    cm_log_limited(key, LOG_EVERY_S, CM_LOG_WARN, "text: device %s: '%s': %s (%s \"%s\")",
                   st->dev->id, cur_cmd(st), why, st->tp.binary ? "received" : "last line",
                   st->last_unmatched);
    finish(st, AG_POLL_PROTOCOL, "'%s': %s", cur_cmd(st), why);
}

/* ---- commands ----------------------------------------------------------------------- */

static void connect_now(tx_state *st);

static void on_timeout(void *ud)
{
    tx_state *st = ud;
    if (!st->busy || st->ph != PH_QUERY) return;
    if (st->tp.binary && st->binlen > 0) {
        char why[96];
        size_t need = ag_bin_frame_len(&st->tp.cmds[st->cmd].reply, st->bin, st->binlen);
        if (need)
            snprintf(why, sizeof why, "short reply: %zu of %zu bytes", st->binlen, need);
        else
            snprintf(why, sizeof why, "short reply: %zu bytes, no length yet", st->binlen);
        protocol_error(st, why);
        return;
    }
    if (st->unmatched > 0) {
        protocol_error(st, "no reply line matched the expected pattern");
        return;
    }
    finish(st, AG_POLL_TIMEOUT, "%s: no answer within %lld ms", cur_cmd(st),
           (long long)st->dev->timeout_ms);
}

/* The socket failed while a command waited (read error, EOF, write error). */
static void lost_in_query(tx_state *st, int err)
{
    if (st->reused && !st->got_line) {
        /* The device dropped the idle connection before this poll: connect once more. */
        st->reused = 0;
        if (ag_tcpconn_busy(st->conn)) {
            st->ph = PH_CONNECT;
            st->reconnect = 1;
            ag_tcpconn_stop_wait(st->conn);
            ag_tcpconn_disconnect(st->conn);
        } else {
            connect_now(st);
        }
        return;
    }
    snprintf(st->last_unmatched, sizeof st->last_unmatched, "(%s)", uv_err_name(err));
    protocol_error(st, err == UV_EOF ? "connection closed by the device" : "connection failed");
}

static void send_cmd(tx_state *st)
{
    const ag_text_cmd *c = &st->tp.cmds[st->cmd];
    st->unmatched = 0;
    st->last_unmatched[0] = '\0';
    st->binlen = 0;
    int rc;
    if (c->bin) {
        rc = ag_tcpconn_write(st->conn, c->bin, c->binlen);
    } else {
        char buf[AG_TEXT_MAX_SEND + sizeof st->tp.line_end];
        size_t sl = strlen(c->send), el = strlen(st->tp.line_end);
        if (sl + el > sizeof buf) sl = sizeof buf - el; /* cannot happen: send is bounded */
        memcpy(buf, c->send, sl);
        memcpy(buf + sl, st->tp.line_end, el);
        rc = ag_tcpconn_write(st->conn, buf, sl + el);
    }
    if (rc < 0) {
        lost_in_query(st, rc);
        return;
    }
    ag_tcpconn_wait(st->conn, st->dev->timeout_ms);
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

static void take_identity(tx_state *st, const char *field, const char *v)
{
    for (int i = 0; i < INV_N; i++)
        if (strcmp(field, inv_fields[i]) == 0) snprintf(st->inv[i], sizeof st->inv[i], "%s", v);
}

/* A raw value through its map into a sample (or a rate-limited warning and no sample). */
static void take_sample(tx_state *st, const char *metric, const char *unit, const cm_label *labels,
                        size_t nlabels, const ag_value_map *map, const ag_raw *raw)
{
    double x;
    char why[160];
    int rc = ag_value_map_apply(map, raw, &x, why, sizeof why);
    if (rc == 0) {
        st->sink.point(st->sink.ud, st->dev, metric, unit, labels, nlabels, st->ts_ms, x);
    } else if (rc < 0) {
        char key[CM_MAX_NAME + 32];
        snprintf(key, sizeof key, "text-value %s %zu %s", st->dev->id, st->cmd, metric);
        cm_log_limited(key, LOG_EVERY_S, CM_LOG_WARN, "text: device %s: '%s': %s: %s (no sample)",
                       st->dev->id, cur_cmd(st), metric, why);
    }
}

static void take_value(tx_state *st, const ag_text_cmd *c, const char *v)
{
    if (c->identity) {
        take_identity(st, c->identity, v);
        return;
    }
    ag_raw raw = {AG_RAW_STR, 0, v, strlen(v)};
    take_sample(st, c->metric, c->unit, NULL, 0, &c->map, &raw);
}

/* The command was answered: the next one, or the end of the poll. */
static void next_cmd(tx_state *st)
{
    if (++st->cmd >= st->tp.ncmds) {
        send_inventory(st);
        finish(st, AG_POLL_OK, NULL);
        return;
    }
    send_cmd(st);
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
    ag_tcpconn_stop_wait(st->conn);
    take_value(st, c, st->val);
    next_cmd(st);
}

/* One whole binary frame answered the command; extra = bytes that came after it. */
static void on_frame(tx_state *st, size_t extra)
{
    const ag_text_cmd *c = &st->tp.cmds[st->cmd];
    char why[192];
    ag_tcpconn_stop_wait(st->conn);
    int rc = ag_bin_check(&c->reply, st->bin, st->binlen, why, sizeof why);
    if (rc != 0) {
        protocol_error(st, why);
        return;
    }
    if (extra) {
        snprintf(why, sizeof why, "%zu unexpected bytes after the %zu-byte reply", extra,
                 st->binlen);
        protocol_error(st, why);
        return;
    }
    double num;
    size_t body = st->binlen - (c->reply.sum8 ? 1 : 0); /* values never read the checksum */
    for (size_t i = 0; i < c->nvalues; i++)             /* all present, or no sample at all */
        if (ag_bin_value_get(&c->values[i], st->bin, body, &num, st->val, sizeof st->val, why,
                             sizeof why) < 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s: %s",
                     c->values[i].metric ? c->values[i].metric : c->values[i].identity, why);
            protocol_error(st, msg);
            return;
        }
    for (size_t i = 0; i < c->nvalues; i++) {
        const ag_bin_value *v = &c->values[i];
        ag_bin_value_get(v, st->bin, body, &num, st->val, sizeof st->val, why, sizeof why);
        if (v->identity) {
            take_identity(st, v->identity, st->val);
            continue;
        }
        ag_raw raw = {AG_RAW_NUM, num, NULL, 0};
        if (v->type == AG_BIN_ASCII) raw = (ag_raw){AG_RAW_STR, 0, st->val, strlen(st->val)};
        take_sample(st, v->metric, v->unit, v->labels, v->nlabels, &v->map, &raw);
    }
    next_cmd(st);
}

/* ---- the socket --------------------------------------------------------------------- */

static void on_bin_data(tx_state *st, const unsigned char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!st->busy || st->ph != PH_QUERY) return; /* outside a poll: dropped */
        const ag_bin_reply *r = &st->tp.cmds[st->cmd].reply;
        st->got_line = 1;
        st->bin[st->binlen++] = buf[i];
        ag_bin_hex(st->bin, st->binlen, 12, st->last_unmatched, sizeof st->last_unmatched);
        size_t need = ag_bin_frame_len(r, st->bin, st->binlen);
        if (need && st->binlen >= need) {
            on_frame(st, n - i - 1);
            return; /* what followed the frame was reported as extra bytes */
        }
        if (st->binlen >= sizeof st->bin) { /* cannot happen: frames are bounded */
            protocol_error(st, "reply longer than the reply buffer");
            return;
        }
    }
}

static void on_data(void *ud, const char *buf, size_t n)
{
    tx_state *st = ud;
    if (st->tp.binary) {
        on_bin_data(st, (const unsigned char *)buf, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = buf[i];
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

static void on_lost(void *ud, int err, ag_tcp_lost how)
{
    (void)how;
    tx_state *st = ud;
    if (st->reconnect) { /* a poll waited for this socket to go */
        st->reconnect = 0;
        connect_now(st);
        return;
    }
    if (st->busy && st->ph == PH_QUERY) {
        lost_in_query(st, err);
        return;
    }
    /* idle: the next poll connects again; after the last reply: done is due now */
    if (st->busy && st->ph == PH_DONE) deliver_done(st);
}

static void on_closed(void *ud)
{
    tx_state *st = ud;
    if (st->reconnect) {
        st->reconnect = 0;
        connect_now(st);
        return;
    }
    if (st->busy && st->ph == PH_DONE) deliver_done(st);
}

static void on_deferred(void *ud)
{
    deliver_done(ud);
}

static void on_connect(void *ud, int status, int resolving)
{
    tx_state *st = ud;
    if (!st->busy || st->ph != PH_CONNECT) return;
    if (status == UV_ETIMEDOUT && !resolving) {
        if (st->attempts <= st->dev->retries) {
            connect_now(st); /* a fresh connection */
            return;
        }
        finish(st, AG_POLL_TIMEOUT, "connect: no answer within %lld ms",
               (long long)st->dev->timeout_ms);
        return;
    }
    if (status < 0) {
        if (resolving)
            finish(st, AG_POLL_REFUSED, "cannot resolve %s: %s", st->dev->address,
                   uv_strerror(status));
        else
            finish(st, AG_POLL_REFUSED, "cannot connect to %s port %d: %s", st->dev->address,
                   st->port, uv_strerror(status));
        return;
    }
    st->linelen = 0;
    st->overflow = 0;
    st->binlen = 0;
    start_commands(st);
}

static void connect_now(tx_state *st)
{
    st->attempts++;
    st->ph = PH_CONNECT;
    if (ag_tcpconn_connect(st->conn, st->dev->timeout_ms) < 0)
        finish(st, AG_POLL_REFUSED, "cannot connect to %s port %d: a socket is still open",
               st->dev->address, st->port);
}

static const ag_tcpconn_ops conn_ops = {
    .on_connect = on_connect,
    .on_data = on_data,
    .on_lost = on_lost,
    .on_timeout = on_timeout,
    .on_closed = on_closed,
    .on_deferred = on_deferred,
};

/* ---- the driver interface ----------------------------------------------------------- */
static int drv_open(uv_loop_t *loop, const ag_device *dev, const ag_profile_set *profiles,
                    const ag_sink *sink, void **state, char *err, size_t errlen)
{
    *state = NULL;
    const ag_profile *prof;
    if (ag_driver_check_device("text", dev, sink, 0, err, errlen) < 0 ||
        ag_driver_profile("text", dev, profiles, NULL, &prof, err, errlen) < 0)
        return -1;
    if (!prof->doc) {
        snprintf(err, errlen, "device %s: profile '%s' has no text section", dev->id,
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
    st->dev = dev;
    st->prof = prof;
    st->sink = *sink;
    st->conn = ag_tcpconn_new(loop, dev->address, st->port, &conn_ops, st);
    if (!st->conn) {
        snprintf(err, errlen, "out of memory");
        ag_text_profile_free(&st->tp);
        free(st);
        return -1;
    }
    *state = st;
    return 0;
}

static int drv_poll(void *state)
{
    tx_state *st = state;
    if (!st || st->busy) return -1;
    st->busy = 1;
    st->status = AG_POLL_OK;
    st->ts_ms = cm_now_ms();
    st->attempts = 0;
    st->reconnect = 0;
    st->got_line = 0;
    st->cmd = 0;
    for (int i = 0; i < INV_N; i++)
        st->inv[i][0] = '\0';
    if (ag_tcpconn_connected(st->conn)) {
        st->reused = 1;
        start_commands(st); /* its done is deferred like every other */
        return 0;
    }
    st->reused = 0;
    if (ag_tcpconn_busy(st->conn)) { /* the old socket is still closing: connect once it is gone */
        st->ph = PH_CONNECT;
        st->reconnect = 1;
        return 0;
    }
    connect_now(st);
    return 0;
}

static void drv_close(void *state)
{
    tx_state *st = state;
    if (!st) return;
    ag_tcpconn_free(st->conn); /* no callback from it afterwards */
    ag_text_profile_free(&st->tp);
    free(st);
}

const ag_driver_ops ag_text_driver = {
    .name = "text",
    .open = drv_open,
    .poll = drv_poll,
    .close = drv_close,
};

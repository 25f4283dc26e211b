/* pjlink.c — the PJLink (Class 1 and 2) driver: one TCP connection per poll on the libuv loop.
 *
 * A poll: resolve and connect (tcpconn.h) → read the greeting →
 * send one query at a time and wait for its reply ("%1CLSS ?" first, prefixed with the MD5
 * digest when the projector asks for authentication) → class 1 queries → class 2 queries
 * when CLSS says 2 → inventory → close the socket → done (from the handle's close callback
 * or a zero-delay timer, never from inside poll()).
 *
 * Every wait (connect, greeting, reply) is bounded by timeout_ms. Timeouts before the
 * greeting are retried with a fresh connection `retries` times; once queries are running a
 * timeout ends the poll. Samples (PJLink → metrics.md):
 *   POWR 0 → power_state 4 standby, 1 → 1 on, 2 → 3 cooling, 3 → 2 warming; ERR4 → 5 fault
 *   ERST → error_status{component}, LAMP → light_source_hours{lamp}, light_source_on{lamp},
 *   INPT → input_source (pj_value_input), AVMT → audio_mute, video_mute, FILT → filter_hours.
 * ERR1 skips the metric quietly; ERR2/ERR3 skip it with a rate-limited warning; ERR4 is
 * logged as an error (POWR: power_state 5). A malformed reply ends the poll as "protocol". */
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "log.h"
#include "pjlink_parse.h"
#include "tcpconn.h"
#include "timeutil.h"

#define LOG_EVERY_S 600
#define DEFAULT_PROFILE "pjlink-class1-2"

typedef enum { PH_IDLE, PH_CONNECT, PH_GREETING, PH_QUERY, PH_DONE } phase;

typedef enum {
    Q_CLSS,
    Q_POWR,
    Q_ERST,
    Q_LAMP,
    Q_INPT,
    Q_AVMT,
    Q_INF1,
    Q_INF2,
    Q_NAME,
    Q_SNUM,
    Q_SVER,
    Q_FILT,
    Q_N
} query_id;

static const struct {
    char cls;
    const char *cmd;
} queries[Q_N] = {{'1', "CLSS"}, {'1', "POWR"}, {'1', "ERST"}, {'1', "LAMP"},
                  {'1', "INPT"}, {'1', "AVMT"}, {'1', "INF1"}, {'1', "INF2"},
                  {'1', "NAME"}, {'2', "SNUM"}, {'2', "SVER"}, {'2', "FILT"}};
#define FIRST_CLASS2 Q_SNUM

static const char *const components[6] = {"fan", "lamp", "temperature", "cover", "filter", "other"};

typedef struct pj_state {
    uv_loop_t *loop;
    const ag_device *dev;
    const ag_profile *prof; /* for inventory: profile name and fallback vendor; may be NULL */
    ag_sink sink;

    ag_tcpconn *conn; /* the socket, the wait timer and the deferred done() */
    int busy, reconnect;

    phase ph;
    int attempts;
    int64_t ts_ms;
    ag_poll_status status;
    char detail[256];

    char line[PJ_MAX_PACKET + 1];
    size_t linelen;
    char digest[33]; /* sent before the first query; "" when no authentication */
    int cls;
    query_id q;
    char inv_vendor[CM_MAX_VALUE], inv_model[CM_MAX_VALUE], inv_name[CM_MAX_VALUE],
        inv_serial[CM_MAX_VALUE], inv_firmware[CM_MAX_VALUE];
} pj_state;

/* ---- finishing ---------------------------------------------------------------------- */

static void deliver_done(pj_state *st)
{
    if (!st->busy) return;
    ag_tcpconn_undefer(st->conn); /* exactly one done */
    st->busy = 0;
    st->ph = PH_IDLE;
    /* The sink may call poll() or close() from here: nothing of st is touched after. */
    st->sink.done(st->sink.ud, st->dev, st->status, st->status == AG_POLL_OK ? NULL : st->detail);
}

static void connect_now(pj_state *st);

static void finish(pj_state *st, ag_poll_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(pj_state *st, ag_poll_status status, const char *fmt, ...)
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
    if (ag_tcpconn_busy(st->conn))
        ag_tcpconn_disconnect(st->conn); /* done follows from on_closed */
    else
        ag_tcpconn_defer(st->conn);
}

static const char *cur_cmd(const pj_state *st)
{
    return st->ph == PH_QUERY ? queries[st->q].cmd : "greeting";
}

/* Malformed input from the device: a rate-limited warning naming device and command. */
static void protocol_error(pj_state *st, const char *why, const char *line, size_t len)
{
    char shown[48];
    pj_value_text(line, len, shown, sizeof shown);
    char key[CM_MAX_NAME + 32];
    snprintf(key, sizeof key, "pjlink-proto %s %s", st->dev->id, cur_cmd(st));
    cm_log_limited(key, LOG_EVERY_S, CM_LOG_WARN, "pjlink: device %s: %s: %s (\"%s\")", st->dev->id,
                   cur_cmd(st), why, shown);
    finish(st, AG_POLL_PROTOCOL, "%s: %s", cur_cmd(st), why);
}

/* ---- waiting and sending ------------------------------------------------------------ */

static void on_timeout(void *ud)
{
    pj_state *st = ud;
    if (!st->busy || st->ph == PH_DONE) return;
    if (st->ph == PH_GREETING && st->attempts <= st->dev->retries) {
        st->reconnect = 1; /* a fresh connection once the old one is closed */
        ag_tcpconn_disconnect(st->conn);
        return;
    }
    finish(st, AG_POLL_TIMEOUT, "%s: no answer within %lld ms", cur_cmd(st),
           (long long)st->dev->timeout_ms);
}

static void arm_timer(pj_state *st)
{
    ag_tcpconn_wait(st->conn, st->dev->timeout_ms);
}

static void send_query(pj_state *st)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%s%%%c%s ?\r", st->digest, queries[st->q].cls,
                     queries[st->q].cmd);
    memset(st->digest, 0, sizeof st->digest); /* only before the first query */
    st->linelen = 0;
    int rc = ag_tcpconn_write(st->conn, buf, (size_t)n);
    if (rc < 0) {
        finish(st, AG_POLL_REFUSED, "%s: write failed: %s", cur_cmd(st), uv_strerror(rc));
        return;
    }
    arm_timer(st);
}

/* ---- samples ------------------------------------------------------------------------ */

static void point(pj_state *st, const char *metric, const char *unit, const char *lk,
                  const char *lv, double v)
{
    cm_label l = {lk, lv};
    st->sink.point(st->sink.ud, st->dev, metric, unit, lk ? &l : NULL, lk ? 1 : 0, st->ts_ms, v);
}

static void send_inventory(pj_state *st)
{
    if (!st->sink.inventory) return;
    cm_device_info info = {0};
    info.id = st->dev->id;
    info.screen = st->dev->screen;
    info.kind = st->dev->kind ? st->dev->kind : (st->prof ? st->prof->kind : "projector");
    info.vendor = st->inv_vendor[0] ? st->inv_vendor : (st->prof ? st->prof->vendor : NULL);
    info.model = st->inv_model[0] ? st->inv_model : NULL;
    info.serial = st->inv_serial[0] ? st->inv_serial : NULL;
    info.firmware = st->inv_firmware[0] ? st->inv_firmware : NULL;
    info.profile = st->prof ? st->prof->name : NULL;
    st->sink.inventory(st->sink.ud, st->dev, &info);
}

/* Turn a value reply into samples. 0, or -1 when the value is malformed. */
static int take_value(pj_state *st, const char *v, size_t n)
{
    switch (st->q) {
    case Q_CLSS:
        return pj_value_class(v, n, &st->cls);
    case Q_POWR: {
        static const int map[4] = {4, 1, 3, 2};
        int code;
        if (pj_value_power(v, n, &code) < 0) return -1;
        point(st, "power_state", NULL, NULL, NULL, map[code]);
        return 0;
    }
    case Q_ERST: {
        int e[6];
        if (pj_value_errors(v, n, e) < 0) return -1;
        for (int i = 0; i < 6; i++)
            point(st, "error_status", NULL, "component", components[i], e[i]);
        return 0;
    }
    case Q_LAMP: {
        pj_lamp lamps[PJ_MAX_LAMPS];
        size_t nl;
        if (pj_value_lamps(v, n, lamps, PJ_MAX_LAMPS, &nl) < 0) return -1;
        for (size_t i = 0; i < nl; i++) {
            char idx[24];
            snprintf(idx, sizeof idx, "%zu", i + 1);
            point(st, "light_source_hours", "h", "lamp", idx, (double)lamps[i].hours);
            point(st, "light_source_on", NULL, "lamp", idx, lamps[i].on);
        }
        return 0;
    }
    case Q_INPT: {
        int in;
        if (pj_value_input(v, n, &in) < 0) return -1;
        point(st, "input_source", NULL, NULL, NULL, in);
        return 0;
    }
    case Q_AVMT: {
        int a, vid;
        if (pj_value_mute(v, n, &a, &vid) < 0) return -1;
        point(st, "audio_mute", NULL, NULL, NULL, a);
        point(st, "video_mute", NULL, NULL, NULL, vid);
        return 0;
    }
    case Q_FILT: {
        long h;
        if (pj_value_uint(v, n, &h) < 0) return -1;
        point(st, "filter_hours", "h", NULL, NULL, (double)h);
        return 0;
    }
    case Q_INF1:
        pj_value_text(v, n, st->inv_vendor, sizeof st->inv_vendor);
        return 0;
    case Q_INF2:
        pj_value_text(v, n, st->inv_model, sizeof st->inv_model);
        return 0;
    case Q_NAME:
        pj_value_text(v, n, st->inv_name, sizeof st->inv_name);
        return 0;
    case Q_SNUM:
        pj_value_text(v, n, st->inv_serial, sizeof st->inv_serial);
        return 0;
    case Q_SVER:
        pj_value_text(v, n, st->inv_firmware, sizeof st->inv_firmware);
        return 0;
    case Q_N:
        break;
    }
    return -1;
}

static void next_query(pj_state *st)
{
    st->q++;
    if (st->q == FIRST_CLASS2 && st->cls < 2) st->q = Q_N;
    if (st->q >= Q_N) {
        send_inventory(st);
        finish(st, AG_POLL_OK, NULL);
        return;
    }
    send_query(st);
}

static void device_error(pj_state *st, pj_kind k)
{
    static const char *const what[] = {"", "", "ERR2 (out of parameter)",
                                       "ERR3 (unavailable at this time)",
                                       "ERR4 (projector failure)"};
    char key[CM_MAX_NAME + 32];
    snprintf(key, sizeof key, "pjlink-err %s %s %d", st->dev->id, cur_cmd(st), (int)k);
    int fault = k == PJ_ERR4 && st->q == Q_POWR;
    cm_log_limited(key, LOG_EVERY_S, k == PJ_ERR4 ? CM_LOG_ERROR : CM_LOG_WARN,
                   "pjlink: device %s: %s: %s (%s)", st->dev->id, cur_cmd(st), what[k],
                   fault ? "power_state 5 fault" : "no sample");
}

static void on_reply(pj_state *st, const char *line, size_t len)
{
    pj_reply r;
    pj_kind k = pj_parse_reply(line, len, queries[st->q].cls, queries[st->q].cmd, &r);
    switch (k) {
    case PJ_BAD:
        protocol_error(st, r.why, line, len);
        return;
    case PJ_ERRA:
        finish(st, AG_POLL_AUTH, "authentication failed (wrong password)");
        return;
    case PJ_ERR1:
        break; /* not supported by this device: no sample */
    case PJ_ERR2:
    case PJ_ERR3:
        device_error(st, k);
        break;
    case PJ_ERR4:
        device_error(st, k);
        if (st->q == Q_POWR) point(st, "power_state", NULL, NULL, NULL, 5);
        break;
    case PJ_VALUE:
        if (take_value(st, r.value, r.len) < 0) {
            protocol_error(st, "malformed value", line, len);
            return;
        }
        break;
    }
    next_query(st);
}

static void on_greeting(pj_state *st, const char *line, size_t len)
{
    pj_greeting g;
    const char *why = NULL;
    int rc = pj_parse_greeting(line, len, &g, &why);
    if (rc == PJ_ERRA) {
        finish(st, AG_POLL_AUTH, "device refused the connection (PJLINK ERRA)");
        return;
    }
    if (rc < 0) {
        protocol_error(st, why, line, len);
        return;
    }
    st->digest[0] = '\0';
    if (g.auth) {
        const char *pw = st->dev->password;
        if (!pw || !pw[0]) {
            finish(st, AG_POLL_AUTH, "device asks for a password; none configured");
            return;
        }
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
                 EVP_DigestUpdate(ctx, g.random, strlen(g.random)) == 1 &&
                 EVP_DigestUpdate(ctx, pw, strlen(pw)) == 1 &&
                 EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 16;
        EVP_MD_CTX_free(ctx);
        if (!ok) {
            finish(st, AG_POLL_AUTH, "MD5 unavailable for authentication");
            return;
        }
        for (unsigned i = 0; i < 16; i++)
            snprintf(st->digest + 2 * i, 3, "%02x", md[i]);
    }
    st->ph = PH_QUERY;
    st->q = Q_CLSS;
    st->cls = 1;
    send_query(st);
}

/* ---- the socket --------------------------------------------------------------------- */

static void on_data(void *ud, const char *buf, size_t n)
{
    pj_state *st = ud;
    if (st->ph == PH_DONE) return;
    for (size_t i = 0; i < n && st->ph != PH_DONE; i++) {
        char c = buf[i];
        if (c == '\n' && st->linelen == 0) continue; /* tolerate CR LF */
        if (c == '\r') {
            ag_tcpconn_stop_wait(st->conn);
            st->line[st->linelen] = '\0';
            size_t len = st->linelen;
            st->linelen = 0;
            if (st->ph == PH_GREETING)
                on_greeting(st, st->line, len);
            else if (st->ph == PH_QUERY)
                on_reply(st, st->line, len);
            continue;
        }
        if (st->linelen + 1 >= PJ_MAX_PACKET) {
            protocol_error(st, "line longer than 136 bytes", st->line, st->linelen);
            return;
        }
        st->line[st->linelen++] = c;
    }
}

static void on_lost(void *ud, int err, ag_tcp_lost how)
{
    pj_state *st = ud;
    if (st->busy && st->ph == PH_DONE) { /* the socket went before finish() could close it */
        deliver_done(st);
        return;
    }
    if (!st->busy) return;
    if (how == AG_TCP_LOST_WRITE)
        finish(st, AG_POLL_REFUSED, "%s: write failed: %s", cur_cmd(st), uv_strerror(err));
    else if (st->ph == PH_GREETING)
        finish(st, AG_POLL_REFUSED, "connection closed before the greeting: %s", uv_strerror(err));
    else
        protocol_error(st, err == UV_EOF ? "connection closed by the device" : "connection reset",
                       "", 0);
}

static void on_closed(void *ud)
{
    pj_state *st = ud;
    if (st->reconnect) {
        st->reconnect = 0;
        connect_now(st);
        return;
    }
    deliver_done(st);
}

static void on_deferred(void *ud)
{
    deliver_done(ud);
}

static void on_connect(void *ud, int status, int resolving)
{
    pj_state *st = ud;
    if (!st->busy || st->ph != PH_CONNECT) return;
    if (status == UV_ETIMEDOUT && !resolving) {
        if (st->attempts <= st->dev->retries) {
            connect_now(st); /* a fresh connection */
            return;
        }
        finish(st, AG_POLL_TIMEOUT, "%s: no answer within %lld ms", cur_cmd(st),
               (long long)st->dev->timeout_ms);
        return;
    }
    if (status < 0) {
        if (resolving)
            finish(st, AG_POLL_REFUSED, "cannot resolve %s: %s", st->dev->address,
                   uv_strerror(status));
        else
            finish(st, AG_POLL_REFUSED, "cannot connect to %s port %d: %s", st->dev->address,
                   st->dev->port, uv_strerror(status));
        return;
    }
    st->ph = PH_GREETING;
    st->linelen = 0;
    arm_timer(st);
}

static void connect_now(pj_state *st)
{
    st->attempts++;
    st->ph = PH_CONNECT;
    if (ag_tcpconn_connect(st->conn, st->dev->timeout_ms) < 0)
        finish(st, AG_POLL_REFUSED, "cannot connect to %s port %d: a socket is still open",
               st->dev->address, st->dev->port);
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
    if (ag_driver_check_device("pjlink", dev, sink, 1, err, errlen) < 0 ||
        ag_driver_profile("pjlink", dev, profiles, DEFAULT_PROFILE, &prof, err, errlen) < 0)
        return -1;
    pj_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->loop = loop;
    st->dev = dev;
    st->prof = prof;
    st->sink = *sink;
    st->conn = ag_tcpconn_new(loop, dev->address, dev->port, &conn_ops, st);
    if (!st->conn) {
        free(st);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *state = st;
    return 0;
}

static int drv_poll(void *state)
{
    pj_state *st = state;
    if (!st || st->busy) return -1;
    st->busy = 1;
    st->status = AG_POLL_OK;
    st->ts_ms = cm_now_ms();
    st->attempts = 0;
    st->reconnect = 0;
    st->inv_vendor[0] = st->inv_model[0] = st->inv_name[0] = st->inv_serial[0] =
        st->inv_firmware[0] = '\0';
    connect_now(st);
    return 0;
}

static void drv_close(void *state)
{
    pj_state *st = state;
    if (!st) return;
    ag_tcpconn_free(st->conn); /* no callback from it afterwards */
    free(st);
}

const ag_driver_ops ag_pjlink_driver = {
    .name = "pjlink",
    .open = drv_open,
    .poll = drv_poll,
    .close = drv_close,
};

/* pjlink.c — the PJLink (Class 1 and 2) driver: one TCP connection per poll on the libuv loop.
 *
 * A poll: resolve (uv_getaddrinfo, skipped for literals) → connect → read the greeting →
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
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "log.h"
#include "pjlink_parse.h"
#include "timeutil.h"

#define LOG_EVERY_S 600
#define DEFAULT_PROFILE "pjlink-class1-2"

typedef enum { PH_IDLE, PH_RESOLVE, PH_CONNECT, PH_GREETING, PH_QUERY, PH_DONE } phase;

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

    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_timer_t timer_h; /* the current wait */
    uv_timer_t done_h;  /* deferred done() when no socket is open */
    uv_getaddrinfo_t gai;
    int tcp_open, gai_pending, busy, closing, refs, reconnect;

    struct sockaddr_storage addr;
    phase ph;
    int attempts;
    int64_t ts_ms;
    ag_poll_status status;
    char detail[256];

    char line[PJ_MAX_PACKET + 1];
    size_t linelen;
    char rbuf[512];
    char digest[33]; /* sent before the first query; "" when no authentication */
    int cls;
    query_id q;
    char inv_vendor[CM_MAX_VALUE], inv_model[CM_MAX_VALUE], inv_name[CM_MAX_VALUE],
        inv_serial[CM_MAX_VALUE], inv_firmware[CM_MAX_VALUE];
} pj_state;

typedef struct wreq {
    uv_write_t req;
    char buf[64];
} wreq;

/* ---- finishing ---------------------------------------------------------------------- */

static void deliver_done(pj_state *st)
{
    if (st->closing || !st->busy) return;
    st->busy = 0;
    st->ph = PH_IDLE;
    /* The sink may call poll() or close() from here: nothing of st is touched after. */
    st->sink.done(st->sink.ud, st->dev, st->status, st->status == AG_POLL_OK ? NULL : st->detail);
}

static void on_done_timer(uv_timer_t *t)
{
    deliver_done(t->data);
}

static void connect_now(pj_state *st);

static void on_tcp_closed(uv_handle_t *h)
{
    pj_state *st = h->data;
    st->tcp_open = 0;
    if (st->closing) {
        if (--st->refs == 0) free(st);
        return;
    }
    if (st->reconnect) {
        st->reconnect = 0;
        connect_now(st);
        return;
    }
    deliver_done(st);
}

static void close_tcp(pj_state *st)
{
    if (st->tcp_open && !uv_is_closing((uv_handle_t *)&st->tcp))
        uv_close((uv_handle_t *)&st->tcp, on_tcp_closed);
}

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
    uv_timer_stop(&st->timer_h);
    if (st->tcp_open)
        close_tcp(st); /* done follows from on_tcp_closed */
    else
        uv_timer_start(&st->done_h, on_done_timer, 0, 0);
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

static void on_timeout(uv_timer_t *t)
{
    pj_state *st = t->data;
    if (st->closing || !st->busy || st->ph == PH_DONE) return;
    if ((st->ph == PH_CONNECT || st->ph == PH_GREETING) && st->attempts <= st->dev->retries) {
        st->reconnect = 1; /* a fresh connection once the old one is closed */
        close_tcp(st);
        return;
    }
    finish(st, AG_POLL_TIMEOUT, "%s: no answer within %lld ms", cur_cmd(st),
           (long long)st->dev->timeout_ms);
}

static void arm_timer(pj_state *st)
{
    int64_t ms = st->dev->timeout_ms > 0 ? st->dev->timeout_ms : 2000;
    uv_timer_start(&st->timer_h, on_timeout, (uint64_t)ms, 0);
}

static void on_written(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    pj_state *st = req->handle->data;
    free(w);
    if (status < 0 && status != UV_ECANCELED && !st->closing && st->ph != PH_DONE)
        finish(st, AG_POLL_REFUSED, "%s: write failed: %s", cur_cmd(st), uv_strerror(status));
}

static void send_query(pj_state *st)
{
    wreq *w = malloc(sizeof *w);
    if (!w) {
        finish(st, AG_POLL_PROTOCOL, "out of memory");
        return;
    }
    int n = snprintf(w->buf, sizeof w->buf, "%s%%%c%s ?\r", st->digest, queries[st->q].cls,
                     queries[st->q].cmd);
    memset(st->digest, 0, sizeof st->digest); /* only before the first query */
    uv_buf_t b = uv_buf_init(w->buf, (unsigned)n);
    st->linelen = 0;
    int rc = uv_write(&w->req, (uv_stream_t *)&st->tcp, &b, 1, on_written);
    if (rc < 0) {
        free(w);
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

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    pj_state *st = h->data;
    *buf = uv_buf_init(st->rbuf, sizeof st->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    pj_state *st = s->data;
    if (st->closing || st->ph == PH_DONE) return;
    if (nread < 0) {
        if (st->ph == PH_GREETING)
            finish(st, AG_POLL_REFUSED, "connection closed before the greeting: %s",
                   uv_strerror((int)nread));
        else
            protocol_error(st,
                           nread == UV_EOF ? "connection closed by the device" : "connection reset",
                           "", 0);
        return;
    }
    for (ssize_t i = 0; i < nread && st->ph != PH_DONE; i++) {
        char c = buf->base[i];
        if (c == '\n' && st->linelen == 0) continue; /* tolerate CR LF */
        if (c == '\r') {
            uv_timer_stop(&st->timer_h);
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

static void on_connect(uv_connect_t *req, int status)
{
    pj_state *st = req->data;
    if (status == UV_ECANCELED || st->closing || st->ph != PH_CONNECT) return;
    if (status < 0) {
        finish(st, AG_POLL_REFUSED, "cannot connect to %s port %d: %s", st->dev->address,
               st->dev->port, uv_strerror(status));
        return;
    }
    st->ph = PH_GREETING;
    st->linelen = 0;
    int rc = uv_read_start((uv_stream_t *)&st->tcp, on_alloc, on_read);
    if (rc < 0) {
        finish(st, AG_POLL_REFUSED, "cannot read: %s", uv_strerror(rc));
        return;
    }
    arm_timer(st);
}

static void connect_now(pj_state *st)
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
        finish(st, AG_POLL_REFUSED, "cannot connect to %s port %d: %s", st->dev->address,
               st->dev->port, uv_strerror(rc));
        return;
    }
    arm_timer(st);
}

static void on_gai(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    pj_state *st = req->data;
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
    const struct addrinfo *ai = res; /* prefer IPv4, as the SNMP driver does */
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            ai = a;
            break;
        }
    memset(&st->addr, 0, sizeof st->addr);
    memcpy(&st->addr, ai->ai_addr,
           ai->ai_addrlen < sizeof st->addr ? ai->ai_addrlen : sizeof st->addr);
    uv_freeaddrinfo(res);
    if (st->addr.ss_family == AF_INET)
        ((struct sockaddr_in *)&st->addr)->sin_port = htons((uint16_t)st->dev->port);
    else
        ((struct sockaddr_in6 *)&st->addr)->sin6_port = htons((uint16_t)st->dev->port);
    connect_now(st);
}

/* A literal IPv4/IPv6 address (IPv6 optionally in brackets) into st->addr. 1 or 0. */
static int literal_addr(pj_state *st)
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
    if (uv_ip4_addr(a, st->dev->port, (struct sockaddr_in *)&st->addr) == 0) return 1;
    if (uv_ip6_addr(a, st->dev->port, (struct sockaddr_in6 *)&st->addr) == 0) return 1;
    return 0;
}

/* ---- the driver interface ----------------------------------------------------------- */

static int drv_open(uv_loop_t *loop, const ag_device *dev, const ag_profile_set *profiles,
                    const ag_sink *sink, void **state, char *err, size_t errlen)
{
    *state = NULL;
    if (!dev || !dev->id || !dev->address || !dev->address[0] || !sink || !sink->point ||
        !sink->done) {
        snprintf(err, errlen, "pjlink: device without id, address or sink");
        return -1;
    }
    if (dev->port < 1 || dev->port > 65535) {
        snprintf(err, errlen, "device %s: port %d out of range", dev->id, dev->port);
        return -1;
    }
    const ag_profile *prof = NULL;
    if (dev->profile) {
        prof = profiles ? ag_profile_find(profiles, dev->profile) : NULL;
        if (!prof) {
            snprintf(err, errlen, "device %s: profile '%s' not found", dev->id, dev->profile);
            return -1;
        }
        if (!prof->protocol || strcmp(prof->protocol, "pjlink") != 0) {
            snprintf(err, errlen, "device %s: profile '%s' is not a pjlink profile", dev->id,
                     dev->profile);
            return -1;
        }
    } else if (profiles) {
        prof = ag_profile_find(profiles, DEFAULT_PROFILE);
    }
    pj_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
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
    pj_state *st = state;
    if (!st || st->busy || st->closing) return -1;
    st->busy = 1;
    st->status = AG_POLL_OK;
    st->ts_ms = cm_now_ms();
    st->attempts = 0;
    st->reconnect = 0;
    st->inv_vendor[0] = st->inv_model[0] = st->inv_name[0] = st->inv_serial[0] =
        st->inv_firmware[0] = '\0';
    if (literal_addr(st)) {
        connect_now(st);
        return 0;
    }
    st->ph = PH_RESOLVE;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = uv_getaddrinfo(st->loop, &st->gai, on_gai, st->dev->address, NULL, &hints);
    if (rc != 0) {
        finish(st, AG_POLL_REFUSED, "cannot resolve %s: %s", st->dev->address, uv_strerror(rc));
        return 0;
    }
    st->gai_pending = 1;
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    pj_state *st = h->data;
    if (--st->refs == 0) free(st);
}

static void drv_close(void *state)
{
    pj_state *st = state;
    if (!st || st->closing) return;
    st->closing = 1;
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

const ag_driver_ops ag_pjlink_driver = {
    .name = "pjlink",
    .open = drv_open,
    .poll = drv_poll,
    .close = drv_close,
};

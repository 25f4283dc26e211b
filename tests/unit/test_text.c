/* test_text.c — the text-protocol driver (agent/text.c) against a scripted CP750-like server
 * thread on 127.0.0.1, the reply matcher, and the text-profile checks (agent/text_profile.c);
 * its binary mode against a scripted NEC NC-series server (good, bad checksum, error, short,
 * overlong replies) and the binary decoder. Runs with cwd = the repository root (loads
 * profiles/dolby-cp750.json and profiles/nec-nc-series2-tcp.json). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "agent/driver.h"
#include "agent/profile.h"
#include "agent/text_profile.h"
#include "timeutil.h"

/* ---- the scripted server ------------------------------------------------------------ */

typedef enum { SRV_NORMAL, SRV_GARBAGE, SRV_SILENT, SRV_CLOSE_AFTER_POLL } srv_mode;

typedef struct server {
    int lfd, port;
    srv_mode mode;
    atomic_int stop, accepts, replies;
    pthread_t th;
} server;

static const char *const answers[][2] = {
    {"cp750.sys.fader ?", "cp750.sys.fader 70"},
    {"cp750.sys.mute ?", "cp750.sys.mute 0"},
    {"cp750.sys.input_mode ?", "cp750.sys.input_mode dig_2"},
    {"cp750.sysinfo.version ?", "cp750.sysinfo.version 1.2.3.4"},
    {"cp750.sys.serial_number ?", "cp750.sys.serial_number 750SIM01"},
};

static void send_str(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

/* One command line; 1 = answered and the connection stays, 0 = close it. */
static int answer(server *s, int fd, const char *cmd)
{
    int k = atomic_fetch_add(&s->replies, 1);
    const char *eol = (k % 2) ? "\n" : "\r\n"; /* CRLF and LF alternate */
    char out[2200];
    if (s->mode == SRV_SILENT) return 1;
    if (s->mode == SRV_GARBAGE) {
        snprintf(out, sizeof out, "?? %s%s", cmd, eol);
        send_str(fd, out);
        return 1;
    }
    for (size_t i = 0; i < sizeof answers / sizeof *answers; i++) {
        if (strcmp(cmd, answers[i][0]) != 0) continue;
        if (i == 0) /* unsolicited lines first: another key, and one too long to keep */
            send_str(fd, "cp750.sys.mute 1\r\n");
        if (i == 1) {
            memset(out, 'x', 2000);
            memcpy(out + 2000, "\n", 2);
            send_str(fd, out);
        }
        snprintf(out, sizeof out, "%s%s", answers[i][1], eol);
        send_str(fd, out);
        return !(s->mode == SRV_CLOSE_AFTER_POLL && i == 4);
    }
    return 1; /* unknown: no reply, as the device does */
}

static void serve(server *s, int fd)
{
    char line[512];
    size_t len = 0;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        char buf[256];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\r' || buf[i] == '\n') {
                if (len == 0) continue;
                line[len] = '\0';
                len = 0;
                if (!answer(s, fd, line)) return;
            } else if (len + 1 < sizeof line) {
                line[len++] = buf[i];
            }
        }
    }
}

static void *server_main(void *arg)
{
    server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) continue;
        atomic_fetch_add(&s->accepts, 1);
        serve(s, fd);
        close(fd);
    }
    return NULL;
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t l = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void server_start(server *s, srv_mode mode)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->lfd = listen_any(&s->port);
    assert_int_equal(pthread_create(&s->th, NULL, server_main, s), 0);
}

static void server_stop(server *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    close(s->lfd);
}

/* ---- the sink ----------------------------------------------------------------------- */

#define MAX_PTS 32
typedef struct rec {
    char metric[MAX_PTS][48];
    char label[MAX_PTS][48]; /* "key=value" of the first label, "" without */
    char unit[MAX_PTS][16];
    double value[MAX_PTS];
    int npts, ndone, ninv;
    ag_poll_status status;
    char detail[256];
    char serial[64], firmware[64], profile[64], kind[64];
} rec;

static void on_point(void *ud, const ag_device *dev, const char *metric, const char *unit,
                     const cm_label *labels, size_t nlabels, int64_t ts_ms, double value)
{
    (void)dev, (void)ts_ms;
    rec *r = ud;
    assert_true(r->npts < MAX_PTS);
    snprintf(r->metric[r->npts], 48, "%s", metric);
    snprintf(r->unit[r->npts], 16, "%s", unit ? unit : "");
    r->label[r->npts][0] = '\0';
    if (nlabels > 0) snprintf(r->label[r->npts], 48, "%s=%s", labels[0].key, labels[0].value);
    r->value[r->npts++] = value;
}

static void on_inventory(void *ud, const ag_device *dev, const cm_device_info *info)
{
    (void)dev;
    rec *r = ud;
    r->ninv++;
    snprintf(r->serial, sizeof r->serial, "%s", info->serial ? info->serial : "");
    snprintf(r->firmware, sizeof r->firmware, "%s", info->firmware ? info->firmware : "");
    snprintf(r->profile, sizeof r->profile, "%s", info->profile ? info->profile : "");
    snprintf(r->kind, sizeof r->kind, "%s", info->kind ? info->kind : "");
}

static void on_done(void *ud, const ag_device *dev, ag_poll_status status, const char *detail)
{
    (void)dev;
    rec *r = ud;
    r->ndone++;
    r->status = status;
    snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
}

static double value_of(const rec *r, const char *metric)
{
    for (int i = 0; i < r->npts; i++)
        if (strcmp(r->metric[i], metric) == 0) return r->value[i];
    return -1;
}

/* ---- running the driver ------------------------------------------------------------- */

static ag_profile_set g_set;
static ag_profile g_profiles[2]; /* dolby-cp750, nec-nc-series2-tcp */

static int setup(void **unused)
{
    (void)unused;
    char err[512];
    static const char *const files[2] = {"profiles/dolby-cp750.json",
                                         "profiles/nec-nc-series2-tcp.json"};
    for (int i = 0; i < 2; i++)
        if (ag_profile_load(files[i], &g_profiles[i], err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
    g_set.profiles = g_profiles;
    g_set.nprofiles = 2;
    return 0;
}

static int teardown(void **unused)
{
    (void)unused;
    ag_profile_free(&g_profiles[0]);
    ag_profile_free(&g_profiles[1]);
    return 0;
}

typedef struct harness {
    uv_loop_t loop;
    ag_device dev;
    rec r;
    void *state;
    const ag_driver_ops *ops;
} harness;

static const char *g_address = "127.0.0.1"; /* of the next h_open */

static void h_open_profile(harness *h, int port, int64_t timeout_ms, const char *profile)
{
    memset(h, 0, sizeof *h);
    assert_int_equal(uv_loop_init(&h->loop), 0);
    h->dev.id = (char *)"hall1/audio";
    h->dev.screen = (char *)"hall1";
    h->dev.protocol = (char *)"text";
    h->dev.profile = (char *)profile;
    h->dev.address = (char *)g_address;
    h->dev.port = port;
    h->dev.timeout_ms = timeout_ms;
    h->ops = ag_driver_find("text");
    assert_non_null(h->ops);
    ag_sink sink = {&h->r, on_point, on_inventory, on_done};
    char err[256];
    assert_int_equal(h->ops->open(&h->loop, &h->dev, &g_set, &sink, &h->state, err, sizeof err), 0);
}

static void h_open(harness *h, int port, int64_t timeout_ms)
{
    h_open_profile(h, port, timeout_ms, "dolby-cp750");
}

/* One poll, run until its done (or 10 s). */
static void h_poll(harness *h)
{
    memset(&h->r, 0, sizeof h->r);
    assert_int_equal(h->ops->poll(h->state), 0);
    assert_int_equal(h->ops->poll(h->state), -1); /* already in flight */
    assert_int_equal(h->r.ndone, 0);              /* never from inside poll() */
    int64_t end = cm_mono_ms() + 10000;
    while (h->r.ndone == 0 && cm_mono_ms() < end)
        uv_run(&h->loop, UV_RUN_ONCE);
    assert_int_equal(h->r.ndone, 1);
}

static void h_close(harness *h)
{
    h->ops->close(h->state);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h->loop), 0);
}

static void assert_full(const rec *r)
{
    assert_int_equal(r->status, AG_POLL_OK);
    assert_int_equal(r->npts, 3);
    assert_true(value_of(r, "audio_fader_level") > 6.999 &&
                value_of(r, "audio_fader_level") < 7.001);
    assert_true(value_of(r, "audio_mute") == 0); /* not the unsolicited "mute 1" */
    assert_true(value_of(r, "audio_input_mode") == 2);
    assert_int_equal(r->ninv, 1);
    assert_string_equal(r->firmware, "1.2.3.4");
    assert_string_equal(r->serial, "750SIM01");
    assert_string_equal(r->profile, "dolby-cp750");
    assert_string_equal(r->kind, "audio_processor");
}

static void test_full_poll_and_reuse(void **unused)
{
    (void)unused;
    server s;
    server_start(&s, SRV_NORMAL);
    harness h;
    h_open(&h, s.port, 2000);
    for (int i = 0; i < 3; i++) {
        h_poll(&h);
        assert_full(&h.r);
    }
    assert_int_equal(atomic_load(&s.accepts), 1); /* one connection for all three polls */
    h_close(&h);
    server_stop(&s);
}

static void test_reconnect_after_close(void **unused)
{
    (void)unused;
    server s;
    server_start(&s, SRV_CLOSE_AFTER_POLL);
    harness h;
    h_open(&h, s.port, 2000);
    h_poll(&h);
    assert_full(&h.r);
    /* Next poll at once, before the loop may have seen the EOF, and one after it has. */
    h_poll(&h);
    assert_full(&h.r);
    int64_t end = cm_mono_ms() + 200;
    while (cm_mono_ms() < end)
        uv_run(&h.loop, UV_RUN_NOWAIT);
    h_poll(&h);
    assert_full(&h.r);
    assert_int_equal(atomic_load(&s.accepts), 3);
    h_close(&h);
    server_stop(&s);
}

static void test_garbage(void **unused)
{
    (void)unused;
    server s;
    server_start(&s, SRV_GARBAGE);
    harness h;
    h_open(&h, s.port, 300);
    h_poll(&h);
    assert_int_equal(h.r.status, AG_POLL_PROTOCOL);
    assert_non_null(strstr(h.r.detail, "cp750.sys.fader ?"));
    assert_int_equal(h.r.npts, 0);
    assert_int_equal(h.r.ninv, 0);
    h_poll(&h); /* after an error: a fresh connection */
    assert_int_equal(h.r.status, AG_POLL_PROTOCOL);
    assert_int_equal(atomic_load(&s.accepts), 2);
    h_close(&h);
    server_stop(&s);
}

static void test_silent(void **unused)
{
    (void)unused;
    server s;
    server_start(&s, SRV_SILENT);
    harness h;
    h_open(&h, s.port, 300);
    int64_t t0 = cm_mono_ms();
    h_poll(&h);
    assert_true(cm_mono_ms() - t0 >= 250);
    assert_int_equal(h.r.status, AG_POLL_TIMEOUT);
    assert_int_equal(h.r.npts, 0);
    h_close(&h);
    server_stop(&s);
}

static void test_refused(void **unused)
{
    (void)unused;
    int port;
    int fd = listen_any(&port);
    close(fd); /* nothing listens there now */
    harness h;
    h_open(&h, port, 1000);
    h_poll(&h);
    assert_int_equal(h.r.status, AG_POLL_REFUSED);
    h_close(&h);
}

static void test_close_in_flight(void **unused)
{
    (void)unused;
    server s;
    server_start(&s, SRV_SILENT);
    harness h;
    h_open(&h, s.port, 5000);
    assert_int_equal(h.ops->poll(h.state), 0);
    for (int i = 0; i < 20; i++)
        uv_run(&h.loop, UV_RUN_NOWAIT);
    h_close(&h);
    assert_int_equal(h.r.ndone, 0); /* close() cancels: no done afterwards */
    server_stop(&s);
}

static void test_open_errors(void **unused)
{
    (void)unused;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    ag_device d = {0};
    d.id = (char *)"hall1/audio";
    d.address = (char *)"127.0.0.1";
    d.port = 61408;
    rec r;
    ag_sink sink = {&r, on_point, on_inventory, on_done};
    const ag_driver_ops *ops = ag_driver_find("text");
    void *st;
    char err[256];
    assert_int_equal(ops->open(&loop, &d, &g_set, &sink, &st, err, sizeof err), -1);
    assert_non_null(strstr(err, "needs a profile"));
    d.profile = (char *)"nope";
    assert_int_equal(ops->open(&loop, &d, &g_set, &sink, &st, err, sizeof err), -1);
    assert_non_null(strstr(err, "not found"));
    /* no port in the device: the profile's 61408 */
    d.profile = (char *)"dolby-cp750";
    d.port = 0;
    assert_int_equal(ops->open(&loop, &d, &g_set, &sink, &st, err, sizeof err), 0);
    ops->close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- NEC NC-series binary protocol ------------------------------------------------- */

typedef enum {
    NEC_GOOD,   /* every reply right; the status reply in two pieces */
    NEC_BADCKS, /* status reply with a wrong checksum */
    NEC_ERROR,  /* status answered with the error reply A0 85 ... */
    NEC_SHORT,  /* status reply cut after 10 of 22 bytes */
    NEC_EXTRA,  /* status reply followed by 2 more bytes */
    NEC_TINY,   /* a well-formed status reply of 14 bytes: too short for its values */
    NEC_WRONG,  /* the lamp reply answers the status request */
} nec_mode;

typedef struct nec_server {
    int lfd, port;
    atomic_int mode, stop, accepts, requests;
    pthread_t th;
} nec_server;

static size_t nec_frame(unsigned char *out, const unsigned char *head, size_t nhead,
                        const unsigned char *data, size_t ndata)
{
    size_t n = 0;
    memcpy(out, head, nhead);
    n = nhead;
    out[n++] = (unsigned char)ndata;
    memcpy(out + n, data, ndata);
    n += ndata;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += out[i];
    out[n++] = (unsigned char)sum;
    return n;
}

static void send_bytes(int fd, const unsigned char *b, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        b += w;
        n -= (size_t)w;
    }
}

/* The status reply: process status 4 (running, lamp on), lamp 1 on, 1234 h remaining. */
static size_t status_reply(unsigned char *out, size_t ndata)
{
    static const unsigned char head[4] = {0x20, 0x85, 0x00, 0xC0};
    unsigned char d[16] = {0};
    d[2] = 1;     /* byte 7: power on */
    d[5] = 4;     /* byte 10: running (power on, lamp on) */
    d[9] = 1;     /* byte 14: lamp 1 on */
    d[14] = 0xD2; /* bytes 19..20: 1234, low byte first */
    d[15] = 0x04;
    return nec_frame(out, head, 4, d, ndata);
}

static void nec_answer(nec_server *s, int fd, const unsigned char *req)
{
    unsigned char out[64];
    size_t n = 0;
    int mode = atomic_load(&s->mode);
    atomic_fetch_add(&s->requests, 1);
    if (req[0] == 0x00 && req[1] == 0x85) {
        switch (mode) {
        case NEC_ERROR: {
            static const unsigned char head[4] = {0xA0, 0x85, 0x00, 0xC0};
            static const unsigned char err[2] = {0x00, 0x01};
            n = nec_frame(out, head, 4, err, 2);
            send_bytes(fd, out, n);
            return;
        }
        case NEC_WRONG: {
            static const unsigned char head[4] = {0x23, 0x94, 0x00, 0xC0};
            static const unsigned char d[5] = {1, 2, 3, 4, 0};
            n = nec_frame(out, head, 4, d, 5);
            send_bytes(fd, out, n);
            return;
        }
        case NEC_TINY:
            n = status_reply(out, 8);
            send_bytes(fd, out, n);
            return;
        default:
            break;
        }
        n = status_reply(out, 16);
        if (mode == NEC_BADCKS) out[n - 1]++;
        if (mode == NEC_SHORT) n = 10;
        if (mode == NEC_EXTRA) {
            out[n++] = 0x20;
            out[n++] = 0x85;
        }
        if (mode == NEC_GOOD) { /* in two pieces: the driver must put them together */
            send_bytes(fd, out, 3);
            usleep(20000);
            send_bytes(fd, out + 3, n - 3);
            return;
        }
        send_bytes(fd, out, n);
    } else if (req[0] == 0x03 && req[1] == 0x94) {
        static const unsigned char head[4] = {0x23, 0x94, 0x00, 0xC0};
        uint32_t secs = 1500u * 3600u + 1800u; /* 1500.5 h */
        unsigned char d[5] = {(unsigned char)secs, (unsigned char)(secs >> 8),
                              (unsigned char)(secs >> 16), (unsigned char)(secs >> 24), 0};
        n = nec_frame(out, head, 4, d, 5);
        send_bytes(fd, out, n);
    } else if (req[0] == 0x00 && req[1] == 0x86) {
        static const unsigned char head[4] = {0x20, 0x86, 0x00, 0xC0};
        unsigned char d[17] = {0x08};
        memcpy(d + 1, "NC900SIM01", 10); /* NUL-padded */
        n = nec_frame(out, head, 4, d, 17);
        send_bytes(fd, out, n);
    }
}

static void nec_serve(nec_server *s, int fd)
{
    unsigned char req[16];
    size_t len = 0;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        unsigned char buf[64];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        for (ssize_t i = 0; i < n; i++) {
            if (len < sizeof req) req[len++] = buf[i];
            size_t want = (req[0] == 0x03) ? 6 : 7; /* 03 94 .. is 6 bytes, 00 8x .. 7 */
            if (len >= 2 && len == want) {
                nec_answer(s, fd, req);
                len = 0;
            }
        }
    }
}

static void *nec_main(void *arg)
{
    nec_server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) continue;
        atomic_fetch_add(&s->accepts, 1);
        nec_serve(s, fd);
        close(fd);
    }
    return NULL;
}

static void nec_start(nec_server *s, nec_mode mode)
{
    memset(s, 0, sizeof *s);
    atomic_store(&s->mode, mode);
    s->lfd = listen_any(&s->port);
    assert_int_equal(pthread_create(&s->th, NULL, nec_main, s), 0);
}

static void nec_stop(nec_server *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    close(s->lfd);
}

static int index_of(const rec *r, const char *metric)
{
    for (int i = 0; i < r->npts; i++)
        if (strcmp(r->metric[i], metric) == 0) return i;
    return -1;
}

static void assert_nec_full(const rec *r)
{
    if (r->status != AG_POLL_OK) fprintf(stderr, "detail: %s\n", r->detail);
    assert_int_equal(r->status, AG_POLL_OK);
    assert_int_equal(r->npts, 4);
    assert_true(value_of(r, "power_state") == 1); /* process status 4 → on */
    assert_true(value_of(r, "light_source_on") == 1);
    assert_true(value_of(r, "light_source_remaining_hours") == 1234);
    double h = value_of(r, "light_source_hours");
    assert_true(h > 1500.499 && h < 1500.501);
    int i = index_of(r, "light_source_hours");
    assert_string_equal(r->label[i], "lamp=1");
    assert_string_equal(r->unit[i], "h");
    assert_int_equal(r->ninv, 1);
    assert_string_equal(r->serial, "NC900SIM01");
    assert_string_equal(r->profile, "nec-nc-series2-tcp");
}

static void test_nec_good(void **unused)
{
    (void)unused;
    nec_server s;
    nec_start(&s, NEC_GOOD);
    harness h;
    h_open_profile(&h, s.port, 2000, "nec-nc-series2-tcp");
    for (int i = 0; i < 2; i++) {
        h_poll(&h);
        assert_nec_full(&h.r);
    }
    assert_int_equal(atomic_load(&s.accepts), 1); /* one connection for both polls */
    assert_int_equal(atomic_load(&s.requests), 6);
    h_close(&h);
    g_address = "localhost"; /* a name: resolved first (IPv4 preferred) */
    h_open_profile(&h, s.port, 2000, "nec-nc-series2-tcp");
    g_address = "127.0.0.1";
    h_poll(&h);
    assert_nec_full(&h.r);
    assert_int_equal(atomic_load(&s.accepts), 2);
    h_close(&h);
    nec_stop(&s);
}

/* One poll in mode m ends as "protocol" with want in its detail, no samples of the status
 * command, and the next poll (device fixed) succeeds on a fresh connection. */
static void nec_bad(nec_mode m, int64_t timeout_ms, const char *want)
{
    nec_server s;
    nec_start(&s, m);
    harness h;
    h_open_profile(&h, s.port, timeout_ms, "nec-nc-series2-tcp");
    h_poll(&h);
    if (!strstr(h.r.detail, want)) fprintf(stderr, "mode %d: detail '%s'\n", m, h.r.detail);
    assert_int_equal(h.r.status, AG_POLL_PROTOCOL);
    assert_non_null(strstr(h.r.detail, want));
    assert_non_null(strstr(h.r.detail, "'00 85 00 00 01 01 87'")); /* names the command */
    assert_int_equal(h.r.npts, 0);
    assert_int_equal(h.r.ninv, 0);
    atomic_store(&s.mode, NEC_GOOD);
    h_poll(&h);
    assert_nec_full(&h.r);
    assert_int_equal(atomic_load(&s.accepts), 2);
    h_close(&h);
    nec_stop(&s);
}

static void test_nec_bad_replies(void **unused)
{
    (void)unused;
    nec_bad(NEC_BADCKS, 2000, "bad checksum");
    nec_bad(NEC_ERROR, 2000, "error reply A0 85 00 C0 02 00 01");
    nec_bad(NEC_SHORT, 300, "short reply: 10 of 22 bytes");
    nec_bad(NEC_EXTRA, 2000, "2 unexpected bytes after the 22-byte reply");
    nec_bad(NEC_TINY, 2000, "light_source_on: the reply has no bytes 14..14 (only 13)");
    nec_bad(NEC_WRONG, 2000, "does not start with 20 85");
}

static void test_nec_decoder(void **unused)
{
    (void)unused;
    ag_bin_reply r = {{0x20, 0x85}, 2, 0, 4, 6, 1, 0x80};
    unsigned char f[32];
    /* the length is known once byte 4 is there */
    unsigned char part[5] = {0x20, 0x85, 0x00, 0xC0, 0x10};
    assert_int_equal(ag_bin_frame_len(&r, part, 4), 0);
    assert_int_equal(ag_bin_frame_len(&r, part, 5), 22);
    assert_int_equal(ag_bin_frame_len(&r, NULL, 0), 0);
    size_t n = status_reply(f, 16);
    char why[160];
    assert_int_equal(ag_bin_check(&r, f, n, why, sizeof why), 0);
    f[n - 1] ^= 1;
    assert_int_equal(ag_bin_check(&r, f, n, why, sizeof why), -1);
    assert_non_null(strstr(why, "bad checksum"));
    f[n - 1] ^= 1;
    f[0] = 0xA0;
    f[n - 1] = (unsigned char)(f[n - 1] + 0x80);
    assert_int_equal(ag_bin_check(&r, f, n, why, sizeof why), AG_BIN_DEVICE_ERROR);
    /* fixed-length replies: an error reply is known from its first byte */
    ag_bin_reply fixed = {{0x20}, 1, 8, 0, 0, 0, 0x80};
    assert_int_equal(ag_bin_frame_len(&fixed, f, 1), 1);
    f[0] = 0x20;
    assert_int_equal(ag_bin_frame_len(&fixed, f, 1), 8);
    /* values: endianness, sign, ascii */
    unsigned char b[8] = {0xFF, 0xFE, 0x01, 0x02, 'A', 0, 'B', ' '};
    ag_bin_value v = {0};
    double x = 0;
    v.at = 0, v.size = 2, v.type = AG_BIN_UINT, v.big_endian = 1;
    assert_int_equal(ag_bin_value_get(&v, b, 8, &x, NULL, 0, why, sizeof why), 0);
    assert_true(x == 0xFFFE);
    v.big_endian = 0;
    assert_int_equal(ag_bin_value_get(&v, b, 8, &x, NULL, 0, why, sizeof why), 0);
    assert_true(x == 0xFEFF);
    v.type = AG_BIN_INT;
    assert_int_equal(ag_bin_value_get(&v, b, 8, &x, NULL, 0, why, sizeof why), 0);
    assert_true(x == -257);
    v.at = 0, v.size = 4, v.big_endian = 1;
    assert_int_equal(ag_bin_value_get(&v, b, 8, &x, NULL, 0, why, sizeof why), 0);
    assert_true(x == (double)(int32_t)0xFFFE0102u);
    v.type = AG_BIN_ASCII, v.at = 4, v.size = 4;
    char str[8];
    assert_int_equal(ag_bin_value_get(&v, b, 8, &x, str, sizeof str, why, sizeof why), 0);
    assert_string_equal(str, "AB");
    v.at = 6;
    assert_int_equal(ag_bin_value_get(&v, b, 8, &x, str, sizeof str, why, sizeof why), -1);
    assert_non_null(strstr(why, "no bytes 6..9"));
    char hex[16];
    ag_bin_hex(b, 8, 3, hex, sizeof hex);
    assert_string_equal(hex, "FF FE 01 ...");
}

/* ---- the matcher and the profile checks -------------------------------------------- */

static void test_match(void **unused)
{
    (void)unused;
    char err[256];
    ag_text_profile tp;
    json_t *doc =
        json_pack("{s:[{s:s,s:s,s:s}]}", "commands", "send", "cp750.sys.fader ?", "expect",
                  "^cp750\\.sys\\.fader ([0-9]+)$", "metric", "audio_fader_level");
    assert_int_equal(ag_text_profile_parse(doc, "t.json", &tp, err, sizeof err), 0);
    assert_string_equal(tp.line_end, "\r\n");
    assert_int_equal(tp.port, 0);
    const ag_text_cmd *c = &tp.cmds[0];
    char v[16];
    static const struct {
        const char *line;
        int match;
        const char *val;
    } cases[] = {
        {"cp750.sys.fader 70", 1, "70"},
        {"cp750.sys.fader 70\r\n", 1, "70"},
        {"cp750.sys.fader 100\n", 1, "100"},
        {"cp750.sys.fader 1234567890123456789012", 1, "123456789012345"}, /* cut to vallen */
        {"cp750.sys.mute 1", 0, ""},
        {"cp750.sys.fader ", 0, ""},
        {"xcp750.sys.fader 70", 0, ""},
        {"", 0, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int m = ag_text_match(c, cases[i].line, strlen(cases[i].line), v, sizeof v);
        assert_int_equal(m, cases[i].match);
        assert_string_equal(v, cases[i].val);
    }
    assert_int_equal(ag_text_match(c, "cp750.sys.fader 7\0 0", 20, v, sizeof v), 0); /* NUL */
    char big[AG_TEXT_MAX_LINE + 20];
    memset(big, '1', sizeof big);
    memcpy(big, "cp750.sys.fader ", 16);
    assert_int_equal(ag_text_match(c, big, sizeof big, v, sizeof v), 0); /* too long */
    assert_int_equal(ag_text_match(c, big, AG_TEXT_MAX_LINE, v, sizeof v), 1);
    ag_text_profile_free(&tp);
    json_decref(doc);
}

static char g_dir[64];

static int load_text(const char *json, char *err, size_t errlen)
{
    char path[128];
    snprintf(path, sizeof path, "%s/tp.json", g_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"name\": \"tp\", \"kind\": \"audio_processor\", \"protocol\": \"text\", "
            "\"sources\": [\"test\"], %s}",
            json);
    fclose(f);
    ag_profile p;
    int rc = ag_profile_load(path, &p, err, errlen);
    if (rc == 0) ag_profile_free(&p);
    unlink(path);
    return rc;
}

static void expect_error(const char *json, const char *path_and_what)
{
    char err[512];
    assert_int_equal(load_text(json, err, sizeof err), -1);
    if (!strstr(err, path_and_what)) fprintf(stderr, "got: %s\n", err);
    assert_non_null(strstr(err, path_and_what));
}

static void test_profile_errors(void **unused)
{
    (void)unused;
    snprintf(g_dir, sizeof g_dir, "/tmp/test_text.XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    char err[512];
    const char *ok =
        "\"commands\": [{\"send\": \"a ?\", \"expect\": \"^a (.*)$\", \"metric\": \"x\"}]";
    assert_int_equal(load_text(ok, err, sizeof err), 0);
    expect_error(
        "\"commands\": [{\"send\": \"a ?\", \"expect\": \"^a ([0-9]+$\", \"metric\": \"x\"}]",
        "tp.json: $.commands[0].expect: bad regular expression");
    expect_error(
        "\"commands\": [{\"send\": \"a ?\", \"expect\": \"^a [0-9]+$\", \"metric\": \"x\"}]",
        "$.commands[0].expect: regular expression has no group");
    expect_error("\"commands\": [{\"send\": \"a\", \"expect\": \"(.)\", \"metric\": \"x\", "
                 "\"oid\": 1}]",
                 "$.commands[0]['oid']: unknown key");
    expect_error("\"commands\": [], \"port\": 1", "$.commands: expected a non-empty array");
    expect_error("\"commands\": [{\"send\": \"a\", \"expect\": \"(.)\", \"metric\": \"x\"}], "
                 "\"port\": 70000",
                 "$.port: expected an integer");
    expect_error("\"commands\": [{\"send\": \"a\", \"expect\": \"(.)\", \"metric\": \"x\"}], "
                 "\"line_end\": \"x\"",
                 "$.line_end");
    expect_error("\"commands\": [{\"send\": \"a\", \"expect\": \"(.)\"}]",
                 "$.commands[0]: needs exactly one of metric or identity");
    expect_error("\"commands\": [{\"send\": \"a\", \"expect\": \"(.)\", \"identity\": \"colour\"}]",
                 "$.commands[0].identity");
    expect_error("\"commands\": [{\"send\": \"a\", \"expect\": \"(.)\", \"identity\": \"serial\", "
                 "\"scale\": 2}]",
                 "$.commands[0].scale: only for a metric command");
    expect_error("\"commands\": [{\"send\": \"a\\r\", \"expect\": \"(.)\", \"metric\": \"x\"}]",
                 "$.commands[0].send");
    expect_error("\"commands\": [{\"send\": \"a\", \"expect\": \"(.)\", \"metric\": \"x\", "
                 "\"enum\": {\"on\": \"1\"}}]",
                 "$.commands[0].enum");
    expect_error("\"commands\": [{\"send\": \"a\", \"expect\": \"(.)\", \"metric\": \"x\"}], "
                 "\"scalars\": []",
                 "$.scalars: unknown key");
    expect_error("\"port\": 1", "$.commands: missing");
    expect_error(
        "\"commands\": [{\"send\": \"a\", \"expect\": \"((a{200}){200})\", \"metric\": \"x\"}]",
        "$.commands[0].expect: interval counts");
    assert_int_equal(load_text("\"commands\": [{\"send\": \"a\", \"expect\": \"^a ([0-9]{1,3})$\", "
                               "\"metric\": \"x\"}]",
                               err, sizeof err),
                     0);
    rmdir(g_dir);
}

/* The binary keys: every mistake named by its JSON path. */
static void test_nec_profile_errors(void **unused)
{
    (void)unused;
    snprintf(g_dir, sizeof g_dir, "/tmp/test_text.XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    char err[512];
#define REPLY                                                                                      \
    "\"reply\": {\"prefix\": \"20 85\", \"length_at\": 4, \"length_add\": 6, "                     \
    "\"checksum\": \"sum8\", \"error_mask\": 128}"
#define VAL "\"values\": [{\"at\": 10, \"size\": 1, \"metric\": \"x\"}]"
    assert_int_equal(load_text("\"commands\": [{\"send_hex\": \"00 85 00 00 01 01 87\", " REPLY
                               ", " VAL "}]",
                               err, sizeof err),
                     0);
    expect_error("\"commands\": [{\"send_hex\": \"00 85 0\", " REPLY ", " VAL "}]",
                 "tp.json: $.commands[0].send_hex: expected 1..64 hex bytes");
    expect_error("\"commands\": [{\"send_hex\": \"00 85 00 00 01 01 88\", " REPLY ", " VAL "}]",
                 "$.commands[0].send_hex: last byte 88 is not the checksum of the others (87)");
    expect_error("\"commands\": [{\"send_hex\": \"00 85 00 00 01 01 87\", " VAL "}]",
                 "$.commands[0].reply: missing");
    expect_error(
        "\"commands\": [{\"send_hex\": \"87\", \"reply\": {\"length\": 8, \"length_at\": 4, "
        "\"checksum\": \"none\"}, " VAL "}]",
        "$.commands[0].reply: needs exactly one of length (fixed) or length_at");
    expect_error(
        "\"commands\": [{\"send_hex\": \"87\", \"reply\": {\"length_at\": 4, \"length_add\": 4, "
        "\"checksum\": \"none\"}, " VAL "}]",
        "$.commands[0].reply.length_add: must be more than length_at");
    expect_error("\"commands\": [{\"send_hex\": \"87\", \"reply\": {\"length\": 8, "
                 "\"checksum\": \"crc\"}, " VAL "}]",
                 "$.commands[0].reply.checksum: expected \"sum8\"");
    expect_error("\"commands\": [{\"send_hex\": \"87\", \"reply\": {\"length\": 8, "
                 "\"checksum\": \"sum8\"}, " VAL "}]",
                 "$.commands[0].values[0].at: bytes 10..10 lie outside the 8-byte reply");
    expect_error("\"commands\": [{\"send_hex\": \"00 85 00 00 01 01 87\", " REPLY
                 ", \"values\": [{\"at\": 10, \"size\": 2, \"metric\": \"x\"}]}]",
                 "$.commands[0].values[0].endian: missing");
    expect_error("\"commands\": [{\"send_hex\": \"00 85 00 00 01 01 87\", " REPLY
                 ", \"values\": [{\"at\": 10, \"size\": 5, \"metric\": \"x\"}]}]",
                 "$.commands[0].values[0].size: expected an integer 1..4");
    expect_error("\"commands\": [{\"send_hex\": \"00 85 00 00 01 01 87\", " REPLY
                 ", \"values\": [{\"at\": 10, \"size\": 1, \"identity\": \"serial\"}]}]",
                 "$.commands[0].values[0].identity: an identity is read from an ascii value");
    expect_error("\"commands\": [{\"send_hex\": \"00 85 00 00 01 01 87\", " REPLY
                 ", \"values\": [{\"at\": 10, \"size\": 1, \"metric\": \"x\", \"labels\": "
                 "{\"Bad-Name\": \"1\"}}]}]",
                 "$.commands[0].values[0].labels");
    expect_error("\"commands\": [{\"send_hex\": \"00 85 00 00 01 01 87\", " REPLY
                 ", \"values\": [{\"at\": 10, \"size\": 1, \"metric\": \"x\", \"bit\": 3}]}]",
                 "$.commands[0].values[0].bit: unknown key");
    expect_error("\"commands\": [{\"send_hex\": \"00 85 00 00 01 01 87\", " REPLY ", " VAL
                 ", \"expect\": \"(.)\"}]",
                 "$.commands[0].expect: unknown key");
    expect_error("\"commands\": [{\"send_hex\": \"00 85 00 00 01 01 87\", " REPLY ", " VAL "}, "
                 "{\"send\": \"a\", \"expect\": \"(.)\", \"metric\": \"x\"}]",
                 "$.commands[1]: a line (send) command in a profile whose first command is binary");
    expect_error(
        "\"line_end\": \"\\n\", \"commands\": [{\"send_hex\": \"00 85 00 00 01 01 87\", " REPLY
        ", " VAL "}]",
        "$.line_end: not for binary commands");
    expect_error("\"commands\": [{\"send_hex\": \"00 85 00 00 01 01 87\", \"reply\": {\"prefix\": "
                 "\"A0\", \"length\": 8, \"checksum\": \"none\", \"error_mask\": 128}, "
                 "\"values\": [{\"at\": 1, \"size\": 1, \"metric\": \"x\"}]}]",
                 "$.commands[0].reply.prefix: its first byte has error_mask bits set");
#undef REPLY
#undef VAL
    rmdir(g_dir);
}

static void test_shipped_profiles(void **unused)
{
    (void)unused;
    static const char *const files[] = {
        "profiles/dolby-cp750.json", "profiles/dolby-cp850-cp950.json", "profiles/usl-lss200.json",
        "profiles/nec-nc-series2-tcp.json"};
    for (size_t i = 0; i < 4; i++) {
        ag_profile p;
        char err[512];
        int rc = ag_profile_load(files[i], &p, err, sizeof err);
        if (rc != 0) fprintf(stderr, "%s\n", err);
        assert_int_equal(rc, 0);
        assert_string_equal(p.protocol, "text");
        ag_text_profile tp;
        assert_int_equal(ag_text_profile_parse(p.doc, p.path, &tp, err, sizeof err), 0);
        assert_true(tp.ncmds >= 2 && tp.port > 0);
        assert_int_equal(tp.binary, i == 3);
        ag_text_profile_free(&tp);
        ag_profile_free(&p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_poll_and_reuse),
        cmocka_unit_test(test_reconnect_after_close),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_silent),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_close_in_flight),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_profile_errors),
        cmocka_unit_test(test_shipped_profiles),
        cmocka_unit_test(test_nec_good),
        cmocka_unit_test(test_nec_bad_replies),
        cmocka_unit_test(test_nec_decoder),
        cmocka_unit_test(test_nec_profile_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

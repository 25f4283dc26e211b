/* test_text.c — the text-protocol driver (agent/text.c) against a scripted CP750-like server
 * thread on 127.0.0.1, the reply matcher, and the text-profile checks (agent/text_profile.c).
 * Runs with cwd = the repository root (loads profiles/dolby-cp750.json). */
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
    double value[MAX_PTS];
    int npts, ndone, ninv;
    ag_poll_status status;
    char detail[256];
    char serial[64], firmware[64], profile[64], kind[64];
} rec;

static void on_point(void *ud, const ag_device *dev, const char *metric, const char *unit,
                     const cm_label *labels, size_t nlabels, int64_t ts_ms, double value)
{
    (void)dev, (void)unit, (void)labels, (void)ts_ms;
    rec *r = ud;
    assert_int_equal(nlabels, 0);
    assert_true(r->npts < MAX_PTS);
    snprintf(r->metric[r->npts], 48, "%s", metric);
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
static ag_profile g_cp750;

static int setup(void **unused)
{
    (void)unused;
    char err[512];
    if (ag_profile_load("profiles/dolby-cp750.json", &g_cp750, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    g_set.profiles = &g_cp750;
    g_set.nprofiles = 1;
    return 0;
}

static int teardown(void **unused)
{
    (void)unused;
    ag_profile_free(&g_cp750);
    return 0;
}

typedef struct harness {
    uv_loop_t loop;
    ag_device dev;
    rec r;
    void *state;
    const ag_driver_ops *ops;
} harness;

static void h_open(harness *h, int port, int64_t timeout_ms)
{
    memset(h, 0, sizeof *h);
    assert_int_equal(uv_loop_init(&h->loop), 0);
    h->dev.id = (char *)"hall1/audio";
    h->dev.screen = (char *)"hall1";
    h->dev.protocol = (char *)"text";
    h->dev.profile = (char *)"dolby-cp750";
    h->dev.address = (char *)"127.0.0.1";
    h->dev.port = port;
    h->dev.timeout_ms = timeout_ms;
    h->ops = ag_driver_find("text");
    assert_non_null(h->ops);
    ag_sink sink = {&h->r, on_point, on_inventory, on_done};
    char err[256];
    assert_int_equal(h->ops->open(&h->loop, &h->dev, &g_set, &sink, &h->state, err, sizeof err), 0);
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

static void test_shipped_profiles(void **unused)
{
    (void)unused;
    static const char *const files[] = {
        "profiles/dolby-cp750.json", "profiles/dolby-cp850-cp950.json", "profiles/usl-lss200.json"};
    for (size_t i = 0; i < 3; i++) {
        ag_profile p;
        char err[512];
        int rc = ag_profile_load(files[i], &p, err, sizeof err);
        if (rc != 0) fprintf(stderr, "%s\n", err);
        assert_int_equal(rc, 0);
        assert_string_equal(p.protocol, "text");
        ag_text_profile tp;
        assert_int_equal(ag_text_profile_parse(p.doc, p.path, &tp, err, sizeof err), 0);
        assert_true(tp.ncmds >= 2 && tp.port > 0);
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
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

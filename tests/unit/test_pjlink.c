/* test_pjlink.c — the PJLink reply parser (a table of lines) and the driver against a
 * scripted PJLink server thread on 127.0.0.1 (plain sockets, free ports). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/driver.h"
#include "agent/pjlink_parse.h"
#include "timeutil.h"

/* ---- (a) the parser ----------------------------------------------------------------- */

typedef struct pcase {
    const char *line;
    char cls;
    const char *cmd;
    int kind;      /* pj_kind */
    int value_ok;  /* PJ_VALUE: 1 value parses, 0 value malformed */
    double expect; /* first parsed number (where there is one) */
} pcase;

/* Parse the value of cmd; 0 with the first number in *x, -1 malformed. */
static int parse_value(const char *cmd, const char *v, size_t n, double *x)
{
    int i, a, b, e[6];
    long l;
    pj_lamp lamps[PJ_MAX_LAMPS];
    size_t nl;
    char text[64];
    if (strcmp(cmd, "CLSS") == 0) return pj_value_class(v, n, &i) < 0 ? -1 : (*x = i, 0);
    if (strcmp(cmd, "POWR") == 0) return pj_value_power(v, n, &i) < 0 ? -1 : (*x = i, 0);
    if (strcmp(cmd, "ERST") == 0) return pj_value_errors(v, n, e) < 0 ? -1 : (*x = e[5], 0);
    if (strcmp(cmd, "LAMP") == 0)
        return pj_value_lamps(v, n, lamps, PJ_MAX_LAMPS, &nl) < 0
                   ? -1
                   : (*x = (double)lamps[nl - 1].hours, 0);
    if (strcmp(cmd, "INPT") == 0) return pj_value_input(v, n, &i) < 0 ? -1 : (*x = i, 0);
    if (strcmp(cmd, "AVMT") == 0)
        return pj_value_mute(v, n, &a, &b) < 0 ? -1 : (*x = a * 10 + b, 0);
    if (strcmp(cmd, "FILT") == 0) return pj_value_uint(v, n, &l) < 0 ? -1 : (*x = (double)l, 0);
    *x = (double)pj_value_text(v, n, text, sizeof text);
    return 0;
}

static void test_parser_table(void **unused)
{
    (void)unused;
    char longline[200];
    memcpy(longline, "%1NAME=", 7);
    memset(longline + 7, 'x', 140);
    longline[147] = '\0';
    char maxline[140];
    memcpy(maxline, "%1NAME=", 7);
    memset(maxline + 7, 'y', 128);
    maxline[135] = '\0'; /* 135 + CR = 136: the longest allowed */
    const pcase cases[] = {
        {"%1CLSS=1", '1', "CLSS", PJ_VALUE, 1, 1},
        {"%1CLSS=2", '1', "CLSS", PJ_VALUE, 1, 2},
        {"%1CLSS=x", '1', "CLSS", PJ_VALUE, 0, 0},
        {"%1CLSS=", '1', "CLSS", PJ_VALUE, 0, 0},
        {"%1POWR=0", '1', "POWR", PJ_VALUE, 1, 0},
        {"%1POWR=3", '1', "POWR", PJ_VALUE, 1, 3},
        {"%1POWR=4", '1', "POWR", PJ_VALUE, 0, 0},
        {"%1POWR=11", '1', "POWR", PJ_VALUE, 0, 0},
        {"%1POWR=ERR3", '1', "POWR", PJ_ERR3, 0, 0},
        {"%1POWR=ERR4", '1', "POWR", PJ_ERR4, 0, 0},
        {"%1INPT=1", '1', "POWR", PJ_BAD, 0, 0},
        {"%2POWR=1", '1', "POWR", PJ_BAD, 0, 0},
        {"%1powr=1", '1', "POWR", PJ_BAD, 0, 0},
        {"POWR=1", '1', "POWR", PJ_BAD, 0, 0},
        {"%1POWR 1", '1', "POWR", PJ_BAD, 0, 0},
        {"", '1', "POWR", PJ_BAD, 0, 0},
        {"%1POWR=1\n", '1', "POWR", PJ_BAD, 0, 0},
        {"PJLINK ERRA", '1', "CLSS", PJ_ERRA, 0, 0},
        {"%1CLSS=ERRA", '1', "CLSS", PJ_ERRA, 0, 0},
        {"%1ERST=000120", '1', "ERST", PJ_VALUE, 1, 0},
        {"%1ERST=000012", '1', "ERST", PJ_VALUE, 1, 2},
        {"%1ERST=00012", '1', "ERST", PJ_VALUE, 0, 0},
        {"%1ERST=000300", '1', "ERST", PJ_VALUE, 0, 0},
        {"%1LAMP=1000 1 50 0", '1', "LAMP", PJ_VALUE, 1, 50},
        {"%1LAMP=0 0", '1', "LAMP", PJ_VALUE, 1, 0},
        {"%1LAMP=12345", '1', "LAMP", PJ_VALUE, 0, 0},
        {"%1LAMP=100 2", '1', "LAMP", PJ_VALUE, 0, 0},
        {"%1LAMP=1a0 1", '1', "LAMP", PJ_VALUE, 0, 0},
        {"%1LAMP=", '1', "LAMP", PJ_VALUE, 0, 0},
        {"%1LAMP=-5 1", '1', "LAMP", PJ_VALUE, 0, 0},
        {"%1LAMP=ERR1", '1', "LAMP", PJ_ERR1, 0, 0},
        {"%1INPT=31", '1', "INPT", PJ_VALUE, 1, 31},
        {"%1INPT=3A", '1', "INPT", PJ_VALUE, 1, 310},
        {"%1INPT=71", '1', "INPT", PJ_VALUE, 0, 0},
        {"%1INPT=30", '1', "INPT", PJ_VALUE, 0, 0},
        {"%1INPT=ERR2", '1', "INPT", PJ_ERR2, 0, 0},
        {"%1AVMT=31", '1', "AVMT", PJ_VALUE, 1, 11},
        {"%1AVMT=21", '1', "AVMT", PJ_VALUE, 1, 10},
        {"%1AVMT=11", '1', "AVMT", PJ_VALUE, 1, 1},
        {"%1AVMT=30", '1', "AVMT", PJ_VALUE, 1, 0},
        {"%1AVMT=41", '1', "AVMT", PJ_VALUE, 0, 0},
        {"%1AVMT=3", '1', "AVMT", PJ_VALUE, 0, 0},
        {"%2FILT=1234", '2', "FILT", PJ_VALUE, 1, 1234},
        {"%2FILT=12x4", '2', "FILT", PJ_VALUE, 0, 0},
        {"%2FILT=ERR1", '2', "FILT", PJ_ERR1, 0, 0},
        {"%2SNUM=X4K123", '2', "SNUM", PJ_VALUE, 1, 6},
        {"%1NAME=", '1', "NAME", PJ_VALUE, 1, 0},
        {"%1NAME=Hall 1  ", '1', "NAME", PJ_VALUE, 1, 6},
        {"%1NAME=a\tb", '1', "NAME", PJ_BAD, 0, 0},
        {maxline, '1', "NAME", PJ_VALUE, 1, 63},
        {longline, '1', "NAME", PJ_BAD, 0, 0},
    };
    size_t n = sizeof cases / sizeof *cases;
    assert_true(n >= 30);
    for (size_t i = 0; i < n; i++) {
        const pcase *c = &cases[i];
        pj_reply r;
        int k = pj_parse_reply(c->line, strlen(c->line), c->cls, c->cmd, &r);
        if (k != c->kind) fail_msg("case %zu '%s': kind %d, want %d", i, c->line, k, c->kind);
        if (k == PJ_BAD) assert_non_null(r.why);
        if (k != PJ_VALUE) continue;
        double x = -1;
        int ok = parse_value(c->cmd, r.value, r.len, &x) == 0;
        if (ok != c->value_ok)
            fail_msg("case %zu '%s': value ok %d, want %d", i, c->line, ok, c->value_ok);
        if (ok && x != c->expect)
            fail_msg("case %zu '%s': value %g, want %g", i, c->line, x, c->expect);
    }
}

static void test_greeting(void **unused)
{
    (void)unused;
    pj_greeting g;
    const char *why = NULL;
    assert_int_equal(pj_parse_greeting("PJLINK 0", 8, &g, &why), 0);
    assert_int_equal(g.auth, 0);
    assert_int_equal(pj_parse_greeting("PJLINK 1 498e4a67", 17, &g, &why), 0);
    assert_int_equal(g.auth, 1);
    assert_string_equal(g.random, "498e4a67");
    assert_int_equal(pj_parse_greeting("PJLINK ERRA", 11, &g, &why), PJ_ERRA);
    assert_int_equal(pj_parse_greeting("PJLINK 2 abcd", 13, &g, &why), -1);
    assert_int_equal(pj_parse_greeting("HELLO", 5, &g, &why), -1);
    assert_non_null(why);
    assert_int_equal(pj_parse_greeting("PJLINK 1 ", 9, &g, &why), -1);
    assert_int_equal(pj_parse_greeting("PJLINK 1 a b", 12, &g, &why), -1);
    char t[8];
    assert_int_equal(pj_value_text("ab\x01\xff", 4, t, sizeof t), 4);
    assert_string_equal(t, "ab??");
    assert_int_equal(pj_value_text("abcdefghij", 10, t, sizeof t), 7);
}

/* ---- (b) the scripted server -------------------------------------------------------- */

#define RANDOM "498e4a67"
#define PASSWORD "JBMIAProjectorLink"

typedef enum { SRV_NORMAL, SRV_SILENT } srv_mode;

typedef struct server {
    int lfd, port;
    srv_mode mode;
    const char *const *overrides; /* {"%1LAMP ?", "%1LAMP=ERR1", ..., NULL} */
    volatile int stop;
    int held[8];
    int nheld;
    int auth_failures, connections;
    pthread_t th;
} server;

static const char *const answers[][2] = {
    {"%1CLSS ?", "%1CLSS=2"},
    {"%1POWR ?", "%1POWR=1"},
    {"%1ERST ?", "%1ERST=000120"},
    {"%1LAMP ?", "%1LAMP=1000 1 50 0"},
    {"%1INPT ?", "%1INPT=31"},
    {"%1AVMT ?", "%1AVMT=21"},
    {"%1INF1 ?", "%1INF1=EPSON"},
    {"%1INF2 ?", "%1INF2=EB-L1500U"},
    {"%1NAME ?", "%1NAME=Hall 1 lobby"},
    {"%2SNUM ?", "%2SNUM=X4K1234567"},
    {"%2SVER ?", "%2SVER=1.02"},
    {"%2FILT ?", "%2FILT=1234"},
};

static const char *answer(const server *s, const char *q)
{
    for (size_t i = 0; s->overrides && s->overrides[i]; i += 2)
        if (strcmp(s->overrides[i], q) == 0) return s->overrides[i + 1];
    for (size_t i = 0; i < sizeof answers / sizeof *answers; i++)
        if (strcmp(answers[i][0], q) == 0) return answers[i][1];
    return NULL;
}

/* One CR-terminated line (without CR) from fd, waiting at most 3 s. Length or -1. */
static int read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 3000) <= 0) return -1;
        char c;
        if (recv(fd, &c, 1, 0) != 1) return -1;
        if (c == '\r') break;
        if (n + 1 >= cap) return -1;
        buf[n++] = c;
    }
    buf[n] = '\0';
    return (int)n;
}

static void send_str(int fd, const char *s)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s\r", s);
    (void)!send(fd, buf, (size_t)n, MSG_NOSIGNAL);
}

static void md5hex(const char *s, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(s, strlen(s), md, &len, EVP_md5(), NULL);
    for (unsigned i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void serve(server *s, int fd)
{
    send_str(fd, "PJLINK 1 " RANDOM);
    char line[256], want[33];
    md5hex(RANDOM PASSWORD, want);
    int n = read_line(fd, line, sizeof line);
    if (n < 32 || memcmp(line, want, 32) != 0) {
        s->auth_failures++;
        send_str(fd, "PJLINK ERRA");
        return;
    }
    memmove(line, line + 32, (size_t)n - 32 + 1);
    for (;;) {
        const char *a = answer(s, line);
        if (a && strcmp(a, "<silence>") == 0) {
            sleep(1);
            return;
        }
        if (a) {
            send_str(fd, a);
        } else {
            char err[32];
            snprintf(err, sizeof err, "%.6s=ERR1", line);
            send_str(fd, err);
        }
        if (read_line(fd, line, sizeof line) < 0) return;
    }
}

static void *server_main(void *arg)
{
    server *s = arg;
    while (!s->stop) {
        struct pollfd p = {s->lfd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0) continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) continue;
        s->connections++;
        if (s->mode == SRV_SILENT && s->nheld < 8) {
            s->held[s->nheld++] = fd; /* accepted, never a byte back */
            continue;
        }
        serve(s, fd);
        close(fd);
    }
    return NULL;
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 8) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

static void server_start(server *s, srv_mode mode, const char *const *overrides)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->overrides = overrides;
    s->lfd = listen_any(&s->port);
    assert_true(s->lfd >= 0);
    assert_int_equal(pthread_create(&s->th, NULL, server_main, s), 0);
}

static void server_stop(server *s)
{
    s->stop = 1;
    pthread_join(s->th, NULL);
    for (int i = 0; i < s->nheld; i++)
        close(s->held[i]);
    close(s->lfd);
}

/* ---- the sink ----------------------------------------------------------------------- */

#define MAX_PTS 64
typedef struct rec {
    char metric[MAX_PTS][48], label[MAX_PTS][48];
    double value[MAX_PTS];
    int npts, ndone, ninv;
    ag_poll_status status;
    char detail[256];
    int64_t done_at;
    char vendor[64], model[64], serial[64], firmware[64], profile[64];
} rec;

static void on_point(void *ud, const ag_device *dev, const char *metric, const char *unit,
                     const cm_label *labels, size_t nlabels, int64_t ts_ms, double value)
{
    (void)dev, (void)unit, (void)ts_ms;
    rec *r = ud;
    assert_true(r->npts < MAX_PTS);
    snprintf(r->metric[r->npts], 48, "%s", metric);
    if (nlabels == 1)
        snprintf(r->label[r->npts], 48, "%s=%s", labels[0].key, labels[0].value);
    else
        r->label[r->npts][0] = '\0';
    r->value[r->npts++] = value;
}

static void on_inventory(void *ud, const ag_device *dev, const cm_device_info *info)
{
    (void)dev;
    rec *r = ud;
    r->ninv++;
#define CP(f) snprintf(r->f, sizeof r->f, "%s", info->f ? info->f : "")
    CP(vendor);
    CP(model);
    CP(serial);
    CP(firmware);
    CP(profile);
#undef CP
}

static void on_done(void *ud, const ag_device *dev, ag_poll_status status, const char *detail)
{
    (void)dev;
    rec *r = ud;
    r->ndone++;
    r->status = status;
    r->done_at = cm_mono_ms();
    snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
}

/* The value of metric{label} or -1 when absent. */
static double value_of(const rec *r, const char *metric, const char *label)
{
    for (int i = 0; i < r->npts; i++)
        if (strcmp(r->metric[i], metric) == 0 && strcmp(r->label[i], label ? label : "") == 0)
            return r->value[i];
    return -1;
}

static ag_device make_dev(const char *id, int port, const char *password, int64_t timeout_ms)
{
    ag_device d;
    memset(&d, 0, sizeof d);
    d.id = (char *)id;
    d.screen = (char *)"hall1";
    d.kind = (char *)"projector";
    d.protocol = (char *)"pjlink";
    d.address = (char *)"127.0.0.1";
    d.port = port;
    d.password = (char *)password;
    d.timeout_ms = timeout_ms;
    d.retries = 0;
    return d;
}

/* Poll each device once and run the loop until every poll is done (or 10 s). */
static void run_polls(ag_device *devs, rec *recs, size_t n)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    const ag_driver_ops *ops = ag_driver_find("pjlink");
    assert_non_null(ops);
    void *states[4];
    for (size_t i = 0; i < n; i++) {
        memset(&recs[i], 0, sizeof recs[i]);
        ag_sink sink = {&recs[i], on_point, on_inventory, on_done};
        char err[256];
        assert_int_equal(ops->open(&loop, &devs[i], NULL, &sink, &states[i], err, sizeof err), 0);
        assert_int_equal(ops->poll(states[i]), 0);
        assert_int_equal(ops->poll(states[i]), -1); /* already in flight */
        assert_int_equal(recs[i].ndone, 0);         /* never from inside poll() */
    }
    int64_t end = cm_mono_ms() + 10000;
    for (;;) {
        size_t finished = 0;
        for (size_t i = 0; i < n; i++)
            finished += recs[i].ndone > 0;
        if (finished == n || cm_mono_ms() > end) break;
        uv_run(&loop, UV_RUN_ONCE);
    }
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(recs[i].ndone, 1);
        ops->close(states[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(recs[i].ndone, 1); /* nothing after close */
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_full_poll(void **unused)
{
    (void)unused;
    server s;
    server_start(&s, SRV_NORMAL, NULL);
    ag_device d = make_dev("hall1/projector", s.port, PASSWORD, 2000);
    rec r;
    run_polls(&d, &r, 1);
    server_stop(&s);
    if (r.status != AG_POLL_OK) fail_msg("status %d: %s", r.status, r.detail);
    assert_int_equal(s.auth_failures, 0);
    assert_true(value_of(&r, "power_state", NULL) == 1);
    assert_true(value_of(&r, "error_status", "component=fan") == 0);
    assert_true(value_of(&r, "error_status", "component=cover") == 1);
    assert_true(value_of(&r, "error_status", "component=filter") == 2);
    assert_true(value_of(&r, "error_status", "component=other") == 0);
    assert_true(value_of(&r, "light_source_hours", "lamp=1") == 1000);
    assert_true(value_of(&r, "light_source_on", "lamp=1") == 1);
    assert_true(value_of(&r, "light_source_hours", "lamp=2") == 50);
    assert_true(value_of(&r, "light_source_on", "lamp=2") == 0);
    assert_true(value_of(&r, "input_source", NULL) == 31);
    assert_true(value_of(&r, "audio_mute", NULL) == 1);
    assert_true(value_of(&r, "video_mute", NULL) == 0);
    assert_true(value_of(&r, "filter_hours", NULL) == 1234);
    assert_int_equal(r.npts, 1 + 6 + 4 + 1 + 2 + 1);
    assert_int_equal(r.ninv, 1);
    assert_string_equal(r.vendor, "EPSON");
    assert_string_equal(r.model, "EB-L1500U");
    assert_string_equal(r.serial, "X4K1234567");
    assert_string_equal(r.firmware, "1.02");
}

static void test_class1_standby(void **unused)
{
    (void)unused;
    static const char *const ov[] = {"%1CLSS ?", "%1CLSS=1", "%1POWR ?", "%1POWR=0", NULL};
    server s;
    server_start(&s, SRV_NORMAL, ov);
    ag_device d = make_dev("p", s.port, PASSWORD, 2000);
    rec r;
    run_polls(&d, &r, 1);
    server_stop(&s);
    assert_int_equal(r.status, AG_POLL_OK);
    assert_true(value_of(&r, "power_state", NULL) == 4);
    assert_true(value_of(&r, "filter_hours", NULL) == -1); /* class 1: no FILT */
    assert_string_equal(r.serial, "");
}

static void test_wrong_password(void **unused)
{
    (void)unused;
    server s;
    server_start(&s, SRV_NORMAL, NULL);
    ag_device d = make_dev("p", s.port, "wrong", 2000);
    rec r;
    run_polls(&d, &r, 1);
    server_stop(&s);
    assert_int_equal(r.status, AG_POLL_AUTH);
    assert_int_equal(s.auth_failures, 1);
    assert_int_equal(r.npts, 0);
    assert_int_equal(r.ninv, 0);
}

static void test_err1_lamp(void **unused)
{
    (void)unused;
    static const char *const ov[] = {"%1LAMP ?", "%1LAMP=ERR1", "%1INPT ?", "%1INPT=ERR3",
                                     "%1POWR ?", "%1POWR=ERR4", NULL};
    server s;
    server_start(&s, SRV_NORMAL, ov);
    ag_device d = make_dev("p", s.port, PASSWORD, 2000);
    rec r;
    run_polls(&d, &r, 1);
    server_stop(&s);
    assert_int_equal(r.status, AG_POLL_OK);
    assert_true(value_of(&r, "light_source_hours", "lamp=1") == -1);
    assert_true(value_of(&r, "input_source", NULL) == -1);
    assert_true(value_of(&r, "power_state", NULL) == 5);
    assert_true(value_of(&r, "error_status", "component=filter") == 2);
    assert_true(value_of(&r, "filter_hours", NULL) == 1234);
    assert_string_equal(r.model, "EB-L1500U");
}

static void test_garbage(void **unused)
{
    (void)unused;
    static const char *const ov1[] = {"%1ERST ?", "%1ERST=0x0000", NULL};
    static const char *const ov2[] = {"%1AVMT ?", "%1POWR=1", NULL};
    static const char *const *ovs[] = {ov1, ov2};
    for (int i = 0; i < 2; i++) {
        server s;
        server_start(&s, SRV_NORMAL, ovs[i]);
        ag_device d = make_dev("p", s.port, PASSWORD, 2000);
        rec r;
        run_polls(&d, &r, 1);
        server_stop(&s);
        assert_int_equal(r.status, AG_POLL_PROTOCOL);
        assert_non_null(strstr(r.detail, i == 0 ? "ERST" : "AVMT"));
        assert_int_equal(r.ninv, 0);
    }
}

static void test_too_long(void **unused)
{
    (void)unused;
    static char longname[200];
    memcpy(longname, "%1NAME=", 7);
    memset(longname + 7, 'n', 150);
    static const char *const ov[] = {"%1NAME ?", longname, NULL};
    server s;
    server_start(&s, SRV_NORMAL, ov);
    ag_device d = make_dev("p", s.port, PASSWORD, 2000);
    rec r;
    run_polls(&d, &r, 1);
    server_stop(&s);
    assert_int_equal(r.status, AG_POLL_PROTOCOL);
    assert_non_null(strstr(r.detail, "NAME"));
}

static void test_timeout(void **unused)
{
    (void)unused;
    server s;
    server_start(&s, SRV_SILENT, NULL);
    ag_device d = make_dev("p", s.port, PASSWORD, 300);
    rec r;
    int64_t t0 = cm_mono_ms();
    run_polls(&d, &r, 1);
    int64_t took = r.done_at - t0;
    server_stop(&s);
    assert_int_equal(r.status, AG_POLL_TIMEOUT);
    assert_true(took >= 250 && took < 1500);
}

static void test_timeout_mid_session(void **unused)
{
    (void)unused;
    static const char *const ov[] = {"%1INF1 ?", "<silence>", NULL};
    server s;
    server_start(&s, SRV_NORMAL, ov);
    ag_device d = make_dev("p", s.port, PASSWORD, 300);
    rec r;
    run_polls(&d, &r, 1);
    server_stop(&s);
    assert_int_equal(r.status, AG_POLL_TIMEOUT);
    assert_non_null(strstr(r.detail, "INF1"));
    assert_true(value_of(&r, "power_state", NULL) == 1);
}

static void test_retries(void **unused)
{
    (void)unused;
    server s;
    server_start(&s, SRV_SILENT, NULL);
    ag_device d = make_dev("p", s.port, PASSWORD, 200);
    d.retries = 2;
    rec r;
    run_polls(&d, &r, 1);
    server_stop(&s);
    assert_int_equal(r.status, AG_POLL_TIMEOUT);
    assert_int_equal(s.connections, 3);
}

static void test_refused(void **unused)
{
    (void)unused;
    int port;
    int fd = listen_any(&port);
    assert_true(fd >= 0);
    close(fd); /* nothing listens there now */
    ag_device d = make_dev("p", port, PASSWORD, 2000);
    rec r;
    run_polls(&d, &r, 1);
    assert_int_equal(r.status, AG_POLL_REFUSED);
}

static void test_dead_and_live(void **unused)
{
    (void)unused;
    server dead, live;
    server_start(&dead, SRV_SILENT, NULL);
    server_start(&live, SRV_NORMAL, NULL);
    ag_device d[2] = {make_dev("dead", dead.port, PASSWORD, 2000),
                      make_dev("live", live.port, PASSWORD, 2000)};
    rec r[2];
    int64_t t0 = cm_mono_ms();
    run_polls(d, r, 2);
    server_stop(&dead);
    server_stop(&live);
    assert_int_equal(r[1].status, AG_POLL_OK);
    assert_true(r[1].done_at - t0 < 1000);
    assert_int_equal(r[0].status, AG_POLL_TIMEOUT);
    assert_true(r[0].done_at - t0 >= 1900);
}

static void test_close_in_flight(void **unused)
{
    (void)unused;
    server s;
    server_start(&s, SRV_SILENT, NULL);
    ag_device d = make_dev("p", s.port, PASSWORD, 5000);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    rec r;
    memset(&r, 0, sizeof r);
    ag_sink sink = {&r, on_point, on_inventory, on_done};
    void *st;
    char err[256];
    assert_int_equal(ag_pjlink_driver.open(&loop, &d, NULL, &sink, &st, err, sizeof err), 0);
    assert_int_equal(ag_pjlink_driver.poll(st), 0);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    ag_pjlink_driver.close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.ndone, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    server_stop(&s);
}

/* Two polls in a row on one state: a fresh connection each time, the socket closed between. */
static void test_two_polls(void **unused)
{
    (void)unused;
    server s;
    server_start(&s, SRV_NORMAL, NULL);
    ag_device d = make_dev("p", s.port, PASSWORD, 2000);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    rec r;
    memset(&r, 0, sizeof r);
    ag_sink sink = {&r, on_point, on_inventory, on_done};
    void *st;
    char err[256];
    assert_int_equal(ag_pjlink_driver.open(&loop, &d, NULL, &sink, &st, err, sizeof err), 0);
    for (int round = 1; round <= 2; round++) {
        assert_int_equal(ag_pjlink_driver.poll(st), 0);
        int64_t end = cm_mono_ms() + 5000;
        while (r.ndone < round && cm_mono_ms() < end)
            uv_run(&loop, UV_RUN_ONCE);
        assert_int_equal(r.ndone, round);
        assert_int_equal(r.status, AG_POLL_OK);
    }
    assert_int_equal(r.ninv, 2);
    ag_pjlink_driver.close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    server_stop(&s);
    assert_int_equal(s.connections, 2);
}

static void test_registered_and_profile(void **unused)
{
    (void)unused;
    const ag_driver_ops *ops = ag_driver_find("pjlink");
    assert_ptr_equal(ops, &ag_pjlink_driver);
    assert_string_equal(ops->name, "pjlink");
    assert_ptr_equal(ag_driver_find("snmp"), &ag_snmp_driver);
    ag_profile p;
    memset(&p, 0, sizeof p);
    char err[512];
    if (ag_profile_load("profiles/pjlink-class1-2.json", &p, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(p.protocol, "pjlink");
    assert_string_equal(p.kind, "projector");
    ag_profile_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser_table),   cmocka_unit_test(test_greeting),
        cmocka_unit_test(test_full_poll),      cmocka_unit_test(test_class1_standby),
        cmocka_unit_test(test_wrong_password), cmocka_unit_test(test_err1_lamp),
        cmocka_unit_test(test_garbage),        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_timeout),        cmocka_unit_test(test_timeout_mid_session),
        cmocka_unit_test(test_retries),        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_dead_and_live),  cmocka_unit_test(test_close_in_flight),
        cmocka_unit_test(test_two_polls),      cmocka_unit_test(test_registered_and_profile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

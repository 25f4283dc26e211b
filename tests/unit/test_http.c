/* test_http.c — the HTTP/JSON driver: RFC 6901 pointers (a table), the pure mapper, profile
 * errors naming the JSON path, the shipped profiles, and the driver on a libuv loop against
 * tiny HTTP server threads on 127.0.0.1 (plain sockets, free ports). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/driver.h"
#include "agent/http_profile.h"
#include "log.h"
#include "timeutil.h"

/* ---- a tiny HTTP server ------------------------------------------------------------- */

typedef struct route {
    const char *path;
    int status;
    const char *body;
    int delay_ms; /* wait this long before answering; -1: answer without Content-Length */
} route;

typedef struct srv {
    int fd, port;
    pthread_t th;
    volatile int stop;
    const route *routes;
    size_t nroutes;
    pthread_mutex_t mu;
    char last[8192]; /* the last request as received (headers and body) */
    int nreq;
} srv;

static void serve_one(srv *s, int c)
{
    char buf[8192];
    size_t len = 0;
    char *hend = NULL;
    int64_t until = cm_mono_ms() + 2000;
    while (!hend && len + 1 < sizeof buf && cm_mono_ms() < until) {
        struct pollfd p = {c, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t n = recv(c, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0) return;
        len += (size_t)n;
        buf[len] = '\0';
        hend = strstr(buf, "\r\n\r\n");
    }
    if (!hend) return;
    size_t want = (size_t)(hend + 4 - buf);
    const char *cl = strcasestr(buf, "Content-Length:");
    if (cl && cl < hend) want += (size_t)strtoul(cl + 15, NULL, 10);
    while (len < want && len + 1 < sizeof buf) {
        struct pollfd p = {c, POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0) break;
        ssize_t n = recv(c, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    pthread_mutex_lock(&s->mu);
    memcpy(s->last, buf, len + 1);
    s->nreq++;
    pthread_mutex_unlock(&s->mu);
    char path[256] = "";
    sscanf(buf, "%*s %255s", path);
    const route *r = NULL;
    for (size_t i = 0; i < s->nroutes; i++)
        if (strcmp(s->routes[i].path, path) == 0) r = &s->routes[i];
    int status = r ? r->status : 404;
    const char *body = r ? r->body : "{}";
    if (r && r->delay_ms > 0) {
        int64_t t = cm_mono_ms() + r->delay_ms;
        while (!s->stop && cm_mono_ms() < t) {
            struct pollfd p = {c, POLLIN, 0};
            if (poll(&p, 1, 20) > 0) return; /* the client gave up */
        }
    }
    char head[256];
    int hn = r && r->delay_ms < 0
                 ? snprintf(head, sizeof head,
                            "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                            "Connection: close\r\n\r\n",
                            status)
                 : snprintf(head, sizeof head,
                            "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                            status, strlen(body));
    if (send(c, head, (size_t)hn, MSG_NOSIGNAL) < 0) return;
    if (send(c, body, strlen(body), MSG_NOSIGNAL) < 0) return;
}

static void *srv_main(void *arg)
{
    srv *s = arg;
    while (!s->stop) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0) continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) continue;
        serve_one(s, c);
        close(c);
    }
    return NULL;
}

static void srv_start(srv *s, const route *routes, size_t n)
{
    memset(s, 0, sizeof *s);
    s->routes = routes;
    s->nroutes = n;
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    socklen_t al = sizeof a;
    getsockname(s->fd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_stop(srv *s)
{
    s->stop = 1;
    pthread_join(s->th, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
}

/* A port nobody listens on. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- profiles in a temporary folder -------------------------------------------------- */

static char g_dir[64];

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Load profile text as file <name>.json; returns ag_profile_load's result, err filled. */
static int load_text(const char *name, const char *text, ag_profile *p, char *err, size_t el)
{
    char file[128], path[256];
    snprintf(file, sizeof file, "%s.json", name);
    write_file(file, text);
    snprintf(path, sizeof path, "%s/%s", g_dir, file);
    int rc = ag_profile_load(path, p, err, el);
    unlink(path);
    return rc;
}

#define HEAD(n) "{\"name\": \"" n "\", \"kind\": \"led_screen\", \"protocol\": \"http\", " \
                "\"sources\": [\"test\"], "

static const char *const led_profile =
    HEAD("t-led") "\"requests\": [{\"path\": \"/api/status\","
    " \"identity\": {\"model\": \"/device/model\", \"serial\": \"/device/serial\","
    " \"firmware\": \"/device/fw\"},"
    " \"values\": [{\"pointer\": \"/luminance/nits\", \"metric\": \"screen_luminance_nits\","
    " \"labels\": {\"mode\": \"2d\"}, \"unit\": \"nits\"},"
    " {\"pointer\": \"/failed\", \"metric\": \"led_failed_pixels\"},"
    " {\"pointer\": \"/state\", \"metric\": \"power_state\", \"enum\": {\"on\": 1, \"off\": 4}},"
    " {\"pointer\": \"/missing\", \"metric\": \"white_x\"},"
    " {\"pointer\": \"/nothing\", \"metric\": \"white_y\"},"
    " {\"each\": \"/cabinets\", \"label\": {\"cabinet\": \"/id\"}, \"values\": ["
    "  {\"pointer\": \"/temperature\", \"metric\": \"led_cabinet_temperature_celsius\"},"
    "  {\"pointer\": \"/online\", \"metric\": \"led_cabinet_online\"},"
    "  {\"pointer\": \"/mv\", \"metric\": \"led_receiving_card_voltage_volts\", \"scale\": 0.001}"
    " ]}]}]}";

static const char *const led_json =
    "{\"device\": {\"model\": \"LED-9000\", \"serial\": \"SN123\", \"fw\": \"2.1\"},"
    " \"luminance\": {\"nits\": 48.5}, \"failed\": 3, \"state\": \"on\", \"nothing\": null,"
    " \"cabinets\": [{\"id\": \"A1\", \"temperature\": 41.5, \"online\": true, \"mv\": 5020},"
    " {\"id\": 2, \"temperature\": \"39\", \"online\": false, \"mv\": 4980}]}";

static const char *const sensor_profile =
    HEAD("t-sensor") "\"requests\": [{\"path\": \"/m\", \"values\": ["
    " {\"each\": \"/sound\", \"label\": {\"channel\": \"/ch\"},"
    "  \"values\": [{\"pointer\": \"/dbc\", \"metric\": \"spl_dbc\", \"unit\": \"dB\"}]},"
    " {\"pointer\": \"/light/x\", \"metric\": \"white_x\"}]}]}";

static const char *const sensor_json =
    "{\"light\": {\"x\": 0.314}, \"sound\": [{\"ch\": \"L\", \"dbc\": 85.1},"
    " {\"ch\": \"R\", \"dbc\": 84.9}, {\"ch\": \"C\", \"dbc\": 85.0}]}";

static const char *const rpc_profile =
    HEAD("t-rpc") "\"requests\": [{\"method\": \"POST\", \"path\": \"/rpc\", \"body\":"
    " {\"jsonrpc\": \"2.0\", \"method\": \"property.get\", \"id\": 1,"
    " \"params\": {\"property\": \"system.state\"}},"
    " \"values\": [{\"pointer\": \"/result\", \"metric\": \"power_state\","
    " \"enum\": {\"on\": 1, \"standby\": 4}}]}]}";

/* ---- a sink that records ------------------------------------------------------------- */

typedef struct pt {
    char metric[64], labels[128], unit[16];
    double v;
} pt;

typedef struct rec {
    pt pts[64];
    size_t npts;
    int ndone;
    ag_poll_status status;
    char detail[256];
    int ninv;
    char model[64], serial[64], firmware[64], profile[64];
    int64_t done_ms;
} rec;

static void on_point(void *ud, const ag_device *dev, const char *metric, const char *unit,
                     const cm_label *labels, size_t nlabels, int64_t ts, double v)
{
    (void)dev;
    (void)ts;
    rec *r = ud;
    if (r->npts >= 64) return;
    pt *p = &r->pts[r->npts++];
    snprintf(p->metric, sizeof p->metric, "%s", metric);
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "");
    p->labels[0] = '\0';
    for (size_t i = 0; i < nlabels; i++) {
        size_t l = strlen(p->labels);
        snprintf(p->labels + l, sizeof p->labels - l, "%s%s=%s", i ? "," : "", labels[i].key,
                 labels[i].value);
    }
    p->v = v;
}

static void on_inv(void *ud, const ag_device *dev, const cm_device_info *info)
{
    (void)dev;
    rec *r = ud;
    r->ninv++;
    snprintf(r->model, sizeof r->model, "%s", info->model ? info->model : "");
    snprintf(r->serial, sizeof r->serial, "%s", info->serial ? info->serial : "");
    snprintf(r->firmware, sizeof r->firmware, "%s", info->firmware ? info->firmware : "");
    snprintf(r->profile, sizeof r->profile, "%s", info->profile ? info->profile : "");
}

static void on_done(void *ud, const ag_device *dev, ag_poll_status st, const char *detail)
{
    (void)dev;
    rec *r = ud;
    r->ndone++;
    r->status = st;
    r->done_ms = cm_mono_ms();
    snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
}

static const pt *find(const rec *r, const char *metric, const char *labels)
{
    for (size_t i = 0; i < r->npts; i++)
        if (strcmp(r->pts[i].metric, metric) == 0 && strcmp(r->pts[i].labels, labels) == 0)
            return &r->pts[i];
    return NULL;
}

static void expect(const rec *r, const char *metric, const char *labels, double v)
{
    const pt *p = find(r, metric, labels);
    if (!p) fail_msg("no sample %s{%s}", metric, labels);
    assert_true(p->v > v - 1e-9 && p->v < v + 1e-9);
}

/* ---- driving the driver -------------------------------------------------------------- */

typedef struct dev_run {
    ag_device dev;
    rec r;
    ag_sink sink;
    void *state;
} dev_run;

static ag_profile_set g_set;

static void add_profile(const char *name, const char *text)
{
    ag_profile *np = realloc(g_set.profiles, (g_set.nprofiles + 1) * sizeof *np);
    assert_non_null(np);
    g_set.profiles = np;
    char err[512];
    char file[128], path[256];
    snprintf(file, sizeof file, "%s.json", name);
    write_file(file, text);
    snprintf(path, sizeof path, "%s/%s", g_dir, file);
    if (ag_profile_load(path, &g_set.profiles[g_set.nprofiles], err, sizeof err) != 0)
        fail_msg("%s", err);
    unlink(path);
    g_set.nprofiles++;
}

static void dev_init(dev_run *d, const char *profile, int port, int64_t timeout_ms)
{
    memset(d, 0, sizeof *d);
    d->dev.id = "hall1/dev";
    d->dev.screen = "hall1";
    d->dev.protocol = "http";
    d->dev.profile = (char *)profile;
    d->dev.address = "127.0.0.1";
    d->dev.port = port;
    d->dev.timeout_ms = timeout_ms;
    d->dev.tls_verify = 1;
    d->sink.ud = &d->r;
    d->sink.point = on_point;
    d->sink.inventory = on_inv;
    d->sink.done = on_done;
}

/* Open and poll every device, run the loop until each reported done (10 s at most), close. */
static void run_devices(dev_run **ds, size_t n)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    for (size_t i = 0; i < n; i++) {
        char err[512];
        if (ag_http_driver.open(&loop, &ds[i]->dev, &g_set, &ds[i]->sink, &ds[i]->state, err,
                                sizeof err) != 0)
            fail_msg("open: %s", err);
        assert_int_equal(ag_http_driver.poll(ds[i]->state), 0);
        assert_int_equal(ds[i]->r.ndone, 0); /* never from inside poll() */
        assert_int_equal(ag_http_driver.poll(ds[i]->state), -1); /* one poll at a time */
    }
    int64_t until = cm_mono_ms() + 10000;
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += ds[i]->r.ndone > 0;
        if (done == n || cm_mono_ms() > until) break;
        uv_run(&loop, UV_RUN_ONCE);
    }
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ds[i]->r.ndone, 1);
        ag_http_driver.close(ds[i]->state);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void run_one(dev_run *d)
{
    dev_run *ds[1] = {d};
    run_devices(ds, 1);
}

/* ---- tests: pointers and mapping ----------------------------------------------------- */

static void test_pointer_table(void **unused)
{
    (void)unused;
    json_error_t je;
    json_t *doc = json_loads("{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2,"
                             " \"e^f\": 3, \"g|h\": 4, \"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7,"
                             " \"m~n\": 8, \"o\": {\"~1\": 9}}",
                             0, &je);
    assert_non_null(doc);
    assert_ptr_equal(ag_json_pointer_get(doc, ""), doc);
    assert_ptr_equal(ag_json_pointer_get(doc, "/foo"), json_object_get(doc, "foo"));
    assert_string_equal(json_string_value(ag_json_pointer_get(doc, "/foo/0")), "bar");
    assert_string_equal(json_string_value(ag_json_pointer_get(doc, "/foo/1")), "baz");
    const struct {
        const char *ptr;
        int value;
    } ok[] = {{"/", 0},     {"/a~1b", 1}, {"/c%d", 2}, {"/e^f", 3},   {"/g|h", 4},
              {"/i\\j", 5}, {"/k\"l", 6}, {"/ ", 7},   {"/m~0n", 8}, {"/o/~01", 9}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        json_t *v = ag_json_pointer_get(doc, ok[i].ptr);
        if (!v) fail_msg("pointer %s: no value", ok[i].ptr);
        assert_int_equal(json_integer_value(v), ok[i].value);
        assert_int_equal(ag_json_pointer_check(ok[i].ptr), 0);
    }
    const char *none[] = {"foo", "/foo/2", "/foo/-", "/foo/01", "/foo/0/x", "/foo/+1",
                          "/nope", "/m~n", "/m~2n", "/a/b", "/o/~1", "/foo/99999999999"};
    for (size_t i = 0; i < sizeof none / sizeof *none; i++)
        if (ag_json_pointer_get(doc, none[i])) fail_msg("pointer %s: unexpected value", none[i]);
    assert_int_equal(ag_json_pointer_check(""), 0);
    assert_int_equal(ag_json_pointer_check("foo"), -1);
    assert_int_equal(ag_json_pointer_check("/m~2n"), -1);
    assert_int_equal(ag_json_pointer_check("/trailing~"), -1);
    json_decref(doc);
}

static void collect(void *ud, const char *metric, const char *unit, const cm_label *labels,
                    size_t nlabels, double value)
{
    on_point(ud, NULL, metric, unit, labels, nlabels, 0, value);
}

static void test_map_pure(void **unused)
{
    (void)unused;
    json_error_t je;
    json_t *pdoc = json_loads(led_profile, 0, &je);
    assert_non_null(pdoc);
    ag_http_profile hp;
    char err[512];
    if (ag_http_profile_parse("t", pdoc, &hp, err, sizeof err) != 0) fail_msg("%s", err);
    json_t *ans = json_loads(led_json, 0, &je);
    assert_non_null(ans);
    rec r;
    memset(&r, 0, sizeof r);
    ag_http_identity id;
    memset(&id, 0, sizeof id);
    assert_int_equal(ag_http_map(&hp.reqs[0], ans, collect, &r, &id, err, sizeof err), 0);
    assert_int_equal(r.npts, 3 + 2 * 3);
    expect(&r, "screen_luminance_nits", "mode=2d", 48.5);
    assert_string_equal(find(&r, "screen_luminance_nits", "mode=2d")->unit, "nits");
    expect(&r, "led_failed_pixels", "", 3);
    expect(&r, "power_state", "", 1);
    assert_null(find(&r, "white_x", ""));
    assert_null(find(&r, "white_y", "")); /* null: no sample */
    expect(&r, "led_cabinet_temperature_celsius", "cabinet=A1", 41.5);
    expect(&r, "led_cabinet_temperature_celsius", "cabinet=2", 39);
    expect(&r, "led_cabinet_online", "cabinet=A1", 1);
    expect(&r, "led_cabinet_online", "cabinet=2", 0);
    expect(&r, "led_receiving_card_voltage_volts", "cabinet=2", 4.98);
    assert_string_equal(id.model, "LED-9000");
    assert_string_equal(id.firmware, "2.1");
    json_decref(ans);

    /* wrong types: counted, named; the rest still maps */
    ans = json_loads("{\"luminance\": {\"nits\": [1]}, \"failed\": \"many\", \"state\": \"x\","
                     " \"cabinets\": [{\"temperature\": 1}, {\"id\": \"B\", \"online\": 1}]}",
                     0, &je);
    assert_non_null(ans);
    memset(&r, 0, sizeof r);
    assert_int_equal(ag_http_map(&hp.reqs[0], ans, collect, &r, NULL, err, sizeof err), 4);
    assert_non_null(strstr(err, "screen_luminance_nits"));
    assert_int_equal(r.npts, 1);
    expect(&r, "led_cabinet_online", "cabinet=B", 1);
    json_decref(ans);
    /* a non-object answer maps to nothing */
    ans = json_loads("[1, 2]", 0, &je);
    memset(&r, 0, sizeof r);
    assert_int_equal(ag_http_map(&hp.reqs[0], ans, collect, &r, NULL, err, sizeof err), 0);
    assert_int_equal(r.npts, 0);
    json_decref(ans);
    ag_http_profile_free(&hp);
    json_decref(pdoc);
}

/* ---- tests: profiles ----------------------------------------------------------------- */

static void expect_error(const char *name, const char *text, const char *want)
{
    ag_profile p;
    char err[512] = "";
    if (load_text(name, text, &p, err, sizeof err) == 0) {
        ag_profile_free(&p);
        fail_msg("%s: loaded, expected an error with '%s'", name, want);
    }
    if (!strstr(err, want)) fail_msg("%s: error '%s' lacks '%s'", name, err, want);
}

static void test_profile_errors(void **unused)
{
    (void)unused;
    expect_error("e1", HEAD("e1") "\"requests\": [{\"path\": \"/a\", \"values\": ["
                 "{\"pointer\": \"/x\", \"metric\": \"m\"}, {\"pointer\": \"x/y\", \"metric\": \"m\"}]}]}",
                 "e1.json: $.requests[0].values[1].pointer: 'x/y' is not a JSON pointer");
    expect_error("e2", HEAD("e2") "\"requests\": [{\"path\": \"/a\", \"values\": ["
                 "{\"pointer\": \"/x\", \"metric\": \"m\", \"bogus\": 1}]}]}",
                 "$.requests[0].values[0].bogus: unknown key");
    expect_error("e3", HEAD("e3") "\"requests\": [{\"path\": \"/a\", \"values\": ["
                 "{\"pointer\": \"/x\"}]}]}",
                 "$.requests[0].values[0].metric: missing");
    expect_error("e4", HEAD("e4") "\"requests\": [{\"path\": \"/a\", \"values\": ["
                 "{\"each\": \"/c\", \"label\": {\"cabinet\": \"/i~d\"}, \"values\": []}]}]}",
                 "$.requests[0].values[0].label.cabinet: '/i~d' is not a JSON pointer");
    expect_error("e5", HEAD("e5") "\"requests\": [{\"path\": \"/a\", \"values\": ["
                 "{\"each\": \"/c\", \"values\": [{\"pointer\": \"/t\", \"metric\": \"Bad\"}]}]}]}",
                 "$.requests[0].values[0].values[0].metric: 'Bad' is not a valid name");
    expect_error("e6", HEAD("e6") "\"requests\": [{\"path\": \"/a\", \"method\": \"PUT\","
                 " \"values\": [{\"pointer\": \"/x\", \"metric\": \"m\"}]}]}",
                 "$.requests[0].method: expected \"GET\" or \"POST\"");
    expect_error("e7", HEAD("e7") "\"requests\": [{\"path\": \"/a\", \"identity\":"
                 " {\"model\": \"model\"}}]}",
                 "$.requests[0].identity.model: 'model' is not a JSON pointer");
    expect_error("e8", HEAD("e8") "\"requests\": [{\"path\": \"/a\", \"values\": ["
                 "{\"pointer\": \"/x\", \"metric\": \"m\", \"enum\": {\"a\": 1}, \"scale\": 2}]}]}",
                 "$.requests[0].values[0].enum: enum and scale/offset exclude each other");
    expect_error("e9", HEAD("e9") "\"requests\": [{\"path\": \"/a\", \"body\": {}, \"values\": ["
                 "{\"pointer\": \"/x\", \"metric\": \"m\"}]}]}",
                 "$.requests[0].body: a body needs \"method\": \"POST\"");
    expect_error("e10", HEAD("e10") "\"scalars\": []}", "$.scalars: unknown key");
    expect_error("e11", HEAD("e11") "\"requests\": []}", "$.requests: expected a non-empty array");
    expect_error("e12", HEAD("e12") "\"requests\": [{\"path\": \"a b\", \"values\": ["
                 "{\"pointer\": \"/x\", \"metric\": \"m\"}]}]}",
                 "$.requests[0].path:");
}

static void test_shipped_profiles(void **unused)
{
    (void)unused;
    ag_profile_set set;
    char err[512];
    if (ag_profiles_load_dir("profiles", &set, err, sizeof err) != 0) fail_msg("%s", err);
    const char *names[] = {"led-screen-http", "light-sound-sensor-http", "barco-pulse"};
    for (size_t i = 0; i < 3; i++) {
        const ag_profile *p = ag_profile_find(&set, names[i]);
        if (!p) fail_msg("profile %s not shipped", names[i]);
        assert_string_equal(p->protocol, "http");
        ag_http_profile hp;
        assert_int_equal(ag_http_profile_parse(p->path, p->doc, &hp, err, sizeof err), 0);
        assert_true(hp.nreqs >= 1);
        ag_http_profile_free(&hp);
    }
    ag_profiles_free(&set);
}

/* ---- tests: the driver --------------------------------------------------------------- */

static void test_full_poll(void **unused)
{
    (void)unused;
    const route routes[] = {{"/api/status", 200, led_json, 0}};
    srv s;
    srv_start(&s, routes, 1);
    dev_run d;
    dev_init(&d, "t-led", s.port, 2000);
    d.dev.username = "admin";
    d.dev.password = "s3cret";
    run_one(&d);
    srv_stop(&s);
    assert_int_equal(d.r.status, AG_POLL_OK);
    assert_int_equal(d.r.npts, 9);
    expect(&d.r, "screen_luminance_nits", "mode=2d", 48.5);
    expect(&d.r, "led_cabinet_temperature_celsius", "cabinet=A1", 41.5);
    expect(&d.r, "led_cabinet_online", "cabinet=2", 0);
    expect(&d.r, "led_receiving_card_voltage_volts", "cabinet=A1", 5.02);
    assert_int_equal(d.r.ninv, 1);
    assert_string_equal(d.r.model, "LED-9000");
    assert_string_equal(d.r.serial, "SN123");
    assert_string_equal(d.r.firmware, "2.1");
    assert_string_equal(d.r.profile, "t-led");
    assert_int_equal(s.nreq, 1);
    assert_non_null(strstr(s.last, "GET /api/status HTTP/1.1\r\n"));
    /* admin:s3cret */
    assert_non_null(strstr(s.last, "Authorization: Basic YWRtaW46czNjcmV0\r\n"));
}

static void test_sensor_each(void **unused)
{
    (void)unused;
    const route routes[] = {{"/m", 200, sensor_json, 0}};
    srv s;
    srv_start(&s, routes, 1);
    dev_run d;
    dev_init(&d, "t-sensor", s.port, 2000);
    run_one(&d);
    srv_stop(&s);
    assert_int_equal(d.r.status, AG_POLL_OK);
    assert_int_equal(d.r.npts, 4);
    expect(&d.r, "spl_dbc", "channel=L", 85.1);
    expect(&d.r, "spl_dbc", "channel=R", 84.9);
    expect(&d.r, "spl_dbc", "channel=C", 85.0);
    assert_string_equal(find(&d.r, "spl_dbc", "channel=C")->unit, "dB");
    expect(&d.r, "white_x", "", 0.314);
    assert_null(strstr(s.last, "Authorization:")); /* no credentials configured */
}

static void test_post_rpc(void **unused)
{
    (void)unused;
    const route routes[] = {{"/rpc", 200, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"result\": \"on\"}", 0}};
    srv s;
    srv_start(&s, routes, 1);
    dev_run d;
    dev_init(&d, "t-rpc", s.port, 2000);
    run_one(&d);
    srv_stop(&s);
    assert_int_equal(d.r.status, AG_POLL_OK);
    expect(&d.r, "power_state", "", 1);
    assert_non_null(strstr(s.last, "POST /rpc HTTP/1.1\r\n"));
    assert_non_null(strstr(s.last, "Content-Type: application/json\r\n"));
    const char *body = strstr(s.last, "\r\n\r\n");
    assert_non_null(body);
    json_error_t je;
    json_t *got = json_loads(body + 4, 0, &je);
    json_t *want = json_loads("{\"jsonrpc\": \"2.0\", \"method\": \"property.get\", \"id\": 1,"
                              " \"params\": {\"property\": \"system.state\"}}",
                              0, &je);
    assert_non_null(got);
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
}

static void expect_status(const route *r, ag_poll_status want, const char *detail)
{
    srv s;
    srv_start(&s, r, 1);
    dev_run d;
    dev_init(&d, "t-led", s.port, 2000);
    run_one(&d);
    srv_stop(&s);
    assert_int_equal(d.r.status, want);
    assert_int_equal(d.r.ninv, 0);
    if (!strstr(d.r.detail, detail)) fail_msg("detail '%s' lacks '%s'", d.r.detail, detail);
}

static void test_errors(void **unused)
{
    (void)unused;
    const route r401 = {"/api/status", 401, "{}", 0};
    expect_status(&r401, AG_POLL_AUTH, "HTTP 401");
    const route r403 = {"/api/status", 403, "{}", 0};
    expect_status(&r403, AG_POLL_AUTH, "HTTP 403");
    const route r500 = {"/api/status", 500, "{}", 0};
    expect_status(&r500, AG_POLL_PROTOCOL, "/api/status: HTTP 500");
    const route rbad = {"/api/status", 200, "{\"luminance\": ", 0};
    expect_status(&rbad, AG_POLL_PROTOCOL, "/api/status: invalid JSON");
    const route r404 = {"/other", 200, "{}", 0};
    expect_status(&r404, AG_POLL_PROTOCOL, "HTTP 404");
}

/* Answers beyond 1 MiB are cut off: with and without Content-Length. */
static void test_too_large(void **unused)
{
    (void)unused;
    size_t n = (1u << 20) + 4096;
    char *big = malloc(n + 16);
    assert_non_null(big);
    memcpy(big, "{\"x\": \"", 7);
    memset(big + 7, 'a', n);
    memcpy(big + 7 + n, "\"}", 3);
    const route r1 = {"/api/status", 200, big, 0};
    expect_status(&r1, AG_POLL_PROTOCOL, "answer larger than 1048576 bytes");
    const route r2 = {"/api/status", 200, big, -1};
    expect_status(&r2, AG_POLL_PROTOCOL, "answer larger than 1048576 bytes");
    free(big);
}

static void test_refused(void **unused)
{
    (void)unused;
    dev_run d;
    dev_init(&d, "t-led", closed_port(), 2000);
    run_one(&d);
    assert_int_equal(d.r.status, AG_POLL_REFUSED);
    assert_int_equal(d.r.npts, 0);
}

static void test_timeout_while_other_answers(void **unused)
{
    (void)unused;
    const route slow_r[] = {{"/api/status", 200, led_json, 5000}};
    const route fast_r[] = {{"/m", 200, sensor_json, 0}};
    srv slow, fast;
    srv_start(&slow, slow_r, 1);
    srv_start(&fast, fast_r, 1);
    dev_run a, b;
    dev_init(&a, "t-led", slow.port, 400);
    dev_init(&b, "t-sensor", fast.port, 2000);
    a.dev.id = "hall1/slow";
    dev_run *ds[2] = {&a, &b};
    int64_t t0 = cm_mono_ms();
    run_devices(ds, 2);
    srv_stop(&slow);
    srv_stop(&fast);
    assert_int_equal(a.r.status, AG_POLL_TIMEOUT);
    assert_true(a.r.done_ms - t0 >= 350);
    assert_true(a.r.done_ms - t0 < 1500);
    assert_int_equal(b.r.status, AG_POLL_OK);
    assert_int_equal(b.r.npts, 4);
    assert_true(b.r.done_ms < a.r.done_ms); /* answered while the other waited */
}

static void test_open_errors(void **unused)
{
    (void)unused;
    uv_loop_t loop;
    uv_loop_init(&loop);
    dev_run d;
    char err[256];
    dev_init(&d, NULL, 80, 1000);
    assert_int_equal(ag_http_driver.open(&loop, &d.dev, &g_set, &d.sink, &d.state, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "needs a profile"));
    dev_init(&d, "nope", 80, 1000);
    assert_int_equal(ag_http_driver.open(&loop, &d.dev, &g_set, &d.sink, &d.state, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "'nope' not found"));
    assert_ptr_equal(ag_driver_find("http"), &ag_http_driver);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static int setup(void **unused)
{
    (void)unused;
    snprintf(g_dir, sizeof g_dir, "/tmp/test_http.XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    memset(&g_set, 0, sizeof g_set);
    add_profile("t-led", led_profile);
    add_profile("t-sensor", sensor_profile);
    add_profile("t-rpc", rpc_profile);
    return 0;
}

static int teardown(void **unused)
{
    (void)unused;
    ag_profiles_free(&g_set);
    rmdir(g_dir);
    return 0;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cm_log_init("test_http", CM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pointer_table),
        cmocka_unit_test(test_map_pure),
        cmocka_unit_test(test_profile_errors),
        cmocka_unit_test(test_shipped_profiles),
        cmocka_unit_test(test_full_poll),
        cmocka_unit_test(test_sensor_each),
        cmocka_unit_test(test_post_rpc),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_timeout_while_other_answers),
        cmocka_unit_test(test_open_errors),
    };
    int fails = cmocka_run_group_tests_name("http", tests, setup, teardown);
    curl_global_cleanup();
    return fails;
}

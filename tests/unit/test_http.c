/* test_http.c — the HTTP driver: RFC 6901 pointers (a table), the pure mapper, profile
 * errors naming the JSON path, the shipped profiles, and the driver on a libuv loop against
 * tiny HTTP server threads on 127.0.0.1 (plain sockets, free ports). SOAP/XML: the element
 * finder (a table of good and malformed documents), templates, and the dolby-ims-soap profile
 * against a scripted IMS-like server (login, session expiry, wrong credentials, bad XML). */
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
#include "agent/xml_find.h"
#include "log.h"
#include "timeutil.h"

/* ---- a tiny HTTP server ------------------------------------------------------------- */

typedef struct route {
    const char *path;
    int status;
    const char *body;
    int delay_ms; /* wait this long before answering; -1: answer without Content-Length */
    int (*fn)(const char *req, char **body); /* dynamic: status and a malloc'd body */
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
    char *dyn = NULL;
    if (r && r->fn) {
        status = r->fn(buf, &dyn);
        body = dyn ? dyn : "";
    }
    if (r && r->delay_ms > 0) {
        int64_t t = cm_mono_ms() + r->delay_ms;
        while (!s->stop && cm_mono_ms() < t) {
            struct pollfd p = {c, POLLIN, 0};
            if (poll(&p, 1, 20) > 0) { /* the client gave up */
                free(dyn);
                return;
            }
        }
    }
    char head[256];
    int hn = r && r->delay_ms < 0 ? snprintf(head, sizeof head,
                                             "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                                             "Connection: close\r\n\r\n",
                                             status)
                                  : snprintf(head, sizeof head,
                                             "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                                             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                                             status, strlen(body));
    if (send(c, head, (size_t)hn, MSG_NOSIGNAL) >= 0) send(c, body, strlen(body), MSG_NOSIGNAL);
    free(dyn);
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

#define HEAD(n)                                                                                    \
    "{\"name\": \"" n "\", \"kind\": \"led_screen\", \"protocol\": \"http\", "                     \
    "\"sources\": [\"test\"], "

static const char *const led_profile = HEAD(
    "t-led") "\"requests\": [{\"path\": \"/api/status\","
             " \"identity\": {\"model\": \"/device/model\", \"serial\": \"/device/serial\","
             " \"firmware\": \"/device/fw\"},"
             " \"values\": [{\"pointer\": \"/luminance/nits\", \"metric\": "
             "\"screen_luminance_nits\","
             " \"labels\": {\"mode\": \"2d\"}, \"unit\": \"nits\"},"
             " {\"pointer\": \"/failed\", \"metric\": \"led_failed_pixels\"},"
             " {\"pointer\": \"/state\", \"metric\": \"power_state\", \"enum\": {\"on\": 1, "
             "\"off\": 4}},"
             " {\"pointer\": \"/missing\", \"metric\": \"white_x\"},"
             " {\"pointer\": \"/nothing\", \"metric\": \"white_y\"},"
             " {\"each\": \"/cabinets\", \"label\": {\"cabinet\": \"/id\"}, \"values\": ["
             "  {\"pointer\": \"/temperature\", \"metric\": \"led_cabinet_temperature_celsius\"},"
             "  {\"pointer\": \"/online\", \"metric\": \"led_cabinet_online\"},"
             "  {\"pointer\": \"/mv\", \"metric\": \"led_receiving_card_voltage_volts\", "
             "\"scale\": 0.001}"
             " ]}]}]}";

static const char *const led_json =
    "{\"device\": {\"model\": \"LED-9000\", \"serial\": \"SN123\", \"fw\": \"2.1\"},"
    " \"luminance\": {\"nits\": 48.5}, \"failed\": 3, \"state\": \"on\", \"nothing\": null,"
    " \"cabinets\": [{\"id\": \"A1\", \"temperature\": 41.5, \"online\": true, \"mv\": 5020},"
    " {\"id\": 2, \"temperature\": \"39\", \"online\": false, \"mv\": 4980}]}";

static const char *const sensor_profile =
    HEAD("t-sensor") "\"requests\": [{\"path\": \"/m\", \"values\": ["
                     " {\"each\": \"/sound\", \"label\": {\"channel\": \"/ch\"},"
                     "  \"values\": [{\"pointer\": \"/dbc\", \"metric\": \"spl_dbc\", \"unit\": "
                     "\"dB\"}]},"
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
        assert_int_equal(ds[i]->r.ndone, 0);                     /* never from inside poll() */
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
    } ok[] = {{"/", 0},     {"/a~1b", 1}, {"/c%d", 2}, {"/e^f", 3},  {"/g|h", 4},
              {"/i\\j", 5}, {"/k\"l", 6}, {"/ ", 7},   {"/m~0n", 8}, {"/o/~01", 9}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        json_t *v = ag_json_pointer_get(doc, ok[i].ptr);
        if (!v) fail_msg("pointer %s: no value", ok[i].ptr);
        assert_int_equal(json_integer_value(v), ok[i].value);
        assert_int_equal(ag_json_pointer_check(ok[i].ptr), 0);
    }
    const char *none[] = {"foo",   "/foo/2", "/foo/-", "/foo/01", "/foo/0/x", "/foo/+1",
                          "/nope", "/m~n",   "/m~2n",  "/a/b",    "/o/~1",    "/foo/99999999999"};
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
    expect_error("e1",
                 HEAD("e1") "\"requests\": [{\"path\": \"/a\", \"values\": ["
                            "{\"pointer\": \"/x\", \"metric\": \"m\"}, {\"pointer\": \"x/y\", "
                            "\"metric\": \"m\"}]}]}",
                 "e1.json: $.requests[0].values[1].pointer: 'x/y' is not a JSON pointer");
    expect_error("e2",
                 HEAD("e2") "\"requests\": [{\"path\": \"/a\", \"values\": ["
                            "{\"pointer\": \"/x\", \"metric\": \"m\", \"bogus\": 1}]}]}",
                 "$.requests[0].values[0].bogus: unknown key");
    expect_error("e3",
                 HEAD("e3") "\"requests\": [{\"path\": \"/a\", \"values\": ["
                            "{\"pointer\": \"/x\"}]}]}",
                 "$.requests[0].values[0].metric: missing");
    expect_error(
        "e4",
        HEAD("e4") "\"requests\": [{\"path\": \"/a\", \"values\": ["
                   "{\"each\": \"/c\", \"label\": {\"cabinet\": \"/i~d\"}, \"values\": []}]}]}",
        "$.requests[0].values[0].label.cabinet: '/i~d' is not a JSON pointer");
    expect_error("e5",
                 HEAD("e5") "\"requests\": [{\"path\": \"/a\", \"values\": ["
                            "{\"each\": \"/c\", \"values\": [{\"pointer\": \"/t\", \"metric\": "
                            "\"Bad\"}]}]}]}",
                 "$.requests[0].values[0].values[0].metric: 'Bad' is not a valid name");
    expect_error("e6",
                 HEAD("e6") "\"requests\": [{\"path\": \"/a\", \"method\": \"PUT\","
                            " \"values\": [{\"pointer\": \"/x\", \"metric\": \"m\"}]}]}",
                 "$.requests[0].method: expected \"GET\" or \"POST\"");
    expect_error("e7",
                 HEAD("e7") "\"requests\": [{\"path\": \"/a\", \"identity\":"
                            " {\"model\": \"model\"}}]}",
                 "$.requests[0].identity.model: 'model' is not a JSON pointer");
    expect_error("e8",
                 HEAD("e8") "\"requests\": [{\"path\": \"/a\", \"values\": ["
                            "{\"pointer\": \"/x\", \"metric\": \"m\", \"enum\": {\"a\": 1}, "
                            "\"scale\": 2}]}]}",
                 "$.requests[0].values[0].enum: enum and scale/offset exclude each other");
    expect_error("e9",
                 HEAD("e9") "\"requests\": [{\"path\": \"/a\", \"body\": {}, \"values\": ["
                            "{\"pointer\": \"/x\", \"metric\": \"m\"}]}]}",
                 "$.requests[0].body: a body needs \"method\": \"POST\"");
    expect_error("e10", HEAD("e10") "\"scalars\": []}", "$.scalars: unknown key");
    expect_error("e11", HEAD("e11") "\"requests\": []}", "$.requests: expected a non-empty array");
    expect_error("e12",
                 HEAD("e12") "\"requests\": [{\"path\": \"a b\", \"values\": ["
                             "{\"pointer\": \"/x\", \"metric\": \"m\"}]}]}",
                 "$.requests[0].path:");
}

static void test_shipped_profiles(void **unused)
{
    (void)unused;
    ag_profile_set set;
    char err[512];
    if (ag_profiles_load_dir("profiles", &set, err, sizeof err) != 0) fail_msg("%s", err);
    const char *names[] = {"led-screen-http", "light-sound-sensor-http", "barco-pulse",
                           "dolby-ims-soap"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const ag_profile *p = ag_profile_find(&set, names[i]);
        if (!p) fail_msg("profile %s not shipped", names[i]);
        assert_string_equal(p->protocol, "http");
        ag_http_profile hp;
        assert_int_equal(ag_http_profile_parse(p->path, p->doc, &hp, err, sizeof err), 0);
        assert_true(hp.nreqs >= 1);
        ag_http_profile_free(&hp);
    }
    /* the SNMP profiles of this change: Barco with its traps, the Christie IMB chosen only by
     * name (no match: christie-cp-series2 owns PEN 25766) */
    const ag_profile *b = ag_profile_find(&set, "barco-dcinema-s2");
    const ag_profile *imb = ag_profile_find(&set, "christie-cp-imb");
    assert_non_null(b);
    assert_non_null(imb);
    assert_string_equal(b->protocol, "snmp");
    assert_int_equal(b->ntraps, 17); /* 15 vendor traps + SNMPv2-MIB linkDown/linkUp */
    assert_int_equal(b->nidentity, 3);
    assert_int_equal(b->nmatch, 1);
    assert_string_equal(imb->protocol, "snmp");
    assert_int_equal(imb->nmatch, 0);
    assert_true(imb->nscalars >= 8);
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
    const route routes[] = {
        {"/rpc", 200, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"result\": \"on\"}", 0}};
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

/* ---- tests: XML --------------------------------------------------------------------- */

static void test_xml_table(void **unused)
{
    (void)unused;
    static const struct {
        const char *doc;
        const char *why; /* NULL: well-formed */
    } t[] = {
        {"<a/>", NULL},
        {"\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<!-- c --><a x='1' y=\"&lt;\"><b>t</b></a>\n", NULL},
        {"<a><![CDATA[<not a tag>]]></a>", NULL},
        {"<a>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;</a>", NULL},
        {"", "no element at all"},
        {"   ", "no element at all"},
        {"text", "text outside the root element"},
        {"<a>", "element <a> not closed at the end"},
        {"<a><b></a>", "</a> closes <b>"},
        {"<a></b>", "</b> closes <a>"},
        {"</a>", "end tag without a start tag"},
        {"<a/><b/>", "a second root element"},
        {"<a>&foo;</a>", "bad entity"},
        {"<a>&amp</a>", "bad entity"},
        {"<a>& x</a>", "bad entity"},
        {"<a>&#0;</a>", "bad entity"},
        {"<a>&#xD800;</a>", "bad entity"},
        {"<a>&#x110000;</a>", "bad entity"},
        {"<a>&#;</a>", "bad entity"},
        {"<a b=c/>", "unquoted attribute"},
        {"<a b=\"c/>", "unterminated attribute value"},
        {"<a b=\"&bad;\"/>", "bad entity in an attribute"},
        {"<a", "unterminated start tag"},
        {"<a></a", "unterminated end tag"},
        {"<a><!-- x</a>", "unterminated comment"},
        {"<a><![CDATA[x</a>", "unterminated CDATA section"},
        {"<?xml version", "unterminated processing instruction"},
        {"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>", "DOCTYPE"},
        {"<1a/>", "bad or overlong element name"},
        {"<a/>x", "text outside the root element"},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        char err[256] = "";
        int rc = ag_xml_check(t[i].doc, strlen(t[i].doc), err, sizeof err);
        if (!t[i].why && rc != 0) fail_msg("case %zu: '%s' refused: %s", i, t[i].doc, err);
        if (t[i].why && (rc != -1 || !strstr(err, t[i].why)))
            fail_msg("case %zu: '%s': rc %d err '%s', want '%s'", i, t[i].doc, rc, err, t[i].why);
    }
    /* limits: a huge text, a huge name, deep nesting */
    size_t n = AG_XML_MAX_TEXT + 100;
    char *big = malloc(n + 64);
    assert_non_null(big);
    strcpy(big, "<a>");
    memset(big + 3, 'x', n);
    strcpy(big + 3 + n, "</a>");
    char err[256];
    assert_int_equal(ag_xml_check(big, strlen(big), err, sizeof err), -1);
    assert_non_null(strstr(err, "text longer than 65536 bytes"));
    big[0] = '<';
    memset(big + 1, 'n', 300);
    strcpy(big + 301, "/>");
    assert_int_equal(ag_xml_check(big, strlen(big), err, sizeof err), -1);
    assert_non_null(strstr(err, "bad or overlong element name"));
    size_t k = 0;
    for (int i = 0; i < AG_XML_MAX_DEPTH + 1; i++)
        k += (size_t)sprintf(big + k, "<d>");
    for (int i = 0; i < AG_XML_MAX_DEPTH + 1; i++)
        k += (size_t)sprintf(big + k, "</d>");
    assert_int_equal(ag_xml_check(big, k, err, sizeof err), -1);
    assert_non_null(strstr(err, "nested deeper than 64"));
    free(big);

    /* find: first occurrence, prefix as written or any, nesting, self-closing, siblings */
    const char *doc = "<e:Env><e:Body><r><sys:name> A &amp; B </sys:name><x:name>2</x:name>"
                      "<p><t>1</t><p><t>in</t></p></p><p><t>2</t></p><q/></r></e:Body></e:Env>";
    size_t len = strlen(doc);
    assert_int_equal(ag_xml_check(doc, len, err, sizeof err), 0);
    ag_xml_elem e;
    char text[64];
    assert_int_equal(ag_xml_find(doc, len, 0, "sys:name", &e), 1);
    assert_int_equal(
        ag_xml_text(doc + e.start, e.end - e.start, text, sizeof text, err, sizeof err), 0);
    assert_string_equal(text, "A & B");
    assert_int_equal(ag_xml_find(doc, len, 0, "x:name", &e), 1);
    assert_int_equal(ag_xml_find(doc, len, 0, "name", &e), 0); /* the prefix counts */
    assert_int_equal(ag_xml_find(doc, len, 0, "*:name", &e), 1);
    assert_int_equal(
        ag_xml_text(doc + e.start, e.end - e.start, text, sizeof text, err, sizeof err), 0);
    assert_string_equal(text, "A & B");
    assert_int_equal(ag_xml_find(doc, len, 0, "*:Body", &e), 1);
    assert_int_equal(
        ag_xml_text(doc + e.start, e.end - e.start, text, sizeof text, err, sizeof err), -1);
    assert_non_null(strstr(err, "holds elements"));
    /* siblings: the outer <p> spans its nested <p>, the next search starts after it */
    assert_int_equal(ag_xml_find(doc, len, 0, "p", &e), 1);
    assert_non_null(strstr(doc + e.next, "<p><t>2</t></p>"));
    assert_int_equal(ag_xml_find(doc, len, e.next, "p", &e), 1);
    assert_int_equal(ag_xml_find(doc, len, e.next, "p", &e), 0);
    assert_int_equal(ag_xml_find(doc, len, 0, "q", &e), 1);
    assert_int_equal(e.start, e.end);
    /* broken markup inside a find, text too long for the buffer, CDATA */
    assert_int_equal(ag_xml_find("<a><b>", 6, 0, "a", &e), -1);
    assert_int_equal(ag_xml_find("<a><b></c></a>", 14, 0, "b", &e), -1);
    assert_int_equal(ag_xml_text("0123456789", 10, text, 5, err, sizeof err), -1);
    assert_int_equal(ag_xml_text("<![CDATA[ <&> ]]>", 17, text, sizeof text, err, sizeof err), 0);
    assert_string_equal(text, "<&>");
    assert_int_equal(ag_xml_text("&#x4E2D;&#25991;", 16, text, sizeof text, err, sizeof err), 0);
    assert_string_equal(text, "\xE4\xB8\xAD\xE6\x96\x87");
    assert_true(ag_xml_name_ok("sys:productName"));
    assert_true(ag_xml_name_ok("*:Fault"));
    assert_false(ag_xml_name_ok("*:a:b"));
    assert_false(ag_xml_name_ok("/a"));
    assert_false(ag_xml_name_ok(""));
    /* escaping, like snprintf */
    char esc[16];
    assert_int_equal(ag_xml_escape("a<b&'\"", esc, sizeof esc), 23);
    assert_string_equal(esc, "a&lt;b&amp;");
    assert_int_equal(ag_xml_escape("<>", NULL, 0), 8);
}

static void test_templates(void **unused)
{
    (void)unused;
    ag_http_vars v = {"man<ager", "p&ss\"'>", NULL};
    char *out = NULL, err[256];
    assert_int_equal(ag_http_expand("<u>${username}</u><p>${password}</p>$x ${", &v, 1, 0, &out,
                                    err, sizeof err),
                     0);
    assert_string_equal(out, "<u>man&lt;ager</u><p>p&amp;ss&quot;&apos;&gt;</p>$x ${");
    free(out);
    assert_int_equal(ag_http_expand("{\"p\":\"${password}\"}", &v, 0, 0, &out, err, sizeof err), 0);
    assert_string_equal(out, "{\"p\":\"p&ss\\\"'>\"}");
    free(out);
    assert_int_equal(ag_http_expand("<s>${session}</s>", &v, 1, 0, &out, err, sizeof err), -1);
    assert_null(out);
    assert_non_null(strstr(err, "needs ${session}"));
    ag_http_vars h = {"a\r\nX-Evil: 1", "p", "s"};
    assert_int_equal(ag_http_expand("${username}", &h, 0, 1, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "control character"));
    assert_int_equal(ag_http_expand("Bearer ${session}", &h, 0, 1, &out, err, sizeof err), 0);
    assert_string_equal(out, "Bearer s");
    free(out);

    /* session ids: by regex, by element (entities decoded), refused when unusable */
    json_error_t je;
    json_t *doc =
        json_loads("{\"requests\": [{\"method\": \"POST\", \"path\": \"/l\", \"session\":"
                   " {\"regex\": \"sid=([0-9a-f]+);\"}},"
                   " {\"method\": \"POST\", \"path\": \"/x\", \"format\": \"xml\", \"session\":"
                   " {\"element\": \"*:sid\"}},"
                   " {\"path\": \"/a\", \"values\": [{\"pointer\": \"/x\", \"metric\": \"m\"}]}]}",
                   0, &je);
    assert_non_null(doc);
    ag_http_profile hp;
    /* two logins: the second is refused ("must be the first") */
    assert_int_equal(ag_http_profile_parse("t", doc, &hp, err, sizeof err), -1);
    assert_non_null(strstr(err, "$.requests[1]: the login request"));
    json_array_remove(json_object_get(doc, "requests"), 1);
    assert_int_equal(ag_http_profile_parse("t", doc, &hp, err, sizeof err), 0);
    char sess[AG_HTTP_MAX_SESSION + 1];
    const char *a1 = "ok; sid=0badcafe; path=/";
    assert_int_equal(
        ag_http_session(&hp.reqs[0], a1, strlen(a1), sess, sizeof sess, err, sizeof err), 0);
    assert_string_equal(sess, "0badcafe");
    assert_int_equal(ag_http_session(&hp.reqs[0], "nothing", 7, sess, sizeof sess, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "regex did not match"));
    ag_http_profile_free(&hp);
    json_decref(doc);
    doc = json_loads("{\"requests\": [{\"method\": \"POST\", \"path\": \"/l\", \"format\":"
                     " \"xml\", \"session\": {\"element\": \"*:sid\"}},"
                     " {\"path\": \"/a\", \"values\": [{\"pointer\": \"/x\", \"metric\":"
                     " \"m\"}]}]}",
                     0, &je);
    assert_non_null(doc);
    assert_int_equal(ag_http_profile_parse("t", doc, &hp, err, sizeof err), 0);
    assert_true(hp.has_login);
    const char *x1 = "<r><n:sid> a&amp;b </n:sid></r>";
    assert_int_equal(
        ag_http_session(&hp.reqs[0], x1, strlen(x1), sess, sizeof sess, err, sizeof err), 0);
    assert_string_equal(sess, "a&b");
    const char *x2 = "<r><sid></sid></r>";
    assert_int_equal(
        ag_http_session(&hp.reqs[0], x2, strlen(x2), sess, sizeof sess, err, sizeof err), -1);
    const char *x3 = "<r><sid>x</r>";
    assert_int_equal(
        ag_http_session(&hp.reqs[0], x3, strlen(x3), sess, sizeof sess, err, sizeof err), -1);
    assert_non_null(strstr(err, "malformed XML in the login answer"));
    assert_int_equal(ag_http_session_lost(&hp.reqs[0], &hp.reqs[1], 500, "", 0), 1);
    assert_int_equal(ag_http_session_lost(&hp.reqs[0], &hp.reqs[1], 200, "", 0), 0);
    ag_http_profile_free(&hp);
    json_decref(doc);
}

#define SOAP_HEAD(n)                                                                               \
    "{\"name\": \"" n "\", \"kind\": \"media_block\", \"protocol\": \"http\", "                    \
    "\"sources\": [\"test\"], \"requests\": ["
#define LOGIN                                                                                      \
    "{\"method\": \"POST\", \"path\": \"/l\", \"format\": \"xml\", "                               \
    "\"template\": \"<u>${username}</u>\", \"session\": {\"element\": \"sid\"}}"

static void test_soap_profile_errors(void **unused)
{
    (void)unused;
    expect_error("s1",
                 SOAP_HEAD("s1") "{\"path\": \"/a\", \"format\": \"xml\", \"values\": ["
                                 "{\"pointer\": \"/x\", \"metric\": \"m\"}]}]}",
                 "s1.json: $.requests[0].values[0].pointer: unknown key");
    expect_error("s2",
                 SOAP_HEAD("s2") "{\"path\": \"/a\", \"format\": \"xml\", \"values\": ["
                                 "{\"element\": \"a b\", \"metric\": \"m\"}]}]}",
                 "$.requests[0].values[0].element: 'a b' is not an element name");
    expect_error("s3",
                 SOAP_HEAD("s3") "{\"path\": \"/a\", \"values\": ["
                                 "{\"element\": \"x\", \"metric\": \"m\"}]}]}",
                 "$.requests[0].values[0].element: unknown key");
    expect_error("s4", SOAP_HEAD("s4") "{\"path\": \"/a\", \"format\": \"yaml\", \"values\": []}]}",
                 "$.requests[0].format: expected \"json\" or \"xml\"");
    expect_error("s5",
                 SOAP_HEAD("s5") "{\"path\": \"/a\", \"template\": \"x\", \"values\": ["
                                 "{\"pointer\": \"/x\", \"metric\": \"m\"}]}]}",
                 "$.requests[0].template: a template needs \"method\": \"POST\"");
    expect_error(
        "s6",
        SOAP_HEAD("s6") "{\"path\": \"/a\", \"method\": \"POST\", \"template\":"
                        " \"${user}\", \"values\": [{\"pointer\": \"/x\", \"metric\": \"m\"}]}]}",
        "$.requests[0].template: '${user}' is not a variable");
    expect_error(
        "s7",
        SOAP_HEAD(
            "s7") "{\"path\": \"/a\", \"method\": \"POST\", \"template\":"
                  " \"${session}\", \"values\": [{\"pointer\": \"/x\", \"metric\": \"m\"}]}]}",
        "$.requests: ${session} is used but no request has \"session\"");
    expect_error("s8",
                 SOAP_HEAD("s8") "{\"path\": \"/a\", \"values\": [{\"pointer\": \"/x\","
                                 " \"metric\": \"m\"}]}, " LOGIN "]}",
                 "$.requests[1]: the login request (with \"session\") must be the first");
    expect_error("s9", SOAP_HEAD("s9") LOGIN "]}",
                 "$.requests: a login request alone reads nothing");
    expect_error(
        "s10",
        SOAP_HEAD(
            "s10") "{\"method\": \"POST\", \"path\": \"/l\", \"session\":"
                   " {\"element\": \"sid\"}}, {\"path\": \"/a\", \"values\": [{\"pointer\": \"/x\","
                   " \"metric\": \"m\"}]}]}",
        "$.requests[0].session.element: needs \"format\": \"xml\"");
    expect_error("s11",
                 SOAP_HEAD("s11") "{\"method\": \"POST\", \"path\": \"/l\", \"session\":"
                                  " {\"regex\": \"sid=[0-9]+\"}}, {\"path\": \"/a\", \"values\": "
                                  "[{\"pointer\": \"/x\","
                                  " \"metric\": \"m\"}]}]}",
                 "$.requests[0].session.regex: regular expression has no group");
    expect_error("s12",
                 SOAP_HEAD("s12") "{\"path\": \"/a\", \"session_error\": {}, \"values\": ["
                                  "{\"pointer\": \"/x\", \"metric\": \"m\"}]}]}",
                 "$.requests[0].session_error: only in the login request");
    expect_error(
        "s13",
        SOAP_HEAD(
            "s13") "{\"method\": \"POST\", \"path\": \"/l\", \"format\":"
                   " \"xml\", \"session\": {\"element\": \"sid\"}, \"session_error\": {\"status\":"
                   " [200]}}, {\"path\": \"/a\", \"values\": [{\"pointer\": \"/x\", \"metric\": "
                   "\"m\"}]}]}",
        "$.requests[0].session_error.status[0]: expected an HTTP status 300..599");
    expect_error("s14",
                 SOAP_HEAD("s14") LOGIN
                 ", {\"path\": \"/a\", \"headers\": {\"Host\":"
                 " \"x\"}, \"values\": [{\"pointer\": \"/x\", \"metric\": \"m\"}]}]}",
                 "$.requests[1].headers.Host: 'Host' is not a header name we may set");
    expect_error("s15",
                 SOAP_HEAD("s15") "{\"path\": \"/a\", \"format\": \"xml\", \"identity\":"
                                  " {\"firmware\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}}]}",
                 "$.requests[0].identity.firmware: expected 1..4 selectors");
    expect_error(
        "s16",
        SOAP_HEAD(
            "s16") "{\"method\": \"POST\", \"path\": \"/l\", \"format\":"
                   " \"xml\", \"session\": {\"element\": \"sid\", \"regex\": \"(x)\"}}, {\"path\":"
                   " \"/a\", \"values\": [{\"pointer\": \"/x\", \"metric\": \"m\"}]}]}",
        "$.requests[0].session: expected exactly one of");
}

/* ---- a scripted IMS-like SOAP server -------------------------------------------------- */

static struct {
    pthread_mutex_t mu;
    char session[32]; /* the valid session id; "" = none */
    int logins, faults;
    int fault_always;    /* SystemInformation answers 500 whatever the session */
    const char *product; /* GetProductInformation answer body instead of the good one */
    char password[64];   /* <password> as it must arrive (XML-escaped) */
} g_ims = {PTHREAD_MUTEX_INITIALIZER, "", 0, 0, 0, NULL, ""};

#define ENV_OPEN                                                                                   \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><SOAP-ENV:Envelope "                                \
    "xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" "                                \
    "xmlns:ns1=\"http://www.doremilabs.com/dc/dcp/ws/v1_0\" "                                      \
    "xmlns:sys=\"http://www.doremilabs.com/dc/dcp/ws/v1_0\"><SOAP-ENV:Body>"
#define ENV_CLOSE "</SOAP-ENV:Body></SOAP-ENV:Envelope>"
#define FAULT                                                                                      \
    ENV_OPEN "<SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode>"                              \
             "<faultstring>invalid session</faultstring></SOAP-ENV:Fault>" ENV_CLOSE

/* The raw text of <name>...</name> in req, or "" (test helper, trusted input). */
static void raw_elem(const char *req, const char *name, char *out, size_t n)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", name);
    snprintf(close, sizeof close, "</%s>", name);
    out[0] = '\0';
    const char *a = strstr(req, open), *b = a ? strstr(a, close) : NULL;
    if (!a || !b) return;
    a += strlen(open);
    snprintf(out, n, "%.*s", (int)(b - a), a);
}

static int ims_login(const char *req, char **body)
{
    char user[64], pass[64];
    raw_elem(req, "username", user, sizeof user);
    raw_elem(req, "password", pass, sizeof pass);
    pthread_mutex_lock(&g_ims.mu);
    int ok = strcmp(user, "manager") == 0 && strcmp(pass, g_ims.password) == 0 &&
             strstr(req, "Content-Type: text/xml; charset=utf-8") != NULL;
    if (ok) snprintf(g_ims.session, sizeof g_ims.session, "sess-%d", ++g_ims.logins);
    char *b = malloc(1024);
    if (b) {
        if (ok)
            snprintf(b, 1024,
                     ENV_OPEN "<ns1:LoginResponse><sessionId>%s</sessionId>"
                              "</ns1:LoginResponse>" ENV_CLOSE,
                     g_ims.session);
        else
            snprintf(b, 1024, "%s", FAULT);
    }
    pthread_mutex_unlock(&g_ims.mu);
    *body = b;
    return ok ? 200 : 500;
}

static int ims_sysinfo(const char *req, char **body)
{
    char sid[64];
    raw_elem(req, "sessionId", sid, sizeof sid);
    pthread_mutex_lock(&g_ims.mu);
    int ok = !g_ims.fault_always && g_ims.session[0] && strcmp(sid, g_ims.session) == 0;
    const char *ans = FAULT;
    if (!ok)
        g_ims.faults++;
    else if (strstr(req, "ns1:GetProductInformation>"))
        ans = g_ims.product ? g_ims.product
                            : ENV_OPEN "<ns1:GetProductInformationResponse>"
                                       "<sys:productName>IMS3000</sys:productName>"
                                       "<sys:serialNumber>SIMIMS0001</sys:serialNumber>"
                                       "<sys:mainSoftwareVersion>3.2.4-0</sys:mainSoftwareVersion>"
                                       "<sys:mainFirmwareVersion>2.8.14</sys:mainFirmwareVersion>"
                                       "</ns1:GetProductInformationResponse>" ENV_CLOSE;
    else if (strstr(req, "ns1:GetHostname>"))
        ans = ENV_OPEN "<ns1:GetHostnameResponse><hostname>hall1-ims</hostname>"
                       "<screenName>Screen 1</screenName></ns1:GetHostnameResponse>" ENV_CLOSE;
    else if (strstr(req, "ns1:GetHardwareInventoryList>"))
        ans = ENV_OPEN "<ns1:GetHardwareInventoryListResponse>"
                       "<sys:hardwarePart><sys:title>Storage RAID</sys:title>"
                       "<sys:status>Degraded</sys:status></sys:hardwarePart>"
                       "<sys:hardwarePart><sys:title>Fan &amp; PSU</sys:title>"
                       "<sys:status> OK </sys:status></sys:hardwarePart>"
                       "<sys:hardwarePart><sys:title>Mystery</sys:title>"
                       "<sys:status>Strange</sys:status></sys:hardwarePart>"
                       "<sys:hardwarePart><sys:status>OK</sys:status></sys:hardwarePart>"
                       "</ns1:GetHardwareInventoryListResponse>" ENV_CLOSE;
    *body = strdup(ans);
    pthread_mutex_unlock(&g_ims.mu);
    return ok ? 200 : 500;
}

static const route ims_routes[] = {
    {"/dc/dcp/ws/v1/SessionManagement", 0, NULL, 0, ims_login},
    {"/dc/dcp/ws/v1/SystemInformation", 0, NULL, 0, ims_sysinfo},
};

static void ims_reset(const char *password_escaped)
{
    pthread_mutex_lock(&g_ims.mu);
    g_ims.session[0] = '\0';
    g_ims.logins = g_ims.faults = g_ims.fault_always = 0;
    g_ims.product = NULL;
    snprintf(g_ims.password, sizeof g_ims.password, "%s", password_escaped);
    pthread_mutex_unlock(&g_ims.mu);
}

/* Open the device, poll it npolls times (between(i) before poll i > 0), close. */
static void run_polls(dev_run *d, int npolls, void (*between)(int i))
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[512];
    if (ag_http_driver.open(&loop, &d->dev, &g_set, &d->sink, &d->state, err, sizeof err) != 0)
        fail_msg("open: %s", err);
    for (int i = 0; i < npolls; i++) {
        if (i > 0 && between) between(i);
        int want = d->r.ndone + 1;
        d->r.npts = 0;
        assert_int_equal(ag_http_driver.poll(d->state), 0);
        int64_t until = cm_mono_ms() + 10000;
        while (d->r.ndone < want && cm_mono_ms() < until)
            uv_run(&loop, UV_RUN_ONCE);
        assert_int_equal(d->r.ndone, want);
    }
    ag_http_driver.close(d->state);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void ims_dev(dev_run *d, int port, const char *password)
{
    dev_init(d, "dolby-ims-soap", port, 2000);
    d->dev.id = "hall1/ims";
    d->dev.username = "manager";
    d->dev.password = (char *)password;
}

static void test_soap_flow(void **unused)
{
    (void)unused;
    ims_reset("pa&lt;s&amp;s");
    srv s;
    srv_start(&s, ims_routes, 2);
    dev_run d;
    ims_dev(&d, s.port, "pa<s&s");
    run_polls(&d, 2, NULL);
    srv_stop(&s);
    if (d.r.status != AG_POLL_OK) fail_msg("status %d: %s", d.r.status, d.r.detail);
    assert_int_equal(g_ims.logins, 1); /* the session is kept from poll to poll */
    assert_int_equal(g_ims.faults, 0);
    /* the last request: sessionId sent, no basic auth (the profile logs in itself) */
    assert_non_null(strstr(s.last, "<sessionId>sess-1</sessionId>"));
    assert_null(strcasestr(s.last, "Authorization:"));
    assert_int_equal(d.r.ninv, 2);
    assert_string_equal(d.r.model, "IMS3000");
    assert_string_equal(d.r.serial, "SIMIMS0001");
    assert_string_equal(d.r.firmware, "3.2.4-0 / 2.8.14");
    assert_string_equal(d.r.profile, "dolby-ims-soap");
    expect(&d.r, "hardware_part_ok", "part=Storage RAID", 0);
    expect(&d.r, "hardware_part_ok", "part=Fan & PSU", 1);
    assert_null(find(&d.r, "hardware_part_ok", "part=Mystery")); /* not in the enum */
    assert_int_equal(d.r.npts, 2); /* and the part without a title is skipped */
}

static void expire_session(int i)
{
    (void)i;
    pthread_mutex_lock(&g_ims.mu);
    snprintf(g_ims.session, sizeof g_ims.session, "gone"); /* e.g. the IMS rebooted */
    pthread_mutex_unlock(&g_ims.mu);
}

static void test_soap_session_expiry(void **unused)
{
    (void)unused;
    ims_reset("password");
    srv s;
    srv_start(&s, ims_routes, 2);
    dev_run d;
    ims_dev(&d, s.port, "password");
    run_polls(&d, 2, expire_session);
    srv_stop(&s);
    if (d.r.status != AG_POLL_OK) fail_msg("status %d: %s", d.r.status, d.r.detail);
    assert_int_equal(g_ims.logins, 2); /* one new login ... */
    assert_int_equal(g_ims.faults, 1); /* ... after the one request that hit the old session */
    assert_int_equal(d.r.npts, 2);
    assert_string_equal(d.r.serial, "SIMIMS0001");
}

static void fault_forever(int i)
{
    (void)i;
    pthread_mutex_lock(&g_ims.mu);
    g_ims.fault_always = 1;
    pthread_mutex_unlock(&g_ims.mu);
}

static void test_soap_relogin_once(void **unused)
{
    (void)unused;
    ims_reset("password");
    srv s;
    srv_start(&s, ims_routes, 2);
    dev_run d;
    ims_dev(&d, s.port, "password");
    run_polls(&d, 2, fault_forever);
    srv_stop(&s);
    /* poll 2: fault, one new login, fault again: a protocol error, not a login loop */
    assert_int_equal(d.r.status, AG_POLL_PROTOCOL);
    assert_non_null(strstr(d.r.detail, "GetProductInformation: session error (HTTP 500)"));
    assert_int_equal(g_ims.logins, 2);
    assert_int_equal(g_ims.faults, 2);
}

static void test_soap_wrong_credentials(void **unused)
{
    (void)unused;
    ims_reset("password");
    srv s;
    srv_start(&s, ims_routes, 2);
    dev_run d;
    ims_dev(&d, s.port, "wrong");
    run_polls(&d, 1, NULL);
    dev_run n;
    ims_dev(&n, s.port, NULL); /* no password configured: the template cannot be filled */
    run_polls(&n, 1, NULL);
    srv_stop(&s);
    assert_int_equal(d.r.status, AG_POLL_AUTH);
    assert_non_null(strstr(d.r.detail, "Login: login refused (HTTP 500)"));
    assert_int_equal(d.r.ninv, 0);
    assert_int_equal(g_ims.faults, 0); /* nothing else was asked */
    assert_int_equal(n.r.status, AG_POLL_CONFIG);
    assert_non_null(strstr(n.r.detail, "needs ${password}"));
}

static void test_soap_malformed(void **unused)
{
    (void)unused;
    size_t hn = 70000;
    char *huge = malloc(hn + 1024);
    assert_non_null(huge);
    strcpy(huge, ENV_OPEN "<sys:productName>");
    memset(huge + strlen(huge), 'x', hn);
    strcpy(huge + strlen(ENV_OPEN "<sys:productName>") + hn, "</sys:productName>" ENV_CLOSE);
    char deep[2048] = ENV_OPEN;
    for (int i = 0; i < 80; i++)
        strcat(deep, "<d>");
    static const struct {
        const char *body, *why;
    } t[] = {
        {ENV_OPEN "<sys:productName>IMS3000" ENV_CLOSE, "closes <sys:productName>"},
        {ENV_OPEN "<sys:productName>IMS3000</sys:productName>", "not closed at the end"},
        {ENV_OPEN "<sys:productName>A &nbsp; B</sys:productName>" ENV_CLOSE, "bad entity"},
        {ENV_OPEN "<sys:productName>A &#1; B</sys:productName>" ENV_CLOSE, "bad entity"},
        {ENV_OPEN "<sys:productName>A & B</sys:productName>" ENV_CLOSE, "bad entity"},
        {"{\"productName\": \"IMS3000\"}", "text outside the root element"},
        {"", "no element at all"},
        {"<!DOCTYPE x [<!ENTITY a \"aaaa\">]><x>&a;</x>", "DOCTYPE"},
        {ENV_OPEN "<sys:productName attr=unquoted>X</sys:productName>" ENV_CLOSE,
         "unquoted attribute"},
        {NULL, "text longer than 65536 bytes"},
        {NULL, "nested deeper than 64"},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        ims_reset("password");
        g_ims.product = t[i].body ? t[i].body : i == 9 ? huge : deep;
        srv s;
        srv_start(&s, ims_routes, 2);
        dev_run d;
        ims_dev(&d, s.port, "password");
        run_polls(&d, 1, NULL);
        srv_stop(&s);
        if (d.r.status != AG_POLL_PROTOCOL ||
            !strstr(d.r.detail, "GetProductInformation: malformed XML") ||
            !strstr(d.r.detail, t[i].why))
            fail_msg("case %zu: status %d detail '%s', want protocol '%s'", i, d.r.status,
                     d.r.detail, t[i].why);
        assert_int_equal(d.r.ninv, 0);
    }
    free(huge);
    /* well-formed but without the elements: the poll is ok, the identity stays empty */
    ims_reset("password");
    g_ims.product = ENV_OPEN "<other/>" ENV_CLOSE;
    srv s;
    srv_start(&s, ims_routes, 2);
    dev_run d;
    ims_dev(&d, s.port, "password");
    run_polls(&d, 1, NULL);
    srv_stop(&s);
    assert_int_equal(d.r.status, AG_POLL_OK);
    assert_string_equal(d.r.model, "");
}

/* A JSON login: the session from a pointer, sent in a header and a JSON template. */
static int json_login(const char *req, char **body)
{
    int ok = strstr(req, "{\"user\":\"a\\\"b\"}") != NULL;
    *body = strdup(ok ? "{\"token\": \"T-1\"}" : "{}");
    return ok ? 200 : 401;
}

static int json_data(const char *req, char **body)
{
    int ok = strstr(req, "X-Session: T-1") && strstr(req, "\"s\":\"T-1\"");
    *body = strdup("{\"v\": 7}");
    return ok ? 200 : 500;
}

static void test_json_session(void **unused)
{
    (void)unused;
    const route r[] = {{"/login", 0, NULL, 0, json_login}, {"/data", 0, NULL, 0, json_data}};
    srv s;
    srv_start(&s, r, 2);
    dev_run d;
    dev_init(&d, "t-jsess", s.port, 2000);
    d.dev.username = "a\"b";
    d.dev.password = "x";
    run_polls(&d, 1, NULL);
    srv_stop(&s);
    if (d.r.status != AG_POLL_OK) fail_msg("status %d: %s", d.r.status, d.r.detail);
    expect(&d.r, "white_x", "", 7);
}

/* A Qube XP-D-shaped SOAP device (devices.md §4.5): no login, a SOAPAction header, elements
 * under an "a:" prefix found as "*:" too. */
static int qube_status(const char *req, char **body)
{
    int ok = strstr(req, "SOAPAction: \"http://services.qubecinema.com/XP/Status/2012-07-01/"
                         "IStatusService/GetPlayerInfo\"") != NULL &&
             strstr(req, "Content-Type: text/xml; charset=utf-8") != NULL;
    *body = strdup(ok ? "<s:Envelope xmlns:s=\"x\"><s:Body><GetPlayerInfoResponse>"
                        "<GetPlayerInfoResult xmlns:a=\"y\"><a:Make>Qube</a:Make>"
                        "<a:Model>XP-D</a:Model><a:SerialNumber>Q1</a:SerialNumber>"
                        "<a:SoftwareVersion>4.1</a:SoftwareVersion><a:Uptime>12</a:Uptime>"
                        "</GetPlayerInfoResult></GetPlayerInfoResponse></s:Body></s:Envelope>"
                      : "<x/>");
    return ok ? 200 : 400;
}

static void test_soap_without_login(void **unused)
{
    (void)unused;
    const route r[] = {{"/services/Status", 0, NULL, 0, qube_status}};
    srv s;
    srv_start(&s, r, 1);
    dev_run d;
    dev_init(&d, "t-qube", s.port, 2000);
    run_polls(&d, 1, NULL);
    srv_stop(&s);
    if (d.r.status != AG_POLL_OK) fail_msg("status %d: %s", d.r.status, d.r.detail);
    assert_string_equal(d.r.model, "XP-D");
    assert_string_equal(d.r.serial, "Q1");
    assert_string_equal(d.r.firmware, "4.1");
    expect(&d.r, "uptime_seconds", "", 12);
}

static const char *const qube_profile =
    HEAD("t-qube") "\"requests\": [{\"method\": \"POST\", \"path\": \"/services/Status\","
                   " \"format\": \"xml\", \"headers\": {\"SOAPAction\": "
                   "\"\\\"http://services.qubecinema.com/"
                   "XP/Status/2012-07-01/IStatusService/GetPlayerInfo\\\"\"},"
                   " \"template\": \"<s:Envelope "
                   "xmlns:s=\\\"http://schemas.xmlsoap.org/soap/envelope/\\\">"
                   "<s:Body><GetPlayerInfo/></s:Body></s:Envelope>\","
                   " \"identity\": {\"vendor\": \"a:Make\", \"model\": \"*:Model\", \"serial\":"
                   " \"a:SerialNumber\", \"firmware\": \"a:SoftwareVersion\"},"
                   " \"values\": [{\"element\": \"a:Uptime\", \"metric\": \"uptime_seconds\"}]}]}";

static const char *const jsess_profile =
    HEAD("t-jsess") "\"requests\": [{\"method\": \"POST\", \"path\": \"/login\","
                    " \"template\": \"{\\\"user\\\":\\\"${username}\\\"}\", \"session\": "
                    "{\"pointer\": \"/token\"}},"
                    " {\"method\": \"POST\", \"path\": \"/data\", \"headers\": {\"X-Session\": "
                    "\"${session}\"},"
                    " \"template\": \"{\\\"s\\\":\\\"${session}\\\"}\","
                    " \"values\": [{\"pointer\": \"/v\", \"metric\": \"white_x\"}]}]}";

static int setup(void **unused)
{
    (void)unused;
    snprintf(g_dir, sizeof g_dir, "/tmp/test_http.XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    memset(&g_set, 0, sizeof g_set);
    add_profile("t-led", led_profile);
    add_profile("t-sensor", sensor_profile);
    add_profile("t-rpc", rpc_profile);
    add_profile("t-jsess", jsess_profile);
    add_profile("t-qube", qube_profile);
    /* the shipped SOAP profile, as it is in profiles/ */
    ag_profile *np = realloc(g_set.profiles, (g_set.nprofiles + 1) * sizeof *np);
    if (!np) return -1;
    g_set.profiles = np;
    char err[512];
    if (ag_profile_load("profiles/dolby-ims-soap.json", &g_set.profiles[g_set.nprofiles], err,
                        sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    g_set.nprofiles++;
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
        cmocka_unit_test(test_xml_table),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_soap_profile_errors),
        cmocka_unit_test(test_soap_flow),
        cmocka_unit_test(test_soap_session_expiry),
        cmocka_unit_test(test_soap_relogin_once),
        cmocka_unit_test(test_soap_wrong_credentials),
        cmocka_unit_test(test_soap_malformed),
        cmocka_unit_test(test_json_session),
        cmocka_unit_test(test_soap_without_login),
    };
    int fails = cmocka_run_group_tests_name("http", tests, setup, teardown);
    curl_global_cleanup();
    return fails;
}

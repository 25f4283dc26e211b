/* test_sim_http.c — the simulator's HTTP devices: the request parser against a table of
 * malformed inputs, the device models without sockets (LED screen, light/sound sensor, IMS
 * SOAP), and each device end to end on a libuv loop thread on 127.0.0.1 (port 0) with a raw
 * socket client: JSON fields in range, SOAP login → GetProductInformation, a wrong session →
 * 500, keep-alive and pipelining, bad requests, faults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/http_profile.h"
#include "agent/xml_find.h"
#include "sim/httpdev.h"
#include "sim/httpserv.h"
#include "sim/ims_soap.h"
#include "sim/ledscreen.h"
#include "sim/model.h"
#include "sim/sensor.h"

/* ---- the parser ------------------------------------------------------------------------ */

static long parse_str(const char *s, sim_http_req *req)
{
    /* an exact-size heap copy, so ASan sees any read past the input */
    size_t n = strlen(s);
    char *b = malloc(n ? n : 1);
    assert_non_null(b);
    memcpy(b, s, n);
    long r = sim_http_parse(b, n, req);
    if (r > 0 && req->body) req->body = s + (req->body - b); /* keep it valid after free */
    free(b);
    return r;
}

static void test_parse_ok(void **state)
{
    (void)state;
    sim_http_req q;
    const char *get = "GET /api/status?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(parse_str(get, &q), (long)strlen(get));
    assert_string_equal(q.method, "GET");
    assert_string_equal(q.path, "/api/status");
    assert_string_equal(q.query, "x=1");
    assert_int_equal(q.minor, 1);
    assert_true(q.keep_alive);
    assert_int_equal(q.content_length, 0);

    const char *post =
        "POST /x HTTP/1.1\r\ncontent-length:  5 \r\nConnection: Close\r\n\r\nhelloGET";
    assert_int_equal(parse_str(post, &q), (long)strlen(post) - 3);
    assert_string_equal(q.method, "POST");
    assert_int_equal(q.content_length, 5);
    assert_memory_equal(q.body, "hello", 5);
    assert_false(q.keep_alive);

    /* HTTP/1.0: close unless keep-alive; bare LF line ends; leading empty lines */
    assert_true(parse_str("GET / HTTP/1.0\n\n", &q) > 0);
    assert_false(q.keep_alive);
    assert_true(parse_str("\r\nGET / HTTP/1.0\r\nConnection: foo, Keep-Alive\r\n\r\n", &q) > 0);
    assert_true(q.keep_alive);

    /* incomplete: need more, with the head recognised once complete */
    assert_int_equal(parse_str("GET /api/sta", &q), 0);
    assert_int_equal(parse_str("GET / HTTP/1.1\r\nHost: a\r\n", &q), 0);
    assert_false(q.head_complete);
    assert_int_equal(
        parse_str("POST / HTTP/1.1\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\nabc", &q),
        0);
    assert_true(q.head_complete);
    assert_true(q.expect_continue);
    assert_int_equal(parse_str("", &q), 0);
    assert_int_equal(sim_http_parse(NULL, 0, &q), 0);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        long want;
    } cases[] = {
        {"get\x01 / HTTP/1.1\r\n\r\n", -400},
        {"GET\r\n\r\n", -400},
        {" GET / HTTP/1.1\r\n\r\n", -400},
        {"GET  / HTTP/1.1\r\n\r\n", -400},
        {"GET / HTTP/1.1 \r\n\r\n", -400},
        {"GET /\r\n\r\n", -400},
        {"GET / HTTP/1\r\n\r\n", -400},
        {"GET / HTTX/1.1\r\n\r\n", -400},
        {"GET / HTTP/2.0\r\n\r\n", -505},
        {"GET / HTTP/1.x\r\n\r\n", -400},
        {"GET x HTTP/1.1\r\n\r\n", -400},
        {"GET http://a/ HTTP/1.1\r\n\r\n", -400},
        {"GET /a\x7f HTTP/1.1\r\n\r\n", -400},
        {"VERYLONGMETHODNAME / HTTP/1.1\r\n\r\n", -400},
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", -400}, /* a TLS ClientHello */
        {"\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\n: empty\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nX: a\x01 b\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n", -413},
        {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", -413},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", -501},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sim_http_req q;
        long r = parse_str(cases[i].in, &q);
        if (r != cases[i].want) fail_msg("case %zu: got %ld, want %ld", i, r, cases[i].want);
    }
    /* the same value twice is fine, the maximum body is fine */
    sim_http_req q;
    const char *twice = "POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(parse_str(twice, &q), (long)strlen(twice));
    assert_int_equal(parse_str("POST / HTTP/1.1\r\nContent-Length: 65536\r\n\r\n", &q), 0);

    /* limits: target length, head size, header count */
    char *big = malloc(SIM_HTTP_MAX_HEAD + 64);
    assert_non_null(big);
    int n = snprintf(big, 300, "GET /");
    memset(big + n, 'a', 300);
    strcpy(big + n + 300, " HTTP/1.1\r\n\r\n");
    assert_int_equal(parse_str(big, &q), -414);
    strcpy(big, "GET / HTTP/1.1\r\nX: ");
    memset(big + 19, 'a', SIM_HTTP_MAX_HEAD);
    big[19 + SIM_HTTP_MAX_HEAD] = '\0';
    assert_int_equal(parse_str(big, &q), -431);
    char *p = big + sprintf(big, "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= SIM_HTTP_MAX_HEADERS; i++)
        p += sprintf(p, "X%d: y\r\n", i);
    strcpy(p, "\r\n");
    assert_int_equal(parse_str(big, &q), -431);
    memset(big, 'G', SIM_HTTP_MAX_HEAD + 10); /* no request line within the limit */
    big[SIM_HTTP_MAX_HEAD + 10] = '\0';
    assert_true(parse_str(big, &q) < 0);
    free(big);

    /* every prefix of a valid request needs more input, never fails */
    const char *full = "POST /dc HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
    for (size_t k = 0; k < strlen(full); k++) {
        char *b = malloc(k ? k : 1);
        memcpy(b, full, k);
        assert_int_equal(sim_http_parse(b, k, &q), 0);
        free(b);
    }
    assert_string_equal(sim_http_reason(404), "Not Found");
}

/* ---- the device models without sockets ---------------------------------------------- */

static json_t *load_json(char *s)
{
    assert_non_null(s);
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j) fail_msg("bad JSON (%s): %s", e.text, s);
    free(s);
    return j;
}

static double jnum(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v)) fail_msg("%s is not a number", key);
    return json_number_value(v);
}

/* The first loop time >= from at which the projector's load is want (1 or 0.15). */
static int64_t time_with_load(const sim_device *pj, int64_t from, double want)
{
    int64_t step = (int64_t)(10000 / pj->speed) + 1; /* 10 simulated seconds */
    for (int64_t t = from; t < from + step * 1000; t += step)
        if (fabs(sim_device_load(pj, t) - want) < 1e-9) return t;
    fail_msg("no time with load %g", want);
    return from;
}

/* Check an LED status answer (and release it). */
static void check_led(json_t *j, int *ncab, int *offline, double *tsum)
{
    json_t *dev = json_object_get(j, "device");
    assert_true(json_is_string(json_object_get(dev, "vendor")));
    assert_true(json_is_string(json_object_get(dev, "model")));
    assert_true(json_is_string(json_object_get(dev, "serial")));
    assert_true(json_is_string(json_object_get(dev, "firmware")));
    double nits = jnum(json_object_get(j, "luminance"), "nits");
    assert_true(nits > 46 && nits < 50);
    double x = jnum(json_object_get(j, "white"), "x"), y = jnum(json_object_get(j, "white"), "y");
    assert_true(fabs(x - 0.314) < 0.002 && fabs(y - 0.351) < 0.002);
    assert_true(json_is_integer(json_object_get(j, "failed_pixels")));
    json_t *cabs = json_object_get(j, "cabinets");
    assert_true(json_is_array(cabs));
    *ncab = (int)json_array_size(cabs);
    *offline = 0;
    *tsum = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cabs, i, c)
    {
        assert_true(json_is_string(json_object_get(c, "id")));
        json_t *on = json_object_get(c, "online");
        assert_true(json_is_boolean(on));
        double v = jnum(c, "voltage"), t = jnum(c, "temperature");
        if (json_is_true(on)) {
            assert_true(v > 4.9 && v < 5.1);
            assert_true(t > 30 && t < 52);
            *tsum += t;
        } else {
            (*offline)++;
            assert_true(v < 0.5);
        }
    }
    json_decref(j);
}

static void test_led_model(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        sim_device pj;
        sim_device_init(&pj, SIM_MODEL_CHRISTIE, 3, seed, 0, 60);
        sim_led l;
        sim_led_init(&l, 3, seed, 0, 60, &pj);
        assert_true(sim_led_cabinets(&l) >= 12 && sim_led_cabinets(&l) <= 24);
        int64_t show = time_with_load(&pj, 0, 1.0), brk = time_with_load(&pj, 0, 0.15);
        int n, off;
        double ts, tb;
        check_led(load_json(sim_led_status_json(&l, show, 0)), &n, &off, &ts);
        assert_int_equal(n, sim_led_cabinets(&l));
        assert_int_equal(off, 0);
        check_led(load_json(sim_led_status_json(&l, brk, 0)), &n, &off, &tb);
        assert_true(ts / n > 45 && ts / n < 51); /* ~48 °C in shows */
        assert_true(tb / n > 32 && tb / n < 38); /* ~35 °C idle */
        check_led(load_json(sim_led_status_json(&l, show, 1)), &n, &off, &ts);
        assert_int_equal(off, 1); /* a fault episode: one cabinet dark */
        /* the same seed and time give the same answer; failed pixels never decrease */
        char *a = sim_led_status_json(&l, show, 0), *b = sim_led_status_json(&l, show, 0);
        assert_string_equal(a, b);
        free(a);
        free(b);
        json_t *j0 = load_json(sim_led_status_json(&l, 0, 0));
        json_t *j1 = load_json(sim_led_status_json(&l, 3600 * 1000 * 10LL, 0)); /* 600 h */
        json_int_t f0 = json_integer_value(json_object_get(j0, "failed_pixels"));
        json_int_t f1 = json_integer_value(json_object_get(j1, "failed_pixels"));
        assert_true(f0 >= 0 && f0 <= 3);
        assert_true(f1 > f0 && f1 < f0 + 6);
        json_decref(j0);
        json_decref(j1);
    }
}

static void test_sensor_model(void **state)
{
    (void)state;
    static const char *const chans[] = {"L", "C", "R", "Ls", "Rs", "LFE"};
    sim_device pj;
    sim_device_init(&pj, SIM_MODEL_CHRISTIE, 2, 7, 0, 3600); /* an hour a second */
    sim_sensor s;
    sim_sensor_init(&s, 2, 7, 0, 3600, &pj);
    int64_t show = time_with_load(&pj, 0, 1.0);
    json_t *j = load_json(sim_sensor_json(&s, show));
    json_t *dev = json_object_get(j, "device");
    assert_true(json_is_string(json_object_get(dev, "model")));
    assert_true(json_is_string(json_object_get(dev, "serial")));
    assert_true(json_is_string(json_object_get(dev, "firmware")));
    json_t *light = json_object_get(j, "light");
    assert_string_equal(json_string_value(json_object_get(light, "mode")), "2d");
    double nits0 = jnum(light, "nits");
    assert_true(nits0 > 45 && nits0 < 51);
    assert_true(fabs(jnum(light, "x") - 0.314) < 0.003 && fabs(jnum(light, "y") - 0.351) < 0.003);
    json_t *snd = json_object_get(j, "sound");
    assert_int_equal(json_array_size(snd), 6);
    double show_db = 0;
    for (size_t i = 0; i < 6; i++) {
        json_t *c = json_array_get(snd, i);
        assert_string_equal(json_string_value(json_object_get(c, "channel")), chans[i]);
        double db = jnum(c, "dbc");
        assert_true(db > 79 && db < 92);
        show_db += db;
    }
    json_decref(j);
    /* in a break the levels are lower */
    int64_t brk = time_with_load(&pj, 0, 0.15);
    j = load_json(sim_sensor_json(&s, brk));
    double brk_db = 0;
    for (size_t i = 0; i < 6; i++)
        brk_db += jnum(json_array_get(json_object_get(j, "sound"), i), "dbc");
    assert_true(brk_db < show_db - 6 * 10);
    json_decref(j);
    /* 2400 s at 3600× = 2400 h, 2000 of them burning: about -10 % */
    double lh0 = sim_device_lamp_hours(&pj, 0), lh1 = sim_device_lamp_hours(&pj, 2400 * 1000);
    assert_true(lh1 - lh0 > 1900 && lh1 - lh0 < 2100);
    double n1 = sim_sensor_nits(&s, 2400 * 1000), n0 = sim_sensor_nits(&s, 0);
    assert_true(n1 < n0 * 0.92 && n1 > n0 * 0.88);
    j = load_json(sim_sensor_json(&s, 2400 * 1000));
    assert_true(jnum(json_object_get(j, "light"), "x") > 0.314 - 0.002);
    json_decref(j);
    /* no projector: still a valid answer */
    sim_sensor_init(&s, 1, 1, 0, 1, NULL);
    j = load_json(sim_sensor_json(&s, 5000));
    assert_non_null(json_object_get(j, "light"));
    json_decref(j);
}

#define LOGIN_FMT                                                                                  \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><SOAP-ENV:Envelope "                                \
    "xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" "                                \
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "                                     \
    "xmlns:ns0=\"http://schemas.xmlsoap.org/soap/envelope/\" "                                     \
    "xmlns:ns1=\"http://www.doremilabs.com/dc/dcp/ws/v1_0\"><SOAP-ENV:Header/><ns0:Body>"          \
    "<ns1:Login><username>%s</username><password>%s</password></ns1:Login></ns0:Body>"             \
    "</SOAP-ENV:Envelope>"
#define OP_FMT                                                                                     \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><SOAP-ENV:Envelope "                                \
    "xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" "                                \
    "xmlns:ns1=\"http://www.doremilabs.com/dc/dcp/ws/v1_0\"><SOAP-ENV:Body>"                       \
    "<ns1:%s><sessionId>%s</sessionId></ns1:%s></SOAP-ENV:Body></SOAP-ENV:Envelope>"

/* The text of <tag>...</ in s, or "" (into out). */
static const char *xml_text(const char *s, const char *tag, char *out, size_t cap)
{
    char open[64];
    snprintf(open, sizeof open, "<%s>", tag);
    const char *p = s ? strstr(s, open) : NULL;
    out[0] = '\0';
    if (!p) return out;
    p += strlen(open);
    const char *e = strstr(p, "</");
    size_t n = e ? (size_t)(e - p) : 0;
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

static int ims_call(sim_ims *m, const char *path, const char *body, char **out)
{
    size_t n = 0;
    int st = sim_ims_handle(m, path, body, strlen(body), 0, out, &n);
    assert_non_null(*out);
    assert_int_equal(strlen(*out), n);
    return st;
}

static void test_ims_model(void **state)
{
    (void)state;
    sim_ims m;
    assert_int_equal(sim_ims_init(&m, 12, 5, "manager", "pa<&>ss"), 0);
    char body[2048], *out, sid[64], sid0[64], tmp[64];
    snprintf(body, sizeof body, LOGIN_FMT, "manager", "wrong");
    assert_int_equal(ims_call(&m, SIM_IMS_PATH_SESSION, body, &out), 500);
    assert_non_null(strstr(out, "<SOAP-ENV:Fault>"));
    free(out);
    snprintf(body, sizeof body, LOGIN_FMT, "manager", "pa&lt;&amp;&gt;ss");
    assert_int_equal(ims_call(&m, SIM_IMS_PATH_SESSION, body, &out), 200);
    xml_text(out, "sessionId", sid0, sizeof sid0);
    assert_int_equal(strlen(sid0), 32);
    free(out);
    snprintf(body, sizeof body, OP_FMT, "GetProductInformation", sid0, "GetProductInformation");
    assert_int_equal(ims_call(&m, SIM_IMS_PATH_SYSINFO, body, &out), 200);
    assert_string_equal(xml_text(out, "sys:productName", tmp, sizeof tmp), "IMS3000");
    assert_string_equal(xml_text(out, "sys:serialNumber", tmp, sizeof tmp), "SIMIMS0012");
    assert_string_equal(xml_text(out, "sys:mainSoftwareVersion", tmp, sizeof tmp), "3.2.4-0");
    assert_string_equal(xml_text(out, "sys:mainFirmwareVersion", tmp, sizeof tmp), "2.8.14");
    assert_non_null(strstr(out, "<ns1:GetProductInformationResponse>"));
    free(out);
    snprintf(body, sizeof body, OP_FMT, "GetHostname", sid0, "GetHostname");
    assert_int_equal(ims_call(&m, SIM_IMS_PATH_SYSINFO, body, &out), 200);
    assert_string_equal(xml_text(out, "hostname", tmp, sizeof tmp), "hall12-ims");
    assert_string_equal(xml_text(out, "screenName", tmp, sizeof tmp), "Screen 12");
    free(out);
    snprintf(body, sizeof body, OP_FMT, "GetHardwareInventoryList", sid0,
             "GetHardwareInventoryList");
    assert_int_equal(ims_call(&m, SIM_IMS_PATH_SYSINFO, body, &out), 200);
    assert_string_equal(xml_text(out, "sys:title", tmp, sizeof tmp), "Storage RAID");
    assert_string_equal(xml_text(out, "sys:status", tmp, sizeof tmp), "OK");
    int parts = 0;
    for (const char *p = out; (p = strstr(p, "<sys:hardwarePart>")); p++)
        parts++;
    assert_int_equal(parts, 3);
    free(out);
    size_t n;
    sim_ims_handle(&m, SIM_IMS_PATH_SYSINFO, body, strlen(body), 1, &out, &n);
    assert_string_equal(xml_text(out, "sys:status", tmp, sizeof tmp), "Degraded");
    free(out);
    /* unknown operation, missing / wrong session id, unknown path */
    snprintf(body, sizeof body, OP_FMT, "GetFoo", sid0, "GetFoo");
    assert_int_equal(ims_call(&m, SIM_IMS_PATH_SYSINFO, body, &out), 500);
    free(out);
    snprintf(body, sizeof body, OP_FMT, "GetHostname", "0123456789abcdef0123456789abcdef",
             "GetHostname");
    assert_int_equal(ims_call(&m, SIM_IMS_PATH_SYSINFO, body, &out), 500);
    assert_non_null(strstr(out, "Invalid session id"));
    free(out);
    assert_int_equal(ims_call(&m, SIM_IMS_PATH_SYSINFO, "<ns1:GetHostname/>", &out), 500);
    free(out);
    assert_int_equal(ims_call(&m, "/nope", "", &out), 404);
    free(out);
    assert_int_equal(ims_call(&m, SIM_IMS_PATH_SYSINFO, "<<<</<:/:>", &out), 500);
    free(out);
    /* the sessions table is bounded: 64 more logins evict the first one */
    snprintf(body, sizeof body, LOGIN_FMT, "manager", "pa&lt;&amp;&gt;ss");
    for (int i = 0; i < SIM_IMS_MAX_SESSIONS; i++) {
        assert_int_equal(ims_call(&m, SIM_IMS_PATH_SESSION, body, &out), 200);
        xml_text(out, "sessionId", sid, sizeof sid);
        assert_string_not_equal(sid, sid0);
        free(out);
    }
    snprintf(body, sizeof body, OP_FMT, "GetHostname", sid0, "GetHostname");
    assert_int_equal(ims_call(&m, SIM_IMS_PATH_SYSINFO, body, &out), 500);
    free(out);
    snprintf(body, sizeof body, OP_FMT, "GetHostname", sid, "GetHostname");
    assert_int_equal(ims_call(&m, SIM_IMS_PATH_SYSINFO, body, &out), 200);
    free(out);
    /* logout ends the session */
    snprintf(body, sizeof body, OP_FMT, "Logout", sid, "Logout");
    assert_int_equal(ims_call(&m, SIM_IMS_PATH_SESSION, body, &out), 200);
    free(out);
    snprintf(body, sizeof body, OP_FMT, "GetHostname", sid, "GetHostname");
    assert_int_equal(ims_call(&m, SIM_IMS_PATH_SYSINFO, body, &out), 500);
    free(out);
    /* without configured credentials any login works; too long credentials are refused */
    assert_int_equal(sim_ims_init(&m, 1, 5, NULL, NULL), 0);
    snprintf(body, sizeof body, LOGIN_FMT, "x", "y");
    assert_int_equal(ims_call(&m, SIM_IMS_PATH_SESSION, body, &out), 200);
    free(out);
    char longpw[200];
    memset(longpw, 'p', sizeof longpw - 1);
    longpw[sizeof longpw - 1] = '\0';
    assert_int_equal(sim_ims_init(&m, 1, 5, "u", longpw), -1);
    assert_string_equal(sim_httpdev_profile(SIM_HTTP_IMS), "dolby-ims-soap");
    assert_string_equal(sim_httpdev_role(SIM_HTTP_LED), "led-screen");
    assert_string_equal(sim_httpdev_profile(SIM_HTTP_SENSOR), "light-sound-sensor-http");
    assert_null(sim_httpdev_role(SIM_HTTP_NKINDS));
}

/* ---- the agent's shipped profiles read these answers ------------------------------- */

typedef struct tally {
    int n, zeros;
    double sum;
} tally;

static void count_emit(void *ud, const char *metric, const char *unit, const cm_label *labels,
                       size_t nlabels, double value)
{
    tally *t = ud;
    (void)metric, (void)unit, (void)labels, (void)nlabels;
    t->n++;
    t->zeros += value == 0;
    t->sum += value;
}

static void load_profile(const char *file, ag_http_profile *hp)
{
    json_error_t je;
    json_t *doc = json_load_file(file, 0, &je);
    if (!doc) fail_msg("%s: %s", file, je.text);
    char err[512];
    if (ag_http_profile_parse(file, doc, hp, err, sizeof err) != 0) fail_msg("%s", err);
    json_decref(doc);
}

/* Map one XML answer with request i of hp; returns the unmapped count (fails on bad XML). */
static int map_xml(const ag_http_profile *hp, size_t i, const char *xml, tally *t,
                   ag_http_identity *id)
{
    char err[256];
    if (ag_xml_check(xml, strlen(xml), err, sizeof err) != 0) fail_msg("bad XML: %s: %s", err, xml);
    int r = ag_http_map_xml(&hp->reqs[i], xml, strlen(xml), count_emit, t, id, err, sizeof err);
    if (r != 0) fail_msg("unmapped %d: %s", r, err);
    return r;
}

/* The request of hp named name. */
static size_t req_named(const ag_http_profile *hp, const char *name)
{
    for (size_t i = 0; i < hp->nreqs; i++)
        if (hp->reqs[i].name && strcmp(hp->reqs[i].name, name) == 0) return i;
    fail_msg("no request %s", name);
    return 0;
}

static void test_agent_profiles(void **state)
{
    (void)state;
    char err[256];
    sim_device pj;
    sim_device_init(&pj, SIM_MODEL_CHRISTIE, 1, 3, 0, 1);
    /* LED screen */
    ag_http_profile hp;
    load_profile("profiles/led-screen-http.json", &hp);
    sim_led l;
    sim_led_init(&l, 1, 3, 0, 1, &pj);
    for (int ep = 0; ep <= 1; ep++) {
        json_t *j = load_json(sim_led_status_json(&l, 5000, ep));
        tally t = {0};
        ag_http_identity id;
        memset(&id, 0, sizeof id);
        int r = ag_http_map(&hp.reqs[0], j, count_emit, &t, &id, err, sizeof err);
        if (r != 0) fail_msg("LED: %d unmapped: %s", r, err);
        assert_int_equal(t.n, 4 + 3 * sim_led_cabinets(&l));
        assert_int_equal(t.zeros, ep ? 2 : 0); /* online 0 and voltage 0 of the dark cabinet */
        assert_string_equal(id.vendor, "SimLED");
        assert_true(strncmp(id.serial, "LED", 3) == 0);
        json_decref(j);
    }
    ag_http_profile_free(&hp);
    /* light and sound sensor */
    load_profile("profiles/light-sound-sensor-http.json", &hp);
    sim_sensor se;
    sim_sensor_init(&se, 1, 3, 0, 1, &pj);
    json_t *j = load_json(sim_sensor_json(&se, 5000));
    tally t = {0};
    int r = ag_http_map(&hp.reqs[0], j, count_emit, &t, NULL, err, sizeof err);
    if (r != 0) fail_msg("sensor: %d unmapped: %s", r, err);
    assert_int_equal(t.n, 3 + 6);
    json_decref(j);
    ag_http_profile_free(&hp);
    /* the IMS: login → session, product information, inventory, a lost session */
    load_profile("profiles/dolby-ims-soap.json", &hp);
    assert_true(hp.has_login);
    sim_ims m;
    sim_ims_init(&m, 7, 3, "manager", "password");
    char *body = NULL, *out;
    ag_http_vars v = {.username = "manager", .password = "password"};
    assert_int_equal(ag_http_expand(hp.reqs[0].tmpl, &v, 1, 0, &body, err, sizeof err), 0);
    assert_int_equal(ims_call(&m, hp.reqs[0].path, body, &out), 200);
    free(body);
    char sid[AG_HTTP_MAX_SESSION];
    if (ag_http_session(&hp.reqs[0], out, strlen(out), sid, sizeof sid, err, sizeof err) != 0)
        fail_msg("session: %s", err);
    assert_int_equal(strlen(sid), 32);
    free(out);
    v.session = sid;
    static const char *const ops[] = {"GetProductInformation", "GetHostname",
                                      "GetHardwareInventoryList"};
    for (size_t k = 0; k < 3; k++) {
        size_t i = req_named(&hp, ops[k]);
        assert_int_equal(ag_http_expand(hp.reqs[i].tmpl, &v, 1, 0, &body, err, sizeof err), 0);
        for (int ep = 0; ep <= 1; ep++) {
            size_t n;
            int st = sim_ims_handle(&m, hp.reqs[i].path, body, strlen(body), ep, &out, &n);
            assert_int_equal(st, 200);
            assert_false(ag_http_session_lost(&hp.reqs[0], &hp.reqs[i], st, out, n));
            tally tt = {0};
            ag_http_identity id;
            memset(&id, 0, sizeof id);
            map_xml(&hp, i, out, &tt, &id);
            if (k == 0) {
                assert_string_equal(id.model, "IMS3000");
                assert_string_equal(id.serial, "SIMIMS0007");
                assert_string_equal(id.firmware, "3.2.4-0 / 2.8.14");
            } else if (k == 1) {
                assert_string_equal(id.hostname, "hall7-ims");
            } else {
                assert_int_equal(tt.n, 3);
                assert_int_equal(tt.zeros, ep); /* the RAID degraded in an episode */
            }
            free(out);
        }
        free(body);
    }
    /* an unknown session: the agent sees a lost session */
    v.session = "00000000000000000000000000000000";
    size_t i = req_named(&hp, "GetHostname");
    assert_int_equal(ag_http_expand(hp.reqs[i].tmpl, &v, 1, 0, &body, err, sizeof err), 0);
    int st = ims_call(&m, hp.reqs[i].path, body, &out);
    assert_int_equal(st, 500);
    assert_true(ag_http_session_lost(&hp.reqs[0], &hp.reqs[i], st, out, strlen(out)));
    free(out);
    free(body);
    ag_http_profile_free(&hp);
}

/* ---- end to end: a device on a loop thread, a raw socket client ------------------- */

typedef struct rig {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t th;
    sim_device projector;
    sim_httpdev *dev;
    int port;
} rig;

static void on_stop(uv_async_t *a)
{
    rig *r = a->data;
    sim_httpdev_stop(r->dev);
    uv_close((uv_handle_t *)&r->stop, NULL);
}

static void *loop_main(void *arg)
{
    rig *r = arg;
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void rig_start(rig *r, sim_http_kind kind, double fault_rate, const char *user,
                      const char *pass)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(uv_loop_init(&r->loop), 0);
    int64_t now = (int64_t)uv_now(&r->loop);
    sim_device_init(&r->projector, SIM_MODEL_CHRISTIE, 4, 99, now, 1);
    sim_httpdev_opts o = {.kind = kind,
                          .hall = 4,
                          .seed = 99,
                          .start_ms = now,
                          .speed = 1,
                          .fault_rate = fault_rate,
                          .projector = &r->projector,
                          .ims_user = user,
                          .ims_pass = pass};
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    char err[256];
    int rc =
        sim_httpdev_start(&r->dev, &r->loop, (const struct sockaddr *)&sa, &o, err, sizeof err);
    if (rc != 0) fail_msg("start: %s", err);
    r->port = sim_httpdev_port(r->dev);
    assert_true(r->port > 0);
    uv_async_init(&r->loop, &r->stop, on_stop);
    r->stop.data = r;
    assert_int_equal(pthread_create(&r->th, NULL, loop_main, r), 0);
}

static void rig_stop(rig *r, sim_httpdev_stats *st)
{
    uv_async_send(&r->stop);
    pthread_join(r->th, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT); /* the close callbacks, if any are left */
    sim_httpdev_get_stats(r->dev, st);
    sim_httpdev_free(r->dev);
    assert_int_equal(uv_loop_close(&r->loop), 0);
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        assert_true(k > 0);
        s += k;
        n -= (size_t)k;
    }
}

/* Per-connection receive buffer, so pipelined answers are not lost between reads. */
typedef struct rx {
    char buf[131072];
    size_t len;
} rx;

/* Read one answer within timeout_ms: its status (0 = connection closed, -1 = timeout), its
 * body (malloc'd, NUL-terminated) and whether the server keeps the connection. */
static int read_answer(int fd, rx *x, int timeout_ms, char **body, int *keep)
{
    *body = NULL;
    for (;;) {
        char *he = memmem(x->buf, x->len, "\r\n\r\n", 4);
        if (he) {
            size_t hl = (size_t)(he - x->buf) + 4;
            char *cl = memmem(x->buf, hl, "Content-Length: ", 16);
            assert_non_null(cl);
            size_t blen = strtoul(cl + 16, NULL, 10);
            if (x->len >= hl + blen) {
                int status = atoi(x->buf + 9);
                if (keep) *keep = memmem(x->buf, hl, "Connection: keep-alive", 22) != NULL;
                *body = malloc(blen + 1);
                memcpy(*body, x->buf + hl, blen);
                (*body)[blen] = '\0';
                memmove(x->buf, x->buf + hl + blen, x->len - hl - blen);
                x->len -= hl + blen;
                return status;
            }
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0) return -1;
        assert_true(x->len < sizeof x->buf);
        ssize_t k = recv(fd, x->buf + x->len, sizeof x->buf - x->len, 0);
        if (k <= 0) return 0;
        x->len += (size_t)k;
    }
}

static int get(int fd, rx *x, const char *path, char **body, int *keep)
{
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: sim\r\n\r\n", path);
    send_all(fd, req, (size_t)n);
    return read_answer(fd, x, 3000, body, keep);
}

static int post(int fd, rx *x, const char *path, const char *body, char **out)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: sim\r\nContent-Type: text/xml; charset=utf-8\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     path, strlen(body));
    send_all(fd, head, (size_t)n);
    send_all(fd, body, strlen(body));
    return read_answer(fd, x, 3000, out, NULL);
}

static void test_e2e_led_sensor(void **state)
{
    (void)state;
    static rx x;
    rig r;
    sim_httpdev_stats st;
    rig_start(&r, SIM_HTTP_LED, 0, NULL, NULL);
    int fd = connect_to(r.port), keep = 0;
    char *body;
    /* keep-alive: two requests on one connection */
    x.len = 0;
    assert_int_equal(get(fd, &x, "/api/status", &body, &keep), 200);
    assert_true(keep);
    int n, off;
    double ts;
    check_led(load_json(body), &n, &off, &ts);
    assert_true(n >= 12 && n <= 24);
    assert_int_equal(off, 0);
    assert_int_equal(get(fd, &x, "/api/status?full=1", &body, &keep), 200);
    check_led(load_json(body), &n, &off, &ts);
    /* 404, 405 keep the connection; pipelined requests answered in order */
    assert_int_equal(get(fd, &x, "/nope", &body, &keep), 404);
    free(body);
    assert_true(keep);
    const char *two = "POST /api/status HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
                      "GET /api/status HTTP/1.1\r\nConnection: close\r\n\r\n";
    send_all(fd, two, strlen(two));
    assert_int_equal(read_answer(fd, &x, 3000, &body, &keep), 405);
    free(body);
    assert_int_equal(read_answer(fd, &x, 3000, &body, &keep), 200);
    assert_false(keep);
    free(body);
    assert_int_equal(read_answer(fd, &x, 3000, &body, NULL), 0); /* closed after */
    close(fd);
    /* a malformed request: 400 and the connection closes */
    fd = connect_to(r.port);
    x.len = 0;
    send_all(fd, "GARBAGE\x01\r\n\r\n", 12);
    assert_int_equal(read_answer(fd, &x, 3000, &body, &keep), 400);
    free(body);
    assert_false(keep);
    assert_int_equal(read_answer(fd, &x, 3000, &body, NULL), 0);
    close(fd);
    /* too large a body: 413 */
    fd = connect_to(r.port);
    x.len = 0;
    const char *big = "POST /api/status HTTP/1.1\r\nContent-Length: 70000\r\n\r\n";
    send_all(fd, big, strlen(big));
    assert_int_equal(read_answer(fd, &x, 3000, &body, &keep), 413);
    free(body);
    close(fd);
    rig_stop(&r, &st);
    assert_int_equal(st.connections, 3);
    assert_int_equal(st.requests, 7);
    assert_int_equal(st.responses, 7);
    assert_int_equal(st.bad_requests, 4); /* 404, 405, 400, 413 */
    assert_int_equal(st.faults, 0);

    rig_start(&r, SIM_HTTP_SENSOR, 0, NULL, NULL);
    fd = connect_to(r.port);
    x.len = 0;
    assert_int_equal(get(fd, &x, "/api/measurements", &body, &keep), 200);
    json_t *j = load_json(body);
    double nits = jnum(json_object_get(j, "light"), "nits");
    assert_true(nits > 45 && nits < 51);
    assert_int_equal(json_array_size(json_object_get(j, "sound")), 6);
    json_decref(j);
    assert_int_equal(get(fd, &x, "/api/status", &body, &keep), 404);
    free(body);
    close(fd);
    rig_stop(&r, &st);
    assert_int_equal(st.responses, 2);
}

static void test_e2e_ims(void **state)
{
    (void)state;
    static rx x;
    rig r;
    sim_httpdev_stats st;
    rig_start(&r, SIM_HTTP_IMS, 0, "manager", "password");
    int fd = connect_to(r.port);
    x.len = 0;
    char body[2048], *out, sid[64], tmp[64];
    snprintf(body, sizeof body, LOGIN_FMT, "manager", "nope");
    assert_int_equal(post(fd, &x, SIM_IMS_PATH_SESSION, body, &out), 500);
    assert_non_null(strstr(out, "Fault"));
    free(out);
    snprintf(body, sizeof body, LOGIN_FMT, "manager", "password");
    assert_int_equal(post(fd, &x, SIM_IMS_PATH_SESSION, body, &out), 200);
    xml_text(out, "sessionId", sid, sizeof sid);
    assert_int_equal(strlen(sid), 32);
    free(out);
    snprintf(body, sizeof body, OP_FMT, "GetProductInformation", sid, "GetProductInformation");
    assert_int_equal(post(fd, &x, SIM_IMS_PATH_SYSINFO, body, &out), 200);
    assert_string_equal(xml_text(out, "sys:productName", tmp, sizeof tmp), "IMS3000");
    assert_string_equal(xml_text(out, "sys:serialNumber", tmp, sizeof tmp), "SIMIMS0004");
    free(out);
    snprintf(body, sizeof body, OP_FMT, "GetProductInformation", "ffffffffffffffffffffffffffffffff",
             "GetProductInformation");
    assert_int_equal(post(fd, &x, SIM_IMS_PATH_SYSINFO, body, &out), 500);
    free(out);
    int keep;
    assert_int_equal(get(fd, &x, SIM_IMS_PATH_SYSINFO, &out, &keep), 405);
    free(out);
    /* Expect: 100-continue gets an interim answer before the body is sent */
    snprintf(body, sizeof body, OP_FMT, "GetHostname", sid, "GetHostname");
    char head[256];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
                     SIM_IMS_PATH_SYSINFO, strlen(body));
    send_all(fd, head, (size_t)n);
    struct pollfd p = {fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 3000), 1);
    char cont[64];
    ssize_t k = recv(fd, cont, sizeof cont - 1, 0);
    assert_true(k > 0);
    cont[k] = '\0';
    assert_string_equal(cont, "HTTP/1.1 100 Continue\r\n\r\n");
    send_all(fd, body, strlen(body));
    assert_int_equal(read_answer(fd, &x, 3000, &out, NULL), 200);
    assert_string_equal(xml_text(out, "hostname", tmp, sizeof tmp), "hall4-ims");
    free(out);
    /* a body near the 64 KiB limit (the connection's buffer grows) */
    size_t blen = SIM_HTTP_MAX_BODY - 2000;
    char *bigb = malloc(blen + 1);
    assert_non_null(bigb);
    memset(bigb, ' ', blen);
    snprintf(body, sizeof body, LOGIN_FMT, "manager", "password");
    memcpy(bigb + blen - strlen(body), body, strlen(body));
    bigb[blen] = '\0';
    assert_int_equal(post(fd, &x, SIM_IMS_PATH_SESSION, bigb, &out), 200);
    assert_int_equal(strlen(xml_text(out, "sessionId", tmp, sizeof tmp)), 32);
    free(out);
    free(bigb);
    close(fd);
    rig_stop(&r, &st);
    assert_int_equal(st.requests, 7);
    assert_int_equal(st.responses, 7);
    assert_int_equal(st.bad_requests, 1); /* the 405; SOAP faults are answers */
}

/* A fixed answer, for the fault tests of the bare server. */
static const char FIXED[] = "{\"fixed\": \"0123456789abcdefghijklmnopqrstuvwxyz\"}";

static void fixed_handler(void *ctx, const sim_http_req *req, int64_t now_ms, int episode,
                          sim_http_resp *resp)
{
    (void)req, (void)now_ms;
    *(int *)ctx = episode;
    resp->status = 200;
    resp->ctype = "application/json";
    resp->body = strdup(FIXED);
    resp->len = strlen(FIXED);
}

typedef struct srig {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t th;
    sim_httpserv srv;
    int episode;
} srig;

static void on_sstop(uv_async_t *a)
{
    srig *r = a->data;
    sim_httpserv_stop(&r->srv);
    uv_close((uv_handle_t *)&r->stop, NULL);
}

static void *sloop_main(void *arg)
{
    srig *r = arg;
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* The outcome of one request to a server whose first request draws fault want. */
static void one_fault(sim_fault want)
{
    static rx x;
    srig r;
    memset(&r, 0, sizeof r);
    uint64_t seed = 0;
    for (;; seed++) { /* a seed whose first decision at rate 1 is the wanted fault */
        sim_fault_state fs = {.rng = seed};
        if (sim_fault_decide(&fs, 1.0, 0) == want) break;
    }
    assert_int_equal(uv_loop_init(&r.loop), 0);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(sim_httpserv_start(&r.srv, &r.loop, (const struct sockaddr *)&sa,
                                        fixed_handler, &r.episode, 1.0, seed),
                     0);
    r.srv.fault.silent_until_ms = 0;
    struct sockaddr_in bound;
    int blen = sizeof bound;
    assert_int_equal(uv_tcp_getsockname(&r.srv.listener, (struct sockaddr *)&bound, &blen), 0);
    uv_async_init(&r.loop, &r.stop, on_sstop);
    r.stop.data = &r;
    assert_int_equal(pthread_create(&r.th, NULL, sloop_main, &r), 0);

    int fd = connect_to(ntohs(bound.sin_port));
    x.len = 0;
    char *body = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    send_all(fd, "GET / HTTP/1.1\r\n\r\n", 18);
    int st =
        read_answer(fd, &x, want == SIM_FAULT_SILENT ? 500 : SIM_FAULT_SLOW_MS + 2000, &body, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    switch (want) {
    case SIM_FAULT_SLOW:
        assert_int_equal(st, 200);
        assert_string_equal(body, FIXED);
        assert_true(ms >= SIM_FAULT_SLOW_MS - 100);
        break;
    case SIM_FAULT_GARBLE: {
        assert_int_equal(st, 200);
        assert_int_equal(strlen(body), strlen(FIXED));
        int diff = 0;
        for (size_t i = 0; i < strlen(FIXED); i++)
            diff += body[i] != FIXED[i];
        assert_true(diff >= 1 && diff <= 3);
        break;
    }
    case SIM_FAULT_CLOSE:
        assert_int_equal(st, 0);
        break;
    default:
        assert_int_equal(st, -1);
        break; /* silent */
    }
    free(body);
    close(fd);
    uv_async_send(&r.stop);
    pthread_join(r.th, NULL);
    assert_int_equal(r.srv.requests, 1);
    assert_int_equal(r.srv.faults, 1);
    if (want == SIM_FAULT_GARBLE) assert_int_equal(r.episode, 1); /* the device knows */
    assert_int_equal(r.srv.responses, want == SIM_FAULT_SLOW || want == SIM_FAULT_GARBLE);
    assert_int_equal(uv_loop_close(&r.loop), 0);
}

static void test_start_errors(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    sim_httpdev_opts o = {.kind = SIM_HTTP_SENSOR, .hall = 1, .seed = 1, .speed = 1};
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    char err[256] = "";
    sim_httpdev *a = NULL, *b = (sim_httpdev *)&o;
    assert_int_equal(
        sim_httpdev_start(&a, &loop, (const struct sockaddr *)&sa, &o, err, sizeof err), 0);
    sa.sin_port = htons((uint16_t)sim_httpdev_port(a));
    /* the port is taken: an error naming the device, nothing to free */
    assert_true(sim_httpdev_start(&b, &loop, (const struct sockaddr *)&sa, &o, err, sizeof err) <
                0);
    assert_null(b);
    assert_non_null(strstr(err, "hall1/sensor"));
    o.kind = SIM_HTTP_NKINDS;
    assert_true(sim_httpdev_start(&b, &loop, (const struct sockaddr *)&sa, &o, err, sizeof err) <
                0);
    assert_null(b);
    sim_httpdev_stop(a);
    uv_run(&loop, UV_RUN_DEFAULT);
    sim_httpdev_free(a);
    sim_httpdev_free(NULL);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_e2e_faults_and_cap(void **state)
{
    (void)state;
    static rx x;
    rig r;
    sim_httpdev_stats st;
    one_fault(SIM_FAULT_GARBLE);
    one_fault(SIM_FAULT_CLOSE);
    one_fault(SIM_FAULT_SILENT);
    one_fault(SIM_FAULT_SLOW);

    /* a device at fault rate 1: every request draws a fault, counted */
    rig_start(&r, SIM_HTTP_LED, 1.0, NULL, NULL);
    int fd = connect_to(r.port);
    x.len = 0;
    char *body = NULL;
    send_all(fd, "GET /api/status HTTP/1.1\r\n\r\n", 28);
    int s1 = read_answer(fd, &x, 300, &body, NULL);
    assert_true(s1 == 200 || s1 == 0 || s1 == -1);
    free(body);
    close(fd);
    rig_stop(&r, &st);
    assert_int_equal(st.requests, 1);
    assert_int_equal(st.faults, 1);

    /* the connection cap: the oldest connection is closed */
    rig_start(&r, SIM_HTTP_SENSOR, 0, NULL, NULL);
    int fds[SIM_HTTP_MAX_CONNS + 1];
    for (int i = 0; i <= SIM_HTTP_MAX_CONNS; i++)
        fds[i] = connect_to(r.port);
    x.len = 0;
    assert_int_equal(read_answer(fds[0], &x, 3000, &body, NULL), 0); /* closed by the server */
    x.len = 0;
    assert_int_equal(get(fds[SIM_HTTP_MAX_CONNS], &x, "/api/measurements", &body, NULL), 200);
    free(body);
    for (int i = 0; i <= SIM_HTTP_MAX_CONNS; i++)
        close(fds[i]);
    rig_stop(&r, &st);
    assert_int_equal(st.connections, SIM_HTTP_MAX_CONNS + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),           cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_led_model),          cmocka_unit_test(test_sensor_model),
        cmocka_unit_test(test_ims_model),          cmocka_unit_test(test_agent_profiles),
        cmocka_unit_test(test_e2e_led_sensor),     cmocka_unit_test(test_e2e_ims),
        cmocka_unit_test(test_e2e_faults_and_cap), cmocka_unit_test(test_start_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

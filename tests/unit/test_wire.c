/* test_wire.c — batch JSON encoding and the strict decoder: round trips and JSON-path errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "batch.h"
#include "wire.h"

#define HEAD "{\"v\":1,\"agent\":{\"id\":\"a1\"},\"seq\":1,\"sent_ms\":1764082800123,"
#define S_OK "{\"device\":\"d\",\"metric\":\"m\",\"points\":[[1764082790000,1]]}"

static void streq_or_null(const char *a, const char *b)
{
    if (!a || !b) {
        assert_ptr_equal(a, b);
        return;
    }
    assert_string_equal(a, b);
}

static void assert_batches_equal(const cm_batch *a, const cm_batch *b)
{
    assert_int_equal(a->v, b->v);
    streq_or_null(a->agent_id, b->agent_id);
    streq_or_null(a->agent_version, b->agent_version);
    streq_or_null(a->site, b->site);
    assert_int_equal(a->seq, b->seq);
    /* 0 and seq both mean "this record only"; the encoder writes neither */
    assert_int_equal(a->first_seq == a->seq ? 0 : a->first_seq,
                     b->first_seq == b->seq ? 0 : b->first_seq);
    assert_int_equal(a->sent_ms, b->sent_ms);
    assert_int_equal(a->ngaps, b->ngaps);
    for (size_t i = 0; i < a->ngaps; i++) {
        assert_int_equal(a->gaps[i].from_seq, b->gaps[i].from_seq);
        assert_int_equal(a->gaps[i].to_seq, b->gaps[i].to_seq);
        assert_string_equal(a->gaps[i].reason, b->gaps[i].reason);
    }
    assert_int_equal(a->ndevices, b->ndevices);
    for (size_t i = 0; i < a->ndevices; i++) {
        const cm_device_info *x = &a->devices[i], *y = &b->devices[i];
        streq_or_null(x->id, y->id);
        streq_or_null(x->screen, y->screen);
        streq_or_null(x->kind, y->kind);
        streq_or_null(x->vendor, y->vendor);
        streq_or_null(x->model, y->model);
        streq_or_null(x->serial, y->serial);
        streq_or_null(x->firmware, y->firmware);
        streq_or_null(x->profile, y->profile);
    }
    assert_int_equal(a->nseries, b->nseries);
    assert_int_equal(cm_batch_points(a), cm_batch_points(b));
    for (size_t i = 0; i < a->nseries; i++) {
        const cm_series *x = &a->series[i], *y = &b->series[i];
        assert_string_equal(x->device, y->device);
        assert_string_equal(x->metric, y->metric);
        streq_or_null(x->unit, y->unit);
        assert_int_equal(x->nlabels, y->nlabels);
        for (size_t j = 0; j < x->nlabels; j++) {
            assert_string_equal(x->labels[j].key, y->labels[j].key);
            assert_string_equal(x->labels[j].value, y->labels[j].value);
        }
        assert_int_equal(x->npoints, y->npoints);
        for (size_t j = 0; j < x->npoints; j++) {
            assert_int_equal(x->points[j].ts_ms, y->points[j].ts_ms);
            if (x->points[j].value != y->points[j].value)
                fail_msg("series %zu point %zu: %.17g != %.17g", i, j, x->points[j].value,
                         y->points[j].value);
        }
    }
    assert_int_equal(a->nevents, b->nevents);
    for (size_t i = 0; i < a->nevents; i++) {
        const cm_event *x = &a->events[i], *y = &b->events[i];
        assert_string_equal(x->device, y->device);
        assert_int_equal(x->ts_ms, y->ts_ms);
        assert_string_equal(x->severity, y->severity);
        assert_string_equal(x->code, y->code);
        assert_string_equal(x->text, y->text);
        assert_string_equal(x->source, y->source);
    }
}

static void fill_batch(cm_batch *b)
{
    cm_batch_init(b);
    assert_int_equal(cm_batch_set_agent(b, "agent-CN-1101", "0.3.1", "CN-1101"), 0);
    b->seq = 1234;
    b->first_seq = 1201;
    b->sent_ms = 1764082800123;
    assert_int_equal(cm_batch_add_gap(b, 1190, 1200, "spool_full"), 0);
    assert_int_equal(cm_batch_add_gap(b, 1210, 1210, "corrupt"), 0);
    assert_int_equal(cm_batch_add_gap(b, 1, 1, "disk_error"), 0);
    cm_device_info d1 = {.id = "hall3/projector",
                         .screen = "hall3",
                         .kind = "projector",
                         .vendor = "Christie",
                         .model = "CP4230 \"Ультра\" 投影机",
                         .serial = "SN\\42\n",
                         .firmware = "4.2.1",
                         .profile = "christie-cp"};
    cm_device_info d2 = {.id = "hall3/cp950"};
    assert_int_equal(cm_batch_add_device(b, &d1), 0);
    assert_int_equal(cm_batch_add_device(b, &d2), 0);
    const double values[] = {
        1234.0,  0.1,     -3.5e-7,  1e300,     123456789012.0,     9007199254740993.0,
        DBL_MIN, DBL_MAX, -DBL_MAX, 1.0 / 3.0, 48.000000000000007, 0};
    cm_label l[] = {{"sensor", "dmd"}, {"channel", "L \"left\" ✓"}};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        assert_int_equal(cm_batch_add_point(b, "hall3/projector", "lamp_hours", "h", NULL, 0,
                                            1764082790000 + (int64_t)i * 1000, values[i]),
                         0);
        assert_int_equal(cm_batch_add_point(b, "hall3/projector", "temperature_celsius", NULL, l, 2,
                                            1764082790000 + (int64_t)i, -values[i]),
                         0);
        assert_int_equal(cm_batch_add_point(b, "hall3/cp950", "spl_dbc", "dBC", l + 1, 1,
                                            946684800000 + (int64_t)i, values[i] / 7),
                         0);
    }
    cm_event e1 = {"hall3/projector",
                   1764082795000,
                   "critical",
                   "LAMP_STRIKE",
                   "lamp failed to strike: \"ignition\"\t\\ 3×\x01 🎬",
                   "snmp-trap"};
    cm_event e2 = {"agent", 1764082796000, "info", "RESTART", "", "agent"};
    assert_int_equal(cm_batch_add_event(b, &e1), 0);
    assert_int_equal(cm_batch_add_event(b, &e2), 0);
}

static void test_round_trip(void **st)
{
    (void)st;
    cm_batch a, b;
    fill_batch(&a);
    size_t len = 0;
    char *json = cm_wire_encode(&a, &len);
    assert_non_null(json);
    assert_int_equal(strlen(json), len);
    cm_batch_init(&b);
    char err[256], at[128];
    if (cm_wire_decode(json, len, NULL, &b, err, sizeof err, at, sizeof at) != 0)
        fail_msg("decode failed at '%s': %s\n%s", at, err, json);
    assert_batches_equal(&a, &b);
    /* encoding the decoded batch gives the same bytes */
    size_t len2 = 0;
    char *json2 = cm_wire_encode(&b, &len2);
    assert_non_null(json2);
    assert_int_equal(len, len2);
    assert_memory_equal(json, json2, len);
    free(json);
    free(json2);
    cm_batch_free(&a);
    cm_batch_free(&b);
}

static void test_encode_exact(void **st)
{
    (void)st;
    cm_batch b;
    cm_batch_init(&b);
    assert_int_equal(cm_batch_set_agent(&b, "a", NULL, NULL), 0);
    b.seq = 7;
    b.sent_ms = 1764082800123;
    cm_label l[] = {{"b", "2"}, {"a", "1"}};
    assert_int_equal(cm_batch_add_point(&b, "d", "m", NULL, l, 2, 1764082790000, 1234.0), 0);
    assert_int_equal(cm_batch_add_point(&b, "d", "m", NULL, l, 2, 1764082791000, 0.1), 0);
    assert_int_equal(cm_batch_add_point(&b, "d", "m", NULL, l, 2, 1764082792000, -2.5), 0);
    cm_event e = {"d", 1764082790000, "warning", "C1", "tab\there \"q\" \x1f bad\xff", "agent"};
    assert_int_equal(cm_batch_add_event(&b, &e), 0);
    char *json = cm_wire_encode(&b, NULL);
    assert_non_null(json);
    assert_string_equal(json,
                        "{\"v\":1,\"agent\":{\"id\":\"a\"},\"seq\":7,\"sent_ms\":1764082800123,"
                        "\"devices\":[],\"series\":[{\"device\":\"d\",\"metric\":\"m\","
                        "\"labels\":{\"a\":\"1\",\"b\":\"2\"},\"points\":[[1764082790000,1234],"
                        "[1764082791000,0.1],[1764082792000,-2.5]]}],\"events\":[{\"device\":"
                        "\"d\",\"ts_ms\":1764082790000,\"severity\":\"warning\",\"code\":\"C1\","
                        "\"text\":\"tab\\there \\\"q\\\" \\u001f bad\xEF\xBF\xBD\","
                        "\"source\":\"agent\"}]}");
    free(json);
    cm_batch_free(&b);
}

/* Numbers come back exactly, whichever way they were printed (short decimals take a fast
 * path; the rest %.15g or %.17g). */
static void test_numbers_exact(void **st)
{
    (void)st;
    static const double vs[] = {0.05, -0.5,  47.5,   0.314,    123.456789, 1e-5,  -1e-7,
                                1e300, 0.1 + 0.2, 85.3,  99999999.5, 1.0 / 3, -0.000001,
                                4.999999, 0.3507};
    cm_batch b;
    cm_batch_init(&b);
    assert_int_equal(cm_batch_set_agent(&b, "a", NULL, NULL), 0);
    b.seq = 1;
    b.sent_ms = 1764082800123;
    size_t n = sizeof vs / sizeof vs[0];
    for (size_t i = 0; i < n; i++)
        assert_int_equal(cm_batch_add_point(&b, "d", "m", NULL, NULL, 0,
                                            1764082790000 + (int64_t)i, vs[i]), 0);
    size_t len = 0;
    char *json = cm_wire_encode(&b, &len);
    assert_non_null(json);
    assert_non_null(strstr(json, "[1764082790000,0.05]"));
    assert_non_null(strstr(json, "[1764082790001,-0.5]"));
    assert_non_null(strstr(json, "[1764082790012,-0.000001]"));
    cm_batch c;
    cm_batch_init(&c);
    char err[256], at[128];
    if (cm_wire_decode(json, len, NULL, &c, err, sizeof err, at, sizeof at) != 0)
        fail_msg("decode: %s at %s", err, at);
    assert_int_equal(c.nseries, 1);
    assert_int_equal(c.series[0].npoints, n);
    for (size_t i = 0; i < n; i++)
        if (c.series[0].points[i].value != vs[i])
            fail_msg("value %zu: %.17g came back as %.17g", i, vs[i], c.series[0].points[i].value);
    free(json);
    cm_batch_free(&b);
    cm_batch_free(&c);
}

static void test_nan_impossible(void **st)
{
    (void)st;
    cm_batch b;
    cm_batch_init(&b);
    assert_int_equal(cm_batch_add_point(&b, "d", "m", NULL, NULL, 0, 1764082790000, NAN), -1);
    assert_int_equal(cm_batch_add_point(&b, "d", "m", NULL, NULL, 0, 1764082790000, -INFINITY), -1);
    /* a NaN written into the batch behind its back is refused by the encoder */
    assert_int_equal(cm_batch_add_point(&b, "d", "m", NULL, NULL, 0, 1764082790000, 1), 0);
    b.series[0].points[0].value = NAN;
    assert_null(cm_wire_encode(&b, NULL));
    cm_batch_free(&b);
    /* and no body can carry one */
    const char *bodies[] = {
        HEAD "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"points\":[[1764082790000,NaN]]}]}",
        HEAD
        "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"points\":[[1764082790000,Infinity]]}]}",
        HEAD "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"points\":[[1764082790000,1e999]]}]}",
    };
    for (size_t i = 0; i < 3; i++) {
        char err[256], at[128];
        cm_batch_init(&b);
        assert_int_equal(
            cm_wire_decode(bodies[i], strlen(bodies[i]), NULL, &b, err, sizeof err, at, sizeof at),
            -1);
        assert_string_equal(at, "");
        assert_non_null(strstr(err, "line 1, column"));
        cm_batch_free(&b);
    }
}

typedef struct bad_case {
    const char *body; /* may contain one %s, replaced by `longlen` x's */
    size_t longlen;
    const char *at;
    const char *err; /* substring */
} bad_case;

static const bad_case bad_cases[] = {
    {"", 0, "", "line 1"},
    {"not json", 0, "", "line 1, column"},
    {"[1,2]", 0, "", "expected an object"},
    {"{\"agent\":{\"id\":\"a\"},\"seq\":1,\"sent_ms\":1}", 0, "v", "missing required key 'v'"},
    {"{\"v\":2,\"agent\":{\"id\":\"a\"},\"seq\":1,\"sent_ms\":1}", 0, "v", "unsupported version 2"},
    {"{\"v\":\"1\",\"agent\":{\"id\":\"a\"},\"seq\":1,\"sent_ms\":1}", 0, "v",
     "expected an integer"},
    {"{\"v\":1,\"agent\":{\"id\":\"a\"},\"seq\":0,\"sent_ms\":1}", 0, "seq", ">= 1"},
    {"{\"v\":1,\"agent\":{\"id\":\"a\"},\"seq\":1.5,\"sent_ms\":1}", 0, "seq",
     "expected an integer"},
    {"{\"v\":1,\"agent\":{\"id\":\"a\"},\"seq\":\"7\",\"sent_ms\":1}", 0, "seq", "got a string"},
    {"{\"v\":1,\"agent\":{\"id\":\"a\"},\"seq\":1}", 0, "sent_ms", "missing required key"},
    {"{\"v\":1,\"seq\":1,\"sent_ms\":1}", 0, "agent", "missing required key 'agent'"},
    {"{\"v\":1,\"agent\":{\"version\":\"1\"},\"seq\":1,\"sent_ms\":1}", 0, "agent.id", "missing"},
    {"{\"v\":1,\"agent\":{\"id\":\"\"},\"seq\":1,\"sent_ms\":1}", 0, "agent.id",
     "must not be empty"},
    {"{\"v\":1,\"agent\":{\"id\":\"%s\"},\"seq\":1,\"sent_ms\":1}", 129, "agent.id",
     "longer than 128"},
    {"{\"v\":1,\"agent\":{\"id\":\"a\",\"foo\":1},\"seq\":1,\"sent_ms\":1}", 0, "agent.foo",
     "unknown key 'foo'"},
    {HEAD "\"foo\":[]}", 0, "foo", "unknown key 'foo'"},
    {HEAD "\"series\":{}}", 0, "series", "expected an array"},
    {HEAD "\"series\":[7]}", 0, "series[0]", "expected an object"},
    {HEAD
     "\"series\":[{\"device\":\"d\",\"metric\":\"Lamp-Hours\",\"points\":[[1764082790000,1]]}]}",
     0, "series[0].metric", "metric name must match [a-z_][a-z0-9_]*"},
    {HEAD "\"series\":[{\"metric\":\"m\",\"points\":[[1764082790000,1]]}]}", 0, "series[0].device",
     "missing required key 'device'"},
    {HEAD "\"series\":[" S_OK ","
          "{\"device\":\"d\",\"metric\":\"m2\",\"points\":[[1764082790000,1],"
          "[1764082791000,2],[1764082792000,\"3\"]]}]}",
     0, "series[1].points[2][1]", "expected a number"},
    {HEAD "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"points\":[[1764082790000.5,1]]}]}", 0,
     "series[0].points[0][0]", "expected an integer"},
    {HEAD "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"points\":[[915148800000,1]]}]}", 0,
     "series[0].points[0][0]", "outside 2000-01-01..2100-01-01"},
    {HEAD "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"points\":[]}]}", 0, "series[0].points",
     "must not be empty"},
    {HEAD "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"points\":null}]}", 0,
     "series[0].points", "expected an array"},
    {HEAD "\"series\":[{\"device\":\"d\",\"metric\":\"m\"}]}", 0, "series[0].points", "missing"},
    {HEAD "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"points\":[[1764082790000,1,2]]}]}", 0,
     "series[0].points[0]", "got 3 elements"},
    {HEAD "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"points\":[5]}]}", 0,
     "series[0].points[0]", "expected [ts_ms, value]"},
    {HEAD "\"series\":[" S_OK "," S_OK
          ",{\"device\":\"d\",\"metric\":\"m\",\"labels\":{\"ok\":\"1\","
          "\"Bad\":\"x\"},\"points\":[[1764082790000,1]]}]}",
     0, "series[2].labels.Bad", "label name must match"},
    {HEAD "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"labels\":{\"sensor\":1},"
          "\"points\":[[1764082790000,1]]}]}",
     0, "series[0].labels.sensor", "expected a string"},
    {HEAD "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"labels\":{\"sensor\":\"%s\"},"
          "\"points\":[[1764082790000,1]]}]}",
     257, "series[0].labels.sensor", "longer than 256"},
    {HEAD "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"labels\":[],\"points\":[[1764082790000,"
          "1]]}]}",
     0, "series[0].labels", "expected an object"},
    {HEAD
     "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"unit\":5,\"points\":[[1764082790000,1]]}]}",
     0, "series[0].unit", "expected a string"},
    {HEAD "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"extra\":true,\"points\":[["
          "1764082790000,1]]}]}",
     0, "series[0].extra", "unknown key 'extra'"},
    {HEAD "\"devices\":[{\"id\":\"x\"},{\"kind\":\"projector\"}]}", 0, "devices[1].id", "missing"},
    {HEAD "\"devices\":[{\"id\":\"x\",\"model\":\"%s\"}]}", 300, "devices[0].model",
     "longer than 256"},
    {HEAD "\"devices\":[{\"id\":\"x\",\"colour\":\"red\"}]}", 0, "devices[0].colour",
     "unknown key"},
    {HEAD "\"devices\":[{\"id\":\"x\",\"serial\":null}]}", 0, "devices[0].serial", "got null"},
    {HEAD
     "\"events\":[{\"device\":\"d\",\"ts_ms\":1764082790000,\"severity\":\"fatal\",\"code\":\"c\","
     "\"text\":\"t\",\"source\":\"agent\"}]}",
     0, "events[0].severity", "info, warning or critical"},
    {HEAD "\"events\":[{\"device\":\"d\",\"severity\":\"info\",\"code\":\"c\",\"text\":\"t\","
          "\"source\":\"agent\"}]}",
     0, "events[0].ts_ms", "missing"},
    {HEAD
     "\"events\":[{\"device\":\"d\",\"ts_ms\":1764082790000,\"severity\":\"info\",\"code\":\"c\","
     "\"text\":\"%s\",\"source\":\"agent\"}]}",
     1025, "events[0].text", "longer than 1024"},
    {HEAD
     "\"events\":[{\"device\":\"d\",\"ts_ms\":1764082790000,\"severity\":\"info\",\"code\":\"c\","
     "\"source\":\"agent\"}]}",
     0, "events[0].text", "missing"},
    {"{\"v\":1,\"agent\":{\"id\":\"a\"},\"seq\":1,\"sent_ms\":1,\"sent_ms\":2}", 0, "",
     "duplicate"},
    /* exactly-once additions */
    {HEAD "\"first_seq\":0}", 0, "first_seq", "must be >= 1"},
    {HEAD "\"first_seq\":-3}", 0, "first_seq", "must be >= 1"},
    {HEAD "\"first_seq\":2}", 0, "first_seq", "must be <= seq 1"},
    {"{\"v\":1,\"first_seq\":8,\"agent\":{\"id\":\"a\"},\"seq\":7,\"sent_ms\":1}", 0, "first_seq",
     "must be <= seq 7"},
    {HEAD "\"first_seq\":\"1\"}", 0, "first_seq", "expected an integer"},
    {HEAD "\"first_seq\":1.0}", 0, "first_seq", "expected an integer"},
    {HEAD "\"first_seq\":null}", 0, "first_seq", "got null"},
    {HEAD "\"gaps\":{}}", 0, "gaps", "expected an array"},
    {HEAD "\"gaps\":[1]}", 0, "gaps[0]", "expected an object"},
    {HEAD "\"gaps\":[{\"from_seq\":1,\"until\":2,\"reason\":\"corrupt\"}]}", 0, "gaps[0].until",
     "unknown key 'until'"},
    {HEAD "\"gaps\":[{\"from_seq\":1,\"to_seq\":2,\"reason\":\"corrupt\"},"
          "{\"to_seq\":2,\"reason\":\"corrupt\"}]}",
     0, "gaps[1].from_seq", "missing required key 'from_seq'"},
    {HEAD "\"gaps\":[{\"from_seq\":1,\"reason\":\"corrupt\"}]}", 0, "gaps[0].to_seq",
     "missing required key 'to_seq'"},
    {HEAD "\"gaps\":[{\"from_seq\":1,\"to_seq\":2}]}", 0, "gaps[0].reason",
     "missing required key 'reason'"},
    {HEAD "\"gaps\":[{\"from_seq\":0,\"to_seq\":2,\"reason\":\"corrupt\"}]}", 0, "gaps[0].from_seq",
     "must be >= 1"},
    {HEAD "\"gaps\":[{\"from_seq\":\"1\",\"to_seq\":2,\"reason\":\"corrupt\"}]}", 0,
     "gaps[0].from_seq", "expected an integer"},
    {HEAD "\"gaps\":[{\"from_seq\":5,\"to_seq\":4,\"reason\":\"corrupt\"}]}", 0, "gaps[0].to_seq",
     "must be >= from_seq 5"},
    {HEAD "\"gaps\":[{\"from_seq\":5,\"to_seq\":2.5,\"reason\":\"corrupt\"}]}", 0, "gaps[0].to_seq",
     "expected an integer"},
    {HEAD "\"gaps\":[{\"from_seq\":1,\"to_seq\":2,\"reason\":\"Spool Full\"}]}", 0,
     "gaps[0].reason", "must match [a-z_][a-z0-9_]*"},
    {HEAD "\"gaps\":[{\"from_seq\":1,\"to_seq\":2,\"reason\":\"\"}]}", 0, "gaps[0].reason",
     "must not be empty"},
    {HEAD "\"gaps\":[{\"from_seq\":1,\"to_seq\":2,\"reason\":7}]}", 0, "gaps[0].reason",
     "expected a string"},
    {HEAD "\"gaps\":[{\"from_seq\":1,\"to_seq\":2,\"reason\":\"%s\"}]}", 65, "gaps[0].reason",
     "longer than 64"},
    {HEAD "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"labels\":{\"a\":\"1\",\"a\":\"2\"},"
          "\"points\":[[1764082790000,1]]}]}",
     0, "", "duplicate object key"},
};

static void test_malformed_table(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *t = &bad_cases[i];
        char body[4096];
        if (t->longlen) {
            char lng[2048];
            memset(lng, 'x', t->longlen);
            lng[t->longlen] = '\0';
            snprintf(body, sizeof body, t->body, lng);
        } else {
            snprintf(body, sizeof body, "%s", t->body);
        }
        cm_batch b;
        cm_batch_init(&b);
        char err[256] = "unset", at[128] = "unset";
        int rc = cm_wire_decode(body, strlen(body), NULL, &b, err, sizeof err, at, sizeof at);
        cm_batch_free(&b);
        if (rc != -1) fail_msg("case %zu accepted: %s", i, body);
        if (strcmp(at, t->at) != 0)
            fail_msg("case %zu: at '%s', want '%s' (err: %s)", i, at, t->at, err);
        if (!strstr(err, t->err)) fail_msg("case %zu: error '%s' lacks '%s'", i, err, t->err);
    }
}

static void test_first_seq_and_gaps(void **st)
{
    (void)st;
    cm_batch b;
    cm_batch_init(&b);
    assert_int_equal(cm_batch_set_agent(&b, "a", NULL, NULL), 0);
    b.seq = 9;
    b.first_seq = 7;
    b.sent_ms = 1764082800123;
    assert_int_equal(cm_batch_add_gap(&b, 3, 6, "spool_full"), 0);
    char *json = cm_wire_encode(&b, NULL);
    assert_non_null(json);
    assert_string_equal(json, "{\"v\":1,\"agent\":{\"id\":\"a\"},\"seq\":9,\"first_seq\":7,"
                              "\"sent_ms\":1764082800123,\"gaps\":[{\"from_seq\":3,\"to_seq\":6,"
                              "\"reason\":\"spool_full\"}],\"devices\":[],\"series\":[],"
                              "\"events\":[]}");
    free(json);
    /* first_seq equal to seq, or 0, is not written; neither are empty gaps */
    const char *plain = "{\"v\":1,\"agent\":{\"id\":\"a\"},\"seq\":9,\"sent_ms\":1764082800123,"
                        "\"devices\":[],\"series\":[],\"events\":[]}";
    b.ngaps = 0;
    b.first_seq = 9;
    json = cm_wire_encode(&b, NULL);
    assert_string_equal(json, plain);
    free(json);
    b.first_seq = 0;
    json = cm_wire_encode(&b, NULL);
    assert_string_equal(json, plain);
    free(json);
    cm_batch_free(&b);

    /* decoding: absent first_seq stays 0 (= seq); present is kept; gaps in order */
    char err[256], at[128];
    cm_batch_init(&b);
    assert_int_equal(cm_wire_decode(plain, strlen(plain), NULL, &b, err, sizeof err, at, sizeof at),
                     0);
    assert_int_equal(b.first_seq, 0);
    assert_int_equal(b.ngaps, 0);
    cm_batch_free(&b);
    const char *body = HEAD "\"first_seq\":1,\"gaps\":[{\"reason\":\"corrupt\",\"to_seq\":1,"
                            "\"from_seq\":1},{\"from_seq\":2,\"to_seq\":9007199254740993,"
                            "\"reason\":\"_x\"}]}";
    cm_batch_init(&b);
    if (cm_wire_decode(body, strlen(body), NULL, &b, err, sizeof err, at, sizeof at) != 0)
        fail_msg("at %s: %s", at, err);
    assert_int_equal(b.first_seq, 1);
    assert_int_equal(b.ngaps, 2);
    assert_int_equal(b.gaps[0].from_seq, 1);
    assert_int_equal(b.gaps[0].to_seq, 1);
    assert_string_equal(b.gaps[0].reason, "corrupt");
    assert_true(b.gaps[1].to_seq == 9007199254740993ULL);
    cm_batch_free(&b);

    /* the limit on the number of gaps: 1000 pass, 1001 do not */
    size_t cap = 64 + 1001 * 48;
    char *big = malloc(cap);
    assert_non_null(big);
    for (int n = 1000; n <= 1001; n++) {
        size_t len = (size_t)snprintf(big, cap, "%s\"gaps\":[", HEAD);
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(big + len, cap - len,
                                    "%s{\"from_seq\":%d,\"to_seq\":%d,\"reason\":\"r\"}",
                                    i ? "," : "", i + 1, i + 1);
        len += (size_t)snprintf(big + len, cap - len, "]}");
        assert_true(len < cap);
        cm_batch_init(&b);
        int rc = cm_wire_decode(big, len, NULL, &b, err, sizeof err, at, sizeof at);
        if (n == 1000) {
            assert_int_equal(rc, 0);
            assert_int_equal(b.ngaps, 1000);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(at, "gaps");
            assert_non_null(strstr(err, "more than 1000 gaps"));
        }
        cm_batch_free(&b);
    }
    free(big);
}

static void test_valid_minimal(void **st)
{
    (void)st;
    /* arrays optional, labels optional, integer values, keys in any order */
    const char *body =
        "{\"sent_ms\":5,\"seq\":3,\"agent\":{\"site\":\"CN-1\",\"id\":\"a\"},\"v\":1,"
        "\"series\":[{\"points\":[[946684800000,-2],[4102444800000,2.5e3]],"
        "\"metric\":\"_x9\",\"device\":\"d\",\"labels\":{}}]}";
    cm_batch b;
    cm_batch_init(&b);
    char err[256], at[128];
    assert_int_equal(cm_wire_decode(body, strlen(body), NULL, &b, err, sizeof err, at, sizeof at),
                     0);
    assert_int_equal(b.seq, 3);
    assert_int_equal(b.sent_ms, 5);
    assert_string_equal(b.site, "CN-1");
    assert_null(b.agent_version);
    assert_int_equal(b.nseries, 1);
    assert_null(b.series[0].unit);
    assert_true(b.series[0].points[0].value == -2.0);
    assert_true(b.series[0].points[1].value == 2500.0);
    assert_int_equal(b.ndevices + b.nevents, 0);
    cm_batch_free(&b);
}

static void test_series_merge_on_decode(void **st)
{
    (void)st;
    const char *body =
        HEAD "\"series\":["
             "{\"device\":\"d\",\"metric\":\"m\",\"labels\":{\"a\":\"1\",\"b\":\"2\"},"
             "\"points\":[[1764082790000,1]]},"
             "{\"device\":\"d\",\"metric\":\"m\",\"labels\":{\"b\":\"2\",\"a\":\"1\"},"
             "\"points\":[[1764082791000,2],[1764082792000,3]]}]}";
    cm_batch b;
    cm_batch_init(&b);
    char err[256], at[128];
    assert_int_equal(cm_wire_decode(body, strlen(body), NULL, &b, err, sizeof err, at, sizeof at),
                     0);
    assert_int_equal(b.nseries, 1);
    assert_int_equal(b.series[0].npoints, 3);
    assert_int_equal(cm_batch_points(&b), 3);
    cm_batch_free(&b);
}

static int decode_expect(const char *body, const cm_wire_limits *lim, const char *want_at,
                         const char *want_err)
{
    cm_batch b;
    cm_batch_init(&b);
    char err[256] = "", at[256] = "";
    int rc = cm_wire_decode(body, strlen(body), lim, &b, err, sizeof err, at, sizeof at);
    cm_batch_free(&b);
    if (rc != -1) fail_msg("accepted: %.200s", body);
    if (strcmp(at, want_at)) fail_msg("at '%s', want '%s' (%s)", at, want_at, err);
    if (!strstr(err, want_err)) fail_msg("error '%s' lacks '%s'", err, want_err);
    return rc;
}

static void test_depth_limit(void **st)
{
    (void)st;
    /* default limit 8: an array as device id is the 4th level, its 5th nested array the 9th */
    decode_expect(HEAD "\"devices\":[{\"id\":[[[[[[\"x\"]]]]]]}]}", NULL,
                  "devices[0].id[0][0][0][0][0]", "nested deeper than 8 levels");
    decode_expect(HEAD "\"devices\":[{\"id\":[[[[[\"x\"]]]]]}]}", NULL, "devices[0].id",
                  "expected a string, got an array");
    /* a string ending in an escaped backslash ends there: the arrays after it count */
    decode_expect(HEAD "\"devices\":[{\"model\":\"a\\\\\",\"id\":[[[[[[\"x\"]]]]]]}]}", NULL,
                  "devices[0].id[0][0][0][0][0]", "nested deeper than 8 levels");
    /* brackets inside strings do not count */
    const char *ok = HEAD "\"devices\":[{\"id\":\"[[[[[[[[[[[[[[[[\\\"[[[[\"}]}";
    cm_batch b;
    cm_batch_init(&b);
    char err[256], at[128];
    assert_int_equal(cm_wire_decode(ok, strlen(ok), NULL, &b, err, sizeof err, at, sizeof at), 0);
    assert_string_equal(b.devices[0].id, "[[[[[[[[[[[[[[[[\"[[[[");
    cm_batch_free(&b);
    /* a tighter limit applies to the schema's own nesting: points are at depth 5 */
    cm_wire_limits lim = {.max_depth = 4};
    decode_expect(HEAD "\"series\":[" S_OK "]}", &lim, "series[0].points[0]",
                  "nested deeper than 4 levels");
    /* deeper than jansson itself goes: still a clean error with a position */
    size_t n = 5000;
    char *deep = malloc(2 * n + 1);
    assert_non_null(deep);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    decode_expect(deep, NULL, "", "nested deeper than 8 levels (line 1, column 9)");
    free(deep);
}

static void test_label_and_size_limits(void **st)
{
    (void)st;
    char body[4096];
    size_t off = (size_t)snprintf(
        body, sizeof body, HEAD "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"labels\":{");
    for (int i = 0; i < CM_MAX_LABELS + 1; i++)
        off += (size_t)snprintf(body + off, sizeof body - off, "%s\"l%d\":\"v\"", i ? "," : "", i);
    snprintf(body + off, sizeof body - off, "},\"points\":[[1764082790000,1]]}]}");
    decode_expect(body, NULL, "series[0].labels", "more than 16 labels");

    cm_wire_limits lim = {.max_series = 2, .max_points = 3};
    decode_expect(HEAD "\"series\":[" S_OK "," S_OK "," S_OK "]}", &lim, "series",
                  "more than 2 series");
    decode_expect(HEAD
                  "\"series\":[{\"device\":\"d\",\"metric\":\"m\",\"points\":[[1764082790000,1],"
                  "[1764082790001,1]]},{\"device\":\"d\",\"metric\":\"n\",\"points\":"
                  "[[1764082790000,1],[1764082790001,1]]}]}",
                  &lim, "series[1].points", "more than 3 points");
}

static void test_valid_names(void **st)
{
    (void)st;
    assert_true(cm_wire_valid_name("screen_luminance_cdm2"));
    assert_true(cm_wire_valid_name("_"));
    assert_false(cm_wire_valid_name(""));
    assert_false(cm_wire_valid_name("2fast"));
    assert_false(cm_wire_valid_name("Lamp"));
    assert_false(cm_wire_valid_name("a-b"));
    assert_false(cm_wire_valid_name("a.b"));
    assert_false(cm_wire_valid_name(NULL));
    char n[CM_MAX_NAME + 2];
    memset(n, 'a', CM_MAX_NAME);
    n[CM_MAX_NAME] = '\0';
    assert_true(cm_wire_valid_name(n));
    n[CM_MAX_NAME] = 'a';
    n[CM_MAX_NAME + 1] = '\0';
    assert_false(cm_wire_valid_name(n));
}

/* Runs after the others: with the arena hooks installed, decoding still works, uses the
 * caller's arena nowhere, restores it, and leaks nothing (ASan). */
static void test_decode_with_arena_hooks(void **st)
{
    (void)st;
    cm_arena_json_install();
    cm_batch a, b;
    fill_batch(&a);
    size_t len;
    char *json = cm_wire_encode(&a, &len);
    assert_non_null(json);
    cm_arena mine;
    cm_arena_init(&mine, 0);
    cm_arena_json_use(&mine);
    for (int round = 0; round < 3; round++) {
        cm_batch_init(&b);
        char err[256], at[128];
        assert_int_equal(cm_wire_decode(json, len, NULL, &b, err, sizeof err, at, sizeof at), 0);
        assert_batches_equal(&a, &b);
        cm_batch_free(&b);
        /* and an error path */
        cm_batch_init(&b);
        const char *bad = "{\"v\":1,\"x\":[1,2,{\"y\":\"z\"}]}";
        assert_int_equal(cm_wire_decode(bad, strlen(bad), NULL, &b, err, sizeof err, at, sizeof at),
                         -1);
        assert_string_equal(at, "x");
        cm_batch_free(&b);
    }
    assert_ptr_equal(cm_arena_json_current(), &mine);
    assert_int_equal(mine.used_total, 0); /* decode used its own scratch arena */
    cm_arena_json_use(NULL);
    cm_arena_free(&mine);
    free(json);
    cm_batch_free(&a);
}

typedef struct thread_job {
    const char *json;
    size_t len;
    const cm_batch *want;
    int ok;
} thread_job;

static void *decode_thread(void *arg)
{
    thread_job *j = arg;
    j->ok = 1;
    for (int i = 0; i < 20; i++) {
        cm_batch b;
        cm_batch_init(&b);
        char err[256], at[128];
        if (cm_wire_decode(j->json, j->len, NULL, &b, err, sizeof err, at, sizeof at) != 0 ||
            b.nseries != j->want->nseries || cm_batch_points(&b) != cm_batch_points(j->want))
            j->ok = 0;
        cm_batch_free(&b);
    }
    return NULL; /* the thread's scratch arena is freed as it exits (ASan: no leak) */
}

/* Decoders on several threads at once each use their own scratch arena. */
static void test_decode_threads(void **st)
{
    (void)st;
    cm_arena_json_install();
    cm_batch a;
    fill_batch(&a);
    size_t len;
    char *json = cm_wire_encode(&a, &len);
    assert_non_null(json);
    pthread_t t[3];
    thread_job jobs[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (thread_job){json, len, &a, 0};
        assert_int_equal(pthread_create(&t[i], NULL, decode_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_true(jobs[i].ok);
    }
    free(json);
    cm_batch_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_encode_exact),
        cmocka_unit_test(test_numbers_exact),
        cmocka_unit_test(test_nan_impossible), cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_valid_minimal),  cmocka_unit_test(test_series_merge_on_decode),
        cmocka_unit_test(test_depth_limit),    cmocka_unit_test(test_label_and_size_limits),
        cmocka_unit_test(test_valid_names),    cmocka_unit_test(test_decode_with_arena_hooks),
        cmocka_unit_test(test_decode_threads), cmocka_unit_test(test_first_seq_and_gaps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

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
    static const double vs[] = {0.05,       -0.5,    47.5,      0.314,     123.456789,
                                1e-5,       -1e-7,   1e300,     0.1 + 0.2, 85.3,
                                99999999.5, 1.0 / 3, -0.000001, 4.999999,  0.3507};
    cm_batch b;
    cm_batch_init(&b);
    assert_int_equal(cm_batch_set_agent(&b, "a", NULL, NULL), 0);
    b.seq = 1;
    b.sent_ms = 1764082800123;
    size_t n = sizeof vs / sizeof vs[0];
    for (size_t i = 0; i < n; i++)
        assert_int_equal(
            cm_batch_add_point(&b, "d", "m", NULL, NULL, 0, 1764082790000 + (int64_t)i, vs[i]), 0);
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
    {"{\"v\":3,\"agent\":{\"id\":\"a\"},\"seq\":1,\"sent_ms\":1}", 0, "v", "unsupported version 3"},
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

/* ---- summary sections (version 2) ---- */

#define HEAD2                                                                                      \
    "{\"v\":2,\"agent\":{\"id\":\"a1\",\"site\":\"S1\"},\"seq\":1,\"sent_ms\":1764082800123,"
#define H0 1764079200000LL /* 2025-11-25T14:00:00Z, on the hour */

static void assert_labels_equal(const cm_label *a, size_t na, const cm_label *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t j = 0; j < na; j++) {
        assert_string_equal(a[j].key, b[j].key);
        assert_string_equal(a[j].value, b[j].value);
    }
}

static void assert_double_same(double a, double b)
{
    if (isnan(a) && isnan(b)) return;
    if (a != b) fail_msg("%.17g != %.17g", a, b);
}

static void assert_summaries_equal(const cm_batch *a, const cm_batch *b)
{
    assert_int_equal(a->nrollups, b->nrollups);
    for (size_t i = 0; i < a->nrollups; i++) {
        const cm_rollup *x = &a->rollups[i], *y = &b->rollups[i];
        assert_string_equal(x->device, y->device);
        assert_string_equal(x->metric, y->metric);
        streq_or_null(x->unit, y->unit);
        assert_labels_equal(x->labels, x->nlabels, y->labels, y->nlabels);
        assert_int_equal(x->nbuckets, y->nbuckets);
        for (size_t j = 0; j < x->nbuckets; j++) {
            assert_int_equal(x->buckets[j].bucket_ms, y->buckets[j].bucket_ms);
            assert_int_equal(x->buckets[j].n, y->buckets[j].n);
            assert_double_same(x->buckets[j].sum, y->buckets[j].sum);
            assert_double_same(x->buckets[j].min, y->buckets[j].min);
            assert_double_same(x->buckets[j].max, y->buckets[j].max);
        }
        assert_int_equal(x->has_latest, y->has_latest);
        if (x->has_latest) {
            assert_int_equal(x->latest.ts_ms, y->latest.ts_ms);
            assert_double_same(x->latest.value, y->latest.value);
        }
    }
    assert_int_equal(a->nalerts, b->nalerts);
    for (size_t i = 0; i < a->nalerts; i++) {
        const cm_alert_entry *x = &a->alerts[i], *y = &b->alerts[i];
        assert_string_equal(x->rule, y->rule);
        streq_or_null(x->screen, y->screen);
        assert_string_equal(x->device, y->device);
        assert_labels_equal(x->labels, x->nlabels, y->labels, y->nlabels);
        assert_string_equal(x->severity, y->severity);
        assert_string_equal(x->state, y->state);
        assert_double_same(x->value, y->value);
        assert_double_same(x->threshold, y->threshold);
        streq_or_null(x->text, y->text);
        assert_int_equal(x->started_ms, y->started_ms);
        assert_int_equal(x->firing_ms, y->firing_ms);
        assert_int_equal(x->resolved_ms, y->resolved_ms);
        assert_int_equal(x->updated_ms, y->updated_ms);
    }
    assert_int_equal(a->ncompliance, b->ncompliance);
    for (size_t i = 0; i < a->ncompliance; i++) {
        const cm_compliance_entry *x = &a->compliance[i], *y = &b->compliance[i];
        assert_string_equal(x->screen, y->screen);
        assert_string_equal(x->day, y->day);
        assert_string_equal(x->quantity, y->quantity);
        assert_int_equal(x->in_ms, y->in_ms);
        assert_int_equal(x->measured_ms, y->measured_ms);
    }
}

/* A summary batch: two series' roll-ups (one with latest only), two alerts, two figures. */
static void fill_summary(cm_batch *b)
{
    cm_batch_init(b);
    assert_int_equal(cm_batch_set_agent(b, "chain-1", "0.1.0", "S1"), 0);
    b->seq = 7;
    b->sent_ms = 1764082800123;
    cm_device_info d = {.id = "hall1/projector", .screen = "hall1", .kind = "projector"};
    assert_int_equal(cm_batch_add_device(b, &d), 0);
    cm_label l[] = {{"sensor", "Intake"}, {"a", "x \"y\" ✓"}};
    cm_bucket bk[] = {{H0, 360, 9000.5, 24.5, 37.0}, {H0 + 3600000, 1, 1.0 / 3.0, -1e300, 1e300}};
    cm_rollup r1 = {.device = "hall1/projector",
                    .metric = "temperature_celsius",
                    .unit = "C",
                    .labels = l,
                    .nlabels = 2,
                    .buckets = bk,
                    .nbuckets = 2,
                    .has_latest = 1,
                    .latest = {H0 + 3599000, 25.5}};
    cm_rollup r2 = {.device = "hall1/projector",
                    .metric = "light_source_hours",
                    .has_latest = 1,
                    .latest = {H0, 1000.01}};
    assert_int_equal(cm_batch_add_rollup(b, &r1), 0);
    assert_int_equal(cm_batch_add_rollup(b, &r2), 0);
    cm_alert_entry a1 = {.rule = "projector_temperature_ambient",
                         .screen = "hall1",
                         .device = "hall1/projector",
                         .labels = l,
                         .nlabels = 1,
                         .severity = "warning",
                         .state = "resolved",
                         .value = 25.0,
                         .threshold = 35.0,
                         .text = "resolved: \"intake\"\n back to 25 °C",
                         .started_ms = H0 + 60000,
                         .firing_ms = H0 + 120000,
                         .resolved_ms = H0 + 900000,
                         .updated_ms = H0 + 900000};
    cm_alert_entry a2 = {.rule = "device_silent",
                         .device = "hall2/cp950",
                         .severity = "critical",
                         .state = "pending",
                         .value = NAN,
                         .threshold = NAN,
                         .started_ms = H0,
                         .updated_ms = H0};
    assert_int_equal(cm_batch_add_alert(b, &a1), 0);
    assert_int_equal(cm_batch_add_alert(b, &a2), 0);
    cm_compliance_entry c1 = {"hall1", "2025-11-25", "luminance", 3600000, 7200000};
    cm_compliance_entry c2 = {"hall2", "2024-02-29", "spl", 0, 0};
    assert_int_equal(cm_batch_add_compliance(b, &c1), 0);
    assert_int_equal(cm_batch_add_compliance(b, &c2), 0);
}

static void test_summary_round_trip(void **st)
{
    (void)st;
    cm_batch a, b;
    fill_summary(&a);
    assert_true(cm_batch_has_summary(&a));
    assert_false(cm_batch_empty(&a));
    assert_int_equal(a.v, CM_WIRE_VERSION); /* the encoder says 2 because of the sections */
    size_t len;
    char *json = cm_wire_encode(&a, &len);
    assert_non_null(json);
    assert_non_null(strstr(json, "{\"v\":2,"));
    cm_batch_init(&b);
    char err[256], at[128];
    if (cm_wire_decode(json, len, NULL, &b, err, sizeof err, at, sizeof at) != 0)
        fail_msg("%s at %s", err, at);
    assert_int_equal(b.v, CM_WIRE_VERSION_SUMMARY);
    assert_batches_equal(&(cm_batch){.v = 2,
                                     .agent_id = a.agent_id,
                                     .agent_version = a.agent_version,
                                     .site = a.site,
                                     .seq = a.seq,
                                     .sent_ms = a.sent_ms,
                                     .devices = a.devices,
                                     .ndevices = a.ndevices},
                         &b);
    assert_summaries_equal(&a, &b);
    /* labels come out sorted; a null value and threshold stay null */
    assert_string_equal(b.rollups[0].labels[0].key, "a");
    assert_true(isnan(b.alerts[1].value));
    assert_null(b.alerts[1].screen);
    free(json);
    cm_batch_free(&a);
    cm_batch_free(&b);
}

static void test_summary_encode_exact(void **st)
{
    (void)st;
    cm_batch b;
    cm_batch_init(&b);
    assert_int_equal(cm_batch_set_agent(&b, "c", NULL, "S1"), 0);
    b.seq = 3;
    b.sent_ms = 1764082800123;
    cm_bucket bk = {H0, 2, 49.5, 24.5, 25};
    cm_rollup r = {.device = "d", .metric = "m", .buckets = &bk, .nbuckets = 1};
    assert_int_equal(cm_batch_add_rollup(&b, &r), 0);
    cm_alert_entry a = {.rule = "r",
                        .device = "d",
                        .severity = "info",
                        .state = "firing",
                        .value = 1.5,
                        .threshold = NAN,
                        .started_ms = H0,
                        .firing_ms = H0,
                        .updated_ms = H0};
    assert_int_equal(cm_batch_add_alert(&b, &a), 0);
    cm_compliance_entry c = {"hall1", "2025-11-25", "white", 0, 10};
    assert_int_equal(cm_batch_add_compliance(&b, &c), 0);
    char *json = cm_wire_encode(&b, NULL);
    assert_non_null(json);
    assert_string_equal(
        json,
        "{\"v\":2,\"agent\":{\"id\":\"c\",\"site\":\"S1\"},\"seq\":3,\"sent_ms\":1764082800123,"
        "\"devices\":[],\"series\":[],\"events\":[],"
        "\"rollups_1h\":[{\"device\":\"d\",\"metric\":\"m\",\"labels\":{},"
        "\"buckets\":[[1764079200000,2,49.5,24.5,25]]}],"
        "\"alerts\":[{\"rule\":\"r\",\"device\":\"d\",\"labels\":{},\"severity\":\"info\","
        "\"state\":\"firing\",\"value\":1.5,\"threshold\":null,\"started_ms\":1764079200000,"
        "\"firing_ms\":1764079200000,\"resolved_ms\":null,\"updated_ms\":1764079200000}],"
        "\"compliance\":[{\"screen\":\"hall1\",\"day\":\"2025-11-25\",\"quantity\":\"white\","
        "\"in_ms\":0,\"measured_ms\":10}]}");
    free(json);
    cm_batch_free(&b);
}

#define RU_OK "{\"device\":\"d\",\"metric\":\"m\",\"buckets\":[[1764079200000,1,1,1,1]]}"
#define AL_OK                                                                                      \
    "{\"rule\":\"r\",\"device\":\"d\",\"severity\":\"warning\",\"state\":\"pending\","             \
    "\"started_ms\":1764079200000,\"updated_ms\":1764079200000}"
#define CO_OK                                                                                      \
    "{\"screen\":\"hall1\",\"day\":\"2025-11-25\",\"quantity\":\"spl\",\"in_ms\":1,"               \
    "\"measured_ms\":2}"

static const bad_case summary_bad_cases[] = {
    /* a version 1 batch has no summary sections; a version 2 one no samples or events */
    {HEAD "\"rollups_1h\":[" RU_OK "]}", 0, "rollups_1h", "needs \"v\": 2"},
    {HEAD "\"compliance\":[]}", 0, "compliance", "needs \"v\": 2"},
    {HEAD2 "\"series\":[" S_OK "]}", 0, "series", "carries no samples"},
    {HEAD2 "\"events\":[{\"device\":\"d\",\"ts_ms\":1764082790000,\"severity\":\"info\","
           "\"code\":\"x\",\"source\":\"s\"}]}",
     0, "events", "carries no samples and no events"},
    {HEAD2 "\"alerts\":{}}", 0, "alerts", "expected an array"},
    {HEAD2 "\"rollup_1h\":[]}", 0, "rollup_1h", "unknown key"},
    /* rollups_1h */
    {HEAD2 "\"rollups_1h\":[{\"device\":\"d\",\"metric\":\"m\",\"buckets\":[],\"x\":1}]}", 0,
     "rollups_1h[0].x", "unknown key 'x'"},
    {HEAD2 "\"rollups_1h\":[{\"device\":\"d\",\"metric\":\"M\",\"buckets\":[]}]}", 0,
     "rollups_1h[0].metric", "must match"},
    {HEAD2 "\"rollups_1h\":[{\"metric\":\"m\",\"buckets\":[]}]}", 0, "rollups_1h[0].device",
     "missing required key"},
    {HEAD2 "\"rollups_1h\":[{\"device\":\"d\",\"metric\":\"m\"}]}", 0, "rollups_1h[0].buckets",
     "missing required key"},
    {HEAD2 "\"rollups_1h\":[{\"device\":\"d\",\"metric\":\"m\",\"buckets\":[]}]}", 0,
     "rollups_1h[0].buckets", "must not be empty without latest"},
    {HEAD2 "\"rollups_1h\":[" RU_OK ",{\"device\":\"d\",\"metric\":\"m\",\"buckets\":"
           "[[1764079200001,1,1,1,1]]}]}",
     0, "rollups_1h[1].buckets[0][0]", "on the hour"},
    {HEAD2 "\"rollups_1h\":[{\"device\":\"d\",\"metric\":\"m\",\"buckets\":"
           "[[1764082800000,1,1,1,1],[1764079200000,1,1,1,1]]}]}",
     0, "rollups_1h[0].buckets[1][0]", "ascending"},
    {HEAD2 "\"rollups_1h\":[{\"device\":\"d\",\"metric\":\"m\",\"buckets\":"
           "[[1764079200000,0,1,1,1]]}]}",
     0, "rollups_1h[0].buckets[0][1]", ">= 1"},
    {HEAD2 "\"rollups_1h\":[{\"device\":\"d\",\"metric\":\"m\",\"buckets\":"
           "[[1764079200000,2,3,2,1]]}]}",
     0, "rollups_1h[0].buckets[0][3]", "above max"},
    {HEAD2 "\"rollups_1h\":[{\"device\":\"d\",\"metric\":\"m\",\"buckets\":"
           "[[1764079200000,2,\"3\",1,2]]}]}",
     0, "rollups_1h[0].buckets[0][2]", "expected a number"},
    {HEAD2 "\"rollups_1h\":[{\"device\":\"d\",\"metric\":\"m\",\"buckets\":"
           "[[1764079200000,2,3,1]]}]}",
     0, "rollups_1h[0].buckets[0]", "got 4 elements"},
    {HEAD2 "\"rollups_1h\":[{\"device\":\"d\",\"metric\":\"m\",\"buckets\":[],"
           "\"latest\":[5,1]}]}",
     0, "rollups_1h[0].latest[0]", "outside 2000-01-01"},
    {HEAD2 "\"rollups_1h\":[{\"device\":\"d\",\"metric\":\"m\",\"buckets\":[],"
           "\"latest\":[1764079200000]}]}",
     0, "rollups_1h[0].latest", "expected [ts_ms, value]"},
    {HEAD2 "\"rollups_1h\":[{\"device\":\"d\",\"metric\":\"m\",\"labels\":{\"A\":\"x\"},"
           "\"buckets\":[[1764079200000,1,1,1,1]]}]}",
     0, "rollups_1h[0].labels.A", "label name"},
    /* alerts */
    {HEAD2 "\"alerts\":[" AL_OK ",{\"rule\":\"r\"}]}", 0, "alerts[1].device",
     "missing required key"},
    {HEAD2 "\"alerts\":[{\"rule\":\"r\",\"device\":\"d\",\"severity\":\"warning\","
           "\"state\":\"open\",\"started_ms\":1764079200000,\"updated_ms\":1764079200000}]}",
     0, "alerts[0].state", "pending, firing or resolved"},
    {HEAD2 "\"alerts\":[{\"rule\":\"r\",\"device\":\"d\",\"severity\":\"major\","
           "\"state\":\"firing\",\"started_ms\":1764079200000,\"updated_ms\":1764079200000}]}",
     0, "alerts[0].severity", "info, warning or critical"},
    {HEAD2 "\"alerts\":[{\"rule\":\"r\",\"device\":\"d\",\"severity\":\"warning\","
           "\"state\":\"firing\",\"started_ms\":1764079200000,\"updated_ms\":1764079200000}]}",
     0, "alerts[0].firing_ms", "required when the state is firing"},
    {HEAD2 "\"alerts\":[{\"rule\":\"r\",\"device\":\"d\",\"severity\":\"warning\","
           "\"state\":\"resolved\",\"started_ms\":1764079200000,\"firing_ms\":null,"
           "\"updated_ms\":1764079200000}]}",
     0, "alerts[0].resolved_ms", "required when the state is resolved"},
    {HEAD2 "\"alerts\":[{\"rule\":\"r\",\"device\":\"d\",\"severity\":\"warning\","
           "\"state\":\"pending\",\"value\":\"high\",\"started_ms\":1764079200000,"
           "\"updated_ms\":1764079200000}]}",
     0, "alerts[0].value", "expected a number"},
    {HEAD2 "\"alerts\":[{\"rule\":\"r\",\"device\":\"d\",\"severity\":\"warning\","
           "\"state\":\"pending\",\"started_ms\":1764079200000}]}",
     0, "alerts[0].updated_ms", "missing required key"},
    {HEAD2 "\"alerts\":[{\"rule\":\"r\",\"device\":\"d\",\"severity\":\"warning\","
           "\"state\":\"pending\",\"started_ms\":1764079200000,\"updated_ms\":1764079200000,"
           "\"site\":\"S2\"}]}",
     0, "alerts[0].site", "unknown key 'site'"},
    {HEAD2 "\"alerts\":[{\"rule\":\"r\",\"device\":\"d\",\"severity\":\"warning\","
           "\"state\":\"pending\",\"text\":\"%s\",\"started_ms\":1764079200000,"
           "\"updated_ms\":1764079200000}]}",
     1025, "alerts[0].text", "longer than 1024"},
    /* compliance */
    {HEAD2 "\"compliance\":[" CO_OK ",{\"screen\":\"hall1\",\"day\":\"2025-02-29\","
           "\"quantity\":\"spl\",\"in_ms\":1,\"measured_ms\":2}]}",
     0, "compliance[1].day", "YYYY-MM-DD"},
    {HEAD2 "\"compliance\":[{\"screen\":\"hall1\",\"day\":\"2025-11-25\","
           "\"quantity\":\"colour\",\"in_ms\":1,\"measured_ms\":2}]}",
     0, "compliance[0].quantity", "luminance, white or spl"},
    {HEAD2 "\"compliance\":[{\"screen\":\"hall1\",\"day\":\"2025-11-25\","
           "\"quantity\":\"spl\",\"in_ms\":3,\"measured_ms\":2}]}",
     0, "compliance[0].in_ms", "must not exceed measured_ms"},
    {HEAD2 "\"compliance\":[{\"screen\":\"hall1\",\"day\":\"2025-11-25\","
           "\"quantity\":\"spl\",\"in_ms\":-1,\"measured_ms\":2}]}",
     0, "compliance[0].in_ms", ">= 0"},
    {HEAD2 "\"compliance\":[{\"screen\":\"\",\"day\":\"2025-11-25\","
           "\"quantity\":\"spl\",\"in_ms\":1,\"measured_ms\":2}]}",
     0, "compliance[0].screen", "must not be empty"},
};

static void test_summary_malformed(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof summary_bad_cases / sizeof summary_bad_cases[0]; i++) {
        const bad_case *t = &summary_bad_cases[i];
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

/* Valid summary bodies, and the limits: buckets count against max_points, roll-up entries
 * against max_series; a version 2 batch without sections decodes. */
static void test_summary_valid_and_limits(void **st)
{
    (void)st;
    const char *ok[] = {
        HEAD2 "\"devices\":[],\"series\":[],\"events\":[],\"rollups_1h\":[" RU_OK "," RU_OK
              "],\"alerts\":[" AL_OK "],\"compliance\":[" CO_OK "]}",
        HEAD2 "\"gaps\":[{\"from_seq\":1,\"to_seq\":1,\"reason\":\"rejected\"}]}",
        HEAD2 "\"alerts\":[{\"rule\":\"r\",\"device\":\"d\",\"severity\":\"warning\","
              "\"state\":\"resolved\",\"value\":null,\"threshold\":2,\"screen\":\"\","
              "\"started_ms\":1764079200000,\"firing_ms\":null,\"resolved_ms\":1764079300000,"
              "\"updated_ms\":1764079300000}]}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cm_batch b;
        cm_batch_init(&b);
        char err[256], at[128];
        if (cm_wire_decode(ok[i], strlen(ok[i]), NULL, &b, err, sizeof err, at, sizeof at) != 0)
            fail_msg("case %zu: %s at %s", i, err, at);
        assert_int_equal(b.v, 2);
        if (i == 0) {
            assert_int_equal(b.nrollups, 2); /* a series repeated: kept as two entries */
            assert_int_equal(b.nalerts, 1);
            assert_int_equal(b.ncompliance, 1);
            assert_int_equal(b.nbuckets_total, 2);
        }
        if (i == 2) {
            assert_string_equal(b.alerts[0].screen, "");
            assert_int_equal(b.alerts[0].firing_ms, 0);
        }
        cm_batch_free(&b);
    }
    cm_wire_limits lim = {.max_points = 2, .max_series = 2};
    const char *three_buckets =
        HEAD2 "\"rollups_1h\":[" RU_OK ",{\"device\":\"d\",\"metric\":\"m\",\"buckets\":"
              "[[1764079200000,1,1,1,1],[1764082800000,1,1,1,1]]}]}";
    const char *three_entries = HEAD2 "\"rollups_1h\":[" RU_OK "," RU_OK "," RU_OK "]}";
    cm_batch b;
    char err[256], at[128];
    cm_batch_init(&b);
    assert_int_equal(cm_wire_decode(three_buckets, strlen(three_buckets), &lim, &b, err, sizeof err,
                                    at, sizeof at),
                     -1);
    assert_string_equal(at, "rollups_1h[1].buckets");
    cm_batch_free(&b);
    cm_batch_init(&b);
    assert_int_equal(cm_wire_decode(three_entries, strlen(three_entries), &lim, &b, err, sizeof err,
                                    at, sizeof at),
                     -1);
    assert_string_equal(at, "rollups_1h");
    assert_non_null(strstr(err, "more than 2 entries"));
    cm_batch_free(&b);
}

/* The uploader's merge of spool records: summary sections appended, the version raised. */
static void test_summary_merge(void **st)
{
    (void)st;
    cm_batch a, out;
    fill_summary(&a);
    cm_batch_init(&out);
    assert_int_equal(cm_batch_set_agent(&out, "chain-1", NULL, "S1"), 0);
    assert_int_equal(cm_batch_merge_summary(&out, &a), 0);
    assert_int_equal(cm_batch_merge_summary(&out, &a), 0);
    assert_int_equal(out.nrollups, 4);
    assert_int_equal(out.nalerts, 4);
    assert_int_equal(out.ncompliance, 4);
    assert_int_equal(out.nbuckets_total, 2 * a.nbuckets_total);
    assert_string_equal(out.alerts[2].text, a.alerts[0].text);
    /* a decoded version 2 record without sections still makes the merged request a summary */
    cm_batch v2, m;
    cm_batch_init(&v2);
    v2.v = CM_WIRE_VERSION_SUMMARY;
    cm_batch_init(&m);
    assert_int_equal(cm_batch_merge_summary(&m, &v2), 0);
    assert_int_equal(m.v, CM_WIRE_VERSION_SUMMARY);
    /* the adders refuse what the decoder refuses */
    cm_bucket bad = {H0 + 1, 1, 1, 1, 1};
    cm_rollup r = {.device = "d", .metric = "m", .buckets = &bad, .nbuckets = 1};
    assert_int_equal(cm_batch_add_rollup(&m, &r), -1);
    r.nbuckets = 0;
    assert_int_equal(cm_batch_add_rollup(&m, &r), -1); /* neither buckets nor latest */
    cm_alert_entry al = {.rule = "r",
                         .device = "d",
                         .severity = "warning",
                         .state = "firing",
                         .started_ms = H0,
                         .updated_ms = H0};
    assert_int_equal(cm_batch_add_alert(&m, &al), -1); /* firing without firing_ms */
    cm_compliance_entry c = {"hall1", "2023-02-29", "spl", 0, 0};
    assert_int_equal(cm_batch_add_compliance(&m, &c), -1);
    assert_true(cm_batch_valid_day("2000-02-29"));
    assert_false(cm_batch_valid_day("1900-02-28"));
    assert_false(cm_batch_valid_day("2025-13-01"));
    assert_int_equal(m.nrollups + m.nalerts + m.ncompliance, 0);
    cm_batch_free(&m);
    cm_batch_free(&v2);
    cm_batch_free(&out);
    cm_batch_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_encode_exact),
        cmocka_unit_test(test_numbers_exact),
        cmocka_unit_test(test_nan_impossible),
        cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_valid_minimal),
        cmocka_unit_test(test_series_merge_on_decode),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_label_and_size_limits),
        cmocka_unit_test(test_valid_names),
        cmocka_unit_test(test_decode_with_arena_hooks),
        cmocka_unit_test(test_decode_threads),
        cmocka_unit_test(test_first_seq_and_gaps),
        cmocka_unit_test(test_summary_round_trip),
        cmocka_unit_test(test_summary_encode_exact),
        cmocka_unit_test(test_summary_malformed),
        cmocka_unit_test(test_summary_valid_and_limits),
        cmocka_unit_test(test_summary_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

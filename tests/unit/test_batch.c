/* test_batch.c — the arena allocator, its jansson hooks, and the batch model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "batch.h"

/* ---- arena ---- */

static void test_arena_alloc(void **st)
{
    (void)st;
    cm_arena a;
    cm_arena_init(&a, 1024);
    char *prev = NULL;
    for (int i = 1; i < 2000; i++) {
        char *p = cm_arena_alloc(&a, (size_t)(i % 37) + 1);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xAB, (size_t)(i % 37) + 1); /* ASan: the whole range is ours */
        assert_ptr_not_equal(p, prev);
        prev = p;
    }
    /* a request larger than a block gets a block of its own */
    char *big = cm_arena_alloc(&a, 100000);
    assert_non_null(big);
    memset(big, 1, 100000);
    char *s = cm_arena_strdup(&a, "hall3/projector");
    assert_string_equal(s, "hall3/projector");
    char *n = cm_arena_strndup(&a, "lamp_hours", 4);
    assert_string_equal(n, "lamp");
    assert_true(a.used_total >= 100000);
    cm_arena_free(&a);
    assert_null(a.head);
    assert_int_equal(a.used_total, 0);
    /* usable again after free */
    assert_string_equal(cm_arena_strdup(&a, "again"), "again");
    cm_arena_free(&a);
}

static void test_arena_json(void **st)
{
    (void)st;
    cm_arena_json_install();
    cm_arena_json_install(); /* idempotent */
    assert_true(cm_arena_json_installed());
    assert_null(cm_arena_json_current());

    /* heap value made before an arena is in use: freed by free() while the arena is in use */
    json_t *heap = json_pack("{s:i}", "x", 1);
    assert_non_null(heap);

    cm_arena a;
    cm_arena_init(&a, 0);
    cm_arena_json_use(&a);
    assert_ptr_equal(cm_arena_json_current(), &a);
    size_t before = a.used_total;
    json_error_t je;
    json_t *root = json_loads("{\"series\":[{\"metric\":\"lamp_hours\",\"points\":[[1,2.5]]}],"
                              "\"k\":\"a longer string value to allocate\"}",
                              0, &je);
    assert_non_null(root);
    assert_true(a.used_total > before); /* the tree lives in the arena */
    assert_string_equal(json_string_value(json_object_get(root, "k")),
                        "a longer string value to allocate");
    json_decref(heap); /* heap memory: really freed (ASan would see a leak otherwise) */
    json_decref(root); /* arena memory: a no-op */
    cm_arena_json_use(NULL);
    cm_arena_free(&a);

    /* without an arena in use, jansson output is plain heap memory that free() accepts */
    json_t *o = json_pack("{s:s}", "a", "b");
    char *txt = json_dumps(o, JSON_COMPACT);
    assert_string_equal(txt, "{\"a\":\"b\"}");
    free(txt);
    json_decref(o);
}

/* ---- batch ---- */

static void test_batch_merge_label_order(void **st)
{
    (void)st;
    cm_batch b;
    cm_batch_init(&b);
    assert_int_equal(b.v, 1);
    assert_true(cm_batch_empty(&b));
    cm_label l1[] = {{"sensor", "dmd"}, {"channel", "L"}, {"zone", "2"}};
    cm_label l2[] = {{"zone", "2"}, {"sensor", "dmd"}, {"channel", "L"}};
    cm_label l3[] = {{"channel", "L"}, {"zone", "2"}, {"sensor", "dmd"}};
    assert_int_equal(cm_batch_add_point(&b, "hall3/projector", "temperature_celsius", "C", l1, 3,
                                        1764082790000, 41.5),
                     0);
    assert_int_equal(cm_batch_add_point(&b, "hall3/projector", "temperature_celsius", "C", l2, 3,
                                        1764082791000, 42.0),
                     0);
    assert_int_equal(cm_batch_add_point(&b, "hall3/projector", "temperature_celsius", "C", l3, 3,
                                        1764082792000, 42.5),
                     0);
    assert_int_equal(b.nseries, 1);
    assert_false(cm_batch_empty(&b));
    cm_series *s = &b.series[0];
    assert_int_equal(s->npoints, 3);
    assert_int_equal(s->nlabels, 3);
    assert_string_equal(s->labels[0].key, "channel"); /* sorted by key */
    assert_string_equal(s->labels[1].key, "sensor");
    assert_string_equal(s->labels[2].key, "zone");
    assert_string_equal(s->unit, "C");
    assert_true(s->points[2].value == 42.5);
    assert_int_equal(s->points[1].ts_ms, 1764082791000);

    /* a different label value, device or metric is another series */
    cm_label l4[] = {{"sensor", "lamp"}, {"channel", "L"}, {"zone", "2"}};
    assert_int_equal(cm_batch_add_point(&b, "hall3/projector", "temperature_celsius", NULL, l4, 3,
                                        1764082790000, 1),
                     0);
    assert_int_equal(cm_batch_add_point(&b, "hall4/projector", "temperature_celsius", NULL, l1, 3,
                                        1764082790000, 1),
                     0);
    assert_int_equal(
        cm_batch_add_point(&b, "hall3/projector", "lamp_hours", NULL, NULL, 0, 1764082790000, 1),
        0);
    assert_int_equal(b.nseries, 4);
    assert_int_equal(cm_batch_points(&b), 6);
    cm_batch_free(&b);
    cm_batch_free(&b); /* free leaves an empty batch: freeing again is harmless */
}

static void test_batch_many_series(void **st)
{
    (void)st;
    cm_batch b;
    cm_batch_init(&b);
    char dev[32], val[16];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 5000; i++) {
            snprintf(dev, sizeof dev, "hall%d/led", i % 50);
            snprintf(val, sizeof val, "%d", i / 50);
            cm_label l[] = {{"module", val}};
            assert_int_equal(
                cm_batch_add_point(&b, dev, "fan_speed_rpm", "rpm", l, 1, 1764082790000 + round, i),
                0);
        }
    }
    assert_int_equal(b.nseries, 5000);
    assert_int_equal(cm_batch_points(&b), 15000);
    for (size_t i = 0; i < b.nseries; i++) {
        assert_int_equal(b.series[i].npoints, 3);
        assert_true(b.series[i].points[0].value == b.series[i].points[2].value);
    }
    cm_batch_free(&b);
}

static void test_batch_rejects(void **st)
{
    (void)st;
    cm_batch b;
    cm_batch_init(&b);
    cm_label many[CM_MAX_LABELS + 1];
    char keys[CM_MAX_LABELS + 1][16];
    for (int i = 0; i <= CM_MAX_LABELS; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        many[i].key = keys[i];
        many[i].value = "v";
    }
    assert_int_equal(cm_batch_add_point(&b, "d", "m", NULL, many, CM_MAX_LABELS, 1, 1), 0);
    assert_int_equal(cm_batch_add_point(&b, "d", "m", NULL, many, CM_MAX_LABELS + 1, 1, 1), -1);
    cm_label dup[] = {{"a", "1"}, {"a", "2"}};
    assert_int_equal(cm_batch_add_point(&b, "d", "m", NULL, dup, 2, 1, 1), -1);
    assert_int_equal(cm_batch_add_point(&b, "d", "m", NULL, NULL, 0, 1, NAN), -1);
    assert_int_equal(cm_batch_add_point(&b, "d", "m", NULL, NULL, 0, 1, INFINITY), -1);
    assert_int_equal(cm_batch_add_point(&b, "", "m", NULL, NULL, 0, 1, 1), -1);
    assert_int_equal(cm_batch_add_point(&b, NULL, "m", NULL, NULL, 0, 1, 1), -1);
    char longname[CM_MAX_NAME + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(cm_batch_add_point(&b, "d", longname, NULL, NULL, 0, 1, 1), -1);
    assert_int_equal(b.nseries, 1);
    assert_int_equal(cm_batch_points(&b), 1);

    cm_event e = {"d", 1764082790000, "fatal", "E1", "x", "agent"};
    assert_int_equal(cm_batch_add_event(&b, &e), -1);
    e.severity = "warning";
    assert_int_equal(cm_batch_add_event(&b, &e), 0);
    assert_int_equal(b.nevents, 1);
    assert_int_equal(cm_batch_set_agent(&b, "", NULL, NULL), -1);
    assert_int_equal(cm_batch_set_agent(&b, "agent-1", NULL, "CN-1101"), 0);
    assert_null(b.agent_version);
    assert_string_equal(b.site, "CN-1101");
    cm_batch_free(&b);
}

static void test_batch_devices_and_cuts(void **st)
{
    (void)st;
    cm_batch b;
    cm_batch_init(&b);
    cm_device_info d = {.id = "hall3/projector", .kind = "projector", .model = "DP4K-32B"};
    assert_int_equal(cm_batch_add_device(&b, &d), 0);
    cm_device_info d2 = {.id = "hall4/projector", .kind = "projector"};
    assert_int_equal(cm_batch_add_device(&b, &d2), 0);
    d.model = "DP4K-40L"; /* same id: replaced, not added */
    d.kind = NULL;
    assert_int_equal(cm_batch_add_device(&b, &d), 0);
    assert_int_equal(b.ndevices, 2);
    assert_string_equal(b.devices[0].model, "DP4K-40L");
    assert_null(b.devices[0].kind);

    /* a 300-byte firmware string of 2-byte characters is cut to <= 256 bytes, whole chars */
    char fw[301];
    for (int i = 0; i < 300; i += 2)
        memcpy(fw + i, "\xC3\xA9", 2);
    fw[300] = '\0';
    cm_device_info d3 = {.id = "hall5/projector", .firmware = fw};
    assert_int_equal(cm_batch_add_device(&b, &d3), 0);
    assert_int_equal(strlen(b.devices[2].firmware), 256);
    cm_device_info d4 = {.id = NULL};
    assert_int_equal(cm_batch_add_device(&b, &d4), -1);

    char text[CM_MAX_TEXT + 100];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    cm_event e = {"hall3/projector", 1764082790000, "critical", "LAMP_FAIL", text, "snmp-trap"};
    assert_int_equal(cm_batch_add_event(&b, &e), 0);
    assert_int_equal(strlen(b.events[0].text), CM_MAX_TEXT);
    cm_batch_free(&b);
    assert_true(cm_batch_empty(&b));
}

static void test_batch_gaps(void **st)
{
    (void)st;
    cm_batch b;
    cm_batch_init(&b);
    assert_int_equal(b.first_seq, 0);
    assert_int_equal(b.ngaps, 0);
    char reason[64];
    for (int i = 0; i < 20; i++) { /* grows past the first block, keeps order and copies */
        snprintf(reason, sizeof reason, "spool_full_%d", i);
        assert_int_equal(cm_batch_add_gap(&b, (uint64_t)i * 10 + 1, (uint64_t)i * 10 + 5, reason),
                         0);
    }
    memset(reason, 0, sizeof reason);
    assert_int_equal(b.ngaps, 20);
    assert_int_equal(b.gaps[0].from_seq, 1);
    assert_int_equal(b.gaps[19].to_seq, 195);
    assert_string_equal(b.gaps[19].reason, "spool_full_19");
    assert_string_equal(b.gaps[0].reason, "spool_full_0");
    assert_int_equal(cm_batch_add_gap(&b, 7, 7, "corrupt"), 0); /* one record */

    assert_int_equal(cm_batch_add_gap(&b, 0, 3, "corrupt"), -1); /* seqs start at 1 */
    assert_int_equal(cm_batch_add_gap(&b, 5, 4, "corrupt"), -1); /* upside down */
    assert_int_equal(cm_batch_add_gap(&b, 1, UINT64_MAX, "corrupt"), -1);
    assert_int_equal(cm_batch_add_gap(&b, 1, 2, NULL), -1);
    assert_int_equal(cm_batch_add_gap(&b, 1, 2, ""), -1);
    assert_int_equal(cm_batch_add_gap(&b, 1, 2, "Spool-Full"), -1); /* not snake_case */
    assert_int_equal(cm_batch_add_gap(&b, 1, 2, "9lives"), -1);
    char lng[66];
    memset(lng, 'x', 65);
    lng[65] = '\0';
    assert_int_equal(cm_batch_add_gap(&b, 1, 2, lng), -1); /* 65 bytes */
    lng[64] = '\0';
    assert_int_equal(cm_batch_add_gap(&b, 1, 2, lng), 0); /* 64 bytes */
    assert_int_equal(b.ngaps, 22);
    cm_batch_free(&b);
    assert_int_equal(b.ngaps, 0);
    assert_null(b.gaps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_alloc),
        cmocka_unit_test(test_arena_json),
        cmocka_unit_test(test_batch_merge_label_order),
        cmocka_unit_test(test_batch_many_series),
        cmocka_unit_test(test_batch_rejects),
        cmocka_unit_test(test_batch_devices_and_cuts),
        cmocka_unit_test(test_batch_gaps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

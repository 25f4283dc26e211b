/* test_selfmetrics.c — the agent's own samples, its inventory and the disk events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "agent/selfmetrics.h"
#include "wire.h"

static const cm_series *find(const cm_batch *b, const char *metric)
{
    for (size_t i = 0; i < b->nseries; i++)
        if (!strcmp(b->series[i].metric, metric)) return &b->series[i];
    return NULL;
}

static double last_value(const cm_batch *b, const char *metric)
{
    const cm_series *s = find(b, metric);
    if (!s) fail_msg("no %s", metric);
    assert_string_equal(s->device, "agent");
    return s->points[s->npoints - 1].value;
}

static void test_samples_and_inventory(void **state)
{
    (void)state;
    cm_batch b;
    cm_batch_init(&b);
    ag_selfmetrics m;
    ag_selfmetrics_init(&m, "0.2.0");
    int64_t now = 1764082800000;
    cm_spool_stats sp = {.bytes = 4096,
                         .records = 3,
                         .first_seq = 10,
                         .oldest_ms = now - 2500,
                         .dropped_records = 7,
                         .corrupt_records = 1,
                         .disk_ok = 1};
    ag_uploader_stats up = {
        .attempts = 12, .failures = 4, .rejected = 2, .last_ack_ms = now - 1000};
    assert_int_equal(ag_selfmetrics_write(&m, &b, &sp, &up, now), 0);
    assert_int_equal(b.nseries, 10);
    assert_true(last_value(&b, "agent_spool_bytes") == 4096);
    assert_true(last_value(&b, "agent_spool_records") == 3);
    assert_true(last_value(&b, "agent_spool_oldest_age_seconds") == 2.5);
    assert_true(last_value(&b, "agent_upload_attempts_total") == 12);
    assert_true(last_value(&b, "agent_upload_failures_total") == 4);
    assert_true(last_value(&b, "agent_upload_rejected_total") == 2);
    assert_true(last_value(&b, "agent_spool_dropped_records_total") == 7);
    assert_true(last_value(&b, "agent_spool_corrupt_records_total") == 1);
    assert_true(last_value(&b, "agent_spool_disk_ok") == 1);
    assert_true(last_value(&b, "agent_last_upload_timestamp_seconds") ==
                (double)(now - 1000) / 1000.0);
    assert_int_equal(b.ndevices, 1);
    assert_string_equal(b.devices[0].id, "agent");
    assert_string_equal(b.devices[0].kind, "agent");
    assert_string_equal(b.devices[0].model, "cinemon-agent");
    assert_string_equal(b.devices[0].firmware, "0.2.0");
    assert_int_equal(b.nevents, 0); /* disk fine from the start: nothing to say */
    /* the batch encodes and decodes (names are valid on the wire) */
    b.seq = 1;
    b.sent_ms = now;
    assert_int_equal(cm_batch_set_agent(&b, "a", "0.2.0", "s"), 0);
    size_t len;
    char *json = cm_wire_encode(&b, &len);
    assert_non_null(json);
    cm_batch back;
    cm_batch_init(&back);
    char err[256], at[128];
    if (cm_wire_decode(json, len, NULL, &back, err, sizeof err, at, sizeof at) != 0)
        fail_msg("%s at %s", err, at);
    assert_int_equal(back.nseries, 10);
    cm_batch_free(&back);
    free(json);
    cm_batch_free(&b);
}

/* Records found at start-up have no append time: their age counts from first sight. */
static void test_unknown_append_time(void **state)
{
    (void)state;
    cm_batch b;
    cm_batch_init(&b);
    ag_selfmetrics m;
    ag_selfmetrics_init(&m, "0.2.0");
    cm_spool_stats sp = {.records = 2, .first_seq = 5, .disk_ok = 1};
    assert_int_equal(ag_selfmetrics_write(&m, &b, &sp, NULL, 1764082800000), 0);
    assert_int_equal(ag_selfmetrics_write(&m, &b, &sp, NULL, 1764082830000), 0);
    assert_true(last_value(&b, "agent_spool_oldest_age_seconds") == 30);
    assert_true(last_value(&b, "agent_last_upload_timestamp_seconds") == 0);
    cm_batch_free(&b);
}

static void test_disk_events(void **state)
{
    (void)state;
    cm_batch b;
    cm_batch_init(&b);
    ag_selfmetrics m;
    ag_selfmetrics_init(&m, "0.2.0");
    cm_spool_stats sp = {.disk_ok = 1};
    int64_t t = 1764082800000;
    assert_int_equal(ag_selfmetrics_write(&m, &b, &sp, NULL, t), 0);
    sp.disk_ok = 0;
    sp.disk_errors = 3;
    assert_int_equal(ag_selfmetrics_write(&m, &b, &sp, NULL, t + 1), 0);
    assert_int_equal(ag_selfmetrics_write(&m, &b, &sp, NULL, t + 2), 0); /* still failing */
    assert_int_equal(b.nevents, 1);
    assert_string_equal(b.events[0].code, "spool_disk_error");
    assert_string_equal(b.events[0].severity, "critical");
    assert_string_equal(b.events[0].source, "agent");
    assert_string_equal(b.events[0].device, "agent");
    assert_true(last_value(&b, "agent_spool_disk_ok") == 0);
    sp.disk_ok = 1;
    assert_int_equal(ag_selfmetrics_write(&m, &b, &sp, NULL, t + 3), 0);
    assert_int_equal(b.nevents, 2);
    assert_string_equal(b.events[1].code, "spool_disk_recovered");
    assert_string_equal(b.events[1].severity, "info");
    cm_batch_free(&b);

    /* a disk already failing at start is reported on the first call */
    cm_batch_init(&b);
    ag_selfmetrics_init(&m, "0.2.0");
    sp.disk_ok = 0;
    assert_int_equal(ag_selfmetrics_write(&m, &b, &sp, NULL, t), 0);
    assert_int_equal(b.nevents, 1);
    assert_string_equal(b.events[0].code, "spool_disk_error");
    cm_batch_free(&b);
}

static void test_trap_counters(void **st)
{
    (void)st;
    cm_batch b;
    cm_batch_init(&b);
    ag_traps_stats t = {.datagrams = 9, .events = 5, .informs_acked = 2, .bad_community = 3,
                        .v3_wrong_digest = 1};
    assert_int_equal(ag_selfmetrics_write_traps(&b, &t, 1764082800000), 0);
    int seen = 0;
    for (size_t i = 0; i < b.nseries; i++) {
        const cm_series *s = &b.series[i];
        assert_string_equal(s->device, "agent");
        if (!strcmp(s->metric, "agent_traps_received_total")) {
            assert_true(s->points[0].value == 9);
            seen |= 1;
        } else if (!strcmp(s->metric, "agent_traps_refused_total") && s->nlabels == 1 &&
                   !strcmp(s->labels[0].value, "bad_community")) {
            assert_true(s->points[0].value == 3);
            seen |= 2;
        } else if (!strcmp(s->metric, "agent_informs_acked_total")) {
            assert_true(s->points[0].value == 2);
            seen |= 4;
        }
    }
    assert_int_equal(seen, 7);
    cm_batch_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trap_counters),
        cmocka_unit_test(test_samples_and_inventory),
        cmocka_unit_test(test_unknown_append_time),
        cmocka_unit_test(test_disk_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

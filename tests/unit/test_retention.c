/* test_retention.c — retention on a real store (SQLite; PostgreSQL when CINEMON_TEST_PG is
 * set, see store_fixture.h): old day tables dropped (and the writer still writes to a dropped
 * day afterwards), roll-ups cut per table in small chunks, expired
 * sessions and old audit rows removed, the series API answering for what remains, a
 * cancelled pass, the cut arithmetic, and the thread's first pass at start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "collector/retention.h"
#include "collector/store.h"
#include "store_fixture.h"
#include "timeutil.h"

#define DAY_MS 86400000LL
#define HOUR_MS 3600000LL
#define MIN_MS 60000LL
/* "now" of the tests: 2024-10-04T12:00:00Z (day 20000 since the epoch, plus 12 h) */
#define DAY0 20000LL
#define NOW (DAY0 * DAY_MS + 12 * HOUR_MS)

static uint64_t g_seq;

/* Write one batch of agent a1 at site S1 with n points of hall1/projector luminance starting at
 * ts, one a minute. */
static void write_points(co_store *s, int64_t ts, int n)
{
    cm_batch b;
    cm_batch_init(&b);
    assert_int_equal(cm_batch_set_agent(&b, "a1", "1.0.0", "S1"), 0);
    b.seq = ++g_seq;
    b.sent_ms = ts;
    cm_device_info d = {.id = "hall1/projector", .screen = "hall1", .kind = "projector"};
    assert_int_equal(cm_batch_add_device(&b, &d), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(cm_batch_add_point(&b, "hall1/projector", "screen_luminance_cdm2", "cd/m2",
                                            NULL, 0, ts + i * MIN_MS, 48.0 + i % 3),
                         0);
    cm_batch *bp = &b;
    co_batch_result r = 99;
    char err[256] = "";
    if (co_store_write(s, &bp, 1, &r, err, sizeof err) < 0) fail_msg("write: %s", err);
    assert_int_equal(r, CO_BATCH_STORED);
    cm_batch_free(&b);
}

static const int64_t g_days[] = {DAY0 - 100, DAY0 - 95, DAY0 - 10, DAY0};

/* How many of the days fill() writes still have their day table (SQLite) / partition. */
static int days_kept(store_fx *f)
{
    int n = 0;
    for (size_t i = 0; i < 4; i++)
        n += fx_day_table(f, g_days[i]);
    return n;
}

/* SQLite only: the rows of its table of day tables (PostgreSQL has none, see days_kept). */
static void chunks_are(store_fx *f, int64_t n)
{
    if (!fx_is_pg(f)) assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM chunks"), n);
}

/* Samples on days DAY0-100, DAY0-95, DAY0-10 and DAY0 (60 points each from 10:00). */
static void fill(store_fx *f)
{
    g_seq = 1000;
    for (size_t i = 0; i < 4; i++)
        write_points(f->s, g_days[i] * DAY_MS + 10 * HOUR_MS, 60);
    chunks_are(f, 4);
    assert_int_equal(days_kept(f), 4);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM rollup_1m"), 240);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM rollup_1h"), 4);
}

static json_t *series(co_store *s, int64_t from, int64_t step)
{
    co_range r = {.from_ms = from, .to_ms = NOW + DAY_MS, .limit = 0, .step_ms = step};
    char err[256] = "";
    json_t *j = co_store_series(s, "S1", "hall1/projector", "screen_luminance_cdm2", &r, NULL, err,
                                sizeof err);
    if (!j) fail_msg("series: %s", err);
    assert_int_equal(json_array_size(j), 1);
    return j;
}

static size_t npoints(json_t *j)
{
    return json_array_size(json_object_get(json_array_get(j, 0), "points"));
}

static void test_days_and_rollups(void **state)
{
    store_fx *f = *state;
    fill(f);
    /* raw: 90 days, 1m: 96 days (cuts inside the gap between day -100/-95 and -10), 1h: 97 */
    co_retention_cut cut = {.raw_before_ms = NOW - 90 * DAY_MS,
                            .rollup_1m_before_ms = DAY0 * DAY_MS - 96 * DAY_MS,
                            .rollup_1h_before_ms = (DAY0 - 95) * DAY_MS + 10 * HOUR_MS + 1,
                            .chunk_rows = 7};
    co_retention_stats st;
    char err[256] = "";
    if (co_store_retention(f->s, &cut, &st, err, sizeof err) < 0) fail_msg("retention: %s", err);
    assert_int_equal(st.days, 2);
    assert_int_equal(st.samples, 120);
    assert_int_equal(st.rollup_1m, 60); /* day -100 only: day -95 is after the 1m cut */
    assert_int_equal(st.rollup_1h, 2);  /* the hours of day -100 and -95 (bucket < cut) */
    assert_true(st.transactions > 60 / 7);
    assert_int_equal(st.cancelled, 0);

    /* the day tables and their chunks rows are gone, the others intact */
    chunks_are(f, 2);
    if (!fx_is_pg(f)) {
        assert_int_equal(fx_sql_int(f, "SELECT min(day) FROM chunks"), DAY0 - 10);
        assert_int_equal(
            fx_sql_int(f, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'samples_%'"), 2);
    }
    assert_false(fx_day_table(f, DAY0 - 100));
    assert_false(fx_day_table(f, DAY0 - 95));
    assert_true(fx_day_table(f, DAY0 - 10));
    assert_true(fx_day_table(f, DAY0));
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM rollup_1m"), 180);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM rollup_1h"), 2);

    /* the series API answers for what remains */
    json_t *j = series(f->s, 0, 0);
    assert_int_equal(npoints(j), 120);
    json_decref(j);
    j = series(f->s, 0, MIN_MS);
    assert_int_equal(npoints(j), 180);
    json_decref(j);
    j = series(f->s, 0, HOUR_MS);
    assert_int_equal(npoints(j), 2);
    json_t *p0 = json_array_get(json_object_get(json_array_get(j, 0), "points"), 0);
    assert_int_equal(json_integer_value(json_array_get(p0, 0)),
                     (DAY0 - 10) * DAY_MS + 10 * HOUR_MS);
    assert_int_equal(json_integer_value(json_array_get(p0, 4)), 60);
    json_decref(j);

    /* a late sample for a dropped day: the writer forgot its table and makes it again */
    write_points(f->s, (DAY0 - 100) * DAY_MS + 11 * HOUR_MS, 1);
    chunks_are(f, 3);
    assert_true(fx_day_table(f, DAY0 - 100));
    assert_int_equal(days_kept(f), 3);
    int64_t samples = 0, nseries = 0, devices = 0;
    assert_int_equal(co_store_counts(f->s, &samples, &nseries, &devices, err, sizeof err), 0);
    assert_int_equal(samples, 121);

    /* a second pass removes that day again and nothing else */
    if (co_store_retention(f->s, &cut, &st, err, sizeof err) < 0) fail_msg("retention: %s", err);
    assert_int_equal(st.days, 1);
    assert_int_equal(st.samples, 1);
    assert_int_equal(st.rollup_1m, 1);
    assert_int_equal(st.rollup_1h, 1);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM rollup_1m"), 180);
}

static void test_sessions_and_audit(void **state)
{
    store_fx *f = *state;
    fill(f); /* 4 audit rows of a1 (seq 1001..1004), received now (the real clock) */
    fx_exec(f, "INSERT INTO sessions(hash, viewer, created_ms, expires_ms, last_seen_ms) VALUES"
               " ('h1', 'v', 0, 1000, 0), ('h2', 'v', 0, 2000, 0), ('h3', 'v', 0, 3000, 0),"
               " ('h4', 'v', 0, 9000, 0), ('h5', 'v', 0, 10000, 0);"
               "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)"
               " INSERT INTO batches(agent_id, first_seq, last_seq, samples, received_ms)"
               " SELECT 'a1', i, i, 1, 1000 + i FROM n;"
               "INSERT INTO agents(id, site, last_seq, last_seen_ms) VALUES('a0', 'S0', 5, 0);"
               "INSERT INTO batches(agent_id, first_seq, last_seq, samples, received_ms)"
               " VALUES('a0', 1, 5, 5, 10);");
    co_retention_cut cut = {
        .sessions_before_ms = 3000, .audit_before_ms = cm_now_ms() - DAY_MS, .chunk_rows = 3};
    co_retention_stats st;
    char err[256] = "";
    if (co_store_retention(f->s, &cut, &st, err, sizeof err) < 0) fail_msg("retention: %s", err);
    assert_int_equal(st.sessions, 3);
    assert_int_equal(st.audit, 21);
    assert_int_equal(st.days, 0);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM sessions"), 2);
    assert_int_equal(fx_sql_int(f, "SELECT min(expires_ms) FROM sessions"), 9000);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM batches"), 4);
    assert_int_equal(fx_sql_int(f, "SELECT min(first_seq) FROM batches"), 1001);
    /* the agents' last seq is kept: a repeated batch is still a duplicate */
    assert_int_equal(fx_sql_int(f, "SELECT last_seq FROM agents WHERE id = 'a1'"), 1004);
}

static int always(void *ud)
{
    (void)ud;
    return 1;
}

static void test_cancelled(void **state)
{
    store_fx *f = *state;
    fill(f);
    co_retention_cut cut = {.raw_before_ms = NOW,
                            .rollup_1m_before_ms = NOW,
                            .rollup_1h_before_ms = NOW,
                            .cancelled = always};
    co_retention_stats st;
    char err[256] = "";
    assert_int_equal(co_store_retention(f->s, &cut, &st, err, sizeof err), 0);
    assert_int_equal(st.cancelled, 1);
    assert_int_equal(st.days + st.rollup_1m + st.rollup_1h, 0);
    chunks_are(f, 4);
    assert_int_equal(days_kept(f), 4);
}

static void test_cuts(void **state)
{
    (void)state;
    co_retention_conf c = {.raw_ms = 90 * DAY_MS,
                           .rollup_1m_ms = 0,
                           .rollup_1h_ms = 3650 * DAY_MS,
                           .audit_ms = 365 * DAY_MS,
                           .interval_ms = HOUR_MS};
    co_retention_cut cut;
    co_retention_cuts(&c, NOW, &cut);
    assert_int_equal(cut.raw_before_ms, NOW - 90 * DAY_MS);
    assert_int_equal(cut.rollup_1m_before_ms, 0); /* forever */
    assert_int_equal(cut.rollup_1h_before_ms, NOW - 3650 * DAY_MS);
    assert_int_equal(cut.audit_before_ms, NOW - 365 * DAY_MS);
    assert_int_equal(cut.sessions_before_ms, NOW);
    c.rollup_1h_ms = 100000 * DAY_MS; /* before the epoch: nothing to cut */
    co_retention_cuts(&c, NOW, &cut);
    assert_int_equal(cut.rollup_1h_before_ms, 0);
}

static void test_thread_first_pass(void **state)
{
    store_fx *f = *state;
    fill(f);
    /* relative to the real clock: every test day is years old, so raw = 1 year drops them all */
    co_retention_conf c = {.raw_ms = 365 * DAY_MS, .interval_ms = HOUR_MS};
    co_retention *r = NULL;
    char err[256] = "";
    if (co_retention_start(&r, f->s, &c, err, sizeof err) < 0) fail_msg("start: %s", err);
    int64_t n = -1;
    for (int i = 0; i < 500 && n != 0; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
        n = days_kept(f);
    }
    co_retention_stop(r);
    assert_int_equal(n, 0);
    chunks_are(f, 0);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM rollup_1m"), 240); /* kept forever */
    co_retention_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_days_and_rollups, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_sessions_and_audit, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_cancelled, store_fx_setup, store_fx_teardown),
        cmocka_unit_test(test_cuts),
        cmocka_unit_test_setup_teardown(test_thread_first_pass, store_fx_setup, store_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

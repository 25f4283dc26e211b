/* test_store.c — the store (SQLite; PostgreSQL when CINEMON_TEST_PG is set, see
 * store_fixture.h): write batches, read them back exactly, exactly-once by seq (duplicates,
 * overlaps, gaps, audit rows), day tables across midnight, canonical labels, persistence, the
 * schema migration (SQLite), tokens, rollback, open errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_fixture.h"

#define T0 1764082800000LL       /* 2025-11-25T15:00:00Z */
#define MIDNIGHT 1764115200000LL /* 2025-11-26T00:00:00Z */

typedef store_fx fx;

static void reopen(fx *f)
{
    store_fx_reopen(f);
}

static cm_batch *mk(const char *agent, const char *site, uint64_t seq)
{
    cm_batch *b = malloc(sizeof *b);
    cm_batch_init(b);
    assert_int_equal(cm_batch_set_agent(b, agent, "1.0.0", site), 0);
    b->seq = seq;
    b->sent_ms = T0;
    return b;
}

static void drop(cm_batch *b)
{
    cm_batch_free(b);
    free(b);
}

static void pt(cm_batch *b, const char *dev, const char *metric, const char *unit,
               const cm_label *l, size_t nl, int64_t ts, double v)
{
    assert_int_equal(cm_batch_add_point(b, dev, metric, unit, l, nl, ts, v), 0);
}

/* Write one batch; returns its result. */
static co_batch_result write1(co_store *s, cm_batch *b)
{
    co_batch_result r = 99;
    char err[256] = "";
    if (co_store_write(s, &b, 1, &r, err, sizeof err) < 0) fail_msg("write: %s", err);
    return r;
}

#define counts(s, a, b, c) counts_at(s, a, b, c, __LINE__)
static void counts_at(co_store *s, int64_t samples, int64_t series, int64_t devices, int line)
{
    int64_t a = -1, b = -1, c = -1;
    char err[256] = "";
    assert_int_equal(co_store_counts(s, &a, &b, &c, err, sizeof err), 0);
    if (a != samples || b != series || c != devices)
        fail_msg("line %d: samples, series, devices = %lld, %lld, %lld; want %lld, %lld, %lld",
                 line, (long long)a, (long long)b, (long long)c, (long long)samples,
                 (long long)series, (long long)devices);
}

/* Compare a JSON value with the JSON text `want`. */
static void json_is(json_t *got, const char *want)
{
    json_error_t je;
    json_t *w = json_loads(want, 0, &je);
    if (!w) fail_msg("bad expected JSON: %s", je.text);
    if (!json_equal(got, w)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(stderr, "got:  %s\nwant: %s\n", g, want);
        free(g);
        json_decref(w);
        fail();
    }
    json_decref(w);
}

static json_t *series_q(co_store *s, const char *site, const char *dev, const char *metric,
                        int64_t from, int64_t to, size_t limit)
{
    co_range r = {from, to, limit};
    char err[256] = "";
    json_t *j = co_store_series(s, site, dev, metric, &r, NULL, err, sizeof err);
    if (!j) fail_msg("series: %s", err);
    return j;
}

static json_t *latest_q(co_store *s, const char *site, const char *dev, const char *metric)
{
    char err[256] = "";
    json_t *j = co_store_latest(s, site, dev, metric, NULL, err, sizeof err);
    if (!j) fail_msg("latest: %s", err);
    return j;
}

static cm_batch *sample_batch(uint64_t seq)
{
    cm_batch *b = mk("agent-1", "S1", seq);
    cm_device_info d = {.id = "hall1/projector",
                        .screen = "hall1",
                        .kind = "projector",
                        .vendor = "Barco",
                        .model = "DP4K-32B",
                        .serial = "SN1",
                        .firmware = "1.2",
                        .profile = "barco_dp4k"};
    assert_int_equal(cm_batch_add_device(b, &d), 0);
    cm_label dmd = {"sensor", "dmd"};
    pt(b, "hall1/projector", "lamp_hours", "h", NULL, 0, T0, 100.0);
    pt(b, "hall1/projector", "lamp_hours", "h", NULL, 0, T0 + 60000, 100.5);
    pt(b, "hall1/projector", "temperature_celsius", "celsius", &dmd, 1, T0, 41.25);
    cm_event e = {.device = "hall1/projector",
                  .ts_ms = T0,
                  .severity = "warning",
                  .code = "lamp_strike",
                  .text = "lamp strike failed",
                  .source = "snmp-trap"};
    assert_int_equal(cm_batch_add_event(b, &e), 0);
    return b;
}

static void test_write_and_read_back(void **state)
{
    fx *f = *state;
    cm_batch *b = sample_batch(1);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    counts(f->s, 3, 2, 1);

    json_t *j = latest_q(f->s, "S1", "hall1/projector", NULL);
    json_is(j, "[{\"site\":\"S1\",\"device\":\"hall1/projector\",\"metric\":\"lamp_hours\","
               "\"labels\":{},\"unit\":\"h\",\"ts_ms\":1764082860000,\"value\":100.5},"
               "{\"site\":\"S1\",\"device\":\"hall1/projector\",\"metric\":\"temperature_celsius\","
               "\"labels\":{\"sensor\":\"dmd\"},\"unit\":\"celsius\",\"ts_ms\":1764082800000,"
               "\"value\":41.25}]");
    json_decref(j);
    j = latest_q(f->s, NULL, "hall1/projector", "lamp_hours"); /* any site, one metric */
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
    j = latest_q(f->s, "S2", "hall1/projector", NULL);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);

    j = series_q(f->s, "S1", "hall1/projector", "lamp_hours", T0 - 1, T0 + 3600000, 0);
    json_is(
        j,
        "[{\"site\":\"S1\",\"device\":\"hall1/projector\",\"metric\":\"lamp_hours\","
        "\"labels\":{},\"unit\":\"h\",\"points\":[[1764082800000,100.0],[1764082860000,100.5]]}]");
    json_decref(j);
    j = series_q(f->s, "S1", "hall1/projector", "lamp_hours", T0 - 1, T0 + 3600000, 1);
    json_is(json_object_get(json_array_get(j, 0), "points"), "[[1764082860000,100.5]]");
    json_decref(j);
    j = series_q(f->s, "S1", "hall1/projector", "lamp_hours", T0, T0, 0); /* inclusive bounds */
    json_is(json_object_get(json_array_get(j, 0), "points"), "[[1764082800000,100.0]]");
    json_decref(j);

    char err[256] = "";
    j = co_store_devices(f->s, "S1", NULL, err, sizeof err);
    assert_non_null(j);
    assert_int_equal(json_array_size(j), 1);
    json_t *d = json_array_get(j, 0);
    json_t *first = json_object_get(d, "first_seen_ms"), *last = json_object_get(d, "last_seen_ms");
    assert_true(json_is_integer(first) && json_integer_value(first) > T0);
    assert_true(json_is_integer(last) && json_integer_value(last) >= json_integer_value(first));
    json_object_del(d, "first_seen_ms");
    json_object_del(d, "last_seen_ms");
    json_is(
        j,
        "[{\"site\":\"S1\",\"id\":\"hall1/projector\",\"screen\":\"hall1\",\"kind\":\"projector\","
        "\"vendor\":\"Barco\",\"model\":\"DP4K-32B\",\"serial\":\"SN1\",\"firmware\":\"1.2\","
        "\"profile\":\"barco_dp4k\"}]");
    json_decref(j);
    j = co_store_devices(f->s, "nowhere", NULL, err, sizeof err);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);

    j = co_store_sites(f->s, NULL, err, sizeof err);
    assert_non_null(j);
    json_t *site = json_array_get(j, 0);
    assert_true(json_integer_value(json_object_get(site, "last_seen_ms")) > T0);
    json_object_del(site, "last_seen_ms");
    json_is(j, "[{\"code\":\"S1\",\"name\":null,\"province\":null,\"city\":null,"
               "\"chain\":null,\"devices\":1}]");
    json_decref(j);

    /* inventory upsert: fields given replace, absent fields are kept */
    b = mk("agent-1", "S1", 2);
    cm_device_info d2 = {.id = "hall1/projector", .firmware = "1.3"};
    assert_int_equal(cm_batch_add_device(b, &d2), 0);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    j = co_store_devices(f->s, NULL, NULL, err, sizeof err);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "firmware")),
                        "1.3");
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "model")),
                        "DP4K-32B");
    json_decref(j);
}

static void test_duplicate_seq(void **state)
{
    fx *f = *state;
    cm_batch *b = sample_batch(5);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    counts(f->s, 3, 2, 1);

    /* same seq, different content: acknowledged, nothing written */
    b = mk("agent-1", "S1", 5);
    pt(b, "hall1/projector", "lamp_hours", "h", NULL, 0, T0 + 120000, 999);
    pt(b, "hall2/projector", "lamp_hours", "h", NULL, 0, T0 + 120000, 999);
    assert_int_equal(write1(f->s, b), CO_BATCH_DUPLICATE);
    drop(b);
    b = mk("agent-1", "S2", 3); /* older seq */
    pt(b, "hall3/projector", "lamp_hours", "h", NULL, 0, T0, 1);
    assert_int_equal(write1(f->s, b), CO_BATCH_DUPLICATE);
    drop(b);
    counts(f->s, 3, 2, 1);
    json_t *j = latest_q(f->s, "S1", "hall1/projector", "lamp_hours");
    assert_true(json_real_value(json_object_get(json_array_get(j, 0), "value")) == 100.5);
    json_decref(j);
    char err[256];
    j = co_store_sites(f->s, NULL, err, sizeof err);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);

    /* the next seq is stored; a repeated (series, ts) keeps the last value */
    b = mk("agent-1", "S1", 6);
    pt(b, "hall1/projector", "lamp_hours", "h", NULL, 0, T0 + 60000, 101.0);
    pt(b, "hall1/projector", "lamp_hours", "h", NULL, 0, T0 + 120000, 102.0);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    counts(f->s, 4, 2, 1);
    j = series_q(f->s, "S1", "hall1/projector", "lamp_hours", 0, T0 * 2, 0);
    json_is(json_object_get(json_array_get(j, 0), "points"),
            "[[1764082800000,100.0],[1764082860000,101.0],[1764082920000,102.0]]");
    json_decref(j);

    /* several batches in one commit, in seq order, with a duplicate among them */
    cm_batch *g[4] = {mk("agent-1", "S1", 7), mk("agent-1", "S1", 8), mk("agent-1", "S1", 8),
                      mk("agent-2", "S1", 1)};
    for (int i = 0; i < 4; i++)
        pt(g[i], "hall1/projector", "up", NULL, NULL, 0, T0 + i, 1);
    co_batch_result r[4];
    assert_int_equal(co_store_write(f->s, g, 4, r, err, sizeof err), 0);
    assert_int_equal(r[0], CO_BATCH_STORED);
    assert_int_equal(r[1], CO_BATCH_STORED);
    assert_int_equal(r[2], CO_BATCH_DUPLICATE);
    assert_int_equal(r[3], CO_BATCH_STORED);
    for (int i = 0; i < 4; i++)
        drop(g[i]);
    counts(f->s, 7, 3, 1);
}

static void test_midnight_chunks(void **state)
{
    fx *f = *state;
    cm_batch *b = mk("agent-1", "S1", 1);
    pt(b, "hall1/sensor", "screen_luminance_nits", "nits", NULL, 0, MIDNIGHT - 1000, 47.5);
    pt(b, "hall1/sensor", "screen_luminance_nits", "nits", NULL, 0, MIDNIGHT + 1000, 48.0);
    pt(b, "hall1/sensor", "screen_luminance_nits", "nits", NULL, 0, MIDNIGHT, 47.75);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    counts(f->s, 3, 1, 1);
    if (!fx_is_pg(f)) { /* SQLite keeps a row count per day table */
        assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM chunks"), 2);
        assert_int_equal(
            fx_sql_int(f, "SELECT rows FROM chunks WHERE table_name = 'samples_20251126'"), 2);
    }
    assert_true(fx_day_table(f, MIDNIGHT / 86400000 - 1));
    assert_true(fx_day_table(f, MIDNIGHT / 86400000));
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM samples_20251125"), 1);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM samples_20251126"), 2);

    json_t *j = series_q(f->s, NULL, "hall1/sensor", "screen_luminance_nits", MIDNIGHT - 3600000,
                         MIDNIGHT + 3600000, 0);
    json_is(json_object_get(json_array_get(j, 0), "points"),
            "[[1764115199000,47.5],[1764115200000,47.75],[1764115201000,48.0]]");
    json_decref(j);
    /* newest kept across the boundary */
    j = series_q(f->s, NULL, "hall1/sensor", "screen_luminance_nits", 0, MIDNIGHT * 2, 2);
    json_is(json_object_get(json_array_get(j, 0), "points"),
            "[[1764115200000,47.75],[1764115201000,48.0]]");
    json_decref(j);
    /* only the first day */
    j = series_q(f->s, NULL, "hall1/sensor", "screen_luminance_nits", 0, MIDNIGHT - 1, 0);
    json_is(json_object_get(json_array_get(j, 0), "points"), "[[1764115199000,47.5]]");
    json_decref(j);
    /* an empty range */
    j = series_q(f->s, NULL, "hall1/sensor", "screen_luminance_nits", MIDNIGHT, MIDNIGHT - 1, 0);
    json_is(json_object_get(json_array_get(j, 0), "points"), "[]");
    json_decref(j);
}

static void test_labels_order_insensitive(void **state)
{
    fx *f = *state;
    cm_label ab[] = {{"channel", "L"}, {"mode", "2d"}};
    cm_batch *b = mk("agent-1", "S1", 1);
    pt(b, "hall1/audio", "spl_dbc", "dbc", ab, 2, T0, 85.0);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);

    b = mk("agent-1", "S1", 2);
    pt(b, "hall1/audio", "spl_dbc", "dbc", ab, 2, T0 + 1000, 84.5);
    /* hand the store labels out of order: it must still find the same series */
    cm_label t = b->series[0].labels[0];
    b->series[0].labels[0] = b->series[0].labels[1];
    b->series[0].labels[1] = t;
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    reopen(f); /* and again with a cold cache */
    b = mk("agent-1", "S1", 3);
    cm_label ba[] = {{"mode", "2d"}, {"channel", "L"}};
    pt(b, "hall1/audio", "spl_dbc", "dbc", ba, 2, T0 + 2000, 84.0);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    counts(f->s, 3, 1, 1);
    json_t *j = latest_q(f->s, "S1", "hall1/audio", "spl_dbc");
    json_is(j, "[{\"site\":\"S1\",\"device\":\"hall1/audio\",\"metric\":\"spl_dbc\","
               "\"labels\":{\"channel\":\"L\",\"mode\":\"2d\"},\"unit\":\"dbc\","
               "\"ts_ms\":1764082802000,\"value\":84.0}]");
    json_decref(j);
    assert_int_equal(
        fx_sql_int(
            f, "SELECT count(*) FROM series WHERE labels = '{\"channel\":\"L\",\"mode\":\"2d\"}'"),
        1);
}

static void test_reopen_persists(void **state)
{
    fx *f = *state;
    cm_batch *b = sample_batch(41);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    reopen(f);
    counts(f->s, 3, 2, 1);
    b = sample_batch(41);
    assert_int_equal(write1(f->s, b), CO_BATCH_DUPLICATE); /* last_seq survived */
    drop(b);
    json_t *j = latest_q(f->s, "S1", "hall1/projector", "lamp_hours");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "ts_ms")),
                     T0 + 60000);
    json_decref(j);
    b = mk("agent-1", "S1", 42);
    pt(b, "hall1/projector", "lamp_hours", "h", NULL, 0, T0 + 120000, 101);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    counts(f->s, 4, 2, 1);
    assert_int_equal(fx_sql_int(f, "SELECT last_seq FROM agents WHERE id = 'agent-1'"), 42);
    if (fx_is_pg(f))
        assert_int_equal(fx_sql_int(f, "SELECT max(version) FROM schema_version"), 3);
    else
        assert_int_equal(fx_sql_int(f, "PRAGMA user_version"), 9);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM events"), 1);
}

/* Events come back newest first, filtered by site, device, minimum severity and range. */
static void test_events_query(void **state)
{
    fx *f = *state;
    cm_batch *b = sample_batch(1); /* one warning lamp_strike of hall1/projector */
    cm_event e = {.device = "hall1/projector",
                  .ts_ms = T0 + 5000,
                  .severity = "info",
                  .code = "door_open",
                  .text = "booth door <open> & \"x\"",
                  .source = "agent"};
    assert_int_equal(cm_batch_add_event(b, &e), 0);
    cm_event ghost = {.device = "hall2/ims",
                      .ts_ms = T0 + 6000,
                      .severity = "warning",
                      .code = "raid_degraded",
                      .text = "RAID degraded",
                      .source = "snmp-trap"};
    assert_int_equal(cm_batch_add_event(b, &ghost), 0);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    char err[256] = "";
    assert_int_equal(co_store_ping(f->s, err, sizeof err), 0);
    co_range all = {.from_ms = T0 - 3600000, .to_ms = T0 + 3600000, .limit = 100};
    json_t *j = co_store_events(f->s, NULL, NULL, NULL, &all, NULL, err, sizeof err);
    if (!j) fail_msg("events: %s", err);
    assert_int_equal(json_array_size(j), 3);
    /* newest first; an event's device is registered even with no inventory of its own */
    json_t *first = json_array_get(j, 0);
    assert_string_equal(json_string_value(json_object_get(first, "code")), "raid_degraded");
    assert_string_equal(json_string_value(json_object_get(first, "device")), "hall2/ims");
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "text")),
                        "booth door <open> & \"x\"");
    json_decref(j);
    j = co_store_events(f->s, "S1", "hall1/projector", "warning", &all, NULL, err, sizeof err);
    assert_non_null(j);
    assert_int_equal(json_array_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "code")),
                        "lamp_strike");
    json_decref(j);
    co_range one = all;
    one.limit = 1;
    j = co_store_events(f->s, "S1", NULL, NULL, &one, NULL, err, sizeof err);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
    co_range none = {.from_ms = T0 + 7200000, .to_ms = T0 + 9000000, .limit = 100};
    j = co_store_events(f->s, NULL, NULL, NULL, &none, NULL, err, sizeof err);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
    j = co_store_events(f->s, "other-site", NULL, NULL, &all, NULL, err, sizeof err);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
}

/* Sites and screens: import, partial update, validation, listing with device counts. */
static void test_screens(void **state)
{
    fx *f = *state;
    char err[256] = "";
    co_site sites[] = {{"11010001", "Capital Cinema", "Beijing", "Beijing"},
                       {"31010002", "Bund Screens", "Shanghai", "Shanghai"}};
    co_screen scr[] = {{"11010001", "hall1", "Hall 1", "theatre", "projection", "2D", NULL},
                       {"11010001", "hall2", "Review", "review", "led", "HDR",
                        "{\"L\":85.0,\"C\":85.0,\"R\":85.0,\"Ls\":82.0,\"Rs\":82.0}"},
                       {"99990009", "hall1", NULL, NULL, NULL, NULL, NULL}};
    assert_int_equal(co_store_import(f->s, sites, 2, scr, 3, "import", err, sizeof err), 0);
    json_t *j = co_store_screens(f->s, NULL, NULL, NULL, err, sizeof err);
    if (!j) fail_msg("screens: %s", err);
    assert_int_equal(json_array_size(j), 3);
    json_t *h2 = json_array_get(j, 1);
    assert_string_equal(json_string_value(json_object_get(h2, "class")), "review");
    assert_string_equal(json_string_value(json_object_get(h2, "display")), "led");
    assert_true(json_real_value(json_object_get(json_object_get(h2, "spl_ref"), "Ls")) == 82.0);
    /* defaults for a screen named only */
    json_t *x = json_array_get(j, 2);
    assert_string_equal(json_string_value(json_object_get(x, "class")), "theatre");
    assert_string_equal(json_string_value(json_object_get(x, "display")), "projection");
    assert_int_equal(json_object_size(json_object_get(x, "spl_ref")), 0);
    json_decref(j);
    /* the unknown site was created; the known ones keep their province */
    j = co_store_sites(f->s, NULL, err, sizeof err);
    assert_int_equal(json_array_size(j), 3);
    json_decref(j);
    /* a partial update changes only what it names */
    co_screen upd = {"11010001", "hall2", NULL, "theatre", NULL, NULL, NULL};
    assert_int_equal(co_store_import(f->s, NULL, 0, &upd, 1, "ops-anna", err, sizeof err), 0);
    j = co_store_screens(f->s, "11010001", "hall2", NULL, err, sizeof err);
    assert_int_equal(json_array_size(j), 1);
    h2 = json_array_get(j, 0);
    assert_string_equal(json_string_value(json_object_get(h2, "class")), "theatre");
    assert_string_equal(json_string_value(json_object_get(h2, "display")), "led");
    assert_string_equal(json_string_value(json_object_get(h2, "updated_by")), "ops-anna");
    assert_int_equal(json_object_size(json_object_get(h2, "spl_ref")), 5);
    json_decref(j);
    /* validation: nothing of a bad import is written */
    co_screen bad[] = {{"11010001", "hall3", NULL, NULL, NULL, NULL, NULL},
                       {"11010001", "hall4", NULL, "cinema", NULL, NULL, NULL}};
    assert_int_equal(co_store_import(f->s, NULL, 0, bad, 2, "x", err, sizeof err), -1);
    assert_non_null(strstr(err, "screens[1].class"));
    co_screen bad2 = {"11010001", "hall4", NULL, NULL, "crt", NULL, NULL};
    assert_int_equal(co_store_import(f->s, NULL, 0, &bad2, 1, "x", err, sizeof err), -1);
    assert_non_null(strstr(err, "display"));
    j = co_store_screens(f->s, "11010001", NULL, NULL, err, sizeof err);
    assert_int_equal(json_array_size(j), 2);
    json_decref(j);
    /* operators */
    const char *h = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    char name[64], site[64];
    assert_int_equal(co_store_operator_add(f->s, h, "anna", "*", err, sizeof err), 0);
    assert_int_equal(co_store_operator_add(f->s, h, "bob", "*", err, sizeof err), -1);
    assert_int_equal(
        co_store_operator_lookup(f->s, h, name, sizeof name, site, sizeof site, err, sizeof err),
        1);
    assert_string_equal(name, "anna");
    assert_string_equal(site, "*");
    const char *other = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    assert_int_equal(co_store_operator_lookup(f->s, other, name, sizeof name, site, sizeof site,
                                              err, sizeof err),
                     0);
    /* an agent token is not an operator token */
    assert_int_equal(co_store_token_add(f->s, other, "agent-1", "S1", err, sizeof err), 0);
    assert_int_equal(co_store_operator_lookup(f->s, other, name, sizeof name, site, sizeof site,
                                              err, sizeof err),
                     0);
}

/* Roll-ups: minute and hour aggregates equal those of the stored samples, also when a sample
 * is replaced and across several transactions. */
static void test_rollups(void **state)
{
    fx *f = *state;
    /* 3 hours of a sample every 20 s, in batches of 10 minutes */
    double sum_h[3] = {0}, min_h[3] = {1e9, 1e9, 1e9}, max_h[3] = {-1e9, -1e9, -1e9};
    int n_h[3] = {0};
    uint64_t seq = 100;
    for (int b = 0; b < 18; b++) {
        cm_batch *x = mk("agent-1", "S1", ++seq);
        for (int k = 0; k < 30; k++) {
            int i = b * 30 + k;
            double v = 40.0 + (i % 17) * 0.5;
            int64_t ts = T0 + (int64_t)i * 20000;
            pt(x, "hall1/sensor", "temperature_celsius", "celsius", NULL, 0, ts, v);
            int h = i / 180;
            if (i == 5) continue; /* replaced below */
            sum_h[h] += v;
            n_h[h]++;
            if (v < min_h[h]) min_h[h] = v;
            if (v > max_h[h]) max_h[h] = v;
        }
        assert_int_equal(write1(f->s, x), CO_BATCH_STORED);
        drop(x);
    }
    /* sample 5 (hour 0) replaced by another batch's value */
    cm_batch *x = mk("agent-1", "S1", ++seq);
    pt(x, "hall1/sensor", "temperature_celsius", "celsius", NULL, 0, T0 + 5 * 20000, 99.0);
    assert_int_equal(write1(f->s, x), CO_BATCH_STORED);
    drop(x);
    sum_h[0] += 99.0;
    n_h[0]++;
    max_h[0] = 99.0;

    char err[256] = "";
    co_range r = {.from_ms = T0, .to_ms = T0 + 3 * 3600000LL, .limit = 1000, .step_ms = 3600000};
    json_t *j = co_store_series(f->s, "S1", "hall1/sensor", "temperature_celsius", &r, NULL, err,
                                sizeof err);
    if (!j) fail_msg("%s", err);
    json_t *pts = json_object_get(json_array_get(j, 0), "points");
    assert_int_equal(json_array_size(pts), 3);
    for (int h = 0; h < 3; h++) {
        json_t *row = json_array_get(pts, (size_t)h);
        assert_int_equal(json_integer_value(json_array_get(row, 0)), T0 + h * 3600000LL);
        assert_true(fabs(json_real_value(json_array_get(row, 1)) - sum_h[h] / n_h[h]) < 1e-9);
        assert_true(json_real_value(json_array_get(row, 2)) == min_h[h]);
        assert_true(json_real_value(json_array_get(row, 3)) == max_h[h]);
        assert_int_equal(json_integer_value(json_array_get(row, 4)), n_h[h]);
    }
    assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "step_ms")), 3600000);
    json_decref(j);
    /* minutes: 3 samples each; the minute of the replaced sample has the new value */
    r.step_ms = 60000;
    r.to_ms = T0 + 3 * 60000 - 1;
    j = co_store_series(f->s, "S1", "hall1/sensor", "temperature_celsius", &r, NULL, err,
                        sizeof err);
    pts = json_object_get(json_array_get(j, 0), "points");
    assert_int_equal(json_array_size(pts), 3);
    json_t *m0 = json_array_get(pts, 0);
    assert_int_equal(json_integer_value(json_array_get(m0, 4)), 3);
    assert_true(json_real_value(json_array_get(m0, 3)) == 40.0 + 2 * 0.5); /* samples 0..2 */
    json_t *m1 = json_array_get(pts, 1); /* samples 3..5: 5 is 99 now */
    assert_true(json_real_value(json_array_get(m1, 3)) == 99.0);
    assert_true(fabs(json_real_value(json_array_get(m1, 1)) - (41.5 + 42.0 + 99.0) / 3) < 1e-9);
    json_decref(j);
    /* a duplicate batch changes nothing */
    x = mk("agent-1", "S1", 101);
    pt(x, "hall1/sensor", "temperature_celsius", "celsius", NULL, 0, T0, 1000.0);
    assert_int_equal(write1(f->s, x), CO_BATCH_DUPLICATE);
    drop(x);
    assert_int_equal(fx_sql_int(f, "SELECT max(max) = 99.0 FROM rollup_1h"), 1);
    assert_int_equal(fx_sql_int(f, "SELECT sum(n) FROM rollup_1m"), 540);
    assert_int_equal(fx_sql_int(f, "SELECT sum(n) FROM rollup_1h"), 540);
}

/* A batch carrying records first..seq of agent-1 with one point per record. */
static cm_batch *range_batch(uint64_t first, uint64_t seq)
{
    cm_batch *b = mk("agent-1", "S1", seq);
    b->first_seq = first;
    for (uint64_t r = first ? first : seq; r <= seq; r++)
        pt(b, "hall1/projector", "up", NULL, NULL, 0, T0 + (int64_t)r * 1000, (double)r);
    return b;
}

static co_batch_result write_range(fx *f, uint64_t first, uint64_t seq)
{
    cm_batch *b = range_batch(first, seq);
    co_batch_result r = write1(f->s, b);
    drop(b);
    return r;
}

static uint64_t last_seq(co_store *s, const char *agent)
{
    uint64_t v = 12345;
    char err[256] = "";
    int rc = co_store_last_seq(s, agent, &v, err, sizeof err);
    if (rc < 0) fail_msg("last_seq: %s", err);
    if (rc == 0) assert_int_equal(v, 0);
    return v;
}

/* The agent's gaps as compact JSON without reported_ms (checked to be set). */
static void gaps_are(co_store *s, const char *agent, const char *want)
{
    char err[256] = "";
    json_t *j = co_store_gaps(s, agent, NULL, err, sizeof err);
    if (!j) fail_msg("gaps: %s", err);
    size_t i;
    json_t *g;
    json_array_foreach(j, i, g)
    {
        assert_true(json_integer_value(json_object_get(g, "reported_ms")) > T0);
        json_object_del(g, "reported_ms");
    }
    json_is(j, want);
    json_decref(j);
}

/* No two audit rows of an agent share a record. */
static void audit_disjoint(fx *f)
{
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM batches a JOIN batches b"
                                   " ON a.agent_id = b.agent_id AND a.first_seq < b.first_seq"
                                   " AND a.last_seq >= b.first_seq"),
                     0);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM batches WHERE first_seq > last_seq"), 0);
}

static void test_overlap_gaps_audit(void **state)
{
    fx *f = *state;
    assert_int_equal(last_seq(f->s, "agent-1"), 0);
    for (uint64_t i = 1; i <= 3; i++)
        assert_int_equal(write_range(f, 0, i), CO_BATCH_STORED); /* first_seq absent = seq */
    assert_int_equal(last_seq(f->s, "agent-1"), 3);
    counts(f->s, 3, 1, 1);

    /* a duplicate and an overlap write nothing; the overlap learns L = 3 */
    assert_int_equal(write_range(f, 2, 2), CO_BATCH_DUPLICATE);
    assert_int_equal(write_range(f, 1, 3), CO_BATCH_DUPLICATE);
    assert_int_equal(write_range(f, 3, 5), CO_BATCH_OVERLAP);
    assert_int_equal(write_range(f, 1, 4), CO_BATCH_OVERLAP);
    assert_int_equal(last_seq(f->s, "agent-1"), 3);
    counts(f->s, 3, 1, 1);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM batches"), 3);

    /* re-batched from L + 1: stored, no gap */
    assert_int_equal(write_range(f, 4, 5), CO_BATCH_STORED);
    assert_int_equal(last_seq(f->s, "agent-1"), 5);
    gaps_are(f->s, "agent-1", "[]");

    /* 6 never arrives: an implicit gap */
    assert_int_equal(write_range(f, 7, 8), CO_BATCH_STORED);
    gaps_are(f->s, "agent-1",
             "[{\"agent\":\"agent-1\",\"from_seq\":6,\"to_seq\":6,\"reason\":\"missing\"}]");

    /* the agent explains it later: the explicit report replaces the implicit one */
    cm_batch *b = range_batch(9, 9);
    assert_int_equal(cm_batch_add_gap(b, 6, 6, "spool_full"), 0);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    gaps_are(f->s, "agent-1",
             "[{\"agent\":\"agent-1\",\"from_seq\":6,\"to_seq\":6,\"reason\":\"spool_full\"}]");

    /* an explicit report first: a later implicit gap of the same from_seq does not replace it */
    b = range_batch(10, 10);
    assert_int_equal(cm_batch_add_gap(b, 11, 12, "corrupt"), 0);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    assert_int_equal(write_range(f, 13, 13), CO_BATCH_STORED);
    /* a duplicate's and an overlap's gaps are not stored either */
    b = range_batch(13, 13);
    assert_int_equal(cm_batch_add_gap(b, 100, 100, "disk_error"), 0);
    assert_int_equal(write1(f->s, b), CO_BATCH_DUPLICATE);
    b->seq = 14;
    assert_int_equal(write1(f->s, b), CO_BATCH_OVERLAP);
    drop(b);
    gaps_are(f->s, "agent-1",
             "[{\"agent\":\"agent-1\",\"from_seq\":6,\"to_seq\":6,\"reason\":\"spool_full\"},"
             "{\"agent\":\"agent-1\",\"from_seq\":11,\"to_seq\":12,\"reason\":\"corrupt\"}]");

    /* one group commit: the second batch overlaps the first, the third is a duplicate */
    cm_batch *g[3] = {range_batch(14, 16), range_batch(16, 17), range_batch(15, 15)};
    co_batch_result r[3];
    char err[256] = "";
    assert_int_equal(co_store_write(f->s, g, 3, r, err, sizeof err), 0);
    assert_int_equal(r[0], CO_BATCH_STORED);
    assert_int_equal(r[1], CO_BATCH_OVERLAP);
    assert_int_equal(r[2], CO_BATCH_DUPLICATE);
    for (int i = 0; i < 3; i++)
        drop(g[i]);
    assert_int_equal(last_seq(f->s, "agent-1"), 16);

    /* a new agent starting beyond 1: what came before never arrived */
    b = mk("agent-2", "S1", 5);
    b->first_seq = 4;
    pt(b, "hall2/projector", "up", NULL, NULL, 0, T0, 1);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    gaps_are(f->s, "agent-2",
             "[{\"agent\":\"agent-2\",\"from_seq\":1,\"to_seq\":3,\"reason\":\"missing\"}]");
    gaps_are(f->s, "nobody", "[]");
    assert_int_equal(last_seq(f->s, "nobody"), 0);

    /* the audit: one row per stored batch, ranges disjoint, totals equal the sums */
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM batches WHERE agent_id = 'agent-1'"), 9);
    assert_int_equal(fx_sql_int(f, "SELECT sum(samples) FROM batches"
                                   " WHERE agent_id = 'agent-1'"),
                     3 + 2 + 2 + 1 + 1 + 1 + 3);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM agents a WHERE samples !="
                                   " (SELECT sum(samples) FROM batches b"
                                   " WHERE b.agent_id = a.id) OR batches !="
                                   " (SELECT count(*) FROM batches b WHERE b.agent_id = a.id)"),
                     0);
    assert_int_equal(fx_sql_int(f, "SELECT first_seq * 1000 + last_seq FROM batches"
                                   " WHERE agent_id = 'agent-1' ORDER BY first_seq DESC LIMIT 1"),
                     14016);
    audit_disjoint(f);
    counts(f->s, 3 + 2 + 2 + 1 + 1 + 1 + 3 + 1, 2, 2);

    json_t *j = co_store_agents(f->s, NULL, err, sizeof err);
    assert_non_null(j);
    assert_int_equal(json_array_size(j), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *a = json_array_get(j, i);
        assert_true(json_integer_value(json_object_get(a, "last_seen_ms")) > T0);
        json_object_del(a, "last_seen_ms");
    }
    json_is(j, "[{\"id\":\"agent-1\",\"site\":\"S1\",\"version\":\"1.0.0\",\"last_seq\":16,"
               "\"batches\":9,\"samples\":13},"
               "{\"id\":\"agent-2\",\"site\":\"S1\",\"version\":\"1.0.0\",\"last_seq\":5,"
               "\"batches\":1,\"samples\":1}]");
    json_decref(j);

    /* everything survives a reopen */
    reopen(f);
    assert_int_equal(last_seq(f->s, "agent-1"), 16);
    assert_int_equal(write_range(f, 16, 18), CO_BATCH_OVERLAP);
    assert_int_equal(write_range(f, 17, 18), CO_BATCH_STORED);
    audit_disjoint(f);

    /* a batch whose range is upside down is an error, not a result */
    b = range_batch(30, 30);
    b->first_seq = 31;
    assert_int_equal(co_store_write(f->s, &b, 1, r, err, sizeof err), -1);
    assert_non_null(strstr(err, "out of range"));
    drop(b);
    assert_int_equal(last_seq(f->s, "agent-1"), 18);
}

/* The schema of version 1, as collectors before the exactly-once audit created it. */
static const char v1_ddl[] =
    "CREATE TABLE sites(code TEXT PRIMARY KEY, name TEXT, province TEXT, city TEXT,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE agents(id TEXT PRIMARY KEY, site TEXT NOT NULL, last_seq INTEGER NOT NULL,"
    " last_seen_ms INTEGER NOT NULL, version TEXT);"
    "CREATE INDEX agents_by_site ON agents(site);"
    "CREATE TABLE tokens(hash TEXT PRIMARY KEY, agent_id TEXT NOT NULL, site TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE devices(id INTEGER PRIMARY KEY, site TEXT NOT NULL, device_id TEXT NOT NULL,"
    " screen TEXT, kind TEXT, vendor TEXT, model TEXT, serial TEXT, firmware TEXT, profile TEXT,"
    " first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL, UNIQUE(site, device_id));"
    "CREATE INDEX devices_by_device_id ON devices(device_id);"
    "CREATE TABLE series(id INTEGER PRIMARY KEY, device_ref INTEGER NOT NULL, metric TEXT NOT NULL,"
    " labels TEXT NOT NULL, unit TEXT, UNIQUE(device_ref, metric, labels));"
    "CREATE TABLE latest(series_id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, value REAL NOT "
    "NULL);"
    "CREATE TABLE events(id INTEGER PRIMARY KEY, site TEXT NOT NULL, device_ref INTEGER,"
    " ts_ms INTEGER NOT NULL, severity TEXT, code TEXT, text TEXT, source TEXT);"
    "CREATE INDEX events_by_device ON events(device_ref, ts_ms);"
    "CREATE INDEX events_by_site ON events(site, ts_ms);"
    "CREATE TABLE chunks(day INTEGER PRIMARY KEY, table_name TEXT NOT NULL,"
    " rows INTEGER NOT NULL DEFAULT 0);"
    /* what a version-1 collector had stored: agent-1 at seq 7 with one sample */
    "INSERT INTO sites(code, created_ms) VALUES('S1', 1764082800000);"
    "INSERT INTO agents(id, site, last_seq, last_seen_ms, version)"
    " VALUES('agent-1', 'S1', 7, 1764082800000, '0.1.0');"
    "INSERT INTO tokens VALUES('9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',"
    " 'agent-1', 'S1', 1764082800000);"
    "INSERT INTO devices(id, site, device_id, first_seen_ms, last_seen_ms)"
    " VALUES(1, 'S1', 'hall1/projector', 1764082800000, 1764082800000);"
    "INSERT INTO series(id, device_ref, metric, labels, unit) VALUES(1, 1, 'up', '{}', NULL);"
    "INSERT INTO latest VALUES(1, 1764082800000, 1);"
    "CREATE TABLE samples_20251125(series_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL,"
    " value REAL NOT NULL, PRIMARY KEY(series_id, ts_ms)) WITHOUT ROWID;"
    "INSERT INTO samples_20251125 VALUES(1, 1764082800000, 1);"
    "INSERT INTO chunks VALUES(20417, 'samples_20251125', 1);"
    "PRAGMA user_version = 1;";

/* A seq is stored or inside a gap, never both: a reported gap is clipped to what was not
 * stored, and splits an inferred "missing" gap instead of overlapping it. This is the spool
 * filling up while the uploader still had some of the dropped records in flight. */
static void test_gaps_never_cover_stored_records(void **state)
{
    fx *f = *state;
    assert_int_equal(write_range(f, 1, 19), CO_BATCH_STORED);  /* in flight when dropped */
    assert_int_equal(write_range(f, 31, 40), CO_BATCH_STORED); /* 20..30 never came */
    gaps_are(f->s, "agent-1",
             "[{\"agent\":\"agent-1\",\"from_seq\":20,\"to_seq\":30,\"reason\":\"missing\"}]");
    /* the agent reports 1..24 dropped: 1..19 are stored, so only 20..24 are lost to it */
    cm_batch *b = range_batch(41, 41);
    assert_int_equal(cm_batch_add_gap(b, 1, 24, "spool_full"), 0);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    gaps_are(f->s, "agent-1",
             "[{\"agent\":\"agent-1\",\"from_seq\":20,\"to_seq\":24,\"reason\":\"spool_full\"},"
             "{\"agent\":\"agent-1\",\"from_seq\":25,\"to_seq\":30,\"reason\":\"missing\"}]");
    /* a report in the middle of a known gap splits it; one over stored 31..40 and the
     * batch's own seq is clipped away entirely */
    b = range_batch(42, 42);
    assert_int_equal(cm_batch_add_gap(b, 27, 28, "corrupt"), 0);
    assert_int_equal(cm_batch_add_gap(b, 33, 42, "corrupt"), 0);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    gaps_are(f->s, "agent-1",
             "[{\"agent\":\"agent-1\",\"from_seq\":20,\"to_seq\":24,\"reason\":\"spool_full\"},"
             "{\"agent\":\"agent-1\",\"from_seq\":25,\"to_seq\":26,\"reason\":\"missing\"},"
             "{\"agent\":\"agent-1\",\"from_seq\":27,\"to_seq\":28,\"reason\":\"corrupt\"},"
             "{\"agent\":\"agent-1\",\"from_seq\":29,\"to_seq\":30,\"reason\":\"missing\"}]");
    /* gap rows never overlap each other nor a stored range */
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM gaps g JOIN batches b"
                                   " ON g.agent_id = b.agent_id AND g.from_seq <= b.last_seq"
                                   " AND g.to_seq >= b.first_seq"),
                     0);
    audit_disjoint(f);
}

static void test_migration_from_v1(void **state)
{
    fx *f = *state;
    fx_sqlite_only(f, "a version-1 SQLite file migrated (PostgreSQL starts at its own version 1)");
    co_store_close(f->s); /* replace the fixture's fresh database by a version-1 one */
    f->s = NULL;
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, v1_ddl, NULL, NULL, &msg) != SQLITE_OK) fail_msg("v1 ddl: %s", msg);
    sqlite3_close(db);
    assert_int_equal(fx_sql_int(f, "PRAGMA user_version"), 1);

    char err[256] = "";
    if (co_store_open_sqlite(&f->s, f->path, err, sizeof err) < 0) fail_msg("open v1: %s", err);
    assert_int_equal(fx_sql_int(f, "PRAGMA user_version"), 9);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM batches"), 0);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM gaps"), 0);
    assert_int_equal(fx_sql_int(f, "SELECT batches * 1000 + samples FROM agents"), 0);
    /* what was there is still there */
    assert_int_equal(last_seq(f->s, "agent-1"), 7);
    counts(f->s, 1, 1, 1);
    char agent[CM_MAX_NAME + 1], site[CM_MAX_NAME + 1];
    assert_int_equal(co_store_token_lookup(
                         f->s, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                         agent, sizeof agent, site, sizeof site, err, sizeof err),
                     1);
    /* and the exactly-once rules apply from the stored last_seq on */
    assert_int_equal(write_range(f, 7, 7), CO_BATCH_DUPLICATE);
    assert_int_equal(write_range(f, 6, 8), CO_BATCH_OVERLAP);
    assert_int_equal(write_range(f, 8, 9), CO_BATCH_STORED);
    counts(f->s, 3, 1, 1);
    json_t *j = co_store_agents(f->s, NULL, err, sizeof err);
    assert_non_null(j);
    json_t *a = json_array_get(j, 0);
    assert_int_equal(json_integer_value(json_object_get(a, "last_seq")), 9);
    assert_int_equal(json_integer_value(json_object_get(a, "batches")), 1);
    assert_int_equal(json_integer_value(json_object_get(a, "samples")), 2);
    assert_string_equal(json_string_value(json_object_get(a, "version")), "1.0.0");
    json_decref(j);
    gaps_are(f->s, "agent-1", "[]");
    /* opening again does not migrate twice */
    reopen(f);
    assert_int_equal(fx_sql_int(f, "PRAGMA user_version"), 9);
    assert_int_equal(last_seq(f->s, "agent-1"), 9);
}

static void test_tokens(void **state)
{
    fx *f = *state;
    const char *h = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const char *other = "0000000000000000000000000000000000000000000000000000000000000000";
    char err[256] = "", agent[CM_MAX_NAME + 1], site[CM_MAX_NAME + 1];
    assert_int_equal(co_store_token_add(f->s, h, "agent-1", "S1", err, sizeof err), 0);
    assert_int_equal(
        co_store_token_lookup(f->s, h, agent, sizeof agent, site, sizeof site, err, sizeof err), 1);
    assert_string_equal(agent, "agent-1");
    assert_string_equal(site, "S1");
    assert_int_equal(
        co_store_token_lookup(f->s, other, agent, sizeof agent, site, sizeof site, err, sizeof err),
        0);
    assert_int_equal(co_store_token_lookup(f->s, "nothex", agent, sizeof agent, site, sizeof site,
                                           err, sizeof err),
                     0);
    assert_int_equal(co_store_token_add(f->s, h, "agent-2", "S2", err, sizeof err), -1);
    assert_non_null(strstr(err, "exists"));
    assert_int_equal(co_store_token_add(f->s, "ABC", "agent-2", "S2", err, sizeof err), -1);
    char tiny[4];
    assert_int_equal(
        co_store_token_lookup(f->s, h, tiny, sizeof tiny, site, sizeof site, err, sizeof err), -1);
    reopen(f);
    assert_int_equal(
        co_store_token_lookup(f->s, h, agent, sizeof agent, site, sizeof site, err, sizeof err), 1);
}

static void test_failed_write_rolls_back(void **state)
{
    fx *f = *state;
    /* a good batch and a poisoned one in the same commit: neither is written */
    cm_batch *good = sample_batch(1);
    pt(good, "hall1/projector", "up", NULL, NULL, 0, MIDNIGHT + 5, 1); /* creates a new chunk */
    cm_batch *bad = mk("agent-2", "S2", 1);
    pt(bad, "hall9/projector", "up", NULL, NULL, 0, T0, 1);
    pt(bad, "hall9/projector", "lamp_hours", "h", NULL, 0, -5, 1); /* before 1970 */
    cm_batch *g[2] = {good, bad};
    co_batch_result r[2];
    char err[256] = "";
    assert_int_equal(co_store_write(f->s, g, 2, r, err, sizeof err), -1);
    assert_non_null(strstr(err, "out of range"));
    counts(f->s, 0, 0, 0);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM agents"), 0);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM batches"), 0);
    if (!fx_is_pg(f)) { /* PostgreSQL may keep an empty partition made for the batch */
        assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM chunks"), 0);
        assert_int_equal(
            fx_sql_int(f, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'samples_%'"), 0);
    }

    /* a non-finite value is refused the same way */
    bad->series[1].points[0].ts_ms = T0;
    bad->series[1].points[0].value = NAN;
    assert_int_equal(co_store_write(f->s, &bad, 1, r, err, sizeof err), -1);

    /* the good batch alone is stored: seq 1 was not consumed and no stale id was cached */
    assert_int_equal(write1(f->s, good), CO_BATCH_STORED);
    counts(f->s, 4, 3, 1);
    json_t *j = latest_q(f->s, "S1", "hall1/projector", NULL);
    assert_int_equal(json_array_size(j), 3);
    json_decref(j);
    json_t *s = series_q(f->s, "S1", "hall1/projector", "up", 0, MIDNIGHT * 2, 0);
    json_is(json_object_get(json_array_get(s, 0), "points"), "[[1764115200005,1.0]]");
    json_decref(s);
    drop(good);
    drop(bad);

    /* a batch without identity is an error, not a crash */
    cm_batch *anon = malloc(sizeof *anon);
    cm_batch_init(anon);
    assert_int_equal(co_store_write(f->s, &anon, 1, r, err, sizeof err), -1);
    drop(anon);
}

static void test_open_errors(void **state)
{
    (void)state;
    if (fx_pg_wanted()) {
        printf("# skip: SQLite files (a missing folder, :memory:, a newer file's version)\n");
        fflush(stdout);
        skip();
    }
    co_store *s = NULL;
    char err[256] = "";
    assert_int_equal(co_store_open_sqlite(&s, "/nonexistent-dir/x/store.db", err, sizeof err), -1);
    assert_null(s);
    assert_true(strlen(err) > 0);
    assert_int_equal(co_store_open_sqlite(&s, ":memory:", err, sizeof err), -1);

    /* a database from a newer collector is refused, not damaged */
    char path[] = "/tmp/cinemon-test-store-new-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(co_store_open_sqlite(&s, path, err, sizeof err), -1);
    assert_non_null(strstr(err, "newer"));
    unlink(path);
    char p2[64];
    snprintf(p2, sizeof p2, "%s-wal", path);
    unlink(p2);
    snprintf(p2, sizeof p2, "%s-shm", path);
    unlink(p2);
}

/* PostgreSQL: no server there, a malformed connection string: errors, none showing the
 * password (the backend's error text must not echo the conninfo). Needs no server. */
static void test_open_errors_pg(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "host=127.0.0.1 port=1 dbname=x user=x password=Secret-Pw-1 connect_timeout=5",
        "host=127.0.0.1 port=1 password=Secret-Pw-2 nosuchoption=1",
        "postgresql://u:Secret-Pw-3@127.0.0.1:1/x?connect_timeout=5",
        "postgresql://u:Secret-Pw-4@[127.0.0.1:1/x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        co_store *s = NULL;
        char err[512] = "";
        assert_int_equal(co_store_open_pg(&s, bad[i], err, sizeof err), -1);
        assert_null(s);
        assert_true(strlen(err) > 0);
        if (strstr(err, "Secret-Pw"))
            fail_msg("conninfo %zu: error shows the password: %s", i, err);
    }
}

/* JSON text of a series query (compact, sorted keys) for comparing answers. */
static char *series_text(co_store *s, int64_t step, size_t limit)
{
    co_range r = {.from_ms = T0 - 3600000, .to_ms = T0 + 7200000, .limit = limit, .step_ms = step};
    char err[256] = "";
    json_t *j =
        co_store_series(s, "S1", "hall1/sensor", "temperature_celsius", &r, NULL, err, sizeof err);
    if (!j) fail_msg("series: %s", err);
    char *t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return t;
}

static void flush_store(co_store *s)
{
    char err[256] = "";
    if (co_store_flush(s, err, sizeof err) < 0) fail_msg("flush: %s", err);
}

/* The head (samples held in memory until written out, head.h): every read answers the same
 * before and after the flush, including a minute with points in both, the newest `limit`
 * points across both, a sample replaced in the head and one replaced after it was written
 * out. (PostgreSQL writes every sample through: the same answers.) */
static void test_head_reads(void **state)
{
    fx *f = *state;
    assert_int_equal(co_store_set_head(f->s, 1000000, 3600000), 0);
    uint64_t seq = 0;
    /* 30 points every 20 s from T0 (minutes 0..9), then flushed, then 30 more */
    for (int part = 0; part < 2; part++) {
        cm_batch *b = mk("agent-1", "S1", ++seq);
        for (int i = part * 30; i < part * 30 + 30; i++)
            pt(b, "hall1/sensor", "temperature_celsius", "celsius", NULL, 0,
               T0 + (int64_t)i * 20000 + (part ? 10000 : 0), 40.0 + i % 7);
        pt(b, "hall1/sensor", "up", NULL, NULL, 0, T0 + part, 1.0);
        assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
        drop(b);
        if (part == 0) flush_store(f->s);
    }
    /* points 30..59 (+10 s each) are in the head; minute 10 holds 29, 30 (written out) and 30' */
    counts(f->s, 62, 2, 1);
    co_head_usage u;
    assert_int_equal(co_store_head_usage(f->s, &u), 0);
    assert_int_equal(u.points, 31); /* 30 temperatures and one "up" */
    assert_int_equal(u.series, 2);
    assert_true(u.bytes >= 31 * 2 && u.bytes < 31 * 20 * 2);
    assert_int_equal(u.writeouts, 1);
    assert_true(u.writeout_seconds >= 0 && u.writeout_max_seconds <= u.writeout_seconds);
    char *raw = series_text(f->s, 0, 0), *newest = series_text(f->s, 0, 40),
         *m = series_text(f->s, 60000, 0), *h = series_text(f->s, 3600000, 0),
         *m5 = series_text(f->s, 60000, 5);
    json_t *j = latest_q(f->s, "S1", "hall1/sensor", "temperature_celsius");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "ts_ms")),
                     T0 + 59 * 20000 + 10000);
    json_decref(j);
    json_t *pts = json_loads(raw, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(json_array_get(pts, 0), "points")), 60);
    json_decref(pts);
    pts = json_loads(newest, 0, NULL); /* the newest 40: 20 written out, 20 in the head */
    json_t *p0 = json_array_get(json_object_get(json_array_get(pts, 0), "points"), 0);
    assert_int_equal(json_integer_value(json_array_get(p0, 0)), T0 + 20 * 20000);
    json_decref(pts);
    pts = json_loads(h, 0, NULL); /* one hour bucket of all 60 */
    json_t *h0 = json_array_get(json_object_get(json_array_get(pts, 0), "points"), 0);
    assert_int_equal(json_integer_value(json_array_get(h0, 4)), 60);
    json_decref(pts);
    flush_store(f->s);
    counts(f->s, 62, 2, 1);
    assert_int_equal(co_store_head_usage(f->s, &u), 0);
    assert_int_equal(u.points, 0);
    assert_int_equal(u.series, 0);
    assert_int_equal(u.bytes, 0);
    assert_int_equal(u.writeouts, 2);
    /* SQLite's checkpoint thread is there (PostgreSQL checkpoints itself) */
    co_walckpt_stats ws;
    int has_wal = co_store_wal_stats(f->s, &ws);
    assert_int_equal(has_wal, strcmp(co_store_backend(f->s), "sqlite") == 0 ? 0 : 1);
    if (has_wal == 0) assert_int_equal(ws.failed, 0);
    char *raw2 = series_text(f->s, 0, 0), *newest2 = series_text(f->s, 0, 40),
         *m2 = series_text(f->s, 60000, 0), *h2 = series_text(f->s, 3600000, 0),
         *m52 = series_text(f->s, 60000, 5);
    assert_string_equal(raw, raw2);
    assert_string_equal(newest, newest2);
    assert_string_equal(m, m2);
    assert_string_equal(h, h2);
    assert_string_equal(m5, m52);
    free(raw2);
    free(newest2);
    free(m2);
    free(h2);
    free(m52);

    /* replaced: point 5 (written out) and point 59 (in the head, twice) */
    cm_batch *b = mk("agent-1", "S1", ++seq);
    pt(b, "hall1/sensor", "temperature_celsius", "celsius", NULL, 0, T0 + 5 * 20000, 99.0);
    pt(b, "hall1/sensor", "temperature_celsius", "celsius", NULL, 0, T0 + 61 * 20000, 1.0);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    b = mk("agent-1", "S1", ++seq);
    pt(b, "hall1/sensor", "temperature_celsius", "celsius", NULL, 0, T0 + 61 * 20000, 2.0);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    counts(f->s, 63, 2, 1);
    char *after = series_text(f->s, 60000, 0), *after_raw = series_text(f->s, 0, 0);
    j = latest_q(f->s, "S1", "hall1/sensor", "temperature_celsius");
    assert_true(json_real_value(json_object_get(json_array_get(j, 0), "value")) == 2.0);
    json_decref(j);
    flush_store(f->s);
    char *after2 = series_text(f->s, 60000, 0), *after_raw2 = series_text(f->s, 0, 0);
    assert_string_equal(after, after2);
    assert_string_equal(after_raw, after_raw2);
    pts = json_loads(after2, 0, NULL); /* minute 1 (points 3..5): max 99 */
    json_t *m1 = json_array_get(json_object_get(json_array_get(pts, 0), "points"), 1);
    assert_true(json_real_value(json_array_get(m1, 3)) == 99.0);
    json_decref(pts);
    free(after);
    free(after2);
    free(after_raw);
    free(after_raw2);
    free(raw);
    free(newest);
    free(m);
    free(h);
    free(m5);
}

/* The head is written out on its own once it holds max_points; what it held before a crash is
 * in its log and written out at the next open (SQLite: the files copied while the store is
 * open are what a crash leaves). A damaged log record stops the open with its row named. */
static void test_head_log_recovery(void **state)
{
    fx *f = *state;
    fx_sqlite_only(f, "a crash image of the SQLite files");
    assert_int_equal(co_store_set_head(f->s, 45, 3600000), 0);
    for (uint64_t seq = 1; seq <= 4; seq++) {
        cm_batch *b = mk("agent-1", "S1", seq);
        for (int i = 0; i < 20; i++)
            pt(b, "hall1/sensor", "temperature_celsius", "celsius", NULL, 0,
               T0 + (int64_t)((seq - 1) * 20 + (uint64_t)i) * 1000, (double)i);
        assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
        drop(b);
    }
    /* 3 batches (60 points) passed 45 and were written out; the 4th's 20 are in the head */
    char *want = series_text(f->s, 0, 0), *want_m = series_text(f->s, 60000, 0);
    counts(f->s, 80, 1, 1);
    char copy[128], cmd[1024];
    snprintf(copy, sizeof copy, "%s.crash", f->path);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && cp '%s-wal' '%s-wal'", f->path, copy, f->path, copy);
    assert_int_equal(system(cmd), 0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(copy, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM head_log", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);

    co_store *c = NULL;
    char err[256] = "";
    if (co_store_open_sqlite(&c, copy, err, sizeof err) < 0) fail_msg("open copy: %s", err);
    counts(c, 80, 1, 1);
    char *got = series_text(c, 0, 0), *got_m = series_text(c, 60000, 0);
    assert_string_equal(got, want);
    assert_string_equal(got_m, want_m);
    free(got);
    free(got_m);
    co_store_close(c);

    /* a damaged record */
    assert_int_equal(sqlite3_open(copy, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "INSERT INTO head_log(data) VALUES(x'434831ff')", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(co_store_open_sqlite(&c, copy, err, sizeof err), -1);
    assert_non_null(strstr(err, "head_log row"));
    free(want);
    free(want_m);
    snprintf(cmd, sizeof cmd, "rm -f '%s' '%s-wal' '%s-shm'", copy, copy, copy);
    assert_int_equal(system(cmd), 0);
}

/* The series of device dev (metric temperature_celsius of site S1) as JSON text. */
static char *dev_text(co_store *s, const char *dev, int64_t step)
{
    co_range r = {.from_ms = T0 - 3600000, .to_ms = T0 + 7200000, .step_ms = step};
    char err[256] = "";
    json_t *j = co_store_series(s, "S1", dev, "temperature_celsius", &r, NULL, err, sizeof err);
    if (!j) fail_msg("series %s: %s", dev, err);
    char *t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return t;
}

/* Rows of head_log, read beside the open store (WAL: a reader of its own). */
static int head_log_rows(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM head_log", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

#define PART_DEVS 20
#define PART_TEXTS (PART_DEVS * 2)

/* The texts of every device's series, raw and by minute, into t (PART_TEXTS of them). */
static void part_texts(co_store *s, char **t)
{
    for (int d = 0; d < PART_DEVS; d++) {
        char dev[32];
        snprintf(dev, sizeof dev, "hall1/s%02d", d);
        t[2 * d] = dev_text(s, dev, 0);
        t[2 * d + 1] = dev_text(s, dev, 60000);
    }
}

/* A write-out goes on in parts between the batches' commits, each part whole series by
 * ascending id in a transaction of its own; its log records are deleted with its last part.
 * A crash in the middle (the files copied after three of six parts) loses nothing and
 * doubles nothing: the replay drops the points the parts wrote out already. */
static void test_head_parts_recovery(void **state)
{
    fx *f = *state;
    fx_sqlite_only(f, "a crash image of the SQLite files");
    assert_int_equal(co_store_set_head(f->s, 200, 3600000), 0);
    char copy[128], cmd[1024];
    snprintf(copy, sizeof copy, "%s.crash", f->path);
    char *want[PART_TEXTS];
    for (uint64_t seq = 1; seq <= 15; seq++) {
        cm_batch *b = mk("agent-1", "S1", seq);
        for (int d = 0; d < PART_DEVS; d++) {
            char dev[32];
            snprintf(dev, sizeof dev, "hall1/s%02d", d);
            pt(b, dev, "temperature_celsius", "celsius", NULL, 0, T0 + (int64_t)seq * 20000,
               (double)seq + d / 100.0);
        }
        assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
        drop(b);
        if (seq == 12) {
            /* 200 points began a write-out after batch 10; a part of 40 points (twice what a
             * batch adds: 4 series) after each batch since */
            co_head_usage u;
            assert_int_equal(co_store_head_usage(f->s, &u), 0);
            assert_int_equal(u.writeouts, 3);
            assert_int_equal(u.points, 240 - 4 * 10 - 4 * 11 - 4 * 12);
            assert_int_equal(head_log_rows(f->path), 12);
            counts(f->s, 240, PART_DEVS, PART_DEVS);
            part_texts(f->s, want);
            snprintf(cmd, sizeof cmd, "cp '%s' '%s' && cp '%s-wal' '%s-wal'", f->path, copy,
                     f->path, copy);
            assert_int_equal(system(cmd), 0);
        }
    }
    /* the sixth part (after batch 15; 3 series of 14 points made the fifth) ended the
     * write-out: the 10 records it began with are gone */
    assert_int_equal(head_log_rows(f->path), 5);
    counts(f->s, 300, PART_DEVS, PART_DEVS);

    co_store *c = NULL;
    char err[256] = "";
    if (co_store_open_sqlite(&c, copy, err, sizeof err) < 0) fail_msg("open copy: %s", err);
    counts(c, 240, PART_DEVS, PART_DEVS);
    char *got[PART_TEXTS];
    part_texts(c, got);
    for (int i = 0; i < PART_TEXTS; i++) {
        assert_string_equal(got[i], want[i]);
        free(got[i]);
        free(want[i]);
    }
    co_store_close(c);
    assert_int_equal(head_log_rows(copy), 0);
    snprintf(cmd, sizeof cmd, "rm -f '%s' '%s-wal' '%s-shm'", copy, copy, copy);
    assert_int_equal(system(cmd), 0);
}

/* ---------------------------------------------------------------- PostgreSQL's head */

/* An integer a query on the fixture's own PostgreSQL connection reads, WITHOUT the store's
 * head being written out first (fx_sql_int flushes it). */
static int64_t pg_raw_int(fx *f, const char *sql)
{
    PGresult *r = PQexec(f->db, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(f->db));
        PQclear(r);
        fail_msg("%s: %s", sql, msg);
    }
    int64_t v = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

/* PostgreSQL holds new samples in its head too: committed to head_log (one row per commit),
 * not yet in samples, latest and the roll-ups, yet every read shows them; a flush writes them
 * out and empties the log; a late point (older than what the tables hold) is written through
 * at once. */
static void test_head_pg_log_and_write_through(void **state)
{
    fx *f = *state;
    if (!fx_is_pg(f)) {
        printf("# skip: PostgreSQL's head log\n");
        fflush(stdout);
        skip();
    }
    assert_int_equal(co_store_set_head(f->s, 1000000, 3600000), 0);
    for (uint64_t seq = 1; seq <= 2; seq++) {
        cm_batch *b = mk("agent-1", "S1", seq);
        for (int i = 0; i < 10; i++)
            pt(b, "hall1/sensor", "temperature_celsius", "celsius", NULL, 0,
               T0 + (int64_t)((seq - 1) * 10 + (uint64_t)i) * 20000, 40.0 + i);
        assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
        drop(b);
    }
    assert_int_equal(pg_raw_int(f, "SELECT count(*) FROM head_log"), 2);
    assert_int_equal(pg_raw_int(f, "SELECT count(*) FROM samples"), 0);
    assert_int_equal(pg_raw_int(f, "SELECT count(*) FROM latest"), 0);
    assert_int_equal(pg_raw_int(f, "SELECT count(*) FROM rollup_1m"), 0);
    /* the owner of the rows is this store's, and it holds that owner's advisory lock */
    assert_int_equal(pg_raw_int(f, "SELECT count(DISTINCT owner) FROM head_log"), 1);
    assert_int_equal(pg_raw_int(f, "SELECT count(*) FROM pg_locks l, (SELECT DISTINCT owner FROM"
                                   " head_log) h WHERE l.locktype = 'advisory' AND l.granted"
                                   " AND l.classid = 1668114532 AND l.objsubid = 2"
                                   " AND l.objid = h.owner::oid"),
                     1);
    counts(f->s, 20, 1, 1);
    char *raw = series_text(f->s, 0, 0), *m = series_text(f->s, 60000, 0),
         *h = series_text(f->s, 3600000, 5);
    json_t *j = series_q(f->s, "S1", "hall1/sensor", NULL, T0, T0 + 3600000, 0);
    assert_int_equal(json_array_size(json_object_get(json_array_get(j, 0), "points")), 20);
    json_decref(j);
    j = latest_q(f->s, "S1", "hall1/sensor", "temperature_celsius");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "ts_ms")),
                     T0 + 19 * 20000);
    json_decref(j);

    flush_store(f->s);
    assert_int_equal(pg_raw_int(f, "SELECT count(*) FROM head_log"), 0);
    assert_int_equal(pg_raw_int(f, "SELECT count(*) FROM samples"), 20);
    assert_int_equal(pg_raw_int(f, "SELECT sum(n) FROM rollup_1m"), 20);
    assert_int_equal(pg_raw_int(f, "SELECT ts_ms FROM latest"), T0 + 19 * 20000);
    char *raw2 = series_text(f->s, 0, 0), *m2 = series_text(f->s, 60000, 0),
         *h2 = series_text(f->s, 3600000, 5);
    assert_string_equal(raw, raw2);
    assert_string_equal(m, m2);
    assert_string_equal(h, h2);

    /* late (between two stored points) and newer: the late one straight to the tables */
    cm_batch *b = mk("agent-1", "S1", 3);
    pt(b, "hall1/sensor", "temperature_celsius", "celsius", NULL, 0, T0 + 5 * 20000 + 1, 7.0);
    pt(b, "hall1/sensor", "temperature_celsius", "celsius", NULL, 0, T0 + 30 * 20000, 8.0);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    assert_int_equal(pg_raw_int(f, "SELECT count(*) FROM samples"), 21);
    assert_int_equal(pg_raw_int(f, "SELECT count(*) FROM head_log"), 1);
    assert_int_equal(pg_raw_int(f, "SELECT ts_ms FROM latest"), T0 + 19 * 20000);
    counts(f->s, 22, 1, 1);
    j = latest_q(f->s, "S1", "hall1/sensor", "temperature_celsius");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "ts_ms")),
                     T0 + 30 * 20000);
    json_decref(j);
    free(raw);
    free(m);
    free(h);
    free(raw2);
    free(m2);
    free(h2);
    raw = series_text(f->s, 60000, 0);
    flush_store(f->s);
    raw2 = series_text(f->s, 60000, 0);
    assert_string_equal(raw, raw2);
    free(raw);
    free(raw2);
    assert_int_equal(pg_raw_int(f, "SELECT count(*) FROM samples"), 22);
    assert_int_equal(pg_raw_int(f, "SELECT sum(n) FROM rollup_1m"), 22);
}

/* The log of a collector that is gone (no session holds its owner's advisory lock) is
 * written out by another one, once: a copy of a live store's log row under an owner id nobody
 * holds stands for it. The live store's own row stays (its lock is held), a row that cannot
 * be read stays (logged), the orphan's samples reach the tables, roll-ups and the reads, and
 * when the live store writes the same samples out too, nothing is counted twice. */
static void test_head_adopt_orphan_pg(void **state)
{
    fx *f = *state;
    if (!fx_is_pg(f)) {
        printf("# skip: PostgreSQL: several collectors on one database\n");
        fflush(stdout);
        skip();
    }
    char err[256] = "";
    assert_int_equal(co_store_set_head(f->s, 1000000, 3600000), 0);
    co_store *other = NULL;
    if (co_store_open_pg(&other, f->conninfo, err, sizeof err) < 0) fail_msg("open: %s", err);
    assert_int_equal(co_store_set_head(other, 1000000, 3600000), 0);
    cm_batch *b = mk("agent-2", "S2", 1);
    for (int i = 0; i < 30; i++)
        pt(b, "hall2/sensor", "temperature_celsius", "celsius", NULL, 0, T0 + (int64_t)i * 10000,
           20.0 + i % 5);
    assert_int_equal(write1(other, b), CO_BATCH_STORED);
    drop(b);
    b = mk("agent-1", "S1", 1); /* the first store's own, in its head */
    pt(b, "hall1/sensor", "temperature_celsius", "celsius", NULL, 0, T0, 30.0);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    assert_int_equal(pg_raw_int(f, "SELECT count(*) FROM head_log"), 2);
    assert_int_equal(pg_raw_int(f, "SELECT count(DISTINCT owner) FROM head_log"), 2);

    /* two owner ids nobody holds: the orphan (a copy of the other store's row) and a bad one */
    int64_t live = pg_raw_int(f, "SELECT min(owner) FROM head_log");
    int64_t orphan = 0, bad = 0;
    for (int64_t id = 1000; !bad; id++) {
        char q[256];
        snprintf(q, sizeof q,
                 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %lld::oid"
                 " AND objsubid = 2",
                 (long long)id);
        if (pg_raw_int(f, q) || id == live) continue;
        snprintf(q, sizeof q, "SELECT count(*) FROM head_log WHERE owner = %lld", (long long)id);
        if (pg_raw_int(f, q)) continue;
        if (!orphan)
            orphan = id;
        else
            bad = id;
    }
    char sql[512];
    /* the other store's row: the one that is not the first store's (whose row holds 1 point,
     * the other's 30) */
    snprintf(sql, sizeof sql,
             "INSERT INTO head_log(owner, data) SELECT %lld, data FROM head_log"
             " ORDER BY length(data) DESC LIMIT 1",
             (long long)orphan);
    fx_exec(f, sql);
    snprintf(sql, sizeof sql, "INSERT INTO head_log(owner, data) VALUES(%lld, '\\x434831ff')",
             (long long)bad);
    fx_exec(f, sql);
    assert_int_equal(pg_raw_int(f, "SELECT count(*) FROM head_log"), 4);

    /* the first store writes out its head and the orphan's log */
    flush_store(f->s);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM head_log WHERE owner = %lld",
             (long long)orphan);
    assert_int_equal(pg_raw_int(f, sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM head_log WHERE owner = %lld", (long long)bad);
    assert_int_equal(pg_raw_int(f, sql), 1);
    assert_int_equal(pg_raw_int(f, "SELECT count(*) FROM head_log"), 2); /* the other's, the bad */
#define S2_SAMPLES                                                                                 \
    "SELECT count(*) FROM samples x JOIN series s ON s.id = x.series_id"                           \
    " JOIN devices d ON d.id = s.device_ref WHERE d.site = 'S2'"
#define S2_ROLLUP                                                                                  \
    "SELECT coalesce(sum(r.n), 0) FROM rollup_1m r JOIN series s ON s.id = r.series_id"            \
    " JOIN devices d ON d.id = s.device_ref WHERE d.site = 'S2'"
    assert_int_equal(pg_raw_int(f, S2_SAMPLES), 30);
    assert_int_equal(pg_raw_int(f, S2_ROLLUP), 30);
    assert_int_equal(pg_raw_int(f, "SELECT count(*) FROM samples"), 31);
    json_t *j = series_q(f->s, "S2", "hall2/sensor", NULL, T0, T0 + 3600000, 0);
    assert_int_equal(json_array_size(json_object_get(json_array_get(j, 0), "points")), 30);
    json_decref(j);
    counts(f->s, 31, 2, 2);

    /* the other store writes its head out as it closes: the same samples, counted once */
    co_store_close(other);
    assert_int_equal(pg_raw_int(f, S2_SAMPLES), 30);
    assert_int_equal(pg_raw_int(f, S2_ROLLUP), 30);
    assert_int_equal(pg_raw_int(f, "SELECT sum(n) FROM rollup_1h"), 31);
    assert_int_equal(pg_raw_int(f, "SELECT count(*) FROM head_log"), 1); /* the bad one */
    j = series_q(f->s, "S2", "hall2/sensor", NULL, T0, T0 + 3600000, 0);
    assert_int_equal(json_array_size(json_object_get(json_array_get(j, 0), "points")), 30);
    json_decref(j);
    counts(f->s, 31, 2, 2);
#undef S2_SAMPLES
#undef S2_ROLLUP
}

/* Readers while the writer commits, writes its head out and creates a day partition for
 * every batch (each batch's points fall on a new UTC day): no read waits for ever (a read
 * holds the head's read lock, the writer's commit its write lock, a new partition a lock on
 * samples), and every read sees each commit and each write-out wholly or not at all: the
 * counts never fall, never pass what is committed, and a series read agrees with them. */
#define CONC_BATCHES 40
#define CONC_POINTS 5
typedef struct conc {
    co_store *s;
    pthread_mutex_t mu;
    int committed; /* batches whose write returned */
    int done;
    char fail[512];
} conc;

static int conc_committed(conc *c)
{
    pthread_mutex_lock(&c->mu);
    int n = c->committed;
    pthread_mutex_unlock(&c->mu);
    return n;
}

static void *conc_reader(void *arg)
{
    conc *c = arg;
    int64_t last = 0;
    for (int round = 0; !c->fail[0]; round++) {
        pthread_mutex_lock(&c->mu);
        int before = c->committed, done = c->done;
        pthread_mutex_unlock(&c->mu);
        if (done && round > 0) break;
        int64_t n = -1;
        char err[256] = "";
        if (co_store_counts(c->s, &n, NULL, NULL, err, sizeof err) < 0) {
            snprintf(c->fail, sizeof c->fail, "counts: %s", err);
            break;
        }
        co_range r = {T0, T0 + (int64_t)(CONC_BATCHES + 1) * 86400000, 0, 0};
        json_t *j = co_store_series(c->s, "S1", "hall1/sensor", NULL, &r, NULL, err, sizeof err);
        if (!j) {
            snprintf(c->fail, sizeof c->fail, "series: %s", err);
            break;
        }
        int64_t pts = (int64_t)json_array_size(json_object_get(json_array_get(j, 0), "points"));
        json_decref(j);
        int after = conc_committed(c);
        /* +1: a write whose commit a read saw may not have returned yet */
        if (n < last || n < (int64_t)before * CONC_POINTS ||
            n > (int64_t)(after + 1) * CONC_POINTS || pts < (int64_t)before * CONC_POINTS ||
            pts > (int64_t)(after + 1) * CONC_POINTS || n % CONC_POINTS || pts % CONC_POINTS)
            snprintf(c->fail, sizeof c->fail,
                     "read %d: counts %lld, series %lld points, last %lld, committed %d..%d", round,
                     (long long)n, (long long)pts, (long long)last, before, after);
        last = n;
    }
    return NULL;
}

static void test_head_pg_concurrent_reads(void **state)
{
    fx *f = *state;
    if (!fx_is_pg(f)) {
        printf("# skip: PostgreSQL's locks (partitions, head)\n");
        fflush(stdout);
        skip();
    }
    assert_int_equal(co_store_set_head(f->s, 3 * CONC_POINTS, 3600000), 0);
    conc c = {.s = f->s};
    pthread_mutex_init(&c.mu, NULL);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, conc_reader, &c), 0);
    for (int i = 0; i < CONC_BATCHES && !c.fail[0]; i++) {
        cm_batch *b = mk("agent-1", "S1", (uint64_t)i + 1);
        for (int k = 0; k < CONC_POINTS; k++)
            pt(b, "hall1/sensor", "temperature_celsius", "celsius", NULL, 0,
               T0 + (int64_t)i * 86400000 + k * 1000, k);
        co_batch_result res = 99;
        char err[256] = "";
        if (co_store_write(f->s, &b, 1, &res, err, sizeof err) < 0 || res != CO_BATCH_STORED)
            snprintf(c.fail, sizeof c.fail, "write %d: %s", i, err);
        drop(b);
        pthread_mutex_lock(&c.mu);
        c.committed++;
        pthread_mutex_unlock(&c.mu);
    }
    pthread_mutex_lock(&c.mu);
    c.done = 1;
    pthread_mutex_unlock(&c.mu);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&c.mu);
    if (c.fail[0]) fail_msg("%s", c.fail);
    counts(f->s, CONC_BATCHES * CONC_POINTS, 1, 1);
    assert_true(fx_day_table(f, (T0 + (int64_t)(CONC_BATCHES - 1) * 86400000) / 86400000));
}

/* A site's last_seen_ms comes from its devices too: one agent id writing two sites (a
 * forwarder upstream) names only the last in its row, and the first site still has a time. */
static void test_sites_last_seen_from_devices(void **state)
{
    fx *f = *state;
    cm_batch *b = mk("fwd-1", "S1", 1);
    pt(b, "hall1/projector", "lamp_hours", "h", NULL, 0, T0, 1.0);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    b = mk("fwd-1", "S2", 2);
    pt(b, "hall1/projector", "lamp_hours", "h", NULL, 0, T0, 2.0);
    assert_int_equal(write1(f->s, b), CO_BATCH_STORED);
    drop(b);
    char err[256] = "";
    json_t *j = co_store_sites(f->s, NULL, err, sizeof err);
    if (!j) fail_msg("sites: %s", err);
    assert_int_equal(json_array_size(j), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *seen = json_object_get(json_array_get(j, i), "last_seen_ms");
        assert_true(json_is_integer(seen));
        assert_true(json_integer_value(seen) > T0);
    }
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_and_read_back, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_seq, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_midnight_chunks, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_labels_order_insensitive, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_persists, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_overlap_gaps_audit, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_gaps_never_cover_stored_records, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_migration_from_v1, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_tokens, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_rolls_back, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_open_errors_pg),
        cmocka_unit_test_setup_teardown(test_events_query, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_screens, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_rollups, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_head_reads, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_sites_last_seen_from_devices, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_head_log_recovery, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_head_parts_recovery, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_head_pg_log_and_write_through, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_head_adopt_orphan_pg, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_head_pg_concurrent_reads, store_fx_setup,
                                        store_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_store_summary.c — the store's summaries of tiered forwarding (store.h, store_summary.c
 * and store_pg_summary.c; SQLite, and PostgreSQL when CINEMON_TEST_PG is set, see
 * store_fixture.h): a closed hour's roll-ups read with the head's samples added, a summary
 * batch upserted idempotently (devices not seen, rollup_1h replaced by (series, hour), latest
 * when newer, alerts by (rule, site, device, labels, started_ms) with their history, compliance
 * figures kept apart from this collector's own recomputation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_fixture.h"

#define H 3600000LL
#define H0 1764079200000LL /* 2025-11-25T14:00:00Z */
#define DAY "2025-11-25"

typedef store_fx fx;

/* ---------------------------------------------------------------- helpers */

static cm_batch *mk(const char *agent, const char *site, uint64_t seq)
{
    cm_batch *b = malloc(sizeof *b);
    cm_batch_init(b);
    assert_int_equal(cm_batch_set_agent(b, agent, "1.0.0", site), 0);
    b->seq = seq;
    b->sent_ms = H0;
    return b;
}

static void drop(cm_batch *b)
{
    cm_batch_free(b);
    free(b);
}

static void write1(co_store *s, cm_batch *b)
{
    co_batch_result r = 99;
    char err[256] = "";
    if (co_store_write(s, &b, 1, &r, err, sizeof err) < 0) fail_msg("write: %s", err);
    assert_int_equal(r, CO_BATCH_STORED);
}

static void put(co_store *s, const cm_batch *b, int64_t now)
{
    char err[256] = "";
    if (co_store_summary_put(s, b, now, err, sizeof err) < 0) fail_msg("summary put: %s", err);
}

/* What co_store_hour_rollups gave, as "site|device|metric|labels|unit|n|sum|min|max|latest". */
typedef struct got {
    char rows[16][512];
    size_t n;
} got;

static int on_rollup(void *ud, const co_hour_rollup *r)
{
    got *g = ud;
    if (g->n == 16) return 1;
    snprintf(g->rows[g->n++], sizeof g->rows[0], "%s|%s|%s|%s|%s|%lld|%g|%g|%g|%s%lld:%g", r->site,
             r->device, r->metric, r->labels_json, r->unit ? r->unit : "-", (long long)r->n, r->sum,
             r->min, r->max, r->has_latest ? "" : "none ", (long long)r->latest_ts,
             r->latest_value);
    return 0;
}

static got hour(co_store *s, int64_t h, const char *site)
{
    got g = {0};
    char err[256] = "";
    if (co_store_hour_rollups(s, h, site, on_rollup, &g, err, sizeof err) != 0)
        fail_msg("hour roll-ups: %s", err);
    return g;
}

/* The one series of (site, device, metric) as co_store_series gives it with step. */
static json_t *series1(co_store *s, const char *site, const char *device, const char *metric,
                       int64_t step)
{
    co_range r = {.from_ms = H0 - 10 * H, .to_ms = H0 + 10 * H, .limit = 1000, .step_ms = step};
    char err[256] = "";
    json_t *a = co_store_series(s, site, device, metric, &r, NULL, err, sizeof err);
    if (!a) fail_msg("series: %s", err);
    assert_int_equal(json_array_size(a), 1);
    json_t *o = json_incref(json_array_get(a, 0));
    json_decref(a);
    return o;
}

static void json_is(json_t *got_, const char *want)
{
    json_error_t je;
    json_t *w = json_loads(want, 0, &je);
    if (!w) fail_msg("bad expected JSON: %s", je.text);
    if (!json_equal(got_, w)) {
        char *g = json_dumps(got_, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(stderr, "got:  %s\nwant: %s\n", g, want);
        free(g);
        json_decref(w);
        fail_msg("JSON differs");
    }
    json_decref(w);
}

/* A summary batch of site S1 with one series' roll-ups: buckets (hour, n, sum, min, max). */
static cm_batch *rollup_batch(uint64_t seq, const cm_bucket *bk, size_t nb, int64_t latest_ts,
                              double latest_v)
{
    cm_batch *b = mk("chain-1", "S1", seq);
    cm_device_info d = {
        .id = "hall1/projector", .screen = "hall1", .kind = "projector", .vendor = "Test"};
    assert_int_equal(cm_batch_add_device(b, &d), 0);
    cm_label l = {"sensor", "Intake"};
    cm_rollup r = {.device = "hall1/projector",
                   .metric = "temperature_celsius",
                   .unit = "C",
                   .labels = &l,
                   .nlabels = 1,
                   .buckets = (cm_bucket *)bk,
                   .nbuckets = nb,
                   .has_latest = latest_ts != 0,
                   .latest = {latest_ts, latest_v}};
    assert_int_equal(cm_batch_add_rollup(b, &r), 0);
    return b;
}

/* ---------------------------------------------------------------- an hour's roll-ups */

/* Samples of two hours and two sites, some written out to the tables and some still in the
 * head: an hour's roll-ups add both, per series, with each series' latest point. */
static void test_hour_rollups_with_head(void **state)
{
    fx *f = *state;
    cm_label l = {"sensor", "Intake"};
    cm_batch *b = mk("a1", "S1", 1);
    for (int i = 0; i < 6; i++) /* 14:00 .. 14:50 */
        assert_int_equal(cm_batch_add_point(b, "hall1/projector", "temperature_celsius", "C", &l, 1,
                                            H0 + i * 600000, 20.0 + i),
                         0);
    assert_int_equal(
        cm_batch_add_point(b, "hall1/projector", "light_source_hours", "h", NULL, 0, H0, 1000.0),
        0);
    write1(f->s, b);
    drop(b);
    char err[256] = "";
    assert_int_equal(co_store_flush(f->s, err, sizeof err), 0); /* these in the tables */
    b = mk("a1", "S1", 2);
    assert_int_equal(cm_batch_add_point(b, "hall1/projector", "temperature_celsius", "C", &l, 1,
                                        H0 + 3500000, 30.0),
                     0); /* 14:58:20, in the head */
    assert_int_equal(cm_batch_add_point(b, "hall1/projector", "temperature_celsius", "C", &l, 1,
                                        H0 + H + 60000, 40.0),
                     0); /* 15:01 */
    write1(f->s, b);
    drop(b);
    b = mk("a2", "S2", 1);
    assert_int_equal(
        cm_batch_add_point(b, "hall9/projector", "light_source_hours", "h", NULL, 0, H0 + 5, 7.5),
        0);
    write1(f->s, b);
    drop(b);

    got g = hour(f->s, H0, NULL);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.rows[0], "S1|hall1/projector|light_source_hours|{}|h|1|1000|1000|1000|"
                                   "1764079200000:1000");
    assert_string_equal(g.rows[1], "S1|hall1/projector|temperature_celsius|{\"sensor\":\"Intake\"}"
                                   "|C|7|165|20|30|1764082860000:40");
    assert_string_equal(
        g.rows[2], "S2|hall9/projector|light_source_hours|{}|h|1|7.5|7.5|7.5|1764079200005:7.5");
    g = hour(f->s, H0, "S2");
    assert_int_equal(g.n, 1);
    assert_non_null(strstr(g.rows[0], "S2|hall9"));
    g = hour(f->s, H0 + H, NULL);
    assert_int_equal(g.n, 1);
    assert_non_null(strstr(g.rows[0], "temperature_celsius"));
    assert_non_null(strstr(g.rows[0], "|1|40|40|40|"));
    assert_int_equal(hour(f->s, H0 - H, NULL).n, 0);
    /* the same once everything is written out */
    assert_int_equal(co_store_flush(f->s, err, sizeof err), 0);
    g = hour(f->s, H0, "S1");
    assert_int_equal(g.n, 2);
    assert_non_null(strstr(g.rows[1], "|C|7|165|20|30|1764082860000:40"));
    /* not on the hour: refused */
    assert_int_equal(co_store_hour_rollups(f->s, H0 + 1, NULL, on_rollup, &g, err, sizeof err), -1);
}

/* ---------------------------------------------------------------- roll-ups upserted */

static void test_rollups_upserted(void **state)
{
    fx *f = *state;
    cm_bucket bk[] = {{H0, 6, 135, 20, 25}, {H0 + H, 2, 81, 40, 41}};
    cm_batch *b = rollup_batch(1, bk, 2, H0 + H + 1000, 41);
    put(f->s, b, H0 + 2 * H);
    put(f->s, b, H0 + 2 * H); /* stored twice: nothing changes */
    drop(b);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM rollup_1h"), 2);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM series"), 1);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM devices"), 1);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM sites WHERE code = 'S1'"), 1);
    /* the inventory is taken, but the device is not seen (the absence rules never watch it) */
    assert_int_equal(fx_sql_int(f, "SELECT last_seen_ms FROM devices"), 0);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM devices WHERE screen = 'hall1' AND"
                                   " kind = 'projector' AND vendor = 'Test'"),
                     1);
    json_t *o = series1(f->s, "S1", "hall1/projector", "temperature_celsius", H);
    json_is(json_object_get(o, "points"),
            "[[1764079200000, 22.5, 20.0, 25.0, 6], [1764082800000, 40.5, 40.0, 41.0, 2]]");
    json_is(json_object_get(o, "labels"), "{\"sensor\": \"Intake\"}");
    json_decref(o);
    /* an hour sent again (late samples below) replaces its bucket; latest only when newer */
    cm_bucket again[] = {{H0 + H, 3, 123, 40, 42}};
    b = rollup_batch(2, again, 1, H0 + H + 500, 99);
    put(f->s, b, H0 + 2 * H);
    drop(b);
    o = series1(f->s, "S1", "hall1/projector", "temperature_celsius", H);
    json_is(json_object_get(o, "points"),
            "[[1764079200000, 22.5, 20.0, 25.0, 6], [1764082800000, 41.0, 40.0, 42.0, 3]]");
    json_decref(o);
    char err[256] = "";
    json_t *lt = co_store_latest(f->s, "S1", "hall1/projector", NULL, NULL, err, sizeof err);
    assert_non_null(lt);
    assert_int_equal(json_array_size(lt), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(lt, 0), "ts_ms")),
                     H0 + H + 1000);
    assert_true(json_real_value(json_object_get(json_array_get(lt, 0), "value")) == 41.0);
    json_decref(lt);
    b = rollup_batch(3, again, 1, H0 + H + 2000, 43); /* newer: taken */
    put(f->s, b, H0 + 2 * H);
    drop(b);
    assert_int_equal(fx_sql_int(f, "SELECT ts_ms FROM latest"), H0 + H + 2000);
    /* a device that also reports samples keeps its last_seen_ms */
    cm_batch *s = mk("a1", "S1", 1);
    cm_label l = {"sensor", "Intake"};
    assert_int_equal(
        cm_batch_add_point(s, "hall1/projector", "fan_speed_rpm", NULL, &l, 1, H0 + 3 * H, 1200),
        0);
    write1(f->s, s);
    drop(s);
    int64_t seen = fx_sql_int(f, "SELECT last_seen_ms FROM devices");
    assert_true(seen > 0);
    b = rollup_batch(4, bk, 1, 0, 0);
    put(f->s, b, H0 + 4 * H);
    drop(b);
    assert_int_equal(fx_sql_int(f, "SELECT last_seen_ms FROM devices"), seen);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM devices"), 1);
}

/* ---------------------------------------------------------------- alerts upserted */

static cm_alert_entry alert(const char *state, int64_t started, int64_t firing, int64_t resolved,
                            int64_t updated, const char *severity)
{
    static cm_label l = {"sensor", "Intake"};
    return (cm_alert_entry){.rule = "projector_temperature_ambient",
                            .screen = "hall1",
                            .device = "hall1/projector",
                            .labels = &l,
                            .nlabels = 1,
                            .severity = severity,
                            .state = state,
                            .value = 37.0,
                            .threshold = 35.0,
                            .text = "intake 37 C",
                            .started_ms = started,
                            .firing_ms = firing,
                            .resolved_ms = resolved,
                            .updated_ms = updated};
}

static void put_alert(co_store *s, uint64_t seq, const cm_alert_entry *a)
{
    cm_batch *b = mk("chain-1", "S1", seq);
    assert_int_equal(cm_batch_add_alert(b, a), 0);
    put(s, b, H0 + 5 * H);
    drop(b);
}

static json_t *alerts_of(co_store *s)
{
    co_alert_filter flt = {.site = "S1", .limit = 100};
    char err[256] = "";
    json_t *a = co_store_alerts(s, &flt, NULL, err, sizeof err);
    if (!a) fail_msg("alerts: %s", err);
    return a;
}

static void test_alerts_upserted(void **state)
{
    fx *f = *state;
    cm_alert_entry firing = alert("firing", H0, H0 + 60000, 0, H0 + 60000, "warning");
    put_alert(f->s, 1, &firing);
    put_alert(f->s, 1, &firing); /* twice: one alert, one history */
    json_t *a = alerts_of(f->s);
    assert_int_equal(json_array_size(a), 1);
    json_t *x = json_array_get(a, 0);
    assert_string_equal(json_string_value(json_object_get(x, "state")), "firing");
    assert_string_equal(json_string_value(json_object_get(x, "screen")), "hall1");
    assert_int_equal(json_integer_value(json_object_get(x, "started_ms")), H0);
    assert_int_equal(json_integer_value(json_object_get(x, "firing_ms")), H0 + 60000);
    assert_true(json_is_null(json_object_get(x, "resolved_ms")));
    json_is(json_object_get(x, "labels"), "{\"sensor\": \"Intake\"}");
    int64_t id = json_integer_value(json_object_get(x, "id"));
    json_decref(a);
    /* pending then firing: two history rows */
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM alert_history"), 2);

    /* severity up, then resolved; an older state arriving late changes nothing */
    cm_alert_entry crit = alert("firing", H0, H0 + 60000, 0, H0 + 120000, "critical");
    put_alert(f->s, 2, &crit);
    cm_alert_entry resolved =
        alert("resolved", H0, H0 + 60000, H0 + 600000, H0 + 600000, "critical");
    put_alert(f->s, 3, &resolved);
    put_alert(f->s, 4, &firing);
    put_alert(f->s, 5, &resolved);
    char err[256] = "";
    json_t *one = co_store_alert(f->s, id, NULL, err, sizeof err);
    assert_non_null(one);
    assert_string_equal(json_string_value(json_object_get(one, "state")), "resolved");
    assert_string_equal(json_string_value(json_object_get(one, "severity")), "critical");
    assert_int_equal(json_integer_value(json_object_get(one, "resolved_ms")), H0 + 600000);
    json_t *hist = json_object_get(one, "history");
    assert_int_equal(json_array_size(hist), 4); /* pending, firing, critical, resolved */
    json_decref(one);

    /* a new alert of the same rule, device and labels: a second row; and a new open one while
     * an older one is open resolves the older */
    cm_alert_entry next = alert("firing", H0 + H, H0 + H, 0, H0 + H, "warning");
    put_alert(f->s, 6, &next);
    cm_alert_entry after = alert("pending", H0 + 2 * H, 0, 0, H0 + 2 * H, "warning");
    put_alert(f->s, 7, &after);
    a = alerts_of(f->s);
    assert_int_equal(json_array_size(a), 3);
    size_t open = 0, resolved_n = 0;
    json_t *v;
    size_t i;
    json_array_foreach(a, i, v)
    {
        const char *st = json_string_value(json_object_get(v, "state"));
        if (!strcmp(st, "resolved"))
            resolved_n++;
        else
            open++;
    }
    assert_int_equal(open, 1);
    assert_int_equal(resolved_n, 2);
    json_decref(a);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM alerts WHERE started_ms = 1764082800000"
                                   " AND state = 'resolved' AND resolved_ms = 1764086400000"),
                     1);
    /* the open one is what co_store_alerts_active (the judge's restore) finds */
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM alerts WHERE state <> 'resolved'"), 1);
    /* a null value stays null */
    cm_alert_entry silent = {.rule = "device_silent",
                             .device = "hall2/cp950",
                             .severity = "warning",
                             .state = "firing",
                             .value = NAN,
                             .threshold = 180,
                             .started_ms = H0,
                             .firing_ms = H0,
                             .updated_ms = H0};
    put_alert(f->s, 8, &silent);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM alerts WHERE rule = 'device_silent' AND"
                                   " value IS NULL AND threshold = 180 AND screen = '' AND"
                                   " labels = '{}'"),
                     1);
}

/* ---------------------------------------------------------------- compliance */

typedef struct crow {
    char s[8][96];
    size_t n;
} crow;

static int on_received(void *ud, const co_compliance_row *r)
{
    crow *c = ud;
    if (c->n < 8)
        snprintf(c->s[c->n++], sizeof c->s[0], "%s|%s|%s|%lld|%lld", r->site, r->screen,
                 r->quantity, (long long)r->in_ms, (long long)r->measured_ms);
    return 0;
}

static int on_row(void *ud, const co_compliance_row *r, const char *province, const char *city)
{
    (void)province;
    (void)city;
    return on_received(ud, r);
}

static void test_compliance_kept_apart(void **state)
{
    fx *f = *state;
    char err[256] = "";
    crow c = {0};
    /* nothing received yet: no rows, no error (the table may not exist) */
    assert_int_equal(co_store_compliance_received(f->s, DAY, on_received, &c, err, sizeof err), 0);
    assert_int_equal(c.n, 0);
    cm_batch *b = mk("chain-1", "S1", 1);
    cm_compliance_entry e1 = {"hall1", DAY, "luminance", 3000, 4000};
    cm_compliance_entry e2 = {"hall1", DAY, "spl", 0, 100};
    cm_compliance_entry e3 = {"hall2", "2025-11-24", "white", 5, 5};
    assert_int_equal(cm_batch_add_compliance(b, &e1), 0);
    assert_int_equal(cm_batch_add_compliance(b, &e2), 0);
    assert_int_equal(cm_batch_add_compliance(b, &e3), 0);
    put(f->s, b, H0 + 7 * H);
    put(f->s, b, H0 + 7 * H);
    drop(b);
    int64_t updated = 0;
    assert_int_equal(co_store_compliance_rows(f->s, DAY, NULL, NULL, NULL, NULL, on_row, &c,
                                              &updated, err, sizeof err),
                     0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.s[0], "S1|hall1|luminance|3000|4000");
    assert_int_equal(updated, H0 + 7 * H);
    /* this collector recomputes the day from its own samples: the table is replaced, the
     * figures received stay apart for the recomputation to add back (compliance.c) */
    co_compliance_row own = {"S9", "hall1", "luminance", 1, 2};
    assert_int_equal(co_store_compliance_put(f->s, DAY, &own, 1, H0 + 8 * H, err, sizeof err), 0);
    c.n = 0;
    assert_int_equal(co_store_compliance_received(f->s, DAY, on_received, &c, err, sizeof err), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.s[0], "S1|hall1|luminance|3000|4000");
    assert_string_equal(c.s[1], "S1|hall1|spl|0|100");
    /* a figure sent again replaces the one received */
    b = mk("chain-1", "S1", 2);
    e1.in_ms = 3500;
    assert_int_equal(cm_batch_add_compliance(b, &e1), 0);
    put(f->s, b, H0 + 9 * H);
    drop(b);
    c.n = 0;
    assert_int_equal(co_store_compliance_received(f->s, DAY, on_received, &c, err, sizeof err), 0);
    assert_string_equal(c.s[0], "S1|hall1|luminance|3500|4000");
    c.n = 0;
    assert_int_equal(co_store_compliance_rows(f->s, DAY, "S1", NULL, NULL, NULL, on_row, &c, NULL,
                                              err, sizeof err),
                     0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.s[0], "S1|hall1|luminance|3500|4000");
    c.n = 0;
    assert_int_equal(
        co_store_compliance_received(f->s, "2025-11-24", on_received, &c, err, sizeof err), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.s[0], "S1|hall2|white|5|5");
}

/* One transaction: a batch with a bad entry leaves nothing behind. */
static void test_summary_put_atomic(void **state)
{
    fx *f = *state;
    cm_bucket bk[] = {{H0, 1, 1, 1, 1}};
    cm_batch *b = rollup_batch(1, bk, 1, 0, 0);
    cm_compliance_entry e = {"hall1", DAY, "luminance", 1, 2};
    assert_int_equal(cm_batch_add_compliance(b, &e), 0);
    cm_alert_entry a = alert("firing", H0, H0, 0, H0, "warning");
    assert_int_equal(cm_batch_add_alert(b, &a), 0);
    b->alerts[0].labels[0].value = "\xff\xfe"; /* not UTF-8: labels cannot be stored */
    char err[256] = "";
    assert_int_equal(co_store_summary_put(f->s, b, H0, err, sizeof err), -1);
    assert_non_null(strstr(err, "UTF-8"));
    drop(b);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM rollup_1h"), 0);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM devices"), 0);
    assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM compliance"), 0);
    /* a batch without a site is refused */
    cm_batch *n = mk("chain-1", NULL, 1);
    assert_int_equal(co_store_summary_put(f->s, n, H0, err, sizeof err), -1);
    drop(n);
    /* the figures survive a restart */
    b = mk("chain-1", "S1", 2);
    assert_int_equal(cm_batch_add_compliance(b, &e), 0);
    put(f->s, b, H0);
    drop(b);
    store_fx_reopen(f);
    crow c = {0};
    assert_int_equal(co_store_compliance_received(f->s, DAY, on_received, &c, err, sizeof err), 0);
    assert_int_equal(c.n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hour_rollups_with_head, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_rollups_upserted, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_alerts_upserted, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_compliance_kept_apart, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_summary_put_atomic, store_fx_setup, store_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

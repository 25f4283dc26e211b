/* test_dashboard.c — the dashboard API against a real store: the overview by province, city
 * and cinema (counts, reporting screens, compliance shares, firing alerts), one cinema's hall
 * tiles, one hall's devices with their tolerance bands and charts; scope limits (a site
 * outside it is 404 like an unknown one); parameter errors; and the pure band lookup on the
 * shipped rules. */
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

#include "collector/dashboard.h"
#include "collector/query.h"
#include "collector/rules.h"
#include "timeutil.h"

#define DAY_MS 86400000LL

typedef struct fx {
    store_fx *base;
    co_store *s;
    co_rules *rules;
    co_query *q;
    int64_t now;
    char day[16];
} fx;

static cm_batch *mk(const char *agent, const char *site, uint64_t seq)
{
    cm_batch *b = malloc(sizeof *b);
    cm_batch_init(b);
    assert_int_equal(cm_batch_set_agent(b, agent, "1.0.0", site), 0);
    b->seq = seq;
    b->sent_ms = cm_now_ms();
    return b;
}

static void dev(cm_batch *b, const char *id, const char *screen, const char *kind)
{
    cm_device_info d = {
        .id = id, .screen = screen, .kind = kind, .vendor = "Barco", .model = "DP4K"};
    assert_int_equal(cm_batch_add_device(b, &d), 0);
}

static void pt(cm_batch *b, const char *d, const char *metric, const char *unit, const char *lk,
               const char *lv, int64_t ts, double v)
{
    cm_label l = {lk, lv};
    assert_int_equal(cm_batch_add_point(b, d, metric, unit, lk ? &l : NULL, lk ? 1 : 0, ts, v), 0);
}

static void write1(co_store *s, cm_batch *b)
{
    co_batch_result r = 99;
    char err[256] = "";
    if (co_store_write(s, &b, 1, &r, err, sizeof err) < 0) fail_msg("write: %s", err);
    assert_int_equal(r, CO_BATCH_STORED);
    cm_batch_free(b);
    free(b);
}

static void alert(fx *f, const char *rule, const char *site, const char *screen, const char *from,
                  const char *to, const char *sev, int64_t ts)
{
    co_alert_change c = {.rule = rule,
                         .site = site,
                         .screen = screen,
                         .device = "d",
                         .labels = "{}",
                         .from = from,
                         .to = to,
                         .severity = sev,
                         .value = 1,
                         .threshold = 2,
                         .ts_ms = ts,
                         .text = rule};
    co_alert_outcome o;
    char err[256] = "";
    if (co_store_alerts_apply(f->s, &c, 1, ts, &o, err, sizeof err) < 0) fail_msg("apply: %s", err);
}

/* A statement on the store's database, whatever its backend. */
static void sql(fx *f, const char *stmt)
{
    fx_exec(f->base, stmt);
}

/* Sites: S1 (Guangdong/Shenzhen, chain A; halls h1 h2), S2 (Guangdong/Guangzhou, chain B; h1,
 * its device silent for an hour), S3 (Beijing/Beijing, chain A; h1 and a hall h9 named only
 * by a device). */
static int setup(void **state)
{
    void *b = NULL;
    if (store_fx_setup(&b) < 0) return -1;
    fx *f = calloc(1, sizeof *f);
    f->base = b;
    f->s = f->base->s;
    f->now = cm_now_ms();
    co_compliance_day_format(co_compliance_day_of(f->now), f->day, sizeof f->day);
    *state = f;
    char err[256] = "";
    if (!(f->rules = co_rules_load_dir("collector/rules", err, sizeof err))) {
        fprintf(stderr, "rules: %s\n", err);
        return -1;
    }
    f->q = co_query_new(f->s);
    co_query_set_rules(f->q, f->rules);
    co_site sites[] = {{"S1", "One", "Guangdong", "Shenzhen", "A"},
                       {"S2", "Two", "Guangdong", "Guangzhou", "B"},
                       {"S3", "Three", "Beijing", "Beijing", "A"}};
    co_screen scr[] = {{"S1", "h1", "Hall 1", "theatre", "projection", "2D",
                        "{\"L\":85.0,\"C\":85.0,\"Ls\":82.0}"},
                       {"S1", "h2", "Hall 2", "review", "led", NULL, NULL},
                       {"S2", "h1", NULL, NULL, NULL, NULL, NULL},
                       {"S3", "h1", NULL, NULL, NULL, NULL, NULL}};
    if (co_store_import(f->s, sites, 3, scr, 4, "import", err, sizeof err) < 0) {
        fprintf(stderr, "import: %s\n", err);
        return -1;
    }
    int64_t t = f->now - 60000;
    cm_batch *s1 = mk("a1", "S1", 1);
    dev(s1, "h1/projector", "h1", "projector");
    dev(s1, "h1/sensor", "h1", "light_sensor");
    dev(s1, "h1/audio", "h1", "audio_processor");
    dev(s1, "ups", NULL, "ups");
    pt(s1, "h1/sensor", "screen_luminance_nits", "nits", "mode", "2d", t - 1000, 30.0);
    pt(s1, "h1/sensor", "screen_luminance_nits", "nits", "mode", "3d", t, 16.0);
    pt(s1, "h1/sensor", "white_x", NULL, NULL, NULL, t, 0.314);
    pt(s1, "h1/audio", "spl_dbc", "dBC", "channel", "C", t - 5000, 84.0);
    pt(s1, "h1/audio", "spl_dbc", "dBC", "channel", "L", t, 90.0);
    pt(s1, "h1/projector", "light_source_hours", "h", "lamp", "1", t, 1900);
    pt(s1, "h1/projector", "light_source_rated_hours", "h", "lamp", "1", t, 2000);
    pt(s1, "h1/projector", "power_state", NULL, NULL, NULL, t, 1);
    pt(s1, "h1/projector", "temperature_celsius", "Cel", "sensor", "Intake", t, 25);
    pt(s1, "ups", "ups_on_battery", NULL, NULL, NULL, t, 0);
    write1(f->s, s1);
    cm_batch *s2 = mk("a2", "S2", 1);
    dev(s2, "h1/projector", "h1", "projector");
    pt(s2, "h1/projector", "power_state", NULL, NULL, NULL, t, 4);
    write1(f->s, s2);
    cm_batch *s3 = mk("a3", "S3", 1);
    dev(s3, "h9/projector", "h9", "projector");
    pt(s3, "h9/projector", "power_state", NULL, NULL, NULL, t, 1);
    write1(f->s, s3);
    sql(f, "UPDATE devices SET last_seen_ms = last_seen_ms - 3600000 WHERE site = 'S2'");

    co_compliance_row rows[] = {{"S1", "h1", "luminance", 3600000, 3600000},
                                {"S1", "h2", "luminance", 0, 3600000},
                                {"S2", "h1", "luminance", 1800000, 3600000},
                                {"S2", "h1", "white", 100, 400},
                                {"S3", "h1", "spl", 0, 0}};
    if (co_store_compliance_put(f->s, f->day, rows, 5, f->now, err, sizeof err) < 0) {
        fprintf(stderr, "compliance: %s\n", err);
        return -1;
    }
    co_compliance_row old = {"S1", "h1", "white", 0, 1000};
    if (co_store_compliance_put(f->s, "2020-01-01", &old, 1, f->now, err, sizeof err) < 0)
        return -1;

    alert(f, "projector_fault", "S1", "h1", "inactive", "firing", "critical", f->now - 7200000);
    alert(f, "screen_luminance", "S1", "h2", "inactive", "firing", "warning", f->now - 7200000);
    alert(f, "audio_fader_low", "S1", "h1", "inactive", "firing", "info", f->now - 7200000);
    alert(f, "spl_deviation", "S1", "h1", "inactive", "firing", "warning", f->now - 2 * DAY_MS);
    alert(f, "spl_deviation", "S1", "h1", "firing", "resolved", "warning", f->now - DAY_MS);
    alert(f, "white_point_x", "S1", "h1", "inactive", "firing", "warning", f->now - 200 * DAY_MS);
    alert(f, "white_point_x", "S1", "h1", "firing", "resolved", "warning", f->now - 100 * DAY_MS);
    alert(f, "light_output_low", "S2", "h1", "inactive", "pending", "warning", f->now - 60000);
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    co_query_free(f->q);
    co_rules_free(f->rules);
    void *b = f->base;
    free(f);
    return store_fx_teardown(&b);
}

/* ---------------------------------------------------------------- helpers */

typedef struct kv {
    const char *k, *v;
} kv;

static unsigned call(fx *f, co_query_fn fn, const co_scope *sc, const co_query_arg *a, size_t n,
                     json_t **body)
{
    *body = NULL;
    unsigned st = fn(f->q, sc ? sc : &co_scope_all, a, n, body);
    assert_non_null(*body);
    return st;
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_int_t num(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static json_t *find(json_t *arr, const char *k, const char *v)
{
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) if (str(o, k) && !strcmp(str(o, k), v)) return o;
    return NULL;
}

static co_scope scope(co_scope_kind k, const char *v)
{
    co_scope sc;
    char err[128];
    assert_int_equal(co_scope_set(&sc, k, v, err, sizeof err), 0);
    return sc;
}

/* fn must answer want with {"error", "at": at}. */
static void expect(fx *f, co_query_fn fn, const co_scope *sc, const co_query_arg *a, size_t n,
                   unsigned want, const char *at)
{
    json_t *body;
    assert_int_equal(call(f, fn, sc, a, n, &body), want);
    assert_non_null(str(body, "error"));
    assert_string_equal(str(body, "at"), at);
    json_decref(body);
}

/* ---------------------------------------------------------------- band lookup */

static void test_band(void **state)
{
    fx *f = *state;
    co_dash_band b;
    co_dash_screen theatre = {.cls = CO_CLASS_THEATRE, .display = CO_DISPLAY_PROJECTION};
    co_dash_screen review = {.cls = CO_CLASS_REVIEW, .display = CO_DISPLAY_PROJECTION};

    /* luminance: 2D by default, by the screen's class */
    assert_int_equal(co_dash_band_find(f->rules, "screen_luminance_nits", NULL, &theatre, &b), 1);
    assert_string_equal(b.rule->id, "screen_luminance");
    assert_int_equal(b.severity, CO_SEV_WARNING);
    assert_true(b.has_lo && b.has_hi && b.has_target);
    assert_float_equal(b.lo, 37.8, 1e-9);
    assert_float_equal(b.hi, 58.2, 1e-9);
    assert_float_equal(b.target, 48, 1e-9);
    assert_string_equal(b.standard, "SMPTE ST 431-1 theatre");
    assert_int_equal(co_dash_band_find(f->rules, "screen_luminance_nits", NULL, &review, &b), 1);
    assert_float_equal(b.lo, 44.5, 1e-9);
    /* the sample's mode label picks its own target: 3D projection is a minimum only */
    json_t *l3d = json_pack("{s:s}", "mode", "3d");
    assert_int_equal(co_dash_band_find(f->rules, "screen_luminance_nits", l3d, &theatre, &b), 1);
    assert_true(b.has_lo && !b.has_hi);
    assert_float_equal(b.lo, 15.4, 1e-9);
    assert_true(co_dash_band_contains(&b, 16));
    assert_false(co_dash_band_contains(&b, 15));
    json_decref(l3d);

    /* white point by class; unknown screen takes the class-less choice */
    assert_int_equal(co_dash_band_find(f->rules, "white_x", NULL, NULL, &b), 1);
    assert_float_equal(b.lo, 0.308, 1e-9);
    assert_int_equal(co_dash_band_find(f->rules, "white_y", NULL, &review, &b), 1);
    assert_float_equal(b.hi, 0.353, 1e-9);

    /* warning band of a two-level rule; critical-only rule gives its critical band */
    assert_int_equal(co_dash_band_find(f->rules, "av_sync_offset_ms", NULL, &theatre, &b), 1);
    assert_int_equal(b.severity, CO_SEV_WARNING);
    assert_float_equal(b.lo, -45, 1e-9);
    assert_float_equal(b.hi, 15, 1e-9);
    assert_int_equal(co_dash_band_find(f->rules, "power_state", NULL, &theatre, &b), 1);
    assert_int_equal(b.severity, CO_SEV_CRITICAL);
    assert_false(b.has_lo);
    assert_float_equal(b.hi, 4, 1e-9);
    json_t *bj = co_dash_band_json(&b);
    assert_true(json_is_null(json_object_get(bj, "lo")));
    assert_string_equal(str(bj, "severity"), "critical");
    assert_string_equal(str(bj, "rule"), "projector_fault");
    json_decref(bj);
    bj = co_dash_band_json(NULL);
    assert_true(json_is_null(bj));

    /* label matchers: the intake sensor's band, not the lamp house's */
    json_t *intake = json_pack("{s:s}", "sensor", "Intake");
    assert_int_equal(co_dash_band_find(f->rules, "temperature_celsius", intake, &theatre, &b), 1);
    assert_string_equal(b.rule->id, "projector_temperature_ambient");
    assert_float_equal(b.hi, 35, 1e-9);
    json_decref(intake);

    /* nothing for unknown metrics, rule-less calls, or reference-less deviations */
    assert_int_equal(co_dash_band_find(f->rules, "no_such_metric", NULL, &theatre, &b), 0);
    assert_int_equal(co_dash_band_find(NULL, "white_x", NULL, &theatre, &b), 0);
    json_t *ch = json_pack("{s:s}", "channel", "L");
    assert_int_equal(co_dash_band_find(f->rules, "spl_dbc", ch, &theatre, &b), 0);
    assert_int_equal(co_dash_band_find(f->rules, "light_source_hours", NULL, &theatre, &b), 0);
    json_decref(ch);
}

static double ref85(void *ud, const char *metric, const json_t *labels)
{
    (void)ud;
    (void)labels;
    return strcmp(metric, "spl_dbc") ? NAN : 85.0;
}

static double rated2000(void *ud, const char *metric, const json_t *labels)
{
    (void)ud;
    (void)labels;
    return strcmp(metric, "light_source_rated_hours") ? NAN : 2000.0;
}

static void test_band_lookups(void **state)
{
    fx *f = *state;
    co_dash_band b;
    co_dash_screen sc = {.cls = CO_CLASS_THEATRE, .reference = ref85, .latest = rated2000};
    /* deviation from the hall's reference: ±3 dB, ±5 dB for the subwoofer */
    json_t *l = json_pack("{s:s}", "channel", "L"), *lfe = json_pack("{s:s}", "channel", "LFE");
    assert_int_equal(co_dash_band_find(f->rules, "spl_dbc", l, &sc, &b), 1);
    assert_string_equal(b.rule->id, "spl_deviation");
    assert_float_equal(b.lo, 82, 1e-9);
    assert_float_equal(b.hi, 88, 1e-9);
    assert_float_equal(b.target, 85, 1e-9);
    assert_int_equal(co_dash_band_find(f->rules, "spl_dbc", lfe, &sc, &b), 1);
    assert_string_equal(b.rule->id, "spl_deviation_subwoofer");
    assert_float_equal(b.lo, 80, 1e-9);
    json_decref(l);
    json_decref(lfe);
    /* percent_of: 90 % of the rated hours */
    assert_int_equal(co_dash_band_find(f->rules, "light_source_hours", NULL, &sc, &b), 1);
    assert_string_equal(b.rule->id, "light_source_life");
    assert_int_equal(b.severity, CO_SEV_WARNING);
    assert_false(b.has_lo);
    assert_float_equal(b.hi, 1800, 1e-9);
}

/* ---------------------------------------------------------------- overview */

static void test_overview_province(void **state)
{
    fx *f = *state;
    json_t *body;
    assert_int_equal(call(f, co_dash_overview, NULL, NULL, 0, &body), 200);
    json_t *d = json_object_get(body, "data");
    assert_int_equal(json_array_size(d), 2);
    json_t *gd = find(d, "province", "Guangdong"), *bj = find(d, "province", "Beijing");
    assert_ptr_equal(json_array_get(d, 0), bj); /* sorted by province */
    assert_int_equal(num(gd, "cinemas"), 2);
    assert_int_equal(num(gd, "screens"), 3);
    assert_int_equal(num(gd, "screens_reporting"), 1); /* S1/h1; S2's device is silent */
    json_t *c = json_object_get(gd, "compliance");
    assert_float_equal(json_real_value(json_object_get(c, "luminance")), 0.5, 1e-9);
    assert_float_equal(json_real_value(json_object_get(c, "white")), 0.25, 1e-9);
    assert_true(json_is_null(json_object_get(c, "spl")));
    json_t *a = json_object_get(gd, "alerts");
    assert_int_equal(num(a, "critical"), 1);
    assert_int_equal(num(a, "warning"), 1); /* the pending one does not count */
    assert_int_equal(num(a, "info"), 1);
    /* Beijing: h1 (settings only) and h9 (named by a device, reporting) */
    assert_int_equal(num(bj, "cinemas"), 1);
    assert_int_equal(num(bj, "screens"), 2);
    assert_int_equal(num(bj, "screens_reporting"), 1);
    assert_true(json_is_null(json_object_get(json_object_get(bj, "compliance"), "spl")));
    json_decref(body);

    /* another day: no compliance figures */
    co_query_arg day[] = {{"day", "2020-01-01"}};
    assert_int_equal(call(f, co_dash_overview, NULL, day, 1, &body), 200);
    gd = find(json_object_get(body, "data"), "province", "Guangdong");
    c = json_object_get(gd, "compliance");
    assert_true(json_is_null(json_object_get(c, "luminance")));
    assert_float_equal(json_real_value(json_object_get(c, "white")), 0.0, 1e-9);
    json_decref(body);
}

static void test_overview_levels(void **state)
{
    fx *f = *state;
    json_t *body;
    co_query_arg city[] = {{"level", "city"}, {"province", "Guangdong"}};
    assert_int_equal(call(f, co_dash_overview, NULL, city, 2, &body), 200);
    json_t *d = json_object_get(body, "data");
    assert_int_equal(json_array_size(d), 2);
    assert_string_equal(str(json_array_get(d, 0), "city"), "Guangzhou");
    assert_string_equal(str(json_array_get(d, 1), "city"), "Shenzhen");
    assert_string_equal(str(json_array_get(d, 1), "province"), "Guangdong");
    assert_int_equal(num(json_array_get(d, 1), "screens"), 2);
    json_decref(body);

    co_query_arg allc[] = {{"level", "city"}};
    assert_int_equal(call(f, co_dash_overview, NULL, allc, 1, &body), 200);
    assert_int_equal(json_array_size(json_object_get(body, "data")), 3);
    json_decref(body);

    co_query_arg cin[] = {{"level", "cinema"}};
    assert_int_equal(call(f, co_dash_overview, NULL, cin, 1, &body), 200);
    d = json_object_get(body, "data");
    assert_int_equal(json_array_size(d), 3);
    json_t *s1 = find(d, "site", "S1"), *s2 = find(d, "site", "S2"), *s3 = find(d, "site", "S3");
    assert_string_equal(str(s1, "name"), "One");
    assert_string_equal(str(s1, "chain"), "A");
    assert_string_equal(str(s1, "city"), "Shenzhen");
    assert_string_equal(str(s1, "worst"), "critical");
    assert_int_equal(num(s1, "cinemas"), 1);
    assert_int_equal(num(s1, "screens"), 2);
    assert_true(json_is_null(json_object_get(s2, "worst")));
    assert_int_equal(num(s2, "screens_reporting"), 0);
    assert_true(json_is_null(json_object_get(s3, "worst")));
    json_decref(body);
}

static void test_overview_scope(void **state)
{
    fx *f = *state;
    json_t *body;
    co_scope bj = scope(CO_SCOPE_PROVINCE, "Beijing");
    assert_int_equal(call(f, co_dash_overview, &bj, NULL, 0, &body), 200);
    json_t *d = json_object_get(body, "data");
    assert_int_equal(json_array_size(d), 1);
    assert_string_equal(str(json_array_get(d, 0), "province"), "Beijing");
    json_decref(body);
    /* asking for another province within the scope gives nothing */
    co_query_arg gd[] = {{"level", "cinema"}, {"province", "Guangdong"}};
    assert_int_equal(call(f, co_dash_overview, &bj, gd, 2, &body), 200);
    assert_int_equal(json_array_size(json_object_get(body, "data")), 0);
    json_decref(body);

    co_scope chain = scope(CO_SCOPE_CHAIN, "A");
    assert_int_equal(call(f, co_dash_overview, &chain, NULL, 0, &body), 200);
    d = json_object_get(body, "data");
    assert_int_equal(json_array_size(d), 2);
    json_t *g = find(d, "province", "Guangdong");
    assert_int_equal(num(g, "cinemas"), 1);
    assert_int_equal(num(g, "screens"), 2);
    assert_float_equal(
        json_real_value(json_object_get(json_object_get(g, "compliance"), "luminance")), 0.5, 1e-9);
    json_decref(body);

    co_scope site = scope(CO_SCOPE_SITE, "S2");
    co_query_arg cin[] = {{"level", "cinema"}};
    assert_int_equal(call(f, co_dash_overview, &site, cin, 1, &body), 200);
    d = json_object_get(body, "data");
    assert_int_equal(json_array_size(d), 1);
    assert_string_equal(str(json_array_get(d, 0), "site"), "S2");
    json_decref(body);
}

static void test_overview_errors(void **state)
{
    fx *f = *state;
    co_query_arg a1[] = {{"foo", "1"}};
    expect(f, co_dash_overview, NULL, a1, 1, 400, "foo");
    co_query_arg a2[] = {{"level", "nation"}};
    expect(f, co_dash_overview, NULL, a2, 1, 400, "level");
    co_query_arg a3[] = {{"day", "2026-02-30"}};
    expect(f, co_dash_overview, NULL, a3, 1, 400, "day");
    co_query_arg a4[] = {{"province", ""}};
    expect(f, co_dash_overview, NULL, a4, 1, 400, "province");
    co_query_arg a5[] = {{"city", "a"}, {"city", "b"}};
    expect(f, co_dash_overview, NULL, a5, 2, 400, "city");
}

/* ---------------------------------------------------------------- cinema */

static void test_cinema(void **state)
{
    fx *f = *state;
    json_t *body;
    co_query_arg a[] = {{"site", "S1"}};
    assert_int_equal(call(f, co_dash_cinema, NULL, a, 1, &body), 200);
    json_t *d = json_object_get(body, "data");
    json_t *site = json_object_get(d, "site");
    assert_string_equal(str(site, "code"), "S1");
    assert_string_equal(str(site, "province"), "Guangdong");
    assert_string_equal(str(site, "chain"), "A");
    json_t *halls = json_object_get(d, "halls");
    assert_int_equal(json_array_size(halls), 2); /* the UPS belongs to no hall */
    json_t *h1 = json_array_get(halls, 0), *h2 = json_array_get(halls, 1);
    assert_string_equal(str(h1, "screen"), "h1");
    assert_string_equal(str(h1, "name"), "Hall 1");
    assert_string_equal(str(h1, "class"), "theatre");
    assert_true(json_is_true(json_object_get(h1, "reporting")));
    assert_string_equal(str(h1, "worst"), "critical");
    assert_int_equal(num(h1, "alerts"), 2);
    json_t *lum = json_object_get(h1, "luminance");
    assert_float_equal(json_real_value(json_object_get(lum, "value")), 16.0, 1e-9); /* newest */
    assert_string_equal(str(lum, "unit"), "nits");
    json_t *spl = json_object_get(h1, "spl");
    assert_float_equal(json_real_value(json_object_get(spl, "value")), 84.0, 1e-9); /* centre */
    assert_string_equal(str(json_object_get(spl, "labels"), "channel"), "C");
    assert_float_equal(
        json_real_value(json_object_get(json_object_get(h1, "light_hours"), "value")), 1900, 1e-9);
    json_t *state_ = json_object_get(h1, "state");
    assert_float_equal(json_real_value(json_object_get(state_, "power_state")), 1, 1e-9);
    assert_null(json_object_get(state_, "playback_state"));
    assert_null(json_object_get(h1, "latest"));
    /* h2: settings only, no device */
    assert_string_equal(str(h2, "class"), "review");
    assert_false(json_is_true(json_object_get(h2, "reporting")));
    assert_string_equal(str(h2, "worst"), "warning");
    assert_true(json_is_null(json_object_get(h2, "luminance")));
    assert_int_equal(json_object_size(json_object_get(h2, "state")), 0);
    /* the site's firing alerts, as /api/v1/alerts shows them */
    json_t *al = json_object_get(d, "alerts");
    assert_int_equal(json_array_size(al), 3);
    assert_non_null(find(al, "rule", "projector_fault"));
    assert_non_null(json_object_get(json_array_get(al, 0), "ack"));
    json_decref(body);

    /* S2: hall silent for an hour, only a pending alert */
    co_query_arg b[] = {{"site", "S2"}};
    assert_int_equal(call(f, co_dash_cinema, NULL, b, 1, &body), 200);
    h1 = json_array_get(json_object_get(json_object_get(body, "data"), "halls"), 0);
    assert_false(json_is_true(json_object_get(h1, "reporting")));
    assert_true(json_is_null(json_object_get(h1, "worst")));
    assert_int_equal(num(h1, "alerts"), 0);
    assert_string_equal(str(h1, "class"), "theatre"); /* the default of an imported screen */
    json_decref(body);
}

static void test_cinema_scope_and_errors(void **state)
{
    fx *f = *state;
    json_t *body;
    co_query_arg a[] = {{"site", "S1"}};
    co_scope bj = scope(CO_SCOPE_PROVINCE, "Beijing");
    expect(f, co_dash_cinema, &bj, a, 1, 404, "site");
    co_scope chain = scope(CO_SCOPE_CHAIN, "B");
    expect(f, co_dash_cinema, &chain, a, 1, 404, "site");
    co_scope own = scope(CO_SCOPE_SITE, "S1");
    assert_int_equal(call(f, co_dash_cinema, &own, a, 1, &body), 200);
    json_decref(body);
    co_query_arg u[] = {{"site", "NOPE"}};
    expect(f, co_dash_cinema, NULL, u, 1, 404, "site");
    expect(f, co_dash_cinema, NULL, NULL, 0, 400, "site");
    co_query_arg x[] = {{"site", "S1"}, {"screen", "h1"}};
    expect(f, co_dash_cinema, NULL, x, 2, 400, "screen");
}

/* ---------------------------------------------------------------- hall */

static json_t *metric_of(json_t *devices, const char *device, const char *metric, const char *lk,
                         const char *lv)
{
    json_t *d = find(devices, "device", device);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(d, "metrics"), i, m)
    {
        if (strcmp(str(m, "metric"), metric)) continue;
        if (lk && (!str(json_object_get(m, "labels"), lk) ||
                   strcmp(str(json_object_get(m, "labels"), lk), lv)))
            continue;
        return m;
    }
    fail_msg("no %s %s on %s", metric, lv ? lv : "", device);
    return NULL;
}

static void test_hall(void **state)
{
    fx *f = *state;
    json_t *body;
    co_query_arg a[] = {{"site", "S1"}, {"screen", "h1"}};
    assert_int_equal(call(f, co_dash_hall, NULL, a, 2, &body), 200);
    json_t *d = json_object_get(body, "data");
    json_t *scr = json_object_get(d, "screen");
    assert_string_equal(str(scr, "class"), "theatre");
    assert_int_equal(num(scr, "devices"), 3);
    assert_true(json_is_true(json_object_get(scr, "known")));
    assert_float_equal(json_real_value(json_object_get(json_object_get(scr, "spl_ref"), "L")), 85,
                       1e-9);
    json_t *devs = json_object_get(d, "devices");
    assert_int_equal(json_array_size(devs), 3);
    assert_string_equal(str(json_array_get(devs, 0), "device"), "h1/audio");
    assert_string_equal(str(json_array_get(devs, 0), "kind"), "audio_processor");

    json_t *m = metric_of(devs, "h1/sensor", "screen_luminance_nits", "mode", "2d");
    json_t *b = json_object_get(m, "band");
    assert_float_equal(json_real_value(json_object_get(b, "lo")), 37.8, 1e-9);
    assert_string_equal(str(b, "rule"), "screen_luminance");
    assert_string_equal(str(b, "severity"), "warning");
    assert_true(json_is_false(json_object_get(m, "in_band"))); /* 30 nits */
    m = metric_of(devs, "h1/sensor", "screen_luminance_nits", "mode", "3d");
    assert_true(json_is_true(json_object_get(m, "in_band")));
    m = metric_of(devs, "h1/audio", "spl_dbc", "channel", "L");
    b = json_object_get(m, "band");
    assert_float_equal(json_real_value(json_object_get(b, "target")), 85, 1e-9);
    assert_true(json_is_false(json_object_get(m, "in_band"))); /* 90 dBC vs 85 ± 3 */
    m = metric_of(devs, "h1/projector", "light_source_hours", "lamp", "1");
    assert_float_equal(json_real_value(json_object_get(json_object_get(m, "band"), "hi")), 1800,
                       1e-9);
    assert_true(json_is_false(json_object_get(m, "in_band")));
    m = metric_of(devs, "h1/projector", "light_source_rated_hours", NULL, NULL);
    assert_true(json_is_null(json_object_get(m, "band")));
    assert_true(json_is_null(json_object_get(m, "in_band")));

    /* charts: one per (device, metric), in the page's order */
    json_t *charts = json_object_get(d, "charts");
    const char *order[] = {"screen_luminance_nits", "white_x", "spl_dbc", "light_source_hours",
                           "temperature_celsius"};
    assert_int_equal(json_array_size(charts), 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(str(json_array_get(charts, i), "metric"), order[i]);
    json_t *lc = json_array_get(charts, 0);
    assert_string_equal(str(lc, "device"), "h1/sensor");
    assert_string_equal(str(lc, "title_key"), "chart.screen_luminance_nits");
    assert_string_equal(str(lc, "unit"), "nits");
    assert_float_equal(json_real_value(json_object_get(json_object_get(lc, "band"), "hi")), 58.2,
                       1e-9);
    assert_int_equal(json_array_size(json_object_get(lc, "series")), 2);
    json_t *sc = json_array_get(charts, 2);
    assert_int_equal(json_array_size(json_object_get(sc, "series")), 2);

    /* alerts: firing ones and the one resolved yesterday; not the one of 100 days ago */
    json_t *al = json_object_get(d, "alerts");
    assert_int_equal(json_array_size(al), 3);
    assert_null(find(al, "rule", "white_point_x"));
    assert_non_null(find(al, "state", "resolved"));
    json_decref(body);
}

static void test_hall_device_only_and_scope(void **state)
{
    fx *f = *state;
    json_t *body;
    co_query_arg a[] = {{"site", "S3"}, {"screen", "h9"}};
    assert_int_equal(call(f, co_dash_hall, NULL, a, 2, &body), 200);
    json_t *scr = json_object_get(json_object_get(body, "data"), "screen");
    assert_true(json_is_false(json_object_get(scr, "known")));
    assert_true(json_is_null(json_object_get(scr, "class")));
    assert_int_equal(num(scr, "devices"), 1);
    json_decref(body);

    co_scope gd = scope(CO_SCOPE_PROVINCE, "Guangdong");
    expect(f, co_dash_hall, &gd, a, 2, 404, "screen");
    co_scope bj = scope(CO_SCOPE_PROVINCE, "Beijing");
    assert_int_equal(call(f, co_dash_hall, &bj, a, 2, &body), 200);
    json_decref(body);
    co_query_arg u[] = {{"site", "S3"}, {"screen", "h7"}};
    expect(f, co_dash_hall, NULL, u, 2, 404, "screen");
    co_query_arg m[] = {{"site", "S3"}};
    expect(f, co_dash_hall, NULL, m, 1, 400, "screen");
    co_query_arg c[] = {{"site", "S3"}, {"screen", "h\x01"}};
    expect(f, co_dash_hall, NULL, c, 2, 400, "screen");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_band, setup, teardown),
        cmocka_unit_test_setup_teardown(test_band_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overview_province, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overview_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overview_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overview_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cinema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cinema_scope_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hall, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hall_device_only_and_scope, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

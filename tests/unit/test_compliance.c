/* test_compliance.c — compliance per screen and day from a real store with the shipped rules:
 * time weighting (regular, irregular, capped, clipped at midnight), class-dependent tolerance,
 * SPL against the screen's references, overrides through the judge, and time-weighted
 * roll-ups per site, city, province and nation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector/compliance.h"
#include "collector/judge.h"
#include "collector/rules.h"
#include "collector/store.h"
#include "store_fixture.h"

#define DAY 20417LL /* 2025-11-25 */
#define D0 (DAY * 86400000LL)
#define MIN 60000LL
#define HOUR (60 * MIN)

/* S1 and S2: two cities of province P1; S3: province P2. */
#define S1 "11010001"
#define S2 "11020001"
#define S3 "31010001"

typedef struct fx {
    store_fx *base;
    co_store *s;
    co_rules *rules;
    co_compliance *c;
    unsigned agent;
} fx;

static int setup(void **state)
{
    void *b = NULL;
    if (store_fx_setup(&b) < 0) return -1;
    fx *f = calloc(1, sizeof *f);
    f->base = b;
    f->s = f->base->s;
    *state = f;
    char err[256] = "";
    f->rules = co_rules_load_dir("collector/rules", err, sizeof err);
    if (!f->rules) {
        fprintf(stderr, "rules: %s\n", err);
        return -1;
    }
    f->c = co_compliance_new(f->s, f->rules, NULL, 0);
    co_site sites[] = {{S1, "One", "P1", "C1"}, {S2, "Two", "P1", "C2"}, {S3, "Three", "P2", "C3"}};
    co_screen scr[] = {{S1, "1", NULL, "theatre", "projection", NULL, NULL},
                       {S1, "2", NULL, "review", "projection", NULL, NULL},
                       {S2, "1", NULL, "theatre", "projection", NULL, "{\"L\":85.0,\"LFE\":85.0}"},
                       {S3, "1", NULL, "theatre", "projection", NULL, NULL}};
    if (!f->c || co_store_import(f->s, sites, 3, scr, 4, "import", err, sizeof err) < 0) {
        fprintf(stderr, "import: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    co_compliance_free(f->c);
    co_rules_free(f->rules);
    void *b = f->base;
    free(f);
    return store_fx_teardown(&b);
}

/* Store the points (ts[i], v[i]) of one series as one batch of a fresh agent of site. */
static void put(fx *f, const char *site, const char *device, const char *inv_screen,
                const char *metric, const char *lk, const char *lv, const int64_t *ts,
                const double *v, size_t n)
{
    cm_batch b;
    cm_batch_init(&b);
    char agent[32];
    snprintf(agent, sizeof agent, "agent-%u", ++f->agent);
    assert_int_equal(cm_batch_set_agent(&b, agent, "1.0.0", site), 0);
    b.seq = 1;
    b.sent_ms = D0;
    if (inv_screen) {
        cm_device_info d = {.id = device, .screen = inv_screen, .kind = "projector"};
        assert_int_equal(cm_batch_add_device(&b, &d), 0);
    }
    cm_label l = {lk, lv};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(
            cm_batch_add_point(&b, device, metric, NULL, lk ? &l : NULL, lk ? 1 : 0, ts[i], v[i]),
            0);
    cm_batch *bp = &b;
    co_batch_result r = 99;
    char err[256] = "";
    if (co_store_write(f->s, &bp, 1, &r, err, sizeof err) < 0) fail_msg("write: %s", err);
    assert_int_equal(r, CO_BATCH_STORED);
    cm_batch_free(&b);
}

/* A regular series: n samples every step from t0, value v1 for the first n1, then v2. */
static void put_regular(fx *f, const char *site, const char *device, const char *metric,
                        const char *lk, const char *lv, int64_t t0, int64_t step, size_t n,
                        size_t n1, double v1, double v2)
{
    int64_t *ts = calloc(n, sizeof *ts);
    double *v = calloc(n, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        ts[i] = t0 + (int64_t)i * step;
        v[i] = i < n1 ? v1 : v2;
    }
    put(f, site, device, NULL, metric, lk, lv, ts, v, n);
    free(ts);
    free(v);
}

static json_t *report(fx *f, co_compliance_level level, int64_t day, const char *site,
                      const char *province, const char *city)
{
    char err[256] = "";
    json_t *j = co_compliance_report(f->s, f->c, level, day, site, province, city, NULL,
                                     (day + 1) * 86400000LL + HOUR, err, sizeof err);
    if (!j) fail_msg("report: %s", err);
    return j;
}

static double share(json_t *row, const char *q)
{
    json_t *v = json_object_get(json_object_get(row, q), "in_tolerance");
    return json_is_number(v) ? json_number_value(v) : -1.0;
}

static double hours(json_t *row, const char *q)
{
    return json_number_value(json_object_get(json_object_get(row, q), "measured_hours"));
}

/* The row of screen (site, screen) in a screen-level report, or NULL. */
static json_t *screen_row(json_t *list, const char *site, const char *screen)
{
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r)
    {
        if (!strcmp(json_string_value(json_object_get(r, "site")), site) &&
            !strcmp(json_string_value(json_object_get(r, "screen")), screen))
            return r;
    }
    return NULL;
}

static void run(fx *f, int64_t day)
{
    char err[256] = "";
    if (co_compliance_run_day(f->c, day, (day + 1) * 86400000LL + HOUR, err, sizeof err) < 0)
        fail_msg("run: %s", err);
}

/* Theatre, 2D: 48 nits for 6 h then 30 nits (below 37.8) for 2 h → 0.75 over 8 h. */
static void test_theatre_share(void **state)
{
    fx *f = *state;
    put_regular(f, S1, "1/proj", "screen_luminance_nits", "mode", "2d", D0, MIN, 480, 360, 48, 30);
    run(f, DAY);
    json_t *j = report(f, CO_LEVEL_SCREEN, DAY, NULL, NULL, NULL);
    assert_int_equal(json_array_size(j), 1);
    json_t *r = screen_row(j, S1, "1");
    assert_non_null(r);
    assert_true(fabs(share(r, "luminance") - 0.75) < 1e-9);
    assert_true(fabs(hours(r, "luminance") - 8.0) < 1e-9);
    assert_true(share(r, "white") < 0); /* not measured: null */
    assert_true(hours(r, "spl") == 0);
    assert_string_equal(json_string_value(json_object_get(r, "province")), "P1");
    assert_string_equal(json_string_value(json_object_get(r, "city")), "C1");
    assert_string_equal(json_string_value(json_object_get(r, "day")), "2025-11-25");
    assert_int_equal(json_integer_value(json_object_get(r, "screens")), 1);
    json_decref(j);
}

/* A review room at 44 nits all day is out (48 ± 3.5) though a theatre would be in. */
static void test_review_room(void **state)
{
    fx *f = *state;
    put(f, S1, "rr-proj", "2", "screen_luminance_nits", "mode", "2d",
        (int64_t[]){D0, D0 + 6 * HOUR, D0 + 12 * HOUR, D0 + 18 * HOUR}, (double[]){44, 44, 44, 44},
        4);
    put_regular(f, S1, "1/proj", "screen_luminance_nits", "mode", "2d", D0, 6 * HOUR, 4, 4, 44, 44);
    run(f, DAY);
    json_t *j = report(f, CO_LEVEL_SCREEN, DAY, S1, NULL, NULL);
    assert_int_equal(json_array_size(j), 2);
    json_t *rr = screen_row(j, S1, "2"); /* screen from the device's inventory */
    assert_non_null(rr);
    assert_true(share(rr, "luminance") == 0.0);
    assert_true(fabs(hours(rr, "luminance") - 24.0) < 1e-9);
    assert_true(share(screen_row(j, S1, "1"), "luminance") == 1.0);
    json_decref(j);
    /* the same band function directly */
    const co_rule *rule = co_rules_find(f->rules, "screen_luminance");
    cm_label m = {"mode", "2d"};
    co_screen_settings review = {CO_CLASS_REVIEW, CO_DISPLAY_PROJECTION};
    co_screen_settings theatre = {CO_CLASS_THEATRE, CO_DISPLAY_PROJECTION};
    int in = -1;
    assert_int_equal(co_rules_in_tolerance(NULL, rule, S1, "2", &review, &m, 1, 44, NULL, &in), 1);
    assert_int_equal(in, 0);
    assert_int_equal(co_rules_in_tolerance(NULL, rule, S1, "2", &review, &m, 1, 44.6, NULL, &in),
                     1);
    assert_int_equal(in, 1);
    assert_int_equal(co_rules_in_tolerance(NULL, rule, S1, "1", &theatre, &m, 1, 44, NULL, &in), 1);
    assert_int_equal(in, 1);
    assert_int_equal(co_rules_in_tolerance(NULL, rule, S1, "1", &theatre, &m, 1, 37.7, NULL, &in),
                     1);
    assert_int_equal(in, 0);
    /* no mode label: no target applies, not judged */
    assert_int_equal(co_rules_in_tolerance(NULL, rule, S1, "1", &theatre, NULL, 0, 44, NULL, &in),
                     0);
}

/* Irregular samples: each counts until the next, capped at 3 x the median gap; the last for
 * one median gap. */
static void test_irregular(void **state)
{
    fx *f = *state;
    /* gaps 1, 2, 1, 56 min: median 2, cap 6 → durations 1, 2, 1, 6, 2 (last) */
    put(f, S1, "1/proj", NULL, "screen_luminance_nits", "mode", "2d",
        (int64_t[]){D0, D0 + MIN, D0 + 3 * MIN, D0 + 4 * MIN, D0 + 60 * MIN},
        (double[]){48, 30, 48, 48, 30}, 5);
    run(f, DAY);
    json_t *j = report(f, CO_LEVEL_SCREEN, DAY, NULL, NULL, NULL);
    json_t *r = screen_row(j, S1, "1");
    assert_non_null(r);
    assert_true(fabs(hours(r, "luminance") - 12.0 / 60) < 1e-9);
    assert_true(fabs(share(r, "luminance") - 8.0 / 12.0) < 1e-9);
    json_decref(j);
}

/* Nothing counts across midnight: the last sample of a day is clipped at its end. */
static void test_day_boundary(void **state)
{
    fx *f = *state;
    int64_t mid = D0 + 24 * HOUR;
    /* every 10 min from 23:38: the 23:58 sample counts 2 min, not 10 */
    put(f, S1, "1/proj", NULL, "screen_luminance_nits", "mode", "2d",
        (int64_t[]){mid - 22 * MIN, mid - 12 * MIN, mid - 2 * MIN, mid + 8 * MIN, mid + 18 * MIN},
        (double[]){48, 48, 48, 30, 30}, 5);
    run(f, DAY);
    run(f, DAY + 1);
    json_t *j = report(f, CO_LEVEL_SCREEN, DAY, NULL, NULL, NULL);
    json_t *r = screen_row(j, S1, "1");
    assert_true(fabs(hours(r, "luminance") * 60 - 22.0) < 1e-6);
    assert_true(share(r, "luminance") == 1.0);
    json_decref(j);
    j = report(f, CO_LEVEL_SCREEN, DAY + 1, NULL, NULL, NULL);
    r = screen_row(j, S1, "1");
    assert_non_null(r);
    assert_true(fabs(hours(r, "luminance") * 60 - 20.0) < 1e-6);
    assert_true(share(r, "luminance") == 0.0);
    assert_string_equal(json_string_value(json_object_get(r, "day")), "2025-11-26");
    json_decref(j);
}

/* SPL against the screen's references: L ±3 dB, LFE ±5 dB, R has no reference. */
static void test_spl(void **state)
{
    fx *f = *state;
    put_regular(f, S2, "1/cp950", "spl_dbc", "channel", "L", D0, 10 * MIN, 48, 24, 85, 89);
    put_regular(f, S2, "1/cp950", "spl_dbc", "channel", "LFE", D0, 10 * MIN, 48, 48, 89, 89);
    put_regular(f, S2, "1/cp950", "spl_dbc", "channel", "R", D0, 10 * MIN, 48, 48, 60, 60);
    run(f, DAY);
    json_t *j = report(f, CO_LEVEL_SCREEN, DAY, S2, NULL, NULL);
    assert_int_equal(json_array_size(j), 1);
    json_t *r = json_array_get(j, 0);
    assert_true(fabs(hours(r, "spl") - 16.0) < 1e-9);
    assert_true(fabs(share(r, "spl") - 0.75) < 1e-9);
    assert_true(share(r, "luminance") < 0);
    json_decref(j);
}

/* White point: x and y samples are judged separately and both count. */
static void test_white(void **state)
{
    fx *f = *state;
    put_regular(f, S3, "1/proj", "white_x", "mode", "2d", D0, HOUR, 4, 4, 0.314, 0.314);
    put_regular(f, S3, "1/proj", "white_y", "mode", "2d", D0, HOUR, 4, 2, 0.351, 0.370);
    run(f, DAY);
    json_t *j = report(f, CO_LEVEL_SCREEN, DAY, NULL, NULL, NULL);
    json_t *r = screen_row(j, S3, "1");
    assert_true(fabs(hours(r, "white") - 8.0) < 1e-9);
    assert_true(fabs(share(r, "white") - 6.0 / 8.0) < 1e-9);
    json_decref(j);
}

/* Roll-ups weight by time: the share of a group is sum(in) / sum(measured). */
static void test_rollups(void **state)
{
    fx *f = *state;
    /* S1/1: 6 h in of 8; S1/2 (review): 0 of 24; S3/1: 2 of 2; S2/1: SPL only */
    put_regular(f, S1, "1/proj", "screen_luminance_nits", "mode", "2d", D0, MIN, 480, 360, 48, 30);
    put(f, S1, "rr-proj", "2", "screen_luminance_nits", "mode", "2d",
        (int64_t[]){D0, D0 + 6 * HOUR, D0 + 12 * HOUR, D0 + 18 * HOUR}, (double[]){44, 44, 44, 44},
        4);
    put_regular(f, S3, "1/proj", "screen_luminance_nits", "mode", "2d", D0, HOUR, 2, 2, 50, 50);
    put_regular(f, S2, "1/cp950", "spl_dbc", "channel", "L", D0, 10 * MIN, 48, 48, 85, 85);
    /* no explicit run: the report computes a past day that was never computed */
    json_t *j = report(f, CO_LEVEL_PROVINCE, DAY, NULL, NULL, NULL);
    assert_int_equal(json_array_size(j), 2);
    json_t *p1 = json_array_get(j, 0), *p2 = json_array_get(j, 1);
    assert_string_equal(json_string_value(json_object_get(p1, "province")), "P1");
    assert_null(json_object_get(p1, "city"));
    assert_true(fabs(share(p1, "luminance") - 6.0 / 32.0) < 1e-9); /* not (0.75 + 0) / 2 */
    assert_true(fabs(hours(p1, "luminance") - 32.0) < 1e-9);
    assert_true(share(p1, "spl") == 1.0);
    assert_int_equal(json_integer_value(json_object_get(p1, "screens")), 3);
    assert_string_equal(json_string_value(json_object_get(p2, "province")), "P2");
    assert_true(share(p2, "luminance") == 1.0);
    assert_int_equal(json_integer_value(json_object_get(p2, "screens")), 1);
    json_decref(j);

    j = report(f, CO_LEVEL_NATION, DAY, NULL, NULL, NULL);
    assert_int_equal(json_array_size(j), 1);
    assert_true(fabs(share(json_array_get(j, 0), "luminance") - 8.0 / 34.0) < 1e-9);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "screens")), 4);
    json_decref(j);

    j = report(f, CO_LEVEL_CITY, DAY, NULL, "P1", NULL);
    assert_int_equal(json_array_size(j), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "city")), "C1");
    assert_true(fabs(share(json_array_get(j, 0), "luminance") - 6.0 / 32.0) < 1e-9);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "city")), "C2");
    assert_true(share(json_array_get(j, 1), "luminance") < 0);
    json_decref(j);

    j = report(f, CO_LEVEL_SITE, DAY, NULL, NULL, "C1");
    assert_int_equal(json_array_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "site")), S1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "screens")), 2);
    json_decref(j);

    /* a day without data: an empty list */
    j = report(f, CO_LEVEL_NATION, DAY - 3, NULL, NULL, NULL);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
}

/* An override of the rule (through the judge) changes what counts as in tolerance. */
static void test_override(void **state)
{
    fx *f = *state;
    const char *ov = "{\"overrides\": [{\"site\": \"" S3 "\", \"screen\": \"1\", \"rule\":"
                     " \"screen_luminance\", \"set\": {\"tolerance\": 20}}]}";
    char err[256] = "";
    co_overrides *o = co_overrides_parse(f->rules, "ov.json", ov, strlen(ov), err, sizeof err);
    if (!o) fail_msg("overrides: %s", err);
    co_judge *jd = co_judge_new(f->rules, NULL);
    co_judge_set_overrides(jd, o);
    co_compliance *c = co_compliance_new(f->s, f->rules, jd, 0);
    put_regular(f, S3, "1/proj", "screen_luminance_nits", "mode", "2d", D0, HOUR, 4, 2, 48, 30);
    put_regular(f, S1, "1/proj", "screen_luminance_nits", "mode", "2d", D0, HOUR, 4, 2, 48, 30);
    assert_int_equal(co_compliance_run_day(c, DAY, D0 + 30 * HOUR, err, sizeof err), 0);
    json_t *j = co_compliance_report(f->s, NULL, CO_LEVEL_SCREEN, DAY, NULL, NULL, NULL, NULL,
                                     D0 + 30 * HOUR, err, sizeof err);
    assert_non_null(j);
    assert_true(share(screen_row(j, S3, "1"), "luminance") == 1.0); /* 30 within 48 ± 20 */
    assert_true(share(screen_row(j, S1, "1"), "luminance") == 0.5);
    json_decref(j);
    co_compliance_free(c);
    co_judge_free(jd);
}

/* Today is recomputed by the timer once the interval passed, and by a report when stale. */
static void test_tick_and_refresh(void **state)
{
    fx *f = *state;
    int64_t now = D0 + 8 * HOUR;
    char err[256] = "";
    put_regular(f, S1, "1/proj", "screen_luminance_nits", "mode", "2d", D0, HOUR, 4, 4, 48, 48);
    assert_int_equal(co_compliance_tick(f->c, now, err, sizeof err), 0);
    json_t *j = co_compliance_report(f->s, NULL, CO_LEVEL_NATION, DAY, NULL, NULL, NULL, NULL, now,
                                     err, sizeof err);
    assert_true(fabs(hours(json_array_get(j, 0), "luminance") - 4.0) < 1e-9);
    json_decref(j);
    /* more samples: not yet due for the tick, but a report 10 min later recomputes */
    put_regular(f, S1, "1/proj", "screen_luminance_nits", "mode", "2d", D0 + 4 * HOUR, HOUR, 2, 0,
                48, 30);
    assert_int_equal(co_compliance_tick(f->c, now + MIN, err, sizeof err), 0);
    j = co_compliance_report(f->s, NULL, CO_LEVEL_NATION, DAY, NULL, NULL, NULL, NULL, now + MIN,
                             err, sizeof err);
    assert_true(fabs(hours(json_array_get(j, 0), "luminance") - 4.0) < 1e-9);
    json_decref(j);
    j = co_compliance_report(f->s, f->c, CO_LEVEL_NATION, DAY, NULL, NULL, NULL, NULL,
                             now + 10 * MIN, err, sizeof err);
    assert_true(fabs(hours(json_array_get(j, 0), "luminance") - 6.0) < 1e-9);
    assert_true(fabs(share(json_array_get(j, 0), "luminance") - 4.0 / 6.0) < 1e-9);
    json_decref(j);
}

static void test_parse(void **state)
{
    (void)state;
    int64_t d = 0;
    assert_int_equal(co_compliance_day_parse("2025-11-25", &d), 0);
    assert_int_equal(d, DAY);
    assert_int_equal(co_compliance_day_parse("2025-02-30", &d), -1);
    assert_int_equal(co_compliance_day_parse("2025-1-25", &d), -1);
    assert_int_equal(co_compliance_day_parse("2025-11-25T", &d), -1);
    assert_int_equal(co_compliance_day_parse("", &d), -1);
    assert_int_equal(co_compliance_day_parse(NULL, &d), -1);
    char buf[16];
    co_compliance_day_format(DAY + 1, buf, sizeof buf);
    assert_string_equal(buf, "2025-11-26");
    assert_int_equal(co_compliance_day_of(D0 - 1), DAY - 1);
    co_compliance_level l;
    assert_int_equal(co_compliance_level_parse("province", &l), 0);
    assert_int_equal(l, CO_LEVEL_PROVINCE);
    assert_int_equal(co_compliance_level_parse("planet", &l), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_theatre_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_review_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irregular, setup, teardown),
        cmocka_unit_test_setup_teardown(test_day_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_white, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_override, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tick_and_refresh, setup, teardown),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

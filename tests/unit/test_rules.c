/* test_rules.c — rule files: the shipped defaults load, bad files are refused with file and
 * JSON path, holds and bands parse as documented, overrides are validated against the rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/rules.h"

static co_rules *load(const char *json, char *err, size_t errlen)
{
    return co_rules_load_buf("rules/test.json", json, strlen(json), err, errlen);
}

static void test_shipped_defaults_load(void **st)
{
    (void)st;
    char err[512] = "";
    co_rules *r = co_rules_load_dir("collector/rules", err, sizeof err);
    if (!r) fail_msg("%s", err);
    assert_true(co_rules_count(r) >= 35);
    int kinds[5] = {0};
    for (size_t i = 0; i < co_rules_count(r); i++) {
        const co_rule *ru = co_rules_at(r, i);
        assert_non_null(ru->standard);
        assert_true(strlen(ru->standard) > 3);
        assert_non_null(ru->description);
        kinds[ru->kind]++;
    }
    for (int k = 0; k < 5; k++)
        assert_true(kinds[k] > 0); /* every kind is shipped */
    /* One line of each table of metrics.md. */
    static const char *const ids[] = {
        "screen_luminance",        "white_point_x",     "spl_deviation",
        "spl_deviation_subwoofer", "av_sync_offset",    "projector_fault",
        "light_source_life",       "kdm_expiring",      "security_log_backlog",
        "led_cabinet_offline",     "booth_temperature", "ups_runtime_low",
        "device_silent",           "device_trap",       "fan_stopped"};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        if (!co_rules_find(r, ids[i])) fail_msg("shipped rule %s missing", ids[i]);
    }
    const co_rule *lum = co_rules_find(r, "screen_luminance");
    assert_string_equal(lum->file, "collector/rules/picture.json");
    assert_int_equal(lum->hold.samples, 3); /* the default hold: 3 samples or 2 minutes */
    assert_int_equal(lum->hold.ms, 120000);
    assert_true(lum->nchoices >= 7);
    assert_true(lum->needs_screen);
    assert_non_null(lum->json);

    /* The index: one lookup gives the rules of a metric; unknown metrics give none. */
    size_t n;
    int ref;
    const co_rule *const *v = co_rules_for_metric(r, "spl_dbc", &n, &ref);
    assert_int_equal(n, 2);
    assert_non_null(v);
    v = co_rules_for_metric(r, "no_such_metric", &n, &ref);
    assert_null(v);
    assert_int_equal(n, 0);
    co_rules_for_metric(r, "light_source_rated_hours", &n, &ref);
    assert_int_equal(n, 0);
    assert_int_equal(ref, 1); /* read by light_source_life */
    co_rules_any_metric(r, &n);
    assert_int_equal(n, 1);
    co_rules_events(r, &n);
    assert_int_equal(n, 2); /* device_trap, network_link */
    co_rules_free(r);
}

static void test_hold_forms(void **st)
{
    (void)st;
    char err[512] = "";
    co_rules *r = load(
        "{\"rules\": ["
        "{\"id\":\"a\",\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,\"hold\":5,"
        "\"standard\":\"s\",\"description\":\"d\"},"
        "{\"id\":\"b\",\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,\"hold\":\"90s\","
        "\"standard\":\"s\",\"description\":\"d\"},"
        "{\"id\":\"c\",\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,"
        "\"hold\":{\"samples\":2,\"duration\":\"1m\"},\"standard\":\"s\",\"description\":\"d\"},"
        "{\"id\":\"d\",\"kind\":\"threshold\",\"metric\":\"m\",\"target\":10,\"tolerance\":2,"
        "\"critical\":{\"min\":5,\"max\":15},\"standard\":\"s\",\"description\":\"d\"}]}",
        err, sizeof err);
    if (!r) fail_msg("%s", err);
    assert_int_equal(co_rules_find(r, "a")->hold.samples, 5);
    assert_int_equal(co_rules_find(r, "a")->hold.ms, 0);
    assert_int_equal(co_rules_find(r, "b")->hold.samples, 0);
    assert_int_equal(co_rules_find(r, "b")->hold.ms, 90000);
    assert_int_equal(co_rules_find(r, "c")->hold.samples, 2);
    assert_int_equal(co_rules_find(r, "c")->hold.ms, 60000);
    const co_rule *d = co_rules_find(r, "d");
    assert_int_equal(d->nchoices, 1);
    const co_band *w = &d->choices[0].lim.band[CO_SEV_WARNING];
    assert_true(w->set && w->has_lo && w->has_hi);
    assert_true(w->lo == 8 && w->hi == 12);
    const co_band *c = &d->choices[0].lim.band[CO_SEV_CRITICAL];
    assert_true(c->set && c->lo == 5 && c->hi == 15);
    assert_false(d->choices[0].lim.band[CO_SEV_INFO].set);
    co_rules_free(r);
}

/* Bad files: each error must name the file and the JSON path. */
static void test_bad_rule_files(void **st)
{
    (void)st;
#define R(extra)                                                                                   \
    "{\"rules\":[{\"id\":\"r1\",\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,"                \
    "\"standard\":\"s\",\"description\":\"d\"},{\"id\":\"r2\",\"standard\":\"s\","                 \
    "\"description\":\"d\"," extra "}]}"
    static const struct {
        const char *json, *path, *msg;
    } cases[] = {
        {"[1]", "$", "expected an object"},
        {"{\"rules\": 3}", "rules", "expected an array"},
        {"{\"rules\": [], \"extra\": 1}", "extra", "unknown key"},
        {"{\"rules\":[1]}", "rules[0]", "expected an object"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,\"hold\":true"), "rules[1].hold",
         "expected a duration string like \"2m\" or a sample count"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,\"hold\":\"soon\""), "rules[1].hold",
         "expected a duration string like \"2m\" or a sample count"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,\"hold\":-1"), "rules[1].hold",
         "sample count"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,\"hold\":{\"samples\":2,\"x\":1}"),
         "rules[1].hold.x", "unknown key"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,\"colour\":\"red\""),
         "rules[1].colour", "unknown key"},
        {R("\"kind\":\"blink\",\"metric\":\"m\""), "rules[1].kind", "expected one of"},
        {R("\"metric\":\"m\",\"max\":1"), "rules[1].kind", "missing"},
        {R("\"kind\":\"threshold\",\"max\":1"), "rules[1].metric", "missing"},
        {R("\"kind\":\"threshold\",\"metric\":\"Bad-Name\",\"max\":1"), "rules[1].metric",
         "not a metric name"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\""), "rules[1]", "no limits"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"max\":\"1\""), "rules[1].max",
         "expected a number"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"min\":5,\"max\":1"), "rules[1].min",
         "greater than max"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"target\":5"), "rules[1].tolerance",
         "missing"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"target\":5,\"tolerance\":1,\"min\":3"),
         "rules[1].min", "either target"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"target\":5,\"tolerance\":-1"),
         "rules[1].tolerance", ">= 0"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"target\":5,\"tolerance\":1,\"hysteresis\":1"),
         "rules[1]", "hysteresis 1 leaves no room"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,\"severity\":\"loud\""),
         "rules[1].severity", "expected info, warning or critical"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,\"warning\":{\"max\":2}"),
         "rules[1].warning", "already given"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"critical\":{\"max\":2,\"low\":1}"),
         "rules[1].critical.low", "unknown key"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"targets\":[{\"when\":{\"class\":\"cinema\"},"
           "\"max\":1}]"),
         "rules[1].targets[0].when.class", "theatre"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"targets\":[{\"max\":1},{\"when\":{\"mode\":"
           "\"4d\"},\"max\":1}]"),
         "rules[1].targets[1].when.mode", "\"2d\""},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"targets\":[{\"when\":{\"mode\":\"2d\"}}]"),
         "rules[1].targets[0]", "no limits"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"max\":3,\"targets\":[{\"max\":1}]"),
         "rules[1].targets", "either targets"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"targets\":[]"), "rules[1].targets",
         "non-empty"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,\"match\":{\"channel\":5}"),
         "rules[1].match.channel", "string"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,\"match\":{\"channel\":{\"is\":\"L\"}"
           "}"),
         "rules[1].match.channel.is", "unknown key"},
        {R("\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,\"while\":{\"metric\":\"p\",\"in\":[]"
           "}"),
         "rules[1].while.in", "array"},
        {R("\"kind\":\"deviation\",\"metric\":\"m\",\"target\":3,\"tolerance\":1"),
         "rules[1].target", "unknown key for a deviation rule"},
        {R("\"kind\":\"deviation\",\"metric\":\"m\",\"tolerance\":1,\"percent\":1"),
         "rules[1].percent", "true or false"},
        {R("\"kind\":\"rate\",\"metric\":\"m\",\"tolerance\":1,\"window\":\"0s\""),
         "rules[1].window", "at least"},
        {R("\"kind\":\"absence\",\"metric\":\"m\",\"hold\":3"), "rules[1].hold",
         "unknown key for a absence rule"},
        {R("\"kind\":\"absence\",\"metric\":\"m\",\"exclude\":[\"up\"]"), "rules[1].exclude",
         "only with metric"},
        {R("\"kind\":\"absence\",\"metric\":\"*\",\"intervals\":0"), "rules[1].intervals",
         "out of range"},
        {R("\"kind\":\"threshold\",\"metric\":\"*\",\"max\":1"), "rules[1].metric",
         "not a metric name"},
        {R("\"kind\":\"event\",\"metric\":\"m\",\"code\":\"x\""), "rules[1].metric",
         "unknown key for a event rule"},
        {R("\"kind\":\"event\""), "rules[1].code", "missing"},
        {R("\"kind\":\"event\",\"code\":\"*\",\"clear_code\":\"ok\""), "rules[1].clear_code",
         "specific code"},
        {R("\"kind\":\"event\",\"code\":\"x\",\"resolve_after\":5"), "rules[1].resolve_after",
         "duration"},
        {"{\"rules\":[{\"id\":\"a\",\"kind\":\"event\",\"code\":\"x\",\"description\":\"d\"}]}",
         "rules[0].standard", "missing"},
        {"{\"rules\":[{\"id\":\"A "
         "b\",\"kind\":\"event\",\"code\":\"x\",\"standard\":\"s\",\"description\":\"d\"}]}",
         "rules[0].id", "not a valid name"},
        {"{\"rules\":[{\"id\":\"a\",\"kind\":\"event\",\"code\":\"x\",\"standard\":\"s\","
         "\"description\":\"d\"},"
         "{\"id\":\"a\",\"kind\":\"event\",\"code\":\"y\",\"standard\":\"s\",\"description\":\"d\"}"
         "]}",
         "rules[1].id", "duplicate rule id \"a\" (first in rules/test.json)"},
    };
#undef R
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[512] = "";
        co_rules *r = load(cases[i].json, err, sizeof err);
        if (r) fail_msg("case %zu accepted: %s", i, cases[i].json);
        char want[300];
        snprintf(want, sizeof want, "rules/test.json: %s: ", cases[i].path);
        if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, cases[i].msg))
            fail_msg("case %zu: got \"%s\", want \"%s...%s\"", i, err, want, cases[i].msg);
    }
}

static void test_duplicate_key_and_syntax(void **st)
{
    (void)st;
    char err[512] = "";
    assert_null(load("{\"rules\": [], \"rules\": []}", err, sizeof err));
    assert_non_null(strstr(err, "rules/test.json:1:"));
    assert_non_null(strstr(err, "duplicate"));
    assert_null(load("{\"rules\": [", err, sizeof err));
    assert_non_null(strstr(err, "rules/test.json:1:"));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_load_dir(void **st)
{
    (void)st;
    char dir[] = "/tmp/cinemon-rules-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char a[300], b[300], c[300];
    snprintf(a, sizeof a, "%s/b.json", dir);
    snprintf(b, sizeof b, "%s/a.json", dir);
    snprintf(c, sizeof c, "%s/notes.txt", dir);
    write_file(a,
               "{\"rules\":[{\"id\":\"second\",\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,"
               "\"standard\":\"s\",\"description\":\"d\"}]}");
    write_file(b, "{\"rules\":[{\"id\":\"first\",\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,"
                  "\"standard\":\"s\",\"description\":\"d\"}]}");
    write_file(c, "not json and ignored");
    char err[512] = "";
    co_rules *r = co_rules_load_dir(dir, err, sizeof err);
    if (!r) fail_msg("%s", err);
    assert_int_equal(co_rules_count(r), 2);
    assert_string_equal(co_rules_at(r, 0)->id, "first"); /* files in name order */
    assert_string_equal(co_rules_at(r, 1)->id, "second");
    co_rules_free(r);

    /* The same id in two files: the second file is named, and where the first one is. */
    write_file(a, "{\"rules\":[{\"id\":\"first\",\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,"
                  "\"standard\":\"s\",\"description\":\"d\"}]}");
    assert_null(co_rules_load_dir(dir, err, sizeof err));
    assert_non_null(strstr(err, "b.json: rules[0].id: duplicate rule id \"first\""));
    assert_non_null(strstr(err, "a.json"));

    write_file(a, "{\"rules\":[{\"id\":\"x\",\"kind\":\"threshold\",\"metric\":\"m\",\"max\":1,\n"
                  "\"standard\":\"s\",\"description\":\"d\",\"hold\":\"later\"}]}");
    assert_null(co_rules_load_dir(dir, err, sizeof err));
    char want[400];
    snprintf(want, sizeof want, "%s/b.json: rules[0].hold: expected a duration string", dir);
    if (!strstr(err, want)) fail_msg("%s", err);

    unlink(a);
    unlink(b);
    unlink(c);
    rmdir(dir);
    assert_null(co_rules_load_dir(dir, err, sizeof err));
    assert_non_null(strstr(err, dir));
}

static void test_overrides(void **st)
{
    (void)st;
    char err[512] = "";
    co_rules *r = co_rules_load_dir("collector/rules", err, sizeof err);
    if (!r) fail_msg("%s", err);
    const char *good =
        "{\"overrides\":["
        "{\"site\":\"S1\",\"rule\":\"screen_luminance\",\"set\":{\"tolerance\":5,\"hysteresis\":0."
        "5}},"
        "{\"site\":\"S1\",\"screen\":\"hall2\",\"rule\":\"screen_luminance\","
        "\"set\":{\"target\":50,\"tolerance\":4,\"hysteresis\":0.5,\"hold\":\"5m\"}},"
        "{\"site\":\"S2\",\"rule\":\"device_silent\",\"set\":{\"intervals\":10}},"
        "{\"site\":\"S2\",\"rule\":\"device_trap\",\"set\":{\"enabled\":false}},"
        "{\"site\":\"S2\",\"rule\":\"av_sync_offset\",\"set\":{\"critical\":{\"max\":60}}}]}";
    co_overrides *o = co_overrides_parse(r, "ov.json", good, strlen(good), err, sizeof err);
    if (!o) fail_msg("%s", err);
    const co_rule *lum = co_rules_find(r, "screen_luminance");
    const co_override *ov = co_overrides_find(o, lum, "S1", "hall2", &lum->choices[1]);
    assert_non_null(ov);
    assert_true(ov->has_hold && ov->hold.ms == 300000);
    assert_true(ov->band[CO_SEV_WARNING].has_target && ov->band[CO_SEV_WARNING].target == 50);
    ov = co_overrides_find(o, lum, "S1", "hall1", &lum->choices[1]); /* the site's */
    assert_non_null(ov);
    assert_true(ov->band[CO_SEV_WARNING].has_tol && ov->band[CO_SEV_WARNING].tol == 5);
    assert_false(ov->band[CO_SEV_WARNING].has_target);
    assert_null(co_overrides_find(o, lum, "S9", "hall1", &lum->choices[1]));
    /* Applied to the theatre 2d choice: 48 ± 5. */
    co_limits l = lum->choices[1].lim;
    co_limits_apply(&l, ov);
    assert_true(l.band[CO_SEV_WARNING].lo == 43 && l.band[CO_SEV_WARNING].hi == 53);
    const co_override *sil =
        co_overrides_find(o, co_rules_find(r, "device_silent"), "S2", NULL, NULL);
    assert_true(sil && sil->has_intervals && sil->intervals == 10);
    co_overrides_free(o);

    static const struct {
        const char *json, *path, *msg;
    } bad[] = {
        {"{\"overrides\":[{\"site\":\"S1\",\"rule\":\"nope\",\"set\":{}}]}", "overrides[0].rule",
         "unknown rule"},
        {"{\"overrides\":[{\"rule\":\"clock_offset\",\"set\":{}}]}", "overrides[0].site",
         "missing"},
        {"{\"overrides\":[{\"site\":\"S\",\"rule\":\"clock_offset\"}]}", "overrides[0].set",
         "missing"},
        {"{\"overrides\":[{\"site\":\"S\",\"rule\":\"clock_offset\",\"set\":{\"colour\":1}}]}",
         "overrides[0].set.colour", "not a setting"},
        {"{\"overrides\":[{\"site\":\"S\",\"rule\":\"device_silent\",\"set\":{\"max\":1}}]}",
         "overrides[0].set.max", "not a setting of a absence rule"},
        {"{\"overrides\":[{\"site\":\"S\",\"rule\":\"clock_offset\",\"set\":{\"hold\":\"x\"}}]}",
         "overrides[0].set.hold", "duration"},
        {"{\"overrides\":[{\"site\":\"S\",\"rule\":\"booth_temperature\",\"set\":{\"tolerance\":3}}"
         "]}",
         "overrides[0].set.tolerance", "no warning target"},
        {"{\"overrides\":[{\"site\":\"S\",\"rule\":\"booth_temperature\",\"set\":{\"min\":40}}]}",
         "overrides[0].set", "becomes empty"},
        {"{\"overrides\":[{\"site\":\"S\",\"rule\":\"clock_offset\",\"set\":{\"tolerance\":1}}]}",
         "overrides[0].set", "hysteresis 2 leaves no room"},
        {"{\"overrides\":[{\"site\":\"S\",\"rule\":\"clock_offset\",\"set\":{}},"
         "{\"site\":\"S\",\"rule\":\"clock_offset\",\"set\":{}}]}",
         "overrides[1]", "a second override"},
        {"{\"overrides\":[{\"site\":\"S\",\"rule\":\"clock_offset\",\"set\":{\"enabled\":\"no\"}}]"
         "}",
         "overrides[0].set.enabled", "true or false"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        o = co_overrides_parse(r, "ov.json", bad[i].json, strlen(bad[i].json), err, sizeof err);
        if (o) fail_msg("override case %zu accepted", i);
        char want[300];
        snprintf(want, sizeof want, "ov.json: %s: ", bad[i].path);
        if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, bad[i].msg))
            fail_msg("override case %zu: got \"%s\", want \"%s...%s\"", i, err, want, bad[i].msg);
    }
    co_rules_free(r);
}

static void test_overrides_load_file(void **st)
{
    (void)st;
    char err[512] = "";
    co_rules *r = co_rules_load_dir("collector/rules", err, sizeof err);
    if (!r) fail_msg("%s", err);
    char path[] = "/tmp/cinemon-ov-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path,
               "{\"overrides\":[{\"site\":\"S\",\"rule\":\"kdm_expiring\",\"set\":{\"min\":72}}]}");
    co_overrides *o = co_overrides_load(r, path, err, sizeof err);
    if (!o) fail_msg("%s", err);
    const co_override *ov = co_overrides_find(o, co_rules_find(r, "kdm_expiring"), "S", "h", NULL);
    assert_true(ov && ov->band[CO_SEV_WARNING].has_lo && ov->band[CO_SEV_WARNING].lo == 72);
    co_overrides_free(o);
    write_file(
        path,
        "{\"overrides\":[{\"site\":\"S\",\"rule\":\"kdm_expiring\",\"set\":{\"min\":\"72\"}}]}");
    assert_null(co_overrides_load(r, path, err, sizeof err));
    char want[300];
    snprintf(want, sizeof want, "%s: overrides[0].set.min: expected a number", path);
    assert_string_equal(err, want);
    unlink(path);
    assert_null(co_overrides_load(r, path, err, sizeof err));
    assert_non_null(strstr(err, path));
    co_rules_free(r);
}

static void test_names(void **st)
{
    (void)st;
    co_severity s;
    assert_int_equal(co_severity_parse("critical", &s), 0);
    assert_int_equal(s, CO_SEV_CRITICAL);
    assert_int_equal(co_severity_parse("loud", &s), -1);
    assert_string_equal(co_severity_name(CO_SEV_INFO), "info");
    assert_string_equal(co_rule_kind_name(CO_RULE_ABSENCE), "absence");
    co_mode m;
    assert_int_equal(co_mode_parse("hdr", &m), 0);
    assert_int_equal(m, CO_MODE_HDR);
    co_display d;
    assert_int_equal(co_display_parse("led", &d), 0);
    assert_int_equal(d, CO_DISPLAY_LED);
    co_screen_class c;
    assert_int_equal(co_screen_class_parse("review", &c), 0);
    assert_int_equal(c, CO_CLASS_REVIEW);
    assert_int_equal(co_screen_class_parse(NULL, &c), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_defaults_load),
        cmocka_unit_test(test_hold_forms),
        cmocka_unit_test(test_bad_rule_files),
        cmocka_unit_test(test_duplicate_key_and_syntax),
        cmocka_unit_test(test_load_dir),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_overrides_load_file),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests_name("rules", tests, NULL, NULL);
}

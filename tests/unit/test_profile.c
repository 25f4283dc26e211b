/* test_profile.c — device profiles: the shipped files, sysObjectID matching, value mapping
 * and the JSON-path errors of malformed profiles. Runs with cwd = the repository root. */
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

#include "agent/profile.h"

static ag_profile_set g_set;

static int load_all(void **st)
{
    (void)st;
    char err[512] = "";
    if (ag_profiles_load_dir("profiles", &g_set, err, sizeof err) != 0) {
        fprintf(stderr, "profiles: %s\n", err);
        return -1;
    }
    return 0;
}

static int free_all(void **st)
{
    (void)st;
    ag_profiles_free(&g_set);
    return 0;
}

static void test_shipped_profiles_load(void **st)
{
    (void)st;
    const char *names[] = {"christie-cp-series2", "epson-projector", "generic-snmp-host", "ups-apc",
                           "ups-rfc1628"};
    assert_true(g_set.nprofiles >= 5);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const ag_profile *p = ag_profile_find(&g_set, names[i]);
        if (!p) fail_msg("profile %s not loaded", names[i]);
        assert_string_equal(p->protocol, "snmp");
        assert_true(p->nscalars + p->ntables > 0);
    }
    /* sorted by name */
    for (size_t i = 1; i < g_set.nprofiles; i++)
        assert_true(strcmp(g_set.profiles[i - 1].name, g_set.profiles[i].name) < 0);
    assert_null(ag_profile_find(&g_set, "barco-clickshare"));

    /* Christie: identity and lamp hours with lamp="1" */
    const ag_profile *c = ag_profile_find(&g_set, "christie-cp-series2");
    assert_int_equal(c->nidentity, 3);
    int lamp = 0;
    for (size_t i = 0; i < c->nscalars; i++) {
        if (strcmp(c->scalars[i].metric, "light_source_hours") == 0) {
            char buf[128];
            ag_oid_format(&c->scalars[i].oid, buf, sizeof buf);
            assert_string_equal(buf, "1.3.6.1.4.1.25766.1.12.1.1.3.5.1.6.1");
            assert_int_equal(c->scalars[i].nlabels, 1);
            assert_string_equal(c->scalars[i].labels[0].key, "lamp");
            assert_string_equal(c->scalars[i].labels[0].value, "1");
            lamp = 1;
        }
    }
    assert_true(lamp);

    /* generic host: the CPU table carries an index label, storage a label column */
    const ag_profile *g = ag_profile_find(&g_set, "generic-snmp-host");
    int cpu = 0, storage = 0;
    for (size_t i = 0; i < g->ntables; i++) {
        const ag_table *t = &g->tables[i];
        if (t->index_label && strcmp(t->index_label, "cpu") == 0)
            cpu = strcmp(t->columns[0].metric, "cpu_load_percent") == 0;
        if (t->nlabel_columns == 1 && strcmp(t->label_columns[0].label, "storage") == 0)
            storage = t->label_columns[0].column == 3;
    }
    assert_true(cpu);
    assert_true(storage);
}

static const ag_profile *match(const char *oidtext)
{
    ag_oid o;
    assert_int_equal(ag_oid_parse(oidtext, &o), 0);
    return ag_profile_match(&g_set, &o);
}

static void test_match(void **st)
{
    (void)st;
    const ag_profile *p = match("1.3.6.1.4.1.25766.1.12.1.4");
    assert_non_null(p);
    assert_string_equal(p->name, "christie-cp-series2");
    assert_null(match("1.3.6.1.4.1.7312.2468")); /* Barco ClickShare: no projector profile */
    p = match("1.3.6.1.4.1.8072.3.2.10");
    assert_non_null(p);
    assert_string_equal(p->name, "generic-snmp-host");
    p = match(".1.3.6.1.4.1.1248.4.1");
    assert_non_null(p);
    assert_string_equal(p->name, "epson-projector");
    p = match("1.3.6.1.4.1.318.1.3.27");
    assert_non_null(p);
    assert_string_equal(p->name, "ups-apc");
    p = match("1.3.6.1.2.1.33");
    assert_non_null(p);
    assert_string_equal(p->name, "ups-rfc1628");
    /* prefix on whole sub-identifiers: 25766 is not a prefix of 257660 */
    assert_null(match("1.3.6.1.4.1.257660.1"));
    assert_null(match("1.3.6.1.4.1")); /* shorter than every prefix */
}

static void test_longest_prefix_wins(void **st)
{
    (void)st;
    ag_oid a, b, sys;
    assert_int_equal(ag_oid_parse("1.3.6.1.4.1.25766", &a), 0);
    assert_int_equal(ag_oid_parse("1.3.6.1.4.1.25766.1.12", &b), 0);
    ag_profile ps[2];
    memset(ps, 0, sizeof ps);
    ps[0].name = "short";
    ps[0].match = &a;
    ps[0].nmatch = 1;
    ps[1].name = "long";
    ps[1].match = &b;
    ps[1].nmatch = 1;
    ag_profile_set set = {ps, 2};
    assert_int_equal(ag_oid_parse("1.3.6.1.4.1.25766.1.12.1.4", &sys), 0);
    assert_string_equal(ag_profile_match(&set, &sys)->name, "long");
    assert_int_equal(ag_oid_parse("1.3.6.1.4.1.25766.2", &sys), 0);
    assert_string_equal(ag_profile_match(&set, &sys)->name, "short");
}

static void test_oid_parse_format(void **st)
{
    (void)st;
    ag_oid o;
    char buf[64];
    assert_int_equal(ag_oid_parse(".1.3.6.1.2.1.1.3.0", &o), 0);
    assert_int_equal(o.len, 9);
    ag_oid_format(&o, buf, sizeof buf);
    assert_string_equal(buf, "1.3.6.1.2.1.1.3.0");
    assert_int_equal(ag_oid_parse("1.3.6.1.4294967295", &o), 0);
    assert_int_equal(o.sub[4], 4294967295u);
    assert_int_equal(ag_oid_parse("1.3.6.1.4294967296", &o), -1);
    assert_int_equal(ag_oid_parse("1..3", &o), -1);
    assert_int_equal(ag_oid_parse("1.3.", &o), -1);
    assert_int_equal(ag_oid_parse("1.3.x", &o), -1);
    assert_int_equal(ag_oid_parse("", &o), -1);
    assert_int_equal(ag_oid_parse("1.-3", &o), -1);
    ag_oid_parse("1.3.6.1.2.1.1.3.0", &o);
    ag_oid_format(&o, buf, 8); /* truncated, still terminated */
    assert_true(strlen(buf) < 8);
}

static double map_num(const ag_value_map *m, double raw, int want_rc)
{
    ag_raw r = {AG_RAW_NUM, raw, NULL, 0};
    double out = -12345;
    char err[128];
    assert_int_equal(ag_value_map_apply(m, &r, &out, err, sizeof err), want_rc);
    return out;
}

static void test_value_map(void **st)
{
    (void)st;
    ag_value_map plain = {1, 0, NULL, 0};
    ag_value_map ticks = {0.01, 0, NULL, 0};
    ag_value_map tenths = {0.1, 0, NULL, 0};
    ag_value_map kelvin = {1, -273.15, NULL, 0};
    assert_true(fabs(map_num(&ticks, 3397390769.0, 0) - 33973907.69) < 1e-6);
    assert_true(fabs(map_num(&tenths, 234, 0) - 23.4) < 1e-9);
    assert_true(fabs(map_num(&kelvin, 300, 0) - 26.85) < 1e-9);
    assert_true(map_num(&plain, -4, 0) == -4);

    ag_enum_entry e[] = {{"1", 0}, {"2", 1}, {"onLine", 7}};
    ag_value_map en = {1, 0, e, 3};
    assert_true(map_num(&en, 2, 0) == 1);
    assert_true(map_num(&en, 1, 0) == 0);
    map_num(&en, 3, -1); /* not in the enum */

    char err[128];
    double out = 0;
    ag_raw s = {AG_RAW_STR, 0, "onLine  ", 8};
    assert_int_equal(ag_value_map_apply(&en, &s, &out, err, sizeof err), 0);
    assert_true(out == 7);
    ag_raw s2 = {AG_RAW_STR, 0, "2\0", 2};
    assert_int_equal(ag_value_map_apply(&en, &s2, &out, err, sizeof err), 0);
    assert_true(out == 1);

    /* Barco ClickShare: a temperature as NUL-terminated text */
    ag_raw click = {AG_RAW_STR, 0, "55.652\0", 7};
    assert_int_equal(ag_value_map_apply(&plain, &click, &out, err, sizeof err), 0);
    assert_true(fabs(out - 55.652) < 1e-9);
    assert_int_equal(ag_value_map_apply(&tenths, &click, &out, err, sizeof err), 0);
    assert_true(fabs(out - 5.5652) < 1e-9);

    /* no value: Null, empty or only NULs/spaces */
    ag_raw null = {AG_RAW_NULL, 0, NULL, 0};
    out = 99;
    assert_int_equal(ag_value_map_apply(&plain, &null, &out, err, sizeof err), 1);
    assert_true(out == 99);
    ag_raw empty = {AG_RAW_STR, 0, "\0\0 ", 3};
    assert_int_equal(ag_value_map_apply(&plain, &empty, &out, err, sizeof err), 1);
    ag_raw none = {AG_RAW_STR, 0, NULL, 0};
    assert_int_equal(ag_value_map_apply(&plain, &none, &out, err, sizeof err), 1);

    /* text that is not a number */
    const char *bad[] = {"<private>", "12abc", "nan", "inf", "0x10", "1.2.3", "-", "1e999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ag_raw b = {AG_RAW_STR, 0, bad[i], strlen(bad[i])};
        err[0] = '\0';
        if (ag_value_map_apply(&plain, &b, &out, err, sizeof err) != -1)
            fail_msg("'%s' mapped to a number", bad[i]);
        assert_true(err[0] != '\0');
    }
    ag_raw neg = {AG_RAW_STR, 0, " -26 ", 5};
    assert_int_equal(ag_value_map_apply(&plain, &neg, &out, err, sizeof err), 0);
    assert_true(out == -26);
    /* a binary string is not parsed past its length */
    ag_raw part = {AG_RAW_STR, 0, "123456", 3};
    assert_int_equal(ag_value_map_apply(&plain, &part, &out, err, sizeof err), 0);
    assert_true(out == 123);
}

/* ---- malformed profiles ------------------------------------------------------------- */

static char g_dir[64];

static int make_dir(void **st)
{
    (void)st;
    snprintf(g_dir, sizeof g_dir, "/tmp/cinemon-test-profile-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int remove_dir(void **st)
{
    (void)st;
    return rmdir(g_dir);
}

/* Load `text` as <dir>/<name>.json; expect failure whose message contains want. */
static void expect_error(const char *name, const char *text, const char *want)
{
    char path[256], err[512] = "";
    snprintf(path, sizeof path, "%s/%s.json", g_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    ag_profile p;
    int rc = ag_profile_load(path, &p, err, sizeof err);
    unlink(path);
    if (rc != -1) fail_msg("profile loaded but should fail with '%s'\n%s", want, text);
    if (!strstr(err, want)) fail_msg("error '%s' does not contain '%s'", err, want);
    if (strncmp(err, path, strlen(path)) != 0)
        fail_msg("error '%s' does not start with the file name", err);
}

#define HEAD                                                                                       \
    "{\"name\": \"bad\", \"kind\": \"projector\", \"protocol\": \"snmp\", \"sources\": "           \
    "[\"test\"], "
#define SCALAR "{\"oid\": \"1.3.6.1.2.1.1.3.0\", \"metric\": \"uptime_seconds\"}"

static void test_malformed(void **st)
{
    (void)st;
    static const struct {
        const char *json, *want;
    } cases[] = {
        {HEAD "\"scalars\": [" SCALAR "], \"colour\": 1}", "$.colour: unknown key"},
        {HEAD "\"scalars\": [{\"oid\": \"1.3.x.6\", \"metric\": \"a\"}]}",
         "$.scalars[0].oid: '1.3.x.6' is not a numeric OID"},
        {HEAD "\"scalars\": [{\"oid\": 13, \"metric\": \"a\"}]}",
         "$.scalars[0].oid: expected an OID"},
        {HEAD "\"scalars\": [{\"metric\": \"a\"}]}", "$.scalars[0].oid: missing"},
        {HEAD "\"scalars\": [{\"oid\": \"1.3.6\", \"metric\": \"Lamp_Hours\"}]}",
         "$.scalars[0].metric: 'Lamp_Hours' is not a valid name"},
        {HEAD "\"scalars\": [{\"oid\": \"1.3.6\", \"metric\": \"9lives\"}]}",
         "$.scalars[0].metric: '9lives' is not a valid name"},
        {HEAD "\"scalars\": [{\"oid\": \"1.3.6\", \"metric\": \"a\", \"enum\": {\"1\": \"on\"}}]}",
         "$.scalars[0].enum['1']: expected a number"},
        {HEAD "\"scalars\": [{\"oid\": \"1.3.6\", \"metric\": \"a\", \"enum\": {\"on\": null}}]}",
         "$.scalars[0].enum.on: expected a number"},
        {HEAD "\"scalars\": [{\"oid\": \"1.3.6\", \"metric\": \"a\", \"enum\": {}}]}",
         "$.scalars[0].enum: must not be empty"},
        {HEAD "\"scalars\": [{\"oid\": \"1.3.6\", \"metric\": \"a\", \"scale\": \"10\"}]}",
         "$.scalars[0].scale: expected a number"},
        {HEAD
         "\"scalars\": [{\"oid\": \"1.3.6\", \"metric\": \"a\", \"labels\": {\"Lamp\": \"1\"}}]}",
         "$.scalars[0].labels.Lamp: 'Lamp' is not a valid label name"},
        {HEAD "\"scalars\": [{\"oid\": \"1.3.6\", \"metric\": \"a\", \"labels\": {\"lamp\": 1}}]}",
         "$.scalars[0].labels.lamp: expected a string"},
        {HEAD "\"scalars\": [{\"oid\": \"1.3.6\", \"metric\": \"a\", \"note\": 3}]}",
         "$.scalars[0].note: expected a string"},
        {HEAD "\"scalars\": [{\"oid\": \"1.3.6\", \"metric\": \"a\", \"units\": \"h\"}]}",
         "$.scalars[0].units: unknown key"},
        {"{\"kind\": \"projector\", \"protocol\": \"snmp\", \"sources\": [\"x\"], \"scalars\": "
         "[" SCALAR "]}",
         "$.name: missing"},
        {"{\"name\": \"other\", \"kind\": \"projector\", \"protocol\": \"snmp\", \"sources\": "
         "[\"x\"], "
         "\"scalars\": [" SCALAR "]}",
         "$.name: 'other' differs from the file name 'bad'"},
        {"{\"name\": \"bad\", \"kind\": \"projector\", \"protocol\": \"snmp\", \"scalars\": "
         "[" SCALAR "]}",
         "$.sources: missing"},
        {"{\"name\": \"bad\", \"kind\": \"toaster\", \"protocol\": \"snmp\", \"sources\": [\"x\"], "
         "\"scalars\": [" SCALAR "]}",
         "$.kind: unknown kind 'toaster'"},
        {"{\"name\": \"bad\", \"kind\": \"projector\", \"protocol\": \"modbus\", \"sources\": "
         "[\"x\"], "
         "\"scalars\": [" SCALAR "]}",
         "$.protocol: unsupported protocol"},
        {"{\"name\": \"bad\", \"kind\": \"ups\", \"protocol\": \"snmp\", \"sources\": [\"\"], "
         "\"scalars\": [" SCALAR "]}",
         "$.sources[0]: expected a non-empty string"},
        {HEAD
         "\"match\": {\"sysObjectID\": [\"1.3.6.1.4.1.25766.\", \"abc\"]}, \"scalars\": [" SCALAR
         "]}",
         "$.match.sysObjectID[1]: 'abc' is not a numeric OID"},
        {HEAD "\"match\": {\"sysDescr\": [\"x\"]}, \"scalars\": [" SCALAR "]}",
         "$.match.sysDescr: unknown key"},
        {HEAD "\"identity\": {\"model\": \"1.3.6.1.2.1.1.1.0\", \"colour\": \"1.3.6\"}}",
         "$.identity.colour: unknown key"},
        {HEAD "\"identity\": {\"serial\": \"1.3.6.1.2.1.1.1.0.\"}}",
         "$.identity.serial: '1.3.6.1.2.1.1.1.0.' is not a numeric OID"},
        {HEAD "\"confidence\": 3, \"scalars\": [" SCALAR "]}", "$.confidence: expected a string"},
        {HEAD "\"confidence\": {\"confirmed\": 1}, \"scalars\": [" SCALAR "]}",
         "$.confidence.confirmed: expected a string"},
        {HEAD "\"tables\": [{\"oid\": \"1.3.6.1.2.1.2.2.1\"}]}", "$.tables[0].columns: missing"},
        {HEAD "\"tables\": [{\"oid\": \"1.3.6.1.2.1.2.2.1\", \"columns\": [{\"column\": 8, "
              "\"metric\": \"a\"}, "
              "{\"column\": 10, \"metric\": \"b\"}, {\"column\": 16, \"metric\": \"c\", \"scale\": "
              "\"x\"}]}]}",
         "$.tables[0].columns[2].scale: expected a number"},
        {HEAD "\"tables\": [{\"oid\": \"1.3.6.1.2.1.2.2.1\", \"columns\": [{\"column\": -1, "
              "\"metric\": \"a\"}]}]}",
         "$.tables[0].columns[0].column: out of range"},
        {HEAD "\"tables\": [{\"oid\": \"1.3.6.1.2.1.2.2.1\", \"columns\": [{\"column\": 1.5, "
              "\"metric\": \"a\"}]}]}",
         "$.tables[0].columns[0].column: expected an integer"},
        {HEAD "\"tables\": [{\"oid\": \"1.3.6.1.2.1.2.2.1\", \"max_rows\": 0, \"columns\": "
              "[{\"column\": 8, \"metric\": \"a\"}]}]}",
         "$.tables[0].max_rows: out of range"},
        {HEAD "\"tables\": [{\"oid\": \"1.3.6.1.2.1.2.2.1\", \"label_columns\": [{\"column\": 2, "
              "\"label\": \"If\"}], "
              "\"columns\": [{\"column\": 8, \"metric\": \"a\"}]}]}",
         "$.tables[0].label_columns[0].label: 'If' is not a valid name"},
        {HEAD "\"tables\": [{\"oid\": \"1.3.6.1.2.1.2.2.1\", \"index_label\": \"line\", "
              "\"columns\": [{\"column\": 8, \"metric\": \"a\", \"labels\": {\"line\": \"1\"}}]}]}",
         "$.tables[0].columns[0]: label 'line' is also a table label"},
        {HEAD "\"tables\": [{\"oid\": \"1.3.6.1.2.1.2.2.1\", \"rows\": 3, \"columns\": "
              "[{\"column\": 8, \"metric\": \"a\"}]}]}",
         "$.tables[0].rows: unknown key"},
        {HEAD "\"scalars\": {}}", "$.scalars: expected an array"},
        {HEAD "\"scalars\": [" SCALAR ", 7]}", "$.scalars[1]: expected an object"},
        {HEAD "\"scalars\": []}", "$: profile reads nothing"},
        {"[1, 2]", "$: expected an object"},
        {"{\"name\": \"bad\",", "bad.json:1:"},
        {"{\"name\": \"bad\", \"name\": \"bad\"}", "duplicate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        expect_error("bad", cases[i].json, cases[i].want);
}

static void test_load_dir_errors(void **st)
{
    (void)st;
    ag_profile_set set;
    char err[512] = "";
    assert_int_equal(ag_profiles_load_dir("/nonexistent/cinemon-profiles", &set, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "/nonexistent/cinemon-profiles"));
    assert_int_equal(set.nprofiles, 0);

    /* one bad file fails the whole folder, naming the file */
    char path[256];
    snprintf(path, sizeof path, "%s/zz.json", g_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"name\": \"zz\"}", f);
    fclose(f);
    assert_int_equal(ag_profiles_load_dir(g_dir, &set, err, sizeof err), -1);
    assert_non_null(strstr(err, "zz.json: $.kind: missing"));
    unlink(path);
    /* an empty folder is fine */
    assert_int_equal(ag_profiles_load_dir(g_dir, &set, err, sizeof err), 0);
    assert_int_equal(set.nprofiles, 0);
    ag_profiles_free(&set);
}

int main(void)
{
    const struct CMUnitTest loaded[] = {
        cmocka_unit_test(test_shipped_profiles_load),
        cmocka_unit_test(test_match),
    };
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_longest_prefix_wins),
        cmocka_unit_test(test_oid_parse_format),
        cmocka_unit_test(test_value_map),
        cmocka_unit_test_setup_teardown(test_malformed, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_load_dir_errors, make_dir, remove_dir),
    };
    int fails = cmocka_run_group_tests_name("profiles", loaded, load_all, free_all);
    fails += cmocka_run_group_tests_name("profile rules", plain, NULL, NULL);
    return fails;
}

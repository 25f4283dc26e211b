/* test_csvimport.c — the sites-and-screens CSV: quoting, spreadsheets' BOM and CRLF, partial
 * rows, SPL reference columns, and a table of malformed files each refused with file:line and
 * nothing imported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector/csvimport.h"
#include "store_fixture.h"

typedef store_fx fx;

static int import(fx *f, const char *csv, size_t *ns, size_t *nc, char *err, size_t errlen)
{
    return co_csv_import(f->s, "halls.csv", csv, strlen(csv), ns, nc, err, errlen);
}

static json_t *screens(fx *f, const char *site)
{
    char err[256];
    json_t *j = co_store_screens(f->s, site, NULL, NULL, err, sizeof err);
    if (!j) fail_msg("screens: %s", err);
    return j;
}

static void test_good_file(void **state)
{
    fx *f = *state;
    const char *csv =
        "\xEF\xBB\xBF"
        "Cinema_Code,cinema_name,province,city,hall_code,hall_name,class,display,"
        "format,spl_L,spl_C,spl_R,Chain\r\n"
        "11010001,\"Capital Cinema, Wangfujing\",Beijing,Beijing,hall1,\"Hall \"\"1\"\"\","
        "theatre,projection,2D,85,85,85,Capital\r\n"
        "11010001,\"Capital Cinema, Wangfujing\",Beijing,Beijing,hall2,VIP,review,led,"
        "HDR,,84.5,,\r\n"
        "\r\n"
        "31010002,Bund,Shanghai,Shanghai,,,,,,,,,\r\n";
    size_t ns = 0, nc = 0;
    char err[256] = "";
    assert_int_equal(import(f, csv, &ns, &nc, err, sizeof err), 0);
    assert_int_equal(ns, 3);
    assert_int_equal(nc, 2);
    json_t *j = screens(f, "11010001");
    assert_int_equal(json_array_size(j), 2);
    json_t *h1 = json_array_get(j, 0), *h2 = json_array_get(j, 1);
    assert_string_equal(json_string_value(json_object_get(h1, "name")), "Hall \"1\"");
    assert_int_equal(json_object_size(json_object_get(h1, "spl_ref")), 3);
    assert_string_equal(json_string_value(json_object_get(h2, "class")), "review");
    assert_string_equal(json_string_value(json_object_get(h2, "display")), "led");
    assert_true(json_real_value(json_object_get(json_object_get(h2, "spl_ref"), "C")) == 84.5);
    assert_int_equal(json_object_size(json_object_get(h2, "spl_ref")), 1);
    json_decref(j);
    j = co_store_sites(f->s, NULL, err, sizeof err);
    assert_int_equal(json_array_size(j), 2);
    json_t *s1 = json_array_get(j, 0);
    assert_string_equal(json_string_value(json_object_get(s1, "name")),
                        "Capital Cinema, Wangfujing");
    assert_string_equal(json_string_value(json_object_get(s1, "province")), "Beijing");
    /* the chain column is stored; an empty cell (hall2's row) keeps it */
    assert_string_equal(json_string_value(json_object_get(s1, "chain")), "Capital");
    assert_true(json_is_null(json_object_get(json_array_get(j, 1), "chain")));
    json_decref(j);
    /* a second import with only some columns changes only those; LF endings, no final EOL */
    const char *upd = "cinema_code,hall_code,class\n11010001,hall2,theatre";
    assert_int_equal(import(f, upd, &ns, &nc, err, sizeof err), 0);
    j = screens(f, "11010001");
    h2 = json_array_get(j, 1);
    assert_string_equal(json_string_value(json_object_get(h2, "class")), "theatre");
    assert_string_equal(json_string_value(json_object_get(h2, "display")), "led");
    assert_string_equal(json_string_value(json_object_get(h2, "format")), "HDR");
    json_decref(j);
    /* a later file may move a cinema to another chain */
    assert_int_equal(import(f, "cinema_code,chain\n11010001,Wanda\n", &ns, &nc, err, sizeof err),
                     0);
    j = co_store_sites(f->s, NULL, err, sizeof err);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "chain")), "Wanda");
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "province")),
                        "Beijing");
    json_decref(j);
}

static void test_bad_files(void **state)
{
    fx *f = *state;
    static const struct {
        const char *csv, *want;
    } cases[] = {
        {"", "halls.csv:1: empty file"},
        {"hall_code,class\nh1,theatre\n", "halls.csv:1: the column cinema_code is required"},
        {"cinema_code,colour\nX,red\n", "halls.csv:1: unknown column 'colour'"},
        {"cinema_code,hall_code,hall_code\nX,a,b\n", "appears twice"},
        {"cinema_code,,class\nX,a,b\n", "halls.csv:1: column 2 has no name"},
        {"cinema_code,hall_code\nX,h1\nY\n", "halls.csv:3: 1 columns where the header has 2"},
        {"cinema_code,hall_code,class\nX,h1,theatre\nX,h2,cinema\n",
         "halls.csv:3: column 'class': 'cinema' is not theatre or review"},
        {"cinema_code,hall_code,display\nX,h1,crt\n", "halls.csv:2: column 'display'"},
        {"cinema_code,hall_code,spl_L\nX,h1,loud\n", "halls.csv:2: column 'spl_L'"},
        {"cinema_code,hall_code,spl_L\nX,h1,300\n", "not a level in dBC"},
        {"cinema_code,hall_code\n\"X,h1\n", "halls.csv:2: unterminated quoted field"},
        {"cinema_code,hall_code\n\"X\"y,h1\n", "halls.csv:2: text after a closing quote"},
        {"cinema_code,hall_code\nX\"y,h1\n", "halls.csv:2: a quote inside an unquoted field"},
        {"cinema_code,hall_code\n,h1\n", "halls.csv:2: cinema_code is empty"},
        {"cinema_code,hall_code,class\nX,,review\n",
         "halls.csv:2: hall settings without a hall_code"},
        {"cinema_code,hall_name\nX,\"a\x01\"\n", "control character"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        if (import(f, cases[i].csv, NULL, NULL, err, sizeof err) != -1)
            fail_msg("case %zu accepted", i);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
    }
    /* nothing of the bad files was imported (case 6's first row included) */
    json_t *j = screens(f, NULL);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
    char err[256];
    assert_int_equal(
        co_csv_import_file(f->s, "/nonexistent/halls.csv", NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/halls.csv"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_file, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_files, store_fx_setup, store_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_gzip.c — whole-buffer gzip: round trip, stated size, bounds, corrupt and truncated input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "gzip.h"

static char *sample(size_t n)
{
    char *s = malloc(n);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) s[i] = "{\"metric\":\"lamp_hours\",\"points\":[[1,2]]}"[i % 40];
    return s;
}

static void test_round_trip(void **st)
{
    (void)st;
    char *in = sample(100000), *gz, *out, err[128];
    size_t gzlen, outlen;
    assert_int_equal(cm_gzip(in, 100000, 6, &gz, &gzlen), 0);
    assert_true(gzlen < 100000 / 10);
    assert_int_equal(cm_gzip_stated_size(gz, gzlen), 100000);
    assert_int_equal(cm_gunzip(gz, gzlen, 1 << 20, &out, &outlen, err, sizeof err), 0);
    assert_int_equal(outlen, 100000);
    assert_memory_equal(out, in, 100000);
    assert_int_equal(out[outlen], '\0');
    free(out);
    /* an empty buffer too */
    free(gz);
    assert_int_equal(cm_gzip("", 0, -1, &gz, &gzlen), 0);
    assert_int_equal(cm_gunzip(gz, gzlen, 16, &out, &outlen, err, sizeof err), 0);
    assert_int_equal(outlen, 0);
    free(out);
    free(gz);
    free(in);
}

static void test_bounds_and_damage(void **st)
{
    (void)st;
    char *in = sample(50000), *gz, *out = NULL, err[128] = "";
    size_t gzlen, outlen;
    assert_int_equal(cm_gzip(in, 50000, 9, &gz, &gzlen), 0);
    /* larger than allowed: refused, whatever the trailer says */
    assert_int_equal(cm_gunzip(gz, gzlen, 49999, &out, &outlen, err, sizeof err), -1);
    assert_non_null(strstr(err, "larger than the limit"));
    /* truncated */
    assert_int_equal(cm_gunzip(gz, gzlen / 2, 1 << 20, &out, &outlen, err, sizeof err), -1);
    assert_non_null(strstr(err, "gzip:"));
    /* a flipped byte in the deflate stream */
    gz[gzlen / 2] ^= 0x55;
    assert_int_equal(cm_gunzip(gz, gzlen, 1 << 20, &out, &outlen, err, sizeof err), -1);
    /* not gzip at all; too short for a trailer */
    assert_int_equal(cm_gunzip("plain text, not gzip", 20, 1 << 20, &out, &outlen, err, sizeof err), -1);
    assert_int_equal(cm_gzip_stated_size("abc", 3), 0);
    assert_null(out);
    free(gz);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_round_trip),
                                       cmocka_unit_test(test_bounds_and_damage)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

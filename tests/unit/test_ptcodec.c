/* test_ptcodec.c — the point encoding (collector/ptcodec.c): every form round-trips bit for bit
 * (decimals, integers, repeats, -0.0, NaN, infinities, denormals, extreme times and steps),
 * steady polls take few bytes, and cut or damaged bytes are refused, never read past. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "collector/ptcodec.h"

#define N 4000

/* Encode ts[i], v[i] one after the other, decode them again and compare bit for bit; the
 * encoded length is returned. */
static size_t round_trip(const int64_t *ts, const double *v, size_t n)
{
    unsigned char *buf = malloc(n * CO_PT_MAX);
    assert_non_null(buf);
    co_pt_state enc = {0};
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = co_pt_encode(buf + len, &enc, ts[i], v[i]);
        assert_true(k >= 2 && k <= CO_PT_MAX);
        len += k;
    }
    co_pt_state dec = {0};
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t t;
        double d;
        assert_int_equal(co_pt_decode(buf, len, &pos, &dec, &t, &d), 0);
        assert_int_equal(t, ts[i]);
        assert_int_equal(memcmp(&d, &v[i], sizeof d), 0);
    }
    assert_int_equal(pos, len);
    free(buf);
    return len;
}

static void test_steady_poll_is_small(void **state)
{
    (void)state;
    static int64_t ts[N];
    static double v[N];
    for (size_t i = 0; i < N; i++) {
        ts[i] = 1764000000000LL + (int64_t)i * 10000 + (int64_t)(i * 7 % 50); /* jitter */
        v[i] = (double)(4800 + (int64_t)(i % 40) - 20) / 100.0;               /* 47.80 .. 48.19 */
    }
    size_t len = round_trip(ts, v, N);
    assert_true(len < 4 * N); /* under 4 bytes a point, not 16 */
    for (size_t i = 0; i < N; i++) {
        ts[i] = 1764000000000LL + (int64_t)i * 60000;
        v[i] = 1.0; /* a status that never changes */
    }
    assert_true(round_trip(ts, v, N) <= 2 * N + 16);
}

static void test_every_kind_of_value(void **state)
{
    (void)state;
    double v[] = {0.0,   -0.0,    NAN,       -NAN,  INFINITY, -INFINITY, 4.9e-324,  -4.9e-324,
                  1e308, -1e308,  47.93,     47.93, 47.91,    -0.01,     0.1 + 0.2, 1e15,
                  9e13,  -9.5e13, 123456.78, 2.5,   -2.5,     1.0 / 3.0, 100.0,     0.0};
    size_t n = sizeof v / sizeof v[0];
    int64_t ts[sizeof v / sizeof v[0]];
    int64_t t0[] = {INT64_MIN, -1, 0, 1764000000000LL, INT64_MAX - 1000};
    for (size_t k = 0; k < 5; k++) {
        for (size_t i = 0; i < n; i++)
            ts[i] = (int64_t)((uint64_t)t0[k] + (uint64_t)i * (k % 2 ? 1 : 40));
        round_trip(ts, v, n);
    }
    /* times that jump anywhere, backwards included (the codec does not need order) */
    int64_t wild[] = {INT64_MAX, INT64_MIN, 0, INT64_MAX, -5, 5, INT64_MIN + 1, 1};
    double wv[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    round_trip(wild, wv, 8);
    /* random bits */
    static int64_t ts2[N];
    static double v2[N];
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ts2[i] = (int64_t)(x >> 3) - (int64_t)(x & 0xffff);
        memcpy(&v2[i], &x, sizeof x);
    }
    round_trip(ts2, v2, N);
}

static void test_damaged_bytes(void **state)
{
    (void)state;
    unsigned char buf[8 * CO_PT_MAX];
    co_pt_state enc = {0};
    size_t len = 0;
    double vals[] = {47.93, 1e-300, 47.93, 3.0};
    for (int i = 0; i < 4; i++)
        len += co_pt_encode(buf + len, &enc, 1764000000000LL + i * 10000, vals[i]);
    /* every cut is refused or ends cleanly at a point boundary, never read past its end */
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *c = malloc(cut ? cut : 1);
        memcpy(c, buf, cut);
        co_pt_state dec = {0};
        size_t pos = 0;
        int64_t t;
        double d;
        int rc = 0;
        while (pos < cut && (rc = co_pt_decode(c, cut, &pos, &dec, &t, &d)) == 0)
            assert_true(pos <= cut);
        free(c);
    }
    /* a form byte that is no form */
    unsigned char bad[] = {0x00, 0xF0};
    co_pt_state dec = {0};
    size_t pos = 0;
    int64_t t;
    double d;
    assert_int_equal(co_pt_decode(bad, sizeof bad, &pos, &dec, &t, &d), -1);
    assert_int_equal(pos, 0);
    /* a ten-byte varint that overflows */
    unsigned char ovf[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x00};
    assert_int_equal(co_pt_decode(ovf, sizeof ovf, &pos, &dec, &t, &d), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steady_poll_is_small),
        cmocka_unit_test(test_every_kind_of_value),
        cmocka_unit_test(test_damaged_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_head.c — the head (collector/head.c): points kept in time order with a value written
 * again replaced, ranges and latest, the log record round trip (deltas of any sign, every
 * double) and damaged records refused with the byte named, watermarks after a clear. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "collector/head.h"

static void commit(co_head *h)
{
    co_head_wrlock(h);
    assert_int_equal(co_head_reserve_locked(h), 0);
    co_head_commit_locked(h);
    co_head_unlock(h);
}

static void test_order_replace_range(void **state)
{
    (void)state;
    co_head *h = co_head_new();
    assert_non_null(h);
    int64_t ts[] = {50, 10, 30, 70, 30, 60};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(co_head_stage(h, 7, ts[i], (double)i), 0);
    assert_int_equal(co_head_stage(h, -3, 5, 1.5), 0);
    assert_int_equal(co_head_staged(h), 7);
    commit(h);
    assert_int_equal(co_head_staged(h), 0);
    assert_int_equal(co_head_points(h), 6); /* 30 written twice */
    assert_true(co_head_since_ms(h) > 0);
    const co_head_point *p;
    size_t n = co_head_range(h, 7, INT64_MIN, INT64_MAX, &p);
    assert_int_equal(n, 5);
    int64_t want[] = {10, 30, 50, 60, 70};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i].ts_ms, want[i]);
    assert_true(p[1].value == 4.0); /* the value written last */
    n = co_head_range(h, 7, 30, 60, &p);
    assert_int_equal(n, 3);
    assert_int_equal(p[0].ts_ms, 30);
    assert_int_equal(co_head_range(h, 7, 61, 69, &p), 0);
    assert_int_equal(co_head_range(h, 8, INT64_MIN, INT64_MAX, &p), 0);
    int64_t t;
    double v;
    assert_int_equal(co_head_latest(h, 7, &t, &v), 1);
    assert_int_equal(t, 70);
    assert_true(v == 3.0);
    assert_int_equal(co_head_latest(h, 99, &t, &v), 0);

    /* a staged point dropped by an abort never shows */
    assert_int_equal(co_head_stage(h, 7, 80, 1.0), 0);
    co_head_abort(h);
    assert_int_equal(co_head_points(h), 6);

    /* clear: empty, and each series' watermark is its newest point */
    assert_int_equal(co_head_watermark(h, 7, &t), 0);
    co_head_wrlock(h);
    co_head_clear_locked(h);
    co_head_unlock(h);
    assert_int_equal(co_head_points(h), 0);
    assert_int_equal(co_head_since_ms(h), 0);
    assert_int_equal(co_head_watermark(h, 7, &t), 1);
    assert_int_equal(t, 70);
    assert_int_equal(co_head_watermark(h, -3, &t), 1);
    assert_int_equal(t, 5);
    co_head_forget_watermarks(h);
    assert_int_equal(co_head_watermark(h, 7, &t), 0);
    co_head_free(h);
}

static void test_log_round_trip(void **state)
{
    (void)state;
    co_head *a = co_head_new(), *b = co_head_new();
    double vals[] = {0.0, -0.0, 1e308, -4.9e-324, NAN, INFINITY, 47.5};
    int64_t sids[] = {1, 1000000, 2, INT64_MAX, INT64_MIN, 0, 5};
    int64_t tss[] = {INT64_MIN, INT64_MAX, 0, -1, 1764082800000LL, 1764082800000LL - 86400000, 3};
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(co_head_stage(a, sids[i], tss[i], vals[i]), 0);
    unsigned char *rec;
    size_t len;
    assert_int_equal(co_head_encode(a, &rec, &len), 0);
    char err[128] = "";
    assert_int_equal(co_head_replay(b, rec, len, err, sizeof err), 0);
    assert_int_equal(co_head_staged(b), 7);
    commit(b);
    for (size_t i = 0; i < 7; i++) {
        const co_head_point *p;
        assert_int_equal(co_head_range(b, sids[i], tss[i], tss[i], &p), 1);
        assert_int_equal(memcmp(&p->value, &vals[i], sizeof(double)), 0); /* bit for bit */
    }
    /* every truncation is refused, nothing staged, the offset named */
    for (size_t cut = 0; cut < len; cut++) {
        err[0] = '\0';
        assert_int_equal(co_head_replay(b, rec, cut, err, sizeof err), -1);
        assert_int_equal(co_head_staged(b), 0);
        assert_non_null(strstr(err, "byte"));
    }
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, rec, len);
    longer[len] = 0;
    assert_int_equal(co_head_replay(b, longer, len + 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "after the last point"));
    longer[0] = 'X';
    assert_int_equal(co_head_replay(b, longer, len, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a head record"));
    free(longer);
    free(rec);
    /* an empty transaction's record */
    co_head_abort(a);
    assert_int_equal(co_head_encode(a, &rec, &len), 0);
    assert_int_equal(co_head_replay(b, rec, len, err, sizeof err), 0);
    assert_int_equal(co_head_staged(b), 0);
    free(rec);
    co_head_free(a);
    co_head_free(b);
}

/* Many series and points: the tables grow and every point is found again. */
static void test_many(void **state)
{
    (void)state;
    co_head *h = co_head_new();
    for (int round = 0; round < 20; round++) {
        for (int64_t sid = 1; sid <= 5000; sid++)
            assert_int_equal(co_head_stage(h, sid * 7919, 1000 * round, (double)(sid + round)), 0);
        commit(h);
    }
    assert_int_equal(co_head_points(h), 100000);
    for (int64_t sid = 1; sid <= 5000; sid += 499) {
        const co_head_point *p;
        assert_int_equal(co_head_range(h, sid * 7919, INT64_MIN, INT64_MAX, &p), 20);
        assert_true(p[19].value == (double)(sid + 19));
    }
    co_head_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_replace_range),
        cmocka_unit_test(test_log_round_trip),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_head.c — the head (collector/head.c): points kept in time order with a value written
 * again replaced, ranges and latest, the log record round trip (deltas of any sign, every
 * double) and damaged records refused with the byte named, watermarks after a clear; points
 * written in random order against a reference, through the encoded series; a write-out in
 * parts and a replay's points filtered. */
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

/* The points of sid within [a, b], decoded into hb; their number. */
static size_t range(const co_head *h, int64_t sid, int64_t a, int64_t b, co_head_buf *hb)
{
    assert_int_equal(co_head_range(h, sid, a, b, hb), 0);
    return hb->n;
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
    co_head_buf hb = {0};
    size_t n = range(h, 7, INT64_MIN, INT64_MAX, &hb);
    assert_int_equal(n, 5);
    int64_t want[] = {10, 30, 50, 60, 70};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(hb.p[i].ts_ms, want[i]);
    assert_true(hb.p[1].value == 4.0); /* the value written last */
    n = range(h, 7, 30, 60, &hb);
    assert_int_equal(n, 3);
    assert_int_equal(hb.p[0].ts_ms, 30);
    assert_int_equal(range(h, 7, 61, 69, &hb), 0);
    assert_int_equal(range(h, 8, INT64_MIN, INT64_MAX, &hb), 0);
    co_head_buf_free(&hb);
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
    co_head_buf hb = {0};
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(range(b, sids[i], tss[i], tss[i], &hb), 1);
        assert_int_equal(memcmp(&hb.p[0].value, &vals[i], sizeof(double)), 0); /* bit for bit */
        int64_t t;
        double v;
        assert_int_equal(co_head_latest(b, sids[i], &t, &v), 1);
        assert_int_equal(t, tss[i]);
        assert_int_equal(memcmp(&v, &vals[i], sizeof(double)), 0);
    }
    co_head_buf_free(&hb);
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
    co_head_buf hb = {0};
    for (int64_t sid = 1; sid <= 5000; sid += 499) {
        assert_int_equal(range(h, sid * 7919, INT64_MIN, INT64_MAX, &hb), 20);
        assert_true(hb.p[19].value == (double)(sid + 19));
    }
    co_head_buf_free(&hb);
    co_head_free(h);
}

/* Points of a few series written in random order over many transactions, some at times
 * already held (the value written last wins), against a plain array kept by hand: every
 * range read and the write-out (co_head_each) give exactly the reference's points. */
#define RT_SERIES 7
#define RT_SLOTS 300
static void test_random_order(void **state)
{
    (void)state;
    co_head *h = co_head_new();
    double ref[RT_SERIES][RT_SLOTS] = {{0}};
    int held[RT_SERIES][RT_SLOTS] = {{0}};
    uint64_t x = 88172645463325252ULL;
    size_t want = 0;
    for (int tx = 0; tx < 200; tx++) {
        if (tx % 17 == 5) { /* now and then a transaction rolled back: nothing of it shows */
            assert_int_equal(co_head_stage(h, 0, 5, 5.0), 0);
            assert_int_equal(co_head_stage(h, 1000003LL, 1764000000000LL, -1.0), 0);
            assert_int_equal(co_head_stage(h, 2 * 1000003LL, 1764000000000LL + 999999999, 7.0), 0);
            if (tx % 2) { /* room reserved, then the store's commit failed */
                co_head_wrlock(h);
                assert_int_equal(co_head_reserve_locked(h), 0);
                co_head_unlock(h);
            }
            co_head_abort(h);
        }
        int n = 1 + (int)(x % 13);
        for (int k = 0; k < n; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int sr = (int)(x % RT_SERIES), slot = (int)((x >> 8) % RT_SLOTS);
            /* decimals, integers, repeats and arbitrary bits */
            double v = (x >> 20) % 4 == 0   ? (double)((int64_t)(x % 100000) - 50000) / 100.0
                       : (x >> 20) % 4 == 1 ? (double)(x % 7)
                       : (x >> 20) % 4 == 2 ? ref[sr][slot]
                                            : (double)(int64_t)(x >> 11) * 1e-7;
            if (!held[sr][slot]) v = (double)slot + 0.25;
            assert_int_equal(co_head_stage(h, sr * 1000003LL, 1764000000000LL + slot * 9973LL, v),
                             0);
            if (!held[sr][slot]) want++;
            held[sr][slot] = 1;
            ref[sr][slot] = v;
        }
        commit(h);
        assert_int_equal(co_head_points(h), want);
    }
    co_head_buf hb = {0};
    for (int sr = 0; sr < RT_SERIES; sr++) {
        range(h, sr * 1000003LL, INT64_MIN, INT64_MAX, &hb);
        size_t j = 0;
        for (int slot = 0; slot < RT_SLOTS; slot++) {
            if (!held[sr][slot]) continue;
            assert_true(j < hb.n);
            assert_int_equal(hb.p[j].ts_ms, 1764000000000LL + slot * 9973LL);
            assert_int_equal(memcmp(&hb.p[j].value, &ref[sr][slot], sizeof(double)), 0);
            j++;
        }
        assert_int_equal(j, hb.n);
        /* a middle range */
        size_t m = range(h, sr * 1000003LL, 1764000000000LL + 100 * 9973LL,
                         1764000000000LL + 199 * 9973LL, &hb);
        size_t cnt = 0;
        for (int slot = 100; slot < 200; slot++)
            cnt += (size_t)held[sr][slot];
        assert_int_equal(m, cnt);
    }
    co_head_buf_free(&hb);
    co_head_free(h);
}

typedef struct seen {
    int64_t sid[16];
    size_t n[16];
    size_t count;
} seen;

static int see(void *ud, int64_t sid, const co_head_point *p, size_t n)
{
    seen *sn = ud;
    assert_true(sn->count < 16);
    for (size_t i = 1; i < n; i++)
        assert_true(p[i - 1].ts_ms < p[i].ts_ms);
    sn->sid[sn->count] = sid;
    sn->n[sn->count++] = n;
    return 0;
}

/* keep a staged point of series 2 only when newer than 10; -1 for series 99 */
static int keep_newer(void *ud, int64_t sid, int64_t ts)
{
    (void)ud;
    if (sid == 99) return -1;
    return sid != 2 || ts > 10;
}

/* A write-out in parts: whole series by ascending sid until the part's points are reached, a
 * part passed again when its transaction failed, only the part's series emptied (their
 * watermarks raised, the rest kept), a series new or refilled during the write-out left for
 * the next one; a replay's staged points filtered. */
static void test_parts(void **state)
{
    (void)state;
    co_head *h = co_head_new();
    assert_non_null(h);
    for (int64_t sid = 5; sid >= 1; sid--)
        for (int64_t ts = 1; ts <= 10; ts++)
            assert_int_equal(co_head_stage(h, sid, ts, (double)(sid * 100 + ts)), 0);
    commit(h);
    assert_int_equal(co_head_points(h), 50);

    seen sn = {0};
    int last = -1;
    assert_int_equal(co_head_each_part(h, 1, 15, see, &sn, &last), 0);
    assert_int_equal(sn.count, 2); /* whole series: 10 + 10 >= 15 */
    assert_int_equal(sn.sid[0], 1);
    assert_int_equal(sn.sid[1], 2);
    assert_int_equal(sn.n[1], 10);
    assert_int_equal(last, 0);
    /* the part's transaction failed: the same part again */
    sn = (seen){0};
    assert_int_equal(co_head_each_part(h, 0, 15, see, &sn, &last), 0);
    assert_int_equal(sn.count, 2);
    assert_int_equal(sn.sid[0], 1);
    co_head_wrlock(h);
    co_head_clear_part_locked(h);
    co_head_unlock(h);
    assert_int_equal(co_head_points(h), 30);
    co_head_buf hb = {0};
    assert_int_equal(range(h, 1, INT64_MIN, INT64_MAX, &hb), 0);
    assert_int_equal(range(h, 3, INT64_MIN, INT64_MAX, &hb), 10);
    int64_t t;
    double v;
    assert_int_equal(co_head_latest(h, 2, &t, &v), 0);
    assert_int_equal(co_head_watermark(h, 2, &t), 1);
    assert_int_equal(t, 10);
    assert_int_equal(co_head_watermark(h, 3, &t), 0);
    co_head_usage u;
    co_head_get_usage(h, &u);
    assert_int_equal(u.series, 3);
    assert_int_equal(u.writeouts, 1);

    /* meanwhile: an emptied series takes a new point, a new series (sid 0) comes,
     * an unwritten one grows; the next part passes 3, 4, 5 and ends the write-out */
    assert_int_equal(co_head_stage(h, 1, 11, 1.25), 0);
    assert_int_equal(co_head_stage(h, 0, 1, 0.5), 0);
    assert_int_equal(co_head_stage(h, 4, 11, 4.5), 0);
    commit(h);
    assert_int_equal(range(h, 1, INT64_MIN, INT64_MAX, &hb), 1);
    assert_true(hb.p[0].value == 1.25);
    sn = (seen){0};
    assert_int_equal(co_head_each_part(h, 0, 1000, see, &sn, &last), 0);
    assert_int_equal(sn.count, 3);
    assert_int_equal(sn.sid[0], 3);
    assert_int_equal(sn.sid[1], 4);
    assert_int_equal(sn.n[1], 11);
    assert_int_equal(last, 1);
    co_head_wrlock(h);
    co_head_clear_part_locked(h);
    co_head_unlock(h);
    assert_int_equal(co_head_points(h), 2); /* series 1's new point and series 0 stay */
    assert_int_equal(range(h, 0, INT64_MIN, INT64_MAX, &hb), 1);
    assert_true(co_head_since_ms(h) > 0);
    assert_int_equal(co_head_watermark(h, 5, &t), 1);
    assert_int_equal(t, 10);

    /* replayed points the tables hold already are dropped before they join the head */
    assert_int_equal(co_head_stage(h, 2, 5, 0.5), 0);
    assert_int_equal(co_head_stage(h, 2, 12, 0.75), 0);
    assert_int_equal(co_head_stage(h, 6, 1, 6.0), 0);
    assert_int_equal(co_head_filter_staged(h, keep_newer, NULL), 0);
    assert_int_equal(co_head_staged(h), 2);
    commit(h);
    assert_int_equal(co_head_points(h), 4);
    assert_int_equal(range(h, 2, INT64_MIN, INT64_MAX, &hb), 1);
    assert_int_equal(hb.p[0].ts_ms, 12);
    assert_int_equal(co_head_stage(h, 99, 1, 1.0), 0);
    assert_int_equal(co_head_filter_staged(h, keep_newer, NULL), -1);
    co_head_abort(h);

    /* the next write-out takes all four series in one part and empties the head: its age
     * starts again */
    sn = (seen){0};
    assert_int_equal(co_head_each_part(h, 1, 1000, see, &sn, &last), 0);
    assert_int_equal(sn.count, 4);
    assert_int_equal(sn.sid[0], 0);
    assert_int_equal(last, 1);
    co_head_wrlock(h);
    co_head_clear_part_locked(h);
    co_head_unlock(h);
    assert_int_equal(co_head_points(h), 0);
    assert_int_equal(co_head_since_ms(h), 0);
    co_head_buf_free(&hb);
    co_head_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_replace_range),
        cmocka_unit_test(test_log_round_trip),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_random_order),
        cmocka_unit_test(test_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

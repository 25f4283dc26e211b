/* test_writer.c — group commit under concurrency: 8 submitting threads, duplicates, a poison
 * batch, a reader querying meanwhile; every result and count exact, fewer commits than batches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_fixture.h"
#include "collector/writer.h"

#define T0 1764082800000LL
#define THREADS 8
#define PER_THREAD 200
#define POINTS 5

typedef store_fx fx;

static void make_batch(cm_batch *b, const char *agent, int thread, uint64_t seq)
{
    char dev[64];
    snprintf(dev, sizeof dev, "hall%d/projector", thread);
    cm_batch_init(b);
    cm_batch_set_agent(b, agent, "1.0.0", "S1");
    b->seq = seq;
    for (int k = 0; k < POINTS; k++)
        cm_batch_add_point(b, dev, "lamp_hours", "h", NULL, 0, T0 + (int64_t)seq * 1000 + k,
                           (double)seq);
}

typedef struct worker {
    co_writer *w;
    int id;
    int wrong; /* results that were not what they should be */
} worker;

static void *submitter(void *arg)
{
    worker *wk = arg;
    char agent[32], err[256];
    snprintf(agent, sizeof agent, "agent-%d", wk->id);
    for (uint64_t seq = 1; seq <= PER_THREAD; seq++) {
        cm_batch b;
        co_batch_result r = 99;
        make_batch(&b, agent, wk->id, seq);
        if (co_writer_submit(wk->w, &b, &r, err, sizeof err) != 0 || r != CO_BATCH_STORED)
            wk->wrong++;
        if (seq % 10 == 0) { /* the agent retries a batch already acknowledged */
            r = 99;
            if (co_writer_submit(wk->w, &b, &r, err, sizeof err) != 0 || r != CO_BATCH_DUPLICATE)
                wk->wrong++;
        }
        cm_batch_free(&b);
        if (wk->id == 0 && seq == PER_THREAD / 2) { /* one poison batch fails alone */
            make_batch(&b, "poison", 99, 1);
            b.series[0].points[0].ts_ms = -5;
            if (co_writer_submit(wk->w, &b, &r, err, sizeof err) != -1 ||
                !strstr(err, "out of range"))
                wk->wrong++;
            cm_batch_free(&b);
        }
    }
    return NULL;
}

typedef struct reader {
    co_store *s;
    int stop; /* read and written under mu */
    pthread_mutex_t mu;
    int queries, errors;
} reader;

static void *querier(void *arg)
{
    reader *rd = arg;
    char err[256];
    for (;;) {
        pthread_mutex_lock(&rd->mu);
        int stop = rd->stop;
        pthread_mutex_unlock(&rd->mu);
        if (stop) break;
        int64_t a, b, c;
        if (co_store_counts(rd->s, &a, &b, &c, err, sizeof err) < 0) rd->errors++;
        json_t *j = co_store_latest(rd->s, "S1", "hall3/projector", NULL, NULL, err, sizeof err);
        if (!j) rd->errors++;
        json_decref(j);
        co_range r = {0, T0 * 2, 10};
        j = co_store_series(rd->s, "S1", "hall5/projector", "lamp_hours", &r, NULL, err,
                            sizeof err);
        if (!j) rd->errors++;
        json_decref(j);
        rd->queries++;
    }
    return NULL;
}

static void test_concurrent_group_commit(void **state)
{
    fx *f = *state;
    co_writer *w;
    char err[256] = "";
    assert_int_equal(co_writer_start(&w, f->s, 0, err, sizeof err), 0);

    reader rd = {.s = f->s};
    pthread_mutex_init(&rd.mu, NULL);
    pthread_t rt;
    assert_int_equal(pthread_create(&rt, NULL, querier, &rd), 0);

    worker wk[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        wk[i] = (worker){.w = w, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, submitter, &wk[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(wk[i].wrong, 0);
    }
    pthread_mutex_lock(&rd.mu);
    rd.stop = 1;
    pthread_mutex_unlock(&rd.mu);
    pthread_join(rt, NULL);
    pthread_mutex_destroy(&rd.mu);
    assert_int_equal(rd.errors, 0);
    assert_true(rd.queries > 0);

    co_writer_stats st;
    co_writer_stats_get(w, &st);
    co_writer_stop(w);
    const unsigned long long stored = THREADS * PER_THREAD, dups = THREADS * (PER_THREAD / 10);
    assert_int_equal(st.batches, stored + dups);
    assert_int_equal(st.duplicates, dups);
    assert_int_equal(st.samples, stored * POINTS);
    assert_int_equal(st.failures, 1);
    assert_true(st.commits < st.batches); /* grouping happened */
    assert_true(st.commits > 0);
    assert_true(st.commit_seconds_sum > 0 && st.commit_seconds_max > 0);
    fprintf(stderr, "  %llu batches in %llu commits, %d concurrent queries\n", st.batches,
            st.commits, rd.queries);

    int64_t samples, series, devices;
    assert_int_equal(co_store_counts(f->s, &samples, &series, &devices, err, sizeof err), 0);
    assert_int_equal(samples, (int64_t)(stored * POINTS));
    assert_int_equal(series, THREADS);
    assert_int_equal(devices, THREADS);

    /* every agent's last point is its last seq */
    for (int i = 0; i < THREADS; i++) {
        char dev[64];
        snprintf(dev, sizeof dev, "hall%d/projector", i);
        json_t *j = co_store_latest(f->s, "S1", dev, "lamp_hours", NULL, err, sizeof err);
        assert_non_null(j);
        assert_true(json_real_value(json_object_get(json_array_get(j, 0), "value")) == PER_THREAD);
        json_decref(j);
    }
}

typedef struct hooked {
    size_t calls, batches, stored;
} hooked;

static void on_commit(void *ud, cm_batch *const *b, const co_batch_result *r, size_t n)
{
    hooked *h = ud;
    h->calls++;
    for (size_t i = 0; i < n; i++) {
        assert_non_null(b[i]->site);
        h->batches++;
        h->stored += r[i] == CO_BATCH_STORED;
    }
}

static void test_one_per_commit_and_stop(void **state)
{
    fx *f = *state;
    co_writer *w;
    char err[256] = "";
    assert_int_equal(co_writer_start(&w, f->s, 1, err, sizeof err), 0);
    hooked h = {0};
    co_writer_set_hook(w, on_commit, &h);
    for (uint64_t seq = 1; seq <= 5; seq++) {
        cm_batch b;
        co_batch_result r = 99;
        make_batch(&b, "solo", 1, seq);
        assert_int_equal(co_writer_submit(w, &b, &r, err, sizeof err), 0);
        assert_int_equal(r, CO_BATCH_STORED);
        cm_batch_free(&b);
    }
    co_writer_stats st;
    co_writer_stats_get(w, &st);
    assert_int_equal(st.commits, 5);
    assert_int_equal(st.batches, 5);
    assert_int_equal(st.samples, 5 * POINTS);
    /* the hook saw every committed batch; a duplicate is passed with its result */
    assert_int_equal(h.calls, 5);
    assert_int_equal(h.stored, 5);
    cm_batch b;
    co_batch_result r = 99;
    make_batch(&b, "solo", 1, 3);
    assert_int_equal(co_writer_submit(w, &b, &r, err, sizeof err), 0);
    assert_int_equal(r, CO_BATCH_DUPLICATE);
    cm_batch_free(&b);
    assert_int_equal(h.batches, 6);
    assert_int_equal(h.stored, 5);
    co_writer_stop(w);

    /* a writer stopped with nothing queued stops at once */
    assert_int_equal(co_writer_start(&w, f->s, 0, err, sizeof err), 0);
    co_writer_stop(w);
    co_writer_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_concurrent_group_commit, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_one_per_commit_and_stop, store_fx_setup,
                                        store_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* writer.c — group commit: submitters queue their batch and sleep on their own condition
 * variable; one thread takes up to max_group queued batches, writes them with one
 * co_store_write (one durable transaction) and wakes each submitter with its result.
 * When a group fails, its batches are retried one by one, so one bad batch fails alone. */
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "timeutil.h"

#define DEFAULT_GROUP 256
#define MAINTAIN_S 1 /* idle this long: the store's housekeeping */
#define SLOT_ERR 256

/* One waiting submitter; lives on the submitter's stack until done is set. */
typedef struct slot {
    cm_batch *b;
    co_batch_result result;
    int done, rc;
    char err[SLOT_ERR];
    pthread_cond_t cv;
    struct slot *next;
} slot;

struct co_writer {
    co_store *store;
    size_t max_group;
    pthread_t thread;

    pthread_mutex_t mu; /* guards the queue, stop and stats */
    pthread_cond_t work;
    slot *head, *tail;
    int stop;
    co_writer_stats stats;
    co_writer_hook hook; /* set before the first submit, read by the writer thread */
    void *hook_ud;
    co_writer_prepare_fn prepare; /* journal hooks: the same */
    co_writer_settle_fn settle;
    void *journal_ud;

    /* writer thread only */
    slot **group;
    cm_batch **batches;
    co_batch_result *results;
};

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One transaction for g[0..n); fills each slot's rc/result/err (not yet published). */
static void commit_group(co_writer *w, slot **g, size_t n, co_writer_stats *d)
{
    char err[SLOT_ERR] = "";
    for (size_t i = 0; i < n; i++)
        w->batches[i] = g[i]->b;
    if (w->prepare) w->prepare(w->journal_ud, w->batches, n);
    double t0 = mono_seconds();
    int rc = co_store_write(w->store, w->batches, n, w->results, err, sizeof err);
    double dt = mono_seconds() - t0;
    if (w->settle) w->settle(w->journal_ud, w->batches, w->results, n, rc == 0);
    if (rc < 0 && n > 1) { /* find the culprit: every batch in its own transaction */
        for (size_t i = 0; i < n; i++)
            commit_group(w, &g[i], 1, d);
        return;
    }
    if (rc < 0) {
        g[0]->rc = -1;
        snprintf(g[0]->err, sizeof g[0]->err, "%s", err);
        d->failures++;
        return;
    }
    d->commits++;
    d->commit_seconds_sum += dt;
    if (dt > d->commit_seconds_max) d->commit_seconds_max = dt;
    for (size_t i = 0; i < n; i++) {
        g[i]->rc = 0;
        g[i]->result = w->results[i];
        d->batches++;
        if (w->results[i] == CO_BATCH_DUPLICATE)
            d->duplicates++;
        else if (w->results[i] == CO_BATCH_STORED)
            d->samples += cm_batch_points(g[i]->b);
    }
    if (w->hook) w->hook(w->hook_ud, w->batches, w->results, n);
}

void co_writer_set_hook(co_writer *w, co_writer_hook fn, void *ud)
{
    pthread_mutex_lock(&w->mu);
    w->hook = fn;
    w->hook_ud = ud;
    pthread_mutex_unlock(&w->mu);
}

void co_writer_set_journal(co_writer *w, co_writer_prepare_fn prepare, co_writer_settle_fn settle,
                           void *ud)
{
    pthread_mutex_lock(&w->mu);
    w->prepare = prepare;
    w->settle = settle;
    w->journal_ud = ud;
    pthread_mutex_unlock(&w->mu);
}

static void *writer_main(void *arg)
{
    co_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += MAINTAIN_S;
            if (pthread_cond_timedwait(&w->work, &w->mu, &until) != ETIMEDOUT) continue;
            /* idle: the store's housekeeping (its head written out when due) */
            pthread_mutex_unlock(&w->mu);
            char err[SLOT_ERR];
            if (co_store_maintain(w->store, cm_now_ms(), err, sizeof err) < 0)
                cm_log_limited("writer-maintain", 60, CM_LOG_ERROR, "writer: %s", err);
            pthread_mutex_lock(&w->mu);
        }
        if (!w->head) break; /* stopping and drained */
        size_t n = 0;
        while (w->head && n < w->max_group) {
            w->group[n++] = w->head;
            w->head = w->head->next;
        }
        if (!w->head) w->tail = NULL;
        pthread_mutex_unlock(&w->mu);

        co_writer_stats d = {0};
        commit_group(w, w->group, n, &d);

        pthread_mutex_lock(&w->mu);
        w->stats.commits += d.commits;
        w->stats.batches += d.batches;
        w->stats.duplicates += d.duplicates;
        w->stats.samples += d.samples;
        w->stats.failures += d.failures;
        w->stats.commit_seconds_sum += d.commit_seconds_sum;
        if (d.commit_seconds_max > w->stats.commit_seconds_max)
            w->stats.commit_seconds_max = d.commit_seconds_max;
        for (size_t i = 0; i < n; i++) {
            w->group[i]->done = 1;
            pthread_cond_signal(&w->group[i]->cv);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void writer_free(co_writer *w)
{
    free(w->group);
    free(w->batches);
    free(w->results);
    free(w);
}

int co_writer_start(co_writer **out, co_store *s, size_t max_group, char *err, size_t errlen)
{
    *out = NULL;
    co_writer *w = calloc(1, sizeof *w);
    if (!max_group) max_group = DEFAULT_GROUP;
    if (w) {
        w->store = s;
        w->max_group = max_group;
        w->group = calloc(max_group, sizeof *w->group);
        w->batches = calloc(max_group, sizeof *w->batches);
        w->results = calloc(max_group, sizeof *w->results);
    }
    if (!w || !w->group || !w->batches || !w->results) {
        if (w) writer_free(w);
        snprintf(err, errlen, "writer: out of memory");
        return -1;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the idle wait's clock */
    pthread_cond_init(&w->work, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc) {
        snprintf(err, errlen, "writer: cannot start thread: %s", strerror(rc));
        pthread_cond_destroy(&w->work);
        pthread_mutex_destroy(&w->mu);
        writer_free(w);
        return -1;
    }
    *out = w;
    return 0;
}

int co_writer_submit(co_writer *w, cm_batch *b, co_batch_result *result, char *err, size_t errlen)
{
    slot sl = {.b = b};
    pthread_cond_init(&sl.cv, NULL);
    pthread_mutex_lock(&w->mu);
    if (w->stop) {
        pthread_mutex_unlock(&w->mu);
        pthread_cond_destroy(&sl.cv);
        snprintf(err, errlen, "writer: stopping");
        return -1;
    }
    if (w->tail)
        w->tail->next = &sl;
    else
        w->head = &sl;
    w->tail = &sl;
    pthread_cond_signal(&w->work);
    while (!sl.done)
        pthread_cond_wait(&sl.cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&sl.cv);
    if (sl.rc < 0) {
        snprintf(err, errlen, "%s", sl.err);
        return -1;
    }
    *result = sl.result;
    return 0;
}

void co_writer_stats_get(co_writer *w, co_writer_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    pthread_mutex_unlock(&w->mu);
}

void co_writer_stop(co_writer *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->mu);
    writer_free(w);
}

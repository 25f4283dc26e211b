/* retention.c — the retention thread (retention.h). */
#include "retention.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errbuf.h"
#include "log.h"
#include "timeutil.h"

struct co_retention {
    co_store *store;
    co_retention_conf conf;
    pthread_mutex_t mu; /* guards stop */
    pthread_cond_t cv;
    int stop;
    pthread_t thread;
};

void co_retention_cuts(const co_retention_conf *c, int64_t now_ms, co_retention_cut *out)
{
    memset(out, 0, sizeof *out);
    out->raw_before_ms = c->raw_ms ? now_ms - c->raw_ms : 0;
    out->rollup_1m_before_ms = c->rollup_1m_ms ? now_ms - c->rollup_1m_ms : 0;
    out->rollup_1h_before_ms = c->rollup_1h_ms ? now_ms - c->rollup_1h_ms : 0;
    out->audit_before_ms = c->audit_ms ? now_ms - c->audit_ms : 0;
    out->sessions_before_ms = now_ms;
    /* a cut at or before the epoch removes nothing: keep it "off" rather than negative */
    int64_t *cut[] = {&out->raw_before_ms, &out->rollup_1m_before_ms, &out->rollup_1h_before_ms,
                      &out->audit_before_ms};
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++)
        if (*cut[i] < 0) *cut[i] = 0;
}

static int run_pass(co_store *s, const co_retention_conf *c, int64_t now_ms,
                    int (*cancelled)(void *), void *ud, co_retention_stats *st, char *err,
                    size_t errlen)
{
    co_retention_cut cut;
    co_retention_cuts(c, now_ms, &cut);
    cut.cancelled = cancelled;
    cut.ud = ud;
    int64_t t0 = cm_mono_ms();
    int rc = co_store_retention(s, &cut, st, err, errlen);
    int64_t took = cm_mono_ms() - t0;
    char when[40] = "kept";
    if (cut.raw_before_ms) cm_format_iso_ms(cut.raw_before_ms, when, sizeof when);
    cm_log(rc < 0 ? CM_LOG_ERROR : CM_LOG_INFO,
           "retention%s: %lld day tables (%lld samples) before %s, %lld minute and %lld hour "
           "roll-up rows, %lld expired sessions, %lld audit rows removed in %lld ms "
           "(%lld transactions)%s%s",
           st->cancelled ? " (stopped early)" : "", (long long)st->days, (long long)st->samples,
           when, (long long)st->rollup_1m, (long long)st->rollup_1h, (long long)st->sessions,
           (long long)st->audit, (long long)took, (long long)st->transactions,
           rc < 0 ? "; failed: " : "", rc < 0 ? err : "");
    return rc;
}

int co_retention_run(co_store *s, const co_retention_conf *c, int64_t now_ms,
                     co_retention_stats *st, char *err, size_t errlen)
{
    return run_pass(s, c, now_ms, NULL, NULL, st, err, errlen);
}

static int stopping(void *ud)
{
    co_retention *r = ud;
    pthread_mutex_lock(&r->mu);
    int stop = r->stop;
    pthread_mutex_unlock(&r->mu);
    return stop;
}

static void *retention_main(void *arg)
{
    co_retention *r = arg;
    for (;;) {
        if (stopping(r)) break;
        co_retention_stats st;
        char err[256] = "";
        run_pass(r->store, &r->conf, cm_now_ms(), stopping, r, &st, err, sizeof err);
        pthread_mutex_lock(&r->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (r->conf.interval_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(r->conf.interval_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0)
            ;
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

int co_retention_start(co_retention **out, co_store *s, const co_retention_conf *c, char *err,
                       size_t errlen)
{
    *out = NULL;
    co_retention *r = calloc(1, sizeof *r);
    if (!r) {
        cm_seterr(err, errlen, "out of memory");
        return -1;
    }
    r->store = s;
    r->conf = *c;
    if (r->conf.interval_ms <= 0) r->conf.interval_ms = 3600 * 1000;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, retention_main, r) != 0) {
        cm_seterr(err, errlen, "retention: cannot start a thread");
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

void co_retention_stop(co_retention *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

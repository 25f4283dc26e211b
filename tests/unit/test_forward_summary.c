/* test_forward_summary.c — an upstream's summary mode (forward_summary.h) against a real store
 * (SQLite; PostgreSQL when CINEMON_TEST_PG is set, see store_fixture.h) and a sink that keeps
 * the records: the hours a group touches are written to the state file before its commit and
 * survive a crash, an hour is not read while a group holds it, a failed run loses nothing,
 * alerts and compliance figures go up once and come back at start only when needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/forward_summary.h"
#include "common/spool.h"
#include "common/timeutil.h"
#include "common/wire.h"
#include "store_fixture.h"

#define H 3600000LL

typedef struct sum_fx {
    store_fx *f;
    char spool[96];
    co_upstream_conf conf;
    co_fsum *fs;
    char *rec[64]; /* the records appended */
    size_t nrec;
    int fail_append;  /* the sink refuses */
    cm_batch *during; /* committed while a run appends (a commit while an hour is read) */
    int wakes;
    int64_t h0; /* an hour five hours ago */
} sum_fx;

static void on_wake(void *ud)
{
    ((sum_fx *)ud)->wakes++;
}

static void commit(sum_fx *x, cm_batch *b);

static int sink_append(void *ud, const char *json, size_t len, char *err, size_t errlen)
{
    sum_fx *x = ud;
    if (x->during) {
        cm_batch *b = x->during;
        x->during = NULL;
        commit(x, b);
        cm_batch_free(b);
        free(b);
    }
    if (x->fail_append || x->nrec == 64) {
        snprintf(err, errlen, "disk full");
        return -1;
    }
    x->rec[x->nrec] = strndup(json, len);
    x->nrec++;
    return 0;
}

static int sink_sync(void *ud, char *err, size_t errlen)
{
    (void)ud;
    (void)err;
    (void)errlen;
    return 0;
}

static void open_fs(sum_fx *x)
{
    char err[256] = "";
    if (co_fsum_open(&x->fs, &x->conf, x->f->s, "test", on_wake, x, err, sizeof err) != 0)
        fail_msg("open: %s", err);
}

static int setup(void **state)
{
    sum_fx *x = calloc(1, sizeof *x);
    if (!x || store_fx_setup((void **)&x->f) != 0) return -1;
    snprintf(x->spool, sizeof x->spool, "%s/spool", x->f->dir);
    if (mkdir(x->spool, 0700) != 0) return -1;
    x->conf = (co_upstream_conf){.name = "national",
                                 .agent_id = "chain-1",
                                 .mode = CO_FWD_SUMMARY,
                                 .summary_delay_ms = 0,
                                 .spool_dir = x->spool,
                                 .fsync = CM_FSYNC_CYCLE};
    x->h0 = (cm_now_ms() / H - 5) * H;
    *state = x;
    open_fs(x);
    return 0;
}

static void drop_records(sum_fx *x)
{
    for (size_t i = 0; i < x->nrec; i++)
        free(x->rec[i]);
    x->nrec = 0;
}

static int teardown(void **state)
{
    sum_fx *x = *state;
    co_fsum_close(x->fs);
    drop_records(x);
    char p[160];
    snprintf(p, sizeof p, "%s/summary.state", x->spool);
    unlink(p);
    snprintf(p, sizeof p, "%s/summary.state.tmp", x->spool);
    unlink(p);
    rmdir(x->spool);
    store_fx_teardown((void **)&x->f);
    free(x);
    return 0;
}

/* A batch of agent a1 at site with one point at each of the times. */
static cm_batch *mk(const char *site, uint64_t seq, const int64_t *ts, size_t n, double v)
{
    cm_batch *b = malloc(sizeof *b);
    cm_batch_init(b);
    assert_int_equal(cm_batch_set_agent(b, site[1] == '1' ? "a1" : "a2", "1", site), 0);
    b->seq = seq;
    b->sent_ms = ts[0];
    cm_device_info d = {.id = "hall1/projector", .screen = "hall1", .kind = "projector"};
    assert_int_equal(cm_batch_add_device(b, &d), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(cm_batch_add_point(b, "hall1/projector", "temperature_celsius", "C", NULL,
                                            0, ts[i], v + (double)i),
                         0);
    return b;
}

static void drop(cm_batch *b)
{
    cm_batch_free(b);
    free(b);
}

/* The writer's turn: prepare, commit, settle. */
static void commit(sum_fx *x, cm_batch *b)
{
    co_fsum_prepare(x->fs, &b, 1);
    co_batch_result r;
    char err[256] = "";
    if (co_store_write(x->f->s, &b, 1, &r, err, sizeof err) != 0) fail_msg("write: %s", err);
    co_fsum_settle(x->fs);
}

static int run(sum_fx *x, int64_t now)
{
    size_t n = 0;
    char err[256] = "";
    co_fsum_sink sink = {sink_append, sink_sync, x};
    int rc = co_fsum_run(x->fs, now, &sink, &n, err, sizeof err);
    if (rc == 0) assert_int_equal(n, x->nrec);
    return rc;
}

/* All records decoded into one batch's sections (merged as the uploader merges them). */
static void decoded(sum_fx *x, cm_batch *out)
{
    cm_batch_init(out);
    for (size_t i = 0; i < x->nrec; i++) {
        cm_batch b;
        cm_batch_init(&b);
        char err[256], at[128];
        if (cm_wire_decode(x->rec[i], strlen(x->rec[i]), NULL, &b, err, sizeof err, at,
                           sizeof at) != 0)
            fail_msg("record %zu: %s at %s", i, err, at);
        assert_int_equal(b.v, CM_WIRE_VERSION_SUMMARY);
        assert_string_equal(b.agent_id, "chain-1");
        assert_non_null(b.site);
        if (i == 0) assert_int_equal(cm_batch_set_agent(out, b.agent_id, NULL, b.site), 0);
        assert_int_equal(cm_batch_merge_summary(out, &b), 0);
        for (size_t k = 0; k < b.ndevices; k++)
            assert_int_equal(cm_batch_add_device(out, &b.devices[k]), 0);
        cm_batch_free(&b);
    }
}

/* The hours a group touches are in the state file before its commit: a crash right after the
 * commit (no run, no settle) still sends them after the restart. */
static void test_hours_survive_a_crash(void **state)
{
    sum_fx *x = *state;
    int64_t ts[] = {x->h0 + 1000, x->h0 + 2000, x->h0 + H + 5};
    cm_batch *b = mk("S1", 1, ts, 3, 20);
    co_fsum_prepare(x->fs, &b, 1);
    co_batch_result r;
    char err[256] = "";
    assert_int_equal(co_store_write(x->f->s, &b, 1, &r, err, sizeof err), 0);
    drop(b);
    co_fsum_close(x->fs); /* the crash: neither settle nor a run */
    x->fs = NULL;
    open_fs(x);
    int64_t now = cm_now_ms();
    assert_true(co_fsum_due(x->fs, now));
    assert_int_equal(run(x, now), 0);
    cm_batch got;
    decoded(x, &got);
    assert_int_equal(got.nrollups, 2); /* one entry per hour */
    int64_t seen = 0;
    for (size_t i = 0; i < got.nrollups; i++) {
        const cm_rollup *ru = &got.rollups[i];
        assert_int_equal(ru->nbuckets, 1);
        assert_string_equal(ru->metric, "temperature_celsius");
        assert_true(ru->has_latest);
        assert_int_equal(ru->latest.ts_ms, x->h0 + H + 5); /* the series' latest */
        if (ru->buckets[0].bucket_ms == x->h0) {
            assert_int_equal(ru->buckets[0].n, 2);
            assert_true(ru->buckets[0].sum == 41.0 && ru->buckets[0].min == 20.0);
            seen |= 1;
        } else {
            assert_int_equal(ru->buckets[0].bucket_ms, x->h0 + H);
            assert_int_equal(ru->buckets[0].n, 1);
            seen |= 2;
        }
    }
    assert_int_equal(seen, 3);
    assert_int_equal(got.ndevices, 1); /* the inventory of the device goes with its roll-ups */
    assert_string_equal(got.devices[0].screen, "hall1");
    cm_batch_free(&got);
    drop_records(x);
    /* sent: nothing is due any more, also after a restart */
    assert_false(co_fsum_due(x->fs, now));
    co_fsum_close(x->fs);
    x->fs = NULL;
    open_fs(x);
    assert_int_equal(run(x, now), 0); /* the start's catch-up: nothing to send */
    assert_int_equal(x->nrec, 0);
    assert_false(co_fsum_due(x->fs, now));
}

/* An hour is not read while a group that touched it is not settled; the current hour waits
 * until it ends; the delay counts from the last touch; a failed run keeps everything. */
static void test_when_hours_go(void **state)
{
    sum_fx *x = *state;
    int64_t now = cm_now_ms();
    assert_int_equal(run(x, now), 0); /* the start's catch-up */
    int64_t ts[] = {x->h0 + 10, now};
    cm_batch *b = mk("S2", 1, ts, 2, 1);
    co_fsum_prepare(x->fs, &b, 1);
    assert_false(co_fsum_due(x->fs, now + 10)); /* held by the group */
    co_batch_result r;
    char err[256] = "";
    assert_int_equal(co_store_write(x->f->s, &b, 1, &r, err, sizeof err), 0);
    co_fsum_settle(x->fs);
    drop(b);
    x->conf.summary_delay_ms = 60000; /* the delay applies from the last touch */
    assert_false(co_fsum_due(x->fs, cm_now_ms() + 1000));
    assert_true(co_fsum_due(x->fs, cm_now_ms() + 61000));
    x->conf.summary_delay_ms = 0;
    x->fail_append = 1;
    assert_int_equal(run(x, cm_now_ms() + 10), -1);
    x->fail_append = 0;
    drop_records(x);
    assert_int_equal(run(x, cm_now_ms() + 10), 0);
    cm_batch got;
    decoded(x, &got);
    assert_int_equal(got.nrollups, 1); /* the past hour only: the current one has not ended */
    assert_int_equal(got.rollups[0].buckets[0].bucket_ms, x->h0);
    cm_batch_free(&got);
    drop_records(x);
    /* the current hour goes once it has ended */
    int64_t next = (now / H + 1) * H;
    assert_true(co_fsum_due(x->fs, next + 1));
    assert_int_equal(run(x, next + 1), 0);
    decoded(x, &got);
    assert_int_equal(got.nrollups, 1);
    assert_int_equal(got.rollups[0].buckets[0].bucket_ms, next - H);
    cm_batch_free(&got);
    drop_records(x);
    /* late samples of a sent hour make it go again, with every sample of it */
    int64_t late[] = {x->h0 + 20};
    b = mk("S2", 2, late, 1, 5);
    commit(x, b);
    drop(b);
    /* ... and samples committed while it is being read make it go once more */
    int64_t later[] = {x->h0 + 30};
    x->during = mk("S2", 3, later, 1, 6);
    assert_int_equal(run(x, next + 2), 0);
    assert_null(x->during);
    decoded(x, &got);
    assert_int_equal(got.nrollups, 1);
    assert_int_equal(got.rollups[0].buckets[0].n, 2); /* read before that commit */
    cm_batch_free(&got);
    drop_records(x);
    assert_true(co_fsum_due(x->fs, next + 3));
    assert_int_equal(run(x, next + 3), 0);
    decoded(x, &got);
    assert_int_equal(got.nrollups, 1);
    assert_int_equal(got.rollups[0].buckets[0].n, 3);
    cm_batch_free(&got);
    assert_false(co_fsum_due(x->fs, next + 4));
}

static co_alert_change change(const char *from, const char *to, int64_t ts)
{
    return (co_alert_change){.rule = "projector_temperature_ambient",
                             .site = "S1",
                             .screen = "hall1",
                             .device = "hall1/projector",
                             .labels = "{\"sensor\":\"Intake\"}",
                             .from = from,
                             .to = to,
                             .severity = "warning",
                             .value = 37,
                             .threshold = 35,
                             .ts_ms = ts,
                             .text = "hot"};
}

/* Alerts go up as the hook gives them (firing and resolved, not pending); at start the firing
 * ones are sent again, and one that resolved while the hook was away is sent resolved. */
static void test_alerts_queue_and_catch_up(void **state)
{
    sum_fx *x = *state;
    int64_t now = cm_now_ms();
    assert_int_equal(run(x, now), 0); /* the start's catch-up: nothing fires yet */
    assert_int_equal(x->nrec, 0);
    co_alert_change c[2] = {change("inactive", "pending", x->h0),
                            change("pending", "firing", x->h0 + 60000)};
    co_alert_outcome o[2];
    char err[256] = "";
    for (int i = 0; i < 2; i++) {
        assert_int_equal(co_store_alerts_apply(x->f->s, &c[i], 1, now, &o[i], err, sizeof err), 0);
        co_fsum_alerts(x->fs, &c[i], &o[i], 1);
    }
    assert_true(x->wakes >= 1);
    assert_true(co_fsum_due(x->fs, now));
    assert_int_equal(run(x, now), 0);
    cm_batch got;
    decoded(x, &got);
    assert_int_equal(got.nalerts, 1); /* the pending change is not sent */
    assert_string_equal(got.alerts[0].state, "firing");
    assert_string_equal(got.site, "S1");
    assert_int_equal(got.alerts[0].started_ms, x->h0);
    assert_int_equal(got.alerts[0].firing_ms, x->h0 + 60000);
    cm_batch_free(&got);
    drop_records(x);
    /* it resolves while nobody forwards (a crash between the commit and the spool) */
    co_alert_change res = change("firing", "resolved", x->h0 + 600000);
    co_alert_outcome ro;
    assert_int_equal(co_store_alerts_apply(x->f->s, &res, 1, now, &ro, err, sizeof err), 0);
    co_fsum_close(x->fs);
    x->fs = NULL;
    open_fs(x);
    assert_int_equal(run(x, now), 0);
    decoded(x, &got);
    assert_int_equal(got.nalerts, 1);
    assert_string_equal(got.alerts[0].state, "resolved");
    assert_int_equal(got.alerts[0].resolved_ms, x->h0 + 600000);
    cm_batch_free(&got);
    drop_records(x);
    /* the upstream knows: the next start sends nothing */
    co_fsum_close(x->fs);
    x->fs = NULL;
    open_fs(x);
    assert_int_equal(run(x, now), 0);
    assert_int_equal(x->nrec, 0);
}

/* Figures go up as the hook gives them; at start only the days stored after the newest sent. */
static void test_compliance_once(void **state)
{
    sum_fx *x = *state;
    int64_t now = cm_now_ms();
    char day[16], err[256] = "";
    time_t t = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    co_compliance_row rows[] = {{"S1", "hall1", "luminance", 10, 20}, {"S2", "hall1", "spl", 5, 5}};
    assert_int_equal(co_store_compliance_put(x->f->s, day, rows, 2, now - 1000, err, sizeof err),
                     0);
    /* the first start sends the days stored (the state knows of none) */
    assert_int_equal(run(x, now), 0);
    cm_batch got;
    decoded(x, &got);
    assert_int_equal(got.ncompliance, 2);
    cm_batch_free(&got);
    drop_records(x);
    co_fsum_compliance(x->fs, day, rows, 1, now);
    assert_int_equal(run(x, now), 0);
    decoded(x, &got);
    assert_int_equal(got.ncompliance, 1);
    assert_string_equal(got.compliance[0].day, day);
    assert_string_equal(got.compliance[0].quantity, "luminance");
    assert_int_equal(got.compliance[0].in_ms, 10);
    assert_string_equal(got.site, "S1");
    cm_batch_free(&got);
    drop_records(x);
    /* after a restart: nothing newer than what was sent */
    co_fsum_close(x->fs);
    x->fs = NULL;
    open_fs(x);
    assert_int_equal(run(x, now), 0);
    assert_int_equal(x->nrec, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hours_survive_a_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_when_hours_go, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alerts_queue_and_catch_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compliance_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

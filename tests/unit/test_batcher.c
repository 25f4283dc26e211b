/* test_batcher.c — one spool record per loop tick, seqs from the spool, the ledger, and the
 * record decoding back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/batcher.h"
#include "gzip.h"
#include "spool.h"
#include "timeutil.h"
#include "wire.h"

typedef struct fx {
    char root[64];
    char spool_dir[128];
    char ledger[192];
    ag_config cfg;
    uv_loop_t loop;
    cm_spool *spool;
    ag_batcher *b;
    uint64_t seen[16]; /* seqs reported by the record callback */
    size_t nseen;
    int ticks; /* timer callbacks still to run */
} fx;

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void spool_open(fx *f)
{
    cm_spool_opts o = {.dir = f->spool_dir,
                       .segment_bytes = 64 << 10,
                       .max_bytes = 16 << 20,
                       .min_free_bytes = 1 << 20,
                       .fsync = CM_FSYNC_CYCLE};
    char err[256] = "";
    if (cm_spool_open(&f->spool, &o, NULL, err, sizeof err) != 0) fail_msg("spool: %s", err);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/cinemon-batcher-XXXXXX");
    if (!mkdtemp(f->root)) return -1;
    snprintf(f->spool_dir, sizeof f->spool_dir, "%s/spool", f->root);
    snprintf(f->ledger, sizeof f->ledger, "%s/var/audit/ledger.txt", f->root); /* 2 missing */
    f->cfg.site = "1101001";
    f->cfg.agent_id = "agent-7";
    f->cfg.spool_fsync = CM_FSYNC_CYCLE;
    if (uv_loop_init(&f->loop) != 0) return -1;
    spool_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->b) ag_batcher_close(f->b);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    if (f->spool) cm_spool_close(f->spool);
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void on_record(void *ud, uint64_t seq, size_t len)
{
    fx *f = ud;
    assert_true(len > 0);
    if (f->nseen < 16) f->seen[f->nseen++] = seq;
}

static void open_ok(fx *f)
{
    char err[512] = "";
    int rc = ag_batcher_open(&f->b, &f->loop, f->spool, &f->cfg, "0.1.0", err, sizeof err);
    if (rc != 0) fail_msg("open: %s", err);
    assert_non_null(f->b);
    ag_batcher_on_record(f->b, on_record, f);
}

static void add_sample(ag_batcher *b, double v)
{
    assert_int_equal(
        ag_batcher_add_point(b, "hall1/projector", "lamp_hours", "h", NULL, 0, 1764082790000, v),
        0);
}

/* Read record seq from the spool and decode it into *out (initialised here). */
static cm_spool_record read_record(fx *f, uint64_t seq, cm_batch *out)
{
    cm_spool_record rec;
    char err[256] = "", at[128] = "";
    assert_int_equal(cm_spool_read(f->spool, seq, &rec, err, sizeof err), 1);
    assert_int_equal(rec.seq, seq);
    /* stored gzip-compressed; the stated size in its trailer is the JSON's */
    assert_int_equal(rec.type, CM_REC_BATCH_GZ);
    char *json;
    size_t len;
    if (cm_gunzip(rec.data, rec.len, 1 << 24, &json, &len, err, sizeof err) != 0)
        fail_msg("gunzip record %llu: %s", (unsigned long long)seq, err);
    assert_int_equal(cm_gzip_stated_size(rec.data, rec.len), len);
    cm_batch_init(out);
    int rc = cm_wire_decode(json, len, NULL, out, err, sizeof err, at, sizeof at);
    free(json);
    if (rc != 0) fail_msg("decode record %llu: %s at %s", (unsigned long long)seq, err, at);
    return rec;
}

/* Run exactly one loop iteration (a due timer keeps the loop alive for it). */
static void noop(uv_timer_t *t)
{
    (void)t;
}

static void run_one_tick(fx *f)
{
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    uv_timer_start(&t, noop, 0, 0);
    uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Each timer callback is one loop tick adding (tick number) samples: 1, then 2, then 3. */
static void on_timer(uv_timer_t *t)
{
    fx *f = t->data;
    int n = 4 - f->ticks;
    for (int i = 0; i < n; i++)
        add_sample(f->b, (double)(n * 10 + i));
    if (--f->ticks == 0) uv_timer_stop(t);
}

static void test_one_record_per_tick(void **state)
{
    fx *f = *state;
    open_ok(f);
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    t.data = f;
    f->ticks = 3;
    uv_timer_start(&t, on_timer, 5, 20); /* 20 ms apart: three separate ticks */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);

    assert_int_equal(f->nseen, 3);
    cm_spool_stats st;
    cm_spool_stats_get(f->spool, &st);
    assert_int_equal(st.records, 3);
    assert_int_equal(st.next_seq, 4);
    for (uint64_t seq = 1; seq <= 3; seq++) {
        assert_int_equal(f->seen[seq - 1], seq);
        cm_batch got;
        read_record(f, seq, &got);
        assert_int_equal(got.seq, seq); /* the batch carries its record's seq */
        assert_int_equal(cm_batch_points(&got), seq);
        assert_string_equal(got.agent_id, "agent-7");
        assert_true(got.series[0].points[0].value == (double)(seq * 10));
        cm_batch_free(&got);
    }
    assert_true(cm_batch_empty(ag_batcher_current(f->b)));
    ag_batcher_stats bs;
    ag_batcher_stats_get(f->b, &bs);
    assert_int_equal(bs.records, 3);
    assert_int_equal(bs.samples, 6);
    assert_int_equal(bs.append_errors, 0);
}

/* Ticks that add nothing append nothing; an explicit seal of an empty batch returns 0. */
static void test_empty_ticks_append_nothing(void **state)
{
    fx *f = *state;
    open_ok(f);
    for (int i = 0; i < 5; i++)
        run_one_tick(f);
    char err[256] = "";
    uint64_t seq = 77;
    assert_int_equal(ag_batcher_seal(f->b, &seq, err, sizeof err), 0);
    assert_int_equal(seq, 77);
    cm_spool_stats st;
    cm_spool_stats_get(f->spool, &st);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.next_seq, 1); /* no seq burnt for nothing */
    assert_int_equal(f->nseen, 0);
}

/* The seq comes from the spool: records already there (and a reopen) move it on. */
static void test_seq_from_spool(void **state)
{
    fx *f = *state;
    uint64_t seq;
    char err[256] = "";
    const char *gap = "{\"from_seq\":1,\"to_seq\":1,\"reason\":\"missing\"}";
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            cm_spool_append(f->spool, CM_REC_GAP, gap, strlen(gap), &seq, err, sizeof err), 0);
    assert_int_equal(seq, 2);
    open_ok(f);
    add_sample(f->b, 1);
    assert_int_equal(ag_batcher_seal(f->b, &seq, err, sizeof err), 1);
    assert_int_equal(seq, 3);
    cm_batch got;
    read_record(f, 3, &got);
    assert_int_equal(got.seq, 3);
    cm_batch_free(&got);

    /* close everything, reopen: the next record is 4 */
    ag_batcher_close(f->b);
    f->b = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    cm_spool_close(f->spool);
    spool_open(f);
    open_ok(f);
    add_sample(f->b, 2);
    assert_int_equal(ag_batcher_seal(f->b, &seq, err, sizeof err), 1);
    assert_int_equal(seq, 4);
    read_record(f, 4, &got);
    assert_int_equal(got.seq, 4);
    assert_true(got.series[0].points[0].value == 2);
    cm_batch_free(&got);
}

static void read_text(const char *path, char *buf, size_t len)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, len - 1, fp);
    buf[n] = '\0';
    fclose(fp);
}

/* With a ledger: one "seq samples" line per record, appended (earlier lines kept). */
static void test_ledger_lines(void **state)
{
    fx *f = *state;
    f->cfg.ledger_path = f->ledger;
    open_ok(f);
    for (int i = 0; i < 3; i++)
        add_sample(f->b, i);
    assert_int_equal(ag_batcher_add_point(f->b, "hall1/projector", "fan_speed_rpm", "rpm", NULL, 0,
                                          1764082790000, 1200),
                     0);
    char err[256] = "";
    uint64_t seq;
    assert_int_equal(ag_batcher_seal(f->b, &seq, err, sizeof err), 1);
    /* an event alone is a record with 0 samples (synced at once) */
    cm_event ev = {.device = "hall1/projector",
                   .ts_ms = 1764082795000,
                   .severity = "critical",
                   .code = "lamp_failure",
                   .text = "lamp failed",
                   .source = "agent"};
    assert_int_equal(ag_batcher_add_event(f->b, &ev), 0);
    assert_int_equal(ag_batcher_seal(f->b, &seq, err, sizeof err), 1);
    char buf[256];
    read_text(f->ledger, buf, sizeof buf);
    assert_string_equal(buf, "1 4\n2 0\n");
    struct stat st;
    char dir[192];
    snprintf(dir, sizeof dir, "%s/var/audit", f->root);
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* a restart appends */
    ag_batcher_close(f->b);
    f->b = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    open_ok(f);
    add_sample(f->b, 9);
    assert_int_equal(ag_batcher_seal(f->b, &seq, err, sizeof err), 1);
    read_text(f->ledger, buf, sizeof buf);
    assert_string_equal(buf, "1 4\n2 0\n3 1\n");
}

static void test_ledger_not_openable(void **state)
{
    fx *f = *state;
    char file[128], bad[192];
    snprintf(file, sizeof file, "%s/plainfile", f->root);
    FILE *fp = fopen(file, "w");
    fputs("x", fp);
    fclose(fp);
    snprintf(bad, sizeof bad, "%s/sub/ledger.txt", file);
    f->cfg.ledger_path = bad;
    ag_batcher *b = (ag_batcher *)1;
    char err[512] = "";
    assert_int_equal(ag_batcher_open(&b, &f->loop, f->spool, &f->cfg, "0.1.0", err, sizeof err),
                     -1);
    assert_null(b);
    assert_non_null(strstr(err, file));
}

static void test_record_decodes_back(void **state)
{
    fx *f = *state;
    f->cfg.agent_id = NULL; /* defaults to the site code */
    open_ok(f);
    cm_label fan2[] = {{"fan", "2"}};
    cm_device_info dev = {.id = "hall1/projector",
                          .screen = "hall1",
                          .kind = "projector",
                          .vendor = "Christie",
                          .model = "CP4230",
                          .profile = "christie-cp"};
    cm_event ev = {.device = "hall1/projector",
                   .ts_ms = 1764082795000,
                   .severity = "warning",
                   .code = "lamp_strike",
                   .text = "lamp strike retried",
                   .source = "agent"};
    assert_int_equal(ag_batcher_add_device(f->b, &dev), 0);
    assert_int_equal(ag_batcher_add_event(f->b, &ev), 0);
    for (int i = 0; i < 10; i++) {
        add_sample(f->b, 1000.0 + i);
        assert_int_equal(ag_batcher_add_point(f->b, "hall1/projector", "fan_speed_rpm", "rpm", fan2,
                                              1, 1764082790000 + i * 1000, 2000.5 + i),
                         0);
    }
    assert_int_equal(cm_batch_points(ag_batcher_current(f->b)), 20);
    int64_t t0 = cm_now_ms();
    run_one_tick(f); /* the end of the tick seals */
    int64_t t1 = cm_now_ms();
    assert_int_equal(f->nseen, 1);

    cm_batch *cur = ag_batcher_current(f->b);
    assert_true(cm_batch_empty(cur));
    assert_string_equal(cur->agent_id, "1101001");

    cm_batch got;
    cm_spool_record rec = read_record(f, 1, &got);
    assert_true(rec.appended_ms >= t0 && rec.appended_ms <= t1);
    assert_int_equal(got.seq, 1);
    assert_true(got.sent_ms >= t0 && got.sent_ms <= t1);
    assert_string_equal(got.agent_id, "1101001");
    assert_string_equal(got.agent_version, "0.1.0");
    assert_string_equal(got.site, "1101001");
    assert_int_equal(got.ndevices, 1);
    assert_string_equal(got.devices[0].model, "CP4230");
    assert_int_equal(got.nevents, 1);
    assert_string_equal(got.events[0].code, "lamp_strike");
    assert_int_equal(got.nseries, 2);
    assert_int_equal(cm_batch_points(&got), 20);
    for (size_t s = 0; s < got.nseries; s++) {
        cm_series *se = &got.series[s];
        assert_int_equal(se->npoints, 10);
        int fan = strcmp(se->metric, "fan_speed_rpm") == 0;
        if (fan) {
            assert_int_equal(se->nlabels, 1);
            assert_string_equal(se->labels[0].key, "fan");
            assert_string_equal(se->labels[0].value, "2");
        } else {
            assert_string_equal(se->metric, "lamp_hours");
        }
        for (size_t i = 0; i < 10; i++) {
            double want = fan ? 2000.5 + (double)i : 1000.0 + (double)i;
            assert_true(se->points[i].value == want);
        }
    }
    cm_batch_free(&got);
}

static void test_open_requires_identity(void **state)
{
    fx *f = *state;
    f->cfg.site = NULL;
    ag_batcher *b = NULL;
    char err[256] = "";
    assert_int_equal(ag_batcher_open(&b, &f->loop, f->spool, &f->cfg, "0.1.0", err, sizeof err),
                     -1);
    assert_null(b);
    assert_non_null(strstr(err, "site"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_record_per_tick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_ticks_append_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_from_spool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ledger_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ledger_not_openable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_decodes_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_requires_identity, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

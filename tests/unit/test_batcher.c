/* test_batcher.c — seq persistence, sealing, and the sealed body decoding back. */
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
#include "timeutil.h"
#include "wire.h"

typedef struct fx {
    char root[64];
    char state[128];
    ag_config cfg;
} fx;

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/cinemon-batcher-XXXXXX");
    if (!mkdtemp(f->root)) return -1;
    snprintf(f->state, sizeof f->state, "%s/var/state", f->root); /* two missing levels */
    f->cfg.site = "1101001";
    f->cfg.agent_id = "agent-7";
    f->cfg.state_dir = f->state;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static ag_batcher *open_ok(fx *f)
{
    ag_batcher *b = NULL;
    char err[512] = "";
    int rc = ag_batcher_open(&b, &f->cfg, "0.1.0", err, sizeof err);
    if (rc != 0) fail_msg("open: %s", err);
    assert_non_null(b);
    return b;
}

static void add_sample(ag_batcher *b, double v)
{
    assert_int_equal(
        ag_batcher_add_point(b, "hall1/projector", "lamp_hours", "h", NULL, 0, 1764082790000, v),
        0);
}

static uint64_t seal_ok(ag_batcher *b)
{
    char *body = NULL, err[512] = "";
    size_t len = 0;
    uint64_t seq = 0;
    int rc = ag_batcher_seal(b, &body, &len, &seq, err, sizeof err);
    if (rc != 1) fail_msg("seal returned %d: %s", rc, err);
    assert_non_null(body);
    assert_int_equal(strlen(body), len);
    free(body);
    return seq;
}

static void read_file(const char *path, char *buf, size_t len)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, len - 1, fp);
    buf[n] = '\0';
    fclose(fp);
}

static void write_file(const char *path, const char *s)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(s, fp);
    fclose(fp);
}

static void test_seq_persists_across_reopen(void **state)
{
    fx *f = *state;
    ag_batcher *b = open_ok(f);
    struct stat st;
    assert_int_equal(stat(f->state, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    mode_t um = umask(0);
    umask(um);
    assert_int_equal(st.st_mode & 0777, 0750 & ~um);
    assert_int_equal(ag_batcher_last_seq(b), 0);
    for (uint64_t want = 1; want <= 3; want++) {
        add_sample(b, (double)want);
        assert_int_equal(seal_ok(b), want);
        assert_int_equal(ag_batcher_last_seq(b), want);
    }
    ag_batcher_close(b);

    char path[256], buf[64];
    snprintf(path, sizeof path, "%s/seq", f->state);
    read_file(path, buf, sizeof buf);
    assert_string_equal(buf, "3\n");
    snprintf(path, sizeof path, "%s/seq.tmp", f->state);
    assert_int_equal(access(path, F_OK), -1);

    b = open_ok(f);
    assert_int_equal(ag_batcher_last_seq(b), 3);
    add_sample(b, 4);
    assert_int_equal(seal_ok(b), 4);
    ag_batcher_close(b);
}

static void test_empty_seal_returns_zero(void **state)
{
    fx *f = *state;
    ag_batcher *b = open_ok(f);
    char *body = (char *)"untouched", err[256] = "";
    size_t len = 99;
    uint64_t seq = 77;
    assert_int_equal(ag_batcher_seal(b, &body, &len, &seq, err, sizeof err), 0);
    assert_null(body);
    assert_int_equal(len, 0);
    assert_int_equal(ag_batcher_last_seq(b), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/seq", f->state);
    assert_int_equal(access(path, F_OK), -1); /* no seq burnt for nothing */
    add_sample(b, 1);
    assert_int_equal(seal_ok(b), 1);
    /* sealing resets the batch: the next seal is empty again */
    assert_int_equal(ag_batcher_seal(b, &body, &len, &seq, err, sizeof err), 0);
    ag_batcher_close(b);
}

static void test_malformed_seq_file_names_it(void **state)
{
    fx *f = *state;
    ag_batcher_close(open_ok(f)); /* creates the folder */
    char path[256];
    snprintf(path, sizeof path, "%s/seq", f->state);
    const char *bad[] = {"12x\n",
                         "",
                         "\n",
                         "-1\n",
                         " 5\n",
                         "5\n6\n",
                         "99999999999999999999999\n",
                         "18446744073709551615\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_file(path, bad[i]);
        ag_batcher *b = (ag_batcher *)1;
        char err[512] = "";
        assert_int_equal(ag_batcher_open(&b, &f->cfg, "0.1.0", err, sizeof err), -1);
        assert_null(b);
        if (!strstr(err, path)) fail_msg("case %zu: error does not name %s: %s", i, path, err);
        assert_non_null(strstr(err, "malformed"));
    }
    write_file(path, "41"); /* no newline is fine */
    ag_batcher *b = open_ok(f);
    assert_int_equal(ag_batcher_last_seq(b), 41);
    add_sample(b, 1);
    assert_int_equal(seal_ok(b), 42);
    ag_batcher_close(b);
}

static void test_state_dir_not_creatable(void **state)
{
    fx *f = *state;
    char file[128];
    snprintf(file, sizeof file, "%s/plainfile", f->root);
    write_file(file, "x");
    char dir[192];
    snprintf(dir, sizeof dir, "%s/sub", file);
    f->cfg.state_dir = dir;
    ag_batcher *b = NULL;
    char err[512] = "";
    assert_int_equal(ag_batcher_open(&b, &f->cfg, "0.1.0", err, sizeof err), -1);
    assert_null(b);
    assert_non_null(strstr(err, file));
}

static void test_sealed_body_decodes_back(void **state)
{
    fx *f = *state;
    f->cfg.agent_id = NULL; /* defaults to the site code */
    ag_batcher *b = open_ok(f);
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
    assert_int_equal(ag_batcher_add_device(b, &dev), 0);
    assert_int_equal(ag_batcher_add_event(b, &ev), 0);
    for (int i = 0; i < 10; i++) {
        add_sample(b, 1000.0 + i);
        assert_int_equal(ag_batcher_add_point(b, "hall1/projector", "fan_speed_rpm", "rpm", fan2, 1,
                                              1764082790000 + i * 1000, 2000.5 + i),
                         0);
    }
    assert_int_equal(cm_batch_points(ag_batcher_current(b)), 20);

    int64_t t0 = cm_now_ms();
    char *body = NULL, err[512] = "";
    size_t len = 0;
    uint64_t seq = 0;
    assert_int_equal(ag_batcher_seal(b, &body, &len, &seq, err, sizeof err), 1);
    int64_t t1 = cm_now_ms();
    assert_int_equal(seq, 1);

    /* the new batch is empty but keeps the agent identity */
    cm_batch *cur = ag_batcher_current(b);
    assert_true(cm_batch_empty(cur));
    assert_string_equal(cur->agent_id, "1101001");
    assert_string_equal(cur->agent_version, "0.1.0");
    assert_string_equal(cur->site, "1101001");

    cm_batch got;
    cm_batch_init(&got);
    char at[128] = "";
    int rc = cm_wire_decode(body, len, NULL, &got, err, sizeof err, at, sizeof at);
    if (rc != 0) fail_msg("decode: %s at %s", err, at);
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
    free(body);

    /* a second batch after the seal carries seq 2 and only its own points */
    add_sample(b, 5);
    assert_int_equal(ag_batcher_seal(b, &body, &len, &seq, err, sizeof err), 1);
    assert_int_equal(seq, 2);
    cm_batch_init(&got);
    assert_int_equal(cm_wire_decode(body, len, NULL, &got, err, sizeof err, at, sizeof at), 0);
    assert_int_equal(got.seq, 2);
    assert_int_equal(cm_batch_points(&got), 1);
    assert_int_equal(got.ndevices, 0);
    assert_int_equal(got.nevents, 0);
    cm_batch_free(&got);
    free(body);
    ag_batcher_close(b);
}

static void test_open_requires_identity(void **state)
{
    fx *f = *state;
    f->cfg.site = NULL;
    ag_batcher *b = NULL;
    char err[256] = "";
    assert_int_equal(ag_batcher_open(&b, &f->cfg, "0.1.0", err, sizeof err), -1);
    assert_null(b);
    assert_non_null(strstr(err, "site"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seq_persists_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_seal_returns_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_seq_file_names_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_dir_not_creatable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_body_decodes_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_requires_identity, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

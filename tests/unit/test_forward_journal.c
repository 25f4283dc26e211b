/* test_forward_journal.c — the forwarder's intent journal (collector/forward_journal.c):
 * a group written reads back the same, a shorter group replaces a longer one, clear empties
 * it, and a torn or corrupt journal reads as empty. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/forward_journal.h"
#include "log.h"
#include "spool.h"

static char g_dir[128], g_path[256];

static co_fjournal *open_fresh(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/cinemon-test-fj-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_path, sizeof g_path, "%s/forward.journal", g_dir);
    co_fjournal *j = NULL;
    char err[256] = "";
    if (co_fj_open(&j, g_path, 1, err, sizeof err) != 0) fail_msg("%s", err);
    return j;
}

static void done(co_fjournal *j)
{
    co_fj_close(j);
    unlink(g_path);
    rmdir(g_dir);
}

static off_t file_size(void)
{
    struct stat st;
    assert_int_equal(stat(g_path, &st), 0);
    return st.st_size;
}

static const co_fj_entry GROUP[] = {
    {"agent-a", 5, 7, 4, CM_REC_BATCH, "{\"x\":1}", 7},
    {"agent-b", 1, 1, CO_FJ_UNKNOWN, CM_REC_BATCH_GZ, "\x1f\x8b\0binary", 9},
    {"agent-a", 8, 8, 7, CM_REC_BATCH, "", 0},
};

static void test_round_trip(void **st)
{
    (void)st;
    co_fjournal *j = open_fresh();
    char err[256] = "";
    uint64_t low = 99;
    const co_fj_entry *e;
    size_t n = 7;
    assert_int_equal(co_fj_read(j, &low, &e, &n, err, sizeof err), 0); /* new: empty */
    assert_int_equal(n, 0);
    assert_int_equal(co_fj_write(j, 42, GROUP, 3, err, sizeof err), 0);
    assert_int_equal(co_fj_read(j, &low, &e, &n, err, sizeof err), 1);
    assert_int_equal(low, 42);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(e[i].agent, GROUP[i].agent);
        assert_int_equal(e[i].first_seq, GROUP[i].first_seq);
        assert_int_equal(e[i].seq, GROUP[i].seq);
        assert_int_equal(e[i].last_before, GROUP[i].last_before);
        assert_int_equal(e[i].type, GROUP[i].type);
        assert_int_equal(e[i].len, GROUP[i].len);
        assert_memory_equal(e[i].payload, GROUP[i].payload, GROUP[i].len);
    }
    /* expected stored: records above the agent's last_seq, and only when it was known */
    assert_true(co_fj_expected_stored(&e[0]));
    assert_false(co_fj_expected_stored(&e[1]));
    assert_true(co_fj_expected_stored(&e[2]));
    co_fj_entry dup = GROUP[0];
    dup.last_before = 7; /* seq <= last: a duplicate */
    assert_false(co_fj_expected_stored(&dup));
    dup.last_before = 5; /* first <= last < seq: an overlap */
    assert_false(co_fj_expected_stored(&dup));

    /* a shorter group replaces it; a reopened journal reads the same */
    off_t big = file_size();
    assert_int_equal(co_fj_write(j, 43, GROUP + 2, 1, err, sizeof err), 0);
    assert_true(file_size() < big);
    co_fj_close(j);
    assert_int_equal(co_fj_open(&j, g_path, 0, err, sizeof err), 0);
    assert_int_equal(co_fj_read(j, &low, &e, &n, err, sizeof err), 1);
    assert_int_equal(low, 43);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].agent, "agent-a");
    assert_int_equal(e[0].seq, 8);

    assert_int_equal(co_fj_clear(j, err, sizeof err), 0);
    assert_int_equal(file_size(), 0);
    assert_int_equal(co_fj_read(j, &low, &e, &n, err, sizeof err), 0);
    done(j);
}

/* Cut the file to len bytes, or flip the byte at offset flip (>= 0). */
static void damage(off_t len, off_t flip)
{
    int fd = open(g_path, O_RDWR);
    assert_true(fd >= 0);
    if (len >= 0) assert_int_equal(ftruncate(fd, len), 0);
    if (flip >= 0) {
        unsigned char c;
        assert_int_equal(pread(fd, &c, 1, flip), 1);
        c ^= 0x40;
        assert_int_equal(pwrite(fd, &c, 1, flip), 1);
    }
    close(fd);
}

static void test_torn_reads_empty(void **st)
{
    (void)st;
    char err[256] = "";
    uint64_t low;
    const co_fj_entry *e;
    size_t n;
    off_t cuts[] = {1, 20, 40, 80, -1};
    for (size_t k = 0; k < sizeof cuts / sizeof *cuts; k++) {
        co_fjournal *j = open_fresh();
        assert_int_equal(co_fj_write(j, 42, GROUP, 3, err, sizeof err), 0);
        off_t full = file_size();
        if (cuts[k] < 0)
            damage(-1, full / 2); /* a flipped byte in the middle */
        else
            damage(full - cuts[k], -1); /* a torn tail */
        co_fj_close(j);
        assert_int_equal(co_fj_open(&j, g_path, 1, err, sizeof err), 0);
        assert_int_equal(co_fj_read(j, &low, &e, &n, err, sizeof err), 0);
        assert_int_equal(n, 0);
        done(j);
    }
    /* not a journal at all */
    co_fjournal *j = open_fresh();
    FILE *f = fopen(g_path, "w");
    fputs("hello, this is not a journal of ours at all", f);
    fclose(f);
    assert_int_equal(co_fj_read(j, &low, &e, &n, err, sizeof err), 0);
    done(j);
}

int main(void)
{
    cm_log_init("test_forward_journal", CM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_torn_reads_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

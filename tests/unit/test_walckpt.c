/* test_walckpt.c — the checkpoint thread (collector/walckpt.c) on a real SQLite file: while a
 * writer commits without pause and a reader holds snapshots now and then, the log is copied
 * into the database file by the thread and, past the limit, restarted by the writer (its file
 * stays bounded), nothing written is lost, and stopping hands the writer back to SQLite's own
 * checkpoints; a reader that stays in the log holds the writer only briefly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "collector/walckpt.h"

#define PAGES 50
#define TXS 3000

static char g_dir[] = "/tmp/cinemon-walckpt-XXXXXX";
static char g_path[128];

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg);
}

static long long file_size(const char *suffix)
{
    char p[160];
    snprintf(p, sizeof p, "%s%s", g_path, suffix);
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

static void test_thread_checkpoints_and_log_restarts(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_path, sizeof g_path, "%s/t.db", g_dir);
    sqlite3 *w, *r;
    assert_int_equal(sqlite3_open(g_path, &w), SQLITE_OK);
    exec(w, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
            "CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, pad BLOB);"
            "CREATE INDEX t_k ON t(k)");
    assert_int_equal(sqlite3_open(g_path, &r), SQLITE_OK);
    sqlite3_busy_timeout(w, 5000);
    co_walckpt *c = NULL;
    char err[256] = "";
    assert_int_equal(co_walckpt_start(&c, w, g_path, PAGES, 5000, err, sizeof err), 0);
    sqlite3_stmt *ins, *cnt;
    assert_int_equal(
        sqlite3_prepare_v2(w, "INSERT INTO t(k, pad) VALUES(?1, zeroblob(600))", -1, &ins, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(r, "SELECT count(*) FROM t", -1, &cnt, NULL), SQLITE_OK);
    long long wal_max = 0;
    for (int tx = 0; tx < TXS; tx++) {
        exec(w, "BEGIN IMMEDIATE");
        for (int i = 0; i < 20; i++) {
            sqlite3_bind_int64(ins, 1, (tx * 7919 + i * 104729) % 100003); /* scattered */
            assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
            sqlite3_reset(ins);
        }
        exec(w, "COMMIT");
        if (tx % 100 == 50) { /* a reader's snapshot now and then */
            assert_int_equal(sqlite3_step(cnt), SQLITE_ROW);
            assert_int_equal(sqlite3_column_int64(cnt, 0), (tx + 1) * 20);
            sqlite3_reset(cnt);
        }
        long long sz = file_size("-wal");
        if (sz > wal_max) wal_max = sz;
    }
    co_walckpt_stats st;
    co_walckpt_get_stats(c, &st);
    /* the thread copied pages; the log restarted from its beginning: it never held all the
     * writes (3000 transactions of ~40 scattered pages, ~480 MB of log frames), at most the
     * hard limit's worth (50 x 256 frames of 4 KB, 52 MB) */
    assert_true(st.passive > 0);
    assert_true(st.restart > 0);
    assert_int_equal(st.failed, 0);
    assert_true(file_size("") > 8 * 1024 * 1024); /* in the database file, not only the log */
    if (wal_max >= 60 * 1024 * 1024)
        fail_msg("log grew to %lld bytes (passive %llu, restart %llu, busy %llu)", wal_max,
                 (unsigned long long)st.passive, (unsigned long long)st.restart,
                 (unsigned long long)st.busy);
    co_walckpt_stop(c);
    /* back to SQLite's own checkpoints: more writes, then a close that checkpoints */
    exec(w, "INSERT INTO t(k) VALUES(-1)");
    sqlite3_finalize(ins);
    sqlite3_finalize(cnt);
    sqlite3_close(r);
    assert_int_equal(sqlite3_close(w), SQLITE_OK);
    assert_true(file_size("-wal") <= 0);
    assert_int_equal(sqlite3_open(g_path, &r), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(r, "SELECT count(*) FROM t", -1, &cnt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(cnt), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(cnt, 0), TXS * 20 + 1);
    sqlite3_finalize(cnt);
    sqlite3_close(r);
    co_walckpt_stop(NULL);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    assert_int_equal(system(cmd), 0);
}

/* A reader that keeps its snapshot in the log: the writer's restart waits for it only briefly
 * (no commit takes the writer's 5 s busy timeout), gives up, and restarts the log once the
 * reader is gone. */
static void test_reader_in_the_log(void **state)
{
    (void)state;
    char dir[] = "/tmp/cinemon-walckpt-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/r.db", dir);
    sqlite3 *w, *r;
    assert_int_equal(sqlite3_open(path, &w), SQLITE_OK);
    exec(w, "PRAGMA journal_mode = WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB)");
    sqlite3_busy_timeout(w, 5000);
    co_walckpt *c = NULL;
    char err[256] = "";
    /* 5 pages: restarts from 80 frames when the thread has copied them, from 1,280 anyway */
    assert_int_equal(co_walckpt_start(&c, w, path, 5, 5000, err, sizeof err), 0);
    assert_int_equal(sqlite3_open(path, &r), SQLITE_OK);
    exec(w, "INSERT INTO t(pad) VALUES(zeroblob(100))");
    exec(r, "BEGIN; SELECT count(*) FROM t"); /* its snapshot stays in the log */
    double worst = 0;
    for (int tx = 0; tx < 160; tx++) { /* ~20 frames each: past the hard limit at ~tx 64 */
        struct timespec a, z;
        clock_gettime(CLOCK_MONOTONIC, &a);
        exec(w, "BEGIN; INSERT INTO t(pad) SELECT zeroblob(3000) FROM t LIMIT 25; COMMIT");
        clock_gettime(CLOCK_MONOTONIC, &z);
        double s = (double)(z.tv_sec - a.tv_sec) + (double)(z.tv_nsec - a.tv_nsec) / 1e9;
        if (s > worst) worst = s;
        if (tx == 110) exec(r, "COMMIT"); /* the reader leaves */
    }
    co_walckpt_stats st;
    co_walckpt_get_stats(c, &st);
    if (getenv("WALCKPT_VERBOSE"))
        print_message("worst commit %.2f s, restarts %llu, gave up %llu\n", worst,
                      (unsigned long long)st.restart, (unsigned long long)st.busy);
    if (worst >= 2.0 || st.busy < 1 || st.restart < 1)
        fail_msg("worst commit %.2f s, restarts %llu, gave up %llu", worst,
                 (unsigned long long)st.restart, (unsigned long long)st.busy);
    co_walckpt_stop(c);
    sqlite3_close(r);
    assert_int_equal(sqlite3_close(w), SQLITE_OK);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_open_error_named(void **state)
{
    (void)state;
    sqlite3 *w;
    assert_int_equal(sqlite3_open(":memory:", &w), SQLITE_OK);
    co_walckpt *c = (co_walckpt *)1;
    char err[256] = "";
    assert_int_equal(
        co_walckpt_start(&c, w, "/nonexistent-dir-cinemon/x.db", PAGES, 5000, err, sizeof err), -1);
    assert_null(c);
    assert_non_null(strstr(err, "/nonexistent-dir-cinemon/x.db"));
    sqlite3_close(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_checkpoints_and_log_restarts),
        cmocka_unit_test(test_reader_in_the_log),
        cmocka_unit_test(test_open_error_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_forward_conf.c — [upstream "name"] sections of collector.ini (collector/forward_conf.c):
 * values, the agent's defaults, paths resolved against the ini's folder, the default spool
 * next to the database, and every error naming file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector/config.h"

static char g_dir[128];
static char g_path[256];

/* Write text to <fresh temp dir>/collector.ini; the path is in g_path. */
static const char *write_ini(const char *text)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/cinemon-test-fwdconf-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_path, sizeof g_path, "%s/collector.ini", g_dir);
    FILE *f = fopen(g_path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    fclose(f);
    return g_path;
}

static void cleanup(void)
{
    unlink(g_path);
    rmdir(g_dir);
}

/* Loading text fails with an error naming the file, the line and `want`. */
static void expect_error(const char *text, int line, const char *want)
{
    co_config c;
    char err[512] = "", where[64];
    const char *p = write_ini(text);
    assert_int_equal(co_config_load(&c, p, err, sizeof err), -1);
    co_config_free(&c);
    cleanup();
    if (!strstr(err, want)) fail_msg("error '%s' does not contain '%s'", err, want);
    snprintf(where, sizeof where, "collector.ini:%d:", line);
    if (!strstr(err, where)) fail_msg("error '%s' does not name %s", err, where);
}

#define UP "[upstream \"nation\"]\nurl = http://10.0.0.1:8080\ntoken_file = up.token\n"

static void test_full_section(void **st)
{
    (void)st;
    co_config c;
    char err[512] = "";
    const char *p = write_ini("[store]\npath = data/chain.db\n"
                              "[upstream \"province-gd\"]\n"
                              "url = https://gd.example.org/\n"
                              "token_file = secrets/gd.token\n"
                              "agent_id = chain-wanda-gd\n"
                              "mode = full\n"
                              "interval = 5s\n"
                              "timeout = 10s\n"
                              "backoff_base = 200ms\n"
                              "backoff_cap = 2m\n"
                              "max_batch_bytes = 256k\n"
                              "spool_dir = /var/spool/cinemon-gd\n"
                              "fsync = always\n"
                              "max_bytes = 64M\n"
                              "min_free_bytes = 0\n"
                              "segment_bytes = 1M\n"
                              "[upstream \"nation\"]\n"
                              "url = http://10.0.0.1:8080\n"
                              "token_file = /etc/cinemon/nation.token\n"
                              "agent_id = chain-wanda\n");
    assert_int_equal(co_config_load(&c, p, err, sizeof err), 0);
    assert_int_equal(c.forward.n, 2);
    const co_upstream_conf *u = &c.forward.ups[0];
    assert_string_equal(u->name, "province-gd");
    assert_int_equal(u->line, 3);
    assert_string_equal(u->url, "https://gd.example.org/");
    char want[300];
    snprintf(want, sizeof want, "%s/secrets/gd.token", g_dir);
    assert_string_equal(u->token_file, want);
    assert_string_equal(u->agent_id, "chain-wanda-gd");
    assert_int_equal(u->mode, CO_FWD_FULL);
    assert_int_equal(u->interval_ms, 5000);
    assert_int_equal(u->timeout_ms, 10000);
    assert_int_equal(u->backoff_base_ms, 200);
    assert_int_equal(u->backoff_cap_ms, 120000);
    assert_int_equal(u->max_batch_bytes, 256u << 10);
    assert_string_equal(u->spool_dir, "/var/spool/cinemon-gd");
    assert_int_equal(u->fsync, 0);
    assert_int_equal(u->max_bytes, 64u << 20);
    assert_int_equal(u->min_free_bytes, 0);
    assert_int_equal(u->segment_bytes, 1u << 20);
    /* the agent's defaults, the spool next to the database */
    u = &c.forward.ups[1];
    assert_string_equal(u->token_file, "/etc/cinemon/nation.token");
    assert_int_equal(u->interval_ms, 30000);
    assert_int_equal(u->timeout_ms, 30000);
    assert_int_equal(u->backoff_base_ms, 1000);
    assert_int_equal(u->backoff_cap_ms, 300000);
    assert_int_equal(u->max_batch_bytes, 1u << 20);
    assert_int_equal(u->fsync, 1);
    assert_int_equal(u->max_bytes, 1ull << 30);
    assert_int_equal(u->min_free_bytes, 64ull << 20);
    assert_int_equal(u->segment_bytes, 4u << 20);
    snprintf(want, sizeof want, "%s/data/chain.db.forward-nation", g_dir);
    assert_string_equal(u->spool_dir, want);
    co_config_free(&c);
    cleanup();
}

static void test_no_upstream_and_postgresql_default(void **st)
{
    (void)st;
    co_config c;
    char err[512] = "";
    const char *p = write_ini("[collector]\nlisten = 127.0.0.1:9\n");
    assert_int_equal(co_config_load(&c, p, err, sizeof err), 0);
    assert_int_equal(c.forward.n, 0);
    co_config_free(&c);
    cleanup();
    /* no database file: the spool goes next to the ini file */
    p = write_ini("[store]\nbackend = postgresql\nconninfo = host=/tmp dbname=x\n" UP
                  "agent_id = a1\n");
    assert_int_equal(co_config_load(&c, p, err, sizeof err), 0);
    char want[300];
    snprintf(want, sizeof want, "%s/forward-nation", g_dir);
    assert_string_equal(c.forward.ups[0].spool_dir, want);
    co_config_free(&c);
    cleanup();
}

static void test_errors(void **st)
{
    (void)st;
    expect_error("[upstream \"nation\"]\ntoken_file = t\nagent_id = a\n", 1,
                 "key 'url' is required");
    expect_error("[upstream \"nation\"]\nurl = http://x\nagent_id = a\n", 1,
                 "key 'token_file' is required");
    expect_error(UP, 1, "key 'agent_id' is required");
    expect_error("[upstream \"nation\"]\ntoken_file = t\nagent_id = a\nurl = ftp://x\n", 4,
                 "must be an http:// or https:// URL");
    expect_error(UP "agent_id = has space\n", 4, "key 'agent_id'");
    expect_error(UP "agent_id = a\nmode = sometimes\n", 5, "mode");
    expect_error(UP "agent_id = a\ninterval = 10ms\n", 5, "interval");
    expect_error(UP "agent_id = a\nfsync = sometimes\n", 5, "fsync");
    expect_error(UP "agent_id = a\nmax_batch_bytes = 1k\n", 5, "max_batch_bytes");
    expect_error(UP "agent_id = a\nbackoff_base = 10s\nbackoff_cap = 1s\n", 6,
                 "must not be below backoff_base");
    expect_error(UP "agent_id = a\nmax_bytes = 1M\nsegment_bytes = 1M\n", 6,
                 "at most half of max_bytes");
    expect_error(UP "agent_id = a\nspool_dir =\n", 5, "spool_dir");
    expect_error(UP "agent_id = a\ncolour = blue\n", 5, "unknown key 'colour'");
    expect_error(UP "agent_id = a\n" UP "agent_id = b\n", 5, "repeated (first at line 1)");
    expect_error("[upstream]\nurl = http://x\n", 1, "needs a name");
    expect_error("[upstream \"a/b\"]\nurl = http://x\n", 1, "needs a name");
    expect_error(UP "agent_id = a\nspool_dir = /tmp/s\n[upstream \"two\"]\nurl = http://y\n"
                    "token_file = t\nagent_id = b\nspool_dir = /tmp/s\n",
                 6, "is also [upstream \"nation\"]'s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_section),
        cmocka_unit_test(test_no_upstream_and_postgresql_default),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

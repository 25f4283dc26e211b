/* test_collector_config.c — collector.ini: values, defaults, file:line errors, listen
 * addresses, sizes, the store path resolved against the ini file's folder, and the [store]
 * backend (sqlite path / postgresql conninfo, whose password no message shows). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include <sys/stat.h>
#include <unistd.h>

#include "collector/config.h"
#include "collector/store.h"

static char g_dir[128];
static char g_path[256];

/* Write text to <fresh temp dir>/collector.ini; the path is in g_path. */
static const char *write_ini(const char *text)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/cinemon-test-coconf-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_path, sizeof g_path, "%s/collector.ini", g_dir);
    FILE *f = fopen(g_path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    fclose(f);
    return g_path;
}

static void cleanup(void)
{
    unlink(g_path);
    rmdir(g_dir);
}

static void expect_error(const char *text, const char *want)
{
    co_config c;
    char err[512] = "";
    const char *p = write_ini(text);
    assert_int_equal(co_config_load(&c, p, err, sizeof err), -1);
    co_config_free(&c);
    cleanup();
    if (!strstr(err, want)) fail_msg("error '%s' does not contain '%s'", err, want);
    /* Every error names the file. */
    if (!strstr(err, "collector.ini")) fail_msg("error '%s' does not name the file", err);
}

static void test_valid_file(void **st)
{
    (void)st;
    co_config c;
    char err[512] = "";
    const char *p = write_ini("# comment\n"
                              "[collector]\n"
                              "listen = 0.0.0.0:9090\n"
                              "threads = 8\n"
                              "max_body_bytes = 4M\n"
                              "max_json_depth = 12\n"
                              "timeout = 45s\n"
                              "max_connections = 200\n"
                              "log_level = debug\n"
                              "[store]\n"
                              "backend = sqlite\n"
                              "path = /var/lib/cinemon/c.db\n"
                              "head_max_points = 250000\n"
                              "head_max_age = 90s\n");
    assert_int_equal(co_config_load(&c, p, err, sizeof err), 0);
    assert_string_equal(c.listen, "0.0.0.0:9090");
    assert_int_equal(c.addr.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&c.addr)->sin_port), 9090);
    assert_int_equal(c.threads, 8);
    assert_int_equal(c.max_body_bytes, 4u << 20);
    assert_int_equal(c.max_json_depth, 12);
    assert_int_equal(c.timeout_ms, 45000);
    assert_int_equal(c.max_connections, 200);
    assert_int_equal(c.log_level, CM_LOG_DEBUG);
    assert_int_equal(c.backend, CO_BACKEND_SQLITE);
    assert_string_equal(c.store_path, "/var/lib/cinemon/c.db");
    assert_int_equal(c.head_max_points, 250000);
    assert_int_equal(c.head_max_age_ms, 90000);
    co_config_free(&c);
    cleanup();
}

static void test_defaults(void **st)
{
    (void)st;
    co_config c;
    char err[512] = "", want[300];
    const char *p = write_ini("[collector]\n");
    assert_int_equal(co_config_load(&c, p, err, sizeof err), 0);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_int_equal(ntohs(((struct sockaddr_in *)&c.addr)->sin_port), 8080);
    assert_int_equal(c.threads, 4);
    assert_int_equal(c.max_body_bytes, 16u << 20);
    assert_int_equal(c.max_json_depth, 8);
    assert_int_equal(c.log_level, CM_LOG_INFO);
    snprintf(want, sizeof want, "%s/cinemon.db", g_dir); /* ./cinemon.db next to the ini */
    assert_string_equal(c.store_path, want);
    assert_int_equal(c.head_max_points, 0); /* the backend's defaults */
    assert_int_equal(c.head_max_age_ms, 0);
    co_config_free(&c);
    cleanup();
}

static void test_malformed_line(void **st)
{
    (void)st;
    expect_error("[collector]\nthreads = 4\nthis is not a key value pair\n", "collector.ini:3:");
}

static void test_unknown_key(void **st)
{
    (void)st;
    expect_error("[collector]\nthreads = 4\nlisten_adress = 1.2.3.4:80\n",
                 "collector.ini:3: unknown key");
    expect_error("[collector]\n[store]\npath = x.db\nbackend = sqlite\nsize = 3\n",
                 "collector.ini:5: unknown key 'size' in [store]");
}

static void test_unknown_section(void **st)
{
    (void)st;
    expect_error("[collector]\nthreads = 2\n[colector]\n", "collector.ini:3: unknown section");
    expect_error("[store \"x\"]\n", "collector.ini:1: unknown section");
}

/* [rules], [notify] and [webhook "name"] sections. */
static void test_rules_and_webhooks(void **st)
{
    (void)st;
    co_config c;
    char err[512] = "";
    const char *p = write_ini("[rules]\ndir = myrules\noverrides = /etc/ov.json\ntick = 2s\n"
                              "[notify]\nmax_age = 1h\n"
                              "[webhook \"ops\"]\nurl = https://hooks.example.net/x?token=abc\n"
                              "min_severity = critical\n");
    assert_int_equal(co_config_load(&c, p, err, sizeof err), 0);
    char want[300];
    snprintf(want, sizeof want, "%s/myrules", g_dir);
    assert_string_equal(c.rules_dir, want);
    assert_string_equal(c.overrides_path, "/etc/ov.json");
    assert_int_equal(c.tick_ms, 2000);
    assert_int_equal(c.compliance_interval_ms, 600000); /* default 10 min */
    assert_true(c.rules_enabled);
    assert_int_equal(c.notify.ntargets, 1);
    assert_string_equal(c.notify.targets[0].name, "ops");
    assert_int_equal(c.notify.max_age_ms, 3600000);
    co_config_free(&c);
    cleanup();
    p = write_ini("[rules]\nenabled = false\n");
    assert_int_equal(co_config_load(&c, p, err, sizeof err), 0);
    assert_false(c.rules_enabled);
    assert_int_equal(c.notify.ntargets, 0);
    co_config_free(&c);
    cleanup();
    expect_error("[webhook \"ops\"]\nmin_severity = critical\n", "collector.ini:1");
    expect_error("[rules]\ntick = forever\n", "collector.ini:2");
    expect_error("[rules]\ncompliance_interval = 10ms\n", "collector.ini:2");
    p = write_ini("[rules]\ncompliance_interval = 30s\n");
    assert_int_equal(co_config_load(&c, p, err, sizeof err), 0);
    assert_int_equal(c.compliance_interval_ms, 30000);
    co_config_free(&c);
    cleanup();
    expect_error("[rules]\nfolder = x\n", "collector.ini:2");
}

static void test_bad_values(void **st)
{
    (void)st;
    expect_error("[collector]\nlisten = 127.0.0.1\n", "collector.ini:2: key 'listen'");
    expect_error("[collector]\n\nlisten = 300.1.1.1:80\n", "collector.ini:3: key 'listen'");
    expect_error("[collector]\nlisten = 127.0.0.1:70000\n", "collector.ini:2:");
    expect_error("[collector]\nlisten = ::1:8080\n", "collector.ini:2:");
    expect_error("[collector]\nlisten = [::1:8080\n", "collector.ini:2:");
    expect_error("[collector]\nthreads = 0\n", "collector.ini:2: key 'threads'");
    expect_error("[collector]\nthreads = many\n", "collector.ini:2: key 'threads'");
    expect_error("[collector]\nmax_body_bytes = 16Q\n", "collector.ini:2: key 'max_body_bytes'");
    expect_error("[collector]\nmax_body_bytes = 12\n", "collector.ini:2: key 'max_body_bytes'");
    expect_error("[collector]\nlog_level = loud\n", "collector.ini:2: key 'log_level'");
    expect_error("[store]\nbackend = mongodb\n", "collector.ini:2: key 'backend'");
    expect_error("[store]\npath =\n", "collector.ini:2: key 'path'");
    expect_error("[store]\nhead_max_points = 10\n", "collector.ini:2: key 'head_max_points'");
    expect_error("[store]\n\nhead_max_age = 2h\n", "collector.ini:3: key 'head_max_age'");
    expect_error("[store]\nhead_max_age = soon\n", "collector.ini:2: key 'head_max_age'");
}

static void test_listen_forms(void **st)
{
    (void)st;
    struct sockaddr_storage ss;
    socklen_t len;
    char err[256];
    assert_int_equal(co_config_parse_listen("[::1]:8080", &ss, &len, err, sizeof err), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 8080);
    struct in6_addr lo = IN6ADDR_LOOPBACK_INIT;
    assert_memory_equal(&((struct sockaddr_in6 *)&ss)->sin6_addr, &lo, sizeof lo);

    assert_int_equal(co_config_parse_listen(":81", &ss, &len, err, sizeof err), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(co_config_parse_listen("localhost:0", &ss, &len, err, sizeof err), 0);
    assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));

    assert_int_equal(co_config_parse_listen("example.com:80", &ss, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "example.com"));
    assert_int_equal(co_config_parse_listen("1.2.3.4:", &ss, &len, err, sizeof err), -1);
    assert_int_equal(co_config_parse_listen("1.2.3.4:8x", &ss, &len, err, sizeof err), -1);
    assert_int_equal(co_config_parse_listen("[]:80", &ss, &len, err, sizeof err), -1);
    assert_int_equal(co_config_parse_listen("[::1]8080", &ss, &len, err, sizeof err), -1);
}

static void test_sizes(void **st)
{
    (void)st;
    uint64_t v;
    assert_int_equal(cm_parse_size("1024", &v), 0);
    assert_int_equal(v, 1024);
    assert_int_equal(cm_parse_size("64k", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(cm_parse_size("16MiB", &v), 0);
    assert_int_equal(v, 16u << 20);
    assert_int_equal(cm_parse_size("1G", &v), 0);
    assert_int_equal(v, 1u << 30);
    assert_int_equal(cm_parse_size("", &v), -1);
    assert_int_equal(cm_parse_size("-1", &v), -1);
    assert_int_equal(cm_parse_size("1T", &v), -1);
    assert_int_equal(cm_parse_size("99999999999999999999", &v), -1);
}

static void test_relative_path(void **st)
{
    (void)st;
    char *p = co_config_resolve_path("/etc/cinemon/collector.ini", "data/c.db");
    assert_string_equal(p, "/etc/cinemon/data/c.db");
    free(p);
    p = co_config_resolve_path("/etc/cinemon/collector.ini", "./c.db");
    assert_string_equal(p, "/etc/cinemon/c.db");
    free(p);
    p = co_config_resolve_path("/etc/cinemon/collector.ini", "/srv/c.db");
    assert_string_equal(p, "/srv/c.db");
    free(p);
    p = co_config_resolve_path("collector.ini", "./c.db");
    assert_string_equal(p, "./c.db");
    free(p);
    p = co_config_resolve_path("conf/collector.ini", "../db/c.db");
    assert_string_equal(p, "conf/../db/c.db");
    free(p);
    p = co_config_resolve_path("/collector.ini", "c.db");
    assert_string_equal(p, "/c.db");
    free(p);

    co_config c;
    char err[512] = "", want[300];
    const char *path = write_ini("[store]\npath = sub/x.db\n");
    assert_int_equal(co_config_load(&c, path, err, sizeof err), 0);
    snprintf(want, sizeof want, "%s/sub/x.db", g_dir);
    assert_string_equal(c.store_path, want);
    co_config_free(&c);
    cleanup();
}

/* Load text as collector.ini, which must be valid; the caller frees c and calls cleanup(). */
static void load_ok(co_config *c, const char *text)
{
    char err[512] = "";
    const char *p = write_ini(text);
    if (co_config_load(c, p, err, sizeof err) != 0) fail_msg("%s", err);
}

/* The error of an invalid text, which must name the file and line, contain want and never
 * contain secret. */
static void expect_store_error(const char *text, const char *want, const char *secret)
{
    co_config c;
    char err[512] = "";
    const char *p = write_ini(text);
    assert_int_equal(co_config_load(&c, p, err, sizeof err), -1);
    co_config_free(&c);
    cleanup();
    if (!strstr(err, want)) fail_msg("error '%s' does not contain '%s'", err, want);
    if (secret && strstr(err, secret)) fail_msg("error '%s' shows the password", err);
}

/* [store] backend = postgresql: conninfo (key=value or URI) kept as written, the description
 * for messages without the password; the SQLite default unchanged. */
static void test_store_backends(void **st)
{
    (void)st;
    co_config c;
    char desc[256];
    load_ok(&c, "[store]\nbackend = postgresql\n"
                "conninfo = host=db.example.net port=5433 dbname=cinemon user=cinemon "
                "password=Sekrit-1 sslmode=require\n");
    assert_int_equal(c.backend, CO_BACKEND_POSTGRESQL);
    assert_string_equal(c.conninfo, "host=db.example.net port=5433 dbname=cinemon user=cinemon "
                                    "password=Sekrit-1 sslmode=require");
    assert_null(c.store_path);
    co_config_store_desc(&c, desc, sizeof desc);
    assert_string_equal(desc,
                        "postgresql host=db.example.net port=5433 dbname=cinemon user=cinemon");
    co_config_free(&c);
    cleanup();

    load_ok(&c,
            "[store]\nconninfo = postgresql://cinemon:Sekrit-2@db:5432/cinemon?sslmode=require\n"
            "backend = postgresql\n");
    assert_int_equal(c.backend, CO_BACKEND_POSTGRESQL);
    co_config_store_desc(&c, desc, sizeof desc);
    assert_string_equal(desc, "postgresql host=db port=5432 dbname=cinemon user=cinemon");
    co_config_free(&c);
    cleanup();

    /* a dbname that is itself a connection string is not shown either */
    load_ok(&c, "[store]\nbackend = postgresql\nconninfo = dbname='host=h password=Sekrit-3'\n");
    co_config_store_desc(&c, desc, sizeof desc);
    assert_null(strstr(desc, "Sekrit-3"));
    assert_string_equal(desc, "postgresql dbname=(connection string)");
    co_config_free(&c);
    cleanup();

    load_ok(&c, "[store]\nbackend = sqlite\npath = /var/lib/cinemon/c.db\n");
    assert_int_equal(c.backend, CO_BACKEND_SQLITE);
    assert_null(c.conninfo);
    co_config_store_desc(&c, desc, sizeof desc);
    assert_string_equal(desc, "sqlite /var/lib/cinemon/c.db");
    co_config_free(&c);
    cleanup();
}

/* [store] errors name file:line and never show a password. */
static void test_store_errors(void **st)
{
    (void)st;
    expect_store_error("[store]\nbackend = postgresql\n",
                       "collector.ini:2: [store]: backend = postgresql needs conninfo", NULL);
    expect_store_error("[store]\nbackend = postgresql\nconninfo =\n", "collector.ini:3:", NULL);
    expect_store_error("[store]\nbackend = postgresql\nconninfo = dbname=x\npath = x.db\n",
                       "collector.ini:4: key 'path' in [store]: only for backend = sqlite", NULL);
    expect_store_error("[store]\nconninfo = dbname=x\n",
                       "collector.ini:2: key 'conninfo' in [store]: only for backend = postgresql",
                       NULL);
    expect_store_error("[store]\nbackend = sqlite\n\nconninfo = dbname=x\n",
                       "collector.ini:4: key 'conninfo'", NULL);
    expect_store_error("[store]\nbackend = postgresql\nconninfo = password=Sekrit-4 nosuch=1\n",
                       "collector.ini:3: key 'conninfo' in [store]: not a libpq connection string",
                       "Sekrit-4");
    expect_store_error("[store]\nbackend = postgresql\nconninfo = password='Sekrit-5\n",
                       "collector.ini:3: key 'conninfo'", "Sekrit-5");
    expect_store_error("[store]\nbackend = postgresql\n"
                       "conninfo = postgresql://u:Sekrit-6@[db:5432/x\n",
                       "collector.ini:3: key 'conninfo'", "Sekrit-6");
    expect_store_error("[store]\nbackend = postgres\n", "collector.ini:2: key 'backend'", NULL);
}

/* co_config_open_store opens the configured backend: the SQLite file at path; a PostgreSQL
 * server that is not there is an error without the password. */
static void test_open_store(void **st)
{
    (void)st;
    co_config c;
    char err[512] = "", want[300];
    load_ok(&c, "[store]\npath = s.db\n");
    co_store *s = NULL;
    if (co_config_open_store(&c, &s, err, sizeof err) != 0) fail_msg("%s", err);
    assert_string_equal(co_store_backend(s), "sqlite");
    co_store_close(s);
    snprintf(want, sizeof want, "%s/s.db", g_dir);
    assert_int_equal(access(want, F_OK), 0);
    co_config_free(&c);
    char extra[320];
    snprintf(extra, sizeof extra, "%s-wal", want);
    unlink(extra);
    snprintf(extra, sizeof extra, "%s-shm", want);
    unlink(extra);
    unlink(want);
    cleanup();

    load_ok(&c, "[store]\nbackend = postgresql\n"
                "conninfo = host=127.0.0.1 port=1 dbname=x user=x password=Sekrit-7 "
                "connect_timeout=5\n");
    s = NULL;
    assert_int_equal(co_config_open_store(&c, &s, err, sizeof err), -1);
    assert_null(s);
    assert_null(strstr(err, "Sekrit-7"));
    co_config_free(&c);
    cleanup();
}

/* [retention]: defaults, units (d, w, y, forever, 0), and errors naming file:line. */
static void test_retention(void **st)
{
    (void)st;
    const int64_t day = 86400000LL;
    co_config c;
    char err[512] = "";
    const char *p = write_ini("[collector]\n");
    assert_int_equal(co_config_load(&c, p, err, sizeof err), 0);
    assert_int_equal(c.retention.raw_ms, 90 * day);
    assert_int_equal(c.retention.rollup_1m_ms, 180 * day);
    assert_int_equal(c.retention.rollup_1h_ms, 3650 * day);
    assert_int_equal(c.retention.audit_ms, 365 * day);
    assert_int_equal(c.retention.interval_ms, 3600000);
    co_config_free(&c);
    cleanup();

    p = write_ini("[retention]\nraw = 30d\nrollup_1m = 26w\nrollup_1h = forever\naudit = 2y\n"
                  "interval = 10m\n");
    if (co_config_load(&c, p, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(c.retention.raw_ms, 30 * day);
    assert_int_equal(c.retention.rollup_1m_ms, 182 * day);
    assert_int_equal(c.retention.rollup_1h_ms, 0);
    assert_int_equal(c.retention.audit_ms, 730 * day);
    assert_int_equal(c.retention.interval_ms, 600000);
    co_config_free(&c);
    cleanup();

    p = write_ini("[retention]\nraw = 0\nrollup_1m = forever\nrollup_1h = 0\naudit = 0\n");
    if (co_config_load(&c, p, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(c.retention.raw_ms + c.retention.rollup_1m_ms + c.retention.rollup_1h_ms +
                         c.retention.audit_ms,
                     0);
    co_config_free(&c);
    cleanup();

    /* a roll-up kept shorter than the data it summarises */
    expect_error("[retention]\nraw = 90d\nrollup_1m = 7d\n", "collector.ini:3:");
    expect_error("[retention]\nraw = 90d\nrollup_1m = 7d\n", "rollup_1m (7d)");
    expect_error("[retention]\nraw = 1y\n", "collector.ini:2: [retention]: rollup_1m (180d)");
    expect_error("[retention]\nraw = forever\n", "would be kept shorter than raw (forever)");
    expect_error("[retention]\nrollup_1m = 400d\n\nrollup_1h = 1y\n", "collector.ini:4:");
    /* malformed or too short */
    expect_error("[retention]\nraw = 90\n", "collector.ini:2: key 'raw' in [retention]: must be");
    expect_error("[retention]\naudit = soon\n", "collector.ini:2: key 'audit'");
    expect_error("[retention]\nrollup_1h = -5d\n", "collector.ini:2:");
    expect_error("[retention]\nraw = 99999999y\n", "collector.ini:2:");
    expect_error("[retention]\ninterval = 1s\n", "collector.ini:2: key 'interval'");
    expect_error("[retention]\nsamples = 30d\n", "collector.ini:2: unknown key 'samples'");
}

/* [access]: defaults, values, ranges and errors naming file:line. */
static void test_access(void **st)
{
    (void)st;
    co_config c;
    char err[512] = "";
    const char *p = write_ini("[collector]\n");
    assert_int_equal(co_config_load(&c, p, err, sizeof err), 0);
    assert_false(c.anonymous_read);
    assert_false(c.secure_cookie);
    assert_int_equal(c.session_ttl_ms, 12 * 3600 * 1000);
    assert_int_equal(c.login_max_failures, 5);
    assert_int_equal(c.login_lockout_ms, 5 * 60 * 1000);
    co_config_free(&c);
    cleanup();

    p = write_ini("[access]\nanonymous_read = true\nsession_ttl = 30m\nsecure_cookie = yes\n"
                  "login_max_failures = 3\nlockout = 15m\n");
    if (co_config_load(&c, p, err, sizeof err) != 0) fail_msg("%s", err);
    assert_true(c.anonymous_read);
    assert_true(c.secure_cookie);
    assert_int_equal(c.session_ttl_ms, 30 * 60 * 1000);
    assert_int_equal(c.login_max_failures, 3);
    assert_int_equal(c.login_lockout_ms, 15 * 60 * 1000);
    co_config_free(&c);
    cleanup();

    expect_error("[access]\nsession_ttl = 10s\n", "collector.ini:2: key 'session_ttl'");
    expect_error("[access]\nsession_ttl = 1000d\n", "collector.ini:2: key 'session_ttl'");
    expect_error("[access]\nanonymous_read = maybe\n", "collector.ini:2: key 'anonymous_read'");
    expect_error("[access]\nlogin_max_failures = 0\n", "collector.ini:2: key 'login_max_failures'");
    expect_error("[access]\n\nlockout = 2d\n", "collector.ini:3: key 'lockout'");
    expect_error("[access]\npassword = x\n", "collector.ini:2: unknown key 'password'");
    expect_error("[access \"x\"]\n", "collector.ini:1: unknown section");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_access),
        cmocka_unit_test(test_valid_file),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_malformed_line),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_unknown_section),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_rules_and_webhooks),
        cmocka_unit_test(test_listen_forms),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_relative_path),
        cmocka_unit_test(test_store_backends),
        cmocka_unit_test(test_store_errors),
        cmocka_unit_test(test_open_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

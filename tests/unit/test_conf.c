/* test_conf.c — the INI loader and the agent's configuration: values and file:line errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/config.h"
#include "conf.h"
#include "timeutil.h"

static char g_path[256];

/* Write text to a fresh temp file; its path is in g_path. */
static const char *write_tmp(const char *text)
{
    snprintf(g_path, sizeof g_path, "/tmp/cinemon-test-conf-XXXXXX.ini");
    int fd = mkstemps(g_path, 4);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return g_path;
}

/* Load an agent config expected to fail; the error must contain `want`. */
static void expect_agent_error(const char *text, const char *want)
{
    ag_config c;
    char err[512] = "";
    const char *p = write_tmp(text);
    assert_int_equal(ag_config_load(&c, p, err, sizeof err), -1);
    unlink(p);
    if (!strstr(err, want)) fail_msg("error '%s' does not contain '%s'", err, want);
}

static void test_durations(void **st)
{
    (void)st;
    int64_t v;
    assert_int_equal(cm_parse_duration_ms("250ms", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(cm_parse_duration_ms("30s", &v), 0);
    assert_int_equal(v, 30000);
    assert_int_equal(cm_parse_duration_ms("5m", &v), 0);
    assert_int_equal(v, 300000);
    assert_int_equal(cm_parse_duration_ms("1.5h", &v), 0);
    assert_int_equal(v, 5400000);
    assert_int_equal(cm_parse_duration_ms("12", &v), 0);
    assert_int_equal(v, 12000);
    assert_int_equal(cm_parse_duration_ms("-1s", &v), -1);
    assert_int_equal(cm_parse_duration_ms("10 parsecs", &v), -1);
    assert_int_equal(cm_parse_duration_ms("", &v), -1);
}

static void test_typed_getters(void **st)
{
    (void)st;
    const char *p = write_tmp("; comment\n[main]\nn = 42\nflag = yes\nbig = 99999\n"
                              "d = 2m\nmode = b\n\n[dev \"a/b\"]\nx = 1\n");
    cm_conf c;
    char err[512];
    assert_int_equal(cm_conf_load(&c, p, err, sizeof err), 0);
    cm_conf_section *m = cm_conf_find(&c, "main", NULL);
    assert_non_null(m);
    int64_t n = 0;
    assert_int_equal(cm_conf_int(&c, m, "n", 0, 100, &n, err, sizeof err), 1);
    assert_int_equal(n, 42);
    bool b = false;
    assert_int_equal(cm_conf_bool(&c, m, "flag", &b, err, sizeof err), 1);
    assert_true(b);
    assert_int_equal(cm_conf_int(&c, m, "big", 0, 100, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, ":5: key 'big' in [main]: 99999 is out of range 0..100"));
    int64_t d = 0;
    assert_int_equal(cm_conf_duration(&c, m, "d", 0, 3600000, &d, err, sizeof err), 1);
    assert_int_equal(d, 120000);
    static const char *const modes[] = {"a", "b", NULL};
    int mode = -1;
    assert_int_equal(cm_conf_enum(&c, m, "mode", modes, &mode, err, sizeof err), 1);
    assert_int_equal(mode, 1);
    assert_int_equal(cm_conf_int(&c, m, "absent", 0, 1, &n, err, sizeof err), 0);
    cm_conf_section *dev = cm_conf_find(&c, "dev", "a/b");
    assert_non_null(dev);
    assert_string_equal(dev->arg, "a/b");
    assert_int_equal(dev->line, 9);
    /* x was never asked for */
    assert_int_equal(cm_conf_check_unused(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, ":10: unknown key 'x' in [dev \"a/b\"]"));
    cm_conf_free(&c);
    unlink(p);
}

static void test_malformed_lines(void **st)
{
    (void)st;
    cm_conf c;
    char err[512];
    const char *p = write_tmp("[agent]\nsite = X\nthis line has no equals sign\n");
    assert_int_equal(cm_conf_load(&c, p, err, sizeof err), -1);
    assert_non_null(strstr(err, ":3: malformed line"));
    cm_conf_free(&c);
    p = write_tmp("[agent]\nsite = X\nsite = Y\n");
    assert_int_equal(cm_conf_load(&c, p, err, sizeof err), -1);
    assert_non_null(strstr(err, ":3: key 'site' repeated (first at line 2)"));
    cm_conf_free(&c);
    p = write_tmp("[device \"a\"\nx=1\n");
    assert_int_equal(cm_conf_load(&c, p, err, sizeof err), -1);
    assert_non_null(strstr(err, ":1:"));
    cm_conf_free(&c);
    p = write_tmp("[device hall1]\n");
    assert_int_equal(cm_conf_load(&c, p, err, sizeof err), -1);
    assert_non_null(strstr(err, ":1: malformed section header"));
    cm_conf_free(&c);
    p = write_tmp("orphan = 1\n[agent]\n");
    assert_int_equal(cm_conf_load(&c, p, err, sizeof err), -1);
    assert_non_null(strstr(err, ":1: key 'orphan' outside of any section"));
    cm_conf_free(&c);
    unlink(p);
}

static void test_agent_config_ok(void **st)
{
    (void)st;
    const char *p = write_tmp("[agent]\n"
                              "site = CN-1101-01\n"
                              "collector_url = http://127.0.0.1:8080\n"
                              "token_file = token\n"
                              "interval = 10s\n"
                              "timeout = 800ms\n"
                              "\n"
                              "[device \"hall1/projector\"]\n"
                              "kind = projector\n"
                              "profile = christie-cp-series2\n"
                              "address = 127.0.0.1\n"
                              "port = 16100\n"
                              "community = secret ; inline comment\n"
                              "\n"
                              "[device \"hall2/ups\"]\n"
                              "kind = ups\n"
                              "address = ::1\n"
                              "snmp_version = 1\n"
                              "interval = 1m\n"
                              "retries = 3\n"
                              "[device \"hall3/projector\"]\n"
                              "protocol = pjlink\n"
                              "address = 127.0.0.1\n"
                              "password = JBMIAProjectorLink\n"
                              "[device \"hall3/sensor\"]\n"
                              "protocol = http\n"
                              "tls = yes\n"
                              "address = sensor.local\n"
                              "[device \"hall4/projector\"]\n"
                              "snmp_version = 3\n"
                              "v3_user = cinemon\n"
                              "v3_auth_protocol = SHA-256\n"
                              "v3_auth_password = authpass123\n"
                              "v3_priv_password = privpass123\n"
                              "address = 127.0.0.1\n");
    ag_config c;
    char err[512] = "";
    if (ag_config_load(&c, p, err, sizeof err) != 0) fail_msg("%s", err);
    assert_string_equal(c.site, "CN-1101-01");
    assert_string_equal(c.agent_id, "CN-1101-01");
    assert_non_null(strstr(c.token_file, "/tmp/token"));
    assert_int_equal(c.ndevices, 5);
    assert_string_equal(c.devices[2].protocol, "pjlink");
    assert_int_equal(c.devices[2].port, 4352);
    assert_string_equal(c.devices[2].password, "JBMIAProjectorLink");
    assert_int_equal(c.devices[3].port, 443);
    assert_int_equal(c.devices[3].tls, 1);
    assert_int_equal(c.devices[3].tls_verify, 1);
    assert_int_equal(c.devices[4].snmp_version, 3);
    assert_int_equal(c.devices[4].v3_level, 2);
    assert_string_equal(c.devices[4].v3_auth_protocol, "SHA-256");
    assert_string_equal(c.devices[4].v3_priv_protocol, "AES");
    assert_string_equal(c.devices[0].protocol, "snmp");
    ag_device *d = &c.devices[0];
    assert_string_equal(d->id, "hall1/projector");
    assert_string_equal(d->screen, "hall1");
    assert_string_equal(d->kind, "projector");
    assert_string_equal(d->profile, "christie-cp-series2");
    assert_string_equal(d->community, "secret");
    assert_int_equal(d->port, 16100);
    assert_int_equal(d->snmp_version, 2);
    assert_int_equal(d->interval_ms, 10000);
    assert_int_equal(d->timeout_ms, 800);
    d = &c.devices[1];
    assert_null(d->profile);
    assert_int_equal(d->port, 161);
    assert_int_equal(d->snmp_version, 1);
    assert_int_equal(d->interval_ms, 60000);
    assert_int_equal(d->retries, 3);
    assert_string_equal(d->community, "public");
    ag_config_free(&c);
    unlink(p);
}

static void test_agent_config_errors(void **st)
{
    (void)st;
    expect_agent_error("[agent]\nsite = X\n[device \"h1/p\"]\nkind = projector\n", ":3: [device \"h1/p\"] needs 'address'");
    expect_agent_error("[agent]\nsite = X\n[device \"h1/p\"]\naddress = a\nkind = toaster\n",
                       ":5: key 'kind' in [device \"h1/p\"]: expected one of:");
    expect_agent_error("[agent]\nsite = X\nbogus = 1\n", ":3: unknown key 'bogus' in [agent]");
    expect_agent_error("[agent]\nsite = X\n[device \"h1/p\"]\naddress = a\nport = 70000\n",
                       ":5: key 'port' in [device \"h1/p\"]: 70000 is out of range 1..65535");
    expect_agent_error("[agent]\nsite = X\n[device \"h1/p\"]\naddress = a\ninterval = soon\n",
                       ":5: key 'interval'");
    expect_agent_error("[agent]\nsite = X\n[printer]\n", ":3: unknown section [printer]");
    expect_agent_error("[agent]\nid = a\n", ":1: [agent] needs 'site'");
    expect_agent_error("[agent]\nsite = X\ncollector_url = ftp://x\n", "collector_url must start");
    expect_agent_error("[agent]\nsite = X\n[device \"bad id!\"]\naddress = a\n", ":3: [device \"ID\"] needs an id");
    expect_agent_error("[agent]\nsite = X\n[device \"a\"]\naddress = a\n[device \"a\"]\naddress = b\n",
                       ":5: section [device \"a\"] repeated (first at line 3)");
    expect_agent_error("[device \"a\"]\naddress = a\n", "missing [agent] section");
    expect_agent_error("[agent]\nsite = X\n[device \"a\"]\naddress = a\nsnmp_version = 3\n",
                       ":3: [device \"a\"] with snmp_version 3 needs 'v3_user'");
    expect_agent_error("[agent]\nsite = X\n[device \"a\"]\naddress = a\nsnmp_version = 3\n"
                       "v3_user = u\nv3_level = authNoPriv\nv3_auth_password = short\n",
                       "v3_auth_password must have at least 8 characters");
    expect_agent_error("[agent]\nsite = X\n[device \"a\"]\naddress = a\nprotocol = text\n",
                       ":3: [device \"a\"] needs 'profile' (or 'port') for protocol text");
    expect_agent_error("[agent]\nsite = X\n[device \"a\"]\naddress = a\nprotocol = telnet\n",
                       ":5: key 'protocol' in [device \"a\"]: expected one of: snmp pjlink http text");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),           cmocka_unit_test(test_typed_getters),
        cmocka_unit_test(test_malformed_lines),     cmocka_unit_test(test_agent_config_ok),
        cmocka_unit_test(test_agent_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_traps.c — the SNMP trap receiver on a loopback port: v1 and v2c traps sent with
 * net-snmp's snmptrap, a wrong community, unknown senders and garbage datagrams; the [traps]
 * config section and the profiles' "traps" mapping. Runs with cwd = the repository root. */
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
#include <sys/socket.h>
#include <unistd.h>

#include "agent/config.h"
#include "agent/profile.h"
#include "agent/traps.h"

#define SNMPTRAP "/usr/bin/snmptrap"
#define MAX_EV 16

typedef struct ev {
    char device[64], severity[16], code[160], text[1024], source[32];
} ev;

static ev g_ev[MAX_EV];
static size_t g_nev;

static void on_event(void *ud, const cm_event *e)
{
    (void)ud;
    if (g_nev >= MAX_EV) return;
    ev *v = &g_ev[g_nev++];
    snprintf(v->device, sizeof v->device, "%s", e->device);
    snprintf(v->severity, sizeof v->severity, "%s", e->severity);
    snprintf(v->code, sizeof v->code, "%s", e->code);
    snprintf(v->text, sizeof v->text, "%s", e->text ? e->text : "");
    snprintf(v->source, sizeof v->source, "%s", e->source);
}

typedef struct fixture {
    uv_loop_t loop;
    uv_timer_t timer;
    ag_config cfg;
    ag_device dev[2];
    ag_profile_set profiles;
    ag_traps *traps;
    int port;
} fixture;

static void on_timer(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* Run the loop until the receiver has seen `datagrams` datagrams or 3 s passed. */
static void run_until(fixture *f, uint64_t datagrams)
{
    for (int i = 0; i < 300; i++) {
        ag_traps_stats st;
        ag_traps_stats_get(f->traps, &st);
        if (st.datagrams >= datagrams) return;
        uv_timer_start(&f->timer, on_timer, 10, 0);
        uv_run(&f->loop, UV_RUN_DEFAULT);
    }
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->timer);
    f->profiles.profiles = calloc(1, sizeof(ag_profile));
    char err[512] = "";
    if (ag_profile_load("profiles/christie-cp-series2.json", &f->profiles.profiles[0], err,
                        sizeof err) != 0)
        fail_msg("%s", err);
    f->profiles.nprofiles = 1;
    f->dev[0] = (ag_device){.id = "hall1/projector",
                            .protocol = "snmp",
                            .address = "127.0.0.1",
                            .profile = "christie-cp-series2"};
    f->dev[1] = (ag_device){.id = "hall2/projector",
                            .protocol = "snmp",
                            .address = "projector.example"}; /* a host name: never matched */
    f->cfg.devices = f->dev;
    f->cfg.ndevices = 2;
    f->cfg.traps_host = "127.0.0.1";
    f->cfg.traps_port = 0;
    f->cfg.traps_community = "public";
    g_nev = 0;
    if (ag_traps_open(&f->traps, &f->loop, &f->cfg, &f->profiles, on_event, NULL, err,
                      sizeof err) != 0)
        fail_msg("%s", err);
    f->port = ag_traps_port(f->traps);
    assert_true(f->port > 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ag_traps_close(f->traps);
    uv_close((uv_handle_t *)&f->timer, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    ag_profile_free(&f->profiles.profiles[0]);
    free(f->profiles.profiles);
    free(f);
    return 0;
}

static void snmptrap(const fixture *f, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "MIBS= MIBDIRS=/dev/null %s -M /dev/null %s >/dev/null 2>&1",
             SNMPTRAP, args);
    /* the port placeholder: every args string has exactly one %d */
    char full[1200];
    snprintf(full, sizeof full, cmd, f->port);
    assert_int_equal(system(full), 0);
}

/* Send raw bytes to the receiver from source address `from`. */
static void send_raw(const fixture *f, const char *from, const void *data, size_t len)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in src = {.sin_family = AF_INET};
    inet_pton(AF_INET, from, &src.sin_addr);
    assert_int_equal(bind(s, (struct sockaddr *)&src, sizeof src), 0);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    assert_int_equal(sendto(s, data, len, 0, (struct sockaddr *)&dst, sizeof dst), (ssize_t)len);
    close(s);
}

static int have_snmptrap(void)
{
    return access(SNMPTRAP, X_OK) == 0;
}

static void test_v2c_mapped(void **state)
{
    fixture *f = *state;
    if (!have_snmptrap()) skip();
    snmptrap(f, "-v 2c -c public 127.0.0.1:%d '' 1.3.6.1.4.1.25766.1.11.100.3.0.1");
    run_until(f, 1);
    assert_int_equal(g_nev, 1);
    assert_string_equal(g_ev[0].device, "hall1/projector");
    assert_string_equal(g_ev[0].code, "fan");
    assert_string_equal(g_ev[0].severity, "critical");
    assert_string_equal(g_ev[0].source, "snmp-trap");
    assert_string_equal(g_ev[0].text, "Fan failure");
}

static void test_v1_enterprise_specific(void **state)
{
    fixture *f = *state;
    if (!have_snmptrap()) skip();
    snmptrap(f, "-v 1 -c public 127.0.0.1:%d 1.3.6.1.4.1.25766.1.11.100.3 127.0.0.1 6 3 ''");
    run_until(f, 1);
    assert_int_equal(g_nev, 1);
    assert_string_equal(g_ev[0].code, "temperature");
    assert_string_equal(g_ev[0].severity, "critical");
    snmptrap(f, "-v 1 -c public 127.0.0.1:%d 1.3.6.1.4.1.25766.1.11.100.3 127.0.0.1 6 1 ''");
    run_until(f, 2);
    assert_int_equal(g_nev, 2);
    assert_string_equal(g_ev[1].code, "fan");
}

static void test_v1_generic(void **state)
{
    fixture *f = *state;
    if (!have_snmptrap()) skip();
    /* coldStart(0) → 1.3.6.1.6.3.1.1.5.1, unmapped → info with the OID as code */
    snmptrap(f, "-v 1 -c public 127.0.0.1:%d 1.3.6.1.4.1.8072 127.0.0.1 0 0 ''");
    run_until(f, 1);
    assert_int_equal(g_nev, 1);
    assert_string_equal(g_ev[0].code, "1.3.6.1.6.3.1.1.5.1");
    assert_string_equal(g_ev[0].severity, "info");
}

static void test_v2c_unmapped(void **state)
{
    fixture *f = *state;
    if (!have_snmptrap()) skip();
    snmptrap(f, "-v 2c -c public 127.0.0.1:%d '' 1.3.6.1.4.1.9999.1.2 1.3.6.1.4.1.9999.1.3.0 i 42");
    run_until(f, 1);
    assert_int_equal(g_nev, 1);
    assert_string_equal(g_ev[0].code, "1.3.6.1.4.1.9999.1.2");
    assert_string_equal(g_ev[0].severity, "info");
    assert_non_null(strstr(g_ev[0].text, "1.3.6.1.4.1.9999.1.2"));
    assert_non_null(strstr(g_ev[0].text, "42"));
}

static void test_wrong_community(void **state)
{
    fixture *f = *state;
    if (!have_snmptrap()) skip();
    snmptrap(f, "-v 2c -c private 127.0.0.1:%d '' 1.3.6.1.4.1.25766.1.11.100.3.0.1");
    snmptrap(f, "-v 1 -c publi 127.0.0.1:%d 1.3.6.1.4.1.25766.1.11.100.3 127.0.0.1 6 1 ''");
    run_until(f, 2);
    ag_traps_stats st;
    ag_traps_stats_get(f->traps, &st);
    assert_int_equal(st.bad_community, 2);
    assert_int_equal(st.events, 0);
    assert_int_equal(g_nev, 0);
}

static void test_inform_refused(void **state)
{
    fixture *f = *state;
    if (!have_snmptrap()) skip();
    /* snmpinform waits for an answer that never comes: 1 try, short timeout, fails */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "MIBS= %s -Ci -t 0.2 -r 0 -M /dev/null -v 2c -c public 127.0.0.1:%d '' "
             "1.3.6.1.4.1.25766.1.11.100.3.0.1 >/dev/null 2>&1",
             SNMPTRAP, f->port);
    assert_true(system(cmd) != 0);
    run_until(f, 1);
    ag_traps_stats st;
    ag_traps_stats_get(f->traps, &st);
    assert_int_equal(st.unsupported, 1);
    assert_int_equal(g_nev, 0);
}

static void test_garbage(void **state)
{
    fixture *f = *state;
    static const unsigned char junk[] = "this is not SNMP";
    static const unsigned char seq_only[] = {0x30, 0x82, 0xff, 0xff, 0x02, 0x01, 0x01};
    static const unsigned char v3[] = {0x30, 0x05, 0x02, 0x01, 0x03, 0x30, 0x00};
    /* a v2c trap cut short inside its PDU */
    static const unsigned char cut[] = {0x30, 0x20, 0x02, 0x01, 0x01, 0x04, 0x06, 'p',
                                        'u',  'b',  'l',  'i',  'c',  0xa7, 0x30, 0x02};
    unsigned char big[2000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 37u + 11u);
    big[0] = 0x30;
    big[1] = 0x82;
    big[2] = 0x07;
    big[3] = 0xcc;
    send_raw(f, "127.0.0.1", junk, sizeof junk - 1);
    send_raw(f, "127.0.0.1", seq_only, sizeof seq_only);
    send_raw(f, "127.0.0.1", cut, sizeof cut);
    send_raw(f, "127.0.0.1", big, sizeof big);
    send_raw(f, "127.0.0.1", "", 0);
    send_raw(f, "127.0.0.1", v3, sizeof v3);
    run_until(f, 6);
    ag_traps_stats st;
    ag_traps_stats_get(f->traps, &st);
    assert_int_equal(st.datagrams, 6);
    assert_int_equal(st.malformed, 5);
    assert_int_equal(st.unsupported, 1);
    assert_int_equal(st.events, 0);
    assert_int_equal(g_nev, 0);
}

static void test_unknown_sender(void **state)
{
    fixture *f = *state;
    /* 127.0.0.2 is loopback too, but no configured device has that address */
    static const unsigned char junk[] = {0x30, 0x00};
    send_raw(f, "127.0.0.2", junk, sizeof junk);
    run_until(f, 1);
    ag_traps_stats st;
    ag_traps_stats_get(f->traps, &st);
    assert_int_equal(st.unknown_sender, 1);
    assert_int_equal(st.malformed, 0);
    assert_int_equal(g_nev, 0);
}

/* ---- profile "traps" and [traps] config ---- */

static char g_dir[64];

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int profile_err(const char *traps_json, char *err, size_t errlen)
{
    char path[128], doc[2048];
    snprintf(path, sizeof path, "%s/t.json", g_dir);
    snprintf(doc, sizeof doc,
             "{\"name\": \"t\", \"kind\": \"projector\", \"protocol\": \"snmp\", "
             "\"sources\": [\"x\"], "
             "\"identity\": {\"model\": \"1.3.6.1.2.1.1.1.0\"}, \"traps\": %s}",
             traps_json);
    write_file(path, doc);
    ag_profile p;
    int rc = ag_profile_load(path, &p, err, errlen);
    if (rc == 0) ag_profile_free(&p);
    return rc;
}

static void test_profile_traps(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/test_traps.XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    char err[512];
    int ok = profile_err("{\"1.3.6.1.4.1.1.0.1\": {\"code\": \"fan\", \"severity\": "
                         "\"warning\"}}",
                         err, sizeof err);
    if (ok != 0) fail_msg("%s", err);
    assert_int_equal(profile_err("[]", err, sizeof err), -1);
    assert_non_null(strstr(err, "$.traps: expected an object"));
    assert_int_equal(
        profile_err("{\"1.3.x\": {\"code\": \"fan\", \"severity\": \"info\"}}", err, sizeof err),
        -1);
    assert_non_null(strstr(err, "$.traps['1.3.x']"));
    assert_int_equal(profile_err("{\"1.3.6.1.4.1.1\": {\"code\": \"fan\", \"severity\": "
                                 "\"bad\"}}",
                                 err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "$.traps['1.3.6.1.4.1.1'].severity"));
    assert_int_equal(profile_err("{\"1.3.6.1.4.1.1\": {\"severity\": \"info\"}}", err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "$.traps['1.3.6.1.4.1.1'].code: missing"));
    assert_int_equal(profile_err("{\"1.3.6.1.4.1.1\": {\"code\": \"Fan!\", \"severity\": "
                                 "\"info\"}}",
                                 err, sizeof err),
                     -1);
    assert_int_equal(profile_err("{\"1.3.6.1.4.1.1\": {\"code\": \"fan\", \"severity\": "
                                 "\"info\", \"x\": 1}}",
                                 err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "unknown key"));
    assert_int_equal(profile_err("{\"1.3.6.1.4.1.1\": {\"code\": \"a\", \"severity\": \"info\"}, "
                                 "\".1.3.6.1.4.1.1\": {\"code\": \"b\", \"severity\": \"info\"}}",
                                 err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "twice"));

    /* the shipped Christie profile maps all ten cdProjectorNotify traps */
    ag_profile p;
    assert_int_equal(ag_profile_load("profiles/christie-cp-series2.json", &p, err, sizeof err), 0);
    assert_int_equal(p.ntraps, 10);
    ag_oid o;
    assert_int_equal(ag_oid_parse("1.3.6.1.4.1.25766.1.11.100.3.0.10", &o), 0);
    const ag_trap_map *m = ag_profile_trap(&p, &o);
    assert_non_null(m);
    assert_string_equal(m->code, "security_tamper");
    assert_int_equal(ag_oid_parse("1.3.6.1.4.1.25766.1.11.100.3.0.11", &o), 0);
    assert_null(ag_profile_trap(&p, &o));
    ag_profile_free(&p);
}

static int config_err(const char *traps_section, ag_config *c, char *err, size_t errlen)
{
    char path[128], doc[1024];
    snprintf(path, sizeof path, "%s/agent.ini", g_dir);
    snprintf(doc, sizeof doc, "[agent]\nsite = c1\n%s", traps_section);
    write_file(path, doc);
    return ag_config_load(c, path, err, errlen);
}

static void test_config_traps(void **state)
{
    (void)state;
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "/tmp/test_traps.XXXXXX");
        assert_non_null(mkdtemp(g_dir));
    }
    ag_config c;
    char err[512];
    assert_int_equal(config_err("", &c, err, sizeof err), 0);
    assert_null(c.traps_listen);
    ag_config_free(&c);
    assert_int_equal(config_err("[traps]\nlisten = 127.0.0.1:1162\n", &c, err, sizeof err), 0);
    assert_string_equal(c.traps_host, "127.0.0.1");
    assert_int_equal(c.traps_port, 1162);
    assert_string_equal(c.traps_community, "public");
    ag_config_free(&c);
    assert_int_equal(
        config_err("[traps]\nlisten = [::1]:162\ncommunity = s3cret\n", &c, err, sizeof err), 0);
    assert_string_equal(c.traps_host, "::1");
    assert_int_equal(c.traps_port, 162);
    assert_string_equal(c.traps_community, "s3cret");
    ag_config_free(&c);
    assert_int_equal(config_err("[traps]\ncommunity = x\n", &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "listen"));
    assert_int_equal(config_err("[traps]\nlisten = 127.0.0.1\n", &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "host:port"));
    assert_int_equal(config_err("[traps]\nlisten = 127.0.0.1:70000\n", &c, err, sizeof err), -1);
    assert_int_equal(config_err("[traps]\nlisten = ::1:162\n", &c, err, sizeof err), -1);
    assert_int_equal(config_err("[traps]\nlisten = 127.0.0.1:162\nport = 1\n", &c, err, sizeof err),
                     -1);

    char path[128];
    snprintf(path, sizeof path, "%s/t.json", g_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/agent.ini", g_dir);
    unlink(path);
    rmdir(g_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_v2c_mapped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_enterprise_specific, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_generic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2c_unmapped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_community, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inform_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_sender, setup, teardown),
        cmocka_unit_test(test_profile_traps),
        cmocka_unit_test(test_config_traps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

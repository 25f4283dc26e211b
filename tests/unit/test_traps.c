/* test_traps.c — the SNMP trap and inform receiver on a loopback port: v1, v2c and v3 traps
 * and v2c/v3 informs sent with net-snmp's snmptrap / snmpinform (run while the loop turns, so
 * informs get their Response); wrong community, wrong v3 passwords, user, engine and level;
 * unknown senders; a table of malformed datagrams; the pure trap → event mapping; the engine
 * ID kept in state_dir; the [traps] config section and the profiles' "traps" mapping.
 * Runs with cwd = the repository root. */
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
#include <sys/stat.h>
#include <unistd.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include "agent/config.h"
#include "agent/profile.h"
#include "agent/traps.h"

#define SNMPTRAP "/usr/bin/snmptrap"
#define ENGINE "80001f8805cafe000102030405"
#define USER "cinemon"
#define AUTHPW "auth-secret-1"
#define PRIVPW "priv-secret-2"
/* the v3 options of a correct sender (authPriv, SHA, AES) */
#define V3OK "-v 3 -u " USER " -l authPriv -a SHA -A " AUTHPW " -x AES -X " PRIVPW
#define FAN "1.3.6.1.4.1.25766.1.11.100.3.0.1"
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
    /* a command run while the loop turns */
    uv_process_t proc;
    int exited;
    int64_t status;
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

/* A receiver for 127.0.0.1 with the Christie profile; v3 = also the SNMPv3 user. */
static int setup_with(void **state, int v3)
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
    if (v3) {
        f->cfg.traps_v3_user = USER;
        f->cfg.traps_v3_level = 2;
        f->cfg.traps_v3_auth_protocol = "SHA";
        f->cfg.traps_v3_auth_password = AUTHPW;
        f->cfg.traps_v3_priv_protocol = "AES";
        f->cfg.traps_v3_priv_password = PRIVPW;
        f->cfg.traps_v3_engine_id = "0x" ENGINE;
    }
    g_nev = 0;
    if (ag_traps_open(&f->traps, &f->loop, &f->cfg, &f->profiles, on_event, NULL, err,
                      sizeof err) != 0)
        fail_msg("%s", err);
    f->port = ag_traps_port(f->traps);
    assert_true(f->port > 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 0);
}

static int setup_v3(void **state)
{
    return setup_with(state, 1);
}

static int teardown(void **state)
{
    fixture *f = *state;
    ag_traps_close(f->traps);
    uv_close((uv_handle_t *)&f->timer, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    /* the receiver's USM users are gone with it (a reopened one starts from the config) */
    static const u_char engine[] = {0x80, 0x00, 0x1f, 0x88, 0x05, 0xca, 0xfe,
                                    0x00, 0x01, 0x02, 0x03, 0x04, 0x05};
    static const u_char learnt[] = {0x80, 0x00, 0x1f, 0x88, 0x05, 0xbb, 0xbb, 0xbb, 0xbb, 0x01};
    assert_null(usm_get_user((u_char *)engine, sizeof engine, USER));
    assert_null(usm_get_user((u_char *)learnt, sizeof learnt, USER));
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

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    fixture *f = p->data;
    f->exited = 1;
    f->status = sig ? 128 + sig : status;
    uv_close((uv_handle_t *)p, NULL);
}

/* Run snmptrap/snmpinform with args (one %d: the port) while the loop turns, so that the
 * receiver can answer; its exit status (0 = an inform got its Response). */
static int64_t sender(fixture *f, const char *args)
{
    char fmt[1024], cmd[1200];
    snprintf(fmt, sizeof fmt,
             "MIBS= MIBDIRS=/dev/null SNMPCONFPATH=/nonexistent SNMP_PERSISTENT_DIR=/tmp "
             "exec %s -M /dev/null %s >/dev/null 2>&1",
             SNMPTRAP, args);
    snprintf(cmd, sizeof cmd, fmt, f->port);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    uv_process_options_t o = {.file = "/bin/sh", .args = argv, .exit_cb = on_exit_cb};
    f->exited = 0;
    f->proc.data = f;
    assert_int_equal(uv_spawn(&f->loop, &f->proc, &o), 0);
    for (int i = 0; i < 1500 && !f->exited; i++) { /* 15 s at most */
        uv_timer_start(&f->timer, on_timer, 10, 0);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_true(f->exited);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the process handle's close */
    return f->status;
}

static ag_traps_stats stats(const fixture *f)
{
    ag_traps_stats st;
    ag_traps_stats_get(f->traps, &st);
    return st;
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

static void test_v2c_inform_acked(void **state)
{
    fixture *f = *state;
    if (!have_snmptrap()) skip();
    assert_int_equal(sender(f, "-Ci -t 2 -r 0 -v 2c -c public 127.0.0.1:%d '' " FAN), 0);
    ag_traps_stats st = stats(f);
    assert_int_equal(st.informs_acked, 1);
    assert_int_equal(st.events, 1);
    assert_int_equal(g_nev, 1);
    assert_string_equal(g_ev[0].code, "fan");
    /* a wrong community: no event, no answer, the sender gives up */
    assert_true(sender(f, "-Ci -t 0.3 -r 0 -v 2c -c nope 127.0.0.1:%d '' " FAN) != 0);
    st = stats(f);
    assert_int_equal(st.bad_community, 1);
    assert_int_equal(st.informs_acked, 1);
    assert_int_equal(g_nev, 1);
}

/* ---- SNMPv3 ---- */

static void test_v3_inform_authpriv(void **state)
{
    fixture *f = *state;
    if (!have_snmptrap()) skip();
    char id[80];
    assert_int_equal(ag_traps_engine_id(f->traps, id, sizeof id), strlen(ENGINE));
    assert_string_equal(id, ENGINE);
    assert_int_equal(sender(f, "-Ci -t 2 -r 1 " V3OK " -e 0x" ENGINE " 127.0.0.1:%d '' " FAN
                               " 1.3.6.1.4.1.25766.1.11.100.2.0 i 3"),
                     0);
    ag_traps_stats st = stats(f);
    assert_int_equal(st.informs_acked, 1);
    assert_int_equal(st.events, 1);
    assert_int_equal(st.v3_wrong_digest, 0);
    assert_int_equal(g_nev, 1);
    assert_string_equal(g_ev[0].device, "hall1/projector");
    assert_string_equal(g_ev[0].code, "fan");
    assert_string_equal(g_ev[0].severity, "critical");
    assert_string_equal(g_ev[0].source, "snmp-trap");
    /* without -e the sender first discovers the engine ID (a probe answered by a report) */
    assert_int_equal(sender(f, "-Ci -t 2 -r 1 " V3OK " 127.0.0.1:%d '' "
                               "1.3.6.1.4.1.25766.1.11.100.3.0.3"),
                     0);
    st = stats(f);
    assert_int_equal(st.informs_acked, 2);
    assert_true(st.v3_probes >= 1);
    assert_int_equal(g_nev, 2);
    assert_string_equal(g_ev[1].code, "temperature");
}

static void test_v3_inform_refused(void **state)
{
    fixture *f = *state;
    if (!have_snmptrap()) skip();
    /* wrong auth password: a usmStatsWrongDigests report, snmpinform fails */
    assert_true(sender(f, "-Ci -t 1 -r 0 -v 3 -u " USER " -l authPriv -a SHA -A wrong-pass-1 "
                          "-x AES -X " PRIVPW " -e 0x" ENGINE " 127.0.0.1:%d '' " FAN) != 0);
    ag_traps_stats st = stats(f);
    assert_true(st.v3_wrong_digest >= 1);
    /* wrong auth protocol: the digest is wrong too */
    uint64_t before = st.v3_wrong_digest;
    assert_true(sender(f, "-Ci -t 1 -r 0 -v 3 -u " USER " -l authPriv -a MD5 -A " AUTHPW
                          " -x AES -X " PRIVPW " -e 0x" ENGINE " 127.0.0.1:%d '' " FAN) != 0);
    st = stats(f);
    assert_true(st.v3_wrong_digest > before);
    /* wrong privacy password: authenticated, but the PDU does not decrypt */
    assert_true(sender(f, "-Ci -t 0.5 -r 0 -v 3 -u " USER " -l authPriv -a SHA -A " AUTHPW
                          " -x AES -X wrong-priv-9 -e 0x" ENGINE " 127.0.0.1:%d '' " FAN) != 0);
    st = stats(f);
    assert_true(st.v3_decrypt_error >= 1);
    /* an unknown user */
    assert_true(sender(f, "-Ci -t 1 -r 0 -v 3 -u intruder -l authPriv -a SHA -A " AUTHPW
                          " -x AES -X " PRIVPW " -e 0x" ENGINE " 127.0.0.1:%d '' " FAN) != 0);
    st = stats(f);
    assert_true(st.v3_unknown_user >= 1);
    /* another engine ID: the receiver is authoritative and does not know it */
    assert_true(sender(f, "-Ci -t 1 -r 0 " V3OK " -e 0x80001f8805aaaaaaaaaaaaaaaa 127.0.0.1:%d "
                          "'' " FAN) != 0);
    st = stats(f);
    assert_true(st.v3_unknown_engine >= 1);
    /* the right user below the configured level (authNoPriv < authPriv): no answer */
    assert_true(sender(f, "-Ci -t 0.5 -r 0 -v 3 -u " USER " -l authNoPriv -a SHA -A " AUTHPW
                          " -e 0x" ENGINE " 127.0.0.1:%d '' " FAN) != 0);
    st = stats(f);
    assert_true(st.v3_bad_level >= 1);
    assert_true(sender(f, "-Ci -t 0.5 -r 0 -v 3 -u " USER " -l noAuthNoPriv -e 0x" ENGINE
                          " 127.0.0.1:%d '' " FAN) != 0);
    st = stats(f);
    assert_true(st.v3_bad_level >= 2);
    /* nothing of it became an event or was acknowledged */
    assert_int_equal(st.events, 0);
    assert_int_equal(st.informs_acked, 0);
    assert_int_equal(g_nev, 0);
    /* and the receiver still works */
    assert_int_equal(sender(f, "-Ci -t 2 -r 1 " V3OK " -e 0x" ENGINE " 127.0.0.1:%d '' " FAN), 0);
    assert_int_equal(g_nev, 1);
}

static void test_v3_trap(void **state)
{
    fixture *f = *state;
    if (!have_snmptrap()) skip();
    /* a v3 trap is sent by the authoritative sender: its engine ID is learnt */
    assert_int_equal(sender(f, V3OK " -e 0x80001f8805bbbbbbbb01 127.0.0.1:%d '' " FAN), 0);
    run_until(f, 1);
    ag_traps_stats st = stats(f);
    assert_int_equal(st.v3_engines_learnt, 1);
    assert_int_equal(g_nev, 1);
    assert_string_equal(g_ev[0].code, "fan");
    /* the same engine again, SHA + AES: no second user */
    assert_int_equal(sender(f, V3OK " -e 0x80001f8805bbbbbbbb01 127.0.0.1:%d '' "
                               "1.3.6.1.4.1.25766.1.11.100.3.0.3"),
                     0);
    run_until(f, 2);
    st = stats(f);
    assert_int_equal(st.v3_engines_learnt, 1);
    assert_int_equal(g_nev, 2);
    /* a wrong password from a new engine: the user is made, the digest still fails */
    assert_int_equal(sender(f, "-v 3 -u " USER " -l authPriv -a SHA -A wrong-pass-1 -x AES -X " PRIVPW
                               " -e 0x80001f8805bbbbbbbb02 127.0.0.1:%d '' " FAN),
                     0);
    run_until(f, 3);
    st = stats(f);
    assert_int_equal(st.v3_wrong_digest, 1);
    assert_int_equal(st.v3_engines_learnt, 1); /* not kept: it did not authenticate */
    assert_int_equal(g_nev, 2);
    /* many forged engine IDs (wrong password) use up nothing: a good one still gets in */
    for (int i = 0; i < 3; i++) {
        char args[400];
        snprintf(args, sizeof args,
                 "-v 3 -u " USER " -l authPriv -a SHA -A wrong-pass-1 -x AES -X " PRIVPW
                 " -e 0x80001f8805cccccc%04x 127.0.0.1:%%d '' " FAN,
                 i);
        assert_int_equal(sender(f, args), 0);
    }
    assert_int_equal(sender(f, V3OK " -e 0x80001f8805bbbbbbbb03 127.0.0.1:%d '' " FAN), 0);
    run_until(f, 7);
    st = stats(f);
    assert_int_equal(st.v3_wrong_digest, 4);
    assert_int_equal(st.v3_engines_learnt, 2);
    assert_int_equal(g_nev, 3);
    /* v3 from an unknown sender address is dropped before anything */
    assert_int_equal(st.unknown_sender, 0);
}

static void test_v3_not_configured(void **state)
{
    fixture *f = *state;
    if (!have_snmptrap()) skip();
    assert_int_equal(sender(f, V3OK " -e 0x80001f8805bbbbbbbb01 127.0.0.1:%d '' " FAN), 0);
    run_until(f, 1);
    ag_traps_stats st = stats(f);
    assert_int_equal(st.unsupported, 1);
    assert_int_equal(g_nev, 0);
}

/* The derived engine ID is kept in state_dir and the boot counter goes up. */
static void test_v3_engine_kept(void **state)
{
    (void)state;
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/test_traps_state.XXXXXX");
    assert_non_null(mkdtemp(dir));
    char sub[128];
    snprintf(sub, sizeof sub, "%s/state", dir); /* made by the receiver */
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    ag_device dev = {.id = "d", .protocol = "snmp", .address = "127.0.0.1"};
    ag_config cfg = {.devices = &dev,
                     .ndevices = 1,
                     .traps_host = "127.0.0.1",
                     .traps_community = "public",
                     .state_dir = sub,
                     .traps_v3_user = USER,
                     .traps_v3_level = 1,
                     .traps_v3_auth_protocol = "SHA-256",
                     .traps_v3_auth_password = AUTHPW};
    char ids[2][80], err[256];
    for (int i = 0; i < 2; i++) {
        ag_traps *t;
        if (ag_traps_open(&t, &loop, &cfg, NULL, on_event, NULL, err, sizeof err) != 0)
            fail_msg("%s", err);
        assert_true(ag_traps_engine_id(t, ids[i], sizeof ids[i]) == 34);
        assert_true(strncmp(ids[i], "80001f8805", 10) == 0);
        ag_traps_close(t);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    assert_string_equal(ids[0], ids[1]);
    char path[200], line[200] = "";
    snprintf(path, sizeof path, "%s/traps-engine", sub);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    char want[120];
    snprintf(want, sizeof want, "%s 2\n", ids[0]);
    assert_string_equal(line, want);
    /* a configured engine ID wins and restarts the counter */
    cfg.traps_v3_engine_id = ENGINE;
    ag_traps *t;
    if (ag_traps_open(&t, &loop, &cfg, NULL, on_event, NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_true(ag_traps_engine_id(t, ids[0], sizeof ids[0]) > 0);
    assert_string_equal(ids[0], ENGINE);
    ag_traps_close(t);
    uv_run(&loop, UV_RUN_DEFAULT);
    fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    assert_string_equal(line, ENGINE " 1\n");
    /* a garbled file: a new engine ID, no failure */
    cfg.traps_v3_engine_id = NULL;
    fp = fopen(path, "w");
    fputs("zz not hex\n", fp);
    fclose(fp);
    if (ag_traps_open(&t, &loop, &cfg, NULL, on_event, NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_true(ag_traps_engine_id(t, ids[0], sizeof ids[0]) == 34);
    ag_traps_close(t);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* no state_dir and no v3_engine_id: refused with a reason */
    cfg.state_dir = NULL;
    assert_int_equal(ag_traps_open(&t, &loop, &cfg, NULL, on_event, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "v3_engine_id"));
    assert_int_equal(uv_loop_close(&loop), 0);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
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

/* ---- a table of malformed datagrams ---- */

/* Encode a v1/v2c PDU as net-snmp would send it; the caller frees *buf. */
static size_t encode(netsnmp_pdu *pdu, long version, u_char **buf, u_char **pkt)
{
    netsnmp_session s;
    snmp_sess_init(&s);
    s.version = version;
    s.community = (u_char *)"public";
    s.community_len = 6;
    pdu->version = version;
    size_t len = 2048, off = 0;
    *buf = malloc(len);
    assert_non_null(*buf);
    assert_int_equal(snmp_build(buf, &len, &off, &s, pdu), 0);
    *pkt = *buf + len - off; /* net-snmp encodes from the end of the buffer */
    snmp_free_pdu(pdu);
    return off;
}

static const oid TRAP_OID0[] = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};
static const oid UPTIME0[] = {1, 3, 6, 1, 2, 1, 1, 3, 0};

static netsnmp_pdu *trap2(void)
{
    netsnmp_pdu *p = snmp_pdu_create(SNMP_MSG_TRAP2);
    long up = 5;
    snmp_pdu_add_variable(p, UPTIME0, OID_LENGTH(UPTIME0), ASN_TIMETICKS, &up, sizeof up);
    return p;
}

typedef struct bad_case {
    const char *name;
    const unsigned char *data; /* raw bytes, or NULL: built by make */
    size_t len;
    netsnmp_pdu *(*make)(long *version);
    size_t counter; /* offsetof(ag_traps_stats, ...) that must go up by one */
} bad_case;

static netsnmp_pdu *no_trap_oid(long *v)
{
    *v = SNMP_VERSION_2c;
    return trap2();
}

static netsnmp_pdu *trap_oid_integer(long *v)
{
    *v = SNMP_VERSION_2c;
    netsnmp_pdu *p = trap2();
    long x = 7;
    snmp_pdu_add_variable(p, TRAP_OID0, OID_LENGTH(TRAP_OID0), ASN_INTEGER, &x, sizeof x);
    return p;
}

static netsnmp_pdu *trap_oid_null(long *v)
{
    *v = SNMP_VERSION_2c;
    netsnmp_pdu *p = trap2();
    snmp_add_null_var(p, TRAP_OID0, OID_LENGTH(TRAP_OID0));
    return p;
}

static netsnmp_pdu *get_request(long *v)
{
    *v = SNMP_VERSION_2c;
    netsnmp_pdu *p = snmp_pdu_create(SNMP_MSG_GET);
    snmp_add_null_var(p, UPTIME0, OID_LENGTH(UPTIME0));
    return p;
}

static netsnmp_pdu *v1_bad_generic(long *v)
{
    *v = SNMP_VERSION_1;
    netsnmp_pdu *p = snmp_pdu_create(SNMP_MSG_TRAP);
    static const oid ent[] = {1, 3, 6, 1, 4, 1, 8072};
    p->enterprise = snmp_duplicate_objid(ent, OID_LENGTH(ent));
    p->enterprise_length = OID_LENGTH(ent);
    p->trap_type = 9;
    return p;
}

static netsnmp_pdu *v1_negative_specific(long *v)
{
    *v = SNMP_VERSION_1;
    netsnmp_pdu *p = snmp_pdu_create(SNMP_MSG_TRAP);
    static const oid ent[] = {1, 3, 6, 1, 4, 1, 8072};
    p->enterprise = snmp_duplicate_objid(ent, OID_LENGTH(ent));
    p->enterprise_length = OID_LENGTH(ent);
    p->trap_type = 6;
    p->specific_type = -4;
    return p;
}

static const unsigned char junk[] = "this is not SNMP";
static const unsigned char seq_only[] = {0x30, 0x82, 0xff, 0xff, 0x02, 0x01, 0x01};
static const unsigned char v2u[] = {0x30, 0x03, 0x02, 0x01, 0x02};
static const unsigned char neg_version[] = {0x30, 0x03, 0x02, 0x01, 0xff};
static const unsigned char v3_empty[] = {0x30, 0x05, 0x02, 0x01, 0x03, 0x30, 0x00};
/* a v2c trap cut short inside its PDU */
static const unsigned char cut[] = {0x30, 0x20, 0x02, 0x01, 0x01, 0x04, 0x06, 'p', 'u', 'b',
                                    'l',  'i',  'c',  0xa7, 0x30, 0x02};
/* v3: msgFlags of two octets */
static const unsigned char v3_flags2[] = {0x30, 0x14, 0x02, 0x01, 0x03, 0x30, 0x0f, 0x02, 0x01,
                                          0x01, 0x02, 0x03, 0x00, 0xff, 0xe3, 0x04, 0x02, 0x07,
                                          0x07, 0x02, 0x01, 0x03};
/* v3: security model 99 (not USM) and no more */
static const unsigned char v3_model99[] = {0x30, 0x15, 0x02, 0x01, 0x03, 0x30, 0x0e, 0x02,
                                           0x01, 0x01, 0x02, 0x03, 0x00, 0xff, 0xe3, 0x04,
                                           0x01, 0x04, 0x02, 0x01, 0x63, 0x04, 0x00};
/* v3 USM: security parameters whose user name is 40 octets (> 32) */
static const unsigned char v3_long_user[] = {
    0x30, 0x4d, 0x02, 0x01, 0x03, 0x30, 0x0e, 0x02, 0x01, 0x01, 0x02, 0x03, 0x00, 0xff, 0xe3,
    0x04, 0x01, 0x04, 0x02, 0x01, 0x03, 0x04, 0x36, 0x30, 0x34, 0x04, 0x05, 0x80, 0x00, 0x1f,
    0x88, 0x05, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x04, 0x28, 'x',  'x',  'x',  'x',  'x',
    'x',  'x',  'x',  'x',  'x',  'x',  'x',  'x',  'x',  'x',  'x',  'x',  'x',  'x',  'x',
    'x',  'x',  'x',  'x',  'x',  'x',  'x',  'x',  'x',  'x',  'x',  'x',  'x',  'x',  'x',
    'x',  'x',  'x',  'x',  'x'};
/* v3 USM: security parameters cut inside the engine ID */
static const unsigned char v3_cut_usm[] = {0x30, 0x1b, 0x02, 0x01, 0x03, 0x30, 0x0e, 0x02, 0x01,
                                           0x01, 0x02, 0x03, 0x00, 0xff, 0xe3, 0x04, 0x01, 0x04,
                                           0x02, 0x01, 0x03, 0x04, 0x06, 0x30, 0x04, 0x04, 0x09,
                                           0x80, 0x00};

#define C(field) offsetof(ag_traps_stats, field)

static const bad_case bad_cases[] = {
    {"junk", junk, sizeof junk - 1, NULL, C(malformed)},
    {"sequence longer than the datagram", seq_only, sizeof seq_only, NULL, C(malformed)},
    {"v2c trap cut short", cut, sizeof cut, NULL, C(malformed)},
    {"version 2 (v2u)", v2u, sizeof v2u, NULL, C(unsupported)},
    {"version -1", neg_version, sizeof neg_version, NULL, C(malformed)},
    {"v3 without header", v3_empty, sizeof v3_empty, NULL, C(malformed)},
    {"v3 msgFlags of 2 octets", v3_flags2, sizeof v3_flags2, NULL, C(malformed)},
    {"v3 security model 99", v3_model99, sizeof v3_model99, NULL, C(malformed)},
    {"v3 user name of 40 octets", v3_long_user, sizeof v3_long_user, NULL, C(malformed)},
    {"v3 USM parameters cut", v3_cut_usm, sizeof v3_cut_usm, NULL, C(malformed)},
    {"v2c trap without snmpTrapOID.0", NULL, 0, no_trap_oid, C(malformed)},
    {"v2c snmpTrapOID.0 an INTEGER", NULL, 0, trap_oid_integer, C(malformed)},
    {"v2c snmpTrapOID.0 a NULL", NULL, 0, trap_oid_null, C(malformed)},
    {"v2c GET request", NULL, 0, get_request, C(unsupported)},
    {"v1 generic trap 9", NULL, 0, v1_bad_generic, C(malformed)},
    {"v1 negative specific trap", NULL, 0, v1_negative_specific, C(malformed)},
};

static uint64_t counter(const ag_traps_stats *st, size_t off)
{
    uint64_t v;
    memcpy(&v, (const char *)st + off, sizeof v);
    return v;
}

/* Every malformed datagram is counted once, under its reason, and never becomes an event. */
static void test_malformed_table(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
        const bad_case *c = &bad_cases[i];
        ag_traps_stats before = stats(f);
        u_char *buf = NULL, *pkt = (u_char *)c->data;
        size_t len = c->len;
        if (c->make) {
            long v;
            netsnmp_pdu *pdu = c->make(&v);
            len = encode(pdu, v, &buf, &pkt);
        }
        send_raw(f, "127.0.0.1", pkt, len);
        free(buf);
        run_until(f, before.datagrams + 1);
        ag_traps_stats after = stats(f);
        if (after.datagrams != before.datagrams + 1 ||
            counter(&after, c->counter) != counter(&before, c->counter) + 1)
            fail_msg("case '%s': datagrams %llu→%llu, counter %llu→%llu", c->name,
                     (unsigned long long)before.datagrams, (unsigned long long)after.datagrams,
                     (unsigned long long)counter(&before, c->counter),
                     (unsigned long long)counter(&after, c->counter));
        assert_int_equal(after.events, 0);
    }
    assert_int_equal(g_nev, 0);
}

/* ---- the pure mapping: decoded PDU → event ---- */

static void test_map(void **state)
{
    (void)state;
    ag_profile_set set = {.profiles = calloc(1, sizeof(ag_profile)), .nprofiles = 1};
    char err[256];
    if (ag_profile_load("profiles/christie-cp-series2.json", &set.profiles[0], err, sizeof err))
        fail_msg("%s", err);
    ag_device named = {.id = "h1/p", .profile = "christie-cp-series2"};
    ag_device unnamed = {.id = "h2/p"};
    ag_device other = {.id = "h3/p", .profile = "other-profile"};
    ag_trap_event te;
    static const oid fan[] = {1, 3, 6, 1, 4, 1, 25766, 1, 11, 100, 3, 0, 1};
    netsnmp_pdu *p = trap2();
    snmp_pdu_add_variable(p, TRAP_OID0, OID_LENGTH(TRAP_OID0), ASN_OBJECT_ID, fan, sizeof fan);
    /* the named profile; no profile named: any profile that maps the OID */
    assert_int_equal(ag_traps_map(p, &named, &set.profiles[0], &set, 42, &te), 0);
    assert_string_equal(te.e.code, "fan");
    assert_string_equal(te.e.device, "h1/p");
    assert_int_equal(te.e.ts_ms, 42);
    assert_int_equal(ag_traps_map(p, &unnamed, NULL, &set, 42, &te), 0);
    assert_string_equal(te.e.code, "fan");
    /* a named profile that is not loaded maps nothing: info with the OID */
    assert_int_equal(ag_traps_map(p, &other, NULL, &set, 42, &te), 0);
    assert_string_equal(te.e.code, "1.3.6.1.4.1.25766.1.11.100.3.0.1");
    assert_string_equal(te.e.severity, "info");
    /* an inform maps the same */
    p->command = SNMP_MSG_INFORM;
    assert_int_equal(ag_traps_map(p, &named, &set.profiles[0], &set, 42, &te), 0);
    assert_string_equal(te.e.code, "fan");
    p->command = SNMP_MSG_GET;
    assert_int_equal(ag_traps_map(p, &named, &set.profiles[0], &set, 42, &te), -1);
    snmp_free_pdu(p);
    /* an unmapped OID of 60 long sub-ids: its text is too long for a code */
    oid longoid[60];
    for (size_t i = 0; i < 60; i++) longoid[i] = i < 2 ? 1 : 4000000000u;
    p = trap2();
    snmp_pdu_add_variable(p, TRAP_OID0, OID_LENGTH(TRAP_OID0), ASN_OBJECT_ID, longoid,
                          sizeof longoid);
    static const oid extra[] = {1, 3, 6, 1, 4, 1, 9, 9};
    snmp_pdu_add_variable(p, extra, OID_LENGTH(extra), ASN_OCTET_STR, "hello", 5);
    assert_int_equal(ag_traps_map(p, &unnamed, NULL, &set, 1, &te), 0);
    assert_string_equal(te.e.code, "unknown_trap");
    assert_non_null(strstr(te.e.text, "hello"));
    assert_true(strlen(te.e.text) < CM_MAX_TEXT);
    snmp_free_pdu(p);
    /* v1: generic and enterprise-specific; a broken one */
    p = snmp_pdu_create(SNMP_MSG_TRAP);
    static const oid ent[] = {1, 3, 6, 1, 4, 1, 25766, 1, 11, 100, 3};
    p->enterprise = snmp_duplicate_objid(ent, OID_LENGTH(ent));
    p->enterprise_length = OID_LENGTH(ent);
    p->trap_type = 6;
    p->specific_type = 1;
    assert_int_equal(ag_traps_map(p, &named, &set.profiles[0], &set, 1, &te), 0);
    assert_string_equal(te.e.code, "fan");
    p->trap_type = 4; /* authenticationFailure */
    assert_int_equal(ag_traps_map(p, &named, &set.profiles[0], &set, 1, &te), 0);
    assert_string_equal(te.e.code, "1.3.6.1.6.3.1.1.5.5");
    p->trap_type = 6;
    p->enterprise_length = 0;
    assert_int_equal(ag_traps_map(p, &named, &set.profiles[0], &set, 1, &te), -1);
    p->enterprise_length = OID_LENGTH(ent);
    p->trap_type = -1;
    assert_int_equal(ag_traps_map(p, &named, &set.profiles[0], &set, 1, &te), -1);
    snmp_free_pdu(p);
    assert_int_equal(ag_traps_map(NULL, &named, NULL, &set, 1, &te), -1);
    ag_profile_free(&set.profiles[0]);
    free(set.profiles);
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

    /* the shipped Christie profile maps all ten cdProjectorNotify traps, and the generic
     * SNMPv2-MIB linkDown/linkUp pair */
    ag_profile p;
    assert_int_equal(ag_profile_load("profiles/christie-cp-series2.json", &p, err, sizeof err), 0);
    assert_int_equal(p.ntraps, 12);
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

    /* SNMPv3 keys, named as in [device] */
    assert_int_equal(config_err("[traps]\nlisten = 127.0.0.1:1162\nv3_user = cinemon\n"
                                "v3_auth_protocol = SHA-256\nv3_auth_password = 12345678\n"
                                "v3_priv_protocol = DES\nv3_priv_password = abcdefgh\n"
                                "v3_engine_id = 0x80001F8805CAFE\n",
                                &c, err, sizeof err),
                     0);
    assert_string_equal(c.traps_v3_user, "cinemon");
    assert_int_equal(c.traps_v3_level, 2);
    assert_string_equal(c.traps_v3_auth_protocol, "SHA-256");
    assert_string_equal(c.traps_v3_auth_password, "12345678");
    assert_string_equal(c.traps_v3_priv_protocol, "DES");
    assert_string_equal(c.traps_v3_priv_password, "abcdefgh");
    assert_string_equal(c.traps_v3_engine_id, "0x80001F8805CAFE");
    ag_config_free(&c);
    assert_int_equal(config_err("[traps]\nlisten = 127.0.0.1:1162\nv3_user = u\n"
                                "v3_level = noAuthNoPriv\n",
                                &c, err, sizeof err),
                     0);
    assert_int_equal(c.traps_v3_level, 0);
    assert_string_equal(c.traps_v3_auth_protocol, "SHA");
    assert_string_equal(c.traps_v3_priv_protocol, "AES");
    assert_null(c.traps_v3_engine_id);
    ag_config_free(&c);
    assert_int_equal(config_err("[traps]\nlisten = 127.0.0.1:1162\n", &c, err, sizeof err), 0);
    assert_null(c.traps_v3_user);
    ag_config_free(&c);
    static const struct {
        const char *keys, *want;
    } bad[] = {
        {"v3_user = u\n", "needs 'v3_auth_password'"},
        {"v3_user = u\nv3_auth_password = 12345678\n", "needs 'v3_priv_password'"},
        {"v3_user = u\nv3_level = authNoPriv\nv3_auth_password = short\n", "at least 8"},
        {"v3_user = u\nv3_auth_password = 12345678\nv3_priv_password = short\n", "at least 8"},
        {"v3_auth_password = 12345678\n", "v3_auth_password needs 'v3_user'"},
        {"v3_engine_id = 8000000001\n", "v3_engine_id needs 'v3_user'"},
        {"v3_user = u\nv3_level = noAuthNoPriv\nv3_engine_id = 80000\n", "5 to 32 octets"},
        {"v3_user = u\nv3_level = noAuthNoPriv\nv3_engine_id = 80zz000001\n", "5 to 32 octets"},
        {"v3_user = u\nv3_level = noAuthNoPriv\nv3_engine_id = "
         "8000000001000000000000000000000000000000000000000000000000000000ff\n",
         "5 to 32 octets"},
        {"v3_user = u\nv3_level = authOnly\n", "v3_level"},
        {"v3_user = u\nv3_auth_protocol = SHA-512\n", "v3_auth_protocol"},
        {"v3_user = u\nv3_priv_protocol = 3DES\n", "v3_priv_protocol"},
        {"v3_user = 123456789012345678901234567890123\nv3_level = noAuthNoPriv\n", "32"},
        {"v3_usr = u\n", "v3_usr"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char sec[512];
        snprintf(sec, sizeof sec, "[traps]\nlisten = 127.0.0.1:1162\n%s", bad[i].keys);
        if (config_err(sec, &c, err, sizeof err) != -1 || !strstr(err, bad[i].want))
            fail_msg("case %zu: '%s' does not say '%s'", i, err, bad[i].want);
        assert_non_null(strstr(err, "agent.ini:"));
        /* a password is never part of an error */
        assert_null(strstr(err, "12345678"));
    }

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
        cmocka_unit_test_setup_teardown(test_v2c_inform_acked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v3_inform_authpriv, setup_v3, teardown),
        cmocka_unit_test_setup_teardown(test_v3_inform_refused, setup_v3, teardown),
        cmocka_unit_test_setup_teardown(test_v3_trap, setup_v3, teardown),
        cmocka_unit_test_setup_teardown(test_v3_not_configured, setup, teardown),
        cmocka_unit_test(test_v3_engine_kept),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_table, setup_v3, teardown),
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_profile_traps),
        cmocka_unit_test(test_config_traps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

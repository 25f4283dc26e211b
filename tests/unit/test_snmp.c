/* test_snmp.c — the SNMP driver against snmpsimd serving the real device recordings in
 * $CINEMON_SHARED/fixtures/snmprec (default ../shared). Skipped when they or snmpsimd are
 * absent. Runs with cwd = the repository root (profiles/ is read from there). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/driver.h"
#include "agent/profile.h"
#include "timeutil.h"

#define MAX_POINTS 512

typedef struct point {
    char metric[64];
    char labels[256]; /* "k=v,k=v" sorted by key */
    double value;
    int64_t ts_ms;
} point;

/* What one device's sink received. */
typedef struct rec {
    point pts[MAX_POINTS];
    size_t npts;
    int ninv, ndone;
    char model[128], serial[128], firmware[128], vendor[128], profile[64];
    ag_poll_status status;
    char detail[256];
    int64_t done_mono;
} rec;

static pid_t g_sim = -1; /* the watchdog that owns snmpsimd */
static int g_sim_pipe = -1;
static char g_cache[64];
static int g_port;
static int g_skip;
static char g_skip_why[600];
static ag_profile_set g_profiles;
static uv_loop_t g_loop;

/* ---- sink ----------------------------------------------------------------------------- */

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const cm_label *)a)->key, ((const cm_label *)b)->key);
}

static void on_point(void *ud, const ag_device *dev, const char *metric, const char *unit,
                     const cm_label *labels, size_t nlabels, int64_t ts_ms, double value)
{
    rec *r = ud;
    (void)dev;
    (void)unit;
    assert_true(r->npts < MAX_POINTS);
    assert_true(nlabels <= CM_MAX_LABELS);
    point *p = &r->pts[r->npts++];
    snprintf(p->metric, sizeof p->metric, "%s", metric);
    cm_label sorted[CM_MAX_LABELS];
    if (nlabels) { /* labels may be NULL when there are none */
        memcpy(sorted, labels, nlabels * sizeof *labels);
        qsort(sorted, nlabels, sizeof *sorted, cmp_label);
    }
    p->labels[0] = '\0';
    for (size_t i = 0; i < nlabels; i++) {
        size_t len = strlen(p->labels);
        snprintf(p->labels + len, sizeof p->labels - len, "%s%s=%s", i ? "," : "", sorted[i].key,
                 sorted[i].value);
    }
    p->value = value;
    p->ts_ms = ts_ms;
}

static void on_inventory(void *ud, const ag_device *dev, const cm_device_info *info)
{
    rec *r = ud;
    (void)dev;
    r->ninv++;
    snprintf(r->model, sizeof r->model, "%s", info->model ? info->model : "");
    snprintf(r->serial, sizeof r->serial, "%s", info->serial ? info->serial : "");
    snprintf(r->firmware, sizeof r->firmware, "%s", info->firmware ? info->firmware : "");
    snprintf(r->vendor, sizeof r->vendor, "%s", info->vendor ? info->vendor : "");
    snprintf(r->profile, sizeof r->profile, "%s", info->profile ? info->profile : "");
}

static void on_done(void *ud, const ag_device *dev, ag_poll_status status, const char *detail)
{
    rec *r = ud;
    (void)dev;
    r->ndone++;
    r->status = status;
    snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
    r->done_mono = cm_mono_ms();
}

/* The value of metric{labels}, asserting there is exactly one. */
static double value_of(const rec *r, const char *metric, const char *labels)
{
    const point *found = NULL;
    for (size_t i = 0; i < r->npts; i++) {
        if (strcmp(r->pts[i].metric, metric) == 0 && strcmp(r->pts[i].labels, labels) == 0) {
            if (found) fail_msg("%s{%s} reported twice", metric, labels);
            found = &r->pts[i];
        }
    }
    if (!found)
        fail_msg("no sample %s{%s} (status %s: %s)", metric, labels, ag_poll_status_name(r->status),
                 r->detail);
    return found->value;
}

static size_t count_of(const rec *r, const char *metric)
{
    size_t n = 0;
    for (size_t i = 0; i < r->npts; i++)
        n += strcmp(r->pts[i].metric, metric) == 0;
    return n;
}

static void assert_near(double got, double want)
{
    if (fabs(got - want) > 1e-6 * (fabs(want) > 1 ? fabs(want) : 1))
        fail_msg("got %.10g, want %.10g", got, want);
}

/* ---- devices and polls ---------------------------------------------------------------- */

static ag_device make_dev(const char *id, const char *community, const char *profile, int port)
{
    ag_device d;
    memset(&d, 0, sizeof d);
    d.id = (char *)id;
    d.screen = (char *)"hall1";
    d.kind = NULL;
    d.profile = (char *)profile;
    d.address = (char *)"127.0.0.1";
    d.port = port;
    d.snmp_version = 2;
    d.community = (char *)community;
    d.interval_ms = 60000;
    d.timeout_ms = 2000;
    d.retries = 1;
    return d;
}

static void *open_dev(const ag_device *d, rec *r)
{
    ag_sink sink = {r, on_point, on_inventory, on_done};
    void *state = NULL;
    char err[256] = "";
    if (ag_snmp_driver.open(&g_loop, d, &g_profiles, &sink, &state, err, sizeof err) != 0)
        fail_msg("open %s: %s", d->id, err);
    return state;
}

/* Run the loop until every rec has ndone >= 1 or the deadline passes. */
static void run_until_done(rec **rs, size_t n, int64_t max_ms)
{
    int64_t end = cm_mono_ms() + max_ms;
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += rs[i]->ndone > 0;
        if (done == n) return;
        if (cm_mono_ms() > end) fail_msg("poll did not finish within %lld ms", (long long)max_ms);
        uv_run(&g_loop, UV_RUN_ONCE);
    }
}

/* Close a driver state and let the loop release it. */
static void close_dev(void *state)
{
    ag_snmp_driver.close(state);
    for (int i = 0; i < 10; i++)
        uv_run(&g_loop, UV_RUN_NOWAIT);
}

/* One whole poll of the recording `community`; the result lands in *r. */
static void poll_once(const char *community, const char *profile, int version, rec *r)
{
    memset(r, 0, sizeof *r);
    ag_device d = make_dev(community, community, profile, g_port);
    d.snmp_version = version;
    void *s = open_dev(&d, r);
    int64_t before = cm_now_ms();
    assert_int_equal(ag_snmp_driver.poll(s), 0);
    assert_int_equal(r->ndone, 0); /* never from inside poll() */
    rec *rs[] = {r};
    run_until_done(rs, 1, 10000);
    close_dev(s);
    assert_int_equal(r->ndone, 1);
    for (size_t i = 0; i < r->npts; i++) { /* one timestamp per poll, taken at its start */
        assert_int_equal(r->pts[i].ts_ms, r->pts[0].ts_ms);
        assert_true(r->pts[i].ts_ms >= before && r->pts[i].ts_ms <= before + 5000);
    }
}

/* ---- snmpsimd ------------------------------------------------------------------------- */

static int free_udp_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static const char *find_snmpsimd(void)
{
    static const char *const cands[] = {"/usr/bin/snmpsimd", "/usr/local/bin/snmpsimd",
                                        "/usr/bin/snmpsimd.py", "/usr/local/bin/snmpsimd.py"};
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++)
        if (access(cands[i], X_OK) == 0) return cands[i];
    return NULL;
}

/* Start snmpsimd under a watchdog process: the watchdog kills it when the pipe from this
 * process closes — at teardown, and also when this test dies without a teardown. */
static int start_sim(const char *sim, char *const argv[])
{
    int pfd[2];
    if (pipe(pfd) != 0) return -1;
    g_sim = fork();
    if (g_sim < 0) return -1;
    if (g_sim == 0) {
        close(pfd[1]);
        pid_t child = fork();
        if (child == 0) {
            close(pfd[0]);
            int devnull = open("/dev/null", O_RDWR);
            if (devnull >= 0) {
                dup2(devnull, 0);
                dup2(devnull, 1);
                dup2(devnull, 2);
            }
            execv(sim, argv);
            _exit(127);
        }
        for (;;) {
            struct pollfd p = {pfd[0], POLLIN, 0};
            int wst;
            if (child < 0 || waitpid(child, &wst, WNOHANG) == child)
                _exit(1); /* snmpsimd ended on its own */
            if (poll(&p, 1, 200) > 0) {
                char c;
                if (read(pfd[0], &c, 1) <= 0) break; /* the test closed the pipe or died */
            }
        }
        kill(child, SIGTERM);
        for (int i = 0; i < 100; i++) {
            int wst;
            if (waitpid(child, &wst, WNOHANG) == child) _exit(0);
            usleep(50 * 1000);
        }
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        _exit(0);
    }
    close(pfd[0]);
    g_sim_pipe = pfd[1];
    return 0;
}

static int setup(void **st)
{
    (void)st;
    if (uv_loop_init(&g_loop) != 0) return -1;
    char err[512] = "";
    if (ag_profiles_load_dir("profiles", &g_profiles, err, sizeof err) != 0) {
        fprintf(stderr, "profiles: %s\n", err);
        return -1;
    }
    const char *shared = getenv("CINEMON_SHARED");
    char data[512];
    snprintf(data, sizeof data, "%s/fixtures/snmprec", shared && *shared ? shared : "../shared");
    char probe[600];
    snprintf(probe, sizeof probe, "%s/christie-projector_cp.snmprec", data);
    const char *sim = find_snmpsimd();
    if (access(probe, R_OK) != 0) {
        g_skip = 1;
        snprintf(g_skip_why, sizeof g_skip_why, "no recordings at %s", data);
        return 0;
    }
    if (!sim) {
        g_skip = 1;
        snprintf(g_skip_why, sizeof g_skip_why, "snmpsimd not installed");
        return 0;
    }
    snprintf(g_cache, sizeof g_cache, "/tmp/cinemon-test-snmp-XXXXXX");
    if (!mkdtemp(g_cache) || chmod(g_cache, 0777) != 0) return -1;
    g_port = free_udp_port();
    if (g_port <= 0) return -1;
    char a_data[600], a_cache[128], a_ep[64];
    snprintf(a_data, sizeof a_data, "--data-dir=%s", data);
    snprintf(a_cache, sizeof a_cache, "--cache-dir=%s", g_cache);
    snprintf(a_ep, sizeof a_ep, "--agent-udpv4-endpoint=127.0.0.1:%d", g_port);
    char *argv[] = {(char *)sim,
                    a_data,
                    a_cache,
                    a_ep,
                    (char *)"--process-user=nobody",
                    (char *)"--process-group=nogroup",
                    (char *)"--logging-method=null",
                    NULL};
    if (start_sim(sim, argv) != 0) return -1;
    /* snmpsimd needs a few seconds to index the recordings: poll until it answers. */
    int64_t end = cm_mono_ms() + 60000;
    while (cm_mono_ms() < end) {
        int wst;
        if (waitpid(g_sim, &wst, WNOHANG) == g_sim) {
            g_sim = -1;
            fprintf(stderr, "snmpsimd exited early\n");
            return -1;
        }
        rec r;
        memset(&r, 0, sizeof r);
        ag_device d = make_dev("probe", "christie-projector_cp", "christie-cp-series2", g_port);
        d.timeout_ms = 300;
        d.retries = 0;
        void *s = open_dev(&d, &r);
        ag_snmp_driver.poll(s);
        while (!r.ndone)
            uv_run(&g_loop, UV_RUN_ONCE);
        close_dev(s);
        if (r.status == AG_POLL_OK) return 0;
        usleep(200 * 1000);
    }
    fprintf(stderr, "snmpsimd did not answer on port %d\n", g_port);
    return -1;
}

static int teardown(void **st)
{
    (void)st;
    if (g_sim > 0) {
        close(g_sim_pipe); /* the watchdog stops snmpsimd and exits */
        g_sim_pipe = -1;
        int wst;
        waitpid(g_sim, &wst, 0);
        g_sim = -1;
    }
    if (g_cache[0]) nftw(g_cache, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    ag_profiles_free(&g_profiles);
    uv_run(&g_loop, UV_RUN_NOWAIT);
    int rc = uv_loop_close(&g_loop);
    if (rc != 0) fprintf(stderr, "loop still has handles: %s\n", uv_strerror(rc));
    return rc == 0 ? 0 : -1;
}

#define SKIP_IF_NO_SIM()                                                                           \
    do {                                                                                           \
        if (g_skip) {                                                                              \
            fprintf(stderr, "skipped: %s\n", g_skip_why);                                          \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- tests ---------------------------------------------------------------------------- */

static void test_christie_auto(void **st)
{
    (void)st;
    SKIP_IF_NO_SIM();
    static rec r;
    poll_once("christie-projector_cp", NULL, 2, &r);
    assert_int_equal(r.status, AG_POLL_OK);
    assert_near(value_of(&r, "light_source_hours", "lamp=1"), 3475);
    assert_near(value_of(&r, "uptime_seconds", ""), 408803.96);
    assert_int_equal(count_of(&r, "security_tampered"), 0); /* not in this walk */
    assert_int_equal(count_of(&r, "temperature_celsius"), 0);
    assert_int_equal(r.ninv, 1);
    assert_string_equal(r.profile, "christie-cp-series2");
    assert_string_equal(r.firmware, "4.8.1.3");
    assert_string_equal(r.model, "<private>");
    assert_string_equal(r.vendor, "Christie");
}

static void test_christie_v1(void **st)
{
    (void)st;
    SKIP_IF_NO_SIM();
    static rec r;
    /* v1: the missing security OIDs fail the whole PDU with noSuchName; the retry without
     * them still reads the lamp; the table walks end with noSuchName. */
    poll_once("christie-projector_cp", "christie-cp-series2", 1, &r);
    assert_int_equal(r.status, AG_POLL_OK);
    assert_near(value_of(&r, "light_source_hours", "lamp=1"), 3475);
    assert_near(value_of(&r, "uptime_seconds", ""), 408803.96);
    assert_string_equal(r.firmware, "4.8.1.3");
}

static void test_epson(void **st)
{
    (void)st;
    SKIP_IF_NO_SIM();
    static rec r;
    poll_once("epson-projector_eb-4770w", NULL, 2, &r);
    assert_int_equal(r.status, AG_POLL_OK);
    assert_string_equal(r.profile, "epson-projector");
    assert_near(value_of(&r, "light_source_hours", "lamp=1"), 79);
    assert_near(value_of(&r, "uptime_seconds", ""), 33973907.69); /* TimeTicks > 2^31 */
    assert_near(value_of(&r, "if_in_octets_total", "interface=eth0"), 3288052712.0);
    assert_near(value_of(&r, "if_oper_status", "interface=eth0"), 1);
    assert_int_equal(count_of(&r, "if_oper_status"), 2); /* lo and eth0 */
}

static void test_host_name(void **st)
{
    (void)st;
    SKIP_IF_NO_SIM();
    static rec r;
    memset(&r, 0, sizeof r);
    ag_device d = make_dev("hall1/server", "linux", "generic-snmp-host", g_port);
    d.address = (char *)"localhost"; /* resolved asynchronously, IPv4 preferred */
    void *s = open_dev(&d, &r);
    assert_int_equal(ag_snmp_driver.poll(s), 0);
    rec *rs[] = {&r};
    run_until_done(rs, 1, 10000);
    close_dev(s);
    assert_int_equal(r.status, AG_POLL_OK);
    assert_int_equal(count_of(&r, "cpu_load_percent"), 8);
}

static void test_epson_v1_walk(void **st)
{
    (void)st;
    SKIP_IF_NO_SIM();
    static rec r;
    poll_once("epson-projector_eb-4770w", "epson-projector", 1, &r);
    assert_int_equal(r.status, AG_POLL_OK);
    assert_near(value_of(&r, "if_out_octets_total", "interface=eth0"), 1604716244.0);
    assert_near(value_of(&r, "if_in_octets_total", "interface=lo"), 2547595597.0);
    assert_int_equal(count_of(&r, "if_in_octets_total"), 2);
}

static void test_apc(void **st)
{
    (void)st;
    SKIP_IF_NO_SIM();
    static rec r;
    poll_once("apc_smt750x-nmc2", NULL, 2, &r);
    assert_int_equal(r.status, AG_POLL_OK);
    assert_string_equal(r.profile, "ups-apc");
    assert_near(value_of(&r, "ups_battery_temperature_celsius", ""), 23.4);
    assert_near(value_of(&r, "ups_runtime_seconds", ""), 109762);
    assert_near(value_of(&r, "ups_battery_charge_percent", ""), 100);
    assert_near(value_of(&r, "ups_input_voltage_volts", "line=1"), 119.1);
    assert_near(value_of(&r, "ups_load_percent", "line=1"), 0);
    assert_near(value_of(&r, "ups_on_battery", ""), 0);
    assert_near(value_of(&r, "ups_battery_replace_needed", ""), 0);
    assert_string_equal(r.model, "Smart-UPS X 750");
    assert_string_equal(r.serial, "AS1907242163");
    assert_string_equal(r.firmware, "UPS 09.8 (ID20)"); /* trailing space dropped */
    assert_string_equal(r.vendor, "APC");
}

static void test_generex_negative(void **st)
{
    (void)st;
    SKIP_IF_NO_SIM();
    static rec r;
    poll_once("generex-ups_cs141", NULL, 2, &r);
    assert_int_equal(r.status, AG_POLL_OK);
    assert_string_equal(r.profile, "ups-rfc1628"); /* sysObjectID is 1.3.6.1.2.1.33 */
    assert_near(value_of(&r, "ups_output_power_watts", "line=1"), -4);
    assert_near(value_of(&r, "ups_output_power_watts", "line=3"), -26);
    assert_near(value_of(&r, "ups_output_power_watts", "line=2"), 469);
    assert_near(value_of(&r, "ups_runtime_seconds", ""), 544 * 60);
    assert_near(value_of(&r, "ups_input_voltage_volts", "line=3"), 235);
    assert_near(value_of(&r, "ups_battery_voltage_volts", ""), 271.6);
    assert_near(value_of(&r, "ups_on_battery", ""), 0); /* source 4 = bypass */
    assert_near(value_of(&r, "ups_load_percent", "line=2"), 14);
    assert_string_equal(r.vendor, "Multimatic");
    assert_string_equal(r.model, "Upscale");
}

static void test_delta_null(void **st)
{
    (void)st;
    SKIP_IF_NO_SIM();
    static rec r;
    poll_once("deltaups_rfc1628string", "ups-rfc1628", 2, &r);
    assert_int_equal(r.status, AG_POLL_OK);
    assert_int_equal(count_of(&r, "ups_battery_current_amperes"), 0); /* Null varbind */
    assert_near(value_of(&r, "ups_battery_charge_percent", ""), 29);
    assert_near(value_of(&r, "ups_battery_temperature_celsius", ""), 14);
    assert_near(value_of(&r, "ups_input_frequency_hertz", "line=1"), 50);
    assert_int_equal(count_of(&r, "ups_input_frequency_hertz"), 1);       /* lines 2, 3 are Null */
    assert_near(value_of(&r, "ups_input_voltage_volts", "line=1"), 2360); /* the card's 0.1 V */
    assert_int_equal(count_of(&r, "ups_output_power_watts"), 1);
    assert_int_equal(count_of(&r, "uptime_seconds"), 0); /* no sysUpTime in this walk */
}

static void test_linux_minimal(void **st)
{
    (void)st;
    SKIP_IF_NO_SIM();
    static rec r;
    poll_once("linux", NULL, 2, &r);
    assert_int_equal(r.status, AG_POLL_OK);
    assert_string_equal(r.profile, "generic-snmp-host");
    assert_int_equal(count_of(&r, "uptime_seconds"), 0); /* sysUpTime missing from the walk */
    assert_int_equal(count_of(&r, "cpu_load_percent"), 8);
    assert_near(value_of(&r, "cpu_load_percent", "cpu=196608"), 3);
    assert_near(value_of(&r, "cpu_load_percent", "cpu=196609"), 2);
}

static void test_linux_full(void **st)
{
    (void)st;
    SKIP_IF_NO_SIM();
    static rec r;
    poll_once("linux_icecast", NULL, 2, &r);
    assert_int_equal(r.status, AG_POLL_OK);
    assert_near(value_of(&r, "uptime_seconds", ""), 2082556.64);
    assert_near(value_of(&r, "memory_total_bytes", ""), 841176.0 * 1024);
    assert_near(value_of(&r, "memory_available_bytes", ""), 80004.0 * 1024);
    assert_near(value_of(&r, "load_average_1m", ""), 0.11);
    assert_near(value_of(&r, "storage_size_blocks", "storage=Physical memory"), 841176);
    assert_near(value_of(&r, "storage_used_blocks", "storage=Physical memory"), 761144);
    assert_near(value_of(&r, "storage_block_size_bytes", "storage=Physical memory"), 1024);
    assert_near(value_of(&r, "if_oper_status", "interface=eth0"), 1);
    assert_true(count_of(&r, "cpu_load_percent") >= 1);
}

/* A profile with values that cannot be mapped, a row limit and an enum keyed by OID text. */
static void test_unmappable_and_limits(void **st)
{
    (void)st;
    SKIP_IF_NO_SIM();
    char dir[64], path[128], logpath[128];
    snprintf(dir, sizeof dir, "/tmp/cinemon-test-snmp-prof-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/edge-test.json", dir);
    snprintf(logpath, sizeof logpath, "%s/log.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"name\": \"edge-test\", \"kind\": \"server\", \"protocol\": \"snmp\", "
          "\"sources\": [\"test\"],"
          " \"scalars\": [{\"oid\": \"1.3.6.1.2.1.1.1.0\", \"metric\": \"descr_number\"}],"
          " \"tables\": ["
          "  {\"oid\": \"1.3.6.1.2.1.25.3.3.1\", \"index_label\": \"cpu\", \"max_rows\": 3,"
          "   \"columns\": [{\"column\": 2, \"metric\": \"cpu_load_percent\"}]},"
          "  {\"oid\": \"1.3.6.1.2.1.25.3.2.1\", \"index_label\": \"dev\","
          "   \"label_columns\": [{\"column\": 3, \"label\": \"descr\"}],"
          "   \"columns\": [{\"column\": 2, \"metric\": \"is_processor\","
          "                 \"enum\": {\"1.3.6.1.2.1.25.3.1.3\": 1}}]}]}",
          f);
    fclose(f);
    ag_profile_set set;
    char err[512] = "";
    if (ag_profiles_load_dir(dir, &set, err, sizeof err) != 0) fail_msg("%s", err);

    static rec r;
    memset(&r, 0, sizeof r);
    ag_device d = make_dev("edge/dev", "linux", "edge-test", g_port);
    ag_sink sink = {&r, on_point, on_inventory, on_done};
    void *s = NULL;
    assert_int_equal(ag_snmp_driver.open(&g_loop, &d, &set, &sink, &s, err, sizeof err), 0);

    fflush(stderr);
    int saved = dup(2), logfd = open(logpath, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(saved >= 0 && logfd >= 0);
    dup2(logfd, 2);
    assert_int_equal(ag_snmp_driver.poll(s), 0);
    rec *rs[] = {&r};
    run_until_done(rs, 1, 10000);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(logfd);
    close_dev(s);

    assert_int_equal(r.status, AG_POLL_OK); /* unmappable values do not fail the poll */
    assert_int_equal(count_of(&r, "descr_number"), 0);
    assert_int_equal(count_of(&r, "cpu_load_percent"), 3); /* max_rows */
    assert_near(
        value_of(&r, "is_processor",
                 "descr=GenuineIntel: Intel(R) Core(TM) i7-3632QM CPU @ 2.20GHz,dev=196608"),
        1);
    assert_int_equal(count_of(&r, "is_processor"), 8); /* the 5 other device types: no sample */

    char log[8192] = "";
    f = fopen(logpath, "r");
    assert_non_null(f);
    size_t n = fread(log, 1, sizeof log - 1, f);
    log[n] = '\0';
    fclose(f);
    if (!strstr(log, "edge/dev") || !strstr(log, "1.3.6.1.2.1.1.1.0") ||
        !strstr(log, "is not a number") || !strstr(log, "1.3.6.1.2.1.25.3.2.1.2.262145"))
        fail_msg("log does not name device, OID and reason:\n%s", log);
    assert_null(strstr(log, "community"));
    unlink(logpath);
    unlink(path);
    rmdir(dir);
    ag_profiles_free(&set);
}

static void test_clickshare_no_profile(void **st)
{
    (void)st;
    SKIP_IF_NO_SIM();
    static rec r;
    poll_once("clickshare_main", NULL, 2, &r);
    assert_int_equal(r.status, AG_POLL_CONFIG);
    assert_non_null(strstr(r.detail, "no profile matches sysObjectID 1.3.6.1.4.1.7312.2468"));
    assert_int_equal(r.npts, 0);
    assert_int_equal(r.ninv, 0);
}

static void test_dead_port_does_not_delay_others(void **st)
{
    (void)st;
    SKIP_IF_NO_SIM();
    static rec dead, live;
    memset(&dead, 0, sizeof dead);
    memset(&live, 0, sizeof live);
    int port = free_udp_port();
    assert_true(port > 0);
    ag_device dd = make_dev("hall9/dead", "public", "epson-projector", port);
    dd.timeout_ms = 1000;
    dd.retries = 0;
    ag_device ld = make_dev("hall1/projector", "epson-projector_eb-4770w", NULL, g_port);
    void *ds = open_dev(&dd, &dead);
    void *ls = open_dev(&ld, &live);
    int64_t start = cm_mono_ms();
    assert_int_equal(ag_snmp_driver.poll(ds), 0);
    assert_int_equal(ag_snmp_driver.poll(ls), 0);
    assert_int_equal(ag_snmp_driver.poll(ds), -1); /* already in flight */
    rec *rs[] = {&dead, &live};
    run_until_done(rs, 2, 10000);
    assert_int_equal(live.status, AG_POLL_OK);
    assert_int_equal(dead.status, AG_POLL_TIMEOUT);
    int64_t live_ms = live.done_mono - start, dead_ms = dead.done_mono - start;
    if (live_ms > 800) fail_msg("live device took %lld ms next to a dead one", (long long)live_ms);
    if (dead_ms < 900 || dead_ms > 2500)
        fail_msg("dead device timed out after %lld ms, want about 1000", (long long)dead_ms);
    assert_near(value_of(&live, "light_source_hours", "lamp=1"), 79);
    assert_int_equal(dead.npts, 0);
    assert_null(strstr(dead.detail, "public")); /* the community is never in a message */
    /* a second poll of the same state works too */
    memset(&live, 0, sizeof live);
    assert_int_equal(ag_snmp_driver.poll(ls), 0);
    rec *rl[] = {&live};
    run_until_done(rl, 1, 10000);
    assert_int_equal(live.status, AG_POLL_OK);
    close_dev(ds);
    close_dev(ls);
}

static void test_close_in_flight(void **st)
{
    (void)st;
    SKIP_IF_NO_SIM();
    static rec r;
    memset(&r, 0, sizeof r);
    int port = free_udp_port();
    ag_device d = make_dev("hall2/projector", "x", NULL, port);
    void *s = open_dev(&d, &r);
    assert_int_equal(ag_snmp_driver.poll(s), 0);
    uv_run(&g_loop, UV_RUN_NOWAIT);
    close_dev(s); /* cancels: no done afterwards, everything freed (ASan checks) */
    assert_int_equal(r.ndone, 0);
    /* closing a state that never polled */
    s = open_dev(&d, &r);
    close_dev(s);
    assert_int_equal(r.ndone, 0);
}

static void test_open_errors(void **st)
{
    (void)st;
    rec r;
    memset(&r, 0, sizeof r);
    ag_sink sink = {&r, on_point, on_inventory, on_done};
    void *state = NULL;
    char err[256] = "";
    ag_device d = make_dev("hall3/ups", "secret-community", "no-such-profile", 161);
    assert_int_equal(ag_snmp_driver.open(&g_loop, &d, &g_profiles, &sink, &state, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "no-such-profile"));
    assert_null(strstr(err, "secret-community"));
    d.profile = NULL;
    d.snmp_version = 3; /* v3 without a user */
    assert_int_equal(ag_snmp_driver.open(&g_loop, &d, &g_profiles, &sink, &state, err, sizeof err),
                     -1);
    assert_null(state);
    assert_non_null(strstr(err, "user"));
    d.v3_user = (char *)"u";
    d.v3_level = 1;
    d.v3_auth_protocol = (char *)"SHA-512-nope";
    d.v3_auth_password = (char *)"secret-auth-password";
    assert_int_equal(ag_snmp_driver.open(&g_loop, &d, &g_profiles, &sink, &state, err, sizeof err),
                     -1);
    assert_null(state);
    assert_non_null(strstr(err, "SHA-512-nope"));
    assert_null(strstr(err, "secret-auth-password"));
    d.snmp_version = 4;
    assert_int_equal(ag_snmp_driver.open(&g_loop, &d, &g_profiles, &sink, &state, err, sizeof err),
                     -1);
    assert_null(state);
    assert_string_equal(ag_poll_status_name(AG_POLL_TIMEOUT), "timeout");
    assert_string_equal(ag_poll_status_name(AG_POLL_OK), "ok");
    assert_string_equal(ag_poll_status_name(AG_POLL_CONFIG), "config");
}


/* ---- SNMPv3 against Debian's snmpd ----------------------------------------------------- */

static pid_t g_snmpd = -1;
static int g_snmpd_pipe = -1;
static int g_v3port;
static char g_v3dir[64];
static int g_v3skip;
static char g_v3skip_why[256];

/* A v3 device of snmpd: user, level, auth protocol/password, priv password (AES). */
static ag_device make_v3(const char *id, const char *user, int level, const char *auth_proto,
                         const char *auth_pw, const char *priv_pw, int port)
{
    ag_device d = make_dev(id, NULL, "generic-snmp-host", port);
    d.snmp_version = 3;
    d.v3_user = (char *)user;
    d.v3_level = level;
    d.v3_auth_protocol = (char *)auth_proto;
    d.v3_auth_password = (char *)auth_pw;
    d.v3_priv_protocol = (char *)"AES";
    d.v3_priv_password = (char *)priv_pw;
    d.timeout_ms = 1000;
    d.retries = 0;
    return d;
}

static void poll_dev(const ag_device *d, rec *r, int64_t max_ms)
{
    memset(r, 0, sizeof *r);
    void *s = open_dev(d, r);
    assert_int_equal(ag_snmp_driver.poll(s), 0);
    assert_int_equal(r->ndone, 0);
    rec *rs[] = {r};
    run_until_done(rs, 1, max_ms);
    close_dev(s);
    assert_int_equal(r->ndone, 1);
}

/* The first line of a command's output ("" when it fails). */
static void run_cmd(const char *cmd, char *out, size_t outlen)
{
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (!p) return;
    if (!fgets(out, (int)outlen, p)) out[0] = '\0';
    pclose(p);
}

static int setup_v3(void **st)
{
    (void)st;
    if (uv_loop_init(&g_loop) != 0) return -1;
    char err[512] = "";
    if (ag_profiles_load_dir("profiles", &g_profiles, err, sizeof err) != 0) {
        fprintf(stderr, "profiles: %s\n", err);
        return -1;
    }
    const char *snmpd = "/usr/sbin/snmpd";
    if (access(snmpd, X_OK) != 0 || access("/usr/bin/snmpget", X_OK) != 0) {
        g_v3skip = 1;
        snprintf(g_v3skip_why, sizeof g_v3skip_why, "snmpd or snmpget not installed");
        return 0;
    }
    snprintf(g_v3dir, sizeof g_v3dir, "/tmp/cinemon-test-snmpv3-XXXXXX");
    if (!mkdtemp(g_v3dir)) return -1;
    char conf[128], persist[128], pidf[128], ep[64];
    snprintf(conf, sizeof conf, "%s/snmpd.conf", g_v3dir);
    snprintf(persist, sizeof persist, "%s/state", g_v3dir);
    snprintf(pidf, sizeof pidf, "%s/snmpd.pid", g_v3dir);
    if (mkdir(persist, 0700) != 0) return -1;
    FILE *f = fopen(conf, "w");
    if (!f) return -1;
    fprintf(f,
            "createUser cinemonSHA SHA \"authpass123\" AES \"privpass123\"\n"
            "createUser cinemonSHA256 SHA-256 \"authpass123\" AES \"privpass123\"\n"
            "createUser cinemonAuth SHA \"authpass123\"\n"
            "rouser cinemonSHA priv\n"
            "rouser cinemonSHA256 priv\n"
            "rouser cinemonAuth auth\n"
            "sysName cinemon-v3\n"
            "dontLogTCPWrappersConnects yes\n"
            "[snmp] persistentDir %s\n",
            persist);
    fclose(f);
    g_v3port = free_udp_port();
    if (g_v3port <= 0) return -1;
    snprintf(ep, sizeof ep, "udp:127.0.0.1:%d", g_v3port);
    setenv("SNMP_PERSISTENT_DIR", persist, 1);
    char *argv[] = {(char *)snmpd, (char *)"-f", (char *)"-Lo", (char *)"-C", (char *)"-c", conf,
                    (char *)"-m", (char *)"", (char *)"-M", (char *)"/dev/null", (char *)"-p",
                    pidf, ep, NULL};
    pid_t saved = g_sim;
    int saved_pipe = g_sim_pipe;
    int rc = start_sim(snmpd, argv); /* the same watchdog as for snmpsimd */
    g_snmpd = g_sim;
    g_snmpd_pipe = g_sim_pipe;
    g_sim = saved;
    g_sim_pipe = saved_pipe;
    unsetenv("SNMP_PERSISTENT_DIR");
    if (rc != 0) return -1;
    int64_t end = cm_mono_ms() + 20000;
    while (cm_mono_ms() < end) {
        int wst;
        if (waitpid(g_snmpd, &wst, WNOHANG) == g_snmpd) {
            g_snmpd = -1;
            fprintf(stderr, "snmpd exited early\n");
            return -1;
        }
        rec r;
        ag_device d = make_v3("probe", "cinemonAuth", 1, "SHA", "authpass123", NULL, g_v3port);
        d.timeout_ms = 300;
        poll_dev(&d, &r, 5000);
        if (r.status == AG_POLL_OK) return 0;
        usleep(200 * 1000);
    }
    fprintf(stderr, "snmpd did not answer SNMPv3 on port %d\n", g_v3port);
    return -1;
}

static int teardown_v3(void **st)
{
    (void)st;
    if (g_snmpd > 0) {
        close(g_snmpd_pipe);
        int wst;
        waitpid(g_snmpd, &wst, 0);
        g_snmpd = -1;
    }
    if (g_v3dir[0]) nftw(g_v3dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    ag_profiles_free(&g_profiles);
    uv_run(&g_loop, UV_RUN_NOWAIT);
    int rc = uv_loop_close(&g_loop);
    if (rc != 0) fprintf(stderr, "loop still has handles: %s\n", uv_strerror(rc));
    return rc == 0 ? 0 : -1;
}

#define SKIP_IF_NO_SNMPD()                                                                         \
    do {                                                                                           \
        if (g_v3skip) {                                                                            \
            fprintf(stderr, "skipped: %s\n", g_v3skip_why);                                        \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* memTotalReal (kB) as snmpget -v3 reads it with the same user. */
static double snmpget_mem_total(const char *args)
{
    char cmd[512], out[256];
    snprintf(cmd, sizeof cmd,
             "MIBS= /usr/bin/snmpget -m '' -M /dev/null -v3 %s -Oqv -t 2 -r 1 127.0.0.1:%d "
             "1.3.6.1.4.1.2021.4.5.0 2>/dev/null",
             args, g_v3port);
    run_cmd(cmd, out, sizeof out);
    char *end = NULL;
    double v = strtod(out, &end);
    if (end == out) fail_msg("snmpget gave no number: '%s'", out);
    return v;
}

static void test_v3_authpriv_sha_aes(void **st)
{
    (void)st;
    SKIP_IF_NO_SNMPD();
    static rec r;
    ag_device d = make_v3("v3/sha", "cinemonSHA", 2, "SHA", "authpass123", "privpass123", g_v3port);
    d.profile = NULL; /* chosen by sysObjectID, read over authPriv */
    poll_dev(&d, &r, 5000);
    if (r.status != AG_POLL_OK) fail_msg("status %s: %s", ag_poll_status_name(r.status), r.detail);
    assert_string_equal(r.profile, "generic-snmp-host");
    double kb = snmpget_mem_total("-l authPriv -u cinemonSHA -a SHA -A authpass123 -x AES "
                                  "-X privpass123");
    assert_near(value_of(&r, "memory_total_bytes", ""), kb * 1024);
    assert_true(value_of(&r, "uptime_seconds", "") > 0);
}

static void test_v3_authpriv_sha256_aes(void **st)
{
    (void)st;
    SKIP_IF_NO_SNMPD();
    static rec r;
    ag_device d =
        make_v3("v3/sha256", "cinemonSHA256", 2, "SHA-256", "authpass123", "privpass123", g_v3port);
    poll_dev(&d, &r, 5000);
    if (r.status != AG_POLL_OK) fail_msg("status %s: %s", ag_poll_status_name(r.status), r.detail);
    double kb = snmpget_mem_total("-l authPriv -u cinemonSHA256 -a SHA-256 -A authpass123 -x AES "
                                  "-X privpass123");
    assert_near(value_of(&r, "memory_total_bytes", ""), kb * 1024);
}

static void test_v3_authnopriv(void **st)
{
    (void)st;
    SKIP_IF_NO_SNMPD();
    static rec r;
    ag_device d = make_v3("v3/auth", "cinemonAuth", 1, "SHA", "authpass123", NULL, g_v3port);
    poll_dev(&d, &r, 5000);
    if (r.status != AG_POLL_OK) fail_msg("status %s: %s", ag_poll_status_name(r.status), r.detail);
    double kb = snmpget_mem_total("-l authNoPriv -u cinemonAuth -a SHA -A authpass123");
    assert_near(value_of(&r, "memory_total_bytes", ""), kb * 1024);
}

static void test_v3_wrong_auth_password(void **st)
{
    (void)st;
    SKIP_IF_NO_SNMPD();
    static rec r;
    ag_device d = make_v3("v3/badauth", "cinemonSHA", 2, "SHA", "wrong-auth-pw", "privpass123",
                          g_v3port);
    poll_dev(&d, &r, 5000);
    if (r.status != AG_POLL_AUTH) fail_msg("status %s: %s", ag_poll_status_name(r.status), r.detail);
    assert_non_null(strstr(r.detail, "usmStatsWrongDigests"));
    assert_null(strstr(r.detail, "wrong-auth-pw"));
    assert_int_equal(r.npts, 0);
    /* the right password again, same user and engine: the user's keys are replaced */
    ag_device ok = make_v3("v3/sha", "cinemonSHA", 2, "SHA", "authpass123", "privpass123",
                           g_v3port);
    poll_dev(&ok, &r, 5000);
    if (r.status != AG_POLL_OK) fail_msg("status %s: %s", ag_poll_status_name(r.status), r.detail);
}

/* A wrong privacy password: the digest is right, so snmpd cannot tell; it fails to parse
 * the decrypted scoped PDU, counts snmpInASNParseErrs and answers nothing: a timeout. */
static void test_v3_wrong_priv_password(void **st)
{
    (void)st;
    SKIP_IF_NO_SNMPD();
    static rec r;
    ag_device d = make_v3("v3/badpriv", "cinemonSHA", 2, "SHA", "authpass123", "wrong-priv-pw",
                          g_v3port);
    poll_dev(&d, &r, 5000);
    if (r.status != AG_POLL_TIMEOUT && r.status != AG_POLL_AUTH)
        fail_msg("status %s: %s", ag_poll_status_name(r.status), r.detail);
    fprintf(stderr, "wrong privacy password: %s (%s)\n", ag_poll_status_name(r.status), r.detail);
    assert_null(strstr(r.detail, "wrong-priv-pw"));
    assert_int_equal(r.npts, 0);
}

static void test_v3_unknown_user(void **st)
{
    (void)st;
    SKIP_IF_NO_SNMPD();
    static rec r;
    ag_device d = make_v3("v3/nouser", "nobodyHere", 2, "SHA", "authpass123", "privpass123",
                          g_v3port);
    poll_dev(&d, &r, 5000);
    if (r.status != AG_POLL_AUTH) fail_msg("status %s: %s", ag_poll_status_name(r.status), r.detail);
    assert_non_null(strstr(r.detail, "usmStatsUnknownUserNames"));
    assert_int_equal(r.npts, 0);
}

/* A user asking for more security than it has keys for at the agent. */
static void test_v3_unsupported_level(void **st)
{
    (void)st;
    SKIP_IF_NO_SNMPD();
    static rec r;
    ag_device d = make_v3("v3/level", "cinemonAuth", 2, "SHA", "authpass123", "privpass123",
                          g_v3port);
    poll_dev(&d, &r, 5000);
    if (r.status != AG_POLL_AUTH) fail_msg("status %s: %s", ag_poll_status_name(r.status), r.detail);
    assert_int_equal(r.npts, 0);
}

/* Engine discovery is asynchronous: a dead v3 device does not hold up a live one. */
static void test_v3_dead_does_not_stall(void **st)
{
    (void)st;
    SKIP_IF_NO_SNMPD();
    static rec dead, live;
    memset(&dead, 0, sizeof dead);
    memset(&live, 0, sizeof live);
    int port = free_udp_port();
    assert_true(port > 0);
    ag_device dd = make_v3("v3/dead", "cinemonSHA", 2, "SHA", "authpass123", "privpass123", port);
    dd.timeout_ms = 1500;
    dd.retries = 1;
    ag_device ld =
        make_v3("v3/live", "cinemonSHA256", 2, "SHA-256", "authpass123", "privpass123", g_v3port);
    int64_t t0 = cm_mono_ms();
    void *ds = open_dev(&dd, &dead);
    void *ls = open_dev(&ld, &live);
    assert_int_equal(ag_snmp_driver.poll(ds), 0);
    assert_int_equal(ag_snmp_driver.poll(ls), 0);
    int64_t after_poll = cm_mono_ms();
    rec *rs[] = {&dead, &live};
    run_until_done(rs, 2, 10000);
    close_dev(ds);
    close_dev(ls);
    if (after_poll - t0 > 200) fail_msg("open+poll blocked for %lld ms", (long long)(after_poll - t0));
    if (live.status != AG_POLL_OK)
        fail_msg("live: %s: %s", ag_poll_status_name(live.status), live.detail);
    assert_int_equal(dead.status, AG_POLL_TIMEOUT);
    int64_t live_ms = live.done_mono - t0, dead_ms = dead.done_mono - t0;
    if (live_ms > 800) fail_msg("live v3 device took %lld ms next to a dead one", (long long)live_ms);
    if (dead_ms < 2800 || dead_ms > 4500)
        fail_msg("dead v3 device timed out after %lld ms, want about 3000", (long long)dead_ms);
    assert_true(count_of(&live, "memory_total_bytes") == 1);
}

/* ---- request economy, against cinemon-sim --bench-devices 1 ---------------------------- */

static pid_t g_bench_sim = -1;
static char g_bench_log[64];
static int g_bench_port;

/* build/cinemon-sim next to this test's folder (build/tests/test_snmp), or "" */
static void find_cinemon_sim(char *out, size_t outlen)
{
    char self[512];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    out[0] = '\0';
    if (n <= 0) return;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) *slash = '\0'; /* .../build/tests */
    slash = strrchr(self, '/');
    if (slash) *slash = '\0'; /* .../build */
    snprintf(out, outlen, "%s/cinemon-sim", self);
    if (access(out, X_OK) != 0) out[0] = '\0';
}

static int setup_bench(void **st)
{
    (void)st;
    g_skip = 0;
    if (uv_loop_init(&g_loop) != 0) return -1;
    char err[512] = "", sim[600];
    if (ag_profiles_load_dir("profiles", &g_profiles, err, sizeof err) != 0) {
        fprintf(stderr, "profiles: %s\n", err);
        return -1;
    }
    find_cinemon_sim(sim, sizeof sim);
    if (!sim[0]) {
        g_skip = 1;
        snprintf(g_skip_why, sizeof g_skip_why, "cinemon-sim is not built next to the tests");
        return 0;
    }
    snprintf(g_bench_log, sizeof g_bench_log, "/tmp/cinemon-test-snmp-sim-XXXXXX");
    int lfd = mkstemp(g_bench_log);
    g_bench_port = free_udp_port();
    if (lfd < 0 || g_bench_port <= 0) return -1;
    char port[16];
    snprintf(port, sizeof port, "%d", g_bench_port);
    g_bench_sim = fork();
    if (g_bench_sim < 0) return -1;
    if (g_bench_sim == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        dup2(lfd, 2);
        execl(sim, sim, "--bench-devices", "1", "--base-port", port, (char *)NULL);
        _exit(127);
    }
    close(lfd);
    for (int i = 0; i < 200; i++) { /* the banner follows the bind */
        char buf[512] = "";
        FILE *f = fopen(g_bench_log, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        buf[n] = '\0';
        if (strstr(buf, "benchmark SNMP devices")) return 0;
        int wst;
        if (waitpid(g_bench_sim, &wst, WNOHANG) == g_bench_sim) {
            g_bench_sim = -1;
            fprintf(stderr, "cinemon-sim exited early: %s\n", buf);
            return -1;
        }
        usleep(25 * 1000);
    }
    fprintf(stderr, "cinemon-sim did not start\n");
    return -1;
}

/* Stop the simulator; the number of requests it served (its exit counters), or -1. */
static long stop_bench_sim(void)
{
    if (g_bench_sim <= 0) return -1;
    kill(g_bench_sim, SIGTERM);
    int wst;
    waitpid(g_bench_sim, &wst, 0);
    g_bench_sim = -1;
    char buf[2048] = "";
    FILE *f = fopen(g_bench_log, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
    const char *p = strstr(buf, " requests,");
    if (!p) return -1;
    while (p > buf && p[-1] >= '0' && p[-1] <= '9')
        p--;
    return strtol(p, NULL, 10);
}

static int teardown_bench(void **st)
{
    (void)st;
    stop_bench_sim();
    if (g_bench_log[0]) unlink(g_bench_log);
    ag_profiles_free(&g_profiles);
    uv_run(&g_loop, UV_RUN_NOWAIT);
    int rc = uv_loop_close(&g_loop);
    if (rc != 0) fprintf(stderr, "loop still has handles: %s\n", uv_strerror(rc));
    return rc == 0 ? 0 : -1;
}

/* 40 scalars and a 20x5 table: every value at every poll, in at most 4 requests the first
 * time (one GET for all scalars, GETBULKs sized for the table) and 3 afterwards (the table's
 * row count is remembered: one GETBULK as large as the simulator's 1472-byte answers allow,
 * and one for the rest); the buffers kept from poll to poll hold no stale rows. */
static void test_bench_device_requests(void **st)
{
    (void)st;
    SKIP_IF_NO_SIM();
    ag_device d = make_dev("bench/dev0001", "public", "sim-bench", g_bench_port);
    static rec r;
    memset(&r, 0, sizeof r);
    void *s = open_dev(&d, &r);
    const int polls = 4;
    for (int i = 0; i < polls; i++) {
        memset(&r, 0, sizeof r);
        assert_int_equal(ag_snmp_driver.poll(s), 0);
        rec *rs[] = {&r};
        run_until_done(rs, 1, 10000);
        if (r.status != AG_POLL_OK)
            fail_msg("poll %d: %s: %s", i + 1, ag_poll_status_name(r.status), r.detail);
        assert_int_equal(r.npts, 140);
        assert_int_equal(count_of(&r, "bench_row_integer"), 20);
        assert_int_equal(count_of(&r, "bench_row_text_value"), 20);
        for (int row = 1; row <= 20; row++) {
            char l[16];
            snprintf(l, sizeof l, "row=%d", row);
            (void)value_of(&r, "bench_row_counter64_total", l); /* exactly one per row */
        }
    }
    close_dev(s);
    long reqs = stop_bench_sim();
    if (reqs < 0) fail_msg("cinemon-sim printed no request counter");
    if (reqs > 4 + 3 * (polls - 1))
        fail_msg("%ld requests for %d polls of 140 values, want at most %d", reqs, polls,
                 4 + 3 * (polls - 1));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_christie_auto),
        cmocka_unit_test(test_christie_v1),
        cmocka_unit_test(test_epson),
        cmocka_unit_test(test_epson_v1_walk),
        cmocka_unit_test(test_host_name),
        cmocka_unit_test(test_apc),
        cmocka_unit_test(test_generex_negative),
        cmocka_unit_test(test_delta_null),
        cmocka_unit_test(test_linux_minimal),
        cmocka_unit_test(test_linux_full),
        cmocka_unit_test(test_clickshare_no_profile),
        cmocka_unit_test(test_unmappable_and_limits),
        cmocka_unit_test(test_dead_port_does_not_delay_others),
        cmocka_unit_test(test_close_in_flight),
    };
    const struct CMUnitTest v3tests[] = {
        cmocka_unit_test(test_v3_authpriv_sha_aes),
        cmocka_unit_test(test_v3_authpriv_sha256_aes),
        cmocka_unit_test(test_v3_authnopriv),
        cmocka_unit_test(test_v3_wrong_auth_password),
        cmocka_unit_test(test_v3_wrong_priv_password),
        cmocka_unit_test(test_v3_unknown_user),
        cmocka_unit_test(test_v3_unsupported_level),
        cmocka_unit_test(test_v3_dead_does_not_stall),
    };
    const struct CMUnitTest benchtests[] = {
        cmocka_unit_test(test_bench_device_requests),
    };
    int failed = cmocka_run_group_tests_name("snmp driver", tests, setup, teardown);
    failed += cmocka_run_group_tests_name("snmp driver requests", benchtests, setup_bench,
                                          teardown_bench);
    failed += cmocka_run_group_tests_name("snmp driver v3", v3tests, setup_v3, teardown_v3);
    return failed;
}

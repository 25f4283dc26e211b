/* rules_bench.c — what judging costs at ingest, and how soon a webhook hears of an alert.
 *
 *   rules_bench [--quick]      (run from the repository root: reads collector/rules)
 *
 * 1. Ingest throughput through the collector's writer (group commit into SQLite,
 *    synchronous=FULL) with the shipped rules off and on, on the same data: 30 halls, each
 *    batch one poll round of a hall (a light/sound sensor, a projector, an audio processor, a
 *    media server and an LED controller: 140 values per device, of which the rule-judged
 *    metrics are the real ones and the rest carry no rule), 4 submitting threads. The
 *    figure is the ratio.
 * 2. Alert latency: a batch whose luminance readings break the hold is submitted; the time
 *    until a webhook receiver (libmicrohttpd on loopback) gets the notification. */
#include <limits.h>
#include <sys/resource.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "collector/alerting.h"
#include "batch.h"
#include "collector/config.h"
#include "log.h"
#include "collector/store.h"
#include "timeutil.h"
#include "collector/writer.h"

#define HALLS 30
#define THREADS 4

static int g_rounds = 40; /* poll rounds per hall */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "rules_bench: %s: %s\n", what, err);
    exit(1);
}

/* One poll round of hall h at ts: 5 devices x 140 values. */
static void make_round(cm_batch *b, int h, uint64_t seq, int64_t ts)
{
    char agent[32], dev[64], lv[16];
    snprintf(agent, sizeof agent, "bench-%02d", h);
    cm_batch_init(b);
    cm_batch_set_agent(b, agent, "bench", agent);
    b->seq = seq;
    b->sent_ms = ts;
    double jitter = (double)(seq % 7) * 0.1;
    /* sensor: luminance, white point, SPL per channel (all judged) */
    snprintf(dev, sizeof dev, "hall%d/sensor", h);
    cm_label mode = {"mode", "2d"};
    cm_batch_add_point(b, dev, "screen_luminance_nits", "nits", &mode, 1, ts, 47.5 + jitter);
    cm_batch_add_point(b, dev, "white_x", NULL, NULL, 0, ts, 0.314);
    cm_batch_add_point(b, dev, "white_y", NULL, NULL, 0, ts, 0.351);
    static const char *const ch[] = {"L", "C", "R", "Ls", "Rs", "LFE"};
    for (int i = 0; i < 6; i++) {
        cm_label l = {"channel", ch[i]};
        cm_batch_add_point(b, dev, "spl_dbc", "dB", &l, 1, ts, 85.0 + jitter);
    }
    for (int i = 0; i < 140 - 9; i++) {
        snprintf(lv, sizeof lv, "%d", i);
        cm_label l = {"n", lv};
        cm_batch_add_point(b, dev, "sensor_raw", NULL, &l, 1, ts, i + jitter);
    }
    /* projector: temperatures, fans, power, lamp (judged) + status counters (not) */
    snprintf(dev, sizeof dev, "hall%d/projector", h);
    for (int i = 0; i < 17; i++) {
        snprintf(lv, sizeof lv, "s%d", i);
        cm_label l = {"sensor", lv};
        cm_batch_add_point(b, dev, "temperature_celsius", "celsius", &l, 1, ts, 40 + i % 5);
    }
    for (int i = 0; i < 4; i++) {
        snprintf(lv, sizeof lv, "%d", i);
        cm_label l = {"fan", lv};
        cm_batch_add_point(b, dev, "fan_speed_rpm", "rpm", &l, 1, ts, 2400 + i);
    }
    cm_batch_add_point(b, dev, "power_state", NULL, NULL, 0, ts, 1);
    cm_label lamp = {"lamp", "1"};
    cm_batch_add_point(b, dev, "light_source_hours", "h", &lamp, 1, ts, 3000 + (double)seq);
    for (int i = 0; i < 140 - 23; i++) {
        snprintf(lv, sizeof lv, "%d", i);
        cm_label l = {"n", lv};
        cm_batch_add_point(b, dev, "projector_counter", NULL, &l, 1, ts, (double)(seq * 10 + i));
    }
    /* audio processor, media server, LED: mostly unjudged values, a few judged */
    static const char *const other[] = {"audio", "ims", "led"};
    for (int d = 0; d < 3; d++) {
        snprintf(dev, sizeof dev, "hall%d/%s", h, other[d]);
        if (d == 2)
            for (int i = 0; i < 20; i++) {
                snprintf(lv, sizeof lv, "C%d", i);
                cm_label l = {"cabinet", lv};
                cm_batch_add_point(b, dev, "led_cabinet_online", NULL, &l, 1, ts, 1);
            }
        for (int i = 0; i < (d == 2 ? 120 : 140); i++) {
            snprintf(lv, sizeof lv, "%d", i);
            cm_label l = {"n", lv};
            cm_batch_add_point(b, dev, "other_value", NULL, &l, 1, ts, i);
        }
    }
}

typedef struct worker {
    co_writer *w;
    int first_hall, nhalls;
    int64_t t0;
} worker;

static void *submitter(void *arg)
{
    worker *k = arg;
    char err[256];
    for (int r = 1; r <= g_rounds; r++)
        for (int h = k->first_hall; h < k->first_hall + k->nhalls; h++) {
            cm_batch b;
            make_round(&b, h, (uint64_t)r, k->t0 + (int64_t)r * 60000);
            co_batch_result res;
            if (co_writer_submit(k->w, &b, &res, err, sizeof err) != 0) die("submit", err);
            cm_batch_free(&b);
        }
    return NULL;
}

/* ---- the webhook receiver */

static pthread_mutex_t rx_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rx_cv = PTHREAD_COND_INITIALIZER;
static int rx_count;
static double rx_last;

static enum MHD_Result on_hook(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **state)
{
    (void)cls, (void)url, (void)method, (void)version, (void)data;
    if (!*state) {
        *state = (void *)1;
        return MHD_YES;
    }
    if (*size) {
        *size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&rx_mu);
    rx_count++;
    rx_last = now_s();
    pthread_cond_broadcast(&rx_cv);
    pthread_mutex_unlock(&rx_mu);
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ok = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ok;
}

static void write_ini(const char *path, const char *db, const char *rules, int enabled,
                      unsigned hook_port)
{
    FILE *f = fopen(path, "w");
    if (!f) die("ini", path);
    fprintf(f, "[collector]\nlog_level = warn\n[store]\npath = %s\n[rules]\nenabled = %s\n"
               "dir = %s\ntick = 1s\n",
            db, enabled ? "true" : "false", rules);
    if (hook_port)
        fprintf(f, "[webhook \"bench\"]\nurl = http://127.0.0.1:%u/hook\nrate_per_minute = 0\n",
                hook_port);
    fclose(f);
}

typedef struct run {
    co_store *s;
    co_writer *w;
    co_alerting *a;
    co_config cfg;
} run;

static void run_open(run *r, const char *dir, const char *name, const char *rules, int enabled,
                     unsigned hook_port)
{
    char ini[PATH_MAX], db[PATH_MAX], err[512];
    snprintf(ini, sizeof ini, "%s/%s.ini", dir, name);
    snprintf(db, sizeof db, "%s/%s.db", dir, name);
    write_ini(ini, db, rules, enabled, hook_port);
    if (co_config_load(&r->cfg, ini, err, sizeof err) != 0) die("config", err);
    if (co_config_open_store(&r->cfg, &r->s, err, sizeof err) != 0) die("store", err);
    if (co_writer_start(&r->w, r->s, 256, err, sizeof err) != 0) die("writer", err);
    if (co_alerting_start(&r->a, r->s, &r->cfg, err, sizeof err) != 0) die("alerting", err);
    if (enabled) co_writer_set_hook(r->w, co_alerting_judge, r->a);
}

static void run_close(run *r)
{
    co_writer_stop(r->w);
    co_alerting_stop(r->a, 2000);
    co_store_close(r->s);
    co_config_free(&r->cfg);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double g_cpu_per_m; /* CPU seconds per million samples of the last throughput() */

/* Samples per second through the writer (and g_cpu_per_m). */
static double throughput(run *r)
{
    double c0 = cpu_s();
    pthread_t th[THREADS];
    worker k[THREADS];
    int64_t t0 = cm_now_ms() - (int64_t)g_rounds * 60000;
    double t = now_s();
    for (int i = 0; i < THREADS; i++) {
        k[i] = (worker){r->w, 1 + i * (HALLS / THREADS), HALLS / THREADS, t0};
        if (i == THREADS - 1) k[i].nhalls = HALLS - i * (HALLS / THREADS);
        pthread_create(&th[i], NULL, submitter, &k[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    double dt = now_s() - t;
    co_writer_stats st;
    co_writer_stats_get(r->w, &st);
    g_cpu_per_m = (cpu_s() - c0) / ((double)st.samples / 1e6);
    return (double)st.samples / dt;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--quick")) g_rounds = 5;
    cm_log_init("rules_bench", CM_LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char rules[PATH_MAX];
    if (!realpath("collector/rules", rules)) die("collector/rules", "run from the repository root");
    char dir[] = "/tmp/cinemon-rules-bench-XXXXXX";
    if (!mkdtemp(dir)) die("mkdtemp", dir);

    printf("ingest through the writer (SQLite, synchronous=FULL, group commit), %d halls x %d "
           "rounds x 700 values, %d submitting threads:\n",
           HALLS, g_rounds, THREADS);
    /* off and on alternate, 3 times each, on fresh databases: the medians are compared, so
     * the disk's moods do not decide the ratio */
    enum { REPS = 3 };
    double r_off[REPS], r_on[REPS], c_off[REPS], c_on[REPS];
    co_alerting_stats as = {0};
    for (int k = 0; k < REPS; k++) {
        char name[32];
        run off, on;
        snprintf(name, sizeof name, "off%d", k);
        run_open(&off, dir, name, rules, 0, 0);
        r_off[k] = throughput(&off);
        c_off[k] = g_cpu_per_m;
        run_close(&off);
        snprintf(name, sizeof name, "on%d", k);
        run_open(&on, dir, name, rules, 1, 0);
        r_on[k] = throughput(&on);
        c_on[k] = g_cpu_per_m;
        co_alerting_stats_get(on.a, &as);
        run_close(&on);
    }
    qsort(r_off, REPS, sizeof r_off[0], cmp_d);
    qsort(r_on, REPS, sizeof r_on[0], cmp_d);
    double m_off = r_off[REPS / 2], m_on = r_on[REPS / 2];
    printf("  rules off: %10.0f samples/s (median of %d; %0.f..%0.f)\n", m_off, REPS, r_off[0],
           r_off[REPS - 1]);
    printf("  rules on:  %10.0f samples/s (median of %d; %0.f..%0.f; %llu samples judged, %llu "
           "transitions in the last run)\n",
           m_on, REPS, r_on[0], r_on[REPS - 1], as.samples, as.transitions);
    qsort(c_off, REPS, sizeof c_off[0], cmp_d);
    qsort(c_on, REPS, sizeof c_on[0], cmp_d);
    printf("  ratio on/off: %.2f in throughput (the disk's fsyncs dominate); CPU %.2f s per "
           "million samples off, %.2f on: judging costs %.0f%% more CPU\n",
           m_on / m_off, c_off[REPS / 2], c_on[REPS / 2],
           100.0 * (c_on[REPS / 2] / c_off[REPS / 2] - 1.0));

    /* alert latency: committing batch -> webhook */
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0,
                                            NULL, NULL, on_hook, NULL, MHD_OPTION_END);
    if (!d) die("receiver", "cannot listen");
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    run lat;
    run_open(&lat, dir, "latency", rules, 1, di->port);
    enum { N = 20 };
    double ms[N];
    char err[256];
    for (int i = 0; i < N; i++) {
        cm_batch b;
        char dev[32];
        snprintf(dev, sizeof dev, "hall%d/sensor", 100 + i);
        cm_batch_init(&b);
        cm_batch_set_agent(&b, "lat", "bench", "latency-site");
        b.seq = (uint64_t)i + 1;
        int64_t ts = cm_now_ms() - 300000;
        cm_label mode = {"mode", "2d"};
        for (int k = 0; k < 3; k++) /* the hold: 3 samples below 37.8 */
            cm_batch_add_point(&b, dev, "screen_luminance_nits", "nits", &mode, 1,
                               ts + k * 60000, 30.0);
        pthread_mutex_lock(&rx_mu);
        int before = rx_count;
        pthread_mutex_unlock(&rx_mu);
        double t = now_s();
        co_batch_result res;
        if (co_writer_submit(lat.w, &b, &res, err, sizeof err) != 0) die("submit", err);
        cm_batch_free(&b);
        pthread_mutex_lock(&rx_mu);
        while (rx_count == before) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_sec += 10;
            if (pthread_cond_timedwait(&rx_cv, &rx_mu, &dl) != 0) die("latency", "no webhook in 10 s");
        }
        ms[i] = (rx_last - t) * 1000.0;
        pthread_mutex_unlock(&rx_mu);
    }
    run_close(&lat);
    MHD_stop_daemon(d);
    qsort(ms, N, sizeof ms[0], cmp_d);
    printf("alert latency, submit of the committing batch -> webhook received (%d alerts):\n"
           "  median %.1f ms, p95 %.1f ms, max %.1f ms\n",
           N, ms[N / 2], ms[(N * 95) / 100 - 1], ms[N - 1]);

    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "rules_bench: could not remove %s\n", dir);
    curl_global_cleanup();
    return 0;
}

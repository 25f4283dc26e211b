/* main.c — cinemon-agent: poll the devices of one cinema, spool, upload. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <uv.h>

#include "batcher.h"
#include "config.h"
#include "driver.h"
#include "log.h"
#include "tokenfile.h"
#include "poller.h"
#include "profile.h"
#include "selfmetrics.h"
#include "spool.h"
#include "timeutil.h"
#include "traps.h"
#include "uploader.h"

#ifndef CINEMON_VERSION
#define CINEMON_VERSION "0.1.0"
#endif

/* How long a clean shutdown tries to upload what the spool holds (nothing is lost either
 * way: it stays on disk for the next start). */
#define SHUTDOWN_FLUSH_MS 5000
/* --rounds: devices polled at the same time (each keeps its requests in memory until
 * answered). */
#define ROUND_MAX_IN_FLIGHT 128

typedef struct agent {
    uv_loop_t loop;
    ag_config cfg;
    ag_profile_set profiles;
    ag_poller *poller;
    ag_traps *traps; /* [traps]: NULL = no receiver */
    cm_spool *spool;
    ag_batcher *batcher;
    ag_uploader *uploader;
    ag_selfmetrics self;
    uv_timer_t self_timer, stop_timer;
    uv_signal_t sigterm, sigint;
    /* --once */
    int once;
    size_t polls_done, polls_ok;
    /* --rounds N: every device polled together, N times back to back, timed */
    int rounds, round_no;
    size_t round_started, round_ok;
    int64_t round_t0_us;
    struct rusage round_ru0;
    ag_batcher_stats round_bs0;
    double *round_wall, *round_cpu;
    uv_timer_t round_timer;
    int stopping;
    int64_t stop_deadline_ms;
} agent;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cinemon-agent -c agent.ini [--once | --rounds N | --check-config] [-v]\n"
            "  -c, --config FILE   the agent's INI configuration\n"
            "      --once          poll every device once, print one JSON object per sample, exit\n"
            "      --rounds N      poll every device together (128 at a time), N times back to\n"
            "                      back, through the batcher and the spool like the daemon but\n"
            "                      without uploading; print one JSON line of timing per round\n"
            "                      and a summary, exit (capacity planning; make bench)\n"
            "      --check-config  validate the configuration and every profile it uses, exit\n"
            "  -v, --verbose       debug logging\n"
            "      --version       print the version\n");
}

/* ---- --once: print every sample as a JSON line ---- */

static void once_point(void *ud, const ag_device *dev, const char *metric, const char *unit,
                       const cm_label *labels, size_t nlabels, int64_t ts_ms, double value)
{
    (void)ud;
    (void)unit;
    json_t *l = json_object();
    for (size_t i = 0; i < nlabels; i++)
        json_object_set_new(l, labels[i].key, json_string(labels[i].value));
    json_t *o = json_pack("{s:s, s:s, s:o, s:f, s:I}", "device", dev->id, "metric", metric,
                          "labels", l, "value", value, "ts_ms", (json_int_t)ts_ms);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    if (s) printf("%s\n", s);
    free(s);
    json_decref(o);
}

static void shutdown_agent(agent *a);

static void once_done(void *ud, const ag_device *dev, ag_poll_status st, const char *detail)
{
    agent *a = ud;
    (void)dev;
    (void)detail;
    a->polls_done++;
    if (st == AG_POLL_OK) a->polls_ok++;
    if (a->polls_done == a->cfg.ndevices) shutdown_agent(a);
}

/* ---- daemon: samples into the batcher ---- */

static void batch_point(void *ud, const ag_device *dev, const char *metric, const char *unit,
                        const cm_label *labels, size_t nlabels, int64_t ts_ms, double value)
{
    agent *a = ud;
    if (ag_batcher_add_point(a->batcher, dev->id, metric, unit, labels, nlabels, ts_ms, value) != 0)
        cm_log_limited("batch-add", 60, CM_LOG_WARN,
                       "device %s: sample %s refused (not a finite number, bad label or out of "
                       "memory)",
                       dev->id, metric);
}

static void batch_inventory(void *ud, const ag_device *dev, const cm_device_info *info)
{
    agent *a = ud;
    cm_device_info d = *info;
    d.id = dev->id;
    if (!d.screen) d.screen = dev->screen;
    if (!d.kind) d.kind = dev->kind;
    ag_batcher_add_device(a->batcher, &d);
}

/* A trap from a device became an event: into the batch like the samples. */
static void batch_event(void *ud, const cm_event *e)
{
    agent *a = ud;
    if (a->batcher && ag_batcher_add_event(a->batcher, e) != 0)
        cm_log_limited("batch-event", 60, CM_LOG_WARN, "device %s: trap event %s refused",
                       e->device, e->code);
}

/* ---- --rounds N: timed polling rounds through the daemon's batcher and spool ---- */

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int64_t mono_us(void)
{
    return (int64_t)(uv_hrtime() / 1000);
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double median(double *v, int n)
{
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void on_round_end(uv_timer_t *t);

/* The poller ended the round: measure once the batcher sealed its samples at the end of
 * this loop iteration. */
static void round_ended(void *ud)
{
    agent *a = ud;
    uv_timer_start(&a->round_timer, on_round_end, 0, 0);
}

static void start_round(agent *a)
{
    a->round_ok = 0;
    ag_batcher_stats_get(a->batcher, &a->round_bs0);
    getrusage(RUSAGE_SELF, &a->round_ru0);
    a->round_t0_us = mono_us();
    long n = ag_poller_poll_all(a->poller, ROUND_MAX_IN_FLIGHT, round_ended, a);
    a->round_started = n > 0 ? (size_t)n : 0;
    if (n < 0) round_ended(a);
}

/* The next loop iteration after the last poll of a round ended: its samples were sealed into
 * the spool at the end of the previous iteration (the batcher's check handle). */
static void on_round_end(uv_timer_t *t)
{
    agent *a = t->data;
    char err[256];
    if (ag_batcher_seal(a->batcher, NULL, err, sizeof err) < 0)
        cm_error("cannot spool the samples of round %d: %s", a->round_no + 1, err);
    int64_t wall_us = mono_us() - a->round_t0_us;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    ag_batcher_stats bs;
    ag_batcher_stats_get(a->batcher, &bs);
    double user = tv_s(ru.ru_utime) - tv_s(a->round_ru0.ru_utime);
    double sys = tv_s(ru.ru_stime) - tv_s(a->round_ru0.ru_stime);
    a->round_wall[a->round_no] = (double)wall_us / 1e6;
    a->round_cpu[a->round_no] = user + sys;
    printf("{\"round\":%d,\"devices\":%zu,\"ok\":%zu,\"wall_s\":%.6f,\"cpu_s\":%.6f,"
           "\"user_s\":%.6f,\"sys_s\":%.6f,\"samples\":%llu,\"records\":%llu}\n",
           a->round_no + 1, a->round_started, a->round_ok, (double)wall_us / 1e6, user + sys, user,
           sys, (unsigned long long)(bs.samples - a->round_bs0.samples),
           (unsigned long long)(bs.records - a->round_bs0.records));
    fflush(stdout);
    if (++a->round_no < a->rounds && !a->stopping) {
        start_round(a);
        return;
    }
    /* The summary leaves out round 1, which also opens the sessions (unless it is the only). */
    int skip = a->rounds > 1 ? 1 : 0;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"summary\":true,\"rounds\":%d,\"devices\":%zu,\"wall_s_median\":%.6f,"
           "\"cpu_s_median\":%.6f,\"max_rss_kb\":%ld}\n",
           a->round_no, a->cfg.ndevices, median(a->round_wall + skip, a->round_no - skip),
           median(a->round_cpu + skip, a->round_no - skip), ru.ru_maxrss);
    fflush(stdout);
    shutdown_agent(a);
}

static void rounds_done(void *ud, const ag_device *dev, ag_poll_status st, const char *detail)
{
    agent *a = ud;
    (void)dev;
    (void)detail;
    if (st == AG_POLL_OK) a->round_ok++;
}

/* A record reached the spool: the uploader decides whether it is time to send. */
static void on_record(void *ud, uint64_t seq, size_t len)
{
    agent *a = ud;
    (void)seq;
    if (a->uploader) ag_uploader_notify(a->uploader, len);
}

/* Every upload interval: the agent's own health goes into the batch like any device's. */
static void on_self_timer(uv_timer_t *t)
{
    agent *a = t->data;
    cm_spool_stats sp;
    ag_uploader_stats up;
    cm_spool_stats_get(a->spool, &sp);
    ag_uploader_stats_get(a->uploader, &up);
    int64_t now = cm_now_ms();
    int rc = ag_selfmetrics_write(&a->self, ag_batcher_current(a->batcher), &sp, &up, now);
    if (a->traps) {
        ag_traps_stats ts;
        ag_traps_stats_get(a->traps, &ts);
        if (ag_selfmetrics_write_traps(ag_batcher_current(a->batcher), &ts, now) != 0) rc = -1;
    }
    if (rc != 0)
        cm_log_limited("self-metrics", 60, CM_LOG_WARN, "self-metrics: a sample was refused");
}

/* Seal what the batcher holds into the spool now (it is synced as the policy says). */
static void seal_now(agent *a)
{
    char err[256];
    if (a->batcher && ag_batcher_seal(a->batcher, NULL, err, sizeof err) < 0)
        cm_error("cannot spool the last samples: %s", err);
    if (a->spool && cm_spool_sync(a->spool, err, sizeof err) != 0)
        cm_error("spool: cannot sync: %s", err);
}

static void close_all(agent *a)
{
    if (a->traps) ag_traps_close(a->traps);
    a->traps = NULL;
    if (a->poller) ag_poller_close(a->poller);
    a->poller = NULL;
    if (a->uploader) ag_uploader_close(a->uploader);
    a->uploader = NULL;
    seal_now(a);
    if (a->batcher) ag_batcher_close(a->batcher);
    a->batcher = NULL;
    uv_close((uv_handle_t *)&a->self_timer, NULL);
    uv_close((uv_handle_t *)&a->stop_timer, NULL);
    uv_close((uv_handle_t *)&a->round_timer, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
}

/* While stopping: wait until the spool is uploaded or the deadline passed. */
static void on_stop_timer(uv_timer_t *t)
{
    agent *a = t->data;
    /* Closed here, never from inside a driver callback that may have called us. */
    if (a->traps) {
        ag_traps_close(a->traps);
        a->traps = NULL;
    }
    if (a->poller) {
        ag_poller_close(a->poller);
        a->poller = NULL;
        seal_now(a);
        if (a->uploader) ag_uploader_flush(a->uploader);
    }
    cm_spool_stats sp = {0};
    if (a->spool) cm_spool_stats_get(a->spool, &sp);
    int pending = a->uploader && (sp.records > 0 || ag_uploader_busy(a->uploader));
    if (pending && cm_mono_ms() < a->stop_deadline_ms) return;
    if (pending)
        cm_info("stopping with %llu record(s) not yet acknowledged by the collector; they stay "
                "in the spool and are sent at the next start",
                (unsigned long long)sp.records);
    uv_timer_stop(t);
    close_all(a);
}

static void shutdown_agent(agent *a)
{
    if (a->stopping) return;
    a->stopping = 1;
    uv_timer_stop(&a->self_timer);
    if (!a->once) seal_now(a);
    /* --rounds: what the spool holds is sent at the next start, as after any stop. */
    a->stop_deadline_ms = a->rounds ? 0 : cm_mono_ms() + SHUTDOWN_FLUSH_MS;
    uv_timer_start(&a->stop_timer, on_stop_timer, 0, 50);
}

static void on_signal(uv_signal_t *s, int signum)
{
    agent *a = s->data;
    cm_info("signal %d: stopping", signum);
    shutdown_agent(a);
}

/* Open the spool as [spool] says and tell what start-up recovery found. */
static int open_spool(agent *a, char *err, size_t errlen)
{
    cm_spool_opts so = {.dir = a->cfg.spool_dir,
                        .segment_bytes = a->cfg.spool_segment_bytes,
                        .max_bytes = a->cfg.spool_max_bytes,
                        .min_free_bytes = a->cfg.spool_min_free_bytes,
                        .fsync = (cm_fsync_policy)a->cfg.spool_fsync};
    cm_spool_recovery rep = {0};
    if (cm_spool_open(&a->spool, &so, &rep, err, errlen) != 0) return -1;
    if (rep.truncated_bytes || rep.corrupt_records)
        cm_warn("spool %s: recovery cut %llu torn byte(s) and skipped %llu corrupt record(s) "
                "(%llu gap record(s) tell the collector)",
                a->cfg.spool_dir, (unsigned long long)rep.truncated_bytes,
                (unsigned long long)rep.corrupt_records, (unsigned long long)rep.gaps);
    cm_spool_stats st;
    cm_spool_stats_get(a->spool, &st);
    if (st.records) /* the spool logs its own summary; this adds where the upload resumes */
        cm_info("spool %s: %llu record(s) waiting for upload, oldest seq %llu, next seq %llu",
                a->cfg.spool_dir, (unsigned long long)st.records, (unsigned long long)st.first_seq,
                (unsigned long long)st.next_seq);
    return 0;
}

/* Every device must name a loaded profile (or none, for sysObjectID selection). */
static int check_profiles(const agent *a, char *err, size_t errlen)
{
    for (size_t i = 0; i < a->cfg.ndevices; i++) {
        const ag_device *d = &a->cfg.devices[i];
        if (!ag_driver_find(d->protocol)) {
            snprintf(err, errlen,
                     "%s:%d: [device \"%s\"]: protocol '%s' is not supported by this "
                     "build",
                     a->cfg.path, d->line, d->id, d->protocol);
            return -1;
        }
        const ag_profile *p = d->profile ? ag_profile_find(&a->profiles, d->profile) : NULL;
        if (p && strcmp(p->protocol, d->protocol) != 0) {
            snprintf(err, errlen, "%s:%d: [device \"%s\"]: profile '%s' speaks %s, the device %s",
                     a->cfg.path, d->line, d->id, d->profile, p->protocol, d->protocol);
            return -1;
        }
        if (d->profile && !p) {
            snprintf(err, errlen, "%s:%d: [device \"%s\"]: profile '%s' not found in %s",
                     a->cfg.path, d->line, d->id, d->profile, a->cfg.profiles_dir);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"once", no_argument, 0, 'o'},
        {"check-config", no_argument, 0, 'k'}, {"rounds", required_argument, 0, 'r'},
        {"verbose", no_argument, 0, 'v'},      {"version", no_argument, 0, 'V'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *cfg_path = NULL;
    int once = 0, check = 0, verbose = 0, rounds = 0, c;
    char *end;
    while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg_path = optarg;
            break;
        case 'o':
            once = 1;
            break;
        case 'k':
            check = 1;
            break;
        case 'r':
            rounds = (int)strtol(optarg, &end, 10);
            if (*end || rounds < 1 || rounds > 100000) {
                fprintf(stderr, "cinemon-agent: --rounds: expected 1..100000, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'v':
            verbose = 1;
            break;
        case 'V':
            printf("cinemon-agent %s\n", CINEMON_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!cfg_path || optind != argc || once + check + (rounds > 0) > 1) {
        usage(stderr);
        return 2;
    }
    cm_log_init("cinemon-agent", verbose ? CM_LOG_DEBUG : CM_LOG_INFO);
#ifdef __GLIBC__
    /* Every round allocates and frees the same few large buffers (a batch's JSON and gzip
     * copy, zlib's state): keep them in the heap instead of mapping, zero-filling and
     * unmapping them each time (a tenth of a polling round's CPU; make bench). The heap then
     * stays at its peak, which is what the agent needs at the next round anyway. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
#endif

    static agent a;
    char err[1024];
    if (ag_config_load(&a.cfg, cfg_path, err, sizeof err) != 0) {
        fprintf(stderr, "cinemon-agent: %s\n", err);
        return 2;
    }
    cm_log_level lvl;
    if (!verbose && a.cfg.log_level) {
        if (cm_log_level_parse(a.cfg.log_level, &lvl) != 0) {
            fprintf(stderr, "cinemon-agent: %s: log_level must be debug, info, warn or error\n",
                    cfg_path);
            ag_config_free(&a.cfg);
            return 2;
        }
        cm_log_init(NULL, lvl);
    }
    if (ag_profiles_load_dir(a.cfg.profiles_dir, &a.profiles, err, sizeof err) != 0 ||
        check_profiles(&a, err, sizeof err) != 0) {
        fprintf(stderr, "cinemon-agent: %s\n", err);
        ag_profiles_free(&a.profiles);
        ag_config_free(&a.cfg);
        return 2;
    }
    if (check) {
        printf("%s: OK (%zu devices, %zu profiles)\n", cfg_path, a.cfg.ndevices,
               a.profiles.nprofiles);
        ag_profiles_free(&a.profiles);
        ag_config_free(&a.cfg);
        return 0;
    }
    int rc = 0;
    char *token = NULL;
    a.once = once;
    a.rounds = rounds;
    if (rounds) {
        a.round_wall = calloc((size_t)rounds, sizeof *a.round_wall);
        a.round_cpu = calloc((size_t)rounds, sizeof *a.round_cpu);
        if (!a.round_wall || !a.round_cpu) {
            fprintf(stderr, "cinemon-agent: out of memory\n");
            free(a.round_wall);
            free(a.round_cpu);
            ag_profiles_free(&a.profiles);
            ag_config_free(&a.cfg);
            return 1;
        }
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    uv_loop_init(&a.loop);
    uv_timer_init(&a.loop, &a.self_timer);
    uv_timer_init(&a.loop, &a.stop_timer);
    uv_timer_init(&a.loop, &a.round_timer);
    a.self_timer.data = a.stop_timer.data = a.round_timer.data = &a;
    uv_signal_init(&a.loop, &a.sigterm);
    uv_signal_init(&a.loop, &a.sigint);
    a.sigterm.data = a.sigint.data = &a;
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN);

    ag_sink sink;
    if (once) {
        sink = (ag_sink){.ud = &a, .point = once_point, .done = once_done};
        if (a.cfg.ndevices == 0) {
            fprintf(stderr, "cinemon-agent: %s: no [device] sections\n", cfg_path);
            rc = 1;
            goto stop;
        }
    } else {
        /* --rounds measures polling, batching and spooling: no uploader (what it spools is
         * sent at the next normal start), so no collector is needed. */
        if (!rounds && (!a.cfg.collector_url || !a.cfg.token_file)) {
            fprintf(stderr, "cinemon-agent: %s: [agent] needs collector_url and token_file\n",
                    cfg_path);
            rc = 2;
            goto stop;
        }
        if ((!rounds && !(token = cm_token_file_read(a.cfg.token_file, err, sizeof err))) ||
            open_spool(&a, err, sizeof err) != 0 ||
            ag_batcher_open(&a.batcher, &a.loop, a.spool, &a.cfg, CINEMON_VERSION, err,
                            sizeof err) != 0) {
            fprintf(stderr, "cinemon-agent: %s\n", err);
            rc = 1;
            goto stop;
        }
        ag_batcher_on_record(a.batcher, on_record, &a);
        sink = (ag_sink){.ud = &a,
                         .point = batch_point,
                         .inventory = batch_inventory,
                         .done = rounds ? rounds_done : NULL};
        if (rounds) {
            cm_info("site %s: %d timed round(s) of %zu devices into the spool %s (no upload)",
                    a.cfg.site, rounds, a.cfg.ndevices, a.cfg.spool_dir);
        } else {
            ag_selfmetrics_init(&a.self, CINEMON_VERSION);
            char url[1024];
            size_t ul = strlen(a.cfg.collector_url);
            snprintf(url, sizeof url, "%.*s/api/v1/ingest",
                     (int)(ul && a.cfg.collector_url[ul - 1] == '/' ? ul - 1 : ul),
                     a.cfg.collector_url);
            ag_uploader_opts uo = {.url = url,
                                   .token = token,
                                   .agent_id = a.cfg.agent_id ? a.cfg.agent_id : a.cfg.site,
                                   .agent_version = CINEMON_VERSION,
                                   .site = a.cfg.site,
                                   .spool = a.spool,
                                   .interval_ms = a.cfg.upload_interval_ms,
                                   .max_batch_bytes = a.cfg.max_batch_bytes,
                                   .timeout_ms = a.cfg.upload_timeout_ms,
                                   .backoff_base_ms = a.cfg.backoff_base_ms,
                                   .backoff_cap_ms = a.cfg.backoff_cap_ms};
            if (ag_uploader_open(&a.uploader, &a.loop, &uo, err, sizeof err) != 0) {
                fprintf(stderr, "cinemon-agent: %s\n", err);
                rc = 1;
                goto stop;
            }
            uv_timer_start(&a.self_timer, on_self_timer, (uint64_t)a.cfg.upload_interval_ms,
                           (uint64_t)a.cfg.upload_interval_ms);
            cm_info("site %s, agent %s: polling %zu devices, uploading to %s every %.1f s",
                    a.cfg.site, a.cfg.agent_id, a.cfg.ndevices, url,
                    (double)a.cfg.upload_interval_ms / 1000.0);
        }
    }
    ag_poll_mode mode = once ? AG_POLL_ONCE : rounds ? AG_POLL_MANUAL : AG_POLL_TIMERS;
    if (ag_poller_open(&a.poller, &a.loop, &a.cfg, &a.profiles, &sink, mode, err, sizeof err) !=
        0) {
        fprintf(stderr, "cinemon-agent: %s\n", err);
        rc = 1;
        goto stop;
    }
    if (rounds) {
        if (a.cfg.ndevices == 0) {
            fprintf(stderr, "cinemon-agent: %s: no [device] sections\n", cfg_path);
            rc = 1;
            goto stop;
        }
        start_round(&a);
    }
    if (!once && !rounds && a.cfg.traps_listen) {
        if (ag_traps_open(&a.traps, &a.loop, &a.cfg, &a.profiles, batch_event, &a, err,
                          sizeof err) != 0) {
            fprintf(stderr, "cinemon-agent: %s\n", err);
            rc = 1;
            goto stop;
        }
        cm_info("receiving SNMP traps on %s", a.cfg.traps_listen);
    }
    uv_run(&a.loop, UV_RUN_DEFAULT);
    if (once && a.polls_ok == 0) {
        fprintf(stderr, "cinemon-agent: no device answered\n");
        rc = 1;
    }
    goto done;
stop:
    a.stopping = 1;
    close_all(&a);
    uv_run(&a.loop, UV_RUN_DEFAULT);
done:
    if (uv_loop_close(&a.loop) != 0) cm_warn("event loop closed with handles still open");
    if (a.spool) cm_spool_close(a.spool); /* syncs and saves the acknowledged position */
    free(token);
    free(a.round_wall);
    free(a.round_cpu);
    curl_global_cleanup();
    ag_profiles_free(&a.profiles);
    ag_config_free(&a.cfg);
    return rc;
}

/* spool_bench.c — how fast the agent's spool takes records in and gives them back.
 *
 *   spool_bench [--quick] [DIR]      (DIR default /tmp; works in DIR/cinemon-spool-bench-XXXXXX)
 *
 * 1. Append rate for each fsync policy with ~1 KiB and ~16 KiB records (policy cycle syncs every
 *    100 records, like one loop tick), on a fresh spool with 4 MiB segments.
 * 2. A 24-hour backlog of a 30-hall cinema (assumptions printed), then: start-up recovery of
 *    it with a cold page cache, and the drain an uploader does (read records up to 1 MiB,
 *    acknowledge, repeat), cold cache again. */
#include <dirent.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "gzip.h"
#include "log.h"
#include "spool.h"
#include "timeutil.h"
#include "wire.h"

#define HALLS 30
#define DEVICES 5     /* per hall: projector, media block, audio processor, LED/light, sound */
#define VALUES 140    /* samples per device per poll */
#define INTERVAL_S 60 /* poll interval */
#define HOURS 24
#define VARIANTS 60 /* distinct poll rounds generated per hall, used in turn */
#define UPLOAD_BYTES (1u << 20) /* the uploader's default request size */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static cm_spool *open_spool(const char *dir, cm_fsync_policy p, uint64_t max_bytes,
                            cm_spool_recovery *rep)
{
    cm_spool_opts o = {0};
    o.dir = dir;
    o.segment_bytes = 4u << 20;
    o.max_bytes = max_bytes;
    o.min_free_bytes = 64u << 20;
    o.fsync = p;
    cm_spool *s = NULL;
    char err[256];
    if (cm_spool_open(&s, &o, rep, err, sizeof err) != 0) {
        fprintf(stderr, "spool_bench: %s\n", err);
        return NULL;
    }
    return s;
}

/* Drop the spool folder's files from the page cache (and the folder itself when gone). */
static void cold_cache(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        int fd = open(p, O_RDONLY);
        if (fd < 0) continue;
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    closedir(d);
}

static void rm_rf(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "spool_bench: could not remove %s\n", dir);
}

static int bench_append(const char *base, cm_fsync_policy p, const char *pname, size_t size,
                        double seconds)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/append-%s-%zu", base, pname, size);
    cm_spool *s = open_spool(dir, p, 8ull << 30, NULL);
    if (!s) return -1;
    char *buf = malloc(size);
    if (!buf) return -1;
    for (size_t i = 0; i < size; i++)
        buf[i] = (char)('a' + i % 26);
    char err[256];
    uint64_t n = 0;
    double t0 = now_s(), t = t0, worst = 0;
    while (t - t0 < seconds) {
        for (int k = 0; k < 100; k++) {
            double a = now_s();
            if (cm_spool_append(s, CM_REC_BATCH, buf, size, NULL, err, sizeof err) != 0) {
                fprintf(stderr, "spool_bench: %s\n", err);
                return -1;
            }
            double b = now_s();
            if (b - a > worst) worst = b - a;
            n++;
        }
        if (p == CM_FSYNC_CYCLE && cm_spool_sync(s, err, sizeof err) != 0) {
            fprintf(stderr, "spool_bench: %s\n", err);
            return -1;
        }
        t = now_s();
    }
    cm_spool_sync(s, err, sizeof err);
    t = now_s() - t0;
    printf("  %-6s %6zu B  %9.0f records/s  %7.1f MB/s  %7.1f us/record  worst %6.2f ms\n", pname,
           size, (double)n / t, (double)n * (double)size / t / 1e6, t / (double)n * 1e6,
           worst * 1e3);
    cm_spool_close(s);
    free(buf);
    rm_rf(dir);
    return 0;
}

/* The JSON of one hall's poll round: DEVICES devices × VALUES series, one point each. */
static char *hall_batch(int hall, int64_t ts, size_t *len)
{
    static const char *kinds[DEVICES] = {"projector", "media_block", "audio_processor",
                                         "light_sensor", "sound_sensor"};
    static const char *metrics[14] = {
        "temperature_celsius", "fan_speed_rpm",       "voltage_volts",         "current_amperes",
        "lamp_hours",          "laser_power_percent", "screen_luminance_cdm2", "spl_dbc",
        "power_state",         "error_code",          "storage_used_bytes",    "link_up",
        "frame_rate_hz",       "cpu_load_percent"};
    cm_batch b;
    cm_batch_init(&b);
    cm_batch_set_agent(&b, "cinema-4401", "0.1.0", "44010001");
    for (int d = 0; d < DEVICES; d++) {
        char dev[64], idx[16];
        snprintf(dev, sizeof dev, "hall%d/%s", hall + 1, kinds[d]);
        for (int v = 0; v < VALUES; v++) {
            snprintf(idx, sizeof idx, "%d", v / 14 + 1);
            cm_label l = {"sensor", idx};
            /* a reading with noise in its last digits, as real sensors give */
            uint64_t x = (uint64_t)ts * 2654435761u ^ (uint64_t)(hall * 1000003 + d * 7919 + v);
            x ^= x >> 29;
            x *= 0xbf58476d1ce4e5b9ULL;
            x ^= x >> 32;
            cm_batch_add_point(&b, dev, metrics[v % 14], NULL, &l, 1, ts,
                               20.0 + (double)((hall * 31 + d * 7 + v) % 997) / 10.0 +
                                   (double)(x % 1000) / 1000.0);
        }
    }
    b.seq = 1;
    b.sent_ms = ts;
    char *js = cm_wire_encode(&b, len);
    cm_batch_free(&b);
    return js;
}

static int bench_backlog(const char *base, int quick)
{
    int hours = quick ? 1 : HOURS;
    uint64_t per_min = HALLS, minutes = (uint64_t)hours * 60 * 60 / INTERVAL_S;
    uint64_t total = per_min * minutes;
    /* VARIANTS poll rounds per hall with their own timestamps and readings, reused in turn */
    char *gz[HALLS][VARIANTS];
    size_t gzlen[HALLS][VARIANTS], avg = 0, gzavg = 0;
    for (int h = 0; h < HALLS; h++)
        for (int k = 0; k < VARIANTS; k++) {
            size_t len;
            char *js = hall_batch(h, 1764082800000 + (int64_t)k * INTERVAL_S * 1000, &len);
            if (!js || cm_gzip(js, len, 6, &gz[h][k], &gzlen[h][k]) != 0) return -1;
            avg += len;
            gzavg += gzlen[h][k];
            free(js);
        }
    avg /= VARIANTS;
    gzavg /= VARIANTS;
    avg /= HALLS;
    gzavg /= HALLS;
    double per_day = (double)avg * HALLS * 1440, gz_per_day = (double)gzavg * HALLS * 1440;
    printf("\nBacklog: %d halls x %d devices x %d values every %d s; one record per hall per poll "
           "round (%d samples: %zu bytes of JSON, %zu bytes gzip-compressed as the agent spools "
           "it, %.1fx)\n"
           "  = %llu records/day, %.2f GB/day of JSON, %.2f GB/day spooled; the agent's default "
           "max_bytes (1 GiB) holds %.1f h of it\n",
           HALLS, DEVICES, VALUES, INTERVAL_S, DEVICES * VALUES, avg, gzavg,
           (double)avg / (double)gzavg, (unsigned long long)(per_min * 1440), per_day / 1e9,
           gz_per_day / 1e9, (double)(1u << 30) / gz_per_day * 24);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/backlog", base);
    cm_spool *s = open_spool(dir, CM_FSYNC_CYCLE, 64ull << 30, NULL);
    if (!s) return -1;
    char err[256];
    uint64_t bytes = 0;
    double t0 = now_s();
    for (uint64_t m = 0; m < minutes; m++) {
        for (int h = 0; h < HALLS; h++) {
            const int k = (int)(m % VARIANTS);
            if (cm_spool_append(s, CM_REC_BATCH_GZ, gz[h][k], gzlen[h][k], NULL, err,
                                sizeof err) != 0) {
                fprintf(stderr, "spool_bench: %s\n", err);
                return -1;
            }
            bytes += gzlen[h][k];
        }
        cm_spool_sync(s, err, sizeof err); /* one tick per minute of the cinema */
    }
    double t = now_s() - t0;
    printf("  generated %d h: %llu records, %.2f GB on disk in %.1f s (%.0f records/s, %.0f MB/s, "
           "policy cycle, a sync per %d records)\n",
           hours, (unsigned long long)total, (double)bytes / 1e9, t, (double)total / t,
           (double)bytes / t / 1e6, HALLS);
    cm_spool_close(s);
    for (int h = 0; h < HALLS; h++)
        for (int k = 0; k < VARIANTS; k++)
            free(gz[h][k]);

    cold_cache(dir);
    cm_spool_recovery rep;
    t0 = now_s();
    s = open_spool(dir, CM_FSYNC_CYCLE, 64ull << 30, &rep);
    if (!s) return -1;
    t = now_s() - t0;
    printf("  start-up recovery (cold cache): %llu records found in %.2f s (%.0f MB/s scanned "
           "and CRC-checked)\n",
           (unsigned long long)rep.records, t, (double)bytes / t / 1e6);

    /* drain like the uploader: contiguous records up to 1 MiB of JSON per request, each
     * gunzipped, decoded and merged into one batch, encoded and gzipped, then acknowledged */
    cold_cache(dir);
    uint64_t from = 1, n = 0, rbytes = 0, acks = 0, points = 0;
    t0 = now_s();
    for (;;) {
        uint64_t req = 0, first = 0, last = 0;
        cm_spool_record rec;
        cm_batch out;
        cm_batch_init(&out);
        cm_batch_set_agent(&out, "cinema-4401", "0.1.0", "44010001");
        int r;
        while (req < UPLOAD_BYTES && (r = cm_spool_read(s, from, &rec, err, sizeof err)) == 1) {
            char *json, at[64];
            size_t jl;
            cm_batch in;
            cm_batch_init(&in);
            if (cm_gunzip(rec.data, rec.len, 64u << 20, &json, &jl, err, sizeof err) != 0 ||
                cm_wire_decode(json, jl, NULL, &in, err, sizeof err, at, sizeof at) != 0) {
                fprintf(stderr, "spool_bench: record %llu: %s\n", (unsigned long long)rec.seq, err);
                return -1;
            }
            free(json);
            for (size_t i = 0; i < in.nseries; i++) {
                const cm_series *se = &in.series[i];
                for (size_t k = 0; k < se->npoints; k++)
                    cm_batch_add_point(&out, se->device, se->metric, se->unit, se->labels,
                                       se->nlabels, se->points[k].ts_ms, se->points[k].value);
            }
            cm_batch_free(&in);
            req += jl;
            if (!first) first = rec.seq;
            last = rec.seq;
            from = rec.seq + 1;
            n++;
        }
        if (!last) {
            cm_batch_free(&out);
            break;
        }
        out.first_seq = first;
        out.seq = last;
        size_t bl, gl;
        char *body = cm_wire_encode(&out, &bl), *gbody;
        if (!body || cm_gzip(body, bl, -1, &gbody, &gl) != 0) return -1;
        points += cm_batch_points(&out);
        free(body);
        free(gbody);
        cm_batch_free(&out);
        rbytes += req;
        if (cm_spool_ack(s, last, err, sizeof err) != 0) {
            fprintf(stderr, "spool_bench: %s\n", err);
            return -1;
        }
        acks++;
    }
    t = now_s() - t0;
    cm_spool_stats st;
    cm_spool_stats_get(s, &st);
    printf("  drain (cold cache; per request of %u KiB JSON: read, gunzip, decode, merge, encode, "
           "gzip, ack — the agent's side of an upload): %llu records, %llu samples, %.2f GB of "
           "JSON in %.2f s = %.0f records/s, %.0f samples/s, %llu requests; left %llu records\n",
           UPLOAD_BYTES >> 10, (unsigned long long)n, (unsigned long long)points,
           (double)rbytes / 1e9, t, (double)n / t, (double)points / t, (unsigned long long)acks,
           (unsigned long long)st.records);
    cm_spool_close(s);
    rm_rf(dir);
    return n == total ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *where = "/tmp";
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else
            where = argv[i];
    }
    cm_log_init("spool_bench", CM_LOG_WARN);
    char base[256];
    snprintf(base, sizeof base, "%s/cinemon-spool-bench-XXXXXX", where);
    if (!mkdtemp(base)) {
        perror("spool_bench: mkdtemp");
        return 1;
    }
    double secs = quick ? 0.5 : 2.0;
    printf(
        "Append rate (%s, %.1f s each, 4 MiB segments; cycle = cm_spool_sync every 100 records)\n",
        base, secs);
    static const struct {
        cm_fsync_policy p;
        const char *name;
    } pol[] = {{CM_FSYNC_ALWAYS, "always"}, {CM_FSYNC_CYCLE, "cycle"}, {CM_FSYNC_NONE, "none"}};
    int rc = 0;
    for (size_t k = 0; k < 2 && !rc; k++)
        for (size_t i = 0; i < 3 && !rc; i++)
            rc = bench_append(base, pol[i].p, pol[i].name, k ? 16384 : 1024, secs);
    if (!rc) rc = bench_backlog(base, quick);
    rm_rf(base);
    return rc ? 1 : 0;
}

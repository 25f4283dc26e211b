/* metrics.c — lock-free counters (C11 atomics) rendered as Prometheus text 0.0.4, and the
 * forwarders' counters (read through co_forward_stats_get) labelled by upstream. */
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "timeutil.h"

/* Status codes the collector answers with; anything else is counted as "other". */
static const unsigned codes[] = {200, 400, 401, 403, 404, 405, 409, 413, 415, 500, 503};
#define NCODES (sizeof codes / sizeof codes[0])

static const char *const result_names[CO_INGEST_NRESULTS] = {
    "stored", "duplicate", "rejected", "unauthorized", "failed", "overlap"};

struct co_metrics {
    const char *const *paths;
    size_t npaths;
    atomic_ullong *requests; /* (npaths + 1) x (NCODES + 1) */
    atomic_ullong batches[CO_INGEST_NRESULTS];
    atomic_ullong samples;
    atomic_ullong bytes;
    atomic_ullong xff_invalid;
};

co_metrics *co_metrics_new(const char *const *paths, size_t npaths)
{
    co_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->paths = paths;
    m->npaths = npaths;
    m->requests = calloc((npaths + 1) * (NCODES + 1), sizeof *m->requests);
    if (!m->requests) {
        free(m);
        return NULL;
    }
    return m;
}

void co_metrics_free(co_metrics *m)
{
    if (!m) return;
    free(m->requests);
    free(m);
}

void co_metrics_request(co_metrics *m, size_t path_idx, unsigned code)
{
    size_t p = path_idx < m->npaths ? path_idx : m->npaths;
    size_t c = 0;
    while (c < NCODES && codes[c] != code)
        c++;
    atomic_fetch_add_explicit(&m->requests[p * (NCODES + 1) + c], 1, memory_order_relaxed);
}

void co_metrics_ingest(co_metrics *m, co_ingest_result r, size_t samples)
{
    if ((unsigned)r >= CO_INGEST_NRESULTS) return;
    atomic_fetch_add_explicit(&m->batches[r], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->samples, samples, memory_order_relaxed);
}

void co_metrics_ingest_bytes(co_metrics *m, size_t bytes)
{
    atomic_fetch_add_explicit(&m->bytes, bytes, memory_order_relaxed);
}

void co_metrics_forwarded_invalid(co_metrics *m)
{
    atomic_fetch_add_explicit(&m->xff_invalid, 1, memory_order_relaxed);
}

static unsigned long long get(atomic_ullong *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One family of per-upstream samples: name{upstream="..."[,reason="..."]} value. */
typedef struct fwd_family {
    const char *name, *type, *help;
} fwd_family;

/* The forwarders' counters, one sample per upstream (and reason) in each family. */
/* The store's head (samples not yet written out to its tables) and, on SQLite, the checkpoints
 * of its write-ahead log. */
static void render_store(FILE *f, co_store *s)
{
    co_head_usage u;
    if (co_store_head_usage(s, &u) == 0) {
        family(f, "cinemon_store_head_points", "gauge",
               "Samples held in memory, not yet written out to the store's tables.");
        fprintf(f, "cinemon_store_head_points %zu\n", u.points);
        family(f, "cinemon_store_head_series", "gauge", "Series with samples in the head.");
        fprintf(f, "cinemon_store_head_series %zu\n", u.series);
        family(f, "cinemon_store_head_bytes", "gauge", "Memory the head's encoded samples take.");
        fprintf(f, "cinemon_store_head_bytes %zu\n", u.bytes);
        family(f, "cinemon_store_head_writeout_seconds", "summary",
               "Write-outs of the head to the store's tables, whole or one part (commits wait "
               "meanwhile).");
        fprintf(f,
                "cinemon_store_head_writeout_seconds_sum %.3f\n"
                "cinemon_store_head_writeout_seconds_count %llu\n",
                u.writeout_seconds, (unsigned long long)u.writeouts);
        family(f, "cinemon_store_head_writeout_seconds_max", "gauge",
               "Longest write-out (or part) of the head so far.");
        fprintf(f, "cinemon_store_head_writeout_seconds_max %.3f\n", u.writeout_max_seconds);
    }
    co_walckpt_stats w;
    if (co_store_wal_stats(s, &w) == 0) {
        family(f, "cinemon_store_wal_checkpoints_total", "counter",
               "Checkpoints of SQLite's write-ahead log: passive ones by the checkpoint thread, "
               "restarts by the writer.");
        fprintf(f,
                "cinemon_store_wal_checkpoints_total{by=\"thread\"} %llu\n"
                "cinemon_store_wal_checkpoints_total{by=\"writer\"} %llu\n",
                (unsigned long long)w.passive, (unsigned long long)w.restart);
        family(f, "cinemon_store_wal_checkpoint_problems_total", "counter",
               "Restarts that gave up waiting for readers (busy) and checkpoints that failed.");
        fprintf(f,
                "cinemon_store_wal_checkpoint_problems_total{kind=\"busy\"} %llu\n"
                "cinemon_store_wal_checkpoint_problems_total{kind=\"failed\"} %llu\n",
                (unsigned long long)w.busy, (unsigned long long)w.failed);
    }
}

static void render_forward(FILE *f, co_forward *fw)
{
    size_t n = co_forward_count(fw);
    if (n == 0) return;
    co_forward_stats *st = calloc(n, sizeof *st);
    if (!st) return;
    for (size_t i = 0; i < n; i++)
        if (co_forward_stats_get(fw, i, &st[i]) != 0) st[i].name = NULL;
    int64_t now = cm_now_ms();
    enum {
        SPOOLED,
        LOST,
        ATTEMPTS,
        ACKED,
        RECORDS_ACKED,
        FAILURES,
        LAST_UPLOAD,
        SPOOL_BYTES,
        SPOOL_RECORDS,
        OLDEST_AGE,
        DROPPED,
        DISK_OK,
        NFAM
    };
    static const fwd_family fams[NFAM] = {
        {"cinemon_forward_records_spooled_total", "counter",
         "Stored batches appended to the upstream's spool since start."},
        {"cinemon_forward_records_lost_total", "counter",
         "Stored batches that could not be appended to the upstream's spool since start."},
        {"cinemon_forward_upload_attempts_total", "counter", "Upload requests started."},
        {"cinemon_forward_batches_acked_total", "counter",
         "Upload requests (merged batches) the upstream acknowledged with 200."},
        {"cinemon_forward_records_acked_total", "counter",
         "Spool records the upstream acknowledged (200 and 409)."},
        {"cinemon_forward_upload_failures_total", "counter",
         "Upload answers other than an acknowledgement, by reason: retried (network, 5xx, 429, "
         "401/403), rejected (400 or 413 of one record, set aside), conflict (409), split (400 "
         "or 413 that halved a request)."},
        {"cinemon_forward_last_upload_timestamp_seconds", "gauge",
         "Wall clock of the last acknowledged upload (0: none since start)."},
        {"cinemon_forward_spool_bytes", "gauge", "Bytes of the upstream's spool segments."},
        {"cinemon_forward_spool_records", "gauge",
         "Spool records not yet acknowledged by the upstream."},
        {"cinemon_forward_spool_oldest_age_seconds", "gauge",
         "Age of the oldest record not yet acknowledged (0: none)."},
        {"cinemon_forward_spool_dropped_records_total", "counter",
         "Records dropped because the spool was full (reported upstream as a gap)."},
        {"cinemon_forward_spool_disk_ok", "gauge",
         "1 while the spool writes to disk, 0 while appends go to its memory ring."},
    };
    for (int k = 0; k < NFAM; k++) {
        family(f, fams[k].name, fams[k].type, fams[k].help);
        for (size_t i = 0; i < n; i++) {
            const co_forward_stats *x = &st[i];
            if (!x->name) continue;
            const char *nm = fams[k].name;
            unsigned long long v = 0;
            switch (k) {
            case SPOOLED:
                v = x->spooled;
                break;
            case LOST:
                v = x->lost;
                break;
            case ATTEMPTS:
                v = x->attempts;
                break;
            case ACKED:
                v = x->acked;
                break;
            case RECORDS_ACKED:
                v = x->records_acked;
                break;
            case FAILURES:
                fprintf(f, "%s{upstream=\"%s\",reason=\"retried\"} %llu\n", nm, x->name,
                        (unsigned long long)x->retried);
                fprintf(f, "%s{upstream=\"%s\",reason=\"rejected\"} %llu\n", nm, x->name,
                        (unsigned long long)x->rejected);
                fprintf(f, "%s{upstream=\"%s\",reason=\"conflict\"} %llu\n", nm, x->name,
                        (unsigned long long)x->conflicts);
                fprintf(f, "%s{upstream=\"%s\",reason=\"split\"} %llu\n", nm, x->name,
                        (unsigned long long)x->splits);
                continue;
            case LAST_UPLOAD:
                fprintf(f, "%s{upstream=\"%s\"} %.3f\n", nm, x->name,
                        (double)x->last_ack_ms / 1000.0);
                continue;
            case SPOOL_BYTES:
                v = x->spool_bytes;
                break;
            case SPOOL_RECORDS:
                v = x->spool_records;
                break;
            case OLDEST_AGE:
                fprintf(f, "%s{upstream=\"%s\"} %.3f\n", nm, x->name,
                        x->oldest_ms && now > x->oldest_ms ? (double)(now - x->oldest_ms) / 1000.0
                                                           : 0.0);
                continue;
            case DROPPED:
                v = x->dropped_records;
                break;
            case DISK_OK:
                v = x->disk_ok ? 1 : 0;
                break;
            }
            fprintf(f, "%s{upstream=\"%s\"} %llu\n", nm, x->name, v);
        }
    }
    free(st);
}

char *co_metrics_render(co_metrics *m, co_writer *w, co_store *s, co_forward *fw, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return NULL;

    family(f, "cinemon_http_requests_total", "counter",
           "HTTP requests answered, by route and status code.");
    for (size_t p = 0; p <= m->npaths; p++)
        for (size_t c = 0; c <= NCODES; c++) {
            unsigned long long v = get(&m->requests[p * (NCODES + 1) + c]);
            if (!v) continue;
            const char *path = p < m->npaths ? m->paths[p] : "other";
            if (c < NCODES)
                fprintf(f, "cinemon_http_requests_total{path=\"%s\",code=\"%u\"} %llu\n", path,
                        codes[c], v);
            else
                fprintf(f, "cinemon_http_requests_total{path=\"%s\",code=\"other\"} %llu\n", path,
                        v);
        }

    family(f, "cinemon_ingest_batches_total", "counter", "Ingested batches by outcome.");
    for (int r = 0; r < CO_INGEST_NRESULTS; r++)
        fprintf(f, "cinemon_ingest_batches_total{result=\"%s\"} %llu\n", result_names[r],
                get(&m->batches[r]));
    family(f, "cinemon_ingest_samples_total", "counter", "Samples in stored batches.");
    fprintf(f, "cinemon_ingest_samples_total %llu\n", get(&m->samples));
    family(f, "cinemon_ingest_bytes_total", "counter",
           "Ingest request body bytes received, as sent.");
    fprintf(f, "cinemon_ingest_bytes_total %llu\n", get(&m->bytes));
    family(f, "cinemon_http_forwarded_for_invalid_total", "counter",
           "Requests from a trusted proxy whose X-Forwarded-For could not be read (counted as "
           "coming from the proxy).");
    fprintf(f, "cinemon_http_forwarded_for_invalid_total %llu\n", get(&m->xff_invalid));

    if (w) {
        co_writer_stats st;
        co_writer_stats_get(w, &st);
        family(f, "cinemon_commit_seconds", "summary",
               "Store commit latency of the group-commit writer.");
        fprintf(f, "cinemon_commit_seconds_sum %.6f\ncinemon_commit_seconds_count %llu\n",
                st.commit_seconds_sum, st.commits);
        family(f, "cinemon_commit_seconds_max", "gauge", "Longest store commit so far.");
        fprintf(f, "cinemon_commit_seconds_max %.6f\n", st.commit_seconds_max);
        family(f, "cinemon_writer_batches_total", "counter",
               "Batches written by the writer (including duplicates).");
        fprintf(f, "cinemon_writer_batches_total %llu\n", st.batches);
        family(f, "cinemon_writer_duplicates_total", "counter",
               "Batches acknowledged as already stored.");
        fprintf(f, "cinemon_writer_duplicates_total %llu\n", st.duplicates);
        family(f, "cinemon_writer_samples_total", "counter", "Samples committed by the writer.");
        fprintf(f, "cinemon_writer_samples_total %llu\n", st.samples);
        family(f, "cinemon_writer_failures_total", "counter", "Failed commits.");
        fprintf(f, "cinemon_writer_failures_total %llu\n", st.failures);
    }
    if (s) {
        int64_t samples, series, devices;
        char err[256];
        if (co_store_counts(s, &samples, &series, &devices, err, sizeof err) == 0) {
            family(f, "cinemon_store_samples", "gauge", "Samples held by the store.");
            fprintf(f, "cinemon_store_samples %lld\n", (long long)samples);
            family(f, "cinemon_store_series", "gauge", "Series held by the store.");
            fprintf(f, "cinemon_store_series %lld\n", (long long)series);
            family(f, "cinemon_store_devices", "gauge", "Devices known to the store.");
            fprintf(f, "cinemon_store_devices %lld\n", (long long)devices);
        } else {
            cm_log_limited("metrics-store-counts", 60, CM_LOG_ERROR, "metrics: store counts: %s",
                           err);
        }
    }
    if (s) render_store(f, s);
    render_forward(f, fw);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* metrics.c — lock-free counters (C11 atomics) rendered as Prometheus text 0.0.4. */
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

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

static unsigned long long get(atomic_ullong *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *co_metrics_render(co_metrics *m, co_writer *w, co_store *s, size_t *len)
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
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

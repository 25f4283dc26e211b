/* metrics.h — the collector's own counters and their Prometheus text exposition (0.0.4), with
 * the forwarders' per-upstream counters (forward.h). */
#ifndef CO_METRICS_H
#define CO_METRICS_H

#include <stddef.h>

#include "forward.h"
#include "store.h"
#include "writer.h"

typedef struct co_metrics co_metrics;

/* What became of one POST to the ingest endpoint. */
typedef enum {
    CO_INGEST_STORED = 0,
    CO_INGEST_DUPLICATE,
    CO_INGEST_REJECTED,     /* 400, 403, 413, 415: the batch will never be accepted */
    CO_INGEST_UNAUTHORIZED, /* 401 */
    CO_INGEST_FAILED,       /* 503: store failure, the agent retries */
    CO_INGEST_OVERLAP,      /* 409: partly stored already, the agent re-batches */
    CO_INGEST_NRESULTS
} co_ingest_result;

/* New counters for requests to npaths routes named paths[i] (not copied: must outlive the
 * metrics; the HTTP router's table). Any other path is counted as "other". NULL on OOM. */
co_metrics *co_metrics_new(const char *const *paths, size_t npaths);
void co_metrics_free(co_metrics *m);
/* Count one answered request of route index path_idx (npaths or more = "other"). Thread-safe. */
void co_metrics_request(co_metrics *m, size_t path_idx, unsigned code);
/* Count one ingest outcome with its number of stored samples. Thread-safe. */
void co_metrics_ingest(co_metrics *m, co_ingest_result r, size_t samples);
/* Count request body bytes received on the ingest endpoint (as sent, before inflating). */
void co_metrics_ingest_bytes(co_metrics *m, size_t bytes);
/* Count one request from a trusted proxy whose X-Forwarded-For could not be read (proxy.h).
 * Thread-safe. */
void co_metrics_forwarded_invalid(co_metrics *m);
/* Render the text exposition, including writer stats (w may be NULL), store counts (s may be
 * NULL; a failing count is left out) and each upstream's forwarding counters (f may be NULL).
 * Returns a malloc'ed string (caller frees), len filled. */
char *co_metrics_render(co_metrics *m, co_writer *w, co_store *s, co_forward *f, size_t *len);

#endif

/* http.h — the collector's HTTP server (libmicrohttpd's network threads; each request's work
 * on a work pool, workpool.h): body limits, gzip, routing to ingest, the query API (reads need a
 * principal, access.c), login and logout, /healthz and /metrics, JSON responses. */
#ifndef CO_HTTP_H
#define CO_HTTP_H

#include <stddef.h>

#include "access.h"
#include "config.h"
#include "forward.h"
#include "ingest.h"
#include "metrics.h"
#include "query.h"
#include "store.h"
#include "writer.h"

typedef struct co_http co_http;

/* What the server dispatches to; none is owned, all must outlive the server. */
typedef struct co_http_deps {
    co_ingest *ingest;
    co_query *query;
    co_metrics *metrics;
    co_writer *writer;   /* /metrics: commit stats */
    co_store *store;     /* /metrics: store counts */
    co_access *access;   /* who may read and write; login sessions */
    co_forward *forward; /* /metrics: forwarding counters (NULL: no upstream) */
} co_http_deps;

/* The routes' paths in the order co_metrics counts them: pass to co_metrics_new. */
const char *const *co_http_paths(size_t *n);
/* Start listening on cfg->addr with cfg's limits. Returns 0, or -1 with err. */
int co_http_start(co_http **out, const co_config *cfg, const co_http_deps *deps, char *err,
                  size_t errlen);
/* The port actually bound (useful with port 0). */
unsigned co_http_port(const co_http *h);
/* Stop accepting, let in-flight requests finish (at most grace_ms), close everything, free. */
void co_http_stop(co_http *h, long grace_ms);

#endif

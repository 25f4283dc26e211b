/* uploader.h — sends the spool's records to the collector, oldest first, one request in flight.
 *
 * Starting after the acknowledged cursor it reads contiguous records (cm_spool_read) up to
 * max_batch_bytes of payload, merges them into one batch (first_seq = the first record's seq,
 * seq = the last one's; GAP records become gaps), gzips it and POSTs it with libcurl's multi
 * interface on the agent's libuv loop. It sends once the oldest unsent record is interval_ms
 * old, or max_batch_bytes are waiting, or while a backlog drains (back to back).
 * Answers: 200 {"ack": seq} → cm_spool_ack; 409 {"last_seq": L} → those are stored already,
 * ack L and rebuild from L+1; 413 → halve the records per request (one record still too large
 * is a 400); 400 → the body is kept in the spool's rejected/, counted, logged with the
 * collector's "at", a GAP record {"reason": "rejected"} appended, the records acknowledged;
 * 401/403 → kept, logged loudly, retried at the backoff cap; network errors, 5xx, 429 →
 * full-jitter exponential backoff, at least Retry-After. The token is never logged.
 * With record_sites, records of different sites are never merged into one request. */
#ifndef AG_UPLOADER_H
#define AG_UPLOADER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "spool.h"

typedef struct ag_uploader_opts {
    const char *url;   /* full ingest URL: <collector_url>/api/v1/ingest */
    const char *token; /* bearer token; never logged */
    const char *agent_id, *agent_version, *site; /* identity of every batch sent */
    /* 1 = every record names its own agent.site (a collector forwarding upstream holds the
     * batches of many cinemas in one spool): a request merges only records of one site and
     * carries that site; a request of gap records only carries the site last sent, else
     * `site` (which may then be NULL). 0 = every request carries `site` (the agent). */
    int record_sites;
    cm_spool *spool;          /* where the records are (not owned) */
    int64_t interval_ms;      /* send once the oldest unsent record is this old (0 = at once) */
    uint64_t max_batch_bytes; /* record payload bytes merged into one request (0 = 1 MiB) */
    int64_t timeout_ms;       /* per request, default 30 s */
    int64_t backoff_base_ms, backoff_cap_ms;
} ag_uploader_opts;

typedef struct ag_uploader_stats {
    uint64_t attempts;      /* requests started */
    uint64_t failures;      /* requests that will be retried (network, 5xx, 429, 401/403, ...) */
    uint64_t acked;         /* requests acknowledged with 200 */
    uint64_t records_acked; /* spool records acknowledged (200 and 409) */
    uint64_t rejected;      /* batches refused for good (400, or 413 of a single record) */
    uint64_t conflicts;     /* 409 answers */
    uint64_t splits;        /* 413 answers that halved a batch */
    int64_t last_ack_ms;    /* wall clock of the last 200, 0 = never */
} ag_uploader_stats;

typedef struct ag_uploader ag_uploader;

/* Create an uploader on loop; strings in opts are copied. It looks at the spool on the next
 * loop iteration (a backlog from an earlier run is sent at once). 0, or -1 with err. */
int ag_uploader_open(ag_uploader **out, uv_loop_t *loop, const ag_uploader_opts *opts, char *err,
                     size_t errlen);
/* A record of len payload bytes was appended to the spool. */
void ag_uploader_notify(ag_uploader *u, size_t len);
/* From now on send whatever is waiting without waiting for interval_ms (shutdown). */
void ag_uploader_flush(ag_uploader *u);
/* True while a request is in flight or waiting for its retry. */
int ag_uploader_busy(const ag_uploader *u);
/* Counters so far. */
void ag_uploader_stats_get(const ag_uploader *u, ag_uploader_stats *out);
/* Stop: cancel the transfer in flight, close the loop handles; `u` is freed once they are
 * closed (run the loop until it ends). Nothing is lost: the records stay in the spool. */
void ag_uploader_close(ag_uploader *u);

#endif

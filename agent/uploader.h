/* uploader.h — sends sealed batches to the collector, oldest first, one in flight.
 *
 * libcurl's multi interface driven by the agent's libuv loop; bodies are gzip-compressed.
 * Network errors, 5xx and 429 are retried with full-jitter exponential backoff (honouring
 * Retry-After); 401/403 keep the batch and retry at the backoff cap while logging loudly;
 * 400 sets the batch aside (logged, counted) and goes on. Nothing is dropped while the
 * process lives. */
#ifndef AG_UPLOADER_H
#define AG_UPLOADER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct ag_uploader_opts {
    const char *url;    /* full ingest URL: <collector_url>/api/v1/ingest */
    const char *token;  /* bearer token; never logged */
    int64_t timeout_ms; /* per request, default 30 s */
    int64_t backoff_base_ms, backoff_cap_ms;
} ag_uploader_opts;

typedef struct ag_uploader_stats {
    uint64_t attempts, failures, acked, rejected;
    int64_t last_ack_ms; /* wall clock of the last 200, 0 = never */
} ag_uploader_stats;

typedef struct ag_uploader ag_uploader;

/* Create an uploader on loop; strings in opts are copied. 0, or -1 with err. */
int ag_uploader_open(ag_uploader **out, uv_loop_t *loop, const ag_uploader_opts *opts, char *err,
                     size_t errlen);
/* Queue a batch body (takes ownership of body, which must be malloc'ed). */
void ag_uploader_enqueue(ag_uploader *u, uint64_t seq, char *body, size_t len);
/* Batches queued or in flight. */
size_t ag_uploader_pending(const ag_uploader *u);
/* Counters so far. */
void ag_uploader_stats_get(const ag_uploader *u, ag_uploader_stats *out);
/* Stop: cancel the transfer in flight, close the loop handles; `u` is freed once they are
 * closed (run the loop until it ends). Queued bodies are freed. */
void ag_uploader_close(ag_uploader *u);

#endif

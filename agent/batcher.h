/* batcher.h — gathers the samples of one event-loop tick into a batch and, at the end of
 * the tick (a uv_check handle), seals it into one spool record: seq from the spool, JSON
 * (wire.h), CM_REC_BATCH (CM_REC_BATCH_GZ, gzipped, once the spool holds a backlog of more
 * than 1/16 of its max_bytes), then one cm_spool_sync for the tick (policy cycle; a
 * record that holds events is synced under every policy). A batch that reaches 8192 points
 * is sealed at once, mid-tick, so a busy tick makes several records (memory stays bounded);
 * their sync is still the one at the end of the tick. With a ledger file, the line "seq samples\n"
 * is appended (one write, O_APPEND) before the record and synced with it: for every seq the
 * last ledger line is the truth. */
#ifndef AG_BATCHER_H
#define AG_BATCHER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "batch.h"
#include "config.h"
#include "spool.h"

typedef struct ag_batcher ag_batcher;

/* Called after every record the batcher appended (seq, payload bytes). */
typedef void (*ag_batcher_record_cb)(void *ud, uint64_t seq, size_t len);

typedef struct ag_batcher_stats {
    uint64_t records;         /* appended to the spool */
    uint64_t samples;         /* points in those records */
    uint64_t append_errors;   /* a seal that could not be kept (batch retried next tick) */
    uint64_t dropped_samples; /* given up after append errors grew the batch too large */
    uint64_t ledger_errors;   /* ledger lines that could not be written or synced */
} ag_batcher_stats;

/* Create a batcher for cfg (agent id, site, spool_fsync, ledger_path) appending to spool
 * (not owned) and sealing at the end of every tick of loop. 0, or -1 with err. */
int ag_batcher_open(ag_batcher **out, uv_loop_t *loop, cm_spool *spool, const ag_config *cfg,
                    const char *version, char *err, size_t errlen);
/* Be told of every record appended (e.g. to wake the uploader). */
void ag_batcher_on_record(ag_batcher *b, ag_batcher_record_cb cb, void *ud);
/* The batch being filled (owned by the batcher). */
cm_batch *ag_batcher_current(ag_batcher *b);
/* Thin wrappers over cm_batch_add_point/_device/_event on the current batch (0 or -1). */
int ag_batcher_add_point(ag_batcher *b, const char *device, const char *metric, const char *unit,
                         const cm_label *labels, size_t nlabels, int64_t ts_ms, double value);
int ag_batcher_add_device(ag_batcher *b, const cm_device_info *d);
int ag_batcher_add_event(ag_batcher *b, const cm_event *e);
/* Seal the current batch now (what the end of a tick does): 1 = a record was appended and
 * synced as the policy says (*seq filled when seq is not NULL), 0 = nothing to seal,
 * -1 = it could not be kept (err; the batch stays and is tried again). */
int ag_batcher_seal(ag_batcher *b, uint64_t *seq, char *err, size_t errlen);
/* Counters so far. */
void ag_batcher_stats_get(const ag_batcher *b, ag_batcher_stats *out);
/* Stop sealing, close the loop handle and the ledger; `b` is freed once the handle is
 * closed (run the loop). Unsealed samples are dropped: call ag_batcher_seal first. */
void ag_batcher_close(ag_batcher *b);

#endif

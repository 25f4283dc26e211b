/* batcher.h — gathers the points of many polls into one batch per upload interval and
 * seals it with the next sequence number (persisted in state_dir/seq so a restart never
 * reuses one). */
#ifndef AG_BATCHER_H
#define AG_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "config.h"

typedef struct ag_batcher ag_batcher;

/* Create a batcher for cfg (agent id, site, state_dir). Reads/creates state_dir/seq.
 * Returns 0, or -1 with err. */
int ag_batcher_open(ag_batcher **out, const ag_config *cfg, const char *version, char *err,
                    size_t errlen);
/* The batch being filled (owned by the batcher). */
cm_batch *ag_batcher_current(ag_batcher *b);
/* Thin wrappers over cm_batch_add_point/_device/_event on the current batch (0 or -1). */
int ag_batcher_add_point(ag_batcher *b, const char *device, const char *metric, const char *unit,
                         const cm_label *labels, size_t nlabels, int64_t ts_ms, double value);
int ag_batcher_add_device(ag_batcher *b, const cm_device_info *d);
int ag_batcher_add_event(ag_batcher *b, const cm_event *e);
/* The highest seq persisted so far (0 = none yet). */
uint64_t ag_batcher_last_seq(const ag_batcher *b);
/* When the current batch holds anything: give it the next seq (persisted first), encode it,
 * start a new one, return 1 with *body (malloc'ed, caller owns), *len and *seq.
 * 0 when there was nothing to seal; -1 on error (err filled, batch kept). */
int ag_batcher_seal(ag_batcher *b, char **body, size_t *len, uint64_t *seq, char *err,
                    size_t errlen);
/* Free the batcher and whatever the current batch holds (unsealed points are lost). */
void ag_batcher_close(ag_batcher *b);

#endif

/* selfmetrics.h — the agent's own health as samples of device "agent" (kind agent): spool
 * bytes and records, oldest unacknowledged age, upload attempts/failures/rejections, dropped
 * and corrupt records, disk state, last successful upload; plus an event when the spool's
 * disk fails (spool_disk_error, critical) and when it works again (spool_disk_recovered). */
#ifndef AG_SELFMETRICS_H
#define AG_SELFMETRICS_H

#include <stdint.h>

#include "batch.h"
#include "spool.h"
#include "traps.h"
#include "uploader.h"

#define AG_SELF_DEVICE "agent"

typedef struct ag_selfmetrics {
    const char *version; /* firmware of the inventory record (not owned) */
    int disk_ok_prev;    /* -1 = not seen yet */
    uint64_t seen_seq;   /* oldest record whose append time the spool does not know ... */
    int64_t seen_ms;     /* ... and when we first saw it */
} ag_selfmetrics;

/* Start with nothing seen; version must outlive m. */
void ag_selfmetrics_init(ag_selfmetrics *m, const char *version);
/* Write one sample of every self-metric at now_ms, the inventory of device "agent" and a
 * disk event when the disk state changed since the last call. up may be NULL (no uploader).
 * 0, or -1 when the batch refused something (out of memory). */
int ag_selfmetrics_write(ag_selfmetrics *m, cm_batch *b, const cm_spool_stats *sp,
                         const ag_uploader_stats *up, int64_t now_ms);

/* The trap receiver's counters as samples of device "agent": agent_traps_received_total,
 * agent_trap_events_total, agent_informs_acked_total, agent_traps_refused_total{reason}.
 * 0 or -1 (out of memory). */
int ag_selfmetrics_write_traps(cm_batch *b, const ag_traps_stats *t, int64_t now_ms);

#endif

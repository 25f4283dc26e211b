/* forward.h — tiered forwarding (docs/forwarding.md): every batch this collector stores is
 * sent on to each [upstream "name"] (cinema chain → province → nation) with the agent's own
 * spool (common/spool.h) and uploader (agent/uploader.h), as a batch of this collector's
 * upstream identity: agent.id = the upstream's agent_id, agent.site = the batch's site, seq
 * from the upstream's spool, devices, series and events copied.
 *
 * Exactly once across the tier: the writer's journal hooks (writer.h) frame each transaction.
 * Before it (prepare) the records it may add are written to each upstream's intent journal
 * (forward_journal.h) and synced; after it commits (settle) the records of the batches it
 * stored — not its duplicates — are appended to the spool on the upstream's own thread,
 * synced, and the journal emptied before the uploader sees them. A start after a crash
 * finishes an interrupted group from the journal against the store's last_seq, so a kill at
 * any moment loses nothing and sends nothing twice.
 *
 * An upstream with mode = summary (forward_summary.h) gets no batch as it is: each closed UTC
 * hour's roll-ups of every series, the alerts as they are stored and each day's compliance
 * figures, through the same spool and uploader; the writer's journal hooks mark the hours a
 * commit touches, the hooks of alerting (co_forward_alerts) and compliance
 * (co_forward_compliance) queue what they stored.
 *
 * One thread per upstream runs a libuv loop with the uploader; only that thread touches the
 * spool once started. It copies its counters (co_forward_stats) under a lock after every loop
 * iteration, so /metrics reads them from any thread without touching the spool or uploader. */
#ifndef CO_FORWARD_H
#define CO_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "forward_conf.h"
#include "store.h"

typedef struct co_forward co_forward;

/* One upstream's counters (docs/forwarding.md, "Watching it"): totals since this collector
 * started, the spool's state as of the forwarder thread's last loop iteration. */
typedef struct co_forward_stats {
    const char *name;         /* [upstream "name"] (the configuration's string) */
    uint64_t spooled;         /* records appended to the spool */
    uint64_t lost;            /* stored batches that could not be appended (logged) */
    uint64_t attempts;        /* upload requests started */
    uint64_t acked;           /* requests the upstream acknowledged (200) */
    uint64_t records_acked;   /* spool records acknowledged (200 and 409) */
    uint64_t retried;         /* requests that failed and will be retried (network, 5xx, 429,
                               * 401/403, a malformed answer) */
    uint64_t rejected;        /* batches refused for good (400, 413 of one record) */
    uint64_t conflicts;       /* 409 answers */
    uint64_t splits;          /* 400/413 answers that halved a request */
    int64_t last_ack_ms;      /* wall clock of the last 200, 0 = none since start */
    uint64_t spool_bytes;     /* segment bytes on disk */
    uint64_t spool_records;   /* records not yet acknowledged */
    int64_t oldest_ms;        /* wall clock the oldest of them was appended, 0 = none */
    uint64_t dropped_records; /* dropped because the spool was full (gap records upstream) */
    int disk_ok;              /* 0 while appends go to the memory ring (disk failing) */
} co_forward_stats;

/* Start a forwarder for every upstream of conf (none: *out = NULL, 0): read its token file,
 * open its spool (start-up recovery) and intent journal, finish a group a crash interrupted
 * (store: the collector's store, read for agents' last_seq), start its thread. conf must
 * outlive the forwarder. version: what agent.version says upstream. 0 or -1 with err. */
int co_forward_start(co_forward **out, const co_forward_conf *conf, co_store *store,
                     const char *version, char *err, size_t errlen);
/* The writer's journal hooks (co_writer_set_journal with ud = the co_forward). */
void co_forward_prepare(void *ud, cm_batch *const *batches, size_t n);
void co_forward_settle(void *ud, cm_batch *const *batches, const co_batch_result *results, size_t n,
                       int committed);
/* The alerting hook (co_alerting_set_hook, ud = the co_forward): alerts stored, queued for
 * every upstream in summary mode. Any thread; only queues. */
void co_forward_alerts(void *ud, const co_alert_change *c, const co_alert_outcome *o, size_t n);
/* The compliance hook (co_compliance_set_hook, ud = the co_forward): a day's figures stored,
 * queued for every upstream in summary mode. Any thread; only queues. */
void co_forward_compliance(void *ud, const char *day, const co_compliance_row *rows, size_t n,
                           int64_t updated_ms);
/* 1 when an upstream is in summary mode (the hooks are then wanted), else 0 (also for NULL). */
int co_forward_summary(const co_forward *f);
/* The number of upstreams (0 for NULL). */
size_t co_forward_count(const co_forward *f);
/* Upstream i's counters into out; thread-safe. 0, or -1 when i is out of range. */
int co_forward_stats_get(co_forward *f, size_t i, co_forward_stats *out);
/* Stop (after co_writer_stop: no group may be in flight): each upstream tries for up to
 * grace_ms to send what its spool holds, then its spool is synced, the acknowledged position
 * saved, and everything freed. What was not acknowledged is sent after the next start. */
void co_forward_stop(co_forward *f, int64_t grace_ms);

#endif

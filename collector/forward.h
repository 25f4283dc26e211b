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
 * One thread per upstream runs a libuv loop with the uploader; only that thread touches the
 * spool once started. */
#ifndef CO_FORWARD_H
#define CO_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "forward_conf.h"
#include "store.h"

typedef struct co_forward co_forward;

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
/* Stop (after co_writer_stop: no group may be in flight): each upstream tries for up to
 * grace_ms to send what its spool holds, then its spool is synced, the acknowledged position
 * saved, and everything freed. What was not acknowledged is sent after the next start. */
void co_forward_stop(co_forward *f, int64_t grace_ms);

#endif

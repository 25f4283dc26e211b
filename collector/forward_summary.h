/* forward_summary.h — an upstream's summary mode (docs/forwarding.md, "mode = summary"):
 * instead of every stored batch, the upstream gets each closed UTC hour's roll-ups of every
 * series that has samples in it (with the series' latest value), the alerts as they are stored
 * (firing and resolved ones), and each day's compliance figures whenever they are recomputed:
 * spool records of wire version 2 (wire.h), one site each, sent by the upstream's uploader like
 * any record (exactly once by seq).
 *
 * Where it got to is kept in a state file next to the spool (summary.state): the (hour, site)
 * pairs with samples stored since they were last sent, the alerts the upstream was last told
 * are firing, and the updated_ms of the last compliance figures sent. A pair is written to it
 * before the commit that stores its samples (co_fsum_prepare, the writer's journal hook), and
 * taken out only after its roll-ups are in the synced spool; so a kill at any moment neither
 * skips an hour nor sends it more than once more. At start the firing alerts, those the state
 * says the upstream holds as firing, and the compliance figures of the last three days newer
 * than the state's are sent again (the upstream's upserts are idempotent).
 *
 * Threads: co_fsum_prepare / co_fsum_settle on the writer thread; co_fsum_alerts and
 * co_fsum_compliance on any thread (they only queue, then wake the upstream's loop);
 * co_fsum_due and co_fsum_run on the upstream's loop thread, the only one touching its spool. */
#ifndef CO_FORWARD_SUMMARY_H
#define CO_FORWARD_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "forward_conf.h"
#include "store.h"

typedef struct co_fsum co_fsum;

/* Where co_fsum_run puts its records: the upstream's spool (append one record's JSON; then
 * sync what was appended), each 0 or -1 with err. */
typedef struct co_fsum_sink {
    int (*append)(void *ud, const char *json, size_t len, char *err, size_t errlen);
    int (*sync)(void *ud, char *err, size_t errlen);
    void *ud;
} co_fsum_sink;

/* Open the summary mode of upstream c (its state file in c->spool_dir; store: the collector's,
 * read for roll-ups, alerts and figures; version: agent.version upstream). wake(wake_ud) is
 * called, from any thread, when something was queued. 0 or -1 with err. */
int co_fsum_open(co_fsum **out, const co_upstream_conf *c, co_store *store, const char *version,
                 void (*wake)(void *ud), void *wake_ud, char *err, size_t errlen);
/* Free everything (after the last co_fsum_run; s may be NULL). */
void co_fsum_close(co_fsum *s);

/* Writer thread, before the group's transaction: the (hour, site) pairs its samples (and a tier
 * below's roll-ups) fall in are marked, durably when a pair is new, and held back until
 * co_fsum_settle (their data is not readable before the commit). */
void co_fsum_prepare(co_fsum *s, cm_batch *const *batches, size_t n);
/* Writer thread, after it: the pairs prepare marked are released (marked once more as touched
 * now: read again after this commit). */
void co_fsum_settle(co_fsum *s);
/* The alerting hook's part (alerting.h): alerts whose changes were stored are queued. */
void co_fsum_alerts(co_fsum *s, const co_alert_change *c, const co_alert_outcome *o, size_t n);
/* The compliance hook's part (compliance.h): a day's figures, stored at updated_ms, queued. */
void co_fsum_compliance(co_fsum *s, const char *day, const co_compliance_row *rows, size_t n,
                        int64_t updated_ms);

/* Loop thread: 1 when co_fsum_run has something to do at now_ms, else 0. */
int co_fsum_due(co_fsum *s, int64_t now_ms);
/* Loop thread: append to sink what is due at now_ms (the start's catch-up, queued alerts and
 * figures, the closed hours), sync it, then save where it got to. *records: records appended.
 * 0, or -1 with err (what was not synced is tried again at the next run). */
int co_fsum_run(co_fsum *s, int64_t now_ms, const co_fsum_sink *sink, size_t *records, char *err,
                size_t errlen);

#endif

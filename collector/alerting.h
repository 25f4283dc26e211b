/* alerting.h — judging as batches are committed: the judge (judge.h) over the rules of
 * [rules], screen settings from the store, transitions stored as alerts (store.h), webhook
 * notifications (notify.h) logged before they are sent, and a timer for absence rules.
 *
 * Data flow: writer (after commit) → co_alerting_judge → judge → store alerts → notifier.
 * Restart-safe: active alerts are restored into the judge, devices seen before seed the
 * absence watch, and pending webhook deliveries are queued again. */
#ifndef CO_ALERTING_H
#define CO_ALERTING_H

#include <stddef.h>

#include "batch.h"
#include "compliance.h"
#include "config.h"
#include "rules.h"
#include "store.h"

typedef struct co_alerting co_alerting;

typedef struct co_alerting_stats {
    unsigned long long samples, events, transitions, notifications, errors;
    size_t active; /* pending + firing alerts */
} co_alerting_stats;

/* Load the rules of cfg (rules_dir, overrides_path), restore state from s and start the
 * notifier and the timer. With rules disabled, *out is a judge-less no-op. 0 or -1 with err
 * (a bad rule file names file and JSON path). */
int co_alerting_start(co_alerting **out, co_store *s, const co_config *cfg, char *err,
                      size_t errlen);
/* The rules in force (NULL when disabled), for /api/v1/rules. */
const co_rules *co_alerting_rules(const co_alerting *a);
/* The compliance engine (compliance.h; NULL when rules are disabled), for the query API. */
co_compliance *co_alerting_compliance(const co_alerting *a);
/* Judge the stored batches of a committed group (a co_writer_hook: writer thread). */
void co_alerting_judge(void *a, cm_batch *const *batches, const co_batch_result *results, size_t n);
/* Called after each transaction that stored alert changes (co_store_alerts_apply committed),
 * with the changes and what the store made of them (out[i].id: the alert, 0 when nothing was
 * stored), on the thread that judged them (the writer's or the timer's) with the judge's lock
 * held: the hook must be quick and must not call back into alerting. For the forwarder's
 * summary mode (forward.h); data flows one way, alerting → forward. */
typedef void (*co_alerting_hook)(void *ud, const co_alert_change *c, const co_alert_outcome *out,
                                 size_t n);
/* Set (fn NULL: clear) the hook; when this returns, no call of the previous hook is running. */
void co_alerting_set_hook(co_alerting *a, co_alerting_hook fn, void *ud);
/* Counters so far. Thread-safe. */
void co_alerting_stats_get(co_alerting *a, co_alerting_stats *out);
/* Stop the timer and the notifier (waiting up to grace_ms for deliveries in flight), free. */
void co_alerting_stop(co_alerting *a, int64_t grace_ms);

#endif

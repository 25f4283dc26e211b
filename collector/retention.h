/* retention.h — the [retention] settings applied while the collector runs: one thread runs
 * the store's retention pass (co_store_retention) once at start and then every interval, and
 * logs what each pass removed. Expired login sessions go on every pass too. */
#ifndef CO_RETENTION_H
#define CO_RETENTION_H

#include <stdint.h>

#include "config.h"
#include "store.h"

typedef struct co_retention co_retention;

/* The cuts of a pass at now_ms under c (0 = keep forever); pure, for tests. */
void co_retention_cuts(const co_retention_conf *c, int64_t now_ms, co_retention_cut *out);
/* Run one pass at now_ms and log what it removed (once). 0 or -1 with err. */
int co_retention_run(co_store *s, const co_retention_conf *c, int64_t now_ms,
                     co_retention_stats *st, char *err, size_t errlen);
/* Start the thread (first pass right away). 0 or -1 with err. */
int co_retention_start(co_retention **out, co_store *s, const co_retention_conf *c, char *err,
                       size_t errlen);
/* Stop it (a pass in progress stops after its current transaction) and free; NULL is fine. */
void co_retention_stop(co_retention *r);

#endif

/* writer.h — group commit: one thread takes every queued batch, writes them in one store
 * transaction, and wakes each submitter only after the commit is durable. */
#ifndef CO_WRITER_H
#define CO_WRITER_H

#include <stddef.h>

#include "batch.h"
#include "store.h"

typedef struct co_writer co_writer;

typedef struct co_writer_stats {
    unsigned long long commits, batches, duplicates, samples, failures;
    double commit_seconds_sum; /* for /metrics: commit latency */
    double commit_seconds_max;
} co_writer_stats;

/* Start the writer thread on store s (not owned). max_group: most batches in one commit
 * (default 256). 0 or -1 with err. */
int co_writer_start(co_writer **out, co_store *s, size_t max_group, char *err, size_t errlen);
/* Called on the writer thread after each successful commit with the group's batches and
 * their results, before the submitters are woken (the batches are theirs until then). */
typedef void (*co_writer_hook)(void *ud, cm_batch *const *batches, const co_batch_result *results,
                               size_t n);
/* Set the commit hook (NULL = none). Call before the first co_writer_submit. */
void co_writer_set_hook(co_writer *w, co_writer_hook fn, void *ud);
/* Journal hooks, for a module that must record what a transaction may commit before it
 * commits (the forwarder's intent journal, collector/forward.h): prepare(ud, batches, n) on
 * the writer thread before each transaction is attempted, settle(ud, batches, results, n,
 * committed) after it, before the commit hook; committed 0 = nothing was written (results
 * not filled; a failed group is then retried batch by batch, each attempt prepared again).
 * NULL = none. Call before the first co_writer_submit. */
typedef void (*co_writer_prepare_fn)(void *ud, cm_batch *const *batches, size_t n);
typedef void (*co_writer_settle_fn)(void *ud, cm_batch *const *batches,
                                    const co_batch_result *results, size_t n, int committed);
void co_writer_set_journal(co_writer *w, co_writer_prepare_fn prepare, co_writer_settle_fn settle,
                           void *ud);
/* Queue b and block until it is committed (result filled: stored, duplicate or overlap; 0)
 * or the commit failed (-1, err).
 * b stays owned by the caller and is not touched after return. Thread-safe. */
int co_writer_submit(co_writer *w, cm_batch *b, co_batch_result *result, char *err, size_t errlen);
/* Counters so far. Thread-safe. */
void co_writer_stats_get(co_writer *w, co_writer_stats *out);
/* Finish queued work, stop the thread and free the writer. */
void co_writer_stop(co_writer *w);

#endif

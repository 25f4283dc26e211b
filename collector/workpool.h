/* workpool.h — a fixed set of threads running queued work items in arrival order: the HTTP
 * server hands each request's work (decode and commit, a query) to it, so a request that waits
 * for its commit never holds up the connections served by the same network thread. */
#ifndef CO_WORKPOOL_H
#define CO_WORKPOOL_H

#include <stddef.h>

/* One item of work, embedded in its owner (no allocation per item). fn runs on a pool thread;
 * the item is the pool's from co_workpool_submit until fn is called, then its owner's again. */
typedef struct co_work {
    void (*fn)(struct co_work *w);
    struct co_work *next;
} co_work;

typedef struct co_workpool co_workpool;

/* Start threads (1..256) threads. Returns 0, or -1 with err. */
int co_workpool_start(co_workpool **out, unsigned threads, char *err, size_t errlen);
/* Queue w (w->fn set); 0, or -1 once the pool is stopping (w is not run). */
int co_workpool_submit(co_workpool *p, co_work *w);
/* Items queued or running now. */
size_t co_workpool_pending(co_workpool *p);
/* Refuse new items, run every item already queued, join the threads, free. */
void co_workpool_stop(co_workpool *p);

#endif

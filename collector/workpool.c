/* workpool.c — a fixed thread pool over one FIFO of intrusive work items (workpool.h). */
#include "workpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"

struct co_workpool {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    co_work *head, *tail; /* queued, oldest first */
    size_t pending;       /* queued + running */
    bool stopping;
    unsigned nthreads;
    pthread_t *threads;
};

/* Take items until the pool stops and the queue is empty. */
static void *pool_main(void *arg)
{
    co_workpool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->ready, &p->lock);
        co_work *w = p->head;
        if (!w) break; /* stopping, nothing left */
        p->head = w->next;
        if (!p->head) p->tail = NULL;
        w->next = NULL;
        pthread_mutex_unlock(&p->lock);
        w->fn(w);
        pthread_mutex_lock(&p->lock);
        p->pending--;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int co_workpool_start(co_workpool **out, unsigned threads, char *err, size_t errlen)
{
    if (threads < 1 || threads > 256) {
        cm_seterr(err, errlen, "work pool: %u threads (1..256)", threads);
        return -1;
    }
    co_workpool *p = calloc(1, sizeof *p);
    if (!p || !(p->threads = calloc(threads, sizeof *p->threads))) {
        free(p);
        cm_seterr(err, errlen, "work pool: out of memory");
        return -1;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->ready, NULL);
    for (unsigned i = 0; i < threads; i++) {
        int rc = pthread_create(&p->threads[i], NULL, pool_main, p);
        if (rc != 0) {
            cm_seterr(err, errlen, "work pool: cannot start thread %u: %s", i + 1, strerror(rc));
            co_workpool_stop(p);
            return -1;
        }
        p->nthreads++;
    }
    *out = p;
    return 0;
}

int co_workpool_submit(co_workpool *p, co_work *w)
{
    pthread_mutex_lock(&p->lock);
    if (p->stopping) {
        pthread_mutex_unlock(&p->lock);
        return -1;
    }
    w->next = NULL;
    if (p->tail)
        p->tail->next = w;
    else
        p->head = w;
    p->tail = w;
    p->pending++;
    pthread_cond_signal(&p->ready);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

size_t co_workpool_pending(co_workpool *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->pending;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void co_workpool_stop(co_workpool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->ready);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->ready);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}

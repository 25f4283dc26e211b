/* test_workpool.c — the HTTP server's work pool (collector/workpool.c): items run on as many
 * threads at once as the pool has, one thread runs its items in arrival order, stop runs what
 * is queued before it joins, and a stopping pool refuses new items. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/workpool.h"

typedef struct shared {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int arrived;   /* items that reached the meeting point */
    int want;      /* items that must be there at once */
    int met;       /* items that saw all the others there */
    int order[64]; /* item numbers in the order they ran */
    int nrun;
} shared;

typedef struct item {
    co_work work;
    shared *sh;
    int no;
    int meet_ms; /* wait (at most this long) until sh->want items are running at once */
} item;

static void run_item(co_work *w)
{
    item *it = (item *)(void *)((char *)w - offsetof(item, work));
    shared *sh = it->sh;
    pthread_mutex_lock(&sh->mu);
    sh->order[sh->nrun++] = it->no;
    if (it->meet_ms) {
        sh->arrived++;
        pthread_cond_broadcast(&sh->cv);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += it->meet_ms / 1000;
        until.tv_nsec += (long)(it->meet_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (sh->arrived < sh->want)
            if (pthread_cond_timedwait(&sh->cv, &sh->mu, &until) != 0) break;
        if (sh->arrived >= sh->want) sh->met++;
    }
    pthread_mutex_unlock(&sh->mu);
}

static shared *shared_new(int want)
{
    shared *sh = calloc(1, sizeof *sh);
    assert_non_null(sh);
    pthread_mutex_init(&sh->mu, NULL);
    pthread_cond_init(&sh->cv, NULL);
    sh->want = want;
    return sh;
}

static void shared_free(shared *sh)
{
    pthread_cond_destroy(&sh->cv);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

/* Three items that each wait for the other two finish only on three threads at once. */
static void test_runs_in_parallel(void **state)
{
    (void)state;
    co_workpool *p = NULL;
    char err[128];
    assert_int_equal(co_workpool_start(&p, 3, err, sizeof err), 0);
    shared *sh = shared_new(3);
    item it[3];
    for (int i = 0; i < 3; i++) {
        it[i] = (item){.work.fn = run_item, .sh = sh, .no = i, .meet_ms = 5000};
        assert_int_equal(co_workpool_submit(p, &it[i].work), 0);
    }
    co_workpool_stop(p);
    assert_int_equal(sh->nrun, 3);
    assert_int_equal(sh->met, 3);
    shared_free(sh);
}

/* One thread: items run one after the other in the order queued, all of them before stop
 * returns; a thread count out of range is refused. */
static void test_order_and_drain(void **state)
{
    (void)state;
    co_workpool *p = NULL;
    char err[128];
    assert_int_equal(co_workpool_start(&p, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "threads"));
    assert_int_equal(co_workpool_start(&p, 257, err, sizeof err), -1);
    assert_int_equal(co_workpool_start(&p, 1, err, sizeof err), 0);
    shared *sh = shared_new(2);
    item it[40];
    /* the first item waits for a second one running beside it, which never comes on one
     * thread: it gives up after 300 ms, and everything behind it waits its turn */
    it[0] = (item){.work.fn = run_item, .sh = sh, .no = 0, .meet_ms = 300};
    assert_int_equal(co_workpool_submit(p, &it[0].work), 0);
    for (int i = 1; i < 40; i++) {
        it[i] = (item){.work.fn = run_item, .sh = sh, .no = i};
        assert_int_equal(co_workpool_submit(p, &it[i].work), 0);
    }
    assert_true(co_workpool_pending(p) >= 1);
    co_workpool_stop(p);
    assert_int_equal(sh->nrun, 40);
    assert_int_equal(sh->met, 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(sh->order[i], i);
    shared_free(sh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_in_parallel),
        cmocka_unit_test(test_order_and_drain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

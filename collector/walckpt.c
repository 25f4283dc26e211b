/* walckpt.c — checkpoints of a SQLite write-ahead log in a thread of their own (see walckpt.h).
 */
#include "walckpt.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>

#include "errbuf.h"
#include "log.h"

#define RESTART_FACTOR 16   /* the log may hold pages x this frames before it is restarted */
#define HARD_FACTOR 256     /* past pages x this the writer restarts it whatever it costs */
#define RESTART_WAIT_MS 200 /* how long a restart waits for readers still in the log */

struct co_walckpt {
    sqlite3 *w;  /* the writer's connection (its wal hook only) */
    sqlite3 *db; /* this thread's own connection */
    pthread_t th;
    pthread_mutex_t mu; /* the fields below and the wake-up */
    pthread_cond_t cv;
    pthread_mutex_t run; /* held while a checkpoint runs: SQLite lets only one at a time */
    int pages, limit, hard;
    int busy_ms;  /* the writer connection's own busy timeout, given back after a restart */
    int copied;   /* frames of the log copied into the file (0 after a restart) */
    int retry_at; /* after a restart gave up: not again before the log holds this many */
    int wake, stop;
    co_walckpt_stats st;
};

/* The writer's wal hook, after each commit (frames: the log's length). Once the log is past
 * the limit and the thread has copied nearly all of it, the writer runs a restart checkpoint
 * itself: it copies the few frames left, waits (busy handler) for readers still in the log,
 * and its next transaction writes the log from its beginning again. Otherwise the thread is
 * woken; past the hard limit the writer restarts the log whatever is left to copy. */
static int on_commit(void *ud, sqlite3 *db, const char *name, int frames)
{
    co_walckpt *c = ud;
    if (frames < c->pages) return SQLITE_OK;
    pthread_mutex_lock(&c->mu);
    if (frames < c->copied) c->copied = 0; /* the log was started again since */
    if (frames < c->retry_at - c->limit) c->retry_at = 0;
    int left = frames - c->copied;
    int due =
        frames >= c->retry_at && (frames >= c->hard || (frames >= c->limit && left <= c->pages));
    pthread_mutex_unlock(&c->mu);
    if (due) {
        pthread_mutex_lock(&c->run); /* the thread's checkpoint would make this one fail */
        /* a reader still in the log holds the writer at most this long; then later again */
        sqlite3_busy_timeout(db, RESTART_WAIT_MS);
        int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
        sqlite3_busy_timeout(db, c->busy_ms);
        pthread_mutex_lock(&c->mu);
        if (rc == SQLITE_OK) {
            c->st.restart++;
            c->copied = 0;
            c->retry_at = 0;
        } else {
            c->st.busy++;
            c->retry_at = frames + c->limit;
        }
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&c->run);
        if (rc == SQLITE_OK) return SQLITE_OK;
    }
    pthread_mutex_lock(&c->mu);
    c->wake = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return SQLITE_OK;
}

/* One passive checkpoint of the log, counted; how far it got is noted for the writer. */
static void checkpoint(co_walckpt *c)
{
    int logged = 0, copied = 0;
    pthread_mutex_lock(&c->run);
    int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &logged, &copied);
    int failed = rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED;
    pthread_mutex_lock(&c->mu); /* inside run: a restart cannot slip between */
    c->st.passive++;
    if (failed) c->st.failed++;
    if (rc == SQLITE_OK && copied > 0) c->copied = copied;
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&c->run);
    if (failed)
        cm_log_limited("wal-checkpoint", 60, CM_LOG_ERROR, "store: checkpoint of %s: %s",
                       sqlite3_db_filename(c->db, "main"), sqlite3_errmsg(c->db));
}

static void *thread_main(void *arg)
{
    co_walckpt *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        while (!c->wake && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        int stop = c->stop;
        c->wake = 0;
        pthread_mutex_unlock(&c->mu);
        if (stop) break;
        checkpoint(c);
    }
    return NULL;
}

int co_walckpt_start(co_walckpt **out, sqlite3 *w, const char *path, int pages, int busy_ms,
                     char *err, size_t errlen)
{
    *out = NULL;
    co_walckpt *c = calloc(1, sizeof *c);
    if (!c) {
        cm_seterr(err, errlen, "out of memory");
        return -1;
    }
    c->w = w;
    c->busy_ms = busy_ms;
    c->pages = pages > 0 ? pages : 1000;
    c->limit = c->pages * RESTART_FACTOR;
    c->hard = c->pages * HARD_FACTOR;
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        cm_seterr(err, errlen, "sqlite: open %s for checkpoints: %s", path,
                  c->db ? sqlite3_errmsg(c->db) : "out of memory");
        sqlite3_close(c->db);
        free(c);
        return -1;
    }
    /* the copy into the database file is synced before the log is reused */
    if (sqlite3_exec(c->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK) {
        cm_seterr(err, errlen, "sqlite: %s: %s", path, sqlite3_errmsg(c->db));
        sqlite3_close(c->db);
        free(c);
        return -1;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->run, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->th, NULL, thread_main, c) != 0) {
        cm_seterr(err, errlen, "cannot start the checkpoint thread");
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->run);
        pthread_mutex_destroy(&c->mu);
        sqlite3_close(c->db);
        free(c);
        return -1;
    }
    sqlite3_wal_hook(w, on_commit, c); /* replaces the automatic checkpoints */
    *out = c;
    return 0;
}

void co_walckpt_stop(co_walckpt *c)
{
    if (!c) return;
    sqlite3_wal_autocheckpoint(c->w, 1000); /* the hook no longer points here */
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->th, NULL);
    sqlite3_close(c->db);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->run);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void co_walckpt_get_stats(co_walckpt *c, co_walckpt_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}

/* walckpt.h — a thread that checkpoints a SQLite database's write-ahead log, so that the
 * writer thread only appends to the log and never copies pages back into the database file.
 *
 * SQLite's automatic checkpoint runs inside the commit that crosses its threshold, in the
 * committing thread: with a large store every page a commit touches is written twice by the
 * writer (log, then database file) and read back once. Here the writer's connection gets a
 * wal hook that only wakes this thread, which runs PASSIVE checkpoints on a connection of its
 * own (they never block the writer or readers). A busy writer never leaves a pause long enough
 * for them to copy the whole log, and SQLite writes the log from its beginning again only once
 * every frame has been copied and no reader is in it: so once the log holds more than a limit,
 * the writer runs a restart checkpoint itself, between two of its transactions, which has only
 * the frames the thread has not copied yet left to do and waits (busy handler) for readers. */
#ifndef CO_WALCKPT_H
#define CO_WALCKPT_H

#include <stddef.h>
#include <stdint.h>

typedef struct sqlite3 sqlite3; /* <sqlite3.h>, not needed by those that read the stats */
typedef struct co_walckpt co_walckpt;

typedef struct co_walckpt_stats {
    uint64_t passive; /* passive checkpoints the thread ran */
    uint64_t restart; /* restart checkpoints the writer ran (the log had passed the limit) */
    uint64_t busy;    /* restart checkpoints that gave up waiting (readers, the thread) */
    uint64_t failed;  /* passive checkpoints that ended in an error other than busy */
} co_walckpt_stats;

/* Start checkpointing the database at path for the writer connection w (in WAL mode): w's
 * automatic checkpoints are turned off and its wal hook wakes the thread whenever a commit
 * leaves at least `pages` frames in the log. busy_ms: w's busy timeout, which a restart
 * lowers to 200 ms while it waits for readers (one that gives up is tried again once the log
 * has grown by the limit). 0, or -1 with err (w is left as it was). */
int co_walckpt_start(co_walckpt **out, sqlite3 *w, const char *path, int pages, int busy_ms,
                     char *err, size_t errlen);
/* Stop the thread, close its connection and give w back SQLite's automatic checkpoints
 * (c may be NULL). Call from the thread that owns w, with no transaction of w open. */
void co_walckpt_stop(co_walckpt *c);
/* The counters so far (any thread). */
void co_walckpt_get_stats(co_walckpt *c, co_walckpt_stats *out);

#endif

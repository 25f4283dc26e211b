/* head.h — the samples a store holds in memory until it writes them out to its tables (its
 * "head", after Prometheus's).
 *
 * A store's transaction appends its new samples to a durable log (one record per
 * transaction: co_head_encode) and stages them here; once committed they join the head. Now
 * and then the store writes the head to its tables sorted by series and time, so that each
 * series' pages are written once for many samples instead of once per commit: whole
 * (co_head_each, then co_head_clear_locked) or in parts between its commits
 * (co_head_each_part, co_head_clear_part_locked); then it deletes the log records written
 * out. After a crash the log is replayed (co_head_replay; co_head_filter_staged drops what
 * the tables hold already). Every read of samples, latest values and roll-ups adds what the head
 * holds to what the tables hold.
 *
 * The head keeps each series' points encoded (ptcodec.h: about 3 bytes a point for a steady
 * poll of a decimal reading, instead of 16), so that it can hold many points per series and
 * each write-out touches a series' pages once for many points.
 *
 * The points of a series in the head are all newer than its newest point in the tables (its
 * watermark), so the two never hold the same sample; a store writes an older point (late or
 * replaced data) to its tables directly.
 *
 * Threads: one writer (the store's writer thread) stages, commits and clears; readers look
 * the head up while holding the read lock, which they take before their table reads begin so
 * that a flush is seen either wholly or not at all. */
#ifndef CO_HEAD_H
#define CO_HEAD_H

#include <stddef.h>
#include <stdint.h>

typedef struct co_head co_head;

typedef struct co_head_point {
    int64_t ts_ms;
    double value;
} co_head_point;

/* A new, empty head; NULL when out of memory. */
co_head *co_head_new(void);
/* Free the head and everything in it (h may be NULL). */
void co_head_free(co_head *h);

/* ---- locking: readers around their reads; the writer around commit and clear */
void co_head_rdlock(co_head *h);
void co_head_wrlock(co_head *h);
void co_head_unlock(co_head *h);

/* ---- the writer thread (no lock needed unless said) */

/* The watermark of series sid: 1 when known (*ts = its newest stored point, INT64_MIN when it
 * has none), 0 when not known yet (the store then reads it and sets it). */
int co_head_watermark(const co_head *h, int64_t sid, int64_t *ts);
/* Set the watermark of sid. 0 or -1 (out of memory). */
int co_head_set_watermark(co_head *h, int64_t sid, int64_t ts);
/* Forget every watermark (after a rollback that may have undone what they said). */
void co_head_forget_watermarks(co_head *h);
/* Stage one point of the open transaction. 0 or -1 (out of memory). */
int co_head_stage(co_head *h, int64_t sid, int64_t ts_ms, double value);
/* Points staged in the open transaction. */
size_t co_head_staged(const co_head *h);
/* The staged points as one log record, in a new buffer (*buf, *len; caller frees). 0 or -1. */
int co_head_encode(const co_head *h, unsigned char **buf, size_t *len);
/* Stage the points of a log record written by co_head_encode. 0, or -1 with err naming the
 * byte offset of what is wrong (nothing staged then). */
int co_head_replay(co_head *h, const void *rec, size_t len, char *err, size_t errlen);
/* With the write lock held, before the store commits: make room for the staged points so that
 * co_head_commit_locked cannot fail. 0 or -1 (out of memory: abort the transaction). */
int co_head_reserve_locked(co_head *h);
/* With the write lock held, after the store committed: the staged points join the head (a
 * point at a time already held replaces its value). */
void co_head_commit_locked(co_head *h);
/* Drop the staged points (the transaction was rolled back). */
void co_head_abort(co_head *h);

/* What the head holds now and has written out so far. */
typedef struct co_head_usage {
    size_t points;               /* points held (not counting staged ones) */
    size_t series;               /* series holding points */
    size_t bytes;                /* memory their encoded points take */
    uint64_t writeouts;          /* write-outs (of the whole head, or of a part) so far */
    double writeout_seconds;     /* their time in all: from co_head_each(_part) to the clear */
    double writeout_max_seconds; /* the longest: what a commit waited for one at most */
} co_head_usage;
/* The figures above (takes the read lock itself: any thread but one holding the lock). */
void co_head_get_usage(co_head *h, co_head_usage *u);

/* Points held (not counting staged ones). */
size_t co_head_points(const co_head *h);
/* Wall-clock ms of the first commit since the head was last cleared (0 = empty). */
int64_t co_head_since_ms(const co_head *h);
/* Call fn for every series held, by ascending sid, with its points in time order (for the
 * store's flush, whose time counts from here to co_head_clear_locked; the writer thread only).
 * fn returns non-zero to stop (returned). */
int co_head_each(co_head *h, int (*fn)(void *ud, int64_t sid, const co_head_point *p, size_t n),
                 void *ud);
/* With the write lock held, after the store committed a flush of everything held: empty the
 * head; each series' watermark becomes its newest point. */
void co_head_clear_locked(co_head *h);

/* A write-out in parts, so that commits go on in between. begin (or no write-out under way):
 * a new one takes the series holding points now, by ascending sid. Each call passes fn, as
 * co_head_each does, the next of those series that still hold points, whole, until at least
 * max_points points have been passed; *last = 1 when they were the last ones. Series that
 * come (or get points again) meanwhile wait for the next write-out. Call it again for the
 * same part when its transaction failed. */
int co_head_each_part(co_head *h, int begin, size_t max_points,
                      int (*fn)(void *ud, int64_t sid, const co_head_point *p, size_t n), void *ud,
                      int *last);
/* With the write lock held, after the store committed a part: empty the series the last
 * co_head_each_part passed (their watermarks become their newest points); the next part
 * follows them. */
void co_head_clear_part_locked(co_head *h);
/* Drop the staged points for which keep returns 0 (a replayed log record's points that the
 * tables hold already); keep returns 1 to keep, -1 to stop with an error (returned). */
int co_head_filter_staged(co_head *h, int (*keep)(void *ud, int64_t sid, int64_t ts_ms), void *ud);

/* ---- readers (read lock held) */

/* Points decoded from the head for a reader; reuse one for many calls, then free it. */
typedef struct co_head_buf {
    co_head_point *p;
    size_t n, cap;
} co_head_buf;

/* The points of sid with from <= ts <= to, in time order, decoded into out (out->n of them;
 * out->p grows as needed). 0, or -1 when out of memory. */
int co_head_range(const co_head *h, int64_t sid, int64_t from_ms, int64_t to_ms, co_head_buf *out);
/* Free what b holds (b stays usable). */
void co_head_buf_free(co_head_buf *b);
/* 1 and the newest point of sid when the head holds one, else 0. */
int co_head_latest(const co_head *h, int64_t sid, int64_t *ts_ms, double *value);

#endif

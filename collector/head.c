/* head.c — samples held in memory until the store writes them out (see head.h).
 *
 * Series are found by id in an open-addressing table of indexes into `ser`; each series keeps
 * its points sorted by time, encoded one after the other in a growable buffer (appends are the
 * rule; a point at or before the newest one is put in its place by decoding the series and
 * encoding it again). Watermarks live in a second table that only the writer touches.
 * Log records: "CH1", a varint count, then per point the zigzag varint deltas of sid and ts
 * against the previous point and the value's 8 bytes, little-endian. */
#include "head.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "le.h"
#include "ptcodec.h"
#include "timeutil.h"

#define REC_MAGIC "CH1"
#define REC_MAGIC_LEN 3

typedef struct hseries {
    int64_t sid;
    unsigned char *b; /* the points, in time order, encoded (ptcodec.h) */
    size_t len, cap;  /* bytes */
    size_t n;         /* points */
    co_pt_state last; /* the encoder's state after the newest point: its time and value */
    size_t reserved;  /* staged points promised room by co_head_reserve_locked */
    size_t rbytes;    /* bytes promised to them (set from the series' first staged point) */
    int64_t stg_top;  /* the newest time held or staged so far (co_head_reserve_locked) */
} hseries;

typedef struct staged {
    int64_t sid, ts;
    double v;
    size_t ix; /* its series' index in ser, found by co_head_reserve_locked */
} staged;

typedef struct wmark {
    int64_t sid, ts;
    int used;
} wmark;

struct co_head {
    pthread_rwlock_t lock;
    hseries *ser;
    size_t nser, sercap;
    uint32_t *idx; /* index + 1 into ser, 0 = empty; a power of two, at most half full */
    size_t idxcap;
    size_t points;
    int64_t since_ms;

    staged *stg; /* the open transaction's points, in the order written */
    size_t nstg, stgcap;

    wmark *wm; /* writer only; a power of two, at most half full */
    size_t nwm, wmcap;

    co_head_point *scratch; /* a series decoded to take a late point (room reserved) */
    size_t scap;

    size_t bytes;        /* capacity of every series' buffer */
    int64_t wo_start_ms; /* monotonic start of the write-out under way (0: none) */
    /* a write-out in parts: the sids held when it began, ascending; parts passed those
     * before wo_pos, the last co_head_each_part the wo_take after it */
    int64_t *wo_sids;
    size_t wo_n, wo_cap, wo_pos, wo_take;
    uint64_t writeouts; /* under the lock, with the two below */
    int64_t wo_total_ms, wo_max_ms;
};

static size_t slot_of(int64_t sid, size_t mask)
{
    uint64_t h = (uint64_t)sid * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 31;
    return (size_t)h & mask;
}

co_head *co_head_new(void)
{
    co_head *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    /* a steady stream of readers must not starve the writer's commits */
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&h->lock, &a);
    pthread_rwlockattr_destroy(&a);
    if (rc != 0) {
        free(h);
        return NULL;
    }
    return h;
}

static void series_free(co_head *h)
{
    for (size_t i = 0; i < h->nser; i++)
        free(h->ser[i].b);
    free(h->ser);
    free(h->idx);
    h->ser = NULL;
    h->idx = NULL;
    h->nser = h->sercap = h->idxcap = h->points = h->bytes = 0;
    h->since_ms = 0;
    h->wo_n = h->wo_pos = h->wo_take = 0;
}

void co_head_free(co_head *h)
{
    if (!h) return;
    series_free(h);
    free(h->wo_sids);
    free(h->stg);
    free(h->wm);
    free(h->scratch);
    pthread_rwlock_destroy(&h->lock);
    free(h);
}

void co_head_rdlock(co_head *h)
{
    pthread_rwlock_rdlock(&h->lock);
}

void co_head_wrlock(co_head *h)
{
    pthread_rwlock_wrlock(&h->lock);
}

void co_head_unlock(co_head *h)
{
    pthread_rwlock_unlock(&h->lock);
}

/* ---------------------------------------------------------------- watermarks */

static wmark *wm_find(const co_head *h, int64_t sid)
{
    if (!h->wmcap) return NULL;
    size_t mask = h->wmcap - 1;
    for (size_t j = slot_of(sid, mask); h->wm[j].used; j = (j + 1) & mask)
        if (h->wm[j].sid == sid) return &h->wm[j];
    return NULL;
}

int co_head_watermark(const co_head *h, int64_t sid, int64_t *ts)
{
    const wmark *w = wm_find(h, sid);
    if (!w) return 0;
    *ts = w->ts;
    return 1;
}

int co_head_set_watermark(co_head *h, int64_t sid, int64_t ts)
{
    wmark *w = wm_find(h, sid);
    if (w) {
        w->ts = ts;
        return 0;
    }
    if ((h->nwm + 1) * 2 > h->wmcap) {
        size_t ncap = h->wmcap ? h->wmcap * 2 : 1024;
        wmark *nw = calloc(ncap, sizeof *nw);
        if (!nw) return -1;
        for (size_t i = 0; i < h->wmcap; i++) {
            if (!h->wm[i].used) continue;
            size_t j = slot_of(h->wm[i].sid, ncap - 1);
            while (nw[j].used)
                j = (j + 1) & (ncap - 1);
            nw[j] = h->wm[i];
        }
        free(h->wm);
        h->wm = nw;
        h->wmcap = ncap;
    }
    size_t mask = h->wmcap - 1, j = slot_of(sid, mask);
    while (h->wm[j].used)
        j = (j + 1) & mask;
    h->wm[j] = (wmark){.sid = sid, .ts = ts, .used = 1};
    h->nwm++;
    return 0;
}

void co_head_forget_watermarks(co_head *h)
{
    free(h->wm);
    h->wm = NULL;
    h->nwm = h->wmcap = 0;
}

/* ---------------------------------------------------------------- staging and the log */

int co_head_stage(co_head *h, int64_t sid, int64_t ts_ms, double value)
{
    if (h->nstg == h->stgcap) {
        size_t ncap = h->stgcap ? h->stgcap * 2 : 4096;
        staged *n = realloc(h->stg, ncap * sizeof *n);
        if (!n) return -1;
        h->stg = n;
        h->stgcap = ncap;
    }
    h->stg[h->nstg++] = (staged){sid, ts_ms, value, 0};
    return 0;
}

size_t co_head_staged(const co_head *h)
{
    return h->nstg;
}

void co_head_abort(co_head *h)
{
    h->nstg = 0;
    for (size_t i = 0; i < h->nser; i++)
        h->ser[i].reserved = 0;
}

int co_head_encode(const co_head *h, unsigned char **buf, size_t *len)
{
    /* worst case per point: two 10-byte varints and 8 bytes */
    size_t cap = REC_MAGIC_LEN + 10 + h->nstg * 28;
    unsigned char *o = malloc(cap);
    if (!o) return -1;
    memcpy(o, REC_MAGIC, REC_MAGIC_LEN);
    size_t n = REC_MAGIC_LEN;
    n += co_varint_put(o + n, h->nstg);
    int64_t psid = 0, pts = 0;
    for (size_t i = 0; i < h->nstg; i++) {
        const staged *s = &h->stg[i];
        n += co_varint_put(o + n, co_zigzag(co_delta(s->sid, psid)));
        n += co_varint_put(o + n, co_zigzag(co_delta(s->ts, pts)));
        uint64_t bits;
        memcpy(&bits, &s->v, sizeof bits);
        cm_le_put64(o + n, bits);
        n += 8;
        psid = s->sid;
        pts = s->ts;
    }
    *buf = o;
    *len = n;
    return 0;
}

int co_head_replay(co_head *h, const void *rec, size_t len, char *err, size_t errlen)
{
    const unsigned char *b = rec, *p = b, *end = b + len;
    size_t before = h->nstg;
    uint64_t count;
    if (len < REC_MAGIC_LEN || memcmp(b, REC_MAGIC, REC_MAGIC_LEN) != 0) {
        cm_seterr(err, errlen, "log record: not a head record (byte 0)");
        return -1;
    }
    p += REC_MAGIC_LEN;
    if (!co_varint_get(&p, end, &count) || count > len) {
        cm_seterr(err, errlen, "log record: bad point count (byte %zu)", (size_t)(p - b));
        return -1;
    }
    int64_t sid = 0, ts = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t ds, dt;
        if (!co_varint_get(&p, end, &ds) || !co_varint_get(&p, end, &dt) || end - p < 8) {
            cm_seterr(err, errlen, "log record: point %llu truncated (byte %zu of %zu)",
                      (unsigned long long)i, (size_t)(p - b), len);
            goto fail;
        }
        sid = (int64_t)((uint64_t)sid + (uint64_t)co_unzigzag(ds));
        ts = (int64_t)((uint64_t)ts + (uint64_t)co_unzigzag(dt));
        uint64_t bits = cm_le_get64(p);
        p += 8;
        double v;
        memcpy(&v, &bits, sizeof v);
        if (co_head_stage(h, sid, ts, v) < 0) {
            cm_seterr(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (p != end) {
        cm_seterr(err, errlen, "log record: %zu bytes after the last point", (size_t)(end - p));
        goto fail;
    }
    return 0;
fail:
    h->nstg = before;
    return -1;
}

/* ---------------------------------------------------------------- the series */

static hseries *ser_find(const co_head *h, int64_t sid)
{
    if (!h->idxcap) return NULL;
    size_t mask = h->idxcap - 1;
    for (size_t j = slot_of(sid, mask); h->idx[j]; j = (j + 1) & mask)
        if (h->ser[h->idx[j] - 1].sid == sid) return &h->ser[h->idx[j] - 1];
    return NULL;
}

/* The series sid, added empty when new; NULL on out of memory. */
static hseries *ser_get(co_head *h, int64_t sid)
{
    hseries *e = ser_find(h, sid);
    if (e) return e;
    if ((h->nser + 1) * 2 > h->idxcap) {
        size_t ncap = h->idxcap ? h->idxcap * 2 : 1024;
        uint32_t *idx = calloc(ncap, sizeof *idx);
        if (!idx) return NULL;
        for (size_t i = 0; i < h->nser; i++) {
            size_t j = slot_of(h->ser[i].sid, ncap - 1);
            while (idx[j])
                j = (j + 1) & (ncap - 1);
            idx[j] = (uint32_t)i + 1;
        }
        free(h->idx);
        h->idx = idx;
        h->idxcap = ncap;
    }
    if (h->nser == h->sercap) {
        size_t ncap = h->sercap ? h->sercap * 2 : 512;
        hseries *n = realloc(h->ser, ncap * sizeof *n);
        if (!n) return NULL;
        h->ser = n;
        h->sercap = ncap;
    }
    size_t mask = h->idxcap - 1, j = slot_of(sid, mask);
    while (h->idx[j])
        j = (j + 1) & mask;
    e = &h->ser[h->nser++];
    *e = (hseries){.sid = sid};
    h->idx[j] = (uint32_t)h->nser;
    return e;
}

/* Room for `more` bytes after e's encoded points. 0 or -1. */
static int bytes_room(co_head *h, hseries *e, size_t more)
{
    if (e->len + more <= e->cap) return 0;
    size_t ncap = e->cap ? e->cap + e->cap / 2 : 64;
    while (ncap < e->len + more)
        ncap += ncap / 2;
    unsigned char *nb = realloc(e->b, ncap);
    if (!nb) return -1;
    h->bytes += ncap - e->cap;
    e->b = nb;
    e->cap = ncap;
    return 0;
}

int co_head_reserve_locked(co_head *h)
{
    int rc = 0;
    size_t scratch = 0, done = 0; /* staged points whose series is found (ix set) */
    for (size_t i = 0; i < h->nstg && rc == 0; i++) {
        staged *s = &h->stg[i];
        hseries *e = ser_get(h, s->sid);
        if (!e) {
            rc = -1;
            break;
        }
        s->ix = (size_t)(e - h->ser); /* an index: ser may still move */
        done++;
        if (!e->reserved) { /* the series' first point of this transaction */
            e->stg_top = e->n ? e->last.ts : INT64_MIN;
            e->rbytes = 0;
        }
        int64_t top = e->stg_top; /* the newest time held or staged before this point */
        size_t need = CO_PT_MAX;
        if (s->ts <= top) {
            /* may be a late point: the series is decoded and encoded again, which can grow
             * the point after it and the one after that */
            need = 3 * CO_PT_MAX;
            if (e->n + e->reserved + 1 > scratch) scratch = e->n + e->reserved + 1;
        }
        if (s->ts > top) e->stg_top = s->ts;
        e->reserved++;
        e->rbytes += need;
        if (bytes_room(h, e, e->rbytes) < 0) rc = -1;
    }
    if (rc == 0 && scratch > h->scap) {
        co_head_point *np = realloc(h->scratch, scratch * sizeof *np);
        if (!np)
            rc = -1;
        else {
            h->scratch = np;
            h->scap = scratch;
        }
    }
    if (rc < 0)
        for (size_t i = 0; i < done; i++)
            h->ser[h->stg[i].ix].reserved = 0;
    return rc;
}

/* Decode every point of e into p (room for e->n). */
static void decode_all(const hseries *e, co_head_point *p)
{
    co_pt_state st = {0};
    size_t pos = 0;
    for (size_t i = 0; i < e->n; i++)
        if (co_pt_decode(e->b, e->len, &pos, &st, &p[i].ts_ms, &p[i].value) < 0) abort();
}

/* Encode p[0..n) as e's points (its buffer has room). */
static void encode_all(hseries *e, const co_head_point *p, size_t n)
{
    co_pt_state st = {0};
    e->len = 0;
    for (size_t i = 0; i < n; i++)
        e->len += co_pt_encode(e->b + e->len, &st, p[i].ts_ms, p[i].value);
    e->n = n;
    e->last = st;
}

/* A point at or before e's newest: e decoded into the scratch, the point put in its place (a
 * time held already takes the new value) and e encoded again. 1 when e gained a point. */
static int put_late(co_head *h, hseries *e, int64_t ts, double v)
{
    co_head_point *p = h->scratch; /* room for e->n + 1 (reserved) */
    decode_all(e, p);
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p[mid].ts_ms < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t n = e->n;
    int added = 0;
    if (lo < n && p[lo].ts_ms == ts) {
        p[lo].value = v; /* the value written last */
    } else {
        memmove(&p[lo + 1], &p[lo], (n - lo) * sizeof *p);
        p[lo] = (co_head_point){ts, v};
        n++;
        added = 1;
    }
    encode_all(e, p, n);
    return added;
}

void co_head_commit_locked(co_head *h)
{
    if (h->nstg && !h->since_ms) h->since_ms = cm_now_ms();
    for (size_t i = 0; i < h->nstg; i++) {
        const staged *s = &h->stg[i];
        hseries *e = &h->ser[s->ix]; /* reserved: present, with room */
        e->reserved = 0;
        if (e->n == 0 || s->ts > e->last.ts) {
            e->len += co_pt_encode(e->b + e->len, &e->last, s->ts, s->v);
            e->n++;
            h->points++;
        } else if (put_late(h, e, s->ts, s->v)) {
            h->points++;
        }
    }
    h->nstg = 0;
}

size_t co_head_points(const co_head *h)
{
    return h->points;
}

int64_t co_head_since_ms(const co_head *h)
{
    return h->since_ms;
}

static int by_sid_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* fn for every series of sids[0..n) that holds points, in that order (whole series), until
 * max_points points have been passed; *taken: how many sids were used. */
static int pass_series(co_head *h, const int64_t *sids, size_t n, size_t max_points,
                       int (*fn)(void *ud, int64_t sid, const co_head_point *p, size_t n), void *ud,
                       size_t *taken)
{
    h->wo_start_ms = cm_mono_ms();
    co_head_point *p = NULL;
    size_t cap = 0, take = 0, passed = 0;
    int rc = 0;
    while (rc == 0 && take < n && passed < max_points) {
        const hseries *e = ser_find(h, sids[take++]);
        if (!e || !e->n) continue;
        if (e->n > cap) {
            co_head_point *np = realloc(p, e->n * sizeof *np);
            if (!np) {
                rc = -1;
                break;
            }
            p = np;
            cap = e->n;
        }
        decode_all(e, p);
        passed += e->n;
        rc = fn(ud, e->sid, p, e->n);
    }
    *taken = take;
    free(p);
    return rc;
}

/* The sids of the series holding points, ascending, into h->wo_sids. 0 or -1. */
static int snapshot_sids(co_head *h)
{
    if (h->nser > h->wo_cap) {
        int64_t *n = realloc(h->wo_sids, h->nser * sizeof *n);
        if (!n) return -1;
        h->wo_sids = n;
        h->wo_cap = h->nser;
    }
    h->wo_n = h->wo_pos = h->wo_take = 0;
    for (size_t i = 0; i < h->nser; i++)
        if (h->ser[i].n) h->wo_sids[h->wo_n++] = h->ser[i].sid;
    qsort(h->wo_sids, h->wo_n, sizeof *h->wo_sids, by_sid_value);
    return 0;
}

int co_head_each(co_head *h, int (*fn)(void *ud, int64_t sid, const co_head_point *p, size_t n),
                 void *ud)
{
    if (snapshot_sids(h) < 0) return -1;
    size_t taken;
    return pass_series(h, h->wo_sids, h->wo_n, SIZE_MAX, fn, ud, &taken);
}

int co_head_each_part(co_head *h, int begin, size_t max_points,
                      int (*fn)(void *ud, int64_t sid, const co_head_point *p, size_t n), void *ud,
                      int *last)
{
    if ((begin || h->wo_pos >= h->wo_n) && snapshot_sids(h) < 0) return -1;
    int rc = pass_series(h, h->wo_sids + h->wo_pos, h->wo_n - h->wo_pos,
                         max_points ? max_points : 1, fn, ud, &h->wo_take);
    *last = h->wo_pos + h->wo_take >= h->wo_n;
    return rc;
}

/* e was written out: its newest point becomes its watermark. */
static void raise_watermark(co_head *h, const hseries *e)
{
    int64_t ts;
    if ((!co_head_watermark(h, e->sid, &ts) || ts < e->last.ts) &&
        co_head_set_watermark(h, e->sid, e->last.ts) < 0)
        /* out of memory: a stale watermark must not stay; they are read again */
        co_head_forget_watermarks(h);
}

/* The time since pass_series began counts as one write-out. */
static void count_writeout(co_head *h)
{
    if (!h->wo_start_ms) return;
    int64_t ms = cm_mono_ms() - h->wo_start_ms;
    h->writeouts++;
    h->wo_total_ms += ms;
    if (ms > h->wo_max_ms) h->wo_max_ms = ms;
    h->wo_start_ms = 0;
}

void co_head_clear_locked(co_head *h)
{
    for (size_t i = 0; i < h->nser; i++)
        if (h->ser[i].n) raise_watermark(h, &h->ser[i]);
    series_free(h);
    count_writeout(h);
}

void co_head_clear_part_locked(co_head *h)
{
    for (size_t i = h->wo_pos; i < h->wo_pos + h->wo_take; i++) {
        hseries *e = ser_find(h, h->wo_sids[i]);
        if (!e || !e->n) continue;
        raise_watermark(h, e);
        h->points -= e->n;
        h->bytes -= e->cap;
        free(e->b);
        *e = (hseries){.sid = e->sid}; /* kept in the index, empty */
    }
    h->wo_pos += h->wo_take;
    h->wo_take = 0;
    if (h->wo_pos >= h->wo_n) h->wo_n = h->wo_pos = 0; /* the write-out is over */
    if (!h->points) h->since_ms = 0;
    count_writeout(h);
}

int co_head_filter_staged(co_head *h, int (*keep)(void *ud, int64_t sid, int64_t ts_ms), void *ud)
{
    size_t k = 0;
    for (size_t i = 0; i < h->nstg; i++) {
        int r = keep(ud, h->stg[i].sid, h->stg[i].ts);
        if (r < 0) return -1;
        if (r) h->stg[k++] = h->stg[i];
    }
    h->nstg = k;
    return 0;
}

void co_head_get_usage(co_head *h, co_head_usage *u)
{
    co_head_rdlock(h);
    *u = (co_head_usage){.points = h->points,
                         .bytes = h->bytes,
                         .writeouts = h->writeouts,
                         .writeout_seconds = (double)h->wo_total_ms / 1000.0,
                         .writeout_max_seconds = (double)h->wo_max_ms / 1000.0};
    for (size_t i = 0; i < h->nser; i++)
        u->series += h->ser[i].n > 0;
    co_head_unlock(h);
}

/* ---------------------------------------------------------------- readers */

int co_head_range(const co_head *h, int64_t sid, int64_t from_ms, int64_t to_ms, co_head_buf *out)
{
    out->n = 0;
    const hseries *e = ser_find(h, sid);
    if (!e || !e->n || from_ms > to_ms || e->last.ts < from_ms) return 0;
    co_pt_state st = {0};
    size_t pos = 0;
    for (size_t i = 0; i < e->n; i++) {
        co_head_point pt;
        if (co_pt_decode(e->b, e->len, &pos, &st, &pt.ts_ms, &pt.value) < 0) abort();
        if (pt.ts_ms < from_ms) continue;
        if (pt.ts_ms > to_ms) break;
        if (out->n == out->cap) {
            size_t ncap = out->cap ? out->cap * 2 : 64;
            co_head_point *np = realloc(out->p, ncap * sizeof *np);
            if (!np) return -1;
            out->p = np;
            out->cap = ncap;
        }
        out->p[out->n++] = pt;
    }
    return 0;
}

void co_head_buf_free(co_head_buf *b)
{
    free(b->p);
    *b = (co_head_buf){0};
}

int co_head_latest(const co_head *h, int64_t sid, int64_t *ts_ms, double *value)
{
    const hseries *e = ser_find(h, sid);
    if (!e || !e->n) return 0;
    *ts_ms = e->last.ts;
    memcpy(value, &e->last.bits, sizeof *value);
    return 1;
}

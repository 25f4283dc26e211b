/* head.c — samples held in memory until the store writes them out (see head.h).
 *
 * Series are found by id in an open-addressing table of indexes into `ser`; each series keeps
 * its points sorted by time in a growable array (appends are the rule, an out-of-order point
 * is inserted in place). Watermarks live in a second table that only the writer touches.
 * Log records: "CH1", a varint count, then per point the zigzag varint deltas of sid and ts
 * against the previous point and the value's 8 bytes, little-endian. */
#include "head.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "le.h"
#include "timeutil.h"

#define REC_MAGIC "CH1"
#define REC_MAGIC_LEN 3

typedef struct hseries {
    int64_t sid;
    co_head_point *p;
    size_t n, cap;
    size_t reserved; /* room promised to staged points by co_head_reserve_locked */
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
        free(h->ser[i].p);
    free(h->ser);
    free(h->idx);
    h->ser = NULL;
    h->idx = NULL;
    h->nser = h->sercap = h->idxcap = h->points = 0;
    h->since_ms = 0;
}

void co_head_free(co_head *h)
{
    if (!h) return;
    series_free(h);
    free(h->stg);
    free(h->wm);
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
}

static size_t put_varint(unsigned char *o, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        o[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    o[n++] = (unsigned char)v;
    return n;
}

/* 1 and *v, or 0 when the varint runs past end or over 10 bytes. */
static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
        unsigned char c = *(*p)++;
        if (shift == 63 && c > 1) return 0;
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return 1;
        }
    }
    return 0;
}

static uint64_t zigzag(int64_t d)
{
    return ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
}

static int64_t unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* Differences computed in unsigned arithmetic: wrap-around is defined and undone on decode. */
static int64_t delta(int64_t a, int64_t prev)
{
    return (int64_t)((uint64_t)a - (uint64_t)prev);
}

int co_head_encode(const co_head *h, unsigned char **buf, size_t *len)
{
    /* worst case per point: two 10-byte varints and 8 bytes */
    size_t cap = REC_MAGIC_LEN + 10 + h->nstg * 28;
    unsigned char *o = malloc(cap);
    if (!o) return -1;
    memcpy(o, REC_MAGIC, REC_MAGIC_LEN);
    size_t n = REC_MAGIC_LEN;
    n += put_varint(o + n, h->nstg);
    int64_t psid = 0, pts = 0;
    for (size_t i = 0; i < h->nstg; i++) {
        const staged *s = &h->stg[i];
        n += put_varint(o + n, zigzag(delta(s->sid, psid)));
        n += put_varint(o + n, zigzag(delta(s->ts, pts)));
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
    if (!get_varint(&p, end, &count) || count > len) {
        cm_seterr(err, errlen, "log record: bad point count (byte %zu)", (size_t)(p - b));
        return -1;
    }
    int64_t sid = 0, ts = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t ds, dt;
        if (!get_varint(&p, end, &ds) || !get_varint(&p, end, &dt) || end - p < 8) {
            cm_seterr(err, errlen, "log record: point %llu truncated (byte %zu of %zu)",
                      (unsigned long long)i, (size_t)(p - b), len);
            goto fail;
        }
        sid = (int64_t)((uint64_t)sid + (uint64_t)unzigzag(ds));
        ts = (int64_t)((uint64_t)ts + (uint64_t)unzigzag(dt));
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

int co_head_reserve_locked(co_head *h)
{
    int rc = 0;
    for (size_t i = 0; i < h->nstg && rc == 0; i++) {
        hseries *e = ser_get(h, h->stg[i].sid);
        if (!e) {
            rc = -1;
            break;
        }
        h->stg[i].ix = (size_t)(e - h->ser); /* an index: ser may still move */
        if (e->n + e->reserved + 1 > e->cap) {
            size_t ncap = e->cap ? e->cap * 2 : 8;
            while (ncap < e->n + e->reserved + 1)
                ncap *= 2;
            co_head_point *np = realloc(e->p, ncap * sizeof *np);
            if (!np) {
                rc = -1;
                break;
            }
            e->p = np;
            e->cap = ncap;
        }
        e->reserved++;
    }
    if (rc < 0)
        for (size_t i = 0; i < h->nser; i++)
            h->ser[i].reserved = 0;
    return rc;
}

/* Index of the first point of e with ts >= t. */
static size_t lower_bound(const hseries *e, int64_t t)
{
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e->p[mid].ts_ms < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void co_head_commit_locked(co_head *h)
{
    if (h->nstg && !h->since_ms) h->since_ms = cm_now_ms();
    for (size_t i = 0; i < h->nstg; i++) {
        const staged *s = &h->stg[i];
        hseries *e = &h->ser[s->ix]; /* reserved: present, with room */
        e->reserved = 0;
        if (e->n == 0 || s->ts > e->p[e->n - 1].ts_ms) {
            e->p[e->n++] = (co_head_point){s->ts, s->v};
            h->points++;
            continue;
        }
        size_t k = lower_bound(e, s->ts);
        if (k < e->n && e->p[k].ts_ms == s->ts) {
            e->p[k].value = s->v; /* the value written last */
            continue;
        }
        memmove(&e->p[k + 1], &e->p[k], (e->n - k) * sizeof *e->p);
        e->p[k] = (co_head_point){s->ts, s->v};
        e->n++;
        h->points++;
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

static int by_sid(const void *a, const void *b)
{
    const hseries *x = *(const hseries *const *)a, *y = *(const hseries *const *)b;
    return x->sid < y->sid ? -1 : x->sid > y->sid;
}

int co_head_each(co_head *h, int (*fn)(void *ud, int64_t sid, const co_head_point *p, size_t n),
                 void *ud)
{
    if (!h->nser) return 0;
    const hseries **order = malloc(h->nser * sizeof *order);
    if (!order) return -1;
    size_t n = 0;
    for (size_t i = 0; i < h->nser; i++)
        if (h->ser[i].n) order[n++] = &h->ser[i];
    qsort(order, n, sizeof *order, by_sid);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = fn(ud, order[i]->sid, order[i]->p, order[i]->n);
    free(order);
    return rc;
}

void co_head_clear_locked(co_head *h)
{
    for (size_t i = 0; i < h->nser; i++) {
        const hseries *e = &h->ser[i];
        if (!e->n) continue;
        int64_t ts;
        if ((!co_head_watermark(h, e->sid, &ts) || ts < e->p[e->n - 1].ts_ms) &&
            co_head_set_watermark(h, e->sid, e->p[e->n - 1].ts_ms) < 0)
            /* out of memory: a stale watermark must not stay; they are read again */
            co_head_forget_watermarks(h);
    }
    series_free(h);
}

/* ---------------------------------------------------------------- readers */

size_t co_head_range(const co_head *h, int64_t sid, int64_t from_ms, int64_t to_ms,
                     const co_head_point **pts)
{
    const hseries *e = ser_find(h, sid);
    *pts = NULL;
    if (!e || !e->n || from_ms > to_ms) return 0;
    size_t a = lower_bound(e, from_ms);
    size_t b = to_ms == INT64_MAX ? e->n : lower_bound(e, to_ms + 1);
    *pts = e->p + a;
    return b > a ? b - a : 0;
}

int co_head_latest(const co_head *h, int64_t sid, int64_t *ts_ms, double *value)
{
    const hseries *e = ser_find(h, sid);
    if (!e || !e->n) return 0;
    *ts_ms = e->p[e->n - 1].ts_ms;
    *value = e->p[e->n - 1].value;
    return 1;
}

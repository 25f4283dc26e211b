/* store_util.c — what both store backends compute the same way, without a database. */
#include "store_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"

int64_t co_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int co_valid_hash(const char *h)
{
    if (!h || strlen(h) != 64) return 0;
    for (const char *p = h; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
    return 1;
}

/* n in decimal followed by ':' at o; returns the bytes written (at most 21). */
static size_t put_len(char *o, size_t n)
{
    char t[20];
    size_t k = 0;
    do {
        t[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    for (size_t i = 0; i < k; i++)
        o[i] = t[k - 1 - i];
    o[k] = ':';
    return k + 1;
}

int co_key_build(char **buf, size_t *cap, size_t *len, const char *const *parts, size_t nparts)
{
    size_t need = 1;
    for (size_t i = 0; i < nparts; i++)
        need += strlen(parts[i]) + 24;
    if (need > *cap) {
        char *k = realloc(*buf, need);
        if (!k) return -1;
        *buf = k;
        *cap = need;
    }
    size_t off = 0;
    for (size_t i = 0; i < nparts; i++) {
        size_t n = strlen(parts[i]);
        off += put_len(*buf + off, n);
        memcpy(*buf + off, parts[i], n);
        off += n;
    }
    *len = off;
    return 0;
}

int co_series_key(char **buf, size_t *cap, size_t *len, const char *site, const cm_series *se)
{
    enum { MAXL = 32 };
    if (!site || !se->device || !se->metric || se->nlabels > MAXL) return -1;
    const cm_label *l[MAXL];
    for (size_t i = 0; i < se->nlabels; i++) { /* insertion sort by key: a handful of labels */
        const cm_label *x = &se->labels[i];
        if (!x->key || !x->value) return -1;
        size_t j = i;
        for (; j > 0 && strcmp(l[j - 1]->key, x->key) > 0; j--)
            l[j] = l[j - 1];
        l[j] = x;
    }
    const char *parts[3 + 2 * MAXL] = {site, se->device, se->metric};
    size_t n = 3;
    for (size_t i = 0; i < se->nlabels; i++) {
        parts[n++] = l[i]->key;
        parts[n++] = l[i]->value;
    }
    return co_key_build(buf, cap, len, parts, n);
}

int co_labels_json(const cm_series *se, char *out, char *err, size_t errlen)
{
    if (!se->nlabels) {
        memcpy(out, "{}", 3);
        return 0;
    }
    json_t *o = json_object();
    if (!o) {
        cm_seterr(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < se->nlabels; i++) {
        if (!se->labels[i].key || !se->labels[i].value ||
            json_object_set_new(o, se->labels[i].key, json_string(se->labels[i].value)) < 0) {
            json_decref(o);
            cm_seterr(err, errlen, "series %s/%s: label %zu is not valid UTF-8 text", se->device,
                      se->metric, i);
            return -1;
        }
    }
    size_t n = json_dumpb(o, out, CO_LABELS_MAX - 1, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (n == 0 || n >= CO_LABELS_MAX) {
        cm_seterr(err, errlen, "series %s/%s: labels longer than %d bytes", se->device, se->metric,
                  CO_LABELS_MAX);
        return -1;
    }
    out[n] = '\0';
    return 0;
}

int co_points_push(co_points *p, int64_t ts, double v)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        int64_t *t = realloc(p->ts, cap * sizeof *t);
        if (!t) return -1;
        p->ts = t;
        double *d = realloc(p->v, cap * sizeof *d);
        if (!d) return -1;
        p->v = d;
        p->cap = cap;
    }
    p->ts[p->n] = ts;
    p->v[p->n] = v;
    p->n++;
    return 0;
}

void co_points_free(co_points *p)
{
    free(p->ts);
    free(p->v);
}

int co_buckets_push(co_buckets *b, int64_t bucket, int64_t n, double sum, double min, double max)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        co_bucket *nb = realloc(b->b, cap * sizeof *nb);
        if (!nb) return -1;
        b->b = nb;
        b->cap = cap;
    }
    b->b[b->n++] = (co_bucket){bucket, n, sum, min, max};
    return 0;
}

int co_buckets_add_points(co_buckets *b, const co_head_point *p, size_t n, int64_t step,
                          size_t limit)
{
    if (!n) return 0;
    /* the points' buckets, oldest first */
    co_buckets hb = {0};
    for (size_t i = 0; i < n; i++) {
        int64_t k = co_floor_div(p[i].ts_ms, step) * step;
        co_bucket *last = hb.n ? &hb.b[hb.n - 1] : NULL;
        if (last && last->bucket == k) {
            last->n++;
            last->sum += p[i].value;
            if (p[i].value < last->min) last->min = p[i].value;
            if (p[i].value > last->max) last->max = p[i].value;
        } else if (co_buckets_push(&hb, k, 1, p[i].value, p[i].value, p[i].value) < 0) {
            co_buckets_free(&hb);
            return -1;
        }
    }
    /* merge both newest first: b descending, hb read backwards */
    co_buckets out = {0};
    size_t i = 0, j = hb.n;
    while (i < b->n || j > 0) {
        const co_bucket *x = i < b->n ? &b->b[i] : NULL, *y = j > 0 ? &hb.b[j - 1] : NULL;
        co_bucket m;
        if (x && y && x->bucket == y->bucket) {
            m = (co_bucket){x->bucket, x->n + y->n, x->sum + y->sum,
                            x->min < y->min ? x->min : y->min, x->max > y->max ? x->max : y->max};
            i++;
            j--;
        } else if (!y || (x && x->bucket > y->bucket)) {
            m = *x;
            i++;
        } else {
            m = *y;
            j--;
        }
        if (limit && out.n >= limit) break;
        if (co_buckets_push(&out, m.bucket, m.n, m.sum, m.min, m.max) < 0) {
            co_buckets_free(&hb);
            co_buckets_free(&out);
            return -1;
        }
    }
    co_buckets_free(&hb);
    co_buckets_free(b);
    *b = out;
    return 0;
}

int co_buckets_json(const co_buckets *b, json_t *arr)
{
    for (size_t i = b->n; i-- > 0;) {
        const co_bucket *x = &b->b[i];
        if (json_array_append_new(arr, json_pack("[I, f, f, f, I]", (json_int_t)x->bucket,
                                                 x->sum / (double)x->n, x->min, x->max,
                                                 (json_int_t)x->n)) < 0)
            return -1;
    }
    return 0;
}

void co_buckets_free(co_buckets *b)
{
    free(b->b);
    b->b = NULL;
    b->n = b->cap = 0;
}

int co_points_merge(co_points *p, const co_head_point *h, size_t n)
{
    if (!n) return 0;
    if (!p->n || p->ts[p->n - 1] < h[0].ts_ms) { /* the usual case: the head's are newer */
        for (size_t i = 0; i < n; i++)
            if (co_points_push(p, h[i].ts_ms, h[i].value) < 0) return -1;
        return 0;
    }
    size_t cap = p->n + n;
    int64_t *ts = malloc(cap * sizeof *ts);
    double *v = malloc(cap * sizeof *v);
    if (!ts || !v) {
        free(ts);
        free(v);
        return -1;
    }
    size_t i = 0, j = 0, k = 0;
    while (i < p->n || j < n) {
        if (j < n && (i == p->n || h[j].ts_ms <= p->ts[i])) {
            if (i < p->n && p->ts[i] == h[j].ts_ms) i++; /* the same sample: the head's */
            ts[k] = h[j].ts_ms;
            v[k++] = h[j++].value;
        } else {
            ts[k] = p->ts[i];
            v[k++] = p->v[i++];
        }
    }
    free(p->ts);
    free(p->v);
    p->ts = ts;
    p->v = v;
    p->n = k;
    p->cap = cap;
    return 0;
}

/* An object of an array being sorted, with its time and place. */
typedef struct by_ts {
    json_t *o;
    int64_t ts;
    size_t i;
} by_ts;

static int by_ts_cmp(const void *a, const void *b)
{
    const by_ts *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

int co_json_sort_by_ts(json_t *arr)
{
    size_t n = json_array_size(arr);
    if (n < 2) return 0;
    by_ts *v = malloc(n * sizeof *v);
    if (!v) return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        v[i] = (by_ts){json_incref(o), json_integer_value(json_object_get(o, "ts_ms")), i};
    }
    qsort(v, n, sizeof *v, by_ts_cmp);
    json_array_clear(arr);
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(arr, v[i].o) < 0) rc = -1;
    free(v);
    return rc;
}

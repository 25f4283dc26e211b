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
        off += (size_t)snprintf(*buf + off, *cap - off, "%zu:", n);
        memcpy(*buf + off, parts[i], n);
        off += n;
    }
    *len = off;
    return 0;
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

/* batch.c — the sample/batch model: arena-owned strings and arrays, series hash index. */
#include "batch.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define BATCH_BLOCK ((size_t)16 * 1024)
#define INDEX_MIN ((size_t)16)

void cm_batch_init(cm_batch *b)
{
    memset(b, 0, sizeof *b);
    cm_arena_init(&b->arena, BATCH_BLOCK);
    b->v = CM_WIRE_VERSION;
}

void cm_batch_free(cm_batch *b)
{
    cm_arena_free(&b->arena);
    cm_batch_init(b);
}

/* Copy s (NULL stays NULL) into the batch arena, cut to at most max bytes on a UTF-8
 * character boundary. *fail is set on out of memory. */
static const char *copy_cut(cm_batch *b, const char *s, size_t max, int *fail)
{
    if (!s) return NULL;
    size_t n = strnlen(s, max + 1);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* don't split a character */
    }
    char *p = cm_arena_strndup(&b->arena, s, n);
    if (!p) *fail = 1;
    return p;
}

/* Copy s into the arena if it is min..max bytes; NULL (and *fail) otherwise. */
static const char *copy_str(cm_batch *b, const char *s, size_t min, size_t max, int *fail)
{
    size_t n = s ? strnlen(s, max + 1) : 0;
    if (!s || n < min || n > max) {
        *fail = 1;
        return NULL;
    }
    char *p = cm_arena_strndup(&b->arena, s, n);
    if (!p) *fail = 1;
    return p;
}

/* Identifiers: 1..max bytes. */
static const char *copy_name(cm_batch *b, const char *s, size_t max, int *fail)
{
    return copy_str(b, s, 1, max, fail);
}

/* Grow an arena array to hold `need` elements (doubling); the old copy stays in the arena. */
static int grow(cm_batch *b, void **arr, size_t *cap, size_t elem, size_t need, size_t min)
{
    if (need <= *cap) return 0;
    size_t ncap = *cap ? *cap : min;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem) return -1;
        ncap *= 2;
    }
    void *p = cm_arena_alloc(&b->arena, ncap * elem);
    if (!p) return -1;
    if (*arr && *cap) memcpy(p, *arr, *cap * elem);
    *arr = p;
    *cap = ncap;
    return 0;
}

int cm_batch_set_agent(cm_batch *b, const char *id, const char *version, const char *site)
{
    int fail = 0;
    const char *i = copy_name(b, id, CM_MAX_NAME, &fail);
    const char *v = version ? copy_name(b, version, CM_MAX_NAME, &fail) : NULL;
    const char *s = site ? copy_name(b, site, CM_MAX_NAME, &fail) : NULL;
    if (fail) return -1;
    b->agent_id = i;
    b->agent_version = v;
    b->site = s;
    return 0;
}

int cm_batch_add_device(cm_batch *b, const cm_device_info *d)
{
    int fail = 0;
    cm_device_info c;
    c.id = copy_name(b, d->id, CM_MAX_NAME, &fail);
    c.screen = copy_cut(b, d->screen, CM_MAX_VALUE, &fail);
    c.kind = copy_cut(b, d->kind, CM_MAX_VALUE, &fail);
    c.vendor = copy_cut(b, d->vendor, CM_MAX_VALUE, &fail);
    c.model = copy_cut(b, d->model, CM_MAX_VALUE, &fail);
    c.serial = copy_cut(b, d->serial, CM_MAX_VALUE, &fail);
    c.firmware = copy_cut(b, d->firmware, CM_MAX_VALUE, &fail);
    c.profile = copy_cut(b, d->profile, CM_MAX_VALUE, &fail);
    if (fail) return -1;
    for (size_t i = 0; i < b->ndevices; i++) {
        if (strcmp(b->devices[i].id, c.id) == 0) {
            b->devices[i] = c;
            return 0;
        }
    }
    if (grow(b, (void **)&b->devices, &b->devices_cap, sizeof *b->devices, b->ndevices + 1, 8))
        return -1;
    b->devices[b->ndevices++] = c;
    return 0;
}

static int valid_severity(const char *s)
{
    return s && (!strcmp(s, "info") || !strcmp(s, "warning") || !strcmp(s, "critical"));
}

int cm_batch_add_event(cm_batch *b, const cm_event *e)
{
    if (!valid_severity(e->severity)) return -1;
    int fail = 0;
    cm_event c;
    c.device = copy_name(b, e->device, CM_MAX_NAME, &fail);
    c.ts_ms = e->ts_ms;
    c.severity = copy_name(b, e->severity, CM_MAX_NAME, &fail);
    c.code = copy_name(b, e->code, CM_MAX_NAME, &fail);
    c.text = copy_cut(b, e->text ? e->text : "", CM_MAX_TEXT, &fail);
    c.source = copy_name(b, e->source, CM_MAX_NAME, &fail);
    if (fail) return -1;
    if (grow(b, (void **)&b->events, &b->events_cap, sizeof *b->events, b->nevents + 1, 8))
        return -1;
    b->events[b->nevents++] = c;
    return 0;
}

/* Gap reasons: snake_case words of at most this many bytes (the wire's limit too). */
#define GAP_REASON_MAX 64

static int valid_reason(const char *r)
{
    size_t n = r ? strnlen(r, GAP_REASON_MAX + 1) : 0;
    if (n == 0 || n > GAP_REASON_MAX) return 0;
    if (!((r[0] >= 'a' && r[0] <= 'z') || r[0] == '_')) return 0;
    for (size_t i = 1; i < n; i++)
        if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '_'))
            return 0;
    return 1;
}

int cm_batch_add_gap(cm_batch *b, uint64_t from_seq, uint64_t to_seq, const char *reason)
{
    if (from_seq < 1 || to_seq < from_seq || to_seq > (uint64_t)INT64_MAX || !valid_reason(reason))
        return -1;
    int fail = 0;
    cm_gap g = {from_seq, to_seq, copy_name(b, reason, GAP_REASON_MAX, &fail)};
    if (fail) return -1;
    if (grow(b, (void **)&b->gaps, &b->gaps_cap, sizeof *b->gaps, b->ngaps + 1, 4)) return -1;
    b->gaps[b->ngaps++] = g;
    return 0;
}

/* ---- series index ----
 * index has 2 * index_cap uint32 words: slot i holds (series number + 1, 32-bit hash);
 * 0 marks an empty slot. Linear probing, load factor at most 1/2. */

static inline uint64_t hash_str(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    h ^= 0xff; /* separator: ("ab","c") differs from ("a","bc") */
    return h * 0x100000001b3ULL;
}

static uint32_t series_hash(const char *device, const char *metric, const cm_label *l, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = hash_str(h, device);
    h = hash_str(h, metric);
    for (size_t i = 0; i < n; i++) {
        h = hash_str(h, l[i].key);
        h = hash_str(h, l[i].value);
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (uint32_t)h;
}

static int series_equal(const cm_series *s, const char *device, const char *metric,
                        const cm_label *l, size_t n)
{
    if (s->nlabels != n || strcmp(s->metric, metric) || strcmp(s->device, device)) return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->labels[i].key, l[i].key) || strcmp(s->labels[i].value, l[i].value)) return 0;
    return 1;
}

static int index_resize(cm_batch *b, size_t cap)
{
    uint32_t *nidx = cm_arena_alloc(&b->arena, cap * 2 * sizeof *nidx);
    if (!nidx) return -1;
    memset(nidx, 0, cap * 2 * sizeof *nidx);
    size_t mask = cap - 1;
    for (size_t i = 0; i < b->index_cap; i++) {
        uint32_t ref = b->index[2 * i], h = b->index[2 * i + 1];
        if (!ref) continue;
        size_t j = h & mask;
        while (nidx[2 * j])
            j = (j + 1) & mask;
        nidx[2 * j] = ref;
        nidx[2 * j + 1] = h;
    }
    b->index = nidx;
    b->index_cap = cap;
    return 0;
}

/* Make sure the index can take `extra` more series at load factor 1/2. */
static int index_reserve(cm_batch *b, size_t extra)
{
    size_t need = b->nseries + extra;
    if (need >= UINT32_MAX / 4) return -1;
    if (need * 2 <= b->index_cap) return 0;
    size_t cap = b->index_cap ? b->index_cap : INDEX_MIN;
    while (need * 2 > cap)
        cap *= 2;
    return index_resize(b, cap);
}

int cm_batch_reserve(cm_batch *b, size_t ndevices, size_t nseries, size_t nevents)
{
    if (ndevices > SIZE_MAX / 2 || nseries > SIZE_MAX / 2 || nevents > SIZE_MAX / 2) return -1;
    if (grow(b, (void **)&b->devices, &b->devices_cap, sizeof *b->devices, b->ndevices + ndevices,
             8) ||
        grow(b, (void **)&b->series, &b->series_cap, sizeof *b->series, b->nseries + nseries, 8) ||
        grow(b, (void **)&b->events, &b->events_cap, sizeof *b->events, b->nevents + nevents, 8) ||
        index_reserve(b, nseries))
        return -1;
    return 0;
}

cm_series *cm_batch_series(cm_batch *b, const char *device, const char *metric, const char *unit,
                           const cm_label *labels, size_t nlabels)
{
    if (!device || !metric || nlabels > CM_MAX_LABELS || (nlabels && !labels)) return NULL;
    /* sort a copy of the labels by key (insertion sort: at most CM_MAX_LABELS) */
    cm_label l[CM_MAX_LABELS];
    for (size_t i = 0; i < nlabels; i++) {
        cm_label x = labels[i];
        if (!x.key || !x.value) return NULL;
        size_t j = i;
        while (j > 0 && strcmp(l[j - 1].key, x.key) > 0) {
            l[j] = l[j - 1];
            j--;
        }
        l[j] = x;
    }
    for (size_t i = 1; i < nlabels; i++)
        if (strcmp(l[i - 1].key, l[i].key) == 0) return NULL; /* duplicate label */

    uint32_t h = series_hash(device, metric, l, nlabels);
    if (index_reserve(b, 1)) return NULL;
    size_t mask = b->index_cap - 1, j = h & mask;
    for (; b->index[2 * j]; j = (j + 1) & mask) {
        if (b->index[2 * j + 1] != h) continue;
        cm_series *s = &b->series[b->index[2 * j] - 1];
        if (series_equal(s, device, metric, l, nlabels)) return s;
    }

    /* new series: copy everything into the arena */
    int fail = 0;
    cm_series s;
    memset(&s, 0, sizeof s);
    s.device = copy_name(b, device, CM_MAX_NAME, &fail);
    s.metric = copy_name(b, metric, CM_MAX_NAME, &fail);
    s.unit = unit ? copy_name(b, unit, CM_MAX_NAME, &fail) : NULL;
    if (nlabels) {
        s.labels = cm_arena_alloc(&b->arena, nlabels * sizeof *s.labels);
        if (!s.labels) return NULL;
        for (size_t i = 0; i < nlabels; i++) {
            s.labels[i].key = copy_name(b, l[i].key, CM_MAX_NAME, &fail);
            s.labels[i].value = copy_str(b, l[i].value, 0, CM_MAX_VALUE, &fail);
        }
    }
    s.nlabels = nlabels;
    if (fail) return NULL;
    if (grow(b, (void **)&b->series, &b->series_cap, sizeof *b->series, b->nseries + 1, 8))
        return NULL;
    b->series[b->nseries] = s;
    b->index[2 * j] = (uint32_t)(b->nseries + 1);
    b->index[2 * j + 1] = h;
    return &b->series[b->nseries++];
}

cm_point *cm_batch_extend_points(cm_batch *b, cm_series *s, size_t n)
{
    if (n > SIZE_MAX / 4 - s->npoints) return NULL;
    if (grow(b, (void **)&s->points, &s->cap, sizeof *s->points, s->npoints + n, 4)) return NULL;
    cm_point *p = s->points + s->npoints;
    s->npoints += n;
    b->npoints_total += n;
    return p;
}

int cm_batch_add_point(cm_batch *b, const char *device, const char *metric, const char *unit,
                       const cm_label *labels, size_t nlabels, int64_t ts_ms, double value)
{
    if (!isfinite(value)) return -1;
    cm_series *s = cm_batch_series(b, device, metric, unit, labels, nlabels);
    if (!s) return -1;
    cm_point *p = cm_batch_extend_points(b, s, 1);
    if (!p) return -1;
    p->ts_ms = ts_ms;
    p->value = value;
    return 0;
}

size_t cm_batch_points(const cm_batch *b)
{
    return b->npoints_total;
}

int cm_batch_empty(const cm_batch *b)
{
    return b->nseries == 0 && b->nevents == 0 && b->ndevices == 0 && b->ngaps == 0 &&
           !cm_batch_has_summary(b);
}

/* ---- summary sections ---- */

#define HOUR_MS 3600000LL

/* [a-z_][a-z0-9_]*, 1..CM_MAX_NAME bytes (the wire's metric and label names). */
static int valid_name(const char *s)
{
    size_t n = s ? strnlen(s, CM_MAX_NAME + 1) : 0;
    if (n == 0 || n > CM_MAX_NAME) return 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* Copies of n labels sorted by key into the arena (*out NULL for none). -1 on out of memory,
 * a label without key or value, a key that is not a name, a value too long, a repeated key. */
static int copy_labels(cm_batch *b, const cm_label *in, size_t n, cm_label **out)
{
    *out = NULL;
    if (n > CM_MAX_LABELS || (n && !in)) return -1;
    if (!n) return 0;
    cm_label l[CM_MAX_LABELS];
    for (size_t i = 0; i < n; i++) { /* insertion sort by key */
        cm_label x = in[i];
        if (!valid_name(x.key) || !x.value) return -1;
        size_t j = i;
        while (j > 0 && strcmp(l[j - 1].key, x.key) > 0) {
            l[j] = l[j - 1];
            j--;
        }
        l[j] = x;
    }
    for (size_t i = 1; i < n; i++)
        if (strcmp(l[i - 1].key, l[i].key) == 0) return -1;
    cm_label *c = cm_arena_alloc(&b->arena, n * sizeof *c);
    if (!c) return -1;
    int fail = 0;
    for (size_t i = 0; i < n; i++) {
        c[i].key = copy_name(b, l[i].key, CM_MAX_NAME, &fail);
        c[i].value = copy_str(b, l[i].value, 0, CM_MAX_VALUE, &fail);
    }
    if (fail) return -1;
    *out = c;
    return 0;
}

int cm_batch_add_rollup(cm_batch *b, const cm_rollup *r)
{
    if (!valid_name(r->metric) || (!r->nbuckets && !r->has_latest) || (r->nbuckets && !r->buckets))
        return -1;
    if (r->has_latest && !isfinite(r->latest.value)) return -1;
    for (size_t i = 0; i < r->nbuckets; i++) {
        const cm_bucket *k = &r->buckets[i];
        if (k->bucket_ms % HOUR_MS != 0 || k->n < 1 || !isfinite(k->sum) || !isfinite(k->min) ||
            !isfinite(k->max) || k->min > k->max ||
            (i > 0 && k->bucket_ms <= r->buckets[i - 1].bucket_ms))
            return -1;
    }
    if (r->nbuckets > SIZE_MAX / 2 / sizeof(cm_bucket)) return -1;
    int fail = 0;
    cm_rollup c = *r;
    c.device = copy_name(b, r->device, CM_MAX_NAME, &fail);
    c.metric = copy_name(b, r->metric, CM_MAX_NAME, &fail);
    c.unit = r->unit ? copy_name(b, r->unit, CM_MAX_NAME, &fail) : NULL;
    if (fail || copy_labels(b, r->labels, r->nlabels, &c.labels) < 0) return -1;
    c.buckets = NULL;
    if (r->nbuckets) {
        if (!(c.buckets = cm_arena_alloc(&b->arena, r->nbuckets * sizeof *c.buckets))) return -1;
        memcpy(c.buckets, r->buckets, r->nbuckets * sizeof *c.buckets);
    }
    if (grow(b, (void **)&b->rollups, &b->rollups_cap, sizeof *b->rollups, b->nrollups + 1, 8))
        return -1;
    b->rollups[b->nrollups++] = c;
    b->nbuckets_total += c.nbuckets;
    return 0;
}

static int valid_state(const char *s)
{
    return s && (!strcmp(s, "pending") || !strcmp(s, "firing") || !strcmp(s, "resolved"));
}

int cm_batch_add_alert(cm_batch *b, const cm_alert_entry *a)
{
    if (!valid_name(a->rule) || !valid_severity(a->severity) || !valid_state(a->state) ||
        (!strcmp(a->state, "firing") && !a->firing_ms) ||
        (!strcmp(a->state, "resolved") && !a->resolved_ms))
        return -1;
    int fail = 0;
    cm_alert_entry c = *a;
    c.rule = copy_name(b, a->rule, CM_MAX_NAME, &fail);
    c.screen = a->screen ? copy_str(b, a->screen, 0, CM_MAX_NAME, &fail) : NULL;
    c.device = copy_name(b, a->device, CM_MAX_NAME, &fail);
    c.severity = copy_name(b, a->severity, CM_MAX_NAME, &fail);
    c.state = copy_name(b, a->state, CM_MAX_NAME, &fail);
    c.text = a->text ? copy_cut(b, a->text, CM_MAX_TEXT, &fail) : NULL;
    if (fail || copy_labels(b, a->labels, a->nlabels, &c.labels) < 0) return -1;
    if (grow(b, (void **)&b->alerts, &b->alerts_cap, sizeof *b->alerts, b->nalerts + 1, 8))
        return -1;
    b->alerts[b->nalerts++] = c;
    return 0;
}

int cm_batch_valid_day(const char *s)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-') return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return 0;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 2000 || y > 2099 || m < 1 || m > 12 || d < 1) return 0;
    int leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    return d <= mdays[m - 1] + (m == 2 && leap);
}

static int valid_quantity(const char *q)
{
    return q && (!strcmp(q, "luminance") || !strcmp(q, "white") || !strcmp(q, "spl"));
}

int cm_batch_add_compliance(cm_batch *b, const cm_compliance_entry *c)
{
    if (!cm_batch_valid_day(c->day) || !valid_quantity(c->quantity) || c->in_ms < 0 ||
        c->in_ms > c->measured_ms)
        return -1;
    int fail = 0;
    cm_compliance_entry x = *c;
    x.screen = copy_name(b, c->screen, CM_MAX_NAME, &fail);
    x.day = copy_name(b, c->day, 10, &fail);
    x.quantity = copy_name(b, c->quantity, CM_MAX_NAME, &fail);
    if (fail) return -1;
    if (grow(b, (void **)&b->compliance, &b->compliance_cap, sizeof *b->compliance,
             b->ncompliance + 1, 8))
        return -1;
    b->compliance[b->ncompliance++] = x;
    return 0;
}

int cm_batch_has_summary(const cm_batch *b)
{
    return b->nrollups > 0 || b->nalerts > 0 || b->ncompliance > 0;
}

int cm_batch_merge_summary(cm_batch *out, const cm_batch *in)
{
    for (size_t i = 0; i < in->nrollups; i++)
        if (cm_batch_add_rollup(out, &in->rollups[i]) != 0) return -1;
    for (size_t i = 0; i < in->nalerts; i++)
        if (cm_batch_add_alert(out, &in->alerts[i]) != 0) return -1;
    for (size_t i = 0; i < in->ncompliance; i++)
        if (cm_batch_add_compliance(out, &in->compliance[i]) != 0) return -1;
    if (in->v > out->v) out->v = in->v;
    return 0;
}

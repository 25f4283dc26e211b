/* wire.c — JSON encoding of a batch (hand-written, compact) and its strict decoder (jansson). */
#include "wire.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_MIN 946684800000LL  /* 2000-01-01T00:00:00Z */
#define TS_MAX 4102444800000LL /* 2100-01-01T00:00:00Z */

#define DEFAULT_MAX_DEPTH 8
#define DEFAULT_MAX_SERIES 100000
#define DEFAULT_MAX_POINTS 1000000

int cm_wire_valid_name(const char *s)
{
    if (!s) return 0;
    const unsigned char *p = (const unsigned char *)s;
    if (!((*p >= 'a' && *p <= 'z') || *p == '_')) return 0;
    size_t n = 1;
    for (p++; *p; p++, n++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return 0;
        if (n >= CM_MAX_NAME) return 0;
    }
    return 1;
}

/* ======================================================================== encoder */

typedef struct obuf {
    char *p;
    size_t len, cap;
    int failed; /* out of memory, or a value JSON cannot express */
} obuf;

/* Make room for n more bytes plus the final NUL. */
static int ob_reserve(obuf *o, size_t n)
{
    if (o->failed) return -1;
    if (n < o->cap - o->len) return 0;
    size_t cap = o->cap ? o->cap : 1024;
    while (n >= cap - o->len) {
        if (cap > SIZE_MAX / 2) {
            o->failed = 1;
            return -1;
        }
        cap *= 2;
    }
    char *np = realloc(o->p, cap);
    if (!np) {
        o->failed = 1;
        return -1;
    }
    o->p = np;
    o->cap = cap;
    return 0;
}

static void ob_raw(obuf *o, const char *s, size_t n)
{
    if (ob_reserve(o, n)) return;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

#define OB_LIT(o, s) ob_raw((o), "" s, sizeof("" s) - 1) /* string literals only */

static void ob_u64(obuf *o, uint64_t u)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    ob_raw(o, tmp + i, sizeof tmp - i);
}

static void ob_i64(obuf *o, int64_t v)
{
    if (v < 0) {
        OB_LIT(o, "-");
        ob_u64(o, (uint64_t)0 - (uint64_t)v);
    } else {
        ob_u64(o, (uint64_t)v);
    }
}

/* Shortest of %.15g / %.17g that reads back as the same double; integral values as integers. */
static void ob_double(obuf *o, double v)
{
    if (!isfinite(v)) {
        o->failed = 1; /* NaN and infinities have no JSON form */
        return;
    }
    if (v >= -9007199254740992.0 && v <= 9007199254740992.0 && v == (double)(int64_t)v) {
        ob_i64(o, (int64_t)v);
        return;
    }
    static const double p10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
    if (v > -1e9 && v < 1e9) {
        for (int k = 1; k <= 6; k++) {
            double m = v * p10[k];
            if (m != (double)(int64_t)m || (double)(int64_t)m / p10[k] != v) continue;
            int64_t im = (int64_t)m;
            uint64_t u = im < 0 ? (uint64_t)0 - (uint64_t)im : (uint64_t)im;
            char t[32];
            int i = (int)sizeof t;
            for (int d = 0; d < k; d++) {
                t[--i] = (char)('0' + u % 10);
                u /= 10;
            }
            t[--i] = '.';
            do {
                t[--i] = (char)('0' + u % 10);
                u /= 10;
            } while (u);
            if (im < 0) t[--i] = '-';
            ob_raw(o, t + i, sizeof t - (size_t)i);
            return;
        }
    }
    char tmp[40];
    int n = snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v) n = snprintf(tmp, sizeof tmp, "%.17g", v);
    for (int i = 0; i < n; i++)
        if (tmp[i] == ',') tmp[i] = '.'; /* a locale with a decimal comma */
    ob_raw(o, tmp, (size_t)n);
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0 when it is invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return n;
}

/* A quoted JSON string; control characters escaped, invalid UTF-8 replaced by U+FFFD. */
static void ob_str(obuf *o, const char *s)
{
    if (!s) s = "";
    size_t len = strlen(s);
    if (len > (SIZE_MAX - 2) / 6 || ob_reserve(o, len * 6 + 2)) {
        o->failed = 1;
        return;
    }
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    char *w = o->p + o->len;
    *w++ = '"';
    while (p < end) {
        const unsigned char *run = p;
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p > run) {
            memcpy(w, run, (size_t)(p - run));
            w += p - run;
        }
        if (p == end) break;
        unsigned char c = *p;
        if (c >= 0x80) {
            size_t n = utf8_len(p, end);
            if (n) {
                memcpy(w, p, n);
                w += n;
                p += n;
            } else {
                memcpy(w, "\xEF\xBF\xBD", 3);
                w += 3;
                p++;
            }
            continue;
        }
        *w++ = '\\';
        switch (c) {
        case '"':
            *w++ = '"';
            break;
        case '\\':
            *w++ = '\\';
            break;
        case '\n':
            *w++ = 'n';
            break;
        case '\r':
            *w++ = 'r';
            break;
        case '\t':
            *w++ = 't';
            break;
        case '\b':
            *w++ = 'b';
            break;
        case '\f':
            *w++ = 'f';
            break;
        default:
            *w++ = 'u';
            *w++ = '0';
            *w++ = '0';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        }
        p++;
    }
    *w++ = '"';
    o->len = (size_t)(w - o->p);
}

/* ,"key":"value" when value is set. */
static void ob_opt(obuf *o, const char *key_lit, size_t key_len, const char *value)
{
    if (!value) return;
    ob_raw(o, key_lit, key_len);
    ob_str(o, value);
}
#define OB_OPT(o, k, v) ob_opt((o), "" k, sizeof("" k) - 1, (v))

/* "labels":{...} of n sorted labels. */
static void ob_labels(obuf *o, const cm_label *l, size_t n)
{
    OB_LIT(o, ",\"labels\":{");
    for (size_t j = 0; j < n; j++) {
        if (j) OB_LIT(o, ",");
        ob_str(o, l[j].key);
        OB_LIT(o, ":");
        ob_str(o, l[j].value);
    }
    OB_LIT(o, "}");
}

/* A number, or null when it is not finite (an alert's value or threshold). */
static void ob_double_or_null(obuf *o, double v)
{
    if (isfinite(v))
        ob_double(o, v);
    else
        OB_LIT(o, "null");
}

/* A timestamp, or null when 0 (an alert's firing_ms, resolved_ms). */
static void ob_ts_or_null(obuf *o, int64_t v)
{
    if (v)
        ob_i64(o, v);
    else
        OB_LIT(o, "null");
}

/* The summary sections that the batch has: ,"rollups_1h":[...],"alerts":[...],"compliance". */
static void encode_summary(obuf *o, const cm_batch *b)
{
    if (b->nrollups) {
        OB_LIT(o, ",\"rollups_1h\":[");
        for (size_t i = 0; i < b->nrollups; i++) {
            const cm_rollup *r = &b->rollups[i];
            if (i) OB_LIT(o, ",");
            OB_LIT(o, "{\"device\":");
            ob_str(o, r->device);
            OB_LIT(o, ",\"metric\":");
            ob_str(o, r->metric);
            ob_labels(o, r->labels, r->nlabels);
            OB_OPT(o, ",\"unit\":", r->unit);
            OB_LIT(o, ",\"buckets\":[");
            for (size_t j = 0; j < r->nbuckets; j++) {
                const cm_bucket *k = &r->buckets[j];
                if (j) OB_LIT(o, ",");
                OB_LIT(o, "[");
                ob_i64(o, k->bucket_ms);
                OB_LIT(o, ",");
                ob_i64(o, k->n);
                OB_LIT(o, ",");
                ob_double(o, k->sum);
                OB_LIT(o, ",");
                ob_double(o, k->min);
                OB_LIT(o, ",");
                ob_double(o, k->max);
                OB_LIT(o, "]");
            }
            OB_LIT(o, "]");
            if (r->has_latest) {
                OB_LIT(o, ",\"latest\":[");
                ob_i64(o, r->latest.ts_ms);
                OB_LIT(o, ",");
                ob_double(o, r->latest.value);
                OB_LIT(o, "]");
            }
            OB_LIT(o, "}");
        }
        OB_LIT(o, "]");
    }
    if (b->nalerts) {
        OB_LIT(o, ",\"alerts\":[");
        for (size_t i = 0; i < b->nalerts; i++) {
            const cm_alert_entry *a = &b->alerts[i];
            if (i) OB_LIT(o, ",");
            OB_LIT(o, "{\"rule\":");
            ob_str(o, a->rule);
            OB_OPT(o, ",\"screen\":", a->screen);
            OB_LIT(o, ",\"device\":");
            ob_str(o, a->device);
            ob_labels(o, a->labels, a->nlabels);
            OB_LIT(o, ",\"severity\":");
            ob_str(o, a->severity);
            OB_LIT(o, ",\"state\":");
            ob_str(o, a->state);
            OB_LIT(o, ",\"value\":");
            ob_double_or_null(o, a->value);
            OB_LIT(o, ",\"threshold\":");
            ob_double_or_null(o, a->threshold);
            OB_OPT(o, ",\"text\":", a->text);
            OB_LIT(o, ",\"started_ms\":");
            ob_i64(o, a->started_ms);
            OB_LIT(o, ",\"firing_ms\":");
            ob_ts_or_null(o, a->firing_ms);
            OB_LIT(o, ",\"resolved_ms\":");
            ob_ts_or_null(o, a->resolved_ms);
            OB_LIT(o, ",\"updated_ms\":");
            ob_i64(o, a->updated_ms);
            OB_LIT(o, "}");
        }
        OB_LIT(o, "]");
    }
    if (b->ncompliance) {
        OB_LIT(o, ",\"compliance\":[");
        for (size_t i = 0; i < b->ncompliance; i++) {
            const cm_compliance_entry *c = &b->compliance[i];
            if (i) OB_LIT(o, ",");
            OB_LIT(o, "{\"screen\":");
            ob_str(o, c->screen);
            OB_LIT(o, ",\"day\":");
            ob_str(o, c->day);
            OB_LIT(o, ",\"quantity\":");
            ob_str(o, c->quantity);
            OB_LIT(o, ",\"in_ms\":");
            ob_i64(o, c->in_ms);
            OB_LIT(o, ",\"measured_ms\":");
            ob_i64(o, c->measured_ms);
            OB_LIT(o, "}");
        }
        OB_LIT(o, "]");
    }
}

char *cm_wire_encode(const cm_batch *b, size_t *len_out)
{
    obuf o = {0};
    size_t guess = 256 + b->ngaps * 96 + b->ndevices * 256 + b->nseries * 160 +
                   b->npoints_total * 36 + b->nevents * 320 + b->nrollups * 200 +
                   b->nbuckets_total * 80 + b->nalerts * 400 + b->ncompliance * 120;
    if (ob_reserve(&o, guess)) return NULL;

    OB_LIT(&o, "{\"v\":");
    ob_i64(&o, cm_batch_has_summary(b) && b->v < CM_WIRE_VERSION_SUMMARY ? CM_WIRE_VERSION_SUMMARY
                                                                         : b->v);
    OB_LIT(&o, ",\"agent\":{\"id\":");
    ob_str(&o, b->agent_id);
    OB_OPT(&o, ",\"version\":", b->agent_version);
    OB_OPT(&o, ",\"site\":", b->site);
    OB_LIT(&o, "},\"seq\":");
    ob_u64(&o, b->seq);
    if (b->first_seq != 0 && b->first_seq != b->seq) {
        OB_LIT(&o, ",\"first_seq\":");
        ob_u64(&o, b->first_seq);
    }
    OB_LIT(&o, ",\"sent_ms\":");
    ob_i64(&o, b->sent_ms);
    if (b->ngaps) {
        OB_LIT(&o, ",\"gaps\":[");
        for (size_t i = 0; i < b->ngaps; i++) {
            if (i) OB_LIT(&o, ",");
            OB_LIT(&o, "{\"from_seq\":");
            ob_u64(&o, b->gaps[i].from_seq);
            OB_LIT(&o, ",\"to_seq\":");
            ob_u64(&o, b->gaps[i].to_seq);
            OB_LIT(&o, ",\"reason\":");
            ob_str(&o, b->gaps[i].reason);
            OB_LIT(&o, "}");
        }
        OB_LIT(&o, "]");
    }

    OB_LIT(&o, ",\"devices\":[");
    for (size_t i = 0; i < b->ndevices; i++) {
        const cm_device_info *d = &b->devices[i];
        if (i) OB_LIT(&o, ",");
        OB_LIT(&o, "{\"id\":");
        ob_str(&o, d->id);
        OB_OPT(&o, ",\"screen\":", d->screen);
        OB_OPT(&o, ",\"kind\":", d->kind);
        OB_OPT(&o, ",\"vendor\":", d->vendor);
        OB_OPT(&o, ",\"model\":", d->model);
        OB_OPT(&o, ",\"serial\":", d->serial);
        OB_OPT(&o, ",\"firmware\":", d->firmware);
        OB_OPT(&o, ",\"profile\":", d->profile);
        OB_LIT(&o, "}");
    }

    OB_LIT(&o, "],\"series\":[");
    for (size_t i = 0; i < b->nseries; i++) {
        const cm_series *s = &b->series[i];
        if (i) OB_LIT(&o, ",");
        OB_LIT(&o, "{\"device\":");
        ob_str(&o, s->device);
        OB_LIT(&o, ",\"metric\":");
        ob_str(&o, s->metric);
        OB_LIT(&o, ",\"labels\":{");
        for (size_t j = 0; j < s->nlabels; j++) {
            if (j) OB_LIT(&o, ",");
            ob_str(&o, s->labels[j].key);
            OB_LIT(&o, ":");
            ob_str(&o, s->labels[j].value);
        }
        OB_LIT(&o, "}");
        OB_OPT(&o, ",\"unit\":", s->unit);
        OB_LIT(&o, ",\"points\":[");
        for (size_t j = 0; j < s->npoints; j++) {
            if (j) OB_LIT(&o, ",");
            OB_LIT(&o, "[");
            ob_i64(&o, s->points[j].ts_ms);
            OB_LIT(&o, ",");
            ob_double(&o, s->points[j].value);
            OB_LIT(&o, "]");
        }
        OB_LIT(&o, "]}");
    }

    OB_LIT(&o, "],\"events\":[");
    for (size_t i = 0; i < b->nevents; i++) {
        const cm_event *e = &b->events[i];
        if (i) OB_LIT(&o, ",");
        OB_LIT(&o, "{\"device\":");
        ob_str(&o, e->device);
        OB_LIT(&o, ",\"ts_ms\":");
        ob_i64(&o, e->ts_ms);
        OB_LIT(&o, ",\"severity\":");
        ob_str(&o, e->severity);
        OB_LIT(&o, ",\"code\":");
        ob_str(&o, e->code);
        OB_LIT(&o, ",\"text\":");
        ob_str(&o, e->text);
        OB_LIT(&o, ",\"source\":");
        ob_str(&o, e->source);
        OB_LIT(&o, "}");
    }
    OB_LIT(&o, "]");
    encode_summary(&o, b);
    OB_LIT(&o, "}");

    if (o.failed) {
        free(o.p);
        return NULL;
    }
    o.p[o.len] = '\0';
    if (len_out) *len_out = o.len;
    return o.p;
}

/* ======================================================================== decoder */

typedef struct path_el {
    const char *key; /* NULL: array index */
    size_t idx;
} path_el;

#define PATH_MAX_DEPTH 8

typedef struct dctx {
    cm_batch *b;
    size_t max_series, max_points, npoints;
    cm_bucket *tmp; /* the buckets of the roll-up being decoded (malloc'ed, freed at the end) */
    size_t tmpcap;
    char *err, *at;
    size_t errlen, atlen;
    path_el path[PATH_MAX_DEPTH];
    int depth;
} dctx;

/* Append to a fixed buffer, truncating; *len tracks the would-be length. */
static void sb_put(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len < cap) {
        size_t room = cap - *len - 1;
        size_t k = n < room ? n : room;
        memcpy(buf + *len, s, k);
        buf[*len + k] = '\0';
    }
    *len += n;
}

/* A JSON key as it appears in a path or message: control bytes shown as '?'. */
static void sb_key(char *buf, size_t cap, size_t *len, const char *key)
{
    for (const char *k = key; *k; k++) {
        char ch = ((unsigned char)*k < 0x20 || *k == 0x7f) ? '?' : *k;
        sb_put(buf, cap, len, &ch, 1);
    }
}

static void sb_component(char *buf, size_t cap, size_t *len, const char *key, size_t idx)
{
    if (key) {
        if (*len) sb_put(buf, cap, len, ".", 1);
        sb_key(buf, cap, len, key);
    } else {
        char tmp[32];
        int n = snprintf(tmp, sizeof tmp, "[%zu]", idx);
        sb_put(buf, cap, len, tmp, (size_t)n);
    }
}

static int fail(dctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(dctx *c, const char *fmt, ...)
{
    if (c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    if (c->atlen) {
        size_t len = 0;
        c->at[0] = '\0';
        for (int i = 0; i < c->depth; i++)
            sb_component(c->at, c->atlen, &len, c->path[i].key, c->path[i].idx);
    }
    return -1;
}

static inline void push_key(dctx *c, const char *key)
{
    c->path[c->depth].key = key;
    c->path[c->depth].idx = 0;
    c->depth++;
}

static inline void push_idx(dctx *c, size_t idx)
{
    c->path[c->depth].key = NULL;
    c->path[c->depth].idx = idx;
    c->depth++;
}

static inline void pop(dctx *c)
{
    c->depth--;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    default:
        return "null";
    }
}

/* Errors at the path of a member of the current object. */
static int fail_unknown(dctx *c, const char *key)
{
    char shown[72];
    size_t len = 0;
    shown[0] = '\0';
    sb_key(shown, sizeof shown, &len, key);
    push_key(c, key);
    int rc = fail(c, "unknown key '%s%s'", shown, len >= sizeof shown ? "..." : "");
    pop(c);
    return rc;
}

static int fail_missing(dctx *c, const char *key)
{
    push_key(c, key);
    int rc = fail(c, "missing required key '%s'", key);
    pop(c);
    return rc;
}

/* The current value must be a string of min..max bytes. */
static int want_string(dctx *c, const json_t *v, size_t min, size_t max, const char **out)
{
    if (!json_is_string(v)) return fail(c, "expected a string, got %s", type_name(v));
    size_t n = json_string_length(v);
    if (n < min) return fail(c, "must not be empty");
    if (n > max) return fail(c, "longer than %zu bytes (%zu)", max, n);
    *out = json_string_value(v);
    return 0;
}

/* Member `key` of the current object as a string (v may be NULL when optional). */
static int member_string(dctx *c, const char *key, const json_t *v, int required, size_t min,
                         size_t max, const char **out)
{
    *out = NULL;
    if (!v) return required ? fail_missing(c, key) : 0;
    push_key(c, key);
    int rc = want_string(c, v, min, max, out);
    pop(c);
    return rc;
}

static int want_integer(dctx *c, const json_t *v, json_int_t *out)
{
    if (!json_is_integer(v)) return fail(c, "expected an integer, got %s", type_name(v));
    *out = json_integer_value(v);
    return 0;
}

static int want_timestamp(dctx *c, const json_t *v, int64_t *out)
{
    json_int_t t;
    if (!json_is_integer(v))
        return fail(c, "expected an integer (ms since 1970), got %s", type_name(v));
    t = json_integer_value(v);
    if (t < TS_MIN || t > TS_MAX)
        return fail(c, "timestamp %lld ms is outside 2000-01-01..2100-01-01", (long long)t);
    *out = (int64_t)t;
    return 0;
}

static int want_kind(dctx *c, const json_t *v, int object)
{
    if (object ? json_is_object(v) : json_is_array(v)) return 0;
    return fail(c, "expected %s, got %s", object ? "an object" : "an array", type_name(v));
}

static int decode_agent(dctx *c, json_t *obj)
{
    if (want_kind(c, obj, 1)) return -1;
    json_t *id = NULL, *version = NULL, *site = NULL, *v;
    const char *key;
    json_object_foreach(obj, key, v)
    {
        if (!strcmp(key, "id"))
            id = v;
        else if (!strcmp(key, "version"))
            version = v;
        else if (!strcmp(key, "site"))
            site = v;
        else
            return fail_unknown(c, key);
    }
    const char *sid, *sversion, *ssite;
    if (member_string(c, "id", id, 1, 1, CM_MAX_NAME, &sid) ||
        member_string(c, "version", version, 0, 1, CM_MAX_NAME, &sversion) ||
        member_string(c, "site", site, 0, 1, CM_MAX_NAME, &ssite))
        return -1;
    if (cm_batch_set_agent(c->b, sid, sversion, ssite)) return fail(c, "out of memory");
    return 0;
}

static const struct {
    const char *name;
    size_t off;
} device_fields[] = {
    {"id", offsetof(cm_device_info, id)},
    {"screen", offsetof(cm_device_info, screen)},
    {"kind", offsetof(cm_device_info, kind)},
    {"vendor", offsetof(cm_device_info, vendor)},
    {"model", offsetof(cm_device_info, model)},
    {"serial", offsetof(cm_device_info, serial)},
    {"firmware", offsetof(cm_device_info, firmware)},
    {"profile", offsetof(cm_device_info, profile)},
};
#define NDEVICE_FIELDS (sizeof device_fields / sizeof device_fields[0])

static int decode_device(dctx *c, json_t *obj)
{
    if (want_kind(c, obj, 1)) return -1;
    cm_device_info d;
    memset(&d, 0, sizeof d);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        size_t f = 0;
        while (f < NDEVICE_FIELDS && strcmp(key, device_fields[f].name))
            f++;
        if (f == NDEVICE_FIELDS) return fail_unknown(c, key);
        const char **slot = (const char **)((char *)&d + device_fields[f].off);
        if (member_string(c, key, v, 1, f == 0 ? 1 : 0, f == 0 ? CM_MAX_NAME : CM_MAX_VALUE, slot))
            return -1;
    }
    if (!d.id) return fail_missing(c, "id");
    if (cm_batch_add_device(c->b, &d)) return fail(c, "out of memory");
    return 0;
}

static int decode_labels(dctx *c, json_t *obj, cm_label *l, size_t *nl)
{
    *nl = 0;
    if (want_kind(c, obj, 1)) return -1;
    if (json_object_size(obj) > CM_MAX_LABELS)
        return fail(c, "more than %d labels (%zu)", CM_MAX_LABELS, json_object_size(obj));
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        push_key(c, key);
        if (!cm_wire_valid_name(key)) return fail(c, "label name must match [a-z_][a-z0-9_]*");
        if (want_string(c, v, 0, CM_MAX_VALUE, &l[*nl].value)) return -1;
        l[*nl].key = key;
        (*nl)++;
        pop(c);
    }
    return 0;
}

static int decode_points(dctx *c, json_t *arr, cm_point *out, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        json_t *pt = json_array_get(arr, j);
        push_idx(c, j);
        if (!json_is_array(pt) || json_array_size(pt) != 2) {
            if (!json_is_array(pt))
                return fail(c, "expected [ts_ms, value], got %s", type_name(pt));
            return fail(c, "expected [ts_ms, value], got %zu elements", json_array_size(pt));
        }
        json_t *ts = json_array_get(pt, 0), *val = json_array_get(pt, 1);
        push_idx(c, 0);
        if (want_timestamp(c, ts, &out[j].ts_ms)) return -1;
        pop(c);
        if (json_is_integer(val)) {
            out[j].value = (double)json_integer_value(val);
        } else if (json_is_real(val)) {
            out[j].value = json_real_value(val);
        } else {
            push_idx(c, 1);
            return fail(c, "expected a number, got %s", type_name(val));
        }
        pop(c);
    }
    return 0;
}

static int decode_series(dctx *c, json_t *obj)
{
    if (want_kind(c, obj, 1)) return -1;
    json_t *device = NULL, *metric = NULL, *labels = NULL, *unit = NULL, *points = NULL, *v;
    const char *key;
    json_object_foreach(obj, key, v)
    {
        json_t **slot = NULL;
        switch (key[0]) {
        case 'd':
            slot = strcmp(key, "device") ? NULL : &device;
            break;
        case 'm':
            slot = strcmp(key, "metric") ? NULL : &metric;
            break;
        case 'l':
            slot = strcmp(key, "labels") ? NULL : &labels;
            break;
        case 'u':
            slot = strcmp(key, "unit") ? NULL : &unit;
            break;
        case 'p':
            slot = strcmp(key, "points") ? NULL : &points;
            break;
        }
        if (!slot) return fail_unknown(c, key);
        *slot = v;
    }
    const char *sdevice, *smetric, *sunit;
    if (member_string(c, "device", device, 1, 1, CM_MAX_NAME, &sdevice) ||
        member_string(c, "metric", metric, 1, 1, CM_MAX_NAME, &smetric))
        return -1;
    if (!cm_wire_valid_name(smetric)) {
        push_key(c, "metric");
        return fail(c, "metric name must match [a-z_][a-z0-9_]*");
    }
    cm_label l[CM_MAX_LABELS];
    size_t nl = 0;
    if (labels) {
        push_key(c, "labels");
        if (decode_labels(c, labels, l, &nl)) return -1;
        pop(c);
    }
    if (member_string(c, "unit", unit, 0, 1, CM_MAX_NAME, &sunit)) return -1;
    if (!points) return fail_missing(c, "points");
    push_key(c, "points");
    if (want_kind(c, points, 0)) return -1;
    size_t n = json_array_size(points);
    if (n == 0) return fail(c, "must not be empty");
    if (n > c->max_points - c->npoints)
        return fail(c, "the batch holds more than %zu points", c->max_points);
    c->npoints += n;
    cm_series *s = cm_batch_series(c->b, sdevice, smetric, sunit, l, nl);
    cm_point *out = s ? cm_batch_extend_points(c->b, s, n) : NULL;
    if (!out) return fail(c, "out of memory");
    if (decode_points(c, points, out, n)) return -1;
    pop(c);
    return 0;
}

static int decode_event(dctx *c, json_t *obj)
{
    if (want_kind(c, obj, 1)) return -1;
    json_t *device = NULL, *ts = NULL, *severity = NULL, *code = NULL, *text = NULL, *source = NULL,
           *v;
    const char *key;
    json_object_foreach(obj, key, v)
    {
        if (!strcmp(key, "device"))
            device = v;
        else if (!strcmp(key, "ts_ms"))
            ts = v;
        else if (!strcmp(key, "severity"))
            severity = v;
        else if (!strcmp(key, "code"))
            code = v;
        else if (!strcmp(key, "text"))
            text = v;
        else if (!strcmp(key, "source"))
            source = v;
        else
            return fail_unknown(c, key);
    }
    cm_event e;
    memset(&e, 0, sizeof e);
    if (member_string(c, "device", device, 1, 1, CM_MAX_NAME, &e.device)) return -1;
    if (!ts) return fail_missing(c, "ts_ms");
    push_key(c, "ts_ms");
    if (want_timestamp(c, ts, &e.ts_ms)) return -1;
    pop(c);
    if (member_string(c, "severity", severity, 1, 1, CM_MAX_NAME, &e.severity)) return -1;
    if (strcmp(e.severity, "info") && strcmp(e.severity, "warning") &&
        strcmp(e.severity, "critical")) {
        push_key(c, "severity");
        return fail(c, "severity must be info, warning or critical");
    }
    if (member_string(c, "code", code, 1, 1, CM_MAX_NAME, &e.code) ||
        member_string(c, "text", text, 1, 0, CM_MAX_TEXT, &e.text) ||
        member_string(c, "source", source, 1, 1, CM_MAX_NAME, &e.source))
        return -1;
    if (cm_batch_add_event(c->b, &e)) return fail(c, "out of memory");
    return 0;
}

/* A positive integer member `key` of the current object (v may be NULL: missing). */
static int member_seq(dctx *c, const char *key, const json_t *v, json_int_t min, uint64_t *out)
{
    if (!v) return fail_missing(c, key);
    push_key(c, key);
    json_int_t n = 0;
    if (want_integer(c, v, &n)) return -1;
    if (n < min) return fail(c, "must be >= %lld (got %lld)", (long long)min, (long long)n);
    pop(c);
    *out = (uint64_t)n;
    return 0;
}

static int decode_gap(dctx *c, json_t *obj)
{
    if (want_kind(c, obj, 1)) return -1;
    json_t *from = NULL, *to = NULL, *reason = NULL, *v;
    const char *key;
    json_object_foreach(obj, key, v)
    {
        if (!strcmp(key, "from_seq"))
            from = v;
        else if (!strcmp(key, "to_seq"))
            to = v;
        else if (!strcmp(key, "reason"))
            reason = v;
        else
            return fail_unknown(c, key);
    }
    uint64_t f = 0, t = 0;
    const char *r;
    if (member_seq(c, "from_seq", from, 1, &f) || member_seq(c, "to_seq", to, 1, &t)) return -1;
    if (t < f) {
        push_key(c, "to_seq");
        return fail(c, "must be >= from_seq %llu (got %llu)", (unsigned long long)f,
                    (unsigned long long)t);
    }
    if (member_string(c, "reason", reason, 1, 1, CM_WIRE_MAX_REASON, &r)) return -1;
    if (!cm_wire_valid_name(r)) {
        push_key(c, "reason");
        return fail(c, "reason must match [a-z_][a-z0-9_]*");
    }
    if (cm_batch_add_gap(c->b, f, t, r)) return fail(c, "out of memory");
    return 0;
}

/* ---- summary sections (v 2) ---- */

#define HOUR_MS 3600000LL

/* The current value as a number (an integer or a real). */
static int want_number(dctx *c, const json_t *v, double *out)
{
    if (json_is_integer(v))
        *out = (double)json_integer_value(v);
    else if (json_is_real(v))
        *out = json_real_value(v);
    else
        return fail(c, "expected a number, got %s", type_name(v));
    return 0;
}

/* Member `key` as a number or null (NaN); absent is null too. */
static int member_number_or_null(dctx *c, const char *key, const json_t *v, double *out)
{
    *out = NAN;
    if (!v || json_is_null(v)) return 0;
    push_key(c, key);
    if (want_number(c, v, out)) return -1;
    pop(c);
    return 0;
}

/* Member `key` as a timestamp; required, or else absent and null give 0. */
static int member_ts(dctx *c, const char *key, const json_t *v, int required, int64_t *out)
{
    *out = 0;
    if (!v || (!required && json_is_null(v))) return required ? fail_missing(c, key) : 0;
    push_key(c, key);
    if (want_timestamp(c, v, out)) return -1;
    pop(c);
    return 0;
}

/* Member `key`: one of the NULL-terminated words of `allowed`. */
static int member_word(dctx *c, const char *key, const json_t *v, const char *const *allowed,
                       const char *what, const char **out)
{
    if (member_string(c, key, v, 1, 1, CM_MAX_NAME, out)) return -1;
    for (const char *const *w = allowed; *w; w++)
        if (!strcmp(*w, *out)) return 0;
    push_key(c, key);
    return fail(c, "%s", what);
}

/* The object's members into slots by name (names[i] -> slots[i]); an unknown key fails. */
static int take_members(dctx *c, json_t *obj, const char *const *names, json_t **slots, size_t n)
{
    if (want_kind(c, obj, 1)) return -1;
    for (size_t i = 0; i < n; i++)
        slots[i] = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        size_t i = 0;
        while (i < n && strcmp(key, names[i]) != 0)
            i++;
        if (i == n) return fail_unknown(c, key);
        slots[i] = v;
    }
    return 0;
}

/* buckets: [[bucket_ms, n, sum, min, max], ...] into c->tmp; *n set. */
static int decode_buckets(dctx *c, json_t *arr, size_t *nb)
{
    if (want_kind(c, arr, 0)) return -1;
    size_t n = json_array_size(arr);
    if (n > c->max_points - c->npoints)
        return fail(c, "the batch holds more than %zu points and buckets", c->max_points);
    c->npoints += n;
    if (n > c->tmpcap) {
        cm_bucket *t = realloc(c->tmp, n * sizeof *t);
        if (!t) return fail(c, "out of memory");
        c->tmp = t;
        c->tmpcap = n;
    }
    for (size_t j = 0; j < n; j++) {
        json_t *bk = json_array_get(arr, j);
        cm_bucket *k = &c->tmp[j];
        push_idx(c, j);
        if (!json_is_array(bk))
            return fail(c, "expected [bucket_ms, n, sum, min, max], got %s", type_name(bk));
        if (json_array_size(bk) != 5)
            return fail(c, "expected [bucket_ms, n, sum, min, max], got %zu elements",
                        json_array_size(bk));
        json_int_t cnt = 0;
        push_idx(c, 0);
        if (want_timestamp(c, json_array_get(bk, 0), &k->bucket_ms)) return -1;
        if (k->bucket_ms % HOUR_MS != 0)
            return fail(c, "must be on the hour (a multiple of 3600000 ms)");
        if (j > 0 && k->bucket_ms <= c->tmp[j - 1].bucket_ms)
            return fail(c, "buckets must be in ascending order, each hour once");
        pop(c);
        push_idx(c, 1);
        if (want_integer(c, json_array_get(bk, 1), &cnt)) return -1;
        if (cnt < 1) return fail(c, "must be >= 1 (got %lld)", (long long)cnt);
        k->n = (int64_t)cnt;
        pop(c);
        double *dst[3] = {&k->sum, &k->min, &k->max};
        for (size_t x = 0; x < 3; x++) {
            push_idx(c, 2 + x);
            if (want_number(c, json_array_get(bk, 2 + x), dst[x])) return -1;
            pop(c);
        }
        if (k->min > k->max) {
            push_idx(c, 3);
            return fail(c, "min %g is above max %g", k->min, k->max);
        }
        pop(c);
    }
    *nb = n;
    return 0;
}

static int decode_rollup(dctx *c, json_t *obj)
{
    static const char *const names[] = {"device", "metric", "labels", "unit", "buckets", "latest"};
    json_t *m[6];
    if (take_members(c, obj, names, m, 6)) return -1;
    cm_rollup r;
    memset(&r, 0, sizeof r);
    if (member_string(c, "device", m[0], 1, 1, CM_MAX_NAME, &r.device) ||
        member_string(c, "metric", m[1], 1, 1, CM_MAX_NAME, &r.metric))
        return -1;
    if (!cm_wire_valid_name(r.metric)) {
        push_key(c, "metric");
        return fail(c, "metric name must match [a-z_][a-z0-9_]*");
    }
    cm_label l[CM_MAX_LABELS];
    if (m[2]) {
        push_key(c, "labels");
        if (decode_labels(c, m[2], l, &r.nlabels)) return -1;
        pop(c);
        r.labels = l;
    }
    if (member_string(c, "unit", m[3], 0, 1, CM_MAX_NAME, &r.unit)) return -1;
    if (!m[4]) return fail_missing(c, "buckets");
    push_key(c, "buckets");
    if (decode_buckets(c, m[4], &r.nbuckets)) return -1;
    pop(c);
    r.buckets = c->tmp;
    if (m[5]) {
        push_key(c, "latest");
        json_t *ts = json_array_get(m[5], 0), *val = json_array_get(m[5], 1);
        if (!json_is_array(m[5]) || json_array_size(m[5]) != 2)
            return fail(c, "expected [ts_ms, value]");
        push_idx(c, 0);
        if (want_timestamp(c, ts, &r.latest.ts_ms)) return -1;
        pop(c);
        push_idx(c, 1);
        if (want_number(c, val, &r.latest.value)) return -1;
        pop(c);
        pop(c);
        r.has_latest = 1;
    }
    if (!r.nbuckets && !r.has_latest) {
        push_key(c, "buckets");
        return fail(c, "must not be empty without latest");
    }
    if (cm_batch_add_rollup(c->b, &r)) return fail(c, "out of memory");
    return 0;
}

static const char *const SEVERITIES[] = {"info", "warning", "critical", NULL};
static const char *const STATES[] = {"pending", "firing", "resolved", NULL};
static const char *const QUANTITIES[] = {"luminance", "white", "spl", NULL};

static int decode_alert(dctx *c, json_t *obj)
{
    static const char *const names[] = {
        "rule",      "screen", "device",     "labels",    "severity",    "state",     "value",
        "threshold", "text",   "started_ms", "firing_ms", "resolved_ms", "updated_ms"};
    json_t *m[13];
    if (take_members(c, obj, names, m, 13)) return -1;
    cm_alert_entry a;
    memset(&a, 0, sizeof a);
    if (member_string(c, "rule", m[0], 1, 1, CM_MAX_NAME, &a.rule)) return -1;
    if (!cm_wire_valid_name(a.rule)) {
        push_key(c, "rule");
        return fail(c, "rule id must match [a-z_][a-z0-9_]*");
    }
    if (member_string(c, "screen", m[1], 0, 0, CM_MAX_NAME, &a.screen) ||
        member_string(c, "device", m[2], 1, 1, CM_MAX_NAME, &a.device))
        return -1;
    cm_label l[CM_MAX_LABELS];
    if (m[3]) {
        push_key(c, "labels");
        if (decode_labels(c, m[3], l, &a.nlabels)) return -1;
        pop(c);
        a.labels = l;
    }
    if (member_word(c, "severity", m[4], SEVERITIES, "severity must be info, warning or critical",
                    &a.severity) ||
        member_word(c, "state", m[5], STATES, "state must be pending, firing or resolved",
                    &a.state) ||
        member_number_or_null(c, "value", m[6], &a.value) ||
        member_number_or_null(c, "threshold", m[7], &a.threshold) ||
        member_string(c, "text", m[8], 0, 0, CM_MAX_TEXT, &a.text) ||
        member_ts(c, "started_ms", m[9], 1, &a.started_ms) ||
        member_ts(c, "firing_ms", m[10], 0, &a.firing_ms) ||
        member_ts(c, "resolved_ms", m[11], 0, &a.resolved_ms) ||
        member_ts(c, "updated_ms", m[12], 1, &a.updated_ms))
        return -1;
    if (!strcmp(a.state, "firing") && !a.firing_ms) {
        push_key(c, "firing_ms");
        return fail(c, "required when the state is firing");
    }
    if (!strcmp(a.state, "resolved") && !a.resolved_ms) {
        push_key(c, "resolved_ms");
        return fail(c, "required when the state is resolved");
    }
    if (cm_batch_add_alert(c->b, &a)) return fail(c, "out of memory");
    return 0;
}

/* A non-negative integer member (required). */
static int member_ms(dctx *c, const char *key, const json_t *v, int64_t *out)
{
    if (!v) return fail_missing(c, key);
    push_key(c, key);
    json_int_t n = 0;
    if (want_integer(c, v, &n)) return -1;
    if (n < 0) return fail(c, "must be >= 0 (got %lld)", (long long)n);
    pop(c);
    *out = (int64_t)n;
    return 0;
}

static int decode_compliance(dctx *c, json_t *obj)
{
    static const char *const names[] = {"screen", "day", "quantity", "in_ms", "measured_ms"};
    json_t *m[5];
    if (take_members(c, obj, names, m, 5)) return -1;
    cm_compliance_entry e;
    memset(&e, 0, sizeof e);
    if (member_string(c, "screen", m[0], 1, 1, CM_MAX_NAME, &e.screen) ||
        member_string(c, "day", m[1], 1, 1, 16, &e.day))
        return -1;
    if (!cm_batch_valid_day(e.day)) {
        push_key(c, "day");
        return fail(c, "expected a date YYYY-MM-DD between 2000 and 2099");
    }
    if (member_word(c, "quantity", m[2], QUANTITIES, "quantity must be luminance, white or spl",
                    &e.quantity) ||
        member_ms(c, "in_ms", m[3], &e.in_ms) || member_ms(c, "measured_ms", m[4], &e.measured_ms))
        return -1;
    if (e.in_ms > e.measured_ms) {
        push_key(c, "in_ms");
        return fail(c, "must not exceed measured_ms (%lld)", (long long)e.measured_ms);
    }
    if (cm_batch_add_compliance(c->b, &e)) return fail(c, "out of memory");
    return 0;
}

/* An array member of the root: every element decoded by fn. */
static int decode_list(dctx *c, json_t *arr, int (*fn)(dctx *, json_t *))
{
    size_t i;
    json_t *el;
    json_array_foreach(arr, i, el)
    {
        push_idx(c, i);
        if (fn(c, el)) return -1;
        pop(c);
    }
    return 0;
}

static int decode_root(dctx *c, json_t *root)
{
    if (want_kind(c, root, 1)) return -1;
    json_t *v = json_object_get(root, "v");
    if (!v) return fail_missing(c, "v");
    push_key(c, "v");
    if (!json_is_integer(v)) return fail(c, "expected an integer, got %s", type_name(v));
    if (json_integer_value(v) != CM_WIRE_VERSION &&
        json_integer_value(v) != CM_WIRE_VERSION_SUMMARY)
        return fail(c, "unsupported version %lld (this side speaks %d and %d)",
                    (long long)json_integer_value(v), CM_WIRE_VERSION, CM_WIRE_VERSION_SUMMARY);
    pop(c);
    c->b->v = (int)json_integer_value(v);

    json_t *devices = NULL, *series = NULL, *events = NULL, *gaps = NULL;
    json_t *rollups = NULL, *alerts = NULL, *compliance = NULL;
    int have_agent = 0, have_seq = 0, have_sent = 0;
    uint64_t first_seq = 0;
    const char *key;
    json_object_foreach(root, key, v)
    {
        if (!strcmp(key, "v")) continue;
        push_key(c, key);
        if (!strcmp(key, "agent")) {
            if (decode_agent(c, v)) return -1;
            have_agent = 1;
        } else if (!strcmp(key, "seq")) {
            json_int_t seq = 0;
            if (want_integer(c, v, &seq)) return -1;
            if (seq < 1) return fail(c, "must be >= 1 (got %lld)", (long long)seq);
            c->b->seq = (uint64_t)seq;
            have_seq = 1;
        } else if (!strcmp(key, "first_seq")) {
            json_int_t fs = 0;
            if (want_integer(c, v, &fs)) return -1;
            if (fs < 1) return fail(c, "must be >= 1 (got %lld)", (long long)fs);
            first_seq = (uint64_t)fs;
        } else if (!strcmp(key, "gaps")) {
            if (want_kind(c, v, 0)) return -1;
            if (json_array_size(v) > CM_WIRE_MAX_GAPS)
                return fail(c, "more than %d gaps (%zu)", CM_WIRE_MAX_GAPS, json_array_size(v));
            gaps = v;
        } else if (!strcmp(key, "sent_ms")) {
            json_int_t ms = 0;
            if (want_integer(c, v, &ms)) return -1;
            if (ms < 0) return fail(c, "must be >= 0 (got %lld)", (long long)ms);
            c->b->sent_ms = (int64_t)ms;
            have_sent = 1;
        } else if (!strcmp(key, "devices")) {
            if (want_kind(c, v, 0)) return -1;
            devices = v;
        } else if (!strcmp(key, "series")) {
            if (want_kind(c, v, 0)) return -1;
            if (json_array_size(v) > c->max_series)
                return fail(c, "more than %zu series (%zu)", c->max_series, json_array_size(v));
            series = v;
        } else if (!strcmp(key, "events")) {
            if (want_kind(c, v, 0)) return -1;
            events = v;
        } else if (!strcmp(key, "rollups_1h") || !strcmp(key, "alerts") ||
                   !strcmp(key, "compliance")) {
            if (c->b->v != CM_WIRE_VERSION_SUMMARY)
                return fail(c, "a summary section needs \"v\": %d", CM_WIRE_VERSION_SUMMARY);
            if (want_kind(c, v, 0)) return -1;
            size_t max = key[0] == 'r'   ? c->max_series
                         : key[0] == 'a' ? (size_t)CM_WIRE_MAX_ALERTS
                                         : (size_t)CM_WIRE_MAX_COMPLIANCE;
            if (json_array_size(v) > max)
                return fail(c, "more than %zu entries (%zu)", max, json_array_size(v));
            if (key[0] == 'r')
                rollups = v;
            else if (key[0] == 'a')
                alerts = v;
            else
                compliance = v;
        } else {
            pop(c);
            return fail_unknown(c, key);
        }
        pop(c);
    }
    if (!have_agent) return fail_missing(c, "agent");
    if (!have_seq) return fail_missing(c, "seq");
    if (!have_sent) return fail_missing(c, "sent_ms");
    if (first_seq > c->b->seq) {
        push_key(c, "first_seq");
        return fail(c, "must be <= seq %llu (got %llu)", (unsigned long long)c->b->seq,
                    (unsigned long long)first_seq);
    }
    c->b->first_seq = first_seq;
    if (gaps) {
        push_key(c, "gaps");
        if (decode_list(c, gaps, decode_gap)) return -1;
        pop(c);
    }

    if (c->b->v == CM_WIRE_VERSION_SUMMARY &&
        (json_array_size(series) || json_array_size(events))) {
        push_key(c, json_array_size(series) ? "series" : "events");
        return fail(c, "a batch of version %d (a summary) carries no samples and no events",
                    CM_WIRE_VERSION_SUMMARY);
    }
    if (cm_batch_reserve(c->b, json_array_size(devices), json_array_size(series),
                         json_array_size(events)))
        return fail(c, "out of memory");
    if (devices) {
        push_key(c, "devices");
        if (decode_list(c, devices, decode_device)) return -1;
        pop(c);
    }
    if (series) {
        push_key(c, "series");
        if (decode_list(c, series, decode_series)) return -1;
        pop(c);
    }
    if (events) {
        push_key(c, "events");
        if (decode_list(c, events, decode_event)) return -1;
        pop(c);
    }
    struct {
        const char *key;
        json_t *arr;
        int (*fn)(dctx *, json_t *);
    } sections[] = {{"rollups_1h", rollups, decode_rollup},
                    {"alerts", alerts, decode_alert},
                    {"compliance", compliance, decode_compliance}};
    for (size_t i = 0; i < 3; i++) {
        if (!sections[i].arr) continue;
        push_key(c, sections[i].key);
        if (decode_list(c, sections[i].arr, sections[i].fn)) return -1;
        pop(c);
    }
    return 0;
}

/* ---- nesting depth ---- */

/* Scan brackets outside strings; -1 and the offending offset when deeper than max. */
static int prescan_depth(const char *buf, size_t len, size_t max, size_t *where)
{
    const unsigned char *p = (const unsigned char *)buf, *end = p + len;
    size_t depth = 0;
    while (p < end) {
        unsigned char ch = *p++;
        if (ch == '"') {
            /* to the closing quote: one not preceded by an odd run of backslashes */
            for (;;) {
                const unsigned char *q = memchr(p, '"', (size_t)(end - p));
                if (!q) return 0; /* unterminated: jansson will say so */
                size_t bs = 0;
                while (q - bs > p && q[-1 - (ptrdiff_t)bs] == '\\')
                    bs++;
                p = q + 1;
                if (bs % 2 == 0) break;
            }
        } else if (ch == '{' || ch == '[') {
            if (++depth > max) {
                *where = (size_t)(p - 1 - (const unsigned char *)buf);
                return -1;
            }
        } else if (ch == '}' || ch == ']') {
            if (depth) depth--;
        }
    }
    return 0;
}

/* Path of the first container nested deeper than max (level = containers around v). */
static int find_deep(const json_t *v, size_t level, size_t max, char *path, size_t cap, size_t len)
{
    if (!json_is_object(v) && !json_is_array(v)) return 0;
    if (level + 1 > max) return 1;
    if (json_is_object(v)) {
        const char *key;
        const json_t *m;
        json_object_foreach((json_t *)v, key, m)
        {
            size_t l = len;
            sb_component(path, cap, &l, key, 0);
            if (find_deep(m, level + 1, max, path, cap, l)) return 1;
            if (len < cap) path[len] = '\0';
        }
    } else {
        size_t i;
        const json_t *m;
        json_array_foreach(v, i, m)
        {
            size_t l = len;
            sb_component(path, cap, &l, NULL, i);
            if (find_deep(m, level + 1, max, path, cap, l)) return 1;
            if (len < cap) path[len] = '\0';
        }
    }
    return 0;
}

static void line_col(const char *buf, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (buf[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* ---- per-thread scratch arena for jansson: its memory is reused from one decode to the next
 * (fresh pages cost more than the parse saves), freed when the thread exits. */

#define SCRATCH_BLOCK ((size_t)256 * 1024)
#define SCRATCH_KEEP_MAX ((size_t)16 * 1024 * 1024)

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_destroy(void *p)
{
    cm_arena_free(p);
    free(p);
}

static void scratch_init(void)
{
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_destroy) == 0;
}

/* NULL when it cannot be had: jansson then uses the heap. */
static cm_arena *scratch_arena(void)
{
    pthread_once(&scratch_once, scratch_init);
    if (!scratch_key_ok) return NULL;
    cm_arena *a = pthread_getspecific(scratch_key);
    if (a) return a;
    a = malloc(sizeof *a);
    if (!a) return NULL;
    cm_arena_init(a, SCRATCH_BLOCK);
    if (pthread_setspecific(scratch_key, a) != 0) {
        free(a);
        return NULL;
    }
    return a;
}

int cm_wire_decode(const char *buf, size_t len, const cm_wire_limits *limits, cm_batch *out,
                   char *err, size_t errlen, char *at, size_t atlen)
{
    if (errlen) err[0] = '\0';
    if (atlen) at[0] = '\0';
    if (!buf) {
        buf = "";
        len = 0;
    }
    size_t max_depth = limits && limits->max_depth ? limits->max_depth : DEFAULT_MAX_DEPTH;
    dctx c;
    memset(&c, 0, sizeof c);
    c.b = out;
    c.max_series = limits && limits->max_series ? limits->max_series : DEFAULT_MAX_SERIES;
    c.max_points = limits && limits->max_points ? limits->max_points : DEFAULT_MAX_POINTS;
    c.err = err;
    c.errlen = errlen;
    c.at = at;
    c.atlen = atlen;

    size_t deep_at = 0;
    int too_deep = prescan_depth(buf, len, max_depth, &deep_at) != 0;

    /* jansson's allocations go to this thread's scratch arena, reset after the call */
    cm_arena *scratch = scratch_arena();
    cm_arena *prev = cm_arena_json_current();
    if (scratch) cm_arena_json_use(scratch);

    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    int rc = -1;
    if (too_deep) {
        if (atlen && root) find_deep(root, 0, max_depth, at, atlen, 0);
        if (root && atlen && at[0]) {
            snprintf(err, errlen, "nested deeper than %zu levels", max_depth);
        } else {
            int line, col;
            line_col(buf, deep_at, &line, &col);
            snprintf(err, errlen, "nested deeper than %zu levels (line %d, column %d)", max_depth,
                     line, col);
            if (atlen) at[0] = '\0';
        }
    } else if (!root) {
        snprintf(err, errlen, "%s (line %d, column %d)", je.text, je.line, je.column);
    } else {
        rc = decode_root(&c, root);
    }
    free(c.tmp);
    if (root && !cm_arena_json_installed()) json_decref(root); /* else: arena memory */
    cm_arena_json_use(prev);
    if (scratch) {
        if (scratch->used_total > SCRATCH_KEEP_MAX)
            cm_arena_free(scratch);
        else
            cm_arena_reset(scratch);
    }
    return rc;
}

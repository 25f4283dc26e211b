/* rules.c — loading, validating and indexing quality rules and their overrides (rules.h). */
#include "rules.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "timeutil.h"
#include "wire.h"

#define PATHLEN 256
#define MAX_FILE_BYTES (4u << 20)

/* ---- a small string-keyed hash (insert and lookup; owned keys) ---- */

typedef struct hnode {
    char *key;
    void *val;
    struct hnode *next;
} hnode;

typedef struct hmap {
    hnode **b;
    size_t nb, n;
} hmap;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void *hmap_get(const hmap *m, const char *key)
{
    if (!m->nb) return NULL;
    for (hnode *n = m->b[hash_str(key) & (m->nb - 1)]; n; n = n->next)
        if (strcmp(n->key, key) == 0) return n->val;
    return NULL;
}

static int hmap_grow(hmap *m)
{
    size_t nb = m->nb ? m->nb * 2 : 16;
    hnode **b = calloc(nb, sizeof *b);
    if (!b) return -1;
    for (size_t i = 0; i < m->nb; i++) {
        for (hnode *n = m->b[i], *next; n; n = next) {
            next = n->next;
            size_t k = hash_str(n->key) & (nb - 1);
            n->next = b[k];
            b[k] = n;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

/* Insert key (copied) → val; the key must not be present. 0 or -1. */
static int hmap_put(hmap *m, const char *key, void *val)
{
    if (m->n + 1 > m->nb && hmap_grow(m) < 0) return -1;
    hnode *n = malloc(sizeof *n);
    if (!n) return -1;
    n->key = strdup(key);
    if (!n->key) {
        free(n);
        return -1;
    }
    n->val = val;
    size_t k = hash_str(key) & (m->nb - 1);
    n->next = m->b[k];
    m->b[k] = n;
    m->n++;
    return 0;
}

static void hmap_free(hmap *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->nb; i++) {
        for (hnode *n = m->b[i], *next; n; n = next) {
            next = n->next;
            if (free_val) free_val(n->val);
            free(n->key);
            free(n);
        }
    }
    free(m->b);
    memset(m, 0, sizeof *m);
}

/* ---- the rule set ---- */

typedef struct metric_entry {
    const co_rule **rules;
    size_t n, cap;
    int referenced;
} metric_entry;

struct co_rules {
    co_rule **v;
    size_t n, cap;
    hmap by_id;     /* id → co_rule* (not owned) */
    hmap by_metric; /* metric → metric_entry* (owned) */
    const co_rule **any, **events;
    size_t nany, nevents;
};

struct co_overrides {
    hmap map; /* "rule\x1fsite\x1fscreen" → co_override* (owned) */
};

/* ---- parsing context and helpers ---- */

typedef struct pctx {
    const char *file;
    char *err;
    size_t errlen;
} pctx;

static int fail(pctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(pctx *c, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cm_seterr(c->err, c->errlen, "%s: %s: %s", c->file, path, msg);
    return -1;
}

/* Path builders; a path too long is cut (still NUL-terminated). */
static void pjoin(char *out, const char *a, const char *sep, const char *b)
{
    size_t n = 0;
    const char *parts[3] = {a, sep, b};
    for (int i = 0; i < 3; i++)
        for (const char *q = parts[i]; *q && n + 1 < PATHLEN; q++)
            out[n++] = *q;
    out[n] = '\0';
}

static void pkey(char *out, const char *path, const char *key)
{
    pjoin(out, path, path[0] ? "." : "", key);
}

static void pidx(char *out, const char *path, size_t i)
{
    char num[32];
    snprintf(num, sizeof num, "[%zu]", i);
    pjoin(out, path, "", num);
}

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0) return 1;
    return 0;
}

static int check_keys(pctx *c, json_t *obj, const char *path, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (!in_list(k, allowed)) {
            char p[PATHLEN];
            pkey(p, path, k);
            return fail(c, p, "unknown key");
        }
    }
    return 0;
}

static int get_str(pctx *c, json_t *obj, const char *key, const char *path, int required,
                   size_t maxlen, char **out)
{
    json_t *v = json_object_get(obj, key);
    char p[PATHLEN];
    pkey(p, path, key);
    if (!v) return required ? fail(c, p, "missing") : 0;
    if (!json_is_string(v)) return fail(c, p, "expected a string");
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0) return fail(c, p, "empty");
    if (len > maxlen || strlen(s) != len)
        return fail(c, p, "longer than %zu bytes or holds NUL", maxlen);
    *out = strdup(s);
    if (!*out) return fail(c, p, "out of memory");
    return 0;
}

static int get_name(pctx *c, json_t *obj, const char *key, const char *path, int required,
                    char **out)
{
    if (get_str(c, obj, key, path, required, CM_MAX_NAME, out) < 0) return -1;
    if (*out && !cm_wire_valid_name(*out)) {
        char p[PATHLEN];
        pkey(p, path, key);
        return fail(c, p, "'%s' is not a valid name ([a-z_][a-z0-9_]*)", *out);
    }
    return 0;
}

/* 1 found (*out set), 0 absent, -1 error. */
static int get_num(pctx *c, json_t *obj, const char *key, const char *path, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    char p[PATHLEN];
    pkey(p, path, key);
    if (!json_is_number(v)) return fail(c, p, "expected a number");
    double d = json_number_value(v);
    if (!isfinite(d)) return fail(c, p, "expected a finite number");
    *out = d;
    return 1;
}

static int get_int(pctx *c, json_t *obj, const char *key, const char *path, long min, long max,
                   int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    char p[PATHLEN];
    pkey(p, path, key);
    if (!json_is_integer(v)) return fail(c, p, "expected an integer");
    json_int_t i = json_integer_value(v);
    if (i < min || i > max) return fail(c, p, "out of range %ld..%ld", min, max);
    *out = (int)i;
    return 1;
}

/* A duration string ("2m", "30s") into ms; 1 found, 0 absent, -1 error. */
static int get_duration(pctx *c, json_t *obj, const char *key, const char *path, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    char p[PATHLEN];
    pkey(p, path, key);
    if (!json_is_string(v) || cm_parse_duration_ms(json_string_value(v), out) < 0)
        return fail(c, p, "expected a duration string like \"2m\", \"30s\" or \"1h\"");
    return 1;
}

static int get_bool(pctx *c, json_t *obj, const char *key, const char *path, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    char p[PATHLEN];
    pkey(p, path, key);
    if (!json_is_boolean(v)) return fail(c, p, "expected true or false");
    *out = json_is_true(v);
    return 1;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* A string or an array of strings at p into a new vector. */
static int get_strv(pctx *c, json_t *v, const char *p, int names, char ***out, size_t *nout)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_string(v) && !json_is_array(v))
        return fail(c, p, "expected a string or an array of strings");
    if (n == 0) return fail(c, p, "empty array");
    if (n > 256) return fail(c, p, "more than 256 entries");
    char **vals = calloc(n, sizeof *vals);
    if (!vals) return fail(c, p, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        char pi[PATHLEN];
        if (json_is_array(v))
            pidx(pi, p, i);
        else
            snprintf(pi, sizeof pi, "%s", p);
        size_t len = json_is_string(e) ? json_string_length(e) : 0;
        const char *s = json_is_string(e) ? json_string_value(e) : NULL;
        if (!s || len == 0 || len > CM_MAX_VALUE || strlen(s) != len ||
            (names && !cm_wire_valid_name(s))) {
            free_strv(vals, i);
            return fail(c, pi,
                        names ? "expected a metric name ([a-z_][a-z0-9_]*)"
                              : "expected a non-empty string");
        }
        vals[i] = strdup(s);
        if (!vals[i]) {
            free_strv(vals, i);
            return fail(c, pi, "out of memory");
        }
    }
    *out = vals;
    *nout = n;
    return 0;
}

/* ---- names ---- */

static const char *const sev_names[] = {"info", "warning", "critical", NULL};
static const char *const kind_names[] = {"threshold", "deviation", "rate",
                                         "absence",   "event",     NULL};

const char *co_severity_name(co_severity s)
{
    return (unsigned)s < CO_NSEV ? sev_names[s] : "?";
}

int co_severity_parse(const char *s, co_severity *out)
{
    for (int i = 0; s && sev_names[i]; i++)
        if (strcmp(s, sev_names[i]) == 0) {
            *out = (co_severity)i;
            return 0;
        }
    return -1;
}

const char *co_rule_kind_name(co_rule_kind k)
{
    return (unsigned)k <= CO_RULE_EVENT ? kind_names[k] : "?";
}

int co_screen_class_parse(const char *s, co_screen_class *out)
{
    if (!s) return -1;
    if (strcmp(s, "theatre") == 0)
        *out = CO_CLASS_THEATRE;
    else if (strcmp(s, "review") == 0)
        *out = CO_CLASS_REVIEW;
    else
        return -1;
    return 0;
}

int co_mode_parse(const char *s, co_mode *out)
{
    if (!s) return -1;
    if (strcmp(s, "2d") == 0)
        *out = CO_MODE_2D;
    else if (strcmp(s, "3d") == 0)
        *out = CO_MODE_3D;
    else if (strcmp(s, "hdr") == 0)
        *out = CO_MODE_HDR;
    else
        return -1;
    return 0;
}

int co_display_parse(const char *s, co_display *out)
{
    if (!s) return -1;
    if (strcmp(s, "projection") == 0)
        *out = CO_DISPLAY_PROJECTION;
    else if (strcmp(s, "led") == 0)
        *out = CO_DISPLAY_LED;
    else
        return -1;
    return 0;
}

/* ---- bands and limits ---- */

enum { TARGET_EXPLICIT = 0, TARGET_ZERO = 1 }; /* threshold: target given; deviation/rate: 0 */

static const char *const band_keys[] = {"min", "max", "target", "tolerance", NULL};

/* Read min/max/target/tolerance of obj into b. partial: an override (pieces may be missing). */
static int parse_band(pctx *c, json_t *obj, const char *path, int tmode, int partial, co_band *b)
{
    memset(b, 0, sizeof *b);
    double mn = 0, mx = 0, t = 0, tol = 0;
    int hmn, hmx, ht, htol;
    if ((hmn = get_num(c, obj, "min", path, &mn)) < 0 ||
        (hmx = get_num(c, obj, "max", path, &mx)) < 0 ||
        (ht = get_num(c, obj, "target", path, &t)) < 0 ||
        (htol = get_num(c, obj, "tolerance", path, &tol)) < 0)
        return -1;
    char p[PATHLEN];
    if (ht && tmode == TARGET_ZERO) {
        pkey(p, path, "target");
        return fail(c, p,
                    "not allowed here (the reference is the target; use tolerance, min, max)");
    }
    if ((ht || htol) && (hmn || hmx)) {
        pkey(p, path, hmn ? "min" : "max");
        return fail(c, p, "use either target ± tolerance or min/max, not both");
    }
    if (htol && tol < 0) {
        pkey(p, path, "tolerance");
        return fail(c, p, "must be >= 0");
    }
    if (!partial && tmode == TARGET_EXPLICIT && ht != htol) {
        pkey(p, path, ht ? "tolerance" : "target");
        return fail(c, p, "missing (target and tolerance go together)");
    }
    if (hmn && hmx && mn > mx) {
        pkey(p, path, "min");
        return fail(c, p, "greater than max");
    }
    if (!hmn && !hmx && !ht && !htol) return 0;
    b->set = 1;
    if (hmn) b->has_lo = 1, b->lo = mn;
    if (hmx) b->has_hi = 1, b->hi = mx;
    if (htol && tmode == TARGET_ZERO) ht = 1, t = 0;
    if (ht) b->has_target = 1, b->target = t;
    if (htol) b->has_tol = 1, b->tol = tol;
    if (b->has_target && b->has_tol) {
        b->has_lo = b->has_hi = 1;
        b->lo = t - tol;
        b->hi = t + tol;
    }
    return 0;
}

/* Hysteresis must leave room to resolve inside every two-sided band. */
static int check_limits(pctx *c, const co_limits *l, const char *path)
{
    for (int s = 0; s < CO_NSEV; s++) {
        const co_band *b = &l->band[s];
        if (b->set && b->has_lo && b->has_hi && l->hysteresis * 2 >= b->hi - b->lo &&
            l->hysteresis > 0)
            return fail(c, path,
                        "hysteresis %g leaves no room to resolve inside the %s band %g..%g",
                        l->hysteresis, sev_names[s], b->lo, b->hi);
    }
    return 0;
}

/* Band keys of obj (→ band[sev]) and "info"/"warning"/"critical" objects; hysteresis. */
static int parse_limits(pctx *c, json_t *obj, const char *path, int tmode, co_severity sev,
                        co_limits *l, int require)
{
    static const char *const sub_keys[] = {"min", "max", "target", "tolerance", NULL};
    co_band plain;
    if (parse_band(c, obj, path, tmode, 0, &plain) < 0) return -1;
    if (plain.set) l->band[sev] = plain;
    for (int s = 0; s < CO_NSEV; s++) {
        json_t *v = json_object_get(obj, sev_names[s]);
        if (!v) continue;
        char p[PATHLEN];
        pkey(p, path, sev_names[s]);
        if (!json_is_object(v))
            return fail(c, p, "expected an object with min, max, target, tolerance");
        if (plain.set && (co_severity)s == sev)
            return fail(c, p, "the %s band is already given by the rule's own min/max/target",
                        sev_names[s]);
        if (check_keys(c, v, p, sub_keys) < 0) return -1;
        if (parse_band(c, v, p, tmode, 0, &l->band[s]) < 0) return -1;
        if (!l->band[s].set) return fail(c, p, "empty band");
    }
    int h = get_num(c, obj, "hysteresis", path, &l->hysteresis);
    if (h < 0) return -1;
    if (h) {
        l->has_hysteresis = 1;
        if (l->hysteresis < 0) {
            char p[PATHLEN];
            pkey(p, path, "hysteresis");
            return fail(c, p, "must be >= 0");
        }
    }
    if (require && !l->band[0].set && !l->band[1].set && !l->band[2].set)
        return fail(c, path,
                    "no limits: give min, max, target and tolerance, or "
                    "info/warning/critical bands");
    return 0;
}

/* ---- hold ---- */

static int parse_hold(pctx *c, json_t *obj, const char *path, co_hold *h)
{
    h->samples = 3;
    h->ms = 120000;
    json_t *v = json_object_get(obj, "hold");
    if (!v) return 0;
    char p[PATHLEN];
    pkey(p, path, "hold");
    static const char *const msg = "expected a duration string like \"2m\" or a sample count";
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 0 || n > 100000) return fail(c, p, "%s (0..100000)", msg);
        h->samples = (int)n;
        h->ms = 0;
        return 0;
    }
    if (json_is_string(v)) {
        if (cm_parse_duration_ms(json_string_value(v), &h->ms) < 0) return fail(c, p, "%s", msg);
        h->samples = 0;
        return 0;
    }
    if (json_is_object(v)) {
        static const char *const keys[] = {"samples", "duration", NULL};
        if (check_keys(c, v, p, keys) < 0) return -1;
        int n = 0;
        int64_t ms = 0;
        int hn = get_int(c, v, "samples", p, 0, 100000, &n);
        if (hn < 0) return -1;
        int hd = get_duration(c, v, "duration", p, &ms);
        if (hd < 0) return -1;
        if (!hn && !hd) return fail(c, p, "give samples and/or duration");
        h->samples = n;
        h->ms = ms;
        return 0;
    }
    return fail(c, p, "%s", msg);
}

/* ---- matchers ---- */

static void free_matchers(co_matcher *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].key);
        free_strv(m[i].vals, m[i].nvals);
    }
    free(m);
}

static int parse_match(pctx *c, json_t *obj, const char *path, co_rule *r)
{
    json_t *m = json_object_get(obj, "match");
    if (!m) return 0;
    char p[PATHLEN];
    pkey(p, path, "match");
    if (!json_is_object(m))
        return fail(c, p, "expected an object {label: value | [values] | {\"not\": ...}}");
    size_t n = json_object_size(m);
    if (n > CM_MAX_LABELS) return fail(c, p, "more than %d labels", CM_MAX_LABELS);
    r->match = calloc(n ? n : 1, sizeof *r->match);
    if (!r->match) return fail(c, p, "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v)
    {
        char pk[PATHLEN];
        pkey(pk, p, k);
        if (!cm_wire_valid_name(k)) return fail(c, pk, "not a valid label name");
        co_matcher *mm = &r->match[r->nmatch];
        json_t *vals = v;
        if (json_is_object(v)) {
            static const char *const nk[] = {"not", NULL};
            if (check_keys(c, v, pk, nk) < 0) return -1;
            vals = json_object_get(v, "not");
            if (!vals) return fail(c, pk, "expected {\"not\": value or [values]}");
            mm->negate = 1;
            char pn[PATHLEN];
            pkey(pn, pk, "not");
            if (get_strv(c, vals, pn, 0, &mm->vals, &mm->nvals) < 0) return -1;
        } else if (get_strv(c, vals, pk, 0, &mm->vals, &mm->nvals) < 0) {
            return -1;
        }
        mm->key = strdup(k);
        r->nmatch++;
        if (!mm->key) return fail(c, pk, "out of memory");
    }
    return 0;
}

/* ---- rules ---- */

static void rule_free(co_rule *r)
{
    if (!r) return;
    free(r->id);
    free(r->metric);
    free(r->standard);
    free(r->description);
    free(r->file);
    free_matchers(r->match, r->nmatch);
    for (size_t i = 0; i < r->nchoices; i++)
        free(r->choices[i].standard);
    free(r->choices);
    free(r->percent_of);
    free(r->while_metric);
    free(r->while_in);
    free_strv(r->exclude, r->nexclude);
    free(r->code);
    free(r->clear_code);
    free(r->source);
    if (r->json) json_decref(r->json);
    free(r);
}

static int parse_when(pctx *c, json_t *obj, const char *path, co_screen_class *cls, co_mode *mode,
                      co_display *display)
{
    json_t *w = json_object_get(obj, "when");
    if (!w) return 0;
    char p[PATHLEN];
    pkey(p, path, "when");
    if (!json_is_object(w)) return fail(c, p, "expected an object {class, mode, display}");
    static const char *const keys[] = {"class", "mode", "display", NULL};
    if (check_keys(c, w, p, keys) < 0) return -1;
    json_t *v;
    char pk[PATHLEN];
    if ((v = json_object_get(w, "class"))) {
        pkey(pk, p, "class");
        if (co_screen_class_parse(json_string_value(v), cls) < 0)
            return fail(c, pk, "expected \"theatre\" or \"review\"");
    }
    if ((v = json_object_get(w, "mode"))) {
        pkey(pk, p, "mode");
        if (co_mode_parse(json_string_value(v), mode) < 0)
            return fail(c, pk, "expected \"2d\", \"3d\" or \"hdr\"");
    }
    if ((v = json_object_get(w, "display"))) {
        pkey(pk, p, "display");
        if (co_display_parse(json_string_value(v), display) < 0)
            return fail(c, pk, "expected \"projection\" or \"led\"");
    }
    return 0;
}

static int parse_targets(pctx *c, json_t *obj, const char *path, co_rule *r)
{
    json_t *t = json_object_get(obj, "targets");
    char p[PATHLEN];
    if (!t) {
        r->choices = calloc(1, sizeof *r->choices);
        if (!r->choices) return fail(c, path, "out of memory");
        r->nchoices = 1;
        r->choices[0].lim = r->lim;
        return 0;
    }
    pkey(p, path, "targets");
    for (int s = 0; s < CO_NSEV; s++)
        if (r->lim.band[s].set)
            return fail(c, p, "use either targets or the rule's own limits, not both");
    if (!json_is_array(t) || json_array_size(t) == 0)
        return fail(c, p, "expected a non-empty array");
    if (json_array_size(t) > 64) return fail(c, p, "more than 64 choices");
    r->choices = calloc(json_array_size(t), sizeof *r->choices);
    if (!r->choices) return fail(c, p, "out of memory");
    static const char *const keys[] = {"when",       "min",      "max",     "target",
                                       "tolerance",  "info",     "warning", "critical",
                                       "hysteresis", "standard", "note",    NULL};
    for (size_t i = 0; i < json_array_size(t); i++) {
        json_t *e = json_array_get(t, i);
        char pi[PATHLEN];
        pidx(pi, p, i);
        if (!json_is_object(e)) return fail(c, pi, "expected an object");
        co_choice *ch = &r->choices[r->nchoices++];
        if (check_keys(c, e, pi, keys) < 0 ||
            parse_when(c, e, pi, &ch->cls, &ch->mode, &ch->display) < 0)
            return -1;
        if (parse_limits(c, e, pi, TARGET_EXPLICIT, r->severity, &ch->lim, 1) < 0) return -1;
        if (!ch->lim.has_hysteresis) {
            ch->lim.hysteresis = r->lim.hysteresis;
            ch->lim.has_hysteresis = r->lim.has_hysteresis;
        }
        if (check_limits(c, &ch->lim, pi) < 0) return -1;
        if (get_str(c, e, "standard", pi, 0, CM_MAX_VALUE, &ch->standard) < 0) return -1;
        json_t *note = json_object_get(e, "note");
        if (note && !json_is_string(note)) {
            char pn[PATHLEN];
            pkey(pn, pi, "note");
            return fail(c, pn, "expected a string");
        }
        if (ch->cls || ch->display) r->needs_screen = 1;
    }
    return 0;
}

static int parse_while(pctx *c, json_t *obj, const char *path, co_rule *r)
{
    json_t *w = json_object_get(obj, "while");
    if (!w) return 0;
    char p[PATHLEN];
    pkey(p, path, "while");
    if (!json_is_object(w)) return fail(c, p, "expected {\"metric\": name, \"in\": [numbers]}");
    static const char *const keys[] = {"metric", "in", NULL};
    if (check_keys(c, w, p, keys) < 0) return -1;
    if (get_name(c, w, "metric", p, 1, &r->while_metric) < 0) return -1;
    json_t *in = json_object_get(w, "in");
    char pi[PATHLEN];
    pkey(pi, p, "in");
    if (!json_is_array(in) || json_array_size(in) == 0 || json_array_size(in) > 64)
        return fail(c, pi, "expected an array of 1..64 numbers");
    r->while_in = calloc(json_array_size(in), sizeof *r->while_in);
    if (!r->while_in) return fail(c, pi, "out of memory");
    for (size_t i = 0; i < json_array_size(in); i++) {
        json_t *e = json_array_get(in, i);
        char pe[PATHLEN];
        pidx(pe, pi, i);
        if (!json_is_number(e) || !isfinite(json_number_value(e)))
            return fail(c, pe, "expected a number");
        r->while_in[r->nwhile_in++] = json_number_value(e);
    }
    return 0;
}

static const char *const common_keys[] = {"id",          "kind", "metric",     "match",
                                          "severity",    "hold", "hysteresis", "standard",
                                          "description", "note", NULL};

static int keys_for_kind(pctx *c, json_t *obj, const char *path, co_rule_kind k)
{
    static const char *const threshold[] = {"min",        "max",     "target",   "tolerance",
                                            "info",       "warning", "critical", "targets",
                                            "percent_of", "while",   NULL};
    static const char *const deviation[] = {"min",      "max",     "tolerance", "info", "warning",
                                            "critical", "percent", "while",     NULL};
    static const char *const rate[] = {"min",      "max",    "tolerance", "info", "warning",
                                       "critical", "window", "while",     NULL};
    static const char *const absence[] = {"intervals", "interval", "exclude", NULL};
    static const char *const event[] = {"code", "clear_code", "source", "resolve_after", NULL};
    const char *const *extra = k == CO_RULE_THRESHOLD   ? threshold
                               : k == CO_RULE_DEVIATION ? deviation
                               : k == CO_RULE_RATE      ? rate
                               : k == CO_RULE_ABSENCE   ? absence
                                                        : event;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (in_list(key, common_keys) || in_list(key, extra)) {
            int bad = (k == CO_RULE_EVENT &&
                       (strcmp(key, "metric") == 0 || strcmp(key, "hold") == 0 ||
                        strcmp(key, "match") == 0 || strcmp(key, "hysteresis") == 0)) ||
                      (k == CO_RULE_ABSENCE &&
                       (strcmp(key, "hold") == 0 || strcmp(key, "hysteresis") == 0));
            if (!bad) continue;
        }
        char p[PATHLEN];
        pkey(p, path, key);
        return fail(c, p, "unknown key for a %s rule", kind_names[k]);
    }
    return 0;
}

static co_rule *parse_rule(pctx *c, json_t *obj, const char *path)
{
    if (!json_is_object(obj)) {
        fail(c, path, "expected an object");
        return NULL;
    }
    co_rule *r = calloc(1, sizeof *r);
    if (!r) {
        fail(c, path, "out of memory");
        return NULL;
    }
    r->file = strdup(c->file);
    char *kind = NULL, *sev = NULL;
    char p[PATHLEN];
    if (!r->file) goto oom;
    if (get_name(c, obj, "id", path, 1, &r->id) < 0) goto bad;
    if (get_str(c, obj, "kind", path, 1, 32, &kind) < 0) goto bad;
    {
        int k = -1;
        for (int i = 0; kind_names[i]; i++)
            if (strcmp(kind, kind_names[i]) == 0) k = i;
        pkey(p, path, "kind");
        if (k < 0) {
            fail(c, p, "expected one of threshold, deviation, rate, absence, event");
            goto bad;
        }
        r->kind = (co_rule_kind)k;
    }
    if (keys_for_kind(c, obj, path, r->kind) < 0) goto bad;
    if (r->kind != CO_RULE_EVENT) {
        if (get_str(c, obj, "metric", path, 1, CM_MAX_NAME, &r->metric) < 0) goto bad;
        pkey(p, path, "metric");
        if (strcmp(r->metric, "*") == 0 ? r->kind != CO_RULE_ABSENCE
                                        : !cm_wire_valid_name(r->metric)) {
            fail(c, p, "'%s' is not a metric name%s", r->metric,
                 r->kind == CO_RULE_ABSENCE ? " or \"*\"" : "");
            goto bad;
        }
    }
    r->severity = CO_SEV_WARNING;
    if (get_str(c, obj, "severity", path, 0, 32, &sev) < 0) goto bad;
    if (sev) {
        pkey(p, path, "severity");
        if (co_severity_parse(sev, &r->severity) < 0) {
            fail(c, p, "expected info, warning or critical");
            goto bad;
        }
        r->has_severity = 1;
    }
    if (get_str(c, obj, "standard", path, 1, CM_MAX_VALUE, &r->standard) < 0) goto bad;
    if (get_str(c, obj, "description", path, 1, CM_MAX_TEXT, &r->description) < 0) goto bad;
    {
        json_t *note = json_object_get(obj, "note");
        pkey(p, path, "note");
        if (note && !json_is_string(note)) {
            fail(c, p, "expected a string");
            goto bad;
        }
    }
    if (parse_match(c, obj, path, r) < 0) goto bad;
    if (parse_hold(c, obj, path, &r->hold) < 0) goto bad;

    switch (r->kind) {
    case CO_RULE_THRESHOLD:
        if (parse_limits(c, obj, path, TARGET_EXPLICIT, r->severity, &r->lim,
                         json_object_get(obj, "targets") == NULL) < 0)
            goto bad;
        if (!json_object_get(obj, "targets") && check_limits(c, &r->lim, path) < 0) goto bad;
        if (parse_targets(c, obj, path, r) < 0) goto bad;
        if (get_name(c, obj, "percent_of", path, 0, &r->percent_of) < 0) goto bad;
        if (parse_while(c, obj, path, r) < 0) goto bad;
        break;
    case CO_RULE_DEVIATION:
    case CO_RULE_RATE:
        if (parse_limits(c, obj, path, TARGET_ZERO, r->severity, &r->lim, 1) < 0) goto bad;
        if (check_limits(c, &r->lim, path) < 0) goto bad;
        if (r->kind == CO_RULE_DEVIATION && get_bool(c, obj, "percent", path, &r->percent) < 0)
            goto bad;
        r->window_ms = 3600000;
        if (r->kind == CO_RULE_RATE) {
            if (get_duration(c, obj, "window", path, &r->window_ms) < 0) goto bad;
            pkey(p, path, "window");
            if (r->window_ms < 1000) {
                fail(c, p, "must be at least 1s");
                goto bad;
            }
        }
        if (parse_while(c, obj, path, r) < 0) goto bad;
        break;
    case CO_RULE_ABSENCE:
        r->intervals = 3;
        r->interval_ms = 60000;
        if (get_int(c, obj, "intervals", path, 1, 10000, &r->intervals) < 0) goto bad;
        if (get_duration(c, obj, "interval", path, &r->interval_ms) < 0) goto bad;
        pkey(p, path, "interval");
        if (r->interval_ms < 1) {
            fail(c, p, "must be positive");
            goto bad;
        }
        r->hold.samples = 0;
        r->hold.ms = 0;
        if (json_object_get(obj, "exclude")) {
            pkey(p, path, "exclude");
            if (strcmp(r->metric, "*") != 0) {
                fail(c, p, "only with metric \"*\"");
                goto bad;
            }
            if (get_strv(c, json_object_get(obj, "exclude"), p, 1, &r->exclude, &r->nexclude) < 0)
                goto bad;
        }
        break;
    case CO_RULE_EVENT:
        r->hold.samples = 0;
        r->hold.ms = 0;
        if (get_str(c, obj, "code", path, 1, CM_MAX_NAME, &r->code) < 0) goto bad;
        if (get_str(c, obj, "clear_code", path, 0, CM_MAX_NAME, &r->clear_code) < 0) goto bad;
        if (get_str(c, obj, "source", path, 0, CM_MAX_NAME, &r->source) < 0) goto bad;
        if (get_duration(c, obj, "resolve_after", path, &r->resolve_after_ms) < 0) goto bad;
        if (r->clear_code && strcmp(r->code, "*") == 0) {
            pkey(p, path, "clear_code");
            fail(c, p, "needs a specific code (not \"*\")");
            goto bad;
        }
        if (r->clear_code && strcmp(r->clear_code, r->code) == 0) {
            pkey(p, path, "clear_code");
            fail(c, p, "same as code");
            goto bad;
        }
        break;
    }
    r->json = json_incref(obj);
    free(kind);
    free(sev);
    return r;
oom:
    fail(c, path, "out of memory");
bad:
    free(kind);
    free(sev);
    rule_free(r);
    return NULL;
}

static void free_metric_entry(void *p)
{
    metric_entry *e = p;
    free(e->rules);
    free(e);
}

static int entry_add(metric_entry *e, const co_rule *r)
{
    if (!r) return 0;
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4;
        const co_rule **v = realloc(e->rules, cap * sizeof *v);
        if (!v) return -1;
        e->rules = v;
        e->cap = cap;
    }
    e->rules[e->n++] = r;
    return 0;
}

static metric_entry *metric_get(co_rules *rs, const char *metric)
{
    metric_entry *e = hmap_get(&rs->by_metric, metric);
    if (e) return e;
    e = calloc(1, sizeof *e);
    if (!e || hmap_put(&rs->by_metric, metric, e) < 0) {
        free(e);
        return NULL;
    }
    return e;
}

/* Rebuild the indexes after rules were added. */
static int rebuild(co_rules *rs)
{
    hmap_free(&rs->by_id, NULL);
    hmap_free(&rs->by_metric, free_metric_entry);
    free(rs->any);
    free(rs->events);
    rs->any = calloc(rs->n + 1, sizeof *rs->any);
    rs->events = calloc(rs->n + 1, sizeof *rs->events);
    rs->nany = rs->nevents = 0;
    if (!rs->any || !rs->events) return -1;
    for (size_t i = 0; i < rs->n; i++) {
        co_rule *r = rs->v[i];
        if (hmap_put(&rs->by_id, r->id, r) < 0) return -1;
        if (r->kind == CO_RULE_EVENT) {
            rs->events[rs->nevents++] = r;
            continue;
        }
        if (strcmp(r->metric, "*") == 0) {
            rs->any[rs->nany++] = r;
            continue;
        }
        metric_entry *e = metric_get(rs, r->metric);
        if (!e || entry_add(e, r) < 0) return -1;
        const char *refs[2] = {r->percent_of, r->while_metric};
        for (int k = 0; k < 2; k++) {
            if (!refs[k]) continue;
            metric_entry *re = metric_get(rs, refs[k]);
            if (!re) return -1;
            re->referenced = 1;
        }
    }
    return 0;
}

static int parse_file(pctx *c, json_t *root, co_rule ***out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!json_is_object(root)) return fail(c, "$", "expected an object {\"rules\": [...]}");
    static const char *const keys[] = {"rules", "description", "note", NULL};
    if (check_keys(c, root, "", keys) < 0) return -1;
    json_t *arr = json_object_get(root, "rules");
    if (!json_is_array(arr)) return fail(c, "rules", "expected an array of rules");
    size_t n = json_array_size(arr);
    if (n > 10000) return fail(c, "rules", "more than 10000 rules");
    co_rule **v = calloc(n ? n : 1, sizeof *v);
    if (!v) return fail(c, "rules", "out of memory");
    for (size_t i = 0; i < n; i++) {
        char p[PATHLEN];
        pidx(p, "rules", i);
        v[i] = parse_rule(c, json_array_get(arr, i), p);
        if (!v[i]) {
            for (size_t k = 0; k < i; k++)
                rule_free(v[k]);
            free(v);
            return -1;
        }
    }
    *out = v;
    *nout = n;
    return 0;
}

static co_rules *rules_new(void)
{
    return calloc(1, sizeof(co_rules));
}

void co_rules_free(co_rules *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++)
        rule_free(r->v[i]);
    free(r->v);
    hmap_free(&r->by_id, NULL);
    hmap_free(&r->by_metric, free_metric_entry);
    free(r->any);
    free(r->events);
    free(r);
}

/* Add parsed rules of one file (taking them) after checking ids; 0 or -1 (rules freed). */
static int add_rules(co_rules *rs, pctx *c, co_rule **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const co_rule *dup = hmap_get(&rs->by_id, v[i]->id);
        for (size_t k = 0; !dup && k < i; k++)
            if (strcmp(v[k]->id, v[i]->id) == 0) dup = v[k];
        if (dup) {
            char p[PATHLEN];
            snprintf(p, sizeof p, "rules[%zu].id", i);
            fail(c, p, "duplicate rule id \"%s\" (first in %s)", v[i]->id, dup->file);
            goto bad;
        }
    }
    if (rs->n + n > rs->cap) {
        size_t cap = (rs->n + n) * 2;
        co_rule **nv = realloc(rs->v, cap * sizeof *nv);
        if (!nv) goto oom;
        rs->v = nv;
        rs->cap = cap;
    }
    memcpy(rs->v + rs->n, v, n * sizeof *v);
    rs->n += n;
    free(v);
    if (rebuild(rs) < 0) {
        fail(c, "rules", "out of memory");
        return -1;
    }
    return 0;
oom:
    fail(c, "rules", "out of memory");
bad:
    for (size_t i = 0; i < n; i++)
        rule_free(v[i]);
    free(v);
    return -1;
}

static int add_json(co_rules *rs, const char *name, json_t *root, char *err, size_t errlen)
{
    pctx c = {name, err, errlen};
    co_rule **v;
    size_t n;
    if (parse_file(&c, root, &v, &n) < 0) return -1;
    return add_rules(rs, &c, v, n);
}

int co_rules_add_buf(co_rules *r, const char *name, const char *buf, size_t len, char *err,
                     size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        cm_seterr(err, errlen, "%s:%d:%d: %s", name, je.line, je.column, je.text);
        return -1;
    }
    int rc = add_json(r, name, root, err, errlen);
    json_decref(root);
    return rc;
}

co_rules *co_rules_load_buf(const char *name, const char *buf, size_t len, char *err, size_t errlen)
{
    co_rules *r = rules_new();
    if (!r) {
        cm_seterr(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    if (co_rules_add_buf(r, name, buf, len, err, errlen) < 0) {
        co_rules_free(r);
        return NULL;
    }
    return r;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

co_rules *co_rules_load_dir(const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        cm_seterr(err, errlen, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    co_rules *rs = rules_new();
    struct dirent *de;
    int ok = rs != NULL;
    while (ok && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || de->d_name[0] == '.' || strcmp(de->d_name + l - 5, ".json") != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(names, cap * sizeof *nv);
            if (!nv) {
                ok = 0;
                break;
            }
            names = nv;
        }
        if (!(names[n] = strdup(de->d_name)))
            ok = 0;
        else
            n++;
    }
    closedir(d);
    if (!ok) {
        cm_seterr(err, errlen, "%s: out of memory", dir);
        goto fail;
    }
    qsort(names, n, sizeof *names, cmp_str);
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%.*s/%s", (int)dl, dir, names[i]);
        json_error_t je;
        json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
        if (!root) {
            cm_seterr(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
            goto fail;
        }
        int rc = add_json(rs, path, root, err, errlen);
        json_decref(root);
        if (rc < 0) goto fail;
    }
    free_strv(names, n);
    return rs;
fail:
    free_strv(names, n);
    co_rules_free(rs);
    return NULL;
}

size_t co_rules_count(const co_rules *r)
{
    return r ? r->n : 0;
}

const co_rule *co_rules_at(const co_rules *r, size_t i)
{
    return r && i < r->n ? r->v[i] : NULL;
}

const co_rule *co_rules_find(const co_rules *r, const char *id)
{
    return r && id ? hmap_get(&r->by_id, id) : NULL;
}

const co_rule *const *co_rules_for_metric(const co_rules *r, const char *metric, size_t *n,
                                          int *referenced)
{
    const metric_entry *e = r && metric ? hmap_get(&r->by_metric, metric) : NULL;
    *n = e ? e->n : 0;
    if (referenced) *referenced = e ? e->referenced : 0;
    return e && e->n ? e->rules : NULL;
}

const co_rule *const *co_rules_any_metric(const co_rules *r, size_t *n)
{
    *n = r ? r->nany : 0;
    return r ? r->any : NULL;
}

const co_rule *const *co_rules_events(const co_rules *r, size_t *n)
{
    *n = r ? r->nevents : 0;
    return r ? r->events : NULL;
}

/* ---- overrides ---- */

static void ov_key(char *out, size_t len, const char *rule, const char *site, const char *screen)
{
    snprintf(out, len, "%s\x1f%s\x1f%s", rule, site, screen ? screen : "");
}

void co_limits_apply(co_limits *lim, const co_override *ov)
{
    if (!ov) return;
    for (int s = 0; s < CO_NSEV; s++) {
        const co_band *o = &ov->band[s];
        if (!o->set) continue;
        co_band *b = &lim->band[s];
        /* a lone target or tolerance completes the base band's; bands without one keep theirs */
        if ((o->has_target || o->has_tol) && (o->has_target || b->has_target) &&
            (o->has_tol || b->has_tol)) {
            double t = o->has_target ? o->target : b->target;
            double tol = o->has_tol ? o->tol : b->tol;
            b->has_target = b->has_tol = b->has_lo = b->has_hi = 1;
            b->target = t;
            b->tol = tol;
            b->lo = t - tol;
            b->hi = t + tol;
        }
        if (o->has_lo) b->has_lo = 1, b->lo = o->lo, b->has_target = 0;
        if (o->has_hi) b->has_hi = 1, b->hi = o->hi, b->has_target = 0;
        b->set = 1;
    }
    if (ov->has_hysteresis) {
        lim->hysteresis = ov->hysteresis;
        lim->has_hysteresis = 1;
    }
}

static int parse_override(pctx *c, const co_rules *rs, json_t *e, const char *path, co_overrides *o)
{
    static const char *const keys[] = {"site", "screen", "rule", "when", "set", "note", NULL};
    if (!json_is_object(e)) return fail(c, path, "expected an object {site, screen, rule, set}");
    if (check_keys(c, e, path, keys) < 0) return -1;
    char *site = NULL, *screen = NULL, *rid = NULL;
    co_override *ov = NULL;
    char p[PATHLEN];
    int rc = -1;
    if (get_str(c, e, "site", path, 1, CM_MAX_NAME, &site) < 0 ||
        get_str(c, e, "screen", path, 0, CM_MAX_NAME, &screen) < 0 ||
        get_str(c, e, "rule", path, 1, CM_MAX_NAME, &rid) < 0)
        goto out;
    const co_rule *r = co_rules_find(rs, rid);
    if (!r) {
        pkey(p, path, "rule");
        fail(c, p, "unknown rule \"%s\"", rid);
        goto out;
    }
    ov = calloc(1, sizeof *ov);
    if (!ov) {
        fail(c, path, "out of memory");
        goto out;
    }
    if (json_object_get(e, "when") && r->kind != CO_RULE_THRESHOLD) {
        pkey(p, path, "when");
        fail(c, p, "only for threshold rules");
        goto out;
    }
    if (parse_when(c, e, path, &ov->cls, &ov->mode, &ov->display) < 0) goto out;
    json_t *set = json_object_get(e, "set");
    char ps[PATHLEN];
    pkey(ps, path, "set");
    if (!json_is_object(set)) {
        fail(c, ps, set ? "expected an object" : "missing");
        goto out;
    }
    static const char *const numeric[] = {"enabled", "hold",     "hysteresis", "min",
                                          "max",     "target",   "tolerance",  "info",
                                          "warning", "critical", NULL};
    static const char *const absence[] = {"enabled", "intervals", NULL};
    static const char *const event[] = {"enabled", NULL};
    const char *const *allowed = r->kind == CO_RULE_ABSENCE ? absence
                                 : r->kind == CO_RULE_EVENT ? event
                                                            : numeric;
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v)
    {
        if (!in_list(k, allowed)) {
            pkey(p, ps, k);
            fail(c, p, "not a setting of a %s rule", kind_names[r->kind]);
            goto out;
        }
    }
    if ((ov->has_enabled = get_bool(c, set, "enabled", ps, &ov->enabled)) < 0) goto out;
    if (json_object_get(set, "hold")) {
        if (parse_hold(c, set, ps, &ov->hold) < 0) goto out;
        ov->has_hold = 1;
    }
    if ((ov->has_intervals = get_int(c, set, "intervals", ps, 1, 10000, &ov->intervals)) < 0)
        goto out;
    if ((ov->has_hysteresis = get_num(c, set, "hysteresis", ps, &ov->hysteresis)) < 0) goto out;
    if (ov->has_hysteresis && ov->hysteresis < 0) {
        pkey(p, ps, "hysteresis");
        fail(c, p, "must be >= 0");
        goto out;
    }
    if (r->kind != CO_RULE_ABSENCE && r->kind != CO_RULE_EVENT) {
        int tmode = r->kind == CO_RULE_THRESHOLD ? TARGET_EXPLICIT : TARGET_ZERO;
        if (parse_band(c, set, ps, tmode, 1, &ov->band[r->severity]) < 0) goto out;
        for (int s = 0; s < CO_NSEV; s++) {
            json_t *b = json_object_get(set, sev_names[s]);
            if (!b) continue;
            pkey(p, ps, sev_names[s]);
            if (!json_is_object(b)) {
                fail(c, p, "expected an object with min, max, target, tolerance");
                goto out;
            }
            if ((co_severity)s == r->severity && ov->band[s].set) {
                fail(c, p, "the %s band is already given by min/max/target/tolerance",
                     sev_names[s]);
                goto out;
            }
            if (check_keys(c, b, p, band_keys) < 0 ||
                parse_band(c, b, p, tmode, 1, &ov->band[s]) < 0)
                goto out;
        }
        /* A lone target or tolerance needs a band with the other half somewhere; every choice
         * must still make sense with the override applied. */
        size_t nbase = r->kind == CO_RULE_THRESHOLD ? r->nchoices : 1;
        for (int sv = 0; sv < CO_NSEV; sv++) {
            const co_band *ob = &ov->band[sv];
            if (!ob->set || ob->has_lo || ob->has_hi || (ob->has_target && ob->has_tol)) continue;
            int ok = 0;
            for (size_t i = 0; i < nbase && !ok; i++) {
                if (r->kind == CO_RULE_THRESHOLD && !co_override_applies(ov, &r->choices[i]))
                    continue;
                const co_limits *base = r->kind == CO_RULE_THRESHOLD ? &r->choices[i].lim : &r->lim;
                ok = base->band[sv].has_target && base->band[sv].has_tol;
            }
            if (!ok) {
                pkey(p, ps, ob->has_tol ? "tolerance" : "target");
                fail(c, p, "rule \"%s\" has no %s target ± tolerance to complete", r->id,
                     sev_names[sv]);
                goto out;
            }
        }
        int napply = 0;
        for (size_t i = 0; i < nbase; i++) {
            if (r->kind == CO_RULE_THRESHOLD && !co_override_applies(ov, &r->choices[i])) continue;
            napply++;
            const co_limits *base = r->kind == CO_RULE_THRESHOLD ? &r->choices[i].lim : &r->lim;
            co_limits l = *base;
            co_limits_apply(&l, ov);
            for (int sv = 0; sv < CO_NSEV; sv++) {
                if (l.band[sv].has_lo && l.band[sv].has_hi && l.band[sv].lo > l.band[sv].hi) {
                    fail(c, ps, "the %s band becomes empty (%g > %g)", sev_names[sv], l.band[sv].lo,
                         l.band[sv].hi);
                    goto out;
                }
            }
            if (check_limits(c, &l, ps) < 0) goto out;
        }
        if (!napply) {
            pkey(p, path, "when");
            fail(c, p, "matches none of the targets of rule \"%s\"", r->id);
            goto out;
        }
    }
    char key[3 * CM_MAX_NAME + 8];
    ov_key(key, sizeof key, rid, site, screen);
    co_override *head = hmap_get(&o->map, key), **tail = &head;
    for (co_override *x = head; x; x = x->next) {
        if (x->cls == ov->cls && x->mode == ov->mode && x->display == ov->display) {
            fail(c, path, "a second override of rule \"%s\" for site \"%s\"%s%s", rid, site,
                 screen ? " screen " : "", screen ? screen : "");
            goto out;
        }
        tail = &x->next;
    }
    if (!head) {
        if (hmap_put(&o->map, key, ov) < 0) {
            fail(c, path, "out of memory");
            goto out;
        }
    } else {
        *tail = ov;
    }
    ov = NULL;
    rc = 0;
out:
    free(ov);
    free(site);
    free(screen);
    free(rid);
    return rc;
}

co_overrides *co_overrides_parse(const co_rules *r, const char *name, const char *buf, size_t len,
                                 char *err, size_t errlen)
{
    pctx c = {name, err, errlen};
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        cm_seterr(err, errlen, "%s:%d:%d: %s", name, je.line, je.column, je.text);
        return NULL;
    }
    co_overrides *o = calloc(1, sizeof *o);
    static const char *const keys[] = {"overrides", "description", "note", NULL};
    if (!o) {
        fail(&c, "$", "out of memory");
        goto bad;
    }
    if (!json_is_object(root)) {
        fail(&c, "$", "expected an object {\"overrides\": [...]}");
        goto bad;
    }
    if (check_keys(&c, root, "", keys) < 0) goto bad;
    json_t *arr = json_object_get(root, "overrides");
    if (!json_is_array(arr)) {
        fail(&c, "overrides", "expected an array");
        goto bad;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char p[PATHLEN];
        pidx(p, "overrides", i);
        if (parse_override(&c, r, json_array_get(arr, i), p, o) < 0) goto bad;
    }
    json_decref(root);
    return o;
bad:
    json_decref(root);
    co_overrides_free(o);
    return NULL;
}

co_overrides *co_overrides_load(const co_rules *r, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cm_seterr(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(MAX_FILE_BYTES);
    size_t n = buf ? fread(buf, 1, MAX_FILE_BYTES, f) : 0;
    int too_big = buf && n == MAX_FILE_BYTES;
    int rerr = ferror(f);
    fclose(f);
    co_overrides *o = NULL;
    if (!buf)
        cm_seterr(err, errlen, "%s: out of memory", path);
    else if (rerr)
        cm_seterr(err, errlen, "%s: read error", path);
    else if (too_big)
        cm_seterr(err, errlen, "%s: larger than %u bytes", path, MAX_FILE_BYTES);
    else
        o = co_overrides_parse(r, path, buf, n, err, errlen);
    free(buf);
    return o;
}

static void free_override_list(void *p)
{
    for (co_override *x = p, *next; x; x = next) {
        next = x->next;
        free(x);
    }
}

void co_overrides_free(co_overrides *o)
{
    if (!o) return;
    hmap_free(&o->map, free_override_list);
    free(o);
}

int co_override_applies(const co_override *ov, const co_choice *ch)
{
    if (!ch) return 1;
    return (!ov->cls || ov->cls == ch->cls) && (!ov->mode || ov->mode == ch->mode) &&
           (!ov->display || ov->display == ch->display);
}

static const co_override *first_applying(const co_override *x, const co_choice *ch)
{
    for (; x; x = x->next)
        if (co_override_applies(x, ch)) return x;
    return NULL;
}

const co_override *co_overrides_find(const co_overrides *o, const co_rule *rule, const char *site,
                                     const char *screen, const co_choice *ch)
{
    if (!o || !o->map.n || !rule || !site) return NULL;
    char key[3 * CM_MAX_NAME + 8];
    const co_override *ov = NULL;
    if (screen && *screen) {
        ov_key(key, sizeof key, rule->id, site, screen);
        ov = first_applying(hmap_get(&o->map, key), ch);
    }
    if (!ov) {
        ov_key(key, sizeof key, rule->id, site, NULL);
        ov = first_applying(hmap_get(&o->map, key), ch);
    }
    return ov;
}

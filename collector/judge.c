/* judge.c — the alert state machine over samples and events (judge.h, docs/rules.md). */
#include "judge.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"

/* ---- a chained hash of nodes keyed by byte strings (intrusive: node first in the struct) ---- */

typedef struct node {
    struct node *next;
    uint64_t h;
    char *key; /* parts separated by '\0' */
    size_t klen;
} node;

typedef struct table {
    node **b;
    size_t nb, n;
} table;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static node *table_get(const table *t, const char *key, size_t klen, uint64_t h)
{
    if (!t->nb) return NULL;
    for (node *n = t->b[h & (t->nb - 1)]; n; n = n->next)
        if (n->h == h && n->klen == klen && memcmp(n->key, key, klen) == 0) return n;
    return NULL;
}

static int table_put(table *t, node *nd)
{
    if (t->n + 1 > t->nb) {
        size_t nb = t->nb ? t->nb * 2 : 64;
        node **b = calloc(nb, sizeof *b);
        if (!b) return -1;
        for (size_t i = 0; i < t->nb; i++) {
            for (node *n = t->b[i], *next; n; n = next) {
                next = n->next;
                n->next = b[n->h & (nb - 1)];
                b[n->h & (nb - 1)] = n;
            }
        }
        free(t->b);
        t->b = b;
        t->nb = nb;
    }
    node **slot = &t->b[nd->h & (t->nb - 1)];
    nd->next = *slot;
    *slot = nd;
    t->n++;
    return 0;
}

static void table_del(table *t, node *nd)
{
    for (node **p = &t->b[nd->h & (t->nb - 1)]; *p; p = &(*p)->next) {
        if (*p == nd) {
            *p = nd->next;
            t->n--;
            return;
        }
    }
}

/* ---- state ---- */

typedef struct entry {
    node nd; /* key: rule id \0 site \0 device \0 labels \0 */
    const co_rule *rule;
    const char *site, *device, *labels; /* into nd.key */
    char *screen;
    co_alert_state state;
    co_severity sev;
    int low; /* violated below (lo) rather than above */
    double value, threshold;
    int64_t since, last;
    int count;
    /* rate anchors */
    int has_a, has_b;
    int64_t a_ts, b_ts;
    double a_v, b_v;
    /* absence: the sample interval learnt from timestamps; when samples were last seen on the
     * judge's clock (its latest tick) and the interval between such arrivals, so a backlog
     * of old samples or an upload interval longer than the poll interval is not silence */
    int64_t interval, prev_gap;
    int64_t seen_tick, arrival_iv;
    struct entry *tprev, *tnext; /* timed list (absence, events with resolve_after) */
    int timed;
} entry;

typedef struct latest {
    node nd; /* key: site \0 device \0 metric \0 labels \0 */
    double v;
    int64_t ts;
} latest;

struct co_judge {
    pthread_mutex_t mu;
    const co_rules *rules;
    co_judge_callbacks cb;
    co_overrides *ov;
    table alerts, latest;
    entry *timed;
    size_t nactive;
    int64_t tick_now; /* now_ms of the latest co_judge_tick (0 before the first) */
    char *kb;         /* key scratch */
    size_t kcap;
    char *lb; /* canonical labels scratch */
    size_t lcap;
};

/* Per-call context: the sample being judged. */
typedef struct sctx {
    const char *site, *screen, *device, *metric;
    const cm_label *labels[CM_MAX_LABELS]; /* sorted by key */
    size_t nlabels;
    const cm_label *raw;
    size_t nraw;
    const char *canon;
    int64_t ts;
    double value;
    int have_settings;
    co_screen_settings settings;
    co_transitions *out;
} sctx;

const char *co_alert_state_name(co_alert_state s)
{
    static const char *const n[] = {"inactive", "pending", "firing", "resolved"};
    return (unsigned)s <= CO_ALERT_RESOLVED ? n[s] : "?";
}

/* ---- transitions ---- */

/* Free the strings of one transition. */
static void transition_free(co_transition *x)
{
    free(x->site);
    free(x->screen);
    free(x->device);
    free(x->labels);
    free(x->text);
}

void co_transitions_clear(co_transitions *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n; i++)
        transition_free(&t->v[i]);
    t->n = 0;
}

void co_transitions_remove(co_transitions *t, size_t i)
{
    if (!t || i >= t->n) return;
    transition_free(&t->v[i]);
    memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof *t->v);
    t->n--;
}

void co_transitions_free(co_transitions *t)
{
    if (!t) return;
    co_transitions_clear(t);
    free(t->v);
    t->v = NULL;
    t->cap = 0;
}

static int emit(co_transitions *out, const entry *e, co_alert_state from, co_alert_state to,
                int64_t ts, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int emit(co_transitions *out, const entry *e, co_alert_state from, co_alert_state to,
                int64_t ts, const char *fmt, ...)
{
    if (!out) return 0;
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 8;
        co_transition *v = realloc(out->v, cap * sizeof *v);
        if (!v) return -1;
        out->v = v;
        out->cap = cap;
    }
    char text[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    co_transition *x = &out->v[out->n];
    memset(x, 0, sizeof *x);
    x->rule_id = e->rule->id;
    x->site = strdup(e->site);
    x->screen = strdup(e->screen ? e->screen : "");
    x->device = strdup(e->device);
    x->labels = strdup(e->labels);
    x->text = strdup(text);
    x->from = from;
    x->to = to;
    x->severity = e->sev;
    x->value = e->value;
    x->threshold = e->threshold;
    x->ts_ms = ts;
    if (!x->site || !x->screen || !x->device || !x->labels || !x->text) {
        free(x->site);
        free(x->screen);
        free(x->device);
        free(x->labels);
        free(x->text);
        return -1;
    }
    out->n++;
    return 0;
}

/* ---- keys and labels ---- */

static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    char *b = realloc(*buf, c);
    if (!b) return -1;
    *buf = b;
    *cap = c;
    return 0;
}

/* Parts joined with '\0' (each terminated) into j->kb; returns the length or -1. */
static long make_key(co_judge *j, const char *const *parts, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += strlen(parts[i]) + 1;
    if (reserve(&j->kb, &j->kcap, len) < 0) return -1;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(parts[i]) + 1;
        memcpy(j->kb + off, parts[i], l);
        off += l;
    }
    return (long)len;
}

/* Append a JSON string literal of s to buf at *off. */
static int json_str(char **buf, size_t *cap, size_t *off, const char *s)
{
    size_t need = *off + strlen(s) * 6 + 3;
    if (reserve(buf, cap, need) < 0) return -1;
    char *b = *buf;
    size_t o = *off;
    b[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            b[o++] = '\\';
            b[o++] = (char)*p;
        } else if (*p < 0x20) {
            o += (size_t)snprintf(b + o, 7, "\\u%04x", *p);
        } else {
            b[o++] = (char)*p;
        }
    }
    b[o++] = '"';
    b[o] = '\0';
    *off = o;
    return 0;
}

/* Canonical labels (sorted, compact JSON) of s into j->lb. */
static int canon_labels(co_judge *j, const cm_label *const *l, size_t n)
{
    size_t off = 0;
    if (reserve(&j->lb, &j->lcap, 3) < 0) return -1;
    j->lb[off++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i) {
            if (reserve(&j->lb, &j->lcap, off + 2) < 0) return -1;
            j->lb[off++] = ',';
        }
        if (json_str(&j->lb, &j->lcap, &off, l[i]->key) < 0) return -1;
        if (reserve(&j->lb, &j->lcap, off + 2) < 0) return -1;
        j->lb[off++] = ':';
        if (json_str(&j->lb, &j->lcap, &off, l[i]->value) < 0) return -1;
    }
    if (reserve(&j->lb, &j->lcap, off + 2) < 0) return -1;
    j->lb[off++] = '}';
    j->lb[off] = '\0';
    return 0;
}

static const char *label_get(const sctx *s, const char *key)
{
    for (size_t i = 0; i < s->nlabels; i++)
        if (strcmp(s->labels[i]->key, key) == 0) return s->labels[i]->value;
    return NULL;
}

/* ---- entries ---- */

static entry *entry_find(co_judge *j, const co_rule *r, const char *site, const char *device,
                         const char *labels, int create, uint64_t *hout)
{
    const char *parts[4] = {r->id, site, device, labels};
    long len = make_key(j, parts, 4);
    if (len < 0) return NULL;
    uint64_t h = hash_bytes(j->kb, (size_t)len);
    if (hout) *hout = h;
    entry *e = (entry *)table_get(&j->alerts, j->kb, (size_t)len, h);
    if (e || !create) return e;
    e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->nd.key = malloc((size_t)len);
    if (!e->nd.key) {
        free(e);
        return NULL;
    }
    memcpy(e->nd.key, j->kb, (size_t)len);
    e->nd.klen = (size_t)len;
    e->nd.h = h;
    e->rule = r;
    e->site = e->nd.key + strlen(r->id) + 1;
    e->device = e->site + strlen(e->site) + 1;
    e->labels = e->device + strlen(e->device) + 1;
    if (table_put(&j->alerts, &e->nd) < 0) {
        free(e->nd.key);
        free(e);
        return NULL;
    }
    return e;
}

static void set_screen(entry *e, const char *screen)
{
    if (!screen) return;
    if (e->screen && strcmp(e->screen, screen) == 0) return;
    char *s = strdup(screen);
    if (!s) return; /* keep the old one */
    free(e->screen);
    e->screen = s;
}

static void timed_add(co_judge *j, entry *e)
{
    if (e->timed) return;
    e->timed = 1;
    e->tprev = NULL;
    e->tnext = j->timed;
    if (j->timed) j->timed->tprev = e;
    j->timed = e;
}

static void entry_free(co_judge *j, entry *e)
{
    if (e->timed) {
        if (e->tprev)
            e->tprev->tnext = e->tnext;
        else
            j->timed = e->tnext;
        if (e->tnext) e->tnext->tprev = e->tprev;
    }
    free(e->screen);
    free(e->nd.key);
    free(e);
}

static void entry_remove(co_judge *j, entry *e)
{
    table_del(&j->alerts, &e->nd);
    entry_free(j, e);
}

static int is_active(co_alert_state s)
{
    return s == CO_ALERT_PENDING || s == CO_ALERT_FIRING;
}

static void set_state(co_judge *j, entry *e, co_alert_state s)
{
    if (is_active(e->state) && !is_active(s)) j->nactive--;
    if (!is_active(e->state) && is_active(s)) j->nactive++;
    e->state = s;
}

/* ---- evaluation of bands ---- */

typedef struct verdict {
    int viol;                 /* highest violated severity, -1 none */
    int set[CO_NSEV];         /* band s exists */
    int held[CO_NSEV];        /* band s violated or not yet past its hysteresis */
    int low[CO_NSEV];         /* band s violated (or held) on its low side */
    double bound[CO_NSEV];    /* the violated bound of band s */
    double clear[CO_NSEV][2]; /* the bound to pass to resolve band s: [low side, high side] */
} verdict;

static void evaluate(const co_limits *l, double v, verdict *vd)
{
    memset(vd, 0, sizeof *vd);
    vd->viol = -1;
    double h = l->hysteresis;
    for (int s = 0; s < CO_NSEV; s++) {
        const co_band *b = &l->band[s];
        if (!b->set) continue;
        vd->set[s] = 1;
        vd->clear[s][0] = b->lo + h;
        vd->clear[s][1] = b->hi - h;
        if (b->has_lo && v < b->lo) {
            vd->viol = s;
            vd->low[s] = 1;
            vd->bound[s] = b->lo;
        } else if (b->has_hi && v > b->hi) {
            vd->viol = s;
            vd->bound[s] = b->hi;
        }
        if (b->has_lo && v < b->lo + h)
            vd->held[s] = 1, vd->low[s] = 1;
        else if (b->has_hi && v > b->hi - h)
            vd->held[s] = 1;
    }
}

static int hold_done(const co_hold *h, const entry *e, int64_t ts)
{
    if (h->samples <= 0 && h->ms <= 0) return 1;
    if (h->samples > 0 && e->count >= h->samples) return 1;
    if (h->ms > 0 && ts - e->since >= h->ms) return 1;
    return 0;
}

static const char *side_word(int low)
{
    return low ? "below" : "above";
}

/* Apply a verdict (NULL = the rule does not apply now: clear at once) to the alert of rule for
 * the sample. std: the standard to name. */
static int apply(co_judge *j, sctx *s, const co_rule *r, const co_override *ov, const verdict *vd,
                 double value, const char *std, const char *what)
{
    const co_hold *hold = ov && ov->has_hold ? &ov->hold : &r->hold;
    int viol = vd ? vd->viol : -1;
    entry *e = entry_find(j, r, s->site, s->device, s->canon, viol >= 0, NULL);
    if (!e) return viol >= 0 ? -1 : 0;
    set_screen(e, s->screen);
    int rc = 0;
    if (viol >= 0) {
        e->value = value;
        e->last = s->ts;
        switch (e->state) {
        case CO_ALERT_INACTIVE:
        case CO_ALERT_RESOLVED:
            e->count = 1;
            e->since = s->ts;
            e->sev = (co_severity)viol;
            e->low = vd->low[viol];
            e->threshold = vd->bound[viol];
            if (hold_done(hold, e, s->ts)) {
                set_state(j, e, CO_ALERT_FIRING);
                rc = emit(s->out, e, CO_ALERT_INACTIVE, CO_ALERT_FIRING, s->ts,
                          "%s firing (%s): %s %g %s %g [%s]", r->id, co_severity_name(e->sev), what,
                          value, side_word(e->low), e->threshold, std);
            } else {
                set_state(j, e, CO_ALERT_PENDING);
                rc = emit(s->out, e, CO_ALERT_INACTIVE, CO_ALERT_PENDING, s->ts,
                          "%s pending (%s): %s %g %s %g [%s]", r->id, co_severity_name(e->sev),
                          what, value, side_word(e->low), e->threshold, std);
            }
            break;
        case CO_ALERT_PENDING:
            e->count++;
            e->sev = (co_severity)viol;
            e->low = vd->low[viol];
            e->threshold = vd->bound[viol];
            if (hold_done(hold, e, s->ts)) {
                int n = e->count;
                int64_t held = s->ts - e->since;
                set_state(j, e, CO_ALERT_FIRING);
                e->since = s->ts;
                rc = emit(s->out, e, CO_ALERT_PENDING, CO_ALERT_FIRING, s->ts,
                          "%s firing (%s): %s %g %s %g for %d samples / %lld s [%s]", r->id,
                          co_severity_name(e->sev), what, value, side_word(e->low), e->threshold, n,
                          (long long)(held / 1000), std);
            }
            break;
        case CO_ALERT_FIRING: {
            e->count++;
            int ns = viol;
            if (viol <= (int)e->sev) /* de-escalate only past the hysteresis of the higher bands */
                for (ns = (int)e->sev; ns > viol && !vd->held[ns]; ns--) {
                }
            co_severity old = e->sev;
            if (ns == viol) { /* the bound broken now (the value may have crossed sides) */
                e->low = vd->low[viol];
                e->threshold = vd->bound[viol];
            }
            if (ns != (int)old) {
                e->sev = (co_severity)ns;
                if (ns != viol) e->low = vd->low[ns];
                rc = emit(s->out, e, CO_ALERT_FIRING, CO_ALERT_FIRING, s->ts,
                          "%s %s from %s to %s: %s %g [%s]", r->id,
                          ns > (int)old ? "escalated" : "eased", co_severity_name(old),
                          co_severity_name(e->sev), what, value, std);
            }
            break;
        }
        }
        return rc;
    }
    /* No violation. */
    if (e->state == CO_ALERT_PENDING) {
        e->value = value;
        set_state(j, e, CO_ALERT_INACTIVE);
        rc = emit(s->out, e, CO_ALERT_PENDING, CO_ALERT_INACTIVE, s->ts,
                  "%s cleared before its hold: %s %g [%s]", r->id, what, value, std);
    } else if (e->state == CO_ALERT_FIRING) {
        int ns = -1;
        if (vd)
            for (ns = (int)e->sev; ns >= 0 && !vd->held[ns]; ns--) {
            }
        e->value = value;
        e->last = s->ts;
        if (ns >= 0) {
            e->low = vd->low[ns];
            if (ns != (int)e->sev) {
                co_severity old = e->sev;
                e->sev = (co_severity)ns;
                rc = emit(s->out, e, CO_ALERT_FIRING, CO_ALERT_FIRING, s->ts,
                          "%s eased from %s to %s: %s %g [%s]", r->id, co_severity_name(old),
                          co_severity_name(e->sev), what, value, std);
            }
            return rc; /* inside the band but not past the hysteresis: still firing */
        }
        if (vd) { /* the bound passed last: that of the innermost band (the lowest severity) */
            int b = (int)e->sev;
            for (int k = 0; k < b; k++)
                if (vd->set[k]) b = k;
            e->threshold = vd->clear[b][e->low ? 0 : 1];
        }
        set_state(j, e, CO_ALERT_INACTIVE);
        if (vd)
            rc = emit(s->out, e, CO_ALERT_FIRING, CO_ALERT_RESOLVED, s->ts,
                      "%s resolved: %s %g back %s %g [%s]", r->id, what, value,
                      e->low ? "above" : "below", e->threshold, std);
        else
            rc = emit(s->out, e, CO_ALERT_FIRING, CO_ALERT_RESOLVED, s->ts,
                      "%s resolved: no longer applies (%s) [%s]", r->id,
                      r->while_metric ? r->while_metric : "condition", std);
    }
    if (e->state == CO_ALERT_INACTIVE && r->kind != CO_RULE_RATE) entry_remove(j, e);
    return rc;
}

/* ---- latest values of referenced metrics ---- */

static latest *latest_find(co_judge *j, const char *site, const char *device, const char *metric,
                           const char *labels, int create)
{
    const char *parts[4] = {site, device, metric, labels};
    long len = make_key(j, parts, 4);
    if (len < 0) return NULL;
    uint64_t h = hash_bytes(j->kb, (size_t)len);
    latest *l = (latest *)table_get(&j->latest, j->kb, (size_t)len, h);
    if (l || !create) return l;
    l = calloc(1, sizeof *l);
    if (!l || !(l->nd.key = malloc((size_t)len))) {
        free(l);
        return NULL;
    }
    memcpy(l->nd.key, j->kb, (size_t)len);
    l->nd.klen = (size_t)len;
    l->nd.h = h;
    if (table_put(&j->latest, &l->nd) < 0) {
        free(l->nd.key);
        free(l);
        return NULL;
    }
    return l;
}

/* ---- kinds ---- */

static int matches(const co_rule *r, const sctx *s)
{
    for (size_t i = 0; i < r->nmatch; i++) {
        const co_matcher *m = &r->match[i];
        const char *v = label_get(s, m->key);
        int in = 0;
        for (size_t k = 0; v && k < m->nvals && !in; k++)
            in = strcmp(v, m->vals[k]) == 0;
        if (in == m->negate) return 0;
    }
    return 1;
}

/* 1 the rule applies, 0 it does not (clear), -1 unknown (skip). */
static int while_ok(co_judge *j, const co_rule *r, const sctx *s)
{
    if (!r->while_metric) return 1;
    latest *l = latest_find(j, s->site, s->device, r->while_metric, "{}", 0);
    if (!l) return -1;
    for (size_t i = 0; i < r->nwhile_in; i++)
        if (l->v == r->while_in[i]) return 1;
    return 0;
}

static const co_screen_settings *settings(co_judge *j, sctx *s)
{
    if (!s->have_settings) {
        memset(&s->settings, 0, sizeof s->settings);
        if (j->cb.screen && s->screen && *s->screen &&
            j->cb.screen(j->cb.ud, s->site, s->screen, &s->settings) != 1)
            memset(&s->settings, 0, sizeof s->settings);
        s->have_settings = 1;
    }
    return &s->settings;
}

/* The first choice of threshold rule r matching the sample's mode label and the screen's
 * settings st (NULL = unknown), or NULL. */
static const co_choice *choose(const co_rule *r, const sctx *s, const co_screen_settings *st)
{
    co_mode mode = CO_MODE_ANY;
    const char *ml = label_get(s, "mode");
    if (ml && co_mode_parse(ml, &mode) < 0) mode = CO_MODE_ANY;
    for (size_t i = 0; i < r->nchoices; i++) {
        const co_choice *c = &r->choices[i];
        if (c->mode && c->mode != mode) continue;
        if (c->cls && (!st || c->cls != st->cls)) continue;
        if (c->display && (!st || c->display != st->display)) continue;
        return c;
    }
    return NULL;
}

/* The judged difference of a deviation rule: value − ref, or in % of ref. -1 when undefined. */
static int deviation_of(const co_rule *r, double value, double ref, double *d)
{
    *d = value - ref;
    if (r->percent) {
        if (ref == 0) return -1;
        *d = 100.0 * *d / fabs(ref);
    }
    return 0;
}

static int judge_threshold(co_judge *j, sctx *s, const co_rule *r)
{
    int w = while_ok(j, r, s);
    if (w < 0) return 0;
    double v = s->value;
    if (r->percent_of) {
        latest *l = latest_find(j, s->site, s->device, r->percent_of, s->canon, 0);
        if (!l || l->v == 0) return 0;
        v = 100.0 * s->value / l->v;
    }
    const co_choice *ch = choose(r, s, r->needs_screen ? settings(j, s) : NULL);
    if (!ch) return 0;
    const co_override *ov = co_overrides_find(j->ov, r, s->site, s->screen, ch);
    if (ov && ov->has_enabled && !ov->enabled) return 0;
    const char *std = ch->standard ? ch->standard : r->standard;
    char what[2 * CM_MAX_NAME + 16];
    if (r->percent_of)
        snprintf(what, sizeof what, "%s as %% of %s", r->metric, r->percent_of);
    else
        snprintf(what, sizeof what, "%s", r->metric);
    if (w == 0) return apply(j, s, r, ov, NULL, v, std, what);
    co_limits lim = ch->lim;
    co_limits_apply(&lim, ov);
    verdict vd;
    evaluate(&lim, v, &vd);
    return apply(j, s, r, ov, &vd, v, std, what);
}

static int judge_deviation(co_judge *j, sctx *s, const co_rule *r, const co_override *ov)
{
    int w = while_ok(j, r, s);
    if (w < 0) return 0;
    double ref;
    if (!j->cb.reference ||
        j->cb.reference(j->cb.ud, s->site, s->screen ? s->screen : "", s->device, s->metric, s->raw,
                        s->nraw, &ref) != 1 ||
        !isfinite(ref))
        return 0;
    double d;
    if (deviation_of(r, s->value, ref, &d) < 0) return 0;
    char what[96];
    snprintf(what, sizeof what, "%s vs reference %g: difference%s", r->metric, ref,
             r->percent ? " %" : "");
    if (w == 0) return apply(j, s, r, ov, NULL, d, r->standard, what);
    co_limits lim = r->lim;
    co_limits_apply(&lim, ov);
    verdict vd;
    evaluate(&lim, d, &vd);
    return apply(j, s, r, ov, &vd, d, r->standard, what);
}

static int judge_rate(co_judge *j, sctx *s, const co_rule *r, const co_override *ov)
{
    entry *e = entry_find(j, r, s->site, s->device, s->canon, 1, NULL);
    if (!e) return -1;
    if (!e->has_b) {
        e->has_b = 1;
        e->b_ts = s->ts;
        e->b_v = s->value;
        return 0;
    }
    if (s->ts <= e->b_ts) return 0; /* old or repeated: no rate from it */
    if (s->ts - e->b_ts >= r->window_ms) {
        e->has_a = 1;
        e->a_ts = e->b_ts;
        e->a_v = e->b_v;
        e->b_ts = s->ts;
        e->b_v = s->value;
    }
    if (!e->has_a || s->ts <= e->a_ts) return 0;
    int w = while_ok(j, r, s);
    if (w < 0) return 0;
    double rate = (s->value - e->a_v) / (double)(s->ts - e->a_ts) * 3600000.0;
    char what[96];
    snprintf(what, sizeof what, "%s change per hour", r->metric);
    if (w == 0) return apply(j, s, r, ov, NULL, rate, r->standard, what);
    co_limits lim = r->lim;
    co_limits_apply(&lim, ov);
    verdict vd;
    evaluate(&lim, rate, &vd);
    return apply(j, s, r, ov, &vd, rate, r->standard, what);
}

static int judge_seen(co_judge *j, sctx *s, const co_rule *r)
{
    entry *e = entry_find(j, r, s->site, s->device, "{}", 1, NULL);
    if (!e) return -1;
    set_screen(e, s->screen);
    timed_add(j, e);
    int rc = 0;
    if (e->last > 0 && s->ts > e->last && e->state != CO_ALERT_FIRING) { /* not a silence */
        int64_t gap = s->ts - e->last;
        if (gap >= 1000) {
            int64_t iv = e->prev_gap > 0 && e->prev_gap < gap ? e->prev_gap : gap;
            e->interval = iv;
            e->prev_gap = gap;
        }
    }
    if (e->state == CO_ALERT_FIRING && s->ts > e->last) {
        e->value = (double)(s->ts - e->last) / 1000.0;
        set_state(j, e, CO_ALERT_INACTIVE);
        rc = emit(s->out, e, CO_ALERT_FIRING, CO_ALERT_RESOLVED, s->ts,
                  "%s resolved: %s reports again after %g s [%s]", r->id, e->device, e->value,
                  r->standard);
    }
    if (s->ts > e->last) e->last = s->ts;
    if (j->tick_now > 0 && j->tick_now > e->seen_tick) {
        if (e->seen_tick > 0) e->arrival_iv = j->tick_now - e->seen_tick;
        e->seen_tick = j->tick_now;
    }
    return rc;
}

/* The sample's labels, sorted by key, into s (nlabels <= CM_MAX_LABELS). */
static void sort_labels(sctx *s, const cm_label *labels, size_t nlabels)
{
    for (size_t i = 0; i < nlabels; i++) { /* insertion sort by key */
        size_t k = i;
        while (k > 0 && strcmp(s->labels[k - 1]->key, labels[i].key) > 0) {
            s->labels[k] = s->labels[k - 1];
            k--;
        }
        s->labels[k] = &labels[i];
    }
    s->nlabels = nlabels;
}

/* co_rules_in_tolerance with the overrides ovs (the judge's, under its mutex, or given). */
static int in_tolerance(const co_overrides *ovs, const co_rule *r, const char *site,
                        const char *screen, const co_screen_settings *st, const cm_label *labels,
                        size_t nlabels, double value, const double *reference, int *in)
{
    if (!r || !site || !in || (nlabels && !labels) || nlabels > CM_MAX_LABELS) return -1;
    for (size_t i = 0; i < nlabels; i++)
        if (!labels[i].key || !labels[i].value) return -1;
    if (!isfinite(value)) return 0;
    sctx s = {.site = site, .screen = screen, .raw = labels, .nraw = nlabels, .value = value};
    sort_labels(&s, labels, nlabels);
    if (!matches(r, &s) || r->while_metric) return 0; /* while needs live values: not judged */
    const co_override *ov = NULL;
    co_limits lim;
    double v = value;
    if (r->kind == CO_RULE_THRESHOLD) {
        if (r->percent_of) return 0;
        const co_choice *ch = choose(r, &s, st);
        if (!ch) return 0;
        ov = co_overrides_find(ovs, r, site, screen, ch);
        lim = ch->lim;
    } else if (r->kind == CO_RULE_DEVIATION) {
        if (!reference || !isfinite(*reference) || deviation_of(r, value, *reference, &v) < 0)
            return 0;
        ov = co_overrides_find(ovs, r, site, screen, NULL);
        lim = r->lim;
    } else {
        return 0;
    }
    if (ov && ov->has_enabled && !ov->enabled) return 0;
    co_limits_apply(&lim, ov);
    verdict vd;
    evaluate(&lim, v, &vd);
    *in = vd.viol < 0;
    return 1;
}

int co_rules_in_tolerance(const co_overrides *ov, const co_rule *rule, const char *site,
                          const char *screen, const co_screen_settings *st, const cm_label *labels,
                          size_t nlabels, double value, const double *reference, int *in)
{
    return in_tolerance(ov, rule, site, screen, st, labels, nlabels, value, reference, in);
}

int co_judge_in_tolerance(co_judge *j, const co_rule *rule, const char *site, const char *screen,
                          const co_screen_settings *st, const cm_label *labels, size_t nlabels,
                          double value, const double *reference, int *in)
{
    if (!j) return -1;
    pthread_mutex_lock(&j->mu);
    int rc = in_tolerance(j->ov, rule, site, screen, st, labels, nlabels, value, reference, in);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

/* ---- public ---- */

co_judge *co_judge_new(const co_rules *rules, const co_judge_callbacks *cb)
{
    if (!rules) return NULL;
    co_judge *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    if (pthread_mutex_init(&j->mu, NULL) != 0) {
        free(j);
        return NULL;
    }
    j->rules = rules;
    if (cb) j->cb = *cb;
    return j;
}

void co_judge_free(co_judge *j)
{
    if (!j) return;
    for (size_t i = 0; i < j->alerts.nb; i++)
        for (node *n = j->alerts.b[i], *next; n; n = next) {
            next = n->next;
            entry *e = (entry *)n;
            e->timed = 0;
            entry_free(j, e);
        }
    for (size_t i = 0; i < j->latest.nb; i++)
        for (node *n = j->latest.b[i], *next; n; n = next) {
            next = n->next;
            free(n->key);
            free(n);
        }
    free(j->alerts.b);
    free(j->latest.b);
    co_overrides_free(j->ov);
    free(j->kb);
    free(j->lb);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

void co_judge_set_overrides(co_judge *j, co_overrides *o)
{
    pthread_mutex_lock(&j->mu);
    co_overrides *old = j->ov;
    j->ov = o;
    pthread_mutex_unlock(&j->mu);
    co_overrides_free(old);
}

static int excluded(const co_rule *r, const char *metric)
{
    for (size_t i = 0; i < r->nexclude; i++)
        if (strcmp(r->exclude[i], metric) == 0) return 1;
    return 0;
}

int co_judge_sample(co_judge *j, const char *site, const char *screen, const char *device,
                    const char *metric, const cm_label *labels, size_t nlabels, int64_t ts_ms,
                    double value, co_transitions *out)
{
    if (!j || !site || !device || !metric || (nlabels && !labels)) return -1;
    if (!isfinite(value)) return 0;
    size_t n, nany;
    int referenced;
    const co_rule *const *rs = co_rules_for_metric(j->rules, metric, &n, &referenced);
    co_rules_any_metric(j->rules, &nany);
    if (!n && !referenced && !nany) return 0;
    if (nlabels > CM_MAX_LABELS) return -1;
    for (size_t i = 0; i < nlabels; i++)
        if (!labels[i].key || !labels[i].value) return -1;

    pthread_mutex_lock(&j->mu);
    sctx s = {.site = site,
              .screen = screen,
              .device = device,
              .metric = metric,
              .raw = labels,
              .nraw = nlabels,
              .ts = ts_ms,
              .value = value,
              .out = out};
    sort_labels(&s, labels, nlabels);
    int rc = 0;
    char *canon = NULL;
    if (n || referenced) { /* absence rules alone need no labels */
        if (canon_labels(j, s.labels, s.nlabels) < 0 || !(canon = strdup(j->lb))) {
            rc = -1;
            goto out;
        }
    }
    s.canon = canon;
    if (referenced) {
        latest *l = latest_find(j, site, device, metric, canon, 1);
        if (!l)
            rc = -1;
        else if (ts_ms >= l->ts)
            l->v = value, l->ts = ts_ms;
    }
    for (size_t i = 0; i < n; i++) {
        const co_rule *r = rs[i];
        if (!matches(r, &s)) continue;
        /* threshold rules look their override up once the choice is known */
        const co_override *ov =
            r->kind == CO_RULE_THRESHOLD ? NULL : co_overrides_find(j->ov, r, site, screen, NULL);
        if (ov && ov->has_enabled && !ov->enabled) continue;
        int k = 0;
        switch (r->kind) {
        case CO_RULE_THRESHOLD:
            k = judge_threshold(j, &s, r);
            break;
        case CO_RULE_DEVIATION:
            k = judge_deviation(j, &s, r, ov);
            break;
        case CO_RULE_RATE:
            k = judge_rate(j, &s, r, ov);
            break;
        case CO_RULE_ABSENCE:
            k = judge_seen(j, &s, r);
            break;
        case CO_RULE_EVENT:
            break;
        }
        if (k < 0) rc = -1;
    }
    const co_rule *const *any = co_rules_any_metric(j->rules, &nany);
    for (size_t i = 0; i < nany; i++) {
        if (excluded(any[i], metric) || !matches(any[i], &s)) continue;
        const co_override *ov = co_overrides_find(j->ov, any[i], site, screen, NULL);
        if (ov && ov->has_enabled && !ov->enabled) continue;
        if (judge_seen(j, &s, any[i]) < 0) rc = -1;
    }
out:
    free(canon);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int co_judge_device_seen(co_judge *j, const char *site, const char *screen, const char *device,
                         int64_t ts_ms)
{
    if (!j || !site || !device) return -1;
    size_t nany;
    const co_rule *const *any = co_rules_any_metric(j->rules, &nany);
    if (!nany) return 0;
    pthread_mutex_lock(&j->mu);
    sctx s = {.site = site, .screen = screen, .device = device, .metric = "", .ts = ts_ms};
    int rc = 0;
    for (size_t i = 0; i < nany; i++)
        if (judge_seen(j, &s, any[i]) < 0) rc = -1;
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int co_judge_event(co_judge *j, const char *site, const char *screen, const char *device,
                   const char *code, const char *source, const char *severity, int64_t ts_ms,
                   const char *text, co_transitions *out)
{
    if (!j || !site || !device || !code) return -1;
    size_t n;
    const co_rule *const *rs = co_rules_events(j->rules, &n);
    if (!n) return 0;
    co_severity esev = CO_SEV_WARNING;
    if (severity && co_severity_parse(severity, &esev) < 0) esev = CO_SEV_WARNING;
    /* A code that a specific rule names (as its code or its clearing code) belongs to that
     * rule: catch-all ("*") rules leave it alone, so a clearing trap raises nothing. */
    int claimed = 0;
    for (size_t i = 0; i < n && !claimed; i++) {
        const co_rule *r = rs[i];
        if (!strcmp(r->code, "*") || (r->source && (!source || strcmp(r->source, source) != 0)))
            continue;
        claimed = !strcmp(r->code, code) || (r->clear_code && !strcmp(r->clear_code, code));
    }
    pthread_mutex_lock(&j->mu);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        const co_rule *r = rs[i];
        if (r->source && (!source || strcmp(r->source, source) != 0)) continue;
        if (claimed && !strcmp(r->code, "*")) continue;
        const co_override *ov = co_overrides_find(j->ov, r, site, screen, NULL);
        if (ov && ov->has_enabled && !ov->enabled) continue;
        int clear = r->clear_code && strcmp(code, r->clear_code) == 0;
        if (!clear && strcmp(r->code, "*") != 0 && strcmp(r->code, code) != 0) continue;
        cm_label l = {"code", clear ? r->code : code};
        const cm_label *lp = &l;
        if (canon_labels(j, &lp, 1) < 0) {
            rc = -1;
            continue;
        }
        char *canon = strdup(j->lb);
        if (!canon) {
            rc = -1;
            continue;
        }
        entry *e = entry_find(j, r, site, device, canon, !clear, NULL);
        free(canon);
        if (!e) {
            if (!clear) rc = -1;
            continue;
        }
        set_screen(e, screen);
        if (clear) {
            if (e->state == CO_ALERT_FIRING) {
                set_state(j, e, CO_ALERT_INACTIVE);
                if (emit(out, e, CO_ALERT_FIRING, CO_ALERT_RESOLVED, ts_ms,
                         "%s resolved by %s%s%s [%s]", r->id, code, text ? ": " : "",
                         text ? text : "", r->standard) < 0)
                    rc = -1;
            }
            entry_remove(j, e);
            continue;
        }
        e->last = ts_ms > e->last ? ts_ms : e->last;
        if (e->state == CO_ALERT_FIRING) {
            e->count++;
            e->value = e->count;
            continue;
        }
        e->count = 1;
        e->value = 1;
        e->since = ts_ms;
        e->threshold = 0;
        e->sev = r->has_severity ? r->severity : esev;
        set_state(j, e, CO_ALERT_FIRING);
        if (r->resolve_after_ms > 0) timed_add(j, e);
        if (emit(out, e, CO_ALERT_INACTIVE, CO_ALERT_FIRING, ts_ms,
                 "%s firing (%s): event %s%s%s [%s]", r->id, co_severity_name(e->sev), code,
                 text ? ": " : "", text ? text : "", r->standard) < 0)
            rc = -1;
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int co_judge_tick(co_judge *j, int64_t now_ms, co_transitions *out)
{
    if (!j) return -1;
    pthread_mutex_lock(&j->mu);
    if (now_ms > j->tick_now) j->tick_now = now_ms;
    int rc = 0;
    for (entry *e = j->timed, *next; e; e = next) {
        next = e->tnext;
        const co_rule *r = e->rule;
        if (r->kind == CO_RULE_ABSENCE) {
            if (e->state != CO_ALERT_INACTIVE || e->last <= 0) continue;
            const co_override *ov = co_overrides_find(j->ov, r, e->site, e->screen, NULL);
            if (ov && ov->has_enabled && !ov->enabled) continue;
            int n = ov && ov->has_intervals ? ov->intervals : r->intervals;
            int64_t iv = e->interval > 0 ? e->interval : r->interval_ms;
            if (e->arrival_iv > iv) iv = e->arrival_iv;
            int64_t limit = iv * n;
            int64_t ref = e->seen_tick > e->last ? e->seen_tick : e->last;
            if (now_ms - ref <= limit) continue;
            e->value = (double)(now_ms - ref) / 1000.0;
            e->threshold = (double)limit / 1000.0;
            e->since = now_ms;
            e->count = 1;
            e->sev = r->severity;
            set_state(j, e, CO_ALERT_FIRING);
            if (emit(out, e, CO_ALERT_INACTIVE, CO_ALERT_FIRING, now_ms,
                     "%s firing (%s): no sample from %s for %g s (%d x %g s) [%s]", r->id,
                     co_severity_name(e->sev), e->device, e->value, n, (double)iv / 1000.0,
                     r->standard) < 0)
                rc = -1;
        } else if (r->kind == CO_RULE_EVENT) {
            if (e->state != CO_ALERT_FIRING || r->resolve_after_ms <= 0 ||
                now_ms - e->last < r->resolve_after_ms)
                continue;
            set_state(j, e, CO_ALERT_INACTIVE);
            if (emit(out, e, CO_ALERT_FIRING, CO_ALERT_RESOLVED, now_ms,
                     "%s resolved: no %s event for %lld s [%s]", r->id, e->labels,
                     (long long)((now_ms - e->last) / 1000), r->standard) < 0)
                rc = -1;
            entry_remove(j, e);
        }
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int co_judge_foreach(co_judge *j, int (*fn)(void *ud, const co_alert_info *a), void *ud)
{
    if (!j || !fn) return -1;
    pthread_mutex_lock(&j->mu);
    int rc = 0;
    for (size_t i = 0; i < j->alerts.nb && !rc; i++)
        for (node *n = j->alerts.b[i]; n && !rc; n = n->next) {
            const entry *e = (const entry *)n;
            if (!is_active(e->state)) continue;
            co_alert_info a = {.rule_id = e->rule->id,
                               .site = e->site,
                               .screen = e->screen ? e->screen : "",
                               .device = e->device,
                               .labels = e->labels,
                               .state = e->state,
                               .severity = e->sev,
                               .value = e->value,
                               .threshold = e->threshold,
                               .since_ms = e->since,
                               .last_ms = e->last,
                               .count = e->count};
            rc = fn(ud, &a);
        }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

/* Canonical form of a labels JSON object into j->lb; -1 when it is not {string: string}. */
static int canon_json(co_judge *j, const char *text)
{
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(o) || json_object_size(o) > CM_MAX_LABELS) {
        json_decref(o);
        return -1;
    }
    cm_label l[CM_MAX_LABELS];
    const cm_label *lp[CM_MAX_LABELS];
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (!json_is_string(v)) {
            json_decref(o);
            return -1;
        }
        l[n].key = k;
        l[n].value = json_string_value(v);
        size_t p = n++;
        while (p > 0 && strcmp(lp[p - 1]->key, k) > 0) {
            lp[p] = lp[p - 1];
            p--;
        }
        lp[p] = &l[n - 1];
    }
    int rc = canon_labels(j, lp, n);
    json_decref(o);
    return rc;
}

int co_judge_restore(co_judge *j, const co_alert_info *a, char *err, size_t errlen)
{
    if (!j || !a || !a->rule_id || !a->site || !a->device) {
        cm_seterr(err, errlen, "restore: missing rule, site or device");
        return -1;
    }
    const co_rule *r = co_rules_find(j->rules, a->rule_id);
    if (!r) {
        cm_seterr(err, errlen, "restore: unknown rule \"%s\"", a->rule_id);
        return -1;
    }
    if (!is_active(a->state) || (unsigned)a->severity >= CO_NSEV ||
        (a->state == CO_ALERT_PENDING &&
         (r->kind == CO_RULE_EVENT || r->kind == CO_RULE_ABSENCE))) {
        cm_seterr(err, errlen, "restore: rule %s: state must be pending or firing", a->rule_id);
        return -1;
    }
    pthread_mutex_lock(&j->mu);
    int rc = -1;
    char *canon = NULL;
    if (canon_json(j, a->labels ? a->labels : "{}") < 0) {
        cm_seterr(err, errlen, "restore: rule %s: labels are not a JSON object of strings",
                  a->rule_id);
        goto out;
    }
    if (!(canon = strdup(j->lb))) goto oom;
    entry *e = entry_find(j, r, a->site, a->device, canon, 1, NULL);
    if (!e) goto oom;
    set_screen(e, a->screen && *a->screen ? a->screen : NULL);
    set_state(j, e, a->state);
    e->sev = a->severity;
    e->value = a->value;
    e->threshold = a->threshold;
    e->since = a->since_ms;
    e->last = a->last_ms;
    e->count = a->count;
    if (r->kind == CO_RULE_THRESHOLD || r->kind == CO_RULE_DEVIATION || r->kind == CO_RULE_RATE) {
        /* which side it broke: below the threshold when the value is */
        e->low = a->value < a->threshold;
    }
    if (r->kind == CO_RULE_ABSENCE || (r->kind == CO_RULE_EVENT && r->resolve_after_ms > 0))
        timed_add(j, e);
    rc = 0;
    goto out;
oom:
    cm_seterr(err, errlen, "restore: out of memory");
out:
    free(canon);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int co_judge_forget(co_judge *j, const char *rule_id, const char *site, const char *device,
                    const char *labels)
{
    if (!j || !rule_id || !site || !device) return -1;
    const co_rule *r = co_rules_find(j->rules, rule_id);
    if (!r) return -1;
    pthread_mutex_lock(&j->mu);
    int rc = -1;
    char *canon = NULL;
    if (canon_json(j, labels ? labels : "{}") < 0 || !(canon = strdup(j->lb))) goto out;
    entry *e = entry_find(j, r, site, device, canon, 0, NULL);
    rc = 0;
    if (e && is_active(e->state)) {
        set_state(j, e, CO_ALERT_INACTIVE);
        entry_remove(j, e);
        rc = 1;
    }
out:
    free(canon);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

size_t co_judge_active(co_judge *j)
{
    if (!j) return 0;
    pthread_mutex_lock(&j->mu);
    size_t n = j->nactive;
    pthread_mutex_unlock(&j->mu);
    return n;
}

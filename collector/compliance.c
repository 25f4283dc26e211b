/* compliance.c — see compliance.h and docs/compliance.md. */
#include "compliance.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errbuf.h"

#define DAY_MS 86400000LL
#define DEFAULT_TYPICAL_MS (5 * 60 * 1000LL) /* a lone sample: cap 3 x 5 min = 15 min */
#define CAP_FACTOR 3
#define NQ 3

/* The quantities and the rules whose bands decide them. */
static const char *const QUANTITY[NQ] = {"luminance", "white", "spl"};
static const char *const QRULES[NQ][3] = {
    {"screen_luminance", NULL, NULL},
    {"white_point_x", "white_point_y", NULL},
    {"spl_deviation", "spl_deviation_subwoofer", NULL},
};

struct co_compliance {
    co_store *store;
    const co_rules *rules;
    co_judge *judge;
    int64_t interval_ms;
    pthread_mutex_t mu; /* one run at a time; guards last_tick_ms, hook */
    int64_t last_tick_ms;
    co_compliance_hook hook;
    void *hook_ud;
};

/* ---------------------------------------------------------------- days and levels */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t co_compliance_day_of(int64_t ts_ms)
{
    return floor_div(ts_ms, DAY_MS);
}

void co_compliance_day_format(int64_t day, char *buf, size_t len)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    char tmp[48];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    snprintf(buf, len, "%.10s", tmp);
}

int co_compliance_day_parse(const char *s, int64_t *day)
{
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-') return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return -1;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31) return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
    time_t t = timegm(&tm);
    if (tm.tm_mday != d || tm.tm_mon != m - 1) return -1; /* 2026-02-30 */
    *day = (int64_t)t / 86400;
    return 0;
}

int co_compliance_level_parse(const char *s, co_compliance_level *out)
{
    static const char *const n[] = {"screen", "site", "city", "province", "nation"};
    for (int i = 0; s && i < 5; i++)
        if (!strcmp(s, n[i])) {
            *out = (co_compliance_level)i;
            return 0;
        }
    return -1;
}

/* ---------------------------------------------------------------- engine */

co_compliance *co_compliance_new(co_store *s, const co_rules *rules, co_judge *judge,
                                 int64_t interval_ms)
{
    if (!s || !rules) return NULL;
    co_compliance *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    c->store = s;
    c->rules = rules;
    c->judge = judge;
    c->interval_ms = interval_ms > 0 ? interval_ms : CO_COMPLIANCE_DEFAULT_INTERVAL_MS;
    return c;
}

void co_compliance_free(co_compliance *c)
{
    if (!c) return;
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Totals of one (site, screen, quantity). */
typedef struct acc {
    char *site, *screen;
    int q;
    int64_t in_ms, measured_ms;
} acc;

typedef struct run {
    co_compliance *c;
    int64_t day_start, day_end;
    json_t *screens; /* "site\x1fscreen" -> screen row */
    const co_rule *rules[NQ][3];
    json_t *index; /* "site\x1fscreen\x1fq" -> index into v */
    acc *v;
    size_t n, cap;
    int oom;
} run;

static acc *acc_get(run *r, const char *site, const char *screen, int q)
{
    char key[3 * CM_MAX_NAME + 16];
    snprintf(key, sizeof key, "%s\x1f%s\x1f%d", site, screen, q);
    json_t *ix = json_object_get(r->index, key);
    if (ix) return &r->v[json_integer_value(ix)];
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        acc *v = realloc(r->v, cap * sizeof *v);
        if (!v) return NULL;
        r->v = v;
        r->cap = cap;
    }
    acc *a = &r->v[r->n];
    *a = (acc){.site = strdup(site), .screen = strdup(screen), .q = q};
    if (!a->site || !a->screen ||
        json_object_set_new(r->index, key, json_integer((json_int_t)r->n)) < 0) {
        free(a->site);
        free(a->screen);
        return NULL;
    }
    r->n++;
    return a;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The median of the positive gaps between samples (0 when there is none). */
static int64_t typical_interval(const int64_t *ts, size_t n)
{
    if (n < 2) return 0;
    int64_t *g = malloc((n - 1) * sizeof *g);
    if (!g) return 0;
    size_t k = 0;
    for (size_t i = 1; i < n; i++)
        if (ts[i] > ts[i - 1]) g[k++] = ts[i] - ts[i - 1];
    int64_t m = 0;
    if (k) {
        qsort(g, k, sizeof *g, cmp_i64);
        m = g[k / 2];
    }
    free(g);
    return m;
}

/* The screen of a series: its device's inventory screen, else the part of the device id
 * before '/' (as alerting.c's screen_of). */
static const char *screen_of(const co_day_series *se, char *buf, size_t n)
{
    if (se->screen && *se->screen) return se->screen;
    const char *slash = strchr(se->device, '/');
    if (!slash || slash == se->device || (size_t)(slash - se->device) >= n) return NULL;
    memcpy(buf, se->device, (size_t)(slash - se->device));
    buf[slash - se->device] = '\0';
    return buf;
}

static int on_series(void *ud, const co_day_series *se)
{
    run *r = ud;
    int q = -1;
    for (int i = 0; i < NQ && q < 0; i++)
        for (int k = 0; k < 3 && r->rules[i][k]; k++)
            if (!strcmp(r->rules[i][k]->metric, se->metric)) q = i;
    if (q < 0) return 0;
    char sbuf[CM_MAX_NAME + 1];
    const char *screen = screen_of(se, sbuf, sizeof sbuf);
    if (!screen) return 0; /* compliance is per screen */

    /* labels */
    json_t *lj = json_loads(se->labels_json ? se->labels_json : "{}", 0, NULL);
    cm_label labels[CM_MAX_LABELS];
    size_t nl = 0;
    const char *k;
    json_t *v;
    const char *channel = NULL;
    if (json_is_object(lj)) {
        json_object_foreach(lj, k, v)
        {
            if (!json_is_string(v) || nl >= CM_MAX_LABELS) continue;
            labels[nl].key = k;
            labels[nl].value = json_string_value(v);
            if (!strcmp(k, "channel")) channel = labels[nl].value;
            nl++;
        }
    }
    /* screen settings and reference (as alerting.c's callbacks) */
    char key[2 * CM_MAX_NAME + 4];
    snprintf(key, sizeof key, "%s\x1f%s", se->site, screen);
    json_t *row = json_object_get(r->screens, key);
    co_screen_settings st = {0};
    co_screen_class_parse(json_string_value(json_object_get(row, "class")), &st.cls);
    co_display_parse(json_string_value(json_object_get(row, "display")), &st.display);
    double refv = 0;
    const double *ref = NULL;
    json_t *rj = channel ? json_object_get(json_object_get(row, "spl_ref"), channel) : NULL;
    if (!strcmp(se->metric, "spl_dbc") && json_is_number(rj)) {
        refv = json_number_value(rj);
        ref = &refv;
    }

    acc *a = acc_get(r, se->site, screen, q);
    if (!a) {
        json_decref(lj);
        r->oom = 1;
        return -1;
    }
    int64_t typ = typical_interval(se->ts_ms, se->n);
    if (typ <= 0) typ = DEFAULT_TYPICAL_MS;
    int64_t cap = CAP_FACTOR * typ;
    for (size_t i = 0; i < se->n; i++) {
        int64_t t = se->ts_ms[i];
        if (t < r->day_start || t >= r->day_end) continue;
        int64_t d = i + 1 < se->n ? se->ts_ms[i + 1] - t : typ;
        if (d > cap) d = cap;
        if (t + d > r->day_end) d = r->day_end - t;
        if (d <= 0) continue;
        int judged = 0, in = 1;
        for (int j = 0; j < 3 && r->rules[q][j]; j++) {
            const co_rule *rule = r->rules[q][j];
            if (strcmp(rule->metric, se->metric) != 0) continue;
            int ok = 0, rc;
            if (r->c->judge)
                rc = co_judge_in_tolerance(r->c->judge, rule, se->site, screen, &st, labels, nl,
                                           se->value[i], ref, &ok);
            else
                rc = co_rules_in_tolerance(NULL, rule, se->site, screen, &st, labels, nl,
                                           se->value[i], ref, &ok);
            if (rc == 1) {
                judged = 1;
                if (!ok) in = 0;
            }
        }
        if (!judged) continue;
        a->measured_ms += d;
        if (in) a->in_ms += d;
    }
    json_decref(lj);
    return 0;
}

static json_t *screens_map(co_store *s, char *err, size_t errlen)
{
    json_t *rows = co_store_screens(s, NULL, NULL, NULL, err, errlen);
    if (!rows) return NULL;
    json_t *map = json_object();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        char key[2 * CM_MAX_NAME + 4];
        snprintf(key, sizeof key, "%s\x1f%s", json_string_value(json_object_get(row, "site")),
                 json_string_value(json_object_get(row, "screen")));
        if (!map || json_object_set(map, key, row) < 0) {
            json_decref(map);
            map = NULL;
            cm_seterr(err, errlen, "out of memory");
            break;
        }
    }
    json_decref(rows);
    return map;
}

/* co_store_compliance_received callback: a figure of a tier below counts for its screen and
 * quantity unless this collector measured them itself. */
static int on_received(void *ud, const co_compliance_row *row)
{
    run *r = ud;
    int q = 0;
    while (q < NQ && strcmp(QUANTITY[q], row->quantity) != 0)
        q++;
    if (q == NQ) return 0;
    acc *a = acc_get(r, row->site, row->screen, q);
    if (!a) {
        r->oom = 1;
        return 1;
    }
    if (a->measured_ms > 0) return 0; /* measured here: this collector's own figure */
    a->in_ms = row->in_ms;
    a->measured_ms = row->measured_ms;
    return 0;
}

/* The run itself; c->mu held. */
static int run_day_locked(co_compliance *c, int64_t day, int64_t now_ms, char *err, size_t errlen)
{
    run r = {.c = c, .day_start = day * DAY_MS, .day_end = (day + 1) * DAY_MS};
    const char *metrics[NQ * 3];
    size_t nm = 0;
    for (int q = 0; q < NQ; q++) {
        int k = 0;
        for (int j = 0; j < 3 && QRULES[q][j]; j++) {
            const co_rule *rule = co_rules_find(c->rules, QRULES[q][j]);
            if (!rule || (rule->kind != CO_RULE_THRESHOLD && rule->kind != CO_RULE_DEVIATION))
                continue;
            r.rules[q][k++] = rule;
            size_t m = 0;
            while (m < nm && strcmp(metrics[m], rule->metric) != 0)
                m++;
            if (m == nm) metrics[nm++] = rule->metric;
        }
    }
    int rc = -1;
    co_compliance_row *rows = NULL;
    r.index = json_object();
    if (!r.index) {
        cm_seterr(err, errlen, "out of memory");
        goto out;
    }
    if (!(r.screens = screens_map(c->store, err, errlen))) goto out;
    if (co_store_day_series(c->store, day, metrics, nm, on_series, &r, err, errlen) != 0) {
        if (r.oom) cm_seterr(err, errlen, "out of memory");
        goto out;
    }
    char dbuf[16];
    co_compliance_day_format(day, dbuf, sizeof dbuf);
    /* the figures received from a tier below (forwarding in summary mode) are kept */
    if (co_store_compliance_received(c->store, dbuf, on_received, &r, err, errlen) != 0) {
        if (r.oom) cm_seterr(err, errlen, "out of memory");
        goto out;
    }
    rows = calloc(r.n ? r.n : 1, sizeof *rows);
    if (!rows) {
        cm_seterr(err, errlen, "out of memory");
        goto out;
    }
    size_t nr = 0;
    for (size_t i = 0; i < r.n; i++) {
        if (r.v[i].measured_ms <= 0) continue; /* no sample judged */
        rows[nr++] = (co_compliance_row){.site = r.v[i].site,
                                         .screen = r.v[i].screen,
                                         .quantity = QUANTITY[r.v[i].q],
                                         .in_ms = r.v[i].in_ms,
                                         .measured_ms = r.v[i].measured_ms};
    }
    int64_t stored = 1;
    if (nr == 0 && co_store_compliance_rows(c->store, dbuf, NULL, NULL, NULL, NULL, NULL, NULL,
                                            &stored, err, errlen) < 0)
        goto out;
    /* nothing measured and nothing stored before: no write (a GET of an empty day stays a read) */
    rc = nr == 0 && stored == 0
             ? 0
             : co_store_compliance_put(c->store, dbuf, rows, nr, now_ms, err, errlen);
    if (rc == 0 && !(nr == 0 && stored == 0) && c->hook)
        c->hook(c->hook_ud, dbuf, rows, nr, now_ms);
out:
    for (size_t i = 0; i < r.n; i++) {
        free(r.v[i].site);
        free(r.v[i].screen);
    }
    free(r.v);
    free(rows);
    json_decref(r.index);
    json_decref(r.screens);
    return rc;
}

void co_compliance_set_hook(co_compliance *c, co_compliance_hook fn, void *ud)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->hook = fn;
    c->hook_ud = ud;
    pthread_mutex_unlock(&c->mu);
}

int co_compliance_run_day(co_compliance *c, int64_t day, int64_t now_ms, char *err, size_t errlen)
{
    if (!c) {
        cm_seterr(err, errlen, "compliance: no engine");
        return -1;
    }
    pthread_mutex_lock(&c->mu);
    int rc = run_day_locked(c, day, now_ms, err, errlen);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int co_compliance_tick(co_compliance *c, int64_t now_ms, char *err, size_t errlen)
{
    if (!c) return 0;
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    if (c->last_tick_ms == 0 || now_ms - c->last_tick_ms >= c->interval_ms) {
        int64_t today = co_compliance_day_of(now_ms);
        c->last_tick_ms = now_ms;
        if (run_day_locked(c, today - 1, now_ms, err, errlen) < 0 ||
            run_day_locked(c, today, now_ms, err, errlen) < 0)
            rc = -1;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* Recompute day when its stored figures are stale (see co_compliance_report). */
static int refresh(co_store *s, co_compliance *c, int64_t day, int64_t now_ms, char *err,
                   size_t errlen)
{
    int64_t today = co_compliance_day_of(now_ms);
    if (!c || day > today) return 0;
    char dbuf[16];
    co_compliance_day_format(day, dbuf, sizeof dbuf);
    pthread_mutex_lock(&c->mu);
    int64_t updated = 0;
    int rc = co_store_compliance_rows(s, dbuf, NULL, NULL, NULL, NULL, NULL, NULL, &updated, err,
                                      errlen);
    if (rc == 0) {
        int stale =
            day == today ? now_ms - updated >= c->interval_ms : updated < (day + 1) * DAY_MS;
        if (stale) rc = run_day_locked(c, day, now_ms, err, errlen);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* ---------------------------------------------------------------- roll-up */

typedef struct group {
    char key[4 * CM_MAX_NAME + 8];
    char site[CM_MAX_NAME + 1], screen[CM_MAX_NAME + 1], province[CM_MAX_NAME + 1],
        city[CM_MAX_NAME + 1];
    int64_t in_ms[NQ], measured_ms[NQ];
    int screens;
} group;

typedef struct rollup {
    co_compliance_level level;
    json_t *index; /* key -> index into g */
    group *g;
    size_t n, cap;
    char last[2 * CM_MAX_NAME + 4]; /* site \x1f screen of the previous row */
    int oom;
} rollup;

static int on_row(void *ud, const co_compliance_row *row, const char *province, const char *city)
{
    rollup *ru = ud;
    char key[sizeof((group *)0)->key];
    switch (ru->level) {
    case CO_LEVEL_SCREEN:
        snprintf(key, sizeof key, "%s\x1f%s", row->site, row->screen);
        break;
    case CO_LEVEL_SITE:
        snprintf(key, sizeof key, "%s", row->site);
        break;
    case CO_LEVEL_CITY:
        snprintf(key, sizeof key, "%s\x1f%s", province, city);
        break;
    case CO_LEVEL_PROVINCE:
        snprintf(key, sizeof key, "%s", province);
        break;
    case CO_LEVEL_NATION:
        key[0] = '\0';
        break;
    }
    json_t *ix = json_object_get(ru->index, key);
    group *g;
    if (ix) {
        g = &ru->g[json_integer_value(ix)];
    } else {
        if (ru->n == ru->cap) {
            size_t cap = ru->cap ? ru->cap * 2 : 16;
            group *v = realloc(ru->g, cap * sizeof *v);
            if (!v) goto oom;
            ru->g = v;
            ru->cap = cap;
        }
        g = &ru->g[ru->n];
        memset(g, 0, sizeof *g);
        snprintf(g->key, sizeof g->key, "%s", key);
        snprintf(g->site, sizeof g->site, "%s", row->site);
        snprintf(g->screen, sizeof g->screen, "%s", row->screen);
        snprintf(g->province, sizeof g->province, "%s", province);
        snprintf(g->city, sizeof g->city, "%s", city);
        if (json_object_set_new(ru->index, key, json_integer((json_int_t)ru->n)) < 0) goto oom;
        ru->n++;
    }
    char this[sizeof ru->last];
    snprintf(this, sizeof this, "%s\x1f%s", row->site, row->screen);
    if (strcmp(this, ru->last) != 0) { /* rows come ordered by site and screen */
        g->screens++;
        memcpy(ru->last, this, sizeof this);
    }
    for (int q = 0; q < NQ; q++)
        if (!strcmp(row->quantity, QUANTITY[q])) {
            g->in_ms[q] += row->in_ms;
            g->measured_ms[q] += row->measured_ms;
        }
    return 0;
oom:
    ru->oom = 1;
    return -1;
}

static int cmp_group(const void *a, const void *b)
{
    return strcmp(((const group *)a)->key, ((const group *)b)->key);
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *group_json(const group *g, co_compliance_level level, const char *day)
{
    json_t *o = json_object();
    if (!o) return NULL;
    int bad = 0;
    if (level == CO_LEVEL_SCREEN || level == CO_LEVEL_SITE)
        bad |= json_object_set_new(o, "site", json_string(g->site));
    if (level == CO_LEVEL_SCREEN) bad |= json_object_set_new(o, "screen", json_string(g->screen));
    if (level != CO_LEVEL_NATION)
        bad |= json_object_set_new(o, "province", str_or_null(g->province));
    if (level != CO_LEVEL_NATION && level != CO_LEVEL_PROVINCE)
        bad |= json_object_set_new(o, "city", str_or_null(g->city));
    bad |= json_object_set_new(o, "day", json_string(day));
    bad |= json_object_set_new(o, "screens", json_integer(g->screens));
    for (int q = 0; q < NQ; q++) {
        json_t *share = g->measured_ms[q] > 0
                            ? json_real((double)g->in_ms[q] / (double)g->measured_ms[q])
                            : json_null();
        bad |= json_object_set_new(o, QUANTITY[q],
                                   json_pack("{s:o, s:f}", "in_tolerance", share, "measured_hours",
                                             (double)g->measured_ms[q] / 3600000.0));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *co_compliance_report(co_store *s, co_compliance *c, co_compliance_level level, int64_t day,
                             const char *site, const char *province, const char *city,
                             const co_scope *sc, int64_t now_ms, char *err, size_t errlen)
{
    if (!s || (unsigned)level > CO_LEVEL_NATION) {
        cm_seterr(err, errlen, "compliance report: bad arguments");
        return NULL;
    }
    if (refresh(s, c, day, now_ms, err, errlen) < 0) return NULL;
    char dbuf[16];
    co_compliance_day_format(day, dbuf, sizeof dbuf);
    rollup ru = {.level = level, .index = json_object()};
    json_t *out = NULL;
    if (!ru.index) goto oom;
    if (co_store_compliance_rows(s, dbuf, site, province, city, sc, on_row, &ru, NULL, err,
                                 errlen) != 0) {
        if (ru.oom) goto oom;
        goto done;
    }
    if (ru.n) qsort(ru.g, ru.n, sizeof *ru.g, cmp_group);
    if (!(out = json_array())) goto oom;
    for (size_t i = 0; i < ru.n; i++) {
        json_t *o = group_json(&ru.g[i], level, dbuf);
        if (!o || json_array_append_new(out, o) < 0) goto oom;
    }
    goto done;
oom:
    cm_seterr(err, errlen, "out of memory");
    json_decref(out);
    out = NULL;
done:
    json_decref(ru.index);
    free(ru.g);
    return out;
}

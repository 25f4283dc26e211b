/* dashboard.c — the dashboard's JSON API: parameter checks, the shape of the answers, and the
 * tolerance bands of the loaded rules; the store does the aggregation (store_dashboard.c). */
#include "dashboard.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apierror.h"
#include "batch.h"
#include "compliance.h"
#include "log.h"
#include "timeutil.h"

/* ---------------------------------------------------------------- tolerance bands */

static const char *label_of(const json_t *labels, const char *key)
{
    return json_string_value(json_object_get(labels, key));
}

static int labels_match(const co_rule *r, const json_t *labels)
{
    for (size_t i = 0; i < r->nmatch; i++) {
        const co_matcher *m = &r->match[i];
        const char *v = label_of(labels, m->key);
        int in = 0;
        for (size_t k = 0; v && k < m->nvals && !in; k++)
            in = strcmp(v, m->vals[k]) == 0;
        if (in == m->negate) return 0;
    }
    return 1;
}

/* The first choice of threshold rule r for mode and the screen (as the judge chooses). */
static const co_choice *choose(const co_rule *r, co_mode mode, const co_dash_screen *sc)
{
    for (size_t i = 0; i < r->nchoices; i++) {
        const co_choice *c = &r->choices[i];
        if (c->mode && c->mode != mode) continue;
        if (c->cls && c->cls != sc->cls) continue;
        if (c->display && c->display != sc->display) continue;
        return c;
    }
    return NULL;
}

/* The warning band of lim, else the least severe one set; NULL when none. */
static const co_band *pick(const co_limits *lim, co_severity *sev)
{
    static const co_severity order[] = {CO_SEV_WARNING, CO_SEV_INFO, CO_SEV_CRITICAL};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (lim->band[order[i]].set) {
            *sev = order[i];
            return &lim->band[order[i]];
        }
    return NULL;
}

/* out's sides from band b mapped by v -> a + k * v. */
static void set_sides(co_dash_band *out, const co_band *b, double a, double k)
{
    out->has_lo = b->has_lo;
    out->has_hi = b->has_hi;
    out->has_target = b->has_target;
    out->lo = b->has_lo ? a + k * b->lo : 0;
    out->hi = b->has_hi ? a + k * b->hi : 0;
    out->target = b->has_target ? a + k * b->target : 0;
}

int co_dash_band_find(const co_rules *rules, const char *metric, const json_t *labels,
                      const co_dash_screen *sc, co_dash_band *out)
{
    static const co_dash_screen unknown = {0};
    if (!rules || !metric || !out) return 0;
    if (!sc) sc = &unknown;
    co_mode mode = CO_MODE_2D;
    const char *ml = label_of(labels, "mode");
    if (ml && co_mode_parse(ml, &mode) < 0) mode = CO_MODE_2D;
    size_t n = 0;
    int referenced = 0;
    const co_rule *const *rs = co_rules_for_metric(rules, metric, &n, &referenced);
    for (size_t i = 0; i < n; i++) {
        const co_rule *r = rs[i];
        if (!labels_match(r, labels)) continue;
        const co_band *b;
        co_severity sev;
        memset(out, 0, sizeof *out);
        out->rule = r;
        out->standard = r->standard;
        if (r->kind == CO_RULE_THRESHOLD) {
            const co_choice *ch = choose(r, mode, sc);
            if (!ch || !(b = pick(&ch->lim, &sev))) continue;
            if (ch->standard) out->standard = ch->standard;
            double k = 1;
            if (r->percent_of) { /* the band is in % of another metric */
                double base = sc->latest ? sc->latest(sc->ud, r->percent_of, labels) : NAN;
                if (!isfinite(base) || base == 0) continue;
                k = base / 100.0;
            }
            set_sides(out, b, 0, k);
        } else if (r->kind == CO_RULE_DEVIATION) {
            double ref = sc->reference ? sc->reference(sc->ud, metric, labels) : NAN;
            if (!isfinite(ref) || !(b = pick(&r->lim, &sev))) continue;
            set_sides(out, b, ref, r->percent ? fabs(ref) / 100.0 : 1);
            out->has_target = 1;
            out->target = ref;
        } else {
            continue;
        }
        out->severity = sev;
        return 1;
    }
    memset(out, 0, sizeof *out);
    return 0;
}

json_t *co_dash_band_json(const co_dash_band *b)
{
    if (!b) return json_null();
    json_t *o = json_pack("{s:o, s:o, s:o, s:s, s:s, s:o}", "lo",
                          b->has_lo ? json_real(b->lo) : json_null(), "hi",
                          b->has_hi ? json_real(b->hi) : json_null(), "target",
                          b->has_target ? json_real(b->target) : json_null(), "severity",
                          co_severity_name(b->severity), "rule", b->rule ? b->rule->id : "",
                          "standard", b->standard ? json_string(b->standard) : json_null());
    return o ? o : json_null();
}

int co_dash_band_contains(const co_dash_band *b, double v)
{
    return (!b->has_lo || v >= b->lo) && (!b->has_hi || v <= b->hi);
}

/* ---------------------------------------------------------------- parameters */

/* ---------------------------------------------------------------- overview */

unsigned co_dash_overview(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                          json_t **body)
{
    static const char *const names[] = {"level", "province", "city", "day", NULL};
    const char *v[4] = {0};
    unsigned st;
    if ((st = co_query_take(args, nargs, names, v, body)) ||
        (st = co_query_check_name("province", v[1], 0, body)) ||
        (st = co_query_check_name("city", v[2], 0, body)))
        return st;
    co_dash_level level = CO_DASH_PROVINCE;
    if (v[0] && !strcmp(v[0], "city"))
        level = CO_DASH_CITY;
    else if (v[0] && !strcmp(v[0], "cinema"))
        level = CO_DASH_CINEMA;
    else if (v[0] && strcmp(v[0], "province"))
        return co_api_fail(body, 400, "level",
                           "parameter 'level' must be province, city or cinema");
    int64_t now = cm_now_ms(), day = co_compliance_day_of(now);
    if (v[3] && co_compliance_day_parse(v[3], &day) < 0)
        return co_api_fail(body, 400, "day", "parameter 'day' is not a date YYYY-MM-DD");
    char days[16], err[256] = "";
    co_compliance_day_format(day, days, sizeof days);
    return co_api_answer(co_store_dash_overview(co_query_store(q), sc, level, v[1], v[2], days,
                                                now - CO_DASH_REPORTING_MS, err, sizeof err),
                         "overview", err, body);
}

/* ---------------------------------------------------------------- cinema */

/* Metrics a hall tile shows (store_dashboard.c reads their latest values). */
static const char *const tile_metrics[] = {"screen_luminance_nits", "spl_dbc", "light_source_hours",
                                           "power_state", "playback_state"};

static const char *worst_of(json_t *counts)
{
    static const char *const sev[] = {"critical", "warning", "info"};
    for (int i = 0; i < 3; i++)
        if (json_integer_value(json_object_get(counts, sev[i])) > 0) return sev[i];
    return NULL;
}

/* {"value","ts_ms","unit","labels","device"} of a latest row. */
static json_t *tile_value(json_t *row)
{
    json_t *o =
        json_pack("{s:O, s:O, s:O, s:O, s:O}", "value", json_object_get(row, "value"), "ts_ms",
                  json_object_get(row, "ts_ms"), "unit", json_object_get(row, "unit"), "labels",
                  json_object_get(row, "labels"), "device", json_object_get(row, "device"));
    return o ? o : json_null();
}

/* Replace the store's hall (latest rows, alert counts) by the tile the contract shows. */
static int hall_tile(json_t *h, int64_t seen_since)
{
    json_t *latest = json_object_get(h, "latest"), *counts = json_object_get(h, "alerts");
    json_t *lum = NULL, *spl = NULL, *spl_c = NULL, *hours = NULL, *power = NULL, *play = NULL;
    size_t i;
    json_t *row;
    json_array_foreach(latest, i, row) /* by time: the last of each wins */
    {
        const char *m = json_string_value(json_object_get(row, "metric"));
        if (!m) continue;
        if (!strcmp(m, "screen_luminance_nits")) lum = row;
        if (!strcmp(m, "spl_dbc")) {
            spl = row;
            const char *ch = label_of(json_object_get(row, "labels"), "channel");
            if (ch && !strcmp(ch, "C")) spl_c = row; /* the centre channel when there is one */
        }
        if (!strcmp(m, "light_source_hours")) hours = row;
        if (!strcmp(m, "power_state")) power = row;
        if (!strcmp(m, "playback_state")) play = row;
    }
    json_int_t n = 0;
    const char *key;
    json_t *c;
    json_object_foreach(counts, key, c) n += json_integer_value(c);
    const char *worst = worst_of(counts);
    json_t *state = json_object();
    json_int_t seen = json_integer_value(json_object_get(h, "last_seen_ms"));
    int rc = 0;
    if (!state ||
        (power && json_object_set(state, "power_state", json_object_get(power, "value")) < 0) ||
        (play && json_object_set(state, "playback_state", json_object_get(play, "value")) < 0) ||
        json_object_set_new(h, "reporting",
                            json_boolean(json_is_integer(json_object_get(h, "last_seen_ms")) &&
                                         seen >= seen_since)) < 0 ||
        json_object_set_new(h, "worst", worst ? json_string(worst) : json_null()) < 0 ||
        json_object_set_new(h, "alerts", json_integer(n)) < 0 ||
        json_object_set_new(h, "luminance", lum ? tile_value(lum) : json_null()) < 0 ||
        json_object_set_new(h, "spl",
                            spl_c ? tile_value(spl_c)
                            : spl ? tile_value(spl)
                                  : json_null()) < 0 ||
        json_object_set_new(h, "light_hours", hours ? tile_value(hours) : json_null()) < 0)
        rc = -1;
    if (state && json_object_set_new(h, "state", state) < 0) rc = -1;
    json_object_del(h, "latest");
    return rc;
}

unsigned co_dash_cinema(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                        json_t **body)
{
    static const char *const names[] = {"site", NULL};
    const char *v[1] = {0};
    unsigned st;
    if ((st = co_query_take(args, nargs, names, v, body)) ||
        (st = co_query_check_name("site", v[0], 1, body)))
        return st;
    co_store *s = co_query_store(q);
    char err[256] = "";
    int64_t now = cm_now_ms();
    json_t *d = co_store_dash_cinema(s, sc, v[0], tile_metrics,
                                     sizeof tile_metrics / sizeof tile_metrics[0], err, sizeof err);
    if (!d && !err[0]) return co_api_fail(body, 404, "site", "no cinema '%s'", v[0]);
    if (!d) return co_api_answer(NULL, "cinema", err, body);
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(d, "halls"), i, h)
    {
        if (hall_tile(h, now - CO_DASH_REPORTING_MS) < 0) {
            json_decref(d);
            return co_api_answer(NULL, "cinema", "out of memory", body);
        }
    }
    co_alert_filter f = {.site = v[0], .state = "firing", .limit = 1000};
    json_t *alerts = co_store_alerts(s, &f, sc, err, sizeof err);
    if (!alerts || json_object_set_new(d, "alerts", alerts) < 0) {
        json_decref(d);
        return co_api_answer(NULL, "cinema alerts", err, body);
    }
    return co_api_answer(d, "cinema", err, body);
}

/* ---------------------------------------------------------------- hall */

/* The look-ups of a band on one hall: the screen's SPL references and one device's latest
 * values. */
typedef struct hall_ctx {
    json_t *spl_ref; /* {"L": 85, ...} */
    json_t *metrics; /* the device's [{"metric","labels","value",...}] */
} hall_ctx;

static double hall_reference(void *ud, const char *metric, const json_t *labels)
{
    const hall_ctx *h = ud;
    const char *ch = label_of(labels, "channel");
    json_t *v = ch && !strcmp(metric, "spl_dbc") ? json_object_get(h->spl_ref, ch) : NULL;
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static double hall_latest(void *ud, const char *metric, const json_t *labels)
{
    const hall_ctx *h = ud;
    size_t i;
    json_t *m;
    json_array_foreach(h->metrics, i, m)
    {
        json_t *l = json_object_get(m, "labels");
        if (!strcmp(json_string_value(json_object_get(m, "metric")), metric) &&
            (labels ? json_equal(l, (json_t *)labels) : json_object_size(l) == 0))
            return json_number_value(json_object_get(m, "value"));
    }
    return NAN;
}

/* Metrics charted on the hall page, in this order; then every other *_celsius. */
static const char *const chart_metrics[] = {"screen_luminance_nits", "white_x", "white_y",
                                            "spl_dbc", "light_source_hours"};
#define NCHART (sizeof chart_metrics / sizeof chart_metrics[0])

/* The chart rank of a metric: 0..NCHART-1, NCHART for temperatures, -1 not charted. */
static int chart_rank(const char *m)
{
    for (size_t i = 0; i < NCHART; i++)
        if (!strcmp(m, chart_metrics[i])) return (int)i;
    size_t n = strlen(m);
    return n > 8 && !strcmp(m + n - 8, "_celsius") ? (int)NCHART : -1;
}

/* Add band and in_band to each metric of a device, and its charts to charts[rank]. */
static int device_bands(const co_rules *rules, co_dash_screen *scr, json_t *dev, json_t **charts)
{
    json_t *metrics = json_object_get(dev, "metrics");
    ((hall_ctx *)scr->ud)->metrics = metrics;
    size_t i;
    json_t *m;
    json_array_foreach(metrics, i, m)
    {
        const char *name = json_string_value(json_object_get(m, "metric"));
        json_t *labels = json_object_get(m, "labels");
        co_dash_band b;
        int found = name && co_dash_band_find(rules, name, labels, scr, &b);
        double v = json_number_value(json_object_get(m, "value"));
        json_t *band = co_dash_band_json(found ? &b : NULL);
        if (json_object_set(m, "band", band) < 0 ||
            json_object_set_new(m, "in_band",
                                found ? json_boolean(co_dash_band_contains(&b, v)) : json_null()) <
                0) {
            json_decref(band);
            return -1;
        }
        int rank = name ? chart_rank(name) : -1;
        if (rank < 0) {
            json_decref(band);
            continue;
        }
        /* one chart per (device, metric): the rows of a device come sorted by metric */
        json_t *list = charts[rank], *last = json_array_get(list, json_array_size(list) - 1);
        const char *dev_id = json_string_value(json_object_get(dev, "device"));
        if (!last || strcmp(json_string_value(json_object_get(last, "device")), dev_id) ||
            strcmp(json_string_value(json_object_get(last, "metric")), name)) {
            char key[CM_MAX_NAME + 8];
            snprintf(key, sizeof key, "chart.%s", name);
            last = json_pack("{s:s, s:s, s:s, s:O, s:O, s:[]}", "device", dev_id, "metric", name,
                             "title_key", key, "unit", json_object_get(m, "unit"), "band", band,
                             "series");
            if (!last || json_array_append_new(list, last) < 0) {
                json_decref(band);
                return -1;
            }
        }
        /* the chart's band: its first series' band, the 2D one when the series have modes */
        const char *mode = label_of(labels, "mode");
        if (mode && !strcmp(mode, "2d") && json_array_size(json_object_get(last, "series")) &&
            json_object_set(last, "band", band) < 0) {
            json_decref(band);
            return -1;
        }
        if (json_array_append_new(json_object_get(last, "series"),
                                  json_pack("{s:O, s:o}", "labels", labels, "band", band)) < 0)
            return -1;
    }
    return 0;
}

/* The hall's alerts: active ones and those resolved within the history window. */
static json_t *hall_alerts(co_store *s, const co_scope *sc, const char *site, const char *screen,
                           int64_t now, char *err, size_t errlen)
{
    co_alert_filter f = {.site = site, .screen = screen, .limit = 1000};
    json_t *all = co_store_alerts(s, &f, sc, err, errlen);
    if (!all) return NULL;
    for (size_t i = json_array_size(all); i-- > 0;) {
        json_t *a = json_array_get(all, i);
        json_t *res = json_object_get(a, "resolved_ms");
        if (!strcmp(json_string_value(json_object_get(a, "state")), "resolved") &&
            (!json_is_integer(res) || json_integer_value(res) < now - CO_DASH_HALL_HISTORY_MS))
            json_array_remove(all, i);
    }
    return all;
}

unsigned co_dash_hall(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                      json_t **body)
{
    static const char *const names[] = {"site", "screen", NULL};
    const char *v[2] = {0};
    unsigned st;
    if ((st = co_query_take(args, nargs, names, v, body)) ||
        (st = co_query_check_name("site", v[0], 1, body)) ||
        (st = co_query_check_name("screen", v[1], 1, body)))
        return st;
    co_store *s = co_query_store(q);
    char err[256] = "";
    int64_t now = cm_now_ms();
    json_t *d = co_store_dash_hall(s, sc, v[0], v[1], err, sizeof err);
    if (!d && !err[0])
        return co_api_fail(body, 404, "screen", "no hall '%s' in cinema '%s'", v[1], v[0]);
    if (!d) return co_api_answer(NULL, "hall", err, body);

    json_t *scr = json_object_get(d, "screen");
    hall_ctx hc = {.spl_ref = json_object_get(scr, "spl_ref")};
    co_dash_screen ds = {.reference = hall_reference, .latest = hall_latest, .ud = &hc};
    co_screen_class_parse(json_string_value(json_object_get(scr, "class")), &ds.cls);
    co_display_parse(json_string_value(json_object_get(scr, "display")), &ds.display);
    json_t *charts[NCHART + 1] = {0};
    int rc = 0;
    for (size_t k = 0; k <= NCHART; k++)
        if (!(charts[k] = json_array())) rc = -1;
    size_t i;
    json_t *dev;
    json_array_foreach(json_object_get(d, "devices"), i, dev)
    {
        if (rc == 0) rc = device_bands(co_query_ruleset(q), &ds, dev, charts);
    }
    json_t *all_charts = json_array();
    for (size_t k = 0; k <= NCHART; k++) {
        if (rc == 0 && (!all_charts || json_array_extend(all_charts, charts[k]) < 0)) rc = -1;
        json_decref(charts[k]);
    }
    if (rc < 0 || json_object_set_new(d, "charts", all_charts) < 0) {
        if (rc < 0) json_decref(all_charts);
        json_decref(d);
        return co_api_answer(NULL, "hall", "out of memory", body);
    }
    json_t *alerts = hall_alerts(s, sc, v[0], v[1], now, err, sizeof err);
    if (!alerts || json_object_set_new(d, "alerts", alerts) < 0) {
        json_decref(d);
        return co_api_answer(NULL, "hall alerts", err, body);
    }
    return co_api_answer(d, "hall", err, body);
}

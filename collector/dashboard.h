/* dashboard.h — the dashboard's JSON API: the national / regional overview, one cinema's
 * halls, one hall's devices against their tolerance bands; and the band lookup that draws a
 * standard's tolerance on a value or a chart.
 *
 * Handlers have the co_query_fn signature (query.h) and answer only about the sites within
 * the caller's scope: a site outside it is 404 like an unknown one. An alert counts as active
 * on the dashboard while it is firing (a pending one has not alerted anybody yet). */
#ifndef CO_DASHBOARD_H
#define CO_DASHBOARD_H

#include <jansson.h>
#include <stddef.h>

#include "query.h"
#include "rules.h"

/* A screen is "reporting" while one of its devices was seen within this long. */
#define CO_DASH_REPORTING_MS (10 * 60 * 1000LL)
/* Resolved alerts of a hall shown for this long. */
#define CO_DASH_HALL_HISTORY_MS (90 * 86400000LL)

/* GET /api/v1/overview?level=province|city|cinema&province=&city=&day=YYYY-MM-DD */
unsigned co_dash_overview(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                          json_t **body);
/* GET /api/v1/cinema?site=: the site, its halls with their latest values, its firing alerts. */
unsigned co_dash_cinema(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                        json_t **body);
/* GET /api/v1/hall?site=&screen=: settings, devices with latest values and bands, alerts of
 * the last 90 days, the charts to draw. */
unsigned co_dash_hall(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                      json_t **body);

/* A tolerance band in the metric's own unit; a missing side is open. */
typedef struct co_dash_band {
    const co_rule *rule;  /* the rule it comes from */
    const char *standard; /* the choice's standard, else the rule's (may be NULL) */
    co_severity severity; /* the level of the band */
    int has_lo, has_hi, has_target;
    double lo, hi, target;
} co_dash_band;

/* What the band of a value depends on besides the rules: the screen's class and display
 * (CO_*_ANY = unknown) and two look-ups (either may be NULL = nothing known). */
typedef struct co_dash_screen {
    co_screen_class cls;
    co_display display;
    /* The screen's commissioning reference of a deviation rule's value (spl_dbc by channel);
     * NaN when none. */
    double (*reference)(void *ud, const char *metric, const json_t *labels);
    /* The latest value of another metric of the same device and labels (percent_of); NaN
     * when none. */
    double (*latest)(void *ud, const char *metric, const json_t *labels);
    void *ud;
} co_dash_screen;

/* The band of a value of metric with labels (JSON object; NULL = none) on screen sc: of the
 * first threshold or deviation rule for the metric whose label matchers match and whose
 * target choice matches the mode (the "mode" label, else 2D) and sc's class and display, the
 * warning band (else the least severe one defined); percent_of and deviation bands are turned
 * into the metric's unit with the look-ups. Overrides play no part. 1 found (*out set), 0 none.
 * Pure: reads nothing else. */
int co_dash_band_find(const co_rules *rules, const char *metric, const json_t *labels,
                      const co_dash_screen *sc, co_dash_band *out);
/* {"lo","hi","target" (null when open),"severity","rule","standard"}, or JSON null for NULL b. */
json_t *co_dash_band_json(const co_dash_band *b);
/* 1 when v is within b (inclusive), 0 outside. */
int co_dash_band_contains(const co_dash_band *b, double v);

#endif

/* query.h — the read-only JSON API: sites, devices, latest values, series, agents, gaps,
 * health.
 * HTTP-agnostic: a handler gets the request's query parameters and returns the status and the
 * JSON body. Successful answers are {"data": [...]}; errors {"error": ..., "at": <parameter>}. */
#ifndef CO_QUERY_H
#define CO_QUERY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "compliance.h"
#include "rules.h"
#include "scope.h"
#include "store.h"

#define CO_QUERY_MAX_ARGS 16
#define CO_SERIES_DEFAULT_LIMIT 10000
#define CO_SERIES_MAX_LIMIT 100000
#define CO_EVENTS_DEFAULT_LIMIT 1000

typedef struct co_query_arg {
    const char *key, *value; /* value "" when the parameter had none */
} co_query_arg;

typedef struct co_query co_query;

/* A handler: fills *body (caller decrefs) and returns the HTTP status. sc is the caller's
 * scope (never NULL): a handler answers only about the sites within it; a single object
 * outside it (an alert, a device) answers exactly as an unknown one (404 / empty), so its
 * existence is not revealed. */
typedef unsigned (*co_query_fn)(co_query *q, const co_scope *sc, const co_query_arg *args,
                                size_t nargs, json_t **body);

/* New query API on store s (not owned). NULL on OOM. */
co_query *co_query_new(co_store *s);
void co_query_free(co_query *q);

/* The store and the rule set (NULL = none) the query API reads, for handlers of other
 * modules (dashboard.c). */
co_store *co_query_store(const co_query *q);
const co_rules *co_query_ruleset(const co_query *q);

/* GET /api/v1/sites */
unsigned co_query_sites(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                        json_t **body);
/* GET /api/v1/devices?site= */
unsigned co_query_devices(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                          json_t **body);
/* GET /api/v1/latest?device=&metric=&site=  (device required) */
unsigned co_query_latest(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                         json_t **body);
/* GET /api/v1/series?device=&metric=&from=&to=&site=&limit=&step=raw|1m|1h  (device, metric
 * required; with 1m or 1h the roll-ups: [bucket_ms, avg, min, max, count]) */
unsigned co_query_series(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                         json_t **body);
/* GET /api/v1/agents: every agent with its last_seq and audit totals. */
unsigned co_query_agents(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                         json_t **body);
/* GET /api/v1/gaps?agent=  (agent required): the agent's lost records, by from_seq. */
unsigned co_query_gaps(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                       json_t **body);
/* GET /api/v1/events?site=&device=&severity=&from=&to=&limit=: events newest first; the
 * range defaults to the last 24 hours, severity is the minimum (info|warning|critical). */
unsigned co_query_events(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                         json_t **body);
/* GET /api/v1/screens?site=&screen=: screens with their settings and device counts. */
unsigned co_query_screens(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                          json_t **body);
/* GET /api/v1/alerts?site=&screen=&device=&rule=&severity=&state=&limit=: newest change
 * first; state pending|firing|resolved|active, severity the minimum. */
unsigned co_query_alerts(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                         json_t **body);
/* GET /api/v1/alerts/{id} (the id arrives as parameter "_path"): one alert and its history. */
unsigned co_query_alert(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                        json_t **body);
/* GET /api/v1/silences?site=&all=1: silences in force (all=1: every one kept). */
unsigned co_query_silences(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                           json_t **body);
/* GET /api/v1/notifications?site=&alert=&limit=: the notification log with deliveries. */
unsigned co_query_notifications(co_query *q, const co_scope *sc, const co_query_arg *args,
                                size_t nargs, json_t **body);
/* GET /api/v1/rules: the rules in force as written, with their files (not site data: the
 * same for every scope). */
unsigned co_query_rules(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                        json_t **body);
/* The rule set /api/v1/rules shows (not owned; NULL = none loaded). */
void co_query_set_rules(co_query *q, const co_rules *rules);
/* GET /api/v1/compliance?level=screen|site|city|province|nation&day=YYYY-MM-DD&site=
 * &province=&city=: time-weighted share within tolerance of luminance, white and spl per group
 * (compliance.h); level defaults to nation, day to today (UTC). */
unsigned co_query_compliance(co_query *q, const co_scope *sc, const co_query_arg *args,
                             size_t nargs, json_t **body);
/* The compliance engine used to refresh stale figures on request (not owned; NULL = read the
 * stored figures only). */
void co_query_set_compliance(co_query *q, co_compliance *c);
/* GET /healthz: {"status": "ok"} after a trivial store read (co_store_ping), else 503. */
unsigned co_query_health(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                         json_t **body);

/* Parse a time parameter: ms since the epoch ("1764064800000") or ISO-8601 UTC/offset
 * ("2026-11-25T10:00:00Z", "2026-11-25T10:00:00.250+08:00"). 0 or -1. */
int co_query_parse_time(const char *s, int64_t *out_ms);

/* For handlers (also dashboard.c): the accepted parameters (names NULL-terminated) into
 * values[] (one per name, NULL when absent); an unknown or repeated one is 400 naming it.
 * 0, or the status with *body set. */
unsigned co_query_take(const co_query_arg *args, size_t nargs, const char *const *names,
                       const char **values, json_t **body);
/* A site code, device id, metric, screen, province or city v of parameter `name`: present
 * when required, not empty, at most CM_MAX_NAME bytes, no control characters. 0 or 400. */
unsigned co_query_check_name(const char *name, const char *v, int required, json_t **body);

#endif

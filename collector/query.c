/* query.c — parameter validation for the read API; the store does the reading. */
#include "query.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apierror.h"
#include "batch.h"
#include "log.h"
#include "timeutil.h"
#include "wire.h"

#define HOUR_MS 3600000LL

struct co_query {
    co_store *store;
    const co_rules *rules;
    co_compliance *compliance;
};

void co_query_set_compliance(co_query *q, co_compliance *c)
{
    q->compliance = c;
}

void co_query_set_rules(co_query *q, const co_rules *rules)
{
    q->rules = rules;
}

co_store *co_query_store(const co_query *q)
{
    return q->store;
}

const co_rules *co_query_ruleset(const co_query *q)
{
    return q->rules;
}

co_query *co_query_new(co_store *s)
{
    co_query *q = calloc(1, sizeof *q);
    if (q) q->store = s;
    return q;
}

void co_query_free(co_query *q)
{
    free(q);
}

/* The accepted parameters of a handler, looked up by name; unknown or repeated ones are
 * rejected. Returns 0, or the 400 status with *body set. */
typedef struct params {
    const char *const *names;
    const char *values[8];
} params;

unsigned co_query_take(const co_query_arg *args, size_t nargs, const char *const *names,
                       const char **values, json_t **body)
{
    for (size_t i = 0; i < nargs; i++) {
        size_t k = 0;
        while (names[k] && strcmp(names[k], args[i].key) != 0)
            k++;
        if (!names[k]) {
            char known[200] = "";
            for (size_t j = 0; names[j]; j++) {
                size_t l = strlen(known);
                snprintf(known + l, sizeof known - l, "%s%s", j ? ", " : "", names[j]);
            }
            return co_api_fail(body, 400, args[i].key, "unknown parameter '%.64s' (known: %s)",
                               args[i].key, known[0] ? known : "none");
        }
        if (values[k])
            return co_api_fail(body, 400, args[i].key, "parameter '%s' given twice", names[k]);
        values[k] = args[i].value ? args[i].value : "";
    }
    return 0;
}

static unsigned take(const co_query_arg *args, size_t nargs, params *p, json_t **body)
{
    return co_query_take(args, nargs, p->names, p->values, body);
}

unsigned co_query_check_name(const char *name, const char *v, int required, json_t **body)
{
    if (!v) {
        if (required) return co_api_fail(body, 400, name, "missing parameter '%s'", name);
        return 0;
    }
    if (v[0] == '\0') return co_api_fail(body, 400, name, "parameter '%s' is empty", name);
    if (strlen(v) > CM_MAX_NAME)
        return co_api_fail(body, 400, name, "parameter '%s' is longer than %d bytes", name,
                           CM_MAX_NAME);
    for (const unsigned char *c = (const unsigned char *)v; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return co_api_fail(body, 400, name, "parameter '%s' contains a control character",
                               name);
    return 0;
}

unsigned co_query_sites(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                        json_t **body)
{
    static const char *const names[] = {NULL};
    params p = {.names = names};
    unsigned st;
    if ((st = take(args, nargs, &p, body))) return st;
    char err[256] = "";
    return co_api_answer(co_store_sites(q->store, sc, err, sizeof err), "sites", err, body);
}

unsigned co_query_devices(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                          json_t **body)
{
    static const char *const names[] = {"site", NULL};
    params p = {.names = names};
    unsigned st;
    if ((st = take(args, nargs, &p, body)) ||
        (st = co_query_check_name("site", p.values[0], 0, body)))
        return st;
    char err[256] = "";
    return co_api_answer(co_store_devices(q->store, p.values[0], sc, err, sizeof err), "devices",
                         err, body);
}

unsigned co_query_latest(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                         json_t **body)
{
    static const char *const names[] = {"device", "metric", "site", NULL};
    params p = {.names = names};
    unsigned st;
    if ((st = take(args, nargs, &p, body)) ||
        (st = co_query_check_name("device", p.values[0], 1, body)) ||
        (st = co_query_check_name("metric", p.values[1], 0, body)) ||
        (st = co_query_check_name("site", p.values[2], 0, body)))
        return st;
    if (p.values[1] && !cm_wire_valid_name(p.values[1]))
        return co_api_fail(body, 400, "metric",
                           "parameter 'metric' is not a metric name ([a-z_][a-z0-9_]*)");
    char err[256] = "";
    return co_api_answer(
        co_store_latest(q->store, p.values[2], p.values[0], p.values[1], sc, err, sizeof err),
        "latest", err, body);
}

unsigned co_query_agents(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                         json_t **body)
{
    static const char *const names[] = {NULL};
    params p = {.names = names};
    unsigned st;
    if ((st = take(args, nargs, &p, body))) return st;
    char err[256] = "";
    return co_api_answer(co_store_agents(q->store, sc, err, sizeof err), "agents", err, body);
}

unsigned co_query_gaps(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                       json_t **body)
{
    static const char *const names[] = {"agent", NULL};
    params p = {.names = names};
    unsigned st;
    if ((st = take(args, nargs, &p, body)) ||
        (st = co_query_check_name("agent", p.values[0], 1, body)))
        return st;
    char err[256] = "";
    return co_api_answer(co_store_gaps(q->store, p.values[0], sc, err, sizeof err), "gaps", err,
                         body);
}

static unsigned time_param(const char *name, const char *v, int64_t *out, json_t **body)
{
    if (co_query_parse_time(v, out) != 0)
        return co_api_fail(body, 400, name,
                           "parameter '%s' is not a time (ms since the epoch or ISO-8601 such as "
                           "2026-11-25T10:00:00Z)",
                           name);
    return 0;
}

/* from/to/limit parameters into r (to defaults to now, from to `span` before to); r->limit
 * holds the default limit on entry. 0 or the 400 status with *body set. */
static unsigned range_params(const char *from, const char *to, const char *limit, int64_t span,
                             co_range *r, json_t **body)
{
    unsigned st;
    r->to_ms = cm_now_ms();
    if (to && (st = time_param("to", to, &r->to_ms, body))) return st;
    r->from_ms = r->to_ms - span;
    if (from && (st = time_param("from", from, &r->from_ms, body))) return st;
    if (r->from_ms > r->to_ms)
        return co_api_fail(body, 400, "from", "parameter 'from' is after 'to'");
    if (limit) {
        char *end;
        long long n = (limit[0] >= '0' && limit[0] <= '9') ? strtoll(limit, &end, 10) : -1;
        if (n < 1 || n > CO_SERIES_MAX_LIMIT || *end != '\0')
            return co_api_fail(body, 400, "limit", "parameter 'limit' must be a number 1..%d",
                               CO_SERIES_MAX_LIMIT);
        r->limit = (size_t)n;
    }
    return 0;
}

unsigned co_query_screens(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                          json_t **body)
{
    static const char *const names[] = {"site", "screen", NULL};
    params p = {.names = names};
    unsigned st;
    if ((st = take(args, nargs, &p, body)) ||
        (st = co_query_check_name("site", p.values[0], 0, body)) ||
        (st = co_query_check_name("screen", p.values[1], 0, body)))
        return st;
    char err[256] = "";
    return co_api_answer(co_store_screens(q->store, p.values[0], p.values[1], sc, err, sizeof err),
                         "screens", err, body);
}

/* A limit parameter 1..max into *out (absent: unchanged). 0 or 400 with *body. */
static unsigned limit_param(const char *v, size_t max, size_t *out, json_t **body)
{
    if (!v) return 0;
    char *end;
    long long n = (v[0] >= '0' && v[0] <= '9') ? strtoll(v, &end, 10) : -1;
    if (n < 1 || (size_t)n > max || *end != '\0')
        return co_api_fail(body, 400, "limit", "parameter 'limit' must be a number 1..%zu", max);
    *out = (size_t)n;
    return 0;
}

static unsigned severity_param(const char *v, json_t **body)
{
    if (v && strcmp(v, "info") && strcmp(v, "warning") && strcmp(v, "critical"))
        return co_api_fail(body, 400, "severity",
                           "parameter 'severity' must be info, warning or critical");
    return 0;
}

unsigned co_query_alerts(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                         json_t **body)
{
    static const char *const names[] = {"site",     "screen", "device", "rule",
                                        "severity", "state",  "limit",  NULL};
    params p = {.names = names};
    unsigned st;
    if ((st = take(args, nargs, &p, body))) return st;
    for (int i = 0; i < 4; i++)
        if ((st = co_query_check_name(names[i], p.values[i], 0, body))) return st;
    if ((st = severity_param(p.values[4], body))) return st;
    const char *state = p.values[5];
    if (state && strcmp(state, "pending") && strcmp(state, "firing") && strcmp(state, "resolved") &&
        strcmp(state, "active"))
        return co_api_fail(body, 400, "state",
                           "parameter 'state' must be pending, firing, resolved or active");
    co_alert_filter f = {.site = p.values[0],
                         .screen = p.values[1],
                         .device = p.values[2],
                         .rule = p.values[3],
                         .min_severity = p.values[4],
                         .state = state,
                         .limit = 1000};
    if ((st = limit_param(p.values[6], 10000, &f.limit, body))) return st;
    char err[256] = "";
    return co_api_answer(co_store_alerts(q->store, &f, sc, err, sizeof err), "alerts", err, body);
}

unsigned co_query_alert(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                        json_t **body)
{
    static const char *const names[] = {"_path", NULL};
    params p = {.names = names};
    unsigned st;
    if ((st = take(args, nargs, &p, body))) return st;
    const char *v = p.values[0] ? p.values[0] : "";
    char *end;
    long long id = (v[0] >= '1' && v[0] <= '9') ? strtoll(v, &end, 10) : 0;
    if (id <= 0 || *end != '\0' || strlen(v) > 18)
        return co_api_fail(body, 404, "", "expected /api/v1/alerts/{id} with a numeric id");
    char err[256] = "";
    json_t *a = co_store_alert(q->store, id, sc, err, sizeof err);
    if (!a && !err[0]) return co_api_fail(body, 404, "", "no alert %lld", id);
    if (!a) return co_api_answer(NULL, "alert", err, body);
    *body = a; /* one object, not wrapped in a list */
    return 200;
}

unsigned co_query_silences(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                           json_t **body)
{
    static const char *const names[] = {"site", "all", NULL};
    params p = {.names = names};
    unsigned st;
    if ((st = take(args, nargs, &p, body)) ||
        (st = co_query_check_name("site", p.values[0], 0, body)))
        return st;
    const char *all = p.values[1];
    if (all && strcmp(all, "0") && strcmp(all, "1"))
        return co_api_fail(body, 400, "all", "parameter 'all' must be 0 or 1");
    char err[256] = "";
    return co_api_answer(co_store_silences(q->store, p.values[0],
                                           all && !strcmp(all, "1") ? 0 : cm_now_ms(), sc, err,
                                           sizeof err),
                         "silences", err, body);
}

unsigned co_query_notifications(co_query *q, const co_scope *sc, const co_query_arg *args,
                                size_t nargs, json_t **body)
{
    static const char *const names[] = {"site", "alert", "limit", NULL};
    params p = {.names = names};
    unsigned st;
    if ((st = take(args, nargs, &p, body)) ||
        (st = co_query_check_name("site", p.values[0], 0, body)))
        return st;
    long long alert = 0;
    if (p.values[1]) {
        char *end;
        const char *v = p.values[1];
        alert = (v[0] >= '1' && v[0] <= '9') ? strtoll(v, &end, 10) : 0;
        if (alert <= 0 || *end != '\0')
            return co_api_fail(body, 400, "alert", "parameter 'alert' must be an alert id");
    }
    size_t limit = 100;
    if ((st = limit_param(p.values[2], 10000, &limit, body))) return st;
    char err[256] = "";
    return co_api_answer(
        co_store_notifications(q->store, p.values[0], alert, limit, sc, err, sizeof err),
        "notifications", err, body);
}

unsigned co_query_rules(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                        json_t **body)
{
    (void)sc; /* the rules are configuration, not site data: any authenticated caller */
    static const char *const names[] = {NULL};
    params p = {.names = names};
    unsigned st;
    if ((st = take(args, nargs, &p, body))) return st;
    json_t *list = json_array();
    size_t n = q->rules ? co_rules_count(q->rules) : 0;
    for (size_t i = 0; list && i < n; i++) {
        const co_rule *r = co_rules_at(q->rules, i);
        json_t *o = r->json ? json_deep_copy(r->json) : json_object();
        if (!o || json_object_set_new(o, "file", json_string(r->file ? r->file : "")) < 0 ||
            json_array_append_new(list, o) < 0) {
            json_decref(o);
            json_decref(list);
            list = NULL;
        }
    }
    return co_api_answer(list, "rules", "out of memory", body);
}

unsigned co_query_events(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                         json_t **body)
{
    static const char *const names[] = {"site", "device", "severity", "from", "to", "limit", NULL};
    params p = {.names = names};
    unsigned st;
    if ((st = take(args, nargs, &p, body)) ||
        (st = co_query_check_name("site", p.values[0], 0, body)) ||
        (st = co_query_check_name("device", p.values[1], 0, body)))
        return st;
    const char *sev = p.values[2];
    if (sev && strcmp(sev, "info") && strcmp(sev, "warning") && strcmp(sev, "critical"))
        return co_api_fail(body, 400, "severity",
                           "parameter 'severity' must be info, warning or critical");
    co_range r = {.limit = CO_EVENTS_DEFAULT_LIMIT};
    if ((st = range_params(p.values[3], p.values[4], p.values[5], 24 * HOUR_MS, &r, body)))
        return st;
    char err[256] = "";
    return co_api_answer(
        co_store_events(q->store, p.values[0], p.values[1], sev, &r, sc, err, sizeof err), "events",
        err, body);
}

unsigned co_query_series(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                         json_t **body)
{
    static const char *const names[] = {"device", "metric", "from", "to",
                                        "site",   "limit",  "step", NULL};
    params p = {.names = names};
    unsigned st;
    if ((st = take(args, nargs, &p, body)) ||
        (st = co_query_check_name("device", p.values[0], 1, body)) ||
        (st = co_query_check_name("metric", p.values[1], 1, body)) ||
        (st = co_query_check_name("site", p.values[4], 0, body)))
        return st;
    if (!cm_wire_valid_name(p.values[1]))
        return co_api_fail(body, 400, "metric",
                           "parameter 'metric' is not a metric name ([a-z_][a-z0-9_]*)");
    co_range r = {.limit = CO_SERIES_DEFAULT_LIMIT};
    const char *step = p.values[6];
    if (step && strcmp(step, "raw") && strcmp(step, "1m") && strcmp(step, "1h"))
        return co_api_fail(body, 400, "step", "parameter 'step' must be raw, 1m or 1h");
    if (step && !strcmp(step, "1m")) r.step_ms = 60000;
    if (step && !strcmp(step, "1h")) r.step_ms = HOUR_MS;
    if ((st = range_params(p.values[2], p.values[3], p.values[5], HOUR_MS, &r, body))) return st;
    char err[256] = "";
    return co_api_answer(
        co_store_series(q->store, p.values[4], p.values[0], p.values[1], &r, sc, err, sizeof err),
        "series", err, body);
}

unsigned co_query_compliance(co_query *q, const co_scope *sc, const co_query_arg *args,
                             size_t nargs, json_t **body)
{
    static const char *const names[] = {"level", "day", "site", "province", "city", NULL};
    params p = {.names = names};
    unsigned st;
    if ((st = take(args, nargs, &p, body))) return st;
    for (int i = 2; i < 5; i++)
        if ((st = co_query_check_name(names[i], p.values[i], 0, body))) return st;
    co_compliance_level level = CO_LEVEL_NATION;
    if (p.values[0] && co_compliance_level_parse(p.values[0], &level) < 0)
        return co_api_fail(body, 400, "level",
                           "parameter 'level' must be screen, site, city, province or nation");
    int64_t now = cm_now_ms();
    int64_t day = co_compliance_day_of(now);
    if (p.values[1] && co_compliance_day_parse(p.values[1], &day) < 0)
        return co_api_fail(body, 400, "day", "parameter 'day' is not a date YYYY-MM-DD");
    char err[256] = "";
    return co_api_answer(co_compliance_report(q->store, q->compliance, level, day, p.values[2],
                                              p.values[3], p.values[4], sc, now, err, sizeof err),
                         "compliance", err, body);
}

unsigned co_query_health(co_query *q, const co_scope *sc, const co_query_arg *args, size_t nargs,
                         json_t **body)
{
    (void)sc;
    (void)args;
    (void)nargs;
    char err[256] = "";
    if (co_store_ping(q->store, err, sizeof err) < 0) {
        cm_log_limited("healthz", 10, CM_LOG_ERROR, "healthz: store: %s", err);
        return co_api_fail(body, 503, "", "store unavailable");
    }
    *body = json_pack("{s:s}", "status", "ok");
    return 200;
}

/* n decimal digits at *p into *out; advances p. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int co_query_parse_time(const char *s, int64_t *out_ms)
{
    if (!s || !*s) return -1;
    if (strspn(s, "0123456789") == strlen(s)) {
        if (strlen(s) > 15) /* beyond year 33658 */
            return -1;
        *out_ms = strtoll(s, NULL, 10);
        return 0;
    }
    const char *p = s;
    int Y, M, D, h, m, sec, ms = 0;
    if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' || digits(&p, 2, &D))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ') return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m) || *p++ != ':' || digits(&p, 2, &sec))
        return -1;
    if (*p == '.') {
        p++;
        int n = (int)strspn(p, "0123456789");
        if (n < 1 || n > 9) return -1;
        for (int i = 0; i < 3; i++)
            ms = ms * 10 + (i < n ? p[i] - '0' : 0);
        p += n;
    }
    int off_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
            return -1;
        off_min = sign * (oh * 60 + om);
    } else {
        return -1; /* a time without a zone is ambiguous */
    }
    if (*p != '\0' || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 59) return -1;
    struct tm tm = {.tm_year = Y - 1900,
                    .tm_mon = M - 1,
                    .tm_mday = D,
                    .tm_hour = h,
                    .tm_min = m,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (tm.tm_mday != D) /* 2026-02-30 normalised to March */
        return -1;
    *out_ms = ((int64_t)t - (int64_t)off_min * 60) * 1000 + ms;
    return 0;
}

/* store_pg_dashboard.c — the PostgreSQL backend of store.h's dashboard part (as
 * store_dashboard.c): the overview grouped by province, city or cinema, one cinema's halls
 * and one hall's devices with their latest values. Everything is aggregated in SQL (one
 * statement per answer part, no per-site or per-screen round trips), filtered by the caller's
 * scope and ordered as SQLite orders: text by bytes (COLLATE "C"), NULL first. A cinema or a
 * hall is read on one snapshot (a read-only repeatable-read transaction), as SQLite's read
 * transaction does, with the samples the store's head holds (pg_read_begin): a latest value is
 * the newer of the head's and the table's.
 *
 * Indexes read (schema of store_pg.c). The national overview makes one grouped pass over
 * each table, hash-joined to the sites: devices (devices_by_screen may serve), screens,
 * compliance_by_day_site (day, site, quantity, in_ms, measured_ms) for the day, alerts_by_state
 * (state, updated_ms) for the firing alerts; 10,000 screens in 2,000 cinemas answer in about
 * the time SQLite takes. An overview of some sites (a scope, a province, a city) finds them by
 * sites_by_province, sites_by_chain or the key of sites, then looks each one up: the key of
 * screens (site, screen), devices_by_screen (site, screen, last_seen_ms), compliance_by_day_site
 * and alerts_by_site (site, state, updated_ms), so it costs what it shows. The cinema and hall
 * reads use devices_by_screen, the keys of screens, devices and latest, the unique (device_ref,
 * metric, labels) of series and alerts_by_site. */
#include <stdio.h>
#include <string.h>

#include "errbuf.h"
#include "store_pg_int.h"
#include "store_util.h"

#define MAX_METRICS 8
#define BYTES " COLLATE \"C\"" /* order text as SQLite does: by its bytes */

/* ---------------------------------------------------------------- overview */

/* CO_SCOPE_SQL for a row s of sites itself, written with its own province and chain instead of
 * a sub-select of sites: the same rows, but the planner sees the condition (after folding the
 * kind) and so estimates the sites of a scope well (else it guesses half the country and may
 * JIT-compile the plan for tens of milliseconds). Keep in step with scope.h. */
#define SITE_ROW_IN_SCOPE(k, v)                                                                    \
    "(" k " = 0 OR (" k " = 3 AND s.code = " v ") OR (" k " = 1 AND s.province = " v ") OR (" k    \
    " = 2 AND s.chain = " v "))"

/* The sites within the scope ($1, $2) and the filters ($3 province, $4 city). */
#define OVERVIEW_ST                                                                                \
    "WITH st AS (SELECT code, name, province, city, chain FROM sites s"                            \
    " WHERE " SITE_ROW_IN_SCOPE("$1::int",                                                         \
                                "$2::text") " AND ($3::text IS NULL OR s.province = $3::text)"     \
                                            " AND ($4::text IS NULL OR s.city = $4::text)) "

/* The counters every overview row has, as columns 0..8 after the row's keys, from one row per
 * site of st joined with sn (its screens in table screens), h (its screens named by devices:
 * those with a device seen since $6, and those not in screens), cp (compliance sums of day
 * $5) and al (firing alerts by severity). */
#define OVERVIEW_SUMS                                                                              \
    " count(*), (coalesce(sum(sn.n), 0) + coalesce(sum(h.extra), 0))::bigint,"                     \
    " coalesce(sum(h.rep), 0)::bigint,"                                                            \
    " CASE WHEN sum(cp.lm) > 0 THEN sum(cp.li)::float8 / sum(cp.lm)::float8 END,"                  \
    " CASE WHEN sum(cp.wm) > 0 THEN sum(cp.wi)::float8 / sum(cp.wm)::float8 END,"                  \
    " CASE WHEN sum(cp.sm) > 0 THEN sum(cp.si)::float8 / sum(cp.sm)::float8 END,"                  \
    " coalesce(sum(al.ac), 0)::bigint, coalesce(sum(al.aw), 0)::bigint,"                           \
    " coalesce(sum(al.ai), 0)::bigint"

#define H_COLS                                                                                     \
    " count(*) FILTER (WHERE seen >= $6::bigint) AS rep,"                                          \
    " count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM screens c"                                  \
    "  WHERE c.site = dv.site AND c.screen = dv.screen)) AS extra"
#define CP_COLS                                                                                    \
    " sum(in_ms) FILTER (WHERE quantity = 'luminance') AS li,"                                     \
    " sum(measured_ms) FILTER (WHERE quantity = 'luminance') AS lm,"                               \
    " sum(in_ms) FILTER (WHERE quantity = 'white') AS wi,"                                         \
    " sum(measured_ms) FILTER (WHERE quantity = 'white') AS wm,"                                   \
    " sum(in_ms) FILTER (WHERE quantity = 'spl') AS si,"                                           \
    " sum(measured_ms) FILTER (WHERE quantity = 'spl') AS sm"
#define AL_COLS                                                                                    \
    " count(*) FILTER (WHERE severity = 'critical') AS ac,"                                        \
    " count(*) FILTER (WHERE severity = 'warning') AS aw,"                                         \
    " count(*) FILTER (WHERE severity = 'info') AS ai"

/* The whole country: one grouped pass over each table (devices_by_screen,
 * compliance_by_day_site, alerts_by_state), hash-joined to the sites. */
#define FROM_ALL                                                                                   \
    " FROM st LEFT JOIN (SELECT site, count(*) AS n FROM screens GROUP BY site) sn"                \
    "  ON sn.site = st.code"                                                                       \
    " LEFT JOIN (SELECT site," H_COLS " FROM (SELECT site, screen, max(last_seen_ms) AS seen"      \
    "  FROM devices WHERE screen IS NOT NULL AND screen <> '' GROUP BY site, screen) dv"           \
    "  GROUP BY site) h ON h.site = st.code"                                                       \
    " LEFT JOIN (SELECT site," CP_COLS " FROM compliance WHERE day = $5::text GROUP BY site) cp"   \
    "  ON cp.site = st.code"                                                                       \
    " LEFT JOIN (SELECT site," AL_COLS " FROM alerts WHERE state = 'firing' GROUP BY site) al"     \
    "  ON al.site = st.code"

/* Some sites (a scope, a province or a city): per site of st, index lookups by site (screens'
 * key, devices_by_screen, compliance_by_day_site, alerts_by_site), so the cost follows the
 * sites shown and not the country. */
#define FROM_SITES                                                                                 \
    " FROM st CROSS JOIN LATERAL (SELECT count(*) AS n FROM screens WHERE site = st.code) sn"      \
    " CROSS JOIN LATERAL (SELECT" H_COLS " FROM (SELECT site, screen, max(last_seen_ms) AS seen"   \
    "  FROM devices WHERE site = st.code AND screen IS NOT NULL AND screen <> ''"                  \
    "  GROUP BY site, screen) dv) h"                                                               \
    " CROSS JOIN LATERAL (SELECT" CP_COLS " FROM compliance"                                       \
    "  WHERE day = $5::text AND site = st.code) cp"                                                \
    " CROSS JOIN LATERAL (SELECT" AL_COLS " FROM alerts"                                           \
    "  WHERE site = st.code AND state = 'firing') al"

#define OVERVIEW_SQL(FROM)                                                                         \
    {                                                                                              \
        [CO_DASH_PROVINCE] =                                                                       \
            OVERVIEW_ST "SELECT st.province," OVERVIEW_SUMS FROM " GROUP BY st.province"           \
                        " ORDER BY st.province" BYTES " NULLS FIRST",                              \
        [CO_DASH_CITY] = OVERVIEW_ST "SELECT st.province, st.city," OVERVIEW_SUMS FROM             \
                                     " GROUP BY st.province, st.city"                              \
                                     " ORDER BY st.province" BYTES " NULLS FIRST,"                 \
                                     " st.city" BYTES " NULLS FIRST",                              \
        [CO_DASH_CINEMA] = OVERVIEW_ST "SELECT st.code, st.name, st.province, st.city,"            \
                                       " st.chain," OVERVIEW_SUMS FROM                             \
                                       " GROUP BY st.code, st.name, st.province, st.city,"         \
                                       " st.chain ORDER BY st.province" BYTES " NULLS FIRST,"      \
                                       " st.city" BYTES " NULLS FIRST, st.code" BYTES,             \
    }
static const char *const overview_sql[2][3] = {OVERVIEW_SQL(FROM_ALL), OVERVIEW_SQL(FROM_SITES)};

/* The counters of an overview row starting at column k into o; NULL on OOM (o freed). */
static json_t *overview_sums(const PGresult *res, int r, int k, json_t *o)
{
    json_t *sums = json_pack(
        "{s:I, s:I, s:I, s:{s:o, s:o, s:o}, s:{s:I, s:I, s:I}}", "cinemas",
        (json_int_t)pg_int(res, r, k), "screens", (json_int_t)pg_int(res, r, k + 1),
        "screens_reporting", (json_int_t)pg_int(res, r, k + 2), "compliance", "luminance",
        pg_json_real(res, r, k + 3), "white", pg_json_real(res, r, k + 4), "spl",
        pg_json_real(res, r, k + 5), "alerts", "critical", (json_int_t)pg_int(res, r, k + 6),
        "warning", (json_int_t)pg_int(res, r, k + 7), "info", (json_int_t)pg_int(res, r, k + 8));
    if (!o || !sums || json_object_update(o, sums) < 0) {
        json_decref(o);
        o = NULL;
    }
    json_decref(sums);
    return o;
}

static json_t *province_row(const PGresult *res, int r)
{
    return overview_sums(res, r, 1, json_pack("{s:o}", "province", pg_json_str(res, r, 0)));
}

static json_t *city_row(const PGresult *res, int r)
{
    return overview_sums(res, r, 2,
                         json_pack("{s:o, s:o}", "province", pg_json_str(res, r, 0), "city",
                                   pg_json_str(res, r, 1)));
}

static json_t *cinema_row(const PGresult *res, int r)
{
    const char *worst = pg_int(res, r, 11)   ? "critical"
                        : pg_int(res, r, 12) ? "warning"
                        : pg_int(res, r, 13) ? "info"
                                             : NULL;
    return overview_sums(res, r, 5,
                         json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "site", pg_json_str(res, r, 0),
                                   "name", pg_json_str(res, r, 1), "province",
                                   pg_json_str(res, r, 2), "city", pg_json_str(res, r, 3), "chain",
                                   pg_json_str(res, r, 4), "worst",
                                   worst ? json_string(worst) : json_null()));
}

/* Every row of res through row() into a new array; NULL with err on OOM. */
static json_t *rows_or_oom(const PGresult *res, json_t *(*row)(const PGresult *, int), char *err,
                           size_t errlen)
{
    json_t *a = pg_rows(res, row);
    if (!a) cm_seterr(err, errlen, "out of memory");
    return a;
}

json_t *pg_dash_overview(co_store *s, const co_scope *sc, co_dash_level level, const char *province,
                         const char *city, const char *day, int64_t seen_since_ms, char *err,
                         size_t errlen)
{
    static json_t *(*const row[])(const PGresult *, int) = {province_row, city_row, cinema_row};
    if ((unsigned)level > CO_DASH_CINEMA || !day) {
        cm_seterr(err, errlen, "overview: bad level or no day");
        return NULL;
    }
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return NULL;
    int filtered = !co_scope_is_all(sc) || province || city;
    char kbuf[4], seen[32];
    const char *p[6];
    pg_scope_params(sc, p, 0, 1, kbuf);
    p[2] = province;
    p[3] = city;
    p[4] = day;
    p[5] = pg_i64(seen, seen_since_ms);
    PGresult *res = pg_exec(&q, "overview", overview_sql[filtered][level], 6, p);
    pg_conn_put(&q);
    json_t *out = res ? rows_or_oom(res, row[level], err, errlen) : NULL;
    PQclear(res);
    return out;
}

/* ---------------------------------------------------------------- shared */

/* The site's row if it is within sc: 1 (*out set), 0 unknown or outside, -1 error. */
static int site_in_scope(pg_query *q, const co_scope *sc, const char *site, json_t **out)
{
    char kbuf[4];
    const char *p[3];
    pg_scope_params(sc, p, 0, 1, kbuf);
    p[2] = site;
    PGresult *res =
        pg_exec(q, "site",
                "SELECT code, name, province, city, chain FROM sites s"
                " WHERE s.code = $3::text AND " CO_SCOPE_SQL("s.code", "$1::int", "$2::text"),
                3, p);
    if (!res) return -1;
    int found = 0;
    if (PQntuples(res) > 0) {
        *out = json_pack("{s:o, s:o, s:o, s:o, s:o}", "code", pg_json_str(res, 0, 0), "name",
                         pg_json_str(res, 0, 1), "province", pg_json_str(res, 0, 2), "city",
                         pg_json_str(res, 0, 3), "chain", pg_json_str(res, 0, 4));
        found = *out ? 1 : -1;
        if (!*out) cm_seterr(q->err, q->errlen, "out of memory");
    }
    PQclear(res);
    return found;
}

/* ---------------------------------------------------------------- cinema */

static json_t *hall_row(const PGresult *res, int r)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:{s:i, s:i, s:i}, s:[]}", "screen",
                     pg_json_str(res, r, 0), "name", pg_json_str(res, r, 1), "class",
                     pg_json_str(res, r, 2), "display", pg_json_str(res, r, 3), "last_seen_ms",
                     pg_json_int(res, r, 4), "alerts", "critical", 0, "warning", 0, "info", 0,
                     "latest");
}

/* The hall named by column 0 of row r in the halls array (sorted by screen as the rows are,
 * byte order); *pos only moves forward. */
static json_t *hall_of(json_t *halls, const PGresult *res, int r, size_t *pos)
{
    const char *screen = pg_str(res, r, 0);
    if (!screen) return NULL;
    for (; *pos < json_array_size(halls); (*pos)++) {
        json_t *h = json_array_get(halls, *pos);
        int c = strcmp(json_string_value(json_object_get(h, "screen")), screen);
        if (c == 0) return h;
        if (c > 0) break;
    }
    return NULL;
}

/* Firing alerts counted per hall and severity into halls. 0 or -1. */
static int cinema_alerts(pg_query *q, const char *site, json_t *halls)
{
    const char *p[] = {site};
    PGresult *res = pg_exec(q, "cinema alerts",
                            "SELECT screen, severity, count(*) FROM alerts"
                            " WHERE site = $1 AND state = 'firing'"
                            " GROUP BY screen, severity ORDER BY screen" BYTES,
                            1, p);
    if (!res) return -1;
    size_t pos = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        json_t *h = hall_of(halls, res, r, &pos);
        const char *sev = pg_str(res, r, 1);
        json_t *n = h && sev ? json_object_get(json_object_get(h, "alerts"), sev) : NULL;
        if (n) json_integer_set(n, pg_int(res, r, 2));
    }
    PQclear(res);
    return 0;
}

/* Latest values of the metrics per hall into halls[].latest, oldest first (then by device,
 * metric and labels). 0 or -1. */
static int cinema_latest(pg_query *q, const char *site, const char *const *metrics, size_t n,
                         json_t *halls)
{
    const char *p[1 + MAX_METRICS] = {site};
    for (size_t i = 0; i < MAX_METRICS; i++)
        p[1 + i] = i < n ? metrics[i] : NULL;
    PGresult *res =
        pg_exec(q, "cinema latest",
                "SELECT d.screen, d.device_id, r.metric, r.labels, r.unit, l.ts_ms, l.value, r.id"
                " FROM devices d JOIN series r ON r.device_ref = d.id"
                " LEFT JOIN latest l ON l.series_id = r.id"
                " WHERE d.site = $1 AND d.screen IS NOT NULL AND d.screen <> ''"
                " AND r.metric IN ($2, $3, $4, $5, $6, $7, $8, $9)"
                " ORDER BY d.screen" BYTES ", d.device_id" BYTES ", r.metric" BYTES
                ", r.labels::text" BYTES,
                1 + MAX_METRICS, p);
    if (!res) return -1;
    size_t pos = 0;
    int rc = 0;
    for (int r = 0; r < PQntuples(res) && rc == 0; r++) {
        int64_t ts;
        double v;
        /* a series with no point yet anywhere is not shown */
        if (!pg_latest_of(q, pg_int(res, r, 7), res, r, 5, 6, &ts, &v)) continue;
        json_t *h = hall_of(halls, res, r, &pos);
        if (!h) continue;
        json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:I, s:f}", "device", pg_json_str(res, r, 1),
                              "metric", pg_json_str(res, r, 2), "labels", pg_json_obj(res, r, 3),
                              "unit", pg_json_str(res, r, 4), "ts_ms", (json_int_t)ts, "value", v);
        if (!o || json_array_append_new(json_object_get(h, "latest"), o) < 0) rc = -1;
    }
    PQclear(res);
    for (size_t i = 0; rc == 0 && i < json_array_size(halls); i++)
        rc = co_json_sort_by_ts(json_object_get(json_array_get(halls, i), "latest"));
    if (rc < 0) cm_seterr(q->err, q->errlen, "out of memory");
    return rc;
}

json_t *pg_dash_cinema(co_store *s, const co_scope *sc, const char *site,
                       const char *const *metrics, size_t nmetrics, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!site || nmetrics > MAX_METRICS) {
        cm_seterr(err, errlen, "cinema: no site or more than %d metrics", MAX_METRICS);
        return NULL;
    }
    pg_query q;
    if (pg_read_begin(&q, s, err, errlen) < 0) return NULL;
    json_t *res = NULL, *info = NULL, *halls = NULL;
    if (site_in_scope(&q, sc, site, &info) != 1) goto out;
    const char *p[] = {site};
    PGresult *r = pg_exec(
        &q, "cinema halls",
        "WITH hall AS (SELECT screen, max(seen) AS seen FROM ("
        "  SELECT screen, NULL::bigint AS seen FROM screens WHERE site = $1"
        "  UNION ALL SELECT screen, last_seen_ms FROM devices"
        "  WHERE site = $1 AND screen IS NOT NULL AND screen <> '') x GROUP BY screen)"
        " SELECT h.screen, c.name, c.class, c.display, h.seen FROM hall h"
        " LEFT JOIN screens c ON c.site = $1 AND c.screen = h.screen ORDER BY h.screen" BYTES,
        1, p);
    if (!r) goto out;
    halls = rows_or_oom(r, hall_row, err, errlen);
    PQclear(r);
    if (!halls || cinema_alerts(&q, site, halls) < 0 ||
        cinema_latest(&q, site, metrics, nmetrics, halls) < 0)
        goto out;
    res = json_pack("{s:O, s:O}", "site", info, "halls", halls);
    if (!res) cm_seterr(err, errlen, "out of memory");
out:
    json_decref(info);
    json_decref(halls);
    pg_read_end(&q); /* ends the read-only snapshot (rolled back) */
    return res;
}

/* ---------------------------------------------------------------- hall */

/* The screen's settings as co_store_screens shows them, or a stand-in when only devices name
 * it: 1 (*out set), 0 unknown screen, -1 error. */
static int hall_screen(pg_query *q, const char *site, const char *screen, json_t **out)
{
    const char *p[] = {site, screen};
    PGresult *res = pg_exec(
        q, "hall screen",
        "SELECT c.name, c.class, c.display, c.format, c.spl_ref, c.updated_ms, c.updated_by,"
        " (SELECT count(*) FROM devices d WHERE d.site = $1 AND d.screen = $2)"
        " FROM (SELECT 1) AS one LEFT JOIN screens c ON c.site = $1 AND c.screen = $2",
        2, p);
    if (!res) return -1;
    int found = 0;
    if (PQntuples(res) > 0) {
        int known = !PQgetisnull(res, 0, 1);
        json_int_t devices = pg_int(res, 0, 7);
        if (known || devices > 0) {
            *out = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:b}", "site",
                             site, "screen", screen, "name", pg_json_str(res, 0, 0), "class",
                             pg_json_str(res, 0, 1), "display", pg_json_str(res, 0, 2), "format",
                             pg_json_str(res, 0, 3), "spl_ref", pg_json_obj(res, 0, 4), "devices",
                             devices, "updated_ms", pg_json_int(res, 0, 5), "updated_by",
                             pg_json_str(res, 0, 6), "known", known);
            found = *out ? 1 : -1;
            if (!*out) cm_seterr(q->err, q->errlen, "out of memory");
        }
    }
    PQclear(res);
    return found;
}

/* Devices of the screen with the latest value of every series, grouped by device; NULL with
 * q->err. */
static json_t *hall_devices(pg_query *q, const char *site, const char *screen)
{
    const char *p[] = {site, screen};
    PGresult *res =
        pg_exec(q, "hall devices",
                "SELECT d.device_id, d.kind, d.vendor, d.model, d.last_seen_ms, r.metric, r.labels,"
                " r.unit, l.ts_ms, l.value, r.id FROM devices d"
                " LEFT JOIN series r ON r.device_ref = d.id"
                " LEFT JOIN latest l ON l.series_id = r.id WHERE d.site = $1 AND d.screen = $2"
                " ORDER BY d.device_id" BYTES ", r.metric" BYTES " NULLS FIRST,"
                " r.labels::text" BYTES " NULLS FIRST",
                2, p);
    if (!res) return NULL;
    json_t *arr = json_array(), *dev = NULL;
    for (int r = 0; arr && r < PQntuples(res); r++) {
        const char *id = pg_str(res, r, 0);
        if (!dev || strcmp(json_string_value(json_object_get(dev, "device")), id) != 0) {
            dev = json_pack("{s:s, s:o, s:o, s:o, s:o, s:[]}", "device", id, "kind",
                            pg_json_str(res, r, 1), "vendor", pg_json_str(res, r, 2), "model",
                            pg_json_str(res, r, 3), "last_seen_ms", pg_json_int(res, r, 4),
                            "metrics");
            if (!dev || json_array_append_new(arr, dev) < 0) goto oom;
        }
        int64_t ts;
        double v;
        if (PQgetisnull(res, r, 10) || /* no series */
            !pg_latest_of(q, pg_int(res, r, 10), res, r, 8, 9, &ts, &v))
            continue; /* or no value */
        json_t *m = json_pack("{s:o, s:o, s:o, s:I, s:f}", "metric", pg_json_str(res, r, 5),
                              "labels", pg_json_obj(res, r, 6), "unit", pg_json_str(res, r, 7),
                              "ts_ms", (json_int_t)ts, "value", v);
        if (!m || json_array_append_new(json_object_get(dev, "metrics"), m) < 0) goto oom;
    }
    if (!arr) goto oom;
    PQclear(res);
    return arr;
oom:
    PQclear(res);
    json_decref(arr);
    cm_seterr(q->err, q->errlen, "out of memory");
    return NULL;
}

json_t *pg_dash_hall(co_store *s, const co_scope *sc, const char *site, const char *screen,
                     char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!site || !screen) {
        cm_seterr(err, errlen, "hall: a site and a screen are required");
        return NULL;
    }
    pg_query q;
    if (pg_read_begin(&q, s, err, errlen) < 0) return NULL;
    json_t *res = NULL, *info = NULL, *scr = NULL, *devs = NULL;
    if (site_in_scope(&q, sc, site, &info) != 1 || hall_screen(&q, site, screen, &scr) != 1 ||
        !(devs = hall_devices(&q, site, screen)))
        goto out;
    res = json_pack("{s:O, s:O}", "screen", scr, "devices", devs);
    if (!res) cm_seterr(err, errlen, "out of memory");
out:
    json_decref(info);
    json_decref(scr);
    json_decref(devs);
    pg_read_end(&q); /* ends the read-only snapshot (rolled back) */
    return res;
}

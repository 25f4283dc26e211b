/* store_dashboard.c — the SQLite backend of store.h's dashboard part: the overview grouped
 * by province, city or cinema, one cinema's halls and one hall's devices with their latest
 * values. Everything is aggregated in SQL (one statement per answer part, no per-site or
 * per-screen round trips) and filtered by the caller's scope (CO_SCOPE_SQL). */
#include <stdio.h>
#include <string.h>

#include "errbuf.h"
#include "store.h"
#include "store_sqlite_int.h"
#include "store_util.h"

#define MAX_METRICS 8

/* ---------------------------------------------------------------- overview */

/* The sites of `st` within the scope (?1, ?2) and the filters (?3 province, ?4 city); per
 * site: its screens (rows of screens, plus screens named only by devices) and those with a
 * device seen since ?6; compliance sums of day ?5; firing alerts by severity. Every part is
 * one grouped pass (F: the filter of its rows, below); the devices part reads the index
 * devices(site, screen, last_seen_ms) in order when it exists. */
#define OVERVIEW_CTE(F)                                                                            \
    "WITH st AS (SELECT code, name, province, city, chain FROM sites s WHERE " CO_SCOPE_SQL(       \
        "s.code", "?1",                                                                            \
        "?2") " AND (?3 IS NULL OR s.province = ?3)"                                               \
              " AND (?4 IS NULL OR s.city = ?4)),"                                                 \
              " dv AS (SELECT site, screen, max(last_seen_ms) AS seen FROM devices"                \
              "  WHERE screen IS NOT NULL AND screen <> ''" F "  GROUP BY site, screen),"          \
              " h AS (SELECT site, sum(seen >= ?6) AS rep, sum(NOT EXISTS (SELECT 1 FROM screens " \
              "c"                                                                                  \
              "  WHERE c.site = dv.site AND c.screen = dv.screen)) AS extra FROM dv GROUP BY "     \
              "site),"                                                                             \
              " sn AS (SELECT site, count(*) AS n FROM screens WHERE 1" F " GROUP BY site),"       \
              " cp AS (SELECT site,"                                                               \
              "  sum(CASE WHEN quantity = 'luminance' THEN in_ms END) AS li,"                      \
              "  sum(CASE WHEN quantity = 'luminance' THEN measured_ms END) AS lm,"                \
              "  sum(CASE WHEN quantity = 'white' THEN in_ms END) AS wi,"                          \
              "  sum(CASE WHEN quantity = 'white' THEN measured_ms END) AS wm,"                    \
              "  sum(CASE WHEN quantity = 'spl' THEN in_ms END) AS si,"                            \
              "  sum(CASE WHEN quantity = 'spl' THEN measured_ms END) AS sm"                       \
              "  FROM compliance WHERE day = ?5" F " GROUP BY site),"                              \
              " al AS (SELECT site, sum(severity = 'critical') AS ac, sum(severity = 'warning') "  \
              "AS aw,"                                                                             \
              "  sum(severity = 'info') AS ai FROM alerts"                                         \
              "  WHERE state = 'firing'" F " GROUP BY site) "

/* The counters every overview row has, as columns 0..11 after the row's keys. */
#define OVERVIEW_SUMS                                                                              \
    " count(*), coalesce(sum(sn.n), 0) + coalesce(sum(h.extra), 0), coalesce(sum(h.rep), 0),"      \
    " CASE WHEN sum(cp.lm) > 0 THEN 1.0 * sum(cp.li) / sum(cp.lm) END,"                            \
    " CASE WHEN sum(cp.wm) > 0 THEN 1.0 * sum(cp.wi) / sum(cp.wm) END,"                            \
    " CASE WHEN sum(cp.sm) > 0 THEN 1.0 * sum(cp.si) / sum(cp.sm) END,"                            \
    " coalesce(sum(al.ac), 0), coalesce(sum(al.aw), 0), coalesce(sum(al.ai), 0)"                   \
    " FROM st LEFT JOIN sn ON sn.site = st.code LEFT JOIN h ON h.site = st.code"                   \
    " LEFT JOIN cp ON cp.site = st.code"                                                           \
    " LEFT JOIN al ON al.site = st.code"

/* Each part filtered by the sites of st (a scope or a province / city), or not filtered at
 * all for the whole country (one pass over each table instead of one search per site). */
#define IN_ST " AND site IN (SELECT code FROM st)"
#define OVERVIEW_SQL(F)                                                                            \
    {                                                                                              \
        [CO_DASH_PROVINCE] = OVERVIEW_CTE(F) "SELECT st.province," OVERVIEW_SUMS                   \
                                             " GROUP BY st.province ORDER BY st.province",         \
        [CO_DASH_CITY] =                                                                           \
            OVERVIEW_CTE(F) "SELECT st.province, st.city," OVERVIEW_SUMS                           \
                            " GROUP BY st.province, st.city ORDER BY st.province, st.city",        \
        [CO_DASH_CINEMA] =                                                                         \
            OVERVIEW_CTE(F) "SELECT st.code, st.name, st.province, st.city,"                       \
                            " st.chain," OVERVIEW_SUMS                                             \
                            " GROUP BY st.code ORDER BY st.province, st.city, st.code",            \
    }
static const char *const overview_sql[2][3] = {OVERVIEW_SQL(""), OVERVIEW_SQL(IN_ST)};

static json_t *col_real_or_null(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null()
                                                     : json_real(sqlite3_column_double(st, i));
}

/* The counters of an overview row starting at column k into o; NULL on OOM (o freed). */
static json_t *overview_sums(sqlite3_stmt *st, int k, json_t *o)
{
    json_int_t ac = sqlite3_column_int64(st, k + 6), aw = sqlite3_column_int64(st, k + 7),
               ai = sqlite3_column_int64(st, k + 8);
    json_t *sums =
        json_pack("{s:I, s:I, s:I, s:{s:o, s:o, s:o}, s:{s:I, s:I, s:I}}", "cinemas",
                  (json_int_t)sqlite3_column_int64(st, k), "screens",
                  (json_int_t)sqlite3_column_int64(st, k + 1), "screens_reporting",
                  (json_int_t)sqlite3_column_int64(st, k + 2), "compliance", "luminance",
                  col_real_or_null(st, k + 3), "white", col_real_or_null(st, k + 4), "spl",
                  col_real_or_null(st, k + 5), "alerts", "critical", ac, "warning", aw, "info", ai);
    if (!o || !sums || json_object_update(o, sums) < 0) {
        json_decref(o);
        o = NULL;
    }
    json_decref(sums);
    return o;
}

static json_t *province_row(sqlite3_stmt *st)
{
    return overview_sums(st, 1, json_pack("{s:o}", "province", sq_col_json_str(st, 0)));
}

static json_t *city_row(sqlite3_stmt *st)
{
    return overview_sums(st, 2,
                         json_pack("{s:o, s:o}", "province", sq_col_json_str(st, 0), "city",
                                   sq_col_json_str(st, 1)));
}

static json_t *cinema_row(sqlite3_stmt *st)
{
    const char *worst = sqlite3_column_int64(st, 11)   ? "critical"
                        : sqlite3_column_int64(st, 12) ? "warning"
                        : sqlite3_column_int64(st, 13) ? "info"
                                                       : NULL;
    return overview_sums(st, 5,
                         json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "site", sq_col_json_str(st, 0),
                                   "name", sq_col_json_str(st, 1), "province",
                                   sq_col_json_str(st, 2), "city", sq_col_json_str(st, 3), "chain",
                                   sq_col_json_str(st, 4), "worst",
                                   worst ? json_string(worst) : json_null()));
}

json_t *sqlite_dash_overview(co_store *s, const co_scope *sc, co_dash_level level,
                             const char *province, const char *city, const char *day,
                             int64_t seen_since_ms, char *err, size_t errlen)
{
    static json_t *(*const row[])(sqlite3_stmt *) = {province_row, city_row, cinema_row};
    if ((unsigned)level > CO_DASH_CINEMA || !day) {
        cm_seterr(err, errlen, "overview: bad level or no day");
        return NULL;
    }
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return NULL;
    json_t *res = NULL;
    int filtered = !co_scope_is_all(sc) || province || city;
    sqlite3_stmt *st = sq_q_prepare(&q, overview_sql[filtered][level]);
    if (st) {
        sq_bind_scope(st, 1, 2, sc);
        sq_bind_text(st, 3, province);
        sq_bind_text(st, 4, city);
        sq_bind_text(st, 5, day);
        sqlite3_bind_int64(st, 6, seen_since_ms);
        res = sq_q_rows(&q, st, row[level]);
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return res;
}

/* ---------------------------------------------------------------- shared */

static json_t *col_labels(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    json_t *j =
        t ? json_loadb((const char *)t, (size_t)sqlite3_column_bytes(st, i), 0, NULL) : NULL;
    if (json_is_object(j)) return j;
    json_decref(j);
    return json_object();
}

/* The site's row if it is within sc: 1 (*out set), 0 unknown or outside, -1 error. */
static int site_in_scope(sq_query *q, const co_scope *sc, const char *site, json_t **out)
{
    sqlite3_stmt *st =
        sq_q_prepare(q, "SELECT code, name, province, city, chain FROM sites s"
                        " WHERE s.code = ?3 AND " CO_SCOPE_SQL("s.code", "?1", "?2"));
    if (!st) return -1;
    sq_bind_scope(st, 1, 2, sc);
    sq_bind_text(st, 3, site);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        *out = json_pack("{s:o, s:o, s:o, s:o, s:o}", "code", sq_col_json_str(st, 0), "name",
                         sq_col_json_str(st, 1), "province", sq_col_json_str(st, 2), "city",
                         sq_col_json_str(st, 3), "chain", sq_col_json_str(st, 4));
        found = *out ? 1 : -1;
        if (!*out) cm_seterr(q->err, q->errlen, "out of memory");
    } else if (rc != SQLITE_DONE) {
        found = sq_dberr(q->db, "site", q->err, q->errlen);
    }
    sqlite3_finalize(st);
    return found;
}

/* ---------------------------------------------------------------- cinema */

static json_t *hall_row(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:{s:i, s:i, s:i}, s:[]}", "screen",
                     sq_col_json_str(st, 0), "name", sq_col_json_str(st, 1), "class",
                     sq_col_json_str(st, 2), "display", sq_col_json_str(st, 3), "last_seen_ms",
                     sq_col_json_int(st, 4), "alerts", "critical", 0, "warning", 0, "info", 0,
                     "latest");
}

/* The hall named by column 0 in the halls array (sorted by screen, as the rows are). */
static json_t *hall_of(json_t *halls, sqlite3_stmt *st, size_t *pos)
{
    const char *screen = (const char *)sqlite3_column_text(st, 0);
    if (!screen) return NULL;
    for (; *pos < json_array_size(halls); (*pos)++) {
        json_t *h = json_array_get(halls, *pos);
        int c = strcmp(json_string_value(json_object_get(h, "screen")), screen);
        if (c == 0) return h;
        if (c > 0) break;
    }
    return NULL;
}

/* Firing alerts counted per hall and severity into halls. */
static int cinema_alerts(sq_query *q, const char *site, json_t *halls)
{
    sqlite3_stmt *st = sq_q_prepare(q, "SELECT screen, severity, count(*) FROM alerts"
                                       " WHERE site = ?1 AND state = 'firing'"
                                       " GROUP BY screen, severity ORDER BY screen");
    if (!st) return -1;
    sq_bind_text(st, 1, site);
    int rc;
    size_t pos = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *h = hall_of(halls, st, &pos);
        const char *sev = (const char *)sqlite3_column_text(st, 1);
        json_t *n = h && sev ? json_object_get(json_object_get(h, "alerts"), sev) : NULL;
        if (n) json_integer_set(n, sqlite3_column_int64(st, 2));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sq_dberr(q->db, "cinema alerts", q->err, q->errlen);
    return 0;
}

/* Latest values of the metrics per hall into halls[].latest, oldest first (the head's when it
 * holds a newer one). */
static int cinema_latest(sq_query *q, const char *site, const char *const *metrics, size_t n,
                         json_t *halls)
{
    sqlite3_stmt *st = sq_q_prepare(
        q, "SELECT d.screen, d.device_id, r.metric, r.labels, r.unit, l.ts_ms, l.value, r.id"
           " FROM devices d JOIN series r ON r.device_ref = d.id"
           " LEFT JOIN latest l ON l.series_id = r.id"
           " WHERE d.site = ?1 AND d.screen IS NOT NULL AND d.screen <> ''"
           " AND r.metric IN (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
           " ORDER BY d.screen, d.device_id, r.metric, r.labels");
    if (!st) return -1;
    sq_bind_text(st, 1, site);
    for (size_t i = 0; i < MAX_METRICS; i++)
        sq_bind_text(st, 2 + (int)i, i < n ? metrics[i] : NULL);
    int rc;
    size_t pos = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t ts;
        double v;
        if (!sq_latest_of(q, sqlite3_column_int64(st, 7), sqlite3_column_type(st, 5) != SQLITE_NULL,
                          sqlite3_column_int64(st, 5), sqlite3_column_double(st, 6), &ts, &v))
            continue;
        json_t *h = hall_of(halls, st, &pos);
        if (!h) continue;
        json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:I, s:f}", "device", sq_col_json_str(st, 1),
                              "metric", sq_col_json_str(st, 2), "labels", col_labels(st, 3), "unit",
                              sq_col_json_str(st, 4), "ts_ms", (json_int_t)ts, "value", v);
        if (!o || json_array_append_new(json_object_get(h, "latest"), o) < 0) goto oom;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sq_dberr(q->db, "cinema latest", q->err, q->errlen);
    size_t i;
    json_t *h;
    json_array_foreach(halls, i,
                       h) if (co_json_sort_by_ts(json_object_get(h, "latest")) < 0) goto oom_done;
    return 0;
oom:
    sqlite3_finalize(st);
oom_done:
    cm_seterr(q->err, q->errlen, "out of memory");
    return -1;
}

json_t *sqlite_dash_cinema(co_store *s, const co_scope *sc, const char *site,
                           const char *const *metrics, size_t nmetrics, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!site || nmetrics > MAX_METRICS) {
        cm_seterr(err, errlen, "cinema: no site or more than %d metrics", MAX_METRICS);
        return NULL;
    }
    sq_query q;
    if (sq_q_begin_head(&q, s, err, errlen) < 0) return NULL;
    json_t *res = NULL, *info = NULL, *halls = NULL;
    if (site_in_scope(&q, sc, site, &info) != 1) goto out;
    sqlite3_stmt *st = sq_q_prepare(
        &q, "WITH hall AS (SELECT screen, max(seen) AS seen FROM ("
            "  SELECT screen, NULL AS seen FROM screens WHERE site = ?1"
            "  UNION ALL SELECT screen, last_seen_ms FROM devices"
            "  WHERE site = ?1 AND screen IS NOT NULL AND screen <> '') GROUP BY screen)"
            " SELECT h.screen, c.name, c.class, c.display, h.seen FROM hall h"
            " LEFT JOIN screens c ON c.site = ?1 AND c.screen = h.screen ORDER BY h.screen");
    if (!st) goto out;
    sq_bind_text(st, 1, site);
    halls = sq_q_rows(&q, st, hall_row);
    sqlite3_finalize(st);
    if (!halls || cinema_alerts(&q, site, halls) < 0 ||
        cinema_latest(&q, site, metrics, nmetrics, halls) < 0)
        goto out;
    res = json_pack("{s:O, s:O}", "site", info, "halls", halls);
    if (!res) cm_seterr(err, errlen, "out of memory");
out:
    json_decref(info);
    json_decref(halls);
    sq_q_end(&q);
    return res;
}

/* ---------------------------------------------------------------- hall */

/* The screen's settings as co_store_screens shows them, or a stand-in when only devices name
 * it: 1 (*out set), 0 unknown screen, -1 error. */
static int hall_screen(sq_query *q, const char *site, const char *screen, json_t **out)
{
    sqlite3_stmt *st = sq_q_prepare(
        q, "SELECT c.name, c.class, c.display, c.format, c.spl_ref, c.updated_ms, c.updated_by,"
           " (SELECT count(*) FROM devices d WHERE d.site = ?1 AND d.screen = ?2)"
           " FROM (SELECT 1) LEFT JOIN screens c ON c.site = ?1 AND c.screen = ?2");
    if (!st) return -1;
    sq_bind_text(st, 1, site);
    sq_bind_text(st, 2, screen);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        int known = sqlite3_column_type(st, 1) != SQLITE_NULL;
        json_int_t devices = sqlite3_column_int64(st, 7);
        if (known || devices > 0) {
            json_t *spl = NULL;
            const unsigned char *t = sqlite3_column_text(st, 4);
            if (t) spl = json_loads((const char *)t, 0, NULL);
            if (!json_is_object(spl)) {
                json_decref(spl);
                spl = json_object();
            }
            *out = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:b}", "site",
                             site, "screen", screen, "name", sq_col_json_str(st, 0), "class",
                             sq_col_json_str(st, 1), "display", sq_col_json_str(st, 2), "format",
                             sq_col_json_str(st, 3), "spl_ref", spl, "devices", devices,
                             "updated_ms", sq_col_json_int(st, 5), "updated_by",
                             sq_col_json_str(st, 6), "known", known);
            found = *out ? 1 : -1;
            if (!*out) cm_seterr(q->err, q->errlen, "out of memory");
        }
    } else {
        found = sq_dberr(q->db, "hall screen", q->err, q->errlen);
    }
    sqlite3_finalize(st);
    return found;
}

/* Devices of the screen with the latest value of every series, grouped by device. */
static json_t *hall_devices(sq_query *q, const char *site, const char *screen)
{
    sqlite3_stmt *st = sq_q_prepare(
        q,
        "SELECT d.device_id, d.kind, d.vendor, d.model, d.last_seen_ms, r.metric, r.labels,"
        " r.unit, l.ts_ms, l.value, r.id FROM devices d LEFT JOIN series r ON r.device_ref = d.id"
        " LEFT JOIN latest l ON l.series_id = r.id WHERE d.site = ?1 AND d.screen = ?2"
        " ORDER BY d.device_id, r.metric, r.labels");
    if (!st) return NULL;
    sq_bind_text(st, 1, site);
    sq_bind_text(st, 2, screen);
    json_t *arr = json_array(), *dev = NULL;
    int rc = SQLITE_DONE;
    while (arr && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        if (!dev || strcmp(json_string_value(json_object_get(dev, "device")), id) != 0) {
            dev = json_pack("{s:s, s:o, s:o, s:o, s:o, s:[]}", "device", id, "kind",
                            sq_col_json_str(st, 1), "vendor", sq_col_json_str(st, 2), "model",
                            sq_col_json_str(st, 3), "last_seen_ms", sq_col_json_int(st, 4),
                            "metrics");
            if (!dev || json_array_append_new(arr, dev) < 0) goto oom;
        }
        int64_t ts;
        double v;
        if (sqlite3_column_type(st, 10) == SQLITE_NULL || /* no series */
            !sq_latest_of(q, sqlite3_column_int64(st, 10),
                          sqlite3_column_type(st, 8) != SQLITE_NULL, sqlite3_column_int64(st, 8),
                          sqlite3_column_double(st, 9), &ts, &v))
            continue; /* or no value */
        json_t *m = json_pack("{s:o, s:o, s:o, s:I, s:f}", "metric", sq_col_json_str(st, 5),
                              "labels", col_labels(st, 6), "unit", sq_col_json_str(st, 7), "ts_ms",
                              (json_int_t)ts, "value", v);
        if (!m || json_array_append_new(json_object_get(dev, "metrics"), m) < 0) goto oom;
    }
    if (!arr) goto oom;
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        sq_dberr(q->db, "hall devices", q->err, q->errlen);
        json_decref(arr);
        return NULL;
    }
    return arr;
oom:
    sqlite3_finalize(st);
    json_decref(arr);
    cm_seterr(q->err, q->errlen, "out of memory");
    return NULL;
}

json_t *sqlite_dash_hall(co_store *s, const co_scope *sc, const char *site, const char *screen,
                         char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!site || !screen) {
        cm_seterr(err, errlen, "hall: a site and a screen are required");
        return NULL;
    }
    sq_query q;
    if (sq_q_begin_head(&q, s, err, errlen) < 0) return NULL;
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
    sq_q_end(&q);
    return res;
}

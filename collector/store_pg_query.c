/* store_pg_query.c — PostgreSQL: sites, devices, latest values, series (raw samples of the
 * partitioned samples table, or the minute / hour roll-ups), agents, gaps, events, screens and
 * the sites-and-screens import. Same answers as the SQLite backend (store_sqlite.c): same JSON
 * shapes and key order, same ordering (text ordered by bytes, COLLATE "C", as SQLite's BINARY),
 * same NULL handling, scope filtered in SQL before any limit. Every value is a parameter.
 * Latest values and series add the samples the store's head holds (pg_read_begin): a latest
 * value is the newer of the head's and the table's, raw points are merged by time (one per
 * time), roll-up buckets get the head's points added (co_buckets_*). */
#include "store_pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "store_util.h"
#include "timeutil.h"

#define HOUR_MS 3600000LL
#define TS_MIN_MS 0LL               /* 1970-01-01 */
#define TS_MAX_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */

/* A limit as a parameter: NULL (no limit) for 0 or one too large for a bigint. */
static const char *limit_param(char *buf, size_t limit)
{
    return limit && limit <= (size_t)INT64_MAX ? pg_i64(buf, (int64_t)limit) : NULL;
}

/* Run one read statement and turn every row into JSON by row(); NULL with err. */
static json_t *read_rows(co_store *s, const char *what, const char *sql, int n,
                         const char *const *params, json_t *(*row)(const PGresult *, int),
                         char *err, size_t errlen)
{
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return NULL;
    json_t *out = NULL;
    PGresult *res = pg_exec(&q, what, sql, n, params);
    if (res) {
        out = pg_rows(res, row);
        if (!out) cm_seterr(err, errlen, "out of memory");
        PQclear(res);
    }
    pg_conn_put(&q);
    return out;
}

/* ---------------------------------------------------------------- sites, devices, agents */

static json_t *site_row(const PGresult *res, int r)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:I, s:o}", "code", pg_json_str(res, r, 0), "name",
                     pg_json_str(res, r, 1), "province", pg_json_str(res, r, 2), "city",
                     pg_json_str(res, r, 3), "chain", pg_json_str(res, r, 6), "devices",
                     (json_int_t)pg_int(res, r, 4), "last_seen_ms", pg_json_int(res, r, 5));
}

json_t *pg_sites(co_store *s, const co_scope *sc, char *err, size_t errlen)
{
    const char *p[2];
    char kbuf[4];
    pg_scope_params(sc, p, 0, 1, kbuf);
    return read_rows(
        s, "sites",
        "SELECT code, name, province, city,"
        " (SELECT count(*) FROM devices d WHERE d.site = s.code),"
        " (SELECT max(t) FROM (SELECT last_seen_ms AS t FROM devices d WHERE d.site = s.code"
        "  UNION ALL SELECT last_seen_ms FROM agents a WHERE a.site = s.code) x), chain"
        " FROM sites s WHERE " CO_SCOPE_SQL("s.code", "$1::int", "$2::text") " ORDER BY code"
                                                                             " COLLATE \"C\"",
        2, p, site_row, err, errlen);
}

static json_t *device_row(const PGresult *res, int r)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "site",
                     pg_json_str(res, r, 0), "id", pg_json_str(res, r, 1), "screen",
                     pg_json_str(res, r, 2), "kind", pg_json_str(res, r, 3), "vendor",
                     pg_json_str(res, r, 4), "model", pg_json_str(res, r, 5), "serial",
                     pg_json_str(res, r, 6), "firmware", pg_json_str(res, r, 7), "profile",
                     pg_json_str(res, r, 8), "first_seen_ms", pg_json_int(res, r, 9),
                     "last_seen_ms", pg_json_int(res, r, 10));
}

json_t *pg_devices(co_store *s, const char *site, const co_scope *sc, char *err, size_t errlen)
{
    const char *p[3] = {site};
    char kbuf[4];
    pg_scope_params(sc, p, 1, 2, kbuf);
#define DEVICE_COLS                                                                                \
    "SELECT site, device_id, screen, kind, vendor, model, serial, firmware, profile,"              \
    " first_seen_ms, last_seen_ms FROM devices"
#define DEVICE_SCOPE " AND " CO_SCOPE_SQL("site", "$2::int", "$3::text")
    /* two statements, so that one site's listing searches the (site, device_id) index */
    const char *sql = site ? DEVICE_COLS " WHERE site = $1::text" DEVICE_SCOPE
                                         " ORDER BY device_id COLLATE \"C\""
                           : DEVICE_COLS " WHERE $1::text IS NULL" DEVICE_SCOPE
                                         " ORDER BY site COLLATE \"C\", device_id COLLATE \"C\"";
#undef DEVICE_SCOPE
#undef DEVICE_COLS
    return read_rows(s, "devices", sql, 3, p, device_row, err, errlen);
}

static json_t *agent_row(const PGresult *res, int r)
{
    return json_pack("{s:o, s:o, s:o, s:I, s:I, s:I, s:I}", "id", pg_json_str(res, r, 0), "site",
                     pg_json_str(res, r, 1), "version", pg_json_str(res, r, 2), "last_seq",
                     (json_int_t)pg_int(res, r, 3), "last_seen_ms", (json_int_t)pg_int(res, r, 4),
                     "batches", (json_int_t)pg_int(res, r, 5), "samples",
                     (json_int_t)pg_int(res, r, 6));
}

json_t *pg_agents(co_store *s, const co_scope *sc, char *err, size_t errlen)
{
    const char *p[2];
    char kbuf[4];
    pg_scope_params(sc, p, 0, 1, kbuf);
    return read_rows(s, "agents",
                     "SELECT id, site, version, last_seq, last_seen_ms, batches, samples"
                     " FROM agents WHERE " CO_SCOPE_SQL("site", "$1::int",
                                                        "$2::text") " ORDER BY id COLLATE \"C\"",
                     2, p, agent_row, err, errlen);
}

static json_t *gap_row(const PGresult *res, int r)
{
    return json_pack("{s:o, s:I, s:I, s:o, s:I}", "agent", pg_json_str(res, r, 0), "from_seq",
                     (json_int_t)pg_int(res, r, 1), "to_seq", (json_int_t)pg_int(res, r, 2),
                     "reason", pg_json_str(res, r, 3), "reported_ms",
                     (json_int_t)pg_int(res, r, 4));
}

json_t *pg_gaps(co_store *s, const char *agent, const co_scope *sc, char *err, size_t errlen)
{
    if (!agent) {
        cm_seterr(err, errlen, "gaps: an agent is required");
        return NULL;
    }
    const char *p[3] = {agent};
    char kbuf[4];
    pg_scope_params(sc, p, 1, 2, kbuf);
    /* a limited caller sees the gaps of an agent of a site within its scope only */
    return read_rows(
        s, "gaps",
        "SELECT agent_id, from_seq, to_seq, reason, reported_ms FROM gaps WHERE agent_id = $1::text"
        " AND ($2::int = 0 OR EXISTS(SELECT 1 FROM agents a WHERE a.id = $1::text "
        "AND " CO_SCOPE_SQL("a.site", "$2::int", "$3::text") ")) ORDER BY from_seq",
        3, p, gap_row, err, errlen);
}

/* ---------------------------------------------------------------- events */

static json_t *event_row(const PGresult *res, int r)
{
    return json_pack("{s:I, s:o, s:o, s:I, s:o, s:o, s:o, s:o}", "id",
                     (json_int_t)pg_int(res, r, 0), "site", pg_json_str(res, r, 1), "device",
                     pg_json_str(res, r, 2), "ts_ms", (json_int_t)pg_int(res, r, 3), "severity",
                     pg_json_str(res, r, 4), "code", pg_json_str(res, r, 5), "text",
                     pg_json_str(res, r, 6), "source", pg_json_str(res, r, 7));
}

/* Rank of a severity for filtering: info 0, warning 1, critical 2. */
static const char *severity_rank(const char *sev)
{
    if (!sev) return "0";
    if (!strcmp(sev, "critical")) return "2";
    return !strcmp(sev, "warning") ? "1" : "0";
}

json_t *pg_events(co_store *s, const char *site, const char *device, const char *min_severity,
                  const co_range *r, const co_scope *sc, char *err, size_t errlen)
{
    if (!r) {
        cm_seterr(err, errlen, "events: a range is required");
        return NULL;
    }
    char from[32], to[32], kbuf[4];
    /* SQLite's LIMIT takes a limit of 0 as no row at all: so does this one */
    char lim[32];
    const char *p[8] = {site,
                        device,
                        pg_i64(from, r->from_ms),
                        pg_i64(to, r->to_ms),
                        severity_rank(min_severity),
                        r->limit <= (size_t)INT64_MAX ? pg_i64(lim, (int64_t)r->limit) : NULL};
    pg_scope_params(sc, p, 6, 7, kbuf);
    return read_rows(
        s, "events",
        "SELECT e.id, e.site, d.device_id, e.ts_ms, e.severity, e.code, e.text, e.source"
        " FROM events e LEFT JOIN devices d ON d.id = e.device_ref"
        " WHERE e.ts_ms BETWEEN $3::bigint AND $4::bigint"
        " AND ($1::text IS NULL OR e.site = $1::text)"
        " AND ($2::text IS NULL OR d.device_id = $2::text)"
        " AND (CASE e.severity WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 ELSE 0 END)"
        " >= $5::int AND " CO_SCOPE_SQL(
            "e.site", "$7::int", "$8::text") " ORDER BY e.ts_ms DESC, e.id DESC LIMIT $6::bigint",
        8, p, event_row, err, errlen);
}

/* ---------------------------------------------------------------- latest values, series */

static json_t *latest_row(const PGresult *res, int r, int64_t ts, double v)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:I, s:f}", "site", pg_json_str(res, r, 0),
                     "device", pg_json_str(res, r, 1), "metric", pg_json_str(res, r, 2), "labels",
                     pg_json_obj(res, r, 3), "unit", pg_json_str(res, r, 4), "ts_ms",
                     (json_int_t)ts, "value", v);
}

json_t *pg_latest(co_store *s, const char *site, const char *device, const char *metric,
                  const co_scope *sc, char *err, size_t errlen)
{
    if (!device) {
        cm_seterr(err, errlen, "latest: a device is required");
        return NULL;
    }
    const char *p[5] = {site, device, metric};
    char kbuf[4];
    pg_scope_params(sc, p, 3, 4, kbuf);
    pg_query q;
    if (pg_read_begin(&q, s, err, errlen) < 0) return NULL;
    json_t *out = NULL;
    PGresult *res = pg_exec(
        &q, "latest",
        "SELECT d.site, d.device_id, r.metric, r.labels, r.unit, l.ts_ms, l.value, r.id"
        " FROM devices d JOIN series r ON r.device_ref = d.id"
        " LEFT JOIN latest l ON l.series_id = r.id"
        " WHERE d.device_id = $2::text AND ($1::text IS NULL OR d.site = $1::text)"
        " AND ($3::text IS NULL OR r.metric = $3::text)"
        " AND " CO_SCOPE_SQL("d.site", "$4::int",
                             "$5::text") " ORDER BY d.site COLLATE \"C\", r.metric COLLATE \"C\", "
                                         "r.labels COLLATE \"C\"",
        5, p);
    if (res && (out = json_array())) {
        for (int r = 0; r < PQntuples(res); r++) {
            int64_t ts;
            double v;
            /* a series with no point yet anywhere is not listed */
            if (!pg_latest_of(&q, pg_int(res, r, 7), res, r, 5, 6, &ts, &v)) continue;
            if (json_array_append_new(out, latest_row(res, r, ts, v)) < 0) {
                json_decref(out);
                out = NULL;
                break;
            }
        }
    }
    if (res && !out) cm_seterr(err, errlen, "out of memory");
    PQclear(res);
    pg_read_end(&q);
    return out;
}

static json_t *series_row(const PGresult *res, int r)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o}", "site", pg_json_str(res, r, 1), "device",
                     pg_json_str(res, r, 2), "metric", pg_json_str(res, r, 3), "labels",
                     pg_json_obj(res, r, 4), "unit", pg_json_str(res, r, 5));
}

/* The ids of column 0 of res as a bigint[] literal ("{1,2,3}"); NULL on OOM. */
static char *id_array(const PGresult *res)
{
    int n = PQntuples(res);
    size_t cap = 3 + (size_t)n * 21, len = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    buf[len++] = '{';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? "," : "",
                                (long long)pg_int(res, i, 0));
    buf[len++] = '}';
    buf[len] = '\0';
    return buf;
}

/* The rows of series number i (1-based ord in column 0, rows grouped by it in ascending
 * order): [*a, *b). *a starts where the previous series' rows ended. */
static void series_rows(const PGresult *res, int i, int *a, int *b)
{
    int rows = PQntuples(res), k = *a;
    while (k < rows && pg_int(res, k, 0) < i)
        k++;
    *a = k;
    while (k < rows && pg_int(res, k, 0) == i)
        k++;
    *b = k;
}

/* One series' raw points: the table's rows [a, b) (ascending) and the head's points within
 * [from, to], merged by time (the head's where both hold one), the newest `limit` (0: all)
 * appended to pts ascending. 0 or -1 (out of memory). */
static int raw_points(const pg_query *q, int64_t sid, const PGresult *res, int a, int b,
                      int64_t from, int64_t to, size_t limit, co_head_buf *hb, json_t *pts)
{
    co_points p = {0};
    int rc = -1;
    for (int k = a; k < b; k++)
        if (co_points_push(&p, pg_int(res, k, 1), pg_real(res, k, 2)) < 0) goto out;
    if (co_head_range(q->head, sid, from, to, hb) < 0 || co_points_merge(&p, hb->p, hb->n) < 0)
        goto out;
    for (size_t j = limit && p.n > limit ? p.n - limit : 0; j < p.n; j++)
        if (json_array_append_new(pts, json_pack("[I, f]", (json_int_t)p.ts[j], p.v[j])) < 0)
            goto out;
    rc = 0;
out:
    co_points_free(&p);
    return rc;
}

/* One series' roll-up buckets: the table's rows [a, b) (ascending), then the head's points
 * from the first bucket to the end of the last one added, the newest `limit` kept, appended
 * to pts oldest first as [bucket, avg, min, max, count]. 0 or -1 (out of memory). */
static int bucket_points(const pg_query *q, int64_t sid, const PGresult *res, int a, int b,
                         int64_t from, int64_t to, const co_range *r, co_head_buf *hb, json_t *pts)
{
    co_buckets bk = {0};
    int rc = -1;
    for (int k = b; k-- > a;) /* newest first */
        if (co_buckets_push(&bk, pg_int(res, k, 1), pg_int(res, k, 5), pg_real(res, k, 2),
                            pg_real(res, k, 3), pg_real(res, k, 4)) < 0)
            goto out;
    if (co_head_range(q->head, sid, from,
                      co_floor_div(to, r->step_ms) * r->step_ms + r->step_ms - 1, hb) < 0 ||
        co_buckets_add_points(&bk, hb->p, hb->n, r->step_ms, r->limit) < 0 ||
        co_buckets_json(&bk, pts) < 0)
        goto out;
    rc = 0;
out:
    co_buckets_free(&bk);
    return rc;
}

/* Points of every series listed in ids (objects objs[0..n-1] in that order, sids their ids):
 * each series' newest `limit` points (or roll-up buckets when step_ms) within [from, to],
 * ascending, into its "points" (then "step_ms"), the tables' (one statement for all series)
 * and the head's. 0 or -1 with q->err. */
static int series_points(pg_query *q, json_t **objs, const int64_t *sids, int n, const char *ids,
                         const co_range *r)
{
    char from[32], to[32], lim[32];
    const char *p[4] = {ids, NULL, NULL, limit_param(lim, r->limit)};
    const char *sql;
    int empty = 0;
    int64_t f, t;
    if (r->step_ms) { /* roll-ups: [bucket, avg, min, max, count] */
        f = r->from_ms < TS_MIN_MS ? TS_MIN_MS : r->from_ms; /* no bucket below 0 */
        f = co_floor_div(f, r->step_ms) * r->step_ms;
        t = r->to_ms > TS_MAX_MS ? TS_MAX_MS : r->to_ms;
        p[1] = pg_i64(from, f);
        p[2] = pg_i64(to, r->to_ms);
        sql = r->step_ms == HOUR_MS
                  ? "SELECT x.ord, b.bucket_ms, b.sum, b.min, b.max, b.n"
                    " FROM unnest($1::bigint[]) WITH ORDINALITY AS x(sid, ord) CROSS JOIN LATERAL"
                    " (SELECT bucket_ms, sum, min, max, n FROM rollup_1h WHERE series_id = x.sid"
                    " AND bucket_ms BETWEEN $2::bigint AND $3::bigint ORDER BY bucket_ms DESC"
                    " LIMIT $4::bigint) b ORDER BY x.ord, b.bucket_ms"
                  : "SELECT x.ord, b.bucket_ms, b.sum, b.min, b.max, b.n"
                    " FROM unnest($1::bigint[]) WITH ORDINALITY AS x(sid, ord) CROSS JOIN LATERAL"
                    " (SELECT bucket_ms, sum, min, max, n FROM rollup_1m WHERE series_id = x.sid"
                    " AND bucket_ms BETWEEN $2::bigint AND $3::bigint ORDER BY bucket_ms DESC"
                    " LIMIT $4::bigint) b ORDER BY x.ord, b.bucket_ms";
    } else {
        f = r->from_ms < TS_MIN_MS ? TS_MIN_MS : r->from_ms;
        t = r->to_ms > TS_MAX_MS ? TS_MAX_MS : r->to_ms;
        empty = f > t;
        p[1] = pg_i64(from, f);
        p[2] = pg_i64(to, t);
        sql = "SELECT x.ord, p.ts_ms, p.value"
              " FROM unnest($1::bigint[]) WITH ORDINALITY AS x(sid, ord) CROSS JOIN LATERAL"
              " (SELECT ts_ms, value FROM samples WHERE series_id = x.sid"
              " AND ts_ms BETWEEN $2::bigint AND $3::bigint ORDER BY ts_ms DESC"
              " LIMIT $4::bigint) p ORDER BY x.ord, p.ts_ms";
    }
    PGresult *res = NULL;
    if (n && !empty && !(res = pg_exec(q, r->step_ms ? "roll-ups" : "samples", sql, 4, p)))
        return -1;
    co_head_buf hb = {0}; /* one series' head points at a time */
    int a = 0, b = 0;
    for (int i = 0; i < n; i++) {
        json_t *pts = json_array();
        if (!pts || json_object_set_new(objs[i], "points", pts) < 0) goto oom;
        if (r->step_ms && json_object_set_new(objs[i], "step_ms", json_integer(r->step_ms)) < 0)
            goto oom;
        if (empty) continue;
        if (res) series_rows(res, i + 1, &a, &b);
        if ((r->step_ms ? bucket_points(q, sids[i], res, a, b, f, t, r, &hb, pts)
                        : raw_points(q, sids[i], res, a, b, f, t, r->limit, &hb, pts)) < 0)
            goto oom;
        a = b;
    }
    PQclear(res);
    co_head_buf_free(&hb);
    return 0;
oom:
    PQclear(res);
    co_head_buf_free(&hb);
    cm_seterr(q->err, q->errlen, "out of memory");
    return -1;
}

json_t *pg_series(co_store *s, const char *site, const char *device, const char *metric,
                  const co_range *r, const co_scope *sc, char *err, size_t errlen)
{
    if (!device || !r) {
        cm_seterr(err, errlen, "series: a device and a range are required");
        return NULL;
    }
    pg_query q;
    /* one snapshot for the list of series and their points, as SQLite's read transaction */
    if (pg_read_begin(&q, s, err, errlen) < 0) return NULL;
    const char *p[5] = {site, device, metric};
    char kbuf[4];
    pg_scope_params(sc, p, 3, 4, kbuf);
    json_t *out = NULL, **objs = NULL;
    int64_t *sids = NULL;
    char *ids = NULL;
    int n = 0, built;
    PGresult *res =
        pg_exec(&q, "series",
                "SELECT r.id, d.site, d.device_id, r.metric, r.labels, r.unit"
                " FROM devices d JOIN series r ON r.device_ref = d.id"
                " WHERE d.device_id = $2::text AND ($1::text IS NULL OR d.site = $1::text)"
                " AND ($3::text IS NULL OR r.metric = $3::text)"
                " AND " CO_SCOPE_SQL("d.site", "$4::int",
                                     "$5::text") " ORDER BY d.site COLLATE \"C\", r.metric "
                                                 "COLLATE \"C\", r.labels COLLATE \"C\"",
                5, p);
    if (!res) goto done;
    n = PQntuples(res);
    out = json_array();
    objs = calloc((size_t)n ? (size_t)n : 1, sizeof *objs);
    sids = calloc((size_t)n ? (size_t)n : 1, sizeof *sids);
    ids = id_array(res);
    for (int i = 0; out && objs && sids && ids && i < n; i++) {
        sids[i] = pg_int(res, i, 0);
        if (!(objs[i] = series_row(res, i)) || json_array_append(out, objs[i]) < 0) {
            json_decref(objs[i]);
            objs[i] = NULL;
            break;
        }
    }
    built = out && objs && sids && ids && (n == 0 || objs[n - 1]);
    PQclear(res);
    if (!built) {
        cm_seterr(err, errlen, "out of memory");
        goto fail;
    }
    if (series_points(&q, objs, sids, n, ids, r) < 0) goto fail;
    goto done;
fail:
    json_decref(out);
    out = NULL;
done:
    for (int i = 0; objs && i < n; i++)
        json_decref(objs[i]);
    free(objs);
    free(sids);
    free(ids);
    pg_read_end(&q); /* ends the read-only snapshot (rolled back) */
    return out;
}

/* ---------------------------------------------------------------- scope, screens, import */

int pg_site_in_scope(co_store *s, const char *site, const co_scope *sc, char *err, size_t errlen)
{
    if (!site) {
        cm_seterr(err, errlen, "site in scope: a site is required");
        return -1;
    }
    if (co_scope_is_all(sc)) return 1;
    if (sc->kind == CO_SCOPE_SITE) return strcmp(sc->value, site) == 0;
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    const char *p[3] = {site};
    char kbuf[4];
    pg_scope_params(sc, p, 1, 2, kbuf);
    int ret = -1;
    PGresult *res = pg_exec(
        &q, "site in scope",
        "SELECT 1 WHERE $1::text IS NOT NULL AND " CO_SCOPE_SQL("$1::text", "$2::int", "$3::text"),
        3, p);
    if (res) {
        ret = PQntuples(res) > 0;
        PQclear(res);
    }
    pg_conn_put(&q);
    return ret;
}

/* A screen of an import is complete and its class and display are known ones. */
static int check_screen(const co_screen *sc, size_t i, char *err, size_t errlen)
{
    if (!sc->site || !*sc->site || !sc->screen || !*sc->screen) {
        cm_seterr(err, errlen, "screens[%zu]: a site and a screen are required", i);
        return -1;
    }
    if (sc->class_ && !co_screen_class_valid(sc->class_)) {
        cm_seterr(err, errlen, "screens[%zu].class: '%s' is not theatre or review", i, sc->class_);
        return -1;
    }
    if (sc->display && !co_screen_display_valid(sc->display)) {
        cm_seterr(err, errlen, "screens[%zu].display: '%s' is not projection or led", i,
                  sc->display);
        return -1;
    }
    return 0;
}

/* A NULL field keeps what is stored (COALESCE), so a partial update changes only what it
 * names; a new row gets the defaults. */
#define SITE_UPSERT                                                                                \
    "INSERT INTO sites(code, name, province, city, created_ms, chain)"                             \
    " VALUES($1::text, $2::text, $3::text, $4::text, $5::bigint, $6::text)"                        \
    " ON CONFLICT(code) DO UPDATE SET name = COALESCE($2::text, sites.name),"                      \
    " province = COALESCE($3::text, sites.province), city = COALESCE($4::text, sites.city),"       \
    " chain = COALESCE($6::text, sites.chain)"
#define SCREEN_UPSERT                                                                              \
    "INSERT INTO screens(site, screen, name, class, display, format, spl_ref, updated_ms,"         \
    " updated_by) VALUES($1::text, $2::text, $3::text, COALESCE($4::text, 'theatre'),"             \
    " COALESCE($5::text, 'projection'), $6::text, COALESCE($7::text, '{}'), $8::bigint,"           \
    " $9::text) ON CONFLICT(site, screen) DO UPDATE SET name = COALESCE($3::text, screens.name),"  \
    " class = COALESCE($4::text, screens.class), display = COALESCE($5::text, screens.display),"   \
    " format = COALESCE($6::text, screens.format),"                                                \
    " spl_ref = COALESCE($7::text, screens.spl_ref), updated_ms = $8::bigint,"                     \
    " updated_by = $9::text"

/* Run one statement of a write; 0 or -1 with q->err. */
static int exec_cmd(pg_query *q, const char *what, const char *sql, int n,
                    const char *const *params)
{
    PGresult *res = pg_exec(q, what, sql, n, params);
    if (!res) return -1;
    PQclear(res);
    return 0;
}

int pg_import(co_store *s, const co_site *sites, size_t nsites, const co_screen *screens,
              size_t nscreens, const char *by, char *err, size_t errlen)
{
    for (size_t i = 0; i < nsites; i++)
        if (!sites[i].code || !*sites[i].code) {
            cm_seterr(err, errlen, "sites[%zu]: a code is required", i);
            return -1;
        }
    for (size_t i = 0; i < nscreens; i++)
        if (check_screen(&screens[i], i, err, errlen) < 0) return -1;
    char now[32];
    pg_i64(now, cm_now_ms());
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    if (pg_begin(&q) < 0) goto out;
    for (size_t i = 0; i < nsites; i++) {
        const co_site *t = &sites[i];
        const char *p[6] = {t->code, t->name, t->province, t->city, now, t->chain};
        if (exec_cmd(&q, "site upsert", SITE_UPSERT, 6, p) < 0) goto rollback;
    }
    for (size_t i = 0; i < nscreens; i++) {
        const co_screen *sc = &screens[i];
        /* the screen's site exists even when the import names only screens */
        const char *ps[6] = {sc->site, NULL, NULL, NULL, now, NULL};
        const char *p[9] = {sc->site,   sc->screen,       sc->name, sc->class_, sc->display,
                            sc->format, sc->spl_ref_json, now,      by};
        if (exec_cmd(&q, "site upsert", SITE_UPSERT, 6, ps) < 0 ||
            exec_cmd(&q, "screen upsert", SCREEN_UPSERT, 9, p) < 0)
            goto rollback;
    }
    if (pg_commit(&q) < 0) goto rollback;
    rc = 0;
    goto out;
rollback:
    pg_rollback(&q);
out:
    pg_conn_put(&q);
    return rc;
}

static json_t *screen_row(const PGresult *res, int r)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o}", "site",
                     pg_json_str(res, r, 0), "screen", pg_json_str(res, r, 1), "name",
                     pg_json_str(res, r, 2), "class", pg_json_str(res, r, 3), "display",
                     pg_json_str(res, r, 4), "format", pg_json_str(res, r, 5), "spl_ref",
                     pg_json_obj(res, r, 6), "devices", pg_json_int(res, r, 9), "updated_ms",
                     (json_int_t)pg_int(res, r, 7), "updated_by", pg_json_str(res, r, 8));
}

json_t *pg_screens(co_store *s, const char *site, const char *screen, const co_scope *sc, char *err,
                   size_t errlen)
{
    const char *p[4] = {site, screen};
    char kbuf[4];
    pg_scope_params(sc, p, 2, 3, kbuf);
    return read_rows(
        s, "screens",
        "SELECT c.site, c.screen, c.name, c.class, c.display, c.format, c.spl_ref,"
        " c.updated_ms, c.updated_by,"
        " (SELECT count(*) FROM devices d WHERE d.site = c.site AND d.screen = c.screen)"
        " FROM screens c WHERE ($1::text IS NULL OR c.site = $1::text)"
        " AND ($2::text IS NULL OR c.screen = $2::text)"
        " AND " CO_SCOPE_SQL("c.site", "$3::int",
                             "$4::text") " ORDER BY c.site COLLATE \"C\", c.screen COLLATE \"C\"",
        4, p, screen_row, err, errlen);
}

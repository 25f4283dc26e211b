/* store_pg_compliance.c — the PostgreSQL backend of store.h's compliance part (as
 * store_compliance.c): one day's samples of a few metrics read series by series through a
 * cursor (every series of the metrics, with its samples in the day's partition of samples,
 * chosen by its ts_ms range) merged with those the store's head holds (pg_read_begin), and
 * the per-screen, per-day figures computed from them (compliance.c). Every value is a text
 * parameter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "store_util.h"
#include "store_pg_int.h"

#define MAX_METRICS 16
#define DAY_MS 86400000LL
#define FETCH_ROWS "10000" /* rows per FETCH of the day's cursor */
#define PUT_ROWS 100       /* compliance rows per INSERT statement */

/* The series being read: copies of its row's text columns (rows are freed per FETCH). */
typedef struct cur {
    char site[CM_MAX_NAME + 1], device[CM_MAX_NAME + 1], screen[CM_MAX_NAME + 1];
    char metric[CM_MAX_NAME + 1], labels[4096];
    int has_screen;
    co_head_buf hb; /* its points of the day in the head */
} cur;

/* Copy of column c ("" when NULL) into buf; returns 0 when the cell is NULL, else 1. */
static int col_copy(const PGresult *res, int r, int c, char *buf, size_t len)
{
    const char *t = pg_str(res, r, c);
    snprintf(buf, len, "%s", t ? t : "");
    return t != NULL;
}

/* Hand the points of the current series (sid: its id; -1 none), with those of the day the
 * head holds, to fn (nothing when none); fn's answer, or -1 with err (out of memory). */
static int flush(const pg_query *q, int64_t sid, int64_t day, cur *c, co_points *p,
                 int (*fn)(void *, const co_day_series *), void *ud)
{
    c->hb.n = 0;
    if ((sid >= 0 &&
         co_head_range(q->head, sid, day * DAY_MS, day * DAY_MS + DAY_MS - 1, &c->hb) < 0) ||
        (c->hb.n && co_points_merge(p, c->hb.p, c->hb.n) < 0)) {
        cm_seterr(q->err, q->errlen, "out of memory");
        return -1;
    }
    if (!p->n) return 0;
    co_day_series se = {.site = c->site,
                        .device = c->device,
                        .metric = c->metric,
                        .labels_json = c->labels,
                        .screen = c->has_screen ? c->screen : NULL,
                        .ts_ms = p->ts,
                        .value = p->v,
                        .n = p->n};
    int rc = fn(ud, &se);
    p->n = 0;
    return rc;
}

/* co_store_day_series: fn for every series of the metrics with samples on UTC day `day`. */
int pg_day_series(co_store *s, int64_t day, const char *const *metrics, size_t nmetrics,
                  int (*fn)(void *ud, const co_day_series *se), void *ud, char *err, size_t errlen)
{
    if (!s || !fn || (nmetrics && !metrics) || nmetrics > MAX_METRICS) {
        cm_seterr(err, errlen, "day series: bad arguments");
        return -1;
    }
    if (!nmetrics) return 0;
    char sql[1024];
    /* every series of the metrics (its samples of the day, or one row of NULLs): the head may
     * hold the day's points of a series that has none in the table */
    int off = snprintf(sql, sizeof sql,
                       "DECLARE cm_day_series NO SCROLL CURSOR FOR"
                       " SELECT s.id, x.ts_ms, x.value, d.site, d.device_id, d.screen,"
                       " s.metric, s.labels FROM series s JOIN devices d ON d.id = s.device_ref"
                       " LEFT JOIN samples x ON x.series_id = s.id AND x.ts_ms >= $1::bigint"
                       " AND x.ts_ms < $2::bigint WHERE s.metric IN (");
    for (size_t i = 0; i < nmetrics; i++)
        off += snprintf(sql + off, sizeof sql - (size_t)off, "%s$%zu::text", i ? ", " : "", i + 3);
    snprintf(sql + off, sizeof sql - (size_t)off, ") ORDER BY s.id, x.ts_ms");
    char b[2][32];
    const char *p[2 + MAX_METRICS] = {pg_i64(b[0], day * DAY_MS), pg_i64(b[1], (day + 1) * DAY_MS)};
    for (size_t i = 0; i < nmetrics; i++)
        p[2 + i] = metrics[i];

    pg_query q;
    if (pg_read_begin(&q, s, err, errlen) < 0) return -1;
    int rc = -1, stop = 0;
    co_points pts = {0};
    cur *c = calloc(1, sizeof *c);
    if (!c) {
        cm_seterr(err, errlen, "out of memory");
        goto out;
    }
    PGresult *res = pg_exec(&q, "day series", sql, (int)(2 + nmetrics), p);
    if (!res) goto out;
    PQclear(res);
    int64_t sid = -1;
    for (;;) {
        res = pg_exec(&q, "day series", "FETCH " FETCH_ROWS " FROM cm_day_series", 0, NULL);
        if (!res) goto out;
        int rows = PQntuples(res);
        for (int r = 0; r < rows && !stop; r++) {
            int64_t id = pg_int(res, r, 0);
            if (id != sid) {
                if ((stop = flush(&q, sid, day, c, &pts, fn, ud)) != 0) break;
                sid = id;
                col_copy(res, r, 3, c->site, sizeof c->site);
                col_copy(res, r, 4, c->device, sizeof c->device);
                c->has_screen = col_copy(res, r, 5, c->screen, sizeof c->screen);
                col_copy(res, r, 6, c->metric, sizeof c->metric);
                col_copy(res, r, 7, c->labels, sizeof c->labels);
            }
            if (!PQgetisnull(res, r, 1) &&
                co_points_push(&pts, pg_int(res, r, 1), pg_real(res, r, 2)) < 0) {
                PQclear(res);
                cm_seterr(err, errlen, "out of memory");
                goto out;
            }
        }
        PQclear(res);
        if (stop || rows == 0) break;
    }
    if (!stop) stop = flush(&q, sid, day, c, &pts, fn, ud);
    rc = stop;
out:
    pg_read_end(&q); /* read only: rolled back, which ends the cursor */
    if (c) co_head_buf_free(&c->hb);
    free(c);
    co_points_free(&pts);
    return rc;
}

/* Insert rows[0..n) (n <= PUT_ROWS) of day in one statement; the last of equal keys wins,
 * as when they are written one by one. 0 or -1 with q->err. */
static int put_rows(pg_query *q, const char *day, const char *now, const co_compliance_row *rows,
                    size_t first, size_t n)
{
    char sql[1024 + PUT_ROWS * 96];
    const char *p[2 + 6 * PUT_ROWS];
    char b[PUT_ROWS][3][32];
    p[0] = day;
    p[1] = now;
    int off = snprintf(sql, sizeof sql,
                       "INSERT INTO compliance(site, screen, day, quantity, in_ms, measured_ms,"
                       " updated_ms) SELECT DISTINCT ON (v.site, v.screen, v.quantity) v.site,"
                       " v.screen, $1::text, v.quantity, v.i, v.m, $2::bigint FROM (VALUES ");
    for (size_t k = 0; k < n; k++) {
        const co_compliance_row *r = &rows[first + k];
        int a = 3 + 6 * (int)k;
        off += snprintf(sql + off, sizeof sql - (size_t)off,
                        "%s($%d::bigint, $%d::text, $%d::text, $%d::text, $%d::bigint,"
                        " $%d::bigint)",
                        k ? ", " : "", a, a + 1, a + 2, a + 3, a + 4, a + 5);
        const char **rp = &p[2 + 6 * k];
        rp[0] = pg_i64(b[k][0], (int64_t)(first + k));
        rp[1] = r->site;
        rp[2] = r->screen;
        rp[3] = r->quantity;
        rp[4] = pg_i64(b[k][1], r->in_ms);
        rp[5] = pg_i64(b[k][2], r->measured_ms);
    }
    snprintf(sql + off, sizeof sql - (size_t)off,
             ") v(o, site, screen, quantity, i, m) ORDER BY v.site, v.screen, v.quantity, v.o DESC"
             " ON CONFLICT(site, screen, day, quantity) DO UPDATE SET in_ms = excluded.in_ms,"
             " measured_ms = excluded.measured_ms, updated_ms = excluded.updated_ms");
    PGresult *res = pg_exec(q, "compliance insert", sql, 2 + 6 * (int)n, p);
    if (!res) return -1;
    PQclear(res);
    return 0;
}

/* co_store_compliance_put: replace every figure of day in one transaction. 0 or -1. */
int pg_compliance_put(co_store *s, const char *day, const co_compliance_row *rows, size_t n,
                      int64_t now_ms, char *err, size_t errlen)
{
    if (!s || !day || (n && !rows)) {
        cm_seterr(err, errlen, "compliance put: bad arguments");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (!rows[i].site || !rows[i].screen || !rows[i].quantity) {
            cm_seterr(err, errlen, "compliance put: row %zu without site, screen or quantity", i);
            return -1;
        }
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    char nb[32];
    const char *now = pg_i64(nb, now_ms);
    if (pg_begin(&q) < 0) goto out;
    const char *dp[1] = {day};
    /* two collectors replacing the same day: one after the other (the second one's DELETE
     * then sees the first one's rows), never a mix of both (key space 0x636d6163 'cmac') */
    PGresult *res = pg_exec(&q, "compliance lock",
                            "SELECT pg_advisory_xact_lock(1668112739, hashtext($1::text))", 1, dp);
    if (!res) goto rollback;
    PQclear(res);
    res = pg_exec(&q, "compliance delete", "DELETE FROM compliance WHERE day = $1::text", 1, dp);
    if (!res) goto rollback;
    PQclear(res);
    for (size_t i = 0; i < n; i += PUT_ROWS)
        if (put_rows(&q, day, now, rows, i, n - i < PUT_ROWS ? n - i : PUT_ROWS) < 0) goto rollback;
    if (pg_commit(&q) < 0) goto rollback;
    rc = 0;
    goto out;
rollback:
    pg_rollback(&q);
out:
    pg_conn_put(&q);
    return rc;
}

/* co_store_compliance_rows: fn for every figure of day matching the filters and sc, by site and
 * screen; *updated_ms = when the day's figures were last stored. */
int pg_compliance_rows(co_store *s, const char *day, const char *site, const char *province,
                       const char *city, const co_scope *sc,
                       int (*fn)(void *ud, const co_compliance_row *r, const char *province,
                                 const char *city),
                       void *ud, int64_t *updated_ms, char *err, size_t errlen)
{
    if (!s || !day) {
        cm_seterr(err, errlen, "compliance rows: bad arguments");
        return -1;
    }
    if (updated_ms) *updated_ms = 0;
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    PGresult *res = NULL;
    if (updated_ms) {
        const char *p[1] = {day};
        res = pg_exec(&q, "compliance updated",
                      "SELECT MAX(updated_ms) FROM compliance WHERE day = $1::text", 1, p);
        if (!res) goto out;
        if (PQntuples(res) == 1) *updated_ms = pg_int(res, 0, 0);
        PQclear(res);
        res = NULL;
    }
    if (!fn) {
        rc = 0;
        goto out;
    }
    char kbuf[4];
    const char *p[6] = {day, site, province, city};
    pg_scope_params(sc, p, 4, 5, kbuf);
    res =
        pg_exec(&q, "compliance rows",
                "SELECT c.site, c.screen, c.quantity, c.in_ms, c.measured_ms,"
                " COALESCE(t.province, ''), COALESCE(t.city, '')"
                " FROM compliance c LEFT JOIN sites t ON t.code = c.site"
                " WHERE c.day = $1::text AND ($2::text IS NULL OR c.site = $2::text)"
                " AND ($3::text IS NULL OR t.province = $3::text)"
                " AND ($4::text IS NULL OR t.city = $4::text)"
                " AND " CO_SCOPE_SQL("c.site", "$5::int",
                                     "$6") " ORDER BY c.site COLLATE \"C\", c.screen COLLATE \"C\","
                                           " c.quantity COLLATE \"C\"",
                6, p);
    if (!res) goto out;
    rc = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        co_compliance_row row = {.site = pg_str(res, r, 0),
                                 .screen = pg_str(res, r, 1),
                                 .quantity = pg_str(res, r, 2),
                                 .in_ms = pg_int(res, r, 3),
                                 .measured_ms = pg_int(res, r, 4)};
        const char *pv = pg_str(res, r, 5), *ct = pg_str(res, r, 6);
        if (!row.site || !row.screen || !row.quantity) continue;
        int stop = fn(ud, &row, pv ? pv : "", ct ? ct : "");
        if (stop) {
            rc = stop;
            break;
        }
    }
    PQclear(res);
out:
    pg_conn_put(&q);
    return rc;
}

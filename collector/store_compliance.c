/* store_compliance.c — the SQLite backend of store.h's compliance part: reading one day's
 * samples of a few metrics series by series, and the per-screen, per-day figures computed
 * from them (compliance.c). Every value is bound; the day table's name comes from `chunks`
 * and is checked to be one of ours (samples_YYYYMMDD) before it is used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "store_util.h"
#include "store.h"
#include "store_sqlite_int.h"

#define MAX_METRICS 16
#define DAY_MS 86400000LL

/* 1 when name is samples_ followed by 8 digits. */
static int chunk_name_ok(const char *name)
{
    if (!name || strncmp(name, "samples_", 8) != 0 || strlen(name) != 16) return 0;
    for (int i = 8; i < 16; i++)
        if (name[i] < '0' || name[i] > '9') return 0;
    return 1;
}

/* Copy of column i ("" when NULL) into buf; the screen column keeps NULL as NULL. */
static const char *col_copy(sqlite3_stmt *st, int i, char *buf, size_t len, int keep_null)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t) {
        if (keep_null) return NULL;
        buf[0] = '\0';
        return buf;
    }
    snprintf(buf, len, "%s", (const char *)t);
    return buf;
}

typedef struct cur {
    char site[CM_MAX_NAME + 1], device[CM_MAX_NAME + 1], screen[CM_MAX_NAME + 1];
    char metric[CM_MAX_NAME + 1], labels[4096];
    int has_screen;
} cur;

static int flush(cur *c, co_points *p, int (*fn)(void *, const co_day_series *), void *ud)
{
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

int sqlite_day_series(co_store *s, int64_t day, const char *const *metrics, size_t nmetrics,
                      int (*fn)(void *ud, const co_day_series *se), void *ud, char *err,
                      size_t errlen)
{
    if (!s || !fn || (nmetrics && !metrics) || nmetrics > MAX_METRICS) {
        cm_seterr(err, errlen, "day series: bad arguments");
        return -1;
    }
    if (!nmetrics) return 0;
    sq_query q;
    if (sq_q_begin_head(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    sqlite3_stmt *st = NULL, *pts = NULL;
    co_points p = {0};
    co_head_buf hb = {0};
    cur *c = NULL;
    char name[64] = "";
    if (!(st = sq_q_prepare(&q, "SELECT table_name FROM chunks WHERE day = ?1"))) goto out;
    sqlite3_bind_int64(st, 1, day);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(name, sizeof name, "%s", t ? (const char *)t : "");
    } else if (r != SQLITE_DONE) {
        sq_dberr(q.db, "chunks", err, errlen);
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    char sql[1024];
    if (name[0]) { /* the day's table (none: no samples written out that day) */
        if (!chunk_name_ok(name)) {
            cm_seterr(err, errlen, "day series: unexpected day table name in chunks");
            goto out;
        }
        snprintf(sql, sizeof sql, "SELECT ts_ms, value FROM %s WHERE series_id = ?1 ORDER BY ts_ms",
                 name);
        if (!(pts = sq_q_prepare(&q, sql))) goto out;
    }
    /* every series of the metrics: its points of the day in the table, then in the head */
    int off = snprintf(sql, sizeof sql,
                       "SELECT s.id, d.site, d.device_id, d.screen, s.metric, s.labels"
                       " FROM series s JOIN devices d ON d.id = s.device_ref WHERE s.metric IN (");
    for (size_t i = 0; i < nmetrics; i++)
        off += snprintf(sql + off, sizeof sql - (size_t)off, "%s?%zu", i ? ", " : "", i + 1);
    snprintf(sql + off, sizeof sql - (size_t)off, ") ORDER BY s.id");
    if (!(st = sq_q_prepare(&q, sql))) goto out;
    for (size_t i = 0; i < nmetrics; i++)
        sq_bind_text(st, (int)i + 1, metrics[i]);
    if (!(c = calloc(1, sizeof *c))) goto oom;
    int stop = 0;
    while (!stop && (r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t sid = sqlite3_column_int64(st, 0);
        p.n = 0;
        if (pts) {
            sqlite3_reset(pts);
            sqlite3_bind_int64(pts, 1, sid);
            int pr;
            while ((pr = sqlite3_step(pts)) == SQLITE_ROW)
                if (co_points_push(&p, sqlite3_column_int64(pts, 0),
                                   sqlite3_column_double(pts, 1)) < 0)
                    goto oom;
            if (pr != SQLITE_DONE) {
                sq_dberr(q.db, "day series", err, errlen);
                goto out;
            }
        }
        if (co_head_range(q.head, sid, day * DAY_MS, day * DAY_MS + DAY_MS - 1, &hb) < 0) goto oom;
        for (size_t k = 0; k < hb.n; k++)
            if (co_points_push(&p, hb.p[k].ts_ms, hb.p[k].value) < 0) goto oom;
        if (!p.n) continue;
        col_copy(st, 1, c->site, sizeof c->site, 0);
        col_copy(st, 2, c->device, sizeof c->device, 0);
        c->has_screen = col_copy(st, 3, c->screen, sizeof c->screen, 1) != NULL;
        col_copy(st, 4, c->metric, sizeof c->metric, 0);
        col_copy(st, 5, c->labels, sizeof c->labels, 0);
        stop = flush(c, &p, fn, ud);
    }
    if (!stop && r != SQLITE_DONE) {
        sq_dberr(q.db, "day series", err, errlen);
        goto out;
    }
    rc = stop;
    goto out;
oom:
    cm_seterr(err, errlen, "out of memory");
out:
    free(c);
    sqlite3_finalize(pts);
    sqlite3_finalize(st);
    sq_q_end(&q);
    co_points_free(&p);
    co_head_buf_free(&hb);
    return rc;
}

int sqlite_compliance_put(co_store *s, const char *day, const co_compliance_row *rows, size_t n,
                          int64_t now_ms, char *err, size_t errlen)
{
    if (!s || !day || (n && !rows)) {
        cm_seterr(err, errlen, "compliance put: bad arguments");
        return -1;
    }
    sqlite3 *db = sq_writer_lock(s);
    sqlite3_stmt *del = NULL, *ins = NULL;
    int rc = -1;
    if (sq_exec_sql(db, "BEGIN IMMEDIATE", err, errlen) < 0) goto out;
    if (sqlite3_prepare_v2(db, "DELETE FROM compliance WHERE day = ?1", -1, &del, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO compliance(site, screen, day, quantity, in_ms,"
                           " measured_ms, updated_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                           " ON CONFLICT(site, screen, day, quantity) DO UPDATE SET"
                           " in_ms = excluded.in_ms, measured_ms = excluded.measured_ms,"
                           " updated_ms = excluded.updated_ms",
                           -1, &ins, NULL) != SQLITE_OK) {
        sq_dberr(db, "compliance prepare", err, errlen);
        goto rollback;
    }
    sq_bind_text(del, 1, day);
    if (sq_step_done(db, del, "compliance delete", err, errlen) < 0) goto rollback;
    for (size_t i = 0; i < n; i++) {
        const co_compliance_row *r = &rows[i];
        if (!r->site || !r->screen || !r->quantity) {
            cm_seterr(err, errlen, "compliance put: row %zu without site, screen or quantity", i);
            goto rollback;
        }
        sq_bind_text(ins, 1, r->site);
        sq_bind_text(ins, 2, r->screen);
        sq_bind_text(ins, 3, day);
        sq_bind_text(ins, 4, r->quantity);
        sqlite3_bind_int64(ins, 5, r->in_ms);
        sqlite3_bind_int64(ins, 6, r->measured_ms);
        sqlite3_bind_int64(ins, 7, now_ms);
        if (sq_step_done(db, ins, "compliance insert", err, errlen) < 0) goto rollback;
    }
    if (sq_exec_sql(db, "COMMIT", err, errlen) < 0) goto rollback;
    rc = 0;
    goto out;
rollback:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    sq_writer_unlock(s);
    return rc;
}

int sqlite_compliance_rows(co_store *s, const char *day, const char *site, const char *province,
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
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    sqlite3_stmt *st = NULL;
    if (updated_ms) {
        if (!(st = sq_q_prepare(&q, "SELECT MAX(updated_ms) FROM compliance WHERE day = ?1")))
            goto out;
        sq_bind_text(st, 1, day);
        if (sqlite3_step(st) == SQLITE_ROW) *updated_ms = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        st = NULL;
    }
    if (!fn) {
        rc = 0;
        goto out;
    }
    if (!(st = sq_q_prepare(
              &q,
              "SELECT c.site, c.screen, c.quantity, c.in_ms, c.measured_ms,"
              " COALESCE(t.province, ''), COALESCE(t.city, '')"
              " FROM compliance c LEFT JOIN sites t ON t.code = c.site"
              " WHERE c.day = ?1 AND (?2 IS NULL OR c.site = ?2)"
              " AND (?3 IS NULL OR t.province = ?3)"
              " AND (?4 IS NULL OR t.city = ?4)"
              " AND " CO_SCOPE_SQL("c.site", "?5", "?6") " ORDER BY c.site, c.screen, c.quantity")))
        goto out;
    sq_bind_scope(st, 5, 6, sc);
    sq_bind_text(st, 1, day);
    sq_bind_text(st, 2, site);
    sq_bind_text(st, 3, province);
    sq_bind_text(st, 4, city);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        co_compliance_row row = {.site = (const char *)sqlite3_column_text(st, 0),
                                 .screen = (const char *)sqlite3_column_text(st, 1),
                                 .quantity = (const char *)sqlite3_column_text(st, 2),
                                 .in_ms = sqlite3_column_int64(st, 3),
                                 .measured_ms = sqlite3_column_int64(st, 4)};
        const char *pv = (const char *)sqlite3_column_text(st, 5);
        const char *ct = (const char *)sqlite3_column_text(st, 6);
        if (!row.site || !row.screen || !row.quantity) continue;
        int stop = fn(ud, &row, pv ? pv : "", ct ? ct : "");
        if (stop) {
            rc = stop;
            goto out;
        }
    }
    if (r != SQLITE_DONE) {
        sq_dberr(q.db, "compliance rows", err, errlen);
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    sq_q_end(&q);
    return rc;
}

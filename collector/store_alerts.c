/* store_alerts.c — the SQLite backend of store.h's alerts part: alert rows and their history,
 * acknowledgements, silences, and the notification log. Transitions are few (a judgement
 * changes rarely), so statements are prepared per call; every value is bound. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "store.h"
#include "store_sqlite_int.h"
#include "timeutil.h"

#define SEV_RANK_SQL(col) "(CASE " col " WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 ELSE 0 END)"

static int sev_rank(const char *s)
{
    if (!s) return 0;
    if (!strcmp(s, "critical")) return 2;
    return !strcmp(s, "warning");
}

static void bind_real(sqlite3_stmt *st, int i, double v)
{
    if (isnan(v) || isinf(v))
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_double(st, i, v);
}

enum { A_FIND, A_INSERT, A_UPDATE, A_RESOLVE, A_DELETE, A_DELETE_HIST, A_HIST, A_SILENCED, A_N };

static const char *const A_SQL[A_N] = {
    [A_FIND] = "SELECT id, state, severity FROM alerts WHERE rule = ?1 AND site = ?2 AND"
               " device = ?3 AND labels = ?4 AND state <> 'resolved'",
    [A_INSERT] = "INSERT INTO alerts(rule, site, screen, device, labels, severity, state, value,"
                 " threshold, text, started_ms, firing_ms, updated_ms)"
                 " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?11)",
    [A_UPDATE] = "UPDATE alerts SET state = ?2, severity = ?3, value = ?4, threshold = ?5,"
                 " text = COALESCE(?6, text), firing_ms = CASE WHEN ?2 = 'firing' THEN"
                 " COALESCE(firing_ms, ?7) ELSE firing_ms END, updated_ms = ?7 WHERE id = ?1",
    [A_RESOLVE] = "UPDATE alerts SET state = 'resolved', value = ?2, threshold = ?3,"
                  " resolved_ms = ?4, updated_ms = ?4 WHERE id = ?1",
    [A_DELETE] = "DELETE FROM alerts WHERE id = ?1",
    [A_DELETE_HIST] = "DELETE FROM alert_history WHERE alert_id = ?1",
    [A_HIST] = "INSERT INTO alert_history(alert_id, ts_ms, state, severity, value, threshold, by,"
               " comment) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [A_SILENCED] = "SELECT 1 FROM silences WHERE site = ?1 AND (screen IS NULL OR screen = ?2)"
                   " AND (device IS NULL OR device = ?3) AND (rule IS NULL OR rule = ?4)"
                   " AND from_ms <= ?5 AND until_ms > ?5 LIMIT 1",
};

static int hist(sqlite3 *db, sqlite3_stmt *st, int64_t id, int64_t ts, const char *state,
                const char *sev, double value, double thr, const char *by, const char *comment,
                char *err, size_t errlen)
{
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, ts);
    sq_bind_text(st, 3, state);
    sq_bind_text(st, 4, sev);
    bind_real(st, 5, value);
    bind_real(st, 6, thr);
    sq_bind_text(st, 7, by);
    sq_bind_text(st, 8, comment);
    return sq_step_done(db, st, "alert history", err, errlen);
}

/* Apply one change with the prepared statements. */
static int apply1(sqlite3 *db, sqlite3_stmt **st, const co_alert_change *c, int64_t now_ms,
                  co_alert_outcome *o, char *err, size_t errlen)
{
    *o = (co_alert_outcome){0};
    const char *scr = c->screen ? c->screen : "";
    sqlite3_stmt *f = st[A_FIND];
    sq_bind_text(f, 1, c->rule);
    sq_bind_text(f, 2, c->site);
    sq_bind_text(f, 3, c->device);
    sq_bind_text(f, 4, c->labels);
    int rc = sqlite3_step(f);
    int64_t id = 0;
    char prev_state[16] = "", prev_sev[16] = "";
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(f, 0);
        snprintf(prev_state, sizeof prev_state, "%s", (const char *)sqlite3_column_text(f, 1));
        snprintf(prev_sev, sizeof prev_sev, "%s", (const char *)sqlite3_column_text(f, 2));
    }
    sqlite3_reset(f);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sq_dberr(db, "alert find", err, errlen);

    int due = 0;
    if (!strcmp(c->to, "pending") || !strcmp(c->to, "firing")) {
        int firing = !strcmp(c->to, "firing");
        if (!id) {
            sqlite3_stmt *x = st[A_INSERT];
            sq_bind_text(x, 1, c->rule);
            sq_bind_text(x, 2, c->site);
            sq_bind_text(x, 3, scr);
            sq_bind_text(x, 4, c->device);
            sq_bind_text(x, 5, c->labels);
            sq_bind_text(x, 6, c->severity);
            sq_bind_text(x, 7, c->to);
            bind_real(x, 8, c->value);
            bind_real(x, 9, c->threshold);
            sq_bind_text(x, 10, c->text);
            sqlite3_bind_int64(x, 11, c->ts_ms);
            if (firing)
                sqlite3_bind_int64(x, 12, c->ts_ms);
            else
                sqlite3_bind_null(x, 12);
            if (sq_step_done(db, x, "alert insert", err, errlen) < 0) return -1;
            id = sqlite3_last_insert_rowid(db);
            due = firing;
        } else if (!firing && !strcmp(prev_state, "firing")) {
            /* a judge that has not learnt yet that this alert fires (another collector
             * sharing the store fired it) starts it as pending: it stays firing, unchanged */
            o->id = id;
            return 0;
        } else {
            sqlite3_stmt *u = st[A_UPDATE];
            sqlite3_bind_int64(u, 1, id);
            sq_bind_text(u, 2, c->to);
            sq_bind_text(u, 3, c->severity);
            bind_real(u, 4, c->value);
            bind_real(u, 5, c->threshold);
            sq_bind_text(u, 6, c->text);
            sqlite3_bind_int64(u, 7, c->ts_ms);
            if (sq_step_done(db, u, "alert update", err, errlen) < 0) return -1;
            due = firing && (strcmp(prev_state, "firing") || strcmp(prev_sev, c->severity));
        }
    } else if (!strcmp(c->to, "resolved")) {
        if (!id) return 0; /* nothing open: nothing to resolve */
        sqlite3_stmt *u = st[A_RESOLVE];
        sqlite3_bind_int64(u, 1, id);
        bind_real(u, 2, c->value);
        bind_real(u, 3, c->threshold);
        sqlite3_bind_int64(u, 4, c->ts_ms);
        if (sq_step_done(db, u, "alert resolve", err, errlen) < 0) return -1;
        due = !strcmp(prev_state, "firing");
    } else if (!strcmp(c->to, "inactive")) {
        if (!id) return 0;
        if (!strcmp(prev_state, "pending")) {
            sqlite3_bind_int64(st[A_DELETE_HIST], 1, id);
            sqlite3_bind_int64(st[A_DELETE], 1, id);
            if (sq_step_done(db, st[A_DELETE_HIST], "alert delete", err, errlen) < 0 ||
                sq_step_done(db, st[A_DELETE], "alert delete", err, errlen) < 0)
                return -1;
            return 0;
        }
        /* a firing alert going inactive (rule disabled, say) is resolved */
        sqlite3_stmt *u = st[A_RESOLVE];
        sqlite3_bind_int64(u, 1, id);
        bind_real(u, 2, c->value);
        bind_real(u, 3, c->threshold);
        sqlite3_bind_int64(u, 4, c->ts_ms);
        if (sq_step_done(db, u, "alert resolve", err, errlen) < 0) return -1;
        due = !strcmp(prev_state, "firing");
    } else {
        cm_seterr(err, errlen, "alert change to unknown state '%s'", c->to);
        return -1;
    }
    o->id = id;
    const char *hstate = !strcmp(c->to, "inactive") ? "resolved" : c->to;
    if (hist(db, st[A_HIST], id, c->ts_ms, hstate, c->severity, c->value, c->threshold, NULL, NULL,
             err, errlen) < 0)
        return -1;
    if (due) {
        sqlite3_stmt *q = st[A_SILENCED];
        sq_bind_text(q, 1, c->site);
        sq_bind_text(q, 2, scr);
        sq_bind_text(q, 3, c->device);
        sq_bind_text(q, 4, c->rule);
        sqlite3_bind_int64(q, 5, now_ms);
        int r = sqlite3_step(q);
        sqlite3_reset(q);
        if (r != SQLITE_ROW && r != SQLITE_DONE) return sq_dberr(db, "silence", err, errlen);
        o->silenced = r == SQLITE_ROW;
        o->notify = !o->silenced;
    }
    return 0;
}

int sqlite_alerts_apply(co_store *s, const co_alert_change *c, size_t n, int64_t now_ms,
                        co_alert_outcome *out, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (!c[i].rule || !c[i].site || !c[i].device || !c[i].labels || !c[i].to ||
            !c[i].severity) {
            cm_seterr(err, errlen,
                      "alert change %zu: rule, site, device, labels, state and "
                      "severity are required",
                      i);
            return -1;
        }
    if (n == 0) return 0;
    sqlite3_stmt *st[A_N] = {0};
    sqlite3 *db = sq_writer_lock(s);
    int rc = -1;
    for (int i = 0; i < A_N; i++)
        if (sq_prepare(db, A_SQL[i], &st[i], err, errlen) < 0) goto out;
    if (sq_exec_sql(db, "BEGIN IMMEDIATE", err, errlen) < 0) goto out;
    for (size_t i = 0; i < n; i++)
        if (apply1(db, st, &c[i], now_ms, &out[i], err, errlen) < 0) {
            sq_exec_sql(db, "ROLLBACK", NULL, 0);
            goto out;
        }
    if (sq_exec_sql(db, "COMMIT", err, errlen) < 0) {
        sq_exec_sql(db, "ROLLBACK", NULL, 0);
        goto out;
    }
    rc = 0;
out:
    for (int i = 0; i < A_N; i++)
        sqlite3_finalize(st[i]);
    sq_writer_unlock(s);
    return rc;
}

/* ---------------------------------------------------------------- reading alerts */

#define ALERT_COLS                                                                                 \
    "a.id, a.rule, a.site, a.screen, a.device, a.labels, a.severity, a.state, a.value,"            \
    " a.threshold, a.text, a.started_ms, a.firing_ms, a.resolved_ms, a.updated_ms, a.ack_by,"      \
    " a.ack_comment, a.ack_ms, EXISTS(SELECT 1 FROM silences x WHERE x.site = a.site AND"          \
    " (x.screen IS NULL OR x.screen = a.screen) AND (x.device IS NULL OR x.device = a.device)"     \
    " AND (x.rule IS NULL OR x.rule = a.rule) AND x.from_ms <= ?9 AND x.until_ms > ?9)"

static json_t *col_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null()
                                                     : json_real(sqlite3_column_double(st, i));
}

static json_t *alert_row(sqlite3_stmt *st)
{
    json_t *labels = NULL;
    const unsigned char *t = sqlite3_column_text(st, 5);
    if (t) labels = json_loads((const char *)t, 0, NULL);
    if (!json_is_object(labels)) {
        json_decref(labels);
        labels = json_object();
    }
    json_t *ack = json_null();
    if (sqlite3_column_type(st, 15) != SQLITE_NULL)
        ack = json_pack("{s:o, s:o, s:o}", "by", sq_col_json_str(st, 15), "comment",
                        sq_col_json_str(st, 16), "ts_ms", sq_col_json_int(st, 17));
    return json_pack(
        "{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b}",
        "id", (json_int_t)sqlite3_column_int64(st, 0), "rule", sq_col_json_str(st, 1), "site",
        sq_col_json_str(st, 2), "screen", sq_col_json_str(st, 3), "device", sq_col_json_str(st, 4),
        "labels", labels, "severity", sq_col_json_str(st, 6), "state", sq_col_json_str(st, 7),
        "value", col_real(st, 8), "threshold", col_real(st, 9), "text", sq_col_json_str(st, 10),
        "started_ms", sq_col_json_int(st, 11), "firing_ms", sq_col_json_int(st, 12), "resolved_ms",
        sq_col_json_int(st, 13), "updated_ms", sq_col_json_int(st, 14), "ack", ack, "silenced",
        sqlite3_column_int(st, 18));
}

/* The filters of co_store_alerts; the scope is ?10 and ?11 (ALERT_COLS uses ?9). */
#define ALERTS_WHERE                                                                               \
    " WHERE (?1 IS NULL OR a.site = ?1) AND (?2 IS NULL OR a.screen = ?2)"                         \
    " AND (?3 IS NULL OR a.device = ?3) AND (?4 IS NULL OR a.rule = ?4)"                           \
    " AND (?6 IS NULL OR a.state = ?6 OR (?6 = 'active' AND a.state <> 'resolved'))"               \
    " AND " SEV_RANK_SQL("a.severity") " >= ?5 AND " CO_SCOPE_SQL("a.site", "?10", "?11")

json_t *sqlite_alerts(co_store *s, const co_alert_filter *f, const co_scope *sc, char *err,
                      size_t errlen)
{
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return NULL;
    json_t *res = NULL;
    sqlite3_stmt *st = sq_q_prepare(&q, "SELECT " ALERT_COLS " FROM alerts a" ALERTS_WHERE
                                        " ORDER BY a.updated_ms DESC, a.id DESC LIMIT ?7");
    if (st) {
        sq_bind_scope(st, 10, 11, sc);
        sq_bind_text(st, 1, f->site);
        sq_bind_text(st, 2, f->screen);
        sq_bind_text(st, 3, f->device);
        sq_bind_text(st, 4, f->rule);
        sqlite3_bind_int(st, 5, sev_rank(f->min_severity));
        sq_bind_text(st, 6, f->state);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)(f->limit ? f->limit : 1000));
        sqlite3_bind_int64(st, 9, cm_now_ms());
        res = sq_q_rows(&q, st, alert_row);
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return res;
}

static json_t *history_row(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "ts_ms", sq_col_json_int(st, 0),
                     "state", sq_col_json_str(st, 1), "severity", sq_col_json_str(st, 2), "value",
                     col_real(st, 3), "threshold", col_real(st, 4), "by", sq_col_json_str(st, 5),
                     "comment", sq_col_json_str(st, 6));
}

json_t *sqlite_alert(co_store *s, int64_t id, const co_scope *sc, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return NULL;
    json_t *res = NULL, *rows = NULL, *hist_rows = NULL;
    sqlite3_stmt *st = sq_q_prepare(&q, "SELECT " ALERT_COLS " FROM alerts a WHERE a.id = ?1"
                                        " AND " CO_SCOPE_SQL("a.site", "?10", "?11"));
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        sq_bind_scope(st, 10, 11, sc);
        sqlite3_bind_int64(st, 9, cm_now_ms());
        rows = sq_q_rows(&q, st, alert_row);
    }
    sqlite3_finalize(st);
    if (rows && json_array_size(rows) == 1) {
        st = sq_q_prepare(&q, "SELECT ts_ms, state, severity, value, threshold, by, comment"
                              " FROM alert_history WHERE alert_id = ?1 ORDER BY ts_ms, rowid");
        if (st) {
            sqlite3_bind_int64(st, 1, id);
            hist_rows = sq_q_rows(&q, st, history_row);
        }
        sqlite3_finalize(st);
        if (hist_rows) {
            res = json_incref(json_array_get(rows, 0));
            json_object_set_new(res, "history", hist_rows);
        }
    }
    json_decref(rows);
    sq_q_end(&q);
    return res;
}

int sqlite_alert_ack(co_store *s, int64_t id, const char *by, const char *comment,
                     const co_scope *sc, int64_t now_ms, char *err, size_t errlen)
{
    if (!by || !*by) {
        cm_seterr(err, errlen, "an acknowledgement needs who");
        return -1;
    }
    sqlite3 *db = sq_writer_lock(s);
    sqlite3_stmt *u = NULL, *h = NULL;
    int rc = -1;
    if (sq_prepare(db,
                   "UPDATE alerts SET ack_by = ?2, ack_comment = ?3, ack_ms = ?4 WHERE id = ?1"
                   " AND " CO_SCOPE_SQL("site", "?5", "?6"),
                   &u, err, errlen) < 0 ||
        sq_prepare(db, A_SQL[A_HIST], &h, err, errlen) < 0 ||
        sq_exec_sql(db, "BEGIN IMMEDIATE", err, errlen) < 0)
        goto out;
    sqlite3_bind_int64(u, 1, id);
    sq_bind_text(u, 2, by);
    sq_bind_text(u, 3, comment);
    sqlite3_bind_int64(u, 4, now_ms);
    sq_bind_scope(u, 5, 6, sc);
    if (sq_step_done(db, u, "alert ack", err, errlen) < 0) goto rollback;
    if (sqlite3_changes(db) == 0) {
        sq_exec_sql(db, "ROLLBACK", NULL, 0);
        rc = 0;
        goto out;
    }
    if (hist(db, h, id, now_ms, "acknowledged", NULL, NAN, NAN, by, comment, err, errlen) < 0)
        goto rollback;
    if (sq_exec_sql(db, "COMMIT", err, errlen) < 0) goto rollback;
    rc = 1;
    goto out;
rollback:
    sq_exec_sql(db, "ROLLBACK", NULL, 0);
out:
    sqlite3_finalize(u);
    sqlite3_finalize(h);
    sq_writer_unlock(s);
    return rc;
}

/* ---------------------------------------------------------------- silences */

int sqlite_silence_add(co_store *s, const co_silence *sl, int64_t *id, char *err, size_t errlen)
{
    if (!sl->site || !*sl->site || !sl->by || !*sl->by || sl->until_ms <= sl->from_ms) {
        cm_seterr(err, errlen, "a silence needs a site, who, and from < until");
        return -1;
    }
    sqlite3 *db = sq_writer_lock(s);
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sq_prepare(
            db,
            "INSERT INTO silences(site, screen, device, rule, from_ms, until_ms, by, comment,"
            " created_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            &st, err, errlen) == 0) {
        sq_bind_text(st, 1, sl->site);
        sq_bind_text(st, 2, sl->screen);
        sq_bind_text(st, 3, sl->device);
        sq_bind_text(st, 4, sl->rule);
        sqlite3_bind_int64(st, 5, sl->from_ms);
        sqlite3_bind_int64(st, 6, sl->until_ms);
        sq_bind_text(st, 7, sl->by);
        sq_bind_text(st, 8, sl->comment);
        sqlite3_bind_int64(st, 9, cm_now_ms());
        if (sq_step_done(db, st, "silence add", err, errlen) == 0) {
            *id = sqlite3_last_insert_rowid(db);
            rc = 0;
        }
    }
    sqlite3_finalize(st);
    sq_writer_unlock(s);
    return rc;
}

static json_t *silence_row(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                     (json_int_t)sqlite3_column_int64(st, 0), "site", sq_col_json_str(st, 1),
                     "screen", sq_col_json_str(st, 2), "device", sq_col_json_str(st, 3), "rule",
                     sq_col_json_str(st, 4), "from_ms", sq_col_json_int(st, 5), "until_ms",
                     sq_col_json_int(st, 6), "by", sq_col_json_str(st, 7), "comment",
                     sq_col_json_str(st, 8));
}

json_t *sqlite_silences(co_store *s, const char *site, int64_t now_ms, const co_scope *sc,
                        char *err, size_t errlen)
{
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return NULL;
    json_t *res = NULL;
    sqlite3_stmt *st = sq_q_prepare(
        &q, "SELECT id, site, screen, device, rule, from_ms, until_ms, by, comment FROM silences"
            " WHERE (?1 IS NULL OR site = ?1) AND (?2 = 0 OR until_ms > ?2)"
            " AND " CO_SCOPE_SQL("site", "?3", "?4") " ORDER BY from_ms DESC, id DESC LIMIT 10000");
    if (st) {
        sq_bind_text(st, 1, site);
        sqlite3_bind_int64(st, 2, now_ms);
        sq_bind_scope(st, 3, 4, sc);
        res = sq_q_rows(&q, st, silence_row);
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return res;
}

int sqlite_alerts_active(co_store *s, int (*fn)(void *ud, const co_alert_row *a), void *ud,
                         char *err, size_t errlen)
{
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    sqlite3_stmt *st = sq_q_prepare(
        &q, "SELECT rule, site, screen, device, labels, state, severity, value, threshold,"
            " started_ms, firing_ms, updated_ms FROM alerts WHERE state <> 'resolved' ORDER BY id");
    if (st) {
        int r;
        rc = 0;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            co_alert_row a = {
                .rule = (const char *)sqlite3_column_text(st, 0),
                .site = (const char *)sqlite3_column_text(st, 1),
                .screen = (const char *)sqlite3_column_text(st, 2),
                .device = (const char *)sqlite3_column_text(st, 3),
                .labels = (const char *)sqlite3_column_text(st, 4),
                .state = (const char *)sqlite3_column_text(st, 5),
                .severity = (const char *)sqlite3_column_text(st, 6),
                .value =
                    sqlite3_column_type(st, 7) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 7),
                .threshold =
                    sqlite3_column_type(st, 8) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 8),
                .started_ms = sqlite3_column_int64(st, 9),
                .firing_ms = sqlite3_column_int64(st, 10),
                .updated_ms = sqlite3_column_int64(st, 11),
            };
            if (fn(ud, &a)) break;
        }
        if (r != SQLITE_ROW && r != SQLITE_DONE) rc = sq_dberr(q.db, "active alerts", err, errlen);
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return rc;
}

/* ---------------------------------------------------------------- notification log */

int sqlite_notification_add(co_store *s, const char *id, int64_t alert_id, const char *kind,
                            const char *site, const char *payload, const char *const *targets,
                            size_t ntargets, int64_t now_ms, char *err, size_t errlen)
{
    sqlite3 *db = sq_writer_lock(s);
    sqlite3_stmt *n = NULL, *d = NULL;
    int rc = -1;
    if (sq_prepare(db,
                   "INSERT INTO notifications(id, alert_id, kind, site, payload, created_ms)"
                   " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO NOTHING",
                   &n, err, errlen) < 0 ||
        sq_prepare(db,
                   "INSERT INTO deliveries(id, target, state, attempts, updated_ms)"
                   " VALUES(?1, ?2, 'pending', 0, ?3) ON CONFLICT(id, target) DO NOTHING",
                   &d, err, errlen) < 0 ||
        sq_exec_sql(db, "BEGIN IMMEDIATE", err, errlen) < 0)
        goto out;
    sq_bind_text(n, 1, id);
    sqlite3_bind_int64(n, 2, alert_id);
    sq_bind_text(n, 3, kind);
    sq_bind_text(n, 4, site);
    sq_bind_text(n, 5, payload);
    sqlite3_bind_int64(n, 6, now_ms);
    if (sq_step_done(db, n, "notification add", err, errlen) < 0) goto rollback;
    if (sqlite3_changes(db) == 0) {
        sq_exec_sql(db, "ROLLBACK", NULL, 0);
        rc = 0;
        goto out;
    }
    for (size_t i = 0; i < ntargets; i++) {
        sq_bind_text(d, 1, id);
        sq_bind_text(d, 2, targets[i]);
        sqlite3_bind_int64(d, 3, now_ms);
        if (sq_step_done(db, d, "delivery add", err, errlen) < 0) goto rollback;
    }
    if (sq_exec_sql(db, "COMMIT", err, errlen) < 0) goto rollback;
    rc = 1;
    goto out;
rollback:
    sq_exec_sql(db, "ROLLBACK", NULL, 0);
out:
    sqlite3_finalize(n);
    sqlite3_finalize(d);
    sq_writer_unlock(s);
    return rc;
}

int sqlite_delivery_update(co_store *s, const char *id, const char *target, unsigned attempts,
                           long http_status, const char *error, const char *state, int64_t now_ms,
                           char *err, size_t errlen)
{
    sqlite3 *db = sq_writer_lock(s);
    sqlite3_stmt *st = NULL;
    int rc = -1;
    /* a delivered row never goes back to pending or failed (a late report changes nothing) */
    if (sq_prepare(
            db,
            "INSERT INTO deliveries(id, target, state, attempts, http_status, error, updated_ms)"
            " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id, target) DO UPDATE SET"
            " state = ?3, attempts = max(attempts, ?4), http_status = ?5, error = ?6,"
            " updated_ms = ?7 WHERE state <> 'delivered'",
            &st, err, errlen) == 0) {
        sq_bind_text(st, 1, id);
        sq_bind_text(st, 2, target);
        sq_bind_text(st, 3, state);
        sqlite3_bind_int64(st, 4, attempts);
        if (http_status)
            sqlite3_bind_int64(st, 5, http_status);
        else
            sqlite3_bind_null(st, 5);
        sq_bind_text(st, 6, error);
        sqlite3_bind_int64(st, 7, now_ms);
        rc = sq_step_done(db, st, "delivery update", err, errlen);
    }
    sqlite3_finalize(st);
    sq_writer_unlock(s);
    return rc;
}

static json_t *delivery_row(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "target", sq_col_json_str(st, 0), "state",
                     sq_col_json_str(st, 1), "attempts", sq_col_json_int(st, 2), "http_status",
                     sq_col_json_int(st, 3), "error", sq_col_json_str(st, 4), "updated_ms",
                     sq_col_json_int(st, 5));
}

static json_t *notification_row(sqlite3_stmt *st)
{
    json_t *payload = NULL;
    const unsigned char *t = sqlite3_column_text(st, 4);
    if (t) payload = json_loads((const char *)t, 0, NULL);
    if (!payload) payload = json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "id", sq_col_json_str(st, 0), "alert_id",
                     sq_col_json_int(st, 1), "kind", sq_col_json_str(st, 2), "site",
                     sq_col_json_str(st, 3), "payload", payload, "created_ms",
                     sq_col_json_int(st, 5));
}

json_t *sqlite_notifications(co_store *s, const char *site, int64_t alert_id, size_t limit,
                             const co_scope *sc, char *err, size_t errlen)
{
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return NULL;
    json_t *res = NULL;
    sqlite3_stmt *st = sq_q_prepare(
        &q,
        "SELECT id, alert_id, kind, site, payload, created_ms FROM notifications"
        " WHERE (?1 IS NULL OR site = ?1) AND (?2 = 0 OR alert_id = ?2)"
        " AND " CO_SCOPE_SQL("site", "?4", "?5") " ORDER BY created_ms DESC, rowid DESC LIMIT ?3");
    sqlite3_stmt *d = sq_q_prepare(&q, "SELECT target, state, attempts, http_status, error,"
                                       " updated_ms FROM deliveries WHERE id = ?1 ORDER BY target");
    if (st && d) {
        sq_bind_text(st, 1, site);
        sqlite3_bind_int64(st, 2, alert_id);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)(limit ? limit : 1000));
        sq_bind_scope(st, 4, 5, sc);
        res = sq_q_rows(&q, st, notification_row);
        for (size_t i = 0; res && i < json_array_size(res); i++) {
            json_t *n = json_array_get(res, i);
            sqlite3_reset(d);
            sq_bind_text(d, 1, json_string_value(json_object_get(n, "id")));
            json_t *dl = sq_q_rows(&q, d, delivery_row);
            if (!dl) {
                json_decref(res);
                res = NULL;
                break;
            }
            json_object_set_new(n, "deliveries", dl);
        }
    }
    sqlite3_finalize(st);
    sqlite3_finalize(d);
    sq_q_end(&q);
    return res;
}

int sqlite_deliveries_pending(co_store *s, int64_t since_ms,
                              int (*fn)(void *ud, const char *id, const char *target,
                                        const char *payload, unsigned attempts, int64_t created_ms),
                              void *ud, char *err, size_t errlen)
{
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    sqlite3_stmt *st = sq_q_prepare(
        &q, "SELECT d.id, d.target, n.payload, d.attempts, n.created_ms FROM deliveries d"
            " JOIN notifications n ON n.id = d.id WHERE d.state = 'pending' AND"
            " n.created_ms >= ?1 ORDER BY n.created_ms, n.rowid");
    if (st) {
        sqlite3_bind_int64(st, 1, since_ms);
        int r;
        rc = 0;
        while ((r = sqlite3_step(st)) == SQLITE_ROW)
            if (fn(ud, (const char *)sqlite3_column_text(st, 0),
                   (const char *)sqlite3_column_text(st, 1),
                   (const char *)sqlite3_column_text(st, 2), (unsigned)sqlite3_column_int64(st, 3),
                   sqlite3_column_int64(st, 4)))
                break;
        if (r != SQLITE_ROW && r != SQLITE_DONE)
            rc = sq_dberr(q.db, "pending deliveries", err, errlen);
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return rc;
}

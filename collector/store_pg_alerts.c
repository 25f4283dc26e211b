/* store_pg_alerts.c — the PostgreSQL backend of store.h's alerts part (as store_alerts.c):
 * alert rows and their history, acknowledgements, silences, and the notification log. Every
 * value is a text parameter; a change's transaction holds a lock on the alert's identity
 * (several collectors may judge at once). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "store_pg_int.h"
#include "timeutil.h"

#define SEV_RANK_SQL(col) "(CASE " col " WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 ELSE 0 END)"

/* The rank of a severity name (info or unknown 0, warning 1, critical 2). */
static int sev_rank(const char *s)
{
    if (!s) return 0;
    if (!strcmp(s, "critical")) return 2;
    return !strcmp(s, "warning");
}

/* A real as a parameter: NULL for NaN and infinities (as the SQLite backend). */
static const char *real_param(char *buf, double v)
{
    return isfinite(v) ? pg_f64(buf, v) : NULL;
}

/* 1 when the last command of res changed at least one row. */
static int changed(PGresult *res)
{
    const char *t = PQcmdTuples(res);
    return t && *t && strcmp(t, "0") != 0;
}

/* A JSON text column parsed as jansson's json_loads does (object or array), or NULL. */
static json_t *col_json(const PGresult *res, int r, int c)
{
    const char *t = pg_str(res, r, c);
    return t ? json_loads(t, 0, NULL) : NULL;
}

/* Serialises the transactions of collectors changing the same alert (rule, site, device,
 * labels) until they end, so the second one's FIND sees the first one's row (no unique
 * violation on alerts_open). A statement of its own: a later statement's snapshot sees what
 * the holder committed. Key space (0x636d616c 'cmal', hash) is this file's. */
static const char *const SQL_LOCK =
    "SELECT pg_advisory_xact_lock(1668112748, hashtext(concat_ws(chr(31), $1::text, $2::text,"
    " $3::text, $4::text)))";
static const char *const SQL_FIND =
    "SELECT id, state, severity FROM alerts WHERE rule = $1::text AND site = $2::text AND"
    " device = $3::text AND labels = $4::text AND state <> 'resolved' FOR UPDATE";
static const char *const SQL_INSERT =
    "INSERT INTO alerts(rule, site, screen, device, labels, severity, state, value, threshold,"
    " text, started_ms, firing_ms, updated_ms) VALUES($1::text, $2::text, $3::text, $4::text,"
    " $5::text, $6::text, $7::text, $8::float8, $9::float8, $10::text, $11::bigint,"
    " $12::bigint, $11::bigint) RETURNING id";
static const char *const SQL_UPDATE =
    "UPDATE alerts SET state = $2::text, severity = $3::text, value = $4::float8,"
    " threshold = $5::float8, text = COALESCE($6::text, text), firing_ms = CASE WHEN"
    " $2::text = 'firing' THEN COALESCE(firing_ms, $7::bigint) ELSE firing_ms END,"
    " updated_ms = $7::bigint WHERE id = $1::bigint";
static const char *const SQL_RESOLVE =
    "UPDATE alerts SET state = 'resolved', value = $2::float8, threshold = $3::float8,"
    " resolved_ms = $4::bigint, updated_ms = $4::bigint WHERE id = $1::bigint";
static const char *const SQL_HIST =
    "INSERT INTO alert_history(alert_id, ts_ms, state, severity, value, threshold, \"by\","
    " comment) VALUES($1::bigint, $2::bigint, $3::text, $4::text, $5::float8, $6::float8,"
    " $7::text, $8::text)";
static const char *const SQL_SILENCED =
    "SELECT 1 FROM silences WHERE site = $1::text AND (screen IS NULL OR screen = $2::text)"
    " AND (device IS NULL OR device = $3::text) AND (rule IS NULL OR rule = $4::text)"
    " AND from_ms <= $5::bigint AND until_ms > $5::bigint LIMIT 1";

/* Run a statement whose result is not needed. 0 or -1 with q->err. */
static int run(pg_query *q, const char *what, const char *sql, int n, const char *const *p)
{
    PGresult *res = pg_exec(q, what, sql, n, p);
    if (!res) return -1;
    PQclear(res);
    return 0;
}

/* One row of alert_history. 0 or -1. */
static int hist(pg_query *q, int64_t id, int64_t ts, const char *state, const char *sev,
                double value, double thr, const char *by, const char *comment)
{
    char b[4][32];
    const char *p[8] = {pg_i64(b[0], id),        pg_i64(b[1], ts),      state, sev,
                        real_param(b[2], value), real_param(b[3], thr), by,    comment};
    return run(q, "alert history", SQL_HIST, 8, p);
}

/* Resolve open alert id at ts. 0 or -1. */
static int resolve(pg_query *q, int64_t id, const co_alert_change *c)
{
    char b[4][32];
    const char *p[4] = {pg_i64(b[0], id), real_param(b[1], c->value),
                        real_param(b[2], c->threshold), pg_i64(b[3], c->ts_ms)};
    return run(q, "alert resolve", SQL_RESOLVE, 4, p);
}

/* Apply one change inside the open transaction. 0 or -1 with q->err. */
static int apply1(pg_query *q, const co_alert_change *c, int64_t now_ms, co_alert_outcome *o)
{
    *o = (co_alert_outcome){0};
    const char *scr = c->screen ? c->screen : "";
    const char *fp[4] = {c->rule, c->site, c->device, c->labels};
    PGresult *res = pg_exec(q, "alert lock", SQL_LOCK, 4, fp);
    if (!res) return -1;
    PQclear(res);
    res = pg_exec(q, "alert find", SQL_FIND, 4, fp);
    if (!res) return -1;
    int64_t id = 0;
    char prev_state[16] = "", prev_sev[16] = "";
    if (PQntuples(res) > 0) {
        id = pg_int(res, 0, 0);
        snprintf(prev_state, sizeof prev_state, "%s", pg_str(res, 0, 1));
        snprintf(prev_sev, sizeof prev_sev, "%s", pg_str(res, 0, 2));
    }
    PQclear(res);

    char b[8][32];
    int due = 0;
    if (!strcmp(c->to, "pending") || !strcmp(c->to, "firing")) {
        int firing = !strcmp(c->to, "firing");
        if (!id) {
            const char *p[12] = {c->rule,
                                 c->site,
                                 scr,
                                 c->device,
                                 c->labels,
                                 c->severity,
                                 c->to,
                                 real_param(b[0], c->value),
                                 real_param(b[1], c->threshold),
                                 c->text,
                                 pg_i64(b[2], c->ts_ms),
                                 firing ? pg_i64(b[3], c->ts_ms) : NULL};
            res = pg_exec(q, "alert insert", SQL_INSERT, 12, p);
            if (!res) return -1;
            id = PQntuples(res) > 0 ? pg_int(res, 0, 0) : 0;
            PQclear(res);
            if (!id) {
                cm_seterr(q->err, q->errlen, "postgresql: alert insert: no id returned");
                return -1;
            }
            due = firing;
        } else if (!firing && !strcmp(prev_state, "firing")) {
            /* a judge that has not learnt yet that this alert fires (another collector
             * fired it) starts it as pending: it stays firing, unchanged */
            o->id = id;
            return 0;
        } else {
            const char *p[7] = {pg_i64(b[0], id),
                                c->to,
                                c->severity,
                                real_param(b[1], c->value),
                                real_param(b[2], c->threshold),
                                c->text,
                                pg_i64(b[3], c->ts_ms)};
            if (run(q, "alert update", SQL_UPDATE, 7, p) < 0) return -1;
            due = firing && (strcmp(prev_state, "firing") || strcmp(prev_sev, c->severity));
        }
    } else if (!strcmp(c->to, "resolved")) {
        if (!id) return 0; /* nothing open: nothing to resolve */
        if (resolve(q, id, c) < 0) return -1;
        due = !strcmp(prev_state, "firing");
    } else if (!strcmp(c->to, "inactive")) {
        if (!id) return 0;
        if (!strcmp(prev_state, "pending")) { /* cleared before its hold: never an alert */
            const char *p[1] = {pg_i64(b[0], id)};
            if (run(q, "alert delete", "DELETE FROM alert_history WHERE alert_id = $1::bigint", 1,
                    p) < 0 ||
                run(q, "alert delete", "DELETE FROM alerts WHERE id = $1::bigint", 1, p) < 0)
                return -1;
            return 0;
        }
        /* a firing alert going inactive (rule disabled, say) is resolved */
        if (resolve(q, id, c) < 0) return -1;
        due = !strcmp(prev_state, "firing");
    } else {
        cm_seterr(q->err, q->errlen, "alert change to unknown state '%s'", c->to);
        return -1;
    }
    o->id = id;
    const char *hstate = !strcmp(c->to, "inactive") ? "resolved" : c->to;
    if (hist(q, id, c->ts_ms, hstate, c->severity, c->value, c->threshold, NULL, NULL) < 0)
        return -1;
    if (due) {
        const char *p[5] = {c->site, scr, c->device, c->rule, pg_i64(b[0], now_ms)};
        res = pg_exec(q, "silence", SQL_SILENCED, 5, p);
        if (!res) return -1;
        o->silenced = PQntuples(res) > 0;
        o->notify = !o->silenced;
        PQclear(res);
    }
    return 0;
}

/* co_store_alerts_apply: n changes in one transaction. */
int pg_alerts_apply(co_store *s, const co_alert_change *c, size_t n, int64_t now_ms,
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
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    if (pg_begin(&q) < 0) goto out;
    for (size_t i = 0; i < n; i++)
        if (apply1(&q, &c[i], now_ms, &out[i]) < 0) {
            pg_rollback(&q);
            goto out;
        }
    if (pg_commit(&q) < 0) {
        pg_rollback(&q);
        goto out;
    }
    rc = 0;
out:
    pg_conn_put(&q);
    return rc;
}

/* ---------------------------------------------------------------- reading alerts */

/* The columns of an alert row; now (a parameter) decides whether a silence is in force. */
#define ALERT_COLS(now)                                                                            \
    "a.id, a.rule, a.site, a.screen, a.device, a.labels, a.severity, a.state, a.value,"            \
    " a.threshold, a.text, a.started_ms, a.firing_ms, a.resolved_ms, a.updated_ms, a.ack_by,"      \
    " a.ack_comment, a.ack_ms, EXISTS(SELECT 1 FROM silences x WHERE x.site = a.site AND"          \
    " (x.screen IS NULL OR x.screen = a.screen) AND (x.device IS NULL OR x.device = a.device)"     \
    " AND (x.rule IS NULL OR x.rule = a.rule) AND x.from_ms <= " now " AND x.until_ms > " now ")"

/* One alert row as JSON (ALERT_COLS). */
static json_t *alert_row(const PGresult *res, int r)
{
    json_t *labels = col_json(res, r, 5);
    if (!json_is_object(labels)) {
        json_decref(labels);
        labels = json_object();
    }
    json_t *ack = json_null();
    if (!PQgetisnull(res, r, 15))
        ack = json_pack("{s:o, s:o, s:o}", "by", pg_json_str(res, r, 15), "comment",
                        pg_json_str(res, r, 16), "ts_ms", pg_json_int(res, r, 17));
    const char *sil = pg_str(res, r, 18);
    return json_pack(
        "{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b}",
        "id", (json_int_t)pg_int(res, r, 0), "rule", pg_json_str(res, r, 1), "site",
        pg_json_str(res, r, 2), "screen", pg_json_str(res, r, 3), "device", pg_json_str(res, r, 4),
        "labels", labels, "severity", pg_json_str(res, r, 6), "state", pg_json_str(res, r, 7),
        "value", pg_json_real(res, r, 8), "threshold", pg_json_real(res, r, 9), "text",
        pg_json_str(res, r, 10), "started_ms", pg_json_int(res, r, 11), "firing_ms",
        pg_json_int(res, r, 12), "resolved_ms", pg_json_int(res, r, 13), "updated_ms",
        pg_json_int(res, r, 14), "ack", ack, "silenced", sil && sil[0] == 't');
}

/* co_store_alerts: newest change first, filtered in SQL (scope $9, $10; now $8). */
json_t *pg_alerts(co_store *s, const co_alert_filter *f, const co_scope *sc, char *err,
                  size_t errlen)
{
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return NULL;
    char b[3][32], kbuf[4];
    const char *p[10] = {f->site,
                         f->screen,
                         f->device,
                         f->rule,
                         pg_i64(b[0], sev_rank(f->min_severity)),
                         f->state,
                         pg_i64(b[1], (int64_t)(f->limit ? f->limit : 1000)),
                         pg_i64(b[2], cm_now_ms())};
    pg_scope_params(sc, p, 8, 9, kbuf);
    PGresult *res =
        pg_exec(&q, "alerts",
                "SELECT " ALERT_COLS(
                    "$8::bigint") " FROM alerts a"
                                  " WHERE ($1::text IS NULL OR a.site = $1::text) AND ($2::text IS "
                                  "NULL OR a.screen ="
                                  " $2::text) AND ($3::text IS NULL OR a.device = $3::text) AND "
                                  "($4::text IS NULL OR"
                                  " a.rule = $4::text) AND ($6::text IS NULL OR a.state = $6::text "
                                  "OR ($6::text ="
                                  " 'active' AND a.state <> 'resolved')) AND " SEV_RANK_SQL(
                                      "a.severity") " >= $5::int"
                                                    " AND " CO_SCOPE_SQL(
                                                        "a.site", "$9::int",
                                                        "$10") " ORDER BY a.updated_ms DESC, a.id "
                                                               "DESC LIMIT $7::bigint",
                10, p);
    json_t *out = NULL;
    if (res) {
        out = pg_rows(res, alert_row);
        if (!out) cm_seterr(err, errlen, "out of memory");
        PQclear(res);
    }
    pg_conn_put(&q);
    return out;
}

/* One history row as JSON. */
static json_t *history_row(const PGresult *res, int r)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "ts_ms", pg_json_int(res, r, 0),
                     "state", pg_json_str(res, r, 1), "severity", pg_json_str(res, r, 2), "value",
                     pg_json_real(res, r, 3), "threshold", pg_json_real(res, r, 4), "by",
                     pg_json_str(res, r, 5), "comment", pg_json_str(res, r, 6));
}

/* co_store_alert: one alert with its history; NULL with err "" when unknown or out of scope. */
json_t *pg_alert(co_store *s, int64_t id, const co_scope *sc, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return NULL;
    char b[2][32], kbuf[4];
    const char *p[4] = {pg_i64(b[0], id), pg_i64(b[1], cm_now_ms())};
    pg_scope_params(sc, p, 2, 3, kbuf);
    json_t *out = NULL, *rows = NULL, *h = NULL;
    PGresult *res = pg_exec(&q, "alert",
                            "SELECT " ALERT_COLS("$2::bigint") " FROM alerts a WHERE a.id ="
                                                               " $1::bigint AND " CO_SCOPE_SQL(
                                                                   "a.site", "$3::int", "$4"),
                            4, p);
    if (res) {
        rows = pg_rows(res, alert_row);
        if (!rows) cm_seterr(err, errlen, "out of memory");
        PQclear(res);
    }
    if (rows && json_array_size(rows) == 1) {
        /* rows of one alert in the order written: seq breaks ties of ts_ms */
        res = pg_exec(&q, "alert history",
                      "SELECT ts_ms, state, severity, value, threshold, \"by\", comment FROM"
                      " alert_history WHERE alert_id = $1::bigint ORDER BY ts_ms, seq",
                      1, p);
        if (res) {
            h = pg_rows(res, history_row);
            if (!h) cm_seterr(err, errlen, "out of memory");
            PQclear(res);
        }
        if (h) {
            out = json_incref(json_array_get(rows, 0));
            json_object_set_new(out, "history", h);
        }
    }
    json_decref(rows);
    pg_conn_put(&q);
    return out;
}

/* co_store_alert_ack: 1 done, 0 unknown or outside sc, -1 error. */
int pg_alert_ack(co_store *s, int64_t id, const char *by, const char *comment, const co_scope *sc,
                 int64_t now_ms, char *err, size_t errlen)
{
    if (!by || !*by) {
        cm_seterr(err, errlen, "an acknowledgement needs who");
        return -1;
    }
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    char b[2][32], kbuf[4];
    const char *p[6] = {pg_i64(b[0], id), by, comment, pg_i64(b[1], now_ms)};
    pg_scope_params(sc, p, 4, 5, kbuf);
    if (pg_begin(&q) < 0) goto out;
    PGresult *res = pg_exec(&q, "alert ack",
                            "UPDATE alerts SET ack_by = $2::text, ack_comment = $3::text,"
                            " ack_ms = $4::bigint WHERE id = $1::bigint"
                            " AND " CO_SCOPE_SQL("site", "$5::int", "$6"),
                            6, p);
    if (!res) goto rollback;
    int done = changed(res);
    PQclear(res);
    if (!done) {
        pg_rollback(&q);
        rc = 0;
        goto out;
    }
    if (hist(&q, id, now_ms, "acknowledged", NULL, NAN, NAN, by, comment) < 0) goto rollback;
    if (pg_commit(&q) < 0) goto rollback;
    rc = 1;
    goto out;
rollback:
    pg_rollback(&q);
out:
    pg_conn_put(&q);
    return rc;
}

/* ---------------------------------------------------------------- silences */

/* co_store_silence_add: *id = the new silence's id. 0 or -1. */
int pg_silence_add(co_store *s, const co_silence *sl, int64_t *id, char *err, size_t errlen)
{
    if (!sl->site || !*sl->site || !sl->by || !*sl->by || sl->until_ms <= sl->from_ms) {
        cm_seterr(err, errlen, "a silence needs a site, who, and from < until");
        return -1;
    }
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    char b[3][32];
    const char *p[9] = {sl->site,
                        sl->screen,
                        sl->device,
                        sl->rule,
                        pg_i64(b[0], sl->from_ms),
                        pg_i64(b[1], sl->until_ms),
                        sl->by,
                        sl->comment,
                        pg_i64(b[2], cm_now_ms())};
    int rc = -1;
    PGresult *res = pg_exec(
        &q, "silence add",
        "INSERT INTO silences(site, screen, device, rule, from_ms, until_ms, \"by\", comment,"
        " created_ms) VALUES($1::text, $2::text, $3::text, $4::text, $5::bigint, $6::bigint,"
        " $7::text, $8::text, $9::bigint) RETURNING id",
        9, p);
    if (res) {
        if (PQntuples(res) == 1) {
            *id = pg_int(res, 0, 0);
            rc = 0;
        } else {
            cm_seterr(err, errlen, "postgresql: silence add: no id returned");
        }
        PQclear(res);
    }
    pg_conn_put(&q);
    return rc;
}

/* One silence as JSON. */
static json_t *silence_row(const PGresult *res, int r)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                     (json_int_t)pg_int(res, r, 0), "site", pg_json_str(res, r, 1), "screen",
                     pg_json_str(res, r, 2), "device", pg_json_str(res, r, 3), "rule",
                     pg_json_str(res, r, 4), "from_ms", pg_json_int(res, r, 5), "until_ms",
                     pg_json_int(res, r, 6), "by", pg_json_str(res, r, 7), "comment",
                     pg_json_str(res, r, 8));
}

/* co_store_silences: those of site still in force at now_ms (all when 0), newest first. */
json_t *pg_silences(co_store *s, const char *site, int64_t now_ms, const co_scope *sc, char *err,
                    size_t errlen)
{
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return NULL;
    char b[32], kbuf[4];
    const char *p[4] = {site, pg_i64(b, now_ms)};
    pg_scope_params(sc, p, 2, 3, kbuf);
    PGresult *res = pg_exec(
        &q, "silences",
        "SELECT id, site, screen, device, rule, from_ms, until_ms, \"by\", comment FROM silences"
        " WHERE ($1::text IS NULL OR site = $1::text) AND ($2::bigint = 0 OR until_ms >"
        " $2::bigint) AND " CO_SCOPE_SQL("site", "$3::int",
                                         "$4") " ORDER BY from_ms DESC, id DESC LIMIT 10000",
        4, p);
    json_t *out = NULL;
    if (res) {
        out = pg_rows(res, silence_row);
        if (!out) cm_seterr(err, errlen, "out of memory");
        PQclear(res);
    }
    pg_conn_put(&q);
    return out;
}

/* co_store_alerts_active: fn for every pending and firing alert, by id. */
int pg_alerts_active(co_store *s, int (*fn)(void *ud, const co_alert_row *a), void *ud, char *err,
                     size_t errlen)
{
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    PGresult *res =
        pg_exec(&q, "active alerts",
                "SELECT rule, site, screen, device, labels, state, severity, value, threshold,"
                " started_ms, firing_ms, updated_ms FROM alerts WHERE state <> 'resolved'"
                " ORDER BY id",
                0, NULL);
    int rc = -1;
    if (res) {
        rc = 0;
        for (int r = 0; r < PQntuples(res); r++) {
            co_alert_row a = {
                .rule = pg_str(res, r, 0),
                .site = pg_str(res, r, 1),
                .screen = pg_str(res, r, 2),
                .device = pg_str(res, r, 3),
                .labels = pg_str(res, r, 4),
                .state = pg_str(res, r, 5),
                .severity = pg_str(res, r, 6),
                .value = PQgetisnull(res, r, 7) ? NAN : pg_real(res, r, 7),
                .threshold = PQgetisnull(res, r, 8) ? NAN : pg_real(res, r, 8),
                .started_ms = pg_int(res, r, 9),
                .firing_ms = pg_int(res, r, 10),
                .updated_ms = pg_int(res, r, 11),
            };
            if (fn(ud, &a)) break;
        }
        PQclear(res);
    }
    pg_conn_put(&q);
    return rc;
}

/* ---------------------------------------------------------------- notification log */

/* co_store_notification_add: 1 stored, 0 already there, -1 error. */
int pg_notification_add(co_store *s, const char *id, int64_t alert_id, const char *kind,
                        const char *site, const char *payload, const char *const *targets,
                        size_t ntargets, int64_t now_ms, char *err, size_t errlen)
{
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    char b[2][32];
    const char *p[6] = {id, pg_i64(b[0], alert_id), kind, site, payload, pg_i64(b[1], now_ms)};
    if (pg_begin(&q) < 0) goto out;
    PGresult *res = pg_exec(&q, "notification add",
                            "INSERT INTO notifications(id, alert_id, kind, site, payload,"
                            " created_ms) VALUES($1::text, $2::bigint, $3::text, $4::text,"
                            " $5::text, $6::bigint) ON CONFLICT(id) DO NOTHING",
                            6, p);
    if (!res) goto rollback;
    int done = changed(res);
    PQclear(res);
    if (!done) {
        pg_rollback(&q);
        rc = 0;
        goto out;
    }
    for (size_t i = 0; i < ntargets; i++) {
        const char *d[3] = {id, targets[i], p[5]};
        if (run(&q, "delivery add",
                "INSERT INTO deliveries(id, target, state, attempts, updated_ms)"
                " VALUES($1::text, $2::text, 'pending', 0, $3::bigint)"
                " ON CONFLICT(id, target) DO NOTHING",
                3, d) < 0)
            goto rollback;
    }
    if (pg_commit(&q) < 0) goto rollback;
    rc = 1;
    goto out;
rollback:
    pg_rollback(&q);
out:
    pg_conn_put(&q);
    return rc;
}

/* co_store_delivery_update: one attempt's outcome; a delivered row stays delivered. 0 or -1. */
int pg_delivery_update(co_store *s, const char *id, const char *target, unsigned attempts,
                       long http_status, const char *error, const char *state, int64_t now_ms,
                       char *err, size_t errlen)
{
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    char b[3][32];
    const char *p[7] = {id,
                        target,
                        state,
                        pg_i64(b[0], (int64_t)attempts),
                        http_status ? pg_i64(b[1], (int64_t)http_status) : NULL,
                        error,
                        pg_i64(b[2], now_ms)};
    int rc = run(&q, "delivery update",
                 "INSERT INTO deliveries AS d(id, target, state, attempts, http_status, error,"
                 " updated_ms) VALUES($1::text, $2::text, $3::text, $4::bigint, $5::bigint,"
                 " $6::text, $7::bigint) ON CONFLICT(id, target) DO UPDATE SET"
                 " state = excluded.state, attempts = GREATEST(d.attempts, excluded.attempts),"
                 " http_status = excluded.http_status, error = excluded.error,"
                 " updated_ms = excluded.updated_ms WHERE d.state <> 'delivered'",
                 7, p);
    pg_conn_put(&q);
    return rc;
}

/* One delivery (columns from c on) as JSON. */
static json_t *delivery_json(const PGresult *res, int r, int c)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "target", pg_json_str(res, r, c), "state",
                     pg_json_str(res, r, c + 1), "attempts", pg_json_int(res, r, c + 2),
                     "http_status", pg_json_int(res, r, c + 3), "error", pg_json_str(res, r, c + 4),
                     "updated_ms", pg_json_int(res, r, c + 5));
}

/* One notification (columns 0..5) as JSON, with an empty "deliveries". */
static json_t *notification_json(const PGresult *res, int r)
{
    json_t *payload = col_json(res, r, 4);
    if (!payload) payload = json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:[]}", "id", pg_json_str(res, r, 0),
                     "alert_id", pg_json_int(res, r, 1), "kind", pg_json_str(res, r, 2), "site",
                     pg_json_str(res, r, 3), "payload", payload, "created_ms",
                     pg_json_int(res, r, 5), "deliveries");
}

/* co_store_notifications: newest first, each with its deliveries by target; one statement
 * (the notifications chosen and their deliveries read from the same snapshot). */
json_t *pg_notifications(co_store *s, const char *site, int64_t alert_id, size_t limit,
                         const co_scope *sc, char *err, size_t errlen)
{
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return NULL;
    char b[2][32], kbuf[4];
    const char *p[5] = {site, pg_i64(b[0], alert_id),
                        pg_i64(b[1], (int64_t)(limit ? limit : 1000))};
    pg_scope_params(sc, p, 3, 4, kbuf);
    PGresult *res = pg_exec(
        &q, "notifications",
        "WITH n AS (SELECT id, alert_id, kind, site, payload, created_ms, seq AS rid"
        " FROM notifications WHERE ($1::text IS NULL OR site = $1::text) AND ($2::bigint = 0"
        " OR alert_id = $2::bigint) AND " CO_SCOPE_SQL(
            "site", "$4::int",
            "$5") " ORDER BY created_ms DESC, seq DESC LIMIT $3::bigint)"
                  " SELECT n.id, n.alert_id, n.kind, n.site, n.payload, n.created_ms, d.target, "
                  "d.state,"
                  " d.attempts, d.http_status, d.error, d.updated_ms FROM n LEFT JOIN deliveries d"
                  " ON d.id = n.id ORDER BY n.created_ms DESC, n.rid DESC, d.target COLLATE \"C\"",
        5, p);
    json_t *out = NULL;
    if (res) {
        out = json_array();
        json_t *cur = NULL;
        const char *cur_id = "";
        int ok = out != NULL;
        for (int r = 0; ok && r < PQntuples(res); r++) {
            const char *nid = pg_str(res, r, 0);
            if (!cur || strcmp(cur_id, nid) != 0) {
                cur = notification_json(res, r);
                ok = cur && json_array_append_new(out, cur) == 0;
                cur_id = nid;
            }
            if (ok && !PQgetisnull(res, r, 6)) { /* a LEFT JOIN row without deliveries: none */
                json_t *d = delivery_json(res, r, 6);
                ok = d && json_array_append_new(json_object_get(cur, "deliveries"), d) == 0;
            }
        }
        if (!ok) {
            json_decref(out);
            out = NULL;
            cm_seterr(err, errlen, "out of memory");
        }
        PQclear(res);
    }
    pg_conn_put(&q);
    return out;
}

/* co_store_deliveries_pending: fn for every pending delivery created at or after since_ms. */
int pg_deliveries_pending(co_store *s, int64_t since_ms,
                          int (*fn)(void *ud, const char *id, const char *target,
                                    const char *payload, unsigned attempts, int64_t created_ms),
                          void *ud, char *err, size_t errlen)
{
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    char b[32];
    const char *p[1] = {pg_i64(b, since_ms)};
    PGresult *res = pg_exec(&q, "pending deliveries",
                            "SELECT d.id, d.target, n.payload, d.attempts, n.created_ms FROM"
                            " deliveries d JOIN notifications n ON n.id = d.id WHERE"
                            " d.state = 'pending' AND n.created_ms >= $1::bigint"
                            " ORDER BY n.created_ms, n.seq, d.target COLLATE \"C\"",
                            1, p);
    int rc = -1;
    if (res) {
        rc = 0;
        for (int r = 0; r < PQntuples(res); r++)
            if (fn(ud, pg_str(res, r, 0), pg_str(res, r, 1), pg_str(res, r, 2),
                   (unsigned)pg_int(res, r, 3), pg_int(res, r, 4)))
                break;
        PQclear(res);
    }
    pg_conn_put(&q);
    return rc;
}

/* store_summary.c — the SQLite backend of store.h's summaries of tiered forwarding
 * (docs/forwarding.md, "mode = summary"): a closed hour's roll-ups read for the forwarder (the
 * tables plus the head), and a summary batch of a tier below upserted (devices and series,
 * rollup_1h, latest, alerts with their history, compliance figures). The figures received are
 * also kept in compliance_received, which this collector's own recomputation of a day
 * (compliance.c) does not replace; the table is created by the first figure received. Every
 * value is bound. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "head.h"
#include "store.h"
#include "store_sqlite_int.h"
#include "store_util.h"

#define HOUR_MS 3600000LL

/* ---------------------------------------------------------------- an hour's roll-ups */

int sqlite_hour_rollups(co_store *s, int64_t hour_ms, const char *site,
                        int (*fn)(void *ud, const co_hour_rollup *r), void *ud, char *err,
                        size_t errlen)
{
    if (!s || !fn || co_floor_div(hour_ms, HOUR_MS) * HOUR_MS != hour_ms) {
        cm_seterr(err, errlen, "hour roll-ups: bad arguments");
        return -1;
    }
    sq_query q;
    if (sq_q_begin_head(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    co_head_buf hp = {0};
    sqlite3_stmt *st = sq_q_prepare(
        &q, "SELECT d.site, d.device_id, r.metric, r.labels, r.unit, r.id, h.n, h.sum, h.min,"
            " h.max, l.ts_ms, l.value FROM series r JOIN devices d ON d.id = r.device_ref"
            " LEFT JOIN rollup_1h h ON h.series_id = r.id AND h.bucket_ms = ?1"
            " LEFT JOIN latest l ON l.series_id = r.id WHERE ?2 IS NULL OR d.site = ?2"
            " ORDER BY d.site, d.device_id, r.metric, r.labels");
    if (!st) goto out;
    sqlite3_bind_int64(st, 1, hour_ms);
    sq_bind_text(st, 2, site);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t sid = sqlite3_column_int64(st, 5);
        co_hour_rollup h = {.n = 0, .min = INFINITY, .max = -INFINITY};
        if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
            h.n = sqlite3_column_int64(st, 6);
            h.sum = sqlite3_column_double(st, 7);
            h.min = sqlite3_column_double(st, 8);
            h.max = sqlite3_column_double(st, 9);
        }
        if (co_head_range(q.head, sid, hour_ms, hour_ms + HOUR_MS - 1, &hp) < 0) {
            cm_seterr(err, errlen, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < hp.n; i++) {
            h.n++;
            h.sum += hp.p[i].value;
            if (hp.p[i].value < h.min) h.min = hp.p[i].value;
            if (hp.p[i].value > h.max) h.max = hp.p[i].value;
        }
        if (h.n < 1) continue; /* nothing in that hour */
        h.site = (const char *)sqlite3_column_text(st, 0);
        h.device = (const char *)sqlite3_column_text(st, 1);
        h.metric = (const char *)sqlite3_column_text(st, 2);
        h.labels_json = (const char *)sqlite3_column_text(st, 3);
        h.unit = (const char *)sqlite3_column_text(st, 4);
        h.has_latest = sq_latest_of(&q, sid, sqlite3_column_type(st, 10) != SQLITE_NULL,
                                    sqlite3_column_int64(st, 10), sqlite3_column_double(st, 11),
                                    &h.latest_ts, &h.latest_value);
        int stop = fn(ud, &h);
        if (stop) {
            rc = stop;
            goto out;
        }
    }
    if (r != SQLITE_DONE) {
        sq_dberr(q.db, "hour roll-ups", err, errlen);
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    sq_q_end(&q);
    co_head_buf_free(&hp);
    return rc;
}

/* ---------------------------------------------------------------- a summary batch */

enum {
    P_SITE,
    P_DEVICE_INV,
    P_DEVICE,
    P_SERIES,
    P_ROLLUP,
    P_LATEST,
    P_A_FIND,
    P_A_OPEN,
    P_A_INSERT,
    P_A_UPDATE,
    P_A_RESOLVE,
    P_A_HIST,
    P_C_RECEIVED,
    P_C_PUT,
    P_N
};

static const char *const P_SQL[P_N] = {
    [P_SITE] = "INSERT INTO sites(code, created_ms) VALUES(?1, ?2) ON CONFLICT(code) DO NOTHING",
    /* inventory of a tier below: last_seen_ms stays what it is (0 for a new device) */
    [P_DEVICE_INV] =
        "INSERT INTO devices(site, device_id, screen, kind, vendor, model, serial, firmware,"
        " profile, first_seen_ms, last_seen_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0)"
        " ON CONFLICT(site, device_id) DO UPDATE SET screen = coalesce(excluded.screen, screen),"
        " kind = coalesce(excluded.kind, kind), vendor = coalesce(excluded.vendor, vendor),"
        " model = coalesce(excluded.model, model), serial = coalesce(excluded.serial, serial),"
        " firmware = coalesce(excluded.firmware, firmware),"
        " profile = coalesce(excluded.profile, profile)",
    [P_DEVICE] = "INSERT INTO devices(site, device_id, first_seen_ms, last_seen_ms)"
                 " VALUES(?1, ?2, ?3, 0) ON CONFLICT(site, device_id) DO UPDATE"
                 " SET site = excluded.site RETURNING id",
    [P_SERIES] = "INSERT INTO series(device_ref, metric, labels, unit) VALUES(?1, ?2, ?3, ?4)"
                 " ON CONFLICT(device_ref, metric, labels) DO UPDATE"
                 " SET unit = coalesce(excluded.unit, unit) RETURNING id",
    [P_ROLLUP] = "INSERT OR REPLACE INTO rollup_1h(series_id, bucket_ms, n, sum, min, max)"
                 " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [P_LATEST] = "INSERT INTO latest(series_id, ts_ms, value) VALUES(?1, ?2, ?3)"
                 " ON CONFLICT(series_id) DO UPDATE SET ts_ms = excluded.ts_ms,"
                 " value = excluded.value WHERE excluded.ts_ms > latest.ts_ms",
    [P_A_FIND] = "SELECT id, state, severity, updated_ms FROM alerts WHERE rule = ?1 AND site = ?2"
                 " AND device = ?3 AND labels = ?4 AND started_ms = ?5 ORDER BY id DESC LIMIT 1",
    [P_A_OPEN] = "SELECT id, updated_ms FROM alerts WHERE rule = ?1 AND site = ?2 AND device = ?3"
                 " AND labels = ?4 AND state <> 'resolved'",
    [P_A_INSERT] =
        "INSERT INTO alerts(rule, site, screen, device, labels, severity, state, value, threshold,"
        " text, started_ms, firing_ms, resolved_ms, updated_ms)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [P_A_UPDATE] = "UPDATE alerts SET screen = ?2, severity = ?3, state = ?4, value = ?5,"
                   " threshold = ?6, text = coalesce(?7, text), firing_ms = ?8, resolved_ms = ?9,"
                   " updated_ms = ?10 WHERE id = ?1",
    [P_A_RESOLVE] = "UPDATE alerts SET state = 'resolved', resolved_ms = ?2, updated_ms = ?2"
                    " WHERE id = ?1",
    [P_A_HIST] = "INSERT INTO alert_history(alert_id, ts_ms, state, severity, value, threshold)"
                 " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [P_C_RECEIVED] = "INSERT INTO compliance_received(site, screen, day, quantity, in_ms,"
                     " measured_ms, updated_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                     " ON CONFLICT(site, screen, day, quantity) DO UPDATE SET"
                     " in_ms = excluded.in_ms, measured_ms = excluded.measured_ms,"
                     " updated_ms = excluded.updated_ms",
    [P_C_PUT] = "INSERT INTO compliance(site, screen, day, quantity, in_ms, measured_ms,"
                " updated_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                " ON CONFLICT(site, screen, day, quantity) DO UPDATE SET"
                " in_ms = excluded.in_ms, measured_ms = excluded.measured_ms,"
                " updated_ms = excluded.updated_ms",
};

/* What one summary_put works with. */
typedef struct put_ctx {
    sqlite3 *db;
    sqlite3_stmt *st[P_N];
    const char *site;
    int64_t now;
    char labels[CO_LABELS_MAX];
    char *err;
    size_t errlen;
} put_ctx;

static void bind_real(sqlite3_stmt *st, int i, double v)
{
    if (isfinite(v))
        sqlite3_bind_double(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static void bind_ts(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* Step a statement that returns one row with an integer (RETURNING id). 0 or -1. */
static int step_id(put_ctx *c, sqlite3_stmt *st, const char *what, int64_t *id)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) return sq_dberr(c->db, what, c->err, c->errlen);
    return 0;
}

/* The id of device (site, id), created (not seen) when new. */
static int device_id(put_ctx *c, const char *device, int64_t *id)
{
    sqlite3_stmt *st = c->st[P_DEVICE];
    sq_bind_text(st, 1, c->site);
    sq_bind_text(st, 2, device);
    sqlite3_bind_int64(st, 3, c->now);
    return step_id(c, st, "summary device", id);
}

/* Canonical labels JSON of (labels, n) into c->labels. */
static int labels_of(put_ctx *c, const char *device, const char *name, const cm_label *l, size_t n)
{
    cm_series view = {.device = device, .metric = name, .labels = (cm_label *)l, .nlabels = n};
    return co_labels_json(&view, c->labels, c->err, c->errlen);
}

static int put_inventory(put_ctx *c, const cm_device_info *d)
{
    sqlite3_stmt *st = c->st[P_DEVICE_INV];
    sq_bind_text(st, 1, c->site);
    sq_bind_text(st, 2, d->id);
    sq_bind_text(st, 3, d->screen);
    sq_bind_text(st, 4, d->kind);
    sq_bind_text(st, 5, d->vendor);
    sq_bind_text(st, 6, d->model);
    sq_bind_text(st, 7, d->serial);
    sq_bind_text(st, 8, d->firmware);
    sq_bind_text(st, 9, d->profile);
    sqlite3_bind_int64(st, 10, c->now);
    return sq_step_done(c->db, st, "summary inventory", c->err, c->errlen);
}

static int put_rollup(put_ctx *c, const cm_rollup *r)
{
    int64_t dev, sid;
    if (device_id(c, r->device, &dev) < 0 ||
        labels_of(c, r->device, r->metric, r->labels, r->nlabels) < 0)
        return -1;
    sqlite3_stmt *st = c->st[P_SERIES];
    sqlite3_bind_int64(st, 1, dev);
    sq_bind_text(st, 2, r->metric);
    sq_bind_text(st, 3, c->labels);
    sq_bind_text(st, 4, r->unit);
    if (step_id(c, st, "summary series", &sid) < 0) return -1;
    st = c->st[P_ROLLUP];
    for (size_t i = 0; i < r->nbuckets; i++) {
        const cm_bucket *k = &r->buckets[i];
        sqlite3_bind_int64(st, 1, sid);
        sqlite3_bind_int64(st, 2, k->bucket_ms);
        sqlite3_bind_int64(st, 3, k->n);
        sqlite3_bind_double(st, 4, k->sum);
        sqlite3_bind_double(st, 5, k->min);
        sqlite3_bind_double(st, 6, k->max);
        if (sq_step_done(c->db, st, "summary roll-up", c->err, c->errlen) < 0) return -1;
    }
    if (!r->has_latest) return 0;
    st = c->st[P_LATEST];
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_int64(st, 2, r->latest.ts_ms);
    sqlite3_bind_double(st, 3, r->latest.value);
    return sq_step_done(c->db, st, "summary latest", c->err, c->errlen);
}

static int history(put_ctx *c, int64_t id, int64_t ts, const char *state, const char *severity,
                   double value, double threshold)
{
    sqlite3_stmt *st = c->st[P_A_HIST];
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, ts);
    sq_bind_text(st, 3, state);
    sq_bind_text(st, 4, severity);
    bind_real(st, 5, value);
    bind_real(st, 6, threshold);
    return sq_step_done(c->db, st, "summary alert history", c->err, c->errlen);
}

/* Resolve every open alert of (rule, site, device, labels): a newer one starts. */
static int resolve_open(put_ctx *c, const cm_alert_entry *a)
{
    sqlite3_stmt *st = c->st[P_A_OPEN];
    sq_bind_text(st, 1, a->rule);
    sq_bind_text(st, 2, c->site);
    sq_bind_text(st, 3, a->device);
    sq_bind_text(st, 4, c->labels);
    int64_t ids[8], upd[8];
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < 8) {
        ids[n] = sqlite3_column_int64(st, 0);
        upd[n++] = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_dberr(c->db, "summary open alerts", c->err, c->errlen);
    for (size_t i = 0; i < n; i++) {
        int64_t at = a->started_ms > upd[i] ? a->started_ms : upd[i];
        sqlite3_stmt *u = c->st[P_A_RESOLVE];
        sqlite3_bind_int64(u, 1, ids[i]);
        sqlite3_bind_int64(u, 2, at);
        if (sq_step_done(c->db, u, "summary alert resolve", c->err, c->errlen) < 0 ||
            history(c, ids[i], at, "resolved", NULL, NAN, NAN) < 0)
            return -1;
    }
    return 0;
}

static int put_alert(put_ctx *c, const cm_alert_entry *a)
{
    int64_t dev;
    if (device_id(c, a->device, &dev) < 0 ||
        labels_of(c, a->device, a->rule, a->labels, a->nlabels) < 0)
        return -1;
    sqlite3_stmt *f = c->st[P_A_FIND];
    sq_bind_text(f, 1, a->rule);
    sq_bind_text(f, 2, c->site);
    sq_bind_text(f, 3, a->device);
    sq_bind_text(f, 4, c->labels);
    sqlite3_bind_int64(f, 5, a->started_ms);
    int rc = sqlite3_step(f);
    int64_t id = 0, updated = 0;
    char state[16] = "", sev[16] = "";
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(f, 0);
        snprintf(state, sizeof state, "%s", (const char *)sqlite3_column_text(f, 1));
        snprintf(sev, sizeof sev, "%s", (const char *)sqlite3_column_text(f, 2));
        updated = sqlite3_column_int64(f, 3);
    }
    sqlite3_reset(f);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_dberr(c->db, "summary alert find", c->err, c->errlen);
    const char *screen = a->screen ? a->screen : "";
    if (id) {
        if (a->updated_ms < updated) return 0; /* an older state of it: keep the newer */
        sqlite3_stmt *u = c->st[P_A_UPDATE];
        sqlite3_bind_int64(u, 1, id);
        sq_bind_text(u, 2, screen);
        sq_bind_text(u, 3, a->severity);
        sq_bind_text(u, 4, a->state);
        bind_real(u, 5, a->value);
        bind_real(u, 6, a->threshold);
        sq_bind_text(u, 7, a->text);
        bind_ts(u, 8, a->firing_ms);
        bind_ts(u, 9, a->resolved_ms);
        sqlite3_bind_int64(u, 10, a->updated_ms);
        if (sq_step_done(c->db, u, "summary alert update", c->err, c->errlen) < 0) return -1;
        if (!strcmp(state, a->state) && !strcmp(sev, a->severity)) return 0;
        int64_t at = !strcmp(a->state, "resolved") ? a->resolved_ms : a->updated_ms;
        return history(c, id, at, a->state, a->severity, a->value, a->threshold);
    }
    if (strcmp(a->state, "resolved") != 0 && resolve_open(c, a) < 0) return -1;
    sqlite3_stmt *x = c->st[P_A_INSERT];
    sq_bind_text(x, 1, a->rule);
    sq_bind_text(x, 2, c->site);
    sq_bind_text(x, 3, screen);
    sq_bind_text(x, 4, a->device);
    sq_bind_text(x, 5, c->labels);
    sq_bind_text(x, 6, a->severity);
    sq_bind_text(x, 7, a->state);
    bind_real(x, 8, a->value);
    bind_real(x, 9, a->threshold);
    sq_bind_text(x, 10, a->text);
    sqlite3_bind_int64(x, 11, a->started_ms);
    bind_ts(x, 12, a->firing_ms);
    bind_ts(x, 13, a->resolved_ms);
    sqlite3_bind_int64(x, 14, a->updated_ms);
    if (sq_step_done(c->db, x, "summary alert insert", c->err, c->errlen) < 0) return -1;
    id = sqlite3_last_insert_rowid(c->db);
    /* its history as far as the entry tells it: pending, firing, resolved */
    if (!a->firing_ms || a->started_ms < a->firing_ms)
        if (history(c, id, a->started_ms, "pending", a->severity, a->value, a->threshold) < 0)
            return -1;
    if (a->firing_ms &&
        history(c, id, a->firing_ms, "firing", a->severity, a->value, a->threshold) < 0)
        return -1;
    if (a->resolved_ms &&
        history(c, id, a->resolved_ms, "resolved", a->severity, a->value, a->threshold) < 0)
        return -1;
    return 0;
}

static int put_compliance(put_ctx *c, const cm_compliance_entry *e)
{
    for (int k = P_C_RECEIVED; k <= P_C_PUT; k++) {
        sqlite3_stmt *st = c->st[k];
        sq_bind_text(st, 1, c->site);
        sq_bind_text(st, 2, e->screen);
        sq_bind_text(st, 3, e->day);
        sq_bind_text(st, 4, e->quantity);
        sqlite3_bind_int64(st, 5, e->in_ms);
        sqlite3_bind_int64(st, 6, e->measured_ms);
        sqlite3_bind_int64(st, 7, c->now);
        if (sq_step_done(c->db, st, "summary compliance", c->err, c->errlen) < 0) return -1;
    }
    return 0;
}

int sqlite_summary_put(co_store *s, const cm_batch *b, int64_t now_ms, char *err, size_t errlen)
{
    if (!s || !b || !b->site) {
        cm_seterr(err, errlen, "summary put: a batch with a site is required");
        return -1;
    }
    put_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        cm_seterr(err, errlen, "out of memory");
        return -1;
    }
    *c = (put_ctx){.site = b->site, .now = now_ms, .err = err, .errlen = errlen};
    c->db = sq_writer_lock(s);
    int rc = -1;
    if (sq_exec_sql(c->db, "BEGIN IMMEDIATE", err, errlen) < 0) goto out;
    for (int i = 0; i < P_N; i++) {
        if ((i == P_C_RECEIVED || i == P_C_PUT) && !b->ncompliance) continue;
        if (sq_prepare(c->db, P_SQL[i], &c->st[i], err, errlen) < 0) goto rollback;
    }
    sq_bind_text(c->st[P_SITE], 1, b->site);
    sqlite3_bind_int64(c->st[P_SITE], 2, now_ms);
    if (sq_step_done(c->db, c->st[P_SITE], "summary site", err, errlen) < 0) goto rollback;
    for (size_t i = 0; i < b->ndevices; i++)
        if (put_inventory(c, &b->devices[i]) < 0) goto rollback;
    for (size_t i = 0; i < b->nrollups; i++)
        if (put_rollup(c, &b->rollups[i]) < 0) goto rollback;
    for (size_t i = 0; i < b->nalerts; i++)
        if (put_alert(c, &b->alerts[i]) < 0) goto rollback;
    for (size_t i = 0; i < b->ncompliance; i++)
        if (put_compliance(c, &b->compliance[i]) < 0) goto rollback;
    if (sq_exec_sql(c->db, "COMMIT", err, errlen) < 0) goto rollback;
    rc = 0;
    goto out;
rollback:
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
out:
    for (int i = 0; i < P_N; i++)
        sqlite3_finalize(c->st[i]);
    sq_writer_unlock(s);
    free(c);
    return rc;
}

/* ---------------------------------------------------------------- figures received */

int sqlite_compliance_received(co_store *s, const char *day,
                               int (*fn)(void *ud, const co_compliance_row *r), void *ud, char *err,
                               size_t errlen)
{
    if (!s || !day || !fn) {
        cm_seterr(err, errlen, "compliance received: bad arguments");
        return -1;
    }
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return -1;
    int rc = -1, r;
    sqlite3_stmt *st =
        sq_q_prepare(&q, "SELECT site, screen, quantity, in_ms, measured_ms FROM"
                         " compliance_received WHERE day = ?1 ORDER BY site, screen, quantity");
    if (!st) goto out;
    sq_bind_text(st, 1, day);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        co_compliance_row row = {.site = (const char *)sqlite3_column_text(st, 0),
                                 .screen = (const char *)sqlite3_column_text(st, 1),
                                 .quantity = (const char *)sqlite3_column_text(st, 2),
                                 .in_ms = sqlite3_column_int64(st, 3),
                                 .measured_ms = sqlite3_column_int64(st, 4)};
        int stop = fn(ud, &row);
        if (stop) {
            rc = stop;
            goto out;
        }
    }
    if (r != SQLITE_DONE) {
        sq_dberr(q.db, "compliance received", err, errlen);
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    sq_q_end(&q);
    return rc;
}

/* store_pg_summary.c — the PostgreSQL backend of store.h's summaries of tiered forwarding
 * (docs/forwarding.md, "mode = summary"), as store_summary.c does them for SQLite: a closed
 * hour's roll-ups read for the forwarder (the tables plus the head, in one snapshot), and a
 * summary batch of a tier below upserted in one transaction on a pooled connection. The
 * figures received are also kept in compliance_received (schema version 3), and each day
 * they touch is locked as pg_compliance_put locks it, in day order, so
 * that a recomputation of the same day never interleaves with them. Every value is a
 * parameter. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "head.h"
#include "store.h"
#include "store_pg_int.h"
#include "store_util.h"

#define HOUR_MS 3600000LL
#define TX "text COLLATE \"C\""

/* ---------------------------------------------------------------- an hour's roll-ups */

int pg_hour_rollups(co_store *s, int64_t hour_ms, const char *site,
                    int (*fn)(void *ud, const co_hour_rollup *r), void *ud, char *err,
                    size_t errlen)
{
    if (!s || !fn || co_floor_div(hour_ms, HOUR_MS) * HOUR_MS != hour_ms) {
        cm_seterr(err, errlen, "hour roll-ups: bad arguments");
        return -1;
    }
    pg_query q;
    if (pg_read_begin(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    co_head_buf hp = {0};
    char hb[32];
    const char *p[] = {pg_i64(hb, hour_ms), site};
    PGresult *res = pg_exec(
        &q, "hour roll-ups",
        "SELECT d.site, d.device_id, r.metric, r.labels, r.unit, r.id, h.n, h.sum, h.min, h.max,"
        " l.ts_ms, l.value FROM series r JOIN devices d ON d.id = r.device_ref"
        " LEFT JOIN rollup_1h h ON h.series_id = r.id AND h.bucket_ms = $1::bigint"
        " LEFT JOIN latest l ON l.series_id = r.id WHERE $2::text IS NULL OR d.site = $2::text"
        " ORDER BY d.site, d.device_id, r.metric, r.labels",
        2, p);
    if (!res) goto out;
    int rows = PQntuples(res);
    for (int i = 0; i < rows; i++) {
        int64_t sid = pg_int(res, i, 5);
        co_hour_rollup h = {.n = 0, .min = INFINITY, .max = -INFINITY};
        if (!PQgetisnull(res, i, 6)) {
            h.n = pg_int(res, i, 6);
            h.sum = pg_real(res, i, 7);
            h.min = pg_real(res, i, 8);
            h.max = pg_real(res, i, 9);
        }
        if (co_head_range(q.head, sid, hour_ms, hour_ms + HOUR_MS - 1, &hp) < 0) {
            cm_seterr(err, errlen, "out of memory");
            goto out;
        }
        for (size_t k = 0; k < hp.n; k++) {
            h.n++;
            h.sum += hp.p[k].value;
            if (hp.p[k].value < h.min) h.min = hp.p[k].value;
            if (hp.p[k].value > h.max) h.max = hp.p[k].value;
        }
        if (h.n < 1) continue; /* nothing in that hour */
        h.site = pg_str(res, i, 0);
        h.device = pg_str(res, i, 1);
        h.metric = pg_str(res, i, 2);
        h.labels_json = pg_str(res, i, 3);
        h.unit = pg_str(res, i, 4);
        h.has_latest = pg_latest_of(&q, sid, res, i, 10, 11, &h.latest_ts, &h.latest_value);
        int stop = fn(ud, &h);
        if (stop) {
            rc = stop;
            goto out;
        }
    }
    rc = 0;
out:
    PQclear(res);
    pg_read_end(&q);
    co_head_buf_free(&hp);
    return rc;
}

/* ---------------------------------------------------------------- a summary batch */

/* What one summary_put works with. */
typedef struct put_ctx {
    pg_query q;
    const char *site;
    char now[32];
    char labels[CO_LABELS_MAX];
} put_ctx;

/* Run a statement and drop its result. 0 or -1 with q->err. */
static int run(put_ctx *c, const char *what, const char *sql, int n, const char *const *p)
{
    PGresult *res = pg_exec(&c->q, what, sql, n, p);
    if (!res) return -1;
    PQclear(res);
    return 0;
}

/* Run a statement returning one integer (RETURNING id). 0 or -1. */
static int run_id(put_ctx *c, const char *what, const char *sql, int n, const char *const *p,
                  int64_t *id)
{
    PGresult *res = pg_exec(&c->q, what, sql, n, p);
    if (!res) return -1;
    int ok = PQntuples(res) == 1;
    if (ok) *id = pg_int(res, 0, 0);
    PQclear(res);
    if (!ok) cm_seterr(c->q.err, c->q.errlen, "postgresql: %s: no row returned", what);
    return ok ? 0 : -1;
}

static const char *ts_or_null(char *buf, int64_t v)
{
    return v ? pg_i64(buf, v) : NULL;
}

/* The id of device (site, id), created (not seen) when new. */
static int device_id(put_ctx *c, const char *device, int64_t *id)
{
    const char *p[] = {c->site, device, c->now};
    return run_id(c, "summary device",
                  "INSERT INTO devices(site, device_id, first_seen_ms, last_seen_ms)"
                  " VALUES($1, $2, $3::bigint, 0) ON CONFLICT(site, device_id) DO UPDATE"
                  " SET site = excluded.site RETURNING id",
                  3, p, id);
}

/* Canonical labels JSON of (labels, n) into c->labels. */
static int labels_of(put_ctx *c, const char *device, const char *name, const cm_label *l, size_t n)
{
    cm_series view = {.device = device, .metric = name, .labels = (cm_label *)l, .nlabels = n};
    return co_labels_json(&view, c->labels, c->q.err, c->q.errlen);
}

static int put_inventory(put_ctx *c, const cm_device_info *d)
{
    const char *p[] = {c->site,  d->id,     d->screen,   d->kind,    d->vendor,
                       d->model, d->serial, d->firmware, d->profile, c->now};
    return run(c, "summary inventory",
               "INSERT INTO devices(site, device_id, screen, kind, vendor, model, serial,"
               " firmware, profile, first_seen_ms, last_seen_ms) VALUES($1, $2, $3, $4, $5, $6,"
               " $7, $8, $9, $10::bigint, 0) ON CONFLICT(site, device_id) DO UPDATE SET"
               " screen = coalesce(excluded.screen, devices.screen),"
               " kind = coalesce(excluded.kind, devices.kind),"
               " vendor = coalesce(excluded.vendor, devices.vendor),"
               " model = coalesce(excluded.model, devices.model),"
               " serial = coalesce(excluded.serial, devices.serial),"
               " firmware = coalesce(excluded.firmware, devices.firmware),"
               " profile = coalesce(excluded.profile, devices.profile)",
               10, p);
}

static int put_rollup(put_ctx *c, const cm_rollup *r)
{
    int64_t dev, sid;
    if (device_id(c, r->device, &dev) < 0 ||
        labels_of(c, r->device, r->metric, r->labels, r->nlabels) < 0)
        return -1;
    char db[32], sb[32], b1[32], b2[32], b3[32], b4[32], b5[32];
    const char *ps[] = {pg_i64(db, dev), r->metric, c->labels, r->unit};
    if (run_id(c, "summary series",
               "INSERT INTO series(device_ref, metric, labels, unit) VALUES($1::bigint, $2, $3,"
               " $4) ON CONFLICT(device_ref, metric, md5(labels)) DO UPDATE"
               " SET unit = coalesce(excluded.unit, series.unit) RETURNING id",
               4, ps, &sid) < 0)
        return -1;
    pg_i64(sb, sid);
    for (size_t i = 0; i < r->nbuckets; i++) {
        const cm_bucket *k = &r->buckets[i];
        const char *p[] = {sb,
                           pg_i64(b1, k->bucket_ms),
                           pg_i64(b2, k->n),
                           pg_f64(b3, k->sum),
                           pg_f64(b4, k->min),
                           pg_f64(b5, k->max)};
        if (run(c, "summary roll-up",
                "INSERT INTO rollup_1h(series_id, bucket_ms, n, sum, min, max) VALUES($1::bigint,"
                " $2::bigint, $3::bigint, $4::float8, $5::float8, $6::float8)"
                " ON CONFLICT(series_id, bucket_ms) DO UPDATE SET n = excluded.n,"
                " sum = excluded.sum, min = excluded.min, max = excluded.max",
                6, p) < 0)
            return -1;
    }
    if (!r->has_latest) return 0;
    const char *pl[] = {sb, pg_i64(b1, r->latest.ts_ms), pg_f64(b2, r->latest.value)};
    return run(c, "summary latest",
               "INSERT INTO latest(series_id, ts_ms, value) VALUES($1::bigint, $2::bigint,"
               " $3::float8) ON CONFLICT(series_id) DO UPDATE SET ts_ms = excluded.ts_ms,"
               " value = excluded.value WHERE excluded.ts_ms > latest.ts_ms",
               3, pl);
}

static int history(put_ctx *c, int64_t id, int64_t ts, const char *state, const char *severity,
                   double value, double threshold)
{
    char ib[32], tb[32], vb[32], hb[32];
    const char *p[] = {pg_i64(ib, id), pg_i64(tb, ts),    state,
                       severity,       pg_f64(vb, value), pg_f64(hb, threshold)};
    return run(c, "summary alert history",
               "INSERT INTO alert_history(alert_id, ts_ms, state, severity, value, threshold)"
               " VALUES($1::bigint, $2::bigint, $3, $4, $5::float8, $6::float8)",
               6, p);
}

/* Resolve every open alert of (rule, site, device, labels): a newer one starts. */
static int resolve_open(put_ctx *c, const cm_alert_entry *a)
{
    const char *p[] = {a->rule, c->site, a->device, c->labels};
    PGresult *res = pg_exec(&c->q, "summary open alerts",
                            "SELECT id, updated_ms FROM alerts WHERE rule = $1 AND site = $2 AND"
                            " device = $3 AND labels = $4 AND state <> 'resolved' FOR UPDATE",
                            4, p);
    if (!res) return -1;
    int rc = 0;
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        int64_t id = pg_int(res, i, 0), upd = pg_int(res, i, 1);
        int64_t at = a->started_ms > upd ? a->started_ms : upd;
        char ib[32], ab[32];
        const char *pu[] = {pg_i64(ib, id), pg_i64(ab, at)};
        rc = run(c, "summary alert resolve",
                 "UPDATE alerts SET state = 'resolved', resolved_ms = $2::bigint,"
                 " updated_ms = $2::bigint WHERE id = $1::bigint",
                 2, pu);
        if (rc == 0) rc = history(c, id, at, "resolved", NULL, NAN, NAN);
    }
    PQclear(res);
    return rc;
}

static int put_alert(put_ctx *c, const cm_alert_entry *a)
{
    int64_t dev;
    if (device_id(c, a->device, &dev) < 0 ||
        labels_of(c, a->device, a->rule, a->labels, a->nlabels) < 0)
        return -1;
    char sb[32], fb[32], rb[32], ub[32], vb[32], hb[32], ib[32];
    const char *pf[] = {a->rule, c->site, a->device, c->labels, pg_i64(sb, a->started_ms)};
    PGresult *res = pg_exec(&c->q, "summary alert find",
                            "SELECT id, state, severity, updated_ms FROM alerts WHERE rule = $1"
                            " AND site = $2 AND device = $3 AND labels = $4 AND"
                            " started_ms = $5::bigint ORDER BY id DESC LIMIT 1 FOR UPDATE",
                            5, pf);
    if (!res) return -1;
    int64_t id = 0, updated = 0;
    char state[16] = "", sev[16] = "";
    if (PQntuples(res) == 1) {
        id = pg_int(res, 0, 0);
        snprintf(state, sizeof state, "%s", pg_str(res, 0, 1));
        snprintf(sev, sizeof sev, "%s", pg_str(res, 0, 2));
        updated = pg_int(res, 0, 3);
    }
    PQclear(res);
    const char *screen = a->screen ? a->screen : "";
    if (id) {
        if (a->updated_ms < updated) return 0; /* an older state of it: keep the newer */
        const char *pu[] = {pg_i64(ib, id),
                            screen,
                            a->severity,
                            a->state,
                            pg_f64(vb, a->value),
                            pg_f64(hb, a->threshold),
                            a->text,
                            ts_or_null(fb, a->firing_ms),
                            ts_or_null(rb, a->resolved_ms),
                            pg_i64(ub, a->updated_ms)};
        if (run(c, "summary alert update",
                "UPDATE alerts SET screen = $2, severity = $3, state = $4, value = $5::float8,"
                " threshold = $6::float8, text = coalesce($7, text), firing_ms = $8::bigint,"
                " resolved_ms = $9::bigint, updated_ms = $10::bigint WHERE id = $1::bigint",
                10, pu) < 0)
            return -1;
        if (!strcmp(state, a->state) && !strcmp(sev, a->severity)) return 0;
        int64_t at = !strcmp(a->state, "resolved") ? a->resolved_ms : a->updated_ms;
        return history(c, id, at, a->state, a->severity, a->value, a->threshold);
    }
    if (strcmp(a->state, "resolved") != 0 && resolve_open(c, a) < 0) return -1;
    const char *pi[] = {a->rule,
                        c->site,
                        screen,
                        a->device,
                        c->labels,
                        a->severity,
                        a->state,
                        pg_f64(vb, a->value),
                        pg_f64(hb, a->threshold),
                        a->text,
                        sb,
                        ts_or_null(fb, a->firing_ms),
                        ts_or_null(rb, a->resolved_ms),
                        pg_i64(ub, a->updated_ms)};
    if (run_id(c, "summary alert insert",
               "INSERT INTO alerts(rule, site, screen, device, labels, severity, state, value,"
               " threshold, text, started_ms, firing_ms, resolved_ms, updated_ms) VALUES($1, $2,"
               " $3, $4, $5, $6, $7, $8::float8, $9::float8, $10, $11::bigint, $12::bigint,"
               " $13::bigint, $14::bigint) RETURNING id",
               14, pi, &id) < 0)
        return -1;
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

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The compliance part: each day locked (in order), then every figure into both tables. */
static int put_compliance(put_ctx *c, const cm_batch *b)
{
    const char **days = malloc(b->ncompliance * sizeof *days);
    if (!days) {
        cm_seterr(c->q.err, c->q.errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < b->ncompliance; i++)
        days[i] = b->compliance[i].day;
    qsort(days, b->ncompliance, sizeof *days, cmp_str);
    int rc = 0;
    for (size_t i = 0; i < b->ncompliance && rc == 0; i++) {
        if (i > 0 && !strcmp(days[i], days[i - 1])) continue;
        const char *p[] = {days[i]};
        /* the key space of pg_compliance_put ('cmac'): never interleaved with a recomputation */
        rc = run(c, "summary compliance lock",
                 "SELECT pg_advisory_xact_lock(1668112739, hashtext($1::text))", 1, p);
    }
    free(days);
    for (size_t i = 0; i < b->ncompliance && rc == 0; i++) {
        const cm_compliance_entry *e = &b->compliance[i];
        char ib[32], mb[32];
        const char *p[] = {c->site,
                           e->screen,
                           e->day,
                           e->quantity,
                           pg_i64(ib, e->in_ms),
                           pg_i64(mb, e->measured_ms),
                           c->now};
        rc = run(c, "summary compliance",
                 "INSERT INTO compliance_received(site, screen, day, quantity, in_ms,"
                 " measured_ms, updated_ms) VALUES($1, $2, $3, $4, $5::bigint, $6::bigint,"
                 " $7::bigint) ON CONFLICT(site, screen, day, quantity) DO UPDATE SET"
                 " in_ms = excluded.in_ms, measured_ms = excluded.measured_ms,"
                 " updated_ms = excluded.updated_ms",
                 7, p);
        if (rc == 0)
            rc = run(c, "summary compliance",
                     "INSERT INTO compliance(site, screen, day, quantity, in_ms, measured_ms,"
                     " updated_ms) VALUES($1, $2, $3, $4, $5::bigint, $6::bigint, $7::bigint)"
                     " ON CONFLICT(site, screen, day, quantity) DO UPDATE SET"
                     " in_ms = excluded.in_ms, measured_ms = excluded.measured_ms,"
                     " updated_ms = excluded.updated_ms",
                     7, p);
    }
    return rc;
}

int pg_summary_put(co_store *s, const cm_batch *b, int64_t now_ms, char *err, size_t errlen)
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
    c->site = b->site;
    pg_i64(c->now, now_ms);
    if (pg_conn_get(&c->q, s, err, errlen) < 0) {
        free(c);
        return -1;
    }
    int rc = -1;
    if (pg_begin(&c->q) < 0) goto out;
    const char *ps[] = {b->site, c->now};
    if (run(c, "summary site",
            "INSERT INTO sites(code, created_ms) VALUES($1, $2::bigint)"
            " ON CONFLICT(code) DO NOTHING",
            2, ps) < 0)
        goto rollback;
    for (size_t i = 0; i < b->ndevices; i++)
        if (put_inventory(c, &b->devices[i]) < 0) goto rollback;
    for (size_t i = 0; i < b->nrollups; i++)
        if (put_rollup(c, &b->rollups[i]) < 0) goto rollback;
    for (size_t i = 0; i < b->nalerts; i++)
        if (put_alert(c, &b->alerts[i]) < 0) goto rollback;
    if (b->ncompliance && put_compliance(c, b) < 0) goto rollback;
    if (pg_commit(&c->q) < 0) goto rollback;
    rc = 0;
    goto out;
rollback:
    pg_rollback(&c->q);
out:
    pg_conn_put(&c->q);
    free(c);
    return rc;
}

/* ---------------------------------------------------------------- figures received */

int pg_compliance_received(co_store *s, const char *day,
                           int (*fn)(void *ud, const co_compliance_row *r), void *ud, char *err,
                           size_t errlen)
{
    if (!s || !day || !fn) {
        cm_seterr(err, errlen, "compliance received: bad arguments");
        return -1;
    }
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    const char *p[] = {day};
    PGresult *res =
        pg_exec(&q, "compliance received",
                "SELECT site, screen, quantity, in_ms, measured_ms FROM compliance_received"
                " WHERE day = $1 ORDER BY site, screen, quantity",
                1, p);
    if (!res) goto out;
    rc = 0;
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        co_compliance_row row = {.site = pg_str(res, i, 0),
                                 .screen = pg_str(res, i, 1),
                                 .quantity = pg_str(res, i, 2),
                                 .in_ms = pg_int(res, i, 3),
                                 .measured_ms = pg_int(res, i, 4)};
        rc = fn(ud, &row);
    }
out:
    PQclear(res);
    pg_conn_put(&q);
    return rc;
}

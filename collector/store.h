/* store.h — the collector's storage interface; one implementation per backend (SQLite:
 * store_sqlite.c and the store_*.c files it names; store.c dispatches each call through the
 * backend's table of functions, store_backend.h). Writers and readers may run on different
 * threads: a backend serialises writes itself and gives every reader its own connection. */
#ifndef CO_STORE_H
#define CO_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "head.h"
#include "scope.h"
#include "walckpt.h"

typedef struct co_store co_store;

/* What happened to one batch of a commit. */
typedef enum {
    CO_BATCH_STORED = 0,
    CO_BATCH_DUPLICATE = 1, /* seq <= the agent's last_seq: stored before, nothing written */
    CO_BATCH_OVERLAP = 2    /* first_seq <= last_seq < seq: partly stored, nothing written */
} co_batch_result;

/* A series query's bounds: [from_ms, to_ms], at most `limit` points (newest kept); step_ms
 * 0 = the stored samples, 60000 or 3600000 = the minute or hour roll-ups. */
typedef struct co_range {
    int64_t from_ms, to_ms;
    size_t limit;
    int64_t step_ms;
} co_range;

/* Open (creating and migrating the schema) the SQLite database at path. 0 or -1 with err. */
int co_store_open_sqlite(co_store **out, const char *path, char *err, size_t errlen);
/* Open (creating or migrating the schema) the PostgreSQL database of a libpq connection
 * string ("host=... dbname=..." or "postgresql://..."; a password is better kept in
 * ~/.pgpass or PGPASSWORD than in the string). 0 or -1 with err (never containing the
 * password). */
int co_store_open_pg(co_store **out, const char *conninfo, char *err, size_t errlen);
void co_store_close(co_store *s);
/* The backend's name: "sqlite" or "postgresql". */
const char *co_store_backend(const co_store *s);

/* Write n batches in ONE transaction (group commit). For each batch (records first_seq..seq,
 * first_seq 0 = seq) against its agent's last_seq L: seq <= L gives CO_BATCH_DUPLICATE and
 * first_seq <= L < seq CO_BATCH_OVERLAP, nothing of it written; else result[i] =
 * CO_BATCH_STORED and, in the same transaction: its devices (inventory upsert), series,
 * points and events; a "missing" gap L+1..first_seq-1 when first_seq > L+1 (unless a gap
 * with that from_seq is known); its own gaps (each replacing the gap of its from_seq); an
 * audit row (agent, first_seq, seq, points, now); L = seq and the agent's running totals.
 * Batches of one agent must be given in seq order. Returns 0 after a durable commit, or
 * -1 with err (nothing written). Writer thread only. */
int co_store_write(co_store *s, cm_batch *const *batches, size_t n, co_batch_result *result,
                   char *err, size_t errlen);

/* The agent's last stored seq (0 when none): 1 known agent, 0 unknown (*last_seq = 0), -1
 * error. Reads the committed state, so after an overlap it is at least the L that caused it. */
int co_store_last_seq(co_store *s, const char *agent, uint64_t *last_seq, char *err, size_t errlen);

/* Tokens: only the SHA-256 hex of a token is stored. */
int co_store_token_add(co_store *s, const char *hash_hex, const char *agent_id, const char *site,
                       char *err, size_t errlen);
/* 1 found (agent_id and site filled), 0 unknown, -1 error. */
int co_store_token_lookup(co_store *s, const char *hash_hex, char *agent_id, size_t agent_len,
                          char *site, size_t site_len, char *err, size_t errlen);

/* Queries: each returns a new JSON value (caller decrefs), or NULL with err. Each takes the
 * caller's scope sc (NULL = every site) and answers only about the sites within it, filtered
 * in SQL before any limit; an object outside the scope reads exactly as an unknown one. */
/* Sites: [{"code","name","province","city","chain","devices","last_seen_ms"}] by code;
 * last_seen_ms: the newest of its devices' and its agents' (null when none; a forwarder's
 * agent row names only the last site it wrote). */
json_t *co_store_sites(co_store *s, const co_scope *sc, char *err, size_t errlen);
json_t *co_store_devices(co_store *s, const char *site /* NULL = all */, const co_scope *sc,
                         char *err, size_t errlen);
/* Devices are identified by (site, device id); site NULL = that device id in any site.
 * Latest point of every series of the device (metric NULL) or of one metric. */
json_t *co_store_latest(co_store *s, const char *site, const char *device, const char *metric,
                        const co_scope *sc, char *err, size_t errlen);
/* Points of every series of (device, metric) within range: [[ts, value]], or with a step
 * [[bucket_ms, avg, min, max, count]] and "step_ms". */
json_t *co_store_series(co_store *s, const char *site, const char *device, const char *metric,
                        const co_range *r, const co_scope *sc, char *err, size_t errlen);
/* Every agent: [{"id","site","version","last_seq","last_seen_ms","batches","samples"}] by id;
 * batches and samples are the count and the sum of samples of its audit rows. */
json_t *co_store_agents(co_store *s, const co_scope *sc, char *err, size_t errlen);
/* Gaps of one agent: [{"agent","from_seq","to_seq","reason","reported_ms"}] by from_seq
 * (empty when the agent's site is outside sc). */
json_t *co_store_gaps(co_store *s, const char *agent, const co_scope *sc, char *err, size_t errlen);
/* Events within range, newest first, at most r->limit: [{"id","site","device","ts_ms",
 * "severity","code","text","source"}]. site, device and min_severity (info < warning <
 * critical) may be NULL = any. */
json_t *co_store_events(co_store *s, const char *site, const char *device, const char *min_severity,
                        const co_range *r, const co_scope *sc, char *err, size_t errlen);
/* 1 when site is within sc (sc NULL or national: always; a site scope: that code; a province
 * or chain scope: a stored site of that province / chain), 0 when not, -1 error. */
int co_store_site_in_scope(co_store *s, const char *site, const co_scope *sc, char *err,
                           size_t errlen);
/* A cinema: national cinema code, name, province, city, chain (NULL = keep what is stored). */
typedef struct co_site {
    const char *code, *name, *province, *city, *chain;
} co_site;

/* A screen's settings; NULL fields keep what is stored (a new screen gets class theatre,
 * display projection, spl_ref {}). spl_ref_json: {"L": 85.0, "C": 85.0, ...} in dBC. */
typedef struct co_screen {
    const char *site, *screen, *name, *class_, *display, *format, *spl_ref_json;
} co_screen;

/* 1 when c is a screen class (theatre, review). */
int co_screen_class_valid(const char *c);
/* 1 when d is a display type (projection, led). */
int co_screen_display_valid(const char *d);
/* Upsert sites and screens in ONE transaction (every screen's site is created if missing);
 * by = who changed the screens (operator name or "import"). 0 or -1 with err (nothing written). */
int co_store_import(co_store *s, const co_site *sites, size_t nsites, const co_screen *screens,
                    size_t nscreens, const char *by, char *err, size_t errlen);
/* Screens with their settings and device counts, by site and screen; site/screen NULL = all:
 * [{"site","screen","name","class","display","format","spl_ref","devices","updated_ms",
 * "updated_by"}]. */
json_t *co_store_screens(co_store *s, const char *site, const char *screen, const co_scope *sc,
                         char *err, size_t errlen);
/* Store an operator token's hash for name, allowed at site ('*' = every site). 0 or -1. */
int co_store_operator_add(co_store *s, const char *hash_hex, const char *name, const char *site,
                          char *err, size_t errlen);
/* Look an operator token's hash up: 1 found (name, site filled), 0 unknown, -1 error. */
int co_store_operator_lookup(co_store *s, const char *hash_hex, char *name, size_t name_len,
                             char *site, size_t site_len, char *err, size_t errlen);
/* ---- alerts (store_alerts.c) ---- */

/* One alert transition (state names: inactive, pending, firing, resolved). A change to
 * inactive removes a pending alert that cleared before its hold (it was never an alert). */
typedef struct co_alert_change {
    const char *rule, *site, *screen, *device, *labels; /* labels: canonical JSON object */
    const char *from, *to, *severity;
    double value, threshold; /* NaN = none */
    int64_t ts_ms;
    const char *text;
} co_alert_change;

/* What co_store_alerts_apply decided for one change. */
typedef struct co_alert_outcome {
    int64_t id;   /* the alert's id (0: nothing stored) */
    int notify;   /* 1: a notification is due (fired, severity changed while firing, resolved
                     after firing) and no silence covers it */
    int silenced; /* 1: due but a silence covers it */
} co_alert_outcome;

/* Apply n changes in order in ONE transaction; out[i] for each. A due notification is
 * silenced by a silence in force at now_ms (when it would be sent), whatever the samples'
 * time. A change to pending of an alert stored as firing leaves it firing (the judge of
 * another collector sharing the store had not learnt of it yet; docs/cluster.md). 0 or -1
 * (nothing applied). */
int co_store_alerts_apply(co_store *s, const co_alert_change *c, size_t n, int64_t now_ms,
                          co_alert_outcome *out, char *err, size_t errlen);

typedef struct co_alert_filter {
    const char *site, *screen, *device, *rule;
    const char *min_severity; /* NULL = any */
    const char *state; /* pending, firing, resolved, active (= pending or firing); NULL = any */
    size_t limit;
} co_alert_filter;

/* Alerts, newest change first: [{"id","rule","site","screen","device","labels","severity",
 * "state","value","threshold","text","started_ms","firing_ms","resolved_ms","updated_ms",
 * "ack": null | {"by","comment","ts_ms"}, "silenced": bool}]. */
json_t *co_store_alerts(co_store *s, const co_alert_filter *f, const co_scope *sc, char *err,
                        size_t errlen);
/* One alert as above plus "history": [{"ts_ms","state","severity","value","threshold","by",
 * "comment"}]; NULL with err[0] = '\0' when there is no such alert (or it is outside sc). */
json_t *co_store_alert(co_store *s, int64_t id, const co_scope *sc, char *err, size_t errlen);
/* Acknowledge alert id as by (comment may be NULL) when its site is within sc (NULL = any).
 * 1 done, 0 no such alert (or outside the scope), -1 error. */
int co_store_alert_ack(co_store *s, int64_t id, const char *by, const char *comment,
                       const co_scope *sc, int64_t now_ms, char *err, size_t errlen);

/* A maintenance window: alerts matching it are kept but not notified. NULL = any. */
typedef struct co_silence {
    const char *site, *screen, *device, *rule;
    int64_t from_ms, until_ms;
    const char *by, *comment;
} co_silence;

/* Store a silence; *id set. 0 or -1. */
int co_store_silence_add(co_store *s, const co_silence *sl, int64_t *id, char *err, size_t errlen);
/* Silences of site (NULL = all) still in force at now_ms (or all when now_ms = 0). */
json_t *co_store_silences(co_store *s, const char *site, int64_t now_ms, const co_scope *sc,
                          char *err, size_t errlen);

/* An active (pending or firing) alert at start-up, for the judge's restore. */
typedef struct co_alert_row {
    const char *rule, *site, *screen, *device, *labels, *state, *severity;
    double value, threshold;
    int64_t started_ms, firing_ms, updated_ms;
} co_alert_row;

/* Call fn for every pending and firing alert; fn returns non-zero to stop. 0 or -1. */
int co_store_alerts_active(co_store *s, int (*fn)(void *ud, const co_alert_row *a), void *ud,
                           char *err, size_t errlen);

/* Log a notification (payload: its JSON) and one pending delivery per target, in one
 * transaction, before it is queued. 1 stored, 0 already there (id exists), -1 error. */
int co_store_notification_add(co_store *s, const char *id, int64_t alert_id, const char *kind,
                              const char *site, const char *payload, const char *const *targets,
                              size_t ntargets, int64_t now_ms, char *err, size_t errlen);
/* Record one delivery attempt's outcome: state pending (will retry), delivered or failed. */
int co_store_delivery_update(co_store *s, const char *id, const char *target, unsigned attempts,
                             long http_status, const char *error, const char *state, int64_t now_ms,
                             char *err, size_t errlen);
/* Notifications, newest first, each with its deliveries: [{"id","alert_id","kind","site",
 * "payload","created_ms","deliveries":[{"target","state","attempts","http_status","error",
 * "updated_ms"}]}]; site / alert_id (0) filter. */
json_t *co_store_notifications(co_store *s, const char *site, int64_t alert_id, size_t limit,
                               const co_scope *sc, char *err, size_t errlen);
/* Call fn for every pending delivery created at or after since_ms (oldest first). */
int co_store_deliveries_pending(co_store *s, int64_t since_ms,
                                int (*fn)(void *ud, const char *id, const char *target,
                                          const char *payload, unsigned attempts,
                                          int64_t created_ms),
                                void *ud, char *err, size_t errlen);

/* ---- compliance (store_compliance.c) ---- */

/* The samples of one series on one UTC day, in time order (valid during the callback). */
typedef struct co_day_series {
    const char *site, *device, *metric, *labels_json; /* labels: JSON object of strings */
    const char *screen; /* the device's screen from its inventory, NULL when unknown */
    const int64_t *ts_ms;
    const double *value;
    size_t n;
} co_day_series;

/* Call fn for every series of one of the metrics with samples on UTC day `day` (days since the
 * epoch); fn returns non-zero to stop (then returned). 0 (also when the day has no samples)
 * or -1 with err. */
int co_store_day_series(co_store *s, int64_t day, const char *const *metrics, size_t nmetrics,
                        int (*fn)(void *ud, const co_day_series *se), void *ud, char *err,
                        size_t errlen);

/* One compliance figure: of quantity ("luminance", "white", "spl") on a screen and a day, the
 * measured time and the part of it within tolerance. */
typedef struct co_compliance_row {
    const char *site, *screen, *quantity;
    int64_t in_ms, measured_ms;
} co_compliance_row;

/* Replace every figure of day ('YYYY-MM-DD') by rows, in ONE transaction. 0 or -1 with err. */
int co_store_compliance_put(co_store *s, const char *day, const co_compliance_row *rows, size_t n,
                            int64_t now_ms, char *err, size_t errlen);
/* Call fn (may be NULL) for every figure of day whose site matches site, province and city
 * (NULL = any; the site's province and city are passed, "" when unknown) and is within sc
 * (NULL = every site), ordered by site and screen; *updated_ms (may be NULL) = when the day's
 * figures were last stored (0 = never; whatever the scope). 0 or -1 with err. */
int co_store_compliance_rows(co_store *s, const char *day, const char *site, const char *province,
                             const char *city, const co_scope *sc,
                             int (*fn)(void *ud, const co_compliance_row *r, const char *province,
                                       const char *city),
                             void *ud, int64_t *updated_ms, char *err, size_t errlen);

/* A trivial read of the database (for /healthz): 0, or -1 with err. */
int co_store_ping(co_store *s, char *err, size_t errlen);
/* Samples newer than what a series has in the tables are held in memory (the head, head.h:
 * logged durably at each commit, written out sorted by series: on SQLite in parts between
 * the commits) until it holds
 * max_points or its oldest commit is max_age_ms old (0: the backend's defaults: SQLite
 * 2,000,000 points and 5 minutes, PostgreSQL 500,000 points and 2 s); reads include them. A backend
 * without a head ignores this. 0 or -1. */
int co_store_set_head(co_store *s, size_t max_points, int64_t max_age_ms);
/* Write the head out to the tables now (also done at close). 0 or -1 with err. */
int co_store_flush(co_store *s, char *err, size_t errlen);
/* Housekeeping the writer thread does when idle (about once a second): the head written out
 * when it is due by age. 0 or -1 with err. Writer thread only. */
int co_store_maintain(co_store *s, int64_t now_ms, char *err, size_t errlen);
/* What the head holds and has written out so far (for /metrics; any thread): 0, or 1 when the
 * backend has no head. */
int co_store_head_usage(co_store *s, co_head_usage *u);
/* The checkpoints of SQLite's write-ahead log so far (walckpt.h; any thread): 0, or 1 when the
 * backend has none of its own (PostgreSQL checkpoints itself). */
int co_store_wal_stats(co_store *s, co_walckpt_stats *out);
/* Counts for /metrics and tests: total samples, series, devices. */
int co_store_counts(co_store *s, int64_t *samples, int64_t *series, int64_t *devices, char *err,
                    size_t errlen);

/* ---- access (store_access.c) ---- */

#define CO_PWHASH_MAX 255 /* longest stored password hash string */

/* A viewer account as stored (never with its password hash). */
typedef struct co_viewer_row {
    char name[CM_MAX_NAME + 1];
    char role[16];                     /* "viewer" or "operator" */
    char scope_kind[16];               /* "all", "province", "chain", "site" */
    char scope_value[CM_MAX_NAME + 1]; /* "" for all */
    int disabled;
    int64_t created_ms, updated_ms;
} co_viewer_row;

/* Add viewer v (name, role, scope) with password hash pwhash. 1 added, 0 the name exists,
 * -1 error. */
int co_store_viewer_add(co_store *s, const co_viewer_row *v, const char *pwhash, int64_t now_ms,
                        char *err, size_t errlen);
/* Look a viewer up: 1 found (v filled; pwhash filled when not NULL), 0 unknown, -1 error. */
int co_store_viewer_get(co_store *s, const char *name, co_viewer_row *v, char *pwhash, size_t pwlen,
                        char *err, size_t errlen);
/* Call fn for every viewer by name; fn returns non-zero to stop. 0 or -1. */
int co_store_viewers(co_store *s, int (*fn)(void *ud, const co_viewer_row *v), void *ud, char *err,
                     size_t errlen);
/* Replace a viewer's password hash and end its sessions. 1 done, 0 unknown, -1 error. */
int co_store_viewer_passwd(co_store *s, const char *name, const char *pwhash, int64_t now_ms,
                           char *err, size_t errlen);
/* Remove a viewer and its sessions. 1 removed, 0 unknown, -1 error. */
int co_store_viewer_remove(co_store *s, const char *name, char *err, size_t errlen);

/* Store a session (hash_hex: SHA-256 hex of the cookie's token) of viewer. 0 or -1. */
int co_store_session_add(co_store *s, const char *hash_hex, const char *viewer, int64_t now_ms,
                         int64_t expires_ms, char *err, size_t errlen);
/* A live session: 1 (v filled with its enabled viewer, *expires_ms and *last_seen_ms set),
 * 0 unknown, expired at now_ms or its viewer disabled or gone, -1 error. */
int co_store_session_lookup(co_store *s, const char *hash_hex, int64_t now_ms, co_viewer_row *v,
                            int64_t *expires_ms, int64_t *last_seen_ms, char *err, size_t errlen);
/* Slide a session: last_seen_ms = now_ms, expires_ms. 0 or -1. */
int co_store_session_touch(co_store *s, const char *hash_hex, int64_t now_ms, int64_t expires_ms,
                           char *err, size_t errlen);
/* End a session. 1 removed, 0 unknown, -1 error. */
int co_store_session_remove(co_store *s, const char *hash_hex, char *err, size_t errlen);
/* Delete every session expired at now_ms; *removed (may be NULL) = how many. 0 or -1. */
int co_store_sessions_expire(co_store *s, int64_t now_ms, int64_t *removed, char *err,
                             size_t errlen);

/* ---- retention (store_retention.c) ---- */

/* What one retention pass removes: everything strictly older than each cut (ms since the
 * epoch; 0 = keep forever). Raw samples go by whole UTC days: a day table is dropped once its
 * last millisecond is older than raw_before_ms. */
typedef struct co_retention_cut {
    int64_t raw_before_ms, rollup_1m_before_ms, rollup_1h_before_ms, audit_before_ms;
    int64_t sessions_before_ms; /* login sessions with expires_ms <= this (0 = none) */
    size_t chunk_rows;          /* rows deleted per write transaction at most (0 = 10000) */
    int (*cancelled)(void *ud); /* may be NULL; polled between transactions: non-zero stops */
    void *ud;
} co_retention_cut;

/* What a pass removed. */
typedef struct co_retention_stats {
    int64_t days, samples;        /* day tables dropped and the samples they held */
    int64_t rollup_1m, rollup_1h; /* roll-up rows deleted */
    int64_t sessions, audit;      /* expired login sessions, audit (batches) rows deleted */
    int64_t transactions;         /* write transactions used */
    int cancelled;                /* 1: stopped early by cut->cancelled */
} co_retention_stats;

/* Apply cut in many short write transactions (the writer waits for one at most, never for the
 * whole pass). *out (zeroed first) counts what went, also after an error. 0 or -1 with err. */
int co_store_retention(co_store *s, const co_retention_cut *cut, co_retention_stats *out, char *err,
                       size_t errlen);

/* ---- dashboard (store_dashboard.c) ---- */

/* The grouping of the dashboard's overview. */
typedef enum { CO_DASH_PROVINCE = 0, CO_DASH_CITY, CO_DASH_CINEMA } co_dash_level;

/* Overview rows of the sites within sc (and province / city, NULL = any), grouped by level,
 * sorted by the group's key: {["province"], ["city"] | "site","name","province","city",
 * "chain","worst"}, "cinemas", "screens", "screens_reporting" (a device of the screen seen at
 * or after seen_since_ms), "compliance": {"luminance"|"white"|"spl": sum(in_ms) /
 * sum(measured_ms) of day ('YYYY-MM-DD') | null}, "alerts": {"critical","warning","info":
 * firing alerts}. A screen is a row of screens or a screen named by a device. NULL with err. */
json_t *co_store_dash_overview(co_store *s, const co_scope *sc, co_dash_level level,
                               const char *province, const char *city, const char *day,
                               int64_t seen_since_ms, char *err, size_t errlen);
/* One cinema: {"site": {"code","name","province","city","chain"}, "halls": [{"screen","name",
 * "class","display","last_seen_ms","alerts": {"critical","warning","info"}, "latest":
 * [{"device","metric","labels","unit","ts_ms","value"}]}]} with the latest values of the
 * nmetrics (<= 8) metrics, by screen and then by time. NULL with err[0] = '\0' when the site
 * is unknown or outside sc; NULL with err on error. */
json_t *co_store_dash_cinema(co_store *s, const co_scope *sc, const char *site,
                             const char *const *metrics, size_t nmetrics, char *err, size_t errlen);
/* One hall: {"screen": {as co_store_screens, "known": false and null settings when the screen
 * is only named by devices}, "devices": [{"device","kind","vendor","model","last_seen_ms",
 * "metrics": [{"metric","labels","unit","ts_ms","value"}]}]} by device and metric. NULL with
 * err[0] = '\0' when the site is unknown or outside sc or the screen unknown. */
json_t *co_store_dash_hall(co_store *s, const co_scope *sc, const char *site, const char *screen,
                           char *err, size_t errlen);

/* ---- summaries of tiered forwarding (store_summary.c, store_pg_summary.c; docs/forwarding.md
 * "mode = summary") ---- */

/* One series' roll-up of one UTC hour and its latest point (co_store_hour_rollups); strings
 * valid during the callback. */
typedef struct co_hour_rollup {
    const char *site, *device, *metric;
    const char *labels_json; /* canonical JSON object */
    const char *unit;        /* NULL when none */
    int64_t n;               /* >= 1 */
    double sum, min, max;
    int has_latest;
    int64_t latest_ts;
    double latest_value;
} co_hour_rollup;

/* Call fn for every series of site (NULL = every site) with samples in the UTC hour that
 * starts at hour_ms — its rollup_1h row with the samples still in the head added — ordered by
 * site, device, metric and labels; fn returns non-zero to stop (then returned). 0 or -1 with
 * err. */
int co_store_hour_rollups(co_store *s, int64_t hour_ms, const char *site,
                          int (*fn)(void *ud, const co_hour_rollup *r), void *ud, char *err,
                          size_t errlen);
/* Store the summary sections of b (wire version 2) for site b->site in ONE transaction; every
 * step is an idempotent upsert, so a batch stored twice changes nothing:
 * - the site, b->devices (inventory only: last_seen_ms is not touched, a new device gets 0, so
 *   the absence rules never watch it) and the devices and series the entries name;
 * - each roll-up bucket replaces rollup_1h of (series, hour); latest = the entry's latest when
 *   newer than the stored one;
 * - each alert is upserted by (rule, site, device, labels, started_ms): a newer or equal
 *   updated_ms replaces state, severity, value, threshold, text and times, with a history row
 *   when the state or severity changes; a new open alert resolves an older open one of the
 *   same (rule, site, device, labels);
 * - each compliance figure is kept apart (co_store_compliance_received) and put into the
 *   compliance table, updated_ms = now_ms.
 * 0 or -1 with err (nothing written). */
int co_store_summary_put(co_store *s, const cm_batch *b, int64_t now_ms, char *err, size_t errlen);
/* Call fn for every compliance figure of day ('YYYY-MM-DD') received from a tier below
 * (co_store_summary_put), by site, screen and quantity; fn returns non-zero to stop (then
 * returned). 0 (also when none was ever received) or -1 with err. */
int co_store_compliance_received(co_store *s, const char *day,
                                 int (*fn)(void *ud, const co_compliance_row *r), void *ud,
                                 char *err, size_t errlen);

#endif

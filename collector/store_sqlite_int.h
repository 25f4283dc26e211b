/* store_sqlite_int.h — what the SQLite store's source files share (store_sqlite.c: schema,
 * samples, devices, tokens; store_alerts.c: alerts, silences, notifications). Not for use
 * outside the store. */
#ifndef CO_STORE_SQLITE_INT_H
#define CO_STORE_SQLITE_INT_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>

#include "scope.h"
#include "store.h"
#include "store_backend.h"

/* A read transaction on a pooled read-only connection. */
typedef struct sq_query {
    co_store *s;
    sqlite3 *db;
    char *err;
    size_t errlen;
    struct co_head *head; /* read-locked for the whole query (sq_q_begin_head), or NULL */
} sq_query;

/* err = "sqlite: what: <message>"; returns -1. */
int sq_dberr(sqlite3 *db, const char *what, char *err, size_t errlen);
/* Step a statement that returns no row, then reset it. 0 or -1. */
int sq_step_done(sqlite3 *db, sqlite3_stmt *st, const char *what, char *err, size_t errlen);
/* Prepare sql on db into *st; 0, or -1 with err (and *st NULL). */
int sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen);
/* Bind s (NULL binds NULL) as static text. */
void sq_bind_text(sqlite3_stmt *st, int i, const char *s);
/* Bind a scope's kind and value to parameters ik and iv of a CO_SCOPE_SQL condition
 * (sc NULL = every site). */
void sq_bind_scope(sqlite3_stmt *st, int ik, int iv, const co_scope *sc);
/* Run SQL without results. 0 or -1. */
int sq_exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen);
/* Take the writer connection (its mutex held until sq_writer_unlock). */
sqlite3 *sq_writer_lock(co_store *s);
void sq_writer_unlock(co_store *s);
/* Begin a read transaction on a pooled connection; end it (rolls back, returns the
 * connection). */
int sq_q_begin(sq_query *q, co_store *s, char *err, size_t errlen);
/* The same for a query that reads samples, latest values or roll-ups: it also holds the
 * head's read lock (q->head) from before its first table read until sq_q_end, so that the
 * tables and the head it sees agree (a flush is seen wholly or not at all). */
int sq_q_begin_head(sq_query *q, co_store *s, char *err, size_t errlen);
void sq_q_end(sq_query *q);
/* The newest point of series sid: the head's when it holds one (1), else the table's when
 * has_row (1), else 0. */
int sq_latest_of(const sq_query *q, int64_t sid, int has_row, int64_t row_ts, double row_v,
                 int64_t *ts, double *v);
/* Prepare on the query's connection; NULL with q->err set. */
sqlite3_stmt *sq_q_prepare(sq_query *q, const char *sql);
/* Column i as a JSON string / integer (null when NULL). */
json_t *sq_col_json_str(sqlite3_stmt *st, int i);
json_t *sq_col_json_int(sqlite3_stmt *st, int i);
/* Every row of st through row() into a JSON array; NULL with q->err on error. */
json_t *sq_q_rows(sq_query *q, sqlite3_stmt *st, json_t *(*row)(sqlite3_stmt *));

/* For store_retention.c: the samples table name of a UTC day (days since the epoch), and
 * dropping the writer's cached statements for it (writer lock held, no transaction open). */
void sq_chunk_table(int64_t day, char *buf, size_t len);
void sq_chunk_forget(co_store *s, int64_t day);

/* The SQLite backend's functions of store.h (co_store_<name> → sqlite_<name>), in the
 * ops table of store_sqlite.c. */
void sqlite_close(co_store *s);
int sqlite_write(co_store *s, cm_batch *const *batches, size_t n, co_batch_result *result,
                 char *err, size_t errlen);
int sqlite_last_seq(co_store *s, const char *agent, uint64_t *last_seq, char *err, size_t errlen);
int sqlite_token_add(co_store *s, const char *hash_hex, const char *agent_id, const char *site,
                     char *err, size_t errlen);
int sqlite_token_lookup(co_store *s, const char *hash_hex, char *agent_id, size_t agent_len,
                        char *site, size_t site_len, char *err, size_t errlen);
json_t *sqlite_sites(co_store *s, const co_scope *sc, char *err, size_t errlen);
json_t *sqlite_devices(co_store *s, const char *site /* NULL = all */, const co_scope *sc,
                       char *err, size_t errlen);
json_t *sqlite_latest(co_store *s, const char *site, const char *device, const char *metric,
                      const co_scope *sc, char *err, size_t errlen);
json_t *sqlite_series(co_store *s, const char *site, const char *device, const char *metric,
                      const co_range *r, const co_scope *sc, char *err, size_t errlen);
json_t *sqlite_agents(co_store *s, const co_scope *sc, char *err, size_t errlen);
json_t *sqlite_gaps(co_store *s, const char *agent, const co_scope *sc, char *err, size_t errlen);
json_t *sqlite_events(co_store *s, const char *site, const char *device, const char *min_severity,
                      const co_range *r, const co_scope *sc, char *err, size_t errlen);
int sqlite_site_in_scope(co_store *s, const char *site, const co_scope *sc, char *err,
                         size_t errlen);
int sqlite_import(co_store *s, const co_site *sites, size_t nsites, const co_screen *screens,
                  size_t nscreens, const char *by, char *err, size_t errlen);
json_t *sqlite_screens(co_store *s, const char *site, const char *screen, const co_scope *sc,
                       char *err, size_t errlen);
int sqlite_operator_add(co_store *s, const char *hash_hex, const char *name, const char *site,
                        char *err, size_t errlen);
int sqlite_operator_lookup(co_store *s, const char *hash_hex, char *name, size_t name_len,
                           char *site, size_t site_len, char *err, size_t errlen);
int sqlite_ping(co_store *s, char *err, size_t errlen);
int sqlite_set_head(co_store *s, size_t max_points, int64_t max_age_ms);
int sqlite_flush(co_store *s, char *err, size_t errlen);
int sqlite_maintain(co_store *s, int64_t now_ms, char *err, size_t errlen);
co_head *sqlite_head(co_store *s);
int sqlite_wal_stats(co_store *s, co_walckpt_stats *out);
int sqlite_counts(co_store *s, int64_t *samples, int64_t *series, int64_t *devices, char *err,
                  size_t errlen);
int sqlite_alerts_apply(co_store *s, const co_alert_change *c, size_t n, int64_t now_ms,
                        co_alert_outcome *out, char *err, size_t errlen);
json_t *sqlite_alerts(co_store *s, const co_alert_filter *f, const co_scope *sc, char *err,
                      size_t errlen);
json_t *sqlite_alert(co_store *s, int64_t id, const co_scope *sc, char *err, size_t errlen);
int sqlite_alert_ack(co_store *s, int64_t id, const char *by, const char *comment,
                     const co_scope *sc, int64_t now_ms, char *err, size_t errlen);
int sqlite_silence_add(co_store *s, const co_silence *sl, int64_t *id, char *err, size_t errlen);
json_t *sqlite_silences(co_store *s, const char *site, int64_t now_ms, const co_scope *sc,
                        char *err, size_t errlen);
int sqlite_alerts_active(co_store *s, int (*fn)(void *ud, const co_alert_row *a), void *ud,
                         char *err, size_t errlen);
int sqlite_notification_add(co_store *s, const char *id, int64_t alert_id, const char *kind,
                            const char *site, const char *payload, const char *const *targets,
                            size_t ntargets, int64_t now_ms, char *err, size_t errlen);
int sqlite_delivery_update(co_store *s, const char *id, const char *target, unsigned attempts,
                           long http_status, const char *error, const char *state, int64_t now_ms,
                           char *err, size_t errlen);
json_t *sqlite_notifications(co_store *s, const char *site, int64_t alert_id, size_t limit,
                             const co_scope *sc, char *err, size_t errlen);
int sqlite_deliveries_pending(co_store *s, int64_t since_ms,
                              int (*fn)(void *ud, const char *id, const char *target,
                                        const char *payload, unsigned attempts, int64_t created_ms),
                              void *ud, char *err, size_t errlen);
int sqlite_day_series(co_store *s, int64_t day, const char *const *metrics, size_t nmetrics,
                      int (*fn)(void *ud, const co_day_series *se), void *ud, char *err,
                      size_t errlen);
int sqlite_compliance_put(co_store *s, const char *day, const co_compliance_row *rows, size_t n,
                          int64_t now_ms, char *err, size_t errlen);
int sqlite_compliance_rows(co_store *s, const char *day, const char *site, const char *province,
                           const char *city, const co_scope *sc,
                           int (*fn)(void *ud, const co_compliance_row *r, const char *province,
                                     const char *city),
                           void *ud, int64_t *updated_ms, char *err, size_t errlen);
int sqlite_viewer_add(co_store *s, const co_viewer_row *v, const char *pwhash, int64_t now_ms,
                      char *err, size_t errlen);
int sqlite_viewer_get(co_store *s, const char *name, co_viewer_row *v, char *pwhash, size_t pwlen,
                      char *err, size_t errlen);
int sqlite_viewers(co_store *s, int (*fn)(void *ud, const co_viewer_row *v), void *ud, char *err,
                   size_t errlen);
int sqlite_viewer_passwd(co_store *s, const char *name, const char *pwhash, int64_t now_ms,
                         char *err, size_t errlen);
int sqlite_viewer_remove(co_store *s, const char *name, char *err, size_t errlen);
int sqlite_session_add(co_store *s, const char *hash_hex, const char *viewer, int64_t now_ms,
                       int64_t expires_ms, char *err, size_t errlen);
int sqlite_session_lookup(co_store *s, const char *hash_hex, int64_t now_ms, co_viewer_row *v,
                          int64_t *expires_ms, int64_t *last_seen_ms, char *err, size_t errlen);
int sqlite_session_touch(co_store *s, const char *hash_hex, int64_t now_ms, int64_t expires_ms,
                         char *err, size_t errlen);
int sqlite_session_remove(co_store *s, const char *hash_hex, char *err, size_t errlen);
int sqlite_sessions_expire(co_store *s, int64_t now_ms, int64_t *removed, char *err, size_t errlen);
int sqlite_retention(co_store *s, const co_retention_cut *cut, co_retention_stats *out, char *err,
                     size_t errlen);
json_t *sqlite_dash_overview(co_store *s, const co_scope *sc, co_dash_level level,
                             const char *province, const char *city, const char *day,
                             int64_t seen_since_ms, char *err, size_t errlen);
json_t *sqlite_dash_cinema(co_store *s, const co_scope *sc, const char *site,
                           const char *const *metrics, size_t nmetrics, char *err, size_t errlen);
json_t *sqlite_dash_hall(co_store *s, const co_scope *sc, const char *site, const char *screen,
                         char *err, size_t errlen);
/* store_summary.c */
int sqlite_hour_rollups(co_store *s, int64_t hour_ms, const char *site,
                        int (*fn)(void *ud, const co_hour_rollup *r), void *ud, char *err,
                        size_t errlen);
int sqlite_summary_put(co_store *s, const cm_batch *b, int64_t now_ms, char *err, size_t errlen);
int sqlite_compliance_received(co_store *s, const char *day,
                               int (*fn)(void *ud, const co_compliance_row *r), void *ud, char *err,
                               size_t errlen);

#endif

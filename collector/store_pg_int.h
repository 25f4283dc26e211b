/* store_pg_int.h — what the PostgreSQL store's source files share (store_pg.c: connections,
 * schema and migrations, the write path, tokens; store_pg_query.c: the inventory and sample
 * queries; store_pg_alerts.c, store_pg_compliance.c, store_pg_access.c, store_pg_dashboard.c,
 * store_pg_retention.c: as their SQLite counterparts). Not for use outside the store.
 *
 * Every statement is parameterised ($1, $2, ... bound as text by PQexecParams); values are
 * never spliced into SQL. Tables and columns are those of the SQLite schema (store_sqlite.c),
 * except that samples live in one table `samples(series_id, ts_ms, value)` partitioned by
 * range of ts_ms, one partition per UTC day (samples_YYYYMMDD), created ahead by the writer.
 * New samples are held in the store's head (head.h) and written out every few seconds: every
 * read of samples, latest values and roll-ups goes through pg_read_begin and adds the head. */
#ifndef CO_STORE_PG_INT_H
#define CO_STORE_PG_INT_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "head.h"
#include "scope.h"
#include "store.h"
#include "store_backend.h"

/* A connection taken from the store's pool for one piece of work (a read, or a write
 * transaction); given back with pg_conn_put (pg_read_end after pg_read_begin). */
typedef struct pg_query {
    co_store *s;
    PGconn *c;
    char *err;
    size_t errlen;
    co_head *head; /* pg_read_begin: the store's head, read-locked until pg_read_end */
} pg_query;

/* Take a pooled connection (connecting when none is idle) into q. 0 or -1 with err. */
int pg_conn_get(pg_query *q, co_store *s, char *err, size_t errlen);
/* Give it back (a connection in a failed or open transaction is rolled back first, a broken
 * one closed). */
void pg_conn_put(pg_query *q);

/* A read of samples, latest values or roll-ups, which adds what the store's head holds (the
 * samples committed and not yet written out to the tables, head.h): a pooled connection in a
 * read-only repeatable-read transaction (one snapshot) that first locks the tables such reads
 * use (ACCESS SHARE: so that no statement of the read waits for a lock while the head is
 * locked), then the head's read lock, held until pg_read_end, so that a flush of the head is
 * seen wholly or not at all. 0 or -1 with err. */
int pg_read_begin(pg_query *q, co_store *s, char *err, size_t errlen);
/* End it: the head unlocked, the transaction rolled back, the connection given back. */
void pg_read_end(pg_query *q);
/* The latest value of series sid in a read of pg_read_begin: the newer of the head's newest
 * point and the tables' (row r of res, columns cts and cv; a NULL cts: none), the head's when
 * both have the same time. 1 (*ts, *v set) or 0 (no point anywhere). */
int pg_latest_of(const pg_query *q, int64_t sid, const PGresult *res, int r, int cts, int cv,
                 int64_t *ts, double *v);

/* Run sql with n text parameters (NULL = SQL NULL). Returns a result of status
 * PGRES_TUPLES_OK or PGRES_COMMAND_OK (caller PQclear()s), or NULL with q->err =
 * "postgresql: what: <message>". */
PGresult *pg_exec(pg_query *q, const char *what, const char *sql, int n, const char *const *params);
/* Run sql without parameters or result rows (BEGIN, COMMIT, ...). 0 or -1 with q->err. */
int pg_cmd(pg_query *q, const char *what, const char *sql);
/* BEGIN ... COMMIT helpers: begin (isolation READ COMMITTED), commit, rollback. 0 or -1. */
int pg_begin(pg_query *q);
int pg_commit(pg_query *q);
void pg_rollback(pg_query *q);

/* Text of an integer / a double for a parameter (buf of at least 32 bytes); returns buf.
 * pg_f64 prints 17 significant digits (exact round trip); NaN gives NULL (SQL NULL). */
const char *pg_i64(char *buf, int64_t v);
const char *pg_f64(char *buf, double v);

/* The scope as two parameters for a CO_SCOPE_SQL condition written with "$k::int" and "$v"
 * (sc NULL = every site): params[ik] = kind ("0".."3"), params[iv] = value. kbuf: 4 bytes. */
void pg_scope_params(const co_scope *sc, const char **params, int ik, int iv, char *kbuf);

/* Cells of row r, column c: NULL (SQL NULL) → JSON null. */
json_t *pg_json_str(const PGresult *res, int r, int c);
json_t *pg_json_int(const PGresult *res, int r, int c);
json_t *pg_json_real(const PGresult *res, int r, int c);
/* The text of a jsonb / json column parsed (labels, spl_ref, payload); {} when NULL or bad. */
json_t *pg_json_obj(const PGresult *res, int r, int c);
/* Cells as C values (0 / 0.0 / NULL for SQL NULL). */
int64_t pg_int(const PGresult *res, int r, int c);
double pg_real(const PGresult *res, int r, int c);
const char *pg_str(const PGresult *res, int r, int c);

/* Every row of res through row(res, r) into a new JSON array; NULL on OOM. */
json_t *pg_rows(const PGresult *res, json_t *(*row)(const PGresult *res, int r));

/* For store_pg_retention.c: the partition of samples for a UTC day (days since the epoch). */
void pg_partition_name(int64_t day, char *buf, size_t len);

/* The PostgreSQL backend's functions of store.h (co_store_<name> → pg_<name>), in the ops
 * table of store_pg.c. */
void pg_close(co_store *s);
int pg_write(co_store *s, cm_batch *const *batches, size_t n, co_batch_result *result, char *err,
             size_t errlen);
int pg_last_seq(co_store *s, const char *agent, uint64_t *last_seq, char *err, size_t errlen);
int pg_token_add(co_store *s, const char *hash_hex, const char *agent_id, const char *site,
                 char *err, size_t errlen);
int pg_token_lookup(co_store *s, const char *hash_hex, char *agent_id, size_t agent_len, char *site,
                    size_t site_len, char *err, size_t errlen);
json_t *pg_sites(co_store *s, const co_scope *sc, char *err, size_t errlen);
json_t *pg_devices(co_store *s, const char *site, const co_scope *sc, char *err, size_t errlen);
json_t *pg_latest(co_store *s, const char *site, const char *device, const char *metric,
                  const co_scope *sc, char *err, size_t errlen);
json_t *pg_series(co_store *s, const char *site, const char *device, const char *metric,
                  const co_range *r, const co_scope *sc, char *err, size_t errlen);
json_t *pg_agents(co_store *s, const co_scope *sc, char *err, size_t errlen);
json_t *pg_gaps(co_store *s, const char *agent, const co_scope *sc, char *err, size_t errlen);
json_t *pg_events(co_store *s, const char *site, const char *device, const char *min_severity,
                  const co_range *r, const co_scope *sc, char *err, size_t errlen);
int pg_site_in_scope(co_store *s, const char *site, const co_scope *sc, char *err, size_t errlen);
int pg_import(co_store *s, const co_site *sites, size_t nsites, const co_screen *screens,
              size_t nscreens, const char *by, char *err, size_t errlen);
json_t *pg_screens(co_store *s, const char *site, const char *screen, const co_scope *sc, char *err,
                   size_t errlen);
int pg_operator_add(co_store *s, const char *hash_hex, const char *name, const char *site,
                    char *err, size_t errlen);
int pg_operator_lookup(co_store *s, const char *hash_hex, char *name, size_t name_len, char *site,
                       size_t site_len, char *err, size_t errlen);
int pg_alerts_apply(co_store *s, const co_alert_change *c, size_t n, int64_t now_ms,
                    co_alert_outcome *out, char *err, size_t errlen);
json_t *pg_alerts(co_store *s, const co_alert_filter *f, const co_scope *sc, char *err,
                  size_t errlen);
json_t *pg_alert(co_store *s, int64_t id, const co_scope *sc, char *err, size_t errlen);
int pg_alert_ack(co_store *s, int64_t id, const char *by, const char *comment, const co_scope *sc,
                 int64_t now_ms, char *err, size_t errlen);
int pg_silence_add(co_store *s, const co_silence *sl, int64_t *id, char *err, size_t errlen);
json_t *pg_silences(co_store *s, const char *site, int64_t now_ms, const co_scope *sc, char *err,
                    size_t errlen);
int pg_alerts_active(co_store *s, int (*fn)(void *ud, const co_alert_row *a), void *ud, char *err,
                     size_t errlen);
int pg_notification_add(co_store *s, const char *id, int64_t alert_id, const char *kind,
                        const char *site, const char *payload, const char *const *targets,
                        size_t ntargets, int64_t now_ms, char *err, size_t errlen);
int pg_delivery_update(co_store *s, const char *id, const char *target, unsigned attempts,
                       long http_status, const char *error, const char *state, int64_t now_ms,
                       char *err, size_t errlen);
json_t *pg_notifications(co_store *s, const char *site, int64_t alert_id, size_t limit,
                         const co_scope *sc, char *err, size_t errlen);
int pg_deliveries_pending(co_store *s, int64_t since_ms,
                          int (*fn)(void *ud, const char *id, const char *target,
                                    const char *payload, unsigned attempts, int64_t created_ms),
                          void *ud, char *err, size_t errlen);
int pg_day_series(co_store *s, int64_t day, const char *const *metrics, size_t nmetrics,
                  int (*fn)(void *ud, const co_day_series *se), void *ud, char *err, size_t errlen);
int pg_compliance_put(co_store *s, const char *day, const co_compliance_row *rows, size_t n,
                      int64_t now_ms, char *err, size_t errlen);
int pg_compliance_rows(co_store *s, const char *day, const char *site, const char *province,
                       const char *city, const co_scope *sc,
                       int (*fn)(void *ud, const co_compliance_row *r, const char *province,
                                 const char *city),
                       void *ud, int64_t *updated_ms, char *err, size_t errlen);
int pg_ping(co_store *s, char *err, size_t errlen);
int pg_counts(co_store *s, int64_t *samples, int64_t *series, int64_t *devices, char *err,
              size_t errlen);
int pg_viewer_add(co_store *s, const co_viewer_row *v, const char *pwhash, int64_t now_ms,
                  char *err, size_t errlen);
int pg_viewer_get(co_store *s, const char *name, co_viewer_row *v, char *pwhash, size_t pwlen,
                  char *err, size_t errlen);
int pg_viewers(co_store *s, int (*fn)(void *ud, const co_viewer_row *v), void *ud, char *err,
               size_t errlen);
int pg_viewer_passwd(co_store *s, const char *name, const char *pwhash, int64_t now_ms, char *err,
                     size_t errlen);
int pg_viewer_remove(co_store *s, const char *name, char *err, size_t errlen);
int pg_session_add(co_store *s, const char *hash_hex, const char *viewer, int64_t now_ms,
                   int64_t expires_ms, char *err, size_t errlen);
int pg_session_lookup(co_store *s, const char *hash_hex, int64_t now_ms, co_viewer_row *v,
                      int64_t *expires_ms, int64_t *last_seen_ms, char *err, size_t errlen);
int pg_session_touch(co_store *s, const char *hash_hex, int64_t now_ms, int64_t expires_ms,
                     char *err, size_t errlen);
int pg_session_remove(co_store *s, const char *hash_hex, char *err, size_t errlen);
int pg_sessions_expire(co_store *s, int64_t now_ms, int64_t *removed, char *err, size_t errlen);
int pg_retention(co_store *s, const co_retention_cut *cut, co_retention_stats *out, char *err,
                 size_t errlen);
int pg_set_head(co_store *s, size_t max_points, int64_t max_age_ms);
int pg_flush(co_store *s, char *err, size_t errlen);
int pg_maintain(co_store *s, int64_t now_ms, char *err, size_t errlen);
co_head *pg_head(co_store *s);
json_t *pg_dash_overview(co_store *s, const co_scope *sc, co_dash_level level, const char *province,
                         const char *city, const char *day, int64_t seen_since_ms, char *err,
                         size_t errlen);
json_t *pg_dash_cinema(co_store *s, const co_scope *sc, const char *site,
                       const char *const *metrics, size_t nmetrics, char *err, size_t errlen);
json_t *pg_dash_hall(co_store *s, const co_scope *sc, const char *site, const char *screen,
                     char *err, size_t errlen);
/* store_pg_summary.c */
int pg_hour_rollups(co_store *s, int64_t hour_ms, const char *site,
                    int (*fn)(void *ud, const co_hour_rollup *r), void *ud, char *err,
                    size_t errlen);
int pg_summary_put(co_store *s, const cm_batch *b, int64_t now_ms, char *err, size_t errlen);
int pg_compliance_received(co_store *s, const char *day,
                           int (*fn)(void *ud, const co_compliance_row *r), void *ud, char *err,
                           size_t errlen);

#endif

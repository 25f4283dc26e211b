/* store_retention.c — retention for the SQLite store (store.h, co_store_retention).
 *
 * Everything is removed in short write transactions on the writer connection, each taking
 * the writer lock for one bounded piece of work and pausing briefly after it, so a batch
 * being ingested waits for one piece at most, never for a whole pass:
 * - raw samples: a UTC day's table (samples_YYYYMMDD) is dropped whole, with its `chunks`
 *   row, once the day's last millisecond is older than the cut; the writer's cached
 *   statements for it are forgotten first (sq_chunk_forget). A DROP visits every page of
 *   the table, so a day of more than chunk_rows samples is first emptied from the front in
 *   chunks (primary-key range deletes), and the DROP of what is left is short;
 * - roll-ups: per series, the oldest rows go by primary-key range (series_id, bucket_ms) in
 *   slices of at most chunk_rows buckets; series without old rows cost one index probe;
 * - login sessions past their expiry, in chunks;
 * - audit rows (`batches`) per agent, walking up from its oldest seq until the first row
 *   received after the cut. The agents' running totals (agents.batches, .samples) and last
 *   seq are kept, so duplicates are still recognised. */
#include "store.h"
#include "store_sqlite_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errbuf.h"

#define DAY_MS 86400000LL
#define MINUTE_MS 60000LL
#define HOUR_MS 3600000LL
#define DEFAULT_CHUNK_ROWS 10000
#define KEYS_PER_TXN 2048 /* series or agents visited in one transaction at most */
#define PAUSE_NS 1000000L /* after each transaction: the writer takes the lock meanwhile */
#define DAYS_MAX 4096     /* day tables dropped in one pass at most (the rest next pass) */

typedef struct pass {
    co_store *s;
    const co_retention_cut *cut;
    co_retention_stats *st;
    int64_t chunk; /* rows per transaction */
    char *err;
    size_t errlen;
} pass;

static int stop_requested(pass *p)
{
    if (p->cut->cancelled && p->cut->cancelled(p->cut->ud)) {
        p->st->cancelled = 1;
        return 1;
    }
    return 0;
}

/* Take the writer and open a write transaction; NULL (lock released) on error. */
static sqlite3 *txn_begin(pass *p)
{
    sqlite3 *db = sq_writer_lock(p->s);
    if (sq_exec_sql(db, "BEGIN IMMEDIATE", p->err, p->errlen) < 0) {
        sq_writer_unlock(p->s);
        return NULL;
    }
    return db;
}

/* Commit (ok) or roll back, release the writer and pause. 0 when committed, else -1. */
static int txn_end(pass *p, sqlite3 *db, int ok)
{
    if (ok && sq_exec_sql(db, "COMMIT", p->err, p->errlen) < 0) ok = 0;
    if (!ok && !sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sq_writer_unlock(p->s);
    p->st->transactions++;
    struct timespec ts = {0, PAUSE_NS};
    nanosleep(&ts, NULL);
    return ok ? 0 : -1;
}

/* Step st once: 1 row (value of column 0 in *v, or *isnull), 0 none, -1 error. */
static int one_int(pass *p, sqlite3 *db, sqlite3_stmt *st, int64_t *v, int *isnull)
{
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        *isnull = sqlite3_column_type(st, 0) == SQLITE_NULL;
        *v = sqlite3_column_int64(st, 0);
        ret = 1;
    } else if (rc != SQLITE_DONE) {
        ret = sq_dberr(db, "retention", p->err, p->errlen);
    }
    sqlite3_reset(st);
    return ret;
}

/* ---------------------------------------------------------------- raw samples */

/* The days listed in chunks before `before_day`, oldest first, with their row counts. */
static int old_days(pass *p, int64_t before_day, int64_t *days, int64_t *rows, size_t *n)
{
    *n = 0;
    sqlite3 *db = sq_writer_lock(p->s);
    sqlite3_stmt *st = NULL;
    int ret = sq_prepare(db, "SELECT day, rows FROM chunks WHERE day < ?1 ORDER BY day LIMIT ?2",
                         &st, p->err, p->errlen);
    if (ret == 0) {
        sqlite3_bind_int64(st, 1, before_day);
        sqlite3_bind_int64(st, 2, DAYS_MAX);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < DAYS_MAX) {
            days[*n] = sqlite3_column_int64(st, 0);
            rows[*n] = sqlite3_column_int64(st, 1);
            (*n)++;
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) ret = sq_dberr(db, "chunks", p->err, p->errlen);
    }
    sqlite3_finalize(st);
    sq_writer_unlock(p->s);
    return ret;
}

/* 1 when the table exists (on the writer connection, lock held), 0 not, -1 error. */
static int table_exists(pass *p, sqlite3 *db, const char *name)
{
    sqlite3_stmt *st = NULL;
    if (sq_prepare(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", &st,
                   p->err, p->errlen) < 0)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sq_dberr(db, name, p->err, p->errlen);
    return rc == SQLITE_ROW;
}

/* Delete a big day table's rows from the front, chunk rows per transaction, so that the DROP
 * that follows (which visits every page of the table) is short too. 0 (also when stopped:
 * p->st->cancelled) or -1. */
static int empty_day(pass *p, int64_t day, const char *name)
{
    char sel[160], del[160];
    snprintf(sel, sizeof sel,
             "SELECT series_id, ts_ms FROM %s ORDER BY series_id, ts_ms LIMIT 1 OFFSET ?1", name);
    snprintf(del, sizeof del, "DELETE FROM %s WHERE (series_id, ts_ms) < (?1, ?2)", name);
    for (int more = 1; more;) {
        if (stop_requested(p)) return 0;
        sqlite3 *db = txn_begin(p);
        if (!db) return -1;
        sqlite3_stmt *a = NULL, *b = NULL, *c = NULL;
        int64_t gone = 0;
        int ok = table_exists(p, db, name);
        if (ok <= 0) { /* nothing left to empty (or an error: ok -1) */
            txn_end(p, db, ok == 0);
            return ok;
        }
        ok = sq_prepare(db, sel, &a, p->err, p->errlen) == 0 &&
             sq_prepare(db, del, &b, p->err, p->errlen) == 0 &&
             sq_prepare(db, "UPDATE chunks SET rows = max(0, rows - ?2) WHERE day = ?1", &c, p->err,
                        p->errlen) == 0;
        if (ok) {
            sqlite3_bind_int64(a, 1, p->chunk);
            int rc = sqlite3_step(a);
            if (rc == SQLITE_ROW) {
                sqlite3_bind_int64(b, 1, sqlite3_column_int64(a, 0));
                sqlite3_bind_int64(b, 2, sqlite3_column_int64(a, 1));
                ok = sq_step_done(db, b, name, p->err, p->errlen) == 0;
                gone = ok ? sqlite3_changes(db) : 0;
                sqlite3_bind_int64(c, 1, day);
                sqlite3_bind_int64(c, 2, gone);
                ok = ok && sq_step_done(db, c, "chunks rows", p->err, p->errlen) == 0;
            } else if (rc == SQLITE_DONE) {
                more = 0; /* at most chunk rows left: the DROP takes them */
            } else {
                ok = sq_dberr(db, name, p->err, p->errlen) == 0;
            }
        }
        sqlite3_finalize(a);
        sqlite3_finalize(b);
        sqlite3_finalize(c);
        if (txn_end(p, db, ok) < 0) return -1;
        p->st->samples += gone;
    }
    return 0;
}

static int drop_days(pass *p)
{
    int64_t cut = p->cut->raw_before_ms;
    if (cut <= 0) return 0;
    int64_t *days = malloc(2 * DAYS_MAX * sizeof *days), *rows = days + DAYS_MAX;
    size_t n;
    if (!days) {
        cm_seterr(p->err, p->errlen, "out of memory");
        return -1;
    }
    int ret = old_days(p, cut / DAY_MS, days, rows, &n);
    for (size_t i = 0; ret == 0 && i < n && !stop_requested(p); i++) {
        char name[48], sql[96];
        sq_chunk_table(days[i], name, sizeof name);
        if (rows[i] > p->chunk && (ret = empty_day(p, days[i], name)) < 0) break;
        if (p->st->cancelled) break;
        sqlite3 *db = txn_begin(p);
        if (!db) {
            ret = -1;
            break;
        }
        snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", name);
        sq_chunk_forget(p->s, days[i]);
        sqlite3_stmt *left = NULL, *del = NULL;
        int64_t remaining = 0;
        int ok = sq_prepare(db, "SELECT rows FROM chunks WHERE day = ?1", &left, p->err,
                            p->errlen) == 0 &&
                 sq_exec_sql(db, sql, p->err, p->errlen) == 0 &&
                 sq_prepare(db, "DELETE FROM chunks WHERE day = ?1", &del, p->err, p->errlen) == 0;
        if (ok) {
            sqlite3_bind_int64(left, 1, days[i]);
            if (sqlite3_step(left) == SQLITE_ROW) remaining = sqlite3_column_int64(left, 0);
            sqlite3_bind_int64(del, 1, days[i]);
            ok = sq_step_done(db, del, "chunks delete", p->err, p->errlen) == 0;
        }
        sqlite3_finalize(left);
        sqlite3_finalize(del);
        if (txn_end(p, db, ok) < 0) {
            ret = -1;
            break;
        }
        p->st->days++;
        p->st->samples += remaining;
    }
    free(days);
    return ret;
}

/* ---------------------------------------------------------------- roll-ups */

typedef struct rollup_stmts {
    sqlite3_stmt *next, *lo, *del;
} rollup_stmts;

static void rollup_stmts_free(rollup_stmts *r)
{
    sqlite3_finalize(r->next);
    sqlite3_finalize(r->lo);
    sqlite3_finalize(r->del);
}

/* table: "rollup_1m" or "rollup_1h" (our constants only). */
static int rollup_stmts_prepare(pass *p, sqlite3 *db, const char *table, rollup_stmts *r)
{
    char lo[128], del[160];
    snprintf(lo, sizeof lo, "SELECT min(bucket_ms) FROM %s WHERE series_id = ?1", table);
    snprintf(del, sizeof del,
             "DELETE FROM %s WHERE series_id = ?1 AND bucket_ms >= ?2 AND bucket_ms < ?3", table);
    *r = (rollup_stmts){0};
    if (sq_prepare(db, "SELECT id FROM series WHERE id > ?1 ORDER BY id LIMIT 1", &r->next, p->err,
                   p->errlen) < 0 ||
        sq_prepare(db, lo, &r->lo, p->err, p->errlen) < 0 ||
        sq_prepare(db, del, &r->del, p->err, p->errlen) < 0) {
        rollup_stmts_free(r);
        return -1;
    }
    return 0;
}

/* Delete rows of table older than cut, series by series; *deleted counts them. */
static int prune_rollup(pass *p, const char *table, int64_t step, int64_t cut, int64_t *deleted)
{
    if (cut <= 0) return 0;
    int64_t sid = INT64_MIN; /* the series being worked on is the first id > sid */
    for (int done = 0; !done;) {
        if (stop_requested(p)) return 0;
        sqlite3 *db = txn_begin(p);
        if (!db) return -1;
        rollup_stmts r;
        int ok = rollup_stmts_prepare(p, db, table, &r) == 0;
        int64_t rows = 0, visited = 0;
        while (ok && !done && rows < p->chunk && visited < KEYS_PER_TXN) {
            int64_t id = 0, lo = 0;
            int isnull = 0, got;
            sqlite3_bind_int64(r.next, 1, sid);
            if ((got = one_int(p, db, r.next, &id, &isnull)) < 0) ok = 0;
            if (!ok) break;
            if (got == 0) {
                done = 1;
                break;
            }
            visited++;
            sqlite3_bind_int64(r.lo, 1, id);
            if (one_int(p, db, r.lo, &lo, &isnull) < 0) {
                ok = 0;
                break;
            }
            if (isnull || lo >= cut) {
                sid = id;
                continue;
            }
            int64_t hi = lo + (p->chunk - rows) * step;
            if (hi >= cut) hi = cut;
            sqlite3_bind_int64(r.del, 1, id);
            sqlite3_bind_int64(r.del, 2, lo);
            sqlite3_bind_int64(r.del, 3, hi);
            if (sq_step_done(db, r.del, table, p->err, p->errlen) < 0) {
                ok = 0;
                break;
            }
            rows += sqlite3_changes(db);
            if (hi >= cut) sid = id; /* else: more of this series next time */
        }
        rollup_stmts_free(&r);
        if (txn_end(p, db, ok) < 0) return -1;
        *deleted += rows;
    }
    return 0;
}

/* ---------------------------------------------------------------- sessions */

static int prune_sessions(pass *p)
{
    int64_t cut = p->cut->sessions_before_ms;
    if (cut <= 0) return 0;
    for (int64_t rows = p->chunk; rows >= p->chunk;) {
        if (stop_requested(p)) return 0;
        sqlite3 *db = txn_begin(p);
        if (!db) return -1;
        sqlite3_stmt *st = NULL;
        int ok = sq_prepare(db,
                            "DELETE FROM sessions WHERE hash IN (SELECT hash FROM sessions"
                            " WHERE expires_ms <= ?1 ORDER BY expires_ms LIMIT ?2)",
                            &st, p->err, p->errlen) == 0;
        if (ok) {
            sqlite3_bind_int64(st, 1, cut);
            sqlite3_bind_int64(st, 2, p->chunk);
            ok = sq_step_done(db, st, "sessions delete", p->err, p->errlen) == 0;
        }
        rows = ok ? sqlite3_changes(db) : 0;
        sqlite3_finalize(st);
        if (txn_end(p, db, ok) < 0) return -1;
        p->st->sessions += rows;
    }
    return 0;
}

/* ---------------------------------------------------------------- audit rows */

static int prune_audit(pass *p)
{
    int64_t cut = p->cut->audit_before_ms;
    if (cut <= 0) return 0;
    char agent[256] = ""; /* agents after this id are still to do */
    for (int done = 0; !done;) {
        if (stop_requested(p)) return 0;
        sqlite3 *db = txn_begin(p);
        if (!db) return -1;
        sqlite3_stmt *next = NULL, *bound = NULL, *del = NULL;
        int ok =
            sq_prepare(db, "SELECT id FROM agents WHERE id > ?1 ORDER BY id LIMIT 1", &next, p->err,
                       p->errlen) == 0 &&
            sq_prepare(db,
                       "SELECT first_seq FROM batches WHERE agent_id = ?1 AND received_ms >= ?2"
                       " ORDER BY first_seq LIMIT 1",
                       &bound, p->err, p->errlen) == 0 &&
            sq_prepare(db,
                       "DELETE FROM batches WHERE agent_id = ?1 AND first_seq IN (SELECT first_seq"
                       " FROM batches WHERE agent_id = ?1 AND first_seq < ?2 ORDER BY first_seq"
                       " LIMIT ?3)",
                       &del, p->err, p->errlen) == 0;
        int64_t rows = 0, visited = 0;
        while (ok && rows < p->chunk && visited < KEYS_PER_TXN) {
            sqlite3_bind_text(next, 1, agent, -1, SQLITE_TRANSIENT);
            int rc = sqlite3_step(next);
            if (rc == SQLITE_DONE) {
                sqlite3_reset(next);
                done = 1;
                break;
            }
            if (rc != SQLITE_ROW) {
                ok = sq_dberr(db, "agents", p->err, p->errlen) == 0;
                sqlite3_reset(next);
                break;
            }
            char id[256];
            const char *t = (const char *)sqlite3_column_text(next, 0);
            if (!t || strlen(t) >= sizeof id) { /* ids are at most CM_MAX_NAME bytes */
                cm_seterr(p->err, p->errlen, "retention: agent id too long");
                sqlite3_reset(next);
                ok = 0;
                break;
            }
            memcpy(id, t, strlen(t) + 1);
            sqlite3_reset(next);
            visited++;
            int64_t b = INT64_MAX;
            int isnull = 0;
            sqlite3_bind_text(bound, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(bound, 2, cut);
            if (one_int(p, db, bound, &b, &isnull) < 0) {
                ok = 0;
                break;
            }
            sqlite3_bind_text(del, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(del, 2, b);
            sqlite3_bind_int64(del, 3, p->chunk - rows);
            if (sq_step_done(db, del, "batches delete", p->err, p->errlen) < 0) {
                ok = 0;
                break;
            }
            int64_t gone = sqlite3_changes(db);
            rows += gone;
            if (rows < p->chunk) snprintf(agent, sizeof agent, "%s", id); /* agent finished */
        }
        sqlite3_finalize(next);
        sqlite3_finalize(bound);
        sqlite3_finalize(del);
        if (txn_end(p, db, ok) < 0) return -1;
        p->st->audit += rows;
    }
    return 0;
}

/* ---------------------------------------------------------------- the pass */

int sqlite_retention(co_store *s, const co_retention_cut *cut, co_retention_stats *out, char *err,
                     size_t errlen)
{
    memset(out, 0, sizeof *out);
    pass p = {s,   cut,   out, cut->chunk_rows ? (int64_t)cut->chunk_rows : DEFAULT_CHUNK_ROWS,
              err, errlen};
    if (drop_days(&p) < 0) return -1;
    if (prune_rollup(&p, "rollup_1m", MINUTE_MS, cut->rollup_1m_before_ms, &out->rollup_1m) < 0)
        return -1;
    if (prune_rollup(&p, "rollup_1h", HOUR_MS, cut->rollup_1h_before_ms, &out->rollup_1h) < 0)
        return -1;
    if (prune_sessions(&p) < 0) return -1;
    if (prune_audit(&p) < 0) return -1;
    return 0;
}

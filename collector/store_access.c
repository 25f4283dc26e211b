/* store_access.c — the SQLite backend of store.h's access part: viewer accounts (name, password
 * hash, role, scope) and their login sessions (only the SHA-256 of a session's token). Writes
 * go through the writer connection, reads through a pooled reader; every value is bound. */
#include <stdio.h>
#include <string.h>

#include "errbuf.h"
#include "store_util.h"
#include "store.h"
#include "store_sqlite_int.h"

/* Copy column i ("" when NULL) into out[len]. */
static void col_str(sqlite3_stmt *st, int i, char *out, size_t len)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, len, "%s", t ? (const char *)t : "");
}

/* Columns 0..6 (name, role, scope_kind, scope_value, disabled, created_ms, updated_ms). */
#define VIEWER_COLS                                                                                \
    "v.name, v.role, v.scope_kind, v.scope_value, v.disabled, v.created_ms, v.updated_ms"

static void viewer_from(sqlite3_stmt *st, co_viewer_row *v)
{
    memset(v, 0, sizeof *v);
    col_str(st, 0, v->name, sizeof v->name);
    col_str(st, 1, v->role, sizeof v->role);
    col_str(st, 2, v->scope_kind, sizeof v->scope_kind);
    col_str(st, 3, v->scope_value, sizeof v->scope_value);
    v->disabled = sqlite3_column_int(st, 4) != 0;
    v->created_ms = sqlite3_column_int64(st, 5);
    v->updated_ms = sqlite3_column_int64(st, 6);
}

static int valid_name(const char *n, char *err, size_t errlen)
{
    if (!n || !*n || strlen(n) > CM_MAX_NAME) {
        cm_seterr(err, errlen, "a viewer name must be 1..%d bytes", CM_MAX_NAME);
        return 0;
    }
    return 1;
}

/* Run one write statement on the writer connection: ?1 = a, ?2 = b (NULL binds NULL), ?3 = i3,
 * ?4 = i4 (a statement may leave some unused); *changes (may be NULL) = rows changed. 0 or -1. */
static int write1(co_store *s, const char *what, const char *sql, const char *a, const char *b,
                  int64_t i3, int64_t i4, int *changes, char *err, size_t errlen)
{
    sqlite3 *db = sq_writer_lock(s);
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sq_prepare(db, sql, &st, err, errlen) == 0) {
        int np = sqlite3_bind_parameter_count(st);
        if (np >= 1) sq_bind_text(st, 1, a);
        if (np >= 2) sq_bind_text(st, 2, b);
        if (np >= 3) sqlite3_bind_int64(st, 3, i3);
        if (np >= 4) sqlite3_bind_int64(st, 4, i4);
        if (sq_step_done(db, st, what, err, errlen) == 0) {
            rc = 0;
            if (changes) *changes = sqlite3_changes(db);
        }
    }
    sqlite3_finalize(st);
    sq_writer_unlock(s);
    return rc;
}

int sqlite_viewer_add(co_store *s, const co_viewer_row *v, const char *pwhash, int64_t now_ms,
                      char *err, size_t errlen)
{
    if (!valid_name(v->name, err, errlen)) return -1;
    if (!pwhash || !*pwhash || strlen(pwhash) > CO_PWHASH_MAX) {
        cm_seterr(err, errlen, "a viewer needs a password hash of 1..%d bytes", CO_PWHASH_MAX);
        return -1;
    }
    if (strcmp(v->role, "viewer") != 0 && strcmp(v->role, "operator") != 0) {
        cm_seterr(err, errlen, "role must be viewer or operator");
        return -1;
    }
    sqlite3 *db = sq_writer_lock(s);
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sq_prepare(db,
                   "INSERT INTO viewers(name, pwhash, role, scope_kind, scope_value, disabled,"
                   " created_ms, updated_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)"
                   " ON CONFLICT(name) DO NOTHING",
                   &st, err, errlen) == 0) {
        sq_bind_text(st, 1, v->name);
        sq_bind_text(st, 2, pwhash);
        sq_bind_text(st, 3, v->role);
        sq_bind_text(st, 4, v->scope_kind[0] ? v->scope_kind : "all");
        sq_bind_text(st, 5, v->scope_value);
        sqlite3_bind_int(st, 6, v->disabled != 0);
        sqlite3_bind_int64(st, 7, now_ms);
        if (sq_step_done(db, st, "viewer add", err, errlen) == 0) rc = sqlite3_changes(db) > 0;
    }
    sqlite3_finalize(st);
    sq_writer_unlock(s);
    return rc;
}

int sqlite_viewer_get(co_store *s, const char *name, co_viewer_row *v, char *pwhash, size_t pwlen,
                      char *err, size_t errlen)
{
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    sqlite3_stmt *st =
        sq_q_prepare(&q, "SELECT " VIEWER_COLS ", v.pwhash FROM viewers v WHERE v.name = ?1");
    if (st) {
        sq_bind_text(st, 1, name);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            viewer_from(st, v);
            if (pwhash) col_str(st, 7, pwhash, pwlen);
            rc = 1;
        } else if (r == SQLITE_DONE) {
            rc = 0;
        } else {
            sq_dberr(q.db, "viewer get", err, errlen);
        }
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return rc;
}

int sqlite_viewers(co_store *s, int (*fn)(void *ud, const co_viewer_row *v), void *ud, char *err,
                   size_t errlen)
{
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    sqlite3_stmt *st = sq_q_prepare(&q, "SELECT " VIEWER_COLS " FROM viewers v ORDER BY v.name");
    if (st) {
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            co_viewer_row v;
            viewer_from(st, &v);
            if (fn(ud, &v)) break;
        }
        if (r == SQLITE_ROW || r == SQLITE_DONE)
            rc = 0;
        else
            sq_dberr(q.db, "viewers", err, errlen);
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return rc;
}

/* Two statements in one write transaction; *changes = rows changed by the first. */
static int write2(co_store *s, const char *what, const char *sql1, const char *sql2,
                  const char *name, const char *text2, int64_t now_ms, int *changes, char *err,
                  size_t errlen)
{
    sqlite3 *db = sq_writer_lock(s);
    sqlite3_stmt *a = NULL, *b = NULL;
    int rc = -1;
    if (sq_exec_sql(db, "BEGIN IMMEDIATE", err, errlen) < 0) goto unlock;
    if (sq_prepare(db, sql1, &a, err, errlen) < 0 || sq_prepare(db, sql2, &b, err, errlen) < 0)
        goto rollback;
    sq_bind_text(a, 1, name);
    if (sqlite3_bind_parameter_count(a) >= 2) sq_bind_text(a, 2, text2);
    if (sqlite3_bind_parameter_count(a) >= 3) sqlite3_bind_int64(a, 3, now_ms);
    if (sq_step_done(db, a, what, err, errlen) < 0) goto rollback;
    *changes = sqlite3_changes(db);
    sq_bind_text(b, 1, name);
    if (sq_step_done(db, b, what, err, errlen) < 0) goto rollback;
    if (sq_exec_sql(db, "COMMIT", err, errlen) < 0) goto rollback;
    rc = 0;
    goto unlock;
rollback:
    sq_exec_sql(db, "ROLLBACK", NULL, 0);
unlock:
    sqlite3_finalize(a);
    sqlite3_finalize(b);
    sq_writer_unlock(s);
    return rc;
}

int sqlite_viewer_passwd(co_store *s, const char *name, const char *pwhash, int64_t now_ms,
                         char *err, size_t errlen)
{
    if (!valid_name(name, err, errlen)) return -1;
    if (!pwhash || !*pwhash || strlen(pwhash) > CO_PWHASH_MAX) {
        cm_seterr(err, errlen, "a password hash of 1..%d bytes is required", CO_PWHASH_MAX);
        return -1;
    }
    int n = 0;
    if (write2(s, "viewer passwd",
               "UPDATE viewers SET pwhash = ?2, updated_ms = ?3 WHERE name = ?1",
               "DELETE FROM sessions WHERE viewer = ?1", name, pwhash, now_ms, &n, err, errlen) < 0)
        return -1;
    return n > 0;
}

int sqlite_viewer_remove(co_store *s, const char *name, char *err, size_t errlen)
{
    if (!valid_name(name, err, errlen)) return -1;
    int n = 0;
    if (write2(s, "viewer remove", "DELETE FROM viewers WHERE name = ?1",
               "DELETE FROM sessions WHERE viewer = ?1", name, NULL, 0, &n, err, errlen) < 0)
        return -1;
    return n > 0;
}

int sqlite_session_add(co_store *s, const char *hash_hex, const char *viewer, int64_t now_ms,
                       int64_t expires_ms, char *err, size_t errlen)
{
    if (!co_valid_hash(hash_hex)) {
        cm_seterr(err, errlen, "session hash must be 64 lowercase hex digits (SHA-256)");
        return -1;
    }
    if (!valid_name(viewer, err, errlen)) return -1;
    return write1(s, "session add",
                  "INSERT INTO sessions(hash, viewer, created_ms, expires_ms, last_seen_ms)"
                  " VALUES(?1, ?2, ?3, ?4, ?3)",
                  hash_hex, viewer, now_ms, expires_ms, NULL, err, errlen);
}

int sqlite_session_lookup(co_store *s, const char *hash_hex, int64_t now_ms, co_viewer_row *v,
                          int64_t *expires_ms, int64_t *last_seen_ms, char *err, size_t errlen)
{
    if (!co_valid_hash(hash_hex)) return 0;
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    sqlite3_stmt *st =
        sq_q_prepare(&q, "SELECT " VIEWER_COLS ", x.expires_ms, x.last_seen_ms FROM sessions x"
                         " JOIN viewers v ON v.name = x.viewer"
                         " WHERE x.hash = ?1 AND x.expires_ms > ?2 AND v.disabled = 0");
    if (st) {
        sq_bind_text(st, 1, hash_hex);
        sqlite3_bind_int64(st, 2, now_ms);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            viewer_from(st, v);
            if (expires_ms) *expires_ms = sqlite3_column_int64(st, 7);
            if (last_seen_ms) *last_seen_ms = sqlite3_column_int64(st, 8);
            rc = 1;
        } else if (r == SQLITE_DONE) {
            rc = 0;
        } else {
            sq_dberr(q.db, "session lookup", err, errlen);
        }
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return rc;
}

int sqlite_session_touch(co_store *s, const char *hash_hex, int64_t now_ms, int64_t expires_ms,
                         char *err, size_t errlen)
{
    return write1(s, "session touch",
                  "UPDATE sessions SET last_seen_ms = ?3, expires_ms = max(expires_ms, ?4)"
                  " WHERE hash = ?1",
                  hash_hex, NULL, now_ms, expires_ms, NULL, err, errlen);
}

int sqlite_session_remove(co_store *s, const char *hash_hex, char *err, size_t errlen)
{
    int n = 0;
    if (write1(s, "session remove", "DELETE FROM sessions WHERE hash = ?1", hash_hex, NULL, 0, 0,
               &n, err, errlen) < 0)
        return -1;
    return n > 0;
}

int sqlite_sessions_expire(co_store *s, int64_t now_ms, int64_t *removed, char *err, size_t errlen)
{
    int n = 0;
    if (write1(s, "sessions expire", "DELETE FROM sessions WHERE expires_ms <= ?3", NULL, NULL,
               now_ms, 0, &n, err, errlen) < 0)
        return -1;
    if (removed) *removed = n;
    return 0;
}

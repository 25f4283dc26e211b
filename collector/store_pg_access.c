/* store_pg_access.c — the PostgreSQL backend of store.h's access part (as store_access.c):
 * viewer accounts (name, password hash, role, scope) and their login sessions (only the
 * SHA-256 of a session's token). Each call takes one pooled connection; a change of two
 * tables (password or removal, and the viewer's sessions) is one transaction. Every value is
 * a parameter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "store_util.h"
#include "store_pg_int.h"

/* Columns 0..6 (name, role, scope_kind, scope_value, disabled, created_ms, updated_ms);
 * disabled read as an integer whatever its column type. */
#define VIEWER_COLS                                                                                \
    "v.name, v.role, v.scope_kind, v.scope_value, v.disabled::int, v.created_ms, v.updated_ms"

/* Copy cell (r, c) ("" when NULL) into out[len]. */
static void cell_str(const PGresult *res, int r, int c, char *out, size_t len)
{
    const char *t = pg_str(res, r, c);
    snprintf(out, len, "%s", t ? t : "");
}

/* The viewer of row r (columns VIEWER_COLS) into v. */
static void viewer_from(const PGresult *res, int r, co_viewer_row *v)
{
    memset(v, 0, sizeof *v);
    cell_str(res, r, 0, v->name, sizeof v->name);
    cell_str(res, r, 1, v->role, sizeof v->role);
    cell_str(res, r, 2, v->scope_kind, sizeof v->scope_kind);
    cell_str(res, r, 3, v->scope_value, sizeof v->scope_value);
    v->disabled = pg_int(res, r, 4) != 0;
    v->created_ms = pg_int(res, r, 5);
    v->updated_ms = pg_int(res, r, 6);
}

/* Rows changed by a command's result. */
static int64_t changed(const PGresult *res)
{
    return strtoll(PQcmdTuples((PGresult *)res), NULL, 10);
}

/* 1 when n is a viewer name of 1..CM_MAX_NAME bytes, else 0 with err. */
static int valid_name(const char *n, char *err, size_t errlen)
{
    if (!n || !*n || strlen(n) > CM_MAX_NAME) {
        cm_seterr(err, errlen, "a viewer name must be 1..%d bytes", CM_MAX_NAME);
        return 0;
    }
    return 1;
}

/* 1 when h is a password hash of 1..CO_PWHASH_MAX bytes, else 0 (err set by the caller). */
static int valid_pwhash(const char *h)
{
    return h && *h && strlen(h) <= CO_PWHASH_MAX;
}

/* Run one statement on its own connection (autocommit); *changes (may be NULL) = rows
 * changed. 0 or -1. */
static int write1(co_store *s, const char *what, const char *sql, int n, const char *const *params,
                  int64_t *changes, char *err, size_t errlen)
{
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    PGresult *res = pg_exec(&q, what, sql, n, params);
    if (res && changes) *changes = changed(res);
    PQclear(res);
    pg_conn_put(&q);
    return res ? 0 : -1;
}

/* sql1 then "DELETE FROM sessions WHERE viewer = $1" in one transaction; *changes = rows
 * changed by sql1 (params: $1 = name, then sql1's own). 0 or -1. */
static int write_and_end_sessions(co_store *s, const char *what, const char *sql1, int n,
                                  const char *const *params, int64_t *changes, char *err,
                                  size_t errlen)
{
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    int rc = -1;
    if (pg_begin(&q) == 0) {
        PGresult *a = pg_exec(&q, what, sql1, n, params);
        PGresult *b =
            a ? pg_exec(&q, what, "DELETE FROM sessions WHERE viewer = $1::text", 1, params) : NULL;
        if (a && b) *changes = changed(a);
        if (a && b && pg_commit(&q) == 0)
            rc = 0;
        else
            pg_rollback(&q);
        PQclear(a);
        PQclear(b);
    }
    pg_conn_put(&q);
    return rc;
}

int pg_viewer_add(co_store *s, const co_viewer_row *v, const char *pwhash, int64_t now_ms,
                  char *err, size_t errlen)
{
    if (!valid_name(v->name, err, errlen)) return -1;
    if (!valid_pwhash(pwhash)) {
        cm_seterr(err, errlen, "a viewer needs a password hash of 1..%d bytes", CO_PWHASH_MAX);
        return -1;
    }
    if (strcmp(v->role, "viewer") != 0 && strcmp(v->role, "operator") != 0) {
        cm_seterr(err, errlen, "role must be viewer or operator");
        return -1;
    }
    char now[32];
    const char *p[] = {v->name,
                       pwhash,
                       v->role,
                       v->scope_kind[0] ? v->scope_kind : "all",
                       v->scope_value,
                       v->disabled ? "1" : "0",
                       pg_i64(now, now_ms)};
    int64_t n = 0;
    if (write1(s, "viewer add",
               "INSERT INTO viewers(name, pwhash, role, scope_kind, scope_value, disabled,"
               " created_ms, updated_ms) VALUES($1, $2, $3, $4, $5, $6, $7, $7)"
               " ON CONFLICT(name) DO NOTHING",
               7, p, &n, err, errlen) < 0)
        return -1;
    return n > 0;
}

int pg_viewer_get(co_store *s, const char *name, co_viewer_row *v, char *pwhash, size_t pwlen,
                  char *err, size_t errlen)
{
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    const char *p[] = {name};
    PGresult *res =
        pg_exec(&q, "viewer get",
                "SELECT " VIEWER_COLS ", v.pwhash FROM viewers v WHERE v.name = $1", 1, p);
    int rc = -1;
    if (res) {
        rc = PQntuples(res) > 0;
        if (rc) {
            viewer_from(res, 0, v);
            if (pwhash) cell_str(res, 0, 7, pwhash, pwlen);
        }
    }
    PQclear(res);
    pg_conn_put(&q);
    return rc;
}

int pg_viewers(co_store *s, int (*fn)(void *ud, const co_viewer_row *v), void *ud, char *err,
               size_t errlen)
{
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    PGresult *res =
        pg_exec(&q, "viewers",
                "SELECT " VIEWER_COLS " FROM viewers v ORDER BY v.name COLLATE \"C\"", 0, NULL);
    pg_conn_put(&q); /* every row is in res: the connection is free for others meanwhile */
    if (!res) return -1;
    for (int r = 0; r < PQntuples(res); r++) {
        co_viewer_row v;
        viewer_from(res, r, &v);
        if (fn(ud, &v)) break;
    }
    PQclear(res);
    return 0;
}

int pg_viewer_passwd(co_store *s, const char *name, const char *pwhash, int64_t now_ms, char *err,
                     size_t errlen)
{
    if (!valid_name(name, err, errlen)) return -1;
    if (!valid_pwhash(pwhash)) {
        cm_seterr(err, errlen, "a password hash of 1..%d bytes is required", CO_PWHASH_MAX);
        return -1;
    }
    char now[32];
    const char *p[] = {name, pwhash, pg_i64(now, now_ms)};
    int64_t n = 0;
    if (write_and_end_sessions(s, "viewer passwd",
                               "UPDATE viewers SET pwhash = $2, updated_ms = $3 WHERE name = $1", 3,
                               p, &n, err, errlen) < 0)
        return -1;
    return n > 0;
}

int pg_viewer_remove(co_store *s, const char *name, char *err, size_t errlen)
{
    if (!valid_name(name, err, errlen)) return -1;
    const char *p[] = {name};
    int64_t n = 0;
    if (write_and_end_sessions(s, "viewer remove", "DELETE FROM viewers WHERE name = $1", 1, p, &n,
                               err, errlen) < 0)
        return -1;
    return n > 0;
}

int pg_session_add(co_store *s, const char *hash_hex, const char *viewer, int64_t now_ms,
                   int64_t expires_ms, char *err, size_t errlen)
{
    if (!co_valid_hash(hash_hex)) {
        cm_seterr(err, errlen, "session hash must be 64 lowercase hex digits (SHA-256)");
        return -1;
    }
    if (!valid_name(viewer, err, errlen)) return -1;
    char now[32], exp[32];
    const char *p[] = {hash_hex, viewer, pg_i64(now, now_ms), pg_i64(exp, expires_ms)};
    return write1(s, "session add",
                  "INSERT INTO sessions(hash, viewer, created_ms, expires_ms, last_seen_ms)"
                  " VALUES($1, $2, $3, $4, $3)",
                  4, p, NULL, err, errlen);
}

int pg_session_lookup(co_store *s, const char *hash_hex, int64_t now_ms, co_viewer_row *v,
                      int64_t *expires_ms, int64_t *last_seen_ms, char *err, size_t errlen)
{
    if (!co_valid_hash(hash_hex)) return 0;
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    char now[32];
    const char *p[] = {hash_hex, pg_i64(now, now_ms)};
    PGresult *res = pg_exec(&q, "session lookup",
                            "SELECT " VIEWER_COLS ", x.expires_ms, x.last_seen_ms FROM sessions x"
                            " JOIN viewers v ON v.name = x.viewer"
                            " WHERE x.hash = $1 AND x.expires_ms > $2 AND v.disabled::int = 0",
                            2, p);
    int rc = -1;
    if (res) {
        rc = PQntuples(res) > 0;
        if (rc) {
            viewer_from(res, 0, v);
            if (expires_ms) *expires_ms = pg_int(res, 0, 7);
            if (last_seen_ms) *last_seen_ms = pg_int(res, 0, 8);
        }
    }
    PQclear(res);
    pg_conn_put(&q);
    return rc;
}

int pg_session_touch(co_store *s, const char *hash_hex, int64_t now_ms, int64_t expires_ms,
                     char *err, size_t errlen)
{
    char now[32], exp[32];
    const char *p[] = {hash_hex, pg_i64(now, now_ms), pg_i64(exp, expires_ms)};
    return write1(s, "session touch",
                  "UPDATE sessions SET last_seen_ms = $2, expires_ms = greatest(expires_ms, $3)"
                  " WHERE hash = $1",
                  3, p, NULL, err, errlen);
}

int pg_session_remove(co_store *s, const char *hash_hex, char *err, size_t errlen)
{
    const char *p[] = {hash_hex};
    int64_t n = 0;
    if (write1(s, "session remove", "DELETE FROM sessions WHERE hash = $1", 1, p, &n, err, errlen) <
        0)
        return -1;
    return n > 0;
}

int pg_sessions_expire(co_store *s, int64_t now_ms, int64_t *removed, char *err, size_t errlen)
{
    char now[32];
    const char *p[] = {pg_i64(now, now_ms)};
    int64_t n = 0;
    if (write1(s, "sessions expire", "DELETE FROM sessions WHERE expires_ms <= $1", 1, p, &n, err,
               errlen) < 0)
        return -1;
    if (removed) *removed = n;
    return 0;
}

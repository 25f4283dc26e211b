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

/* A read transaction on a pooled read-only connection. */
typedef struct sq_query {
    co_store *s;
    sqlite3 *db;
    char *err;
    size_t errlen;
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
void sq_q_end(sq_query *q);
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

#endif

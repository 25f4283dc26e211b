/* store_fixture.h — a fresh store for a cmocka test, on either backend, and its removal.
 * Without CINEMON_TEST_PG: a SQLite database in its own temporary folder (removed with its
 * -wal/-shm files). With CINEMON_TEST_PG = a libpq connection string (tests/run.py sets it for
 * its " [pg]" runs, on a server of tests/pgserver.py): a new schema of random name on that
 * server, the store opened with co_store_open_pg and search_path set to it, the schema dropped
 * (CASCADE) at teardown. Direct SQL checks go through fx_sql_int / fx_exec, on the same database
 * whatever the backend; fx_sqlite_only skips a test that is SQLite's by nature. Include once
 * per test file (after cmocka.h). */
#ifndef TEST_STORE_FIXTURE_H
#define TEST_STORE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "collector/store.h"

typedef struct store_fx {
    char dir[64], path[96]; /* a temporary folder of the test; SQLite: the database file */
    co_store *s;
    int pg;          /* 1 on PostgreSQL */
    char schema[48]; /* PostgreSQL: the test's schema */
    char *conninfo;  /* PostgreSQL: the store's connection string (search_path = schema) */
    PGconn *db;      /* PostgreSQL: the fixture's own connection (checks, the final DROP) */
} store_fx;

/* 1 when the tests run against PostgreSQL (CINEMON_TEST_PG set and not empty). */
static inline int fx_pg_wanted(void)
{
    const char *c = getenv("CINEMON_TEST_PG");
    return c && *c;
}

/* Run sql (no result rows wanted) on the fixture's PostgreSQL connection. 0 or -1 (printed). */
static inline int fx_pg_cmd(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) fprintf(stderr, "store_fixture: %s: %s", sql, PQerrorMessage(db));
    PQclear(r);
    return ok ? 0 : -1;
}

/* PostgreSQL: a fresh schema on the server of CINEMON_TEST_PG and the store's conninfo with
 * its search_path. 0 or -1 (printed). */
static inline int fx_pg_create(store_fx *f)
{
    const char *base = getenv("CINEMON_TEST_PG");
    unsigned char rnd[8];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return -1;
    int n = snprintf(f->schema, sizeof f->schema, "cinemon_t_");
    for (size_t i = 0; i < sizeof rnd; i++)
        n += snprintf(f->schema + n, sizeof f->schema - (size_t)n, "%02x", rnd[i]);
    f->db = PQconnectdb(base);
    if (PQstatus(f->db) != CONNECTION_OK) {
        fprintf(stderr, "store_fixture: cannot connect to CINEMON_TEST_PG: %s",
                PQerrorMessage(f->db));
        return -1;
    }
    char *id = PQescapeIdentifier(f->db, f->schema, strlen(f->schema));
    if (!id) return -1;
    char sql[160];
    int rc = fx_pg_cmd(f->db, "SET client_min_messages = warning");
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", id);
    if (rc == 0) rc = fx_pg_cmd(f->db, sql);
    snprintf(sql, sizeof sql, "SET search_path TO %s", id);
    if (rc == 0) rc = fx_pg_cmd(f->db, sql);
    PQfreemem(id);
    if (rc < 0) return -1;
    /* a URI takes options as a query parameter, a key=value string as one more pair */
    int uri = !strncmp(base, "postgresql://", 13) || !strncmp(base, "postgres://", 11);
    size_t len = strlen(base) + strlen(f->schema) + 64;
    if (!(f->conninfo = malloc(len))) return -1;
    if (uri)
        snprintf(f->conninfo, len, "%s%coptions=-c%%20search_path%%3D%s", base,
                 strchr(base, '?') ? '&' : '?', f->schema);
    else
        snprintf(f->conninfo, len, "%s options='-c search_path=%s'", base, f->schema);
    return 0;
}

/* Open (again) the fixture's store on its backend. 0 or -1 with err. */
static inline int store_fx_open(store_fx *f, char *err, size_t errlen)
{
    if (f->pg) return co_store_open_pg(&f->s, f->conninfo, err, errlen);
    return co_store_open_sqlite(&f->s, f->path, err, errlen);
}

/* Close the store and open it again on the same database (a collector restart). */
static inline void store_fx_reopen(store_fx *f)
{
    char err[256] = "";
    co_store_close(f->s);
    f->s = NULL;
    if (store_fx_open(f, err, sizeof err) < 0) fail_msg("reopen: %s", err);
}

/* Everything of f but its struct: the store, the schema or files, the folder. */
static inline void fx_release(store_fx *f)
{
    if (f->s) co_store_close(f->s);
    f->s = NULL;
    if (f->db && f->schema[0] && PQstatus(f->db) == CONNECTION_OK) {
        char *id = PQescapeIdentifier(f->db, f->schema, strlen(f->schema));
        char sql[160];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", id ? id : "\"\"");
        if (id) fx_pg_cmd(f->db, sql);
        PQfreemem(id);
    }
    if (f->db) PQfinish(f->db);
    f->db = NULL;
    free(f->conninfo);
    f->conninfo = NULL;
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
}

/* cmocka setup: *state = a store_fx with an open store. */
static int store_fx_setup(void **state)
{
    store_fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/cinemon-test-store-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
    f->pg = fx_pg_wanted();
    char err[256] = "";
    if ((f->pg && fx_pg_create(f) < 0) || store_fx_open(f, err, sizeof err) < 0) {
        if (err[0]) fprintf(stderr, "open %s: %s\n", f->pg ? f->schema : f->path, err);
        fx_release(f);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

/* cmocka teardown: close the store and remove its schema or files and folder. */
static int store_fx_teardown(void **state)
{
    store_fx *f = *state;
    fx_release(f);
    free(f);
    return 0;
}

/* 1 when f's store is PostgreSQL. */
static inline int fx_is_pg(const store_fx *f)
{
    return f->pg;
}

/* Skip the current test on PostgreSQL: it checks something SQLite's by nature (why, printed
 * as "# skip: why" for tests/run.py). */
#define fx_sqlite_only(f, why)                                                                     \
    do {                                                                                           \
        if (fx_is_pg(f)) {                                                                         \
            printf("# skip: %s\n", why);                                                           \
            fflush(stdout);                                                                        \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* The integer in the first column of the one row of a query on the store's database (a
 * PostgreSQL boolean reads as 1 / 0, NULL as 0); the test fails on any error or no row. The
 * store's head (samples held in memory, head.h) is written out first: the query looks at the
 * tables. */
static inline int64_t fx_sql_int(store_fx *f, const char *sql)
{
    int64_t v = 0;
    char ferr[256] = "";
    if (f->s && co_store_flush(f->s, ferr, sizeof ferr) < 0) fail_msg("flush: %s", ferr);
    if (f->pg) {
        PGresult *r = PQexec(f->db, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", PQerrorMessage(f->db));
            PQclear(r);
            fail_msg("%s: %s", sql, msg);
        }
        if (PQntuples(r) < 1 || PQnfields(r) < 1) {
            PQclear(r);
            fail_msg("%s: no row", sql);
        }
        const char *t = PQgetvalue(r, 0, 0);
        v = !strcmp(t, "t") ? 1 : !strcmp(t, "f") ? 0 : strtoll(t, NULL, 10);
        PQclear(r);
        return v;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", sqlite3_errmsg(db));
        sqlite3_close(db);
        fail_msg("%s: %s", sql, msg);
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (rc != SQLITE_ROW) fail_msg("%s: no row", sql);
    return v;
}

/* Run sql (one or more statements, no parameters) on the store's database; fails the test on
 * an error. */
static inline void fx_exec(store_fx *f, const char *sql)
{
    if (f->pg) {
        PGresult *r = PQexec(f->db, sql);
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            fail_msg("%s: %s", sql, PQerrorMessage(f->db));
        return;
    }
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        char m[512];
        snprintf(m, sizeof m, "%s", msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(db);
        fail_msg("%s: %s", sql, m);
    }
    sqlite3_close(db);
}

/* 1 when the samples table of a UTC day (days since the epoch) exists: samples_YYYYMMDD, a
 * table of its own in SQLite, a partition of samples in PostgreSQL; else 0. */
static inline int fx_day_table(store_fx *f, int64_t day)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    char name[32], sql[256];
    strftime(name, sizeof name, "samples_%Y%m%d", &tm);
    if (f->pg)
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                 " WHERE i.inhparent = 'samples'::regclass AND c.relname = '%s'",
                 name);
    else
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'", name);
    return fx_sql_int(f, sql) > 0;
}

#endif

/* store_pg.c — the PostgreSQL backend of store.h: connections, schema and migrations, the write
 * path, tokens and operators.
 *
 * Connections come from a small mutex-guarded pool (connected lazily with the store's conninfo,
 * which may hold a password and so never appears in a message: errors name host, port and
 * database only). The schema is one list of migrations applied under an advisory lock, each
 * in its own transaction. Samples live in `samples`, partitioned by range of ts_ms with one
 * partition per UTC day (samples_YYYYMMDD), created by the writer inside its transaction when
 * a batch needs one (and the day after it). A group of batches is written in ONE transaction
 * on one connection: agents locked (SELECT ... FOR UPDATE) in id order, then, as the SQLite
 * backend does, devices, series, events, audit rows and gaps; the samples go last, in bulk
 * (COPY into a temporary table, then one INSERT ... SELECT), with latest values and exact
 * roll-ups (the group's deltas added when every sample is new, else the touched buckets
 * recomputed). Values are always parameters; the only SQL built with snprintf is partition
 * DDL, from our own day arithmetic.
 *
 * The head (head.h): a sample newer than everything its series has in the tables (its
 * watermark, read from `latest` once per process) is not written to samples, latest and the
 * roll-ups at once but appended, with the group's others, as one record to head_log (in the
 * group's transaction) and held in memory; every few seconds (head_max_age, 2 s) or
 * head_max_points samples, one transaction writes the whole head out in one COPY sorted by
 * series and deletes this store's log rows. Older samples (late or replaced) are written
 * through as before. Log rows carry the id of the store that wrote them (its "owner"), and
 * the store holds a session advisory lock on that id on a connection of its own for as long
 * as it is open: a collector that dies loses its lock with its session, and any other one (or
 * the next to start) writes its log out ("adoption") once it finds the lock free. */
#include "store_pg_int.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "errbuf.h"
#include "head.h"
#include "idmap.h"
#include "log.h"
#include "store_util.h"
#include "timeutil.h"

#define POOL_MAX 16       /* idle connections kept */
#define SERVER_MIN 110000 /* PostgreSQL 11: ON CONFLICT on partitioned tables */
/* pg_advisory_xact_lock key of the migrations: a constant no other code of the database uses */
#define MIGRATE_LOCK "7163697379203"
#define DAY_MS 86400000LL
#define TS_MIN_MS 0LL               /* 1970-01-01 */
#define TS_MAX_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */
#define IDMAP_MAX (1u << 20)        /* cached ids before the cache is cleared */
#define HEAD_MAX_POINTS 500000      /* default: points held before the head is written out */
#define HEAD_MAX_AGE_MS 2000LL      /* default: oldest commit held (others see it this late) */
#define ADOPT_EVERY_MS 5000LL       /* looking for the logs of collectors that are gone */
/* The session advisory lock of a head's owner, in the two-int key space: 'cmhd' and the
 * owner's id. Held by the store that writes that owner's log rows, for as long as it lives. */
#define HEAD_LOCK_CLASS "1668114532"
/* What a read of the head locks before its first statement (pg_read_begin): every table that
 * such a read uses; `samples` itself only (its partitions are locked by the statements: a
 * partition is only ever created or dropped with the parent locked, which this lock keeps
 * away). */
#define READ_LOCK                                                                                  \
    "LOCK TABLE ONLY samples, latest, rollup_1m, rollup_1h, series, devices, sites, screens,"      \
    " alerts IN ACCESS SHARE MODE"

/* Text columns compare and sort bytewise, as SQLite's BINARY collation does. */
#define TX "text COLLATE \"C\""

/* ---------------------------------------------------------------- schema */

/* migration[i] takes schema_version i to i + 1, in one transaction. Version 1 is the whole
 * SQLite schema v7 (store_sqlite.c), with samples as one table partitioned by day instead of
 * day tables listed in `chunks`. "by" is a reserved word in PostgreSQL: quoted. A btree entry
 * holds at most about 2.7 kB and canonical labels may be longer (16 labels of 128 + 256 bytes):
 * the unique keys that include labels index md5(labels) instead of the text. */
static const char *const migration[] = {
    /* 0 -> 1 */
    "CREATE TABLE sites(code " TX " PRIMARY KEY, name " TX ", province " TX ", city " TX ","
    " created_ms bigint NOT NULL, chain " TX ");"
    "CREATE INDEX sites_by_province ON sites(province, city);"
    "CREATE INDEX sites_by_chain ON sites(chain);"
    "CREATE TABLE agents(id " TX " PRIMARY KEY, site " TX " NOT NULL, last_seq bigint NOT NULL,"
    " last_seen_ms bigint NOT NULL, version " TX ", batches bigint NOT NULL DEFAULT 0,"
    " samples bigint NOT NULL DEFAULT 0);"
    "CREATE INDEX agents_by_site ON agents(site);"
    "CREATE TABLE tokens(hash " TX " PRIMARY KEY, agent_id " TX " NOT NULL, site " TX " NOT NULL,"
    " created_ms bigint NOT NULL);"
    "CREATE TABLE devices(id bigserial PRIMARY KEY, site " TX " NOT NULL,"
    " device_id " TX " NOT NULL, screen " TX ", kind " TX ", vendor " TX ", model " TX ","
    " serial " TX ", firmware " TX ", profile " TX ", first_seen_ms bigint NOT NULL,"
    " last_seen_ms bigint NOT NULL, UNIQUE(site, device_id));"
    "CREATE INDEX devices_by_device_id ON devices(device_id);"
    "CREATE INDEX devices_by_screen ON devices(site, screen, last_seen_ms);"
    "CREATE TABLE series(id bigserial PRIMARY KEY, device_ref bigint NOT NULL,"
    " metric " TX " NOT NULL, labels " TX " NOT NULL, unit " TX ");"
    "CREATE UNIQUE INDEX series_key ON series(device_ref, metric, md5(labels));"
    "CREATE TABLE latest(series_id bigint PRIMARY KEY, ts_ms bigint NOT NULL,"
    " value double precision NOT NULL);"
    "CREATE TABLE samples(series_id bigint NOT NULL, ts_ms bigint NOT NULL,"
    " value double precision NOT NULL, PRIMARY KEY(series_id, ts_ms))"
    " PARTITION BY RANGE (ts_ms);"
    "CREATE TABLE events(id bigserial PRIMARY KEY, site " TX " NOT NULL, device_ref bigint,"
    " ts_ms bigint NOT NULL, severity " TX ", code " TX ", text " TX ", source " TX ");"
    "CREATE INDEX events_by_device ON events(device_ref, ts_ms);"
    "CREATE INDEX events_by_site ON events(site, ts_ms);"
    "CREATE TABLE batches(agent_id " TX " NOT NULL, first_seq bigint NOT NULL,"
    " last_seq bigint NOT NULL, samples bigint NOT NULL, received_ms bigint NOT NULL,"
    " PRIMARY KEY(agent_id, first_seq));"
    "CREATE TABLE gaps(agent_id " TX " NOT NULL, from_seq bigint NOT NULL,"
    " to_seq bigint NOT NULL, reason " TX " NOT NULL, reported_ms bigint NOT NULL,"
    " PRIMARY KEY(agent_id, from_seq));"
    "CREATE TABLE screens(site " TX " NOT NULL, screen " TX " NOT NULL, name " TX ","
    " class " TX " NOT NULL DEFAULT 'theatre', display " TX " NOT NULL DEFAULT 'projection',"
    " format " TX ", spl_ref " TX " NOT NULL DEFAULT '{}', updated_ms bigint NOT NULL,"
    " updated_by " TX ", PRIMARY KEY(site, screen));"
    "CREATE TABLE operators(hash " TX " PRIMARY KEY, name " TX " NOT NULL, site " TX " NOT NULL,"
    " created_ms bigint NOT NULL);"
    "CREATE TABLE alerts(id bigserial PRIMARY KEY, rule " TX " NOT NULL, site " TX " NOT NULL,"
    " screen " TX " NOT NULL DEFAULT '', device " TX " NOT NULL, labels " TX " NOT NULL,"
    " severity " TX " NOT NULL, state " TX " NOT NULL, value double precision,"
    " threshold double precision, text " TX ", started_ms bigint NOT NULL, firing_ms bigint,"
    " resolved_ms bigint, updated_ms bigint NOT NULL, ack_by " TX ", ack_comment " TX ","
    " ack_ms bigint);"
    "CREATE UNIQUE INDEX alerts_open ON alerts(rule, site, device, md5(labels))"
    " WHERE state <> 'resolved';"
    "CREATE INDEX alerts_by_site ON alerts(site, state, updated_ms);"
    "CREATE INDEX alerts_by_state ON alerts(state, updated_ms);"
    "CREATE TABLE alert_history(seq bigserial PRIMARY KEY, alert_id bigint NOT NULL,"
    " ts_ms bigint NOT NULL,"
    " state " TX " NOT NULL, severity " TX ", value double precision,"
    " threshold double precision, \"by\" " TX ", comment " TX ");"
    "CREATE INDEX alert_history_by_alert ON alert_history(alert_id, ts_ms);"
    "CREATE TABLE silences(id bigserial PRIMARY KEY, site " TX " NOT NULL, screen " TX ","
    " device " TX ", rule " TX ", from_ms bigint NOT NULL, until_ms bigint NOT NULL,"
    " \"by\" " TX " NOT NULL, comment " TX ", created_ms bigint NOT NULL);"
    "CREATE INDEX silences_by_site ON silences(site, until_ms);"
    "CREATE TABLE notifications(id " TX " PRIMARY KEY, alert_id bigint NOT NULL,"
    " kind " TX " NOT NULL, site " TX " NOT NULL, payload " TX " NOT NULL,"
    " created_ms bigint NOT NULL, seq bigserial UNIQUE);"
    "CREATE INDEX notifications_by_site ON notifications(site, created_ms);"
    "CREATE INDEX notifications_by_alert ON notifications(alert_id);"
    "CREATE TABLE deliveries(id " TX " NOT NULL, target " TX " NOT NULL, state " TX " NOT NULL,"
    " attempts integer NOT NULL DEFAULT 0, http_status integer, error " TX ","
    " updated_ms bigint NOT NULL, PRIMARY KEY(id, target));"
    "CREATE INDEX deliveries_pending ON deliveries(state) WHERE state = 'pending';"
    "CREATE TABLE compliance(site " TX " NOT NULL, screen " TX " NOT NULL, day " TX " NOT NULL,"
    " quantity " TX " NOT NULL, in_ms bigint NOT NULL, measured_ms bigint NOT NULL,"
    " updated_ms bigint NOT NULL, PRIMARY KEY(site, screen, day, quantity));"
    "CREATE INDEX compliance_by_day_site ON compliance(day, site, quantity, in_ms, measured_ms);"
    "CREATE TABLE rollup_1m(series_id bigint NOT NULL, bucket_ms bigint NOT NULL,"
    " n bigint NOT NULL, sum double precision NOT NULL, min double precision NOT NULL,"
    " max double precision NOT NULL, PRIMARY KEY(series_id, bucket_ms));"
    "CREATE TABLE rollup_1h(series_id bigint NOT NULL, bucket_ms bigint NOT NULL,"
    " n bigint NOT NULL, sum double precision NOT NULL, min double precision NOT NULL,"
    " max double precision NOT NULL, PRIMARY KEY(series_id, bucket_ms));"
    "CREATE TABLE viewers(name " TX " PRIMARY KEY, pwhash " TX " NOT NULL,"
    " role " TX " NOT NULL DEFAULT 'viewer', scope_kind " TX " NOT NULL DEFAULT 'all',"
    " scope_value " TX " NOT NULL DEFAULT '', disabled integer NOT NULL DEFAULT 0,"
    " created_ms bigint NOT NULL, updated_ms bigint NOT NULL);"
    "CREATE TABLE sessions(hash " TX " PRIMARY KEY, viewer " TX " NOT NULL,"
    " created_ms bigint NOT NULL, expires_ms bigint NOT NULL, last_seen_ms bigint NOT NULL);"
    "CREATE INDEX sessions_by_viewer ON sessions(viewer);"
    "CREATE INDEX sessions_by_expiry ON sessions(expires_ms);",
    /* 1 -> 2: the head's log (head.h): per commit of a store, the samples it holds in memory
     * and has not written out yet, under the id of that store (its advisory lock) */
    "CREATE TABLE head_log(id bigserial PRIMARY KEY, owner integer NOT NULL,"
    " data bytea NOT NULL);"
    "CREATE INDEX head_log_by_owner ON head_log(owner, id);",
    /* 2 -> 3: compliance figures received from a tier below (store_pg_summary.c) */
    "CREATE TABLE compliance_received(site " TX " NOT NULL, screen " TX " NOT NULL,"
    " day " TX " NOT NULL, quantity " TX " NOT NULL, in_ms bigint NOT NULL,"
    " measured_ms bigint NOT NULL, updated_ms bigint NOT NULL,"
    " PRIMARY KEY(site, screen, day, quantity));",
};
#define SCHEMA_VERSION ((int)(sizeof migration / sizeof migration[0]))

/* ---------------------------------------------------------------- the store */

/* One agent of the group being written: its row is locked, last = its last_seq so far. */
typedef struct agent_state {
    const char *id, *site, *version; /* site, version: of its last stored batch */
    int64_t last;
    int64_t batches, samples; /* added by this group */
} agent_state;

/* A growable byte buffer (COPY data). */
typedef struct wbuf {
    char *p;
    size_t n, cap;
} wbuf;

/* A series of the group with points, routed (head or tables) once the group's watermarks
 * are known. */
typedef struct pending {
    int64_t sid;
    const cm_series *se;
} pending;

struct co_store {
    co_store_head head; /* first: the backend's functions (store_backend.h) */
    char *conninfo;     /* may hold a password: never printed */

    pthread_mutex_t pmu; /* guards the pool */
    PGconn *idle[POOL_MAX];
    size_t nidle;

    pthread_mutex_t wmu; /* serialises pg_write; guards everything below */
    co_idmap devmap;     /* (site, device id) -> devices.id, committed or of the open write */
    co_idmap sermap;     /* (site, device id, metric, labels) -> series.id */
    char *key;
    size_t keycap;
    int64_t *touched; /* device refs seen in the group */
    size_t ntouched, touchedcap;
    int64_t *days; /* UTC days the group's samples fall on */
    size_t ndays, dayscap;
    agent_state *agents;
    size_t nagents, agentscap;
    const char **sites; /* sites inserted by the group (pointers into its batches) */
    size_t nsites, sitescap;
    wbuf copy;        /* the group's samples as COPY text: series_id, ts_ms, value, ord */
    int64_t nsamples; /* rows in copy */
    int copy_unique;  /* the rows are the head's: one per (series, time), in that order */
    char labels[CO_LABELS_MAX];
    pending *pend; /* the group's series with points */
    size_t npend, pendcap;

    /* the samples not yet in the tables (head.h), with its own lock for readers */
    co_head *hd;
    size_t head_max_points;
    int64_t head_max_age_ms;
    PGconn *lockc; /* holds the owner's advisory lock (not pooled) */
    int locked;    /* the lock is held on lockc */
    int32_t owner; /* head_log.owner of this store's log rows */
    int64_t last_adopt_ms;
    int64_t unsure_id; /* a log row whose commit's answer was lost (0: none) */
};

/* ---------------------------------------------------------------- small helpers */

/* Copy a libpq message into err as "postgresql: what: msg" (one line, no trailing newline). */
static void set_pgerr(char *err, size_t errlen, const char *what, const char *msg)
{
    char line[512];
    snprintf(line, sizeof line, "%s", msg && *msg ? msg : "unknown error");
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
    size_t n = strlen(line);
    while (n && line[n - 1] == ' ')
        line[--n] = '\0';
    cm_seterr(err, errlen, "postgresql: %s: %s", what, line);
}

/* The failure of res (NULL: of the connection) into q->err. */
static void res_err(pg_query *q, const char *what, const PGresult *res)
{
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    set_pgerr(q->err, q->errlen, what, msg ? msg : PQerrorMessage(q->c));
}

/* Notices ("relation already exists, skipping") are not for the collector's log. */
static void notice_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Decimal text of v (store_pg_int.h). */
const char *pg_i64(char *buf, int64_t v)
{
    snprintf(buf, 32, "%lld", (long long)v);
    return buf;
}

/* Round-trip text of v; NULL (SQL NULL) for NaN (store_pg_int.h). */
const char *pg_f64(char *buf, double v)
{
    if (isnan(v)) return NULL;
    if (isinf(v))
        snprintf(buf, 32, "%s", v > 0 ? "Infinity" : "-Infinity");
    else
        snprintf(buf, 32, "%.17g", v);
    return buf;
}

/* The scope's kind and value as two text parameters (store_pg_int.h). */
void pg_scope_params(const co_scope *sc, const char **params, int ik, int iv, char *kbuf)
{
    snprintf(kbuf, 4, "%d", sc ? (int)sc->kind : 0);
    params[ik] = kbuf;
    params[iv] = sc ? sc->value : "";
}

/* samples_YYYYMMDD of a UTC day: only ever built here, from an integer. */
void pg_partition_name(int64_t day, char *buf, size_t len)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, len, "samples_%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* ---------------------------------------------------------------- cells */

json_t *pg_json_str(const PGresult *res, int r, int c)
{
    if (PQgetisnull(res, r, c)) return json_null();
    json_t *j = json_stringn(PQgetvalue(res, r, c), (size_t)PQgetlength(res, r, c));
    return j ? j : json_null();
}

/* A cell as a JSON integer (null when NULL). */
json_t *pg_json_int(const PGresult *res, int r, int c)
{
    if (PQgetisnull(res, r, c)) return json_null();
    return json_integer((json_int_t)strtoll(PQgetvalue(res, r, c), NULL, 10));
}

/* A cell as a JSON real (null when NULL). */
json_t *pg_json_real(const PGresult *res, int r, int c)
{
    if (PQgetisnull(res, r, c)) return json_null();
    return json_real(strtod(PQgetvalue(res, r, c), NULL));
}

/* A cell's JSON text parsed as an object ({} when NULL or not an object). */
json_t *pg_json_obj(const PGresult *res, int r, int c)
{
    json_t *j = NULL;
    if (!PQgetisnull(res, r, c))
        j = json_loadb(PQgetvalue(res, r, c), (size_t)PQgetlength(res, r, c), 0, NULL);
    if (j && json_is_object(j)) return j;
    json_decref(j);
    return json_object();
}

/* A cell as an integer (0 when NULL). */
int64_t pg_int(const PGresult *res, int r, int c)
{
    if (PQgetisnull(res, r, c)) return 0;
    return (int64_t)strtoll(PQgetvalue(res, r, c), NULL, 10);
}

/* A cell as a double (0.0 when NULL). */
double pg_real(const PGresult *res, int r, int c)
{
    if (PQgetisnull(res, r, c)) return 0.0;
    return strtod(PQgetvalue(res, r, c), NULL);
}

/* A cell's text (NULL when NULL), valid until res is cleared. */
const char *pg_str(const PGresult *res, int r, int c)
{
    if (PQgetisnull(res, r, c)) return NULL;
    return PQgetvalue(res, r, c);
}

/* Every row of res through row() into a new array; NULL on out of memory. */
json_t *pg_rows(const PGresult *res, json_t *(*row)(const PGresult *res, int r))
{
    json_t *arr = json_array();
    int n = PQntuples(res);
    for (int r = 0; arr && r < n; r++) {
        json_t *o = row(res, r);
        if (!o || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* ---------------------------------------------------------------- connections */

/* Connect with the store's conninfo. NULL with err naming host, port and database only. */
static PGconn *conn_open(const co_store *s, char *err, size_t errlen)
{
    /* the store's string expanded as dbname; its own keywords override these defaults */
    /* jit off: the store's statements are short, and compiling a plan costs more than it
     * saves (~150 ms for a national overview once its estimated cost passes the threshold) */
    const char *const keys[] = {"fallback_application_name", "client_encoding", "options", "dbname",
                                NULL};
    const char *const vals[] = {"cinemon-collector", "UTF8", "-c jit=off", s->conninfo, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        cm_seterr(err, errlen, "postgresql: connect: out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        char what[320];
        const char *h = PQhost(c), *p = PQport(c), *d = PQdb(c);
        snprintf(what, sizeof what, "connect to host=%s port=%s dbname=%s",
                 h && *h ? h : "(default)", p && *p ? p : "(default)", d && *d ? d : "(default)");
        set_pgerr(err, errlen, what, PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, notice_quiet, NULL);
    return c;
}

/* An idle connection has nothing to read: when it has, the server has closed it or is about
 * to (restart, idle timeout: a FATAL message, then EOF), and it is dropped. */
static int conn_alive(PGconn *c)
{
    if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE) return 0;
    struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
    if (pfd.fd < 0) return 0;
    int rc;
    while ((rc = poll(&pfd, 1, 0)) < 0 && errno == EINTR)
        ;
    return rc == 0;
}

/* An idle pooled connection that is still alive, else a new one. */
int pg_conn_get(pg_query *q, co_store *s, char *err, size_t errlen)
{
    *q = (pg_query){.s = s, .err = err, .errlen = errlen};
    for (;;) {
        PGconn *c = NULL;
        pthread_mutex_lock(&s->pmu);
        if (s->nidle) c = s->idle[--s->nidle];
        pthread_mutex_unlock(&s->pmu);
        if (!c) break;
        if (conn_alive(c)) {
            q->c = c;
            return 0;
        }
        PQfinish(c);
    }
    q->c = conn_open(s, err, errlen);
    return q->c ? 0 : -1;
}

/* Back to the pool (a transaction left open rolled back), or closed when broken or the pool is
 * full. */
void pg_conn_put(pg_query *q)
{
    PGconn *c = q->c;
    q->c = NULL;
    if (!c) return;
    PGTransactionStatusType ts = PQtransactionStatus(c);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
        PGresult *res = PQexec(c, "ROLLBACK");
        PQclear(res);
        ts = PQtransactionStatus(c);
    }
    if (PQstatus(c) == CONNECTION_OK && ts == PQTRANS_IDLE) {
        pthread_mutex_lock(&q->s->pmu);
        if (q->s->nidle < POOL_MAX) {
            q->s->idle[q->s->nidle++] = c;
            c = NULL;
        }
        pthread_mutex_unlock(&q->s->pmu);
    }
    if (c) PQfinish(c);
}

/* ---------------------------------------------------------------- statements */

PGresult *pg_exec(pg_query *q, const char *what, const char *sql, int n, const char *const *params)
{
    PGresult *res = PQexecParams(q->c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) return res;
    res_err(q, what, res);
    PQclear(res);
    return NULL;
}

/* As pg_exec, but a failure's SQLSTATE is copied to state (6 bytes; "" when unknown). */
static PGresult *exec_state(pg_query *q, const char *what, const char *sql, int n,
                            const char *const *params, char *state)
{
    state[0] = '\0';
    PGresult *res = PQexecParams(q->c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) return res;
    const char *code = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (code) snprintf(state, 6, "%s", code);
    res_err(q, what, res);
    PQclear(res);
    return NULL;
}

/* Run parameterless SQL (may be several statements). 0 or -1 with q->err. */
int pg_cmd(pg_query *q, const char *what, const char *sql)
{
    PGresult *res = PQexec(q->c, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(res);
        return 0;
    }
    res_err(q, what, res);
    PQclear(res);
    return -1;
}

/* BEGIN (READ COMMITTED). */
int pg_begin(pg_query *q)
{
    return pg_cmd(q, "begin", "BEGIN ISOLATION LEVEL READ COMMITTED");
}

/* COMMIT; -1 also when the server rolled the transaction back instead. */
int pg_commit(pg_query *q)
{
    if (PQtransactionStatus(q->c) != PQTRANS_INTRANS) {
        cm_seterr(q->err, q->errlen, "postgresql: commit: no transaction in progress");
        return -1;
    }
    PGresult *res = PQexec(q->c, "COMMIT");
    int ok = res && PQresultStatus(res) == PGRES_COMMAND_OK && !strcmp(PQcmdStatus(res), "COMMIT");
    if (!ok) {
        if (res && PQresultStatus(res) == PGRES_COMMAND_OK)
            cm_seterr(q->err, q->errlen, "postgresql: commit: the transaction was rolled back");
        else
            res_err(q, "commit", res);
    }
    PQclear(res);
    return ok ? 0 : -1;
}

/* ROLLBACK when a transaction is open (errors ignored: the connection is then dropped). */
void pg_rollback(pg_query *q)
{
    PGTransactionStatusType ts = PQtransactionStatus(q->c);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) PQclear(PQexec(q->c, "ROLLBACK"));
}

/* One integer of a one-row query: 1 read (*out set), 0 no row or NULL, -1 error. */
static int one_int(pg_query *q, const char *what, const char *sql, int n, const char *const *params,
                   int64_t *out)
{
    PGresult *res = pg_exec(q, what, sql, n, params);
    if (!res) return -1;
    int found = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0);
    if (found) *out = pg_int(res, 0, 0);
    PQclear(res);
    return found;
}

/* ---------------------------------------------------------------- reads with the head */

/* A read that adds the head (store_pg_int.h): tables locked before the head's read lock, so
 * that no statement waits for a table lock while the head is locked (a writer waiting to
 * commit under the head's write lock may hold the lock that statement would wait for: a
 * partition being created). */
int pg_read_begin(pg_query *q, co_store *s, char *err, size_t errlen)
{
    if (pg_conn_get(q, s, err, errlen) < 0) return -1;
    if (pg_cmd(q, "read", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; " READ_LOCK) < 0) {
        pg_conn_put(q);
        return -1;
    }
    co_head_rdlock(s->hd); /* before the first read: the snapshot is taken by it */
    q->head = s->hd;
    return 0;
}

/* The head unlocked, the read's transaction rolled back, the connection back in the pool. */
void pg_read_end(pg_query *q)
{
    if (q->head) co_head_unlock(q->head);
    q->head = NULL;
    pg_conn_put(q);
}

/* The newer of the head's and the tables' latest value of sid (store_pg_int.h). */
int pg_latest_of(const pg_query *q, int64_t sid, const PGresult *res, int r, int cts, int cv,
                 int64_t *ts, double *v)
{
    int table = !PQgetisnull(res, r, cts);
    int64_t tts = table ? pg_int(res, r, cts) : 0;
    if (q->head && co_head_latest(q->head, sid, ts, v) && (!table || *ts >= tts)) return 1;
    if (!table) return 0;
    *ts = tts;
    *v = pg_real(res, r, cv);
    return 1;
}

/* ---------------------------------------------------------------- open / migrate / close */

/* Apply the migrations the database lacks, one transaction each, under the advisory lock (two
 * collectors starting at once: the second waits, then finds the work done). */
static int migrate(pg_query *q)
{
    for (;;) {
        if (pg_begin(q) < 0) return -1;
        int64_t v = 0;
        if (pg_cmd(q, "migration lock", "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")") < 0 ||
            pg_cmd(q, "schema_version",
                   "CREATE TABLE IF NOT EXISTS schema_version(version integer NOT NULL)") < 0 ||
            one_int(q, "schema_version", "SELECT max(version) FROM schema_version", 0, NULL, &v) <
                0)
            goto fail;
        if (v > SCHEMA_VERSION) {
            cm_seterr(q->err, q->errlen,
                      "postgresql: schema version %lld is newer than this collector's (%d)",
                      (long long)v, SCHEMA_VERSION);
            goto fail;
        }
        if (v == SCHEMA_VERSION) return pg_commit(q);
        char vbuf[32];
        const char *p[] = {pg_i64(vbuf, v + 1)};
        char what[48];
        snprintf(what, sizeof what, "migration to version %lld", (long long)v + 1);
        if (pg_cmd(q, what, migration[v]) < 0 ||
            pg_cmd(q, "schema_version", "DELETE FROM schema_version") < 0)
            goto fail;
        PGresult *res = pg_exec(q, "schema_version",
                                "INSERT INTO schema_version(version) VALUES($1::integer)", 1, p);
        if (!res) goto fail;
        PQclear(res);
        if (pg_commit(q) < 0) return -1;
    }
fail:
    pg_rollback(q);
    return -1;
}

static const co_store_ops pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .write = pg_write,
    .last_seq = pg_last_seq,
    .token_add = pg_token_add,
    .token_lookup = pg_token_lookup,
    .sites = pg_sites,
    .devices = pg_devices,
    .latest = pg_latest,
    .series = pg_series,
    .agents = pg_agents,
    .gaps = pg_gaps,
    .events = pg_events,
    .site_in_scope = pg_site_in_scope,
    .import = pg_import,
    .screens = pg_screens,
    .operator_add = pg_operator_add,
    .operator_lookup = pg_operator_lookup,
    .alerts_apply = pg_alerts_apply,
    .alerts = pg_alerts,
    .alert = pg_alert,
    .alert_ack = pg_alert_ack,
    .silence_add = pg_silence_add,
    .silences = pg_silences,
    .alerts_active = pg_alerts_active,
    .notification_add = pg_notification_add,
    .delivery_update = pg_delivery_update,
    .notifications = pg_notifications,
    .deliveries_pending = pg_deliveries_pending,
    .day_series = pg_day_series,
    .compliance_put = pg_compliance_put,
    .compliance_rows = pg_compliance_rows,
    .ping = pg_ping,
    .counts = pg_counts,
    .viewer_add = pg_viewer_add,
    .viewer_get = pg_viewer_get,
    .viewers = pg_viewers,
    .viewer_passwd = pg_viewer_passwd,
    .viewer_remove = pg_viewer_remove,
    .session_add = pg_session_add,
    .session_lookup = pg_session_lookup,
    .session_touch = pg_session_touch,
    .session_remove = pg_session_remove,
    .sessions_expire = pg_sessions_expire,
    .retention = pg_retention,
    .dash_overview = pg_dash_overview,
    .dash_cinema = pg_dash_cinema,
    .dash_hall = pg_dash_hall,
    .set_head = pg_set_head,
    .flush = pg_flush,
    .maintain = pg_maintain,
    .head = pg_head,
    .hour_rollups = pg_hour_rollups,
    .summary_put = pg_summary_put,
    .compliance_received = pg_compliance_received,
};

static int owner_take(co_store *s, char *err, size_t errlen);
static int head_adopt(co_store *s, char *err, size_t errlen);
static int head_flush(co_store *s, char *err, size_t errlen);

/* Open the store: check the string, connect, check the server, migrate (store.h). */
int co_store_open_pg(co_store **out, const char *conninfo, char *err, size_t errlen)
{
    *out = NULL;
    if (!conninfo) conninfo = "";
    /* libpq's parse errors quote pieces of the string (maybe the password): not repeated */
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        PQfreemem(perr);
        cm_seterr(err, errlen, "postgresql: the connection string is not valid libpq syntax");
        return -1;
    }
    PQconninfoFree(opts);
    co_store *s = calloc(1, sizeof *s);
    if (s) {
        s->head.ops = &pg_ops;
        s->head_max_points = HEAD_MAX_POINTS;
        s->head_max_age_ms = HEAD_MAX_AGE_MS;
    }
    if (!s || !(s->conninfo = strdup(conninfo)) || !(s->hd = co_head_new())) {
        if (s) free(s->conninfo);
        free(s);
        cm_seterr(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&s->pmu, NULL);
    pthread_mutex_init(&s->wmu, NULL);
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) goto fail;
    int v = PQserverVersion(q.c);
    if (v < SERVER_MIN) {
        cm_seterr(err, errlen,
                  "postgresql: server host=%s port=%s dbname=%s is version %d; 11 or later is "
                  "required",
                  PQhost(q.c), PQport(q.c), PQdb(q.c), v);
        pg_conn_put(&q);
        goto fail;
    }
    if (migrate(&q) < 0) {
        pg_conn_put(&q);
        goto fail;
    }
    pg_conn_put(&q);
    if (owner_take(s, err, errlen) < 0) goto fail;
    /* the logs of collectors that died (this one's last run too): not an open error, the
     * writer's housekeeping tries again */
    char aerr[256];
    if (head_adopt(s, aerr, sizeof aerr) < 0)
        cm_log(CM_LOG_ERROR, "store: writing out the head logs of stopped collectors: %s", aerr);
    s->last_adopt_ms = cm_now_ms();
    *out = s;
    return 0;
fail:
    pg_close(s);
    return -1;
}

/* Write the head out, close every connection (the owner's lock goes with its own) and free
 * the store. */
void pg_close(co_store *s)
{
    if (!s) return;
    if (s->hd && s->lockc) {
        char err[256];
        /* what is not written out stays in the log, written out by the next collector to
         * open the store or by a running one once this one's lock is gone */
        if (head_flush(s, err, sizeof err) < 0)
            cm_log(CM_LOG_ERROR, "store: writing the head out at close: %s", err);
    }
    if (s->lockc) PQfinish(s->lockc);
    for (size_t i = 0; i < s->nidle; i++)
        PQfinish(s->idle[i]);
    if (s->conninfo) {
        memset(s->conninfo, 0, strlen(s->conninfo)); /* may hold a password */
        free(s->conninfo);
    }
    co_idmap_clear(&s->devmap);
    co_idmap_clear(&s->sermap);
    free(s->key);
    free(s->touched);
    free(s->days);
    free(s->agents);
    free(s->sites);
    free(s->copy.p);
    free(s->pend);
    co_head_free(s->hd);
    pthread_mutex_destroy(&s->pmu);
    pthread_mutex_destroy(&s->wmu);
    free(s);
}

/* A trivial read of the schema (for /healthz). */
int pg_ping(co_store *s, char *err, size_t errlen)
{
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    PGresult *res = pg_exec(&q, "ping", "SELECT 1 FROM agents LIMIT 1", 0, NULL);
    PQclear(res);
    pg_conn_put(&q);
    return res ? 0 : -1;
}

/* ---------------------------------------------------------------- writing */

/* Append printf output to b. 0 or -1 (out of memory). */
static int buf_printf(wbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int buf_printf(wbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return -1;
        if (b->p && (size_t)n < b->cap - b->n) {
            b->n += (size_t)n;
            return 0;
        }
        size_t ncap = b->cap ? b->cap * 2 : 65536;
        while (ncap < b->n + (size_t)n + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) return -1;
        b->p = np;
        b->cap = ncap;
    }
}

/* Add v to a small set (array) of int64; 0 or -1. */
static int set_add(int64_t **arr, size_t *n, size_t *cap, int64_t v)
{
    for (size_t i = *n; i-- > 0;)
        if ((*arr)[i] == v) return 0;
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        int64_t *t = realloc(*arr, ncap * sizeof *t);
        if (!t) return -1;
        *arr = t;
        *cap = ncap;
    }
    (*arr)[(*n)++] = v;
    return 0;
}

/* err = "out of memory"; returns -1. */
static int oom(char *err, size_t errlen)
{
    cm_seterr(err, errlen, "out of memory");
    return -1;
}

/* Upsert a device row (inventory fields from d when given) and return its id. */
static int device_upsert(pg_query *q, const char *site, const cm_device_info *d, int64_t now,
                         int64_t *ref)
{
    char nbuf[32];
    const char *p[] = {site,     d->id,     d->screen,   d->kind,    d->vendor,
                       d->model, d->serial, d->firmware, d->profile, pg_i64(nbuf, now)};
    PGresult *res = pg_exec(
        q, "device upsert",
        "INSERT INTO devices(site, device_id, screen, kind, vendor, model, serial, firmware,"
        " profile, first_seen_ms, last_seen_ms) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
        " $10) ON CONFLICT(site, device_id) DO UPDATE SET"
        " screen = coalesce(excluded.screen, devices.screen),"
        " kind = coalesce(excluded.kind, devices.kind),"
        " vendor = coalesce(excluded.vendor, devices.vendor),"
        " model = coalesce(excluded.model, devices.model),"
        " serial = coalesce(excluded.serial, devices.serial),"
        " firmware = coalesce(excluded.firmware, devices.firmware),"
        " profile = coalesce(excluded.profile, devices.profile),"
        " last_seen_ms = greatest(devices.last_seen_ms, excluded.last_seen_ms) RETURNING id",
        10, p);
    if (!res) return -1;
    *ref = pg_int(res, 0, 0);
    PQclear(res);
    return 0;
}

/* The id of device (site, id), through the cache; the device counts as seen in this group. */
static int device_ref(pg_query *q, const char *site, const cm_device_info *inventory,
                      const char *id, int64_t now, int64_t *ref)
{
    co_store *s = q->s;
    const char *parts[] = {site, id};
    size_t len;
    if (co_key_build(&s->key, &s->keycap, &len, parts, 2) < 0) return oom(q->err, q->errlen);
    uint64_t h = co_idmap_hash(s->key, len);
    if (inventory || !co_idmap_get(&s->devmap, s->key, len, h, ref)) {
        cm_device_info bare = {.id = id};
        if (device_upsert(q, site, inventory ? inventory : &bare, now, ref) < 0) return -1;
        int64_t known;
        if (!co_idmap_get(&s->devmap, s->key, len, h, &known) &&
            co_idmap_put(&s->devmap, s->key, len, h, *ref, IDMAP_MAX) < 0)
            return oom(q->err, q->errlen);
    }
    if (set_add(&s->touched, &s->ntouched, &s->touchedcap, *ref) < 0) return oom(q->err, q->errlen);
    return 0;
}

/* The id of a series (canonical labels), through the cache; inserted when new. */
static int series_ref(pg_query *q, const char *site, const cm_series *se, int64_t dev, int64_t *sid)
{
    co_store *s = q->s;
    if (co_labels_json(se, s->labels, q->err, q->errlen) < 0) return -1;
    const char *parts[] = {site, se->device, se->metric, s->labels};
    size_t len;
    if (co_key_build(&s->key, &s->keycap, &len, parts, 4) < 0) return oom(q->err, q->errlen);
    uint64_t h = co_idmap_hash(s->key, len);
    if (co_idmap_get(&s->sermap, s->key, len, h, sid)) return 0;
    char dbuf[32];
    const char *p[] = {pg_i64(dbuf, dev), se->metric, s->labels, se->unit};
    PGresult *res = pg_exec(q, "series upsert",
                            "INSERT INTO series(device_ref, metric, labels, unit)"
                            " VALUES($1, $2, $3, $4) ON CONFLICT(device_ref, metric, md5(labels))"
                            " DO UPDATE SET unit = coalesce(excluded.unit, series.unit)"
                            " RETURNING id",
                            4, p);
    if (!res) return -1;
    *sid = pg_int(res, 0, 0);
    PQclear(res);
    if (co_idmap_put(&s->sermap, s->key, len, h, *sid, IDMAP_MAX) < 0)
        return oom(q->err, q->errlen);
    return 0;
}

/* One sample for the bulk load: a COPY line "series_id, ts_ms, value, ord" (ord: the order
 * written, the last one wins), its day noted for the partitions. 0 or -1 (out of memory). */
static int copy_point(co_store *s, int64_t sid, int64_t ts, double v)
{
    int64_t day = co_floor_div(ts, DAY_MS);
    if ((!s->ndays || s->days[s->ndays - 1] != day) &&
        set_add(&s->days, &s->ndays, &s->dayscap, day) < 0)
        return -1;
    if (buf_printf(&s->copy, "%lld\t%lld\t%.17g\t%lld\n", (long long)sid, (long long)ts, v,
                   (long long)s->nsamples) < 0)
        return -1;
    s->nsamples++;
    return 0;
}

/* Empty the bulk load (COPY text, its days). */
static void copy_reset(co_store *s)
{
    s->copy.n = 0;
    s->nsamples = 0;
    s->ndays = 0;
    s->copy_unique = 0;
}

/* co_head_each callback: one series of a head into the bulk load (ud: the pg_query). */
static int copy_series(void *ud, int64_t sid, const co_head_point *p, size_t n)
{
    pg_query *q = ud;
    for (size_t i = 0; i < n; i++)
        if (copy_point(q->s, sid, p[i].ts_ms, p[i].value) < 0) return oom(q->err, q->errlen);
    return 0;
}

/* Validate a series as the SQLite backend does, then note it with its id: its points go to the
 * head or the tables once the group's watermarks are known (points_route). */
static int series_write(pg_query *q, const char *site, const cm_series *se, int64_t now)
{
    co_store *s = q->s;
    if (!se->device || !se->metric) {
        cm_seterr(q->err, q->errlen, "series without device or metric");
        return -1;
    }
    for (size_t j = 0; j < se->npoints; j++) {
        const cm_point *p = &se->points[j];
        if (p->ts_ms < TS_MIN_MS || p->ts_ms > TS_MAX_MS || !isfinite(p->value)) {
            cm_seterr(q->err, q->errlen, "series %s/%s: point %zu (%lld, %g) out of range",
                      se->device, se->metric, j, (long long)p->ts_ms, p->value);
            return -1;
        }
    }
    int64_t dev, sid;
    if (device_ref(q, site, NULL, se->device, now, &dev) < 0) return -1;
    if (series_ref(q, site, se, dev, &sid) < 0) return -1;
    if (!se->npoints) return 0;
    if (s->npend == s->pendcap) {
        size_t ncap = s->pendcap ? s->pendcap * 2 : 256;
        pending *np = realloc(s->pend, ncap * sizeof *np);
        if (!np) return oom(q->err, q->errlen);
        s->pend = np;
        s->pendcap = ncap;
    }
    s->pend[s->npend++] = (pending){sid, se};
    return 0;
}

/* The watermark of every series of the group not known yet (its newest point in the tables,
 * INT64_MIN for none; from `latest`, in one statement), then each point of the group: newer
 * than its series' watermark, staged for the head; else (late, or replacing a stored sample)
 * queued for the bulk load. In the order written, so that the last of equal points wins. */
static int points_route(pg_query *q)
{
    co_store *s = q->s;
    wbuf ids = {0};
    size_t unknown = 0;
    for (size_t i = 0; i < s->npend; i++) {
        int64_t wm;
        if (co_head_watermark(s->hd, s->pend[i].sid, &wm)) continue;
        if (buf_printf(&ids, "%s%lld", unknown++ ? "," : "{", (long long)s->pend[i].sid) < 0) {
            free(ids.p);
            return oom(q->err, q->errlen);
        }
    }
    if (unknown) {
        if (buf_printf(&ids, "}") < 0) {
            free(ids.p);
            return oom(q->err, q->errlen);
        }
        const char *p[] = {ids.p};
        PGresult *res = pg_exec(q, "watermarks",
                                "SELECT x.id, l.ts_ms FROM unnest($1::bigint[]) AS x(id)"
                                " LEFT JOIN latest l ON l.series_id = x.id",
                                1, p);
        free(ids.p);
        if (!res) return -1;
        for (int r = 0; r < PQntuples(res); r++)
            if (co_head_set_watermark(s->hd, pg_int(res, r, 0),
                                      PQgetisnull(res, r, 1) ? INT64_MIN : pg_int(res, r, 1)) < 0) {
                PQclear(res);
                return oom(q->err, q->errlen);
            }
        PQclear(res);
    }
    for (size_t i = 0; i < s->npend; i++) {
        int64_t sid = s->pend[i].sid, wm = INT64_MIN;
        const cm_series *se = s->pend[i].se;
        co_head_watermark(s->hd, sid, &wm);
        for (size_t j = 0; j < se->npoints; j++) {
            const cm_point *p = &se->points[j];
            if ((p->ts_ms > wm ? co_head_stage(s->hd, sid, p->ts_ms, p->value)
                               : copy_point(s, sid, p->ts_ms, p->value)) < 0)
                return oom(q->err, q->errlen);
        }
    }
    return 0;
}

/* A seq range of one agent, with the reason and time of a gap row. */
typedef struct seq_range {
    int64_t from, to;
    char *reason;
    int64_t reported_ms;
} seq_range;

/* Free n ranges and their reasons. */
static void ranges_free(seq_range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(r[i].reason);
    free(r);
}

/* Stored ranges (gaps = 0: audit rows) or gap rows (gaps = 1) of agent overlapping [a, b],
 * ascending. Rows of one agent never overlap each other, so the lowest one that can reach a
 * is the last one starting at or below a: the scan starts there. 0 or -1. */
static int ranges_overlapping(pg_query *q, int gaps, const char *agent, int64_t a, int64_t b,
                              seq_range **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char abuf[32], bbuf[32];
    const char *p[] = {agent, pg_i64(abuf, a), pg_i64(bbuf, b)};
    PGresult *res =
        gaps ? pg_exec(q, "gap ranges",
                       "SELECT from_seq, to_seq, reason, reported_ms FROM gaps WHERE agent_id = $1"
                       " AND from_seq <= $3::bigint AND to_seq >= $2::bigint"
                       " AND from_seq >= coalesce((SELECT max(from_seq) FROM gaps"
                       " WHERE agent_id = $1 AND from_seq <= $2::bigint), $2::bigint)"
                       " ORDER BY from_seq",
                       3, p)
             : pg_exec(q, "audit ranges",
                       "SELECT first_seq, last_seq FROM batches WHERE agent_id = $1"
                       " AND first_seq <= $3::bigint AND last_seq >= $2::bigint"
                       " AND first_seq >= coalesce((SELECT max(first_seq) FROM batches"
                       " WHERE agent_id = $1 AND first_seq <= $2::bigint), $2::bigint)"
                       " ORDER BY first_seq",
                       3, p);
    if (!res) return -1;
    int rows = PQntuples(res);
    if (rows && !(*out = calloc((size_t)rows, sizeof **out))) {
        PQclear(res);
        return oom(q->err, q->errlen);
    }
    for (int r = 0; r < rows; r++) {
        seq_range *x = &(*out)[(*n)++];
        x->from = pg_int(res, r, 0);
        x->to = pg_int(res, r, 1);
        if (gaps) {
            const char *why = pg_str(res, r, 2);
            x->reason = strdup(why ? why : "missing");
            x->reported_ms = pg_int(res, r, 3);
            if (!x->reason) {
                PQclear(res);
                ranges_free(*out, *n);
                *out = NULL;
                *n = 0;
                return oom(q->err, q->errlen);
            }
        }
    }
    PQclear(res);
    return 0;
}

/* Insert one gap row. */
static int gap_insert(pg_query *q, const char *agent, int64_t from, int64_t to, const char *reason,
                      int64_t when)
{
    char fbuf[32], tbuf[32], wbuf_[32];
    const char *p[] = {agent, pg_i64(fbuf, from), pg_i64(tbuf, to), reason, pg_i64(wbuf_, when)};
    PGresult *res = pg_exec(q, "gap insert",
                            "INSERT INTO gaps(agent_id, from_seq, to_seq, reason, reported_ms)"
                            " VALUES($1, $2, $3, $4, $5)",
                            5, p);
    PQclear(res);
    return res ? 0 : -1;
}

/* Delete the gap row of (agent, from_seq). */
static int gap_delete(pg_query *q, const char *agent, int64_t from)
{
    char fbuf[32];
    const char *p[] = {agent, pg_i64(fbuf, from)};
    PGresult *res =
        pg_exec(q, "gap delete", "DELETE FROM gaps WHERE agent_id = $1 AND from_seq = $2", 2, p);
    PQclear(res);
    return res ? 0 : -1;
}

/* Record that seqs [a, b] of agent are lost, except those stored (audit rows): a seq is
 * either stored or inside a gap, never both. A reported reason (`weak` 0) replaces what was
 * known for its seqs, splitting older gap rows around it; an inferred "missing" (`weak` 1)
 * only fills seqs no gap row covers yet. (As store_sqlite.c.) */
static int gap_put(pg_query *q, const char *agent, int64_t a, int64_t b, const char *reason,
                   int weak, int64_t now)
{
    seq_range *stored, *gaps = NULL;
    size_t nstored, ngaps = 0;
    if (ranges_overlapping(q, 0, agent, a, b, &stored, &nstored) < 0) return -1;
    int rc = 0;
    int64_t p = a;
    for (size_t i = 0; i <= nstored && rc == 0; i++) {
        /* the piece [p, x] between stored ranges */
        int64_t x = i < nstored ? stored[i].from - 1 : b;
        if (x > b) x = b;
        if (p <= x) {
            rc = ranges_overlapping(q, 1, agent, p, x, &gaps, &ngaps);
            if (rc < 0) break;
            if (weak) {
                int64_t y0 = p;
                for (size_t j = 0; j <= ngaps && rc == 0; j++) {
                    int64_t y = j < ngaps ? gaps[j].from - 1 : x;
                    if (y > x) y = x;
                    if (y0 <= y) rc = gap_insert(q, agent, y0, y, reason, now);
                    if (j < ngaps && gaps[j].to + 1 > y0) y0 = gaps[j].to + 1;
                }
            } else {
                for (size_t j = 0; j < ngaps && rc == 0; j++) {
                    seq_range *g = &gaps[j];
                    rc = gap_delete(q, agent, g->from);
                    if (rc == 0 && g->from < p)
                        rc = gap_insert(q, agent, g->from, p - 1, g->reason, g->reported_ms);
                    if (rc == 0 && g->to > x)
                        rc = gap_insert(q, agent, x + 1, g->to, g->reason, g->reported_ms);
                }
                if (rc == 0) rc = gap_insert(q, agent, p, x, reason, now);
            }
            ranges_free(gaps, ngaps);
            gaps = NULL;
            ngaps = 0;
        }
        if (i < nstored && stored[i].to + 1 > p) p = stored[i].to + 1;
    }
    ranges_free(stored, nstored);
    return rc;
}

/* Seqs between the agent's last stored record and this batch never arrived ("missing" until
 * the agent says why); then the gaps the batch reports. Runs after the batch's audit row, so
 * nothing stored is ever called lost. */
static int gaps_write(pg_query *q, const cm_batch *b, int64_t last, uint64_t first, int64_t now)
{
    if ((int64_t)first > last + 1 &&
        gap_put(q, b->agent_id, last + 1, (int64_t)first - 1, "missing", 1, now) < 0)
        return -1;
    for (size_t i = 0; i < b->ngaps; i++)
        if (gap_put(q, b->agent_id, (int64_t)b->gaps[i].from_seq, (int64_t)b->gaps[i].to_seq,
                    b->gaps[i].reason, 0, now) < 0)
            return -1;
    return 0;
}

/* The checks the SQLite backend makes before deciding duplicate / overlap. 0 or -1. */
static int batch_check(const cm_batch *b, char *err, size_t errlen)
{
    if (!b->agent_id || !b->site) {
        cm_seterr(err, errlen, "batch without agent id or site");
        return -1;
    }
    uint64_t first = b->first_seq ? b->first_seq : b->seq;
    if (b->seq > (uint64_t)INT64_MAX || first > b->seq) {
        cm_seterr(err, errlen, "agent %s: seq range %llu..%llu out of range", b->agent_id,
                  (unsigned long long)first, (unsigned long long)b->seq);
        return -1;
    }
    for (size_t i = 0; i < b->ngaps; i++)
        if (!b->gaps[i].reason || b->gaps[i].from_seq < 1 ||
            b->gaps[i].to_seq < b->gaps[i].from_seq || b->gaps[i].to_seq > (uint64_t)INT64_MAX) {
            cm_seterr(err, errlen, "agent %s: gaps[%zu] is not a valid seq range", b->agent_id, i);
            return -1;
        }
    return 0;
}

/* The group's state of agent id, or NULL. */
static agent_state *agent_find(co_store *s, const char *id)
{
    for (size_t i = 0; i < s->nagents; i++)
        if (!strcmp(s->agents[i].id, id)) return &s->agents[i];
    return NULL;
}

/* qsort order of agent states: by id. */
static int agent_cmp(const void *x, const void *y)
{
    return strcmp(((const agent_state *)x)->id, ((const agent_state *)y)->id);
}

/* The group's agents (those with a batch that can be new: seq > 0), their rows created when
 * missing and locked in id order (two collectors never wait on each other in a cycle), each
 * with its last_seq. A second collector handling a retry of the same batch waits here, then
 * sees the new last_seq. 0 or -1. */
static int agents_lock(pg_query *q, cm_batch *const *batches, size_t n, int64_t now)
{
    co_store *s = q->s;
    s->nagents = 0;
    for (size_t i = 0; i < n; i++) {
        if (!batches[i]->seq || agent_find(s, batches[i]->agent_id)) continue;
        if (s->nagents == s->agentscap) {
            size_t ncap = s->agentscap ? s->agentscap * 2 : 16;
            agent_state *a = realloc(s->agents, ncap * sizeof *a);
            if (!a) return oom(q->err, q->errlen);
            s->agents = a;
            s->agentscap = ncap;
        }
        s->agents[s->nagents++] =
            (agent_state){.id = batches[i]->agent_id, .site = batches[i]->site};
    }
    if (s->nagents > 1) qsort(s->agents, s->nagents, sizeof *s->agents, agent_cmp);
    char nbuf[32];
    pg_i64(nbuf, now);
    for (size_t i = 0; i < s->nagents; i++) {
        agent_state *a = &s->agents[i];
        const char *p[] = {a->id, a->site, nbuf};
        for (int attempt = 0;; attempt++) {
            PGresult *res = pg_exec(q, "agent lock",
                                    "SELECT last_seq FROM agents WHERE id = $1 FOR UPDATE", 1, p);
            if (!res) return -1;
            int found = PQntuples(res) > 0;
            if (found) a->last = pg_int(res, 0, 0);
            PQclear(res);
            if (found) break;
            if (attempt) {
                cm_seterr(q->err, q->errlen, "postgresql: agent lock: agent %s vanished", a->id);
                return -1;
            }
            /* a new agent: its row (last_seq 0), completed when its batch is stored */
            res = pg_exec(q, "agent insert",
                          "INSERT INTO agents(id, site, last_seq, last_seen_ms, batches, samples)"
                          " VALUES($1, $2, 0, $3, 0, 0) ON CONFLICT(id) DO NOTHING",
                          3, p);
            if (!res) return -1;
            PQclear(res);
        }
        a->site = NULL; /* set again by its first stored batch */
    }
    return 0;
}

/* pg_exec for a statement whose result is not needed. 0 or -1. */
static int exec_params(pg_query *q, const char *what, const char *sql, int n,
                       const char *const *params)
{
    PGresult *res = pg_exec(q, what, sql, n, params);
    PQclear(res);
    return res ? 0 : -1;
}

/* One batch of the group: duplicate, overlap or stored (everything but its samples, queued). */
static int batch_write(pg_query *q, const cm_batch *b, int64_t now, co_batch_result *res)
{
    co_store *s = q->s;
    uint64_t first = b->first_seq ? b->first_seq : b->seq;
    agent_state *ag = b->seq ? agent_find(s, b->agent_id) : NULL;
    int64_t last = ag ? ag->last : 0;
    if ((int64_t)b->seq <= last || !ag) { /* !ag: seq 0, never new */
        *res = CO_BATCH_DUPLICATE;
        return 0;
    }
    if ((int64_t)first <= last) { /* partly stored already: the agent must re-batch */
        *res = CO_BATCH_OVERLAP;
        return 0;
    }
    char nbuf[32], fbuf[32], sbuf[32], cbuf[32];
    pg_i64(nbuf, now);
    int known = 0;
    for (size_t i = 0; i < s->nsites && !known; i++)
        known = !strcmp(s->sites[i], b->site);
    if (!known) {
        const char *p[] = {b->site, nbuf};
        if (exec_params(q, "site insert",
                        "INSERT INTO sites(code, created_ms) VALUES($1, $2)"
                        " ON CONFLICT(code) DO NOTHING",
                        2, p) < 0)
            return -1;
        if (s->nsites == s->sitescap) {
            size_t ncap = s->sitescap ? s->sitescap * 2 : 16;
            const char **t = realloc(s->sites, ncap * sizeof *t);
            if (!t) return oom(q->err, q->errlen);
            s->sites = t;
            s->sitescap = ncap;
        }
        s->sites[s->nsites++] = b->site;
    }

    int64_t ref;
    for (size_t i = 0; i < b->ndevices; i++) {
        if (!b->devices[i].id) {
            cm_seterr(q->err, q->errlen, "devices[%zu]: no id", i);
            return -1;
        }
        if (device_ref(q, b->site, &b->devices[i], b->devices[i].id, now, &ref) < 0) return -1;
    }
    for (size_t i = 0; i < b->nseries; i++)
        if (series_write(q, b->site, &b->series[i], now) < 0) return -1;
    for (size_t i = 0; i < b->nevents; i++) {
        const cm_event *e = &b->events[i];
        int have = e->device != NULL;
        if (have && device_ref(q, b->site, NULL, e->device, now, &ref) < 0) return -1;
        char rbuf[32], tbuf[32];
        const char *p[] = {b->site,
                           have ? pg_i64(rbuf, ref) : NULL,
                           pg_i64(tbuf, e->ts_ms),
                           e->severity,
                           e->code,
                           e->text,
                           e->source};
        if (exec_params(q, "event insert",
                        "INSERT INTO events(site, device_ref, ts_ms, severity, code, text, source)"
                        " VALUES($1, $2, $3, $4, $5, $6, $7)",
                        7, p) < 0)
            return -1;
    }

    int64_t samples = (int64_t)cm_batch_points(b);
    const char *p[] = {b->agent_id, pg_i64(fbuf, (int64_t)first), pg_i64(sbuf, (int64_t)b->seq),
                       pg_i64(cbuf, samples), nbuf};
    /* no ON CONFLICT: a second row for the same (agent, first_seq) is a bug, never stored */
    if (exec_params(q, "batch audit",
                    "INSERT INTO batches(agent_id, first_seq, last_seq, samples, received_ms)"
                    " VALUES($1, $2, $3, $4, $5)",
                    5, p) < 0)
        return -1;
    if (gaps_write(q, b, last, first, now) < 0) return -1;

    ag->last = (int64_t)b->seq;
    ag->site = b->site;
    if (b->agent_version) ag->version = b->agent_version;
    ag->batches++;
    ag->samples += samples;
    *res = CO_BATCH_STORED;
    return 0;
}

/* Create the day partitions the group's samples need, and the day after each, unless they
 * exist. Inside the group's transaction, each under a savepoint: another collector creating
 * the same one at the same moment (duplicate_table, unique_violation) is not an error. */
static int partitions_ensure(pg_query *q)
{
    co_store *s = q->s;
    size_t nd = s->ndays;
    for (size_t i = 0; i < nd; i++)
        if (set_add(&s->days, &s->ndays, &s->dayscap, s->days[i] + 1) < 0)
            return oom(q->err, q->errlen);
    wbuf names = {0};
    int rc = -1;
    if (buf_printf(&names, "{") < 0) goto nomem;
    for (size_t i = 0; i < s->ndays; i++) {
        char name[48];
        pg_partition_name(s->days[i], name, sizeof name);
        if (buf_printf(&names, "%s%s", i ? "," : "", name) < 0) goto nomem;
    }
    if (buf_printf(&names, "}") < 0) goto nomem;
    const char *p[] = {names.p};
    PGresult *res =
        pg_exec(q, "partitions",
                "SELECT n FROM unnest($1::text[]) AS n WHERE to_regclass(n) IS NULL", 1, p);
    if (!res) goto out;
    rc = 0;
    for (int r = 0; r < PQntuples(res) && rc == 0; r++) {
        /* the missing names are matched against our own, built from day arithmetic: the
         * DDL below is made only of those and of integers */
        char name[48] = "", sql[256], state[6];
        int64_t day = 0;
        for (size_t i = 0; i < s->ndays && !name[0]; i++) {
            pg_partition_name(s->days[i], name, sizeof name);
            day = s->days[i];
            if (strcmp(name, PQgetvalue(res, r, 0))) name[0] = '\0';
        }
        if (!name[0]) continue; /* not one of ours: cannot happen */
        snprintf(sql, sizeof sql,
                 "CREATE TABLE IF NOT EXISTS %s PARTITION OF samples FOR VALUES FROM (%lld) TO "
                 "(%lld)",
                 name, (long long)(day * DAY_MS), (long long)((day + 1) * DAY_MS));
        if (pg_cmd(q, "partition", "SAVEPOINT cinemon_partition") < 0) {
            rc = -1;
            break;
        }
        PGresult *cr = exec_state(q, "partition create", sql, 0, NULL, state);
        if (cr) {
            PQclear(cr);
            rc = pg_cmd(q, "partition", "RELEASE SAVEPOINT cinemon_partition");
        } else if (!strcmp(state, "42P07") || !strcmp(state, "23505")) {
            rc = pg_cmd(q, "partition", "ROLLBACK TO SAVEPOINT cinemon_partition");
            if (rc == 0 && q->err && q->errlen) q->err[0] = '\0'; /* not an error */
        } else {
            rc = -1;
        }
    }
    PQclear(res);
    goto out;
nomem:
    oom(q->err, q->errlen);
out:
    free(names.p);
    return rc;
}

/* Send the group's samples with COPY into the session's temporary table. 0 or -1. */
static int samples_copy(pg_query *q)
{
    co_store *s = q->s;
    if (pg_cmd(q, "samples",
               "CREATE TEMP TABLE IF NOT EXISTS cinemon_in(series_id bigint, ts_ms bigint,"
               " value double precision, ord bigint) ON COMMIT DELETE ROWS") < 0)
        return -1;
    PGresult *res = PQexec(q->c, "COPY cinemon_in(series_id, ts_ms, value, ord) FROM STDIN");
    if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
        res_err(q, "samples copy", res);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    /* in pieces: PQputCopyData takes an int length */
    int sent = 1, ok = 1;
    for (size_t off = 0; off < s->copy.n && sent; off += 1u << 20) {
        size_t len = s->copy.n - off < (1u << 20) ? s->copy.n - off : (1u << 20);
        sent = PQputCopyData(q->c, s->copy.p + off, (int)len) == 1;
    }
    if (PQputCopyEnd(q->c, sent ? NULL : "cinemon: send failed") != 1) sent = 0;
    if (!sent) res_err(q, "samples copy", NULL);
    while ((res = PQgetResult(q->c))) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            if (sent && ok) res_err(q, "samples copy", res);
            ok = 0;
        }
        PQclear(res);
    }
    return sent && ok ? 0 : -1;
}

/* The group's samples, each (series, ts) once with the value written last. */
#define GROUP_SAMPLES                                                                              \
    "SELECT DISTINCT ON (series_id, ts_ms) series_id, ts_ms, value FROM cinemon_in"                \
    " ORDER BY series_id, ts_ms, ord DESC"
/* The same when the rows are the head's (copy_unique): already one per (series, time), in
 * order, so without the sort (4 MB of work_mem sorts half a million rows on disk). */
#define HEAD_SAMPLES "SELECT series_id, ts_ms, value FROM cinemon_in"

/* Roll-up deltas of new samples only, added to the stored buckets (as store_sqlite.c). */
#define ROLLUP_ADD(table, ms, rows)                                                                \
    "INSERT INTO " table "(series_id, bucket_ms, n, sum, min, max)"                                \
    " SELECT series_id, ts_ms / " ms " * " ms ", count(*), sum(value), min(value), max(value)"     \
    " FROM (" rows ") d GROUP BY 1, 2 ON CONFLICT (series_id, bucket_ms) DO UPDATE"                \
    " SET n = " table ".n + excluded.n, sum = " table ".sum + excluded.sum,"                       \
    " min = least(" table ".min, excluded.min), max = greatest(" table ".max, excluded.max)"
/* Both roll-ups of the rows (GROUP_SAMPLES or HEAD_SAMPLES). */
#define ROLLUPS_ADD(rows)                                                                          \
    ROLLUP_ADD("rollup_1m", "60000", rows) ";" ROLLUP_ADD("rollup_1h", "3600000", rows)

/* Minute and hour roll-ups of the buckets the group touched, recomputed exactly: minutes from
 * the samples (lo, hi: the group's days, so that the planner prunes other partitions), hours
 * from the minutes. One index range per touched bucket (LATERAL), never a scan of whole
 * partitions. */
static int rollups_redo(pg_query *q, int64_t lo, int64_t hi)
{
    char lbuf[32], hbuf[32];
    const char *p[] = {pg_i64(lbuf, lo * DAY_MS), pg_i64(hbuf, (hi + 1) * DAY_MS)};
    if (exec_params(q, "roll-up minutes",
                    "INSERT INTO rollup_1m(series_id, bucket_ms, n, sum, min, max)"
                    " SELECT t.series_id, t.b, a.n, a.sum, a.min, a.max"
                    " FROM (SELECT DISTINCT series_id, ts_ms / 60000 * 60000 AS b FROM cinemon_in)"
                    " t CROSS JOIN LATERAL (SELECT count(*) AS n, sum(x.value) AS sum,"
                    " min(x.value) AS min, max(x.value) AS max FROM samples x"
                    " WHERE x.series_id = t.series_id AND x.ts_ms >= t.b AND x.ts_ms < t.b + 60000"
                    " AND x.ts_ms >= $1::bigint AND x.ts_ms < $2::bigint) a WHERE a.n > 0"
                    " ON CONFLICT (series_id, bucket_ms) DO UPDATE"
                    " SET n = excluded.n, sum = excluded.sum, min = excluded.min,"
                    " max = excluded.max",
                    2, p) < 0)
        return -1;
    return pg_cmd(q, "roll-up hours",
                  "INSERT INTO rollup_1h(series_id, bucket_ms, n, sum, min, max)"
                  " SELECT t.series_id, t.h, a.n, a.sum, a.min, a.max FROM (SELECT DISTINCT"
                  " series_id, ts_ms / 3600000 * 3600000 AS h FROM cinemon_in) t"
                  " CROSS JOIN LATERAL (SELECT sum(m.n) AS n, sum(m.sum) AS sum,"
                  " min(m.min) AS min, max(m.max) AS max FROM rollup_1m m"
                  " WHERE m.series_id = t.series_id AND m.bucket_ms >= t.h"
                  " AND m.bucket_ms < t.h + 3600000) a WHERE a.n > 0"
                  " ON CONFLICT (series_id, bucket_ms) DO UPDATE SET n = excluded.n,"
                  " sum = excluded.sum, min = excluded.min, max = excluded.max");
}

/* The group's samples into samples, the latest value of each series, and the roll-ups kept
 * exact. Usually every sample is new: a plain INSERT (about twice as fast as one with ON
 * CONFLICT), and the roll-ups get the group's deltas. When one replaces a stored sample (a
 * unique violation, undone to the savepoint), the samples go in with ON CONFLICT DO UPDATE
 * and the touched buckets are recomputed. */
static int samples_flush(pg_query *q)
{
    co_store *s = q->s;
    if (!s->nsamples) return 0;
    if (partitions_ensure(q) < 0 || samples_copy(q) < 0) return -1;
    if (pg_cmd(q, "samples", "SAVEPOINT cinemon_samples") < 0) return -1;
    char state[6];
    PGresult *res =
        exec_state(q, "samples",
                   s->copy_unique ? "INSERT INTO samples(series_id, ts_ms, value) " HEAD_SAMPLES
                                  : "INSERT INTO samples(series_id, ts_ms, value) " GROUP_SAMPLES,
                   0, NULL, state);
    int fresh = res != NULL;
    PQclear(res);
    if (fresh) {
        if (pg_cmd(q, "samples", "RELEASE SAVEPOINT cinemon_samples") < 0) return -1;
    } else {
        if (strcmp(state, "23505") ||
            pg_cmd(q, "samples", "ROLLBACK TO SAVEPOINT cinemon_samples") < 0 ||
            pg_cmd(q, "samples",
                   "INSERT INTO samples(series_id, ts_ms, value) " GROUP_SAMPLES
                   " ON CONFLICT (series_id, ts_ms) DO UPDATE SET value = excluded.value") < 0)
            return -1;
        if (q->err && q->errlen) q->err[0] = '\0';
    }
    if (pg_cmd(q, "latest",
               "INSERT INTO latest(series_id, ts_ms, value)"
               " SELECT DISTINCT ON (series_id) series_id, ts_ms, value FROM cinemon_in"
               " ORDER BY series_id, ts_ms DESC, ord DESC"
               " ON CONFLICT (series_id) DO UPDATE SET ts_ms = excluded.ts_ms,"
               " value = excluded.value WHERE excluded.ts_ms >= latest.ts_ms") < 0)
        return -1;
    if (fresh)
        return pg_cmd(q, "roll-ups",
                      s->copy_unique ? ROLLUPS_ADD(HEAD_SAMPLES) : ROLLUPS_ADD(GROUP_SAMPLES));
    int64_t lo = s->days[0], hi = s->days[0];
    for (size_t i = 1; i < s->ndays; i++) {
        if (s->days[i] < lo) lo = s->days[i];
        if (s->days[i] > hi) hi = s->days[i];
    }
    return rollups_redo(q, lo, hi);
}

/* The devices seen by the group: last_seen_ms = now. */
static int devices_touch(pg_query *q, int64_t now)
{
    co_store *s = q->s;
    if (!s->ntouched) return 0;
    wbuf ids = {0};
    int rc = buf_printf(&ids, "{");
    for (size_t i = 0; i < s->ntouched && rc == 0; i++)
        rc = buf_printf(&ids, "%s%lld", i ? "," : "", (long long)s->touched[i]);
    if (rc == 0) rc = buf_printf(&ids, "}");
    if (rc < 0) {
        free(ids.p);
        return oom(q->err, q->errlen);
    }
    char nbuf[32];
    const char *p[] = {ids.p, pg_i64(nbuf, now)};
    rc = exec_params(q, "device last_seen",
                     "UPDATE devices SET last_seen_ms = $2 WHERE id = ANY($1::bigint[])"
                     " AND last_seen_ms < $2",
                     2, p);
    free(ids.p);
    return rc;
}

/* Each agent with stored batches: last_seq, site, version and its running totals. */
static int agents_update(pg_query *q, int64_t now)
{
    co_store *s = q->s;
    char nbuf[32];
    pg_i64(nbuf, now);
    for (size_t i = 0; i < s->nagents; i++) {
        const agent_state *a = &s->agents[i];
        if (!a->batches) continue;
        char lbuf[32], bbuf[32], sbuf[32];
        const char *p[] = {a->id,
                           a->site,
                           pg_i64(lbuf, a->last),
                           nbuf,
                           a->version,
                           pg_i64(bbuf, a->batches),
                           pg_i64(sbuf, a->samples)};
        if (exec_params(q, "agent update",
                        "UPDATE agents SET site = $2, last_seq = $3, last_seen_ms = $4,"
                        " version = coalesce($5, version), batches = batches + $6,"
                        " samples = samples + $7 WHERE id = $1",
                        7, p) < 0)
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- the head */

/* A result of PQexecParams checked: res when its status is ok (tuples or command), else
 * NULL with q->err (res cleared). */
static PGresult *res_ok(pg_query *q, const char *what, PGresult *res)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) return res;
    res_err(q, what, res);
    PQclear(res);
    return NULL;
}

/* A bigint cell of a binary result (8 bytes, network order); 0 when it is not one. */
static int64_t bin_i64(const PGresult *res, int r, int c)
{
    if (PQgetisnull(res, r, c) || PQgetlength(res, r, c) != 8) return 0;
    const unsigned char *p = (const unsigned char *)PQgetvalue(res, r, c);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

/* The staged points of a head, committed into it (its write lock taken: a scratch head, or
 * the store's when what is staged is already committed in the database). 0 or -1 (out of
 * memory: nothing staged any more). */
static int head_take_staged(co_head *h)
{
    co_head_wrlock(h);
    int rc = co_head_reserve_locked(h);
    if (rc == 0) co_head_commit_locked(h);
    co_head_unlock(h);
    if (rc < 0) co_head_abort(h);
    return rc;
}

/* Become a head owner: a random id whose advisory lock this store takes on a connection of
 * its own (held while the store is open: how the others know it is alive) and of which
 * head_log has no row (left by a collector that is gone, for the adoption). 0 or -1. */
static int owner_take(co_store *s, char *err, size_t errlen)
{
    if (!s->lockc && !(s->lockc = conn_open(s, err, errlen))) return -1;
    pg_query q = {.s = s, .c = s->lockc, .err = err, .errlen = errlen};
    for (int attempt = 0; attempt < 64; attempt++) {
        int32_t id;
        if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id) {
            cm_seterr(err, errlen, "head owner: getrandom: %s", strerror(errno));
            return -1;
        }
        char ibuf[32];
        const char *p[] = {pg_i64(ibuf, id)};
        /* a row of the id is only ever written by the holder of its lock: none now, none later
         * unless we get it */
        PGresult *res = pg_exec(&q, "head owner",
                                "SELECT CASE WHEN EXISTS(SELECT 1 FROM head_log WHERE owner ="
                                " $1::int) THEN false ELSE pg_try_advisory_lock(" HEAD_LOCK_CLASS
                                ", $1::int) END",
                                1, p);
        if (!res) return -1;
        int got = PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 0), "t");
        PQclear(res);
        if (got) {
            s->owner = id;
            s->locked = 1;
            return 0;
        }
    }
    cm_seterr(err, errlen, "postgresql: head owner: no free id found");
    return -1;
}

/* The owner's lock still held: its connection alive, else connected again and the lock taken
 * again (the same id: the log rows are still this store's). 0, or -1 with err (tried again at
 * the next housekeeping; meanwhile another collector may write out this store's log: the
 * samples are then written twice, which changes nothing). */
static int owner_keep(co_store *s, char *err, size_t errlen)
{
    if (s->locked && s->lockc && conn_alive(s->lockc)) return 0;
    if (s->locked)
        cm_log(CM_LOG_WARN, "store: the connection holding the head's lock was lost;"
                            " taking the lock again");
    s->locked = 0;
    if (s->lockc && !conn_alive(s->lockc)) {
        PQfinish(s->lockc);
        s->lockc = NULL;
    }
    if (!s->lockc && !(s->lockc = conn_open(s, err, errlen))) return -1;
    pg_query q = {.s = s, .c = s->lockc, .err = err, .errlen = errlen};
    char ibuf[32];
    const char *p[] = {pg_i64(ibuf, s->owner)};
    int64_t got = 0;
    if (one_int(&q, "head owner", "SELECT pg_try_advisory_lock(" HEAD_LOCK_CLASS ", $1::int)::int",
                1, p, &got) < 0)
        return -1;
    if (!got) {
        cm_seterr(err, errlen, "postgresql: head owner %d: its lock is held elsewhere for now",
                  (int)s->owner);
        return -1;
    }
    s->locked = 1;
    return 0;
}

/* In a transaction of its own: the log of owner o written out and deleted, if o is gone (its lock
 * free: taken here until the commit, so that no other collector does the same meanwhile). A
 * record that cannot be read leaves o's rows as they are (logged). 0 (done, alive, or kept),
 * -1 on a database error (rolled back). */
static int adopt_owner(pg_query *q, int32_t o)
{
    co_store *s = q->s;
    char obuf[32], ibuf[32];
    const char *p[2] = {pg_i64(obuf, o)};
    int64_t gone = 0;
    if (pg_begin(q) < 0) return -1;
    if (one_int(q, "head log",
                "SELECT pg_try_advisory_xact_lock(" HEAD_LOCK_CLASS ", $1::int)::int", 1, p,
                &gone) < 0)
        goto fail;
    if (!gone) { /* alive, or being adopted by another collector */
        pg_rollback(q);
        return 0;
    }
    PGresult *res =
        res_ok(q, "head log",
               PQexecParams(q->c, "SELECT id, data FROM head_log WHERE owner = $1::int ORDER BY id",
                            1, NULL, p, NULL, NULL, 1));
    if (!res) goto fail;
    co_head *h = co_head_new();
    if (!h) {
        PQclear(res);
        oom(q->err, q->errlen);
        goto fail;
    }
    int rows = PQntuples(res);
    if (!rows) { /* written out by another collector since */
        PQclear(res);
        co_head_free(h);
        pg_rollback(q);
        return 0;
    }
    int64_t maxid = 0;
    for (int r = 0; r < rows; r++) {
        char why[160];
        int64_t id = bin_i64(res, r, 0);
        if (co_head_replay(h, PQgetvalue(res, r, 1), (size_t)PQgetlength(res, r, 1), why,
                           sizeof why) < 0) {
            cm_log_limited("head-adopt-bad", 300, CM_LOG_ERROR,
                           "store: head_log row %lld (owner %d, a collector that is gone): %s;"
                           " the %d rows of that owner are kept, their samples not written out",
                           (long long)id, (int)o, why, rows);
            PQclear(res);
            co_head_free(h);
            pg_rollback(q);
            return 0;
        }
        maxid = id;
    }
    PQclear(res);
    int rc = head_take_staged(h);
    size_t n = co_head_points(h);
    copy_reset(s);
    if (rc < 0 || co_head_each(h, copy_series, q) != 0) {
        co_head_free(h);
        oom(q->err, q->errlen);
        goto fail;
    }
    co_head_free(h);
    p[1] = pg_i64(ibuf, maxid);
    /* up to the last row read: later ones (a collector that lost its lock for a moment and
     * writes on) stay */
    if (samples_flush(q) < 0 ||
        exec_params(q, "head log",
                    "DELETE FROM head_log WHERE owner = $1::int AND id <= $2::bigint", 2, p) < 0 ||
        pg_commit(q) < 0)
        goto fail;
    cm_log(CM_LOG_INFO,
           "store: wrote out the head log of a collector that is gone (owner %d):"
           " %d records, %zu samples",
           (int)o, rows, n);
    return 0;
fail:
    pg_rollback(q);
    return -1;
}

/* The head logs of collectors that are gone, each written out in a transaction of its own.
 * 0 or -1 with err. */
static int head_adopt(co_store *s, char *err, size_t errlen)
{
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    char obuf[32];
    const char *p[] = {pg_i64(obuf, s->owner)};
    PGresult *res =
        pg_exec(&q, "head log", "SELECT DISTINCT owner FROM head_log WHERE owner <> $1::int", 1, p);
    int rc = res ? 0 : -1;
    for (int r = 0; res && r < PQntuples(res) && rc == 0; r++)
        rc = adopt_owner(&q, (int32_t)pg_int(res, r, 0));
    PQclear(res);
    pg_conn_put(&q);
    return rc;
}

/* Commit q's open transaction under the head's write lock: readers see the staged points
 * join the head (or, flushed: the head emptied, its points now in the tables) in the same
 * step as the commit. 0 or -1 (the caller rolls back). */
static int head_commit(pg_query *q, int flushed)
{
    co_head *h = q->s->hd;
    co_head_wrlock(h);
    if (co_head_reserve_locked(h) < 0) {
        co_head_unlock(h);
        return oom(q->err, q->errlen);
    }
    if (pg_commit(q) < 0) {
        co_head_unlock(h);
        return -1;
    }
    if (flushed)
        co_head_clear_locked(h);
    else
        co_head_commit_locked(h);
    co_head_unlock(h);
    return 0;
}

/* After a failed commit of a log record (the answer may have been lost after the server
 * committed): the record's row tells. There: its points join the head (they are stored);
 * not there: rolled back. Before anything else is written. 0, or -1 with err (asked again
 * next time). */
static int log_settle(co_store *s, char *err, size_t errlen)
{
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    char ibuf[32], obuf[32];
    const char *p[] = {pg_i64(ibuf, s->unsure_id), pg_i64(obuf, s->owner)};
    PGresult *res = res_ok(&q, "head log",
                           PQexecParams(q.c,
                                        "SELECT data FROM head_log WHERE id = $1::bigint"
                                        " AND owner = $2::int",
                                        2, NULL, p, NULL, NULL, 1));
    int rc = res ? 0 : -1;
    if (res && PQntuples(res) == 1) {
        char why[160];
        if (co_head_replay(s->hd, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), why,
                           sizeof why) < 0) {
            cm_seterr(err, errlen, "head_log row %lld: %s", (long long)s->unsure_id, why);
            rc = -1;
        } else if (head_take_staged(s->hd) < 0) {
            rc = oom(err, errlen);
        } else {
            cm_log(CM_LOG_WARN, "store: a commit whose answer was lost had been made: its"
                                " samples are held");
        }
    }
    PQclear(res);
    pg_conn_put(&q);
    if (rc == 0) s->unsure_id = 0;
    return rc;
}

/* Write the whole head to the tables (one bulk load sorted by series and time) and delete this
 * store's log rows, in one transaction. Writer lock held. 0 or -1 (the head and its log are
 * kept). */
static int head_flush(co_store *s, char *err, size_t errlen)
{
    if (s->unsure_id && log_settle(s, err, errlen) < 0) return -1;
    if (!co_head_points(s->hd)) return 0;
    if (err && errlen) err[0] = '\0';
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    copy_reset(s);
    s->copy_unique = 1; /* co_head_each: each series once, its times ascending and distinct */
    char obuf[32];
    const char *p[] = {pg_i64(obuf, s->owner)};
    if (co_head_each(s->hd, copy_series, &q) != 0) {
        if (err && errlen && !err[0]) oom(err, errlen);
        goto fail;
    }
    if (pg_begin(&q) < 0 || samples_flush(&q) < 0 ||
        exec_params(&q, "head log", "DELETE FROM head_log WHERE owner = $1::int", 1, p) < 0 ||
        head_commit(&q, 1) < 0)
        goto fail;
    pg_conn_put(&q);
    return 0;
fail:
    pg_rollback(&q);
    pg_conn_put(&q);
    return -1;
}

/* The staged points as one record of the head's log, in q's open transaction; *id = its row. */
static int head_log_append(pg_query *q, int64_t *id)
{
    co_store *s = q->s;
    unsigned char *rec;
    size_t len;
    if (co_head_encode(s->hd, &rec, &len) < 0) return oom(q->err, q->errlen);
    if (len > INT_MAX) {
        free(rec);
        cm_seterr(q->err, q->errlen, "head log: a record of %zu bytes is too large", len);
        return -1;
    }
    char obuf[32];
    const char *p[] = {pg_i64(obuf, s->owner), (const char *)rec};
    const int lens[] = {0, (int)len}, fmts[] = {0, 1}; /* the record as binary */
    PGresult *res =
        res_ok(q, "head log",
               PQexecParams(q->c,
                            "INSERT INTO head_log(owner, data) VALUES($1::int, $2::bytea)"
                            " RETURNING id",
                            2, NULL, p, lens, fmts, 0));
    free(rec);
    if (!res) return -1;
    *id = pg_int(res, 0, 0);
    PQclear(res);
    return 0;
}

/* 1 when the head holds enough points, or old enough ones, to be written out. */
static int head_due(const co_store *s, int64_t now)
{
    int64_t since = co_head_since_ms(s->hd);
    return co_head_points(s->hd) >= s->head_max_points ||
           (since && now - since >= s->head_max_age_ms);
}

/* The owner's lock kept, and the logs of collectors that are gone written out. */
static int housekeep(co_store *s, int64_t now, char *err, size_t errlen)
{
    s->last_adopt_ms = now;
    if (owner_keep(s, err, errlen) < 0) return -1;
    return head_adopt(s, err, errlen);
}

/* Write a group of batches in one transaction (store.h co_store_write). */
int pg_write(co_store *s, cm_batch *const *batches, size_t n, co_batch_result *result, char *err,
             size_t errlen)
{
    if (!n) return 0;
    if (err && errlen) err[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (batch_check(batches[i], err, errlen) < 0) return -1;
    pthread_mutex_lock(&s->wmu);
    if (s->unsure_id && log_settle(s, err, errlen) < 0) {
        pthread_mutex_unlock(&s->wmu);
        return -1;
    }
    int64_t now = cm_now_ms();
    s->ntouched = s->nsites = s->nagents = s->npend = 0;
    copy_reset(s);
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) {
        pthread_mutex_unlock(&s->wmu);
        return -1;
    }
    int64_t logid = 0;
    if (pg_begin(&q) < 0 || agents_lock(&q, batches, n, now) < 0) goto fail;
    for (size_t i = 0; i < n; i++)
        if (batch_write(&q, batches[i], now, &result[i]) < 0) goto fail;
    /* samples last: a new partition locks the samples table until the commit, and by then
     * this transaction waits for no row another writer may hold */
    if (points_route(&q) < 0 || devices_touch(&q, now) < 0 || agents_update(&q, now) < 0 ||
        samples_flush(&q) < 0)
        goto fail;
    if (co_head_staged(s->hd) && head_log_append(&q, &logid) < 0) goto fail;
    if (head_commit(&q, 0) < 0) {
        /* committed after all when the answer was lost: its log row tells (log_settle) */
        if (logid) s->unsure_id = logid;
        goto fail;
    }
    pg_conn_put(&q);
    /* the batches are committed (and logged) whatever happens below: retried later */
    char herr[256];
    if (head_due(s, now) && head_flush(s, herr, sizeof herr) < 0)
        cm_log_limited("head-flush", 60, CM_LOG_ERROR, "store: writing the head out: %s", herr);
    if (now - s->last_adopt_ms >= ADOPT_EVERY_MS && housekeep(s, now, herr, sizeof herr) < 0)
        cm_log_limited("head-adopt", 60, CM_LOG_ERROR, "store: head housekeeping: %s", herr);
    pthread_mutex_unlock(&s->wmu);
    return 0;
fail:
    /* ids cached during the transaction may name rows that are gone, the staged points were
     * not committed, and the watermarks may have said what the rollback undid */
    pg_rollback(&q);
    pg_conn_put(&q);
    co_idmap_clear(&s->devmap);
    co_idmap_clear(&s->sermap);
    co_head_abort(s->hd);
    co_head_forget_watermarks(s->hd);
    pthread_mutex_unlock(&s->wmu);
    return -1;
}

/* The head's bounds (store.h co_store_set_head; 0: the defaults, 500,000 points, 2 s). */
int pg_set_head(co_store *s, size_t max_points, int64_t max_age_ms)
{
    pthread_mutex_lock(&s->wmu);
    s->head_max_points = max_points ? max_points : HEAD_MAX_POINTS;
    s->head_max_age_ms = max_age_ms > 0 ? max_age_ms : HEAD_MAX_AGE_MS;
    pthread_mutex_unlock(&s->wmu);
    return 0;
}

/* The writer's idle housekeeping: the head written out when due, every ADOPT_EVERY_MS the
 * owner's lock checked and the logs of collectors that are gone written out. */
int pg_maintain(co_store *s, int64_t now_ms, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->wmu);
    int rc = s->unsure_id ? log_settle(s, err, errlen) : 0;
    if (rc == 0 && head_due(s, now_ms)) rc = head_flush(s, err, errlen);
    if (rc == 0 && now_ms - s->last_adopt_ms >= ADOPT_EVERY_MS)
        rc = housekeep(s, now_ms, err, errlen);
    pthread_mutex_unlock(&s->wmu);
    return rc;
}

/* Everything in the tables now: the head written out, and the logs of collectors that are
 * gone. */
co_head *pg_head(co_store *s)
{
    return s->hd;
}

int pg_flush(co_store *s, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->wmu);
    int rc = head_flush(s, err, errlen);
    if (rc == 0) rc = housekeep(s, cm_now_ms(), err, errlen);
    pthread_mutex_unlock(&s->wmu);
    return rc;
}

/* ---------------------------------------------------------------- agents, tokens, operators */

int pg_last_seq(co_store *s, const char *agent, uint64_t *last_seq, char *err, size_t errlen)
{
    *last_seq = 0;
    if (!agent) {
        cm_seterr(err, errlen, "last_seq: an agent is required");
        return -1;
    }
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    int64_t v = 0;
    const char *p[] = {agent};
    int rc = one_int(&q, "last_seq", "SELECT last_seq FROM agents WHERE id = $1", 1, p, &v);
    pg_conn_put(&q);
    if (rc == 1) *last_seq = v > 0 ? (uint64_t)v : 0;
    return rc;
}

/* Insert a hash-keyed row (sql: $1 hash, $2, $3, $4 now); a known hash is "token already
 * exists". 0 or -1. */
static int hash_add(co_store *s, const char *what, const char *sql, const char *hash_hex,
                    const char *a, const char *b, char *err, size_t errlen)
{
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    char nbuf[32];
    const char *p[] = {hash_hex, a, b, pg_i64(nbuf, cm_now_ms())};
    PGresult *res = pg_exec(&q, what, sql, 4, p);
    int rc = -1;
    if (res) {
        if (!strcmp(PQcmdTuples(res), "1"))
            rc = 0;
        else
            cm_seterr(err, errlen, "token already exists");
    }
    PQclear(res);
    pg_conn_put(&q);
    return rc;
}

/* One row (a, b) of sql keyed by a token hash: 1 found, 0 unknown (or not a hash), -1 error. */
static int hash_lookup(co_store *s, const char *what, const char *sql, const char *hash_hex,
                       char *a, size_t alen, char *b, size_t blen, char *err, size_t errlen)
{
    if (!co_valid_hash(hash_hex)) return 0;
    pg_query q;
    if (pg_conn_get(&q, s, err, errlen) < 0) return -1;
    const char *p[] = {hash_hex};
    PGresult *res = pg_exec(&q, what, sql, 1, p);
    int rc = -1;
    if (res) {
        if (PQntuples(res) == 0) {
            rc = 0;
        } else {
            const char *x = pg_str(res, 0, 0), *y = pg_str(res, 0, 1);
            if (!x || !y || strlen(x) >= alen || strlen(y) >= blen) {
                cm_seterr(err, errlen, "%s: a value is longer than the buffer", what);
            } else {
                memcpy(a, x, strlen(x) + 1);
                memcpy(b, y, strlen(y) + 1);
                rc = 1;
            }
        }
    }
    PQclear(res);
    pg_conn_put(&q);
    return rc;
}

/* Store an agent token's hash. */
int pg_token_add(co_store *s, const char *hash_hex, const char *agent_id, const char *site,
                 char *err, size_t errlen)
{
    if (!co_valid_hash(hash_hex)) {
        cm_seterr(err, errlen, "token hash must be 64 lowercase hex digits (SHA-256)");
        return -1;
    }
    if (!agent_id || !*agent_id || !site || !*site) {
        cm_seterr(err, errlen, "token needs an agent id and a site");
        return -1;
    }
    return hash_add(s, "token add",
                    "INSERT INTO tokens(hash, agent_id, site, created_ms) VALUES($1, $2, $3, $4)"
                    " ON CONFLICT(hash) DO NOTHING",
                    hash_hex, agent_id, site, err, errlen);
}

/* Look an agent token's hash up: 1, 0 or -1. */
int pg_token_lookup(co_store *s, const char *hash_hex, char *agent_id, size_t agent_len, char *site,
                    size_t site_len, char *err, size_t errlen)
{
    return hash_lookup(s, "token lookup", "SELECT agent_id, site FROM tokens WHERE hash = $1",
                       hash_hex, agent_id, agent_len, site, site_len, err, errlen);
}

/* Store an operator token's hash. */
int pg_operator_add(co_store *s, const char *hash_hex, const char *name, const char *site,
                    char *err, size_t errlen)
{
    if (!co_valid_hash(hash_hex)) {
        cm_seterr(err, errlen, "token hash must be 64 lowercase hex digits (SHA-256)");
        return -1;
    }
    if (!name || !*name || !site || !*site) {
        cm_seterr(err, errlen, "an operator token needs a name and a site ('*' = every site)");
        return -1;
    }
    return hash_add(s, "operator add",
                    "INSERT INTO operators(hash, name, site, created_ms) VALUES($1, $2, $3, $4)"
                    " ON CONFLICT(hash) DO NOTHING",
                    hash_hex, name, site, err, errlen);
}

/* Look an operator token's hash up: 1, 0 or -1. */
int pg_operator_lookup(co_store *s, const char *hash_hex, char *name, size_t name_len, char *site,
                       size_t site_len, char *err, size_t errlen)
{
    return hash_lookup(s, "operator lookup", "SELECT name, site FROM operators WHERE hash = $1",
                       hash_hex, name, name_len, site, site_len, err, errlen);
}

/* Exact counts of samples (the tables' and the head's), series and devices (one snapshot).
 * Counting every sample takes long on a large store: the head's read lock is held only while
 * the snapshot is taken and the head's count read (the two then agree), not while counting. */
int pg_counts(co_store *s, int64_t *samples, int64_t *series, int64_t *devices, char *err,
              size_t errlen)
{
    pg_query q;
    if (pg_read_begin(&q, s, err, errlen) < 0) return -1;
    int64_t a = 0, b = 0, c = 0, held = 0;
    PGresult *res = pg_exec(&q, "counts", "SELECT 1", 0, NULL); /* the snapshot */
    int ok = res != NULL;
    PQclear(res);
    if (ok) held = (int64_t)co_head_points(q.head); /* samples not written out */
    co_head_unlock(q.head);
    q.head = NULL;
    res = ok ? pg_exec(&q, "counts",
                       "SELECT (SELECT count(*) FROM samples), (SELECT count(*) FROM series),"
                       " (SELECT count(*) FROM devices)",
                       0, NULL)
             : NULL;
    if (res) {
        a = pg_int(res, 0, 0) + held;
        b = pg_int(res, 0, 1);
        c = pg_int(res, 0, 2);
    }
    ok = res != NULL;
    PQclear(res);
    pg_read_end(&q);
    if (samples) *samples = a;
    if (series) *series = b;
    if (devices) *devices = c;
    return ok ? 0 : -1;
}

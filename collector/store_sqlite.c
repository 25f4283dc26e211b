/* store_sqlite.c — the SQLite backend of store.h.
 *
 * One writer connection (WAL, synchronous=FULL) does every write under a mutex; queries take
 * a read-only connection of their own from a small pool, so readers never share the writer's
 * connection and never block it. Samples live in one WITHOUT ROWID table per UTC day
 * (samples_YYYYMMDD, listed in `chunks` with a running row count), so the table being
 * appended to stays small and its index stays in cache however large the store grows.
 * Chunk table names are made only from our own day arithmetic; every value is bound. */
#include "store.h"
#include "store_sqlite_int.h"

#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errbuf.h"
#include "head.h"
#include "idmap.h"
#include "log.h"
#include "store_util.h"
#include "timeutil.h"
#include "walckpt.h"

#define DAY_MS 86400000LL
#define TS_MIN_MS 0LL               /* 1970-01-01 */
#define TS_MAX_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */
#define CHUNK_CACHE 8               /* day tables with prepared statements kept */
#define READER_POOL 8               /* idle read-only connections kept */
#define IDMAP_MAX (1u << 20)        /* cached ids before the cache is cleared */
#define BUSY_TIMEOUT_MS 5000
#define HEAD_MAX_POINTS 2000000  /* default: points held before a write-out begins */
#define HEAD_MAX_AGE_MS 300000LL /* default: oldest commit held before it is written out */
#define CKPT_PAGES 1000          /* log frames that wake the checkpoint thread */

/* ---------------------------------------------------------------- errors */

int sq_dberr(sqlite3 *db, const char *what, char *err, size_t errlen)
{
    cm_seterr(err, errlen, "sqlite: %s: %s", what, sqlite3_errmsg(db));
    return -1;
}

/* ---------------------------------------------------------------- the store */

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_AGENT_SEQ,
    ST_AGENT_UPSERT,
    ST_SITE_ADD,
    ST_DEVICE_UPSERT,
    ST_DEVICE_TOUCH,
    ST_SERIES_UPSERT,
    ST_LATEST,
    ST_EVENT,
    ST_CHUNK_ADD,
    ST_CHUNK_ROWS,
    ST_TOKEN_ADD,
    ST_ROLLUP_1M,
    ST_ROLLUP_1H,
    ST_ROLLUP_1H_REDO,
    ST_BATCH_AUDIT,
    ST_AUDIT_BELOW,
    ST_GAP_BELOW,
    ST_GAP_DELETE,
    ST_GAP_INSERT,
    ST_LATEST_TS,
    ST_HEAD_LOG,
    ST_HEAD_CLEAR,
    ST_HEAD_LAST,
    ST_COUNT
};

static const char *const st_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_AGENT_SEQ] = "SELECT last_seq FROM agents WHERE id = ?1",
    [ST_AGENT_UPSERT] =
        "INSERT INTO agents(id, site, last_seq, last_seen_ms, version, batches, samples) "
        "VALUES(?1, ?2, ?3, ?4, ?5, 1, ?6) "
        "ON CONFLICT(id) DO UPDATE SET site = excluded.site, last_seq = excluded.last_seq, "
        "last_seen_ms = excluded.last_seen_ms, version = coalesce(excluded.version, version), "
        "batches = batches + 1, samples = samples + excluded.samples",
    [ST_SITE_ADD] =
        "INSERT INTO sites(code, created_ms) VALUES(?1, ?2) ON CONFLICT(code) DO NOTHING",
    [ST_DEVICE_UPSERT] =
        "INSERT INTO devices(site, device_id, screen, kind, vendor, model, serial, firmware, "
        "profile, first_seen_ms, last_seen_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
        "?10) "
        "ON CONFLICT(site, device_id) DO UPDATE SET screen = coalesce(excluded.screen, screen), "
        "kind = coalesce(excluded.kind, kind), vendor = coalesce(excluded.vendor, vendor), "
        "model = coalesce(excluded.model, model), serial = coalesce(excluded.serial, serial), "
        "firmware = coalesce(excluded.firmware, firmware), "
        "profile = coalesce(excluded.profile, profile), "
        "last_seen_ms = max(last_seen_ms, excluded.last_seen_ms) RETURNING id",
    [ST_DEVICE_TOUCH] = "UPDATE devices SET last_seen_ms = ?2 WHERE id = ?1 AND last_seen_ms < ?2",
    [ST_SERIES_UPSERT] =
        "INSERT INTO series(device_ref, metric, labels, unit) VALUES(?1, ?2, ?3, ?4) "
        "ON CONFLICT(device_ref, metric, labels) DO UPDATE SET unit = coalesce(excluded.unit, "
        "unit) "
        "RETURNING id",
    [ST_LATEST] =
        "INSERT INTO latest(series_id, ts_ms, value) VALUES(?1, ?2, ?3) "
        "ON CONFLICT(series_id) DO UPDATE SET ts_ms = excluded.ts_ms, value = excluded.value "
        "WHERE excluded.ts_ms >= latest.ts_ms",
    [ST_EVENT] = "INSERT INTO events(site, device_ref, ts_ms, severity, code, text, source) "
                 "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_CHUNK_ADD] = "INSERT INTO chunks(day, table_name, rows) VALUES(?1, ?2, 0) "
                     "ON CONFLICT(day) DO NOTHING",
    [ST_CHUNK_ROWS] = "UPDATE chunks SET rows = rows + ?2 WHERE day = ?1",
    [ST_TOKEN_ADD] = "INSERT INTO tokens(hash, agent_id, site, created_ms) VALUES(?1, ?2, ?3, ?4)",
    [ST_ROLLUP_1M] = "INSERT INTO rollup_1m(series_id, bucket_ms, n, sum, min, max)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(series_id, bucket_ms) DO UPDATE"
                     " SET n = n + excluded.n, sum = sum + excluded.sum,"
                     " min = min(min, excluded.min), max = max(max, excluded.max)",
    [ST_ROLLUP_1H] = "INSERT INTO rollup_1h(series_id, bucket_ms, n, sum, min, max)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(series_id, bucket_ms) DO UPDATE"
                     " SET n = n + excluded.n, sum = sum + excluded.sum,"
                     " min = min(min, excluded.min), max = max(max, excluded.max)",
    [ST_ROLLUP_1H_REDO] = "INSERT OR REPLACE INTO rollup_1h(series_id, bucket_ms, n, sum, min, max)"
                          " SELECT ?1, ?2, sum(n), sum(sum), min(min), max(max) FROM rollup_1m"
                          " WHERE series_id = ?1 AND bucket_ms >= ?2 AND bucket_ms < ?2 + 3600000"
                          " HAVING count(*) > 0",
    /* no ON CONFLICT: a second row for the same (agent, first_seq) is a bug, never stored */
    [ST_BATCH_AUDIT] = "INSERT INTO batches(agent_id, first_seq, last_seq, samples, received_ms) "
                       "VALUES(?1, ?2, ?3, ?4, ?5)",
    /* Stored ranges and gaps never overlap each other, so walking down from the top of a range
     * can stop at the first row that ends below it (gap_put). */
    [ST_AUDIT_BELOW] = "SELECT first_seq, last_seq FROM batches WHERE agent_id = ?1 AND "
                       "first_seq <= ?2 ORDER BY first_seq DESC",
    [ST_GAP_BELOW] = "SELECT from_seq, to_seq, reason, reported_ms FROM gaps WHERE agent_id = ?1 "
                     "AND from_seq <= ?2 ORDER BY from_seq DESC",
    [ST_GAP_DELETE] = "DELETE FROM gaps WHERE agent_id = ?1 AND from_seq = ?2",
    [ST_GAP_INSERT] = "INSERT INTO gaps(agent_id, from_seq, to_seq, reason, reported_ms) "
                      "VALUES(?1, ?2, ?3, ?4, ?5)",
    [ST_LATEST_TS] = "SELECT ts_ms FROM latest WHERE series_id = ?1",
    [ST_HEAD_LOG] = "INSERT INTO head_log(data) VALUES(?1)",
    [ST_HEAD_CLEAR] = "DELETE FROM head_log WHERE id <= ?1",
    [ST_HEAD_LAST] = "SELECT coalesce(max(id), 0) FROM head_log",
};

/* Schema migrations: migration[i] takes user_version i to i + 1, run in one transaction. */
static const char *const migration[] = {
    /* 0 -> 1 */
    "CREATE TABLE sites(code TEXT PRIMARY KEY, name TEXT, province TEXT, city TEXT,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE agents(id TEXT PRIMARY KEY, site TEXT NOT NULL, last_seq INTEGER NOT NULL,"
    " last_seen_ms INTEGER NOT NULL, version TEXT);"
    "CREATE INDEX agents_by_site ON agents(site);"
    "CREATE TABLE tokens(hash TEXT PRIMARY KEY, agent_id TEXT NOT NULL, site TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE devices(id INTEGER PRIMARY KEY, site TEXT NOT NULL, device_id TEXT NOT NULL,"
    " screen TEXT, kind TEXT, vendor TEXT, model TEXT, serial TEXT, firmware TEXT, profile TEXT,"
    " first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL, UNIQUE(site, device_id));"
    "CREATE INDEX devices_by_device_id ON devices(device_id);"
    "CREATE TABLE series(id INTEGER PRIMARY KEY, device_ref INTEGER NOT NULL, metric TEXT NOT NULL,"
    " labels TEXT NOT NULL, unit TEXT, UNIQUE(device_ref, metric, labels));"
    "CREATE TABLE latest(series_id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, value REAL NOT "
    "NULL);"
    "CREATE TABLE events(id INTEGER PRIMARY KEY, site TEXT NOT NULL, device_ref INTEGER,"
    " ts_ms INTEGER NOT NULL, severity TEXT, code TEXT, text TEXT, source TEXT);"
    "CREATE INDEX events_by_device ON events(device_ref, ts_ms);"
    "CREATE INDEX events_by_site ON events(site, ts_ms);"
    "CREATE TABLE chunks(day INTEGER PRIMARY KEY, table_name TEXT NOT NULL,"
    " rows INTEGER NOT NULL DEFAULT 0);",
    /* 1 -> 2: exactly-once audit. One row per stored batch (its seq range never overlaps
     * another row of the agent), records lost for good, and per-agent running totals that
     * equal the sums over the agent's audit rows (0 for batches stored before version 2). */
    "CREATE TABLE batches(agent_id TEXT NOT NULL, first_seq INTEGER NOT NULL,"
    " last_seq INTEGER NOT NULL, samples INTEGER NOT NULL, received_ms INTEGER NOT NULL,"
    " PRIMARY KEY(agent_id, first_seq)) WITHOUT ROWID;"
    "CREATE TABLE gaps(agent_id TEXT NOT NULL, from_seq INTEGER NOT NULL,"
    " to_seq INTEGER NOT NULL, reason TEXT NOT NULL, reported_ms INTEGER NOT NULL,"
    " PRIMARY KEY(agent_id, from_seq)) WITHOUT ROWID;"
    "ALTER TABLE agents ADD COLUMN batches INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN samples INTEGER NOT NULL DEFAULT 0;",
    /* 2 -> 3: screen settings (class, display, format, per-channel SPL references set at
     * commissioning) and operator tokens (people and tools allowed to change settings; kept
     * apart from agent tokens so a leaked agent token cannot). site '*' = every site. */
    "CREATE TABLE screens(site TEXT NOT NULL, screen TEXT NOT NULL, name TEXT,"
    " class TEXT NOT NULL DEFAULT 'theatre', display TEXT NOT NULL DEFAULT 'projection',"
    " format TEXT, spl_ref TEXT NOT NULL DEFAULT '{}', updated_ms INTEGER NOT NULL,"
    " updated_by TEXT, PRIMARY KEY(site, screen)) WITHOUT ROWID;"
    "CREATE TABLE operators(hash TEXT PRIMARY KEY, name TEXT NOT NULL, site TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL) WITHOUT ROWID;",
    /* 3 -> 4: alerts (one open row per rule, site, device and labels; resolved rows kept as
     * history), their transitions, silences for maintenance windows, and the notification
     * log: one row per notification and per (notification, webhook) delivery. */
    "CREATE TABLE alerts(id INTEGER PRIMARY KEY, rule TEXT NOT NULL, site TEXT NOT NULL,"
    " screen TEXT NOT NULL DEFAULT '', device TEXT NOT NULL, labels TEXT NOT NULL,"
    " severity TEXT NOT NULL, state TEXT NOT NULL, value REAL, threshold REAL, text TEXT,"
    " started_ms INTEGER NOT NULL, firing_ms INTEGER, resolved_ms INTEGER,"
    " updated_ms INTEGER NOT NULL, ack_by TEXT, ack_comment TEXT, ack_ms INTEGER);"
    "CREATE UNIQUE INDEX alerts_open ON alerts(rule, site, device, labels)"
    " WHERE state <> 'resolved';"
    "CREATE INDEX alerts_by_site ON alerts(site, state, updated_ms);"
    "CREATE INDEX alerts_by_state ON alerts(state, updated_ms);"
    "CREATE TABLE alert_history(alert_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL,"
    " state TEXT NOT NULL, severity TEXT, value REAL, threshold REAL, by TEXT, comment TEXT);"
    "CREATE INDEX alert_history_by_alert ON alert_history(alert_id, ts_ms);"
    "CREATE TABLE silences(id INTEGER PRIMARY KEY, site TEXT NOT NULL, screen TEXT,"
    " device TEXT, rule TEXT, from_ms INTEGER NOT NULL, until_ms INTEGER NOT NULL,"
    " by TEXT NOT NULL, comment TEXT, created_ms INTEGER NOT NULL);"
    "CREATE INDEX silences_by_site ON silences(site, until_ms);"
    "CREATE TABLE notifications(id TEXT PRIMARY KEY, alert_id INTEGER NOT NULL,"
    " kind TEXT NOT NULL, site TEXT NOT NULL, payload TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE INDEX notifications_by_site ON notifications(site, created_ms);"
    "CREATE INDEX notifications_by_alert ON notifications(alert_id);"
    "CREATE TABLE deliveries(id TEXT NOT NULL, target TEXT NOT NULL, state TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, http_status INTEGER, error TEXT,"
    " updated_ms INTEGER NOT NULL, PRIMARY KEY(id, target)) WITHOUT ROWID;"
    "CREATE INDEX deliveries_pending ON deliveries(state) WHERE state = 'pending';",
    /* 4 -> 5: compliance (compliance.c, store_compliance.c): per screen, UTC day
     * ('YYYY-MM-DD') and quantity (luminance, white, spl), the measured time and the part of
     * it within tolerance, recomputed from the day's samples. */
    "CREATE TABLE compliance(site TEXT NOT NULL, screen TEXT NOT NULL, day TEXT NOT NULL,"
    " quantity TEXT NOT NULL, in_ms INTEGER NOT NULL, measured_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL, PRIMARY KEY(site, screen, day, quantity)) WITHOUT ROWID;"
    "CREATE INDEX compliance_by_day ON compliance(day);",
    /* 5 -> 6: roll-ups maintained as samples are written: per series and UTC minute / hour,
     * the count, sum, min and max of the stored values (a year-long chart reads hours). */
    "CREATE TABLE rollup_1m(series_id INTEGER NOT NULL, bucket_ms INTEGER NOT NULL,"
    " n INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,"
    " PRIMARY KEY(series_id, bucket_ms)) WITHOUT ROWID;"
    "CREATE TABLE rollup_1h(series_id INTEGER NOT NULL, bucket_ms INTEGER NOT NULL,"
    " n INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,"
    " PRIMARY KEY(series_id, bucket_ms)) WITHOUT ROWID;",
    /* 6 -> 7: access for people. A cinema's chain (a viewer may be limited to one chain);
     * viewer accounts (password as a slow salted hash; role viewer = read, operator = also
     * acknowledge, silence and change screens; scope all | province | chain | site); login
     * sessions (only the SHA-256 of the cookie's token is stored). The dashboard's reads:
     * a hall's devices by screen, and a day's compliance by site covering what it sums. */
    "ALTER TABLE sites ADD COLUMN chain TEXT;"
    "CREATE INDEX sites_by_province ON sites(province, city);"
    "CREATE INDEX sites_by_chain ON sites(chain);"
    "CREATE TABLE viewers(name TEXT PRIMARY KEY, pwhash TEXT NOT NULL,"
    " role TEXT NOT NULL DEFAULT 'viewer', scope_kind TEXT NOT NULL DEFAULT 'all',"
    " scope_value TEXT NOT NULL DEFAULT '', disabled INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE sessions(hash TEXT PRIMARY KEY, viewer TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,"
    " last_seen_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX sessions_by_viewer ON sessions(viewer);"
    "CREATE INDEX sessions_by_expiry ON sessions(expires_ms);"
    "CREATE INDEX devices_by_screen ON devices(site, screen, last_seen_ms);"
    "DROP INDEX compliance_by_day;"
    "CREATE INDEX compliance_by_day_site ON compliance(day, site, quantity, in_ms, measured_ms);",
    /* 7 -> 8: the head's log (head.h): the samples of each transaction not yet written to the
     * day tables, roll-ups and latest values, one record per transaction; emptied by the
     * flush that writes them out, replayed at start. */
    "CREATE TABLE head_log(id INTEGER PRIMARY KEY, data BLOB NOT NULL);",
    /* 8 -> 9: compliance figures received from a tier below (store_summary.c, mode = summary
     * in docs/forwarding.md), kept apart from this collector's own recomputation */
    "CREATE TABLE compliance_received(site TEXT NOT NULL, screen TEXT NOT NULL,"
    " day TEXT NOT NULL, quantity TEXT NOT NULL, in_ms INTEGER NOT NULL,"
    " measured_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " PRIMARY KEY(site, screen, day, quantity)) WITHOUT ROWID;",
};
#define SCHEMA_VERSION ((int)(sizeof migration / sizeof migration[0]))

typedef struct chunk {
    int64_t day; /* days since the epoch */
    sqlite3_stmt *ins, *upd;
    int64_t added; /* rows inserted in the open transaction, not yet added to chunks.rows */
    uint64_t used; /* LRU tick */
} chunk;

/* What the head's flush passes to each series. */
typedef struct sq_flush_ctx {
    co_store *s;
    char *err;
    size_t errlen;
} sq_flush_ctx;

/* The samples one transaction added to one series' minute, or `redo` when a stored sample
 * was replaced (the minute is then recomputed from the samples). */
typedef struct rollup_acc {
    int64_t sid, bucket; /* bucket: the minute's first ms */
    int64_t n;
    double sum, min, max;
    int redo;
    uint32_t slot; /* its place in the index (accidx) */
} rollup_acc;

struct co_store {
    co_store_head head; /* first: the backend's functions (store_backend.h) */
    char *path;

    pthread_mutex_t wmu; /* guards everything below down to the reader pool */
    sqlite3 *w;
    sqlite3_stmt *st[ST_COUNT];
    chunk chunks[CHUNK_CACHE];
    size_t nchunks;
    uint64_t tick;
    co_idmap devmap; /* (site, device id) -> devices.id; committed or of the open transaction */
    co_idmap sermap; /* (site, device id, metric, labels) -> series.id */
    char *key;
    size_t keycap;
    int64_t *touched; /* device refs seen in the batch being written */
    size_t ntouched, touchedcap;
    char labels[CO_LABELS_MAX];
    /* roll-up deltas of the open transaction, one per (series, minute) */
    rollup_acc *acc;
    size_t nacc, acccap;
    uint32_t *accidx; /* open addressing: index + 1 into acc, 0 = empty */
    size_t accidxcap;
    /* samples not yet in the tables (head.h): its own lock for readers */
    co_head *hd;
    size_t head_max_points;
    int64_t head_max_age_ms;
    /* the write-out under way: in parts by ascending series id, each its own transaction, so
     * that the batches' commits go on in between (head_part) */
    int wo_active;
    int64_t wo_log_id;     /* the head log's newest record when it began: deleted at its end */
    int64_t wo_started_ms; /* wall clock */
    int64_t age_base_ms;   /* the head's age counts from here (the last write-out's start) */
    co_walckpt *ckpt;      /* copies the log into the file, so that the writer does not */

    pthread_mutex_t rmu; /* guards the reader pool */
    sqlite3 *idle[READER_POOL];
    size_t nidle;
};

/* ---------------------------------------------------------------- small helpers */

/* Step a statement that returns no row, then reset it. */
int sq_step_done(sqlite3 *db, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return sq_dberr(db, what, err, errlen);
    return 0;
}

int sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
        sq_dberr(db, "prepare", err, errlen);
        sqlite3_finalize(*st);
        *st = NULL;
        return -1;
    }
    return 0;
}

void sq_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

void sq_bind_scope(sqlite3_stmt *st, int ik, int iv, const co_scope *sc)
{
    sqlite3_bind_int(st, ik, sc ? (int)sc->kind : 0);
    sqlite3_bind_text(st, iv, sc ? sc->value : "", -1, SQLITE_STATIC);
}

/* The chunk table name of a day: only ever built here, from an integer. */
static void chunk_name(int64_t day, char *buf, size_t len)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, len, "samples_%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* ---------------------------------------------------------------- open / migrate */

int sq_exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        cm_seterr(err, errlen, "sqlite: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int user_version(sqlite3 *db, int *v, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return sq_dberr(db, "user_version", err, errlen);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return sq_dberr(db, "user_version", err, errlen);
    return 0;
}

static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    if (sq_exec_sql(db, "BEGIN IMMEDIATE", err, errlen) < 0) return -1;
    int v = 0;
    if (user_version(db, &v, err, errlen) < 0) goto fail;
    if (v > SCHEMA_VERSION) {
        cm_seterr(err, errlen, "%s: schema version %d is newer than this collector's (%d)", path, v,
                  SCHEMA_VERSION);
        goto fail;
    }
    for (; v < SCHEMA_VERSION; v++) {
        if (sq_exec_sql(db, migration[v], err, errlen) < 0) goto fail;
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
        if (sq_exec_sql(db, sql, err, errlen) < 0) goto fail;
    }
    if (sq_exec_sql(db, "COMMIT", err, errlen) < 0) goto fail;
    return 0;
fail:
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static sqlite3 *reader_open(const co_store *s, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        cm_seterr(err, errlen, "sqlite: open %s read-only: %s", s->path,
                  db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    return db;
}

static sqlite3 *reader_get(co_store *s, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    pthread_mutex_lock(&s->rmu);
    if (s->nidle) db = s->idle[--s->nidle];
    pthread_mutex_unlock(&s->rmu);
    return db ? db : reader_open(s, err, errlen);
}

static void reader_put(co_store *s, sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_lock(&s->rmu);
    if (s->nidle < READER_POOL) {
        s->idle[s->nidle++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&s->rmu);
    if (db) sqlite3_close(db);
}

static int head_recover(co_store *s, char *err, size_t errlen);
static int head_flush(co_store *s, char *err, size_t errlen);

static void chunks_drop(co_store *s)
{
    for (size_t i = 0; i < s->nchunks; i++) {
        sqlite3_finalize(s->chunks[i].ins);
        sqlite3_finalize(s->chunks[i].upd);
    }
    s->nchunks = 0;
}

void sqlite_close(co_store *s)
{
    if (!s) return;
    co_walckpt_stop(s->ckpt); /* the close below checkpoints what is left */
    if (s->w && s->hd && s->st[ST_COUNT - 1]) {
        char err[256];
        /* what is not written out stays in the log and is written out at the next open */
        if (head_flush(s, err, sizeof err) < 0)
            cm_log(CM_LOG_ERROR, "store: writing the head out at close: %s", err);
    }
    for (size_t i = 0; i < s->nidle; i++)
        sqlite3_close(s->idle[i]);
    chunks_drop(s);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->w); /* last connection: checkpoints the WAL */
    co_idmap_clear(&s->devmap);
    co_idmap_clear(&s->sermap);
    free(s->key);
    free(s->touched);
    free(s->acc);
    free(s->accidx);
    free(s->path);
    co_head_free(s->hd);
    pthread_mutex_destroy(&s->wmu);
    pthread_mutex_destroy(&s->rmu);
    free(s);
}

static const co_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sqlite_close,
    .write = sqlite_write,
    .last_seq = sqlite_last_seq,
    .token_add = sqlite_token_add,
    .token_lookup = sqlite_token_lookup,
    .sites = sqlite_sites,
    .devices = sqlite_devices,
    .latest = sqlite_latest,
    .series = sqlite_series,
    .agents = sqlite_agents,
    .gaps = sqlite_gaps,
    .events = sqlite_events,
    .site_in_scope = sqlite_site_in_scope,
    .import = sqlite_import,
    .screens = sqlite_screens,
    .operator_add = sqlite_operator_add,
    .operator_lookup = sqlite_operator_lookup,
    .alerts_apply = sqlite_alerts_apply,
    .alerts = sqlite_alerts,
    .alert = sqlite_alert,
    .alert_ack = sqlite_alert_ack,
    .silence_add = sqlite_silence_add,
    .silences = sqlite_silences,
    .alerts_active = sqlite_alerts_active,
    .notification_add = sqlite_notification_add,
    .delivery_update = sqlite_delivery_update,
    .notifications = sqlite_notifications,
    .deliveries_pending = sqlite_deliveries_pending,
    .day_series = sqlite_day_series,
    .compliance_put = sqlite_compliance_put,
    .compliance_rows = sqlite_compliance_rows,
    .ping = sqlite_ping,
    .counts = sqlite_counts,
    .viewer_add = sqlite_viewer_add,
    .viewer_get = sqlite_viewer_get,
    .viewers = sqlite_viewers,
    .viewer_passwd = sqlite_viewer_passwd,
    .viewer_remove = sqlite_viewer_remove,
    .session_add = sqlite_session_add,
    .session_lookup = sqlite_session_lookup,
    .session_touch = sqlite_session_touch,
    .session_remove = sqlite_session_remove,
    .sessions_expire = sqlite_sessions_expire,
    .retention = sqlite_retention,
    .dash_overview = sqlite_dash_overview,
    .dash_cinema = sqlite_dash_cinema,
    .dash_hall = sqlite_dash_hall,
    .set_head = sqlite_set_head,
    .flush = sqlite_flush,
    .maintain = sqlite_maintain,
    .head = sqlite_head,
    .wal_stats = sqlite_wal_stats,
    .hour_rollups = sqlite_hour_rollups,
    .summary_put = sqlite_summary_put,
    .compliance_received = sqlite_compliance_received,
};

int co_store_open_sqlite(co_store **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || !*path || strcmp(path, ":memory:") == 0) {
        cm_seterr(err, errlen, "sqlite: a database file path is required");
        return -1;
    }
    if (!sqlite3_threadsafe()) {
        cm_seterr(err, errlen, "sqlite: library built without thread safety");
        return -1;
    }
    co_store *s = calloc(1, sizeof *s);
    if (s) {
        s->head.ops = &sqlite_ops;
        s->head_max_points = HEAD_MAX_POINTS;
        s->head_max_age_ms = HEAD_MAX_AGE_MS;
    }
    if (!s || !(s->path = strdup(path)) || !(s->hd = co_head_new())) {
        if (s) free(s->path);
        free(s);
        cm_seterr(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&s->wmu, NULL);
    pthread_mutex_init(&s->rmu, NULL);

    if (sqlite3_open_v2(path, &s->w,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        cm_seterr(err, errlen, "sqlite: open %s: %s", path,
                  s->w ? sqlite3_errmsg(s->w) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(s->w, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(s->w, 1);

    /* journal_mode answers with the mode in force: anything but "wal" is an error. */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->w, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK) {
        sq_dberr(s->w, path, err, errlen);
        goto fail;
    }
    int ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) &&
             strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    if (!ok) {
        cm_seterr(err, errlen, "sqlite: %s: cannot switch to WAL journal mode", path);
        goto fail;
    }
    if (sq_exec_sql(
            s->w,
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF; PRAGMA cache_size = -16384;"
            " PRAGMA journal_size_limit = 67108864;",
            err, errlen) < 0)
        goto fail;
    if (migrate(s->w, path, err, errlen) < 0) goto fail;
    for (int i = 0; i < ST_COUNT; i++)
        if (sqlite3_prepare_v3(s->w, st_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) !=
            SQLITE_OK) {
            sq_dberr(s->w, st_sql[i], err, errlen);
            goto fail;
        }
    if (head_recover(s, err, errlen) < 0) goto fail;
    if (co_walckpt_start(&s->ckpt, s->w, path, CKPT_PAGES, BUSY_TIMEOUT_MS, err, errlen) < 0)
        goto fail;
    /* Prove now that readers can open the file, not at the first query. */
    sqlite3 *r = reader_open(s, err, errlen);
    if (!r) goto fail;
    reader_put(s, r);
    *out = s;
    return 0;
fail:
    co_store_close(s);
    return -1;
}

/* ---------------------------------------------------------------- writing */

static int touch_add(co_store *s, int64_t ref)
{
    for (size_t i = s->ntouched; i-- > 0;)
        if (s->touched[i] == ref) return 0;
    if (s->ntouched == s->touchedcap) {
        size_t ncap = s->touchedcap ? s->touchedcap * 2 : 64;
        int64_t *t = realloc(s->touched, ncap * sizeof *t);
        if (!t) return -1;
        s->touched = t;
        s->touchedcap = ncap;
    }
    s->touched[s->ntouched++] = ref;
    return 0;
}

/* Upsert a device row (inventory fields from d when given) and return its id. */
static int device_upsert(co_store *s, const char *site, const cm_device_info *d, int64_t now,
                         int64_t *ref, char *err, size_t errlen)
{
    sqlite3_stmt *st = s->st[ST_DEVICE_UPSERT];
    sq_bind_text(st, 1, site);
    sq_bind_text(st, 2, d->id);
    sq_bind_text(st, 3, d->screen);
    sq_bind_text(st, 4, d->kind);
    sq_bind_text(st, 5, d->vendor);
    sq_bind_text(st, 6, d->model);
    sq_bind_text(st, 7, d->serial);
    sq_bind_text(st, 8, d->firmware);
    sq_bind_text(st, 9, d->profile);
    sqlite3_bind_int64(st, 10, now);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *ref = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) return sq_dberr(s->w, "device upsert", err, errlen);
    return 0;
}

/* The id of device (site, id), through the cache; the device counts as seen in this batch. */
static int device_ref(co_store *s, const char *site, const cm_device_info *inventory,
                      const char *id, int64_t now, int64_t *ref, char *err, size_t errlen)
{
    const char *parts[] = {site, id};
    size_t len;
    if (co_key_build(&s->key, &s->keycap, &len, parts, 2) < 0) goto oom;
    uint64_t h = co_idmap_hash(s->key, len);
    if (inventory || !co_idmap_get(&s->devmap, s->key, len, h, ref)) {
        cm_device_info bare = {.id = id};
        if (device_upsert(s, site, inventory ? inventory : &bare, now, ref, err, errlen) < 0)
            return -1;
        int64_t known;
        if (!co_idmap_get(&s->devmap, s->key, len, h, &known) &&
            co_idmap_put(&s->devmap, s->key, len, h, *ref, IDMAP_MAX) < 0)
            goto oom;
    }
    if (touch_add(s, *ref) < 0) goto oom;
    return 0;
oom:
    cm_seterr(err, errlen, "out of memory");
    return -1;
}

static int series_ref(co_store *s, const char *site, const cm_series *se, int64_t dev, int64_t *sid,
                      char *err, size_t errlen)
{
    size_t len;
    if (co_series_key(&s->key, &s->keycap, &len, site, se) < 0) {
        /* a label without key or value, too many: co_labels_json names it */
        if (co_labels_json(se, s->labels, err, errlen) < 0) return -1;
        goto oom;
    }
    uint64_t h = co_idmap_hash(s->key, len);
    if (co_idmap_get(&s->sermap, s->key, len, h, sid)) return 0;
    if (co_labels_json(se, s->labels, err, errlen) < 0) return -1;
    sqlite3_stmt *st = s->st[ST_SERIES_UPSERT];
    sqlite3_bind_int64(st, 1, dev);
    sq_bind_text(st, 2, se->metric);
    sq_bind_text(st, 3, s->labels);
    sq_bind_text(st, 4, se->unit);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *sid = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) return sq_dberr(s->w, "series upsert", err, errlen);
    if (co_idmap_put(&s->sermap, s->key, len, h, *sid, IDMAP_MAX) < 0) goto oom;
    return 0;
oom:
    cm_seterr(err, errlen, "out of memory");
    return -1;
}

static int chunk_flush(co_store *s, chunk *c, char *err, size_t errlen)
{
    if (!c->added) return 0;
    sqlite3_stmt *st = s->st[ST_CHUNK_ROWS];
    sqlite3_bind_int64(st, 1, c->day);
    sqlite3_bind_int64(st, 2, c->added);
    if (sq_step_done(s->w, st, "chunk row count", err, errlen) < 0) return -1;
    c->added = 0;
    return 0;
}

/* The chunk of a day: its table created (and listed in chunks) on first use. */
static chunk *chunk_get(co_store *s, int64_t day, char *err, size_t errlen)
{
    s->tick++;
    for (size_t i = 0; i < s->nchunks; i++)
        if (s->chunks[i].day == day) {
            s->chunks[i].used = s->tick;
            return &s->chunks[i];
        }
    chunk *c;
    if (s->nchunks < CHUNK_CACHE) {
        c = &s->chunks[s->nchunks++];
    } else {
        c = &s->chunks[0];
        for (size_t i = 1; i < s->nchunks; i++)
            if (s->chunks[i].used < c->used) c = &s->chunks[i];
        if (chunk_flush(s, c, err, errlen) < 0) return NULL;
        sqlite3_finalize(c->ins);
        sqlite3_finalize(c->upd);
    }
    memset(c, 0, sizeof *c);
    c->day = day;
    c->used = s->tick;

    char name[48], sql[512];
    chunk_name(day, name, sizeof name);
    snprintf(sql, sizeof sql,
             "CREATE TABLE IF NOT EXISTS %s(series_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL,"
             " value REAL NOT NULL, PRIMARY KEY(series_id, ts_ms)) WITHOUT ROWID",
             name);
    if (sq_exec_sql(s->w, sql, err, errlen) < 0) goto fail;
    sqlite3_stmt *st = s->st[ST_CHUNK_ADD];
    sqlite3_bind_int64(st, 1, day);
    sq_bind_text(st, 2, name);
    if (sq_step_done(s->w, st, "chunk add", err, errlen) < 0) goto fail;
    snprintf(sql, sizeof sql,
             "INSERT INTO %s(series_id, ts_ms, value) VALUES(?1, ?2, ?3) ON CONFLICT DO NOTHING",
             name);
    if (sqlite3_prepare_v3(s->w, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->ins, NULL) != SQLITE_OK) {
        sq_dberr(s->w, name, err, errlen);
        goto fail;
    }
    snprintf(sql, sizeof sql, "UPDATE %s SET value = ?3 WHERE series_id = ?1 AND ts_ms = ?2", name);
    if (sqlite3_prepare_v3(s->w, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->upd, NULL) != SQLITE_OK) {
        sq_dberr(s->w, name, err, errlen);
        goto fail;
    }
    return c;
fail:
    sqlite3_finalize(c->ins);
    sqlite3_finalize(c->upd);
    *c = s->chunks[--s->nchunks];
    return NULL;
}

/* ---------------------------------------------------------------- for retention */

void sq_chunk_table(int64_t day, char *buf, size_t len)
{
    chunk_name(day, buf, len);
}

void sq_chunk_forget(co_store *s, int64_t day)
{
    for (size_t i = 0; i < s->nchunks; i++)
        if (s->chunks[i].day == day) {
            sqlite3_finalize(s->chunks[i].ins);
            sqlite3_finalize(s->chunks[i].upd);
            s->chunks[i] = s->chunks[--s->nchunks];
            return;
        }
}

/* Insert one sample; a repeated (series, ts) keeps the value written last. */
/* ---------------------------------------------------------------- roll-ups */

#define MINUTE_MS 60000LL
#define HOUR_MS 3600000LL

static void acc_clear(co_store *s)
{
    if (s->nacc * 8 < s->accidxcap) /* a few: their slots only (a flush clears per series) */
        for (size_t i = 0; i < s->nacc; i++)
            s->accidx[s->acc[i].slot] = 0;
    else if (s->accidx)
        memset(s->accidx, 0, s->accidxcap * sizeof *s->accidx);
    s->nacc = 0;
}

static size_t acc_slot(int64_t sid, int64_t bucket, size_t mask)
{
    uint64_t h = (uint64_t)sid * 0x9E3779B97F4A7C15ULL ^ (uint64_t)bucket * 0xC2B2AE3D27D4EB4FULL;
    h ^= h >> 29;
    return (size_t)h & mask;
}

/* The accumulator of (sid, minute of ts), created empty when new; NULL on out of memory. */
static rollup_acc *acc_get(co_store *s, int64_t sid, int64_t ts)
{
    int64_t bucket = co_floor_div(ts, MINUTE_MS) * MINUTE_MS;
    if ((s->nacc + 1) * 2 > s->accidxcap) { /* keep the index at most half full */
        size_t ncap = s->accidxcap ? s->accidxcap * 2 : 1024;
        uint32_t *idx = calloc(ncap, sizeof *idx);
        if (!idx) return NULL;
        for (size_t i = 0; i < s->nacc; i++) {
            size_t j = acc_slot(s->acc[i].sid, s->acc[i].bucket, ncap - 1);
            while (idx[j])
                j = (j + 1) & (ncap - 1);
            idx[j] = (uint32_t)i + 1;
            s->acc[i].slot = (uint32_t)j;
        }
        free(s->accidx);
        s->accidx = idx;
        s->accidxcap = ncap;
    }
    size_t mask = s->accidxcap - 1, j = acc_slot(sid, bucket, mask);
    for (; s->accidx[j]; j = (j + 1) & mask) {
        rollup_acc *a = &s->acc[s->accidx[j] - 1];
        if (a->sid == sid && a->bucket == bucket) return a;
    }
    if (s->nacc == s->acccap) {
        size_t ncap = s->acccap ? s->acccap * 2 : 512;
        rollup_acc *na = realloc(s->acc, ncap * sizeof *na);
        if (!na) return NULL;
        s->acc = na;
        s->acccap = ncap;
    }
    rollup_acc *a = &s->acc[s->nacc++];
    *a = (rollup_acc){
        .sid = sid, .bucket = bucket, .min = INFINITY, .max = -INFINITY, .slot = (uint32_t)j};
    s->accidx[j] = (uint32_t)s->nacc;
    return a;
}

/* A sample (sid, ts, v) was inserted (replaced = 0) or replaced an older value (1). */
static int acc_add(co_store *s, int64_t sid, int64_t ts, double v, int replaced, char *err,
                   size_t errlen)
{
    rollup_acc *a = acc_get(s, sid, ts);
    if (!a) {
        cm_seterr(err, errlen, "out of memory (roll-ups)");
        return -1;
    }
    if (replaced) {
        a->redo = 1;
        return 0;
    }
    a->n++;
    a->sum += v;
    if (v < a->min) a->min = v;
    if (v > a->max) a->max = v;
    return 0;
}

static int step_rollup(sqlite3 *db, sqlite3_stmt *st, int64_t sid, int64_t bucket, int64_t n,
                       double sum, double min, double max, char *err, size_t errlen)
{
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_int64(st, 2, bucket);
    sqlite3_bind_int64(st, 3, n);
    sqlite3_bind_double(st, 4, sum);
    sqlite3_bind_double(st, 5, min);
    sqlite3_bind_double(st, 6, max);
    return sq_step_done(db, st, "roll-up", err, errlen);
}

/* Recompute one minute of a series from its samples (after a sample was replaced). */
static int minute_redo(co_store *s, const rollup_acc *a, char *err, size_t errlen)
{
    char name[48], sql[400];
    chunk_name(co_floor_div(a->bucket, DAY_MS), name, sizeof name);
    snprintf(sql, sizeof sql,
             "INSERT OR REPLACE INTO rollup_1m(series_id, bucket_ms, n, sum, min, max)"
             " SELECT ?1, ?2, count(*), sum(value), min(value), max(value) FROM %s"
             " WHERE series_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?2 + 60000 HAVING count(*) > 0",
             name);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->w, sql, -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return sq_dberr(s->w, "roll-up redo", err, errlen);
    }
    sqlite3_bind_int64(st, 1, a->sid);
    sqlite3_bind_int64(st, 2, a->bucket);
    int rc = sq_step_done(s->w, st, "roll-up redo", err, errlen);
    sqlite3_finalize(st);
    return rc;
}

static int acc_cmp(const void *x, const void *y)
{
    const rollup_acc *a = x, *b = y;
    if (a->sid != b->sid) return a->sid < b->sid ? -1 : 1;
    return a->bucket < b->bucket ? -1 : a->bucket > b->bucket;
}

/* Write the transaction's roll-up deltas: each minute, then each hour (added to, or
 * recomputed from its minutes when one of them was). Inside the open transaction. */
static int rollup_flush(co_store *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->nacc; i++) {
        const rollup_acc *a = &s->acc[i];
        int rc = a->redo ? minute_redo(s, a, err, errlen)
                         : step_rollup(s->w, s->st[ST_ROLLUP_1M], a->sid, a->bucket, a->n, a->sum,
                                       a->min, a->max, err, errlen);
        if (rc < 0) return -1;
    }
    /* hours: the minutes sorted by (series, minute), each run of one series' hour folded */
    if (s->nacc > 1) qsort(s->acc, s->nacc, sizeof *s->acc, acc_cmp);
    for (size_t i = 0; i < s->nacc;) {
        const rollup_acc *a = &s->acc[i];
        int64_t hour = co_floor_div(a->bucket, HOUR_MS) * HOUR_MS;
        int64_t n = 0;
        double sum = 0, mn = INFINITY, mx = -INFINITY;
        int redo = 0;
        size_t k = i;
        for (; k < s->nacc && s->acc[k].sid == a->sid &&
               co_floor_div(s->acc[k].bucket, HOUR_MS) * HOUR_MS == hour;
             k++) {
            const rollup_acc *b = &s->acc[k];
            n += b->n;
            sum += b->sum;
            if (b->min < mn) mn = b->min;
            if (b->max > mx) mx = b->max;
            redo |= b->redo;
        }
        int rc;
        if (redo) {
            sqlite3_stmt *st = s->st[ST_ROLLUP_1H_REDO];
            sqlite3_bind_int64(st, 1, a->sid);
            sqlite3_bind_int64(st, 2, hour);
            rc = sq_step_done(s->w, st, "roll-up hour", err, errlen);
        } else {
            rc = step_rollup(s->w, s->st[ST_ROLLUP_1H], a->sid, hour, n, sum, mn, mx, err, errlen);
        }
        if (rc < 0) return -1;
        i = k;
    }
    acc_clear(s);
    return 0;
}

static int point_put(co_store *s, int64_t sid, const cm_point *p, char *err, size_t errlen)
{
    chunk *c = NULL;
    int64_t day = co_floor_div(p->ts_ms, DAY_MS);
    /* the chunk used last is almost always the right one */
    for (size_t i = 0; i < s->nchunks; i++)
        if (s->chunks[i].day == day && s->chunks[i].used == s->tick) c = &s->chunks[i];
    if (!c && !(c = chunk_get(s, day, err, errlen))) return -1;
    sqlite3_bind_int64(c->ins, 1, sid);
    sqlite3_bind_int64(c->ins, 2, p->ts_ms);
    sqlite3_bind_double(c->ins, 3, p->value);
    if (sq_step_done(s->w, c->ins, "sample insert", err, errlen) < 0) return -1;
    if (sqlite3_changes(s->w) > 0) {
        c->added++;
        return acc_add(s, sid, p->ts_ms, p->value, 0, err, errlen);
    }
    sqlite3_bind_int64(c->upd, 1, sid);
    sqlite3_bind_int64(c->upd, 2, p->ts_ms);
    sqlite3_bind_double(c->upd, 3, p->value);
    if (sq_step_done(s->w, c->upd, "sample update", err, errlen) < 0) return -1;
    return acc_add(s, sid, p->ts_ms, p->value, 1, err, errlen);
}

static int watermark(co_store *s, int64_t sid, int64_t *wm, char *err, size_t errlen);
static int latest_put(co_store *s, int64_t sid, int64_t ts, double v, char *err, size_t errlen);

static int series_write(co_store *s, const char *site, const cm_series *se, int64_t now, char *err,
                        size_t errlen)
{
    if (!se->device || !se->metric) {
        cm_seterr(err, errlen, "series without device or metric");
        return -1;
    }
    for (size_t j = 0; j < se->npoints; j++) {
        const cm_point *p = &se->points[j];
        if (p->ts_ms < TS_MIN_MS || p->ts_ms > TS_MAX_MS || !isfinite(p->value)) {
            cm_seterr(err, errlen, "series %s/%s: point %zu (%lld, %g) out of range", se->device,
                      se->metric, j, (long long)p->ts_ms, p->value);
            return -1;
        }
    }
    int64_t dev, sid, wm;
    if (device_ref(s, site, NULL, se->device, now, &dev, err, errlen) < 0) return -1;
    if (series_ref(s, site, se, dev, &sid, err, errlen) < 0) return -1;
    if (!se->npoints) return 0;
    if (watermark(s, sid, &wm, err, errlen) < 0) return -1;
    /* newer than everything in the tables: to the head; else (late or replaced) written now */
    const cm_point *newest = NULL;
    for (size_t j = 0; j < se->npoints; j++) {
        const cm_point *p = &se->points[j];
        if (p->ts_ms > wm) {
            if (co_head_stage(s->hd, sid, p->ts_ms, p->value) < 0) {
                cm_seterr(err, errlen, "out of memory (head)");
                return -1;
            }
            continue;
        }
        if (point_put(s, sid, p, err, errlen) < 0) return -1;
        if (!newest || p->ts_ms >= newest->ts_ms) newest = p;
    }
    if (!newest) return 0;
    return latest_put(s, sid, newest->ts_ms, newest->value, err, errlen);
}

/* The newest point of series sid in the tables (INT64_MIN: none), read once per process:
 * every point of the series newer than it goes to the head. */
static int watermark(co_store *s, int64_t sid, int64_t *wm, char *err, size_t errlen)
{
    if (co_head_watermark(s->hd, sid, wm)) return 0;
    sqlite3_stmt *st = s->st[ST_LATEST_TS];
    sqlite3_bind_int64(st, 1, sid);
    int rc = sqlite3_step(st);
    *wm = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : INT64_MIN;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sq_dberr(s->w, "watermark", err, errlen);
    if (co_head_set_watermark(s->hd, sid, *wm) < 0) {
        cm_seterr(err, errlen, "out of memory (watermarks)");
        return -1;
    }
    return 0;
}

/* latest = (ts, v) unless a newer point is stored. */
static int latest_put(co_store *s, int64_t sid, int64_t ts, double v, char *err, size_t errlen)
{
    sqlite3_stmt *st = s->st[ST_LATEST];
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_int64(st, 2, ts);
    sqlite3_bind_double(st, 3, v);
    return sq_step_done(s->w, st, "latest upsert", err, errlen);
}

/* Seqs last+1 .. first-1 never arrived (an implicit "missing" gap); then the batch's own
 * reports, each replacing what is known for its from_seq. */
/* A seq range of one agent, with the reason and time of a gap row. */
typedef struct seq_range {
    int64_t from, to;
    char *reason;
    int64_t reported_ms;
} seq_range;

static void ranges_free(seq_range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(r[i].reason);
    free(r);
}

/* Rows of `st` (ST_AUDIT_BELOW or ST_GAP_BELOW) overlapping [a, b], ascending. 0 or -1. */
static int ranges_overlapping(co_store *s, sqlite3_stmt *st, const char *agent, int64_t a,
                              int64_t b, seq_range **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    sq_bind_text(st, 1, agent);
    sqlite3_bind_int64(st, 2, b);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t from = sqlite3_column_int64(st, 0), to = sqlite3_column_int64(st, 1);
        if (to < a) break; /* every lower row ends lower still */
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            seq_range *nr = realloc(*out, cap * sizeof *nr);
            if (!nr) goto oom;
            *out = nr;
        }
        seq_range *r = &(*out)[(*n)++];
        *r = (seq_range){.from = from, .to = to};
        if (sqlite3_column_count(st) > 2) {
            const char *why = (const char *)sqlite3_column_text(st, 2);
            r->reason = strdup(why ? why : "missing");
            r->reported_ms = sqlite3_column_int64(st, 3);
            if (!r->reason) goto oom;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        ranges_free(*out, *n);
        return sq_dberr(s->w, "gap ranges", err, errlen);
    }
    for (size_t i = 0; i < *n / 2; i++) { /* read descending: make it ascending */
        seq_range t = (*out)[i];
        (*out)[i] = (*out)[*n - 1 - i];
        (*out)[*n - 1 - i] = t;
    }
    return 0;
oom:
    sqlite3_reset(st);
    ranges_free(*out, *n);
    *out = NULL;
    *n = 0;
    cm_seterr(err, errlen, "out of memory");
    return -1;
}

static int gap_insert(co_store *s, const char *agent, int64_t from, int64_t to, const char *reason,
                      int64_t when, char *err, size_t errlen)
{
    sqlite3_stmt *st = s->st[ST_GAP_INSERT];
    sq_bind_text(st, 1, agent);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    sq_bind_text(st, 4, reason);
    sqlite3_bind_int64(st, 5, when);
    return sq_step_done(s->w, st, "gap insert", err, errlen);
}

/* Record that seqs [a, b] of agent are lost, except those stored (audit rows): a seq is
 * either stored or inside a gap, never both. A reported reason (`weak` 0) replaces what was
 * known for its seqs, splitting older gap rows around it; an inferred "missing" (`weak` 1)
 * only fills seqs no gap row covers yet. */
static int gap_put(co_store *s, const char *agent, int64_t a, int64_t b, const char *reason,
                   int weak, int64_t now, char *err, size_t errlen)
{
    seq_range *stored, *gaps = NULL;
    size_t nstored, ngaps = 0;
    if (ranges_overlapping(s, s->st[ST_AUDIT_BELOW], agent, a, b, &stored, &nstored, err, errlen) <
        0)
        return -1;
    int rc = 0;
    int64_t p = a;
    for (size_t i = 0; i <= nstored && rc == 0; i++) {
        /* the piece [p, q] between stored ranges */
        int64_t q = i < nstored ? stored[i].from - 1 : b;
        if (q > b) q = b;
        if (p <= q) {
            rc =
                ranges_overlapping(s, s->st[ST_GAP_BELOW], agent, p, q, &gaps, &ngaps, err, errlen);
            if (rc < 0) break;
            if (weak) {
                int64_t x = p;
                for (size_t j = 0; j <= ngaps && rc == 0; j++) {
                    int64_t y = j < ngaps ? gaps[j].from - 1 : q;
                    if (y > q) y = q;
                    if (x <= y) rc = gap_insert(s, agent, x, y, reason, now, err, errlen);
                    if (j < ngaps && gaps[j].to + 1 > x) x = gaps[j].to + 1;
                }
            } else {
                sqlite3_stmt *del = s->st[ST_GAP_DELETE];
                for (size_t j = 0; j < ngaps && rc == 0; j++) {
                    seq_range *g = &gaps[j];
                    sq_bind_text(del, 1, agent);
                    sqlite3_bind_int64(del, 2, g->from);
                    rc = sq_step_done(s->w, del, "gap delete", err, errlen);
                    if (rc == 0 && g->from < p)
                        rc = gap_insert(s, agent, g->from, p - 1, g->reason, g->reported_ms, err,
                                        errlen);
                    if (rc == 0 && g->to > q)
                        rc = gap_insert(s, agent, q + 1, g->to, g->reason, g->reported_ms, err,
                                        errlen);
                }
                if (rc == 0) rc = gap_insert(s, agent, p, q, reason, now, err, errlen);
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
static int gaps_write(co_store *s, const cm_batch *b, int64_t last, uint64_t first, int64_t now,
                      char *err, size_t errlen)
{
    if ((int64_t)first > last + 1 &&
        gap_put(s, b->agent_id, last + 1, (int64_t)first - 1, "missing", 1, now, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < b->ngaps; i++)
        if (gap_put(s, b->agent_id, (int64_t)b->gaps[i].from_seq, (int64_t)b->gaps[i].to_seq,
                    b->gaps[i].reason, 0, now, err, errlen) < 0)
            return -1;
    return 0;
}

static int batch_write(co_store *s, const cm_batch *b, int64_t now, co_batch_result *res, char *err,
                       size_t errlen)
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
    sqlite3_stmt *st = s->st[ST_AGENT_SEQ];
    sq_bind_text(st, 1, b->agent_id);
    int rc = sqlite3_step(st);
    int64_t last = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sq_dberr(s->w, "agent lookup", err, errlen);
    if ((int64_t)b->seq <= last) {
        *res = CO_BATCH_DUPLICATE;
        return 0;
    }
    if ((int64_t)first <= last) { /* partly stored already: the agent must re-batch */
        *res = CO_BATCH_OVERLAP;
        return 0;
    }

    st = s->st[ST_SITE_ADD];
    sq_bind_text(st, 1, b->site);
    sqlite3_bind_int64(st, 2, now);
    if (sq_step_done(s->w, st, "site insert", err, errlen) < 0) return -1;

    s->ntouched = 0;
    int64_t ref;
    for (size_t i = 0; i < b->ndevices; i++) {
        if (!b->devices[i].id) {
            cm_seterr(err, errlen, "devices[%zu]: no id", i);
            return -1;
        }
        if (device_ref(s, b->site, &b->devices[i], b->devices[i].id, now, &ref, err, errlen) < 0)
            return -1;
    }
    for (size_t i = 0; i < b->nseries; i++)
        if (series_write(s, b->site, &b->series[i], now, err, errlen) < 0) return -1;
    for (size_t i = 0; i < b->nevents; i++) {
        const cm_event *e = &b->events[i];
        int have = e->device != NULL;
        if (have && device_ref(s, b->site, NULL, e->device, now, &ref, err, errlen) < 0) return -1;
        st = s->st[ST_EVENT];
        sq_bind_text(st, 1, b->site);
        if (have)
            sqlite3_bind_int64(st, 2, ref);
        else
            sqlite3_bind_null(st, 2);
        sqlite3_bind_int64(st, 3, e->ts_ms);
        sq_bind_text(st, 4, e->severity);
        sq_bind_text(st, 5, e->code);
        sq_bind_text(st, 6, e->text);
        sq_bind_text(st, 7, e->source);
        if (sq_step_done(s->w, st, "event insert", err, errlen) < 0) return -1;
    }
    st = s->st[ST_DEVICE_TOUCH];
    for (size_t i = 0; i < s->ntouched; i++) {
        sqlite3_bind_int64(st, 1, s->touched[i]);
        sqlite3_bind_int64(st, 2, now);
        if (sq_step_done(s->w, st, "device last_seen", err, errlen) < 0) return -1;
    }

    int64_t samples = (int64_t)cm_batch_points(b);
    st = s->st[ST_BATCH_AUDIT];
    sq_bind_text(st, 1, b->agent_id);
    sqlite3_bind_int64(st, 2, (int64_t)first);
    sqlite3_bind_int64(st, 3, (int64_t)b->seq);
    sqlite3_bind_int64(st, 4, samples);
    sqlite3_bind_int64(st, 5, now);
    if (sq_step_done(s->w, st, "batch audit", err, errlen) < 0) return -1;
    if (gaps_write(s, b, last, first, now, err, errlen) < 0) return -1;

    st = s->st[ST_AGENT_UPSERT];
    sq_bind_text(st, 1, b->agent_id);
    sq_bind_text(st, 2, b->site);
    sqlite3_bind_int64(st, 3, (int64_t)b->seq);
    sqlite3_bind_int64(st, 4, now);
    sq_bind_text(st, 5, b->agent_version);
    sqlite3_bind_int64(st, 6, samples);
    if (sq_step_done(s->w, st, "agent update", err, errlen) < 0) return -1;
    *res = CO_BATCH_STORED;
    return 0;
}

/* After a rollback: ids cached during the transaction, chunk tables it created and the
 * points it staged are gone; watermarks are read again. */
static void after_rollback(co_store *s)
{
    if (!sqlite3_get_autocommit(s->w)) sq_step_done(s->w, s->st[ST_ROLLBACK], "rollback", NULL, 0);
    chunks_drop(s);
    co_idmap_clear(&s->devmap);
    co_idmap_clear(&s->sermap);
    acc_clear(s);
    co_head_abort(s->hd);
    co_head_forget_watermarks(s->hd);
}

/* Write the open transaction's day-table row counts and roll-up deltas. */
static int tables_finish(co_store *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->nchunks; i++)
        if (chunk_flush(s, &s->chunks[i], err, errlen) < 0) return -1;
    return rollup_flush(s, err, errlen);
}

/* Commit the open transaction; the staged points join the head in the same step for readers.
 * part: the transaction wrote out the head's part (its series are then emptied); 0 for a
 * batches' commit. 0 or -1 (the transaction is still open: the caller rolls back). */
static int head_commit(co_store *s, int part, char *err, size_t errlen)
{
    co_head_wrlock(s->hd);
    if (co_head_reserve_locked(s->hd) < 0) {
        co_head_unlock(s->hd);
        cm_seterr(err, errlen, "out of memory (head)");
        return -1;
    }
    if (sq_step_done(s->w, s->st[ST_COMMIT], "commit", err, errlen) < 0) {
        co_head_unlock(s->hd);
        return -1;
    }
    if (part)
        co_head_clear_part_locked(s->hd);
    else
        co_head_commit_locked(s->hd);
    co_head_unlock(s->hd);
    return 0;
}

/* One series of the head written out: its samples, roll-ups and latest value (its roll-ups
 * at once, so that the accumulators hold one series, not the whole head). */
static int flush_series(void *ud, int64_t sid, const co_head_point *p, size_t n)
{
    sq_flush_ctx *c = ud;
    for (size_t i = 0; i < n; i++) {
        cm_point pt = {.ts_ms = p[i].ts_ms, .value = p[i].value};
        if (point_put(c->s, sid, &pt, c->err, c->errlen) < 0) return -1;
    }
    if (rollup_flush(c->s, c->err, c->errlen) < 0) return -1;
    return latest_put(c->s, sid, p[n - 1].ts_ms, p[n - 1].value, c->err, c->errlen);
}

/* Delete the head log's records up to id (INT64_MAX: all), in the open transaction if any. */
static int head_log_delete(co_store *s, int64_t id, char *err, size_t errlen)
{
    sqlite3_stmt *st = s->st[ST_HEAD_CLEAR];
    sqlite3_bind_int64(st, 1, id);
    return sq_step_done(s->w, st, "head log", err, errlen);
}

/* The head log's newest record id (0: none) into *id. */
static int head_log_last(co_store *s, int64_t *id, char *err, size_t errlen)
{
    sqlite3_stmt *st = s->st[ST_HEAD_LAST];
    int rc = sqlite3_step(st);
    *id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : sq_dberr(s->w, "head log", err, errlen);
}

/* One part of the write-out, beginning one when none is under way: the next of the series it
 * began with, about max_points points of them, sorted by series and time, in one
 * transaction. The last part also deletes the log records the write-out began with: every
 * point in them was in the head then, and each series has been written out since. (A record
 * written meanwhile may hold points written out already: a replay drops those, head_recover.)
 * Writer lock held. 0, or -1 (the part is rolled back and tried again next time). */
static int head_part(co_store *s, size_t max_points, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    int begin = !s->wo_active, last = 0;
    if (begin) {
        if (!co_head_points(s->hd)) return 0;
        if (head_log_last(s, &s->wo_log_id, err, errlen) < 0) return -1;
        s->wo_started_ms = cm_now_ms();
        s->wo_active = 1;
    }
    sq_flush_ctx c = {s, err, errlen};
    if (sq_step_done(s->w, s->st[ST_BEGIN], "begin", err, errlen) < 0) goto fail;
    if (co_head_each_part(s->hd, begin, max_points, flush_series, &c, &last) != 0) {
        if (err && errlen && !err[0]) cm_seterr(err, errlen, "out of memory (head flush)");
        goto fail;
    }
    if (tables_finish(s, err, errlen) < 0) goto fail;
    if (last && head_log_delete(s, s->wo_log_id, err, errlen) < 0) goto fail;
    if (head_commit(s, 1, err, errlen) < 0) goto fail;
    if (last) {
        s->wo_active = 0;
        s->age_base_ms = s->wo_started_ms;
    }
    return 0;
fail:
    after_rollback(s);
    return -1;
}

/* Write the whole head to the tables (the write-out under way, then the rest) and empty its
 * log. Writer lock held. 0 or -1 (what is not written out stays in the head and its log). */
static int head_flush(co_store *s, char *err, size_t errlen)
{
    while (s->wo_active || co_head_points(s->hd))
        if (head_part(s, SIZE_MAX, err, errlen) < 0) return -1;
    return 0;
}

/* The staged points as one record of the head's log, in the open transaction. */
static int head_log_append(co_store *s, char *err, size_t errlen)
{
    unsigned char *rec;
    size_t len;
    if (co_head_encode(s->hd, &rec, &len) < 0) {
        cm_seterr(err, errlen, "out of memory (head log)");
        return -1;
    }
    sqlite3_stmt *st = s->st[ST_HEAD_LOG];
    sqlite3_bind_blob64(st, 1, rec, len, SQLITE_STATIC);
    int rc = sq_step_done(s->w, st, "head log", err, errlen);
    sqlite3_clear_bindings(st);
    free(rec);
    return rc;
}

/* 1 when a write-out is under way, or the head holds enough points, or old enough ones, to
 * begin one. */
static int head_due(const co_store *s, int64_t now)
{
    if (s->wo_active) return 1;
    int64_t since = co_head_since_ms(s->hd);
    if (since && since < s->age_base_ms) since = s->age_base_ms;
    return co_head_points(s->hd) >= s->head_max_points ||
           (since && now - since >= s->head_max_age_ms);
}

/* After a batches' commit that added `added` points to the head: the next part of the
 * write-out when one is due. A part takes twice what the commit added (so that the write-out
 * outruns the batches, and a commit waits for about twice its own points' worth), at least
 * 1/128 of the head's limit; a head grown to twice its limit is written out whole. */
static void head_step(co_store *s, size_t added, int64_t now)
{
    if (!head_due(s, now)) return;
    size_t part = s->head_max_points / 128 + 1;
    if (added * 2 > part) part = added * 2;
    if (co_head_points(s->hd) >= s->head_max_points * 2) part = SIZE_MAX;
    char err[256];
    /* the batches are committed (in the log) whatever happens here: tried again next time */
    if (head_part(s, part, err, sizeof err) < 0)
        cm_log_limited("head-flush", 60, CM_LOG_ERROR, "store: writing the head out: %s", err);
}

int sqlite_write(co_store *s, cm_batch *const *batches, size_t n, co_batch_result *result,
                 char *err, size_t errlen)
{
    if (!n) return 0;
    pthread_mutex_lock(&s->wmu);
    int64_t now = cm_now_ms();
    if (sq_step_done(s->w, s->st[ST_BEGIN], "begin", err, errlen) < 0) goto fail;
    for (size_t i = 0; i < n; i++)
        if (batch_write(s, batches[i], now, &result[i], err, errlen) < 0) goto fail;
    if (tables_finish(s, err, errlen) < 0) goto fail;
    size_t added = co_head_staged(s->hd);
    if (added && head_log_append(s, err, errlen) < 0) goto fail;
    if (head_commit(s, 0, err, errlen) < 0) goto fail;
    head_step(s, added, now);
    pthread_mutex_unlock(&s->wmu);
    return 0;
fail:
    after_rollback(s);
    pthread_mutex_unlock(&s->wmu);
    return -1;
}

int sqlite_set_head(co_store *s, size_t max_points, int64_t max_age_ms)
{
    pthread_mutex_lock(&s->wmu);
    s->head_max_points = max_points ? max_points : HEAD_MAX_POINTS;
    s->head_max_age_ms = max_age_ms > 0 ? max_age_ms : HEAD_MAX_AGE_MS;
    pthread_mutex_unlock(&s->wmu);
    return 0;
}

int sqlite_maintain(co_store *s, int64_t now_ms, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->wmu);
    /* idle: the write-out due, or under way, to its end */
    int rc = 0;
    if (head_due(s, now_ms)) do
            rc = head_part(s, s->head_max_points / 16 + 1, err, errlen);
        while (rc == 0 && s->wo_active);
    pthread_mutex_unlock(&s->wmu);
    return rc;
}

co_head *sqlite_head(co_store *s)
{
    return s->hd;
}

int sqlite_wal_stats(co_store *s, co_walckpt_stats *out)
{
    if (!s->ckpt) return 1;
    co_walckpt_get_stats(s->ckpt, out);
    return 0;
}

int sqlite_flush(co_store *s, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->wmu);
    int rc = head_flush(s, err, errlen);
    pthread_mutex_unlock(&s->wmu);
    return rc;
}

/* co_head_filter_staged: keep a replayed point unless the tables hold its series up to it (a
 * write-out's part wrote it before the log record holding it was deleted). */
static int replay_keep(void *ud, int64_t sid, int64_t ts_ms)
{
    sq_flush_ctx *c = ud;
    int64_t wm;
    if (watermark(c->s, sid, &wm, c->err, c->errlen) < 0) return -1;
    return ts_ms > wm;
}

/* At open: the log's records back into the head (they were committed; those of their points
 * not written out yet are kept), then written out. A record that cannot be read stops the
 * open: it is data. */
static int head_recover(co_store *s, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sq_prepare(s->w, "SELECT id, data FROM head_log ORDER BY id", &st, err, errlen) < 0)
        return -1;
    int rc;
    char why[160];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (co_head_replay(s->hd, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                           why, sizeof why) < 0) {
            cm_seterr(err, errlen, "%s: head_log row %lld: %s", s->path,
                      (long long)sqlite3_column_int64(st, 0), why);
            sqlite3_finalize(st);
            co_head_abort(s->hd);
            return -1;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        co_head_abort(s->hd);
        return sq_dberr(s->w, "head log", err, errlen);
    }
    sq_flush_ctx kc = {s, err, errlen};
    if (co_head_filter_staged(s->hd, replay_keep, &kc) < 0) {
        co_head_abort(s->hd);
        return -1;
    }
    co_head_wrlock(s->hd);
    rc = co_head_reserve_locked(s->hd);
    if (rc == 0) co_head_commit_locked(s->hd);
    co_head_unlock(s->hd);
    if (rc < 0) {
        co_head_abort(s->hd);
        cm_seterr(err, errlen, "out of memory (head)");
        return -1;
    }
    if (head_flush(s, err, errlen) < 0) return -1;
    /* records whose points were all in the tables already: no write-out deleted them */
    return head_log_delete(s, INT64_MAX, err, errlen);
}

/* ---------------------------------------------------------------- tokens */

int sqlite_token_add(co_store *s, const char *hash_hex, const char *agent_id, const char *site,
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
    pthread_mutex_lock(&s->wmu);
    sqlite3_stmt *st = s->st[ST_TOKEN_ADD];
    sq_bind_text(st, 1, hash_hex);
    sq_bind_text(st, 2, agent_id);
    sq_bind_text(st, 3, site);
    sqlite3_bind_int64(st, 4, cm_now_ms());
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        cm_seterr(err, errlen, "token already exists");
    else if (rc != SQLITE_DONE)
        sq_dberr(s->w, "token add", err, errlen);
    pthread_mutex_unlock(&s->wmu);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int copy_col(sqlite3_stmt *st, int i, char *dst, size_t len)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (!t || n >= len) return -1;
    memcpy(dst, t, n);
    dst[n] = '\0';
    return 0;
}

/* One row (a, b) of sql keyed by a token hash: 1 found, 0 unknown (or not a hash), -1 error. */
static int hash_lookup(co_store *s, const char *what, const char *sql, const char *hash_hex,
                       char *a, size_t alen, char *b, size_t blen, char *err, size_t errlen)
{
    if (!co_valid_hash(hash_hex)) return 0;
    sqlite3 *db = reader_get(s, err, errlen);
    if (!db) return -1;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        sq_dberr(db, what, err, errlen);
        goto out;
    }
    sq_bind_text(st, 1, hash_hex);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        ret = 0;
    } else if (rc == SQLITE_ROW) {
        if (copy_col(st, 0, a, alen) < 0 || copy_col(st, 1, b, blen) < 0)
            cm_seterr(err, errlen, "%s: a value is longer than the buffer", what);
        else
            ret = 1;
    } else {
        sq_dberr(db, what, err, errlen);
    }
out:
    sqlite3_finalize(st);
    reader_put(s, db);
    return ret;
}

int sqlite_token_lookup(co_store *s, const char *hash_hex, char *agent_id, size_t agent_len,
                        char *site, size_t site_len, char *err, size_t errlen)
{
    return hash_lookup(s, "token lookup", "SELECT agent_id, site FROM tokens WHERE hash = ?1",
                       hash_hex, agent_id, agent_len, site, site_len, err, errlen);
}

/* ---------------------------------------------------------------- queries */

/* A query runs on a pooled reader inside one read transaction (one consistent snapshot). */

int sq_q_begin(sq_query *q, co_store *s, char *err, size_t errlen)
{
    *q = (sq_query){s, NULL, err, errlen, NULL};
    if (!(q->db = reader_get(s, err, errlen))) return -1;
    if (sq_exec_sql(q->db, "BEGIN", err, errlen) < 0) {
        reader_put(s, q->db);
        return -1;
    }
    return 0;
}

int sq_q_begin_head(sq_query *q, co_store *s, char *err, size_t errlen)
{
    co_head_rdlock(s->hd); /* before BEGIN: the snapshot is taken by the first read */
    if (sq_q_begin(q, s, err, errlen) < 0) {
        co_head_unlock(s->hd);
        return -1;
    }
    q->head = s->hd;
    return 0;
}

int sq_latest_of(const sq_query *q, int64_t sid, int has_row, int64_t row_ts, double row_v,
                 int64_t *ts, double *v)
{
    if (q->head && co_head_latest(q->head, sid, ts, v)) return 1;
    if (!has_row) return 0;
    *ts = row_ts;
    *v = row_v;
    return 1;
}

sqlite3 *sq_writer_lock(co_store *s)
{
    pthread_mutex_lock(&s->wmu);
    return s->w;
}

void sq_writer_unlock(co_store *s)
{
    pthread_mutex_unlock(&s->wmu);
}

void sq_q_end(sq_query *q)
{
    reader_put(q->s, q->db); /* rolls the read transaction back */
    if (q->head) co_head_unlock(q->head);
    q->head = NULL;
}

sqlite3_stmt *sq_q_prepare(sq_query *q, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
        sq_dberr(q->db, "query", q->err, q->errlen);
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

json_t *sq_col_json_str(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t) return json_null();
    json_t *j = json_stringn((const char *)t, (size_t)sqlite3_column_bytes(st, i));
    return j ? j : json_null();
}

json_t *sq_col_json_int(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) return json_null();
    return json_integer(sqlite3_column_int64(st, i));
}

static json_t *col_json_labels(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    json_t *j =
        t ? json_loadb((const char *)t, (size_t)sqlite3_column_bytes(st, i), 0, NULL) : NULL;
    if (j && json_is_object(j)) return j;
    json_decref(j);
    return json_object();
}

/* Step st to the end, appending one object per row built by row(); NULL with err on error. */
json_t *sq_q_rows(sq_query *q, sqlite3_stmt *st, json_t *(*row)(sqlite3_stmt *))
{
    json_t *arr = json_array();
    int rc;
    while (arr && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = row(st);
        if (!o || json_array_append_new(arr, o) < 0) {
            cm_seterr(q->err, q->errlen, "out of memory");
            json_decref(arr);
            return NULL;
        }
    }
    if (!arr) {
        cm_seterr(q->err, q->errlen, "out of memory");
        return NULL;
    }
    if (rc != SQLITE_DONE) {
        sq_dberr(q->db, "query", q->err, q->errlen);
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *site_row(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:I, s:o}", "code", sq_col_json_str(st, 0), "name",
                     sq_col_json_str(st, 1), "province", sq_col_json_str(st, 2), "city",
                     sq_col_json_str(st, 3), "chain", sq_col_json_str(st, 6), "devices",
                     (json_int_t)sqlite3_column_int64(st, 4), "last_seen_ms",
                     sq_col_json_int(st, 5));
}

json_t *sqlite_sites(co_store *s, const co_scope *sc, char *err, size_t errlen)
{
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return NULL;
    json_t *res = NULL;
    sqlite3_stmt *st = sq_q_prepare(
        &q, "SELECT code, name, province, city,"
            " (SELECT count(*) FROM devices d WHERE d.site = s.code),"
            " (SELECT max(t) FROM (SELECT last_seen_ms AS t FROM devices d WHERE d.site = s.code"
            "  UNION ALL SELECT last_seen_ms FROM agents a WHERE a.site = s.code) x), chain"
            " FROM sites s WHERE " CO_SCOPE_SQL("s.code", "?1", "?2") " ORDER BY code");
    if (st) {
        sq_bind_scope(st, 1, 2, sc);
        res = sq_q_rows(&q, st, site_row);
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return res;
}

static json_t *device_row(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "site",
                     sq_col_json_str(st, 0), "id", sq_col_json_str(st, 1), "screen",
                     sq_col_json_str(st, 2), "kind", sq_col_json_str(st, 3), "vendor",
                     sq_col_json_str(st, 4), "model", sq_col_json_str(st, 5), "serial",
                     sq_col_json_str(st, 6), "firmware", sq_col_json_str(st, 7), "profile",
                     sq_col_json_str(st, 8), "first_seen_ms", sq_col_json_int(st, 9),
                     "last_seen_ms", sq_col_json_int(st, 10));
}

json_t *sqlite_devices(co_store *s, const char *site, const co_scope *sc, char *err, size_t errlen)
{
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return NULL;
    json_t *res = NULL;
#define DEVICE_COLS                                                                                \
    "SELECT site, device_id, screen, kind, vendor, model, serial, firmware, profile,"              \
    " first_seen_ms, last_seen_ms FROM devices"
    /* two statements, so that one site's listing searches the (site, device_id) index */
#define DEVICE_SCOPE " AND " CO_SCOPE_SQL("site", "?2", "?3")
    sqlite3_stmt *st = sq_q_prepare(
        &q, site ? DEVICE_COLS " WHERE site = ?1" DEVICE_SCOPE " ORDER BY device_id"
                 : DEVICE_COLS " WHERE ?1 IS NULL" DEVICE_SCOPE " ORDER BY site, device_id");
#undef DEVICE_SCOPE
#undef DEVICE_COLS
    if (st) {
        sq_bind_text(st, 1, site);
        sq_bind_scope(st, 2, 3, sc);
        res = sq_q_rows(&q, st, device_row);
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return res;
}

int sqlite_last_seq(co_store *s, const char *agent, uint64_t *last_seq, char *err, size_t errlen)
{
    *last_seq = 0;
    if (!agent) {
        cm_seterr(err, errlen, "last_seq: an agent is required");
        return -1;
    }
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return -1;
    int ret = -1;
    sqlite3_stmt *st = sq_q_prepare(&q, "SELECT last_seq FROM agents WHERE id = ?1");
    if (st) {
        sq_bind_text(st, 1, agent);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            int64_t v = sqlite3_column_int64(st, 0);
            *last_seq = v > 0 ? (uint64_t)v : 0;
            ret = 1;
        } else if (rc == SQLITE_DONE) {
            ret = 0;
        } else {
            sq_dberr(q.db, "last_seq", err, errlen);
        }
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return ret;
}

static json_t *agent_row(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:o, s:o, s:I, s:I, s:I, s:I}", "id", sq_col_json_str(st, 0), "site",
                     sq_col_json_str(st, 1), "version", sq_col_json_str(st, 2), "last_seq",
                     (json_int_t)sqlite3_column_int64(st, 3), "last_seen_ms",
                     (json_int_t)sqlite3_column_int64(st, 4), "batches",
                     (json_int_t)sqlite3_column_int64(st, 5), "samples",
                     (json_int_t)sqlite3_column_int64(st, 6));
}

json_t *sqlite_agents(co_store *s, const co_scope *sc, char *err, size_t errlen)
{
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return NULL;
    json_t *res = NULL;
    sqlite3_stmt *st = sq_q_prepare(
        &q, "SELECT id, site, version, last_seq, last_seen_ms, batches,"
            " samples FROM agents WHERE " CO_SCOPE_SQL("site", "?1", "?2") " ORDER BY id");
    if (st) {
        sq_bind_scope(st, 1, 2, sc);
        res = sq_q_rows(&q, st, agent_row);
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return res;
}

static json_t *gap_row(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:I, s:I, s:o, s:I}", "agent", sq_col_json_str(st, 0), "from_seq",
                     (json_int_t)sqlite3_column_int64(st, 1), "to_seq",
                     (json_int_t)sqlite3_column_int64(st, 2), "reason", sq_col_json_str(st, 3),
                     "reported_ms", (json_int_t)sqlite3_column_int64(st, 4));
}

json_t *sqlite_gaps(co_store *s, const char *agent, const co_scope *sc, char *err, size_t errlen)
{
    if (!agent) {
        cm_seterr(err, errlen, "gaps: an agent is required");
        return NULL;
    }
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return NULL;
    json_t *res = NULL;
    /* a limited caller sees the gaps of an agent of a site within its scope only */
    sqlite3_stmt *st = sq_q_prepare(
        &q, "SELECT agent_id, from_seq, to_seq, reason, reported_ms FROM gaps WHERE agent_id = ?1"
            " AND (?2 = 0 OR EXISTS(SELECT 1 FROM agents a WHERE a.id = ?1 AND " CO_SCOPE_SQL(
                "a.site", "?2", "?3") ")) ORDER BY from_seq");
    if (st) {
        sq_bind_text(st, 1, agent);
        sq_bind_scope(st, 2, 3, sc);
        res = sq_q_rows(&q, st, gap_row);
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return res;
}

int sqlite_ping(co_store *s, char *err, size_t errlen)
{
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return -1;
    sqlite3_stmt *st = sq_q_prepare(&q, "SELECT 1 FROM agents LIMIT 1");
    int rc = -1;
    if (st) {
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW || r == SQLITE_DONE)
            rc = 0;
        else
            sq_dberr(q.db, "ping", err, errlen);
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return rc;
}

/* ---------------------------------------------------------------- sites, screens, operators */

int sqlite_site_in_scope(co_store *s, const char *site, const co_scope *sc, char *err,
                         size_t errlen)
{
    if (!site) {
        cm_seterr(err, errlen, "site in scope: a site is required");
        return -1;
    }
    if (co_scope_is_all(sc)) return 1;
    if (sc->kind == CO_SCOPE_SITE) return strcmp(sc->value, site) == 0;
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return -1;
    int ret = -1;
    sqlite3_stmt *st =
        sq_q_prepare(&q, "SELECT 1 WHERE ?1 IS NOT NULL AND " CO_SCOPE_SQL("?1", "?2", "?3"));
    if (st) {
        sq_bind_text(st, 1, site);
        sq_bind_scope(st, 2, 3, sc);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            ret = 1;
        else if (rc == SQLITE_DONE)
            ret = 0;
        else
            sq_dberr(q.db, "site in scope", err, errlen);
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return ret;
}

int co_screen_class_valid(const char *c)
{
    return c && (!strcmp(c, "theatre") || !strcmp(c, "review"));
}

int co_screen_display_valid(const char *d)
{
    return d && (!strcmp(d, "projection") || !strcmp(d, "led"));
}

/* Run one prepared write on the writer connection (caller holds wmu). */
static int check_screen(const co_screen *sc, size_t i, char *err, size_t errlen)
{
    if (!sc->site || !*sc->site || !sc->screen || !*sc->screen) {
        cm_seterr(err, errlen, "screens[%zu]: a site and a screen are required", i);
        return -1;
    }
    if (sc->class_ && !co_screen_class_valid(sc->class_)) {
        cm_seterr(err, errlen, "screens[%zu].class: '%s' is not theatre or review", i, sc->class_);
        return -1;
    }
    if (sc->display && !co_screen_display_valid(sc->display)) {
        cm_seterr(err, errlen, "screens[%zu].display: '%s' is not projection or led", i,
                  sc->display);
        return -1;
    }
    return 0;
}

int sqlite_import(co_store *s, const co_site *sites, size_t nsites, const co_screen *screens,
                  size_t nscreens, const char *by, char *err, size_t errlen)
{
    for (size_t i = 0; i < nsites; i++)
        if (!sites[i].code || !*sites[i].code) {
            cm_seterr(err, errlen, "sites[%zu]: a code is required", i);
            return -1;
        }
    for (size_t i = 0; i < nscreens; i++)
        if (check_screen(&screens[i], i, err, errlen) < 0) return -1;
    int64_t now = cm_now_ms();
    sqlite3_stmt *site_st = NULL, *scr_st = NULL;
    int rc = -1;
    pthread_mutex_lock(&s->wmu);
    if (sq_exec_sql(s->w, "BEGIN IMMEDIATE", err, errlen) < 0) goto unlock;
    /* A NULL field keeps what is stored (COALESCE), so a partial update changes only what it
     * names; a new row gets the defaults. */
    if (sq_prepare(s->w,
                   "INSERT INTO sites(code, name, province, city, created_ms, chain)"
                   " VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
                   " ON CONFLICT(code) DO UPDATE SET name = COALESCE(?2, name),"
                   " province = COALESCE(?3, province), city = COALESCE(?4, city),"
                   " chain = COALESCE(?6, chain)",
                   &site_st, err, errlen) < 0 ||
        sq_prepare(s->w,
                   "INSERT INTO screens(site, screen, name, class, display, format, spl_ref,"
                   " updated_ms, updated_by) VALUES(?1, ?2, ?3, COALESCE(?4, 'theatre'),"
                   " COALESCE(?5, 'projection'), ?6, COALESCE(?7, '{}'), ?8, ?9)"
                   " ON CONFLICT(site, screen) DO UPDATE SET name = COALESCE(?3, name),"
                   " class = COALESCE(?4, class), display = COALESCE(?5, display),"
                   " format = COALESCE(?6, format), spl_ref = COALESCE(?7, spl_ref),"
                   " updated_ms = ?8, updated_by = ?9",
                   &scr_st, err, errlen) < 0)
        goto rollback;
    for (size_t i = 0; i < nsites; i++) {
        sq_bind_text(site_st, 1, sites[i].code);
        sq_bind_text(site_st, 2, sites[i].name);
        sq_bind_text(site_st, 3, sites[i].province);
        sq_bind_text(site_st, 4, sites[i].city);
        sqlite3_bind_int64(site_st, 5, now);
        sq_bind_text(site_st, 6, sites[i].chain);
        if (sq_step_done(s->w, site_st, "site upsert", err, errlen) < 0) goto rollback;
    }
    for (size_t i = 0; i < nscreens; i++) {
        const co_screen *sc = &screens[i];
        /* the screen's site exists even when the import names only screens */
        sq_bind_text(site_st, 1, sc->site);
        for (int k = 2; k <= 6; k++)
            sqlite3_bind_null(site_st, k);
        sqlite3_bind_int64(site_st, 5, now);
        if (sq_step_done(s->w, site_st, "site upsert", err, errlen) < 0) goto rollback;
        sq_bind_text(scr_st, 1, sc->site);
        sq_bind_text(scr_st, 2, sc->screen);
        sq_bind_text(scr_st, 3, sc->name);
        sq_bind_text(scr_st, 4, sc->class_);
        sq_bind_text(scr_st, 5, sc->display);
        sq_bind_text(scr_st, 6, sc->format);
        sq_bind_text(scr_st, 7, sc->spl_ref_json);
        sqlite3_bind_int64(scr_st, 8, now);
        sq_bind_text(scr_st, 9, by);
        if (sq_step_done(s->w, scr_st, "screen upsert", err, errlen) < 0) goto rollback;
    }
    if (sq_exec_sql(s->w, "COMMIT", err, errlen) < 0) goto rollback;
    rc = 0;
    goto unlock;
rollback:
    sq_exec_sql(s->w, "ROLLBACK", NULL, 0);
unlock:
    sqlite3_finalize(site_st);
    sqlite3_finalize(scr_st);
    pthread_mutex_unlock(&s->wmu);
    return rc;
}

static json_t *screen_row(sqlite3_stmt *st)
{
    json_t *spl = NULL;
    const unsigned char *t = sqlite3_column_text(st, 6);
    if (t) spl = json_loads((const char *)t, 0, NULL);
    if (!json_is_object(spl)) {
        json_decref(spl);
        spl = json_object();
    }
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o}", "site",
                     sq_col_json_str(st, 0), "screen", sq_col_json_str(st, 1), "name",
                     sq_col_json_str(st, 2), "class", sq_col_json_str(st, 3), "display",
                     sq_col_json_str(st, 4), "format", sq_col_json_str(st, 5), "spl_ref", spl,
                     "devices", sq_col_json_int(st, 9), "updated_ms",
                     (json_int_t)sqlite3_column_int64(st, 7), "updated_by", sq_col_json_str(st, 8));
}

json_t *sqlite_screens(co_store *s, const char *site, const char *screen, const co_scope *sc,
                       char *err, size_t errlen)
{
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return NULL;
    json_t *res = NULL;
    sqlite3_stmt *st = sq_q_prepare(
        &q, "SELECT c.site, c.screen, c.name, c.class, c.display, c.format, c.spl_ref,"
            " c.updated_ms, c.updated_by,"
            " (SELECT count(*) FROM devices d WHERE d.site = c.site AND d.screen = c.screen)"
            " FROM screens c WHERE (?1 IS NULL OR c.site = ?1) AND (?2 IS NULL OR c.screen = ?2)"
            " AND " CO_SCOPE_SQL("c.site", "?3", "?4") " ORDER BY c.site, c.screen");
    if (st) {
        sq_bind_text(st, 1, site);
        sq_bind_text(st, 2, screen);
        sq_bind_scope(st, 3, 4, sc);
        res = sq_q_rows(&q, st, screen_row);
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return res;
}

int sqlite_operator_add(co_store *s, const char *hash_hex, const char *name, const char *site,
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
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&s->wmu);
    if (sq_prepare(s->w, "INSERT INTO operators(hash, name, site, created_ms) VALUES(?1,?2,?3,?4)",
                   &st, err, errlen) == 0) {
        sq_bind_text(st, 1, hash_hex);
        sq_bind_text(st, 2, name);
        sq_bind_text(st, 3, site);
        sqlite3_bind_int64(st, 4, cm_now_ms());
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE)
            rc = 0;
        else if (r == SQLITE_CONSTRAINT_PRIMARYKEY)
            cm_seterr(err, errlen, "token already exists");
        else
            sq_dberr(s->w, "operator add", err, errlen);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->wmu);
    return rc;
}

int sqlite_operator_lookup(co_store *s, const char *hash_hex, char *name, size_t name_len,
                           char *site, size_t site_len, char *err, size_t errlen)
{
    return hash_lookup(s, "operator lookup", "SELECT name, site FROM operators WHERE hash = ?1",
                       hash_hex, name, name_len, site, site_len, err, errlen);
}

static json_t *event_row(sqlite3_stmt *st)
{
    return json_pack(
        "{s:I, s:o, s:o, s:I, s:o, s:o, s:o, s:o}", "id", (json_int_t)sqlite3_column_int64(st, 0),
        "site", sq_col_json_str(st, 1), "device", sq_col_json_str(st, 2), "ts_ms",
        (json_int_t)sqlite3_column_int64(st, 3), "severity", sq_col_json_str(st, 4), "code",
        sq_col_json_str(st, 5), "text", sq_col_json_str(st, 6), "source", sq_col_json_str(st, 7));
}

/* Rank of a severity for filtering: info 0, warning 1, critical 2. */
static int severity_rank(const char *sev)
{
    if (!sev) return 0;
    if (!strcmp(sev, "critical")) return 2;
    return !strcmp(sev, "warning");
}

json_t *sqlite_events(co_store *s, const char *site, const char *device, const char *min_severity,
                      const co_range *r, const co_scope *sc, char *err, size_t errlen)
{
    if (!r) {
        cm_seterr(err, errlen, "events: a range is required");
        return NULL;
    }
    sq_query q;
    if (sq_q_begin(&q, s, err, errlen) < 0) return NULL;
    json_t *res = NULL;
    sqlite3_stmt *st = sq_q_prepare(
        &q,
        "SELECT e.id, e.site, d.device_id, e.ts_ms, e.severity, e.code, e.text, e.source"
        " FROM events e LEFT JOIN devices d ON d.id = e.device_ref"
        " WHERE e.ts_ms BETWEEN ?3 AND ?4 AND (?1 IS NULL OR e.site = ?1)"
        " AND (?2 IS NULL OR d.device_id = ?2)"
        " AND (CASE e.severity WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 ELSE 0 END) >= ?5"
        " AND " CO_SCOPE_SQL("e.site", "?7", "?8") " ORDER BY e.ts_ms DESC, e.id DESC LIMIT ?6");
    if (st) {
        sq_bind_text(st, 1, site);
        sq_bind_text(st, 2, device);
        sqlite3_bind_int64(st, 3, r->from_ms);
        sqlite3_bind_int64(st, 4, r->to_ms);
        sqlite3_bind_int(st, 5, severity_rank(min_severity));
        sqlite3_bind_int64(st, 6, (sqlite3_int64)r->limit);
        sq_bind_scope(st, 7, 8, sc);
        res = sq_q_rows(&q, st, event_row);
    }
    sqlite3_finalize(st);
    sq_q_end(&q);
    return res;
}

static json_t *latest_row(sqlite3_stmt *st, int64_t ts, double v)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:I, s:f}", "site", sq_col_json_str(st, 0),
                     "device", sq_col_json_str(st, 1), "metric", sq_col_json_str(st, 2), "labels",
                     col_json_labels(st, 3), "unit", sq_col_json_str(st, 4), "ts_ms",
                     (json_int_t)ts, "value", v);
}

json_t *sqlite_latest(co_store *s, const char *site, const char *device, const char *metric,
                      const co_scope *sc, char *err, size_t errlen)
{
    if (!device) {
        cm_seterr(err, errlen, "latest: a device is required");
        return NULL;
    }
    sq_query q;
    if (sq_q_begin_head(&q, s, err, errlen) < 0) return NULL;
    json_t *res = NULL;
    sqlite3_stmt *st = sq_q_prepare(
        &q, "SELECT d.site, d.device_id, r.metric, r.labels, r.unit, l.ts_ms, l.value, r.id"
            " FROM devices d JOIN series r ON r.device_ref = d.id"
            " LEFT JOIN latest l ON l.series_id = r.id"
            " WHERE d.device_id = ?2 AND (?1 IS NULL OR d.site = ?1) AND (?3 IS NULL OR r.metric = "
            "?3) AND " CO_SCOPE_SQL("d.site", "?4", "?5") " ORDER BY d.site, r.metric, r.labels");
    if (!st) goto out;
    sq_bind_text(st, 1, site);
    sq_bind_text(st, 2, device);
    sq_bind_text(st, 3, metric);
    sq_bind_scope(st, 4, 5, sc);
    if (!(res = json_array())) goto oom;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t ts;
        double v;
        /* a series with no point yet anywhere is not listed */
        if (!sq_latest_of(&q, sqlite3_column_int64(st, 7),
                          sqlite3_column_type(st, 5) != SQLITE_NULL, sqlite3_column_int64(st, 5),
                          sqlite3_column_double(st, 6), &ts, &v))
            continue;
        if (json_array_append_new(res, latest_row(st, ts, v)) < 0) goto oom;
    }
    if (rc != SQLITE_DONE) {
        sq_dberr(q.db, "latest", err, errlen);
        json_decref(res);
        res = NULL;
    }
    goto out;
oom:
    cm_seterr(err, errlen, "out of memory");
    json_decref(res);
    res = NULL;
out:
    sqlite3_finalize(st);
    sq_q_end(&q);
    return res;
}

/* Points of one series collected newest first while walking the chunks backwards. */
typedef struct qseries {
    int64_t id;
    json_t *obj;
    cm_point *pts;
    size_t n, cap;
} qseries;

static json_t *series_row(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o}", "site", sq_col_json_str(st, 1), "device",
                     sq_col_json_str(st, 2), "metric", sq_col_json_str(st, 3), "labels",
                     col_json_labels(st, 4), "unit", sq_col_json_str(st, 5));
}

static int qseries_push(qseries *qs, int64_t ts, double v)
{
    if (qs->n == qs->cap) {
        size_t ncap = qs->cap ? qs->cap * 2 : 256;
        cm_point *p = realloc(qs->pts, ncap * sizeof *p);
        if (!p) return -1;
        qs->pts = p;
        qs->cap = ncap;
    }
    qs->pts[qs->n++] = (cm_point){ts, v};
    return 0;
}

/* Walk the day chunks overlapping [from, to] newest first, filling each series' points. */
static int series_points(sq_query *q, qseries *qs, size_t nqs, const co_range *r)
{
    int64_t from = r->from_ms < TS_MIN_MS ? TS_MIN_MS : r->from_ms;
    int64_t to = r->to_ms > TS_MAX_MS ? TS_MAX_MS : r->to_ms;
    if (from > to || !nqs) return 0;
    sqlite3_stmt *days =
        sq_q_prepare(q, "SELECT day FROM chunks WHERE day BETWEEN ?1 AND ?2 ORDER BY day DESC");
    if (!days) return -1;
    sqlite3_bind_int64(days, 1, co_floor_div(from, DAY_MS));
    sqlite3_bind_int64(days, 2, co_floor_div(to, DAY_MS));
    int ret = 0, rc;
    while (ret == 0 && (rc = sqlite3_step(days)) == SQLITE_ROW) {
        char name[48], sql[256];
        chunk_name(sqlite3_column_int64(days, 0), name, sizeof name);
        snprintf(sql, sizeof sql,
                 "SELECT ts_ms, value FROM %s WHERE series_id = ?1 AND ts_ms BETWEEN ?2 AND ?3"
                 " ORDER BY ts_ms DESC LIMIT ?4",
                 name);
        sqlite3_stmt *st = sq_q_prepare(q, sql);
        if (!st) {
            ret = -1;
            break;
        }
        for (size_t i = 0; i < nqs && ret == 0; i++) {
            if (r->limit && qs[i].n >= r->limit) continue;
            sqlite3_bind_int64(st, 1, qs[i].id);
            sqlite3_bind_int64(st, 2, from);
            sqlite3_bind_int64(st, 3, to);
            sqlite3_bind_int64(st, 4, r->limit ? (int64_t)(r->limit - qs[i].n) : -1);
            while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                if (qseries_push(&qs[i], sqlite3_column_int64(st, 0),
                                 sqlite3_column_double(st, 1)) < 0) {
                    cm_seterr(q->err, q->errlen, "out of memory");
                    ret = -1;
                    break;
                }
            if (ret == 0 && rc != SQLITE_DONE) ret = sq_dberr(q->db, name, q->err, q->errlen);
            sqlite3_reset(st);
        }
        sqlite3_finalize(st);
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = sq_dberr(q->db, "chunks", q->err, q->errlen);
    sqlite3_finalize(days);
    return ret;
}

json_t *sqlite_series(co_store *s, const char *site, const char *device, const char *metric,
                      const co_range *r, const co_scope *sc, char *err, size_t errlen)
{
    if (!device || !r) {
        cm_seterr(err, errlen, "series: a device and a range are required");
        return NULL;
    }
    sq_query q;
    if (sq_q_begin_head(&q, s, err, errlen) < 0) return NULL;
    json_t *res = NULL;
    qseries *qs = NULL;
    size_t nqs = 0, cap = 0;
    co_head_buf hb = {0};
    sqlite3_stmt *st = sq_q_prepare(
        &q,
        "SELECT r.id, d.site, d.device_id, r.metric, r.labels, r.unit"
        " FROM devices d JOIN series r ON r.device_ref = d.id"
        " WHERE d.device_id = ?2 AND (?1 IS NULL OR d.site = ?1) AND (?3 IS NULL OR r.metric = ?3)"
        " AND " CO_SCOPE_SQL("d.site", "?4", "?5") " ORDER BY d.site, r.metric, r.labels");
    if (!st) goto out;
    sq_bind_text(st, 1, site);
    sq_bind_text(st, 2, device);
    sq_bind_text(st, 3, metric);
    sq_bind_scope(st, 4, 5, sc);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (nqs == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            qseries *n = realloc(qs, ncap * sizeof *n);
            if (!n) goto oom;
            qs = n;
            cap = ncap;
        }
        qseries *x = &qs[nqs];
        *x = (qseries){.id = sqlite3_column_int64(st, 0), .obj = series_row(st)};
        if (!x->obj) goto oom;
        nqs++;
    }
    if (rc != SQLITE_DONE) {
        sq_dberr(q.db, "series", err, errlen);
        goto out;
    }
    if (r->step_ms) { /* roll-ups: [bucket, avg, min, max, count] */
        if (!(res = json_array())) goto oom;
        co_buckets bk = {0};
        const char *sql =
            r->step_ms == HOUR_MS
                ? "SELECT bucket_ms, sum, min, max, n FROM rollup_1h WHERE series_id = ?1"
                  " AND bucket_ms BETWEEN ?2 AND ?3 ORDER BY bucket_ms DESC LIMIT ?4"
                : "SELECT bucket_ms, sum, min, max, n FROM rollup_1m WHERE series_id = ?1"
                  " AND bucket_ms BETWEEN ?2 AND ?3 ORDER BY bucket_ms DESC LIMIT ?4";
        sqlite3_stmt *rs = sq_q_prepare(&q, sql);
        if (!rs) {
            json_decref(res);
            res = NULL;
            goto out;
        }
        /* clamp first: rounding INT64_MIN down would overflow */
        int64_t from = r->from_ms < TS_MIN_MS ? TS_MIN_MS : r->from_ms;
        from = co_floor_div(from, r->step_ms) * r->step_ms;
        int64_t to = r->to_ms > TS_MAX_MS ? TS_MAX_MS : r->to_ms;
        for (size_t i = 0; i < nqs; i++) {
            json_t *pts = json_array();
            if (!pts || json_object_set_new(qs[i].obj, "points", pts) < 0) goto oom_rs;
            json_object_set_new(qs[i].obj, "step_ms", json_integer(r->step_ms));
            /* the tables' buckets newest first (the limit keeps the newest), then the head's */
            bk.n = 0;
            sqlite3_reset(rs);
            sqlite3_bind_int64(rs, 1, qs[i].id);
            sqlite3_bind_int64(rs, 2, from);
            sqlite3_bind_int64(rs, 3, r->to_ms);
            sqlite3_bind_int64(rs, 4, r->limit ? (int64_t)r->limit : -1);
            while ((rc = sqlite3_step(rs)) == SQLITE_ROW)
                if (co_buckets_push(&bk, sqlite3_column_int64(rs, 0), sqlite3_column_int64(rs, 4),
                                    sqlite3_column_double(rs, 1), sqlite3_column_double(rs, 2),
                                    sqlite3_column_double(rs, 3)) < 0)
                    goto oom_rs;
            if (rc != SQLITE_DONE) {
                sq_dberr(q.db, "roll-ups", err, errlen);
                sqlite3_finalize(rs);
                co_buckets_free(&bk);
                json_decref(res);
                res = NULL;
                goto out;
            }
            if (co_head_range(q.head, qs[i].id, from,
                              co_floor_div(to, r->step_ms) * r->step_ms + r->step_ms - 1,
                              &hb) < 0 ||
                co_buckets_add_points(&bk, hb.p, hb.n, r->step_ms, r->limit) < 0 ||
                co_buckets_json(&bk, pts) < 0)
                goto oom_rs;
            if (json_array_append(res, qs[i].obj) < 0) goto oom_rs;
        }
        sqlite3_finalize(rs);
        co_buckets_free(&bk);
        goto out;
    oom_rs:
        sqlite3_finalize(rs);
        co_buckets_free(&bk);
        goto oom;
    }
    /* the head's points first: newer than any in the tables */
    {
        int64_t from = r->from_ms < TS_MIN_MS ? TS_MIN_MS : r->from_ms;
        int64_t to = r->to_ms > TS_MAX_MS ? TS_MAX_MS : r->to_ms;
        for (size_t i = 0; i < nqs; i++) {
            if (co_head_range(q.head, qs[i].id, from, to, &hb) < 0) goto oom;
            for (size_t j = hb.n; j-- > 0 && !(r->limit && qs[i].n >= r->limit);)
                if (qseries_push(&qs[i], hb.p[j].ts_ms, hb.p[j].value) < 0) goto oom;
        }
    }
    if (series_points(&q, qs, nqs, r) < 0) goto out;
    if (!(res = json_array())) goto oom;
    for (size_t i = 0; i < nqs; i++) {
        json_t *pts = json_array();
        if (!pts || json_object_set_new(qs[i].obj, "points", pts) < 0) goto oom;
        for (size_t j = qs[i].n; j-- > 0;)
            if (json_array_append_new(pts, json_pack("[I, f]", (json_int_t)qs[i].pts[j].ts_ms,
                                                     qs[i].pts[j].value)) < 0)
                goto oom;
        if (json_array_append(res, qs[i].obj) < 0) goto oom;
    }
    goto out;
oom:
    cm_seterr(err, errlen, "out of memory");
    json_decref(res);
    res = NULL;
out:
    for (size_t i = 0; i < nqs; i++) {
        json_decref(qs[i].obj);
        free(qs[i].pts);
    }
    free(qs);
    sqlite3_finalize(st);
    sq_q_end(&q);
    co_head_buf_free(&hb);
    return res;
}

static int q_int(sq_query *q, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = sq_q_prepare(q, sql);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : sq_dberr(q->db, sql, q->err, q->errlen);
}

int sqlite_counts(co_store *s, int64_t *samples, int64_t *series, int64_t *devices, char *err,
                  size_t errlen)
{
    sq_query q;
    if (sq_q_begin_head(&q, s, err, errlen) < 0) return -1;
    int64_t a = 0, b = 0, c = 0;
    int rc = q_int(&q, "SELECT coalesce(sum(rows), 0) FROM chunks", &a) < 0 ||
                     q_int(&q, "SELECT count(*) FROM series", &b) < 0 ||
                     q_int(&q, "SELECT count(*) FROM devices", &c) < 0
                 ? -1
                 : 0;
    a += (int64_t)co_head_points(q.head); /* samples not written out yet */
    sq_q_end(&q);
    if (samples) *samples = a;
    if (series) *series = b;
    if (devices) *devices = c;
    return rc;
}

/* store_pg_retention.c — retention for the PostgreSQL store (store.h, co_store_retention; the
 * SQLite pass, store_retention.c, is the specification of what goes and what is counted).
 *
 * One pass holds one pooled connection and works in short transactions, polling
 * cut->cancelled before each:
 * - raw samples: the day partitions samples_YYYYMMDD of `samples` (found in pg_inherits /
 *   pg_class; a name is used only when it is exactly pg_partition_name of the day it names)
 *   whose day ended before the cut are dropped, one per transaction: their rows are counted
 *   for the stats, then DROP TABLE (the stats count the days that held samples, as SQLite's
 *   day tables do: the writer also makes the partition of the day after a batch's, which may
 *   stay empty). Dropping a partition locks the parent table for a moment,
 *   so the transaction waits at most LOCK_TIMEOUT for readers and the writer to let go (else
 *   the pass fails and the next one tries again);
 * - roll-ups: per transaction, the next KEYS_PER_TXN series are probed for their oldest
 *   bucket (one statement, primary-key lookups) and the old ones deleted by primary-key range
 *   (series_id = id AND bucket_ms >= lo AND bucket_ms < hi, one statement for all of them),
 *   at most chunk_rows buckets in all;
 * - login sessions past their expiry, chunk_rows per transaction (sessions_by_expiry);
 * - audit rows (`batches`) per agent, from its oldest seq up to the first row received after
 *   the cut, chunk_rows per transaction; the agents' last seq and totals are kept.
 * Two collectors sharing the database do not run passes at once: a pass holds a session
 * advisory lock (released before its connection goes back to the pool), and a pass that
 * cannot take it does nothing and returns 0 (the other one is at work). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "store_pg_int.h"

#define DAY_MS 86400000LL
#define MINUTE_MS 60000LL
#define HOUR_MS 3600000LL
#define DEFAULT_CHUNK_ROWS 10000
#define KEYS_PER_TXN 2048 /* series or agents visited in one transaction at most */
#define DAYS_MAX 4096     /* day partitions dropped in one pass at most (the rest next pass) */
#define LOCK_TIMEOUT "'2s'"
/* The advisory lock of a pass, in the two-int key space (apart from the migrations' lock):
 * 'cinm' and the oid of this schema's samples table, so that stores in two schemas of one
 * database do not wait for each other. */
#define PASS_LOCK_CLASS "1668114797"
#define PASS_LOCK_KEY "'samples'::regclass::oid::int"

typedef struct pass {
    pg_query q;
    const co_retention_cut *cut;
    co_retention_stats *st;
    int64_t chunk; /* rows per transaction */
} pass;

/* 1 (and st->cancelled set) when the caller asks the pass to stop. */
static int stop_requested(pass *p)
{
    if (p->cut->cancelled && p->cut->cancelled(p->cut->ud)) {
        p->st->cancelled = 1;
        return 1;
    }
    return 0;
}

/* Rows changed by a command's result. */
static int64_t changed(PGresult *res)
{
    return strtoll(PQcmdTuples(res), NULL, 10);
}

/* Commit (ok) or roll back a write transaction and count it. 0 when committed, else -1. */
static int txn_end(pass *p, int ok)
{
    if (ok && pg_commit(&p->q) < 0) ok = 0;
    if (!ok) pg_rollback(&p->q);
    p->st->transactions++;
    return ok ? 0 : -1;
}

/* Run sql with n parameters; *rows (may be NULL) = rows changed. 0 or -1 with the error. */
static int run(pass *p, const char *what, const char *sql, int n, const char *const *params,
               int64_t *rows)
{
    PGresult *res = pg_exec(&p->q, what, sql, n, params);
    if (!res) return -1;
    if (rows) *rows = changed(res);
    PQclear(res);
    return 0;
}

/* ---------------------------------------------------------------- raw samples */

/* Days since the epoch of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The day a partition's name "samples_YYYYMMDD" names: 1 (*day set) when the name is exactly
 * pg_partition_name of that day, else 0. */
static int partition_day(const char *name, int64_t *day)
{
    const char *prefix = "samples_";
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen) != 0 || strlen(name) != plen + 8) return 0;
    int64_t v[3] = {0, 0, 0};
    const int width[3] = {4, 2, 2};
    const char *c = name + plen;
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < width[i]; k++, c++) {
            if (*c < '0' || *c > '9') return 0;
            v[i] = v[i] * 10 + (*c - '0');
        }
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31) return 0;
    *day = days_from_civil(v[0], v[1], v[2]);
    char again[64];
    pg_partition_name(*day, again, sizeof again);
    return strcmp(again, name) == 0;
}

/* The days of the partitions of samples before before_day, oldest first (at most DAYS_MAX).
 * 0 or -1. */
static int old_days(pass *p, int64_t before_day, int64_t *days, size_t *n)
{
    *n = 0;
    PGresult *res = pg_exec(&p->q, "sample partitions",
                            "SELECT c.relname::text FROM pg_inherits i"
                            " JOIN pg_class c ON c.oid = i.inhrelid"
                            " WHERE i.inhparent = 'samples'::regclass"
                            " ORDER BY c.relname::text COLLATE \"C\"",
                            0, NULL);
    if (!res) return -1;
    for (int r = 0; r < PQntuples(res) && *n < DAYS_MAX; r++) {
        int64_t day;
        if (partition_day(pg_str(res, r, 0), &day) && day < before_day) days[(*n)++] = day;
    }
    PQclear(res);
    return 0;
}

/* Count the rows of one day's partition and drop it, in one transaction. 0 or -1. */
static int drop_day(pass *p, int64_t day)
{
    char name[64], count[128], drop[128];
    pg_partition_name(day, name, sizeof name); /* our own name, never read from input */
    snprintf(count, sizeof count, "SELECT count(*) FROM %s", name);
    snprintf(drop, sizeof drop, "DROP TABLE IF EXISTS %s", name);
    if (pg_begin(&p->q) < 0) return -1;
    PGresult *res = NULL;
    int ok = pg_cmd(&p->q, "lock timeout", "SET LOCAL lock_timeout = " LOCK_TIMEOUT) == 0 &&
             (res = pg_exec(&p->q, name, count, 0, NULL)) != NULL && pg_cmd(&p->q, name, drop) == 0;
    int64_t rows = res ? pg_int(res, 0, 0) : 0;
    PQclear(res);
    if (txn_end(p, ok) < 0) return -1;
    if (rows > 0) p->st->days++; /* an empty partition made ahead by the writer is no day */
    p->st->samples += rows;
    return 0;
}

static int drop_days(pass *p)
{
    int64_t cut = p->cut->raw_before_ms;
    if (cut <= 0) return 0;
    int64_t *days = malloc(DAYS_MAX * sizeof *days);
    if (!days) {
        cm_seterr(p->q.err, p->q.errlen, "out of memory");
        return -1;
    }
    size_t n = 0;
    int ret = old_days(p, cut / DAY_MS, days, &n);
    for (size_t i = 0; ret == 0 && i < n && !stop_requested(p); i++)
        ret = drop_day(p, days[i]);
    free(days);
    return ret;
}

/* ---------------------------------------------------------------- roll-ups */

/* A growing text array literal ("{1,2,3}") of integers. */
typedef struct int_list {
    char *buf;
    size_t len, cap;
} int_list;

/* Append v (or close the literal when last); 0 or -1 on OOM. */
static int list_add(int_list *l, int64_t v)
{
    if (l->cap - l->len < 24) {
        size_t cap = l->cap ? 2 * l->cap : 4096;
        char *b = realloc(l->buf, cap);
        if (!b) return -1;
        l->buf = b;
        l->cap = cap;
    }
    l->len += (size_t)snprintf(l->buf + l->len, l->cap - l->len, "%s%lld", l->len ? "," : "{",
                               (long long)v);
    return 0;
}

/* The literal ("{}" when empty); NULL on OOM. */
static const char *list_text(int_list *l)
{
    if (l->cap - l->len < 2) {
        char *b = realloc(l->buf, l->cap + 4);
        if (!b) return NULL;
        l->buf = b;
        l->cap += 4;
    }
    if (!l->len) l->buf[l->len++] = '{';
    l->buf[l->len] = '}';
    l->buf[l->len + 1] = '\0';
    return l->buf;
}

/* One transaction of prune_rollup: from the series after *sid, delete the buckets older than
 * cut, at most p->chunk; *sid advances past the series finished, *done when none is left.
 * 0 or -1. */
static int rollup_txn(pass *p, const char *probe, const char *del, int64_t step, int64_t cut,
                      int64_t *sid, int *done, int64_t *deleted)
{
    char a[32], b[32];
    const char *pp[] = {pg_i64(a, *sid), pg_i64(b, KEYS_PER_TXN)};
    if (pg_begin(&p->q) < 0) return -1;
    PGresult *res = pg_exec(&p->q, "roll-up probe", probe, 2, pp);
    int ok = res != NULL;
    int_list ids = {0}, los = {0}, his = {0};
    int64_t budget = p->chunk, next = *sid, rows = 0;
    int n = res ? PQntuples(res) : 0, r = 0;
    for (; ok && r < n && budget > 0; r++) {
        int64_t id = pg_int(res, r, 0), lo = pg_int(res, r, 1);
        if (PQgetisnull(res, r, 1) || lo >= cut) {
            next = id;
            continue;
        }
        int64_t hi = lo + budget * step; /* at most budget buckets in [lo, hi) */
        if (hi >= cut || hi < lo) hi = cut;
        budget -= (hi - lo + step - 1) / step;
        ok = list_add(&ids, id) == 0 && list_add(&los, lo) == 0 && list_add(&his, hi) == 0;
        if (hi >= cut) next = id; /* else: more of this series next time */
    }
    if (!ok && res) cm_seterr(p->q.err, p->q.errlen, "out of memory");
    /* finished when every series probed was done and fewer than asked for were left */
    int last = ok && r == n && n < KEYS_PER_TXN && (n == 0 || next == pg_int(res, n - 1, 0));
    PQclear(res);
    if (ok && ids.len) {
        const char *dp[] = {list_text(&ids), list_text(&los), list_text(&his)};
        ok = dp[0] && dp[1] && dp[2];
        if (!ok) cm_seterr(p->q.err, p->q.errlen, "out of memory");
        ok = ok && run(p, "roll-up delete", del, 3, dp, &rows) == 0;
    }
    free(ids.buf);
    free(los.buf);
    free(his.buf);
    if (txn_end(p, ok) < 0) return -1;
    *deleted += rows;
    *sid = next;
    *done = last;
    return 0;
}

/* Delete rows of table ("rollup_1m" or "rollup_1h", our constants) older than cut, series
 * by series; *deleted counts them. 0 (also when stopped) or -1. */
static int prune_rollup(pass *p, const char *table, int64_t step, int64_t cut, int64_t *deleted)
{
    if (cut <= 0) return 0;
    char probe[256], del[320];
    snprintf(probe, sizeof probe,
             "SELECT s.id, (SELECT min(r.bucket_ms) FROM %s r WHERE r.series_id = s.id)"
             " FROM series s WHERE s.id > $1::bigint ORDER BY s.id LIMIT $2::bigint",
             table);
    snprintf(del, sizeof del,
             "DELETE FROM %s r USING unnest($1::bigint[], $2::bigint[], $3::bigint[])"
             " AS d(id, lo, hi)"
             " WHERE r.series_id = d.id AND r.bucket_ms >= d.lo AND r.bucket_ms < d.hi",
             table);
    int64_t sid = INT64_MIN; /* the series being worked on is the first id > sid */
    for (int done = 0; !done;) {
        if (stop_requested(p)) return 0;
        if (rollup_txn(p, probe, del, step, cut, &sid, &done, deleted) < 0) return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- sessions */

static int prune_sessions(pass *p)
{
    int64_t cut = p->cut->sessions_before_ms;
    if (cut <= 0) return 0;
    char a[32], b[32];
    const char *pp[] = {pg_i64(a, cut), pg_i64(b, p->chunk)};
    for (int64_t rows = p->chunk; rows >= p->chunk;) {
        if (stop_requested(p)) return 0;
        if (pg_begin(&p->q) < 0) return -1;
        rows = 0;
        int ok = run(p, "sessions delete",
                     "DELETE FROM sessions WHERE hash IN (SELECT hash FROM sessions"
                     " WHERE expires_ms <= $1::bigint ORDER BY expires_ms LIMIT $2::bigint)",
                     2, pp, &rows) == 0;
        if (txn_end(p, ok) < 0) return -1;
        p->st->sessions += rows;
    }
    return 0;
}

/* ---------------------------------------------------------------- audit rows */

/* Where prune_audit is: agents up to `after` are finished (NULL: none yet); `agent` is being
 * worked on with its bound (the first seq received at or after the cut) when has_bound. */
typedef struct audit_pos {
    char after[CM_MAX_NAME + 1], agent[CM_MAX_NAME + 1];
    int has_after, has_bound;
    int64_t bound;
} audit_pos;

/* The first seq of agent id received at or after cut (INT64_MAX when none). 0 or -1. */
static int audit_bound(pass *p, const char *id, int64_t cut, int64_t *bound)
{
    char a[32];
    const char *pp[] = {id, pg_i64(a, cut)};
    PGresult *res = pg_exec(&p->q, "batches bound",
                            "SELECT first_seq FROM batches WHERE agent_id = $1::text"
                            " AND received_ms >= $2::bigint ORDER BY first_seq LIMIT 1",
                            2, pp);
    if (!res) return -1;
    *bound = PQntuples(res) ? pg_int(res, 0, 0) : INT64_MAX;
    PQclear(res);
    return 0;
}

/* One transaction of prune_audit. 0 or -1. */
static int audit_txn(pass *p, int64_t cut, audit_pos *pos, int *done)
{
    char a[32];
    const char *lp[] = {pos->has_after ? pos->after : NULL, pg_i64(a, KEYS_PER_TXN)};
    if (pg_begin(&p->q) < 0) return -1;
    PGresult *agents = pg_exec(&p->q, "agents",
                               "SELECT id FROM agents WHERE $1::text IS NULL OR id > $1::text"
                               " ORDER BY id LIMIT $2::bigint",
                               2, lp);
    int ok = agents != NULL, n = agents ? PQntuples(agents) : 0, r = 0;
    int64_t rows = 0;
    for (; ok && r < n && rows < p->chunk; r++) {
        const char *id = pg_str(agents, r, 0);
        if (strlen(id) > CM_MAX_NAME) { /* ids are at most CM_MAX_NAME bytes */
            cm_seterr(p->q.err, p->q.errlen, "retention: agent id too long");
            ok = 0;
            break;
        }
        if (!pos->has_bound || strcmp(pos->agent, id) != 0) {
            if (audit_bound(p, id, cut, &pos->bound) < 0) {
                ok = 0;
                break;
            }
            snprintf(pos->agent, sizeof pos->agent, "%s", id);
            pos->has_bound = 1;
        }
        char b[32], c[32];
        const char *dp[] = {id, pg_i64(b, pos->bound), pg_i64(c, p->chunk - rows)};
        int64_t gone = 0;
        if (run(p, "batches delete",
                "DELETE FROM batches WHERE agent_id = $1::text AND first_seq IN (SELECT first_seq"
                " FROM batches WHERE agent_id = $1::text AND first_seq < $2::bigint"
                " ORDER BY first_seq LIMIT $3::bigint)",
                3, dp, &gone) < 0) {
            ok = 0;
            break;
        }
        rows += gone;
        if (rows < p->chunk) { /* agent finished */
            snprintf(pos->after, sizeof pos->after, "%s", id);
            pos->has_after = 1;
            pos->has_bound = 0;
        }
    }
    int last = ok && r == n && n < KEYS_PER_TXN && !pos->has_bound;
    PQclear(agents);
    if (txn_end(p, ok) < 0) {
        pos->has_bound = 0; /* nothing of this transaction happened */
        return -1;
    }
    p->st->audit += rows;
    *done = last;
    return 0;
}

static int prune_audit(pass *p)
{
    int64_t cut = p->cut->audit_before_ms;
    if (cut <= 0) return 0;
    audit_pos pos = {0};
    for (int done = 0; !done;) {
        if (stop_requested(p)) return 0;
        if (audit_txn(p, cut, &pos, &done) < 0) return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- the pass */

/* Take the pass's advisory lock: 1 taken (key: its second half, for pass_unlock), 0 held by
 * another session, -1 error. */
static int pass_lock(pass *p, char *key, size_t keylen)
{
    PGresult *res = pg_exec(&p->q, "retention lock",
                            "SELECT pg_try_advisory_lock(" PASS_LOCK_CLASS ", k)::int, k"
                            " FROM (SELECT " PASS_LOCK_KEY " AS k) x",
                            0, NULL);
    if (!res) return -1;
    int got = pg_int(res, 0, 0) != 0;
    snprintf(key, keylen, "%s", pg_str(res, 0, 1));
    PQclear(res);
    return got;
}

/* Let go of the lock (a session's: before the connection goes back to the pool; a broken
 * connection has lost it already), keeping the error text of the pass. */
static void pass_unlock(pass *p, const char *key)
{
    char keep[256];
    snprintf(keep, sizeof keep, "%s", p->q.err && p->q.errlen ? p->q.err : "");
    const char *pp[] = {key};
    PQclear(pg_exec(&p->q, "retention unlock",
                    "SELECT pg_advisory_unlock(" PASS_LOCK_CLASS ", $1::int)", 1, pp));
    if (p->q.err && p->q.errlen) snprintf(p->q.err, p->q.errlen, "%s", keep);
}

int pg_retention(co_store *s, const co_retention_cut *cut, co_retention_stats *out, char *err,
                 size_t errlen)
{
    memset(out, 0, sizeof *out);
    pass p = {.cut = cut,
              .st = out,
              .chunk = cut->chunk_rows ? (int64_t)cut->chunk_rows : DEFAULT_CHUNK_ROWS};
    if (pg_conn_get(&p.q, s, err, errlen) < 0) return -1;
    char key[32] = "";
    int locked = pass_lock(&p, key, sizeof key), ret = locked < 0 ? -1 : 0;
    if (locked == 1) {
        if (drop_days(&p) < 0 ||
            prune_rollup(&p, "rollup_1m", MINUTE_MS, cut->rollup_1m_before_ms, &out->rollup_1m) <
                0 ||
            prune_rollup(&p, "rollup_1h", HOUR_MS, cut->rollup_1h_before_ms, &out->rollup_1h) < 0 ||
            prune_sessions(&p) < 0 || prune_audit(&p) < 0)
            ret = -1;
        pass_unlock(&p, key);
    }
    pg_conn_put(&p.q);
    return ret;
}

/* dashgen.c — fill a cinemon collector SQLite database with a national fleet for the dashboard
 * benchmark (bench/dashboard_bench.py); bench/dashgen_pg.c loads the same fleet into PostgreSQL.
 *
 * The database must already exist at the current schema: create it by starting
 * cinemon-collector on it once, or with `cinemon-collector -c INI token add --operator NAME`
 * (which also gives the benchmark its read token). dashgen then writes straight into the
 * tables, in large transactions with the journal off (the file is not in use meanwhile), and
 * puts the file back into WAL mode at the end. The inventory (cinemas, halls, devices, series
 * with latest values, firing alerts, today's compliance) is bench/dashgen_fleet.h's; then
 *
 *   rollup_1h  `days` of hourly roll-ups (n = 60 samples each) for the luminance and the six
 *              SPL series of every screen (see --year-series and --full-every)
 *
 * usage: dashgen --db FILE [--screens 10000] [--per-site 5] [--days 365]
 *                [--year-series lum|lum,spl|all] [--full-every K] [--seed 1] [--now-ms MS]
 * --year-series: which series of every screen get the days of roll-ups (default lum,spl);
 * --full-every K: every K-th cinema gets them for all 16 series of its screens.
 * Prints one JSON object with the counts, the time of each phase and the file size. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dashgen_fleet.h"

#define SCHEMA_MIN 7
#define TXN_ROWS 2000000 /* roll-up rows per transaction */

/* The database and the statements of the inventory's tables. */
typedef struct gen {
    sqlite3 *db;
    sqlite3_stmt *site, *scr, *dev, *ser, *lat, *alr, *cmp;
} gen;

/* Print what failed, with SQLite's message; -1. */
static int fail(sqlite3 *db, const char *what)
{
    fprintf(stderr, "dashgen: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
    return -1;
}

/* Run sql (no result rows). 0 or -1. */
static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "dashgen: %s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* Prepare sql into *st. 0 or -1. */
static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? 0 : fail(db, sql);
}

/* Step a bound statement to its end and reset it. 0 or -1. */
static int step(sqlite3 *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(db, sqlite3_sql(st));
}

/* Bind text or NULL. */
static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* Monotonic clock in seconds. */
static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- the sink of the fleet */

/* A cinema (fleet_sink), into its table's statement. */
static int put_site(void *ctx, const char *code, const char *name, const char *province,
                    const char *city, const char *chain, int64_t created_ms)
{
    gen *g = ctx;
    bind_text(g->site, 1, code);
    bind_text(g->site, 2, name);
    bind_text(g->site, 3, province);
    bind_text(g->site, 4, city);
    bind_text(g->site, 5, chain);
    sqlite3_bind_int64(g->site, 6, created_ms);
    return step(g->db, g->site);
}

/* A hall (fleet_sink), into its table's statement. */
static int put_screen(void *ctx, const char *site, const char *screen, const char *name,
                      const char *cls, const char *display, const char *format, const char *spl_ref,
                      int64_t updated_ms)
{
    gen *g = ctx;
    bind_text(g->scr, 1, site);
    bind_text(g->scr, 2, screen);
    bind_text(g->scr, 3, name);
    bind_text(g->scr, 4, cls);
    bind_text(g->scr, 5, display);
    bind_text(g->scr, 6, format);
    bind_text(g->scr, 7, spl_ref);
    sqlite3_bind_int64(g->scr, 8, updated_ms);
    return step(g->db, g->scr);
}

/* A device (fleet_sink), into its table's statement. */
static int put_device(void *ctx, int64_t id, const char *site, const char *device_id,
                      const char *screen, const fleet_devdef *d, const char *serial,
                      int64_t first_seen_ms, int64_t last_seen_ms)
{
    gen *g = ctx;
    sqlite3_bind_int64(g->dev, 1, id);
    bind_text(g->dev, 2, site);
    bind_text(g->dev, 3, device_id);
    bind_text(g->dev, 4, screen);
    bind_text(g->dev, 5, d->kind);
    bind_text(g->dev, 6, d->vendor);
    bind_text(g->dev, 7, d->model);
    bind_text(g->dev, 8, serial);
    bind_text(g->dev, 9, d->profile);
    sqlite3_bind_int64(g->dev, 10, first_seen_ms);
    sqlite3_bind_int64(g->dev, 11, last_seen_ms);
    return step(g->db, g->dev);
}

/* A series and its latest value (fleet_sink), into its table's statement. */
static int put_series(void *ctx, int64_t id, int64_t device_ref, const fleet_sdef *d, int64_t ts_ms,
                      double value)
{
    gen *g = ctx;
    sqlite3_bind_int64(g->ser, 1, id);
    sqlite3_bind_int64(g->ser, 2, device_ref);
    bind_text(g->ser, 3, d->metric);
    bind_text(g->ser, 4, d->labels);
    bind_text(g->ser, 5, d->unit);
    if (step(g->db, g->ser) < 0) return -1;
    sqlite3_bind_int64(g->lat, 1, id);
    sqlite3_bind_int64(g->lat, 2, ts_ms);
    sqlite3_bind_double(g->lat, 3, value);
    return step(g->db, g->lat);
}

/* A firing alert (fleet_sink), into its table's statement. */
static int put_alert(void *ctx, const char *rule, const char *site, const char *screen,
                     const char *device, const char *labels, const char *severity, double value,
                     double threshold, int64_t started_ms)
{
    gen *g = ctx;
    bind_text(g->alr, 1, rule);
    bind_text(g->alr, 2, site);
    bind_text(g->alr, 3, screen);
    bind_text(g->alr, 4, device);
    bind_text(g->alr, 5, labels);
    bind_text(g->alr, 6, severity);
    sqlite3_bind_double(g->alr, 7, value);
    sqlite3_bind_double(g->alr, 8, threshold);
    bind_text(g->alr, 9, "generated by dashgen");
    sqlite3_bind_int64(g->alr, 10, started_ms);
    return step(g->db, g->alr);
}

/* A day's compliance figure (fleet_sink), into its table's statement. */
static int put_compliance(void *ctx, const char *site, const char *screen, const char *day,
                          const char *quantity, int64_t in_ms, int64_t measured_ms,
                          int64_t updated_ms)
{
    gen *g = ctx;
    bind_text(g->cmp, 1, site);
    bind_text(g->cmp, 2, screen);
    bind_text(g->cmp, 3, day);
    bind_text(g->cmp, 4, quantity);
    sqlite3_bind_int64(g->cmp, 5, in_ms);
    sqlite3_bind_int64(g->cmp, 6, measured_ms);
    sqlite3_bind_int64(g->cmp, 7, updated_ms);
    return step(g->db, g->cmp);
}

/* Prepare the inventory's statements. 0 or -1. */
static int prepare_all(gen *g)
{
    const struct {
        sqlite3_stmt **st;
        const char *sql;
    } all[] = {
        {&g->site, "INSERT INTO sites(code, name, province, city, chain, created_ms)"
                   " VALUES(?1, ?2, ?3, ?4, ?5, ?6)"},
        {&g->scr, "INSERT INTO screens(site, screen, name, class, display, format, spl_ref,"
                  " updated_ms, updated_by) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'dashgen')"},
        {&g->dev, "INSERT INTO devices(id, site, device_id, screen, kind, vendor, model, serial,"
                  " firmware, profile, first_seen_ms, last_seen_ms)"
                  " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '1.0', ?9, ?10, ?11)"},
        {&g->ser, "INSERT INTO series(id, device_ref, metric, labels, unit)"
                  " VALUES(?1, ?2, ?3, ?4, ?5)"},
        {&g->lat, "INSERT INTO latest(series_id, ts_ms, value) VALUES(?1, ?2, ?3)"},
        {&g->alr, "INSERT INTO alerts(rule, site, screen, device, labels, severity, state, value,"
                  " threshold, text, started_ms, firing_ms, updated_ms) VALUES(?1, ?2, ?3, ?4,"
                  " ?5, ?6, 'firing', ?7, ?8, ?9, ?10, ?10, ?10)"},
        {&g->cmp, "INSERT INTO compliance(site, screen, day, quantity, in_ms, measured_ms,"
                  " updated_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"}};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (prep(g->db, all[i].sql, all[i].st) < 0) return -1;
    return 0;
}

/* Finalize every statement of g (NULL ones are fine). */
static void finalize_all(gen *g)
{
    sqlite3_stmt *all[] = {g->site, g->scr, g->dev, g->ser, g->lat, g->alr, g->cmp};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
}

/* The database is at our schema version or later and holds no sites yet. 0 or -1. */
static int check_fresh(sqlite3 *db, const char *path)
{
    sqlite3_stmt *v;
    if (prep(db, "PRAGMA user_version", &v) < 0) return -1;
    int ver = sqlite3_step(v) == SQLITE_ROW ? sqlite3_column_int(v, 0) : -1;
    sqlite3_finalize(v);
    if (ver < SCHEMA_MIN) {
        fprintf(stderr,
                "dashgen: %s: schema version %d, need %d or later (start "
                "cinemon-collector on it once first)\n",
                path, ver, SCHEMA_MIN);
        return -1;
    }
    if (prep(db, "SELECT count(*) FROM sites", &v) < 0) return -1;
    int64_t n = sqlite3_step(v) == SQLITE_ROW ? sqlite3_column_int64(v, 0) : -1;
    sqlite3_finalize(v);
    if (n != 0) {
        fprintf(stderr, "dashgen: %s already holds sites: start from a fresh database\n", path);
        return -1;
    }
    return 0;
}

/* Hourly roll-ups, series by series in key order: one INSERT ... SELECT over a counter per
 * series (the values are made by SQLite itself: no bind and step per row). Rows into *nroll.
 * which: series of every screen (0 luminance, 1 + SPL, 2 all). 0 or -1. */
static int rollups(sqlite3 *db, int64_t nseries, long per_site, long days, int which,
                   long full_every, int64_t now, int64_t *nroll)
{
    double t1 = mono_s();
    int64_t first_hour = (now / FLEET_HOUR_MS) * FLEET_HOUR_MS - (int64_t)days * FLEET_DAY_MS;
    int64_t nhours = (int64_t)days * 24, in_txn = 0;
    sqlite3_stmt *roll;
    if (prep(db,
             "WITH RECURSIVE h(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM h WHERE i < ?2 - 1)"
             " INSERT INTO rollup_1h(series_id, bucket_ms, n, sum, min, max)"
             " SELECT ?1, ?3 + i * 3600000, 60, 60 * v, v - s, v + s FROM (SELECT i,"
             " ?4 + ?5 * (?2 - i) / ?2 + ?7 * i + ?6 * ((random() % 1000000) / 1000000.0) AS v,"
             " ?6 * (0.1 + abs(random() % 1000000) / 1000000.0) + ?8 AS s FROM h)",
             &roll) < 0 ||
        exec(db, "BEGIN") < 0) {
        sqlite3_finalize(roll);
        return -1;
    }
    for (int64_t sid = 1; sid <= nseries && days > 0; sid++) {
        int k = (int)((sid - 1) % FLEET_SERIES);
        const fleet_sdef *sd = &fleet_sdefs[k];
        int64_t site_no = (sid - 1) / FLEET_SERIES / per_site; /* 0-based cinema of the series */
        int full = full_every && site_no % full_every == 0;
        if (!(which == 2 || full || k == 0 || (which == 1 && sd->spl))) continue;
        fleet_curve c = fleet_curve_of(sd);
        sqlite3_bind_int64(roll, 1, sid);
        sqlite3_bind_int64(roll, 2, nhours);
        sqlite3_bind_int64(roll, 3, first_hour);
        sqlite3_bind_double(roll, 4, c.v0);
        sqlite3_bind_double(roll, 5, c.drift);
        sqlite3_bind_double(roll, 6, c.noise);
        sqlite3_bind_double(roll, 7, c.inc);
        sqlite3_bind_double(roll, 8, c.s_add);
        if (step(db, roll) < 0) {
            sqlite3_finalize(roll);
            return -1;
        }
        *nroll += sqlite3_changes(db);
        in_txn += nhours;
        if (in_txn >= TXN_ROWS) {
            if (exec(db, "COMMIT") < 0 || exec(db, "BEGIN") < 0) {
                sqlite3_finalize(roll);
                return -1;
            }
            in_txn = 0;
            fprintf(stderr, "dashgen: %lld roll-up rows (%.0f/s)\n", (long long)*nroll,
                    *nroll / (mono_s() - t1));
        }
    }
    sqlite3_finalize(roll);
    return exec(db, "COMMIT");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    long screens = 10000, per_site = 5, days = 365;
    int which = 1; /* series with a year of roll-ups: 0 luminance, 1 + SPL, 2 all */
    long full_every = 0;
    int64_t now = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "dashgen: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--db"))
            path = v;
        else if (!strcmp(a, "--screens"))
            screens = strtol(v, NULL, 10);
        else if (!strcmp(a, "--per-site"))
            per_site = strtol(v, NULL, 10);
        else if (!strcmp(a, "--days"))
            days = strtol(v, NULL, 10);
        else if (!strcmp(a, "--full-every"))
            full_every = strtol(v, NULL, 10);
        else if (!strcmp(a, "--year-series")) {
            which = !strcmp(v, "lum") ? 0 : !strcmp(v, "lum,spl") ? 1 : !strcmp(v, "all") ? 2 : -1;
            if (which < 0) {
                fprintf(stderr, "dashgen: --year-series lum | lum,spl | all\n");
                return 2;
            }
        } else if (!strcmp(a, "--seed"))
            fleet_seed((uint64_t)strtoull(v, NULL, 10));
        else if (!strcmp(a, "--now-ms"))
            now = strtoll(v, NULL, 10);
        else {
            fprintf(stderr, "dashgen: unknown option %s\n", a);
            return 2;
        }
    }
    if (!path || screens < 1 || per_site < 1 || per_site > 50 || days < 0 || days > 3650 ||
        full_every < 0) {
        fprintf(stderr,
                "usage: dashgen --db FILE [--screens N] [--per-site K] [--days D] "
                "[--year-series lum|lum,spl|all] [--full-every K] [--seed S] [--now-ms MS]\n");
        return 2;
    }
    if (!now) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    gen g = {0};
    if (sqlite3_open_v2(path, &g.db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        fail(g.db, path);
        sqlite3_close(g.db);
        return 1;
    }
    int rc = 1;
    fleet_counts fc;
    int64_t nroll = 0;
    double t0 = mono_s(), t_inv = 0, t_roll = 0;
    if (check_fresh(g.db, path) < 0 || exec(g.db, "PRAGMA journal_mode = DELETE") < 0 ||
        exec(g.db, "PRAGMA journal_mode = OFF") < 0 || exec(g.db, "PRAGMA synchronous = OFF") < 0 ||
        exec(g.db, "PRAGMA locking_mode = EXCLUSIVE") < 0 ||
        exec(g.db, "PRAGMA cache_size = -1048576") < 0 /* 1 GiB */ || prepare_all(&g) < 0)
        goto done;
    fleet_sink sink = {&g, put_site, put_screen, put_device, put_series, put_alert, put_compliance};
    if (exec(g.db, "BEGIN") < 0 || fleet_generate(screens, per_site, now, &sink, &fc) < 0 ||
        exec(g.db, "COMMIT") < 0)
        goto done;
    t_inv = mono_s() - t0;
    double t1 = mono_s();
    if (rollups(g.db, fc.series, per_site, days, which, full_every, now, &nroll) < 0) goto done;
    t_roll = mono_s() - t1;
    sqlite3_stmt *w = NULL;
    if (exec(g.db, "PRAGMA locking_mode = NORMAL") < 0 ||
        prep(g.db, "PRAGMA journal_mode = WAL", &w) < 0 || sqlite3_step(w) != SQLITE_ROW) {
        fail(g.db, "journal_mode = WAL");
        sqlite3_finalize(w);
        goto done;
    }
    sqlite3_finalize(w);
    rc = 0;
done:
    finalize_all(&g);
    sqlite3_close(g.db);
    if (rc) return rc;
    struct stat stb;
    long long size = stat(path, &stb) == 0 ? (long long)stb.st_size : -1;
    printf("{\"sites\": %ld, \"screens\": %lld, \"devices\": %lld, \"series\": %lld, "
           "\"latest\": %lld, \"alerts\": %lld, \"compliance\": %lld, \"rollup_1h\": %lld, "
           "\"rollup_days\": %ld, \"year_series\": \"%s\", \"full_every\": %ld, \"now_ms\": %lld, "
           "\"inventory_s\": %.2f, "
           "\"rollup_s\": %.2f, \"total_s\": %.2f, \"bytes\": %lld}\n",
           fc.sites, (long long)fc.screens, (long long)fc.devices, (long long)fc.series,
           (long long)fc.series, (long long)fc.alerts, (long long)fc.compliance, (long long)nroll,
           days,
           which == 0   ? "lum"
           : which == 1 ? "lum,spl"
                        : "all",
           full_every, (long long)now, t_inv, t_roll, mono_s() - t0, size);
    return 0;
}

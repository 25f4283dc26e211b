/* dashgen_pg.c — load the dashboard benchmark's national fleet (bench/dashgen_fleet.h) into a
 * cinemon collector's PostgreSQL database, by COPY (bench/dashboard_bench.py --backend
 * postgresql; bench/dashgen.c is the SQLite loader).
 *
 * The database must hold the collector's schema and no sites yet: run `cinemon-collector -c
 * INI token add --operator NAME` on it first (with `[store] backend = postgresql`). Then:
 *
 *   1. the inventory (sites, screens, devices, series, latest, alerts, compliance), each table
 *      by one text COPY, in one transaction; the id sequences of devices and series set past
 *      the ids written;
 *   2. hourly roll-ups (n = 60 samples each) by one binary COPY into rollup_1h, truncated in
 *      the same transaction (COPY FREEZE: no later hint-bit or freeze writes) with its primary
 *      key dropped and built again afterwards under the same name, then VACUUM ANALYZE:
 *        - the luminance of every screen for the last --lum-days days,
 *        - the luminance of every screen of every --year-every-th cinema for --days days,
 *        - all 16 series of every screen of every --full-every-th cinema for --days days;
 *      --layout time writes the rows hour after hour (all series of an hour together, as a
 *      collector writing every hour leaves its heap; a year-long chart then reads one heap
 *      page per hour), --layout series series after series (as after a CLUSTER).
 *
 * usage: dashgen_pg --pg CONNINFO [--screens 90000] [--per-site 5] [--days 365]
 *                   [--lum-days 30] [--year-every 20] [--full-every 500]
 *                   [--layout time|series] [--seed S] [--now-ms MS]
 * Prints one JSON object with the counts, the time of each phase and the sizes. The conninfo
 * (it may hold a password) is never printed. */
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dashgen_fleet.h"

#define COPY_CHUNK (4u << 20) /* bytes handed to PQputCopyData at once */
#define PROGRESS_ROWS 10000000LL

/* A growable byte buffer. */
typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

/* The inventory's rows as COPY text, one buffer per table. */
enum { T_SITES, T_SCREENS, T_DEVICES, T_SERIES, T_LATEST, T_ALERTS, T_COMPLIANCE, T_COUNT };

static const char *const copy_sql[T_COUNT] = {
    [T_SITES] = "COPY sites(code, name, province, city, chain, created_ms) FROM STDIN",
    [T_SCREENS] = "COPY screens(site, screen, name, class, display, format, spl_ref, updated_ms,"
                  " updated_by) FROM STDIN",
    [T_DEVICES] = "COPY devices(id, site, device_id, screen, kind, vendor, model, serial,"
                  " firmware, profile, first_seen_ms, last_seen_ms) FROM STDIN",
    [T_SERIES] = "COPY series(id, device_ref, metric, labels, unit) FROM STDIN",
    [T_LATEST] = "COPY latest(series_id, ts_ms, value) FROM STDIN",
    [T_ALERTS] = "COPY alerts(rule, site, screen, device, labels, severity, state, value,"
                 " threshold, text, started_ms, firing_ms, updated_ms) FROM STDIN",
    [T_COMPLIANCE] = "COPY compliance(site, screen, day, quantity, in_ms, measured_ms,"
                     " updated_ms) FROM STDIN"};

typedef struct gen {
    PGconn *pg;
    buf t[T_COUNT];
    int oom;
} gen;

/* Monotonic clock in seconds. */
static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Room for n more bytes in b. 0 or -1 (out of memory). */
static int reserve(buf *b, size_t n)
{
    if (b->n + n <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->n + n)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* ---------------------------------------------------------------- COPY text rows */

/* Append one text field (NULL: \N) to table t, escaped for COPY's text format, then a tab or
 * (last) a newline. */
static void field(gen *g, int t, const char *v, int last)
{
    buf *b = &g->t[t];
    size_t len = v ? strlen(v) : 2;
    if (reserve(b, 2 * len + 1) < 0) {
        g->oom = 1;
        return;
    }
    if (!v) {
        memcpy(b->p + b->n, "\\N", 2);
        b->n += 2;
    } else
        for (const char *c = v; *c; c++) {
            char e = *c == '\\' ? '\\' : *c == '\t' ? 't' : *c == '\n' ? 'n' : *c == '\r' ? 'r' : 0;
            if (e) {
                b->p[b->n++] = '\\';
                b->p[b->n++] = e;
            } else
                b->p[b->n++] = *c;
        }
    b->p[b->n++] = last ? '\n' : '\t';
}

/* An integer field. */
static void field_i(gen *g, int t, int64_t v, int last)
{
    char s[24];
    snprintf(s, sizeof s, "%lld", (long long)v);
    field(g, t, s, last);
}

/* A double field, exact (17 significant digits). */
static void field_d(gen *g, int t, double v, int last)
{
    char s[40];
    snprintf(s, sizeof s, "%.17g", v);
    field(g, t, s, last);
}

/* ---------------------------------------------------------------- the sink of the fleet */

/* A cinema (fleet_sink), into its table's buffer. */
static int put_site(void *ctx, const char *code, const char *name, const char *province,
                    const char *city, const char *chain, int64_t created_ms)
{
    gen *g = ctx;
    field(g, T_SITES, code, 0);
    field(g, T_SITES, name, 0);
    field(g, T_SITES, province, 0);
    field(g, T_SITES, city, 0);
    field(g, T_SITES, chain, 0);
    field_i(g, T_SITES, created_ms, 1);
    return g->oom ? -1 : 0;
}

/* A hall (fleet_sink), into its table's buffer. */
static int put_screen(void *ctx, const char *site, const char *screen, const char *name,
                      const char *cls, const char *display, const char *format, const char *spl_ref,
                      int64_t updated_ms)
{
    gen *g = ctx;
    const char *f[] = {site, screen, name, cls, display, format, spl_ref};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        field(g, T_SCREENS, f[i], 0);
    field_i(g, T_SCREENS, updated_ms, 0);
    field(g, T_SCREENS, "dashgen", 1);
    return g->oom ? -1 : 0;
}

/* A device (fleet_sink), into its table's buffer. */
static int put_device(void *ctx, int64_t id, const char *site, const char *device_id,
                      const char *screen, const fleet_devdef *d, const char *serial,
                      int64_t first_seen_ms, int64_t last_seen_ms)
{
    gen *g = ctx;
    field_i(g, T_DEVICES, id, 0);
    const char *f[] = {site,     device_id, screen, d->kind,   d->vendor,
                       d->model, serial,    "1.0",  d->profile};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        field(g, T_DEVICES, f[i], 0);
    field_i(g, T_DEVICES, first_seen_ms, 0);
    field_i(g, T_DEVICES, last_seen_ms, 1);
    return g->oom ? -1 : 0;
}

/* A series and its latest value (fleet_sink), into its table's buffer. */
static int put_series(void *ctx, int64_t id, int64_t device_ref, const fleet_sdef *d, int64_t ts_ms,
                      double value)
{
    gen *g = ctx;
    field_i(g, T_SERIES, id, 0);
    field_i(g, T_SERIES, device_ref, 0);
    field(g, T_SERIES, d->metric, 0);
    field(g, T_SERIES, d->labels, 0);
    field(g, T_SERIES, d->unit, 1);
    field_i(g, T_LATEST, id, 0);
    field_i(g, T_LATEST, ts_ms, 0);
    field_d(g, T_LATEST, value, 1);
    return g->oom ? -1 : 0;
}

/* A firing alert (fleet_sink), into its table's buffer. */
static int put_alert(void *ctx, const char *rule, const char *site, const char *screen,
                     const char *device, const char *labels, const char *severity, double value,
                     double threshold, int64_t started_ms)
{
    gen *g = ctx;
    const char *f[] = {rule, site, screen, device, labels, severity, "firing"};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        field(g, T_ALERTS, f[i], 0);
    field_d(g, T_ALERTS, value, 0);
    field_d(g, T_ALERTS, threshold, 0);
    field(g, T_ALERTS, "generated by dashgen", 0);
    for (int i = 0; i < 3; i++)
        field_i(g, T_ALERTS, started_ms, i == 2);
    return g->oom ? -1 : 0;
}

/* A day's compliance figure (fleet_sink), into its table's buffer. */
static int put_compliance(void *ctx, const char *site, const char *screen, const char *day,
                          const char *quantity, int64_t in_ms, int64_t measured_ms,
                          int64_t updated_ms)
{
    gen *g = ctx;
    field(g, T_COMPLIANCE, site, 0);
    field(g, T_COMPLIANCE, screen, 0);
    field(g, T_COMPLIANCE, day, 0);
    field(g, T_COMPLIANCE, quantity, 0);
    field_i(g, T_COMPLIANCE, in_ms, 0);
    field_i(g, T_COMPLIANCE, measured_ms, 0);
    field_i(g, T_COMPLIANCE, updated_ms, 1);
    return g->oom ? -1 : 0;
}

/* ---------------------------------------------------------------- talking to PostgreSQL */

/* Print what failed with the server's message (never the conninfo); -1. */
static int fail(PGconn *pg, const char *what)
{
    const char *m = pg ? PQerrorMessage(pg) : "";
    size_t n = strlen(m);
    fprintf(stderr, "dashgen_pg: %s%s%.*s\n", what, n ? ": " : "",
            (int)(n && m[n - 1] == '\n' ? n - 1 : n), m);
    return -1;
}

/* Run sql with n text parameters; expect `want` (PGRES_COMMAND_OK or PGRES_TUPLES_OK). The
 * result (tuples) into *out when out, else cleared. 0 or -1. */
static int run(PGconn *pg, const char *sql, int n, const char *const *params, ExecStatusType want,
               PGresult **out)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != want) {
        PQclear(r);
        return fail(pg, sql);
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return 0;
}

/* A one-value query's integer (NULL reads as 0). 0 or -1. */
static int query_i64(PGconn *pg, const char *sql, int64_t *v)
{
    PGresult *r;
    if (run(pg, sql, 0, NULL, PGRES_TUPLES_OK, &r) < 0) return -1;
    *v = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return 0;
}

/* Start `COPY ... FROM STDIN`. 0 or -1. */
static int copy_begin(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    int ok = PQresultStatus(r) == PGRES_COPY_IN;
    PQclear(r);
    return ok ? 0 : fail(pg, sql);
}

/* Send n bytes of COPY data. 0 or -1. */
static int copy_put(PGconn *pg, const char *p, size_t n)
{
    while (n) {
        size_t k = n < COPY_CHUNK ? n : COPY_CHUNK;
        if (PQputCopyData(pg, p, (int)k) != 1) return fail(pg, "COPY data");
        p += k;
        n -= k;
    }
    return 0;
}

/* End the COPY and check its result. 0 or -1. */
static int copy_end(PGconn *pg, const char *what)
{
    if (PQputCopyEnd(pg, NULL) != 1) return fail(pg, what);
    PGresult *r;
    int bad = 0;
    while ((r = PQgetResult(pg))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) bad = 1;
        PQclear(r);
    }
    return bad ? fail(pg, what) : 0;
}

/* The database holds the collector's schema and no sites. 0 or -1. */
static int check_fresh(PGconn *pg)
{
    int64_t ver = 0, n = 0;
    if (query_i64(pg, "SELECT max(version) FROM schema_version", &ver) < 0) {
        fprintf(stderr, "dashgen_pg: no cinemon schema here (run `cinemon-collector -c INI "
                        "token add --operator NAME` on it first)\n");
        return -1;
    }
    if (ver < 1) {
        fprintf(stderr, "dashgen_pg: schema version %lld: run the collector on it first\n",
                (long long)ver);
        return -1;
    }
    if (query_i64(pg, "SELECT count(*) FROM sites", &n) < 0) return -1;
    if (n) {
        fprintf(stderr, "dashgen_pg: the database already holds sites: start from a fresh one\n");
        return -1;
    }
    return 0;
}

/* Write the inventory: every table's buffer by COPY, then the id sequences. 0 or -1. */
static int load_inventory(gen *g, const fleet_counts *c)
{
    PGconn *pg = g->pg;
    if (run(pg, "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL) < 0) return -1;
    for (int t = 0; t < T_COUNT; t++)
        if (copy_begin(pg, copy_sql[t]) < 0 || copy_put(pg, g->t[t].p, g->t[t].n) < 0 ||
            copy_end(pg, copy_sql[t]) < 0)
            return -1;
    char dev[24], ser[24];
    snprintf(dev, sizeof dev, "%lld", (long long)(c->devices ? c->devices : 1));
    snprintf(ser, sizeof ser, "%lld", (long long)(c->series ? c->series : 1));
    const char *pd[] = {"devices", dev}, *ps[] = {"series", ser};
    const char *setval = "SELECT setval(pg_get_serial_sequence($1, 'id'), $2::bigint)";
    if (run(pg, setval, 2, pd, PGRES_TUPLES_OK, NULL) < 0 ||
        run(pg, setval, 2, ps, PGRES_TUPLES_OK, NULL) < 0)
        return -1;
    return run(pg, "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL);
}

/* ---------------------------------------------------------------- roll-ups */

/* Which series get roll-ups and from which hour on. */
typedef struct rollplan {
    int64_t *id;
    int64_t *start; /* first hour index (0 = `days` ago) */
    fleet_curve *curve;
    size_t n;
    int64_t nhours, first_hour_ms;
} rollplan;

/* Choose the series with roll-ups and draw their curves (in id order). 0 or -1 (memory). */
static int plan_rollups(rollplan *p, int64_t nseries, long per_site, long days, long lum_days,
                        long year_every, long full_every, int64_t now)
{
    memset(p, 0, sizeof *p);
    p->nhours = (int64_t)days * 24;
    p->first_hour_ms = (now / FLEET_HOUR_MS) * FLEET_HOUR_MS - (int64_t)days * FLEET_DAY_MS;
    int64_t recent = p->nhours - (int64_t)(lum_days < days ? lum_days : days) * 24;
    size_t cap = 1024;
    p->id = malloc(cap * sizeof *p->id);
    p->start = malloc(cap * sizeof *p->start);
    p->curve = malloc(cap * sizeof *p->curve);
    if (!p->id || !p->start || !p->curve) return -1;
    for (int64_t sid = 1; sid <= nseries && days > 0; sid++) {
        int k = (int)((sid - 1) % FLEET_SERIES);
        int64_t site_no = (sid - 1) / FLEET_SERIES / per_site; /* 0-based cinema */
        int64_t start;
        if ((full_every && site_no % full_every == 0) ||
            (k == 0 && year_every && site_no % year_every == 0))
            start = 0;
        else if (k == 0 && lum_days > 0)
            start = recent;
        else
            continue;
        if (p->n == cap) {
            cap *= 2;
            int64_t *a = realloc(p->id, cap * sizeof *a);
            if (a) p->id = a;
            int64_t *b = realloc(p->start, cap * sizeof *b);
            if (b) p->start = b;
            fleet_curve *c = realloc(p->curve, cap * sizeof *c);
            if (c) p->curve = c;
            if (!a || !b || !c) return -1;
        }
        p->id[p->n] = sid;
        p->start[p->n] = start;
        p->curve[p->n] = fleet_curve_of(&fleet_sdefs[k]);
        p->n++;
    }
    return 0;
}

/* Free what plan_rollups allocated. */
static void plan_free(rollplan *p)
{
    free(p->id);
    free(p->start);
    free(p->curve);
}

/* Big-endian 16/32/64-bit values into b (room already reserved). */
static void be16(buf *b, uint16_t v)
{
    b->p[b->n++] = (char)(v >> 8);
    b->p[b->n++] = (char)v;
}
/* (32-bit) */
static void be32(buf *b, uint32_t v)
{
    for (int s = 24; s >= 0; s -= 8)
        b->p[b->n++] = (char)(v >> s);
}
/* (64-bit) */
static void be64(buf *b, uint64_t v)
{
    for (int s = 56; s >= 0; s -= 8)
        b->p[b->n++] = (char)(v >> s);
}

/* An int8 / float8 field of a binary COPY tuple. */
static void bin_i64(buf *b, int64_t v)
{
    be32(b, 8);
    be64(b, (uint64_t)v);
}
/* (float8: its IEEE bits) */
static void bin_f64(buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    be32(b, 8);
    be64(b, u);
}

/* The roll-up of plan entry j at hour i as one binary COPY tuple into b (74 bytes). */
static void rollup_row(buf *b, const rollplan *p, size_t j, int64_t i)
{
    const fleet_curve *c = &p->curve[j];
    double u = fleet_urand() * 2 - 1, u2 = fleet_urand() * 2 - 1;
    double v = c->v0 + c->drift * (double)(p->nhours - i) / (double)p->nhours + c->inc * (double)i +
               c->noise * u;
    double s = c->noise * (0.1 + (u2 < 0 ? -u2 : u2)) + c->s_add;
    be16(b, 6);
    bin_i64(b, p->id[j]);
    bin_i64(b, p->first_hour_ms + i * FLEET_HOUR_MS);
    bin_i64(b, 60);
    bin_f64(b, 60 * v);
    bin_f64(b, v - s);
    bin_f64(b, v + s);
}

/* Send b's content when it holds a chunk (or always when force). 0 or -1. */
static int flush(PGconn *pg, buf *b, int force)
{
    if (!force && b->n < COPY_CHUNK) return 0;
    int rc = copy_put(pg, b->p, b->n);
    b->n = 0;
    return rc;
}

/* Stream every planned roll-up row in the layout's order into the open COPY. Rows into *rows.
 * 0 or -1. */
static int stream_rollups(PGconn *pg, const rollplan *p, int by_time, int64_t *rows)
{
    buf b = {0};
    double t0 = mono_s();
    int64_t next = PROGRESS_ROWS;
    if (reserve(&b, COPY_CHUNK + 256) < 0) return fail(NULL, "out of memory");
    memcpy(b.p, "PGCOPY\n\377\r\n\0", 11); /* the binary format's signature */
    b.n = 11;
    be32(&b, 0); /* flags */
    be32(&b, 0); /* header extension length */
    int64_t outer = by_time ? p->nhours : (int64_t)p->n;
    for (int64_t o = 0; o < outer; o++) {
        size_t jlo = by_time ? 0 : (size_t)o, jhi = by_time ? p->n : (size_t)o + 1;
        for (size_t j = jlo; j < jhi; j++) {
            int64_t ilo = by_time ? o : p->start[j], ihi = by_time ? o + 1 : p->nhours;
            if (ilo < p->start[j]) continue;
            for (int64_t i = ilo; i < ihi; i++) {
                rollup_row(&b, p, j, i);
                if (++*rows >= next) {
                    fprintf(stderr, "dashgen_pg: %lld roll-up rows (%.0f/s)\n", (long long)*rows,
                            *rows / (mono_s() - t0));
                    next += PROGRESS_ROWS;
                }
                if (flush(pg, &b, 0) < 0) {
                    free(b.p);
                    return -1;
                }
            }
        }
    }
    be16(&b, 0xFFFF); /* trailer */
    int rc = flush(pg, &b, 1);
    free(b.p);
    return rc;
}

/* rollup_1h emptied, its primary key dropped, the rows copied (FREEZE), the key built again
 * under its name, in one transaction. Times of the copy and of the index into *t_copy,
 * *t_index. 0 or -1. */
static int load_rollups(PGconn *pg, const rollplan *p, int by_time, int64_t *rows, double *t_copy,
                        double *t_index)
{
    PGresult *r;
    const char *mwm[] = {"maintenance_work_mem", "1GB"};
    if (run(pg, "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL) < 0 ||
        run(pg, "SELECT set_config($1, $2, true)", 2, mwm, PGRES_TUPLES_OK, NULL) < 0 ||
        run(pg,
            "SELECT conname FROM pg_constraint WHERE conrelid = 'rollup_1h'::regclass"
            " AND contype = 'p'",
            0, NULL, PGRES_TUPLES_OK, &r) < 0)
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        fprintf(stderr, "dashgen_pg: rollup_1h has no primary key\n");
        return -1;
    }
    char *name = PQescapeIdentifier(pg, PQgetvalue(r, 0, 0), strlen(PQgetvalue(r, 0, 0)));
    PQclear(r);
    if (!name) return fail(pg, "escape");
    char drop[200], add[240];
    snprintf(drop, sizeof drop, "ALTER TABLE rollup_1h DROP CONSTRAINT %s", name);
    snprintf(add, sizeof add,
             "ALTER TABLE rollup_1h ADD CONSTRAINT %s PRIMARY KEY (series_id, bucket_ms)", name);
    PQfreemem(name);
    double t0 = mono_s();
    if (run(pg, "TRUNCATE rollup_1h", 0, NULL, PGRES_COMMAND_OK, NULL) < 0 ||
        run(pg, drop, 0, NULL, PGRES_COMMAND_OK, NULL) < 0 ||
        copy_begin(pg, "COPY rollup_1h(series_id, bucket_ms, n, sum, min, max) FROM STDIN"
                       " WITH (FORMAT binary, FREEZE)") < 0 ||
        stream_rollups(pg, p, by_time, rows) < 0 || copy_end(pg, "COPY rollup_1h") < 0)
        return -1;
    *t_copy = mono_s() - t0;
    t0 = mono_s();
    if (run(pg, add, 0, NULL, PGRES_COMMAND_OK, NULL) < 0 ||
        run(pg, "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL) < 0)
        return -1;
    *t_index = mono_s() - t0;
    return 0;
}

/* ---------------------------------------------------------------- main */

typedef struct opts {
    const char *conninfo, *layout;
    long screens, per_site, days, lum_days, year_every, full_every;
    int64_t now;
} opts;

/* Options into o. 0, or 2 (usage printed). */
static int parse(int argc, char **argv, opts *o)
{
    *o = (opts){NULL, "time", 90000, 5, 365, 30, 20, 500, 0};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "dashgen_pg: %s needs a value\n", a);
            return 2;
        }
        long *num = !strcmp(a, "--screens")      ? &o->screens
                    : !strcmp(a, "--per-site")   ? &o->per_site
                    : !strcmp(a, "--days")       ? &o->days
                    : !strcmp(a, "--lum-days")   ? &o->lum_days
                    : !strcmp(a, "--year-every") ? &o->year_every
                    : !strcmp(a, "--full-every") ? &o->full_every
                                                 : NULL;
        if (num)
            *num = strtol(v, NULL, 10);
        else if (!strcmp(a, "--pg"))
            o->conninfo = v;
        else if (!strcmp(a, "--layout"))
            o->layout = v;
        else if (!strcmp(a, "--seed"))
            fleet_seed((uint64_t)strtoull(v, NULL, 10));
        else if (!strcmp(a, "--now-ms"))
            o->now = strtoll(v, NULL, 10);
        else {
            fprintf(stderr, "dashgen_pg: unknown option %s\n", a);
            return 2;
        }
    }
    if (!o->conninfo || o->screens < 1 || o->per_site < 1 || o->per_site > 50 || o->days < 0 ||
        o->days > 3650 || o->lum_days < 0 || o->year_every < 0 || o->full_every < 0 ||
        (strcmp(o->layout, "time") && strcmp(o->layout, "series"))) {
        fprintf(stderr, "usage: dashgen_pg --pg CONNINFO [--screens N] [--per-site K] [--days D]"
                        " [--lum-days D] [--year-every K] [--full-every K] [--layout time|series]"
                        " [--seed S] [--now-ms MS]\n");
        return 2;
    }
    if (!o->now) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        o->now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    gen g = {0};
    rollplan plan = {0};
    fleet_counts fc;
    int64_t rows = 0, db_bytes = 0, roll_bytes = 0;
    double t0 = mono_s(), t_gen = 0, t_inv = 0, t_copy = 0, t_index = 0, t_vac = 0;
    rc = 1;
    g.pg = PQconnectdb(o.conninfo);
    if (PQstatus(g.pg) != CONNECTION_OK) {
        fail(g.pg, "connect");
        goto done;
    }
    PQclear(PQexec(g.pg, "SET client_min_messages = warning"));
    if (check_fresh(g.pg) < 0) goto done;
    fleet_sink sink = {&g, put_site, put_screen, put_device, put_series, put_alert, put_compliance};
    if (fleet_generate(o.screens, o.per_site, o.now, &sink, &fc) < 0) {
        fprintf(stderr, "dashgen_pg: out of memory\n");
        goto done;
    }
    t_gen = mono_s() - t0;
    if (load_inventory(&g, &fc) < 0) goto done;
    t_inv = mono_s() - t0;
    for (int t = 0; t < T_COUNT; t++) { /* not needed any more */
        free(g.t[t].p);
        g.t[t] = (buf){0};
    }
    if (plan_rollups(&plan, fc.series, o.per_site, o.days, o.lum_days, o.year_every, o.full_every,
                     o.now) < 0) {
        fprintf(stderr, "dashgen_pg: out of memory\n");
        goto done;
    }
    if (load_rollups(g.pg, &plan, !strcmp(o.layout, "time"), &rows, &t_copy, &t_index) < 0)
        goto done;
    double t1 = mono_s();
    if (run(g.pg,
            "VACUUM (ANALYZE) sites, screens, devices, series, latest, alerts, compliance,"
            " rollup_1h",
            0, NULL, PGRES_COMMAND_OK, NULL) < 0 ||
        query_i64(g.pg, "SELECT pg_database_size(current_database())", &db_bytes) < 0 ||
        query_i64(g.pg, "SELECT pg_total_relation_size('rollup_1h')", &roll_bytes) < 0)
        goto done;
    t_vac = mono_s() - t1;
    rc = 0;
    printf("{\"sites\": %ld, \"screens\": %lld, \"devices\": %lld, \"series\": %lld, "
           "\"latest\": %lld, \"alerts\": %lld, \"compliance\": %lld, \"rollup_1h\": %lld, "
           "\"rollup_days\": %ld, \"lum_days\": %ld, \"year_every\": %ld, \"full_every\": %ld, "
           "\"rollup_series\": %zu, \"layout\": \"%s\", \"now_ms\": %lld, \"generate_s\": %.2f, "
           "\"inventory_s\": %.2f, \"rollup_s\": %.2f, \"index_s\": %.2f, \"vacuum_s\": %.2f, "
           "\"total_s\": %.2f, \"bytes\": %lld, \"rollup_bytes\": %lld}\n",
           fc.sites, (long long)fc.screens, (long long)fc.devices, (long long)fc.series,
           (long long)fc.series, (long long)fc.alerts, (long long)fc.compliance, (long long)rows,
           o.days, o.lum_days, o.year_every, o.full_every, plan.n, o.layout, (long long)o.now,
           t_gen, t_inv, t_copy, t_index, t_vac, mono_s() - t0, (long long)db_bytes,
           (long long)roll_bytes);
done:
    plan_free(&plan);
    for (int t = 0; t < T_COUNT; t++)
        free(g.t[t].p);
    PQfinish(g.pg);
    return rc;
}

/* dashgen.c — fill a cinemon collector database with a national fleet for the dashboard
 * benchmark (bench/dashboard_bench.py).
 *
 * The database must already exist at the current schema: create it by starting
 * cinemon-collector on it once, or with `cinemon-collector -c INI token add --operator NAME`
 * (which also gives the benchmark its read token). dashgen then writes straight into the
 * tables, in large transactions with the journal off (the file is not in use meanwhile), and
 * puts the file back into WAL mode at the end:
 *
 *   sites      ~screens/per_site cinemas over 31 provinces, 3..9 cities each, 8 chains
 *              (a third of the cinemas independent)
 *   screens    hall1..hallN per cinema (1 in 20 a review room, 1 in 10 an LED screen)
 *   devices    per screen a projector, a sound processor, a media server and a light and
 *              sound sensor, 95 % of them seen in the last minutes
 *   series     16 per screen: screen_luminance_nits{mode=2d}, white_x, white_y,
 *              spl_dbc{channel} x 6, light_source_hours{lamp=1}, temperature_celsius{sensor}
 *              x 3, power_state, audio_fader_level, playback_state; each with its latest value
 *   alerts     ~3 % of the screens with an active (firing) alert of some severity
 *   compliance today's luminance, white and spl figures of every screen
 *   rollup_1h  `days` of hourly roll-ups (n = 60 samples each) for the luminance and the six
 *              SPL series of every screen (see --year-series and --full-every)
 *
 * usage: dashgen --db FILE [--screens 10000] [--per-site 5] [--days 365]
 *                [--year-series lum|lum,spl|all] [--full-every K] [--seed 1] [--now-ms MS]
 * --year-series: which series of every screen get the days of roll-ups (default lum,spl);
 * --full-every K: every K-th cinema gets them for all 16 series of its screens.
 * Prints one JSON object with the counts, the time of each phase and the file size. */
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
#define SCHEMA_MIN 7
#define SERIES_PER_SCREEN 16
#define TXN_ROWS 2000000 /* roll-up rows per transaction */

static const char *const provinces[31] = {
    "Beijing",      "Tianjin",  "Hebei",   "Shanxi",   "Inner Mongolia", "Liaoning", "Jilin",
    "Heilongjiang", "Shanghai", "Jiangsu", "Zhejiang", "Anhui",          "Fujian",   "Jiangxi",
    "Shandong",     "Henan",    "Hubei",   "Hunan",    "Guangdong",      "Guangxi",  "Hainan",
    "Chongqing",    "Sichuan",  "Guizhou", "Yunnan",   "Tibet",          "Shaanxi",  "Gansu",
    "Qinghai",      "Ningxia",  "Xinjiang"};
/* relative cinema counts (roughly the screens per province) */
static const int weight[31] = {8, 4, 7,  4, 3, 5, 3,  4, 8, 12, 12, 6, 6, 4, 10, 9,
                               7, 6, 16, 5, 2, 6, 10, 4, 4, 1,  5,  3, 1, 1, 3};
static const char *const capitals[31] = {
    "Beijing",   "Tianjin",   "Shijiazhuang", "Taiyuan",  "Hohhot",    "Shenyang", "Changchun",
    "Harbin",    "Shanghai",  "Nanjing",      "Hangzhou", "Hefei",     "Fuzhou",   "Nanchang",
    "Jinan",     "Zhengzhou", "Wuhan",        "Changsha", "Guangzhou", "Nanning",  "Haikou",
    "Chongqing", "Chengdu",   "Guiyang",      "Kunming",  "Lhasa",     "Xi'an",    "Lanzhou",
    "Xining",    "Yinchuan",  "Urumqi"};
static const char *const chains[8] = {"Wanda", "CGV",  "Jinyi",   "Hengdian",
                                      "Dadi",  "Bona", "Omnijoy", "Stellar"};
static const char *const channels[6] = {"L", "C", "R", "Ls", "Rs", "LFE"};
static const char *const temps[3] = {"dmd", "intake", "exhaust"};

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double urand(void) /* [0, 1) */
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}
static double nrand(void) /* standard normal */
{
    double u = urand(), v = urand();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static sqlite3 *db;

static void die(const char *what)
{
    fprintf(stderr, "dashgen: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
    exit(1);
}

static void exec(const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "dashgen: %s: %s\n", sql, msg ? msg : "?");
        exit(1);
    }
}

static sqlite3_stmt *prep(const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) die(sql);
    return st;
}

static void step(sqlite3_stmt *st)
{
    if (sqlite3_step(st) != SQLITE_DONE) die(sqlite3_sql(st));
    sqlite3_reset(st);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One series of a screen: what it measures and how its values behave. */
typedef struct sdef {
    const char *device, *metric, *labels, *unit;
    double base, sd; /* hourly average: base + drift + noise * sd */
    int year;        /* 1: gets the year of hourly roll-ups by default */
} sdef;

static void day_str(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
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
            rng_state ^= (uint64_t)strtoull(v, NULL, 10) * 0x9E3779B97F4A7C15ULL;
        else if (!strcmp(a, "--now-ms"))
            now = strtoll(v, NULL, 10);
        else {
            fprintf(stderr, "dashgen: unknown option %s\n", a);
            return 2;
        }
    }
    if (!path || screens < 1 || per_site < 1 || per_site > 50 || days < 0 || days > 3650) {
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
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) die(path);
    sqlite3_stmt *v = prep("PRAGMA user_version");
    if (sqlite3_step(v) != SQLITE_ROW || sqlite3_column_int(v, 0) < SCHEMA_MIN) {
        fprintf(stderr,
                "dashgen: %s: schema version %d, need %d or later (start "
                "cinemon-collector on it once first)\n",
                path, sqlite3_column_int(v, 0), SCHEMA_MIN);
        return 1;
    }
    sqlite3_finalize(v);
    v = prep("SELECT count(*) FROM sites");
    if (sqlite3_step(v) != SQLITE_ROW || sqlite3_column_int64(v, 0) != 0) {
        fprintf(stderr, "dashgen: %s already holds sites: start from a fresh database\n", path);
        return 1;
    }
    sqlite3_finalize(v);
    exec("PRAGMA journal_mode = DELETE");
    exec("PRAGMA journal_mode = OFF");
    exec("PRAGMA synchronous = OFF");
    exec("PRAGMA locking_mode = EXCLUSIVE");
    exec("PRAGMA cache_size = -1048576"); /* 1 GiB */

    double t0 = mono_s(), t_inv, t_roll;
    long nsites = (screens + per_site - 1) / per_site;
    int wsum = 0;
    for (int p = 0; p < 31; p++)
        wsum += weight[p];

    sqlite3_stmt *site = prep("INSERT INTO sites(code, name, province, city, chain, created_ms)"
                              " VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    sqlite3_stmt *scr = prep("INSERT INTO screens(site, screen, name, class, display, format,"
                             " spl_ref, updated_ms, updated_by) VALUES(?1, ?2, ?3, ?4, ?5, ?6,"
                             " ?7, ?8, 'dashgen')");
    sqlite3_stmt *dev = prep("INSERT INTO devices(id, site, device_id, screen, kind, vendor, model,"
                             " serial, firmware, profile, first_seen_ms, last_seen_ms)"
                             " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '1.0', ?9, ?10, ?11)");
    sqlite3_stmt *ser = prep("INSERT INTO series(id, device_ref, metric, labels, unit)"
                             " VALUES(?1, ?2, ?3, ?4, ?5)");
    sqlite3_stmt *lat = prep("INSERT INTO latest(series_id, ts_ms, value) VALUES(?1, ?2, ?3)");
    sqlite3_stmt *alr =
        prep("INSERT INTO alerts(rule, site, screen, device, labels, severity, state, value,"
             " threshold, text, started_ms, firing_ms, updated_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6,"
             " 'firing', ?7, ?8, ?9, ?10, ?10, ?10)");
    sqlite3_stmt *cmp = prep("INSERT INTO compliance(site, screen, day, quantity, in_ms,"
                             " measured_ms, updated_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");

    char today[40];
    day_str(now, today, sizeof today);
    int64_t day_start = now - now % DAY_MS;
    int64_t dev_id = 0, ser_id = 0, nscreens = 0, nalerts = 0, nlatest = 0, ncomp = 0;
    int64_t nroll = 0;

    /* the series of one screen (device ids filled per hall) */
    sdef defs[SERIES_PER_SCREEN];
    char labels[SERIES_PER_SCREEN][64];
    int nd = 0;
    defs[nd++] = (sdef){"sensor", "screen_luminance_nits", "{\"mode\":\"2d\"}", "nits", 48, 1.2, 1};
    defs[nd++] = (sdef){"sensor", "white_x", "{}", NULL, 0.314, 0.0015, 0};
    defs[nd++] = (sdef){"sensor", "white_y", "{}", NULL, 0.351, 0.0015, 0};
    for (int c = 0; c < 6; c++) {
        snprintf(labels[nd], sizeof labels[nd], "{\"channel\":\"%s\"}", channels[c]);
        defs[nd] = (sdef){"sensor", "spl_dbc", labels[nd], "dB", c >= 3 && c < 5 ? 82 : 85, 0.7, 1};
        nd++;
    }
    defs[nd++] = (sdef){"projector", "light_source_hours", "{\"lamp\":\"1\"}", "h", 0, 0, 0};
    for (int t = 0; t < 3; t++) {
        snprintf(labels[nd], sizeof labels[nd], "{\"sensor\":\"%s\"}", temps[t]);
        defs[nd] = (sdef){"projector",
                          "temperature_celsius",
                          labels[nd],
                          "Cel",
                          t == 0 ? 52 : t == 1 ? 24 : 38,
                          1.5,
                          0};
        nd++;
    }
    defs[nd++] = (sdef){"projector", "power_state", "{}", NULL, 1, 0, 0};
    defs[nd++] = (sdef){"audio", "audio_fader_level", "{}", NULL, 7, 0, 0};
    defs[nd++] = (sdef){"ims", "playback_state", "{}", NULL, 2, 0, 0};
    static const struct {
        const char *slot, *kind, *vendor, *model, *profile;
    } devdefs[4] = {{"projector", "projector", "Christie", "CP2220", "christie-cp-series2"},
                    {"audio", "audio_processor", "Dolby", "CP750", "dolby-cp750"},
                    {"ims", "media_block", "Dolby", "IMS3000", "dolby-ims-soap"},
                    {"sensor", "light_sensor", "cinemon", "sim-sensor", "light-sound-sensor-http"}};

    exec("BEGIN");
    long s_done = 0;
    for (int p = 0; p < 31; p++) {
        long ncin = (long)((double)nsites * weight[p] / wsum + 0.5);
        if (p == 30) ncin = nsites - s_done;
        if (ncin <= 0) continue;
        int ncities = 3 + (int)(rnd() % 7);
        for (long k = 0; k < ncin; k++, s_done++) {
            char code[32], name[64], city[64];
            snprintf(code, sizeof code, "%02d%06ld", p + 11, k + 1);
            snprintf(name, sizeof name, "%s Cinema %ld", capitals[p], k + 1);
            int ci = (int)(k % (ncities + 2)); /* the capital has three shares of cinemas */
            if (ci < 3)
                snprintf(city, sizeof city, "%s", capitals[p]);
            else
                snprintf(city, sizeof city, "%s-%d", provinces[p], ci - 1);
            int ch = (int)(rnd() % 12);
            sqlite3_bind_text(site, 1, code, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(site, 2, name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(site, 3, provinces[p], -1, SQLITE_STATIC);
            sqlite3_bind_text(site, 4, city, -1, SQLITE_TRANSIENT);
            if (ch < 8)
                sqlite3_bind_text(site, 5, chains[ch], -1, SQLITE_STATIC);
            else
                sqlite3_bind_null(site, 5);
            sqlite3_bind_int64(site, 6, now - 400 * DAY_MS);
            step(site);
            long halls = per_site;
            if (nscreens + halls > screens) halls = screens - nscreens;
            for (long h = 1; h <= halls; h++, nscreens++) {
                char hall[32], hname[40];
                snprintf(hall, sizeof hall, "hall%ld", h);
                snprintf(hname, sizeof hname, "Hall %ld", h);
                int review = rnd() % 20 == 0, led = rnd() % 10 == 0;
                sqlite3_bind_text(scr, 1, code, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(scr, 2, hall, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(scr, 3, hname, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(scr, 4, review ? "review" : "theatre", -1, SQLITE_STATIC);
                sqlite3_bind_text(scr, 5, led ? "led" : "projection", -1, SQLITE_STATIC);
                sqlite3_bind_text(scr, 6, h == 1 ? "IMAX" : "2D/3D", -1, SQLITE_STATIC);
                sqlite3_bind_text(scr, 7,
                                  "{\"L\":85,\"C\":85,\"R\":85,\"Ls\":82,\"Rs\":82,\"LFE\":91}", -1,
                                  SQLITE_STATIC);
                sqlite3_bind_int64(scr, 8, now - 30 * DAY_MS);
                step(scr);
                int reporting = rnd() % 20 != 0;
                int64_t seen = reporting ? now - (int64_t)(rnd() % 120000)
                                         : now - 3600000 - (int64_t)(rnd() % (3 * DAY_MS));
                int64_t devref[4];
                for (int d = 0; d < 4; d++) {
                    char did[48], serial[32];
                    snprintf(did, sizeof did, "%s/%s", hall, devdefs[d].slot);
                    snprintf(serial, sizeof serial, "SN%08llx", (unsigned long long)(rnd() >> 32));
                    devref[d] = ++dev_id;
                    sqlite3_bind_int64(dev, 1, dev_id);
                    sqlite3_bind_text(dev, 2, code, -1, SQLITE_TRANSIENT);
                    sqlite3_bind_text(dev, 3, did, -1, SQLITE_TRANSIENT);
                    sqlite3_bind_text(dev, 4, hall, -1, SQLITE_TRANSIENT);
                    sqlite3_bind_text(dev, 5, devdefs[d].kind, -1, SQLITE_STATIC);
                    sqlite3_bind_text(dev, 6, devdefs[d].vendor, -1, SQLITE_STATIC);
                    sqlite3_bind_text(dev, 7, devdefs[d].model, -1, SQLITE_STATIC);
                    sqlite3_bind_text(dev, 8, serial, -1, SQLITE_TRANSIENT);
                    sqlite3_bind_text(dev, 9, devdefs[d].profile, -1, SQLITE_STATIC);
                    sqlite3_bind_int64(dev, 10, now - 400 * DAY_MS);
                    sqlite3_bind_int64(dev, 11, seen);
                    step(dev);
                }
                double lum_offset = nrand() * 3.0, hours = 2000 + urand() * 18000;
                for (int k2 = 0; k2 < nd; k2++) {
                    const sdef *sd = &defs[k2];
                    int d = !strcmp(sd->device, "projector") ? 0
                            : !strcmp(sd->device, "audio")   ? 1
                            : !strcmp(sd->device, "ims")     ? 2
                                                             : 3;
                    ++ser_id;
                    sqlite3_bind_int64(ser, 1, ser_id);
                    sqlite3_bind_int64(ser, 2, devref[d]);
                    sqlite3_bind_text(ser, 3, sd->metric, -1, SQLITE_STATIC);
                    sqlite3_bind_text(ser, 4, sd->labels, -1, SQLITE_STATIC);
                    if (sd->unit)
                        sqlite3_bind_text(ser, 5, sd->unit, -1, SQLITE_STATIC);
                    else
                        sqlite3_bind_null(ser, 5);
                    step(ser);
                    double val = sd->base + nrand() * sd->sd;
                    if (k2 == 0) val += lum_offset;
                    if (!strcmp(sd->metric, "light_source_hours")) val = floor(hours);
                    sqlite3_bind_int64(lat, 1, ser_id);
                    sqlite3_bind_int64(lat, 2, seen);
                    sqlite3_bind_double(lat, 3, val);
                    step(lat);
                    nlatest++;
                }
                /* an active alert on ~3 % of the screens */
                if (rnd() % 33 == 0) {
                    static const char *const sev[3] = {"critical", "warning", "info"};
                    int sv = (int)(rnd() % 3);
                    char did[48];
                    snprintf(did, sizeof did, "%s/%s", hall, sv == 0 ? "projector" : "sensor");
                    sqlite3_bind_text(alr, 1, sv == 0 ? "lamp_end_of_life" : "screen_luminance", -1,
                                      SQLITE_STATIC);
                    sqlite3_bind_text(alr, 2, code, -1, SQLITE_TRANSIENT);
                    sqlite3_bind_text(alr, 3, hall, -1, SQLITE_TRANSIENT);
                    sqlite3_bind_text(alr, 4, did, -1, SQLITE_TRANSIENT);
                    sqlite3_bind_text(alr, 5, sv == 0 ? "{\"lamp\":\"1\"}" : "{\"mode\":\"2d\"}",
                                      -1, SQLITE_STATIC);
                    sqlite3_bind_text(alr, 6, sev[sv], -1, SQLITE_STATIC);
                    sqlite3_bind_double(alr, 7, sv == 0 ? 19950 : 35.2);
                    sqlite3_bind_double(alr, 8, sv == 0 ? 19000 : 37.8);
                    sqlite3_bind_text(alr, 9, "generated by dashgen", -1, SQLITE_STATIC);
                    sqlite3_bind_int64(alr, 10, now - (int64_t)(rnd() % (2 * DAY_MS)));
                    step(alr);
                    nalerts++;
                }
                /* today's compliance figures */
                static const char *const qty[3] = {"luminance", "white", "spl"};
                int64_t measured = now - day_start;
                for (int q = 0; q < 3 && measured > 0 && reporting; q++) {
                    double share = urand() < 0.85 ? 1.0 : urand();
                    sqlite3_bind_text(cmp, 1, code, -1, SQLITE_TRANSIENT);
                    sqlite3_bind_text(cmp, 2, hall, -1, SQLITE_TRANSIENT);
                    sqlite3_bind_text(cmp, 3, today, -1, SQLITE_TRANSIENT);
                    sqlite3_bind_text(cmp, 4, qty[q], -1, SQLITE_STATIC);
                    sqlite3_bind_int64(cmp, 5, (int64_t)(measured * share));
                    sqlite3_bind_int64(cmp, 6, measured);
                    sqlite3_bind_int64(cmp, 7, now);
                    step(cmp);
                    ncomp++;
                }
            }
        }
    }
    exec("COMMIT");
    t_inv = mono_s() - t0;

    /* hourly roll-ups, series by series in key order: one INSERT ... SELECT over a counter
     * per series (the values are made by SQLite itself: no bind and step per row) */
    double t1 = mono_s();
    int64_t first_hour = (now / HOUR_MS) * HOUR_MS - (int64_t)days * DAY_MS;
    int64_t nhours = (int64_t)days * 24;
    sqlite3_stmt *roll =
        prep("WITH RECURSIVE h(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM h WHERE i < ?2 - 1)"
             " INSERT INTO rollup_1h(series_id, bucket_ms, n, sum, min, max)"
             " SELECT ?1, ?3 + i * 3600000, 60, 60 * v, v - s, v + s FROM (SELECT i,"
             " ?4 + ?5 * (?2 - i) / ?2 + ?7 * i + ?6 * ((random() % 1000000) / 1000000.0) AS v,"
             " ?6 * (0.1 + abs(random() % 1000000) / 1000000.0) + ?8 AS s FROM h)");
    exec("BEGIN");
    int64_t in_txn = 0;
    for (int64_t sid = 1; sid <= ser_id && days > 0; sid++) {
        const sdef *sd = &defs[(sid - 1) % nd];
        int64_t site_no = (sid - 1) / nd / per_site; /* 0-based cinema of the series */
        int full = full_every && site_no % full_every == 0;
        if (!(which == 2 || full || (which == 1 ? sd->year : (sid - 1) % nd == 0))) continue;
        int hours = !strcmp(sd->metric, "light_source_hours");
        sqlite3_bind_int64(roll, 1, sid);
        sqlite3_bind_int64(roll, 2, nhours);
        sqlite3_bind_int64(roll, 3, first_hour);
        sqlite3_bind_double(roll, 4,
                            hours ? 2000 + urand() * 18000
                                  : sd->base + nrand() * (sd->sd * 2) +
                                        (sd->base > 40 && sd->base < 60 ? nrand() * 2 : 0));
        sqlite3_bind_double(roll, 5, hours ? 0 : sd->sd * 2); /* ageing: higher a year ago */
        sqlite3_bind_double(roll, 6, sd->sd * 0.5);
        sqlite3_bind_double(roll, 7, hours ? 1.0 : 0.0);
        sqlite3_bind_double(roll, 8, hours ? 0.5 : 0.0);
        step(roll);
        nroll += sqlite3_changes(db);
        in_txn += nhours;
        if (in_txn >= TXN_ROWS) {
            exec("COMMIT");
            exec("BEGIN");
            in_txn = 0;
            fprintf(stderr, "dashgen: %lld roll-up rows (%.0f/s)\n", (long long)nroll,
                    nroll / (mono_s() - t1));
        }
    }
    exec("COMMIT");
    t_roll = mono_s() - t1;
    sqlite3_stmt *all[] = {site, scr, dev, ser, lat, alr, cmp, roll};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    exec("PRAGMA locking_mode = NORMAL");
    sqlite3_stmt *w = prep("PRAGMA journal_mode = WAL");
    if (sqlite3_step(w) != SQLITE_ROW) die("journal_mode = WAL");
    sqlite3_finalize(w);
    sqlite3_close(db);
    struct stat stb;
    long long size = stat(path, &stb) == 0 ? (long long)stb.st_size : -1;
    printf("{\"sites\": %ld, \"screens\": %lld, \"devices\": %lld, \"series\": %lld, "
           "\"latest\": %lld, \"alerts\": %lld, \"compliance\": %lld, \"rollup_1h\": %lld, "
           "\"rollup_days\": %ld, \"year_series\": \"%s\", \"full_every\": %ld, \"now_ms\": %lld, "
           "\"inventory_s\": %.2f, "
           "\"rollup_s\": %.2f, \"total_s\": %.2f, \"bytes\": %lld}\n",
           nsites, (long long)nscreens, (long long)dev_id, (long long)ser_id, (long long)nlatest,
           (long long)nalerts, (long long)ncomp, (long long)nroll, days,
           which == 0   ? "lum"
           : which == 1 ? "lum,spl"
                        : "all",
           full_every, (long long)now, t_inv, t_roll, mono_s() - t0, size);
    return 0;
}

/* dashgen_fleet.h — the national fleet of the dashboard benchmark, shared by its two loaders:
 * bench/dashgen.c (SQLite) and bench/dashgen_pg.c (PostgreSQL). Header only (every .c file
 * of bench/ is a program of its own): the pseudo-random generator, the series of a screen and the
 * inventory (cinemas, halls, devices, series with latest values, firing alerts, today's
 * compliance), handed row by row to the loader's sink.
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
 *
 * Series ids are 1.. in generation order: the series of site number k (0-based), screen h
 * (0-based) and definition d are id k * per_site * FLEET_SERIES + h * FLEET_SERIES + d + 1
 * (every cinema but maybe the last has per_site screens). Device ids likewise with 4. */
#ifndef CINEMON_BENCH_DASHGEN_FLEET_H
#define CINEMON_BENCH_DASHGEN_FLEET_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define FLEET_HOUR_MS 3600000LL
#define FLEET_DAY_MS 86400000LL
#define FLEET_SERIES 16 /* per screen */
#define FLEET_DEVICES 4 /* per screen */

/* ---------------------------------------------------------------- random numbers */

static uint64_t fleet_rng = 88172645463325252ULL;

/* The next xorshift64 value. */
static uint64_t fleet_rnd(void)
{
    fleet_rng ^= fleet_rng << 13;
    fleet_rng ^= fleet_rng >> 7;
    fleet_rng ^= fleet_rng << 17;
    return fleet_rng;
}

/* Uniform in [0, 1). */
static double fleet_urand(void)
{
    return (double)(fleet_rnd() >> 11) / 9007199254740992.0;
}

/* Standard normal (Box-Muller). */
static double fleet_nrand(void)
{
    double u = fleet_urand(), v = fleet_urand();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

/* Mix a seed into the generator. */
static void fleet_seed(uint64_t seed)
{
    fleet_rng ^= seed * 0x9E3779B97F4A7C15ULL;
}

/* ---------------------------------------------------------------- the model */

/* One series of a screen: what it measures and how its hourly averages behave. */
typedef struct fleet_sdef {
    int device; /* index into fleet_devdefs */
    const char *metric, *labels, *unit;
    double base, sd; /* hourly average: base + drift + noise * sd */
    int spl;         /* 1: an SPL channel (--year-series lum,spl) */
} fleet_sdef;

/* One device of a screen. */
typedef struct fleet_devdef {
    const char *slot, *kind, *vendor, *model, *profile;
} fleet_devdef;

static const fleet_devdef fleet_devdefs[FLEET_DEVICES] = {
    {"projector", "projector", "Christie", "CP2220", "christie-cp-series2"},
    {"audio", "audio_processor", "Dolby", "CP750", "dolby-cp750"},
    {"ims", "media_block", "Dolby", "IMS3000", "dolby-ims-soap"},
    {"sensor", "light_sensor", "cinemon", "sim-sensor", "light-sound-sensor-http"}};

/* The 16 series of every screen; [0] is the luminance. */
static const fleet_sdef fleet_sdefs[FLEET_SERIES] = {
    {3, "screen_luminance_nits", "{\"mode\":\"2d\"}", "nits", 48, 1.2, 0},
    {3, "white_x", "{}", NULL, 0.314, 0.0015, 0},
    {3, "white_y", "{}", NULL, 0.351, 0.0015, 0},
    {3, "spl_dbc", "{\"channel\":\"L\"}", "dB", 85, 0.7, 1},
    {3, "spl_dbc", "{\"channel\":\"C\"}", "dB", 85, 0.7, 1},
    {3, "spl_dbc", "{\"channel\":\"R\"}", "dB", 85, 0.7, 1},
    {3, "spl_dbc", "{\"channel\":\"Ls\"}", "dB", 82, 0.7, 1},
    {3, "spl_dbc", "{\"channel\":\"Rs\"}", "dB", 82, 0.7, 1},
    {3, "spl_dbc", "{\"channel\":\"LFE\"}", "dB", 85, 0.7, 1},
    {0, "light_source_hours", "{\"lamp\":\"1\"}", "h", 0, 0, 0},
    {0, "temperature_celsius", "{\"sensor\":\"dmd\"}", "Cel", 52, 1.5, 0},
    {0, "temperature_celsius", "{\"sensor\":\"intake\"}", "Cel", 24, 1.5, 0},
    {0, "temperature_celsius", "{\"sensor\":\"exhaust\"}", "Cel", 38, 1.5, 0},
    {0, "power_state", "{}", NULL, 1, 0, 0},
    {1, "audio_fader_level", "{}", NULL, 7, 0, 0},
    {2, "playback_state", "{}", NULL, 2, 0, 0}};

/* How the hourly roll-ups of one series evolve over `nhours` hours (bucket i = 0 the oldest):
 * avg = v0 + drift * (nhours - i) / nhours + inc * i + noise * u, u uniform in (-1, 1);
 * half-spread s = noise * (0.1 + |u'|) + s_add; n = 60, sum = 60 avg, min/max = avg -/+ s. */
typedef struct fleet_curve {
    double v0, drift, inc, noise, s_add;
} fleet_curve;

/* Draw the roll-up curve of a series of definition d. */
static fleet_curve fleet_curve_of(const fleet_sdef *d)
{
    fleet_curve c;
    int hours = !strcmp(d->metric, "light_source_hours");
    c.v0 = hours ? 2000 + fleet_urand() * 18000
                 : d->base + fleet_nrand() * (d->sd * 2) +
                       (d->base > 40 && d->base < 60 ? fleet_nrand() * 2 : 0);
    c.drift = hours ? 0 : d->sd * 2; /* ageing: higher a year ago */
    c.noise = d->sd * 0.5;
    c.inc = hours ? 1.0 : 0.0;
    c.s_add = hours ? 0.5 : 0.0;
    return c;
}

/* "YYYY-MM-DD" of a UTC time in ms. */
static void fleet_day_str(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* ---------------------------------------------------------------- the inventory */

/* Where the rows go: each function returns 0, or -1 to stop the generation. */
typedef struct fleet_sink {
    void *ctx;
    int (*site)(void *ctx, const char *code, const char *name, const char *province,
                const char *city, const char *chain, int64_t created_ms);
    int (*screen)(void *ctx, const char *site, const char *screen, const char *name,
                  const char *cls, const char *display, const char *format, const char *spl_ref,
                  int64_t updated_ms);
    int (*device)(void *ctx, int64_t id, const char *site, const char *device_id,
                  const char *screen, const fleet_devdef *d, const char *serial,
                  int64_t first_seen_ms, int64_t last_seen_ms);
    /* a series and its latest value */
    int (*series)(void *ctx, int64_t id, int64_t device_ref, const fleet_sdef *d, int64_t ts_ms,
                  double value);
    int (*alert)(void *ctx, const char *rule, const char *site, const char *screen,
                 const char *device, const char *labels, const char *severity, double value,
                 double threshold, int64_t started_ms);
    int (*compliance)(void *ctx, const char *site, const char *screen, const char *day,
                      const char *quantity, int64_t in_ms, int64_t measured_ms, int64_t updated_ms);
} fleet_sink;

/* What the inventory holds. */
typedef struct fleet_counts {
    long sites;
    int64_t screens, devices, series, alerts, compliance;
} fleet_counts;

static const char *const fleet_provinces[31] = {
    "Beijing",      "Tianjin",  "Hebei",   "Shanxi",   "Inner Mongolia", "Liaoning", "Jilin",
    "Heilongjiang", "Shanghai", "Jiangsu", "Zhejiang", "Anhui",          "Fujian",   "Jiangxi",
    "Shandong",     "Henan",    "Hubei",   "Hunan",    "Guangdong",      "Guangxi",  "Hainan",
    "Chongqing",    "Sichuan",  "Guizhou", "Yunnan",   "Tibet",          "Shaanxi",  "Gansu",
    "Qinghai",      "Ningxia",  "Xinjiang"};
/* relative cinema counts (roughly the screens per province) */
static const int fleet_weight[31] = {8, 4, 7,  4, 3, 5, 3,  4, 8, 12, 12, 6, 6, 4, 10, 9,
                                     7, 6, 16, 5, 2, 6, 10, 4, 4, 1,  5,  3, 1, 1, 3};
static const char *const fleet_capitals[31] = {
    "Beijing",   "Tianjin",   "Shijiazhuang", "Taiyuan",  "Hohhot",    "Shenyang", "Changchun",
    "Harbin",    "Shanghai",  "Nanjing",      "Hangzhou", "Hefei",     "Fuzhou",   "Nanchang",
    "Jinan",     "Zhengzhou", "Wuhan",        "Changsha", "Guangzhou", "Nanning",  "Haikou",
    "Chongqing", "Chengdu",   "Guiyang",      "Kunming",  "Lhasa",     "Xi'an",    "Lanzhou",
    "Xining",    "Yinchuan",  "Urumqi"};
static const char *const fleet_chains[8] = {"Wanda", "CGV",  "Jinyi",   "Hengdian",
                                            "Dadi",  "Bona", "Omnijoy", "Stellar"};

/* The devices, series with latest values, alert and compliance rows of one hall. */
static int fleet_hall(const fleet_sink *k, const char *code, long h, int64_t now, int64_t day_start,
                      const char *today, fleet_counts *c)
{
    char hall[32], hname[40];
    snprintf(hall, sizeof hall, "hall%ld", h);
    snprintf(hname, sizeof hname, "Hall %ld", h);
    int review = fleet_rnd() % 20 == 0, led = fleet_rnd() % 10 == 0;
    if (k->screen(k->ctx, code, hall, hname, review ? "review" : "theatre",
                  led ? "led" : "projection", h == 1 ? "IMAX" : "2D/3D",
                  "{\"L\":85,\"C\":85,\"R\":85,\"Ls\":82,\"Rs\":82,\"LFE\":91}",
                  now - 30 * FLEET_DAY_MS) < 0)
        return -1;
    c->screens++;
    int reporting = fleet_rnd() % 20 != 0;
    int64_t seen = reporting ? now - (int64_t)(fleet_rnd() % 120000)
                             : now - 3600000 - (int64_t)(fleet_rnd() % (3 * FLEET_DAY_MS));
    int64_t devref[FLEET_DEVICES];
    for (int d = 0; d < FLEET_DEVICES; d++) {
        char did[48], serial[32];
        snprintf(did, sizeof did, "%s/%s", hall, fleet_devdefs[d].slot);
        snprintf(serial, sizeof serial, "SN%08llx", (unsigned long long)(fleet_rnd() >> 32));
        devref[d] = ++c->devices;
        if (k->device(k->ctx, devref[d], code, did, hall, &fleet_devdefs[d], serial,
                      now - 400 * FLEET_DAY_MS, seen) < 0)
            return -1;
    }
    double lum_offset = fleet_nrand() * 3.0, hours = 2000 + fleet_urand() * 18000;
    for (int i = 0; i < FLEET_SERIES; i++) {
        const fleet_sdef *sd = &fleet_sdefs[i];
        double val = sd->base + fleet_nrand() * sd->sd;
        if (i == 0) val += lum_offset;
        if (!strcmp(sd->metric, "light_source_hours")) val = floor(hours);
        if (k->series(k->ctx, ++c->series, devref[sd->device], sd, seen, val) < 0) return -1;
    }
    if (fleet_rnd() % 33 == 0) { /* an active alert on ~3 % of the screens */
        static const char *const sev[3] = {"critical", "warning", "info"};
        int sv = (int)(fleet_rnd() % 3);
        char did[48];
        snprintf(did, sizeof did, "%s/%s", hall, sv == 0 ? "projector" : "sensor");
        if (k->alert(k->ctx, sv == 0 ? "lamp_end_of_life" : "screen_luminance", code, hall, did,
                     sv == 0 ? "{\"lamp\":\"1\"}" : "{\"mode\":\"2d\"}", sev[sv],
                     sv == 0 ? 19950 : 35.2, sv == 0 ? 19000 : 37.8,
                     now - (int64_t)(fleet_rnd() % (2 * FLEET_DAY_MS))) < 0)
            return -1;
        c->alerts++;
    }
    static const char *const qty[3] = {"luminance", "white", "spl"};
    int64_t measured = now - day_start;
    for (int q = 0; q < 3 && measured > 0 && reporting; q++) { /* today's compliance */
        double share = fleet_urand() < 0.85 ? 1.0 : fleet_urand();
        if (k->compliance(k->ctx, code, hall, today, qty[q], (int64_t)(measured * share), measured,
                          now) < 0)
            return -1;
        c->compliance++;
    }
    return 0;
}

/* The whole inventory of `screens` screens, per_site per cinema, at time now (ms), into k.
 * 0, or -1 when the sink refused a row. */
static int fleet_generate(long screens, long per_site, int64_t now, const fleet_sink *k,
                          fleet_counts *c)
{
    memset(c, 0, sizeof *c);
    long nsites = (screens + per_site - 1) / per_site, done = 0;
    int wsum = 0;
    for (int p = 0; p < 31; p++)
        wsum += fleet_weight[p];
    char today[40];
    fleet_day_str(now, today, sizeof today);
    int64_t day_start = now - now % FLEET_DAY_MS;
    for (int p = 0; p < 31; p++) {
        long ncin = (long)((double)nsites * fleet_weight[p] / wsum + 0.5);
        if (p == 30) ncin = nsites - done;
        if (ncin <= 0) continue;
        int ncities = 3 + (int)(fleet_rnd() % 7);
        for (long i = 0; i < ncin; i++, done++) {
            char code[32], name[64], city[64];
            snprintf(code, sizeof code, "%02d%06ld", p + 11, i + 1);
            snprintf(name, sizeof name, "%s Cinema %ld", fleet_capitals[p], i + 1);
            int ci = (int)(i % (ncities + 2)); /* the capital has three shares of cinemas */
            if (ci < 3)
                snprintf(city, sizeof city, "%s", fleet_capitals[p]);
            else
                snprintf(city, sizeof city, "%s-%d", fleet_provinces[p], ci - 1);
            int ch = (int)(fleet_rnd() % 12);
            if (k->site(k->ctx, code, name, fleet_provinces[p], city,
                        ch < 8 ? fleet_chains[ch] : NULL, now - 400 * FLEET_DAY_MS) < 0)
                return -1;
            c->sites++;
            long halls = per_site;
            if (c->screens + halls > screens) halls = screens - c->screens;
            for (long h = 1; h <= halls; h++)
                if (fleet_hall(k, code, h, now, day_start, today, c) < 0) return -1;
        }
    }
    return 0;
}

#endif

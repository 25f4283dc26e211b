/* model.c — the simulated device models (see model.h). */
#include "model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rng.h"

static sim_model MODELS[SIM_NMODELS] = {
    {.name = "christie-cp-series2",
     .profile = "christie-cp-series2",
     .kind = "projector",
     .role = "projector"},
    {.name = "linux-media-server", .profile = "generic-snmp-host", .kind = "server", .role = "ims"},
    {.name = "barco-dcinema-s2",
     .profile = "barco-dcinema-s2",
     .kind = "projector",
     .role = "projector"},
    {.name = "sim-bench", .profile = "sim-bench", .kind = "other", .role = "bench"},
};

enum {
    V_SYSDESCR = 1,
    V_SYSOBJECTID,
    V_SYSUPTIME,
    V_SYSCONTACT,
    V_SYSNAME,
    V_SYSLOCATION,
    /* Christie */
    V_C_MODEL,
    V_C_SERIAL,
    V_C_FIRMWARE,
    V_C_LAMPHOURS,
    V_C_ENCLOSURE,
    V_C_SECURITY,
    V_C_MARRIAGE,
    V_C_TEMP_INDEX,
    V_C_TEMP_NAME,
    V_C_TEMP_VALUE,
    V_C_IL_INDEX,
    V_C_IL_NAME,
    V_C_IL_STATE,
    /* host */
    V_H_IFNUMBER,
    V_H_IFINDEX,
    V_H_IFDESCR,
    V_H_IFTYPE,
    V_H_IFSPEED,
    V_H_IFOPER,
    V_H_IFIN,
    V_H_IFOUT,
    V_H_ST_INDEX,
    V_H_ST_TYPE,
    V_H_ST_DESCR,
    V_H_ST_UNITS,
    V_H_ST_SIZE,
    V_H_ST_USED,
    V_H_CPU_FRW,
    V_H_CPU_LOAD,
    V_H_MEMTOTAL,
    V_H_MEMAVAIL,
    V_H_LA_INDEX,
    V_H_LA_NAME,
    V_H_LA_INT,
    /* Barco (row: sensor table << 8 | sensor) */
    V_B_SERIAL,
    V_B_TI_VERSION,
    V_B_TI_SERIAL,
    V_B_ENIGMA_VERSION,
    V_B_ENIGMA_SERIAL,
    V_B_LAMP_SERIAL,
    V_B_LAMP_ARTICLE,
    V_B_LASER_POWER,
    V_B_RUNTIME,
    V_B_POWER,
    V_B_S_VALUE,
    V_B_S_LOWWARN,
    V_B_S_HIGHCRIT,
    V_B_S_HIGHWARN,
    V_B_S_ALARM,
    V_B_S_NAME,
    /* bench (row: scalar number, or column << 8 | row) */
    V_X_SCALAR,
    V_X_CELL,
};

#define C_ROOT "1.3.6.1.4.1.25766.1.12.1"
static const char *const TEMP_NAMES[] = {
    "Lamp House", "Exhaust",      "Intake",   "DMD Red",       "DMD Green",   "DMD Blue",
    "Formatter",  "Power Supply", "Ballast",  "LVPS",          "Prism",       "Integrator",
    "Lens Mount", "ICP Board",    "IMB Slot", "Ambient Front", "Ambient Rear"};
#define NTEMP 17
static const double TEMP_BASE[NTEMP] = {55, 45, 24, 40, 41, 42, 38, 44, 50,
                                        39, 36, 48, 30, 43, 46, 23, 27};
static const double TEMP_LOAD[NTEMP] = {30, 22, 2,  14, 14, 15, 8, 12, 18,
                                        9,  10, 20, 5,  8,  10, 1, 4};
static const char *const IL_NAMES[] = {"Lamp Door", "Service Door", "Top Cover", "Lens Mount"};
#define NIL 4
#define B_ROOT "1.3.6.1.4.1.12612.220.11"
/* Barco sensor tables B_ROOT.4.2.1.{1 temperature (C), 2 voltage (mV), 3 fan (RPM)}.1 */
#define NBT 8
#define NBV 4
#define NBF 4
#define B_HOT 2         /* the lamp house sensor of the temperature table */
#define HOT_WARN_C 86.0 /* lamp house warning limit (both projector models) */
static const char *const BT_NAMES[NBT] = {"Ambient",  "Lamp House", "DMD Red", "DMD Green",
                                          "DMD Blue", "Formatter",  "Exhaust", "Power Supply"};
static const double BT_BASE[NBT] = {23, 55, 40, 41, 42, 38, 45, 44};
static const double BT_LOAD[NBT] = {1, 30, 14, 14, 15, 8, 22, 12};
static const char *const BV_NAMES[NBV] = {"+12V", "+5V", "+3.3V", "+24V"};
static const double BV_BASE[NBV] = {12000, 5000, 3300, 24000};
static const char *const BF_NAMES[NBF] = {"Lamp Blower", "Exhaust Fan", "Intake Fan",
                                          "Card Cage Fan"};
static const int B_NSENS[4] = {0, NBT, NBV, NBF};
static const char *const IF_NAMES[] = {"lo", "eth0", "eth1"};
#define NIF 3
#define NCPU 4
static const char *const LA_NAMES[] = {"Load-1", "Load-5", "Load-15"};

static void num_val(sim_value *o, uint8_t tag, int64_t v);
static void str_val(sim_value *o, const char *s);
static void fmt_val(sim_value *o, char *scratch, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int add(sim_mib *m, const char *prefix, uint32_t s1, uint32_t s2, int nsuf, uint16_t var,
               uint16_t row)
{
    uint32_t suf[2] = {s1, s2};
    return sim_mib_add(m, prefix, suf, (size_t)nsuf, var, row);
}

static int add_system(sim_mib *m)
{
    int r = 0;
    for (uint32_t i = 1; i <= 6; i++)
        r |= add(m, "1.3.6.1.2.1.1", i, 0, 2, (uint16_t)(V_SYSDESCR + i - 1), 0);
    return r;
}

static int build_christie(sim_mib *m)
{
    int r = add_system(m);
    r |= add(m, C_ROOT ".1.2.1", 0, 0, 1, V_C_MODEL, 0);
    r |= add(m, C_ROOT ".1.2.4", 0, 0, 1, V_C_SERIAL, 0);
    r |= add(m, C_ROOT ".1.2.7", 0, 0, 1, V_C_FIRMWARE, 0);
    r |= add(m, C_ROOT ".1.3.5.1.6", 1, 0, 1, V_C_LAMPHOURS, 0);
    r |= add(m, C_ROOT ".4.2.1.1", 0, 0, 1, V_C_ENCLOSURE, 0);
    r |= add(m, C_ROOT ".4.2.1.2", 0, 0, 1, V_C_SECURITY, 0);
    r |= add(m, C_ROOT ".4.2.1.3", 0, 0, 1, V_C_MARRIAGE, 0);
    for (uint16_t n = 1; n <= NTEMP; n++) {
        r |= add(m, C_ROOT ".4.2.2.1.1.1", n, 0, 1, V_C_TEMP_INDEX, n);
        r |= add(m, C_ROOT ".4.2.2.1.1.2", n, 0, 1, V_C_TEMP_NAME, n);
        r |= add(m, C_ROOT ".4.2.2.1.1.6", n, 0, 1, V_C_TEMP_VALUE, n);
    }
    for (uint16_t n = 1; n <= NIL; n++) {
        r |= add(m, C_ROOT ".4.2.2.3.1.1", n, 0, 1, V_C_IL_INDEX, n);
        r |= add(m, C_ROOT ".4.2.2.3.1.2", n, 0, 1, V_C_IL_NAME, n);
        r |= add(m, C_ROOT ".4.2.2.3.1.3", n, 0, 1, V_C_IL_STATE, n);
    }
    return r;
}

static const uint32_t ST_INDEX[] = {1, 3, 31};
#define NST 3

static int build_host(sim_mib *m)
{
    int r = add_system(m);
    r |= add(m, "1.3.6.1.2.1.2.1", 0, 0, 1, V_H_IFNUMBER, 0);
    static const uint16_t ifcols[][2] = {{1, V_H_IFINDEX}, {2, V_H_IFDESCR}, {3, V_H_IFTYPE},
                                         {5, V_H_IFSPEED}, {8, V_H_IFOPER},  {10, V_H_IFIN},
                                         {16, V_H_IFOUT}};
    for (size_t c = 0; c < sizeof ifcols / sizeof *ifcols; c++)
        for (uint16_t n = 1; n <= NIF; n++)
            r |= add(m, "1.3.6.1.2.1.2.2.1", ifcols[c][0], n, 2, ifcols[c][1], n);
    for (uint16_t c = 1; c <= 6; c++)
        for (uint16_t n = 0; n < NST; n++)
            r |= add(m, "1.3.6.1.2.1.25.2.3.1", c, ST_INDEX[n], 2, (uint16_t)(V_H_ST_INDEX + c - 1),
                     n);
    for (uint16_t n = 0; n < NCPU; n++) {
        r |= add(m, "1.3.6.1.2.1.25.3.3.1.1", 196608u + n, 0, 1, V_H_CPU_FRW, n);
        r |= add(m, "1.3.6.1.2.1.25.3.3.1.2", 196608u + n, 0, 1, V_H_CPU_LOAD, n);
    }
    r |= add(m, "1.3.6.1.4.1.2021.4.5", 0, 0, 1, V_H_MEMTOTAL, 0);
    r |= add(m, "1.3.6.1.4.1.2021.4.6", 0, 0, 1, V_H_MEMAVAIL, 0);
    for (uint16_t n = 1; n <= 3; n++) {
        r |= add(m, "1.3.6.1.4.1.2021.10.1.1", n, 0, 1, V_H_LA_INDEX, n);
        r |= add(m, "1.3.6.1.4.1.2021.10.1.2", n, 0, 1, V_H_LA_NAME, n);
        r |= add(m, "1.3.6.1.4.1.2021.10.1.5", n, 0, 1, V_H_LA_INT, n);
    }
    return r;
}

static int build_barco(sim_mib *m)
{
    int r = add_system(m);
    r |= add(m, B_ROOT ".2.2.1", 0, 0, 1, V_B_SERIAL, 0);
    r |= add(m, B_ROOT ".1.2.12", 0, 0, 1, V_B_TI_VERSION, 0);
    r |= add(m, B_ROOT ".1.2.16", 0, 0, 1, V_B_TI_SERIAL, 0);
    r |= add(m, B_ROOT ".1.2.18", 0, 0, 1, V_B_ENIGMA_VERSION, 0);
    r |= add(m, B_ROOT ".1.2.19", 0, 0, 1, V_B_ENIGMA_SERIAL, 0);
    r |= add(m, B_ROOT ".2.2.4.1", 0, 0, 1, V_B_LAMP_SERIAL, 0);
    r |= add(m, B_ROOT ".2.2.4.2", 0, 0, 1, V_B_LAMP_ARTICLE, 0);
    r |= add(m, B_ROOT ".2.2.4.6", 0, 0, 1, V_B_LASER_POWER, 0);
    r |= add(m, B_ROOT ".2.2.4.8.1.2", 0, 0, 1, V_B_RUNTIME, 0);
    r |= add(m, B_ROOT ".2.2.4.8.1.2", 1, 0, 1, V_B_RUNTIME, 1);
    r |= add(m, B_ROOT ".2.2.5", 0, 0, 1, V_B_POWER, 0);
    static const uint16_t cols[][2] = {{2, V_B_S_VALUE},    {3, V_B_S_LOWWARN}, {4, V_B_S_HIGHCRIT},
                                       {6, V_B_S_HIGHWARN}, {7, V_B_S_ALARM},   {8, V_B_S_NAME}};
    for (uint32_t t = 1; t <= 3; t++)
        for (size_t c = 0; c < sizeof cols / sizeof *cols; c++)
            for (uint32_t n = 1; n <= (uint32_t)B_NSENS[t]; n++) {
                uint32_t suf[4] = {t, 1, cols[c][0], n};
                r |= sim_mib_add(m, B_ROOT ".4.2.1", suf, 4, cols[c][1], (uint16_t)(t << 8 | n));
            }
    return r;
}

static int build_bench(sim_mib *m)
{
    int r = 0;
    for (uint32_t i = 1; i <= SIM_BENCH_SCALARS; i++)
        r |= add(m, SIM_BENCH_ROOT ".1", i, 0, 2, V_X_SCALAR, (uint16_t)i);
    for (uint32_t c = 1; c <= SIM_BENCH_COLS; c++)
        for (uint32_t n = 1; n <= SIM_BENCH_ROWS; n++)
            r |= add(m, SIM_BENCH_ROOT ".2.1", c, n, 2, V_X_CELL, (uint16_t)(c << 8 | n));
    return r;
}

int sim_models_init(char *err, size_t errlen)
{
    int (*build[SIM_NMODELS])(sim_mib *) = {build_christie, build_host, build_barco, build_bench};
    for (int i = 0; i < SIM_NMODELS; i++) {
        if (build[i](&MODELS[i].mib) != 0 || sim_mib_seal(&MODELS[i].mib) != 0) {
            snprintf(err, errlen, "model %s: cannot build its OID table", MODELS[i].name);
            sim_models_free();
            return -1;
        }
    }
    return 0;
}

void sim_models_free(void)
{
    for (int i = 0; i < SIM_NMODELS; i++)
        sim_mib_free(&MODELS[i].mib);
}

const sim_model *sim_model_get(sim_model_id id)
{
    return (unsigned)id < SIM_NMODELS ? &MODELS[id] : NULL;
}

void sim_device_init(sim_device *d, sim_model_id m, int hall, uint64_t seed, int64_t start_ms,
                     double speed)
{
    memset(d, 0, sizeof *d);
    d->model = m;
    d->hall = hall;
    uint64_t s = seed ^ ((uint64_t)hall << 32) ^ (uint64_t)m * 0x51ed27ull;
    d->seed = sim_rng_next(&s);
    d->start_ms = start_ms;
    d->speed = speed > 0 ? speed : 1;
    d->lamp_hours0 = 200 + (double)(sim_rng_next(&s) % 4000);
    d->uptime0_s = (double)(sim_rng_next(&s) % (30 * 86400));
    d->variant = (int)(sim_rng_next(&s) % 3);
    d->fault.rng = sim_rng_next(&s);
}

/* Simulated seconds since the start. */
static double sim_s(const sim_device *d, int64_t now_ms)
{
    double e = (double)(now_ms - d->start_ms) / 1000.0;
    return (e < 0 ? 0 : e) * d->speed;
}

/* Projector load 0..1: shows of 100 min with 20 min breaks, phase per device. */
static double show_load(const sim_device *d, double t)
{
    double period = 7200, phase = (double)(d->seed % 7200);
    double x = fmod(t + phase, period);
    return x < 6000 ? 1.0 : 0.15;
}

double sim_device_lamp_hours(const sim_device *d, int64_t now_ms)
{
    /* the lamp burns during shows only (a dimmed standby otherwise) */
    double burn = sim_s(d, now_ms) * (6000.0 / 7200.0);
    return d->lamp_hours0 + burn / 3600.0;
}

double sim_device_load(const sim_device *d, int64_t now_ms)
{
    return show_load(d, sim_s(d, now_ms));
}

uint32_t sim_device_uptime_ticks(const sim_device *d, int64_t now_ms)
{
    return (uint32_t)fmod((d->uptime0_s + sim_s(d, now_ms)) * 100.0, 4294967296.0);
}

/* Christie temperature sensor row (1-based) at simulated time t. */
static double christie_temp(const sim_device *d, unsigned row, double t)
{
    unsigned i = (row - 1) % NTEMP;
    return TEMP_BASE[i] + TEMP_LOAD[i] * show_load(d, t) +
           1.5 * sim_noise(d->seed, row, (uint64_t)(t / 10));
}

/* Barco sensor n (1-based) of table tb (1 temperature, 2 voltage, 3 fan) at time t. */
static double barco_sensor(const sim_device *d, unsigned tb, unsigned n, double t)
{
    double load = show_load(d, t), z = sim_noise(d->seed, 1000 + tb * 64 + n, (uint64_t)(t / 10));
    unsigned i = n - 1;
    switch (tb) {
    case 1:
        return BT_BASE[i % NBT] + BT_LOAD[i % NBT] * load + 1.5 * z;
    case 2:
        return BV_BASE[i % NBV] * (1 + 0.004 * z);
    default:
        return 1400 + 1500 * load + 60 * z + 100 * i;
    }
}

/* Barco thresholds: low warning, high critical, high warning. */
static void barco_limits(unsigned tb, unsigned n, double lim[3])
{
    unsigned i = n - 1;
    if (tb == 1) {
        double top = BT_BASE[i % NBT] + BT_LOAD[i % NBT];
        lim[0] = 5, lim[1] = top + 8, lim[2] = top + 1; /* lamp house: 94, 86 */
    } else if (tb == 2) {
        double v = BV_BASE[i % NBV];
        lim[0] = v * 0.95, lim[1] = v * 1.1, lim[2] = v * 1.05;
    } else {
        lim[0] = 800, lim[1] = 5500, lim[2] = 5000;
    }
}

double sim_device_hot_temp(const sim_device *d, int64_t now_ms, sim_oid *oid, double *limit)
{
    double t = sim_s(d, now_ms);
    /* the lamp house runs at 85 C in a show; +-1.5 C of noise passes 86 C now and then */
    if (limit) *limit = HOT_WARN_C;
    const char *cell =
        d->model == SIM_MODEL_BARCO ? B_ROOT ".4.2.1.1.1.2.2" : C_ROOT ".4.2.2.1.1.6.1";
    if (oid) sim_oid_parse(cell, oid);
    return d->model == SIM_MODEL_BARCO ? barco_sensor(d, 1, B_HOT, t) : christie_temp(d, 1, t);
}

/* Bench value types, by scalar number or column: Integer, Gauge32, Counter32, Counter64,
 * OCTET STRING (a decimal number as text), TimeTicks (scalars only). */
static void bench_val(const sim_device *d, unsigned k, unsigned idx, double t, sim_value *o,
                      char *scratch, size_t n)
{
    double z = sim_noise(d->seed, 2000 + idx, (uint64_t)(t / 10)), load = show_load(d, t);
    switch (k) {
    case 0:
        num_val(o, SIM_TAG_INT, (int64_t)lround(20 + idx % 50 + 30 * load + 3 * z) - 10);
        break;
    case 1:
        num_val(o, SIM_TAG_GAUGE32, (int64_t)(1000.0 * idx + 500 * load + 50 * z));
        break;
    case 2:
        num_val(o, SIM_TAG_COUNTER32,
                (int64_t)fmod((double)(d->seed >> 40) * idx + 1000.0 * idx * t, 4294967296.0));
        break;
    case 3:
        o->tag = SIM_TAG_COUNTER64;
        o->num = (int64_t)(uint64_t)(5e12 + 1e9 * idx + 1e6 * idx * t);
        break;
    case 4:
        fmt_val(o, scratch, n, "%.2f", 12.5 + idx / 10.0 + z);
        break;
    default:
        num_val(o, SIM_TAG_TIMETICKS, (int64_t)fmod((d->uptime0_s + t) * 100.0, 4294967296.0));
        break;
    }
}

static void str_val(sim_value *o, const char *s)
{
    o->tag = SIM_TAG_OCTETS;
    o->str = s;
    o->len = strlen(s);
}

static void fmt_val(sim_value *o, char *scratch, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(scratch, n, fmt, ap);
    va_end(ap);
    o->tag = SIM_TAG_OCTETS;
    o->str = scratch;
    o->len = k < 0 ? 0 : (size_t)k < n ? (size_t)k : n - 1;
}

static void num_val(sim_value *o, uint8_t tag, int64_t v)
{
    o->tag = tag;
    o->num = v;
}

static sim_oid CHRISTIE_OID = {.sub = {1, 3, 6, 1, 4, 1, 25766, 1, 12}, .len = 9};
static sim_oid BARCO_OID = {.sub = {1, 3, 6, 1, 4, 1, 12612, 220, 11, 1}, .len = 10};
static const char *const B_VARIANTS[] = {"DP2K-20C", "DP2K-32B", "DP4K-32B"};
static sim_oid HOST_OID = {.sub = {1, 3, 6, 1, 4, 1, 8072, 3, 2, 10}, .len = 10};
static sim_oid ZERO_OID = {.sub = {0, 0}, .len = 2};
static sim_oid ST_TYPES[NST] = {
    {.sub = {1, 3, 6, 1, 2, 1, 25, 2, 1, 2}, .len = 10},
    {.sub = {1, 3, 6, 1, 2, 1, 25, 2, 1, 3}, .len = 10},
    {.sub = {1, 3, 6, 1, 2, 1, 25, 2, 1, 4}, .len = 10},
};
static const char *const ST_NAMES[NST] = {"Physical memory", "Virtual memory", "/"};
static const int64_t ST_UNITS[NST] = {1024, 1024, 4096};

void sim_device_value(const sim_device *d, const sim_entry *e, int64_t now_ms, sim_value *o,
                      char *scratch, size_t n)
{
    static const char *const VARIANTS[] = {"CP2210", "CP2220", "CP2230"};
    double t = sim_s(d, now_ms);
    unsigned row = e->row;
    uint64_t tick10 = (uint64_t)(t / 10); /* noise changes every 10 simulated seconds */
    memset(o, 0, sizeof *o);
    switch (e->var) {
    case V_SYSDESCR:
        if (d->model == SIM_MODEL_CHRISTIE)
            fmt_val(o, scratch, n, "Christie %s Solaria (cinemon-sim)", VARIANTS[d->variant]);
        else if (d->model == SIM_MODEL_BARCO)
            str_val(o, B_VARIANTS[d->variant]); /* the product name, as the DP2K-20C sends */
        else
            str_val(o, "Linux ims 5.10.0-28-amd64 #1 SMP x86_64 (cinemon-sim)");
        break;
    case V_SYSOBJECTID:
        o->tag = SIM_TAG_OID;
        o->oid = d->model == SIM_MODEL_CHRISTIE ? &CHRISTIE_OID
                 : d->model == SIM_MODEL_BARCO  ? &BARCO_OID
                                                : &HOST_OID;
        break;
    case V_SYSUPTIME:
        num_val(o, SIM_TAG_TIMETICKS, (int64_t)fmod((d->uptime0_s + t) * 100.0, 4294967296.0));
        break;
    case V_SYSCONTACT:
        str_val(o, "projection@cinema.example");
        break;
    case V_SYSNAME:
        fmt_val(o, scratch, n, "hall%d-%s", d->hall, MODELS[d->model].role);
        break;
    case V_SYSLOCATION:
        fmt_val(o, scratch, n, "Hall %d booth", d->hall);
        break;
    case V_C_MODEL:
        str_val(o, VARIANTS[d->variant]);
        break;
    case V_C_SERIAL:
        fmt_val(o, scratch, n, "SIM%08llu", (unsigned long long)(d->seed % 100000000ull));
        break;
    case V_C_FIRMWARE:
        str_val(o, "4.8.1.3");
        break;
    case V_C_LAMPHOURS:
        num_val(o, SIM_TAG_INT, (int64_t)sim_device_lamp_hours(d, now_ms));
        break;
    case V_C_ENCLOSURE:
        num_val(o, SIM_TAG_INT, 1);
        break; /* armed */
    case V_C_SECURITY:
        num_val(o, SIM_TAG_INT, 2);
        break; /* secure */
    case V_C_MARRIAGE:
        num_val(o, SIM_TAG_INT, 1);
        break; /* married */
    case V_C_TEMP_INDEX:
    case V_C_IL_INDEX:
        num_val(o, SIM_TAG_INT, row);
        break;
    case V_C_TEMP_NAME:
        str_val(o, TEMP_NAMES[(row - 1) % NTEMP]);
        break;
    case V_C_TEMP_VALUE:
        num_val(o, SIM_TAG_INT, (int64_t)lround(christie_temp(d, row, t)));
        break;
    case V_C_IL_NAME:
        str_val(o, IL_NAMES[(row - 1) % NIL]);
        break;
    case V_C_IL_STATE:
        num_val(o, SIM_TAG_INT, 2);
        break; /* closed */
    case V_H_IFNUMBER:
        num_val(o, SIM_TAG_INT, NIF);
        break;
    case V_H_IFINDEX:
        num_val(o, SIM_TAG_INT, row);
        break;
    case V_H_IFDESCR:
        str_val(o, IF_NAMES[(row - 1) % NIF]);
        break;
    case V_H_IFTYPE:
        num_val(o, SIM_TAG_INT, row == 1 ? 24 : 6);
        break;
    case V_H_IFSPEED:
        num_val(o, SIM_TAG_GAUGE32, row == 1 ? 10000000 : 1000000000);
        break;
    case V_H_IFOPER:
        num_val(o, SIM_TAG_INT, row == 3 ? 2 : 1);
        break; /* eth1 down */
    case V_H_IFIN:
    case V_H_IFOUT: {
        /* ingest traffic: ~40 MB/s in on eth0, little out */
        double rate = row == 3 ? 0 : row == 1 ? 2e4 : e->var == V_H_IFIN ? 4e7 : 3e5;
        double base = (double)(d->seed >> 32 & 0xffffff) * (double)row;
        num_val(o, SIM_TAG_COUNTER32, (int64_t)fmod(base + rate * t, 4294967296.0));
        break;
    }
    case V_H_ST_INDEX:
        num_val(o, SIM_TAG_INT, ST_INDEX[row]);
        break;
    case V_H_ST_TYPE:
        o->tag = SIM_TAG_OID;
        o->oid = &ST_TYPES[row];
        break;
    case V_H_ST_DESCR:
        str_val(o, ST_NAMES[row]);
        break;
    case V_H_ST_UNITS:
        num_val(o, SIM_TAG_INT, ST_UNITS[row]);
        break;
    case V_H_ST_SIZE: {
        static const int64_t sz[NST] = {16384000, 20480000, 976000000}; /* 16 GB RAM, 4 TB */
        num_val(o, SIM_TAG_INT, sz[row]);
        break;
    }
    case V_H_ST_USED: {
        static const int64_t base[NST] = {6000000, 1000000, 420000000};
        double v = (double)base[row] * (1.0 + 0.05 * sim_noise(d->seed, 100 + row, tick10));
        num_val(o, SIM_TAG_INT, (int64_t)v);
        break;
    }
    case V_H_CPU_FRW:
        o->tag = SIM_TAG_OID;
        o->oid = &ZERO_OID;
        break;
    case V_H_CPU_LOAD: {
        double v = 10 + 35 * show_load(d, t) + 8 * sim_noise(d->seed, 200 + row, tick10);
        num_val(o, SIM_TAG_INT, v < 0 ? 0 : v > 100 ? 100 : (int64_t)v);
        break;
    }
    case V_H_MEMTOTAL:
        num_val(o, SIM_TAG_INT, 16384000);
        break;
    case V_H_MEMAVAIL:
        num_val(o, SIM_TAG_INT, (int64_t)(9000000 + 1500000 * sim_noise(d->seed, 300, tick10)));
        break;
    case V_H_LA_INDEX:
        num_val(o, SIM_TAG_INT, row);
        break;
    case V_H_LA_NAME:
        str_val(o, LA_NAMES[(row - 1) % 3]);
        break;
    case V_H_LA_INT: {
        double v = 40 + 120 * show_load(d, t) + 30 * sim_noise(d->seed, 400 + row, tick10);
        num_val(o, SIM_TAG_INT, v < 0 ? 0 : (int64_t)v);
        break;
    }
    case V_B_SERIAL:
        fmt_val(o, scratch, n, "11%08llu", (unsigned long long)(d->seed % 100000000ull));
        break;
    case V_B_TI_VERSION:
        str_val(o, "4.5.454");
        break;
    case V_B_ENIGMA_VERSION:
        str_val(o, "P1.8(24)");
        break;
    case V_B_TI_SERIAL:
    case V_B_ENIGMA_SERIAL: { /* binary octets, 8 bytes */
        uint64_t x = d->seed ^ (e->var == V_B_TI_SERIAL ? 0x7153u : 0xe1u);
        size_t k = n < 8 ? n : 8;
        for (size_t i = 0; i < k; i++)
            scratch[i] = (char)(x >> (8 * i));
        o->tag = SIM_TAG_OCTETS;
        o->str = scratch;
        o->len = k;
        break;
    }
    case V_B_LAMP_SERIAL:
        fmt_val(o, scratch, n, "E%03lluWq%03llu", (unsigned long long)(d->seed % 1000),
                (unsigned long long)(d->seed / 1000 % 1000));
        break;
    case V_B_LAMP_ARTICLE:
        str_val(o, "R9855937 OSRAM(R) XBO 4000W/DHP OFR");
        break;
    case V_B_LASER_POWER: /* percent: full during shows, dimmed in the breaks */
        num_val(o, SIM_TAG_INT, show_load(d, t) >= 1 ? 85 : 30);
        break;
    case V_B_RUNTIME: { /* minutes: .0 lamp, .1 projector */
        double h = sim_device_lamp_hours(d, now_ms);
        if (row == 1) h = d->lamp_hours0 * 1.6 + 1200 + t / 3600.0;
        num_val(o, SIM_TAG_INT, (int64_t)(h * 60));
        break;
    }
    case V_B_POWER:
        num_val(o, SIM_TAG_INT, 1);
        break; /* on */
    case V_B_S_VALUE:
        num_val(o, SIM_TAG_INT, (int64_t)lround(barco_sensor(d, row >> 8, row & 0xff, t)));
        break;
    case V_B_S_LOWWARN:
    case V_B_S_HIGHCRIT:
    case V_B_S_HIGHWARN: {
        double lim[3];
        barco_limits(row >> 8, row & 0xff, lim);
        num_val(o, SIM_TAG_INT, (int64_t)lround(lim[e->var - V_B_S_LOWWARN]));
        break;
    }
    case V_B_S_ALARM: {
        double lim[3], v = barco_sensor(d, row >> 8, row & 0xff, t);
        barco_limits(row >> 8, row & 0xff, lim);
        num_val(o, SIM_TAG_INT, v < lim[0] || v >= lim[2] ? 1 : 0);
        break;
    }
    case V_B_S_NAME: {
        unsigned tb = row >> 8, i = (row & 0xff) - 1;
        str_val(o, tb == 1 ? BT_NAMES[i % NBT] : tb == 2 ? BV_NAMES[i % NBV] : BF_NAMES[i % NBF]);
        break;
    }
    case V_X_SCALAR:
        bench_val(d, (row - 1) % 6, row, t, o, scratch, n);
        break;
    case V_X_CELL:
        bench_val(d, (row >> 8) - 1, 100 + ((row >> 8) - 1) * 20 + (row & 0xff), t, o, scratch, n);
        break;
    default:
        o->tag = SIM_TAG_NULL;
        break;
    }
}

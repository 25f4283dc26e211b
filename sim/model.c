/* model.c — the simulated device models (see model.h). */
#include "model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rng.h"

static sim_model MODELS[SIM_NMODELS] = {
    {.name = "christie-cp-series2", .profile = "christie-cp-series2", .kind = "projector",
     .role = "projector"},
    {.name = "linux-media-server", .profile = "generic-snmp-host", .kind = "server",
     .role = "ims"},
};

enum {
    V_SYSDESCR = 1, V_SYSOBJECTID, V_SYSUPTIME, V_SYSCONTACT, V_SYSNAME, V_SYSLOCATION,
    /* Christie */
    V_C_MODEL, V_C_SERIAL, V_C_FIRMWARE, V_C_LAMPHOURS, V_C_ENCLOSURE, V_C_SECURITY,
    V_C_MARRIAGE, V_C_TEMP_INDEX, V_C_TEMP_NAME, V_C_TEMP_VALUE, V_C_IL_INDEX, V_C_IL_NAME,
    V_C_IL_STATE,
    /* host */
    V_H_IFNUMBER, V_H_IFINDEX, V_H_IFDESCR, V_H_IFTYPE, V_H_IFSPEED, V_H_IFOPER, V_H_IFIN,
    V_H_IFOUT, V_H_ST_INDEX, V_H_ST_TYPE, V_H_ST_DESCR, V_H_ST_UNITS, V_H_ST_SIZE, V_H_ST_USED,
    V_H_CPU_FRW, V_H_CPU_LOAD, V_H_MEMTOTAL, V_H_MEMAVAIL, V_H_LA_INDEX, V_H_LA_NAME,
    V_H_LA_INT,
};

#define C_ROOT "1.3.6.1.4.1.25766.1.12.1"
static const char *const TEMP_NAMES[] = {
    "Lamp House",   "Exhaust",      "Intake",      "DMD Red",       "DMD Green",
    "DMD Blue",     "Formatter",    "Power Supply", "Ballast",       "LVPS",
    "Prism",        "Integrator",   "Lens Mount",  "ICP Board",     "IMB Slot",
    "Ambient Front", "Ambient Rear"};
#define NTEMP 17
static const double TEMP_BASE[NTEMP] = {55, 45, 24, 40, 41, 42, 38, 44, 50, 39,
                                        36, 48, 30, 43, 46, 23, 27};
static const double TEMP_LOAD[NTEMP] = {30, 22, 2, 14, 14, 15, 8, 12, 18, 9,
                                        10, 20, 5, 8, 10, 1, 4};
static const char *const IL_NAMES[] = {"Lamp Door", "Service Door", "Top Cover", "Lens Mount"};
#define NIL 4
static const char *const IF_NAMES[] = {"lo", "eth0", "eth1"};
#define NIF 3
#define NCPU 4
static const char *const LA_NAMES[] = {"Load-1", "Load-5", "Load-15"};

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
                                         {5, V_H_IFSPEED}, {8, V_H_IFOPER}, {10, V_H_IFIN},
                                         {16, V_H_IFOUT}};
    for (size_t c = 0; c < sizeof ifcols / sizeof *ifcols; c++)
        for (uint16_t n = 1; n <= NIF; n++)
            r |= add(m, "1.3.6.1.2.1.2.2.1", ifcols[c][0], n, 2, ifcols[c][1], n);
    for (uint16_t c = 1; c <= 6; c++)
        for (uint16_t n = 0; n < NST; n++)
            r |= add(m, "1.3.6.1.2.1.25.2.3.1", c, ST_INDEX[n], 2,
                     (uint16_t)(V_H_ST_INDEX + c - 1), n);
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

int sim_models_init(char *err, size_t errlen)
{
    int (*build[SIM_NMODELS])(sim_mib *) = {build_christie, build_host};
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
    for (int i = 0; i < SIM_NMODELS; i++) sim_mib_free(&MODELS[i].mib);
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

static void str_val(sim_value *o, const char *s)
{
    o->tag = SIM_TAG_OCTETS;
    o->str = s;
    o->len = strlen(s);
}

static void fmt_val(sim_value *o, char *scratch, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
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
        else
            str_val(o, "Linux ims 5.10.0-28-amd64 #1 SMP x86_64 (cinemon-sim)");
        break;
    case V_SYSOBJECTID:
        o->tag = SIM_TAG_OID;
        o->oid = d->model == SIM_MODEL_CHRISTIE ? &CHRISTIE_OID : &HOST_OID;
        break;
    case V_SYSUPTIME:
        num_val(o, SIM_TAG_TIMETICKS, (int64_t)fmod((d->uptime0_s + t) * 100.0, 4294967296.0));
        break;
    case V_SYSCONTACT: str_val(o, "projection@cinema.example"); break;
    case V_SYSNAME:
        fmt_val(o, scratch, n, "hall%d-%s", d->hall, MODELS[d->model].role);
        break;
    case V_SYSLOCATION: fmt_val(o, scratch, n, "Hall %d booth", d->hall); break;
    case V_C_MODEL: str_val(o, VARIANTS[d->variant]); break;
    case V_C_SERIAL:
        fmt_val(o, scratch, n, "SIM%08llu", (unsigned long long)(d->seed % 100000000ull));
        break;
    case V_C_FIRMWARE: str_val(o, "4.8.1.3"); break;
    case V_C_LAMPHOURS: num_val(o, SIM_TAG_INT, (int64_t)sim_device_lamp_hours(d, now_ms)); break;
    case V_C_ENCLOSURE: num_val(o, SIM_TAG_INT, 1); break; /* armed */
    case V_C_SECURITY: num_val(o, SIM_TAG_INT, 2); break;  /* secure */
    case V_C_MARRIAGE: num_val(o, SIM_TAG_INT, 1); break;  /* married */
    case V_C_TEMP_INDEX:
    case V_C_IL_INDEX: num_val(o, SIM_TAG_INT, row); break;
    case V_C_TEMP_NAME: str_val(o, TEMP_NAMES[(row - 1) % NTEMP]); break;
    case V_C_TEMP_VALUE: {
        unsigned i = (row - 1) % NTEMP;
        double v = TEMP_BASE[i] + TEMP_LOAD[i] * show_load(d, t) +
                   1.5 * sim_noise(d->seed, row, tick10);
        num_val(o, SIM_TAG_INT, (int64_t)lround(v));
        break;
    }
    case V_C_IL_NAME: str_val(o, IL_NAMES[(row - 1) % NIL]); break;
    case V_C_IL_STATE: num_val(o, SIM_TAG_INT, 2); break; /* closed */
    case V_H_IFNUMBER: num_val(o, SIM_TAG_INT, NIF); break;
    case V_H_IFINDEX: num_val(o, SIM_TAG_INT, row); break;
    case V_H_IFDESCR: str_val(o, IF_NAMES[(row - 1) % NIF]); break;
    case V_H_IFTYPE: num_val(o, SIM_TAG_INT, row == 1 ? 24 : 6); break;
    case V_H_IFSPEED: num_val(o, SIM_TAG_GAUGE32, row == 1 ? 10000000 : 1000000000); break;
    case V_H_IFOPER: num_val(o, SIM_TAG_INT, row == 3 ? 2 : 1); break; /* eth1 down */
    case V_H_IFIN:
    case V_H_IFOUT: {
        /* ingest traffic: ~40 MB/s in on eth0, little out */
        double rate = row == 3 ? 0 : row == 1 ? 2e4 : e->var == V_H_IFIN ? 4e7 : 3e5;
        double base = (double)(d->seed >> 32 & 0xffffff) * (double)row;
        num_val(o, SIM_TAG_COUNTER32, (int64_t)fmod(base + rate * t, 4294967296.0));
        break;
    }
    case V_H_ST_INDEX: num_val(o, SIM_TAG_INT, ST_INDEX[row]); break;
    case V_H_ST_TYPE:
        o->tag = SIM_TAG_OID;
        o->oid = &ST_TYPES[row];
        break;
    case V_H_ST_DESCR: str_val(o, ST_NAMES[row]); break;
    case V_H_ST_UNITS: num_val(o, SIM_TAG_INT, ST_UNITS[row]); break;
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
    case V_H_MEMTOTAL: num_val(o, SIM_TAG_INT, 16384000); break;
    case V_H_MEMAVAIL:
        num_val(o, SIM_TAG_INT,
                (int64_t)(9000000 + 1500000 * sim_noise(d->seed, 300, tick10)));
        break;
    case V_H_LA_INDEX: num_val(o, SIM_TAG_INT, row); break;
    case V_H_LA_NAME: str_val(o, LA_NAMES[(row - 1) % 3]); break;
    case V_H_LA_INT: {
        double v = 40 + 120 * show_load(d, t) + 30 * sim_noise(d->seed, 400 + row, tick10);
        num_val(o, SIM_TAG_INT, v < 0 ? 0 : (int64_t)v);
        break;
    }
    default: o->tag = SIM_TAG_NULL; break;
    }
}

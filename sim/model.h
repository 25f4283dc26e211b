/* model.h — simulated SNMP device models (Christie CP Series 2 and Barco DP2K/DP4K Series 2
 * projectors, a Linux media server, a synthetic benchmark device) and the state of one
 * simulated device. Values are computed lazily from the time
 * elapsed since the start, so a thousand devices need no timers. */
#ifndef SIM_MODEL_H
#define SIM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "ber.h"
#include "fault.h"
#include "mib.h"

typedef enum {
    SIM_MODEL_CHRISTIE = 0,
    SIM_MODEL_HOST = 1,
    SIM_MODEL_BARCO = 2, /* Barco DP2K/DP4K Series 2-like projector (PEN 12612) */
    SIM_MODEL_BENCH = 3, /* benchmark device: 40 scalars + a 20x5 table under 99999.1 */
    SIM_NMODELS
} sim_model_id;

/* The benchmark device's OIDs: scalars BENCH_ROOT.1.N.0 (N = 1..40), table entry
 * BENCH_ROOT.2.1, columns 1..5, rows 1..20. */
#define SIM_BENCH_ROOT "1.3.6.1.4.1.99999.1"
#define SIM_BENCH_SCALARS 40
#define SIM_BENCH_ROWS 20
#define SIM_BENCH_COLS 5

typedef struct sim_model {
    const char *name;    /* "christie-cp2220" */
    const char *profile; /* agent profile that reads it */
    const char *kind;    /* agent device kind */
    const char *role;    /* device name in the hall: "projector", "ims" */
    sim_mib mib;
} sim_model;

typedef struct sim_device {
    sim_model_id model;
    int hall;      /* 1-based */
    uint64_t seed; /* per device */
    int64_t start_ms;
    double speed; /* simulated seconds per real second */
    double lamp_hours0, uptime0_s;
    int variant; /* model variant (CP2210/CP2220/CP2230) */
    sim_fault_state fault;
    uint64_t requests, answered, dropped;
} sim_device;

/* Build every model's OID table. 0 or -1 with err. */
int sim_models_init(char *err, size_t errlen);
/* Free the tables. */
void sim_models_free(void);
/* The model, or NULL. */
const sim_model *sim_model_get(sim_model_id id);

/* Set up a device of model m in hall (1-based) from the run seed, started at start_ms. */
void sim_device_init(sim_device *d, sim_model_id m, int hall, uint64_t seed, int64_t start_ms,
                     double speed);
/* The value of entry e at now_ms; strings go to scratch (scratchlen bytes). */
void sim_device_value(const sim_device *d, const sim_entry *e, int64_t now_ms, sim_value *out,
                      char *scratch, size_t scratchlen);
/* Lamp (light source) hours of a projector at now_ms: grows while shows run. */
double sim_device_lamp_hours(const sim_device *d, int64_t now_ms);
/* Load of the hall at now_ms, 0..1: 1 during a show, 0.15 in the breaks between shows. */
double sim_device_load(const sim_device *d, int64_t now_ms);
/* sysUpTime of the device at now_ms in hundredths of a second (wraps at 2^32). */
uint32_t sim_device_uptime_ticks(const sim_device *d, int64_t now_ms);
/* The hottest (lamp house) temperature of a projector at now_ms in degrees C, with the OID
 * of the table cell that serves it and its warning limit (each filled when not NULL). */
double sim_device_hot_temp(const sim_device *d, int64_t now_ms, sim_oid *oid, double *limit);

#endif

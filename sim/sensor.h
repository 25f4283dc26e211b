/* sensor.h — a simulated in-theatre light and sound sensor: the JSON of GET /api/measurements
 * that profiles/light-sound-sensor-http.json reads (screen luminance and white point, which
 * drift with the projector's lamp age, and the SPL of each channel). */
#ifndef SIM_SENSOR_H
#define SIM_SENSOR_H

#include <stdint.h>

#include "model.h"

#define SIM_SENSOR_NCHANNELS 6 /* L C R Ls Rs LFE */

typedef struct sim_sensor {
    int hall;
    uint64_t seed; /* per device */
    int64_t start_ms;
    double speed;
    const sim_device *projector; /* the hall's projector: lamp age and show load */
    double nits0;                /* luminance at the start (calibrated near 48) */
} sim_sensor;

/* Set up the sensor of hall (1-based) from the run seed; projector may be NULL. */
void sim_sensor_init(sim_sensor *s, int hall, uint64_t seed, int64_t start_ms, double speed,
                     const sim_device *projector);
/* Screen luminance in nits at loop time now_ms (before rounding). */
double sim_sensor_nits(const sim_sensor *s, int64_t now_ms);
/* The JSON answer of GET /api/measurements at now_ms (malloc'd, NUL-terminated), or NULL. */
char *sim_sensor_json(const sim_sensor *s, int64_t now_ms);

#endif

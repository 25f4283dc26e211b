/* ledscreen.h — a simulated LED cinema screen controller: the JSON of GET /api/status that
 * profiles/led-screen-http.json reads (device identity, luminance, white point, failed
 * pixels, one entry per cabinet with online state, temperature and receiving-card voltage). */
#ifndef SIM_LEDSCREEN_H
#define SIM_LEDSCREEN_H

#include <stdint.h>

#include "model.h"

typedef struct sim_led {
    int hall;
    uint64_t seed; /* per device */
    int64_t start_ms;
    double speed;
    const sim_device *projector; /* the hall's projector: its show load heats the cabinets */
    int rows, cols;              /* rows × cols cabinets, 12..24 */
    int failed0;                 /* failed pixels at the start */
    double fail_every_h;         /* one more failed pixel per this many simulated hours */
    int weak_cabinet;            /* the cabinet that goes offline during a fault episode */
} sim_led;

/* Set up the screen of hall (1-based) from the run seed; projector may be NULL. */
void sim_led_init(sim_led *l, int hall, uint64_t seed, int64_t start_ms, double speed,
                  const sim_device *projector);
/* Number of cabinets (12..24). */
int sim_led_cabinets(const sim_led *l);
/* The JSON answer of GET /api/status at loop time now_ms (malloc'd, NUL-terminated), or
 * NULL when out of memory. episode: the device is in a fault episode (a cabinet is offline). */
char *sim_led_status_json(const sim_led *l, int64_t now_ms, int episode);

#endif

/* ledscreen.c — the simulated LED screen controller (see ledscreen.h). */
#include "ledscreen.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rng.h"

#define IDLE_C 35.0 /* cabinet temperature with the hall in a break */
#define SHOW_C 48.0 /* ... and during a show */

void sim_led_init(sim_led *l, int hall, uint64_t seed, int64_t start_ms, double speed,
                  const sim_device *projector)
{
    memset(l, 0, sizeof *l);
    uint64_t s = seed ^ ((uint64_t)hall << 32) ^ 0x1ed5c7ee4ull;
    l->hall = hall;
    l->seed = sim_rng_next(&s);
    l->start_ms = start_ms;
    l->speed = speed > 0 ? speed : 1;
    l->projector = projector;
    l->rows = 2 + (int)(sim_rng_next(&s) % 2); /* 2..3 rows of 6..8: 12..24 cabinets */
    l->cols = 6 + (int)(sim_rng_next(&s) % 3);
    l->failed0 = (int)(sim_rng_next(&s) % 4);
    l->fail_every_h = 150 + (double)(sim_rng_next(&s) % 150);
    l->weak_cabinet = (int)(sim_rng_next(&s) % (uint64_t)(l->rows * l->cols));
}

int sim_led_cabinets(const sim_led *l)
{
    return l->rows * l->cols;
}

/* Round to the given number of decimals, as a controller would report. */
static json_t *num(double v, double scale)
{
    return json_real(round(v * scale) / scale);
}

char *sim_led_status_json(const sim_led *l, int64_t now_ms, int episode)
{
    double el = (double)(now_ms - l->start_ms) / 1000.0;
    double t = (el < 0 ? 0 : el) * l->speed; /* simulated seconds */
    uint64_t tick = (uint64_t)(t / 10);      /* noise changes every 10 simulated seconds */
    double load = l->projector ? sim_device_load(l->projector, now_ms) : 0.15;
    double heat = (load - 0.15) / 0.85; /* 0 in breaks, 1 in shows */
    if (heat < 0) heat = 0;

    char serial[24], fw[16];
    snprintf(serial, sizeof serial, "LED%08llu", (unsigned long long)(l->seed % 100000000ull));
    snprintf(fw, sizeof fw, "3.1.%d", (int)(l->seed % 7));
    json_t *root = json_object(), *cabs = json_array();
    if (!root || !cabs) {
        json_decref(root);
        json_decref(cabs);
        return NULL;
    }
    json_object_set_new(root, "device",
                        json_pack("{s:s, s:s, s:s, s:s}", "vendor", "SimLED", "model",
                                  l->rows == 2 ? "SL-C12" : "SL-C18", "serial", serial, "firmware",
                                  fw));
    json_t *lum = json_object();
    json_object_set_new(
        lum, "nits",
        num(48.0 + 0.8 * sim_noise(l->seed, 900, 0) + 0.2 * sim_noise(l->seed, 901, tick), 10));
    json_object_set_new(root, "luminance", lum);
    json_t *white = json_object();
    json_object_set_new(
        white, "x",
        num(0.314 + 0.0008 * sim_noise(l->seed, 910, 0) + 0.0002 * sim_noise(l->seed, 911, tick),
            10000));
    json_object_set_new(
        white, "y",
        num(0.351 + 0.0008 * sim_noise(l->seed, 912, 0) + 0.0002 * sim_noise(l->seed, 913, tick),
            10000));
    json_object_set_new(root, "white", white);
    long failed = l->failed0 + (long)(t / 3600.0 / l->fail_every_h);
    json_object_set_new(root, "failed_pixels", json_integer(failed));
    int n = sim_led_cabinets(l);
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "%c%d", 'A' + i / l->cols, i % l->cols + 1);
        int online = !(episode && i == l->weak_cabinet);
        double temp, volt;
        if (online) {
            temp = IDLE_C + (SHOW_C - IDLE_C) * heat +
                   1.5 * sim_noise(l->seed, 100 + (uint64_t)i, 0) +
                   0.4 * sim_noise(l->seed, 200 + (uint64_t)i, tick);
            volt = 5.0 + 0.04 * sim_noise(l->seed, 300 + (uint64_t)i, 0) +
                   0.01 * sim_noise(l->seed, 400 + (uint64_t)i, tick);
        } else { /* a dark cabinet: no supply on its receiving card, cooling to the room */
            temp = 24.0 + 0.5 * sim_noise(l->seed, 500 + (uint64_t)i, tick);
            volt = 0.0;
        }
        json_t *c = json_pack("{s:s, s:b, s:o, s:o}", "id", id, "online", online, "temperature",
                              num(temp, 10), "voltage", num(volt, 100));
        json_array_append_new(cabs, c);
    }
    json_object_set_new(root, "cabinets", cabs);
    char *out = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(root);
    return out;
}

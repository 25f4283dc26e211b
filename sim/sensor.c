/* sensor.c — the simulated light and sound sensor (see sensor.h). */
#include "sensor.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rng.h"

/* Per channel: name and reference SPL with pink noise at -20 dBFS (SMPTE RP 200: 85 dBC for
 * the screen channels, 82 each surround; the subwoofer calibrated 10 dB up in band). */
static const struct {
    const char *name;
    double ref;
} CHANNELS[SIM_SENSOR_NCHANNELS] = {
    {"L", 85}, {"C", 85}, {"R", 85}, {"Ls", 82}, {"Rs", 82}, {"LFE", 89},
};

#define LOSS_PER_H (0.10 / 2000.0) /* light output lost per lamp hour: -10 % per 2000 h */

void sim_sensor_init(sim_sensor *s, int hall, uint64_t seed, int64_t start_ms, double speed,
                     const sim_device *projector)
{
    memset(s, 0, sizeof *s);
    uint64_t r = seed ^ ((uint64_t)hall << 32) ^ 0x5e4503ull;
    s->hall = hall;
    s->seed = sim_rng_next(&r);
    s->start_ms = start_ms;
    s->speed = speed > 0 ? speed : 1;
    s->projector = projector;
    s->nits0 = 48.0 + 1.5 * sim_noise(s->seed, 1, 0);
}

/* Lamp hours burnt since the start (0 without a projector). */
static double lamp_age(const sim_sensor *s, int64_t now_ms)
{
    if (!s->projector) return 0;
    double h = sim_device_lamp_hours(s->projector, now_ms) - s->projector->lamp_hours0;
    return h > 0 ? h : 0;
}

static uint64_t tick10(const sim_sensor *s, int64_t now_ms)
{
    double el = (double)(now_ms - s->start_ms) / 1000.0;
    return (uint64_t)((el < 0 ? 0 : el) * s->speed / 10);
}

double sim_sensor_nits(const sim_sensor *s, int64_t now_ms)
{
    double f = 1.0 - LOSS_PER_H * lamp_age(s, now_ms);
    if (f < 0.2) f = 0.2; /* a lamp is replaced long before */
    return s->nits0 * f * (1.0 + 0.004 * sim_noise(s->seed, 2, tick10(s, now_ms)));
}

static json_t *num(double v, double scale)
{
    return json_real(round(v * scale) / scale);
}

char *sim_sensor_json(const sim_sensor *s, int64_t now_ms)
{
    uint64_t tick = tick10(s, now_ms);
    double age = lamp_age(s, now_ms) / 2000.0; /* in units of 2000 lamp hours */
    double load = s->projector ? sim_device_load(s->projector, now_ms) : 1.0;
    char serial[24], fw[16];
    snprintf(serial, sizeof serial, "LSS%08llu", (unsigned long long)(s->seed % 100000000ull));
    snprintf(fw, sizeof fw, "1.4.%d", (int)(s->seed % 5));
    json_t *root = json_object(), *sound = json_array(), *light = json_object();
    if (!root || !sound || !light) {
        json_decref(root);
        json_decref(sound);
        json_decref(light);
        return NULL;
    }
    json_object_set_new(
        root, "device",
        json_pack("{s:s, s:s, s:s}", "model", "SimSense LS-2", "serial", serial, "firmware", fw));
    json_object_set_new(light, "mode", json_string("2d"));
    json_object_set_new(light, "nits", num(sim_sensor_nits(s, now_ms), 10));
    /* the white point drifts toward yellow-green as the light source ages */
    json_object_set_new(light, "x",
                        num(0.314 + 0.0008 * sim_noise(s->seed, 3, 0) + 0.0015 * age +
                                0.0003 * sim_noise(s->seed, 4, tick),
                            10000));
    json_object_set_new(light, "y",
                        num(0.351 + 0.0008 * sim_noise(s->seed, 5, 0) + 0.0010 * age +
                                0.0003 * sim_noise(s->seed, 6, tick),
                            10000));
    json_object_set_new(root, "light", light);
    for (int i = 0; i < SIM_SENSOR_NCHANNELS; i++) {
        double db = CHANNELS[i].ref + 0.8 * sim_noise(s->seed, 10 + (uint64_t)i, 0) +
                    0.5 * sim_noise(s->seed, 20 + (uint64_t)i, tick);
        if (load < 0.5) db -= 18; /* a break: walk-in music, far below reference level */
        json_array_append_new(
            sound, json_pack("{s:s, s:o}", "channel", CHANNELS[i].name, "dbc", num(db, 10)));
    }
    json_object_set_new(root, "sound", sound);
    char *out = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(root);
    return out;
}

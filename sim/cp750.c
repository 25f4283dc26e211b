/* cp750.c — simulated Dolby CP750 (see cp750.h). */
#include "cp750.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

static const char *const MODES[] = {"analog", "dig_1", "dig_2", "dig_3", "dig_4",
                                    "last",   "mic",   "non_sync"};
#define NMODES (sizeof MODES / sizeof *MODES)

void sim_cp750_init(sim_cp750 *c, int hall, uint64_t seed)
{
    uint64_t s = seed ^ ((uint64_t)hall << 32) ^ 0x6370373530ull;
    memset(c, 0, sizeof *c);
    c->hall = hall;
    c->seed = sim_rng_next(&s);
    c->fader = 60 + (int)(sim_rng_next(&s) % 15); /* 6.0 .. 7.4 */
    c->input = 1;                                  /* dig_1 */
}

static size_t greet(void *dev, sim_conn_state *cs, uint64_t random, char *out, size_t cap)
{
    (void)dev, (void)cs, (void)random, (void)out, (void)cap;
    return 0;
}

/* Parse an integer in [lo, hi] that is the whole of s. */
static int parse_int(const char *s, int lo, int hi, int *v)
{
    char *e;
    long x = strtol(s, &e, 10);
    if (!*s || *e || x < lo || x > hi) return -1;
    *v = (int)x;
    return 0;
}

static long line(void *dev, sim_conn_state *cs, const char *ln, size_t len, int64_t now,
                 char *out, size_t cap, size_t *outlen)
{
    sim_cp750 *c = dev;
    (void)cs, (void)now;
    *outlen = 0;
    char buf[128];
    if (len >= sizeof buf) return 0;
    memcpy(buf, ln, len);
    buf[len] = 0;
    char *arg = strchr(buf, ' ');
    if (arg) *arg++ = 0;
    const char *key = buf;
    int q = arg && strcmp(arg, "?") == 0;
    int n = -1, v;
    if (strcmp(key, "status") == 0 && !arg) {
        n = snprintf(out, cap,
                     "cp750.sysinfo.version : 1.2.8.10\r\ncp750.sys.input_mode : %s\r\n"
                     "cp750.sys.fader : %d\r\ncp750.sys.mute : %d\r\n\r\n",
                     MODES[c->input], c->fader, c->mute);
    } else if (!arg) {
        return 0;
    } else if (strcmp(key, "cp750.sysinfo.version") == 0 && q) {
        n = snprintf(out, cap, "%s 1.2.8.10\r\n", key);
    } else if (strcmp(key, "cp750.sys.serial_number") == 0 && q) {
        n = snprintf(out, cap, "%s %06llu\r\n", key, (unsigned long long)(c->seed % 1000000));
    } else if (strcmp(key, "cp750.sys.fader") == 0) {
        if (!q && parse_int(arg, 0, 100, &v) == 0) c->fader = v;
        if (q || parse_int(arg, 0, 100, &v) == 0) n = snprintf(out, cap, "%s %d\r\n", key, c->fader);
    } else if (strcmp(key, "cp750.ctrl.fader_delta") == 0 && !q &&
               parse_int(arg, -100, 100, &v) == 0) {
        int before = c->fader;
        c->fader = c->fader + v < 0 ? 0 : c->fader + v > 100 ? 100 : c->fader + v;
        n = snprintf(out, cap, "%s %d\r\n", key, c->fader - before);
    } else if (strcmp(key, "cp750.sys.mute") == 0) {
        if (!q && parse_int(arg, 0, 1, &v) == 0) c->mute = v;
        if (q || parse_int(arg, 0, 1, &v) == 0) n = snprintf(out, cap, "%s %d\r\n", key, c->mute);
    } else if (strcmp(key, "cp750.sys.input_mode") == 0) {
        for (size_t i = 0; !q && i < NMODES; i++)
            if (strcmp(arg, MODES[i]) == 0) c->input = (int)i, q = 1;
        if (q) n = snprintf(out, cap, "%s %s\r\n", key, MODES[c->input]);
    }
    if (n > 0) *outlen = (size_t)n < cap ? (size_t)n : cap - 1;
    return 0; /* unknown commands and bad values get no reply */
}

const sim_line_proto sim_cp750_proto = {
    .name = "cp750", .max_line = 127, .max_conns = 20, .greet = greet, .line = line};

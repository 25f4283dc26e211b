/* cp750.h — a simulated Dolby CP750 cinema processor (devices.md §4.1): ASCII lines ending
 * in CRLF, "cp750.sys.fader ?" → "cp750.sys.fader 70", at most 20 connections. */
#ifndef SIM_CP750_H
#define SIM_CP750_H

#include <stdint.h>

#include "lineproto.h"

typedef struct sim_cp750 {
    int hall;
    uint64_t seed;
    int fader;       /* 0..100 (front panel 0.0..10.0) */
    int mute;        /* 0/1 */
    int input;       /* index into the input modes */
} sim_cp750;

/* Set up the processor of hall from the run seed. */
void sim_cp750_init(sim_cp750 *c, int hall, uint64_t seed);

extern const sim_line_proto sim_cp750_proto;

#endif

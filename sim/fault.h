/* fault.h — injected device faults: each request may start a fault episode at a given rate. */
#ifndef SIM_FAULT_H
#define SIM_FAULT_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    SIM_FAULT_NONE = 0,
    SIM_FAULT_SLOW,   /* answer after SIM_FAULT_SLOW_MS */
    SIM_FAULT_GARBLE, /* answer with corrupted bytes */
    SIM_FAULT_SILENT, /* no answer at all for a while (an episode of 5-20 s) */
    SIM_FAULT_CLOSE,  /* TCP devices: close the connection (UDP: drop this request) */
} sim_fault;

#define SIM_FAULT_SLOW_MS 3000

typedef struct sim_fault_state {
    uint64_t rng;
    int64_t silent_until_ms;
} sim_fault_state;

/* Decide the fault for one request at now_ms, given the per-request rate in [0, 1]. */
sim_fault sim_fault_decide(sim_fault_state *fs, double rate, int64_t now_ms);
/* Corrupt a reply in place (deterministically from the state's random numbers). */
void sim_fault_garble(sim_fault_state *fs, uint8_t *buf, size_t len);
/* "slow", "garble", ... ("none"). */
const char *sim_fault_name(sim_fault f);

#endif

/* fault.c — fault episodes (see fault.h). */
#include "fault.h"

#include "rng.h"

sim_fault sim_fault_decide(sim_fault_state *fs, double rate, int64_t now_ms)
{
    if (now_ms < fs->silent_until_ms) return SIM_FAULT_SILENT;
    if (rate <= 0 || sim_rng_unit(&fs->rng) >= rate) return SIM_FAULT_NONE;
    switch (sim_rng_next(&fs->rng) % 4) {
    case 0: return SIM_FAULT_SLOW;
    case 1: return SIM_FAULT_GARBLE;
    case 2:
        fs->silent_until_ms = now_ms + 5000 + (int64_t)(sim_rng_next(&fs->rng) % 15000);
        return SIM_FAULT_SILENT;
    default: return SIM_FAULT_CLOSE;
    }
}

void sim_fault_garble(sim_fault_state *fs, uint8_t *buf, size_t len)
{
    if (len == 0) return;
    /* a few random bytes past the outer header, where a decoder notices */
    for (int i = 0; i < 3; i++) {
        size_t at = len > 4 ? 2 + (size_t)(sim_rng_next(&fs->rng) % (len - 2)) : 0;
        buf[at] ^= (uint8_t)(1 + sim_rng_next(&fs->rng) % 255);
    }
}

const char *sim_fault_name(sim_fault f)
{
    static const char *const names[] = {"none", "slow", "garble", "silent", "close"};
    return (unsigned)f < sizeof names / sizeof *names ? names[f] : "?";
}

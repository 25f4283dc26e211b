/* rng.c — splitmix64 (see rng.h). */
#include "rng.h"

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t sim_rng_next(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ull;
    return mix(*s);
}

double sim_rng_unit(uint64_t *s)
{
    return (double)(sim_rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

double sim_noise(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t h = mix(a ^ mix(b + 0x9e3779b97f4a7c15ull) ^ mix(c * 0xff51afd7ed558ccdull + 1));
    return (double)(h >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

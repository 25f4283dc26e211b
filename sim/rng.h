/* rng.h — small deterministic random numbers (splitmix64) so a seed reproduces a run. */
#ifndef SIM_RNG_H
#define SIM_RNG_H

#include <stdint.h>

/* Next 64 random bits of the state *s. */
uint64_t sim_rng_next(uint64_t *s);
/* Uniform double in [0, 1) from *s. */
double sim_rng_unit(uint64_t *s);
/* A stateless hash of (a, b, c) to a double in [-1, 1): reproducible noise. */
double sim_noise(uint64_t a, uint64_t b, uint64_t c);

#endif

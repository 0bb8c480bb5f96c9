/*
 * rng.h - the core's random numbers: SplitMix64, stateless per draw stream.
 *
 * Every mask has its own stream, seeded from (seed, mask index), so a mask
 * does not depend on how a run is chunked, and fxplain/methods/reference.py
 * reproduces the generator bit for bit in pure Python.
 */
#ifndef FX_RNG_H
#define FX_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t state;
} fx_rng;

static inline uint64_t fx_rng_next(fx_rng *rng) {
    uint64_t z = (rng->state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* The stream of mask `index` under `seed`. */
static inline fx_rng fx_rng_for(uint64_t seed, uint64_t index) {
    fx_rng rng = {seed ^ (index * 0xD1342543DE82EF95ULL)};
    fx_rng_next(&rng); /* decorrelate neighbouring indices */
    return rng;
}

/* Uniform double in [0, 1) from the top 53 bits. */
static inline double fx_rng_uniform(fx_rng *rng) {
    return (double)(fx_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n), n > 0 (modulo bias below 2^-40 for n < 2^24). */
static inline int64_t fx_rng_below(fx_rng *rng, int64_t n) {
    return (int64_t)(fx_rng_next(rng) % (uint64_t)n);
}

#endif /* FX_RNG_H */

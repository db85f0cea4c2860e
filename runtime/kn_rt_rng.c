/* kn_rt_rng.c — Philox4x32-10 (Salmon et al., SC'11).  Counter-based so a
 * value is a pure function of (seed, stream, index): CPU and GPU backends,
 * resumed runs and any evaluation order all draw identical numbers. */
#include "kn_rt.h"

#include <math.h>

typedef struct { uint32_t v[4]; } philox_ctr;

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

static philox_ctr philox4x32_10(philox_ctr c, uint32_t k0, uint32_t k1)
{
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(0xD2511F53u, c.v[0], &hi0);
        uint32_t lo1 = mulhilo(0xCD9E8D57u, c.v[2], &hi1);
        philox_ctr n = {{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
        c = n;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return c;
}

static philox_ctr block(uint64_t seed, uint64_t stream, uint64_t index)
{
    philox_ctr c = {{(uint32_t)index, (uint32_t)(index >> 32), (uint32_t)stream,
                     (uint32_t)(stream >> 32)}};
    return philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32));
}

/* 24 bits: every value is exactly representable and < 1 after scaling. */
static inline float to_unit(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

float kn_rt_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    return to_unit(block(seed, stream, index).v[0]);
}

void kn_rt_uniform4(uint64_t seed, uint64_t stream, uint64_t blk, float out[4])
{
    philox_ctr r = block(seed, stream, blk);
    for (int k = 0; k < 4; k++) out[k] = to_unit(r.v[k]);
}

float kn_rt_normal(uint64_t seed, uint64_t stream, uint64_t index)
{
    philox_ctr r = block(seed, stream, index);
    /* u1 in (0,1] so the log is finite. */
    double u1 = ((double)(r.v[1] >> 8) + 1.0) * (1.0 / 16777216.0);
    double u2 = (double)(r.v[2] >> 8) * (1.0 / 16777216.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

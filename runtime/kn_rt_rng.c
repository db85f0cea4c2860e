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

/* KN_RT_LANES consecutive Philox blocks: u[4 * l + w] is word w of block
 * first + l, i.e. u[k] belongs to counter 4 * first + k.  The lanes are independent, so the rounds
 * vectorize (32x32->64-bit multiplies); the clones pick AVX-512 or AVX2 by
 * the CPU it runs on.  Same numbers as kn_rt_uniform4, block by block. */
#define KN_RT_LANES 16
__attribute__((target_clones("avx512f", "avx2", "default")))
static void uniform_lanes(uint64_t seed, uint64_t stream, uint64_t first, float *u)
{
    uint32_t c0[KN_RT_LANES], c1[KN_RT_LANES], c2[KN_RT_LANES], c3[KN_RT_LANES];
    for (int l = 0; l < KN_RT_LANES; l++) {
        uint64_t index = first + (uint64_t)l;
        c0[l] = (uint32_t)index;
        c1[l] = (uint32_t)(index >> 32);
        c2[l] = (uint32_t)stream;
        c3[l] = (uint32_t)(stream >> 32);
    }
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        for (int l = 0; l < KN_RT_LANES; l++) {
            uint64_t p0 = (uint64_t)0xD2511F53u * c0[l];
            uint64_t p1 = (uint64_t)0xCD9E8D57u * c2[l];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
            c1[l] = (uint32_t)p1;
            c3[l] = (uint32_t)p0;
            c0[l] = n0;
            c2[l] = n2;
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    for (int l = 0; l < KN_RT_LANES; l++) {
        u[4 * l + 0] = to_unit(c0[l]);
        u[4 * l + 1] = to_unit(c1[l]);
        u[4 * l + 2] = to_unit(c2[l]);
        u[4 * l + 3] = to_unit(c3[l]);
    }
}

void kn_rt_dropout(uint64_t seed, uint64_t stream, uint64_t base, size_t n, float p,
                   float scale, const float *in, float *out)
{
    float u[4 * KN_RT_LANES];
    size_t i = 0;
    while (i < n) {
        const uint64_t g = base + i;
        const size_t off = (size_t)(g & 3); /* counters need not start a block */
        uniform_lanes(seed, stream, g >> 2, u);
        size_t take = 4 * KN_RT_LANES - off;
        if (take > n - i) take = n - i;
        for (size_t k = 0; k < take; k++)
            out[i + k] = u[off + k] >= p ? in[i + k] * scale : 0.0f;
        i += take;
    }
}

float kn_rt_normal(uint64_t seed, uint64_t stream, uint64_t index)
{
    philox_ctr r = block(seed, stream, index);
    /* u1 in (0,1] so the log is finite. */
    double u1 = ((double)(r.v[1] >> 8) + 1.0) * (1.0 / 16777216.0);
    double u2 = (double)(r.v[2] >> 8) * (1.0 / 16777216.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* kn_rt_rng.c — Philox4x32-10 (Salmon et al., SC'11).  Counter-based so a
 * value is a pure function of (seed, stream, index): CPU and GPU backends,
 * resumed runs and any evaluation order all draw identical numbers. */
#include "kn_rt.h"

#include <immintrin.h>
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
 * first + l, i.e. u[k] belongs to counter 4 * first + k.  Each 32-bit word
 * sits zero-extended in a 64-bit vector lane so one vector multiply gives
 * the 64-bit products whose halves Philox needs (GCC does not vectorize the
 * scalar form); the clones pick AVX-512 or AVX2 on the CPU it runs on.
 * Same numbers as kn_rt_uniform4, block by block (tested). */
#define KN_RT_LANES 16
typedef uint64_t kn_u64x8 __attribute__((vector_size(64)));

__attribute__((target_clones("avx2", "default")))
static void uniform_lanes_generic(uint64_t seed, uint64_t stream, uint64_t first, float *u)
{
    const kn_u64x8 lo32 = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu,
                           0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    for (int half = 0; half < KN_RT_LANES / 8; half++) {
        kn_u64x8 c0, c1, c2, c3;
        for (int l = 0; l < 8; l++) {
            uint64_t index = first + (uint64_t)(8 * half + l);
            c0[l] = (uint32_t)index;
            c1[l] = (uint32_t)(index >> 32);
            c2[l] = (uint32_t)stream;
            c3[l] = (uint32_t)(stream >> 32);
        }
        uint64_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
        for (int r = 0; r < 10; r++) {
            kn_u64x8 p0 = c0 * 0xD2511F53u, p1 = c2 * 0xCD9E8D57u;
            kn_u64x8 n0 = (p1 >> 32) ^ c1 ^ k0;
            kn_u64x8 n2 = (p0 >> 32) ^ c3 ^ k1;
            c1 = p1 & lo32;
            c3 = p0 & lo32;
            c0 = n0;
            c2 = n2;
            k0 = (uint32_t)(k0 + 0x9E3779B9u);
            k1 = (uint32_t)(k1 + 0xBB67AE85u);
        }
        for (int l = 0; l < 8; l++) {
            float *o = u + 4 * (8 * half + l);
            o[0] = to_unit((uint32_t)c0[l]);
            o[1] = to_unit((uint32_t)c1[l]);
            o[2] = to_unit((uint32_t)c2[l]);
            o[3] = to_unit((uint32_t)c3[l]);
        }
    }
}

/* AVX-512: the 16 blocks' words in 32-bit lanes; _mm512_mul_epu32 gives
 * the 64-bit products of the even lanes, and of the odd lanes once shifted
 * down, so the high halves cost two multiplies per word instead of the
 * generic path's emulated 64-bit ones. */
__attribute__((target("avx512f")))
static __m512i mulhi_epu32(__m512i a, __m512i k)
{
    __m512i even = _mm512_srli_epi64(_mm512_mul_epu32(a, k), 32);
    __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), k);
    return _mm512_mask_blend_epi32(0xAAAA, even, odd);
}

__attribute__((target("avx512f")))
static void uniform_lanes_avx512(uint64_t seed, uint64_t stream, uint64_t first, float *u)
{
    uint32_t lo[16], hi[16];
    for (int l = 0; l < 16; l++) {
        lo[l] = (uint32_t)(first + (uint64_t)l);
        hi[l] = (uint32_t)((first + (uint64_t)l) >> 32);
    }
    __m512i c0 = _mm512_loadu_si512(lo), c1 = _mm512_loadu_si512(hi);
    __m512i c2 = _mm512_set1_epi32((int)(uint32_t)stream), c3 = _mm512_set1_epi32((int)(uint32_t)(stream >> 32));
    const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53u), m1 = _mm512_set1_epi32((int)0xCD9E8D57u);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        __m512i hi0 = mulhi_epu32(c0, m0), hi1 = mulhi_epu32(c2, m1);
        __m512i lo0 = _mm512_mullo_epi32(c0, m0), lo1 = _mm512_mullo_epi32(c2, m1);
        c0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32((int)k0));
        c2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)k1));
        c1 = lo1;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    const __m512 unit = _mm512_set1_ps(1.0f / 16777216.0f);
    float w[4][16];
    _mm512_storeu_ps(w[0], _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(c0, 8)), unit));
    _mm512_storeu_ps(w[1], _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(c1, 8)), unit));
    _mm512_storeu_ps(w[2], _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(c2, 8)), unit));
    _mm512_storeu_ps(w[3], _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(c3, 8)), unit));
    for (int l = 0; l < 16; l++)
        for (int k = 0; k < 4; k++) u[4 * l + k] = w[k][l];
}

typedef void (*uniform_lanes_fn)(uint64_t, uint64_t, uint64_t, float *);

static uniform_lanes_fn pick_uniform_lanes(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? uniform_lanes_avx512 : uniform_lanes_generic;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void kn_rt_dropout(uint64_t seed, uint64_t stream, uint64_t base, size_t n, float p,
                   float scale, const float *in, float *out)
{
    static uniform_lanes_fn uniform_lanes; /* idempotent: a race stores the same pointer */
    if (!uniform_lanes) uniform_lanes = pick_uniform_lanes();
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

/* kn_image.c — see kn_image.h.  Decoding is the libraries' job; what is
 * ours is matching PIL: its colour conversions, its resample filter and its
 * rounding, so features agree with a torchvision pipeline. */
#include "kn_image.h"
#include "kn_rt.h"
#include "kn_rt_err.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stb/stb_image.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <jerror.h>
#include <jpeglib.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <immintrin.h>
#endif

void kn_img_free(kn_img *im)
{
    free(im->px);
    memset(im, 0, sizeof *im);
}

#define IMG_SLACK 16

static int img_alloc(kn_img *im, int w, int h, char *err, size_t errcap)
{
    *im = (kn_img){.w = w, .h = h, .dct_num = 8, .full_w = w, .full_h = h};
    /* Slack, zeroed: the SIMD resampler loads 4 or 16 bytes from a pixel. */
    im->px = malloc((size_t)w * h * 3 + IMG_SLACK);
    if (!im->px) return kn_rt_errf(err, errcap, "out of memory for a %dx%d image", w, h);
    memset(im->px + (size_t)w * h * 3, 0, IMG_SLACK);
    return 0;
}

/* ---- files ---- */

static int read_all(const char *path, unsigned char **buf, size_t *len, char *err, size_t errcap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return kn_rt_errf(err, errcap, "%s: cannot open: %s", path, strerror(errno));
    unsigned char *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            unsigned char *nb = realloc(b, cap);
            if (!nb) {
                free(b);
                fclose(f);
                return kn_rt_errf(err, errcap, "%s: out of memory", path);
            }
            b = nb;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return kn_rt_errf(err, errcap, "%s: read error", path);
    }
    *buf = b;
    *len = n;
    return 0;
}

typedef enum { FMT_NONE, FMT_JPEG, FMT_PNG, FMT_BMP } img_fmt;

/* The format from the magic bytes; other known formats get a name for the
 * "unsupported" message. */
static img_fmt sniff(const unsigned char *b, size_t n, const char **other)
{
    *other = NULL;
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return FMT_JPEG;
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return FMT_PNG;
    if (n >= 2 && memcmp(b, "BM", 2) == 0) return FMT_BMP;
    if (n >= 4 && memcmp(b, "GIF8", 4) == 0) *other = "GIF";
    else if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) *other = "WebP";
    else if (n >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0)) *other = "TIFF";
    return FMT_NONE;
}

static int fmt_error(const char *path, size_t n, const char *other, char *err, size_t errcap)
{
    if (n == 0) return kn_rt_errf(err, errcap, "%s: empty file, not an image", path);
    if (other)
        return kn_rt_errf(err, errcap, "%s: unsupported image format %s (JPEG, PNG or BMP only)", path, other);
    return kn_rt_errf(err, errcap, "%s: not an image (no JPEG, PNG or BMP signature)", path);
}

/* ---- resampling (PIL's ImagingResample, bilinear filter, 8-bit path) ---- */

/* PIL's fixed point (Resample.c): coefficients scaled by 2^22 (32 bits less
 * 8 for the pixel and 2 of headroom), each sum starting at one half and
 * shifted back, so every pass rounds to 8 bits exactly as PIL's does. */
#define PREC_BITS 22
#define HALF (1 << (PREC_BITS - 1))
/* The SIMD passes split a coefficient k = hi * 2^11 + lo so both halves fit
 * the 16-bit multiplier (pmaddwd); the two sums recombine exactly. */
#define SPLIT_BITS 11

static double triangle(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Filter taps of output pixels [first, first+count) of a resize of the
 * source span [0, span) (in_size pixels exist) to out_size pixels.  Every
 * output gets the same ksize taps, so inner loops have one trip count: the
 * taps past PIL's (edge-clipped) window are zero, and the window moves left
 * where it would run past the last pixel. */
typedef struct {
    int ksize;
    int *lo;                 /* first tap per output pixel; lo + ksize <= in_size */
    int32_t *k;              /* count * ksize, PIL's fixed-point coefficients */
} taps;

static void taps_free(taps *t)
{
    free(t->lo);
    free(t->k);
    memset(t, 0, sizeof *t);
}

/* PIL's window of source pixels [*lo, *lo + *n) for an output pixel. */
static void tap_bounds(double center, double support, int in_size, int *lo, int *n)
{
    int a = (int)(center - support + 0.5), b = (int)(center + support + 0.5);
    if (a < 0) a = 0;
    if (b > in_size) b = in_size;
    *lo = a;
    *n = b - a;
}

/* One output pixel's weights as PIL's precompute_coeffs (in double,
 * normalised to sum 1) and normalize_coeffs_8bpc (rounded to fixed point). */
static void taps_one(double center, double support, double fscale, int in_size, int ksize, double *w, int *at,
                     int32_t *k)
{
    double ww = 0, ss = 1.0 / fscale;
    int lo, n;
    tap_bounds(center, support, in_size, &lo, &n);
    for (int x = 0; x < n; x++) ww += (w[x] = triangle((x + lo - center + 0.5) * ss));
    *at = lo + ksize > in_size ? in_size - ksize : lo;
    for (int x = 0; x < n; x++) {
        double v = (ww != 0.0 ? w[x] / ww : w[x]) * (1 << PREC_BITS);
        k[lo - *at + x] = (int32_t)(v < 0 ? v - 0.5 : v + 0.5);
    }
}

static int taps_make(int in_size, double span, int out_size, int first, int count, taps *t)
{
    double scale = span / out_size, fscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * fscale;
    /* ksize: the widest window of these outputs (PIL's ksize, 2 ceil(support)
     * + 1, is one more for most scales: all-zero taps worth skipping). */
    t->ksize = 1;
    for (int i = 0, lo, n; i < count; i++) {
        tap_bounds((first + i + 0.5) * scale, support, in_size, &lo, &n);
        if (n > t->ksize) t->ksize = n;
    }
    t->lo = malloc(sizeof(int) * (size_t)count + 1);
    t->k = calloc((size_t)count * t->ksize + 1, sizeof(int32_t));
    double *w = malloc(sizeof(double) * (size_t)t->ksize);
    if (!t->lo || !t->k || !w) {
        free(w);
        taps_free(t);
        return -1;
    }
    for (int i = 0; i < count; i++)
        taps_one((first + i + 0.5) * scale, support, fscale, in_size, t->ksize, w, &t->lo[i],
                 t->k + (size_t)i * t->ksize);
    free(w);
    return 0;
}

static inline uint8_t clip8(int32_t v)
{
    v >>= PREC_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* The source of a resize: rows of `stride` bytes holding the w x h window
 * at (x0, y0) of an in_w x in_h picture that spans span_w x span_h of the
 * output grid's source extent (a DCT-scaled decode spans less than its
 * pixel count only by libjpeg's rounding up). */
typedef struct {
    const uint8_t *px;
    size_t stride;
    int x0, y0, w, h, in_w, in_h;
    double span_w, span_h;
} src_view;

/* The resize of `v` to out_w x out_h, of which only the window (ox, oy,
 * cw, ch) is computed. */
typedef struct {
    int out_w, out_h, ox, oy, cw, ch;
} out_win;

/* Taps of both passes for that window. */
static int plan_taps(const src_view *v, const out_win *o, taps *th, taps *tv)
{
    memset(th, 0, sizeof *th);
    memset(tv, 0, sizeof *tv);
    if (!taps_make(v->in_w, v->span_w, o->out_w, o->ox, o->cw, th) &&
        !taps_make(v->in_h, v->span_h, o->out_h, o->oy, o->ch, tv))
        return 0;
    taps_free(th);
    taps_free(tv);
    return -1;
}

/* Source pixels [*a, *b) the taps read (the edge shift can make lo step
 * back, so scan them all). */
static void taps_extent(const taps *t, int count, int *a, int *b)
{
    *a = t->lo[0];
    *b = t->lo[0] + t->ksize;
    for (int i = 1; i < count; i++) {
        if (t->lo[i] < *a) *a = t->lo[i];
        if (t->lo[i] + t->ksize > *b) *b = t->lo[i] + t->ksize;
    }
}

/* Horizontal pass over one row: `count` RGB outputs from the RGB row s
 * (whose first pixel is source pixel x0). */
static void hpass_scalar(const uint8_t *s, int x0, const taps *t, int count, uint8_t *o)
{
    int K = t->ksize;
    for (int x = 0; x < count; x++) {
        const uint8_t *p = s + (size_t)(t->lo[x] - x0) * 3;
        const int32_t *k = t->k + (size_t)x * K;
        int32_t r = HALF, g = HALF, b = HALF;
        for (int j = 0; j < K; j++, p += 3) {
            r += p[0] * k[j];
            g += p[1] * k[j];
            b += p[2] * k[j];
        }
        o[3 * x] = clip8(r);
        o[3 * x + 1] = clip8(g);
        o[3 * x + 2] = clip8(b);
    }
}

/* Vertical pass of bytes [from, n) of one output row from the rows r[j]. */
static void vpass_scalar(const uint8_t *const *r, const int32_t *k, int K, size_t from, size_t n, uint8_t *o)
{
    for (size_t i = from; i < n; i++) {
        int32_t acc = HALF;
        for (int j = 0; j < K; j++) acc += r[j][i] * k[j];
        o[i] = clip8(acc);
    }
}

/* Coefficient pairs (k[2i], k[2i+1]) as 8 lanes of int16, hi then lo, for
 * groups of g outputs side by side (g = 2: AVX2 does two outputs per
 * register; a missing last one repeats its neighbour).  Per group and
 * pair: g x 8 hi, then g x 8 lo. */
static int16_t *pairs_make(const taps *t, int count, int g)
{
    int K = t->ksize, np = (K + 1) / 2, groups = (count + g - 1) / g;
    int16_t *v = malloc(sizeof(int16_t) * 16 * (size_t)np * groups * g + 1);
    if (!v) return NULL;
    for (int gi = 0; gi < groups; gi++)
        for (int i = 0; i < np; i++)
            for (int m = 0; m < g; m++) {
                int x = gi * g + m < count ? gi * g + m : count - 1;
                const int32_t *k = t->k + (size_t)x * K + 2 * i;
                int32_t k0 = k[0], k1 = 2 * i + 1 < K ? k[1] : 0;
                int16_t *d = v + ((size_t)gi * np + i) * 16 * g + 8 * m;
                for (int l = 0; l < 8; l += 2) {
                    d[l] = (int16_t)(k0 >> SPLIT_BITS);
                    d[l + 1] = (int16_t)(k1 >> SPLIT_BITS);
                    d[8 * g + l] = (int16_t)(k0 & ((1 << SPLIT_BITS) - 1));
                    d[8 * g + l + 1] = (int16_t)(k1 & ((1 << SPLIT_BITS) - 1));
                }
            }
    return v;
}

#ifdef __SSE2__
/* SSE2 (every x86-64): pmaddwd multiplies 16-bit pairs, so two taps go
 * through one instruction, pixel j and j+1 interleaved, each coefficient
 * as its hi and lo halves.  Exact: the same integers as the scalar loops. */

/* hi * 2^11 + lo shifted back (lo's sums start at one half, PIL's
 * rounding). */
static inline __m128i combine(__m128i hi, __m128i lo)
{
    return _mm_srai_epi32(_mm_add_epi32(_mm_slli_epi32(hi, SPLIT_BITS), lo), PREC_BITS);
}

/* 4 bytes from p: one RGB pixel and the next byte, which the caller's
 * buffer has (img_alloc's slack bytes past the last row). */
static inline __m128i load4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm_cvtsi32_si128(v);
}

/* One output pixel: lanes R, G, B and a don't-care. */
static inline __attribute__((always_inline)) void hpass_px(const uint8_t *p, const int16_t *c, const int K, uint8_t *o)
{
    const __m128i z = _mm_setzero_si128();
    __m128i hi = z, lo = _mm_set1_epi32(HALF);
    for (int j = 0; j < K; j += 2, p += 6, c += 16) {
        __m128i b = j + 1 < K ? load4(p + 3) : z;
        __m128i v = _mm_unpacklo_epi8(_mm_unpacklo_epi8(load4(p), b), z); /* r0 r1 g0 g1 b0 b1 .. */
        hi = _mm_add_epi32(hi, _mm_madd_epi16(v, _mm_loadu_si128((const __m128i *)c)));
        lo = _mm_add_epi32(lo, _mm_madd_epi16(v, _mm_loadu_si128((const __m128i *)(c + 8))));
    }
    __m128i r = _mm_packus_epi16(_mm_packs_epi32(combine(hi, lo), z), z);
    int32_t px = _mm_cvtsi128_si32(r);
    memcpy(o, &px, 3);
}

/* As hpass_scalar; pk from pairs_make(g = 1).  K a constant here lets the
 * tap loop unroll. */
static inline __attribute__((always_inline)) void hpass_k(const uint8_t *s, int x0, const int *lo, const int16_t *pk,
                                                          int count, uint8_t *o, const int K)
{
    const int np = (K + 1) / 2;
    for (int x = 0; x < count; x++) hpass_px(s + (size_t)(lo[x] - x0) * 3, pk + (size_t)x * np * 16, K, o + 3 * x);
}

static void hpass(const uint8_t *s, int x0, const taps *t, const int16_t *pk, int count, uint8_t *o)
{
    switch (t->ksize) { /* 2-3: up to 1x, 4-5: to 2x, 6-7: to 3x downscaling */
    case 2: hpass_k(s, x0, t->lo, pk, count, o, 2); break;
    case 3: hpass_k(s, x0, t->lo, pk, count, o, 3); break;
    case 4: hpass_k(s, x0, t->lo, pk, count, o, 4); break;
    case 5: hpass_k(s, x0, t->lo, pk, count, o, 5); break;
    case 6: hpass_k(s, x0, t->lo, pk, count, o, 6); break;
    case 7: hpass_k(s, x0, t->lo, pk, count, o, 7); break;
    default: hpass_k(s, x0, t->lo, pk, count, o, t->ksize);
    }
}

/* As vpass_scalar over whole 8-byte groups from i, the rest scalar; c
 * holds the row's coefficient pairs (pairs_make, g = 1). */
static void vpass(const uint8_t *const *r, const int32_t *k, const int16_t *c, int K, size_t i, size_t n,
                  uint8_t *o)
{
    const __m128i z = _mm_setzero_si128();
    for (; i + 8 <= n; i += 8) {
        __m128i h0 = z, h1 = z, l0 = _mm_set1_epi32(HALF), l1 = l0;
        for (int j = 0; j < K; j += 2) {
            __m128i kh = _mm_loadu_si128((const __m128i *)(c + 8 * j)),
                    kl = _mm_loadu_si128((const __m128i *)(c + 8 * j + 8));
            __m128i a = _mm_loadl_epi64((const __m128i *)(r[j] + i));
            __m128i b = j + 1 < K ? _mm_loadl_epi64((const __m128i *)(r[j + 1] + i)) : z;
            __m128i ab = _mm_unpacklo_epi8(a, b), v0 = _mm_unpacklo_epi8(ab, z), v1 = _mm_unpackhi_epi8(ab, z);
            h0 = _mm_add_epi32(h0, _mm_madd_epi16(v0, kh));
            h1 = _mm_add_epi32(h1, _mm_madd_epi16(v1, kh));
            l0 = _mm_add_epi32(l0, _mm_madd_epi16(v0, kl));
            l1 = _mm_add_epi32(l1, _mm_madd_epi16(v1, kl));
        }
        __m128i w = _mm_packs_epi32(combine(h0, l0), combine(h1, l1));
        _mm_storel_epi64((__m128i *)(o + i), _mm_packus_epi16(w, z));
    }
    vpass_scalar(r, k, K, i, n, o);
}

/* AVX2, where the CPU has it: two outputs per register, one 16-byte load
 * holding up to 5 source pixels, pshufb pairing their bytes; so taps
 * (ksize) <= 5 here, which covers downscaling by up to 2x. */
#define AVX2 __attribute__((target("avx2")))

AVX2 static inline __m256i combine256(__m256i hi, __m256i lo)
{
    return _mm256_srai_epi32(_mm256_add_epi32(_mm256_slli_epi32(hi, SPLIT_BITS), lo), PREC_BITS);
}

/* Pixel pairs (0,1), (2,3), (4,-) of 16 loaded bytes as int16
 * [r0 r1 g0 g1 b0 b1 0 0] (-1: a zero byte). */
#define PAIR_LANE(a, b) 3 * a, -1, 3 * b, -1, 3 * a + 1, -1, 3 * b + 1, -1, 3 * a + 2, -1, 3 * b + 2, -1, -1, -1, -1, -1
#define PAIR_MASK(a, b) _mm256_setr_epi8(PAIR_LANE(a, b), PAIR_LANE(a, b))

/* Outputs off[0] and off[1] (byte offsets in s of their first taps) as
 * int32 [R G B _ | R G B _], np pairs of taps, coefficients c (pairs_make,
 * g = 2).  Reads 16 bytes from a pixel (img_alloc's slack covers the last
 * row). */
AVX2 static inline __attribute__((always_inline)) __m256i hpass_avx2_two(const uint8_t *s, const int *off,
                                                                         const int16_t *c, const int np)
{
    const __m256i m[3] = {PAIR_MASK(0, 1), PAIR_MASK(2, 3), PAIR_MASK(4, 5)};
    __m128i a = _mm_loadu_si128((const __m128i *)(s + off[0])), b = _mm_loadu_si128((const __m128i *)(s + off[1]));
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1), hi = _mm256_setzero_si256();
    __m256i lo = _mm256_set1_epi32(HALF);
    for (int i = 0; i < np; i++) {
        __m256i pv = _mm256_shuffle_epi8(v, m[i]);
        hi = _mm256_add_epi32(hi, _mm256_madd_epi16(pv, _mm256_loadu_si256((const __m256i *)(c + 32 * i))));
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(pv, _mm256_loadu_si256((const __m256i *)(c + 32 * i + 16))));
    }
    return combine256(hi, lo);
}

/* As hpass_scalar for ksize <= 5, np = (ksize + 1) / 2 pairs of taps; pk
 * from pairs_make(g = 2); off[x]: byte offset in s of output x's first
 * tap (count + 1 of them, the last repeated for an odd count).  Writes up
 * to 5 bytes past the row's end (the ring's row padding). */
AVX2 static inline __attribute__((always_inline)) void hpass_avx2_np(const uint8_t *s, const int *off,
                                                                     const int16_t *c, int count, uint8_t *o,
                                                                     const int np)
{
    const __m256i z = _mm256_setzero_si256(), order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m128i rgb12 = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
    int x = 0;
    /* Four outputs per step: packing R G B _ to bytes and squeezing out
     * the don't-cares costs the same for four as for two. */
    for (; x + 4 <= count; x += 4, c += np * 64, o += 12) {
        __m256i p01 = hpass_avx2_two(s, off + x, c, np), p23 = hpass_avx2_two(s, off + x + 2, c + np * 32, np);
        /* int16 per lane [x, x+2 | x+1, x+3], bytes [x _ x+2 _ | x+1 _ x+3 _]:
         * dwords 0, 4, 1, 5 are the four pixels in order. */
        __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(p01, p23), z);
        __m128i px = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(b, order));
        _mm_storeu_si128((__m128i *)o, _mm_shuffle_epi8(px, rgb12));
    }
    for (; x < count; x += 2, c += np * 32, o += 6) {
        __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(hpass_avx2_two(s, off + x, c, np), z), z);
        __m128i px = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(b, order));
        _mm_storel_epi64((__m128i *)o, _mm_shuffle_epi8(px, rgb12));
    }
}

AVX2 static void hpass_avx2(const uint8_t *s, const int *off, const int16_t *pk, int ksize, int count, uint8_t *o)
{
    switch ((ksize + 1) / 2) { /* a constant trip count unrolls the tap loop */
    case 1: hpass_avx2_np(s, off, pk, count, o, 1); break;
    case 2: hpass_avx2_np(s, off, pk, count, o, 2); break;
    default: hpass_avx2_np(s, off, pk, count, o, 3);
    }
}

/* As vpass over whole 16-byte groups, then vpass for the rest; np pairs
 * of rows (r has 2 np entries: an odd ksize's last row repeated, with a
 * zero coefficient). */
AVX2 static inline __attribute__((always_inline)) void vpass_avx2_np(const uint8_t *const *r, const int16_t *c,
                                                                     size_t n, uint8_t *o, size_t *done,
                                                                     const int np)
{
    const __m256i z = _mm256_setzero_si256();
    __m256i kh[4], kl[4];
    for (int i = 0; i < np; i++) {
        kh[i] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(c + 16 * i)));
        kl[i] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(c + 16 * i + 8)));
    }
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h0 = z, h1 = z, l0 = _mm256_set1_epi32(HALF), l1 = l0;
        for (int j = 0; j < np; j++) {
            __m256i a = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(r[2 * j] + i)));
            __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(r[2 * j + 1] + i)));
            __m256i v0 = _mm256_unpacklo_epi16(a, b), v1 = _mm256_unpackhi_epi16(a, b);
            h0 = _mm256_add_epi32(h0, _mm256_madd_epi16(v0, kh[j]));
            h1 = _mm256_add_epi32(h1, _mm256_madd_epi16(v1, kh[j]));
            l0 = _mm256_add_epi32(l0, _mm256_madd_epi16(v0, kl[j]));
            l1 = _mm256_add_epi32(l1, _mm256_madd_epi16(v1, kl[j]));
        }
        /* unpacklo/hi split each 128-bit lane; packs_epi32 puts it back. */
        __m256i w = _mm256_packs_epi32(combine256(h0, l0), combine256(h1, l1));
        w = _mm256_permute4x64_epi64(_mm256_packus_epi16(w, w), 0x08);
        _mm_storeu_si128((__m128i *)(o + i), _mm256_castsi256_si128(w));
    }
    *done = i;
}

AVX2 static void vpass_avx2(const uint8_t *const *r, const int32_t *k, const int16_t *c, int K, size_t n, uint8_t *o)
{
    size_t i = 0;
    switch ((K + 1) / 2) {
    case 1: vpass_avx2_np(r, c, n, o, &i, 1); break;
    case 2: vpass_avx2_np(r, c, n, o, &i, 2); break;
    case 3: vpass_avx2_np(r, c, n, o, &i, 3); break;
    case 4: vpass_avx2_np(r, c, n, o, &i, 4); break;
    default: break; /* wider: SSE2 */
    }
    if (i < n) vpass(r, k, c, K, i, n, o); /* a call with nothing to do measured 2% of the pipeline */
}
#endif

/* AVX2's horizontal pass takes up to this many taps (1 load of 16 bytes). */
#define AVX2_MAX_K 5

/* The SIMD level used: 0 scalar, 1 SSE2, 2 AVX2; kn_image_set_simd caps it. */
static int simd_cap = 2;

void kn_image_set_simd(int level) { simd_cap = level; }

static int simd_level(void)
{
#ifdef __SSE2__
    int hw = __builtin_cpu_supports("avx2") ? 2 : 1;
#else
    int hw = 0;
#endif
    return hw < simd_cap ? hw : simd_cap;
}

/* The resampler as a stream: source rows go in one at a time, in order,
 * through the horizontal pass into a ring of ksize rows; each output row
 * is made as soon as the last row its taps read is in.  Nothing full-size
 * is stored, and what is read was just written (cache-warm). */
typedef struct {
    taps th, tv;
    int16_t *pk, *pv;        /* pairs_make of th (g = 2 for AVX2) and tv */
    int *off;                /* byte offset of each output's first tap in a fed row (cw + 1) */
    int lvl, hl;             /* SIMD level of the vertical, horizontal pass */
    int x0, y0, y1;          /* rows fed start at source column x0; rows [y0, y1) are read */
    int next;                /* output rows made */
    size_t trow;             /* bytes per output row */
    size_t rstride;          /* bytes per ring row: trow + padding for AVX2's 8-byte stores */
    uint8_t *ring;
    const uint8_t **rows;
    uint8_t *dst;            /* ch rows of trow bytes */
    int cw, ch;
} stream;

static void stream_free(stream *r)
{
    taps_free(&r->th);
    taps_free(&r->tv);
    free(r->pk);
    free(r->pv);
    free(r->ring);
    free(r->rows);
    free(r->off);
}

/* A stream for the resize of v (whose px is not used: rows come through
 * stream_row) to the window o, written to dst (o->cw x o->ch RGB). */
static int stream_init(stream *r, const src_view *v, const out_win *o, uint8_t *dst, char *err, size_t errcap)
{
    memset(r, 0, sizeof *r);
    if (plan_taps(v, o, &r->th, &r->tv))
        return kn_rt_errf(err, errcap, "out of memory resizing a %dx%d image", v->in_w, v->in_h);
    int xa, xb, K = r->tv.ksize;
    taps_extent(&r->th, o->cw, &xa, &xb);
    taps_extent(&r->tv, o->ch, &r->y0, &r->y1);
    if (xa < v->x0 || xb > v->x0 + v->w || r->y0 < v->y0 || r->y1 > v->y0 + v->h) {
        stream_free(r);
        return kn_rt_errf(err, errcap, "decoded window %dx%d at (%d,%d) misses source pixels [%d,%d)x[%d,%d)", v->w,
                          v->h, v->x0, v->y0, xa, xb, r->y0, r->y1);
    }
    r->x0 = v->x0;
    r->trow = (size_t)o->cw * 3;
    r->rstride = r->trow + 8;
    r->lvl = simd_level();
    r->hl = r->lvl == 2 && r->th.ksize > AVX2_MAX_K ? 1 : r->lvl;
    r->pk = pairs_make(&r->th, o->cw, r->hl == 2 ? 2 : 1);
    r->pv = pairs_make(&r->tv, o->ch, 1);
    r->ring = malloc(r->rstride * (size_t)K);
    r->rows = malloc(sizeof *r->rows * (size_t)(K + 1));
    r->off = malloc(sizeof *r->off * (size_t)(o->cw + 1));
    r->dst = dst;
    r->cw = o->cw;
    r->ch = o->ch;
    if (!r->pk || !r->pv || !r->ring || !r->rows || !r->off) {
        stream_free(r);
        return kn_rt_errf(err, errcap, "out of memory resizing a %dx%d image", v->in_w, v->in_h);
    }
    for (int x = 0; x <= o->cw; x++) r->off[x] = (r->th.lo[x < o->cw ? x : o->cw - 1] - v->x0) * 3;
    return 0;
}

/* Output row y from the ring. */
static void stream_vpass(stream *r, int y)
{
    int K = r->tv.ksize;
    const int32_t *k = r->tv.k + (size_t)y * K;
    const int16_t *c = r->pv + (size_t)y * ((K + 1) / 2) * 16;
    uint8_t *o = r->dst + (size_t)y * r->trow;
    for (int j = 0; j < K; j++) r->rows[j] = r->ring + (size_t)((r->tv.lo[y] + j - r->y0) % K) * r->rstride;
    r->rows[K] = r->rows[K - 1]; /* AVX2 reads pairs: an odd K's last has a zero coefficient */
#ifdef __SSE2__
    if (r->lvl == 2) vpass_avx2(r->rows, k, c, K, r->trow, o);
    else if (r->lvl == 1) vpass(r->rows, k, c, K, 0, r->trow, o);
    else
#endif
        vpass_scalar(r->rows, k, K, 0, r->trow, o);
}

/* Source row y (its pixel 0 is source column r->x0; rows need the slack
 * of img_alloc past their end, which AVX2 loads can reach). */
static void stream_row(stream *r, int y, const uint8_t *row)
{
    if (y < r->y0 || y >= r->y1) return;
    int K = r->tv.ksize;
    uint8_t *o = r->ring + (size_t)((y - r->y0) % K) * r->rstride;
    int cw = r->cw;
#ifdef __SSE2__
    if (r->hl == 2) hpass_avx2(row, r->off, r->pk, r->th.ksize, cw, o);
    else if (r->hl == 1) hpass(row, r->x0, &r->th, r->pk, cw, o);
    else
#endif
        hpass_scalar(row, r->x0, &r->th, cw, o);
    /* lo is non-decreasing, so output rows complete in order. */
    while (r->next < r->ch && r->tv.lo[r->next] + K - 1 <= y) stream_vpass(r, r->next++);
}

/* Frees the stream; an error when rows were missing. */
static int stream_finish(stream *r, char *err, size_t errcap)
{
    int rc = 0;
    if (r->next < r->ch)
        rc = kn_rt_errf(err, errcap, "resize: source rows missing (made %d of %d output rows)", r->next, r->ch);
    stream_free(r);
    return rc;
}

/* Resizes v to o->out_w x o->out_h, computing only the window of o into
 * dst: horizontal pass first over the source rows the window needs, as PIL. */
static int resample(const src_view *v, const out_win *o, uint8_t *dst, char *err, size_t errcap)
{
    stream r;
    if (stream_init(&r, v, o, dst, err, errcap)) return -1;
    for (int y = r.y0; y < r.y1; y++) stream_row(&r, y, v->px + (size_t)(y - v->y0) * v->stride);
    return stream_finish(&r, err, errcap);
}

/* resample into a new image. */
static int resample_img(const src_view *v, const out_win *o, kn_img *dst, char *err, size_t errcap)
{
    memset(dst, 0, sizeof *dst);
    if (img_alloc(dst, o->cw, o->ch, err, errcap)) return -1;
    if (resample(v, o, dst->px, err, errcap)) {
        kn_img_free(dst);
        return -1;
    }
    return 0;
}

void kn_image_resized_size(int w, int h, int resize, int *ow, int *oh)
{
    /* torchvision: the shorter side becomes `resize`, the longer
     * int(resize * long / short) (Python's true division, truncated). */
    if (w <= h) {
        *ow = resize;
        *oh = (int)((double)resize * h / w);
    } else {
        *oh = resize;
        *ow = (int)((double)resize * w / h);
    }
}

/* Resize(resize) + CenterCrop(crop) of a W x H image as an out_win. */
static int center_crop_win(int W, int H, int resize, int crop, out_win *o, char *err, size_t errcap)
{
    int rw = W, rh = H;
    if (resize > 0) kn_image_resized_size(W, H, resize, &rw, &rh);
    if (crop > rw || crop > rh)
        return kn_rt_errf(err, errcap, "a %dx%d image resized to %dx%d is smaller than the %dx%d crop", W, H, rw, rh,
                          crop, crop);
    int cw = crop > 0 ? crop : rw, ch = crop > 0 ? crop : rh;
    /* CenterCrop: int(round((size - crop) / 2.0)), Python rounds half to even. */
    *o = (out_win){rw, rh, (int)nearbyint((rw - cw) / 2.0), (int)nearbyint((rh - ch) / 2.0), cw, ch};
    return 0;
}

/* The source extent of a picture decoded at dct_num/8 of W x H. */
static void view_extent(src_view *v, int W, int H, int dct_num, int in_w, int in_h)
{
    double s = (dct_num > 0 ? dct_num : 8) / 8.0;
    v->in_w = in_w;
    v->in_h = in_h;
    v->span_w = W * s;
    v->span_h = H * s;
}

/* The window [x0, x1) x [y0, y1) of an in_w x in_h decode (at dct_num/8 of
 * W x H) that resize + crop reads; -1 when the crop does not fit (the
 * resize reports that). */
static int crop_source_window(int W, int H, int dct_num, int in_w, int in_h, int resize, int crop, int win[4])
{
    char e[8];
    out_win o;
    src_view v = {0};
    taps th, tv;
    if (center_crop_win(W, H, resize, crop, &o, e, sizeof e)) return -1;
    view_extent(&v, W, H, dct_num, in_w, in_h);
    if (plan_taps(&v, &o, &th, &tv)) return -1;
    taps_extent(&th, o.cw, &win[0], &win[2]);
    taps_extent(&tv, o.ch, &win[1], &win[3]);
    taps_free(&th);
    taps_free(&tv);
    return 0;
}

int kn_image_resize_crop(const kn_img *im, const kn_img_size *orig, int resize, int crop, kn_img *out,
                         char *err, size_t errcap)
{
    int W = orig ? orig->w : im->w, H = orig ? orig->h : im->h;
    out_win o;
    memset(out, 0, sizeof *out);
    if (center_crop_win(W, H, resize, crop, &o, err, errcap)) return -1;
    src_view v = {im->px, (size_t)im->w * 3, im->x0, im->y0, im->w, im->h, 0, 0, 0, 0};
    view_extent(&v, W, H, im->dct_num, im->full_w > 0 ? im->full_w : im->w, im->full_h > 0 ? im->full_h : im->h);
    return resample_img(&v, &o, out, err, errcap);
}

/* ---- JPEG ---- */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int eof;                 /* libjpeg reached the end of data mid-image */
} jpeg_err;

static void jpeg_on_error(j_common_ptr ci)
{
    longjmp(((jpeg_err *)ci->err)->jb, 1);
}

/* libjpeg pads a truncated scan with grey and only warns; PIL refuses such
 * files ("image file is truncated"), so do we.  Other warnings (stray bytes
 * between markers) are tolerated as PIL tolerates them. */
static void jpeg_on_message(j_common_ptr ci, int level)
{
    jpeg_err *e = (jpeg_err *)ci->err;
    if (level < 0 && e->pub.msg_code == JWRN_JPEG_EOF) e->eof = 1;
}

static int jpeg_fail(const char *path, j_decompress_ptr ci, char *err, size_t errcap)
{
    char msg[JMSG_LENGTH_MAX];
    ci->err->format_message((j_common_ptr)ci, msg);
    return kn_rt_errf(err, errcap, "%s: corrupt JPEG: %s", path, msg);
}

/* Smallest M/8 keeping the shorter output side >= min_short. */
static void jpeg_pick_scale(j_decompress_ptr ci, int min_short)
{
    ci->scale_denom = 8;
    ci->scale_num = 8;
    if (min_short <= 0) return;
    for (unsigned num = 1; num < 8; num++) {
        ci->scale_num = num;
        jpeg_calc_output_dimensions(ci);
        JDIMENSION s = ci->output_width < ci->output_height ? ci->output_width : ci->output_height;
        if ((int)s >= min_short) return;
    }
    ci->scale_num = 8;
}

/* A JPEG ends with FF D9; files with trailing bytes after it exist, so look
 * at the last few KiB rather than the last two bytes. */
static int jpeg_has_eoi(const unsigned char *b, size_t n)
{
    size_t from = n > 4096 ? n - 4096 : 0;
    for (size_t i = n; i-- > from + 1;)
        if (b[i - 1] == 0xFF && b[i] == 0xD9) return 1;
    return 0;
}

/* Narrows the decode to the window that resize + crop reads (o->resize >
 * 0): columns with jpeg_crop_scanline, which widens them to whole iMCUs,
 * rows by the caller skipping those above and stopping after the last.
 * win gets [x0, y0, x1, y1) in decoded pixels; all of it without o. */
static void jpeg_window(j_decompress_ptr ci, const kn_img_decode_opts *o, int win[4])
{
    int w[4];
    win[0] = win[1] = 0;
    win[2] = (int)ci->output_width;
    win[3] = (int)ci->output_height;
    if (!o || o->resize <= 0 ||
        crop_source_window((int)ci->image_width, (int)ci->image_height, (int)ci->scale_num, win[2], win[3],
                           o->resize, o->crop, w))
        return;
    /* A cropped scanline's outermost columns are upsampled from replicated
     * chroma, not their neighbours', so they differ from a full decode:
     * ask for one more column each side and leave those unused. */
    int a = w[0] > 0 ? w[0] - 1 : 0, b = w[2] < win[2] ? w[2] + 1 : win[2];
    JDIMENSION x = (JDIMENSION)a, cw = (JDIMENSION)(b - a);
    if (cw < ci->output_width) jpeg_crop_scanline(ci, &x, &cw);
    win[0] = (int)x;
    win[2] = (int)(x + cw);
    win[1] = w[1];
    win[3] = w[3];
}

/* PIL's cmyk2rgb: (255 - k) scaled by (255 - c), with its MULDIV255. */
static void cmyk_to_rgb(const uint8_t *in, uint8_t *out, int w, int inverted)
{
    for (int x = 0; x < w; x++) {
        int c[4];
        for (int i = 0; i < 4; i++) c[i] = inverted ? 255 - in[4 * x + i] : in[4 * x + i];
        int nk = 255 - c[3];
        for (int i = 0; i < 3; i++) {
            int t = c[i] * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            out[3 * x + i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

/* Where jpeg_decode's rows go: into an image (the window of it that o
 * asks for), or, with crop set, straight through the resize + crop of o
 * into crop (o->crop x o->crop RGB): no decoded picture is kept. */
typedef struct {
    kn_img *img;
    uint8_t *crop;
} jpeg_sink;

/* Sets up the sink for the window win of a fw x fh decode; rows then go
 * to the returned pointer (a line buffer when streaming). */
static uint8_t *sink_open(j_decompress_ptr ci, const kn_img_decode_opts *o, jpeg_sink *sk, const int win[4], int fw,
                          int fh, stream **st, char *err, size_t errcap)
{
    int w = win[2] - win[0], h = win[3] - win[1];
    if (!sk->crop) {
        if (img_alloc(sk->img, w, h, err, errcap)) return NULL;
        kn_img *im = sk->img;
        im->dct_num = (int)ci->scale_num;
        im->x0 = win[0];
        im->y0 = win[1];
        im->full_w = fw;
        im->full_h = fh;
        return im->px;
    }
    out_win ow;
    src_view v = {NULL, 0, win[0], win[1], w, h, 0, 0, 0, 0};
    view_extent(&v, (int)ci->image_width, (int)ci->image_height, (int)ci->scale_num, fw, fh);
    if (center_crop_win((int)ci->image_width, (int)ci->image_height, o->resize, o->crop, &ow, err, errcap)) return NULL;
    uint8_t *line = malloc((size_t)w * 3 + IMG_SLACK);
    if (!line || !(*st = malloc(sizeof **st)) || stream_init(*st, &v, &ow, sk->crop, err, errcap)) {
        if (line && *st) free(*st); /* stream_init failed: its message stands */
        else kn_rt_errf(err, errcap, "out of memory");
        *st = NULL;
        free(line);
        return NULL;
    }
    memset(line + (size_t)w * 3, 0, IMG_SLACK);
    return line;
}

/* sk NULL: the header only (orig). */
static int jpeg_decode(const char *path, const unsigned char *buf, size_t len, const kn_img_decode_opts *o,
                       jpeg_sink *sk, kn_img_size *orig, char *err, size_t errcap)
{
    struct jpeg_decompress_struct ci;
    jpeg_err je;
    uint8_t *volatile cmyk = NULL, *volatile line = NULL; /* freed after a longjmp */
    stream *volatile st = NULL;
    if (sk && sk->img) memset(sk->img, 0, sizeof *sk->img);
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpeg_on_error;
    je.pub.emit_message = jpeg_on_message;
    je.eof = 0;
    if (setjmp(je.jb)) {
        int rc = jpeg_fail(path, &ci, err, errcap);
        if (je.pub.msg_code == JERR_INPUT_EOF || je.pub.msg_code == JERR_NO_IMAGE)
            rc = kn_rt_errf(err, errcap, "%s: truncated JPEG (data ends inside the header)", path);
        jpeg_destroy_decompress(&ci);
        free(cmyk);
        if (st) {
            stream_free(st);
            free(st);
            free(line);
        } else if (sk && sk->img) kn_img_free(sk->img);
        return rc;
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, buf, (unsigned long)len);
    jpeg_read_header(&ci, TRUE);
    if (orig) *orig = (kn_img_size){(int)ci.image_width, (int)ci.image_height};
    if (!sk) {
        jpeg_destroy_decompress(&ci);
        return 0;
    }
    int is_cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
    /* libjpeg-turbo converts grey and YCbCr to RGB itself; CMYK we convert
     * with PIL's formula.  ISLOW DCT and fancy upsampling are PIL's defaults. */
    ci.out_color_space = is_cmyk ? JCS_CMYK : JCS_RGB;
    ci.dct_method = JDCT_ISLOW;
    jpeg_pick_scale(&ci, o ? o->min_short : 0);
    jpeg_start_decompress(&ci);
    int fw = (int)ci.output_width, fh = (int)ci.output_height, win[4];
    jpeg_window(&ci, o, win);
    stream *s0 = NULL;
    uint8_t *rows = sink_open(&ci, o, sk, win, fw, fh, &s0, err, errcap);
    if (!rows) {
        jpeg_destroy_decompress(&ci);
        char e2[1024];
        snprintf(e2, sizeof e2, "%s", err);
        return kn_rt_errf(err, errcap, "%s: %s", path, e2);
    }
    st = s0;
    if (st) line = rows;
    size_t wb = (size_t)(win[2] - win[0]) * 3;
    if (is_cmyk && !(cmyk = malloc(wb / 3 * 4))) longjmp(je.jb, 1);
    /* Skipped rows still go through the entropy decoder (it has no other
     * way to find where the next row starts), but not the IDCT. */
    if (win[1] > 0) jpeg_skip_scanlines(&ci, (JDIMENSION)win[1]);
    /* One row per call: reading several at once measured slower when each
     * goes straight on to the resampler (0.8 vs 0.63 ms CPU per photo). */
    while (ci.output_scanline < (JDIMENSION)win[3] && !je.eof) {
        int y = (int)ci.output_scanline;
        uint8_t *row = st ? line : rows + (size_t)(y - win[1]) * wb;
        JSAMPROW rp = is_cmyk ? cmyk : row;
        jpeg_read_scanlines(&ci, &rp, 1);
        /* Adobe CMYK JPEGs store inverted values (PIL's "CMYK;I"). */
        if (is_cmyk) cmyk_to_rgb(cmyk, row, (int)(wb / 3), ci.saw_Adobe_marker);
        if (st) stream_row(st, y, row);
    }
    free(cmyk);
    int stopped = ci.output_scanline < ci.output_height, rc = 0;
    if (!je.eof && !stopped) jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci); /* also aborts a decode stopped early */
    if (je.eof || (stopped && !jpeg_has_eoi(buf, len)))
        rc = kn_rt_errf(err, errcap, "%s: truncated JPEG (%s)", path,
                        je.eof ? "premature end of data" : "no end-of-image marker");
    if (st) {
        if (!rc) rc = stream_finish(st, err, errcap);
        else stream_free(st);
        free(st);
        free(line);
    } else if (rc) kn_img_free(sk->img);
    return rc;
}

/* ---- PNG ---- */

typedef struct {
    const unsigned char *buf;
    size_t len, pos;
    char msg[256];
} png_src;

static void png_read_mem(png_structp p, png_bytep dst, size_t n)
{
    png_src *s = png_get_io_ptr(p);
    if (s->len - s->pos < n) png_error(p, "truncated PNG (data ends early)");
    memcpy(dst, s->buf + s->pos, n);
    s->pos += n;
}

static void png_on_error(png_structp p, png_const_charp msg)
{
    png_src *s = png_get_io_ptr(p);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(p, 1);
}

static void png_on_warning(png_structp p, png_const_charp msg)
{
    (void)p;
    (void)msg;
}

/* Transformations that give what PIL's convert("RGB") gives: palette and
 * grey expanded, 16-bit to its high byte, alpha dropped (not composited). */
static void png_to_rgb8(png_structp p, png_infop info)
{
    int ct = png_get_color_type(p, info), bd = png_get_bit_depth(p, info);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(p);
    if (ct == PNG_COLOR_TYPE_GRAY && bd < 8) png_set_expand_gray_1_2_4_to_8(p);
    if (bd == 16) png_set_strip_16(p);
    if (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(p);
    if (ct & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(p);
    png_set_interlace_handling(p);
    png_read_update_info(p, info);
}

static int png_decode(const char *path, const unsigned char *buf, size_t len, int header_only, kn_img *out,
                      kn_img_size *orig, char *err, size_t errcap)
{
    png_src src = {buf, len, 0, ""};
    memset(out, 0, sizeof *out);
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    png_bytep *volatile rows = NULL;
    if (!info) {
        png_destroy_read_struct(&p, NULL, NULL);
        return kn_rt_errf(err, errcap, "%s: out of memory", path);
    }
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_read_struct(&p, &info, NULL);
        free(rows);
        kn_img_free(out);
        if (strncmp(src.msg, "truncated", 9) == 0) return kn_rt_errf(err, errcap, "%s: %s", path, src.msg);
        return kn_rt_errf(err, errcap, "%s: corrupt PNG: %s", path, src.msg);
    }
    png_set_read_fn(p, &src, png_read_mem);
    png_read_info(p, info);
    int w = (int)png_get_image_width(p, info), h = (int)png_get_image_height(p, info);
    if (orig) *orig = (kn_img_size){w, h};
    if (!header_only) {
        png_to_rgb8(p, info);
        if (png_get_rowbytes(p, info) != (size_t)w * 3) png_error(p, "unexpected row layout after conversion");
        if (img_alloc(out, w, h, err, errcap)) png_error(p, "out of memory");
        if (!(rows = malloc(sizeof *rows * (size_t)h))) png_error(p, "out of memory");
        for (int y = 0; y < h; y++) rows[y] = out->px + (size_t)y * w * 3;
        png_read_image(p, rows);
        png_read_end(p, NULL);
    }
    png_destroy_read_struct(&p, &info, NULL);
    free(rows);
    return 0;
}

/* ---- BMP ---- */

/* stb_image (Debian libstb) decodes BMP: uncompressed and RLE, 1..32 bits
 * per pixel, as PIL reads them; the sizes in the header are checked against
 * the bytes present before it allocates. */
static uint32_t le32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* stb_image reads past the end of a cut BMP as zeros: check the sizes the
 * headers declare against the bytes present first. */
static int bmp_check_size(const char *path, const unsigned char *buf, size_t len, int w, int h, char *err,
                          size_t errcap)
{
    if (len < 34) return kn_rt_errf(err, errcap, "%s: truncated BMP (%zu bytes)", path, len);
    uint32_t file_size = le32(buf + 2), data_at = le32(buf + 10), compression = le32(buf + 30);
    unsigned bpp = buf[28] | buf[29] << 8;
    if (file_size > len)
        return kn_rt_errf(err, errcap, "%s: truncated BMP (%zu of %u bytes)", path, len, (unsigned)file_size);
    if (compression == 0 || compression == 3) { /* uncompressed rows, padded to 4 bytes */
        uint64_t need = data_at + (((uint64_t)bpp * (uint64_t)w + 31) / 32) * 4 * (uint64_t)h;
        if (need > len)
            return kn_rt_errf(err, errcap, "%s: truncated BMP (%zu bytes, its pixels need %llu)", path, len,
                              (unsigned long long)need);
    }
    return 0;
}

static int bmp_decode(const char *path, const unsigned char *buf, size_t len, int header_only, kn_img *out,
                      kn_img_size *orig, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    if (len > INT32_MAX) return kn_rt_errf(err, errcap, "%s: BMP file too large", path);
    int w, h, ch;
    if (!stbi_info_from_memory(buf, (int)len, &w, &h, &ch))
        return kn_rt_errf(err, errcap, "%s: corrupt BMP: %s", path, stbi_failure_reason());
    if (bmp_check_size(path, buf, len, w, h, err, errcap)) return -1;
    if (orig) orig->w = w, orig->h = h;
    if (header_only) return 0;
    unsigned char *px = stbi_load_from_memory(buf, (int)len, &w, &h, &ch, 3);
    if (!px) return kn_rt_errf(err, errcap, "%s: corrupt or truncated BMP: %s", path, stbi_failure_reason());
    int rc = img_alloc(out, w, h, err, errcap);
    if (!rc) memcpy(out->px, px, (size_t)w * h * 3);
    stbi_image_free(px);
    return rc;
}

/* ---- entry points ---- */

/* PNG or BMP through resize + crop into crop: decoded whole, then resized. */
static int whole_then_crop(int rc, kn_img *im, const kn_img_size *orig, const kn_img_decode_opts *o, uint8_t *crop,
                           const char *path, char *err, size_t errcap)
{
    out_win ow;
    if (!rc) {
        src_view v = {im->px, (size_t)im->w * 3, 0, 0, im->w, im->h, 0, 0, 0, 0};
        view_extent(&v, orig->w, orig->h, 8, im->w, im->h);
        if (center_crop_win(orig->w, orig->h, o->resize, o->crop, &ow, err, errcap) ||
            resample(&v, &ow, crop, err, errcap)) {
            char e2[1024];
            snprintf(e2, sizeof e2, "%s", err);
            rc = kn_rt_errf(err, errcap, "%s: %s", path, e2);
        }
    }
    kn_img_free(im);
    return rc;
}

/* Reads and decodes path into out, or (crop set) through resize + crop
 * into crop. */
static int load(const char *path, const kn_img_decode_opts *o, kn_img *out, uint8_t *crop, kn_img_size *orig,
                char *err, size_t errcap)
{
    unsigned char *buf;
    size_t len;
    const char *other;
    kn_img tmp;
    kn_img_size sz;
    kn_img *im = crop ? &tmp : out;
    memset(im, 0, sizeof *im);
    if (read_all(path, &buf, &len, err, errcap)) return -1;
    int rc;
    switch (sniff(buf, len, &other)) {
    case FMT_JPEG: {
        jpeg_sink sk = {crop ? NULL : out, crop};
        rc = jpeg_decode(path, buf, len, o, &sk, &sz, err, errcap);
        break;
    }
    case FMT_PNG: rc = png_decode(path, buf, len, 0, im, &sz, err, errcap); break;
    case FMT_BMP: rc = bmp_decode(path, buf, len, 0, im, &sz, err, errcap); break;
    default: rc = fmt_error(path, len, other, err, errcap);
    }
    free(buf);
    if (crop && im->px) rc = whole_then_crop(rc, im, &sz, o, crop, path, err, errcap);
    if (!rc && orig) *orig = sz;
    return rc;
}

int kn_image_decode(const char *path, const kn_img_decode_opts *o, kn_img *out, kn_img_size *orig,
                    char *err, size_t errcap)
{
    return load(path, o, out, NULL, orig, err, errcap);
}

int kn_image_load_crop(const char *path, const kn_img_decode_opts *o, uint8_t *crop, kn_img_size *orig, char *err,
                       size_t errcap)
{
    if (!o || o->crop <= 0) return kn_rt_errf(err, errcap, "%s: kn_image_load_crop needs a crop size", path);
    return load(path, o, NULL, crop, orig, err, errcap);
}

static int png_has_iend(const unsigned char *b, size_t n)
{
    size_t from = n > 4096 ? n - 4096 : 0;
    for (size_t i = from; i + 4 <= n; i++)
        if (memcmp(b + i, "IEND", 4) == 0) return 1;
    return 0;
}

int kn_image_probe(const char *path, kn_img_size *size, char *err, size_t errcap)
{
    unsigned char *buf;
    size_t len;
    const char *other;
    kn_img none;
    if (read_all(path, &buf, &len, err, errcap)) return -1;
    int rc;
    switch (sniff(buf, len, &other)) {
    case FMT_JPEG:
        rc = jpeg_decode(path, buf, len, NULL, NULL, size, err, errcap);
        if (!rc && !jpeg_has_eoi(buf, len))
            rc = kn_rt_errf(err, errcap, "%s: truncated JPEG (no end-of-image marker)", path);
        break;
    case FMT_PNG:
        rc = png_decode(path, buf, len, 1, &none, size, err, errcap);
        if (!rc && !png_has_iend(buf, len)) rc = kn_rt_errf(err, errcap, "%s: truncated PNG (no IEND chunk)", path);
        break;
    case FMT_BMP: rc = bmp_decode(path, buf, len, 1, &none, size, err, errcap); break;
    default: rc = fmt_error(path, len, other, err, errcap);
    }
    free(buf);
    return rc;
}

/* ---- augmentation ---- */

/* torchvision's RandomResizedCrop.get_params with uniform draws u(k). */
static void rrc_box(int width, int height, uint64_t seed, uint64_t stream, uint64_t base, int box[4])
{
    const double smin = 0.08, smax = 1.0, lr0 = log(3.0 / 4.0), lr1 = log(4.0 / 3.0);
    double area = (double)width * height;
    for (int a = 0; a < 10; a++) {
        uint64_t k = base + 4 * (uint64_t)a;
        double target = area * (smin + (smax - smin) * kn_rt_uniform(seed, stream, k));
        double ar = exp(lr0 + (lr1 - lr0) * kn_rt_uniform(seed, stream, k + 1));
        int w = (int)nearbyint(sqrt(target * ar)), h = (int)nearbyint(sqrt(target / ar));
        if (w > 0 && w <= width && h > 0 && h <= height) {
            int i = (int)(kn_rt_uniform(seed, stream, k + 2) * (height - h + 1));
            int j = (int)(kn_rt_uniform(seed, stream, k + 3) * (width - w + 1));
            box[0] = j;
            box[1] = i;
            box[2] = w;
            box[3] = h;
            return;
        }
    }
    /* Fallback: the central crop with the ratio clamped into range. */
    double in_ratio = (double)width / height;
    int w = width, h = height;
    if (in_ratio < 3.0 / 4.0) h = (int)nearbyint(w / (3.0 / 4.0));
    else if (in_ratio > 4.0 / 3.0) w = (int)nearbyint(h * (4.0 / 3.0));
    box[0] = (width - w) / 2;
    box[1] = (height - h) / 2;
    box[2] = w;
    box[3] = h;
}

int kn_image_augment(const kn_img *im, int size, uint64_t seed, uint64_t stream, uint64_t index, kn_img *out,
                     int box[5], char *err, size_t errcap)
{
    int b[4];
    uint64_t base = index * 64;
    rrc_box(im->w, im->h, seed, stream, base, b);
    if (im->x0 || im->y0 || (im->full_w && im->full_w != im->w) || (im->full_h && im->full_h != im->h))
        return kn_rt_errf(err, errcap, "augmentation needs the whole image, not a decoded window");
    const uint8_t *at = im->px + ((size_t)b[1] * im->w + b[0]) * 3;
    src_view v = {at, (size_t)im->w * 3, 0, 0, b[2], b[3], b[2], b[3], b[2], b[3]};
    out_win o = {size, size, 0, 0, size, size};
    if (resample_img(&v, &o, out, err, errcap)) return -1;
    int flip = kn_rt_uniform(seed, stream, base + 63) < 0.5f;
    if (flip)
        for (int y = 0; y < out->h; y++) {
            uint8_t *r = out->px + (size_t)y * out->w * 3;
            for (int l = 0, h = out->w - 1; l < h; l++, h--)
                for (int c = 0; c < 3; c++) {
                    uint8_t t = r[3 * l + c];
                    r[3 * l + c] = r[3 * h + c];
                    r[3 * h + c] = t;
                }
        }
    if (box) {
        memcpy(box, b, sizeof b);
        box[4] = flip;
    }
    return 0;
}

#ifdef __SSE2__
/* Byte k of 8 RGB pixels' channel c: from the first 16 bytes or the next 8. */
#define CH_MASK(c, from)                                                                                          \
    _mm_setr_epi8(BYTE_AT(c, 0, from), BYTE_AT(c, 1, from), BYTE_AT(c, 2, from), BYTE_AT(c, 3, from),             \
                  BYTE_AT(c, 4, from), BYTE_AT(c, 5, from), BYTE_AT(c, 6, from), BYTE_AT(c, 7, from), -1, -1, -1, -1, \
                  -1, -1, -1, -1)
#define BYTE_AT(c, k, from) ((c) + 3 * (k) >= (from) && (c) + 3 * (k) < (from) + 16 ? (c) + 3 * (k) - (from) : -1)

/* As the scalar loop of kn_image_to_chw, 8 pixels at a time: each
 * channel's bytes picked out (pshufb) and looked up (gather); returns the
 * pixels done. */
AVX2 static size_t to_chw_avx2(const uint8_t *p, size_t n, const float lut[3][256], float *const out[3])
{
    const __m128i ma[3] = {CH_MASK(0, 0), CH_MASK(1, 0), CH_MASK(2, 0)},
                  mb[3] = {CH_MASK(0, 16), CH_MASK(1, 16), CH_MASK(2, 16)};
    size_t i = 0;
    for (; i + 8 <= n; i += 8, p += 24) {
        __m128i a = _mm_loadu_si128((const __m128i *)p), b = _mm_loadl_epi64((const __m128i *)(p + 16));
        for (int c = 0; c < 3; c++) {
            __m128i v = _mm_or_si128(_mm_shuffle_epi8(a, ma[c]), _mm_shuffle_epi8(b, mb[c]));
            _mm256_storeu_ps(out[c] + i, _mm256_i32gather_ps(lut[c], _mm256_cvtepu8_epi32(v), 4));
        }
    }
    return i;
}
#endif

void kn_image_to_chw(const kn_img *im, const float *norm, float *dst)
{
    /* A table per channel: the same float32 divisions torchvision does,
     * once per byte value instead of once per pixel. */
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float f = (float)v / 255.0f;
            lut[c][v] = norm ? (f - norm[2 * c]) / norm[2 * c + 1] : f;
        }
    size_t plane = (size_t)im->w * im->h, i = 0;
    float *const out[3] = {dst, dst + plane, dst + 2 * plane};
#ifdef __SSE2__
    if (simd_level() == 2) i = to_chw_avx2(im->px, plane, (const float(*)[256])lut, out);
#endif
    /* One pass over the pixels, three output streams. */
    for (const uint8_t *p = im->px + 3 * i; i < plane; i++, p += 3) {
        out[0][i] = lut[0][p[0]];
        out[1][i] = lut[1][p[1]];
        out[2][i] = lut[2][p[2]];
    }
}

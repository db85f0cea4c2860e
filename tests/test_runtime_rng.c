/* test_runtime_rng.c — counter RNG, weight init and the GEMM wrapper. */
#include "kn_rt.h"
#include "kn_rt_init.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_uniform_deterministic(void)
{
    for (uint64_t i = 0; i < 1000; i++) {
        CU_ASSERT_EQUAL(kn_rt_uniform(42, 3, i), kn_rt_uniform(42, 3, i));
    }
    /* Different seed, stream or index give different streams. */
    int same_seed = 0, same_stream = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        same_seed += kn_rt_uniform(42, 3, i) == kn_rt_uniform(43, 3, i);
        same_stream += kn_rt_uniform(42, 3, i) == kn_rt_uniform(42, 4, i);
    }
    CU_ASSERT(same_seed < 5);
    CU_ASSERT(same_stream < 5);
}

/* kn_rt_uniform4: the four words of one Philox block (word 0 is
 * kn_rt_uniform of the same counter), each uniform on [0,1) and distinct. */
static void test_uniform4(void)
{
    double sum[4] = {0};
    const int n = 100000;
    int equal_neighbours = 0;
    for (uint64_t b = 0; b < (uint64_t)n; b++) {
        float u[4], v[4];
        kn_rt_uniform4(9, 5, b, u);
        kn_rt_uniform4(9, 5, b, v);
        CU_ASSERT_FATAL(memcmp(u, v, sizeof u) == 0);
        CU_ASSERT_EQUAL(u[0], kn_rt_uniform(9, 5, b));
        for (int k = 0; k < 4; k++) {
            CU_ASSERT_FATAL(u[k] >= 0.0f && u[k] < 1.0f);
            sum[k] += u[k];
        }
        equal_neighbours += u[1] == u[2];
    }
    for (int k = 0; k < 4; k++) CU_ASSERT(fabs(sum[k] / n - 0.5) < 5e-3);
    CU_ASSERT(equal_neighbours < 5);
}

static void test_uniform_distribution(void)
{
    const int n = 1000000;
    double sum = 0, sq = 0, mn = 1, mx = 0;
    int bins[10] = {0};
    for (int i = 0; i < n; i++) {
        double u = kn_rt_uniform(7, 0, (uint64_t)i);
        CU_ASSERT_FATAL(u >= 0.0 && u < 1.0);
        sum += u;
        sq += u * u;
        mn = u < mn ? u : mn;
        mx = u > mx ? u : mx;
        bins[(int)(u * 10)]++;
    }
    double mean = sum / n, var = sq / n - mean * mean;
    CU_ASSERT(fabs(mean - 0.5) < 2e-3);
    CU_ASSERT(fabs(var - 1.0 / 12) < 1e-3);
    CU_ASSERT(mn < 1e-4 && mx > 1 - 1e-4);
    for (int b = 0; b < 10; b++) CU_ASSERT(abs(bins[b] - n / 10) < n / 200);
}

static void test_normal_distribution(void)
{
    const int n = 500000;
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) {
        double z = kn_rt_normal(1, 2, (uint64_t)i);
        CU_ASSERT_FATAL(isfinite(z));
        sum += z;
        sq += z * z;
    }
    double mean = sum / n, sd = sqrt(sq / n - mean * mean);
    CU_ASSERT(fabs(mean) < 1e-2);
    CU_ASSERT(fabs(sd - 1) < 1e-2);
    CU_ASSERT_EQUAL(kn_rt_normal(1, 2, 5), kn_rt_normal(1, 2, 5));
}

static kn_rt_param param(kn_rt_init kind, int64_t out, int64_t in)
{
    kn_rt_param p = {"w", 2, {out, in}, (size_t)(out * in), 0, KN_RT_TRAINABLE, kind, in, out, NULL};
    return p;
}

static void stats(const float *v, size_t n, double *mean, double *sd, double *amax)
{
    double s = 0, q = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        s += v[i];
        q += (double)v[i] * v[i];
        m = fabs(v[i]) > m ? fabs(v[i]) : m;
    }
    *mean = s / n;
    *sd = sqrt(q / n - *mean * *mean);
    *amax = m;
}

static void test_init_bounds(void)
{
    size_t n = 256 * 784;
    float *w = malloc(n * sizeof *w);
    double mean, sd, amax;

    kn_rt_param p = param(KN_RT_INIT_KAIMING_UNIFORM, 256, 784);
    kn_rt_init_param(&p, w, 0, 0);
    double b = 1 / sqrt(784.0);
    stats(w, n, &mean, &sd, &amax);
    CU_ASSERT(amax <= b);
    CU_ASSERT(amax > 0.999 * b);
    CU_ASSERT(fabs(sd - b / sqrt(3.0)) < 0.01 * b);

    p = param(KN_RT_INIT_BIAS_UNIFORM, 256, 784);
    CU_ASSERT_DOUBLE_EQUAL(kn_rt_init_scale(&p), b, 1e-12);

    p = param(KN_RT_INIT_XAVIER_UNIFORM, 256, 784);
    kn_rt_init_param(&p, w, 0, 1);
    b = sqrt(6.0 / (784 + 256));
    stats(w, n, &mean, &sd, &amax);
    CU_ASSERT(amax <= b && amax > 0.999 * b);

    p = param(KN_RT_INIT_XAVIER_NORMAL, 256, 784);
    kn_rt_init_param(&p, w, 0, 2);
    stats(w, n, &mean, &sd, &amax);
    CU_ASSERT(fabs(sd - sqrt(2.0 / (784 + 256))) < 0.01 * sqrt(2.0 / (784 + 256)));
    CU_ASSERT(fabs(mean) < 1e-3);

    p = param(KN_RT_INIT_KAIMING_NORMAL, 256, 784);
    kn_rt_init_param(&p, w, 0, 3);
    stats(w, n, &mean, &sd, &amax);
    CU_ASSERT(fabs(sd - sqrt(2.0 / 784)) < 0.01 * sqrt(2.0 / 784));

    p = param(KN_RT_INIT_ONES, 256, 784);
    kn_rt_init_param(&p, w, 0, 4);
    CU_ASSERT(w[0] == 1 && w[n - 1] == 1);
    p = param(KN_RT_INIT_ZEROS, 256, 784);
    kn_rt_init_param(&p, w, 0, 4);
    CU_ASSERT(w[0] == 0 && w[n - 1] == 0);

    static const float data[4] = {1, 2, 3, 4};
    kn_rt_param d = {"c", 1, {4}, 4, 0, KN_RT_BUFFER, KN_RT_INIT_DATA, 0, 0, data};
    kn_rt_init_param(&d, w, 0, 5);
    CU_ASSERT(w[0] == 1 && w[3] == 4);
    free(w);
}

static void test_init_reproducible(void)
{
    float a[100], b[100], c[100];
    kn_rt_param p = param(KN_RT_INIT_KAIMING_UNIFORM, 10, 10);
    kn_rt_init_param(&p, a, 5, 0);
    kn_rt_init_param(&p, b, 5, 0);
    kn_rt_init_param(&p, c, 6, 0);
    CU_ASSERT(memcmp(a, b, sizeof a) == 0);
    CU_ASSERT(memcmp(a, c, sizeof a) != 0);
}

static void test_sgemm(void)
{
    /* A 2x3, B 3x2 (row-major); also the transposed forms. */
    float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {7, 8, 9, 10, 11, 12}, C[4] = {1, 1, 1, 1};
    kn_rt_sgemm(0, 0, 2, 2, 3, 1, A, 3, B, 2, 0, C, 2);
    CU_ASSERT(C[0] == 58 && C[1] == 64 && C[2] == 139 && C[3] == 154);
    float At[6] = {1, 4, 2, 5, 3, 6}, Bt[6] = {7, 9, 11, 8, 10, 12};
    float D[4] = {1, 1, 1, 1};
    kn_rt_sgemm(1, 1, 2, 2, 3, 2, At, 2, Bt, 3, 1, D, 2);
    CU_ASSERT(D[0] == 117 && D[1] == 129 && D[2] == 279 && D[3] == 309);
}

/* kn_rt_dropout draws 16 blocks at a time; every element must still be
 * decided by word g % 4 of block g / 4, for bases that start mid-block and
 * runs that cross the 2^32 boundary of the block index's low word. */
static void test_dropout_matches_uniform4(void)
{
    const uint64_t bases[] = {0, 1, 3, 7, 64, 1000003, ((uint64_t)1 << 34) - 37,
                              ((uint64_t)5 << 32) + 2};
    const size_t n = 1000;
    float in[1000], out[1000];
    for (size_t i = 0; i < n; i++) in[i] = (float)i + 0.5f;
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
        kn_rt_dropout(11, 77, bases[b], n, 0.3f, 2.0f, in, out);
        int kept = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t g = bases[b] + i;
            float u[4];
            kn_rt_uniform4(11, 77, g >> 2, u);
            float want = u[g & 3] >= 0.3f ? in[i] * 2.0f : 0.0f;
            CU_ASSERT_FATAL(out[i] == want);
            kept += out[i] != 0;
        }
        CU_ASSERT(kept > 600 && kept < 800); /* ~70% kept */
    }
    /* In place gives the same. */
    float io[1000];
    memcpy(io, in, sizeof io);
    kn_rt_dropout(11, 77, 5, n, 0.3f, 2.0f, io, io);
    kn_rt_dropout(11, 77, 5, n, 0.3f, 2.0f, in, out);
    CU_ASSERT(memcmp(io, out, sizeof io) == 0);
}

/* One-row products go through sgemv; compare all transpose combinations
 * with a plain triple loop. */
static void test_sgemm_one_row(void)
{
    enum { N = 37, K = 53 };
    float a[K * 3], b[N * K], c[N], want[N];
    for (int i = 0; i < K * 3; i++) a[i] = (float)((i * 7) % 11) - 5.0f;
    for (int i = 0; i < N * K; i++) b[i] = (float)((i * 13) % 17) * 0.25f - 2.0f;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            const int lda = ta ? 3 : K; /* op(A) = A^T reads a column of a [K,3] matrix */
            const int ldb = tb ? K : N;
            for (int j = 0; j < N; j++) {
                double acc = 0;
                for (int k = 0; k < K; k++) {
                    float av = ta ? a[k * lda] : a[k];
                    float bv = tb ? b[j * ldb + k] : b[k * ldb + j];
                    acc += (double)av * bv;
                }
                c[j] = 1.0f;
                want[j] = (float)(2.0 * acc + 0.5);
            }
            kn_rt_sgemm(ta, tb, 1, N, K, 2.0f, a, lda, b, ldb, 0.5f, c, N);
            for (int j = 0; j < N; j++) CU_ASSERT_DOUBLE_EQUAL(c[j], want[j], 1e-3);
        }
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"uniform is a pure function of its counter", test_uniform_deterministic},
        {"uniform is uniform on [0,1)", test_uniform_distribution},
        {"uniform4: four uniforms per Philox block", test_uniform4},
        {"normal has mean 0, std 1", test_normal_distribution},
        {"init kinds respect PyTorch bounds", test_init_bounds},
        {"init is reproducible from the seed", test_init_reproducible},
        {"sgemm row-major with transposes", test_sgemm},
        {"sgemm with one row (sgemv) and transposes", test_sgemm_one_row},
        {"dropout draws the uniform4 words of each counter", test_dropout_matches_uniform4},
        CU_TEST_INFO_NULL,
    };
    return kt_main("runtime_rng", tests);
}

/* kn_rt_blas.c — GEMM for generated code.  Row-major because the arena
 * stores batch-outermost tensors.
 *
 * Which library: bench/gemm_sources times OpenBLAS (right core type), BLIS,
 * oneDNN and a shape-specialised generated kernel on the shapes kiln issues,
 * in one run.  On a quiet machine OpenBLAS with its own thread pool is
 * fastest on many of them, oneDNN close behind; on a loaded one OpenBLAS's
 * threading collapses (to a third on MobileNetV2's wide 1x1 shapes) and
 * oneDNN holds.  kiln cannot use OpenBLAS's pool anyway (one OpenMP pool
 * must serve the generated loops, see below), and in that setting oneDNN
 * beat single-threaded OpenBLAS split by kiln on every end-to-end workload
 * (`EXE bench`, KILN_GEMM=openblas vs default: fmnist_mlp train step 2.07
 * vs 2.34 ms, MobileNetV2 b1 4.6 vs 5.5 ms, b32 169 vs 181 ms).  So matrix
 * products go to oneDNN when the build found it (KILN_HAVE_DNNL;
 * KILN_GEMM=openblas opts out); one-row products (batch-1 inference) go to
 * OpenBLAS's sgemv.
 *
 * Threads: one OpenMP pool serves the whole program.  Generated code runs
 * its conv tiles and depthwise channels in `omp parallel for` loops and
 * calls kn_rt_sgemm from inside them; oneDNN threads with the same OpenMP
 * runtime (one thread when called inside a parallel region); an OpenBLAS
 * product called outside a parallel region is split into row or column
 * blocks here.  OpenBLAS is kept at one thread, so its own pool never
 * competes with OpenMP's for the cores. */
#include "kn_rt.h"
#include "kn_rt_blas.h"

#include <cblas.h>
#include <omp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef KILN_HAVE_DNNL
#include <dnnl.h>
#endif

#ifdef KILN_HAVE_DNNL
/* KILN_GEMM=openblas sends every product to OpenBLAS (the callgrind guard
 * does: oneDNN's JIT emits different code on every CPU). */
static int use_dnnl(void)
{
    static int cached = -1;
    if (cached < 0) {
        const char *v = getenv("KILN_GEMM");
        cached = !(v && !strcmp(v, "openblas"));
    }
    return cached;
}
#endif

/* Below this many multiply-adds a second thread costs more than it saves. */
#define KN_RT_SPLIT_MACS (1 << 18)

/* One thread's OpenBLAS product.  A one-row C is a matrix-vector product:
 * sgemv reads B once, where sgemm's small kernel packed it (fmnist_mlp's
 * five layers at batch 1: 45 us -> 17 us on 2 cores, split as below). */
static void sgemm_one(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M == 1) {
        const int inc_a = trans_a ? lda : 1; /* op(A) = A^T: A is [K,1] */
        if (trans_b) /* B is [N,K]: C = B a */
            cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, alpha, B, ldb, A, inc_a, beta, C, 1);
        else         /* B is [K,N]: C = B^T a */
            cblas_sgemv(CblasRowMajor, CblasTrans, K, N, alpha, B, ldb, A, inc_a, beta, C, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

void kn_rt_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
#ifdef KILN_HAVE_DNNL
    /* oneDNN computes the columns of C in blocks of 16: one column past a
     * multiple of 16 costs a whole block (measured, 160x49x960 and the
     * other 7x7 layers of MobileNetV2: 49 columns take 1.44x the time of
     * 48), while a single column runs as a matrix-vector product.  So the
     * lone column goes on its own: 49 = 48 + 1 is 25% faster. */
    if (M > 1 && K > 0 && N > 16 && N % 16 == 1 && use_dnnl() &&
        dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N - 1, K, alpha, A, lda, B, ldb, beta, C, ldc) ==
            dnnl_success &&
        dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, 1, K, alpha, A, lda,
                   B + (size_t)(N - 1) * (trans_b ? (size_t)ldb : 1), ldb, beta, C + (N - 1), ldc) == dnnl_success)
        return;
    if (M > 1 && K > 0 && use_dnnl() &&
        dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C,
                   ldc) == dnnl_success)
        return;
    /* oneDNN refused (it checks the leading dimensions): OpenBLAS below. */
#endif
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (threads < 2 || (double)M * N * K < KN_RT_SPLIT_MACS) {
        sgemm_one(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* Split the longer side of C into one block per thread (columns in
     * multiples of 16 floats, so blocks start on cache lines). */
    int by_cols = N >= M, len = by_cols ? N : M;
    int chunk = (len + threads - 1) / threads;
    if (by_cols) chunk = (chunk + 15) / 16 * 16;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int p = 0; p < threads; p++) {
        int lo = p * chunk, n = len - lo < chunk ? len - lo : chunk;
        if (n <= 0) continue;
        if (by_cols)
            sgemm_one(trans_a, trans_b, M, n, K, alpha, A, lda, trans_b ? B + (size_t)lo * ldb : B + lo, ldb, beta,
                      C + lo, ldc);
        else
            sgemm_one(trans_a, trans_b, n, N, K, alpha, trans_a ? A + lo : A + (size_t)lo * lda, lda, B, ldb, beta,
                      C + (size_t)lo * ldc, ldc);
    }
}

void kn_rt_set_threads(int n)
{
    if (n > 0) omp_set_num_threads(n);
}

int kn_rt_get_threads(void) { return omp_get_max_threads(); }

static size_t round_up_to(size_t v, size_t m) { return (v + m - 1) / m * m; }

void kn_rt_gemm_tiles(size_t items, size_t rows, size_t cols, size_t *tm, size_t *tn)
{
    size_t threads = (size_t)omp_get_max_threads(), want = items ? (2 * threads + items - 1) / items : 1;
    size_t nt = (cols + 511) / 512, mt = 1;
    while (nt * mt < want && rows / (mt * 2) >= 16) mt *= 2;
    while (nt * mt < want && cols / (nt + 1) >= 64) nt++;
    /* Multiples of 4 rows and 16 columns: the GEMM libraries' micro-tiles. */
    *tm = round_up_to((rows + mt - 1) / mt, 4);
    *tn = round_up_to((cols + nt - 1) / nt, 16);
    if (*tm > rows) *tm = rows;
    if (*tn > cols) *tn = cols;
}

const char *kn_rt_blas_core(void) { return openblas_get_corename(); }

const char *kn_rt_gemm_library(void)
{
#ifdef KILN_HAVE_DNNL
    return use_dnnl() ? "oneDNN" : "OpenBLAS";
#else
    return "OpenBLAS";
#endif
}

/* The OpenBLAS kernel set for this CPU, from its feature flags, or NULL. */
static const char *openblas_core_for_cpu(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SKYLAKEX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "HASWELL";
    return NULL;
}

/* Two libraries read their settings once, when they load, so those have to
 * be in the environment before the process starts: kn_rt_boot re-executes
 * the program once with them set.
 * - Debian's OpenBLAS 0.3.21 identifies x86 cores by family/model number
 *   and runs its Prescott (SSE3) kernels on CPUs newer than it knows, about
 *   5x slower than their AVX-512 ones: OPENBLAS_CORETYPE names the core from
 *   the CPU's feature flags instead.
 * - libgomp's idle threads spin 300,000 rounds (tens of milliseconds on
 *   CPUs with a slow `pause`) before they sleep.  That long a spin only
 *   burns the core a descheduled team mate needs when the machine is busy,
 *   and every barrier then waits for a whole time slice.  Too short a spin
 *   puts the team to sleep in the gaps of one call (a serial node, the
 *   optimizer's small loops) and every next loop pays a futex wake-up:
 *   1000 rounds cost 4% of a MobileNetV2 inference and 20% of an
 *   fmnist_mlp training step against 10000 (measured, 2-vCPU Xeon, quiet),
 *   which was as fast as OMP_WAIT_POLICY=active.  GOMP_SPINCOUNT=10000
 *   (about half a millisecond at most).
 * The user's own OPENBLAS_CORETYPE, GOMP_SPINCOUNT or OMP_WAIT_POLICY wins;
 * on any failure the program just goes on with the defaults. */
void kn_rt_boot(char **argv)
{
    openblas_set_num_threads(1); /* see the top of this file: threads come from OpenMP */
    const char *core = getenv("OPENBLAS_CORETYPE") ? NULL : openblas_core_for_cpu();
    bool spin = !getenv("GOMP_SPINCOUNT") && !getenv("OMP_WAIT_POLICY");
    if (core && setenv("OPENBLAS_CORETYPE", core, 1) != 0) core = NULL;
    if (spin && setenv("GOMP_SPINCOUNT", "10000", 1) != 0) spin = false;
    if (!core && !spin) return;
    setenv("OPENBLAS_NUM_THREADS", "1", 1); /* the new image then starts no OpenBLAS pool at all */
    execv("/proc/self/exe", argv);
    /* exec failed: the running libraries never saw these */
    if (core) unsetenv("OPENBLAS_CORETYPE");
    if (spin) unsetenv("GOMP_SPINCOUNT");
}

void kn_rt_sgemm_strided(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                         long long stride_a, const float *B, int ldb, long long stride_b, float beta, float *C,
                         int ldc, long long stride_c, int batch)
{
    for (int b = 0; b < batch; b++)
        kn_rt_sgemm(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta,
                    C + b * stride_c, ldc);
}

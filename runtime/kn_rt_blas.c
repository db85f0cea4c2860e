/* kn_rt_blas.c — GEMM for generated code.  Row-major because the arena
 * stores batch-outermost tensors.
 *
 * Which library: bench/gemm_sources times OpenBLAS (right core type), BLIS,
 * oneDNN and a shape-specialised generated kernel on the shapes kiln issues,
 * in one run.  oneDNN's sgemm won most of them and, with two threads, stayed
 * fast where OpenBLAS's threading fell to a third (MobileNetV2's wide 1x1
 * convolutions: ~90 vs ~25 GFLOP/s), so matrix products go to oneDNN when
 * the build found it (KILN_HAVE_DNNL).  One-row products stay on OpenBLAS's
 * sgemv, which splits B's rows over the threads. */
#include "kn_rt.h"
#include "kn_rt_blas.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef KILN_HAVE_DNNL
#include <dnnl.h>
void omp_set_num_threads(int n); /* libgomp: oneDNN's threads */
int omp_get_max_threads(void);
#endif

/* C[1,N] = alpha * op(A)[1,K] op(B)[K,N] + beta * C.  Batch-1 inference is
 * all such products; OpenBLAS's sgemm runs them on one thread with its small
 * kernel, its sgemv splits the rows of B over the threads (fmnist_mlp's five
 * layers: 45 us -> 17 us on 2 cores). */
static void kn_rt_sgemm_row(int trans_a, int trans_b, int N, int K, float alpha,
                            const float *A, int lda, const float *B, int ldb,
                            float beta, float *C)
{
    const int inc_a = trans_a ? lda : 1; /* op(A) = A^T: A is [K,1] */
    if (trans_b) /* B is [N,K]: C = B a */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, alpha, B, ldb, A, inc_a, beta, C, 1);
    else         /* B is [K,N]: C = B^T a */
        cblas_sgemv(CblasRowMajor, CblasTrans, K, N, alpha, B, ldb, A, inc_a, beta, C, 1);
}

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

void kn_rt_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (M == 1) { /* one row: a matrix-vector product */
        kn_rt_sgemm_row(trans_a, trans_b, N, K, alpha, A, lda, B, ldb, beta, C);
        return;
    }
#ifdef KILN_HAVE_DNNL
    if (K > 0 && use_dnnl() && dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B,
                            ldb, beta, C, ldc) == dnnl_success)
        return;
    /* oneDNN refused (it checks the leading dimensions): OpenBLAS below. */
#endif
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
                B, ldb, beta, C, ldc);
}

void kn_rt_set_threads(int n)
{
    if (n <= 0) return;
    openblas_set_num_threads(n);
#ifdef KILN_HAVE_DNNL
    omp_set_num_threads(n);
#endif
}

int kn_rt_get_threads(void) { return openblas_get_num_threads(); }

const char *kn_rt_blas_core(void) { return openblas_get_corename(); }

const char *kn_rt_gemm_library(void)
{
#ifdef KILN_HAVE_DNNL
    return use_dnnl() ? "oneDNN" : "OpenBLAS";
#else
    return "OpenBLAS";
#endif
}

/* Debian's OpenBLAS 0.3.21 identifies x86 cores by family/model number and
 * runs its Prescott (SSE3) kernels on CPUs newer than it knows, about 5x
 * slower than their AVX-512 ones.  It reads OPENBLAS_CORETYPE once, when
 * the library loads, so the choice has to be in the environment before the
 * process starts: re-execute once with the core named from the CPU's
 * feature flags (not its model number).  libgomp reads OMP_WAIT_POLICY at
 * load time too: two thread pools share the cores (OpenBLAS's for sgemv,
 * OpenMP's for oneDNN), and a pool that spins after its work steals the
 * other's core, so OpenMP threads sleep when idle.  A user's own settings
 * win; on any failure the program just goes on with the defaults. */
static const char *cpu_core_type(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SKYLAKEX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "HASWELL";
    return NULL;
}

void kn_rt_boot(char **argv)
{
    int changed = 0;
#ifdef KILN_HAVE_DNNL
    if (!getenv("OMP_WAIT_POLICY")) changed |= setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0;
#endif
    const char *core = getenv("OPENBLAS_CORETYPE") ? NULL : cpu_core_type();
    if (core) changed |= setenv("OPENBLAS_CORETYPE", core, 1) == 0;
    if (!changed) return;
    execv("/proc/self/exe", argv);
    /* exec failed: the running libraries never saw these */
    if (core) unsetenv("OPENBLAS_CORETYPE");
}

/* kn_rt_blas.c — GEMM for generated code.  Row-major because the arena
 * stores batch-outermost tensors; OpenBLAS does the work. */
#include "kn_rt.h"
#include "kn_rt_blas.h"

#include <cblas.h>
#include <stdlib.h>
#include <unistd.h>

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

void kn_rt_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (M == 1) { /* one row: a matrix-vector product */
        kn_rt_sgemm_row(trans_a, trans_b, N, K, alpha, A, lda, B, ldb, beta, C);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
                B, ldb, beta, C, ldc);
}

void kn_rt_set_threads(int n)
{
    if (n > 0) openblas_set_num_threads(n);
}

int kn_rt_get_threads(void) { return openblas_get_num_threads(); }

const char *kn_rt_blas_core(void) { return openblas_get_corename(); }

/* Debian's OpenBLAS 0.3.21 identifies x86 cores by family/model number and
 * runs its Prescott (SSE3) kernels on CPUs newer than it knows, about 5x
 * slower than their AVX-512 ones.  It reads OPENBLAS_CORETYPE once, when
 * the library loads, so the choice has to be in the environment before the
 * process starts: re-execute once with the core named from the CPU's
 * feature flags (not its model number).  A user's own OPENBLAS_CORETYPE
 * wins; on any failure the program just goes on with the default kernels. */
void kn_rt_boot(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE")) return;
    __builtin_cpu_init();
    const char *core = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        core = "SKYLAKEX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        core = "HASWELL";
    if (!core || setenv("OPENBLAS_CORETYPE", core, 1) != 0) return;
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE"); /* exec failed: the running library never saw it */
}

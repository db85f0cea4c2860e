/* kn_rt_blas.c — GEMM for generated code.  Row-major because the arena
 * stores batch-outermost tensors; OpenBLAS does the work. */
#include "kn_rt.h"
#include "kn_rt_blas.h"

#include <cblas.h>

void kn_rt_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
                B, ldb, beta, C, ldc);
}

void kn_rt_set_threads(int n)
{
    if (n > 0) openblas_set_num_threads(n);
}

int kn_rt_get_threads(void) { return openblas_get_num_threads(); }

/* sgemm.c — measured OpenBLAS fp32 GEMM peak for bench/run's roofline line.
 *
 *   sgemm N ITERS WARMUP THREADS
 *
 * Times C = A B (N x N, row-major, cblas_sgemm) and prints one JSON object:
 * median/min ms, GFLOP/s at 2 N^3 flops per call and the core type OpenBLAS
 * chose (so a wrong OPENBLAS_CORETYPE shows).  Built by bench/run with
 * `cc -O2 sgemm.c -lopenblas`; it is a measuring stick, not part of kiln. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_time.h"


int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: sgemm N ITERS WARMUP THREADS\n");
        return 2;
    }
    int n = atoi(argv[1]), iters = atoi(argv[2]), warmup = atoi(argv[3]), threads = atoi(argv[4]);
    if (n <= 0 || iters <= 0 || warmup < 0 || threads <= 0) {
        fprintf(stderr, "sgemm: N, ITERS and THREADS must be positive, WARMUP >= 0\n");
        return 2;
    }
    openblas_set_num_threads(threads);
    size_t nn = (size_t)n * n;
    float *A = malloc(nn * sizeof *A), *B = malloc(nn * sizeof *B), *C = malloc(nn * sizeof *C);
    double *ms = malloc((size_t)iters * sizeof *ms);
    if (!A || !B || !C || !ms) {
        fprintf(stderr, "sgemm: out of memory for N=%d\n", n);
        return 1;
    }
    for (size_t i = 0; i < nn; i++) {
        A[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        B[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    }
    for (int i = 0; i < warmup + iters; i++) {
        double t0 = now_ms();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        if (i >= warmup) ms[i - warmup] = now_ms() - t0;
    }
    qsort(ms, (size_t)iters, sizeof *ms, cmp_double);
    double med = iters % 2 ? ms[iters / 2] : 0.5 * (ms[iters / 2 - 1] + ms[iters / 2]);
    double flops = 2.0 * n * (double)n * n;
    printf("{\"n\":%d,\"ms_median\":%.4f,\"ms_min\":%.4f,\"gflop_s\":%.2f,\"gflop_s_best\":%.2f,"
           "\"threads\":%d,\"core\":\"%s\",\"check\":%g}\n",
           n, med, ms[0], flops / med / 1e6, flops / ms[0] / 1e6, threads, openblas_get_corename(),
           (double)C[nn / 2]);
    free(A), free(B), free(C), free(ms);
    return 0;
}

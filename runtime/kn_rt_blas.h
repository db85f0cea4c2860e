/* kn_rt_blas.h — thread control (the GEMM and kn_rt_get_threads, which
 * generated code calls, are in kn_rt.h). */
#ifndef KN_RT_BLAS_H
#define KN_RT_BLAS_H

void kn_rt_set_threads(int n); /* OpenMP threads; n <= 0 keeps the default (OMP_NUM_THREADS or the core count) */
/* The OpenBLAS kernel set in use ("SkylakeX", "Haswell", "Prescott"...). */
const char *kn_rt_blas_core(void);
/* The library matrix products go to: "oneDNN" or "OpenBLAS". */
const char *kn_rt_gemm_library(void);

#endif

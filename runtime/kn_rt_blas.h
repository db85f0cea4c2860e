/* kn_rt_blas.h — thread control (the GEMM itself is in kn_rt.h). */
#ifndef KN_RT_BLAS_H
#define KN_RT_BLAS_H

void kn_rt_set_threads(int n); /* OpenMP threads; n <= 0 keeps the default (OMP_NUM_THREADS or the core count) */
int kn_rt_get_threads(void);
/* The OpenBLAS kernel set in use ("SkylakeX", "Haswell", "Prescott"...). */
const char *kn_rt_blas_core(void);
/* The library matrix products go to: "oneDNN" or "OpenBLAS". */
const char *kn_rt_gemm_library(void);

#endif

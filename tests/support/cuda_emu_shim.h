/* cuda_emu_shim.h — lets a model's generated CUDA source compile as host C
 * (cc -include cuda_emu_shim.h -x c model.cu), for tests/support/cuda_emu.c.
 *
 * Every kernel becomes a plain function run by "thread 0 of a one-thread
 * grid": KN_FOR then walks all its iterations in order and one-thread
 * kernels pass their guard.  What this checks is the kernels' arithmetic
 * and indexing against the CPU path, without a GPU; what it cannot check is
 * anything about real parallel execution (races, launch limits).
 */
#ifndef KN_CUDA_EMU_SHIM_H
#define KN_CUDA_EMU_SHIM_H

#include <math.h>
#include <stddef.h>
#include <string.h>

#define KN_KERNEL_DECL void
#define __device__
#define __global__
#define __shared__
#define __syncthreads() ((void)0)
#undef INFINITY
#undef NAN

typedef struct { unsigned x, y, z; } kn_emu_dim3;
static const kn_emu_dim3 blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0}, blockDim = {1, 1, 1}, gridDim = {1, 1, 1};

static inline float __int_as_float(int v)
{
    float f;
    memcpy(&f, &v, sizeof f);
    return f;
}

static inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }

#endif

/* kn_rt_arena.h — owning a kn_rt_ctx: arena sized for every phase at a
 * given capacity, the weight blob, and where each io lives in the arena. */
#ifndef KN_RT_ARENA_H
#define KN_RT_ARENA_H

#include "kn_rt.h"

/* Bytes one phase needs at batch capacity n. */
size_t kn_rt_phase_bytes(const kn_rt_phase *p, int n);
/* Max over the model's phases, rounded up to 64 bytes. */
size_t kn_rt_arena_bytes(const kn_rt_model *m, int capacity);

/* Allocates a zeroed 64-byte aligned arena for `capacity` samples and a
 * zeroed weight blob (weights are NOT initialised: see kn_rt_init.h).
 * On failure everything is released and err says what. */
int kn_rt_ctx_open(kn_rt_ctx *ctx, const kn_rt_model *m, int capacity,
                   char *err, size_t errcap);
void kn_rt_ctx_close(kn_rt_ctx *ctx);
/* Contexts opened from now on also open the GPU (m must carry CUDA
 * kernels; --device cuda) when `on`, else stay on the CPU. */
void kn_rt_use_cuda(const kn_rt_model *m, int on);

/* Address of io in the arena for a call with batch n (see kn_rt.h). */
void *kn_rt_io_ptr(const kn_rt_ctx *ctx, const kn_rt_phase *p,
                   const kn_rt_io *io, int n);

/* First io of the phase with the given role (NULL if none); *idx gets its
 * index when idx is non-NULL. */
const kn_rt_io *kn_rt_io_find(const kn_rt_phase *p, kn_rt_io_role role, int *idx);

size_t kn_rt_dtype_size(int dtype);
/* "f32[N,784]" style shape text for error messages. */
const char *kn_rt_io_shape(const kn_rt_io *io, char *buf, size_t cap);

#endif

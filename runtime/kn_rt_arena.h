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

/* Sync points of the blobs a GPU keeps resident (blobs: KN_RT_BLOB_*
 * mask; both are no-ops on the CPU).  Call kn_rt_ctx_host_view before the
 * host reads ctx->weights / ctx->grads or changes part of them (it copies
 * back what the phases changed; -1 after a GPU error, already reported),
 * and kn_rt_ctx_host_wrote after the host changed them (init, checkpoint
 * load, restoring saved weights): the device copy is then stale and goes
 * up before the next phase. */
int kn_rt_ctx_host_view(kn_rt_ctx *ctx, int blobs);
void kn_rt_ctx_host_wrote(kn_rt_ctx *ctx, int blobs);

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

/* kn_rt_cuda_sync.c — see kn_rt_cuda_sync.h. */
#include "kn_rt_cuda_sync.h"

static int blob_bit(int blob) { return blob == KN_CUDA_SYNC_WEIGHTS ? KN_RT_BLOB_WEIGHTS : KN_RT_BLOB_GRADS; }

/* A gradient blob exists on the host only in commands that train; until
 * it does there is nothing to copy either way. */
static int host_has(const kn_rt_ctx *ctx, int blob)
{
    return blob == KN_CUDA_SYNC_WEIGHTS ? ctx->weights != NULL : ctx->grads != NULL;
}

void kn_cuda_sync_init(kn_cuda_sync *s, kn_cuda_copy_fn copy, void *backend)
{
    for (int b = 0; b < KN_CUDA_SYNC_N; b++) s->state[b] = KN_CUDA_HOST_NEWER;
    s->copy = copy;
    s->backend = backend;
}

int kn_cuda_sync_before_phase(kn_cuda_sync *s, kn_rt_ctx *ctx)
{
    for (int b = 0; b < KN_CUDA_SYNC_N; b++) {
        if (s->state[b] != KN_CUDA_HOST_NEWER || !host_has(ctx, b)) continue;
        if (s->copy(s->backend, ctx, b, 1) != 0) return -1;
        s->state[b] = KN_CUDA_SAME;
    }
    return 0;
}

int kn_cuda_phase_writes(const kn_rt_model *m, const kn_rt_phase *ph)
{
    if (ph == m->train || ph == m->head_train || ph == m->update) return KN_RT_BLOBS;
    return 0;
}

void kn_cuda_sync_after_phase(kn_cuda_sync *s, const kn_rt_model *m, const kn_rt_phase *ph)
{
    int writes = kn_cuda_phase_writes(m, ph);
    for (int b = 0; b < KN_CUDA_SYNC_N; b++)
        if (writes & blob_bit(b)) s->state[b] = KN_CUDA_DEVICE_NEWER;
}

int kn_cuda_sync_to_host(kn_cuda_sync *s, kn_rt_ctx *ctx, int blobs)
{
    for (int b = 0; b < KN_CUDA_SYNC_N; b++) {
        if (!(blobs & blob_bit(b)) || s->state[b] != KN_CUDA_DEVICE_NEWER || !host_has(ctx, b)) continue;
        if (s->copy(s->backend, ctx, b, 0) != 0) return -1;
        s->state[b] = KN_CUDA_SAME;
    }
    return 0;
}

void kn_cuda_sync_host_wrote(kn_cuda_sync *s, int blobs)
{
    for (int b = 0; b < KN_CUDA_SYNC_N; b++)
        if (blobs & blob_bit(b)) s->state[b] = KN_CUDA_HOST_NEWER;
}

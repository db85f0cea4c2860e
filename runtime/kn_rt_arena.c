/* kn_rt_arena.c — see kn_rt_arena.h. */
#include "kn_rt_arena.h"
#include "kn_rt_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

size_t kn_rt_dtype_size(int dtype) { return dtype == KN_RT_I64 ? 8 : 4; }

size_t kn_rt_phase_bytes(const kn_rt_phase *p, int n)
{
    return p ? (size_t)n * p->arena_per_sample + p->arena_fixed : 0;
}

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

#define KN_RT_HUGE ((size_t)2 << 20)

/* Zeroed memory for the arena or the weights.  Blocks of 2 MiB and more
 * are 2 MiB aligned and offered to transparent huge pages: every node
 * streams megabytes of activations, and with 4 KiB pages a MobileNet
 * layer walks a thousand TLB entries. */
static void *alloc_big(size_t bytes)
{
    if (bytes < KN_RT_HUGE) {
        void *p = aligned_alloc(64, round64(bytes ? bytes : 64));
        if (p) memset(p, 0, round64(bytes ? bytes : 64));
        return p;
    }
    size_t padded = (bytes + KN_RT_HUGE - 1) / KN_RT_HUGE * KN_RT_HUGE;
    void *p = aligned_alloc(KN_RT_HUGE, padded);
    if (!p) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, padded, MADV_HUGEPAGE); /* advice only: a kernel without THP ignores it */
#endif
    memset(p, 0, padded);
    return p;
}

size_t kn_rt_arena_bytes(const kn_rt_model *m, int capacity)
{
    const kn_rt_phase *all[] = {m->infer, m->train, m->update, m->features, m->head_train, m->head_infer};
    size_t a = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        size_t b = kn_rt_phase_bytes(all[i], capacity);
        if (b > a) a = b;
    }
    return round64(a);
}

/* The device the commands chose (--device): one per process, so every
 * context a command opens runs where the user asked. */
static int use_cuda;
static const kn_rt_cuda_backend *cuda_backend;

void kn_rt_use_cuda(const kn_rt_model *m, int on)
{
    use_cuda = on && m->cuda;
    cuda_backend = use_cuda ? m->cuda->backend : NULL;
}

int kn_rt_ctx_open(kn_rt_ctx *ctx, const kn_rt_model *m, int capacity,
                   char *err, size_t errcap)
{
    memset(ctx, 0, sizeof *ctx);
    if (capacity < 1) return kn_rt_errf(err, errcap, "batch size %d: must be >= 1", capacity);
    size_t bytes = kn_rt_arena_bytes(m, capacity);
    ctx->arena = alloc_big(bytes);
    ctx->weights = alloc_big((m->weights_numel ? m->weights_numel : 1) * sizeof(float));
    if (!ctx->arena || !ctx->weights) {
        kn_rt_ctx_close(ctx);
        return kn_rt_errf(err, errcap, "out of memory allocating %zu arena bytes for batch %d",
                          bytes, capacity);
    }
    ctx->capacity = capacity;
    ctx->seed = (uint64_t)m->seed;
    ctx->lr = m->lr;
    if (use_cuda && m->cuda && m->cuda->backend->open(ctx, m, err, errcap) != 0) {
        kn_rt_ctx_close(ctx);
        return -1;
    }
    return 0;
}

int kn_rt_ctx_host_view(kn_rt_ctx *ctx, int blobs)
{
    return ctx->cuda ? cuda_backend->to_host(ctx, blobs) : 0;
}

void kn_rt_ctx_host_wrote(kn_rt_ctx *ctx, int blobs)
{
    if (ctx->cuda) cuda_backend->host_wrote(ctx, blobs);
}

void kn_rt_ctx_close(kn_rt_ctx *ctx)
{
    if (ctx->cuda) {
        const kn_rt_cuda_backend *b = cuda_backend;
        b->close(ctx);
    }
    free(ctx->arena);
    free(ctx->weights);
    free(ctx->grads);
    free(ctx->optim);
    memset(ctx, 0, sizeof *ctx);
}

void *kn_rt_io_ptr(const kn_rt_ctx *ctx, const kn_rt_phase *p,
                   const kn_rt_io *io, int n)
{
    if (io->batched) return ctx->arena + (size_t)n * io->offset;
    return ctx->arena + (size_t)n * p->arena_per_sample + io->offset;
}

const kn_rt_io *kn_rt_io_find(const kn_rt_phase *p, kn_rt_io_role role, int *idx)
{
    for (int i = 0; p && i < p->n_io; i++)
        if (p->io_role[i] == role) {
            if (idx) *idx = i;
            return &p->io[i];
        }
    return NULL;
}

const char *kn_rt_io_shape(const kn_rt_io *io, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "%s[", io->dtype == KN_RT_I64 ? "i64" : "f32");
    for (int d = 0; d < io->rank && k < cap; d++) {
        if (d == 0 && io->batched)
            k += (size_t)snprintf(buf + k, cap - k, "N");
        else
            k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? "," : "",
                                  (long long)io->dims[d]);
    }
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* Thread-local, so the OpenMP workers of a fused kernel never share one;
 * kept for the thread's lifetime, so only the first call of a phase on a
 * thread allocates.  Out of memory for a few hundred KiB is not something
 * a kernel in the middle of a parallel loop can report: abort, saying why. */
float *kn_rt_scratch(size_t floats)
{
    static _Thread_local float *buf;
    static _Thread_local size_t cap;
    if (floats <= cap) return buf;
    free(buf);
    buf = aligned_alloc(64, round64(floats * sizeof(float)));
    if (!buf) {
        fprintf(stderr, "kiln: out of memory for a %zu-byte kernel scratch buffer\n", floats * sizeof(float));
        abort();
    }
    cap = floats;
    return buf;
}

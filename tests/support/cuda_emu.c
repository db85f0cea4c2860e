/* cuda_emu.c — a stand-in for libkiln_rt_cuda that runs a --target cuda
 * executable's GPU phases on the host, for tests on machines without a GPU.
 *
 * Linked instead of libkiln_rt_cuda; the kernels come from the model's
 * generated .cu compiled as host C with cuda_emu_shim.h into a shared
 * object named by $KILN_CUDA_EMU_KERNELS and looked up by kernel name, or,
 * when only $KILN_CUDA_EMU_SHIM is set, compiled here from the source the
 * executable embeds (so any --target cuda build linked with this library
 * runs, e.g. `kiln onnx-test --target cuda`).  The
 * generated host code (launch order, arena offsets, GEMM arguments, the
 * memcpy/memset redirects) and the kernels run as they would on a GPU, with
 * "device" memory in separate host buffers.  Phase inputs go in and outputs
 * come out on every call like kn_rt_cuda.c; the weight and gradient blobs
 * stay resident and move only when kn_rt_cuda_sync.c (the GPU backend's
 * own coherence rule, linked here too) asks for a copy.  A command that
 * misses a sync point therefore reads stale values here as on a GPU.
 * With $KILN_CUDA_EMU_STATS set, closing the context appends one line to
 * that file counting the phase calls and those blob copies:
 *   phases P weights_up A weights_down B grads_up C grads_down D
 * cuBLAS is replaced by kn_rt_sgemm (same row-major contract), so the
 * operand swap in kn_rt_cuda_sgemm is not covered here.
 */
#include "kn_rt.h"
#include "kn_rt_arena.h"
#include "kn_rt_cuda_sync.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void (*emu_kernel)(unsigned char *, unsigned char *, float *, float *, int, const kn_rt_cuda_ctx *);

struct kn_rt_cuda {
    const kn_rt_model *m;
    unsigned char *arena;
    size_t arena_bytes;
    float *weights, *grads;
    kn_rt_cuda_ctx step;
    void *so;
    emu_kernel *kernels;
    kn_cuda_sync sync;
    long phases, copies[KN_CUDA_SYNC_N][2]; /* [blob][to_device] */
};

static int emu_probe(char *err, size_t cap)
{
    const char *so = getenv("KILN_CUDA_EMU_KERNELS"), *shim = getenv("KILN_CUDA_EMU_SHIM");
    if ((so && *so) || (shim && *shim)) return 1;
    snprintf(err, cap, "emulation: KILN_CUDA_EMU_KERNELS is not set");
    return 0;
}

/* Compiles the embedded kernel source with the shim into a temporary
 * shared object and opens it. */
static void *emu_compile(const kn_rt_model *m, char *err, size_t cap)
{
    char src[] = "/tmp/kiln-emu-XXXXXX", so[64], cmd[8192];
    int fd = mkstemp(src);
    if (fd < 0) return snprintf(err, cap, "emulation: cannot create a temporary file"), NULL;
    size_t len = strlen(m->cuda->source);
    int ok = write(fd, m->cuda->source, len) == (ssize_t)len;
    close(fd);
    snprintf(so, sizeof so, "%s.so", src);
    const char *cc = getenv("KILN_CC");
    snprintf(cmd, sizeof cmd, "'%s' -std=gnu11 -O1 -fPIC -shared -w -include '%s' -x c '%s' -o '%s' -lm",
             cc && *cc ? cc : "cc", getenv("KILN_CUDA_EMU_SHIM"), src, so);
    ok = ok && system(cmd) == 0;
    void *h = ok ? dlopen(so, RTLD_NOW | RTLD_LOCAL) : NULL;
    if (!h) snprintf(err, cap, "emulation: cannot compile the embedded kernels (%s)", ok ? dlerror() : cmd);
    unlink(src);
    unlink(so);
    return h;
}

/* $KILN_CUDA_EMU_STATS: what this context did, for the tests to assert. */
static void emu_write_stats(const kn_rt_cuda *cu)
{
    const char *path = getenv("KILN_CUDA_EMU_STATS");
    FILE *f = path && *path ? fopen(path, "a") : NULL;
    if (!f) return;
    fprintf(f, "phases %ld weights_up %ld weights_down %ld grads_up %ld grads_down %ld\n", cu->phases,
            cu->copies[KN_CUDA_SYNC_WEIGHTS][1], cu->copies[KN_CUDA_SYNC_WEIGHTS][0],
            cu->copies[KN_CUDA_SYNC_GRADS][1], cu->copies[KN_CUDA_SYNC_GRADS][0]);
    fclose(f);
}

static void emu_close(kn_rt_ctx *ctx)
{
    kn_rt_cuda *cu = ctx->cuda;
    if (!cu) return;
    emu_write_stats(cu);
    free(cu->arena);
    free(cu->weights);
    free(cu->grads);
    free(cu->kernels);
    if (cu->so) dlclose(cu->so);
    free(cu);
    ctx->cuda = NULL;
}

/* kn_cuda_copy_fn: one whole blob between the host and the "device". */
static int emu_copy_blob(void *backend, kn_rt_ctx *ctx, int blob, int to_device)
{
    kn_rt_cuda *cu = backend;
    int w = blob == KN_CUDA_SYNC_WEIGHTS;
    float *host = w ? ctx->weights : ctx->grads, *dev = w ? cu->weights : cu->grads;
    size_t bytes = cu->m->weights_numel * sizeof(float);
    if (bytes) memcpy(to_device ? dev : host, to_device ? host : dev, bytes);
    cu->copies[blob][to_device ? 1 : 0]++;
    return 0;
}

static int emu_open(kn_rt_ctx *ctx, const kn_rt_model *m, char *err, size_t cap)
{
    kn_rt_cuda *cu = calloc(1, sizeof *cu);
    if (!cu) return snprintf(err, cap, "out of memory"), -1;
    ctx->cuda = cu;
    cu->m = m;
    size_t wn = m->weights_numel ? m->weights_numel : 1;
    cu->arena_bytes = kn_rt_arena_bytes(m, ctx->capacity);
    cu->arena = calloc(1, cu->arena_bytes ? cu->arena_bytes : 64);
    cu->weights = calloc(wn, sizeof(float));
    cu->grads = calloc(wn, sizeof(float));
    cu->kernels = calloc((size_t)m->cuda->n_kernels + 1, sizeof *cu->kernels);
    const char *so = getenv("KILN_CUDA_EMU_KERNELS");
    cu->so = so && *so ? dlopen(so, RTLD_NOW | RTLD_LOCAL) : emu_compile(m, err, cap);
    if (!cu->arena || !cu->weights || !cu->grads || !cu->kernels || !cu->so) {
        if (!cu->so && so && *so) snprintf(err, cap, "emulation: %s", dlerror());
        else if (cu->so) snprintf(err, cap, "emulation: out of memory");
        emu_close(ctx);
        return -1;
    }
    for (int k = 0; k < m->cuda->n_kernels; k++) {
        *(void **)&cu->kernels[k] = dlsym(cu->so, m->cuda->kernel_names[k]);
        if (!cu->kernels[k]) {
            snprintf(err, cap, "emulation: no kernel %s in $KILN_CUDA_EMU_KERNELS", m->cuda->kernel_names[k]);
            emu_close(ctx);
            return -1;
        }
    }
    kn_cuda_sync_init(&cu->sync, emu_copy_blob, cu);
    return 0;
}

static int emu_to_host(kn_rt_ctx *ctx, int blobs) { return kn_cuda_sync_to_host(&ctx->cuda->sync, ctx, blobs); }

static void emu_host_wrote(kn_rt_ctx *ctx, int blobs) { kn_cuda_sync_host_wrote(&ctx->cuda->sync, blobs); }

const kn_rt_cuda_backend kn_rt_cuda_impl = {emu_probe, emu_open, emu_close, emu_to_host, emu_host_wrote};

unsigned char *kn_rt_cuda_arena(kn_rt_cuda *cu) { return cu->arena; }
float *kn_rt_cuda_weights(kn_rt_cuda *cu) { return cu->weights; }
float *kn_rt_cuda_grads(kn_rt_cuda *cu) { return cu->grads; }

void kn_rt_cuda_launch(kn_rt_cuda *cu, int kernel, size_t work, int n, unsigned char *fixed)
{
    if (work > 0) cu->kernels[kernel](cu->arena, fixed, cu->weights, cu->grads, n, &cu->step);
}

void kn_rt_cuda_memcpy(kn_rt_cuda *cu, void *dst, const void *src, size_t bytes)
{
    (void)cu;
    if (dst != src && bytes) memmove(dst, src, bytes);
}

void kn_rt_cuda_memset(kn_rt_cuda *cu, void *dst, int value, size_t bytes)
{
    (void)cu;
    if (bytes) memset(dst, value, bytes);
}

void kn_rt_cuda_sgemm(kn_rt_cuda *cu, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    (void)cu;
    kn_rt_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void kn_rt_cuda_sgemm_strided(kn_rt_cuda *cu, int trans_a, int trans_b, int M, int N, int K, float alpha,
                              const float *A, int lda, long long stride_a, const float *B, int ldb,
                              long long stride_b, float beta, float *C, int ldc, long long stride_c, int batch)
{
    (void)cu;
    kn_rt_sgemm_strided(trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc,
                        stride_c, batch);
}

/* Inputs and labels in, outputs and loss out, at the arena offsets the
 * phase's io table gives (the same rule as kn_rt_io_ptr). */
static void emu_copy_io(kn_rt_cuda *cu, kn_rt_ctx *ctx, const kn_rt_phase *ph, int n, int up)
{
    for (int i = 0; i < ph->n_io; i++) {
        int is_in = ph->io_role[i] == KN_RT_IO_INPUT || ph->io_role[i] == KN_RT_IO_LABEL;
        if (is_in != up) continue;
        const kn_rt_io *io = &ph->io[i];
        size_t bytes = (io->batched ? (size_t)n : 1) * io->sample_numel * (io->dtype == KN_RT_I64 ? 8 : 4);
        unsigned char *host = kn_rt_io_ptr(ctx, ph, io, n);
        unsigned char *dev = cu->arena + (host - ctx->arena);
        memcpy(up ? dev : host, up ? host : dev, bytes);
    }
}

/* The rule never downloads after a phase kn_cuda_phase_writes calls
 * read-only (infer, features, head_infer): check that such a phase really
 * leaves both blobs alone, or a GPU would keep changes the host never sees.
 * NULL for a phase that writes (or without memory: then unchecked). */
static float *read_only_snapshot(const kn_rt_cuda *cu, const kn_rt_phase *ph)
{
    if (kn_cuda_phase_writes(cu->m, ph)) return NULL;
    size_t numel = cu->m->weights_numel;
    float *s = malloc(2 * numel * sizeof(float) + 1);
    if (!s) return NULL;
    memcpy(s, cu->weights, numel * sizeof(float));
    memcpy(s + numel, cu->grads, numel * sizeof(float));
    return s;
}

static void check_read_only(const kn_rt_cuda *cu, const kn_rt_phase *ph, float *before)
{
    if (!before) return;
    size_t numel = cu->m->weights_numel;
    int changed = memcmp(before, cu->weights, numel * sizeof(float)) != 0 ||
                  memcmp(before + numel, cu->grads, numel * sizeof(float)) != 0;
    free(before);
    if (!changed) return;
    fprintf(stderr, "cuda-emu: phase %s changed the weight or gradient blob, but the coherence rule "
                    "(kn_cuda_phase_writes) treats it as read-only\n", ph->name);
    abort(); /* a test harness, not the library: fail loudly */
}

void kn_rt_cuda_run_phase(kn_rt_ctx *ctx, int phase, int n)
{
    kn_rt_cuda *cu = ctx->cuda;
    const kn_rt_phase *ph = cu->m->cuda->phases[phase];
    cu->step = (kn_rt_cuda_ctx){ctx->seed, ctx->step, ctx->lr, ctx->grad_scale, ctx->sample0};
    cu->phases++;
    kn_cuda_sync_before_phase(&cu->sync, ctx); /* host memcpy: cannot fail */
    emu_copy_io(cu, ctx, ph, n, 1);
    float *before = read_only_snapshot(cu, ph);
    cu->m->cuda->phase_run[phase](ctx, n);
    check_read_only(cu, ph, before);
    kn_cuda_sync_after_phase(&cu->sync, cu->m, ph);
    emu_copy_io(cu, ctx, ph, n, 0);
}

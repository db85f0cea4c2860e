/* kn_rt_cuda.c — running a --target cuda executable's phases on the GPU.
 *
 * Linked only into executables built with `kiln build --target cuda`
 * (libkiln_rt_cuda); libkiln_rt reaches it through the model's
 * kn_rt_cuda_module, so CPU executables never need the CUDA libraries.
 * Uses the CUDA runtime API only: device 0, one stream, one cuBLAS handle
 * on it, the module's PTX loaded with cudaLibraryLoadData (re-JIT from the
 * embedded source with NVRTC when the driver cannot load that PTX, e.g. a
 * GPU older than the PTX's architecture), one device arena sized like the
 * host arena (same memory plan, same offsets), and a device weight blob.
 *
 * Coherence (issue #6): the weight blob (parameters, batchnorm buffers,
 * optimizer state) and the gradient blob live on the device for the whole
 * run; phase inputs go up on every call and the phase's outputs and loss
 * come back (the commands read them all: metrics, accuracy, features), but
 * the blobs move only when one side changed them and the other needs them.
 * Each blob has a state (kn_rt_cuda_sync.h, shared with the tests' GPU
 * emulation so they check this very rule):
 *   SAME          host and device copies are equal;
 *   HOST_NEWER    the host wrote it: uploaded before the next phase;
 *   DEVICE_NEWER  a phase wrote it: downloaded when the host asks.
 * Transitions: a fresh device starts HOST_NEWER for both blobs (it holds
 * nothing yet), so the first phase uploads the initialised or loaded
 * weights and the zeroed gradients; train, head_train and update leave the
 * blobs DEVICE_NEWER (gradients, batchnorm statistics, the step itself);
 * infer, features and head_infer leave them alone.  The sync points are
 * explicit, called by the commands through the backend (kn_rt_arena.h):
 *   kn_rt_ctx_host_view(ctx, blobs)   before the host reads a blob or
 *       changes part of it: checkpoint save, best-weights copy,
 *       --dump-grads, gradcheck's perturbations (downloads DEVICE_NEWER);
 *   kn_rt_ctx_host_wrote(ctx, blobs)  after the host changed a blob: init,
 *       checkpoint load, --resume, restoring the best weights before the
 *       test split, zeroing a new gradient blob (-> HOST_NEWER; the host's
 *       write wins over whatever the device had).
 * So a training step copies neither blob: `train --save` downloads the
 * weights once per epoch (best copy or checkpoint, whichever comes first)
 * and uploads them once more only to test the best-val weights.  A host
 * access without its sync point reads stale values: every place that
 * touches ctx->weights / ctx->grads outside a phase must call them.  After
 * a GPU error the blobs stay DEVICE_NEWER and downloads fail, so nothing
 * writes a checkpoint from a broken device.  The host arena, weights and
 * gradients are page-locked (cudaHostRegister) so the copies are async DMA
 * on the model's stream, which each phase call synchronizes before
 * returning (the host reads the loss right after).
 *
 * CUDA Graphs: a phase's launches for a batch size are captured into a
 * graph on its second call with that size (the first call runs eagerly, so
 * cuBLAS has set up its workspace) and replayed after; kernels read the step
 * scalars from device memory, so a replay sees the new step.  A failed
 * capture falls back to eager launches for that phase.  KILN_CUDA_GRAPHS=0
 * turns capture off; KILN_CUDA_SYNC=1 synchronizes after every launch so an
 * asynchronous fault is reported with its kernel and IR node.
 *
 * Errors: every CUDA/cuBLAS/NVRTC call goes through one check that prints
 * the call, file:line, the library's message and, for launches, the kernel
 * and the IR node it came from.  The first error is sticky: later launches
 * are skipped, the phase's outputs become NaN so the commands fail with
 * exit 1 (a NaN loss, a bad metric) instead of crashing.
 */
#include "kn_rt.h"
#include "kn_rt_arena.h"
#include "kn_rt_cuda_sync.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <nvrtc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kn_rt_cuda {
    const kn_rt_model *m;
    const kn_rt_cuda_module *mod;
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    cudaLibrary_t lib;
    cudaKernel_t *kernels;
    unsigned char *arena;    /* device */
    size_t arena_bytes;
    float *weights, *grads;  /* device */
    kn_rt_cuda_ctx *dctx;    /* device copy of the step scalars */
    kn_rt_cuda_ctx *hctx;    /* pinned host staging for it */
    kn_cuda_sync sync;       /* which copy of weights / grads is current */
    int failed;              /* sticky: first error already reported */
    int sync_each;           /* KILN_CUDA_SYNC=1 */
    int use_graphs;          /* KILN_CUDA_GRAPHS != 0 */
    void *pinned[3];         /* host ranges registered with cudaHostRegister */
    struct cuda_graph {      /* per phase: the captured batch size and graph */
        int n, eager_calls, broken;
        cudaGraphExec_t exec;
    } *graphs;
};

static int fail(kn_rt_cuda *cu, const char *what, const char *file, int line, const char *msg)
{
    if (!cu || !cu->failed)
        fprintf(stderr, "cuda: %s failed (%s:%d): %s\n", what, file, line, msg);
    if (cu) cu->failed = 1;
    return -1;
}

#define CU_CHECK(cu, call)                                                                      \
    do {                                                                                        \
        cudaError_t e_ = (call);                                                                \
        if (e_ != cudaSuccess) return fail((cu), #call, __FILE__, __LINE__, cudaGetErrorString(e_)); \
    } while (0)
#define CUBLAS_CHECK(cu, call)                                                                  \
    do {                                                                                        \
        cublasStatus_t s_ = (call);                                                             \
        if (s_ != CUBLAS_STATUS_SUCCESS) return fail((cu), #call, __FILE__, __LINE__, cublasGetStatusString(s_)); \
    } while (0)

static int cuda_probe(char *err, size_t cap)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        snprintf(err, cap, "%s", cudaGetErrorString(e));
        return 0;
    }
    if (count == 0) snprintf(err, cap, "the driver reports 0 devices");
    return count;
}

/* PTX for another architecture than the device's loads through the driver's
 * JIT when the device is newer; when it is not (or the driver refuses the
 * PTX), compile the embedded source for the device with NVRTC. */
static int rejit(kn_rt_cuda *cu, char **ptx_out)
{
    int major = 0, minor = 0;
    CU_CHECK(cu, cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, cu->device));
    CU_CHECK(cu, cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, cu->device));
    char arch[64];
    snprintf(arch, sizeof arch, "--gpu-architecture=compute_%d%d", major, minor);
    nvrtcProgram prog;
    if (nvrtcCreateProgram(&prog, cu->mod->source, "kiln_kernels.cu", 0, NULL, NULL) != NVRTC_SUCCESS)
        return fail(cu, "nvrtcCreateProgram", __FILE__, __LINE__, "cannot create the program");
    const char *opts[] = {arch, "--std=c++17"};
    nvrtcResult rc = nvrtcCompileProgram(prog, 2, opts);
    if (rc != NVRTC_SUCCESS) {
        size_t len = 0;
        nvrtcGetProgramLogSize(prog, &len);
        char *log = malloc(len + 1);
        if (log) {
            log[0] = 0;
            nvrtcGetProgramLog(prog, log);
            fprintf(stderr, "cuda: NVRTC re-JIT for %s failed:\n%s\n", arch + 21, log);
            free(log);
        }
        nvrtcDestroyProgram(&prog);
        return fail(cu, "nvrtcCompileProgram", __FILE__, __LINE__, nvrtcGetErrorString(rc));
    }
    size_t size = 0;
    nvrtcGetPTXSize(prog, &size);
    *ptx_out = malloc(size);
    if (!*ptx_out || nvrtcGetPTX(prog, *ptx_out) != NVRTC_SUCCESS) {
        nvrtcDestroyProgram(&prog);
        return fail(cu, "nvrtcGetPTX", __FILE__, __LINE__, "out of memory");
    }
    nvrtcDestroyProgram(&prog);
    return 0;
}

static int load_kernels(kn_rt_cuda *cu)
{
    const kn_rt_cuda_module *mod = cu->mod;
    cudaError_t e = cudaLibraryLoadData(&cu->lib, mod->ptx, NULL, NULL, 0, NULL, NULL, 0);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        fprintf(stderr, "cuda: the embedded %s PTX does not load on this GPU (%s): re-JIT from source\n",
                mod->arch, cudaGetErrorString(e));
        char *ptx = NULL;
        if (rejit(cu, &ptx) != 0) return -1;
        e = cudaLibraryLoadData(&cu->lib, ptx, NULL, NULL, 0, NULL, NULL, 0);
        free(ptx);
        CU_CHECK(cu, e);
    }
    cu->kernels = calloc((size_t)(mod->n_kernels > 0 ? mod->n_kernels : 1), sizeof *cu->kernels);
    if (!cu->kernels) return fail(cu, "calloc", __FILE__, __LINE__, "out of memory");
    for (int k = 0; k < mod->n_kernels; k++) {
        e = cudaLibraryGetKernel(&cu->kernels[k], cu->lib, mod->kernel_names[k]);
        if (e != cudaSuccess) {
            char what[256];
            snprintf(what, sizeof what, "cudaLibraryGetKernel(%s)", mod->kernel_names[k]);
            return fail(cu, what, __FILE__, __LINE__, cudaGetErrorString(e));
        }
    }
    return 0;
}

static void unpin(kn_rt_cuda *cu)
{
    for (int i = 0; i < 3; i++)
        if (cu->pinned[i]) cudaHostUnregister(cu->pinned[i]);
    memset(cu->pinned, 0, sizeof cu->pinned);
}

/* Page-locks a host range so async copies are DMA; slot i remembers it.
 * Failing is harmless (copies are then staged by the driver). */
static void pin(kn_rt_cuda *cu, int i, void *p, size_t bytes)
{
    if (!p || cu->pinned[i] == p) return;
    if (cu->pinned[i]) cudaHostUnregister(cu->pinned[i]);
    cu->pinned[i] = cudaHostRegister(p, bytes, cudaHostRegisterDefault) == cudaSuccess ? p : NULL;
    if (!cu->pinned[i]) (void)cudaGetLastError();
}

/* Bytes allocated (and pinned) per blob: at least one float. */
static size_t blob_bytes(const kn_rt_cuda *cu)
{
    return (cu->m->weights_numel ? cu->m->weights_numel : 1) * sizeof(float);
}

/* kn_cuda_copy_fn: all of one blob, async on the stream; a download waits
 * for it, since the host reads it next.  Refused after an error: the
 * device's values are then not worth a checkpoint. */
static int copy_blob(void *backend, kn_rt_ctx *ctx, int blob, int to_device)
{
    kn_rt_cuda *cu = backend;
    if (cu->failed) return -1;
    int w = blob == KN_CUDA_SYNC_WEIGHTS;
    void *host = w ? (void *)ctx->weights : (void *)ctx->grads, *dev = w ? (void *)cu->weights : (void *)cu->grads;
    size_t bytes = cu->m->weights_numel * sizeof(float);
    if (!w) pin(cu, 2, ctx->grads, blob_bytes(cu)); /* the gradient blob comes after open */
    if (bytes == 0) return 0;
    if (to_device) {
        CU_CHECK(cu, cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, cu->stream));
        return 0;
    }
    CU_CHECK(cu, cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, cu->stream));
    CU_CHECK(cu, cudaStreamSynchronize(cu->stream));
    return 0;
}

static int cuda_to_host(kn_rt_ctx *ctx, int blobs) { return kn_cuda_sync_to_host(&ctx->cuda->sync, ctx, blobs); }

static void cuda_host_wrote(kn_rt_ctx *ctx, int blobs) { kn_cuda_sync_host_wrote(&ctx->cuda->sync, blobs); }

static void drop_graphs(kn_rt_cuda *cu)
{
    for (int p = 0; cu->graphs && p < cu->mod->n_phases; p++)
        if (cu->graphs[p].exec) cudaGraphExecDestroy(cu->graphs[p].exec);
    free(cu->graphs);
    cu->graphs = NULL;
}

static void cuda_close(kn_rt_ctx *ctx)
{
    kn_rt_cuda *cu = ctx->cuda;
    if (!cu) return;
    cudaStreamSynchronize(cu->stream);
    drop_graphs(cu);
    unpin(cu);
    if (cu->blas) cublasDestroy(cu->blas);
    cudaFree(cu->arena);
    cudaFree(cu->weights);
    cudaFree(cu->grads);
    cudaFree(cu->dctx);
    cudaFreeHost(cu->hctx);
    if (cu->lib) cudaLibraryUnload(cu->lib);
    if (cu->stream) cudaStreamDestroy(cu->stream);
    free(cu->kernels);
    free(cu);
    ctx->cuda = NULL;
}

static int open_device(kn_rt_cuda *cu, const kn_rt_ctx *ctx)
{
    size_t wbytes = blob_bytes(cu);
    CU_CHECK(cu, cudaSetDevice(cu->device));
    CU_CHECK(cu, cudaStreamCreateWithFlags(&cu->stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cu, cublasCreate(&cu->blas));
    CUBLAS_CHECK(cu, cublasSetStream(cu->blas, cu->stream));
    if (load_kernels(cu) != 0) return -1;
    cu->arena_bytes = kn_rt_arena_bytes(cu->m, ctx->capacity);
    CU_CHECK(cu, cudaMalloc((void **)&cu->arena, cu->arena_bytes));
    CU_CHECK(cu, cudaMemsetAsync(cu->arena, 0, cu->arena_bytes, cu->stream));
    CU_CHECK(cu, cudaMalloc((void **)&cu->weights, wbytes));
    CU_CHECK(cu, cudaMalloc((void **)&cu->grads, wbytes));
    CU_CHECK(cu, cudaMemsetAsync(cu->grads, 0, wbytes, cu->stream));
    CU_CHECK(cu, cudaMalloc((void **)&cu->dctx, sizeof *cu->dctx));
    CU_CHECK(cu, cudaMallocHost((void **)&cu->hctx, sizeof *cu->hctx));
    cu->graphs = calloc((size_t)cu->mod->n_phases + 1, sizeof *cu->graphs);
    if (!cu->graphs) return fail(cu, "calloc", __FILE__, __LINE__, "out of memory");
    const char *g = getenv("KILN_CUDA_GRAPHS"), *sy = getenv("KILN_CUDA_SYNC");
    cu->use_graphs = !(g && strcmp(g, "0") == 0);
    cu->sync_each = sy && strcmp(sy, "1") == 0;
    if (cu->sync_each) cu->use_graphs = 0; /* a captured launch cannot be synchronized */
    pin(cu, 0, ctx->arena, kn_rt_arena_bytes(cu->m, ctx->capacity));
    pin(cu, 1, ctx->weights, wbytes);
    kn_cuda_sync_init(&cu->sync, copy_blob, cu);
    return 0;
}

static int cuda_open(kn_rt_ctx *ctx, const kn_rt_model *m, char *err, size_t cap)
{
    if (!m->cuda) return snprintf(err, cap, "this executable has no CUDA kernels (build with --target cuda)"), -1;
    if (cuda_probe(err, cap) <= 0) return -1;
    kn_rt_cuda *cu = calloc(1, sizeof *cu);
    if (!cu) return snprintf(err, cap, "out of memory"), -1;
    cu->m = m;
    cu->mod = m->cuda;
    ctx->cuda = cu;
    if (open_device(cu, ctx) != 0) {
        snprintf(err, cap, "cannot set up the GPU (see the message above)");
        cuda_close(ctx);
        return -1;
    }
    return 0;
}

const kn_rt_cuda_backend kn_rt_cuda_impl = {cuda_probe, cuda_open, cuda_close, cuda_to_host, cuda_host_wrote};

unsigned char *kn_rt_cuda_arena(kn_rt_cuda *cu) { return cu->arena; }
float *kn_rt_cuda_weights(kn_rt_cuda *cu) { return cu->weights; }
float *kn_rt_cuda_grads(kn_rt_cuda *cu) { return cu->grads; }

void kn_rt_cuda_launch(kn_rt_cuda *cu, int kernel, size_t work, int n, unsigned char *fixed)
{
    if (cu->failed || work == 0) return;
    /* Kernels loop grid-stride: cap the grid, any size is correct. */
    size_t threads = 256, blocks = (work + threads - 1) / threads;
    if (blocks > 65535) blocks = 65535;
    void *args[] = {&cu->arena, &fixed, &cu->weights, &cu->grads, &n, &cu->dctx};
    dim3 grid = {(unsigned)blocks, 1, 1}, block = {(unsigned)threads, 1, 1};
    cudaError_t e = cudaLaunchKernel((const void *)cu->kernels[kernel], grid, block, args, 0, cu->stream);
    if (e == cudaSuccess && cu->sync_each) e = cudaStreamSynchronize(cu->stream);
    if (e == cudaSuccess) return;
    char what[512];
    snprintf(what, sizeof what, "launch of kernel %s (%s)", cu->mod->kernel_names[kernel],
             cu->mod->kernel_nodes[kernel]);
    fail(cu, what, __FILE__, __LINE__, cudaGetErrorString(e));
}

void kn_rt_cuda_memcpy(kn_rt_cuda *cu, void *dst, const void *src, size_t bytes)
{
    if (cu->failed || dst == src || bytes == 0) return;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cu->stream);
    if (e != cudaSuccess) fail(cu, "cudaMemcpyAsync", __FILE__, __LINE__, cudaGetErrorString(e));
}

void kn_rt_cuda_memset(kn_rt_cuda *cu, void *dst, int value, size_t bytes)
{
    if (cu->failed || bytes == 0) return;
    cudaError_t e = cudaMemsetAsync(dst, value, bytes, cu->stream);
    if (e != cudaSuccess) fail(cu, "cudaMemsetAsync", __FILE__, __LINE__, cudaGetErrorString(e));
}

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the
 * operands instead of transposing anything. */
void kn_rt_cuda_sgemm(kn_rt_cuda *cu, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (cu->failed || M == 0 || N == 0) return;
    cublasStatus_t s = cublasSgemm(cu->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                   N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc);
    if (s != CUBLAS_STATUS_SUCCESS) fail(cu, "cublasSgemm", __FILE__, __LINE__, cublasGetStatusString(s));
}

void kn_rt_cuda_sgemm_strided(kn_rt_cuda *cu, int trans_a, int trans_b, int M, int N, int K, float alpha,
                              const float *A, int lda, long long stride_a, const float *B, int ldb,
                              long long stride_b, float beta, float *C, int ldc, long long stride_c, int batch)
{
    if (cu->failed || M == 0 || N == 0 || batch == 0) return;
    cublasStatus_t s = cublasSgemmStridedBatched(cu->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                                 trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb,
                                                 stride_b, A, lda, stride_a, &beta, C, ldc, stride_c, batch);
    if (s != CUBLAS_STATUS_SUCCESS)
        fail(cu, "cublasSgemmStridedBatched", __FILE__, __LINE__, cublasGetStatusString(s));
}

static int copy_io(kn_rt_cuda *cu, kn_rt_ctx *ctx, const kn_rt_phase *ph, int n, int up)
{
    for (int i = 0; i < ph->n_io; i++) {
        int is_in = ph->io_role[i] == KN_RT_IO_INPUT || ph->io_role[i] == KN_RT_IO_LABEL;
        if (is_in != up) continue;
        const kn_rt_io *io = &ph->io[i];
        size_t elem = io->dtype == KN_RT_I64 ? 8 : 4;
        size_t bytes = (io->batched ? (size_t)n : 1) * io->sample_numel * elem;
        size_t off = io->batched ? (size_t)n * io->offset : (size_t)n * ph->arena_per_sample + io->offset;
        if (up) CU_CHECK(cu, cudaMemcpyAsync(cu->arena + off, ctx->arena + off, bytes, cudaMemcpyHostToDevice, cu->stream));
        else CU_CHECK(cu, cudaMemcpyAsync(ctx->arena + off, cu->arena + off, bytes, cudaMemcpyDeviceToHost, cu->stream));
    }
    return 0;
}

/* Marks the phase's outputs NaN after a failure, so callers see it. */
static void poison_outputs(kn_rt_ctx *ctx, const kn_rt_phase *ph, int n)
{
    for (int i = 0; i < ph->n_io; i++) {
        const kn_rt_io *io = &ph->io[i];
        if (ph->io_role[i] != KN_RT_IO_OUTPUT && ph->io_role[i] != KN_RT_IO_LOSS) continue;
        if (io->dtype != KN_RT_F32) continue;
        size_t count = (io->batched ? (size_t)n : 1) * io->sample_numel;
        size_t off = io->batched ? (size_t)n * io->offset : (size_t)n * ph->arena_per_sample + io->offset;
        float *p = (float *)(ctx->arena + off);
        for (size_t k = 0; k < count; k++) p[k] = NAN;
    }
}

/* Runs the phase's launches: replays its graph for this n, captures one on
 * the second call with this n, or launches eagerly. */
static void launch_phase(kn_rt_cuda *cu, kn_rt_ctx *ctx, int phase, int n)
{
    struct cuda_graph *gr = &cu->graphs[phase];
    if (!cu->use_graphs || gr->broken) {
        cu->mod->phase_run[phase](ctx, n);
        return;
    }
    if (gr->exec && gr->n == n) {
        cudaError_t e = cudaGraphLaunch(gr->exec, cu->stream);
        if (e != cudaSuccess) fail(cu, "cudaGraphLaunch", __FILE__, __LINE__, cudaGetErrorString(e));
        return;
    }
    if (gr->n != n) { /* another batch size: start over */
        if (gr->exec) cudaGraphExecDestroy(gr->exec);
        gr->exec = NULL;
        gr->n = n;
        gr->eager_calls = 0;
    }
    if (gr->eager_calls++ == 0) {
        cu->mod->phase_run[phase](ctx, n);
        return;
    }
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamBeginCapture(cu->stream, cudaStreamCaptureModeThreadLocal);
    if (e == cudaSuccess) {
        cu->mod->phase_run[phase](ctx, n);
        e = cudaStreamEndCapture(cu->stream, &graph);
    }
    if (e == cudaSuccess && !cu->failed) e = cudaGraphInstantiate(&gr->exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    if (e != cudaSuccess || cu->failed) {
        /* Not capturable here: launch eagerly from now on. */
        (void)cudaGetLastError();
        fprintf(stderr, "cuda: phase %s: no CUDA Graph (%s); launching kernels one by one\n",
                cu->mod->phases[phase]->name, cudaGetErrorString(e));
        gr->broken = 1;
        gr->exec = NULL;
        cu->failed = 0;
        cu->mod->phase_run[phase](ctx, n);
        return;
    }
    e = cudaGraphLaunch(gr->exec, cu->stream);
    if (e != cudaSuccess) fail(cu, "cudaGraphLaunch", __FILE__, __LINE__, cudaGetErrorString(e));
}

void kn_rt_cuda_run_phase(kn_rt_ctx *ctx, int phase, int n)
{
    kn_rt_cuda *cu = ctx->cuda;
    const kn_rt_phase *ph = cu->mod->phases[phase];
    *cu->hctx = (kn_rt_cuda_ctx){ctx->seed, ctx->step, ctx->lr, ctx->grad_scale, ctx->sample0};
    int rc = cu->failed ? -1 : 0;
    if (rc == 0 && (size_t)n * ph->arena_per_sample + ph->arena_fixed > cu->arena_bytes)
        rc = fail(cu, "kn_rt_cuda_run_phase", __FILE__, __LINE__, "batch larger than the arena's capacity");
    if (rc == 0) rc = kn_cuda_sync_before_phase(&cu->sync, ctx);
    if (rc == 0) rc = copy_io(cu, ctx, ph, n, 1);
    if (rc == 0)
        rc = cudaMemcpyAsync(cu->dctx, cu->hctx, sizeof *cu->hctx, cudaMemcpyHostToDevice, cu->stream) == cudaSuccess
                 ? 0
                 : fail(cu, "cudaMemcpyAsync(ctx)", __FILE__, __LINE__, "copy of the step scalars failed");
    if (rc == 0) launch_phase(cu, ctx, phase, n);
    if (rc == 0) kn_cuda_sync_after_phase(&cu->sync, cu->m, ph);
    if (rc == 0 && !cu->failed) rc = copy_io(cu, ctx, ph, n, 0);
    cudaError_t e = cudaStreamSynchronize(cu->stream);
    if (e != cudaSuccess) fail(cu, "cudaStreamSynchronize (a kernel of this phase faulted)", __FILE__, __LINE__,
                               cudaGetErrorString(e));
    if (cu->failed) poison_outputs(ctx, ph, n);
}

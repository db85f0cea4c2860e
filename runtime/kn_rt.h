/* kn_rt.h — the contract between generated code and libkiln_rt.
 *
 * A generated model file defines one `const kn_rt_model KN_MODEL` describing
 * its parameters, its phases (functions computing one batch) and where each
 * phase's inputs and outputs live in the arena, then calls kn_rt_main().
 * The runtime does everything else: weight init and checkpoints, datasets,
 * the executable's command line (info/eval/predict/bench/run/train).
 *
 * The runtime knows nothing of the IR: this header is all it sees.
 *
 * Arena layout for a call with batch n (capacity >= n):
 *   [ batched region: n * arena_per_sample bytes ][ fixed region: arena_fixed bytes ]
 * A batched tensor with per-sample byte offset o lives at arena + n*o; its
 * rows are contiguous because the batch dimension is outermost.  A fixed
 * (batch-independent) tensor with offset o lives at arena + n*arena_per_sample + o.
 */
#ifndef KN_RT_H
#define KN_RT_H

#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#define KN_RT_MAX_RANK 6

/* Put before an elementwise loop whose arrays never overlap.  The arrays of
 * generated code are slices of one arena or one weight blob, and GCC honours
 * `restrict` on block-scope pointers too weakly to vectorize such loops
 * (the Adam update ran scalar); this states the independence directly.
 * Results are unchanged: each element is still computed by the same
 * operations in the same order. */
#if defined(__clang__)
#define KN_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define KN_IVDEP _Pragma("GCC ivdep")
#else
#define KN_IVDEP
#endif

typedef enum { KN_RT_F32 = 0, KN_RT_I64 = 1 } kn_rt_dtype;
/* KN_RT_STATE: optimizer state (saved as optim.*; optional when loading
 * weights for inference, required by --resume). */
typedef enum { KN_RT_TRAINABLE = 0, KN_RT_FROZEN = 1, KN_RT_BUFFER = 2, KN_RT_STATE = 3 } kn_rt_role;
/* Same numbering as kn_init_kind in ir/ir.h (codegen emits the number). */
typedef enum {
    KN_RT_INIT_ZEROS = 0,
    KN_RT_INIT_ONES,
    KN_RT_INIT_KAIMING_UNIFORM,
    KN_RT_INIT_BIAS_UNIFORM,
    KN_RT_INIT_XAVIER_UNIFORM,
    KN_RT_INIT_XAVIER_NORMAL,
    KN_RT_INIT_KAIMING_NORMAL,
    KN_RT_INIT_DATA
} kn_rt_init;

/* A parameter or buffer in the weight blob (always f32). */
typedef struct {
    const char *name;        /* IR name: "fc0.weight" */
    int rank;
    int64_t dims[KN_RT_MAX_RANK];
    size_t numel;
    size_t offset;           /* in floats from the start of the weight blob */
    kn_rt_role role;
    kn_rt_init init;
    int64_t fan_in, fan_out;
    const float *data;       /* KN_RT_INIT_DATA only */
} kn_rt_param;

/* A phase input or output in the arena. */
typedef struct {
    const char *name;
    kn_rt_dtype dtype;
    int rank;
    int64_t dims[KN_RT_MAX_RANK]; /* dims[0] == -1 when batched */
    int batched;
    size_t sample_numel;     /* elements per sample (all elements if !batched) */
    size_t offset;           /* bytes; see the layout comment above */
} kn_rt_io;

typedef struct kn_rt_ctx kn_rt_ctx;
/* Device state of an executable running with --device cuda
 * (runtime/kn_rt_cuda.c, linked only into --target cuda executables). */
typedef struct kn_rt_cuda kn_rt_cuda;
struct kn_rt_ctx {
    unsigned char *arena;
    int capacity;            /* max batch the arena was sized for */
    float *weights;          /* parameter/buffer blob */
    float *grads;            /* gradient blob (same layout), training only */
    float *optim;            /* optimizer state, training only */
    uint64_t seed;           /* RNG seed of this run */
    uint64_t step;           /* optimizer steps done (for Adam, dropout masks) */
    float lr;                /* current learning rate */
    float grad_scale;        /* 1/K with --accumulate K, else 1 */
    int training;            /* 1 inside train phases */
    uint32_t sample0;        /* samples of this step's earlier micro-batches:
                                dropout counters continue across them, so K
                                micro-batches draw the masks one batch would */
    /* Optional observer called after every node of a phase (--retain);
     * node indexes match kn_rt_phase.value_node. */
    void (*probe)(kn_rt_ctx *ctx, int node, int n);
    void *probe_user;
    /* Non-NULL when phases run on the GPU: each phase function then hands
     * the call to kn_rt_cuda_run_phase.  Inputs go up from the host arena
     * and outputs come back to it on every call; the weight and gradient
     * blobs stay resident on the device, and the host copies above are
     * current only after kn_rt_ctx_host_view (kn_rt_arena.h; the rule is in
     * runtime/kn_rt_cuda.c).  (--retain probes see nothing on the GPU.) */
    kn_rt_cuda *cuda;
};

/* Generated code calls this after each node. */
#define KN_RT_PROBE(ctx, node, n)                                  \
    do {                                                           \
        if ((ctx)->probe) (ctx)->probe((ctx), (node), (n));        \
    } while (0)

/* Roles of phase I/O, so the runtime knows what to feed and read. */
typedef enum {
    KN_RT_IO_INPUT = 0,  /* features: x */
    KN_RT_IO_LABEL = 1,  /* targets: y */
    KN_RT_IO_OUTPUT = 2, /* model outputs: logits */
    KN_RT_IO_LOSS = 3    /* scalar mean loss of the batch */
} kn_rt_io_role;

typedef struct {
    const char *name;        /* "infer", "train" */
    void (*run)(kn_rt_ctx *ctx, int n);
    size_t arena_per_sample; /* bytes */
    size_t arena_fixed;      /* bytes */
    int n_io;
    const kn_rt_io *io;
    const kn_rt_io_role *io_role;
    /* Every value the phase computes into the arena, for inspection: value
     * i is valid right after node value_node[i] ran (it may be overwritten
     * later, since the planner reuses memory). */
    int n_values;
    const kn_rt_io *values;
    const int *value_node;
    int n_nodes;             /* node i is "name (op)" node_names[i] */
    const char *const *node_names;
} kn_rt_phase;

/* The step scalars kernels read (ctx->seed ... in generated kernels): the
 * CUDA emitter's kernel prelude declares the same struct, field for field. */
typedef struct {
    uint64_t seed, step;
    float lr, grad_scale;
    uint32_t sample0;
} kn_rt_cuda_ctx;

/* The blobs a --target cuda executable keeps resident on the device, as a
 * mask: ctx->weights (parameters, buffers, optimizer state) and ctx->grads. */
enum { KN_RT_BLOB_WEIGHTS = 1, KN_RT_BLOB_GRADS = 2, KN_RT_BLOBS = 3 };

struct kn_rt_model;
/* Entry points of libkiln_rt_cuda that libkiln_rt reaches through the
 * model (so CPU executables never link the CUDA libraries). */
typedef struct {
    /* Device count, or 0 with the reason in err (no driver, no device). */
    int (*probe)(char *err, size_t cap);
    /* Opens device 0 for ctx (already opened on the host): stream, cuBLAS,
     * kernels, device arena and weight blob.  0 or -1 with err. */
    int (*open)(kn_rt_ctx *ctx, const struct kn_rt_model *m, char *err, size_t cap);
    void (*close)(kn_rt_ctx *ctx);
    /* Coherence of the resident blobs (mask of KN_RT_BLOB_*): to_host
     * copies back those the device changed since the host last saw them
     * (0, or -1 after a GPU error, reported); host_wrote says the host
     * changed them, so they go up before the next phase. */
    int (*to_host)(kn_rt_ctx *ctx, int blobs);
    void (*host_wrote)(kn_rt_ctx *ctx, int blobs);
} kn_rt_cuda_backend;

typedef struct kn_rt_model {
    const char *name;        /* model name */
    const char *hash;        /* hex digest of the model source */
    const char *target;      /* "cpu" */
    const char *summary;     /* layer table printed by `info` */
    int n_params;
    const kn_rt_param *params;
    size_t weights_numel;

    const kn_rt_phase *infer; /* always present */
    const kn_rt_phase *train; /* forward + backward of one micro-batch: adds
                                 each trainable parameter's gradient into
                                 ctx->grads (same layout as the weights); NULL
                                 when the model has no loss */
    const kn_rt_phase *update;/* optimizer step over all parameters using
                                 ctx->grads * ctx->grad_scale, ctx->lr and
                                 ctx->step (1-based, already incremented);
                                 then zeroes ctx->grads */
    /* Frozen-prefix caching (all three or none): `features` maps the model
     * input to the frozen prefix's output (its one OUTPUT io), which
     * `head_train` / `head_infer` take as their INPUT (same name) in place
     * of the model input; they are train / infer restricted to the head. */
    const kn_rt_phase *features, *head_train, *head_infer;

    /* from the model file */
    const char *data_kind;   /* "fashion_mnist", "mnist", "image_folder", "imagenet" or "" */
    const char *data_path;   /* dataset folder relative to the data root (--data,
                                KILN_DATA, ../shared/data), or "" */
    const char *labels;      /* class names, one per line, relative to the data
                                root, or "" (image folders: the sub-folder names) */
    int resize, crop;        /* images: shorter side to `resize` (bilinear), then a
                                center crop of `crop` x `crop`; 0 = none */
    int n_normalize;
    const float *normalize;  /* mean, std pairs */
    int batch, epochs, shuffle;
    int64_t seed;
    const char *optimizer;   /* "adam" ... or "" */
    float lr;
    int n_opt;               /* optimizer hyper-parameters by name */
    const char *const *opt_names;
    const float *opt_values;
    const struct kn_rt_cuda_module *cuda; /* --target cuda, else NULL */
} kn_rt_model;

/* What `kiln build --target cuda` embeds. */
typedef struct kn_rt_cuda_module {
    const char *arch;                /* virtual architecture of the PTX: "compute_90" */
    const char *ptx;                 /* NUL-terminated PTX of all kernels */
    const char *source;              /* their CUDA source, to re-JIT for another GPU */
    int n_kernels;
    const char *const *kernel_names; /* launch index -> "train_n17_0" */
    const char *const *kernel_nodes; /* launch index -> "phase train, node 17: relu 'h0' ..." */
    int n_phases;                    /* phase index as in kn_rt_cuda_run_phase */
    const kn_rt_phase *const *phases;
    void (*const *phase_run)(kn_rt_ctx *ctx, int n);
    const kn_rt_cuda_backend *backend;
} kn_rt_cuda_module;

/* Entry point of every generated executable. */
/* Called first by a generated executable's main(): picks the BLAS kernels
 * for this CPU (may re-execute the program once). */
void kn_rt_boot(char **argv);
int kn_rt_main(const kn_rt_model *m, int argc, char **argv);

/* ---- kernels callable from generated code ---- */

/* Generated parallel loops with less work than this (multiply-adds or
 * elements) run on the calling thread: waking the team costs more. */
#define KN_RT_PAR_MIN 65536

/* Row-major C = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T.
 * op(A) is M x K, op(B) is K x N. */
void kn_rt_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc);
/* `batch` independent kn_rt_sgemm: product b reads A + b * stride_a and
 * B + b * stride_b and writes C + b * stride_c (a stride of 0 shares that
 * operand, e.g. one filter over every sample).  One cuBLAS call on the GPU. */
void kn_rt_sgemm_strided(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                         long long stride_a, const float *B, int ldb, long long stride_b, float beta, float *C,
                         int ldc, long long stride_c, int batch);

/* x where mask is all ones, +0 where it is 0: a branch-free select the
 * vectoriser turns into an AND (generated depthwise kernels skip taps
 * outside the image this way; unlike x * 0, an Inf becomes 0, not NaN). */
static inline float kn_rt_mask_f32(float x, uint32_t mask)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u &= mask;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Tile size (tm rows x tn columns) for the GEMM of a conv's output
 * (rows x cols per sample and group), `items` of which share one parallel
 * loop: columns in blocks of at most 512, then rows and columns split
 * until the loop has two tiles per thread. */
void kn_rt_gemm_tiles(size_t items, size_t rows, size_t cols, size_t *tm, size_t *tn);

/* Threads of the one OpenMP pool. */
int kn_rt_get_threads(void);

/* A per-thread scratch buffer of at least `floats` floats, 64-byte
 * aligned, kept and grown per thread: fused kernels keep their tiles in it
 * (ir/ops/inverted_residual.c).  Contents are not preserved across calls. */
float *kn_rt_scratch(size_t floats);

/* Counter-based RNG (Philox-style): a uniform float in [0,1) that depends
 * only on (seed, stream, index), so any backend reproduces the same mask. */
float kn_rt_uniform(uint64_t seed, uint64_t stream, uint64_t index);
/* The four uniforms of one Philox block: out[k] is the value of counter
 * 4 * block + k.  Dropout draws masks through it, a quarter of the
 * rounds of one kn_rt_uniform per element. */
void kn_rt_uniform4(uint64_t seed, uint64_t stream, uint64_t block, float out[4]);

/* A standard normal from the same counter space (Box-Muller on one Philox
 * block), so init and noise are reproducible from (seed, stream, index). */
/* Inverted dropout over n elements whose counters are base, base+1, ...:
 * out[i] = u(base+i) >= p ? in[i] * scale : 0, u(g) being word g % 4 of the
 * Philox block g / 4 — the numbers kn_rt_uniform4 gives, drawn 16 blocks at
 * a time with SIMD.  in may equal out. */
void kn_rt_dropout(uint64_t seed, uint64_t stream, uint64_t base, size_t n, float p,
                   float scale, const float *in, float *out);
float kn_rt_normal(uint64_t seed, uint64_t stream, uint64_t index);

/* ---- called by the host code of --target cuda executables ---- */
extern const kn_rt_cuda_backend kn_rt_cuda_impl;
/* Runs phase `phase` (index into the module's phases) on the GPU for
 * batch n: uploads the blobs the host changed, copies the inputs up,
 * launches, copies the outputs and loss back. */
void kn_rt_cuda_run_phase(kn_rt_ctx *ctx, int phase, int n);
unsigned char *kn_rt_cuda_arena(kn_rt_cuda *cu);   /* device pointers */
float *kn_rt_cuda_weights(kn_rt_cuda *cu);
float *kn_rt_cuda_grads(kn_rt_cuda *cu);
/* Launches kernel `kernel` of the module with at least `work` threads. */
void kn_rt_cuda_launch(kn_rt_cuda *cu, int kernel, size_t work, int n, unsigned char *fixed);
/* Device-to-device copy / fill on the model's stream (the GPU phases'
 * memcpy and memset). */
void kn_rt_cuda_memcpy(kn_rt_cuda *cu, void *dst, const void *src, size_t bytes);
void kn_rt_cuda_memset(kn_rt_cuda *cu, void *dst, int value, size_t bytes);
/* kn_rt_sgemm on device pointers, through cuBLAS on the model's stream. */
void kn_rt_cuda_sgemm(kn_rt_cuda *cu, int trans_a, int trans_b, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* kn_rt_sgemm_strided on device pointers: cublasSgemmStridedBatched. */
void kn_rt_cuda_sgemm_strided(kn_rt_cuda *cu, int trans_a, int trans_b, int M, int N, int K, float alpha,
                              const float *A, int lda, long long stride_a, const float *B, int ldb,
                              long long stride_b, float beta, float *C, int ldc, long long stride_c, int batch);

#endif

/* compile.h — the one place that wires every stage together:
 * frontend -> passes -> codegen -> C compiler. */
#ifndef KN_CLI_COMPILE_H
#define KN_CLI_COMPILE_H

#include "../frontend/frontend.h"
#include "../ir/ir.h"
#include "../passes/passes.h"

/* Flags for generated code unless KILN_CFLAGS says otherwise.  -march=native:
 * executables are built where they run, and static shapes let the compiler
 * vectorize with the CPU's widest SIMD (set KILN_CFLAGS=-O3 for a portable
 * binary).  -fno-math-errno: sqrtf/expf that must set errno cannot be
 * vectorized (the Adam update ran scalar); kiln never reads errno.
 * -ffp-contract=fast: -std=c11 alone turns contraction off, so every
 * a * b + c in a kernel was a multiply and an add; as FMAs the depthwise
 * and epilogue loops run 3-4% faster over MobileNetV2 (1 and 2 threads).
 * The cost: a native build's results differ from a portable one's in the
 * last bits (each build is still deterministic, --resume included). */
#define KILN_DEFAULT_CFLAGS "-O3 -march=native -fno-math-errno -ffp-contract=fast"

typedef struct {
    kn_graph *model;        /* as parsed */
    kn_graph *infer;        /* eval-mode phase after the pipeline */
    kn_memplan infer_plan;
    kn_graph *train;        /* forward + backward (NULL without loss/optimizer) */
    kn_memplan train_plan;
    kn_graph *update;       /* optimizer step */
    kn_memplan update_plan;
    /* With a frozen prefix (passes/frozen_prefix.c), three more phases let
     * training cache the prefix's output: features (model input -> the
     * prefix's frontier, eval mode) and the head from the frontier, in train
     * and eval mode.  NULL without a prefix worth caching. */
    kn_graph *features, *head_train, *head_infer;
    kn_memplan features_plan, head_train_plan, head_infer_plan;
    char hash[17];          /* kn_cli_model_hash of the model file */
} kn_compiled;

/* Frontend options for the driver: the data roots onnx(...) paths are
 * looked up in ($KILN_DATA, the shared data folder next to the source tree,
 * /work/shared/data) and the --set overrides (borrowed). */
void kn_cli_frontend_opts(kn_frontend_opts *o, const char *const *sets, int n_sets);

/* Parses and runs the pipeline for every phase.  `with_train` builds the
 * train and update phases when the model has a loss and an optimizer.
 * `fo` may be NULL (kn_cli_frontend_opts without sets). */
kn_status kn_cli_compile(const char *model_path, const kn_frontend_opts *fo, bool with_train, kn_compiled *c,
                         kn_diag *d);
void kn_cli_compiled_free(kn_compiled *c);

/* Content hash identifying the executable built from `path`: the model
 * source, the --set overrides, the identity of the ONNX files it splices,
 * kiln's version, and the driver and runtime builds. */
kn_status kn_cli_model_hash(const char *path, const kn_frontend_opts *fo, char out[17], kn_diag *d);

/* The weight blob written next to `c_path` ("m.c" -> "m.weights.bin"). */
void kn_cli_blob_path(const char *c_path, char *out, size_t cap);

/* The device source and PTX a cuda build writes next to `c_path`
 * ("m.c" -> "m.cu", "m.ptx"). */
void kn_cli_cuda_paths(const char *c_path, char *ptx, char *cu, size_t cap);

/* An eval graph after the backend passes with its own memory plan: what an
 * executable runs (CPU: fusion, layouts; `cuda`: the GPU's epilogues). */
typedef struct {
    kn_graph *g;
    kn_memplan plan;
    bool planned;
} kn_cli_lowered;
kn_status kn_cli_lower_eval(const kn_graph *g, bool cuda, kn_cli_lowered *lo, kn_diag *d);
void kn_cli_lowered_free(kn_cli_lowered *lo);

typedef struct {
    int cuda_kernels;        /* target cuda: kernels compiled */
    double nvrtc_seconds;    /* and NVRTC's time */
} kn_cli_build_stats;

/* Emits C for `c` into `c_path` (atomically), the initial weights of
 * imported parameters into kn_cli_blob_path(c_path), and builds `exe_path`.
 * Target "cuda" also emits the kernels, compiles them with NVRTC for `arch`
 * (NULL: compute_90) into kn_cli_cuda_paths(c_path) and embeds both.
 * `stats` may be NULL. */
kn_status kn_cli_build(const kn_compiled *c, const char *target, const char *arch, const char *c_path,
                       const char *exe_path, kn_cli_build_stats *stats, kn_diag *d);

#endif

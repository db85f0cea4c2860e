/* passes.h — graph transformations, each `kn_status kn_pass_NAME(kn_graph *, kn_diag *)`.
 *
 * Passes transform the IR and know nothing of the frontend that built it or
 * of the code generator that will print it.  The pipeline (passes/pipeline.c)
 * lists them in order in one place.
 */
#ifndef KN_PASSES_H
#define KN_PASSES_H

#include "../ir/ir.h"

/* Re-runs every op's shape rule in order and checks the result is sane. */
kn_status kn_pass_infer_shapes(kn_graph *g, kn_diag *d);
/* Removes nodes whose outputs reach neither the graph outputs nor the loss. */
kn_status kn_pass_dce(kn_graph *g, kn_diag *d);

/* Inference only: folds a conv2d's residual add and clip/relu successor into
 * the conv as an epilogue (see fuse_epilogue.c). */
kn_status kn_pass_fuse_epilogue(kn_graph *g, kn_diag *d);
/* The same for --target cuda: only the epilogues the CUDA emitters run. */
kn_status kn_pass_fuse_epilogue_gpu(kn_graph *g, kn_diag *d);
/* Inference on the CPU only: MobileNetV2 blocks (1x1 expand, depthwise,
 * 1x1 project) as one banded inverted_residual node (see fuse_block.c). */
kn_status kn_pass_fuse_block(kn_graph *g, kn_diag *d);
/* Inference on the CPU only: stores conv activations channels-last where
 * every producer and reader supports it (see layout_nhwc.c). */
kn_status kn_pass_layout_nhwc(kn_graph *g, kn_diag *d);

/* Reverse-mode autodiff from g->loss; gradients end in accumulate_grad. */
kn_status kn_pass_autodiff(kn_graph *g, kn_diag *d);
/* Replaces the graph's nodes by one optimizer step per trainable parameter. */
kn_status kn_pass_lower_optimizer(kn_graph *g, kn_diag *d);

/* The frontier of the model's frozen prefix (see frozen_prefix.c) on a
 * shape-inferred graph: up to `cap` value ids, returns their count, or 0
 * when there is no prefix worth caching. */
int kn_find_frozen_prefix(const kn_graph *g, int *frontier, int cap);

/* The pipeline of one phase: sets g->mode, then runs the passes.
 * EVAL: the inference phase.  TRAIN: forward + backward of one micro-batch. */
kn_status kn_run_pipeline(kn_graph *g, kn_mode mode, kn_diag *d);
/* Lowering for code generation after kn_run_pipeline, for eval phases only:
 * epilogue fusion (with its DCE), block fusion, the NHWC layout choice, then
 * shape inference.  The graph it leaves is for
 * the emitter; ONNX export and `kiln check` use the unlowered one. */
kn_status kn_run_backend_pipeline(kn_graph *g, kn_diag *d);
/* The lowering of eval phases for --target cuda: the GPU's epilogue fusion
 * (kn_pass_fuse_epilogue_gpu), then shape inference. */
kn_status kn_run_cuda_backend_pipeline(kn_graph *g, kn_diag *d);
/* The update phase: the optimizer step over every trainable parameter. */
kn_status kn_run_update_pipeline(kn_graph *g, kn_diag *d);

/* Liveness-based memory plan: every graph input and intermediate gets an
 * arena offset; values alive at the same time never overlap.
 * Batched values (d[0] == N) live in the batched region with per-sample
 * offsets (address = arena + n*offset); the rest in the fixed region.
 * Parameters, buffers and constants are not in the arena (offset -1). */
typedef struct {
    int n_values;
    int64_t *offset;        /* bytes, per value id; -1 when not in the arena */
    bool *batched;          /* per value id: which region */
    int64_t *size;          /* bytes per sample (batched) or total (fixed) */
    int64_t per_sample_bytes;
    int64_t fixed_bytes;
    int64_t sum_sizes_per_sample, sum_sizes_fixed; /* without reuse, for reports */
} kn_memplan;

kn_status kn_plan_memory(const kn_graph *g, kn_memplan *plan, kn_diag *d);
void kn_memplan_free(kn_memplan *plan);
/* Arena bytes for batch n. */
int64_t kn_memplan_bytes(const kn_memplan *plan, int64_t n);

#endif

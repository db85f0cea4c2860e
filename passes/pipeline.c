/* pipeline.c — the passes every phase goes through, in order.  Later work
 * (BatchNorm folding, fusion) slots into these lists. */
#include "passes.h"

typedef kn_status (*kn_pass_fn)(kn_graph *, kn_diag *);

typedef struct {
    const char *name;
    kn_pass_fn run;
    bool eval, train;  /* which phases run it */
} kn_pass_entry;

static const kn_pass_entry kn_pipeline[] = {
    {"infer_shapes", kn_pass_infer_shapes, true, true},
    {"autodiff", kn_pass_autodiff, false, true},
    {"dce", kn_pass_dce, true, true},
    {"infer_shapes", kn_pass_infer_shapes, true, true},
};

kn_status kn_run_pipeline(kn_graph *g, kn_mode mode, kn_diag *d)
{
    g->mode = mode;
    for (size_t i = 0; i < sizeof kn_pipeline / sizeof kn_pipeline[0]; i++) {
        const kn_pass_entry *p = &kn_pipeline[i];
        if (mode == KN_MODE_TRAIN ? !p->train : !p->eval) continue;
        if (p->run(g, d) != KN_OK) return KN_ERR;
    }
    return KN_OK;
}

kn_status kn_run_backend_pipeline(kn_graph *g, kn_diag *d)
{
    if (g->mode != KN_MODE_EVAL) return KN_OK;
    if (kn_pass_fuse_epilogue(g, d) != KN_OK) return KN_ERR;
    if (kn_pass_fuse_block(g, d) != KN_OK) return KN_ERR;
    if (kn_pass_layout_nhwc(g, d) != KN_OK) return KN_ERR;
    return kn_pass_infer_shapes(g, d);
}

/* --target cuda: the epilogues the CUDA emitters implement; the blocked
 * layout and the fused inverted-residual blocks are CPU kernels. */
kn_status kn_run_cuda_backend_pipeline(kn_graph *g, kn_diag *d)
{
    if (g->mode != KN_MODE_EVAL) return KN_OK;
    if (kn_pass_fuse_epilogue_gpu(g, d) != KN_OK) return KN_ERR;
    return kn_pass_infer_shapes(g, d);
}

kn_status kn_run_update_pipeline(kn_graph *g, kn_diag *d)
{
    g->mode = KN_MODE_TRAIN;
    if (kn_pass_lower_optimizer(g, d) != KN_OK) return KN_ERR;
    return kn_pass_infer_shapes(g, d);
}

/* pipeline.c — the passes every phase goes through, in order.  Later work
 * (autodiff, optimizer lowering, BatchNorm folding, fusion) slots in here. */
#include "passes.h"

typedef kn_status (*kn_pass_fn)(kn_graph *, kn_diag *);

static const struct {
    const char *name;
    kn_pass_fn run;
} kn_pipeline[] = {
    {"infer_shapes", kn_pass_infer_shapes},
    {"dce", kn_pass_dce},
    {"infer_shapes", kn_pass_infer_shapes},
};

kn_status kn_run_pipeline(kn_graph *g, kn_mode mode, kn_diag *d)
{
    g->mode = mode;
    for (size_t i = 0; i < sizeof kn_pipeline / sizeof kn_pipeline[0]; i++)
        if (kn_pipeline[i].run(g, d) != KN_OK) return KN_ERR;
    return KN_OK;
}

/* layout_nhwc.c — stores conv activations channels-last where that pays.
 *
 * NCHW is the IR's logical layout and every op's default.  On the CPU two
 * kernels want channels-last instead: depthwise convs (one vector of
 * channels per tap, stride 2 included, rather than strided gathers along a
 * row) and the 1x1 convs between them, which are the same GEMM either way
 * round.  This pass picks, for every value a conv writes, whether it is
 * stored NHWC, and tells each conv through the attributes x_nhwc/y_nhwc.
 * Shapes do not change: a value stored NHWC keeps its logical
 * [N, C, H, W] shape and the same number of bytes, so the memory plan is
 * unaffected; only the ops that read and write it index it differently.
 *
 * Where channels-last pays was measured on MobileNetV2 (batch 1, 2 cores):
 * around stride-2 depthwise convs from 28x28 up (their NHWC kernel halves
 * their time), not around stride-1 ones (the padded NCHW kernel is
 * faster), not at 14x14, and not for the narrow projection GEMMs (oneDNN
 * is ~40% slower with 16-32 output channels as columns).  MobileNetV2's
 * own blocks of that size are taken by fuse_block.c first.  So a value is
 * a candidate only when a node that prefers NHWC (KN_NHWC_PREFERRED)
 * writes it or reads it as its input.
 *
 * A value goes NHWC only when its producer and all of its readers can
 * handle that (kn_op_def.nhwc_layouts), it is not a graph output (the
 * runtime hands outputs over as NCHW) and it is read as a conv's input 0
 * or as a fused residual.  A conv's layout pair must be one its emitter
 * supports (depthwise: both or neither), and a fused residual (see
 * fuse_epilogue.c) must match its conv's output: violations demote values
 * back to NCHW until none is left.  Demotion only ever goes one way, so
 * the loop ends.
 *
 * CPU code generation of inference phases only (kn_run_backend_pipeline).
 */
#include "passes.h"
#include "../ir/ops/op.h"

#include <stdlib.h>

static unsigned node_layouts(const kn_graph *g, const kn_node *n)
{
    const kn_op_def *def = kn_op_get(n->op);
    return def && def->nhwc_layouts ? def->nhwc_layouts(g, n) : 1u;
}

static bool allows(unsigned layouts, bool x, bool y) { return layouts & (1u << (2 * x + y)); }

/* The fused residual input of a conv (its output's layout), or -1. */
static int residual_input(const kn_node *n)
{
    return kn_node_attr_i(n, "residual", 0) ? n->in[n->n_in - 1] : -1;
}

/* Can every reader of `vid` take it channels-last? */
static bool readers_accept_nhwc(const kn_graph *g, int vid, const unsigned *layouts)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const kn_node *n = g->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            if (n->in[k] != vid) continue;
            bool as_x = k == 0, as_residual = vid == residual_input(n) && k == n->n_in - 1;
            if (as_x && !(layouts[i] & 0xCu)) return false;      /* no pair with x = NHWC */
            if (as_residual && !(layouts[i] & 0xAu)) return false; /* no pair with y = NHWC */
            if (!as_x && !as_residual) return false;
        }
    }
    return true;
}

/* Does a node that prefers NHWC write or read `vid` as its x? */
static bool wanted_nhwc(const kn_graph *g, int vid, const unsigned *layouts)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const kn_node *n = g->nodes[i];
        if (!(layouts[i] & KN_NHWC_PREFERRED)) continue;
        if ((n->n_out > 0 && n->out[0] == vid) || (n->n_in > 0 && n->in[0] == vid)) return true;
    }
    return false;
}

/* Initial choice: every value a node that prefers NHWC touches, when its
 * producer could write it NHWC and all readers could read it so. */
static void choose_candidates(const kn_graph *g, const unsigned *layouts, bool *nhwc)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const kn_node *n = g->nodes[i];
        if (!(layouts[i] & 0xAu) || n->n_out < 1) continue;
        int y = n->out[0];
        nhwc[y] = !kn_graph_is_output(g, y) && wanted_nhwc(g, y, layouts) && readers_accept_nhwc(g, y, layouts);
    }
}

/* One sweep of the constraints; true when something was demoted. */
static bool demote_conflicts(const kn_graph *g, const unsigned *layouts, bool *nhwc)
{
    bool changed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        const kn_node *n = g->nodes[i];
        if ((layouts[i] & 0xFu) == 1u || n->n_in < 1 || n->n_out < 1) continue;
        int x = n->in[0], y = n->out[0], r = residual_input(n);
        if (r >= 0 && nhwc[r] != nhwc[y]) {
            nhwc[r] = nhwc[y] = false;
            changed = true;
        }
        if (allows(layouts[i], nhwc[x], nhwc[y])) continue;
        /* Drop the side the node cannot keep: with y NCHW allowed, y;
         * otherwise x (some pair with x = NCHW always exists). */
        if (nhwc[y] && allows(layouts[i], nhwc[x], false)) nhwc[y] = false;
        else nhwc[x] = false;
        changed = true;
    }
    return changed;
}

kn_status kn_pass_layout_nhwc(kn_graph *g, kn_diag *d)
{
    (void)d;
    if (g->mode != KN_MODE_EVAL) return KN_OK; /* the backward ops are NCHW only */
    unsigned *layouts = kn_xcalloc((size_t)g->n_nodes + 1, sizeof *layouts);
    bool *nhwc = kn_xcalloc((size_t)g->n_values + 1, sizeof *nhwc);
    for (int i = 0; i < g->n_nodes; i++) layouts[i] = node_layouts(g, g->nodes[i]);
    choose_candidates(g, layouts, nhwc);
    while (demote_conflicts(g, layouts, nhwc)) {
    }
    for (int i = 0; i < g->n_nodes; i++) {
        kn_node *n = g->nodes[i];
        if ((layouts[i] & 0xFu) == 1u || n->n_in < 1 || n->n_out < 1) continue;
        if (nhwc[n->in[0]]) kn_node_set_attr_i(n, "x_nhwc", 1);
        if (nhwc[n->out[0]]) kn_node_set_attr_i(n, "y_nhwc", 1);
    }
    free(layouts);
    free(nhwc);
    return KN_OK;
}

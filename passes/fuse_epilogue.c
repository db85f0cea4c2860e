/* fuse_epilogue.c — folds a conv2d's or linear's elementwise successors
 * into it.
 *
 * MobileNet-style graphs follow almost every convolution with ReLU6 (clip)
 * or, at the end of a residual block, with add(conv, block_input).  Run as
 * separate nodes, each is one more pass over an activation that left the
 * cache long ago; as an epilogue the conv applies it to each output tile
 * while the tile is still hot.  The fused conv2d carries:
 *   residual = 1   one more input R (same shape as Y): Y = conv(X) + B + R
 *   act_min/act_max   then Y = min(max(Y, act_min), act_max)
 * in that order, which covers conv -> add -> relu/clip (ResNet) and
 * conv -> clip (MobileNet).  conv -> clip -> add keeps its add.  Before an
 * im2col conv, a per-channel x * S + T folds in as the input is read
 * (in_affine = 1, inputs S and T last).  A 1x1 conv whose only reader is
 * global_avg_pool (a classifier's last conv) writes the pooled means
 * straight away (pool_avg = 1, y [N, C, 1, 1]): its full output, read once
 * to be averaged, never reaches memory.  An eval-mode batchnorm after a conv
 * folds into its filters and bias (a bn_fold node before it, see
 * ir/ops/batchnorm.c).  A linear takes an eval-mode
 * batchnorm (bn = 1, see linear.c), then relu/clip, and drops an eval-mode
 * dropout (the identity).
 *
 * Only for code generation of inference phases (kn_run_backend_pipeline;
 * for --target cuda kn_run_cuda_backend_pipeline, a subset of the rules):
 * the fused node has no gradient rule and ONNX export keeps the plain ops.
 * The successor's output value becomes the conv's output, so names and
 * graph outputs are unchanged; the successor node is left writing the old
 * conv value, which nothing reads, and the DCE this pass ends with removes it.
 */
#include "passes.h"
#include "../ir/ops/conv.h"
#include "../ir/ops/op_util.h" /* kn_ops_attr_num: clip bounds may be written as 0 or 0.0 */

#include <math.h>
#include <stdlib.h>

/* The conv takes over `next`'s output; `next` now writes the old conv value,
 * which nobody reads, so DCE drops it. */
static void take_output(kn_graph *g, kn_node *conv, kn_node *next)
{
    int old = conv->out[0];
    conv->out[0] = next->out[0];
    g->values[conv->out[0]]->producer = conv->id;
    next->out[0] = old;
    g->values[old]->producer = next->id;
}

/* add(conv, R) or add(R, conv) with equal shapes (no broadcast) and R ready
 * before the conv runs. */
static bool try_residual(kn_graph *g, kn_node *conv)
{
    kn_node *add = kn_graph_sole_reader(g, conv->out[0]);
    if (!add || add->op != KN_OP_ADD || add->n_in != 2 || add->in[0] == add->in[1]) return false;
    int r = add->in[0] == conv->out[0] ? add->in[1] : add->in[0];
    const kn_value *rv = g->values[r], *yv = g->values[conv->out[0]];
    if (rv->dtype != KN_F32 || !kn_shape_equal(&rv->shape, &yv->shape)) return false;
    if (rv->kind == KN_VAL_NODE && rv->producer >= conv->id) return false;
    kn_node_append_input(conv, r);
    kn_node_set_attr_i(conv, "residual", 1);
    take_output(g, conv, add);
    return true;
}

/* clip(conv) or relu(conv). */
static bool try_activation(kn_graph *g, kn_node *conv)
{
    kn_node *act = kn_graph_sole_reader(g, conv->out[0]);
    if (!act || (act->op != KN_OP_CLIP && act->op != KN_OP_RELU)) return false;
    double lo = act->op == KN_OP_RELU ? 0.0 : kn_ops_attr_num(act, "min", -INFINITY);
    double hi = act->op == KN_OP_RELU ? INFINITY : kn_ops_attr_num(act, "max", INFINITY);
    kn_node_set_attr_f(conv, "act_min", lo);
    kn_node_set_attr_f(conv, "act_max", hi);
    take_output(g, conv, act);
    return true;
}

/* A per-channel constant for NCHW input `x`: [1, C, 1, 1] or [C, 1, 1],
 * not computed by a node. */
static bool per_channel(const kn_graph *g, int vid, const kn_shape *x)
{
    const kn_value *v = g->values[vid];
    if (v->kind == KN_VAL_NODE || v->kind == KN_VAL_INPUT || v->kind == KN_VAL_LABEL || v->dtype != KN_F32) return false;
    const kn_shape *s = &v->shape;
    if (s->rank == 4) return s->d[0] == 1 && s->d[1] == x->d[1] && s->d[2] == 1 && s->d[3] == 1;
    return s->rank == 3 && s->d[0] == x->d[1] && s->d[1] == 1 && s->d[2] == 1;
}

/* The other input of binary node `n` when one is `vid`, else -1. */
static int other_input(const kn_node *n, int vid)
{
    if (n->n_in != 2) return -1;
    return n->in[0] == vid ? n->in[1] : n->in[1] == vid ? n->in[0] : -1;
}

/* batchnorm(conv) in eval mode: a bn_fold node, placed just before the
 * conv, scales its filters and makes its bias (ir/ops/batchnorm.c); the
 * conv reads those, so every conv kernel and epilogue applies unchanged. */
static kn_status try_conv_batchnorm(kn_graph *g, kn_node *conv, kn_diag *d)
{
    if (kn_node_attr(conv, "residual") || kn_node_attr(conv, "act_min") || kn_node_attr(conv, "in_affine")) return KN_OK;
    kn_node *bn = kn_graph_sole_reader(g, conv->out[0]);
    if (!bn || bn->op != KN_OP_BATCHNORM || bn->n_in != 5 || bn->in[0] != conv->out[0]) return KN_OK;
    bool bias = kn_node_attr_i(conv, "bias", 1) != 0;
    if (conv->n_in != 2 + bias) return KN_OK;
    int in[6], k = 0, at = conv->id;
    in[k++] = conv->in[1];
    if (bias) in[k++] = conv->in[2];
    for (int i = 1; i < 5; i++) in[k++] = bn->in[i];
    char name[512];
    snprintf(name, sizeof name, "%s.bn_fold", conv->name);
    kn_node *fold = kn_graph_add_node(g, KN_OP_BN_FOLD, name, in, k, 2);
    kn_node_set_attr_f(fold, "eps", kn_ops_attr_num(bn, "eps", 1e-5));
    kn_node_set_attr_i(fold, "has_bias", bias);
    if (kn_op_get(KN_OP_BN_FOLD)->infer(g, fold, d) != KN_OK) return KN_ERR;
    kn_graph_move_node(g, fold->id, at);
    conv->in[1] = fold->out[0];
    if (bias) conv->in[2] = fold->out[1];
    else {
        kn_node_append_input(conv, fold->out[1]);
        kn_node_set_attr_i(conv, "bias", 1);
    }
    take_output(g, conv, bn);
    return KN_OK;
}

/* global_avg_pool(conv) for a 1x1 conv without residual: the conv keeps
 * each output row of its GEMM tile in scratch and writes only its mean. */
static bool try_global_pool(kn_graph *g, kn_node *conv)
{
    kn_conv_geom q;
    kn_diag quiet;
    if (kn_node_attr(conv, "residual") || kn_node_attr(conv, "in_affine")) return false;
    if (kn_conv_geometry(g, conv, &q, &quiet) != KN_OK || q.groups != 1 || !kn_conv_is_pointwise(&q)) return false;
    kn_node *pool = kn_graph_sole_reader(g, conv->out[0]);
    if (!pool || pool->op != KN_OP_GLOBAL_AVG_POOL) return false;
    kn_node_set_attr_i(conv, "pool_avg", 1);
    take_output(g, conv, pool);
    return true;
}

/* conv(add(mul(v, S), T)) with per-channel S, T (ONNX exports of
 * MobileNetV2 normalise the image this way) and an im2col conv: the conv
 * reads v and applies S, T as it builds its im2col, the padding still 0.
 * Two passes over the image (0.06 ms at batch 1) disappear. */
static bool try_input_affine(kn_graph *g, kn_node *conv)
{
    kn_conv_geom q;
    kn_diag quiet;
    if (kn_conv_geometry(g, conv, &q, &quiet) != KN_OK || q.groups != 1 || kn_conv_is_pointwise(&q) ||
        kn_conv_is_depthwise(&q))
        return false;
    const kn_value *xv = g->values[conv->in[0]];
    kn_node *add = kn_graph_producer(g, conv->in[0]);
    if (!add || add->op != KN_OP_ADD || add->n_in != 2 || kn_graph_sole_reader(g, conv->in[0]) != conv) return false;
    for (int k = 0; k < 2; k++) {
        int m = add->in[k], t = add->in[1 - k];
        kn_node *mul = kn_graph_producer(g, m);
        if (!mul || mul->op != KN_OP_MUL || mul->n_in != 2 || !per_channel(g, t, &xv->shape) ||
            kn_graph_sole_reader(g, m) != add)
            continue;
        for (int j = 0; j < 2; j++) {
            int v = mul->in[j], sc = other_input(mul, v);
            const kn_value *vv = g->values[v];
            if (sc < 0 || v == sc || !per_channel(g, sc, &xv->shape) || vv->dtype != KN_F32 ||
                !kn_shape_equal(&vv->shape, &xv->shape))
                continue;
            conv->in[0] = v;
            kn_node_append_input(conv, sc);
            kn_node_append_input(conv, t);
            kn_node_set_attr_i(conv, "in_affine", 1);
            return true;
        }
    }
    return false;
}

/* batchnorm(linear) on [N, C] in eval mode: running statistics, so a
 * per-feature scale and shift of the linear's rows. */
static bool try_batchnorm(kn_graph *g, kn_node *lin)
{
    kn_node *bn = kn_graph_sole_reader(g, lin->out[0]);
    if (!bn || bn->op != KN_OP_BATCHNORM || bn->n_in != 5 || bn->in[0] != lin->out[0]) return false;
    if (g->values[lin->out[0]]->shape.rank != 2) return false;
    for (int i = 1; i < 5; i++) kn_node_append_input(lin, bn->in[i]);
    kn_node_set_attr_i(lin, "bn", 1);
    kn_node_set_attr_f(lin, "bn_eps", kn_ops_attr_num(bn, "eps", 1e-5));
    take_output(g, lin, bn);
    return true;
}

/* dropout in an eval graph is the identity: its readers read `n`'s value. */
static bool try_eval_dropout(kn_graph *g, kn_node *n)
{
    kn_node *drop = kn_graph_sole_reader(g, n->out[0]);
    if (!drop || drop->op != KN_OP_DROPOUT || drop->in[0] != n->out[0]) return false;
    take_output(g, n, drop);
    return true;
}

/* linear -> batchnorm -> relu/clip -> dropout (an MLP's hidden layer, as
 * fmnist_mlp writes it): one node, the rest its epilogue. */
static void fuse_linear(kn_graph *g, kn_node *lin)
{
    if (kn_node_attr(lin, "bn") || kn_node_attr(lin, "act_min") || kn_node_attr(lin, "act_max")) return;
    try_batchnorm(g, lin);
    try_activation(g, lin);
    try_eval_dropout(g, lin);
}

/* `gpu`: only the rules the CUDA emitters implement (conv: batchnorm,
 * residual, clamp; linear: all), not the pooled 1x1 conv nor the input
 * affine, which are CPU kernels. */
static kn_status fuse_epilogue(kn_graph *g, bool gpu, kn_diag *d)
{
    if (g->mode != KN_MODE_EVAL) return KN_OK; /* training needs the unfused values for backward */
    for (int i = 0; i < g->n_nodes; i++) {
        kn_node *n = g->nodes[i];
        if (n->op == KN_OP_LINEAR) {
            fuse_linear(g, n);
            continue;
        }
        if (n->op != KN_OP_CONV2D || kn_node_attr(n, "residual") || kn_node_attr(n, "act_min")) continue;
        if (try_conv_batchnorm(g, n, d) != KN_OK) return KN_ERR; /* first: the epilogue follows the batchnorm */
        try_residual(g, n);
        try_activation(g, n);
        if (gpu) continue;
        try_global_pool(g, n);  /* after the clamp: the mean is of clamped values */
        try_input_affine(g, n); /* last: its inputs go after the residual */
    }
    /* The absorbed nodes now read their own output: DCE removes them (and
     * verifies the graph) before anything walks the node order. */
    return kn_pass_dce(g, d);
}

kn_status kn_pass_fuse_epilogue(kn_graph *g, kn_diag *d) { return fuse_epilogue(g, false, d); }

kn_status kn_pass_fuse_epilogue_gpu(kn_graph *g, kn_diag *d) { return fuse_epilogue(g, true, d); }

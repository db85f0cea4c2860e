/* fuse_block.c — MobileNetV2's inverted-residual blocks as one node.
 *
 * After fuse_epilogue.c a block is three convs:
 *   E = conv1x1(x) clamped   (expand; absent in the first block)
 *   D = depthwise(E) clamped (stride 1 or 2)
 *   Y = conv1x1(D) [+ x]     (project, maybe with the residual folded in)
 * Each reads only its predecessor, and E is Cexp/Cin (6x) the size of x.
 * The chain becomes one inverted_residual node (ir/ops/inverted_residual.c)
 * that never stores E or D whole: see there.  The project node is
 * rewritten in place (it comes after the other two in node order, so
 * everything it reads is ready), keeping its output value and name; the
 * expand and depthwise nodes lose their only reader and the DCE at the end
 * removes them.
 *
 * Only where it pays: blocks whose depthwise input (the expanded tensor)
 * has at least KN_BLOCK_MIN_PIXELS pixels.  At 14x14 and 7x7 the block's
 * tensors fit in L2 anyway, and the bands of the fused kernel would be a
 * row or two with the depthwise halo expanded twice.  CPU inference graphs only
 * (kn_run_backend_pipeline), after fuse_epilogue.c, before layout_nhwc.c.
 */
#include "passes.h"
#include "../ir/ops/conv.h"
#include "../ir/ops/op_util.h"

#include <math.h>

/* Measured on MobileNetV2 (batch 1 and 32, 2 cores): fusing the blocks
 * that expand to 28x28 still pays (or breaks even); 14x14 does not. */
#define KN_BLOCK_MIN_PIXELS (28 * 28)

static bool has_attr(const kn_node *n, const char *name) { return kn_node_attr(n, name) != NULL; }

/* A conv2d with a bias, no layout attributes, and geometry `q`. */
static bool plain_conv(const kn_graph *g, const kn_node *n, kn_conv_geom *q)
{
    kn_diag quiet;
    return n && n->op == KN_OP_CONV2D && kn_node_attr_i(n, "bias", 1) && !has_attr(n, "x_nhwc") &&
           !has_attr(n, "y_nhwc") && kn_conv_geometry(g, n, q, &quiet) == KN_OK;
}

/* 1x1 expand: clamped, no residual. */
static bool is_expand(const kn_graph *g, const kn_node *n)
{
    kn_conv_geom q;
    return plain_conv(g, n, &q) && kn_conv_is_pointwise(&q) && q.groups == 1 && !kn_node_attr_i(n, "residual", 0);
}

/* Depthwise: clamped, no residual, no dilation, stride 1 or 2 both ways,
 * big enough to pay. */
static bool is_depthwise(const kn_graph *g, const kn_node *n, kn_conv_geom *q)
{
    return plain_conv(g, n, q) && kn_conv_is_depthwise(q) && !kn_node_attr_i(n, "residual", 0) && q->dh == 1 &&
           q->dw == 1 && q->sh == q->sw && (q->sh == 1 || q->sh == 2) && q->h * q->w >= KN_BLOCK_MIN_PIXELS;
}

static void copy_clamp(kn_node *dst, const char *lo, const char *hi, const kn_node *src)
{
    double a = kn_ops_attr_num(src, "act_min", -INFINITY), b = kn_ops_attr_num(src, "act_max", INFINITY);
    if (a > -INFINITY) kn_node_set_attr_f(dst, lo, a);
    if (b < INFINITY) kn_node_set_attr_f(dst, hi, b);
}

/* Rewrites project node `p` (reading depthwise `d`, which reads expand `e`
 * or, when e is NULL, the block input) into inverted_residual. */
static void fuse(kn_node *e, kn_node *d, const kn_conv_geom *dq, kn_node *p)
{
    int in[9], k = 0;
    bool residual = kn_node_attr_i(p, "residual", 0) != 0;
    int r = residual ? p->in[p->n_in - 1] : -1;
    in[k++] = e ? e->in[0] : d->in[0];
    if (e) in[k++] = e->in[1], in[k++] = e->in[2];
    in[k++] = d->in[1], in[k++] = d->in[2];
    in[k++] = p->in[1], in[k++] = p->in[2];
    if (residual) in[k++] = r;
    p->op = KN_OP_INVERTED_RESIDUAL;
    p->n_in = 0;
    for (int i = 0; i < k; i++) kn_node_append_input(p, in[i]);
    kn_node_set_attr_i(p, "expand", e != NULL);
    kn_node_set_attr_i(p, "dw_stride", dq->sh);
    const int64_t pads[4] = {dq->ph, dq->pw, dq->ph_end, dq->pw_end};
    kn_node_set_attr_ints(p, "dw_pads", pads, 4);
    if (e) copy_clamp(p, "e_min", "e_max", e);
    copy_clamp(p, "d_min", "d_max", d);
}

kn_status kn_pass_fuse_block(kn_graph *g, kn_diag *d)
{
    if (g->mode != KN_MODE_EVAL) return KN_OK;
    for (int i = 0; i < g->n_nodes; i++) {
        kn_node *p = g->nodes[i];
        kn_conv_geom pq, dq;
        if (!plain_conv(g, p, &pq) || !kn_conv_is_pointwise(&pq) || pq.groups != 1) continue;
        kn_node *dw = kn_graph_producer(g, p->in[0]);
        if (!is_depthwise(g, dw, &dq) || kn_graph_sole_reader(g, dw->out[0]) != p) continue;
        if (!has_attr(dw, "act_min") && !has_attr(dw, "act_max")) continue; /* not a MobileNet block */
        kn_node *ex = kn_graph_producer(g, dw->in[0]);
        if (ex && (!is_expand(g, ex) || kn_graph_sole_reader(g, ex->out[0]) != dw)) ex = NULL;
        if (!ex && dq.sh != 1) continue; /* stride 2 reads de-interleaved expanded rows */
        fuse(ex, dw, &dq, p);
    }
    return kn_pass_dce(g, d);
}

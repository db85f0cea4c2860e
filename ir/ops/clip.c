/* clip.c — clip(x, min=-inf, max=inf): Y = min(max(X, min), max)
 * (torch.clamp, ONNX Clip; ReLU6 is clip(x, min=0, max=6)).
 *
 * NaN passes through unchanged, as in torch.clamp.  The bounds are float
 * attributes: the ONNX importer reads Clip's min/max inputs (opset 11+)
 * from constants, so the op never needs them as tensors.
 * Backward op clip_grad(dy, x, min, max): dy where min <= x <= max, else 0
 * (torch.clamp's rule: the gradient flows at the bounds).
 */
#include "op_util.h"

#include <math.h>

static kn_status clip_bounds(kn_graph *g, kn_node *n, kn_diag *d, double *lo, double *hi)
{
    *lo = kn_ops_attr_num(n, "min", -INFINITY);
    *hi = kn_ops_attr_num(n, "max", INFINITY);
    if (isnan(*lo) || isnan(*hi))
        return kn_op_error(d, g, n, "min and max must be numbers, got min=%g max=%g", *lo, *hi);
    if (*lo > *hi) return kn_op_error(d, g, n, "min %g is larger than max %g", *lo, *hi);
    return KN_OK;
}

static kn_status clip_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    double lo, hi;
    if (clip_bounds(g, n, d, &lo, &hi) != KN_OK) return KN_ERR;
    if (kn_ops_want_f32(d, g, n, 0, "input") != KN_OK) return KN_ERR;
    kn_ops_set_out(g, n, 0, KN_F32, &kn_graph_value(g, n->in[0])->shape);
    return KN_OK;
}

static kn_status clip_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    (void)g;
    char numel[64], lo[64], hi[64];
    kn_emit_float_lit(kn_ops_attr_num(n, "min", -INFINITY), lo, sizeof lo);
    kn_emit_float_lit(kn_ops_attr_num(n, "max", INFINITY), hi, sizeof hi);
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    kn_emit_cuda_kernel(e, numel);
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_for(e, "i", numel, "Y[i] = X[i] < %s ? %s : X[i] > %s ? %s : X[i];", lo, lo, hi, hi);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static void clip_elem(kn_emit *e, const kn_graph *g, const kn_node *n, const char *const *in, const char *out)
{
    (void)g;
    char lo[64], hi[64];
    kn_emit_float_lit(kn_ops_attr_num(n, "min", -INFINITY), lo, sizeof lo);
    kn_emit_float_lit(kn_ops_attr_num(n, "max", INFINITY), hi, sizeof hi);
    kn_emit_line(e, "{ const float x = %s; %s = x < %s ? %s : x > %s ? %s : x; }", in[0], out, lo, lo, hi, hi);
}

static kn_status clip_grad(kn_graph *g, const kn_node *n, const int *dy, const bool *need, int *dx, kn_diag *d)
{
    dx[0] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    int in[2] = {dy[0], n->in[0]};
    kn_node *gn = kn_ops_grad_node(g, n, KN_OP_CLIP_GRAD, "x", in, 2, 1);
    kn_node_set_attr_f(gn, "min", kn_ops_attr_num(n, "min", -INFINITY));
    kn_node_set_attr_f(gn, "max", kn_ops_attr_num(n, "max", INFINITY));
    return (dx[0] = kn_ops_grad_done(g, gn, d)) < 0 ? KN_ERR : KN_OK;
}

static kn_status clip_grad_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    double lo, hi;
    if (clip_bounds(g, n, d, &lo, &hi) != KN_OK) return KN_ERR;
    if (kn_ops_want_f32(d, g, n, 0, "gradient") != KN_OK) return KN_ERR;
    if (kn_ops_want_f32(d, g, n, 1, "input") != KN_OK) return KN_ERR;
    const kn_shape *s = &kn_graph_value(g, n->in[1])->shape;
    if (!kn_shape_equal(s, &kn_graph_value(g, n->in[0])->shape))
        return kn_op_error(d, g, n, "gradient and input shapes differ");
    kn_ops_set_out(g, n, 0, KN_F32, s);
    return KN_OK;
}

static kn_status clip_grad_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    (void)g;
    char numel[64], lo[64], hi[64];
    kn_emit_float_lit(kn_ops_attr_num(n, "min", -INFINITY), lo, sizeof lo);
    kn_emit_float_lit(kn_ops_attr_num(n, "max", INFINITY), hi, sizeof hi);
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    kn_emit_cuda_kernel(e, numel);
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_in(e, "X", n->in[1]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    kn_emit_for(e, "i", numel, "dX[i] = X[i] >= %s && X[i] <= %s ? dY[i] : 0.0f;", lo, hi);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static void clip_grad_elem(kn_emit *e, const kn_graph *g, const kn_node *n, const char *const *in, const char *out)
{
    (void)g;
    char lo[64], hi[64];
    kn_emit_float_lit(kn_ops_attr_num(n, "min", -INFINITY), lo, sizeof lo);
    kn_emit_float_lit(kn_ops_attr_num(n, "max", INFINITY), hi, sizeof hi);
    kn_emit_line(e, "{ const float x = %s; %s = x >= %s && x <= %s ? %s : 0.0f; }", in[1], out, lo, hi, in[0]);
}

static const kn_arg_spec clip_args[] = {
    {"min", KN_ATTR_FLOAT, false, 0, -INFINITY, NULL},
    {"max", KN_ATTR_FLOAT, false, 0, INFINITY, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_clip = {
    .name = "clip", .min_inputs = 1, .max_inputs = 1, .args = clip_args,
    .infer = clip_infer, .emit_c = clip_emit, .emit_cuda = clip_emit, .emit_elem = clip_elem, .grad = clip_grad,
};
const kn_op_def kn_op_def_clip_grad = {
    .name = "clip_grad", .min_inputs = 2, .max_inputs = 2, .args = clip_args,
    .infer = clip_grad_infer, .emit_c = clip_grad_emit, .emit_cuda = clip_grad_emit, .emit_elem = clip_grad_elem,
    .internal = true,
};

/* activation.c — elementwise activations: relu, leaky_relu, gelu, sigmoid, tanh.
 *
 * Each is Y = f(X) over a f32 tensor of any shape, emitted as one flat loop
 * the C compiler can vectorize.  Formulas follow PyTorch's CPU kernels:
 * gelu is the exact erf form (not the tanh approximation), relu propagates
 * NaN like torch.relu.
 * Backward ops (built by the gradient rules, never written by users):
 * relu_grad(dy, x), leaky_relu_grad(dy, x, negative_slope), gelu_grad(dy, x)
 * read the forward input; sigmoid_grad(dy, y) and tanh_grad(dy, y) read the
 * forward output, as PyTorch's autograd formulas do.
 */
#include "op_util.h"

static kn_status infer_unary(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "input") != KN_OK) return KN_ERR;
    kn_ops_set_out(g, n, 0, KN_F32, &kn_graph_value(g, n->in[0])->shape);
    return KN_OK;
}

/* The forward's element, in x (the input's element). */
static void act_expr(const kn_node *n, char *buf, size_t cap)
{
    char s[64];
    switch (n->op) {
    case KN_OP_RELU: snprintf(buf, cap, "x < 0.0f ? 0.0f : x"); break;
    case KN_OP_LEAKY_RELU:
        kn_emit_float_lit(kn_ops_attr_num(n, "negative_slope", 0.01), s, sizeof s);
        snprintf(buf, cap, "x > 0.0f ? x : x * %s", s);
        break;
    /* 0.707106781f is M_SQRT1_2 rounded to float, as in PyTorch's kernel. */
    case KN_OP_GELU: snprintf(buf, cap, "x * 0.5f * (1.0f + erff(x * 0.707106781f))"); break;
    case KN_OP_SIGMOID: snprintf(buf, cap, "1.0f / (1.0f + expf(-x))"); break;
    default: snprintf(buf, cap, "tanhf(x)"); break;
    }
}

/* Y[i] = <expr of x = X[i]> for every element (C loop or CUDA kernel). */
static kn_status emit_act(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    (void)g;
    char numel[64], expr[160];
    act_expr(n, expr, sizeof expr);
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    kn_emit_cuda_kernel(e, numel);
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_for(e, "i", numel, "{ const float x = X[i]; Y[i] = %s; }", expr);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static void elem_act(kn_emit *e, const kn_graph *g, const kn_node *n, const char *const *in, const char *out)
{
    (void)g;
    char expr[160];
    act_expr(n, expr, sizeof expr);
    kn_emit_line(e, "{ const float x = %s; %s = %s; }", in[0], out, expr);
}

static kn_status leaky_relu_check(kn_graph *g, kn_node *n, kn_diag *d)
{
    double s = kn_ops_attr_num(n, "negative_slope", 0.01);
    if (s != s)
        return kn_op_error(d, g, n, "negative_slope must be a number, got nan");
    return infer_unary(g, n, d);
}

/* ---- backward ops: dX[i] = <expr of gy = dY[i] and v = V[i]> ---- */

static kn_status infer_grad_map(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "output gradient") != KN_OK) return KN_ERR;
    if (kn_ops_want_f32(d, g, n, 1, "input") != KN_OK) return KN_ERR;
    const kn_value *dy = kn_graph_value(g, n->in[0]), *v = kn_graph_value(g, n->in[1]);
    if (!kn_shape_equal(&dy->shape, &v->shape)) {
        char s1[128], s2[128];
        kn_ops_fmt(g, n->in[0], s1, sizeof s1);
        kn_ops_fmt(g, n->in[1], s2, sizeof s2);
        return kn_op_error(d, g, n, "gradient %s does not match %s", s1, s2);
    }
    kn_ops_set_out(g, n, 0, KN_F32, &v->shape);
    return KN_OK;
}

static void act_grad_expr(const kn_node *n, char *buf, size_t cap)
{
    char s[64];
    switch (n->op) {
    case KN_OP_RELU_GRAD: snprintf(buf, cap, "v > 0.0f ? gy : 0.0f"); break;
    case KN_OP_LEAKY_RELU_GRAD:
        kn_emit_float_lit(kn_ops_attr_num(n, "negative_slope", 0.01), s, sizeof s);
        snprintf(buf, cap, "v > 0.0f ? gy : gy * %s", s);
        break;
    /* PyTorch's GeluBackward: dy * (cdf(x) + x * pdf(x)); 0.398942280f is
     * M_2_SQRTPI * M_SQRT1_2 * 0.5 = 1/sqrt(2 pi). */
    case KN_OP_GELU_GRAD:
        snprintf(buf, cap, "gy * (0.5f * (1.0f + erff(v * 0.707106781f)) + v * 0.398942280f * expf(-0.5f * v * v))");
        break;
    case KN_OP_SIGMOID_GRAD: snprintf(buf, cap, "gy * (1.0f - v) * v"); break;
    default: snprintf(buf, cap, "gy * (1.0f - v * v)"); break;
    }
}

static kn_status emit_act_grad(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    (void)g;
    char numel[64], expr[200];
    act_grad_expr(n, expr, sizeof expr);
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    kn_emit_cuda_kernel(e, numel);
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_in(e, "V", n->in[1]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    kn_emit_for(e, "i", numel, "{ const float gy = dY[i], v = V[i]; dX[i] = %s; }", expr);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static void elem_act_grad(kn_emit *e, const kn_graph *g, const kn_node *n, const char *const *in, const char *out)
{
    (void)g;
    char expr[200];
    act_grad_expr(n, expr, sizeof expr);
    kn_emit_line(e, "{ const float gy = %s, v = %s; %s = %s; }", in[0], in[1], out, expr);
}

/* ---- gradient rules ---- */

static kn_status act_grad(kn_graph *g, const kn_node *n, const int *dy,
                          const bool *need, int *dx, kn_diag *d)
{
    dx[0] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    int op = -1, v = n->in[0];
    switch (n->op) {
    case KN_OP_RELU: op = KN_OP_RELU_GRAD; break;
    case KN_OP_LEAKY_RELU: op = KN_OP_LEAKY_RELU_GRAD; break;
    case KN_OP_GELU: op = KN_OP_GELU_GRAD; break;
    case KN_OP_SIGMOID: op = KN_OP_SIGMOID_GRAD; v = n->out[0]; break;
    case KN_OP_TANH: op = KN_OP_TANH_GRAD; v = n->out[0]; break;
    default: return kn_op_error(d, g, n, "internal: no gradient rule");
    }
    int in[2] = {dy[0], v};
    kn_node *gn = kn_ops_grad_node(g, n, op, "x", in, 2, 1);
    if (n->op == KN_OP_LEAKY_RELU)
        kn_node_set_attr_f(gn, "negative_slope", kn_ops_attr_num(n, "negative_slope", 0.01));
    return (dx[0] = kn_ops_grad_done(g, gn, d)) < 0 ? KN_ERR : KN_OK;
}

static const kn_arg_spec leaky_relu_args[] = {
    {"negative_slope", KN_ATTR_FLOAT, false, 0, 0.01, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_relu = {
    .name = "relu", .min_inputs = 1, .max_inputs = 1,
    .infer = infer_unary, .emit_c = emit_act, .emit_cuda = emit_act, .emit_elem = elem_act, .grad = act_grad,
};
const kn_op_def kn_op_def_leaky_relu = {
    .name = "leaky_relu", .min_inputs = 1, .max_inputs = 1, .args = leaky_relu_args,
    .infer = leaky_relu_check, .emit_c = emit_act, .emit_cuda = emit_act, .emit_elem = elem_act, .grad = act_grad,
};
const kn_op_def kn_op_def_gelu = {
    .name = "gelu", .min_inputs = 1, .max_inputs = 1,
    .infer = infer_unary, .emit_c = emit_act, .emit_cuda = emit_act, .emit_elem = elem_act, .grad = act_grad,
};
const kn_op_def kn_op_def_sigmoid = {
    .name = "sigmoid", .min_inputs = 1, .max_inputs = 1,
    .infer = infer_unary, .emit_c = emit_act, .emit_cuda = emit_act, .emit_elem = elem_act, .grad = act_grad,
};
const kn_op_def kn_op_def_tanh = {
    .name = "tanh", .min_inputs = 1, .max_inputs = 1,
    .infer = infer_unary, .emit_c = emit_act, .emit_cuda = emit_act, .emit_elem = elem_act, .grad = act_grad,
};

const kn_op_def kn_op_def_relu_grad = {
    .name = "relu_grad", .min_inputs = 2, .max_inputs = 2,
    .infer = infer_grad_map, .emit_c = emit_act_grad, .emit_cuda = emit_act_grad, .emit_elem = elem_act_grad,
    .internal = true,
};
const kn_op_def kn_op_def_leaky_relu_grad = {
    .name = "leaky_relu_grad", .min_inputs = 2, .max_inputs = 2,
    .infer = infer_grad_map, .emit_c = emit_act_grad, .emit_cuda = emit_act_grad, .emit_elem = elem_act_grad,
    .internal = true,
};
const kn_op_def kn_op_def_gelu_grad = {
    .name = "gelu_grad", .min_inputs = 2, .max_inputs = 2,
    .infer = infer_grad_map, .emit_c = emit_act_grad, .emit_cuda = emit_act_grad, .emit_elem = elem_act_grad,
    .internal = true,
};
const kn_op_def kn_op_def_sigmoid_grad = {
    .name = "sigmoid_grad", .min_inputs = 2, .max_inputs = 2,
    .infer = infer_grad_map, .emit_c = emit_act_grad, .emit_cuda = emit_act_grad, .emit_elem = elem_act_grad,
    .internal = true,
};
const kn_op_def kn_op_def_tanh_grad = {
    .name = "tanh_grad", .min_inputs = 2, .max_inputs = 2,
    .infer = infer_grad_map, .emit_c = emit_act_grad, .emit_cuda = emit_act_grad, .emit_elem = elem_act_grad,
    .internal = true,
};

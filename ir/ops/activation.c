/* activation.c — elementwise activations: relu, leaky_relu, gelu, sigmoid, tanh.
 *
 * Each is Y = f(X) over a f32 tensor of any shape, emitted as one flat loop
 * the C compiler can vectorize.  Formulas follow PyTorch's CPU kernels:
 * gelu is the exact erf form (not the tanh approximation), relu propagates
 * NaN like torch.relu.  Gradients and CUDA emission come with their issues.
 */
#include "op_util.h"

static kn_status infer_unary(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "input") != KN_OK) return KN_ERR;
    kn_ops_set_out(g, n, 0, KN_F32, &kn_graph_value(g, n->in[0])->shape);
    return KN_OK;
}

/* Y[i] = <expr of X[i]> for every element. */
static void emit_map(kn_emit *e, const kn_node *n, const char *expr)
{
    char numel[64];
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    kn_emit_line(e, "for (size_t i = 0; i < %s; i++) Y[i] = %s;", numel, expr);
}

static kn_status emit_relu(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    (void)g;
    emit_map(e, n, "X[i] < 0.0f ? 0.0f : X[i]");
    return KN_OK;
}

static kn_status leaky_relu_check(kn_graph *g, kn_node *n, kn_diag *d)
{
    double s = kn_ops_attr_num(n, "negative_slope", 0.01);
    if (s != s)
        return kn_op_error(d, g, n, "negative_slope must be a number, got nan");
    return infer_unary(g, n, d);
}

static kn_status emit_leaky_relu(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    (void)g;
    char s[64], expr[160];
    kn_emit_float_lit(kn_ops_attr_num(n, "negative_slope", 0.01), s, sizeof s);
    snprintf(expr, sizeof expr, "X[i] > 0.0f ? X[i] : X[i] * %s", s);
    emit_map(e, n, expr);
    return KN_OK;
}

static kn_status emit_gelu(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    (void)g;
    /* 0.707106781f is M_SQRT1_2 rounded to float, as in PyTorch's kernel. */
    emit_map(e, n, "X[i] * 0.5f * (1.0f + erff(X[i] * 0.707106781f))");
    return KN_OK;
}

static kn_status emit_sigmoid(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    (void)g;
    emit_map(e, n, "1.0f / (1.0f + expf(-X[i]))");
    return KN_OK;
}

static kn_status emit_tanh(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    (void)g;
    emit_map(e, n, "tanhf(X[i])");
    return KN_OK;
}

static const kn_arg_spec leaky_relu_args[] = {
    {"negative_slope", KN_ATTR_FLOAT, false, 0, 0.01, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_relu = {
    .name = "relu", .min_inputs = 1, .max_inputs = 1,
    .infer = infer_unary, .emit_c = emit_relu,
};
const kn_op_def kn_op_def_leaky_relu = {
    .name = "leaky_relu", .min_inputs = 1, .max_inputs = 1, .args = leaky_relu_args,
    .infer = leaky_relu_check, .emit_c = emit_leaky_relu,
};
const kn_op_def kn_op_def_gelu = {
    .name = "gelu", .min_inputs = 1, .max_inputs = 1,
    .infer = infer_unary, .emit_c = emit_gelu,
};
const kn_op_def kn_op_def_sigmoid = {
    .name = "sigmoid", .min_inputs = 1, .max_inputs = 1,
    .infer = infer_unary, .emit_c = emit_sigmoid,
};
const kn_op_def kn_op_def_tanh = {
    .name = "tanh", .min_inputs = 1, .max_inputs = 1,
    .infer = infer_unary, .emit_c = emit_tanh,
};

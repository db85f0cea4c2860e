/* unary.c — table-driven elementwise math: Y = f(X) over a f32 tensor.
 *
 * One row per op: the C expression of the forward (in terms of x = X[i] and
 * up to two float attributes A and B), and of the gradient (in terms of
 * g = dY[i], x, y = Y[i], A, B).  Formulas follow the ONNX operator spec for
 * the forward and PyTorch's autograd formulas for the backward; piecewise
 * constant ops (floor, ceil, round, sign) have a zero gradient, as in
 * PyTorch.  relu/gelu/sigmoid/tanh/leaky_relu stay in activation.c (they
 * predate this table and have their own backward ops).
 * Backward op unary_grad(dy, x, y) carries the forward op id as attribute
 * `fn` and the forward's A/B, so one internal op serves every row.
 */
#include "op_util.h"

#include <math.h>

typedef struct {
    int op;
    const char *name;
    const char *y;       /* forward: x, A, B */
    const char *dx;      /* backward: g, x, y, A, B */
    const char *a, *b;   /* attribute names read as A and B (NULL = unused) */
    double da, db;       /* their defaults */
} unary_fn;

/* SELU's constants as in the ONNX spec (and torch.selu). */
#define SELU_ALPHA 1.67326319217681884765625
#define SELU_GAMMA 1.05070102214813232421875

static const unary_fn FNS[] = {
    {KN_OP_ABS, "abs", "fabsf(x)", "x > 0.0f ? g : x < 0.0f ? -g : 0.0f", NULL, NULL, 0, 0},
    {KN_OP_NEG, "neg", "-x", "-g", NULL, NULL, 0, 0},
    {KN_OP_EXP, "exp", "expf(x)", "g * y", NULL, NULL, 0, 0},
    {KN_OP_LOG, "log", "logf(x)", "g / x", NULL, NULL, 0, 0},
    {KN_OP_SQRT, "sqrt", "sqrtf(x)", "g / (2.0f * y)", NULL, NULL, 0, 0},
    {KN_OP_RECIPROCAL, "reciprocal", "1.0f / x", "-g * y * y", NULL, NULL, 0, 0},
    {KN_OP_FLOOR, "floor", "floorf(x)", "0.0f", NULL, NULL, 0, 0},
    {KN_OP_CEIL, "ceil", "ceilf(x)", "0.0f", NULL, NULL, 0, 0},
    /* nearbyintf rounds half to even in the default rounding mode (ONNX Round) */
    {KN_OP_ROUND, "round", "nearbyintf(x)", "0.0f", NULL, NULL, 0, 0},
    {KN_OP_SIGN, "sign", "x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x", "0.0f", NULL, NULL, 0, 0},
    {KN_OP_SIN, "sin", "sinf(x)", "g * cosf(x)", NULL, NULL, 0, 0},
    {KN_OP_COS, "cos", "cosf(x)", "-g * sinf(x)", NULL, NULL, 0, 0},
    {KN_OP_TAN, "tan", "tanf(x)", "g * (1.0f + y * y)", NULL, NULL, 0, 0},
    {KN_OP_ASIN, "asin", "asinf(x)", "g / sqrtf(1.0f - x * x)", NULL, NULL, 0, 0},
    {KN_OP_ACOS, "acos", "acosf(x)", "-g / sqrtf(1.0f - x * x)", NULL, NULL, 0, 0},
    {KN_OP_ATAN, "atan", "atanf(x)", "g / (1.0f + x * x)", NULL, NULL, 0, 0},
    {KN_OP_SINH, "sinh", "sinhf(x)", "g * coshf(x)", NULL, NULL, 0, 0},
    {KN_OP_COSH, "cosh", "coshf(x)", "g * sinhf(x)", NULL, NULL, 0, 0},
    {KN_OP_ASINH, "asinh", "asinhf(x)", "g / sqrtf(x * x + 1.0f)", NULL, NULL, 0, 0},
    {KN_OP_ACOSH, "acosh", "acoshf(x)", "g / sqrtf(x * x - 1.0f)", NULL, NULL, 0, 0},
    {KN_OP_ATANH, "atanh", "atanhf(x)", "g / (1.0f - x * x)", NULL, NULL, 0, 0},
    /* 1.12837917f = 2 / sqrt(pi) */
    {KN_OP_ERF, "erf", "erff(x)", "g * 1.12837917f * expf(-x * x)", NULL, NULL, 0, 0},
    {KN_OP_SOFTSIGN, "softsign", "x / (1.0f + fabsf(x))",
     "g / ((1.0f + fabsf(x)) * (1.0f + fabsf(x)))", NULL, NULL, 0, 0},
    /* log(1 + e^x) without overflow for large x */
    {KN_OP_SOFTPLUS, "softplus", "x > 20.0f ? x : log1pf(expf(x))", "g / (1.0f + expf(-x))", NULL, NULL, 0, 0},
    {KN_OP_ELU, "elu", "x > 0.0f ? x : A * expm1f(x)", "x > 0.0f ? g : g * (y + A)", "alpha", NULL, 1.0, 0},
    {KN_OP_SELU, "selu", "x > 0.0f ? B * x : B * A * expm1f(x)", "x > 0.0f ? g * B : g * (y + B * A)",
     "alpha", "gamma", SELU_ALPHA, SELU_GAMMA},
    {KN_OP_CELU, "celu", "x > 0.0f ? x : A * expm1f(x / A)", "x > 0.0f ? g : g * expf(x / A)", "alpha", NULL,
     1.0, 0},
    {KN_OP_HARD_SIGMOID, "hard_sigmoid", "fmaxf(0.0f, fminf(1.0f, A * x + B))",
     "A * x + B > 0.0f && A * x + B < 1.0f ? g * A : 0.0f", "alpha", "beta", 0.2, 0.5},
    /* torch's hardswish_backward: linear pieces outside [-3, 3] */
    {KN_OP_HARD_SWISH, "hard_swish", "x * fmaxf(0.0f, fminf(1.0f, x / 6.0f + 0.5f))",
     "x < -3.0f ? 0.0f : x > 3.0f ? g : g * (x / 3.0f + 0.5f)", NULL, NULL, 0, 0},
    {KN_OP_THRESHOLDED_RELU, "thresholded_relu", "x > A ? x : 0.0f", "x > A ? g : 0.0f", "alpha", NULL, 1.0, 0},
    {KN_OP_SHRINK, "shrink", "x < -A ? x + B : x > A ? x - B : 0.0f", "x < -A || x > A ? g : 0.0f", "lambd", "bias",
     0.5, 0.0},
};

static const unary_fn *fn_of(int op)
{
    for (size_t i = 0; i < sizeof FNS / sizeof FNS[0]; i++)
        if (FNS[i].op == op) return &FNS[i];
    return NULL;
}

static kn_status unary_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    const unary_fn *f = fn_of(n->op);
    if (!f) return kn_op_error(d, g, n, "internal: not a table op");
    if (kn_ops_want_f32(d, g, n, 0, "input") != KN_OK) return KN_ERR;
    double a = kn_ops_attr_num(n, f->a ? f->a : "", f->da), b = kn_ops_attr_num(n, f->b ? f->b : "", f->db);
    if (isnan(a) || isnan(b)) return kn_op_error(d, g, n, "attributes must be numbers, got nan");
    if (n->op == KN_OP_CELU && a == 0.0) return kn_op_error(d, g, n, "alpha must not be 0");
    if (n->op == KN_OP_SHRINK && a < 0.0) return kn_op_error(d, g, n, "lambd must be >= 0, got %g", a);
    kn_ops_set_out(g, n, 0, KN_F32, &kn_graph_value(g, n->in[0])->shape);
    return KN_OK;
}

/* `const float A = ...;` for the attributes a row uses; `src` holds them
 * (the forward node, or the backward node that copied them). */
static void emit_attrs(kn_emit *e, const unary_fn *f, const kn_node *src)
{
    char lit[64];
    if (f->a) {
        kn_emit_float_lit(kn_ops_attr_num(src, f->a, f->da), lit, sizeof lit);
        kn_emit_line(e, "const float A = %s;", lit);
    }
    if (f->b) {
        kn_emit_float_lit(kn_ops_attr_num(src, f->b, f->db), lit, sizeof lit);
        kn_emit_line(e, "const float B = %s;", lit);
    }
}

static kn_status unary_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const unary_fn *f = fn_of(n->op);
    if (!f) return kn_op_error(e->diag, g, n, "internal: not a table op");
    char numel[64];
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    kn_emit_cuda_kernel(e, numel); /* GPU: one thread per element */
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    emit_attrs(e, f, n);
    kn_emit_for(e, "i", numel, "{");
    kn_emit_line(e, "    const float x = X[i];");
    kn_emit_line(e, "    Y[i] = %s;", f->y);
    kn_emit_line(e, "}");
    kn_emit_cuda_end(e);
    return KN_OK;
}

/* Inside an elementwise run: the row's expression in a block of its own. */
static void unary_elem(kn_emit *e, const kn_graph *g, const kn_node *n, const char *const *in, const char *out)
{
    (void)g;
    const unary_fn *f = fn_of(n->op);
    kn_emit_line(e, "{");
    e->indent++;
    emit_attrs(e, f, n);
    kn_emit_line(e, "const float x = %s;", in[0]);
    kn_emit_line(e, "%s = %s;", out, f->y);
    e->indent--;
    kn_emit_line(e, "}");
}

/* ---- unary_grad(dy, x, y): dX[i] = <row's dx> ---- */

static kn_status unary_grad_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (!fn_of((int)kn_node_attr_i(n, "fn", -1))) return kn_op_error(d, g, n, "needs the forward op as attribute 'fn'");
    for (int i = 0; i < 3; i++)
        if (kn_ops_want_f32(d, g, n, i, i == 0 ? "gradient" : i == 1 ? "input" : "output") != KN_OK) return KN_ERR;
    const kn_shape *s = &kn_graph_value(g, n->in[1])->shape;
    if (!kn_shape_equal(s, &kn_graph_value(g, n->in[0])->shape) || !kn_shape_equal(s, &kn_graph_value(g, n->in[2])->shape))
        return kn_op_error(d, g, n, "gradient, input and output shapes differ");
    kn_ops_set_out(g, n, 0, KN_F32, s);
    return KN_OK;
}

static kn_status unary_grad_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    (void)g;
    const unary_fn *f = fn_of((int)kn_node_attr_i(n, "fn", -1));
    char numel[64];
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    kn_emit_cuda_kernel(e, numel); /* GPU: one thread per element */
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_in(e, "X", n->in[1]);
    kn_emit_bind_in(e, "Yf", n->in[2]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    emit_attrs(e, f, n);
    kn_emit_for(e, "i", numel, "{");
    kn_emit_line(e, "    const float g = dY[i], x = X[i], y = Yf[i];");
    kn_emit_line(e, "    (void)g, (void)x, (void)y;");
    kn_emit_line(e, "    dX[i] = %s;", f->dx);
    kn_emit_line(e, "}");
    kn_emit_cuda_end(e);
    return KN_OK;
}

static void unary_grad_elem(kn_emit *e, const kn_graph *g, const kn_node *n, const char *const *in, const char *out)
{
    (void)g;
    const unary_fn *f = fn_of((int)kn_node_attr_i(n, "fn", -1));
    kn_emit_line(e, "{");
    e->indent++;
    emit_attrs(e, f, n);
    kn_emit_line(e, "const float g = %s, x = %s, y = %s;", in[0], in[1], in[2]);
    kn_emit_line(e, "(void)g, (void)x, (void)y;");
    kn_emit_line(e, "%s = %s;", out, f->dx);
    e->indent--;
    kn_emit_line(e, "}");
}

static kn_status unary_grad(kn_graph *g, const kn_node *n, const int *dy, const bool *need, int *dx, kn_diag *d)
{
    dx[0] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    const unary_fn *f = fn_of(n->op);
    int in[3] = {dy[0], n->in[0], n->out[0]};
    kn_node *gn = kn_ops_grad_node(g, n, KN_OP_UNARY_GRAD, "x", in, 3, 1);
    kn_node_set_attr_i(gn, "fn", n->op);
    if (f->a) kn_node_set_attr_f(gn, f->a, kn_ops_attr_num(n, f->a, f->da));
    if (f->b) kn_node_set_attr_f(gn, f->b, kn_ops_attr_num(n, f->b, f->db));
    return (dx[0] = kn_ops_grad_done(g, gn, d)) < 0 ? KN_ERR : KN_OK;
}

/* ---- definitions ---- */

static const kn_arg_spec alpha1_args[] = {
    {"alpha", KN_ATTR_FLOAT, false, 0, 1.0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};
static const kn_arg_spec selu_args[] = {
    {"alpha", KN_ATTR_FLOAT, false, 0, SELU_ALPHA, NULL},
    {"gamma", KN_ATTR_FLOAT, false, 0, SELU_GAMMA, NULL},
    {NULL, 0, false, 0, 0, NULL},
};
static const kn_arg_spec hard_sigmoid_args[] = {
    {"alpha", KN_ATTR_FLOAT, false, 0, 0.2, NULL},
    {"beta", KN_ATTR_FLOAT, false, 0, 0.5, NULL},
    {NULL, 0, false, 0, 0, NULL},
};
static const kn_arg_spec shrink_args[] = {
    {"lambd", KN_ATTR_FLOAT, false, 0, 0.5, NULL},
    {"bias", KN_ATTR_FLOAT, false, 0, 0.0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

#define UNARY_DEF(id, nm, argv)                                                                                      \
    const kn_op_def kn_op_def_##id = {                                                                               \
        .name = nm, .min_inputs = 1, .max_inputs = 1, .args = argv,                                                  \
        .infer = unary_infer, .emit_c = unary_emit, .emit_cuda = unary_emit, .emit_elem = unary_elem,               \
        .grad = unary_grad,                                                                                          \
    }

UNARY_DEF(abs, "abs", NULL);
UNARY_DEF(neg, "neg", NULL);
UNARY_DEF(exp, "exp", NULL);
UNARY_DEF(log, "log", NULL);
UNARY_DEF(sqrt, "sqrt", NULL);
UNARY_DEF(reciprocal, "reciprocal", NULL);
UNARY_DEF(floor, "floor", NULL);
UNARY_DEF(ceil, "ceil", NULL);
UNARY_DEF(round, "round", NULL);
UNARY_DEF(sign, "sign", NULL);
UNARY_DEF(sin, "sin", NULL);
UNARY_DEF(cos, "cos", NULL);
UNARY_DEF(tan, "tan", NULL);
UNARY_DEF(asin, "asin", NULL);
UNARY_DEF(acos, "acos", NULL);
UNARY_DEF(atan, "atan", NULL);
UNARY_DEF(sinh, "sinh", NULL);
UNARY_DEF(cosh, "cosh", NULL);
UNARY_DEF(asinh, "asinh", NULL);
UNARY_DEF(acosh, "acosh", NULL);
UNARY_DEF(atanh, "atanh", NULL);
UNARY_DEF(erf, "erf", NULL);
UNARY_DEF(softsign, "softsign", NULL);
UNARY_DEF(softplus, "softplus", NULL);
UNARY_DEF(elu, "elu", alpha1_args);
UNARY_DEF(selu, "selu", selu_args);
UNARY_DEF(celu, "celu", alpha1_args);
UNARY_DEF(hard_sigmoid, "hard_sigmoid", hard_sigmoid_args);
UNARY_DEF(hard_swish, "hard_swish", NULL);
UNARY_DEF(thresholded_relu, "thresholded_relu", alpha1_args);
UNARY_DEF(shrink, "shrink", shrink_args);

const kn_op_def kn_op_def_unary_grad = {
    .name = "unary_grad", .min_inputs = 3, .max_inputs = 3,
    .infer = unary_grad_infer, .emit_c = unary_grad_emit, .emit_cuda = unary_grad_emit, .emit_elem = unary_grad_elem,
    .internal = true,
};

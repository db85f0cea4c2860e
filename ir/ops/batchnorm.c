/* batchnorm.c — batch normalisation over the channel dim (dim 1).
 *
 * batchnorm(x, eps=1e-5, momentum=0.1): x f32[N, C] or f32[N, C, ...]
 * (BatchNorm1d/2d/3d), creating `<node>.weight` (ones), `<node>.bias`
 * (zeros), and the buffers `<node>.running_mean` (zeros) and
 * `<node>.running_var` (ones), all [C].  Input order follows ONNX
 * BatchNormalization: X, scale, B, input_mean, input_var.
 *
 * Only eval mode is emitted here: y = x * s + (b - mean * s) with
 * s = w / sqrt(var + eps), PyTorch's CPU formula.  Train mode (batch
 * statistics, running-stat updates) belongs to the training work; until then
 * emission fails in train mode rather than silently computing eval.
 */
#include "op_util.h"

static const char *const bn_params[4] = {"weight", "bias", "running_mean", "running_var"};

static kn_status bn_check_input(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "input") != KN_OK) return KN_ERR;
    const kn_value *x = kn_graph_value(g, n->in[0]);
    if (x->shape.rank < 2 || x->shape.d[1] == KN_DIM_N) {
        char s[128];
        kn_ops_fmt(g, n->in[0], s, sizeof s);
        return kn_op_error(d, g, n, "expects f32[N, C] or f32[N, C, ...] input, got %s", s);
    }
    double eps = kn_ops_attr_num(n, "eps", 1e-5);
    double mom = kn_ops_attr_num(n, "momentum", 0.1);
    if (!(eps > 0))
        return kn_op_error(d, g, n, "eps must be > 0, got %g", eps);
    if (!(mom >= 0 && mom <= 1))
        return kn_op_error(d, g, n, "momentum must be in [0, 1], got %g", mom);
    return KN_OK;
}

static kn_status bn_add_params(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (bn_check_input(g, n, d) != KN_OK) return KN_ERR;
    if (n->n_in > 1) return KN_OK; /* already has its parameters */
    int64_t c = kn_graph_value(g, n->in[0])->shape.d[1];
    kn_shape s = kn_shape_make(1, &c);
    kn_op_add_param(g, n, "weight", KN_VAL_PARAM, &s, KN_INIT_ONES, c, c);
    kn_op_add_param(g, n, "bias", KN_VAL_PARAM, &s, KN_INIT_ZEROS, c, c);
    kn_op_add_param(g, n, "running_mean", KN_VAL_BUFFER, &s, KN_INIT_ZEROS, c, c);
    kn_op_add_param(g, n, "running_var", KN_VAL_BUFFER, &s, KN_INIT_ONES, c, c);
    return KN_OK;
}

static kn_status bn_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (bn_check_input(g, n, d) != KN_OK) return KN_ERR;
    if (n->n_in != 5)
        return kn_op_error(d, g, n, "expects 5 inputs (x, weight, bias, running_mean, "
                           "running_var), got %d", n->n_in);
    const kn_value *x = kn_graph_value(g, n->in[0]);
    int64_t c = x->shape.d[1];
    for (int i = 1; i < 5; i++) {
        const kn_value *p = kn_graph_value(g, n->in[i]);
        if (p->dtype != KN_F32 || p->shape.rank != 1 || p->shape.d[0] != c) {
            char s[128];
            kn_ops_fmt(g, n->in[i], s, sizeof s);
            return kn_op_error(d, g, n, "%s '%s' must be f32[%lld], got %s",
                               bn_params[i - 1], p->name, (long long)c, s);
        }
    }
    kn_ops_set_out(g, n, 0, KN_F32, &x->shape);
    return KN_OK;
}

static kn_status bn_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    if (g->mode == KN_MODE_TRAIN) return KN_ERR; /* batchnorm train mode not implemented yet */
    const kn_value *x = kn_graph_value(g, n->in[0]);
    int r = x->shape.rank;
    char rows[64], eps[64];
    long long c = (long long)x->shape.d[1];
    long long inner = (long long)kn_ops_dims_const(&x->shape, 2, r);
    kn_ops_dims_expr(e, n->in[0], 0, 1, rows, sizeof rows);
    kn_emit_float_lit(kn_ops_attr_num(n, "eps", 1e-5), eps, sizeof eps);

    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_in(e, "SCALE", n->in[1]);
    kn_emit_bind_in(e, "B", n->in[2]);
    kn_emit_bind_in(e, "MEAN", n->in[3]);
    kn_emit_bind_in(e, "VAR", n->in[4]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_line(e, "for (size_t i = 0; i < %s; i++) {", rows);
    kn_emit_line(e, "    for (size_t c = 0; c < %lld; c++) {", c);
    kn_emit_line(e, "        const float s = SCALE[c] / sqrtf(VAR[c] + %s);", eps);
    kn_emit_line(e, "        const float t = B[c] - MEAN[c] * s;");
    if (inner == 1) {
        kn_emit_line(e, "        Y[i * %lld + c] = X[i * %lld + c] * s + t;", c, c);
    } else {
        kn_emit_line(e, "        const size_t base = (i * %lld + c) * %lld;", c, inner);
        kn_emit_line(e, "        for (size_t k = 0; k < %lld; k++) Y[base + k] = X[base + k] * s + t;",
                     inner);
    }
    kn_emit_line(e, "    }");
    kn_emit_line(e, "}");
    return KN_OK;
}

static const kn_arg_spec bn_args[] = {
    {"eps", KN_ATTR_FLOAT, false, 0, 1e-5, NULL},
    {"momentum", KN_ATTR_FLOAT, false, 0, 0.1, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_batchnorm = {
    .name = "batchnorm", .min_inputs = 1, .max_inputs = 1, .args = bn_args,
    .add_params = bn_add_params, .infer = bn_infer, .emit_c = bn_emit,
};

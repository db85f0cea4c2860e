/* softmax.c — softmax and log_softmax along one dim (default -1).
 *
 * The tensor is viewed as [outer, D, inner] around `dim`; each of the
 * outer*inner lines is normalised with the max subtracted first, so large
 * logits never overflow expf.  log_softmax is (x - max) - log(sum exp(x - max)),
 * as PyTorch computes it.
 * Backward ops read the forward output y: softmax_grad(dy, y, dim) is
 * y * (dy - sum(dy * y)), log_softmax_grad(dy, y, dim) is
 * dy - exp(y) * sum(dy), the sums along `dim` accumulated in double.
 */
#include "op_util.h"

static kn_status infer_softmax(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "input") != KN_OK) return KN_ERR;
    int dim = 0;
    if (kn_ops_norm_dim(d, g, n, n->in[0], kn_node_attr_i(n, "dim", -1), &dim) != KN_OK)
        return KN_ERR;
    kn_ops_set_out(g, n, 0, KN_F32, &kn_graph_value(g, n->in[0])->shape);
    return KN_OK;
}

static kn_status emit_softmax_common(kn_emit *e, const kn_graph *g, const kn_node *n, bool log)
{
    const kn_value *x = kn_graph_value(g, n->in[0]);
    int64_t dim64 = kn_node_attr_i(n, "dim", -1);
    int r = x->shape.rank;
    int dim = (int)(dim64 < 0 ? dim64 + r : dim64);
    char outer[64], len[64], inner[64];
    kn_ops_dims_expr(e, n->in[0], 0, dim, outer, sizeof outer);
    kn_ops_dims_expr(e, n->in[0], dim, dim + 1, len, sizeof len);
    kn_ops_dims_expr(e, n->in[0], dim + 1, r, inner, sizeof inner);
    bool contiguous = strcmp(inner, "1") == 0;
    /* Element j of the line starting at `base`. */
    const char *at = contiguous ? "j" : "j * INNER";

    bool one_outer = strcmp(outer, "1") == 0;
    kn_emit_cuda_kernel(e, one_outer ? "1" : outer); /* GPU: one thread per line */
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    if (!contiguous) kn_emit_line(e, "const size_t INNER = %s;", inner);
    char base[160];
    if (one_outer) kn_emit_cuda_one_thread(e);
    else kn_emit_for_open(e, "o", outer);
    if (!contiguous) {
        kn_emit_line(e, "for (size_t i = 0; i < INNER; i++) {");
        e->indent++;
        if (one_outer) snprintf(base, sizeof base, " + i");
        else snprintf(base, sizeof base, " + o * %s * INNER + i", len);
    } else if (one_outer) {
        base[0] = 0;
    } else {
        snprintf(base, sizeof base, " + o * %s", len);
    }
    kn_emit_line(e, "const float *x = X%s;", base);
    kn_emit_line(e, "float *y = Y%s;", base);
    kn_emit_line(e, "float m = x[0];");
    kn_emit_line(e, "for (size_t j = 1; j < %s; j++) m = x[%s] > m ? x[%s] : m;", len, at, at);
    kn_emit_line(e, "float s = 0.0f;");
    if (log) {
        kn_emit_line(e, "for (size_t j = 0; j < %s; j++) s += expf(x[%s] - m);", len, at);
        kn_emit_line(e, "const float ls = logf(s);");
        kn_emit_line(e, "for (size_t j = 0; j < %s; j++) y[%s] = (x[%s] - m) - ls;", len, at, at);
    } else {
        kn_emit_line(e, "for (size_t j = 0; j < %s; j++) {", len);
        kn_emit_line(e, "    y[%s] = expf(x[%s] - m);", at, at);
        kn_emit_line(e, "    s += y[%s];", at);
        kn_emit_line(e, "}");
        kn_emit_line(e, "for (size_t j = 0; j < %s; j++) y[%s] /= s;", len, at);
    }
    if (!contiguous) {
        e->indent--;
        kn_emit_line(e, "}");
    }
    if (!one_outer) kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static kn_status emit_softmax(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    return emit_softmax_common(e, g, n, false);
}

static kn_status emit_log_softmax(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    return emit_softmax_common(e, g, n, true);
}

/* ---- backward ops ---- */

static kn_status infer_softmax_grad(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "output gradient") != KN_OK) return KN_ERR;
    if (kn_ops_want_f32(d, g, n, 1, "forward output") != KN_OK) return KN_ERR;
    const kn_value *dy = kn_graph_value(g, n->in[0]), *y = kn_graph_value(g, n->in[1]);
    if (!kn_shape_equal(&dy->shape, &y->shape)) {
        char s1[128], s2[128];
        kn_ops_fmt(g, n->in[0], s1, sizeof s1);
        kn_ops_fmt(g, n->in[1], s2, sizeof s2);
        return kn_op_error(d, g, n, "gradient %s does not match output %s", s1, s2);
    }
    int dim = 0;
    if (kn_ops_norm_dim(d, g, n, n->in[1], kn_node_attr_i(n, "dim", -1), &dim) != KN_OK)
        return KN_ERR;
    kn_ops_set_out(g, n, 0, KN_F32, &y->shape);
    return KN_OK;
}

static kn_status emit_softmax_grad_common(kn_emit *e, const kn_graph *g, const kn_node *n, bool log)
{
    const kn_value *y = kn_graph_value(g, n->in[1]);
    int64_t dim64 = kn_node_attr_i(n, "dim", -1);
    int r = y->shape.rank;
    int dim = (int)(dim64 < 0 ? dim64 + r : dim64);
    char outer[64], len[64], inner[64];
    kn_ops_dims_expr(e, n->in[1], 0, dim, outer, sizeof outer);
    kn_ops_dims_expr(e, n->in[1], dim, dim + 1, len, sizeof len);
    kn_ops_dims_expr(e, n->in[1], dim + 1, r, inner, sizeof inner);
    kn_emit_cuda_kernel(e, outer); /* GPU: one thread per outer index */
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_in(e, "Y", n->in[1]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    kn_emit_line(e, "const size_t INNER = %s, LEN = %s;", inner, len);
    kn_emit_for(e, "o", outer, "{");
    kn_emit_line(e, "    for (size_t i = 0; i < INNER; i++) {");
    e->indent += 2;
    kn_emit_line(e, "const size_t base = o * LEN * INNER + i;");
    kn_emit_line(e, "double s = 0.0;");
    if (log) {
        kn_emit_line(e, "for (size_t j = 0; j < LEN; j++) s += dY[base + j * INNER];");
        kn_emit_line(e, "for (size_t j = 0; j < LEN; j++) {");
        kn_emit_line(e, "    const size_t k = base + j * INNER;");
        kn_emit_line(e, "    dX[k] = dY[k] - expf(Y[k]) * (float)s;");
        kn_emit_line(e, "}");
    } else {
        kn_emit_line(e, "for (size_t j = 0; j < LEN; j++) s += (double)dY[base + j * INNER] * Y[base + j * INNER];");
        kn_emit_line(e, "for (size_t j = 0; j < LEN; j++) {");
        kn_emit_line(e, "    const size_t k = base + j * INNER;");
        kn_emit_line(e, "    dX[k] = Y[k] * (dY[k] - (float)s);");
        kn_emit_line(e, "}");
    }
    e->indent -= 2;
    kn_emit_line(e, "    }");
    kn_emit_line(e, "}");
    kn_emit_cuda_end(e);
    return KN_OK;
}

static kn_status emit_softmax_grad(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    return emit_softmax_grad_common(e, g, n, false);
}

static kn_status emit_log_softmax_grad(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    return emit_softmax_grad_common(e, g, n, true);
}

static kn_status softmax_grad(kn_graph *g, const kn_node *n, const int *dy,
                              const bool *need, int *dx, kn_diag *d)
{
    dx[0] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    int in[2] = {dy[0], n->out[0]};
    int op = n->op == KN_OP_SOFTMAX ? KN_OP_SOFTMAX_GRAD : KN_OP_LOG_SOFTMAX_GRAD;
    kn_node *gn = kn_ops_grad_node(g, n, op, "x", in, 2, 1);
    kn_node_set_attr_i(gn, "dim", kn_node_attr_i(n, "dim", -1));
    return (dx[0] = kn_ops_grad_done(g, gn, d)) < 0 ? KN_ERR : KN_OK;
}

static const kn_arg_spec softmax_args[] = {
    {"dim", KN_ATTR_INT, false, -1, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_softmax = {
    .name = "softmax", .min_inputs = 1, .max_inputs = 1, .args = softmax_args,
    .infer = infer_softmax, .emit_c = emit_softmax, .emit_cuda = emit_softmax, .grad = softmax_grad,
};
const kn_op_def kn_op_def_log_softmax = {
    .name = "log_softmax", .min_inputs = 1, .max_inputs = 1, .args = softmax_args,
    .infer = infer_softmax, .emit_c = emit_log_softmax, .emit_cuda = emit_log_softmax, .grad = softmax_grad,
};
const kn_op_def kn_op_def_softmax_grad = {
    .name = "softmax_grad", .min_inputs = 2, .max_inputs = 2,
    .infer = infer_softmax_grad, .emit_c = emit_softmax_grad, .emit_cuda = emit_softmax_grad,
    .internal = true,
};
const kn_op_def kn_op_def_log_softmax_grad = {
    .name = "log_softmax_grad", .min_inputs = 2, .max_inputs = 2,
    .infer = infer_softmax_grad, .emit_c = emit_log_softmax_grad, .emit_cuda = emit_log_softmax_grad,
    .internal = true,
};

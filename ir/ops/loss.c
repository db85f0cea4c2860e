/* loss.c — cross_entropy and mse, both mean-reduced to a scalar f32[].
 *
 * cross_entropy(logits f32[N, C], target i64[N], label_smoothing=0.0) is
 * torch.nn.functional.cross_entropy with class-index targets: per row
 * lse = max + log(sum exp(x - max)), loss = (1-ls)(lse - x[t]) + ls/C *
 * sum_c (lse - x[c]), averaged over the batch.  A target outside [0, C)
 * makes the loss NaN (the runtime reports a NaN loss as bad data).
 * mse(a, b) is the mean of (a - b)^2 over same-shaped f32 tensors.
 * Sums accumulate in double.
 */
#include "op_util.h"

static kn_status ce_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "logits input") != KN_OK) return KN_ERR;
    if (kn_ops_want_input(d, g, n, 1) != KN_OK) return KN_ERR;
    const kn_value *x = kn_graph_value(g, n->in[0]);
    const kn_value *t = kn_graph_value(g, n->in[1]);
    char sx[128], st[128];
    kn_ops_fmt(g, n->in[0], sx, sizeof sx);
    kn_ops_fmt(g, n->in[1], st, sizeof st);
    if (x->shape.rank != 2 || x->shape.d[1] == KN_DIM_N)
        return kn_op_error(d, g, n, "expects logits f32[N, C], got %s", sx);
    if (t->dtype != KN_I64)
        return kn_op_error(d, g, n, "expects class indices i64[N] as target, got '%s' of type %s",
                           t->name, st);
    if (t->shape.rank != 1 || t->shape.d[0] != x->shape.d[0])
        return kn_op_error(d, g, n, "target '%s' of type %s does not match logits %s "
                           "(expected i64[%s])", t->name, st, sx,
                           x->shape.d[0] == KN_DIM_N ? "N" : "rows");
    double ls = kn_ops_attr_num(n, "label_smoothing", 0.0);
    if (!(ls >= 0 && ls <= 1))
        return kn_op_error(d, g, n, "label_smoothing must be in [0, 1], got %g", ls);
    kn_shape y = {.rank = 0};
    kn_ops_set_out(g, n, 0, KN_F32, &y);
    return KN_OK;
}

static kn_status ce_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_value *x = kn_graph_value(g, n->in[0]);
    long long c = (long long)x->shape.d[1];
    double ls = kn_ops_attr_num(n, "label_smoothing", 0.0);
    char rows[64];
    kn_emit_dim(e, n->in[0], 0, rows, sizeof rows);

    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_in(e, "T", n->in[1]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_line(e, "double total = 0.0;");
    kn_emit_line(e, "for (size_t i = 0; i < (size_t)%s; i++) {", rows);
    e->indent++;
    kn_emit_line(e, "const float *x = X + i * %lld;", c);
    kn_emit_line(e, "float m = x[0];");
    kn_emit_line(e, "for (size_t j = 1; j < %lld; j++) m = x[j] > m ? x[j] : m;", c);
    kn_emit_line(e, "double s = 0.0;");
    kn_emit_line(e, "for (size_t j = 0; j < %lld; j++) s += expf(x[j] - m);", c);
    kn_emit_line(e, "const double lse = (double)m + log(s);");
    kn_emit_line(e, "const int64_t t = T[i];");
    kn_emit_line(e, "if (t < 0 || t >= %lld) { total = NAN; continue; }", c);
    if (ls == 0.0) {
        kn_emit_line(e, "total += lse - (double)x[t];");
    } else {
        /* (1 - ls) on the target's -log p, ls/C on every class's. */
        kn_emit_line(e, "double all = 0.0;");
        kn_emit_line(e, "for (size_t j = 0; j < %lld; j++) all += lse - (double)x[j];", c);
        kn_emit_line(e, "total += %.17g * (lse - (double)x[t]) + %.17g * all;", 1.0 - ls,
                     ls / (double)c);
    }
    e->indent--;
    kn_emit_line(e, "}");
    kn_emit_line(e, "Y[0] = (float)(total / (double)%s);", rows);
    return KN_OK;
}

static kn_status mse_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "prediction") != KN_OK) return KN_ERR;
    if (kn_ops_want_f32(d, g, n, 1, "target") != KN_OK) return KN_ERR;
    const kn_value *a = kn_graph_value(g, n->in[0]);
    const kn_value *b = kn_graph_value(g, n->in[1]);
    if (!kn_shape_equal(&a->shape, &b->shape)) {
        char sa[128], sb[128];
        kn_ops_fmt(g, n->in[0], sa, sizeof sa);
        kn_ops_fmt(g, n->in[1], sb, sizeof sb);
        return kn_op_error(d, g, n, "expects two tensors of the same shape, got %s and %s", sa, sb);
    }
    kn_shape y = {.rank = 0};
    kn_ops_set_out(g, n, 0, KN_F32, &y);
    return KN_OK;
}

static kn_status mse_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    (void)g;
    char numel[64];
    kn_emit_numel(e, n->in[0], numel, sizeof numel);
    kn_emit_bind_in(e, "A", n->in[0]);
    kn_emit_bind_in(e, "B", n->in[1]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_line(e, "double total = 0.0;");
    kn_emit_line(e, "for (size_t i = 0; i < %s; i++) {", numel);
    kn_emit_line(e, "    const float r = A[i] - B[i];");
    kn_emit_line(e, "    total += (double)(r * r);");
    kn_emit_line(e, "}");
    kn_emit_line(e, "Y[0] = (float)(total / (double)%s);", numel);
    return KN_OK;
}

static const kn_arg_spec ce_args[] = {
    {"label_smoothing", KN_ATTR_FLOAT, false, 0, 0.0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_cross_entropy = {
    .name = "cross_entropy", .min_inputs = 2, .max_inputs = 2, .args = ce_args,
    .infer = ce_infer, .emit_c = ce_emit,
};
const kn_op_def kn_op_def_mse = {
    .name = "mse", .min_inputs = 2, .max_inputs = 2,
    .infer = mse_infer, .emit_c = mse_emit,
};

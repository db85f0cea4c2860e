/* loss.c — cross_entropy and mse, both mean-reduced to a scalar f32[].
 *
 * cross_entropy(logits f32[N, C], target i64[N], label_smoothing=0.0) is
 * torch.nn.functional.cross_entropy with class-index targets: per row
 * lse = max + log(sum exp(x - max)), loss = (1-ls)(lse - x[t]) + ls/C *
 * sum_c (lse - x[c]), averaged over the batch.  A target outside [0, C)
 * makes the loss NaN (the runtime reports a NaN loss as bad data).
 * mse(a, b) is the mean of (a - b)^2 over same-shaped f32 tensors.
 * Sums accumulate in double.
 * Backward ops: cross_entropy_grad(logits, target, dy, label_smoothing) is
 * (softmax(x) - ((1-ls) onehot(t) + ls/C)) * dy / rows (a row with an
 * invalid target gets NaN); mse_grad(a, b, dy, sign) is
 * sign * 2 (a - b) * dy / numel, sign -1 giving the gradient for b.
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

/* Rows summed in lanes (kn_emit_lanes_open): the same order on the CPU and
 * the GPU, where each thread of one block takes a lane. */
static kn_status ce_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_value *x = kn_graph_value(g, n->in[0]);
    long long c = (long long)x->shape.d[1];
    double ls = kn_ops_attr_num(n, "label_smoothing", 0.0);
    char rows[64], count[80];
    kn_emit_dim(e, n->in[0], 0, rows, sizeof rows);
    snprintf(count, sizeof count, "(size_t)%s", rows);
    static const char *const acc[1] = {"total"};

    kn_emit_cuda_kernel(e, KN_EMIT_LANES_WORK);
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_in(e, "T", n->in[1]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_lanes_open(e, "i", count, 1, acc);
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
    kn_emit_lanes_close(e, 1, acc);
    kn_emit_line(e, "Y[0] = (float)(total / (double)%s);", rows);
    kn_emit_close(e);
    kn_emit_cuda_end(e);
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
    static const char *const acc[1] = {"total"};
    kn_emit_cuda_kernel(e, KN_EMIT_LANES_WORK);
    kn_emit_bind_in(e, "A", n->in[0]);
    kn_emit_bind_in(e, "B", n->in[1]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_lanes_open(e, "i", numel, 1, acc);
    kn_emit_line(e, "const float r = A[i] - B[i];");
    kn_emit_line(e, "total += (double)(r * r);");
    kn_emit_lanes_close(e, 1, acc);
    kn_emit_line(e, "Y[0] = (float)(total / (double)%s);", numel);
    kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

/* ---- backward ops ---- */

/* The loss gradient: f32[] (from autodiff) or f32[1]. */
static bool loss_grad_is_scalar(const kn_graph *g, int vid)
{
    const kn_shape *s = &kn_graph_value(g, vid)->shape;
    return s->rank == 0 || (s->rank == 1 && s->d[0] == 1);
}

static kn_status ce_grad_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (n->n_in != 3) return kn_op_error(d, g, n, "expects (logits, target, dy), got %d inputs", n->n_in);
    if (kn_ops_want_f32(d, g, n, 2, "loss gradient") != KN_OK) return KN_ERR;
    if (!loss_grad_is_scalar(g, n->in[2]))
        return kn_op_error(d, g, n, "expects a scalar loss gradient (f32[] or f32[1])");
    if (ce_infer(g, n, d) != KN_OK) return KN_ERR; /* checks logits/target, sets a scalar */
    kn_ops_set_out(g, n, 0, KN_F32, &kn_graph_value(g, n->in[0])->shape);
    return KN_OK;
}

static kn_status ce_grad_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_value *x = kn_graph_value(g, n->in[0]);
    long long c = (long long)x->shape.d[1];
    double ls = kn_ops_attr_num(n, "label_smoothing", 0.0);
    char rows[64], on[64], off[64];
    kn_emit_dim(e, n->in[0], 0, rows, sizeof rows);
    kn_emit_float_lit(1.0 - ls + ls / (double)c, on, sizeof on);
    kn_emit_float_lit(ls / (double)c, off, sizeof off);
    kn_emit_cuda_kernel(e, rows); /* GPU: one thread per row */
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_in(e, "T", n->in[1]);
    kn_emit_bind_in(e, "dL", n->in[2]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    kn_emit_line(e, "const float scale = dL[0] / (float)%s;", rows);
    char count[80];
    snprintf(count, sizeof count, "(size_t)%s", rows);
    kn_emit_for_open(e, "i", count);
    kn_emit_line(e, "const float *x = X + i * %lld;", c);
    kn_emit_line(e, "float *dx = dX + i * %lld;", c);
    kn_emit_line(e, "const int64_t t = T[i];");
    kn_emit_line(e, "if (t < 0 || t >= %lld) {", c);
    kn_emit_line(e, "    for (size_t j = 0; j < %lld; j++) dx[j] = NAN;", c);
    kn_emit_line(e, "    continue;");
    kn_emit_line(e, "}");
    kn_emit_line(e, "float m = x[0];");
    kn_emit_line(e, "for (size_t j = 1; j < %lld; j++) m = x[j] > m ? x[j] : m;", c);
    kn_emit_line(e, "double s = 0.0;");
    kn_emit_line(e, "for (size_t j = 0; j < %lld; j++) s += expf(x[j] - m);", c);
    kn_emit_line(e, "const float inv = (float)(1.0 / s);");
    kn_emit_line(e, "for (size_t j = 0; j < %lld; j++)", c);
    kn_emit_line(e, "    dx[j] = (expf(x[j] - m) * inv - ((int64_t)j == t ? %s : %s)) * scale;", on, off);
    kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static kn_status mse_grad_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (n->n_in != 3) return kn_op_error(d, g, n, "expects (a, b, dy), got %d inputs", n->n_in);
    if (kn_ops_want_f32(d, g, n, 2, "loss gradient") != KN_OK) return KN_ERR;
    if (!loss_grad_is_scalar(g, n->in[2]))
        return kn_op_error(d, g, n, "expects a scalar loss gradient (f32[] or f32[1])");
    if (mse_infer(g, n, d) != KN_OK) return KN_ERR;
    kn_ops_set_out(g, n, 0, KN_F32, &kn_graph_value(g, n->in[0])->shape);
    return KN_OK;
}

static kn_status mse_grad_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    (void)g;
    char numel[64];
    kn_emit_numel(e, n->in[0], numel, sizeof numel);
    kn_emit_cuda_kernel(e, numel);
    kn_emit_bind_in(e, "A", n->in[0]);
    kn_emit_bind_in(e, "B", n->in[1]);
    kn_emit_bind_in(e, "dL", n->in[2]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    kn_emit_line(e, "const float scale = %s2.0f * dL[0] / (float)%s;",
                 kn_node_attr_i(n, "sign", 1) < 0 ? "-" : "", numel);
    kn_emit_for(e, "i", numel, "dX[i] = (A[i] - B[i]) * scale;");
    kn_emit_cuda_end(e);
    return KN_OK;
}

/* ---- gradient rules ---- */

static kn_status ce_grad(kn_graph *g, const kn_node *n, const int *dy,
                         const bool *need, int *dx, kn_diag *d)
{
    dx[0] = dx[1] = -1; /* class indices have no gradient */
    if (dy[0] < 0 || !need[0]) return KN_OK;
    int in[3] = {n->in[0], n->in[1], dy[0]};
    kn_node *gn = kn_ops_grad_node(g, n, KN_OP_CROSS_ENTROPY_GRAD, "logits", in, 3, 1);
    kn_node_set_attr_f(gn, "label_smoothing", kn_ops_attr_num(n, "label_smoothing", 0.0));
    return (dx[0] = kn_ops_grad_done(g, gn, d)) < 0 ? KN_ERR : KN_OK;
}

static kn_status mse_grad(kn_graph *g, const kn_node *n, const int *dy,
                          const bool *need, int *dx, kn_diag *d)
{
    static const char *const tag[2] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        dx[i] = -1;
        if (dy[0] < 0 || !need[i]) continue;
        int in[3] = {n->in[0], n->in[1], dy[0]};
        kn_node *gn = kn_ops_grad_node(g, n, KN_OP_MSE_GRAD, tag[i], in, 3, 1);
        kn_node_set_attr_i(gn, "sign", i == 0 ? 1 : -1);
        if ((dx[i] = kn_ops_grad_done(g, gn, d)) < 0) return KN_ERR;
    }
    return KN_OK;
}

static const kn_arg_spec ce_args[] = {
    {"label_smoothing", KN_ATTR_FLOAT, false, 0, 0.0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_cross_entropy = {
    .name = "cross_entropy", .min_inputs = 2, .max_inputs = 2, .args = ce_args,
    .infer = ce_infer, .emit_c = ce_emit, .emit_cuda = ce_emit, .grad = ce_grad,
};
const kn_op_def kn_op_def_mse = {
    .name = "mse", .min_inputs = 2, .max_inputs = 2,
    .infer = mse_infer, .emit_c = mse_emit, .emit_cuda = mse_emit, .grad = mse_grad,
};
const kn_op_def kn_op_def_cross_entropy_grad = {
    .name = "cross_entropy_grad", .min_inputs = 3, .max_inputs = 3,
    .infer = ce_grad_infer, .emit_c = ce_grad_emit, .emit_cuda = ce_grad_emit,
    .internal = true,
};
const kn_op_def kn_op_def_mse_grad = {
    .name = "mse_grad", .min_inputs = 3, .max_inputs = 3,
    .infer = mse_grad_infer, .emit_c = mse_grad_emit, .emit_cuda = mse_grad_emit,
    .internal = true,
};

/* nll.c — nll_loss(x, target[, weight], reduction="mean", ignore_index=)
 * (torch.nn.functional.nll_loss, ONNX NegativeLogLikelihoodLoss).
 *
 * x is f32[B, C, d1...] (log-probabilities), target i64[B, d1...] class
 * indices, weight an optional f32[C].  Per element l = -w[t] x[b, t, d];
 * an element whose target equals ignore_index (when given) contributes 0
 * and weighs 0.  reduction "none" keeps f32[B, d1...]; "sum" adds; "mean"
 * divides the sum by the total weight of the counted elements (ONNX's and
 * torch's rule).  A target outside [0, C) that is not ignored makes the
 * result NaN instead of reading out of bounds.  Sums accumulate in double.
 * ONNX SoftmaxCrossEntropyLoss imports as log_softmax(dim=1) + nll_loss.
 * Backward op nll_loss_grad(dy, target[, weight]) scatters -w[t] dy (scaled
 * by 1 / total weight for mean) into the target positions of a zero dX;
 * there is no gradient for the target or the weight.
 */
#include "op_util.h"

#include <string.h>

static int reduction_of(const kn_node *n)
{
    const char *r = kn_node_attr_s(n, "reduction", "mean");
    return !strcmp(r, "none") ? 0 : !strcmp(r, "sum") ? 1 : !strcmp(r, "mean") ? 2 : -1;
}

/* Checks x (input xi), target (xi + 1) and weight (xi + 2, optional). */
static kn_status check_operands(kn_graph *g, const kn_node *n, int xi, kn_diag *d)
{
    if (reduction_of(n) < 0)
        return kn_op_error(d, g, n, "reduction must be \"none\", \"sum\" or \"mean\", got \"%s\"",
                           kn_node_attr_s(n, "reduction", ""));
    if (kn_ops_want_f32(d, g, n, xi, "input") != KN_OK || kn_ops_want_input(d, g, n, xi + 1) != KN_OK)
        return KN_ERR;
    const kn_shape *x = &kn_graph_value(g, n->in[xi])->shape;
    const kn_value *t = kn_graph_value(g, n->in[xi + 1]);
    char sx[128], st[128];
    kn_ops_fmt(g, n->in[xi], sx, sizeof sx);
    kn_ops_fmt(g, n->in[xi + 1], st, sizeof st);
    if (x->rank < 2 || x->d[1] <= 0) return kn_op_error(d, g, n, "expects an input f32[B, C, ...], got %s", sx);
    bool ok = t->dtype == KN_I64 && t->shape.rank == x->rank - 1 && t->shape.d[0] == x->d[0];
    for (int i = 2; ok && i < x->rank; i++) ok = t->shape.d[i - 1] == x->d[i];
    if (!ok) return kn_op_error(d, g, n, "target '%s' of type %s does not fit input %s", t->name, st, sx);
    if (n->n_in > xi + 2) {
        if (kn_ops_want_f32(d, g, n, xi + 2, "weight") != KN_OK) return KN_ERR;
        const kn_shape *w = &kn_graph_value(g, n->in[xi + 2])->shape;
        if (w->rank != 1 || w->d[0] != x->d[1])
            return kn_op_error(d, g, n, "weight must be f32[%lld]", (long long)x->d[1]);
    }
    return KN_OK;
}

static kn_status nll_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (check_operands(g, n, 0, d) != KN_OK) return KN_ERR;
    kn_shape y = {.rank = 0};
    if (reduction_of(n) == 0) y = kn_graph_value(g, n->in[1])->shape;
    kn_ops_set_out(g, n, 0, KN_F32, &y);
    return KN_OK;
}

/* Binds, for element (b, k) of the target (b, k bound), t, w (0 when
 * ignored) and ok (whether the element counts); X, T, W must be bound. */
static void bind_element(kn_emit *e, const kn_node *n, int64_t D, bool weight)
{
    kn_emit_line(e, "const int64_t t = T[b * %lld + k];", (long long)D);
    const kn_attr *ii = kn_node_attr(n, "ignore_index");
    if (ii) kn_emit_line(e, "const int ok = t != INT64_C(%lld);", (long long)ii->i);
    else kn_emit_line(e, "const int ok = 1;");
    kn_emit_line(e, "const int valid = t >= 0 && t < C;");
    kn_emit_line(e, "const double w = !ok ? 0.0 : !valid ? NAN : %s;", weight ? "(double)W[t]" : "1.0");
}

/* reduction "none": one loss per element (one GPU thread each); "sum" and
 * "mean": the elements summed in lanes (kn_emit_lanes_open), the same
 * order in C and on the GPU. */
static kn_status nll_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape;
    long long D = (long long)kn_ops_dims_const(x, 2, x->rank);
    int red = reduction_of(n);
    char rows[64], count[96];
    kn_emit_dim(e, n->in[0], 0, rows, sizeof rows);
    snprintf(count, sizeof count, "(size_t)%s * %lld", rows, D);
    static const char *const acc[2] = {"total", "wsum"};
    kn_emit_cuda_kernel(e, red == 0 ? count : KN_EMIT_LANES_WORK);
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_in(e, "T", n->in[1]);
    if (n->n_in > 2) kn_emit_bind_in(e, "W", n->in[2]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_line(e, "const int64_t C = %lld;", (long long)x->d[1]);
    if (red == 0) kn_emit_for_open(e, "el", count);
    else kn_emit_lanes_open(e, "el", count, 2, acc);
    kn_emit_line(e, "const size_t b = el / %lld, k = el %% %lld;", D, D);
    bind_element(e, n, D, n->n_in > 2);
    kn_emit_line(e, "const double l = !ok ? 0.0 : !valid ? NAN : -w * (double)X[(b * C + (size_t)t) * %lld + k];", D);
    if (red == 0) {
        kn_emit_line(e, "Y[el] = (float)l;");
        kn_emit_close(e);
    } else {
        kn_emit_line(e, "total += l, wsum += w;");
        kn_emit_lanes_close(e, 2, acc);
        kn_emit_line(e, red == 1 ? "Y[0] = (float)total;" : "Y[0] = (float)(total / wsum);");
        kn_emit_line(e, "(void)wsum;");
        kn_emit_close(e);
    }
    kn_emit_cuda_end(e);
    return KN_OK;
}

/* ---- nll_loss_grad(dy, x, target[, weight]): x only gives the shape ---- */

static kn_status nll_grad_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "gradient") != KN_OK || check_operands(g, n, 1, d) != KN_OK) return KN_ERR;
    kn_ops_set_out(g, n, 0, KN_F32, &kn_graph_value(g, n->in[1])->shape);
    return KN_OK;
}

/* One block on the GPU: the total weight (for "mean") summed in lanes,
 * a barrier, dX zeroed by all threads, a barrier, then each counted
 * element's -w * dy scattered to its target's position (no two elements
 * share one).  The same statements in C, one thread. */
static kn_status nll_grad_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_shape *x = &kn_graph_value(g, n->in[1])->shape;
    long long D = (long long)kn_ops_dims_const(x, 2, x->rank);
    int red = reduction_of(n);
    bool weight = n->n_in > 3;
    char rows[64], numel[64], count[96];
    kn_emit_dim(e, n->in[1], 0, rows, sizeof rows);
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    snprintf(count, sizeof count, "(size_t)%s * %lld", rows, D);
    static const char *const acc[1] = {"wsum"};
    kn_emit_cuda_kernel(e, KN_EMIT_LANES_WORK);
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_in(e, "T", n->in[2]);
    if (weight) kn_emit_bind_in(e, "W", n->in[3]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    kn_emit_line(e, "const int64_t C = %lld;", (long long)x->d[1]);
    kn_emit_block_shared(e, "double scale");
    if (red == 2) {
        kn_emit_lanes_open(e, "el", count, 1, acc);
        kn_emit_line(e, "const size_t b = el / %lld, k = el %% %lld;", D, D);
        bind_element(e, n, D, weight);
        kn_emit_line(e, "(void)valid;");
        kn_emit_line(e, "wsum += w;");
        kn_emit_lanes_close(e, 1, acc);
        kn_emit_line(e, "scale = (double)dY[0] / wsum;");
        kn_emit_close(e);
    } else {
        if (kn_emit_is_cuda(e)) kn_emit_line(e, "if (blockIdx.x != 0) return;");
        kn_emit_line(e, "%sscale = %s;", kn_emit_is_cuda(e) ? "if (threadIdx.x == 0) " : "",
                     red == 0 ? "1.0" : "(double)dY[0]");
    }
    kn_emit_block_sync(e);
    kn_emit_block_for_open(e, "j", numel);
    kn_emit_line(e, "dX[j] = 0.0f;");
    kn_emit_close(e);
    kn_emit_block_sync(e);
    kn_emit_block_for_open(e, "el", count);
    kn_emit_line(e, "const size_t b = el / %lld, k = el %% %lld;", D, D);
    bind_element(e, n, D, weight);
    kn_emit_line(e, "if (!ok) continue;");
    kn_emit_line(e, "if (!valid) { dX[b * C * %lld + k] = NAN; continue; }", D);
    if (red == 0)
        kn_emit_line(e, "dX[(b * C + (size_t)t) * %lld + k] = (float)(-w * (double)dY[el]);", D);
    else kn_emit_line(e, "dX[(b * C + (size_t)t) * %lld + k] = (float)(-w * scale);", D);
    kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static kn_status nll_grad(kn_graph *g, const kn_node *n, const int *dy, const bool *need, int *dx, kn_diag *d)
{
    for (int i = 0; i < n->n_in; i++) dx[i] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    int in[4] = {dy[0], n->in[0], n->in[1], n->n_in > 2 ? n->in[2] : -1};
    kn_node *gn = kn_ops_grad_node(g, n, KN_OP_NLL_LOSS_GRAD, "x", in, n->n_in + 1, 1);
    kn_node_set_attr_s(gn, "reduction", kn_node_attr_s(n, "reduction", "mean"));
    const kn_attr *ii = kn_node_attr(n, "ignore_index");
    if (ii) kn_node_set_attr_i(gn, "ignore_index", ii->i);
    return (dx[0] = kn_ops_grad_done(g, gn, d)) < 0 ? KN_ERR : KN_OK;
}

static const kn_arg_spec nll_args[] = {
    {"reduction", KN_ATTR_STRING, false, 0, 0, "mean"},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_nll_loss = {
    .name = "nll_loss", .min_inputs = 2, .max_inputs = 3, .args = nll_args,
    .infer = nll_infer, .emit_c = nll_emit, .emit_cuda = nll_emit, .grad = nll_grad,
};
const kn_op_def kn_op_def_nll_loss_grad = {
    .name = "nll_loss_grad", .min_inputs = 3, .max_inputs = 4,
    .infer = nll_grad_infer, .emit_c = nll_grad_emit, .emit_cuda = nll_grad_emit, .internal = true,
};

/* reduce.c — sum, mean, argmax and argmin along dims.
 *
 * sum(x, dim=..., keepdim=false) / mean(...): `dim` is one dim or a tuple of
 * adjacent dims; without it every element is reduced to a scalar f32[] (or to
 * all-ones dims with keepdim).  argmax(x, dim=d, keepdim=false) gives i64
 * indices of the first maximum (NaN counts as the maximum, as in PyTorch);
 * without dim it indexes the flattened tensor; argmin likewise.  With
 * last=true both pick the last extreme instead of the first (ONNX's
 * select_last_index).  The reduced dims are viewed
 * as [outer, R, inner]; sums accumulate in double so results do not depend
 * on the loop order the compiler picks.
 * Gradients: reduce_grad(dy, shape, lo, hi, mean) broadcasts dy back over
 * the reduced dims [lo, hi) of the input shape `shape` (divided by their
 * element count for mean, which includes n when the batch dim is reduced).
 * argmax has none.
 */
#include "op_util.h"

/* Reduced dims as a range [lo, hi); all dims when `dim` is absent or empty. */
static kn_status reduce_range(const kn_graph *g, const kn_node *n, kn_diag *d, int *lo, int *hi)
{
    const kn_value *x = kn_graph_value(g, n->in[0]);
    const kn_attr *a = kn_node_attr(n, "dim");
    int cnt = 0;
    int64_t dims[KN_MAX_RANK + 1];
    if (a && a->kind == KN_ATTR_INT) {
        dims[0] = a->i;
        cnt = 1;
    } else if (a && a->kind == KN_ATTR_INTS) {
        if (a->n > x->shape.rank)
            return kn_op_error(d, g, n, "%d dims given for a rank-%d input", a->n, x->shape.rank);
        cnt = a->n;
        for (int i = 0; i < cnt; i++) dims[i] = a->ints[i];
    }
    if (cnt == 0) {
        *lo = 0;
        *hi = x->shape.rank;
        return KN_OK;
    }
    bool seen[KN_MAX_RANK] = {false};
    int mn = KN_MAX_RANK, mx = -1;
    for (int i = 0; i < cnt; i++) {
        int k = 0;
        if (kn_ops_norm_dim(d, g, n, n->in[0], dims[i], &k) != KN_OK) return KN_ERR;
        if (seen[k]) return kn_op_error(d, g, n, "dim %d appears twice", k);
        seen[k] = true;
        if (k < mn) mn = k;
        if (k > mx) mx = k;
    }
    if (mx - mn + 1 != cnt)
        return kn_op_error(d, g, n, "reducing over non-adjacent dims is not supported");
    *lo = mn;
    *hi = mx + 1;
    return KN_OK;
}

static kn_status reduce_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    bool is_argmax = n->op == KN_OP_ARGMAX || n->op == KN_OP_ARGMIN;
    if (kn_ops_want_f32(d, g, n, 0, "input") != KN_OK) return KN_ERR;
    if (is_argmax) {
        const kn_attr *a = kn_node_attr(n, "dim");
        if (a && a->kind == KN_ATTR_INTS && a->n > 1)
            return kn_op_error(d, g, n, "takes a single dim, got %d", a->n);
    }
    int lo, hi;
    if (reduce_range(g, n, d, &lo, &hi) != KN_OK) return KN_ERR;
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape;
    bool keep = kn_node_attr_i(n, "keepdim", 0) != 0;
    kn_shape y = {.rank = 0};
    for (int i = 0; i < x->rank; i++) {
        if (i < lo || i >= hi) y.d[y.rank++] = x->d[i];
        else if (keep) y.d[y.rank++] = 1;
    }
    kn_ops_set_out(g, n, 0, is_argmax ? KN_I64 : KN_F32, &y);
    return KN_OK;
}

static kn_status reduce_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_value *x = kn_graph_value(g, n->in[0]);
    int lo, hi;
    kn_diag dummy;
    if (reduce_range(g, n, &dummy, &lo, &hi) != KN_OK) return KN_ERR;
    char outer[64], len[64], inner[64];
    kn_ops_dims_expr(e, n->in[0], 0, lo, outer, sizeof outer);
    kn_ops_dims_expr(e, n->in[0], lo, hi, len, sizeof len);
    kn_ops_dims_expr(e, n->in[0], hi, x->shape.rank, inner, sizeof inner);
    bool contiguous = strcmp(inner, "1") == 0, one_outer = strcmp(outer, "1") == 0;
    const char *at = contiguous ? "r" : "r * INNER";
    /* Start of the reduced line in X, and its result in Y. */
    const char *xo = contiguous ? (one_outer ? "" : " + o * R")
                                : (one_outer ? " + i" : " + o * R * INNER + i");
    const char *yo = contiguous ? (one_outer ? "0" : "o") : (one_outer ? "i" : "o * INNER + i");

    kn_emit_cuda_kernel(e, one_outer ? "1" : outer); /* GPU: one thread per outer index */
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_line(e, "const size_t R = %s;", len);
    if (!contiguous) kn_emit_line(e, "const size_t INNER = %s;", inner);
    if (one_outer) kn_emit_cuda_one_thread(e);
    else kn_emit_for_open(e, "o", outer);
    if (!contiguous) {
        kn_emit_line(e, "for (size_t i = 0; i < INNER; i++) {");
        e->indent++;
    }
    kn_emit_line(e, "const float *x = X%s;", xo);
    if (n->op == KN_OP_ARGMAX || n->op == KN_OP_ARGMIN) {
        const char *bi = contiguous ? "" : " * INNER";
        bool last = kn_node_attr_i(n, "last", 0) != 0;
        const char *cmp = n->op == KN_OP_ARGMAX ? (last ? ">=" : ">") : (last ? "<=" : "<");
        kn_emit_line(e, "size_t best = 0;");
        kn_emit_line(e, "for (size_t r = 1; r < R; r++)");
        kn_emit_line(e, "    if (x[%s] %s x[best%s] || (x[%s] != x[%s] && x[best%s] == x[best%s])) best = r;",
                     at, cmp, bi, at, at, bi, bi);
        kn_emit_line(e, "Y[%s] = (int64_t)best;", yo);
    } else {
        kn_emit_line(e, "double acc = 0.0;");
        kn_emit_line(e, "for (size_t r = 0; r < R; r++) acc += x[%s];", at);
        if (n->op == KN_OP_MEAN) kn_emit_line(e, "Y[%s] = (float)(acc / (double)R);", yo);
        else kn_emit_line(e, "Y[%s] = (float)acc;", yo);
    }
    if (!contiguous) {
        e->indent--;
        kn_emit_line(e, "}");
    }
    if (!one_outer) kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

/* ---- reduce_grad ---- */

static kn_status reduce_grad_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "output gradient") != KN_OK) return KN_ERR;
    kn_shape x;
    int64_t lo = kn_node_attr_i(n, "lo", -1), hi = kn_node_attr_i(n, "hi", -1);
    if (!kn_ops_shape_attr(n, "shape", &x) || lo < 0 || hi <= lo || hi > x.rank)
        return kn_op_error(d, g, n, "needs attributes shape, lo < hi <= rank");
    int64_t want, have;
    kn_shape kept = x;
    for (int64_t i = lo; i < hi; i++) kept.d[i] = 1;
    if (!kn_shape_numel_per_sample(&kept, &want) ||
        !kn_shape_numel_per_sample(&kn_graph_value(g, n->in[0])->shape, &have) || want != have ||
        kn_shape_is_batched(&kept) != kn_shape_is_batched(&kn_graph_value(g, n->in[0])->shape)) {
        char s1[128], s2[128];
        kn_shape_format(KN_F32, &x, s1, sizeof s1);
        kn_ops_fmt(g, n->in[0], s2, sizeof s2);
        return kn_op_error(d, g, n, "gradient %s does not fit %s reduced over dims [%lld, %lld)",
                           s2, s1, (long long)lo, (long long)hi);
    }
    kn_ops_set_out(g, n, 0, KN_F32, &x);
    return KN_OK;
}

static kn_status reduce_grad_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_value *x = kn_graph_value(g, n->out[0]);
    int lo = (int)kn_node_attr_i(n, "lo", 0), hi = (int)kn_node_attr_i(n, "hi", 0);
    char outer[64], len[64], inner[64];
    kn_ops_dims_expr(e, n->out[0], 0, lo, outer, sizeof outer);
    kn_ops_dims_expr(e, n->out[0], lo, hi, len, sizeof len);
    kn_ops_dims_expr(e, n->out[0], hi, x->shape.rank, inner, sizeof inner);
    (void)g;
    kn_emit_cuda_kernel(e, outer); /* GPU: one thread per outer index */
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    kn_emit_line(e, "const size_t R = %s, INNER = %s;", len, inner);
    if (kn_node_attr_i(n, "mean", 0)) kn_emit_line(e, "const float s = (float)(1.0 / (double)R);");
    else kn_emit_line(e, "const float s = 1.0f;");
    kn_emit_for(e, "o", outer, "%s", "");
    kn_emit_line(e, "    for (size_t r = 0; r < R; r++)");
    kn_emit_line(e, "        for (size_t i = 0; i < INNER; i++) dX[(o * R + r) * INNER + i] = dY[o * INNER + i] * s;");
    kn_emit_cuda_end(e);
    return KN_OK;
}

static kn_status reduce_grad(kn_graph *g, const kn_node *n, const int *dy,
                             const bool *need, int *dx, kn_diag *d)
{
    dx[0] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    int lo, hi;
    if (reduce_range(g, n, d, &lo, &hi) != KN_OK) return KN_ERR;
    kn_node *gn = kn_ops_grad_node(g, n, KN_OP_REDUCE_GRAD, "x", &dy[0], 1, 1);
    kn_ops_set_shape_attr(gn, "shape", &kn_graph_value(g, n->in[0])->shape);
    kn_node_set_attr_i(gn, "lo", lo);
    kn_node_set_attr_i(gn, "hi", hi);
    kn_node_set_attr_b(gn, "mean", n->op == KN_OP_MEAN);
    return (dx[0] = kn_ops_grad_done(g, gn, d)) < 0 ? KN_ERR : KN_OK;
}

static const kn_arg_spec reduce_args[] = {
    {"dim", KN_ATTR_INTS, false, 0, 0, NULL},
    {"keepdim", KN_ATTR_BOOL, false, 0, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_sum = {
    .name = "sum", .min_inputs = 1, .max_inputs = 1, .args = reduce_args,
    .infer = reduce_infer, .emit_c = reduce_emit, .emit_cuda = reduce_emit, .grad = reduce_grad,
};
const kn_op_def kn_op_def_mean = {
    .name = "mean", .min_inputs = 1, .max_inputs = 1, .args = reduce_args,
    .infer = reduce_infer, .emit_c = reduce_emit, .emit_cuda = reduce_emit, .grad = reduce_grad,
};
static const kn_arg_spec arg_args[] = {
    {"dim", KN_ATTR_INTS, false, 0, 0, NULL},
    {"keepdim", KN_ATTR_BOOL, false, 0, 0, NULL},
    {"last", KN_ATTR_BOOL, false, 0, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_argmax = {
    .name = "argmax", .min_inputs = 1, .max_inputs = 1, .args = arg_args,
    .infer = reduce_infer, .emit_c = reduce_emit, .emit_cuda = reduce_emit,
};
const kn_op_def kn_op_def_argmin = {
    .name = "argmin", .min_inputs = 1, .max_inputs = 1, .args = arg_args,
    .infer = reduce_infer, .emit_c = reduce_emit, .emit_cuda = reduce_emit,
};
const kn_op_def kn_op_def_reduce_grad = {
    .name = "reduce_grad", .min_inputs = 1, .max_inputs = 1,
    .infer = reduce_grad_infer, .emit_c = reduce_grad_emit, .emit_cuda = reduce_grad_emit,
    .internal = true,
};

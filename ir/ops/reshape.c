/* reshape.c — flatten and reshape: same elements, new shape.
 *
 * flatten(x, start_dim=1, end_dim=-1) merges dims start..end (torch.flatten).
 * reshape(x, shape=(...)) on a batched input gives the dims after the batch
 * dim, which is always kept: reshape(x f32[N,784], shape=(1, 28, 28)) is
 * f32[N,1,28,28]; one entry may be -1 (inferred).  On an unbatched input
 * `shape` is the whole shape.  Neither may move or merge the batch dim N.
 * Emission is a copy (skipped when the planner gave both the same address).
 * The gradient of either is dy reshaped back to the input's shape.
 */
#include "op_util.h"

static kn_status flatten_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_input(d, g, n, 0) != KN_OK) return KN_ERR;
    const kn_value *x = kn_graph_value(g, n->in[0]);
    char s[128];
    kn_ops_fmt(g, n->in[0], s, sizeof s);
    if (x->shape.rank == 0) {
        kn_shape one = {.rank = 1, .d = {1}};
        kn_ops_set_out(g, n, 0, x->dtype, &one);
        return KN_OK;
    }
    int start = 0, end = 0;
    if (kn_ops_norm_dim(d, g, n, n->in[0], kn_node_attr_i(n, "start_dim", 1), &start) != KN_OK ||
        kn_ops_norm_dim(d, g, n, n->in[0], kn_node_attr_i(n, "end_dim", -1), &end) != KN_OK)
        return KN_ERR;
    if (start > end)
        return kn_op_error(d, g, n, "start_dim %d is after end_dim %d for %s", start, end, s);
    if (start == 0 && end > 0 && kn_shape_is_batched(&x->shape))
        return kn_op_error(d, g, n, "cannot merge the batch dim N into other dims of %s "
                           "(use start_dim=1)", s);
    kn_shape y = {.rank = 0};
    for (int i = 0; i < start; i++) y.d[y.rank++] = x->shape.d[i];
    int64_t m = 1;
    for (int i = start; i <= end; i++)
        if (x->shape.d[i] == KN_DIM_N) m = KN_DIM_N;
        else if (!kn_mul_ok(m, x->shape.d[i], &m))
            return kn_op_error(d, g, n, "element count of %s overflows", s);
    y.d[y.rank++] = m;
    for (int i = end + 1; i < x->shape.rank; i++) y.d[y.rank++] = x->shape.d[i];
    kn_ops_set_out(g, n, 0, x->dtype, &y);
    return KN_OK;
}

/* Reads the `shape` attribute (INTS, or a single INT). */
static int shape_attr(const kn_node *n, int64_t *dims, int cap)
{
    const kn_attr *a = kn_node_attr(n, "shape");
    if (!a) return -1;
    if (a->kind == KN_ATTR_INT) {
        dims[0] = a->i;
        return 1;
    }
    if (a->kind != KN_ATTR_INTS || a->n > cap) return -1;
    for (int i = 0; i < a->n; i++) dims[i] = a->ints[i];
    return a->n;
}

static kn_status reshape_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_input(d, g, n, 0) != KN_OK) return KN_ERR;
    const kn_value *x = kn_graph_value(g, n->in[0]);
    bool batched = kn_shape_is_batched(&x->shape);
    char s[128];
    kn_ops_fmt(g, n->in[0], s, sizeof s);
    int64_t want[KN_MAX_RANK];
    int cnt = shape_attr(n, want, KN_MAX_RANK - (batched ? 1 : 0));
    if (cnt < 0)
        return kn_op_error(d, g, n, "needs shape=(d1, d2, ...) with at most %d dims",
                           KN_MAX_RANK - (batched ? 1 : 0));
    int64_t have;
    if (!kn_shape_numel_per_sample(&x->shape, &have))
        return kn_op_error(d, g, n, "element count of %s overflows", s);

    kn_shape y = {.rank = 0};
    if (batched) y.d[y.rank++] = KN_DIM_N;
    int infer_at = -1;
    int64_t known = 1;
    for (int i = 0; i < cnt; i++) {
        if (want[i] == -1 && infer_at < 0) {
            infer_at = y.rank;
        } else if (want[i] < 1) {
            return kn_op_error(d, g, n, "shape entry %d is %lld: entries must be >= 1, "
                               "or -1 once (inferred)", i, (long long)want[i]);
        } else if (!kn_mul_ok(known, want[i], &known)) {
            return kn_op_error(d, g, n, "element count of the target shape overflows");
        }
        y.d[y.rank++] = want[i];
    }
    if (infer_at >= 0) {
        if (have % known != 0)
            return kn_op_error(d, g, n, "cannot reshape %s (%lld elements%s) so that -1 is a "
                               "whole number: the other dims multiply to %lld",
                               s, (long long)have, batched ? " per sample" : "", (long long)known);
        y.d[infer_at] = have / known;
        known = have;
    }
    if (known != have) {
        char t[128];
        kn_shape_format(x->dtype, &y, t, sizeof t);
        return kn_op_error(d, g, n, "cannot reshape %s to %s: %lld elements%s vs %lld",
                           s, t, (long long)have, batched ? " per sample" : "", (long long)known);
    }
    kn_ops_set_out(g, n, 0, x->dtype, &y);
    return KN_OK;
}

static kn_status emit_copy(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_value *x = kn_graph_value(g, n->in[0]);
    char numel[64];
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_line(e, "if (Y != X) memcpy(Y, X, %s * sizeof(%s));", numel,
                 x->dtype == KN_I64 ? "int64_t" : "float");
    return KN_OK;
}

static kn_status reshape_grad(kn_graph *g, const kn_node *n, const int *dy,
                              const bool *need, int *dx, kn_diag *d)
{
    dx[0] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    const kn_shape *xs = &kn_graph_value(g, n->in[0])->shape;
    if (kn_shape_equal(xs, &kn_graph_value(g, dy[0])->shape)) {
        dx[0] = dy[0];
        return KN_OK;
    }
    bool batched = kn_shape_is_batched(xs);
    kn_node *gn = kn_ops_grad_node(g, n, KN_OP_RESHAPE, "x", &dy[0], 1, 1);
    kn_node_set_attr_ints(gn, "shape", xs->d + (batched ? 1 : 0), xs->rank - (batched ? 1 : 0));
    return (dx[0] = kn_ops_grad_done(g, gn, d)) < 0 ? KN_ERR : KN_OK;
}

static const kn_arg_spec flatten_args[] = {
    {"start_dim", KN_ATTR_INT, false, 1, 0, NULL},
    {"end_dim", KN_ATTR_INT, false, -1, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};
static const kn_arg_spec reshape_args[] = {
    {"shape", KN_ATTR_INTS, true, 0, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_flatten = {
    .name = "flatten", .min_inputs = 1, .max_inputs = 1, .args = flatten_args,
    .infer = flatten_infer, .emit_c = emit_copy, .emit_cuda = emit_copy, /* host GEMM/copy calls: cuBLAS on the GPU */ .grad = reshape_grad,
};
const kn_op_def kn_op_def_reshape = {
    .name = "reshape", .min_inputs = 1, .max_inputs = 1, .args = reshape_args,
    .infer = reshape_infer, .emit_c = emit_copy, .emit_cuda = emit_copy, /* host GEMM/copy calls: cuBLAS on the GPU */ .grad = reshape_grad,
};

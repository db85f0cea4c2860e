/* trilu.c — trilu(x[, k], upper=true, k=0): keeps the upper (or lower)
 * triangle of the last two dims (torch.triu / torch.tril, ONNX Trilu).
 *
 * Element (i, j) of every matrix stays when j - i >= k (upper) or
 * j - i <= k (lower), else becomes 0.  x may be f32 or i64 (ONNX tests use
 * both); the output has x's type.  The diagonal offset k is the attribute
 * `k`, or an optional second input i64[] read at run time, since the
 * output shape does not depend on it.
 * Gradient: the same mask on dy (trilu of dy with the same k), f32 only.
 */
#include "op_util.h"

static kn_status trilu_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_input(d, g, n, 0) != KN_OK) return KN_ERR;
    const kn_value *x = kn_graph_value(g, n->in[0]);
    char s[128];
    kn_ops_fmt(g, n->in[0], s, sizeof s);
    if (x->shape.rank < 2 || x->shape.d[x->shape.rank - 1] < 0 || x->shape.d[x->shape.rank - 2] < 0)
        return kn_op_error(d, g, n, "expects matrices [..., M, N] with fixed M and N, got %s", s);
    if (n->n_in > 1) {
        if (kn_ops_want_input(d, g, n, 1) != KN_OK) return KN_ERR;
        const kn_value *k = kn_graph_value(g, n->in[1]);
        int64_t cnt;
        if (k->dtype != KN_I64 || !kn_shape_numel_per_sample(&k->shape, &cnt) || cnt != 1 ||
            kn_shape_is_batched(&k->shape))
            return kn_op_error(d, g, n, "k must be a single i64 value");
    }
    kn_ops_set_out(g, n, 0, x->dtype, &x->shape);
    return KN_OK;
}

/* One flat loop over the elements, each element's row i and column j
 * from its index: one thread per element on the GPU, the same loop in C. */
static kn_status trilu_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape;
    long long M = (long long)x->d[x->rank - 2], N = (long long)x->d[x->rank - 1];
    char numel[64];
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    (void)g;
    kn_emit_cuda_kernel(e, numel);
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    if (n->n_in > 1) {
        kn_emit_bind_in(e, "K", n->in[1]);
        kn_emit_line(e, "const int64_t k = K[0];");
    } else {
        kn_emit_line(e, "const int64_t k = INT64_C(%lld);", (long long)kn_node_attr_i(n, "k", 0));
    }
    kn_emit_for_open(e, "at", numel);
    kn_emit_line(e, "const int64_t i = (int64_t)(at / %lld %% %lld), j = (int64_t)(at %% %lld);", N, M, N);
    kn_emit_line(e, "Y[at] = j - i %s k ? X[at] : 0;", kn_node_attr_i(n, "upper", 1) != 0 ? ">=" : "<=");
    kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static kn_status trilu_grad(kn_graph *g, const kn_node *n, const int *dy, const bool *need, int *dx, kn_diag *d)
{
    for (int i = 0; i < n->n_in; i++) dx[i] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    int in[2] = {dy[0], n->n_in > 1 ? n->in[1] : -1};
    kn_node *gn = kn_ops_grad_node(g, n, KN_OP_TRILU, "x", in, n->n_in, 1);
    kn_node_set_attr_b(gn, "upper", kn_node_attr_i(n, "upper", 1) != 0);
    kn_node_set_attr_i(gn, "k", kn_node_attr_i(n, "k", 0));
    return (dx[0] = kn_ops_grad_done(g, gn, d)) < 0 ? KN_ERR : KN_OK;
}

static const kn_arg_spec trilu_args[] = {
    {"upper", KN_ATTR_BOOL, false, 1, 0, NULL},
    {"k", KN_ATTR_INT, false, 0, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_trilu = {
    .name = "trilu", .min_inputs = 1, .max_inputs = 2, .args = trilu_args,
    .infer = trilu_infer, .emit_c = trilu_emit, .emit_cuda = trilu_emit, .grad = trilu_grad,
};

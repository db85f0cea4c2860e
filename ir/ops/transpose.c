/* transpose.c — transpose(x, perm=(...)): Y's dim k is X's dim perm[k]
 * (numpy.transpose, ONNX Transpose; empty perm reverses the dims).
 *
 * The batch dim N must stay first (perm[0] == 0 on a batched input): the
 * arena layout keeps the batch outermost.  Emission walks Y in order with one
 * loop per dim and reads X through permuted strides; the compiler unrolls
 * the innermost loop.  The gradient is the transpose by the inverse perm.
 */
#include "op_util.h"

/* Reads perm (defaulting to reversed dims) and checks it is a permutation. */
static kn_status transpose_perm(kn_diag *d, const kn_graph *g, const kn_node *n, int *perm)
{
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape;
    const kn_attr *a = kn_node_attr(n, "perm");
    int r = x->rank;
    if (!a || a->kind != KN_ATTR_INTS || a->n == 0) {
        for (int k = 0; k < r; k++) perm[k] = r - 1 - k;
    } else {
        if (a->n != r)
            return kn_op_error(d, g, n, "perm has %d entries for an input of rank %d", a->n, r);
        bool seen[KN_MAX_RANK] = {false};
        for (int k = 0; k < r; k++) {
            int64_t p = a->ints[k] < 0 ? a->ints[k] + r : a->ints[k];
            if (p < 0 || p >= r || seen[p])
                return kn_op_error(d, g, n, "perm is not a permutation of 0..%d", r - 1);
            seen[p] = true;
            perm[k] = (int)p;
        }
    }
    if (kn_shape_is_batched(x) && perm[0] != 0) {
        char s[128];
        kn_ops_fmt(g, n->in[0], s, sizeof s);
        return kn_op_error(d, g, n, "cannot move the batch dim N of %s (perm[0] must be 0)", s);
    }
    return KN_OK;
}

static kn_status transpose_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_input(d, g, n, 0) != KN_OK) return KN_ERR;
    const kn_value *x = kn_graph_value(g, n->in[0]);
    int perm[KN_MAX_RANK];
    if (transpose_perm(d, g, n, perm) != KN_OK) return KN_ERR;
    kn_shape y = x->shape;
    for (int k = 0; k < y.rank; k++) y.d[k] = x->shape.d[perm[k]];
    kn_ops_set_out(g, n, 0, x->dtype, &y);
    return KN_OK;
}

static kn_status transpose_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    int perm[KN_MAX_RANK];
    if (transpose_perm(e->diag, g, n, perm) != KN_OK) return KN_ERR;
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape, *y = &kn_graph_value(g, n->out[0])->shape;
    int64_t xs[KN_MAX_RANK];
    kn_ops_strides(x, xs);
    kn_strbuf idx;
    kn_sb_init(&idx);
    for (int k = 0; k < y->rank; k++) kn_sb_printf(&idx, "%si%d * %lld", k ? " + " : "", k, (long long)xs[perm[k]]);
    char numel[64];
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    kn_emit_cuda_kernel(e, numel); /* GPU: one thread per output element */
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_line(e, "size_t o = 0;");
    kn_ops_open_loops(e, y);
    kn_emit_line(e, "Y[o++] = X[%s];", y->rank ? idx.s : "0");
    kn_ops_close_loops(e, y->rank);
    kn_emit_cuda_end(e);
    kn_sb_free(&idx);
    return KN_OK;
}

static kn_status transpose_grad(kn_graph *g, const kn_node *n, const int *dy, const bool *need, int *dx,
                                kn_diag *d)
{
    dx[0] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    int perm[KN_MAX_RANK];
    if (transpose_perm(d, g, n, perm) != KN_OK) return KN_ERR;
    int r = kn_graph_value(g, n->in[0])->shape.rank;
    int64_t inv[KN_MAX_RANK];
    for (int k = 0; k < r; k++) inv[perm[k]] = k;
    kn_node *gn = kn_ops_grad_node(g, n, KN_OP_TRANSPOSE, "x", &dy[0], 1, 1);
    kn_node_set_attr_ints(gn, "perm", inv, r);
    return (dx[0] = kn_ops_grad_done(g, gn, d)) < 0 ? KN_ERR : KN_OK;
}

static const kn_arg_spec transpose_args[] = {
    {"perm", KN_ATTR_INTS, false, 0, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_transpose = {
    .name = "transpose", .min_inputs = 1, .max_inputs = 1, .args = transpose_args,
    .infer = transpose_infer, .emit_c = transpose_emit, .emit_cuda = transpose_emit, .grad = transpose_grad,
};

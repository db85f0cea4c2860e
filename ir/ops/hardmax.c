/* hardmax.c — hardmax(x, dim=-1): 1 at the first maximum of each line
 * along `dim`, 0 elsewhere (ONNX Hardmax, opset 13 semantics; the importer
 * reshapes for the older flatten-at-axis form).
 *
 * The tensor is viewed as [outer, D, inner] around `dim`, as in softmax.c.
 * NaN counts as the maximum (argmax's rule).  The output is piecewise
 * constant, so its gradient is zero: the rule returns a zero tensor built
 * with the unary table's zero-gradient row (floor's), not a missing edge.
 */
#include "op_util.h"

static kn_status hardmax_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "input") != KN_OK) return KN_ERR;
    int dim = 0;
    if (kn_ops_norm_dim(d, g, n, n->in[0], kn_node_attr_i(n, "dim", -1), &dim) != KN_OK) return KN_ERR;
    if (kn_graph_value(g, n->in[0])->shape.d[dim] == KN_DIM_N)
        return kn_op_error(d, g, n, "hardmax along the batch dim N is not supported");
    kn_ops_set_out(g, n, 0, KN_F32, &kn_graph_value(g, n->in[0])->shape);
    return KN_OK;
}

/* One loop over the lines along `dim` (one GPU thread each): find the
 * line's first maximum (NaN wins), then write the whole line. */
static kn_status hardmax_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape;
    int64_t d64 = kn_node_attr_i(n, "dim", -1);
    int dim = (int)(d64 < 0 ? d64 + x->rank : d64);
    char outer[64], lines[96];
    kn_ops_dims_expr(e, n->in[0], 0, dim, outer, sizeof outer);
    long long D = (long long)x->d[dim], inner = (long long)kn_ops_dims_const(x, dim + 1, x->rank);
    snprintf(lines, sizeof lines, "(size_t)%s * %lld", outer, inner);
    (void)g;
    kn_emit_cuda_kernel(e, lines);
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_for_open(e, "t", lines);
    kn_emit_line(e, "const size_t o = t / %lld, i = t %% %lld;", inner, inner);
    kn_emit_line(e, "const float *x = X + o * %lld + i;", D * inner);
    kn_emit_line(e, "size_t best = 0;");
    kn_emit_line(e, "for (size_t r = 1; r < %lld; r++)", D);
    kn_emit_line(e, "    if (x[r * %lld] > x[best * %lld] || (x[r * %lld] != x[r * %lld] && "
                    "x[best * %lld] == x[best * %lld])) best = r;", inner, inner, inner, inner, inner, inner);
    kn_emit_line(e, "for (size_t r = 0; r < %lld; r++) Y[o * %lld + i + r * %lld] = r == best ? 1.0f : 0.0f;", D,
                 D * inner, inner);
    kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

/* dL/dx = 0: floor's row of unary_grad writes zeros of x's shape. */
static kn_status hardmax_grad(kn_graph *g, const kn_node *n, const int *dy, const bool *need, int *dx, kn_diag *d)
{
    dx[0] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    int in[3] = {dy[0], n->in[0], n->out[0]};
    kn_node *gn = kn_ops_grad_node(g, n, KN_OP_UNARY_GRAD, "x", in, 3, 1);
    kn_node_set_attr_i(gn, "fn", KN_OP_FLOOR);
    return (dx[0] = kn_ops_grad_done(g, gn, d)) < 0 ? KN_ERR : KN_OK;
}

static const kn_arg_spec hardmax_args[] = {
    {"dim", KN_ATTR_INT, false, -1, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_hardmax = {
    .name = "hardmax", .min_inputs = 1, .max_inputs = 1, .args = hardmax_args,
    .infer = hardmax_infer, .emit_c = hardmax_emit, .emit_cuda = hardmax_emit, .grad = hardmax_grad,
};

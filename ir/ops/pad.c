/* pad.c — pad(x, pads=(b0, .., b{r-1}, e0, .., e{r-1}), value=0): constant
 * padding, ONNX Pad's layout (all begins, then all ends; torch's F.pad lists
 * pairs from the last dim instead, so model files use the ONNX order too).
 *
 * Pads are >= 0 (cropping is slice's job); the batch dim N is never padded.
 * Emission walks Y with one loop per dim and reads X where the shifted
 * index falls inside it.  Also the gradient of slice (zeros around dy), and
 * its own gradient is a slice per padded dim.  Modes other than "constant"
 * (reflect, edge) are not supported.
 */
#include "op_util.h"

static kn_status pad_read(kn_diag *d, const kn_graph *g, const kn_node *n, int64_t *b, int64_t *e)
{
    if (kn_ops_want_input(d, g, n, 0) != KN_OK) return KN_ERR;
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape;
    const kn_attr *a = kn_node_attr(n, "pads");
    int r = x->rank;
    if (!a || a->kind != KN_ATTR_INTS || a->n != 2 * r)
        return kn_op_error(d, g, n, "pads needs %d values (begin of each dim, then end of each dim)", 2 * r);
    for (int k = 0; k < r; k++) {
        b[k] = a->ints[k], e[k] = a->ints[r + k];
        if (b[k] < 0 || e[k] < 0 || b[k] > KN_OPS_SPATIAL_MAX || e[k] > KN_OPS_SPATIAL_MAX)
            return kn_op_error(d, g, n, "pads of dim %d must be in [0, %d], got (%lld, %lld)", k, KN_OPS_SPATIAL_MAX,
                               (long long)b[k], (long long)e[k]);
        if (x->d[k] == KN_DIM_N && (b[k] || e[k])) return kn_op_error(d, g, n, "cannot pad the batch dim N");
    }
    return KN_OK;
}

static kn_status pad_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    int64_t b[KN_MAX_RANK], e[KN_MAX_RANK];
    if (pad_read(d, g, n, b, e) != KN_OK) return KN_ERR;
    const kn_value *x = kn_graph_value(g, n->in[0]);
    if (x->dtype != KN_F32) return kn_op_error(d, g, n, "expects a f32 input");
    kn_shape y = x->shape;
    for (int k = 0; k < y.rank; k++)
        if (y.d[k] != KN_DIM_N) y.d[k] += b[k] + e[k];
    kn_ops_set_out(g, n, 0, KN_F32, &y);
    return KN_OK;
}

static kn_status pad_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    int64_t b[KN_MAX_RANK], en[KN_MAX_RANK], xs[KN_MAX_RANK];
    if (pad_read(e->diag, g, n, b, en) != KN_OK) return KN_ERR;
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape, *y = &kn_graph_value(g, n->out[0])->shape;
    kn_ops_strides(x, xs);
    char v[64];
    kn_emit_float_lit(kn_ops_attr_num(n, "value", 0.0), v, sizeof v);
    kn_strbuf in_range, idx;
    kn_sb_init(&in_range);
    kn_sb_init(&idx);
    for (int k = 0; k < y->rank; k++) {
        kn_sb_printf(&idx, "%s(i%d - %lld) * %lld", k ? " + " : "", k, (long long)b[k], (long long)xs[k]);
        if (b[k] || en[k])
            kn_sb_printf(&in_range, "%si%d >= %lld && i%d < %lld", in_range.len ? " && " : "", k, (long long)b[k], k,
                         (long long)(b[k] + x->d[k]));
    }
    char numel[64];
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    kn_emit_cuda_kernel(e, numel); /* GPU: one thread per output element */
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_line(e, "size_t o = 0;");
    kn_ops_open_loops(e, y);
    if (!y->rank) kn_sb_puts(&idx, "0");
    if (in_range.len) kn_emit_line(e, "Y[o++] = (%s) ? X[%s] : %s;", in_range.s, idx.s, v);
    else kn_emit_line(e, "Y[o++] = X[%s];", idx.s);
    kn_ops_close_loops(e, y->rank);
    kn_emit_cuda_end(e);
    kn_sb_free(&in_range);
    kn_sb_free(&idx);
    return KN_OK;
}

static kn_status pad_grad(kn_graph *g, const kn_node *n, const int *dy, const bool *need, int *dx, kn_diag *d)
{
    dx[0] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    int64_t b[KN_MAX_RANK], e[KN_MAX_RANK];
    if (pad_read(d, g, n, b, e) != KN_OK) return KN_ERR;
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape;
    int cur = dy[0];
    for (int k = 0; k < x->rank; k++) {
        if (!b[k] && !e[k]) continue;
        char tag[32];
        snprintf(tag, sizeof tag, "x%d", k);
        kn_node *gn = kn_ops_grad_node(g, n, KN_OP_SLICE, tag, &cur, 1, 1);
        kn_node_set_attr_i(gn, "dim", k);
        kn_node_set_attr_i(gn, "start", b[k]);
        kn_node_set_attr_i(gn, "len", x->d[k]);
        if ((cur = kn_ops_grad_done(g, gn, d)) < 0) return KN_ERR;
    }
    dx[0] = cur;
    return KN_OK;
}

static const kn_arg_spec pad_args[] = {
    {"pads", KN_ATTR_INTS, true, 0, 0, NULL},
    {"value", KN_ATTR_FLOAT, false, 0, 0.0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_pad = {
    .name = "pad", .min_inputs = 1, .max_inputs = 1, .args = pad_args,
    .infer = pad_infer, .emit_c = pad_emit, .emit_cuda = pad_emit, .grad = pad_grad,
};

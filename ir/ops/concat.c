/* concat.c — concat(a, b, ..., dim=0) and its inverse slice(x, dim, start, len).
 *
 * concat joins tensors of equal shape except along `dim` (torch.cat, ONNX
 * Concat); slice keeps [start, start+len) of `dim` (ONNX Slice with step 1,
 * and the gradient of concat: each input's gradient is the slice of dy it
 * came from).  Neither may cut or join along the batch dim N of a batched
 * tensor.  Both view tensors as [outer, dim * inner] and copy whole
 * contiguous runs with memcpy.  slice's gradient is pad (pad.c) with zeros.
 */
#include "op_util.h"

#define CONCAT_MAX_INPUTS 64

/* The concat dim, normalised against input 0. */
static kn_status concat_dim(kn_diag *d, const kn_graph *g, const kn_node *n, int *dim)
{
    if (kn_ops_norm_dim(d, g, n, n->in[0], kn_node_attr_i(n, "dim", 0), dim) != KN_OK) return KN_ERR;
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape;
    if (x->d[*dim] == KN_DIM_N)
        return kn_op_error(d, g, n, "cannot concatenate along the batch dim N");
    return KN_OK;
}

static kn_status concat_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (n->n_in < 1 || n->n_in > CONCAT_MAX_INPUTS)
        return kn_op_error(d, g, n, "expects 1 to %d inputs, got %d", CONCAT_MAX_INPUTS, n->n_in);
    for (int i = 0; i < n->n_in; i++)
        if (kn_ops_want_input(d, g, n, i) != KN_OK) return KN_ERR;
    int dim;
    if (concat_dim(d, g, n, &dim) != KN_OK) return KN_ERR;
    const kn_value *x0 = kn_graph_value(g, n->in[0]);
    kn_shape y = x0->shape;
    for (int i = 1; i < n->n_in; i++) {
        const kn_value *xi = kn_graph_value(g, n->in[i]);
        bool ok = xi->dtype == x0->dtype && xi->shape.rank == y.rank;
        for (int k = 0; ok && k < y.rank; k++) ok = k == dim || xi->shape.d[k] == x0->shape.d[k];
        if (!ok) {
            char s0[128], si[128];
            kn_ops_fmt(g, n->in[0], s0, sizeof s0);
            kn_ops_fmt(g, n->in[i], si, sizeof si);
            return kn_op_error(d, g, n, "input %d '%s' %s does not match input 0 %s outside dim %d", i, xi->name,
                               si, s0, dim);
        }
        y.d[dim] += xi->shape.d[dim];
    }
    kn_ops_set_out(g, n, 0, x0->dtype, &y);
    return KN_OK;
}

static kn_status concat_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    int dim;
    if (concat_dim(e->diag, g, n, &dim) != KN_OK) return KN_ERR;
    const kn_value *y = kn_graph_value(g, n->out[0]);
    const char *ty = y->dtype == KN_I64 ? "int64_t" : "float";
    int64_t inner = kn_ops_dims_const(&y->shape, dim + 1, y->shape.rank), off = 0;
    int64_t row = y->shape.d[dim] * inner;
    char outer[64];
    kn_ops_dims_expr(e, n->out[0], 0, dim, outer, sizeof outer);
    kn_emit_bind_out(e, "Y", n->out[0]);
    for (int i = 0; i < n->n_in; i++) {
        int64_t len = kn_graph_value(g, n->in[i])->shape.d[dim] * inner;
        char cname[16];
        snprintf(cname, sizeof cname, "X%d", i);
        kn_emit_bind_in(e, cname, n->in[i]);
        kn_emit_line(e, "for (size_t p = 0; p < %s; p++) memcpy(Y + p * %lld + %lld, X%d + p * %lld, %lld * sizeof(%s));",
                     outer, (long long)row, (long long)off, i, (long long)len, (long long)len, ty);
        off += len;
    }
    return KN_OK;
}

static kn_status concat_grad(kn_graph *g, const kn_node *n, const int *dy, const bool *need, int *dx, kn_diag *d)
{
    for (int i = 0; i < n->n_in; i++) dx[i] = -1;
    if (dy[0] < 0) return KN_OK;
    int dim;
    if (concat_dim(d, g, n, &dim) != KN_OK) return KN_ERR;
    int64_t start = 0;
    for (int i = 0; i < n->n_in; i++) {
        int64_t len = kn_graph_value(g, n->in[i])->shape.d[dim];
        if (need[i]) {
            char tag[32];
            snprintf(tag, sizeof tag, "in%d", i);
            kn_node *gn = kn_ops_grad_node(g, n, KN_OP_SLICE, tag, &dy[0], 1, 1);
            kn_node_set_attr_i(gn, "dim", dim);
            kn_node_set_attr_i(gn, "start", start);
            kn_node_set_attr_i(gn, "len", len);
            if ((dx[i] = kn_ops_grad_done(g, gn, d)) < 0) return KN_ERR;
        }
        start += len;
    }
    return KN_OK;
}

/* ---- slice ---- */

static kn_status slice_geom(kn_diag *d, const kn_graph *g, const kn_node *n, int *dim, int64_t *start,
                            int64_t *len)
{
    if (kn_ops_want_input(d, g, n, 0) != KN_OK) return KN_ERR;
    if (kn_ops_norm_dim(d, g, n, n->in[0], kn_node_attr_i(n, "dim", 0), dim) != KN_OK) return KN_ERR;
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape;
    int64_t size = x->d[*dim];
    *start = kn_node_attr_i(n, "start", 0);
    *len = kn_node_attr_i(n, "len", 0);
    if (size == KN_DIM_N) return kn_op_error(d, g, n, "cannot slice the batch dim N");
    if (*start < 0 || *len < 1 || *start > size || *len > size - *start)
        return kn_op_error(d, g, n, "slice [%lld, %lld + %lld) is outside dim %d of size %lld", (long long)*start,
                           (long long)*start, (long long)*len, *dim, (long long)size);
    return KN_OK;
}

static kn_status slice_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    int dim;
    int64_t start, len;
    if (slice_geom(d, g, n, &dim, &start, &len) != KN_OK) return KN_ERR;
    const kn_value *x = kn_graph_value(g, n->in[0]);
    kn_shape y = x->shape;
    y.d[dim] = len;
    kn_ops_set_out(g, n, 0, x->dtype, &y);
    return KN_OK;
}

static kn_status slice_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    int dim;
    int64_t start, len;
    if (slice_geom(e->diag, g, n, &dim, &start, &len) != KN_OK) return KN_ERR;
    const kn_value *x = kn_graph_value(g, n->in[0]);
    int64_t inner = kn_ops_dims_const(&x->shape, dim + 1, x->shape.rank);
    char outer[64];
    kn_ops_dims_expr(e, n->in[0], 0, dim, outer, sizeof outer);
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_line(e, "for (size_t p = 0; p < %s; p++) memcpy(Y + p * %lld, X + p * %lld + %lld, %lld * sizeof(%s));",
                 outer, (long long)(len * inner), (long long)(x->shape.d[dim] * inner), (long long)(start * inner),
                 (long long)(len * inner), x->dtype == KN_I64 ? "int64_t" : "float");
    return KN_OK;
}

/* slice's gradient: dy padded with zeros back to the input's extent. */
static kn_status slice_grad(kn_graph *g, const kn_node *n, const int *dy, const bool *need, int *dx, kn_diag *d)
{
    dx[0] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    int dim;
    int64_t start, len, pads[2 * KN_MAX_RANK] = {0};
    if (slice_geom(d, g, n, &dim, &start, &len) != KN_OK) return KN_ERR;
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape;
    pads[dim] = start;
    pads[x->rank + dim] = x->d[dim] - start - len;
    kn_node *gn = kn_ops_grad_node(g, n, KN_OP_PAD, "x", &dy[0], 1, 1);
    kn_node_set_attr_ints(gn, "pads", pads, 2 * x->rank);
    return (dx[0] = kn_ops_grad_done(g, gn, d)) < 0 ? KN_ERR : KN_OK;
}

static const kn_arg_spec concat_args[] = {
    {"dim", KN_ATTR_INT, false, 0, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};
static const kn_arg_spec slice_args[] = {
    {"dim", KN_ATTR_INT, true, 0, 0, NULL},
    {"start", KN_ATTR_INT, true, 0, 0, NULL},
    {"len", KN_ATTR_INT, true, 0, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

/* CUDA: one kernel; each input's elements are a grid-stride loop, element
 * j of input i (row p = j / len, offset q = j % len) going to Y's row p at
 * the input's offset. */
static kn_status concat_emit_cuda(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    int dim;
    if (concat_dim(e->diag, g, n, &dim) != KN_OK) return KN_ERR;
    const kn_value *y = kn_graph_value(g, n->out[0]);
    int64_t inner = kn_ops_dims_const(&y->shape, dim + 1, y->shape.rank), off = 0;
    int64_t row = y->shape.d[dim] * inner;
    char outer[64], numel[64];
    kn_ops_dims_expr(e, n->out[0], 0, dim, outer, sizeof outer);
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    kn_emit_cuda_kernel(e, numel);
    kn_emit_bind_out(e, "Y", n->out[0]);
    for (int i = 0; i < n->n_in; i++) {
        long long len = (long long)(kn_graph_value(g, n->in[i])->shape.d[dim] * inner);
        char cname[16], count[96];
        snprintf(cname, sizeof cname, "X%d", i);
        snprintf(count, sizeof count, "(size_t)%s * %lld", outer, len);
        kn_emit_bind_in(e, cname, n->in[i]);
        kn_emit_for(e, "j", count, "Y[j / %lld * %lld + %lld + j %% %lld] = X%d[j];", len, (long long)row,
                    (long long)off, len, i);
        off += len;
    }
    kn_emit_cuda_end(e);
    return KN_OK;
}

/* CUDA: one thread per output element. */
static kn_status slice_emit_cuda(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    int dim;
    int64_t start, len;
    if (slice_geom(e->diag, g, n, &dim, &start, &len) != KN_OK) return KN_ERR;
    const kn_value *x = kn_graph_value(g, n->in[0]);
    long long inner = (long long)kn_ops_dims_const(&x->shape, dim + 1, x->shape.rank);
    long long part = (long long)len * inner;
    char numel[64];
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    kn_emit_cuda_kernel(e, numel);
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_for(e, "j", numel, "Y[j] = X[j / %lld * %lld + %lld + j %% %lld];", part,
                (long long)(x->shape.d[dim] * inner), (long long)(start * inner), part);
    kn_emit_cuda_end(e);
    return KN_OK;
}

const kn_op_def kn_op_def_concat = {
    .name = "concat", .min_inputs = 1, .max_inputs = CONCAT_MAX_INPUTS, .args = concat_args,
    .infer = concat_infer, .emit_c = concat_emit, .emit_cuda = concat_emit_cuda, .grad = concat_grad,
};
const kn_op_def kn_op_def_slice = {
    .name = "slice", .min_inputs = 1, .max_inputs = 1, .args = slice_args,
    .infer = slice_infer, .emit_c = slice_emit, .emit_cuda = slice_emit_cuda, .grad = slice_grad,
};

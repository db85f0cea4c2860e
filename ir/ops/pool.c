/* pool.c — 2-D pooling: max_pool2d, avg_pool2d, global_avg_pool and the
 * backward ops their gradient rules build.
 *
 * max_pool2d(x, kernel, stride=kernel, padding=0)            (nn.MaxPool2d)
 * avg_pool2d(x, kernel, stride=kernel, padding=0,
 *            count_include_pad=true)                         (nn.AvgPool2d)
 * global_avg_pool(x) -> f32[N, C, 1, 1]            (nn.AdaptiveAvgPool2d(1))
 * x is f32[N, C, H, W]; kernel/stride/padding are one integer or a pair.
 * Loops follow PyTorch's CPU kernels (window clamping, divisor, the first
 * maximum wins, NaN counts as the maximum) so results match bit for bit in
 * the common cases.  Not supported: dilation, ceil_mode, divisor_override.
 *
 * Backward ops (also callable from model files for the golden tests):
 *   max_pool2d_grad(dy, x, kernel, stride, padding) -> dx: routes dy to the
 *       window's maximum, recomputed from x (no index tensor is kept)
 *   avg_pool2d_grad(dy, kernel, stride, padding, count_include_pad, input_hw)
 *       -> dx; global_avg_pool's gradient is this op with kernel = (H, W).
 */
#include "op_util.h"

#include <limits.h>


typedef struct {
    int64_t c, h, w, oh, ow;
    int64_t kh, kw, sh, sw, ph, pw;
} pool_geom;

/* Reads kernel/stride/padding for an input of c x h x w (set in q). */
static kn_status pool_geom_read(kn_diag *d, const kn_graph *g, const kn_node *n, pool_geom *q,
                                const char *shape)
{
    int64_t none[2] = {0, 0}, k[2], s[2], p[2];
    if (kn_ops_int_pair(d, g, n, "kernel", none, 1, k) != KN_OK) return KN_ERR;
    if (kn_ops_int_pair(d, g, n, "stride", k, 1, s) != KN_OK) return KN_ERR;
    if (kn_ops_int_pair(d, g, n, "padding", none, 0, p) != KN_OK) return KN_ERR;
    q->kh = k[0], q->kw = k[1], q->sh = s[0], q->sw = s[1], q->ph = p[0], q->pw = p[1];
    if (2 * q->ph > q->kh || 2 * q->pw > q->kw)
        return kn_op_error(d, g, n, "padding (%lld, %lld) must be at most half the kernel (%lld, %lld)",
                           (long long)q->ph, (long long)q->pw, (long long)q->kh, (long long)q->kw);
    if (q->kh > q->h + 2 * q->ph || q->kw > q->w + 2 * q->pw)
        return kn_op_error(d, g, n, "kernel %lldx%lld is larger than the padded input %lldx%lld "
                           "(input %s, padding %lldx%lld)", (long long)q->kh, (long long)q->kw,
                           (long long)(q->h + 2 * q->ph), (long long)(q->w + 2 * q->pw), shape,
                           (long long)q->ph, (long long)q->pw);
    q->oh = (q->h + 2 * q->ph - q->kh) / q->sh + 1;
    q->ow = (q->w + 2 * q->pw - q->kw) / q->sw + 1;
    return KN_OK;
}

/* Geometry of a forward pool (x = input 0) or of max_pool2d_grad (x = input 1). */
static kn_status pool_geom_of_x(kn_diag *d, const kn_graph *g, const kn_node *n, int xi, pool_geom *q)
{
    if (kn_ops_want_nchw(d, g, n, xi, "input") != KN_OK) return KN_ERR;
    const kn_shape *x = &kn_graph_value(g, n->in[xi])->shape;
    char s[128];
    kn_ops_fmt(g, n->in[xi], s, sizeof s);
    q->c = x->d[1], q->h = x->d[2], q->w = x->d[3];
    return pool_geom_read(d, g, n, q, s);
}

static kn_status pool_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    pool_geom q;
    if (pool_geom_of_x(d, g, n, 0, &q) != KN_OK) return KN_ERR;
    kn_shape y = kn_graph_value(g, n->in[0])->shape;
    y.d[2] = q.oh, y.d[3] = q.ow;
    kn_ops_set_out(g, n, 0, KN_F32, &y);
    return KN_OK;
}

/* Opens the loops over planes and output positions and computes the clamped
 * window [hs, he) x [ws, we) as PyTorch does; `pool_size` gets the window
 * size before clamping to the input (avg pool's count_include_pad divisor). */
static void pool_emit_window_open(kn_emit *e, const pool_geom *q, const char *planes)
{
    kn_emit_for_open(e, "p", planes); /* GPU: one thread per plane */
    kn_emit_line(e, "for (ptrdiff_t oh = 0; oh < %lld; oh++) {", (long long)q->oh);
    e->indent++;
    kn_emit_line(e, "for (ptrdiff_t ow = 0; ow < %lld; ow++) {", (long long)q->ow);
    e->indent++;
    kn_emit_line(e, "ptrdiff_t hs = oh * %lld - %lld, ws = ow * %lld - %lld;", (long long)q->sh, (long long)q->ph,
                 (long long)q->sw, (long long)q->pw);
    kn_emit_line(e, "ptrdiff_t he = hs + %lld < %lld ? hs + %lld : %lld;", (long long)q->kh,
                 (long long)(q->h + q->ph), (long long)q->kh, (long long)(q->h + q->ph));
    kn_emit_line(e, "ptrdiff_t we = ws + %lld < %lld ? ws + %lld : %lld;", (long long)q->kw,
                 (long long)(q->w + q->pw), (long long)q->kw, (long long)(q->w + q->pw));
    kn_emit_line(e, "const ptrdiff_t pool_size = (he - hs) * (we - ws);");
    kn_emit_line(e, "(void)pool_size;");
    kn_emit_line(e, "if (hs < 0) hs = 0;");
    kn_emit_line(e, "if (ws < 0) ws = 0;");
    kn_emit_line(e, "if (he > %lld) he = %lld;", (long long)q->h, (long long)q->h);
    kn_emit_line(e, "if (we > %lld) we = %lld;", (long long)q->w, (long long)q->w);
    kn_emit_line(e, "const size_t o = p * %lld + (size_t)(oh * %lld + ow);", (long long)(q->oh * q->ow),
                 (long long)q->ow);
    kn_emit_line(e, "const size_t base = p * %lld;", (long long)(q->h * q->w));
}

static void pool_emit_window_close(kn_emit *e)
{
    for (int i = 0; i < 3; i++) {
        e->indent--;
        kn_emit_line(e, "}");
    }
}

/* The first maximum of the window (NaN wins) into `maxval`/`maxindex`. */
static void pool_emit_argmax(kn_emit *e, const pool_geom *q)
{
    kn_emit_line(e, "float maxval = -INFINITY;");
    kn_emit_line(e, "size_t maxindex = base + (size_t)(hs * %lld + ws);", (long long)q->w);
    kn_emit_line(e, "for (ptrdiff_t ih = hs; ih < he; ih++)");
    kn_emit_line(e, "    for (ptrdiff_t iw = ws; iw < we; iw++) {");
    kn_emit_line(e, "        const size_t i = base + (size_t)(ih * %lld + iw);", (long long)q->w);
    kn_emit_line(e, "        if (X[i] > maxval || isnan(X[i])) { maxval = X[i]; maxindex = i; }");
    kn_emit_line(e, "    }");
}

/* Gradients clear dX, then accumulate plane by plane.  On the GPU the clear
 * is a host cudaMemsetAsync before the kernel (no thread may clear planes
 * others already wrote), and the kernel binds its pointers again. */
static void pool_grad_clear(kn_emit *e, const kn_node *n, const char *count, const char *planes)
{
    kn_emit_line(e, "memset(dX, 0, %s * sizeof(float));", count);
    kn_emit_cuda_kernel(e, planes);
    if (!kn_emit_is_cuda(e)) return;
    kn_emit_bind_in(e, "dY", n->in[0]);
    if (n->op == KN_OP_MAX_POOL2D_GRAD) kn_emit_bind_in(e, "X", n->in[1]);
    kn_emit_bind_out(e, "dX", n->out[0]);
}

static kn_status maxpool_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    pool_geom q;
    if (pool_geom_of_x(e->diag, g, n, 0, &q) != KN_OK) return KN_ERR;
    char planes[64];
    kn_ops_dims_expr(e, n->in[0], 0, 2, planes, sizeof planes);
    kn_emit_cuda_kernel(e, planes);
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    pool_emit_window_open(e, &q, planes);
    pool_emit_argmax(e, &q);
    kn_emit_line(e, "(void)maxindex;");
    kn_emit_line(e, "Y[o] = maxval;");
    pool_emit_window_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static kn_status avgpool_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    pool_geom q;
    if (pool_geom_of_x(e->diag, g, n, 0, &q) != KN_OK) return KN_ERR;
    bool include_pad = kn_node_attr_i(n, "count_include_pad", 1) != 0;
    char planes[64];
    kn_ops_dims_expr(e, n->in[0], 0, 2, planes, sizeof planes);
    kn_emit_cuda_kernel(e, planes);
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    pool_emit_window_open(e, &q, planes);
    kn_emit_line(e, "float sum = 0.0f;");
    kn_emit_line(e, "for (ptrdiff_t ih = hs; ih < he; ih++)");
    kn_emit_line(e, "    for (ptrdiff_t iw = ws; iw < we; iw++) sum += X[base + (size_t)(ih * %lld + iw)];",
                 (long long)q.w);
    kn_emit_line(e, "Y[o] = sum / (float)%s;", include_pad ? "pool_size" : "((he - hs) * (we - ws))");
    pool_emit_window_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static kn_status maxpool_grad(kn_graph *g, const kn_node *n, const int *dy, const bool *need, int *dx,
                              kn_diag *d)
{
    dx[0] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    pool_geom q;
    if (pool_geom_of_x(d, g, n, 0, &q) != KN_OK) return KN_ERR;
    char name[512];
    snprintf(name, sizeof name, "%s.grad_input", n->name);
    int in[2] = {dy[0], n->in[0]};
    kn_node *b = kn_op_build(g, KN_OP_MAX_POOL2D_GRAD, name, in, 2, 1, d);
    if (!b) return KN_ERR;
    int64_t k[2] = {q.kh, q.kw}, s[2] = {q.sh, q.sw}, p[2] = {q.ph, q.pw};
    kn_node_set_attr_ints(b, "kernel", k, 2);
    kn_node_set_attr_ints(b, "stride", s, 2);
    kn_node_set_attr_ints(b, "padding", p, 2);
    if (kn_op_finish(g, b, d) != KN_OK) return KN_ERR;
    dx[0] = b->out[0];
    return KN_OK;
}

/* Adds avg_pool2d_grad(dy) for an input of h x w; shared by avg_pool2d and
 * global_avg_pool. */
static kn_status avgpool_build_grad(kn_graph *g, const kn_node *n, int dy, const pool_geom *q,
                                    bool include_pad, int *dx, kn_diag *d)
{
    char name[512];
    snprintf(name, sizeof name, "%s.grad_input", n->name);
    kn_node *b = kn_op_build(g, KN_OP_AVG_POOL2D_GRAD, name, &dy, 1, 1, d);
    if (!b) return KN_ERR;
    int64_t k[2] = {q->kh, q->kw}, s[2] = {q->sh, q->sw}, p[2] = {q->ph, q->pw}, hw[2] = {q->h, q->w};
    kn_node_set_attr_ints(b, "kernel", k, 2);
    kn_node_set_attr_ints(b, "stride", s, 2);
    kn_node_set_attr_ints(b, "padding", p, 2);
    kn_node_set_attr_b(b, "count_include_pad", include_pad);
    kn_node_set_attr_ints(b, "input_hw", hw, 2);
    if (kn_op_finish(g, b, d) != KN_OK) return KN_ERR;
    *dx = b->out[0];
    return KN_OK;
}

static kn_status avgpool_grad(kn_graph *g, const kn_node *n, const int *dy, const bool *need, int *dx,
                              kn_diag *d)
{
    dx[0] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    pool_geom q;
    if (pool_geom_of_x(d, g, n, 0, &q) != KN_OK) return KN_ERR;
    return avgpool_build_grad(g, n, dy[0], &q, kn_node_attr_i(n, "count_include_pad", 1) != 0, dx, d);
}

/* ---- max_pool2d_grad(dy, x) ---- */

static kn_status maxpool_grad_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    pool_geom q;
    if (kn_ops_want_nchw(d, g, n, 0, "output gradient") != KN_OK) return KN_ERR;
    if (pool_geom_of_x(d, g, n, 1, &q) != KN_OK) return KN_ERR;
    const kn_shape *dy = &kn_graph_value(g, n->in[0])->shape, *x = &kn_graph_value(g, n->in[1])->shape;
    if (dy->d[0] != x->d[0] || dy->d[1] != q.c || dy->d[2] != q.oh || dy->d[3] != q.ow) {
        char sy[128], sx[128];
        kn_ops_fmt(g, n->in[0], sy, sizeof sy);
        kn_ops_fmt(g, n->in[1], sx, sizeof sx);
        return kn_op_error(d, g, n, "output gradient %s does not match input %s (expected %lldx%lld)", sy, sx,
                           (long long)q.oh, (long long)q.ow);
    }
    kn_ops_set_out(g, n, 0, KN_F32, x);
    return KN_OK;
}

static kn_status maxpool_grad_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    pool_geom q;
    if (pool_geom_of_x(e->diag, g, n, 1, &q) != KN_OK) return KN_ERR;
    char planes[64], count[64];
    kn_ops_dims_expr(e, n->in[1], 0, 2, planes, sizeof planes);
    kn_emit_numel(e, n->out[0], count, sizeof count);
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_in(e, "X", n->in[1]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    pool_grad_clear(e, n, count, planes);
    pool_emit_window_open(e, &q, planes);
    pool_emit_argmax(e, &q);
    kn_emit_line(e, "dX[maxindex] += dY[o];");
    pool_emit_window_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

/* ---- avg_pool2d_grad(dy) ---- */

static kn_status avgpool_grad_geom(kn_diag *d, const kn_graph *g, const kn_node *n, pool_geom *q)
{
    if (kn_ops_want_nchw(d, g, n, 0, "output gradient") != KN_OK) return KN_ERR;
    const kn_shape *dy = &kn_graph_value(g, n->in[0])->shape;
    int64_t none[2] = {0, 0}, hw[2];
    if (kn_ops_int_pair(d, g, n, "input_hw", none, 1, hw) != KN_OK) return KN_ERR;
    q->c = dy->d[1], q->h = hw[0], q->w = hw[1];
    char s[128];
    snprintf(s, sizeof s, "[N,%lld,%lld,%lld]", (long long)q->c, (long long)q->h, (long long)q->w);
    if (pool_geom_read(d, g, n, q, s) != KN_OK) return KN_ERR;
    if (dy->d[2] != q->oh || dy->d[3] != q->ow) {
        char sy[128];
        kn_ops_fmt(g, n->in[0], sy, sizeof sy);
        return kn_op_error(d, g, n, "output gradient %s does not match input %s (expected %lldx%lld)", sy, s,
                           (long long)q->oh, (long long)q->ow);
    }
    return KN_OK;
}

static kn_status avgpool_grad_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    pool_geom q;
    if (avgpool_grad_geom(d, g, n, &q) != KN_OK) return KN_ERR;
    kn_shape x = kn_graph_value(g, n->in[0])->shape;
    x.d[2] = q.h, x.d[3] = q.w;
    kn_ops_set_out(g, n, 0, KN_F32, &x);
    return KN_OK;
}

static kn_status avgpool_grad_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    pool_geom q;
    if (avgpool_grad_geom(e->diag, g, n, &q) != KN_OK) return KN_ERR;
    bool include_pad = kn_node_attr_i(n, "count_include_pad", 1) != 0;
    char planes[64], count[64];
    kn_ops_dims_expr(e, n->in[0], 0, 2, planes, sizeof planes);
    kn_emit_numel(e, n->out[0], count, sizeof count);
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    pool_grad_clear(e, n, count, planes);
    pool_emit_window_open(e, &q, planes);
    kn_emit_line(e, "const float gv = dY[o] / (float)%s;", include_pad ? "pool_size" : "((he - hs) * (we - ws))");
    kn_emit_line(e, "for (ptrdiff_t ih = hs; ih < he; ih++)");
    kn_emit_line(e, "    for (ptrdiff_t iw = ws; iw < we; iw++) dX[base + (size_t)(ih * %lld + iw)] += gv;",
                 (long long)q.w);
    pool_emit_window_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

/* ---- global_avg_pool ---- */

static kn_status gap_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_nchw(d, g, n, 0, "input") != KN_OK) return KN_ERR;
    kn_shape y = kn_graph_value(g, n->in[0])->shape;
    y.d[2] = y.d[3] = 1;
    kn_ops_set_out(g, n, 0, KN_F32, &y);
    return KN_OK;
}

static kn_status gap_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape;
    long long hw = (long long)(x->d[2] * x->d[3]);
    char planes[64];
    kn_ops_dims_expr(e, n->in[0], 0, 2, planes, sizeof planes);
    kn_emit_cuda_kernel(e, planes); /* GPU: one thread per plane */
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    /* PyTorch's adaptive_avg_pool2d: a float sum divided by kh, then by kw. */
    kn_emit_for(e, "p", planes, "{");
    kn_emit_line(e, "    float sum = 0.0f;");
    kn_emit_line(e, "    for (size_t i = 0; i < %lld; i++) sum += X[p * %lld + i];", hw, hw);
    kn_emit_line(e, "    Y[p] = sum / %lld.0f / %lld.0f;", (long long)x->d[2], (long long)x->d[3]);
    kn_emit_line(e, "}");
    kn_emit_cuda_end(e);
    return KN_OK;
}

static kn_status gap_grad(kn_graph *g, const kn_node *n, const int *dy, const bool *need, int *dx, kn_diag *d)
{
    dx[0] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape;
    pool_geom q = {.c = x->d[1], .h = x->d[2], .w = x->d[3], .oh = 1, .ow = 1,
                   .kh = x->d[2], .kw = x->d[3], .sh = x->d[2], .sw = x->d[3]};
    return avgpool_build_grad(g, n, dy[0], &q, true, dx, d);
}

static const kn_arg_spec maxpool_args[] = {
    {"kernel", KN_ATTR_INTS, true, 0, 0, NULL},
    {"stride", KN_ATTR_INTS, false, 0, 0, NULL}, /* empty = kernel */
    {"padding", KN_ATTR_INTS, false, 0, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

static const kn_arg_spec avgpool_args[] = {
    {"kernel", KN_ATTR_INTS, true, 0, 0, NULL},
    {"stride", KN_ATTR_INTS, false, 0, 0, NULL},
    {"padding", KN_ATTR_INTS, false, 0, 0, NULL},
    {"count_include_pad", KN_ATTR_BOOL, false, 1, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

static const kn_arg_spec avgpool_grad_args[] = {
    {"kernel", KN_ATTR_INTS, true, 0, 0, NULL},
    {"stride", KN_ATTR_INTS, false, 0, 0, NULL},
    {"padding", KN_ATTR_INTS, false, 0, 0, NULL},
    {"count_include_pad", KN_ATTR_BOOL, false, 1, 0, NULL},
    {"input_hw", KN_ATTR_INTS, true, 0, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_max_pool2d = {
    .name = "max_pool2d", .min_inputs = 1, .max_inputs = 1, .args = maxpool_args,
    .infer = pool_infer, .emit_c = maxpool_emit, .emit_cuda = maxpool_emit, .grad = maxpool_grad,
};
const kn_op_def kn_op_def_avg_pool2d = {
    .name = "avg_pool2d", .min_inputs = 1, .max_inputs = 1, .args = avgpool_args,
    .infer = pool_infer, .emit_c = avgpool_emit, .emit_cuda = avgpool_emit, .grad = avgpool_grad,
};
const kn_op_def kn_op_def_global_avg_pool = {
    .name = "global_avg_pool", .min_inputs = 1, .max_inputs = 1,
    .infer = gap_infer, .emit_c = gap_emit, .emit_cuda = gap_emit, .grad = gap_grad,
};
const kn_op_def kn_op_def_max_pool2d_grad = {
    .name = "max_pool2d_grad", .min_inputs = 2, .max_inputs = 2, .args = maxpool_args,
    .infer = maxpool_grad_infer, .emit_c = maxpool_grad_emit, .emit_cuda = maxpool_grad_emit,
};
const kn_op_def kn_op_def_avg_pool2d_grad = {
    .name = "avg_pool2d_grad", .min_inputs = 1, .max_inputs = 1, .args = avgpool_grad_args,
    .infer = avgpool_grad_infer, .emit_c = avgpool_grad_emit, .emit_cuda = avgpool_grad_emit,
};

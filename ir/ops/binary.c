/* binary.c — elementwise add, sub, mul, div, max, min, pow with NumPy
 * broadcasting.
 *
 * Shapes broadcast from the right (kn_broadcast_shapes); the batch dim N may
 * only end up as dim 0 of the result.  Emission walks the output with one
 * loop per group of adjacent dims that broadcast the same way, so the common
 * cases collapse to a single flat loop (same shapes, or a scalar operand) or
 * two loops (a [C] bias on [N, C]).  Both operands must be f32.
 * Gradients reduce back to each operand's shape with sum_to (defined here:
 * it is broadcasting run backwards, over the same loop nest).  max, min and
 * pow need the operands in their gradients: binary_grad(dy, a, b, y) (attrs
 * `fn` = forward op, `which` = operand) computes the full-shape gradient of
 * one operand over the same nest, then sum_to reduces it.  max/min split
 * the gradient of a tie evenly (torch.maximum's rule) and propagate NaN
 * (numpy.maximum's rule, which ONNX follows).
 */
#include "op_util.h"

static kn_status infer_binary(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "first operand") != KN_OK) return KN_ERR;
    if (kn_ops_want_f32(d, g, n, 1, "second operand") != KN_OK) return KN_ERR;
    const kn_shape *a = &kn_graph_value(g, n->in[0])->shape;
    const kn_shape *b = &kn_graph_value(g, n->in[1])->shape;
    kn_shape out;
    if (kn_broadcast_shapes(a, b, &out, n, g, d) != KN_OK) return KN_ERR;
    kn_ops_set_out(g, n, 0, KN_F32, &out);
    return KN_OK;
}

/* One loop of the emitted nest: a run of output dims that broadcast alike. */
typedef struct {
    int64_t extent;   /* constant part of the extent */
    bool batch;       /* extent also multiplied by n */
    int64_t stride_a, stride_b, stride_y; /* element strides, 0 = broadcast */
} loop_dim;

/* Operand dim of `s` aligned with output dim k of a rank-r output; 1 if absent. */
static int64_t aligned_dim(const kn_shape *s, int r, int k)
{
    int j = k - (r - s->rank);
    return j < 0 ? 1 : s->d[j];
}

static void index_expr(const loop_dim *L, int nl, int which, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (int k = 0; k < nl; k++) {
        int64_t s = which == 0 ? L[k].stride_a : which == 1 ? L[k].stride_b : L[k].stride_y;
        if (s == 0) continue;
        int w = s == 1 ? snprintf(buf + len, cap - len, "%si%d", len ? " + " : "", k)
                       : snprintf(buf + len, cap - len, "%si%d * %lld", len ? " + " : "",
                                  k, (long long)s);
        if (w > 0 && (size_t)w < cap - len) len += (size_t)w;
    }
    if (!len) snprintf(buf, cap, "0");
}

/* The loop nest walking output y, with operand strides of a and b. */
static int plan_loops(const kn_shape *a, const kn_shape *b, const kn_shape *y, loop_dim *L)
{
    int r = y->rank;

    /* Contiguous element strides of each operand, in operand dims. */
    int64_t sa[KN_MAX_RANK], sb[KN_MAX_RANK], sy[KN_MAX_RANK];
    for (int k = r - 1; k >= 0; k--) {
        sy[k] = k == r - 1 ? 1 : sy[k + 1] * (y->d[k + 1] == KN_DIM_N ? 1 : y->d[k + 1]);
    }
    int64_t acc_a = 1, acc_b = 1;
    for (int k = r - 1; k >= 0; k--) {
        int64_t da = aligned_dim(a, r, k), db = aligned_dim(b, r, k);
        sa[k] = (da == y->d[k]) ? acc_a : 0;
        sb[k] = (db == y->d[k]) ? acc_b : 0;
        if (da != KN_DIM_N) acc_a *= da;
        if (db != KN_DIM_N) acc_b *= db;
    }

    /* Drop size-1 output dims, merge neighbours that broadcast alike. */
    int nl = 0;
    for (int k = 0; k < r; k++) {
        if (y->d[k] == 1) continue;
        bool ba = sa[k] == 0, bb = sb[k] == 0;
        if (nl > 0 && (L[nl - 1].stride_a == 0) == ba && (L[nl - 1].stride_b == 0) == bb) {
            loop_dim *p = &L[nl - 1];
            if (y->d[k] == KN_DIM_N) p->batch = true; else p->extent *= y->d[k];
            p->stride_a = sa[k];
            p->stride_b = sb[k];
            p->stride_y = sy[k];
            continue;
        }
        L[nl].extent = y->d[k] == KN_DIM_N ? 1 : y->d[k];
        L[nl].batch = y->d[k] == KN_DIM_N;
        L[nl].stride_a = sa[k];
        L[nl].stride_b = sb[k];
        L[nl].stride_y = sy[k];
        nl++;
    }
    return nl;
}

static void loop_extent(const loop_dim *l, char *ext, size_t cap)
{
    if (!l->batch) snprintf(ext, cap, "%lld", (long long)l->extent);
    else if (l->extent == 1) snprintf(ext, cap, "(size_t)n");
    else snprintf(ext, cap, "(size_t)n * %lld", (long long)l->extent);
}

/* On the GPU the nest is one grid-stride loop over all its iterations,
 * each thread recovering i0..i{nl-1} from the flat index. */
static void open_loops_cuda(kn_emit *e, const loop_dim *L, int nl)
{
    kn_strbuf total;
    kn_sb_init(&total);
    kn_sb_puts(&total, "(size_t)1");
    for (int k = 0; k < nl; k++) {
        char ext[64];
        loop_extent(&L[k], ext, sizeof ext);
        kn_sb_printf(&total, " * (%s)", ext);
    }
    kn_emit_for_open(e, "f", total.s);
    kn_sb_free(&total);
    kn_emit_line(e, "size_t rest = f; (void)rest;");
    for (int k = nl - 1; k >= 0; k--) {
        char ext[64];
        loop_extent(&L[k], ext, sizeof ext);
        if (k > 0) kn_emit_line(e, "const size_t i%d = rest %% (%s); rest /= (%s);", k, ext, ext);
        else kn_emit_line(e, "const size_t i0 = rest;");
    }
}

static void open_loops(kn_emit *e, const loop_dim *L, int nl)
{
    if (kn_emit_is_cuda(e)) {
        open_loops_cuda(e, L, nl);
        return;
    }
    for (int k = 0; k < nl; k++) {
        char ext[64];
        loop_extent(&L[k], ext, sizeof ext);
        kn_emit_line(e, "for (size_t i%d = 0; i%d < %s; i%d++)", k, k, ext, k);
        e->indent++;
    }
}

static void close_loops(kn_emit *e, int nl)
{
    if (kn_emit_is_cuda(e)) kn_emit_close(e);
    else e->indent -= nl;
}

static kn_status emit_binary(kn_emit *e, const kn_graph *g, const kn_node *n, char op)
{
    const kn_shape *a = &kn_graph_value(g, n->in[0])->shape;
    const kn_shape *b = &kn_graph_value(g, n->in[1])->shape;
    const kn_shape *y = &kn_graph_value(g, n->out[0])->shape;
    loop_dim L[KN_MAX_RANK];
    int nl = plan_loops(a, b, y, L);

    char work[64];
    kn_emit_numel(e, n->out[0], work, sizeof work);
    kn_emit_cuda_kernel(e, work); /* GPU: one thread per element of the loop nest */
    kn_emit_bind_in(e, "A", n->in[0]);
    kn_emit_bind_in(e, "B", n->in[1]);
    kn_emit_bind_out(e, "C", n->out[0]);
    open_loops(e, L, nl);
    char ia[256], ib[256], iy[256];
    index_expr(L, nl, 0, ia, sizeof ia);
    index_expr(L, nl, 1, ib, sizeof ib);
    index_expr(L, nl, 2, iy, sizeof iy);
    kn_emit_line(e, "C[%s] = A[%s] %c B[%s];", iy, ia, op, ib);
    close_loops(e, nl);
    kn_emit_cuda_end(e);
    return KN_OK;
}

/* Function-like binaries: C[i] = <expr of a = A[ia], b = B[ib]>. */
static const char *func_expr(int op)
{
    switch (op) {
    case KN_OP_MAX: return "a > b || a != a ? a : b";
    case KN_OP_MIN: return "a < b || a != a ? a : b";
    default: return "powf(a, b)";
    }
}

static kn_status emit_func(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_shape *a = &kn_graph_value(g, n->in[0])->shape;
    const kn_shape *b = &kn_graph_value(g, n->in[1])->shape;
    const kn_shape *y = &kn_graph_value(g, n->out[0])->shape;
    loop_dim L[KN_MAX_RANK];
    int nl = plan_loops(a, b, y, L);
    char work[64];
    kn_emit_numel(e, n->out[0], work, sizeof work);
    kn_emit_cuda_kernel(e, work); /* GPU: one thread per element of the loop nest */
    kn_emit_bind_in(e, "A", n->in[0]);
    kn_emit_bind_in(e, "B", n->in[1]);
    kn_emit_bind_out(e, "C", n->out[0]);
    open_loops(e, L, nl);
    char ia[256], ib[256], iy[256];
    index_expr(L, nl, 0, ia, sizeof ia);
    index_expr(L, nl, 1, ib, sizeof ib);
    index_expr(L, nl, 2, iy, sizeof iy);
    kn_emit_line(e, "{ const float a = A[%s], b = B[%s]; C[%s] = %s; }", ia, ib, iy, func_expr(n->op));
    close_loops(e, nl);
    kn_emit_cuda_end(e);
    return KN_OK;
}

/* ---- binary_grad(dy, a, b, y): one operand's gradient before sum_to ---- */

static const char *func_grad_expr(int op, int which)
{
    switch (op) {
    case KN_OP_MAX: return which ? "b > a ? g : a == b ? 0.5f * g : 0.0f" : "a > b ? g : a == b ? 0.5f * g : 0.0f";
    case KN_OP_MIN: return which ? "b < a ? g : a == b ? 0.5f * g : 0.0f" : "a < b ? g : a == b ? 0.5f * g : 0.0f";
    default: /* pow, torch's rules: d/da = b a^(b-1); d/db = y log(a), 0 where a == 0 and b >= 0 */
        return which ? "a == 0.0f && b >= 0.0f ? 0.0f : g * y * logf(a)" : "g * b * powf(a, b - 1.0f)";
    }
}

static kn_status binary_grad_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    for (int i = 0; i < 4; i++)
        if (kn_ops_want_f32(d, g, n, i, "operand") != KN_OK) return KN_ERR;
    const kn_shape *y = &kn_graph_value(g, n->in[3])->shape;
    if (!kn_shape_equal(y, &kn_graph_value(g, n->in[0])->shape))
        return kn_op_error(d, g, n, "gradient and output shapes differ");
    kn_ops_set_out(g, n, 0, KN_F32, y);
    return KN_OK;
}

static kn_status binary_grad_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_shape *a = &kn_graph_value(g, n->in[1])->shape;
    const kn_shape *b = &kn_graph_value(g, n->in[2])->shape;
    const kn_shape *y = &kn_graph_value(g, n->in[3])->shape;
    loop_dim L[KN_MAX_RANK];
    int nl = plan_loops(a, b, y, L);
    char work[64];
    kn_emit_numel(e, n->in[3], work, sizeof work);
    kn_emit_cuda_kernel(e, work); /* GPU: one thread per element of the loop nest */
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_in(e, "A", n->in[1]);
    kn_emit_bind_in(e, "B", n->in[2]);
    kn_emit_bind_in(e, "Yf", n->in[3]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    open_loops(e, L, nl);
    char ia[256], ib[256], iy[256];
    index_expr(L, nl, 0, ia, sizeof ia);
    index_expr(L, nl, 1, ib, sizeof ib);
    index_expr(L, nl, 2, iy, sizeof iy);
    kn_emit_line(e, "{ const float a = A[%s], b = B[%s], g = dY[%s], y = Yf[%s]; (void)y; dX[%s] = %s; }", ia, ib,
                 iy, iy, iy, func_grad_expr((int)kn_node_attr_i(n, "fn", KN_OP_MAX), (int)kn_node_attr_i(n, "which", 0)));
    close_loops(e, nl);
    kn_emit_cuda_end(e);
    return KN_OK;
}

/* Inside an elementwise run (operands of the output's shape or single
 * elements, so no index arithmetic): the same expressions as above. */
static void elem_binary(kn_emit *e, const kn_node *n, const char *const *in, const char *out)
{
    char op = n->op == KN_OP_ADD ? '+' : n->op == KN_OP_SUB ? '-' : n->op == KN_OP_MUL ? '*' : '/';
    kn_emit_line(e, "%s = %s %c %s;", out, in[0], op, in[1]);
}

static void elem_arith(kn_emit *e, const kn_graph *g, const kn_node *n, const char *const *in, const char *out)
{
    (void)g;
    elem_binary(e, n, in, out);
}

static void elem_func(kn_emit *e, const kn_graph *g, const kn_node *n, const char *const *in, const char *out)
{
    (void)g;
    kn_emit_line(e, "{ const float a = %s, b = %s; %s = %s; }", in[0], in[1], out, func_expr(n->op));
}

static kn_status emit_add(kn_emit *e, const kn_graph *g, const kn_node *n) { return emit_binary(e, g, n, '+'); }
static kn_status emit_sub(kn_emit *e, const kn_graph *g, const kn_node *n) { return emit_binary(e, g, n, '-'); }
static kn_status emit_mul(kn_emit *e, const kn_graph *g, const kn_node *n) { return emit_binary(e, g, n, '*'); }
static kn_status emit_div(kn_emit *e, const kn_graph *g, const kn_node *n) { return emit_binary(e, g, n, '/'); }

/* ---- sum_to(dy, shape=..., scale=1): the gradient of broadcasting ----
 * Sums dy over the dims the target shape was broadcast along (including the
 * batch dim when the target is unbatched) and multiplies by `scale`. */

static kn_status sum_to_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "gradient") != KN_OK) return KN_ERR;
    kn_shape t, b;
    if (!kn_ops_shape_attr(n, "shape", &t))
        return kn_op_error(d, g, n, "needs the target shape as attribute 'shape'");
    const kn_shape *dy = &kn_graph_value(g, n->in[0])->shape;
    if (kn_broadcast_shapes(&t, dy, &b, n, g, d) != KN_OK) return KN_ERR;
    if (!kn_shape_equal(&b, dy)) {
        char s1[128], s2[128];
        kn_shape_format(KN_F32, &t, s1, sizeof s1);
        kn_ops_fmt(g, n->in[0], s2, sizeof s2);
        return kn_op_error(d, g, n, "%s does not broadcast to the gradient's shape %s", s1, s2);
    }
    kn_ops_set_out(g, n, 0, KN_F32, &t);
    return KN_OK;
}

/* GPU sum_to: one thread per element of dX, looping over the broadcast
 * (summed) dims in the CPU loop's order, so each sum adds the same terms in
 * the same order as the CPU and gives the same bits.  `sc`: NULL for 1. */
static kn_status sum_to_emit_kernel(kn_emit *e, const kn_node *n, const loop_dim *L, int nl, const char *numel,
                                    const char *sc)
{
    char it[256], iy[256];
    kn_emit_cuda_kernel(e, numel);
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    kn_emit_for_open(e, "f", numel);
    kn_emit_line(e, "size_t rest = f; (void)rest;");
    for (int k = nl - 1; k >= 0; k--) { /* kept dims: from dX's flat index */
        if (L[k].stride_a == 0) continue;
        char ext[64];
        loop_extent(&L[k], ext, sizeof ext);
        kn_emit_line(e, "const size_t i%d = rest %% (%s); rest /= (%s);", k, ext, ext);
    }
    kn_emit_line(e, "float acc = 0.0f;");
    int summed = 0;
    for (int k = 0; k < nl; k++) {
        if (L[k].stride_a != 0) continue;
        char ext[64];
        loop_extent(&L[k], ext, sizeof ext);
        kn_emit_line(e, "for (size_t i%d = 0; i%d < %s; i%d++)", k, k, ext, k);
        e->indent++;
        summed++;
    }
    index_expr(L, nl, 0, it, sizeof it);
    index_expr(L, nl, 2, iy, sizeof iy);
    if (sc) kn_emit_line(e, "acc += %s * dY[%s];", sc, iy);
    else kn_emit_line(e, "acc += dY[%s];", iy);
    e->indent -= summed;
    kn_emit_line(e, "dX[%s] = acc;", it);
    kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static kn_status sum_to_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_shape *t = &kn_graph_value(g, n->out[0])->shape;
    const kn_shape *dy = &kn_graph_value(g, n->in[0])->shape;
    loop_dim L[KN_MAX_RANK];
    int nl = plan_loops(t, dy, dy, L);
    char numel[64], it[256], iy[256], sc[64];
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    double scale = kn_ops_attr_num(n, "scale", 1.0);
    kn_emit_float_lit(scale, sc, sizeof sc);
    if (kn_emit_is_cuda(e)) return sum_to_emit_kernel(e, n, L, nl, numel, scale == 1.0 ? NULL : sc);
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    kn_emit_line(e, "memset(dX, 0, %s * sizeof(float));", numel);
    open_loops(e, L, nl);
    index_expr(L, nl, 0, it, sizeof it);
    index_expr(L, nl, 2, iy, sizeof iy);
    if (scale == 1.0) kn_emit_line(e, "dX[%s] += dY[%s];", it, iy);
    else kn_emit_line(e, "dX[%s] += %s * dY[%s];", it, sc, iy);
    e->indent -= nl;
    return KN_OK;
}

/* ---- gradients ---- */

/* `scale` * gv reduced to the shape of `operand`: gv itself when the shapes
 * already match and scale is 1. */
static int reduce_to(kn_graph *g, const kn_node *n, const char *tag, int gv, int operand,
                     double scale, kn_diag *d)
{
    const kn_shape *s = &kn_graph_value(g, operand)->shape;
    if (scale == 1.0 && kn_shape_equal(s, &kn_graph_value(g, gv)->shape)) return gv;
    kn_node *r = kn_ops_grad_node(g, n, KN_OP_SUM_TO, tag, &gv, 1, 1);
    kn_ops_set_shape_attr(r, "shape", s);
    if (scale != 1.0) kn_node_set_attr_f(r, "scale", scale);
    return kn_ops_grad_done(g, r, d);
}

/* A binary node `op`(x, y) for a gradient rule. */
static int grad_binary(kn_graph *g, const kn_node *n, int op, const char *tag, int x, int y,
                       kn_diag *d)
{
    int in[2] = {x, y};
    return kn_ops_grad_done(g, kn_ops_grad_node(g, n, op, tag, in, 2, 1), d);
}

static kn_status binary_grad(kn_graph *g, const kn_node *n, const int *dy,
                             const bool *need, int *dx, kn_diag *d)
{
    int a = n->in[0], b = n->in[1], y = n->out[0], gy = dy[0];
    dx[0] = dx[1] = -1;
    if (gy < 0 || (!need[0] && !need[1])) return KN_OK;
    int ga = gy, gb = gy; /* gradient before reduction to each operand's shape */
    double sb = 1.0;
    switch (n->op) {
    case KN_OP_ADD: break;
    case KN_OP_SUB: sb = -1.0; break;
    case KN_OP_MUL: /* da = dy * b, db = dy * a */
        if (need[0] && (ga = grad_binary(g, n, KN_OP_MUL, "a_full", gy, b, d)) < 0) return KN_ERR;
        if (need[1] && (gb = grad_binary(g, n, KN_OP_MUL, "b_full", gy, a, d)) < 0) return KN_ERR;
        break;
    case KN_OP_MAX:
    case KN_OP_MIN:
    case KN_OP_POW:
        for (int k = 0; k < 2; k++) {
            if (!need[k]) continue;
            int in[4] = {gy, a, b, y};
            kn_node *gn = kn_ops_grad_node(g, n, KN_OP_BINARY_GRAD, k ? "b_full" : "a_full", in, 4, 1);
            kn_node_set_attr_i(gn, "fn", n->op);
            kn_node_set_attr_i(gn, "which", k);
            if ((*(k ? &gb : &ga) = kn_ops_grad_done(g, gn, d)) < 0) return KN_ERR;
        }
        break;
    case KN_OP_DIV: /* da = dy / b, db = -dy * a / b^2 = -(dy / b) * y */
        if ((ga = grad_binary(g, n, KN_OP_DIV, "a_full", gy, b, d)) < 0) return KN_ERR;
        if (need[1] && (gb = grad_binary(g, n, KN_OP_MUL, "b_full", ga, y, d)) < 0) return KN_ERR;
        sb = -1.0;
        break;
    default: return kn_op_error(d, g, n, "internal: no gradient rule");
    }
    if (need[0] && (dx[0] = reduce_to(g, n, "a", ga, a, 1.0, d)) < 0) return KN_ERR;
    if (need[1] && (dx[1] = reduce_to(g, n, "b", gb, b, sb, d)) < 0) return KN_ERR;
    return KN_OK;
}


const kn_op_def kn_op_def_add = {
    .name = "add", .min_inputs = 2, .max_inputs = 2, .infer = infer_binary, .emit_c = emit_add, .emit_cuda = emit_add,
    .emit_elem = elem_arith, .grad = binary_grad,
};
const kn_op_def kn_op_def_sub = {
    .name = "sub", .min_inputs = 2, .max_inputs = 2, .infer = infer_binary, .emit_c = emit_sub, .emit_cuda = emit_sub,
    .emit_elem = elem_arith, .grad = binary_grad,
};
const kn_op_def kn_op_def_mul = {
    .name = "mul", .min_inputs = 2, .max_inputs = 2, .infer = infer_binary, .emit_c = emit_mul, .emit_cuda = emit_mul,
    .emit_elem = elem_arith, .grad = binary_grad,
};
const kn_op_def kn_op_def_div = {
    .name = "div", .min_inputs = 2, .max_inputs = 2, .infer = infer_binary, .emit_c = emit_div, .emit_cuda = emit_div,
    .emit_elem = elem_arith, .grad = binary_grad,
};
const kn_op_def kn_op_def_max = {
    .name = "max", .min_inputs = 2, .max_inputs = 2, .infer = infer_binary, .emit_c = emit_func, .emit_cuda = emit_func,
    .emit_elem = elem_func, .grad = binary_grad,
};
const kn_op_def kn_op_def_min = {
    .name = "min", .min_inputs = 2, .max_inputs = 2, .infer = infer_binary, .emit_c = emit_func, .emit_cuda = emit_func,
    .emit_elem = elem_func, .grad = binary_grad,
};
const kn_op_def kn_op_def_pow = {
    .name = "pow", .min_inputs = 2, .max_inputs = 2, .infer = infer_binary, .emit_c = emit_func, .emit_cuda = emit_func,
    .emit_elem = elem_func, .grad = binary_grad,
};
const kn_op_def kn_op_def_binary_grad = {
    .name = "binary_grad", .min_inputs = 4, .max_inputs = 4,
    .infer = binary_grad_infer, .emit_c = binary_grad_emit, .emit_cuda = binary_grad_emit, .internal = true,
};
const kn_op_def kn_op_def_sum_to = {
    .name = "sum_to", .min_inputs = 1, .max_inputs = 1,
    .infer = sum_to_infer, .emit_c = sum_to_emit, .emit_cuda = sum_to_emit,
    .internal = true,
};

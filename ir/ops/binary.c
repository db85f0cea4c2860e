/* binary.c — elementwise add, sub, mul, div with NumPy broadcasting.
 *
 * Shapes broadcast from the right (kn_broadcast_shapes); the batch dim N may
 * only end up as dim 0 of the result.  Emission walks the output with one
 * loop per group of adjacent dims that broadcast the same way, so the common
 * cases collapse to a single flat loop (same shapes, or a scalar operand) or
 * two loops (a [C] bias on [N, C]).  Both operands must be f32.
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

static kn_status emit_binary(kn_emit *e, const kn_graph *g, const kn_node *n, char op)
{
    const kn_shape *a = &kn_graph_value(g, n->in[0])->shape;
    const kn_shape *b = &kn_graph_value(g, n->in[1])->shape;
    const kn_shape *y = &kn_graph_value(g, n->out[0])->shape;
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
    loop_dim L[KN_MAX_RANK];
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

    kn_emit_bind_in(e, "A", n->in[0]);
    kn_emit_bind_in(e, "B", n->in[1]);
    kn_emit_bind_out(e, "C", n->out[0]);
    for (int k = 0; k < nl; k++) {
        char ext[64];
        if (!L[k].batch) snprintf(ext, sizeof ext, "%lld", (long long)L[k].extent);
        else if (L[k].extent == 1) snprintf(ext, sizeof ext, "(size_t)n");
        else snprintf(ext, sizeof ext, "(size_t)n * %lld", (long long)L[k].extent);
        kn_emit_line(e, "for (size_t i%d = 0; i%d < %s; i%d++)", k, k, ext, k);
        e->indent++;
    }
    char ia[256], ib[256], iy[256];
    index_expr(L, nl, 0, ia, sizeof ia);
    index_expr(L, nl, 1, ib, sizeof ib);
    index_expr(L, nl, 2, iy, sizeof iy);
    kn_emit_line(e, "C[%s] = A[%s] %c B[%s];", iy, ia, op, ib);
    e->indent -= nl;
    return KN_OK;
}

static kn_status emit_add(kn_emit *e, const kn_graph *g, const kn_node *n) { return emit_binary(e, g, n, '+'); }
static kn_status emit_sub(kn_emit *e, const kn_graph *g, const kn_node *n) { return emit_binary(e, g, n, '-'); }
static kn_status emit_mul(kn_emit *e, const kn_graph *g, const kn_node *n) { return emit_binary(e, g, n, '*'); }
static kn_status emit_div(kn_emit *e, const kn_graph *g, const kn_node *n) { return emit_binary(e, g, n, '/'); }

const kn_op_def kn_op_def_add = {
    .name = "add", .min_inputs = 2, .max_inputs = 2, .infer = infer_binary, .emit_c = emit_add,
};
const kn_op_def kn_op_def_sub = {
    .name = "sub", .min_inputs = 2, .max_inputs = 2, .infer = infer_binary, .emit_c = emit_sub,
};
const kn_op_def kn_op_def_mul = {
    .name = "mul", .min_inputs = 2, .max_inputs = 2, .infer = infer_binary, .emit_c = emit_mul,
};
const kn_op_def kn_op_def_div = {
    .name = "div", .min_inputs = 2, .max_inputs = 2, .infer = infer_binary, .emit_c = emit_div,
};

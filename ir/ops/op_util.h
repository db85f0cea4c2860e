/* op_util.h — small checks and emission helpers shared by the op files.
 *
 * Header-only and private to ir/ops/: dtype checks that name the offending
 * tensor, dim normalisation with PyTorch's negative-dim rule, reading number
 * attributes written either as INT or FLOAT, and building C size expressions
 * where only dim 0 may be the runtime batch size `n`.  Nothing here knows a
 * particular op.
 */
#ifndef KN_OP_UTIL_H
#define KN_OP_UTIL_H

#include "op.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* "f32[N,784]" of value `vid`. */
static inline void kn_ops_fmt(const kn_graph *g, int vid, char *buf, size_t cap)
{
    const kn_value *v = kn_graph_value(g, vid);
    kn_shape_format(v->dtype, &v->shape, buf, cap);
}

/* Input `i` must exist and have a known shape (a frontend/pass bug otherwise). */
static inline kn_status kn_ops_want_input(kn_diag *d, const kn_graph *g,
                                          const kn_node *n, int i)
{
    if (i >= n->n_in)
        return kn_op_error(d, g, n, "expects at least %d input(s), got %d",
                           i + 1, n->n_in);
    const kn_value *v = kn_graph_value(g, n->in[i]);
    if (!v->shape_known)
        return kn_op_error(d, g, n, "input '%s' has no known shape", v->name);
    return KN_OK;
}

/* Input `i` must be a f32 tensor; `role` says which ("input", "logits"). */
static inline kn_status kn_ops_want_f32(kn_diag *d, const kn_graph *g,
                                        const kn_node *n, int i, const char *role)
{
    if (kn_ops_want_input(d, g, n, i) != KN_OK) return KN_ERR;
    const kn_value *v = kn_graph_value(g, n->in[i]);
    if (v->dtype == KN_F32) return KN_OK;
    char s[128];
    kn_ops_fmt(g, n->in[i], s, sizeof s);
    return kn_op_error(d, g, n, "expects a f32 %s, got '%s' of type %s",
                       role, v->name, s);
}

/* Maps a PyTorch dim (negative counts from the end) into [0, rank). */
static inline kn_status kn_ops_norm_dim(kn_diag *d, const kn_graph *g,
                                        const kn_node *n, int vid, int64_t dim,
                                        int *out)
{
    const kn_value *v = kn_graph_value(g, vid);
    int rank = v->shape.rank;
    int64_t k = dim < 0 ? dim + rank : dim;
    if (rank == 0 || k < 0 || k >= rank) {
        char s[128];
        kn_ops_fmt(g, vid, s, sizeof s);
        return kn_op_error(d, g, n, "dim %lld is out of range for '%s' of type %s (rank %d)",
                           (long long)dim, v->name, s, rank);
    }
    *out = (int)k;
    return KN_OK;
}

/* A number attribute the user may have written as 1 or 1.0. */
static inline double kn_ops_attr_num(const kn_node *n, const char *name, double dflt)
{
    const kn_attr *a = kn_node_attr(n, name);
    if (!a) return dflt;
    if (a->kind == KN_ATTR_FLOAT) return a->f;
    if (a->kind == KN_ATTR_INT || a->kind == KN_ATTR_BOOL) return (double)a->i;
    return dflt;
}

/* Sets output `k` of the node. */
static inline void kn_ops_set_out(kn_graph *g, const kn_node *n, int k,
                                  kn_dtype dt, const kn_shape *s)
{
    kn_value *y = kn_graph_value(g, n->out[k]);
    y->dtype = dt;
    y->shape = *s;
    y->shape_known = true;
}

/* C expression for the product of dims [from, to) of value `vid`, where only
 * dim 0 can be the runtime batch size `n`.  As size_t (`as_int` false):
 * "1", "784", "(size_t)n", "((size_t)n * 784)"; as int for kn_rt_sgemm's
 * sizes (`as_int` true): "784", "n", "n * 3". */
static inline void kn_ops_dims_expr_as(kn_emit *e, int vid, int from, int to, bool as_int,
                                       char *buf, size_t cap)
{
    const kn_value *v = kn_graph_value(e->g, vid);
    int64_t c = 1;
    bool sym = false;
    for (int i = from; i < to; i++) {
        if (v->shape.d[i] == KN_DIM_N) sym = true;
        else c *= v->shape.d[i];
    }
    if (!sym) snprintf(buf, cap, "%lld", (long long)c);
    else if (c == 1) snprintf(buf, cap, as_int ? "n" : "(size_t)n");
    else snprintf(buf, cap, as_int ? "n * %lld" : "((size_t)n * %lld)", (long long)c);
}

static inline void kn_ops_dims_expr(kn_emit *e, int vid, int from, int to,
                                    char *buf, size_t cap)
{
    kn_ops_dims_expr_as(e, vid, from, to, false, buf, cap);
}

static inline void kn_ops_dims_int_expr(kn_emit *e, int vid, int from, int to,
                                        char *buf, size_t cap)
{
    kn_ops_dims_expr_as(e, vid, from, to, true, buf, cap);
}

/* Product of the constant dims [from, to) (the batch dim counts as 1). */
static inline int64_t kn_ops_dims_const(const kn_shape *s, int from, int to)
{
    int64_t c = 1;
    for (int i = from; i < to; i++)
        if (s->d[i] != KN_DIM_N) c *= s->d[i];
    return c;
}

/* ---- gradient rules ---- */

/* Adds the backward node "<fwd>.grad.<tag>" of `op` reading `in`.  The
 * caller sets its attributes, then calls kn_ops_grad_done. */
static inline kn_node *kn_ops_grad_node(kn_graph *g, const kn_node *fwd, int op,
                                        const char *tag, const int *in, int n_in,
                                        int n_out)
{
    char name[512];
    snprintf(name, sizeof name, "%s.grad.%s", fwd->name, tag);
    return kn_graph_add_node(g, op, name, in, n_in, n_out);
}

/* Runs the shape rule of a node from kn_ops_grad_node; its first output's
 * id, or -1 with a diag. */
static inline int kn_ops_grad_done(kn_graph *g, kn_node *n, kn_diag *d)
{
    return kn_op_finish(g, n, d) == KN_OK ? n->out[0] : -1;
}

/* Stores a shape as an INTS attribute (the batch dim as -1, KN_DIM_N). */
static inline void kn_ops_set_shape_attr(kn_node *n, const char *name, const kn_shape *s)
{
    kn_node_set_attr_ints(n, name, s->d, s->rank);
}

/* Reads a shape stored by kn_ops_set_shape_attr; false when absent. */
static inline bool kn_ops_shape_attr(const kn_node *n, const char *name, kn_shape *s)
{
    const kn_attr *a = kn_node_attr(n, name);
    if (!a || a->kind != KN_ATTR_INTS || a->n > KN_MAX_RANK) return false;
    s->rank = a->n;
    for (int i = 0; i < a->n; i++) s->d[i] = a->ints[i];
    return true;
}

/* Emits, inside a loop over the flat index `i` of y's leading (matrix
 * batch) dims, `ia` and `ib`: the matching matrix indices of operands a
 * and b under torch.matmul's broadcasting.  Shared by matmul and its
 * gradient. */
static inline void kn_ops_emit_matmul_bcast(kn_emit *e, const kn_shape *a, const kn_shape *b,
                                            const kn_shape *y)
{
    int lr = y->rank - 2;
    kn_emit_line(e, "size_t rest = i, ia = 0, ib = 0;");
    int64_t stride_a = 1, stride_b = 1;
    for (int k2 = lr - 1; k2 >= 0; k2--) {
        int ja = k2 - (lr - (a->rank - 2)), jb = k2 - (lr - (b->rank - 2));
        int64_t da = ja < 0 ? 1 : a->d[ja], db = jb < 0 ? 1 : b->d[jb];
        char ext[32];
        if (y->d[k2] == KN_DIM_N) snprintf(ext, sizeof ext, "(size_t)n");
        else snprintf(ext, sizeof ext, "%lld", (long long)y->d[k2]);
        if (k2 > 0) kn_emit_line(e, "size_t j%d = rest %% %s; rest /= %s;", k2, ext, ext);
        else kn_emit_line(e, "size_t j%d = rest;", k2);
        if (da == y->d[k2] && y->d[k2] != 1) kn_emit_line(e, "ia += j%d * %lld;", k2, (long long)stride_a);
        if (db == y->d[k2] && y->d[k2] != 1) kn_emit_line(e, "ib += j%d * %lld;", k2, (long long)stride_b);
        if (da != KN_DIM_N) stride_a *= da;
        if (db != KN_DIM_N) stride_b *= db;
    }
}

/* Bound on kernel/stride/padding/dilation: keeps every size product of the
 * spatial ops far inside int64. */
#define KN_OPS_SPATIAL_MAX (1 << 20)

/* An int-or-pair attribute of the spatial ops: kernel=3, kernel=(3, 5).
 * Absent or empty = (dflt[0], dflt[1]); each value must be in
 * [min, KN_OPS_SPATIAL_MAX]. */
static inline kn_status kn_ops_int_pair(kn_diag *d, const kn_graph *g, const kn_node *n,
                                        const char *name, const int64_t dflt[2], int64_t min,
                                        int64_t out[2])
{
    const kn_attr *a = kn_node_attr(n, name);
    out[0] = dflt[0], out[1] = dflt[1];
    if (a && a->kind == KN_ATTR_INT) {
        out[0] = out[1] = a->i;
    } else if (a && a->kind == KN_ATTR_INTS && a->n == 1) {
        out[0] = out[1] = a->ints[0];
    } else if (a && a->kind == KN_ATTR_INTS && a->n == 2) {
        out[0] = a->ints[0];
        out[1] = a->ints[1];
    } else if (a && !(a->kind == KN_ATTR_INTS && a->n == 0)) {
        return kn_op_error(d, g, n, "%s must be one integer or a pair (h, w), got %d values", name,
                           a->kind == KN_ATTR_INTS ? a->n : 0);
    }
    if (out[0] < min || out[1] < min || out[0] > KN_OPS_SPATIAL_MAX || out[1] > KN_OPS_SPATIAL_MAX)
        return kn_op_error(d, g, n, "%s must be in [%lld, %d], got (%lld, %lld)", name, (long long)min,
                           KN_OPS_SPATIAL_MAX, (long long)out[0], (long long)out[1]);
    return KN_OK;
}

/* Input `i` must be f32[N, C, H, W] with fixed C, H, W. */
static inline kn_status kn_ops_want_nchw(kn_diag *d, const kn_graph *g, const kn_node *n, int i,
                                         const char *role)
{
    if (kn_ops_want_f32(d, g, n, i, role) != KN_OK) return KN_ERR;
    const kn_shape *s = &kn_graph_value(g, n->in[i])->shape;
    if (s->rank == 4 && s->d[1] > 0 && s->d[2] > 0 && s->d[3] > 0) return KN_OK;
    char t[128];
    kn_ops_fmt(g, n->in[i], t, sizeof t);
    return kn_op_error(d, g, n, "expects a f32[N, C, H, W] %s, got %s", role, t);
}

/* Opens one `for (size_t iK ...)` loop per dim of `s` (the batch dim runs to
 * n), innermost last; the caller prints the body and closes them with
 * kn_ops_close_loops(e, s->rank).  Used by the layout ops (transpose, pad,
 * concat/slice) whose index maps are not a single flat loop. */
static inline void kn_ops_open_loops(kn_emit *e, const kn_shape *s)
{
    if (kn_emit_is_cuda(e)) {
        /* In a CUDA kernel: one grid-stride loop over the flat output index
         * f, split into i0..i{rank-1}; the callers' running output index
         * `o` (row-major over the same dims) is f itself. */
        char total[256] = "(size_t)1", ext[48];
        size_t len = strlen(total);
        for (int k = 0; k < s->rank; k++) {
            if (s->d[k] == KN_DIM_N) snprintf(ext, sizeof ext, " * (size_t)n");
            else snprintf(ext, sizeof ext, " * %lld", (long long)s->d[k]);
            if (len + strlen(ext) < sizeof total) strcat(total, ext), len += strlen(ext);
        }
        kn_emit_for_open(e, "f", total);
        kn_emit_line(e, "size_t rest = f; (void)rest;");
        for (int k = s->rank - 1; k >= 0; k--) {
            if (s->d[k] == KN_DIM_N) snprintf(ext, sizeof ext, "(size_t)n");
            else snprintf(ext, sizeof ext, "%lld", (long long)s->d[k]);
            kn_emit_line(e, "const size_t i%d = rest %% %s; rest /= %s;", k, ext, ext);
        }
        kn_emit_line(e, "o = f;");
        return;
    }
    for (int k = 0; k < s->rank; k++) {
        if (s->d[k] == KN_DIM_N) kn_emit_line(e, "for (size_t i%d = 0; i%d < (size_t)n; i%d++)", k, k, k);
        else kn_emit_line(e, "for (size_t i%d = 0; i%d < %lld; i%d++)", k, k, (long long)s->d[k], k);
        e->indent++;
    }
}

static inline void kn_ops_close_loops(kn_emit *e, int rank)
{
    if (kn_emit_is_cuda(e)) kn_emit_close(e);
    else e->indent -= rank;
}

/* Row-major element strides of `s` (the batch dim's stride is constant:
 * only dims after it enter the product). */
static inline void kn_ops_strides(const kn_shape *s, int64_t *st)
{
    int64_t acc = 1;
    for (int k = s->rank - 1; k >= 0; k--) {
        st[k] = acc;
        if (s->d[k] != KN_DIM_N) acc *= s->d[k];
    }
}

/* A clamp fused into an op's store (the clip/relu that passes fold into
 * conv2d and inverted_residual): the bounds as C float literals, "" where
 * unbounded. */
typedef struct {
    char lo[48], hi[48];
} kn_ops_clamp;

/* Reads the clamp from number attributes `min`/`max` (absent: unbounded);
 * true when either side is bounded. */
static inline bool kn_ops_read_clamp(const kn_node *n, const char *min, const char *max, kn_ops_clamp *c)
{
    double lo = kn_ops_attr_num(n, min, -INFINITY), hi = kn_ops_attr_num(n, max, INFINITY);
    c->lo[0] = c->hi[0] = 0;
    if (lo > -INFINITY) kn_emit_float_lit(lo, c->lo, sizeof c->lo);
    if (hi < INFINITY) kn_emit_float_lit(hi, c->hi, sizeof c->hi);
    return c->lo[0] || c->hi[0];
}

/* Prints `dst = clamp(v)` for a float variable v, with clip's NaN rule
 * (NaN passes through). */
static inline void kn_ops_emit_clamp_store(kn_emit *e, const kn_ops_clamp *c, const char *dst)
{
    if (c->lo[0] && c->hi[0])
        kn_emit_line(e, "%s = v < %s ? %s : v > %s ? %s : v;", dst, c->lo, c->lo, c->hi, c->hi);
    else if (c->lo[0]) kn_emit_line(e, "%s = v < %s ? %s : v;", dst, c->lo, c->lo);
    else if (c->hi[0]) kn_emit_line(e, "%s = v > %s ? %s : v;", dst, c->hi, c->hi);
    else kn_emit_line(e, "%s = v;", dst);
}

/* Prints the epilogue over `rows` channel rows of a GEMM result, `cols`
 * floats each (C expressions): row o at `y_row` (an expression in o) gets
 * its bias `bias` (an expression in o), the residual row at `r_row` (NULL:
 * none), then the clamp, each output written once: v = Y + bias + R. */
static inline void kn_ops_emit_row_epilogue(kn_emit *e, const char *rows, const char *cols, const char *y_row,
                                            const char *bias, const char *r_row, const kn_ops_clamp *c)
{
    kn_emit_line(e, "for (size_t o = 0; o < %s; o++) {", rows);
    e->indent++;
    kn_emit_line(e, "float *restrict Yo = %s;", y_row);
    if (r_row) kn_emit_line(e, "const float *restrict Ro = %s;", r_row);
    kn_emit_line(e, "const float bo = %s;", bias);
    kn_emit_line(e, "for (size_t i = 0; i < %s; i++) {", cols);
    e->indent++;
    kn_emit_line(e, "const float v = Yo[i] + bo%s;", r_row ? " + Ro[i]" : "");
    kn_ops_emit_clamp_store(e, c, "Yo[i]");
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
}

#endif

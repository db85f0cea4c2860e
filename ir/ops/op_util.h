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

/* C expression for the product of dims [from, to) of value `vid`:
 * "1", "784", "(size_t)n", "((size_t)n * 784)".  Only dim 0 can be `n`. */
static inline void kn_ops_dims_expr(kn_emit *e, int vid, int from, int to,
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
    else if (c == 1) snprintf(buf, cap, "(size_t)n");
    else snprintf(buf, cap, "((size_t)n * %lld)", (long long)c);
}

/* The same product as an int expression for kn_rt_sgemm's sizes:
 * "784", "n", "n * 3". */
static inline void kn_ops_dims_int_expr(kn_emit *e, int vid, int from, int to,
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
    else if (c == 1) snprintf(buf, cap, "n");
    else snprintf(buf, cap, "n * %lld", (long long)c);
}

/* Product of the constant dims [from, to) (the batch dim counts as 1). */
static inline int64_t kn_ops_dims_const(const kn_shape *s, int from, int to)
{
    int64_t c = 1;
    for (int i = from; i < to; i++)
        if (s->d[i] != KN_DIM_N) c *= s->d[i];
    return c;
}

#endif

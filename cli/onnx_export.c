/* onnx_export.c — an eval-mode IR graph as an ONNX ModelProto, see export.h.
 *
 * Every node that the model's outputs depend on becomes one ONNX node (a
 * few become two or three: gelu is spelled with Erf, a rank-2
 * global_avg_pool gets a Flatten) named after the kiln node; values keep
 * their kiln names.  Parameters, buffers and constants become initializers;
 * attributes that ONNX takes as inputs since opset 13 (Clip's bounds,
 * Reshape's shape, Slice's starts/ends, Pad's pads) become initializers
 * named `<node>.<what>`.  The batch dim is the symbolic dim "N".
 *
 * Not done: ops without an ONNX counterpart here (reductions, argmax,
 * losses, backward ops) are refused, naming every such node.  Every
 * protobuf-c object is allocated from one list freed at the end.
 */
#define _GNU_SOURCE
#include "export.h"
#include "../ir/ops/op_util.h"
#include "kiln_config.h"
#include "kn_rt_afile.h"
#include "onnx.pb-c.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    void **allocs;
    int n_allocs, cap_allocs;
    Onnx__GraphProto *graph;
    size_t cap_nodes, cap_inits;
    const kn_graph *g;
    kn_export_weights_fn weights;
    void *wctx;
    kn_diag *d;
} ex_ctx;

/* ---- allocation: everything is freed by ex_free ---- */

static void *ex_alloc(ex_ctx *x, size_t size)
{
    if (x->n_allocs == x->cap_allocs) {
        x->cap_allocs = x->cap_allocs ? x->cap_allocs * 2 : 256;
        x->allocs = kn_xrealloc(x->allocs, sizeof *x->allocs * (size_t)x->cap_allocs);
    }
    void *p = calloc(1, size ? size : 1);
    if (!p) abort();
    return x->allocs[x->n_allocs++] = p;
}

static char *ex_strdup(ex_ctx *x, const char *s)
{
    char *p = ex_alloc(x, strlen(s) + 1);
    memcpy(p, s, strlen(s) + 1);
    return p;
}

static char *ex_name(ex_ctx *x, const kn_node *n, const char *what)
{
    size_t len = strlen(n->name) + strlen(what) + 2;
    char *p = ex_alloc(x, len);
    snprintf(p, len, "%s.%s", n->name, what);
    return p;
}

static void ex_free(ex_ctx *x)
{
    for (int i = 0; i < x->n_allocs; i++) free(x->allocs[i]);
    free(x->allocs);
}

/* ---- building blocks ---- */

/* `arr` with room for one more element: doubled (arena memory) when full. */
static void *ex_room(ex_ctx *x, void *arr, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap) return arr;
    void *grown = ex_alloc(x, elem * *cap * 2);
    memcpy(grown, arr, elem * n);
    *cap *= 2;
    return grown;
}

static Onnx__NodeProto *ex_node(ex_ctx *x, const char *op_type, const char *name, const char *const *in, int n_in,
                                const char *out)
{
    Onnx__NodeProto *nd = ex_alloc(x, sizeof *nd);
    onnx__node_proto__init(nd);
    nd->op_type = ex_strdup(x, op_type);
    nd->name = ex_strdup(x, name);
    nd->n_input = (size_t)n_in;
    nd->input = ex_alloc(x, sizeof(char *) * (size_t)(n_in ? n_in : 1));
    for (int i = 0; i < n_in; i++) nd->input[i] = ex_strdup(x, in[i]);
    nd->n_output = 1;
    nd->output = ex_alloc(x, sizeof(char *));
    nd->output[0] = ex_strdup(x, out);
    nd->attribute = ex_alloc(x, sizeof(Onnx__AttributeProto *) * 8);
    Onnx__GraphProto *gp = x->graph;
    gp->node = ex_room(x, gp->node, gp->n_node, &x->cap_nodes, sizeof *gp->node);
    gp->node[gp->n_node++] = nd;
    return nd;
}

static Onnx__AttributeProto *ex_attr(ex_ctx *x, Onnx__NodeProto *nd, const char *name, Onnx__AttributeProto__AttributeType t)
{
    Onnx__AttributeProto *a = ex_alloc(x, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = ex_strdup(x, name);
    a->has_type = 1;
    a->type = t;
    nd->attribute[nd->n_attribute++] = a; /* at most 8 per node (Conv uses 5) */
    return a;
}

static void ex_attr_i(ex_ctx *x, Onnx__NodeProto *nd, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = ex_attr(x, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

static void ex_attr_f(ex_ctx *x, Onnx__NodeProto *nd, const char *name, double v)
{
    Onnx__AttributeProto *a = ex_attr(x, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = (float)v;
}

static void ex_attr_ints(ex_ctx *x, Onnx__NodeProto *nd, const char *name, const int64_t *v, int n)
{
    Onnx__AttributeProto *a = ex_attr(x, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)n;
    a->ints = ex_alloc(x, sizeof(int64_t) * (size_t)(n ? n : 1));
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
}

/* An initializer holding `data` (borrowed: it must outlive the pack). */
static void ex_init(ex_ctx *x, const char *name, kn_dtype dt, const int64_t *dims, int rank, const void *data,
                    size_t numel)
{
    Onnx__TensorProto *t = ex_alloc(x, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = ex_strdup(x, name);
    t->has_data_type = 1;
    t->data_type = dt == KN_I64 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64 : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->n_dims = (size_t)rank;
    t->dims = ex_alloc(x, sizeof(int64_t) * (size_t)(rank ? rank : 1));
    memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    t->has_raw_data = 1;
    t->raw_data.len = numel * kn_dtype_size(dt);
    t->raw_data.data = (uint8_t *)data;
    Onnx__GraphProto *gp = x->graph;
    gp->initializer = ex_room(x, gp->initializer, gp->n_initializer, &x->cap_inits, sizeof *gp->initializer);
    gp->initializer[gp->n_initializer++] = t;
}

/* A 1-D int64 initializer (copied). */
static void ex_init_ints(ex_ctx *x, const char *name, const int64_t *v, int n)
{
    int64_t *data = ex_alloc(x, sizeof(int64_t) * (size_t)(n ? n : 1)), dim = n;
    memcpy(data, v, sizeof(int64_t) * (size_t)n);
    ex_init(x, name, KN_I64, &dim, 1, data, (size_t)n);
}

/* A scalar f32 initializer (rank 0). */
static void ex_init_scalar(ex_ctx *x, const char *name, double v)
{
    float *data = ex_alloc(x, sizeof(float));
    *data = (float)v;
    ex_init(x, name, KN_F32, NULL, 0, data, 1);
}

static const char *vname(const ex_ctx *x, int vid) { return kn_graph_value(x->g, vid)->name; }

/* The node's inputs and first output by name. */
static Onnx__NodeProto *ex_node_io(ex_ctx *x, const kn_node *n, const char *op_type, int n_in)
{
    const char *in[KN_MAX_RANK + 4];
    for (int i = 0; i < n_in; i++) in[i] = vname(x, n->in[i]);
    return ex_node(x, op_type, n->name, in, n_in, vname(x, n->out[0]));
}

/* ---- value types ---- */

static Onnx__ValueInfoProto *ex_value_info(ex_ctx *x, const kn_value *v)
{
    Onnx__TensorShapeProto *sh = ex_alloc(x, sizeof *sh);
    onnx__tensor_shape_proto__init(sh);
    sh->n_dim = (size_t)v->shape.rank;
    sh->dim = ex_alloc(x, sizeof *sh->dim * (size_t)(v->shape.rank ? v->shape.rank : 1));
    for (int i = 0; i < v->shape.rank; i++) {
        Onnx__TensorShapeProto__Dimension *dm = sh->dim[i] = ex_alloc(x, sizeof *dm);
        onnx__tensor_shape_proto__dimension__init(dm);
        if (v->shape.d[i] == KN_DIM_N) {
            dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dm->dim_param = ex_strdup(x, "N");
        } else {
            dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dm->dim_value = v->shape.d[i];
        }
    }
    Onnx__TypeProto__Tensor *tt = ex_alloc(x, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = v->dtype == KN_I64 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64 : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    Onnx__TypeProto *tp = ex_alloc(x, sizeof *tp);
    onnx__type_proto__init(tp);
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    Onnx__ValueInfoProto *vi = ex_alloc(x, sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = ex_strdup(x, v->name);
    vi->type = tp;
    return vi;
}

/* ---- op converters ---- */

static kn_status cv_linear(ex_ctx *x, const kn_node *n)
{
    const kn_value *X = kn_graph_value(x->g, n->in[0]);
    if (X->shape.rank != 2)
        return kn_diag_fail(x->d, "node '%s' (linear): only rank-2 inputs export (as Gemm), got rank %d", n->name,
                            X->shape.rank);
    Onnx__NodeProto *nd = ex_node_io(x, n, "Gemm", n->n_in);
    ex_attr_i(x, nd, "transB", 1);
    return KN_OK;
}

static kn_status cv_batchnorm(ex_ctx *x, const kn_node *n)
{
    if (n->n_in != 5) return kn_diag_fail(x->d, "node '%s' (batchnorm): expected 5 inputs", n->name);
    Onnx__NodeProto *nd = ex_node_io(x, n, "BatchNormalization", 5);
    ex_attr_f(x, nd, "epsilon", kn_node_attr_f(n, "eps", 1e-5));
    return KN_OK;
}

/* gelu(x) = 0.5 x (1 + erf(x / sqrt 2)): ONNX has Gelu only from opset 20. */
static kn_status cv_gelu(ex_ctx *x, const kn_node *n)
{
    const char *X = vname(x, n->in[0]);
    char *s2 = ex_name(x, n, "sqrt2"), *half = ex_name(x, n, "half"), *one = ex_name(x, n, "one");
    char *t1 = ex_name(x, n, "scaled"), *t2 = ex_name(x, n, "erf"), *t3 = ex_name(x, n, "erf1"),
         *t4 = ex_name(x, n, "xerf1");
    ex_init_scalar(x, s2, sqrt(2.0));
    ex_init_scalar(x, half, 0.5);
    ex_init_scalar(x, one, 1.0);
    ex_node(x, "Div", t1, (const char *[]){X, s2}, 2, t1);
    ex_node(x, "Erf", t2, (const char *[]){t1}, 1, t2);
    ex_node(x, "Add", t3, (const char *[]){t2, one}, 2, t3);
    ex_node(x, "Mul", t4, (const char *[]){X, t3}, 2, t4);
    ex_node(x, "Mul", n->name, (const char *[]){t4, half}, 2, vname(x, n->out[0]));
    return KN_OK;
}

static kn_status cv_clip(ex_ctx *x, const kn_node *n)
{
    double lo = kn_node_attr_f(n, "min", -INFINITY), hi = kn_node_attr_f(n, "max", INFINITY);
    const char *in[3] = {vname(x, n->in[0]), "", ""};
    int n_in = 1;
    if (isfinite(lo)) ex_init_scalar(x, in[1] = ex_name(x, n, "min"), lo), n_in = 2;
    if (isfinite(hi)) ex_init_scalar(x, in[2] = ex_name(x, n, "max"), hi), n_in = 3;
    ex_node(x, "Clip", n->name, in, n_in, vname(x, n->out[0]));
    return KN_OK;
}

/* Reshape to the output's static shape, the batch dim as -1. */
static kn_status cv_reshape(ex_ctx *x, const kn_node *n)
{
    const kn_shape *s = &kn_graph_value(x->g, n->out[0])->shape;
    int64_t dims[KN_MAX_RANK];
    for (int i = 0; i < s->rank; i++) dims[i] = s->d[i] == KN_DIM_N ? -1 : s->d[i];
    char *shape = ex_name(x, n, "shape");
    ex_init_ints(x, shape, dims, s->rank);
    ex_node(x, "Reshape", n->name, (const char *[]){vname(x, n->in[0]), shape}, 2, vname(x, n->out[0]));
    return KN_OK;
}

static kn_status cv_flatten(ex_ctx *x, const kn_node *n)
{
    int rank = kn_graph_value(x->g, n->in[0])->shape.rank;
    int64_t start = kn_node_attr_i(n, "start_dim", 1), end = kn_node_attr_i(n, "end_dim", -1);
    if (end < 0) end += rank;
    if (start != 1 || end != rank - 1) return cv_reshape(x, n);
    Onnx__NodeProto *nd = ex_node_io(x, n, "Flatten", 1);
    ex_attr_i(x, nd, "axis", 1);
    return KN_OK;
}

/* kiln's int-or-pair spatial attribute (absent/empty: dflt). */
static void spatial_pair(const kn_node *n, const char *name, const int64_t dflt[2], int64_t out[2])
{
    const kn_attr *a = kn_node_attr(n, name);
    out[0] = dflt[0], out[1] = dflt[1];
    if (a && a->kind == KN_ATTR_INT) out[0] = out[1] = a->i;
    else if (a && a->kind == KN_ATTR_INTS && a->n == 1) out[0] = out[1] = a->ints[0];
    else if (a && a->kind == KN_ATTR_INTS && a->n >= 2) out[0] = a->ints[0], out[1] = a->ints[1];
}

/* ONNX pads [top, left, bottom, right] from kiln's padding (one value, a pair, or those four). */
static void spatial_pads(const kn_node *n, int64_t pads[4])
{
    const kn_attr *a = kn_node_attr(n, "padding");
    if (a && a->kind == KN_ATTR_INTS && a->n == 4) {
        memcpy(pads, a->ints, 4 * sizeof(int64_t));
        return;
    }
    int64_t p[2], zero[2] = {0, 0};
    spatial_pair(n, "padding", zero, p);
    pads[0] = pads[2] = p[0], pads[1] = pads[3] = p[1];
}

static kn_status cv_conv(ex_ctx *x, const kn_node *n)
{
    const kn_shape *ws = &kn_graph_value(x->g, n->in[1])->shape;
    int64_t one[2] = {1, 1}, s[2], dl[2], pads[4];
    spatial_pair(n, "stride", one, s);
    spatial_pair(n, "dilation", one, dl);
    spatial_pads(n, pads);
    Onnx__NodeProto *nd = ex_node_io(x, n, "Conv", n->n_in);
    ex_attr_ints(x, nd, "kernel_shape", ws->d + 2, 2);
    ex_attr_ints(x, nd, "strides", s, 2);
    ex_attr_ints(x, nd, "pads", pads, 4);
    ex_attr_ints(x, nd, "dilations", dl, 2);
    ex_attr_i(x, nd, "group", kn_node_attr_i(n, "groups", 1));
    return KN_OK;
}

static kn_status cv_pool(ex_ctx *x, const kn_node *n)
{
    bool avg = n->op == KN_OP_AVG_POOL2D;
    int64_t zero[2] = {0, 0}, k[2], s[2], pads[4];
    spatial_pair(n, "kernel", zero, k);
    spatial_pair(n, "stride", k, s);
    spatial_pads(n, pads);
    Onnx__NodeProto *nd = ex_node_io(x, n, avg ? "AveragePool" : "MaxPool", 1);
    ex_attr_ints(x, nd, "kernel_shape", k, 2);
    ex_attr_ints(x, nd, "strides", s, 2);
    ex_attr_ints(x, nd, "pads", pads, 4);
    if (avg) ex_attr_i(x, nd, "count_include_pad", kn_node_attr_i(n, "count_include_pad", 1) != 0);
    return KN_OK;
}

static kn_status cv_global_avg_pool(ex_ctx *x, const kn_node *n)
{
    const kn_value *Y = kn_graph_value(x->g, n->out[0]);
    if (Y->shape.rank == 4) {
        ex_node_io(x, n, "GlobalAveragePool", 1);
        return KN_OK;
    }
    char *t = ex_name(x, n, "pooled");
    ex_node(x, "GlobalAveragePool", t, (const char *[]){vname(x, n->in[0])}, 1, t);
    Onnx__NodeProto *nd = ex_node(x, "Flatten", n->name, (const char *[]){t}, 1, Y->name);
    ex_attr_i(x, nd, "axis", 1);
    return KN_OK;
}

static kn_status cv_axis_op(ex_ctx *x, const kn_node *n, const char *op_type, int64_t dflt)
{
    Onnx__NodeProto *nd = ex_node_io(x, n, op_type, n->n_in);
    ex_attr_i(x, nd, "axis", kn_node_attr_i(n, "dim", dflt));
    return KN_OK;
}

static kn_status cv_transpose(ex_ctx *x, const kn_node *n)
{
    Onnx__NodeProto *nd = ex_node_io(x, n, "Transpose", 1);
    const kn_attr *a = kn_node_attr(n, "perm");
    if (a && a->kind == KN_ATTR_INTS && a->n > 0) ex_attr_ints(x, nd, "perm", a->ints, a->n);
    return KN_OK;
}

static kn_status cv_slice(ex_ctx *x, const kn_node *n)
{
    int64_t dim = kn_node_attr_i(n, "dim", 0), start = kn_node_attr_i(n, "start", 0);
    int64_t end = start + kn_node_attr_i(n, "len", 0);
    char *st = ex_name(x, n, "starts"), *en = ex_name(x, n, "ends"), *ax = ex_name(x, n, "axes");
    ex_init_ints(x, st, &start, 1);
    ex_init_ints(x, en, &end, 1);
    ex_init_ints(x, ax, &dim, 1);
    ex_node(x, "Slice", n->name, (const char *[]){vname(x, n->in[0]), st, en, ax}, 4, vname(x, n->out[0]));
    return KN_OK;
}

static kn_status cv_pad(ex_ctx *x, const kn_node *n)
{
    const kn_attr *a = kn_node_attr(n, "pads");
    if (!a || a->kind != KN_ATTR_INTS) return kn_diag_fail(x->d, "node '%s' (pad): missing pads", n->name);
    char *pads = ex_name(x, n, "pads"), *val = ex_name(x, n, "value");
    ex_init_ints(x, pads, a->ints, a->n);
    ex_init_scalar(x, val, kn_node_attr_f(n, "value", 0.0));
    ex_node(x, "Pad", n->name, (const char *[]){vname(x, n->in[0]), pads, val}, 3, vname(x, n->out[0]));
    return KN_OK;
}

/* Ops that map one to one, with up to two float attributes renamed. */
typedef struct {
    int op;
    const char *onnx;
    const char *a, *onnx_a; /* kiln attribute -> ONNX attribute (NULL: none) */
    double da;
    const char *b, *onnx_b;
    double db;
} ex_simple;

static const ex_simple SIMPLE[] = {
    {KN_OP_MATMUL, "MatMul", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_ADD, "Add", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_SUB, "Sub", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_MUL, "Mul", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_DIV, "Div", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_MAX, "Max", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_MIN, "Min", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_POW, "Pow", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_RELU, "Relu", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_SIGMOID, "Sigmoid", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_TANH, "Tanh", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_LEAKY_RELU, "LeakyRelu", "negative_slope", "alpha", 0.01, NULL, NULL, 0},
    {KN_OP_DROPOUT, "Identity", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_ABS, "Abs", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_NEG, "Neg", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_EXP, "Exp", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_LOG, "Log", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_SQRT, "Sqrt", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_RECIPROCAL, "Reciprocal", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_FLOOR, "Floor", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_CEIL, "Ceil", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_ROUND, "Round", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_SIGN, "Sign", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_SIN, "Sin", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_COS, "Cos", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_TAN, "Tan", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_ASIN, "Asin", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_ACOS, "Acos", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_ATAN, "Atan", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_SINH, "Sinh", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_COSH, "Cosh", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_ASINH, "Asinh", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_ACOSH, "Acosh", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_ATANH, "Atanh", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_ERF, "Erf", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_SOFTSIGN, "Softsign", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_SOFTPLUS, "Softplus", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_ELU, "Elu", "alpha", "alpha", 1.0, NULL, NULL, 0},
    {KN_OP_SELU, "Selu", "alpha", "alpha", 1.67326319217681884765625, "gamma", "gamma", 1.05070102214813232421875},
    {KN_OP_CELU, "Celu", "alpha", "alpha", 1.0, NULL, NULL, 0},
    {KN_OP_HARD_SIGMOID, "HardSigmoid", "alpha", "alpha", 0.2, "beta", "beta", 0.5},
    {KN_OP_HARD_SWISH, "HardSwish", NULL, NULL, 0, NULL, NULL, 0},
    {KN_OP_THRESHOLDED_RELU, "ThresholdedRelu", "alpha", "alpha", 1.0, NULL, NULL, 0},
    {KN_OP_SHRINK, "Shrink", "lambd", "lambd", 0.5, "bias", "bias", 0.0},
};

static const ex_simple *simple_of(int op)
{
    for (size_t i = 0; i < sizeof SIMPLE / sizeof SIMPLE[0]; i++)
        if (SIMPLE[i].op == op) return &SIMPLE[i];
    return NULL;
}

static kn_status cv_simple(ex_ctx *x, const kn_node *n, const ex_simple *s)
{
    Onnx__NodeProto *nd = ex_node_io(x, n, s->onnx, n->op == KN_OP_DROPOUT ? 1 : n->n_in);
    if (s->a) ex_attr_f(x, nd, s->onnx_a, kn_ops_attr_num(n, s->a, s->da));
    if (s->b) ex_attr_f(x, nd, s->onnx_b, kn_ops_attr_num(n, s->b, s->db));
    return KN_OK;
}

typedef kn_status (*ex_convert_fn)(ex_ctx *x, const kn_node *n);

/* The converter of op `op`, or NULL when the op does not export. */
static ex_convert_fn converter_of(int op)
{
    switch (op) {
    case KN_OP_LINEAR: return cv_linear;
    case KN_OP_BATCHNORM: return cv_batchnorm;
    case KN_OP_GELU: return cv_gelu;
    case KN_OP_CLIP: return cv_clip;
    case KN_OP_RESHAPE: return cv_reshape;
    case KN_OP_FLATTEN: return cv_flatten;
    case KN_OP_CONV2D: return cv_conv;
    case KN_OP_MAX_POOL2D:
    case KN_OP_AVG_POOL2D: return cv_pool;
    case KN_OP_GLOBAL_AVG_POOL: return cv_global_avg_pool;
    case KN_OP_TRANSPOSE: return cv_transpose;
    case KN_OP_SLICE: return cv_slice;
    case KN_OP_PAD: return cv_pad;
    default: return NULL;
    }
}

static kn_status convert_node(ex_ctx *x, const kn_node *n)
{
    ex_convert_fn f = converter_of(n->op);
    if (f) return f(x, n);
    switch (n->op) {
    case KN_OP_SOFTMAX: return cv_axis_op(x, n, "Softmax", -1);
    case KN_OP_LOG_SOFTMAX: return cv_axis_op(x, n, "LogSoftmax", -1);
    case KN_OP_CONCAT: return cv_axis_op(x, n, "Concat", 0);
    default: break;
    }
    const ex_simple *s = simple_of(n->op);
    if (s) return cv_simple(x, n, s);
    return kn_diag_fail(x->d, "internal: no converter for node '%s'", n->name);
}

static bool op_exports(int op)
{
    return converter_of(op) || simple_of(op) || op == KN_OP_SOFTMAX || op == KN_OP_LOG_SOFTMAX ||
           op == KN_OP_CONCAT;
}

/* ---- the graph ---- */

/* Marks the nodes the outputs depend on (g->nodes is in topological order). */
static bool *live_nodes(const kn_graph *g)
{
    bool *need_v = calloc((size_t)g->n_values + 1, 1), *live = calloc((size_t)g->n_nodes + 1, 1);
    if (!need_v || !live) abort();
    for (int i = 0; i < g->n_outputs; i++) need_v[g->outputs[i]] = true;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const kn_node *n = g->nodes[i];
        for (int k = 0; k < n->n_out; k++)
            if (need_v[n->out[k]]) live[i] = true;
        if (!live[i]) continue;
        for (int k = 0; k < n->n_in; k++) need_v[n->in[k]] = true;
    }
    free(need_v);
    return live;
}

/* One message naming every node whose op does not export. */
static kn_status check_supported(ex_ctx *x, const bool *live)
{
    kn_strbuf sb;
    kn_sb_init(&sb);
    int bad = 0;
    for (int i = 0; i < x->g->n_nodes; i++) {
        const kn_node *n = x->g->nodes[i];
        if (!live[i] || op_exports(n->op)) continue;
        kn_sb_printf(&sb, "%s node '%s' (%s)", bad++ ? "," : "", n->name, kn_op_get(n->op)->name);
    }
    kn_status st = KN_OK;
    if (bad) st = kn_diag_fail(x->d, "cannot export to ONNX: unsupported op%s:%s", bad > 1 ? "s" : "", sb.s);
    kn_sb_free(&sb);
    return st;
}

/* Inputs and initializers: every non-node value a live node reads, once. */
static kn_status add_sources(ex_ctx *x, const bool *live)
{
    const kn_graph *g = x->g;
    bool *seen = calloc((size_t)g->n_values + 1, 1);
    if (!seen) abort();
    Onnx__GraphProto *gp = x->graph;
    gp->input = ex_alloc(x, sizeof *gp->input * (size_t)(g->n_values + 1));
    kn_status st = KN_OK;
    for (int i = 0; i < g->n_nodes && st == KN_OK; i++) {
        if (!live[i]) continue;
        const kn_node *n = g->nodes[i];
        for (int k = 0; k < n->n_in && st == KN_OK; k++) {
            const kn_value *v = kn_graph_value(g, n->in[k]);
            if (seen[v->id] || v->kind == KN_VAL_NODE) continue;
            seen[v->id] = true;
            if (v->kind == KN_VAL_INPUT || v->kind == KN_VAL_LABEL) {
                gp->input[gp->n_input++] = ex_value_info(x, v);
                continue;
            }
            int64_t numel;
            if (kn_shape_is_batched(&v->shape) || !kn_shape_numel(&v->shape, 1, &numel)) {
                st = kn_diag_fail(x->d, "cannot export '%s': a weight with a batch dim", v->name);
                break;
            }
            const void *data = v->kind == KN_VAL_CONST ? v->data : x->weights(x->wctx, v, x->d);
            if (!data) st = KN_ERR;
            else ex_init(x, v->name, v->dtype, v->shape.d, v->shape.rank, data, (size_t)numel);
        }
    }
    free(seen);
    return st;
}

static kn_status add_nodes(ex_ctx *x, const bool *live)
{
    for (int i = 0; i < x->g->n_nodes; i++)
        if (live[i] && convert_node(x, x->g->nodes[i]) != KN_OK) return KN_ERR;
    Onnx__GraphProto *gp = x->graph;
    gp->output = ex_alloc(x, sizeof *gp->output * (size_t)(x->g->n_outputs + 1));
    for (int i = 0; i < x->g->n_outputs; i++)
        gp->output[gp->n_output++] = ex_value_info(x, kn_graph_value(x->g, x->g->outputs[i]));
    return KN_OK;
}

static Onnx__ModelProto *new_model(ex_ctx *x)
{
    Onnx__ModelProto *m = ex_alloc(x, sizeof *m);
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = KN_ONNX_EXPORT_IR_VERSION;
    m->producer_name = ex_strdup(x, "kiln");
    m->producer_version = ex_strdup(x, KILN_VERSION);
    Onnx__OperatorSetIdProto *op = ex_alloc(x, sizeof *op);
    onnx__operator_set_id_proto__init(op);
    op->domain = ex_strdup(x, "");
    op->has_version = 1;
    op->version = KN_ONNX_EXPORT_OPSET;
    m->n_opset_import = 1;
    m->opset_import = ex_alloc(x, sizeof *m->opset_import);
    m->opset_import[0] = op;
    Onnx__GraphProto *gp = x->graph = m->graph = ex_alloc(x, sizeof *gp);
    onnx__graph_proto__init(gp);
    gp->name = ex_strdup(x, x->g->name ? x->g->name : "kiln");
    x->cap_nodes = (size_t)x->g->n_nodes * 2 + 16;
    gp->node = ex_alloc(x, sizeof *gp->node * x->cap_nodes);
    x->cap_inits = (size_t)x->g->n_values + 16;
    gp->initializer = ex_alloc(x, sizeof *gp->initializer * x->cap_inits);
    return m;
}

static kn_status write_model(const Onnx__ModelProto *m, const char *path, kn_diag *d)
{
    size_t len = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return kn_diag_fail(d, "out of memory packing %zu bytes of ONNX", len);
    onnx__model_proto__pack(m, buf);
    const void *chunks[1] = {buf};
    char err[512];
    int rc = kn_rt_write_atomic(path, chunks, &len, 1, err, sizeof err);
    free(buf);
    if (rc != 0) return kn_diag_fail(d, "%s", err);
    return KN_OK;
}

kn_status kn_onnx_export(const kn_graph *g, kn_export_weights_fn weights, void *ctx, const char *path, kn_diag *d)
{
    ex_ctx x = {.g = g, .weights = weights, .wctx = ctx, .d = d};
    if (g->n_outputs == 0) return kn_diag_fail(d, "cannot export '%s': the model has no output", g->name);
    bool *live = live_nodes(g);
    Onnx__ModelProto *m = new_model(&x);
    kn_status st = check_supported(&x, live);
    if (st == KN_OK) st = add_sources(&x, live);
    if (st == KN_OK) st = add_nodes(&x, live);
    if (st == KN_OK) st = write_model(m, path, d);
    free(live);
    ex_free(&x);
    return st;
}

/* onnx_ops.c — one converter per ONNX op type: reads the node's inputs and
 * attributes (as the op's opset defines them) and adds the IR nodes that
 * compute it.  Constant-only nodes never get here (onnx_fold.c folds them);
 * ops that only make sense on constants (Shape, Gather, Cast, ...) report
 * a clear error when a runtime tensor reaches them.
 *
 * The table at the end maps op types to converters; an op type missing
 * from it is reported by the importer as unsupported, with its nodes.
 */
#include "onnx_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const kn_shape *vshape(kx_importer *im, int vid) { return &im->g->values[vid]->shape; }

/* Binds the current node's output 0 to an existing value (Identity...). */
static kn_status alias(kx_importer *im, int vid)
{
    kx_bind_value(im, im->node->output[0], vid);
    return KN_OK;
}

static kn_status unary(kx_importer *im, int op)
{
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    return kx_finish_bind(im, kx_node(im, op, "", &x, 1));
}

static kn_status cv_relu(kx_importer *im) { return unary(im, KN_OP_RELU); }
static kn_status cv_sigmoid(kx_importer *im) { return unary(im, KN_OP_SIGMOID); }
static kn_status cv_tanh(kx_importer *im) { return unary(im, KN_OP_TANH); }

/* The table ops of ir/ops/unary.c: ONNX attributes carry the IR names
 * (alpha, beta, gamma, lambd, bias) and defaults, read from the op's spec. */
static const struct {
    const char *op_type;
    int op;
} UNARY_MAP[] = {
    {"Abs", KN_OP_ABS}, {"Neg", KN_OP_NEG}, {"Exp", KN_OP_EXP}, {"Log", KN_OP_LOG}, {"Sqrt", KN_OP_SQRT},
    {"Reciprocal", KN_OP_RECIPROCAL}, {"Floor", KN_OP_FLOOR}, {"Ceil", KN_OP_CEIL}, {"Round", KN_OP_ROUND},
    {"Sign", KN_OP_SIGN}, {"Sin", KN_OP_SIN}, {"Cos", KN_OP_COS}, {"Tan", KN_OP_TAN}, {"Asin", KN_OP_ASIN},
    {"Acos", KN_OP_ACOS}, {"Atan", KN_OP_ATAN}, {"Sinh", KN_OP_SINH}, {"Cosh", KN_OP_COSH},
    {"Asinh", KN_OP_ASINH}, {"Acosh", KN_OP_ACOSH}, {"Atanh", KN_OP_ATANH}, {"Erf", KN_OP_ERF},
    {"Softsign", KN_OP_SOFTSIGN}, {"Softplus", KN_OP_SOFTPLUS}, {"Elu", KN_OP_ELU}, {"Selu", KN_OP_SELU},
    {"Celu", KN_OP_CELU}, {"HardSigmoid", KN_OP_HARD_SIGMOID}, {"HardSwish", KN_OP_HARD_SWISH},
    {"ThresholdedRelu", KN_OP_THRESHOLDED_RELU}, {"Shrink", KN_OP_SHRINK},
};

static kn_status cv_unary_table(kx_importer *im)
{
    int op = -1;
    for (size_t i = 0; i < sizeof UNARY_MAP / sizeof UNARY_MAP[0]; i++)
        if (!strcmp(UNARY_MAP[i].op_type, im->node->op_type)) op = UNARY_MAP[i].op;
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    if (op < 0) return kx_fail(im, "internal: no IR op for this op type");
    kn_node *n = kx_node(im, op, "", &x, 1);
    for (const kn_arg_spec *a = kn_op_get(op)->args; a && a->name; a++)
        kn_node_set_attr_f(n, a->name, kx_attr_f(im, a->name, a->dflt_f));
    return kx_finish_bind(im, n);
}

static kn_status cv_leaky_relu(kx_importer *im)
{
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    kn_node *n = kx_node(im, KN_OP_LEAKY_RELU, "", &x, 1);
    kn_node_set_attr_f(n, "negative_slope", kx_attr_f(im, "alpha", 0.01));
    return kx_finish_bind(im, n);
}

static kn_status cv_gelu(kx_importer *im)
{
    char buf[32];
    if (strcmp(kx_attr_s(im, "approximate", "none", buf, sizeof buf), "none") != 0)
        return kx_fail(im, "approximate='%s' is not supported (only the exact erf form)", buf);
    return unary(im, KN_OP_GELU);
}

static kn_status binary(kx_importer *im, int op)
{
    int a = kx_input_value(im, 0), b = a < 0 ? -1 : kx_input_value(im, 1);
    if (b < 0) return KN_ERR;
    int in[2] = {a, b};
    return kx_finish_bind(im, kx_node(im, op, "", in, 2));
}

static kn_status cv_add(kx_importer *im) { return binary(im, KN_OP_ADD); }
static kn_status cv_sub(kx_importer *im) { return binary(im, KN_OP_SUB); }
static kn_status cv_mul(kx_importer *im) { return binary(im, KN_OP_MUL); }
static kn_status cv_div(kx_importer *im) { return binary(im, KN_OP_DIV); }

/* Sum(a, b, c...) as a chain of adds. */
static kn_status cv_sum(kx_importer *im)
{
    int acc = kx_input_value(im, 0);
    if (acc < 0) return KN_ERR;
    for (int i = 1; i < (int)im->node->n_input; i++) {
        int b = kx_input_value(im, i);
        if (b < 0) return KN_ERR;
        char sfx[32];
        snprintf(sfx, sizeof sfx, i + 1 == (int)im->node->n_input ? "" : ".sum%d", i);
        int in[2] = {acc, b};
        kn_node *n = kx_node(im, KN_OP_ADD, sfx, in, 2);
        if (kx_finish(im, n) != KN_OK) return KN_ERR;
        acc = n->out[0];
    }
    return alias(im, acc);
}

/* Max/Min/Mean(a, b, c...) as a chain of binaries (Mean: a sum, scaled). */
static kn_status variadic(kx_importer *im, int op, bool mean)
{
    int acc = kx_input_value(im, 0), n_in = (int)im->node->n_input;
    if (acc < 0) return KN_ERR;
    for (int i = 1; i < n_in; i++) {
        int b = kx_input_value(im, i);
        if (b < 0) return KN_ERR;
        char sfx[32];
        snprintf(sfx, sizeof sfx, i + 1 == n_in && !mean ? "" : ".acc%d", i);
        int in[2] = {acc, b};
        kn_node *n = kx_node(im, op, sfx, in, 2);
        if (kx_finish(im, n) != KN_OK) return KN_ERR;
        acc = n->out[0];
    }
    if (mean && n_in > 1) {
        kn_shape sc = {.rank = 0};
        kx_const *k = kx_const_new(KN_F32, &sc);
        ((float *)k->data)[0] = (float)(1.0 / n_in);
        char name[512];
        snprintf(name, sizeof name, "%s.scale", im->node->output[0]);
        int kv = kx_place_const(im, name, k, KN_VAL_PARAM, false);
        kx_const_free(k);
        if (kv < 0) return KN_ERR;
        int in[2] = {acc, kv};
        return kx_finish_bind(im, kx_node(im, KN_OP_MUL, "", in, 2));
    }
    return alias(im, acc);
}

static kn_status cv_max(kx_importer *im) { return variadic(im, KN_OP_MAX, false); }
static kn_status cv_min(kx_importer *im) { return variadic(im, KN_OP_MIN, false); }
static kn_status cv_mean(kx_importer *im) { return variadic(im, KN_OP_ADD, true); }
static kn_status cv_pow(kx_importer *im) { return binary(im, KN_OP_POW); }

static kn_status cv_identity(kx_importer *im)
{
    int x = kx_input_value(im, 0);
    return x < 0 ? KN_ERR : alias(im, x);
}

static kn_status cv_dropout(kx_importer *im)
{
    if (im->node->n_output > 1 && im->node->output[1][0])
        return kx_fail(im, "the mask output is not supported (inference import)");
    return cv_identity(im);
}

/* A scalar bound from a constant input, or the default. */
static kn_status scalar_input(kx_importer *im, int i, double dflt, double *out)
{
    *out = dflt;
    if (!kx_has_input(im, i)) return KN_OK;
    const kx_const *c = kx_input_const(im, i);
    if (!c || c->numel != 1) return kx_fail(im, "input %d must be a constant scalar", i);
    *out = kx_const_f(c, 0);
    return KN_OK;
}

/* Clip with bounds computed at run time: min(max(x, lo), hi) with the
 * broadcasting max/min ops (NaN in x stays NaN, as in Clip). */
static kn_status clip_runtime(kx_importer *im)
{
    int y = kx_input_value(im, 0);
    if (y < 0) return KN_ERR;
    bool has_hi = kx_has_input(im, 2);
    for (int i = 1; i <= 2; i++) {
        if (!kx_has_input(im, i)) continue;
        int b = kx_input_value(im, i);
        if (b < 0) return KN_ERR;
        int in[2] = {y, b};
        kn_node *n = kx_node(im, i == 1 ? KN_OP_MAX : KN_OP_MIN, i == 1 && has_hi ? ".lo" : "", in, 2);
        if (kx_finish(im, n) != KN_OK) return KN_ERR;
        y = n->out[0];
    }
    return alias(im, y);
}

static kn_status cv_clip(kx_importer *im)
{
    double lo = -INFINITY, hi = INFINITY;
    if (im->opset < 11) {
        lo = kx_attr_f(im, "min", -INFINITY);
        hi = kx_attr_f(im, "max", INFINITY);
    } else if ((kx_has_input(im, 1) && !kx_input_const(im, 1)) || (kx_has_input(im, 2) && !kx_input_const(im, 2))) {
        return clip_runtime(im);
    } else if (scalar_input(im, 1, -INFINITY, &lo) != KN_OK || scalar_input(im, 2, INFINITY, &hi) != KN_OK) {
        return KN_ERR;
    }
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    kn_node *n = kx_node(im, KN_OP_CLIP, "", &x, 1);
    kn_node_set_attr_f(n, "min", lo);
    kn_node_set_attr_f(n, "max", hi);
    return kx_finish_bind(im, n);
}

/* ---- convolution and pooling ---- */

typedef struct {
    int64_t k[2], s[2], dl[2], p[4]; /* p: top, left, bottom, right */
} spatial;

/* Reads kernel_shape (or `kernel` when given), strides, dilations, pads,
 * auto_pad for a 2-D op on input `x`. */
static kn_status read_spatial(kx_importer *im, int x, const int64_t *kernel, spatial *sp)
{
    const kn_shape *xs = vshape(im, x);
    if (xs->rank != 4) return kx_fail(im, "only 2-D (rank-4 NCHW) inputs are supported");
    int64_t v[4];
    int c;
    if (kernel) sp->k[0] = kernel[0], sp->k[1] = kernel[1];
    else if ((c = kx_attr_ints(im, "kernel_shape", v, 4)) == 2) sp->k[0] = v[0], sp->k[1] = v[1];
    else return kx_fail(im, "kernel_shape must have 2 values");
    sp->s[0] = sp->s[1] = sp->dl[0] = sp->dl[1] = 1;
    memset(sp->p, 0, sizeof sp->p);
    if ((c = kx_attr_ints(im, "strides", v, 4)) >= 0) {
        if (c != 2) return kx_fail(im, "strides must have 2 values");
        sp->s[0] = v[0], sp->s[1] = v[1];
    }
    if ((c = kx_attr_ints(im, "dilations", v, 4)) >= 0) {
        if (c != 2) return kx_fail(im, "dilations must have 2 values");
        sp->dl[0] = v[0], sp->dl[1] = v[1];
    }
    if ((c = kx_attr_ints(im, "pads", v, 4)) >= 0) {
        if (c != 4) return kx_fail(im, "pads must have 4 values");
        memcpy(sp->p, v, sizeof sp->p);
    }
    char ap[32];
    kx_attr_s(im, "auto_pad", "NOTSET", ap, sizeof ap);
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
        for (int i = 0; i < 2; i++) {
            if (sp->s[i] < 1) return kx_fail(im, "strides must be >= 1");
            int64_t in = xs->d[2 + i], out = (in + sp->s[i] - 1) / sp->s[i];
            int64_t total = (out - 1) * sp->s[i] + (sp->k[i] - 1) * sp->dl[i] + 1 - in;
            if (total < 0) total = 0;
            int64_t small = total / 2, big = total - small;
            bool upper = !strcmp(ap, "SAME_UPPER");
            sp->p[i] = upper ? small : big;
            sp->p[i + 2] = upper ? big : small;
        }
    } else if (!strcmp(ap, "VALID")) {
        memset(sp->p, 0, sizeof sp->p);
    } else if (strcmp(ap, "NOTSET") != 0) {
        return kx_fail(im, "auto_pad '%s' is not supported", ap);
    }
    return KN_OK;
}

static kn_status cv_conv(kx_importer *im)
{
    int x = kx_input_value(im, 0), w = x < 0 ? -1 : kx_input_value(im, 1);
    if (w < 0) return KN_ERR;
    const kn_shape *ws = vshape(im, w);
    if (ws->rank != 4) return kx_fail(im, "only 2-D convolution (a rank-4 weight) is supported");
    spatial sp;
    if (read_spatial(im, x, ws->d + 2, &sp) != KN_OK) return KN_ERR;
    int in[3] = {x, w, -1};
    bool bias = kx_has_input(im, 2);
    if (bias && (in[2] = kx_input_value(im, 2)) < 0) return KN_ERR;
    kn_node *n = kx_node(im, KN_OP_CONV2D, "", in, bias ? 3 : 2);
    kn_node_set_attr_i(n, "out_channels", ws->d[0]);
    kn_node_set_attr_ints(n, "kernel", sp.k, 2);
    kn_node_set_attr_ints(n, "stride", sp.s, 2);
    kn_node_set_attr_ints(n, "padding", sp.p, 4);
    kn_node_set_attr_ints(n, "dilation", sp.dl, 2);
    kn_node_set_attr_i(n, "groups", kx_attr_i(im, "group", 1));
    kn_node_set_attr_b(n, "bias", bias);
    return kx_finish_bind(im, n);
}

static kn_status cv_pool(kx_importer *im, int op)
{
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    spatial sp;
    if (read_spatial(im, x, NULL, &sp) != KN_OK) return KN_ERR;
    if (kx_attr_i(im, "ceil_mode", 0)) return kx_fail(im, "ceil_mode=1 is not supported");
    if (sp.dl[0] != 1 || sp.dl[1] != 1) return kx_fail(im, "dilations other than 1 are not supported");
    if (sp.p[0] != sp.p[2] || sp.p[1] != sp.p[3]) return kx_fail(im, "asymmetric pads are not supported for pooling");
    if (im->node->n_output > 1 && im->node->output[1][0]) return kx_fail(im, "the Indices output is not supported");
    kn_node *n = kx_node(im, op, "", &x, 1);
    int64_t pad[2] = {sp.p[0], sp.p[1]};
    kn_node_set_attr_ints(n, "kernel", sp.k, 2);
    kn_node_set_attr_ints(n, "stride", sp.s, 2);
    kn_node_set_attr_ints(n, "padding", pad, 2);
    if (op == KN_OP_AVG_POOL2D) kn_node_set_attr_b(n, "count_include_pad", kx_attr_i(im, "count_include_pad", 0) != 0);
    return kx_finish_bind(im, n);
}

static kn_status cv_max_pool(kx_importer *im) { return cv_pool(im, KN_OP_MAX_POOL2D); }
static kn_status cv_avg_pool(kx_importer *im) { return cv_pool(im, KN_OP_AVG_POOL2D); }
static kn_status cv_global_avg_pool(kx_importer *im) { return unary(im, KN_OP_GLOBAL_AVG_POOL); }

static kn_status cv_batchnorm(kx_importer *im)
{
    if (kx_attr_i(im, "training_mode", 0)) return kx_fail(im, "training_mode=1 is not supported (inference import)");
    if (im->node->n_input != 5) return kx_fail(im, "expects 5 inputs, got %zu", im->node->n_input);
    int in[5];
    for (int i = 0; i < 5; i++) {
        kx_entry *e = kx_lookup(im, im->node->input[i]);
        /* running statistics are buffers, as for model-file batchnorm */
        if (i >= 3 && e && e->vid < 0 && e->c) e->vid = kx_place_const(im, e->name, e->c, KN_VAL_BUFFER, false);
        if ((in[i] = kx_input_value(im, i)) < 0) return KN_ERR;
    }
    kn_node *n = kx_node(im, KN_OP_BATCHNORM, "", in, 5);
    kn_node_set_attr_f(n, "eps", kx_attr_f(im, "epsilon", 1e-5));
    kn_node_set_attr_f(n, "momentum", 0.1);
    return kx_finish_bind(im, n);
}

/* ---- matrix products ---- */

/* Places a constant derived from input `src` as a parameter named after
 * the node (trainable like `src` when that is an initializer). */
static int place_derived(kx_importer *im, const char *suffix, kx_const *c, int src)
{
    char name[512];
    snprintf(name, sizeof name, "%s%s", im->node->output[0], suffix);
    int vid = kx_place_const(im, name, c, KN_VAL_PARAM, kx_input_is_initializer(im, src));
    kx_const_free(c);
    return vid;
}

/* A node `op`(a, b) named after the current node plus `sfx`; its output or -1. */
static int build2(kx_importer *im, int op, const char *sfx, int a, int b)
{
    int in[2] = {a, b};
    kn_node *n = kx_node(im, op, sfx, in, b < 0 ? 1 : 2);
    if (op == KN_OP_TRANSPOSE) {
        int64_t perm[2] = {1, 0};
        kn_node_set_attr_ints(n, "perm", perm, 2);
    }
    return kx_finish(im, n) == KN_OK ? n->out[0] : -1;
}

/* `v` times the scalar `s` (v itself when s is 1). */
static int scaled(kx_importer *im, const char *sfx, int v, double s)
{
    if (s == 1.0) return v;
    kn_shape sc = {.rank = 0};
    kx_const *k = kx_const_new(KN_F32, &sc);
    ((float *)k->data)[0] = (float)s;
    char nm[64];
    snprintf(nm, sizeof nm, "%s.scale", sfx);
    char full[512];
    snprintf(full, sizeof full, "%s%s", im->node->output[0], nm);
    int kv = kx_place_const(im, full, k, KN_VAL_PARAM, false);
    kx_const_free(k);
    return kv < 0 ? -1 : build2(im, KN_OP_MUL, sfx, v, kv);
}

/* Gemm on runtime operands: alpha * op(A) @ op(B) + beta * C with the IR's
 * transpose, matmul, mul and (broadcasting) add. */
static kn_status gemm_runtime(kx_importer *im, double alpha, double beta, bool ta, bool tb)
{
    int a = kx_input_value(im, 0), b = a < 0 ? -1 : kx_input_value(im, 1);
    if (b < 0) return KN_ERR;
    if (vshape(im, a)->rank != 2 || vshape(im, b)->rank != 2) return kx_fail(im, "A and B must be matrices");
    if (ta && (a = build2(im, KN_OP_TRANSPOSE, ".At", a, -1)) < 0) return KN_ERR;
    if (tb && (b = build2(im, KN_OP_TRANSPOSE, ".Bt", b, -1)) < 0) return KN_ERR;
    bool has_c = kx_has_input(im, 2);
    int y = build2(im, KN_OP_MATMUL, has_c || alpha != 1.0 ? ".AB" : "", a, b);
    if (y < 0 || (y = scaled(im, has_c ? ".alphaAB" : "", y, alpha)) < 0) return KN_ERR;
    if (has_c) {
        int c = kx_input_value(im, 2);
        if (c < 0 || (c = scaled(im, ".betaC", c, beta)) < 0 || (y = build2(im, KN_OP_ADD, "", y, c)) < 0)
            return KN_ERR;
    }
    return alias(im, y);
}

/* Gemm with a constant B becomes linear (y = x W^T + b): W = alpha * op(B)
 * laid out [out, K], b = beta * C flattened to [out].  Otherwise matmul
 * (+ transpose, scale, bias) on runtime tensors. */
static kn_status cv_gemm(kx_importer *im)
{
    double alpha = kx_attr_f(im, "alpha", 1.0), beta = kx_attr_f(im, "beta", 1.0);
    bool ta = kx_attr_i(im, "transA", 0) != 0, tb = kx_attr_i(im, "transB", 0) != 0;
    const kx_const *B = kx_input_const(im, 1), *C = kx_input_const(im, 2);
    if (ta || !B || B->shape.rank != 2 || (kx_has_input(im, 2) && !C)) return gemm_runtime(im, alpha, beta, ta, tb);
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    int64_t K = tb ? B->shape.d[1] : B->shape.d[0], out = tb ? B->shape.d[0] : B->shape.d[1];
    int w;
    if (tb && alpha == 1.0) {
        w = kx_input_value(im, 1); /* the initializer itself, under its ONNX name */
    } else {
        kn_shape ws = {.rank = 2, .d = {out, K}};
        kx_const *W = kx_const_new(KN_F32, &ws);
        for (int64_t o = 0; o < out; o++)
            for (int64_t k = 0; k < K; k++)
                ((float *)W->data)[o * K + k] = (float)(alpha * kx_const_f(B, tb ? o * K + k : k * out + o));
        w = place_derived(im, ".weight", W, 1);
    }
    if (w < 0) return KN_ERR;
    int in[3] = {x, w, -1};
    if (C) {
        if (C->numel != out && C->numel != 1) return kx_fail(im, "C must have %lld elements (or 1)", (long long)out);
        kn_shape bs = {.rank = 1, .d = {out}};
        kx_const *bc = kx_const_new(KN_F32, &bs);
        for (int64_t o = 0; o < out; o++) ((float *)bc->data)[o] = (float)(beta * kx_const_f(C, C->numel == 1 ? 0 : o));
        if (beta == 1.0 && C->shape.rank == 1 && C->numel == out) {
            kx_const_free(bc);
            in[2] = kx_input_value(im, 2);
        } else {
            in[2] = place_derived(im, ".bias", bc, 2);
        }
        if (in[2] < 0) return KN_ERR;
    }
    kn_node *n = kx_node(im, KN_OP_LINEAR, "", in, C ? 3 : 2);
    kn_node_set_attr_i(n, "out", out);
    kn_node_set_attr_b(n, "bias", C != NULL);
    return kx_finish_bind(im, n);
}

static kn_status cv_matmul(kx_importer *im) { return binary(im, KN_OP_MATMUL); }

/* ---- layout ---- */

/* Reshapes value x to `t` (t.d[0] == KN_DIM_N exactly when x is batched). */
static kn_status reshape_to(kx_importer *im, int x, const kn_shape *t)
{
    bool b = kn_shape_is_batched(vshape(im, x));
    for (int i = 0; i < t->rank; i++)
        if (t->d[i] == KN_DIM_N && i != 0) return kx_fail(im, "the batch dim N must stay the first dim");
    if (b != kn_shape_is_batched(t)) return kx_fail(im, "cannot move or merge the batch dim N");
    kn_node *n = kx_node(im, KN_OP_RESHAPE, "", &x, 1);
    kn_node_set_attr_ints(n, "shape", t->d + (b ? 1 : 0), t->rank - (b ? 1 : 0));
    return kx_finish_bind(im, n);
}

static kn_status cv_flatten(kx_importer *im)
{
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    kn_shape s = *vshape(im, x);
    int64_t axis = kx_attr_i(im, "axis", 1);
    if (axis < 0) axis += s.rank;
    if (axis < 0 || axis > s.rank) return kx_fail(im, "axis %lld is out of range", (long long)kx_attr_i(im, "axis", 1));
    bool b = kn_shape_is_batched(&s);
    if (b && axis != 1) return kx_fail(im, "axis %lld would merge the batch dim N (only axis=1 keeps it)", (long long)axis);
    int64_t lead = 1, rest = 1;
    for (int i = b ? 1 : 0; i < axis; i++) lead *= s.d[i];
    for (int i = (int)axis; i < s.rank; i++) rest *= s.d[i];
    kn_shape t = {.rank = 2, .d = {b ? KN_DIM_N : lead, rest}};
    return reshape_to(im, x, &t);
}

static kn_status cv_reshape(kx_importer *im)
{
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    const kn_shape *xs = vshape(im, x);
    int64_t want[KN_MAX_RANK];
    int cnt;
    if (im->opset < 5) {
        if ((cnt = kx_attr_ints(im, "shape", want, KN_MAX_RANK)) < 0) return kx_fail(im, "needs a shape attribute");
    } else {
        const kx_const *sh = kx_input_const(im, 1);
        if (!sh) return kx_fail(im, "the target shape must be a constant (or fold to one)");
        if (sh->numel > KN_MAX_RANK) return kx_fail(im, "target rank %lld is above %d", (long long)sh->numel, KN_MAX_RANK);
        cnt = (int)sh->numel;
        for (int i = 0; i < cnt; i++) want[i] = kx_const_i(sh, i);
    }
    bool allowzero = kx_attr_i(im, "allowzero", 0) != 0;
    kn_shape t = {.rank = cnt};
    for (int i = 0; i < cnt; i++) {
        int64_t v = want[i];
        if (v == 0 && !allowzero) v = i < xs->rank ? xs->d[i] : 0;
        if (v == KX_SYM_N) v = KN_DIM_N;
        t.d[i] = v;
    }
    bool b = kn_shape_is_batched(xs);
    if (b && cnt > 0 && t.d[0] != KN_DIM_N) {
        /* x.view(-1, 1280) or a batch of 1 written out: dim 0 is the batch
         * when the other dims hold exactly one sample. */
        int64_t per, rest = 1;
        kn_shape_numel_per_sample(xs, &per);
        for (int i = 1; i < cnt; i++) rest = t.d[i] == -1 ? -1 : rest * t.d[i];
        if (t.d[0] == 1 || (t.d[0] == -1 && rest == per)) t.d[0] = KN_DIM_N;
        else return kx_fail(im, "the target shape would merge or split the batch dim N");
    }
    /* Resolve ONNX's -1 here: in kiln shapes -1 is the batch dim N. */
    int64_t have, known = 1;
    int at = -1;
    kn_shape_numel_per_sample(xs, &have);
    for (int i = b ? 1 : 0; i < cnt; i++) {
        if (t.d[i] == -1 && at < 0) at = i;
        else if (t.d[i] < 0) return kx_fail(im, "invalid target dim %lld", (long long)want[i]);
        else known *= t.d[i];
    }
    if (at >= 0) {
        if (known == 0 || have % known) return kx_fail(im, "cannot infer the -1 dim of the target shape");
        t.d[at] = have / known;
    }
    return reshape_to(im, x, &t);
}

static kn_status cv_unsqueeze(kx_importer *im)
{
    int x = kx_input_value(im, 0);
    kn_shape t;
    if (x < 0 || kx_unsqueeze_shape(im, vshape(im, x), &t) != KN_OK) return KN_ERR;
    return reshape_to(im, x, &t);
}

static kn_status cv_squeeze(kx_importer *im)
{
    int x = kx_input_value(im, 0);
    kn_shape t;
    if (x < 0 || kx_squeeze_shape(im, vshape(im, x), &t) != KN_OK) return KN_ERR;
    return reshape_to(im, x, &t);
}

static kn_status cv_transpose(kx_importer *im)
{
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    int64_t perm[KN_MAX_RANK];
    int c = kx_attr_ints(im, "perm", perm, KN_MAX_RANK);
    if (c < -1) return KN_ERR;
    kn_node *n = kx_node(im, KN_OP_TRANSPOSE, "", &x, 1);
    kn_node_set_attr_ints(n, "perm", perm, c < 0 ? 0 : c);
    return kx_finish_bind(im, n);
}

static kn_status cv_concat(kx_importer *im)
{
    int in[64], n_in = (int)im->node->n_input;
    if (n_in < 1 || n_in > 64) return kx_fail(im, "expects 1 to 64 inputs");
    for (int i = 0; i < n_in; i++)
        if ((in[i] = kx_input_value(im, i)) < 0) return KN_ERR;
    kn_node *n = kx_node(im, KN_OP_CONCAT, "", in, n_in);
    kn_node_set_attr_i(n, "dim", kx_attr_i(im, "axis", 0));
    return kx_finish_bind(im, n);
}

/* Slice on a runtime tensor: one slice node per axis; steps must be 1. */
static kn_status cv_slice(kx_importer *im)
{
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    int64_t st[KN_MAX_RANK], en[KN_MAX_RANK], ax[KN_MAX_RANK];
    int n;
    if (im->opset < 10) {
        n = kx_attr_ints(im, "starts", st, KN_MAX_RANK);
        if (n < 0 || kx_attr_ints(im, "ends", en, KN_MAX_RANK) != n) return kx_fail(im, "needs starts and ends");
        if (kx_attr_ints(im, "axes", ax, KN_MAX_RANK) < 0)
            for (int i = 0; i < n; i++) ax[i] = i;
    } else {
        const kx_const *s = kx_input_const(im, 1), *e = kx_input_const(im, 2);
        const kx_const *a = kx_has_input(im, 3) ? kx_input_const(im, 3) : NULL;
        const kx_const *p = kx_has_input(im, 4) ? kx_input_const(im, 4) : NULL;
        if (!s || !e || s->numel != e->numel || s->numel > KN_MAX_RANK || (kx_has_input(im, 3) && !a) ||
            (kx_has_input(im, 4) && !p))
            return kx_fail(im, "starts, ends, axes and steps must be constants of equal length");
        n = (int)s->numel;
        for (int i = 0; i < n; i++) {
            st[i] = kx_const_i(s, i), en[i] = kx_const_i(e, i), ax[i] = a ? kx_const_i(a, i) : i;
            if (p && kx_const_i(p, i) != 1) return kx_fail(im, "steps other than 1 are not supported");
        }
    }
    int cur = x;
    for (int i = 0; i < n; i++) {
        kn_shape s = *vshape(im, cur);
        int64_t a = ax[i] < 0 ? ax[i] + s.rank : ax[i];
        if (a < 0 || a >= s.rank) return kx_fail(im, "axis %lld is out of range", (long long)ax[i]);
        int64_t dim = s.d[a], b = st[i] < 0 ? st[i] + dim : st[i], e = en[i] < 0 ? en[i] + dim : en[i];
        b = b < 0 ? 0 : b > dim ? dim : b;
        e = e < b ? b : e > dim ? dim : e;
        if (b == 0 && e == dim) continue;
        char sfx[32];
        snprintf(sfx, sizeof sfx, i + 1 == n ? "" : ".slice%d", i);
        kn_node *nd = kx_node(im, KN_OP_SLICE, sfx, &cur, 1);
        kn_node_set_attr_i(nd, "dim", a);
        kn_node_set_attr_i(nd, "start", b);
        kn_node_set_attr_i(nd, "len", e - b);
        if (kx_finish(im, nd) != KN_OK) return KN_ERR;
        cur = nd->out[0];
    }
    return alias(im, cur);
}

/* Split into one slice node per output; sizes from the `split` attribute
 * (before opset 13) or constant input 1, else equal parts. */
static kn_status cv_split(kx_importer *im)
{
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    const kn_shape *xs = vshape(im, x);
    int64_t axis = kx_attr_i(im, "axis", 0), sizes[64];
    int n_out = (int)im->node->n_output, n = -1;
    if (axis < 0) axis += xs->rank;
    if (axis < 0 || axis >= xs->rank || xs->d[axis] == KN_DIM_N)
        return kx_fail(im, "axis %lld is out of range or the batch dim", (long long)kx_attr_i(im, "axis", 0));
    if (n_out < 1 || n_out > 64) return kx_fail(im, "expects 1 to 64 outputs");
    if (im->opset < 13) {
        n = kx_attr_ints(im, "split", sizes, 64);
    } else if (kx_has_input(im, 1)) {
        const kx_const *c = kx_input_const(im, 1);
        if (!c || c->numel > 64) return kx_fail(im, "split sizes must be a constant");
        n = (int)c->numel;
        for (int i = 0; i < n; i++) sizes[i] = kx_const_i(c, i);
    }
    int64_t dim = xs->d[axis];
    if (n < 0) {
        if (dim % n_out) return kx_fail(im, "dim %lld does not split into %d equal parts", (long long)dim, n_out);
        for (int i = 0; i < n_out; i++) sizes[i] = dim / n_out;
        n = n_out;
    }
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (sizes[i] < 0) return kx_fail(im, "split size %lld is negative", (long long)sizes[i]);
        total += sizes[i];
    }
    if (n != n_out || total != dim) return kx_fail(im, "split sizes do not add up to dim %lld over %d outputs",
                                                   (long long)dim, n_out);
    int64_t start = 0;
    for (int i = 0; i < n; i++) {
        if (!im->node->output[i][0]) { start += sizes[i]; continue; }
        char name[512];
        snprintf(name, sizeof name, "%s%s", im->prefix, im->node->output[i]);
        kn_node *nd = kn_graph_add_node(im->g, KN_OP_SLICE, name, &x, 1, 1);
        kn_node_set_attr_i(nd, "dim", axis);
        kn_node_set_attr_i(nd, "start", start);
        kn_node_set_attr_i(nd, "len", sizes[i]);
        if (kx_finish(im, nd) != KN_OK) return KN_ERR;
        kx_bind_value(im, im->node->output[i], nd->out[0]);
        start += sizes[i];
    }
    return KN_OK;
}

static kn_status cv_pad(kx_importer *im)
{
    char mode[32];
    if (strcmp(kx_attr_s(im, "mode", "constant", mode, sizeof mode), "constant") != 0)
        return kx_fail(im, "mode '%s' is not supported (only constant)", mode);
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    int64_t pads[2 * KN_MAX_RANK];
    int n;
    double value = 0;
    if (im->opset < 11) {
        n = kx_attr_ints(im, "pads", pads, 2 * KN_MAX_RANK);
        value = kx_attr_f(im, "value", 0.0);
    } else {
        const kx_const *p = kx_input_const(im, 1);
        if (!p || p->numel > 2 * KN_MAX_RANK) return kx_fail(im, "pads must be a constant");
        if (kx_has_input(im, 3)) return kx_fail(im, "the axes input is not supported");
        n = (int)p->numel;
        for (int i = 0; i < n; i++) pads[i] = kx_const_i(p, i);
        if (scalar_input(im, 2, 0.0, &value) != KN_OK) return KN_ERR;
    }
    kn_node *nd = kx_node(im, KN_OP_PAD, "", &x, 1);
    kn_node_set_attr_ints(nd, "pads", pads, n < 0 ? 0 : n);
    kn_node_set_attr_f(nd, "value", value);
    return kx_finish_bind(im, nd);
}

/* ---- reductions, softmax ---- */

/* The axes of a Reduce* node, from the attribute or, from `input_opset` on,
 * from constant input 1 (*n = -1: all axes).  Returns 0, -1 on error, or 1
 * when empty axes with noop_with_empty_axes make the node an identity. */
static int reduce_axes(kx_importer *im, int input_opset, int64_t *axes, int *n)
{
    *n = -1;
    if (im->opset < input_opset) return (*n = kx_attr_ints(im, "axes", axes, KN_MAX_RANK)) < -1 ? -1 : 0;
    if (kx_has_input(im, 1)) {
        const kx_const *a = kx_input_const(im, 1);
        if (!a || a->numel > KN_MAX_RANK) return kx_fail(im, "axes must be a constant"), -1;
        *n = (int)a->numel;
        for (int i = 0; i < *n; i++) axes[i] = kx_const_i(a, i);
    }
    return *n <= 0 && kx_attr_i(im, "noop_with_empty_axes", 0) ? 1 : 0;
}

static kn_status cv_reduce_mean(kx_importer *im)
{
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    int64_t axes[KN_MAX_RANK];
    int n, rc = reduce_axes(im, 18, axes, &n);
    if (rc) return rc < 0 ? KN_ERR : alias(im, x);
    bool adjacent = true;
    if (n > 0) {
        int r = vshape(im, x)->rank;
        for (int i = 0; i < n; i++) axes[i] = axes[i] < 0 ? axes[i] + r : axes[i];
        for (int i = 1; i < n; i++) /* kiln's mean takes adjacent dims in order */
            for (int k = i; k > 0 && axes[k - 1] > axes[k]; k--) {
                int64_t t = axes[k];
                axes[k] = axes[k - 1], axes[k - 1] = t;
            }
        for (int i = 1; i < n; i++) adjacent &= axes[i] == axes[i - 1] + 1;
    }
    /* other axis sets go to reduce_mean, which takes any */
    kn_node *nd = kx_node(im, adjacent ? KN_OP_MEAN : KN_OP_REDUCE_MEAN, "", &x, 1);
    if (n > 0) kn_node_set_attr_ints(nd, "dim", axes, n);
    kn_node_set_attr_b(nd, "keepdim", kx_attr_i(im, "keepdims", 1) != 0);
    return kx_finish_bind(im, nd);
}

/* Reduce*: axes from the attribute, or from input 1 from the opset where
 * they moved there (13 for ReduceSum, 18 for the others). */
static const struct {
    const char *op_type;
    int op;
} REDUCE_MAP[] = {
    {"ReduceSum", KN_OP_REDUCE_SUM}, {"ReduceMax", KN_OP_REDUCE_MAX}, {"ReduceMin", KN_OP_REDUCE_MIN},
    {"ReduceProd", KN_OP_REDUCE_PROD}, {"ReduceL1", KN_OP_REDUCE_L1}, {"ReduceL2", KN_OP_REDUCE_L2},
    {"ReduceSumSquare", KN_OP_REDUCE_SUM_SQUARE}, {"ReduceLogSum", KN_OP_REDUCE_LOG_SUM},
    {"ReduceLogSumExp", KN_OP_REDUCE_LOG_SUM_EXP},
};

static kn_status cv_reduce(kx_importer *im)
{
    int op = -1;
    for (size_t i = 0; i < sizeof REDUCE_MAP / sizeof REDUCE_MAP[0]; i++)
        if (!strcmp(REDUCE_MAP[i].op_type, im->node->op_type)) op = REDUCE_MAP[i].op;
    if (op < 0) return kx_fail(im, "internal: no IR op for this op type");
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    int64_t axes[KN_MAX_RANK];
    int n, rc = reduce_axes(im, op == KN_OP_REDUCE_SUM ? 13 : 18, axes, &n);
    if (rc) return rc < 0 ? KN_ERR : alias(im, x);
    kn_node *nd = kx_node(im, op, "", &x, 1);
    if (n > 0) kn_node_set_attr_ints(nd, "dim", axes, n);
    kn_node_set_attr_b(nd, "keepdim", kx_attr_i(im, "keepdims", 1) != 0);
    return kx_finish_bind(im, nd);
}

static kn_status cv_arg(kx_importer *im)
{
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    kn_node *nd = kx_node(im, !strcmp(im->node->op_type, "ArgMax") ? KN_OP_ARGMAX : KN_OP_ARGMIN, "", &x, 1);
    int64_t axis = kx_attr_i(im, "axis", 0);
    kn_node_set_attr_ints(nd, "dim", &axis, 1);
    kn_node_set_attr_b(nd, "keepdim", kx_attr_i(im, "keepdims", 1) != 0);
    kn_node_set_attr_b(nd, "last", kx_attr_i(im, "select_last_index", 0) != 0);
    return kx_finish_bind(im, nd);
}

/* NegativeLogLikelihoodLoss(x, target[, weight]) -> nll_loss; with
 * `log_softmax` (SoftmaxCrossEntropyLoss) x first goes through
 * log_softmax over the class dim, whose result is the optional output 1. */
static kn_status nll(kx_importer *im, bool log_softmax)
{
    int in[3] = {kx_input_value(im, 0), -1, -1};
    if (in[0] < 0 || (in[1] = kx_input_value(im, 1)) < 0) return KN_ERR;
    int n_in = 2;
    if (kx_has_input(im, 2) && (in[n_in++] = kx_input_value(im, 2)) < 0) return KN_ERR;
    char red[16];
    kx_attr_s(im, "reduction", "mean", red, sizeof red);
    if (log_softmax) {
        kn_node *ls = kx_node(im, KN_OP_LOG_SOFTMAX, ".log_prob", in, 1);
        kn_node_set_attr_i(ls, "dim", 1);
        if (kx_finish(im, ls) != KN_OK) return KN_ERR;
        in[0] = ls->out[0];
        if (im->node->n_output > 1 && im->node->output[1][0]) kx_bind_value(im, im->node->output[1], in[0]);
    }
    kn_node *n = kx_node(im, KN_OP_NLL_LOSS, "", in, n_in);
    kn_node_set_attr_s(n, "reduction", red);
    const Onnx__AttributeProto *ii = kx_attr(im, "ignore_index");
    if (ii && ii->has_i) kn_node_set_attr_i(n, "ignore_index", ii->i);
    return kx_finish_bind(im, n);
}

static kn_status cv_nll(kx_importer *im) { return nll(im, false); }
static kn_status cv_softmax_ce(kx_importer *im) { return nll(im, true); }

/* A scalar f32 constant placed as a frozen parameter "<output><sfx>". */
static int scalar_param(kx_importer *im, const char *sfx, double v)
{
    kn_shape sc = {.rank = 0};
    kx_const *k = kx_const_new(KN_F32, &sc);
    ((float *)k->data)[0] = (float)v;
    char full[512];
    snprintf(full, sizeof full, "%s%s", im->node->output[0], sfx);
    int vid = kx_place_const(im, full, k, KN_VAL_PARAM, false);
    kx_const_free(k);
    return vid;
}

/* LayerNormalization as IR ops (so it trains like any composition):
 * mean = reduce_mean(x, axes), d = x - mean, var = reduce_mean(d * d),
 * inv = reciprocal(sqrt(var + eps)), Y = d * inv * scale (+ bias), over the
 * axes [axis, rank).  Mean and InvStdDev are the optional outputs 1, 2. */
static kn_status cv_layer_norm(kx_importer *im)
{
    int x = kx_input_value(im, 0), scale = x < 0 ? -1 : kx_input_value(im, 1);
    if (scale < 0) return KN_ERR;
    int bias = -1;
    if (kx_has_input(im, 2) && (bias = kx_input_value(im, 2)) < 0) return KN_ERR;
    int r = vshape(im, x)->rank;
    int64_t axis = kx_attr_i(im, "axis", -1), axes[KN_MAX_RANK];
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) return kx_fail(im, "axis %lld is out of range", (long long)kx_attr_i(im, "axis", -1));
    for (int64_t i = axis; i < r; i++) axes[i - axis] = i;
    kn_node *mn = kx_node(im, KN_OP_REDUCE_MEAN, ".mean", &x, 1);
    kn_node_set_attr_ints(mn, "dim", axes, (int)(r - axis));
    if (kx_finish(im, mn) != KN_OK) return KN_ERR;
    int mean = mn->out[0], d, var, inv, y;
    if ((d = build2(im, KN_OP_SUB, ".centered", x, mean)) < 0) return KN_ERR;
    int sq = build2(im, KN_OP_MUL, ".sq", d, d);
    if (sq < 0) return KN_ERR;
    kn_node *vn = kx_node(im, KN_OP_REDUCE_MEAN, ".var", &sq, 1);
    kn_node_set_attr_ints(vn, "dim", axes, (int)(r - axis));
    if (kx_finish(im, vn) != KN_OK) return KN_ERR;
    int eps = scalar_param(im, ".epsilon", kx_attr_f(im, "epsilon", 1e-5));
    if (eps < 0 || (var = build2(im, KN_OP_ADD, ".var_eps", vn->out[0], eps)) < 0) return KN_ERR;
    if ((var = build2(im, KN_OP_SQRT, ".std", var, -1)) < 0) return KN_ERR;
    if ((inv = build2(im, KN_OP_RECIPROCAL, ".inv_std", var, -1)) < 0) return KN_ERR;
    if ((y = build2(im, KN_OP_MUL, ".normalized", d, inv)) < 0) return KN_ERR;
    if ((y = build2(im, KN_OP_MUL, bias < 0 ? "" : ".scaled", y, scale)) < 0) return KN_ERR;
    if (bias >= 0 && (y = build2(im, KN_OP_ADD, "", y, bias)) < 0) return KN_ERR;
    if (im->node->n_output > 1 && im->node->output[1][0]) kx_bind_value(im, im->node->output[1], mean);
    if (im->node->n_output > 2 && im->node->output[2][0]) kx_bind_value(im, im->node->output[2], inv);
    return alias(im, y);
}

/* Trilu: k from a constant input becomes the attribute; a runtime k stays
 * an input (the output shape does not depend on it). */
static kn_status cv_trilu(kx_importer *im)
{
    int in[2] = {kx_input_value(im, 0), -1};
    if (in[0] < 0) return KN_ERR;
    const kx_const *k = kx_input_const(im, 1);
    bool runtime_k = kx_has_input(im, 1) && !k;
    if (runtime_k && (in[1] = kx_input_value(im, 1)) < 0) return KN_ERR;
    if (k && k->numel != 1) return kx_fail(im, "k must be a single value");
    kn_node *n = kx_node(im, KN_OP_TRILU, "", in, runtime_k ? 2 : 1);
    kn_node_set_attr_b(n, "upper", kx_attr_i(im, "upper", 1) != 0);
    kn_node_set_attr_i(n, "k", k ? kx_const_i(k, 0) : 0);
    return kx_finish_bind(im, n);
}

static kn_status cv_hardmax(kx_importer *im)
{
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    kn_node *n = kx_node(im, KN_OP_HARDMAX, "", &x, 1);
    kn_node_set_attr_i(n, "dim", kx_attr_i(im, "axis", -1));
    return kx_finish_bind(im, n);
}

static kn_status softmax(kx_importer *im, int op)
{
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    int r = vshape(im, x)->rank;
    int64_t axis = kx_attr_i(im, "axis", im->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    if (im->opset < 13 && axis != r - 1)
        return kx_fail(im, "opset %lld softmax over the flattened dims %lld.. is only supported for the last axis",
                       (long long)im->opset, (long long)axis);
    kn_node *n = kx_node(im, op, "", &x, 1);
    kn_node_set_attr_i(n, "dim", axis);
    return kx_finish_bind(im, n);
}

static kn_status cv_softmax(kx_importer *im) { return softmax(im, KN_OP_SOFTMAX); }
static kn_status cv_log_softmax(kx_importer *im) { return softmax(im, KN_OP_LOG_SOFTMAX); }

/* Ops kiln only evaluates on constants. */
static kn_status cv_const_only(kx_importer *im)
{
    return kx_fail(im, "kiln evaluates this op only on constants; an input here is a runtime tensor");
}

static kn_status cv_quant(kx_importer *im)
{
    return kx_fail(im, "kiln (de)quantizes only constants (initializers) at import; an input here is a runtime "
                       "tensor");
}

static kn_status cv_cast(kx_importer *im)
{
    int x = kx_input_value(im, 0);
    if (x < 0) return KN_ERR;
    int64_t to = kx_attr_i(im, "to", 0);
    kn_dtype dt = im->g->values[x]->dtype;
    if ((dt == KN_F32 && to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) || (dt == KN_I64 && to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64))
        return alias(im, x);
    return kx_fail(im, "casting a runtime tensor to type %lld is not supported", (long long)to);
}

static const kx_op_entry kx_ops[] = {
    {"Add", 7, cv_add}, {"Sub", 7, cv_sub}, {"Mul", 7, cv_mul}, {"Div", 7, cv_div}, {"Sum", 8, cv_sum},
    {"Relu", 6, cv_relu}, {"Sigmoid", 6, cv_sigmoid}, {"Tanh", 6, cv_tanh}, {"LeakyRelu", 6, cv_leaky_relu},
    {"Gelu", 20, cv_gelu}, {"Clip", 6, cv_clip}, {"Softmax", 1, cv_softmax}, {"LogSoftmax", 1, cv_log_softmax},
    {"Conv", 1, cv_conv}, {"MaxPool", 8, cv_max_pool}, {"AveragePool", 7, cv_avg_pool},
    {"GlobalAveragePool", 1, cv_global_avg_pool}, {"BatchNormalization", 7, cv_batchnorm},
    {"Gemm", 7, cv_gemm}, {"MatMul", 1, cv_matmul},
    {"Flatten", 1, cv_flatten}, {"Reshape", 1, cv_reshape}, {"Unsqueeze", 1, cv_unsqueeze},
    {"Squeeze", 1, cv_squeeze}, {"Transpose", 1, cv_transpose}, {"Concat", 4, cv_concat},
    {"Slice", 1, cv_slice}, {"Pad", 2, cv_pad}, {"ReduceMean", 1, cv_reduce_mean},
    {"Identity", 1, cv_identity}, {"Dropout", 7, cv_dropout}, {"Cast", 6, cv_cast},
    {"Constant", 1, cv_const_only}, {"Shape", 1, cv_const_only}, {"Size", 1, cv_const_only},
    {"QuantizeLinear", 10, cv_quant}, {"DequantizeLinear", 10, cv_quant}, {"Gather", 1, cv_const_only},
    {"ConstantOfShape", 9, cv_const_only},
    {"Abs", 1, cv_unary_table}, {"Neg", 1, cv_unary_table}, {"Exp", 1, cv_unary_table},
    {"Log", 1, cv_unary_table}, {"Sqrt", 1, cv_unary_table}, {"Reciprocal", 1, cv_unary_table},
    {"Floor", 1, cv_unary_table}, {"Ceil", 1, cv_unary_table}, {"Round", 11, cv_unary_table},
    {"Sign", 9, cv_unary_table}, {"Sin", 7, cv_unary_table}, {"Cos", 7, cv_unary_table},
    {"Tan", 7, cv_unary_table}, {"Asin", 7, cv_unary_table}, {"Acos", 7, cv_unary_table},
    {"Atan", 7, cv_unary_table}, {"Sinh", 9, cv_unary_table}, {"Cosh", 9, cv_unary_table},
    {"Asinh", 9, cv_unary_table}, {"Acosh", 9, cv_unary_table}, {"Atanh", 9, cv_unary_table},
    {"Erf", 9, cv_unary_table}, {"Softsign", 1, cv_unary_table}, {"Softplus", 1, cv_unary_table},
    {"Elu", 1, cv_unary_table}, {"Selu", 1, cv_unary_table}, {"Celu", 12, cv_unary_table},
    {"HardSigmoid", 1, cv_unary_table}, {"HardSwish", 14, cv_unary_table},
    {"ThresholdedRelu", 10, cv_unary_table}, {"Shrink", 9, cv_unary_table},
    {"ReduceSum", 1, cv_reduce}, {"ReduceMax", 1, cv_reduce}, {"ReduceMin", 1, cv_reduce},
    {"ReduceProd", 1, cv_reduce}, {"ReduceL1", 1, cv_reduce}, {"ReduceL2", 1, cv_reduce},
    {"ReduceSumSquare", 1, cv_reduce}, {"ReduceLogSum", 1, cv_reduce}, {"ReduceLogSumExp", 1, cv_reduce},
    {"ArgMax", 1, cv_arg}, {"ArgMin", 1, cv_arg},
    {"Max", 8, cv_max}, {"Min", 8, cv_min}, {"Mean", 8, cv_mean}, {"Pow", 7, cv_pow},
    {"Split", 2, cv_split}, {"Trilu", 14, cv_trilu}, {"Hardmax", 13, cv_hardmax}, {"LayerNormalization", 17, cv_layer_norm}, {"NegativeLogLikelihoodLoss", 12, cv_nll}, {"SoftmaxCrossEntropyLoss", 12, cv_softmax_ce},
};

const kx_op_entry *kx_find_op(const char *op_type, int64_t opset)
{
    for (size_t i = 0; i < sizeof kx_ops / sizeof kx_ops[0]; i++)
        if (!strcmp(kx_ops[i].op_type, op_type) && opset >= kx_ops[i].since) return &kx_ops[i];
    return NULL;
}

/* linear.c — linear (torch.nn.Linear) and matmul (torch.matmul).
 *
 * linear(x, out, bias=true, init="kaiming_uniform"): x f32[N, K] -> y f32[N, out],
 * y = x W^T + b, creating `<node>.weight` [out, K] and `<node>.bias` [out]
 * with PyTorch's default initialisation, or the weight's `init` choice.  The input must be rank 2 (flatten images first):
 * that keeps the weight gradient one GEMM over the batch.
 * matmul(a, b): a f32[..., M, K] @ b f32[..., K, P]; leading dims broadcast
 * like torch.matmul.  Both call kn_rt_sgemm; nothing here allocates at run time.
 * Gradients: dx = dy W (matmul), dW = linear_grad_weight(dy, x), db =
 * sum_to(dy, [out]); matmul's operands get matmul_grad (linear_grad.c).
 *
 * On inference graphs passes/fuse_epilogue.c may fold the layer's
 * successors into linear as an epilogue over each output row (CPU and GPU):
 *   bn = 1 (inputs gamma, beta, mean, var last; bn_eps): an eval-mode
 *     batchnorm, y = y * s + t with s = gamma / sqrt(var + eps), t = beta -
 *     mean * s, batchnorm's own formula, computed per call since the
 *     weights are trained in place (folding them into W would cost a pass
 *     over W per call);
 *   act_min/act_max: then a clamp (relu, clip).
 */
#include "op_util.h"

#include <limits.h>

/* Largest dim handed to kn_rt_sgemm (it takes int sizes). */
#define GEMM_DIM_MAX INT_MAX

static kn_status linear_check_input(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "input") != KN_OK) return KN_ERR;
    const kn_value *x = kn_graph_value(g, n->in[0]);
    if (x->shape.rank != 2) {
        char s[128];
        kn_ops_fmt(g, n->in[0], s, sizeof s);
        return kn_op_error(d, g, n, "expects f32[N, K] input, got %s", s);
    }
    int64_t k = x->shape.d[x->shape.rank - 1];
    if (k == KN_DIM_N) {
        char s[128];
        kn_ops_fmt(g, n->in[0], s, sizeof s);
        return kn_op_error(d, g, n, "expects f32[N, K] input with a fixed K, got %s", s);
    }
    int64_t out = kn_node_attr_i(n, "out", 0);
    int64_t elems, bytes;
    if (out < 1)
        return kn_op_error(d, g, n, "output size must be at least 1, got %lld",
                           (long long)out);
    if (out > GEMM_DIM_MAX || k > GEMM_DIM_MAX || !kn_mul_ok(out, k, &elems) ||
        !kn_mul_ok(elems, 4, &bytes))
        return kn_op_error(d, g, n,
                           "weight [%lld, %lld] is too large (output size %lld, "
                           "at most %d per dim and 2^63 bytes in all)",
                           (long long)out, (long long)k, (long long)out, INT_MAX);
    return KN_OK;
}

static kn_status linear_add_params(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (linear_check_input(g, n, d) != KN_OK) return KN_ERR;
    if (n->n_in > 1) return KN_OK; /* already has its parameters (cloned graph) */
    const kn_value *x = kn_graph_value(g, n->in[0]);
    int64_t k = x->shape.d[x->shape.rank - 1];
    int64_t out = kn_node_attr_i(n, "out", 0);
    int64_t wd[2] = {out, k};
    kn_shape ws = kn_shape_make(2, wd), bs = kn_shape_make(1, &out);
    kn_init_kind init;
    if (kn_op_weight_init(g, n, &init, d) != KN_OK) return KN_ERR;
    kn_op_add_param(g, n, "weight", KN_VAL_PARAM, &ws, init, k, out);
    if (kn_node_attr_i(n, "bias", 1))
        kn_op_add_param(g, n, "bias", KN_VAL_PARAM, &bs, KN_INIT_BIAS_UNIFORM, k, out);
    return KN_OK;
}

static bool linear_has_bias(const kn_node *n) { return kn_node_attr_i(n, "bias", 1) != 0; }
static bool linear_has_bn(const kn_node *n) { return kn_node_attr_i(n, "bn", 0) != 0; }

/* The fused batchnorm's gamma, beta, mean, var: f32[out] each. */
static kn_status linear_check_bn(kn_graph *g, kn_node *n, int first, int64_t out, kn_diag *d)
{
    for (int i = first; i < first + 4; i++) {
        const kn_value *v = kn_graph_value(g, n->in[i]);
        if (v->dtype != KN_F32 || v->shape.rank != 1 || v->shape.d[0] != out)
            return kn_op_error(d, g, n, "internal: the fused batchnorm's '%s' must be f32[%lld]", v->name,
                               (long long)out);
    }
    return KN_OK;
}

static kn_status linear_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (linear_check_input(g, n, d) != KN_OK) return KN_ERR;
    const kn_value *x = kn_graph_value(g, n->in[0]);
    int64_t k = x->shape.d[x->shape.rank - 1];
    int64_t out = kn_node_attr_i(n, "out", 0);
    int want = linear_has_bias(n) ? 3 : 2;
    if (n->n_in != want + 4 * linear_has_bn(n))
        return kn_op_error(d, g, n, "expects %d inputs (x, weight%s%s), got %d", want + 4 * linear_has_bn(n),
                           want == 3 ? ", bias" : "", linear_has_bn(n) ? ", gamma, beta, mean, var" : "", n->n_in);
    if (linear_has_bn(n) && (x->shape.rank != 2 || linear_check_bn(g, n, want, out, d) != KN_OK)) return KN_ERR;
    const kn_value *w = kn_graph_value(g, n->in[1]);
    if (w->dtype != KN_F32 || w->shape.rank != 2 || w->shape.d[0] != out ||
        w->shape.d[1] != k) {
        char s[128];
        kn_ops_fmt(g, n->in[1], s, sizeof s);
        return kn_op_error(d, g, n, "weight '%s' must be f32[%lld,%lld], got %s",
                           w->name, (long long)out, (long long)k, s);
    }
    if (want == 3) {
        const kn_value *b = kn_graph_value(g, n->in[2]);
        if (b->dtype != KN_F32 || b->shape.rank != 1 || b->shape.d[0] != out) {
            char s[128];
            kn_ops_fmt(g, n->in[2], s, sizeof s);
            return kn_op_error(d, g, n, "bias '%s' must be f32[%lld], got %s",
                               b->name, (long long)out, s);
        }
    }
    kn_shape y = x->shape;
    y.d[y.rank - 1] = out;
    kn_ops_set_out(g, n, 0, KN_F32, &y);
    return KN_OK;
}

/* Y = X W^T (+ Y when `accumulate`): one kn_rt_sgemm over the bound X, W, Y. */
static void linear_emit_sgemm(kn_emit *e, const kn_graph *g, const kn_node *n, bool accumulate)
{
    const kn_value *x = kn_graph_value(g, n->in[0]);
    int r = x->shape.rank;
    long long k = (long long)x->shape.d[r - 1];
    long long out = kn_node_attr_i(n, "out", 0);
    char m[64];
    kn_ops_dims_int_expr(e, n->in[0], 0, r - 1, m, sizeof m);
    kn_emit_line(e, "kn_rt_sgemm(0, 1, %s, %lld, %lld, 1.0f, X, %lld, W, %lld, %s, Y, %lld);",
                 m, out, k, k, k, accumulate ? "1.0f" : "0.0f", out);
}

static bool linear_has_epilogue(const kn_node *n)
{
    return linear_has_bn(n) || kn_node_attr(n, "act_min") || kn_node_attr(n, "act_max");
}

/* Binds GAMMA, BETA, MEAN, VAR: the fused batchnorm's inputs. */
static void linear_bind_bn(kn_emit *e, const kn_node *n)
{
    int k = linear_has_bias(n) ? 3 : 2;
    kn_emit_bind_in(e, "GAMMA", n->in[k]);
    kn_emit_bind_in(e, "BETA", n->in[k + 1]);
    kn_emit_bind_in(e, "MEAN", n->in[k + 2]);
    kn_emit_bind_in(e, "VAR", n->in[k + 3]);
}

/* `float s = ..., t = ...;`: batchnorm's per-feature scale and shift of
 * feature `c` (an expression), in the one formula C and CUDA share. */
static void linear_emit_bn_scale(kn_emit *e, const kn_node *n, const char *s, const char *t, const char *c)
{
    char eps[64];
    kn_emit_float_lit(kn_ops_attr_num(n, "bn_eps", 1e-5), eps, sizeof eps);
    kn_emit_line(e, "%s = GAMMA[%s] / sqrtf(VAR[%s] + %s);", s, c, c, eps);
    kn_emit_line(e, "%s = BETA[%s] - MEAN[%s] * %s;", t, c, c, s);
}

/* The statements turning `v` = Y[i * out + c] into the layer's output:
 * the batchnorm's v * s + t (`s`, `t`), then the clamp. */
static void linear_emit_epilogue_value(kn_emit *e, const kn_node *n, const char *s, const char *t)
{
    kn_ops_clamp act;
    kn_ops_read_clamp(n, "act_min", "act_max", &act);
    if (linear_has_bn(n)) kn_emit_line(e, "v = v * %s + %s;", s, t);
    kn_ops_emit_clamp_store(e, &act, "v");
}

/* The epilogue over Y's rows, one pass after the GEMM; the batchnorm's
 * per-feature s and t go to the thread's scratch first. */
static void linear_emit_epilogue(kn_emit *e, const kn_node *n, const char *rows, long long out)
{
    kn_emit_open(e);
    if (linear_has_bn(n)) {
        linear_bind_bn(e, n);
        kn_emit_line(e, "float *restrict S = kn_rt_scratch(%lld), *restrict T = S + %lld;", 2 * out, out);
        kn_emit_line(e, "for (size_t c = 0; c < %lld; c++) {", out);
        e->indent++;
        linear_emit_bn_scale(e, n, "S[c]", "T[c]", "c");
        e->indent--;
        kn_emit_line(e, "}");
    }
    kn_emit_line(e, "for (size_t i = 0; i < %s; i++) {", rows);
    e->indent++;
    kn_emit_line(e, "KN_IVDEP");
    kn_emit_line(e, "for (size_t c = 0; c < %lld; c++) {", out);
    e->indent++;
    kn_emit_line(e, "float v = Y[i * %lld + c];", out);
    linear_emit_epilogue_value(e, n, "S[c]", "T[c]");
    kn_emit_line(e, "Y[i * %lld + c] = v;", out);
    kn_emit_close(e); /* c */
    kn_emit_close(e); /* i */
    kn_emit_close(e);
}

/* The bias rows are copied into Y and the GEMM adds onto them (adding the
 * bias in the epilogue instead rounds differently from the train phase,
 * whose frozen prefix must give the cached features' bits). */
static kn_status linear_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_value *x = kn_graph_value(g, n->in[0]);
    int r = x->shape.rank;
    long long out = kn_node_attr_i(n, "out", 0);
    char rows[64];
    kn_ops_dims_expr(e, n->in[0], 0, r - 1, rows, sizeof rows);
    bool bias = linear_has_bias(n), epilogue = linear_has_epilogue(n);

    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_in(e, "W", n->in[1]);
    if (bias) kn_emit_bind_in(e, "B", n->in[2]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    if (bias) {
        kn_emit_line(e, "for (size_t i = 0; i < %s; i++)", rows);
        kn_emit_line(e, "    memcpy(Y + i * %lld, B, %lld * sizeof(float));", out, out);
    }
    linear_emit_sgemm(e, g, n, bias);
    if (epilogue) linear_emit_epilogue(e, n, rows, out);
    return KN_OK;
}

/* GPU: one kernel broadcasts the bias into Y, then cuBLAS (the host's
 * kn_rt_sgemm, redirected) accumulates X W^T onto it, then one kernel
 * applies the fused batchnorm and clamp per element (the CPU's arithmetic). */
static kn_status linear_emit_cuda(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    bool bias = linear_has_bias(n), epilogue = linear_has_epilogue(n);
    char numel[64];
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    long long out = kn_node_attr_i(n, "out", 0);
    if (bias) {
        kn_emit_cuda_kernel(e, numel);
        kn_emit_bind_in(e, "B", n->in[2]);
        kn_emit_bind_out(e, "Y", n->out[0]);
        kn_emit_for(e, "i", numel, "Y[i] = B[i %% %lld];", out);
        kn_emit_cuda_end(e);
    }
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_in(e, "W", n->in[1]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    linear_emit_sgemm(e, g, n, bias);
    if (!epilogue) return KN_OK;
    kn_emit_cuda_kernel(e, numel);
    if (linear_has_bn(n)) linear_bind_bn(e, n);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_for_open(e, "i", numel);
    kn_emit_line(e, "const size_t c = i %% %lld;", out);
    if (linear_has_bn(n)) {
        kn_emit_line(e, "float s, t;");
        linear_emit_bn_scale(e, n, "s", "t", "c");
    }
    kn_emit_line(e, "float v = Y[i];");
    linear_emit_epilogue_value(e, n, "s", "t");
    kn_emit_line(e, "Y[i] = v;");
    kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static int64_t linear_macs(const kn_graph *g, const kn_node *n)
{
    const kn_value *x = kn_graph_value(g, n->in[0]);
    int r = x->shape.rank;
    int64_t rows = kn_ops_dims_const(&x->shape, 0, r - 1), m;
    if (!kn_mul_ok(rows, x->shape.d[r - 1], &m) ||
        !kn_mul_ok(m, kn_node_attr_i(n, "out", 0), &m))
        return INT64_MAX;
    return m;
}

/* ---- matmul ---- */

static kn_status matmul_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "first operand") != KN_OK) return KN_ERR;
    if (kn_ops_want_f32(d, g, n, 1, "second operand") != KN_OK) return KN_ERR;
    const kn_shape *a = &kn_graph_value(g, n->in[0])->shape;
    const kn_shape *b = &kn_graph_value(g, n->in[1])->shape;
    char sa[128], sb[128];
    kn_ops_fmt(g, n->in[0], sa, sizeof sa);
    kn_ops_fmt(g, n->in[1], sb, sizeof sb);
    if (a->rank < 2 || b->rank < 2)
        return kn_op_error(d, g, n, "expects operands of rank >= 2, got %s and %s", sa, sb);
    int64_t m = a->d[a->rank - 2], k = a->d[a->rank - 1];
    int64_t kb = b->d[b->rank - 2], p = b->d[b->rank - 1];
    if (k == KN_DIM_N || kb == KN_DIM_N || p == KN_DIM_N || (m == KN_DIM_N && (a->rank > 2 || b->rank > 2)))
        return kn_op_error(d, g, n, "cannot multiply over the batch dim N: %s @ %s", sa, sb);
    if (k != kb)
        return kn_op_error(d, g, n, "inner dims differ: %s @ %s (%lld != %lld)", sa, sb,
                           (long long)k, (long long)kb);
    if (m > GEMM_DIM_MAX || k > GEMM_DIM_MAX || p > GEMM_DIM_MAX)
        return kn_op_error(d, g, n, "matrix dims of %s @ %s exceed %d", sa, sb, INT_MAX);
    /* Leading (batch) dims broadcast. */
    kn_shape la = {.rank = a->rank - 2}, lb = {.rank = b->rank - 2}, lo;
    memcpy(la.d, a->d, sizeof(int64_t) * (size_t)la.rank);
    memcpy(lb.d, b->d, sizeof(int64_t) * (size_t)lb.rank);
    if (kn_broadcast_shapes(&la, &lb, &lo, n, g, d) != KN_OK) return KN_ERR;
    for (int i = 1; i < lo.rank; i++)
        if (lo.d[i] == KN_DIM_N)
            return kn_op_error(d, g, n, "cannot broadcast %s @ %s: the batch dim N would "
                               "not be the first dim of the result", sa, sb);
    if (lo.rank + 2 > KN_MAX_RANK)
        return kn_op_error(d, g, n, "result rank exceeds %d", KN_MAX_RANK);
    kn_shape y = lo;
    y.rank = lo.rank + 2;
    y.d[lo.rank] = m;
    y.d[lo.rank + 1] = p;
    kn_ops_set_out(g, n, 0, KN_F32, &y);
    return KN_OK;
}

static kn_status matmul_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_shape *a = &kn_graph_value(g, n->in[0])->shape;
    const kn_shape *b = &kn_graph_value(g, n->in[1])->shape;
    const kn_shape *y = &kn_graph_value(g, n->out[0])->shape;
    long long k = (long long)a->d[a->rank - 1], p = (long long)b->d[b->rank - 1];
    kn_emit_bind_in(e, "A", n->in[0]);
    kn_emit_bind_in(e, "B", n->in[1]);
    kn_emit_bind_out(e, "Y", n->out[0]);

    if (b->rank == 2) {
        /* All of A's leading dims fold into the rows of one GEMM. */
        char rows[64];
        kn_ops_dims_int_expr(e, n->in[0], 0, a->rank - 1, rows, sizeof rows);
        kn_emit_line(e, "kn_rt_sgemm(0, 0, %s, %lld, %lld, 1.0f, A, %lld, B, %lld, 0.0f, Y, %lld);",
                     rows, p, k, k, p, p);
        return KN_OK;
    }
    /* One GEMM per output matrix; A/B offsets from broadcast strides. */
    long long m = (long long)a->d[a->rank - 2];
    int lr = y->rank - 2;
    char count[64];
    kn_ops_dims_expr(e, n->out[0], 0, lr, count, sizeof count);
    bool same = a->rank == y->rank && b->rank == y->rank;
    for (int k2 = 0; k2 < lr && same; k2++) same = a->d[k2] == y->d[k2] && b->d[k2] == y->d[k2];
    if (same) { /* no broadcasting: matrix i of A times matrix i of B, one strided call (cuBLAS: one launch) */
        kn_emit_line(e, "kn_rt_sgemm_strided(0, 0, %lld, %lld, %lld, 1.0f, A, %lld, %lld, B, %lld, %lld, 0.0f, Y, %lld, "
                     "%lld, (int)(%s));", m, p, k, k, m * k, p, k * p, p, m * p, count);
        return KN_OK;
    }
    kn_emit_line(e, "for (size_t i = 0; i < %s; i++) {", count);
    e->indent++;
    kn_ops_emit_matmul_bcast(e, a, b, y);
    kn_emit_line(e, "kn_rt_sgemm(0, 0, %lld, %lld, %lld, 1.0f, A + ia * %lld, %lld, "
                 "B + ib * %lld, %lld, 0.0f, Y + i * %lld, %lld);",
                 m, p, k, m * k, k, k * p, p, m * p, p);
    e->indent--;
    kn_emit_line(e, "}");
    return KN_OK;
}

static int64_t matmul_macs(const kn_graph *g, const kn_node *n)
{
    const kn_shape *a = &kn_graph_value(g, n->in[0])->shape;
    const kn_shape *y = &kn_graph_value(g, n->out[0])->shape;
    int64_t m = kn_ops_dims_const(y, 0, y->rank - 1), r;
    if (!kn_mul_ok(m, a->d[a->rank - 1], &r) || !kn_mul_ok(r, y->d[y->rank - 1], &r))
        return INT64_MAX;
    return r;
}

/* ---- gradients ---- */

static kn_status linear_grad(kn_graph *g, const kn_node *n, const int *dy,
                             const bool *need, int *dx, kn_diag *d)
{
    for (int i = 0; i < n->n_in; i++) dx[i] = -1;
    if (dy[0] < 0) return KN_OK;
    int x = n->in[0], w = n->in[1];
    if (need[0]) {
        int in[2] = {dy[0], w};
        if ((dx[0] = kn_ops_grad_done(g, kn_ops_grad_node(g, n, KN_OP_MATMUL, "x", in, 2, 1), d)) < 0)
            return KN_ERR;
    }
    if (need[1]) {
        int in[2] = {dy[0], x};
        kn_node *gw = kn_ops_grad_node(g, n, KN_OP_LINEAR_GRAD_WEIGHT, "weight", in, 2, 1);
        if ((dx[1] = kn_ops_grad_done(g, gw, d)) < 0) return KN_ERR;
    }
    if (n->n_in > 2 && need[2]) {
        kn_node *gb = kn_ops_grad_node(g, n, KN_OP_SUM_TO, "bias", &dy[0], 1, 1);
        kn_ops_set_shape_attr(gb, "shape", &kn_graph_value(g, n->in[2])->shape);
        if ((dx[2] = kn_ops_grad_done(g, gb, d)) < 0) return KN_ERR;
    }
    return KN_OK;
}

static kn_status matmul_grad(kn_graph *g, const kn_node *n, const int *dy,
                             const bool *need, int *dx, kn_diag *d)
{
    static const char *const tag[2] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        dx[i] = -1;
        if (dy[0] < 0 || !need[i]) continue;
        int in[3] = {dy[0], n->in[0], n->in[1]};
        kn_node *gn = kn_ops_grad_node(g, n, KN_OP_MATMUL_GRAD, tag[i], in, 3, 1);
        kn_node_set_attr_i(gn, "which", i);
        if ((dx[i] = kn_ops_grad_done(g, gn, d)) < 0) return KN_ERR;
    }
    return KN_OK;
}

static const kn_arg_spec linear_args[] = {
    {"out", KN_ATTR_INT, true, 0, 0, NULL},
    {"bias", KN_ATTR_BOOL, false, 1, 0, NULL},
    {"init", KN_ATTR_STRING, false, 0, 0, "kaiming_uniform"},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_linear = {
    .name = "linear", .min_inputs = 1, .max_inputs = 1, .args = linear_args,
    .add_params = linear_add_params, .infer = linear_infer, .emit_c = linear_emit, .emit_cuda = linear_emit_cuda,
    .grad = linear_grad, .macs = linear_macs,
};
const kn_op_def kn_op_def_matmul = {
    .name = "matmul", .min_inputs = 2, .max_inputs = 2,
    .infer = matmul_infer, .emit_c = matmul_emit, .emit_cuda = matmul_emit, /* host GEMM/copy calls: cuBLAS on the GPU */ .grad = matmul_grad, .macs = matmul_macs,
};

/* linear_grad.c — backward ops of linear and matmul, built by their gradient
 * rules (linear.c), never written in model files.
 *
 * linear_grad_weight(dy f32[N, out], x f32[N, K]) -> dW f32[out, K] = dy^T x:
 * one GEMM that also sums over the batch.
 * matmul_grad(dy, a, b, which=0|1) -> dA (shape of a) or dB (shape of b):
 * dA = dy B^T and dB = A^T dy per output matrix, summed over every leading
 * dim the operand was broadcast along (the batch dim included when the
 * operand is unbatched), so no separate sum_to is needed.
 */
#include "op_util.h"

static kn_status lgw_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "output gradient") != KN_OK) return KN_ERR;
    if (kn_ops_want_f32(d, g, n, 1, "input") != KN_OK) return KN_ERR;
    const kn_shape *dy = &kn_graph_value(g, n->in[0])->shape;
    const kn_shape *x = &kn_graph_value(g, n->in[1])->shape;
    if (dy->rank != 2 || x->rank != 2 || dy->d[0] != x->d[0]) {
        char s1[128], s2[128];
        kn_ops_fmt(g, n->in[0], s1, sizeof s1);
        kn_ops_fmt(g, n->in[1], s2, sizeof s2);
        return kn_op_error(d, g, n, "expects dy f32[N, out] and x f32[N, K], got %s and %s", s1, s2);
    }
    int64_t wd[2] = {dy->d[1], x->d[1]};
    kn_shape w = kn_shape_make(2, wd);
    kn_ops_set_out(g, n, 0, KN_F32, &w);
    return KN_OK;
}

static kn_status lgw_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_shape *x = &kn_graph_value(g, n->in[1])->shape;
    long long out = (long long)kn_graph_value(g, n->in[0])->shape.d[1];
    long long k = (long long)x->d[1];
    char rows[64];
    kn_ops_dims_int_expr(e, n->in[1], 0, 1, rows, sizeof rows);
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_in(e, "X", n->in[1]);
    kn_emit_bind_out(e, "dW", n->out[0]);
    kn_emit_line(e, "kn_rt_sgemm(1, 0, %lld, %lld, %s, 1.0f, dY, %lld, X, %lld, 0.0f, dW, %lld);",
                 out, k, rows, out, k, k);
    return KN_OK;
}

static kn_status mmg_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    for (int i = 0; i < 3; i++)
        if (kn_ops_want_f32(d, g, n, i, i ? "operand" : "output gradient") != KN_OK) return KN_ERR;
    int64_t which = kn_node_attr_i(n, "which", 0);
    if (which != 0 && which != 1)
        return kn_op_error(d, g, n, "which must be 0 (dA) or 1 (dB), got %lld", (long long)which);
    const kn_value *v = kn_graph_value(g, n->in[1 + which]);
    kn_ops_set_out(g, n, 0, KN_F32, &v->shape);
    return KN_OK;
}

static kn_status mmg_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_shape *y = &kn_graph_value(g, n->in[0])->shape;
    const kn_shape *a = &kn_graph_value(g, n->in[1])->shape;
    const kn_shape *b = &kn_graph_value(g, n->in[2])->shape;
    bool want_a = kn_node_attr_i(n, "which", 0) == 0;
    long long m = (long long)a->d[a->rank - 2], k = (long long)a->d[a->rank - 1];
    long long p = (long long)b->d[b->rank - 1];
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_in(e, want_a ? "B" : "A", n->in[want_a ? 2 : 1]);
    kn_emit_bind_out(e, want_a ? "dA" : "dB", n->out[0]);

    if (b->rank == 2) {
        /* y's rows are A's rows: one GEMM either way, dB summing over them. */
        char rows[64];
        kn_ops_dims_int_expr(e, n->in[1], 0, a->rank - 1, rows, sizeof rows);
        if (want_a)
            kn_emit_line(e, "kn_rt_sgemm(0, 1, %s, %lld, %lld, 1.0f, dY, %lld, B, %lld, 0.0f, dA, %lld);",
                         rows, k, p, p, p, k);
        else
            kn_emit_line(e, "kn_rt_sgemm(1, 0, %lld, %lld, %s, 1.0f, A, %lld, dY, %lld, 0.0f, dB, %lld);",
                         k, p, rows, k, p, p);
        return KN_OK;
    }
    /* General case: zero, then accumulate one GEMM per output matrix. */
    char numel[64], count[64];
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    kn_ops_dims_expr(e, n->in[0], 0, y->rank - 2, count, sizeof count);
    kn_emit_line(e, "memset(%s, 0, %s * sizeof(float));", want_a ? "dA" : "dB", numel);
    kn_emit_line(e, "for (size_t i = 0; i < %s; i++) {", count);
    e->indent++;
    kn_ops_emit_matmul_bcast(e, a, b, y);
    if (want_a) {
        kn_emit_line(e, "kn_rt_sgemm(0, 1, %lld, %lld, %lld, 1.0f, dY + i * %lld, %lld, "
                     "B + ib * %lld, %lld, 1.0f, dA + ia * %lld, %lld);",
                     m, k, p, m * p, p, k * p, p, m * k, k);
    } else {
        kn_emit_line(e, "kn_rt_sgemm(1, 0, %lld, %lld, %lld, 1.0f, A + ia * %lld, %lld, "
                     "dY + i * %lld, %lld, 1.0f, dB + ib * %lld, %lld);",
                     k, p, m, m * k, k, m * p, p, k * p, p);
    }
    e->indent--;
    kn_emit_line(e, "}");
    return KN_OK;
}

const kn_op_def kn_op_def_linear_grad_weight = {
    .name = "linear_grad_weight", .min_inputs = 2, .max_inputs = 2,
    .infer = lgw_infer, .emit_c = lgw_emit, .emit_cuda = lgw_emit, /* host GEMM/copy calls: cuBLAS on the GPU */
    .internal = true,
};
const kn_op_def kn_op_def_matmul_grad = {
    .name = "matmul_grad", .min_inputs = 3, .max_inputs = 3,
    .infer = mmg_infer, .emit_c = mmg_emit, .emit_cuda = mmg_emit, /* host GEMM/copy calls: cuBLAS on the GPU */
    .internal = true,
};

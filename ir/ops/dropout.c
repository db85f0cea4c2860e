/* dropout.c — dropout(x, p=0.5) and its backward op dropout_grad(dy).
 *
 * Eval mode is the identity (a copy into the output).  Train mode is
 * inverted dropout: element i is kept when
 *     u(g) >= p,  g = (ctx->step << 32) + ctx->sample0 * S + i,
 * where u(g) is word g % 4 of the Philox block g / 4 (kn_rt_uniform4: one
 * block serves four elements; kn_rt_dropout draws 16 blocks at a time).
 * and kept elements are scaled by 1/(1-p).  STREAM is the node's int
 * attribute `stream`, fixed when the node is created (tag "drop" in the high
 * 32 bits, the node id in the low 32) and copied to dropout_grad, which
 * regenerates the same mask instead of storing it.  S is the number of
 * elements per sample and ctx->sample0 counts the samples of the step's
 * earlier micro-batches, so with --accumulate K the micro-batches draw the
 * same masks one batch of all their samples would.  The index puts the step
 * in the high 32 bits and the element in the low 32, so masks of different
 * steps never share a counter (up to 2^32 elements per call and 2^32 steps);
 * the tag keeps dropout streams apart from the small per-parameter streams
 * weight init uses.
 */
#include "op_util.h"

#define DROPOUT_STREAM_TAG 0x64726f70LL /* "drop" */

/* Gives the node its RNG stream once; clones and re-inference keep it. */
static void dropout_assign_stream(kn_node *n)
{
    if (!kn_node_attr(n, "stream"))
        kn_node_set_attr_i(n, "stream", (DROPOUT_STREAM_TAG << 32) | (int64_t)(uint32_t)n->id);
}

static kn_status dropout_add_params(kn_graph *g, kn_node *n, kn_diag *d)
{
    (void)g;
    (void)d;
    dropout_assign_stream(n);
    return KN_OK;
}

static kn_status dropout_check_p(kn_graph *g, kn_node *n, kn_diag *d)
{
    double p = kn_ops_attr_num(n, "p", 0.5);
    if (!(p >= 0 && p <= 1))
        return kn_op_error(d, g, n, "p must be in [0, 1], got %g", p);
    return KN_OK;
}

static kn_status dropout_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "input") != KN_OK) return KN_ERR;
    if (dropout_check_p(g, n, d) != KN_OK) return KN_ERR;
    dropout_assign_stream(n);
    kn_ops_set_out(g, n, 0, KN_F32, &kn_graph_value(g, n->in[0])->shape);
    return KN_OK;
}

/* The constants of a mask over value `vid`: prints `stream` and `base`,
 * fills the element count, p and 1/(1-p) literals. */
static void dropout_emit_counters(kn_emit *e, const kn_node *n, int vid, char numel[64], char pl[64], char sl[64])
{
    double p = kn_ops_attr_num(n, "p", 0.5);
    kn_emit_numel(e, vid, numel, 64);
    kn_emit_float_lit(p, pl, 64);
    kn_emit_float_lit(p < 1 ? 1.0 / (1.0 - p) : 0.0, sl, 64);
    int64_t per_sample = 0;
    if (kn_shape_is_batched(&e->g->values[vid]->shape)) kn_shape_numel_per_sample(&e->g->values[vid]->shape, &per_sample);
    kn_emit_line(e, "const uint64_t stream = %lluull;", (unsigned long long)kn_node_attr_i(n, "stream", 0));
    kn_emit_line(e, "const uint64_t base = ((uint64_t)ctx->step << 32) + (uint64_t)ctx->sample0 * %lldu;",
                 (long long)per_sample);
}

/* OUT[i] = mask_i ? IN[i] / (1 - p) : 0 over value `vid`'s elements. */
static void dropout_emit_mask(kn_emit *e, const kn_node *n, int vid, const char *out,
                              const char *in)
{
    char numel[64], pl[64], sl[64];
    dropout_emit_counters(e, n, vid, numel, pl, sl);
    kn_emit_line(e, "kn_rt_dropout(ctx->seed, stream, base, %s, %s, %s, %s, %s);", numel, pl, sl, in, out);
}

static kn_status dropout_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    char numel[64];
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    if (g->mode == KN_MODE_TRAIN && kn_ops_attr_num(n, "p", 0.5) > 0) {
        dropout_emit_mask(e, n, n->out[0], "Y", "X");
        return KN_OK;
    }
    kn_emit_line(e, "if (Y != X) memcpy(Y, X, %s * sizeof(float));", numel);
    return KN_OK;
}

static kn_status dropout_grad_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "output gradient") != KN_OK) return KN_ERR;
    if (dropout_check_p(g, n, d) != KN_OK) return KN_ERR;
    if (!kn_node_attr(n, "stream"))
        return kn_op_error(d, g, n, "needs the forward node's 'stream' attribute");
    kn_ops_set_out(g, n, 0, KN_F32, &kn_graph_value(g, n->in[0])->shape);
    return KN_OK;
}

static kn_status dropout_grad_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    (void)g;
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    dropout_emit_mask(e, n, n->out[0], "dX", "dY");
    return KN_OK;
}

static kn_status dropout_grad(kn_graph *g, const kn_node *n, const int *dy,
                              const bool *need, int *dx, kn_diag *d)
{
    dx[0] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    double p = kn_ops_attr_num(n, "p", 0.5);
    if (g->mode != KN_MODE_TRAIN || p == 0) { /* identity */
        dx[0] = dy[0];
        return KN_OK;
    }
    kn_node *gn = kn_ops_grad_node(g, n, KN_OP_DROPOUT_GRAD, "x", &dy[0], 1, 1);
    kn_node_set_attr_f(gn, "p", p);
    kn_node_set_attr_i(gn, "stream", kn_node_attr_i(n, "stream", 0));
    return (dx[0] = kn_ops_grad_done(g, gn, d)) < 0 ? KN_ERR : KN_OK;
}

/* ---- CUDA: one thread per element, each drawing its element's word of
 * the same Philox block the CPU loop uses, so the masks are identical. ---- */

static void dropout_emit_mask_cuda(kn_emit *e, const kn_node *n, int vid, const char *out, const char *in)
{
    char numel[64], pl[64], sl[64];
    dropout_emit_counters(e, n, vid, numel, pl, sl);
    kn_emit_for_open(e, "i", numel);
    kn_emit_line(e, "const uint64_t g = base + i;");
    kn_emit_line(e, "float u[4];");
    kn_emit_line(e, "kn_rt_uniform4(ctx->seed, stream, g >> 2, u);");
    kn_emit_line(e, "%s[i] = u[g & 3] >= %s ? %s[i] * %s : 0.0f;", out, pl, in, sl);
    kn_emit_close(e);
}

/* The masked copy as one kernel: OUT = mask(IN) over the node's output. */
static kn_status dropout_emit_kernel(kn_emit *e, const kn_node *n, const char *in, const char *out)
{
    char numel[64];
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    kn_emit_cuda_kernel(e, numel);
    kn_emit_bind_in(e, in, n->in[0]);
    kn_emit_bind_out(e, out, n->out[0]);
    dropout_emit_mask_cuda(e, n, n->out[0], out, in);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static kn_status dropout_emit_cuda(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    if (g->mode != KN_MODE_TRAIN || kn_ops_attr_num(n, "p", 0.5) <= 0)
        return dropout_emit(e, g, n); /* a copy: host memcpy, redirected on the GPU */
    return dropout_emit_kernel(e, n, "X", "Y");
}

static kn_status dropout_grad_emit_cuda(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    (void)g;
    return dropout_emit_kernel(e, n, "dY", "dX");
}

/* Elementwise (GPU kernels only): element i's word of its Philox block,
 * the mask dropout_emit_mask_cuda draws; `i` is the run's loop index. */
static void dropout_elem_mask(kn_emit *e, const kn_node *n, const char *in, const char *out)
{
    char numel[64], pl[64], sl[64];
    kn_emit_open(e);
    dropout_emit_counters(e, n, n->out[0], numel, pl, sl);
    kn_emit_line(e, "const uint64_t g = base + i;");
    kn_emit_line(e, "float u[4];");
    kn_emit_line(e, "kn_rt_uniform4(ctx->seed, stream, g >> 2, u);");
    kn_emit_line(e, "%s = u[g & 3] >= %s ? %s * %s : 0.0f;", out, pl, in, sl);
    kn_emit_close(e);
}

static void dropout_elem(kn_emit *e, const kn_graph *g, const kn_node *n, const char *const *in, const char *out)
{
    if (g->mode != KN_MODE_TRAIN || kn_ops_attr_num(n, "p", 0.5) <= 0) kn_emit_line(e, "%s = %s;", out, in[0]);
    else dropout_elem_mask(e, n, in[0], out);
}

static void dropout_grad_elem(kn_emit *e, const kn_graph *g, const kn_node *n, const char *const *in, const char *out)
{
    (void)g;
    dropout_elem_mask(e, n, in[0], out);
}

static bool dropout_train_impure(const kn_graph *g, const kn_node *n)
{
    (void)g;
    return kn_ops_attr_num(n, "p", 0.5) > 0;
}

static const kn_arg_spec dropout_args[] = {
    {"p", KN_ATTR_FLOAT, false, 0, 0.5, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_dropout = {
    .name = "dropout", .min_inputs = 1, .max_inputs = 1, .args = dropout_args,
    .add_params = dropout_add_params, .infer = dropout_infer, .emit_c = dropout_emit, .emit_cuda = dropout_emit_cuda,
    .emit_elem = dropout_elem, .elem_gpu_only = true, .grad = dropout_grad, .train_impure = dropout_train_impure,
};
const kn_op_def kn_op_def_dropout_grad = {
    .name = "dropout_grad", .min_inputs = 1, .max_inputs = 1,
    .infer = dropout_grad_infer, .emit_c = dropout_grad_emit, .emit_cuda = dropout_grad_emit_cuda,
    .emit_elem = dropout_grad_elem, .elem_gpu_only = true, .internal = true,
};

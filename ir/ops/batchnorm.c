/* batchnorm.c — batch normalisation over the channel dim (dim 1).
 *
 * batchnorm(x, eps=1e-5, momentum=0.1): x f32[N, C] or f32[N, C, ...]
 * (BatchNorm1d/2d/3d), creating `<node>.weight` (ones), `<node>.bias`
 * (zeros), and the buffers `<node>.running_mean` (zeros) and
 * `<node>.running_var` (ones), all [C].  Input order follows ONNX
 * BatchNormalization: X, scale, B, input_mean, input_var.
 *
 * Eval mode: y = x * s + (b - mean * s) with s = w / sqrt(var + eps),
 * PyTorch's CPU formula.  Train mode normalises with the batch statistics
 * (mean and biased variance over N and the spatial dims, in double) and
 * updates the buffers in place as PyTorch does:
 *   running = (1 - momentum) * running + momentum * stat,
 * with the UNBIASED variance (count / (count - 1)) for running_var.
 * batchnorm_grad(dy, x, weight[, running_mean, running_var], eps, training)
 * gives dx, dweight, dbias: in train mode it recomputes the batch statistics
 * from x (nothing is saved by the forward), in eval mode it uses the
 * running statistics (3 more inputs).
 *
 * bn_fold(w, [b,] weight, bias, running_mean, running_var, eps, has_bias)
 * -> w', b': an eval-mode batchnorm folded into the conv before it
 * (passes/fuse_epilogue.c, CPU inference): w'[o] = w[o] * s[o] and b' = b * s
 * + (bias - mean * s).  The weights are trained in place, so the fold runs
 * at the start of each call (one pass over w), not at build time.
 *
 * A batchnorm whose weight and bias are both frozen is a fixed function
 * even in train mode (running statistics, no update), as Keras treats a
 * frozen layer: a frozen pretrained backbone then computes what it computed
 * when it was trained, and its outputs can be cached per image.
 */
#include "op_util.h"

static const char *const bn_params[4] = {"weight", "bias", "running_mean", "running_var"};

/* Weight and bias frozen: a fixed function even in train mode (see the top). */
static bool bn_frozen(const kn_graph *g, const kn_node *n)
{
    return n->n_in >= 3 && !kn_graph_value(g, n->in[1])->trainable && !kn_graph_value(g, n->in[2])->trainable;
}

static bool bn_uses_batch_stats(const kn_graph *g, const kn_node *n)
{
    return g->mode == KN_MODE_TRAIN && !bn_frozen(g, n);
}

static bool bn_train_impure(const kn_graph *g, const kn_node *n) { return !bn_frozen(g, n); }

static kn_status bn_check_input(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "input") != KN_OK) return KN_ERR;
    const kn_value *x = kn_graph_value(g, n->in[0]);
    if (x->shape.rank < 2 || x->shape.d[1] == KN_DIM_N) {
        char s[128];
        kn_ops_fmt(g, n->in[0], s, sizeof s);
        return kn_op_error(d, g, n, "expects f32[N, C] or f32[N, C, ...] input, got %s", s);
    }
    double eps = kn_ops_attr_num(n, "eps", 1e-5);
    double mom = kn_ops_attr_num(n, "momentum", 0.1);
    if (!(eps > 0))
        return kn_op_error(d, g, n, "eps must be > 0, got %g", eps);
    if (!(mom >= 0 && mom <= 1))
        return kn_op_error(d, g, n, "momentum must be in [0, 1], got %g", mom);
    return KN_OK;
}

static kn_status bn_add_params(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (bn_check_input(g, n, d) != KN_OK) return KN_ERR;
    if (n->n_in > 1) return KN_OK; /* already has its parameters */
    int64_t c = kn_graph_value(g, n->in[0])->shape.d[1];
    kn_shape s = kn_shape_make(1, &c);
    kn_op_add_param(g, n, "weight", KN_VAL_PARAM, &s, KN_INIT_ONES, c, c);
    kn_op_add_param(g, n, "bias", KN_VAL_PARAM, &s, KN_INIT_ZEROS, c, c);
    kn_op_add_param(g, n, "running_mean", KN_VAL_BUFFER, &s, KN_INIT_ZEROS, c, c);
    kn_op_add_param(g, n, "running_var", KN_VAL_BUFFER, &s, KN_INIT_ONES, c, c);
    return KN_OK;
}

static kn_status bn_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (bn_check_input(g, n, d) != KN_OK) return KN_ERR;
    if (n->n_in != 5)
        return kn_op_error(d, g, n, "expects 5 inputs (x, weight, bias, running_mean, "
                           "running_var), got %d", n->n_in);
    const kn_value *x = kn_graph_value(g, n->in[0]);
    int64_t c = x->shape.d[1];
    for (int i = 1; i < 5; i++) {
        const kn_value *p = kn_graph_value(g, n->in[i]);
        if (p->dtype != KN_F32 || p->shape.rank != 1 || p->shape.d[0] != c) {
            char s[128];
            kn_ops_fmt(g, n->in[i], s, sizeof s);
            return kn_op_error(d, g, n, "%s '%s' must be f32[%lld], got %s",
                               bn_params[i - 1], p->name, (long long)c, s);
        }
    }
    kn_ops_set_out(g, n, 0, KN_F32, &x->shape);
    return KN_OK;
}

/* Per channel c: x(i, k) is X[(i * C + c) * INNER + k], i < rows, k < INNER. */
static void bn_emit_header(kn_emit *e, long long c, long long inner, const char *rows)
{
    kn_emit_line(e, "const size_t ROWS = %s, C = %lld, INNER = %lld;", rows, c, inner);
    kn_emit_line(e, "const double count = (double)ROWS * INNER;");
}

/* With INNER == 1 (batchnorm after a linear layer) a channel's values are a
 * column of a row-major matrix: walking channel by channel strides through
 * memory and cannot vectorize.  These variants walk rows, keeping per-channel
 * sums in arrays.  Each channel's sums still add its rows in the same order,
 * so the results are bit for bit those of the channel loops. */
/* Per-channel arrays live on the stack of the generated function: bounded. */
#define BN_MAX_STACK_CHANNELS 4096
static bool bn_row_major(long long inner, long long c) { return inner == 1 && c <= BN_MAX_STACK_CHANNELS; }

/* Emits S[c] = sum over rows of EXPR (EXPR indexes j = i * C + c). */
static void bn_emit_col_sum(kn_emit *e, const char *sum, const char *expr)
{
    kn_emit_line(e, "for (size_t c = 0; c < C; c++) %s[c] = 0.0;", sum);
    kn_emit_line(e, "for (size_t i = 0; i < ROWS; i++) {");
    kn_emit_line(e, "    KN_IVDEP");
    kn_emit_line(e, "    for (size_t c = 0; c < C; c++) {");
    kn_emit_line(e, "        const size_t j = i * C + c;");
    kn_emit_line(e, "        %s[c] += %s;", sum, expr);
    kn_emit_line(e, "    }");
    kn_emit_line(e, "}");
}

/* Batch statistics MU, INVSTD (double per channel) as the channel loops compute them. */
static void bn_emit_batch_stats(kn_emit *e, const char *eps, bool biased_var_out)
{
    kn_emit_line(e, "double MU[C], SS[C], INVSTD[C];");
    bn_emit_col_sum(e, "MU", "X[j]");
    kn_emit_line(e, "for (size_t c = 0; c < C; c++) MU[c] = MU[c] / count;");
    bn_emit_col_sum(e, "SS", "(X[j] - MU[c]) * (X[j] - MU[c])");
    if (biased_var_out)
        kn_emit_line(e, "for (size_t c = 0; c < C; c++) INVSTD[c] = (float)(1.0 / sqrt(SS[c] / count + (double)%s));", eps);
    else
        kn_emit_line(e, "for (size_t c = 0; c < C; c++) INVSTD[c] = 1.0 / sqrt(SS[c] / count + (double)%s);", eps);
}

/* Running statistics, PyTorch's way: the unbiased batch variance (sum of
 * squares SS over count - 1) goes into VAR; `var` is the biased one. */
static void bn_emit_running_update(kn_emit *e, const char *mom, const char *mu, const char *ss)
{
    kn_emit_line(e, "const double unbiased = count > 1.0 ? %s / (count - 1.0) : var;", ss);
    kn_emit_line(e, "MEAN[c] = (1.0f - %s) * MEAN[c] + %s * (float)%s;", mom, mom, mu);
    kn_emit_line(e, "VAR[c] = (1.0f - %s) * VAR[c] + %s * (float)unbiased;", mom, mom);
}

static kn_status bn_emit_train_rows(kn_emit *e, const char *eps, const char *mom)
{
    bn_emit_batch_stats(e, eps, true);
    kn_emit_line(e, "float SC[C], SH[C];");
    kn_emit_line(e, "for (size_t c = 0; c < C; c++) {");
    e->indent++;
    kn_emit_line(e, "const double var = SS[c] / count; /* biased: normalises the batch */");
    kn_emit_line(e, "SC[c] = SCALE[c] * (float)INVSTD[c];");
    kn_emit_line(e, "SH[c] = B[c] - (float)MU[c] * SC[c];");
    bn_emit_running_update(e, mom, "MU[c]", "SS[c]");
    e->indent--;
    kn_emit_line(e, "}");
    kn_emit_line(e, "for (size_t i = 0; i < ROWS; i++) {");
    kn_emit_line(e, "    KN_IVDEP");
    kn_emit_line(e, "    for (size_t c = 0; c < C; c++) Y[i * C + c] = X[i * C + c] * SC[c] + SH[c];");
    kn_emit_line(e, "}");
    return KN_OK;
}

/* Eval on the CPU: scale and shift once per channel, not once per element
 * (the loop below, shared with CUDA, recomputes them per element). */
static void bn_emit_eval_c(kn_emit *e, long long c, long long inner, const char *rows, const char *eps)
{
    kn_emit_line(e, "float S[%lld], T[%lld];", c, c);
    kn_emit_line(e, "for (size_t c = 0; c < %lld; c++) {", c);
    kn_emit_line(e, "    S[c] = SCALE[c] / sqrtf(VAR[c] + %s);", eps);
    kn_emit_line(e, "    T[c] = B[c] - MEAN[c] * S[c];");
    kn_emit_line(e, "}");
    kn_emit_line(e, "for (size_t i = 0; i < %s; i++) {", rows);
    if (inner == 1) {
        kn_emit_line(e, "    KN_IVDEP");
        kn_emit_line(e, "    for (size_t c = 0; c < %lld; c++) Y[i * %lld + c] = X[i * %lld + c] * S[c] + T[c];",
                     c, c, c);
    } else {
        kn_emit_line(e, "    for (size_t c = 0; c < %lld; c++) {", c);
        kn_emit_line(e, "        const size_t base = (i * %lld + c) * %lld;", c, inner);
        kn_emit_line(e, "        KN_IVDEP");
        kn_emit_line(e, "        for (size_t k = 0; k < %lld; k++) Y[base + k] = X[base + k] * S[c] + T[c];",
                     inner);
        kn_emit_line(e, "    }");
    }
    kn_emit_line(e, "}");
}

static kn_status bn_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_value *x = kn_graph_value(g, n->in[0]);
    int r = x->shape.rank;
    char rows[64], eps[64];
    long long c = (long long)x->shape.d[1];
    long long inner = (long long)kn_ops_dims_const(&x->shape, 2, r);
    kn_ops_dims_expr(e, n->in[0], 0, 1, rows, sizeof rows);
    kn_emit_float_lit(kn_ops_attr_num(n, "eps", 1e-5), eps, sizeof eps);
    /* On the GPU: one thread per channel (batch statistics) or per row. */
    char channels[32];
    snprintf(channels, sizeof channels, "%lld", c);
    kn_emit_cuda_kernel(e, bn_uses_batch_stats(g, n) ? channels : rows);

    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_in(e, "SCALE", n->in[1]);
    kn_emit_bind_in(e, "B", n->in[2]);
    if (bn_uses_batch_stats(g, n)) {
        char mom[64], mean[160], var[160];
        kn_emit_float_lit(kn_ops_attr_num(n, "momentum", 0.1), mom, sizeof mom);
        e->addr(e, n->in[3], mean, sizeof mean);
        e->addr(e, n->in[4], var, sizeof var);
        kn_emit_line(e, "float *restrict MEAN = %s; /* updated in place */", mean);
        kn_emit_line(e, "float *restrict VAR = %s;", var);
        kn_emit_bind_out(e, "Y", n->out[0]);
        bn_emit_header(e, c, inner, rows);
        if (!kn_emit_is_cuda(e) && bn_row_major(inner, c)) return bn_emit_train_rows(e, eps, mom);
        kn_emit_for_open(e, "c", "C");
        kn_emit_line(e, "double s = 0.0, ss = 0.0;");
        kn_emit_line(e, "for (size_t i = 0; i < ROWS; i++)");
        kn_emit_line(e, "    for (size_t k = 0; k < INNER; k++) s += X[(i * C + c) * INNER + k];");
        kn_emit_line(e, "const double mu = s / count;");
        kn_emit_line(e, "for (size_t i = 0; i < ROWS; i++)");
        kn_emit_line(e, "    for (size_t k = 0; k < INNER; k++) {");
        kn_emit_line(e, "        const double t = X[(i * C + c) * INNER + k] - mu;");
        kn_emit_line(e, "        ss += t * t;");
        kn_emit_line(e, "    }");
        kn_emit_line(e, "const double var = ss / count; /* biased: normalises the batch */");
        kn_emit_line(e, "const float invstd = (float)(1.0 / sqrt(var + (double)%s));", eps);
        kn_emit_line(e, "const float sc = SCALE[c] * invstd, sh = B[c] - (float)mu * sc;");
        kn_emit_line(e, "for (size_t i = 0; i < ROWS; i++)");
        kn_emit_line(e, "    for (size_t k = 0; k < INNER; k++) {");
        kn_emit_line(e, "        const size_t j = (i * C + c) * INNER + k;");
        kn_emit_line(e, "        Y[j] = X[j] * sc + sh;");
        kn_emit_line(e, "    }");
        bn_emit_running_update(e, mom, "mu", "ss");
        kn_emit_close(e);
        kn_emit_cuda_end(e);
        return KN_OK;
    }
    kn_emit_bind_in(e, "MEAN", n->in[3]);
    kn_emit_bind_in(e, "VAR", n->in[4]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    if (!kn_emit_is_cuda(e) && c <= BN_MAX_STACK_CHANNELS) {
        bn_emit_eval_c(e, c, inner, rows, eps);
        return KN_OK;
    }
    kn_emit_for(e, "i", rows, "{");
    kn_emit_line(e, "    for (size_t c = 0; c < %lld; c++) {", c);
    kn_emit_line(e, "        const float s = SCALE[c] / sqrtf(VAR[c] + %s);", eps);
    kn_emit_line(e, "        const float t = B[c] - MEAN[c] * s;");
    if (inner == 1) {
        kn_emit_line(e, "        Y[i * %lld + c] = X[i * %lld + c] * s + t;", c, c);
    } else {
        kn_emit_line(e, "        const size_t base = (i * %lld + c) * %lld;", c, inner);
        kn_emit_line(e, "        for (size_t k = 0; k < %lld; k++) Y[base + k] = X[base + k] * s + t;",
                     inner);
    }
    kn_emit_line(e, "    }");
    kn_emit_line(e, "}");
    kn_emit_cuda_end(e);
    return KN_OK;
}

/* ---- batchnorm_grad ---- */

static kn_status bng_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    bool train = kn_node_attr_i(n, "training", 1) != 0;
    int want = train ? 3 : 5;
    if (n->n_in != want)
        return kn_op_error(d, g, n, "expects %d inputs (dy, x, weight%s), got %d", want,
                           train ? "" : ", running_mean, running_var", n->n_in);
    for (int i = 0; i < want; i++)
        if (kn_ops_want_f32(d, g, n, i, "tensor") != KN_OK) return KN_ERR;
    const kn_value *dy = kn_graph_value(g, n->in[0]), *x = kn_graph_value(g, n->in[1]);
    if (!kn_shape_equal(&dy->shape, &x->shape) || x->shape.rank < 2) {
        char s1[128], s2[128];
        kn_ops_fmt(g, n->in[0], s1, sizeof s1);
        kn_ops_fmt(g, n->in[1], s2, sizeof s2);
        return kn_op_error(d, g, n, "gradient %s does not match input %s", s1, s2);
    }
    kn_ops_set_out(g, n, 0, KN_F32, &x->shape);
    const kn_shape *c = &kn_graph_value(g, n->in[2])->shape;
    kn_ops_set_out(g, n, 1, KN_F32, c);
    kn_ops_set_out(g, n, 2, KN_F32, c);
    return KN_OK;
}

/* Row-walking batchnorm_grad for INNER == 1 (see bn_row_major). */
static kn_status bng_emit_rows(kn_emit *e, const char *eps, bool train)
{
    if (train) {
        bn_emit_batch_stats(e, eps, false);
    } else {
        kn_emit_line(e, "double MU[C], INVSTD[C];");
        kn_emit_line(e, "for (size_t c = 0; c < C; c++) {");
        kn_emit_line(e, "    MU[c] = MEAN[c];");
        kn_emit_line(e, "    INVSTD[c] = 1.0 / sqrt((double)VAR[c] + (double)%s);", eps);
        kn_emit_line(e, "}");
    }
    kn_emit_line(e, "double SDY[C], SDYX[C], W[C]; /* sum dy, sum dy * xhat */");
    bn_emit_col_sum(e, "SDY", "dY[j]");
    bn_emit_col_sum(e, "SDYX", "(double)dY[j] * ((X[j] - MU[c]) * INVSTD[c])");
    kn_emit_line(e, "for (size_t c = 0; c < C; c++) {");
    kn_emit_line(e, "    dB[c] = (float)SDY[c];");
    kn_emit_line(e, "    dW[c] = (float)SDYX[c];");
    kn_emit_line(e, "    W[c] = (double)SCALE[c] * INVSTD[c];");
    kn_emit_line(e, "}");
    kn_emit_line(e, "for (size_t i = 0; i < ROWS; i++) {");
    kn_emit_line(e, "    KN_IVDEP");
    kn_emit_line(e, "    for (size_t c = 0; c < C; c++) {");
    kn_emit_line(e, "        const size_t j = i * C + c;");
    if (train)
        kn_emit_line(e, "        dX[j] = (float)(W[c] * (dY[j] - SDY[c] / count - (X[j] - MU[c]) * INVSTD[c] * (SDYX[c] / count)));");
    else
        kn_emit_line(e, "        dX[j] = (float)(W[c] * dY[j]);");
    kn_emit_line(e, "    }");
    kn_emit_line(e, "}");
    return KN_OK;
}

static kn_status bng_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_value *x = kn_graph_value(g, n->in[1]);
    int r = x->shape.rank;
    bool train = kn_node_attr_i(n, "training", 1) != 0;
    char rows[64], eps[64];
    long long c = (long long)x->shape.d[1];
    long long inner = (long long)kn_ops_dims_const(&x->shape, 2, r);
    kn_ops_dims_expr(e, n->in[1], 0, 1, rows, sizeof rows);
    kn_emit_float_lit(kn_ops_attr_num(n, "eps", 1e-5), eps, sizeof eps);
    char channels[32];
    snprintf(channels, sizeof channels, "%lld", c);
    kn_emit_cuda_kernel(e, channels); /* GPU: one thread per channel */
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_in(e, "X", n->in[1]);
    kn_emit_bind_in(e, "SCALE", n->in[2]);
    if (!train) {
        kn_emit_bind_in(e, "MEAN", n->in[3]);
        kn_emit_bind_in(e, "VAR", n->in[4]);
    }
    kn_emit_bind_out(e, "dX", n->out[0]);
    kn_emit_bind_out(e, "dW", n->out[1]);
    kn_emit_bind_out(e, "dB", n->out[2]);
    bn_emit_header(e, c, inner, rows);
    if (!kn_emit_is_cuda(e) && bn_row_major(inner, c)) return bng_emit_rows(e, eps, train);
    kn_emit_for_open(e, "c", "C");
    if (train) {
        kn_emit_line(e, "double s = 0.0, ss = 0.0;");
        kn_emit_line(e, "for (size_t i = 0; i < ROWS; i++)");
        kn_emit_line(e, "    for (size_t k = 0; k < INNER; k++) s += X[(i * C + c) * INNER + k];");
        kn_emit_line(e, "const double mu = s / count;");
        kn_emit_line(e, "for (size_t i = 0; i < ROWS; i++)");
        kn_emit_line(e, "    for (size_t k = 0; k < INNER; k++) {");
        kn_emit_line(e, "        const double t = X[(i * C + c) * INNER + k] - mu;");
        kn_emit_line(e, "        ss += t * t;");
        kn_emit_line(e, "    }");
        kn_emit_line(e, "const double invstd = 1.0 / sqrt(ss / count + (double)%s);", eps);
    } else {
        kn_emit_line(e, "const double mu = MEAN[c];");
        kn_emit_line(e, "const double invstd = 1.0 / sqrt((double)VAR[c] + (double)%s);", eps);
    }
    kn_emit_line(e, "double sdy = 0.0, sdyx = 0.0; /* sum dy, sum dy * xhat */");
    kn_emit_line(e, "for (size_t i = 0; i < ROWS; i++)");
    kn_emit_line(e, "    for (size_t k = 0; k < INNER; k++) {");
    kn_emit_line(e, "        const size_t j = (i * C + c) * INNER + k;");
    kn_emit_line(e, "        sdy += dY[j];");
    kn_emit_line(e, "        sdyx += (double)dY[j] * ((X[j] - mu) * invstd);");
    kn_emit_line(e, "    }");
    kn_emit_line(e, "dB[c] = (float)sdy;");
    kn_emit_line(e, "dW[c] = (float)sdyx;");
    kn_emit_line(e, "const double w = (double)SCALE[c] * invstd;");
    kn_emit_line(e, "for (size_t i = 0; i < ROWS; i++)");
    kn_emit_line(e, "    for (size_t k = 0; k < INNER; k++) {");
    kn_emit_line(e, "        const size_t j = (i * C + c) * INNER + k;");
    if (train) /* dx = w invstd (dy - mean(dy) - xhat mean(dy xhat)) */
        kn_emit_line(e, "        dX[j] = (float)(w * (dY[j] - sdy / count - (X[j] - mu) * invstd * (sdyx / count)));");
    else
        kn_emit_line(e, "        dX[j] = (float)(w * dY[j]);");
    kn_emit_line(e, "    }");
    kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static kn_status bn_grad(kn_graph *g, const kn_node *n, const int *dy,
                         const bool *need, int *dx, kn_diag *d)
{
    for (int i = 0; i < n->n_in; i++) dx[i] = -1;
    if (dy[0] < 0 || !(need[0] || need[1] || need[2])) return KN_OK;
    bool train = bn_uses_batch_stats(g, n);
    int in[5] = {dy[0], n->in[0], n->in[1], n->in[3], n->in[4]};
    kn_node *gn = kn_ops_grad_node(g, n, KN_OP_BATCHNORM_GRAD, "x", in, train ? 3 : 5, 3);
    kn_node_set_attr_f(gn, "eps", kn_ops_attr_num(n, "eps", 1e-5));
    kn_node_set_attr_b(gn, "training", train);
    if (kn_ops_grad_done(g, gn, d) < 0) return KN_ERR;
    for (int i = 0; i < 3; i++)
        if (need[i]) dx[i] = gn->out[i];
    return KN_OK;
}

static const kn_arg_spec bn_args[] = {
    {"eps", KN_ATTR_FLOAT, false, 0, 1e-5, NULL},
    {"momentum", KN_ATTR_FLOAT, false, 0, 0.1, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

/* ---- bn_fold ---- */

static kn_status bnf_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    bool bias = kn_node_attr_i(n, "has_bias", 0) != 0;
    if (n->n_in != 5 + bias) return kn_op_error(d, g, n, "internal: expects %d inputs, got %d", 5 + bias, n->n_in);
    const kn_value *w = kn_graph_value(g, n->in[0]);
    if (w->dtype != KN_F32 || w->shape.rank < 1) return kn_op_error(d, g, n, "internal: the weight must be f32");
    int64_t oc = w->shape.d[0];
    for (int i = 1; i < n->n_in; i++) {
        const kn_value *v = kn_graph_value(g, n->in[i]);
        if (v->dtype != KN_F32 || v->shape.rank != 1 || v->shape.d[0] != oc)
            return kn_op_error(d, g, n, "internal: '%s' must be f32[%lld]", v->name, (long long)oc);
    }
    kn_shape b = kn_shape_make(1, &oc);
    kn_ops_set_out(g, n, 0, KN_F32, &w->shape);
    kn_ops_set_out(g, n, 1, KN_F32, &b);
    return KN_OK;
}

/* Binds W, B (with a bias), SCALE, SHIFT, MEAN, VAR and the outputs WF, BF. */
static void bnf_bind(kn_emit *e, const kn_node *n, bool bias)
{
    int k = 1;
    kn_emit_bind_in(e, "W", n->in[0]);
    if (bias) kn_emit_bind_in(e, "B", n->in[k++]);
    kn_emit_bind_in(e, "SCALE", n->in[k]);
    kn_emit_bind_in(e, "SHIFT", n->in[k + 1]);
    kn_emit_bind_in(e, "MEAN", n->in[k + 2]);
    kn_emit_bind_in(e, "VAR", n->in[k + 3]);
    kn_emit_bind_out(e, "WF", n->out[0]);
    kn_emit_bind_out(e, "BF", n->out[1]);
}

static kn_status bnf_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_value *w = kn_graph_value(g, n->in[0]);
    bool bias = kn_node_attr_i(n, "has_bias", 0) != 0;
    long long oc = (long long)w->shape.d[0], per = (long long)kn_ops_dims_const(&w->shape, 1, w->shape.rank);
    char eps[64];
    kn_emit_float_lit(kn_ops_attr_num(n, "eps", 1e-5), eps, sizeof eps);
    bnf_bind(e, n, bias);
    kn_emit_line(e, "for (size_t o = 0; o < %lld; o++) {", oc);
    kn_emit_line(e, "    const float s = SCALE[o] / sqrtf(VAR[o] + %s);", eps);
    kn_emit_line(e, "    for (size_t k = 0; k < %lld; k++) WF[o * %lld + k] = W[o * %lld + k] * s;", per, per, per);
    kn_emit_line(e, "    BF[o] = %s * s + (SHIFT[o] - MEAN[o] * s);", bias ? "B[o]" : "0.0f");
    kn_emit_line(e, "}");
    return KN_OK;
}

/* GPU: one thread per filter element (the same arithmetic); the first of
 * each filter also writes its bias. */
static kn_status bnf_emit_cuda(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    const kn_value *w = kn_graph_value(g, n->in[0]);
    bool bias = kn_node_attr_i(n, "has_bias", 0) != 0;
    long long oc = (long long)w->shape.d[0], per = (long long)kn_ops_dims_const(&w->shape, 1, w->shape.rank);
    char eps[64], count[32];
    kn_emit_float_lit(kn_ops_attr_num(n, "eps", 1e-5), eps, sizeof eps);
    snprintf(count, sizeof count, "%lld", oc * per);
    kn_emit_cuda_kernel(e, count);
    bnf_bind(e, n, bias);
    kn_emit_for_open(e, "i", count);
    kn_emit_line(e, "const size_t o = i / %lld;", per);
    kn_emit_line(e, "const float s = SCALE[o] / sqrtf(VAR[o] + %s);", eps);
    kn_emit_line(e, "WF[i] = W[i] * s;");
    kn_emit_line(e, "if (i %% %lld == 0) BF[o] = %s * s + (SHIFT[o] - MEAN[o] * s);", per, bias ? "B[o]" : "0.0f");
    kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static const kn_arg_spec bnf_args[] = {
    {"eps", KN_ATTR_FLOAT, false, 0, 1e-5, NULL},
    {"has_bias", KN_ATTR_INT, false, 0, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_batchnorm = {
    .name = "batchnorm", .min_inputs = 1, .max_inputs = 1, .args = bn_args,
    .add_params = bn_add_params, .infer = bn_infer, .emit_c = bn_emit, .emit_cuda = bn_emit, .grad = bn_grad,
    .train_impure = bn_train_impure,
};
const kn_op_def kn_op_def_batchnorm_grad = {
    .name = "batchnorm_grad", .min_inputs = 3, .max_inputs = 5,
    .infer = bng_infer, .emit_c = bng_emit, .emit_cuda = bng_emit,
    .internal = true,
};
const kn_op_def kn_op_def_bn_fold = {
    .name = "bn_fold", .min_inputs = 5, .max_inputs = 6, .args = bnf_args,
    .infer = bnf_infer, .emit_c = bnf_emit, .emit_cuda = bnf_emit_cuda, .internal = true,
};

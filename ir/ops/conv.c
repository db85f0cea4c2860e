/* conv.c — 2-D convolution (torch.nn.Conv2d) and its two backward ops.
 *
 * conv2d(x, out_channels, kernel=3, stride=1, padding=0, dilation=1,
 *        groups=1, bias=true, init="kaiming_uniform"): x f32[N, C, H, W] ->
 * y f32[N, out, OH, OW], creating `<node>.weight` [out, C/groups, kh, kw]
 * and `<node>.bias` [out] with PyTorch's default initialisation, or the
 * weight's `init` choice (kaiming_normal, xavier_uniform, xavier_normal).
 * kernel/stride/padding/dilation are one integer or a pair (h, w); padding
 * may also be ONNX's four values (top, left, bottom, right).
 *
 * Emission is im2col + kn_rt_sgemm per sample and group, except depthwise
 * convolutions (direct loops, conv_depthwise.c) and 1x1 ones (no im2col).
 * The GEMM runs in tiles with the bias (and a fused epilogue) applied per
 * tile; tiles, depthwise channels and im2col rows are `omp parallel for`
 * loops (the runtime keeps OpenBLAS single-threaded, see kn_rt_blas.c).  A
 * forward group-1 conv builds its im2col per band of output rows in a
 * per-thread buffer and multiplies each band straight into y; otherwise
 * the im2col buffer is the node's second output `<node>.col`
 * f32[C/groups*kh*kw, OH*OW] (not batched): the memory planner gives it
 * arena space for the node's lifetime only, so no step allocates.  A 1x1
 * kernel with stride 1 and no padding multiplies x directly; banded and
 * depthwise convs leave col a 1-element placeholder.  On CPU inference
 * graphs the passes may also set: residual/act_min/act_max and in_affine
 * (fuse_epilogue.c), x_nhwc/y_nhwc (layout_nhwc.c: channels-last storage,
 * the layout change done inside the GEMM).
 *
 * Backward ops, built by the gradient rule (also callable from model files,
 * which the golden tests use):
 *   conv2d_grad_input(dy, w, stride, padding, dilation, groups, input_hw)
 *       -> dx f32[N, C, H, W]           W^T dy per sample, then col2im
 *   conv2d_grad_weight(dy, x, kernel, stride, padding, dilation, groups)
 *       -> dw f32[out, C/groups, kh, kw] summed over the batch
 * The bias gradient is sum(sum(dy, dim=(2, 3)), dim=0).
 * Not supported: padding modes other than zeros, string padding ("same")
 * (the ONNX importer turns auto_pad into explicit pads).
 */
#include "conv_internal.h"

#include <limits.h>
#include <math.h>





/* kn_ops_int_pair with the same default for h and w. */
static kn_status conv_pair(kn_diag *d, const kn_graph *g, const kn_node *n, const char *name,
                           int64_t dflt, int64_t min, int64_t out[2])
{
    const int64_t both[2] = {dflt, dflt};
    return kn_ops_int_pair(d, g, n, name, both, min, out);
}

/* Reads `padding`: one integer, a pair (h, w), or ONNX's four values
 * (top, left, bottom, right), which TF "SAME" exports use asymmetrically. */
static kn_status conv_padding(kn_diag *d, const kn_graph *g, const kn_node *n, conv_geom *q)
{
    const kn_attr *a = kn_node_attr(n, "padding");
    if (a && a->kind == KN_ATTR_INTS && a->n == 4) {
        for (int i = 0; i < 4; i++)
            if (a->ints[i] < 0 || a->ints[i] > KN_OPS_SPATIAL_MAX)
                return kn_op_error(d, g, n, "padding must be in [0, %d], got %lld", KN_OPS_SPATIAL_MAX,
                                   (long long)a->ints[i]);
        q->ph = a->ints[0], q->pw = a->ints[1], q->ph_end = a->ints[2], q->pw_end = a->ints[3];
        return KN_OK;
    }
    int64_t p[2];
    if (conv_pair(d, g, n, "padding", 0, 0, p) != KN_OK) return KN_ERR;
    q->ph = q->ph_end = p[0], q->pw = q->pw_end = p[1];
    return KN_OK;
}

/* Reads stride/padding/dilation/groups and derives the output size from
 * g->c, h, w, kh, kw (already set).  `shape` names the input for messages. */
static kn_status conv_geom_finish(kn_diag *d, const kn_graph *g, const kn_node *n, conv_geom *q,
                                  const char *shape)
{
    int64_t s[2], dl[2];
    if (conv_pair(d, g, n, "stride", 1, 1, s) != KN_OK) return KN_ERR;
    if (conv_padding(d, g, n, q) != KN_OK) return KN_ERR;
    if (conv_pair(d, g, n, "dilation", 1, 1, dl) != KN_OK) return KN_ERR;
    q->sh = s[0], q->sw = s[1], q->dh = dl[0], q->dw = dl[1];
    int64_t eh = q->dh * (q->kh - 1) + 1, ew = q->dw * (q->kw - 1) + 1;
    int64_t hp = q->h + q->ph + q->ph_end, wp = q->w + q->pw + q->pw_end;
    if (eh > hp || ew > wp)
        return kn_op_error(d, g, n, "kernel %lldx%lld (dilation %lldx%lld, effective %lldx%lld) is larger "
                           "than the padded input %lldx%lld (input %s, padding %lldx%lld)",
                           (long long)q->kh, (long long)q->kw, (long long)q->dh, (long long)q->dw,
                           (long long)eh, (long long)ew, (long long)hp, (long long)wp, shape,
                           (long long)q->ph, (long long)q->pw);
    q->oh = (hp - eh) / q->sh + 1;
    q->ow = (wp - ew) / q->sw + 1;
    int64_t k, ohw, k2;
    if (!kn_mul_ok(q->c / q->groups, q->kh * q->kw, &k) || !kn_mul_ok(q->oh, q->ow, &ohw) ||
        !kn_mul_ok(k, ohw, &k2) || k > INT_MAX || ohw > INT_MAX || q->oc > INT_MAX)
        return kn_op_error(d, g, n, "input %s with kernel %lldx%lld is too large", shape, (long long)q->kh,
                           (long long)q->kw);
    return KN_OK;
}

/* Checks the channel counts against `groups`. */
static kn_status conv_check_groups(kn_diag *d, const kn_graph *g, const kn_node *n, conv_geom *q,
                                   const char *shape)
{
    q->groups = kn_node_attr_i(n, "groups", 1);
    if (q->groups < 1)
        return kn_op_error(d, g, n, "groups must be at least 1, got %lld", (long long)q->groups);
    if (q->c % q->groups != 0)
        return kn_op_error(d, g, n, "input channels %lld (input %s) are not divisible by groups=%lld",
                           (long long)q->c, shape, (long long)q->groups);
    if (q->oc % q->groups != 0)
        return kn_op_error(d, g, n, "out_channels %lld is not divisible by groups=%lld", (long long)q->oc,
                           (long long)q->groups);
    return KN_OK;
}

bool conv_is_1x1(const conv_geom *q)
{
    return q->kh == 1 && q->kw == 1 && q->sh == 1 && q->sw == 1 && q->ph == 0 && q->pw == 0 &&
           q->ph_end == 0 && q->pw_end == 0;
}

bool conv_is_depthwise(const conv_geom *q) { return q->groups > 1 && q->groups == q->c && q->oc == q->c; }

bool kn_conv_is_pointwise(const kn_conv_geom *q) { return conv_is_1x1(q); }
bool kn_conv_is_depthwise(const kn_conv_geom *q) { return conv_is_depthwise(q); }

/* The im2col buffer's shape (a placeholder for the 1x1 fast path). */
static kn_shape conv_col_shape(const conv_geom *q)
{
    int64_t one = 1, d[2] = {q->c / q->groups * q->kh * q->kw, q->oh * q->ow};
    return conv_is_1x1(q) ? kn_shape_make(1, &one) : kn_shape_make(2, d);
}

/* Gives a node built with one output its im2col scratch output `<node>.col`. */
static void conv_add_col_output(kn_graph *g, kn_node *n)
{
    if (n->n_out >= 2) return;
    char name[512];
    snprintf(name, sizeof name, "%s.col", n->name);
    int vid = kn_graph_add_value(g, name, KN_VAL_NODE, KN_F32, NULL);
    g->values[vid]->producer = n->id;
    n->out[n->n_out++] = vid;
}

static kn_status conv_want_col(kn_diag *d, const kn_graph *g, const kn_node *n)
{
    if (n->n_out == 2) return KN_OK;
    return kn_op_error(d, g, n, "internal: expects 2 outputs (result, im2col scratch), got %d", n->n_out);
}

/* ---- conv2d ---- */

static kn_status conv_geom_forward(kn_diag *d, const kn_graph *g, const kn_node *n, conv_geom *q)
{
    if (kn_ops_want_nchw(d, g, n, 0, "input") != KN_OK) return KN_ERR;
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape;
    char s[128];
    kn_ops_fmt(g, n->in[0], s, sizeof s);
    q->c = x->d[1], q->h = x->d[2], q->w = x->d[3];
    q->oc = kn_node_attr_i(n, "out_channels", 0);
    if (q->oc < 1 || q->oc > INT_MAX)
        return kn_op_error(d, g, n, "out_channels must be in [1, %d], got %lld", INT_MAX, (long long)q->oc);
    int64_t k[2];
    if (conv_pair(d, g, n, "kernel", 3, 1, k) != KN_OK) return KN_ERR;
    q->kh = k[0], q->kw = k[1];
    if (conv_check_groups(d, g, n, q, s) != KN_OK) return KN_ERR;
    return conv_geom_finish(d, g, n, q, s);
}

kn_status kn_conv_geometry(const kn_graph *g, const kn_node *n, kn_conv_geom *q, kn_diag *d)
{
    return conv_geom_forward(d, g, n, q);
}

static kn_status conv_add_params(kn_graph *g, kn_node *n, kn_diag *d)
{
    conv_geom q;
    if (conv_geom_forward(d, g, n, &q) != KN_OK) return KN_ERR;
    conv_add_col_output(g, n);
    if (n->n_in > 1) return KN_OK; /* already has its parameters (cloned graph) */
    int64_t wd[4] = {q.oc, q.c / q.groups, q.kh, q.kw};
    int64_t fan_in = wd[1] * q.kh * q.kw, fan_out = q.oc * q.kh * q.kw; /* torch's fan rule */
    kn_shape ws = kn_shape_make(4, wd), bs = kn_shape_make(1, &q.oc);
    kn_init_kind init;
    if (kn_op_weight_init(g, n, &init, d) != KN_OK) return KN_ERR;
    kn_op_add_param(g, n, "weight", KN_VAL_PARAM, &ws, init, fan_in, fan_out);
    if (kn_node_attr_i(n, "bias", 1))
        kn_op_add_param(g, n, "bias", KN_VAL_PARAM, &bs, KN_INIT_BIAS_UNIFORM, fan_in, fan_out);
    return KN_OK;
}

/* Parameter `i` (1 weight, 2 bias) must be f32 of exactly `want`. */
static kn_status conv_want_param(kn_diag *d, const kn_graph *g, const kn_node *n, int i, const char *role,
                                 const kn_shape *want)
{
    const kn_value *p = kn_graph_value(g, n->in[i]);
    if (p->dtype == KN_F32 && kn_shape_equal(&p->shape, want)) return KN_OK;
    char s[128], w[128];
    kn_ops_fmt(g, n->in[i], s, sizeof s);
    kn_shape_format(KN_F32, want, w, sizeof w);
    return kn_op_error(d, g, n, "%s '%s' must be %s, got %s", role, p->name, w, s);
}

static long long conv_band_rows(const conv_geom *q);

/* pool_avg (passes/fuse_epilogue.c): y is the global average pool of the
 * conv's output, [N, OC, 1, 1]. */
static bool conv_pooled(const kn_node *n) { return kn_node_attr_i(n, "pool_avg", 0) != 0; }

static kn_status conv_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    conv_geom q;
    if (conv_geom_forward(d, g, n, &q) != KN_OK) return KN_ERR;
    if (conv_want_col(d, g, n) != KN_OK) return KN_ERR;
    bool bias = kn_node_attr_i(n, "bias", 1) != 0, residual = kn_node_attr_i(n, "residual", 0) != 0;
    bool affine = kn_node_attr_i(n, "in_affine", 0) != 0;
    int want = 2 + bias + residual + 2 * affine;
    if (n->n_in != want)
        return kn_op_error(d, g, n, "expects %d inputs (x, weight%s%s%s), got %d", want, bias ? ", bias" : "",
                           residual ? ", residual" : "", affine ? ", scale, shift" : "", n->n_in);
    if (affine && (conv_is_1x1(&q) || conv_is_depthwise(&q) || q.groups != 1))
        return kn_op_error(d, g, n, "internal: a fused input scale/shift needs an im2col conv");
    bool pooled = conv_pooled(n);
    if (pooled && (!conv_is_1x1(&q) || q.groups != 1 || residual || affine))
        return kn_op_error(d, g, n, "internal: a fused global average pool needs a plain 1x1 conv");
    for (int i = want - 2; affine && i < want; i++) {
        const kn_value *v = kn_graph_value(g, n->in[i]);
        int64_t numel = 0;
        if (v->dtype != KN_F32 || !kn_shape_numel(&v->shape, 1, &numel) || numel != q.c)
            return kn_op_error(d, g, n, "internal: the fused input scale/shift '%s' must have %lld values", v->name,
                               (long long)q.c);
    }
    int64_t wd[4] = {q.oc, q.c / q.groups, q.kh, q.kw};
    kn_shape ws = kn_shape_make(4, wd), bs = kn_shape_make(1, &q.oc);
    if (conv_want_param(d, g, n, 1, "weight", &ws) != KN_OK) return KN_ERR;
    if (bias && conv_want_param(d, g, n, 2, "bias", &bs) != KN_OK) return KN_ERR;
    kn_shape y = kn_graph_value(g, n->in[0])->shape;
    y.d[1] = q.oc, y.d[2] = pooled ? 1 : q.oh, y.d[3] = pooled ? 1 : q.ow;
    const kn_value *r = residual ? kn_graph_value(g, n->in[bias ? 3 : 2]) : NULL;
    if (r && (r->dtype != KN_F32 || !kn_shape_equal(&r->shape, &y)))
        return kn_op_error(d, g, n, "internal: the fused residual '%s' must have the output's shape", r->name);
    kn_shape col = conv_col_shape(&q);
    /* Direct depthwise kernels and banded convs need no whole-image im2col. */
    if (conv_is_depthwise(&q) || (conv_band_rows(&q) && !kn_node_attr_i(n, "y_nhwc", 0)))
        col = kn_shape_make(1, (int64_t[]){1});
    kn_ops_set_out(g, n, 0, KN_F32, &y);
    kn_ops_set_out(g, n, 1, KN_F32, &col);
    return KN_OK;
}

/* Prints the pragma that runs the next loop on the OpenMP team: `count`
 * (a C expression: the trip count's batch factor, or "1") times `work`
 * (elements or multiply-adds per factor) below KN_RT_PAR_MIN keeps it on
 * one thread, so tiny layers and test models never wake the team.
 * Guided scheduling: a thread the OS preempts on a busy machine holds up
 * the others only for its current chunk, not for a fixed half of the loop. */
void conv_emit_parallel_for(kn_emit *e, const char *count, long long work)
{
    kn_emit_line(e, "#pragma omp parallel for schedule(guided) if(%s * %lld >= KN_RT_PAR_MIN)", count, work);
}

/* Prints the body of the im2col loop for one output row `oh` of im2col row
 * r (channel c, tap ki, kj; Xc the channel's plane): ih, then `Co` (the
 * C expression `co`) filled with the row's taps, 0 outside the image.  The
 * columns whose taps fall inside the row for every kj are one loop with no
 * bounds test; only the border columns test.  With `affine`, each value
 * read is x * S[c] + T[c] (a fused per-channel input normalisation: the
 * padding stays 0, as when it ran first). */
static void conv_emit_im2col_row(kn_emit *e, const conv_geom *q, const char *co, bool affine)
{
    const char *ax = affine ? " * S[c] + T[c]" : "";
    long long lo = (q->pw + q->sw - 1) / q->sw, last = q->w - 1 - (q->kw - 1) * q->dw + q->pw;
    long long hi = last < 0 ? 0 : last / q->sw + 1;
    if (hi > q->ow) hi = q->ow;
    if (lo > hi) lo = hi;
    kn_emit_line(e, "const ptrdiff_t ih = (ptrdiff_t)(oh * %lld + ki * %lld) - %lld;", (long long)q->sh,
                 (long long)q->dh, (long long)q->ph);
    kn_emit_line(e, "float *Co = %s;", co);
    kn_emit_line(e, "if (ih < 0 || ih >= %lld) {", (long long)q->h);
    kn_emit_line(e, "    for (size_t ow = 0; ow < %lld; ow++) Co[ow] = 0.0f;", (long long)q->ow);
    kn_emit_line(e, "    continue;");
    kn_emit_line(e, "}");
    kn_emit_line(e, "const float *Xr = Xc + ih * %lld + (ptrdiff_t)(kj * %lld) - %lld;", (long long)q->w,
                 (long long)q->dw, (long long)q->pw);
    kn_emit_line(e, "for (size_t ow = %lld; ow < %lld; ow++) Co[ow] = Xr[ow * %lld]%s;", lo, hi, (long long)q->sw, ax);
    kn_emit_line(e, "for (size_t ow = 0; ow < %lld; ow++) {", (long long)q->ow);
    kn_emit_line(e, "    if (ow == %lld) ow = %lld;", lo, hi);
    kn_emit_line(e, "    if (ow >= %lld) break;", (long long)q->ow);
    kn_emit_line(e, "    const ptrdiff_t iw = (ptrdiff_t)(ow * %lld + kj * %lld) - %lld;", (long long)q->sw,
                 (long long)q->dw, (long long)q->pw);
    kn_emit_line(e, "    Co[ow] = iw >= 0 && iw < %lld ? Xc[ih * %lld + iw]%s : 0.0f;", (long long)q->w, (long long)q->w,
                 ax);
    kn_emit_line(e, "}");
}

/* Prints the im2col of one group `src` (Cg x H x W) into COL (K x OH*OW). */
static void conv_emit_im2col(kn_emit *e, const conv_geom *q, const char *src, bool affine)
{
    long long k = q->c / q->groups * q->kh * q->kw, ohw = q->oh * q->ow;
    char co[64];
    snprintf(co, sizeof co, "COL + r * %lld + oh * %lld", ohw, (long long)q->ow);
    conv_emit_parallel_for(e, "1", k * ohw);
    kn_emit_line(e, "for (size_t r = 0; r < %lld; r++) {", k);
    e->indent++;
    kn_emit_line(e, "const size_t c = r / %lld, ki = r / %lld %% %lld, kj = r %% %lld;",
                 (long long)(q->kh * q->kw), (long long)q->kw, (long long)q->kh, (long long)q->kw);
    kn_emit_line(e, "const float *Xc = %s + c * %lld;", src, (long long)(q->h * q->w));
    kn_emit_line(e, "for (size_t oh = 0; oh < %lld; oh++) {", (long long)q->oh);
    e->indent++;
    conv_emit_im2col_row(e, q, co, affine);
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
}

/* Prints the col2im of COL (K x OH*OW) added into one group `dst` (Cg x H x W). */
static void conv_emit_col2im(kn_emit *e, const conv_geom *q, const char *dst)
{
    long long k = q->c / q->groups * q->kh * q->kw, ohw = q->oh * q->ow;
    kn_emit_line(e, "for (size_t r = 0; r < %lld; r++) {", k);
    e->indent++;
    kn_emit_line(e, "const size_t c = r / %lld, ki = r / %lld %% %lld, kj = r %% %lld;",
                 (long long)(q->kh * q->kw), (long long)q->kw, (long long)q->kh, (long long)q->kw);
    kn_emit_line(e, "float *Dc = %s + c * %lld;", dst, (long long)(q->h * q->w));
    kn_emit_line(e, "const float *Cr = COL + r * %lld;", ohw);
    kn_emit_line(e, "for (size_t oh = 0; oh < %lld; oh++) {", (long long)q->oh);
    e->indent++;
    kn_emit_line(e, "const ptrdiff_t ih = (ptrdiff_t)(oh * %lld + ki * %lld) - %lld;", (long long)q->sh,
                 (long long)q->dh, (long long)q->ph);
    kn_emit_line(e, "if (ih < 0 || ih >= %lld) continue;", (long long)q->h);
    kn_emit_line(e, "for (size_t ow = 0; ow < %lld; ow++) {", (long long)q->ow);
    kn_emit_line(e, "    const ptrdiff_t iw = (ptrdiff_t)(ow * %lld + kj * %lld) - %lld;", (long long)q->sw,
                 (long long)q->dw, (long long)q->pw);
    kn_emit_line(e, "    if (iw >= 0 && iw < %lld) Dc[ih * %lld + iw] += Cr[oh * %lld + ow];", (long long)q->w,
                 (long long)q->w, (long long)q->ow);
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
}



static void conv_read_epilogue(const kn_node *n, conv_epilogue *ep)
{
    memset(ep, 0, sizeof *ep);
    ep->bias = kn_node_attr_i(n, "bias", 1) != 0;
    ep->residual = kn_node_attr_i(n, "residual", 0) != 0;
    ep->affine = kn_node_attr_i(n, "in_affine", 0) != 0;
    ep->act = kn_ops_read_clamp(n, "act_min", "act_max", &ep->clamp);
}

static bool conv_has_epilogue(const conv_epilogue *ep) { return ep->bias || ep->residual || ep->act; }

void conv_emit_store(kn_emit *e, const conv_epilogue *ep, const char *dst)
{
    kn_ops_emit_clamp_store(e, &ep->clamp, dst);
}

/* Binds B (with a bias), R (with a residual) and Y: what an epilogue
 * reads and writes. */
static void conv_bind_epilogue(kn_emit *e, const kn_node *n, const conv_epilogue *ep)
{
    if (ep->bias) kn_emit_bind_in(e, "B", n->in[2]);
    if (ep->residual) kn_emit_bind_in(e, "R", n->in[ep->bias ? 3 : 2]);
    kn_emit_bind_out(e, "Y", n->out[0]);
}

/* Binds X, W, S and T (with an input affine), B, R, Y (conv_bind_epilogue)
 * and COL. */
static void conv_bind(kn_emit *e, const kn_node *n, const conv_epilogue *ep)
{
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_in(e, "W", n->in[1]);
    if (ep->affine) {
        kn_emit_bind_in(e, "S", n->in[n->n_in - 2]);
        kn_emit_bind_in(e, "T", n->in[n->n_in - 1]);
    }
    conv_bind_epilogue(e, n, ep);
    kn_emit_bind_out(e, "COL", n->out[1]);
}

/* GEMM tiles of one sample and group (Y_g = W_g X_g: ocg x ohw): the
 * epilogue runs on each tile right after its GEMM, while it is in cache,
 * and the tiles are the unit of work a parallel loop hands out.  Their
 * size is chosen at run time (kn_rt_gemm_tiles) from the thread count and
 * the batch: two tiles per thread, no more, since a smaller GEMM runs less
 * efficiently (measured on MobileNetV2 b1, 2 threads: the 14x14 and 7x7
 * layers ~5% faster in 4 tiles than in the fixed 8 this used to be; at
 * batch 32 one tile per 512 columns).  KN_CONV_TILES remains for the
 * channels-last path's compile-time tiles. */
#define KN_CONV_TILES 8

static long long round_up(long long v, long long m) { return (v + m - 1) / m * m; }

/* Prints the run-time tile choice: tm x tn tiles, nt per row, `tiles` in
 * all, for `items` (a C expression) work items sharing the loop. */
static void conv_emit_tile_choice(kn_emit *e, const char *items, long long ocg, long long ohw)
{
    kn_emit_line(e, "size_t tm, tn;");
    kn_emit_line(e, "kn_rt_gemm_tiles(%s, %lld, %lld, &tm, &tn);", items, ocg, ohw);
    kn_emit_line(e, "const size_t nt = (%lld + tn - 1) / tn, tiles = (%lld + tm - 1) / tm * nt;", ohw, ocg);
}

/* Prints one tile `t` of the GEMM of sample/group pointers Xs (K x ohw,
 * row stride ohw), Yg, Rg, filter block Wg and bias row offset `b0`. */
static void conv_emit_gemm_tile(kn_emit *e, const conv_epilogue *ep, long long ocg, long long ohw, long long k,
                                const char *xs, const char *b0, bool x_nhwc)
{
    kn_emit_line(e, "const size_t m0 = t / nt * tm, n0 = t %% nt * tn;");
    kn_emit_line(e, "const size_t mc = %lld - m0 < tm ? %lld - m0 : tm, nc = %lld - n0 < tn ? %lld - n0 : tn;", ocg, ocg,
                 ohw, ohw);
    if (x_nhwc) /* x channels-last (a 1x1 conv): its rows are the columns of X_g */
        kn_emit_line(e, "kn_rt_sgemm(0, 1, (int)mc, (int)nc, %lld, 1.0f, Wg + m0 * %lld, %lld, %s + n0 * %lld, %lld, "
                        "0.0f, Yg + m0 * %lld + n0, %lld);", k, k, k, xs, k, k, ohw, ohw);
    else
        kn_emit_line(e, "kn_rt_sgemm(0, 0, (int)mc, (int)nc, %lld, 1.0f, Wg + m0 * %lld, %lld, %s + n0, %lld, 0.0f, "
                        "Yg + m0 * %lld + n0, %lld);", k, k, k, xs, ohw, ohw, ohw);
    if (!conv_has_epilogue(ep)) return;
    char y_row[96], r_row[96], bias[96];
    snprintf(y_row, sizeof y_row, "Yg + (m0 + o) * %lld + n0", ohw);
    snprintf(r_row, sizeof r_row, "Rg + (m0 + o) * %lld + n0", ohw);
    if (ep->bias) snprintf(bias, sizeof bias, "B[%s + m0 + o]", b0);
    else snprintf(bias, sizeof bias, "0.0f");
    kn_ops_emit_row_epilogue(e, "mc", "nc", y_row, bias, ep->residual ? r_row : NULL, &ep->clamp);
}
/* ---- channels-last (NHWC) variants, chosen by passes/layout_nhwc.c ----
 *
 * On CPU inference graphs the layout pass may store a conv's input and/or
 * output channels-last: the value keeps its logical [N, C, H, W] shape, only
 * the order in memory differs, and the pass guarantees every reader agrees.
 * Depthwise convs then vectorise over channels (stride 2 included, no
 * gathers), and a 1x1 conv is the same GEMM with the roles of rows and
 * columns swapped, so the layouts chain through a MobileNet without any
 * transposes: only the first conv (NCHW in) and the last 1x1 (NCHW out)
 * change layout, inside their GEMMs. */

/* The (x, y) layout pairs a conv2d node can be emitted with: bit (2x + y),
 * x/y = 1 for NHWC.  1x1 direct convs: all four; depthwise: both or
 * neither; other group-1 convs (im2col): NCHW input, either output. */
static unsigned conv_nhwc_layouts(const kn_graph *g, const kn_node *n)
{
    conv_geom q;
    kn_diag quiet = {0};
    unsigned nchw = 1u << 0, y_only = 1u << 1, x_only = 1u << 2, both = 1u << 3;
    if (conv_geom_forward(&quiet, g, n, &q) != KN_OK || conv_pooled(n)) return nchw;
    /* Preferred where measured faster (MobileNetV2, 2 cores): stride 2 from
     * 28x28 up (2x on the depthwise, more than the layout change costs the
     * GEMMs around it); at 14x14 the transposed projection GEMM loses more
     * than the depthwise gains.  passes/fuse_block.c takes MobileNetV2's
     * own such blocks first; this serves the ones it cannot fuse. */
    if (conv_is_depthwise(&q))
        return nchw | both | (q.sh > 1 && q.h * q.w >= 28 * 28 ? KN_NHWC_PREFERRED : 0);
    if (q.groups != 1) return nchw;
    if (conv_is_1x1(&q)) return nchw | y_only | x_only | both;
    return nchw | y_only;
}

static bool conv_x_nhwc(const kn_node *n) { return kn_node_attr_i(n, "x_nhwc", 0) != 0; }
static bool conv_y_nhwc(const kn_node *n) { return kn_node_attr_i(n, "y_nhwc", 0) != 0; }

/* Tiles of a channels-last GEMM (rows = output pixels, columns = output
 * channels): row blocks of at most 128 pixels, then columns halved (in
 * multiples of 16) and rows split further until there are KN_CONV_TILES. */
static void conv_tiles_nhwc(long long rows, long long cols, long long *mc, long long *nc)
{
    long long mt = (rows + 127) / 128, nt = 1;
    while (mt * nt < KN_CONV_TILES && cols / (nt * 2) >= 32) nt *= 2;
    while (mt * nt < KN_CONV_TILES && rows / (mt + 1) >= 16) mt++;
    *mc = (rows + mt - 1) / mt;
    *nc = round_up((cols + nt - 1) / nt, 16);
    if (*nc > cols) *nc = cols;
}

/* Group-1 conv writing NHWC, Y_s (OH*OW x OC) = op(A) W^T per sample, in
 * tiles with the epilogue per tile.  A is COL (im2col, K x OH*OW,
 * transposed), or x itself for a 1x1 kernel: NCHW (transposed) or NHWC. */
static void conv_emit_gemm_nhwc_out(kn_emit *e, const conv_geom *q, const conv_epilogue *ep, const char *samples,
                                    bool direct, bool x_nhwc)
{
    long long k = q->c * q->kh * q->kw, ohw = q->oh * q->ow, oc = q->oc, mc, nc;
    conv_tiles_nhwc(ohw, oc, &mc, &nc);
    long long nt = (oc + nc - 1) / nc, tiles = (ohw + mc - 1) / mc * nt;
    if (direct) {
        kn_emit_line(e, "(void)COL; /* 1x1 kernel: x is its own im2col */");
        conv_emit_parallel_for(e, samples, oc * ohw * k);
        kn_emit_line(e, "for (size_t j = 0; j < %s * %lld; j++) {", samples, tiles);
        e->indent++;
        kn_emit_line(e, "const size_t s = j / %lld, t = j %% %lld;", tiles, tiles);
        kn_emit_line(e, "const float *Xs = X + s * %lld;", k * ohw);
    } else {
        kn_emit_line(e, "for (size_t s = 0; s < %s; s++) {", samples);
        e->indent++;
        kn_emit_line(e, "const float *Xg = X + s * %lld;", (long long)(q->c * q->h * q->w));
        conv_emit_im2col(e, q, "Xg", ep->affine);
        conv_emit_parallel_for(e, "1", oc * ohw * k);
        kn_emit_line(e, "for (size_t t = 0; t < tiles; t++) {");
        e->indent++;
    }
    kn_emit_line(e, "float *Ys = Y + s * %lld;", oc * ohw);
    if (ep->residual) kn_emit_line(e, "const float *Rs = R + s * %lld;", oc * ohw);
    kn_emit_line(e, "const size_t m0 = t / %lld * %lld, n0 = t %% %lld * %lld;", nt, mc, nt, nc);
    kn_emit_line(e, "const size_t mc = %lld - m0 < %lld ? %lld - m0 : %lld, nc = %lld - n0 < %lld ? %lld - n0 : %lld;",
                 ohw, mc, ohw, mc, oc, nc, oc, nc);
    if (!direct)
        kn_emit_line(e, "kn_rt_sgemm(1, 1, (int)mc, (int)nc, %lld, 1.0f, COL + m0, %lld, W + n0 * %lld, %lld, 0.0f, "
                        "Ys + m0 * %lld + n0, %lld);", k, ohw, k, k, oc, oc);
    else if (x_nhwc)
        kn_emit_line(e, "kn_rt_sgemm(0, 1, (int)mc, (int)nc, %lld, 1.0f, Xs + m0 * %lld, %lld, W + n0 * %lld, %lld, "
                        "0.0f, Ys + m0 * %lld + n0, %lld);", k, k, k, k, k, oc, oc);
    else
        kn_emit_line(e, "kn_rt_sgemm(1, 1, (int)mc, (int)nc, %lld, 1.0f, Xs + m0, %lld, W + n0 * %lld, %lld, 0.0f, "
                        "Ys + m0 * %lld + n0, %lld);", k, ohw, k, k, oc, oc);
    if (conv_has_epilogue(ep)) {
        kn_emit_line(e, "for (size_t r = 0; r < mc; r++) {");
        e->indent++;
        kn_emit_line(e, "float *restrict Yo = Ys + (m0 + r) * %lld + n0;", oc);
        if (ep->residual) kn_emit_line(e, "const float *restrict Ro = Rs + (m0 + r) * %lld + n0;", oc);
        kn_emit_line(e, "for (size_t i = 0; i < nc; i++) {");
        e->indent++;
        kn_emit_line(e, "const float v = Yo[i]%s%s;", ep->bias ? " + B[n0 + i]" : "", ep->residual ? " + Ro[i]" : "");
        conv_emit_store(e, ep, "Yo[i]");
        e->indent--;
        kn_emit_line(e, "}");
        e->indent--;
        kn_emit_line(e, "}");
    }
    for (int depth = direct ? 1 : 2; depth > 0; depth--) {
        e->indent--;
        kn_emit_line(e, "}");
    }
}

/* A forward group-1 conv with a real kernel (not 1x1, not depthwise) runs
 * in bands of output rows: each work item builds the im2col of its band in
 * a per-thread buffer of at most KN_CONV_BAND_FLOATS (so it stays in L1/L2
 * rather than a whole-image COL going out to memory and back) and
 * multiplies it straight into Y's rows, epilogue included.  0 when even
 * one output row does not fit (the whole-image im2col path is used). */
#define KN_CONV_BAND_FLOATS 16384

static long long conv_band_rows(const conv_geom *q)
{
    if (q->groups != 1 || conv_is_1x1(q) || conv_is_depthwise(q)) return 0;
    long long row = q->c * q->kh * q->kw * q->ow;
    if (row > KN_CONV_BAND_FLOATS) return 0;
    long long rb = KN_CONV_BAND_FLOATS / row;
    return rb < q->oh ? rb : q->oh;
}

static void conv_emit_banded(kn_emit *e, const conv_geom *q, const conv_epilogue *ep, const char *samples)
{
    long long k = q->c * q->kh * q->kw, ohw = q->oh * q->ow, rb = conv_band_rows(q);
    long long bands = (q->oh + rb - 1) / rb, hw = q->h * q->w;
    kn_emit_line(e, "(void)COL; /* im2col per band of output rows, in a per-thread buffer */");
    conv_emit_parallel_for(e, samples, (long long)q->oc * ohw * k);
    kn_emit_line(e, "for (size_t j = 0; j < %s * %lld; j++) {", samples, bands);
    e->indent++;
    kn_emit_line(e, "const size_t s = j / %lld, oh0 = j %% %lld * %lld;", bands, bands, rb);
    kn_emit_line(e, "const size_t rows = %lld - oh0 < %lld ? %lld - oh0 : %lld, nc = rows * %lld;", (long long)q->oh, rb,
                 (long long)q->oh, rb, (long long)q->ow);
    kn_emit_line(e, "float CB[%lld];", k * rb * q->ow);
    kn_emit_line(e, "for (size_t r = 0; r < %lld; r++) {", k);
    e->indent++;
    kn_emit_line(e, "const size_t c = r / %lld, ki = r / %lld %% %lld, kj = r %% %lld;",
                 (long long)(q->kh * q->kw), (long long)q->kw, (long long)q->kh, (long long)q->kw);
    kn_emit_line(e, "const float *Xc = X + (s * %lld + c) * %lld;", (long long)q->c, hw);
    kn_emit_line(e, "for (size_t oh = oh0; oh < oh0 + rows; oh++) {");
    e->indent++;
    char co[64];
    snprintf(co, sizeof co, "CB + r * nc + (oh - oh0) * %lld", (long long)q->ow);
    conv_emit_im2col_row(e, q, co, ep->affine);
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
    kn_emit_line(e, "float *Ys = Y + s * %lld + oh0 * %lld;", q->oc * ohw, (long long)q->ow);
    kn_emit_line(e, "kn_rt_sgemm(0, 0, %lld, (int)nc, %lld, 1.0f, W, %lld, CB, (int)nc, 0.0f, Ys, %lld);",
                 (long long)q->oc, k, k, ohw);
    if (conv_has_epilogue(ep)) {
        if (ep->residual) kn_emit_line(e, "const float *Rs = R + s * %lld + oh0 * %lld;", q->oc * ohw, (long long)q->ow);
        char rows[32], y_row[64], r_row[64];
        snprintf(rows, sizeof rows, "%lld", (long long)q->oc);
        snprintf(y_row, sizeof y_row, "Ys + o * %lld", ohw);
        snprintf(r_row, sizeof r_row, "Rs + o * %lld", ohw);
        kn_ops_emit_row_epilogue(e, rows, "nc", y_row, ep->bias ? "B[o]" : "0.0f", ep->residual ? r_row : NULL,
                                 &ep->clamp);
    }
    e->indent--;
    kn_emit_line(e, "}");
}

/* A 1x1 conv followed by its global average pool: tiles of whole output
 * rows (every pixel of a channel), GEMM into per-thread scratch, then per
 * row bias, clamp and the mean, summed in pixel order and divided by H,
 * then W, as global_avg_pool does. */
static void conv_emit_pooled(kn_emit *e, const conv_geom *q, const conv_epilogue *ep, const char *samples)
{
    long long ohw = q->oh * q->ow, k = q->c;
    kn_emit_line(e, "(void)COL; /* 1x1 kernel + global average pool: only the means are stored */");
    /* Row tiles only (tn ignored): a mean needs all OH*OW columns. */
    kn_emit_line(e, "size_t tm, tn;");
    kn_emit_line(e, "kn_rt_gemm_tiles(%s, %lld, %lld, &tm, &tn);", samples, (long long)q->oc, ohw);
    kn_emit_line(e, "const size_t tiles = (%lld + tm - 1) / tm;", (long long)q->oc);
    conv_emit_parallel_for(e, samples, (long long)q->oc * ohw * k);
    kn_emit_line(e, "for (size_t j = 0; j < %s * tiles; j++) {", samples);
    e->indent++;
    kn_emit_line(e, "const size_t s = j / tiles, m0 = j %% tiles * tm, mc = %lld - m0 < tm ? %lld - m0 : tm;",
                 (long long)q->oc, (long long)q->oc);
    kn_emit_line(e, "float *restrict Tt = kn_rt_scratch(tm * %lld);", ohw);
    kn_emit_line(e, "kn_rt_sgemm(0, 0, (int)mc, %lld, %lld, 1.0f, W + m0 * %lld, %lld, X + s * %lld, %lld, 0.0f, Tt, %lld);",
                 ohw, k, k, k, k * q->h * q->w, ohw, ohw);
    kn_emit_line(e, "for (size_t o = 0; o < mc; o++) {");
    e->indent++;
    kn_emit_line(e, "const float bo = %s;", ep->bias ? "B[m0 + o]" : "0.0f");
    kn_emit_line(e, "float sum = 0.0f;");
    kn_emit_line(e, "for (size_t i = 0; i < %lld; i++) {", ohw);
    e->indent++;
    kn_emit_line(e, "float v = Tt[o * %lld + i] + bo;", ohw);
    kn_ops_emit_clamp_store(e, &ep->clamp, "v");
    kn_emit_line(e, "sum += v;");
    e->indent--;
    kn_emit_line(e, "}");
    kn_emit_line(e, "Y[s * %lld + m0 + o] = sum / %lld.0f / %lld.0f;", (long long)q->oc, (long long)q->oh,
                 (long long)q->ow);
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
}

static kn_status conv_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    conv_geom q;
    if (conv_geom_forward(e->diag, g, n, &q) != KN_OK) return KN_ERR;
    conv_epilogue ep;
    conv_read_epilogue(n, &ep);
    char samples[64];
    kn_ops_dims_expr(e, n->in[0], 0, 1, samples, sizeof samples);
    conv_bind(e, n, &ep);
    bool x_nhwc = conv_x_nhwc(n), y_nhwc = conv_y_nhwc(n);
    if (!(conv_nhwc_layouts(g, n) & (1u << (2 * x_nhwc + y_nhwc))))
        return kn_op_error(e->diag, g, n, "internal: no kernel for input %s, output %s", x_nhwc ? "NHWC" : "NCHW",
                           y_nhwc ? "NHWC" : "NCHW");
    if (conv_is_depthwise(&q)) {
        conv_emit_depthwise_any(e, &q, &ep, samples, x_nhwc);
        return KN_OK;
    }
    if (y_nhwc) {
        conv_emit_gemm_nhwc_out(e, &q, &ep, samples, conv_is_1x1(&q), x_nhwc);
        return KN_OK;
    }
    if (conv_pooled(n)) {
        conv_emit_pooled(e, &q, &ep, samples);
        return KN_OK;
    }
    if (conv_band_rows(&q)) {
        conv_emit_banded(e, &q, &ep, samples);
        return KN_OK;
    }
    long long cg = q.c / q.groups, ocg = q.oc / q.groups, k = cg * q.kh * q.kw, ohw = q.oh * q.ow;
    long long hw = q.h * q.w;
    bool direct = conv_is_1x1(&q);
    if (direct) {
        /* x is its own im2col: every (sample, group, tile) is independent. */
        char items[96];
        snprintf(items, sizeof items, "%s * %lld", samples, (long long)q.groups);
        kn_emit_line(e, "(void)COL; /* 1x1 kernel: x is its own im2col */");
        conv_emit_tile_choice(e, items, ocg, ohw);
        conv_emit_parallel_for(e, samples, (long long)q.oc * ohw * k);
        kn_emit_line(e, "for (size_t j = 0; j < %s * %lld * tiles; j++) {", samples, (long long)q.groups);
        e->indent++;
        kn_emit_line(e, "const size_t s = j / (%lld * tiles), gi = j / tiles %% %lld, t = j %% tiles;",
                     (long long)q.groups, (long long)q.groups);
        kn_emit_line(e, "const float *Xg = X + (s * %lld + gi * %lld) * %lld;", (long long)q.c, cg, hw);
    } else {
        conv_emit_tile_choice(e, "1", ocg, ohw);
        kn_emit_line(e, "for (size_t s = 0; s < %s; s++) {", samples);
        e->indent++;
        kn_emit_line(e, "for (size_t gi = 0; gi < %lld; gi++) {", (long long)q.groups);
        e->indent++;
        kn_emit_line(e, "const float *Xg = X + (s * %lld + gi * %lld) * %lld;", (long long)q.c, cg, hw);
        conv_emit_im2col(e, &q, "Xg", ep.affine);
        conv_emit_parallel_for(e, "1", ocg * ohw * k);
        kn_emit_line(e, "for (size_t t = 0; t < tiles; t++) {");
        e->indent++;
    }
    kn_emit_line(e, "const float *Wg = W + gi * %lld;", ocg * k);
    kn_emit_line(e, "float *Yg = Y + (s * %lld + gi * %lld) * %lld;", (long long)q.oc, ocg, ohw);
    if (ep.residual)
        kn_emit_line(e, "const float *Rg = R + (s * %lld + gi * %lld) * %lld;", (long long)q.oc, ocg, ohw);
    char b0[64];
    snprintf(b0, sizeof b0, "gi * %lld", ocg);
    conv_emit_gemm_tile(e, &ep, ocg, ohw, k, direct ? "Xg" : "COL", b0, x_nhwc);
    for (int depth = direct ? 1 : 3; depth > 0; depth--) {
        e->indent--;
        kn_emit_line(e, "}");
    }
    return KN_OK;
}

static int64_t conv_macs(const kn_graph *g, const kn_node *n)
{
    const kn_shape *y = &kn_graph_value(g, n->out[0])->shape;
    const kn_shape *w = &kn_graph_value(g, n->in[1])->shape;
    int64_t m;
    if (!kn_mul_ok(kn_ops_dims_const(y, 1, 4), kn_ops_dims_const(w, 1, 4), &m)) return INT64_MAX;
    return m;
}

/* Copies the geometry attributes of `src` (normalised to pairs) onto `dst`. */
static void conv_copy_geom_attrs(kn_node *dst, const conv_geom *q, bool kernel)
{
    int64_t s[2] = {q->sh, q->sw}, dl[2] = {q->dh, q->dw}, k[2] = {q->kh, q->kw};
    int64_t p[4] = {q->ph, q->pw, q->ph_end, q->pw_end};
    bool sym = q->ph == q->ph_end && q->pw == q->pw_end;
    if (kernel) kn_node_set_attr_ints(dst, "kernel", k, 2);
    kn_node_set_attr_ints(dst, "stride", s, 2);
    kn_node_set_attr_ints(dst, "padding", p, sym ? 2 : 4);
    kn_node_set_attr_ints(dst, "dilation", dl, 2);
    kn_node_set_attr_i(dst, "groups", q->groups);
}

static kn_status conv_grad(kn_graph *g, const kn_node *n, const int *dy, const bool *need, int *dx,
                           kn_diag *d)
{
    for (int i = 0; i < n->n_in; i++) dx[i] = -1;
    if (dy[0] < 0) return KN_OK;
    if (kn_node_attr(n, "residual") || kn_node_attr(n, "act_min"))
        return kn_op_error(d, g, n, "internal: a conv with a fused epilogue (inference only) has no gradient");
    conv_geom q;
    if (conv_geom_forward(d, g, n, &q) != KN_OK) return KN_ERR;
    char name[512];
    int x = n->in[0], w = n->in[1];
    if (need[0]) {
        int in[2] = {dy[0], w};
        snprintf(name, sizeof name, "%s.grad_input", n->name);
        kn_node *b = kn_op_build(g, KN_OP_CONV2D_GRAD_INPUT, name, in, 2, 1, d);
        if (!b) return KN_ERR;
        conv_add_col_output(g, b);
        conv_copy_geom_attrs(b, &q, false);
        int64_t hw[2] = {q.h, q.w};
        kn_node_set_attr_ints(b, "input_hw", hw, 2);
        if (kn_op_finish(g, b, d) != KN_OK) return KN_ERR;
        dx[0] = b->out[0];
    }
    if (n->n_in > 1 && need[1]) {
        int in[2] = {dy[0], x};
        snprintf(name, sizeof name, "%s.grad_weight", n->name);
        kn_node *b = kn_op_build(g, KN_OP_CONV2D_GRAD_WEIGHT, name, in, 2, 1, d);
        if (!b) return KN_ERR;
        conv_add_col_output(g, b);
        conv_copy_geom_attrs(b, &q, true);
        if (kn_op_finish(g, b, d) != KN_OK) return KN_ERR;
        dx[1] = b->out[0];
    }
    if (n->n_in > 2 && need[2]) {
        int64_t hw[2] = {2, 3}, batch = 0;
        snprintf(name, sizeof name, "%s.grad_bias_hw", n->name);
        kn_node *s1 = kn_op_build(g, KN_OP_SUM, name, &dy[0], 1, 1, d);
        if (!s1) return KN_ERR;
        kn_node_set_attr_ints(s1, "dim", hw, 2);
        if (kn_op_finish(g, s1, d) != KN_OK) return KN_ERR;
        snprintf(name, sizeof name, "%s.grad_bias", n->name);
        kn_node *s2 = kn_op_build(g, KN_OP_SUM, name, &s1->out[0], 1, 1, d);
        if (!s2) return KN_ERR;
        kn_node_set_attr_ints(s2, "dim", &batch, 1);
        if (kn_op_finish(g, s2, d) != KN_OK) return KN_ERR;
        dx[2] = s2->out[0];
    }
    return KN_OK;
}

/* ---- conv2d_grad_input(dy, w) ---- */

static kn_status grad_input_geom(kn_diag *d, const kn_graph *g, const kn_node *n, conv_geom *q)
{
    if (kn_ops_want_nchw(d, g, n, 0, "output gradient") != KN_OK) return KN_ERR;
    if (kn_ops_want_f32(d, g, n, 1, "weight") != KN_OK) return KN_ERR;
    const kn_shape *dy = &kn_graph_value(g, n->in[0])->shape, *w = &kn_graph_value(g, n->in[1])->shape;
    char sw[128], sy[128];
    kn_ops_fmt(g, n->in[1], sw, sizeof sw);
    kn_ops_fmt(g, n->in[0], sy, sizeof sy);
    if (w->rank != 4 || w->d[0] < 1 || w->d[1] < 1 || w->d[2] < 1 || w->d[3] < 1)
        return kn_op_error(d, g, n, "expects a f32[out, C/groups, kh, kw] weight, got %s", sw);
    int64_t hw[2];
    if (conv_pair(d, g, n, "input_hw", 0, 1, hw) != KN_OK) return KN_ERR;
    q->groups = kn_node_attr_i(n, "groups", 1);
    if (q->groups < 1 || w->d[0] % q->groups != 0)
        return kn_op_error(d, g, n, "groups=%lld does not divide the %lld filters of weight %s",
                           (long long)q->groups, (long long)w->d[0], sw);
    q->c = w->d[1] * q->groups, q->h = hw[0], q->w = hw[1];
    q->oc = w->d[0], q->kh = w->d[2], q->kw = w->d[3];
    char in[96];
    snprintf(in, sizeof in, "[N,%lld,%lld,%lld]", (long long)q->c, (long long)q->h, (long long)q->w);
    if (conv_geom_finish(d, g, n, q, in) != KN_OK) return KN_ERR;
    if (dy->d[1] != q->oc || dy->d[2] != q->oh || dy->d[3] != q->ow)
        return kn_op_error(d, g, n, "output gradient %s does not match weight %s on input %s "
                           "(expected [N,%lld,%lld,%lld])", sy, sw, in, (long long)q->oc, (long long)q->oh,
                           (long long)q->ow);
    return KN_OK;
}

static kn_status grad_input_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    conv_geom q;
    if (grad_input_geom(d, g, n, &q) != KN_OK) return KN_ERR;
    if (conv_want_col(d, g, n) != KN_OK) return KN_ERR;
    kn_shape x = kn_graph_value(g, n->in[0])->shape;
    x.d[1] = q.c, x.d[2] = q.h, x.d[3] = q.w;
    kn_shape col = conv_col_shape(&q);
    kn_ops_set_out(g, n, 0, KN_F32, &x);
    kn_ops_set_out(g, n, 1, KN_F32, &col);
    return KN_OK;
}

static kn_status grad_input_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    conv_geom q;
    if (grad_input_geom(e->diag, g, n, &q) != KN_OK) return KN_ERR;
    long long cg = q.c / q.groups, ocg = q.oc / q.groups, k = cg * q.kh * q.kw, ohw = q.oh * q.ow;
    char samples[64], count[64];
    kn_ops_dims_expr(e, n->in[0], 0, 1, samples, sizeof samples);
    kn_emit_numel(e, n->out[0], count, sizeof count);
    bool direct = conv_is_1x1(&q);
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_in(e, "W", n->in[1]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    kn_emit_bind_out(e, "COL", n->out[1]);
    if (direct) kn_emit_line(e, "(void)COL; /* 1x1 kernel: W^T dy is dx itself */");
    else kn_emit_line(e, "memset(dX, 0, %s * sizeof(float));", count);
    kn_emit_line(e, "for (size_t s = 0; s < %s; s++) {", samples);
    e->indent++;
    kn_emit_line(e, "for (size_t gi = 0; gi < %lld; gi++) {", (long long)q.groups);
    e->indent++;
    kn_emit_line(e, "const float *dYg = dY + (s * %lld + gi * %lld) * %lld;", (long long)q.oc, ocg, ohw);
    kn_emit_line(e, "float *dXg = dX + (s * %lld + gi * %lld) * %lld;", (long long)q.c, cg,
                 (long long)(q.h * q.w));
    kn_emit_line(e, "kn_rt_sgemm(1, 0, %lld, %lld, %lld, 1.0f, W + gi * %lld, %lld, dYg, %lld, 0.0f, %s, %lld);",
                 k, ohw, ocg, ocg * k, k, ohw, direct ? "dXg" : "COL", ohw);
    if (!direct) conv_emit_col2im(e, &q, "dXg");
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
    return KN_OK;
}

/* ---- conv2d_grad_weight(dy, x) ---- */

static kn_status grad_weight_geom(kn_diag *d, const kn_graph *g, const kn_node *n, conv_geom *q)
{
    if (kn_ops_want_nchw(d, g, n, 0, "output gradient") != KN_OK) return KN_ERR;
    if (kn_ops_want_nchw(d, g, n, 1, "input") != KN_OK) return KN_ERR;
    const kn_shape *dy = &kn_graph_value(g, n->in[0])->shape, *x = &kn_graph_value(g, n->in[1])->shape;
    char sx[128], sy[128];
    kn_ops_fmt(g, n->in[1], sx, sizeof sx);
    kn_ops_fmt(g, n->in[0], sy, sizeof sy);
    q->c = x->d[1], q->h = x->d[2], q->w = x->d[3], q->oc = dy->d[1];
    int64_t k[2];
    if (conv_pair(d, g, n, "kernel", 3, 1, k) != KN_OK) return KN_ERR;
    q->kh = k[0], q->kw = k[1];
    if (conv_check_groups(d, g, n, q, sx) != KN_OK) return KN_ERR;
    if (conv_geom_finish(d, g, n, q, sx) != KN_OK) return KN_ERR;
    if (dy->d[0] != x->d[0] || dy->d[2] != q->oh || dy->d[3] != q->ow)
        return kn_op_error(d, g, n, "output gradient %s does not match input %s (expected [%s,%lld,%lld,%lld])",
                           sy, sx, x->d[0] == KN_DIM_N ? "N" : "B", (long long)q->oc, (long long)q->oh,
                           (long long)q->ow);
    return KN_OK;
}

static kn_status grad_weight_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    conv_geom q;
    if (grad_weight_geom(d, g, n, &q) != KN_OK) return KN_ERR;
    if (conv_want_col(d, g, n) != KN_OK) return KN_ERR;
    int64_t wd[4] = {q.oc, q.c / q.groups, q.kh, q.kw};
    kn_shape w = kn_shape_make(4, wd), col = conv_col_shape(&q);
    kn_ops_set_out(g, n, 0, KN_F32, &w);
    kn_ops_set_out(g, n, 1, KN_F32, &col);
    return KN_OK;
}

static kn_status grad_weight_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    conv_geom q;
    if (grad_weight_geom(e->diag, g, n, &q) != KN_OK) return KN_ERR;
    long long cg = q.c / q.groups, ocg = q.oc / q.groups, k = cg * q.kh * q.kw, ohw = q.oh * q.ow;
    char samples[64];
    kn_ops_dims_expr(e, n->in[1], 0, 1, samples, sizeof samples);
    bool direct = conv_is_1x1(&q);
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_in(e, "X", n->in[1]);
    kn_emit_bind_out(e, "dW", n->out[0]);
    kn_emit_bind_out(e, "COL", n->out[1]);
    if (direct) kn_emit_line(e, "(void)COL; /* 1x1 kernel: x is its own im2col */");
    kn_emit_line(e, "memset(dW, 0, %lld * sizeof(float));", (long long)q.oc * k);
    kn_emit_line(e, "for (size_t s = 0; s < %s; s++) {", samples);
    e->indent++;
    kn_emit_line(e, "for (size_t gi = 0; gi < %lld; gi++) {", (long long)q.groups);
    e->indent++;
    kn_emit_line(e, "const float *Xg = X + (s * %lld + gi * %lld) * %lld;", (long long)q.c, cg,
                 (long long)(q.h * q.w));
    kn_emit_line(e, "const float *dYg = dY + (s * %lld + gi * %lld) * %lld;", (long long)q.oc, ocg, ohw);
    if (!direct) conv_emit_im2col(e, &q, "Xg", false);
    kn_emit_line(e, "kn_rt_sgemm(0, 1, %lld, %lld, %lld, 1.0f, dYg, %lld, %s, %lld, 1.0f, dW + gi * %lld, %lld);",
                 ocg, k, ohw, ohw, direct ? "Xg" : "COL", ohw, ocg * k, k);
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
    return KN_OK;
}

static kn_status conv_scratch_only(kn_graph *g, kn_node *n, kn_diag *d)
{
    (void)d;
    conv_add_col_output(g, n);
    return KN_OK;
}

static const kn_arg_spec conv_args[] = {
    {"out_channels", KN_ATTR_INT, true, 0, 0, NULL},
    {"kernel", KN_ATTR_INTS, false, 0, 0, NULL}, /* empty = 3 */
    {"stride", KN_ATTR_INTS, false, 0, 0, NULL}, /* empty = 1 */
    {"padding", KN_ATTR_INTS, false, 0, 0, NULL},
    {"dilation", KN_ATTR_INTS, false, 0, 0, NULL},
    {"groups", KN_ATTR_INT, false, 1, 0, NULL},
    {"bias", KN_ATTR_BOOL, false, 1, 0, NULL},
    {"init", KN_ATTR_STRING, false, 0, 0, "kaiming_uniform"},
    {NULL, 0, false, 0, 0, NULL},
};

static const kn_arg_spec grad_input_args[] = {
    {"stride", KN_ATTR_INTS, false, 0, 0, NULL},
    {"padding", KN_ATTR_INTS, false, 0, 0, NULL},
    {"dilation", KN_ATTR_INTS, false, 0, 0, NULL},
    {"groups", KN_ATTR_INT, false, 1, 0, NULL},
    {"input_hw", KN_ATTR_INTS, true, 0, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

/* ---- CUDA: direct convolution, one thread per output element ----
 * One kernel shape serves dense, grouped and depthwise convolutions (the
 * group of channel c is c / (C / groups)); W is [OC, C/groups, KH, KW] as
 * in the C path.  The im2col scratch output (COL) is unused on the GPU.
 * Dense 1x1 convolutions go to cuBLAS.  On inference graphs the bias,
 * residual and clamp epilogue (fuse_epilogue.c) is applied as each output
 * is stored. */

/* "const int64_t C = 32, H = ..." : the geometry as kernel constants. */
static void conv_emit_cuda_geom(kn_emit *e, const conv_geom *q)
{
    kn_emit_line(e, "const int64_t C = %lld, H = %lld, W_ = %lld, OC = %lld, OH = %lld, OW = %lld;", (long long)q->c,
                 (long long)q->h, (long long)q->w, (long long)q->oc, (long long)q->oh, (long long)q->ow);
    kn_emit_line(e, "const int64_t KH = %lld, KW = %lld, SH = %lld, SW = %lld, PH = %lld, PW = %lld, DH = %lld, DW = %lld;",
                 (long long)q->kh, (long long)q->kw, (long long)q->sh, (long long)q->sw, (long long)q->ph,
                 (long long)q->pw, (long long)q->dh, (long long)q->dw);
    kn_emit_line(e, "const int64_t CG = %lld, OCG = %lld; /* channels per group */", (long long)(q->c / q->groups),
                 (long long)(q->oc / q->groups));
    kn_emit_line(e, "(void)H; (void)W_; (void)OH; (void)OW; (void)C; (void)OC;");
}

/* Work items: `per` elements per sample of value `vid` (batched). */
static void conv_cuda_count(kn_emit *e, int vid, int64_t per, char *buf, size_t cap)
{
    char s[64];
    kn_ops_dims_expr(e, vid, 0, 1, s, sizeof s);
    snprintf(buf, cap, "(%s * %lld)", s, (long long)per);
}

/* `outer` around a 2-D loop (y over NY, x over NX) visiting the input taps
 * iy = oy*SH - PH + ky*DH, ix = ox*SW - PW + kx*DW inside the image, adding
 * `term` to acc: the forward pass loops over the kernel taps (ky, kx), the
 * weight gradient over the output positions (oy, ox). */
static void conv_emit_cuda_taps(kn_emit *e, const char *outer, const char *y, const char *ny, const char *x,
                                const char *nx, const char *term)
{
    kn_emit_line(e, "%s", outer);
    kn_emit_line(e, "    for (int64_t %s = 0; %s < %s; %s++) {", y, y, ny, y);
    kn_emit_line(e, "        const int64_t iy = oy * SH - PH + ky * DH;");
    kn_emit_line(e, "        if (iy < 0 || iy >= H) continue;");
    kn_emit_line(e, "        for (int64_t %s = 0; %s < %s; %s++) {", x, x, nx, x);
    kn_emit_line(e, "            const int64_t ix = ox * SW - PW + kx * DW;");
    kn_emit_line(e, "            if (ix < 0 || ix >= W_) continue;");
    kn_emit_line(e, "            acc += %s;", term);
    kn_emit_line(e, "        }");
    kn_emit_line(e, "    }");
}

/* The fused epilogue (bias, residual, clamp) of output element i of
 * channel `oc` on `acc`, then the store: Y[i] = clamp(acc + B + R). */
static void conv_emit_cuda_store(kn_emit *e, const conv_epilogue *ep, const char *acc, const char *oc)
{
    kn_emit_line(e, "float v = %s%s%s%s;", acc, ep->bias ? " + B[" : "", ep->bias ? oc : "", ep->bias ? "]" : "");
    if (ep->residual) kn_emit_line(e, "v = v + R[i];");
    conv_emit_store(e, ep, "Y[i]");
}

/* 1x1 convolution, one group: per sample Y (OC x HW) = W (OC x C) X (C x HW),
 * one strided-batched cuBLAS call for all samples (the host's
 * kn_rt_sgemm_strided, redirected on the GPU), then
 * one kernel for the epilogue (bias, residual, clamp) when there is one. */
static kn_status conv_emit_cuda_1x1(kn_emit *e, const kn_node *n, const conv_geom *q, const conv_epilogue *ep)
{
    long long hw = (long long)(q->h * q->w), oc = (long long)q->oc, c = (long long)q->c;
    char count[96], samples[64], ch[64];
    conv_cuda_count(e, n->out[0], q->oc * q->oh * q->ow, count, sizeof count);
    kn_ops_dims_expr(e, n->in[0], 0, 1, samples, sizeof samples);
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_in(e, "W", n->in[1]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_line(e, "kn_rt_sgemm_strided(0, 0, %lld, %lld, %lld, 1.0f, W, %lld, 0, X, %lld, %lld, 0.0f, Y, %lld, %lld, "
                 "(int)%s);", oc, hw, c, c, hw, c * hw, hw, oc * hw, samples);
    if (!conv_has_epilogue(ep)) return KN_OK;
    kn_emit_cuda_kernel(e, count);
    conv_bind_epilogue(e, n, ep);
    kn_emit_for_open(e, "i", count);
    snprintf(ch, sizeof ch, "(i / %lld) %% %lld", hw, oc);
    conv_emit_cuda_store(e, ep, "Y[i]", ch);
    kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static kn_status conv_emit_cuda(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    conv_geom q;
    conv_epilogue ep;
    if (conv_geom_forward(e->diag, g, n, &q) != KN_OK) return KN_ERR;
    conv_read_epilogue(n, &ep);
    if (ep.affine || kn_node_attr(n, "pool_avg"))
        return kn_op_error(e->diag, g, n, "internal: the input affine and the pooled conv are CPU-only");
    if (conv_is_1x1(&q) && q.groups == 1) return conv_emit_cuda_1x1(e, n, &q, &ep);
    char count[96];
    conv_cuda_count(e, n->out[0], q.oc * q.oh * q.ow, count, sizeof count);
    kn_emit_cuda_kernel(e, count);
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_in(e, "W", n->in[1]);
    conv_bind_epilogue(e, n, &ep);
    conv_emit_cuda_geom(e, &q);
    kn_emit_for_open(e, "i", count);
    kn_emit_line(e, "const int64_t ox = i %% OW, oy = (i / OW) %% OH, oc = (i / (OW * OH)) %% OC, s = i / (OW * OH * OC);");
    kn_emit_line(e, "const int64_t c0 = oc / OCG * CG;");
    kn_emit_line(e, "float acc = 0.0f;");
    conv_emit_cuda_taps(e, "for (int64_t ci = 0; ci < CG; ci++)", "ky", "KH", "kx", "KW",
                        "X[((s * C + c0 + ci) * H + iy) * W_ + ix] * W[((oc * CG + ci) * KH + ky) * KW + kx]");
    conv_emit_cuda_store(e, &ep, "acc", "oc");
    kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

/* dX[s,c,y,x]: every (oc of c's group, ky, kx) whose output position lands
 * on (y, x) exactly. */
static kn_status grad_input_emit_cuda(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    conv_geom q;
    if (grad_input_geom(e->diag, g, n, &q) != KN_OK) return KN_ERR;
    char count[96];
    conv_cuda_count(e, n->out[0], q.c * q.h * q.w, count, sizeof count);
    kn_emit_cuda_kernel(e, count);
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_in(e, "W", n->in[1]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    conv_emit_cuda_geom(e, &q);
    kn_emit_for_open(e, "i", count);
    kn_emit_line(e, "const int64_t x = i %% W_, y = (i / W_) %% H, c = (i / (W_ * H)) %% C, s = i / (W_ * H * C);");
    kn_emit_line(e, "const int64_t gi = c / CG, ci = c - gi * CG;");
    kn_emit_line(e, "float acc = 0.0f;");
    kn_emit_line(e, "for (int64_t o = 0; o < OCG; o++) {");
    kn_emit_line(e, "    const int64_t oc = gi * OCG + o;");
    kn_emit_line(e, "    for (int64_t ky = 0; ky < KH; ky++) {");
    kn_emit_line(e, "        const int64_t ty = y + PH - ky * DH;");
    kn_emit_line(e, "        if (ty < 0 || ty %% SH != 0 || ty / SH >= OH) continue;");
    kn_emit_line(e, "        for (int64_t kx = 0; kx < KW; kx++) {");
    kn_emit_line(e, "            const int64_t tx = x + PW - kx * DW;");
    kn_emit_line(e, "            if (tx < 0 || tx %% SW != 0 || tx / SW >= OW) continue;");
    kn_emit_line(e, "            acc += dY[((s * OC + oc) * OH + ty / SH) * OW + tx / SW] * W[((oc * CG + ci) * KH + ky) * KW + kx];");
    kn_emit_line(e, "        }");
    kn_emit_line(e, "    }");
    kn_emit_line(e, "}");
    kn_emit_line(e, "dX[i] = acc;");
    kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

/* dW[oc,ci,ky,kx]: a sum over the batch and the output positions. */
static kn_status grad_weight_emit_cuda(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    conv_geom q;
    if (grad_weight_geom(e->diag, g, n, &q) != KN_OK) return KN_ERR;
    char count[64], samples[64];
    snprintf(count, sizeof count, "%lld", (long long)(q.oc * (q.c / q.groups) * q.kh * q.kw));
    kn_ops_dims_expr(e, n->in[1], 0, 1, samples, sizeof samples);
    kn_emit_cuda_kernel(e, count);
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_in(e, "X", n->in[1]);
    kn_emit_bind_out(e, "dW", n->out[0]);
    conv_emit_cuda_geom(e, &q);
    kn_emit_for_open(e, "i", count);
    kn_emit_line(e, "const int64_t kx = i %% KW, ky = (i / KW) %% KH, ci = (i / (KW * KH)) %% CG, oc = i / (KW * KH * CG);");
    kn_emit_line(e, "const int64_t c = oc / OCG * CG + ci;");
    kn_emit_line(e, "float acc = 0.0f;");
    char outer[160];
    snprintf(outer, sizeof outer, "for (int64_t s = 0; s < (int64_t)%s; s++)", samples);
    conv_emit_cuda_taps(e, outer, "oy", "OH", "ox", "OW",
                        "dY[((s * OC + oc) * OH + oy) * OW + ox] * X[((s * C + c) * H + iy) * W_ + ix]");
    kn_emit_line(e, "dW[i] = acc;");
    kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static const kn_arg_spec grad_weight_args[] = {
    {"kernel", KN_ATTR_INTS, false, 0, 0, NULL},
    {"stride", KN_ATTR_INTS, false, 0, 0, NULL},
    {"padding", KN_ATTR_INTS, false, 0, 0, NULL},
    {"dilation", KN_ATTR_INTS, false, 0, 0, NULL},
    {"groups", KN_ATTR_INT, false, 1, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_conv2d = {
    .name = "conv2d", .min_inputs = 1, .max_inputs = 1, .args = conv_args,
    .add_params = conv_add_params, .infer = conv_infer, .emit_c = conv_emit, .emit_cuda = conv_emit_cuda,
    .grad = conv_grad, .macs = conv_macs, .nhwc_layouts = conv_nhwc_layouts,
};
const kn_op_def kn_op_def_conv2d_grad_input = {
    .name = "conv2d_grad_input", .min_inputs = 2, .max_inputs = 2, .args = grad_input_args,
    .add_params = conv_scratch_only, .infer = grad_input_infer, .emit_c = grad_input_emit, .emit_cuda = grad_input_emit_cuda,
};
const kn_op_def kn_op_def_conv2d_grad_weight = {
    .name = "conv2d_grad_weight", .min_inputs = 2, .max_inputs = 2, .args = grad_weight_args,
    .add_params = conv_scratch_only, .infer = grad_weight_infer, .emit_c = grad_weight_emit, .emit_cuda = grad_weight_emit_cuda,
};

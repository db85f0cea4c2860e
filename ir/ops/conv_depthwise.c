/* conv_depthwise.c — the C kernels of depthwise conv2d (one filter per
 * channel: MobileNet's 3x3 layers), chosen by conv_emit_depthwise_any:
 *   channels-last (NHWC, set by passes/layout_nhwc.c): a vector of
 *     channels per tap;
 *   7x7-sized stride-1 planes: one flat loop with a compile-time tap mask;
 *   stride-2 planes: four parity sub-planes, then one flat loop;
 *   planes that fit a per-thread padded copy: no bounds tests at all;
 *   anything else: bounds-tested border columns, unrolled interior.
 * Every kernel computes each output in the same order (bias, taps in
 * row-major order, residual, clamp), so the choice never changes a result.
 * Part of the conv2d op (conv.c holds its shape rule, gradient and the
 * GEMM-based kernels).
 */
#include "conv_internal.h"

#include <stdlib.h>

/* Opens the parallel loop over (sample, channel) planes j of a depthwise
 * conv: Xc, Wc, Yc (and Rc) point at the plane, b is its bias. */
static void conv_emit_dw_channel_loop(kn_emit *e, const conv_geom *q, const conv_epilogue *ep, const char *samples)
{
    long long hw = q->h * q->w, ohw = q->oh * q->ow;
    conv_emit_parallel_for(e, samples, q->c * ohw * q->kh * q->kw);
    kn_emit_line(e, "for (size_t j = 0; j < %s * %lld; j++) {", samples, (long long)q->c);
    e->indent++;
    kn_emit_line(e, "const size_t ch = j %% %lld;", (long long)q->c);
    kn_emit_line(e, "const float *restrict Xc = X + j * %lld, *restrict Wc = W + ch * %lld;", hw,
                 (long long)(q->kh * q->kw));
    kn_emit_line(e, "float *restrict Yc = Y + j * %lld;", ohw);
    if (ep->residual) kn_emit_line(e, "const float *restrict Rc = R + j * %lld;", ohw);
    kn_emit_line(e, "const float b = %s;", ep->bias ? "B[ch]" : "0.0f");
}

/* Depthwise (one filter per channel, MobileNet's 3x3 layers): direct loops.
 * im2col + a GEMM per channel would run C tiny GEMMs of one row each.  Each
 * output row reads kh input rows (a zero row stands in for the padding
 * rows); the columns whose taps all fall inside the image form one loop
 * with the taps unrolled and no bounds test, which vectorises, and only
 * the few border columns test bounds.  The epilogue is applied before the
 * store, so each output is written once. */
static void conv_emit_depthwise(kn_emit *e, const conv_geom *q, const conv_epilogue *ep, const char *samples)
{
    /* Interior columns [lo, hi): ow*sw - pw >= 0 and ow*sw + (kw-1)*dw - pw <= w-1. */
    long long lo = (q->pw + q->sw - 1) / q->sw, last = q->w - 1 - (q->kw - 1) * q->dw + q->pw;
    long long hi = last < 0 ? 0 : last / q->sw + 1;
    if (hi > q->ow) hi = q->ow;
    if (lo > hi) lo = hi;
    kn_emit_line(e, "(void)COL; /* depthwise: direct, no im2col */");
    kn_emit_line(e, "static const float zero_row[%lld];", (long long)q->w);
    conv_emit_dw_channel_loop(e, q, ep, samples);
    kn_emit_line(e, "for (size_t oh = 0; oh < %lld; oh++) {", (long long)q->oh);
    e->indent++;
    kn_emit_line(e, "const float *restrict x[%lld];", (long long)q->kh);
    kn_emit_line(e, "for (size_t ki = 0; ki < %lld; ki++) {", (long long)q->kh);
    kn_emit_line(e, "    const ptrdiff_t ih = (ptrdiff_t)(oh * %lld + ki * %lld) - %lld;", (long long)q->sh,
                 (long long)q->dh, (long long)q->ph);
    kn_emit_line(e, "    x[ki] = ih >= 0 && ih < %lld ? Xc + ih * %lld : zero_row;", (long long)q->h, (long long)q->w);
    kn_emit_line(e, "}");
    kn_emit_line(e, "float *restrict Yr = Yc + oh * %lld;", (long long)q->ow);
    if (ep->residual) kn_emit_line(e, "const float *restrict Rr = Rc + oh * %lld;", (long long)q->ow);
    /* Border columns: bounds-tested taps. */
    kn_emit_line(e, "for (ptrdiff_t ow = 0; ow < %lld; ow++) {", (long long)q->ow);
    e->indent++;
    if (hi > lo) kn_emit_line(e, "if (ow == %lld) ow = %lld;", lo, hi);
    kn_emit_line(e, "if (ow >= %lld) break;", (long long)q->ow);
    kn_emit_line(e, "float v = b;");
    kn_emit_line(e, "for (size_t ki = 0; ki < %lld; ki++)", (long long)q->kh);
    kn_emit_line(e, "    for (size_t kj = 0; kj < %lld; kj++) {", (long long)q->kw);
    kn_emit_line(e, "        const ptrdiff_t iw = ow * %lld + (ptrdiff_t)(kj * %lld) - %lld;", (long long)q->sw,
                 (long long)q->dw, (long long)q->pw);
    kn_emit_line(e, "        if (iw >= 0 && iw < %lld) v += Wc[ki * %lld + kj] * x[ki][iw];", (long long)q->w,
                 (long long)q->kw);
    kn_emit_line(e, "    }");
    if (ep->residual) kn_emit_line(e, "v += Rr[ow];");
    conv_emit_store(e, ep, "Yr[ow]");
    e->indent--;
    kn_emit_line(e, "}");
    if (hi > lo) {
        /* Interior: taps unrolled (weights hoisted by the compiler). */
        kn_emit_line(e, "for (ptrdiff_t ow = %lld; ow < %lld; ow++) {", lo, hi);
        e->indent++;
        kn_emit_line(e, "float v = b;");
        for (int64_t ki = 0; ki < q->kh; ki++)
            for (int64_t kj = 0; kj < q->kw; kj++)
                kn_emit_line(e, "v += Wc[%lld] * x[%lld][ow * %lld + %lld];", (long long)(ki * q->kw + kj),
                             (long long)ki, (long long)q->sw, (long long)(kj * q->dw - q->pw));
        if (ep->residual) kn_emit_line(e, "v += Rr[ow];");
        conv_emit_store(e, ep, "Yr[ow]");
        e->indent--;
        kn_emit_line(e, "}");
    }
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
}

/* Small stride-1 "same" planes (7x7: at most KN_DW_MASKED_MAX pixels;
 * measured on MobileNetV2: 7x7 planes 1.9x faster than the padded kernel,
 * 14x14 ones 10% slower, so those stay padded): each plane is one flat loop over all H*W outputs with every tap
 * at a fixed offset, p + (ki-ph)*W + (kj-pw), and the taps that fall
 * outside the image at p (from its row and column) add nothing: selected
 * rather than multiplied by 0, so an Inf next door cannot become a NaN.  The plane is first copied between zero guards so the
 * offsets never leave the buffer.  Per channel that is one memcpy and one
 * branch-free vector loop: the padded kernel below spent more on setting
 * up its padded copy and copying rows out than on the taps. */
#define KN_DW_MASKED_MAX 100

static bool conv_dw_masked(const conv_geom *q)
{
    return q->sh == 1 && q->sw == 1 && q->dh == 1 && q->dw == 1 && q->oh == q->h && q->ow == q->w &&
           q->h * q->w <= KN_DW_MASKED_MAX;
}

static void conv_emit_depthwise_masked(kn_emit *e, const conv_geom *q, const conv_epilogue *ep, const char *samples)
{
    long long hw = q->h * q->w, guard = q->ph * q->w + q->pw;
    if ((q->kh - 1 - q->ph) * q->w + (q->kw - 1 - q->pw) > guard) guard = (q->kh - 1 - q->ph) * q->w + (q->kw - 1 - q->pw);
    kn_emit_line(e, "(void)COL; /* depthwise: flat over the plane with a tap mask */");
    /* inside[k][p]: all ones where tap k of output p falls inside the
     * image, else 0 (ANDed with the product's bits: 0, even for an Inf). */
    kn_emit_line(e, "static const uint32_t inside[%lld][%lld] = {", (long long)(q->kh * q->kw), hw);
    for (int64_t k = 0; k < q->kh * q->kw; k++) {
        kn_strbuf row;
        kn_sb_init(&row);
        kn_sb_puts(&row, "    {");
        for (int64_t p = 0; p < hw; p++) {
            int64_t ih = p / q->w + k / q->kw - q->ph, iw = p % q->w + k % q->kw - q->pw;
            kn_sb_puts(&row, ih >= 0 && ih < q->h && iw >= 0 && iw < q->w ? "~0u," : "0,");
        }
        kn_sb_puts(&row, "},");
        kn_emit_line(e, "%s", row.s);
        kn_sb_free(&row);
    }
    kn_emit_line(e, "};");
    conv_emit_dw_channel_loop(e, q, ep, samples);
    kn_emit_line(e, "float P[%lld];", hw + 2 * guard);
    kn_emit_line(e, "memset(P, 0, %lld * sizeof(float));", guard);
    kn_emit_line(e, "memset(P + %lld, 0, %lld * sizeof(float));", guard + hw, guard);
    kn_emit_line(e, "memcpy(P + %lld, Xc, %lld * sizeof(float));", guard, hw);
    kn_emit_line(e, "const float *restrict Pc = P + %lld;", guard);
    kn_emit_line(e, "for (size_t p = 0; p < %lld; p++) {", hw);
    e->indent++;
    kn_emit_line(e, "float v = b;");
    for (int64_t k = 0; k < q->kh * q->kw; k++) {
        int64_t ki = k / q->kw, kj = k % q->kw;
        kn_emit_line(e, "v += kn_rt_mask_f32(Wc[%lld] * Pc[(ptrdiff_t)p + %lld], inside[%lld][p]);", (long long)k,
                     (long long)((ki - q->ph) * q->w + kj - q->pw), (long long)k);
    }
    if (ep->residual) kn_emit_line(e, "v += Rc[p];");
    conv_emit_store(e, ep, "Yc[p]");
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
}

/* Stride-1 planes narrower than this run as one flat loop (see below):
 * their rows are too short to vectorise well one by one. */
#define KN_DW_FLAT_MAX_W 32

static bool conv_dw_flat(const conv_geom *q) { return q->sh == 1 && q->sw == 1 && q->ow < KN_DW_FLAT_MAX_W; }

/* T[p] = b + sum over taps k of Wc[k] * SRC[p + off[k]], p < run: the flat
 * tap loop of the padded and the parity sub-plane kernels (T holds t_len
 * floats; the caller copies the wanted columns out of it). */
static void conv_emit_flat_taps(kn_emit *e, const conv_geom *q, long long run, long long t_len, const char *src,
                                const long long *off)
{
    kn_emit_line(e, "float T[%lld];", t_len);
    kn_emit_line(e, "for (size_t p = 0; p < %lld; p++) {", run);
    e->indent++;
    kn_emit_line(e, "float v = b;");
    for (int64_t k = 0; k < q->kh * q->kw; k++)
        kn_emit_line(e, "v += Wc[%lld] * %s[p + %lld];", (long long)k, src, off[k]);
    kn_emit_line(e, "T[p] = v;");
    e->indent--;
    kn_emit_line(e, "}");
}

/* Scratch floats per thread the padded depthwise kernel needs, or 0 when
 * it does not apply (it keeps the padded plane and, for stride 1, a flat
 * output on the stack: 256 KiB at most). */
static long long conv_dw_padded_floats(const conv_geom *q)
{
    long long ph = q->h + q->ph + q->ph_end, pw = q->w + q->pw + q->pw_end;
    long long need = ph * pw + (conv_dw_flat(q) ? q->oh * pw : 0);
    return need <= 65536 ? need : 0;
}

/* Depthwise over a zero-padded copy of each channel: no bounds tests and
 * no border columns.  Small stride-1 planes compute the output as one
 * flat run over the padded width (the PW-OW extra columns per row are
 * discarded), so 7x7 and 14x14 planes still give the vectoriser long
 * loops; the rest loop over output rows.  The epilogue runs before the
 * single store of each output. */
static void conv_emit_depthwise_padded(kn_emit *e, const conv_geom *q, const conv_epilogue *ep, const char *samples)
{
    long long ph = q->h + q->ph + q->ph_end, pw = q->w + q->pw + q->pw_end;
    bool flat = conv_dw_flat(q);
    kn_emit_line(e, "(void)COL; /* depthwise: direct over a padded copy, no im2col */");
    conv_emit_dw_channel_loop(e, q, ep, samples);
    kn_emit_line(e, "float P[%lld];", ph * pw);
    if (q->ph) kn_emit_line(e, "memset(P, 0, %lld * sizeof(float));", q->ph * pw);
    if (q->ph_end) kn_emit_line(e, "memset(P + %lld, 0, %lld * sizeof(float));", (q->ph + q->h) * pw, q->ph_end * pw);
    kn_emit_line(e, "for (size_t ih = 0; ih < %lld; ih++) {", (long long)q->h);
    e->indent++;
    kn_emit_line(e, "float *Pr = P + (ih + %lld) * %lld;", (long long)q->ph, pw);
    if (q->pw) kn_emit_line(e, "for (size_t i = 0; i < %lld; i++) Pr[i] = 0.0f;", (long long)q->pw);
    kn_emit_line(e, "memcpy(Pr + %lld, Xc + ih * %lld, %lld * sizeof(float));", (long long)q->pw, (long long)q->w,
                 (long long)q->w);
    if (q->pw_end)
        kn_emit_line(e, "for (size_t i = %lld; i < %lld; i++) Pr[i] = 0.0f;", (long long)(q->pw + q->w), pw);
    e->indent--;
    kn_emit_line(e, "}");
    if (flat) {
        long long *off = kn_xmalloc(sizeof *off * (size_t)(q->kh * q->kw));
        for (int64_t k = 0; k < q->kh * q->kw; k++) off[k] = (k / q->kw) * q->dh * pw + (k % q->kw) * q->dw;
        conv_emit_flat_taps(e, q, (q->oh - 1) * pw + q->ow, q->oh * pw, "P", off);
        free(off);
    }
    kn_emit_line(e, "for (size_t oh = 0; oh < %lld; oh++) {", (long long)q->oh);
    e->indent++;
    if (flat) kn_emit_line(e, "const float *restrict Tr = T + oh * %lld;", pw);
    else
        for (int64_t ki = 0; ki < q->kh; ki++)
            kn_emit_line(e, "const float *restrict P%lld = P + (oh * %lld + %lld) * %lld;", (long long)ki,
                         (long long)q->sh, (long long)(ki * q->dh), pw);
    kn_emit_line(e, "for (size_t ow = 0; ow < %lld; ow++) {", (long long)q->ow);
    e->indent++;
    if (flat) kn_emit_line(e, "float v = Tr[ow];");
    else {
        kn_emit_line(e, "float v = b;");
        for (int64_t ki = 0; ki < q->kh; ki++)
            for (int64_t kj = 0; kj < q->kw; kj++)
                kn_emit_line(e, "v += Wc[%lld] * P%lld[ow * %lld + %lld];", (long long)(ki * q->kw + kj),
                             (long long)ki, (long long)q->sw, (long long)(kj * q->dw));
    }
    if (ep->residual) kn_emit_line(e, "v += Rc[oh * %lld + ow];", (long long)q->ow);
    char dst[64];
    snprintf(dst, sizeof dst, "Yc[oh * %lld + ow]", (long long)q->ow);
    conv_emit_store(e, ep, dst);
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
}

/* Stride-2 planes: the padded plane split into its four (row parity,
 * column parity) sub-planes, each SH x SW with SW = ceil(padded width / 2).
 * Tap (ki, kj) of output (oh, ow) is then sub-plane (ki & 1, kj & 1) at row
 * oh + ki/2, column ow + kj/2: at q + (ki/2) * SW + kj/2 for q = oh * SW +
 * ow, a fixed offset per tap.  So the taps run as one flat, contiguous
 * loop over q (SW - OW discarded columns per row) instead of every-other-
 * float reads, which the 14x14 -> 7x7 layer of MobileNetV2 spent 3x
 * ONNX Runtime's time on.  Each sub-plane has zero slack after it for the
 * discarded columns' reads. */
static bool conv_dw_split(const conv_geom *q)
{
    return q->sh == 2 && q->sw == 2 && q->dh == 1 && q->dw == 1;
}

typedef struct {
    long long sh, sw, plane; /* sub-plane rows, columns, floats with slack */
} conv_dw_split_geom;

static conv_dw_split_geom conv_dw_split_geometry(const conv_geom *q)
{
    long long ph = q->h + q->ph + q->ph_end, pw = q->w + q->pw + q->pw_end;
    conv_dw_split_geom s = {(ph + 1) / 2, (pw + 1) / 2, 0};
    long long reach = (q->oh - 1) * s.sw + q->ow + ((q->kh - 1) / 2) * s.sw + (q->kw - 1) / 2;
    s.plane = reach > s.sh * s.sw ? reach : s.sh * s.sw;
    return s;
}

static long long conv_dw_split_floats(const conv_geom *q)
{
    conv_dw_split_geom s = conv_dw_split_geometry(q);
    long long need = 4 * s.plane + q->oh * s.sw;
    return need <= 65536 ? need : 0;
}

static void conv_emit_depthwise_split(kn_emit *e, const conv_geom *q, const conv_epilogue *ep, const char *samples)
{
    conv_dw_split_geom g = conv_dw_split_geometry(q);
    kn_emit_line(e, "(void)COL; /* depthwise stride 2: four parity sub-planes, flat taps */");
    conv_emit_dw_channel_loop(e, q, ep, samples);
    kn_emit_line(e, "float S[%lld];", 4 * g.plane);
    kn_emit_line(e, "memset(S, 0, sizeof S);");
    kn_emit_line(e, "for (size_t ih = 0; ih < %lld; ih++) {", (long long)q->h);
    e->indent++;
    kn_emit_line(e, "const size_t pr = ih + %lld;", (long long)q->ph);
    kn_emit_line(e, "const float *restrict xr = Xc + ih * %lld;", (long long)q->w);
    for (int64_t b = 0; b < 2; b++) {
        /* Input columns iw0, iw0 + 2, ... land in column parity b. */
        int64_t iw0 = (b + q->pw) & 1, c0 = (iw0 + q->pw) >> 1, cnt = (q->w - iw0 + 1) / 2;
        if (cnt <= 0) continue;
        kn_emit_line(e, "float *restrict s%lld = S + ((pr & 1) * 2 + %lld) * %lld + (pr >> 1) * %lld + %lld;",
                     (long long)b, (long long)b, g.plane, g.sw, (long long)c0);
        kn_emit_line(e, "for (size_t i = 0; i < %lld; i++) s%lld[i] = xr[2 * i + %lld];", (long long)cnt, (long long)b,
                     (long long)iw0);
    }
    e->indent--;
    kn_emit_line(e, "}");
    long long *off = kn_xmalloc(sizeof *off * (size_t)(q->kh * q->kw));
    for (int64_t k = 0; k < q->kh * q->kw; k++) {
        int64_t ki = k / q->kw, kj = k % q->kw;
        off[k] = ((ki & 1) * 2 + (kj & 1)) * g.plane + (ki / 2) * g.sw + kj / 2;
    }
    conv_emit_flat_taps(e, q, (q->oh - 1) * g.sw + q->ow, q->oh * g.sw, "S", off);
    free(off);
    kn_emit_line(e, "for (size_t oh = 0; oh < %lld; oh++)", (long long)q->oh);
    kn_emit_line(e, "    for (size_t ow = 0; ow < %lld; ow++) {", (long long)q->ow);
    e->indent += 2;
    kn_emit_line(e, "float v = T[oh * %lld + ow];", g.sw);
    if (ep->residual) kn_emit_line(e, "v += Rc[oh * %lld + ow];", (long long)q->ow);
    char dst[64];
    snprintf(dst, sizeof dst, "Yc[oh * %lld + ow]", (long long)q->ow);
    conv_emit_store(e, ep, dst);
    e->indent -= 2;
    kn_emit_line(e, "    }");
    e->indent--;
    kn_emit_line(e, "}");
}

/* Channels per register block of the NHWC depthwise loop: the accumulators
 * of one block stay in registers. */
static long long conv_dw_nhwc_block(long long c)
{
    static const long long blocks[] = {64, 48, 32, 16};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++)
        if (c % blocks[i] == 0) return blocks[i];
    return 16;
}

/* Depthwise conv, NHWC in and out: each output pixel's channels in blocks
 * of CB accumulators, taps outside the image skipped.  The filter is
 * transposed once per call to [kh*kw][C] so a tap's weights are contiguous
 * like its inputs.  Same order of operations per output as the NCHW
 * kernels (bias, taps in row-major order, residual, clamp). */
static void conv_emit_depthwise_nhwc(kn_emit *e, const conv_geom *q, const conv_epilogue *ep, const char *samples)
{
    long long c = q->c, taps = q->kh * q->kw, cb = conv_dw_nhwc_block(c);
    bool tail = c % cb != 0;
    kn_emit_line(e, "(void)COL; /* depthwise, channels-last: direct */");
    kn_emit_line(e, "float WT[%lld];", taps * c);
    kn_emit_line(e, "for (size_t ch = 0; ch < %lld; ch++)", c);
    kn_emit_line(e, "    for (size_t k = 0; k < %lld; k++) WT[k * %lld + ch] = W[ch * %lld + k];", taps, c, taps);
    conv_emit_parallel_for(e, samples, c * q->oh * q->ow * taps);
    kn_emit_line(e, "for (size_t j = 0; j < %s * %lld; j++) {", samples, (long long)q->oh);
    e->indent++;
    kn_emit_line(e, "const size_t s = j / %lld, oh = j %% %lld;", (long long)q->oh, (long long)q->oh);
    kn_emit_line(e, "const float *restrict x[%lld];", (long long)q->kh);
    kn_emit_line(e, "for (size_t ki = 0; ki < %lld; ki++) {", (long long)q->kh);
    kn_emit_line(e, "    const ptrdiff_t ih = (ptrdiff_t)(oh * %lld + ki * %lld) - %lld;", (long long)q->sh,
                 (long long)q->dh, (long long)q->ph);
    kn_emit_line(e, "    x[ki] = ih >= 0 && ih < %lld ? X + (s * %lld + (size_t)ih) * %lld : NULL;", (long long)q->h,
                 (long long)q->h, q->w * c);
    kn_emit_line(e, "}");
    kn_emit_line(e, "float *restrict Yr = Y + j * %lld;", q->ow * c);
    if (ep->residual) kn_emit_line(e, "const float *restrict Rr = R + j * %lld;", q->ow * c);
    kn_emit_line(e, "for (size_t ow = 0; ow < %lld; ow++) {", (long long)q->ow);
    e->indent++;
    kn_emit_line(e, "for (size_t c0 = 0; c0 < %lld; c0 += %lld) {", c, cb);
    e->indent++;
    if (tail) kn_emit_line(e, "const size_t cn = %lld - c0 < %lld ? %lld - c0 : %lld;", c, cb, c, cb);
    const char *cn = tail ? "cn" : NULL;
    char lim[32];
    snprintf(lim, sizeof lim, "%lld", cb);
    if (!cn) cn = lim;
    kn_emit_line(e, "float acc[%lld];", cb);
    kn_emit_line(e, "for (size_t i = 0; i < %s; i++) acc[i] = %s;", cn, ep->bias ? "B[c0 + i]" : "0.0f");
    kn_emit_line(e, "for (size_t ki = 0; ki < %lld; ki++) {", (long long)q->kh);
    e->indent++;
    kn_emit_line(e, "if (!x[ki]) continue;");
    kn_emit_line(e, "for (size_t kj = 0; kj < %lld; kj++) {", (long long)q->kw);
    e->indent++;
    kn_emit_line(e, "const ptrdiff_t iw = (ptrdiff_t)(ow * %lld + kj * %lld) - %lld;", (long long)q->sw,
                 (long long)q->dw, (long long)q->pw);
    kn_emit_line(e, "if (iw < 0 || iw >= %lld) continue;", (long long)q->w);
    kn_emit_line(e, "const float *restrict xp = x[ki] + (size_t)iw * %lld + c0;", c);
    kn_emit_line(e, "const float *restrict wp = WT + (ki * %lld + kj) * %lld + c0;", (long long)q->kw, c);
    kn_emit_line(e, "for (size_t i = 0; i < %s; i++) acc[i] += wp[i] * xp[i];", cn);
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
    kn_emit_line(e, "for (size_t i = 0; i < %s; i++) {", cn);
    e->indent++;
    kn_emit_line(e, "float v = acc[i];");
    if (ep->residual) kn_emit_line(e, "v += Rr[ow * %lld + c0 + i];", c);
    char dst[64];
    snprintf(dst, sizeof dst, "Yr[ow * %lld + c0 + i]", c);
    conv_emit_store(e, ep, dst);
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
}

void conv_emit_depthwise_any(kn_emit *e, const conv_geom *q, const conv_epilogue *ep, const char *samples, bool nhwc)
{
    if (nhwc) conv_emit_depthwise_nhwc(e, q, ep, samples);
    else if (conv_dw_masked(q)) conv_emit_depthwise_masked(e, q, ep, samples);
    else if (conv_dw_split(q) && conv_dw_split_floats(q)) conv_emit_depthwise_split(e, q, ep, samples);
    else if (conv_dw_padded_floats(q)) conv_emit_depthwise_padded(e, q, ep, samples);
    else conv_emit_depthwise(e, q, ep, samples);
}

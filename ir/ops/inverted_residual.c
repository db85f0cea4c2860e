/* inverted_residual.c — MobileNetV2's block as one op: 1x1 expand + clamp,
 * depthwise + clamp, 1x1 project (+ residual, + clamp), in bands of rows.
 *
 * inverted_residual(x, [we, be,] wd, bd, wp, bp [, r]) -> y, col
 *   x f32[N, Cin, H, W]; we [Cexp, Cin, 1, 1] (with expand=1, else
 *   Cexp = Cin); wd [Cexp, 1, KH, KW]; wp [Cout, Cexp, 1, 1];
 *   y f32[N, Cout, OH, OW]; r (residual=1) has y's shape; col is a
 *   1-element placeholder (conv2d's scratch output slot).
 *   Attributes: expand, dw_stride (1 or 2), dw_pads (top, left, bottom,
 *   right), e_min/e_max, d_min/d_max, act_min/act_max (absent: unbounded),
 *   residual, and optionally band_rows (a cap on the rows per band).
 *
 * Only passes/fuse_block.c builds it, on CPU inference graphs.  Run as
 * three convs, the expanded tensor (6x the block's input) goes to memory
 * and back twice: 4.8 MB at MobileNetV2's 112x112 layer, ten times the
 * L2.  Here each thread takes a range of output rows and walks it in bands
 * whose expanded rows, depthwise output and GEMM tiles fit in about half
 * its L2 (kn_rt_scratch): expand only the rows the band's depthwise taps
 * read (rows the previous band already expanded are kept, not recomputed),
 * depthwise them, and project straight into y's rows.  Everything stays
 * NCHW, so both GEMMs are the wide "channels x pixels" kind oneDNN is
 * fastest at.  For stride 2 the expanded rows are stored de-interleaved
 * (even columns, then odd), so the depthwise taps read contiguous runs
 * instead of every other float.
 *
 * Each output is computed as the three convs compute it: GEMM sums, then
 * bias, then the clamp; the depthwise sums bias then taps in row-major
 * order; the projection adds bias then the residual.  No gradient: the
 * pass never runs on training graphs.
 */
#include "op_util.h"

#include <math.h>

/* Scratch per thread: half of a 2 MiB L2. */
#define KN_IR_SCRATCH_BYTES (1 << 20)

typedef struct {
    bool expand, residual;
    int64_t cin, cexp, cout, h, w, oh, ow, kh, kw, s, ph, pw;
    int64_t ob;   /* output rows per band */
    int64_t er;   /* expanded rows a band holds */
    int64_t half; /* stride 2: length of the even half of a de-interleaved row */
} ir_geom;

static int64_t ir_scratch_floats(const ir_geom *q, int64_t ob)
{
    int64_t er = (ob - 1) * q->s + q->kh;
    int64_t e = q->expand ? q->cexp * er * q->w : 0;
    int64_t shuffled = q->expand && q->s == 2 ? q->cin * er * q->w : 0;
    return e + shuffled + q->cexp * ob * q->ow;
}

static kn_status ir_geometry(kn_diag *d, const kn_graph *g, const kn_node *n, ir_geom *q)
{
    memset(q, 0, sizeof *q);
    q->expand = kn_node_attr_i(n, "expand", 0) != 0;
    q->residual = kn_node_attr_i(n, "residual", 0) != 0;
    int want = 1 + 2 * q->expand + 4 + q->residual;
    if (n->n_in != want) return kn_op_error(d, g, n, "internal: expects %d inputs, got %d", want, n->n_in);
    if (kn_ops_want_nchw(d, g, n, 0, "input") != KN_OK) return KN_ERR;
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape;
    int k = 1;
    const kn_shape *we = q->expand ? &kn_graph_value(g, n->in[k])->shape : NULL;
    k += 2 * q->expand;
    const kn_shape *wd = &kn_graph_value(g, n->in[k])->shape, *wp = &kn_graph_value(g, n->in[k + 2])->shape;
    q->cin = x->d[1], q->h = x->d[2], q->w = x->d[3];
    q->cexp = we ? we->d[0] : q->cin;
    if ((we && (we->rank != 4 || we->d[1] != q->cin || we->d[2] != 1 || we->d[3] != 1)) || wd->rank != 4 ||
        wd->d[0] != q->cexp || wd->d[1] != 1 || wp->rank != 4 || wp->d[1] != q->cexp || wp->d[2] != 1 ||
        wp->d[3] != 1)
        return kn_op_error(d, g, n, "internal: weight shapes do not chain (input %lld channels)", (long long)q->cin);
    q->cout = wp->d[0], q->kh = wd->d[2], q->kw = wd->d[3];
    q->s = kn_node_attr_i(n, "dw_stride", 1);
    const kn_attr *pads = kn_node_attr(n, "dw_pads");
    if (q->s < 1 || q->s > 2 || (q->s == 2 && !q->expand) || !pads || pads->kind != KN_ATTR_INTS || pads->n != 4)
        return kn_op_error(d, g, n, "internal: needs dw_stride 1 or 2 (2 only with expand) and four dw_pads");
    q->ph = pads->ints[0], q->pw = pads->ints[1];
    q->oh = (q->h + pads->ints[0] + pads->ints[2] - q->kh) / q->s + 1;
    q->ow = (q->w + pads->ints[1] + pads->ints[3] - q->kw) / q->s + 1;
    if (q->oh < 1 || q->ow < 1) return kn_op_error(d, g, n, "internal: empty output");
    q->ob = q->oh;
    while (q->ob > 1 && ir_scratch_floats(q, q->ob) * (int64_t)sizeof(float) > KN_IR_SCRATCH_BYTES) q->ob--;
    int64_t cap = kn_node_attr_i(n, "band_rows", 0); /* tests: force several bands on small images */
    if (cap > 0 && cap < q->ob) q->ob = cap;
    q->er = (q->ob - 1) * q->s + q->kh;
    q->half = (q->w + 1) / 2;
    return KN_OK;
}

static kn_status ir_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    ir_geom q;
    if (ir_geometry(d, g, n, &q) != KN_OK) return KN_ERR;
    if (n->n_out != 2) return kn_op_error(d, g, n, "internal: expects 2 outputs, got %d", n->n_out);
    kn_shape y = kn_graph_value(g, n->in[0])->shape;
    y.d[1] = q.cout, y.d[2] = q.oh, y.d[3] = q.ow;
    if (q.residual) {
        const kn_value *r = kn_graph_value(g, n->in[n->n_in - 1]);
        if (r->dtype != KN_F32 || !kn_shape_equal(&r->shape, &y))
            return kn_op_error(d, g, n, "internal: the residual '%s' must have the output's shape", r->name);
    }
    kn_shape col = kn_shape_make(1, (int64_t[]){1});
    kn_ops_set_out(g, n, 0, KN_F32, &y);
    kn_ops_set_out(g, n, 1, KN_F32, &col);
    return KN_OK;
}

/* Expands input rows [i0 + keep, i1) of sample Xs into E rows [keep, ...):
 * GEMM, then bias and clamp in place.  For stride 2 the input rows are
 * first copied de-interleaved into G: a 1x1 conv maps column j to column
 * j, so the expanded rows come out de-interleaved too, and the shuffle
 * touches Cin channels instead of 6x as many expanded ones. */
static void ir_emit_expand(kn_emit *e, const ir_geom *q, const kn_ops_clamp *act)
{
    long long w = q->w, erw = q->er * q->w, hw = q->h * q->w;
    kn_emit_line(e, "const ptrdiff_t keep = e_lo <= i0 && i0 < e_hi ? e_hi - i0 : 0;");
    kn_emit_line(e, "if (keep > 0 && i0 > e_lo)");
    kn_emit_line(e, "    for (size_t c = 0; c < %lld; c++)", (long long)q->cexp);
    kn_emit_line(e, "        memmove(E + c * %lld, E + c * %lld + (i0 - e_lo) * %lld, (size_t)keep * %lld * sizeof(float));",
                 erw, erw, w, w);
    kn_emit_line(e, "const ptrdiff_t fresh = i1 - i0 - keep;");
    kn_emit_line(e, "if (fresh > 0) {");
    e->indent++;
    if (q->s == 2) {
        kn_emit_line(e, "for (size_t c = 0; c < %lld; c++)", (long long)q->cin);
        kn_emit_line(e, "    for (ptrdiff_t r = 0; r < fresh; r++) {");
        kn_emit_line(e, "        const float *restrict xr = Xs + c * %lld + (i0 + keep + r) * %lld;", hw, w);
        kn_emit_line(e, "        float *restrict gr = G + (c * (size_t)fresh + r) * %lld;", w);
        kn_emit_line(e, "        for (size_t i = 0; i < %lld; i++) gr[i] = xr[2 * i];", (long long)q->half);
        kn_emit_line(e, "        for (size_t i = 0; i < %lld; i++) gr[%lld + i] = xr[2 * i + 1];", w / 2,
                     (long long)q->half);
        kn_emit_line(e, "    }");
        kn_emit_line(e, "kn_rt_sgemm(0, 0, %lld, (int)(fresh * %lld), %lld, 1.0f, WE, %lld, G, (int)(fresh * %lld), 0.0f, "
                        "E + keep * %lld, %lld);",
                     (long long)q->cexp, w, (long long)q->cin, (long long)q->cin, w, w, erw);
    } else {
        kn_emit_line(e, "kn_rt_sgemm(0, 0, %lld, (int)(fresh * %lld), %lld, 1.0f, WE, %lld, Xs + (i0 + keep) * %lld, %lld, "
                        "0.0f, E + keep * %lld, %lld);",
                     (long long)q->cexp, w, (long long)q->cin, (long long)q->cin, w, hw, w, erw);
    }
    kn_emit_line(e, "for (size_t c = 0; c < %lld; c++) {", (long long)q->cexp);
    e->indent++;
    kn_emit_line(e, "const float b = BE[c];");
    kn_emit_line(e, "float *restrict Er = E + c * %lld + keep * %lld;", erw, w);
    kn_emit_line(e, "for (size_t i = 0; i < (size_t)fresh * %lld; i++) {", w);
    kn_emit_line(e, "    const float v = Er[i] + b;");
    e->indent++;
    kn_ops_emit_clamp_store(e, act, "Er[i]");
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
    kn_emit_line(e, "e_lo = i0, e_hi = i1;");
}

/* Where tap kj of output column ow reads in a row: stride 1, column
 * ow + t; stride 2 (de-interleaved row), half p at ow + off. */
static void ir_tap(const ir_geom *q, int64_t kj, int64_t *p, int64_t *off)
{
    int64_t t = kj - q->pw;
    if (q->s == 1) {
        *p = 0, *off = t;
        return;
    }
    *p = t & 1;
    *off = (t - *p) / 2;
}

/* Output columns [lo, hi) whose taps all fall inside the row. */
static void ir_interior(const ir_geom *q, int64_t *lo, int64_t *hi)
{
    *lo = 0, *hi = q->ow;
    for (int64_t kj = 0; kj < q->kw; kj++) {
        int64_t p, off;
        ir_tap(q, kj, &p, &off);
        int64_t len = q->s == 1 ? q->w : p ? q->w / 2 : q->half;
        if (-off > *lo) *lo = -off;
        if (len - off < *hi) *hi = len - off;
    }
    if (*hi < *lo) *hi = *lo;
    if (*lo > q->ow) *lo = *hi = q->ow;
}

/* Stride 1 with "same" width (OW == W) over expanded rows: the output
 * rows whose taps all fall inside the image, [f0, f1), are one flat run
 * over the band (rows * W outputs, so the vector loop is long, not 56 or
 * 28 wide).  At the first and last columns of a row the run's taps wrap
 * into the neighbouring row; those columns are recomputed with bounds
 * tests by the row loop after it.  The reads past either end stay inside
 * the scratch buffer (KN_IR_SLACK floats around E). */
#define KN_IR_SLACK 16

static bool ir_flat(const ir_geom *q) { return q->expand && q->s == 1 && q->ow == q->w; }

static void ir_emit_depthwise_flat(kn_emit *e, const ir_geom *q, const kn_ops_clamp *act)
{
    long long below = q->kh - 1 - q->ph;
    kn_emit_line(e, "const size_t f0 = o0 > %lld ? o0 : %lld, f1 = o1 < %lld ? o1 : %lld;", (long long)q->ph,
                 (long long)q->ph, (long long)(q->oh - below), (long long)(q->oh - below));
    kn_emit_line(e, "if (f0 < f1) {");
    e->indent++;
    for (int64_t ki = 0; ki < q->kh; ki++)
        kn_emit_line(e, "const float *restrict t%lld = E + c * %lld + ((ptrdiff_t)f0 + %lld - e_lo) * %lld - %lld;",
                     (long long)ki, (long long)(q->er * q->w), (long long)(ki - q->ph), (long long)q->w,
                     (long long)q->pw);
    kn_emit_line(e, "float *restrict Df = D + c * nd + (f0 - o0) * %lld;", (long long)q->ow);
    kn_emit_line(e, "for (size_t p = 0; p < (f1 - f0) * %lld; p++) {", (long long)q->w);
    e->indent++;
    kn_emit_line(e, "float v = b;");
    for (int64_t ki = 0; ki < q->kh; ki++)
        for (int64_t kj = 0; kj < q->kw; kj++)
            kn_emit_line(e, "v += Wc[%lld] * t%lld[p + %lld];", (long long)(ki * q->kw + kj), (long long)ki,
                         (long long)kj);
    kn_ops_emit_clamp_store(e, act, "Df[p]");
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
}

/* The border columns of output row Dr, [0, lo) and [hi, OW): each one
 * straight-line, with only the taps that fall inside the row (known
 * here).  A loop testing every tap's bounds at run time, once per row
 * and channel, took a quarter of the fused blocks' own time. */
#define KN_IR_MAX_BORDER 8

static void ir_emit_border_column(kn_emit *e, const ir_geom *q, const kn_ops_clamp *act, int64_t ow)
{
    kn_emit_line(e, "{");
    e->indent++;
    kn_emit_line(e, "float v = b;");
    for (int64_t ki = 0; ki < q->kh; ki++)
        for (int64_t kj = 0; kj < q->kw; kj++) {
            int64_t col = ow * q->s + kj - q->pw, p, off;
            if (col < 0 || col >= q->w) continue;
            ir_tap(q, kj, &p, &off);
            kn_emit_line(e, "v += Wc[%lld] * x%lld[%lld];", (long long)(ki * q->kw + kj), (long long)ki,
                         (long long)(p * q->half + ow + off));
        }
    char dst[48];
    snprintf(dst, sizeof dst, "Dr[%lld]", (long long)ow);
    kn_ops_emit_clamp_store(e, act, dst);
    e->indent--;
    kn_emit_line(e, "}");
}

static void ir_emit_border_columns(kn_emit *e, const ir_geom *q, const kn_ops_clamp *act, int64_t lo, int64_t hi)
{
    if (lo + (q->ow - hi) <= KN_IR_MAX_BORDER) {
        for (int64_t ow = lo > 0 ? 0 : hi; ow < q->ow; ow = ow + 1 == lo ? hi : ow + 1)
            ir_emit_border_column(e, q, act, ow);
        return;
    }
    /* Many border columns (tiny rows, wide kernels): one loop, taps
     * bounds-tested on the original column index. */
    kn_emit_line(e, "for (ptrdiff_t ow = 0; ow < %lld; ow++) {", (long long)q->ow);
    e->indent++;
    if (hi > lo) kn_emit_line(e, "if (ow == %lld) ow = %lld;", (long long)lo, (long long)hi);
    kn_emit_line(e, "if (ow >= %lld) break;", (long long)q->ow);
    kn_emit_line(e, "float v = b;");
    for (int64_t ki = 0; ki < q->kh; ki++)
        for (int64_t kj = 0; kj < q->kw; kj++) {
            int64_t p, off;
            ir_tap(q, kj, &p, &off);
            kn_emit_line(e, "if (ow * %lld + %lld >= 0 && ow * %lld + %lld < %lld) v += Wc[%lld] * x%lld[%lld + ow + %lld];",
                         (long long)q->s, (long long)(kj - q->pw), (long long)q->s, (long long)(kj - q->pw),
                         (long long)q->w, (long long)(ki * q->kw + kj), (long long)ki, (long long)(p * q->half),
                         (long long)off);
        }
    kn_ops_emit_clamp_store(e, act, "Dr[ow]");
    e->indent--;
    kn_emit_line(e, "}");
}

/* Depthwise of output rows [o0, o1) into D (Cexp x nd). */
static void ir_emit_depthwise(kn_emit *e, const ir_geom *q, const kn_ops_clamp *act)
{
    long long taps = q->kh * q->kw;
    kn_emit_line(e, "for (size_t c = 0; c < %lld; c++) {", (long long)q->cexp);
    e->indent++;
    kn_emit_line(e, "const float *restrict Wc = WD + c * %lld;", taps);
    kn_emit_line(e, "const float b = BD[c];");
    bool flat = ir_flat(q);
    if (flat) ir_emit_depthwise_flat(e, q, act);
    kn_emit_line(e, "for (size_t oh = o0; oh < o1; oh++) {");
    e->indent++;
    /* One named restrict pointer per kernel row: through an array of
     * pointers GCC would not vectorise the tap loop. */
    for (int64_t ki = 0; ki < q->kh; ki++) {
        kn_emit_line(e, "const ptrdiff_t ih%lld = (ptrdiff_t)(oh * %lld + %lld) - %lld;", (long long)ki, (long long)q->s,
                     (long long)ki, (long long)q->ph);
        if (q->expand)
            kn_emit_line(e, "const float *restrict x%lld = ih%lld >= 0 && ih%lld < %lld ? E + c * %lld + (ih%lld - e_lo) * %lld "
                            ": zero_row;",
                         (long long)ki, (long long)ki, (long long)ki, (long long)q->h, (long long)(q->er * q->w),
                         (long long)ki, (long long)q->w);
        else
            kn_emit_line(e, "const float *restrict x%lld = ih%lld >= 0 && ih%lld < %lld ? Xs + (c * %lld + ih%lld) * %lld "
                            ": zero_row;",
                         (long long)ki, (long long)ki, (long long)ki, (long long)q->h, (long long)q->h, (long long)ki,
                         (long long)q->w);
    }
    kn_emit_line(e, "float *restrict Dr = D + c * nd + (oh - o0) * %lld;", (long long)q->ow);
    int64_t lo, hi;
    ir_interior(q, &lo, &hi);
    ir_emit_border_columns(e, q, act, lo, hi);
    if (hi > lo) {
        if (flat) kn_emit_line(e, "if (oh >= f0 && oh < f1) continue; /* interior done by the flat loop */");
        kn_emit_line(e, "for (ptrdiff_t ow = %lld; ow < %lld; ow++) {", (long long)lo, (long long)hi);
        e->indent++;
        kn_emit_line(e, "float v = b;");
        for (int64_t ki = 0; ki < q->kh; ki++)
            for (int64_t kj = 0; kj < q->kw; kj++) {
                int64_t p, off;
                ir_tap(q, kj, &p, &off);
                kn_emit_line(e, "v += Wc[%lld] * x%lld[%lld + ow + %lld];", (long long)(ki * q->kw + kj),
                             (long long)ki, (long long)(p * q->half), (long long)off);
            }
        kn_ops_emit_clamp_store(e, act, "Dr[ow]");
        e->indent--;
        kn_emit_line(e, "}");
    }
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
}

/* Projects D into y's rows [o0, o1): GEMM, bias, residual, clamp. */
static void ir_emit_project(kn_emit *e, const ir_geom *q, const kn_ops_clamp *act)
{
    long long ohw = q->oh * q->ow;
    kn_emit_line(e, "float *Ys = Y + s * %lld + o0 * %lld;", q->cout * ohw, (long long)q->ow);
    kn_emit_line(e, "kn_rt_sgemm(0, 0, %lld, (int)nd, %lld, 1.0f, WP, %lld, D, (int)nd, 0.0f, Ys, %lld);",
                 (long long)q->cout, (long long)q->cexp, (long long)q->cexp, ohw);
    if (q->residual) kn_emit_line(e, "const float *Rs = R + s * %lld + o0 * %lld;", q->cout * ohw, (long long)q->ow);
    char rows[32], y_row[64], r_row[64];
    snprintf(rows, sizeof rows, "%lld", (long long)q->cout);
    snprintf(y_row, sizeof y_row, "Ys + o * %lld", ohw);
    snprintf(r_row, sizeof r_row, "Rs + o * %lld", ohw);
    kn_ops_emit_row_epilogue(e, rows, "nd", y_row, "BP[o]", q->residual ? r_row : NULL, act);
}

static void ir_bind(kn_emit *e, const kn_node *n, const ir_geom *q)
{
    int k = 0;
    kn_emit_bind_in(e, "X", n->in[k++]);
    if (q->expand) {
        kn_emit_bind_in(e, "WE", n->in[k++]);
        kn_emit_bind_in(e, "BE", n->in[k++]);
    }
    kn_emit_bind_in(e, "WD", n->in[k++]);
    kn_emit_bind_in(e, "BD", n->in[k++]);
    kn_emit_bind_in(e, "WP", n->in[k++]);
    kn_emit_bind_in(e, "BP", n->in[k++]);
    if (q->residual) kn_emit_bind_in(e, "R", n->in[k++]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_bind_out(e, "COL", n->out[1]);
}

/* Work items are (sample, part): with fewer samples than threads, each
 * sample's rows are cut in parts so every thread has one; a thread walks
 * its part band by band, keeping the expanded rows bands share. */
static kn_status ir_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    ir_geom q;
    if (ir_geometry(e->diag, g, n, &q) != KN_OK) return KN_ERR;
    kn_ops_clamp ea, da, pa;
    kn_ops_read_clamp(n, "e_min", "e_max", &ea);
    kn_ops_read_clamp(n, "d_min", "d_max", &da);
    kn_ops_read_clamp(n, "act_min", "act_max", &pa);
    char samples[64];
    kn_ops_dims_expr(e, n->in[0], 0, 1, samples, sizeof samples);
    ir_bind(e, n, &q);
    long long macs = (q.expand ? q.cexp * q.cin * q.h * q.w : 0) + q.cexp * q.kh * q.kw * q.oh * q.ow +
                     q.cout * q.cexp * q.oh * q.ow;
    long long e_floats = q.expand ? q.cexp * q.er * q.w + KN_IR_SLACK : 0, g_floats = q.expand && q.s == 2 ? q.cin * q.er * q.w : 0;
    kn_emit_line(e, "(void)COL; /* fused block: scratch per thread (kn_rt_scratch) */");
    kn_emit_line(e, "static const float zero_row[%lld];", (long long)q.w);
    kn_emit_line(e, "const size_t threads = (size_t)kn_rt_get_threads(), samples = %s;", samples);
    kn_emit_line(e, "const size_t parts = samples >= threads ? 1 : (threads + samples - 1) / samples;");
    kn_emit_line(e, "#pragma omp parallel for schedule(dynamic, 1) if(samples * %lld >= KN_RT_PAR_MIN)", macs);
    kn_emit_line(e, "for (size_t j = 0; j < samples * parts; j++) {");
    e->indent++;
    kn_emit_line(e, "const size_t s = j / parts, part = j %% parts;");
    kn_emit_line(e, "const size_t ob = %lld * part / parts, oe = %lld * (part + 1) / parts;", (long long)q.oh,
                 (long long)q.oh);
    kn_emit_line(e, "float *E = kn_rt_scratch(%lld) + %d;", (long long)ir_scratch_floats(&q, q.ob) + 2 * KN_IR_SLACK,
                 KN_IR_SLACK);
    kn_emit_line(e, "float *G = E + %lld, *D = G + %lld;", e_floats, g_floats);
    kn_emit_line(e, "(void)G;");
    kn_emit_line(e, "const float *Xs = X + s * %lld;", (long long)(q.cin * q.h * q.w));
    kn_emit_line(e, "ptrdiff_t e_lo = 0, e_hi = 0;");
    kn_emit_line(e, "(void)e_lo, (void)e_hi;");
    kn_emit_line(e, "for (size_t o0 = ob; o0 < oe; o0 += %lld) {", (long long)q.ob);
    e->indent++;
    kn_emit_line(e, "const size_t o1 = o0 + %lld < oe ? o0 + %lld : oe, nd = (o1 - o0) * %lld;", (long long)q.ob,
                 (long long)q.ob, (long long)q.ow);
    if (q.expand) {
        kn_emit_line(e, "ptrdiff_t i0 = (ptrdiff_t)(o0 * %lld) - %lld, i1 = (ptrdiff_t)((o1 - 1) * %lld) - %lld + %lld;",
                     (long long)q.s, (long long)q.ph, (long long)q.s, (long long)q.ph, (long long)q.kh);
        kn_emit_line(e, "if (i0 < 0) i0 = 0;");
        kn_emit_line(e, "if (i1 > %lld) i1 = %lld;", (long long)q.h, (long long)q.h);
        ir_emit_expand(e, &q, &ea);
    }
    ir_emit_depthwise(e, &q, &da);
    ir_emit_project(e, &q, &pa);
    e->indent--;
    kn_emit_line(e, "}");
    e->indent--;
    kn_emit_line(e, "}");
    return KN_OK;
}

static int64_t ir_macs(const kn_graph *g, const kn_node *n)
{
    ir_geom q;
    kn_diag quiet;
    if (ir_geometry(&quiet, g, n, &q) != KN_OK) return 0;
    return (q.expand ? q.cexp * q.cin * q.h * q.w : 0) + q.cexp * q.kh * q.kw * q.oh * q.ow +
           q.cout * q.cexp * q.oh * q.ow;
}

const kn_op_def kn_op_def_inverted_residual = {
    .name = "inverted_residual", .min_inputs = 6, .max_inputs = 9,
    .infer = ir_infer, .emit_c = ir_emit, .macs = ir_macs, .internal = true,
};

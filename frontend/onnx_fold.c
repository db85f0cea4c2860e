/* onnx_fold.c — constant folding at import time.
 *
 * Exported PyTorch graphs compute shapes at run time (Shape -> Gather ->
 * Unsqueeze -> Concat -> Reshape); kiln's shapes are static, so these chains
 * are evaluated here on host constants and the runtime ops see plain
 * numbers.  Shape always folds (shapes are known); the other ops fold when
 * every input is a constant.  The batch size appears as KX_SYM_N and may be
 * moved around (Gather, Concat, Unsqueeze...) but not computed with.
 */
#include "onnx_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static kn_status bind_out(kx_importer *im, kx_const *c)
{
    kx_bind_const(im, im->node->output[0], c);
    return KN_OK;
}

static kx_const *const_copy(const kx_const *c)
{
    kx_const *r = kx_const_new(c->dtype, &c->shape);
    memcpy(r->data, c->data, (size_t)c->numel * kn_dtype_size(c->dtype));
    r->onnx_type = c->onnx_type;
    return r;
}

static kn_status fold_constant(kx_importer *im)
{
    const Onnx__AttributeProto *a;
    kn_shape scalar = {.rank = 0}, vec = {.rank = 1};
    kx_const *c = NULL;
    if ((a = kx_attr(im, "value")) && a->t) {
        if (kx_tensor_load(im, a->t, &c) != KN_OK) return KN_ERR;
    } else if ((a = kx_attr(im, "value_float")) && a->has_f) {
        c = kx_const_new(KN_F32, &scalar);
        ((float *)c->data)[0] = a->f;
    } else if ((a = kx_attr(im, "value_int")) && a->has_i) {
        c = kx_const_new(KN_I64, &scalar);
        ((int64_t *)c->data)[0] = a->i;
    } else if ((a = kx_attr(im, "value_floats"))) {
        vec.d[0] = (int64_t)a->n_floats;
        c = kx_const_new(KN_F32, &vec);
        for (size_t i = 0; i < a->n_floats; i++) ((float *)c->data)[i] = a->floats[i];
    } else if ((a = kx_attr(im, "value_ints"))) {
        vec.d[0] = (int64_t)a->n_ints;
        c = kx_const_new(KN_I64, &vec);
        for (size_t i = 0; i < a->n_ints; i++) ((int64_t *)c->data)[i] = a->ints[i];
    } else {
        return kx_fail(im, "needs a value, value_float(s) or value_int(s) attribute (sparse and string values are "
                       "not supported)");
    }
    return bind_out(im, c);
}

/* The shape of input 0, runtime or constant. */
static kn_status input_shape(kx_importer *im, kn_shape *s)
{
    kx_entry *e = im->node->n_input > 0 ? kx_lookup(im, im->node->input[0]) : NULL;
    if (!e) return kx_fail(im, "input 0 %s%s%s is not defined by an earlier node or the graph inputs",
                           im->node->n_input > 0 ? "'" : "", im->node->n_input > 0 ? im->node->input[0] : "",
                           im->node->n_input > 0 ? "'" : "(missing)");
    if (e->c) *s = e->c->shape;
    else if (e->vid >= 0) *s = im->g->values[e->vid]->shape;
    else return kx_fail(im, "input 0 '%s' has no value yet", im->node->input[0]);
    return KN_OK;
}

/* Size: the element count is static unless the batch dim N is in it. */
static kn_status fold_size(kx_importer *im)
{
    kn_shape s, sc = {.rank = 0};
    if (input_shape(im, &s) != KN_OK) return KN_ERR;
    int64_t numel = 1;
    for (int i = 0; i < s.rank; i++) {
        if (s.d[i] == KN_DIM_N) return kx_fail(im, "the size depends on the batch size, which kiln only knows at run time");
        numel *= s.d[i];
    }
    kx_const *c = kx_const_new(KN_I64, &sc);
    ((int64_t *)c->data)[0] = numel;
    return bind_out(im, c);
}

static kn_status fold_shape(kx_importer *im)
{
    kn_shape s;
    if (input_shape(im, &s) != KN_OK) return KN_ERR;
    int64_t start = kx_attr_i(im, "start", 0), end = kx_attr_i(im, "end", s.rank);
    if (start < 0) start += s.rank;
    if (end < 0) end += s.rank;
    start = start < 0 ? 0 : start > s.rank ? s.rank : start;
    end = end < start ? start : end > s.rank ? s.rank : end;
    kn_shape v = {.rank = 1, .d = {end - start}};
    kx_const *c = kx_const_new(KN_I64, &v);
    for (int64_t i = start; i < end; i++)
        ((int64_t *)c->data)[i - start] = s.d[i] == KN_DIM_N ? KX_SYM_N : s.d[i];
    return bind_out(im, c);
}

/* Normalises axis `a` against rank r; false when out of range. */
static bool norm_axis(int64_t a, int r, int *out)
{
    if (a < 0) a += r;
    if (a < 0 || a >= r) return false;
    *out = (int)a;
    return true;
}

static kn_status fold_gather(kx_importer *im, const kx_const *x, const kx_const *idx)
{
    int axis;
    if (!norm_axis(kx_attr_i(im, "axis", 0), x->shape.rank, &axis))
        return kx_fail(im, "axis %lld is out of range for rank %d", (long long)kx_attr_i(im, "axis", 0), x->shape.rank);
    if (x->shape.rank - 1 + idx->shape.rank > KN_MAX_RANK) return kx_fail(im, "result rank is too large");
    kn_shape s = {.rank = 0};
    for (int i = 0; i < axis; i++) s.d[s.rank++] = x->shape.d[i];
    for (int i = 0; i < idx->shape.rank; i++) s.d[s.rank++] = idx->shape.d[i];
    for (int i = axis + 1; i < x->shape.rank; i++) s.d[s.rank++] = x->shape.d[i];
    int64_t outer = 1, inner = 1, dim = x->shape.d[axis];
    for (int i = 0; i < axis; i++) outer *= x->shape.d[i];
    for (int i = axis + 1; i < x->shape.rank; i++) inner *= x->shape.d[i];
    kx_const *c = kx_const_new(x->dtype, &s);
    size_t es = kn_dtype_size(x->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < idx->numel; k++) {
            int64_t j = kx_const_i(idx, k);
            if (j < 0) j += dim;
            if (j < 0 || j >= dim) {
                kx_const_free(c);
                return kx_fail(im, "index %lld is out of range for dim %d of size %lld", (long long)kx_const_i(idx, k),
                               axis, (long long)dim);
            }
            memcpy((char *)c->data + (size_t)((o * idx->numel + k) * inner) * es,
                   (const char *)x->data + (size_t)((o * dim + j) * inner) * es, (size_t)inner * es);
        }
    return bind_out(im, c);
}

/* Axes from the attribute (older opsets) or input 1 (opset 13+). */
static int read_axes(kx_importer *im, int64_t *axes)
{
    if (im->opset >= 13 && kx_has_input(im, 1)) {
        const kx_const *a = kx_input_const(im, 1);
        if (!a || a->numel > KN_MAX_RANK) return -2;
        for (int64_t i = 0; i < a->numel; i++) axes[i] = kx_const_i(a, i);
        return (int)a->numel;
    }
    return kx_attr_ints(im, "axes", axes, KN_MAX_RANK);
}

static kn_status fold_reshape_to(kx_importer *im, const kx_const *x, const kn_shape *s)
{
    kx_const *c = const_copy(x);
    c->shape = *s;
    return bind_out(im, c);
}

/* Output shapes of Unsqueeze / Squeeze (also used for runtime tensors by onnx_ops.c). */
kn_status kx_unsqueeze_shape(kx_importer *im, const kn_shape *in, kn_shape *out)
{
    int64_t axes[KN_MAX_RANK];
    int na = read_axes(im, axes);
    if (na < 0) return kx_fail(im, "needs constant axes");
    int r = in->rank + na;
    if (r > KN_MAX_RANK) return kx_fail(im, "result rank %d is above %d", r, KN_MAX_RANK);
    bool ins[KN_MAX_RANK] = {false};
    for (int i = 0; i < na; i++) {
        int a;
        if (!norm_axis(axes[i], r, &a) || ins[a]) return kx_fail(im, "invalid axes");
        ins[a] = true;
    }
    out->rank = r;
    for (int i = 0, k = 0; i < r; i++) out->d[i] = ins[i] ? 1 : in->d[k++];
    return KN_OK;
}

kn_status kx_squeeze_shape(kx_importer *im, const kn_shape *in, kn_shape *out)
{
    int64_t axes[KN_MAX_RANK];
    int na = read_axes(im, axes);
    if (na < -1) return kx_fail(im, "needs constant axes");
    bool drop[KN_MAX_RANK] = {false};
    for (int i = 0; i < in->rank; i++) drop[i] = na < 0 && in->d[i] == 1;
    for (int i = 0; i < na; i++) {
        int a;
        if (!norm_axis(axes[i], in->rank, &a) || in->d[a] != 1)
            return kx_fail(im, "axis %lld is not a dim of size 1", (long long)axes[i]);
        drop[a] = true;
    }
    out->rank = 0;
    for (int i = 0; i < in->rank; i++)
        if (!drop[i]) out->d[out->rank++] = in->d[i];
    return KN_OK;
}

static kn_status fold_concat(kx_importer *im)
{
    int n = (int)im->node->n_input;
    const kx_const *x0 = kx_input_const(im, 0);
    int axis;
    if (!norm_axis(kx_attr_i(im, "axis", 0), x0->shape.rank, &axis)) return kx_fail(im, "axis is out of range");
    kn_shape s = x0->shape;
    s.d[axis] = 0;
    for (int i = 0; i < n; i++) {
        const kx_const *x = kx_input_const(im, i);
        if (x->dtype != x0->dtype || x->shape.rank != s.rank) return kx_fail(im, "inputs differ in type or rank");
        s.d[axis] += x->shape.d[axis];
    }
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= s.d[i];
    for (int i = axis + 1; i < s.rank; i++) inner *= s.d[i];
    kx_const *c = kx_const_new(x0->dtype, &s);
    size_t es = kn_dtype_size(x0->dtype);
    char *dst = c->data;
    for (int64_t o = 0; o < outer; o++)
        for (int i = 0; i < n; i++) {
            const kx_const *x = kx_input_const(im, i);
            size_t run = (size_t)(x->shape.d[axis] * inner) * es;
            memcpy(dst, (const char *)x->data + (size_t)o * run, run);
            dst += run;
        }
    return bind_out(im, c);
}

/* Reshape of a constant (allowzero=0: a 0 copies the input dim). */
static kn_status fold_reshape(kx_importer *im, const kx_const *x, const kx_const *sh)
{
    if (sh->numel > KN_MAX_RANK) return kx_fail(im, "target rank %lld is above %d", (long long)sh->numel, KN_MAX_RANK);
    kn_shape s = {.rank = (int)sh->numel};
    int64_t known = 1, at = -1;
    for (int i = 0; i < s.rank; i++) {
        int64_t v = kx_const_i(sh, i);
        if (v == 0 && i < x->shape.rank) v = x->shape.d[i];
        if (v == -1) at = i;
        else if (v < 0) return kx_fail(im, "invalid target dim %lld", (long long)v);
        else known *= v;
        s.d[i] = v;
    }
    if (at >= 0) s.d[at] = known ? x->numel / known : 0;
    int64_t total = 1;
    for (int i = 0; i < s.rank; i++) total *= s.d[i];
    if (total != x->numel) return kx_fail(im, "cannot reshape %lld elements to the target shape", (long long)x->numel);
    return fold_reshape_to(im, x, &s);
}

/* float -> int64 as C casts it, but defined for NaN and out-of-range
 * values (0 and saturation) instead of undefined behaviour. */
static int64_t float_to_i64(double v)
{
    if (v != v) return 0;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

static kn_status fold_cast(kx_importer *im, const kx_const *x)
{
    int64_t to = kx_attr_i(im, "to", 0);
    kn_dtype dt = to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || to == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? KN_F32 : KN_I64;
    kx_const *c = kx_const_new(dt, &x->shape);
    for (int64_t i = 0; i < x->numel; i++) {
        if (dt == KN_F32) ((float *)c->data)[i] = (float)kx_const_f(x, i);
        else ((int64_t *)c->data)[i] = x->dtype == KN_I64 ? kx_const_i(x, i) : float_to_i64(kx_const_f(x, i));
    }
    return bind_out(im, c);
}

static kn_status fold_constant_of_shape(kx_importer *im, const kx_const *sh)
{
    if (sh->numel > KN_MAX_RANK) return kx_fail(im, "shape has too many dims");
    kn_shape s = {.rank = (int)sh->numel};
    for (int i = 0; i < s.rank; i++) s.d[i] = kx_const_i(sh, i);
    for (int i = 0; i < s.rank; i++)
        if (s.d[i] < 0) return kx_fail(im, "shape depends on the batch size or is negative");
    kx_const *val = NULL;
    const Onnx__AttributeProto *a = kx_attr(im, "value");
    if (a && a->t && kx_tensor_load(im, a->t, &val) != KN_OK) return KN_ERR;
    kx_const *c = kx_const_new(val ? val->dtype : KN_F32, &s);
    for (int64_t i = 0; val && val->numel && i < c->numel; i++) {
        if (c->dtype == KN_F32) ((float *)c->data)[i] = (float)kx_const_f(val, 0);
        else ((int64_t *)c->data)[i] = kx_const_i(val, 0);
    }
    kx_const_free(val);
    return bind_out(im, c);
}

/* Elementwise arithmetic with NumPy broadcasting on constants. */
static kn_status fold_binary(kx_importer *im, const kx_const *a, const kx_const *b)
{
    const char *op = im->node->op_type;
    if (a->dtype != b->dtype) return kx_fail(im, "operands differ in element type");
    int r = a->shape.rank > b->shape.rank ? a->shape.rank : b->shape.rank;
    kn_shape s = {.rank = r};
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->shape.rank), ib = i - (r - b->shape.rank);
        int64_t da = ia >= 0 ? a->shape.d[ia] : 1, db = ib >= 0 ? b->shape.d[ib] : 1;
        if (da != db && da != 1 && db != 1) return kx_fail(im, "constant operands do not broadcast");
        s.d[i] = da == 1 ? db : da;
    }
    kx_const *c = kx_const_new(a->dtype, &s);
    for (int64_t k = 0; k < c->numel; k++) {
        int64_t rest = k, ka = 0, kb = 0, sa = 1, sb = 1;
        for (int i = r - 1; i >= 0; i--) {
            int64_t j = rest % s.d[i];
            rest /= s.d[i];
            int ia = i - (r - a->shape.rank), ib = i - (r - b->shape.rank);
            if (ia >= 0) { if (a->shape.d[ia] != 1) ka += j * sa; sa *= a->shape.d[ia]; }
            if (ib >= 0) { if (b->shape.d[ib] != 1) kb += j * sb; sb *= b->shape.d[ib]; }
        }
        if (a->dtype == KN_F32) {
            double x = kx_const_f(a, ka), y = kx_const_f(b, kb);
            double z = op[0] == 'A' ? x + y : op[0] == 'S' ? x - y : op[0] == 'M' ? x * y : x / y;
            ((float *)c->data)[k] = (float)z;
        } else {
            int64_t x = kx_const_i(a, ka), y = kx_const_i(b, kb);
            if (x == KX_SYM_N || y == KX_SYM_N) {
                kx_const_free(c);
                return kx_fail(im, "computes with the batch size, which kiln only knows at run time");
            }
            if (op[0] == 'D' && y == 0) {
                kx_const_free(c);
                return kx_fail(im, "integer division by zero");
            }
            ((int64_t *)c->data)[k] = op[0] == 'A' ? x + y : op[0] == 'S' ? x - y : op[0] == 'M' ? x * y : x / y;
        }
    }
    return bind_out(im, c);
}

/* Slice of a 1-D constant (shape vectors), any step. */
static kn_status fold_slice(kx_importer *im, const kx_const *x)
{
    int64_t st = 0, en = INT64_MAX, step = 1;
    if (im->opset >= 10) {
        const kx_const *s = kx_input_const(im, 1), *e = kx_input_const(im, 2);
        const kx_const *p = kx_has_input(im, 4) ? kx_input_const(im, 4) : NULL;
        if (!s || !e || s->numel != 1 || e->numel != 1) return kx_fail(im, "needs one constant start and end");
        st = kx_const_i(s, 0), en = kx_const_i(e, 0);
        if (p) step = kx_const_i(p, 0);
    } else {
        int64_t v[1];
        if (kx_attr_ints(im, "starts", v, 1) == 1) st = v[0];
        if (kx_attr_ints(im, "ends", v, 1) == 1) en = v[0];
    }
    int64_t n = x->shape.d[0];
    if (step == 0) return kx_fail(im, "step must not be 0");
    if (st < 0) st += n;
    if (en < 0) en += n;
    if (step > 0) {
        st = st < 0 ? 0 : st > n ? n : st;
        en = en < 0 ? 0 : en > n ? n : en;
    } else {
        st = st < 0 ? -1 : st > n - 1 ? n - 1 : st;
        en = en < -1 ? -1 : en > n - 1 ? n - 1 : en;
    }
    int64_t cnt = step > 0 ? (en > st ? (en - st + step - 1) / step : 0) : (st > en ? (st - en - step - 1) / -step : 0);
    kn_shape s = {.rank = 1, .d = {cnt}};
    kx_const *c = kx_const_new(x->dtype, &s);
    size_t es = kn_dtype_size(x->dtype);
    for (int64_t i = 0; i < cnt; i++)
        memcpy((char *)c->data + (size_t)i * es, (const char *)x->data + (size_t)(st + i * step) * es, es);
    return bind_out(im, c);
}

/* Neg of a constant (LayerNormalization's expansion negates a rank). */
static kn_status fold_neg(kx_importer *im, const kx_const *x)
{
    kx_const *c = const_copy(x);
    for (int64_t i = 0; i < c->numel; i++) {
        if (c->dtype == KN_F32) {
            ((float *)c->data)[i] = -((float *)c->data)[i];
        } else if (((int64_t *)c->data)[i] == KX_SYM_N || ((int64_t *)c->data)[i] == INT64_MIN) {
            kx_const_free(c);
            return kx_fail(im, "negates the batch size, which kiln only knows at run time");
        } else {
            ((int64_t *)c->data)[i] = -((int64_t *)c->data)[i];
        }
    }
    return bind_out(im, c);
}

/* Channel of element i for per-axis quantization parameters of length
 * `cnt` (per-tensor when cnt is 1). */
static int64_t quant_channel(kx_importer *im, const kx_const *x, int64_t i, int64_t cnt, bool *ok)
{
    *ok = true;
    if (cnt == 1) return 0;
    int axis;
    if (!norm_axis(kx_attr_i(im, "axis", 1), x->shape.rank, &axis) || x->shape.d[axis] != cnt) {
        *ok = false;
        return 0;
    }
    int64_t inner = 1;
    for (int k = axis + 1; k < x->shape.rank; k++) inner *= x->shape.d[k];
    return (i / inner) % cnt;
}

/* DequantizeLinear of a constant: y = (x - zero_point) * scale, per tensor
 * or per axis.  Quantized model-zoo weights become f32 at import. */
static kn_status fold_dequantize(kx_importer *im, const kx_const *x, const kx_const *scale)
{
    const kx_const *zp = kx_has_input(im, 2) ? kx_input_const(im, 2) : NULL;
    if (!scale || (zp && zp->numel != scale->numel)) return kx_fail(im, "scale and zero_point do not match");
    kx_const *c = kx_const_new(KN_F32, &x->shape);
    for (int64_t i = 0; i < x->numel; i++) {
        bool ok;
        int64_t ch = quant_channel(im, x, i, scale->numel, &ok);
        if (!ok) {
            kx_const_free(c);
            return kx_fail(im, "per-axis scale of %lld values does not fit the axis", (long long)scale->numel);
        }
        double q = (double)kx_const_i(x, i) - (zp ? (double)kx_const_i(zp, ch) : 0.0);
        ((float *)c->data)[i] = (float)(q * kx_const_f(scale, ch));
    }
    return bind_out(im, c);
}

/* QuantizeLinear of a constant: saturate(round_half_even(x / scale) + zp)
 * into the zero point's type (uint8 when absent). */
static kn_status fold_quantize(kx_importer *im, const kx_const *x, const kx_const *scale)
{
    const kx_const *zp = kx_has_input(im, 2) ? kx_input_const(im, 2) : NULL;
    if (!scale || (zp && zp->numel != scale->numel)) return kx_fail(im, "scale and zero_point do not match");
    int32_t t = zp ? zp->onnx_type : ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
    double lo, hi;
    if (t == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8) lo = 0, hi = 255;
    else if (t == ONNX__TENSOR_PROTO__DATA_TYPE__INT8) lo = -128, hi = 127;
    else return kx_fail(im, "only uint8 and int8 quantization is supported (zero_point type %d)", (int)t);
    kx_const *c = kx_const_new(KN_I64, &x->shape);
    c->onnx_type = t;
    for (int64_t i = 0; i < x->numel; i++) {
        bool ok;
        int64_t ch = quant_channel(im, x, i, scale->numel, &ok);
        if (!ok) {
            kx_const_free(c);
            return kx_fail(im, "per-axis scale of %lld values does not fit the axis", (long long)scale->numel);
        }
        double q = nearbyint(kx_const_f(x, i) / kx_const_f(scale, ch)) + (zp ? (double)kx_const_i(zp, ch) : 0.0);
        ((int64_t *)c->data)[i] = (int64_t)(q < lo ? lo : q > hi ? hi : q);
    }
    return bind_out(im, c);
}

static bool all_inputs_const(kx_importer *im)
{
    for (size_t i = 0; i < im->node->n_input; i++)
        if (kx_has_input(im, (int)i) && !kx_input_const(im, (int)i)) return false;
    return im->node->n_input > 0;
}

kn_status kx_try_fold(kx_importer *im, bool *folded)
{
    const char *op = im->node->op_type;
    *folded = true;
    if (!strcmp(op, "Constant")) return fold_constant(im);
    if (!strcmp(op, "Shape")) return fold_shape(im);
    if (!strcmp(op, "Size")) return fold_size(im);
    if (!all_inputs_const(im)) {
        *folded = false;
        return KN_OK;
    }
    const kx_const *x = kx_input_const(im, 0), *y = kx_input_const(im, 1);
    kn_shape s;
    if (!strcmp(op, "Gather")) return fold_gather(im, x, y);
    if (!strcmp(op, "Concat")) return fold_concat(im);
    if (!strcmp(op, "Cast")) return fold_cast(im, x);
    if (!strcmp(op, "ConstantOfShape")) return fold_constant_of_shape(im, x);
    if (!strcmp(op, "Identity") || !strcmp(op, "Dropout")) return bind_out(im, const_copy(x));
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div"))
        return fold_binary(im, x, y);
    if (!strcmp(op, "Slice") && x->shape.rank == 1) return fold_slice(im, x);
    if (!strcmp(op, "Neg")) return fold_neg(im, x);
    if (!strcmp(op, "DequantizeLinear")) return fold_dequantize(im, x, y);
    if (!strcmp(op, "QuantizeLinear")) return fold_quantize(im, x, y);
    if (!strcmp(op, "Reshape") && im->opset >= 5) return fold_reshape(im, x, y);
    if (!strcmp(op, "Unsqueeze")) {
        if (kx_unsqueeze_shape(im, &x->shape, &s) != KN_OK) return KN_ERR;
        return fold_reshape_to(im, x, &s);
    }
    if (!strcmp(op, "Squeeze")) {
        if (kx_squeeze_shape(im, &x->shape, &s) != KN_OK) return KN_ERR;
        return fold_reshape_to(im, x, &s);
    }
    *folded = false; /* an op with constant inputs kiln computes at run time */
    return KN_OK;
}

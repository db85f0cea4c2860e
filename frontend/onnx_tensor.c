/* onnx_tensor.c — TensorProto -> host constant (kx_const).
 *
 * Data comes from raw_data (little-endian bytes), the typed fields
 * (float_data, int64_data, int32_data, double_data) or an external file
 * next to the model (data_location EXTERNAL: location, offset, length).
 * float and double become f32; int64, int32, int16/8, uint8 and bool become
 * i64 (shape tensors, indices, constants).  Every declared size is checked
 * against the bytes actually present before anything is allocated, and
 * external paths must stay inside the model's folder.
 */
#define _GNU_SOURCE
#include "onnx_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

kx_const *kx_const_new(kn_dtype dt, const kn_shape *s)
{
    kx_const *c = kn_xcalloc(1, sizeof *c);
    c->dtype = dt;
    c->shape = *s;
    c->numel = 1;
    for (int i = 0; i < s->rank; i++) c->numel *= s->d[i];
    c->data = kn_xcalloc((size_t)(c->numel > 0 ? c->numel : 1), kn_dtype_size(dt));
    return c;
}

void kx_const_free(kx_const *c)
{
    if (!c) return;
    free(c->data);
    free(c);
}

double kx_const_f(const kx_const *c, int64_t i)
{
    return c->dtype == KN_F32 ? ((const float *)c->data)[i] : (double)((const int64_t *)c->data)[i];
}

int64_t kx_const_i(const kx_const *c, int64_t i)
{
    return c->dtype == KN_I64 ? ((const int64_t *)c->data)[i] : (int64_t)((const float *)c->data)[i];
}

/* Bytes per element of an ONNX type kiln reads, 0 if unsupported. */
static size_t elem_size(int32_t t)
{
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return 8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: return 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return 1;
    default: return 0;
    }
}

static bool is_float_type(int32_t t)
{
    return t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || t == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
}

/* Converts `n` little-endian elements of ONNX type t at p into c. */
static void convert_raw(const unsigned char *p, int32_t t, kx_const *c)
{
    for (int64_t i = 0; i < c->numel; i++) {
        const unsigned char *q = p + (size_t)i * elem_size(t);
        double f = 0;
        int64_t v = 0;
        switch (t) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: { float x; memcpy(&x, q, 4); f = x; break; }
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: memcpy(&f, q, 8); break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: memcpy(&v, q, 8); break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: { int32_t x; memcpy(&x, q, 4); v = x; break; }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: { int16_t x; memcpy(&x, q, 2); v = x; break; }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: v = (int8_t)q[0]; break;
        default: v = q[0]; break; /* uint8, bool */
        }
        if (c->dtype == KN_F32) ((float *)c->data)[i] = (float)f;
        else ((int64_t *)c->data)[i] = v;
    }
}

/* Reads external data into a malloc'd buffer of exactly `want` bytes. */
static kn_status read_external(kx_importer *im, const Onnx__TensorProto *t, size_t want, unsigned char **out)
{
    const char *loc = NULL;
    int64_t offset = 0, length = -1;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = t->external_data[i];
        if (!e->key || !e->value) continue;
        if (!strcmp(e->key, "location")) loc = e->value;
        else if (!strcmp(e->key, "offset")) offset = strtoll(e->value, NULL, 10);
        else if (!strcmp(e->key, "length")) length = strtoll(e->value, NULL, 10);
    }
    const char *tn = t->name ? t->name : "";
    if (!loc || !*loc) return kx_fail(im, "initializer '%s': external data without a location", tn);
    if (!im->dir) return kx_fail(im, "initializer '%s': external data needs the model's folder", tn);
    if (loc[0] == '/' || strstr(loc, ".."))
        return kx_fail(im, "initializer '%s': external data path '%s' must be relative and stay inside the "
                       "model's folder", tn, loc);
    if (offset < 0 || (length >= 0 && (uint64_t)length != want))
        return kx_fail(im, "initializer '%s': external data offset %lld / length %lld do not match %zu bytes",
                       tn, (long long)offset, (long long)length, want);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", im->dir, loc);
    FILE *f = fopen(path, "rb");
    if (!f) return kx_fail(im, "initializer '%s': cannot open external data %s: %s", tn, path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || (uint64_t)st.st_size < (uint64_t)offset + want) {
        fclose(f);
        return kx_fail(im, "initializer '%s': external data %s holds %lld bytes, needs %zu at offset %lld", tn,
                       path, (long long)st.st_size, want, (long long)offset);
    }
    unsigned char *buf = kn_xmalloc(want ? want : 1);
    bool ok = fseeko(f, offset, SEEK_SET) == 0 && fread(buf, 1, want, f) == want;
    fclose(f);
    if (!ok) {
        free(buf);
        return kx_fail(im, "initializer '%s': cannot read external data %s", tn, path);
    }
    *out = buf;
    return KN_OK;
}

/* Typed-field element count and converter. */
static size_t typed_count(const Onnx__TensorProto *t)
{
    switch (t->data_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return t->n_float_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return t->n_double_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return t->n_int64_data;
    default: return t->n_int32_data; /* int32, int16, int8, uint8, bool */
    }
}

static void convert_typed(const Onnx__TensorProto *t, kx_const *c)
{
    for (int64_t i = 0; i < c->numel; i++) {
        double f = 0;
        int64_t v = 0;
        switch (t->data_type) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: f = t->float_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: f = t->double_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: v = t->int64_data[i]; break;
        default: v = t->int32_data[i]; break;
        }
        if (c->dtype == KN_F32) ((float *)c->data)[i] = (float)f;
        else ((int64_t *)c->data)[i] = v;
    }
}

kn_status kx_tensor_load(kx_importer *im, const Onnx__TensorProto *t, kx_const **out)
{
    *out = NULL;
    const char *tn = t->name ? t->name : "";
    size_t es = elem_size(t->data_type);
    if (!es) return kx_fail(im, "tensor '%s': element type %d is not supported (float, double, int8..int64, "
                            "uint8, bool)", tn, (int)t->data_type);
    if (t->n_dims > KN_MAX_RANK)
        return kx_fail(im, "tensor '%s' has rank %zu; kiln supports at most %d", tn, t->n_dims, KN_MAX_RANK);
    kn_shape s = {.rank = (int)t->n_dims};
    int64_t numel = 1, bytes;
    for (size_t i = 0; i < t->n_dims; i++) {
        s.d[i] = t->dims[i];
        if (t->dims[i] < 0 || !kn_mul_ok(numel, t->dims[i], &numel))
            return kx_fail(im, "tensor '%s' has an invalid or overflowing shape", tn);
    }
    if (!kn_mul_ok(numel, (int64_t)es, &bytes) || bytes > ((int64_t)1 << 40))
        return kx_fail(im, "tensor '%s' is too large (%lld elements)", tn, (long long)numel);
    bool external = t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    unsigned char *ext = NULL;
    if (external) {
        if (read_external(im, t, (size_t)bytes, &ext) != KN_OK) return KN_ERR;
    } else if (t->has_raw_data) {
        if (t->raw_data.len != (size_t)bytes)
            return kx_fail(im, "tensor '%s': raw_data holds %zu bytes, its shape needs %lld", tn, t->raw_data.len,
                           (long long)bytes);
    } else if (typed_count(t) != (size_t)numel) {
        return kx_fail(im, "tensor '%s': holds %zu values, its shape needs %lld", tn, typed_count(t),
                       (long long)numel);
    }
    kx_const *c = kx_const_new(is_float_type(t->data_type) ? KN_F32 : KN_I64, &s);
    c->onnx_type = t->data_type;
    if (ext) convert_raw(ext, t->data_type, c);
    else if (t->has_raw_data) convert_raw(t->raw_data.data, t->data_type, c);
    else convert_typed(t, c);
    free(ext);
    *out = c;
    return KN_OK;
}

kn_status kn_onnx_read_tensor(const char *path, kn_dtype *dt, kn_shape *shape, void **data, kn_diag *d)
{
    *data = NULL;
    kx_importer im = {.path = path, .d = d};
    FILE *f = fopen(path, "rb");
    if (!f) return kx_fail(&im, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size > ((off_t)1 << 31)) {
        fclose(f);
        return kx_fail(&im, "not a readable tensor file");
    }
    size_t len = (size_t)st.st_size;
    unsigned char *buf = kn_xmalloc(len ? len : 1);
    size_t got = fread(buf, 1, len, f);
    fclose(f);
    Onnx__TensorProto *t = got == len ? onnx__tensor_proto__unpack(NULL, len, buf) : NULL;
    free(buf);
    if (!t) return kx_fail(&im, "not a valid TensorProto");
    kx_const *c = NULL;
    kn_status s = kx_tensor_load(&im, t, &c);
    onnx__tensor_proto__free_unpacked(t, NULL);
    if (s != KN_OK) return s;
    *dt = c->dtype;
    *shape = c->shape;
    *data = c->data;
    free(c);
    return KN_OK;
}

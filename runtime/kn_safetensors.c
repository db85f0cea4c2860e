/* kn_safetensors.c — see kn_safetensors.h.  Layout: u64 LE header length,
 * JSON header {name:{dtype,shape,data_offsets:[begin,end]}, __metadata__},
 * then the data section; offsets are relative to the data section. */
#include "kn_safetensors.h"
#include "kn_rt_afile.h"
#include "kn_rt_err.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Headers beyond this are not checkpoints of ours: refuse before malloc. */
#define ST_MAX_HEADER (100u << 20)

const char *kn_st_shape_str(int dtype, int rank, const int64_t *dims, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "%s[", dtype == KN_RT_I64 ? "i64" : "f32");
    for (int d = 0; d < rank && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? "," : "", (long long)dims[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

void kn_st_free(kn_st_file *f)
{
    for (int i = 0; i < f->n; i++) {
        free(f->t[i].name);
        free(f->t[i].data);
    }
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_key[i]);
        free(f->meta_val[i]);
    }
    free(f->t);
    free(f->meta_key);
    free(f->meta_val);
    memset(f, 0, sizeof *f);
}

const kn_st_tensor *kn_st_find(const kn_st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

const char *kn_st_meta(const kn_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_key[i], key) == 0) return f->meta_val[i];
    return NULL;
}

static unsigned char *slurp(const char *path, size_t *len, char *err, size_t errcap)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        kn_rt_errf(err, errcap, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, k;
    unsigned char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n, fp)) > 0) {
        n += k;
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; }
            else buf = nb;
        }
    }
    int bad = ferror(fp);
    fclose(fp);
    if (!buf || bad) {
        free(buf);
        kn_rt_errf(err, errcap, "%s: read failed", path);
        return NULL;
    }
    *len = n;
    return buf;
}

static int parse_dtype(const char *s, int *dtype)
{
    if (strcmp(s, "F32") == 0) { *dtype = KN_RT_F32; return 0; }
    if (strcmp(s, "I64") == 0) { *dtype = KN_RT_I64; return 0; }
    return -1;
}

static int parse_meta(const char *path, const cJSON *meta, kn_st_file *out, char *err, size_t errcap)
{
    if (!cJSON_IsObject(meta))
        return kn_rt_errf(err, errcap, "%s: bad header: __metadata__ is not an object", path);
    int n = cJSON_GetArraySize(meta);
    out->meta_key = calloc((size_t)n + 1, sizeof(char *));
    out->meta_val = calloc((size_t)n + 1, sizeof(char *));
    const cJSON *it;
    cJSON_ArrayForEach(it, meta) {
        if (!cJSON_IsString(it))
            return kn_rt_errf(err, errcap, "%s: bad header: __metadata__ value '%s' is not a string",
                              path, it->string);
        out->meta_key[out->n_meta] = strdup(it->string);
        out->meta_val[out->n_meta] = strdup(it->valuestring);
        out->n_meta++;
    }
    return 0;
}

static int parse_tensor(const char *path, const cJSON *e, const unsigned char *data,
                        size_t data_len, kn_st_tensor *t, char *err, size_t errcap)
{
    const char *name = e->string;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsObject(e) || !cJSON_IsString(dt) || !cJSON_IsArray(sh) ||
        !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        return kn_rt_errf(err, errcap,
                          "%s: bad header: tensor '%s' needs dtype, shape and data_offsets", path, name);
    if (parse_dtype(dt->valuestring, &t->dtype))
        return kn_rt_errf(err, errcap, "%s: tensor '%s': unsupported dtype %s (kiln reads F32 and I64)",
                          path, name, dt->valuestring);
    t->rank = cJSON_GetArraySize(sh);
    if (t->rank > KN_RT_MAX_RANK)
        return kn_rt_errf(err, errcap, "%s: tensor '%s': rank %d exceeds %d", path, name, t->rank,
                          KN_RT_MAX_RANK);
    t->numel = 1;
    for (int d = 0; d < t->rank; d++) {
        const cJSON *v = cJSON_GetArrayItem(sh, d);
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9e15)
            return kn_rt_errf(err, errcap, "%s: bad header: tensor '%s' has an invalid shape", path, name);
        t->dims[d] = (int64_t)v->valuedouble;
        t->numel *= (size_t)t->dims[d];
    }
    const cJSON *b = cJSON_GetArrayItem(off, 0), *en = cJSON_GetArrayItem(off, 1);
    if (!cJSON_IsNumber(b) || !cJSON_IsNumber(en) || b->valuedouble < 0 ||
        en->valuedouble < b->valuedouble)
        return kn_rt_errf(err, errcap, "%s: bad header: tensor '%s' has invalid data_offsets", path, name);
    size_t begin = (size_t)b->valuedouble, end = (size_t)en->valuedouble;
    size_t want = t->numel * (t->dtype == KN_RT_I64 ? 8 : 4);
    if (end - begin != want)
        return kn_rt_errf(err, errcap, "%s: bad header: tensor '%s' has %zu data bytes, shape needs %zu",
                          path, name, end - begin, want);
    if (end > data_len)
        return kn_rt_errf(err, errcap,
                          "%s: truncated: tensor '%s' needs data bytes [%zu,%zu) but only %zu present",
                          path, name, begin, end, data_len);
    t->name = strdup(name);
    t->data = malloc(want ? want : 1);
    if (!t->name || !t->data) return kn_rt_errf(err, errcap, "%s: out of memory", path);
    memcpy(t->data, data + begin, want);
    return 0;
}

int kn_st_read(const char *path, kn_st_file *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    size_t len;
    unsigned char *buf = slurp(path, &len, err, errcap);
    if (!buf) return -1;
    int rc = -1;
    cJSON *root = NULL;
    if (len < 8) {
        kn_rt_errf(err, errcap, "%s: truncated: %zu bytes, not a safetensors file", path, len);
        goto done;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > ST_MAX_HEADER) {
        kn_rt_errf(err, errcap, "%s: bad header: header length %llu is not plausible", path,
                   (unsigned long long)hlen);
        goto done;
    }
    if (hlen > len - 8) {
        kn_rt_errf(err, errcap, "%s: truncated: header of %llu bytes but file has %zu", path,
                   (unsigned long long)hlen, len);
        goto done;
    }
    root = cJSON_ParseWithLength((const char *)buf + 8, (size_t)hlen);
    if (!cJSON_IsObject(root)) {
        kn_rt_errf(err, errcap, "%s: bad header: not a JSON object", path);
        goto done;
    }
    int n = cJSON_GetArraySize(root);
    out->t = calloc((size_t)n + 1, sizeof *out->t);
    const unsigned char *data = buf + 8 + hlen;
    size_t data_len = len - 8 - (size_t)hlen;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (parse_meta(path, e, out, err, errcap)) goto done;
            continue;
        }
        if (kn_st_find(out, e->string)) {
            kn_rt_errf(err, errcap, "%s: bad header: tensor '%s' appears twice", path, e->string);
            goto done;
        }
        kn_st_tensor *t = &out->t[out->n];
        if (parse_tensor(path, e, data, data_len, t, err, errcap)) {
            free(t->name);
            free(t->data);
            goto done;
        }
        out->n++;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    free(buf);
    if (rc) kn_st_free(out);
    return rc;
}

int kn_st_write(const char *path, const kn_st_tensor *t, int n,
                const char *const *meta_key, const char *const *meta_val, int n_meta,
                char *err, size_t errcap)
{
    cJSON *root = cJSON_CreateObject();
    if (n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; i < n_meta; i++) cJSON_AddStringToObject(m, meta_key[i], meta_val[i]);
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t bytes = t[i].numel * (t[i].dtype == KN_RT_I64 ? 8 : 4);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "dtype", t[i].dtype == KN_RT_I64 ? "I64" : "F32");
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t[i].rank; d++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t[i].dims[d]));
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + bytes)));
        cJSON_AddItemToObject(root, t[i].name, e);
        off += bytes;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return kn_rt_errf(err, errcap, "%s: out of memory", path);
    /* Pad with spaces so the data section starts 8-byte aligned, as the
     * reference implementation does (allows mmap'd zero-copy readers). */
    size_t jlen = strlen(json), hlen = (jlen + 7) & ~(size_t)7;
    char *hdr = malloc(8 + hlen);
    if (!hdr) {
        free(json);
        return kn_rt_errf(err, errcap, "%s: out of memory", path);
    }
    for (int i = 0; i < 8; i++) hdr[i] = (char)((uint64_t)hlen >> (8 * i));
    memcpy(hdr + 8, json, jlen);
    memset(hdr + 8 + jlen, ' ', hlen - jlen);
    free(json);

    kn_rt_afile a;
    int rc = kn_rt_afile_begin(&a, path, err, errcap);
    if (!rc) rc = kn_rt_afile_write(&a, hdr, 8 + hlen, err, errcap);
    for (int i = 0; !rc && i < n; i++)
        rc = kn_rt_afile_write(&a, t[i].data, t[i].numel * (t[i].dtype == KN_RT_I64 ? 8 : 4),
                               err, errcap);
    if (!rc) rc = kn_rt_afile_commit(&a, err, errcap);
    free(hdr);
    return rc;
}

/* npy.c — see npy.h.  The header is a Python dict literal; we parse just
 * the three keys NumPy writes rather than a general literal parser. */
#include "npy.h"
#include "kn_rt_afile.h"
#include "kn_rt_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kn_npy_free(kn_npy *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* Finds the value text after 'key': in the dict, or NULL. */
static const char *dict_value(const char *hdr, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

enum { SRC_F4, SRC_F8, SRC_I4, SRC_I8 };

static int parse_header(const char *path, const char *hdr, kn_npy *out, int *src,
                        char *err, size_t errcap)
{
    const char *d = dict_value(hdr, "descr");
    if (!d || *d != '\'') return kn_rt_errf(err, errcap, "%s: bad npy header: no 'descr'", path);
    d++;
    const char *q = strchr(d, '\'');
    if (!q) return kn_rt_errf(err, errcap, "%s: bad npy header: unterminated 'descr'", path);
    size_t dl = (size_t)(q - d);
    static const struct { const char *s; int src, dt; } types[] = {
        {"<f4", SRC_F4, KN_RT_F32}, {"<f8", SRC_F8, KN_RT_F32},
        {"<i4", SRC_I4, KN_RT_I64}, {"<i8", SRC_I8, KN_RT_I64},
    };
    int found = 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strlen(types[i].s) == dl && strncmp(d, types[i].s, dl) == 0) {
            *src = types[i].src;
            out->dtype = types[i].dt;
            found = 1;
        }
    if (!found)
        return kn_rt_errf(err, errcap, "%s: unsupported npy dtype '%.*s' (expected <f4, <i8, <f8 or <i4)",
                          path, (int)dl, d);
    const char *f = dict_value(hdr, "fortran_order");
    if (!f) return kn_rt_errf(err, errcap, "%s: bad npy header: no 'fortran_order'", path);
    if (strncmp(f, "False", 5) != 0)
        return kn_rt_errf(err, errcap, "%s: fortran-order arrays are not supported (save with np.ascontiguousarray)", path);
    const char *s = dict_value(hdr, "shape");
    if (!s || *s != '(') return kn_rt_errf(err, errcap, "%s: bad npy header: no 'shape'", path);
    s++;
    out->rank = 0;
    out->numel = 1;
    for (;;) {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0) return kn_rt_errf(err, errcap, "%s: bad npy header: invalid shape", path);
        if (out->rank == 6) return kn_rt_errf(err, errcap, "%s: npy rank above 6 is not supported", path);
        out->dims[out->rank++] = v;
        out->numel *= (size_t)v;
        s = end;
        if (*s == 'L') s++; /* Python 2 longs */
    }
    return 0;
}

int kn_npy_read(const char *path, kn_npy *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    FILE *fp = fopen(path, "rb");
    if (!fp) return kn_rt_errf(err, errcap, "%s: cannot open: %s", path, strerror(errno));
    unsigned char pre[12];
    char *hdr = NULL;
    void *raw = NULL;
    int rc = -1;
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        kn_rt_errf(err, errcap, "%s: not an npy file (bad magic)", path);
        goto done;
    }
    size_t hlen;
    if (pre[6] == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, fp) != 2) {
            kn_rt_errf(err, errcap, "%s: truncated npy header", path);
            goto done;
        }
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        if (hlen > (1u << 24)) {
            kn_rt_errf(err, errcap, "%s: bad npy header length %zu", path, hlen);
            goto done;
        }
    } else {
        kn_rt_errf(err, errcap, "%s: unsupported npy format version %d", path, pre[6]);
        goto done;
    }
    hdr = malloc(hlen + 1);
    if (!hdr || fread(hdr, 1, hlen, fp) != hlen) {
        kn_rt_errf(err, errcap, "%s: truncated npy header", path);
        goto done;
    }
    hdr[hlen] = 0;
    int src = SRC_F4;
    if (parse_header(path, hdr, out, &src, err, errcap)) goto done;
    size_t esz = (src == SRC_F4 || src == SRC_I4) ? 4 : 8;
    raw = malloc(out->numel * esz + 1);
    if (!raw) {
        kn_rt_errf(err, errcap, "%s: out of memory for %zu elements", path, out->numel);
        goto done;
    }
    size_t got = fread(raw, esz, out->numel, fp);
    if (got != out->numel) {
        kn_rt_errf(err, errcap, "%s: truncated npy data: %zu of %zu elements", path, got, out->numel);
        goto done;
    }
    if (src == SRC_F4 || src == SRC_I8) {
        out->data = raw;
        raw = NULL;
    } else {
        size_t osz = out->dtype == KN_RT_I64 ? 8 : 4;
        out->data = malloc(out->numel * osz + 1);
        if (!out->data) {
            kn_rt_errf(err, errcap, "%s: out of memory", path);
            goto done;
        }
        for (size_t i = 0; i < out->numel; i++) {
            if (src == SRC_F8) ((float *)out->data)[i] = (float)((double *)raw)[i];
            else ((int64_t *)out->data)[i] = ((int32_t *)raw)[i];
        }
    }
    rc = 0;
done:
    fclose(fp);
    free(hdr);
    free(raw);
    if (rc) kn_npy_free(out);
    return rc;
}

int kn_npy_write(const char *path, int dtype, int rank, const int64_t *dims,
                 const void *data, char *err, size_t errcap)
{
    if (rank < 0 || rank > 6) return kn_rt_errf(err, errcap, "%s: npy rank %d not supported", path, rank);
    char dict[256];
    size_t k = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                dtype == KN_RT_I64 ? "<i8" : "<f4");
    size_t numel = 1;
    for (int d = 0; d < rank; d++) {
        k += (size_t)snprintf(dict + k, sizeof dict - k, "%lld,%s", (long long)dims[d],
                              d + 1 < rank ? " " : "");
        numel *= (size_t)dims[d];
    }
    /* A 1-tuple needs its trailing comma; larger tuples keep NumPy's style. */
    if (rank > 1) k--;
    k += (size_t)snprintf(dict + k, sizeof dict - k, "), }");
    /* Total header (10-byte preamble + dict + '\n') padded to 64 bytes, as NumPy does. */
    size_t total = (10 + k + 1 + 63) & ~(size_t)63;
    size_t hlen = total - 10;
    unsigned char hdr[320];
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (unsigned char)(hlen & 0xff);
    hdr[9] = (unsigned char)(hlen >> 8);
    memcpy(hdr + 10, dict, k);
    memset(hdr + 10 + k, ' ', hlen - k - 1);
    hdr[total - 1] = '\n';
    const void *chunks[2] = {hdr, data};
    size_t lens[2] = {total, numel * (dtype == KN_RT_I64 ? 8 : 4)};
    return kn_rt_write_atomic(path, chunks, lens, 2, err, errcap);
}

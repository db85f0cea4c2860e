/* kn_idx.c — see kn_idx.h.  gzread reads uncompressed files transparently,
 * so unpacked copies of the datasets work too. */
#include "kn_idx.h"
#include "kn_rt_err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void kn_idx_free(kn_idx *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}

static int read_exact(gzFile g, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        unsigned chunk = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
        int k = gzread(g, (char *)buf + got, chunk);
        if (k <= 0) return -1;
        got += (size_t)k;
    }
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int kn_idx_read(const char *path, int rank, kn_idx *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    if (rank < 1 || rank > 3) return kn_rt_errf(err, errcap, "%s: IDX rank %d not supported", path, rank);
    gzFile g = gzopen(path, "rb");
    if (!g) return kn_rt_errf(err, errcap, "%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
    int rc = -1;
    unsigned char hdr[16];
    if (read_exact(g, hdr, 4 + 4 * (size_t)rank)) {
        kn_rt_errf(err, errcap, "%s: truncated IDX header", path);
        goto done;
    }
    uint32_t magic = be32(hdr);
    if (magic != (0x0800u | (uint32_t)rank)) {
        kn_rt_errf(err, errcap, "%s: bad IDX magic 0x%08x (expected 0x%08x: u8 data of rank %d)", path,
                   magic, 0x0800u | (uint32_t)rank, rank);
        goto done;
    }
    out->rank = rank;
    out->numel = 1;
    for (int d = 0; d < rank; d++) {
        uint32_t v = be32(hdr + 4 + 4 * d);
        if (v == 0 || v > (1u << 28)) {
            kn_rt_errf(err, errcap, "%s: implausible IDX dimension %u", path, v);
            goto done;
        }
        out->dims[d] = (int)v;
        out->numel *= v;
    }
    out->data = malloc(out->numel);
    if (!out->data) {
        kn_rt_errf(err, errcap, "%s: out of memory for %zu bytes", path, out->numel);
        goto done;
    }
    if (read_exact(g, out->data, out->numel)) {
        int zerr;
        const char *msg = gzerror(g, &zerr);
        kn_rt_errf(err, errcap, "%s: truncated IDX data (expected %zu bytes%s%s)", path, out->numel,
                   zerr != Z_OK ? ": " : "", zerr != Z_OK ? msg : "");
        goto done;
    }
    rc = 0;
done:
    gzclose(g);
    if (rc) kn_idx_free(out);
    return rc;
}

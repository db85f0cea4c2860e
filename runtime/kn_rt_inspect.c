/* kn_rt_inspect.c — --dump-grads and --retain for `train`. */
#include "kn_rt_inspect.h"

#include "kn_rt_afile.h"
#include "kn_rt_arena.h"
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void kn_rt_npy_path(char *buf, size_t cap, const char *dir, const char *name, const char *suffix)
{
    size_t at = (size_t)snprintf(buf, cap, "%s/", dir);
    snprintf(buf + (at < cap ? at : cap - 1), at < cap ? cap - at : 1, "%s%s.npy", name, suffix);
    for (char *p = buf + (at < cap ? at : cap - 1); *p; p++)
        if (*p == '/') *p = '_';
}

/* Levenshtein distance, capped: enough to suggest a near-miss name. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

static int find_value(const kn_rt_phase *ph, const char *name, size_t len)
{
    for (int i = 0; i < ph->n_values; i++)
        if (strlen(ph->values[i].name) == len && !strncmp(ph->values[i].name, name, len)) return i;
    return -1;
}

static void unknown_value(const kn_rt_phase *ph, const char *name, size_t len, char *err, size_t cap)
{
    char want[64];
    snprintf(want, sizeof want, "%.*s", (int)(len < 63 ? len : 63), name);
    int best = -1, best_d = 4;
    for (int i = 0; i < ph->n_values; i++) {
        int dd = edit_distance(want, ph->values[i].name);
        if (dd < best_d) best_d = dd, best = i;
    }
    if (best >= 0)
        snprintf(err, cap, "--retain: the %s phase computes no value '%s' (did you mean '%s'?)", ph->name, want,
                 ph->values[best].name);
    else
        snprintf(err, cap, "--retain: the %s phase computes no value '%s' (`info` lists the layers)", ph->name,
                 want);
}

int kn_rt_retain_open(kn_rt_retain *r, const kn_rt_phase *ph, const char *names, int capacity, char *err,
                      size_t cap)
{
    memset(r, 0, sizeof *r);
    r->phase = ph;
    int count = 1;
    for (const char *p = names; *p; p++) count += *p == ',';
    r->io = calloc((size_t)count, sizeof *r->io);
    r->node = calloc((size_t)count, sizeof *r->node);
    r->buf = calloc((size_t)count, sizeof *r->buf);
    r->batch = calloc((size_t)count, sizeof *r->batch);
    if (!r->io || !r->node || !r->buf || !r->batch) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    for (const char *p = names; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len) {
            int v = find_value(ph, p, len);
            if (v < 0) {
                unknown_value(ph, p, len, err, cap);
                return -1;
            }
            const kn_rt_io *io = &ph->values[v];
            size_t bytes = io->sample_numel * (io->batched ? (size_t)capacity : 1) * kn_rt_dtype_size(io->dtype);
            r->io[r->n] = io;
            r->node[r->n] = ph->value_node[v];
            r->batch[r->n] = -1;
            if (!(r->buf[r->n] = malloc(bytes ? bytes : 1))) {
                snprintf(err, cap, "out of memory");
                return -1;
            }
            r->n++;
        }
        p += len + (end != NULL);
    }
    if (r->n == 0) {
        snprintf(err, cap, "--retain: expected NAME[,NAME...]");
        return -1;
    }
    return 0;
}

static void capture(kn_rt_ctx *ctx, int node, int n)
{
    kn_rt_retain *r = ctx->probe_user;
    for (int i = 0; i < r->n; i++) {
        if (r->node[i] != node) continue;
        const kn_rt_io *io = r->io[i];
        size_t bytes = io->sample_numel * (io->batched ? (size_t)n : 1) * kn_rt_dtype_size(io->dtype);
        memcpy(r->buf[i], kn_rt_io_ptr(ctx, r->phase, io, n), bytes);
        r->batch[i] = n;
    }
}

void kn_rt_retain_attach(kn_rt_retain *r, kn_rt_ctx *ctx)
{
    ctx->probe = capture;
    ctx->probe_user = r;
}

int kn_rt_retain_write(const kn_rt_retain *r, const char *dir, char *err, size_t cap)
{
    if (kn_rt_mkdir_p(dir)) {
        snprintf(err, cap, "%s: cannot create directory: %s", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < r->n; i++) {
        const kn_rt_io *io = r->io[i];
        if (r->batch[i] < 0) continue; /* its node has not run yet */
        int64_t dims[KN_RT_MAX_RANK];
        memcpy(dims, io->dims, sizeof dims);
        if (io->batched) dims[0] = r->batch[i];
        char path[4096];
        kn_rt_npy_path(path, sizeof path, dir, io->name, "");
        if (kn_npy_write(path, io->dtype, io->rank, dims, r->buf[i], err, cap)) return -1;
    }
    return 0;
}

void kn_rt_retain_close(kn_rt_retain *r)
{
    for (int i = 0; r->buf && i < r->n; i++) free(r->buf[i]);
    free(r->io);
    free(r->node);
    free(r->buf);
    free(r->batch);
    memset(r, 0, sizeof *r);
}

int kn_rt_dump_grads(const kn_rt_model *m, const float *grads, float scale, const char *dir, char *err, size_t cap)
{
    if (kn_rt_mkdir_p(dir)) {
        snprintf(err, cap, "%s: cannot create directory: %s", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < m->n_params; i++) {
        const kn_rt_param *p = &m->params[i];
        if (p->role != KN_RT_TRAINABLE) continue;
        float *g = malloc((p->numel ? p->numel : 1) * sizeof *g);
        if (!g) {
            snprintf(err, cap, "out of memory");
            return -1;
        }
        for (size_t k = 0; k < p->numel; k++) g[k] = grads[p->offset + k] * scale;
        char path[4096];
        kn_rt_npy_path(path, sizeof path, dir, p->name, ".grad");
        int rc = kn_npy_write(path, KN_RT_F32, p->rank, p->dims, g, err, cap);
        free(g);
        if (rc) return -1;
    }
    return 0;
}

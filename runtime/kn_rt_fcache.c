/* kn_rt_fcache.c — see kn_rt_fcache.h. */
#include "kn_rt_fcache.h"

#include "kn_rt_arena.h"
#include "kn_rt_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t kn_fcache_bytes(const kn_rt_model *m, int count)
{
    const kn_rt_io *out = m->features ? kn_rt_io_find(m->features, KN_RT_IO_OUTPUT, NULL) : NULL;
    return out ? out->sample_numel * sizeof(float) * (size_t)count : 0;
}

int kn_fcache_fill(kn_fcache *c, const kn_rt_model *m, kn_rt_ctx *ctx, kn_dataset *d, int count, int batch,
                   char *err, size_t errcap)
{
    memset(c, 0, sizeof *c);
    const kn_rt_phase *ph = m->features;
    const kn_rt_io *in = kn_rt_io_find(ph, KN_RT_IO_INPUT, NULL);
    c->out = kn_rt_io_find(ph, KN_RT_IO_OUTPUT, NULL);
    if (!in || !c->out) {
        snprintf(err, errcap, "features phase of model %s lacks an input or output", m->name);
        return -1;
    }
    c->numel = c->out->sample_numel;
    c->count = count;
    c->data = malloc(c->numel * sizeof(float) * (size_t)(count > 0 ? count : 1));
    if (!c->data) {
        snprintf(err, errcap, "out of memory caching %d x %zu features", count, c->numel);
        return -1;
    }
    const float *norm = kn_cli_norm(m);
    int was_training = ctx->training;
    ctx->training = 0;
    kn_data_prefetch(d, NULL, 0, count < batch ? count : batch);
    for (int start = 0; start < count; start += batch) {
        int n = count - start < batch ? count - start : batch;
        if (kn_data_features(d, norm, NULL, start, n, kn_rt_io_ptr(ctx, ph, in, n))) {
            snprintf(err, errcap, "%s", d->err);
            ctx->training = was_training;
            return -1;
        }
        int next = start + batch;
        if (next < count) kn_data_prefetch(d, NULL, next, count - next < batch ? count - next : batch);
        ph->run(ctx, n);
        memcpy(c->data + (size_t)start * c->numel, kn_rt_io_ptr(ctx, ph, c->out, n),
               (size_t)n * c->numel * sizeof(float));
    }
    ctx->training = was_training;
    return 0;
}

void kn_fcache_gather(const kn_fcache *c, const int *idx, int start, int n, float *dst)
{
    for (int i = 0; i < n; i++) {
        size_t s = (size_t)(idx ? idx[i] : start + i);
        memcpy(dst + (size_t)i * c->numel, c->data + s * c->numel, c->numel * sizeof(float));
    }
}

void kn_fcache_free(kn_fcache *c)
{
    free(c->data);
    memset(c, 0, sizeof *c);
}

void kn_fcache_pool_free(kn_fcache_pool *p)
{
    for (int i = 0; i < 3; i++) kn_fcache_free(&p->cache[i]);
    memset(p, 0, sizeof *p);
}

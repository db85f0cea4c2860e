/* kn_rt_ckpt.c — see kn_rt_ckpt.h. */
#include "kn_rt_ckpt.h"
#include "kn_rt_err.h"
#include "kn_rt_init.h"

#include <stdlib.h>

static const kn_rt_param *find_param(const kn_rt_model *m, const char *name)
{
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return &m->params[i];
    return NULL;
}

static int same_shape(const kn_rt_param *p, const kn_st_tensor *t)
{
    if (t->dtype != KN_RT_F32 || t->rank != p->rank) return 0;
    for (int d = 0; d < p->rank; d++)
        if (t->dims[d] != p->dims[d]) return 0;
    return 1;
}

void kn_rt_ckpt_init_state(const kn_rt_model *m, float *weights, uint64_t seed)
{
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].role == KN_RT_STATE)
            kn_rt_init_param(&m->params[i], weights + m->params[i].offset, seed, (uint64_t)i);
}

int kn_rt_ckpt_apply(const kn_rt_model *m, float *weights, const kn_st_file *f,
                     const char *path, char *err, size_t errcap)
{
    return kn_rt_ckpt_apply_ex(m, weights, f, path, 0, err, errcap);
}

int kn_rt_ckpt_apply_ex(const kn_rt_model *m, float *weights, const kn_st_file *f,
                        const char *path, int flags, char *err, size_t errcap)
{
    char a[128], b[128];
    /* Unknown names first: a checkpoint of another model usually shows up
     * as both missing and extra tensors, and its names are the better clue. */
    for (int i = 0; i < f->n; i++) {
        const kn_st_tensor *t = &f->t[i];
        if (strncmp(t->name, "optim.", 6) == 0 || find_param(m, t->name)) continue;
        return kn_rt_errf(err, errcap, "%s: unknown tensor '%s' %s (model %s has no such parameter or buffer)",
                          path, t->name, kn_st_shape_str(t->dtype, t->rank, t->dims, a, sizeof a),
                          m->name);
    }
    for (int i = 0; i < m->n_params; i++) {
        const kn_rt_param *p = &m->params[i];
        const kn_st_tensor *t = kn_st_find(f, p->name);
        kn_st_shape_str(KN_RT_F32, p->rank, p->dims, a, sizeof a);
        if (!t && p->role == KN_RT_STATE && !(flags & KN_CKPT_REQUIRE_STATE)) continue;
        if (!t)
            return kn_rt_errf(err, errcap, "%s: missing tensor '%s' (expected %s)%s", path, p->name, a,
                              p->role == KN_RT_STATE ? "; optimizer state is required to resume" : "");
        if (!same_shape(p, t))
            return kn_rt_errf(err, errcap, "%s: tensor '%s' has shape %s, expected %s", path, p->name,
                              kn_st_shape_str(t->dtype, t->rank, t->dims, b, sizeof b), a);
    }
    for (int i = 0; i < m->n_params; i++) {
        const kn_rt_param *p = &m->params[i];
        const kn_st_tensor *t = kn_st_find(f, p->name);
        if (t) memcpy(weights + p->offset, t->data, p->numel * sizeof(float));
    }
    return 0;
}

int kn_rt_ckpt_load(const kn_rt_model *m, float *weights, const char *path,
                    char *err, size_t errcap)
{
    kn_st_file f;
    if (kn_st_read(path, &f, err, errcap)) return -1;
    int rc = kn_rt_ckpt_apply(m, weights, &f, path, err, errcap);
    kn_st_free(&f);
    return rc;
}

int kn_rt_ckpt_save(const kn_rt_model *m, const float *weights, const char *path,
                    const kn_st_tensor *extra, int n_extra,
                    const char *const *meta_key, const char *const *meta_val, int n_meta,
                    char *err, size_t errcap)
{
    int n = m->n_params + (n_extra > 0 ? n_extra : 0);
    kn_st_tensor *t = calloc((size_t)n + 1, sizeof *t);
    const char **mk = calloc((size_t)n_meta + 2, sizeof *mk);
    const char **mv = calloc((size_t)n_meta + 2, sizeof *mv);
    if (!t || !mk || !mv) {
        free(t); free(mk); free(mv);
        return kn_rt_errf(err, errcap, "%s: out of memory", path);
    }
    for (int i = 0; i < m->n_params; i++) {
        const kn_rt_param *p = &m->params[i];
        t[i].name = (char *)p->name;
        t[i].dtype = KN_RT_F32;
        t[i].rank = p->rank;
        memcpy(t[i].dims, p->dims, sizeof t[i].dims);
        t[i].numel = p->numel;
        t[i].data = (void *)(weights + p->offset);
    }
    for (int i = 0; i < n_extra; i++) t[m->n_params + i] = extra[i];
    int k = 0;
    mk[k] = "model"; mv[k++] = m->name ? m->name : "";
    mk[k] = "model_hash"; mv[k++] = m->hash ? m->hash : "";
    for (int i = 0; i < n_meta; i++) {
        mk[k] = meta_key[i];
        mv[k++] = meta_val[i];
    }
    int rc = kn_st_write(path, t, n, mk, mv, k, err, errcap);
    free(t); free(mk); free(mv);
    return rc;
}

/* kn_rt_fcache.h — cached outputs of a model's frozen prefix.
 *
 * When the compiler found a frozen prefix (kn_rt_model.features), the
 * prefix's output for a sample never changes while training: compute it
 * once per sample with the `features` phase, keep it here, and train the
 * head (`head_train`) on it in every epoch.  Memory only: one float array
 * per split. */
#ifndef KN_RT_FCACHE_H
#define KN_RT_FCACHE_H

#include "kn_data.h"
#include "kn_rt.h"

#include <stddef.h>

typedef struct {
    const kn_rt_io *out;     /* the features phase's output = the heads' input */
    size_t numel;            /* floats per sample */
    int count;               /* samples cached */
    float *data;             /* count * numel */
} kn_fcache;

/* Bytes a cache of `count` samples takes, for the go/no-go decision. */
size_t kn_fcache_bytes(const kn_rt_model *m, int count);
/* Runs m->features over samples [0, count) of d in batches of `batch`
 * (ctx's arena must fit it).  -1 with the message in err (an unreadable
 * image, out of memory). */
int kn_fcache_fill(kn_fcache *c, const kn_rt_model *m, kn_rt_ctx *ctx, kn_dataset *d, int count, int batch,
                   char *err, size_t errcap);
/* Copies samples idx[0..n) (or start..start+n when idx is NULL) to dst. */
void kn_fcache_gather(const kn_fcache *c, const int *idx, int start, int n, float *dst);
void kn_fcache_free(kn_fcache *c);

/* Caches kept across the train runs of one process (`sweep`): valid for the
 * same seed (frozen layers initialised from it) and sample counts. */
typedef struct kn_fcache_pool {
    int valid;
    uint64_t seed;
    int counts[3];
    kn_fcache cache[3];      /* train, val, test */
} kn_fcache_pool;
void kn_fcache_pool_free(kn_fcache_pool *p);

#endif

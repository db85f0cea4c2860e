/* kn_safetensors.h — the safetensors format, generic: a list of named F32 /
 * I64 tensors plus a string map in __metadata__.  Knows nothing of models
 * (see kn_rt_ckpt.h for that), so training can add `optim.*` state. */
#ifndef KN_SAFETENSORS_H
#define KN_SAFETENSORS_H

#include "kn_rt.h"

typedef struct {
    char *name;
    int dtype;               /* KN_RT_F32 or KN_RT_I64 */
    int rank;
    int64_t dims[KN_RT_MAX_RANK];
    size_t numel;
    void *data;              /* numel elements, host (little-endian) order */
} kn_st_tensor;

typedef struct {
    int n;
    kn_st_tensor *t;         /* in header order */
    int n_meta;
    char **meta_key, **meta_val;
} kn_st_file;

/* Reads and validates the whole file; every tensor's data is copied into
 * its own malloc'd buffer.  Errors name the file and, where there is one,
 * the tensor. */
int kn_st_read(const char *path, kn_st_file *out, char *err, size_t errcap);
void kn_st_free(kn_st_file *f);
const kn_st_tensor *kn_st_find(const kn_st_file *f, const char *name);
const char *kn_st_meta(const kn_st_file *f, const char *key);

/* Writes atomically (kn_rt_afile.h); tensors are stored in the given
 * order.  Only `name,dtype,rank,dims,data` of each tensor are used. */
int kn_st_write(const char *path, const kn_st_tensor *t, int n,
                const char *const *meta_key, const char *const *meta_val, int n_meta,
                char *err, size_t errcap);

/* "f32[10,784]" for messages. */
const char *kn_st_shape_str(int dtype, int rank, const int64_t *dims, char *buf, size_t cap);

#endif

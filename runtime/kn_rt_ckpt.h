/* kn_rt_ckpt.h — model checkpoints: every parameter and buffer under its
 * IR name, F32, in a safetensors file.  Tensors under `optim.` belong to
 * training and are ignored by the weight loader. */
#ifndef KN_RT_CKPT_H
#define KN_RT_CKPT_H

#include "kn_rt.h"
#include "kn_safetensors.h"

/* Copies all of m's params/buffers from an already-read file into the
 * blob.  Missing, unknown (non-`optim.`) or mis-shaped tensors are errors:
 * "PATH: missing tensor 'fc0.bias' (expected f32[10])". */
int kn_rt_ckpt_apply(const kn_rt_model *m, float *weights, const kn_st_file *f,
                     const char *path, char *err, size_t errcap);
/* kn_st_read + kn_rt_ckpt_apply. */
int kn_rt_ckpt_load(const kn_rt_model *m, float *weights, const char *path,
                    char *err, size_t errcap);

/* Writes every param/buffer, then `extra` tensors (e.g. optim.* state),
 * with metadata `model` and `model_hash` added to the caller's pairs
 * (epoch, step, seed ...). */
int kn_rt_ckpt_save(const kn_rt_model *m, const float *weights, const char *path,
                    const kn_st_tensor *extra, int n_extra,
                    const char *const *meta_key, const char *const *meta_val, int n_meta,
                    char *err, size_t errcap);

#endif

/* kn_rt_ckpt.h — model checkpoints: every parameter and buffer under its
 * IR name, F32, in a safetensors file.  Optimizer state (KN_RT_STATE
 * params, named `optim.<param>.m` ...) is saved like any other param; when
 * loading it is optional unless KN_CKPT_REQUIRE_STATE (train --resume), and
 * an absent STATE tensor leaves the blob's value (its init) untouched.
 * Other `optim.*` tensors the model does not know are ignored, so a
 * checkpoint trained with Adam loads into an inference-only build. */
#ifndef KN_RT_CKPT_H
#define KN_RT_CKPT_H

#include "kn_rt.h"
#include "kn_safetensors.h"

/* Copies all of m's params/buffers (and the STATE tensors present) from an
 * already-read file into the blob.  Missing, unknown (non-`optim.`) or
 * mis-shaped tensors are errors:
 * "PATH: missing tensor 'fc0.bias' (expected f32[10])".  Nothing is copied
 * unless the whole file checks out. */
int kn_rt_ckpt_apply(const kn_rt_model *m, float *weights, const kn_st_file *f,
                     const char *path, char *err, size_t errcap);
enum { KN_CKPT_REQUIRE_STATE = 1 };
int kn_rt_ckpt_apply_ex(const kn_rt_model *m, float *weights, const kn_st_file *f,
                        const char *path, int flags, char *err, size_t errcap);
/* Initialises only the STATE params (their init kind), so a following load
 * that lacks them leaves them at their init. */
void kn_rt_ckpt_init_state(const kn_rt_model *m, float *weights, uint64_t seed);
/* kn_st_read + kn_rt_ckpt_apply. */
int kn_rt_ckpt_load(const kn_rt_model *m, float *weights, const char *path,
                    char *err, size_t errcap);

/* Writes every param/buffer/STATE, then `extra` tensors,
 * with metadata `model` and `model_hash` added to the caller's pairs
 * (epoch, step, seed ...). */
int kn_rt_ckpt_save(const kn_rt_model *m, const float *weights, const char *path,
                    const kn_st_tensor *extra, int n_extra,
                    const char *const *meta_key, const char *const *meta_val, int n_meta,
                    char *err, size_t errcap);

#endif

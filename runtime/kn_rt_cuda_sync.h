/* kn_rt_cuda_sync.h — which copy of the weight and gradient blobs is
 * current, the host's or the device's, and when a copy is due.
 *
 * The decisions only: the backend does the copies through `copy`.  Kept
 * apart from kn_rt_cuda.c (and free of CUDA headers) so the tests' host
 * emulation of the GPU (tests/support/cuda_emu.c) runs the very rule the
 * GPU backend runs and can count the copies it asks for.  The rule itself
 * is stated in kn_rt_cuda.c's header comment.
 */
#ifndef KN_RT_CUDA_SYNC_H
#define KN_RT_CUDA_SYNC_H

#include "kn_rt.h"

enum { KN_CUDA_SYNC_WEIGHTS = 0, KN_CUDA_SYNC_GRADS = 1, KN_CUDA_SYNC_N = 2 }; /* blob index */

typedef enum {
    KN_CUDA_SAME = 0,         /* host and device hold the same values */
    KN_CUDA_HOST_NEWER,       /* the host changed it: upload before the next phase */
    KN_CUDA_DEVICE_NEWER      /* a phase changed it: download before the host looks */
} kn_cuda_blob_state;

/* Copies all of blob `blob` (KN_CUDA_SYNC_*) of ctx up (to_device) or
 * down; a download is complete when it returns.  0, or -1 with the error
 * already reported. */
typedef int (*kn_cuda_copy_fn)(void *backend, kn_rt_ctx *ctx, int blob, int to_device);

typedef struct {
    kn_cuda_blob_state state[KN_CUDA_SYNC_N];
    kn_cuda_copy_fn copy;
    void *backend;
} kn_cuda_sync;

/* Fresh device blobs hold nothing yet: both start HOST_NEWER. */
void kn_cuda_sync_init(kn_cuda_sync *s, kn_cuda_copy_fn copy, void *backend);
/* Before a phase's launches: uploads every blob the host changed (the
 * gradients only once the host has a gradient blob). */
int kn_cuda_sync_before_phase(kn_cuda_sync *s, kn_rt_ctx *ctx);
/* After phase ph of m ran on the device: the blobs it writes are
 * DEVICE_NEWER. */
void kn_cuda_sync_after_phase(kn_cuda_sync *s, const kn_rt_model *m, const kn_rt_phase *ph);
/* KN_RT_BLOB_* mask of what phase ph of m writes: train and head_train
 * add into the gradients and move batchnorm's running statistics (in the
 * weight blob), update steps the weights and optimizer state and clears
 * the gradients; infer, features and head_infer only read. */
int kn_cuda_phase_writes(const kn_rt_model *m, const kn_rt_phase *ph);
/* Downloads the blobs of `blobs` (KN_RT_BLOB_* mask) that are DEVICE_NEWER. */
int kn_cuda_sync_to_host(kn_cuda_sync *s, kn_rt_ctx *ctx, int blobs);
/* The host changed the blobs of `blobs`: HOST_NEWER, whatever the device
 * did before (the host's write wins). */
void kn_cuda_sync_host_wrote(kn_cuda_sync *s, int blobs);

#endif

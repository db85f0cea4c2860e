/* kn_rt_inputs.h — synthetic inputs for a phase (bench, gradcheck).
 *
 * The values live outside the arena: the memory planner may reuse an input's
 * slot once its last reader ran, so every call restores them first. */
#ifndef KN_RT_INPUTS_H
#define KN_RT_INPUTS_H

#include "kn_rt.h"

typedef struct {
    const kn_rt_phase *ph;
    int n;
    void **data;   /* per io: a copy for INPUT/LABEL ios, else NULL */
    size_t *bytes;
} kn_rt_inputs;

/* Seeded random inputs for batch n: features uniform in [0,1) or standard
 * normal, labels in range of the phase's first output's classes so a loss
 * sees legal targets. */
void kn_rt_inputs_random(kn_rt_inputs *in, const kn_rt_phase *ph, int n, uint64_t seed, int normal);
/* Copies the inputs into the arena for a call with batch in->n. */
void kn_rt_inputs_restore(const kn_rt_inputs *in, kn_rt_ctx *ctx);
void kn_rt_inputs_free(kn_rt_inputs *in);

#endif

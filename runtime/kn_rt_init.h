/* kn_rt_init.h — fresh weights with PyTorch-default semantics, drawn from
 * the counter RNG so a (seed, model) pair always gives the same blob. */
#ifndef KN_RT_INIT_H
#define KN_RT_INIT_H

#include "kn_rt.h"

/* Fills dst[0..p->numel) for one parameter; `stream` keeps parameters'
 * draws independent (the runtime uses the parameter's index). */
void kn_rt_init_param(const kn_rt_param *p, float *dst, uint64_t seed, uint64_t stream);

/* Initialises every parameter and buffer of m into weights (the blob). */
void kn_rt_init_weights(const kn_rt_model *m, float *weights, uint64_t seed);

/* The uniform bound / normal std the init kind uses (0 for constant kinds). */
double kn_rt_init_scale(const kn_rt_param *p);

#endif

/* kn_rt_profile.h — time per node of a phase, through the probe hook that
 * generated code calls after every node (`bench --profile`). */
#ifndef KN_RT_PROFILE_H
#define KN_RT_PROFILE_H

#include "kn_rt.h"

#include <stdio.h>

typedef struct {
    const kn_rt_phase *phase;
    int n_nodes;
    double *ms;      /* summed per node over the profiled calls */
    double last;     /* clock after the previous node (or the call start) */
    int calls;
} kn_rt_profile;

/* Sizes the table for `phase`; 0 or -1 (out of memory). */
int kn_rt_profile_init(kn_rt_profile *p, const kn_rt_phase *phase);
/* Installs the probe on ctx and starts the clock of one call. */
void kn_rt_profile_begin(kn_rt_profile *p, kn_rt_ctx *ctx);
/* Ends one call: removes the probe. */
void kn_rt_profile_end(kn_rt_profile *p, kn_rt_ctx *ctx);
/* Prints the nodes by time, heaviest first, with their share of the phase;
 * nodes are named by the value they compute. */
void kn_rt_profile_print(const kn_rt_profile *p, FILE *out, int top);
void kn_rt_profile_free(kn_rt_profile *p);

#endif

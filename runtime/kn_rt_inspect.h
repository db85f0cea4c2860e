/* kn_rt_inspect.h — looking inside a compiled model while it trains:
 * `train --dump-grads DIR` (every trainable parameter's gradient) and
 * `--retain NAME,...` (intermediate values, captured right after the node
 * that computes them, before the memory planner reuses their bytes). */
#ifndef KN_RT_INSPECT_H
#define KN_RT_INSPECT_H

#include "kn_rt.h"

#include <stddef.h>

typedef struct {
    const kn_rt_phase *phase;
    int n;                   /* retained values */
    const kn_rt_io **io;
    int *node;               /* node after which value i is captured */
    unsigned char **buf;     /* captured bytes, sized for the ctx capacity */
    int *batch;              /* batch of the capture; -1 before the first */
} kn_rt_retain;

/* Looks up each comma-separated name among the phase's values; an unknown
 * name is an error naming it and the closest known one. */
int kn_rt_retain_open(kn_rt_retain *r, const kn_rt_phase *ph, const char *names, int capacity, char *err,
                      size_t cap);
/* Installs the capture hook on ctx (ctx->probe). */
void kn_rt_retain_attach(kn_rt_retain *r, kn_rt_ctx *ctx);
/* Writes DIR/<name>.npy for every captured value. */
int kn_rt_retain_write(const kn_rt_retain *r, const char *dir, char *err, size_t cap);
void kn_rt_retain_close(kn_rt_retain *r);

/* Writes DIR/<param>.grad.npy for every trainable parameter: grads * scale
 * (the mean gradient the optimizer is about to apply). */
int kn_rt_dump_grads(const kn_rt_model *m, const float *grads, float scale, const char *dir, char *err, size_t cap);

/* DIR/NAME.npy with '/' in NAME (ONNX names) turned into '_', so the file
 * stays inside DIR. */
void kn_rt_npy_path(char *buf, size_t cap, const char *dir, const char *name, const char *suffix);

#endif

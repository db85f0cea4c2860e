/* conv_internal.h — shared by the files of the conv2d op (conv.c, the
 * GEMM-based kernels, shape rule and gradient; conv_depthwise.c, the
 * depthwise kernels).  Private to ir/ops/. */
#ifndef KN_OPS_CONV_INTERNAL_H
#define KN_OPS_CONV_INTERNAL_H

#include "conv.h"
#include "op_util.h"

#include <math.h>

typedef kn_conv_geom conv_geom;

/* What follows the convolution sum in one pass over each output tile: the
 * bias, and on inference graphs the epilogue that passes/fuse_epilogue.c
 * folded in (a residual input R, then a clamp). */
typedef struct {
    bool bias, residual, act;
    bool affine; /* in_affine: x * S[c] + T[c] as the input is read (fuse_epilogue.c) */
    kn_ops_clamp clamp; /* act_min/act_max */
} conv_epilogue;

bool conv_is_1x1(const conv_geom *q);
bool conv_is_depthwise(const conv_geom *q);
/* Prints the `omp parallel for` of a loop doing `count` (a C expression)
 * times `work` operations; small loops stay on one thread. */
void conv_emit_parallel_for(kn_emit *e, const char *count, long long work);
/* Prints `dst = clamp(v)` with the epilogue's bounds. */
void conv_emit_store(kn_emit *e, const conv_epilogue *ep, const char *dst);
/* The depthwise kernel for q (NHWC in and out when `nhwc`). */
void conv_emit_depthwise_any(kn_emit *e, const conv_geom *q, const conv_epilogue *ep, const char *samples, bool nhwc);

#endif

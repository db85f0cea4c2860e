/* conv.h — the geometry of a conv2d node, for passes that rewrite convs
 * (passes/fuse_block.c) without re-reading its attributes themselves. */
#ifndef KN_OPS_CONV_H
#define KN_OPS_CONV_H

#include "op.h"

typedef struct {
    int64_t c, h, w;          /* input channels and size */
    int64_t oc, oh, ow;       /* output channels and size */
    int64_t kh, kw, sh, sw, ph, pw, dh, dw, groups;
    int64_t ph_end, pw_end;   /* bottom/right padding: differs from ph/pw only for ONNX's asymmetric pads */
} kn_conv_geom;

/* The geometry of conv2d node `n` (shapes must be inferred). */
kn_status kn_conv_geometry(const kn_graph *g, const kn_node *n, kn_conv_geom *q, kn_diag *d);

/* 1x1, stride 1, no padding: x is its own im2col. */
bool kn_conv_is_pointwise(const kn_conv_geom *q);
/* One filter per channel (groups == channels == out_channels). */
bool kn_conv_is_depthwise(const kn_conv_geom *q);

#endif

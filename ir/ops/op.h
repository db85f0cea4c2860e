/* op.h — the operator registry.
 *
 * One operator family = one file in ir/ops/ defining one or more kn_op_def,
 * each holding everything kiln knows about the op: its argument signature
 * (used by the model-file frontend), the parameters it creates, its shape
 * rule, its C emission, and slots for its gradient rule and CUDA emission.
 * registry.c lists them all in one table indexed by kn_op_id.
 *
 * Adding an op: add its enum entry here, write its file, add one line to the
 * table in registry.c.  Nothing else changes.
 */
#ifndef KN_OP_H
#define KN_OP_H

#include "../ir.h"
#include "../emit.h"

typedef enum {
    KN_OP_LINEAR,
    KN_OP_MATMUL,
    KN_OP_ADD,
    KN_OP_SUB,
    KN_OP_MUL,
    KN_OP_DIV,
    KN_OP_RELU,
    KN_OP_LEAKY_RELU,
    KN_OP_GELU,
    KN_OP_SIGMOID,
    KN_OP_TANH,
    KN_OP_SOFTMAX,
    KN_OP_LOG_SOFTMAX,
    KN_OP_BATCHNORM,
    KN_OP_DROPOUT,
    KN_OP_FLATTEN,
    KN_OP_RESHAPE,
    KN_OP_SUM,
    KN_OP_MEAN,
    KN_OP_ARGMAX,
    KN_OP_CROSS_ENTROPY,
    KN_OP_MSE,
    KN_OP_ACCUMULATE_GRAD,
    KN_OP_LINEAR_GRAD_WEIGHT, /* backward ops, built by gradient rules */
    KN_OP_MATMUL_GRAD,
    KN_OP_SUM_TO,
    KN_OP_REDUCE_GRAD,
    KN_OP_RELU_GRAD,
    KN_OP_LEAKY_RELU_GRAD,
    KN_OP_GELU_GRAD,
    KN_OP_SIGMOID_GRAD,
    KN_OP_TANH_GRAD,
    KN_OP_SOFTMAX_GRAD,
    KN_OP_LOG_SOFTMAX_GRAD,
    KN_OP_BATCHNORM_GRAD,
    KN_OP_DROPOUT_GRAD,
    KN_OP_CROSS_ENTROPY_GRAD,
    KN_OP_MSE_GRAD,
    KN_OP_CONV2D,             /* conv.c, pool.c, optim.c */
    KN_OP_CONV2D_GRAD_INPUT,
    KN_OP_CONV2D_GRAD_WEIGHT,
    KN_OP_MAX_POOL2D,
    KN_OP_AVG_POOL2D,
    KN_OP_GLOBAL_AVG_POOL,
    KN_OP_MAX_POOL2D_GRAD,
    KN_OP_AVG_POOL2D_GRAD,
    KN_OP_SGD_STEP,
    KN_OP_ADAM_STEP,
    KN_OP_CLIP,               /* clip.c, transpose.c, concat.c, pad.c (ONNX import) */
    KN_OP_CLIP_GRAD,
    KN_OP_TRANSPOSE,
    KN_OP_CONCAT,
    KN_OP_SLICE,
    KN_OP_PAD,
    KN_OP_ABS,                /* unary.c: table-driven elementwise math */
    KN_OP_NEG,
    KN_OP_EXP,
    KN_OP_LOG,
    KN_OP_SQRT,
    KN_OP_RECIPROCAL,
    KN_OP_FLOOR,
    KN_OP_CEIL,
    KN_OP_ROUND,
    KN_OP_SIGN,
    KN_OP_SIN,
    KN_OP_COS,
    KN_OP_TAN,
    KN_OP_ASIN,
    KN_OP_ACOS,
    KN_OP_ATAN,
    KN_OP_SINH,
    KN_OP_COSH,
    KN_OP_ASINH,
    KN_OP_ACOSH,
    KN_OP_ATANH,
    KN_OP_ERF,
    KN_OP_SOFTSIGN,
    KN_OP_SOFTPLUS,
    KN_OP_ELU,
    KN_OP_SELU,
    KN_OP_CELU,
    KN_OP_HARD_SIGMOID,
    KN_OP_HARD_SWISH,
    KN_OP_THRESHOLDED_RELU,
    KN_OP_SHRINK,
    KN_OP_UNARY_GRAD,
    KN_OP_REDUCE_SUM,         /* reduce_axes.c: reductions over any axes */
    KN_OP_REDUCE_MEAN,
    KN_OP_REDUCE_MAX,
    KN_OP_REDUCE_MIN,
    KN_OP_REDUCE_PROD,
    KN_OP_REDUCE_L1,
    KN_OP_REDUCE_L2,
    KN_OP_REDUCE_SUM_SQUARE,
    KN_OP_REDUCE_LOG_SUM,
    KN_OP_REDUCE_LOG_SUM_EXP,
    KN_OP_REDUCE_AXES_GRAD,
    KN_OP_ARGMIN,
    KN_OP_NLL_LOSS,           /* nll.c */
    KN_OP_NLL_LOSS_GRAD,
    KN_OP_MAX,                /* binary.c: function-like binaries */
    KN_OP_MIN,
    KN_OP_POW,
    KN_OP_BINARY_GRAD,
    KN_OP_TRILU,              /* trilu.c */
    KN_OP_HARDMAX,            /* hardmax.c */
    KN_OP_INVERTED_RESIDUAL,  /* inverted_residual.c (built by passes/fuse_block.c) */
    KN_OP_BN_FOLD,            /* batchnorm.c (built by passes/fuse_epilogue.c) */
    KN_OP_COUNT
} kn_op_id;

/* A non-tensor argument of an op, as written in a model file:
 *   linear(x, 512, bias=false)   ->  args "out" (INT, positional), "bias" (BOOL)
 * Positional arguments fill tensor inputs first (min_inputs..max_inputs),
 * then these specs in order.  The frontend stores every spec as a node
 * attribute, filling defaults, so emitters can rely on attributes existing. */
typedef struct {
    const char *name;
    kn_attr_kind kind;
    bool required;
    int64_t dflt_i;      /* INT / BOOL default */
    double dflt_f;       /* FLOAT default */
    const char *dflt_s;  /* STRING default (NULL = "") */
    /* INTS/FLOATS have no default other than empty. */
} kn_arg_spec;

typedef struct kn_op_def {
    const char *name;        /* model-file name: "linear" */
    int min_inputs, max_inputs; /* tensor inputs written by the user */
    const kn_arg_spec *args; /* terminated by {NULL} ; may be NULL */

    /* Creates the parameters/buffers the op owns (fc0.weight ...) once the
     * user inputs' shapes are known, appending them as node inputs.
     * NULL when the op has none. */
    kn_status (*add_params)(kn_graph *g, kn_node *n, kn_diag *d);

    /* Sets dtype/shape of every output from the inputs' shapes and the
     * attributes.  Reports mismatches naming the op, the node and shapes. */
    kn_status (*infer)(kn_graph *g, kn_node *n, kn_diag *d);

    /* Prints the C statements computing the node's outputs (see emit.h).
     * Must honour g->mode (dropout/batchnorm differ between train and eval). */
    kn_status (*emit_c)(kn_emit *e, const kn_graph *g, const kn_node *n);

    /* Reverse-mode rule: given dL/d(output k) value ids in dy[k] (-1 when an
     * output has no gradient), add IR nodes to g computing dL/d(input i) for
     * every i with need[i], storing the value id in dx[i] (-1 otherwise).
     * Gradients are built from IR ops so they go through the same passes.
     * `n` stays valid while nodes are added.  NULL = not differentiable. */
    kn_status (*grad)(kn_graph *g, const kn_node *n, const int *dy,
                      const bool *need, int *dx, kn_diag *d);

    /* True when the node writes state outside its outputs (optimizer steps,
     * gradient accumulation): dead-code elimination keeps it. */
    bool side_effects;

    /* True when, in train mode, the node's outputs are not a fixed function
     * of its inputs: random (dropout) or updating state (batchnorm's running
     * statistics).  Such nodes end a frozen prefix (passes/frozen_prefix.c).
     * NULL = always a fixed function. */
    bool (*train_impure)(const kn_graph *g, const kn_node *n);

    /* True for ops only passes create (backward ops, optimizer steps):
     * model files cannot name them. */
    bool internal;

    /* CUDA emission, filled by the CUDA backend work.  NULL for now. */
    kn_status (*emit_cuda)(kn_emit *e, const kn_graph *g, const kn_node *n);

    /* Multiply-accumulates per sample, for `kiln check`.  NULL = 0. */
    int64_t (*macs)(const kn_graph *g, const kn_node *n);

    /* Channels-last storage for passes/layout_nhwc.c (CPU inference): the
     * (input 0, output 0) layout pairs the C emitter supports, bit (2x + y)
     * with x/y = 1 for NHWC, plus KN_NHWC_PREFERRED when its NHWC kernel is
     * the faster one; the node reads the attributes x_nhwc/y_nhwc.
     * NULL = NCHW only. */
    unsigned (*nhwc_layouts)(const kn_graph *g, const kn_node *n);

    /* Elementwise ops: prints C statements that set the float variable
     * `out` from in[k], one C expression per input (its element at the loop
     * index, or the only element of a one-element input).  The C emitter
     * runs consecutive such nodes over one shape as one loop
     * (codegen/elem_runs.c).  NULL = not fusible. */
    void (*emit_elem)(kn_emit *e, const kn_graph *g, const kn_node *n, const char *const *in, const char *out);
    /* emit_elem joins runs of CUDA kernels only: the C code keeps the op's
     * own loop (dropout: its vectorised draw of four numbers per Philox
     * block would become one block per element). */
    bool elem_gpu_only;
} kn_op_def;

#define KN_ELEM_MAX_INPUTS 4

#define KN_NHWC_PREFERRED 0x10u

const kn_op_def *kn_op_get(int op);
/* Looks an op up by model-file name; -1 if unknown. */
int kn_op_lookup(const char *name);
/* Looks up any op by name, internal ones included (for passes). */
int kn_op_lookup_any(const char *name);
/* Nearest op name for a typo ("rellu" -> "relu"), or NULL if nothing close. */
const char *kn_op_suggest(const char *name);

/* Shared helpers for op files (ir/ops/common.c). */
/* NumPy broadcasting of two shapes; false (and a diag) when incompatible. */
kn_status kn_broadcast_shapes(const kn_shape *a, const kn_shape *b,
                              kn_shape *out, const kn_node *n,
                              const kn_graph *g, kn_diag *d);
/* Formats "op 'name'" + location prefix for messages. */
kn_status kn_op_error(kn_diag *d, const kn_graph *g, const kn_node *n,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* For gradient rules and passes: adds a node of `op` with `n_out` outputs.
 * Set its attributes, then call kn_op_finish to run its shape rule. */
kn_node *kn_op_build(kn_graph *g, int op, const char *name, const int *in,
                     int n_in, int n_out, kn_diag *d);
/* Runs the shape rule of a node built with kn_graph_add_node after its
 * attributes were set. */
kn_status kn_op_finish(kn_graph *g, kn_node *n, kn_diag *d);

/* Creates a parameter value "<node name>.<suffix>" and appends it as input. */
int kn_op_add_param(kn_graph *g, kn_node *n, const char *suffix,
                    kn_val_kind kind, const kn_shape *shape,
                    kn_init_kind init, int64_t fan_in, int64_t fan_out);

/* The weight initialisation chosen by the node's `init` string attribute
 * (linear, conv2d): "kaiming_uniform" (PyTorch's default), "kaiming_normal",
 * "xavier_uniform" or "xavier_normal"; anything else is an error naming the
 * choices. */
kn_status kn_op_weight_init(const kn_graph *g, const kn_node *n, kn_init_kind *out, kn_diag *d);

#endif

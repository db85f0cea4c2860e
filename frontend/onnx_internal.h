/* onnx_internal.h — state shared by the ONNX importer's files:
 * onnx_import.c (model, graph, names), onnx_tensor.c (TensorProto data),
 * onnx_fold.c (constant folding), onnx_ops.c (op converters).
 *
 * Every ONNX tensor name maps to an entry that is either a runtime IR value
 * or a host constant not yet placed in the graph: constants stay on the host
 * so shape chains fold, and become IR values only when a runtime op reads
 * them (kx_value).  A folded shape may hold the batch size, which is not a
 * number at import time: it is the sentinel KX_SYM_N.
 */
#ifndef KN_ONNX_INTERNAL_H
#define KN_ONNX_INTERNAL_H

#include "names.h"
#include "onnx_import.h"
#include "onnx.pb-c.h"

#include "../ir/ops/op.h"

#include <stdint.h>

/* The symbolic batch size inside folded i64 shape tensors. */
#define KX_SYM_N INT64_MIN
/* The opsets of the default domain kiln implements; each converter states
 * the first opset whose semantics it implements (kx_op_entry.since). */
#define KX_OPSET_MIN 1
#define KX_OPSET_MAX 21

/* A host tensor: f32 or i64, row-major, `data` owned. */
typedef struct {
    kn_dtype dtype;
    kn_shape shape;
    int64_t numel;
    void *data;
    int32_t onnx_type; /* element type in the file (QuantizeLinear's range); 0 when computed */
} kx_const;

typedef struct {
    char *name;
    int vid;          /* IR value, or -1 while only a constant */
    kx_const *c;      /* host data when known at import time, else NULL */
    bool initializer; /* from graph.initializer (keeps its name as a parameter) */
} kx_entry;

typedef struct {
    const char *path;   /* for messages */
    char *dir;          /* model folder for external data, NULL = refuse */
    kn_graph *g;
    kn_diag *d;
    /* Splicing into a model file (kn_onnx_splice_file); a plain import has
     * prefix "", trainable false, no location and every node needed. */
    const char *prefix; /* prepended to every IR value and node name made here */
    bool trainable;     /* parameters that hold initializers are trainable */
    kn_loc loc;         /* given to every IR node (the onnx(...) call) */
    const bool *needed; /* per ONNX node: convert it (NULL = all) */
    kn_onnx_blame blame; /* which onnx(...) argument the failure is about */
    char hint[512];     /* a hint for the failure, or "" */
    int64_t opset;
    kx_entry *tab;
    int n_tab, cap_tab;
    const Onnx__NodeProto *node; /* node being converted, for messages */
    int node_index;
} kx_importer;

/* ---- names (onnx_import.c) ---- */
kx_entry *kx_lookup(kx_importer *im, const char *name);
/* Binds an ONNX name to an IR value / a constant (takes ownership of c). */
void kx_bind_value(kx_importer *im, const char *name, int vid);
void kx_bind_const(kx_importer *im, const char *name, kx_const *c);
/* The constant behind input `i` of the current node, NULL when it is a
 * runtime tensor or absent. */
const kx_const *kx_input_const(kx_importer *im, int i);
/* Input `i` as an IR value (constants are placed in the graph: f32 as a
 * frozen parameter with data, i64 as a KN_VAL_CONST); -1 + diag if absent. */
int kx_input_value(kx_importer *im, int i);
/* Places a constant in the graph under prefix + `name` with kind
 * PARAM/BUFFER/CONST.  A PARAM is trainable when the importer's trainable
 * flag is set and `from_initializer` (Constant nodes stay frozen). */
int kx_place_const(kx_importer *im, const char *name, const kx_const *c, kn_val_kind kind, bool from_initializer);
/* True when input `i` of the current node is (still) a graph initializer. */
bool kx_input_is_initializer(kx_importer *im, int i);
bool kx_has_input(const kx_importer *im, int i);

/* "model.onnx: node 3 'conv_3' (Conv, opset 13): <msg>".  Returns KN_ERR. */
kn_status kx_fail(kx_importer *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- building IR (onnx_import.c) ---- */
/* Adds an IR node named after the current node's output 0 (plus `suffix`,
 * "" for the node itself) reading `in`.  Set attributes, then kx_finish. */
kn_node *kx_node(kx_importer *im, int op, const char *suffix, const int *in, int n_in);
/* Runs the op's add_params + shape rule; reports with the node's context. */
kn_status kx_finish(kx_importer *im, kn_node *n);
/* kx_finish, then binds output 0 of the current ONNX node to the node. */
kn_status kx_finish_bind(kx_importer *im, kn_node *n);

/* ---- graph level (onnx_import.c) ---- */
bool kx_is_initializer(const Onnx__GraphProto *gp, const char *name);
/* The dtype and shape of a graph input (a symbolic first dim is N). */
kn_status kx_input_type(kx_importer *im, const Onnx__ValueInfoProto *vi, kn_dtype *dt, kn_shape *s);
/* Makes ONNX tensor `onnx_name` available as the IR value `name` (renamed
 * when it is a plain intermediate, else copied); its id, or -1 + diag. */
int kx_expose(kx_importer *im, const char *onnx_name, const char *name);

/* ---- splicing (onnx_splice.c) ---- */
typedef struct {
    bool *needed;       /* per node: `until` depends on it */
    kf_names wanted;    /* tensor names the needed nodes read */
    const char *until;  /* the cut tensor (o->until or the only output) */
} kx_splice_plan;
/* Finds the cut tensor and the nodes it needs; blames until= when absent. */
kn_status kx_splice_prepare(kx_importer *im, const Onnx__GraphProto *gp, const kn_onnx_splice_opts *o,
                            kx_splice_plan *plan);
/* Binds the one graph input the needed nodes read to o->input after
 * checking dtype and shape. */
kn_status kx_splice_bind_input(kx_importer *im, const Onnx__GraphProto *gp, const kn_onnx_splice_opts *o,
                               const kx_splice_plan *plan);
void kx_splice_plan_free(kx_splice_plan *plan);

/* ---- attributes (onnx_import.c) ---- */
const Onnx__AttributeProto *kx_attr(const kx_importer *im, const char *name);
int64_t kx_attr_i(const kx_importer *im, const char *name, int64_t dflt);
double kx_attr_f(const kx_importer *im, const char *name, double dflt);
/* Copies an INTS attribute into out (cap entries); count, or -1 if absent. */
int kx_attr_ints(kx_importer *im, const char *name, int64_t *out, int cap);
/* A STRING attribute copied into buf (dflt when absent); returns buf. */
const char *kx_attr_s(const kx_importer *im, const char *name, const char *dflt, char *buf, size_t cap);

/* ---- tensors (onnx_tensor.c) ---- */
kn_status kx_tensor_load(kx_importer *im, const Onnx__TensorProto *t, kx_const **out);
kx_const *kx_const_new(kn_dtype dt, const kn_shape *s);
void kx_const_free(kx_const *c);
/* Element i as double / int64 whatever the dtype. */
double kx_const_f(const kx_const *c, int64_t i);
int64_t kx_const_i(const kx_const *c, int64_t i);

/* ---- converters ---- */
typedef kn_status (*kx_convert_fn)(kx_importer *im);
typedef struct {
    const char *op_type;
    int since;           /* first opset handled */
    kx_convert_fn fn;
} kx_op_entry;
/* The converter for op_type at the model's opset, NULL if unsupported. */
const kx_op_entry *kx_find_op(const char *op_type, int64_t opset);
/* onnx_fold.c: tries to fold the current node into constants.  *folded is
 * false when an input is a runtime tensor (then the caller emits IR). */
kn_status kx_try_fold(kx_importer *im, bool *folded);
/* Output shapes of Unsqueeze / Squeeze (axes from the attribute or input 1). */
kn_status kx_unsqueeze_shape(kx_importer *im, const kn_shape *in, kn_shape *out);
kn_status kx_squeeze_shape(kx_importer *im, const kn_shape *in, kn_shape *out);

#endif

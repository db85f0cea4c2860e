/* onnx_import.h — ONNX models in, IR out.
 *
 * Reads a ModelProto (protobuf-c bindings generated from Debian's
 * onnx.proto) into a kn_graph: graph inputs become KN_VAL_INPUT values
 * (a symbolic leading dim becomes the batch N), every
 * initializer that a node reads as a tensor becomes a frozen KN_VAL_PARAM
 * carrying its data (KN_INIT_DATA) under its ONNX name, node outputs keep
 * their ONNX tensor names, and shape-computation chains (Shape, Gather,
 * Unsqueeze, Concat, ...) are folded into constants so the graph is static.
 * Errors name the file, the node (name or index and output), the op type
 * and the opset.  Knows nothing of passes or code generation.
 */
#ifndef KN_ONNX_IMPORT_H
#define KN_ONNX_IMPORT_H

#include "../ir/ir.h"

/* Imports the model at `path`; external data files are resolved relative
 * to its folder. */
kn_status kn_onnx_import_file(const char *path, kn_graph **out, kn_diag *d);
/* Imports a model held in memory; `path` names it in messages and anchors
 * external data (may be NULL: then external data is refused). */
kn_status kn_onnx_import_buffer(const void *buf, size_t len, const char *path, kn_graph **out, kn_diag *d);

/* ---- splicing into a model file: name = onnx("m.onnx", input=x, until="t") ----
 *
 * The same importer adds the ONNX graph's nodes to `g` (a model file's graph
 * under construction) instead of a fresh graph: the graph input that the
 * cut depends on is fed by the existing value `input` (dtype and shape
 * checked, the symbolic batch matching N), only the nodes `until` depends on
 * are converted (so an unsupported op after the cut does not matter), every
 * IR value and node made is named `prefix` + its ONNX name, and the cut
 * tensor is exposed as the value `name`. */
typedef enum {
    KN_ONNX_BLAME_FILE,  /* the model itself (a node, an op, the file) */
    KN_ONNX_BLAME_INPUT, /* input=: dtype/shape mismatch, graph inputs */
    KN_ONNX_BLAME_UNTIL  /* until=: no such tensor */
} kn_onnx_blame;

typedef struct {
    int input;          /* value of g feeding the ONNX graph's input */
    const char *until;  /* tensor to cut at; NULL = the graph's only output */
    const char *prefix; /* "backbone." */
    const char *name;   /* name of the value computing `until` */
    bool trainable;     /* initializers become trainable parameters */
    kn_loc loc;         /* location given to every node made */
} kn_onnx_splice_opts;

typedef struct {
    int value;          /* the value named o->name */
    kn_onnx_blame blame;
    char hint[512];     /* "" or a hint for the error */
} kn_onnx_splice_result;

/* On failure g may hold part of the graph (the caller discards it) and `d`
 * has "PATH: error: node K 'name' (Op, opset V): message". */
kn_status kn_onnx_splice_file(kn_graph *g, const char *path, const kn_onnx_splice_opts *o,
                              kn_onnx_splice_result *r, kn_diag *d);

/* Reads a serialized TensorProto (the input_k.pb / output_k.pb files of
 * ONNX's test data) as f32 or i64; *data is malloc'd. */
kn_status kn_onnx_read_tensor(const char *path, kn_dtype *dt, kn_shape *shape, void **data, kn_diag *d);

#endif

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

/* Reads a serialized TensorProto (the input_k.pb / output_k.pb files of
 * ONNX's test data) as f32 or i64; *data is malloc'd. */
kn_status kn_onnx_read_tensor(const char *path, kn_dtype *dt, kn_shape *shape, void **data, kn_diag *d);

#endif

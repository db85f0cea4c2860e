/* export.h — `kiln export`: a model's inference graph as an ONNX file.
 *
 * cli/onnx_export.c maps an eval-mode IR graph (after kn_run_pipeline(g,
 * KN_MODE_EVAL, ...), as kn_cli_compile builds c->infer) to an ONNX
 * ModelProto (opset KN_ONNX_EXPORT_OPSET, ir_version 8) and writes it
 * atomically.  cli/export.c is the command: argument parsing, compiling
 * the model, and finding each parameter's values (checkpoint, imported
 * initializer, constant init).  The exporter lives in cli/ rather than
 * codegen/ because it needs the ONNX bindings and the runtime's safetensors
 * reader, which the code generator library does not link.
 *
 * Only what computes the model's `output` values is written: the loss,
 * labels, gradients and optimizer state are not part of the export.
 */
#ifndef KN_CLI_EXPORT_H
#define KN_CLI_EXPORT_H

#include "../ir/ir.h"

#define KN_ONNX_EXPORT_OPSET 17
#define KN_ONNX_EXPORT_IR_VERSION 8

/* Returns the values of parameter/buffer `v` (numel elements of v->dtype,
 * borrowed until the export returns), or NULL with the reason in `d`. */
typedef const void *(*kn_export_weights_fn)(void *ctx, const kn_value *v, kn_diag *d);

/* Writes `g` (eval mode) as ONNX to `path` (temp file + rename). */
kn_status kn_onnx_export(const kn_graph *g, kn_export_weights_fn weights, void *ctx, const char *path, kn_diag *d);

/* `kiln export MODEL [--set P=V] [--weights CKPT] -o OUT.onnx`; argv[0] is "export". */
int kn_cli_export(int argc, char **argv);

#endif

/* build.h — AST -> kn_graph: binds calls to registered ops, names to values,
 * creates parameters and infers shapes, reporting located errors. */
#ifndef KF_BUILD_H
#define KF_BUILD_H

#include "ast.h"
#include "source.h"
#include "frontend.h"

/* `o` may be NULL. */
kn_status kf_build(const kf_source *src, const kf_ast *ast, const kn_frontend_opts *o, kn_graph **out, kn_diag *d);
/* kn_model_file_deps on a parsed file (build_onnx.c). */
void kf_onnx_deps(const kf_source *src, const kf_ast *ast, const kn_frontend_opts *o, kn_strbuf *out);

#endif

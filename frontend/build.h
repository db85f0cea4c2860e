/* build.h — AST -> kn_graph: binds calls to registered ops, names to values,
 * creates parameters and infers shapes, reporting located errors. */
#ifndef KF_BUILD_H
#define KF_BUILD_H

#include "ast.h"
#include "source.h"

kn_status kf_build(const kf_source *src, const kf_ast *ast, kn_graph **out, kn_diag *d);

#endif

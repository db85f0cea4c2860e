/* parser.h — model-file statements -> AST (see ast.h for the shapes). */
#ifndef KF_PARSER_H
#define KF_PARSER_H

#include "ast.h"
#include "source.h"

/* Parses the whole file; on failure `d` holds the first error and the AST
 * must still be freed with kf_ast_free. */
kn_status kf_parse(const kf_source *src, kf_ast *ast, kn_diag *d);

#endif

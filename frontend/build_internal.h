/* build_internal.h — the builder state shared by build.c (statements, op
 * calls), build_params.c (`param` statements and --set) and build_onnx.c
 * (onnx(...) splices). */
#ifndef KF_BUILD_INTERNAL_H
#define KF_BUILD_INTERNAL_H

#include "build.h"
#include "frontend.h"
#include "names.h"

#include "../ir/ops/op.h"

typedef struct {
    const char *name;
    const kf_expr *value;   /* the literal in force (default or --set) */
    int line, col;          /* the `param` statement's name */
} kf_param;

typedef struct {
    const kf_source *src;
    const kn_frontend_opts *opts; /* never NULL (an empty one when the caller gave none) */
    kn_graph *g;
    kn_diag *d;
    const char *file;   /* interned in g */
    kf_names syms;      /* statement / input names -> value ids */
    kf_names used;      /* every graph value name -> value id */
    kf_names pnames;    /* param names -> index in params */
    kf_param *params;
    int n_params;
    kf_ast scratch;     /* expressions made while building (param substitutions) */
    int nested[KN_OP_COUNT]; /* next `_k` suffix per op within the current statement */
} kf_builder;

#define ERR(b, line, col, hint, ...) kf_error((b)->src, (b)->d, (line), (col), (hint), __VA_ARGS__)

/* build.c */
kn_status kf_resolve(kf_builder *b, const kf_expr *e, int *vid);
/* Records values the graph gained since `from` (node outputs, parameters). */
void kf_note_new_values(kf_builder *b, int from, int line, int col);

/* build_params.c */
/* Checks every --set names a `param` of the file, before building. */
kn_status kf_params_check_sets(kf_builder *b, const kf_ast *ast);
kn_status kf_build_param(kf_builder *b, const kf_stmt *s);
/* `e`, or the literal of the param it names (at e's position). */
const kf_expr *kf_subst(kf_builder *b, const kf_expr *e);

/* build_onnx.c */
kn_status kf_build_onnx(kf_builder *b, const kf_stmt *s, const kf_expr *e, int *vid);

#endif

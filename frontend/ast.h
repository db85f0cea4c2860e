/* ast.h — the parsed form of a model file: one statement per line.
 *
 * All AST memory comes from one bump arena (kf_ast.arena) freed at once.
 * The parser checks syntax and literal ranges; binding calls to ops, names
 * to values and shapes is build.c's job.
 */
#ifndef KF_AST_H
#define KF_AST_H

#include "../ir/ir.h"

#define KF_MAX_DEPTH 64 /* nesting of calls/tuples */

typedef enum { KX_IDENT, KX_INT, KX_FLOAT, KX_BOOL, KX_STRING, KX_TUPLE, KX_CALL } kf_expr_kind;

typedef struct kf_expr {
    kf_expr_kind kind;
    int line, col;
    const char *s;          /* IDENT name, STRING text, CALL op name */
    int64_t i;              /* INT, BOOL */
    double f;               /* FLOAT */
    int n;                  /* TUPLE items / CALL args */
    struct kf_expr **items;
    const char **keys;      /* CALL: keyword per arg, NULL if positional */
    int *key_cols;          /* CALL: column of each keyword */
} kf_expr;

typedef enum { KS_MODEL, KS_DATA, KS_INPUT, KS_LABEL, KS_ASSIGN, KS_OUTPUT, KS_TRAIN, KS_PARAM } kf_stmt_kind;

typedef enum { KTI_OPTIMIZER, KTI_BATCH, KTI_EPOCHS, KTI_SHUFFLE, KTI_SEED } kf_train_kind;

typedef struct {
    kf_train_kind kind;
    int line, col;
    int64_t i;        /* batch / epochs / seed */
    kf_expr *call;    /* optimizer NAME(kwargs) */
} kf_train_item;

typedef struct {
    kf_stmt_kind kind;
    int line, col;          /* the statement's first token */
    const char *name;       /* model name, value name (input/label/assign) */
    int name_line, name_col;
    kf_expr *expr;          /* ASSIGN: the call; DATA: kind + kwargs (as a call); PARAM: the default */
    kn_dtype dtype;         /* INPUT/LABEL */
    kn_shape shape;
    int n;                  /* OUTPUT names / TRAIN items */
    const char **names;
    int *name_cols;
    kf_train_item *items;
} kf_stmt;

typedef struct kf_arena_block kf_arena_block;

typedef struct {
    int n_stmts, cap_stmts;
    kf_stmt *stmts;
    kf_arena_block *arena;
    int eof_line;           /* last line of the file, for "missing X" errors */
} kf_ast;

void *kf_ast_alloc(kf_ast *a, size_t n);  /* zeroed */
const char *kf_ast_strndup(kf_ast *a, const char *s, size_t n);
void kf_ast_free(kf_ast *a);

#endif

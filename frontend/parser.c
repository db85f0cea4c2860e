/* parser.c — recursive-descent parser for .kiln model files.
 *
 *   file   := stmt { NEWLINE stmt }            (blank lines and # comments ignored)
 *   stmt   := 'model' NAME
 *           | 'data' NAME [ '(' args ')' ]
 *           | ('input' | 'label') NAME ':' DTYPE '[' [ dim { ',' dim } ] ']'
 *           | 'output' NAME { ',' NAME }
 *           | 'train' '{' { item } '}'          (may span lines)
 *           | 'param' NAME '=' literal          (overridable: kiln build --set NAME=VALUE)
 *           | NAME '=' expr
 *   item   := 'optimizer' NAME [ '(' args ')' ] | 'batch' INT | 'epochs' INT
 *           | 'shuffle' | 'seed' INT
 *   expr   := NAME [ '(' args ')' ] | INT | FLOAT | 'true' | 'false' | STRING
 *           | '(' number { ',' number } [ ',' ] ')'
 *   args   := [ arg { ',' arg } [ ',' ] ]       (newlines allowed inside parens)
 *   arg    := NAME '=' expr | expr
 *   dim    := INT >= 1 | 'N' (first dimension only)
 *   literal:= INT | FLOAT | 'true' | 'false' | STRING
 *
 * Keywords are contextual: `data = relu(x)` is an assignment.  Nesting is
 * capped at KF_MAX_DEPTH so hostile input cannot exhaust the stack.  This
 * file checks syntax and literal ranges only; meaning is build.c's job.
 */
#include "parser.h"

#include "lexer.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    kf_lexer lx;
    const kf_source *src;
    kf_ast *ast;
    kn_diag *d;
} kf_parser;

static const char *const STMT_KEYWORDS[] = {"model", "data", "input", "label", "output", "train", "param"};
static const char *const TRAIN_ITEMS[] = {"optimizer", "batch", "epochs", "shuffle", "seed"};

static const kf_token *peek(kf_parser *p, int k) { return kf_lex_peek(&p->lx, k); }
static void next(kf_parser *p) { kf_lex_next(&p->lx); }

static bool tok_is(const kf_token *t, const char *word)
{
    return t->kind == KT_IDENT && t->len == strlen(word) && memcmp(t->text, word, t->len) == 0;
}

static const char *tok_str(kf_parser *p, const kf_token *t)
{
    return kf_ast_strndup(p->ast, t->text, t->len);
}

static void tok_desc(const kf_token *t, char *buf, size_t cap)
{
    switch (t->kind) {
    case KT_IDENT:
    case KT_INT:
    case KT_FLOAT:
        snprintf(buf, cap, "'%.*s'", t->len > 40 ? 40 : (int)t->len, t->text);
        break;
    case KT_STRING: snprintf(buf, cap, "a string"); break;
    default: snprintf(buf, cap, "%s", kf_tok_name(t->kind)); break;
    }
}

/* Reports an error unless the lexer already did (its diag wins). */
static kn_status perr(kf_parser *p, int line, int col, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static kn_status perr(kf_parser *p, int line, int col, const char *hint, const char *fmt, ...)
{
    if (p->lx.failed) return KN_ERR;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kf_error(p->src, p->d, line, col, hint, "%s", msg);
}

/* "expected WHAT after CONTEXT, got X" at the current token. */
static kn_status expected(kf_parser *p, const char *what, const char *context, const char *hint)
{
    const kf_token *t = peek(p, 0);
    char got[64];
    tok_desc(t, got, sizeof got);
    return perr(p, t->line, t->col, hint, "expected %s%s%s, got %s", what,
                context ? " " : "", context ? context : "", got);
}

static void skip_newlines(kf_parser *p)
{
    while (peek(p, 0)->kind == KT_NEWLINE) next(p);
}

/* ---- expressions ---- */

static kn_status parse_expr(kf_parser *p, int depth, kf_expr **out);

static kf_expr *new_expr(kf_parser *p, kf_expr_kind k, const kf_token *t)
{
    kf_expr *e = kf_ast_alloc(p->ast, sizeof *e);
    e->kind = k;
    e->line = t->line;
    e->col = t->col;
    return e;
}

/* Growable pointer arrays in the arena: double into a fresh block. */
static void *grow(kf_parser *p, void *old, int n, int *cap, size_t elem)
{
    if (n < *cap) return old;
    int nc = *cap ? *cap * 2 : 4;
    void *q = kf_ast_alloc(p->ast, (size_t)nc * elem);
    if (old) memcpy(q, old, (size_t)n * elem);
    *cap = nc;
    return q;
}

/* After '(' of a call: args until ')'. */
static kn_status parse_args(kf_parser *p, kf_expr *call, int depth, const kf_token *open)
{
    int cap = 0, open_line = open->line, open_col = open->col;
    for (;;) {
        skip_newlines(p);
        const kf_token *t = peek(p, 0);
        if (t->kind == KT_RPAREN) { next(p); return KN_OK; }
        if (t->kind == KT_EOF)
            return perr(p, open_line, open_col, "close it with ')'", "unclosed '(' in call to '%s'", call->s);
        const char *key = NULL;
        int key_col = 0;
        if (t->kind == KT_IDENT && peek(p, 1)->kind == KT_EQ) {
            key = tok_str(p, t);
            key_col = t->col;
            next(p);
            next(p);
            skip_newlines(p);
        }
        kf_expr *arg;
        if (parse_expr(p, depth + 1, &arg)) return KN_ERR;
        int c2 = cap;
        call->items = grow(p, call->items, call->n, &c2, sizeof *call->items);
        int c3 = cap;
        call->keys = grow(p, call->keys, call->n, &c3, sizeof *call->keys);
        call->key_cols = grow(p, call->key_cols, call->n, &cap, sizeof *call->key_cols);
        call->items[call->n] = arg;
        call->keys[call->n] = key;
        call->key_cols[call->n] = key_col;
        call->n++;
        skip_newlines(p);
        t = peek(p, 0);
        if (t->kind == KT_COMMA) { next(p); continue; }
        if (t->kind == KT_RPAREN) { next(p); return KN_OK; }
        if (t->kind == KT_EOF && !p->lx.failed)
            return perr(p, open_line, open_col, "close it with ')'", "unclosed '(' in call to '%s'", call->s);
        char ctx[160];
        snprintf(ctx, sizeof ctx, "in the arguments of '%.64s'", call->s);
        return expected(p, "',' or ')'", ctx, "separate arguments with ','");
    }
}

static kn_status parse_tuple(kf_parser *p, kf_expr **out)
{
    const kf_token *open = peek(p, 0);
    kf_expr *e = new_expr(p, KX_TUPLE, open);
    int open_line = open->line, open_col = open->col, cap = 0;
    next(p);
    for (;;) {
        skip_newlines(p);
        const kf_token *t = peek(p, 0);
        if (t->kind == KT_RPAREN && e->n > 0) { next(p); break; }
        if (t->kind == KT_EOF && !p->lx.failed)
            return perr(p, open_line, open_col, "close it with ')'", "unclosed '(' of a tuple");
        if (t->kind != KT_INT && t->kind != KT_FLOAT)
            return expected(p, "a number", "in a tuple", "tuples hold numbers: (0.5, 0.5)");
        kf_expr *item = new_expr(p, t->kind == KT_INT ? KX_INT : KX_FLOAT, t);
        item->i = t->i;
        item->f = t->kind == KT_INT ? (double)t->i : t->f;
        e->items = grow(p, e->items, e->n, &cap, sizeof *e->items);
        e->items[e->n++] = item;
        next(p);
        skip_newlines(p);
        t = peek(p, 0);
        if (t->kind == KT_COMMA) { next(p); continue; }
        if (t->kind == KT_RPAREN) { next(p); break; }
        return expected(p, "',' or ')'", "in a tuple", "separate tuple items with ','");
    }
    *out = e;
    return KN_OK;
}

static kn_status parse_expr(kf_parser *p, int depth, kf_expr **out)
{
    const kf_token *t = peek(p, 0);
    if (depth > KF_MAX_DEPTH)
        return perr(p, t->line, t->col, "split the expression into several statements",
                    "expression nested too deeply (the limit is %d levels)", KF_MAX_DEPTH);
    kf_expr *e;
    switch (t->kind) {
    case KT_IDENT:
        if (tok_is(t, "true") || tok_is(t, "false")) {
            e = new_expr(p, KX_BOOL, t);
            e->i = tok_is(t, "true");
            next(p);
            break;
        }
        e = new_expr(p, KX_IDENT, t);
        e->s = tok_str(p, t);
        next(p);
        if (peek(p, 0)->kind == KT_LPAREN) {
            e->kind = KX_CALL;
            kf_token open = *peek(p, 0);
            next(p);
            if (parse_args(p, e, depth, &open)) return KN_ERR;
        }
        break;
    case KT_INT:
        e = new_expr(p, KX_INT, t);
        e->i = t->i;
        e->f = (double)t->i;
        next(p);
        break;
    case KT_FLOAT:
        e = new_expr(p, KX_FLOAT, t);
        e->f = t->f;
        next(p);
        break;
    case KT_STRING:
        e = new_expr(p, KX_STRING, t);
        e->s = kf_ast_strndup(p->ast, t->str, strlen(t->str));
        next(p);
        break;
    case KT_LPAREN:
        return parse_tuple(p, out);
    default:
        return expected(p, "a value", NULL,
                        "values are names, calls like relu(x), numbers, true/false, \"strings\" or (tuples)");
    }
    *out = e;
    return KN_OK;
}

/* ---- statements ---- */

static kf_stmt *new_stmt(kf_parser *p, kf_stmt_kind k, const kf_token *t)
{
    kf_ast *a = p->ast;
    if (a->n_stmts == a->cap_stmts) {
        a->cap_stmts = a->cap_stmts ? a->cap_stmts * 2 : 32;
        a->stmts = kn_xrealloc(a->stmts, (size_t)a->cap_stmts * sizeof *a->stmts);
    }
    kf_stmt *s = &a->stmts[a->n_stmts++];
    memset(s, 0, sizeof *s);
    s->kind = k;
    s->line = t->line;
    s->col = t->col;
    return s;
}

static kn_status expect_name(kf_parser *p, const char *context, const char *hint, kf_stmt *s)
{
    const kf_token *t = peek(p, 0);
    if (t->kind != KT_IDENT) return expected(p, "a name", context, hint);
    s->name = tok_str(p, t);
    s->name_line = t->line;
    s->name_col = t->col;
    next(p);
    return KN_OK;
}

static kn_status parse_decl(kf_parser *p, kf_stmt *s, const char *kw)
{
    char ctx[32];
    snprintf(ctx, sizeof ctx, "after '%s'", kw);
    const char *hint = "declare inputs as: input x: f32[N, 784]";
    if (expect_name(p, ctx, hint, s)) return KN_ERR;
    if (peek(p, 0)->kind != KT_COLON) return expected(p, "':'", "after the input's name", hint);
    next(p);
    const kf_token *t = peek(p, 0);
    if (tok_is(t, "f32")) s->dtype = KN_F32;
    else if (tok_is(t, "i64")) s->dtype = KN_I64;
    else if (t->kind == KT_IDENT)
        return perr(p, t->line, t->col, "the element types are f32 and i64", "unknown element type '%.*s'",
                    t->len > 40 ? 40 : (int)t->len, t->text);
    else return expected(p, "an element type (f32 or i64)", "after ':'", hint);
    next(p);
    if (peek(p, 0)->kind != KT_LBRACK) return expected(p, "'['", "after the element type", hint);
    int open_line = peek(p, 0)->line, open_col = peek(p, 0)->col;
    next(p);
    int64_t total = 1;
    for (;;) {
        t = peek(p, 0);
        if (t->kind == KT_RBRACK && s->shape.rank == 0) { next(p); break; }
        if (s->shape.rank == KN_MAX_RANK)
            return perr(p, t->line, t->col, NULL, "too many dimensions (the limit is %d)", KN_MAX_RANK);
        if (tok_is(t, "N")) {
            if (s->shape.rank != 0)
                return perr(p, t->line, t->col, "write N first: f32[N, 3, 224, 224]",
                            "the batch dimension N may only be the first dimension");
            s->shape.d[s->shape.rank++] = KN_DIM_N;
        } else if (t->kind == KT_INT) {
            if (t->i < 1)
                return perr(p, t->line, t->col, "dimensions are positive integers, or N for the batch",
                            "dimension must be at least 1, got %lld", (long long)t->i);
            if (!kn_mul_ok(total, t->i, &total))
                return perr(p, t->line, t->col, "use smaller dimensions",
                            "tensor '%s' has too many elements", s->name);
            s->shape.d[s->shape.rank++] = t->i;
        } else if (t->kind == KT_EOF && !p->lx.failed) {
            return perr(p, open_line, open_col, "close it with ']'", "unclosed '['");
        } else {
            return expected(p, "a dimension (a positive integer or N)", NULL, hint);
        }
        next(p);
        t = peek(p, 0);
        if (t->kind == KT_COMMA) { next(p); continue; }
        if (t->kind == KT_RBRACK) { next(p); break; }
        return expected(p, "',' or ']'", "in the shape", hint);
    }
    return KN_OK;
}

static kn_status parse_output(kf_parser *p, kf_stmt *s)
{
    int cap = 0, cap2 = 0;
    for (;;) {
        const kf_token *t = peek(p, 0);
        if (t->kind != KT_IDENT)
            return expected(p, "a value name", s->n ? "after ','" : "after 'output'", "write: output logits");
        s->names = grow(p, s->names, s->n, &cap, sizeof *s->names);
        s->name_cols = grow(p, s->name_cols, s->n, &cap2, sizeof *s->name_cols);
        s->names[s->n] = tok_str(p, t);
        s->name_cols[s->n] = t->col;
        s->n++;
        next(p);
        if (peek(p, 0)->kind != KT_COMMA) return KN_OK;
        next(p);
    }
}

static bool starts_statement(kf_parser *p)
{
    const kf_token *t = peek(p, 0);
    if (t->kind != KT_IDENT) return false;
    if (peek(p, 1)->kind == KT_EQ) return true;
    for (size_t i = 0; i < sizeof STMT_KEYWORDS / sizeof *STMT_KEYWORDS; i++)
        if (tok_is(t, STMT_KEYWORDS[i])) return true;
    return false;
}

static bool is_train_item(const kf_token *t)
{
    for (size_t i = 0; i < sizeof TRAIN_ITEMS / sizeof *TRAIN_ITEMS; i++)
        if (tok_is(t, TRAIN_ITEMS[i])) return true;
    return false;
}

static kn_status parse_train_int(kf_parser *p, kf_train_item *it, const char *item, int64_t lo, int64_t hi)
{
    const kf_token *t = peek(p, 0);
    char ctx[32];
    snprintf(ctx, sizeof ctx, "after '%s'", item);
    if (t->kind != KT_INT) return expected(p, "an integer", ctx, NULL);
    if (t->i < lo || t->i > hi)
        return perr(p, t->line, t->col, NULL, "'%s' must be between %lld and %lld, got %lld", item,
                    (long long)lo, (long long)hi, (long long)t->i);
    it->i = t->i;
    next(p);
    return KN_OK;
}

static kn_status parse_train(kf_parser *p, kf_stmt *s)
{
    const kf_token *t = peek(p, 0);
    if (t->kind != KT_LBRACE) return expected(p, "'{'", "after 'train'", "write: train { optimizer adam(lr=1e-3) batch 64 epochs 10 }");
    int open_line = t->line, open_col = t->col, cap = 0;
    bool seen[5] = {false};
    next(p);
    for (;;) {
        while (peek(p, 0)->kind == KT_NEWLINE || peek(p, 0)->kind == KT_COMMA) next(p);
        t = peek(p, 0);
        if (t->kind == KT_RBRACE) { next(p); return KN_OK; }
        if (p->lx.failed) return KN_ERR;
        /* A statement keyword or `NAME =` here means the '}' was forgotten:
         * blame the '{', not the statement. */
        if (t->kind == KT_EOF || (starts_statement(p) && !is_train_item(t)))
            return perr(p, open_line, open_col, "close the block with '}'", "unterminated 'train {' block");
        if (t->kind != KT_IDENT)
            return expected(p, "a train item or '}'", NULL, "valid items: optimizer, batch, epochs, shuffle, seed");
        int k = -1;
        for (int i = 0; i < 5; i++)
            if (tok_is(t, TRAIN_ITEMS[i])) k = i;
        if (k < 0) {
            char word[KF_MAX_IDENT + 1], hint[192];
            snprintf(word, sizeof word, "%.*s", (int)t->len, t->text);
            const char *near = kf_nearest(word, TRAIN_ITEMS, 5);
            snprintf(hint, sizeof hint, "%s%s%svalid items: optimizer, batch, epochs, shuffle, seed",
                     near ? "did you mean '" : "", near ? near : "", near ? "'? " : "");
            return perr(p, t->line, t->col, hint, "unknown train item '%.64s'", word);
        }
        if (seen[k]) return perr(p, t->line, t->col, "give each train item once", "'%s' given twice", TRAIN_ITEMS[k]);
        seen[k] = true;
        s->items = grow(p, s->items, s->n, &cap, sizeof *s->items);
        kf_train_item *it = &s->items[s->n++];
        it->kind = (kf_train_kind)k;
        it->line = t->line;
        it->col = t->col;
        next(p);
        kn_status st = KN_OK;
        switch (it->kind) {
        case KTI_OPTIMIZER:
            if (peek(p, 0)->kind != KT_IDENT)
                return expected(p, "an optimizer name", "after 'optimizer'", "write: optimizer adam(lr=1e-3)");
            st = parse_expr(p, 1, &it->call);
            if (!st && it->call->kind == KX_IDENT) it->call->kind = KX_CALL; /* `optimizer sgd` */
            break;
        case KTI_BATCH: st = parse_train_int(p, it, "batch", 1, INT_MAX); break;
        case KTI_EPOCHS: st = parse_train_int(p, it, "epochs", 0, INT_MAX); break;
        case KTI_SEED: st = parse_train_int(p, it, "seed", INT64_MIN, INT64_MAX); break;
        case KTI_SHUFFLE: break;
        }
        if (st) return st;
    }
}

/* After 'param': NAME '=' literal.  Only literals: a parameter is a knob
 * set from the command line, not a computed value. */
static kn_status parse_param(kf_parser *p, kf_stmt *s)
{
    const char *hint = "write: param inner = 100";
    if (expect_name(p, "after 'param'", hint, s)) return KN_ERR;
    if (peek(p, 0)->kind != KT_EQ) return expected(p, "'='", "after the parameter's name", hint);
    next(p);
    const kf_token *t = peek(p, 0);
    bool lit = t->kind == KT_INT || t->kind == KT_FLOAT || t->kind == KT_STRING ||
               (t->kind == KT_IDENT && (tok_is(t, "true") || tok_is(t, "false")));
    if (!lit)
        return expected(p, "a number, true/false or a \"string\"", "as the parameter's default",
                        "parameters hold literals: param inner = 100");
    return parse_expr(p, 1, &s->expr);
}

static kn_status parse_statement(kf_parser *p)
{
    const kf_token *t = peek(p, 0);
    if (t->kind != KT_IDENT)
        return expected(p, "a statement", NULL, "statements look like: fc0 = linear(x, 512)");
    if (peek(p, 1)->kind == KT_EQ) {
        kf_stmt *s = new_stmt(p, KS_ASSIGN, t);
        s->name = tok_str(p, t);
        s->name_line = t->line;
        s->name_col = t->col;
        next(p);
        next(p);
        return parse_expr(p, 1, &s->expr);
    }
    if (tok_is(t, "model")) {
        kf_stmt *s = new_stmt(p, KS_MODEL, t);
        next(p);
        return expect_name(p, "after 'model'", "write: model my_model", s);
    }
    if (tok_is(t, "data")) {
        kf_stmt *s = new_stmt(p, KS_DATA, t);
        next(p);
        if (peek(p, 0)->kind != KT_IDENT)
            return expected(p, "a data set kind", "after 'data'", "write: data fashion_mnist(normalize=(0.2860, 0.3530))");
        if (parse_expr(p, 1, &s->expr)) return KN_ERR;
        s->expr->kind = KX_CALL;
        return KN_OK;
    }
    if (tok_is(t, "input") || tok_is(t, "label")) {
        bool in = tok_is(t, "input");
        kf_stmt *s = new_stmt(p, in ? KS_INPUT : KS_LABEL, t);
        next(p);
        return parse_decl(p, s, in ? "input" : "label");
    }
    if (tok_is(t, "output")) {
        kf_stmt *s = new_stmt(p, KS_OUTPUT, t);
        next(p);
        return parse_output(p, s);
    }
    if (tok_is(t, "train")) {
        kf_stmt *s = new_stmt(p, KS_TRAIN, t);
        next(p);
        return parse_train(p, s);
    }
    if (tok_is(t, "param")) {
        kf_stmt *s = new_stmt(p, KS_PARAM, t);
        next(p);
        return parse_param(p, s);
    }
    char word[KF_MAX_IDENT + 1], hint[256];
    snprintf(word, sizeof word, "%.*s", (int)t->len, t->text);
    const char *near = kf_nearest(word, STMT_KEYWORDS, (int)(sizeof STMT_KEYWORDS / sizeof *STMT_KEYWORDS));
    if (near)
        snprintf(hint, sizeof hint, "did you mean '%s'?", near);
    else
        snprintf(hint, sizeof hint, "statements are NAME = op(...), model, data, input, label, output, train and param");
    return perr(p, t->line, t->col, hint, "expected a statement, got '%.64s'", word);
}

kn_status kf_parse(const kf_source *src, kf_ast *ast, kn_diag *d)
{
    kf_parser p = {.src = src, .ast = ast, .d = d};
    memset(ast, 0, sizeof *ast);
    kf_lex_init(&p.lx, src, d);
    kn_status st = KN_OK;
    for (;;) {
        skip_newlines(&p);
        const kf_token *t = peek(&p, 0);
        if (t->kind == KT_EOF) {
            ast->eof_line = t->line;
            if (p.lx.failed) st = KN_ERR;
            break;
        }
        if (parse_statement(&p)) { st = KN_ERR; break; }
        /* Checked here rather than in build.c so a large file of junk
         * fails at its first statement instead of after parsing it all. */
        const kf_stmt *last = &ast->stmts[ast->n_stmts - 1];
        if (ast->n_stmts == 1 && last->kind != KS_MODEL) {
            st = perr(&p, last->line, last->col, "start the file with a line like 'model my_net'",
                      "missing 'model NAME' line");
            break;
        }
        if (ast->n_stmts > 1 && last->kind == KS_MODEL) {
            char hint[128];
            snprintf(hint, sizeof hint, "a file holds one model, named at line %d", ast->stmts[0].line);
            st = perr(&p, last->line, last->col, hint, "second 'model' statement");
            break;
        }
        t = peek(&p, 0);
        if (t->kind != KT_NEWLINE && t->kind != KT_EOF) {
            const kf_stmt *s = &ast->stmts[ast->n_stmts - 1];
            static const char *const what[] = {"'model'", "'data'", "'input'", "'label'", "the assignment",
                                               "'output'", "the 'train' block", "'param'"};
            char ctx[64];
            snprintf(ctx, sizeof ctx, "after %s", what[s->kind]);
            st = expected(&p, "end of line", ctx, "put one statement per line");
            break;
        }
    }
    if (p.lx.failed) st = KN_ERR;
    kf_lex_free(&p.lx);
    return st;
}

/* lexer.h — tokens of the .kiln model-file language.
 *
 * Identifiers are [A-Za-z_][A-Za-z0-9_]* (at most KF_MAX_IDENT bytes);
 * numbers are integers (checked for int64 overflow) or floats (1e-3, -0.5,
 * .5); a leading '-' belongs to the number since the language has no
 * operators.  Strings are "..." on one line with \" \\ \n \t escapes.
 * `#` starts a comment to the end of the line.  Newlines are tokens: they
 * end statements.  The lexer is pulled one token at a time, so a file of
 * garbage costs only as much as its first bad token.
 */
#ifndef KF_LEXER_H
#define KF_LEXER_H

#include "source.h"

#define KF_MAX_IDENT 128

typedef enum {
    KT_EOF, KT_NEWLINE, KT_IDENT, KT_INT, KT_FLOAT, KT_STRING,
    KT_LPAREN, KT_RPAREN, KT_LBRACK, KT_RBRACK, KT_LBRACE, KT_RBRACE,
    KT_COMMA, KT_COLON, KT_EQ
} kf_tok_kind;

typedef struct {
    kf_tok_kind kind;
    int line, col;
    const char *text; /* points into the source; `len` bytes */
    size_t len;
    int64_t i;        /* KT_INT */
    double f;         /* KT_FLOAT */
    char *str;        /* KT_STRING: unescaped, malloc'd, owned by the lexer */
} kf_token;

typedef struct {
    const kf_source *src;
    size_t pos;
    int line, col;
    kf_token tok[2]; /* current + one of lookahead */
    int n_tok;
    kn_diag *d;
    bool failed;
} kf_lexer;

void kf_lex_init(kf_lexer *lx, const kf_source *src, kn_diag *d);
void kf_lex_free(kf_lexer *lx);
/* The k-th upcoming token (k = 0 or 1).  On a lexical error the token is
 * KT_EOF and lx->failed is set with the diagnostic in lx->d. */
const kf_token *kf_lex_peek(kf_lexer *lx, int k);
/* Consumes the current token. */
void kf_lex_next(kf_lexer *lx);
const char *kf_tok_name(kf_tok_kind k);

#endif

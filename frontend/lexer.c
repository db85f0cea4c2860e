/* lexer.c — turns model-file bytes into tokens (see lexer.h).  Every error
 * is reported once, located at the offending character, and stops lexing. */
#include "lexer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *TOK_NAMES[] = {
    "end of file", "end of line", "name", "integer", "number", "string",
    "'('", "')'", "'['", "']'", "'{'", "'}'", "','", "':'", "'='"};

const char *kf_tok_name(kf_tok_kind k) { return TOK_NAMES[k]; }

void kf_lex_init(kf_lexer *lx, const kf_source *src, kn_diag *d)
{
    memset(lx, 0, sizeof *lx);
    lx->src = src;
    lx->line = lx->col = 1;
    lx->d = d;
}

void kf_lex_free(kf_lexer *lx)
{
    for (int i = 0; i < lx->n_tok; i++) free(lx->tok[i].str);
    lx->n_tok = 0;
}

static int cur(const kf_lexer *lx, size_t ahead)
{
    size_t p = lx->pos + ahead;
    return p < lx->src->len ? (unsigned char)lx->src->buf[p] : -1;
}

static void adv(kf_lexer *lx)
{
    unsigned char c = (unsigned char)lx->src->buf[lx->pos++];
    if (c == '\n') {
        lx->line++;
        lx->col = 1;
    } else if (kf_is_cp_start(c)) {
        lx->col++;
    }
}

static bool is_ident_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_ident_char(int c) { return is_ident_start(c) || is_digit(c); }

static void fail_tok(kf_lexer *lx, kf_token *t, int line, int col, const char *hint,
                     const char *what, const char *detail)
{
    kf_error(lx->src, lx->d, line, col, hint, "%s%s", what, detail ? detail : "");
    lx->failed = true;
    t->kind = KT_EOF;
}

static void lex_number(kf_lexer *lx, kf_token *t)
{
    size_t start = lx->pos;
    bool is_float = false, neg = false;
    if (cur(lx, 0) == '-') { neg = true; adv(lx); }
    while (is_digit(cur(lx, 0))) adv(lx);
    if (cur(lx, 0) == '.' && is_digit(cur(lx, 1))) {
        is_float = true;
        adv(lx);
        while (is_digit(cur(lx, 0))) adv(lx);
    } else if (cur(lx, 0) == '.' && lx->pos > start + neg && !is_ident_char(cur(lx, 1)) && cur(lx, 1) != '.') {
        is_float = true; /* "1." */
        adv(lx);
    }
    if (cur(lx, 0) == 'e' || cur(lx, 0) == 'E') {
        int k = 1;
        if (cur(lx, 1) == '+' || cur(lx, 1) == '-') k = 2;
        if (is_digit(cur(lx, (size_t)k))) {
            is_float = true;
            for (int i = 0; i < k; i++) adv(lx);
            while (is_digit(cur(lx, 0))) adv(lx);
        }
    }
    bool bad = false;
    while (is_ident_char(cur(lx, 0)) || cur(lx, 0) == '.') { adv(lx); bad = true; }
    t->text = lx->src->buf + start;
    t->len = lx->pos - start;
    char shown[48];
    snprintf(shown, sizeof shown, "%.*s%s", t->len > 40 ? 40 : (int)t->len, t->text,
             t->len > 40 ? "..." : "");
    char what[96];
    if (bad || t->len > 64) {
        snprintf(what, sizeof what, "invalid number '%s'", shown);
        fail_tok(lx, t, t->line, t->col, "numbers look like 42, -3, 0.5, .5 or 1e-3", what, NULL);
        return;
    }
    if (!is_float) {
        uint64_t v = 0;
        bool over = false;
        for (size_t i = neg; i < t->len; i++) {
            unsigned dgt = (unsigned)(t->text[i] - '0');
            if (v > (UINT64_MAX - dgt) / 10) { over = true; break; }
            v = v * 10 + dgt;
        }
        if (over || v > (uint64_t)INT64_MAX + neg) {
            snprintf(what, sizeof what, "integer '%s' is out of range", shown);
            fail_tok(lx, t, t->line, t->col, "integers must fit in 64 bits", what, NULL);
            return;
        }
        t->kind = KT_INT;
        t->i = neg ? (int64_t)(0 - v) : (int64_t)v;
        return;
    }
    char tmp[72];
    memcpy(tmp, t->text, t->len);
    tmp[t->len] = 0;
    double f = strtod(tmp, NULL);
    if (!isfinite(f)) {
        snprintf(what, sizeof what, "number '%s' is out of range", shown);
        fail_tok(lx, t, t->line, t->col, "floats must fit in a double", what, NULL);
        return;
    }
    t->kind = KT_FLOAT;
    t->f = f;
}

static void lex_string(kf_lexer *lx, kf_token *t)
{
    kn_strbuf b;
    kn_sb_init(&b);
    adv(lx); /* opening quote */
    for (;;) {
        int c = cur(lx, 0);
        if (c < 0 || c == '\n') {
            kn_sb_free(&b);
            fail_tok(lx, t, t->line, t->col, "close the string with '\"' on the same line",
                     "unterminated string", NULL);
            return;
        }
        if (c == '"') { adv(lx); break; }
        if (c == '\\') {
            int e = cur(lx, 1);
            const char *rep = e == '"' ? "\"" : e == '\\' ? "\\" : e == 'n' ? "\n" : e == 't' ? "\t" : NULL;
            if (!rep) {
                int line = lx->line, col = lx->col;
                kn_sb_free(&b);
                char det[16];
                snprintf(det, sizeof det, " '\\%c'", e >= 32 && e < 127 ? e : '?');
                fail_tok(lx, t, line, col, "valid escapes are \\\" \\\\ \\n \\t", "unknown escape", det);
                return;
            }
            kn_sb_puts(&b, rep);
            adv(lx);
            adv(lx);
            continue;
        }
        if (c == 0) {
            kn_sb_free(&b);
            fail_tok(lx, t, lx->line, lx->col, "model files are text; remove the NUL byte",
                     "NUL byte in string", NULL);
            return;
        }
        char ch[2] = {(char)c, 0};
        kn_sb_puts(&b, ch);
        adv(lx);
    }
    t->kind = KT_STRING;
    t->str = b.s;
}

static void lex_one(kf_lexer *lx, kf_token *t)
{
    memset(t, 0, sizeof *t);
    for (;;) {
        int c = cur(lx, 0);
        if (c == ' ' || c == '\t' || c == '\r') { adv(lx); continue; }
        if (c == '#') {
            while (cur(lx, 0) >= 0 && cur(lx, 0) != '\n') adv(lx);
            continue;
        }
        break;
    }
    t->line = lx->line;
    t->col = lx->col;
    t->text = lx->src->buf + lx->pos;
    int c = cur(lx, 0);
    if (c < 0) { t->kind = KT_EOF; return; }
    static const char punct[] = "\n()[]{},:=";
    static const kf_tok_kind pkind[] = {KT_NEWLINE, KT_LPAREN, KT_RPAREN, KT_LBRACK, KT_RBRACK,
                                        KT_LBRACE, KT_RBRACE, KT_COMMA, KT_COLON, KT_EQ};
    const char *pp = c ? strchr(punct, c) : NULL;
    if (pp) {
        t->kind = pkind[pp - punct];
        t->len = 1;
        adv(lx);
        if (c == '\n') /* blank lines and comment lines fold into one NEWLINE */
            for (;;) {
                int e = cur(lx, 0);
                if (e == ' ' || e == '\t' || e == '\r' || e == '\n') adv(lx);
                else if (e == '#') while (cur(lx, 0) >= 0 && cur(lx, 0) != '\n') adv(lx);
                else break;
            }
        return;
    }
    if (is_ident_start(c)) {
        size_t start = lx->pos;
        while (is_ident_char(cur(lx, 0))) adv(lx);
        t->kind = KT_IDENT;
        t->len = lx->pos - start;
        if (cur(lx, 0) == '.') { /* "fc.0": dotted names are the frontend's, not the user's */
            fail_tok(lx, t, lx->line, lx->col, "names may contain only letters, digits and '_'",
                     "unexpected character '.'", NULL);
            return;
        }
        if (t->len > KF_MAX_IDENT) {
            char det[64];
            snprintf(det, sizeof det, " (%zu characters; the limit is %d)", t->len, KF_MAX_IDENT);
            fail_tok(lx, t, t->line, t->col, "use a shorter name", "name is too long", det);
        }
        return;
    }
    if (is_digit(c) || ((c == '-' || c == '.') && is_digit(cur(lx, 1))) ||
        (c == '-' && cur(lx, 1) == '.' && is_digit(cur(lx, 2)))) {
        lex_number(lx, t);
        return;
    }
    if (c == '"') { lex_string(lx, t); return; }

    char what[64];
    const char *hint = "expected a name, a number, a string or one of ( ) [ ] { } , : =";
    if (c == '.') hint = "names may contain only letters, digits and '_'";
    else if (c == '-' || c == '+' || c == '*' || c == '/') hint = "model files have no arithmetic; '-' may only start a number";
    else if (c == '\'') hint = "strings use double quotes: \"...\"";
    if (c >= 33 && c < 127) {
        snprintf(what, sizeof what, "unexpected character '%c'", c);
    } else if (c < 128) {
        snprintf(what, sizeof what, "unexpected byte 0x%02X", (unsigned)c);
        hint = "model files are plain text";
    } else {
        /* valid UTF-8 (checked before lexing): decode for the message */
        const unsigned char *p = (const unsigned char *)lx->src->buf + lx->pos;
        uint32_t cp = c >= 0xF0 ? (c & 7u) : c >= 0xE0 ? (c & 15u) : (c & 31u);
        int n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        for (int i = 1; i < n && lx->pos + (size_t)i < lx->src->len; i++) cp = (cp << 6) | (p[i] & 0x3Fu);
        snprintf(what, sizeof what, "unexpected character U+%04X", (unsigned)cp);
        hint = "names may contain only ASCII letters, digits and '_'; other text belongs in comments or strings";
    }
    fail_tok(lx, t, t->line, t->col, hint, what, NULL);
}

const kf_token *kf_lex_peek(kf_lexer *lx, int k)
{
    while (lx->n_tok <= k) {
        kf_token *t = &lx->tok[lx->n_tok++];
        if (lx->failed) {
            memset(t, 0, sizeof *t);
            t->kind = KT_EOF;
            t->line = lx->line;
            t->col = lx->col;
        } else {
            lex_one(lx, t);
        }
    }
    return &lx->tok[k];
}

void kf_lex_next(kf_lexer *lx)
{
    kf_lex_peek(lx, 0);
    free(lx->tok[0].str);
    lx->tok[0] = lx->tok[1];
    memset(&lx->tok[1], 0, sizeof lx->tok[1]);
    lx->n_tok--;
}

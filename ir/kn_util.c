/* kn_util.c — diagnostics, string buffers, checked arithmetic, name hygiene. */
#include "kn_util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kn_diag_clear(kn_diag *d)
{
    if (!d) return;
    d->text[0] = 0;
    d->set = false;
}

kn_status kn_diag_fail(kn_diag *d, const char *fmt, ...)
{
    if (!d) return KN_ERR;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->text, sizeof d->text, fmt, ap);
    va_end(ap);
    d->set = true;
    return KN_ERR;
}

kn_status kn_diag_at(kn_diag *d, const char *file, int line, int col,
                     const char *src_line, size_t src_line_len,
                     const char *hint, const char *fmt, ...)
{
    if (!d) return KN_ERR;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kn_strbuf b;
    kn_sb_init(&b);
    /* The message may quote user text: escape control bytes so an error
     * stays one line and cannot drive the terminal. */
    char safe[2048];
    size_t o = 0;
    for (const char *p = msg; *p && o + 5 < sizeof safe; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\n') { safe[o++] = '\\'; safe[o++] = 'n'; }
        else if (c < 32 || c == 127) o += (size_t)snprintf(safe + o, sizeof safe - o, "\\x%02x", c);
        else safe[o++] = (char)c;
    }
    safe[o] = 0;
    kn_sb_printf(&b, "%s:%d:%d: error: %s", file ? file : "<input>", line, col, safe);
    if (src_line) {
        /* Quote at most 160 columns, replacing control bytes so a hostile
         * line cannot mess with the terminal. */
        size_t n = src_line_len > 160 ? 160 : src_line_len;
        kn_sb_puts(&b, "\n    ");
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)src_line[i];
            char ch[2] = {(char)(c == '\t' ? ' ' : (c < 32 || c == 127) ? '?' : c), 0};
            kn_sb_puts(&b, ch);
        }
        kn_sb_puts(&b, "\n    ");
        for (int i = 1; i < col && i < 161; i++) kn_sb_puts(&b, " ");
        kn_sb_puts(&b, "^");
    }
    if (hint && *hint) kn_sb_printf(&b, "\nhint: %s", hint);
    snprintf(d->text, sizeof d->text, "%s", b.s);
    kn_sb_free(&b);
    d->set = true;
    return KN_ERR;
}

void kn_sb_init(kn_strbuf *b)
{
    b->cap = 256;
    b->len = 0;
    b->s = kn_xmalloc(b->cap);
    b->s[0] = 0;
}

void kn_sb_free(kn_strbuf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

static void sb_reserve(kn_strbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) return;
    while (b->len + extra + 1 > b->cap) b->cap *= 2;
    b->s = kn_xrealloc(b->s, b->cap);
}

void kn_sb_puts(kn_strbuf *b, const char *s)
{
    size_t n = strlen(s);
    sb_reserve(b, n);
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

void kn_sb_vprintf(kn_strbuf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return;
    sb_reserve(b, (size_t)n);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void kn_sb_printf(kn_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kn_sb_vprintf(b, fmt, ap);
    va_end(ap);
}

void *kn_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "kiln: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

void *kn_xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) {
        fprintf(stderr, "kiln: out of memory\n");
        abort();
    }
    return p;
}

void *kn_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "kiln: out of memory (%zu bytes)\n", n);
        abort();
    }
    return q;
}

char *kn_xstrdup(const char *s)
{
    size_t n = strlen(s ? s : "");
    char *p = kn_xmalloc(n + 1);
    memcpy(p, s ? s : "", n + 1);
    return p;
}

bool kn_mul_ok(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0) return false;
    if (a != 0 && b > INT64_MAX / a) return false;
    *out = a * b;
    return true;
}

bool kn_add_ok(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0 || a > INT64_MAX - b) return false;
    *out = a + b;
    return true;
}

int kn_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 1000;
    int prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}

void kn_c_ident(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0) return;
    if (s && isdigit((unsigned char)s[0]) && o + 1 < cap) out[o++] = '_';
    for (; s && *s && o + 1 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        out[o++] = (isalnum(c) && c < 128) ? (char)c : '_';
    }
    if (o == 0 && cap > 1) out[o++] = '_';
    out[o] = 0;
}

void kn_c_comment_text(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0) return;
    for (; s && *s && o + 1 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        char ch = (c >= 32 && c < 127) ? (char)c : '?';
        /* Break both comment delimiters so the text can neither close the
         * comment nor open a nested-looking one. */
        if ((ch == '/' && o > 0 && out[o - 1] == '*') || (ch == '*' && o > 0 && out[o - 1] == '/'))
            ch = '_';
        if (ch == '\\') ch = '_'; /* a trailing backslash would splice lines */
        out[o++] = ch;
    }
    out[o] = 0;
}

void kn_sb_c_string(kn_strbuf *b, const char *s)
{
    kn_sb_puts(b, "\"");
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') kn_sb_printf(b, "\\%c", c);
        else if (c >= 32 && c < 127 && c != '?') { char t[2] = {(char)c, 0}; kn_sb_puts(b, t); }
        else kn_sb_printf(b, "\\%03o", c); /* octal: never swallows following digits beyond 3; '?' avoids trigraphs */
    }
    kn_sb_puts(b, "\"");
}

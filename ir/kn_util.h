/* kn_util.h — status codes, diagnostics and a growable string buffer.
 *
 * Every stage of kiln reports errors as values: a function returns a
 * kn_status and fills a kn_diag with one human-readable message (plus an
 * optional quoted source line and hint).  Nothing in the library calls exit().
 */
#ifndef KN_UTIL_H
#define KN_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef enum {
    KN_OK = 0,
    KN_ERR = 1,      /* bad input: model file, data, checkpoint */
    KN_ERR_USAGE = 2 /* bad command line */
} kn_status;

/* One diagnostic.  `text` is the full, already formatted message:
 *   file:line:col: error: message
 *     <quoted source line>
 *     ^
 *   hint: ...
 * Producers use the kn_diag_* helpers; consumers just print `text`. */
typedef struct {
    char text[4096];
    bool set;
} kn_diag;

void kn_diag_clear(kn_diag *d);
/* Plain message, no location. Returns KN_ERR for `return kn_diag_fail(...)`. */
kn_status kn_diag_fail(kn_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Message located in a source file; `src_line` (may be NULL) is quoted with a
 * caret under column `col` (1-based).  `hint` may be NULL. */
kn_status kn_diag_at(kn_diag *d, const char *file, int line, int col,
                     const char *src_line, size_t src_line_len,
                     const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* Growable string; always NUL-terminated. */
typedef struct {
    char *s;
    size_t len, cap;
} kn_strbuf;

void kn_sb_init(kn_strbuf *b);
void kn_sb_free(kn_strbuf *b);
void kn_sb_puts(kn_strbuf *b, const char *s);
void kn_sb_printf(kn_strbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void kn_sb_vprintf(kn_strbuf *b, const char *fmt, va_list ap);

/* Allocation that aborts on out-of-memory: OOM is not a user error we can
 * report meaningfully, and every caller would otherwise need the same check. */
void *kn_xmalloc(size_t n);
void *kn_xcalloc(size_t n, size_t sz);
void *kn_xrealloc(void *p, size_t n);
char *kn_xstrdup(const char *s);

/* Overflow-checked arithmetic on non-negative sizes: false on overflow. */
bool kn_mul_ok(int64_t a, int64_t b, int64_t *out);
bool kn_add_ok(int64_t a, int64_t b, int64_t *out);

/* Levenshtein distance, for "did you mean" hints. */
int kn_edit_distance(const char *a, const char *b);

/* Copy `s` into a C identifier: [A-Za-z0-9_], never starting with a digit,
 * at most cap-1 chars.  Used for every name that reaches generated source. */
void kn_c_ident(const char *s, char *out, size_t cap);
/* Copy `s` so it is safe inside a C block comment: only printable ASCII,
 * no "*" followed by "/", no newlines. */
void kn_c_comment_text(const char *s, char *out, size_t cap);
/* Append `s` as a C string literal (with quotes), escaping everything
 * outside printable ASCII. */
void kn_sb_c_string(kn_strbuf *b, const char *s);

#endif

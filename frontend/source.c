/* source.c — loading model files, UTF-8 validation, and located errors that
 * quote the offending line with a caret.  Knows nothing of the syntax. */
#include "source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

kn_status kf_source_load(const char *path, char **buf, size_t *len, kn_diag *d)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return kn_diag_fail(d, "%s: error: cannot open model file: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return kn_diag_fail(d, "%s: error: not a regular file", path);
    }
    if ((uint64_t)st.st_size > KF_MAX_FILE_BYTES) {
        fclose(f);
        return kn_diag_fail(d, "%s: error: model file is %.1f MiB; the limit is %zu MiB",
                            path, (double)st.st_size / (1 << 20), KF_MAX_FILE_BYTES >> 20);
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *b = kn_xmalloc(cap);
    for (;;) {
        size_t k = fread(b + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
        if (n == cap - 1) {
            int c = fgetc(f);
            if (c == EOF) break;
            /* the file grew while we read it: keep the limit */
            if (cap - 1 >= KF_MAX_FILE_BYTES + 1) { n = KF_MAX_FILE_BYTES + 1; break; }
            cap = cap * 2 > KF_MAX_FILE_BYTES + 2 ? KF_MAX_FILE_BYTES + 2 : cap * 2;
            b = kn_xrealloc(b, cap);
            b[n++] = (char)c;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(b);
        return kn_diag_fail(d, "%s: error: cannot read model file", path);
    }
    if (n > KF_MAX_FILE_BYTES) {
        free(b);
        return kn_diag_fail(d, "%s: error: model file is larger than the %zu MiB limit",
                            path, KF_MAX_FILE_BYTES >> 20);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return KN_OK;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static int utf8_seq_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    int len;
    unsigned min;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

kn_status kf_source_check_utf8(const kf_source *s, kn_diag *d)
{
    const unsigned char *p = (const unsigned char *)s->buf;
    int line = 1, col = 1;
    size_t i = 0;
    while (i < s->len) {
        if (p[i] < 0x80) {
            if (p[i] == '\n') { line++; col = 1; } else col++;
            i++;
            continue;
        }
        int k = utf8_seq_len(p + i, s->len - i);
        if (!k)
            return kf_error(s, d, line, col, "save the file as UTF-8 text",
                            "invalid UTF-8 byte 0x%02X", p[i]);
        i += (size_t)k;
        col++;
    }
    return KN_OK;
}

/* Copies bytes [a, b) of a line, replacing invalid UTF-8 with '?'. */
static void quote_copy(kn_strbuf *q, const unsigned char *a, const unsigned char *b)
{
    while (a < b) {
        int k = utf8_seq_len(a, (size_t)(b - a));
        if (k <= 0) {
            kn_sb_puts(q, "?");
            a++;
            continue;
        }
        char tmp[5] = {0};
        memcpy(tmp, a, (size_t)k);
        if (k == 1 && tmp[0] == 0) tmp[0] = '?';
        kn_sb_puts(q, tmp);
        a += k;
    }
}

#define QUOTE_WIDTH 150 /* code points of context shown */

kn_status kf_error(const kf_source *s, kn_diag *d, int line, int col,
                   const char *hint, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!d) return KN_ERR;

    /* Find the line: one linear scan, done once per (fatal) error. */
    const unsigned char *p = (const unsigned char *)s->buf, *end = p + s->len;
    for (int l = 1; l < line && p < end; l++) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    const unsigned char *le = memchr(p, '\n', (size_t)(end - p));
    if (!le) le = end;
    if (le > p && le[-1] == '\r') le--;

    /* Start of the quoted window, in code points: keep the caret visible on
     * very long lines (a file of garbage may be one 10 MB line). */
    int skip = col > QUOTE_WIDTH - 30 ? col - (QUOTE_WIDTH / 2) : 0;
    const unsigned char *a = p;
    for (int c = 0; c < skip && a < le; c++) {
        a++;
        while (a < le && !kf_is_cp_start(*a)) a++;
    }
    const unsigned char *b = a;
    for (int c = 0; c < QUOTE_WIDTH && b < le; c++) {
        b++;
        while (b < le && !kf_is_cp_start(*b)) b++;
    }
    kn_strbuf q;
    kn_sb_init(&q);
    if (skip) kn_sb_puts(&q, "...");
    quote_copy(&q, a, b);
    if (b < le) kn_sb_puts(&q, "...");

    if (!skip) {
        kn_diag_at(d, s->name, line, col, q.s, q.len, hint, "%s", msg);
    } else {
        /* kn_diag_at puts the caret at `col`; here the caret column differs
         * from the reported one, so quote in the same layout by hand. */
        kn_strbuf t;
        kn_sb_init(&t);
        kn_sb_printf(&t, "%s:%d:%d: error: %s\n    ", s->name, line, col, msg);
        for (size_t i = 0; i < q.len; i++) {
            unsigned char c = (unsigned char)q.s[i];
            char ch[2] = {(char)(c == '\t' ? ' ' : (c < 32 || c == 127) ? '?' : c), 0};
            kn_sb_puts(&t, ch);
        }
        kn_sb_puts(&t, "\n    ");
        for (int i = 0; i < 3 + col - skip - 1; i++) kn_sb_puts(&t, " ");
        kn_sb_puts(&t, "^");
        if (hint && *hint) kn_sb_printf(&t, "\nhint: %s", hint);
        snprintf(d->text, sizeof d->text, "%s", t.s);
        d->set = true;
        kn_sb_free(&t);
    }
    kn_sb_free(&q);
    return KN_ERR;
}

const char *kf_nearest(const char *name, const char *const *list, int n)
{
    size_t len = strlen(name);
    if (len > 64) return NULL;
    int best = -1, best_d = 1 << 30;
    for (int i = 0; i < n; i++) {
        if (strlen(list[i]) > 64) continue;
        int dist = kn_edit_distance(name, list[i]);
        if (dist < best_d) { best_d = dist; best = i; }
    }
    int limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
    return best >= 0 && best_d <= limit ? list[best] : NULL;
}

/* source.h — a model file's bytes, loading limits, UTF-8 validation, and
 * located diagnostics that quote the offending line.
 *
 * Columns everywhere in the frontend are 1-based and count code points, not
 * bytes, so the caret lines up under UTF-8 text in comments and strings.
 */
#ifndef KF_SOURCE_H
#define KF_SOURCE_H

#include "../ir/kn_util.h"

#define KF_MAX_FILE_BYTES ((size_t)16 << 20) /* 16 MiB */

typedef struct {
    const char *name; /* file name for diagnostics (never NULL) */
    const char *buf;  /* not NUL-terminated necessarily; `len` bytes */
    size_t len;
} kf_source;

/* Reads `path` into a malloc'd buffer, refusing non-regular files and files
 * over KF_MAX_FILE_BYTES before reading them. */
kn_status kf_source_load(const char *path, char **buf, size_t *len, kn_diag *d);

/* Fails with a located diagnostic at the first byte that is not valid UTF-8
 * (overlongs, surrogates and code points above U+10FFFF are invalid). */
kn_status kf_source_check_utf8(const kf_source *s, kn_diag *d);

/* Formats `file:line:col: error: MESSAGE`, the quoted line with a caret and
 * `hint: HINT` (hint may be NULL).  Always returns KN_ERR. */
kn_status kf_error(const kf_source *s, kn_diag *d, int line, int col,
                   const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* The entry of `list` (n entries) nearest to `name` by edit distance, or
 * NULL when none is plausibly a typo of it. */
const char *kf_nearest(const char *name, const char *const *list, int n);

/* True when byte `c` starts a code point (is not a UTF-8 continuation). */
static inline int kf_is_cp_start(unsigned char c) { return (c & 0xC0) != 0x80; }

#endif

/* frontend.h — model files in, IR out.
 *
 * The .kiln parser turns a model file into a kn_graph with inferred shapes
 * and named parameters.  Errors name file:line:col, quote the line with a
 * caret, and hint at the fix.  The frontend knows nothing of passes or code
 * generation.
 */
#ifndef KN_FRONTEND_H
#define KN_FRONTEND_H

#include "../ir/ir.h"

/* What a model file may depend on beyond its text. */
typedef struct {
    /* Folders onnx("path.onnx", ...) paths are looked up in, in order,
     * before the model file's own folder (absolute paths are used as is).
     * The driver passes $KILN_DATA and the shared data folders. */
    const char *const *data_roots;
    int n_data_roots;
    /* "NAME=VALUE" overrides of the file's `param NAME = default`
     * statements (kiln build --set); naming an unknown param is an error. */
    const char *const *sets;
    int n_sets;
} kn_frontend_opts;

/* Parses the model file at `path`; `o` may be NULL (no data roots, no sets). */
kn_status kn_parse_model_file(const char *path, kn_graph **out, kn_diag *d);
kn_status kn_parse_model_file_opts(const char *path, const kn_frontend_opts *o, kn_graph **out, kn_diag *d);
/* Parses model source held in memory; `filename` is used in diagnostics. */
kn_status kn_parse_model_string(const char *src, size_t len,
                                const char *filename, kn_graph **out,
                                kn_diag *d);
kn_status kn_parse_model_string_opts(const char *src, size_t len, const char *filename,
                                     const kn_frontend_opts *o, kn_graph **out, kn_diag *d);

/* The files a model file's graph is built from besides itself (resolved
 * onnx(...) paths), one per line into `out`, for cache keys.  Parses only:
 * paths that do not resolve are left out (building reports them). */
kn_status kn_model_file_deps(const char *path, const kn_frontend_opts *o, kn_strbuf *out, kn_diag *d);

#endif

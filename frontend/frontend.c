/* frontend.c — the two entry points: file or string -> source checks ->
 * parse -> build.  See parser.c for the grammar and build.c for binding. */
#include "frontend.h"

#include "build.h"
#include "parser.h"
#include "source.h"

#include <stdlib.h>
#include <string.h>

kn_status kn_parse_model_string(const char *src, size_t len, const char *filename, kn_graph **out, kn_diag *d)
{
    return kn_parse_model_string_opts(src, len, filename, NULL, out, d);
}

kn_status kn_parse_model_string_opts(const char *src, size_t len, const char *filename, const kn_frontend_opts *o,
                                     kn_graph **out, kn_diag *d)
{
    *out = NULL;
    kf_source s = {.name = filename && *filename ? filename : "<input>", .buf = src ? src : "", .len = src ? len : 0};
    if (s.len > KF_MAX_FILE_BYTES)
        return kn_diag_fail(d, "%s: error: model file is larger than the %zu MiB limit", s.name,
                            KF_MAX_FILE_BYTES >> 20);
    if (kf_source_check_utf8(&s, d)) return KN_ERR;
    kf_ast ast;
    kn_status st = kf_parse(&s, &ast, d);
    if (!st) st = kf_build(&s, &ast, o, out, d);
    kf_ast_free(&ast);
    return st;
}

kn_status kn_parse_model_file(const char *path, kn_graph **out, kn_diag *d)
{
    return kn_parse_model_file_opts(path, NULL, out, d);
}

kn_status kn_parse_model_file_opts(const char *path, const kn_frontend_opts *o, kn_graph **out, kn_diag *d)
{
    *out = NULL;
    char *buf;
    size_t len;
    if (kf_source_load(path, &buf, &len, d)) return KN_ERR;
    kn_status st = kn_parse_model_string_opts(buf, len, path, o, out, d);
    free(buf);
    return st;
}

kn_status kn_model_file_deps(const char *path, const kn_frontend_opts *o, kn_strbuf *out, kn_diag *d)
{
    char *buf;
    size_t len;
    if (kf_source_load(path, &buf, &len, d)) return KN_ERR;
    kf_source s = {.name = path, .buf = buf, .len = len};
    kf_ast ast;
    memset(&ast, 0, sizeof ast);
    kn_status st = kf_source_check_utf8(&s, d);
    if (!st) st = kf_parse(&s, &ast, d);
    if (!st) kf_onnx_deps(&s, &ast, o, out);
    kf_ast_free(&ast);
    free(buf);
    return st;
}

/* frontend.c — the two entry points: file or string -> source checks ->
 * parse -> build.  See parser.c for the grammar and build.c for binding. */
#include "frontend.h"

#include "build.h"
#include "parser.h"
#include "source.h"

#include <stdlib.h>

kn_status kn_parse_model_string(const char *src, size_t len, const char *filename, kn_graph **out, kn_diag *d)
{
    *out = NULL;
    kf_source s = {.name = filename && *filename ? filename : "<input>", .buf = src ? src : "", .len = src ? len : 0};
    if (s.len > KF_MAX_FILE_BYTES)
        return kn_diag_fail(d, "%s: error: model file is larger than the %zu MiB limit", s.name,
                            KF_MAX_FILE_BYTES >> 20);
    if (kf_source_check_utf8(&s, d)) return KN_ERR;
    kf_ast ast;
    kn_status st = kf_parse(&s, &ast, d);
    if (!st) st = kf_build(&s, &ast, out, d);
    kf_ast_free(&ast);
    return st;
}

kn_status kn_parse_model_file(const char *path, kn_graph **out, kn_diag *d)
{
    *out = NULL;
    char *buf;
    size_t len;
    if (kf_source_load(path, &buf, &len, d)) return KN_ERR;
    kn_status st = kn_parse_model_string(buf, len, path, out, d);
    free(buf);
    return st;
}

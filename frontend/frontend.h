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

/* Parses the model file at `path`. */
kn_status kn_parse_model_file(const char *path, kn_graph **out, kn_diag *d);
/* Parses model source held in memory; `filename` is used in diagnostics. */
kn_status kn_parse_model_string(const char *src, size_t len,
                                const char *filename, kn_graph **out,
                                kn_diag *d);

#endif

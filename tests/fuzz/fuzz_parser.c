/* fuzz_parser.c — libFuzzer target: the model-file frontend on arbitrary
 * text.  Built and run by tests/fuzz/run.sh. */
#include "frontend/frontend.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kn_graph *g = NULL;
    kn_diag d;
    kn_diag_clear(&d);
    if (kn_parse_model_string((const char *)data, size, "fuzz.kiln", &g, &d) == KN_OK) kn_graph_free(g);
    return 0;
}

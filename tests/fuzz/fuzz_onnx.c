/* fuzz_onnx.c — libFuzzer target: the ONNX importer on arbitrary bytes.
 * Every input must end in KN_OK or a diagnostic, never a crash, a
 * sanitizer report or a leak.  Built and run by tests/fuzz/run.sh. */
#include "frontend/onnx_import.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kn_graph *g = NULL;
    kn_diag d;
    kn_diag_clear(&d);
    if (kn_onnx_import_buffer(data, size, NULL, &g, &d) == KN_OK) kn_graph_free(g);
    return 0;
}

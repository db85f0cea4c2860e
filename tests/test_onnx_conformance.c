/* test_onnx_conformance.c — ONNX node conformance must not regress.
 *
 * Runs `kiln onnx-test` over Debian's libonnx-testdata node tests and checks
 * that every test named in tests/golden/onnx_conformance_pass.txt (the
 * committed list of expected passes) prints "NAME: pass", that nothing
 * fails, and that the last line is the contract's summary.  Skipped (with
 * one line) when the test data is not installed.  To accept new passes,
 * regenerate the list:
 *     kiln onnx-test | grep ': pass' | cut -d: -f1 > tests/golden/onnx_conformance_pass.txt
 */
#define _GNU_SOURCE
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_DIR "/usr/share/libonnx-testdata/data/node"

static void test_expected_passes(void)
{
    if (!kt_file_exists(NODE_DIR "/test_relu/model.onnx")) {
        printf("SKIP onnx conformance: %s not found (install libonnx-testdata)\n", NODE_DIR);
        return;
    }
    kt_check_onnx_conformance(NODE_DIR, "", "", "regression");
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"every expected ONNX node test passes", test_expected_passes},
        CU_TEST_INFO_NULL,
    };
    return kt_main("onnx_conformance", tests);
}

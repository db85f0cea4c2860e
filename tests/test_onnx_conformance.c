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
    char list[4096];
    kt_pathf(list, sizeof list, "%s/tests/golden/onnx_conformance_pass.txt", kt_src_dir());
    char *want = kt_read_file(list, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    char *log = NULL;
    int rc = kt_run(&log, "'%s' onnx-test '%s'", kt_kiln_bin(), NODE_DIR);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    const char *last = strstr(log, "\nconformance: ");
    CU_ASSERT_PTR_NOT_NULL(last);
    if (last) printf("%s", last + 1);
    CU_ASSERT_EQUAL(rc, 0); /* no test fails */
    int expected = 0, missing = 0;
    for (char *name = strtok(want, "\n"); name; name = strtok(NULL, "\n")) {
        char line[512];
        snprintf(line, sizeof line, "\n%s: pass", name);
        expected++;
        /* the first test's line starts the log, without a newline before it */
        if (!strstr(log, line) && strncmp(log, line + 1, strlen(line + 1)) != 0) {
            printf("regression: %s no longer passes\n", name);
            missing++;
        }
    }
    printf("%d expected passes, %d missing\n", expected, missing);
    CU_ASSERT(expected > 100);
    CU_ASSERT_EQUAL(missing, 0);
    free(log);
    free(want);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"every expected ONNX node test passes", test_expected_passes},
        CU_TEST_INFO_NULL,
    };
    return kt_main("onnx_conformance", tests);
}

/* test_cuda_conformance.c — the ONNX node tests through the CUDA kernels.
 *
 * `kiln onnx-test --target cuda` builds every node test with its CUDA
 * kernels (NVRTC-compiled like any cuda build) and runs them with
 * `--device cuda`.  Without a GPU the executables are linked against the
 * host emulation of libkiln_rt_cuda (tests/support/cuda_emu.c), which
 * compiles the embedded kernel source as host C: the kernels' arithmetic is
 * checked against the ONNX reference outputs.  Every test in
 * tests/golden/onnx_conformance_pass.txt (the CPU's expected passes) must
 * pass here too.  Not registered in sanitizer builds (too slow there; the
 * kernels are generated code compiled without sanitizers anyway).
 */
#define _GNU_SOURCE
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_DIR "/usr/share/libonnx-testdata/data/node"

static void test_expected_passes_on_cuda(void)
{
    if (!kt_file_exists(NODE_DIR "/test_relu/model.onnx")) {
        printf("SKIP onnx conformance (cuda): %s not found (install libonnx-testdata)\n", NODE_DIR);
        return;
    }
    const char *lib = getenv("KILN_CUDA_EMU_LIB"), *shim = getenv("KILN_CUDA_EMU_SHIM");
    CU_ASSERT_FATAL(lib && shim);
    char env[8400];
    kt_pathf(env, sizeof env, "KILN_RT_CUDA_LIBS='%s -ldl' KILN_CUDA_EMU_SHIM='%s'", lib, shim);
    kt_check_onnx_conformance(NODE_DIR, env, "--target cuda", "cuda");
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"every expected ONNX node test passes through the CUDA kernels", test_expected_passes_on_cuda},
        CU_TEST_INFO_NULL,
    };
    return kt_main("cuda_conformance", tests);
}

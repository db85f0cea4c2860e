/* test_onnx_import.c — the ONNX frontend through the real driver.
 *
 * 1. Golden cases: tests/golden/gen_onnx.py wrote small ONNX graphs
 *    (Gemm with transB/alpha/beta, grouped conv with asymmetric pads + Clip,
 *    a PyTorch-style Shape->Gather->Unsqueeze->Concat->Reshape chain,
 *    Transpose/Concat/Pad/Softmax, pooling/ReduceMean/MatMul) with inputs and
 *    PyTorch outputs.  Each is built with `kiln build CASE/model.onnx` and run
 *    with `EXE run --in ... --out DIR`; tolerance |got - want| <= 1e-5 + 1e-4 |want|.
 * 2. MobileNetV2 from $KILN_DATA/mobilenetv2/ (skipped with one line when
 *    absent): `kiln check` shows the parameter count, the executable's
 *    logits for reference/input.npy match reference/logits.npy within 1e-3
 *    absolute (the bar; the reference is the same fp32 ONNX file run
 *    node by node in numpy), and each row's argmax is the class listed in
 *    reference/images.txt.
 * 3. Bad input: truncated, empty and random-byte files, an unknown op (the
 *    message names the node and the op) and an opset out of range each give
 *    exit status 1 with one clear message, never a crash.
 */
#define _GNU_SOURCE
#include "testlib.h"
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ABS_TOL 1e-5
#define REL_TOL 1e-4

static int run_case(const char *dir, const char *cname, const char *tmp)
{
    char path[4096], exe[4096], outdir[4096];
    kt_pathf(path, sizeof path, "%s/%s/io.txt", dir, cname);
    char *io = kt_read_file(path, NULL);
    if (!io) {
        printf("  %s: cannot read %s\n", cname, path);
        return 1;
    }
    kt_pathf(path, sizeof path, "%s/%s/model.onnx", dir, cname);
    kt_pathf(exe, sizeof exe, "%s/%s.exe", tmp, cname);
    kt_pathf(outdir, sizeof outdir, "%s/%s.out", tmp, cname);
    if (kt_kiln_build(cname, path, exe) != 0) {
        free(io);
        return 1;
    }
    kn_strbuf cmd;
    kn_sb_init(&cmd);
    kn_sb_printf(&cmd, "'%s' run --out '%s'", exe, outdir);
    char outs[16][128];
    int n_out = 0;
    for (char *line = strtok(io, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "in ", 3)) kn_sb_printf(&cmd, " --in '%s=%s/%s/%s.npy'", line + 3, dir, cname, line + 3);
        else if (!strncmp(line, "out ", 4) && n_out < 16) snprintf(outs[n_out++], 128, "%s", line + 4);
    }
    free(io);
    char *log = NULL;
    int rc = kt_run(&log, "%s", cmd.s);
    if (rc != 0) printf("  %s: run failed (status %d): %s\n%s\n", cname, rc, cmd.s, log ? log : "");
    free(log);
    kn_sb_free(&cmd);
    if (rc != 0) return 1;
    int fails = 0;
    for (int i = 0; i < n_out; i++) {
        char want[4096], got[4096];
        kt_pathf(want, sizeof want, "%s/%s/%s.npy", dir, cname, outs[i]);
        kt_pathf(got, sizeof got, "%s/%s.npy", outdir, outs[i]);
        fails += kt_compare_npy(cname, outs[i], want, got, ABS_TOL, REL_TOL);
    }
    return fails;
}

static void test_golden_cases(void)
{
    char dir[4096];
    kt_pathf(dir, sizeof dir, "%s/tests/golden/onnx", kt_src_dir());
    char **names;
    int count = kt_list_cases(dir, "model.onnx", &names);
    CU_ASSERT_FATAL(count >= 5);
    char tmp[4096];
    kt_pathf(tmp, sizeof tmp, "%s", kt_tmp_dir("onnx_golden"));
    int failed = 0;
    for (int i = 0; i < count; i++) {
        printf("case %s\n", names[i]);
        if (run_case(dir, names[i], tmp)) {
            failed++;
            CU_FAIL("ONNX golden case failed (see output above)");
        }
        free(names[i]);
    }
    free(names);
    printf("onnx golden cases: %d passed, %d failed\n", count - failed, failed);
}

/* Argmax of every row of a [rows, cols] f32 .npy; returns rows or -1. */
static int row_argmax(const char *path, int *out, int cap)
{
    kn_npy a;
    char err[512];
    if (kn_npy_read(path, &a, err, sizeof err) || a.rank != 2 || a.dtype != 0) return -1;
    int rows = (int)a.dims[0] < cap ? (int)a.dims[0] : cap;
    const float *p = a.data;
    for (int r = 0; r < rows; r++) {
        int best = 0;
        for (int c = 1; c < a.dims[1]; c++)
            if (p[r * a.dims[1] + c] > p[r * a.dims[1] + best]) best = c;
        out[r] = best;
    }
    kn_npy_free(&a);
    return rows;
}

static void test_mobilenetv2(void)
{
    const char *data = getenv("KILN_DATA");
    char model[4096], exe[4096], out[4096], ref[4096];
    kt_pathf(model, sizeof model, "%s/mobilenetv2/mobilenetv2.onnx", data ? data : "");
    if (!data || !kt_file_exists(model)) {
        printf("SKIP mobilenetv2: %s not found (set KILN_DATA to the shared data folder)\n", model);
        return;
    }
    const char *tmp = kt_tmp_dir("onnx_mobilenetv2");
    kt_pathf(exe, sizeof exe, "%s/mobilenetv2", tmp);
    kt_pathf(out, sizeof out, "%s/out", tmp);
    char *log = NULL;
    CU_ASSERT_EQUAL_FATAL(kt_run(&log, "'%s' check '%s'", kt_kiln_bin(), model), 0);
    KT_ASSERT_CONTAINS(log, "frozen 3,487,822");
    free(log);
    int rc = kt_run(&log, "'%s' build '%s' -o '%s'", kt_kiln_bin(), model, exe);
    if (rc) printf("%s\n", log);
    free(log);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    rc = kt_run(&log, "'%s' run --in 'input=%s/mobilenetv2/reference/input.npy' --out '%s'", exe, data, out);
    if (rc) printf("%s\n", log);
    free(log);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char got[4096];
    kt_pathf(ref, sizeof ref, "%s/mobilenetv2/reference/logits.npy", data);
    kt_pathf(got, sizeof got, "%s/logits.npy", out);
    CU_ASSERT_EQUAL(kt_compare_npy("mobilenetv2", "logits", ref, got, 1e-3, 0.0), 0);

    /* top-1 of each row is the class reference/images.txt names */
    kt_pathf(ref, sizeof ref, "%s/mobilenetv2/reference/images.txt", data);
    char *txt = kt_read_file(ref, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(txt);
    int want[8], n_want = 0, top[8];
    for (char *line = strtok(txt, "\n"); line && n_want < 8; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');
        if (tab) want[n_want++] = atoi(tab + 1);
    }
    free(txt);
    CU_ASSERT_EQUAL(row_argmax(got, top, 8), n_want);
    for (int i = 0; i < n_want; i++) {
        printf("mobilenetv2 row %d: argmax %d (reference %d)\n", i, top[i], want[i]);
        CU_ASSERT_EQUAL(top[i], want[i]);
    }
}

/* `kiln check FILE` must fail with status 1 and a message containing `needle`. */
static void expect_rejected(const char *file, const char *needle)
{
    char *log = NULL;
    int rc = kt_run(&log, "'%s' check '%s'", kt_kiln_bin(), file);
    printf("%s -> %d: %s", file, rc, log ? log : "");
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(log, needle);
    free(log);
}

static void test_bad_inputs(void)
{
    const char *tmp = kt_tmp_dir("onnx_bad");
    char good[4096], path[4096];
    kt_pathf(good, sizeof good, "%s/tests/golden/onnx/conv_groups/model.onnx", kt_src_dir());
    size_t len = 0;
    char *bytes = kt_read_file(good, &len);
    CU_ASSERT_FATAL(bytes && len > 64);

    kt_pathf(path, sizeof path, "%s/truncated.onnx", tmp);
    kt_write_file(path, bytes, len / 2);
    expect_rejected(path, "truncated or corrupted");
    kt_pathf(path, sizeof path, "%s/empty.onnx", tmp);
    kt_write_file(path, "", 0);
    expect_rejected(path, "empty");
    kt_pathf(path, sizeof path, "%s/random.onnx", tmp);
    uint32_t s = 12345;
    for (size_t i = 0; i < len; i++) bytes[i] = (char)((s = s * 1664525u + 1013904223u) >> 24);
    kt_write_file(path, bytes, len);
    expect_rejected(path, "error:");
    free(bytes);

    kt_pathf(path, sizeof path, "%s/tests/golden/onnx/bad/unknown_op.onnx", kt_src_dir());
    expect_rejected(path, "FancyActivation at node 1 'weird_node'");
    kt_pathf(path, sizeof path, "%s/tests/golden/onnx/bad/opset_99.onnx", kt_src_dir());
    expect_rejected(path, "opset 99 is outside the range kiln supports");
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"small ONNX graphs match PyTorch", test_golden_cases},
        {"MobileNetV2 logits match the reference", test_mobilenetv2},
        {"bad ONNX files give one clear error", test_bad_inputs},
        CU_TEST_INFO_NULL,
    };
    return kt_main("onnx_import", tests);
}

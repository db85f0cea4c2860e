/* test_onnx_export.c — `kiln export` through the real driver.
 *
 * 1. fmnist_mlp with the PyTorch-trained checkpoint exports; the .onnx is
 *    built again by kiln's own importer (`kiln build OUT.onnx`) and run on
 *    tests/golden/fmnist/x_first256.npy: logits match PyTorch's within 1e-4.
 * 2. The ONNX checker (python3-onnx, full_check) accepts the export; skipped
 *    with one line when `import onnx.checker` fails (libonnx-testdata alone
 *    leaves an empty `onnx` namespace package behind).
 * 3. An independent runtime: onnxruntime-node (npm, installed into the build
 *    tree on first use) runs the export on the same inputs, logits within
 *    1e-4 of PyTorch's; skipped with one line without node or the package.
 * 4. mnist_cnn (conv, pool, flatten) with a checkpoint written here exports
 *    and, re-imported, reproduces the compiled .kiln model's own `EXE run`
 *    output (1e-5 + 1e-4 relative); the checker and onnxruntime-node (1e-4)
 *    check it too when available.
 * 5. Errors: a missing --weights file, a checkpoint missing a tensor, an
 *    unwritable -o path, no --weights for a randomly initialised model, and
 *    unsupported ops (all named in one message) each exit 1 with one clear
 *    message; no output file is left behind.
 */
#define _GNU_SOURCE
#include "testlib.h"
#include "kn_safetensors.h"
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4

static char g_dir[4096];   /* scratch folder of this suite */
static char g_fmnist[4096]; /* the fmnist_mlp export */

static const char *golden(const char *file, char *buf, size_t cap)
{
    kt_pathf(buf, cap, "%s/tests/golden/fmnist/%s", kt_src_dir(), file);
    return buf;
}

/* `kiln export MODEL [--weights CKPT] -o OUT`; returns kiln's status, its output in *log. */
static int kiln_export(char **log, const char *model, const char *ckpt, const char *out)
{
    if (ckpt) return kt_run(log, "'%s' export '%s' --weights '%s' -o '%s'", kt_kiln_bin(), model, ckpt, out);
    return kt_run(log, "'%s' export '%s' -o '%s'", kt_kiln_bin(), model, out);
}

/* Exports fmnist_mlp once; g_fmnist is set only when that succeeded. */
static void export_fmnist(void)
{
    if (g_fmnist[0]) return;
    char model[4096], ckpt[4096], out[4096], *log = NULL;
    kt_pathf(model, sizeof model, "%s/models/fmnist_mlp.kiln", kt_src_dir());
    kt_pathf(out, sizeof out, "%s/fmnist_mlp.onnx", g_dir);
    int rc = kiln_export(&log, model, golden("fmnist_mlp.safetensors", ckpt, sizeof ckpt), out);
    if (rc) printf("%s\n", log);
    free(log);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    snprintf(g_fmnist, sizeof g_fmnist, "%s", out);
}

/* Builds `onnx` with kiln's importer and runs it on x.npy; the first output lands in outdir/NAME.npy. */
static int run_onnx_in_kiln(const char *onnx, const char *tag, const char *x, const char *outdir)
{
    char exe[4096], *log = NULL;
    kt_pathf(exe, sizeof exe, "%s/%s.exe", g_dir, tag);
    if (kt_kiln_build(tag, onnx, exe) != 0) return 1;
    int rc = kt_run(&log, "'%s' run --in 'x=%s' --out '%s'", exe, x, outdir);
    if (rc) printf("  %s: run failed (status %d):\n%s\n", tag, rc, log ? log : "");
    free(log);
    return rc;
}

static void test_fmnist_roundtrip(void)
{
    export_fmnist();
    char x[4096], want[4096], outdir[4096], got[4096];
    kt_pathf(outdir, sizeof outdir, "%s/fmnist.out", g_dir);
    CU_ASSERT_EQUAL_FATAL(run_onnx_in_kiln(g_fmnist, "fmnist_onnx", golden("x_first256.npy", x, sizeof x), outdir), 0);
    kt_pathf(got, sizeof got, "%s/fc4.npy", outdir);
    CU_ASSERT_EQUAL(kt_compare_npy("fmnist_export", "logits vs PyTorch", golden("logits_first256.npy", want, sizeof want),
                                   got, TOL, 0.0),
                    0);
}

static void test_onnx_checker(void)
{
    export_fmnist();
    if (kt_run(NULL, "/usr/bin/python3 -c 'import onnx.checker'") != 0) {
        printf("SKIP onnx checker: /usr/bin/python3 cannot import onnx (Debian python3-onnx)\n");
        return;
    }
    char *log = NULL;
    int rc = kt_run(&log,
                    "/usr/bin/python3 -c \"import onnx, sys; m = onnx.load(sys.argv[1]); "
                    "onnx.checker.check_model(m, full_check=True); print('checker ok, opset', m.opset_import[0].version)\" '%s'",
                    g_fmnist);
    printf("  %s", log ? log : "");
    free(log);
    CU_ASSERT_EQUAL(rc, 0);
}

/* The folder holding node_modules/onnxruntime-node, installed on first use; NULL (reason printed) when unavailable. */
static const char *ort_module(char *buf, size_t cap)
{
    if (kt_run(NULL, "command -v node && command -v npm") != 0) {
        printf("SKIP onnxruntime-node: node or npm not installed\n");
        return NULL;
    }
    char dir[4096];
    const char *tmp = getenv("KILN_TEST_TMP");
    kt_pathf(dir, sizeof dir, "%s/../ort", tmp && *tmp ? tmp : "/tmp");
    kt_pathf(buf, cap, "%s/node_modules/onnxruntime-node", dir);
    if (kt_run(NULL, "node -e \"require('%s')\"", buf) == 0) return buf;
    char *log = NULL;
    int rc = kt_run(&log, "mkdir -p '%s' && cd '%s' && timeout 300 npm install --no-audit --no-fund onnxruntime-node "
                    "--onnxruntime-node-install=skip", dir, dir);
    if (rc == 0) rc = kt_run(NULL, "node -e \"require('%s')\"", buf);
    if (rc != 0) {
        char *nl = log ? strrchr(log, '\n') : NULL;
        while (nl && nl > log && nl[1] == 0) *nl = 0, nl = strrchr(log, '\n');
        printf("SKIP onnxruntime-node: npm install failed (offline?): %s\n", nl ? nl + 1 : (log ? log : ""));
    }
    free(log);
    return rc == 0 ? buf : NULL;
}

static void test_onnxruntime(void)
{
    export_fmnist();
    char mod[4096], x[4096], want[4096], *log = NULL;
    if (!ort_module(mod, sizeof mod)) return;
    int rc = kt_run(&log, "node '%s/tests/onnx_export_ort.js' '%s' '%s' '%s' '%s' %g", kt_src_dir(), mod, g_fmnist,
                    golden("x_first256.npy", x, sizeof x), golden("logits_first256.npy", want, sizeof want), TOL);
    printf("  fmnist_export vs PyTorch, %s", log ? log : "");
    free(log);
    CU_ASSERT_EQUAL(rc, 0);
}

/* ---- mnist_cnn: a checkpoint with deterministic values, then both paths ---- */

static float lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xffffff) / (float)0x1000000 - 0.5f;
}

static void write_cnn_ckpt(const char *path)
{
    static const struct {
        const char *name;
        int rank;
        int64_t d[4];
    } P[] = {{"conv0.weight", 4, {8, 1, 3, 3}}, {"conv0.bias", 1, {8}},   {"conv1.weight", 4, {16, 8, 3, 3}},
             {"conv1.bias", 1, {16}},           {"fc.weight", 2, {10, 784}}, {"fc.bias", 1, {10}}};
    kn_st_tensor t[6];
    uint64_t seed = 42;
    for (int i = 0; i < 6; i++) {
        size_t n = 1;
        for (int k = 0; k < P[i].rank; k++) n *= (size_t)P[i].d[k];
        float *v = malloc(n * sizeof *v);
        for (size_t k = 0; k < n; k++) v[k] = lcg(&seed);
        t[i] = (kn_st_tensor){.name = (char *)P[i].name, .dtype = KN_RT_F32, .rank = P[i].rank, .numel = n, .data = v};
        memcpy(t[i].dims, P[i].d, sizeof P[i].d);
    }
    char err[512];
    CU_ASSERT_EQUAL(kn_st_write(path, t, 6, NULL, NULL, 0, err, sizeof err), 0);
    for (int i = 0; i < 6; i++) free(t[i].data);
}

static void write_cnn_input(const char *path)
{
    int64_t dims[4] = {4, 1, 28, 28};
    float *x = malloc(4 * 784 * sizeof *x);
    uint64_t seed = 7;
    for (int i = 0; i < 4 * 784; i++) x[i] = 2.0f * lcg(&seed);
    char err[512];
    CU_ASSERT_EQUAL(kn_npy_write(path, KN_RT_F32, 4, dims, x, err, sizeof err), 0);
    free(x);
}

static void write_cnn_labels(const char *path)
{
    int64_t dims[1] = {4}, y[4] = {0, 1, 2, 3};
    char err[512];
    CU_ASSERT_EQUAL(kn_npy_write(path, KN_RT_I64, 1, dims, y, err, sizeof err), 0);
}

static void test_cnn_roundtrip(void)
{
    char model[4096], ckpt[4096], x[4096], y[4096], exe[4096], onnx[4096], o1[4096], o2[4096], want[4096], got[4096];
    char *log = NULL;
    kt_pathf(model, sizeof model, "%s/models/mnist_cnn.kiln", kt_src_dir());
    kt_pathf(ckpt, sizeof ckpt, "%s/cnn.safetensors", g_dir);
    kt_pathf(x, sizeof x, "%s/cnn_x.npy", g_dir);
    kt_pathf(y, sizeof y, "%s/cnn_y.npy", g_dir);
    kt_pathf(exe, sizeof exe, "%s/mnist_cnn", g_dir);
    kt_pathf(onnx, sizeof onnx, "%s/mnist_cnn.onnx", g_dir);
    kt_pathf(o1, sizeof o1, "%s/cnn_kiln.out", g_dir);
    kt_pathf(o2, sizeof o2, "%s/cnn_onnx.out", g_dir);
    write_cnn_ckpt(ckpt);
    write_cnn_input(x);
    write_cnn_labels(y);
    CU_ASSERT_EQUAL_FATAL(kt_kiln_build("mnist_cnn", model, exe), 0);
    int rc = kt_run(&log, "'%s' run --weights '%s' --in 'x=%s' --in 'y=%s' --out '%s'", exe, ckpt, x, y, o1);
    if (rc) printf("%s\n", log);
    free(log);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    rc = kiln_export(&log, model, ckpt, onnx);
    if (rc) printf("%s\n", log);
    free(log);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(run_onnx_in_kiln(onnx, "cnn_onnx", x, o2), 0);
    kt_pathf(want, sizeof want, "%s/fc.npy", o1);
    kt_pathf(got, sizeof got, "%s/fc.npy", o2);
    CU_ASSERT_EQUAL(kt_compare_npy("cnn_export", "logits vs .kiln build", want, got, 1e-5, 1e-4), 0);
    char mod[4096];
    if (kt_run(NULL, "/usr/bin/python3 -c 'import onnx.checker'") == 0) {
        rc = kt_run(&log, "/usr/bin/python3 -c \"import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), "
                    "full_check=True)\" '%s'", onnx);
        if (rc) printf("%s\n", log);
        free(log);
        CU_ASSERT_EQUAL(rc, 0);
    }
    if (!ort_module(mod, sizeof mod)) return;
    rc = kt_run(&log, "node '%s/tests/onnx_export_ort.js' '%s' '%s' '%s' '%s' 1e-4", kt_src_dir(), mod, onnx, x, want);
    printf("  cnn_export vs the .kiln build, %s", log ? log : "");
    free(log);
    CU_ASSERT_EQUAL(rc, 0);
}

/* ---- errors ---- */

static void expect_error(const char *what, int rc, const char *log, const char *needle)
{
    printf("  %s: status %d: %s", what, rc, log ? log : "(no output)\n");
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(log, needle);
}

static void test_errors(void)
{
    char model[4096], ckpt[4096], out[4096], partial[4096], *log = NULL;
    kt_pathf(model, sizeof model, "%s/models/fmnist_mlp.kiln", kt_src_dir());
    kt_pathf(out, sizeof out, "%s/err.onnx", g_dir);

    kt_pathf(ckpt, sizeof ckpt, "%s/no_such.safetensors", g_dir);
    int rc = kiln_export(&log, model, ckpt, out);
    expect_error("missing --weights file", rc, log, "no_such.safetensors");
    free(log);

    /* the golden checkpoint without bn3.running_var */
    kn_st_file f;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(kn_st_read(golden("fmnist_mlp.safetensors", ckpt, sizeof ckpt), &f, err, sizeof err), 0);
    kn_st_tensor keep[64];
    int n = 0;
    for (int i = 0; i < f.n && n < 64; i++)
        if (strcmp(f.t[i].name, "bn3.running_var") != 0) keep[n++] = f.t[i];
    kt_pathf(partial, sizeof partial, "%s/partial.safetensors", g_dir);
    CU_ASSERT_EQUAL_FATAL(kn_st_write(partial, keep, n, NULL, NULL, 0, err, sizeof err), 0);
    kn_st_free(&f);
    rc = kiln_export(&log, model, partial, out);
    expect_error("checkpoint missing a tensor", rc, log, "no tensor 'bn3.running_var'");
    free(log);

    rc = kiln_export(&log, model, golden("fmnist_mlp.safetensors", ckpt, sizeof ckpt), "/nonexistent-dir/out.onnx");
    expect_error("bad -o path", rc, log, "/nonexistent-dir/out.onnx");
    free(log);

    rc = kiln_export(&log, model, NULL, out);
    expect_error("no --weights, random init", rc, log, "pass --weights");
    free(log);

    /* every unsupported node in one message */
    kt_pathf(model, sizeof model, "%s/unsupported.kiln", g_dir);
    const char *src = "model t\ninput x: f32[N, 4]\nh = softmax(x)\na = argmax(h, dim=1)\n"
                      "b = reduce_sum(h, dim=1)\noutput a\noutput b\n";
    CU_ASSERT_EQUAL_FATAL(kt_write_file(model, src, strlen(src)), 0);
    rc = kiln_export(&log, model, NULL, out);
    expect_error("unsupported ops", rc, log, "node 'a' (argmax), node 'b' (reduce_sum)");
    free(log);
    CU_ASSERT_FALSE(kt_file_exists(out));
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "%s", kt_tmp_dir("onnx_export"));
    CU_TestInfo tests[] = {
        {"fmnist_mlp export re-imported matches PyTorch", test_fmnist_roundtrip},
        {"onnx checker accepts the export", test_onnx_checker},
        {"onnxruntime-node runs the export", test_onnxruntime},
        {"mnist_cnn export matches the compiled model", test_cnn_roundtrip},
        {"errors", test_errors},
        CU_TEST_INFO_NULL,
    };
    return kt_main("onnx_export", tests);
}

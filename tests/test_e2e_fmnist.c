/* test_e2e_fmnist.c — end to end through the real `kiln` driver and the
 * executable it builds, against PyTorch golden values.
 *
 * tests/golden/gen_fmnist.py trained the same fmnist_mlp in PyTorch for one
 * epoch and wrote its checkpoint under kiln's parameter names, the first 256
 * test images with their eval-mode logits, and the full test-split accuracy.
 * Here kiln must load that checkpoint and reproduce those numbers, report
 * bad checkpoints with one clear line (never a crash), and build mnist_mlp.
 *
 * Everything runs through the shell exactly as a user would type it.
 */
#define _GNU_SOURCE
#include "testlib.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"
#define LOGIT_TOL 1e-4

static char g_tmp[4096];       /* scratch dir of this suite */
static char g_golden[4096];    /* $KILN_SRC/tests/golden/fmnist */
static char g_exe[4200];       /* built fmnist_mlp executable */
static int g_built = -1;       /* -1 not tried, 0 failed, 1 built */

/* ---- small helpers ---------------------------------------------------- */

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static const char *tmp(void)
{
    if (!g_tmp[0]) snprintf(g_tmp, sizeof g_tmp, "%s", kt_tmp_dir("e2e_fmnist"));
    return g_tmp;
}

static const char *golden(void)
{
    if (!g_golden[0]) snprintf(g_golden, sizeof g_golden, "%s/tests/golden/fmnist", kt_src_dir());
    return g_golden;
}

/* Builds models/fmnist_mlp.kiln once; later tests reuse the executable. */
static int ensure_built(void)
{
    if (g_built >= 0) return g_built;
    snprintf(g_exe, sizeof g_exe, "%s/fmnist", tmp());
    char *out = NULL;
    int rc = kt_run(&out, "'%s' build '%s/models/fmnist_mlp.kiln' -o '%s'", kt_kiln_bin(),
                    kt_src_dir(), g_exe);
    g_built = rc == 0 && access(g_exe, X_OK) == 0;
    if (!g_built) fprintf(stderr, "\nkiln build fmnist_mlp failed (exit %d):\n%s\n", rc, out ? out : "");
    free(out);
    return g_built;
}

/* The first line of `out` that parses as a JSON object having `key`;
 * caller deletes.  Human output (stderr) is interleaved, so scan lines. */
static cJSON *json_line_with(const char *out, const char *key)
{
    const char *p = out;
    while (p && *p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && (p[n - 1] == '\r' || p[n - 1] == ' ')) n--;
        const char *s = p;
        while (n && (*s == ' ' || *s == '\t')) s++, n--;
        if (n && *s == '{') {
            char *line = strndup(s, n);
            cJSON *j = cJSON_Parse(line);
            free(line);
            if (j && cJSON_IsObject(j) && cJSON_GetObjectItemCaseSensitive(j, key)) return j;
            cJSON_Delete(j);
        }
        p = e ? e + 1 : NULL;
    }
    return NULL;
}

/* Minimal .npy reader (format 1.0-3.0, C order, little-endian '<f4'/'<i8'). */
typedef struct {
    char descr[16];
    int rank;
    long shape[8];
    size_t numel;
    void *data; /* into `raw` */
    char *raw;
} npy;

static int npy_load(const char *path, npy *a)
{
    memset(a, 0, sizeof *a);
    size_t len = 0;
    a->raw = kt_read_file(path, &len);
    if (!a->raw) return -1;
    const unsigned char *b = (const unsigned char *)a->raw;
    if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0) return -1;
    size_t hlen, hoff;
    if (b[6] == 1) hlen = b[8] | (size_t)b[9] << 8, hoff = 10;
    else if (len >= 12) hlen = b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24, hoff = 12;
    else return -1;
    if (hoff + hlen > len) return -1;
    char *h = strndup(a->raw + hoff, hlen);
    int ok = 0;
    char *d = strstr(h, "'descr'"), *f = strstr(h, "'fortran_order'"), *s = strstr(h, "'shape'");
    if (d && f && s && !strstr(f, "True")) {
        d = strchr(d + 7, '\'');
        if (d && sscanf(d + 1, "%15[^']", a->descr) == 1) {
            s = strchr(s, '(');
            a->numel = 1;
            for (char *q = s ? s + 1 : NULL; q && *q && *q != ')' && a->rank < 8;) {
                char *end;
                long v = strtol(q, &end, 10);
                if (end == q) break;
                a->shape[a->rank++] = v;
                a->numel *= (size_t)v;
                q = end;
                while (*q == ',' || *q == ' ') q++;
            }
            size_t esz = strchr(a->descr, '8') ? 8 : 4;
            ok = s && hoff + hlen + a->numel * esz <= len;
        }
    }
    free(h);
    a->data = a->raw + hoff + hlen;
    return ok ? 0 : -1;
}

static void npy_free(npy *a) { free(a->raw); }

/* Reads the reference numbers written by gen_fmnist.py. */
static cJSON *load_reference(void)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/reference.json", golden());
    char *txt = kt_read_file(p, NULL);
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    return j;
}

/* ---- kiln check --------------------------------------------------------- */

static void test_check_fmnist(void)
{
    char *out = NULL;
    int rc = kt_run(&out, "'%s' check '%s/models/fmnist_mlp.kiln'", kt_kiln_bin(), kt_src_dir());
    CU_ASSERT_EQUAL(rc, 0);
    KT_ASSERT_CONTAINS(out, "576,970");
    KT_ASSERT_CONTAINS(out, "arena");
    KT_ASSERT_CONTAINS(out, "fc4");
    KT_ASSERT_CONTAINS(out, "CPU executable (after fusion): ");
    free(out);
}

/* ---- build + run: logits against PyTorch --------------------------------- */

static void test_build_fmnist(void)
{
    CU_ASSERT_FATAL(ensure_built());
}

static void test_run_logits_match_pytorch(void)
{
    CU_ASSERT_FATAL(ensure_built());
    char outdir[4200];
    snprintf(outdir, sizeof outdir, "%s/out", tmp());
    mkdir(outdir, 0755);
    char *out = NULL;
    int rc = kt_run(&out, "'%s' run --weights '%s/fmnist_mlp.safetensors' --in x='%s/x_first256.npy' "
                    "--in y='%s/y_first256.npy' --out '%s'",
                    g_exe, golden(), golden(), golden(), outdir);
    if (rc != 0) fprintf(stderr, "\nrun failed (exit %d):\n%s\n", rc, out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    free(out);

    char got_path[4300], want_path[4300];
    snprintf(got_path, sizeof got_path, "%s/fc4.npy", outdir);
    snprintf(want_path, sizeof want_path, "%s/logits_first256.npy", golden());
    npy got, want;
    int gok = npy_load(got_path, &got), wok = npy_load(want_path, &want);
    CU_ASSERT_EQUAL_FATAL(wok, 0);
    if (gok != 0) fprintf(stderr, "\ncannot read %s as .npy\n", got_path);
    CU_ASSERT_EQUAL_FATAL(gok, 0);
    CU_ASSERT_STRING_EQUAL(got.descr, "<f4");
    CU_ASSERT_EQUAL(got.rank, 2);
    CU_ASSERT_EQUAL(got.shape[0], 256);
    CU_ASSERT_EQUAL(got.shape[1], 10);
    if (got.numel == want.numel && !strcmp(got.descr, "<f4")) {
        const float *g = got.data, *w = want.data;
        double max_abs = 0, max_rel = 0;
        size_t at = 0;
        int finite = 1;
        for (size_t i = 0; i < want.numel; i++) {
            if (!isfinite(g[i])) finite = 0;
            double e = fabs((double)g[i] - (double)w[i]);
            if (!(e <= max_abs)) max_abs = e, at = i;
            double r = e / fmax(fabs((double)w[i]), 1e-6);
            if (r > max_rel) max_rel = r;
        }
        fprintf(stderr, "\n  fc4 vs PyTorch: max abs err %.3g at [%zu,%zu] (got %.7g want %.7g), max rel err %.3g\n",
                max_abs, at / 10, at % 10, g[at], w[at], max_rel);
        CU_ASSERT(finite);
        CU_ASSERT(max_abs <= LOGIT_TOL);
    } else {
        CU_FAIL("fc4.npy has the wrong dtype or element count");
    }
    npy_free(&got);
    npy_free(&want);
}

/* ---- eval on the full test split: exactly PyTorch's accuracy -------------- */

static void test_eval_matches_pytorch_accuracy(void)
{
    if (!file_exists(FMNIST_DIR "/t10k-images-idx3-ubyte.gz")) {
        fprintf(stderr, "\n  skipped: %s is absent (Debian dataset-fashion-mnist)\n", FMNIST_DIR);
        CU_PASS("skipped: no Fashion-MNIST");
        return;
    }
    CU_ASSERT_FATAL(ensure_built());
    cJSON *ref = load_reference();
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    double ref_acc = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ref, "accuracy"));
    double ref_loss = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ref, "loss"));
    double ref_correct = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ref, "correct"));

    char *out = NULL;
    int rc = kt_run(&out, "'%s' eval --data '%s' --weights '%s/fmnist_mlp.safetensors' --split test --json",
                    g_exe, FMNIST_DIR, golden());
    if (rc != 0) fprintf(stderr, "\neval failed (exit %d):\n%s\n", rc, out);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = json_line_with(out, "accuracy");
    if (!j) fprintf(stderr, "\nno JSON line with \"accuracy\" in:\n%s\n", out);
    CU_ASSERT_PTR_NOT_NULL(j);
    if (j) {
        double acc = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "accuracy"));
        cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "n");
        cJSON *correct = cJSON_GetObjectItemCaseSensitive(j, "correct");
        cJSON *loss = cJSON_GetObjectItemCaseSensitive(j, "loss");
        fprintf(stderr, "\n  kiln eval: accuracy %.6f (PyTorch %.6f)", acc, ref_acc);
        if (cJSON_IsNumber(loss))
            fprintf(stderr, ", loss %.6f (PyTorch %.6f)", loss->valuedouble, ref_loss);
        fprintf(stderr, "\n");
        if (cJSON_IsNumber(correct))
            CU_ASSERT_EQUAL((long)correct->valuedouble, (long)ref_correct);
        CU_ASSERT_DOUBLE_EQUAL(acc, ref_acc, 1e-6);
        if (cJSON_IsNumber(n)) CU_ASSERT_EQUAL((long)n->valuedouble, 10000);
        if (cJSON_IsNumber(loss)) CU_ASSERT_DOUBLE_EQUAL(loss->valuedouble, ref_loss, 1e-4);
        cJSON *split = cJSON_GetObjectItemCaseSensitive(j, "split");
        if (cJSON_IsString(split)) CU_ASSERT_STRING_EQUAL(split->valuestring, "test");
        cJSON_Delete(j);
    }
    cJSON_Delete(ref);
    free(out);
}

/* ---- info and bench ----------------------------------------------------- */

static void test_info(void)
{
    CU_ASSERT_FATAL(ensure_built());
    char *out = NULL;
    int rc = kt_run(&out, "'%s' info", g_exe);
    CU_ASSERT_EQUAL(rc, 0);
    int has_count = out && (strstr(out, "576,970") || strstr(out, "576970"));
    if (!has_count) fprintf(stderr, "\ninfo does not show the parameter count 576,970:\n%s\n", out);
    CU_ASSERT(has_count);
    KT_ASSERT_CONTAINS(out, "fmnist_mlp");
    free(out);
}

static void test_bench(void)
{
    CU_ASSERT_FATAL(ensure_built());
    char *out = NULL;
    int rc = kt_run(&out, "'%s' bench --batch 64 --iters 3 --json", g_exe);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = json_line_with(out, "ms_median");
    if (!j) fprintf(stderr, "\nno JSON object with \"ms_median\" in:\n%s\n", out);
    CU_ASSERT_PTR_NOT_NULL(j);
    if (j) {
        cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "ms_median");
        CU_ASSERT(cJSON_IsNumber(ms) && ms->valuedouble > 0 && isfinite(ms->valuedouble));
        cJSON *batch = cJSON_GetObjectItemCaseSensitive(j, "batch");
        if (cJSON_IsNumber(batch)) CU_ASSERT_EQUAL((int)batch->valuedouble, 64);
        cJSON_Delete(j);
    }
    free(out);
}

/* --profile names the nodes of both phases of a training step, heaviest
 * first: the first layer's GEMMs must be among the named nodes. */
static void test_bench_profile(void)
{
    CU_ASSERT_FATAL(ensure_built());
    char *out = NULL;
    int rc = kt_run(&out, "'%s' bench --mode train --batch 64 --iters 3 --warmup 1 --profile", g_exe);
    CU_ASSERT_EQUAL(rc, 0);
    KT_ASSERT_CONTAINS(out, "profile of phase 'train'");
    KT_ASSERT_CONTAINS(out, "profile of phase 'update'");
    KT_ASSERT_CONTAINS(out, "fc0 (linear)");
    KT_ASSERT_CONTAINS(out, "fc0.weight.adam_step (adam_step)");
    free(out);
}

/* ---- bad checkpoints: exit 1, one line naming the culprit, never a crash --- */

/* The golden checkpoint's bytes, with its header split out. */
static char *read_golden_ckpt(size_t *len, uint64_t *hlen)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/fmnist_mlp.safetensors", golden());
    char *b = kt_read_file(p, len);
    if (!b || *len < 8) return NULL;
    *hlen = 0;
    for (int i = 7; i >= 0; i--) *hlen = *hlen << 8 | (unsigned char)b[i];
    return *hlen + 8 <= *len ? b : NULL;
}

/* Replaces the first `from` in the header with `to` (same length). */
static int patch_header(char *b, uint64_t hlen, const char *from, const char *to)
{
    size_t n = strlen(from);
    if (strlen(to) != n) return -1;
    for (uint64_t i = 8; i + n <= 8 + hlen; i++)
        if (!memcmp(b + i, from, n)) {
            memcpy(b + i, to, n);
            return 0;
        }
    return -1;
}

/* Runs eval with checkpoint `bad`; expects exit 1 and some single output
 * line naming `culprit` (or `alt`, when not NULL). */
static void expect_bad_ckpt(const char *bad, const char *culprit, const char *alt)
{
    CU_ASSERT_FATAL(ensure_built());
    char *out = NULL;
    const char *data = file_exists(FMNIST_DIR) ? "--data " FMNIST_DIR : "";
    int rc = kt_run(&out, "timeout 120 '%s' eval %s --weights '%s' --json", g_exe, data, bad);
    if (rc == -1) fprintf(stderr, "\neval --weights %s crashed (signal):\n%s\n", bad, out);
    CU_ASSERT_NOT_EQUAL(rc, -1);
    CU_ASSERT_EQUAL(rc, 1);
    int named = 0;
    for (char *line = out; line && *line;) {
        char *e = strchr(line, '\n');
        if (e) *e = 0;
        if (strstr(line, culprit) || (alt && strstr(line, alt))) named = 1;
        line = e ? e + 1 : NULL;
    }
    if (!named)
        fprintf(stderr, "\nno error line names '%s'%s%s; output was:\n%s\n", culprit,
                alt ? " or " : "", alt ? alt : "", out);
    CU_ASSERT(named);
    CU_ASSERT(out && !strstr(out, "AddressSanitizer") && !strstr(out, "runtime error:"));
    free(out);
}

static void test_bad_ckpt_renamed_tensor(void)
{
    size_t len;
    uint64_t hlen;
    char *b = read_golden_ckpt(&len, &hlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL_FATAL(patch_header(b, hlen, "\"fc2.weight\"", "\"fc2.wieght\""), 0);
    char p[4200];
    snprintf(p, sizeof p, "%s/renamed.safetensors", tmp());
    CU_ASSERT_EQUAL_FATAL(kt_write_file(p, b, len), 0);
    free(b);
    expect_bad_ckpt(p, "fc2.weight", "fc2.wieght");
}

static void test_bad_ckpt_wrong_shape(void)
{
    size_t len;
    uint64_t hlen;
    char *b = read_golden_ckpt(&len, &hlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* Same element count, transposed: a loader must check the shape, not the size. */
    CU_ASSERT_EQUAL_FATAL(patch_header(b, hlen, "[128,256]", "[256,128]"), 0);
    char p[4200];
    snprintf(p, sizeof p, "%s/wrong_shape.safetensors", tmp());
    CU_ASSERT_EQUAL_FATAL(kt_write_file(p, b, len), 0);
    free(b);
    expect_bad_ckpt(p, "fc2.weight", NULL);
}

static void test_bad_ckpt_truncated(void)
{
    size_t len;
    uint64_t hlen;
    char *b = read_golden_ckpt(&len, &hlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    char p[4200];
    snprintf(p, sizeof p, "%s/truncated.safetensors", tmp());
    CU_ASSERT_EQUAL_FATAL(kt_write_file(p, b, len / 2), 0);
    expect_bad_ckpt(p, "truncated.safetensors", "fc");
    /* Cut inside the header too. */
    snprintf(p, sizeof p, "%s/truncated_header.safetensors", tmp());
    CU_ASSERT_EQUAL_FATAL(kt_write_file(p, b, 8 + hlen / 2), 0);
    expect_bad_ckpt(p, "truncated_header.safetensors", NULL);
    free(b);
}

static void test_bad_ckpt_huge_header_length(void)
{
    size_t len;
    uint64_t hlen;
    char *b = read_golden_ckpt(&len, &hlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    memcpy(b, "\xff\xff\xff\xff\xff\xff\xff\x7f", 8); /* header "length" 2^63-1 */
    char p[4200];
    snprintf(p, sizeof p, "%s/huge_header.safetensors", tmp());
    CU_ASSERT_EQUAL_FATAL(kt_write_file(p, b, len), 0);
    free(b);
    expect_bad_ckpt(p, "huge_header.safetensors", NULL);
}

static void test_bad_ckpt_missing_file(void)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/no_such_ckpt.safetensors", tmp());
    expect_bad_ckpt(p, "no_such_ckpt.safetensors", NULL);
}

/* ---- mnist_mlp: builds, evaluates with fresh weights -------------------- */

static void test_mnist_mlp(void)
{
    char *out = NULL;
    int rc = kt_run(&out, "'%s' check '%s/models/mnist_mlp.kiln'", kt_kiln_bin(), kt_src_dir());
    CU_ASSERT_EQUAL(rc, 0);
    KT_ASSERT_CONTAINS(out, "101,770");
    free(out);

    char exe[4200];
    snprintf(exe, sizeof exe, "%s/mnist", tmp());
    rc = kt_run(&out, "'%s' build '%s/models/mnist_mlp.kiln' -o '%s'", kt_kiln_bin(), kt_src_dir(), exe);
    if (rc != 0) fprintf(stderr, "\nbuild mnist_mlp failed (exit %d):\n%s\n", rc, out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    free(out);

    char mnist[4200];
    snprintf(mnist, sizeof mnist, "%s/../shared/data/mnist", kt_src_dir());
    char probe[4300];
    snprintf(probe, sizeof probe, "%s/t10k-images-idx3-ubyte.gz", mnist);
    if (!file_exists(probe)) snprintf(mnist, sizeof mnist, "/work/shared/data/mnist");
    snprintf(probe, sizeof probe, "%s/t10k-images-idx3-ubyte.gz", mnist);
    if (!file_exists(probe)) {
        fprintf(stderr, "\n  skipped mnist_mlp eval: no MNIST at $KILN_SRC/../shared/data/mnist\n");
        CU_PASS("skipped: no MNIST");
        return;
    }
    rc = kt_run(&out, "'%s' eval --data '%s' --json", exe, mnist);
    if (rc != 0) fprintf(stderr, "\nmnist eval failed (exit %d):\n%s\n", rc, out);
    CU_ASSERT_EQUAL(rc, 0);
    cJSON *j = json_line_with(out, "accuracy");
    if (!j) fprintf(stderr, "\nno JSON line with \"accuracy\" in:\n%s\n", out);
    CU_ASSERT_PTR_NOT_NULL(j);
    if (j) {
        cJSON *acc = cJSON_GetObjectItemCaseSensitive(j, "accuracy");
        cJSON *loss = cJSON_GetObjectItemCaseSensitive(j, "loss");
        CU_ASSERT(cJSON_IsNumber(acc) && acc->valuedouble >= 0 && acc->valuedouble <= 1);
        if (cJSON_IsNumber(loss)) CU_ASSERT(isfinite(loss->valuedouble) && loss->valuedouble > 0);
        cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "n");
        if (cJSON_IsNumber(n)) CU_ASSERT_EQUAL((long)n->valuedouble, 10000);
        cJSON_Delete(j);
    }
    free(out);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"check fmnist_mlp: 576,970 params, arena", test_check_fmnist},
        {"build fmnist_mlp", test_build_fmnist},
        {"run: logits match PyTorch within 1e-4", test_run_logits_match_pytorch},
        {"eval: test accuracy equals PyTorch's", test_eval_matches_pytorch_accuracy},
        {"info shows parameter count", test_info},
        {"bench --json has ms_median", test_bench},
        {"bench --profile names nodes of both phases", test_bench_profile},
        {"bad checkpoint: renamed tensor", test_bad_ckpt_renamed_tensor},
        {"bad checkpoint: wrong shape", test_bad_ckpt_wrong_shape},
        {"bad checkpoint: truncated", test_bad_ckpt_truncated},
        {"bad checkpoint: huge header length", test_bad_ckpt_huge_header_length},
        {"bad checkpoint: missing file", test_bad_ckpt_missing_file},
        {"mnist_mlp builds and evaluates", test_mnist_mlp},
        CU_TEST_INFO_NULL,
    };
    return kt_main("e2e_fmnist", tests);
}

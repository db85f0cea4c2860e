/* test_ops_golden.c — every operator against PyTorch, through the real driver.
 *
 * tests/golden/gen_ops.py wrote one folder per case under tests/golden/ops/:
 * a one-op model.kiln, its inputs as NAME.npy, weights.safetensors when the
 * op has parameters, and the outputs PyTorch computed as OUTPUT.npy.  For each
 * case (folders scanned at run time, in name order) this suite runs
 *     kiln build CASE/model.kiln -o TMP/exe
 *     TMP/exe run [--weights CASE/weights.safetensors] --in NAME=CASE/NAME.npy... --out TMP/out
 * and compares every output with the expected array.
 *
 * Tolerance: |got - want| <= 1e-5 + 1e-4 * |want| per element (f32 outputs);
 * i64 outputs (argmax) must match exactly.  A failure prints the case, the
 * output, the flat index and both values, plus max abs/rel error.
 */
#define _GNU_SOURCE
#include "testlib.h"
#include "npy.h"
#include "ir/kn_util.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ABS_TOL 1e-5
#define REL_TOL 1e-4
#define MAX_NAMES 16

typedef struct {
    char inputs[MAX_NAMES][128];
    int n_inputs;
    char outputs[MAX_NAMES][128];
    int n_outputs;
} case_io;

/* snprintf into a path buffer; a truncated path is a test setup error. */
static void pathf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    CU_ASSERT_FATAL(w >= 0 && (size_t)w < cap);
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Copies the identifier at *p into out, advancing *p. */
static void take_ident(const char **p, char *out, size_t cap)
{
    size_t k = 0;
    while (**p == ' ' || **p == '\t') (*p)++;
    while ((**p == '_' || **p == '.' || (**p >= '0' && **p <= '9') ||
            (**p >= 'a' && **p <= 'z') || (**p >= 'A' && **p <= 'Z')) && k + 1 < cap)
        out[k++] = *(*p)++;
    out[k] = 0;
}

/* Reads the input/label declarations and `output` lists of a model file. */
static int read_case_io(const char *model_path, case_io *io)
{
    memset(io, 0, sizeof *io);
    char *src = kt_read_file(model_path, NULL);
    if (!src) return -1;
    for (char *line = strtok(src, "\n"); line; line = strtok(NULL, "\n")) {
        const char *p = line;
        if (!strncmp(p, "input ", 6) || !strncmp(p, "label ", 6)) {
            p += 6;
            if (io->n_inputs < MAX_NAMES) take_ident(&p, io->inputs[io->n_inputs++], 128);
        } else if (!strncmp(p, "output ", 7)) {
            p += 7;
            for (;;) {
                if (io->n_outputs < MAX_NAMES) take_ident(&p, io->outputs[io->n_outputs++], 128);
                while (*p == ' ') p++;
                if (*p != ',') break;
                p++;
            }
        }
    }
    free(src);
    return io->n_inputs > 0 && io->n_outputs > 0 ? 0 : -1;
}

static int same_shape(const kn_npy *a, const kn_npy *b)
{
    if (a->numel != b->numel) return 0;
    if (a->rank == b->rank) {
        for (int i = 0; i < a->rank; i++)
            if (a->dims[i] != b->dims[i]) return 0;
        return 1;
    }
    return a->numel == 1; /* a scalar written as [] or [1] */
}

/* Compares one output; returns 0 when within tolerance. */
static int compare_output(const char *cname, const char *oname, const char *want_path,
                          const char *got_path)
{
    kn_npy want, got;
    char err[1024];
    memset(&want, 0, sizeof want);
    memset(&got, 0, sizeof got);
    int bad = 0;
    if (kn_npy_read(want_path, &want, err, sizeof err)) {
        printf("  %s/%s: cannot read expected: %s\n", cname, oname, err);
        return 1;
    }
    if (kn_npy_read(got_path, &got, err, sizeof err)) {
        printf("  %s/%s: cannot read kiln's output: %s\n", cname, oname, err);
        kn_npy_free(&want);
        return 1;
    }
    if (want.dtype != got.dtype || !same_shape(&want, &got)) {
        printf("  %s/%s: got dtype %d rank %d numel %zu, expected dtype %d rank %d numel %zu\n",
               cname, oname, got.dtype, got.rank, got.numel, want.dtype, want.rank, want.numel);
        bad = 1;
    } else if (want.dtype == KN_RT_I64) {
        const int64_t *w = want.data, *g = got.data;
        for (size_t i = 0; i < want.numel && !bad; i++)
            if (w[i] != g[i]) {
                printf("  %s/%s: index %zu: got %lld, expected %lld\n", cname, oname, i,
                       (long long)g[i], (long long)w[i]);
                bad = 1;
            }
        if (!bad) printf("  %s/%s: ok (exact)\n", cname, oname);
    } else {
        const float *w = want.data, *g = got.data;
        double max_abs = 0, max_rel = 0;
        size_t worst = 0;
        int worst_bad = 0;
        for (size_t i = 0; i < want.numel; i++) {
            double a = fabs((double)g[i] - (double)w[i]);
            double r = a / (fabs((double)w[i]) > 1e-30 ? fabs((double)w[i]) : 1e-30);
            int over = !(a <= ABS_TOL + REL_TOL * fabs((double)w[i])); /* NaN fails */
            if (a > max_abs || a != a) max_abs = a;
            if (r > max_rel) max_rel = r;
            if (over && !worst_bad) {
                worst = i;
                worst_bad = 1;
            }
        }
        if (worst_bad) {
            printf("  %s/%s: index %zu: got %.9g, expected %.9g (max abs err %.3g, max rel err %.3g,"
                   " tolerance %g abs + %g rel)\n", cname, oname, worst, (double)g[worst],
                   (double)w[worst], max_abs, max_rel, ABS_TOL, REL_TOL);
            bad = 1;
        } else {
            printf("  %s/%s: ok (max abs err %.3g, max rel err %.3g)\n", cname, oname, max_abs,
                   max_rel);
        }
    }
    kn_npy_free(&want);
    kn_npy_free(&got);
    return bad;
}

/* Builds, runs and checks one case; returns the number of failures. */
static int run_case(const char *dir, const char *cname, const char *tmp)
{
    char path[4096], exe[4096], outdir[4096];
    case_io io;
    pathf(path, sizeof path, "%s/%s/model.kiln", dir, cname);
    if (read_case_io(path, &io)) {
        printf("  %s: cannot read inputs/outputs of %s\n", cname, path);
        return 1;
    }
    pathf(exe, sizeof exe, "%s/%s.exe", tmp, cname);
    pathf(outdir, sizeof outdir, "%s/%s.out", tmp, cname);
    char *log = NULL;
    int rc = kt_run(&log, "'%s' build '%s' -o '%s'", kt_kiln_bin(), path, exe);
    if (rc != 0) {
        printf("  %s: kiln build failed (status %d):\n%s\n", cname, rc, log ? log : "");
        free(log);
        return 1;
    }
    free(log);

    kn_strbuf cmd;
    kn_sb_init(&cmd);
    kn_sb_printf(&cmd, "'%s' run --out '%s'", exe, outdir);
    pathf(path, sizeof path, "%s/%s/weights.safetensors", dir, cname);
    if (file_exists(path)) kn_sb_printf(&cmd, " --weights '%s'", path);
    for (int i = 0; i < io.n_inputs; i++)
        kn_sb_printf(&cmd, " --in '%s=%s/%s/%s.npy'", io.inputs[i], dir, cname, io.inputs[i]);
    rc = kt_run(&log, "%s", cmd.s);
    if (rc != 0) {
        printf("  %s: run failed (status %d): %s\n%s\n", cname, rc, cmd.s, log ? log : "");
        free(log);
        kn_sb_free(&cmd);
        return 1;
    }
    free(log);
    kn_sb_free(&cmd);

    int fails = 0;
    for (int i = 0; i < io.n_outputs; i++) {
        char want[4096], got[4096];
        pathf(want, sizeof want, "%s/%s/%s.npy", dir, cname, io.outputs[i]);
        pathf(got, sizeof got, "%s/%s.npy", outdir, io.outputs[i]);
        fails += compare_output(cname, io.outputs[i], want, got);
    }
    return fails;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_all_cases(void)
{
    char dir[4096];
    pathf(dir, sizeof dir, "%s/tests/golden/ops", kt_src_dir());
    DIR *dp = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
    char *names[1024];
    int count = 0;
    for (struct dirent *de; (de = readdir(dp)) && count < 1024;) {
        if (de->d_name[0] == '.') continue;
        char p[4096];
        pathf(p, sizeof p, "%s/%s/model.kiln", dir, de->d_name);
        if (file_exists(p)) names[count++] = strdup(de->d_name);
    }
    closedir(dp);
    qsort(names, (size_t)count, sizeof names[0], cmp_str);
    CU_ASSERT_FATAL(count > 0);

    const char *tmp = kt_tmp_dir("ops_golden");
    char tmpdir[4096];
    pathf(tmpdir, sizeof tmpdir, "%s", tmp);
    int failed = 0;
    for (int i = 0; i < count; i++) {
        printf("case %s\n", names[i]);
        if (run_case(dir, names[i], tmpdir)) {
            failed++;
            CU_FAIL("op golden case failed (see output above)");
        }
        free(names[i]);
    }
    printf("op golden cases: %d passed, %d failed\n", count - failed, failed);
    fflush(stdout);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"every op case matches PyTorch", test_all_cases},
        CU_TEST_INFO_NULL,
    };
    return kt_main("ops_golden", tests);
}

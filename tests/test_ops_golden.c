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

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ABS_TOL 1e-5
#define REL_TOL 1e-4
#define MAX_NAMES 16

typedef struct {
    char inputs[MAX_NAMES][128];
    int n_inputs;
    char outputs[MAX_NAMES][128];
    int n_outputs;
} case_io;

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

/* Builds, runs and checks one case; returns the number of failures. */
static int run_case(const char *dir, const char *cname, const char *tmp)
{
    char path[4096], exe[4096], outdir[4096];
    case_io io;
    kt_pathf(path, sizeof path, "%s/%s/model.kiln", dir, cname);
    if (read_case_io(path, &io)) {
        printf("  %s: cannot read inputs/outputs of %s\n", cname, path);
        return 1;
    }
    kt_pathf(exe, sizeof exe, "%s/%s.exe", tmp, cname);
    kt_pathf(outdir, sizeof outdir, "%s/%s.out", tmp, cname);
    if (kt_kiln_build(cname, path, exe) != 0) return 1;

    kn_strbuf cmd;
    kn_sb_init(&cmd);
    kn_sb_printf(&cmd, "'%s' run --out '%s'", exe, outdir);
    kt_pathf(path, sizeof path, "%s/%s/weights.safetensors", dir, cname);
    if (kt_file_exists(path)) kn_sb_printf(&cmd, " --weights '%s'", path);
    for (int i = 0; i < io.n_inputs; i++)
        kn_sb_printf(&cmd, " --in '%s=%s/%s/%s.npy'", io.inputs[i], dir, cname, io.inputs[i]);
    char *log = NULL;
    int rc = kt_run(&log, "%s", cmd.s);
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
        kt_pathf(want, sizeof want, "%s/%s/%s.npy", dir, cname, io.outputs[i]);
        kt_pathf(got, sizeof got, "%s/%s.npy", outdir, io.outputs[i]);
        fails += kt_compare_npy(cname, io.outputs[i], want, got, ABS_TOL, REL_TOL);
    }
    return fails;
}

static void test_all_cases(void)
{
    char dir[4096];
    kt_pathf(dir, sizeof dir, "%s/tests/golden/ops", kt_src_dir());
    char **names;
    int count = kt_list_cases(dir, "model.kiln", &names);
    CU_ASSERT_FATAL(count > 0);

    const char *tmp = kt_tmp_dir("ops_golden");
    char tmpdir[4096];
    kt_pathf(tmpdir, sizeof tmpdir, "%s", tmp);
    int failed = 0;
    for (int i = 0; i < count; i++) {
        printf("case %s\n", names[i]);
        if (run_case(dir, names[i], tmpdir)) {
            failed++;
            CU_FAIL("op golden case failed (see output above)");
        }
        free(names[i]);
    }
    free(names);
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

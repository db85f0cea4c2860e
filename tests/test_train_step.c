/* test_train_step.c — whole training steps of fmnist_mlp against PyTorch.
 *
 * tests/golden/gen_train_step.py ran the same network in PyTorch from the
 * same start weights (tests/golden/fmnist/fmnist_mlp.safetensors) on the
 * first 192 Fashion-MNIST training images, in order, with dropout disabled:
 *   - the gradient of every parameter for the first batch of 64, and the
 *     intermediates fc0, bn3 and fc4: `EXE train --dump-grads --retain`
 *     must write the same numbers;
 *   - every parameter and batchnorm running statistic after 3 steps of SGD,
 *     momentum (with L2 decay) and Nesterov, and after 1 step of Adam and
 *     AdamW: one epoch of `EXE train --limit 64*K --save` must leave the
 *     same checkpoint.  Adam's steps get a per-element tolerance that grows
 *     where the exact gradient is near 0 (the script explains why).
 * Large tensors are compared on a fixed random sample of 2048 elements
 * (golden/train_step/index/NAME.npy), which keeps the goldens small.
 *
 * The model is models/fmnist_mlp.kiln itself, rewritten in two places:
 * dropout p=0.0 (PyTorch cannot draw kiln's masks) and no `shuffle` (so
 * batch b is samples [64b, 64b+64) as in the script), plus the optimizer of
 * the case. */
#include "testlib.h"

#include "kn_safetensors.h"
#include "npy.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FASHION "/usr/share/datasets/fashion-mnist"
/* Gradients and forward values: float32 sums in a different order. */
#define GRAD_ABS 1e-7
#define GRAD_REL 1e-4
/* Parameters after the steps: the 1e-5 relative, plus an absolute
 * floor for elements that are almost zero. */
#define PARAM_ABS 1e-6
#define PARAM_REL 1e-5

static const char *tmp;
static char golden[4096], start[4200];

static bool have_fashion(void) { return access(FASHION "/train-images-idx3-ubyte.gz", R_OK) == 0; }

/* Replaces the first occurrence of `from` in *text with `to`. */
static bool replace(char **text, const char *from, const char *to)
{
    char *at = strstr(*text, from);
    if (!at) return false;
    size_t head = (size_t)(at - *text), lf = strlen(from), lt = strlen(to), total = strlen(*text);
    char *out = malloc(total - lf + lt + 1);
    memcpy(out, *text, head);
    memcpy(out + head, to, lt);
    memcpy(out + head + lt, at + lf, total - head - lf + 1);
    free(*text);
    *text = out;
    return true;
}

/* fmnist_mlp without dropout or shuffling, with `optimizer` if given; built
 * to tmp/<tag>.  Returns 0 when built. */
static int build_variant(const char *tag, const char *optimizer, char *exe, size_t cap)
{
    char path[4200];
    kt_pathf(path, sizeof path, "%s/models/fmnist_mlp.kiln", kt_src_dir());
    char *text = kt_read_file(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    while (replace(&text, "p=0.3", "p=0.0")) {
    }
    CU_ASSERT_FATAL(replace(&text, "shuffle", ""));
    if (optimizer) {
        char *at = strstr(text, "optimizer ");
        CU_ASSERT_PTR_NOT_NULL_FATAL(at);
        char *end = strchr(at + 10, ')');
        CU_ASSERT_PTR_NOT_NULL_FATAL(end);
        char old[256];
        snprintf(old, sizeof old, "%.*s", (int)(end + 1 - at), at);
        char now[300];
        snprintf(now, sizeof now, "optimizer %s", optimizer);
        CU_ASSERT_FATAL(replace(&text, old, now));
    }
    kt_pathf(path, sizeof path, "%s/%s.kiln", tmp, tag);
    CU_ASSERT_EQUAL_FATAL(kt_write_file(path, text, strlen(text)), 0);
    free(text);
    kt_pathf(exe, cap, "%s/%s", tmp, tag);
    char *out = NULL;
    int rc = kt_run(&out, "'%s' build '%s' -o '%s'", kt_kiln_bin(), path, exe);
    if (rc) printf("%s\n", out ? out : "");
    free(out);
    return rc;
}

/* Like kt_compare_f32, with one absolute tolerance per element. */
static int compare_elementwise(const char *cname, const char *name, const float *w, const float *g,
                               const float *abs_tol, size_t n, double rel_tol)
{
    double max_abs = 0, max_ratio = 0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs((double)g[i] - (double)w[i]), lim = abs_tol[i] + rel_tol * fabs((double)w[i]);
        if (!(a <= lim)) {
            printf("  %s/%s: element %zu: got %.9g, expected %.9g (tolerance %.3g)\n", cname, name, i, (double)g[i],
                   (double)w[i], lim);
            return 1;
        }
        if (a > max_abs) max_abs = a;
        if (a / lim > max_ratio) max_ratio = a / lim;
    }
    printf("  %s/%s: ok (max abs err %.3g, at most %.2f of the per-element tolerance)\n", cname, name, max_abs,
           max_ratio);
    return 0;
}

/* The golden values of `name` and kiln's, restricted to the sample index
 * when the golden keeps one, within abs_tol + rel_tol*|want|, or within a
 * per-element absolute tolerance read from tol_path.  Returns 0 when within
 * tolerance. */
static int compare_values(const char *cname, const char *name, const char *want_path, const float *got,
                          size_t got_numel, double abs_tol, double rel_tol, const char *tol_path)
{
    kn_npy want, idx;
    memset(&want, 0, sizeof want);
    memset(&idx, 0, sizeof idx);
    char err[1024], ipath[4200];
    if (kn_npy_read(want_path, &want, err, sizeof err)) {
        printf("  %s/%s: %s\n", cname, name, err);
        return 1;
    }
    kt_pathf(ipath, sizeof ipath, "%s/index/%s.npy", golden, name);
    float *picked = malloc(want.numel * sizeof *picked + 1);
    int bad = 0;
    if (kt_file_exists(ipath)) {
        bad = kn_npy_read(ipath, &idx, err, sizeof err) != 0 || idx.numel != want.numel;
        for (size_t i = 0; !bad && i < idx.numel; i++) {
            int64_t k = ((const int64_t *)idx.data)[i];
            if (k < 0 || (size_t)k >= got_numel) bad = 1;
            else picked[i] = got[k];
        }
    } else if (got_numel != want.numel) {
        bad = 1;
    } else {
        memcpy(picked, got, got_numel * sizeof *picked);
    }
    kn_npy tol;
    memset(&tol, 0, sizeof tol);
    if (bad)
        printf("  %s/%s: kiln has %zu elements, golden %zu\n", cname, name, got_numel, want.numel);
    else if (!tol_path)
        bad = kt_compare_f32(cname, name, want.data, picked, want.numel, abs_tol, rel_tol);
    else if (kn_npy_read(tol_path, &tol, err, sizeof err) || tol.numel != want.numel)
        bad = printf("  %s/%s: bad tolerance file %s\n", cname, name, tol_path) > 0;
    else
        bad = compare_elementwise(cname, name, want.data, picked, tol.data, want.numel, rel_tol);
    kn_npy_free(&tol);
    free(picked);
    kn_npy_free(&want);
    kn_npy_free(&idx);
    return bad;
}

static int compare_npy_file(const char *cname, const char *name, const char *want_path, const char *got_path,
                            double abs_tol, double rel_tol)
{
    kn_npy got;
    memset(&got, 0, sizeof got);
    char err[1024];
    if (kn_npy_read(got_path, &got, err, sizeof err)) {
        printf("  %s/%s: kiln wrote no readable file: %s\n", cname, name, err);
        return 1;
    }
    int bad = compare_values(cname, name, want_path, got.data, got.numel, abs_tol, rel_tol, NULL);
    kn_npy_free(&got);
    return bad;
}

/* Strips ".npy" from a golden file name. */
static void stem(const char *file, char *out, size_t cap)
{
    snprintf(out, cap, "%s", file);
    char *dot = strstr(out, ".npy");
    if (dot) *dot = 0;
}

static int list_npy(const char *dir, char ***names)
{
    char *out = NULL;
    int rc = kt_run(&out, "ls '%s'", dir);
    int n = 0;
    *names = NULL;
    for (char *save = NULL, *t = rc == 0 ? strtok_r(out, "\n", &save) : NULL; t; t = strtok_r(NULL, "\n", &save)) {
        if (!strstr(t, ".npy")) continue;
        *names = realloc(*names, sizeof **names * (size_t)(n + 1));
        (*names)[n++] = strdup(t);
    }
    free(out);
    return n;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static void test_dump_grads_and_retain(void)
{
    if (!have_fashion()) {
        printf("  skipped: no Fashion-MNIST in " FASHION " (Debian package dataset-fashion-mnist)\n");
        return;
    }
    char exe[4200], dump[4200], dir[4200], want[4400], got[4400], name[512];
    CU_ASSERT_EQUAL_FATAL(build_variant("nodrop", NULL, exe, sizeof exe), 0);
    kt_pathf(dump, sizeof dump, "%s/dump", tmp);
    char *out = NULL;
    int rc = kt_run(&out, "'%s' train --weights '%s' --limit 64 --steps 1 --quiet --dump-grads '%s' "
                          "--retain fc0,bn3,fc4", exe, start, dump);
    if (rc) printf("%s\n", out ? out : "");
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    free(out);

    char **files;
    kt_pathf(dir, sizeof dir, "%s/grads", golden);
    int n = list_npy(dir, &files);
    CU_ASSERT_EQUAL(n, 18); /* weight and bias of fc0..fc4 and bn0..bn3 */
    for (int i = 0; i < n; i++) {
        stem(files[i], name, sizeof name);
        kt_pathf(want, sizeof want, "%s/%s", dir, files[i]);
        kt_pathf(got, sizeof got, "%s/%s.grad.npy", dump, name);
        CU_ASSERT_EQUAL(compare_npy_file("grad", name, want, got, GRAD_ABS, GRAD_REL), 0);
    }
    free_names(files, n);

    kt_pathf(dir, sizeof dir, "%s/retain", golden);
    n = list_npy(dir, &files);
    CU_ASSERT_EQUAL(n, 3);
    for (int i = 0; i < n; i++) {
        stem(files[i], name, sizeof name);
        kt_pathf(want, sizeof want, "%s/%s", dir, files[i]);
        kt_pathf(got, sizeof got, "%s/%s.npy", dump, name);
        CU_ASSERT_EQUAL(compare_npy_file("retain", name, want, got, 1e-5, 1e-5), 0);
    }
    free_names(files, n);

    /* Unknown names and --retain alone are usage errors naming the problem. */
    out = NULL;
    rc = kt_run(&out, "'%s' train --steps 1 --dump-grads '%s' --retain bn9", exe, dump);
    CU_ASSERT_EQUAL(rc, 2);
    KT_ASSERT_CONTAINS(out, "no value 'bn9' (did you mean 'bn0'?)");
    free(out);
    rc = kt_run(&out, "'%s' train --steps 1 --retain fc0", exe);
    CU_ASSERT_EQUAL(rc, 2);
    KT_ASSERT_CONTAINS(out, "--retain NAME needs --dump-grads DIR");
    free(out);
}

/* A case's config.txt: `optimizer SETTING`, `steps K`. */
typedef struct {
    char optimizer[256];
    int steps;
} case_config;

static int read_config(const char *cdir, case_config *cfg)
{
    char path[4400];
    kt_pathf(path, sizeof path, "%s/config.txt", cdir);
    char *text = kt_read_file(path, NULL);
    if (!text) return -1;
    memset(cfg, 0, sizeof *cfg);
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(l, "optimizer ", 10)) snprintf(cfg->optimizer, sizeof cfg->optimizer, "%s", l + 10);
        else if (!strncmp(l, "steps ", 6)) cfg->steps = atoi(l + 6);
    }
    free(text);
    return cfg->optimizer[0] && cfg->steps > 0 ? 0 : -1;
}

/* One optimizer case: K steps, then every tensor of the checkpoint. */
static void run_case(const char *cname)
{
    char cdir[4200], exe[4200], ckpt[4400], after[4400], want[4600], tol[4600], name[512];
    case_config cfg;
    kt_pathf(cdir, sizeof cdir, "%s/%s", golden, cname);
    CU_ASSERT_EQUAL_FATAL(read_config(cdir, &cfg), 0);
    printf("  %s: optimizer %s, %d steps\n", cname, cfg.optimizer, cfg.steps);
    CU_ASSERT_EQUAL_FATAL(build_variant(cname, cfg.optimizer, exe, sizeof exe), 0);
    kt_pathf(ckpt, sizeof ckpt, "%s/%s.safetensors", tmp, cname);
    char *out = NULL;
    int rc = kt_run(&out, "'%s' train --weights '%s' --limit %d --batch 64 --epochs 1 --quiet --save '%s'", exe,
                    start, 64 * cfg.steps, ckpt);
    if (rc) printf("%s\n", out ? out : "");
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    free(out);

    kn_st_file f;
    char err[1024], steps[16];
    CU_ASSERT_EQUAL_FATAL(kn_st_read(ckpt, &f, err, sizeof err), 0);
    snprintf(steps, sizeof steps, "%d", cfg.steps);
    CU_ASSERT_STRING_EQUAL(kn_st_meta(&f, "step"), steps);
    char **files;
    kt_pathf(after, sizeof after, "%s/after", cdir);
    int n = list_npy(after, &files);
    CU_ASSERT_EQUAL(n, 26); /* 18 parameters + 8 running statistics */
    for (int i = 0; i < n; i++) {
        stem(files[i], name, sizeof name);
        const kn_st_tensor *t = kn_st_find(&f, name);
        CU_ASSERT_PTR_NOT_NULL(t);
        if (!t) {
            printf("  %s: checkpoint has no tensor %s\n", cname, name);
            continue;
        }
        size_t numel = 1;
        for (int d = 0; d < t->rank; d++) numel *= (size_t)t->dims[d];
        kt_pathf(want, sizeof want, "%s/%s", after, files[i]);
        kt_pathf(tol, sizeof tol, "%s/abs_tol/%s", cdir, files[i]);
        CU_ASSERT_EQUAL(compare_values(cname, name, want, t->data, numel, PARAM_ABS, PARAM_REL,
                                       kt_file_exists(tol) ? tol : NULL), 0);
    }
    free_names(files, n);
    kn_st_free(&f);
}

static void test_optimizer_steps(void)
{
    if (!have_fashion()) {
        printf("  skipped: no Fashion-MNIST in " FASHION " (Debian package dataset-fashion-mnist)\n");
        return;
    }
    const char *cases[] = {"sgd", "momentum", "nesterov", "adam", "adamw"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(cases[i]);
}

int main(void)
{
    tmp = kt_tmp_dir("train_step");
    snprintf(golden, sizeof golden, "%s/tests/golden/train_step", kt_src_dir());
    snprintf(start, sizeof start, "%s/tests/golden/fmnist/fmnist_mlp.safetensors", kt_src_dir());
    CU_TestInfo tests[] = {
        {"--dump-grads and --retain match PyTorch's first step", test_dump_grads_and_retain},
        {"steps of SGD, momentum, Nesterov, Adam, AdamW match PyTorch", test_optimizer_steps},
        CU_TEST_INFO_NULL,
    };
    return kt_main("train_step", tests);
}

/* testlib.c — see testlib.h. */
#define _GNU_SOURCE
#include "testlib.h"
#include "kiln_config.h"

#include <CUnit/Basic.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kn_rt.h"
#include "kn_rt_arena.h"
#include "kn_safetensors.h"
#include "npy.h"
#include <sys/wait.h>
#include <unistd.h>

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

const char *kt_kiln_bin(void) { return env_or("KILN_BIN", "kiln"); }
const char *kt_src_dir(void) { return env_or("KILN_SRC", "."); }

const char *kt_tmp_dir(const char *tag)
{
    static char path[4096];
    const char *base = env_or("KILN_TEST_TMP", "/tmp");
    mkdir(base, 0755);
    snprintf(path, sizeof path, "%s/%s-XXXXXX", base, tag);
    if (!mkdtemp(path)) {
        fprintf(stderr, "mkdtemp %s: %s\n", path, strerror(errno));
        abort();
    }
    return path;
}

int kt_run(char **out, const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[16500];
    snprintf(full, sizeof full, "( %s ) 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += k;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    int st = pclose(p);
    if (out) *out = buf; else free(buf);
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return -1;
}

void kt_toolchain(kn_toolchain *tc)
{
    tc->cc = env_or("KILN_CC", KILN_C_COMPILER);
    /* The same overrides as `kiln build` (cli/compile.c): a relocated build,
     * e.g. tests/gpu/check.sh's pack on a GPU machine. */
    tc->rt_include = env_or("KILN_RT_INCLUDE", KILN_RT_INCLUDE);
    tc->rt_lib = env_or("KILN_RT_LIB", KILN_RT_LIB);
    tc->link_flags = KILN_RT_LINK_FLAGS;
    tc->extra_cflags = KILN_RT_CFLAGS;
    tc->opt_flags = "-O2";
    tc->cuda_libs = NULL;
}

char *kt_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = 0;
    if (len) *len = got;
    return buf;
}

int kt_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

void kt_assert_contains(const char *haystack, const char *needle,
                        const char *file, int line)
{
    int ok = haystack && needle && strstr(haystack, needle) != NULL;
    if (!ok)
        fprintf(stderr, "\n%s:%d: expected to find \"%s\" in:\n%s\n", file,
                line, needle ? needle : "(null)", haystack ? haystack : "(null)");
    CU_assertImplementation(ok, line, "output contains expected text", file, "", CU_FALSE);
}

int kt_main(const char *suite, CU_TestInfo *tests)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_SuiteInfo suites[] = {{suite, NULL, NULL, NULL, NULL, tests}, CU_SUITE_INFO_NULL};
    if (CU_register_suites(suites) != CUE_SUCCESS) return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) return 1; /* a suite that runs nothing is a defect */
    return failed ? 1 : 0;
}

void kt_pathf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    CU_ASSERT_FATAL(w >= 0 && (size_t)w < cap);
}

int kt_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int kt_list_cases(const char *dir, const char *marker, char ***names)
{
    DIR *dp = opendir(dir);
    int count = 0, cap = 64;
    *names = malloc(sizeof(char *) * (size_t)cap);
    if (!dp) return 0;
    for (struct dirent *de; (de = readdir(dp));) {
        if (de->d_name[0] == '.') continue;
        char p[4096];
        kt_pathf(p, sizeof p, "%s/%s/%s", dir, de->d_name, marker);
        if (!kt_file_exists(p)) continue;
        if (count == cap) *names = realloc(*names, sizeof(char *) * (size_t)(cap *= 2));
        (*names)[count++] = strdup(de->d_name);
    }
    closedir(dp);
    qsort(*names, (size_t)count, sizeof(char *), cmp_name);
    return count;
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

static int compare_i64(const char *cname, const char *what, const kn_npy *want, const kn_npy *got)
{
    const int64_t *w = want->data, *g = got->data;
    for (size_t i = 0; i < want->numel; i++)
        if (w[i] != g[i]) {
            printf("  %s/%s: index %zu: got %lld, expected %lld\n", cname, what, i, (long long)g[i], (long long)w[i]);
            return 1;
        }
    printf("  %s/%s: ok (exact)\n", cname, what);
    return 0;
}

int kt_compare_f32(const char *cname, const char *what, const float *w, const float *g, size_t n,
                   double abs_tol, double rel_tol)
{
    double max_abs = 0, max_rel = 0;
    size_t worst = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs((double)g[i] - (double)w[i]);
        double r = a / fmax(fabs((double)w[i]), 1e-30);
        if (!(a <= abs_tol + rel_tol * fabs((double)w[i])) && !bad) { /* NaN fails */
            worst = i;
            bad = 1;
        }
        if (a > max_abs || a != a) max_abs = a;
        if (r > max_rel) max_rel = r;
    }
    if (bad)
        printf("  %s/%s: index %zu: got %.9g, expected %.9g (max abs err %.3g, max rel err %.3g,"
               " tolerance %g abs + %g rel)\n", cname, what, worst, (double)g[worst], (double)w[worst],
               max_abs, max_rel, abs_tol, rel_tol);
    else
        printf("  %s/%s: ok (max abs err %.3g, max rel err %.3g)\n", cname, what, max_abs, max_rel);
    return bad;
}

int kt_compare_npy(const char *cname, const char *what, const char *want_path,
                   const char *got_path, double abs_tol, double rel_tol)
{
    kn_npy want, got;
    char err[1024];
    memset(&want, 0, sizeof want);
    memset(&got, 0, sizeof got);
    if (kn_npy_read(want_path, &want, err, sizeof err)) {
        printf("  %s/%s: cannot read expected: %s\n", cname, what, err);
        return 1;
    }
    if (kn_npy_read(got_path, &got, err, sizeof err)) {
        printf("  %s/%s: cannot read kiln's output: %s\n", cname, what, err);
        kn_npy_free(&want);
        return 1;
    }
    int bad;
    if (want.dtype != got.dtype || !same_shape(&want, &got)) {
        printf("  %s/%s: got dtype %d rank %d numel %zu, expected dtype %d rank %d numel %zu\n", cname, what,
               got.dtype, got.rank, got.numel, want.dtype, want.rank, want.numel);
        bad = 1;
    } else if (want.dtype == KN_RT_I64) {
        bad = compare_i64(cname, what, &want, &got);
    } else {
        bad = kt_compare_f32(cname, what, want.data, got.data, want.numel, abs_tol, rel_tol);
    }
    kn_npy_free(&want);
    kn_npy_free(&got);
    return bad;
}

static char *slurp_fd(int fd)
{
    off_t n = lseek(fd, 0, SEEK_END);
    lseek(fd, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    ssize_t got = read(fd, b, (size_t)n);
    b[got > 0 ? got : 0] = 0;
    return b;
}

int kt_rt_main(const kn_rt_model *m, const char *prog, const char *args, char **out, char **err)
{
    char buf[8192], *argv[64];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", args);
    argv[argc++] = (char *)prog;
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && argc < 63; t = strtok_r(NULL, " ", &save))
        argv[argc++] = t;
    argv[argc] = NULL;
    free(*out);
    free(*err);
    fflush(stdout);
    fflush(stderr);
    FILE *fo = tmpfile(), *fe = tmpfile();
    int so = dup(1), se = dup(2);
    dup2(fileno(fo), 1);
    dup2(fileno(fe), 2);
    int rc = kn_rt_main(m, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    *out = slurp_fd(fileno(fo));
    *err = slurp_fd(fileno(fe));
    fclose(fo);
    fclose(fe);
    return rc;
}

int kt_same_tensors(const char *a, const char *b, int verbose)
{
    kn_st_file fa, fb;
    char err[512];
    memset(&fa, 0, sizeof fa);
    memset(&fb, 0, sizeof fb);
    if (kn_st_read(a, &fa, err, sizeof err)) {
        if (verbose) fprintf(stderr, "\n%s\n", err);
        return 0;
    }
    if (kn_st_read(b, &fb, err, sizeof err)) {
        if (verbose) fprintf(stderr, "\n%s\n", err);
        kn_st_free(&fa);
        return 0;
    }
    int same = fa.n == fb.n && fa.n > 0;
    for (int i = 0; same && i < fa.n; i++) {
        const kn_st_tensor *tb = kn_st_find(&fb, fa.t[i].name);
        same = tb && tb->numel == fa.t[i].numel && tb->dtype == fa.t[i].dtype &&
               memcmp(tb->data, fa.t[i].data, tb->numel * kn_rt_dtype_size(tb->dtype)) == 0;
        if (!same && verbose) fprintf(stderr, "\ntensor %s differs\n", fa.t[i].name);
    }
    const char *sa = kn_st_meta(&fa, "step"), *sb = kn_st_meta(&fb, "step");
    same = same && sa && sb && !strcmp(sa, sb);
    kn_st_free(&fa);
    kn_st_free(&fb);
    return same;
}

int kt_rt_mainf(const kn_rt_model *m, const char *prog, char **out, char **err, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return kt_rt_main(m, prog, buf, out, err);
}

int kt_kiln_build(const char *what, const char *model, const char *exe)
{
    char *log = NULL;
    int rc = kt_run(&log, "'%s' build '%s' -o '%s'", kt_kiln_bin(), model, exe);
    if (rc != 0) printf("  %s: kiln build failed (status %d):\n%s\n", what, rc, log ? log : "");
    free(log);
    return rc;
}

void kt_check_onnx_conformance(const char *node_dir, const char *env, const char *args, const char *what)
{
    char list[4096];
    kt_pathf(list, sizeof list, "%s/tests/golden/onnx_conformance_pass.txt", kt_src_dir());
    char *want = kt_read_file(list, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    char *log = NULL;
    int rc = kt_run(&log, "%s '%s' onnx-test %s '%s'", env, kt_kiln_bin(), args, node_dir);
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
            printf("%s: %s does not pass\n", what, name);
            missing++;
        }
    }
    printf("%s: %d expected passes, %d missing\n", what, expected, missing);
    CU_ASSERT(expected > 100);
    CU_ASSERT_EQUAL(missing, 0);
    free(log);
    free(want);
}

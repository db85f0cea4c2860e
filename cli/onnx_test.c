/* onnx_test.c — `kiln onnx-test [DIR]`: ONNX node conformance.
 *
 * Every folder DIR/test_* holding model.onnx and test_data_set_0/ is
 * imported, built (like `kiln build`, at -O1 unless KILN_CFLAGS says
 * otherwise: these graphs are tiny and compile time dominates), run on
 * input_k.pb through the executable's `run` command, and its outputs are
 * compared with output_k.pb using the ONNX backend tests' default tolerance
 * |got - want| <= 1e-7 + 1e-3 |want| (NaN matches NaN; integers exactly).
 * One line per test: "NAME: pass", "NAME: fail (max err E)" or
 * "NAME: fail (reason)", "NAME: unsupported (why)"; then the unsupported
 * ops by frequency, and last exactly
 *     conformance: N passed, M failed, K skipped
 * where skipped counts the unsupported tests.
 */
#define _GNU_SOURCE
#include "onnx_test.h"
#include "compile.h"
#include "../frontend/onnx_import.h"
#include "npy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_DIR "/usr/share/libonnx-testdata/data/node"
#define RTOL 1e-3
#define ATOL 1e-7

extern char **environ;

typedef struct {
    char op[64];
    int count;
} op_count;

typedef struct {
    int passed, failed, skipped;
    op_count ops[256];
    int n_ops;
    char tmp[64];
} runner;

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The op a rejection names: "... support at opset 13: OP at node" or "(OP, opset". */
static void note_unsupported(runner *r, const char *msg)
{
    char op[64] = "?";
    const char *p = strstr(msg, "does not support at opset");
    /* rejections that name no op: say which limit the test hit */
    if (strstr(msg, "has element type")) snprintf(op, sizeof op, "(input type not f32/i64)");
    else if (strstr(msg, "has rank")) snprintf(op, sizeof op, "(rank above 6)");
    else if (strstr(msg, "imports no opset of the default")) snprintf(op, sizeof op, "(other domain)");
    else if (strstr(msg, "is dynamic")) snprintf(op, sizeof op, "(dynamic dim)");
    else if (p && (p = strchr(p, ':'))) sscanf(p + 2, "%63[A-Za-z0-9_.]", op);
    else if ((p = strstr(msg, " (")) && strstr(p, ", opset")) sscanf(p + 2, "%63[A-Za-z0-9_.]", op);
    for (int i = 0; i < r->n_ops; i++)
        if (!strcmp(r->ops[i].op, op)) {
            r->ops[i].count++;
            return;
        }
    if (r->n_ops < 256) {
        snprintf(r->ops[r->n_ops].op, sizeof r->ops[0].op, "%s", op);
        r->ops[r->n_ops++].count = 1;
    }
}

/* The message without its "path: error: " prefix, on one line. */
static const char *short_msg(char *text)
{
    char *e = strstr(text, "error: ");
    char *s = e ? e + 7 : text;
    char *nl = strchr(s, '\n');
    if (nl) *nl = 0;
    if (strlen(s) > 160) strcpy(s + 157, "...");
    return s;
}

static int spawn_quiet(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Writes input_k.pb of every graph input as tmp/in_k.npy and appends
 * "--in NAME=FILE" to argv.  Returns 0, or -1 with `why`. */
static int write_inputs(const runner *r, const kn_graph *g, const char *set, char **argv, int *argc, char *why,
                        size_t cap)
{
    int k = 0;
    for (int i = 0; i < g->n_values; i++) {
        const kn_value *v = g->values[i];
        if (v->kind != KN_VAL_INPUT || v->dead) continue;
        char pb[4200], npy[4200], err[512];
        snprintf(pb, sizeof pb, "%s/input_%d.pb", set, k);
        snprintf(npy, sizeof npy, "%s/in_%d.npy", r->tmp, k++);
        kn_dtype dt;
        kn_shape s;
        void *data;
        kn_diag d;
        kn_diag_clear(&d);
        if (kn_onnx_read_tensor(pb, &dt, &s, &data, &d) != KN_OK) {
            snprintf(why, cap, "input %s", short_msg(d.text));
            return -1;
        }
        int rc = kn_npy_write(npy, dt == KN_I64 ? KN_RT_I64 : KN_RT_F32, s.rank, s.d, data, err, sizeof err);
        free(data);
        if (rc) {
            snprintf(why, cap, "%s", err);
            return -1;
        }
        size_t len = strlen(v->name) + strlen(npy) + 2;
        argv[(*argc)++] = kn_xstrdup("--in");
        argv[*argc] = kn_xmalloc(len);
        snprintf(argv[(*argc)++], len, "%s=%s", v->name, npy);
        if (*argc > 60) return -1;
    }
    return 0;
}

/* Compares output k; returns 0 pass, 1 fail (why filled). */
static int compare_output(const runner *r, const kn_graph *g, int k, const char *set, double *max_err, char *why,
                          size_t cap)
{
    char pb[4200], npy[4200], err[512], name[512];
    snprintf(name, sizeof name, "%s", g->values[g->outputs[k]]->name);
    for (char *p = name; *p; p++)
        if (*p == '/') *p = '_';
    snprintf(pb, sizeof pb, "%s/output_%d.pb", set, k);
    snprintf(npy, sizeof npy, "%s/out/%s.npy", r->tmp, name);
    kn_dtype dt;
    kn_shape s;
    void *want;
    kn_diag d;
    kn_diag_clear(&d);
    if (kn_onnx_read_tensor(pb, &dt, &s, &want, &d) != KN_OK) return snprintf(why, cap, "%s", short_msg(d.text)), 1;
    kn_npy got;
    if (kn_npy_read(npy, &got, err, sizeof err)) {
        free(want);
        return snprintf(why, cap, "no output: %.400s", err), 1;
    }
    int64_t numel = 1;
    for (int i = 0; i < s.rank; i++) numel *= s.d[i];
    int bad = 0;
    if ((size_t)numel != got.numel || got.dtype != (dt == KN_I64 ? KN_RT_I64 : KN_RT_F32)) {
        snprintf(why, cap, "output %d has %zu elements of type %d, expected %lld", k, got.numel, got.dtype,
                 (long long)numel);
        bad = 1;
    }
    for (int64_t i = 0; !bad && i < numel; i++) {
        double w = dt == KN_I64 ? (double)((int64_t *)want)[i] : ((float *)want)[i];
        double v = dt == KN_I64 ? (double)((int64_t *)got.data)[i] : ((float *)got.data)[i];
        if (isnan(w) && isnan(v)) continue;
        double e = fabs(v - w);
        if (isnan(e) && w == v) e = 0; /* same infinity */
        if (isnan(e) || e > *max_err) *max_err = isnan(e) ? INFINITY : e;
        if (!(e <= ATOL + RTOL * fabs(w))) bad = 2;
    }
    if (bad == 2) snprintf(why, cap, "max err %g", *max_err);
    free(want);
    kn_npy_free(&got);
    return bad != 0;
}

/* Runs one test folder; prints its line and counts it. */
static void run_test(runner *r, const char *dir, const char *name, const char *target)
{
    char model[4096], set[4096], c_path[4200], exe[4200], outdir[4200], why[512] = "";
    snprintf(model, sizeof model, "%s/%s/model.onnx", dir, name);
    snprintf(set, sizeof set, "%s/%s/test_data_set_0", dir, name);
    kn_compiled c;
    kn_diag d;
    kn_diag_clear(&d);
    if (kn_cli_compile(model, NULL, false, &c, &d) != KN_OK) {
        note_unsupported(r, d.text);
        printf("%s: unsupported (%s)\n", name, short_msg(d.text));
        r->skipped++;
        kn_cli_compiled_free(&c);
        return;
    }
    snprintf(c_path, sizeof c_path, "%s/model.c", r->tmp);
    snprintf(exe, sizeof exe, "%s/model", r->tmp);
    snprintf(outdir, sizeof outdir, "%s/out", r->tmp);
    int fail = 0;
    double max_err = 0;
    if (kn_cli_build(&c, target, NULL, c_path, exe, NULL, &d) != KN_OK) {
        snprintf(why, sizeof why, "build: %s", short_msg(d.text));
        fail = 1;
    }
    char *argv[64] = {exe, "run", "--out", outdir, "--device", (char *)target};
    int argc = 6;
    if (!fail && write_inputs(r, c.infer, set, argv, &argc, why, sizeof why)) fail = 1;
    argv[argc] = NULL;
    if (!fail && spawn_quiet(argv) != 0) snprintf(why, sizeof why, "run failed"), fail = 1;
    for (int k = 0; !fail && k < c.infer->n_outputs; k++) fail = compare_output(r, c.infer, k, set, &max_err, why, sizeof why);
    for (int i = 6; i < argc; i++) free(argv[i]);
    if (fail) printf("%s: fail (%s)\n", name, why);
    else printf("%s: pass (max err %g)\n", name, max_err);
    fflush(stdout);
    if (fail) r->failed++;
    else r->passed++;
    kn_cli_compiled_free(&c);
}

static int cmp_ops(const void *a, const void *b)
{
    const op_count *x = a, *y = b;
    return x->count != y->count ? y->count - x->count : strcmp(x->op, y->op);
}

static void remove_tree(const char *dir)
{
    char *argv[] = {"/bin/rm", "-rf", (char *)dir, NULL};
    spawn_quiet(argv);
}

int kn_cli_onnx_test(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: kiln onnx-test [--target cpu|cuda] [DIR]\n\nRuns every ONNX node test under DIR (default %s):\n"
               "import, build, run on test_data_set_0, compare with rtol 1e-3, atol 1e-7.\n"
               "--target cuda builds the CUDA kernels too and runs them (`run --device cuda`).\n"
               "Last line: conformance: N passed, M failed, K skipped\n", DEFAULT_DIR);
        return 0;
    }
    const char *target = "cpu";
    if (argc >= 3 && !strcmp(argv[1], "--target")) {
        target = argv[2];
        argc -= 2;
        argv += 2;
        if (strcmp(target, "cpu") != 0 && strcmp(target, "cuda") != 0) {
            fprintf(stderr, "kiln: onnx-test: unknown target '%s' (expected cpu or cuda)\n", target);
            return 2;
        }
    }
    const char *dir = argc >= 2 ? argv[1] : DEFAULT_DIR;
    DIR *dh = opendir(dir);
    if (!dh) {
        fprintf(stderr, "kiln: onnx-test: cannot open %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char **names = NULL;
    int n = 0;
    for (struct dirent *e; (e = readdir(dh));) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s/model.onnx", dir, e->d_name);
        if (strncmp(e->d_name, "test_", 5) != 0 || access(p, R_OK) != 0) continue;
        names = kn_xrealloc(names, sizeof *names * (size_t)(n + 1));
        names[n++] = kn_xstrdup(e->d_name);
    }
    closedir(dh);
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    runner r = {0};
    snprintf(r.tmp, sizeof r.tmp, "/tmp/kiln-onnx-test-XXXXXX");
    if (!mkdtemp(r.tmp)) {
        fprintf(stderr, "kiln: onnx-test: cannot create a temporary folder: %s\n", strerror(errno));
        return 1;
    }
    setenv("KILN_CFLAGS", getenv("KILN_CFLAGS") ? getenv("KILN_CFLAGS") : "-O1", 1);
    for (int i = 0; i < n; i++) {
        run_test(&r, dir, names[i], target);
        free(names[i]);
    }
    free(names);
    remove_tree(r.tmp);
    qsort(r.ops, (size_t)r.n_ops, sizeof r.ops[0], cmp_ops);
    printf("unsupported ops by frequency:");
    for (int i = 0; i < r.n_ops; i++) printf(" %s %d%s", r.ops[i].op, r.ops[i].count, i + 1 < r.n_ops ? "," : "");
    printf("\nconformance: %d passed, %d failed, %d skipped\n", r.passed, r.failed, r.skipped);
    return r.failed ? 1 : 0;
}

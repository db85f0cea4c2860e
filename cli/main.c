/* main.c — the `kiln` driver: argument parsing and the subcommands
 * check, build, run and export.  Exit codes: 0 success, 1 failure (bad model file,
 * build error), 2 usage error. */
#define _GNU_SOURCE
#include "compile.h"
#include "../codegen/codegen.h" /* KN_CUDA_DEFAULT_ARCH */
#include "export.h"
#include "onnx_test.h"
#include "sweep.h"
#include "kiln_config.h"
#include "kn_rt_afile.h" /* mkdir -p */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *USAGE =
    "usage: kiln <command> [options]\n"
    "\n"
    "kiln compiles neural-network model files (.kiln) and ONNX models (.onnx) into standalone executables.\n"
    "\n"
    "commands:\n"
    "  check MODEL [--set P=V]        parse + shape inference; layer table, parameter counts, arena bytes\n"
    "  build MODEL [-o EXE] [--target cpu|cuda] [--arch A] [--emit DIR] [--set P=V]\n"
    "                                 compile MODEL into the executable EXE (default: the model file's name);\n"
    "                                 --emit DIR keeps the generated C source in DIR\n"
    "  run MODEL [--set P=V] SUBCOMMAND [ARGS]\n"
    "                                 build into a content-addressed cache, then run the executable\n"
    "                                 (e.g. kiln run models/fmnist_mlp.kiln train --json)\n"
    "  export MODEL [--set P=V] [--weights CKPT] -o OUT.onnx\n"
    "                                 write the inference graph with trained weights as ONNX (opset 17)\n"
    "  gradcheck MODEL [ARGS]         compiled gradients vs central finite differences, per parameter\n"
    "  onnx-test [--target T] [DIR]   ONNX node conformance over Debian's libonnx-testdata (or DIR)\n"
    "  sweep MODEL [--set P=A,B] [--lr X,Y ...]\n"
    "                                 train once per setting (compile-time --set values, run-time lr/batch)\n"
    "                                 and print one table\n"
    "\n"
    "options:\n"
    "  -h, --help                     this help (kiln COMMAND --help for one command)\n"
    "  --version                      print the version\n"
    "\n"
    "--set P=V overrides the model file's `param P = default` (repeatable; part of the model hash).\n"
    "The executables kiln builds have their own commands: EXE --help.\n"
    "Environment: KILN_CC (C compiler), KILN_CFLAGS (default \"" KILN_DEFAULT_CFLAGS "\";\n"
    "-O3 for a portable executable), KILN_CACHE (cache folder for `run`),\n"
    "KILN_DATA (data root for onnx(\"path\") in model files and for data sets).\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "kiln: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'kiln --help'.\n");
    return 2;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fmt_bytes(int64_t b, char *out, size_t cap)
{
    if (b >= (1 << 20)) snprintf(out, cap, "%.1f MiB", (double)b / (1 << 20));
    else if (b >= 1024) snprintf(out, cap, "%.1f KiB", (double)b / 1024);
    else snprintf(out, cap, "%lld B", (long long)b);
}

#define MAX_SETS 64

/* The --set overrides of one command line. */
typedef struct {
    const char *v[MAX_SETS];
    int n;
} cli_sets;

/* Consumes `--set P=V` or `--set=P=V` at argv[*i]: 1 when taken, 0 when
 * argv[*i] is something else, -1 after a usage error was printed. */
static int take_set(int argc, char **argv, int *i, cli_sets *s)
{
    const char *a = argv[*i], *v;
    if (!strcmp(a, "--set")) {
        if (*i + 1 >= argc) return fprintf(stderr, "kiln: --set needs NAME=VALUE\n"), -1;
        v = argv[++*i];
    } else if (!strncmp(a, "--set=", 6)) {
        v = a + 6;
    } else {
        return 0;
    }
    const char *eq = strchr(v, '=');
    if (!eq || eq == v) return fprintf(stderr, "kiln: --set '%s': expected NAME=VALUE\nTry 'kiln --help'.\n", v), -1;
    if (s->n == MAX_SETS) return fprintf(stderr, "kiln: more than %d --set options\n", MAX_SETS), -1;
    s->v[s->n++] = v;
    return 1;
}

static int report(const kn_diag *d)
{
    fprintf(stderr, "%s\n", d->text[0] ? d->text : "kiln: unknown error");
    return 1;
}

/* The table above is the graph as written; the CPU executable runs the
 * inference phase after the backend pipeline (epilogue and block fusion,
 * layouts), whose arena is what it allocates. */
static void print_cpu_lowered(const kn_graph *infer, int batch)
{
    kn_cli_lowered lo;
    kn_diag d;
    kn_diag_clear(&d);
    if (kn_cli_lower_eval(infer, false, &lo, &d) == KN_OK) {
        char a[32], a1[32];
        fmt_bytes(kn_memplan_bytes(&lo.plan, batch), a, sizeof a);
        fmt_bytes(kn_memplan_bytes(&lo.plan, 1), a1, sizeof a1);
        printf("CPU executable (after fusion): %d nodes; eval arena %s at N=%d, %s at N=1\n", lo.g->n_nodes, a, batch,
               a1);
    }
    kn_cli_lowered_free(&lo);
}

static int cmd_check(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: kiln check MODEL [--set P=V]...\n\nParses MODEL, infers every shape and prints the layer table,\n"
               "parameter counts (trainable, frozen, buffers) and the planned arena size.\n"
               "  --set P=V     override the model file's `param P = default`\n");
        return 0;
    }
    const char *model = NULL;
    cli_sets sets = {.n = 0};
    for (int i = 1; i < argc; i++) {
        int t = take_set(argc, argv, &i, &sets);
        if (t < 0) return 2;
        if (t) continue;
        if (argv[i][0] == '-' && argv[i][1]) return usage_error("check: unknown option '%s'", argv[i]);
        if (model) return usage_error("check: expected exactly one model file%s", "");
        model = argv[i];
    }
    if (!model) return usage_error("check: expected exactly one model file%s", "");
    kn_frontend_opts fo;
    kn_cli_frontend_opts(&fo, sets.v, sets.n);
    kn_compiled c;
    kn_diag d;
    kn_diag_clear(&d);
    if (kn_cli_compile(model, &fo, true, &c, &d) != KN_OK) {
        kn_cli_compiled_free(&c);
        return report(&d);
    }
    kn_strbuf out;
    kn_sb_init(&out);
    kn_graph_print(c.infer, &out);
    int batch = c.model->meta.batch > 0 ? c.model->meta.batch : 1;
    char a[32], a1[32], at[32];
    fmt_bytes(kn_memplan_bytes(&c.infer_plan, batch), a, sizeof a);
    fmt_bytes(kn_memplan_bytes(&c.infer_plan, 1), a1, sizeof a1);
    printf("%s · arena", out.s);
    if (c.train) {
        /* The train step's arena holds the forward values the backward
         * needs, so it is the one that bounds the batch size. */
        fmt_bytes(kn_memplan_bytes(&c.train_plan, batch), at, sizeof at);
        printf(" %s at N=%d (train; %lld bytes),", at, batch, (long long)kn_memplan_bytes(&c.train_plan, batch));
    }
    printf(" %s at N=%d (eval; %lld bytes), %s at N=1 (eval)\n", a, batch,
           (long long)kn_memplan_bytes(&c.infer_plan, batch), a1);
    print_cpu_lowered(c.infer, batch);
    kn_sb_free(&out);
    kn_cli_compiled_free(&c);
    return 0;
}

static const char *base_name_no_ext(const char *path, char *buf, size_t cap)
{
    const char *slash = strrchr(path, '/');
    snprintf(buf, cap, "%s", slash ? slash + 1 : path);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
    return buf;
}

/* Builds MODEL to EXE; keeps the C source in emit_dir when given. */
static int build_model(const char *model, const kn_frontend_opts *fo, const char *exe, const char *target,
                       const char *arch, const char *emit_dir, bool quiet)
{
    double t0 = now_s();
    kn_compiled c;
    kn_diag d;
    kn_diag_clear(&d);
    if (kn_cli_compile(model, fo, true, &c, &d) != KN_OK) {
        kn_cli_compiled_free(&c);
        return report(&d);
    }
    char c_path[4200], tmpdir[] = "/tmp/kiln-build-XXXXXX", base[256];
    base_name_no_ext(model, base, sizeof base);
    char ident[256];
    kn_c_ident(base, ident, sizeof ident);
    bool keep = emit_dir != NULL;
    if (keep) {
        if (kn_rt_mkdir_p(emit_dir) != 0) {
            fprintf(stderr, "kiln: cannot create --emit folder %s: %s\n", emit_dir, strerror(errno));
            kn_cli_compiled_free(&c);
            return 1;
        }
        snprintf(c_path, sizeof c_path, "%s/%s.c", emit_dir, ident);
    } else {
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "kiln: cannot create a temporary folder: %s\n", strerror(errno));
            kn_cli_compiled_free(&c);
            return 1;
        }
        snprintf(c_path, sizeof c_path, "%s/%s.c", tmpdir, ident);
    }
    kn_cli_build_stats stats = {0, 0};
    kn_status st = kn_cli_build(&c, target, arch, c_path, exe, &stats, &d);
    if (!keep) {
        char blob[4200], ptx[4200], cu[4200];
        kn_cli_blob_path(c_path, blob, sizeof blob);
        kn_cli_cuda_paths(c_path, ptx, cu, sizeof ptx);
        unlink(c_path);
        unlink(blob);
        unlink(ptx);
        unlink(cu);
        rmdir(tmpdir);
    }
    if (st != KN_OK) {
        kn_cli_compiled_free(&c);
        return report(&d);
    }
    if (!quiet) {
        char a[32];
        int64_t t, f, b;
        kn_graph_param_counts(c.model, &t, &f, &b);
        fmt_bytes(kn_memplan_bytes(&c.infer_plan, c.model->meta.batch > 0 ? c.model->meta.batch : 1), a, sizeof a);
        char cuda[96] = "";
        if (stats.cuda_kernels > 0)
            snprintf(cuda, sizeof cuda, ", %d CUDA kernels for %s (NVRTC %.2f s)", stats.cuda_kernels,
                     arch ? arch : KN_CUDA_DEFAULT_ARCH, stats.nvrtc_seconds);
        fprintf(stderr, "kiln: built %s (%d nodes, %lld parameters, arena %s at N=%d%s) in %.2f s%s%s\n", exe,
                c.infer->n_nodes, (long long)(t + f), a, c.model->meta.batch, cuda, now_s() - t0,
                keep ? "; source in " : "", keep ? c_path : "");
    }
    kn_cli_compiled_free(&c);
    return 0;
}

static int cmd_build(int argc, char **argv)
{
    const char *model = NULL, *exe = NULL, *target = "cpu", *emit = NULL, *arch = NULL;
    cli_sets sets = {.n = 0};
    for (int i = 1; i < argc; i++) {
        int t = take_set(argc, argv, &i, &sets);
        if (t < 0) return 2;
        if (t) continue;
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: kiln build MODEL [-o EXE] [--target cpu|cuda] [--arch A] [--emit DIR] [--set P=V]...\n\n"
                   "Compiles MODEL (.kiln, or an ONNX model .onnx) into a standalone executable with the commands\n"
                   "info, eval, predict, bench, run, train, sweep and gradcheck (see EXE --help).\n"
                   "  -o EXE        output executable (default: model file name without extension)\n"
                   "  --target T    code generation target: cpu, or cuda (kernels compiled with NVRTC and embedded;\n"
                   "                the executable runs on the CPU or, with --device cuda, on the GPU)\n"
                   "  --arch A      CUDA virtual architecture for --target cuda (default " KN_CUDA_DEFAULT_ARCH ")\n"
                   "  --emit DIR    keep the generated C source in DIR\n"
                   "  --set P=V     override the model file's `param P = default` (repeatable)\n");
            return 0;
        }
        if (!strcmp(a, "-o") || !strcmp(a, "--target") || !strcmp(a, "--emit") || !strcmp(a, "--arch")) {
            if (i + 1 >= argc) return usage_error("build: %s needs a value", a);
            const char *v = argv[++i];
            if (!strcmp(a, "-o")) exe = v;
            else if (!strcmp(a, "--target")) target = v;
            else if (!strcmp(a, "--arch")) arch = v;
            else emit = v;
        } else if (a[0] == '-') {
            return usage_error("build: unknown option '%s'", a);
        } else if (!model) {
            model = a;
        } else {
            return usage_error("build: unexpected argument '%s'", a);
        }
    }
    if (!model) return usage_error("build: missing MODEL%s", "");
    if (strcmp(target, "cpu") != 0 && strcmp(target, "cuda") != 0)
        return usage_error("build: unknown target '%s' (expected cpu or cuda)", target);
    char dflt[256];
    if (!exe) exe = base_name_no_ext(model, dflt, sizeof dflt);
    kn_frontend_opts fo;
    kn_cli_frontend_opts(&fo, sets.v, sets.n);
    if (arch && strcmp(target, "cuda") != 0) return usage_error("build: --arch %s needs --target cuda", arch);
    return build_model(model, &fo, exe, target, arch, emit, false);
}

/* The executable of MODEL with these --set values, built into the cache
 * ($KILN_CACHE, default ~/.cache/kiln, keyed by the model hash) on a miss. */
static int cached_exe(const char *model, const char *const *sets, int n_sets, char *exe, size_t cap)
{
    kn_frontend_opts fo;
    kn_cli_frontend_opts(&fo, sets, n_sets);
    char hash[17];
    kn_diag d;
    kn_diag_clear(&d);
    /* A cache hit needs only the hash; the model is compiled on a miss. */
    if (kn_cli_model_hash(model, &fo, hash, &d) != KN_OK) return report(&d);
    char dir[4096], ident[256], base[256];
    const char *cache = getenv("KILN_CACHE");
    const char *home = getenv("HOME");
    if (cache && *cache) snprintf(dir, sizeof dir, "%s/%s", cache, hash);
    else snprintf(dir, sizeof dir, "%s/.cache/kiln/%s", home && *home ? home : "/tmp", hash);
    kn_c_ident(base_name_no_ext(model, base, sizeof base), ident, sizeof ident);
    snprintf(exe, cap, "%s/%s", dir, ident);
    if (access(exe, X_OK) == 0) return 0;
    if (kn_rt_mkdir_p(dir) != 0) {
        fprintf(stderr, "kiln: cannot create cache folder %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char tmp_exe[4500];
    snprintf(tmp_exe, sizeof tmp_exe, "%s.tmp%d", exe, (int)getpid());
    int rc = build_model(model, &fo, tmp_exe, "cpu", NULL, NULL, true);
    if (rc != 0) return rc;
    if (rename(tmp_exe, exe) != 0) {
        fprintf(stderr, "kiln: cannot move %s into the cache: %s\n", tmp_exe, strerror(errno));
        return 1;
    }
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: kiln run MODEL [--set P=V]... SUBCOMMAND [ARGS]\n\n"
               "Builds MODEL into a cache keyed by the model source, the --set overrides and kiln's version\n"
               "($KILN_CACHE, default ~/.cache/kiln), then runs the executable with\n"
               "SUBCOMMAND and ARGS (see EXE --help).\n");
        return 0;
    }
    /* MODEL and --set options, in any order, come before SUBCOMMAND */
    const char *model = NULL;
    cli_sets sets = {.n = 0};
    int sub = 1;
    for (; sub < argc; sub++) {
        int t = take_set(argc, argv, &sub, &sets);
        if (t < 0) return 2;
        if (t) continue;
        if (argv[sub][0] == '-') return usage_error("run: unknown option '%s'", argv[sub]);
        if (model) break;
        model = argv[sub];
    }
    if (!model || sub >= argc) return usage_error("run: expected MODEL and a SUBCOMMAND%s", "");
    char exe[4400];
    int rc = cached_exe(model, sets.v, sets.n, exe, sizeof exe);
    if (rc) return rc;
    argv[sub - 1] = exe;
    execv(exe, argv + sub - 1);
    fprintf(stderr, "kiln: cannot run %s: %s\n", exe, strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("kiln %s\n", KILN_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "check")) return cmd_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "build")) return cmd_build(argc - 1, argv + 1);
    if (!strcmp(cmd, "run")) return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "export")) return kn_cli_export(argc - 1, argv + 1);
    if (!strcmp(cmd, "onnx-test")) return kn_cli_onnx_test(argc - 1, argv + 1);
    if (!strcmp(cmd, "sweep")) return kn_cli_sweep(argc - 1, argv + 1, cached_exe);
    if (!strcmp(cmd, "gradcheck")) {
        /* kiln gradcheck MODEL [ARGS] == kiln run MODEL gradcheck [ARGS] */
        if (argc < 3 || argv[2][0] == '-') {
            printf("usage: kiln gradcheck MODEL [--batch B] [--samples K] [--eps E] [--tol T]\n\n"
                   "Builds MODEL and compares every trainable parameter's compiled gradient\n"
                   "with central finite differences of the compiled loss.\n");
            return argc >= 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) ? 0 : 2;
        }
        char **av = kn_xmalloc(sizeof(char *) * (size_t)(argc + 2));
        av[0] = "run";
        av[1] = argv[2];
        av[2] = "gradcheck";
        for (int i = 3; i < argc; i++) av[i] = argv[i];
        av[argc] = NULL;
        int rc = cmd_run(argc, av);
        free(av);
        return rc;
    }
    return usage_error("unknown command '%s'", cmd);
}

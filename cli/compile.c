/* compile.c — frontend -> passes -> codegen -> cc, see compile.h. */
#define _GNU_SOURCE
#include "compile.h"
#include "kiln_config.h"
#include "../codegen/codegen.h"
#include "../frontend/frontend.h"
#include "../frontend/onnx_import.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Mixes in the identity (size, mtime) of a file kiln's output depends on. */
static uint64_t hash_file_identity(uint64_t h, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return h;
    int64_t id[2] = {(int64_t)st.st_size, (int64_t)st.st_mtime};
    return fnv1a(h, id, sizeof id);
}

void kn_cli_frontend_opts(kn_frontend_opts *o, const char *const *sets, int n_sets)
{
    static const char *roots[3];
    const char *env = getenv("KILN_DATA");
    int n = 0;
    if (env && *env) roots[n++] = env;
    roots[n++] = KILN_SOURCE_DIR "/../shared/data";
    roots[n++] = "/work/shared/data";
    *o = (kn_frontend_opts){.data_roots = roots, .n_data_roots = n, .sets = sets, .n_sets = n_sets};
}

/* Mixes in every file the model file splices: a changed ONNX file must not
 * reuse an executable built from the old one. */
static uint64_t hash_deps(uint64_t h, const char *path, const kn_frontend_opts *fo)
{
    if (ends_with(path, ".onnx")) return h;
    kn_strbuf deps;
    kn_sb_init(&deps);
    kn_diag ignore; /* a file that does not parse is reported by the build */
    kn_diag_clear(&ignore);
    kn_model_file_deps(path, fo, &deps, &ignore);
    for (char *line = deps.s, *nl; line && *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) break;
        *nl = 0;
        h = fnv1a(h, line, strlen(line) + 1);
        h = hash_file_identity(h, line);
    }
    kn_sb_free(&deps);
    return h;
}

kn_status kn_cli_model_hash(const char *path, const kn_frontend_opts *fo, char out[17], kn_diag *d)
{
    kn_frontend_opts dflt;
    if (!fo) kn_cli_frontend_opts(&dflt, NULL, 0), fo = &dflt;
    uint64_t h = fnv1a(1469598103934665603ULL, "kiln " KILN_VERSION, strlen("kiln " KILN_VERSION));
    /* A rebuilt driver or runtime may emit or link different code: cached
     * executables must not outlive them. */
    h = hash_file_identity(h, "/proc/self/exe");
    h = hash_file_identity(h, KILN_RT_LIB);
    FILE *f = fopen(path, "rb");
    if (!f) return kn_diag_fail(d, "%s: cannot open model file: %s", path, strerror(errno));
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) h = fnv1a(h, buf, got);
    fclose(f);
    for (int i = 0; i < fo->n_sets; i++) h = fnv1a(h, fo->sets[i], strlen(fo->sets[i]) + 1);
    h = hash_deps(h, path, fo);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return KN_OK;
}

/* A model trains when it has a loss and names an optimizer. */
static bool wants_training(const kn_graph *m)
{
    return m->loss >= 0 && m->meta.optimizer && *m->meta.optimizer;
}

static kn_status compile_training(kn_compiled *c, kn_diag *d)
{
    c->train = kn_graph_clone(c->model);
    if (kn_run_pipeline(c->train, KN_MODE_TRAIN, d) != KN_OK) return KN_ERR;
    if (kn_plan_memory(c->train, &c->train_plan, d) != KN_OK) return KN_ERR;
    c->update = kn_graph_clone(c->model);
    if (kn_run_update_pipeline(c->update, d) != KN_OK) return KN_ERR;
    return kn_plan_memory(c->update, &c->update_plan, d);
}

/* The model from its frozen prefix's frontier on: each frontier value
 * becomes an input, and DCE drops the prefix. */
static kn_status compile_head(const kn_compiled *c, const int *frontier, int n, kn_mode mode, kn_graph **out,
                              kn_memplan *plan, kn_diag *d)
{
    kn_graph *g = *out = kn_graph_clone(c->model);
    for (int i = 0; i < n; i++)
        if (kn_graph_make_input(g, frontier[i], d) != KN_OK) return KN_ERR;
    if (kn_run_pipeline(g, mode, d) != KN_OK) return KN_ERR;
    return kn_plan_memory(g, plan, d);
}

static kn_status compile_caching(kn_compiled *c, kn_diag *d)
{
    int frontier[KN_MAX_OUTPUTS];
    int n = kn_find_frozen_prefix(c->model, frontier, 1);
    if (n == 0) return KN_OK;
    kn_graph *f = c->features = kn_graph_clone(c->model);
    f->n_outputs = n;
    for (int i = 0; i < n; i++) f->outputs[i] = frontier[i];
    f->loss = -1;
    if (kn_run_pipeline(f, KN_MODE_EVAL, d) != KN_OK || kn_plan_memory(f, &c->features_plan, d) != KN_OK)
        return KN_ERR;
    if (compile_head(c, frontier, n, KN_MODE_TRAIN, &c->head_train, &c->head_train_plan, d) != KN_OK) return KN_ERR;
    return compile_head(c, frontier, n, KN_MODE_EVAL, &c->head_infer, &c->head_infer_plan, d);
}

static void free_caching(kn_compiled *c)
{
    kn_graph_free(c->features);
    kn_graph_free(c->head_train);
    kn_graph_free(c->head_infer);
    kn_memplan_free(&c->features_plan);
    kn_memplan_free(&c->head_train_plan);
    kn_memplan_free(&c->head_infer_plan);
    c->features = c->head_train = c->head_infer = NULL;
}

kn_status kn_cli_compile(const char *model_path, const kn_frontend_opts *fo, bool with_train, kn_compiled *c,
                         kn_diag *d)
{
    memset(c, 0, sizeof *c);
    kn_frontend_opts dflt;
    if (!fo) kn_cli_frontend_opts(&dflt, NULL, 0), fo = &dflt;
    if (ends_with(model_path, ".onnx")) {
        if (fo->n_sets)
            return kn_diag_fail(d, "%s: error: --set %s: an ONNX model has no parameters", model_path, fo->sets[0]);
        if (kn_onnx_import_file(model_path, &c->model, d) != KN_OK) return KN_ERR;
        c->model->meta.batch = 1; /* an imported model is for inference: report sizes at N=1 */
    } else if (kn_parse_model_file_opts(model_path, fo, &c->model, d) != KN_OK) {
        return KN_ERR;
    }
    if (kn_cli_model_hash(model_path, fo, c->hash, d) != KN_OK) return KN_ERR;
    c->infer = kn_graph_clone(c->model);
    if (kn_run_pipeline(c->infer, KN_MODE_EVAL, d) != KN_OK) return KN_ERR;
    if (kn_plan_memory(c->infer, &c->infer_plan, d) != KN_OK) return KN_ERR;
    if (!with_train || !wants_training(c->model)) return KN_OK;
    if (compile_training(c, d) != KN_OK) {
        /* Inference still works: say why training is unavailable instead
         * of refusing to build the executable. */
        fprintf(stderr, "kiln: warning: %s: built without a train phase: %s\n", model_path, d->text);
        kn_diag_clear(d);
        kn_graph_free(c->train);
        kn_graph_free(c->update);
        kn_memplan_free(&c->train_plan);
        kn_memplan_free(&c->update_plan);
        c->train = c->update = NULL;
        return KN_OK;
    }
    if (compile_caching(c, d) != KN_OK) {
        /* Training still works, only without the cache. */
        fprintf(stderr, "kiln: warning: %s: no frozen-feature cache: %s\n", model_path, d->text);
        kn_diag_clear(d);
        free_caching(c);
    }
    return KN_OK;
}

void kn_cli_compiled_free(kn_compiled *c)
{
    kn_graph_free(c->model);
    kn_graph_free(c->infer);
    kn_memplan_free(&c->infer_plan);
    kn_graph_free(c->train);
    kn_memplan_free(&c->train_plan);
    kn_graph_free(c->update);
    kn_memplan_free(&c->update_plan);
    free_caching(c);
    memset(c, 0, sizeof *c);
}

void kn_cli_blob_path(const char *c_path, char *out, size_t cap)
{
    size_t len = strlen(c_path);
    if (ends_with(c_path, ".c")) len -= 2;
    snprintf(out, cap, "%.*s.weights.bin", (int)len, c_path);
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static kn_status write_atomic(const char *path, const char *data, size_t len, kn_diag *d)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return kn_diag_fail(d, "cannot write %s: %s", tmp, strerror(errno));
    size_t w = fwrite(data, 1, len, f);
    if (fclose(f) != 0 || w != len) {
        unlink(tmp);
        return kn_diag_fail(d, "cannot write %s: %s", path, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return kn_diag_fail(d, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    }
    return KN_OK;
}

kn_status kn_cli_lower_eval(const kn_graph *g, bool cuda, kn_cli_lowered *lo, kn_diag *d)
{
    memset(lo, 0, sizeof *lo);
    lo->g = kn_graph_clone(g);
    if ((cuda ? kn_run_cuda_backend_pipeline : kn_run_backend_pipeline)(lo->g, d) != KN_OK) return KN_ERR;
    if (kn_plan_memory(lo->g, &lo->plan, d) != KN_OK) return KN_ERR;
    lo->planned = true;
    return KN_OK;
}

void kn_cli_lowered_free(kn_cli_lowered *lo)
{
    kn_graph_free(lo->g);
    if (lo->planned) kn_memplan_free(&lo->plan);
    memset(lo, 0, sizeof *lo);
}

/* Eval phases are emitted lowered (kn_cli_lower_eval); train phases as
 * compiled.  With --target cuda the C and the GPU code of a phase come from
 * the one graph, lowered by the GPU's rules. */
static kn_status lower_phase(kn_codegen_phase *ph, bool cuda, kn_cli_lowered *lo, kn_diag *d)
{
    memset(lo, 0, sizeof *lo);
    if (ph->graph->mode != KN_MODE_EVAL) return KN_OK;
    if (kn_cli_lower_eval(ph->graph, cuda, lo, d) != KN_OK) return KN_ERR;
    ph->graph = lo->g;
    ph->plan = &lo->plan;
    return KN_OK;
}

void kn_cli_cuda_paths(const char *c_path, char *ptx, char *cu, size_t cap)
{
    size_t len = strlen(c_path);
    if (ends_with(c_path, ".c")) len -= 2;
    snprintf(ptx, cap, "%.*s.ptx", (int)len, c_path);
    snprintf(cu, cap, "%.*s.cu", (int)len, c_path);
}

/* Compiles the emitted kernels with NVRTC and writes the device source and
 * PTX next to the C file, where the C file's .incbin finds them. */
static kn_status build_cuda_kernels(kn_cuda_prog *cp, const char *arch, const char *ptx_path, const char *cu_path,
                                    kn_cli_build_stats *stats, kn_diag *d)
{
    kn_strbuf *src = kn_cuda_prog_source(cp);
    if (write_atomic(cu_path, src->s, src->len, d) != KN_OK) return KN_ERR;
    kn_strbuf ptx;
    kn_sb_init(&ptx);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kn_status st = kn_cuda_compile(cp, arch, &ptx, d);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (st == KN_OK) st = write_atomic(ptx_path, ptx.s, ptx.len, d);
    if (stats) {
        stats->cuda_kernels = kn_cuda_prog_kernels(cp);
        stats->nvrtc_seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    }
    kn_sb_free(&ptx);
    return st;
}

kn_status kn_cli_build(const kn_compiled *c, const char *target, const char *arch, const char *c_path,
                       const char *exe_path, kn_cli_build_stats *stats, kn_diag *d)
{
    bool cuda = strcmp(target, "cuda") == 0;
    if (strcmp(target, "cpu") != 0 && !cuda)
        return kn_diag_fail(d, "target '%s' is not available in this build (supported: cpu, cuda)", target);
    kn_codegen_phase phases[6] = {{"infer", c->infer, &c->infer_plan}};
    int n_phases = 1;
    if (c->train) {
        phases[n_phases++] = (kn_codegen_phase){"train", c->train, &c->train_plan};
        phases[n_phases++] = (kn_codegen_phase){"update", c->update, &c->update_plan};
    }
    if (c->features) {
        phases[n_phases++] = (kn_codegen_phase){"features", c->features, &c->features_plan};
        phases[n_phases++] = (kn_codegen_phase){"head_train", c->head_train, &c->head_train_plan};
        phases[n_phases++] = (kn_codegen_phase){"head_infer", c->head_infer, &c->head_infer_plan};
    }
    char blob[4200], ptx_path[4200], cu_path[4200];
    kn_cli_blob_path(c_path, blob, sizeof blob);
    kn_cli_cuda_paths(c_path, ptx_path, cu_path, sizeof ptx_path);
    kn_codegen_opts opts = {c->hash, target, blob, NULL, ptx_path, cu_path, arch, false};
    if (cuda && (kn_codegen_check_embed_path(ptx_path, d) != KN_OK || kn_codegen_check_embed_path(cu_path, d) != KN_OK))
        return KN_ERR;
    kn_cli_lowered low[6];
    kn_status st = KN_OK;
    for (int i = 0; i < n_phases; i++)
        if (st == KN_OK) st = lower_phase(&phases[i], cuda, &low[i], d);
        else low[i] = (kn_cli_lowered){0};
    if (cuda) opts.cuda = kn_cuda_prog_new(c->model->name);
    kn_strbuf src;
    kn_sb_init(&src);
    if (st == KN_OK) st = kn_emit_c_program(c->model, phases, n_phases, &opts, &src, d);
    for (int i = 0; i < n_phases; i++) kn_cli_lowered_free(&low[i]);
    if (st == KN_OK) st = write_atomic(c_path, src.s, src.len, d);
    kn_sb_free(&src);
    if (st == KN_OK && cuda) st = build_cuda_kernels(opts.cuda, arch, ptx_path, cu_path, stats, d);
    kn_cuda_prog_free(opts.cuda);
    if (st != KN_OK) return st;
    kn_toolchain tc = {
        .cc = env_or("KILN_CC", KILN_C_COMPILER),
        .rt_include = env_or("KILN_RT_INCLUDE", KILN_RT_INCLUDE),
        .rt_lib = env_or("KILN_RT_LIB", KILN_RT_LIB),
        .link_flags = KILN_RT_LINK_FLAGS,
        .extra_cflags = KILN_RT_CFLAGS,
        .opt_flags = env_or("KILN_CFLAGS", KILN_DEFAULT_CFLAGS),
        /* KILN_RT_CUDA_LIBS: tests link a host emulation instead. */
        .cuda_libs = cuda ? env_or("KILN_RT_CUDA_LIBS", KILN_RT_CUDA_LIBS) : NULL,
    };
    return kn_build_executable(&tc, c_path, exe_path, d);
}

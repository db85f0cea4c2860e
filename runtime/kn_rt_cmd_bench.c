/* kn_rt_cmd_bench.c — `bench`: latency of the infer phase, or of one
 * training step (train phase + update phase), on random inputs. */
#include "kn_rt_arena.h"
#include "kn_rt_blas.h"
#include "kn_rt_cli.h"
#include "kn_rt_inputs.h"
#include "kn_rt_opt.h"
#include "kn_rt_profile.h"
#include "kn_rt_time.h"

#include <math.h>
#include <stdlib.h>

static const char HELP[] =
    "usage: bench [--mode infer|train|head] [--batch B] [--iters N] [--warmup W] [--threads T]\n"
    "             [--seed S] [--device cpu|cuda] [--profile] [--top K] [--json]\n"
    "  times the infer phase (or, with --mode train, one optimizer step: the\n"
    "  train phase then the update phase; with --mode head, one step of the\n"
    "  head on cached features, as `train` runs epochs 2.. of a model with a\n"
    "  frozen prefix) at batch B (default: the model's batch) on random\n"
    "  inputs: W untimed calls (default 5), then N timed ones (default 50).\n"
    "  --threads T  worker threads (default: OMP_NUM_THREADS or the core count)\n"
    "  --profile    after the timing, N more calls timed node by node: the\n"
    "               K heaviest nodes of each phase (default 12), with their share\n"
    "  reports median and min ms per call, items/s, peak RSS and arena bytes.\n";

/* One timed call: the infer phase, or a training step (train phase, then
 * update phase, with the step protocol of `train`: 0-based for the
 * micro-batch, 1-based for the update).  prof, when given, times the nodes
 * of each phase (prof[0] the phase, prof[1] the update). */
static void bench_call(const kn_rt_model *m, kn_rt_ctx *ctx, const kn_rt_phase *ph, int batch,
                       int train, uint64_t i, kn_rt_profile *prof)
{
    if (train) {
        ctx->training = 1;
        ctx->step = i;
    }
    if (prof) kn_rt_profile_begin(&prof[0], ctx);
    ph->run(ctx, batch);
    if (prof) kn_rt_profile_end(&prof[0], ctx);
    if (!train) return;
    ctx->step = i + 1;
    if (prof) kn_rt_profile_begin(&prof[1], ctx);
    m->update->run(ctx, 0);
    if (prof) kn_rt_profile_end(&prof[1], ctx);
}

/* --profile: `iters` more calls, node by node; prints the `top` heaviest
 * nodes of each phase. */
static void bench_profile(const kn_rt_model *m, kn_rt_ctx *ctx, const kn_rt_phase *ph, int batch,
                          int train, int first, int iters, int top, kn_rt_inputs *inputs, FILE *out)
{
    kn_rt_profile prof[2];
    if (kn_rt_profile_init(&prof[0], ph)) return;
    if (kn_rt_profile_init(&prof[1], train ? m->update : ph)) {
        kn_rt_profile_free(&prof[0]);
        return;
    }
    for (int i = 0; i < iters; i++) {
        kn_rt_inputs_restore(inputs, ctx);
        bench_call(m, ctx, ph, batch, train, (uint64_t)(first + i), prof);
    }
    kn_rt_profile_print(&prof[0], out, top);
    if (train) kn_rt_profile_print(&prof[1], out, top);
    kn_rt_profile_free(&prof[0]);
    kn_rt_profile_free(&prof[1]);
}

int kn_cmd_bench(const kn_rt_model *m, int argc, char **argv)
{
    int json = 0, profile = 0, top = 12, batch = m->batch > 0 ? m->batch : 1, iters = 50, warmup = 5, threads = 0;
    uint64_t seed = (uint64_t)m->seed;
    const char *mode = "infer", *device = NULL;
    kn_opt opts[] = {
        {"--mode", KN_OPT_STR, &mode, 0},      {"--batch", KN_OPT_INT, &batch, 1},
        {"--iters", KN_OPT_INT, &iters, 1},    {"--warmup", KN_OPT_INT, &warmup, 0},
        {"--threads", KN_OPT_INT, &threads, 1}, {"--seed", KN_OPT_U64, &seed, 0},
        {"--device", KN_OPT_STR, &device, 0},  {"--json", KN_OPT_FLAG, &json, 0},
        {"--profile", KN_OPT_FLAG, &profile, 0}, {"--top", KN_OPT_INT, &top, 1},
    };
    int rc = kn_opt_parse("bench", argc, argv, opts, sizeof opts / sizeof opts[0], NULL);
    if (rc == KN_OPT_HELP) return printf("%s", HELP), KN_EXIT_OK;
    if (rc) return KN_EXIT_USAGE;
    kn_cli c;
    kn_cli_begin(&c, m, "bench", json);
    if ((rc = kn_cli_device(&c, device))) return rc;
    if (strcmp(mode, "infer") && strcmp(mode, "train") && strcmp(mode, "head"))
        return kn_cli_usage(&c, "--mode '%s': expected infer, train or head", mode);
    int head = !strcmp(mode, "head"), train = head || !strcmp(mode, "train");
    if (train && (!m->train || !m->update))
        return kn_cli_fail(&c, "this model was compiled without a train phase");
    if (head && !m->head_train)
        return kn_cli_fail(&c, "--mode head: this model has no frozen prefix to cache (no head_train phase)");
    if (threads > 0) kn_rt_set_threads(threads);

    kn_rt_ctx ctx;
    char err[1024];
    if (kn_rt_ctx_open(&ctx, m, batch, err, sizeof err)) return kn_cli_fail(&c, "%s", err);
    kn_cli_weights(&c, &ctx, NULL, seed);
    const kn_rt_phase *ph = head ? m->head_train : train ? m->train : m->infer;
    if (train) {
        size_t gbytes = ((m->weights_numel ? m->weights_numel : 1) * sizeof(float) + 63) & ~(size_t)63;
        ctx.grads = aligned_alloc(64, gbytes);
        if (!ctx.grads) {
            kn_rt_ctx_close(&ctx);
            return kn_cli_fail(&c, "out of memory allocating gradients");
        }
        memset(ctx.grads, 0, gbytes);
        kn_rt_ctx_host_wrote(&ctx, KN_RT_BLOB_GRADS);
        ctx.grad_scale = 1.0f;
        ctx.lr = m->lr;
    }
    /* Inputs are restored before every call, outside the timed region. */
    kn_rt_inputs inputs;
    kn_rt_inputs_random(&inputs, ph, batch, seed, 0);
    double *ms = malloc(sizeof *ms * (size_t)iters);
    for (int i = 0; i < warmup + iters; i++) {
        kn_rt_inputs_restore(&inputs, &ctx);
        double t0 = kn_rt_now_ms();
        bench_call(m, &ctx, ph, batch, train, (uint64_t)i, NULL);
        if (i >= warmup) ms[i - warmup] = kn_rt_now_ms() - t0;
    }
    double med = kn_rt_median(ms, iters); /* sorts ms */
    double mn = ms[0], ips = med > 0 ? batch * 1000.0 / med : 0, rss = kn_rt_peak_rss_mb();
    size_t arena = kn_rt_arena_bytes(m, batch);
    char ab[32];
    const char *device_name = ctx.cuda ? "cuda" : "cpu", *gemm = ctx.cuda ? "cuBLAS" : kn_rt_gemm_library();
    fprintf(c.out, "bench %s %s batch %d: median %.3f ms  min %.3f ms  %.0f items/s  peak RSS %.1f MB  arena %s bytes (%d iters, %d warmup, %d threads, GEMM %s, OpenBLAS %s)\n",
            mode, device_name, batch, med, mn, ips, rss, kn_cli_thousands(arena, ab, sizeof ab), iters, warmup,
            kn_rt_get_threads(), gemm, kn_rt_blas_core());
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "event", "bench");
        cJSON_AddStringToObject(j, "mode", mode);
        cJSON_AddStringToObject(j, "device", device_name);
        cJSON_AddNumberToObject(j, "batch", batch);
        cJSON_AddNumberToObject(j, "iters", iters);
        cJSON_AddNumberToObject(j, "ms_median", round(med * 1e4) / 1e4);
        cJSON_AddNumberToObject(j, "ms_min", round(mn * 1e4) / 1e4);
        cJSON_AddNumberToObject(j, "items_per_s", round(ips * 10) / 10);
        cJSON_AddNumberToObject(j, "peak_rss_mb", round(rss * 10) / 10);
        cJSON_AddNumberToObject(j, "arena_bytes", (double)arena);
        cJSON_AddNumberToObject(j, "threads", kn_rt_get_threads());
        cJSON_AddStringToObject(j, "blas_core", kn_rt_blas_core());
        cJSON_AddStringToObject(j, "gemm", gemm);
        kn_cli_json(j);
    }
    if (profile) bench_profile(m, &ctx, ph, batch, train, warmup + iters, iters, top, &inputs, c.out);
    free(ms);
    kn_rt_inputs_free(&inputs);
    kn_rt_ctx_close(&ctx);
    return KN_EXIT_OK;
}

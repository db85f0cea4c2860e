/* kn_rt_cmd_gradcheck.c — `gradcheck`: compares the compiled gradients of
 * every trainable parameter with central finite differences of the compiled
 * loss, so the autograd lesson stays visible in a compiled world.
 *
 * Both sides run the same train phase on the same batch with ctx->step held
 * fixed, so dropout draws the same mask every time and batchnorm uses the
 * same batch statistics; only the perturbed weight differs. */
#include "kn_rt_arena.h"
#include "kn_rt_cli.h"
#include "kn_rt_init.h"
#include "kn_rt_inputs.h"
#include "kn_rt_opt.h"

#include <math.h>
#include <stdlib.h>

static const char HELP[] =
    "usage: gradcheck [--batch B] [--samples K] [--eps E] [--tol T] [--seed S] [--verbose] [--json]\n"
    "  runs the train phase on one batch of B random inputs (default 4) and, for\n"
    "  K elements of every trainable parameter (default 8), compares the compiled\n"
    "  gradient with (L(w+E) - L(w-E)) / 2E (default E 1e-2). Prints the max\n"
    "  absolute and relative error per parameter.  An element agrees when its\n"
    "  relative error is at most T (default 2e-2) or below the f32 noise of the\n"
    "  loss, at E or, retried, at E/10 or E/100 (a difference that straddles a\n"
    "  ReLU or max-pool switch is wrong for that E only); a parameter passes when\n"
    "  at least 3 in 4 of its sampled elements agree (batchnorm shifts a whole\n"
    "  batch across kinks at once); a wrong rule fails nearly all.\n"
    "  --verbose prints every element.  Exit 1 when a parameter fails.\n";

typedef struct {
    kn_rt_ctx *ctx;
    const kn_rt_phase *ph;
    kn_rt_inputs inputs;
} gc_state;

/* Loss of one train-phase call (gradients accumulate into ctx->grads). */
static double run_loss(gc_state *s)
{
    kn_rt_inputs_restore(&s->inputs, s->ctx);
    s->ph->run(s->ctx, s->inputs.n);
    const kn_rt_io *loss = kn_rt_io_find(s->ph, KN_RT_IO_LOSS, NULL);
    return loss ? (double)*(float *)kn_rt_io_ptr(s->ctx, s->ph, loss, s->inputs.n) : NAN;
}

/* Sets one weight of the blob: the train phase moves batchnorm statistics
 * in the same blob, so on a GPU the host copy is refreshed first. */
static int set_weight(gc_state *s, float *w, float v)
{
    if (kn_rt_ctx_host_view(s->ctx, KN_RT_BLOB_WEIGHTS)) return -1;
    *w = v;
    kn_rt_ctx_host_wrote(s->ctx, KN_RT_BLOB_WEIGHTS);
    return 0;
}

/* (L(w+e) - L(w-e)) / h, h the perturbation actually applied in f32; NaN
 * when the weight cannot be set (a GPU error). */
static double central_difference(gc_state *s, float *w, float e, double *h)
{
    *h = NAN;
    if (kn_rt_ctx_host_view(s->ctx, KN_RT_BLOB_WEIGHTS)) return NAN;
    float orig = *w;
    *h = (double)(orig + e) - (double)(orig - e);
    if (set_weight(s, w, orig + e)) return NAN;
    double lp = run_loss(s);
    if (set_weight(s, w, orig - e)) return NAN;
    double lm = run_loss(s);
    if (set_weight(s, w, orig)) return NAN;
    return (lp - lm) / *h;
}

int kn_cmd_gradcheck(const kn_rt_model *m, int argc, char **argv)
{
    int json = 0, batch = 4, samples = 8, verbose = 0;
    float eps = 1e-2f, tol = 2e-2f;
    uint64_t seed = (uint64_t)m->seed;
    kn_opt opts[] = {
        {"--batch", KN_OPT_INT, &batch, 1},   {"--samples", KN_OPT_INT, &samples, 1},
        {"--eps", KN_OPT_FLOAT, &eps, 0},     {"--tol", KN_OPT_FLOAT, &tol, 0},
        {"--seed", KN_OPT_U64, &seed, 0},     {"--json", KN_OPT_FLAG, &json, 0},
        {"--verbose", KN_OPT_FLAG, &verbose, 0},
    };
    int rc = kn_opt_parse("gradcheck", argc, argv, opts, sizeof opts / sizeof opts[0], NULL);
    if (rc == KN_OPT_HELP) return printf("%s", HELP), KN_EXIT_OK;
    if (rc) return KN_EXIT_USAGE;
    kn_cli c;
    kn_cli_begin(&c, m, "gradcheck", json);
    if (!m->train) return kn_cli_fail(&c, "this model was compiled without a train phase (no loss or optimizer)");
    if (eps <= 0) return kn_cli_usage(&c, "--eps must be positive");

    kn_rt_ctx ctx;
    char err[1024];
    if (kn_rt_ctx_open(&ctx, m, batch, err, sizeof err)) return kn_cli_fail(&c, "%s", err);
    kn_cli_weights(&c, &ctx, NULL, seed);
    ctx.grads = calloc(m->weights_numel ? m->weights_numel : 1, sizeof(float));
    kn_rt_ctx_host_wrote(&ctx, KN_RT_BLOB_GRADS);
    float *analytic = calloc(m->weights_numel ? m->weights_numel : 1, sizeof(float));
    ctx.seed = seed;
    ctx.step = 0;
    ctx.training = 1;
    ctx.grad_scale = 1.0f;
    ctx.lr = 0.0f;
    gc_state s = {&ctx, m->train, {0}};
    kn_rt_inputs_random(&s.inputs, m->train, batch, seed, 1);
    double loss0 = run_loss(&s);
    if (kn_rt_ctx_host_view(&ctx, KN_RT_BLOB_GRADS | KN_RT_BLOB_WEIGHTS)) loss0 = NAN; /* fails every parameter */
    memcpy(analytic, ctx.grads, sizeof(float) * m->weights_numel);
    fprintf(c.out, "gradcheck: batch %d, loss %.6f, eps %g, %d samples per parameter\n", batch, loss0, eps, samples);
    fprintf(c.out, "  %-32s %10s %12s %12s\n", "parameter", "elements", "max abs err", "max rel err");
    int failed = 0;
    for (int p = 0; p < m->n_params; p++) {
        const kn_rt_param *pr = &m->params[p];
        if (pr->role != KN_RT_TRAINABLE) continue;
        double max_abs = 0, max_rel = 0;
        int disagree = 0;
        int k_count = samples < (int)pr->numel ? samples : (int)pr->numel;
        for (int k = 0; k < k_count; k++) {
            double h;
            size_t idx = pr->numel <= (size_t)samples ? (size_t)k
                                                      : (size_t)(kn_rt_uniform(seed, 0x7063ull + (uint64_t)p, (uint64_t)k) * (float)pr->numel) % pr->numel;
            float *w = ctx.weights + pr->offset + idx;
            double a = analytic[pr->offset + idx], abs_err = 0, numeric = 0, rel = 0;
            /* A difference that straddles a ReLU or max-pool switch is
             * wrong for that eps; shrinking eps moves off the kink, while a
             * wrong rule disagrees at every eps. */
            for (float e = eps; e >= eps * 1e-2f; e *= 0.1f) {
                numeric = central_difference(&s, w, e, &h);
                abs_err = fabs(a - numeric);
                /* Below the f32 resolution of the loss difference an error
                 * is rounding, not a wrong gradient. */
                double noise = 8.0 * 1.1920929e-7 * fmax(fabs(loss0), 1.0) / h;
                rel = abs_err <= noise ? 0.0 : abs_err / fmax(fabs(a) + fabs(numeric), 1e-3);
                if (rel <= tol) break;
            }
            if (verbose)
                fprintf(c.out, "    %s[%zu]: compiled %.6e  numeric %.6e  rel %.2e\n", pr->name, idx, a, numeric, rel);
            disagree += rel > tol;
            if (abs_err > max_abs) max_abs = abs_err;
            if (rel > max_rel) max_rel = rel;
        }
        int allowed = k_count / 4 > 1 ? k_count / 4 : 1;
        int ok = disagree <= allowed && (disagree < k_count || k_count == 0);
        failed += !ok;
        fprintf(c.out, "  %-32s %10zu %12.3e %12.3e  %d/%d agree  %s\n", pr->name, pr->numel, max_abs, max_rel,
                k_count - disagree, k_count, ok ? "ok" : "FAIL");
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "event", "gradcheck");
            cJSON_AddStringToObject(o, "param", pr->name);
            cJSON_AddNumberToObject(o, "max_abs_err", max_abs);
            cJSON_AddNumberToObject(o, "max_rel_err", max_rel);
            cJSON_AddNumberToObject(o, "agree", k_count - disagree);
            cJSON_AddNumberToObject(o, "checked", k_count);
            cJSON_AddBoolToObject(o, "ok", ok);
            kn_cli_json(o);
        }
    }
    fprintf(c.out, "gradcheck: %s\n", failed ? "FAILED" : "all parameters within tolerance");
    kn_rt_inputs_free(&s.inputs);
    free(analytic);
    kn_rt_ctx_close(&ctx);
    return failed ? KN_EXIT_FAIL : KN_EXIT_OK;
}

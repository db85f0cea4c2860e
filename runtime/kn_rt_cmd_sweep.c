/* kn_rt_cmd_sweep.c — `sweep`: one training run per setting of the
 * run-time hyper-parameters (learning rate, batch size), from the same seed,
 * then a table of the results.  All runs share one frozen-prefix cache, so a
 * transfer-learning sweep pays for the backbone once.  Compile-time settings
 * (layer sizes) need one executable each: `kiln sweep MODEL --set k=a,b`
 * builds them and runs this command in each. */
#include "kn_rt_afile.h"
#include "kn_rt_cli.h"
#include "kn_rt_fcache.h"
#include "kn_rt_inspect.h"
#include "kn_rt_opt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char HELP[] =
    "usage: sweep --lr LIST [--batch LIST] [--seed LIST] [--epochs N] [--data DIR] [--limit N]\n"
    "             [--tag TEXT] [--out DIR] [--json] [--skip-bad]\n"
    "  trains once per setting (every lr with every batch size and seed; LIST is\n"
    "  comma-separated, e.g. --lr 0.0001,0.001,0.01,0.1), then prints\n"
    "  setting, best val accuracy, epoch of best, test accuracy (best-val weights)\n"
    "  and seconds, and the best setting.  A frozen prefix is computed once for all\n"
    "  runs.  --out DIR writes sweep.csv, sweep.jsonl and sweep.svg; --tag labels\n"
    "  the rows (kiln sweep --set passes inner=100); --json prints one\n"
    "  {\"event\":\"sweep\",...} line per run on stdout.\n";

#define MAX_VALUES 32

typedef struct {
    float lr;
    int batch;
    long long seed;          /* -1: the model's */
    kn_train_result r;
    int rc;
} sweep_run;

/* Comma-separated numbers > 0 (>= 0 with allow_zero). */
static int parse_list(const kn_cli *c, const char *opt, const char *s, double *out, int *n, int allow_zero)
{
    *n = 0;
    if (!s) return 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        double v = strtod(tok, &end);
        if (end == tok || *end || !isfinite(v) || v < 0 || (v == 0 && !allow_zero))
            return kn_cli_usage(c, "%s '%s': expected %s numbers separated by commas", opt, tok,
                                allow_zero ? "non-negative" : "positive");
        if (*n == MAX_VALUES) return kn_cli_usage(c, "%s: at most %d values", opt, MAX_VALUES);
        out[(*n)++] = v;
    }
    return *n ? 0 : kn_cli_usage(c, "%s: empty list", opt);
}

/* Runs one train with the sweep's options; its human output goes to stderr
 * when stdout carries the sweep's JSON. */
static int run_one(const kn_rt_model *m, kn_fcache_pool *pool, sweep_run *r, char **extra, int n_extra, int json)
{
    char lr[32], batch[32], seed[32];
    snprintf(lr, sizeof lr, "%.9g", (double)r->lr);
    snprintf(batch, sizeof batch, "%d", r->batch);
    snprintf(seed, sizeof seed, "%lld", r->seed);
    char *argv[40];
    int argc = 0;
    argv[argc++] = "--lr";
    argv[argc++] = lr;
    if (r->batch > 0) {
        argv[argc++] = "--batch";
        argv[argc++] = batch;
    }
    if (r->seed >= 0) {
        argv[argc++] = "--seed";
        argv[argc++] = seed;
    }
    argv[argc++] = "--quiet";
    for (int i = 0; i < n_extra && argc < 39; i++) argv[argc++] = extra[i];
    argv[argc] = NULL;
    int saved = -1;
    if (json) {
        fflush(stdout);
        saved = dup(1);
        dup2(2, 1);
    }
    int rc = kn_cmd_train_ex(m, argc, argv, pool, &r->r);
    if (json) {
        fflush(stdout);
        dup2(saved, 1);
        close(saved);
    }
    return rc;
}

static void setting_text(const sweep_run *r, const char *tag, char *buf, size_t cap)
{
    int w = snprintf(buf, cap, "%s%slr %g", tag ? tag : "", tag ? " " : "", (double)r->lr);
    if (r->batch > 0 && w > 0 && (size_t)w < cap) w += snprintf(buf + w, cap - (size_t)w, " batch %d", r->batch);
    if (r->seed >= 0 && w > 0 && (size_t)w < cap) snprintf(buf + w, cap - (size_t)w, " seed %lld", r->seed);
}

static cJSON *run_json(const sweep_run *r, const char *tag)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "event", "sweep");
    if (tag) cJSON_AddStringToObject(j, "tag", tag);
    char lrs[32];
    snprintf(lrs, sizeof lrs, "%.7g", (double)r->lr);
    cJSON_AddNumberToObject(j, "lr", strtod(lrs, NULL));
    if (r->batch > 0) cJSON_AddNumberToObject(j, "batch", r->batch);
    if (r->seed >= 0) cJSON_AddNumberToObject(j, "seed", (double)r->seed);
    if (r->rc) {
        cJSON_AddStringToObject(j, "status", "failed");
        return j;
    }
    cJSON_AddNumberToObject(j, "best_val_acc", r->r.best_val_acc);
    cJSON_AddNumberToObject(j, "best_epoch", r->r.best_epoch);
    cJSON_AddNumberToObject(j, "test_acc", r->r.test_acc);
    cJSON_AddNumberToObject(j, "seconds", round(r->r.seconds * 100) / 100);
    return j;
}

static int write_files(const char *dir, const sweep_run *runs, int n, const char *tag, const char *title)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/sweep.csv", dir);
    FILE *csv = fopen(p, "w");
    snprintf(p, sizeof p, "%s/sweep.jsonl", dir);
    FILE *jl = fopen(p, "w");
    snprintf(p, sizeof p, "%s/sweep.svg", dir);
    FILE *svg = fopen(p, "w");
    int ok = csv && jl && svg;
    if (ok) {
        fprintf(csv, "tag,lr,batch,seed,best_val_acc,best_epoch,test_acc,seconds\n");
        int h = 40 + 28 * n;
        fprintf(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"%d\" font-family=\"sans-serif\" "
                     "font-size=\"12\">\n<text x=\"10\" y=\"20\" font-size=\"14\">%s: best validation accuracy "
                     "per setting</text>\n", h, title);
        for (int i = 0; i < n; i++) {
            const sweep_run *r = &runs[i];
            char set[128];
            setting_text(r, NULL, set, sizeof set);
            double acc = r->rc ? 0 : r->r.best_val_acc;
            fprintf(csv, "%s,%.7g,%d,%lld,%.6f,%d,%.6f,%.2f\n", tag ? tag : "", (double)r->lr, r->batch, r->seed, acc,
                    r->r.best_epoch, r->rc ? 0 : r->r.test_acc, r->r.seconds);
            cJSON *j = run_json(r, tag);
            char *s = cJSON_PrintUnformatted(j);
            fprintf(jl, "%s\n", s);
            free(s);
            cJSON_Delete(j);
            int y = 34 + 28 * i;
            fprintf(svg, "<text x=\"10\" y=\"%d\">%s</text><rect x=\"170\" y=\"%d\" width=\"%.1f\" height=\"20\" "
                         "fill=\"#4a7bd0\"/><text x=\"%.1f\" y=\"%d\">%.4f</text>\n",
                    y + 15, set, y, 400 * acc, 175 + 400 * acc, y + 15, acc);
        }
        fprintf(svg, "</svg>\n");
    }
    ok = ok && !ferror(csv) && !ferror(jl) && !ferror(svg);
    if (csv) fclose(csv);
    if (jl) fclose(jl);
    if (svg) fclose(svg);
    return ok ? 0 : -1;
}

/* With several seeds: each setting's mean over them (runs are ordered
 * setting-major within a seed: run = seed * n_settings + setting), and the
 * best setting by mean best-val accuracy.  Returns a run of that setting. */
static int print_seed_means(const kn_cli *c, const sweep_run *runs, int n_settings, int n_seeds, const char *tag)
{
    int best = -1;
    double best_mean = -1;
    fprintf(c->out, "\nmean over %d seeds:\n| setting | best val acc | test acc | runs |\n|---|---|---|---|\n", n_seeds);
    for (int k = 0; k < n_settings; k++) {
        double val = 0, test = 0;
        int ok = 0;
        for (int sd = 0; sd < n_seeds; sd++) {
            const sweep_run *r = &runs[sd * n_settings + k];
            if (r->rc) continue;
            val += r->r.best_val_acc;
            test += r->r.test_acc;
            ok++;
        }
        sweep_run shown = runs[k];
        shown.seed = -1;
        char set[128];
        setting_text(&shown, tag, set, sizeof set);
        if (!ok) {
            fprintf(c->out, "| %s | failed | | 0 |\n", set);
            continue;
        }
        fprintf(c->out, "| %s | %.4f | %.4f | %d |\n", set, val / ok, test / ok, ok);
        if (val / ok > best_mean) best_mean = val / ok, best = k;
    }
    if (best >= 0) {
        sweep_run shown = runs[best];
        shown.seed = -1;
        char set[128];
        setting_text(&shown, tag, set, sizeof set);
        fprintf(c->out, "best: %s (mean best val %.4f over %d seeds)\n", set, best_mean, n_seeds);
    }
    return best;
}

int kn_cmd_sweep(const kn_rt_model *m, int argc, char **argv)
{
    int json = 0, epochs = -1, limit = 0, skip_bad = 0;
    const char *lr_s = NULL, *batch_s = NULL, *seed_s = NULL, *data = NULL, *tag = NULL, *out = NULL;
    kn_opt opts[] = {
        {"--lr", KN_OPT_STR, &lr_s, 0},       {"--batch", KN_OPT_STR, &batch_s, 0},
        {"--epochs", KN_OPT_INT, &epochs, 1}, {"--seed", KN_OPT_STR, &seed_s, 0},
        {"--data", KN_OPT_STR, &data, 0},     {"--limit", KN_OPT_INT, &limit, 1},
        {"--tag", KN_OPT_STR, &tag, 0},       {"--out", KN_OPT_STR, &out, 0},
        {"--json", KN_OPT_FLAG, &json, 0},    {"--skip-bad", KN_OPT_FLAG, &skip_bad, 0},
    };
    int rc = kn_opt_parse("sweep", argc, argv, opts, sizeof opts / sizeof opts[0], NULL);
    if (rc == KN_OPT_HELP) return printf("%s", HELP), KN_EXIT_OK;
    if (rc) return KN_EXIT_USAGE;
    kn_cli c;
    kn_cli_begin(&c, m, "sweep", json);
    double lrs[MAX_VALUES], batches[MAX_VALUES], seeds[MAX_VALUES];
    int n_lr = 0, n_batch = 0, n_seed = 0;
    if (!lr_s) lr_s = "";
    if ((rc = parse_list(&c, "--lr", *lr_s ? lr_s : NULL, lrs, &n_lr, 0))) return rc;
    if ((rc = parse_list(&c, "--batch", batch_s, batches, &n_batch, 0))) return rc;
    if ((rc = parse_list(&c, "--seed", seed_s, seeds, &n_seed, 1))) return rc;
    if (n_lr == 0) {
        lrs[0] = m->lr > 0 ? m->lr : 0.01;
        n_lr = 1;
    }
    /* Options every run shares. */
    char epochs_s[32], limit_s[32];
    char *extra[12];
    int n_extra = 0;
    if (epochs > 0) {
        snprintf(epochs_s, sizeof epochs_s, "%d", epochs);
        extra[n_extra++] = "--epochs";
        extra[n_extra++] = epochs_s;
    }
    if (limit > 0) {
        snprintf(limit_s, sizeof limit_s, "%d", limit);
        extra[n_extra++] = "--limit";
        extra[n_extra++] = limit_s;
    }
    if (data) {
        extra[n_extra++] = "--data";
        extra[n_extra++] = (char *)data;
    }
    if (skip_bad) extra[n_extra++] = "--skip-bad";

    int nb = n_batch ? n_batch : 1, ns = n_seed ? n_seed : 1;
    int n = n_lr * nb * ns;
    sweep_run *runs = calloc((size_t)n, sizeof *runs);
    if (!runs) return kn_cli_fail(&c, "out of memory");
    kn_fcache_pool pool;
    memset(&pool, 0, sizeof pool);
    for (int i = 0; i < n; i++) {
        sweep_run *r = &runs[i];
        r->lr = (float)lrs[i % n_lr];
        r->batch = n_batch ? (int)batches[i / n_lr % nb] : 0;
        r->seed = n_seed ? (long long)seeds[i / (n_lr * nb)] : -1;
        char set[128];
        setting_text(r, tag, set, sizeof set);
        fprintf(c.out, "sweep: run %d/%d: %s\n", i + 1, n, set);
        fflush(c.out);
        r->rc = run_one(m, &pool, r, extra, n_extra, json);
        if (r->rc == KN_EXIT_USAGE) { /* the same for every run */
            kn_fcache_pool_free(&pool);
            free(runs);
            return KN_EXIT_USAGE;
        }
    }
    kn_fcache_pool_free(&pool);

    int best = -1;
    fprintf(c.out, "\n| setting | best val acc | epoch of best | test acc | seconds |\n|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const sweep_run *r = &runs[i];
        char set[128];
        setting_text(r, tag, set, sizeof set);
        if (r->rc) {
            fprintf(c.out, "| %s | failed | | | |\n", set);
        } else {
            fprintf(c.out, "| %s | %.4f | %d | %.4f | %.1f |\n", set, r->r.best_val_acc, r->r.best_epoch,
                    r->r.test_acc, r->r.seconds);
            if (best < 0 || r->r.best_val_acc > runs[best].r.best_val_acc) best = i;
        }
        if (json) kn_cli_json(run_json(r, tag));
    }
    if (n_seed > 1) best = print_seed_means(&c, runs, n_lr * nb, ns, tag);
    if (best >= 0 && n_seed <= 1) {
        char set[128];
        setting_text(&runs[best], tag, set, sizeof set);
        fprintf(c.out, "best: %s (val %.4f at epoch %d, test %.4f)\n", set, runs[best].r.best_val_acc,
                runs[best].r.best_epoch, runs[best].r.test_acc);
    }
    rc = best >= 0 ? KN_EXIT_OK : KN_EXIT_FAIL;
    if (out && (kn_rt_mkdir_p(out) || write_files(out, runs, n, tag, m->name))) rc = kn_cli_fail(&c, "--out %s: cannot write the sweep files", out);
    else if (out) fprintf(c.out, "wrote %s/sweep.csv, sweep.jsonl, sweep.svg\n", out);
    free(runs);
    return rc;
}

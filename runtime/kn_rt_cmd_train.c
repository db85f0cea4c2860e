/* kn_rt_cmd_train.c — `train`: mini-batch training with the generated
 * `train` (forward + backward of one micro-batch, adding into ctx->grads)
 * and `update` (optimizer step, zeroes ctx->grads) phases.
 *
 * Determinism: the sample order of epoch e is a Fisher-Yates shuffle drawn
 * from the counter RNG at (seed, SHUFFLE_STREAM + e), dropout masks depend
 * on (seed, ctx->step, position among the step's samples), and the learning
 * rate is a pure function of (step, epoch).  A checkpoint is written only at epoch boundaries, where
 * ctx->grads is zero, so params + buffers + STATE + (epoch, step, seed) are
 * the whole training state and `--resume` continues bit-identically.
 *
 * ctx->step protocol: before each micro-batch's train call it is the number
 * of optimizer steps done so far (0-based); before the update call it is
 * that number + 1 (1-based, for Adam's bias correction).
 *
 * Hidden option `--limit N`: train on only the first N samples of the train
 * split (before shuffling).  For tests and quick experiments; not in --help.
 */
#include "kn_rt_arena.h"
#include "kn_rt_ckpt.h"
#include "kn_rt_cli.h"
#include "kn_rt_err.h"
#include "kn_rt_fcache.h"
#include "kn_rt_init.h"
#include "kn_rt_inspect.h"
#include "kn_rt_opt.h"
#include "kn_rt_time.h"
#include "kn_rt_train_log.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

static const char HELP[] =
    "usage: train [--data DIR] [--epochs N] [--batch B] [--lr X] [--seed S] [--device cpu|cuda]\n"
    "             [--save CKPT] [--resume CKPT] [--weights CKPT] [--json] [--accumulate K]\n"
    "             [--patience K] [--steps N] [--schedule none|step|cosine] [--quiet]\n"
    "             [--dump-grads DIR] [--retain NAME[,NAME...]] [--skip-bad] [--augment] [--no-cache]\n"
    "  --data DIR       dataset directory (default: the model's dataset location);\n"
    "                   trains on split train, validates on val after each epoch and\n"
    "                   reports test at the end (with the best-val weights)\n"
    "  --skip-bad       image folders: leave unreadable images out (counted)\n"
    "  --augment        image folders: RandomResizedCrop + horizontal flip on train\n"
    "  --no-cache       train the whole model every epoch even when a frozen prefix\n"
    "                   could be computed once (default: cache it, see KILN_FCACHE_MB)\n"
    "                   (seeded; turns the in-memory crop cache off for train)\n"
    "  --epochs N       total epochs (default: the model's)\n"
    "  --batch B        samples per micro-batch (default: the model's)\n"
    "  --lr X           base learning rate (default: the model's)\n"
    "  --schedule S     none (default), step (x0.1 every epochs/3 epochs) or cosine\n"
    "                   (to 0 over all steps)\n"
    "  --accumulate K   K micro-batches per optimizer step (gradients scaled by 1/K)\n"
    "  --seed S         init, shuffle and dropout seed (default: the model's)\n"
    "  --weights CKPT   start from these params/buffers (fresh optimizer state)\n"
    "  --resume CKPT    continue a --save checkpoint from its next epoch, bit-identical\n"
    "                   to an uninterrupted run (epochs/batch/lr/seed default to its)\n"
    "  --save CKPT      after every epoch write CKPT atomically, the best-val weights\n"
    "                   as STEM.best.safetensors, and STEM.csv / STEM.svg curves\n"
    "  --patience K     stop when val accuracy has not improved for K epochs\n"
    "  --steps N        stop after N optimizer steps (nothing saved, no test eval)\n"
    "  --json           one {\"event\":\"epoch\",...} line per epoch, then the test\n"
    "                   {\"event\":\"eval\",...} line, on stdout\n"
    "  --quiet          no progress bar\n"
    "  --dump-grads DIR at every optimizer step, write each trainable parameter's\n"
    "                   gradient as DIR/PARAM.grad.npy (the files keep the last step:\n"
    "                   use with --steps N to inspect step N)\n"
    "  --retain NAMES   with --dump-grads, also write these intermediate values of\n"
    "                   the train phase (layer names, gradients like fc0.grad.x) as\n"
    "                   DIR/NAME.npy, from the step's last micro-batch\n";

#define SHUFFLE_STREAM 0x5348554646000000ull /* "SHUFF" */
#define SCHED_NONE 0
#define SCHED_STEP 1
#define SCHED_COSINE 2
static const char *const SCHED_NAMES[] = {"none", "step", "cosine"};

typedef struct {
    kn_cli c;
    const kn_rt_model *m;
    kn_rt_ctx ctx;
    const char *dump;        /* --dump-grads DIR */
    kn_rt_retain retain;     /* --retain values, captured by ctx->probe */
    kn_cli_ios inf;          /* infer phase ios (what the datasets must fit) */
    kn_cli_ios eio;          /* phase that evaluates val/test: infer or head_infer */
    double cache_ms;         /* time spent filling the caches, added to the first epoch */
    const kn_rt_phase *tp;   /* train, or head_train when caching */
    int use_cache;           /* frozen-prefix features cached per split */
    kn_fcache cache[3];      /* train, val, test */
    kn_fcache_pool *pool;    /* sweep: caches shared with the other runs (owns them) */
    const kn_rt_io *tin, *tlab, *tout, *tloss; /* train phase ios */
    kn_dataset dtrain, dval, dtest;
    int ntrain;              /* samples used per epoch (--limit) */
    int epochs, batch, accumulate, sched, patience, steps_max, json, quiet;
    float base_lr;
    uint64_t seed;
    uint64_t steps_done;
    int epoch_done;          /* last completed epoch */
    long long total_steps;   /* for cosine */
    int *order;
    float *best;             /* weights of the best val epoch (NULL if none known) */
    double best_acc;
    int best_epoch;
    kn_train_row *hist;
    int n_hist;
    char stem[4096];
    const char *save;
} trainer;

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static int updates_per_epoch(const trainer *t)
{
    int nb = (t->ntrain + t->batch - 1) / t->batch;
    return (nb + t->accumulate - 1) / t->accumulate;
}

/* Learning rate of the optimizer step that follows `done` steps, in epoch e. */
static float lr_at(const trainer *t, uint64_t done, int e)
{
    double lr = t->base_lr;
    if (t->sched == SCHED_STEP) {
        int period = t->epochs / 3 > 0 ? t->epochs / 3 : 1;
        lr *= pow(0.1, (double)((e - 1) / period));
    } else if (t->sched == SCHED_COSINE && t->total_steps > 0) {
        double x = (double)done / (double)t->total_steps;
        lr *= 0.5 * (1.0 + cos(3.14159265358979323846 * (x < 1 ? x : 1)));
    }
    return (float)lr;
}

static void shuffle(const trainer *t, int e, int *order)
{
    for (int i = 0; i < t->ntrain; i++) order[i] = i;
    if (!t->m->shuffle) return;
    for (int i = t->ntrain - 1; i > 0; i--) {
        double u = kn_rt_uniform(t->seed, SHUFFLE_STREAM + (uint64_t)e, (uint64_t)i);
        int j = (int)(u * (i + 1));
        if (j > i) j = i;
        int tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

/* Mean loss and accuracy of the infer phase over a split. */
/* A batch of model inputs (or cached prefix outputs) into the phase input. */
static int load_batch(trainer *t, kn_dataset *d, const kn_fcache *cache, const int *idx, int start, int n,
                      float *dst)
{
    if (cache && cache->data) {
        kn_fcache_gather(cache, idx, start, n, dst);
        return 0;
    }
    if (kn_data_features(d, kn_cli_norm(t->m), idx, start, n, dst)) return kn_cli_fail(&t->c, "%s", d->err);
    return 0;
}

static int evaluate(trainer *t, kn_dataset *d, const kn_fcache *cache, double *loss, double *acc,
                    long long *ncorrect)
{
    kn_rt_ctx *ctx = &t->ctx;
    const kn_cli_ios *io = &t->eio;
    double loss_sum = 0;
    long long correct = 0;
    ctx->training = 0;
    if (!cache) kn_data_prefetch(d, NULL, 0, t->batch);
    for (int start = 0; start < d->count; start += t->batch) {
        int n = d->count - start < t->batch ? d->count - start : t->batch;
        if (load_batch(t, d, cache, NULL, start, n, kn_rt_io_ptr(ctx, io->ph, io->input, n))) return KN_EXIT_FAIL;
        int next = start + t->batch;
        if (!cache && next < d->count)
            kn_data_prefetch(d, NULL, next, d->count - next < t->batch ? d->count - next : t->batch);
        if (io->label) kn_data_labels(d, NULL, start, n, kn_rt_io_ptr(ctx, io->ph, io->label, n));
        io->ph->run(ctx, n);
        const float *logits = kn_rt_io_ptr(ctx, io->ph, io->output, n);
        for (int i = 0; i < n; i++)
            correct += argmax(logits + (size_t)i * io->classes, io->classes) == d->labels[start + i];
        if (io->loss && io->label)
            loss_sum += (double)*(const float *)kn_rt_io_ptr(ctx, io->ph, io->loss, n) * n;
    }
    *loss = io->loss && io->label ? loss_sum / d->count : NAN;
    *acc = (double)correct / d->count;
    if (ncorrect) *ncorrect = correct;
    return 0;
}

/* ---- progress ---- */

typedef struct {
    int tty;
    double t0, last;
} progress;

static void fmt_eta(double s, char *buf, size_t cap)
{
    long v = s > 0 ? (long)(s + 0.5) : 0;
    if (v >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
    else snprintf(buf, cap, "%ld:%02ld", v / 60, v % 60);
}

static void progress_show(const trainer *t, progress *p, int e, int done_b, int nb, long long seen,
                          double loss_sum, long long correct, int final)
{
    double now = kn_rt_now_ms();
    if (t->quiet || (!final && now - p->last < (p->tty ? 200 : 1000))) return;
    if (final && !p->tty) return; /* piped: the summary line follows */
    p->last = now;
    double el = (now - p->t0) / 1000.0, rate = el > 0 ? seen / el : 0;
    char bar[21], sps[32], eta[32];
    int fill = nb ? (int)((long long)done_b * 20 / nb) : 20;
    for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '-';
    bar[20] = 0;
    fmt_eta(rate > 0 ? (t->ntrain - seen) / rate : 0, eta, sizeof eta);
    fprintf(stderr, "%sepoch %d/%d  [%s]  %d/%d  loss %.4f", p->tty ? "\r" : "", e, t->epochs, bar, done_b,
            nb, seen ? loss_sum / seen : 0.0);
    if (t->tout) fprintf(stderr, "  acc %.3f", seen ? (double)correct / seen : 0.0);
    fprintf(stderr, "  %s samples/s  ETA %s%s", kn_cli_thousands((unsigned long long)rate, sps, sizeof sps), eta,
            p->tty ? "\033[K" : "\n");
    fflush(stderr);
}

static void progress_clear(const trainer *t, const progress *p)
{
    if (!t->quiet && p->tty) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
}

/* ---- checkpoints ---- */

static int save_ckpt(trainer *t, const char *path, char *err, size_t errcap)
{
    /* On a GPU the weights are resident: the checkpoint holds the device's. */
    if (kn_rt_ctx_host_view(&t->ctx, KN_RT_BLOB_WEIGHTS))
        return kn_rt_errf(err, errcap, "%s: cannot copy the weights back from the GPU", path);
    char v[12][64];
    char *hist = kn_train_history_json(t->hist, t->n_hist);
    snprintf(v[0], 64, "%d", t->epoch_done);
    snprintf(v[1], 64, "%" PRIu64, t->steps_done);
    snprintf(v[2], 64, "%" PRIu64, t->seed);
    snprintf(v[3], 64, "%.9g", (double)t->ctx.lr);
    snprintf(v[4], 64, "%.9g", (double)t->base_lr);
    snprintf(v[5], 64, "%d", t->epochs);
    snprintf(v[6], 64, "%d", t->batch);
    snprintf(v[7], 64, "%d", t->accumulate);
    snprintf(v[8], 64, "%s", SCHED_NAMES[t->sched]);
    snprintf(v[9], 64, "%.17g", t->best_acc);
    snprintf(v[10], 64, "%d", t->best_epoch);
    const char *keys[] = {"epoch", "step", "seed", "lr", "base_lr", "epochs", "batch", "accumulate",
                          "schedule", "best_val_acc", "best_epoch", "history"};
    const char *vals[] = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], hist ? hist : "[]"};
    int rc = kn_rt_ckpt_save(t->m, t->ctx.weights, path, NULL, 0, keys, vals, 12, err, errcap);
    free(hist);
    return rc;
}

static int meta_int(const kn_st_file *f, const char *key, long long *out)
{
    const char *s = kn_st_meta(f, key);
    return s && kn_opt_int(s, out) == 0 ? 0 : -1;
}

/* STEM of CKPT: the path without a trailing ".safetensors". */
static void ckpt_stem(const char *path, char *stem, size_t cap)
{
    snprintf(stem, cap, "%s", path);
    size_t n = strlen(stem), k = strlen(".safetensors");
    if (n > k && strcmp(stem + n - k, ".safetensors") == 0) stem[n - k] = 0;
}

/* Reads a --resume checkpoint: training state into t, weights into the blob.
 * Explicit options (not -1 / NaN) win over the checkpoint's. */
static int resume(trainer *t, const char *path, int epochs, int batch, int accumulate, float lr,
                  const char *sched, int seed_given)
{
    char err[1024];
    kn_st_file f;
    if (kn_st_read(path, &f, err, sizeof err)) return kn_cli_fail(&t->c, "--resume %s", err);
    int rc = KN_EXIT_FAIL;
    const char *hash = kn_st_meta(&f, "model_hash"), *name = kn_st_meta(&f, "model");
    long long ep, st, v;
    if (t->m->hash && *t->m->hash && (!hash || strcmp(hash, t->m->hash) != 0)) {
        kn_cli_fail(&t->c, "--resume %s: checkpoint is for model %s (hash %s), this is %s (hash %s)", path,
                    name ? name : "?", hash ? hash : "none", t->m->name, t->m->hash);
        goto out;
    }
    if (meta_int(&f, "epoch", &ep) || meta_int(&f, "step", &st) || ep < 0 || st < 0) {
        kn_cli_fail(&t->c, "--resume %s: not a training checkpoint (no epoch/step metadata)", path);
        goto out;
    }
    const char *s = kn_st_meta(&f, "seed");
    if (s) {
        char *end;
        uint64_t cs = strtoull(s, &end, 10);
        if (!*s || *end) {
            kn_cli_fail(&t->c, "--resume %s: bad seed metadata '%s'", path, s);
            goto out;
        }
        if (seed_given && cs != t->seed) {
            kn_cli_fail(&t->c, "--resume %s: checkpoint was trained with seed %" PRIu64 ", not %" PRIu64
                        " (a different seed cannot continue it)", path, cs, t->seed);
            goto out;
        }
        t->seed = cs;
    }
    if (epochs < 0 && meta_int(&f, "epochs", &v) == 0 && v > 0 && v < 1000000) t->epochs = (int)v;
    if (batch < 0 && meta_int(&f, "batch", &v) == 0 && v > 0 && v < 1000000000) t->batch = (int)v;
    if (accumulate < 0 && meta_int(&f, "accumulate", &v) == 0 && v > 0 && v < 1000000) t->accumulate = (int)v;
    if (isnan(lr) && (s = kn_st_meta(&f, "base_lr"))) t->base_lr = strtof(s, NULL);
    if (!sched && (s = kn_st_meta(&f, "schedule")))
        for (int i = 0; i < 3; i++)
            if (!strcmp(s, SCHED_NAMES[i])) t->sched = i;
    if ((s = kn_st_meta(&f, "best_val_acc"))) t->best_acc = strtod(s, NULL);
    if (meta_int(&f, "best_epoch", &v) == 0) t->best_epoch = (int)v;
    if ((s = kn_st_meta(&f, "history"))) {
        t->n_hist = kn_train_history_parse(s, &t->hist);
        if (t->n_hist < 0) {
            t->n_hist = 0;
            kn_cli_fail(&t->c, "--resume %s: malformed history metadata", path);
            goto out;
        }
        /* Only the epochs the checkpoint has completed. */
        while (t->n_hist > 0 && t->hist[t->n_hist - 1].epoch > ep) t->n_hist--;
    }
    t->epoch_done = (int)ep;
    t->steps_done = (uint64_t)st;
    rc = 0; /* the weights are applied once the ctx exists */
out:
    kn_st_free(&f);
    return rc;
}

static int load_resume_weights(trainer *t, const char *path)
{
    char err[1024];
    kn_st_file f;
    if (kn_st_read(path, &f, err, sizeof err)) return kn_cli_fail(&t->c, "--resume %s", err);
    int rc = kn_rt_ckpt_apply_ex(t->m, t->ctx.weights, &f, path, KN_CKPT_REQUIRE_STATE, err, sizeof err);
    kn_st_free(&f);
    if (rc) return kn_cli_fail(&t->c, "--resume %s", err);
    /* Best weights so far: the checkpoint itself, or its .best sibling. */
    if (t->best_epoch > 0) {
        t->best = malloc(t->m->weights_numel * sizeof(float) + 1);
        if (t->best_epoch == t->epoch_done) {
            memcpy(t->best, t->ctx.weights, t->m->weights_numel * sizeof(float));
        } else {
            char stem[4096], bp[4200];
            ckpt_stem(path, stem, sizeof stem);
            snprintf(bp, sizeof bp, "%s.best.safetensors", stem);
            long long be;
            int ok = kn_st_read(bp, &f, err, sizeof err) == 0;
            if (ok) {
                ok = meta_int(&f, "epoch", &be) == 0 && be == t->best_epoch;
                if (ok) {
                    kn_rt_init_weights(t->m, t->best, t->seed);
                    ok = kn_rt_ckpt_apply(t->m, t->best, &f, bp, err, sizeof err) == 0;
                }
                kn_st_free(&f);
            }
            if (!ok) {
                free(t->best);
                t->best = NULL;
            }
        }
    }
    return 0;
}

static int write_logs(trainer *t, int improved)
{
    char err[1024], p[4200];
    if (save_ckpt(t, t->save, err, sizeof err)) return kn_cli_fail(&t->c, "--save %s", err);
    if (improved) {
        snprintf(p, sizeof p, "%s.best.safetensors", t->stem);
        if (save_ckpt(t, p, err, sizeof err)) return kn_cli_fail(&t->c, "--save %s", err);
    }
    snprintf(p, sizeof p, "%s.csv", t->stem);
    if (kn_train_write_csv(p, t->hist, t->n_hist, err, sizeof err)) return kn_cli_fail(&t->c, "%s", err);
    snprintf(p, sizeof p, "%s.svg", t->stem);
    if (kn_train_write_svg(p, t->m->name, t->hist, t->n_hist, err, sizeof err))
        return kn_cli_fail(&t->c, "%s", err);
    return 0;
}

/* --dump-grads: the gradient the coming update applies, and --retain values. */
static int dump_step(trainer *t)
{
    char err[1024];
    if (kn_rt_ctx_host_view(&t->ctx, KN_RT_BLOB_GRADS))
        return kn_cli_fail(&t->c, "--dump-grads: cannot copy the gradients back from the GPU");
    if (kn_rt_dump_grads(t->m, t->ctx.grads, t->ctx.grad_scale, t->dump, err, sizeof err) ||
        (t->retain.n && kn_rt_retain_write(&t->retain, t->dump, err, sizeof err)))
        return kn_cli_fail(&t->c, "--dump-grads %s", err);
    return 0;
}

static int check_train_ios(trainer *t)
{
    const kn_rt_phase *ph = t->tp;
    char s[128];
    int n_in = 0;
    for (int i = 0; i < ph->n_io; i++) n_in += ph->io_role[i] == KN_RT_IO_INPUT;
    t->tin = kn_rt_io_find(ph, KN_RT_IO_INPUT, NULL);
    t->tlab = kn_rt_io_find(ph, KN_RT_IO_LABEL, NULL);
    t->tout = kn_rt_io_find(ph, KN_RT_IO_OUTPUT, NULL);
    t->tloss = kn_rt_io_find(ph, KN_RT_IO_LOSS, NULL);
    if (n_in != 1)
        return kn_cli_fail(&t->c, "train phase of model %s has %d inputs; train feeds exactly one", t->m->name, n_in);
    if (!t->tlab || t->tlab->dtype != KN_RT_I64 || !t->tlab->batched || t->tlab->sample_numel != 1)
        return kn_cli_fail(&t->c, "train phase label %s%s%s, expected i64[N]", t->tlab ? "'" : "is missing",
                           t->tlab ? t->tlab->name : "", t->tlab ? "' has the wrong shape" : "");
    if (!t->tloss || t->tloss->dtype != KN_RT_F32 || t->tloss->batched || t->tloss->sample_numel != 1)
        return kn_cli_fail(&t->c, "train phase loss %s, expected a f32 scalar",
                           t->tloss ? kn_rt_io_shape(t->tloss, s, sizeof s) : "is missing");
    if (t->tout && (t->tout->dtype != KN_RT_F32 || !t->tout->batched ||
                    (int)t->tout->sample_numel != t->inf.classes))
        t->tout = NULL; /* no train accuracy */
    return 0;
}

/* ---- one epoch ---- */

typedef struct {
    double loss_sum;
    long long correct, seen;
} epoch_sums;

/* --steps N reached: says so (and as JSON) and ends the run. */
static void report_steps_stop(trainer *t, int e, int b, int nb, const epoch_sums *s)
{
    fprintf(t->c.out, "train: stopped after %" PRIu64 " steps (epoch %d, batch %d/%d)  loss %.4f\n", t->steps_done, e,
            b + 1, nb, s->loss_sum / s->seen);
    if (!t->json) return;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "event", "stop");
    cJSON_AddStringToObject(j, "reason", "steps");
    cJSON_AddNumberToObject(j, "epoch", e);
    cJSON_AddNumberToObject(j, "step", (double)t->steps_done);
    cJSON_AddNumberToObject(j, "train_loss", s->loss_sum / s->seen);
    kn_cli_json(j);
}

/* The optimizer step after `micro` micro-batches. */
static int optimizer_step(trainer *t, int micro)
{
    int rc;
    t->ctx.grad_scale = 1.0f / (float)micro;
    if (t->dump && (rc = dump_step(t))) return rc;
    t->ctx.step = t->steps_done + 1;
    t->m->update->run(&t->ctx, 0);
    t->steps_done++;
    return 0;
}

/* Forward + backward of batch b; adds its loss and hits to the sums. */
static int train_batch(trainer *t, int e, int b, int nb, int micro, const kn_fcache *cache, epoch_sums *s)
{
    const kn_rt_phase *tp = t->tp;
    int start = b * t->batch, n = t->ntrain - start < t->batch ? t->ntrain - start : t->batch;
    const int *idx = t->order + start;
    if (load_batch(t, &t->dtrain, cache, idx, 0, n, kn_rt_io_ptr(&t->ctx, tp, t->tin, n))) return KN_EXIT_FAIL;
    /* The next batch decodes (image folders) while this one computes. */
    if (!cache && b + 1 < nb) {
        int s2 = start + t->batch;
        kn_data_prefetch(&t->dtrain, t->order + s2, 0, t->ntrain - s2 < t->batch ? t->ntrain - s2 : t->batch);
    }
    kn_data_labels(&t->dtrain, idx, 0, n, kn_rt_io_ptr(&t->ctx, tp, t->tlab, n));
    t->ctx.step = t->steps_done;
    t->ctx.sample0 = (uint32_t)(micro * t->batch);
    t->ctx.training = 1;
    t->ctx.lr = lr_at(t, t->steps_done, e);
    tp->run(&t->ctx, n);
    float loss = *(const float *)kn_rt_io_ptr(&t->ctx, tp, t->tloss, n);
    if (!isfinite(loss))
        return kn_cli_fail(&t->c, "loss is %s at epoch %d step %" PRIu64 " (batch %lld)",
                           isnan(loss) ? "nan" : loss > 0 ? "inf" : "-inf", e, t->steps_done + 1,
                           (long long)(e - 1) * nb + b);
    s->loss_sum += (double)loss * n;
    s->seen += n;
    if (t->tout) {
        const float *lg = kn_rt_io_ptr(&t->ctx, tp, t->tout, n);
        for (int i = 0; i < n; i++)
            s->correct += argmax(lg + (size_t)i * t->inf.classes, t->inf.classes) == t->dtrain.labels[idx[i]];
    }
    return 0;
}

/* The batches of epoch e; *stopped when --steps ran out. */
static int run_epoch(trainer *t, int e, progress *pr, epoch_sums *s, int *stopped)
{
    const kn_fcache *cache = t->use_cache ? &t->cache[0] : NULL;
    int nb = (t->ntrain + t->batch - 1) / t->batch, micro = 0, rc;
    memset(s, 0, sizeof *s);
    pr->t0 = pr->last = kn_rt_now_ms(); /* first update after one interval: short epochs stay quiet */
    shuffle(t, e, t->order);
    kn_data_set_epoch(&t->dtrain, e);
    if (!cache) kn_data_prefetch(&t->dtrain, t->order, 0, t->ntrain < t->batch ? t->ntrain : t->batch);
    for (int b = 0; b < nb; b++) {
        if ((rc = train_batch(t, e, b, nb, micro, cache, s))) {
            progress_clear(t, pr);
            return rc;
        }
        if (++micro == t->accumulate || b == nb - 1) {
            rc = optimizer_step(t, micro);
            micro = 0;
            if (rc) return rc;
            if (t->steps_max > 0 && t->steps_done >= (uint64_t)t->steps_max) {
                progress_clear(t, pr);
                report_steps_stop(t, e, b, nb, s);
                *stopped = 1;
                return 0;
            }
        }
        progress_show(t, pr, e, b + 1, nb, s->seen, s->loss_sum, s->correct, b == nb - 1);
    }
    progress_clear(t, pr);
    return 0;
}

static void report_epoch_json(const trainer *t, const kn_train_row *row)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "event", "epoch");
    cJSON_AddNumberToObject(j, "epoch", row->epoch);
    cJSON_AddNumberToObject(j, "train_loss", row->train_loss);
    if (t->tout) cJSON_AddNumberToObject(j, "train_acc", row->train_acc);
    if (!isnan(row->val_loss)) cJSON_AddNumberToObject(j, "val_loss", row->val_loss);
    cJSON_AddNumberToObject(j, "val_acc", row->val_acc);
    cJSON_AddNumberToObject(j, "seconds", round(row->seconds * 1000) / 1000);
    char lrs[32];
    snprintf(lrs, sizeof lrs, "%.7g", row->lr); /* the float's digits, not its binary tail */
    cJSON_AddNumberToObject(j, "lr", strtod(lrs, NULL));
    cJSON_AddNumberToObject(j, "step", (double)t->steps_done);
    kn_cli_json(j);
}

/* Validation, history, best weights, the epoch line, checkpoint and logs,
 * patience; *stop when patience runs out. */
static int end_epoch(trainer *t, int e, const epoch_sums *s, double t0, int *stop)
{
    int rc;
    double vloss, vacc;
    t->ctx.training = 0;
    if ((rc = evaluate(t, &t->dval, t->use_cache ? &t->cache[1] : NULL, &vloss, &vacc, NULL))) return rc;
    t->epoch_done = e;
    kn_train_row row = {e, s->loss_sum / s->seen, t->tout ? (double)s->correct / s->seen : NAN, vloss, vacc,
                        (kn_rt_now_ms() - t0 + t->cache_ms) / 1000.0, t->ctx.lr};
    t->cache_ms = 0; /* the first epoch paid for the cache */
    kn_train_row *h = realloc(t->hist, sizeof *h * (size_t)(t->n_hist + 1));
    if (!h) return kn_cli_fail(&t->c, "out of memory");
    t->hist = h;
    t->hist[t->n_hist++] = row;
    int improved = vacc > t->best_acc;
    if (improved && kn_rt_ctx_host_view(&t->ctx, KN_RT_BLOB_WEIGHTS))
        return kn_cli_fail(&t->c, "cannot copy the weights back from the GPU");
    if (improved) {
        size_t bytes = t->m->weights_numel * sizeof(float);
        t->best_acc = vacc;
        t->best_epoch = e;
        if (!t->best) t->best = malloc(bytes + 1);
        if (t->best) memcpy(t->best, t->ctx.weights, bytes);
    }
    FILE *o = t->c.out;
    fprintf(o, "epoch %d/%d  train loss %.4f", e, t->epochs, row.train_loss);
    if (t->tout) fprintf(o, " acc %.4f", row.train_acc);
    fprintf(o, "  val loss %.4f acc %.4f%s  lr %.3g  %.1f s\n", vloss, vacc, improved ? " *" : "", (double)row.lr,
            row.seconds);
    fflush(o);
    if (t->json) report_epoch_json(t, &row);
    if (t->save && (rc = write_logs(t, improved))) return rc;
    if (t->patience > 0 && e - t->best_epoch >= t->patience && e < t->epochs) {
        fprintf(o, "train: early stop at epoch %d: val accuracy has not improved for %d epochs (best %.4f at epoch "
                   "%d)\n", e, t->patience, t->best_acc, t->best_epoch);
        *stop = 1;
    }
    return 0;
}

/* Test accuracy with the best-val weights when known, else the final ones. */
static int report_test(trainer *t, kn_train_result *res, double start_ms)
{
    int rc, use_best = t->best != NULL;
    if (use_best) {
        memcpy(t->ctx.weights, t->best, t->m->weights_numel * sizeof(float));
        kn_rt_ctx_host_wrote(&t->ctx, KN_RT_BLOB_WEIGHTS);
    }
    double tloss, tacc;
    long long tcorrect;
    if ((rc = evaluate(t, &t->dtest, t->use_cache ? &t->cache[2] : NULL, &tloss, &tacc, &tcorrect))) return rc;
    FILE *o = t->c.out;
    if (t->dtrain.imgs) {
        int a = kn_imgset_skipped(t->dtrain.imgs), b = kn_imgset_skipped(t->dval.imgs),
            k = kn_imgset_skipped(t->dtest.imgs);
        if (a + b + k) fprintf(o, "train: %d unreadable images skipped (train %d, val %d, test %d)\n", a + b + k, a, b, k);
    }
    int epoch = use_best ? t->best_epoch : t->epoch_done;
    const char *which = use_best ? "best" : "final";
    if (!isnan(tloss))
        fprintf(o, "test: loss %.4f  accuracy %.4f  (%d samples, %lld correct; %s weights, epoch %d)\n", tloss, tacc,
                t->dtest.count, tcorrect, which, epoch);
    else
        fprintf(o, "test: accuracy %.4f  (%d samples, %lld correct; %s weights, epoch %d)\n", tacc, t->dtest.count,
                tcorrect, which, epoch);
    if (res) {
        res->best_val_acc = t->best_acc;
        res->best_epoch = t->best_epoch;
        res->epochs_run = t->epoch_done;
        res->test_acc = tacc;
        res->seconds = (kn_rt_now_ms() - start_ms) / 1000.0;
    }
    if (t->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "event", "eval");
        cJSON_AddStringToObject(j, "split", "test");
        if (!isnan(tloss)) cJSON_AddNumberToObject(j, "loss", tloss);
        cJSON_AddNumberToObject(j, "accuracy", tacc);
        cJSON_AddNumberToObject(j, "correct", (double)tcorrect);
        cJSON_AddNumberToObject(j, "n", t->dtest.count);
        cJSON_AddStringToObject(j, "weights", which);
        cJSON_AddNumberToObject(j, "epoch", epoch);
        kn_cli_json(j);
    }
    return 0;
}

/* Caches larger than this (MiB, KILN_FCACHE_MB) are not worth the memory. */
#define FCACHE_DEFAULT_MB 4096

/* Train the whole model, or only its head on cached frozen-prefix outputs
 * when the model has a frozen prefix and nothing makes it vary (--augment),
 * nothing needs the whole model (--dump-grads), the run covers whole epochs
 * (not --steps) and the cache fits. */
static int choose_phases(trainer *t, int allowed)
{
    const kn_rt_model *m = t->m;
    const char *env = getenv("KILN_FCACHE_MB");
    double limit_mb = env && *env ? strtod(env, NULL) : FCACHE_DEFAULT_MB;
    int samples = t->ntrain + t->dval.count + t->dtest.count;
    double mb = (double)kn_fcache_bytes(m, samples) / (1024.0 * 1024.0);
    t->use_cache = allowed && m->features && m->head_train && m->head_infer && t->epoch_done < t->epochs;
    if (t->use_cache && mb > limit_mb) {
        fprintf(t->c.out, "train: not caching frozen features: %.0f MiB > KILN_FCACHE_MB=%.0f\n", mb, limit_mb);
        t->use_cache = 0;
    }
    t->tp = t->use_cache ? m->head_train : m->train;
    int rc = check_train_ios(t);
    if (!rc) rc = t->use_cache ? kn_cli_phase_ios(&t->c, m->head_infer, &t->eio) : (t->eio = t->inf, 0);
    return rc;
}

/* Frozen parameters drawn from the seed (not loaded data) make the
 * prefix's outputs depend on it. */
static int frozen_depends_on_seed(const kn_rt_model *m)
{
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].role == KN_RT_FROZEN && m->params[i].init != KN_RT_INIT_DATA) return 1;
    return 0;
}

/* A sweep's earlier run cached the same samples with the same frozen
 * weights: borrow its caches. */
static int borrow_pool(trainer *t, const int *count)
{
    kn_fcache_pool *p = t->pool;
    if (!p || !p->valid || (p->seed != t->seed && frozen_depends_on_seed(t->m))) return 0;
    for (int i = 0; i < 3; i++)
        if (p->counts[i] != count[i]) return 0;
    for (int i = 0; i < 3; i++) t->cache[i] = p->cache[i];
    fprintf(t->c.out, "train: frozen prefix outputs reused from the sweep's first run\n");
    return 1;
}

static void give_to_pool(trainer *t, const int *count)
{
    kn_fcache_pool *p = t->pool;
    if (!p) return;
    kn_fcache_pool_free(p);
    p->valid = 1;
    p->seed = t->seed;
    for (int i = 0; i < 3; i++) {
        p->counts[i] = count[i];
        p->cache[i] = t->cache[i];
    }
}

static int fill_caches(trainer *t)
{
    char err[1024];
    double t0 = kn_rt_now_ms();
    kn_dataset *d[3] = {&t->dtrain, &t->dval, &t->dtest};
    int count[3] = {t->ntrain, t->dval.count, t->dtest.count};
    if (borrow_pool(t, count)) return 0;
    for (int i = 0; i < 3; i++)
        if (kn_fcache_fill(&t->cache[i], t->m, &t->ctx, d[i], count[i], t->batch, err, sizeof err))
            return kn_cli_fail(&t->c, "caching frozen features: %s", err);
    t->cache_ms = kn_rt_now_ms() - t0;
    give_to_pool(t, count);
    size_t bytes = kn_fcache_bytes(t->m, count[0] + count[1] + count[2]);
    fprintf(t->c.out,
            "train: frozen prefix computed once: '%s' (%zu floats per sample) for %d train + %d val + %d test "
            "samples in %.1f s (%.0f MiB); epochs train the head only (--no-cache: the whole model)\n",
            t->cache[0].out->name, t->cache[0].numel, count[0], count[1], count[2], t->cache_ms / 1000.0,
            (double)bytes / (1024.0 * 1024.0));
    return 0;
}

int kn_cmd_train(const kn_rt_model *m, int argc, char **argv) { return kn_cmd_train_ex(m, argc, argv, NULL, NULL); }

int kn_cmd_train_ex(const kn_rt_model *m, int argc, char **argv, kn_fcache_pool *pool, kn_train_result *res)
{
    double start_ms = kn_rt_now_ms();
    int json = 0, quiet = 0, epochs = -1, batch = -1, accumulate = -1, patience = 0, steps = 0, limit = 0;
    int skip_bad = 0, augment = 0, no_cache = 0;
    float lr = NAN;
    uint64_t seed = UINT64_MAX;
    const char *data = NULL, *save = NULL, *resume_p = NULL, *weights = NULL, *device = NULL, *sched = NULL;
    const char *dump = NULL, *retain = NULL;
    kn_opt opts[] = {
        {"--data", KN_OPT_STR, &data, 0},         {"--epochs", KN_OPT_INT, &epochs, 1},
        {"--batch", KN_OPT_INT, &batch, 1},       {"--lr", KN_OPT_FLOAT, &lr, 0},
        {"--seed", KN_OPT_U64, &seed, 0},         {"--device", KN_OPT_STR, &device, 0},
        {"--save", KN_OPT_STR, &save, 0},         {"--resume", KN_OPT_STR, &resume_p, 0},
        {"--weights", KN_OPT_STR, &weights, 0},   {"--json", KN_OPT_FLAG, &json, 0},
        {"--accumulate", KN_OPT_INT, &accumulate, 1}, {"--patience", KN_OPT_INT, &patience, 1},
        {"--steps", KN_OPT_INT, &steps, 1},       {"--schedule", KN_OPT_STR, &sched, 0},
        {"--quiet", KN_OPT_FLAG, &quiet, 0},      {"--limit", KN_OPT_INT, &limit, 1},
        {"--dump-grads", KN_OPT_STR, &dump, 0},   {"--retain", KN_OPT_STR, &retain, 0},
        {"--skip-bad", KN_OPT_FLAG, &skip_bad, 0}, {"--augment", KN_OPT_FLAG, &augment, 0},
        {"--no-cache", KN_OPT_FLAG, &no_cache, 0},
    };
    int rc = kn_opt_parse("train", argc, argv, opts, sizeof opts / sizeof opts[0], NULL);
    if (rc == KN_OPT_HELP) return printf("%s", HELP), KN_EXIT_OK;
    if (rc) return KN_EXIT_USAGE;

    trainer *t = calloc(1, sizeof *t);
    if (!t) return KN_EXIT_FAIL;
    t->m = m;
    t->pool = pool;
    kn_cli_begin(&t->c, m, "train", json);
    kn_cli *c = &t->c;
    t->json = json;
    t->quiet = quiet;
    t->patience = patience;
    t->steps_max = steps;
    t->save = save;
    t->dump = dump;
    t->best_acc = -1;
    t->sched = SCHED_NONE;
    int have_ctx = 0, have_data = 0;

    if ((rc = kn_cli_device(c, device))) goto done;
    if (sched) {
        t->sched = -1;
        for (int i = 0; i < 3; i++)
            if (!strcmp(sched, SCHED_NAMES[i])) t->sched = i;
        if (t->sched < 0) {
            rc = kn_cli_usage(c, "--schedule '%s': expected none, step or cosine", sched);
            goto done;
        }
    }
    if (resume_p && weights) {
        rc = kn_cli_usage(c, "--resume and --weights are exclusive (a resumed run takes its weights from CKPT)");
        goto done;
    }
    if (isfinite(lr) == 0 && !isnan(lr)) {
        rc = kn_cli_usage(c, "--lr must be finite");
        goto done;
    }
    if (retain && !dump) {
        rc = kn_cli_usage(c, "--retain NAME needs --dump-grads DIR (where NAME.npy is written)");
        goto done;
    }
    if (!m->train || !m->update) {
        rc = kn_cli_fail(c, "this model was compiled without a train phase");
        goto done;
    }
    if ((rc = kn_cli_class_ios(c, &t->inf))) goto done;

    t->epochs = m->epochs > 0 ? m->epochs : 1;
    t->batch = m->batch > 0 ? m->batch : 64;
    t->accumulate = 1;
    t->base_lr = m->lr > 0 ? m->lr : 0.01f;
    t->seed = seed != UINT64_MAX ? seed : (uint64_t)m->seed;
    if (resume_p && (rc = resume(t, resume_p, epochs, batch, accumulate, lr, sched, seed != UINT64_MAX))) goto done;
    if (epochs > 0) t->epochs = epochs;
    if (batch > 0) t->batch = batch;
    if (accumulate > 0) t->accumulate = accumulate;
    if (!isnan(lr)) t->base_lr = lr;

    /* Data: train for steps, val per epoch, test at the end. */
    c->data.skip_bad = skip_bad;
    c->data.augment = augment;
    c->data.seed = t->seed;
    if ((rc = kn_cli_dataset(c, &t->inf, data, "train", &t->dtrain))) goto done;
    have_data = 1;
    if ((rc = kn_cli_dataset(c, &t->inf, data, "val", &t->dval)) ||
        (rc = kn_cli_dataset(c, &t->inf, data, "test", &t->dtest))) {
        kn_data_close(&t->dval);
        goto done;
    }
    have_data = 3;
    char err[1024];
    if (kn_data_check_input(&t->dtrain, t->inf.input, err, sizeof err)) {
        rc = kn_cli_fail(c, "train phase %s", err);
        goto done;
    }
    t->ntrain = limit > 0 && limit < t->dtrain.count ? limit : t->dtrain.count;
    if ((rc = choose_phases(t, !no_cache && !augment && !dump && steps == 0))) goto done;

    if (kn_rt_ctx_open(&t->ctx, m, t->batch, err, sizeof err)) {
        rc = kn_cli_fail(c, "%s", err);
        goto done;
    }
    have_ctx = 1;
    size_t gbytes = ((m->weights_numel ? m->weights_numel : 1) * sizeof(float) + 63) & ~(size_t)63;
    t->ctx.grads = aligned_alloc(64, gbytes);
    t->order = malloc(sizeof(int) * (size_t)t->ntrain);
    if (!t->ctx.grads || !t->order) {
        rc = kn_cli_fail(c, "out of memory");
        goto done;
    }
    memset(t->ctx.grads, 0, gbytes);
    if (retain) {
        if (kn_rt_retain_open(&t->retain, m->train, retain, t->batch, err, sizeof err)) {
            rc = kn_cli_usage(c, "%s", err);
            goto done;
        }
        kn_rt_retain_attach(&t->retain, &t->ctx);
    }
    t->ctx.seed = t->seed;
    kn_rt_init_weights(m, t->ctx.weights, t->seed);
    if (weights) {
        if (kn_rt_ckpt_load(m, t->ctx.weights, weights, err, sizeof err)) {
            rc = kn_cli_fail(c, "--weights %s", err);
            goto done;
        }
        /* A new run from these weights: fresh optimizer state (step 0), even
         * when the file has some; --resume is the way to continue one. */
        kn_rt_ckpt_init_state(m, t->ctx.weights, t->seed);
    }
    if (resume_p && (rc = load_resume_weights(t, resume_p))) goto done;
    /* Weights (init, --weights, --resume) and zeroed gradients: a GPU
     * uploads them before the first phase and keeps them from then on. */
    kn_rt_ctx_host_wrote(&t->ctx, KN_RT_BLOBS);
    if (save) ckpt_stem(save, t->stem, sizeof t->stem);
    {
        long long per = updates_per_epoch(t), total = per * (long long)t->epochs;
        t->total_steps = steps > 0 && steps < total ? steps : total;
    }
    if (t->epoch_done >= t->epochs)
        fprintf(c->out, "train: checkpoint already at epoch %d of %d; nothing to train\n", t->epoch_done, t->epochs);

    if (t->use_cache && t->epoch_done < t->epochs && (rc = fill_caches(t))) goto done;
    progress pr = {isatty(2), 0, 0};
    int stopped = 0;
    for (int e = t->epoch_done + 1; e <= t->epochs && !stopped; e++) {
        epoch_sums sums;
        double t0 = kn_rt_now_ms();
        if ((rc = run_epoch(t, e, &pr, &sums, &stopped))) goto done;
        if (!stopped && (rc = end_epoch(t, e, &sums, t0, &stopped))) goto done;
    }
    if (t->steps_max > 0 && t->steps_done >= (uint64_t)t->steps_max) {
        rc = 0; /* --steps: no test evaluation */
        goto done;
    }
    if ((rc = report_test(t, res, start_ms))) goto done;
    rc = 0;
done:
    if (!t->pool)
        for (int i = 0; i < 3; i++) kn_fcache_free(&t->cache[i]);
    kn_rt_retain_close(&t->retain);
    if (have_ctx) kn_rt_ctx_close(&t->ctx);
    if (have_data) kn_data_close(&t->dtrain);
    if (have_data == 3) {
        kn_data_close(&t->dval);
        kn_data_close(&t->dtest);
    }
    free(t->order);
    free(t->best);
    free(t->hist);
    free(t);
    return rc;
}

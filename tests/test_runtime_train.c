/* test_runtime_train.c — `EXE train` driven in-process through kn_rt_main()
 * with a hand-written 784->10 softmax regression: an infer phase, a train
 * phase (forward, mean cross-entropy, backward adding dW/db into
 * ctx->grads) and an Adam update phase whose moments are KN_RT_STATE params
 * in the weight blob — the shape of what codegen emits. */
#include "kn_rt.h"
#include "kn_rt_ckpt.h"
#include "kn_rt_init.h"
#include "kn_safetensors.h"
#include "testlib.h"

#include <cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define IN 784
#define CL 10
#define NW (CL * IN)
/* weight blob: W, b, then Adam moments m/v of W and b */
#define OW 0
#define OB NW
#define OMW (NW + CL)
#define OVW (OMW + NW)
#define OMB (OVW + NW)
#define OVB (OMB + CL)
#define NUMEL (OVB + CL)

/* infer layout: x, y, logits per sample; loss fixed */
#define I_Y (IN * 4)
#define I_Z (I_Y + 8)
#define I_PER (I_Z + CL * 4)
/* train layout differs on purpose: y, x, logits, dlogits */
#define T_X 8
#define T_Z (T_X + IN * 4)
#define T_DZ (T_Z + CL * 4)
#define T_PER (T_DZ + CL * 4)

static int protocol_errors;
static uint64_t last_train_step;

static double forward(const float *x, const int64_t *y, float *z, const float *w, int n)
{
    for (int i = 0; i < n; i++) memcpy(z + i * CL, w + OB, sizeof(float) * CL);
    kn_rt_sgemm(0, 1, n, CL, IN, 1, x, IN, w + OW, IN, 1, z, CL);
    double s = 0;
    for (int i = 0; i < n; i++) {
        double mx = z[i * CL];
        for (int j = 1; j < CL; j++) mx = fmax(mx, z[i * CL + j]);
        double se = 0;
        for (int j = 0; j < CL; j++) se += exp(z[i * CL + j] - mx);
        s += mx + log(se) - z[i * CL + y[i]];
    }
    return s / n;
}

static void infer_run(kn_rt_ctx *ctx, int n)
{
    if (ctx->training) protocol_errors++;
    float *loss = (float *)(ctx->arena + (size_t)n * I_PER);
    *loss = (float)forward((const float *)ctx->arena, (const int64_t *)(ctx->arena + (size_t)n * I_Y),
                           (float *)(ctx->arena + (size_t)n * I_Z), ctx->weights, n);
}

/* Scales the bias gradient: 1 is the true gradient; gradcheck must catch
 * anything else. */
static float bias_grad_bug = 1.0f;

static void train_run(kn_rt_ctx *ctx, int n)
{
    if (!ctx->training || !ctx->grads) protocol_errors++;
    last_train_step = ctx->step;
    const float *x = (const float *)(ctx->arena + (size_t)n * T_X);
    const int64_t *y = (const int64_t *)ctx->arena;
    float *z = (float *)(ctx->arena + (size_t)n * T_Z), *dz = (float *)(ctx->arena + (size_t)n * T_DZ);
    float *loss = (float *)(ctx->arena + (size_t)n * T_PER);
    *loss = (float)forward(x, y, z, ctx->weights, n);
    for (int i = 0; i < n; i++) {
        float mx = z[i * CL];
        for (int j = 1; j < CL; j++) mx = fmaxf(mx, z[i * CL + j]);
        float se = 0;
        for (int j = 0; j < CL; j++) se += expf(z[i * CL + j] - mx);
        for (int j = 0; j < CL; j++)
            dz[i * CL + j] = (expf(z[i * CL + j] - mx) / se - (j == y[i])) / (float)n;
    }
    kn_rt_sgemm(1, 0, CL, IN, n, 1, dz, CL, x, IN, 1, ctx->grads + OW, IN);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < CL; j++) ctx->grads[OB + j] += bias_grad_bug * dz[i * CL + j];
}

static void adam(float *w, float *g, float *m, float *v, int n, const kn_rt_ctx *ctx)
{
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    float c1 = 1.0f - powf(b1, (float)ctx->step), c2 = 1.0f - powf(b2, (float)ctx->step);
    for (int i = 0; i < n; i++) {
        float gi = g[i] * ctx->grad_scale;
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        w[i] -= ctx->lr * (m[i] / c1) / (sqrtf(v[i] / c2) + eps);
        g[i] = 0;
    }
}

static void update_run(kn_rt_ctx *ctx, int n)
{
    (void)n;
    if (ctx->step != last_train_step + 1 || ctx->step == 0) protocol_errors++;
    float *w = ctx->weights;
    adam(w + OW, ctx->grads + OW, w + OMW, w + OVW, NW, ctx);
    adam(w + OB, ctx->grads + OB, w + OMB, w + OVB, CL, ctx);
}

static const kn_rt_param PARAMS[] = {
    {"fc.weight", 2, {CL, IN}, NW, OW, KN_RT_TRAINABLE, KN_RT_INIT_KAIMING_UNIFORM, IN, CL, NULL},
    {"fc.bias", 1, {CL}, CL, OB, KN_RT_TRAINABLE, KN_RT_INIT_BIAS_UNIFORM, IN, CL, NULL},
    {"optim.fc.weight.m", 2, {CL, IN}, NW, OMW, KN_RT_STATE, KN_RT_INIT_ZEROS, 0, 0, NULL},
    {"optim.fc.weight.v", 2, {CL, IN}, NW, OVW, KN_RT_STATE, KN_RT_INIT_ZEROS, 0, 0, NULL},
    {"optim.fc.bias.m", 1, {CL}, CL, OMB, KN_RT_STATE, KN_RT_INIT_ZEROS, 0, 0, NULL},
    {"optim.fc.bias.v", 1, {CL}, CL, OVB, KN_RT_STATE, KN_RT_INIT_ZEROS, 0, 0, NULL},
};
static const kn_rt_io IIO[] = {
    {"x", KN_RT_F32, 2, {-1, IN}, 1, IN, 0},
    {"y", KN_RT_I64, 1, {-1}, 1, 1, I_Y},
    {"logits", KN_RT_F32, 2, {-1, CL}, 1, CL, I_Z},
    {"loss", KN_RT_F32, 0, {0}, 0, 1, 0},
};
static const kn_rt_io TIO[] = {
    {"x", KN_RT_F32, 2, {-1, IN}, 1, IN, T_X},
    {"y", KN_RT_I64, 1, {-1}, 1, 1, 0},
    {"logits", KN_RT_F32, 2, {-1, CL}, 1, CL, T_Z},
    {"loss", KN_RT_F32, 0, {0}, 0, 1, 0},
};
static const kn_rt_io_role ROLES[] = {KN_RT_IO_INPUT, KN_RT_IO_LABEL, KN_RT_IO_OUTPUT, KN_RT_IO_LOSS};
static const kn_rt_phase INFER = {"infer", infer_run, I_PER, 4, 4, IIO, ROLES, 0, NULL, NULL, 0, NULL};
static const kn_rt_phase TRAIN = {"train", train_run, T_PER, 4, 4, TIO, ROLES, 0, NULL, NULL, 0, NULL};
static const kn_rt_phase UPDATE = {"update", update_run, 0, 0, 0, NULL, NULL, 0, NULL, NULL, 0, NULL};
static const float NORM[2] = {0.2860f, 0.3530f};
static kn_rt_model MODEL = {
    .name = "softreg", .hash = "c0ffee", .target = "cpu",
    .summary = "  fc  linear  f32[N,10]  7,850\n",
    .n_params = 6, .params = PARAMS, .weights_numel = NUMEL,
    .infer = &INFER, .train = &TRAIN, .update = &UPDATE,
    .data_kind = "fashion_mnist", .n_normalize = 1, .normalize = NORM,
    .batch = 64, .epochs = 2, .shuffle = 1, .seed = 0, .optimizer = "adam", .lr = 1e-3f,
};

/* ---- running kn_rt_main with captured stdout / stderr ---- */
static char *out_txt, *err_txt;

#define cli(...) kt_rt_mainf(&MODEL, "softreg", &out_txt, &err_txt, __VA_ARGS__)

/* The JSON lines of out_txt with "event" == ev, in order (max 16). */
static int json_events(const char *ev, cJSON **got, int cap)
{
    int n = 0;
    char *copy = strdup(out_txt);
    for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(l);
        CU_ASSERT(j != NULL);
        if (!j) {
            fprintf(stderr, "\nnot JSON: %s\n", l);
            continue;
        }
        cJSON *e = cJSON_GetObjectItem(j, "event");
        if (cJSON_IsString(e) && !strcmp(e->valuestring, ev) && n < cap) got[n++] = j;
        else cJSON_Delete(j);
    }
    free(copy);
    return n;
}

static void free_events(cJSON **j, int n)
{
    for (int i = 0; i < n; i++) cJSON_Delete(j[i]);
}

static double jnum(cJSON *j, const char *k)
{
    cJSON *v = cJSON_GetObjectItem(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---- tests ---- */

static void test_train_learns(void)
{
    const char *dir = kt_tmp_dir("train");
    char ck[4200], p[4300];
    snprintf(ck, sizeof ck, "%s/run.safetensors", dir);
    protocol_errors = 0;
    CU_ASSERT_EQUAL_FATAL(cli("train --epochs 2 --limit 6000 --batch 64 --json --quiet --save %s", ck), 0);
    CU_ASSERT_EQUAL(protocol_errors, 0);
    cJSON *ep[16], *ev[16];
    int ne = json_events("epoch", ep, 16), nv = json_events("eval", ev, 16);
    CU_ASSERT_EQUAL_FATAL(ne, 2);
    CU_ASSERT_EQUAL_FATAL(nv, 1);
    CU_ASSERT_EQUAL(jnum(ep[0], "epoch"), 1);
    CU_ASSERT_EQUAL(jnum(ep[1], "epoch"), 2);
    double l1 = jnum(ep[0], "train_loss"), l2 = jnum(ep[1], "train_loss");
    CU_ASSERT(isfinite(l1) && l2 < l1);
    CU_ASSERT(jnum(ep[1], "val_loss") < jnum(ep[0], "val_loss"));
    CU_ASSERT(jnum(ep[1], "val_acc") > 0.7);
    CU_ASSERT(jnum(ep[1], "train_acc") > 0.6 && jnum(ep[1], "train_acc") <= 1);
    CU_ASSERT(jnum(ep[0], "seconds") >= 0);
    CU_ASSERT(fabs(jnum(ep[0], "lr") - 1e-3) < 1e-9);
    CU_ASSERT_EQUAL(jnum(ep[1], "step"), 2 * 94); /* ceil(6000/64) per epoch */
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(ev[0], "split")->valuestring, "test");
    CU_ASSERT_EQUAL(jnum(ev[0], "n"), 10000);
    CU_ASSERT(jnum(ev[0], "accuracy") > 0.7);
    free_events(ep, ne);
    free_events(ev, nv);
    KT_ASSERT_CONTAINS(err_txt, "epoch 2/2  train loss ");
    KT_ASSERT_CONTAINS(err_txt, "test: loss ");

    /* checkpoint: params, STATE, metadata */
    kn_st_file f;
    char err[512];
    CU_ASSERT_FATAL(kn_st_read(ck, &f, err, sizeof err) == 0);
    CU_ASSERT_STRING_EQUAL(kn_st_meta(&f, "epoch"), "2");
    CU_ASSERT_STRING_EQUAL(kn_st_meta(&f, "step"), "188");
    CU_ASSERT_STRING_EQUAL(kn_st_meta(&f, "seed"), "0");
    CU_ASSERT_STRING_EQUAL(kn_st_meta(&f, "model_hash"), "c0ffee");
    CU_ASSERT(kn_st_meta(&f, "lr") != NULL);
    const kn_st_tensor *mv = kn_st_find(&f, "optim.fc.weight.v");
    CU_ASSERT_FATAL(mv != NULL);
    double vs = 0;
    for (size_t i = 0; i < mv->numel; i++) vs += ((float *)mv->data)[i];
    CU_ASSERT(vs > 0);
    kn_st_free(&f);
    snprintf(p, sizeof p, "%s/run.best.safetensors", dir);
    CU_ASSERT(exists(p));

    /* CSV: header + one line per epoch; SVG: two curves per panel. */
    snprintf(p, sizeof p, "%s/run.csv", dir);
    char *csv = kt_read_file(p, NULL);
    CU_ASSERT_FATAL(csv != NULL);
    CU_ASSERT_EQUAL(count_lines(csv), 3);
    CU_ASSERT(strncmp(csv, "epoch,train_loss,train_acc,val_loss,val_acc,seconds,lr\n1,", 57) == 0);
    KT_ASSERT_CONTAINS(csv, "\n2,");
    free(csv);
    snprintf(p, sizeof p, "%s/run.svg", dir);
    char *svg = kt_read_file(p, NULL);
    CU_ASSERT_FATAL(svg != NULL);
    CU_ASSERT(strncmp(svg, "<svg", 4) == 0);
    KT_ASSERT_CONTAINS(svg, "<polyline");
    KT_ASSERT_CONTAINS(svg, "</svg>\n");
    int polylines = 0;
    for (const char *s = svg; (s = strstr(s, "<polyline")); s++) polylines++;
    CU_ASSERT_EQUAL(polylines, 4);
    free(svg);

    /* The trained weights load for eval, with or without optimizer state. */
    CU_ASSERT_EQUAL(cli("eval --weights %s --json", ck), 0);
    KT_ASSERT_CONTAINS(out_txt, "\"event\":\"eval\"");
}

/* Whether two checkpoints hold byte-identical tensors and the same step. */
static void test_resume_bit_identical(void)
{
    const char *dir = kt_tmp_dir("train-resume");
    char a[4200], b[4200], p[4300];
    snprintf(a, sizeof a, "%s/a.safetensors", dir);
    snprintf(b, sizeof b, "%s/b.safetensors", dir);
    /* (No lr schedule: a schedule's horizon is the total epochs, so a 1-epoch
     * run is not the first half of a 2-epoch one.) */
    const char *common = "--limit 3000 --batch 50 --seed 5 --quiet --accumulate 2 --lr 0.002";
    CU_ASSERT_EQUAL_FATAL(cli("train --epochs 2 %s --save %s", common, a), 0);
    CU_ASSERT_EQUAL_FATAL(cli("train --epochs 1 %s --save %s", common, b), 0);
    CU_ASSERT_FALSE(kt_same_tensors(a, b, 0));
    /* seed, batch, accumulate, lr default to the checkpoint's. */
    CU_ASSERT_EQUAL_FATAL(cli("train --epochs 2 --limit 3000 --quiet --resume %s --save %s --json", b, b), 0);
    CU_ASSERT(kt_same_tensors(a, b, 1));
    cJSON *ep[16];
    int ne = json_events("epoch", ep, 16);
    CU_ASSERT_EQUAL(ne, 1);
    if (ne == 1) CU_ASSERT_EQUAL(jnum(ep[0], "epoch"), 2);
    free_events(ep, ne);
    /* The resumed run's CSV holds both epochs. */
    snprintf(p, sizeof p, "%s/b.csv", dir);
    char *csv = kt_read_file(p, NULL);
    CU_ASSERT(csv && count_lines(csv) == 3);
    free(csv);

    /* A different seed cannot continue it. */
    CU_ASSERT_EQUAL(cli("train --epochs 3 --limit 3000 --quiet --seed 6 --resume %s", b), 1);
    KT_ASSERT_CONTAINS(err_txt, "seed 5");
}

static void test_resume_errors(void)
{
    const char *dir = kt_tmp_dir("train-bad");
    char p[4200], q[4200], err[512];
    /* corrupt file: exit 1, one line, file untouched even when --save targets it */
    snprintf(p, sizeof p, "%s/junk.safetensors", dir);
    const char junk[] = "\x20\x00\x00\x00\x00\x00\x00\x00{\"a\":1} garbage that is not a header";
    kt_write_file(p, junk, sizeof junk - 1);
    CU_ASSERT_EQUAL(cli("train --epochs 1 --limit 500 --resume %s --save %s", p, p), 1);
    KT_ASSERT_CONTAINS(err_txt, "train: --resume ");
    CU_ASSERT_EQUAL(count_lines(err_txt), 1);
    size_t len = 0;
    char *back = kt_read_file(p, &len);
    CU_ASSERT(back && len == sizeof junk - 1 && memcmp(back, junk, len) == 0);
    free(back);

    /* weights-only checkpoint: no training metadata */
    float *w = calloc(NUMEL, sizeof(float));
    kn_rt_init_weights(&MODEL, w, 0);
    snprintf(q, sizeof q, "%s/plain.safetensors", dir);
    CU_ASSERT_FATAL(kn_rt_ckpt_save(&MODEL, w, q, NULL, 0, NULL, NULL, 0, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(cli("train --epochs 1 --resume %s", q), 1);
    KT_ASSERT_CONTAINS(err_txt, "not a training checkpoint");

    /* training metadata but no optimizer state: fine for --weights and
     * eval, an error for --resume */
    kn_st_tensor t[2] = {
        {"fc.weight", KN_RT_F32, 2, {CL, IN}, NW, w + OW},
        {"fc.bias", KN_RT_F32, 1, {CL}, CL, w + OB},
    };
    const char *mk[] = {"model", "model_hash", "epoch", "step", "seed"};
    const char *mv[] = {"softreg", "c0ffee", "1", "10", "0"};
    snprintf(q, sizeof q, "%s/nostate.safetensors", dir);
    CU_ASSERT_FATAL(kn_st_write(q, t, 2, mk, mv, 5, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(cli("train --epochs 2 --limit 500 --resume %s", q), 1);
    KT_ASSERT_CONTAINS(err_txt, "missing tensor 'optim.fc.weight.m'");
    CU_ASSERT_EQUAL(cli("eval --weights %s --split val", q), 0);
    CU_ASSERT_EQUAL(cli("train --epochs 1 --limit 500 --quiet --weights %s", q), 0);

    /* another model's checkpoint */
    mv[1] = "deadbeef";
    CU_ASSERT_FATAL(kn_st_write(q, t, 2, mk, mv, 5, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(cli("train --epochs 2 --resume %s", q), 1);
    KT_ASSERT_CONTAINS(err_txt, "hash deadbeef");
    free(w);

    CU_ASSERT_EQUAL(cli("train --resume %s --weights %s", q, q), 2);
    CU_ASSERT_EQUAL(cli("train --schedule linear"), 2);
    KT_ASSERT_CONTAINS(err_txt, "--schedule 'linear'");
}

static void test_nan(void)
{
    const char *dir = kt_tmp_dir("train-nan");
    char ck[4200];
    snprintf(ck, sizeof ck, "%s/nan.safetensors", dir);
    CU_ASSERT_EQUAL(cli("train --epochs 2 --limit 2000 --lr 1e38 --quiet --save %s", ck), 1);
    KT_ASSERT_CONTAINS(err_txt, "train: loss is ");
    KT_ASSERT_CONTAINS(err_txt, " at epoch 1 step ");
    KT_ASSERT_CONTAINS(err_txt, " (batch ");
    CU_ASSERT_EQUAL(count_lines(err_txt), 1);
    CU_ASSERT_FALSE(exists(ck)); /* no epoch finished: nothing saved */
}

static void test_options(void)
{
    /* patience: lr 0 never improves after epoch 1 */
    CU_ASSERT_EQUAL(cli("train --epochs 5 --limit 500 --lr 0 --patience 1 --json --quiet"), 0);
    cJSON *ep[16];
    int ne = json_events("epoch", ep, 16);
    CU_ASSERT_EQUAL(ne, 2);
    free_events(ep, ne);
    KT_ASSERT_CONTAINS(err_txt, "early stop at epoch 2");

    /* step schedule: x0.1 every epochs/3 */
    CU_ASSERT_EQUAL(cli("train --epochs 3 --limit 300 --lr 0.01 --schedule step --json --quiet"), 0);
    ne = json_events("epoch", ep, 16);
    CU_ASSERT_EQUAL_FATAL(ne, 3);
    CU_ASSERT(fabs(jnum(ep[0], "lr") - 0.01) < 1e-8);
    CU_ASSERT(fabs(jnum(ep[1], "lr") - 0.001) < 1e-9);
    CU_ASSERT(fabs(jnum(ep[2], "lr") - 0.0001) < 1e-10);
    free_events(ep, ne);

    /* --steps stops mid-epoch; --accumulate divides the step count */
    CU_ASSERT_EQUAL(cli("train --epochs 2 --limit 1000 --batch 10 --steps 7 --accumulate 3 --json --quiet"), 0);
    cJSON *st[4];
    int ns = json_events("stop", st, 4);
    CU_ASSERT_EQUAL_FATAL(ns, 1);
    CU_ASSERT_EQUAL(jnum(st[0], "step"), 7);
    free_events(st, ns);
    CU_ASSERT_EQUAL(cli("train --epochs 1 --limit 1000 --batch 10 --accumulate 3 --json --quiet"), 0);
    ne = json_events("epoch", ep, 16);
    CU_ASSERT_EQUAL(ne, 1);
    if (ne) CU_ASSERT_EQUAL(jnum(ep[0], "step"), 34); /* ceil(100/3) */
    free_events(ep, ne);

    /* progress lines when piped */
    CU_ASSERT_EQUAL(cli("train --epochs 1 --limit 200"), 0);
    KT_ASSERT_CONTAINS(out_txt, "epoch 1/1  train loss ");
    KT_ASSERT_CONTAINS(out_txt, "test: loss ");

    /* bench --mode train */
    CU_ASSERT_EQUAL(cli("bench --mode train --json --batch 16 --iters 3 --warmup 1"), 0);
    KT_ASSERT_CONTAINS(out_txt, "\"mode\":\"train\"");
    CU_ASSERT_EQUAL(cli("info"), 0);
    KT_ASSERT_CONTAINS(out_txt, "phases   infer, train, update");

    /* unknown data kind */
    MODEL.data_kind = "cifar10";
    CU_ASSERT_EQUAL(cli("train --epochs 1"), 1);
    KT_ASSERT_CONTAINS(err_txt, "unknown dataset kind 'cifar10'");
    MODEL.data_kind = "fashion_mnist";
}

/* gradcheck passes the true gradient and fails a 20% wrong one, even with
 * its retries at smaller eps. */
static void test_gradcheck_catches_wrong_gradient(void)
{
    CU_ASSERT_EQUAL(cli("gradcheck --batch 8 --samples 10"), 0);
    KT_ASSERT_CONTAINS(out_txt, "all parameters within tolerance");
    bias_grad_bug = 1.2f;
    CU_ASSERT_EQUAL(cli("gradcheck --batch 8 --samples 10"), 1);
    bias_grad_bug = 1.0f;
    const char *w = strstr(out_txt, "fc.weight"), *b = strstr(out_txt, "fc.bias");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    const char *w_end = strchr(w, '\n'), *b_end = strchr(b, '\n');
    const char *w_ok = strstr(w, "ok"), *b_fail = strstr(b, "FAIL");
    CU_ASSERT(w_ok && w_end && w_ok < w_end);     /* the true weight gradient passes */
    CU_ASSERT(b_fail && b_end && b_fail < b_end); /* the wrong bias gradient fails */
}

/* sweep: one run per lr x seed, a table, the best setting, files. */
static void test_sweep(void)
{
    const char *dir = kt_tmp_dir("sweep");
    CU_ASSERT_EQUAL_FATAL(cli("sweep --lr 0.0001,0.05 --seed 0,3 --epochs 2 --limit 600 --json --out %s", dir), 0);
    cJSON *ev[16];
    int n = json_events("sweep", ev, 16);
    CU_ASSERT_EQUAL(n, 4);
    double lo = -1, hi = -1;
    for (int i = 0; i < n; i++) {
        CU_ASSERT(jnum(ev[i], "best_val_acc") >= 0 && jnum(ev[i], "best_val_acc") <= 1);
        CU_ASSERT(jnum(ev[i], "best_epoch") >= 1 && jnum(ev[i], "best_epoch") <= 2);
        if (jnum(ev[i], "seed") == 0 && jnum(ev[i], "lr") < 0.001) lo = jnum(ev[i], "best_val_acc");
        if (jnum(ev[i], "seed") == 0 && jnum(ev[i], "lr") > 0.01) hi = jnum(ev[i], "best_val_acc");
    }
    free_events(ev, n);
    /* a tiny learning rate learns less in two epochs */
    CU_ASSERT(lo >= 0 && hi > lo);
    KT_ASSERT_CONTAINS(err_txt, "| lr 0.05 seed 3 |");
    KT_ASSERT_CONTAINS(err_txt, "best: lr 0.05");
    char p[4300];
    snprintf(p, sizeof p, "%s/sweep.csv", dir);
    char *csv = kt_read_file(p, NULL);
    CU_ASSERT(csv && count_lines(csv) == 5);
    free(csv);
    snprintf(p, sizeof p, "%s/sweep.svg", dir);
    CU_ASSERT(kt_file_exists(p));
    CU_ASSERT_EQUAL(cli("sweep --lr 0.1,-1"), 2);
    KT_ASSERT_CONTAINS(err_txt, "--lr '-1': expected positive numbers");
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"train learns; checkpoint, CSV, SVG, JSON", test_train_learns},
        {"resume is bit-identical", test_resume_bit_identical},
        {"bad resume checkpoints", test_resume_errors},
        {"NaN loss stops training", test_nan},
        {"patience, schedules, steps, accumulate, bench", test_options},
        {"gradcheck catches a wrong gradient", test_gradcheck_catches_wrong_gradient},
        {"sweep over learning rates and seeds", test_sweep},
        CU_TEST_INFO_NULL,
    };
    int rc = kt_main("runtime_train", tests);
    free(out_txt);
    free(err_txt);
    return rc;
}

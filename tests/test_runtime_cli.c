/* test_runtime_cli.c — the generated executable's CLI, driven in-process
 * through kn_rt_main() with a hand-written 784->10 linear model. */
#include "kn_rt.h"
#include "kn_rt_ckpt.h"
#include "kn_rt_init.h"
#include "npy.h"
#include "testlib.h"

#include <cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- the model: logits = x W^T + b, loss = mean cross-entropy ---- */
#define IN 784
#define CL 10
#define OFF_Y (IN * 4)
#define OFF_LOGITS (OFF_Y + 8)
#define PER_SAMPLE (OFF_LOGITS + CL * 4)

static void lin_run(kn_rt_ctx *ctx, int n)
{
    const float *x = (const float *)ctx->arena;
    const int64_t *y = (const int64_t *)(ctx->arena + (size_t)n * OFF_Y);
    float *z = (float *)(ctx->arena + (size_t)n * OFF_LOGITS);
    float *loss = (float *)(ctx->arena + (size_t)n * PER_SAMPLE);
    const float *W = ctx->weights, *b = ctx->weights + CL * IN;
    for (int i = 0; i < n; i++) memcpy(z + i * CL, b, sizeof(float) * CL);
    kn_rt_sgemm(0, 1, n, CL, IN, 1, x, IN, W, IN, 1, z, CL);
    double s = 0;
    for (int i = 0; i < n; i++) {
        double mx = z[i * CL];
        for (int j = 1; j < CL; j++) mx = fmax(mx, z[i * CL + j]);
        double se = 0;
        for (int j = 0; j < CL; j++) se += exp(z[i * CL + j] - mx);
        s += mx + log(se) - z[i * CL + y[i]];
    }
    *loss = (float)(s / n);
}

static const kn_rt_param PARAMS[] = {
    {"fc.weight", 2, {CL, IN}, CL * IN, 0, KN_RT_TRAINABLE, KN_RT_INIT_KAIMING_UNIFORM, IN, CL, NULL},
    {"fc.bias", 1, {CL}, CL, CL * IN, KN_RT_TRAINABLE, KN_RT_INIT_BIAS_UNIFORM, IN, CL, NULL},
};
static const kn_rt_io IO[] = {
    {"x", KN_RT_F32, 2, {-1, IN}, 1, IN, 0},
    {"y", KN_RT_I64, 1, {-1}, 1, 1, OFF_Y},
    {"logits", KN_RT_F32, 2, {-1, CL}, 1, CL, OFF_LOGITS},
    {"loss", KN_RT_F32, 0, {0}, 0, 1, 0},
};
static const kn_rt_io_role ROLES[] = {KN_RT_IO_INPUT, KN_RT_IO_LABEL, KN_RT_IO_OUTPUT, KN_RT_IO_LOSS};
static const kn_rt_phase INFER = {"infer", lin_run, PER_SAMPLE, 4, 4, IO, ROLES, 0, NULL, NULL, 0, NULL};
static const float NORM[2] = {0.2860f, 0.3530f};
static const kn_rt_model MODEL = {
    .name = "lin", .hash = "feedface", .target = "cpu",
    .summary = "  fc  linear  f32[N,10]  7,850\n",
    .n_params = 2, .params = PARAMS, .weights_numel = CL * IN + CL,
    .infer = &INFER, .train = NULL,
    .data_kind = "fashion_mnist", .n_normalize = 1, .normalize = NORM,
    .batch = 64, .seed = 0,
};

/* ---- running kn_rt_main with captured stdout / stderr ---- */
static char *out_txt, *err_txt;

/* args: space-separated arguments after the program name. */
static int cli(const char *args)
{
    return kt_rt_main(&MODEL, "lin", args, &out_txt, &err_txt);
}

static cJSON *json_out(void)
{
    cJSON *j = cJSON_Parse(out_txt);
    if (!j) fprintf(stderr, "\nnot JSON: %s\n", out_txt);
    return j;
}

static double jnum(cJSON *j, const char *k)
{
    cJSON *v = cJSON_GetObjectItem(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void test_help_and_usage(void)
{
    CU_ASSERT_EQUAL(cli("--help"), 0);
    KT_ASSERT_CONTAINS(out_txt, "predict");
    KT_ASSERT_CONTAINS(out_txt, "val = its last 5000");
    const char *cmds[] = {"info", "eval", "predict", "bench", "run", "train"};
    for (int i = 0; i < 6; i++) {
        char a[64];
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        CU_ASSERT_EQUAL(cli(a), 0);
        KT_ASSERT_CONTAINS(out_txt, "usage:");
    }
    CU_ASSERT_EQUAL(cli(""), 2);
    CU_ASSERT_EQUAL(cli("frobnicate"), 2);
    KT_ASSERT_CONTAINS(err_txt, "unknown command 'frobnicate'");
    CU_ASSERT_EQUAL(cli("eval --bogus"), 2);
    KT_ASSERT_CONTAINS(err_txt, "eval: unknown option '--bogus'");
    CU_ASSERT_EQUAL(cli("eval --batch"), 2);
    KT_ASSERT_CONTAINS(err_txt, "eval: --batch needs a value");
    CU_ASSERT_EQUAL(cli("eval --batch abc"), 2);
    KT_ASSERT_CONTAINS(err_txt, "eval: --batch 'abc': expected an integer >= 1");
    CU_ASSERT_EQUAL(cli("eval --batch 0"), 2);
    CU_ASSERT_EQUAL(cli("eval --split dev"), 2);
    KT_ASSERT_CONTAINS(err_txt, "--split 'dev'");
    CU_ASSERT_EQUAL(cli("bench --iters=x"), 2);
    CU_ASSERT_EQUAL(cli("eval --device cuda"), 2);
    KT_ASSERT_CONTAINS(err_txt, "--device cuda: this executable was built for target cpu");
}

static void test_info(void)
{
    CU_ASSERT_EQUAL(cli("info"), 0);
    KT_ASSERT_CONTAINS(out_txt, "model    lin");
    KT_ASSERT_CONTAINS(out_txt, "trainable 7,850");
    KT_ASSERT_CONTAINS(out_txt, "frozen 0");
    KT_ASSERT_CONTAINS(out_txt, "phases   infer\n");
    KT_ASSERT_CONTAINS(out_txt, "fc  linear");
    KT_ASSERT_CONTAINS(out_txt, "arena    203,840 bytes at batch 64"); /* 64*3184+4 -> 64-aligned */
}

static void test_train_absent(void)
{
    CU_ASSERT_EQUAL(cli("train"), 1);
    KT_ASSERT_CONTAINS(err_txt, "train: this model was compiled without a train phase");
}

static void test_eval(void)
{
    CU_ASSERT_EQUAL(cli("eval --json"), 0);
    cJSON *j = json_out();
    CU_ASSERT_FATAL(j != NULL);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "event")->valuestring, "eval");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "split")->valuestring, "test");
    CU_ASSERT_EQUAL(jnum(j, "n"), 10000);
    double acc = jnum(j, "accuracy"), loss = jnum(j, "loss");
    CU_ASSERT(acc > 0.01 && acc < 0.3); /* fresh weights: about chance */
    CU_ASSERT(jnum(j, "correct") == round(acc * 10000));
    CU_ASSERT(loss > 1.5 && loss < 4);
    KT_ASSERT_CONTAINS(err_txt, "test: loss ");
    cJSON_Delete(j);

    /* The batch size does not change the result. */
    CU_ASSERT_EQUAL(cli("eval --batch 1000"), 0);
    char want[64];
    snprintf(want, sizeof want, "accuracy %.4f", acc);
    KT_ASSERT_CONTAINS(out_txt, want);

    CU_ASSERT_EQUAL(cli("eval --split val --json"), 0);
    KT_ASSERT_CONTAINS(out_txt, "\"n\":5000");
}

static void test_weights(void)
{
    const char *dir = kt_tmp_dir("cli-w");
    char ck[4200], a[4400];
    snprintf(ck, sizeof ck, "%s/w.safetensors", dir);
    float *w = malloc(sizeof(float) * MODEL.weights_numel);
    kn_rt_init_weights(&MODEL, w, 7);
    char err[512];
    CU_ASSERT_FATAL(kn_rt_ckpt_save(&MODEL, w, ck, NULL, 0, NULL, NULL, 0, err, sizeof err) == 0);
    free(w);
    /* --weights with seed-7 init equals --seed 7. */
    CU_ASSERT_EQUAL(cli("eval --seed 7 --json"), 0);
    char *seeded = strdup(out_txt);
    snprintf(a, sizeof a, "eval --weights %s --json", ck);
    CU_ASSERT_EQUAL(cli(a), 0);
    CU_ASSERT_STRING_EQUAL(out_txt, seeded);
    free(seeded);

    snprintf(a, sizeof a, "eval --weights %s/missing.safetensors", dir);
    CU_ASSERT_EQUAL(cli(a), 1);
    KT_ASSERT_CONTAINS(err_txt, "missing.safetensors: cannot open");
    snprintf(a, sizeof a, "%s/junk.safetensors", dir);
    kt_write_file(a, "0123456789abcdef", 16);
    snprintf(a, sizeof a, "eval --weights %s/junk.safetensors", dir);
    CU_ASSERT_EQUAL(cli(a), 1);
    KT_ASSERT_CONTAINS(err_txt, "junk.safetensors:");
    CU_ASSERT_EQUAL(cli("eval --data /nonexistent"), 1);
    KT_ASSERT_CONTAINS(err_txt, "eval: --data /nonexistent: no such directory");
}

static void test_predict(void)
{
    CU_ASSERT_EQUAL(cli("predict --index 0 --top 3 --json"), 0);
    cJSON *j = json_out();
    CU_ASSERT_FATAL(j != NULL);
    CU_ASSERT_EQUAL(jnum(j, "index"), 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "true_label")->valuestring, "Ankle boot");
    cJSON *top = cJSON_GetObjectItem(j, "top");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(top), 3);
    double p0 = jnum(cJSON_GetArrayItem(top, 0), "prob"), p2 = jnum(cJSON_GetArrayItem(top, 2), "prob");
    CU_ASSERT(p0 >= p2 && p0 <= 1 && p2 > 0);
    cJSON_Delete(j);
    CU_ASSERT_EQUAL(cli("predict --index 1,2 --index 3"), 0);
    KT_ASSERT_CONTAINS(out_txt, "test[3] (true ");
    CU_ASSERT_EQUAL(cli("predict --index 10000"), 2);
    KT_ASSERT_CONTAINS(err_txt, "--index 10000: the test split has 10000 items");
    CU_ASSERT_EQUAL(cli("predict"), 2);

    const char *dir = kt_tmp_dir("cli-p");
    char p[4200], a[4400], err[256];
    static float x[IN];
    int64_t d[2] = {1, IN};
    snprintf(p, sizeof p, "%s/one.npy", dir);
    kn_npy_write(p, KN_RT_F32, 2, d, x, err, sizeof err);
    snprintf(a, sizeof a, "predict %s --top 1", p);
    CU_ASSERT_EQUAL(cli(a), 0);
    KT_ASSERT_CONTAINS(out_txt, "one.npy:");
}

static void test_bench(void)
{
    CU_ASSERT_EQUAL(cli("bench --json --batch 8 --iters 5 --warmup 1 --threads 1"), 0);
    cJSON *j = json_out();
    CU_ASSERT_FATAL(j != NULL);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "event")->valuestring, "bench");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "mode")->valuestring, "infer");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "device")->valuestring, "cpu");
    CU_ASSERT_EQUAL(jnum(j, "batch"), 8);
    CU_ASSERT_EQUAL(jnum(j, "iters"), 5);
    CU_ASSERT(jnum(j, "ms_min") <= jnum(j, "ms_median"));
    CU_ASSERT(jnum(j, "items_per_s") > 0);
    CU_ASSERT(jnum(j, "peak_rss_mb") > 0);
    CU_ASSERT_EQUAL(jnum(j, "arena_bytes"), 25536); /* 8*3184+4 rounded to 64 */
    cJSON_Delete(j);
    CU_ASSERT_EQUAL(cli("bench --mode train"), 1);
    KT_ASSERT_CONTAINS(err_txt, "without a train phase");
}

static void test_run(void)
{
    const char *dir = kt_tmp_dir("cli-run");
    char px[4200], py[4200], pbad[4200], out[4200], a[16000], err[256];
    enum { N = 3 };
    static float x[N * IN];
    for (int i = 0; i < N * IN; i++) x[i] = (float)((i * 37) % 101) / 101.0f;
    int64_t y[N] = {1, 5, 9};
    int64_t dx[2] = {N, IN}, dy[1] = {N}, dbad[2] = {N, IN - 1};
    snprintf(px, sizeof px, "%s/x.npy", dir);
    snprintf(py, sizeof py, "%s/y.npy", dir);
    snprintf(pbad, sizeof pbad, "%s/bad.npy", dir);
    snprintf(out, sizeof out, "%s/out/sub", dir);
    kn_npy_write(px, KN_RT_F32, 2, dx, x, err, sizeof err);
    kn_npy_write(py, KN_RT_I64, 1, dy, y, err, sizeof err);
    kn_npy_write(pbad, KN_RT_F32, 2, dbad, x, err, sizeof err);

    snprintf(a, sizeof a, "run --seed 3 --in x=%s --in y=%s --out %s", px, py, out);
    CU_ASSERT_EQUAL_FATAL(cli(a), 0);
    char pl[4400];
    snprintf(pl, sizeof pl, "%s/logits.npy", out);
    kn_npy lg, ls;
    CU_ASSERT_FATAL(kn_npy_read(pl, &lg, err, sizeof err) == 0);
    CU_ASSERT(lg.rank == 2 && lg.dims[0] == N && lg.dims[1] == CL);
    /* Check against the weights `--seed 3` must have produced. */
    float *w = malloc(sizeof(float) * MODEL.weights_numel);
    kn_rt_init_weights(&MODEL, w, 3);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < CL; j++) {
            double s = w[CL * IN + j];
            for (int k = 0; k < IN; k++) s += (double)x[i * IN + k] * w[j * IN + k];
            CU_ASSERT(fabs(s - ((float *)lg.data)[i * CL + j]) < 1e-4);
        }
    free(w);
    kn_npy_free(&lg);
    snprintf(pl, sizeof pl, "%s/loss.npy", out);
    CU_ASSERT_FATAL(kn_npy_read(pl, &ls, err, sizeof err) == 0);
    CU_ASSERT(ls.rank == 0 && ls.numel == 1 && *(float *)ls.data > 0);
    kn_npy_free(&ls);

    snprintf(a, sizeof a, "run --in x=%s --out %s", px, out);
    CU_ASSERT_EQUAL(cli(a), 2);
    KT_ASSERT_CONTAINS(err_txt, "run: missing --in y=FILE.npy (label i64[N])");
    snprintf(a, sizeof a, "run --in x=%s --in y=%s --out %s", pbad, py, out);
    CU_ASSERT_EQUAL(cli(a), 1);
    KT_ASSERT_CONTAINS(err_txt, "has shape f32[3,783], expected f32[N,784]");
    snprintf(a, sizeof a, "run --in x=%s --in y=%s --out %s", py, py, out);
    CU_ASSERT_EQUAL(cli(a), 1);
    KT_ASSERT_CONTAINS(err_txt, "--in x:");
    snprintf(a, sizeof a, "run --in z=%s --out %s", px, out);
    CU_ASSERT_EQUAL(cli(a), 2);
    KT_ASSERT_CONTAINS(err_txt, "--in 'z': model lin has no input of that name");
    snprintf(a, sizeof a, "run --in x=%s --in y=%s", px, py);
    CU_ASSERT_EQUAL(cli(a), 2);
    KT_ASSERT_CONTAINS(err_txt, "--out DIR is required");
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"help, unknown commands and bad flags", test_help_and_usage},
        {"info", test_info},
        {"train without a train phase", test_train_absent},
        {"eval on Fashion-MNIST with fresh weights", test_eval},
        {"eval --weights, missing and bad checkpoints", test_weights},
        {"predict by index and from .npy", test_predict},
        {"bench --json", test_bench},
        {"run with .npy inputs and outputs", test_run},
        CU_TEST_INFO_NULL,
    };
    int rc = kt_main("runtime_cli", tests);
    free(out_txt);
    free(err_txt);
    return rc;
}

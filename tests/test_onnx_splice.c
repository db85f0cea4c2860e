/* test_onnx_splice.c — onnx(...) in model files through the real driver.
 *
 * 1. tests/golden/onnx_splice/mlp.onnx (gen_onnx.py: Gemm -> Relu = feat ->
 *    Gemm -> Mod, the last unsupported) cut at "feat": the executable's
 *    feat.npy for x.npy matches numpy's within 1e-5 + 1e-4 |want|.
 * 2. The same backbone frozen under a trainable head on Fashion-MNIST:
 *    `train --steps 2 --dump-grads` writes gradients for the head only;
 *    after an epoch the checkpoint still computes the reference feat (the
 *    frozen weights did not move).  `--set freeze=false` (a model param)
 *    makes the backbone's gradients appear, and changes the model hash.
 * 3. models/mobilenetv2.kiln, clothing_transfer.kiln and
 *    clothing_transfer_inner.kiln when $KILN_DATA/mobilenetv2 exists
 *    (skipped with one line otherwise): logits vs the reference within 1e-3
 *    with the same argmax, parameter counts with and without --set, and the
 *    transfer model's executable runs on a random batch.
 */
#define _GNU_SOURCE
#include "testlib.h"

#include "kn_safetensors.h"
#include "npy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_onnx_dir[4096];

static const char *splice_dir(void)
{
    kt_pathf(g_onnx_dir, sizeof g_onnx_dir, "%s/tests/golden/onnx_splice", kt_src_dir());
    return g_onnx_dir;
}

/* kiln build MODEL [extra] -o EXE; fatal on failure. */
static int build(const char *model, const char *extra, const char *exe)
{
    char *log = NULL;
    int rc = kt_run(&log, "'%s' build '%s' %s -o '%s'", kt_kiln_bin(), model, extra, exe);
    if (rc) printf("build %s failed (%d):\n%s\n", model, rc, log ? log : "");
    free(log);
    return rc;
}

/* DIR/y.npy: n labels 0, 1, ... (run feeds every graph input, labels too) */
static void write_labels(const char *dir, int n)
{
    int64_t y[16], dims[1] = {n};
    for (int i = 0; i < n; i++) y[i] = i;
    char p[4096], err[256];
    kt_pathf(p, sizeof p, "%s/y.npy", dir);
    CU_ASSERT_EQUAL_FATAL(kn_npy_write(p, KN_RT_I64, 1, dims, y, err, sizeof err), 0);
}

static void write_model(const char *path, const char *body)
{
    CU_ASSERT_EQUAL_FATAL(kt_write_file(path, body, strlen(body)), 0);
}

static void test_cut_matches_numpy(void)
{
    const char *tmp = kt_tmp_dir("splice_cut");
    char model[4096], exe[4096], src[8192], want[4096], got[4096];
    kt_pathf(model, sizeof model, "%s/cut.kiln", tmp);
    kt_pathf(exe, sizeof exe, "%s/cut", tmp);
    snprintf(src, sizeof src,
             "model cut\ninput x: f32[N, 784]\nfeat = onnx(\"%s/mlp.onnx\", input=x, until=\"feat\", frozen)\n"
             "output feat\n", splice_dir());
    write_model(model, src);
    CU_ASSERT_EQUAL_FATAL(build(model, "", exe), 0);
    char *log = NULL;
    int rc = kt_run(&log, "'%s' run --in 'x=%s/x.npy' --out '%s/out'", exe, splice_dir(), tmp);
    if (rc) printf("%s\n", log);
    free(log);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    kt_pathf(want, sizeof want, "%s/feat.npy", splice_dir());
    kt_pathf(got, sizeof got, "%s/out/feat.npy", tmp);
    CU_ASSERT_EQUAL(kt_compare_npy("splice_cut", "feat", want, got, 1e-5, 1e-4), 0);
}

static const char HEAD_MODEL[] =
    "model splice_head\n"
    "param freeze = true\n"
    "data  fashion_mnist(normalize=(0.2860, 0.3530))\n"
    "input x: f32[N, 784]\n"
    "label y: i64[N]\n"
    "feat = onnx(\"%s/mlp.onnx\", input=x, until=\"feat\", frozen=freeze)\n"
    "head = linear(feat, 10)\n"
    "loss = cross_entropy(head, y)\n"
    "output head, feat\n"
    "train { optimizer adam(lr=1e-2)  batch 64  epochs 1  shuffle  seed 0 }\n";

/* unfreeze=K thaws the last K imported layers with weights; lr_scale
 * scales their learning rate. */
static const char THAW_MODEL[] =
    "model splice_thaw\n"
    "param thaw = 1\n"
    "param scale = 0.5\n"
    "data  fashion_mnist(normalize=(0.2860, 0.3530))\n"
    "input x: f32[N, 784]\n"
    "label y: i64[N]\n"
    "feat = onnx(\"%s/mlp.onnx\", input=x, until=\"feat\", frozen, unfreeze=thaw, lr_scale=scale)\n"
    "head = linear(feat, 10)\n"
    "loss = cross_entropy(head, y)\n"
    "output head\n"
    "train { optimizer adam(lr=1e-2)  batch 64  epochs 1  seed 0 }\n";

static bool exists_in(const char *dir, const char *file)
{
    char p[4096];
    kt_pathf(p, sizeof p, "%s/%s", dir, file);
    return kt_file_exists(p);
}

/* The `hash` line of `EXE info`, via `kiln run MODEL [sets] info`. */
static void info_hash(const char *model, const char *sets, char out[32])
{
    char *log = NULL;
    int rc = kt_run(&log, "'%s' run '%s' %s info", kt_kiln_bin(), model, sets);
    CU_ASSERT_EQUAL(rc, 0);
    const char *h = log ? strstr(log, "hash ") : NULL;
    snprintf(out, 32, "%.16s", h ? h + 5 + strspn(h + 5, " ") : "?");
    free(log);
}

static void test_frozen_backbone_trains_head(void)
{
    if (!kt_file_exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
        printf("SKIP frozen backbone training: Fashion-MNIST (dataset-fashion-mnist) not installed\n");
        return;
    }
    const char *tmp = kt_tmp_dir("splice_train");
    char model[4096], exe[4096], src[8192], dir[4096];
    kt_pathf(model, sizeof model, "%s/head.kiln", tmp);
    kt_pathf(exe, sizeof exe, "%s/head", tmp);
    snprintf(src, sizeof src, HEAD_MODEL, splice_dir());
    write_model(model, src);
    CU_ASSERT_EQUAL_FATAL(build(model, "", exe), 0);

    char *log = NULL;
    kt_pathf(dir, sizeof dir, "%s/grads", tmp);
    int rc = kt_run(&log, "'%s' train --steps 2 --quiet --dump-grads '%s'", exe, dir);
    if (rc) printf("%s\n", log);
    free(log);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_TRUE(exists_in(dir, "head.weight.grad.npy"));
    CU_ASSERT_TRUE(exists_in(dir, "head.bias.grad.npy"));
    CU_ASSERT_FALSE(exists_in(dir, "feat.w1.grad.npy"));
    CU_ASSERT_FALSE(exists_in(dir, "feat.b1.grad.npy"));

    /* one epoch, then the saved weights still compute the reference feat */
    write_labels(tmp, 4);
    rc = kt_run(&log, "'%s' train --quiet --save '%s/ckpt.safetensors' && '%s' run --weights '%s/ckpt.safetensors' "
                "--in 'x=%s/x.npy' --in 'y=%s/y.npy' --out '%s/out'", exe, tmp, exe, tmp, splice_dir(), tmp, tmp);
    if (rc) printf("%s\n", log);
    else KT_ASSERT_CONTAINS(log, "test:");
    free(log);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char want[4096], got[4096];
    kt_pathf(want, sizeof want, "%s/feat.npy", splice_dir());
    kt_pathf(got, sizeof got, "%s/out/feat.npy", tmp);
    CU_ASSERT_EQUAL(kt_compare_npy("splice_train", "feat after an epoch", want, got, 1e-5, 1e-4), 0);

    /* --set freeze=false: the backbone trains too */
    kt_pathf(exe, sizeof exe, "%s/head_unfrozen", tmp);
    CU_ASSERT_EQUAL_FATAL(build(model, "--set freeze=false", exe), 0);
    kt_pathf(dir, sizeof dir, "%s/grads_unfrozen", tmp);
    rc = kt_run(&log, "'%s' train --steps 1 --quiet --dump-grads '%s'", exe, dir);
    free(log);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_TRUE(exists_in(dir, "feat.w1.grad.npy"));
    CU_ASSERT_TRUE(exists_in(dir, "head.weight.grad.npy"));

    /* the override is part of the model hash; unknown ones are errors */
    char h0[32], h1[32], h2[32];
    setenv("KILN_CACHE", tmp, 1);
    info_hash(model, "", h0);
    info_hash(model, "--set freeze=false", h1);
    info_hash(model, "--set freeze=true", h2);
    printf("hashes: default %s, freeze=false %s, freeze=true %s\n", h0, h1, h2);
    CU_ASSERT_STRING_NOT_EQUAL(h0, h1);
    CU_ASSERT_STRING_NOT_EQUAL(h1, h2);
    rc = kt_run(&log, "'%s' check '%s' --set frezee=false", kt_kiln_bin(), model);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(log, "--set frezee=false: the model has no parameter 'frezee'");
    KT_ASSERT_CONTAINS(log, "did you mean 'freeze'?");
    free(log);
    rc = kt_run(&log, "'%s' build '%s' --set freeze", kt_kiln_bin(), model);
    CU_ASSERT_EQUAL(rc, 2);
    KT_ASSERT_CONTAINS(log, "expected NAME=VALUE");
    free(log);
}

/* `kiln check MODEL extra` output must contain `needle`. */
static void check_contains(const char *model, const char *extra, const char *needle)
{
    char *log = NULL;
    int rc = kt_run(&log, "'%s' check '%s' %s", kt_kiln_bin(), model, extra);
    if (rc) printf("%s\n", log);
    CU_ASSERT_EQUAL(rc, 0);
    KT_ASSERT_CONTAINS(log, needle);
    free(log);
}

/* Max |after - before| of tensor `name` between two checkpoints. */
static double max_delta(const char *a, const char *b, const char *name)
{
    kn_st_file fa, fb;
    char err[512];
    if (kn_st_read(a, &fa, err, sizeof err)) return -1;
    if (kn_st_read(b, &fb, err, sizeof err)) {
        kn_st_free(&fa);
        return -1;
    }
    const kn_st_tensor *ta = kn_st_find(&fa, name), *tb = kn_st_find(&fb, name);
    double m = -1;
    if (ta && tb && ta->numel == tb->numel) {
        m = 0;
        for (size_t i = 0; i < ta->numel; i++) {
            double dd = fabs((double)((const float *)ta->data)[i] - (double)((const float *)tb->data)[i]);
            if (dd > m) m = dd;
        }
    }
    kn_st_free(&fa);
    kn_st_free(&fb);
    return m;
}

static void test_unfreeze_last_layers(void)
{
    if (!kt_file_exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
        printf("SKIP unfreeze: Fashion-MNIST (dataset-fashion-mnist) not installed\n");
        return;
    }
    const char *tmp = kt_tmp_dir("splice_thaw");
    char model[4096], exe[4096], src[8192], dir[4096], ck0[4200], ck1[4200], ck2[4200];
    kt_pathf(model, sizeof model, "%s/thaw.kiln", tmp);
    snprintf(src, sizeof src, THAW_MODEL, splice_dir());
    write_model(model, src);
    check_contains(model, "", "trainable 25,450 · frozen 0");
    check_contains(model, "--set thaw=0", "trainable 330 · frozen 25,120");
    /* One Adam step moves a weight by lr * m/(sqrt(v)+eps), linear in lr: with
     * lr_scale 0.5 the thawed layer moves half as far, the head as far. */
    kt_pathf(exe, sizeof exe, "%s/thaw_half", tmp);
    CU_ASSERT_EQUAL_FATAL(build(model, "", exe), 0);
    kt_pathf(dir, sizeof dir, "%s/grads", tmp);
    kt_pathf(ck0, sizeof ck0, "%s/start.safetensors", tmp);
    kt_pathf(ck1, sizeof ck1, "%s/half.safetensors", tmp);
    kt_pathf(ck2, sizeof ck2, "%s/full.safetensors", tmp);
    char *log = NULL;
    int rc = kt_run(&log, "'%s' train --steps 1 --quiet --dump-grads '%s' && '%s' train --epochs 1 --limit 64 "
                    "--quiet --lr 0 --save '%s' && '%s' train --epochs 1 --limit 64 --quiet --save '%s'",
                    exe, dir, exe, ck0, exe, ck1);
    if (rc) printf("%s\n", log);
    free(log);
    log = NULL;
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_TRUE(exists_in(dir, "feat.w1.grad.npy"));
    kt_pathf(exe, sizeof exe, "%s/thaw_full", tmp);
    CU_ASSERT_EQUAL_FATAL(build(model, "--set scale=1.0", exe), 0);
    rc = kt_run(&log, "'%s' train --epochs 1 --limit 64 --quiet --save '%s'", exe, ck2);
    free(log);
    log = NULL;
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    double half = max_delta(ck0, ck1, "feat.w1"), full = max_delta(ck0, ck2, "feat.w1");
    double head_half = max_delta(ck0, ck1, "head.weight"), head_full = max_delta(ck0, ck2, "head.weight");
    printf("  thawed layer moved %.3g (lr_scale 0.5) vs %.3g (1.0); head %.3g vs %.3g\n", half, full, head_half,
           head_full);
    CU_ASSERT(full > 0 && fabs(half / full - 0.5) < 1e-3);
    CU_ASSERT(head_full > 0 && fabs(head_half / head_full - 1.0) < 1e-3);
    /* errors */
    rc = kt_run(&log, "'%s' check '%s' --set thaw=-1", kt_kiln_bin(), model);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(log, "unfreeze= of onnx expects an integer >= 0");
    free(log);
}

static int row_argmax(const kn_npy *a, int r)
{
    const float *p = (const float *)a->data + r * a->dims[1];
    int best = 0;
    for (int c = 1; c < a->dims[1]; c++)
        if (p[c] > p[best]) best = c;
    return best;
}

static void test_mobilenetv2_models(void)
{
    const char *data = getenv("KILN_DATA");
    char onnx[4096], model[4096], exe[4096], ref[4096], got[4096];
    kt_pathf(onnx, sizeof onnx, "%s/mobilenetv2/mobilenetv2.onnx", data ? data : "");
    if (!data || !kt_file_exists(onnx)) {
        printf("SKIP mobilenetv2 model files: %s not found (set KILN_DATA to the shared data folder)\n", onnx);
        return;
    }
    const char *tmp = kt_tmp_dir("splice_mobilenetv2");
    kt_pathf(model, sizeof model, "%s/models/mobilenetv2.kiln", kt_src_dir());
    kt_pathf(exe, sizeof exe, "%s/mobilenetv2", tmp);
    check_contains(model, "", "frozen 3,487,822");
    CU_ASSERT_EQUAL_FATAL(build(model, "", exe), 0);
    char *log = NULL;
    int rc = kt_run(&log, "'%s' run --in 'x=%s/mobilenetv2/reference/input.npy' --out '%s/out'", exe, data, tmp);
    if (rc) printf("%s\n", log);
    free(log);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    kt_pathf(ref, sizeof ref, "%s/mobilenetv2/reference/logits.npy", data);
    kt_pathf(got, sizeof got, "%s/out/logits.npy", tmp);
    CU_ASSERT_EQUAL(kt_compare_npy("mobilenetv2.kiln", "logits", ref, got, 1e-3, 0.0), 0);
    kn_npy a, b;
    char err[512];
    if (kn_npy_read(ref, &a, err, sizeof err) == 0) {
        if (kn_npy_read(got, &b, err, sizeof err) == 0) {
            for (int r = 0; r < a.dims[0]; r++) CU_ASSERT_EQUAL(row_argmax(&a, r), row_argmax(&b, r));
            kn_npy_free(&b);
        }
        kn_npy_free(&a);
    }

    /* predict on the shared photos: SOURCES.md's top-1 labels, BMP included */
    static const struct {
        const char *file, *label;
    } shots[] = {{"dog.jpg", "Samoyed"},    {"cat.bmp", "Egyptian cat"},     {"parrot.jpg", "macaw"},
                  {"hot_dog.jpg", "hotdog"}, {"bird.bmp", "chickadee"}, {"grace_hopper.bmp", "mortarboard"}};
    for (size_t i = 0; i < sizeof shots / sizeof shots[0]; i++) {
        char want[256];
        rc = kt_run(&log, "'%s' predict --top 5 '%s/images/%s'", exe, data, shots[i].file);
        snprintf(want, sizeof want, "%s: %s ", shots[i].file, shots[i].label);
        CU_ASSERT_EQUAL(rc, 0);
        KT_ASSERT_CONTAINS(log, want);
        free(log);
        log = NULL;
    }

    kt_pathf(model, sizeof model, "%s/models/clothing_transfer.kiln", kt_src_dir());
    check_contains(model, "", "trainable 12,810 · frozen 2,206,822");
    /* --set unfreeze=2: conv_200 (410,880) and conv_197 (307,520) train too */
    check_contains(model, "--set unfreeze=2", "trainable 731,210 · frozen 1,488,422");
    kt_pathf(exe, sizeof exe, "%s/clothing_transfer", tmp);
    CU_ASSERT_EQUAL_FATAL(build(model, "", exe), 0);
    static float x[2 * 3 * 224 * 224];
    uint32_t s = 1;
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) x[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.f;
    char xp[4096];
    kt_pathf(xp, sizeof xp, "%s/x.npy", tmp);
    int64_t dims[4] = {2, 3, 224, 224};
    CU_ASSERT_EQUAL_FATAL(kn_npy_write(xp, KN_RT_F32, 4, dims, x, err, sizeof err), 0);
    write_labels(tmp, 2);
    rc = kt_run(&log, "'%s' run --in 'x=%s' --in 'y=%s/y.npy' --out '%s/ct'", exe, xp, tmp, tmp);
    if (rc) printf("%s\n", log);
    free(log);
    CU_ASSERT_EQUAL(rc, 0);
    kt_pathf(got, sizeof got, "%s/ct/head.npy", tmp);
    CU_ASSERT_TRUE(kt_file_exists(got));
    /* One real step on the clothing photos, when they are there. */
    char photos[4200];
    kt_pathf(photos, sizeof photos, "%s/clothing-small/train", data);
    if (kt_file_exists(photos)) {
        rc = kt_run(&log, "'%s' train --steps 1 --quiet", exe);
        if (rc) printf("clothing_transfer train --steps 1 -> %d: %s", rc, log ? log : "");
        CU_ASSERT_EQUAL(rc, 0);
        KT_ASSERT_CONTAINS(log, "classes: dress=0, hat=1");
    }
    free(log);

    kt_pathf(model, sizeof model, "%s/models/clothing_transfer_inner.kiln", kt_src_dir());
    check_contains(model, "", "trainable 129,110 · frozen 2,206,822");   /* 1280*100+100 + 100*10+10 */
    check_contains(model, "--set inner=10 --set dropout=0.2", "trainable 12,920 ·");
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"a cut ONNX graph computes numpy's values", test_cut_matches_numpy},
        {"frozen backbone: gradients and updates only in the head; --set", test_frozen_backbone_trains_head},
        {"unfreeze=K thaws the last layers, lr_scale slows them", test_unfreeze_last_layers},
        {"MobileNetV2 model files build and match the reference", test_mobilenetv2_models},
        CU_TEST_INFO_NULL,
    };
    return kt_main("onnx_splice", tests);
}

/* test_train_e2e.c — training through the whole compiler: autodiff, the
 * optimizer update phase, the generated train step and the runtime loop.
 *
 * Gradients are checked against central finite differences of the compiled
 * loss (`gradcheck`), and short training runs must learn: the first loss of
 * a fresh 10-class model is close to ln(10) and validation accuracy rises
 * far above chance.  On the compiled fmnist_mlp (batchnorm, dropout,
 * shuffling), 1 epoch + save + resume 1 epoch ends bit-identical to 2
 * epochs, and kill -9 in the middle of a save never damages the checkpoint
 * it replaces. */
#include "testlib.h"

#include "kn_safetensors.h"

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *tmp;
static char fmnist[4096], mnist[4096];

static int build(const char *model, const char *exe)
{
    char *out = NULL;
    int rc = kt_run(&out, "'%s' build '%s/%s' -o '%s'", kt_kiln_bin(), kt_src_dir(), model, exe);
    if (rc != 0) fprintf(stderr, "%s\n", out ? out : "");
    /* A model with a loss and an optimizer must get a train phase. */
    if (out && strstr(out, "without a train phase")) {
        fprintf(stderr, "%s\n", out);
        rc = 99;
    }
    free(out);
    return rc;
}

static bool have_fashion(void) { return access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) == 0; }

/* True (after saying so) when the test must skip for want of the data. */
static bool no_fashion(void)
{
    if (have_fashion()) return false;
    printf("\n  skipped: Debian dataset-fashion-mnist is not installed\n");
    return true;
}

static void test_build_with_train_phase(void)
{
    CU_ASSERT_EQUAL_FATAL(build("models/fmnist_mlp.kiln", fmnist), 0);
    CU_ASSERT_EQUAL_FATAL(build("models/mnist_mlp.kiln", mnist), 0);
    char *out = NULL;
    CU_ASSERT_EQUAL(kt_run(&out, "'%s' info", fmnist), 0);
    KT_ASSERT_CONTAINS(out, "train");
    free(out);
}

static void test_gradcheck_mlp(void)
{
    /* mnist_mlp: linear-relu-linear-cross_entropy. */
    char *out = NULL;
    int rc = kt_run(&out, "'%s' gradcheck --batch 4 --samples 12", mnist);
    if (rc != 0) fprintf(stderr, "%s\n", out);
    CU_ASSERT_EQUAL(rc, 0);
    KT_ASSERT_CONTAINS(out, "fc0.weight");
    KT_ASSERT_CONTAINS(out, "all parameters within tolerance");
    free(out);
}

static void test_gradcheck_batchnorm_dropout(void)
{
    /* fmnist_mlp: batchnorm (batch statistics) and dropout (a fixed mask,
     * since the step is held constant) in train mode. */
    char *out = NULL;
    int rc = kt_run(&out, "'%s' gradcheck --batch 16 --samples 12 --eps 3e-3", fmnist);
    if (rc != 0) fprintf(stderr, "%s\n", out);
    CU_ASSERT_EQUAL(rc, 0);
    KT_ASSERT_CONTAINS(out, "bn0.weight");
    KT_ASSERT_CONTAINS(out, "all parameters within tolerance");
    free(out);
}

static void test_gradcheck_cnn(void)
{
    /* mnist_cnn: conv2d, max_pool2d and flatten backward through the whole
     * compiler (kiln gradcheck builds the model itself). */
    char *out = NULL;
    char model[4200];
    snprintf(model, sizeof model, "%s/models/mnist_cnn.kiln", kt_src_dir());
    int rc = kt_run(&out, "'%s' gradcheck '%s' --samples 8", kt_kiln_bin(), model);
    if (rc != 0) fprintf(stderr, "%s\n", out);
    CU_ASSERT_EQUAL(rc, 0);
    KT_ASSERT_CONTAINS(out, "conv0.weight");
    KT_ASSERT_CONTAINS(out, "all parameters within tolerance");
    free(out);
}

static double json_num(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

static void test_short_training_learns(void)
{
    if (no_fashion()) return;
    char *out = NULL;
    int rc = kt_run(&out, "'%s' train --epochs 2 --limit 4000 --json --quiet 2>/dev/null", fmnist);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    /* Two epoch lines, then the test evaluation. */
    const char *e1 = strstr(out, "\"event\":\"epoch\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e1);
    const char *e2 = strstr(e1 + 1, "\"event\":\"epoch\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e2);
    double l1 = json_num(e1, "train_loss"), l2 = json_num(e2, "train_loss");
    double val = json_num(e2, "val_acc");
    printf("\n  epoch losses %.4f -> %.4f, val acc %.4f\n", l1, l2, val);
    CU_ASSERT(l2 < l1);
    CU_ASSERT(val > 0.70);
    const char *ev = strstr(out, "\"event\":\"eval\"");
    CU_ASSERT_PTR_NOT_NULL(ev);
    if (ev) CU_ASSERT(json_num(ev, "accuracy") > 0.70);
    free(out);
}

static void test_first_loss_is_ln10(void)
{
    /* One step on fresh weights: the loss of a 10-class model with
     * PyTorch's default init is close to ln(10) = 2.303. */
    if (no_fashion()) return;
    char *out = NULL;
    int rc = kt_run(&out, "'%s' train --steps 1 --limit 256 --json --quiet 2>/dev/null", mnist);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    const char *e1 = strstr(out, "\"train_loss\":");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e1);
    double l = json_num(out, "train_loss");
    printf("\n  first-step loss %.4f (ln 10 = 2.3026)\n", l);
    CU_ASSERT(fabs(l - log(10.0)) < 0.15);
    free(out);
}

static void test_resume_compiled_bit_identical(void)
{
    if (no_fashion()) return;
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/two.safetensors", tmp);
    snprintf(b, sizeof b, "%s/resumed.safetensors", tmp);
    const char *common = "--limit 2000 --batch 64 --seed 3 --quiet";
    char *out = NULL;
    CU_ASSERT_EQUAL_FATAL(kt_run(&out, "'%s' train --epochs 2 %s --save '%s'", fmnist, common, a), 0);
    free(out);
    CU_ASSERT_EQUAL_FATAL(kt_run(&out, "'%s' train --epochs 1 %s --save '%s'", fmnist, common, b), 0);
    CU_ASSERT_FALSE(kt_same_tensors(a, b, 0));
    free(out);
    CU_ASSERT_EQUAL_FATAL(kt_run(&out, "'%s' train --epochs 2 --limit 2000 --quiet --resume '%s' --save '%s'",
                                 fmnist, b, b), 0);
    /* Params, running statistics and Adam's moments, bit for bit. */
    CU_ASSERT(kt_same_tensors(a, b, 1));
    free(out);
}

/* Tensor `name` of two checkpoints: 1 same bits, 0 different, -1 missing. */
static int same_tensor(const char *a, const char *b, const char *name)
{
    kn_st_file fa, fb;
    char err[1024];
    if (kn_st_read(a, &fa, err, sizeof err)) return -1;
    if (kn_st_read(b, &fb, err, sizeof err)) {
        kn_st_free(&fa);
        return -1;
    }
    const kn_st_tensor *ta = kn_st_find(&fa, name), *tb = kn_st_find(&fb, name);
    int r = !ta || !tb ? -1 : ta->numel == tb->numel && memcmp(ta->data, tb->data, ta->numel * 4) == 0;
    kn_st_free(&fa);
    kn_st_free(&fb);
    return r;
}

static void test_frozen_layers(void)
{
    if (no_fashion()) return;
    const char *src = "model frz\n"
                      "data fashion_mnist(normalize=(0.2860, 0.3530))\n"
                      "input x: f32[N, 784]\nlabel y: i64[N]\n"
                      "fc0 = linear(x, 64, frozen=true)\n"
                      "bn0 = batchnorm(fc0, frozen=true)\n"
                      "fc1 = linear(relu(bn0), 10)\n"
                      "loss = cross_entropy(fc1, y)\noutput fc1\n"
                      "train { optimizer adam(lr=1e-2) batch 64 epochs 1 shuffle seed 0 }\n";
    char model[4200], exe[4200], a[4300], b[4300], dump[4300], p[4400];
    snprintf(model, sizeof model, "%s/frz.kiln", tmp);
    snprintf(exe, sizeof exe, "%s/frz", tmp);
    snprintf(a, sizeof a, "%s/frz1.safetensors", tmp);
    snprintf(b, sizeof b, "%s/frz2.safetensors", tmp);
    snprintf(dump, sizeof dump, "%s/frz-grads", tmp);
    CU_ASSERT_EQUAL_FATAL(kt_write_file(model, src, strlen(src)), 0);
    char *out = NULL;
    CU_ASSERT_EQUAL_FATAL(kt_run(&out, "'%s' check '%s'", kt_kiln_bin(), model), 0);
    KT_ASSERT_CONTAINS(out, "50,240 frozen");
    KT_ASSERT_CONTAINS(out, "128 frozen (+128 buf)");
    KT_ASSERT_CONTAINS(out, "trainable 650 · frozen 50,368 · buffers 128");
    KT_ASSERT_CONTAINS(out, "(train;");
    free(out);
    CU_ASSERT_EQUAL_FATAL(kt_run(&out, "'%s' build '%s' -o '%s'", kt_kiln_bin(), model, exe), 0);
    free(out);
    CU_ASSERT_EQUAL_FATAL(kt_run(&out, "'%s' train --limit 640 --quiet --no-cache --save '%s'", exe, a), 0);
    free(out);
    CU_ASSERT_EQUAL_FATAL(kt_run(&out, "'%s' train --limit 1280 --quiet --no-cache --save '%s'", exe, b), 0);
    /* Frozen: never touched, and a frozen batchnorm keeps its running
     * statistics (it is a fixed function); trainable: moved. */
    const char *frozen[] = {"fc0.weight", "fc0.bias", "bn0.weight", "bn0.bias", "bn0.running_mean",
                            "bn0.running_var"};
    for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(same_tensor(a, b, frozen[i]), 1);
    CU_ASSERT_EQUAL(same_tensor(a, b, "fc1.weight"), 0);
    /* No optimizer state and no gradient for frozen parameters. */
    CU_ASSERT_EQUAL(same_tensor(a, b, "optim.fc0.weight.m"), -1);
    CU_ASSERT_EQUAL(same_tensor(a, a, "optim.fc1.weight.m"), 1);
    free(out);
    CU_ASSERT_EQUAL_FATAL(kt_run(&out, "'%s' train --limit 64 --steps 1 --quiet --dump-grads '%s'", exe, dump), 0);
    snprintf(p, sizeof p, "%s/fc1.weight.grad.npy", dump);
    CU_ASSERT(kt_file_exists(p));
    snprintf(p, sizeof p, "%s/fc0.weight.grad.npy", dump);
    CU_ASSERT_FALSE(kt_file_exists(p));
    free(out);
}

/* A frozen prefix (linear + frozen batchnorm + relu) is computed once and
 * cached; the head (dropout + linear) trains on the cache.  Same numbers
 * as training the whole model every epoch, bit for bit. */
static void test_frozen_prefix_cache(void)
{
    if (no_fashion()) return;
    const char *src = "model cached\n"
                      "data fashion_mnist(normalize=(0.2860, 0.3530))\n"
                      "input x: f32[N, 784]\nlabel y: i64[N]\n"
                      "fc0 = linear(x, 128, frozen=true)\n"
                      "bn0 = batchnorm(fc0, frozen=true)\n"
                      "h = relu(bn0)\n"
                      "fc1 = linear(dropout(h, p=0.3), 10)\n"
                      "loss = cross_entropy(fc1, y)\noutput fc1\n"
                      "train { optimizer adam(lr=1e-2) batch 64 epochs 2 shuffle seed 0 }\n";
    char model[4200], exe[4200], a[4300], b[4300];
    snprintf(model, sizeof model, "%s/cached.kiln", tmp);
    snprintf(exe, sizeof exe, "%s/cached", tmp);
    snprintf(a, sizeof a, "%s/cached_on.safetensors", tmp);
    snprintf(b, sizeof b, "%s/cached_off.safetensors", tmp);
    CU_ASSERT_EQUAL_FATAL(kt_write_file(model, src, strlen(src)), 0);
    char *out = NULL;
    CU_ASSERT_EQUAL_FATAL(kt_run(&out, "'%s' build '%s' -o '%s'", kt_kiln_bin(), model, exe), 0);
    free(out);
    CU_ASSERT_EQUAL_FATAL(kt_run(&out, "'%s' info", exe), 0);
    KT_ASSERT_CONTAINS(out, "features");
    free(out);
    CU_ASSERT_EQUAL_FATAL(kt_run(&out, "'%s' train --limit 3000 --quiet --save '%s'", exe, a), 0);
    KT_ASSERT_CONTAINS(out, "frozen prefix computed once: 'h' (128 floats per sample) for 3000 train");
    char *cached_out = strdup(out);
    free(out);
    CU_ASSERT_EQUAL_FATAL(kt_run(&out, "'%s' train --limit 3000 --quiet --no-cache --save '%s'", exe, b), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "computed once"));
    CU_ASSERT(kt_same_tensors(a, b, 1));
    /* Same test accuracy line too. */
    const char *ta = strstr(cached_out, "test:"), *tb = strstr(out, "test:");
    CU_ASSERT(ta && tb && strncmp(ta, tb, 40) == 0);
    /* --augment and --dump-grads need the whole model; models without a
     * frozen prefix have no features phase. */
    free(out);
    CU_ASSERT_EQUAL(kt_run(&out, "'%s' train --limit 200 --epochs 1 --quiet --dump-grads '%s/cg'", exe, tmp), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "computed once"));
    free(out);
    CU_ASSERT_EQUAL(kt_run(&out, "'%s' info", fmnist), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "features"));
    /* A sweep computes the prefix once for all its runs. */
    free(out);
    CU_ASSERT_EQUAL(kt_run(&out, "'%s' sweep --lr 0.001,0.01 --epochs 1 --limit 1000", exe), 0);
    KT_ASSERT_CONTAINS(out, "frozen prefix computed once");
    KT_ASSERT_CONTAINS(out, "reused from the sweep's first run");
    KT_ASSERT_CONTAINS(out, "best: lr ");
    free(cached_out);
    free(out);
    /* bench --mode head times one step of the head on cached features;
     * a model without a frozen prefix says it has none. */
    CU_ASSERT_EQUAL(kt_run(&out, "'%s' bench --mode head --batch 64 --iters 3 --json", exe), 0);
    KT_ASSERT_CONTAINS(out, "\"mode\":\"head\"");
    free(out);
    CU_ASSERT_EQUAL(kt_run(&out, "'%s' bench --mode head --iters 1", fmnist), 1);
    KT_ASSERT_CONTAINS(out, "no frozen prefix");
    free(out);
}

/* kiln sweep: one executable per value of a compile-time param. */
static void test_kiln_sweep(void)
{
    if (no_fashion()) return;
    const char *src = "model swept\nparam hidden = 16\n"
                      "data fashion_mnist(normalize=(0.2860, 0.3530))\n"
                      "input x: f32[N, 784]\nlabel y: i64[N]\n"
                      "fc1 = linear(relu(linear(x, hidden)), 10)\n"
                      "loss = cross_entropy(fc1, y)\noutput fc1\n"
                      "train { optimizer adam(lr=1e-2) batch 64 epochs 1 shuffle seed 0 }\n";
    char model[4200];
    snprintf(model, sizeof model, "%s/swept.kiln", tmp);
    CU_ASSERT_EQUAL_FATAL(kt_write_file(model, src, strlen(src)), 0);
    char *out = NULL;
    int rc = kt_run(&out, "KILN_CACHE='%s/cache' '%s' sweep '%s' --set hidden=8,32 --lr 0.01 --limit 1000 "
                          "--out '%s/sw' 2>/dev/null", tmp, kt_kiln_bin(), model, tmp);
    if (rc) printf("%s\n", out ? out : "");
    CU_ASSERT_EQUAL(rc, 0);
    KT_ASSERT_CONTAINS(out, "| hidden=8 lr 0.01 |");
    KT_ASSERT_CONTAINS(out, "| hidden=32 lr 0.01 |");
    KT_ASSERT_CONTAINS(out, "best: hidden=");
    char p[4400];
    snprintf(p, sizeof p, "%s/sw/hidden=32/sweep.csv", tmp);
    CU_ASSERT(kt_file_exists(p));
    free(out);
    rc = kt_run(&out, "'%s' sweep '%s' --set hidden=8,32 --set hidden=1,2 2>&1", kt_kiln_bin(), model);
    CU_ASSERT_EQUAL(rc, 2);
    KT_ASSERT_CONTAINS(out, "only one --set may list several values");
    free(out);
}

/* Entries of dir whose name starts with prefix. */
static int count_prefixed(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d) closedir(d);
    return n;
}

static void test_kill_during_save(void)
{
    if (no_fashion()) return;
    char dir[4200], ck[4300], cmd[8800];
    snprintf(dir, sizeof dir, "%s/kill", tmp);
    mkdir(dir, 0755);
    snprintf(ck, sizeof ck, "%s/ck.safetensors", dir);
    /* 64 samples per epoch: the run spends much of its time saving. */
    snprintf(cmd, sizeof cmd, "exec '%s' train --epochs 100000 --limit 64 --quiet --save '%s' >/dev/null 2>&1",
             fmnist, ck);
    /* A good checkpoint exists first; every killed run overwrites it with
     * --save at each epoch. */
    char *out = NULL;
    CU_ASSERT_EQUAL_FATAL(kt_run(&out, "'%s' train --epochs 1 --limit 64 --quiet --save '%s'", fmnist, ck), 0);
    srand((unsigned)time(NULL));
    char leftover[4400];
    snprintf(leftover, sizeof leftover, "rm -f '%s'/.ck.safetensors.tmp-*", dir);
    free(out);
    kt_run(&out, "%s", leftover);
    int kills = 0, intact = 0, replaced = 0;
    long last_epoch = 1;
    for (int round = 0; round < 6; round++) {
        pid_t pid = fork();
        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0) {
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(127);
        }
        /* Kill it the moment its temp file appears: mid-save, before the
         * rename.  Every other round, a few ms later (mid-write or just
         * after the rename). */
        int before = count_prefixed(dir, ".ck.safetensors.tmp-");
        struct timespec tick = {0, 1000000L};
        for (int waited = 0; waited < 30000 && count_prefixed(dir, ".ck.safetensors.tmp-") == before; waited++)
            nanosleep(&tick, NULL);
        struct timespec extra = {0, (long)(round % 2) * (rand() % 20) * 1000000L};
        nanosleep(&extra, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        kills += WIFSIGNALED(status);
        kn_st_file f;
        char err[1024];
        int bad = kn_st_read(ck, &f, err, sizeof err);
        if (bad) printf("\n  round %d: damaged checkpoint: %s\n", round, err);
        CU_ASSERT_EQUAL(bad, 0);
        if (bad) continue;
        intact++;
        const char *ep = kn_st_meta(&f, "epoch");
        CU_ASSERT_PTR_NOT_NULL(ep);
        long e = ep ? atol(ep) : -1;
        replaced += e != last_epoch;
        last_epoch = e;
        CU_ASSERT(kn_st_find(&f, "optim.fc0.weight.m") != NULL);
        kn_st_free(&f);
    }
    /* A killed writer may leave its temp file behind; it is never the
     * checkpoint. */
    printf("\n  %d kills, checkpoint intact after %d, rewritten by %d of the runs, %d stray temp files\n", kills,
           intact, replaced, count_prefixed(dir, ".ck.safetensors.tmp-"));
    CU_ASSERT(kills >= 5);
    CU_ASSERT_EQUAL(intact, 6);
    CU_ASSERT(count_prefixed(dir, ".ck.safetensors.tmp-") >= 2); /* some kills did land mid-save */
    /* A later run resumes from what the killed ones left. */
    free(out);
    int rc = kt_run(&out, "'%s' train --epochs %ld --limit 64 --quiet --resume '%s'", fmnist, last_epoch + 1, ck);
    if (rc) printf("%s\n", out ? out : "");
    CU_ASSERT_EQUAL(rc, 0);
    free(out);
}

int main(void)
{
    tmp = kt_tmp_dir("train");
    snprintf(fmnist, sizeof fmnist, "%s/fmnist", tmp);
    snprintf(mnist, sizeof mnist, "%s/mnist", tmp);
    CU_TestInfo tests[] = {
        {"models build with a train phase", test_build_with_train_phase},
        {"gradcheck: mnist_mlp", test_gradcheck_mlp},
        {"gradcheck: fmnist_mlp (batchnorm, dropout)", test_gradcheck_batchnorm_dropout},
        {"gradcheck: mnist_cnn (conv2d, max_pool2d)", test_gradcheck_cnn},
        {"first loss of a fresh model is ln(10)", test_first_loss_is_ln10},
        {"two short epochs learn Fashion-MNIST", test_short_training_learns},
        {"resume of the compiled fmnist_mlp is bit-identical", test_resume_compiled_bit_identical},
        {"frozen=true layers: no gradient, no optimizer state, never change", test_frozen_layers},
        {"a frozen prefix is computed once and cached, same results", test_frozen_prefix_cache},
        {"kiln sweep over a compile-time param", test_kiln_sweep},
        {"kill -9 during saves never damages the checkpoint", test_kill_during_save},
        CU_TEST_INFO_NULL,
    };
    return kt_main("train_e2e", tests);
}

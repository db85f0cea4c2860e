/* test_runtime_idx.c — IDX .gz reader and the dataset splits, on the real
 * Fashion-MNIST files from Debian's dataset-fashion-mnist. */
#include "kn_data.h"
#include "kn_idx.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#define FM KN_DATA_FASHION_DIR
static char err[1024];

static void test_fashion_files(void)
{
    kn_idx img, lab;
    CU_ASSERT_FATAL(kn_idx_read(FM "/train-images-idx3-ubyte.gz", 3, &img, err, sizeof err) == 0);
    CU_ASSERT(img.dims[0] == 60000 && img.dims[1] == 28 && img.dims[2] == 28);
    double sum = 0;
    for (size_t i = 0; i < img.numel; i++) sum += img.data[i] / 255.0;
    double mean = sum / img.numel;
    /* torchvision's published Fashion-MNIST normalisation mean. */
    CU_ASSERT(fabs(mean - 0.2860) < 1e-3);
    kn_idx_free(&img);

    CU_ASSERT_FATAL(kn_idx_read(FM "/train-labels-idx1-ubyte.gz", 1, &lab, err, sizeof err) == 0);
    CU_ASSERT(lab.dims[0] == 60000);
    int hist[10] = {0}, bad = 0;
    for (size_t i = 0; i < lab.numel; i++) {
        if (lab.data[i] > 9) bad++;
        else hist[lab.data[i]]++;
    }
    CU_ASSERT(bad == 0);
    for (int c = 0; c < 10; c++) CU_ASSERT(hist[c] == 6000);
    kn_idx_free(&lab);

    CU_ASSERT_FATAL(kn_idx_read(FM "/t10k-images-idx3-ubyte.gz", 3, &img, err, sizeof err) == 0);
    CU_ASSERT(img.dims[0] == 10000);
    kn_idx_free(&img);
}

static void test_splits(void)
{
    kn_dataset tr, va, te;
    CU_ASSERT_FATAL(kn_data_open("fashion_mnist", NULL, "train", &tr, err, sizeof err) == 0);
    CU_ASSERT_FATAL(kn_data_open("fashion_mnist", NULL, "val", &va, err, sizeof err) == 0);
    CU_ASSERT_FATAL(kn_data_open("fashion_mnist", NULL, "test", &te, err, sizeof err) == 0);
    CU_ASSERT(tr.count == 55000 && va.count == 5000 && te.count == 10000);
    /* val is the tail of the train file: item 0 of val is item 55000. */
    kn_idx lab;
    CU_ASSERT_FATAL(kn_idx_read(FM "/train-labels-idx1-ubyte.gz", 1, &lab, err, sizeof err) == 0);
    CU_ASSERT(memcmp(va.labels, lab.data + 55000, 5000) == 0);
    CU_ASSERT(memcmp(tr.labels, lab.data, 55000) == 0);
    kn_idx_free(&lab);
    CU_ASSERT(te.labels[0] == 9); /* the first test image is an ankle boot */

    /* Features: pixel/255 then (v-mean)/std, in float32. */
    float f[784], norm[2] = {0.2860f, 0.3530f};
    kn_data_features(&te, norm, NULL, 0, 1, f);
    for (int k = 0; k < 784; k++) {
        float v = (float)te.images[k] / 255.0f;
        CU_ASSERT_FATAL(f[k] == (v - 0.2860f) / 0.3530f);
    }
    int64_t y[3];
    int idx[3] = {5, 0, 9999};
    kn_data_labels(&te, idx, 0, 3, y);
    CU_ASSERT(y[0] == te.labels[5] && y[1] == 9 && y[2] == te.labels[9999]);
    char nb[16];
    CU_ASSERT_STRING_EQUAL(kn_data_class_name("fashion_mnist", 9, nb, sizeof nb), "Ankle boot");
    CU_ASSERT_STRING_EQUAL(kn_data_class_name("mnist", 3, nb, sizeof nb), "3");
    kn_data_close(&tr);
    kn_data_close(&va);
    kn_data_close(&te);

    CU_ASSERT(kn_data_open("fashion_mnist", NULL, "dev", &tr, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "unknown split 'dev'");
    CU_ASSERT(kn_data_open("cifar", NULL, "test", &tr, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "unknown dataset kind 'cifar'");
    CU_ASSERT(kn_data_open("fashion_mnist", "/nonexistent", "test", &tr, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "--data /nonexistent: no such directory");
}

static void test_mnist_dir(void)
{
    char dir[4096];
    setenv("KILN_DATA", "/nonexistent-kiln-data", 1);
    if (kn_data_dir("mnist", NULL, dir, sizeof dir, err, sizeof err) != 0) {
        KT_ASSERT_CONTAINS(err, "mnist: no data directory");
        return; /* no MNIST on this machine */
    }
    kn_dataset te;
    CU_ASSERT_FATAL(kn_data_open("mnist", NULL, "test", &te, err, sizeof err) == 0);
    CU_ASSERT(te.count == 10000 && te.labels[0] == 7); /* MNIST's first test digit */
    kn_data_close(&te);
}

static void write_gz(const char *path, const void *data, size_t len)
{
    gzFile g = gzopen(path, "wb");
    gzwrite(g, data, (unsigned)len);
    gzclose(g);
}

static void test_bad_idx(void)
{
    const char *dir = kt_tmp_dir("idx");
    char p[4200];
    kn_idx a;
    /* A labels file claiming 100 items but holding 60. */
    unsigned char buf[8 + 100] = {0, 0, 8, 1, 0, 0, 0, 100};
    snprintf(p, sizeof p, "%s/short-labels-idx1-ubyte.gz", dir);
    write_gz(p, buf, 8 + 60);
    CU_ASSERT(kn_idx_read(p, 1, &a, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "short-labels-idx1-ubyte.gz: truncated IDX data (expected 100 bytes");
    /* The gzip stream itself cut short. */
    write_gz(p, buf, sizeof buf);
    size_t len;
    char *gz = kt_read_file(p, &len);
    kt_write_file(p, gz, len / 2);
    free(gz);
    CU_ASSERT(kn_idx_read(p, 1, &a, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "short-labels-idx1-ubyte.gz: truncated");
    /* Images read as labels: wrong magic. */
    CU_ASSERT(kn_idx_read(FM "/t10k-images-idx3-ubyte.gz", 1, &a, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "t10k-images-idx3-ubyte.gz: bad IDX magic 0x00000803");
    CU_ASSERT(kn_idx_read("/nonexistent/train-images-idx3-ubyte.gz", 3, &a, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "/nonexistent/train-images-idx3-ubyte.gz: cannot open");

    /* A dataset dir whose label count disagrees with its images. */
    unsigned char img[16 + 4 * 784] = {0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 28, 0, 0, 0, 28};
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte.gz", dir);
    write_gz(p, img, sizeof img);
    unsigned char lab[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3};
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte.gz", dir);
    write_gz(p, lab, sizeof lab);
    kn_dataset d;
    CU_ASSERT(kn_data_open("fashion_mnist", dir, "test", &d, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "t10k-labels-idx1-ubyte.gz: 3 labels but");
    /* And a missing train file. */
    CU_ASSERT(kn_data_open("fashion_mnist", dir, "train", &d, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "train-images-idx3-ubyte.gz: cannot open");
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"Fashion-MNIST files: counts, labels, pixel mean", test_fashion_files},
        {"train/val/test splits and features", test_splits},
        {"mnist directory search", test_mnist_dir},
        {"bad IDX files give clear errors", test_bad_idx},
        CU_TEST_INFO_NULL,
    };
    return kt_main("runtime_idx", tests);
}

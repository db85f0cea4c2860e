/* test_runtime_image.c — image decoding and preprocessing against
 * torchvision (goldens from tests/golden/gen_images.py: Resize(72),
 * CenterCrop(64), ToTensor, Normalize(ImageNet) on PIL images), image
 * errors, the image-folder dataset and its CLI (eval/predict through
 * kn_rt_main with a hand-written 3-class model), and augmentation.
 *
 * Tolerances (normalised units; one 8-bit level is 1/255/0.225 = 0.0174):
 *   full-size decodes: none (1e-6): the resampler is PIL's own fixed-point
 *     arithmetic, and libjpeg-turbo is the library PIL decodes with;
 *   DCT-scaled decodes (decoded shorter side >= 2 x resize; large.jpg at
 *     2/8, a worst case of fine texture at JPEG quality 40; the photos at
 *     3/8): max 0.25 (14 levels), mean 0.015 (measured 0.227 / 0.0127 on
 *     large.jpg, 0.0875 / 0.0063 on the photos). */
#include "kn_data.h"
#include "kn_image.h"
#include "kn_rt.h"
#include "npy.h"
#include "testlib.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RS 72
#define CR 64
#define PER (3 * CR * CR)
#define EXACT 1e-6

static const float IMAGENET[6] = {0.485f, 0.229f, 0.456f, 0.224f, 0.406f, 0.225f};

static const char *golden(const char *name, char *buf, size_t cap)
{
    kt_pathf(buf, cap, "%s/tests/golden/images/%s", kt_src_dir(), name);
    return buf;
}

#define DCT_MAX 0.25
#define DCT_MEAN 0.015

/* The dataset's pipeline on one file: DCT scaling down to 2 x resize, or
 * none with full. */
static int pipeline_ex(const char *path, int full, float *dst, int *dct_num, char *err, size_t cap)
{
    kn_img im, cr;
    kn_img_size orig;
    kn_img_decode_opts o = full ? (kn_img_decode_opts){0, 0, 0} : (kn_img_decode_opts){2 * RS, RS, CR};
    if (kn_image_decode(path, &o, &im, &orig, err, cap)) return -1;
    if (dct_num) *dct_num = im.dct_num;
    int rc = kn_image_resize_crop(&im, &orig, RS, CR, &cr, err, cap);
    kn_img_free(&im);
    if (rc) return -1;
    kn_image_to_chw(&cr, IMAGENET, dst);
    kn_img_free(&cr);
    return 0;
}

static int pipeline(const char *path, float *dst, int *dct_num, char *err, size_t cap)
{
    return pipeline_ex(path, 0, dst, dct_num, err, cap);
}

/* Max and mean |a-b| and the fraction of values that differ. */
static void diff(const float *a, const float *b, size_t n, double *mx, double *mean, double *frac)
{
    double s = 0, m = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        s += d;
        m = d > m ? d : m;
        k += d > 1e-6;
    }
    *mx = m;
    *mean = s / n;
    *frac = (double)k / n;
}

static void check_golden(const char *img, const char *npy, double max_tol, double mean_tol, double frac_tol,
                         int want_scaled)
{
    char p[4096], q[4096], err[1024];
    static float got[PER];
    kn_npy ref;
    int dct = 0;
    CU_ASSERT_FATAL(kn_npy_read(golden(npy, q, sizeof q), &ref, err, sizeof err) == 0);
    CU_ASSERT_FATAL(ref.numel == PER);
    if (pipeline(golden(img, p, sizeof p), got, &dct, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        CU_FAIL("decode failed");
    } else {
        double mx, mean, frac;
        diff(ref.data, got, PER, &mx, &mean, &frac);
        fprintf(stderr, "    %-10s dct %d/8  max|err| %.4f  mean|err| %.5f  differing %.2f%%\n", img, dct, mx, mean,
                100 * frac);
        CU_ASSERT(mx <= max_tol);
        CU_ASSERT(mean <= mean_tol);
        CU_ASSERT(frac <= frac_tol);
        CU_ASSERT(want_scaled ? dct < 8 : dct == 8);
    }
    kn_npy_free(&ref);
}

static void test_golden(void)
{
    check_golden("rgb.jpg", "rgb.npy", EXACT, EXACT, 0, 0);
    check_golden("rgb.png", "rgb_png.npy", EXACT, EXACT, 0, 0);
    check_golden("gray.jpg", "gray.npy", EXACT, EXACT, 0, 0);
    check_golden("cmyk.jpg", "cmyk.npy", EXACT, EXACT, 0, 0);
    check_golden("large.jpg", "large.npy", DCT_MAX, DCT_MEAN, 1.0, 1);
    check_golden("rgb.bmp", "rgb_bmp.npy", EXACT, EXACT, 0, 0);
}

/* Without DCT scaling the large image matches to one level too. */
static void test_large_full(void)
{
    char p[4096], q[4096], err[1024];
    static float got[PER];
    kn_npy ref;
    kn_img im, cr;
    kn_img_size orig;
    CU_ASSERT_FATAL(kn_npy_read(golden("large.npy", q, sizeof q), &ref, err, sizeof err) == 0);
    CU_ASSERT_FATAL(kn_image_decode(golden("large.jpg", p, sizeof p), NULL, &im, &orig, err, sizeof err) == 0);
    CU_ASSERT(im.dct_num == 8 && im.w == 1000 && im.h == 750);
    CU_ASSERT_FATAL(kn_image_resize_crop(&im, &orig, RS, CR, &cr, err, sizeof err) == 0);
    kn_image_to_chw(&cr, IMAGENET, got);
    CU_ASSERT(kt_compare_f32("large.jpg", "full-size decode", ref.data, got, PER, EXACT, 0) == 0);
    kn_img_free(&im);
    kn_img_free(&cr);
    kn_npy_free(&ref);
}

/* The real photos of photos.txt under $KILN_DATA (3 paths, each of 8192
 * bytes, in paths); 0 when the data is not there. */
static int photo_paths(char paths[3][8192])
{
    const char *data = getenv("KILN_DATA");
    char root[4096], list[4096];
    kt_pathf(root, sizeof root, "%s/clothing-small", data ? data : "/work/shared/data");
    struct stat st;
    if (stat(root, &st) != 0) {
        fprintf(stderr, "    SKIP real photos: %s not found (set KILN_DATA)\n", root);
        return 0;
    }
    char *txt = kt_read_file(golden("photos.txt", list, sizeof list), NULL);
    CU_ASSERT_FATAL(txt != NULL);
    int n = 0;
    for (char *save = NULL, *l = strtok_r(txt, "\n", &save); l && n < 3; l = strtok_r(NULL, "\n", &save))
        snprintf(paths[n++], 8192, "%s/../%s", root, l);
    free(txt);
    CU_ASSERT(n == 3);
    return n;
}

static void test_photos(void)
{
    static char paths[3][8192];
    char q[4096], err[1024], name[32];
    static float got[PER];
    int n = photo_paths(paths);
    for (int i = 0; i < n; i++) {
        kn_npy ref;
        snprintf(name, sizeof name, "photo%d.npy", i);
        CU_ASSERT_FATAL(kn_npy_read(golden(name, q, sizeof q), &ref, err, sizeof err) == 0);
        for (int full = 1; full >= 0; full--) {
            int dct;
            CU_ASSERT_FATAL(pipeline_ex(paths[i], full, got, &dct, err, sizeof err) == 0);
            double mx, mean, frac;
            diff(ref.data, got, PER, &mx, &mean, &frac);
            fprintf(stderr, "    photo%d dct %d/8  max|err| %.4f  mean|err| %.5f  differing %.2f%%\n", i, dct, mx, mean,
                    100 * frac);
            if (full) CU_ASSERT(mx <= EXACT);
            if (!full) CU_ASSERT(mx <= DCT_MAX && mean <= DCT_MEAN);
        }
        kn_npy_free(&ref);
    }
}

/* ---- the fast paths against the plain one ---- */

/* Bytes equal, or a message saying which path differs. */
static void same_bytes(const void *want, const void *got, size_t n, const char *path, int resize, int crop,
                       int level, const char *what)
{
    if (memcmp(want, got, n) == 0) return;
    fprintf(stderr, "    %s: %s differs from decode + resize (resize %d, crop %d, SIMD level %d)\n", path, what,
            resize, crop, level);
    CU_FAIL("fast path differs");
}

/* kn_image_load_crop (the window streamed through the resampler) and a
 * window decode + kn_image_resize_crop give the bytes of a whole decode +
 * resize with the scalar loops, at every SIMD level, from upscaling to
 * strong downscaling (many taps: the SSE2 fallbacks); to_chw too. */
static void check_fast_paths(const char *path)
{
    static const int sizes[][2] = {{RS, CR}, {256, 224}, {100, 100}, {150, 0}, {40, 33}, {7, 5}, {0, 48}};
    static float want[3 * 256 * 256], got[3 * 256 * 256];
    char err[1024];
    kn_img whole;
    kn_img_size sz;
    CU_ASSERT_FATAL(kn_image_decode(path, NULL, &whole, &sz, err, sizeof err) == 0);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int resize = sizes[s][0], crop = sizes[s][1];
        kn_img ref, win, out;
        kn_image_set_simd(0);
        if (kn_image_resize_crop(&whole, &sz, resize, crop, &ref, err, sizeof err)) continue; /* crop > image */
        size_t n = (size_t)ref.w * ref.h * 3;
        int chw = n <= sizeof want / sizeof want[0];
        if (chw) kn_image_to_chw(&ref, IMAGENET, want);
        kn_img_decode_opts o = {0, resize, crop};
        for (int level = 0; level <= 2; level++) {
            kn_image_set_simd(level);
            CU_ASSERT_FATAL(kn_image_resize_crop(&whole, &sz, resize, crop, &out, err, sizeof err) == 0);
            same_bytes(ref.px, out.px, n, path, resize, crop, level, "resize");
            if (chw) {
                kn_image_to_chw(&out, IMAGENET, got);
                same_bytes(want, got, n * sizeof(float), path, resize, crop, level, "to_chw");
            }
            kn_img_free(&out);
            CU_ASSERT_FATAL(kn_image_decode(path, &o, &win, NULL, err, sizeof err) == 0);
            CU_ASSERT_FATAL(kn_image_resize_crop(&win, &sz, resize, crop, &out, err, sizeof err) == 0);
            same_bytes(ref.px, out.px, n, path, resize, crop, level, "window decode + resize");
            kn_img_free(&win);
            kn_img_free(&out);
            if (crop <= 0) continue;
            uint8_t *b = malloc(n);
            CU_ASSERT_FATAL(b && kn_image_load_crop(path, &o, b, NULL, err, sizeof err) == 0);
            same_bytes(ref.px, b, n, path, resize, crop, level, "kn_image_load_crop");
            free(b);
        }
        kn_img_free(&ref);
    }
    kn_image_set_simd(2);
    kn_img_free(&whole);
}

static void test_fast_paths(void)
{
    static const char *const files[] = {"rgb.jpg", "gray.jpg", "cmyk.jpg", "large.jpg", "rgb.png", "rgb.bmp"};
    static char paths[3][8192];
    char p[4096];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) check_fast_paths(golden(files[i], p, sizeof p));
    int n = photo_paths(paths);
    for (int i = 0; i < n; i++) check_fast_paths(paths[i]);
}

/* ---- errors ---- */

static void expect_error(const char *path, const char *want)
{
    char err[1024];
    kn_img im;
    kn_img_size sz;
    int a = kn_image_decode(path, NULL, &im, &sz, err, sizeof err);
    CU_ASSERT(a != 0);
    KT_ASSERT_CONTAINS(err, path);
    KT_ASSERT_CONTAINS(err, want);
    CU_ASSERT(kn_image_probe(path, &sz, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, path);
    /* the streamed path (the dataset's) names the file too */
    static uint8_t crop[PER];
    kn_img_decode_opts o = {2 * RS, RS, CR};
    CU_ASSERT(kn_image_load_crop(path, &o, crop, &sz, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, path);
    KT_ASSERT_CONTAINS(err, want);
}

/* Writes the first `keep` bytes of a golden image (or `data`) to dir/name. */
static void put(const char *dir, const char *name, const char *from, long keep, const char *data, char *out,
                size_t cap)
{
    kt_pathf(out, cap, "%s/%s", dir, name);
    if (from) {
        char p[4096];
        size_t len;
        char *b = kt_read_file(golden(from, p, sizeof p), &len);
        CU_ASSERT_FATAL(b != NULL);
        CU_ASSERT_FATAL(kt_write_file(out, b, keep < 0 ? len : (size_t)keep < len ? (size_t)keep : len) == 0);
        free(b);
    } else {
        CU_ASSERT_FATAL(kt_write_file(out, data, strlen(data)) == 0);
    }
}

static void test_errors(void)
{
    const char *dir = kt_tmp_dir("image_errors");
    char p[4096];
    put(dir, "truncated.jpg", "rgb.jpg", 3000, NULL, p, sizeof p);
    expect_error(p, "truncated JPEG");
    put(dir, "header.jpg", "rgb.jpg", 100, NULL, p, sizeof p);
    expect_error(p, "truncated JPEG");
    put(dir, "truncated.png", "rgb.png", 5000, NULL, p, sizeof p);
    expect_error(p, "truncated PNG");
    put(dir, "text.jpg", NULL, 0, "hello, not a picture\n", p, sizeof p);
    expect_error(p, "not an image");
    put(dir, "empty.png", NULL, 0, "", p, sizeof p);
    expect_error(p, "empty file");
    put(dir, "pic.bmp", NULL, 0, "BM\x36\x10\0\0\0\0", p, sizeof p);
    expect_error(p, "corrupt BMP");
    put(dir, "truncated.bmp", "rgb.bmp", 2000, NULL, p, sizeof p);
    expect_error(p, "BMP");
    put(dir, "anim.gif", NULL, 0, "GIF89a\x01\0\x01\0", p, sizeof p);
    expect_error(p, "unsupported image format GIF");
    put(dir, "corrupt.jpg", NULL, 0, "\xff\xd8\xff\xe0garbage garbage garbage", p, sizeof p);
    expect_error(p, "JPEG");
    kt_pathf(p, sizeof p, "%s/missing.jpg", dir);
    expect_error(p, "cannot open");
}

/* ---- augmentation ---- */

static void test_augment(void)
{
    char p[4096], err[1024];
    kn_img im, a, b;
    CU_ASSERT_FATAL(kn_image_decode(golden("rgb.jpg", p, sizeof p), NULL, &im, NULL, err, sizeof err) == 0);
    int ba[5], bb[5], distinct = 0, flips = 0;
    for (int i = 0; i < 200; i++) {
        CU_ASSERT_FATAL(kn_image_augment(&im, 48, 7, 3, (uint64_t)i, &a, ba, err, sizeof err) == 0);
        CU_ASSERT_FATAL(kn_image_augment(&im, 48, 7, 3, (uint64_t)i, &b, bb, err, sizeof err) == 0);
        CU_ASSERT(memcmp(ba, bb, sizeof ba) == 0);
        CU_ASSERT(a.w == 48 && a.h == 48 && memcmp(a.px, b.px, 48 * 48 * 3) == 0);
        /* Inside the image; area in [0.08, 1] and ratio in [3/4, 4/3] up to rounding. */
        CU_ASSERT(ba[0] >= 0 && ba[1] >= 0 && ba[2] > 0 && ba[3] > 0);
        CU_ASSERT(ba[0] + ba[2] <= im.w && ba[1] + ba[3] <= im.h);
        double area = (double)ba[2] * ba[3] / ((double)im.w * im.h), r = (double)ba[2] / ba[3];
        CU_ASSERT(area >= 0.06 && area <= 1.0);
        CU_ASSERT(r >= 0.7 && r <= 1.45);
        flips += ba[4];
        kn_img_free(&b);
        CU_ASSERT_FATAL(kn_image_augment(&im, 48, 8, 3, (uint64_t)i, &b, bb, err, sizeof err) == 0);
        distinct += memcmp(ba, bb, sizeof ba) != 0;
        kn_img_free(&a);
        kn_img_free(&b);
    }
    CU_ASSERT(distinct > 190); /* another seed, other crops */
    CU_ASSERT(flips > 70 && flips < 130);
    kn_img_free(&im);
}

/* ---- the image-folder dataset and its CLI ---- */

/* Logit c = mean of channel c: a deterministic 3-class "model". */
#define LOGITS (PER * 4)
static void infer_run(kn_rt_ctx *ctx, int n)
{
    const float *x = (const float *)ctx->arena;
    float *z = (float *)(ctx->arena + (size_t)n * LOGITS);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) {
            double s = 0;
            for (int k = 0; k < CR * CR; k++) s += x[(size_t)i * PER + c * CR * CR + k];
            z[i * 3 + c] = (float)(s / (CR * CR));
        }
}
static const kn_rt_io IIO[] = {
    {"x", KN_RT_F32, 4, {-1, 3, CR, CR}, 1, PER, 0},
    {"logits", KN_RT_F32, 2, {-1, 3}, 1, 3, LOGITS},
};
static const kn_rt_io_role ROLES[] = {KN_RT_IO_INPUT, KN_RT_IO_OUTPUT};
static const kn_rt_phase INFER = {"infer", infer_run, LOGITS + 12, 0, 2, IIO, ROLES, 0, NULL, NULL, 0, NULL};
static kn_rt_model MODEL = {
    .name = "chanmean", .hash = "1mage", .target = "cpu", .summary = "",
    .infer = &INFER, .data_kind = "image_folder", .data_path = "ds", .labels = "",
    .resize = RS, .crop = CR, .n_normalize = 6, .normalize = IMAGENET, .batch = 4, .epochs = 1,
};

static char *out_txt, *err_txt;
#define cli(...) kt_rt_mainf(&MODEL, "chanmean", &out_txt, &err_txt, __VA_ARGS__)

/* root/ds/{train,val,test}/{blue,green,red}/ with copies of the goldens. */
static const char *make_tree(void)
{
    const char *root = kt_tmp_dir("image_folder");
    static const char *const split[] = {"train", "val", "test"}, *const cls[] = {"red", "green", "blue"};
    static const char *const img[] = {"rgb.jpg", "gray.jpg", "rgb.png", "cmyk.jpg"};
    char p[4096];
    for (int s = 0; s < 3; s++)
        for (int c = 0; c < 3; c++) {
            kt_pathf(p, sizeof p, "%s/ds/%s/%s", root, split[s], cls[c]);
            char cmd[4200];
            snprintf(cmd, sizeof cmd, "mkdir -p %s", p);
            CU_ASSERT_FATAL(kt_run(NULL, "%s", cmd) == 0);
            for (int k = 0; k <= c; k++) {
                char name[32], q[4096];
                snprintf(name, sizeof name, "%d%s", k, strrchr(img[(c + k) % 4], '.'));
                put(p, name, img[(c + k) % 4], -1, NULL, q, sizeof q);
            }
            char q[4096];
            put(p, "README.txt", NULL, 0, "not a sample\n", q, sizeof q); /* listing skips it */
        }
    return root;
}

static void test_dataset(void)
{
    const char *root = make_tree();
    char err[1024], p[4096];
    kn_dataset d;
    kn_data_opts o = {0, 0, 0};
    CU_ASSERT_FATAL(kn_data_open_model(&MODEL, &o, root, "val", &d, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(d.count, 6);
    CU_ASSERT_EQUAL(d.classes, 3);
    CU_ASSERT_EQUAL(d.channels, 3);
    char nb[16];
    CU_ASSERT_STRING_EQUAL(kn_data_dataset_class(&d, 0, nb, sizeof nb), "blue");
    CU_ASSERT_STRING_EQUAL(kn_data_dataset_class(&d, 2, nb, sizeof nb), "red");
    /* class-major, sorted: blue x3, green x2, red x1 */
    static const uint8_t want[6] = {0, 0, 0, 1, 1, 2};
    CU_ASSERT(memcmp(d.labels, want, 6) == 0);
    /* Prefetched and synchronous batches equal the one-file pipeline. */
    static float a[6 * PER], b[6 * PER], one[PER];
    kn_data_prefetch(&d, NULL, 0, 6);
    CU_ASSERT(kn_data_features(&d, NULL, NULL, 0, 6, a) == 0);
    int idx[2] = {5, 1};
    CU_ASSERT(kn_data_features(&d, NULL, idx, 0, 2, b) == 0); /* from the cache */
    CU_ASSERT(memcmp(b, a + 5 * PER, sizeof(float) * PER) == 0);
    CU_ASSERT(memcmp(b + PER, a + 1 * PER, sizeof(float) * PER) == 0);
    kt_pathf(p, sizeof p, "%s/ds/val/red/0.jpg", root);
    CU_ASSERT(pipeline(p, one, NULL, err, sizeof err) == 0);
    CU_ASSERT(memcmp(one, a + 5 * PER, sizeof one) == 0);
    kn_data_close(&d);

    /* a split folder named validation/ wins over val/; a missing one fails */
    CU_ASSERT(kt_run(NULL, "cp -r %s/ds/val %s/ds/validation && rm -r %s/ds/validation/red", root, root, root) == 0);
    CU_ASSERT_FATAL(kn_data_open_model(&MODEL, &o, root, "val", &d, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(d.count, 5);
    kn_data_close(&d);
    CU_ASSERT(kn_data_open_model(&MODEL, &o, root, "dev", &d, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "unknown split 'dev'");
    /* --data may also name the dataset folder itself */
    kt_pathf(p, sizeof p, "%s/ds", root);
    CU_ASSERT_FATAL(kn_data_open_model(&MODEL, &o, p, "test", &d, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(d.count, 6);
    kn_data_close(&d);

    /* A bad file fails the open, naming it; skip_bad leaves it out. */
    char q[4096];
    kt_pathf(p, sizeof p, "%s/ds/test/green", root);
    put(p, "9.jpg", "rgb.jpg", 2000, NULL, q, sizeof q);
    CU_ASSERT(kn_data_open_model(&MODEL, &o, root, "test", &d, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "green/9.jpg: truncated JPEG");
    KT_ASSERT_CONTAINS(err, "--skip-bad");
    o.skip_bad = 1;
    CU_ASSERT_FATAL(kn_data_open_model(&MODEL, &o, root, "test", &d, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(d.count, 6);
    CU_ASSERT_EQUAL(kn_imgset_skipped(d.imgs), 1);
    kn_data_close(&d);

    /* Augmented train batches: same seed and epoch, same features. */
    o = (kn_data_opts){0, 1, 42};
    CU_ASSERT_FATAL(kn_data_open_model(&MODEL, &o, root, "train", &d, err, sizeof err) == 0);
    kn_data_set_epoch(&d, 1);
    CU_ASSERT(kn_data_features(&d, NULL, NULL, 0, 6, a) == 0);
    kn_data_prefetch(&d, NULL, 0, 6);
    CU_ASSERT(kn_data_features(&d, NULL, NULL, 0, 6, b) == 0);
    CU_ASSERT(memcmp(a, b, sizeof(float) * 6 * PER) == 0);
    kn_data_set_epoch(&d, 2);
    CU_ASSERT(kn_data_features(&d, NULL, NULL, 0, 6, b) == 0);
    CU_ASSERT(memcmp(a, b, sizeof(float) * 6 * PER) != 0);
    kn_data_close(&d);
}

static void test_cli(void)
{
    const char *root = make_tree();
    CU_ASSERT_EQUAL(cli("eval --data %s --split val --batch 4", root), 0);
    KT_ASSERT_CONTAINS(out_txt, "classes: blue=0, green=1, red=2");
    KT_ASSERT_CONTAINS(out_txt, "val: accuracy");
    KT_ASSERT_CONTAINS(out_txt, "(6 samples");
    char p[4096], q[4096];
    kt_pathf(p, sizeof p, "%s/ds/test/red", root);
    put(p, "bad.jpg", NULL, 0, "nope", q, sizeof q);
    CU_ASSERT_EQUAL(cli("eval --data %s", root), 1);
    KT_ASSERT_CONTAINS(err_txt, "red/bad.jpg: not an image");
    CU_ASSERT_EQUAL(cli("eval --data %s --skip-bad --json", root), 0);
    KT_ASSERT_CONTAINS(out_txt, "\"skipped\":1");
    KT_ASSERT_CONTAINS(err_txt, "1 unreadable skipped");

    /* predict: class-folder labels, top-K, JSON */
    kt_pathf(p, sizeof p, "%s/tests/golden/images/rgb.jpg", kt_src_dir());
    CU_ASSERT_EQUAL(cli("predict --data %s --top 2 %s", root, p), 0);
    KT_ASSERT_CONTAINS(out_txt, "rgb.jpg:");
    CU_ASSERT_EQUAL(cli("predict --data %s --top 3 --json %s", root, p), 0);
    KT_ASSERT_CONTAINS(out_txt, "{\"event\":\"predict\",\"file\":\"");
    KT_ASSERT_CONTAINS(out_txt, "\"top\":[{\"label\":\"");
    KT_ASSERT_CONTAINS(out_txt, "\"prob\":");
    /* the winning label is the channel with the largest mean */
    static float x[PER];
    char err[1024];
    CU_ASSERT_FATAL(pipeline(p, x, NULL, err, sizeof err) == 0);
    double m[3] = {0, 0, 0};
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < CR * CR; k++) m[c] += x[c * CR * CR + k];
    int best = m[1] > m[0] ? 1 : 0;
    best = m[2] > m[best] ? 2 : best;
    static const char *const names[] = {"{\"label\":\"blue\"", "{\"label\":\"green\"", "{\"label\":\"red\""};
    KT_ASSERT_CONTAINS(out_txt, names[best]);
    /* a labels file under the data root wins over folder names */
    kt_pathf(q, sizeof q, "%s/labels.txt", root);
    CU_ASSERT_FATAL(kt_write_file(q, "zero\none\ntwo\n", 13) == 0);
    MODEL.labels = "labels.txt";
    CU_ASSERT_EQUAL(cli("predict --data %s --top 3 %s", root, p), 0);
    KT_ASSERT_CONTAINS(out_txt, "zero");
    MODEL.labels = "";
    kt_pathf(q, sizeof q, "%s/nothing.jpg", root);
    CU_ASSERT_EQUAL(cli("predict --data %s %s", root, q), 1);
    KT_ASSERT_CONTAINS(err_txt, "nothing.jpg: cannot open");
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"decode + resize + crop + normalize vs torchvision", test_golden},
        {"large JPEG without DCT scaling", test_large_full},
        {"real clothing photos vs torchvision", test_photos},
        {"window decode, streamed load, SIMD levels = plain decode + resize", test_fast_paths},
        {"corrupt, truncated, non-image files", test_errors},
        {"augmentation: deterministic, in bounds", test_augment},
        {"image-folder dataset: classes, splits, cache, skip-bad", test_dataset},
        {"eval / predict on image folders", test_cli},
        CU_TEST_INFO_NULL,
    };
    int rc = kt_main("runtime_image", tests);
    free(out_txt);
    free(err_txt);
    return rc;
}

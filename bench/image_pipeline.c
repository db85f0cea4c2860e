/* image_pipeline.c — times kiln's image preprocessing (decode, resize,
 * center crop, normalize) per image and optionally writes each result as
 * OUT/NNN.npy (f32 [3,crop,crop]) for bench/image_pipeline.py to compare
 * with torchvision's PIL pipeline.  One thread, files read from the page
 * cache after a warm-up pass, like the Python side.
 *
 * Default: the path the image-folder dataset takes for eval and feature
 * caching, kn_image_load_crop: the JPEG window the crop reads is decoded
 * (DCT-scaled while the shorter side stays >= 2 x resize) and streamed row
 * by row through resize + crop.  --window: the same window decoded into an
 * image, then kn_image_resize_crop (the same work in two timed stages);
 * --full: whole pictures decoded, then resized.  --min-short N sets the
 * DCT-scaling limit (0: none).  Prints the median over --repeat passes of
 * the per-image time and of its stages: decode (file read included; with
 * the default, resize + crop too), resize + crop, to CHW floats. */
#include "kn_image.h"
#include "kn_rt.h"
#include "kn_rt_time.h"
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float IMAGENET[6] = {0.485f, 0.229f, 0.456f, 0.224f, 0.406f, 0.225f};

typedef enum { STREAM, WINDOW, FULL } mode;

typedef struct {
    int resize, crop;
    mode m;
    kn_img_decode_opts o;
    const char *out;         /* write NNN.npy here (pass 0) */
    float *chw;
    uint8_t *crop_px;        /* STREAM's output, reused */
} cfg;

/* One pass over the files; st[0..2] += stage times in ms. */
static int pass(const cfg *c, char **files, int n, int write, double st[3])
{
    char err[1024];
    for (int i = 0; i < n; i++) {
        kn_img im, cr = {.w = c->crop, .h = c->crop, .px = c->crop_px};
        kn_img_size sz;
        double t0 = kn_rt_now_ms(), t1 = t0;
        if (c->m == STREAM) { /* decode and resize in one: all of it counts as decode */
            if (kn_image_load_crop(files[i], &c->o, cr.px, &sz, err, sizeof err))
                return fprintf(stderr, "%s\n", err), 1;
            t1 = kn_rt_now_ms();
        } else {
            if (kn_image_decode(files[i], &c->o, &im, &sz, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
            t1 = kn_rt_now_ms();
            int rc = kn_image_resize_crop(&im, &sz, c->resize, c->crop, &cr, err, sizeof err);
            kn_img_free(&im);
            if (rc) return fprintf(stderr, "%s: %s\n", files[i], err), 1;
        }
        double t2 = kn_rt_now_ms();
        kn_image_to_chw(&cr, IMAGENET, c->chw);
        double t3 = kn_rt_now_ms();
        st[0] += t1 - t0;
        st[1] += t2 - t1;
        st[2] += t3 - t2;
        if (write && c->out) {
            char p[4096];
            int64_t dims[3] = {3, c->crop, c->crop};
            snprintf(p, sizeof p, "%s/%03d.npy", c->out, i);
            if (kn_npy_write(p, KN_RT_F32, 3, dims, c->chw, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
        }
        if (c->m != STREAM) kn_img_free(&cr);
    }
    return 0;
}

int main(int argc, char **argv)
{
    cfg c = {256, 224, STREAM, {0, 0, 0}, NULL, NULL, NULL};
    int repeat = 5, min_short = -1, a = 1;
    for (; a < argc && strncmp(argv[a], "--", 2) == 0; a++) {
        if (!strcmp(argv[a], "--full") || !strcmp(argv[a], "--window")) {
            c.m = argv[a][2] == 'f' ? FULL : WINDOW;
            continue;
        }
        if (a + 1 >= argc) break;
        if (!strcmp(argv[a], "--resize")) c.resize = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--crop")) c.crop = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--min-short")) min_short = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--repeat")) repeat = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--out")) c.out = argv[++a];
        else return fprintf(stderr, "unknown option %s\n", argv[a]), 2;
    }
    int n = argc - a;
    if (n <= 0 || repeat < 1)
        return fprintf(stderr, "usage: image_pipeline [--window|--full] [--min-short N] [--repeat R] [--out DIR] "
                               "FILE...\n"),
               2;
    /* The dataset's policy (kn_imgset.c): DCT scaling down to 2 x resize. */
    c.o.min_short = min_short >= 0 ? min_short : 2 * c.resize;
    if (c.m != FULL) c.o.resize = c.resize, c.o.crop = c.crop;
    c.chw = malloc(sizeof(float) * 3 * c.crop * c.crop);
    c.crop_px = malloc((size_t)3 * c.crop * c.crop);
    double *t[5];
    for (int k = 0; k < 5; k++) t[k] = calloc((size_t)repeat, sizeof(double));
    for (int r = 0; r <= repeat; r++) { /* pass 0 warms the page cache */
        double st[3] = {0, 0, 0}, cpu0 = kn_rt_cpu_ms();
        if (pass(&c, argv + a, n, r == 0, st)) return 1;
        if (r == 0) continue;
        for (int k = 0; k < 3; k++) t[k][r - 1] = st[k] / n;
        t[3][r - 1] = (st[0] + st[1] + st[2]) / n;
        t[4][r - 1] = (kn_rt_cpu_ms() - cpu0) / n;
    }
    printf("decode_ms %.4f resize_crop_ms %.4f to_chw_ms %.4f\n", kn_rt_median(t[0], repeat),
           kn_rt_median(t[1], repeat), kn_rt_median(t[2], repeat));
    printf("kiln_ms_per_image %.4f\n", kn_rt_median(t[3], repeat));
    printf("kiln_cpu_ms_per_image %.4f\n", kn_rt_median(t[4], repeat));
    for (int k = 0; k < 5; k++) free(t[k]);
    free(c.chw);
    free(c.crop_px);
    return 0;
}

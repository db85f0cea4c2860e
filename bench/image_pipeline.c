/* image_pipeline.c — times kiln's image preprocessing (decode, resize,
 * center crop, normalize) per image and optionally writes each result as
 * OUT/NNN.npy (f32 [3,crop,crop]) for bench/image_pipeline.py to compare
 * with torchvision's PIL pipeline.  One thread, files read from the page
 * cache after a warm-up pass, like the Python side. */
#include "kn_image.h"
#include "kn_rt.h"
#include "kn_rt_time.h"
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float IMAGENET[6] = {0.485f, 0.229f, 0.456f, 0.224f, 0.406f, 0.225f};

int main(int argc, char **argv)
{
    int resize = 256, crop = 224, min_short = 0, repeat = 3, a = 1;
    const char *out = NULL;
    for (; a < argc && strncmp(argv[a], "--", 2) == 0; a += 2) {
        if (a + 1 >= argc) break;
        if (!strcmp(argv[a], "--resize")) resize = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--crop")) crop = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--min-short")) min_short = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--repeat")) repeat = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--out")) out = argv[a + 1];
        else return fprintf(stderr, "unknown option %s\n", argv[a]), 2;
    }
    int n = argc - a;
    if (n <= 0) return fprintf(stderr, "usage: image_pipeline [--min-short N] [--out DIR] FILE...\n"), 2;
    float *chw = malloc(sizeof(float) * 3 * crop * crop);
    char err[1024];
    double best = 1e30;
    kn_img_decode_opts o = {min_short};
    for (int r = 0; r < repeat + 1; r++) { /* pass 0 warms the page cache */
        double t0 = kn_rt_now_ms();
        for (int i = 0; i < n; i++) {
            kn_img im, c;
            kn_img_size sz;
            if (kn_image_decode(argv[a + i], &o, &im, &sz, err, sizeof err) ||
                kn_image_resize_crop(&im, &sz, resize, crop, &c, err, sizeof err))
                return fprintf(stderr, "%s\n", err), 1;
            kn_image_to_chw(&c, IMAGENET, chw);
            if (out && r == 0) {
                char p[4096];
                int64_t dims[3] = {3, crop, crop};
                snprintf(p, sizeof p, "%s/%03d.npy", out, i);
                if (kn_npy_write(p, KN_RT_F32, 3, dims, chw, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
            }
            kn_img_free(&im);
            kn_img_free(&c);
        }
        double ms = (kn_rt_now_ms() - t0) / n;
        if (r > 0 && ms < best) best = ms;
    }
    printf("kiln_ms_per_image %.4f\n", best);
    free(chw);
    return 0;
}

/* kn_image.h — image files to model inputs: JPEG (libjpeg-turbo) and PNG
 * (libpng) decoding to 8-bit RGB, then the torchvision pipeline
 *   Resize(resize) -> CenterCrop(crop) -> ToTensor -> Normalize(mean, std)
 * on PIL images, reproduced exactly for full-size decodes:
 *   - resize is PIL's separable ImagingResample with the bilinear (triangle)
 *     filter, whose support widens with the downscale factor (antialiasing),
 *     in PIL's own fixed point (22-bit coefficients, each pass rounded to
 *     8 bits), so a full-size decode gives PIL's pixels exactly;
 *   - the shorter side becomes `resize`, the longer int(resize*long/short),
 *     the crop offset round((size - crop) / 2) with Python's half-to-even.
 * Only the output pixels inside the crop are computed (same values: every
 * output pixel depends on its own filter window only), and with
 * kn_image_load_crop only the JPEG rows and (iMCU-aligned) columns those
 * filter windows read are decoded, each row going straight through the
 * horizontal pass: the same pixels again.  Both passes run on SSE2, or
 * AVX2 where the CPU has it (the same integers as the scalar loops).
 *
 * DCT-scaled decoding (kn_img_decode_opts.min_short) is the one inexact
 * option: the IDCT's own low-pass replaces part of PIL's filter.
 *
 * Training augmentation is torchvision's RandomResizedCrop(size, scale
 * (0.08, 1), ratio (3/4, 4/3)) + RandomHorizontalFlip, with the random
 * numbers drawn from kn_rt_uniform so a (seed, stream, index) gives the same
 * crop on every run.
 *
 * Not here: other formats (BMP, GIF, WebP: an "unsupported" error), EXIF
 * orientation (PIL ignores it too), colour management. */
#ifndef KN_IMAGE_H
#define KN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* 8-bit RGB, rows of w*3 bytes, no padding.  A decode may hold only a
 * window of the image: px is then the w x h rectangle at (x0, y0) of the
 * full_w x full_h decoded picture (kn_img_decode_opts.resize/crop). */
typedef struct {
    int w, h;
    uint8_t *px;
    int dct_num;             /* decoded at dct_num/8 of the file's size (8: full) */
    int x0, y0;              /* the window's place in the decoded picture */
    int full_w, full_h;      /* the decoded picture's size (w, h when whole) */
} kn_img;

/* Decoding options. */
typedef struct {
    /* > 0: a JPEG may be decoded at a reduced size M/8 (libjpeg-turbo's DCT
     * scaling) as long as its shorter side stays >= min_short; 0 = full size. */
    int min_short;
    /* resize > 0: the picture is only for kn_image_resize_crop(resize, crop),
     * so a JPEG decodes just the source window that crop's filter taps read
     * (libjpeg-turbo's jpeg_crop_scanline / jpeg_skip_scanlines, stopping
     * after the last row needed): the same pixels, less work.  Data past the
     * window is not decoded, so a corrupt tail goes unnoticed; a missing
     * end-of-image marker is still an error. */
    int resize, crop;
} kn_img_decode_opts;

/* Sizes of the source image before any DCT scaling. */
typedef struct {
    int w, h;
} kn_img_size;

void kn_img_free(kn_img *im);

/* Reads and decodes `path`.  Errors name the file: not found, empty, not an
 * image, unsupported format, corrupt, truncated.  *orig (may be NULL)
 * receives the size the file declares, which geometry must use even when
 * the pixels were DCT-scaled. */
int kn_image_decode(const char *path, const kn_img_decode_opts *o, kn_img *out, kn_img_size *orig,
                    char *err, size_t errcap);

/* kn_image_decode + kn_image_resize_crop(o->resize, o->crop) in one go,
 * the same pixels, into crop (o->crop^2 * 3 bytes, RGB; o->resize 0: no
 * resize).  A JPEG streams:
 * each decoded row of the window goes straight through the resampler's
 * horizontal pass, so no decoded picture is stored.  Errors name the file. */
int kn_image_load_crop(const char *path, const kn_img_decode_opts *o, uint8_t *crop, kn_img_size *orig, char *err,
                       size_t errcap);

/* Cheap validity check without decoding the pixels: the header parses and
 * the file is not truncated (JPEG: an end-of-image marker near the end; PNG:
 * an IEND chunk).  Errors as kn_image_decode. */
int kn_image_probe(const char *path, kn_img_size *size, char *err, size_t errcap);

/* Resize so the shorter side of the original (orig, or im's size if NULL)
 * is `resize`, then center crop `crop` x `crop` (crop 0: no crop; resize 0:
 * no resize).  `im` may be a DCT-scaled decode of an orig-sized image: the
 * filter maps it onto the same output grid. */
int kn_image_resize_crop(const kn_img *im, const kn_img_size *orig, int resize, int crop, kn_img *out,
                         char *err, size_t errcap);

/* RandomResizedCrop(size) + RandomHorizontalFlip(0.5), drawing from
 * kn_rt_uniform(seed, stream, index*16 + k).  *box (may be NULL) gets the
 * crop (x, y, w, h) in im's pixels and box[4] = flipped. */
int kn_image_augment(const kn_img *im, int size, uint64_t seed, uint64_t stream, uint64_t index, kn_img *out,
                     int box[5], char *err, size_t errcap);

/* HWC u8 -> CHW f32: v/255, then (v - mean[c]) / std[c] when norm (mean,
 * std pairs, 3 of them) is non-NULL; float32 in torchvision's order. */
void kn_image_to_chw(const kn_img *im, const float *norm, float *dst);

/* Caps the SIMD the resampler and kn_image_to_chw use: 0 the portable
 * scalar loops, 1 SSE2, 2 AVX2 (the default: the best the CPU has).  All
 * give the same bytes; tests compare them.  Not thread-safe: set it before
 * decoding starts. */
void kn_image_set_simd(int level);

/* Output size of Resize(resize) for a w x h image (torchvision's rule). */
void kn_image_resized_size(int w, int h, int resize, int *ow, int *oh);

#endif

/* kn_image.c — see kn_image.h.  Decoding is the libraries' job; what is
 * ours is matching PIL: its colour conversions, its resample filter and its
 * rounding, so features agree with a torchvision pipeline. */
#include "kn_image.h"
#include "kn_rt.h"
#include "kn_rt_err.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stb/stb_image.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <jerror.h>
#include <jpeglib.h>
#include <stdlib.h>
#include <string.h>

void kn_img_free(kn_img *im)
{
    free(im->px);
    memset(im, 0, sizeof *im);
}

static int img_alloc(kn_img *im, int w, int h, char *err, size_t errcap)
{
    im->w = w;
    im->h = h;
    im->dct_num = 8;
    im->px = malloc((size_t)w * h * 3 + 1);
    return im->px ? 0 : kn_rt_errf(err, errcap, "out of memory for a %dx%d image", w, h);
}

/* ---- files ---- */

static int read_all(const char *path, unsigned char **buf, size_t *len, char *err, size_t errcap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return kn_rt_errf(err, errcap, "%s: cannot open: %s", path, strerror(errno));
    unsigned char *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            unsigned char *nb = realloc(b, cap);
            if (!nb) {
                free(b);
                fclose(f);
                return kn_rt_errf(err, errcap, "%s: out of memory", path);
            }
            b = nb;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return kn_rt_errf(err, errcap, "%s: read error", path);
    }
    *buf = b;
    *len = n;
    return 0;
}

typedef enum { FMT_NONE, FMT_JPEG, FMT_PNG, FMT_BMP } img_fmt;

/* The format from the magic bytes; other known formats get a name for the
 * "unsupported" message. */
static img_fmt sniff(const unsigned char *b, size_t n, const char **other)
{
    *other = NULL;
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return FMT_JPEG;
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return FMT_PNG;
    if (n >= 2 && memcmp(b, "BM", 2) == 0) return FMT_BMP;
    if (n >= 4 && memcmp(b, "GIF8", 4) == 0) *other = "GIF";
    else if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) *other = "WebP";
    else if (n >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0)) *other = "TIFF";
    return FMT_NONE;
}

static int fmt_error(const char *path, size_t n, const char *other, char *err, size_t errcap)
{
    if (n == 0) return kn_rt_errf(err, errcap, "%s: empty file, not an image", path);
    if (other)
        return kn_rt_errf(err, errcap, "%s: unsupported image format %s (JPEG, PNG or BMP only)", path, other);
    return kn_rt_errf(err, errcap, "%s: not an image (no JPEG, PNG or BMP signature)", path);
}

/* ---- JPEG ---- */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int eof;                 /* libjpeg reached the end of data mid-image */
} jpeg_err;

static void jpeg_on_error(j_common_ptr ci)
{
    longjmp(((jpeg_err *)ci->err)->jb, 1);
}

/* libjpeg pads a truncated scan with grey and only warns; PIL refuses such
 * files ("image file is truncated"), so do we.  Other warnings (stray bytes
 * between markers) are tolerated as PIL tolerates them. */
static void jpeg_on_message(j_common_ptr ci, int level)
{
    jpeg_err *e = (jpeg_err *)ci->err;
    if (level < 0 && e->pub.msg_code == JWRN_JPEG_EOF) e->eof = 1;
}

static int jpeg_fail(const char *path, j_decompress_ptr ci, char *err, size_t errcap)
{
    char msg[JMSG_LENGTH_MAX];
    ci->err->format_message((j_common_ptr)ci, msg);
    return kn_rt_errf(err, errcap, "%s: corrupt JPEG: %s", path, msg);
}

/* Smallest M/8 keeping the shorter output side >= min_short. */
static void jpeg_pick_scale(j_decompress_ptr ci, int min_short)
{
    ci->scale_denom = 8;
    ci->scale_num = 8;
    if (min_short <= 0) return;
    for (unsigned num = 1; num < 8; num++) {
        ci->scale_num = num;
        jpeg_calc_output_dimensions(ci);
        JDIMENSION s = ci->output_width < ci->output_height ? ci->output_width : ci->output_height;
        if ((int)s >= min_short) return;
    }
    ci->scale_num = 8;
}

/* PIL's cmyk2rgb: (255 - k) scaled by (255 - c), with its MULDIV255. */
static void cmyk_to_rgb(const uint8_t *in, uint8_t *out, int w, int inverted)
{
    for (int x = 0; x < w; x++) {
        int c[4];
        for (int i = 0; i < 4; i++) c[i] = inverted ? 255 - in[4 * x + i] : in[4 * x + i];
        int nk = 255 - c[3];
        for (int i = 0; i < 3; i++) {
            int t = c[i] * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            out[3 * x + i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

static int jpeg_decode(const char *path, const unsigned char *buf, size_t len, int min_short, int header_only,
                       kn_img *out, kn_img_size *orig, char *err, size_t errcap)
{
    struct jpeg_decompress_struct ci;
    jpeg_err je;
    uint8_t *volatile cmyk = NULL; /* freed after a longjmp */
    memset(out, 0, sizeof *out);
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpeg_on_error;
    je.pub.emit_message = jpeg_on_message;
    je.eof = 0;
    if (setjmp(je.jb)) {
        int rc = jpeg_fail(path, &ci, err, errcap);
        if (je.pub.msg_code == JERR_INPUT_EOF || je.pub.msg_code == JERR_NO_IMAGE)
            rc = kn_rt_errf(err, errcap, "%s: truncated JPEG (data ends inside the header)", path);
        jpeg_destroy_decompress(&ci);
        free(cmyk);
        kn_img_free(out);
        return rc;
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, buf, (unsigned long)len);
    jpeg_read_header(&ci, TRUE);
    if (orig) *orig = (kn_img_size){(int)ci.image_width, (int)ci.image_height};
    if (header_only) {
        jpeg_destroy_decompress(&ci);
        return 0;
    }
    int is_cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
    /* libjpeg-turbo converts grey and YCbCr to RGB itself; CMYK we convert
     * with PIL's formula.  ISLOW DCT and fancy upsampling are PIL's defaults. */
    ci.out_color_space = is_cmyk ? JCS_CMYK : JCS_RGB;
    ci.dct_method = JDCT_ISLOW;
    jpeg_pick_scale(&ci, min_short);
    jpeg_start_decompress(&ci);
    if (img_alloc(out, (int)ci.output_width, (int)ci.output_height, err, errcap)) {
        jpeg_destroy_decompress(&ci);
        return -1;
    }
    out->dct_num = (int)ci.scale_num;
    if (is_cmyk && !(cmyk = malloc((size_t)out->w * 4))) longjmp(je.jb, 1);
    while (ci.output_scanline < ci.output_height) {
        uint8_t *row = out->px + (size_t)ci.output_scanline * out->w * 3;
        JSAMPROW rp = is_cmyk ? cmyk : row;
        jpeg_read_scanlines(&ci, &rp, 1);
        /* Adobe CMYK JPEGs store inverted values (PIL's "CMYK;I"). */
        if (is_cmyk) cmyk_to_rgb(cmyk, row, out->w, ci.saw_Adobe_marker);
        if (je.eof) break;
    }
    free(cmyk);
    if (je.eof) {
        jpeg_destroy_decompress(&ci);
        kn_img_free(out);
        return kn_rt_errf(err, errcap, "%s: truncated JPEG (premature end of data)", path);
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    return 0;
}

/* ---- PNG ---- */

typedef struct {
    const unsigned char *buf;
    size_t len, pos;
    char msg[256];
} png_src;

static void png_read_mem(png_structp p, png_bytep dst, size_t n)
{
    png_src *s = png_get_io_ptr(p);
    if (s->len - s->pos < n) png_error(p, "truncated PNG (data ends early)");
    memcpy(dst, s->buf + s->pos, n);
    s->pos += n;
}

static void png_on_error(png_structp p, png_const_charp msg)
{
    png_src *s = png_get_io_ptr(p);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(p, 1);
}

static void png_on_warning(png_structp p, png_const_charp msg)
{
    (void)p;
    (void)msg;
}

/* Transformations that give what PIL's convert("RGB") gives: palette and
 * grey expanded, 16-bit to its high byte, alpha dropped (not composited). */
static void png_to_rgb8(png_structp p, png_infop info)
{
    int ct = png_get_color_type(p, info), bd = png_get_bit_depth(p, info);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(p);
    if (ct == PNG_COLOR_TYPE_GRAY && bd < 8) png_set_expand_gray_1_2_4_to_8(p);
    if (bd == 16) png_set_strip_16(p);
    if (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(p);
    if (ct & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(p);
    png_set_interlace_handling(p);
    png_read_update_info(p, info);
}

static int png_decode(const char *path, const unsigned char *buf, size_t len, int header_only, kn_img *out,
                      kn_img_size *orig, char *err, size_t errcap)
{
    png_src src = {buf, len, 0, ""};
    memset(out, 0, sizeof *out);
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    png_bytep *volatile rows = NULL;
    if (!info) {
        png_destroy_read_struct(&p, NULL, NULL);
        return kn_rt_errf(err, errcap, "%s: out of memory", path);
    }
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_read_struct(&p, &info, NULL);
        free(rows);
        kn_img_free(out);
        if (strncmp(src.msg, "truncated", 9) == 0) return kn_rt_errf(err, errcap, "%s: %s", path, src.msg);
        return kn_rt_errf(err, errcap, "%s: corrupt PNG: %s", path, src.msg);
    }
    png_set_read_fn(p, &src, png_read_mem);
    png_read_info(p, info);
    int w = (int)png_get_image_width(p, info), h = (int)png_get_image_height(p, info);
    if (orig) *orig = (kn_img_size){w, h};
    if (!header_only) {
        png_to_rgb8(p, info);
        if (png_get_rowbytes(p, info) != (size_t)w * 3) png_error(p, "unexpected row layout after conversion");
        if (img_alloc(out, w, h, err, errcap)) png_error(p, "out of memory");
        if (!(rows = malloc(sizeof *rows * (size_t)h))) png_error(p, "out of memory");
        for (int y = 0; y < h; y++) rows[y] = out->px + (size_t)y * w * 3;
        png_read_image(p, rows);
        png_read_end(p, NULL);
    }
    png_destroy_read_struct(&p, &info, NULL);
    free(rows);
    return 0;
}

/* ---- BMP ---- */

/* stb_image (Debian libstb) decodes BMP: uncompressed and RLE, 1..32 bits
 * per pixel, as PIL reads them; the sizes in the header are checked against
 * the bytes present before it allocates. */
static uint32_t le32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* stb_image reads past the end of a cut BMP as zeros: check the sizes the
 * headers declare against the bytes present first. */
static int bmp_check_size(const char *path, const unsigned char *buf, size_t len, int w, int h, char *err,
                          size_t errcap)
{
    if (len < 34) return kn_rt_errf(err, errcap, "%s: truncated BMP (%zu bytes)", path, len);
    uint32_t file_size = le32(buf + 2), data_at = le32(buf + 10), compression = le32(buf + 30);
    unsigned bpp = buf[28] | buf[29] << 8;
    if (file_size > len)
        return kn_rt_errf(err, errcap, "%s: truncated BMP (%zu of %u bytes)", path, len, (unsigned)file_size);
    if (compression == 0 || compression == 3) { /* uncompressed rows, padded to 4 bytes */
        uint64_t need = data_at + (((uint64_t)bpp * (uint64_t)w + 31) / 32) * 4 * (uint64_t)h;
        if (need > len)
            return kn_rt_errf(err, errcap, "%s: truncated BMP (%zu bytes, its pixels need %llu)", path, len,
                              (unsigned long long)need);
    }
    return 0;
}

static int bmp_decode(const char *path, const unsigned char *buf, size_t len, int header_only, kn_img *out,
                      kn_img_size *orig, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    if (len > INT32_MAX) return kn_rt_errf(err, errcap, "%s: BMP file too large", path);
    int w, h, ch;
    if (!stbi_info_from_memory(buf, (int)len, &w, &h, &ch))
        return kn_rt_errf(err, errcap, "%s: corrupt BMP: %s", path, stbi_failure_reason());
    if (bmp_check_size(path, buf, len, w, h, err, errcap)) return -1;
    if (orig) orig->w = w, orig->h = h;
    if (header_only) return 0;
    unsigned char *px = stbi_load_from_memory(buf, (int)len, &w, &h, &ch, 3);
    if (!px) return kn_rt_errf(err, errcap, "%s: corrupt or truncated BMP: %s", path, stbi_failure_reason());
    int rc = img_alloc(out, w, h, err, errcap);
    if (!rc) memcpy(out->px, px, (size_t)w * h * 3);
    stbi_image_free(px);
    return rc;
}

/* ---- entry points ---- */

int kn_image_decode(const char *path, const kn_img_decode_opts *o, kn_img *out, kn_img_size *orig,
                    char *err, size_t errcap)
{
    unsigned char *buf;
    size_t len;
    const char *other;
    memset(out, 0, sizeof *out);
    if (read_all(path, &buf, &len, err, errcap)) return -1;
    int rc;
    switch (sniff(buf, len, &other)) {
    case FMT_JPEG: rc = jpeg_decode(path, buf, len, o ? o->min_short : 0, 0, out, orig, err, errcap); break;
    case FMT_PNG: rc = png_decode(path, buf, len, 0, out, orig, err, errcap); break;
    case FMT_BMP: rc = bmp_decode(path, buf, len, 0, out, orig, err, errcap); break;
    default: rc = fmt_error(path, len, other, err, errcap);
    }
    free(buf);
    return rc;
}

/* A JPEG ends with FF D9; files with trailing bytes after it exist, so look
 * at the last few KiB rather than the last two bytes. */
static int jpeg_has_eoi(const unsigned char *b, size_t n)
{
    size_t from = n > 4096 ? n - 4096 : 0;
    for (size_t i = n; i-- > from + 1;)
        if (b[i - 1] == 0xFF && b[i] == 0xD9) return 1;
    return 0;
}

static int png_has_iend(const unsigned char *b, size_t n)
{
    size_t from = n > 4096 ? n - 4096 : 0;
    for (size_t i = from; i + 4 <= n; i++)
        if (memcmp(b + i, "IEND", 4) == 0) return 1;
    return 0;
}

int kn_image_probe(const char *path, kn_img_size *size, char *err, size_t errcap)
{
    unsigned char *buf;
    size_t len;
    const char *other;
    kn_img none;
    if (read_all(path, &buf, &len, err, errcap)) return -1;
    int rc;
    switch (sniff(buf, len, &other)) {
    case FMT_JPEG:
        rc = jpeg_decode(path, buf, len, 0, 1, &none, size, err, errcap);
        if (!rc && !jpeg_has_eoi(buf, len))
            rc = kn_rt_errf(err, errcap, "%s: truncated JPEG (no end-of-image marker)", path);
        break;
    case FMT_PNG:
        rc = png_decode(path, buf, len, 1, &none, size, err, errcap);
        if (!rc && !png_has_iend(buf, len)) rc = kn_rt_errf(err, errcap, "%s: truncated PNG (no IEND chunk)", path);
        break;
    case FMT_BMP: rc = bmp_decode(path, buf, len, 1, &none, size, err, errcap); break;
    default: rc = fmt_error(path, len, other, err, errcap);
    }
    free(buf);
    return rc;
}

/* ---- resampling (PIL's ImagingResample, bilinear filter) ---- */

static double triangle(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Filter taps of output pixels [first, first+count) of a resize of the
 * source span [in0, in1) (in_size pixels exist) to out_size pixels: PIL's
 * precompute_coeffs, in double, normalised to sum 1, stored as float. */
typedef struct {
    int ksize;
    int *lo, *n;             /* first tap, tap count per output pixel */
    float *k;                /* count * ksize */
} taps;

static void taps_free(taps *t)
{
    free(t->lo);
    free(t->n);
    free(t->k);
}

static int taps_make(int in_size, double in0, double in1, int out_size, int first, int count, taps *t)
{
    double scale = (in1 - in0) / out_size, fscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * fscale;
    t->ksize = (int)ceil(support) * 2 + 1;
    t->lo = malloc(sizeof(int) * (size_t)count);
    t->n = malloc(sizeof(int) * (size_t)count);
    t->k = calloc((size_t)count * t->ksize, sizeof(float));
    double *w = malloc(sizeof(double) * (size_t)t->ksize);
    if (!t->lo || !t->n || !t->k || !w) {
        free(w);
        taps_free(t);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        double center = in0 + (first + i + 0.5) * scale, ww = 0, ss = 1.0 / fscale;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        int n = hi - lo;
        for (int x = 0; x < n; x++) ww += (w[x] = triangle((x + lo - center + 0.5) * ss));
        for (int x = 0; x < n; x++) t->k[(size_t)i * t->ksize + x] = (float)(ww != 0.0 ? w[x] / ww : w[x]);
        t->lo[i] = lo;
        t->n[i] = n;
    }
    free(w);
    return 0;
}

/* PIL rounds each pass to 8 bits: floor(v + 0.5) clipped to 0..255. */
static inline uint8_t round8(float v)
{
    v += 0.5f;
    return v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
}

/* Resizes the src_w x src_h RGB region at src (row stride `stride` bytes),
 * whose extent in source pixels is [0, span_w) x [0, span_h), to out_w x
 * out_h, computing only the window (ox, oy, cw, ch) of that output. */
static int resample(const uint8_t *src, size_t stride, int src_w, int src_h, double span_w, double span_h,
                    int out_w, int out_h, int ox, int oy, int cw, int ch, kn_img *dst, char *err, size_t errcap)
{
    taps th = {0}, tv = {0};
    if (taps_make(src_w, 0, span_w, out_w, ox, cw, &th) || taps_make(src_h, 0, span_h, out_h, oy, ch, &tv))
        goto oom;
    /* Horizontal pass first (as PIL), over the source rows the window needs. */
    int y0 = tv.lo[0], y1 = tv.lo[ch - 1] + tv.n[ch - 1];
    size_t trow = (size_t)cw * 3;
    uint8_t *tmp = malloc(trow * (size_t)(y1 - y0) + 1);
    float *acc = malloc(sizeof(float) * trow + 1);
    if (!tmp || !acc || img_alloc(dst, cw, ch, err, errcap)) {
        free(tmp);
        free(acc);
        goto oom;
    }
    for (int y = y0; y < y1; y++) {
        const uint8_t *s = src + (size_t)y * stride;
        uint8_t *o = tmp + (size_t)(y - y0) * trow;
        for (int x = 0; x < cw; x++) {
            const float *k = th.k + (size_t)x * th.ksize;
            const uint8_t *p = s + (size_t)th.lo[x] * 3;
            float rgb[3] = {0, 0, 0};
            for (int j = 0; j < th.n[x]; j++, p += 3)
                for (int c = 0; c < 3; c++) rgb[c] += (float)p[c] * k[j];
            for (int c = 0; c < 3; c++) o[3 * x + c] = round8(rgb[c]);
        }
    }
    /* Vertical pass row by row: contiguous multiply-adds the compiler vectorises. */
    for (int y = 0; y < ch; y++) {
        const float *k = tv.k + (size_t)y * tv.ksize;
        for (size_t i = 0; i < trow; i++) acc[i] = 0;
        for (int j = 0; j < tv.n[y]; j++) {
            const uint8_t *r = tmp + (size_t)(tv.lo[y] + j - y0) * trow;
            float kj = k[j];
            for (size_t i = 0; i < trow; i++) acc[i] += r[i] * kj;
        }
        uint8_t *o = dst->px + (size_t)y * trow;
        for (size_t i = 0; i < trow; i++) o[i] = round8(acc[i]);
    }
    free(tmp);
    free(acc);
    taps_free(&th);
    taps_free(&tv);
    return 0;
oom:
    taps_free(&th);
    taps_free(&tv);
    return kn_rt_errf(err, errcap, "out of memory resizing a %dx%d image", src_w, src_h);
}

void kn_image_resized_size(int w, int h, int resize, int *ow, int *oh)
{
    /* torchvision: the shorter side becomes `resize`, the longer
     * int(resize * long / short) (Python's true division, truncated). */
    if (w <= h) {
        *ow = resize;
        *oh = (int)((double)resize * h / w);
    } else {
        *oh = resize;
        *ow = (int)((double)resize * w / h);
    }
}

int kn_image_resize_crop(const kn_img *im, const kn_img_size *orig, int resize, int crop, kn_img *out,
                         char *err, size_t errcap)
{
    int W = orig ? orig->w : im->w, H = orig ? orig->h : im->h, rw = W, rh = H;
    memset(out, 0, sizeof *out);
    if (resize > 0) kn_image_resized_size(W, H, resize, &rw, &rh);
    if (crop > rw || crop > rh)
        return kn_rt_errf(err, errcap, "a %dx%d image resized to %dx%d is smaller than the %dx%d crop", W, H, rw, rh,
                          crop, crop);
    int cw = crop > 0 ? crop : rw, ch = crop > 0 ? crop : rh;
    /* CenterCrop: int(round((size - crop) / 2.0)), Python rounds half to even. */
    int ox = (int)nearbyint((rw - cw) / 2.0), oy = (int)nearbyint((rh - ch) / 2.0);
    /* A DCT-scaled decode covers the file's extent at dct_num/8. */
    double s = (im->dct_num > 0 ? im->dct_num : 8) / 8.0;
    return resample(im->px, (size_t)im->w * 3, im->w, im->h, W * s, H * s, rw, rh, ox, oy, cw, ch, out, err,
                    errcap);
}

/* ---- augmentation ---- */

/* torchvision's RandomResizedCrop.get_params with uniform draws u(k). */
static void rrc_box(int width, int height, uint64_t seed, uint64_t stream, uint64_t base, int box[4])
{
    const double smin = 0.08, smax = 1.0, lr0 = log(3.0 / 4.0), lr1 = log(4.0 / 3.0);
    double area = (double)width * height;
    for (int a = 0; a < 10; a++) {
        uint64_t k = base + 4 * (uint64_t)a;
        double target = area * (smin + (smax - smin) * kn_rt_uniform(seed, stream, k));
        double ar = exp(lr0 + (lr1 - lr0) * kn_rt_uniform(seed, stream, k + 1));
        int w = (int)nearbyint(sqrt(target * ar)), h = (int)nearbyint(sqrt(target / ar));
        if (w > 0 && w <= width && h > 0 && h <= height) {
            int i = (int)(kn_rt_uniform(seed, stream, k + 2) * (height - h + 1));
            int j = (int)(kn_rt_uniform(seed, stream, k + 3) * (width - w + 1));
            box[0] = j;
            box[1] = i;
            box[2] = w;
            box[3] = h;
            return;
        }
    }
    /* Fallback: the central crop with the ratio clamped into range. */
    double in_ratio = (double)width / height;
    int w = width, h = height;
    if (in_ratio < 3.0 / 4.0) h = (int)nearbyint(w / (3.0 / 4.0));
    else if (in_ratio > 4.0 / 3.0) w = (int)nearbyint(h * (4.0 / 3.0));
    box[0] = (width - w) / 2;
    box[1] = (height - h) / 2;
    box[2] = w;
    box[3] = h;
}

int kn_image_augment(const kn_img *im, int size, uint64_t seed, uint64_t stream, uint64_t index, kn_img *out,
                     int box[5], char *err, size_t errcap)
{
    int b[4];
    uint64_t base = index * 64;
    rrc_box(im->w, im->h, seed, stream, base, b);
    const uint8_t *src = im->px + ((size_t)b[1] * im->w + b[0]) * 3;
    if (resample(src, (size_t)im->w * 3, b[2], b[3], b[2], b[3], size, size, 0, 0, size, size, out, err, errcap))
        return -1;
    int flip = kn_rt_uniform(seed, stream, base + 63) < 0.5f;
    if (flip)
        for (int y = 0; y < out->h; y++) {
            uint8_t *r = out->px + (size_t)y * out->w * 3;
            for (int l = 0, h = out->w - 1; l < h; l++, h--)
                for (int c = 0; c < 3; c++) {
                    uint8_t t = r[3 * l + c];
                    r[3 * l + c] = r[3 * h + c];
                    r[3 * h + c] = t;
                }
        }
    if (box) {
        memcpy(box, b, sizeof b);
        box[4] = flip;
    }
    return 0;
}

void kn_image_to_chw(const kn_img *im, const float *norm, float *dst)
{
    /* A table per channel: the same float32 divisions torchvision does,
     * once per byte value instead of once per pixel. */
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float f = (float)v / 255.0f;
            lut[c][v] = norm ? (f - norm[2 * c]) / norm[2 * c + 1] : f;
        }
    size_t plane = (size_t)im->w * im->h;
    for (int c = 0; c < 3; c++) {
        float *o = dst + c * plane;
        const uint8_t *p = im->px + c;
        for (size_t i = 0; i < plane; i++) o[i] = lut[c][p[3 * i]];
    }
}

/* kn_imgset.c — see kn_imgset.h. */
#include "kn_imgset.h"
#include "kn_image.h"
#include "kn_rt_err.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define AUG_STREAM 0x4155474d00000000ull /* "AUGM" */
/* DCT-scaled decoding only while the decoded shorter side stays >= this
 * many times `resize`: the triangle filter then still averages >= 2 decoded
 * pixels per output pixel, so the IDCT's own low-pass barely shows
 * (tests/test_runtime_image.c measures it).  At 1x the error on 400-pixel
 * photos was a mean of 1 level and up to 29 (bench/image_pipeline.py's
 * dct256), and it was slower: libjpeg-turbo's 6/8 and 7/8 IDCTs are not
 * SIMD. */
#define DCT_MIN_FACTOR 2

typedef struct {
    int active;
    pthread_t th;
    int n, *idx;             /* sample indices of the batch */
    float *out;
    int rc;
    char err[1024];
} job;

struct kn_imgset {
    kn_imgset_opts o;
    char dir[4096];          /* the split folder */
    char **classes;
    int n_classes;
    char **files;            /* paths */
    uint8_t *labels;
    int count, skipped;
    uint64_t stream;
    uint8_t **cache;         /* crop per sample when cached */
    size_t cached_bytes;
    size_t per;              /* floats per sample */
    job j;
};

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Sorted names in dir: sub-folders (want_dirs) or image files. */
static int list_dir(const char *dir, int want_dirs, char ***out, char *err, size_t errcap)
{
    static const char *const EXT[] = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"};
    DIR *d = opendir(dir);
    if (!d) return kn_rt_errf(err, errcap, "%s: cannot list: %s", dir, strerror(errno));
    char **v = NULL;
    int n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (want_dirs != is_dir(p)) continue;
        if (!want_dirs) {
            const char *dot = strrchr(e->d_name, '.');
            int ok = 0;
            for (size_t k = 0; dot && k < sizeof EXT / sizeof EXT[0]; k++) ok |= strcasecmp(dot, EXT[k]) == 0;
            if (!ok) continue; /* README, .DS_Store: not samples (ImageFolder skips them too) */
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(v, sizeof *v * (size_t)cap);
            if (!nv) break;
            v = nv;
        }
        v[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

int kn_imgset_dir(const char *root, const char *path, char *dir, size_t cap, char *err, size_t errcap)
{
    char a[4096], b[4200];
    snprintf(a, sizeof a, "%s/%s", root, path ? path : "");
    snprintf(b, sizeof b, "%s/train", a);
    if (is_dir(b)) return snprintf(dir, cap, "%s", a), 0;
    snprintf(b, sizeof b, "%s/train", root);
    if (is_dir(b)) return snprintf(dir, cap, "%s", root), 0;
    return kn_rt_errf(err, errcap, "image folder %s: no train/ folder (expected %s/{train,validation,test}/CLASS/FILE)",
                      a, a);
}

int kn_imgset_classes(const char *dir, char ***names, char *err, size_t errcap)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/train", dir);
    int n = list_dir(p, 1, names, err, errcap);
    if (n == 0) {
        free(*names);
        return kn_rt_errf(err, errcap, "%s: no class folders", p);
    }
    if (n > 255) {
        free_list(*names, n);
        return kn_rt_errf(err, errcap, "%s: %d class folders, at most 255 supported", p, n);
    }
    return n;
}

static int split_dir(const char *dir, const char *split, char *out, size_t cap, char *err, size_t errcap)
{
    const char *cands[2] = {split, NULL};
    if (!strcmp(split, "val")) cands[0] = "validation", cands[1] = "val";
    else if (strcmp(split, "train") && strcmp(split, "test"))
        return kn_rt_errf(err, errcap, "unknown split '%s' (train, val or test)", split);
    for (int i = 0; i < 2 && cands[i]; i++) {
        if (snprintf(out, cap, "%s/%s", dir, cands[i]) < (int)cap && is_dir(out)) return 0;
    }
    return kn_rt_errf(err, errcap, "%s: no %s folder for split %s", dir,
                      cands[1] ? "validation/ (or val/)" : split, split);
}

static int add_file(kn_imgset *s, const char *path, int cls, int *cap)
{
    if (s->count == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        char **nf = realloc(s->files, sizeof *nf * (size_t)*cap);
        uint8_t *nl = realloc(s->labels, (size_t)*cap);
        if (nf) s->files = nf;
        if (nl) s->labels = nl;
        if (!nf || !nl) return -1;
    }
    s->files[s->count] = strdup(path);
    s->labels[s->count++] = (uint8_t)cls;
    return 0;
}

/* Lists and probes the split's files; bad ones fail or are counted. */
static int scan(kn_imgset *s, char *err, size_t errcap)
{
    int cap = 0;
    char **sub;
    int ns = list_dir(s->dir, 1, &sub, err, errcap);
    if (ns < 0) return -1;
    for (int i = 0; i < ns; i++) {
        char **hit = bsearch(&sub[i], s->classes, (size_t)s->n_classes, sizeof *s->classes, cmp_str);
        if (!hit) {
            kn_rt_errf(err, errcap, "%s/%s: class folder not in the train split", s->dir, sub[i]);
            free_list(sub, ns);
            return -1;
        }
    }
    free_list(sub, ns);
    for (int c = 0; c < s->n_classes; c++) {
        char cd[8192];
        snprintf(cd, sizeof cd, "%s/%s", s->dir, s->classes[c]);
        if (!is_dir(cd)) continue; /* a class may be absent from a small split */
        char **f;
        int nf = list_dir(cd, 0, &f, err, errcap);
        if (nf < 0) return -1;
        for (int i = 0; i < nf; i++) {
            char p[8192], perr[1024];
            if (snprintf(p, sizeof p, "%s/%s", cd, f[i]) >= (int)sizeof p) continue;
            kn_img_size sz;
            if (kn_image_probe(p, &sz, perr, sizeof perr)) {
                if (!s->o.skip_bad) {
                    free_list(f, nf);
                    return kn_rt_errf(err, errcap, "%s (--skip-bad leaves such files out)", perr);
                }
                s->skipped++;
                continue;
            }
            if (add_file(s, p, c, &cap)) {
                free_list(f, nf);
                return kn_rt_errf(err, errcap, "out of memory listing %s", cd);
            }
        }
        free_list(f, nf);
    }
    if (s->count == 0) return kn_rt_errf(err, errcap, "%s: no readable images", s->dir);
    return 0;
}

int kn_imgset_open(const kn_imgset_opts *o, kn_imgset **out, char *err, size_t errcap)
{
    *out = NULL;
    if (o->crop <= 0) return kn_rt_errf(err, errcap, "image folder dataset needs crop > 0 in the model");
    kn_imgset *s = calloc(1, sizeof *s);
    if (!s) return kn_rt_errf(err, errcap, "out of memory");
    s->o = *o;
    s->per = (size_t)3 * o->crop * o->crop;
    s->stream = AUG_STREAM;
    char root[4096];
    int n;
    if (kn_imgset_dir(o->root, o->path, root, sizeof root, err, errcap) ||
        (n = kn_imgset_classes(root, &s->classes, err, errcap)) < 0) {
        free(s);
        return -1;
    }
    s->n_classes = n;
    if (split_dir(root, o->split, s->dir, sizeof s->dir, err, errcap) || scan(s, err, errcap) ||
        !(s->cache = calloc((size_t)s->count, sizeof *s->cache))) {
        if (s->cache == NULL && s->count && !*err) kn_rt_errf(err, errcap, "out of memory");
        kn_imgset_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

static void join(kn_imgset *s)
{
    if (s->j.active) pthread_join(s->j.th, NULL);
    s->j.active = 0;
}

void kn_imgset_close(kn_imgset *s)
{
    if (!s) return;
    join(s);
    free(s->j.idx);
    free(s->j.out);
    for (int i = 0; i < s->count; i++) free(s->cache ? s->cache[i] : NULL);
    free(s->cache);
    free_list(s->files, s->count);
    free(s->labels);
    free_list(s->classes, s->n_classes);
    free(s);
}

int kn_imgset_count(const kn_imgset *s) { return s->count; }
int kn_imgset_n_classes(const kn_imgset *s) { return s->n_classes; }
const char *kn_imgset_class(const kn_imgset *s, int cls) { return s->classes[cls]; }
const uint8_t *kn_imgset_labels(const kn_imgset *s) { return s->labels; }
const char *kn_imgset_file(const kn_imgset *s, int i) { return s->files[i]; }
int kn_imgset_skipped(const kn_imgset *s) { return s->skipped; }
const char *kn_imgset_dirname(const kn_imgset *s) { return s->dir; }
void kn_imgset_set_epoch(kn_imgset *s, int epoch) { s->stream = AUG_STREAM + (uint64_t)epoch; }

/* One sample's 8-bit crop: cached, or decoded (and cached when allowed). */
static int sample_crop(kn_imgset *s, int i, kn_img *crop, int *owned, char *err, size_t errcap)
{
    int sz = s->o.crop;
    if (s->cache[i]) {
        *crop = (kn_img){.w = sz, .h = sz, .px = s->cache[i], .dct_num = 8, .full_w = sz, .full_h = sz};
        *owned = 0;
        return 0;
    }
    if (!s->o.augment) {
        /* Eval and feature caching: the decode streams through resize +
         * crop (only the window the crop reads is decoded). */
        kn_img_decode_opts d = {DCT_MIN_FACTOR * s->o.resize, s->o.resize, sz};
        *crop = (kn_img){.w = sz, .h = sz, .dct_num = 8, .full_w = sz, .full_h = sz};
        crop->px = malloc((size_t)sz * sz * 3 + 1);
        if (!crop->px) return kn_rt_errf(err, errcap, "out of memory");
        if (kn_image_load_crop(s->files[i], &d, crop->px, NULL, err, errcap)) {
            kn_img_free(crop);
            return -1;
        }
    } else {
        kn_img im;
        if (kn_image_decode(s->files[i], NULL, &im, NULL, err, errcap)) return -1;
        int rc = kn_image_augment(&im, sz, s->o.seed, s->stream, (uint64_t)i, crop, NULL, err, errcap);
        kn_img_free(&im);
        if (rc) {
            char e2[1024];
            snprintf(e2, sizeof e2, "%s", err);
            return kn_rt_errf(err, errcap, "%s: %s", s->files[i], e2);
        }
    }
    *owned = 1;
    size_t bytes = (size_t)sz * sz * 3;
    if (!s->o.augment && s->cached_bytes + bytes <= s->o.cache_bytes) {
        s->cache[i] = crop->px;
        s->cached_bytes += bytes;
        *owned = 0;
    }
    return 0;
}

static int decode_batch(kn_imgset *s, const int *idx, int n, float *dst, char *err, size_t errcap)
{
    for (int k = 0; k < n; k++) {
        kn_img crop;
        int owned;
        if (sample_crop(s, idx[k], &crop, &owned, err, errcap)) return -1;
        kn_image_to_chw(&crop, s->o.norm, dst + (size_t)k * s->per);
        if (owned) kn_img_free(&crop);
    }
    return 0;
}

static void *worker(void *arg)
{
    kn_imgset *s = arg;
    s->j.rc = decode_batch(s, s->j.idx, s->j.n, s->j.out, s->j.err, sizeof s->j.err);
    return NULL;
}

static int fill_idx(int *dst, const int *idx, int start, int n)
{
    for (int k = 0; k < n; k++) dst[k] = idx ? idx[k] : start + k;
    return n;
}

void kn_imgset_prefetch(kn_imgset *s, const int *idx, int start, int n)
{
    join(s);
    int *ni = realloc(s->j.idx, sizeof(int) * (size_t)n + 1);
    float *no = ni ? realloc(s->j.out, sizeof(float) * s->per * (size_t)n + 1) : NULL;
    if (ni) s->j.idx = ni;
    if (no) s->j.out = no;
    if (!ni || !no) return; /* features() decodes synchronously */
    s->j.n = fill_idx(s->j.idx, idx, start, n);
    /* No thread: the batch decodes in features(). */
    s->j.active = pthread_create(&s->j.th, NULL, worker, s) == 0;
    if (!s->j.active) s->j.n = 0;
}

int kn_imgset_features(kn_imgset *s, const int *idx, int start, int n, float *dst, char *err, size_t errcap)
{
    int was = s->j.active;
    join(s);
    int same = was && s->j.n == n;
    for (int k = 0; same && k < n; k++) same = s->j.idx[k] == (idx ? idx[k] : start + k);
    if (same) {
        s->j.n = 0;
        if (s->j.rc) return kn_rt_errf(err, errcap, "%s", s->j.err);
        memcpy(dst, s->j.out, sizeof(float) * s->per * (size_t)n);
        return 0;
    }
    s->j.n = 0;
    int *tmp = malloc(sizeof(int) * (size_t)n + 1);
    if (!tmp) return kn_rt_errf(err, errcap, "out of memory");
    fill_idx(tmp, idx, start, n);
    int rc = decode_batch(s, tmp, n, dst, err, errcap);
    free(tmp);
    return rc;
}

/* kn_data.c — see kn_data.h. */
#include "kn_data.h"
#include "kn_rt_arena.h"
#include "kn_rt_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static const char *const FASHION_NAMES[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};

int kn_data_kind_known(const char *kind)
{
    return kind && (strcmp(kind, "fashion_mnist") == 0 || strcmp(kind, "mnist") == 0);
}

int kn_data_n_classes(const char *kind) { return kn_data_kind_known(kind) ? 10 : 0; }

const char *kn_data_class_name(const char *kind, int cls, char *buf, size_t cap)
{
    if (kind && strcmp(kind, "fashion_mnist") == 0 && cls >= 0 && cls < 10) return FASHION_NAMES[cls];
    snprintf(buf, cap, "%d", cls);
    return buf;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int kn_data_dir(const char *kind, const char *override, char *dir, size_t cap,
                char *err, size_t errcap)
{
    if (override && *override) {
        if (!is_dir(override)) return kn_rt_errf(err, errcap, "--data %s: no such directory", override);
        snprintf(dir, cap, "%s", override);
        return 0;
    }
    if (strcmp(kind, "fashion_mnist") == 0) {
        if (!is_dir(KN_DATA_FASHION_DIR))
            return kn_rt_errf(err, errcap,
                              "fashion_mnist: %s not found (install dataset-fashion-mnist or pass --data DIR)",
                              KN_DATA_FASHION_DIR);
        snprintf(dir, cap, "%s", KN_DATA_FASHION_DIR);
        return 0;
    }
    if (strcmp(kind, "mnist") == 0) {
        char cand[3][4096];
        int nc = 0;
        const char *env = getenv("KILN_DATA");
        if (env && *env) snprintf(cand[nc++], sizeof cand[0], "%s/mnist", env);
        snprintf(cand[nc++], sizeof cand[0], "../shared/data/mnist");
        snprintf(cand[nc++], sizeof cand[0], "/work/shared/data/mnist");
        for (int i = 0; i < nc; i++)
            if (is_dir(cand[i])) {
                snprintf(dir, cap, "%s", cand[i]);
                return 0;
            }
        return kn_rt_errf(err, errcap,
                          "mnist: no data directory ($KILN_DATA/mnist, ../shared/data/mnist, "
                          "/work/shared/data/mnist); pass --data DIR");
    }
    return kn_rt_errf(err, errcap, "unknown dataset kind '%s' (known: fashion_mnist, mnist)", kind);
}

/* The .gz name, or the unpacked one when only that exists. */
static void idx_path(const char *dir, const char *stem, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.gz", dir, stem);
    struct stat st;
    if (stat(out, &st) != 0) {
        char plain[4096];
        snprintf(plain, sizeof plain, "%s/%s", dir, stem);
        if (stat(plain, &st) == 0) snprintf(out, cap, "%s", plain);
    }
}

void kn_data_close(kn_dataset *d)
{
    kn_imgset_close(d->imgs);
    kn_idx_free(&d->img);
    kn_idx_free(&d->lab);
    memset(d, 0, sizeof *d);
}

int kn_data_open(const char *kind, const char *dir_override, const char *split,
                 kn_dataset *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    int train = strcmp(split, "train") == 0, val = strcmp(split, "val") == 0;
    if (!train && !val && strcmp(split, "test") != 0)
        return kn_rt_errf(err, errcap, "unknown split '%s' (train, val or test)", split);
    if (!kn_data_kind_known(kind))
        return kn_rt_errf(err, errcap, "unknown dataset kind '%s' (known: fashion_mnist, mnist)", kind);
    if (kn_data_dir(kind, dir_override, out->dir, sizeof out->dir, err, errcap)) return -1;
    snprintf(out->kind, sizeof out->kind, "%s", kind);
    snprintf(out->split, sizeof out->split, "%s", split);
    const char *pre = (train || val) ? "train" : "t10k";
    char ip[4200], lp[4200], stem[64];
    snprintf(stem, sizeof stem, "%s-images-idx3-ubyte", pre);
    idx_path(out->dir, stem, ip, sizeof ip);
    snprintf(stem, sizeof stem, "%s-labels-idx1-ubyte", pre);
    idx_path(out->dir, stem, lp, sizeof lp);
    if (kn_idx_read(ip, 3, &out->img, err, errcap) || kn_idx_read(lp, 1, &out->lab, err, errcap)) {
        kn_data_close(out);
        return -1;
    }
    int count = out->img.dims[0];
    if (out->lab.dims[0] != count) {
        kn_rt_errf(err, errcap, "%s: %d labels but %s has %d images", lp, out->lab.dims[0], ip, count);
        kn_data_close(out);
        return -1;
    }
    int ncls = kn_data_n_classes(kind);
    for (int i = 0; i < count; i++)
        if (out->lab.data[i] >= ncls) {
            kn_rt_errf(err, errcap, "%s: label %d of item %d is not a class 0..%d", lp, out->lab.data[i], i,
                       ncls - 1);
            kn_data_close(out);
            return -1;
        }
    out->rows = out->img.dims[1];
    out->cols = out->img.dims[2];
    int first = 0;
    if (train || val) {
        if (count <= KN_DATA_VAL_COUNT) {
            kn_rt_errf(err, errcap, "%s: %d images, too few to hold out %d for val", ip, count,
                       KN_DATA_VAL_COUNT);
            kn_data_close(out);
            return -1;
        }
        if (train) count -= KN_DATA_VAL_COUNT;
        else {
            first = count - KN_DATA_VAL_COUNT;
            count = KN_DATA_VAL_COUNT;
        }
    }
    out->count = count;
    out->channels = 1;
    out->classes = ncls;
    out->images = out->img.data + (size_t)first * out->rows * out->cols;
    out->labels = out->lab.data + first;
    return 0;
}

int kn_data_check_input(const kn_dataset *d, const kn_rt_io *io, char *err, size_t errcap)
{
    char s[128];
    size_t want = (size_t)d->channels * d->rows * d->cols;
    if (io->dtype != KN_RT_F32 || !io->batched || io->sample_numel != want)
        return kn_rt_errf(err, errcap,
                          "input '%s' is %s but %s images need f32 with %zu (%dx%dx%d) elements per sample",
                          io->name, kn_rt_io_shape(io, s, sizeof s), d->kind, want, d->channels, d->rows, d->cols);
    return 0;
}

int kn_data_root(const char *override, char *root, size_t cap, char *err, size_t errcap)
{
    if (override && *override) {
        if (!is_dir(override)) return kn_rt_errf(err, errcap, "--data %s: no such directory", override);
        snprintf(root, cap, "%s", override);
        return 0;
    }
    const char *env = getenv("KILN_DATA");
    const char *cand[3] = {env && *env ? env : NULL, "../shared/data", "/work/shared/data"};
    for (int i = 0; i < 3; i++)
        if (cand[i] && is_dir(cand[i])) {
            snprintf(root, cap, "%s", cand[i]);
            return 0;
        }
    return kn_rt_errf(err, errcap, "no data root ($KILN_DATA, ../shared/data, /work/shared/data); pass --data DIR");
}

/* Image folders hold their own labels; the IDX view fields describe one
 * sample (3 x crop x crop). */
static int open_images(const kn_rt_model *m, const kn_data_opts *o, const char *dir, const char *split,
                       kn_dataset *out, char *err, size_t errcap)
{
    char root[4096];
    if (kn_data_root(dir, root, sizeof root, err, errcap)) return -1;
    const char *cache_mb = getenv("KILN_IMAGE_CACHE_MB");
    int train = strcmp(split, "train") == 0;
    kn_imgset_opts io = {
        .root = root, .path = m->data_path, .split = split, .resize = m->resize, .crop = m->crop,
        .norm = m->n_normalize == 6 ? m->normalize : NULL, .skip_bad = o ? o->skip_bad : 0,
        .augment = o && train ? o->augment : 0, .seed = o ? o->seed : 0,
        .cache_bytes = (size_t)(cache_mb ? atol(cache_mb) : 2048) << 20,
    };
    if (m->n_normalize != 0 && m->n_normalize != 6)
        return kn_rt_errf(err, errcap, "image models normalise with 3 (mean, std) pairs, model %s has %d numbers",
                          m->name, m->n_normalize);
    if (kn_imgset_open(&io, &out->imgs, err, errcap)) return -1;
    snprintf(out->kind, sizeof out->kind, "%s", m->data_kind);
    snprintf(out->dir, sizeof out->dir, "%s", kn_imgset_dirname(out->imgs));
    snprintf(out->split, sizeof out->split, "%s", split);
    out->count = kn_imgset_count(out->imgs);
    out->rows = out->cols = m->crop;
    out->channels = 3;
    out->classes = kn_imgset_n_classes(out->imgs);
    out->labels = kn_imgset_labels(out->imgs);
    return 0;
}

int kn_data_open_model(const kn_rt_model *m, const kn_data_opts *o, const char *dir, const char *split,
                       kn_dataset *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    const char *kind = m->data_kind ? m->data_kind : "";
    if (strcmp(kind, "image_folder") == 0) {
        if (strcmp(split, "train") && strcmp(split, "val") && strcmp(split, "test"))
            return kn_rt_errf(err, errcap, "unknown split '%s' (train, val or test)", split);
        return open_images(m, o, dir, split, out, err, errcap);
    }
    if (strcmp(kind, "imagenet") == 0)
        return kn_rt_errf(err, errcap, "dataset kind imagenet has no dataset folders (predict FILE.jpg only)");
    return kn_data_open(kind, dir, split, out, err, errcap);
}

const char *kn_data_dataset_class(const kn_dataset *d, int cls, char *buf, size_t cap)
{
    if (d->imgs && cls >= 0 && cls < d->classes) return kn_imgset_class(d->imgs, cls);
    return kn_data_class_name(d->kind, cls, buf, cap);
}

void kn_data_prefetch(kn_dataset *d, const int *idx, int start, int n)
{
    if (d->imgs && n > 0) kn_imgset_prefetch(d->imgs, idx, start, n);
}

void kn_data_set_epoch(kn_dataset *d, int epoch)
{
    if (d->imgs) kn_imgset_set_epoch(d->imgs, epoch);
}

int kn_data_features(kn_dataset *d, const float *norm, const int *idx, int start, int n, float *dst)
{
    if (d->imgs) return kn_imgset_features(d->imgs, idx, start, n, dst, d->err, sizeof d->err);
    size_t per = (size_t)d->rows * d->cols;
    for (int i = 0; i < n; i++) {
        const uint8_t *src = d->images + (size_t)(idx ? idx[i] : start + i) * per;
        float *o = dst + (size_t)i * per;
        for (size_t k = 0; k < per; k++) {
            float v = (float)src[k] / 255.0f;
            if (norm) v = (v - norm[0]) / norm[1];
            o[k] = v;
        }
    }
    return 0;
}

void kn_data_labels(const kn_dataset *d, const int *idx, int start, int n, int64_t *dst)
{
    for (int i = 0; i < n; i++) dst[i] = d->labels[idx ? idx[i] : start + i];
}

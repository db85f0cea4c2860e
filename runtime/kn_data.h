/* kn_data.h — the datasets a model can name, as splits, and turning
 * samples into the model's f32 features:
 *   - fashion_mnist, mnist: IDX files.  Splits: train = the first
 *     (count - 5000) images of the train file (55000), val = its last 5000,
 *     test = the t10k file (10000).
 *   - image_folder: JPEG/PNG photos in class folders (kn_imgset.h), decoded
 *     on a worker thread (kn_data_prefetch), resized/cropped/normalised as
 *     the model says (kn_image.h). */
#ifndef KN_DATA_H
#define KN_DATA_H

#include "kn_idx.h"
#include "kn_imgset.h"
#include "kn_rt.h"

#define KN_DATA_VAL_COUNT 5000
#define KN_DATA_FASHION_DIR "/usr/share/datasets/fashion-mnist"

typedef struct {
    char kind[32];           /* "fashion_mnist" or "mnist" */
    char dir[4096];
    char split[8];
    int count, rows, cols;
    int channels;            /* 1 for IDX, 3 for images */
    int classes;
    const uint8_t *images;   /* count * rows * cols, into img.data (IDX only) */
    const uint8_t *labels;   /* count, into lab.data or the image set */
    kn_idx img, lab;
    kn_imgset *imgs;         /* image folders; NULL for IDX */
    char err[1024];          /* why kn_data_features failed */
} kn_dataset;

/* How a model's dataset is opened beyond kind and split. */
typedef struct {
    int skip_bad;            /* image folders: leave unreadable files out */
    int augment;             /* image folders, train split: RandomResizedCrop + flip */
    uint64_t seed;           /* augmentation seed */
} kn_data_opts;

/* Known kinds, for messages. */
int kn_data_kind_known(const char *kind);
int kn_data_n_classes(const char *kind);
/* Human name of a class: Fashion-MNIST's "Trouser", MNIST's "3"; other
 * kinds get the index as text. */
const char *kn_data_class_name(const char *kind, int cls, char *buf, size_t cap);

/* Directory holding the four *-idx?-ubyte.gz files: `override` if given,
 * else the kind's defaults (mnist: $KILN_DATA/mnist, ../shared/data/mnist,
 * /work/shared/data/mnist, first that exists). */
int kn_data_dir(const char *kind, const char *override, char *dir, size_t cap,
                char *err, size_t errcap);

/* Loads split "train", "val" or "test" of the kind, checking that images
 * and labels agree and labels are valid classes. */
int kn_data_open(const char *kind, const char *dir_override, const char *split,
                 kn_dataset *out, char *err, size_t errcap);
void kn_data_close(kn_dataset *d);

/* The data root of image datasets: --data DIR, else $KILN_DATA, else
 * ../shared/data, else /work/shared/data (first that exists). */
int kn_data_root(const char *override, char *root, size_t cap, char *err, size_t errcap);

/* Opens split of the model's dataset: IDX kinds via kn_data_open (dir =
 * the IDX folder), image_folder under the data root (dir = the root). */
int kn_data_open_model(const kn_rt_model *m, const kn_data_opts *o, const char *dir, const char *split,
                       kn_dataset *out, char *err, size_t errcap);

/* Checks that a phase input can take this dataset's images (f32 with 784
 * elements per sample); the error names the input and its shape. */
int kn_data_check_input(const kn_dataset *d, const kn_rt_io *io, char *err, size_t errcap);

/* Features of samples idx[0..n) (or start..start+n when idx is NULL):
 * pixel/255, then (v - mean) / std when `norm` (mean, std) is non-NULL.
 * Float32 arithmetic in the same order as torchvision's ToTensor+Normalize
 * so features match PyTorch bit for bit.  Image folders use the model's
 * normalisation given at open (norm is ignored) and can fail (an unreadable
 * file): -1 with the message in d->err. */
int kn_data_features(kn_dataset *d, const float *norm, const int *idx, int start, int n, float *dst);
/* Starts preparing the batch a later kn_data_features call will ask for
 * (image folders: on a worker thread, overlapping compute); IDX: no-op. */
void kn_data_prefetch(kn_dataset *d, const int *idx, int start, int n);
/* Epoch number for augmentation draws (image folders). */
void kn_data_set_epoch(kn_dataset *d, int epoch);
/* Name of class cls of an open dataset (image folders: the folder name). */
const char *kn_data_dataset_class(const kn_dataset *d, int cls, char *buf, size_t cap);
void kn_data_labels(const kn_dataset *d, const int *idx, int start, int n, int64_t *dst);

#endif

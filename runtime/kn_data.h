/* kn_data.h — the built-in datasets (Fashion-MNIST, MNIST) as splits of
 * IDX files, and turning samples into the model's f32 features.
 *
 * Splits: train = the first (count - 5000) images of the train file
 * (55000), val = its last 5000, test = the t10k file (10000). */
#ifndef KN_DATA_H
#define KN_DATA_H

#include "kn_idx.h"
#include "kn_rt.h"

#define KN_DATA_VAL_COUNT 5000
#define KN_DATA_FASHION_DIR "/usr/share/datasets/fashion-mnist"

typedef struct {
    char kind[32];           /* "fashion_mnist" or "mnist" */
    char dir[4096];
    char split[8];
    int count, rows, cols;
    const uint8_t *images;   /* count * rows * cols, into img.data */
    const uint8_t *labels;   /* count, into lab.data */
    kn_idx img, lab;
} kn_dataset;

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

/* Checks that a phase input can take this dataset's images (f32 with 784
 * elements per sample); the error names the input and its shape. */
int kn_data_check_input(const kn_dataset *d, const kn_rt_io *io, char *err, size_t errcap);

/* Features of samples idx[0..n) (or start..start+n when idx is NULL):
 * pixel/255, then (v - mean) / std when `norm` (mean, std) is non-NULL.
 * Float32 arithmetic in the same order as torchvision's ToTensor+Normalize
 * so features match PyTorch bit for bit. */
void kn_data_features(const kn_dataset *d, const float *norm, const int *idx, int start,
                      int n, float *dst);
void kn_data_labels(const kn_dataset *d, const int *idx, int start, int n, int64_t *dst);

#endif

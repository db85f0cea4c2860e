/* kn_imgset.h — an image-folder dataset split:
 *   <root>/<path>/<split folder>/<class>/<file>
 * Classes are the sorted sub-folder names of the train folder; samples are
 * class-major, file names sorted within a class (torchvision's ImageFolder
 * order).  Split folders: train, validation (or val), test.
 *
 * Every file is probed at open (header parses, not truncated) so a bad file
 * fails before any compute, or is left out and counted with skip_bad.
 * Batches decode on a worker thread: kn_imgset_prefetch starts the next
 * batch while the caller computes the current one.  Without augmentation
 * the 8-bit crops are cached in memory (up to a cap), so later epochs skip
 * decoding. */
#ifndef KN_IMGSET_H
#define KN_IMGSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct kn_imgset kn_imgset;

typedef struct {
    const char *root;        /* data root */
    const char *path;        /* dataset folder relative to root */
    const char *split;       /* "train", "val" or "test" */
    int resize, crop;        /* crop > 0 required */
    const float *norm;       /* 3 (mean, std) pairs or NULL */
    int skip_bad;            /* leave unreadable files out instead of failing */
    int augment;             /* RandomResizedCrop(crop) + flip instead of resize/crop */
    uint64_t seed;           /* augmentation seed */
    size_t cache_bytes;      /* cap on cached crops (0: no cache) */
} kn_imgset_opts;

/* The dataset folder: root/path, or root itself when it already holds the
 * split folders.  Errors name the folders tried. */
int kn_imgset_dir(const char *root, const char *path, char *dir, size_t cap, char *err, size_t errcap);
/* Sorted class names (sub-folders of dir/train); *names malloc'd (free each
 * and the array).  Returns the count, -1 on error. */
int kn_imgset_classes(const char *dir, char ***names, char *err, size_t errcap);

int kn_imgset_open(const kn_imgset_opts *o, kn_imgset **out, char *err, size_t errcap);
void kn_imgset_close(kn_imgset *s);

int kn_imgset_count(const kn_imgset *s);
int kn_imgset_n_classes(const kn_imgset *s);
const char *kn_imgset_class(const kn_imgset *s, int cls);
const uint8_t *kn_imgset_labels(const kn_imgset *s);
const char *kn_imgset_file(const kn_imgset *s, int i);
int kn_imgset_skipped(const kn_imgset *s);
const char *kn_imgset_dirname(const kn_imgset *s); /* the split folder */

/* Augmentation draws from stream (base + epoch). */
void kn_imgset_set_epoch(kn_imgset *s, int epoch);
/* Starts decoding samples idx[0..n) (or start..start+n) on the worker. */
void kn_imgset_prefetch(kn_imgset *s, const int *idx, int start, int n);
/* f32 CHW features of those samples into dst (n * 3 * crop * crop); uses
 * the prefetched batch when it is this one. */
int kn_imgset_features(kn_imgset *s, const int *idx, int start, int n, float *dst, char *err, size_t errcap);

#endif

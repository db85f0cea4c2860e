/* npy.h — NumPy .npy arrays, the interchange format of `EXE run` and the
 * golden-value tests.  Little-endian C-order only. */
#ifndef KN_NPY_H
#define KN_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "kn_rt.h"

typedef struct {
    int dtype;               /* KN_RT_F32 or KN_RT_I64 */
    int rank;
    int64_t dims[6];
    size_t numel;
    void *data;
} kn_npy;

/* 0 ok; accepts <f4, <i8, also <f8/<i4 (converted to f32/i64); rejects
 * fortran order.  Errors name the file. */
int kn_npy_read(const char *path, kn_npy *out, char *err, size_t errcap);
/* 0 ok; written atomically as format version 1.0. */
int kn_npy_write(const char *path, int dtype, int rank, const int64_t *dims,
                 const void *data, char *err, size_t errcap);
void kn_npy_free(kn_npy *a);

#endif

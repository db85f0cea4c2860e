/* kn_idx.h — IDX files (the MNIST family's format), gzip'd or plain:
 * big-endian magic 0x000008RR (u8 data, RR = rank), RR big-endian u32 dims,
 * then the bytes. */
#ifndef KN_IDX_H
#define KN_IDX_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int rank;
    int dims[3];             /* dims[0] is the item count */
    size_t numel;
    uint8_t *data;
} kn_idx;

/* Reads an IDX u8 file of the given rank (3 for images, 1 for labels).
 * Wrong magic, rank, missing or truncated data => error naming the file. */
int kn_idx_read(const char *path, int rank, kn_idx *out, char *err, size_t errcap);
void kn_idx_free(kn_idx *a);

#endif

/* kn_rt_afile.h — atomic file replacement.  Data goes to a temp file in the
 * destination's directory (rename is only atomic within one filesystem),
 * is fsync'd, then renamed over the target and the directory fsync'd, so a
 * crash at any point leaves either the old file or the complete new one. */
#ifndef KN_RT_AFILE_H
#define KN_RT_AFILE_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    char path[4096];
    char tmp[4096];
    FILE *f;
} kn_rt_afile;

int kn_rt_afile_begin(kn_rt_afile *a, const char *path, char *err, size_t errcap);
int kn_rt_afile_write(kn_rt_afile *a, const void *data, size_t len, char *err, size_t errcap);
/* fflush + fsync + rename + fsync(dir).  The temp file is gone afterwards
 * whether or not it succeeded. */
int kn_rt_afile_commit(kn_rt_afile *a, char *err, size_t errcap);
/* Drops the temp file; the target is untouched. */
void kn_rt_afile_abort(kn_rt_afile *a);

/* The whole sequence for data already in memory: n chunks written in order. */
int kn_rt_write_atomic(const char *path, const void *const *chunks, const size_t *lens,
                       int n, char *err, size_t errcap);

/* mkdir -p; 0 or -1 with errno. */
int kn_rt_mkdir_p(const char *dir);

#endif

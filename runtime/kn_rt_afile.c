/* kn_rt_afile.c — see kn_rt_afile.h. */
#include "kn_rt_afile.h"
#include "kn_rt_err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int kn_rt_afile_begin(kn_rt_afile *a, const char *path, char *err, size_t errcap)
{
    memset(a, 0, sizeof *a);
    if (strlen(path) + 16 >= sizeof a->tmp)
        return kn_rt_errf(err, errcap, "%s: path too long", path);
    strcpy(a->path, path);
    /* A dot-prefixed sibling keeps the temp file on the same filesystem and
     * out of casual globs of the destination directory. */
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    snprintf(a->tmp, sizeof a->tmp, "%.*s.%s.tmp-XXXXXX", (int)dirlen, path, path + dirlen);
    int fd = mkstemp(a->tmp);
    if (fd < 0)
        return kn_rt_errf(err, errcap, "%s: cannot create temp file: %s", path, strerror(errno));
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        return kn_rt_errf(err, errcap, "%s: %s", path, strerror(e));
    }
    return 0;
}

int kn_rt_afile_write(kn_rt_afile *a, const void *data, size_t len, char *err, size_t errcap)
{
    if (len && fwrite(data, 1, len, a->f) != len) {
        int e = errno;
        kn_rt_afile_abort(a);
        return kn_rt_errf(err, errcap, "%s: write failed: %s", a->path, strerror(e));
    }
    return 0;
}

static void fsync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash == path) strcpy(dir, "/");
    else if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        /* Best effort: some filesystems refuse fsync on directories. */
        (void)fsync(fd);
        close(fd);
    }
}

int kn_rt_afile_commit(kn_rt_afile *a, char *err, size_t errcap)
{
    if (fflush(a->f) != 0 || fsync(fileno(a->f)) != 0) {
        int e = errno;
        kn_rt_afile_abort(a);
        return kn_rt_errf(err, errcap, "%s: flush failed: %s", a->path, strerror(e));
    }
    if (fclose(a->f) != 0) {
        int e = errno;
        a->f = NULL;
        unlink(a->tmp);
        return kn_rt_errf(err, errcap, "%s: close failed: %s", a->path, strerror(e));
    }
    a->f = NULL;
    if (rename(a->tmp, a->path) != 0) {
        int e = errno;
        unlink(a->tmp);
        return kn_rt_errf(err, errcap, "%s: rename failed: %s", a->path, strerror(e));
    }
    fsync_dir(a->path);
    return 0;
}

void kn_rt_afile_abort(kn_rt_afile *a)
{
    if (a->f) fclose(a->f);
    a->f = NULL;
    if (a->tmp[0]) unlink(a->tmp);
    a->tmp[0] = 0;
}

int kn_rt_write_atomic(const char *path, const void *const *chunks, const size_t *lens,
                       int n, char *err, size_t errcap)
{
    kn_rt_afile a;
    if (kn_rt_afile_begin(&a, path, err, errcap)) return -1;
    for (int i = 0; i < n; i++)
        if (kn_rt_afile_write(&a, chunks[i], lens[i], err, errcap)) return -1;
    return kn_rt_afile_commit(&a, err, errcap);
}

int kn_rt_mkdir_p(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

/* build.c — runs the system C compiler on generated source and links the
 * runtime.  Arguments go through posix_spawn as an argv array (no shell), so
 * paths with spaces or quotes cannot turn into commands. */
#define _GNU_SOURCE
#include "codegen.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Splits a flag string on spaces into argv (flags here never hold spaces). */
static int split_flags(char *s, char **argv, int cap)
{
    int n = 0;
    for (char *tok = strtok(s, " \t"); tok && n < cap; tok = strtok(NULL, " \t")) argv[n++] = tok;
    return n;
}

kn_status kn_build_executable(const kn_toolchain *tc, const char *c_path,
                              const char *exe_path, kn_diag *d)
{
    char *opt = kn_xstrdup(tc->opt_flags ? tc->opt_flags : "-O2");
    char *extra = kn_xstrdup(tc->extra_cflags ? tc->extra_cflags : "");
    char *link = kn_xstrdup(tc->link_flags ? tc->link_flags : "");
    char *cuda = kn_xstrdup(tc->cuda_libs ? tc->cuda_libs : "");
    char incl[4200];
    snprintf(incl, sizeof incl, "-I%s", tc->rt_include);
    char *argv[128];
    int n = 0;
    argv[n++] = (char *)tc->cc;
    argv[n++] = "-std=c11";
    n += split_flags(opt, argv + n, 16);
    n += split_flags(extra, argv + n, 16);
    argv[n++] = incl;
    argv[n++] = (char *)c_path;
    n += split_flags(cuda, argv + n, 16); /* before libkiln_rt: it calls into it */
    argv[n++] = (char *)tc->rt_lib;
    n += split_flags(link, argv + n, 32);
    argv[n++] = "-lm";
    argv[n++] = "-o";
    argv[n++] = (char *)exe_path;
    argv[n] = NULL;

    char log_path[] = "/tmp/kiln-cc-XXXXXX";
    int log_fd = mkstemp(log_path);
    kn_status st = KN_OK;
    if (log_fd < 0) {
        st = kn_diag_fail(d, "cannot create a temporary file for the compiler log: %s", strerror(errno));
        goto done;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, log_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, log_fd, 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, tc->cc, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        st = kn_diag_fail(d, "cannot run the C compiler '%s': %s", tc->cc, strerror(rc));
        goto done;
    }
    int wst = 0;
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0) {
        char buf[3000] = "";
        lseek(log_fd, 0, SEEK_SET);
        ssize_t got = read(log_fd, buf, sizeof buf - 1);
        buf[got > 0 ? got : 0] = 0;
        st = kn_diag_fail(d, "C compiler failed on %s (a kiln bug: generated code must compile):\n%s", c_path, buf);
    }
done:
    if (log_fd >= 0) {
        close(log_fd);
        unlink(log_path);
    }
    free(opt);
    free(extra);
    free(link);
    free(cuda);
    return st;
}

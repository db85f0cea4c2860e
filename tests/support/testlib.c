/* testlib.c — see testlib.h. */
#define _GNU_SOURCE
#include "testlib.h"
#include "kiln_config.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

const char *kt_kiln_bin(void) { return env_or("KILN_BIN", "kiln"); }
const char *kt_src_dir(void) { return env_or("KILN_SRC", "."); }

const char *kt_tmp_dir(const char *tag)
{
    static char path[4096];
    const char *base = env_or("KILN_TEST_TMP", "/tmp");
    mkdir(base, 0755);
    snprintf(path, sizeof path, "%s/%s-XXXXXX", base, tag);
    if (!mkdtemp(path)) {
        fprintf(stderr, "mkdtemp %s: %s\n", path, strerror(errno));
        abort();
    }
    return path;
}

int kt_run(char **out, const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[16500];
    snprintf(full, sizeof full, "( %s ) 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += k;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    int st = pclose(p);
    if (out) *out = buf; else free(buf);
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return -1;
}

void kt_toolchain(kn_toolchain *tc)
{
    tc->cc = env_or("KILN_CC", KILN_C_COMPILER);
    tc->rt_include = KILN_RT_INCLUDE;
    tc->rt_lib = KILN_RT_LIB;
    tc->link_flags = KILN_RT_LINK_FLAGS;
    tc->extra_cflags = KILN_RT_CFLAGS;
    tc->opt_flags = "-O2";
}

char *kt_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = 0;
    if (len) *len = got;
    return buf;
}

int kt_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

void kt_assert_contains(const char *haystack, const char *needle,
                        const char *file, int line)
{
    int ok = haystack && needle && strstr(haystack, needle) != NULL;
    if (!ok)
        fprintf(stderr, "\n%s:%d: expected to find \"%s\" in:\n%s\n", file,
                line, needle ? needle : "(null)", haystack ? haystack : "(null)");
    CU_assertImplementation(ok, line, "output contains expected text", file, "", CU_FALSE);
}

int kt_main(const char *suite, CU_TestInfo *tests)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_SuiteInfo suites[] = {{suite, NULL, NULL, NULL, NULL, tests}, CU_SUITE_INFO_NULL};
    if (CU_register_suites(suites) != CUE_SUCCESS) return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) return 1; /* a suite that runs nothing is a defect */
    return failed ? 1 : 0;
}

/* testlib.h — small helpers shared by the CUnit suites.
 *
 * Suites run the real `kiln` driver and generated executables as a user
 * would (through the shell), so these helpers run commands, capture their
 * output and exit status, and manage scratch directories.
 */
#ifndef KT_TESTLIB_H
#define KT_TESTLIB_H

#include <CUnit/CUnit.h>
#include <stddef.h>

#include "codegen/codegen.h"
#include "kn_rt.h"

const char *kt_kiln_bin(void);   /* $KILN_BIN, the kiln driver */
const char *kt_src_dir(void);    /* $KILN_SRC, the source tree */
/* A fresh scratch directory under $KILN_TEST_TMP (or /tmp), named after `tag`. */
const char *kt_tmp_dir(const char *tag);

/* Runs `cmd` through /bin/sh with stdout+stderr captured into *out
 * (malloc'd, may be NULL to discard).  Returns the exit status, or -1 when
 * the command was killed by a signal (a crash is never a valid outcome). */
int kt_run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Calls kn_rt_main(m, ...) in-process with argv = prog + the space-separated
 * `args`, capturing stdout and stderr into *out and *err (malloc'd; previous
 * contents are freed).  Returns kn_rt_main's exit code. */
int kt_rt_main(const kn_rt_model *m, const char *prog, const char *args, char **out, char **err);
/* The same with printf-style arguments. */
int kt_rt_mainf(const kn_rt_model *m, const char *prog, char **out, char **err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* `kiln build MODEL -o EXE`; prints kiln's output, naming `what`, when it
 * fails.  Returns kiln's exit status. */
int kt_kiln_build(const char *what, const char *model, const char *exe);

/* The toolchain `kiln build` uses (compiler, libkiln_rt, its link and
 * sanitizer flags), for suites that drive codegen in-process. */
void kt_toolchain(kn_toolchain *tc);

/* snprintf into a path buffer; a truncated path fails the test (fatal). */
void kt_pathf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int kt_file_exists(const char *path);
/* The golden case folders of `dir` (those holding a file named `marker`),
 * sorted by name; *names is malloc'd (free each and the array).  Returns the
 * count. */
int kt_list_cases(const char *dir, const char *marker, char ***names);
/* Compares kiln's .npy output with the reference's: same dtype and shape (a
 * scalar may be [] or [1]); i64 exactly, f32 within abs_tol + rel_tol*|want|
 * (NaN fails).  Prints one line "case/what: ok (max errors)" or the first
 * offending index with both values.  Returns 0 when within tolerance. */
int kt_compare_npy(const char *cname, const char *what, const char *want_path,
                   const char *got_path, double abs_tol, double rel_tol);

/* The f32 comparison of kt_compare_npy on plain arrays of n elements. */
int kt_compare_f32(const char *cname, const char *what, const float *want, const float *got, size_t n,
                   double abs_tol, double rel_tol);

/* 1 when two safetensors checkpoints hold the same tensors bit for bit and
 * the same `step`; with verbose, says on stderr what differs. */
int kt_same_tensors(const char *a, const char *b, int verbose);

char *kt_read_file(const char *path, size_t *len); /* malloc'd, NUL-terminated */
int kt_write_file(const char *path, const void *data, size_t len);

/* Runs `ENV kiln onnx-test ARGS NODE_DIR` (env: variable assignments or
 * ""; args: e.g. "--target cuda" or "") and asserts that nothing fails and
 * every test in tests/golden/onnx_conformance_pass.txt prints "NAME: pass",
 * naming each one that does not (`what` prefixes those lines). */
void kt_check_onnx_conformance(const char *node_dir, const char *env, const char *args, const char *what);

/* Registers one suite of tests and runs it; returns the process exit code
 * (0 when every test passed). */
int kt_main(const char *suite, CU_TestInfo *tests);

/* Asserts that haystack contains needle, printing both on failure. */
#define KT_ASSERT_CONTAINS(haystack, needle) \
    kt_assert_contains((haystack), (needle), __FILE__, __LINE__)
void kt_assert_contains(const char *haystack, const char *needle,
                        const char *file, int line);

#endif

/* test_cli_errors.c — the `kiln` driver on bad input, through the shell.
 *
 * Every bad model file must give exit 1 and a located diagnostic
 * (file:line:col, the quoted line with a caret, a hint), quickly and without
 * a crash; bad command lines give exit 2 and usage.  Hostile identifiers and
 * strings must never inject code into the generated C: they are rejected
 * with a clear error, or the executable builds, runs `info`, and the emitted
 * sources show the hostile text only inside properly escaped string literals.
 */
#define _GNU_SOURCE
#include "testlib.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char g_tmp[4096];

static const char *tmp(void)
{
    if (!g_tmp[0]) snprintf(g_tmp, sizeof g_tmp, "%s", kt_tmp_dir("cli_errors"));
    return g_tmp;
}

/* Writes `len` bytes (or strlen(src) when len == 0) to TMP/name; returns the path. */
static const char *write_model(const char *name, const char *src, size_t len)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", tmp(), name);
    CU_ASSERT_EQUAL_FATAL(kt_write_file(path, src, len ? len : strlen(src)), 0);
    return path;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Runs `kiln check PATH` with a hard time limit; returns the exit status. */
static int kiln_check(const char *path, char **out, double *secs)
{
    double t0 = now_s();
    int rc = kt_run(out, "timeout 120 '%s' check '%s'", kt_kiln_bin(), path);
    if (secs) *secs = now_s() - t0;
    if (rc == -1) fprintf(stderr, "\nkiln check %s crashed (signal):\n%s\n", path, out ? *out : "");
    return rc;
}

/* Asserts that `out` quotes `src_line` and puts a caret under `token` in it. */
static void assert_caret_under(const char *out, const char *src_line, const char *token)
{
    const char *q = out ? strstr(out, src_line) : NULL;
    int ok = 0;
    if (q) {
        const char *qstart = q;
        while (qstart > out && qstart[-1] != '\n') qstart--;
        const char *tok = strstr(q, token);
        long want_col = tok ? (long)(tok - qstart) : -1;
        const char *next = strchr(q, '\n');
        /* the caret line follows the quoted line */
        if (next && tok) {
            const char *cl = next + 1;
            const char *ce = strchr(cl, '\n');
            const char *caret = memchr(cl, '^', ce ? (size_t)(ce - cl) : strlen(cl));
            ok = caret && (long)(caret - cl) == want_col;
            if (!ok)
                fprintf(stderr, "\ncaret at column %ld, expected %ld under '%s' in:\n%s\n",
                        caret ? (long)(caret - cl) : -1L, want_col, token, out);
        }
    } else {
        fprintf(stderr, "\nthe diagnostic does not quote \"%s\":\n%s\n", src_line, out ? out : "(null)");
    }
    CU_ASSERT(ok);
}

/* ---- located diagnostics ---------------------------------------------- */

static void test_unknown_op_did_you_mean(void)
{
    const char *p = write_model("bad_op.kiln",
                                "model bad_op\n"
                                "input x: f32[N, 784]\n"
                                "label y: i64[N]\n"
                                "fc = linear(x, 10)\n"
                                "h  = rellu(fc)\n"
                                "loss = cross_entropy(h, y)\n"
                                "output h\n", 0);
    char *out = NULL;
    int rc = kiln_check(p, &out, NULL);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(out, "bad_op.kiln:5:6");
    KT_ASSERT_CONTAINS(out, "rellu");
    KT_ASSERT_CONTAINS(out, "did you mean 'relu'");
    assert_caret_under(out, "h  = rellu(fc)", "rellu");
    free(out);

    /* `build` reports the same diagnostic and produces nothing */
    char exe[4300];
    snprintf(exe, sizeof exe, "%s/bad_op_exe", tmp());
    rc = kt_run(&out, "timeout 120 '%s' build '%s' -o '%s'", kt_kiln_bin(), p, exe);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(out, "bad_op.kiln:5:6");
    CU_ASSERT(access(exe, F_OK) != 0);
    free(out);
}

static void test_empty_file(void)
{
    const char *p = write_model("empty.kiln", "", 0);
    char *out = NULL;
    int rc = kiln_check(p, &out, NULL);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(out, "empty.kiln");
    free(out);

    p = write_model("only_comments.kiln", "# nothing here\n\n   \n# still nothing\n", 0);
    rc = kiln_check(p, &out, NULL);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(out, "only_comments.kiln");
    free(out);
}

/* xorshift64*: a fixed stream so the garbage is the same on every run. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static void check_garbage(const char *name, int printable)
{
    size_t n = 10u << 20;
    unsigned char *g = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    uint64_t s = printable ? 0x9E3779B97F4A7C15ULL : 0x0123456789ABCDEFULL;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rng_next(&s) >> 32;
        g[i] = printable ? (r % 17 == 0 ? '\n' : (unsigned char)(32 + r % 95)) : (unsigned char)r;
    }
    const char *p = write_model(name, (const char *)g, n);
    free(g);
    char *out = NULL;
    double secs = 0;
    int rc = kiln_check(p, &out, &secs);
    fprintf(stderr, "\n  %s: exit %d in %.2f s, %zu bytes of output\n", name, rc, secs, out ? strlen(out) : 0);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT(secs < 10.0);
    KT_ASSERT_CONTAINS(out, name);
    CU_ASSERT(out && strlen(out) < 64 * 1024); /* a diagnostic, not an echo of the garbage */
    free(out);
    unlink(p); /* do not leave 10 MB behind per run */
}

static void test_random_garbage_10mb(void)
{
    check_garbage("garbage.kiln", 0);
    check_garbage("garbage_ascii.kiln", 1);
}

static void test_oversized_file(void)
{
    char p[4300];
    snprintf(p, sizeof p, "%s/huge.kiln", tmp());
    char *out = NULL;
    CU_ASSERT_EQUAL_FATAL(kt_run(NULL, "truncate -s 40M '%s'", p), 0);
    double secs = 0;
    int rc = kiln_check(p, &out, &secs);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT(secs < 10.0);
    KT_ASSERT_CONTAINS(out, "huge.kiln");
    free(out);
    unlink(p);

    rc = kiln_check("/nonexistent/dir/missing.kiln", &out, NULL);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(out, "missing.kiln");
    free(out);

    rc = kiln_check(tmp(), &out, NULL); /* a directory */
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT(out && strlen(out) > 0);
    free(out);
}

static void test_non_utf8(void)
{
    /* 0xFF in an identifier on line 4, column 3 */
    const char *p = write_model("bad_utf8.kiln",
                                "model bad_utf8\n"
                                "input x: f32[N, 784]\n"
                                "label y: i64[N]\n"
                                "fc\xff = linear(x, 10)\n"
                                "output fc\n", 0);
    char *out = NULL;
    int rc = kiln_check(p, &out, NULL);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(out, "bad_utf8.kiln:4:3");
    KT_ASSERT_CONTAINS(out, "UTF-8");
    CU_ASSERT(out && !strchr(out, '\xff')); /* the diagnostic itself stays valid UTF-8 */
    free(out);

    /* overlong encoding inside a comment, and a sequence cut by end of file */
    p = write_model("overlong.kiln", "model overlong\n# \xc0\xaf\n", 0);
    rc = kiln_check(p, &out, NULL);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(out, "overlong.kiln:2:");
    free(out);

    p = write_model("cut_utf8.kiln", "model cut_utf8\n# caf\xc3", 0);
    rc = kiln_check(p, &out, NULL);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(out, "cut_utf8.kiln:2:");
    free(out);

    /* a NUL byte */
    static const char nul_src[] = "model nul\ninput x: f32[N, 7\0" "84]\n";
    p = write_model("nul.kiln", nul_src, sizeof nul_src - 1);
    rc = kiln_check(p, &out, NULL);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(out, "nul.kiln:2:");
    free(out);
}

static void test_unterminated_train_block(void)
{
    const char *p = write_model("unterminated.kiln",
                                "model unterminated\n"
                                "input x: f32[N, 784]\n"
                                "label y: i64[N]\n"
                                "fc = linear(x, 10)\n"
                                "loss = cross_entropy(fc, y)\n"
                                "output fc\n"
                                "train { optimizer adam(lr=1e-3)  batch 64\n", 0);
    char *out = NULL;
    int rc = kiln_check(p, &out, NULL);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(out, "unterminated.kiln:");
    int says_what = out && (strstr(out, "}") || strstr(out, "end of file") || strstr(out, "unterminated"));
    if (!says_what) fprintf(stderr, "\nthe error does not mention the missing '}':\n%s\n", out);
    CU_ASSERT(says_what);
    free(out);

    /* an unterminated string and an unclosed parenthesis */
    p = write_model("open_string.kiln", "model open_string\ndata fashion_mnist(path=\"abc\n", 0);
    rc = kiln_check(p, &out, NULL);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(out, "open_string.kiln:2:");
    free(out);

    p = write_model("open_paren.kiln",
                    "model open_paren\ninput x: f32[N, 784]\nfc = linear(x, 10\noutput fc\n", 0);
    rc = kiln_check(p, &out, NULL);
    CU_ASSERT_EQUAL(rc, 1);
    /* at the unclosed call (line 3) or where it is noticed (line 4) */
    CU_ASSERT(out && (strstr(out, "open_paren.kiln:3:") || strstr(out, "open_paren.kiln:4:1")));
    free(out);
}

static void test_huge_linear(void)
{
    const char *p = write_model("big.kiln",
                                "model big\n"
                                "input x: f32[N, 784]\n"
                                "label y: i64[N]\n"
                                "fc = linear(x, 4000000000)\n"
                                "loss = cross_entropy(fc, y)\n"
                                "output fc\n", 0);
    char *out = NULL;
    double secs = 0;
    int rc = kiln_check(p, &out, &secs);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT(secs < 30.0);
    KT_ASSERT_CONTAINS(out, "big.kiln:4:");
    KT_ASSERT_CONTAINS(out, "4000000000");
    free(out);

    char exe[4300];
    snprintf(exe, sizeof exe, "%s/big_exe", tmp());
    rc = kt_run(&out, "timeout 120 '%s' build '%s' -o '%s'", kt_kiln_bin(), p, exe);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(out, "big.kiln:4:");
    free(out);

    /* int64 overflow in the literal itself */
    p = write_model("overflow.kiln",
                    "model overflow\ninput x: f32[N, 784]\n"
                    "fc = linear(x, 99999999999999999999999)\noutput fc\n", 0);
    rc = kiln_check(p, &out, NULL);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(out, "overflow.kiln:3:");
    free(out);

    /* zero and negative widths */
    p = write_model("zero.kiln", "model zero\ninput x: f32[N, 784]\nfc = linear(x, 0)\noutput fc\n", 0);
    rc = kiln_check(p, &out, NULL);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(out, "zero.kiln:3:");
    free(out);
    p = write_model("neg.kiln", "model neg\ninput x: f32[N, 784]\nfc = linear(x, -5)\noutput fc\n", 0);
    rc = kiln_check(p, &out, NULL);
    CU_ASSERT_EQUAL(rc, 1);
    KT_ASSERT_CONTAINS(out, "neg.kiln:3:");
    free(out);
}

static void test_deep_nesting(void)
{
    /* 100,000 nested calls: a recursive parser must stop at a depth limit,
     * never overflow the stack. */
    size_t depth = 100000;
    size_t cap = depth * 6 + 256;
    char *src = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    size_t n = (size_t)snprintf(src, cap, "model deep\ninput x: f32[N, 784]\nh = ");
    for (size_t i = 0; i < depth; i++) memcpy(src + n, "relu(", 5), n += 5;
    src[n++] = 'x';
    for (size_t i = 0; i < depth; i++) src[n++] = ')';
    n += (size_t)snprintf(src + n, cap - n, "\noutput h\n");
    const char *p = write_model("deep.kiln", src, n);
    free(src);
    char *out = NULL;
    double secs = 0;
    int rc = kiln_check(p, &out, &secs);
    CU_ASSERT_NOT_EQUAL(rc, -1);
    CU_ASSERT(rc == 0 || rc == 1);
    CU_ASSERT(secs < 60.0);
    if (rc == 1) KT_ASSERT_CONTAINS(out, "deep.kiln:3:");
    free(out);
}

/* ---- command line ------------------------------------------------------- */

static int contains_ci(const char *hay, const char *needle)
{
    return hay && strcasestr(hay, needle) != NULL;
}

static void test_usage_errors(void)
{
    char *out = NULL;
    int rc = kt_run(&out, "'%s'", kt_kiln_bin());
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT(contains_ci(out, "usage"));
    free(out);

    rc = kt_run(&out, "'%s' frobnicate", kt_kiln_bin());
    CU_ASSERT_EQUAL(rc, 2);
    KT_ASSERT_CONTAINS(out, "frobnicate");
    CU_ASSERT(contains_ci(out, "usage") || contains_ci(out, "--help"));
    free(out);

    rc = kt_run(&out, "'%s' build", kt_kiln_bin()); /* missing MODEL */
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT(contains_ci(out, "usage") || contains_ci(out, "model"));
    free(out);

    rc = kt_run(&out, "'%s' check --no-such-flag '%s/models/mnist_mlp.kiln'", kt_kiln_bin(), kt_src_dir());
    CU_ASSERT_EQUAL(rc, 2);
    KT_ASSERT_CONTAINS(out, "--no-such-flag");
    free(out);

    rc = kt_run(&out, "'%s' build '%s/models/mnist_mlp.kiln' --target tpu", kt_kiln_bin(), kt_src_dir());
    CU_ASSERT_EQUAL(rc, 2);
    KT_ASSERT_CONTAINS(out, "tpu");
    free(out);
}

static void test_help_and_version(void)
{
    char *out = NULL;
    int rc = kt_run(&out, "'%s' --help", kt_kiln_bin());
    CU_ASSERT_EQUAL(rc, 0);
    KT_ASSERT_CONTAINS(out, "check");
    KT_ASSERT_CONTAINS(out, "build");
    CU_ASSERT(contains_ci(out, "usage"));
    free(out);

    rc = kt_run(&out, "'%s' --version", kt_kiln_bin());
    CU_ASSERT_EQUAL(rc, 0);
    KT_ASSERT_CONTAINS(out, "kiln");
    int has_version = 0;
    for (const char *q = out; q && *q; q++)
        if (q[0] >= '0' && q[0] <= '9' && q[1] == '.' && q[2] >= '0' && q[2] <= '9') has_version = 1;
    CU_ASSERT(has_version);
    free(out);

    rc = kt_run(&out, "'%s' build --help", kt_kiln_bin());
    CU_ASSERT_EQUAL(rc, 0);
    KT_ASSERT_CONTAINS(out, "--emit");
    free(out);
}

/* ---- hostile names: no code injection into generated C ------------------- */

/* A rough C lexer: the state after each byte, so a test can tell whether
 * text landed in code, a comment or a string literal. */
enum { C_CODE, C_LINE_COMMENT, C_BLOCK_COMMENT, C_STRING, C_CHAR };

static unsigned char *c_states(const char *s, size_t n)
{
    unsigned char *st = malloc(n + 1);
    int state = C_CODE, esc = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i], d = i + 1 < n ? s[i + 1] : 0;
        switch (state) {
        case C_CODE:
            if (c == '/' && (d == '/' || d == '*')) {
                state = d == '/' ? C_LINE_COMMENT : C_BLOCK_COMMENT;
                st[i] = st[i + 1] = (unsigned char)state;
                i++;
                continue;
            }
            if (c == '"') state = C_STRING, esc = 0;
            else if (c == '\'') state = C_CHAR, esc = 0;
            st[i] = (unsigned char)state;
            break;
        case C_LINE_COMMENT:
            if (c == '\\' && d == '\n') { /* a spliced line continues the comment */
                st[i] = st[i + 1] = C_LINE_COMMENT;
                i++;
                continue;
            }
            st[i] = C_LINE_COMMENT;
            if (c == '\n') state = C_CODE;
            break;
        case C_BLOCK_COMMENT:
            if (c == '*' && d == '/') {
                st[i] = st[i + 1] = C_BLOCK_COMMENT;
                state = C_CODE;
                i++;
                continue;
            }
            st[i] = C_BLOCK_COMMENT;
            break;
        default: /* string or char literal */
            if (esc) esc = 0, st[i] = (unsigned char)state;
            else if (c == '\\') esc = 1, st[i] = (unsigned char)state;
            else if (c == (state == C_STRING ? '"' : '\'') || c == '\n') state = C_CODE, st[i] = C_CODE;
            else st[i] = (unsigned char)state;
        }
    }
    return st;
}

static int header_allowed(const char *h, size_t n)
{
    static const char *std[] = {"assert.h", "float.h", "inttypes.h", "limits.h", "math.h",
                                "stdalign.h", "stdbool.h", "stddef.h", "stdint.h", "stdio.h",
                                "stdlib.h", "string.h", "time.h", "omp.h", "immintrin.h", NULL};
    if (n >= 3 && !strncmp(h, "kn_", 3)) return 1; /* the runtime's own headers */
    if (n >= 4 && (!strncmp(h, "cuda", 4) || !strncmp(h, "cublas", 6) || !strncmp(h, "nvrtc", 5))) return 1;
    for (int i = 0; std[i]; i++)
        if (strlen(std[i]) == n && !strncmp(h, std[i], n)) return 1;
    return 0;
}

/* Checks one emitted source file; returns the number of problems found. */
static int scan_emitted(const char *path, const char *needle)
{
    size_t n = 0;
    char *s = kt_read_file(path, &n);
    if (!s) {
        fprintf(stderr, "\ncannot read %s\n", path);
        return 1;
    }
    unsigned char *st = c_states(s, n);
    int bad = 0;
    /* every #include names the runtime or a standard header */
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '#' || st[i] != C_CODE) continue;
        size_t b = i;
        while (b > 0 && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
        int line_start = b == 0 || s[b - 1] == '\n';
        size_t j = i + 1;
        while (j < n && (s[j] == ' ' || s[j] == '\t')) j++;
        if (!line_start) {
            fprintf(stderr, "\n%s: stray '#' in code at byte %zu: %.60s\n", path, i, s + i);
            bad++;
            continue;
        }
        if (j + 7 > n || strncmp(s + j, "include", 7)) continue;
        j += 7;
        while (j < n && (s[j] == ' ' || s[j] == '\t')) j++;
        if (j >= n || (s[j] != '<' && s[j] != '"')) {
            fprintf(stderr, "\n%s: odd #include at byte %zu\n", path, i);
            bad++;
            continue;
        }
        char close = s[j] == '<' ? '>' : '"';
        size_t k = j + 1;
        while (k < n && s[k] != close && s[k] != '\n') k++;
        if (!header_allowed(s + j + 1, k - j - 1)) {
            fprintf(stderr, "\n%s: unexpected #include %.*s\n", path, (int)(k - j + 1), s + j);
            bad++;
        }
    }
    /* the hostile text never reaches code */
    for (const char *q = s; (q = strstr(q, "pwned")); q++)
        if (st[q - s] == C_CODE) {
            fprintf(stderr, "\n%s: 'pwned' in code at byte %td\n", path, q - s);
            bad++;
        }
    /* the raw hostile text appears only wholly inside one string literal */
    if (needle && *needle) {
        size_t ln = strlen(needle);
        for (const char *q = s; (q = memmem(q, n - (size_t)(q - s), needle, ln)); q++) {
            size_t at = (size_t)(q - s);
            int in_string = 1;
            for (size_t k = 0; k < ln; k++)
                if (st[at + k] != C_STRING) in_string = 0;
            if (!in_string) {
                fprintf(stderr, "\n%s: raw hostile text outside a string literal at byte %zu: %.80s\n",
                        path, at, q);
                bad++;
            }
        }
    }
    free(st);
    free(s);
    return bad;
}

/* Builds model source `src` (file TMP/tag.kiln).  Either the driver rejects
 * it with a located error naming the model file (exit 1), or it builds, the
 * executable's `info` works, and the emitted sources are clean. */
static void check_hostile(const char *tag, const char *src, const char *needle)
{
    char file[256];
    snprintf(file, sizeof file, "%s.kiln", tag);
    const char *p = write_model(file, src, 0);
    char path[4300], exe[4300], emit[4300];
    snprintf(path, sizeof path, "%s", p);
    snprintf(exe, sizeof exe, "%s/%s_exe", tmp(), tag);
    snprintf(emit, sizeof emit, "%s/%s_src", tmp(), tag);
    char *out = NULL;
    int rc = kt_run(&out, "timeout 300 '%s' build '%s' -o '%s' --emit '%s'", kt_kiln_bin(), path, exe, emit);
    fprintf(stderr, "\n  %s: build exit %d\n", tag, rc);
    if (rc != 0 && rc != 1) fprintf(stderr, "%s\n", out);
    CU_ASSERT(rc == 0 || rc == 1);
    if (rc == 1) {
        /* a frontend diagnostic about the model file, not a C compiler error
         * on generated code */
        KT_ASSERT_CONTAINS(out, file);
        CU_ASSERT(out && !strstr(out, "fatal error"));
        /* the diagnostic escapes the hostile text: a newline inside a name
         * must not start a new output line */
        for (const char *q = out; q && (q = strstr(q, "\n#include")); q++) {
            fprintf(stderr, "\n%s: a raw newline from the model spilled into the diagnostic:\n%s\n", tag, out);
            CU_FAIL("diagnostic is not one line per error");
            break;
        }
        for (const char *q = out; q && (q = strstr(q, ".c:")); q += 3)
            if (q[3] >= '0' && q[3] <= '9') {
                fprintf(stderr, "\n%s: a C compiler error on generated code:\n%s\n", tag, out);
                CU_FAIL("generated C did not compile");
                break;
            }
        CU_ASSERT(access(exe, F_OK) != 0);
        free(out);
        return;
    }
    free(out);
    if (rc != 0) return;

    rc = kt_run(&out, "timeout 60 '%s' info", exe);
    if (rc != 0) fprintf(stderr, "\n%s info failed (exit %d):\n%s\n", tag, rc, out);
    CU_ASSERT_EQUAL(rc, 0);
    free(out);

    rc = kt_run(&out, "find '%s' -type f \\( -name '*.c' -o -name '*.h' -o -name '*.cu' \\) | sort", emit);
    CU_ASSERT_EQUAL(rc, 0);
    int n_c = 0, bad = 0;
    for (char *line = out; line && *line;) {
        char *e = strchr(line, '\n');
        if (e) *e = 0;
        if (*line) {
            size_t L = strlen(line);
            if (L > 2 && !strcmp(line + L - 2, ".c")) n_c++;
            bad += scan_emitted(line, needle);
        }
        line = e ? e + 1 : NULL;
    }
    if (n_c == 0) fprintf(stderr, "\n--emit %s kept no .c file\n", emit);
    CU_ASSERT(n_c > 0);
    CU_ASSERT_EQUAL(bad, 0);
    free(out);
}

#define BODY                                   \
    "input x: f32[N, 784]\n"                   \
    "label y: i64[N]\n"                        \
    "fc0 = linear(x, 10)\n"                    \
    "loss = cross_entropy(fc0, y)\n"           \
    "output fc0\n"                             \
    "train { optimizer adam(lr=1e-3)  batch 8  epochs 1  shuffle  seed 0 }\n"
#define DATA "data  fashion_mnist(normalize=(0.2860, 0.3530))\n"

static void test_hostile_model_names(void)
{
    check_hostile("evil_model_comment", "model evil*/name\n" DATA BODY, "*/name");
    check_hostile("evil_model_quote", "model evil\"name\n" DATA BODY, "evil\"name");
    check_hostile("evil_model_newline", "model evil\n#include \"pwned.h\"\n" DATA BODY, NULL);
    check_hostile("evil_model_include", "model evil #include <pwned.h>\n" DATA BODY, NULL);
    check_hostile("evil_model_backslash", "model evil\\\n" DATA BODY, NULL);
    check_hostile("evil_model_unicode", "model caf\xc3\xa9_*/\n" DATA BODY, "*/");
}

static void test_hostile_strings(void)
{
    check_hostile("evil_kwarg_stdio",
                  "model evil_kwarg_stdio\n" DATA
                  "input x: f32[N, 784]\nlabel y: i64[N]\n"
                  "fc0 = linear(x, 10, name=\"*/ #include <stdio.h> /*\")\n"
                  "loss = cross_entropy(fc0, y)\noutput fc0\n",
                  "*/ #include <stdio.h> /*");
    check_hostile("evil_kwarg_newline",
                  "model evil_kwarg_newline\n" DATA
                  "input x: f32[N, 784]\nlabel y: i64[N]\n"
                  "fc0 = linear(x, 10, name=\"*/\\n#include \\\"pwned.h\\\"\\n/*\")\n"
                  "loss = cross_entropy(fc0, y)\noutput fc0\n",
                  "#include \"pwned.h\"");
    check_hostile("evil_kwarg_backslash",
                  "model evil_kwarg_backslash\n" DATA
                  "input x: f32[N, 784]\nlabel y: i64[N]\n"
                  "fc0 = linear(x, 10, name=\"trail\\\\\")\n"
                  "loss = cross_entropy(fc0, y)\noutput fc0\n",
                  "trail\\\n");
    check_hostile("evil_data_kind",
                  "model evil_data_kind\n"
                  "data \"fashion_mnist\\\" */ #include <pwned.h> /*\"(normalize=(0.2860, 0.3530))\n" BODY,
                  "*/ #include <pwned.h>");
    check_hostile("evil_data_path",
                  "model evil_data_path\n"
                  "data fashion_mnist(normalize=(0.2860, 0.3530), path=\"a\\\" */ #include <pwned.h> /* \\\\\")\n"
                  BODY,
                  "*/ #include <pwned.h>");
    check_hostile("evil_output_string",
                  "model evil_output_string\n" DATA
                  "input x: f32[N, 784]\nlabel y: i64[N]\n"
                  "fc0 = linear(x, 10)\nloss = cross_entropy(fc0, y)\n"
                  "output \"fc0\\\"); system(\\\"pwned\\\"); //\"\n",
                  "system(\"pwned");
}

static void test_hostile_identifiers(void)
{
    /* C keywords and names the generated code itself might use */
    check_hostile("evil_keywords",
                  "model main\n" DATA
                  "input x: f32[N, 784]\nlabel y: i64[N]\n"
                  "int = linear(x, 16)\n"
                  "static = relu(int)\n"
                  "fc0 = linear(static, 10)\n"
                  "loss = cross_entropy(fc0, y)\noutput fc0\n",
                  NULL);
    check_hostile("evil_collisions",
                  "model KN_MODEL\n" DATA
                  "input x: f32[N, 784]\nlabel y: i64[N]\n"
                  "arena = linear(x, 16)\n"
                  "node_1 = relu(arena)\n"
                  "kn_rt_main = linear(node_1, 10)\n"
                  "loss = cross_entropy(kn_rt_main, y)\noutput kn_rt_main\n",
                  NULL);
    /* an identifier far beyond any sane length */
    char *src = malloc(8192);
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    size_t n = (size_t)snprintf(src, 8192, "model ");
    for (int i = 0; i < 5000; i++) src[n++] = (char)('a' + i % 26);
    snprintf(src + n, 8192 - n, "\n%s%s", DATA, BODY);
    check_hostile("evil_long_name", src, NULL);
    free(src);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"unknown op: file:line:col, caret, did you mean", test_unknown_op_did_you_mean},
        {"empty file", test_empty_file},
        {"10 MB of random garbage", test_random_garbage_10mb},
        {"oversized, missing, directory", test_oversized_file},
        {"non-UTF-8 bytes", test_non_utf8},
        {"unterminated train block, string, paren", test_unterminated_train_block},
        {"linear(x, 4000000000) and other bad widths", test_huge_linear},
        {"100,000 nested calls", test_deep_nesting},
        {"usage errors exit 2", test_usage_errors},
        {"--help and --version", test_help_and_version},
        {"hostile model names", test_hostile_model_names},
        {"hostile strings", test_hostile_strings},
        {"hostile identifiers", test_hostile_identifiers},
        CU_TEST_INFO_NULL,
    };
    return kt_main("cli_errors", tests);
}

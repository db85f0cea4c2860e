/* gemm_sources.c — which GEMM should kiln call?  Times, in one run, the
 * candidate sources on the GEMM shapes kiln's models actually issue:
 *
 *   openblas  Debian OpenBLAS 0.3.21, core type from the CPU flags (see
 *             kn_rt_boot: 0.3.21 does not know this CPU and would run SSE3)
 *   blis      Debian BLIS (cblas_sgemm of libblis.so.4)
 *   onednn    Debian oneDNN (dnnl_sgemm, row-major)
 *   kiln-gen  a kernel generated for each shape with M, N, K as constants
 *             (4 x 64 register block, operands packed to that block),
 *             compiled with cc -O3 -march=native, as kiln compiles models
 *
 *   gemm_sources [--threads T] [--iters N] [--json]
 *
 * Libraries are dlopen'ed, so a missing one is reported "not installed"
 * instead of failing the build.  Each source runs each shape `iters` times
 * after a warm-up; the table gives the best and median GFLOP/s and the
 * winner per shape.  Every result is checked against OpenBLAS's (max
 * relative error) so a fast wrong kernel cannot win.  Built and run by
 * bench/gemm_sources (the wrapper script); it is a measuring stick, not part
 * of kiln. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_time.h"
#include <unistd.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

typedef void (*cblas_sgemm_fn)(int, int, int, int, int, int, float, const float *, int,
                               const float *, int, float, float *, int);
typedef int (*dnnl_sgemm_fn)(char, char, int64_t, int64_t, int64_t, float, const float *,
                             int64_t, const float *, int64_t, float, float *, int64_t);
typedef void (*kiln_gemm_fn)(const float *, const float *, float *, float *, float *);

typedef struct {
    const char *name, *where; /* where kiln issues it */
    int M, N, K, ta, tb;
} shape;

/* fmnist_mlp at batch 64 / 1, MobileNetV2 1x1 convolutions at batch 1
 * (NCHW: Y[oc, HW] = W[oc, ic] X[ic, HW]), and a square reference. */
static const shape SHAPES[] = {
    {"64x512x784 NT", "fmnist fc0 forward (b64)", 64, 512, 784, 0, 1},
    {"512x784x64 TN", "fmnist fc0 weight grad", 512, 784, 64, 1, 0},
    {"64x512x256 NN", "fmnist fc1 input grad", 64, 512, 256, 0, 0},
    {"1x512x784 NT", "fmnist fc0 forward (b1)", 1, 512, 784, 0, 1},
    {"96x12544x16 NN", "mobilenetv2 expand 1x1 (112x112)", 96, 12544, 16, 0, 0},
    {"24x3136x144 NN", "mobilenetv2 project 1x1 (56x56)", 24, 3136, 144, 0, 0},
    {"960x49x160 NN", "mobilenetv2 expand 1x1 (7x7)", 960, 49, 160, 0, 0},
    {"1280x49x320 NN", "mobilenetv2 last 1x1 (7x7)", 1280, 49, 320, 0, 0},
    {"1024x1024x1024 NN", "square reference", 1024, 1024, 1024, 0, 0},
};
#define N_SHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

enum { SRC_OPENBLAS, SRC_BLIS, SRC_ONEDNN, SRC_KILN, N_SRC };
static const char *const SRC_NAME[N_SRC] = {"openblas", "blis", "onednn", "kiln-gen"};

typedef struct {
    cblas_sgemm_fn openblas, blis;
    dnnl_sgemm_fn onednn;
    const char *missing[N_SRC];
    char tmpdir[64];
    int threads;
} sources;


static void *open_first(const char *const *names)
{
    for (; *names; names++) {
        void *h = dlopen(*names, RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
    }
    return NULL;
}

static void load_sources(sources *s)
{
    static const char *const ob[] = {"libopenblas.so.0", "libopenblas.so", NULL};
    static const char *const bl[] = {"libblis.so.4", "libblis.so", NULL};
    static const char *const dn[] = {"libdnnl.so.2", "libdnnl.so.3", "libdnnl.so", NULL};
    void *h = open_first(ob);
    if (h) {
        s->openblas = (cblas_sgemm_fn)dlsym(h, "cblas_sgemm");
        void (*set)(int) = (void (*)(int))dlsym(h, "openblas_set_num_threads");
        if (set) set(s->threads);
    }
    if (!s->openblas) s->missing[SRC_OPENBLAS] = "not installed (Debian libopenblas-dev)";
    h = open_first(bl);
    if (h) {
        s->blis = (cblas_sgemm_fn)dlsym(h, "cblas_sgemm");
        void (*set)(int) = (void (*)(int))dlsym(h, "bli_thread_set_num_threads");
        if (set) set(s->threads);
    }
    if (!s->blis) s->missing[SRC_BLIS] = "not installed (Debian libblis-dev)";
    h = open_first(dn);
    if (h) s->onednn = (dnnl_sgemm_fn)dlsym(h, "dnnl_sgemm");
    if (!s->onednn) s->missing[SRC_ONEDNN] = "not installed (Debian libdnnl-dev)";
}

/* ---- kiln-gen: a kernel source per shape, compiled like kiln's models ---- */

static int round_up(int v, int m) { return (v + m - 1) / m * m; }

/* C = op(A) op(B) with M, N, K constants.  op(A) is packed into a [Mp, K]
 * row-major block and op(B) into [K, Np] (Mp, Np padded to 4 and 64), so
 * the micro-kernel is one shape: a 4 x 64 block of C in 16 vector
 * accumulators, one row of B and four broadcasts of A per k. */
static void write_kernel(FILE *f, const shape *sh, int threads)
{
    int Mp = round_up(sh->M, 4), Np = round_up(sh->N, 64);
    fprintf(f, "#include <stddef.h>\n#define M %d\n#define N %d\n#define K %d\n#define MP %d\n#define NP %d\n",
            sh->M, sh->N, sh->K, Mp, Np);
    fprintf(f, "#define TA %d\n#define TB %d\n#define THREADS %d\n", sh->ta, sh->tb, threads);
    fputs("void kiln_gemm(const float *A, const float *B, float *C, float *PA, float *PB)\n"
          "{\n"
          "    for (int i = 0; i < MP; i++)\n"
          "        for (int k = 0; k < K; k++)\n"
          "            PA[(size_t)i * K + k] = i < M ? (TA ? A[(size_t)k * M + i] : A[(size_t)i * K + k]) : 0.0f;\n"
          "    for (int k = 0; k < K; k++)\n"
          "        for (int j = 0; j < NP; j++)\n"
          "            PB[(size_t)k * NP + j] = j < N ? (TB ? B[(size_t)j * K + k] : B[(size_t)k * N + j]) : 0.0f;\n"
          "    #pragma omp parallel for num_threads(THREADS) schedule(static) collapse(2)\n"
          "    for (int i0 = 0; i0 < MP; i0 += 4)\n"
          "        for (int j0 = 0; j0 < NP; j0 += 64) {\n"
          "            float acc[4][64] = {{0}};\n"
          "            for (int k = 0; k < K; k++) {\n"
          "                const float *b = PB + (size_t)k * NP + j0;\n"
          "                for (int r = 0; r < 4; r++) {\n"
          "                    const float a = PA[(size_t)(i0 + r) * K + k];\n"
          "                    for (int j = 0; j < 64; j++) acc[r][j] += a * b[j];\n"
          "                }\n"
          "            }\n"
          "            for (int r = 0; r < 4 && i0 + r < M; r++)\n"
          "                for (int j = 0; j < 64 && j0 + j < N; j++) C[(size_t)(i0 + r) * N + j0 + j] = acc[r][j];\n"
          "        }\n"
          "}\n",
          f);
}

/* Writes, compiles and loads the kernel for one shape; NULL on failure. */
static kiln_gemm_fn build_kernel(const sources *s, const shape *sh, int idx)
{
    char src[128], so[128], cmd[512];
    snprintf(src, sizeof src, "%s/k%d.c", s->tmpdir, idx);
    snprintf(so, sizeof so, "%s/k%d.so", s->tmpdir, idx);
    FILE *f = fopen(src, "w");
    if (!f) return NULL;
    write_kernel(f, sh, s->threads);
    fclose(f);
    const char *cc = getenv("CC") ? getenv("CC") : "cc";
    snprintf(cmd, sizeof cmd, "%s -O3 -march=native -fno-math-errno -fopenmp -shared -fPIC %s -o %s", cc, src, so);
    if (system(cmd) != 0) return NULL;
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    return h ? (kiln_gemm_fn)dlsym(h, "kiln_gemm") : NULL;
}

/* ---- timing ---- */

typedef struct {
    double best_gflops, median_gflops, max_rel_err;
    int ok;
} result;

static void fill(float *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)(((i + seed) * 2654435761u) % 2001) / 1000.0f - 1.0f;
}

static void call(const sources *s, int src, const shape *sh, kiln_gemm_fn kern, const float *A,
                 const float *B, float *C, float *PA, float *PB)
{
    int lda = sh->ta ? sh->M : sh->K, ldb = sh->tb ? sh->K : sh->N;
    switch (src) {
    case SRC_OPENBLAS:
    case SRC_BLIS:
        (src == SRC_OPENBLAS ? s->openblas : s->blis)(ROW_MAJOR, sh->ta ? TRANS : NO_TRANS,
                                                      sh->tb ? TRANS : NO_TRANS, sh->M, sh->N,
                                                      sh->K, 1.0f, A, lda, B, ldb, 0.0f, C, sh->N);
        break;
    case SRC_ONEDNN:
        s->onednn(sh->ta ? 'T' : 'N', sh->tb ? 'T' : 'N', sh->M, sh->N, sh->K, 1.0f, A, lda, B, ldb,
                  0.0f, C, sh->N);
        break;
    default:
        kern(A, B, C, PA, PB);
    }
}

static result time_source(const sources *s, int src, const shape *sh, kiln_gemm_fn kern,
                          const float *A, const float *B, float *C, const float *ref, float *PA,
                          float *PB, int iters)
{
    result r = {0, 0, 0, 0};
    double flops = 2.0 * sh->M * sh->N * sh->K;
    /* More calls per sample for tiny shapes, so the clock resolution and the
     * call overhead are measured, not noise. */
    int inner = flops < 2e6 ? 200 : flops < 5e7 ? 10 : 1;
    double *ms = malloc(sizeof *ms * (size_t)iters);
    for (int i = 0; i < 3; i++) call(s, src, sh, kern, A, B, C, PA, PB);
    for (int i = 0; i < iters; i++) {
        double t0 = now_ms();
        for (int k = 0; k < inner; k++) call(s, src, sh, kern, A, B, C, PA, PB);
        ms[i] = (now_ms() - t0) / inner;
    }
    qsort(ms, (size_t)iters, sizeof *ms, cmp_double);
    r.best_gflops = flops / (ms[0] * 1e6);
    r.median_gflops = flops / (ms[iters / 2] * 1e6);
    free(ms);
    double err = 0;
    for (size_t i = 0; i < (size_t)sh->M * sh->N; i++) {
        double d = fabs((double)C[i] - ref[i]) / (fabs(ref[i]) + 1.0);
        err = d > err ? d : err;
    }
    r.max_rel_err = err;
    r.ok = err < 1e-4;
    return r;
}

static void usage(void)
{
    fprintf(stderr, "usage: gemm_sources [--threads T] [--iters N] [--json]\n");
}

int main(int argc, char **argv)
{
    sources s = {0};
    s.threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int iters = 15, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) s.threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else return usage(), 2;
    }
    if (s.threads <= 0 || iters <= 0) return usage(), 2;
    load_sources(&s);
    if (!s.openblas) {
        fprintf(stderr, "gemm_sources: OpenBLAS is the reference and is %s\n", s.missing[SRC_OPENBLAS]);
        return 1;
    }
    strcpy(s.tmpdir, "/tmp/kiln-gemm-XXXXXX");
    if (!mkdtemp(s.tmpdir)) return perror("mkdtemp"), 1;

    printf("| shape (M x N x K, op) | where kiln issues it |");
    for (int k = 0; k < N_SRC; k++) printf(" %s GFLOP/s |", SRC_NAME[k]);
    printf(" fastest |\n|---|---|");
    for (int k = 0; k < N_SRC; k++) printf("---:|");
    printf("---|\n");
    for (int si = 0; si < N_SHAPES; si++) {
        const shape *sh = &SHAPES[si];
        size_t na = (size_t)sh->M * sh->K, nb = (size_t)sh->K * sh->N, nc = (size_t)sh->M * sh->N;
        size_t npa = (size_t)round_up(sh->M, 4) * sh->K, npb = (size_t)sh->K * round_up(sh->N, 64);
        float *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc(nc * 4), *ref = malloc(nc * 4);
        float *PA = malloc(npa * 4), *PB = malloc(npb * 4);
        fill(A, na, 1);
        fill(B, nb, 7);
        call(&s, SRC_OPENBLAS, sh, NULL, A, B, ref, PA, PB);
        kiln_gemm_fn kern = build_kernel(&s, sh, si);
        result r[N_SRC];
        int best = -1;
        for (int k = 0; k < N_SRC; k++) {
            int have = k == SRC_OPENBLAS ? 1 : k == SRC_BLIS ? s.blis != NULL
                     : k == SRC_ONEDNN ? s.onednn != NULL : kern != NULL;
            r[k].ok = 0;
            if (!have) continue;
            memset(C, 0, nc * 4);
            r[k] = time_source(&s, k, sh, kern, A, B, C, ref, PA, PB, iters);
            if (r[k].ok && (best < 0 || r[k].median_gflops > r[best].median_gflops)) best = k;
        }
        printf("| %s | %s |", sh->name, sh->where);
        for (int k = 0; k < N_SRC; k++) {
            if (r[k].ok) printf(" %.1f (best %.1f) |", r[k].median_gflops, r[k].best_gflops);
            else if (k == SRC_KILN && !kern) printf(" did not build |");
            else if (k != SRC_KILN && s.missing[k]) printf(" %s |", s.missing[k]);
            else printf(" wrong (rel err %.1e) |", r[k].max_rel_err);
        }
        printf(" %s |\n", best >= 0 ? SRC_NAME[best] : "-");
        if (json) {
            fprintf(stderr, "{\"shape\":\"%s\",\"threads\":%d", sh->name, s.threads);
            for (int k = 0; k < N_SRC; k++)
                if (r[k].ok) fprintf(stderr, ",\"%s\":%.2f", SRC_NAME[k], r[k].median_gflops);
            fprintf(stderr, ",\"fastest\":\"%s\"}\n", best >= 0 ? SRC_NAME[best] : "");
        }
        free(A), free(B), free(C), free(ref), free(PA), free(PB);
    }
    printf("\n%d threads; median (best) GFLOP/s of %d samples; results checked against OpenBLAS.\n",
           s.threads, iters);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s.tmpdir);
    return system(cmd) == 0 ? 0 : 0;
}

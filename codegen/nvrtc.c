/* nvrtc.c — compiles a model's CUDA kernels to PTX with NVRTC.
 *
 * NVRTC needs no GPU, so `kiln build --target cuda` and CI compile every
 * kernel on machines without one.  A failure is reported against the kernel
 * and IR node that the first error line falls in (emit_cuda.c records where
 * each kernel starts), followed by NVRTC's own log.  Without the CUDA
 * toolkit at build time (no KILN_HAVE_CUDA) this says so instead.
 */
#include "codegen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef KILN_HAVE_CUDA
#include <nvrtc.h>

/* The source name NVRTC prefixes its diagnostics with. */
#define KN_NVRTC_NAME "kiln_kernels.cu"

#define NVRTC_CHECK(call, d)                                                                        \
    do {                                                                                            \
        nvrtcResult rc_ = (call);                                                                   \
        if (rc_ != NVRTC_SUCCESS)                                                                   \
            return kn_diag_fail((d), "%s failed (%s:%d): %s", #call, __FILE__, __LINE__,            \
                                nvrtcGetErrorString(rc_));                                          \
    } while (0)

/* First line number of an error in NVRTC's log ("kiln_kernels.cu(123): error: ..."). */
static int first_error_line(const char *log)
{
    const char *p = log;
    while ((p = strstr(p, KN_NVRTC_NAME "(")) != NULL) {
        int line = atoi(p + strlen(KN_NVRTC_NAME "("));
        const char *close = strchr(p, ')');
        if (close && strncmp(close, "): error", 8) == 0) return line;
        p += 1;
    }
    return -1;
}

static kn_status report_failure(kn_cuda_prog *cp, nvrtcProgram prog, const char *arch, kn_diag *d)
{
    size_t len = 0;
    nvrtcGetProgramLogSize(prog, &len);
    char *log = kn_xmalloc(len + 1);
    log[0] = 0;
    if (len) nvrtcGetProgramLog(prog, log);
    log[len] = 0;
    const char *node = NULL;
    const char *kernel = kn_cuda_prog_line_owner(cp, first_error_line(log), &node);
    /* Long logs are cut: the first errors say what is wrong. */
    if (strlen(log) > 3000) strcpy(log + 2980, "\n... (log cut)");
    if (kernel)
        kn_diag_fail(d, "NVRTC could not compile CUDA kernel %s (%s) for %s (a kiln bug: generated code must "
                        "compile):\n%s", kernel, node, arch, log);
    else
        kn_diag_fail(d, "NVRTC could not compile the CUDA kernels' prelude for %s:\n%s", arch, log);
    free(log);
    return KN_ERR;
}

kn_status kn_cuda_compile(kn_cuda_prog *cp, const char *arch, kn_strbuf *ptx, kn_diag *d)
{
    if (!arch || !*arch) arch = KN_CUDA_DEFAULT_ARCH;
    if (strncmp(arch, "compute_", 8) != 0 && strncmp(arch, "sm_", 3) != 0)
        return kn_diag_fail(d, "--arch %s: expected a CUDA architecture like compute_90 or sm_90", arch);
    nvrtcProgram prog;
    NVRTC_CHECK(nvrtcCreateProgram(&prog, kn_cuda_prog_source(cp)->s, KN_NVRTC_NAME, 0, NULL, NULL), d);
    char arch_opt[64];
    snprintf(arch_opt, sizeof arch_opt, "--gpu-architecture=%s", arch);
    const char *opts[] = {arch_opt, "--std=c++17"};
    nvrtcResult rc = nvrtcCompileProgram(prog, 2, opts);
    kn_status st = KN_OK;
    if (rc == NVRTC_ERROR_COMPILATION) {
        st = report_failure(cp, prog, arch, d);
    } else if (rc != NVRTC_SUCCESS) {
        st = kn_diag_fail(d, "nvrtcCompileProgram (%s) failed: %s", arch, nvrtcGetErrorString(rc));
    } else {
        size_t size = 0;
        nvrtcGetPTXSize(prog, &size); /* includes the NUL */
        char *buf = kn_xmalloc(size + 1);
        if (nvrtcGetPTX(prog, buf) != NVRTC_SUCCESS) st = kn_diag_fail(d, "nvrtcGetPTX failed");
        buf[size] = 0;
        if (st == KN_OK) kn_sb_puts(ptx, buf);
        free(buf);
    }
    nvrtcDestroyProgram(&prog);
    return st;
}

#else

kn_status kn_cuda_compile(kn_cuda_prog *cp, const char *arch, kn_strbuf *ptx, kn_diag *d)
{
    (void)cp;
    (void)arch;
    (void)ptx;
    return kn_diag_fail(d, "target cuda: this kiln was built without the CUDA toolkit (NVRTC not found by CMake)");
}

#endif

/* codegen.h — IR to source code, and source code to an executable.
 *
 * The C emitter prints one self-contained .c file per model: the parameter
 * table, one function per phase (infer, later train) with static shapes and
 * arena offsets from the memory planner, and the kn_rt_model descriptor the
 * runtime drives.  The build step runs the system C compiler on it and links
 * libkiln_rt.  Codegen never parses model files: it only reads the IR.
 */
#ifndef KN_CODEGEN_H
#define KN_CODEGEN_H

#include "../ir/ir.h"
#include "../passes/passes.h"

typedef struct {
    const char *name;        /* "infer" */
    const kn_graph *graph;   /* after the phase's pipeline */
    const kn_memplan *plan;
} kn_codegen_phase;

/* The CUDA side of a program being emitted (codegen/emit_cuda.c): device
 * source of all kernels plus the host code launching them. */
typedef struct kn_cuda_prog kn_cuda_prog;

#define KN_CUDA_DEFAULT_ARCH "compute_90"

typedef struct {
    const char *model_hash;  /* hex digest identifying the model source */
    const char *target;      /* "cpu" or "cuda" */
    /* Where to write the initial values of parameters that carry data
     * (imported ONNX initializers).  The generated C embeds that file with
     * an assembler .incbin, so the C compiler never parses megabytes of
     * literals; the path is resolved by the assembler relative to the
     * compiler's working directory.  NULL: print them as C arrays (fine for
     * the few floats of test graphs). */
    const char *blob_path;
    /* Target cuda: the program the phases' kernels are emitted into (from
     * kn_cuda_prog_new), the files the executable embeds (the PTX nvrtc.c
     * writes, the device source) and the virtual architecture.  NULL cuda:
     * a CPU-only program. */
    kn_cuda_prog *cuda;
    const char *cuda_ptx_path, *cuda_src_path, *cuda_arch;
    /* Every node its own loop, no elementwise runs (elem_runs.c): tests
     * compare the two programs. */
    bool no_elem_runs;
} kn_codegen_opts;

/* Emits the whole C program for `model` (its parameters and metadata) with
 * the given phases.  Output is deterministic: same input, same bytes. */
kn_status kn_emit_c_program(const kn_graph *model, const kn_codegen_phase *phases,
                            int n_phases, const kn_codegen_opts *opts,
                            kn_strbuf *out, kn_diag *d);

/* Refuses a path the generated C cannot embed with .incbin (quotes,
 * backslashes, '?', non-printable characters). */
kn_status kn_codegen_check_embed_path(const char *path, kn_diag *d);

kn_cuda_prog *kn_cuda_prog_new(const char *model_name);
void kn_cuda_prog_free(kn_cuda_prog *cp);
/* The device source (complete once kn_emit_c_program returned). */
kn_strbuf *kn_cuda_prog_source(kn_cuda_prog *cp);
int kn_cuda_prog_kernels(const kn_cuda_prog *cp);
/* The kernel whose text holds device-source line `line` (1-based) and, in
 * *node, the phase and IR node it came from; NULL for the prelude. */
const char *kn_cuda_prog_line_owner(const kn_cuda_prog *cp, int line, const char **node);

/* Compiles the program's device source with NVRTC for `arch`
 * ("compute_90") into PTX (NUL-terminated in ptx).  On failure the diag
 * names the first failing kernel, its IR node and NVRTC's log.  Fails
 * cleanly when kiln was built without the CUDA toolkit. */
kn_status kn_cuda_compile(kn_cuda_prog *cp, const char *arch, kn_strbuf *ptx, kn_diag *d);

/* How to find the compiler and the runtime. */
typedef struct {
    const char *cc;          /* C compiler */
    const char *rt_include;  /* folder holding kn_rt.h */
    const char *rt_lib;      /* libkiln_rt.a */
    const char *link_flags;  /* libraries libkiln_rt needs: "-lopenblas -lz ..." */
    const char *extra_cflags;/* e.g. sanitizer flags; may be "" */
    const char *opt_flags;   /* "-O3" */
    const char *cuda_libs;   /* target cuda: "libkiln_rt_cuda.a -L... -lcudart -lcublas", else NULL */
} kn_toolchain;

/* Compiles `c_path` into the executable `exe_path`.  On failure the diag
 * holds the compiler's output. */
kn_status kn_build_executable(const kn_toolchain *tc, const char *c_path,
                              const char *exe_path, kn_diag *d);

#endif

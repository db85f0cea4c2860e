/* codegen_internal.h — what the C and CUDA emitters share inside codegen/.
 *
 * The CUDA emitter addresses values exactly like the C emitter (the same
 * arena offsets from the memory planner, the same weight-blob offsets), so
 * it borrows the C emitter's addressing through this impl struct instead of
 * keeping a second copy of the layout rules.
 */
#ifndef KN_CODEGEN_INTERNAL_H
#define KN_CODEGEN_INTERNAL_H

#include "codegen.h"
#include "../ir/emit.h"

typedef struct {
    const kn_memplan *plan;
    const int64_t *weight_offset; /* per value id, floats; -1 if not a weight */
    int phase;                    /* index, names this phase's constants */
    kn_cuda_prog *cuda;           /* CUDA emission in progress, else NULL */
} codegen_emit_impl;

/* Elementwise runs (elem_runs.c): how many nodes from `first` on run as one
 * loop (1: node `first` alone; `gpu`: for a CUDA kernel, where ops marked
 * elem_gpu_only may join), and that loop. */
int kn_elem_run_length(const kn_graph *g, const kn_memplan *plan, int first, bool gpu);
void kn_elem_run_emit(kn_emit *e, const kn_graph *g, const kn_memplan *plan, int first, int count);

/* "node 17: relu 'h0' f32[N,512] <- bn0", sanitized for a comment. */
void kn_codegen_node_comment(const kn_graph *g, const kn_node *n, char *buf, size_t cap);
/* `static const float NAME[k] = {...};` of a value carrying data. */
void kn_codegen_emit_array(kn_strbuf *o, const kn_value *v, const char *cname);
/* Embeds file `path` (checked) as `extern const char SYM[]` via .incbin,
 * followed by a NUL byte so text files can be used as C strings. */
void kn_codegen_emit_incbin(kn_strbuf *o, const char *sym, const char *path, const char *type);

/* emit_cuda.c */
/* Prints phase `ph` as phase_NAME_cuda into the program's host code and its
 * kernels into the device source; `e` carries the C emitter's addressing. */
kn_status kn_cuda_emit_phase(kn_cuda_prog *cp, kn_emit *e, const kn_codegen_phase *ph, bool runs, kn_diag *d);
void kn_cuda_emit_consts(kn_cuda_prog *cp, const kn_graph *g, int phase);
/* Appends the host phase functions and the kn_rt_cuda_module table. */
void kn_cuda_emit_module(kn_cuda_prog *cp, const kn_codegen_phase *phases, int n_phases,
                         const kn_codegen_opts *opts, kn_strbuf *o);

#endif

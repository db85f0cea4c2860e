/* emit.h — the interface op files use to print code.
 *
 * The IR owns this interface so op files can hold their own emission without
 * knowing the code generator; codegen/ implements it (where values live in
 * the arena or weight blob is codegen's business).
 *
 * Inside a phase function of generated C the following names exist:
 *   n        int, the batch size of this call (the runtime value of N)
 *   ctx      kn_rt_ctx *: ctx->lr, ctx->step, ctx->seed, ctx->grad_scale
 *            (training phases read these; see runtime/kn_rt.h)
 *   kn_arena, kn_fixed, kn_w, kn_g   reserved by codegen (arena, weights, gradients)
 * and every kernel declared in runtime/kn_rt.h may be called.
 */
#ifndef KN_EMIT_H
#define KN_EMIT_H

#include "ir.h"

typedef struct kn_emit kn_emit;

struct kn_emit {
    kn_strbuf *out;
    int indent;
    /* Writes a C expression for the address of value `vid`, of type
     * float* or int64_t* matching its dtype. */
    void (*addr)(kn_emit *e, int vid, char *buf, size_t cap);
    /* Writes a C expression (float*) for the gradient slot of parameter
     * `param_vid` in the gradient blob (same layout as the weights). */
    void (*grad_addr)(kn_emit *e, int param_vid, char *buf, size_t cap);
    const kn_graph *g;
    kn_diag *diag;          /* where emitters report errors (kn_op_error) */
    void *impl;
    /* CUDA emission only (NULL for C): opens a kernel of this node in the
     * device source, redirecting `out` there, and adds its launch with
     * `work` threads to the host code; kernel_end closes it and points `out`
     * back at the host code.  See kn_emit_cuda_kernel. */
    void (*kernel_begin)(kn_emit *e, const char *work);
    void (*kernel_end)(kn_emit *e);
};

/* One line of code at the current indent. */
void kn_emit_line(kn_emit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `const float *restrict X = <addr>;` (int64_t for i64 values). */
void kn_emit_bind_in(kn_emit *e, const char *cname, int vid);
/* `float *restrict Y = <addr>;` */
void kn_emit_bind_out(kn_emit *e, const char *cname, int vid);
/* Element count of value `vid` as a C expression: "784" or "((size_t)n * 784)". */
void kn_emit_numel(kn_emit *e, int vid, char *buf, size_t cap);
/* Dimension i of value `vid` as a C expression ("n" for the batch dim). */
void kn_emit_dim(kn_emit *e, int vid, int i, char *buf, size_t cap);
/* Opens / closes a `{ ... }` block with indentation. */
void kn_emit_open(kn_emit *e);
void kn_emit_close(kn_emit *e);
/* A C float literal that round-trips exactly ("0.30000001f"). */
void kn_emit_float_lit(double v, char *buf, size_t cap);

/* ---- CUDA emission (an op's emit_cuda) ----
 * While emit_cuda runs, `out` is the body of the host phase function (where
 * cuBLAS calls go, binding device pointers with the helpers above).  A
 * kernel is opened with kn_emit_cuda_kernel; inside it the names of a C
 * phase exist too (n, kn_arena, kn_fixed, kn_w, kn_g, ctx->seed, ctx->step,
 * ctx->lr, ctx->grad_scale, ctx->sample0), so kn_emit_bind_in/out and
 * kn_emit_numel print the same expressions in both.  Kernels are launched
 * with at least `work` threads in total and any grid: their loops go
 * through KN_FOR(i, count), a grid-stride loop, so the launch shape never
 * decides correctness. */
void kn_emit_cuda_kernel(kn_emit *e, const char *work);
void kn_emit_cuda_end(kn_emit *e);
/* True while emitting CUDA (emit_cuda), false for C. */
bool kn_emit_is_cuda(const kn_emit *e);

/* A loop over independent iterations `var` in [0, count), with `body`
 * (printf format) on the same line: "for (size_t i = 0; i < count; i++)
 * body" in C, "KN_FOR(i, count) body" inside a CUDA kernel.  An emitter
 * written as kernel / binds / kn_emit_for / end therefore serves as both
 * emit_c and emit_cuda (kn_emit_cuda_kernel and _end do nothing in C). */
void kn_emit_for(kn_emit *e, const char *var, const char *count, const char *body, ...)
    __attribute__((format(printf, 4, 5)));
/* The same loop opening a block; kn_emit_close ends it. */
void kn_emit_for_open(kn_emit *e, const char *var, const char *count);

/* In a CUDA kernel about to run work that is not split across threads
 * (launched with work "1"): lets only the first thread through.  Nothing in C. */
void kn_emit_cuda_one_thread(kn_emit *e);

typedef kn_status (*kn_emit_fn)(kn_emit *e, const kn_graph *g, const kn_node *n);

/* ---- sums over many items, the same order in C and on the GPU ----
 * A loss is a sum over rows; one GPU thread summing them all is the slow
 * part of a small model's step, and a sum whose order follows the launch
 * shape would give other bits than the CPU.  So every such sum has one
 * fixed order: item i goes to lane i % KN_EMIT_LANES, each lane adds its
 * items in order (in double), then the lanes are added in order.  C runs
 * the lanes one after another; a CUDA kernel (opened by the caller with
 * work KN_EMIT_LANES_WORK: one block) gives each thread a lane, keeps the
 * lane sums in shared memory and lets thread 0 add them.
 *
 *   kn_emit_lanes_open(e, "i", "(size_t)n", 2, (const char *[]){"total", "wsum"});
 *   ... body: per item i, `total += ...;` (may `continue`) ...
 *   kn_emit_lanes_close(e, 2, names);
 *   ... `total`, `wsum` now hold the sums: print the result ...
 *   kn_emit_close(e);
 * The accumulators are doubles named by the caller. */
#define KN_EMIT_LANES 256
#define KN_EMIT_LANES_WORK "256"
void kn_emit_lanes_open(kn_emit *e, const char *var, const char *count, int n_acc, const char *const *acc);
void kn_emit_lanes_close(kn_emit *e, int n_acc, const char *const *acc);
/* Inside such a one-block kernel (after kn_emit_lanes_close's block is
 * closed): a loop over [0, count) shared by the block's threads (a plain
 * loop in C), and a barrier between loops that touch the same memory
 * (nothing in C).  `decl` declares a variable every thread of the block
 * sees (`__shared__` on the GPU): "double scale". */
void kn_emit_block_for_open(kn_emit *e, const char *var, const char *count);
void kn_emit_block_sync(kn_emit *e);
void kn_emit_block_shared(kn_emit *e, const char *decl);

#endif

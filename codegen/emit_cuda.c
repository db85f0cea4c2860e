/* emit_cuda.c — the CUDA emitter.
 *
 * For a model built with `--target cuda` it produces two texts:
 *   - the device source: a prelude (types, KN_FOR, the Philox RNG of
 *     runtime/kn_rt_rng.c), then the kernels every node's emit_cuda opened,
 *     one per node (or a few: a node may need several passes), each named
 *     "<phase>_n<node id>[_<k>]" and preceded by the same node comment the C
 *     emitter prints;
 *   - host C appended to the C program: per phase a function
 *     phase_NAME_cuda that launches those kernels and calls cuBLAS in node
 *     order on the device arena (same offsets as the C phase: the memory
 *     plan is reused as is), and the module table the runtime loads.
 * Both are deterministic.  It does not compile anything: nvrtc.c does.
 * The update phase's optimizer steps and the train phase's gradient
 * accumulations (one node per trainable parameter, each on its own slices
 * of the weight and gradient blobs) share one kernel each, launched once:
 * see emit_fused_params.
 * A run of elementwise nodes (codegen/elem_runs.c) is one kernel too.
 */
#include "codegen.h"
#include "codegen_internal.h"
#include "../ir/emit.h"
#include "../ir/ops/op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;       /* "train_n17_0" */
    char *node;       /* "phase train, node 17: relu 'h0'" */
    int first_line;   /* 1-based line of the device source where it starts */
} cuda_kernel;

struct kn_cuda_prog {
    kn_strbuf dev, host;
    cuda_kernel *k;
    int n_k, cap_k;
    size_t counted;            /* dev.s[0, counted) holds `lines` newlines */
    int lines;
    /* the node being emitted */
    char phase_name[64];
    const kn_node *node;
    char node_desc[1100];
    int k_in_node;
    int fused_to;              /* id of the last node a fused kernel covers, or -1 */
    bool fusing;               /* inside a fused kernel: nodes do not close it */
    kn_strbuf *saved_out;
    int saved_indent;
};

/* Mirrors kn_rt_cuda_ctx in runtime/kn_rt.h (same field order and types)
 * and kn_rt_rng.c's Philox4x32-10, so dropout draws the CPU's masks. */
static const char PRELUDE[] =
    "typedef unsigned long long uint64_t;\n"
    "typedef long long int64_t;\n"
    "typedef unsigned int uint32_t;\n"
    "#define INT64_C(c) c##LL\n"
    "#define UINT64_C(c) c##ULL\n"
    "#define INT64_MAX 9223372036854775807LL\n"
    "#define INT64_MIN (-INT64_MAX - 1)\n"
    "#define restrict __restrict__\n"
    "#define INFINITY __int_as_float(0x7f800000)\n"
    "#define NAN __int_as_float(0x7fffffff)\n"
    "typedef struct { uint64_t seed, step; float lr, grad_scale; uint32_t sample0; } kn_cuda_ctx;\n"
    "/* Tests compile these kernels as host C (one thread walking every KN_FOR)\n"
    " * by defining KN_KERNEL_DECL first. */\n"
    "#ifndef KN_KERNEL_DECL\n"
    "#define KN_KERNEL_DECL extern \"C\" __global__ void\n"
    "#endif\n"
    "#define KN_KERNEL(name) KN_KERNEL_DECL name(unsigned char *kn_arena, unsigned char *kn_fixed, \\\n"
    "    float *kn_w, float *kn_g, int n, const kn_cuda_ctx *restrict ctx)\n"
    "/* Grid-stride loop: correct for any launch shape. */\n"
    "#define KN_FOR(i, count) \\\n"
    "    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)(count); \\\n"
    "         i += (size_t)gridDim.x * blockDim.x)\n"
    "\n"
    "/* Philox4x32-10, word for word runtime/kn_rt_rng.c: uniform k of block b\n"
    " * is the CPU's kn_rt_uniform4(seed, stream, b)[k]. */\n"
    "__device__ static void kn_uniform4(uint64_t seed, uint64_t stream, uint64_t blk, float out[4])\n"
    "{\n"
    "    uint32_t c0 = (uint32_t)blk, c1 = (uint32_t)(blk >> 32), c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);\n"
    "    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);\n"
    "    for (int r = 0; r < 10; r++) {\n"
    "        uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;\n"
    "        uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;\n"
    "        uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;\n"
    "        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;\n"
    "        k0 += 0x9E3779B9u;\n"
    "        k1 += 0xBB67AE85u;\n"
    "    }\n"
    "    out[0] = (float)(c0 >> 8) * (1.0f / 16777216.0f);\n"
    "    out[1] = (float)(c1 >> 8) * (1.0f / 16777216.0f);\n"
    "    out[2] = (float)(c2 >> 8) * (1.0f / 16777216.0f);\n"
    "    out[3] = (float)(c3 >> 8) * (1.0f / 16777216.0f);\n"
    "}\n"
    "\n"
    "#define kn_rt_uniform4 kn_uniform4\n";

/* Host statements an op prints in a GPU phase (its C emitter's GEMM
 * calls, copies and clears) address device memory: send them to cuBLAS and
 * cudaMemcpyAsync/cudaMemsetAsync on the model's stream.  Scoped to the GPU
 * phase functions by the #undefs after each. */
static const char HOST_REDIRECTS[] =
    "#undef memcpy\n#undef memset\n"
    "#define kn_rt_sgemm(...) kn_rt_cuda_sgemm(kn_cu, __VA_ARGS__)\n"
    "#define kn_rt_sgemm_strided(...) kn_rt_cuda_sgemm_strided(kn_cu, __VA_ARGS__)\n"
    "#define memcpy(dst, src, bytes) kn_rt_cuda_memcpy(kn_cu, (dst), (src), (bytes))\n"
    "#define memset(dst, v, bytes) kn_rt_cuda_memset(kn_cu, (dst), (v), (bytes))\n";
static const char HOST_REDIRECTS_END[] = "#undef kn_rt_sgemm\n#undef kn_rt_sgemm_strided\n#undef memcpy\n#undef memset\n\n";

kn_cuda_prog *kn_cuda_prog_new(const char *model_name)
{
    kn_cuda_prog *cp = kn_xmalloc(sizeof *cp);
    memset(cp, 0, sizeof *cp);
    kn_sb_init(&cp->dev);
    kn_sb_init(&cp->host);
    cp->fused_to = -1;
    char mname[128];
    kn_c_comment_text(model_name, mname, sizeof mname);
    kn_sb_printf(&cp->dev, "/* CUDA kernels generated by kiln from model '%s'. Do not edit: edit the model file. */\n",
                 mname);
    kn_sb_puts(&cp->dev, PRELUDE);
    return cp;
}

void kn_cuda_prog_free(kn_cuda_prog *cp)
{
    if (!cp) return;
    for (int i = 0; i < cp->n_k; i++) {
        free(cp->k[i].name);
        free(cp->k[i].node);
    }
    free(cp->k);
    kn_sb_free(&cp->dev);
    kn_sb_free(&cp->host);
    free(cp);
}

kn_strbuf *kn_cuda_prog_source(kn_cuda_prog *cp) { return &cp->dev; }
int kn_cuda_prog_kernels(const kn_cuda_prog *cp) { return cp->n_k; }

/* Newlines in the device source so far, counted incrementally. */
static int dev_lines(kn_cuda_prog *cp)
{
    for (; cp->counted < cp->dev.len; cp->counted++) cp->lines += cp->dev.s[cp->counted] == '\n';
    return cp->lines;
}

const char *kn_cuda_prog_line_owner(const kn_cuda_prog *cp, int line, const char **node)
{
    const cuda_kernel *best = NULL;
    for (int i = 0; i < cp->n_k; i++)
        if (cp->k[i].first_line <= line) best = &cp->k[i];
    if (node) *node = best ? best->node : NULL;
    return best ? best->name : NULL;
}

static void kernel_begin(kn_emit *e, const char *work)
{
    kn_cuda_prog *cp = e->impl ? ((codegen_emit_impl *)e->impl)->cuda : NULL;
    if (!cp || cp->saved_out) return; /* kernels do not nest */
    char name[128];
    if (cp->fused_to >= 0) snprintf(name, sizeof name, "%s_n%d_to_n%d", cp->phase_name, cp->node->id, cp->fused_to);
    else snprintf(name, sizeof name, "%s_n%d_%d", cp->phase_name, cp->node->id, cp->k_in_node++);
    kn_emit_line(e, "kn_rt_cuda_launch(kn_cu, %d, (size_t)(%s), n, kn_fixed); /* %s */", cp->n_k, work, name);
    if (cp->n_k == cp->cap_k) {
        cp->cap_k = cp->cap_k ? cp->cap_k * 2 : 64;
        cp->k = kn_xrealloc(cp->k, sizeof(*cp->k) * (size_t)cp->cap_k);
    }
    kn_sb_printf(&cp->dev, "\n/* %s */\n", cp->node_desc);
    cp->k[cp->n_k] = (cuda_kernel){kn_xstrdup(name), kn_xstrdup(cp->node_desc), dev_lines(cp) + 1};
    cp->n_k++;
    kn_sb_printf(&cp->dev, "KN_KERNEL(%s)\n{\n", name);
    cp->saved_out = e->out;
    cp->saved_indent = e->indent;
    e->out = &cp->dev;
    e->indent = 1;
}

static void kernel_end(kn_emit *e)
{
    kn_cuda_prog *cp = e->impl ? ((codegen_emit_impl *)e->impl)->cuda : NULL;
    if (!cp || !cp->saved_out || cp->fusing) return;
    kn_sb_puts(&cp->dev, "}\n");
    e->out = cp->saved_out;
    e->indent = cp->saved_indent;
    cp->saved_out = NULL;
}

/* One node: its comment and block in the host function, its kernels
 * (opened by its emit_cuda through kernel_begin) in the device source. */
static kn_status emit_node(kn_cuda_prog *cp, kn_emit *e, const kn_graph *g, const kn_node *n, kn_diag *d)
{
    const kn_op_def *def = kn_op_get(n->op);
    char cm[1024];
    kn_codegen_node_comment(g, n, cm, sizeof cm);
    snprintf(cp->node_desc, sizeof cp->node_desc, "phase %s, %s", cp->phase_name, cm);
    cp->node = n;
    cp->k_in_node = 0;
    kn_sb_printf(&cp->host, "\n    /* %s */\n", cm);
    kn_emit_open(e);
    if (!def->emit_cuda) {
        char name[96];
        kn_c_comment_text(n->name, name, sizeof name);
        kn_diag_fail(d, "op '%s' (node %d '%s', phase %s) has no CUDA emission yet: build with --target cpu",
                     def->name, n->id, name, cp->phase_name);
        return kn_diag_locate(d, n);
    }
    kn_status st = def->emit_cuda(e, g, n);
    kernel_end(e); /* an emitter that failed midway leaves a kernel open */
    if (st != KN_OK) {
        if (!d->set) kn_diag_fail(d, "CUDA emission failed for %s '%s'", def->name, n->name);
        return kn_diag_locate(d, n);
    }
    kn_emit_close(e);
    return KN_OK;
}

/* sgd_step / adam_step: the nodes the optimizer-lowering pass adds, one
 * per trainable parameter; each reads and writes only its parameter's
 * slices (parameter, optimizer state, gradient) and the step scalars.
 * accumulate_grad: autodiff's last node per parameter, adding a gradient
 * into the parameter's slice of the gradient blob. */
static bool is_per_param_node(const kn_node *n)
{
    return n->op == KN_OP_SGD_STEP || n->op == KN_OP_ADAM_STEP || n->op == KN_OP_ACCUMULATE_GRAD;
}

/* How many per-parameter nodes of one op follow one another from node `first`. */
static int per_param_nodes_from(const kn_graph *g, int first)
{
    if (!is_per_param_node(g->nodes[first])) return 0;
    int k = first;
    while (k < g->n_nodes && g->nodes[k]->op == g->nodes[first]->op) k++;
    return k - first;
}

/* Nodes first .. first+count-1, per-parameter nodes of one op, as one
 * kernel: their bodies follow one another in it, each its own grid-stride
 * loop, and the launch is sized for the largest parameter (a thread past a
 * smaller one skips its loop).  No node reads what another writes, so no
 * thread waits for another; a launch per parameter cost more than most
 * updates (18 launches for fmnist_mlp's optimizer steps and 18 more for its
 * gradients, 150 for a fine-tuned MobileNetV2). */
static kn_status emit_fused_params(kn_cuda_prog *cp, kn_emit *e, const kn_graph *g, int first, int count, kn_diag *d)
{
    const kn_node *a = g->nodes[first], *z = g->nodes[first + count - 1];
    int64_t work = 1;
    for (int k = 0; k < count; k++) {
        int64_t numel = 0;
        kn_shape_numel_per_sample(&kn_graph_value(g, g->nodes[first + k]->in[0])->shape, &numel);
        if (numel > work) work = numel;
    }
    const char *op = kn_op_get(a->op)->name;
    snprintf(cp->node_desc, sizeof cp->node_desc, "phase %s, nodes %d to %d: %d %s nodes, one per parameter, in one kernel",
             cp->phase_name, a->id, z->id, count, op);
    kn_sb_printf(&cp->host, "\n    /* nodes %d to %d: %d %s nodes, one kernel */\n", a->id, z->id, count, op);
    kn_emit_open(e);
    char w[32];
    snprintf(w, sizeof w, "%lld", (long long)work);
    cp->node = a;
    cp->fused_to = z->id;
    kernel_begin(e, w);
    cp->fused_to = -1;
    cp->fusing = true;
    kn_status st = KN_OK;
    for (int k = 0; k < count && st == KN_OK; k++) {
        const kn_node *n = g->nodes[first + k];
        char cm[1024];
        kn_codegen_node_comment(g, n, cm, sizeof cm);
        kn_emit_line(e, "/* %s */", cm);
        kn_emit_open(e);
        cp->node = n;
        st = kn_op_get(n->op)->emit_cuda(e, g, n); /* its kernel_begin / kernel_end: no-ops while fusing */
        if (st != KN_OK) {
            if (!d->set) kn_diag_fail(d, "CUDA emission failed for %s '%s'", kn_op_get(n->op)->name, n->name);
            kn_diag_locate(d, n);
        }
        kn_emit_close(e);
    }
    cp->fusing = false;
    kernel_end(e);
    if (st != KN_OK) return st;
    kn_emit_close(e);
    return KN_OK;
}

/* Nodes first .. first+count-1, an elementwise run (elem_runs.c), as one
 * kernel: one launch instead of `count`. */
static void emit_elem_run(kn_cuda_prog *cp, kn_emit *e, const kn_graph *g, const kn_memplan *plan, int first,
                          int count)
{
    const kn_node *a = g->nodes[first], *z = g->nodes[first + count - 1];
    /* every node by op and name, so a compile error names them all */
    size_t len = (size_t)snprintf(cp->node_desc, sizeof cp->node_desc, "phase %s, nodes %d to %d: %d elementwise nodes (",
                                  cp->phase_name, a->id, z->id, count);
    for (int k = 0; k < count && len < sizeof cp->node_desc; k++) {
        char name[96];
        kn_c_comment_text(g->nodes[first + k]->name, name, sizeof name);
        len += (size_t)snprintf(cp->node_desc + len, sizeof cp->node_desc - len, "%s%s '%s'", k ? ", " : "",
                                kn_op_get(g->nodes[first + k]->op)->name, name);
    }
    if (len < sizeof cp->node_desc) snprintf(cp->node_desc + len, sizeof cp->node_desc - len, ") in one kernel");
    kn_sb_printf(&cp->host, "\n    /* nodes %d to %d: %d elementwise nodes, one kernel */\n", a->id, z->id, count);
    kn_emit_open(e);
    char numel[64];
    kn_emit_numel(e, a->out[0], numel, sizeof numel);
    cp->node = a;
    cp->fused_to = z->id;
    kernel_begin(e, numel);
    cp->fused_to = -1;
    kn_elem_run_emit(e, g, plan, first, count);
    kernel_end(e);
    kn_emit_close(e);
}

kn_status kn_cuda_emit_phase(kn_cuda_prog *cp, kn_emit *e, const kn_codegen_phase *ph, bool runs, kn_diag *d)
{
    const kn_graph *g = ph->graph;
    kn_c_ident(ph->name, cp->phase_name, sizeof cp->phase_name);
    const char *fname = cp->phase_name;
    kn_strbuf *o = &cp->host;
    e->out = o;
    e->indent = 1;
    e->kernel_begin = kernel_begin;
    e->kernel_end = kernel_end;
    kn_sb_printf(o, "/* ---- phase %s on the GPU: the same nodes as phase_%s, as kernel launches ---- */\n", fname,
                 fname);
    kn_sb_puts(o, HOST_REDIRECTS);
    kn_sb_printf(o, "static void phase_%s_cuda(kn_rt_ctx *ctx, int n)\n{\n", fname);
    kn_sb_puts(o, "    kn_rt_cuda *kn_cu = ctx->cuda;\n");
    kn_sb_puts(o, "    unsigned char *kn_arena = kn_rt_cuda_arena(kn_cu);\n");
    kn_sb_printf(o, "    unsigned char *kn_fixed = kn_arena + (size_t)n * PHASE_%s_PER_SAMPLE;\n", fname);
    kn_sb_puts(o, "    float *kn_w = kn_rt_cuda_weights(kn_cu);\n");
    kn_sb_puts(o, "    float *kn_g = kn_rt_cuda_grads(kn_cu);\n");
    kn_sb_puts(o, "    (void)kn_arena; (void)kn_fixed; (void)kn_w; (void)kn_g;\n");
    for (int i = 0; i < g->n_nodes;) {
        int steps = per_param_nodes_from(g, i), run = runs ? kn_elem_run_length(g, ph->plan, i, true) : 1;
        kn_status st = KN_OK;
        if (steps >= 2) st = emit_fused_params(cp, e, g, i, steps, d);
        else if (run >= 2) emit_elem_run(cp, e, g, ph->plan, i, run);
        else st = emit_node(cp, e, g, g->nodes[i], d);
        if (st != KN_OK) return st;
        i += steps >= 2 ? steps : run;
    }
    kn_sb_puts(o, "}\n");
    kn_sb_puts(o, HOST_REDIRECTS_END);
    return KN_OK;
}

/* Phase constants (ONNX Constant data) live on the device as __device__
 * arrays under the names the C emitter's addresses use. */
void kn_cuda_emit_consts(kn_cuda_prog *cp, const kn_graph *g, int phase)
{
    for (int i = 0; i < g->n_values; i++) {
        const kn_value *v = g->values[i];
        if (v->dead || !v->data || v->kind != KN_VAL_CONST) continue;
        char cname[48];
        snprintf(cname, sizeof cname, "kn_const_%d_%d", phase, i);
        kn_sb_puts(&cp->dev, "__device__ ");
        kn_codegen_emit_array(&cp->dev, v, cname);
    }
}

/* `static const char *const NAME[]` of every kernel's name (or node). */
static void emit_kernel_strings(kn_strbuf *o, const kn_cuda_prog *cp, const char *name, bool nodes)
{
    kn_sb_printf(o, "static const char *const %s[] = {\n", name);
    for (int i = 0; i < cp->n_k; i++) {
        kn_sb_puts(o, "    ");
        kn_sb_c_string(o, nodes ? cp->k[i].node : cp->k[i].name);
        kn_sb_puts(o, ",\n");
    }
    if (cp->n_k == 0) kn_sb_puts(o, "    \"\",\n");
    kn_sb_puts(o, "};\n");
}

void kn_cuda_emit_module(kn_cuda_prog *cp, const kn_codegen_phase *phases, int n_phases,
                         const kn_codegen_opts *opts, kn_strbuf *o)
{
    kn_sb_puts(o, cp->host.s ? cp->host.s : "");
    kn_sb_puts(o, "/* GPU kernels of all phases, in launch-table order, and the IR node each came from. */\n");
    emit_kernel_strings(o, cp, "kn_cuda_kernel_names", false);
    emit_kernel_strings(o, cp, "kn_cuda_kernel_nodes", true);
    kn_sb_puts(o, "/* PTX compiled by NVRTC at build time, and the CUDA source to re-JIT it for another GPU. */\n");
    kn_codegen_emit_incbin(o, "kn_cuda_ptx", opts->cuda_ptx_path, "char");
    kn_codegen_emit_incbin(o, "kn_cuda_src", opts->cuda_src_path, "char");
    kn_sb_puts(o, "static const kn_rt_phase *const kn_cuda_phases[] = {");
    for (int p = 0; p < n_phases; p++) {
        char f[64];
        kn_c_ident(phases[p].name, f, sizeof f);
        kn_sb_printf(o, "%s&phase_%s_desc", p ? ", " : "", f);
    }
    kn_sb_puts(o, "};\nstatic void (*const kn_cuda_phase_run[])(kn_rt_ctx *, int) = {");
    for (int p = 0; p < n_phases; p++) {
        char f[64];
        kn_c_ident(phases[p].name, f, sizeof f);
        kn_sb_printf(o, "%sphase_%s_cuda", p ? ", " : "", f);
    }
    kn_sb_puts(o, "};\n");
    kn_sb_puts(o, "static const kn_rt_cuda_module kn_cuda_module = {\n    .arch = ");
    kn_sb_c_string(o, opts->cuda_arch ? opts->cuda_arch : KN_CUDA_DEFAULT_ARCH);
    kn_sb_printf(o, ",\n    .ptx = kn_cuda_ptx,\n    .source = kn_cuda_src,\n    .n_kernels = %d,\n"
                    "    .kernel_names = kn_cuda_kernel_names,\n    .kernel_nodes = kn_cuda_kernel_nodes,\n"
                    "    .n_phases = %d,\n    .phases = kn_cuda_phases,\n    .phase_run = kn_cuda_phase_run,\n"
                    "    .backend = &kn_rt_cuda_impl,\n};\n\n",
                 cp->n_k, n_phases);
}

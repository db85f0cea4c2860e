/* emit_c.c — the C emitter.
 *
 * Layout of the generated file:
 *   header comment, #include "kn_rt.h"
 *   parameter table (name, shape, offset into the weight blob, role, init)
 *   per phase: one static function with one commented block per node, then
 *              its I/O table and kn_rt_phase
 *   the kn_rt_model descriptor and main()
 *
 * Names from the model reach the output only through kn_c_comment_text (in
 * comments) or kn_sb_c_string (in string literals), so a hostile model file
 * cannot inject code.
 */
#include "codegen.h"
#include "codegen_internal.h"
#include "../ir/emit.h"
#include "../ir/ops/op.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef codegen_emit_impl emit_impl;

/* Every parameter, buffer and optimizer state of every phase, by name: the
 * phases are separate graphs (the update phase adds optimizer state), but
 * they share one weight blob. */
typedef struct {
    const kn_value **vals;
    int64_t *offset;
    int n, cap;
    int64_t total;
} weight_table;

static void value_addr(kn_emit *e, int vid, char *buf, size_t cap)
{
    const emit_impl *im = e->impl;
    const kn_value *v = e->g->values[vid];
    const char *ty = v->dtype == KN_I64 ? "int64_t" : "float";
    if (v->kind == KN_VAL_PARAM || v->kind == KN_VAL_BUFFER || v->kind == KN_VAL_STATE) {
        snprintf(buf, cap, "(kn_w + %lld)", (long long)im->weight_offset[vid]);
    } else if (v->kind == KN_VAL_CONST) {
        snprintf(buf, cap, "((%s *)kn_const_%d_%d)", ty, im->phase, vid);
    } else if (im->plan->batched[vid]) {
        snprintf(buf, cap, "((%s *)(kn_arena + (size_t)n * %lld))", ty, (long long)im->plan->offset[vid]);
    } else {
        snprintf(buf, cap, "((%s *)(kn_fixed + %lld))", ty, (long long)im->plan->offset[vid]);
    }
}

static void grad_addr(kn_emit *e, int vid, char *buf, size_t cap)
{
    const emit_impl *im = e->impl;
    snprintf(buf, cap, "(kn_g + %lld)", (long long)im->weight_offset[vid]);
}

static bool is_weight(const kn_value *v)
{
    return !v->dead && (v->kind == KN_VAL_PARAM || v->kind == KN_VAL_BUFFER || v->kind == KN_VAL_STATE);
}

static int64_t weights_find(const weight_table *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->vals[i]->name, name) == 0) return i;
    return -1;
}

/* Appends g's weights not yet in the table, in id order (deterministic). */
static void weights_collect(weight_table *t, const kn_graph *g)
{
    for (int i = 0; i < g->n_values; i++) {
        const kn_value *v = g->values[i];
        if (!is_weight(v) || weights_find(t, v->name) >= 0) continue;
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 64;
            t->vals = kn_xrealloc(t->vals, sizeof(*t->vals) * (size_t)t->cap);
            t->offset = kn_xrealloc(t->offset, sizeof(int64_t) * (size_t)t->cap);
        }
        int64_t numel = 0;
        kn_shape_numel(&v->shape, 1, &numel);
        t->vals[t->n] = v;
        t->offset[t->n++] = t->total;
        t->total += (numel + 15) / 16 * 16; /* 64-byte aligned tensors */
    }
}

/* Weight-blob offset of each of g's values (-1 for non-weights). */
static int64_t *weights_offsets_for(const weight_table *t, const kn_graph *g)
{
    int64_t *off = kn_xmalloc(sizeof(int64_t) * (size_t)(g->n_values + 1));
    for (int i = 0; i < g->n_values; i++) {
        off[i] = -1;
        if (!is_weight(g->values[i])) continue;
        int64_t k = weights_find(t, g->values[i]->name);
        off[i] = k >= 0 ? t->offset[k] : -1;
    }
    return off;
}

static void emit_shape_init(kn_strbuf *o, const kn_shape *s)
{
    kn_sb_printf(o, "%d, {", s->rank);
    for (int k = 0; k < s->rank; k++) kn_sb_printf(o, "%s%lld", k ? ", " : "", (long long)s->d[k]);
    kn_sb_puts(o, "}");
}

/* The runtime's name for an IR init kind (the enums are separate: the
 * runtime knows nothing of the IR). */
static const char *rt_init_name(kn_init_kind k)
{
    switch (k) {
    case KN_INIT_ZEROS: return "KN_RT_INIT_ZEROS";
    case KN_INIT_ONES: return "KN_RT_INIT_ONES";
    case KN_INIT_KAIMING_UNIFORM: return "KN_RT_INIT_KAIMING_UNIFORM";
    case KN_INIT_BIAS_UNIFORM: return "KN_RT_INIT_BIAS_UNIFORM";
    case KN_INIT_XAVIER_UNIFORM: return "KN_RT_INIT_XAVIER_UNIFORM";
    case KN_INIT_XAVIER_NORMAL: return "KN_RT_INIT_XAVIER_NORMAL";
    case KN_INIT_KAIMING_NORMAL: return "KN_RT_INIT_KAIMING_NORMAL";
    case KN_INIT_DATA: return "KN_RT_INIT_DATA";
    }
    return "KN_RT_INIT_ZEROS";
}

static void emit_params(kn_strbuf *o, const weight_table *t, const int64_t *data_off, int *n_params)
{
    int count = 0;
    kn_sb_puts(o, "/* Parameters, buffers and optimizer state; offsets are in floats into the weight blob. */\n");
    kn_sb_puts(o, "static const kn_rt_param kn_params[] = {\n");
    for (int i = 0; i < t->n; i++) {
        const kn_value *v = t->vals[i];
        int64_t numel = 0;
        kn_shape_numel(&v->shape, 1, &numel);
        const char *role = v->kind == KN_VAL_BUFFER  ? "KN_RT_BUFFER"
                           : v->kind == KN_VAL_STATE ? "KN_RT_STATE"
                           : v->trainable            ? "KN_RT_TRAINABLE"
                                                     : "KN_RT_FROZEN";
        kn_sb_puts(o, "    {");
        kn_sb_c_string(o, v->name);
        kn_sb_puts(o, ", ");
        emit_shape_init(o, &v->shape);
        kn_sb_printf(o, ", %lld, %lld, %s, %s, %lld, %lld, %s", (long long)numel,
                     (long long)t->offset[i], role, rt_init_name(v->init), (long long)v->fan_in,
                     (long long)v->fan_out, v->data ? "" : "NULL");
        if (v->data && data_off) kn_sb_printf(o, "kn_wdata + %lld", (long long)data_off[i]);
        else if (v->data) kn_sb_printf(o, "kn_wdata_%d", i);
        kn_sb_puts(o, "},\n");
        count++;
    }
    if (count == 0) kn_sb_puts(o, "    {0}\n");
    kn_sb_puts(o, "};\n\n");
    *n_params = count;
}

void kn_codegen_emit_array(kn_strbuf *o, const kn_value *v, const char *cname)
{
    int64_t numel = 0;
    kn_shape_numel(&v->shape, 1, &numel);
    kn_sb_printf(o, "static const %s %s[%lld] = {", v->dtype == KN_I64 ? "int64_t" : "float",
                 cname, (long long)(numel > 0 ? numel : 1));
    for (int64_t k = 0; k < numel; k++) {
        if (k % 8 == 0) kn_sb_puts(o, "\n    ");
        if (v->dtype == KN_I64) {
            kn_sb_printf(o, "%lldLL, ", (long long)((const int64_t *)v->data)[k]);
        } else {
            char lit[48];
            kn_emit_float_lit(((const float *)v->data)[k], lit, sizeof lit);
            kn_sb_printf(o, "%s, ", lit);
        }
    }
    kn_sb_puts(o, "\n};\n");
}

/* Initial values of imported weights as C arrays (index = weight-table
 * position): only for small graphs built without a blob file. */
static void emit_weight_arrays(kn_strbuf *o, const weight_table *t)
{
    for (int i = 0; i < t->n; i++) {
        if (!t->vals[i]->data) continue;
        char cname[48];
        snprintf(cname, sizeof cname, "kn_wdata_%d", i);
        kn_codegen_emit_array(o, t->vals[i], cname);
    }
}

/* The path goes into a C string that holds an assembler string: refuse the
 * characters that would need escaping at either level instead of escaping
 * them twice. */
kn_status kn_codegen_check_embed_path(const char *path, kn_diag *d)
{
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '?') /* '?': C11 trigraphs */
            return kn_diag_fail(d, "cannot embed weights from '%s': the path holds a quote, backslash, '?' or "
                                "non-printable character (choose another --emit folder)", path);
    return KN_OK;
}

/* Writes every data-carrying weight into opts->blob_path, each at a 64-byte
 * aligned offset recorded in data_off (floats; -1 = no data), and prints the
 * .incbin that embeds the file as `kn_wdata`. */
static kn_status emit_weight_blob(kn_strbuf *o, const weight_table *t, const char *path, int64_t *data_off,
                                  kn_diag *d)
{
    if (kn_codegen_check_embed_path(path, d) != KN_OK) return KN_ERR;
    FILE *f = fopen(path, "wb");
    if (!f) return kn_diag_fail(d, "cannot write the weight blob %s: %s", path, strerror(errno));
    static const float zeros[16];
    int64_t at = 0;
    bool ok = true;
    for (int i = 0; i < t->n && ok; i++) {
        data_off[i] = -1;
        if (!t->vals[i]->data) continue;
        int64_t numel = 0;
        kn_shape_numel(&t->vals[i]->shape, 1, &numel);
        data_off[i] = at;
        int64_t padded = (numel + 15) / 16 * 16;
        ok = fwrite(t->vals[i]->data, sizeof(float), (size_t)numel, f) == (size_t)numel &&
             fwrite(zeros, sizeof(float), (size_t)(padded - numel), f) == (size_t)(padded - numel);
        at += padded;
    }
    if (fclose(f) != 0 || !ok) return kn_diag_fail(d, "cannot write the weight blob %s: %s", path, strerror(errno));
    kn_sb_printf(o, "/* Initial weights (%lld floats, imported initializers), embedded from the blob file\n"
                    " * kiln wrote next to this source; kn_params point into it. */\n", (long long)at);
    kn_codegen_emit_incbin(o, "kn_wdata", path, "float");
    kn_sb_puts(o, "\n");
    return KN_OK;
}

void kn_codegen_emit_incbin(kn_strbuf *o, const char *sym, const char *path, const char *type)
{
    kn_sb_printf(o, "__asm__(\".section .rodata.%s,\\\"a\\\"\\n\"\n", sym);
    kn_sb_puts(o, "        \".balign 64\\n\"\n");
    kn_sb_printf(o, "        \".globl %s\\n\"\n", sym);
    kn_sb_printf(o, "        \".hidden %s\\n\"\n", sym);
    kn_sb_printf(o, "        \"%s:\\n\"\n", sym);
    kn_sb_printf(o, "        \".incbin \\\"%s\\\"\\n\"\n", path);
    kn_sb_puts(o, "        \".byte 0\\n\"\n");
    kn_sb_puts(o, "        \".previous\\n\");\n");
    kn_sb_printf(o, "extern const %s %s[];\n", type, sym);
}

static void emit_phase_consts(kn_strbuf *o, const kn_graph *g, int phase)
{
    for (int i = 0; i < g->n_values; i++) {
        const kn_value *v = g->values[i];
        if (v->dead || !v->data || v->kind != KN_VAL_CONST) continue;
        char cname[48];
        snprintf(cname, sizeof cname, "kn_const_%d_%d", phase, i);
        kn_codegen_emit_array(o, v, cname);
    }
}

/* "x, fc0.weight" for the node comment, sanitized. */
void kn_codegen_node_comment(const kn_graph *g, const kn_node *n, char *buf, size_t cap)
{
    const kn_op_def *def = kn_op_get(n->op);
    char name[96], type[96], ins[512] = "";
    kn_c_comment_text(n->name, name, sizeof name);
    if (n->n_out > 0) {
        const kn_value *o = g->values[n->out[0]];
        kn_shape_format(o->dtype, &o->shape, type, sizeof type);
    } else {
        snprintf(type, sizeof type, "(in place)");
    }
    size_t used = 0;
    for (int k = 0; k < n->n_in && used + 2 < sizeof ins; k++) {
        char in[96];
        kn_c_comment_text(g->values[n->in[k]]->name, in, sizeof in);
        used += (size_t)snprintf(ins + used, sizeof ins - used, "%s%s", k ? ", " : "", in);
        if (used >= sizeof ins) used = sizeof ins - 1;
    }
    snprintf(buf, cap, "node %d: %s '%s' %s <- %s", n->id, def->name, name, type, ins);
}

/* Nodes first .. first+count-1 as one elementwise loop (elem_runs.c); the
 * profiler charges the loop to the first node. */
static void emit_elem_run(kn_emit *e, const kn_graph *g, const kn_memplan *plan, int first, int count)
{
    kn_sb_printf(e->out, "\n    /* nodes %d to %d: one elementwise loop */\n", first, first + count - 1);
    kn_emit_open(e);
    kn_elem_run_emit(e, g, plan, first, count);
    for (int k = 0; k < count; k++) kn_emit_line(e, "KN_RT_PROBE(ctx, %d, n);", first + k);
    kn_emit_close(e);
}

static kn_status emit_phase_function(kn_strbuf *o, const kn_codegen_phase *ph, int index,
                                     const int64_t *woff, kn_cuda_prog *cuda, bool runs, kn_diag *d)
{
    const kn_graph *g = ph->graph;
    emit_impl im = {ph->plan, woff, index, NULL};
    emit_phase_consts(o, g, index);
    kn_emit e = {.out = o, .indent = 1, .addr = value_addr, .grad_addr = grad_addr, .g = g, .diag = d, .impl = &im};
    char fname[64];
    kn_c_ident(ph->name, fname, sizeof fname);
    kn_sb_printf(o, "/* ---- phase %d: %s (%s mode), %d nodes ---- */\n", index, fname,
                 g->mode == KN_MODE_TRAIN ? "train" : "eval", g->n_nodes);
    kn_sb_printf(o, "#define PHASE_%s_PER_SAMPLE %lldu /* arena bytes per sample */\n", fname,
                 (long long)ph->plan->per_sample_bytes);
    kn_sb_printf(o, "#define PHASE_%s_FIXED %lldu      /* arena bytes independent of the batch */\n\n", fname,
                 (long long)ph->plan->fixed_bytes);
    kn_sb_printf(o, "static void phase_%s(kn_rt_ctx *ctx, int n)\n{\n", fname);
    kn_sb_puts(o, "    unsigned char *kn_arena = ctx->arena;\n");
    kn_sb_printf(o, "    unsigned char *kn_fixed = kn_arena + (size_t)n * PHASE_%s_PER_SAMPLE;\n", fname);
    kn_sb_puts(o, "    float *kn_w = ctx->weights;\n");
    kn_sb_puts(o, "    float *kn_g = ctx->grads;\n");
    kn_sb_puts(o, "    (void)kn_arena; (void)kn_fixed; (void)kn_w; (void)kn_g;\n");
    if (cuda) /* the same phase on the GPU when the executable runs with --device cuda */
        kn_sb_printf(o, "    if (ctx->cuda) {\n        kn_rt_cuda_run_phase(ctx, %d, n);\n        return;\n    }\n", index);
    for (int i = 0; i < g->n_nodes; i++) {
        int run = runs ? kn_elem_run_length(g, ph->plan, i, false) : 1;
        if (run > 1) {
            emit_elem_run(&e, g, ph->plan, i, run);
            i += run - 1;
            continue;
        }
        const kn_node *n = g->nodes[i];
        const kn_op_def *def = kn_op_get(n->op);
        char cm[1024];
        kn_codegen_node_comment(g, n, cm, sizeof cm);
        kn_sb_printf(o, "\n    /* %s */\n", cm);
        kn_emit_open(&e);
        if (!def->emit_c) return kn_diag_fail(d, "op '%s' has no C emission", def->name);
        if (def->emit_c(&e, g, n) != KN_OK) {
            if (!d->set) kn_diag_fail(d, "C emission failed for %s '%s'", def->name, n->name);
            return kn_diag_locate(d, n);
        }
        kn_emit_line(&e, "KN_RT_PROBE(ctx, %d, n);", i);
        kn_emit_close(&e);
    }
    kn_sb_puts(o, "}\n\n");
    if (!cuda) return KN_OK;
    emit_impl cim = {ph->plan, woff, index, cuda};
    kn_emit ce = {.addr = value_addr, .grad_addr = grad_addr, .g = g, .diag = d, .impl = &cim};
    kn_cuda_emit_consts(cuda, g, index);
    return kn_cuda_emit_phase(cuda, &ce, ph, runs, d);
}

static void emit_io_entry(kn_strbuf *o, const kn_value *v, int64_t offset)
{
    int64_t per = 0;
    kn_shape_numel_per_sample(&v->shape, &per);
    kn_sb_puts(o, "    {");
    kn_sb_c_string(o, v->name);
    kn_sb_printf(o, ", %s, ", v->dtype == KN_I64 ? "KN_RT_I64" : "KN_RT_F32");
    emit_shape_init(o, &v->shape);
    kn_sb_printf(o, ", %d, %lld, %lld},\n", kn_shape_is_batched(&v->shape) ? 1 : 0, (long long)per,
                 (long long)offset);
}

/* Every node output with an arena slot, and the node after which it holds
 * its value: what `--retain NAME` can capture. */
static int emit_value_table(kn_strbuf *o, const kn_codegen_phase *ph, const char *fname)
{
    const kn_graph *g = ph->graph;
    kn_strbuf nodes;
    kn_sb_init(&nodes);
    int count = 0;
    kn_sb_printf(o, "static const kn_rt_io phase_%s_values[] = {\n", fname);
    for (int i = 0; i < g->n_nodes; i++) {
        const kn_node *n = g->nodes[i];
        for (int k = 0; k < n->n_out; k++) {
            const kn_value *v = g->values[n->out[k]];
            if (v->dead || ph->plan->offset[n->out[k]] < 0) continue;
            emit_io_entry(o, v, ph->plan->offset[n->out[k]]);
            kn_sb_printf(&nodes, "%d, ", i);
            count++;
        }
    }
    if (count == 0) kn_sb_puts(o, "    {0}\n");
    kn_sb_puts(o, "};\n");
    kn_sb_printf(o, "static const int phase_%s_value_node[] = {%s};\n", fname, count ? nodes.s : "0");
    kn_sb_free(&nodes);
    return count;
}

/* "name (op)" of every node, by the index KN_RT_PROBE passes: what
 * `bench --profile` prints. */
static void emit_node_names(kn_strbuf *o, const kn_codegen_phase *ph, const char *fname)
{
    const kn_graph *g = ph->graph;
    kn_sb_printf(o, "static const char *const phase_%s_node_names[] = {\n", fname);
    for (int i = 0; i < g->n_nodes; i++) {
        char label[300];
        snprintf(label, sizeof label, "%s (%s)", g->nodes[i]->name, kn_op_get(g->nodes[i]->op)->name);
        kn_sb_puts(o, "    ");
        kn_sb_c_string(o, label);
        kn_sb_puts(o, ",\n");
    }
    if (g->n_nodes == 0) kn_sb_puts(o, "    \"\"\n");
    kn_sb_puts(o, "};\n");
}

static const char *io_role(const kn_graph *g, int vid, bool *is_io)
{
    const kn_value *v = g->values[vid];
    *is_io = true;
    if (v->kind == KN_VAL_INPUT) return "KN_RT_IO_INPUT";
    if (v->kind == KN_VAL_LABEL) return "KN_RT_IO_LABEL";
    if (vid == g->loss) return "KN_RT_IO_LOSS";
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == vid) return "KN_RT_IO_OUTPUT";
    *is_io = false;
    return NULL;
}

static void emit_phase_tables(kn_strbuf *o, const kn_codegen_phase *ph)
{
    const kn_graph *g = ph->graph;
    char fname[64];
    kn_c_ident(ph->name, fname, sizeof fname);
    kn_strbuf roles;
    kn_sb_init(&roles);
    int count = 0;
    kn_sb_printf(o, "static const kn_rt_io phase_%s_io[] = {\n", fname);
    /* Inputs first (in id order), then outputs in declared order, then loss. */
    int order[256], n_order = 0;
    for (int i = 0; i < g->n_values && n_order < 200; i++)
        if (!g->values[i]->dead && (g->values[i]->kind == KN_VAL_INPUT || g->values[i]->kind == KN_VAL_LABEL))
            order[n_order++] = i;
    for (int i = 0; i < g->n_outputs; i++) order[n_order++] = g->outputs[i];
    bool loss_listed = false;
    for (int i = 0; i < g->n_outputs; i++) loss_listed |= g->outputs[i] == g->loss;
    if (g->loss >= 0 && !loss_listed) order[n_order++] = g->loss;
    for (int k = 0; k < n_order; k++) {
        int vid = order[k];
        const kn_value *v = g->values[vid];
        bool is_io;
        const char *role = io_role(g, vid, &is_io);
        if (!is_io || ph->plan->offset[vid] < 0) continue;
        emit_io_entry(o, v, ph->plan->offset[vid]);
        kn_sb_printf(&roles, "%s, ", role);
        count++;
    }
    if (count == 0) kn_sb_puts(o, "    {0}\n");
    kn_sb_puts(o, "};\n");
    kn_sb_printf(o, "static const kn_rt_io_role phase_%s_roles[] = {%s};\n", fname,
                 count ? roles.s : "KN_RT_IO_INPUT");
    int n_values = emit_value_table(o, ph, fname);
    emit_node_names(o, ph, fname);
    kn_sb_printf(o, "static const kn_rt_phase phase_%s_desc = {\"%s\", phase_%s, PHASE_%s_PER_SAMPLE, PHASE_%s_FIXED, %d, phase_%s_io, phase_%s_roles,\n"
                    "    %d, phase_%s_values, phase_%s_value_node, %d, phase_%s_node_names};\n\n",
                 fname, fname, fname, fname, fname, count, fname, fname, n_values, fname, fname,
                 ph->graph->n_nodes, fname);
    kn_sb_free(&roles);
}

static void emit_meta(kn_strbuf *o, const kn_graph *m)
{
    const kn_model_meta *mt = &m->meta;
    kn_sb_puts(o, "static const float kn_normalize[] = {");
    for (int i = 0; i < mt->n_normalize; i++) {
        char lit[48];
        kn_emit_float_lit(mt->normalize[i], lit, sizeof lit);
        kn_sb_printf(o, "%s%s", i ? ", " : "", lit);
    }
    if (mt->n_normalize == 0) kn_sb_puts(o, "0.0f");
    kn_sb_puts(o, "};\n");
    kn_sb_puts(o, "static const char *const kn_opt_names[] = {");
    for (int i = 0; i < mt->n_opt_attr; i++) {
        kn_sb_puts(o, i ? ", " : "");
        kn_sb_c_string(o, mt->opt_attrs[i].name);
    }
    if (mt->n_opt_attr == 0) kn_sb_puts(o, "\"\"");
    kn_sb_puts(o, "};\n");
    kn_sb_puts(o, "static const float kn_opt_values[] = {");
    for (int i = 0; i < mt->n_opt_attr; i++) {
        const kn_attr *a = &mt->opt_attrs[i];
        double v = a->kind == KN_ATTR_FLOAT ? a->f : (double)a->i;
        char lit[48];
        kn_emit_float_lit(v, lit, sizeof lit);
        kn_sb_printf(o, "%s%s", i ? ", " : "", lit);
    }
    if (mt->n_opt_attr == 0) kn_sb_puts(o, "0.0f");
    kn_sb_puts(o, "};\n\n");
}

static double opt_lr(const kn_graph *m)
{
    for (int i = 0; i < m->meta.n_opt_attr; i++)
        if (strcmp(m->meta.opt_attrs[i].name, "lr") == 0)
            return m->meta.opt_attrs[i].kind == KN_ATTR_FLOAT ? m->meta.opt_attrs[i].f : (double)m->meta.opt_attrs[i].i;
    return 0.0;
}

kn_status kn_emit_c_program(const kn_graph *model, const kn_codegen_phase *phases,
                            int n_phases, const kn_codegen_opts *opts,
                            kn_strbuf *o, kn_diag *d)
{
    char mname[128];
    kn_c_comment_text(model->name, mname, sizeof mname);
    weight_table wt = {0};
    weights_collect(&wt, model);
    for (int p = 0; p < n_phases; p++) weights_collect(&wt, phases[p].graph);
    int64_t weights_numel = wt.total;

    kn_sb_printf(o, "/* Generated by kiln from model '%s'. Do not edit: edit the model file. */\n", mname);
    kn_sb_puts(o, "#include \"kn_rt.h\"\n#include <stdint.h>\n#include <stddef.h>\n#include <math.h>\n\n");
    int n_params = 0;
    bool any_data = false;
    for (int i = 0; i < wt.n; i++) any_data |= wt.vals[i]->data != NULL;
    int64_t *data_off = NULL;
    if (any_data && opts->blob_path) {
        data_off = kn_xmalloc(sizeof(int64_t) * (size_t)wt.n);
        if (emit_weight_blob(o, &wt, opts->blob_path, data_off, d) != KN_OK) {
            free(data_off);
            free(wt.vals);
            free(wt.offset);
            return KN_ERR;
        }
    } else {
        emit_weight_arrays(o, &wt);
    }
    emit_params(o, &wt, data_off, &n_params);
    free(data_off);

    const kn_codegen_phase *infer = NULL, *train = NULL, *update = NULL, *features = NULL, *head_train = NULL,
                           *head_infer = NULL;
    kn_status st = KN_OK;
    for (int p = 0; p < n_phases && st == KN_OK; p++) {
        int64_t *woff = weights_offsets_for(&wt, phases[p].graph);
        st = emit_phase_function(o, &phases[p], p, woff, opts->cuda, !opts->no_elem_runs, d);
        free(woff);
        if (st != KN_OK) break;
        emit_phase_tables(o, &phases[p]);
        if (strcmp(phases[p].name, "infer") == 0) infer = &phases[p];
        if (strcmp(phases[p].name, "train") == 0) train = &phases[p];
        if (strcmp(phases[p].name, "update") == 0) update = &phases[p];
        if (strcmp(phases[p].name, "features") == 0) features = &phases[p];
        if (strcmp(phases[p].name, "head_train") == 0) head_train = &phases[p];
        if (strcmp(phases[p].name, "head_infer") == 0) head_infer = &phases[p];
    }
    if (st == KN_OK && !infer) st = kn_diag_fail(d, "internal: no infer phase to emit");
    if (st != KN_OK) {
        free(wt.vals);
        free(wt.offset);
        return st;
    }
    emit_meta(o, model);
    if (opts->cuda) kn_cuda_emit_module(opts->cuda, phases, n_phases, opts, o);

    kn_strbuf summary;
    kn_sb_init(&summary);
    kn_graph_print(infer->graph, &summary);
    char lr[48];
    kn_emit_float_lit(opt_lr(model), lr, sizeof lr);
    kn_sb_puts(o, "static const kn_rt_model KN_MODEL = {\n    .name = ");
    kn_sb_c_string(o, model->name);
    kn_sb_puts(o, ",\n    .hash = ");
    kn_sb_c_string(o, opts->model_hash ? opts->model_hash : "");
    kn_sb_puts(o, ",\n    .target = ");
    kn_sb_c_string(o, opts->target ? opts->target : "cpu");
    kn_sb_puts(o, ",\n    .summary = ");
    kn_sb_c_string(o, summary.s);
    kn_sb_printf(o, ",\n    .n_params = %d,\n    .params = kn_params,\n    .weights_numel = %lldu,\n", n_params,
                 (long long)weights_numel);
    kn_sb_puts(o, "    .infer = &phase_infer_desc,\n");
    kn_sb_printf(o, "    .train = %s,\n", train ? "&phase_train_desc" : "NULL");
    kn_sb_printf(o, "    .update = %s,\n", update ? "&phase_update_desc" : "NULL");
    if (features && head_train && head_infer)
        kn_sb_puts(o, "    .features = &phase_features_desc,\n    .head_train = &phase_head_train_desc,\n"
                      "    .head_infer = &phase_head_infer_desc,\n");
    if (opts->cuda) kn_sb_puts(o, "    .cuda = &kn_cuda_module,\n");
    kn_sb_puts(o, "    .data_kind = ");
    kn_sb_c_string(o, model->meta.data_kind);
    kn_sb_puts(o, ",\n    .data_path = ");
    kn_sb_c_string(o, model->meta.data_path);
    kn_sb_puts(o, ",\n    .labels = ");
    kn_sb_c_string(o, model->meta.labels);
    kn_sb_printf(o, ",\n    .resize = %d,\n    .crop = %d", model->meta.resize, model->meta.crop);
    kn_sb_printf(o, ",\n    .n_normalize = %d,\n    .normalize = kn_normalize,\n", model->meta.n_normalize);
    kn_sb_printf(o, "    .batch = %d,\n    .epochs = %d,\n    .shuffle = %d,\n    .seed = %lldLL,\n",
                 model->meta.batch, model->meta.epochs, model->meta.shuffle ? 1 : 0, (long long)model->meta.seed);
    kn_sb_puts(o, "    .optimizer = ");
    kn_sb_c_string(o, model->meta.optimizer);
    kn_sb_printf(o, ",\n    .lr = %s,\n    .n_opt = %d,\n    .opt_names = kn_opt_names,\n    .opt_values = kn_opt_values,\n};\n\n",
                 lr, model->meta.n_opt_attr);
    kn_sb_puts(o, "int main(int argc, char **argv)\n{\n    kn_rt_boot(argv);\n    return kn_rt_main(&KN_MODEL, argc, argv);\n}\n");
    kn_sb_free(&summary);
    free(wt.vals);
    free(wt.offset);
    return KN_OK;
}

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
#include "../ir/emit.h"
#include "../ir/ops/op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const kn_memplan *plan;
    const int64_t *weight_offset; /* per value id, floats; -1 if not a weight */
} emit_impl;

static void value_addr(kn_emit *e, int vid, char *buf, size_t cap)
{
    const emit_impl *im = e->impl;
    const kn_value *v = e->g->values[vid];
    const char *ty = v->dtype == KN_I64 ? "int64_t" : "float";
    if (v->kind == KN_VAL_PARAM || v->kind == KN_VAL_BUFFER || v->kind == KN_VAL_STATE) {
        snprintf(buf, cap, "(kn_w + %lld)", (long long)im->weight_offset[vid]);
    } else if (v->kind == KN_VAL_CONST) {
        snprintf(buf, cap, "((%s *)kn_const_%d)", ty, vid);
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

/* Assigns weight-blob offsets to parameters and buffers in id order. */
static int64_t layout_weights(const kn_graph *g, int64_t *offset)
{
    int64_t total = 0;
    for (int i = 0; i < g->n_values; i++) {
        const kn_value *v = g->values[i];
        offset[i] = -1;
        if (!is_weight(v)) continue;
        int64_t numel = 0;
        kn_shape_numel(&v->shape, 1, &numel);
        offset[i] = total;
        total += (numel + 15) / 16 * 16; /* 64-byte aligned tensors */
    }
    return total;
}

static void emit_shape_init(kn_strbuf *o, const kn_shape *s)
{
    kn_sb_printf(o, "%d, {", s->rank);
    for (int k = 0; k < s->rank; k++) kn_sb_printf(o, "%s%lld", k ? ", " : "", (long long)s->d[k]);
    kn_sb_puts(o, "}");
}

static void emit_params(kn_strbuf *o, const kn_graph *g, const int64_t *woff, int *n_params)
{
    int count = 0;
    kn_sb_puts(o, "/* Parameters and buffers; offsets are in floats into the weight blob. */\n");
    kn_sb_puts(o, "static const kn_rt_param kn_params[] = {\n");
    for (int i = 0; i < g->n_values; i++) {
        const kn_value *v = g->values[i];
        if (!is_weight(v)) continue;
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
        kn_sb_printf(o, ", %lld, %lld, %s, %d, %lld, %lld, %s", (long long)numel,
                     (long long)woff[i], role, (int)v->init, (long long)v->fan_in,
                     (long long)v->fan_out, v->data ? "" : "NULL");
        if (v->data) kn_sb_printf(o, "kn_wdata_%d", i);
        kn_sb_puts(o, "},\n");
        count++;
    }
    if (count == 0) kn_sb_puts(o, "    {0}\n");
    kn_sb_puts(o, "};\n\n");
    *n_params = count;
}

static void emit_consts(kn_strbuf *o, const kn_graph *g)
{
    for (int i = 0; i < g->n_values; i++) {
        const kn_value *v = g->values[i];
        if (v->dead || !v->data) continue;
        if (v->kind != KN_VAL_CONST && !is_weight(v)) continue;
        int64_t numel = 0;
        kn_shape_numel(&v->shape, 1, &numel);
        kn_sb_printf(o, "static const %s kn_%s_%d[%lld] = {", v->dtype == KN_I64 ? "int64_t" : "float",
                     v->kind == KN_VAL_CONST ? "const" : "wdata", i, (long long)(numel > 0 ? numel : 1));
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
}

/* "x, fc0.weight" for the node comment, sanitized. */
static void node_comment(const kn_graph *g, const kn_node *n, char *buf, size_t cap)
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

static kn_status emit_phase_function(kn_strbuf *o, const kn_codegen_phase *ph, int index,
                                     const int64_t *woff, kn_diag *d)
{
    const kn_graph *g = ph->graph;
    emit_impl im = {ph->plan, woff};
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
    for (int i = 0; i < g->n_nodes; i++) {
        const kn_node *n = g->nodes[i];
        const kn_op_def *def = kn_op_get(n->op);
        char cm[1024];
        node_comment(g, n, cm, sizeof cm);
        kn_sb_printf(o, "\n    /* %s */\n", cm);
        kn_emit_open(&e);
        if (!def->emit_c) return kn_diag_fail(d, "op '%s' has no C emission", def->name);
        if (def->emit_c(&e, g, n) != KN_OK) {
            if (!d->set) kn_diag_fail(d, "C emission failed for %s '%s'", def->name, n->name);
            char msg[sizeof d->text];
            snprintf(msg, sizeof msg, "%s", d->text);
            if (n->loc.file)
                return kn_diag_fail(d, "%s:%d:%d: error: %s", n->loc.file, n->loc.line, n->loc.col, msg);
            return KN_ERR;
        }
        kn_emit_close(&e);
    }
    kn_sb_puts(o, "}\n\n");
    return KN_OK;
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
        int64_t per = 0;
        kn_shape_numel_per_sample(&v->shape, &per);
        kn_sb_puts(o, "    {");
        kn_sb_c_string(o, v->name);
        kn_sb_printf(o, ", %s, ", v->dtype == KN_I64 ? "KN_RT_I64" : "KN_RT_F32");
        emit_shape_init(o, &v->shape);
        kn_sb_printf(o, ", %d, %lld, %lld},\n", kn_shape_is_batched(&v->shape) ? 1 : 0, (long long)per,
                     (long long)ph->plan->offset[vid]);
        kn_sb_printf(&roles, "%s, ", role);
        count++;
    }
    if (count == 0) kn_sb_puts(o, "    {0}\n");
    kn_sb_puts(o, "};\n");
    kn_sb_printf(o, "static const kn_rt_io_role phase_%s_roles[] = {%s};\n", fname,
                 count ? roles.s : "KN_RT_IO_INPUT");
    kn_sb_printf(o, "static const kn_rt_phase phase_%s_desc = {\"%s\", phase_%s, PHASE_%s_PER_SAMPLE, PHASE_%s_FIXED, %d, phase_%s_io, phase_%s_roles};\n\n",
                 fname, fname, fname, fname, fname, count, fname, fname);
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
    int64_t *woff = kn_xmalloc(sizeof(int64_t) * (size_t)(model->n_values + 1));
    int64_t weights_numel = layout_weights(model, woff);

    kn_sb_printf(o, "/* Generated by kiln from model '%s'. Do not edit: edit the model file. */\n", mname);
    kn_sb_puts(o, "#include \"kn_rt.h\"\n#include <stdint.h>\n#include <stddef.h>\n#include <math.h>\n\n");
    int n_params = 0;
    emit_consts(o, model);
    emit_params(o, model, woff, &n_params);

    const kn_codegen_phase *infer = NULL, *train = NULL;
    for (int p = 0; p < n_phases; p++) {
        if (emit_phase_function(o, &phases[p], p, woff, d) != KN_OK) {
            free(woff);
            return KN_ERR;
        }
        emit_phase_tables(o, &phases[p]);
        if (strcmp(phases[p].name, "infer") == 0) infer = &phases[p];
        if (strcmp(phases[p].name, "train") == 0) train = &phases[p];
    }
    if (!infer) {
        free(woff);
        return kn_diag_fail(d, "internal: no infer phase to emit");
    }
    emit_meta(o, model);

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
    kn_sb_puts(o, "    .data_kind = ");
    kn_sb_c_string(o, model->meta.data_kind);
    kn_sb_printf(o, ",\n    .n_normalize = %d,\n    .normalize = kn_normalize,\n", model->meta.n_normalize);
    kn_sb_printf(o, "    .batch = %d,\n    .epochs = %d,\n    .shuffle = %d,\n    .seed = %lldLL,\n",
                 model->meta.batch, model->meta.epochs, model->meta.shuffle ? 1 : 0, (long long)model->meta.seed);
    kn_sb_puts(o, "    .optimizer = ");
    kn_sb_c_string(o, model->meta.optimizer);
    kn_sb_printf(o, ",\n    .lr = %s,\n    .n_opt = %d,\n    .opt_names = kn_opt_names,\n    .opt_values = kn_opt_values,\n};\n\n",
                 lr, model->meta.n_opt_attr);
    kn_sb_puts(o, "int main(int argc, char **argv) { return kn_rt_main(&KN_MODEL, argc, argv); }\n");
    kn_sb_free(&summary);
    free(woff);
    return KN_OK;
}

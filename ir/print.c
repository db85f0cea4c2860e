/* print.c — the layer table `kiln check` shows: one row per graph input and
 * node with its output type, the parameters it owns and its MACs per sample. */
#include "ir.h"
#include "ops/op.h"

#include <stdio.h>
#include <string.h>

/* 576970 -> "576,970" */
static void fmt_count(int64_t v, char *out, size_t cap)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%lld", (long long)v);
    size_t len = strlen(raw), o = 0;
    for (size_t i = 0; i < len && o + 2 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0 && raw[0] != '-') out[o++] = ',';
        out[o++] = raw[i];
    }
    out[o] = 0;
}

static void node_param_counts(const kn_graph *g, const kn_node *n, int64_t *params,
                              int64_t *buffers, bool *frozen)
{
    *params = *buffers = 0;
    *frozen = false;
    for (int k = 0; k < n->n_in; k++) {
        const kn_value *v = g->values[n->in[k]];
        int64_t c = 0;
        if (!v->shape_known || !kn_shape_numel(&v->shape, 1, &c)) continue;
        if (v->kind == KN_VAL_PARAM) {
            *params += c;
            if (!v->trainable) *frozen = true;
        } else if (v->kind == KN_VAL_BUFFER) {
            *buffers += c;
        }
    }
}

void kn_graph_print(const kn_graph *g, kn_strbuf *out)
{
    char name[48], type[64], pc[96], bc[32], mc[32];
    kn_sb_printf(out, "%s — %d node%s, batch N symbolic, %s mode\n", g->name, g->n_nodes, g->n_nodes == 1 ? "" : "s",
                 g->mode == KN_MODE_TRAIN ? "train" : "eval");
    kn_sb_printf(out, "  %3s  %-20s %-14s %-20s %22s %12s\n", "#", "name", "op", "output", "params", "MACs/sample");
    int row = 0;
    int64_t total_macs = 0;
    for (int i = 0; i < g->n_values; i++) {
        const kn_value *v = g->values[i];
        if (v->kind != KN_VAL_INPUT && v->kind != KN_VAL_LABEL) continue;
        kn_c_comment_text(v->name, name, sizeof name);
        kn_shape_format(v->dtype, &v->shape, type, sizeof type);
        kn_sb_printf(out, "  %3d  %-20s %-14s %-20s\n", row++, name,
                     v->kind == KN_VAL_LABEL ? "label" : "input", type);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const kn_node *n = g->nodes[i];
        const kn_op_def *def = kn_op_get(n->op);
        const kn_value *o = n->n_out > 0 ? g->values[n->out[0]] : NULL;
        int64_t p, b;
        bool frozen;
        node_param_counts(g, n, &p, &b, &frozen);
        kn_c_comment_text(n->name, name, sizeof name);
        if (o && o->shape_known) kn_shape_format(o->dtype, &o->shape, type, sizeof type);
        else snprintf(type, sizeof type, o ? "?" : "(update)");
        pc[0] = 0;
        if (p || b) {
            char t[40];
            fmt_count(p, t, sizeof t);
            if (b) {
                fmt_count(b, bc, sizeof bc);
                snprintf(pc, sizeof pc, "%s%s (+%s buf)", t, frozen ? " frozen" : "", bc);
            } else {
                snprintf(pc, sizeof pc, "%s%s", t, frozen ? " frozen" : "");
            }
        }
        mc[0] = 0;
        int64_t macs = def && def->macs ? def->macs(g, n) : 0;
        if (macs) fmt_count(macs, mc, sizeof mc);
        if (macs > 0 && !kn_add_ok(total_macs, macs, &total_macs)) total_macs = INT64_MAX;
        kn_sb_printf(out, "  %3d  %-20s %-14s %-20s %22s %12s\n", row++, name, def ? def->name : "?", type, pc, mc);
    }
    int64_t t, f, bu;
    kn_graph_param_counts(g, &t, &f, &bu);
    char ts[32], fs[32], bs[32];
    fmt_count(t, ts, sizeof ts);
    fmt_count(f, fs, sizeof fs);
    fmt_count(bu, bs, sizeof bs);
    char ms[32];
    fmt_count(total_macs, ms, sizeof ms);
    kn_sb_printf(out, "trainable %s · frozen %s · buffers %s · MACs/sample %s", ts, fs, bs, ms);
}

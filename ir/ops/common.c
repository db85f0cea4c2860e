/* common.c — helpers shared by op files: broadcasting, error text, params. */
#include "op.h"

#include <stdio.h>
#include <string.h>

kn_status kn_op_error(kn_diag *d, const kn_graph *g, const kn_node *n,
                      const char *fmt, ...)
{
    (void)g;
    char msg[2048], nm[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const kn_op_def *def = kn_op_get(n->op);
    kn_c_comment_text(n->name, nm, sizeof nm);
    return kn_diag_fail(d, "%s '%s': %s", def ? def->name : "op", nm, msg);
}

kn_status kn_broadcast_shapes(const kn_shape *a, const kn_shape *b,
                              kn_shape *out, const kn_node *n,
                              const kn_graph *g, kn_diag *d)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    kn_shape s;
    memset(&s, 0, sizeof s);
    s.rank = r;
    for (int i = 0; i < r; i++) {
        int ia = a->rank - r + i, ib = b->rank - r + i;
        int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        /* The batch dim only broadcasts against itself or 1: it must stay in
         * front so batched tensors keep the batch outermost. */
        if (da == db) s.d[i] = da;
        else if (da == 1) s.d[i] = db;
        else if (db == 1) s.d[i] = da;
        else {
            char sa[96], sb[96], xa[24], xb[24];
            kn_shape_format(KN_F32, a, sa, sizeof sa);
            kn_shape_format(KN_F32, b, sb, sizeof sb);
            if (da == KN_DIM_N) snprintf(xa, sizeof xa, "N");
            else snprintf(xa, sizeof xa, "%lld", (long long)da);
            if (db == KN_DIM_N) snprintf(xb, sizeof xb, "N");
            else snprintf(xb, sizeof xb, "%lld", (long long)db);
            return kn_op_error(d, g, n, "cannot broadcast %s with %s (dimension %d: %s vs %s)",
                               sa, sb, i, xa, xb);
        }
    }
    for (int i = 1; i < r; i++)
        if (s.d[i] == KN_DIM_N)
            return kn_op_error(d, g, n, "the batch dimension N may only be the first dimension after broadcasting");
    *out = s;
    return KN_OK;
}

int kn_op_add_param(kn_graph *g, kn_node *n, const char *suffix,
                    kn_val_kind kind, const kn_shape *shape,
                    kn_init_kind init, int64_t fan_in, int64_t fan_out)
{
    char name[512];
    snprintf(name, sizeof name, "%s.%s", n->name, suffix);
    int id = kn_graph_add_value(g, name, kind, KN_F32, shape);
    kn_value *v = g->values[id];
    v->init = init;
    v->fan_in = fan_in;
    v->fan_out = fan_out;
    v->trainable = (kind == KN_VAL_PARAM);
    kn_node_append_input(n, id);
    return id;
}

static const struct {
    const char *name;
    kn_init_kind kind;
} WEIGHT_INITS[] = {
    {"kaiming_uniform", KN_INIT_KAIMING_UNIFORM},
    {"kaiming_normal", KN_INIT_KAIMING_NORMAL},
    {"xavier_uniform", KN_INIT_XAVIER_UNIFORM},
    {"xavier_normal", KN_INIT_XAVIER_NORMAL},
};

kn_status kn_op_weight_init(const kn_graph *g, const kn_node *n, kn_init_kind *out, kn_diag *d)
{
    const char *name = kn_node_attr_s(n, "init", "");
    *out = KN_INIT_KAIMING_UNIFORM;
    if (!name[0]) return KN_OK;
    for (size_t i = 0; i < sizeof WEIGHT_INITS / sizeof WEIGHT_INITS[0]; i++)
        if (strcmp(name, WEIGHT_INITS[i].name) == 0) {
            *out = WEIGHT_INITS[i].kind;
            return KN_OK;
        }
    return kn_op_error(d, g, n, "unknown init \"%s\" (expected \"kaiming_uniform\", \"kaiming_normal\", "
                                "\"xavier_uniform\" or \"xavier_normal\")", name);
}

kn_node *kn_op_build(kn_graph *g, int op, const char *name, const int *in,
                     int n_in, int n_out, kn_diag *d)
{
    kn_node *n = kn_graph_add_node(g, op, name, in, n_in, n_out);
    (void)d;
    return n;
}

kn_status kn_op_finish(kn_graph *g, kn_node *n, kn_diag *d)
{
    const kn_op_def *def = kn_op_get(n->op);
    if (!def || !def->infer) return kn_diag_fail(d, "internal: op %d has no shape rule", n->op);
    return def->infer(g, n, d);
}

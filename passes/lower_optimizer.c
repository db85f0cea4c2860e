/* lower_optimizer.c — turns the model's `optimizer` setting into the update
 * phase: one step node per trainable parameter, plus the optimizer state
 * (KN_VAL_STATE values named optim.<param>.<slot>) those nodes read and write.
 *
 * The pass expects a clone of the model: it drops the forward nodes (the
 * update phase reads gradients from the gradient blob, not from the graph)
 * and keeps the parameters so their ids and names stay those of the model.
 */
#include "passes.h"
#include "../ir/ops/op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const kn_attr *opt_attr(const kn_graph *g, const char *name)
{
    for (int i = 0; i < g->meta.n_opt_attr; i++)
        if (strcmp(g->meta.opt_attrs[i].name, name) == 0) return &g->meta.opt_attrs[i];
    return NULL;
}

static double opt_f(const kn_graph *g, const char *name, double dflt)
{
    const kn_attr *a = opt_attr(g, name);
    if (!a) return dflt;
    if (a->kind == KN_ATTR_FLOAT) return a->f;
    if (a->kind == KN_ATTR_INT || a->kind == KN_ATTR_BOOL) return (double)a->i;
    return dflt;
}

static void drop_forward_nodes(kn_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        kn_node *n = g->nodes[i];
        for (int k = 0; k < n->n_out; k++) {
            g->values[n->out[k]]->dead = true;
            g->values[n->out[k]]->producer = -1;
        }
        kn_node_free(n);
    }
    g->n_nodes = 0;
    g->n_outputs = 0;
    g->loss = -1;
    /* Inputs are not read by the update phase either. */
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i]->kind == KN_VAL_INPUT || g->values[i]->kind == KN_VAL_LABEL) g->values[i]->dead = true;
}

static int add_state(kn_graph *g, int param, const char *slot)
{
    char name[600];
    snprintf(name, sizeof name, "optim.%s.%s", g->values[param]->name, slot);
    int id = kn_graph_add_value(g, name, KN_VAL_STATE, KN_F32, &g->values[param]->shape);
    g->values[id]->init = KN_INIT_ZEROS;
    return id;
}

/* The frontend already reports these with locations; graphs built in other
 * ways (tests, importers) are checked against the same vocabulary here. */
static kn_status check_attrs(const kn_graph *g, kn_diag *d)
{
    for (int i = 0; i < g->meta.n_opt_attr; i++)
        if (!kn_optimizer_option_known(g->meta.opt_attrs[i].name))
            return kn_diag_fail(d, "%s: optimizer %s has no option '%s'", g->name, g->meta.optimizer,
                                g->meta.opt_attrs[i].name);
    return KN_OK;
}

/* Step ops are looked up by name so this pass does not depend on which
 * optimizer files are compiled in. */
static int step_op(const char *name, const kn_graph *g, kn_diag *d)
{
    int op = kn_op_lookup_any(name);
    if (op < 0) kn_diag_fail(d, "%s: optimizer step op '%s' is not available in this build", g->name, name);
    return op;
}

static kn_status add_step(kn_graph *g, int p, kn_diag *d)
{
    const char *opt = g->meta.optimizer;
    char name[600];
    snprintf(name, sizeof name, "%s.%s_step", g->values[p]->name, opt);
    double wd = opt_f(g, "weight_decay", 0.0);
    if (!strcmp(opt, "sgd")) {
        double momentum = opt_f(g, "momentum", 0.0);
        int in[2] = {p, -1};
        int n_in = 1;
        if (momentum != 0.0) in[n_in++] = add_state(g, p, "momentum");
        int op = step_op("sgd_step", g, d);
        if (op < 0) return KN_ERR;
        kn_node *n = kn_op_build(g, op, name, in, n_in, 0, d);
        kn_node_set_attr_f(n, "momentum", momentum);
        kn_node_set_attr_f(n, "dampening", opt_f(g, "dampening", 0.0));
        kn_node_set_attr_b(n, "nesterov", opt_f(g, "nesterov", 0.0) != 0.0);
        kn_node_set_attr_f(n, "weight_decay", wd);
        kn_node_set_attr_f(n, "lr_scale", g->values[p]->lr_scale);
        return kn_op_finish(g, n, d);
    }
    bool adamw = !strcmp(opt, "adamw");
    if (!strcmp(opt, "adam") || adamw) {
        double b1 = opt_f(g, "beta1", 0.9), b2 = opt_f(g, "beta2", 0.999);
        const kn_attr *betas = opt_attr(g, "betas");
        if (betas && betas->kind == KN_ATTR_FLOATS && betas->n == 2) {
            b1 = betas->floats[0];
            b2 = betas->floats[1];
        } else if (betas && betas->kind == KN_ATTR_INTS && betas->n == 2) {
            b1 = (double)betas->ints[0];
            b2 = (double)betas->ints[1];
        } else if (betas) {
            return kn_diag_fail(d, "%s: optimizer option betas must be a pair (beta1, beta2)", g->name);
        }
        int op = step_op("adam_step", g, d);
        if (op < 0) return KN_ERR;
        int in[3] = {p, add_state(g, p, "m"), add_state(g, p, "v")};
        kn_node *n = kn_op_build(g, op, name, in, 3, 0, d);
        kn_node_set_attr_f(n, "beta1", b1);
        kn_node_set_attr_f(n, "beta2", b2);
        kn_node_set_attr_f(n, "eps", opt_f(g, "eps", 1e-8));
        kn_node_set_attr_f(n, "weight_decay", adamw ? opt_f(g, "weight_decay", 0.01) : wd);
        kn_node_set_attr_b(n, "decoupled", adamw);
        kn_node_set_attr_f(n, "lr_scale", g->values[p]->lr_scale);
        return kn_op_finish(g, n, d);
    }
    return kn_diag_fail(d, "%s: unknown optimizer '%s' (expected sgd, adam or adamw)", g->name, opt);
}

kn_status kn_pass_lower_optimizer(kn_graph *g, kn_diag *d)
{
    drop_forward_nodes(g);
    if (!g->meta.optimizer || !*g->meta.optimizer)
        return kn_diag_fail(d, "%s: cannot train: the train block names no optimizer (e.g. optimizer adam(lr=1e-3))", g->name);
    if (check_attrs(g, d) != KN_OK) return KN_ERR;
    int n_params = g->n_values;
    for (int i = 0; i < n_params; i++) {
        const kn_value *v = g->values[i];
        if (v->dead || v->kind != KN_VAL_PARAM || !v->trainable) continue;
        if (add_step(g, i, d) != KN_OK) return KN_ERR;
    }
    return KN_OK;
}

/* autodiff.c — reverse-mode differentiation of the loss over the IR.
 *
 * Walks the forward nodes backwards from the loss, asking each op's gradient
 * rule (in its op file) to add the IR nodes computing its inputs' gradients.
 * Because gradients are ordinary IR, the backward graph goes through the same
 * shape inference, dead-code elimination and memory planning as the forward.
 *
 * Only values that depend on a trainable parameter AND reach the loss get
 * gradient work: frozen parameters, inputs and labels are pruned here, not
 * computed and thrown away.  Each trainable parameter's gradient ends in an
 * accumulate_grad node that adds it into the gradient blob.
 */
#include "passes.h"
#include "../ir/ops/op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Values that depend on a trainable parameter (forward reachability). */
static bool *mark_requires_grad(const kn_graph *g)
{
    bool *req = kn_xcalloc((size_t)g->n_values + 1, sizeof(bool));
    for (int i = 0; i < g->n_values; i++) {
        const kn_value *v = g->values[i];
        req[i] = !v->dead && v->kind == KN_VAL_PARAM && v->trainable;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const kn_node *n = g->nodes[i];
        bool any = false;
        for (int k = 0; k < n->n_in; k++) any |= req[n->in[k]];
        for (int k = 0; k < n->n_out; k++)
            req[n->out[k]] = any && g->values[n->out[k]]->dtype == KN_F32;
    }
    return req;
}

/* grad[v] += contribution, adding an `add` node when v already has one. */
static kn_status accumulate(kn_graph *g, int *grad, int v, int contrib, kn_diag *d)
{
    if (grad[v] < 0) {
        grad[v] = contrib;
        return KN_OK;
    }
    char name[600];
    snprintf(name, sizeof name, "%s.grad_sum", g->values[v]->name);
    int in[2] = {grad[v], contrib};
    kn_node *s = kn_op_build(g, KN_OP_ADD, name, in, 2, 1, d);
    if (!s || kn_op_finish(g, s, d) != KN_OK) return KN_ERR;
    grad[v] = s->out[0];
    return KN_OK;
}

/* The seed dL/dL = 1 as a scalar constant. */
static int make_seed(kn_graph *g, int loss)
{
    char name[600];
    snprintf(name, sizeof name, "%s.grad_seed", g->values[loss]->name);
    int id = kn_graph_add_value(g, name, KN_VAL_CONST, KN_F32, &g->values[loss]->shape);
    float *one = kn_xmalloc(sizeof(float));
    *one = 1.0f;
    g->values[id]->data = one;
    return id;
}

kn_status kn_pass_autodiff(kn_graph *g, kn_diag *d)
{
    if (g->loss < 0) return kn_diag_fail(d, "%s: cannot train: the model has no statement named 'loss'", g->name);
    const kn_value *lv = g->values[g->loss];
    int64_t numel = 0;
    if (!kn_shape_numel(&lv->shape, 1, &numel) || numel != 1 || kn_shape_is_batched(&lv->shape)) {
        char s[96];
        kn_shape_format(lv->dtype, &lv->shape, s, sizeof s);
        return kn_diag_fail(d, "%s: the loss must be a scalar f32[], got %s", g->name, s);
    }
    int n_forward = g->n_nodes;
    int n_values_fwd = g->n_values;
    bool *req = mark_requires_grad(g);
    if (!req[g->loss]) {
        free(req);
        return KN_OK; /* nothing trainable reaches the loss: no backward work */
    }
    /* grad[] covers forward values only; gradient values are never
     * differentiated again. */
    int *grad = kn_xmalloc(sizeof(int) * (size_t)(n_values_fwd + 1));
    for (int i = 0; i < n_values_fwd; i++) grad[i] = -1;
    grad[g->loss] = make_seed(g, g->loss);

    kn_status st = KN_OK;
    for (int i = n_forward - 1; i >= 0 && st == KN_OK; i--) {
        const kn_node *n = g->nodes[i];
        int dy[KN_MAX_OUTPUTS];
        bool has_dy = false;
        for (int k = 0; k < n->n_out; k++) {
            dy[k] = grad[n->out[k]];
            has_dy |= dy[k] >= 0;
        }
        if (!has_dy) continue;
        bool *need = kn_xcalloc((size_t)n->n_in + 1, sizeof(bool));
        int *dx = kn_xmalloc(sizeof(int) * (size_t)(n->n_in + 1));
        bool any = false;
        for (int k = 0; k < n->n_in; k++) {
            need[k] = req[n->in[k]];
            dx[k] = -1;
            any |= need[k];
        }
        const kn_op_def *def = kn_op_get(n->op);
        if (any && !def->grad) {
            kn_op_error(d, g, n, "has no gradient rule, so the model cannot be trained through it");
            st = kn_diag_locate(d, n);
        } else if (any && def->grad(g, n, dy, need, dx, d) != KN_OK) {
            st = kn_diag_locate(d, n);
        }
        for (int k = 0; k < n->n_in && st == KN_OK && any; k++) {
            if (!need[k] || dx[k] < 0) continue;
            const kn_value *in = g->values[n->in[k]], *gv = g->values[dx[k]];
            if (!kn_shape_equal(&in->shape, &gv->shape)) {
                char a[96], b[96];
                kn_shape_format(in->dtype, &in->shape, a, sizeof a);
                kn_shape_format(gv->dtype, &gv->shape, b, sizeof b);
                kn_op_error(d, g, n, "internal: gradient of input '%s' %s has shape %s", in->name, a, b);
                st = kn_diag_locate(d, n);
                break;
            }
            st = accumulate(g, grad, n->in[k], dx[k], d);
        }
        free(need);
        free(dx);
    }
    for (int i = 0; i < n_values_fwd && st == KN_OK; i++) {
        const kn_value *v = g->values[i];
        if (v->dead || v->kind != KN_VAL_PARAM || !v->trainable || grad[i] < 0) continue;
        char name[600];
        snprintf(name, sizeof name, "%s.accumulate_grad", v->name);
        int in[2] = {grad[i], i};
        kn_node *a = kn_op_build(g, KN_OP_ACCUMULATE_GRAD, name, in, 2, 0, d);
        if (!a || kn_op_finish(g, a, d) != KN_OK) st = KN_ERR;
    }
    free(req);
    free(grad);
    return st;
}

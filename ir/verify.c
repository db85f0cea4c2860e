/* verify.c — structural invariants of a kn_graph.
 *
 * A verifier failure means a kiln stage produced a malformed graph (a
 * compiler bug), not that the user's model is wrong; user errors are caught
 * earlier with located messages.  It still reports as a value, never aborts.
 */
#include "ir.h"
#include "ops/op.h"

kn_status kn_graph_verify(const kn_graph *g, bool need_shapes, kn_diag *d)
{
    for (int i = 0; i < g->n_values; i++) {
        const kn_value *v = g->values[i];
        if (v->id != i) return kn_diag_fail(d, "internal: value '%s' has id %d at index %d", v->name, v->id, i);
        if (v->dead) continue;
        if (v->kind == KN_VAL_NODE && (v->producer < 0 || v->producer >= g->n_nodes))
            return kn_diag_fail(d, "internal: value '%s' has no producer", v->name);
        if (need_shapes && !v->shape_known)
            return kn_diag_fail(d, "internal: value '%s' has no inferred shape", v->name);
        for (int k = 1; v->shape_known && k < v->shape.rank; k++)
            if (v->shape.d[k] < 1)
                return kn_diag_fail(d, "internal: value '%s' has dimension %d of size %lld", v->name, k, (long long)v->shape.d[k]);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const kn_node *n = g->nodes[i];
        if (n->id != i) return kn_diag_fail(d, "internal: node '%s' has id %d at index %d", n->name, n->id, i);
        if (!kn_op_get(n->op)) return kn_diag_fail(d, "internal: node '%s' has unknown op %d", n->name, n->op);
        for (int k = 0; k < n->n_in; k++) {
            const kn_value *v = kn_graph_value(g, n->in[k]);
            if (!v) return kn_diag_fail(d, "internal: node '%s' input %d is not a value", n->name, k);
            if (v->kind == KN_VAL_NODE && v->producer >= i)
                return kn_diag_fail(d, "internal: node '%s' reads '%s' before it is computed", n->name, v->name);
        }
        for (int k = 0; k < n->n_out; k++) {
            const kn_value *v = kn_graph_value(g, n->out[k]);
            if (!v || v->producer != i)
                return kn_diag_fail(d, "internal: node '%s' output %d is not owned by it", n->name, k);
        }
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (!kn_graph_value(g, g->outputs[i])) return kn_diag_fail(d, "internal: graph output %d is not a value", i);
    if (g->loss >= 0 && !kn_graph_value(g, g->loss)) return kn_diag_fail(d, "internal: loss is not a value");
    return KN_OK;
}

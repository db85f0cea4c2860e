/* dce.c — dead-code elimination: keep only nodes that feed an output or the
 * loss, then renumber nodes; inputs and labels nothing reads are dropped.  Values are kept (ids stay stable); a value
 * whose producer was removed becomes unreachable and is ignored later. */
#include "passes.h"
#include "../ir/ops/op.h"

#include <stdlib.h>

kn_status kn_pass_dce(kn_graph *g, kn_diag *d)
{
    bool *live_val = kn_xcalloc((size_t)g->n_values + 1, sizeof(bool));
    bool *live_node = kn_xcalloc((size_t)g->n_nodes + 1, sizeof(bool));
    for (int i = 0; i < g->n_outputs; i++) live_val[g->outputs[i]] = true;
    if (g->loss >= 0) live_val[g->loss] = true;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const kn_node *n = g->nodes[i];
        if (kn_op_get(n->op)->side_effects) live_node[i] = true;
        for (int k = 0; k < n->n_out && !live_node[i]; k++)
            if (live_val[n->out[k]]) live_node[i] = true;
        if (!live_node[i]) continue;
        for (int k = 0; k < n->n_in; k++) live_val[n->in[k]] = true;
    }
    int w = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        kn_node *n = g->nodes[i];
        if (!live_node[i]) {
            for (int k = 0; k < n->n_out; k++) g->values[n->out[k]]->producer = -2; /* dead */
            kn_node_free(n);
            continue;
        }
        n->id = w;
        for (int k = 0; k < n->n_out; k++) g->values[n->out[k]]->producer = w;
        g->nodes[w++] = n;
    }
    g->n_nodes = w;
    /* Values of removed nodes stay in the table so ids remain stable; mark
     * them dead so the verifier, planner and emitters skip them. */
    for (int i = 0; i < g->n_values; i++) {
        kn_value *v = g->values[i];
        if (v->kind == KN_VAL_NODE && v->producer == -2) {
            v->dead = true;
            v->producer = -1;
        }
        /* An input nothing reads (the model input of a phase that starts at
         * cached features) is not part of the phase's interface. */
        if ((v->kind == KN_VAL_INPUT || v->kind == KN_VAL_LABEL) && !live_val[i]) v->dead = true;
    }
    free(live_val);
    free(live_node);
    return kn_graph_verify(g, false, d);
}

/* frozen_prefix.c — the part of a model that training cannot change.
 *
 * In transfer learning most of the network is a frozen pretrained backbone:
 * its output for an image is the same in every epoch.  A node belongs to the
 * frozen prefix when all its inputs are model inputs (features, not labels),
 * constants, buffers, frozen parameters or other prefix values, and it is a
 * fixed function in train mode too (no dropout draw, no running-statistics
 * update: kn_op_def.train_impure).  The frontier is the prefix values that
 * the rest of the graph reads; caching them per sample lets training run
 * only the head after the first pass over the data.
 *
 * Worth it only when the prefix holds frozen parameters (a prefix of mere
 * flatten/reshape would cache the input itself), and only for batched
 * frontier values, which are per-sample.
 */
#include "passes.h"
#include "../ir/ops/op.h"

#include <stdlib.h>

static bool value_is_fixed_leaf(const kn_value *v)
{
    switch (v->kind) {
    case KN_VAL_INPUT:
    case KN_VAL_CONST:
    case KN_VAL_BUFFER: return true;
    case KN_VAL_PARAM: return !v->trainable;
    default: return false;
    }
}

/* fixed[v]: v is a function of the inputs alone; frozen[v]: and its
 * computation reads frozen parameters. */
static void mark_prefix(const kn_graph *g, bool *fixed, bool *uses_frozen)
{
    for (int v = 0; v < g->n_values; v++) {
        const kn_value *val = g->values[v];
        fixed[v] = !val->dead && value_is_fixed_leaf(val);
        uses_frozen[v] = val->kind == KN_VAL_PARAM && fixed[v];
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const kn_node *n = g->nodes[i];
        const kn_op_def *def = kn_op_get(n->op);
        bool ok = !def->side_effects && !(def->train_impure && def->train_impure(g, n));
        bool frozen = false;
        for (int k = 0; k < n->n_in && ok; k++) {
            ok = fixed[n->in[k]];
            frozen |= uses_frozen[n->in[k]];
        }
        for (int k = 0; k < n->n_out; k++) {
            fixed[n->out[k]] = ok;
            uses_frozen[n->out[k]] = ok && frozen;
        }
    }
}

int kn_find_frozen_prefix(const kn_graph *g, int *frontier, int cap)
{
    bool *fixed = kn_xcalloc((size_t)g->n_values + 1, sizeof(bool));
    bool *uses_frozen = kn_xcalloc((size_t)g->n_values + 1, sizeof(bool));
    bool *listed = kn_xcalloc((size_t)g->n_values + 1, sizeof(bool));
    mark_prefix(g, fixed, uses_frozen);
    int n = 0;
    bool usable = true, any_frozen = false;
    for (int i = 0; i < g->n_nodes && usable; i++) {
        const kn_node *node = g->nodes[i];
        if (fixed[node->out[0]]) continue; /* inside the prefix */
        for (int k = 0; k < node->n_in && usable; k++) {
            int v = node->in[k];
            const kn_value *val = g->values[v];
            if (!fixed[v] || val->kind != KN_VAL_NODE || listed[v]) continue;
            /* Parameters and buffers are read directly; node outputs cross. */
            usable = n < cap && kn_shape_is_batched(&val->shape) && val->dtype == KN_F32;
            if (!usable) break;
            listed[v] = true;
            any_frozen |= uses_frozen[v];
            frontier[n++] = v;
        }
    }
    /* A prefix value that is itself an output would have to be cached too:
     * keep it simple and decline. */
    for (int v = 0; v < g->n_values && usable; v++)
        if (fixed[v] && g->values[v]->kind == KN_VAL_NODE && kn_graph_is_output(g, v)) usable = false;
    free(fixed);
    free(uses_frozen);
    free(listed);
    return usable && any_frozen ? n : 0;
}

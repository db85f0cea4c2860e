/* infer_shapes.c — re-derives every node's output types from its inputs.
 *
 * The frontend already infers shapes while building (it needs them to size
 * parameters); this pass runs after any transformation so later stages can
 * trust every value's type.  Errors carry the node's source location.
 */
#include "passes.h"
#include "../ir/ops/op.h"

#include <stdio.h>

kn_status kn_pass_infer_shapes(kn_graph *g, kn_diag *d)
{
    for (int i = 0; i < g->n_nodes; i++) {
        kn_node *n = g->nodes[i];
        const kn_op_def *def = kn_op_get(n->op);
        for (int k = 0; k < n->n_in; k++)
            if (!g->values[n->in[k]]->shape_known)
                return kn_diag_fail(d, "internal: input '%s' of node '%s' has no shape",
                                    g->values[n->in[k]]->name, n->name);
        if (def->infer(g, n, d) != KN_OK) return kn_diag_locate(d, n);
        for (int k = 0; k < n->n_out; k++) {
            kn_value *v = g->values[n->out[k]];
            int64_t numel;
            if (!v->shape_known) {
                kn_diag_fail(d, "internal: op '%s' left output %d of '%s' without a shape", def->name, k, n->name);
                return kn_diag_locate(d, n);
            }
            /* 2^40 elements per sample is far beyond any real model and keeps
             * every later byte computation (x8, x batch) inside int64. */
            if (!kn_shape_numel_per_sample(&v->shape, &numel) || numel > ((int64_t)1 << 40)) {
                char s[96];
                kn_shape_format(v->dtype, &v->shape, s, sizeof s);
                kn_diag_fail(d, "%s '%s': output %s is too large", def->name, n->name, s);
                return kn_diag_locate(d, n);
            }
        }
    }
    return kn_graph_verify(g, true, d);
}

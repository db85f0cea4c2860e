/* grad_accum.c — accumulate_grad(grad, param): adds a parameter's gradient
 * into its slot of the gradient blob.
 *
 * Autodiff ends every trainable parameter's gradient chain with this node.
 * Adding (not storing) is what makes `--accumulate K` work: K train phases
 * run before one update phase reads and clears the blob. */
#include "op.h"

#include <stdio.h>

static kn_status accum_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (n->n_in != 2) return kn_op_error(d, g, n, "expects (grad, param), got %d inputs", n->n_in);
    const kn_value *gr = g->values[n->in[0]], *p = g->values[n->in[1]];
    if (p->kind != KN_VAL_PARAM) return kn_op_error(d, g, n, "'%s' is not a parameter", p->name);
    if (!kn_shape_equal(&gr->shape, &p->shape)) {
        char a[96], b[96];
        kn_shape_format(gr->dtype, &gr->shape, a, sizeof a);
        kn_shape_format(p->dtype, &p->shape, b, sizeof b);
        return kn_op_error(d, g, n, "gradient %s does not match parameter '%s' %s", a, p->name, b);
    }
    return KN_OK;
}

static kn_status accum_emit_c(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    char dst[128], count[64];
    (void)g;
    e->grad_addr(e, n->in[1], dst, sizeof dst);
    kn_emit_numel(e, n->in[1], count, sizeof count);
    kn_emit_cuda_kernel(e, count);
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_line(e, "float *restrict G = %s;", dst);
    kn_emit_for(e, "i", count, "G[i] += dY[i];");
    kn_emit_cuda_end(e);
    return KN_OK;
}

const kn_op_def kn_op_def_accumulate_grad = {
    .name = "accumulate_grad",
    .min_inputs = 2,
    .max_inputs = 2,
    .infer = accum_infer,
    .emit_c = accum_emit_c, .emit_cuda = accum_emit_c,
    .side_effects = true,
    .internal = true,
};

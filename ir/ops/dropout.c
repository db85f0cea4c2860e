/* dropout.c — dropout(x, p=0.5).
 *
 * Eval mode is the identity (a copy into the output).  Train mode (a mask
 * from kn_rt_uniform, scaled by 1/(1-p)) belongs to the training work; until
 * then emission fails in train mode rather than silently skipping the mask.
 */
#include "op_util.h"

static kn_status dropout_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "input") != KN_OK) return KN_ERR;
    double p = kn_ops_attr_num(n, "p", 0.5);
    if (!(p >= 0 && p <= 1))
        return kn_op_error(d, g, n, "p must be in [0, 1], got %g", p);
    kn_ops_set_out(g, n, 0, KN_F32, &kn_graph_value(g, n->in[0])->shape);
    return KN_OK;
}

static kn_status dropout_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    if (g->mode == KN_MODE_TRAIN) return KN_ERR; /* dropout train mode not implemented yet */
    char numel[64];
    kn_emit_numel(e, n->out[0], numel, sizeof numel);
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_line(e, "if (Y != X) memcpy(Y, X, %s * sizeof(float));", numel);
    return KN_OK;
}

static const kn_arg_spec dropout_args[] = {
    {"p", KN_ATTR_FLOAT, false, 0, 0.5, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_dropout = {
    .name = "dropout", .min_inputs = 1, .max_inputs = 1, .args = dropout_args,
    .infer = dropout_infer, .emit_c = dropout_emit,
};

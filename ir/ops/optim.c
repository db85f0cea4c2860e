/* optim.c — optimizer step ops: sgd_step and adam_step.
 *
 * The optimizer-lowering pass adds one node per trainable parameter to the
 * update phase.  A step node has no outputs: it updates the parameter and
 * its state (KN_VAL_STATE values `optim.<param>.momentum`, `.m`, `.v`) in
 * place, reads the gradient from the parameter's slot of the gradient blob
 * (scaled by ctx->grad_scale), and zeroes that slot for the next
 * accumulation.  ctx->lr and ctx->step (1-based) come from the runtime.
 *
 *   sgd_step(param[, momentum_buf], momentum=0, dampening=0, nesterov=false,
 *            weight_decay=0)                           torch.optim.SGD
 *   adam_step(param, m, v, beta1=0.9, beta2=0.999, eps=1e-8,
 *             weight_decay=0, decoupled=false)         torch.optim.Adam / AdamW
 *
 * The arithmetic follows PyTorch's single-tensor implementations operation
 * by operation (float32 tensors, hyper-parameters rounded to float where
 * PyTorch passes them as scalars, bias corrections in double) so several
 * steps agree with torch.optim to a few ulps.  Not here: amsgrad, maximize,
 * learning-rate schedules (those change ctx->lr in the runtime).
 */
#include "op_util.h"

static kn_status optim_want_state(kn_diag *d, const kn_graph *g, const kn_node *n, int i, const char *role)
{
    const kn_value *p = kn_graph_value(g, n->in[0]), *s = kn_graph_value(g, n->in[i]);
    if (s->kind == KN_VAL_STATE && s->dtype == KN_F32 && kn_shape_equal(&s->shape, &p->shape)) return KN_OK;
    char a[128], b[128];
    kn_ops_fmt(g, n->in[i], a, sizeof a);
    kn_ops_fmt(g, n->in[0], b, sizeof b);
    return kn_op_error(d, g, n, "%s '%s' %s must be optimizer state shaped like parameter '%s' %s", role, s->name,
                       a, p->name, b);
}

/* Common checks: no outputs, input 0 a trainable f32 parameter. */
static kn_status optim_check(kn_diag *d, const kn_graph *g, const kn_node *n, int min_in, int max_in)
{
    if (n->n_out != 0)
        return kn_op_error(d, g, n, "is added by the optimizer; it has no outputs and cannot be used in a model");
    if (n->n_in < min_in || n->n_in > max_in)
        return kn_op_error(d, g, n, "expects %d to %d inputs, got %d", min_in, max_in, n->n_in);
    const kn_value *p = kn_graph_value(g, n->in[0]);
    if (p->kind != KN_VAL_PARAM || !p->trainable || p->dtype != KN_F32)
        return kn_op_error(d, g, n, "'%s' is not a trainable f32 parameter", p->name);
    double wd = kn_ops_attr_num(n, "weight_decay", 0);
    if (!(wd >= 0)) return kn_op_error(d, g, n, "weight_decay must be >= 0, got %g", wd);
    return KN_OK;
}

static kn_status sgd_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (optim_check(d, g, n, 1, 2) != KN_OK) return KN_ERR;
    double mom = kn_ops_attr_num(n, "momentum", 0), damp = kn_ops_attr_num(n, "dampening", 0);
    bool nesterov = kn_node_attr_i(n, "nesterov", 0) != 0;
    if (!(mom >= 0)) return kn_op_error(d, g, n, "momentum must be >= 0, got %g", mom);
    if (nesterov && (mom <= 0 || damp != 0))
        return kn_op_error(d, g, n, "nesterov momentum requires momentum > 0 and dampening = 0 "
                           "(got momentum %g, dampening %g)", mom, damp);
    if (mom != 0 && n->n_in != 2)
        return kn_op_error(d, g, n, "momentum %g needs a momentum buffer input", mom);
    if (n->n_in == 2 && optim_want_state(d, g, n, 1, "momentum buffer") != KN_OK) return KN_ERR;
    return KN_OK;
}

/* The step's learning rate: the schedule's ctx->lr, times the parameter's
 * lr_scale (a fine-tuned backbone layer learns slower than the head, like
 * a PyTorch parameter group with its own lr). */
static void emit_lr(kn_emit *e, const kn_node *n)
{
    double s = kn_ops_attr_num(n, "lr_scale", 1.0);
    if (s == 1.0) {
        kn_emit_line(e, "const float lr = ctx->lr;");
        return;
    }
    char lit[64];
    kn_emit_float_lit(s, lit, sizeof lit);
    kn_emit_line(e, "const float lr = ctx->lr * %s; /* this parameter's lr_scale */", lit);
}

static kn_status sgd_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    double mom = kn_ops_attr_num(n, "momentum", 0), damp = kn_ops_attr_num(n, "dampening", 0);
    double wd = kn_ops_attr_num(n, "weight_decay", 0);
    bool nesterov = kn_node_attr_i(n, "nesterov", 0) != 0;
    char count[64], gaddr[128], lit_wd[48], lit_m[48], lit_d[48];
    (void)g;
    kn_emit_numel(e, n->in[0], count, sizeof count);
    e->grad_addr(e, n->in[0], gaddr, sizeof gaddr);
    kn_emit_float_lit(wd, lit_wd, sizeof lit_wd);
    kn_emit_float_lit(mom, lit_m, sizeof lit_m);
    kn_emit_float_lit(1.0 - damp, lit_d, sizeof lit_d);
    kn_emit_cuda_kernel(e, count);
    kn_emit_bind_out(e, "P", n->in[0]);
    kn_emit_line(e, "float *restrict G = %s;", gaddr);
    if (mom != 0) {
        kn_emit_bind_out(e, "BUF", n->in[1]);
        kn_emit_line(e, "const int first = ctx->step == 1; /* torch: buf = clone(g) on the first step */");
    }
    emit_lr(e, n);
    kn_emit_line(e, "const float scale = ctx->grad_scale;");
    if (!kn_emit_is_cuda(e)) kn_emit_line(e, "KN_IVDEP"); /* see kn_rt.h */
    kn_emit_for_open(e, "i", count);
    kn_emit_line(e, "float g = G[i] * scale;");
    if (wd != 0) kn_emit_line(e, "g = g + %s * P[i];", lit_wd);
    if (mom != 0) {
        if (damp == 0) kn_emit_line(e, "BUF[i] = first ? g : BUF[i] * %s + g;", lit_m);
        else kn_emit_line(e, "BUF[i] = first ? g : BUF[i] * %s + %s * g;", lit_m, lit_d);
        if (nesterov) kn_emit_line(e, "g = g + %s * BUF[i];", lit_m);
        else kn_emit_line(e, "g = BUF[i];");
    }
    kn_emit_line(e, "P[i] = P[i] - lr * g;");
    kn_emit_line(e, "G[i] = 0.0f;");
    kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static kn_status adam_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (optim_check(d, g, n, 3, 3) != KN_OK) return KN_ERR;
    double b1 = kn_ops_attr_num(n, "beta1", 0.9), b2 = kn_ops_attr_num(n, "beta2", 0.999);
    double eps = kn_ops_attr_num(n, "eps", 1e-8);
    if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1))
        return kn_op_error(d, g, n, "betas must be in [0, 1), got (%g, %g)", b1, b2);
    if (!(eps >= 0)) return kn_op_error(d, g, n, "eps must be >= 0, got %g", eps);
    if (optim_want_state(d, g, n, 1, "first moment") != KN_OK) return KN_ERR;
    return optim_want_state(d, g, n, 2, "second moment");
}

static kn_status adam_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    double b1 = kn_ops_attr_num(n, "beta1", 0.9), b2 = kn_ops_attr_num(n, "beta2", 0.999);
    double eps = kn_ops_attr_num(n, "eps", 1e-8), wd = kn_ops_attr_num(n, "weight_decay", 0);
    bool decoupled = kn_node_attr_i(n, "decoupled", 0) != 0;
    char count[64], gaddr[128], l_b1[48], l_b2[48], l_1b1[48], l_1b2[48], l_eps[48], l_wd[48];
    (void)g;
    kn_emit_numel(e, n->in[0], count, sizeof count);
    e->grad_addr(e, n->in[0], gaddr, sizeof gaddr);
    kn_emit_float_lit(b1, l_b1, sizeof l_b1);
    kn_emit_float_lit(b2, l_b2, sizeof l_b2);
    kn_emit_float_lit(1.0 - b1, l_1b1, sizeof l_1b1);
    kn_emit_float_lit(1.0 - b2, l_1b2, sizeof l_1b2);
    kn_emit_float_lit(eps, l_eps, sizeof l_eps);
    kn_emit_float_lit(wd, l_wd, sizeof l_wd);
    kn_emit_cuda_kernel(e, count);
    kn_emit_bind_out(e, "P", n->in[0]);
    kn_emit_bind_out(e, "M", n->in[1]);
    kn_emit_bind_out(e, "V", n->in[2]);
    kn_emit_line(e, "float *restrict G = %s;", gaddr);
    kn_emit_line(e, "const float scale = ctx->grad_scale;");
    kn_emit_line(e, "const double bc1 = 1.0 - pow(%.17g, (double)ctx->step);", b1);
    kn_emit_line(e, "const double bc2 = 1.0 - pow(%.17g, (double)ctx->step);", b2);
    emit_lr(e, n);
    kn_emit_line(e, "const float neg_step = (float)-((double)lr / bc1);");
    kn_emit_line(e, "const float bc2_sqrt = (float)sqrt(bc2);");
    if (decoupled && wd != 0)
        kn_emit_line(e, "const float decay = (float)(1.0 - (double)lr * %.17g); /* AdamW */", wd);
    if (!kn_emit_is_cuda(e)) kn_emit_line(e, "KN_IVDEP"); /* see kn_rt.h */
    kn_emit_for_open(e, "i", count);
    kn_emit_line(e, "float g = G[i] * scale;");
    if (wd != 0 && !decoupled) kn_emit_line(e, "g = g + %s * P[i];", l_wd);
    if (wd != 0 && decoupled) kn_emit_line(e, "P[i] = P[i] * decay;");
    kn_emit_line(e, "M[i] = M[i] * %s + %s * g;", l_b1, l_1b1);
    kn_emit_line(e, "V[i] = V[i] * %s + %s * g * g;", l_b2, l_1b2);
    kn_emit_line(e, "const float denom = sqrtf(V[i]) / bc2_sqrt + %s;", l_eps);
    kn_emit_line(e, "P[i] = P[i] + neg_step * M[i] / denom;");
    kn_emit_line(e, "G[i] = 0.0f;");
    kn_emit_close(e);
    kn_emit_cuda_end(e);
    return KN_OK;
}

static const kn_arg_spec sgd_args[] = {
    {"momentum", KN_ATTR_FLOAT, false, 0, 0.0, NULL},
    {"dampening", KN_ATTR_FLOAT, false, 0, 0.0, NULL},
    {"nesterov", KN_ATTR_BOOL, false, 0, 0, NULL},
    {"weight_decay", KN_ATTR_FLOAT, false, 0, 0.0, NULL},
    {"lr_scale", KN_ATTR_FLOAT, false, 0, 1.0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

static const kn_arg_spec adam_args[] = {
    {"beta1", KN_ATTR_FLOAT, false, 0, 0.9, NULL},
    {"beta2", KN_ATTR_FLOAT, false, 0, 0.999, NULL},
    {"eps", KN_ATTR_FLOAT, false, 0, 1e-8, NULL},
    {"weight_decay", KN_ATTR_FLOAT, false, 0, 0.0, NULL},
    {"decoupled", KN_ATTR_BOOL, false, 0, 0, NULL},
    {"lr_scale", KN_ATTR_FLOAT, false, 0, 1.0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

const kn_op_def kn_op_def_sgd_step = {
    .name = "sgd_step", .min_inputs = 1, .max_inputs = 2, .args = sgd_args,
    .infer = sgd_infer, .emit_c = sgd_emit, .emit_cuda = sgd_emit, .side_effects = true,
};
const kn_op_def kn_op_def_adam_step = {
    .name = "adam_step", .min_inputs = 3, .max_inputs = 3, .args = adam_args,
    .infer = adam_infer, .emit_c = adam_emit, .emit_cuda = adam_emit, .side_effects = true,
};

/* reduce_axes.c — ONNX-style reductions over any set of axes:
 * reduce_sum, reduce_mean, reduce_max, reduce_min, reduce_prod, reduce_l1,
 * reduce_l2, reduce_sum_square, reduce_log_sum, reduce_log_sum_exp.
 *
 * reduce_X(x, dim=(...), keepdim=true): `dim` is any set of dims (not
 * necessarily adjacent, unlike sum/mean in reduce.c); empty or absent means
 * every dim.  Emission walks the kept dims outside and the reduced dims
 * inside, accumulating one output element in a double so the result does
 * not depend on loop order.  max/min propagate NaN; log_sum_exp subtracts
 * the maximum first.
 * Backward op reduce_axes_grad(dy, x, y) (attribute `fn` = the forward op)
 * walks the same nest and writes dX per reduced line: max/min split the
 * gradient evenly between ties (torch.amax's rule), prod handles zeros
 * exactly (the product of the other elements), the rest are closed forms.
 */
#include "op_util.h"

#include <math.h>

/* The reduced dims of `n` (attribute `dim`) as a mask over x's dims. */
static kn_status reduced_mask(const kn_graph *g, const kn_node *n, int x, bool *red, kn_diag *d)
{
    const kn_value *v = kn_graph_value(g, x);
    const kn_attr *a = kn_node_attr(n, "dim");
    int cnt = a && a->kind == KN_ATTR_INTS ? a->n : a && a->kind == KN_ATTR_INT ? 1 : 0;
    for (int i = 0; i < v->shape.rank; i++) red[i] = cnt == 0;
    for (int i = 0; i < cnt; i++) {
        int k = 0;
        if (kn_ops_norm_dim(d, g, n, x, a->kind == KN_ATTR_INT ? a->i : a->ints[i], &k) != KN_OK) return KN_ERR;
        if (red[k]) return kn_op_error(d, g, n, "dim %d appears twice", k);
        red[k] = true;
    }
    return KN_OK;
}

static kn_status reduce_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    if (kn_ops_want_f32(d, g, n, 0, "input") != KN_OK) return KN_ERR;
    bool red[KN_MAX_RANK];
    if (reduced_mask(g, n, n->in[0], red, d) != KN_OK) return KN_ERR;
    const kn_shape *x = &kn_graph_value(g, n->in[0])->shape;
    bool keep = kn_node_attr_i(n, "keepdim", 1) != 0;
    kn_shape y = {.rank = 0};
    for (int i = 0; i < x->rank; i++) {
        if (!red[i]) y.d[y.rank++] = x->d[i];
        else if (keep) y.d[y.rank++] = 1;
    }
    kn_ops_set_out(g, n, 0, KN_F32, &y);
    return KN_OK;
}

/* ---- the loop nest: kept dims outside, reduced dims inside ---- */

typedef struct {
    const kn_shape *x;
    bool red[KN_MAX_RANK];
    int64_t sx[KN_MAX_RANK], sy[KN_MAX_RANK]; /* strides of x and of y's keepdim layout */
} nest;

static void nest_init(nest *L, const kn_shape *x, const bool *red)
{
    L->x = x;
    kn_shape ky = *x;
    for (int i = 0; i < x->rank; i++) {
        L->red[i] = red[i];
        if (red[i]) ky.d[i] = 1;
    }
    kn_ops_strides(x, L->sx);
    kn_ops_strides(&ky, L->sy);
}

/* Opens the loops of the reduced (`reduced`) or kept dims; returns how many. */
static int nest_open(kn_emit *e, const nest *L, bool reduced)
{
    int c = 0;
    for (int k = 0; k < L->x->rank; k++) {
        if (L->red[k] != reduced || L->x->d[k] == 1) continue;
        if (L->x->d[k] == KN_DIM_N) kn_emit_line(e, "for (size_t i%d = 0; i%d < (size_t)n; i%d++)", k, k, k);
        else kn_emit_line(e, "for (size_t i%d = 0; i%d < %lld; i%d++)", k, k, (long long)L->x->d[k], k);
        e->indent++;
        c++;
    }
    return c;
}

/* The kept dims' element count (the outputs) as a C expression. */
static void kept_count(const nest *L, char *buf, size_t cap)
{
    int64_t c = 1;
    bool sym = false;
    for (int k = 0; k < L->x->rank; k++) {
        if (L->red[k]) continue;
        if (L->x->d[k] == KN_DIM_N) sym = true;
        else c *= L->x->d[k];
    }
    if (sym) snprintf(buf, cap, "((size_t)n * %lld)", (long long)c);
    else snprintf(buf, cap, "%lld", (long long)c);
}

/* Opens the walk over the outputs: the kept dims' loops in C; in a CUDA
 * kernel one grid-stride loop over the outputs, one thread per output,
 * each i<k> taken from its flat index.  Returns what close_kept needs. */
static int open_kept(kn_emit *e, const nest *L)
{
    if (!kn_emit_is_cuda(e)) return nest_open(e, L, false);
    char cnt[64];
    kept_count(L, cnt, sizeof cnt);
    kn_emit_for_open(e, "kn_o", cnt);
    kn_emit_line(e, "size_t rest = kn_o;");
    kn_emit_line(e, "(void)rest;");
    for (int k = L->x->rank - 1; k >= 0; k--) {
        if (L->red[k] || L->x->d[k] == 1) continue;
        if (L->x->d[k] == KN_DIM_N) kn_emit_line(e, "const size_t i%d = rest;", k);
        else kn_emit_line(e, "const size_t i%d = rest %% %lld; rest /= %lld;", k, (long long)L->x->d[k],
                          (long long)L->x->d[k]);
    }
    return -1;
}

static void close_kept(kn_emit *e, int c)
{
    if (c < 0) kn_emit_close(e);
    else e->indent -= c;
}

/* Index of the current element of x (`of_y` false) or of its output. */
static void nest_index(const nest *L, bool of_y, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (int k = 0; k < L->x->rank; k++) {
        if (L->x->d[k] == 1 || (of_y && L->red[k])) continue;
        int64_t s = of_y ? L->sy[k] : L->sx[k];
        int w = s == 1 ? snprintf(buf + len, cap - len, "%si%d", len ? " + " : "", k)
                       : snprintf(buf + len, cap - len, "%si%d * %lld", len ? " + " : "", k, (long long)s);
        if (w > 0 && (size_t)w < cap - len) len += (size_t)w;
    }
    if (!len) snprintf(buf, cap, "0");
}

/* Element count of the reduced dims as a C expression. */
static void nest_count(kn_emit *e, const nest *L, char *buf, size_t cap)
{
    int64_t c = 1;
    bool sym = false;
    (void)e;
    for (int k = 0; k < L->x->rank; k++) {
        if (!L->red[k]) continue;
        if (L->x->d[k] == KN_DIM_N) sym = true;
        else c *= L->x->d[k];
    }
    if (sym) snprintf(buf, cap, "((double)n * %lld)", (long long)c);
    else snprintf(buf, cap, "%lld.0", (long long)c);
}

/* Emits `body` (one statement using `x` = the element) over the reduced dims. */
static void emit_reduced_loop(kn_emit *e, const nest *L, const char *body)
{
    char ix[512];
    nest_index(L, false, ix, sizeof ix);
    kn_emit_line(e, "{");
    e->indent++;
    int c = nest_open(e, L, true);
    kn_emit_line(e, "{ const double x = X[%s]; %s }", ix, body);
    e->indent -= c;
    e->indent--;
    kn_emit_line(e, "}");
}

/* Accumulation per op: initial value, statement, final expression. */
static void reduce_rule(int op, const char **init, const char **step, const char **fin)
{
    *init = "0.0", *fin = "acc";
    switch (op) {
    case KN_OP_REDUCE_MEAN: *step = "acc += x;"; *fin = "acc / R"; break;
    case KN_OP_REDUCE_MAX: *init = "-INFINITY"; *step = "if (x > acc || x != x) acc = x;"; break;
    case KN_OP_REDUCE_MIN: *init = "INFINITY"; *step = "if (x < acc || x != x) acc = x;"; break;
    case KN_OP_REDUCE_PROD: *init = "1.0"; *step = "acc *= x;"; break;
    case KN_OP_REDUCE_L1: *step = "acc += fabs(x);"; break;
    case KN_OP_REDUCE_L2: *step = "acc += x * x;"; *fin = "sqrt(acc)"; break;
    case KN_OP_REDUCE_SUM_SQUARE: *step = "acc += x * x;"; break;
    case KN_OP_REDUCE_LOG_SUM: *step = "acc += x;"; *fin = "log(acc)"; break;
    case KN_OP_REDUCE_LOG_SUM_EXP: *step = "acc += exp(x - m);"; *fin = "m + log(acc)"; break;
    default: *step = "acc += x;"; break; /* reduce_sum */
    }
}

/* Statements computing `m`, the maximum of the current line (log_sum_exp). */
static void emit_line_max(kn_emit *e, const nest *L)
{
    kn_emit_line(e, "double m = -INFINITY;");
    emit_reduced_loop(e, L, "if (x > m || x != x) m = x;");
    kn_emit_line(e, "if (isinf(m)) m = 0.0; /* all -inf (or +inf): exp(x - m) stays defined */");
}

static kn_status reduce_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    bool red[KN_MAX_RANK];
    if (reduced_mask(g, n, n->in[0], red, e->diag) != KN_OK) return KN_ERR;
    nest L;
    nest_init(&L, &kn_graph_value(g, n->in[0])->shape, red);
    const char *init, *step, *fin;
    reduce_rule(n->op, &init, &step, &fin);
    char iy[512], cnt[64];
    nest_index(&L, true, iy, sizeof iy);
    nest_count(e, &L, cnt, sizeof cnt);
    kn_emit_bind_in(e, "X", n->in[0]);
    kn_emit_bind_out(e, "Y", n->out[0]);
    kn_emit_line(e, "const double R = %s;", cnt);
    kn_emit_line(e, "(void)R;");
    int c = open_kept(e, &L);
    kn_emit_line(e, "{");
    e->indent++;
    if (n->op == KN_OP_REDUCE_LOG_SUM_EXP) emit_line_max(e, &L);
    kn_emit_line(e, "double acc = %s;", init);
    emit_reduced_loop(e, &L, step);
    kn_emit_line(e, "Y[%s] = (float)(%s);", iy, fin);
    e->indent--;
    kn_emit_line(e, "}");
    close_kept(e, c);
    return KN_OK;
}

/* ---- reduce_axes_grad(dy, x, y) ---- */

static kn_status grad_infer(kn_graph *g, kn_node *n, kn_diag *d)
{
    for (int i = 0; i < 3; i++)
        if (kn_ops_want_f32(d, g, n, i, i == 0 ? "gradient" : i == 1 ? "input" : "output") != KN_OK) return KN_ERR;
    int64_t a, b;
    const kn_shape *dy = &kn_graph_value(g, n->in[0])->shape, *y = &kn_graph_value(g, n->in[2])->shape;
    if (!kn_shape_numel_per_sample(dy, &a) || !kn_shape_numel_per_sample(y, &b) || a != b)
        return kn_op_error(d, g, n, "gradient and output sizes differ");
    kn_ops_set_out(g, n, 0, KN_F32, &kn_graph_value(g, n->in[1])->shape);
    return KN_OK;
}

/* dX per element of the line, given g (= dY of the line), y and x;
 * `pre` are statements run once per line before it (or NULL). */
static void grad_rule(int op, const char **pre, const char **dx)
{
    *pre = NULL;
    switch (op) {
    case KN_OP_REDUCE_MEAN: *dx = "g / R"; break;
    case KN_OP_REDUCE_MAX:
    case KN_OP_REDUCE_MIN: *pre = "ties += x == y;"; *dx = "x == y ? g / ties : 0.0"; break;
    case KN_OP_REDUCE_PROD: *pre = "if (x == 0.0) zeros++; else nz *= x;";
        *dx = "zeros == 0 ? g * nz / x : zeros == 1 && x == 0.0 ? g * nz : 0.0"; break;
    case KN_OP_REDUCE_L1: *dx = "x > 0.0 ? g : x < 0.0 ? -g : 0.0"; break;
    case KN_OP_REDUCE_L2: *dx = "y > 0.0 ? g * x / y : 0.0"; break;
    case KN_OP_REDUCE_SUM_SQUARE: *dx = "2.0 * g * x"; break;
    case KN_OP_REDUCE_LOG_SUM: *dx = "g * exp(-y)"; break;
    case KN_OP_REDUCE_LOG_SUM_EXP: *dx = "g * exp(x - y)"; break;
    default: *dx = "g"; break; /* reduce_sum */
    }
}

static kn_status grad_emit(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    bool red[KN_MAX_RANK];
    if (reduced_mask(g, n, n->in[1], red, e->diag) != KN_OK) return KN_ERR;
    nest L;
    nest_init(&L, &kn_graph_value(g, n->in[1])->shape, red);
    const char *pre, *dx;
    int fn = (int)kn_node_attr_i(n, "fn", KN_OP_REDUCE_SUM);
    grad_rule(fn, &pre, &dx);
    char iy[512], ix[512], cnt[64], body[1200];
    nest_index(&L, true, iy, sizeof iy);
    nest_index(&L, false, ix, sizeof ix);
    nest_count(e, &L, cnt, sizeof cnt);
    kn_emit_bind_in(e, "dY", n->in[0]);
    kn_emit_bind_in(e, "X", n->in[1]);
    kn_emit_bind_in(e, "Yf", n->in[2]);
    kn_emit_bind_out(e, "dX", n->out[0]);
    kn_emit_line(e, "const double R = %s;", cnt);
    kn_emit_line(e, "(void)R;");
    int c = open_kept(e, &L);
    kn_emit_line(e, "{");
    e->indent++;
    kn_emit_line(e, "const double g = dY[%s], y = Yf[%s];", iy, iy);
    kn_emit_line(e, "double ties = 0.0, nz = 1.0; int zeros = 0;");
    kn_emit_line(e, "(void)y, (void)ties, (void)nz, (void)zeros;");
    if (pre) emit_reduced_loop(e, &L, pre);
    snprintf(body, sizeof body, "dX[%s] = (float)(%s);", ix, dx);
    emit_reduced_loop(e, &L, body);
    e->indent--;
    kn_emit_line(e, "}");
    close_kept(e, c);
    return KN_OK;
}

static kn_status reduce_grad(kn_graph *g, const kn_node *n, const int *dy, const bool *need, int *dx, kn_diag *d)
{
    dx[0] = -1;
    if (dy[0] < 0 || !need[0]) return KN_OK;
    int in[3] = {dy[0], n->in[0], n->out[0]};
    kn_node *gn = kn_ops_grad_node(g, n, KN_OP_REDUCE_AXES_GRAD, "x", in, 3, 1);
    kn_node_set_attr_i(gn, "fn", n->op);
    const kn_attr *a = kn_node_attr(n, "dim");
    if (a && a->kind == KN_ATTR_INTS) kn_node_set_attr_ints(gn, "dim", a->ints, a->n);
    else if (a && a->kind == KN_ATTR_INT) kn_node_set_attr_ints(gn, "dim", &a->i, 1);
    return (dx[0] = kn_ops_grad_done(g, gn, d)) < 0 ? KN_ERR : KN_OK;
}

static const kn_arg_spec reduce_args[] = {
    {"dim", KN_ATTR_INTS, false, 0, 0, NULL},
    {"keepdim", KN_ATTR_BOOL, false, 1, 0, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

/* CUDA: one thread per output (per kept line for the gradient), each
 * walking its reduced dims like the C loop nest: the CPU's sums. */
static kn_status reduce_emit_cuda_kernel(kn_emit *e, const kn_graph *g, const kn_node *n, int x, kn_emit_fn emit)
{
    bool red[KN_MAX_RANK];
    if (reduced_mask(g, n, x, red, e->diag) != KN_OK) return KN_ERR;
    nest L;
    nest_init(&L, &kn_graph_value(g, x)->shape, red);
    char cnt[64];
    kept_count(&L, cnt, sizeof cnt);
    kn_emit_cuda_kernel(e, cnt);
    kn_status st = emit(e, g, n);
    kn_emit_cuda_end(e);
    return st;
}
static kn_status reduce_emit_cuda(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    return reduce_emit_cuda_kernel(e, g, n, n->in[0], reduce_emit);
}
static kn_status grad_emit_cuda(kn_emit *e, const kn_graph *g, const kn_node *n)
{
    return reduce_emit_cuda_kernel(e, g, n, n->in[1], grad_emit);
}

#define REDUCE_DEF(id)                                                                                               \
    const kn_op_def kn_op_def_##id = {                                                                               \
        .name = #id, .min_inputs = 1, .max_inputs = 1, .args = reduce_args,                                          \
        .infer = reduce_infer, .emit_c = reduce_emit, .emit_cuda = reduce_emit_cuda, .grad = reduce_grad,            \
    }

REDUCE_DEF(reduce_sum);
REDUCE_DEF(reduce_mean);
REDUCE_DEF(reduce_max);
REDUCE_DEF(reduce_min);
REDUCE_DEF(reduce_prod);
REDUCE_DEF(reduce_l1);
REDUCE_DEF(reduce_l2);
REDUCE_DEF(reduce_sum_square);
REDUCE_DEF(reduce_log_sum);
REDUCE_DEF(reduce_log_sum_exp);

const kn_op_def kn_op_def_reduce_axes_grad = {
    .name = "reduce_axes_grad", .min_inputs = 3, .max_inputs = 3,
    .infer = grad_infer, .emit_c = grad_emit, .emit_cuda = grad_emit_cuda, .internal = true,
};

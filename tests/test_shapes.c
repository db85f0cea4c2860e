/* test_shapes.c — each op's shape rule, through the IR API directly.
 *
 * Graphs are built with kn_graph_add_value / kn_graph_add_node and the op's
 * own add_params and infer, with no frontend involved, so a failure here is
 * the op file's.  Error texts are checked in full where they are the user's
 * only guide (broadcast mismatches, overflow, bad reshapes).
 */
#include "testlib.h"
#include "ir/ir.h"
#include "ir/ops/op.h"

#include <stdio.h>
#include <string.h>

static kn_graph *g;
static kn_diag diag;

static void reset(void)
{
    if (g) kn_graph_free(g);
    g = kn_graph_new("t");
    kn_diag_clear(&diag);
}

/* Adds an input "name" of the given dtype and dims (-1 = N). */
static int input(const char *name, kn_dtype dt, int rank, const int64_t *d)
{
    kn_shape s = kn_shape_make(rank, d);
    return kn_graph_add_value(g, name, KN_VAL_INPUT, dt, &s);
}
#define IN_F32(name, ...) \
    input(name, KN_F32, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define IN_I64(name, ...) \
    input(name, KN_I64, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})


static kn_status run_rules(kn_node *n)
{
    const kn_op_def *def = kn_op_get(n->op);
    if (def->add_params && def->add_params(g, n, &diag) != KN_OK) return KN_ERR;
    return def->infer(g, n, &diag);
}

/* Runs the node's rules and checks its output type, e.g. "f32[N,3,4]". */
static kn_node *expect_ok(kn_node *n, const char *want)
{
    kn_status st = run_rules(n);
    if (st != KN_OK) printf("\nunexpected error: %s\n", diag.text);
    CU_ASSERT_EQUAL_FATAL(st, KN_OK);
    const kn_value *y = kn_graph_value(g, n->out[0]);
    char got[128];
    kn_shape_format(y->dtype, &y->shape, got, sizeof got);
    if (strcmp(got, want)) printf("\n%s: got %s, expected %s\n", n->name, got, want);
    CU_ASSERT_STRING_EQUAL(got, want);
    CU_ASSERT_TRUE(y->shape_known);
    return n;
}

static void expect_err(kn_node *n, const char *text)
{
    kn_status st = run_rules(n);
    CU_ASSERT_EQUAL(st, KN_ERR);
    CU_ASSERT_TRUE(diag.set);
    KT_ASSERT_CONTAINS(diag.text, text);
    kn_diag_clear(&diag);
}

static kn_node *node1(int op, const char *name, int a)
{
    return kn_graph_add_node(g, op, name, &a, 1, 1);
}
static kn_node *node2(int op, const char *name, int a, int b)
{
    int in[2] = {a, b};
    return kn_graph_add_node(g, op, name, in, 2, 1);
}

static void check_param(const char *name, kn_val_kind kind, kn_init_kind init, const char *type)
{
    int id = kn_graph_find_value(g, name);
    if (id < 0) printf("\nno value '%s'\n", name);
    CU_ASSERT_FATAL(id >= 0);
    const kn_value *v = kn_graph_value(g, id);
    char s[128];
    kn_shape_format(v->dtype, &v->shape, s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, type);
    CU_ASSERT_EQUAL(v->kind, kind);
    CU_ASSERT_EQUAL(v->init, init);
}

/* ---- tests ---- */

static void test_broadcast(void)
{
    reset();
    int a = IN_F32("a", -1, 3, 4), b = IN_F32("b", 4), c = IN_F32("c", -1, 3, 1),
        e = IN_F32("e", -1, 1, 4), s = IN_F32("s", 5, 3), one = IN_F32("one", 1, 3, 4);
    expect_ok(node2(KN_OP_ADD, "y0", a, b), "f32[N,3,4]");
    expect_ok(node2(KN_OP_MUL, "y1", c, e), "f32[N,3,4]");
    expect_ok(node2(KN_OP_SUB, "y2", b, a), "f32[N,3,4]");
    expect_ok(node2(KN_OP_DIV, "y3", a, one), "f32[N,3,4]");
    expect_err(node2(KN_OP_ADD, "bad", c, s),
               "add 'bad': cannot broadcast f32[N,3,1] with f32[5,3] (dimension 1: 3 vs 5)");
    int x = IN_F32("x", -1, 3);
    expect_err(node2(KN_OP_MUL, "bad2", x, s),
               "mul 'bad2': cannot broadcast f32[N,3] with f32[5,3] (dimension 0: N vs 5)");
    int t = IN_I64("t", -1);
    expect_err(node2(KN_OP_ADD, "bad3", x, t),
               "add 'bad3': expects a f32 second operand, got 't' of type i64[N]");
}

static void test_linear(void)
{
    reset();
    int x = IN_F32("x", -1, 784);
    kn_node *n = node1(KN_OP_LINEAR, "fc0", x);
    kn_node_set_attr_i(n, "out", 512);
    kn_node_set_attr_b(n, "bias", true);
    expect_ok(n, "f32[N,512]");
    CU_ASSERT_EQUAL(n->n_in, 3);
    check_param("fc0.weight", KN_VAL_PARAM, KN_INIT_KAIMING_UNIFORM, "f32[512,784]");
    check_param("fc0.bias", KN_VAL_PARAM, KN_INIT_BIAS_UNIFORM, "f32[512]");
    CU_ASSERT_EQUAL(kn_graph_value(g, n->in[1])->fan_in, 784);
    CU_ASSERT_TRUE(kn_graph_value(g, n->in[1])->trainable);
    CU_ASSERT_EQUAL(kn_op_get(KN_OP_LINEAR)->macs(g, n), 784 * 512);
    /* infer again (the shape pass re-runs it) keeps the same parameters */
    CU_ASSERT_EQUAL(kn_op_get(KN_OP_LINEAR)->add_params(g, n, &diag), KN_OK);
    CU_ASSERT_EQUAL(n->n_in, 3);

    kn_node *nb = node1(KN_OP_LINEAR, "nb", x);
    kn_node_set_attr_i(nb, "out", 10);
    kn_node_set_attr_b(nb, "bias", false);
    expect_ok(nb, "f32[N,10]");
    CU_ASSERT_EQUAL(nb->n_in, 2);
    CU_ASSERT_EQUAL(kn_graph_find_value(g, "nb.bias"), -1);

    /* Unlike PyTorch, linear takes rank-2 input only: flatten images first. */
    int x3 = IN_F32("x3", -1, 3, 8);
    kn_node *n3 = node1(KN_OP_LINEAR, "fc3", x3);
    kn_node_set_attr_i(n3, "out", 4);
    expect_err(n3, "linear 'fc3': expects f32[N, K] input, got f32[N,3,8]");

    int img = IN_F32("img", -1, 1, 28, 28);
    kn_node *ni = node1(KN_OP_LINEAR, "fc0", img);
    kn_node_set_attr_i(ni, "out", 4);
    expect_err(ni, "linear 'fc0': expects f32[N, K] input, got f32[N,1,28,28]");

    int v = IN_F32("v", 8);
    kn_node *n1 = node1(KN_OP_LINEAR, "fc1", v);
    kn_node_set_attr_i(n1, "out", 4);
    expect_err(n1, "linear 'fc1': expects f32[N, K] input, got f32[8]");

    int t = IN_I64("t", -1, 8);
    kn_node *ni64 = node1(KN_OP_LINEAR, "fc2", t);
    kn_node_set_attr_i(ni64, "out", 4);
    expect_err(ni64, "linear 'fc2': expects a f32 input, got 't' of type i64[N,8]");

    kn_node *n0 = node1(KN_OP_LINEAR, "fcz", x);
    kn_node_set_attr_i(n0, "out", 0);
    expect_err(n0, "linear 'fcz': output size must be at least 1, got 0");
}

static void test_linear_overflow(void)
{
    reset();
    int x = IN_F32("x", -1, 784);
    int before = g->n_values;
    kn_node *n = node1(KN_OP_LINEAR, "big", x);
    kn_node_set_attr_i(n, "out", 4000000000LL);
    int after_node = g->n_values;
    expect_err(n, "linear 'big': weight [4000000000, 784] is too large (output size 4000000000");
    CU_ASSERT_EQUAL(g->n_values, after_node); /* no parameter was created */
    CU_ASSERT_EQUAL(after_node, before + 1);
    CU_ASSERT_EQUAL(n->n_in, 1);
}

static void test_matmul(void)
{
    reset();
    int a = IN_F32("a", -1, 3, 6), b = IN_F32("b", 6, 5), bb = IN_F32("bb", -1, 6, 5),
        m2 = IN_F32("m2", -1, 6), bad = IN_F32("bad", 7, 5);
    expect_ok(node2(KN_OP_MATMUL, "y0", a, b), "f32[N,3,5]");
    expect_ok(node2(KN_OP_MATMUL, "y1", a, bb), "f32[N,3,5]");
    kn_node *n = expect_ok(node2(KN_OP_MATMUL, "y2", m2, b), "f32[N,5]");
    CU_ASSERT_EQUAL(kn_op_get(KN_OP_MATMUL)->macs(g, n), 6 * 5);
    expect_err(node2(KN_OP_MATMUL, "y3", a, bad),
               "matmul 'y3': inner dims differ: f32[N,3,6] @ f32[7,5] (6 != 7)");
}

static void test_activations_softmax(void)
{
    reset();
    int x = IN_F32("x", -1, 3, 4), t = IN_I64("t", -1);
    expect_ok(node1(KN_OP_RELU, "r", x), "f32[N,3,4]");
    expect_ok(node1(KN_OP_GELU, "gl", x), "f32[N,3,4]");
    expect_ok(node1(KN_OP_DROPOUT, "dr", x), "f32[N,3,4]");
    expect_err(node1(KN_OP_SIGMOID, "s", t), "sigmoid 's': expects a f32 input, got 't' of type i64[N]");
    kn_node *sm = node1(KN_OP_SOFTMAX, "sm", x);
    kn_node_set_attr_i(sm, "dim", 1);
    expect_ok(sm, "f32[N,3,4]");
    kn_node *bad = node1(KN_OP_LOG_SOFTMAX, "ls", x);
    kn_node_set_attr_i(bad, "dim", 3);
    expect_err(bad, "log_softmax 'ls': dim 3 is out of range for 'x' of type f32[N,3,4] (rank 3)");
    kn_node *dp = node1(KN_OP_DROPOUT, "dp", x);
    kn_node_set_attr_f(dp, "p", 1.5);
    expect_err(dp, "dropout 'dp': p must be in [0, 1], got 1.5");
}

static void test_batchnorm(void)
{
    reset();
    int x = IN_F32("x", -1, 3, 4, 5), v = IN_F32("v", -1);
    kn_node *n = node1(KN_OP_BATCHNORM, "bn", x);
    expect_ok(n, "f32[N,3,4,5]");
    CU_ASSERT_EQUAL(n->n_in, 5);
    check_param("bn.weight", KN_VAL_PARAM, KN_INIT_ONES, "f32[3]");
    check_param("bn.bias", KN_VAL_PARAM, KN_INIT_ZEROS, "f32[3]");
    check_param("bn.running_mean", KN_VAL_BUFFER, KN_INIT_ZEROS, "f32[3]");
    check_param("bn.running_var", KN_VAL_BUFFER, KN_INIT_ONES, "f32[3]");
    expect_err(node1(KN_OP_BATCHNORM, "bn1", v),
               "batchnorm 'bn1': expects f32[N, C] or f32[N, C, ...] input, got f32[N]");
}

static void test_flatten_reshape(void)
{
    reset();
    int img = IN_F32("img", -1, 1, 28, 28), flat = IN_F32("flat", -1, 784);
    expect_ok(node1(KN_OP_FLATTEN, "f0", img), "f32[N,784]");
    kn_node *f2 = node1(KN_OP_FLATTEN, "f2", img);
    kn_node_set_attr_i(f2, "start_dim", 2);
    expect_ok(f2, "f32[N,1,784]");
    kn_node *f0 = node1(KN_OP_FLATTEN, "fz", img);
    kn_node_set_attr_i(f0, "start_dim", 0);
    expect_err(f0, "flatten 'fz': cannot merge the batch dim N into other dims of f32[N,1,28,28]");

    kn_node *r = node1(KN_OP_RESHAPE, "r0", flat);
    kn_node_set_attr_ints(r, "shape", (int64_t[]){1, 28, 28}, 3);
    expect_ok(r, "f32[N,1,28,28]");
    kn_node *r1 = node1(KN_OP_RESHAPE, "r1", flat);
    kn_node_set_attr_ints(r1, "shape", (int64_t[]){-1, 7}, 2);
    expect_ok(r1, "f32[N,112,7]");
    kn_node *r2 = node1(KN_OP_RESHAPE, "r2", img);
    kn_node_set_attr_ints(r2, "shape", (int64_t[]){-1}, 1);
    expect_ok(r2, "f32[N,784]");
    kn_node *r3 = node1(KN_OP_RESHAPE, "r3", flat);
    kn_node_set_attr_ints(r3, "shape", (int64_t[]){5, -1}, 2);
    expect_err(r3, "reshape 'r3': cannot reshape f32[N,784] (784 elements per sample) so that -1 "
                   "is a whole number: the other dims multiply to 5");
    kn_node *r4 = node1(KN_OP_RESHAPE, "r4", flat);
    kn_node_set_attr_ints(r4, "shape", (int64_t[]){3, 3}, 2);
    expect_err(r4, "reshape 'r4': cannot reshape f32[N,784] to f32[N,3,3]: 784 elements per sample vs 9");
    kn_node *r5 = node1(KN_OP_RESHAPE, "r5", flat);
    kn_node_set_attr_ints(r5, "shape", (int64_t[]){-1, -1}, 2);
    expect_err(r5, "reshape 'r5': shape entry 1 is -1");
}

static void test_reductions(void)
{
    reset();
    int x = IN_F32("x", -1, 3, 4);
    expect_ok(node1(KN_OP_SUM, "all", x), "f32[]");
    kn_node *k = node1(KN_OP_SUM, "k", x);
    kn_node_set_attr_i(k, "dim", 1);
    kn_node_set_attr_b(k, "keepdim", true);
    expect_ok(k, "f32[N,1,4]");
    kn_node *m = node1(KN_OP_MEAN, "m", x);
    kn_node_set_attr_ints(m, "dim", (int64_t[]){0}, 1);
    expect_ok(m, "f32[3,4]");
    kn_node *m2 = node1(KN_OP_MEAN, "m2", x);
    kn_node_set_attr_ints(m2, "dim", (int64_t[]){-1, 1}, 2);
    expect_ok(m2, "f32[N]");
    kn_node *a = node1(KN_OP_ARGMAX, "a", x);
    kn_node_set_attr_i(a, "dim", -1);
    expect_ok(a, "i64[N,3]");
    kn_node *ak = node1(KN_OP_ARGMAX, "ak", x);
    kn_node_set_attr_i(ak, "dim", 1);
    kn_node_set_attr_b(ak, "keepdim", true);
    expect_ok(ak, "i64[N,1,4]");
    kn_node *bad = node1(KN_OP_SUM, "bad", x);
    kn_node_set_attr_i(bad, "dim", -4);
    expect_err(bad, "sum 'bad': dim -4 is out of range for 'x' of type f32[N,3,4] (rank 3)");
    kn_node *gap = node1(KN_OP_SUM, "gap", x);
    kn_node_set_attr_ints(gap, "dim", (int64_t[]){0, 2}, 2);
    expect_err(gap, "sum 'gap': reducing over non-adjacent dims is not supported");
}

static void test_losses(void)
{
    reset();
    int logits = IN_F32("logits", -1, 10), y = IN_I64("y", -1), yf = IN_F32("yf", -1),
        y2 = IN_I64("y2", -1, 2), img = IN_F32("img", -1, 3, 10), p = IN_F32("p", -1, 10);
    expect_ok(node2(KN_OP_CROSS_ENTROPY, "loss", logits, y), "f32[]");
    kn_node *ls = node2(KN_OP_CROSS_ENTROPY, "ls", logits, y);
    kn_node_set_attr_f(ls, "label_smoothing", 0.1);
    expect_ok(ls, "f32[]");
    expect_err(node2(KN_OP_CROSS_ENTROPY, "l1", logits, yf),
               "cross_entropy 'l1': expects class indices i64[N] as target, got 'yf' of type f32[N]");
    expect_err(node2(KN_OP_CROSS_ENTROPY, "l2", logits, y2),
               "cross_entropy 'l2': target 'y2' of type i64[N,2] does not match logits f32[N,10]");
    expect_err(node2(KN_OP_CROSS_ENTROPY, "l3", img, y),
               "cross_entropy 'l3': expects logits f32[N, C], got f32[N,3,10]");
    expect_err(node2(KN_OP_CROSS_ENTROPY, "l4", y, y),
               "cross_entropy 'l4': expects a f32 logits input, got 'y' of type i64[N]");
    expect_ok(node2(KN_OP_MSE, "mse", logits, p), "f32[]");
    expect_err(node2(KN_OP_MSE, "mse2", logits, img),
               "mse 'mse2': expects two tensors of the same shape, got f32[N,10] and f32[N,3,10]");
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"broadcasting and mismatches", test_broadcast},
        {"linear parameters, shapes and errors", test_linear},
        {"linear(x, 4000000000) fails before allocating", test_linear_overflow},
        {"matmul", test_matmul},
        {"activations, dropout, softmax dims", test_activations_softmax},
        {"batchnorm parameters and buffers", test_batchnorm},
        {"flatten and reshape", test_flatten_reshape},
        {"sum, mean, argmax with dim and keepdim", test_reductions},
        {"cross_entropy and mse", test_losses},
        CU_TEST_INFO_NULL,
    };
    int rc = kt_main("shapes", tests);
    if (g) kn_graph_free(g);
    return rc;
}

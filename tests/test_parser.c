/* test_parser.c — the .kiln frontend in-process: good models build the
 * expected IR; every class of bad input gives one located diagnostic with
 * the exact first line and a hint; random input never crashes. */
#define _GNU_SOURCE
#include "testlib.h"

#include "frontend/frontend.h"
#include "ir/ops/op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char FMNIST[] =
    "# fmnist\n"
    "model fmnist_mlp\n"
    "data  fashion_mnist(normalize=(0.2860, 0.3530))   # data kind + kwargs\n"
    "input x: f32[N, 784]\n"
    "label y: i64[N]\n"
    "fc0 = linear(x, 512)\n"
    "bn0 = batchnorm(fc0)\n"
    "h0  = dropout(relu(bn0), p=0.3)\n"
    "fc1 = linear(h0, 256)\n"
    "bn1 = batchnorm(fc1)\n"
    "h1  = dropout(relu(bn1), p=0.3)\n"
    "fc2 = linear(h1, 128)\n"
    "bn2 = batchnorm(fc2)\n"
    "h2  = dropout(relu(bn2), p=0.3)\n"
    "fc3 = linear(h2, 64)\n"
    "bn3 = batchnorm(fc3)\n"
    "h3  = dropout(relu(bn3), p=0.3)\n"
    "fc4 = linear(h3, 10)\n"
    "loss = cross_entropy(fc4, y)\n"
    "output fc4\n"
    "train { optimizer adam(lr=1e-3)  batch 64  epochs 10  shuffle  seed 0 }\n";

static kn_graph *parse_ok(const char *src)
{
    kn_graph *g = NULL;
    kn_diag d;
    kn_diag_clear(&d);
    kn_status st = kn_parse_model_string(src, strlen(src), "t.kiln", &g, &d);
    if (st != KN_OK) fprintf(stderr, "\nunexpected error:\n%s\n", d.text);
    CU_ASSERT_EQUAL_FATAL(st, KN_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    kn_diag vd;
    kn_diag_clear(&vd);
    kn_status vs = kn_graph_verify(g, true, &vd);
    if (vs != KN_OK) fprintf(stderr, "\nverify: %s\n", vd.text);
    CU_ASSERT_EQUAL(vs, KN_OK);
    return g;
}

static void check_shape(const kn_graph *g, const char *name, kn_val_kind kind, int rank, int64_t d0, int64_t d1)
{
    int id = kn_graph_find_value(g, name);
    if (id < 0) fprintf(stderr, "\nno value '%s'\n", name);
    CU_ASSERT_FATAL(id >= 0);
    const kn_value *v = kn_graph_value(g, id);
    CU_ASSERT_EQUAL(v->kind, kind);
    CU_ASSERT_TRUE(v->shape_known);
    CU_ASSERT_EQUAL(v->shape.rank, rank);
    CU_ASSERT_EQUAL(v->shape.d[0], d0);
    if (rank > 1) CU_ASSERT_EQUAL(v->shape.d[1], d1);
}

static const kn_node *node_named(const kn_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i]->name, name) == 0) return g->nodes[i];
    return NULL;
}

static void test_fmnist(void)
{
    kn_graph *g = parse_ok(FMNIST);
    CU_ASSERT_STRING_EQUAL(g->name, "fmnist_mlp");
    CU_ASSERT_EQUAL(g->n_nodes, 18);
    check_shape(g, "x", KN_VAL_INPUT, 2, KN_DIM_N, 784);
    check_shape(g, "y", KN_VAL_LABEL, 1, KN_DIM_N, 0);
    check_shape(g, "fc0.weight", KN_VAL_PARAM, 2, 512, 784);
    check_shape(g, "fc0.bias", KN_VAL_PARAM, 1, 512, 0);
    check_shape(g, "bn0.running_var", KN_VAL_BUFFER, 1, 512, 0);
    check_shape(g, "fc4", KN_VAL_NODE, 2, KN_DIM_N, 10);
    check_shape(g, "h0.relu", KN_VAL_NODE, 2, KN_DIM_N, 512);
    int64_t tr, fr, buf;
    kn_graph_param_counts(g, &tr, &fr, &buf);
    CU_ASSERT_EQUAL(tr, 576970);
    CU_ASSERT_EQUAL(buf, 1920);
    CU_ASSERT_EQUAL(g->n_outputs, 1);
    CU_ASSERT_EQUAL(g->outputs[0], kn_graph_find_value(g, "fc4"));
    CU_ASSERT_EQUAL(g->loss, kn_graph_find_value(g, "loss"));
    CU_ASSERT_STRING_EQUAL(g->meta.data_kind, "fashion_mnist");
    CU_ASSERT_EQUAL(g->meta.n_normalize, 2);
    CU_ASSERT_DOUBLE_EQUAL(g->meta.normalize[0], 0.2860, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(g->meta.normalize[1], 0.3530, 1e-12);
    CU_ASSERT_STRING_EQUAL(g->meta.optimizer, "adam");
    CU_ASSERT_EQUAL_FATAL(g->meta.n_opt_attr, 1);
    CU_ASSERT_STRING_EQUAL(g->meta.opt_attrs[0].name, "lr");
    CU_ASSERT_EQUAL(g->meta.opt_attrs[0].kind, KN_ATTR_FLOAT);
    CU_ASSERT_DOUBLE_EQUAL(g->meta.opt_attrs[0].f, 0.001, 1e-15);
    CU_ASSERT_EQUAL(g->meta.batch, 64);
    CU_ASSERT_EQUAL(g->meta.epochs, 10);
    CU_ASSERT_TRUE(g->meta.shuffle);
    CU_ASSERT_EQUAL(g->meta.seed, 0);
    /* locations and attributes */
    const kn_node *h0 = node_named(g, "h0"), *relu = node_named(g, "h0.relu"), *fc0 = node_named(g, "fc0");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(relu);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fc0);
    CU_ASSERT_STRING_EQUAL(h0->loc.file, "t.kiln");
    CU_ASSERT_EQUAL(h0->loc.line, 8);
    CU_ASSERT_EQUAL(h0->loc.col, 7);
    CU_ASSERT_EQUAL(relu->loc.col, 15);
    CU_ASSERT_DOUBLE_EQUAL(kn_node_attr_f(h0, "p", 0), 0.3, 1e-12);
    CU_ASSERT_EQUAL(kn_node_attr_i(fc0, "out", 0), 512);
    CU_ASSERT_PTR_NOT_NULL(kn_node_attr(fc0, "bias")); /* default filled */
    CU_ASSERT_EQUAL(kn_node_attr_i(fc0, "bias", 0), 1);
    kn_graph_free(g);
}

static void test_model_files(void)
{
    /* (the ONNX-splicing models need the data folder: test_onnx_splice) */
    const char *names[] = {"fmnist_mlp.kiln", "mnist_mlp.kiln", "mnist_cnn.kiln"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/models/%s", kt_src_dir(), names[i]);
        if (access(path, R_OK) != 0) continue;
        kn_graph *g = NULL;
        kn_diag d;
        kn_diag_clear(&d);
        kn_status st = kn_parse_model_file(path, &g, &d);
        if (st) fprintf(stderr, "\n%s\n", d.text);
        CU_ASSERT_EQUAL(st, KN_OK);
        kn_graph_free(g);
    }
}

static void test_nested_names_kwargs(void)
{
    kn_graph *g = parse_ok("model m\n"
                           "input x: f32[N, 8]\n"
                           "a = relu(relu(relu(x)))\n"
                           "b = dropout(relu(a), p = 0.5)\n"
                           "logits = linear(b, 3, bias=false, name=\"head\")\n"
                           "output logits, a\n");
    CU_ASSERT_PTR_NOT_NULL(node_named(g, "a.relu"));
    CU_ASSERT_PTR_NOT_NULL(node_named(g, "a.relu_1"));
    CU_ASSERT_PTR_NOT_NULL(node_named(g, "a"));
    CU_ASSERT_PTR_NOT_NULL(node_named(g, "b.relu"));
    const kn_node *head = node_named(g, "head");
    CU_ASSERT_PTR_NOT_NULL_FATAL(head);
    CU_ASSERT_EQUAL(kn_node_attr_i(head, "bias", 1), 0);
    CU_ASSERT_TRUE(kn_graph_find_value(g, "head.weight") >= 0);
    CU_ASSERT_EQUAL(kn_graph_find_value(g, "head.bias"), -1);
    CU_ASSERT_EQUAL(kn_graph_find_value(g, "logits"), -1);
    CU_ASSERT_EQUAL(g->n_outputs, 2);
    CU_ASSERT_EQUAL(g->outputs[0], head->out[0]);
    CU_ASSERT_EQUAL(g->outputs[1], kn_graph_find_value(g, "a"));
    CU_ASSERT_EQUAL(g->loss, -1);
    CU_ASSERT_DOUBLE_EQUAL(kn_node_attr_f(node_named(g, "b"), "p", 0), 0.5, 1e-12);
    kn_graph_free(g);
}

static void test_layout(void)
{
    /* comments, blank lines, CRLF, calls and train blocks across lines,
     * keywords usable as value names */
    kn_graph *g = parse_ok("# header\r\n"
                           "\r\n"
                           "model   m   # trailing\r\n"
                           "data mnist\n"
                           "input x: f32[N,1,4,4]\n"
                           "label y: i64[N]\n"
                           "flat = flatten(x)\n"
                           "data_ = linear(\n"
                           "    flat,   # the input\n"
                           "    10,\n"
                           ")\n"
                           "loss = cross_entropy(data_, y)\n"
                           "output data_\n"
                           "train {\n"
                           "  optimizer sgd(lr=.5, momentum=0.9, nesterov=true, betas=(0.9, 0.999))\n"
                           "  batch 32\n"
                           "  epochs 3  seed -7\n"
                           "}\n");
    CU_ASSERT_STRING_EQUAL(g->meta.data_kind, "mnist");
    CU_ASSERT_EQUAL(g->meta.n_normalize, 0);
    CU_ASSERT_EQUAL(g->meta.batch, 32);
    CU_ASSERT_EQUAL(g->meta.epochs, 3);
    CU_ASSERT_EQUAL(g->meta.seed, -7);
    CU_ASSERT_FALSE(g->meta.shuffle);
    CU_ASSERT_STRING_EQUAL(g->meta.optimizer, "sgd");
    CU_ASSERT_EQUAL_FATAL(g->meta.n_opt_attr, 4);
    CU_ASSERT_DOUBLE_EQUAL(g->meta.opt_attrs[0].f, 0.5, 0);
    CU_ASSERT_EQUAL(g->meta.opt_attrs[2].kind, KN_ATTR_BOOL);
    CU_ASSERT_EQUAL(g->meta.opt_attrs[3].kind, KN_ATTR_FLOATS);
    CU_ASSERT_EQUAL(g->meta.opt_attrs[3].n, 2);
    check_shape(g, "data_.weight", KN_VAL_PARAM, 2, 10, 16);
    const kn_node *n = node_named(g, "data_");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_EQUAL(n->loc.line, 8);
    CU_ASSERT_EQUAL(n->loc.col, 9);
    kn_graph_free(g);

    /* `data` itself can name a value: keywords are contextual */
    g = parse_ok("model m\ninput x: f32[N, 2]\ndata = relu(x)\noutput data\n");
    kn_graph_free(g);
}

/* ---- diagnostics ---- */

static void expect_err_opts(const char *src, size_t len, const kn_frontend_opts *o, const char *first_line,
                            const char *hint)
{
    kn_graph *g = (kn_graph *)1;
    kn_diag d;
    kn_diag_clear(&d);
    kn_status st = kn_parse_model_string_opts(src, len, "t.kiln", o, &g, &d);
    CU_ASSERT_EQUAL(st, KN_ERR);
    CU_ASSERT_PTR_NULL(g);
    const char *nl = strchr(d.text, '\n');
    size_t n = nl ? (size_t)(nl - d.text) : strlen(d.text);
    if (n != strlen(first_line) || strncmp(d.text, first_line, n) != 0) {
        fprintf(stderr, "\nwant: %s\ngot:\n%s\n", first_line, d.text);
        CU_FAIL("first line of the diagnostic");
    }
    if (hint) KT_ASSERT_CONTAINS(d.text, hint);
    if (st == KN_OK) kn_graph_free(g);
}

static void expect_err_n(const char *src, size_t len, const char *first_line, const char *hint)
{
    expect_err_opts(src, len, NULL, first_line, hint);
}

static void expect_err(const char *src, const char *first_line, const char *hint)
{
    expect_err_n(src, strlen(src), first_line, hint);
}

#define HDR "model m\ninput x: f32[N, 4]\n"

static void test_diag_format(void)
{
    kn_diag d;
    kn_graph *g;
    const char *src = HDR "h0  = rellu(x)\noutput h0\n";
    CU_ASSERT_EQUAL(kn_parse_model_string(src, strlen(src), "t.kiln", &g, &d), KN_ERR);
    CU_ASSERT_STRING_EQUAL(d.text, "t.kiln:3:7: error: unknown op 'rellu'\n"
                                   "    h0  = rellu(x)\n"
                                   "          ^\n"
                                   "hint: did you mean 'relu'?");
}

static void test_diag_names(void)
{
    expect_err(HDR "h0  = rellu(x)\noutput h0\n", "t.kiln:3:7: error: unknown op 'rellu'",
               "hint: did you mean 'relu'?");
    expect_err(HDR "h = zzzzzzzzzz(x)\noutput h\n", "t.kiln:3:5: error: unknown op 'zzzzzzzzzz'",
               "hint: known ops: linear,");
    expect_err(HDR "h = relu(xx)\noutput h\n", "t.kiln:3:10: error: undefined value 'xx'",
               "hint: did you mean 'x'?");
    expect_err(HDR "h = relu(x)\nh = relu(x)\noutput h\n", "t.kiln:4:1: error: redefinition of 'h'",
               "first defined at line 3");
    expect_err(HDR "x = relu(x)\noutput x\n", "t.kiln:3:1: error: redefinition of 'x'", "line 2");
    expect_err(HDR "h = relu(x, name=\"x\")\noutput h\n", "t.kiln:3:18: error: name 'x' is already used",
               "pick another name");
    expect_err(HDR "h = relu(x)\noutput hh\n", "t.kiln:4:8: error: output names undefined value 'hh'",
               "hint: did you mean 'h'?");
    expect_err(HDR "h = x\noutput h\n",
               "t.kiln:3:5: error: 'h = x' is an alias; the right side of '=' must be an op call", "hint:");
    expect_err(HDR "h = 3\noutput h\n", "t.kiln:3:5: error: expected an op call after '=', got the integer 3",
               "hint:");
    expect_err(HDR "fc.0 = relu(x)\n", "t.kiln:3:3: error: unexpected character '.'",
               "names may contain only letters, digits and '_'");
    expect_err(HDR "h = relu(x)\noutput h, h\n", "t.kiln:4:11: error: 'h' is already an output", NULL);
}

/* Image data options reach the model metadata; bad ones name the problem. */
static void test_data_options(void)
{
    kn_graph *g = parse_ok("model m\n"
                           "data image_folder(path=\"clothing-small\", resize=256, crop=224,\n"
                           "    normalize=(0.485, 0.229, 0.456, 0.224, 0.406, 0.225), labels=\"c/names.txt\")\n"
                           "input x: f32[N, 3, 8, 8]\n"
                           "output x\n");
    CU_ASSERT_STRING_EQUAL(g->meta.data_kind, "image_folder");
    CU_ASSERT_STRING_EQUAL(g->meta.data_path, "clothing-small");
    CU_ASSERT_STRING_EQUAL(g->meta.labels, "c/names.txt");
    CU_ASSERT_EQUAL(g->meta.resize, 256);
    CU_ASSERT_EQUAL(g->meta.crop, 224);
    CU_ASSERT_EQUAL(g->meta.n_normalize, 6);
    CU_ASSERT_DOUBLE_EQUAL(g->meta.normalize[5], 0.225, 1e-12);
    kn_graph_free(g);
    expect_err("model m\ndata image_folder(path=\"../x\")\ninput x: f32[N, 4]\noutput x\n",
               "t.kiln:2:24: error: data option 'path' must stay inside the data root", "hint:");
    expect_err("model m\ndata image_folder(resize=0)\ninput x: f32[N, 4]\noutput x\n",
               "t.kiln:2:26: error: data option 'resize' expects an integer in 1..8192", NULL);
    expect_err("model m\ndata image_folder(resize=32, crop=64)\ninput x: f32[N, 4]\noutput x\n",
               "t.kiln:2:6: error: crop 64 is larger than resize 32", NULL);
    expect_err("model m\ndata image_folder(size=3)\ninput x: f32[N, 4]\noutput x\n",
               "t.kiln:2:19: error: unknown data option 'size'", "hint: valid data options:");
}

/* frozen=true on any op with parameters. */
static void test_frozen(void)
{
    kn_graph *g = parse_ok("model m\n"
                           "input x: f32[N, 8]\n"
                           "a = linear(x, 16, frozen=true)\n"
                           "b = batchnorm(a, frozen=true)\n"
                           "c = linear(b, 4, frozen=false)\n"
                           "output c\n");
    const char *frozen[] = {"a.weight", "a.bias", "b.weight", "b.bias"};
    for (int i = 0; i < 4; i++) CU_ASSERT_FALSE(kn_graph_value(g, kn_graph_find_value(g, frozen[i]))->trainable);
    CU_ASSERT_TRUE(kn_graph_value(g, kn_graph_find_value(g, "c.weight"))->trainable);
    CU_ASSERT_EQUAL(kn_graph_value(g, kn_graph_find_value(g, "b.running_mean"))->kind, KN_VAL_BUFFER);
    kn_graph_free(g);
}

static kn_graph *parse_ok_sets(const char *src, const char *const *sets, int n)
{
    kn_frontend_opts o = {.sets = sets, .n_sets = n};
    kn_graph *g = NULL;
    kn_diag d;
    kn_diag_clear(&d);
    kn_status st = kn_parse_model_string_opts(src, strlen(src), "t.kiln", &o, &g, &d);
    if (st != KN_OK) fprintf(stderr, "\nunexpected error:\n%s\n", d.text);
    CU_ASSERT_EQUAL_FATAL(st, KN_OK);
    return g;
}

/* param NAME = literal: used where literals go, overridden by --set. */
static void test_params(void)
{
    static const char SRC[] = "model m\n"
                              "param inner = 100\n"
                              "param drop = 0.5\n"
                              "param act_frozen = false\n"
                              "data fashion_mnist(normalize=(0.5, 0.25))\n"
                              "input x: f32[N, 8]\n"
                              "h = dropout(relu(linear(x, inner, frozen=act_frozen)), p=drop)\n"
                              "output h\n"
                              "train { optimizer adam(lr=drop) }\n";
    kn_graph *g = parse_ok_sets(SRC, NULL, 0);
    check_shape(g, "h", KN_VAL_NODE, 2, KN_DIM_N, 100);
    CU_ASSERT_DOUBLE_EQUAL(kn_node_attr_f(node_named(g, "h"), "p", -1), 0.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(g->meta.opt_attrs[0].f, 0.5, 1e-12);
    CU_ASSERT_TRUE(kn_graph_value(g, kn_graph_find_value(g, "h.linear.weight"))->trainable);
    kn_graph_free(g);
    const char *sets[] = {"inner=7", "drop=0", "act_frozen=true"};
    g = parse_ok_sets(SRC, sets, 3);
    check_shape(g, "h", KN_VAL_NODE, 2, KN_DIM_N, 7);
    CU_ASSERT_DOUBLE_EQUAL(kn_node_attr_f(node_named(g, "h"), "p", -1), 0.0, 1e-12);
    CU_ASSERT_FALSE(kn_graph_value(g, kn_graph_find_value(g, "h.linear.weight"))->trainable);
    kn_graph_free(g);

    const char *bad_kind[] = {"inner=0.5"};
    kn_frontend_opts o = {.sets = bad_kind, .n_sets = 1};
    expect_err_opts(SRC, strlen(SRC), &o, "t.kiln:2:7: error: --set inner=0.5: parameter 'inner' takes an integer",
                    "hint: the default here is an integer");
    const char *unknown[] = {"iner=5"};
    o.sets = unknown;
    expect_err_opts(SRC, strlen(SRC), &o, "t.kiln: error: --set iner=5: the model has no parameter 'iner'",
                    "hint: did you mean 'inner'? its parameters: inner, drop, act_frozen");
    const char *twice[] = {"inner=5", "inner=6"};
    o.sets = twice;
    o.n_sets = 2;
    expect_err_opts(SRC, strlen(SRC), &o, "t.kiln: error: --set inner given twice", NULL);
    expect_err(HDR "param inner 100\n", "t.kiln:3:13: error: expected '=' after the parameter's name, got '100'",
               "hint: write: param inner = 100");
    expect_err(HDR "param inner = x\n",
               "t.kiln:3:15: error: expected a number, true/false or a \"string\" as the parameter's default, got 'x'",
               "parameters hold literals");
    expect_err(HDR "param x = 1\n", "t.kiln:3:7: error: redefinition of 'x'", "first defined at line 2");
    expect_err("model m\nparam k = 4\ninput k: f32[N, 4]\noutput k\n", "t.kiln:3:7: error: redefinition of 'k'",
               NULL);
    expect_err(HDR "param k = 4\nh = relu(k)\noutput h\n", "t.kiln:4:5: error: relu expects 1 tensor input, got 0",
               NULL);
    expect_err(HDR "h = linear(x, k)\nparam k = 4\noutput h\n", "t.kiln:3:15: error: undefined value 'k'", NULL);
    expect_err(HDR "parm k = 4\n", "t.kiln:3:1: error: expected a statement, got 'parm'",
               "hint: did you mean 'param'?");
}

/* onnx(...) in model files: located errors for every argument. */
static void test_onnx_splice_diags(void)
{
    char onnx[4096], src[8192];
    kt_pathf(onnx, sizeof onnx, "%s/tests/golden/onnx_splice/mlp.onnx", kt_src_dir());
#define SPLICE_HDR "model m\ninput x: f32[N, 784]\n"
    snprintf(src, sizeof src, SPLICE_HDR "f = onnx(\"%s\", input=x, until=\"feat\", frozen)\noutput f\n", onnx);
    kn_graph *g = parse_ok(src);
    check_shape(g, "f", KN_VAL_NODE, 2, KN_DIM_N, 32);
    CU_ASSERT_FALSE(kn_graph_value(g, kn_graph_find_value(g, "f.w1"))->trainable);
    CU_ASSERT_EQUAL(kn_graph_find_value(g, "f.w2"), -1); /* after the cut: never loaded */
    CU_ASSERT_EQUAL(node_named(g, "f.h")->loc.line, 3);
    kn_graph_free(g);
    snprintf(src, sizeof src, SPLICE_HDR "f = onnx(\"%s\", input=x, until=\"feat\", frozen=false)\noutput f\n", onnx);
    g = parse_ok(src);
    CU_ASSERT_TRUE(kn_graph_value(g, kn_graph_find_value(g, "f.w1"))->trainable);
    kn_graph_free(g);

    int c = 23 + (int)strlen(onnx); /* column of the keyword after input=x */
    char want[8192];
    snprintf(src, sizeof src, SPLICE_HDR "f = onnx(\"%s\", input=x, until=\"fet\")\noutput f\n", onnx);
    snprintf(want, sizeof want, "t.kiln:3:%d: error: onnx \"%s\": no tensor named 'fet' in the graph", c + 6, onnx);
    expect_err(src, want, "hint: did you mean 'feat'? the graph ends with: h (Gemm), feat (Relu), logits (Gemm)");
    snprintf(src, sizeof src, SPLICE_HDR "f = onnx(\"%s\", input=x, until=\"w1\")\noutput f\n", onnx);
    snprintf(want, sizeof want, "t.kiln:3:%d: error: onnx \"%s\": until='w1' is an initializer (a weight), "
             "not a computed tensor", c + 6, onnx);
    expect_err(src, want, NULL);
    snprintf(src, sizeof src, SPLICE_HDR "f = onnx(\"%s\", input=x)\noutput f\n", onnx);
    snprintf(want, sizeof want, "t.kiln:3:10: error: onnx \"%s\": 1 node uses ops kiln does not support at opset "
             "13: Mod at node 3 'mod'", onnx);
    expect_err(src, want, NULL);
    snprintf(src, sizeof src, "model m\ninput x: f32[N, 1, 28, 28]\nf = onnx(\"%s\", input=x, until=\"feat\")\n"
             "output f\n", onnx);
    snprintf(want, sizeof want, "t.kiln:3:%d: error: onnx \"%s\": input 'x' is f32[N,1,28,28] but the graph input "
             "'x' is f32[N,784]", c - 3, onnx);
    expect_err(src, want, "hint: declare the model input");
    snprintf(src, sizeof src, SPLICE_HDR "f = onnx(\"%s\", input=x, untill=\"feat\")\noutput f\n", onnx);
    snprintf(want, sizeof want, "t.kiln:3:%d: error: onnx has no argument 'untill'", c);
    expect_err(src, want, "hint: did you mean 'until'?");
    snprintf(src, sizeof src, SPLICE_HDR "f = onnx(\"%s\", until=\"feat\")\noutput f\n", onnx);
    expect_err(src, "t.kiln:3:5: error: onnx is missing its argument 'input'", "usage: onnx(");
    snprintf(src, sizeof src, SPLICE_HDR "f = onnx(\"%s\", input=x, frozen, frozen=true)\noutput f\n", onnx);
    snprintf(want, sizeof want, "t.kiln:3:%d: error: argument 'frozen' of onnx given twice", c + 8);
    expect_err(src, want, NULL);
    expect_err(SPLICE_HDR "f = relu(onnx(\"m.onnx\", input=x))\noutput f\n",
               "t.kiln:3:10: error: onnx(...) must be the whole right side of a statement", "hint: give it its own");
    expect_err(SPLICE_HDR "f = onnx(\"no/such.onnx\", input=x)\noutput f\n",
               "t.kiln:3:10: error: cannot find the ONNX model \"no/such.onnx\"", "hint: looked in: no/such.onnx");
    expect_err(SPLICE_HDR "f = onnx(x, input=x)\noutput f\n",
               "t.kiln:3:10: error: onnx expects the model's path as a \"string\" first", NULL);
    /* a data root is searched before the model file's folder */
    char root[4096];
    kt_pathf(root, sizeof root, "%s/tests/golden", kt_src_dir());
    const char *roots[] = {root};
    kn_frontend_opts o = {.data_roots = roots, .n_data_roots = 1};
    const char *rel = SPLICE_HDR "f = onnx(\"onnx_splice/mlp.onnx\", input=x, until=\"h\")\noutput f\n";
    kn_diag d;
    kn_diag_clear(&d);
    CU_ASSERT_EQUAL(kn_parse_model_string_opts(rel, strlen(rel), "t.kiln", &o, &g, &d), KN_OK);
    if (g) check_shape(g, "f", KN_VAL_NODE, 2, KN_DIM_N, 32);
    kn_graph_free(g);
#undef SPLICE_HDR
}

/* init= picks each layer's weight initialisation; biases keep PyTorch's. */
static void test_init_selection(void)
{
    kn_graph *g = parse_ok("model m\n"
                           "input x: f32[N, 1, 8, 8]\n"
                           "c = conv2d(x, 4, kernel=3, init=\"kaiming_normal\")\n"
                           "f = flatten(c)\n"
                           "a = linear(f, 16, init=\"xavier_uniform\")\n"
                           "b = linear(a, 8, init=\"xavier_normal\")\n"
                           "d = linear(b, 4)\n"
                           "output d\n");
    const struct {
        const char *name;
        kn_init_kind init;
    } want[] = {{"c.weight", KN_INIT_KAIMING_NORMAL}, {"a.weight", KN_INIT_XAVIER_UNIFORM},
                {"b.weight", KN_INIT_XAVIER_NORMAL},  {"d.weight", KN_INIT_KAIMING_UNIFORM},
                {"a.bias", KN_INIT_BIAS_UNIFORM},     {"c.bias", KN_INIT_BIAS_UNIFORM}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int id = kn_graph_find_value(g, want[i].name);
        CU_ASSERT_FATAL(id >= 0);
        CU_ASSERT_EQUAL(kn_graph_value(g, id)->init, want[i].init);
    }
    CU_ASSERT_TRUE(kn_graph_value(g, kn_graph_find_value(g, "a.weight"))->trainable);
    /* fan_in/fan_out reach the value, for the xavier bounds. */
    const kn_value *a = kn_graph_value(g, kn_graph_find_value(g, "a.weight"));
    CU_ASSERT_EQUAL(a->fan_in, 4 * 6 * 6); /* 3x3 conv, no padding: 8x8 -> 6x6 */
    CU_ASSERT_EQUAL(a->fan_out, 16);
    kn_graph_free(g);
}

static void test_diag_args(void)
{
    expect_err(HDR "h = relu(x, x)\noutput h\n", "t.kiln:3:13: error: relu expects 1 tensor input, got 2",
               "hint: usage: relu(x)");
    expect_err(HDR "h = add(x)\noutput h\n", "t.kiln:3:5: error: add expects 2 tensor inputs, got 1", NULL);
    expect_err(HDR "h = dropout(x, q=0.5)\noutput h\n", "t.kiln:3:16: error: dropout has no argument 'q'",
               "valid arguments of dropout: p");
    expect_err(HDR "h = dropout(x, pp=0.5)\noutput h\n", "t.kiln:3:16: error: dropout has no argument 'pp'",
               "hint: did you mean 'p'?");
    expect_err(HDR "h = dropout(x, p=\"a\")\noutput h\n",
               "t.kiln:3:18: error: argument 'p' of dropout expects a number, got a string", "hint:");
    expect_err(HDR "h = linear(x, 2.5)\noutput h\n",
               "t.kiln:3:15: error: argument 'out' of linear expects an integer, got the number 2.5", NULL);
    expect_err(HDR "h = linear(x)\noutput h\n", "t.kiln:3:5: error: linear is missing its argument 'out'",
               "usage: linear(x, out, bias=true, init=\"kaiming_uniform\")");
    expect_err(HDR "h = linear(x, 3, out=4)\noutput h\n",
               "t.kiln:3:18: error: argument 'out' of linear given twice", NULL);
    expect_err(HDR "h = linear(x, 3, true, \"xavier_normal\", 5)\noutput h\n",
               "t.kiln:3:41: error: too many arguments to linear: unexpected the integer 5", NULL);
    expect_err(HDR "h = linear(3, x)\noutput h\n", "t.kiln:3:5: error: linear expects 1 tensor input, got 1",
               NULL);
    /* the op's own shape rule, reported at the call */
    expect_err("model m\ninput x: f32[N]\nh = linear(x, 4)\noutput h\n",
               "t.kiln:3:5: error: linear 'h': expects f32[N, K] input, got f32[N]", "hint:");
    expect_err(HDR "h = linear(x, 4, init=\"xavier\")\noutput h\n",
               "t.kiln:3:5: error: linear 'h': unknown init \"xavier\" (expected \"kaiming_uniform\", "
               "\"kaiming_normal\", \"xavier_uniform\" or \"xavier_normal\")", NULL);
    expect_err(HDR "h = relu(x, frozen=true)\noutput h\n", "t.kiln:3:13: error: relu has no parameters to freeze",
               NULL);
    expect_err(HDR "h = linear(x, 4, frozen=1)\noutput h\n", "t.kiln:3:25: error: frozen= expects true or false",
               "hint: write frozen=true");
    expect_err(HDR "h = linear(x, 4, frozn=true)\noutput h\n", "t.kiln:3:18: error: linear has no argument 'frozn'",
               "hint: did you mean 'frozen'?");
    expect_err(HDR "h = linear(x, 4, init=1)\noutput h\n",
               "t.kiln:3:23: error: argument 'init' of linear expects a \"string\", got the integer 1", NULL);
    expect_err(HDR "h = linear(x, 4000000000)\noutput h\n",
               "t.kiln:3:5: error: linear 'h': weight [4000000000, 4] is too large (output size 4000000000, "
               "at most 2147483647 per dim and 2^63 bytes in all)",
               NULL);
}

static void test_diag_structure(void)
{
    expect_err("", "t.kiln:1:1: error: model file is empty", "hint: a model file starts with");
    expect_err("\n  # only a comment\n\n", "t.kiln:1:1: error: model file is empty", NULL);
    expect_err("input x: f32[N, 4]\nmodel m\n", "t.kiln:1:1: error: missing 'model NAME' line",
               "hint: start the file with");
    expect_err(HDR "h = relu(x)\n", "t.kiln:1:1: error: model 'm' has no 'output' statement", "output logits");
    expect_err(HDR "model n\n", "t.kiln:3:1: error: second 'model' statement", NULL);
    expect_err(HDR "h = relu(x)\noutput h\ntrain { batch 64\n  epochs 3\n",
               "t.kiln:5:7: error: unterminated 'train {' block", "hint: close the block with '}'");
    expect_err(HDR "h = relu(x)\ntrain { batch 64\noutput h\n", "t.kiln:4:7: error: unterminated 'train {' block",
               NULL);
    expect_err(HDR "h = relu(x)\noutput h\ntrain { batch 64 epoch 3 }\n",
               "t.kiln:5:18: error: unknown train item 'epoch'",
               "hint: did you mean 'epochs'? valid items: optimizer, batch, epochs, shuffle, seed");
    expect_err(HDR "h = relu(x)\noutput h\ntrain { batch 0 }\n",
               "t.kiln:5:15: error: 'batch' must be between 1 and 2147483647, got 0", NULL);
    expect_err(HDR "h = relu(x)\noutput h\ntrain { optimizer adma(lr=1) }\n",
               "t.kiln:5:19: error: unknown optimizer 'adma'", "hint: did you mean 'adam'?");
    expect_err(HDR "h = relu(x)\noutput h\ntrain { optimizer adam(lrr=1) }\n",
               "t.kiln:5:24: error: unknown optimizer option 'lrr'", "hint: did you mean 'lr'?");
    expect_err(HDR "h = relu(x)\noutput h\ntrain { batch 2 batch 3 }\n", "t.kiln:5:17: error: 'batch' given twice",
               NULL);
    expect_err(HDR "ouput x\n", "t.kiln:3:1: error: expected a statement, got 'ouput'",
               "hint: did you mean 'output'?");
    expect_err(HDR "h = relu(x) relu(x)\n", "t.kiln:3:13: error: expected end of line after the assignment, got 'relu'",
               NULL);
    expect_err(HDR "h = relu(x\noutput h\n", "t.kiln:4:1: error: expected ',' or ')' in the arguments of 'relu', got 'output'", NULL);
    expect_err(HDR "h = relu(x,\n", "t.kiln:3:9: error: unclosed '(' in call to 'relu'", "close it with ')'");
    expect_err("model m\ndata mnist(normalize=(0.5))\n", "t.kiln:2:22: error: normalize expects mean, std pairs (at most 4)",
               NULL);
    expect_err("model m\ndata mnist(mean=1)\n", "t.kiln:2:12: error: unknown data option 'mean'",
               "valid data options: normalize");
}

static void test_diag_lexical(void)
{
    expect_err(HDR "h = relu(x, name=\"abc)\n", "t.kiln:3:18: error: unterminated string",
               "hint: close the string");
    expect_err(HDR "h = relu(x) $\n", "t.kiln:3:13: error: unexpected character '$'", "hint:");
    expect_err(HDR "h = linear(x, 1.2.3)\n", "t.kiln:3:15: error: invalid number '1.2.3'", "hint:");
    expect_err(HDR "h = linear(x, 12abc)\n", "t.kiln:3:15: error: invalid number '12abc'", NULL);
    expect_err(HDR "h = linear(x, 99999999999999999999)\n",
               "t.kiln:3:15: error: integer '99999999999999999999' is out of range", "64 bits");
    expect_err(HDR "h = dropout(x, p=1e999)\n", "t.kiln:3:18: error: number '1e999' is out of range", NULL);
    expect_err(HDR "h = relu(x) - 1\n", "t.kiln:3:13: error: unexpected character '-'", "no arithmetic");
    expect_err("model m\n# caf\xff\n", "t.kiln:2:6: error: invalid UTF-8 byte 0xFF", "hint: save the file as UTF-8");
    expect_err("model m\n# h\xc3\xa9 \xc3\x28\n", "t.kiln:2:6: error: invalid UTF-8 byte 0xC3", NULL);
    expect_err("model m\n# overlong \xc0\xaf\n", "t.kiln:2:12: error: invalid UTF-8 byte 0xC0", NULL);
    expect_err("model m\nh\xc3\xa9 = relu(x)\n", "t.kiln:2:2: error: unexpected character U+00E9", "ASCII");
    expect_err_n("model m\n\0", 9, "t.kiln:2:1: error: unexpected byte 0x00", "plain text");
    /* caret under the right column after UTF-8 text */
    kn_diag d;
    kn_graph *g;
    const char *src = "model m\nh = relu(\"\xc3\xa9\xc3\xa9\", $)\n";
    CU_ASSERT_EQUAL(kn_parse_model_string(src, strlen(src), "t.kiln", &g, &d), KN_ERR);
    KT_ASSERT_CONTAINS(d.text, "t.kiln:2:16: error: unexpected character '$'");
    KT_ASSERT_CONTAINS(d.text, "\n                   ^");
}

static void test_diag_shapes(void)
{
    expect_err("model m\ninput x: f32[N, 0]\n", "t.kiln:2:17: error: dimension must be at least 1, got 0", "hint:");
    expect_err("model m\ninput x: f32[3, N]\n", "t.kiln:2:17: error: the batch dimension N may only be the first dimension",
               NULL);
    expect_err("model m\ninput x: f32[N, 4294967296, 4294967296]\n",
               "t.kiln:2:29: error: tensor 'x' has too many elements", NULL);
    expect_err("model m\ninput x: f16[N, 2]\n", "t.kiln:2:10: error: unknown element type 'f16'", "f32 and i64");
    expect_err("model m\ninput x: f32[1,1,1,1,1,1,1]\n", "t.kiln:2:26: error: too many dimensions (the limit is 6)",
               NULL);
    expect_err("model m\ninput x f32[N]\n", "t.kiln:2:9: error: expected ':' after the input's name, got 'f32'", NULL);
}

static void test_limits(void)
{
    /* nesting depth */
    kn_strbuf b;
    kn_sb_init(&b);
    kn_sb_puts(&b, HDR "h = ");
    for (int i = 0; i < 100; i++) kn_sb_puts(&b, "relu(");
    kn_sb_puts(&b, "x");
    for (int i = 0; i < 100; i++) kn_sb_puts(&b, ")");
    kn_sb_puts(&b, "\n");
    kn_graph *g;
    kn_diag d;
    CU_ASSERT_EQUAL(kn_parse_model_string(b.s, b.len, "t.kiln", &g, &d), KN_ERR);
    KT_ASSERT_CONTAINS(d.text, "t.kiln:3:");
    KT_ASSERT_CONTAINS(d.text, "nested too deeply (the limit is 64 levels)");
    kn_sb_free(&b);

    /* 60 levels is fine */
    kn_sb_init(&b);
    kn_sb_puts(&b, HDR "h = ");
    for (int i = 0; i < 60; i++) kn_sb_puts(&b, "relu(");
    kn_sb_puts(&b, "x");
    for (int i = 0; i < 60; i++) kn_sb_puts(&b, ")");
    kn_sb_puts(&b, "\noutput h\n");
    g = parse_ok(b.s);
    CU_ASSERT_EQUAL(g->n_nodes, 60);
    kn_graph_free(g);
    kn_sb_free(&b);

    /* long names */
    char name[300];
    memset(name, 'a', 200);
    name[200] = 0;
    char src[600];
    snprintf(src, sizeof src, HDR "%s = relu(x)\n", name);
    expect_err(src, "t.kiln:3:1: error: name is too long (200 characters; the limit is 128)", NULL);

    /* a file over 16 MiB is refused before reading */
    char path[4200];
    snprintf(path, sizeof path, "%s/big.kiln", kt_tmp_dir("parser"));
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(ftruncate(fileno(f), (16 << 20) + 1), 0);
    fclose(f);
    kn_diag_clear(&d);
    CU_ASSERT_EQUAL(kn_parse_model_file(path, &g, &d), KN_ERR);
    CU_ASSERT_EQUAL(strncmp(d.text, path, strlen(path)), 0);
    KT_ASSERT_CONTAINS(d.text, "the limit is 16 MiB");
    unlink(path);
    kn_diag_clear(&d);
    CU_ASSERT_EQUAL(kn_parse_model_file("/nonexistent/m.kiln", &g, &d), KN_ERR);
    KT_ASSERT_CONTAINS(d.text, "/nonexistent/m.kiln: error: cannot open model file");
}

/* ---- robustness ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Never crashes; an error names the file first; a success verifies. */
static void parse_any(const char *src, size_t len, int *n_err)
{
    kn_graph *g = NULL;
    kn_diag d;
    kn_diag_clear(&d);
    kn_status st = kn_parse_model_string(src, len, "fz.kiln", &g, &d);
    if (st == KN_OK) {
        kn_diag vd;
        CU_ASSERT_EQUAL(kn_graph_verify(g, true, &vd), KN_OK);
        kn_graph_free(g);
        return;
    }
    (*n_err)++;
    CU_ASSERT_PTR_NULL(g);
    if (strncmp(d.text, "fz.kiln:", 8) != 0) {
        fprintf(stderr, "\nbad diag for input:\n%.*s\n---\n%s\n", (int)(len > 300 ? 300 : len), src, d.text);
        CU_FAIL("diagnostic does not start with the file name");
    }
}

static void test_garbage_10mb(void)
{
    size_t n = 10u << 20;
    char *buf = malloc(n);
    int errs = 0;
    /* random bytes, ASCII soup, and pathological single-character files */
    for (int kind = 0; kind < 6; kind++) {
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rnd();
            buf[i] = kind == 0 ? (char)r : kind == 1 ? (char)(32 + r % 95) : kind == 2 ? '(' : kind == 3 ? 'a'
                   : kind == 4 ? '\n' : "model m\n"[i % 8];
        }
        double t0 = now_s();
        int before = errs;
        parse_any(buf, n, &errs);
        double dt = now_s() - t0;
        CU_ASSERT_EQUAL(errs, before + 1);
        if (dt > 3.0) fprintf(stderr, "\ngarbage kind %d took %.2fs\n", kind, dt);
        CU_ASSERT(dt < 3.0); /* generous: sanitizer builds run this too */
    }
    free(buf);
}

static void wide_expr(kn_strbuf *b, int depth)
{
    if (depth == 0) { kn_sb_puts(b, "relu(x)"); return; }
    kn_sb_puts(b, "add(");
    wide_expr(b, depth - 1);
    kn_sb_puts(b, ", ");
    wide_expr(b, depth - 1);
    kn_sb_puts(b, ")");
}

/* One statement with 2^16 nested relus and as many adds: names stay unique
 * and building stays linear. */
static void test_wide_statement(void)
{
    kn_strbuf b;
    kn_sb_init(&b);
    kn_sb_puts(&b, HDR "a = ");
    wide_expr(&b, 16);
    kn_sb_puts(&b, "\noutput a\n");
    kn_graph *g = NULL;
    kn_diag d;
    double t0 = now_s();
    kn_status st = kn_parse_model_string(b.s, b.len, "t.kiln", &g, &d);
    double dt = now_s() - t0;
    CU_ASSERT_EQUAL_FATAL(st, KN_OK);
    CU_ASSERT_EQUAL(g->n_nodes, 65536 + 65535);
    CU_ASSERT_PTR_NOT_NULL(node_named(g, "a.relu_65535"));
    CU_ASSERT_PTR_NOT_NULL(node_named(g, "a.add_65533"));
    if (dt > 3.0) fprintf(stderr, "\nwide statement took %.2fs\n", dt);
    CU_ASSERT(dt < 3.0);
    kn_graph_free(g);
    kn_sb_free(&b);
}

static void test_fuzz(void)
{
    static const char *const soup[] = {
        "model", "m", "data", "input", "label", "output", "train", "{", "}", "(", ")", "[", "]", ",", ":", "=",
        "x", "y", "h", "N", "f32", "i64", "linear", "relu", "dropout", "batchnorm", "add", "cross_entropy",
        "flatten", "softmax", "p=", "name=", "\"s\"", "\"", "1", "0", "-1", "512", "1e-3", ".5", "1.2.3",
        "true", "false", "#c", "\n", "\n", " ", "\t", "optimizer", "adam", "batch", "epochs", "shuffle", "seed",
        "\xff", "\xc3\xa9", "99999999999999999999", "$", "."};
    int nsoup = (int)(sizeof soup / sizeof *soup);
    int errs = 0, total = 0;
    char buf[4096];
    /* random bytes */
    for (int c = 0; c < 2000; c++) {
        size_t len = rnd() % 256;
        for (size_t i = 0; i < len; i++) buf[i] = (char)rnd();
        parse_any(buf, len, &errs);
        total++;
    }
    /* token soup, half of it behind a valid prefix so the parser gets further */
    for (int c = 0; c < 3000; c++) {
        kn_strbuf b;
        kn_sb_init(&b);
        if (c % 2) kn_sb_puts(&b, "model m\ninput x: f32[N, 4]\nlabel y: i64[N]\n");
        int ntok = 1 + (int)(rnd() % 40);
        for (int i = 0; i < ntok; i++) {
            kn_sb_puts(&b, soup[rnd() % (uint64_t)nsoup]);
            if (rnd() % 2) kn_sb_puts(&b, " ");
        }
        parse_any(b.s, b.len, &errs);
        total++;
        kn_sb_free(&b);
    }
    /* mutations of a valid model: reach binding and shape errors */
    size_t flen = strlen(FMNIST);
    for (int c = 0; c < 3000; c++) {
        memcpy(buf, FMNIST, flen);
        size_t len = flen;
        int nmut = 1 + (int)(rnd() % 3);
        for (int m = 0; m < nmut; m++) {
            size_t at = rnd() % len;
            switch (rnd() % 3) {
            case 0: buf[at] = (char)(32 + rnd() % 95); break;
            case 1: memmove(buf + at, buf + at + 1, len - at - 1); len--; break;
            default:
                if (len + 1 < sizeof buf) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = soup[rnd() % (uint64_t)nsoup][0];
                    len++;
                }
            }
        }
        parse_any(buf, len, &errs);
        total++;
    }
    CU_ASSERT(errs > total / 2);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"fmnist model builds the expected IR", test_fmnist},
        {"models/*.kiln parse", test_model_files},
        {"nested call names, kwargs, name=", test_nested_names_kwargs},
        {"init= selects each layer's weight initialisation", test_init_selection},
        {"frozen=true marks a layer's parameters", test_frozen},
        {"param statements and --set overrides", test_params},
        {"onnx(...) splices and their diagnostics", test_onnx_splice_diags},
        {"data options for images", test_data_options},
        {"comments, CRLF, multi-line calls and train block", test_layout},
        {"diagnostic layout", test_diag_format},
        {"diagnostics: names", test_diag_names},
        {"diagnostics: arguments and op rules", test_diag_args},
        {"diagnostics: structure", test_diag_structure},
        {"diagnostics: lexical and UTF-8", test_diag_lexical},
        {"diagnostics: shapes", test_diag_shapes},
        {"limits: depth, name length, file size", test_limits},
        {"10 MB of garbage fails fast", test_garbage_10mb},
        {"a statement with 200k calls builds in linear time", test_wide_statement},
        {"fuzz: random bytes, token soup, mutations", test_fuzz},
        CU_TEST_INFO_NULL,
    };
    return kt_main("parser", tests);
}

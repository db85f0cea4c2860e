/* test_passes.c — shape inference, dead-code elimination and the memory
 * planner on small graphs and on the real model files.
 *
 * The planner invariant is checked independently of the planner: liveness is
 * recomputed here from the graph, and every pair of values alive at the same
 * node must occupy disjoint byte ranges. */
#include "testlib.h"
#include "npy.h"

#include "codegen/codegen.h"
#include "frontend/frontend.h"
#include "ir/ops/op.h"
#include "passes/passes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kn_graph *parse(const char *src)
{
    kn_graph *g = NULL;
    kn_diag d;
    kn_diag_clear(&d);
    if (kn_parse_model_string(src, strlen(src), "t.kiln", &g, &d) != KN_OK) {
        fprintf(stderr, "parse failed: %s\n", d.text);
        return NULL;
    }
    return g;
}

static kn_graph *parse_file(const char *rel)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", kt_src_dir(), rel);
    kn_graph *g = NULL;
    kn_diag d;
    kn_diag_clear(&d);
    if (kn_parse_model_file(path, &g, &d) != KN_OK) {
        fprintf(stderr, "parse %s failed: %s\n", path, d.text);
        return NULL;
    }
    return g;
}

/* Independent liveness: [def, last use], outputs to the end. */
static void check_plan_invariant(const kn_graph *g, const kn_memplan *p)
{
    int nv = g->n_values;
    int *s = calloc((size_t)nv, sizeof(int)), *e = calloc((size_t)nv, sizeof(int));
    for (int i = 0; i < nv; i++) {
        const kn_value *v = g->values[i];
        s[i] = (v->kind == KN_VAL_NODE) ? v->producer : -1;
        e[i] = s[i];
    }
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_in; k++)
            if (e[g->nodes[i]->in[k]] < i) e[g->nodes[i]->in[k]] = i;
    for (int i = 0; i < g->n_outputs; i++) e[g->outputs[i]] = g->n_nodes;
    if (g->loss >= 0) e[g->loss] = g->n_nodes;
    int64_t sum_b = 0, sum_f = 0, checked_pairs = 0;
    for (int a = 0; a < nv; a++) {
        const kn_value *va = g->values[a];
        bool in_arena = !va->dead && (va->kind == KN_VAL_NODE || va->kind == KN_VAL_INPUT || va->kind == KN_VAL_LABEL);
        CU_ASSERT_EQUAL(p->offset[a] >= 0, in_arena);
        if (!in_arena) continue;
        if (p->batched[a]) sum_b += p->size[a];
        else sum_f += p->size[a];
        CU_ASSERT(p->offset[a] + p->size[a] <= (p->batched[a] ? p->per_sample_bytes : p->fixed_bytes));
        for (int b = a + 1; b < nv; b++) {
            if (p->offset[b] < 0 || p->batched[a] != p->batched[b]) continue;
            bool live_together = !(e[a] < s[b] || e[b] < s[a]);
            if (!live_together) continue;
            checked_pairs++;
            bool disjoint = p->offset[a] + p->size[a] <= p->offset[b] || p->offset[b] + p->size[b] <= p->offset[a];
            if (!disjoint)
                fprintf(stderr, "overlap: %s [%lld,+%lld) and %s [%lld,+%lld)\n", va->name,
                        (long long)p->offset[a], (long long)p->size[a], g->values[b]->name,
                        (long long)p->offset[b], (long long)p->size[b]);
            CU_ASSERT(disjoint);
        }
    }
    CU_ASSERT(checked_pairs > 0);
    /* Reuse must make the arena no larger than the sum of sizes (plus alignment). */
    CU_ASSERT(p->per_sample_bytes <= sum_b + 16 * nv);
    CU_ASSERT(p->fixed_bytes <= sum_f + 64 * nv);
    free(s);
    free(e);
}

static void test_plan_fmnist(void)
{
    kn_graph *g = parse_file("models/fmnist_mlp.kiln");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    kn_diag d;
    kn_diag_clear(&d);
    CU_ASSERT_EQUAL_FATAL(kn_run_pipeline(g, KN_MODE_EVAL, &d), KN_OK);
    kn_memplan p;
    CU_ASSERT_EQUAL_FATAL(kn_plan_memory(g, &p, &d), KN_OK);
    check_plan_invariant(g, &p);
    /* A chain reuses memory: the arena is well below the sum of all sizes. */
    CU_ASSERT(p.per_sample_bytes < p.sum_sizes_per_sample);
    printf("\n  fmnist eval arena: %lld B/sample (sum of sizes %lld), fixed %lld B\n",
           (long long)p.per_sample_bytes, (long long)p.sum_sizes_per_sample, (long long)p.fixed_bytes);
    kn_memplan_free(&p);
    kn_graph_free(g);
}

static void test_plan_branches(void)
{
    /* A diamond with a long-lived value: a is read at the very end, so it must
     * not share memory with anything computed in between. */
    kn_graph *g = parse("model t\ninput x: f32[N, 8]\n"
                        "a = relu(x)\nb = sigmoid(a)\nc = tanh(b)\nd = gelu(c)\ne = add(d, a)\n"
                        "s = sum(e)\noutput e, s\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    kn_diag d;
    kn_diag_clear(&d);
    CU_ASSERT_EQUAL_FATAL(kn_run_pipeline(g, KN_MODE_EVAL, &d), KN_OK);
    kn_memplan p;
    CU_ASSERT_EQUAL_FATAL(kn_plan_memory(g, &p, &d), KN_OK);
    check_plan_invariant(g, &p);
    int a = kn_graph_find_value(g, "a"), c = kn_graph_find_value(g, "c");
    CU_ASSERT(p.offset[a] != p.offset[c]);
    /* s is a scalar: it lives in the fixed region. */
    int s = kn_graph_find_value(g, "s");
    CU_ASSERT_FALSE(p.batched[s]);
    kn_memplan_free(&p);
    kn_graph_free(g);
}

static void test_dce_removes_unused(void)
{
    kn_graph *g = parse("model t\ninput x: f32[N, 4]\n"
                        "a = relu(x)\nunused = sigmoid(x)\nalso = tanh(unused)\noutput a\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(g->n_nodes, 3);
    kn_diag d;
    kn_diag_clear(&d);
    CU_ASSERT_EQUAL_FATAL(kn_run_pipeline(g, KN_MODE_EVAL, &d), KN_OK);
    CU_ASSERT_EQUAL(g->n_nodes, 1);
    CU_ASSERT_STRING_EQUAL(g->nodes[0]->name, "a");
    CU_ASSERT_TRUE(g->values[kn_graph_find_value(g, "also")]->dead);
    kn_memplan p;
    CU_ASSERT_EQUAL_FATAL(kn_plan_memory(g, &p, &d), KN_OK);
    CU_ASSERT_EQUAL(p.offset[kn_graph_find_value(g, "unused")], -1);
    kn_memplan_free(&p);
    kn_graph_free(g);
}

static void test_infer_shapes_reports_location(void)
{
    /* Build a valid graph, then break an input shape behind the frontend's
     * back: the pass must report the node with its source location. */
    kn_graph *g = parse("model t\ninput x: f32[N, 4]\ninput z: f32[N, 4]\ns = add(x, z)\noutput s\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int z = kn_graph_find_value(g, "z");
    g->values[z]->shape.d[1] = 5;
    kn_diag d;
    kn_diag_clear(&d);
    CU_ASSERT_EQUAL(kn_pass_infer_shapes(g, &d), KN_ERR);
    KT_ASSERT_CONTAINS(d.text, "t.kiln:4:");
    KT_ASSERT_CONTAINS(d.text, "add 's'");
    KT_ASSERT_CONTAINS(d.text, "f32[N,4]");
    KT_ASSERT_CONTAINS(d.text, "f32[N,5]");
    kn_graph_free(g);
}

static void test_clone_is_deep(void)
{
    kn_graph *g = parse_file("models/fmnist_mlp.kiln");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    kn_graph *c = kn_graph_clone(g);
    CU_ASSERT_EQUAL(c->n_nodes, g->n_nodes);
    CU_ASSERT_EQUAL(c->n_values, g->n_values);
    kn_diag d;
    kn_diag_clear(&d);
    CU_ASSERT_EQUAL(kn_run_pipeline(c, KN_MODE_EVAL, &d), KN_OK);
    kn_graph_free(c);
    /* The original is untouched by transforming the clone. */
    CU_ASSERT_EQUAL(kn_graph_verify(g, true, &d), KN_OK);
    int64_t t, f, b;
    kn_graph_param_counts(g, &t, &f, &b);
    CU_ASSERT_EQUAL(t, 576970);
    CU_ASSERT_EQUAL(f, 0);
    CU_ASSERT_EQUAL(b, 2 * (512 + 256 + 128 + 64));
    kn_graph_free(g);
}

/* Every epilogue shape the fusion pass knows: 1x1 + relu6, depthwise +
 * relu6, 1x1 + residual, depthwise + residual, im2col (3x3 stride 2) +
 * relu, conv -> clip -> add, whose add must stay a node, and 1x1 (+ relu6)
 * -> global_avg_pool, with and without a bias. */
static const char FUSE_MODEL[] =
    "model fuse\n"
    "input x: f32[N, 8, 9, 9]\n"
    "a = clip(conv2d(x, 8, kernel=1), min=0, max=6)\n"
    "b = clip(conv2d(a, 8, kernel=3, padding=1, groups=8), min=0.0, max=6.0)\n"
    "c = add(conv2d(b, 8, kernel=1), a)\n"
    "d = add(a, conv2d(c, 8, kernel=3, padding=1, groups=8, bias=false))\n"
    "e = relu(conv2d(d, 16, kernel=3, stride=2, padding=1))\n"
    "f = add(clip(conv2d(c, 8, kernel=1), min=0, max=6), c)\n"
    "g = global_avg_pool(clip(conv2d(d, 12, kernel=1), min=0, max=6))\n"
    "h = global_avg_pool(conv2d(e, 5, kernel=1, bias=false))\n"
    "output e, f, g, h\n";

static int count_op(const kn_graph *g, int op)
{
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++) k += g->nodes[i]->op == op;
    return k;
}

static void test_fuse_epilogue_structure(void)
{
    kn_graph *g = parse(FUSE_MODEL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    kn_diag d;
    kn_diag_clear(&d);
    kn_graph *train = kn_graph_clone(g);
    CU_ASSERT_EQUAL_FATAL(kn_run_pipeline(g, KN_MODE_EVAL, &d), KN_OK);
    CU_ASSERT_EQUAL(count_op(g, KN_OP_CLIP), 4);
    CU_ASSERT_EQUAL(count_op(g, KN_OP_ADD), 3);
    CU_ASSERT_EQUAL(count_op(g, KN_OP_GLOBAL_AVG_POOL), 2);
    CU_ASSERT_EQUAL_FATAL(kn_run_backend_pipeline(g, &d), KN_OK);
    CU_ASSERT_EQUAL(count_op(g, KN_OP_CONV2D), 8);
    CU_ASSERT_EQUAL(count_op(g, KN_OP_GLOBAL_AVG_POOL), 0);
    /* The pooled convs write the pool's [N, C, 1, 1] values. */
    const kn_value *pooled = g->values[g->outputs[2]];
    CU_ASSERT_STRING_EQUAL(pooled->name, "g");
    CU_ASSERT_EQUAL(pooled->shape.d[1], 12);
    CU_ASSERT_EQUAL(pooled->shape.d[2] * pooled->shape.d[3], 1);
    CU_ASSERT_EQUAL(kn_node_attr_i(kn_graph_producer(g, g->outputs[2]), "pool_avg", 0), 1);
    CU_ASSERT_EQUAL(count_op(g, KN_OP_RELU), 0);
    CU_ASSERT_EQUAL(count_op(g, KN_OP_CLIP), 0);
    CU_ASSERT_EQUAL(count_op(g, KN_OP_ADD), 1); /* f: the clip came first */
    /* Outputs keep their values and names. */
    CU_ASSERT_STRING_EQUAL(g->values[g->outputs[0]]->name, "e");
    CU_ASSERT_EQUAL(g->values[g->outputs[0]]->producer >= 0, true);
    /* Training graphs are never fused (backward needs the plain values). */
    train->mode = KN_MODE_TRAIN;
    CU_ASSERT_EQUAL_FATAL(kn_pass_infer_shapes(train, &d), KN_OK);
    int clips = count_op(train, KN_OP_CLIP);
    CU_ASSERT_EQUAL(kn_pass_fuse_epilogue(train, &d), KN_OK);
    CU_ASSERT_EQUAL(count_op(train, KN_OP_CLIP), clips);
    kn_graph_free(train);
    kn_graph_free(g);
}

/* Emits (elementwise runs on or off), builds and runs `g` on the inputs
 * `names` (each NAME.npy in `dir`); outputs go to dir/tag/.  `loops`, when
 * given, receives how many elementwise runs the source holds. */
static int build_and_run_with(kn_graph *g, const char *dir, const char *tag, bool runs, const char *const *names,
                              int n_names, int *loops)
{
    kn_diag d;
    kn_diag_clear(&d);
    kn_memplan plan;
    kn_strbuf src;
    kn_sb_init(&src);
    char c_path[4096], exe[4096];
    kt_pathf(c_path, sizeof c_path, "%s/%s.c", dir, tag);
    kt_pathf(exe, sizeof exe, "%s/%s.exe", dir, tag);
    int bad = kn_plan_memory(g, &plan, &d) != KN_OK;
    kn_codegen_phase ph = {"infer", g, &plan};
    kn_codegen_opts opts = {.model_hash = "test", .target = "cpu", .no_elem_runs = !runs};
    if (!bad) bad = kn_emit_c_program(g, &ph, 1, &opts, &src, &d) != KN_OK;
    if (!bad && loops) {
        *loops = 0;
        for (const char *p = src.s; (p = strstr(p, "one elementwise loop")) != NULL; p++) ++*loops;
    }
    if (!bad) bad = kt_write_file(c_path, src.s, src.len) != 0;
    kn_toolchain tc;
    kt_toolchain(&tc);
    if (!bad) bad = kn_build_executable(&tc, c_path, exe, &d) != KN_OK;
    if (bad) printf("  %s: %s\n", tag, d.text);
    kn_sb_free(&src);
    kn_memplan_free(&plan);
    char ins[2048] = "";
    for (int i = 0; i < n_names; i++) {
        size_t k = strlen(ins);
        snprintf(ins + k, sizeof ins - k, " --in '%s=%s/%s.npy'", names[i], dir, names[i]);
    }
    char *log = NULL;
    if (!bad) bad = kt_run(&log, "'%s' run --seed 7%s --out '%s/%s'", exe, ins, dir, tag) != 0;
    if (bad && log) printf("  %s: %s\n", tag, log);
    free(log);
    return bad;
}

/* Emits, builds and runs `g` on x.npy in `dir`; outputs go to dir/tag/. */
static int build_and_run(kn_graph *g, const char *dir, const char *tag)
{
    const char *x[] = {"x"};
    return build_and_run_with(g, dir, tag, true, x, 1, NULL);
}

/* Writes a deterministic input x of `dims` (rank 4, or less with trailing
 * zeros) to a fresh folder `tag`, builds `model` through the eval pipeline
 * plain and through `lower` (then `tweak`, when given), runs both and
 * compares the outputs `outs`.  The lowered program must agree with the
 * plain NCHW one to 1e-5. */
static void check_lowering(const char *model, const char *tag, const int64_t dims[4], const char **outs, int n_outs,
                           kn_status (*lower)(kn_graph *, kn_diag *), void (*tweak)(kn_graph *))
{
    const char *dir = kt_tmp_dir(tag);
    int rank = 4;
    while (rank > 1 && dims[rank - 1] == 0) rank--;
    size_t numel = 1;
    for (int i = 0; i < rank; i++) numel *= (size_t)dims[i];
    float *x = malloc(numel * sizeof *x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    for (size_t i = 0; i < numel; i++) x[i] = (float)((i * 61 % 113) / 28.0 - 2.0);
    char path[4096], err[256];
    kt_pathf(path, sizeof path, "%s/x.npy", dir);
    CU_ASSERT_EQUAL_FATAL(kn_npy_write(path, KN_RT_F32, rank, dims, x, err, sizeof err), 0);
    free(x);
    kn_graph *plain = parse(model);
    CU_ASSERT_PTR_NOT_NULL_FATAL(plain);
    kn_diag d;
    kn_diag_clear(&d);
    CU_ASSERT_EQUAL_FATAL(kn_run_pipeline(plain, KN_MODE_EVAL, &d), KN_OK);
    kn_graph *lowered = kn_graph_clone(plain);
    CU_ASSERT_EQUAL_FATAL(lower(lowered, &d), KN_OK);
    if (tweak) tweak(lowered);
    CU_ASSERT_EQUAL_FATAL(build_and_run(plain, dir, "plain"), 0);
    CU_ASSERT_EQUAL_FATAL(build_and_run(lowered, dir, "lowered"), 0);
    for (int i = 0; i < n_outs; i++) {
        char want[4096], got[4096];
        kt_pathf(want, sizeof want, "%s/plain/%s.npy", dir, outs[i]);
        kt_pathf(got, sizeof got, "%s/lowered/%s.npy", dir, outs[i]);
        CU_ASSERT_EQUAL(kt_compare_npy(tag, outs[i], want, got, 1e-5, 1e-5), 0);
    }
    kn_graph_free(plain);
    kn_graph_free(lowered);
}

static void test_fuse_epilogue_same_outputs(void)
{
    const int64_t dims[4] = {2, 8, 9, 9};
    const char *outs[] = {"e", "f", "g", "h"};
    check_lowering(FUSE_MODEL, "fuse_epilogue", dims, outs, 4, kn_run_backend_pipeline, NULL);
}

/* Elementwise runs (codegen/elem_runs.c) on tests/data/elem_chain.kiln. */
static void test_elem_runs_same_outputs(void)
{
    const char *dir = kt_tmp_dir("elem_runs");
    char path[4096], err[256];
    float x[4 * 30], sv = 0.75f;
    for (int i = 0; i < 4 * 30; i++) x[i] = (float)((i * 37 % 61) / 15.0 - 2.0);
    int64_t xd[3] = {4, 6, 5}, sd[1] = {1};
    kt_pathf(path, sizeof path, "%s/x.npy", dir);
    CU_ASSERT_EQUAL_FATAL(kn_npy_write(path, KN_RT_F32, 3, xd, x, err, sizeof err), 0);
    kt_pathf(path, sizeof path, "%s/s.npy", dir);
    CU_ASSERT_EQUAL_FATAL(kn_npy_write(path, KN_RT_F32, 1, sd, &sv, err, sizeof err), 0);
    kn_graph *g = parse_file("tests/data/elem_chain.kiln");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    kn_diag d;
    kn_diag_clear(&d);
    CU_ASSERT_EQUAL_FATAL(kn_run_pipeline(g, KN_MODE_EVAL, &d), KN_OK);
    const char *names[] = {"x", "s"};
    int fused = 0, plain = 0;
    CU_ASSERT_EQUAL_FATAL(build_and_run_with(g, dir, "plain", false, names, 2, &plain), 0);
    CU_ASSERT_EQUAL_FATAL(build_and_run_with(g, dir, "runs", true, names, 2, &fused), 0);
    CU_ASSERT_EQUAL(plain, 0);
    CU_ASSERT(fused >= 2); /* [N,6,5] up to f; the flatten; [N,30] after it */
    const char *outs[] = {"z", "c"};
    for (int i = 0; i < 2; i++) {
        char want[4096], got[4096];
        kt_pathf(want, sizeof want, "%s/plain/%s.npy", dir, outs[i]);
        kt_pathf(got, sizeof got, "%s/runs/%s.npy", dir, outs[i]);
        CU_ASSERT_EQUAL(kt_compare_npy("elem_runs", outs[i], want, got, 0.0, 0.0), 0);
    }
    kn_graph_free(g);
}

/* MLP hidden layers for the linear epilogues: linear -> batchnorm -> relu
 * -> dropout (fmnist_mlp's), without a bias, -> clip alone, -> batchnorm
 * alone, and a linear whose value has a second reader (left alone). */
static const char MLP_MODEL[] =
    "model mlp\n"
    "input x: f32[N, 20]\n"
    "a = dropout(relu(batchnorm(linear(x, 16))), p=0.3)\n"
    "b = dropout(relu(batchnorm(linear(a, 12, bias=false))), p=0.5)\n"
    "c = clip(linear(b, 8), min=-0.5, max=0.5)\n"
    "l = linear(c, 8)\n"
    "d = add(batchnorm(l), l)\n"
    "e = batchnorm(linear(d, 5))\n"
    "output e\n";

static void test_fuse_linear_structure(void)
{
    kn_graph *g = parse(MLP_MODEL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    kn_diag d;
    kn_diag_clear(&d);
    CU_ASSERT_EQUAL_FATAL(kn_run_pipeline(g, KN_MODE_EVAL, &d), KN_OK);
    CU_ASSERT_EQUAL(count_op(g, KN_OP_BATCHNORM), 4);
    CU_ASSERT_EQUAL_FATAL(kn_run_backend_pipeline(g, &d), KN_OK);
    CU_ASSERT_EQUAL(count_op(g, KN_OP_LINEAR), 5);
    CU_ASSERT_EQUAL(count_op(g, KN_OP_BATCHNORM), 1); /* l has two readers */
    CU_ASSERT_EQUAL(count_op(g, KN_OP_RELU), 0);
    CU_ASSERT_EQUAL(count_op(g, KN_OP_CLIP), 0);
    CU_ASSERT_EQUAL(count_op(g, KN_OP_DROPOUT), 0);
    kn_node *last = kn_graph_producer(g, g->outputs[0]); /* e = batchnorm(linear(d, 5)) */
    CU_ASSERT_PTR_NOT_NULL_FATAL(last);
    CU_ASSERT_EQUAL(last->op, KN_OP_LINEAR);
    CU_ASSERT_EQUAL(kn_node_attr_i(last, "bn", 0), 1);
    CU_ASSERT_STRING_EQUAL(g->values[g->outputs[0]]->name, "e");
    kn_graph_free(g);
}

static void test_fuse_linear_same_outputs(void)
{
    const int64_t dims[4] = {3, 20, 0, 0};
    const char *outs[] = {"e"};
    check_lowering(MLP_MODEL, "fuse_linear", dims, outs, 1, kn_run_backend_pipeline, NULL);
}

/* A MobileNet-like chain for the NHWC layout pass: expand -> depthwise
 * stride 2 -> 1x1 -> depthwise stride 2 (24 channels: not a multiple of
 * the register block) -> project -> residual block, and a second chain
 * whose stride-2 depthwise feeds an im2col conv, which reads NCHW only. */
static const char LAYOUT_MODEL[] =
    "model layout\n"
    "input x: f32[N, 8, 56, 56]\n"
    "a = clip(conv2d(x, 16, kernel=1), min=0, max=6)\n"
    "b = clip(conv2d(a, 16, kernel=3, stride=2, padding=1, groups=16), min=0, max=6)\n"
    "c = clip(conv2d(b, 24, kernel=1), min=0, max=6)\n"
    "g = conv2d(c, 24, kernel=3, stride=2, padding=1, groups=24, bias=false)\n"
    "h = conv2d(g, 8, kernel=1)\n"
    "k = add(conv2d(h, 8, kernel=1), h)\n"
    "p = conv2d(x, 16, kernel=1)\n"
    "q = conv2d(p, 16, kernel=3, stride=2, padding=1, groups=16)\n"
    "r = relu(conv2d(q, 12, kernel=3, padding=1))\n"
    "output k, r\n";

/* The node writing value `name`, or NULL. */
static const kn_node *producer_of(const kn_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->values[g->nodes[i]->out[0]]->name, name) == 0) return g->nodes[i];
    return NULL;
}

/* "xy" of a conv: its input and output layouts, N for NCHW, H for NHWC. */
static const char *layouts_of(const kn_graph *g, const char *name)
{
    static char buf[3];
    const kn_node *n = producer_of(g, name);
    if (!n) return "??";
    buf[0] = kn_node_attr_i(n, "x_nhwc", 0) ? 'H' : 'N';
    buf[1] = kn_node_attr_i(n, "y_nhwc", 0) ? 'H' : 'N';
    buf[2] = 0;
    return buf;
}

/* Epilogue fusion and the layout pass only: block fusion would take these
 * chains first. */
static kn_status lower_layout_only(kn_graph *g, kn_diag *d)
{
    if (kn_pass_fuse_epilogue(g, d) != KN_OK || kn_pass_layout_nhwc(g, d) != KN_OK) return KN_ERR;
    return kn_pass_infer_shapes(g, d);
}

static void test_layout_nhwc_choice(void)
{
    kn_graph *g = parse(LAYOUT_MODEL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    kn_diag d;
    kn_diag_clear(&d);
    CU_ASSERT_EQUAL_FATAL(kn_run_pipeline(g, KN_MODE_EVAL, &d), KN_OK);
    CU_ASSERT_EQUAL_FATAL(lower_layout_only(g, &d), KN_OK);
    /* Around the stride-2 depthwise convs: channels-last, converted inside
     * the GEMMs of the 1x1 convs on either side. */
    CU_ASSERT_STRING_EQUAL(layouts_of(g, "a"), "NH");
    CU_ASSERT_STRING_EQUAL(layouts_of(g, "b"), "HH");
    CU_ASSERT_STRING_EQUAL(layouts_of(g, "c"), "HH");
    CU_ASSERT_STRING_EQUAL(layouts_of(g, "g"), "HH");
    CU_ASSERT_STRING_EQUAL(layouts_of(g, "h"), "HN");
    CU_ASSERT_STRING_EQUAL(layouts_of(g, "k"), "NN"); /* graph output, fused residual */
    /* q feeds an im2col conv: demoted, and with it the depthwise input p. */
    CU_ASSERT_STRING_EQUAL(layouts_of(g, "p"), "NN");
    CU_ASSERT_STRING_EQUAL(layouts_of(g, "q"), "NN");
    CU_ASSERT_STRING_EQUAL(layouts_of(g, "r"), "NN");
    kn_graph_free(g);
}

/* The program with channels-last values against the plain NCHW one. */
static void test_layout_nhwc_same_outputs(void)
{
    const int64_t dims[4] = {2, 8, 56, 56};
    const char *outs[] = {"k", "r"};
    check_lowering(LAYOUT_MODEL, "layout_nhwc", dims, outs, 2, lower_layout_only, NULL);
}

/* Inverted-residual blocks whose expanded tensor is at least 28x28 (what
 * block fusion takes): the first block's depthwise + project (no expand), a stride-2
 * block with TF's asymmetric padding (bottom/right only), a stride-1 block
 * with its residual, and one whose depthwise output is also a graph
 * output, which must stay unfused. */
static const char BLOCK_MODEL[] =
    "model blocks\n"
    "input x: f32[N, 8, 112, 112]\n"
    "a = clip(conv2d(x, 16, kernel=3, stride=2, padding=1), min=0, max=6)\n"
    "b = clip(conv2d(a, 16, kernel=3, padding=1, groups=16), min=0, max=6)\n"
    "c = conv2d(b, 8, kernel=1)\n"
    "d = clip(conv2d(c, 48, kernel=1), min=0, max=6)\n"
    "e = clip(conv2d(d, 48, kernel=3, stride=2, padding=(0, 0, 1, 1), groups=48), min=0, max=6)\n"
    "f = conv2d(e, 12, kernel=1)\n"
    "g = clip(conv2d(f, 72, kernel=1), min=0, max=6)\n"
    "h = clip(conv2d(g, 72, kernel=3, padding=1, groups=72), min=0, max=6)\n"
    "k = add(conv2d(h, 12, kernel=1), f)\n"
    "m = clip(conv2d(k, 24, kernel=1), min=0, max=6)\n"
    "o = clip(conv2d(m, 24, kernel=3, padding=1, groups=24), min=0, max=6)\n"
    "p = conv2d(o, 12, kernel=1)\n"
    "output p, o\n";

static void test_fuse_block_structure(void)
{
    kn_graph *g = parse(BLOCK_MODEL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    kn_diag d;
    kn_diag_clear(&d);
    CU_ASSERT_EQUAL_FATAL(kn_run_pipeline(g, KN_MODE_EVAL, &d), KN_OK);
    CU_ASSERT_EQUAL_FATAL(kn_run_backend_pipeline(g, &d), KN_OK);
    CU_ASSERT_EQUAL(count_op(g, KN_OP_INVERTED_RESIDUAL), 3);
    const kn_node *c = producer_of(g, "c"), *f = producer_of(g, "f"), *k = producer_of(g, "k");
    CU_ASSERT_FATAL(c && f && k);
    CU_ASSERT_EQUAL(c->op, KN_OP_INVERTED_RESIDUAL);
    CU_ASSERT_EQUAL(kn_node_attr_i(c, "expand", -1), 0);
    CU_ASSERT_EQUAL(f->op, KN_OP_INVERTED_RESIDUAL);
    CU_ASSERT_EQUAL(kn_node_attr_i(f, "expand", -1), 1);
    CU_ASSERT_EQUAL(kn_node_attr_i(f, "dw_stride", -1), 2);
    CU_ASSERT_EQUAL(k->op, KN_OP_INVERTED_RESIDUAL);
    CU_ASSERT_EQUAL(kn_node_attr_i(k, "residual", -1), 1);
    /* o is a graph output: its block stays three convs. */
    CU_ASSERT_EQUAL(producer_of(g, "p")->op, KN_OP_CONV2D);
    CU_ASSERT_EQUAL(producer_of(g, "o")->op, KN_OP_CONV2D);
    kn_graph_free(g);
}

/* Sets band_rows on every fused block, so even 28x28 images run in several
 * bands that share expanded rows. */
static void force_bands(kn_graph *g, int rows)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->op == KN_OP_INVERTED_RESIDUAL) kn_node_set_attr_i(g->nodes[i], "band_rows", rows);
}

/* Odd, non-square sizes: the stride-2 de-interleaved rows have halves of
 * different lengths, symmetric padding puts a border column on both sides,
 * and a stride-1 block follows on a 15x16 image. */
static const char BLOCK_ODD_MODEL[] =
    "model blocks_odd\n"
    "input x: f32[N, 6, 29, 31]\n"
    "a = clip(conv2d(x, 36, kernel=1), min=0, max=6)\n"
    "b = clip(conv2d(a, 36, kernel=3, stride=2, padding=1, groups=36), min=0, max=6)\n"
    "c = conv2d(b, 10, kernel=1)\n"
    "output c\n";

static void force_bands_3(kn_graph *g) { force_bands(g, 3); }

/* `model` fused (blocks inverted_residual nodes), as one band per image
 * and in bands of 3 rows, against the plain program. */
static void check_block_fusion(const char *model, const char *tag, const int64_t dims[4], const char **outs, int n_outs,
                               int blocks)
{
    kn_graph *g = parse(model);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    kn_diag d;
    kn_diag_clear(&d);
    CU_ASSERT_EQUAL_FATAL(kn_run_pipeline(g, KN_MODE_EVAL, &d), KN_OK);
    CU_ASSERT_EQUAL_FATAL(kn_run_backend_pipeline(g, &d), KN_OK);
    CU_ASSERT_EQUAL(count_op(g, KN_OP_INVERTED_RESIDUAL), blocks);
    kn_graph_free(g);
    char banded[64];
    snprintf(banded, sizeof banded, "%s_banded", tag);
    check_lowering(model, tag, dims, outs, n_outs, kn_run_backend_pipeline, NULL);
    check_lowering(model, banded, dims, outs, n_outs, kn_run_backend_pipeline, force_bands_3);
}

static void test_fuse_block_odd_sizes(void)
{
    const int64_t dims[4] = {3, 6, 29, 31}; /* batch 3: one work item per sample */
    const char *outs[] = {"c"};
    check_block_fusion(BLOCK_ODD_MODEL, "fuse_block_odd", dims, outs, 1, 1);
}

static void test_fuse_block_same_outputs(void)
{
    const int64_t dims[4] = {1, 8, 112, 112};
    const char *outs[] = {"p", "o"};
    check_block_fusion(BLOCK_MODEL, "fuse_block", dims, outs, 2, 3);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"memory plan of fmnist_mlp: no live overlap, reuse", test_plan_fmnist},
        {"memory plan with a long-lived value", test_plan_branches},
        {"dce removes unused nodes", test_dce_removes_unused},
        {"shape inference errors carry the location", test_infer_shapes_reports_location},
        {"clone is deep; fmnist param counts", test_clone_is_deep},
        {"epilogue fusion: which nodes fold into conv2d", test_fuse_epilogue_structure},
        {"epilogue fusion: fused and plain programs agree", test_fuse_epilogue_same_outputs},
        {"linear epilogues: batchnorm, clamp, eval dropout", test_fuse_linear_structure},
        {"elementwise runs: one loop, same bits as node by node", test_elem_runs_same_outputs},
        {"linear epilogues: fused and plain programs agree", test_fuse_linear_same_outputs},
        {"NHWC layout: which convs store channels-last", test_layout_nhwc_choice},
        {"NHWC layout: lowered and plain programs agree", test_layout_nhwc_same_outputs},
        {"block fusion: which convs become inverted_residual", test_fuse_block_structure},
        {"block fusion: fused (whole and banded) and plain programs agree", test_fuse_block_same_outputs},
        {"block fusion: odd, non-square sizes (stride 2, symmetric padding)", test_fuse_block_odd_sizes},
        CU_TEST_INFO_NULL,
    };
    return kt_main("passes", tests);
}

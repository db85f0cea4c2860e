/* test_optim.c — sgd_step / adam_step against torch.optim, through codegen.
 *
 * tests/golden/gen_optim.py ran torch.optim.SGD / Adam / AdamW for a few
 * steps on a linear layer's weight [3, 4] and bias [3] with fixed gradients
 * (tests/golden/optim/<case>/).  For each case this suite:
 *   1. parses a one-linear-layer model and adds the optimizer state values
 *      (KN_VAL_STATE, zero-initialised) the case needs;
 *   2. builds an update phase by hand: the model graph with its forward
 *      nodes dropped by DCE and one step node per parameter (the
 *      optimizer-lowering pass is tested elsewhere; this isolates the ops);
 *   3. emits the program with kn_emit_c_program (phases "infer" + "update"),
 *      renames its kn_rt_main to a driver appended here that loads the
 *      initial parameters, feeds each step's gradient into the gradient blob,
 *      calls the update phase with ctx->step = 1, 2, ... and prints the
 *      parameters; compiles and links it with libkiln_rt exactly as
 *      `kiln build` does (kt_toolchain);
 *   4. compares every step's parameters with PyTorch's:
 *      |got - want| <= 1e-6 * |want| + 1e-7, and checks the gradient blob
 *      was zeroed by every step.
 */
#define _GNU_SOURCE
#include "testlib.h"
#include "npy.h"

#include "codegen/codegen.h"
#include "frontend/frontend.h"
#include "ir/emit.h"
#include "ir/ops/op.h"
#include "passes/passes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REL_TOL 1e-6
#define ABS_TOL 1e-7

static const char *kModel = "model optim_case\ninput x: f32[N, 4]\nfc = linear(x, 3)\noutput fc\n";

typedef struct {
    char op[64];
    double lr, grad_scale;
    int steps;
    int n_attr;
    char attr_name[8][64];
    double attr_val[8];
} case_config;

static int read_config(const char *path, case_config *c)
{
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char key[64];
    char val[64];
    while (fscanf(f, "%63s %63s", key, val) == 2) {
        if (!strcmp(key, "op")) snprintf(c->op, sizeof c->op, "%s", val);
        else if (!strcmp(key, "lr")) c->lr = strtod(val, NULL);
        else if (!strcmp(key, "grad_scale")) c->grad_scale = strtod(val, NULL);
        else if (!strcmp(key, "steps")) c->steps = atoi(val);
        else if (c->n_attr < 8) {
            snprintf(c->attr_name[c->n_attr], sizeof c->attr_name[0], "%s", key);
            c->attr_val[c->n_attr++] = strtod(val, NULL);
        }
    }
    fclose(f);
    return c->op[0] && c->steps > 0 ? 0 : -1;
}

static double config_attr(const case_config *c, const char *name)
{
    for (int i = 0; i < c->n_attr; i++)
        if (!strcmp(c->attr_name[i], name)) return c->attr_val[i];
    return 0.0;
}

static int read_npy(const char *dir, const char *name, kn_npy *a)
{
    char path[4096], err[512];
    kt_pathf(path, sizeof path, "%s/%s.npy", dir, name);
    if (kn_npy_read(path, a, err, sizeof err) || a->dtype != KN_RT_F32) {
        printf("  cannot read %s: %s\n", path, err);
        return -1;
    }
    return 0;
}

static int add_state(kn_graph *g, int param, const char *slot)
{
    char name[256];
    snprintf(name, sizeof name, "optim.%s.%s", g->values[param]->name, slot);
    int id = kn_graph_add_value(g, name, KN_VAL_STATE, KN_F32, &g->values[param]->shape);
    g->values[id]->init = KN_INIT_ZEROS;
    return id;
}

/* Adds the step node of `param` (state ids in st[]) to the update graph. */
static kn_status add_step(kn_graph *g, const case_config *c, int param, const int *st, int n_st, kn_diag *d)
{
    bool adam = !strcmp(c->op, "adam");
    int in[3] = {param, st[0], st[1]};
    char name[256];
    snprintf(name, sizeof name, "%s.%s_step", g->values[param]->name, c->op);
    kn_node *n = kn_op_build(g, adam ? KN_OP_ADAM_STEP : KN_OP_SGD_STEP, name, in, 1 + n_st, 0, d);
    if (!n) return KN_ERR;
    for (int i = 0; i < c->n_attr; i++) {
        const char *k = c->attr_name[i];
        if (!strcmp(k, "nesterov") || !strcmp(k, "decoupled")) kn_node_set_attr_b(n, k, c->attr_val[i] != 0);
        else kn_node_set_attr_f(n, k, c->attr_val[i]);
    }
    return kn_op_finish(g, n, d);
}

static void emit_array(kn_strbuf *o, const char *name, const float *v, size_t count)
{
    kn_sb_printf(o, "static const float %s[%zu] = {", name, count);
    for (size_t i = 0; i < count; i++) {
        char lit[48];
        kn_emit_float_lit(v[i], lit, sizeof lit);
        kn_sb_printf(o, "%s%s%s", i % 6 ? "" : "\n    ", lit, i + 1 < count ? ", " : "");
    }
    kn_sb_puts(o, "\n};\n");
}

/* The driver replacing kn_rt_main in the generated program. */
static void emit_driver(kn_strbuf *o, const case_config *c, const kn_npy *w0, const kn_npy *b0, const kn_npy *gw,
                        const kn_npy *gb)
{
    char lr[48], gs[48];
    kn_emit_float_lit(c->lr, lr, sizeof lr);
    kn_emit_float_lit(c->grad_scale, gs, sizeof gs);
    kn_sb_puts(o, "\n/* ---- test driver appended by tests/test_optim.c ---- */\n"
                  "#include <stdio.h>\n#include <stdlib.h>\n");
    emit_array(o, "t_w0", w0->data, w0->numel);
    emit_array(o, "t_b0", b0->data, b0->numel);
    emit_array(o, "t_gw", gw->data, gw->numel);
    emit_array(o, "t_gb", gb->data, gb->numel);
    kn_sb_printf(o, "#define T_STEPS %d\n#define T_NW %zu\n#define T_NB %zu\n", c->steps, w0->numel, b0->numel);
    kn_sb_printf(o, "#define T_LR %s\n#define T_GRAD_SCALE %s\n", lr, gs);
    kn_sb_puts(o,
        "static size_t t_offset(const kn_rt_model *m, const char *name)\n"
        "{\n"
        "    for (int i = 0; i < m->n_params; i++)\n"
        "        if (!strcmp(m->params[i].name, name)) return m->params[i].offset;\n"
        "    fprintf(stderr, \"no parameter %s\\n\", name);\n"
        "    exit(2);\n"
        "}\n"
        "int kn_test_driver(const kn_rt_model *m, int argc, char **argv)\n"
        "{\n"
        "    (void)argc; (void)argv;\n"
        "    const kn_rt_phase *ph = &phase_update_desc;\n"
        "    float *w = calloc(m->weights_numel + 1, sizeof(float));\n"
        "    float *g = calloc(m->weights_numel + 1, sizeof(float));\n"
        "    unsigned char *arena = calloc(ph->arena_per_sample + ph->arena_fixed + 64, 1);\n"
        "    if (!w || !g || !arena) return 2;\n"
        "    const size_t ow = t_offset(m, \"fc.weight\"), ob = t_offset(m, \"fc.bias\");\n"
        "    memcpy(w + ow, t_w0, sizeof t_w0);\n"
        "    memcpy(w + ob, t_b0, sizeof t_b0);\n"
        "    kn_rt_ctx ctx;\n"
        "    memset(&ctx, 0, sizeof ctx);\n"
        "    ctx.arena = arena; ctx.capacity = 1; ctx.weights = w; ctx.grads = g;\n"
        "    ctx.lr = T_LR; ctx.grad_scale = T_GRAD_SCALE; ctx.training = 1;\n"
        "    for (int s = 0; s < T_STEPS; s++) {\n"
        "        memcpy(g + ow, t_gw + (size_t)s * T_NW, T_NW * sizeof(float));\n"
        "        memcpy(g + ob, t_gb + (size_t)s * T_NB, T_NB * sizeof(float));\n"
        "        ctx.step = (uint64_t)s + 1;\n"
        "        ph->run(&ctx, 1);\n"
        "        for (size_t i = 0; i < m->weights_numel; i++)\n"
        "            if (g[i] != 0.0f) { printf(\"gradient slot %zu not zeroed after step %d\\n\", i, s + 1); return 1; }\n"
        "        for (size_t i = 0; i < T_NW; i++) printf(\"%.9g\\n\", (double)w[ow + i]);\n"
        "        for (size_t i = 0; i < T_NB; i++) printf(\"%.9g\\n\", (double)w[ob + i]);\n"
        "    }\n"
        "    free(w); free(g); free(arena);\n"
        "    return 0;\n"
        "}\n");
}

/* Compares the driver's printed parameters with want_w/want_b; 0 when ok. */
static int compare(const char *cname, const char *out, const case_config *c, const kn_npy *ww, const kn_npy *wb)
{
    size_t nw = ww->numel / (size_t)c->steps, nb = wb->numel / (size_t)c->steps;
    const char *p = out;
    double max_abs = 0, max_rel = 0;
    for (int s = 0; s < c->steps; s++) {
        for (size_t i = 0; i < nw + nb; i++) {
            char *end;
            double got = strtod(p, &end);
            if (end == p) {
                printf("  %s: driver output ends early at step %d value %zu:\n%s\n", cname, s + 1, i, out);
                return 1;
            }
            p = end;
            double want = i < nw ? ((const float *)ww->data)[(size_t)s * nw + i]
                                 : ((const float *)wb->data)[(size_t)s * nb + (i - nw)];
            double a = fabs(got - want), r = a / fmax(fabs(want), 1e-30);
            if (a > max_abs) max_abs = a;
            if (r > max_rel) max_rel = r;
            if (!(a <= ABS_TOL + REL_TOL * fabs(want))) {
                printf("  %s: step %d, %s[%zu]: got %.9g, expected %.9g (abs err %.3g, rel err %.3g, "
                       "tolerance %g rel + %g abs)\n", cname, s + 1, i < nw ? "fc.weight" : "fc.bias",
                       i < nw ? i : i - nw, got, want, a, r, REL_TOL, ABS_TOL);
                return 1;
            }
        }
    }
    printf("  %s: ok over %d steps (max abs err %.3g, max rel err %.3g)\n", cname, c->steps, max_abs, max_rel);
    return 0;
}

/* Builds, runs and checks one case; returns the number of failures. */
static int run_case(const char *dir, const char *cname, const char *tmp)
{
    char cdir[4096], path[4096];
    kt_pathf(cdir, sizeof cdir, "%s/%s", dir, cname);
    kt_pathf(path, sizeof path, "%s/config.txt", cdir);
    case_config c;
    if (read_config(path, &c)) {
        printf("  %s: cannot read %s\n", cname, path);
        return 1;
    }
    kn_npy w0 = {0}, b0 = {0}, gw = {0}, gb = {0}, ww = {0}, wb = {0};
    int fails = 1;
    kn_graph *model = NULL, *infer = NULL, *upd = NULL;
    kn_memplan pi = {0}, pu = {0};
    kn_strbuf src;
    kn_sb_init(&src);
    kn_diag d;
    kn_diag_clear(&d);
    if (read_npy(cdir, "w0", &w0) || read_npy(cdir, "b0", &b0) || read_npy(cdir, "gw", &gw) ||
        read_npy(cdir, "gb", &gb) || read_npy(cdir, "want_w", &ww) || read_npy(cdir, "want_b", &wb))
        goto done;
    if (kn_parse_model_string(kModel, strlen(kModel), "optim_case.kiln", &model, &d) != KN_OK) goto fail;

    /* Optimizer state lives in the model graph so every phase sees it. */
    bool adam = !strcmp(c.op, "adam"), momentum = config_attr(&c, "momentum") != 0;
    int params[2] = {kn_graph_find_value(model, "fc.weight"), kn_graph_find_value(model, "fc.bias")};
    int st[2][2], n_st = adam ? 2 : momentum ? 1 : 0;
    for (int i = 0; i < 2; i++) {
        if (adam) {
            st[i][0] = add_state(model, params[i], "m");
            st[i][1] = add_state(model, params[i], "v");
        } else if (momentum) {
            st[i][0] = add_state(model, params[i], "momentum");
        }
    }
    infer = kn_graph_clone(model);
    if (kn_run_pipeline(infer, KN_MODE_EVAL, &d) != KN_OK || kn_plan_memory(infer, &pi, &d) != KN_OK) goto fail;

    upd = kn_graph_clone(model);
    upd->mode = KN_MODE_TRAIN;
    upd->n_outputs = 0; /* DCE then drops the forward nodes */
    upd->loss = -1;
    for (int i = 0; i < 2; i++)
        if (add_step(upd, &c, params[i], st[i], n_st, &d) != KN_OK) goto fail;
    if (kn_pass_dce(upd, &d) != KN_OK || kn_pass_infer_shapes(upd, &d) != KN_OK ||
        kn_plan_memory(upd, &pu, &d) != KN_OK)
        goto fail;

    kn_codegen_phase phases[] = {{"infer", infer, &pi}, {"update", upd, &pu}};
    kn_codegen_opts opts = {.model_hash = "test", .target = "cpu"};
    kn_sb_puts(&src, "#define kn_rt_main kn_test_driver /* tests/test_optim.c drives the update phase */\n");
    if (kn_emit_c_program(model, phases, 2, &opts, &src, &d) != KN_OK) goto fail;
    emit_driver(&src, &c, &w0, &b0, &gw, &gb);

    char c_path[4096], exe[4096];
    kt_pathf(c_path, sizeof c_path, "%s/%s.c", tmp, cname);
    kt_pathf(exe, sizeof exe, "%s/%s.exe", tmp, cname);
    CU_ASSERT_FATAL(kt_write_file(c_path, src.s, src.len) == 0);
    kn_toolchain tc;
    kt_toolchain(&tc);
    if (kn_build_executable(&tc, c_path, exe, &d) != KN_OK) goto fail;
    char *log = NULL;
    int rc = kt_run(&log, "'%s'", exe);
    if (rc != 0) printf("  %s: driver failed (status %d):\n%s\n", cname, rc, log ? log : "");
    else fails = compare(cname, log ? log : "", &c, &ww, &wb);
    free(log);
    goto done;
fail:
    printf("  %s: %s\n", cname, d.text);
done:
    kn_npy_free(&w0), kn_npy_free(&b0), kn_npy_free(&gw), kn_npy_free(&gb), kn_npy_free(&ww), kn_npy_free(&wb);
    if (model) kn_graph_free(model);
    if (infer) kn_graph_free(infer);
    if (upd) kn_graph_free(upd);
    kn_memplan_free(&pi);
    kn_memplan_free(&pu);
    kn_sb_free(&src);
    return fails;
}

static void test_against_torch(void)
{
    char dir[4096];
    kt_pathf(dir, sizeof dir, "%s/tests/golden/optim", kt_src_dir());
    char **names;
    int count = kt_list_cases(dir, "config.txt", &names);
    CU_ASSERT_FATAL(count > 0);
    char tmp[4096];
    kt_pathf(tmp, sizeof tmp, "%s", kt_tmp_dir("optim"));
    int failed = 0;
    for (int i = 0; i < count; i++) {
        printf("case %s\n", names[i]);
        if (run_case(dir, names[i], tmp)) {
            failed++;
            CU_FAIL("optimizer case failed (see output above)");
        }
        free(names[i]);
    }
    free(names);
    printf("optimizer cases: %d passed, %d failed\n", count - failed, failed);
    fflush(stdout);
}

/* The step ops' shape rules reject misuse with messages naming the problem. */
static void test_step_errors(void)
{
    kn_graph *g = NULL;
    kn_diag d;
    kn_diag_clear(&d);
    CU_ASSERT_FATAL(kn_parse_model_string(kModel, strlen(kModel), "t.kiln", &g, &d) == KN_OK);
    int w = kn_graph_find_value(g, "fc.weight"), b = kn_graph_find_value(g, "fc.bias");
    int buf = add_state(g, w, "momentum");

    kn_node *n = kn_op_build(g, KN_OP_SGD_STEP, "s1", &w, 1, 0, &d);
    kn_node_set_attr_f(n, "momentum", 0.9);
    CU_ASSERT(kn_op_finish(g, n, &d) == KN_ERR);
    KT_ASSERT_CONTAINS(d.text, "needs a momentum buffer");

    int in[2] = {w, buf};
    kn_diag_clear(&d);
    n = kn_op_build(g, KN_OP_SGD_STEP, "s2", in, 2, 0, &d);
    kn_node_set_attr_f(n, "momentum", 0.9);
    kn_node_set_attr_f(n, "dampening", 0.1);
    kn_node_set_attr_b(n, "nesterov", true);
    CU_ASSERT(kn_op_finish(g, n, &d) == KN_ERR);
    KT_ASSERT_CONTAINS(d.text, "nesterov momentum requires");

    int bad[2] = {b, buf}; /* state shaped like the weight, not the bias */
    kn_diag_clear(&d);
    n = kn_op_build(g, KN_OP_SGD_STEP, "s3", bad, 2, 0, &d);
    kn_node_set_attr_f(n, "momentum", 0.9);
    CU_ASSERT(kn_op_finish(g, n, &d) == KN_ERR);
    KT_ASSERT_CONTAINS(d.text, "must be optimizer state shaped like parameter 'fc.bias'");

    int ad[3] = {w, buf, w};
    kn_diag_clear(&d);
    n = kn_op_build(g, KN_OP_ADAM_STEP, "a1", ad, 3, 0, &d);
    CU_ASSERT(kn_op_finish(g, n, &d) == KN_ERR);
    KT_ASSERT_CONTAINS(d.text, "second moment 'fc.weight'");

    kn_diag_clear(&d);
    n = kn_op_build(g, KN_OP_SGD_STEP, "s4", &w, 1, 1, &d); /* as a model file would build it */
    CU_ASSERT(kn_op_finish(g, n, &d) == KN_ERR);
    KT_ASSERT_CONTAINS(d.text, "has no outputs");
    kn_graph_free(g);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"sgd_step / adam_step match torch.optim", test_against_torch},
        {"step ops reject bad inputs", test_step_errors},
        CU_TEST_INFO_NULL,
    };
    return kt_main("optim", tests);
}

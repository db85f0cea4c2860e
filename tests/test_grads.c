/* test_grads.c — every gradient rule against PyTorch and finite differences.
 *
 * tests/golden/gen_grads.py wrote one folder per case under
 * tests/golden/grads/: a one-op model.kiln whose output is y, its inputs,
 * weights.safetensors, the upstream gradient dy.npy and PyTorch's y, input
 * and parameter gradients and updated buffers for L = sum(y * dy).
 *
 * Independently of the autodiff pass, each case is compiled in-process:
 * parse the model, set train mode (eval when the folder has `eval`), call
 * the op's gradient rule with dy as an extra graph input, expose each
 * gradient (and each buffer, read after the forward node updated it) as a
 * graph output through an identity node named "grad.<name>" /
 * "after.<name>", run the phase passes (without autodiff), emit C with kn_emit_c_program,
 * build with kn_build_executable and run `EXE run`.  Checks:
 *   1. y, gradients, buffers vs PyTorch: |got - want| <= 1e-5 + 1e-4 |want|.
 *   2. central finite differences of kiln's own forward (f32, eps 1e-3) on a
 *      few elements of every differentiated tensor, L evaluated in double:
 *      |fd - grad| <= 1e-2 * max(|fd|, |grad|) + 2e-3.
 *   3. dropout (train): dropped fraction within 0.1 of p, kept values are
 *      x / (1 - p), and the backward mask is the forward mask.
 * A failure prints the case, the tensor, the flat index, both values and
 * the max abs/rel error.
 */
#define _GNU_SOURCE
#include "testlib.h"
#include "npy.h"
#include "kn_safetensors.h"
#include "codegen/codegen.h"
#include "frontend/frontend.h"
#include "ir/ops/op.h"
#include "passes/passes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ABS_TOL 1e-5
#define REL_TOL 1e-4
#define FD_EPS 1e-3
#define FD_REL 1e-2
#define FD_ABS 2e-3
#define FD_SAMPLES 4
#define MAX_T 16

/* ---- one case ---- */

typedef struct {
    char name[128];     /* value name: "x", "y.weight", "y.running_mean" */
    int vid;
    bool is_param;      /* lives in weights.safetensors */
    bool is_buffer;     /* compared after the step, not differentiated */
} tensor_ref;

typedef struct {
    const char *dir;    /* case folder */
    const char *cname;
    char exe[4096], out[4096];
    char in_names[MAX_T][128];
    int n_in;
    tensor_ref t[MAX_T];
    int n_t;
    bool has_weights;
    double dropout_p;   /* < 0: not a dropout case */
} gcase;

/* Identity copy of `vid` (flatten over the last dim) named `name`, exposed
 * as a graph output so `EXE run` writes it. */
static kn_status expose(kn_graph *g, int vid, const char *name, kn_diag *d)
{
    kn_node *c = kn_graph_add_node(g, KN_OP_FLATTEN, name, &vid, 1, 1);
    kn_node_set_attr_i(c, "start_dim", -1);
    kn_node_set_attr_i(c, "end_dim", -1);
    if (kn_op_finish(g, c, d) != KN_OK) return KN_ERR;
    if (g->n_outputs >= 16) return kn_diag_fail(d, "too many outputs");
    g->outputs[g->n_outputs++] = c->out[0];
    return KN_OK;
}

/* Parses the case, appends gradient nodes, compiles and builds. */
static int build_case(gcase *c, const char *tmp, const kn_toolchain *tc)
{
    char path[4096];
    kn_diag d;
    kn_diag_clear(&d);
    kn_graph *g = NULL;
    kt_pathf(path, sizeof path, "%s/%s/model.kiln", c->dir, c->cname);
    if (kn_parse_model_file(path, &g, &d) != KN_OK) {
        printf("  %s: parse failed: %s\n", c->cname, d.text);
        return 1;
    }
    kt_pathf(path, sizeof path, "%s/%s/eval", c->dir, c->cname);
    kn_mode mode = kt_file_exists(path) ? KN_MODE_EVAL : KN_MODE_TRAIN;
    g->mode = mode;
    int y = g->outputs[0];
    const kn_node *fwd = g->nodes[g->values[y]->producer];
    for (int i = 0; i < g->n_values; i++) {
        const kn_value *v = g->values[i];
        if ((v->kind == KN_VAL_INPUT || v->kind == KN_VAL_LABEL) && c->n_in < MAX_T)
            kt_pathf(c->in_names[c->n_in++], 128, "%s", v->name);
    }
    /* .npy scalars come back as [1]: a scalar dy is fed as f32[1]. */
    kn_shape dys_shape = g->values[y]->shape;
    if (dys_shape.rank == 0) dys_shape = (kn_shape){.rank = 1, .d = {1}};
    int dy = kn_graph_add_value(g, "dy", KN_VAL_INPUT, KN_F32, &dys_shape);
    kt_pathf(c->in_names[c->n_in++], 128, "dy");

    bool need[8] = {false};
    int dx[8];
    for (int i = 0; i < fwd->n_in; i++) {
        const kn_value *v = g->values[fwd->in[i]];
        need[i] = v->dtype == KN_F32 && (v->kind == KN_VAL_INPUT || (v->kind == KN_VAL_PARAM && v->trainable));
        c->has_weights |= v->kind == KN_VAL_PARAM || v->kind == KN_VAL_BUFFER;
    }
    c->dropout_p = fwd->op == KN_OP_DROPOUT ? kn_node_attr_f(fwd, "p", 0.5) : -1.0;
    int dys[1] = {dy};
    int fwd_in[8], n_fwd_in = fwd->n_in;
    memcpy(fwd_in, fwd->in, sizeof(int) * (size_t)n_fwd_in);
    if (kn_op_get(fwd->op)->grad(g, fwd, dys, need, dx, &d) != KN_OK) {
        printf("  %s: gradient rule failed: %s\n", c->cname, d.text);
        kn_graph_free(g);
        return 1;
    }
    for (int i = 0; i < n_fwd_in && !d.set; i++) {
        kn_value *v = g->values[fwd_in[i]];
        tensor_ref *t = &c->t[c->n_t];
        char cname[160];
        if (v->kind == KN_VAL_BUFFER) {
            kt_pathf(cname, sizeof cname, "after.%s", v->name);
            if (expose(g, fwd_in[i], cname, &d) != KN_OK) break;
            t->is_buffer = true;
        } else if (need[i]) {
            if (dx[i] < 0) {
                printf("  %s: no gradient for '%s'\n", c->cname, v->name);
                kn_graph_free(g);
                return 1;
            }
            kt_pathf(cname, sizeof cname, "grad.%s", v->name);
            if (expose(g, dx[i], cname, &d) != KN_OK) break;
            t->is_buffer = false;
        } else {
            if (dx[i] >= 0) printf("  %s: unexpected gradient for '%s'\n", c->cname, v->name);
            continue;
        }
        kt_pathf(t->name, sizeof t->name, "%s", v->name);
        t->vid = fwd_in[i];
        t->is_param = v->kind == KN_VAL_PARAM || v->kind == KN_VAL_BUFFER;
        c->n_t++;
    }
    kn_memplan plan;
    memset(&plan, 0, sizeof plan);
    kn_strbuf src;
    kn_sb_init(&src);
    int bad = d.set;
    /* The phase pipeline minus autodiff (this test calls one rule itself). */
    g->mode = mode;
    if (!bad && (kn_pass_infer_shapes(g, &d) != KN_OK || kn_pass_dce(g, &d) != KN_OK ||
                 kn_pass_infer_shapes(g, &d) != KN_OK))
        bad = 1;
    if (!bad && kn_plan_memory(g, &plan, &d) != KN_OK) bad = 1;
    kn_codegen_phase ph = {"infer", g, &plan};
    kn_codegen_opts opts = {.model_hash = "test", .target = "cpu"};
    if (!bad && kn_emit_c_program(g, &ph, 1, &opts, &src, &d) != KN_OK) bad = 1;
    kt_pathf(path, sizeof path, "%s/%s.c", tmp, c->cname);
    if (!bad && kt_write_file(path, src.s, src.len) != 0) bad = 1;
    kt_pathf(c->exe, sizeof c->exe, "%s/%s.exe", tmp, c->cname);
    kt_pathf(c->out, sizeof c->out, "%s/%s.out", tmp, c->cname);
    if (!bad && kn_build_executable(tc, path, c->exe, &d) != KN_OK) bad = 1;
    if (bad) printf("  %s: compile failed: %s\n", c->cname, d.text);
    kn_sb_free(&src);
    kn_memplan_free(&plan);
    kn_graph_free(g);
    return bad;
}

/* Runs the executable; `override` (may be NULL) replaces the file of one
 * input ("x") or, when it ends in .safetensors, the weights. */
static int run_exe(const gcase *c, const char *outdir, const char *over_name, const char *over_file)
{
    kn_strbuf cmd;
    kn_sb_init(&cmd);
    kn_sb_printf(&cmd, "'%s' run --out '%s'", c->exe, outdir);
    if (over_name && !strcmp(over_name, "@weights")) kn_sb_printf(&cmd, " --weights '%s'", over_file);
    else if (c->has_weights) kn_sb_printf(&cmd, " --weights '%s/%s/weights.safetensors'", c->dir, c->cname);
    for (int i = 0; i < c->n_in; i++) {
        if (over_name && !strcmp(over_name, c->in_names[i]))
            kn_sb_printf(&cmd, " --in '%s=%s'", c->in_names[i], over_file);
        else
            kn_sb_printf(&cmd, " --in '%s=%s/%s/%s.npy'", c->in_names[i], c->dir, c->cname, c->in_names[i]);
    }
    char *log = NULL;
    int rc = kt_run(&log, "%s", cmd.s);
    if (rc != 0) printf("  %s: run failed (status %d): %s\n%s\n", c->cname, rc, cmd.s, log ? log : "");
    free(log);
    kn_sb_free(&cmd);
    return rc;
}

static int read_npy(const char *path, kn_npy *a)
{
    char err[1024];
    memset(a, 0, sizeof *a);
    if (kn_npy_read(path, a, err, sizeof err)) {
        printf("  %s\n", err);
        return 1;
    }
    return 0;
}

/* L = sum(y * dy) in double from a run's output folder. */
static int loss_of(const gcase *c, const char *outdir, double *L)
{
    char p[4096];
    kn_npy y, dy;
    kt_pathf(p, sizeof p, "%s/y.npy", outdir);
    if (kt_file_exists(p) == 0) kt_pathf(p, sizeof p, "%s/loss.npy", outdir);
    if (read_npy(p, &y)) return 1;
    kt_pathf(p, sizeof p, "%s/%s/dy.npy", c->dir, c->cname);
    if (read_npy(p, &dy)) {
        kn_npy_free(&y);
        return 1;
    }
    double s = 0;
    for (size_t i = 0; i < y.numel && i < dy.numel; i++) s += (double)((float *)y.data)[i] * ((float *)dy.data)[i];
    *L = s;
    kn_npy_free(&y);
    kn_npy_free(&dy);
    return 0;
}

/* Central differences on FD_SAMPLES elements of tensor t. */
static int check_fd(const gcase *c, const tensor_ref *t, const char *tmp)
{
    char src[4096], pert[4096], outdir[4096], gpath[4096];
    kn_npy grad;
    kt_pathf(gpath, sizeof gpath, "%s/grad.%s.npy", c->out, t->name);
    if (read_npy(gpath, &grad)) return 1;
    kn_st_file wf;
    kn_npy arr;
    memset(&wf, 0, sizeof wf);
    memset(&arr, 0, sizeof arr);
    char err[1024];
    float *data = NULL;
    size_t numel = 0;
    kn_st_tensor *st = NULL;
    if (t->is_param) {
        kt_pathf(src, sizeof src, "%s/%s/weights.safetensors", c->dir, c->cname);
        if (kn_st_read(src, &wf, err, sizeof err)) {
            printf("  %s\n", err);
            kn_npy_free(&grad);
            return 1;
        }
        for (int i = 0; i < wf.n; i++)
            if (!strcmp(wf.t[i].name, t->name)) st = &wf.t[i];
        CU_ASSERT_PTR_NOT_NULL_FATAL(st);
        data = st->data;
        numel = st->numel;
        kt_pathf(pert, sizeof pert, "%s/%s.pert.safetensors", tmp, c->cname);
    } else {
        kt_pathf(src, sizeof src, "%s/%s/%s.npy", c->dir, c->cname, t->name);
        if (read_npy(src, &arr)) {
            kn_npy_free(&grad);
            return 1;
        }
        data = arr.data;
        numel = arr.numel;
        kt_pathf(pert, sizeof pert, "%s/%s.pert.npy", tmp, c->cname);
    }
    kt_pathf(outdir, sizeof outdir, "%s/%s.fd", tmp, c->cname);
    int bad = 0;
    double worst = 0;
    for (int s = 0; s < FD_SAMPLES && !bad; s++) {
        size_t k = (size_t)((s * 2654435761u + 7u) % numel);
        if (s == 0) k = 0;
        if (s == 1) k = numel - 1;
        float orig = data[k];
        double L[2];
        for (int side = 0; side < 2 && !bad; side++) {
            data[k] = (float)(orig + (side ? -FD_EPS : FD_EPS));
            int wr = t->is_param ? kn_st_write(pert, wf.t, wf.n, NULL, NULL, 0, err, sizeof err)
                                 : kn_npy_write(pert, arr.dtype, arr.rank, arr.dims, arr.data, err, sizeof err);
            if (wr) {
                printf("  %s\n", err);
                bad = 1;
            } else if (run_exe(c, outdir, t->is_param ? "@weights" : t->name, pert) ||
                       loss_of(c, outdir, &L[side])) {
                bad = 1;
            }
        }
        double h = (double)(float)(orig + FD_EPS) - (double)(float)(orig - FD_EPS);
        data[k] = orig;
        if (bad) break;
        double fd = (L[0] - L[1]) / h, gk = ((float *)grad.data)[k];
        double err_k = fabs(fd - gk), lim = FD_REL * fmax(fabs(fd), fabs(gk)) + FD_ABS;
        if (err_k > worst) worst = err_k;
        if (!(err_k <= lim)) {
            printf("  %s/%s: finite difference at %zu: %.6g, gradient %.6g (eps %g, limit %.3g)\n",
                   c->cname, t->name, k, fd, gk, FD_EPS, lim);
            bad = 1;
        }
    }
    if (!bad) printf("  %s/%s: ok vs finite differences (%d samples, max abs err %.3g)\n", c->cname,
                     t->name, FD_SAMPLES, worst);
    kn_npy_free(&grad);
    kn_npy_free(&arr);
    if (t->is_param) kn_st_free(&wf);
    return bad;
}

/* Dropout: mask fraction, scaling, same mask forward and backward. */
static int check_dropout(const gcase *c)
{
    char p[4096];
    kn_npy x, y, dy, dx;
    double p_drop = c->dropout_p, s = 1.0 / (1.0 - p_drop);
    kt_pathf(p, sizeof p, "%s/%s/x.npy", c->dir, c->cname);
    if (read_npy(p, &x)) return 1;
    kt_pathf(p, sizeof p, "%s/%s/dy.npy", c->dir, c->cname);
    if (read_npy(p, &dy)) return 1;
    kt_pathf(p, sizeof p, "%s/y.npy", c->out);
    if (read_npy(p, &y)) return 1;
    kt_pathf(p, sizeof p, "%s/grad.x.npy", c->out);
    if (read_npy(p, &dx)) return 1;
    const float *X = x.data, *Y = y.data, *DY = dy.data, *DX = dx.data;
    size_t dropped = 0;
    int bad = 0;
    for (size_t i = 0; i < x.numel && !bad; i++) {
        bool kept = Y[i] != 0.0f; /* inputs are kept away from 0 */
        dropped += !kept;
        double want_y = kept ? X[i] * s : 0.0, want_dx = kept ? DY[i] * s : 0.0;
        if (fabs(Y[i] - want_y) > 1e-6 * fabs(want_y) + 1e-7 || fabs(DX[i] - want_dx) > 1e-6 * fabs(want_dx) + 1e-7) {
            printf("  %s: index %zu: x %.7g y %.7g dy %.7g dx %.7g (scale %.7g)\n", c->cname, i, X[i], Y[i],
                   DY[i], DX[i], s);
            bad = 1;
        }
    }
    double frac = (double)dropped / (double)x.numel;
    printf("  %s: dropped %zu of %zu (%.3f, p = %.2f)\n", c->cname, dropped, x.numel, frac, p_drop);
    if (fabs(frac - p_drop) > 0.1) bad = 1;
    kn_npy_free(&x);
    kn_npy_free(&y);
    kn_npy_free(&dy);
    kn_npy_free(&dx);
    return bad;
}

static int run_case(const char *dir, const char *cname, const char *tmp, const kn_toolchain *tc)
{
    gcase c;
    memset(&c, 0, sizeof c);
    c.dir = dir;
    c.cname = cname;
    if (build_case(&c, tmp, tc)) return 1;
    if (run_exe(&c, c.out, NULL, NULL)) return 1;
    if (c.dropout_p >= 0) {
        int bad = check_dropout(&c);
        for (int i = 0; i < c.n_t; i++)
            if (!c.t[i].is_buffer) bad += check_fd(&c, &c.t[i], tmp);
        return bad;
    }
    char want[4096], got[4096];
    int bad = 0;
    kt_pathf(want, sizeof want, "%s/%s/y.npy", dir, cname);
    kt_pathf(got, sizeof got, "%s/y.npy", c.out);
    if (!kt_file_exists(got)) kt_pathf(got, sizeof got, "%s/loss.npy", c.out);
    bad += kt_compare_npy(cname, "y", want, got, ABS_TOL, REL_TOL);
    for (int i = 0; i < c.n_t; i++) {
        const tensor_ref *t = &c.t[i];
        char what[160];
        if (t->is_buffer) {
            kt_pathf(want, sizeof want, "%s/%s/%s.npy", dir, cname, t->name);
            kt_pathf(got, sizeof got, "%s/after.%s.npy", c.out, t->name);
            kt_pathf(what, sizeof what, "%s (after the step)", t->name);
        } else {
            kt_pathf(want, sizeof want, "%s/%s/%s.grad.npy", dir, cname, t->name);
            kt_pathf(got, sizeof got, "%s/grad.%s.npy", c.out, t->name);
            kt_pathf(what, sizeof what, "d%s", t->name);
        }
        bad += kt_compare_npy(cname, what, want, got, ABS_TOL, REL_TOL);
        if (!t->is_buffer) bad += check_fd(&c, t, tmp);
    }
    return bad;
}

static void test_all_cases(void)
{
    kn_toolchain tc;
    kt_toolchain(&tc);
    char dir[4096];
    kt_pathf(dir, sizeof dir, "%s/tests/golden/grads", kt_src_dir());
    char **names;
    int count = kt_list_cases(dir, "model.kiln", &names);
    CU_ASSERT_FATAL(count > 0);
    char tmp[4096];
    kt_pathf(tmp, sizeof tmp, "%s", kt_tmp_dir("grads"));
    int failed = 0;
    for (int i = 0; i < count; i++) {
        printf("case %s\n", names[i]);
        if (run_case(dir, names[i], tmp, &tc)) {
            failed++;
            CU_FAIL("gradient case failed (see output above)");
        }
        free(names[i]);
    }
    free(names);
    printf("gradient cases: %d passed, %d failed\n", count - failed, failed);
    fflush(stdout);
}

/* Frozen parameters and labels get no gradient and no backward work. */
static void test_need_false(void)
{
    const char *src = "model m\ninput x: f32[N, 4]\nlabel t: i64[N]\nh = linear(x, 3)\n"
                      "loss = cross_entropy(h, t)\noutput loss\n";
    kn_graph *g = NULL;
    kn_diag d;
    kn_diag_clear(&d);
    CU_ASSERT_EQUAL_FATAL(kn_parse_model_string(src, strlen(src), "m.kiln", &g, &d), KN_OK);
    g->mode = KN_MODE_TRAIN;
    const kn_node *lin = g->nodes[0];
    int dy = kn_graph_add_value(g, "dy", KN_VAL_INPUT, KN_F32, &g->values[lin->out[0]]->shape);
    bool need[3] = {true, false, false};
    int dx[3] = {0, 0, 0};
    int before = g->n_nodes;
    CU_ASSERT_EQUAL(kn_op_get(KN_OP_LINEAR)->grad(g, lin, &dy, need, dx, &d), KN_OK);
    CU_ASSERT_TRUE(dx[0] >= 0);
    CU_ASSERT_EQUAL(dx[1], -1);
    CU_ASSERT_EQUAL(dx[2], -1);
    CU_ASSERT_EQUAL(g->n_nodes, before + 1); /* only dx = dy W */
    const kn_node *ce = g->nodes[1];
    int dl = kn_graph_add_value(g, "dl", KN_VAL_INPUT, KN_F32, &g->values[ce->out[0]]->shape);
    bool need2[2] = {true, true};
    int dx2[2] = {0, 0};
    CU_ASSERT_EQUAL(kn_op_get(KN_OP_CROSS_ENTROPY)->grad(g, ce, &dl, need2, dx2, &d), KN_OK);
    CU_ASSERT_TRUE(dx2[0] >= 0);
    CU_ASSERT_EQUAL(dx2[1], -1); /* class indices */
    CU_ASSERT_PTR_NULL(kn_op_get(KN_OP_ARGMAX)->grad);
    CU_ASSERT_EQUAL(kn_op_lookup("relu_grad"), -1); /* backward ops are internal */
    kn_graph_free(g);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"need[i] false builds no gradient", test_need_false},
        {"every gradient case matches PyTorch and finite differences", test_all_cases},
        CU_TEST_INFO_NULL,
    };
    return kt_main("grads", tests);
}

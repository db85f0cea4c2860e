/* export.c — `kiln export MODEL [--set P=V] [--weights CKPT] -o OUT.onnx`.
 *
 * Compiles MODEL's inference phase (kn_cli_compile's c->infer) and hands it
 * to kn_onnx_export with a weight source: the checkpoint's tensor of the
 * same name when CKPT is given (dtype and shape checked), else the values
 * the model carries (imported ONNX initializers, zeros/ones buffers).
 * Randomly initialised parameters have no values before training, so a
 * model trained by kiln needs --weights; the error says so.
 */
#define _GNU_SOURCE
#include "export.h"
#include "compile.h"
#include "kn_safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *ckpt;  /* NULL without --weights */
    kn_st_file st;
    void **fills;      /* zeros/ones buffers made here */
    int n_fills;
} ex_weights;

static const char *const USAGE =
    "usage: kiln export MODEL [--set P=V]... [--weights CKPT] -o OUT.onnx\n\n"
    "Writes MODEL's inference graph (eval mode: batchnorm with running statistics, dropout as Identity;\n"
    "no loss, labels or gradients) as an ONNX model (opset 17, IR version 8) with the batch dim as \"N\".\n"
    "  --weights CKPT  parameters and buffers from this safetensors checkpoint (EXE train --save);\n"
    "                  without it, the values the model carries (imported ONNX initializers);\n"
    "                  randomly initialised parameters then need --weights\n"
    "  -o OUT.onnx     output file (written to a temp file, then renamed)\n"
    "  --set P=V       override the model file's `param P = default` (repeatable)\n";

static bool same_shape(const kn_st_tensor *t, const kn_value *v)
{
    if (t->rank != v->shape.rank || (int)t->dtype != (int)v->dtype) return false;
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] != v->shape.d[i]) return false;
    return true;
}

static const void *from_checkpoint(ex_weights *w, const kn_value *v, kn_diag *d)
{
    const kn_st_tensor *t = kn_st_find(&w->st, v->name);
    if (!t) return NULL;
    if (same_shape(t, v)) return t->data;
    char have[96], want[96];
    kn_st_shape_str(t->dtype, t->rank, t->dims, have, sizeof have);
    kn_shape_format(v->dtype, &v->shape, want, sizeof want);
    kn_diag_fail(d, "%s: tensor '%s' is %s, the model needs %s", w->ckpt, v->name, have, want);
    return NULL;
}

/* zeros/ones initial values, or NULL for an init that needs the runtime's RNG. */
static const void *constant_init(ex_weights *w, const kn_value *v)
{
    int64_t numel;
    if (v->dtype != KN_F32 || (v->init != KN_INIT_ZEROS && v->init != KN_INIT_ONES) ||
        !kn_shape_numel(&v->shape, 1, &numel))
        return NULL;
    float *p = kn_xmalloc(sizeof(float) * (size_t)(numel ? numel : 1));
    for (int64_t i = 0; i < numel; i++) p[i] = v->init == KN_INIT_ONES ? 1.0f : 0.0f;
    w->fills = kn_xrealloc(w->fills, sizeof *w->fills * (size_t)(w->n_fills + 1));
    return w->fills[w->n_fills++] = p;
}

static const void *weights_of(void *ctx, const kn_value *v, kn_diag *d)
{
    ex_weights *w = ctx;
    char want[96];
    kn_shape_format(v->dtype, &v->shape, want, sizeof want);
    if (w->ckpt) {
        const void *p = from_checkpoint(w, v, d);
        if (p || d->text[0]) return p;
        if (v->init == KN_INIT_DATA && v->data) return v->data;
        kn_diag_fail(d, "%s: checkpoint has no tensor '%s' (%s)", w->ckpt, v->name, want);
        return NULL;
    }
    if (v->init == KN_INIT_DATA && v->data) return v->data;
    const void *p = constant_init(w, v);
    if (!p)
        kn_diag_fail(d, "parameter '%s' (%s) has no values before training (random init): "
                     "pass --weights CKPT (a checkpoint from EXE train --save)", v->name, want);
    return p;
}

static void weights_free(ex_weights *w)
{
    if (w->ckpt) kn_st_free(&w->st);
    for (int i = 0; i < w->n_fills; i++) free(w->fills[i]);
    free(w->fills);
}

static int fail(const kn_diag *d)
{
    fprintf(stderr, "kiln: export: %s\n", d->text[0] ? d->text : "failed");
    return 1;
}

typedef struct {
    const char *model, *ckpt, *out;
    const char *sets[64];
    int n_sets;
} ex_args;

/* 0 ok, 2 usage error (printed), -1 --help printed. */
static int parse_args(int argc, char **argv, ex_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) return fputs(USAGE, stdout), -1;
        if (!strcmp(s, "-o") || !strcmp(s, "--weights") || !strcmp(s, "--set")) {
            if (i + 1 >= argc) return fprintf(stderr, "kiln: export: %s needs a value\nTry 'kiln export --help'.\n", s), 2;
            const char *v = argv[++i];
            if (!strcmp(s, "-o")) a->out = v;
            else if (!strcmp(s, "--weights")) a->ckpt = v;
            else if (a->n_sets < 64 && strchr(v, '=') && v[0] != '=') a->sets[a->n_sets++] = v;
            else return fprintf(stderr, "kiln: export: --set '%s': expected NAME=VALUE\n", v), 2;
        } else if (s[0] == '-') {
            return fprintf(stderr, "kiln: export: unknown option '%s'\nTry 'kiln export --help'.\n", s), 2;
        } else if (!a->model) {
            a->model = s;
        } else {
            return fprintf(stderr, "kiln: export: unexpected argument '%s'\n", s), 2;
        }
    }
    if (!a->model || !a->out)
        return fprintf(stderr, "kiln: export: expected MODEL and -o OUT.onnx\nTry 'kiln export --help'.\n"), 2;
    return 0;
}

int kn_cli_export(int argc, char **argv)
{
    ex_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    kn_diag d;
    kn_diag_clear(&d);
    ex_weights w = {.ckpt = a.ckpt};
    char err[1024];
    if (a.ckpt && kn_st_read(a.ckpt, &w.st, err, sizeof err) != 0) {
        fprintf(stderr, "kiln: export: %s\n", err);
        return 1;
    }
    kn_frontend_opts fo;
    kn_cli_frontend_opts(&fo, a.sets, a.n_sets);
    kn_compiled c;
    kn_status st = kn_cli_compile(a.model, &fo, false, &c, &d);
    if (st == KN_OK) st = kn_onnx_export(c.infer, weights_of, &w, a.out, &d);
    kn_cli_compiled_free(&c);
    weights_free(&w);
    if (st != KN_OK) return fail(&d);
    fprintf(stderr, "kiln: exported %s to %s (ONNX opset %d)\n", a.model, a.out, KN_ONNX_EXPORT_OPSET);
    return 0;
}

/* kn_rt_cmd_predict.c — `predict`: top-K softmax probabilities for test
 * images (--index), .npy files holding one preprocessed input sample, or
 * (image models: data kind image_folder or imagenet) JPEG/PNG files run
 * through the model's resize/crop/normalize. */
#include "kn_image.h"
#include "kn_rt_arena.h"
#include "kn_rt_cli.h"
#include "kn_rt_err.h"
#include "kn_rt_opt.h"
#include "kn_safetensors.h"
#include "npy.h"

#include <math.h>
#include <stdlib.h>

static const char HELP[] =
    "usage: predict [--weights CKPT] [--top K] [--data DIR] [--seed S] [--device cpu|cuda] [--json]\n"
    "               (--index I... | FILE.npy... | IMAGE...)\n"
    "  --index I   index into the test split (repeatable; also I,J,K or I J K)\n"
    "  FILE.npy    one sample of the model's input, already normalised (f32)\n"
    "  IMAGE       image models: a JPEG or PNG, resized, cropped and normalised as\n"
    "              the model says; labels from the model's labels file (under the\n"
    "              data root) or, for image folders, the class folder names\n"
    "  --top K     classes to show (default 5)\n"
    "  --weights   safetensors checkpoint (default: fresh init from --seed)\n";

typedef struct {
    int cls;
    double p;
} scored;

static int by_prob(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->cls - y->cls;
}

/* Prints one prediction from the logits at the output. */
/* Class names for reports: a labels file, image-folder classes, or NULL
 * (the dataset kind's names). */
typedef struct {
    char **v;
    int n;
} names;

static const char *label(const kn_cli *c, const names *nm, int cls, char *buf, size_t cap)
{
    if (nm->v && cls < nm->n) return nm->v[cls];
    return kn_data_class_name(c->m->data_kind, cls, buf, cap);
}

static void report(const kn_cli *c, const names *nm, const float *logits, int classes, int top, long index,
                   const char *file, int truth)
{
    scored *s = malloc(sizeof *s * (size_t)classes);
    double mx = logits[0], sum = 0;
    for (int i = 1; i < classes; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < classes; i++) sum += (s[i].p = exp((double)logits[i] - mx));
    for (int i = 0; i < classes; i++) {
        s[i].p /= sum;
        s[i].cls = i;
    }
    qsort(s, (size_t)classes, sizeof *s, by_prob);
    char nb[32];
    if (file) fprintf(c->out, "%s:", file);
    else fprintf(c->out, "test[%ld] (true %s):", index, label(c, nm, truth, nb, sizeof nb));
    for (int i = 0; i < top; i++)
        fprintf(c->out, "%s %s %.4f", i ? "," : "", label(c, nm, s[i].cls, nb, sizeof nb), s[i].p);
    fputc('\n', c->out);
    if (c->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "event", "predict");
        if (file) cJSON_AddStringToObject(j, "file", file);
        else {
            cJSON_AddNumberToObject(j, "index", (double)index);
            cJSON_AddStringToObject(j, "true_label", label(c, nm, truth, nb, sizeof nb));
        }
        cJSON *arr = cJSON_AddArrayToObject(j, "top");
        for (int i = 0; i < top; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "label", label(c, nm, s[i].cls, nb, sizeof nb));
            cJSON_AddNumberToObject(e, "index", s[i].cls);
            cJSON_AddNumberToObject(e, "prob", s[i].p);
            cJSON_AddItemToArray(arr, e);
        }
        kn_cli_json(j);
    }
    free(s);
}

/* --index values may be lists ("3,4") and bare integers among positionals. */
static int collect_indices(const kn_cli *c, const kn_opt_list *idx, const kn_opt_list *pos,
                           long *out, int *n, const char **files, int *nf)
{
    *n = *nf = 0;
    for (int i = 0; i < idx->n; i++) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", idx->v[i]);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            long long v;
            if (kn_opt_int(t, &v) || v < 0) return kn_cli_usage(c, "--index '%s': expected an integer >= 0", t);
            if (*n == KN_OPT_LIST_MAX * 4) return kn_cli_usage(c, "--index: too many indices");
            out[(*n)++] = (long)v;
        }
    }
    for (int i = 0; i < pos->n; i++) {
        long long v;
        if (!kn_opt_int(pos->v[i], &v) && idx->n > 0) {
            if (v < 0) return kn_cli_usage(c, "--index '%s': expected an integer >= 0", pos->v[i]);
            if (*n == KN_OPT_LIST_MAX * 4) return kn_cli_usage(c, "--index: too many indices");
            out[(*n)++] = (long)v;
        } else {
            files[(*nf)++] = pos->v[i];
        }
    }
    if (*n == 0 && *nf == 0) return kn_cli_usage(c, "nothing to predict: give --index I or FILE.npy");
    return 0;
}

static void names_free(names *nm)
{
    for (int i = 0; i < nm->n; i++) free(nm->v[i]);
    free(nm->v);
    nm->v = NULL;
    nm->n = 0;
}

static int is_image_model(const kn_rt_model *m)
{
    return m->data_kind && (!strcmp(m->data_kind, "image_folder") || !strcmp(m->data_kind, "imagenet"));
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* One label per line of root/labels (trailing CR/blank lines dropped). */
static int read_labels(const char *path, names *nm, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (!f) return kn_rt_errf(err, errcap, "labels file %s: cannot open", path);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char **v = realloc(nm->v, sizeof *v * (size_t)(nm->n + 1));
        if (!v) break;
        nm->v = v;
        nm->v[nm->n++] = strdup(line);
    }
    fclose(f);
    while (nm->n > 0 && !*nm->v[nm->n - 1]) free(nm->v[--nm->n]);
    return 0;
}

/* The model's labels file under the data root, else (image folders) the
 * class folder names; no names is not an error (indices are printed). */
static int load_names(const kn_cli *c, const char *data, names *nm)
{
    char root[4096], err[1024], p[8400];
    const kn_rt_model *m = c->m;
    nm->v = NULL;
    nm->n = 0;
    if (kn_data_root(data, root, sizeof root, err, sizeof err)) return 0;
    if (m->labels && *m->labels) {
        snprintf(p, sizeof p, "%s/%s", root, m->labels);
        if (read_labels(p, nm, err, sizeof err)) return kn_cli_fail(c, "%s", err);
        return 0;
    }
    if (m->data_kind && !strcmp(m->data_kind, "image_folder") &&
        kn_imgset_dir(root, m->data_path, p, sizeof p, err, sizeof err) == 0) {
        int n = kn_imgset_classes(p, &nm->v, err, sizeof err);
        nm->n = n > 0 ? n : 0;
    }
    return 0;
}

/* An image file through the model's preprocessing into the input. */
static int image_input(const kn_cli *c, const char *file, int chw_numel, float *dst)
{
    const kn_rt_model *m = c->m;
    char err[1024];
    if (m->crop <= 0 || 3 * m->crop * m->crop != chw_numel)
        return kn_cli_fail(c, "%s: the model's input takes %d values per sample, not 3x%dx%d (its crop)", file,
                           chw_numel, m->crop, m->crop);
    /* The dataset's DCT-scaling policy, streamed through resize + crop. */
    kn_img_decode_opts o = {2 * m->resize, m->resize, m->crop};
    kn_img cr = {.w = m->crop, .h = m->crop, .px = malloc((size_t)3 * m->crop * m->crop + 1), .dct_num = 8};
    if (!cr.px) return kn_cli_fail(c, "%s: out of memory", file);
    if (kn_image_load_crop(file, &o, cr.px, NULL, err, sizeof err)) {
        kn_img_free(&cr);
        return kn_cli_fail(c, "%s", err);
    }
    kn_image_to_chw(&cr, m->n_normalize == 6 ? m->normalize : NULL, dst);
    kn_img_free(&cr);
    return 0;
}

int kn_cmd_predict(const kn_rt_model *m, int argc, char **argv)
{
    int json = 0, top = 5;
    uint64_t seed = (uint64_t)m->seed;
    const char *data = NULL, *weights = NULL, *device = NULL;
    static kn_opt_list idx, pos;
    idx.n = pos.n = 0;
    kn_opt opts[] = {
        {"--weights", KN_OPT_STR, &weights, 0}, {"--top", KN_OPT_INT, &top, 1},
        {"--data", KN_OPT_STR, &data, 0},       {"--seed", KN_OPT_U64, &seed, 0},
        {"--device", KN_OPT_STR, &device, 0},   {"--json", KN_OPT_FLAG, &json, 0},
        {"--index", KN_OPT_LIST, &idx, 0},
    };
    int rc = kn_opt_parse("predict", argc, argv, opts, sizeof opts / sizeof opts[0], &pos);
    if (rc == KN_OPT_HELP) return printf("%s", HELP), KN_EXIT_OK;
    if (rc) return KN_EXIT_USAGE;
    kn_cli c;
    kn_cli_begin(&c, m, "predict", json);
    if ((rc = kn_cli_device(&c, device))) return rc;
    static long indices[KN_OPT_LIST_MAX * 4];
    const char *files[KN_OPT_LIST_MAX];
    int ni, nf;
    if ((rc = collect_indices(&c, &idx, &pos, indices, &ni, files, &nf))) return rc;

    kn_cli_ios io;
    if ((rc = kn_cli_class_ios(&c, &io))) return rc;
    if (top > io.classes) top = io.classes;
    names nm = {NULL, 0};
    if (is_image_model(m) && (rc = load_names(&c, data, &nm))) return rc;
    kn_dataset d;
    memset(&d, 0, sizeof d);
    if (ni > 0 && (rc = kn_cli_dataset(&c, &io, data, "test", &d))) {
        names_free(&nm);
        return rc;
    }
    kn_rt_ctx ctx;
    char err[1024], s1[128], s2[128];
    if (kn_rt_ctx_open(&ctx, m, 1, err, sizeof err)) {
        kn_data_close(&d);
        names_free(&nm);
        return kn_cli_fail(&c, "%s", err);
    }
    if ((rc = kn_cli_weights(&c, &ctx, weights, seed))) goto out;
    for (int i = 0; i < ni; i++) {
        if (indices[i] >= d.count) {
            rc = kn_cli_usage(&c, "--index %ld: the test split has %d items (0..%d)", indices[i], d.count,
                              d.count - 1);
            goto out;
        }
        int k = (int)indices[i];
        if (kn_data_features(&d, kn_cli_norm(m), &k, 0, 1, kn_rt_io_ptr(&ctx, io.ph, io.input, 1))) {
            rc = kn_cli_fail(&c, "%s", d.err);
            goto out;
        }
        if (io.label) kn_data_labels(&d, &k, 0, 1, kn_rt_io_ptr(&ctx, io.ph, io.label, 1));
        io.ph->run(&ctx, 1);
        report(&c, &nm, kn_rt_io_ptr(&ctx, io.ph, io.output, 1), io.classes, top, k, NULL, d.labels[k]);
    }
    for (int i = 0; i < nf; i++) {
        if (is_image_model(m) && !ends_with(files[i], ".npy")) {
            if (io.input->dtype != KN_RT_F32) {
                rc = kn_cli_fail(&c, "%s: input '%s' is not f32", files[i], io.input->name);
                goto out;
            }
            if ((rc = image_input(&c, files[i], (int)io.input->sample_numel, kn_rt_io_ptr(&ctx, io.ph, io.input, 1))))
                goto out;
            if (io.label) *(int64_t *)kn_rt_io_ptr(&ctx, io.ph, io.label, 1) = 0;
            io.ph->run(&ctx, 1);
            report(&c, &nm, kn_rt_io_ptr(&ctx, io.ph, io.output, 1), io.classes, top, -1, files[i], 0);
            continue;
        }
        kn_npy a;
        if (kn_npy_read(files[i], &a, err, sizeof err)) {
            rc = kn_cli_fail(&c, "%s", err);
            goto out;
        }
        if (a.dtype != (int)io.input->dtype || a.numel != io.input->sample_numel) {
            rc = kn_cli_fail(&c, "%s: shape %s does not hold one sample of input '%s' %s", files[i],
                             kn_st_shape_str(a.dtype, a.rank, a.dims, s1, sizeof s1), io.input->name,
                             kn_rt_io_shape(io.input, s2, sizeof s2));
            kn_npy_free(&a);
            goto out;
        }
        memcpy(kn_rt_io_ptr(&ctx, io.ph, io.input, 1), a.data, a.numel * kn_rt_dtype_size(a.dtype));
        kn_npy_free(&a);
        if (io.label) *(int64_t *)kn_rt_io_ptr(&ctx, io.ph, io.label, 1) = 0;
        io.ph->run(&ctx, 1);
        report(&c, &nm, kn_rt_io_ptr(&ctx, io.ph, io.output, 1), io.classes, top, -1, files[i], 0);
    }
out:
    kn_rt_ctx_close(&ctx);
    kn_data_close(&d);
    names_free(&nm);
    return rc;
}

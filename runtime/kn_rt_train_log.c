/* kn_rt_train_log.c — see kn_rt_train_log.h. */
#include "kn_rt_train_log.h"
#include "kn_rt_afile.h"
#include "kn_rt_err.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The text is built in memory, then replaces the file atomically. */
static int commit(const char *path, char *buf, size_t len, char *err, size_t errcap)
{
    const void *chunks[1] = {buf};
    size_t lens[1] = {len};
    int rc = kn_rt_write_atomic(path, chunks, lens, 1, err, errcap);
    free(buf);
    return rc;
}

int kn_train_write_csv(const char *path, const kn_train_row *rows, int n, char *err, size_t errcap)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return kn_rt_errf(err, errcap, "%s: out of memory", path);
    fprintf(f, "epoch,train_loss,train_acc,val_loss,val_acc,seconds,lr\n");
    for (int i = 0; i < n; i++) {
        const kn_train_row *r = &rows[i];
        fprintf(f, "%d,%.6f,%.6f,%.6f,%.6f,%.3f,%.6g\n", r->epoch, r->train_loss, r->train_acc,
                r->val_loss, r->val_acc, r->seconds, r->lr);
    }
    fclose(f);
    return commit(path, buf, len, err, errcap);
}

/* ---- SVG ---- */

/* A "nice" tick step (1, 2 or 5 times a power of ten) giving about `want`
 * ticks over span. */
static double nice_step(double span, int want)
{
    if (!(span > 0)) return 1;
    double raw = span / want, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

enum { PW = 400, PH = 300, ML = 60, MR = 20, MT = 40, MB = 45 };

typedef struct {
    int x0;                  /* panel's left edge in the SVG */
    double xmin, xmax, ymin, ymax;
} panel;

static double px(const panel *p, double x)
{
    return p->x0 + ML + (x - p->xmin) / (p->xmax - p->xmin) * (PW - ML - MR);
}
static double py(const panel *p, double y)
{
    return MT + (p->ymax - y) / (p->ymax - p->ymin) * (PH - MT - MB);
}

static void draw_panel(FILE *f, int x0, const char *title, const char *ylabel, const kn_train_row *rows,
                       int n, size_t off_train, size_t off_val, int is_acc)
{
    panel p = {x0, 1, n > 0 && rows[n - 1].epoch > 1 ? rows[n - 1].epoch : 2, INFINITY, -INFINITY};
    for (int i = 0; i < n; i++) {
        const char *r = (const char *)&rows[i];
        double a = *(const double *)(r + off_train), b = *(const double *)(r + off_val);
        if (isfinite(a)) p.ymin = fmin(p.ymin, a), p.ymax = fmax(p.ymax, a);
        if (isfinite(b)) p.ymin = fmin(p.ymin, b), p.ymax = fmax(p.ymax, b);
    }
    if (!isfinite(p.ymin)) p.ymin = 0, p.ymax = 1;
    if (is_acc) p.ymax = fmin(1, p.ymax);
    if (p.ymax - p.ymin < 1e-6) p.ymin -= 0.05, p.ymax += 0.05;
    double ys = nice_step(p.ymax - p.ymin, 5);
    p.ymin = floor(p.ymin / ys) * ys;
    p.ymax = ceil(p.ymax / ys) * ys;
    int L = x0 + ML, R = x0 + PW - MR, T = MT, B = PH - MB;
    fprintf(f, "<g font-family=\"sans-serif\" font-size=\"11\">\n");
    fprintf(f, "<text x=\"%d\" y=\"22\" font-size=\"14\" text-anchor=\"middle\">", x0 + PW / 2);
    xml_text(f, title);
    fprintf(f, "</text>\n");
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n", L, T,
            R - L, B - T);
    /* y ticks and grid */
    int nyt = (int)floor((p.ymax - p.ymin) / ys + 0.5);
    for (int k = 0; k <= nyt; k++) {
        double y = p.ymin + k * ys, yy = py(&p, y);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>", L, yy, R, yy);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#000\"/>", L - 4, yy, L, yy);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n", L - 6, yy + 4,
                ys < 0.01 ? 3 : ys < 0.1 ? 2 : ys < 1 ? 1 : 0, y);
    }
    /* x ticks at whole epochs */
    double xs = ceil(nice_step(p.xmax - p.xmin, 8));
    if (xs < 1) xs = 1;
    for (int k = 0; p.xmin + k * xs <= p.xmax + 1e-9; k++) {
        double x = p.xmin + k * xs, xx = px(&p, x);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#000\"/>", xx, B, xx, B + 4);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0f</text>\n", xx, B + 16, x);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">epoch</text>\n", (L + R) / 2, PH - 8);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 %d %d)\">%s</text>\n",
            x0 + 14, (T + B) / 2, x0 + 14, (T + B) / 2, ylabel);
    /* curves */
    static const char *const colour[2] = {"#1f77b4", "#ff7f0e"};
    static const char *const name[2] = {"train", "val"};
    size_t offs[2] = {off_train, off_val};
    for (int c = 0; c < 2; c++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colour[c]);
        for (int i = 0; i < n; i++) {
            double v = *(const double *)((const char *)&rows[i] + offs[c]);
            if (isfinite(v)) fprintf(f, "%s%.1f,%.1f", i ? " " : "", px(&p, rows[i].epoch), py(&p, v));
        }
        fprintf(f, "\"/>\n");
        for (int i = 0; i < n; i++) {
            double v = *(const double *)((const char *)&rows[i] + offs[c]);
            if (isfinite(v))
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", px(&p, rows[i].epoch),
                        py(&p, v), colour[c]);
        }
        fputc('\n', f);
        /* legend: top right for loss (falling curves), bottom right for
         * accuracy (rising ones), on a white box */
        int lx = R - 70, ly = (is_acc ? B - 38 : T + 14) + 16 * c;
        if (c == 0)
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"62\" height=\"36\" fill=\"white\" stroke=\"#ccc\"/>\n",
                    lx - 6, ly - 14);
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>", lx, ly - 4,
                lx + 18, ly - 4, colour[c]);
        fprintf(f, "<text x=\"%d\" y=\"%d\">%s</text>\n", lx + 24, ly, name[c]);
    }
    fprintf(f, "</g>\n");
}

int kn_train_write_svg(const char *path, const char *title, const kn_train_row *rows, int n,
                       char *err, size_t errcap)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return kn_rt_errf(err, errcap, "%s: out of memory", path);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n",
            2 * PW, PH, 2 * PW, PH);
    fprintf(f, "<title>");
    xml_text(f, title && *title ? title : "training");
    fprintf(f, "</title>\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    draw_panel(f, 0, "loss", "loss", rows, n, offsetof(kn_train_row, train_loss),
               offsetof(kn_train_row, val_loss), 0);
    draw_panel(f, PW, "accuracy", "accuracy", rows, n, offsetof(kn_train_row, train_acc),
               offsetof(kn_train_row, val_acc), 1);
    fprintf(f, "</svg>\n");
    fclose(f);
    return commit(path, buf, len, err, errcap);
}

/* ---- history in metadata ---- */

char *kn_train_history_json(const kn_train_row *rows, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        const kn_train_row *r = &rows[i];
        double v[7] = {r->epoch, r->train_loss, r->train_acc, r->val_loss, r->val_acc, r->seconds, r->lr};
        cJSON *row = cJSON_CreateArray();
        for (int k = 0; k < 7; k++) cJSON_AddItemToArray(row, cJSON_CreateNumber(isfinite(v[k]) ? v[k] : -1));
        cJSON_AddItemToArray(a, row);
    }
    char *s = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return s;
}

int kn_train_history_parse(const char *json, kn_train_row **rows)
{
    *rows = NULL;
    cJSON *a = cJSON_Parse(json);
    if (!cJSON_IsArray(a)) {
        cJSON_Delete(a);
        return -1;
    }
    int n = cJSON_GetArraySize(a);
    kn_train_row *r = n ? calloc((size_t)n, sizeof *r) : NULL;
    for (int i = 0; i < n; i++) {
        cJSON *row = cJSON_GetArrayItem(a, i);
        double v[7];
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != 7) goto bad;
        for (int k = 0; k < 7; k++) {
            cJSON *x = cJSON_GetArrayItem(row, k);
            if (!cJSON_IsNumber(x)) goto bad;
            v[k] = x->valuedouble;
        }
        r[i] = (kn_train_row){(int)v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
    }
    cJSON_Delete(a);
    *rows = r;
    return n;
bad:
    free(r);
    cJSON_Delete(a);
    return -1;
}

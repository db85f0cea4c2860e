/* build_onnx.c — `backbone = onnx("m.onnx", input=x, until="t", frozen)`
 * in model files: checks the call's arguments, finds the file, and hands
 * the rest to the ONNX importer (kn_onnx_splice_file), whose errors come
 * back located at the argument they are about.
 *
 * Naming: every imported value and node is `<statement>.<ONNX name>`
 * (backbone.conv_w_1), and the cut tensor is the statement's value, named
 * like any statement.  Prefixing rather than keeping ONNX names means a
 * graph's names ("input", "logits", "x") can never clash with the model
 * file's, the same file can be spliced twice, and checkpoint keys read like
 * PyTorch's state_dict of a submodule (backbone.features.0.weight).
 *
 * The path is looked up under the data roots the driver passes ($KILN_DATA,
 * the shared data folder), then next to the model file; absolute paths are
 * used as they are.
 */
#include "build_internal.h"

#include "onnx_import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const ONNX_KEYS[] = {"input", "until", "frozen", "unfreeze", "lr_scale"};
static const char ONNX_USAGE[] =
    "usage: onnx(\"path.onnx\", input=x, until=\"tensor\", frozen, unfreeze=K, lr_scale=0.1)";

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Resolves `rel` for the model file `model`: into `out` and true when
 * found; `tried` (may be NULL) collects the places looked at. */
static bool find_onnx(const char *model, const kn_frontend_opts *o, const char *rel, char *out, size_t cap,
                      kn_strbuf *tried)
{
    if (rel[0] == '/') {
        snprintf(out, cap, "%s", rel);
        if (tried) kn_sb_puts(tried, rel);
        return is_file(out);
    }
    for (int i = 0; o && i < o->n_data_roots; i++) {
        if (!o->data_roots[i] || !o->data_roots[i][0]) continue;
        snprintf(out, cap, "%s/%s", o->data_roots[i], rel);
        if (tried) kn_sb_printf(tried, "%s%s", tried->len ? ", " : "", out);
        if (is_file(out)) return true;
    }
    const char *slash = strrchr(model, '/');
    if (slash) snprintf(out, cap, "%.*s/%s", (int)(slash - model), model, rel);
    else snprintf(out, cap, "%s", rel);
    if (tried) kn_sb_printf(tried, "%s%s", tried->len ? ", " : "", out);
    return is_file(out);
}

typedef struct {
    const kf_expr *path, *input, *until, *frozen_kw, *unfreeze, *lr_scale;
    int frozen_flag_line, frozen_flag_col; /* bare `frozen`, 0 if absent */
    int input_line, input_col, until_line, until_col;
} onnx_args;

static kn_status read_keyword(kf_builder *b, const kf_expr *e, int i, onnx_args *a)
{
    const char *key = e->keys[i];
    /* input= names a value, never a param's literal */
    const kf_expr *v = strcmp(key, "input") ? kf_subst(b, e->items[i]) : e->items[i];
    int col = e->key_cols[i];
    const kf_expr **slot = !strcmp(key, "input")      ? &a->input
                           : !strcmp(key, "until")    ? &a->until
                           : !strcmp(key, "frozen")   ? &a->frozen_kw
                           : !strcmp(key, "unfreeze") ? &a->unfreeze
                           : !strcmp(key, "lr_scale") ? &a->lr_scale
                                                      : NULL;
    if (!slot) {
        const char *near = kf_nearest(key, ONNX_KEYS, 5);
        char hint[256];
        snprintf(hint, sizeof hint, "%s%s%s%s", near ? "did you mean '" : "", near ? near : "",
                 near ? "'? " : "", ONNX_USAGE);
        return ERR(b, e->line, col, hint, "onnx has no argument '%s'", key);
    }
    if (*slot || (slot == &a->frozen_kw && a->frozen_flag_line))
        return ERR(b, e->line, col, ONNX_USAGE, "argument '%s' of onnx given twice", key);
    if (slot == &a->input && e->items[i]->kind != KX_IDENT)
        return ERR(b, v->line, v->col, "write input=x, naming a value defined above",
                   "input= of onnx expects a value name");
    if (slot == &a->until && v->kind != KX_STRING)
        return ERR(b, v->line, v->col, "write until=\"tensor name\"", "until= of onnx expects a \"string\"");
    if (slot == &a->frozen_kw && v->kind != KX_BOOL)
        return ERR(b, v->line, v->col, "write frozen, frozen=true or frozen=false", "frozen= expects true or false");
    if (slot == &a->unfreeze && (v->kind != KX_INT || v->i < 0))
        return ERR(b, v->line, v->col, "unfreeze=K trains the backbone's last K layers with weights",
                   "unfreeze= of onnx expects an integer >= 0");
    if (slot == &a->lr_scale && !((v->kind == KX_FLOAT && v->f > 0) || (v->kind == KX_INT && v->i > 0)))
        return ERR(b, v->line, v->col, "lr_scale=0.1: the imported parameters learn at 0.1 x the optimizer's lr",
                   "lr_scale= of onnx expects a number > 0");
    *slot = v;
    if (slot == &a->input) a->input_line = v->line, a->input_col = v->col;
    if (slot == &a->until) a->until_line = v->line, a->until_col = v->col;
    return KN_OK;
}

static kn_status read_args(kf_builder *b, const kf_expr *e, onnx_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < e->n; i++) {
        const kf_expr *raw = e->items[i];
        if (e->keys[i]) {
            if (read_keyword(b, e, i, a)) return KN_ERR;
        } else if (i == 0 && raw->kind == KX_STRING) {
            a->path = raw; /* a literal, so caches can find the file without building */
        } else if (raw->kind == KX_IDENT && !strcmp(raw->s, "frozen")) {
            if (a->frozen_flag_line || a->frozen_kw)
                return ERR(b, raw->line, raw->col, ONNX_USAGE, "argument 'frozen' of onnx given twice");
            a->frozen_flag_line = raw->line;
            a->frozen_flag_col = raw->col;
        } else {
            return ERR(b, raw->line, raw->col, ONNX_USAGE,
                       i == 0 ? "onnx expects the model's path as a \"string\" first"
                              : "unexpected positional argument to onnx");
        }
    }
    if (!a->path) return ERR(b, e->line, e->col, ONNX_USAGE, "onnx is missing the model's path");
    if (!a->input) return ERR(b, e->line, e->col, ONNX_USAGE, "onnx is missing its argument 'input'");
    return KN_OK;
}

/* Re-reports the importer's "PATH: error: MESSAGE" at the argument blamed. */
static kn_status splice_error(kf_builder *b, const onnx_args *a, const kn_onnx_splice_result *r, const kn_diag *d)
{
    const char *t = d->text[0] ? d->text : "import failed";
    const char *err = strstr(t, ": error: ");
    const char *msg = err ? err + 9 : t;
    int line = a->path->line, col = a->path->col;
    if (r->blame == KN_ONNX_BLAME_INPUT) line = a->input_line, col = a->input_col;
    if (r->blame == KN_ONNX_BLAME_UNTIL && a->until) line = a->until_line, col = a->until_col;
    return ERR(b, line, col, r->hint[0] ? r->hint : NULL, "onnx \"%.200s\": %s", a->path->s, msg);
}

/* unfreeze=K: the parameters of the last K imported nodes that have any
 * become trainable (fine-tuning the top of a frozen backbone); lr_scale
 * applies to every trainable imported parameter. */
static void unfreeze_last(kn_graph *g, int first_node, int first_value, int k, double lr_scale)
{
    for (int i = g->n_nodes - 1; i >= first_node && k > 0; i--) {
        const kn_node *n = g->nodes[i];
        bool has = false;
        for (int j = 0; j < n->n_in; j++) {
            kn_value *v = g->values[n->in[j]];
            if (n->in[j] < first_value || v->kind != KN_VAL_PARAM) continue;
            v->trainable = true;
            has = true;
        }
        k -= has;
    }
    for (int v = first_value; v < g->n_values; v++)
        if (g->values[v]->kind == KN_VAL_PARAM && g->values[v]->trainable) g->values[v]->lr_scale = lr_scale;
}

kn_status kf_build_onnx(kf_builder *b, const kf_stmt *s, const kf_expr *e, int *vid)
{
    onnx_args a;
    if (read_args(b, e, &a)) return KN_ERR;
    char path[4096];
    kn_strbuf tried;
    kn_sb_init(&tried);
    bool found = find_onnx(b->src->name, b->opts, a.path->s, path, sizeof path, &tried);
    if (!found) {
        char hint[1024];
        snprintf(hint, sizeof hint, "looked in: %.900s (paths are relative to the data root $KILN_DATA "
                 "or to the model file's folder)", tried.s);
        kn_sb_free(&tried);
        return ERR(b, a.path->line, a.path->col, hint, "cannot find the ONNX model \"%.200s\"", a.path->s);
    }
    kn_sb_free(&tried);
    int input;
    if (kf_resolve(b, a.input, &input)) return KN_ERR;

    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s.", s->name);
    bool frozen = a.frozen_flag_line || (a.frozen_kw && a.frozen_kw->i);
    kn_onnx_splice_opts o = {.input = input, .until = a.until ? a.until->s : NULL, .prefix = prefix,
                             .name = s->name, .trainable = !frozen,
                             .loc = {.file = b->file, .line = e->line, .col = e->col}};
    int first_new = b->g->n_values, first_node = b->g->n_nodes;
    kn_onnx_splice_result r;
    kn_diag id;
    kn_diag_clear(&id);
    if (kn_onnx_splice_file(b->g, path, &o, &r, &id) != KN_OK) return splice_error(b, &a, &r, &id);
    /* Prefixed names cannot meet the file's own, but a name made by an
     * earlier splice of the same statement name is caught here. */
    for (int v = first_new; v < b->g->n_values; v++) {
        const kf_name_entry *u = kf_names_get(&b->used, b->g->values[v]->name);
        if (u)
            return ERR(b, e->line, e->col, "rename the statement", "imported tensor '%.200s' clashes with a name "
                       "defined at line %d", b->g->values[v]->name, u->line);
    }
    if (a.unfreeze && !frozen)
        return ERR(b, a.unfreeze->line, a.unfreeze->col, "add frozen: unfreeze=K thaws the last K layers of a "
                   "frozen graph", "unfreeze= needs a frozen graph");
    double scale = !a.lr_scale ? 1.0 : a.lr_scale->kind == KX_INT ? (double)a.lr_scale->i : a.lr_scale->f;
    unfreeze_last(b->g, first_node, first_new, a.unfreeze ? (int)a.unfreeze->i : 0, scale);
    kf_note_new_values(b, first_new, e->line, e->col);
    *vid = r.value;
    return KN_OK;
}

void kf_onnx_deps(const kf_source *src, const kf_ast *ast, const kn_frontend_opts *o, kn_strbuf *out)
{
    for (int i = 0; i < ast->n_stmts; i++) {
        const kf_stmt *s = &ast->stmts[i];
        if (s->kind != KS_ASSIGN || s->expr->kind != KX_CALL || strcmp(s->expr->s, "onnx") != 0) continue;
        if (s->expr->n < 1 || s->expr->keys[0] || s->expr->items[0]->kind != KX_STRING) continue;
        char path[4096];
        if (find_onnx(src->name, o, s->expr->items[0]->s, path, sizeof path, NULL)) kn_sb_printf(out, "%s\n", path);
    }
}

/* build.c — turns a parsed model file into IR.
 *
 * Calls bind to ops through the registry (ir/ops/op.h): positional
 * arguments that are names or calls fill the op's tensor inputs
 * (min_inputs..max_inputs), later positional literals fill its arg specs in
 * order, `key=value` fills a spec by name.  Every spec becomes a node
 * attribute (defaults filled).  `name="..."` renames the node (and so its
 * parameters) while the statement name still refers to its value.
 *
 * Naming: a statement's outermost call gets the statement's name; a nested
 * call is named `<stmt>.<op>`, made unique with `_1`, `_2` ...  `x = y`
 * (a plain alias) is an error: it would create a value with no node.
 * The statement named `loss` is the training loss.  `param NAME = literal`
 * (build_params.c) names a literal usable wherever one is expected;
 * `NAME = onnx(...)` splices an ONNX graph (build_onnx.c).
 *
 * After each node is created the op adds its parameters and infers shapes;
 * an op's complaint is re-reported at the call's line:col.
 */
#include "build_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int list_len(const char *const *list)
{
    int n = 0;
    while (list[n]) n++;
    return n;
}

/* "a, b, c" of a NULL-terminated list. */
static void list_join(const char *const *list, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; list[i] && o < cap; i++) o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? ", " : "", list[i]);
}


/* ---- descriptions for messages ---- */

static const char *attr_kind_desc(kn_attr_kind k)
{
    switch (k) {
    case KN_ATTR_INT: return "an integer";
    case KN_ATTR_FLOAT: return "a number";
    case KN_ATTR_INTS: return "a tuple of integers";
    case KN_ATTR_FLOATS: return "a tuple of numbers";
    case KN_ATTR_STRING: return "a \"string\"";
    case KN_ATTR_BOOL: return "true or false";
    }
    return "a value";
}

static void expr_desc(const kf_expr *e, char *buf, size_t cap)
{
    switch (e->kind) {
    case KX_IDENT: snprintf(buf, cap, "the tensor '%.64s'", e->s); break;
    case KX_CALL: snprintf(buf, cap, "a call to '%.64s'", e->s); break;
    case KX_INT: snprintf(buf, cap, "the integer %lld", (long long)e->i); break;
    case KX_FLOAT: snprintf(buf, cap, "the number %g", e->f); break;
    case KX_BOOL: snprintf(buf, cap, "%s", e->i ? "true" : "false"); break;
    case KX_STRING: snprintf(buf, cap, "a string"); break;
    case KX_TUPLE: snprintf(buf, cap, "a tuple"); break;
    }
}

static int n_specs(const kn_op_def *def)
{
    int n = 0;
    while (def->args && def->args[n].name) n++;
    return n;
}

/* "linear(x, out, bias=true)" */
static void op_usage(const kn_op_def *def, char *buf, size_t cap)
{
    kn_strbuf b;
    kn_sb_init(&b);
    kn_sb_printf(&b, "usage: %s(", def->name);
    static const char *const two[] = {"a", "b"};
    for (int i = 0; i < def->max_inputs && i < 3; i++) {
        if (i) kn_sb_puts(&b, ", ");
        if (i == 2) { kn_sb_puts(&b, "..."); break; }
        kn_sb_puts(&b, def->max_inputs == 1 ? "x" : two[i]);
        if (i >= def->min_inputs) kn_sb_puts(&b, "?");
    }
    int ns = n_specs(def);
    for (int i = 0; i < ns; i++) {
        const kn_arg_spec *s = &def->args[i];
        if (i || def->max_inputs) kn_sb_puts(&b, ", ");
        if (s->required) { kn_sb_puts(&b, s->name); continue; }
        switch (s->kind) {
        case KN_ATTR_INT: kn_sb_printf(&b, "%s=%lld", s->name, (long long)s->dflt_i); break;
        case KN_ATTR_BOOL: kn_sb_printf(&b, "%s=%s", s->name, s->dflt_i ? "true" : "false"); break;
        case KN_ATTR_FLOAT: kn_sb_printf(&b, "%s=%g", s->name, s->dflt_f); break;
        case KN_ATTR_STRING: kn_sb_printf(&b, "%s=\"%s\"", s->name, s->dflt_s ? s->dflt_s : ""); break;
        default: kn_sb_printf(&b, "%s=()", s->name); break;
        }
    }
    kn_sb_puts(&b, ")");
    snprintf(buf, cap, "%s", b.s);
    kn_sb_free(&b);
}

static kn_status arity_error(kf_builder *b, const kn_op_def *def, int got, int line, int col)
{
    char want[64], usage[512];
    const char *pl = def->max_inputs == 1 ? "" : "s";
    if (def->min_inputs == def->max_inputs)
        snprintf(want, sizeof want, "%d tensor input%s", def->min_inputs, pl);
    else
        snprintf(want, sizeof want, "%d to %d tensor inputs", def->min_inputs, def->max_inputs);
    op_usage(def, usage, sizeof usage);
    return ERR(b, line, col, usage, "%s expects %s, got %d", def->name, want, got);
}

/* ---- values ---- */

static bool valid_ident(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || (*p >= '0' && *p <= '9')))
            return false;
    return strlen(s) <= 128;
}

kn_status kf_resolve(kf_builder *b, const kf_expr *e, int *vid)
{
    const kf_name_entry *s = kf_names_get(&b->syms, e->s);
    if (s) {
        *vid = s->value;
        return KN_OK;
    }
    const char *near = kf_names_nearest(&b->syms, e->s);
    char hint[256];
    if (near) snprintf(hint, sizeof hint, "did you mean '%s'?", near);
    else snprintf(hint, sizeof hint, "define it earlier with 'input %s: f32[N, ...]' or '%s = op(...)'", e->s, e->s);
    return ERR(b, e->line, e->col, hint, "undefined value '%s'", e->s);
}

void kf_note_new_values(kf_builder *b, int from, int line, int col)
{
    for (int i = from; i < b->g->n_values; i++)
        kf_names_put(&b->used, b->g->values[i]->name, i, line, col);
}

/* Converts a literal to an attribute of kind `k` on node n (or reports). */
static kn_status set_attr(kf_builder *b, kn_node *n, const kn_op_def *def, const char *name,
                          kn_attr_kind k, const kf_expr *e)
{
    switch (k) {
    case KN_ATTR_INT:
        if (e->kind == KX_INT) { kn_node_set_attr_i(n, name, e->i); return KN_OK; }
        break;
    case KN_ATTR_FLOAT:
        if (e->kind == KX_INT || e->kind == KX_FLOAT) { kn_node_set_attr_f(n, name, e->f); return KN_OK; }
        break;
    case KN_ATTR_BOOL:
        if (e->kind == KX_BOOL) { kn_node_set_attr_b(n, name, e->i != 0); return KN_OK; }
        break;
    case KN_ATTR_STRING:
        if (e->kind == KX_STRING) { kn_node_set_attr_s(n, name, e->s); return KN_OK; }
        break;
    case KN_ATTR_INTS:
        if (e->kind == KX_INT) { kn_node_set_attr_ints(n, name, &e->i, 1); return KN_OK; }
        if (e->kind == KX_TUPLE) {
            int64_t *v = kn_xmalloc(sizeof *v * (size_t)e->n);
            for (int i = 0; i < e->n; i++) {
                if (e->items[i]->kind != KX_INT) {
                    free(v);
                    return ERR(b, e->items[i]->line, e->items[i]->col, "write whole numbers: (1, 2)",
                               "argument '%s' of %s expects integers, got %g", name, def->name,
                               e->items[i]->f);
                }
                v[i] = e->items[i]->i;
            }
            kn_node_set_attr_ints(n, name, v, e->n);
            free(v);
            return KN_OK;
        }
        break;
    case KN_ATTR_FLOATS:
        if (e->kind == KX_INT || e->kind == KX_FLOAT) { kn_node_set_attr_floats(n, name, &e->f, 1); return KN_OK; }
        if (e->kind == KX_TUPLE) {
            double *v = kn_xmalloc(sizeof *v * (size_t)e->n);
            for (int i = 0; i < e->n; i++) v[i] = e->items[i]->f;
            kn_node_set_attr_floats(n, name, v, e->n);
            free(v);
            return KN_OK;
        }
        break;
    }
    char got[128], hint[160];
    expr_desc(e, got, sizeof got);
    snprintf(hint, sizeof hint, "write %s=%s", name,
             k == KN_ATTR_INT ? "64" : k == KN_ATTR_FLOAT ? "0.5" : k == KN_ATTR_BOOL ? "true" :
             k == KN_ATTR_STRING ? "\"...\"" : k == KN_ATTR_INTS ? "(1, 2)" : "(0.5, 0.5)");
    return ERR(b, e->line, e->col, hint, "argument '%s' of %s expects %s, got %s", name, def->name,
               attr_kind_desc(k), got);
}

static void set_default(kn_node *n, const kn_arg_spec *s)
{
    switch (s->kind) {
    case KN_ATTR_INT: kn_node_set_attr_i(n, s->name, s->dflt_i); break;
    case KN_ATTR_BOOL: kn_node_set_attr_b(n, s->name, s->dflt_i != 0); break;
    case KN_ATTR_FLOAT: kn_node_set_attr_f(n, s->name, s->dflt_f); break;
    case KN_ATTR_STRING: kn_node_set_attr_s(n, s->name, s->dflt_s ? s->dflt_s : ""); break;
    case KN_ATTR_INTS: kn_node_set_attr_ints(n, s->name, NULL, 0); break;
    case KN_ATTR_FLOATS: kn_node_set_attr_floats(n, s->name, NULL, 0); break;
    }
}

/* Re-reports an op's message (e.g. "linear 'fc0': expects f32[N, K] input,
 * got f32[N,1,28,28]") at the call site. */
static kn_status wrap_op_error(kf_builder *b, const kn_op_def *def, const kf_expr *e, const kn_diag *opd)
{
    const char *t = opd->set && opd->text[0] ? opd->text : "failed";
    const char *err = strstr(t, "error: ");
    const char *nl0 = strchr(t, '\n');
    if (err && (!nl0 || err < nl0)) t = err + 7; /* drop a location prefix */
    const char *nl = strchr(t, '\n');
    char msg[1024], hint[512];
    snprintf(msg, sizeof msg, "%.*s", nl ? (int)(nl - t) : (int)strlen(t), t);
    const char *h = strstr(t, "\nhint: ");
    if (h) {
        h += 7;
        const char *he = strchr(h, '\n');
        snprintf(hint, sizeof hint, "%.*s", he ? (int)(he - h) : (int)strlen(h), h);
    } else {
        op_usage(def, hint, sizeof hint);
    }
    return ERR(b, e->line, e->col, hint, "%s", msg);
}

/* Builds the node for call `e`; `stmt` is the statement's name, `outer`
 * whether `e` is the statement's outermost call.  Sets *vid to its output. */
static kn_status build_call(kf_builder *b, const char *stmt, const kf_expr *e, bool outer, int *vid)
{
    if (strcmp(e->s, "onnx") == 0)
        return ERR(b, e->line, e->col, "give it its own statement: backbone = onnx(\"m.onnx\", input=x)",
                   "onnx(...) must be the whole right side of a statement");
    int op = kn_op_lookup(e->s);
    if (op < 0) {
        const char *near = kn_op_suggest(e->s);
        char hint[1024];
        if (near) {
            snprintf(hint, sizeof hint, "did you mean '%s'?", near);
        } else {
            kn_strbuf l;
            kn_sb_init(&l);
            for (int i = 0; i < KN_OP_COUNT; i++)
                if (kn_op_get(i)) kn_sb_printf(&l, "%s%s", l.len ? ", " : "", kn_op_get(i)->name);
            snprintf(hint, sizeof hint, "known ops: %s, and onnx(\"m.onnx\", input=x) to splice an ONNX graph", l.s);
            kn_sb_free(&l);
        }
        return ERR(b, e->line, e->col, hint, "unknown op '%s'", e->s);
    }
    const kn_op_def *def = kn_op_get(op);
    int ns = n_specs(def);
    const kf_expr *given[32] = {0};
    if (ns > 32) ns = 32;
    int in[16], n_in = 0, n_tensor_args = 0, spec_i = 0;
    const kf_expr *name_arg = NULL, *frozen_arg = NULL;
    bool seen_literal = false;
    char usage[512];
    op_usage(def, usage, sizeof usage);

    for (int i = 0; i < e->n; i++) {
        const kf_expr *a = kf_subst(b, e->items[i]);
        if (!e->keys[i] && (a->kind == KX_IDENT || a->kind == KX_CALL)) n_tensor_args++;
    }

    for (int i = 0; i < e->n; i++) {
        const kf_expr *a = kf_subst(b, e->items[i]);
        const char *key = e->keys[i];
        if (!key) {
            if (a->kind == KX_IDENT || a->kind == KX_CALL) {
                if (seen_literal)
                    return ERR(b, a->line, a->col, usage, "tensor inputs of %s must come before its other arguments",
                               def->name);
                if (n_in == def->max_inputs || n_in == 16) {
                    /* linear(x, hiden): an undefined name (often a param) says more than the arity */
                    int v;
                    if (a->kind == KX_IDENT && kf_resolve(b, a, &v)) return KN_ERR;
                    return arity_error(b, def, n_tensor_args, a->line, a->col);
                }
                int v;
                if (a->kind == KX_IDENT ? kf_resolve(b, a, &v) : build_call(b, stmt, a, false, &v)) return KN_ERR;
                in[n_in++] = v;
            } else {
                if (n_in < def->min_inputs) return arity_error(b, def, n_tensor_args, e->line, e->col);
                seen_literal = true;
                if (spec_i >= ns) {
                    char got[128];
                    expr_desc(a, got, sizeof got);
                    return ERR(b, a->line, a->col, usage, "too many arguments to %s: unexpected %s",
                               def->name, got);
                }
                given[spec_i++] = a;
            }
            continue;
        }
        int kcol = e->key_cols[i];
        if (strcmp(key, "name") == 0) {
            if (a->kind != KX_STRING)
                return ERR(b, a->line, a->col, "write name=\"fc4\"", "name= expects a \"string\"");
            if (!valid_ident(a->s))
                return ERR(b, a->line, a->col, "names are letters, digits and '_', not starting with a digit",
                           "invalid node name \"%.64s\"", a->s);
            if (name_arg) return ERR(b, e->line, kcol, usage, "argument 'name' given twice");
            name_arg = a;
            continue;
        }
        if (strcmp(key, "frozen") == 0) {
            /* Any op that owns parameters: they get no gradient and no
             * optimizer state (transfer learning). */
            if (a->kind != KX_BOOL)
                return ERR(b, a->line, a->col, "write frozen=true", "frozen= expects true or false");
            if (!def->add_params)
                return ERR(b, e->line, kcol, NULL, "%s has no parameters to freeze", def->name);
            if (frozen_arg) return ERR(b, e->line, kcol, usage, "argument 'frozen' given twice");
            frozen_arg = a;
            continue;
        }
        int k = -1;
        for (int s = 0; s < ns; s++)
            if (strcmp(def->args[s].name, key) == 0) k = s;
        if (k < 0) {
            const char *names[33];
            kn_strbuf l;
            kn_sb_init(&l);
            for (int s = 0; s < ns; s++) {
                names[s] = def->args[s].name;
                kn_sb_printf(&l, "%s, ", names[s]);
            }
            names[ns] = "name";
            kn_sb_puts(&l, "name");
            int nn = ns + 1;
            if (def->add_params) {
                names[nn++] = "frozen";
                kn_sb_puts(&l, ", frozen");
            }
            const char *near = kf_nearest(key, names, nn);
            char hint[768];
            snprintf(hint, sizeof hint, "%s%s%svalid arguments of %s: %s", near ? "did you mean '" : "",
                     near ? near : "", near ? "'? " : "", def->name, l.s);
            kn_sb_free(&l);
            return ERR(b, e->line, kcol, hint, "%s has no argument '%s'", def->name, key);
        }
        if (given[k]) return ERR(b, e->line, kcol, usage, "argument '%s' of %s given twice", key, def->name);
        given[k] = a;
    }
    if (n_in < def->min_inputs) return arity_error(b, def, n_tensor_args, e->line, e->col);
    for (int s = 0; s < ns; s++)
        if (def->args[s].required && !given[s])
            return ERR(b, e->line, e->col, usage, "%s is missing its argument '%s'", def->name, def->args[s].name);

    /* the node's name */
    char name[512];
    if (name_arg || outer) {
        snprintf(name, sizeof name, "%s", name_arg ? name_arg->s : stmt);
        const kf_name_entry *u = kf_names_get(&b->used, name);
        if (u) {
            int line = name_arg ? name_arg->line : e->line, col = name_arg ? name_arg->col : e->col;
            char hint[160];
            snprintf(hint, sizeof hint, "'%.100s' was defined at line %d; pick another name", name, u->line);
            return ERR(b, line, col, hint, "name '%.200s' is already used", name);
        }
    } else {
        /* The counter keeps a statement with 100k nested relus linear. */
        snprintf(name, sizeof name, "%s.%s", stmt, def->name);
        size_t base = strlen(name);
        int k = b->nested[op];
        if (k) snprintf(name + base, sizeof name - base, "_%d", k);
        while (kf_names_get(&b->used, name)) snprintf(name + base, sizeof name - base, "_%d", ++k);
        b->nested[op] = k + 1;
    }

    int first_new = b->g->n_values;
    kn_node *n = kn_graph_add_node(b->g, op, name, in, n_in, 1);
    n->loc.file = b->file;
    n->loc.line = e->line;
    n->loc.col = e->col;
    for (int s = 0; s < ns; s++) {
        if (given[s]) {
            if (set_attr(b, n, def, def->args[s].name, def->args[s].kind, given[s])) return KN_ERR;
        } else {
            set_default(n, &def->args[s]);
        }
    }
    kn_diag opd;
    kn_diag_clear(&opd);
    if (def->add_params && def->add_params(b->g, n, &opd)) return wrap_op_error(b, def, e, &opd);
    if (frozen_arg && frozen_arg->i)
        for (int v = first_new; v < b->g->n_values; v++)
            if (b->g->values[v]->kind == KN_VAL_PARAM) b->g->values[v]->trainable = false;
    if (def->infer && def->infer(b->g, n, &opd)) return wrap_op_error(b, def, e, &opd);
    kf_note_new_values(b, first_new, e->line, e->col);
    *vid = n->out[0];
    return KN_OK;
}

/* ---- statements ---- */

static kn_status check_new_symbol(kf_builder *b, const kf_stmt *s)
{
    if (strcmp(s->name, "true") == 0 || strcmp(s->name, "false") == 0)
        return ERR(b, s->name_line, s->name_col, "pick another name", "'%s' is reserved", s->name);
    const kf_name_entry *prev = kf_names_get(&b->syms, s->name);
    if (!prev) prev = kf_names_get(&b->used, s->name);
    if (!prev) prev = kf_names_get(&b->pnames, s->name);
    if (!prev) return KN_OK;
    char hint[256];
    snprintf(hint, sizeof hint, "'%s' was first defined at line %d; pick another name", s->name, prev->line);
    return ERR(b, s->name_line, s->name_col, hint, "redefinition of '%s'", s->name);
}

static kn_status build_decl(kf_builder *b, const kf_stmt *s)
{
    if (check_new_symbol(b, s)) return KN_ERR;
    int vid = kn_graph_add_value(b->g, s->name, s->kind == KS_INPUT ? KN_VAL_INPUT : KN_VAL_LABEL, s->dtype,
                                 &s->shape);
    kf_names_put(&b->syms, s->name, vid, s->name_line, s->name_col);
    kf_names_put(&b->used, b->g->values[vid]->name, vid, s->name_line, s->name_col);
    return KN_OK;
}

static kn_status build_assign(kf_builder *b, const kf_stmt *s)
{
    if (check_new_symbol(b, s)) return KN_ERR;
    const kf_expr *e = s->expr;
    if (e->kind == KX_IDENT)
        return ERR(b, e->line, e->col, "use the value directly instead of a second name",
                   "'%s = %s' is an alias; the right side of '=' must be an op call", s->name, e->s);
    if (e->kind != KX_CALL) {
        char got[128];
        expr_desc(e, got, sizeof got);
        return ERR(b, e->line, e->col, "write NAME = op(args), e.g. h = relu(x)",
                   "expected an op call after '=', got %s", got);
    }
    int vid;
    memset(b->nested, 0, sizeof b->nested);
    if (strcmp(e->s, "onnx") == 0 ? kf_build_onnx(b, s, e, &vid) : build_call(b, s->name, e, true, &vid))
        return KN_ERR;
    kf_names_put(&b->syms, s->name, vid, s->name_line, s->name_col);
    if (strcmp(s->name, "loss") == 0) b->g->loss = vid;
    return KN_OK;
}

/* normalize=(mean0, std0, mean1, std1, ...) */
static kn_status data_normalize(kf_builder *b, const kf_expr *a)
{
    if (a->kind != KX_TUPLE || a->n % 2 != 0 || a->n > 8)
        return ERR(b, a->line, a->col, "per channel: normalize=(mean0, std0, mean1, std1, ...)",
                   "normalize expects mean, std pairs (at most 4)");
    for (int k = 0; k < a->n; k++) {
        if (a->items[k]->kind != KX_FLOAT && a->items[k]->kind != KX_INT)
            return ERR(b, a->items[k]->line, a->items[k]->col, NULL, "normalize expects numbers");
        double v = a->items[k]->kind == KX_INT ? (double)a->items[k]->i : a->items[k]->f;
        if (k % 2 == 1 && !(v > 0))
            return ERR(b, a->items[k]->line, a->items[k]->col, NULL, "a standard deviation must be > 0");
        b->g->meta.normalize[k] = v;
    }
    b->g->meta.n_normalize = a->n;
    return KN_OK;
}

static kn_status data_string(kf_builder *b, const kf_expr *a, const char *key, char **dst)
{
    if (a->kind != KX_STRING)
        return ERR(b, a->line, a->col, NULL, "data option '%s' expects a \"string\"", key);
    if (strstr(a->s, "..") || a->s[0] == '/')
        return ERR(b, a->line, a->col, "paths are relative to the data root (--data, KILN_DATA)",
                   "data option '%s' must stay inside the data root", key);
    free(*dst);
    *dst = kn_xstrdup(a->s);
    return KN_OK;
}

static kn_status data_size(kf_builder *b, const kf_expr *a, const char *key, int *dst)
{
    if (a->kind != KX_INT || a->i < 1 || a->i > 8192)
        return ERR(b, a->line, a->col, NULL, "data option '%s' expects an integer in 1..8192", key);
    *dst = (int)a->i;
    return KN_OK;
}

static kn_status build_data(kf_builder *b, const kf_stmt *s)
{
    static const char *const OPTIONS[] = {"normalize", "path", "labels", "resize", "crop"};
    const kf_expr *e = s->expr;
    free(b->g->meta.data_kind);
    b->g->meta.data_kind = kn_xstrdup(e->s);
    bool seen[5] = {false};
    for (int i = 0; i < e->n; i++) {
        const kf_expr *a = kf_subst(b, e->items[i]);
        if (!e->keys[i])
            return ERR(b, a->line, a->col, "write: data fashion_mnist(normalize=(0.2860, 0.3530))",
                       "data options are keywords");
        int k = -1;
        for (int o = 0; o < 5; o++)
            if (strcmp(e->keys[i], OPTIONS[o]) == 0) k = o;
        if (k < 0)
            return ERR(b, e->line, e->key_cols[i], "valid data options: normalize, path, labels, resize, crop",
                       "unknown data option '%s'", e->keys[i]);
        if (seen[k]) return ERR(b, e->line, e->key_cols[i], NULL, "'%s' given twice", OPTIONS[k]);
        seen[k] = true;
        kn_status st = k == 0   ? data_normalize(b, a)
                       : k == 1 ? data_string(b, a, "path", &b->g->meta.data_path)
                       : k == 2 ? data_string(b, a, "labels", &b->g->meta.labels)
                       : k == 3 ? data_size(b, a, "resize", &b->g->meta.resize)
                                : data_size(b, a, "crop", &b->g->meta.crop);
        if (st != KN_OK) return st;
    }
    if (b->g->meta.crop && b->g->meta.resize && b->g->meta.crop > b->g->meta.resize)
        return ERR(b, e->line, e->col, NULL, "crop %d is larger than resize %d", b->g->meta.crop, b->g->meta.resize);
    return KN_OK;
}

static kn_status build_optimizer(kf_builder *b, const kf_expr *e)
{
    char known[256], hint[400];
    if (!kn_optimizer_known(e->s)) {
        const char *near = kf_nearest(e->s, kn_optimizer_names, list_len(kn_optimizer_names));
        list_join(kn_optimizer_names, known, sizeof known);
        snprintf(hint, sizeof hint, "%s%s%sknown optimizers: %s", near ? "did you mean '" : "",
                 near ? near : "", near ? "'? " : "", known);
        return ERR(b, e->line, e->col, hint, "unknown optimizer '%s'", e->s);
    }
    kn_model_meta *m = &b->g->meta;
    free(m->optimizer);
    m->optimizer = kn_xstrdup(e->s);
    m->opt_attrs = e->n ? kn_xcalloc((size_t)e->n, sizeof *m->opt_attrs) : NULL;
    m->n_opt_attr = 0;
    for (int i = 0; i < e->n; i++) {
        const kf_expr *a = kf_subst(b, e->items[i]);
        if (!e->keys[i])
            return ERR(b, a->line, a->col, "write: optimizer adam(lr=1e-3)", "optimizer options are keywords");
        if (!kn_optimizer_option_known(e->keys[i])) {
            const char *near = kf_nearest(e->keys[i], kn_optimizer_options, list_len(kn_optimizer_options));
            list_join(kn_optimizer_options, known, sizeof known);
            snprintf(hint, sizeof hint, "%s%s%soptions: %s", near ? "did you mean '" : "", near ? near : "",
                     near ? "'? " : "", known);
            return ERR(b, e->line, e->key_cols[i], hint, "unknown optimizer option '%s'", e->keys[i]);
        }
        for (int k = 0; k < m->n_opt_attr; k++)
            if (strcmp(m->opt_attrs[k].name, e->keys[i]) == 0)
                return ERR(b, e->line, e->key_cols[i], NULL, "'%s' given twice", e->keys[i]);
        kn_attr *t = &m->opt_attrs[m->n_opt_attr];
        memset(t, 0, sizeof *t);
        switch (a->kind) {
        case KX_INT: t->kind = KN_ATTR_INT; t->i = a->i; break;
        case KX_FLOAT: t->kind = KN_ATTR_FLOAT; t->f = a->f; break;
        case KX_BOOL: t->kind = KN_ATTR_BOOL; t->i = a->i; break;
        case KX_STRING: t->kind = KN_ATTR_STRING; t->s = kn_xstrdup(a->s); break;
        case KX_TUPLE: {
            bool all_int = true;
            for (int k = 0; k < a->n; k++) all_int &= a->items[k]->kind == KX_INT;
            t->kind = all_int ? KN_ATTR_INTS : KN_ATTR_FLOATS;
            t->n = a->n;
            if (all_int) {
                t->ints = kn_xmalloc(sizeof *t->ints * (size_t)a->n);
                for (int k = 0; k < a->n; k++) t->ints[k] = a->items[k]->i;
            } else {
                t->floats = kn_xmalloc(sizeof *t->floats * (size_t)a->n);
                for (int k = 0; k < a->n; k++) t->floats[k] = a->items[k]->f;
            }
            break;
        }
        default:
            return ERR(b, a->line, a->col, "optimizer options are numbers, true/false, strings or tuples",
                       "invalid value for optimizer option '%s'", e->keys[i]);
        }
        t->name = kn_xstrdup(e->keys[i]);
        m->n_opt_attr++;
    }
    return KN_OK;
}

static kn_status build_train(kf_builder *b, const kf_stmt *s)
{
    kn_model_meta *m = &b->g->meta;
    for (int i = 0; i < s->n; i++) {
        const kf_train_item *it = &s->items[i];
        switch (it->kind) {
        case KTI_OPTIMIZER:
            if (build_optimizer(b, it->call)) return KN_ERR;
            break;
        case KTI_BATCH: m->batch = (int)it->i; break;
        case KTI_EPOCHS: m->epochs = (int)it->i; break;
        case KTI_SHUFFLE: m->shuffle = true; break;
        case KTI_SEED: m->seed = it->i; break;
        }
    }
    return KN_OK;
}

static kn_status build_outputs(kf_builder *b, const kf_stmt *s)
{
    for (int i = 0; i < s->n; i++) {
        const char *nm = s->names[i];
        const kf_name_entry *e = kf_names_get(&b->syms, nm);
        if (!e) {
            const char *near = kf_names_nearest(&b->syms, nm);
            char hint[256];
            if (near) snprintf(hint, sizeof hint, "did you mean '%s'?", near);
            else snprintf(hint, sizeof hint, "name a value defined above");
            return ERR(b, s->line, s->name_cols[i], hint, "output names undefined value '%s'", nm);
        }
        for (int k = 0; k < b->g->n_outputs; k++)
            if (b->g->outputs[k] == e->value)
                return ERR(b, s->line, s->name_cols[i], NULL, "'%s' is already an output", nm);
        if (b->g->n_outputs == (int)(sizeof b->g->outputs / sizeof b->g->outputs[0]))
            return ERR(b, s->line, s->name_cols[i], NULL, "too many outputs (the limit is 16)");
        b->g->outputs[b->g->n_outputs++] = e->value;
    }
    return KN_OK;
}

static kn_status build_all(kf_builder *b, const kf_ast *ast)
{
    const kf_stmt *model = &ast->stmts[0];
    const kf_stmt *data = NULL, *train = NULL;
    for (int i = 1; i < ast->n_stmts; i++) {
        const kf_stmt *s = &ast->stmts[i];
        kn_status st = KN_OK;
        switch (s->kind) {
        case KS_MODEL: break; /* the parser allows exactly one, first */
        case KS_DATA:
            if (data) return ERR(b, s->line, s->col, NULL, "second 'data' statement (the first is at line %d)", data->line);
            data = s;
            st = build_data(b, s);
            break;
        case KS_TRAIN:
            if (train) return ERR(b, s->line, s->col, NULL, "second 'train' block (the first is at line %d)", train->line);
            train = s;
            st = build_train(b, s);
            break;
        case KS_INPUT:
        case KS_LABEL: st = build_decl(b, s); break;
        case KS_ASSIGN: st = build_assign(b, s); break;
        case KS_OUTPUT: st = build_outputs(b, s); break;
        case KS_PARAM: st = kf_build_param(b, s); break;
        }
        if (st) return st;
    }
    if (b->g->n_outputs == 0)
        return ERR(b, model->line, model->col, "add a line like 'output logits' naming what the model computes",
                   "model '%s' has no 'output' statement", model->name);
    return KN_OK;
}

kn_status kf_build(const kf_source *src, const kf_ast *ast, const kn_frontend_opts *o, kn_graph **out, kn_diag *d)
{
    static const kn_frontend_opts none = {0};
    *out = NULL;
    if (ast->n_stmts == 0)
        return kf_error(src, d, 1, 1, "a model file starts with a line like 'model my_net'", "model file is empty");
    const kf_stmt *first = &ast->stmts[0];
    if (first->kind != KS_MODEL)
        return kf_error(src, d, first->line, first->col, "start the file with a line like 'model my_net'",
                        "missing 'model NAME' line");
    kf_builder b = {.src = src, .d = d, .opts = o ? o : &none};
    b.g = kn_graph_new(first->name);
    b.g->loss = -1;
    b.file = kn_graph_intern_file(b.g, src->name);
    kf_names_init(&b.syms);
    kf_names_init(&b.used);
    kf_names_init(&b.pnames);
    kn_status st = kf_params_check_sets(&b, ast);
    if (!st) st = build_all(&b, ast);
    kf_names_free(&b.syms);
    kf_names_free(&b.used);
    kf_names_free(&b.pnames);
    free(b.params);
    kf_ast_free(&b.scratch);
    if (st) {
        kn_graph_free(b.g);
        return st;
    }
    *out = b.g;
    return KN_OK;
}

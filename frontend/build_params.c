/* build_params.c — model parameters: `param inner = 100` names a literal
 * that later statements use wherever a literal goes (`linear(h, inner)`,
 * `dropout(h, p=drop)`, data and optimizer options), and that the command
 * line overrides (`kiln build m.kiln --set inner=10`).
 *
 * A parameter is declared before its first use, like a value, and shares
 * the value namespace, so `inner` never means two things.  An override must
 * have the default's kind (an integer stays an integer; a number accepts an
 * integer), so `--set inner=0.5` fails at the declaration instead of
 * surprising an op later.  There are no expressions: a parameter is a knob,
 * not a computation.
 */
#include "build_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The NAME of "NAME=VALUE" (len bytes) and its VALUE; false when malformed. */
static bool split_set(const char *set, size_t *name_len, const char **value)
{
    const char *eq = strchr(set, '=');
    if (!eq || eq == set) return false;
    *name_len = (size_t)(eq - set);
    *value = eq + 1;
    return true;
}

static bool set_names(const char *set, const char *name)
{
    size_t n;
    const char *v;
    return split_set(set, &n, &v) && strlen(name) == n && strncmp(set, name, n) == 0;
}

kn_status kf_params_check_sets(kf_builder *b, const kf_ast *ast)
{
    const kn_frontend_opts *o = b->opts;
    const char *names[256];
    int n = 0;
    for (int i = 0; i < ast->n_stmts && n < 256; i++)
        if (ast->stmts[i].kind == KS_PARAM) names[n++] = ast->stmts[i].name;
    for (int i = 0; i < o->n_sets; i++) {
        size_t len;
        const char *v;
        if (!split_set(o->sets[i], &len, &v))
            return kn_diag_fail(b->d, "%s: error: --set '%s' is not NAME=VALUE", b->src->name, o->sets[i]);
        for (int k = 0; k < i; k++)
            if (strncmp(o->sets[k], o->sets[i], len + 1) == 0)
                return kn_diag_fail(b->d, "%s: error: --set %.*s given twice", b->src->name, (int)len, o->sets[i]);
        bool found = false;
        for (int k = 0; k < n && !found; k++) found = set_names(o->sets[i], names[k]);
        if (found) continue;
        char key[129];
        snprintf(key, sizeof key, "%.*s", (int)(len < 128 ? len : 128), o->sets[i]);
        const char *near = kf_nearest(key, names, n);
        kn_strbuf l;
        kn_sb_init(&l);
        for (int k = 0; k < n; k++) kn_sb_printf(&l, "%s%s", k ? ", " : "", names[k]);
        kn_diag_fail(b->d, "%s: error: --set %s: the model has no parameter '%s'\nhint: %s%s%s%s%s", b->src->name,
                     o->sets[i], key, near ? "did you mean '" : "", near ? near : "", near ? "'? " : "",
                     n ? "its parameters: " : "declare one with: param NAME = default",
                     n ? l.s : "");
        kn_sb_free(&l);
        return KN_ERR;
    }
    return KN_OK;
}

static const char *kind_name(kf_expr_kind k)
{
    switch (k) {
    case KX_INT: return "an integer";
    case KX_FLOAT: return "a number";
    case KX_BOOL: return "true or false";
    default: return "a string";
    }
}

/* Parses the text of --set NAME=TEXT as a literal of the default's kind
 * into `e` (which holds a copy of the default's position). */
static bool parse_override(kf_builder *b, const char *text, kf_expr_kind want, kf_expr *e)
{
    char *end;
    errno = 0;
    switch (want) {
    case KX_INT: {
        long long v = strtoll(text, &end, 10);
        if (!*text || *end || errno) return false;
        e->i = v;
        e->f = (double)v;
        return true;
    }
    case KX_FLOAT: {
        double v = strtod(text, &end);
        if (!*text || *end || errno) return false;
        e->kind = KX_FLOAT;
        e->f = v;
        return true;
    }
    case KX_BOOL:
        if (strcmp(text, "true") && strcmp(text, "false")) return false;
        e->i = strcmp(text, "true") == 0;
        return true;
    default:
        e->s = kf_ast_strndup(&b->scratch, text, strlen(text));
        return true;
    }
}

kn_status kf_build_param(kf_builder *b, const kf_stmt *s)
{
    const kf_name_entry *prev = kf_names_get(&b->syms, s->name);
    if (!prev) prev = kf_names_get(&b->used, s->name);
    if (!prev) prev = kf_names_get(&b->pnames, s->name);
    if (prev) {
        char hint[256];
        snprintf(hint, sizeof hint, "'%s' was first defined at line %d; pick another name", s->name, prev->line);
        return ERR(b, s->name_line, s->name_col, hint, "redefinition of '%s'", s->name);
    }
    const kf_expr *value = s->expr;
    for (int i = 0; i < b->opts->n_sets; i++) {
        if (!set_names(b->opts->sets[i], s->name)) continue;
        kf_expr *e = kf_ast_alloc(&b->scratch, sizeof *e);
        *e = *s->expr;
        const char *text = strchr(b->opts->sets[i], '=') + 1;
        if (!parse_override(b, text, s->expr->kind, e)) {
            char hint[256];
            snprintf(hint, sizeof hint, "the default here is %s; give --set %s= %s", kind_name(s->expr->kind),
                     s->name, kind_name(s->expr->kind));
            return ERR(b, s->name_line, s->name_col, hint, "--set %s=%.64s: parameter '%s' takes %s", s->name,
                       text, s->name, kind_name(s->expr->kind));
        }
        value = e;
    }
    b->params = kn_xrealloc(b->params, sizeof *b->params * (size_t)(b->n_params + 1));
    b->params[b->n_params] = (kf_param){s->name, value, s->name_line, s->name_col};
    kf_names_put(&b->pnames, s->name, b->n_params++, s->name_line, s->name_col);
    return KN_OK;
}

const kf_expr *kf_subst(kf_builder *b, const kf_expr *e)
{
    if (e->kind != KX_IDENT) return e;
    const kf_name_entry *p = kf_names_get(&b->pnames, e->s);
    if (!p) return e;
    kf_expr *c = kf_ast_alloc(&b->scratch, sizeof *c);
    *c = *b->params[p->value].value;
    c->line = e->line; /* errors about the value point at its use */
    c->col = e->col;
    return c;
}

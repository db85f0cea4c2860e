/* graph.c — building, querying, cloning and freeing kn_graph. */
#include "ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

kn_graph *kn_graph_new(const char *name)
{
    kn_graph *g = kn_xcalloc(1, sizeof *g);
    g->name = kn_xstrdup(name ? name : "model");
    g->loss = -1;
    g->meta.data_kind = kn_xstrdup("");
    g->meta.data_path = kn_xstrdup("");
    g->meta.labels = kn_xstrdup("");
    g->meta.optimizer = kn_xstrdup("");
    g->meta.batch = 64;
    g->meta.epochs = 10;
    return g;
}

static void value_free(kn_value *v)
{
    if (!v) return;
    free(v->name);
    free(v->data);
    free(v);
}

void kn_attr_free(kn_attr *a)
{
    free(a->name);
    free(a->ints);
    free(a->floats);
    free(a->s);
    memset(a, 0, sizeof *a);
}

void kn_node_free(kn_node *n)
{
    if (!n) return;
    free(n->name);
    free(n->in);
    for (int i = 0; i < n->n_attr; i++) kn_attr_free(&n->attrs[i]);
    free(n->attrs);
    free(n);
}

void kn_graph_free(kn_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n_values; i++) value_free(g->values[i]);
    for (int i = 0; i < g->n_nodes; i++) kn_node_free(g->nodes[i]);
    free(g->values);
    free(g->nodes);
    for (int i = 0; i < g->meta.n_opt_attr; i++) kn_attr_free(&g->meta.opt_attrs[i]);
    free(g->meta.opt_attrs);
    free(g->meta.data_kind);
    free(g->meta.data_path);
    free(g->meta.labels);
    free(g->meta.optimizer);
    for (int i = 0; i < g->n_files; i++) free(g->files[i]);
    free(g->files);
    free(g->name);
    free(g);
}

const char *kn_graph_intern_file(kn_graph *g, const char *file)
{
    if (!file) return NULL;
    for (int i = 0; i < g->n_files; i++)
        if (strcmp(g->files[i], file) == 0) return g->files[i];
    g->files = kn_xrealloc(g->files, sizeof(char *) * (size_t)(g->n_files + 1));
    g->files[g->n_files] = kn_xstrdup(file);
    return g->files[g->n_files++];
}

int kn_graph_add_value(kn_graph *g, const char *name, kn_val_kind kind,
                       kn_dtype dtype, const kn_shape *shape)
{
    if (g->n_values == g->cap_values) {
        g->cap_values = g->cap_values ? g->cap_values * 2 : 32;
        g->values = kn_xrealloc(g->values, sizeof(kn_value *) * (size_t)g->cap_values);
    }
    kn_value *v = kn_xcalloc(1, sizeof *v);
    v->id = g->n_values;
    v->name = kn_xstrdup(name);
    v->kind = kind;
    v->dtype = dtype;
    v->producer = -1;
    v->trainable = (kind == KN_VAL_PARAM);
    v->lr_scale = 1.0;
    if (shape) {
        v->shape = *shape;
        v->shape_known = true;
    }
    g->values[g->n_values] = v;
    return g->n_values++;
}

kn_node *kn_graph_add_node(kn_graph *g, int op, const char *name,
                           const int *in, int n_in, int n_out)
{
    if (g->n_nodes == g->cap_nodes) {
        g->cap_nodes = g->cap_nodes ? g->cap_nodes * 2 : 32;
        g->nodes = kn_xrealloc(g->nodes, sizeof(kn_node *) * (size_t)g->cap_nodes);
    }
    kn_node *n = kn_xcalloc(1, sizeof *n);
    n->id = g->n_nodes;
    n->op = op;
    n->name = kn_xstrdup(name);
    n->n_in = n_in;
    n->in = kn_xmalloc(sizeof(int) * (size_t)(n_in > 0 ? n_in : 1));
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    if (n_out > KN_MAX_OUTPUTS) n_out = KN_MAX_OUTPUTS;
    n->n_out = n_out;
    g->nodes[g->n_nodes++] = n;
    for (int i = 0; i < n_out; i++) {
        char vname[512];
        if (i == 0) snprintf(vname, sizeof vname, "%s", name);
        else snprintf(vname, sizeof vname, "%s.%d", name, i);
        int vid = kn_graph_add_value(g, vname, KN_VAL_NODE, KN_F32, NULL);
        g->values[vid]->producer = n->id;
        n->out[i] = vid;
    }
    return n;
}

void kn_graph_move_node(kn_graph *g, int from, int to)
{
    if (from == to) return;
    kn_node *n = g->nodes[from];
    if (from > to) memmove(&g->nodes[to + 1], &g->nodes[to], sizeof(kn_node *) * (size_t)(from - to));
    else memmove(&g->nodes[from], &g->nodes[from + 1], sizeof(kn_node *) * (size_t)(to - from));
    g->nodes[to] = n;
    for (int i = from < to ? from : to; i <= (from < to ? to : from); i++) {
        kn_node *m = g->nodes[i];
        m->id = i;
        for (int k = 0; k < m->n_out; k++) g->values[m->out[k]]->producer = i;
    }
}

void kn_node_append_input(kn_node *n, int value_id)
{
    n->in = kn_xrealloc(n->in, sizeof(int) * (size_t)(n->n_in + 1));
    n->in[n->n_in++] = value_id;
}

kn_status kn_diag_locate(kn_diag *d, const kn_node *n)
{
    if (!n->loc.file) return KN_ERR;
    char msg[sizeof d->text];
    snprintf(msg, sizeof msg, "%s", d->text);
    return kn_diag_fail(d, "%s:%d:%d: error: %s", n->loc.file, n->loc.line, n->loc.col, msg);
}

kn_value *kn_graph_value(const kn_graph *g, int id)
{
    return (id >= 0 && id < g->n_values) ? g->values[id] : NULL;
}

kn_node *kn_graph_node(const kn_graph *g, int id)
{
    return (id >= 0 && id < g->n_nodes) ? g->nodes[id] : NULL;
}

bool kn_graph_is_output(const kn_graph *g, int vid)
{
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == vid) return true;
    return vid == g->loss;
}

kn_node *kn_graph_sole_reader(const kn_graph *g, int vid)
{
    if (kn_graph_is_output(g, vid)) return NULL;
    kn_node *only = NULL;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_in; k++)
            if (g->nodes[i]->in[k] == vid) {
                if (only) return NULL;
                only = g->nodes[i];
            }
    return only;
}

kn_node *kn_graph_producer(const kn_graph *g, int vid)
{
    const kn_value *v = g->values[vid];
    return v->kind == KN_VAL_NODE && v->producer >= 0 ? kn_graph_node(g, v->producer) : NULL;
}

int kn_graph_find_value(const kn_graph *g, const char *name)
{
    for (int i = 0; i < g->n_values; i++)
        if (strcmp(g->values[i]->name, name) == 0) return i;
    return -1;
}

int kn_graph_values_of_kind(const kn_graph *g, kn_val_kind kind, int *ids, int cap)
{
    int k = 0;
    for (int i = 0; i < g->n_values; i++) {
        if (g->values[i]->kind != kind) continue;
        if (ids && k < cap) ids[k] = i;
        k++;
    }
    return k;
}

/* ---- attributes ---- */

kn_attr *kn_node_attr(const kn_node *n, const char *name)
{
    for (int i = 0; i < n->n_attr; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

int64_t kn_node_attr_i(const kn_node *n, const char *name, int64_t dflt)
{
    kn_attr *a = kn_node_attr(n, name);
    if (!a) return dflt;
    if (a->kind == KN_ATTR_FLOAT) return (int64_t)a->f;
    return a->i;
}

double kn_node_attr_f(const kn_node *n, const char *name, double dflt)
{
    kn_attr *a = kn_node_attr(n, name);
    if (!a) return dflt;
    if (a->kind == KN_ATTR_INT || a->kind == KN_ATTR_BOOL) return (double)a->i;
    return a->f;
}

const char *kn_node_attr_s(const kn_node *n, const char *name, const char *dflt)
{
    kn_attr *a = kn_node_attr(n, name);
    return (a && a->kind == KN_ATTR_STRING && a->s) ? a->s : dflt;
}

static kn_attr *attr_slot(kn_node *n, const char *name, kn_attr_kind kind)
{
    kn_attr *a = kn_node_attr(n, name);
    if (a) {
        kn_attr_free(a);
    } else {
        n->attrs = kn_xrealloc(n->attrs, sizeof(kn_attr) * (size_t)(n->n_attr + 1));
        a = &n->attrs[n->n_attr++];
        memset(a, 0, sizeof *a);
    }
    a->name = kn_xstrdup(name);
    a->kind = kind;
    return a;
}

void kn_node_set_attr_i(kn_node *n, const char *name, int64_t v) { attr_slot(n, name, KN_ATTR_INT)->i = v; }
void kn_node_set_attr_f(kn_node *n, const char *name, double v) { attr_slot(n, name, KN_ATTR_FLOAT)->f = v; }
void kn_node_set_attr_b(kn_node *n, const char *name, bool v) { attr_slot(n, name, KN_ATTR_BOOL)->i = v; }
void kn_node_set_attr_s(kn_node *n, const char *name, const char *v) { attr_slot(n, name, KN_ATTR_STRING)->s = kn_xstrdup(v); }

void kn_node_set_attr_ints(kn_node *n, const char *name, const int64_t *v, int count)
{
    kn_attr *a = attr_slot(n, name, KN_ATTR_INTS);
    a->n = count;
    a->ints = kn_xmalloc(sizeof(int64_t) * (size_t)(count > 0 ? count : 1));
    if (count > 0) memcpy(a->ints, v, sizeof(int64_t) * (size_t)count);
}

void kn_node_set_attr_floats(kn_node *n, const char *name, const double *v, int count)
{
    kn_attr *a = attr_slot(n, name, KN_ATTR_FLOATS);
    a->n = count;
    a->floats = kn_xmalloc(sizeof(double) * (size_t)(count > 0 ? count : 1));
    if (count > 0) memcpy(a->floats, v, sizeof(double) * (size_t)count);
}

void kn_attr_copy(kn_attr *dst, const kn_attr *src)
{
    *dst = *src;
    dst->name = kn_xstrdup(src->name);
    dst->s = src->s ? kn_xstrdup(src->s) : NULL;
    dst->ints = NULL;
    dst->floats = NULL;
    if (src->ints) {
        dst->ints = kn_xmalloc(sizeof(int64_t) * (size_t)(src->n > 0 ? src->n : 1));
        if (src->n > 0) memcpy(dst->ints, src->ints, sizeof(int64_t) * (size_t)src->n);
    }
    if (src->floats) {
        dst->floats = kn_xmalloc(sizeof(double) * (size_t)(src->n > 0 ? src->n : 1));
        if (src->n > 0) memcpy(dst->floats, src->floats, sizeof(double) * (size_t)src->n);
    }
}

/* ---- clone ---- */

kn_graph *kn_graph_clone(const kn_graph *g)
{
    kn_graph *c = kn_graph_new(g->name);
    c->mode = g->mode;
    for (int i = 0; i < g->n_files; i++) kn_graph_intern_file(c, g->files[i]);
    for (int i = 0; i < g->n_values; i++) {
        const kn_value *v = g->values[i];
        int id = kn_graph_add_value(c, v->name, v->kind, v->dtype, v->shape_known ? &v->shape : NULL);
        kn_value *w = c->values[id];
        w->producer = v->producer;
        w->trainable = v->trainable;
        w->lr_scale = v->lr_scale;
        w->init = v->init;
        w->fan_in = v->fan_in;
        w->fan_out = v->fan_out;
        w->dead = v->dead;
        if (v->data) {
            int64_t numel = 0;
            kn_shape_numel(&v->shape, 1, &numel);
            size_t bytes = (size_t)numel * kn_dtype_size(v->dtype);
            w->data = kn_xmalloc(bytes);
            memcpy(w->data, v->data, bytes);
        }
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const kn_node *n = g->nodes[i];
        if (c->n_nodes == c->cap_nodes) {
            c->cap_nodes = c->cap_nodes ? c->cap_nodes * 2 : 32;
            c->nodes = kn_xrealloc(c->nodes, sizeof(kn_node *) * (size_t)c->cap_nodes);
        }
        kn_node *m = kn_xcalloc(1, sizeof *m);
        *m = *n;
        m->name = kn_xstrdup(n->name);
        m->in = kn_xmalloc(sizeof(int) * (size_t)(n->n_in > 0 ? n->n_in : 1));
        memcpy(m->in, n->in, sizeof(int) * (size_t)n->n_in);
        m->attrs = n->n_attr ? kn_xmalloc(sizeof(kn_attr) * (size_t)n->n_attr) : NULL;
        for (int a = 0; a < n->n_attr; a++) kn_attr_copy(&m->attrs[a], &n->attrs[a]);
        m->loc.file = kn_graph_intern_file(c, n->loc.file);
        c->nodes[c->n_nodes++] = m;
    }
    c->n_outputs = g->n_outputs;
    memcpy(c->outputs, g->outputs, sizeof g->outputs);
    c->loss = g->loss;
    free(c->meta.data_kind);
    free(c->meta.data_path);
    free(c->meta.labels);
    free(c->meta.optimizer);
    c->meta = g->meta;
    c->meta.data_kind = kn_xstrdup(g->meta.data_kind);
    c->meta.data_path = kn_xstrdup(g->meta.data_path);
    c->meta.labels = kn_xstrdup(g->meta.labels);
    c->meta.optimizer = kn_xstrdup(g->meta.optimizer);
    c->meta.opt_attrs = g->meta.n_opt_attr ? kn_xmalloc(sizeof(kn_attr) * (size_t)g->meta.n_opt_attr) : NULL;
    for (int a = 0; a < g->meta.n_opt_attr; a++) kn_attr_copy(&c->meta.opt_attrs[a], &g->meta.opt_attrs[a]);
    return c;
}

/* ---- shapes ---- */

bool kn_shape_is_batched(const kn_shape *s) { return s->rank > 0 && s->d[0] == KN_DIM_N; }

bool kn_shape_numel_per_sample(const kn_shape *s, int64_t *out)
{
    int64_t p = 1;
    for (int i = kn_shape_is_batched(s) ? 1 : 0; i < s->rank; i++)
        if (s->d[i] < 0 || !kn_mul_ok(p, s->d[i], &p)) return false;
    *out = p;
    return true;
}

bool kn_shape_numel(const kn_shape *s, int64_t n, int64_t *out)
{
    int64_t p;
    if (!kn_shape_numel_per_sample(s, &p)) return false;
    if (kn_shape_is_batched(s)) return kn_mul_ok(p, n, out);
    *out = p;
    return true;
}

bool kn_shape_equal(const kn_shape *a, const kn_shape *b)
{
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->d[i] != b->d[i]) return false;
    return true;
}

const char *kn_dtype_name(kn_dtype dt) { return dt == KN_I64 ? "i64" : "f32"; }
size_t kn_dtype_size(kn_dtype dt) { return dt == KN_I64 ? 8 : 4; }

void kn_shape_format(kn_dtype dt, const kn_shape *s, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "%s[", kn_dtype_name(dt));
    for (int i = 0; i < s->rank && o < cap; i++) {
        if (s->d[i] == KN_DIM_N) o += (size_t)snprintf(out + o, cap - o, "%sN", i ? "," : "");
        else o += (size_t)snprintf(out + o, cap - o, "%s%lld", i ? "," : "", (long long)s->d[i]);
    }
    if (o < cap) snprintf(out + o, cap - o, "]");
}

kn_shape kn_shape_make(int rank, const int64_t *d)
{
    kn_shape s;
    memset(&s, 0, sizeof s);
    s.rank = rank > KN_MAX_RANK ? KN_MAX_RANK : rank;
    for (int i = 0; i < s.rank; i++) s.d[i] = d[i];
    return s;
}

void kn_graph_param_counts(const kn_graph *g, int64_t *trainable,
                           int64_t *frozen, int64_t *buffers)
{
    int64_t t = 0, f = 0, b = 0;
    for (int i = 0; i < g->n_values; i++) {
        const kn_value *v = g->values[i];
        int64_t n = 0;
        if (!v->shape_known || !kn_shape_numel(&v->shape, 1, &n)) continue;
        if (v->kind == KN_VAL_PARAM) {
            if (v->trainable) t += n;
            else f += n;
        } else if (v->kind == KN_VAL_BUFFER) {
            b += n;
        }
    }
    if (trainable) *trainable = t;
    if (frozen) *frozen = f;
    if (buffers) *buffers = b;
}

kn_status kn_graph_make_input(kn_graph *g, int vid, kn_diag *d)
{
    kn_value *v = kn_graph_value(g, vid);
    if (!v || v->kind != KN_VAL_NODE || v->producer < 0)
        return kn_diag_fail(d, "internal: '%s' is not a node output", v ? v->name : "?");
    int at = v->producer;
    kn_node *n = g->nodes[at];
    if (n->n_out != 1)
        return kn_diag_fail(d, "internal: '%s' comes from a node with %d outputs", v->name, n->n_out);
    kn_node_free(n);
    memmove(&g->nodes[at], &g->nodes[at + 1], sizeof *g->nodes * (size_t)(g->n_nodes - at - 1));
    g->n_nodes--;
    for (int i = at; i < g->n_nodes; i++) {
        g->nodes[i]->id = i;
        for (int k = 0; k < g->nodes[i]->n_out; k++) g->values[g->nodes[i]->out[k]]->producer = i;
    }
    v->kind = KN_VAL_INPUT;
    v->producer = -1;
    return KN_OK;
}

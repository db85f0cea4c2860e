/* onnx_import.c — the importer's driver: unpack the ModelProto, check the
 * opset, bind graph inputs and initializers, convert every node in order
 * (folding constants where it can), then expose the graph outputs under
 * their ONNX names.  Op converters live in onnx_ops.c, folding in
 * onnx_fold.c, tensor data in onnx_tensor.c.
 *
 * Unsupported ops are found before anything is converted, so one message
 * lists all of them with their nodes.  value_info is not needed: kiln infers
 * every shape itself.
 */
#define _GNU_SOURCE
#include "onnx_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Model files above this are refused before reading (protobuf's own limit is 2 GiB). */
#define KX_MAX_MODEL_BYTES ((size_t)2 << 30)

/* ---- messages ---- */

kn_status kx_fail(kx_importer *im, const char *fmt, ...)
{
    char msg[3000], ctx[512] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (im->node) {
        const Onnx__NodeProto *n = im->node;
        char nm[160] = "", out[160] = "";
        if (n->name && *n->name) kn_c_comment_text(n->name, nm, sizeof nm);
        if (n->n_output && n->output[0]) kn_c_comment_text(n->output[0], out, sizeof out);
        size_t o = (size_t)snprintf(ctx, sizeof ctx, "node %d", im->node_index);
        if (nm[0]) o += (size_t)snprintf(ctx + o, sizeof ctx - o, " '%s'", nm);
        char ty[96];
        kn_c_comment_text(n->op_type ? n->op_type : "?", ty, sizeof ty);
        o += (size_t)snprintf(ctx + o, sizeof ctx - o, " (%s, opset %lld", ty,
                              (long long)im->opset);
        if (out[0]) o += (size_t)snprintf(ctx + o, sizeof ctx - o, ", output '%s'", out);
        snprintf(ctx + o, sizeof ctx - o, "): ");
    }
    return kn_diag_fail(im->d, "%s: error: %s%s", im->path, ctx, msg);
}

/* ---- the name table ---- */

kx_entry *kx_lookup(kx_importer *im, const char *name)
{
    for (int i = im->n_tab - 1; i >= 0; i--) /* latest binding wins */
        if (strcmp(im->tab[i].name, name) == 0) return &im->tab[i];
    return NULL;
}

static kx_entry *bind(kx_importer *im, const char *name)
{
    if (im->n_tab == im->cap_tab) {
        im->cap_tab = im->cap_tab ? im->cap_tab * 2 : 256;
        im->tab = kn_xrealloc(im->tab, sizeof *im->tab * (size_t)im->cap_tab);
    }
    kx_entry *e = &im->tab[im->n_tab++];
    memset(e, 0, sizeof *e);
    e->name = kn_xstrdup(name);
    e->vid = -1;
    return e;
}

void kx_bind_value(kx_importer *im, const char *name, int vid) { bind(im, name)->vid = vid; }
void kx_bind_const(kx_importer *im, const char *name, kx_const *c) { bind(im, name)->c = c; }

bool kx_has_input(const kx_importer *im, int i)
{
    return i < (int)im->node->n_input && im->node->input[i] && im->node->input[i][0];
}

const kx_const *kx_input_const(kx_importer *im, int i)
{
    if (!kx_has_input(im, i)) return NULL;
    kx_entry *e = kx_lookup(im, im->node->input[i]);
    return e ? e->c : NULL;
}

int kx_place_const(kx_importer *im, const char *name, const kx_const *c, kn_val_kind kind, bool from_initializer)
{
    for (int64_t i = 0; c->dtype == KN_I64 && i < c->numel; i++)
        if (((const int64_t *)c->data)[i] == KX_SYM_N) {
            kx_fail(im, "'%s' holds the batch size, which kiln only knows at run time", name);
            return -1;
        }
    if (c->dtype == KN_I64) kind = KN_VAL_CONST; /* the weight blob is f32 only */
    char full[1024];
    snprintf(full, sizeof full, "%s%s", im->prefix, name);
    int vid = kn_graph_add_value(im->g, full, kind, c->dtype, &c->shape);
    kn_value *v = im->g->values[vid];
    size_t bytes = (size_t)(c->numel > 0 ? c->numel : 1) * kn_dtype_size(c->dtype);
    v->data = kn_xmalloc(bytes);
    memcpy(v->data, c->data, bytes);
    v->init = KN_INIT_DATA;
    /* Imported weights are frozen unless a model file splices them with
     * frozen=false; constants computed by Constant nodes never train. */
    v->trainable = kind == KN_VAL_PARAM && im->trainable && from_initializer;
    return vid;
}

bool kx_input_is_initializer(kx_importer *im, int i)
{
    if (!kx_has_input(im, i)) return false;
    kx_entry *e = kx_lookup(im, im->node->input[i]);
    return e && e->initializer;
}

int kx_input_value(kx_importer *im, int i)
{
    if (!kx_has_input(im, i)) {
        kx_fail(im, "input %d is missing", i);
        return -1;
    }
    const char *name = im->node->input[i];
    kx_entry *e = kx_lookup(im, name);
    if (!e) {
        kx_fail(im, "input '%s' is not produced by any earlier node, graph input or initializer", name);
        return -1;
    }
    if (e->vid < 0) e->vid = kx_place_const(im, name, e->c, KN_VAL_PARAM, e->initializer);
    return e->vid;
}

/* ---- attributes ---- */

const Onnx__AttributeProto *kx_attr(const kx_importer *im, const char *name)
{
    for (size_t i = 0; i < im->node->n_attribute; i++)
        if (im->node->attribute[i]->name && !strcmp(im->node->attribute[i]->name, name))
            return im->node->attribute[i];
    return NULL;
}

int64_t kx_attr_i(const kx_importer *im, const char *name, int64_t dflt)
{
    const Onnx__AttributeProto *a = kx_attr(im, name);
    return a && a->has_i ? a->i : dflt;
}

double kx_attr_f(const kx_importer *im, const char *name, double dflt)
{
    const Onnx__AttributeProto *a = kx_attr(im, name);
    return a && a->has_f ? a->f : dflt;
}

int kx_attr_ints(kx_importer *im, const char *name, int64_t *out, int cap)
{
    const Onnx__AttributeProto *a = kx_attr(im, name);
    if (!a) return -1;
    if ((int)a->n_ints > cap) {
        kx_fail(im, "attribute '%s' has %zu values, at most %d are supported", name, a->n_ints, cap);
        return -2;
    }
    for (size_t i = 0; i < a->n_ints; i++) out[i] = a->ints[i];
    return (int)a->n_ints;
}

const char *kx_attr_s(const kx_importer *im, const char *name, const char *dflt, char *buf, size_t cap)
{
    const Onnx__AttributeProto *a = kx_attr(im, name);
    if (!a || !a->has_s) snprintf(buf, cap, "%s", dflt);
    else snprintf(buf, cap, "%.*s", (int)a->s.len, (const char *)a->s.data);
    return buf;
}

/* ---- building IR ---- */

kn_node *kx_node(kx_importer *im, int op, const char *suffix, const int *in, int n_in)
{
    const char *out = im->node->n_output ? im->node->output[0] : "onnx";
    char name[1024];
    snprintf(name, sizeof name, "%s%s%s", im->prefix, out, suffix);
    kn_node *n = kn_graph_add_node(im->g, op, name, in, n_in, 1);
    n->loc = im->loc;
    return n;
}

kn_status kx_finish(kx_importer *im, kn_node *n)
{
    const kn_op_def *def = kn_op_get(n->op);
    kn_diag opd;
    kn_diag_clear(&opd);
    if ((def->add_params && def->add_params(im->g, n, &opd) != KN_OK) || def->infer(im->g, n, &opd) != KN_OK)
        return kx_fail(im, "%s", opd.text);
    return KN_OK;
}

kn_status kx_finish_bind(kx_importer *im, kn_node *n)
{
    if (kx_finish(im, n) != KN_OK) return KN_ERR;
    kx_bind_value(im, im->node->output[0], n->out[0]);
    return KN_OK;
}

/* ---- model level ---- */

static kn_status read_opset(kx_importer *im, const Onnx__ModelProto *m)
{
    im->opset = -1;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if (!o->domain || !*o->domain || !strcmp(o->domain, "ai.onnx")) im->opset = o->version;
    }
    if (im->opset < 0) return kx_fail(im, "the model imports no opset of the default ONNX domain");
    if (im->opset < KX_OPSET_MIN || im->opset > KX_OPSET_MAX)
        return kx_fail(im, "opset %lld is outside the range kiln supports (%d..%d)", (long long)im->opset,
                       KX_OPSET_MIN, KX_OPSET_MAX);
    return KN_OK;
}

bool kx_is_initializer(const Onnx__GraphProto *gp, const char *name)
{
    for (size_t i = 0; i < gp->n_initializer; i++)
        if (gp->initializer[i]->name && !strcmp(gp->initializer[i]->name, name)) return true;
    return false;
}

kn_status kx_input_type(kx_importer *im, const Onnx__ValueInfoProto *vi, kn_dtype *dt, kn_shape *s)
{
    const char *nm = vi->name ? vi->name : "";
    const Onnx__TypeProto *t = vi->type;
    if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type->shape)
        return kx_fail(im, "graph input '%s' is not a tensor with a known rank", nm);
    int32_t et = t->tensor_type->elem_type;
    if (et != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && et != ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        return kx_fail(im, "graph input '%s' has element type %d; kiln takes float and int64 inputs", nm, (int)et);
    const Onnx__TensorShapeProto *sp = t->tensor_type->shape;
    if (sp->n_dim > KN_MAX_RANK) return kx_fail(im, "graph input '%s' has rank %zu (at most %d)", nm, sp->n_dim, KN_MAX_RANK);
    memset(s, 0, sizeof *s);
    s->rank = (int)sp->n_dim;
    for (size_t i = 0; i < sp->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *dm = sp->dim[i];
        bool fixed = dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dm->dim_value > 0;
        if (i == 0 && !fixed) s->d[0] = KN_DIM_N;
        else if (fixed) s->d[i] = dm->dim_value;
        else return kx_fail(im, "graph input '%s': dim %zu is dynamic; only the first (batch) dim may be", nm, i);
    }
    *dt = et == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? KN_F32 : KN_I64;
    return KN_OK;
}

/* A graph input: f32 or i64 tensor with a known rank; its first dim becomes
 * the batch N when it is symbolic.  A fixed 1 stays 1: graphs that feed
 * weights as inputs (ONNX's node tests do) would otherwise get a "batched"
 * weight. */
static kn_status bind_inputs(kx_importer *im, const Onnx__GraphProto *gp)
{
    for (size_t i = 0; i < gp->n_input; i++) {
        const char *nm = gp->input[i]->name ? gp->input[i]->name : "";
        if (kx_is_initializer(gp, nm)) continue; /* IR < 4 lists initializers as inputs */
        kn_dtype dt;
        kn_shape s;
        if (kx_input_type(im, gp->input[i], &dt, &s) != KN_OK) return KN_ERR;
        kx_bind_value(im, nm, kn_graph_add_value(im->g, nm, KN_VAL_INPUT, dt, &s));
    }
    return KN_OK;
}

/* Lists every node whose op kiln cannot convert, in one message. */
static kn_status check_supported(kx_importer *im, const Onnx__GraphProto *gp)
{
    kn_strbuf msg;
    kn_sb_init(&msg);
    int bad = 0;
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *n = gp->node[i];
        const char *dom = n->domain ? n->domain : "";
        if (im->needed && !im->needed[i]) continue;
        if ((!*dom || !strcmp(dom, "ai.onnx")) && n->op_type && kx_find_op(n->op_type, im->opset)) continue;
        char ty[96], nm[128];
        kn_c_comment_text(n->op_type ? n->op_type : "?", ty, sizeof ty);
        if (n->name && *n->name) kn_c_comment_text(n->name, nm, sizeof nm);
        else kn_c_comment_text(n->n_output ? n->output[0] : "", nm, sizeof nm);
        if (bad < 20) kn_sb_printf(&msg, "%s%s%s%s at node %zu '%s'", bad ? "; " : "", *dom ? dom : "", *dom ? "." : "",
                                   ty, i, nm);
        bad++;
    }
    kn_status st = KN_OK;
    if (bad)
        st = kx_fail(im, "%d node%s use%s ops kiln does not support at opset %lld: %s%s", bad, bad == 1 ? "" : "s",
                     bad == 1 ? "s" : "", (long long)im->opset, msg.s, bad > 20 ? "; ..." : "");
    kn_sb_free(&msg);
    return st;
}

/* Every initializer, or with a cut only those a needed node reads: the
 * classifier of a backbone cut before it is never decoded. */
static kn_status load_initializers(kx_importer *im, const Onnx__GraphProto *gp, const kf_names *wanted)
{
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const char *nm = gp->initializer[i]->name ? gp->initializer[i]->name : "";
        if (wanted && !kf_names_get(wanted, nm)) continue;
        kx_const *c;
        if (kx_tensor_load(im, gp->initializer[i], &c) != KN_OK) return KN_ERR;
        kx_bind_const(im, nm, c);
        im->tab[im->n_tab - 1].initializer = true;
    }
    return KN_OK;
}

static kn_status convert_nodes(kx_importer *im, const Onnx__GraphProto *gp)
{
    for (size_t i = 0; i < gp->n_node; i++) {
        if (im->needed && !im->needed[i]) continue;
        im->node = gp->node[i];
        im->node_index = (int)i;
        if (!im->node->n_output || !im->node->output[0] || !im->node->output[0][0])
            return kx_fail(im, "node has no output");
        for (size_t k = 0; k < im->node->n_input; k++)
            if (kx_has_input(im, (int)k) && !kx_lookup(im, im->node->input[k]))
                return kx_fail(im, "input '%s' is not produced by an earlier node, graph input or initializer "
                               "(nodes must be in topological order)", im->node->input[k]);
        bool folded = false;
        if (kx_try_fold(im, &folded) != KN_OK) return KN_ERR;
        if (!folded && kx_find_op(im->node->op_type, im->opset)->fn(im) != KN_OK) return KN_ERR;
    }
    im->node = NULL;
    return KN_OK;
}

int kx_expose(kx_importer *im, const char *onnx_name, const char *name)
{
    kx_entry *e = kx_lookup(im, onnx_name);
    if (!e) {
        kx_fail(im, "'%s' is not produced by any node", onnx_name);
        return -1;
    }
    int vid = e->vid;
    if (vid < 0) vid = e->vid = kx_place_const(im, onnx_name, e->c, KN_VAL_CONST, false);
    if (vid < 0) return -1;
    kn_value *v = im->g->values[vid];
    bool shared = false;
    for (int k = 0; k < im->g->n_outputs; k++) shared |= im->g->outputs[k] == vid;
    if (v->kind != KN_VAL_NODE || shared) {
        /* a copy: reshape to the same shape (the planner may alias it) */
        kn_node *n = kn_graph_add_node(im->g, KN_OP_RESHAPE, name, &vid, 1, 1);
        n->loc = im->loc;
        bool b = kn_shape_is_batched(&v->shape);
        kn_node_set_attr_ints(n, "shape", v->shape.d + (b ? 1 : 0), v->shape.rank - (b ? 1 : 0));
        if (kx_finish(im, n) != KN_OK) return -1;
        return n->out[0];
    }
    if (strcmp(v->name, name) != 0) {
        if (kn_graph_find_value(im->g, name) >= 0) {
            kx_fail(im, "'%s' names a different tensor than the one it is bound to", name);
            return -1;
        }
        free(v->name);
        v->name = kn_xstrdup(name);
    }
    return vid;
}

/* Graph outputs keep their ONNX names: the value a name resolves to is
 * renamed when it is a plain intermediate, else copied into a new value. */
static kn_status bind_outputs(kx_importer *im, const Onnx__GraphProto *gp)
{
    if (gp->n_output == 0) return kx_fail(im, "the graph has no outputs");
    if (gp->n_output > 16) return kx_fail(im, "the graph has %zu outputs; kiln supports 16", gp->n_output);
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *nm = gp->output[i]->name ? gp->output[i]->name : "";
        int vid = kx_expose(im, nm, nm);
        if (vid < 0) return KN_ERR;
        im->g->outputs[im->g->n_outputs++] = vid;
    }
    return KN_OK;
}

static char *folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return kn_xstrdup(".");
    char *dir = kn_xstrdup(path);
    dir[slash - path + (slash == path ? 1 : 0)] = 0;
    return dir;
}

/* The one driver behind both entry points: `sp` NULL imports the whole
 * graph with its own inputs and outputs; otherwise it is spliced. */
static kn_status import_model(kx_importer *im, const Onnx__ModelProto *m, const kn_onnx_splice_opts *sp, int *cut)
{
    if (read_opset(im, m) != KN_OK) return KN_ERR;
    const Onnx__GraphProto *gp = m->graph;
    if (!gp) return kx_fail(im, "the model has no graph");
    kx_splice_plan plan = {0};
    kn_status st = sp ? kx_splice_prepare(im, gp, sp, &plan) : KN_OK;
    im->needed = plan.needed;
    if (!st) st = check_supported(im, gp);
    if (!st) st = load_initializers(im, gp, sp ? &plan.wanted : NULL);
    if (!st) st = sp ? kx_splice_bind_input(im, gp, sp, &plan) : bind_inputs(im, gp);
    if (!st) st = convert_nodes(im, gp);
    if (!st && sp) *cut = kx_expose(im, plan.until, sp->name);
    if (!st && sp && *cut < 0) st = KN_ERR;
    if (!st && !sp) st = bind_outputs(im, gp);
    im->needed = NULL;
    kx_splice_plan_free(&plan);
    return st;
}

/* Decodes the ModelProto in buf and runs import_model into im->g. */
static kn_status import_buffer(kx_importer *im, const void *buf, size_t len, const kn_onnx_splice_opts *sp, int *cut)
{
    if (len == 0) return kx_fail(im, "the file is empty (not an ONNX model)");
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    if (!m) return kx_fail(im, "not a valid ONNX model (protobuf decoding failed: truncated or corrupted file)");
    if (!im->g) {
        char base[256];
        const char *slash = strrchr(im->path, '/');
        snprintf(base, sizeof base, "%s", slash ? slash + 1 : im->path);
        char *dot = strrchr(base, '.');
        if (dot && dot != base) *dot = 0;
        im->g = kn_graph_new(m->graph && m->graph->name && *m->graph->name ? m->graph->name : base);
    }
    kn_status st = import_model(im, m, sp, cut);
    for (int i = 0; i < im->n_tab; i++) {
        free(im->tab[i].name);
        kx_const_free(im->tab[i].c);
    }
    free(im->tab);
    im->tab = NULL;
    im->n_tab = im->cap_tab = 0;
    onnx__model_proto__free_unpacked(m, NULL);
    return st;
}

kn_status kn_onnx_import_buffer(const void *buf, size_t len, const char *path, kn_graph **out, kn_diag *d)
{
    *out = NULL;
    kx_importer im = {.path = path ? path : "<onnx>", .d = d, .prefix = ""};
    im.dir = path ? folder_of(path) : NULL;
    kn_status st = import_buffer(&im, buf, len, NULL, NULL);
    free(im.dir);
    if (st == KN_OK) st = kn_graph_verify(im.g, true, d);
    if (st != KN_OK) {
        kn_graph_free(im.g);
        return st;
    }
    *out = im.g;
    return KN_OK;
}

/* Reads a whole model file, refusing non-regular files and sizes past
 * protobuf's limit before allocating. */
static kn_status read_model_file(const char *path, unsigned char **buf, size_t *len, kn_diag *d)
{
    FILE *f = fopen(path, "rb");
    if (!f) return kn_diag_fail(d, "%s: error: cannot open ONNX model: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > KX_MAX_MODEL_BYTES) {
        fclose(f);
        return kn_diag_fail(d, "%s: error: not a regular file of at most 2 GiB", path);
    }
    *len = (size_t)st.st_size;
    *buf = kn_xmalloc(*len ? *len : 1);
    size_t got = fread(*buf, 1, *len, f);
    fclose(f);
    if (got != *len) {
        free(*buf);
        *buf = NULL;
        return kn_diag_fail(d, "%s: error: cannot read the file", path);
    }
    return KN_OK;
}

kn_status kn_onnx_import_file(const char *path, kn_graph **out, kn_diag *d)
{
    *out = NULL;
    unsigned char *buf;
    size_t len;
    if (read_model_file(path, &buf, &len, d) != KN_OK) return KN_ERR;
    kn_status s = kn_onnx_import_buffer(buf, len, path, out, d);
    free(buf);
    return s;
}

kn_status kn_onnx_splice_file(kn_graph *g, const char *path, const kn_onnx_splice_opts *o,
                              kn_onnx_splice_result *r, kn_diag *d)
{
    memset(r, 0, sizeof *r);
    r->value = -1;
    unsigned char *buf;
    size_t len;
    if (read_model_file(path, &buf, &len, d) != KN_OK) return KN_ERR;
    kx_importer im = {.path = path, .d = d, .g = g, .prefix = o->prefix ? o->prefix : "",
                      .trainable = o->trainable, .loc = o->loc};
    im.dir = folder_of(path);
    kn_status st = import_buffer(&im, buf, len, o, &r->value);
    free(im.dir);
    free(buf);
    r->blame = im.blame;
    snprintf(r->hint, sizeof r->hint, "%s", im.hint);
    return st;
}

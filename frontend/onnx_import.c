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

int kx_place_const(kx_importer *im, const char *name, const kx_const *c, kn_val_kind kind)
{
    for (int64_t i = 0; c->dtype == KN_I64 && i < c->numel; i++)
        if (((const int64_t *)c->data)[i] == KX_SYM_N) {
            kx_fail(im, "'%s' holds the batch size, which kiln only knows at run time", name);
            return -1;
        }
    if (c->dtype == KN_I64) kind = KN_VAL_CONST; /* the weight blob is f32 only */
    int vid = kn_graph_add_value(im->g, name, kind, c->dtype, &c->shape);
    kn_value *v = im->g->values[vid];
    size_t bytes = (size_t)(c->numel > 0 ? c->numel : 1) * kn_dtype_size(c->dtype);
    v->data = kn_xmalloc(bytes);
    memcpy(v->data, c->data, bytes);
    v->init = KN_INIT_DATA;
    v->trainable = false; /* imported weights are frozen; a model file may unfreeze them */
    return vid;
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
    if (e->vid < 0) e->vid = kx_place_const(im, name, e->c, KN_VAL_PARAM);
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
    char name[512];
    snprintf(name, sizeof name, "%s%s", out, suffix);
    kn_node *n = kn_graph_add_node(im->g, op, name, in, n_in, 1);
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

static bool is_initializer(const Onnx__GraphProto *gp, const char *name)
{
    for (size_t i = 0; i < gp->n_initializer; i++)
        if (gp->initializer[i]->name && !strcmp(gp->initializer[i]->name, name)) return true;
    return false;
}

/* A graph input: f32 or i64 tensor with a known rank; its first dim becomes
 * the batch N when it is symbolic.  A fixed 1 stays 1: graphs that feed
 * weights as inputs (ONNX's node tests do) would otherwise get a "batched"
 * weight. */
static kn_status bind_input(kx_importer *im, const Onnx__ValueInfoProto *vi)
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
    kn_shape s = {.rank = (int)sp->n_dim};
    for (size_t i = 0; i < sp->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *dm = sp->dim[i];
        bool fixed = dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dm->dim_value > 0;
        if (i == 0 && !fixed) s.d[0] = KN_DIM_N;
        else if (fixed) s.d[i] = dm->dim_value;
        else return kx_fail(im, "graph input '%s': dim %zu is dynamic; only the first (batch) dim may be", nm, i);
    }
    int vid = kn_graph_add_value(im->g, nm, KN_VAL_INPUT, et == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? KN_F32 : KN_I64, &s);
    kx_bind_value(im, nm, vid);
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

static kn_status convert_nodes(kx_importer *im, const Onnx__GraphProto *gp)
{
    for (size_t i = 0; i < gp->n_node; i++) {
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

/* Graph outputs keep their ONNX names: the value a name resolves to is
 * renamed when it is a plain intermediate, else copied into a new value. */
static kn_status bind_outputs(kx_importer *im, const Onnx__GraphProto *gp)
{
    if (gp->n_output == 0) return kx_fail(im, "the graph has no outputs");
    if (gp->n_output > 16) return kx_fail(im, "the graph has %zu outputs; kiln supports 16", gp->n_output);
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *nm = gp->output[i]->name ? gp->output[i]->name : "";
        kx_entry *e = kx_lookup(im, nm);
        if (!e) return kx_fail(im, "graph output '%s' is not produced by any node", nm);
        int vid = e->vid;
        if (vid < 0) vid = e->vid = kx_place_const(im, nm, e->c, KN_VAL_CONST);
        if (vid < 0) return KN_ERR;
        kn_value *v = im->g->values[vid];
        bool shared = false;
        for (int k = 0; k < im->g->n_outputs; k++) shared |= im->g->outputs[k] == vid;
        if (v->kind != KN_VAL_NODE || shared) {
            /* a copy: reshape to the same shape (the planner may alias it) */
            kn_node *n = kn_graph_add_node(im->g, KN_OP_RESHAPE, nm, &vid, 1, 1);
            bool b = kn_shape_is_batched(&v->shape);
            kn_node_set_attr_ints(n, "shape", v->shape.d + (b ? 1 : 0), v->shape.rank - (b ? 1 : 0));
            if (kx_finish(im, n) != KN_OK) return KN_ERR;
            vid = n->out[0];
        } else if (strcmp(v->name, nm) != 0) {
            if (kn_graph_find_value(im->g, nm) >= 0)
                return kx_fail(im, "graph output '%s' names a different tensor than the one it is bound to", nm);
            free(v->name);
            v->name = kn_xstrdup(nm);
        }
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

static kn_status import_model(kx_importer *im, const Onnx__ModelProto *m)
{
    if (read_opset(im, m) != KN_OK) return KN_ERR;
    const Onnx__GraphProto *gp = m->graph;
    if (!gp) return kx_fail(im, "the model has no graph");
    if (check_supported(im, gp) != KN_OK) return KN_ERR;
    for (size_t i = 0; i < gp->n_initializer; i++) {
        kx_const *c;
        if (kx_tensor_load(im, gp->initializer[i], &c) != KN_OK) return KN_ERR;
        kx_bind_const(im, gp->initializer[i]->name ? gp->initializer[i]->name : "", c);
        im->tab[im->n_tab - 1].initializer = true;
    }
    for (size_t i = 0; i < gp->n_input; i++) {
        const char *nm = gp->input[i]->name ? gp->input[i]->name : "";
        if (is_initializer(gp, nm)) continue; /* IR < 4 lists initializers as inputs */
        if (bind_input(im, gp->input[i]) != KN_OK) return KN_ERR;
    }
    if (convert_nodes(im, gp) != KN_OK) return KN_ERR;
    return bind_outputs(im, gp);
}

kn_status kn_onnx_import_buffer(const void *buf, size_t len, const char *path, kn_graph **out, kn_diag *d)
{
    *out = NULL;
    kx_importer im = {.path = path ? path : "<onnx>", .d = d};
    if (len == 0) return kx_fail(&im, "the file is empty (not an ONNX model)");
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    if (!m) return kx_fail(&im, "not a valid ONNX model (protobuf decoding failed: truncated or corrupted file)");
    char base[256];
    const char *slash = path ? strrchr(path, '/') : NULL;
    snprintf(base, sizeof base, "%s", slash ? slash + 1 : path ? path : "onnx");
    char *dot = strrchr(base, '.');
    if (dot && dot != base) *dot = 0;
    im.g = kn_graph_new(m->graph && m->graph->name && *m->graph->name ? m->graph->name : base);
    im.dir = path ? folder_of(path) : NULL;
    kn_status st = import_model(&im, m);
    for (int i = 0; i < im.n_tab; i++) {
        free(im.tab[i].name);
        kx_const_free(im.tab[i].c);
    }
    free(im.tab);
    free(im.dir);
    onnx__model_proto__free_unpacked(m, NULL);
    if (st == KN_OK) st = kn_graph_verify(im.g, true, d);
    if (st != KN_OK) {
        kn_graph_free(im.g);
        return st;
    }
    *out = im.g;
    return KN_OK;
}

kn_status kn_onnx_import_file(const char *path, kn_graph **out, kn_diag *d)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return kn_diag_fail(d, "%s: error: cannot open ONNX model: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > KX_MAX_MODEL_BYTES) {
        fclose(f);
        return kn_diag_fail(d, "%s: error: not a regular file of at most 2 GiB", path);
    }
    size_t len = (size_t)st.st_size;
    unsigned char *buf = kn_xmalloc(len ? len : 1);
    size_t got = fread(buf, 1, len, f);
    fclose(f);
    if (got != len) {
        free(buf);
        return kn_diag_fail(d, "%s: error: cannot read the file", path);
    }
    kn_status s = kn_onnx_import_buffer(buf, len, path, out, d);
    free(buf);
    return s;
}

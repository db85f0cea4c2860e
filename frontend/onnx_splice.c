/* onnx_splice.c — what the importer does differently when a model file
 * splices an ONNX graph in (`backbone = onnx("m.onnx", input=x, until="t")`):
 * find the cut tensor and the nodes it depends on, and feed the graph's
 * input from a model-file value after checking that the types agree.
 * Conversion itself is the shared driver in onnx_import.c, so a spliced
 * graph and `kiln build m.onnx` turn the same nodes into the same IR.
 *
 * Errors blame the onnx(...) argument at fault (until=, input=) so the
 * model-file frontend can put its caret there.
 */
#include "onnx_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A name as it may appear in a one-line message. */
static const char *clean(const char *s, char *buf, size_t cap)
{
    kn_c_comment_text(s ? s : "", buf, cap);
    return buf;
}

static kn_status blame(kx_importer *im, kn_onnx_blame who, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static kn_status blame(kx_importer *im, kn_onnx_blame who, const char *hint, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    im->blame = who;
    snprintf(im->hint, sizeof im->hint, "%s", hint ? hint : "");
    return kx_fail(im, "%s", msg);
}

/* "did you mean 'gap_202'? the graph ends with: relu6_201 (Clip), ..." —
 * the last tensors are where a cut before the classifier usually is. */
static void until_hint(const Onnx__GraphProto *gp, const kf_names *prod, const char *until, char *out, size_t cap)
{
    kn_strbuf h;
    kn_sb_init(&h);
    const char *near = kf_names_nearest(prod, until);
    char a[160], b[96];
    if (near) kn_sb_printf(&h, "did you mean '%s'? ", clean(near, a, sizeof a));
    kn_sb_puts(&h, "the graph ends with:");
    size_t from = gp->n_node > 6 ? gp->n_node - 6 : 0;
    for (size_t i = from; i < gp->n_node; i++) {
        const Onnx__NodeProto *n = gp->node[i];
        if (!n->n_output) continue;
        kn_sb_printf(&h, "%s %s (%s)", i > from ? "," : "", clean(n->output[0], a, sizeof a),
                     clean(n->op_type, b, sizeof b));
    }
    snprintf(out, cap, "%s", h.s);
    kn_sb_free(&h);
}

static kn_status find_until(kx_importer *im, const Onnx__GraphProto *gp, const kn_onnx_splice_opts *o,
                            const kf_names *prod, kx_splice_plan *plan)
{
    char a[160], hint[512];
    if (!o->until) {
        if (gp->n_output != 1 || !gp->output[0]->name) {
            kn_strbuf l;
            kn_sb_init(&l);
            for (size_t i = 0; i < gp->n_output && i < 8; i++)
                kn_sb_printf(&l, "%s'%s'", i ? ", " : "", clean(gp->output[i]->name, a, sizeof a));
            snprintf(hint, sizeof hint, "pick one with until=\"NAME\"; the outputs are %s", l.s);
            kn_sb_free(&l);
            return blame(im, KN_ONNX_BLAME_FILE, hint, "the graph has %s outputs, onnx(...) exposes one",
                         gp->n_output ? "several" : "no");
        }
        plan->until = gp->output[0]->name;
    } else {
        plan->until = o->until;
    }
    if (kf_names_get(prod, plan->until)) return KN_OK;
    const char *u = clean(plan->until, a, sizeof a);
    if (kx_is_initializer(gp, plan->until))
        return blame(im, KN_ONNX_BLAME_UNTIL, "name a tensor a node computes",
                     "until='%s' is an initializer (a weight), not a computed tensor", u);
    for (size_t i = 0; i < gp->n_input; i++)
        if (gp->input[i]->name && !strcmp(gp->input[i]->name, plan->until))
            return blame(im, KN_ONNX_BLAME_UNTIL, "name a tensor a node computes",
                         "until='%s' is the graph's input: nothing would be spliced", u);
    until_hint(gp, prod, plan->until, hint, sizeof hint);
    return blame(im, KN_ONNX_BLAME_UNTIL, hint, "no tensor named '%s' in the graph", u);
}

kn_status kx_splice_prepare(kx_importer *im, const Onnx__GraphProto *gp, const kn_onnx_splice_opts *o,
                            kx_splice_plan *plan)
{
    kf_names prod; /* tensor name -> index of the node producing it */
    kf_names_init(&prod);
    kf_names_init(&plan->wanted);
    for (size_t i = 0; i < gp->n_node; i++)
        for (size_t k = 0; k < gp->node[i]->n_output; k++)
            if (gp->node[i]->output[k] && gp->node[i]->output[k][0])
                kf_names_put(&prod, gp->node[i]->output[k], (int)i, 0, 0);
    kn_status st = find_until(im, gp, o, &prod, plan);
    if (st == KN_OK) {
        /* Nodes are in topological order, so one backward sweep marks every
         * node the cut depends on. */
        plan->needed = kn_xcalloc(gp->n_node ? gp->n_node : 1, sizeof *plan->needed);
        plan->needed[kf_names_get(&prod, plan->until)->value] = true;
        for (size_t i = gp->n_node; i-- > 0;) {
            if (!plan->needed[i]) continue;
            const Onnx__NodeProto *n = gp->node[i];
            for (size_t k = 0; k < n->n_input; k++) {
                if (!n->input[k] || !n->input[k][0]) continue;
                kf_names_put(&plan->wanted, n->input[k], 0, 0, 0);
                const kf_name_entry *p = kf_names_get(&prod, n->input[k]);
                if (p && (size_t)p->value < i) plan->needed[p->value] = true;
            }
        }
    }
    kf_names_free(&prod);
    return st;
}

void kx_splice_plan_free(kx_splice_plan *plan)
{
    free(plan->needed);
    kf_names_free(&plan->wanted);
    memset(plan, 0, sizeof *plan);
}

/* The model-file value must fit the ONNX input: same dtype and rank, equal
 * fixed dims; a symbolic ONNX batch takes N (or any fixed batch). */
static bool compatible(kn_dtype vdt, const kn_shape *v, kn_dtype odt, const kn_shape *os)
{
    if (vdt != odt || v->rank != os->rank) return false;
    for (int i = 0; i < v->rank; i++)
        if (!(i == 0 && os->d[0] == KN_DIM_N) && v->d[i] != os->d[i]) return false;
    return true;
}

kn_status kx_splice_bind_input(kx_importer *im, const Onnx__GraphProto *gp, const kn_onnx_splice_opts *o,
                               const kx_splice_plan *plan)
{
    const Onnx__ValueInfoProto *in = NULL;
    int count = 0;
    kn_strbuf names;
    kn_sb_init(&names);
    char a[160], b[160];
    for (size_t i = 0; i < gp->n_input; i++) {
        const char *nm = gp->input[i]->name ? gp->input[i]->name : "";
        if (kx_is_initializer(gp, nm) || !kf_names_get(&plan->wanted, nm)) continue;
        kn_sb_printf(&names, "%s'%s'", count ? ", " : "", clean(nm, a, sizeof a));
        in = gp->input[i];
        count++;
    }
    kn_status st = KN_OK;
    if (count != 1)
        st = blame(im, KN_ONNX_BLAME_INPUT, "onnx(...) feeds one graph input from input=",
                   "the graph up to the cut reads %s graph input%s%s%s; onnx(...) feeds exactly one",
                   count ? "several" : "no", count ? "s (" : "", count ? names.s : "", count ? ")" : "");
    kn_sb_free(&names);
    if (st) return st;
    kn_dtype dt;
    kn_shape s;
    if (kx_input_type(im, in, &dt, &s) != KN_OK) {
        im->blame = KN_ONNX_BLAME_INPUT;
        return KN_ERR;
    }
    const kn_value *v = im->g->values[o->input];
    if (!compatible(v->dtype, &v->shape, dt, &s)) {
        char want[96], got[96];
        kn_shape_format(dt, &s, want, sizeof want);
        kn_shape_format(v->dtype, &v->shape, got, sizeof got);
        return blame(im, KN_ONNX_BLAME_INPUT, "declare the model input with the ONNX input's type and shape",
                     "input '%s' is %s but the graph input '%s' is %s", clean(v->name, a, sizeof a), got,
                     clean(in->name, b, sizeof b), want);
    }
    kx_bind_value(im, in->name, o->input);
    return KN_OK;
}

/* elem_runs.c — runs of elementwise nodes emitted as one loop.
 *
 * Consecutive nodes whose op has an emit_elem hook (activations, the unary
 * math table, clip, add/sub/mul/div/max/min/pow and their elementwise
 * gradients), all producing one shape, become one loop: each element goes
 * through the whole run in registers, so a value made inside the run is
 * never loaded again; every value is still stored, since the nodes after
 * the run, the caller and `train --retain` read them.  Every input is
 * either of that shape (read at the loop index) or a single element.
 *
 * The CUDA emitter makes the same run one kernel: the grid-stride loop
 * gives element i to the same thread in every node of the run, so no
 * thread waits for another.  Some ops join kernels only (elem_gpu_only:
 * dropout and its gradient, one Philox block per element).  The loop
 * index is `i`, which such hooks may read.
 *
 * The memory plan may place a value the run writes where a value it reads
 * lived (dead by then, as the planner guarantees).  Node by node that is
 * fine; in one loop it is fine only when the two occupy exactly the same
 * bytes: element i of the old value is then read (by nodes up to the
 * writer, which is where its readers end) before element i of the new one
 * is written, in the same iteration, and nothing reads other elements.
 * Any other overlap (shifted, partial, a one-element operand read at [0]
 * while element 0 is overwritten) ends the run before that node.  Values
 * sharing their bytes are bound without `restrict`.
 */
#include "codegen_internal.h"
#include "../ir/ops/op.h"

#include <stdio.h>
#include <stdlib.h>

#define KN_ELEM_MAX_RUN 16

static bool elem_scalar(const kn_value *v)
{
    int64_t k = 0;
    return !kn_shape_is_batched(&v->shape) && kn_shape_numel_per_sample(&v->shape, &k) && k == 1;
}

/* Node n can join a run over `shape`. */
static bool elem_node_ok(const kn_graph *g, const kn_node *n, const kn_shape *shape, bool gpu)
{
    const kn_op_def *def = kn_op_get(n->op);
    if (!def->emit_elem || (def->elem_gpu_only && !gpu) || n->n_out != 1 || n->n_in > KN_ELEM_MAX_INPUTS)
        return false;
    const kn_value *y = g->values[n->out[0]];
    if (y->dtype != KN_F32 || !kn_shape_equal(&y->shape, shape)) return false;
    for (int k = 0; k < n->n_in; k++) {
        const kn_value *v = g->values[n->in[k]];
        if (v->dtype != KN_F32 || (!kn_shape_equal(&v->shape, shape) && !elem_scalar(v))) return false;
    }
    return true;
}

/* Values a and b occupy exactly the same bytes. */
static bool elem_same_bytes(const kn_memplan *p, int a, int b)
{
    return a != b && p->offset[a] >= 0 && p->offset[a] == p->offset[b] && p->size[a] == p->size[b] &&
           p->batched[a] == p->batched[b];
}

/* Written value w (of the run's shape) against value r of the same run
 * (read or written): disjoint, or the very same bytes. */
static bool elem_no_clash(const kn_graph *g, const kn_memplan *p, int w, int r)
{
    if (w == r || p->offset[w] < 0 || p->offset[r] < 0 || p->batched[w] != p->batched[r]) return true;
    if (elem_same_bytes(p, w, r) && kn_shape_equal(&g->values[w]->shape, &g->values[r]->shape)) return true;
    int64_t wl = p->offset[w], wh = wl + p->size[w], rl = p->offset[r], rh = rl + p->size[r];
    return wh <= rl || rh <= wl;
}

/* Node j's output against every value nodes first..j read or write. */
static bool elem_fits(const kn_graph *g, const kn_memplan *p, int first, int j)
{
    for (int a = first; a <= j; a++) {
        const kn_node *m = g->nodes[a];
        for (int k = 0; k < m->n_in; k++)
            if (!elem_no_clash(g, p, g->nodes[j]->out[0], m->in[k])) return false;
        if (!elem_no_clash(g, p, g->nodes[j]->out[0], m->out[0])) return false;
        /* and earlier outputs against what node j reads */
        for (int k = 0; k < g->nodes[j]->n_in; k++)
            if (!elem_no_clash(g, p, m->out[0], g->nodes[j]->in[k])) return false;
    }
    return true;
}

int kn_elem_run_length(const kn_graph *g, const kn_memplan *plan, int first, bool gpu)
{
    const kn_node *a = g->nodes[first];
    if (a->n_out != 1) return 1;
    const kn_shape *shape = &g->values[a->out[0]]->shape;
    if (!elem_node_ok(g, a, shape, gpu) || !elem_fits(g, plan, first, first)) return 1;
    int j = first + 1;
    while (j < g->n_nodes && j - first < KN_ELEM_MAX_RUN && elem_node_ok(g, g->nodes[j], shape, gpu) &&
           elem_fits(g, plan, first, j))
        j++;
    return j - first;
}

/* Index in the run of the node producing vid, or -1. */
static int elem_producer(const kn_graph *g, int first, int count, int vid)
{
    for (int k = 0; k < count; k++)
        if (g->nodes[first + k]->out[0] == vid) return k;
    return -1;
}

/* Value vid shares its bytes with another value of the run. */
static bool elem_shared(const kn_graph *g, const kn_memplan *p, int first, int count, int vid)
{
    for (int k = 0; k < count; k++) {
        const kn_node *m = g->nodes[first + k];
        for (int i = 0; i < m->n_in; i++)
            if (elem_same_bytes(p, vid, m->in[i])) return true;
        if (elem_same_bytes(p, vid, m->out[0])) return true;
    }
    return false;
}

/* Binds value vid once, as V<vid> (restrict unless `shared`). */
static void elem_bind(kn_emit *e, int vid, bool out, bool shared, bool *bound)
{
    if (bound[vid]) return;
    bound[vid] = true;
    char addr[256];
    e->addr(e, vid, addr, sizeof addr);
    kn_emit_line(e, "%sfloat *%sV%d = %s;", out ? "" : "const ", shared ? "" : "restrict ", vid, addr);
}

void kn_elem_run_emit(kn_emit *e, const kn_graph *g, const kn_memplan *plan, int first, int count)
{
    bool *bound = kn_xcalloc((size_t)g->n_values, sizeof *bound);
    for (int k = 0; k < count; k++) {
        const kn_node *m = g->nodes[first + k];
        for (int i = 0; i < m->n_in; i++)
            if (elem_producer(g, first, count, m->in[i]) < 0)
                elem_bind(e, m->in[i], false, elem_shared(g, plan, first, count, m->in[i]), bound);
        elem_bind(e, m->out[0], true, elem_shared(g, plan, first, count, m->out[0]), bound);
    }
    free(bound);
    char numel[64];
    kn_emit_numel(e, g->nodes[first]->out[0], numel, sizeof numel);
    kn_emit_for_open(e, "i", numel); /* a grid-stride KN_FOR in a CUDA kernel */
    for (int k = 0; k < count; k++) {
        const kn_node *m = g->nodes[first + k];
        char names[KN_ELEM_MAX_INPUTS][32], out[16];
        const char *in[KN_ELEM_MAX_INPUTS];
        for (int i = 0; i < m->n_in; i++) {
            int p = elem_producer(g, first, k, m->in[i]);
            if (p >= 0) snprintf(names[i], sizeof names[i], "t%d", p);
            else snprintf(names[i], sizeof names[i], "V%d[%s]", m->in[i], elem_scalar(g->values[m->in[i]]) ? "0" : "i");
            in[i] = names[i];
        }
        snprintf(out, sizeof out, "t%d", k);
        char cm[1024];
        kn_codegen_node_comment(g, m, cm, sizeof cm);
        kn_emit_line(e, "/* %s */", cm);
        kn_emit_line(e, "float %s;", out);
        kn_op_get(m->op)->emit_elem(e, g, m, in, out);
        kn_emit_line(e, "V%d[i] = %s;", m->out[0], out);
    }
    kn_emit_close(e);
}

/* plan_memory.c — liveness intervals packed into one arena.
 *
 * Every graph input and intermediate gets an interval [first node that
 * needs it, last node that reads it]; graph outputs and the loss live to the
 * end.  Values are placed largest first at the lowest offset that does not
 * collide with an already placed value whose interval overlaps (greedy
 * best-fit, the usual offline approach for static graphs).
 *
 * Batched values are planned in bytes per sample: if two intervals do not
 * overlap per sample they do not overlap for any batch n, so one plan serves
 * every batch size and the arena is n * per_sample + fixed bytes.
 */
#include "passes.h"

#include <stdlib.h>
#include <string.h>

#define KN_ALIGN_BATCHED 16 /* per sample: n*16 keeps SIMD alignment for any n */
#define KN_ALIGN_FIXED 64

typedef struct {
    int vid;
    int start, end;
    int64_t size;
} interval;

static int64_t align_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

static bool in_arena(const kn_value *v)
{
    if (v->dead) return false;
    return v->kind == KN_VAL_INPUT || v->kind == KN_VAL_LABEL || v->kind == KN_VAL_NODE;
}

static int by_size_desc(const void *a, const void *b)
{
    const interval *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->vid - y->vid; /* deterministic */
}

static bool overlaps(const interval *a, const interval *b)
{
    return !(a->end < b->start || b->end < a->start);
}

/* Places `iv[0..count)` (sorted) and returns the region's size. */
static int64_t pack(interval *iv, int count, int64_t align, int64_t *offset)
{
    int64_t total = 0;
    int64_t *placed_off = kn_xmalloc(sizeof(int64_t) * (size_t)(count + 1));
    for (int i = 0; i < count; i++) {
        /* Candidate offsets: 0 and the end of every conflicting placed value. */
        int64_t best = -1;
        for (int c = -1; c < i; c++) {
            int64_t cand = c < 0 ? 0 : align_up(placed_off[c] + iv[c].size, align);
            if (c >= 0 && !overlaps(&iv[c], &iv[i])) continue;
            bool ok = true;
            for (int j = 0; j < i && ok; j++) {
                if (!overlaps(&iv[j], &iv[i])) continue;
                if (cand < placed_off[j] + iv[j].size && placed_off[j] < cand + iv[i].size) ok = false;
            }
            if (ok && (best < 0 || cand < best)) best = cand;
        }
        placed_off[i] = best;
        offset[iv[i].vid] = best;
        if (best + iv[i].size > total) total = best + iv[i].size;
    }
    free(placed_off);
    return align_up(total, align);
}

kn_status kn_plan_memory(const kn_graph *g, kn_memplan *plan, kn_diag *d)
{
    memset(plan, 0, sizeof *plan);
    int nv = g->n_values;
    plan->n_values = nv;
    plan->offset = kn_xmalloc(sizeof(int64_t) * (size_t)(nv + 1));
    plan->batched = kn_xcalloc((size_t)nv + 1, sizeof(bool));
    plan->size = kn_xcalloc((size_t)nv + 1, sizeof(int64_t));
    int *start = kn_xmalloc(sizeof(int) * (size_t)(nv + 1));
    int *end = kn_xmalloc(sizeof(int) * (size_t)(nv + 1));
    for (int i = 0; i < nv; i++) {
        const kn_value *v = g->values[i];
        plan->offset[i] = -1;
        start[i] = v->kind == KN_VAL_NODE ? v->producer : 0;
        end[i] = start[i];
    }
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_in; k++) end[g->nodes[i]->in[k]] = i;
    for (int i = 0; i < g->n_outputs; i++) end[g->outputs[i]] = g->n_nodes;
    if (g->loss >= 0) end[g->loss] = g->n_nodes;
    /* Inputs are written by the runtime before the first node runs. */
    for (int i = 0; i < nv; i++)
        if (g->values[i]->kind == KN_VAL_INPUT || g->values[i]->kind == KN_VAL_LABEL) start[i] = -1;

    interval *bat = kn_xmalloc(sizeof(interval) * (size_t)(nv + 1));
    interval *fix = kn_xmalloc(sizeof(interval) * (size_t)(nv + 1));
    int nb = 0, nf = 0;
    for (int i = 0; i < nv; i++) {
        const kn_value *v = g->values[i];
        if (!in_arena(v)) continue;
        int64_t per, bytes;
        if (!v->shape_known || !kn_shape_numel_per_sample(&v->shape, &per) ||
            !kn_mul_ok(per, (int64_t)kn_dtype_size(v->dtype), &bytes)) {
            free(start); free(end); free(bat); free(fix);
            return kn_diag_fail(d, "memory plan: value '%s' has no valid size", v->name);
        }
        bool b = kn_shape_is_batched(&v->shape);
        plan->batched[i] = b;
        plan->size[i] = bytes;
        interval iv = {i, start[i], end[i], align_up(bytes, b ? KN_ALIGN_BATCHED : KN_ALIGN_FIXED)};
        if (b) {
            bat[nb++] = iv;
            plan->sum_sizes_per_sample += bytes;
        } else {
            fix[nf++] = iv;
            plan->sum_sizes_fixed += bytes;
        }
    }
    qsort(bat, (size_t)nb, sizeof *bat, by_size_desc);
    qsort(fix, (size_t)nf, sizeof *fix, by_size_desc);
    plan->per_sample_bytes = pack(bat, nb, KN_ALIGN_BATCHED, plan->offset);
    plan->fixed_bytes = pack(fix, nf, KN_ALIGN_FIXED, plan->offset);
    free(start); free(end); free(bat); free(fix);
    return KN_OK;
}

void kn_memplan_free(kn_memplan *plan)
{
    free(plan->offset);
    free(plan->batched);
    free(plan->size);
    memset(plan, 0, sizeof *plan);
}

int64_t kn_memplan_bytes(const kn_memplan *plan, int64_t n)
{
    return n * plan->per_sample_bytes + plan->fixed_bytes;
}

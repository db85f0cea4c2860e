/* kn_rt_profile.c — per-node wall time of a phase.  The probe runs after
 * each node, so a node's time is the clock difference since the previous
 * probe; the probe's own cost (one clock read) is a few tens of ns. */
#include "kn_rt_profile.h"
#include "kn_rt_time.h"

#include <stdlib.h>

int kn_rt_profile_init(kn_rt_profile *p, const kn_rt_phase *phase)
{
    p->phase = phase;
    p->n_nodes = phase->n_nodes;
    p->ms = calloc((size_t)(p->n_nodes > 0 ? p->n_nodes : 1), sizeof *p->ms);
    p->calls = 0;
    p->last = 0;
    return p->ms ? 0 : -1;
}

/* A probe index past the table (a hand-written phase in a test) grows it. */
static int ensure_node(kn_rt_profile *p, int node)
{
    if (node < p->n_nodes) return 0;
    int n = node + 64;
    double *ms = realloc(p->ms, sizeof *ms * (size_t)n);
    if (!ms) return -1;
    for (int i = p->n_nodes; i < n; i++) ms[i] = 0;
    p->ms = ms;
    p->n_nodes = n;
    return 0;
}

static void on_node(kn_rt_ctx *ctx, int node, int n)
{
    (void)n;
    kn_rt_profile *p = ctx->probe_user;
    double now = kn_rt_now_ms();
    if (node >= 0 && ensure_node(p, node) == 0) p->ms[node] += now - p->last;
    p->last = now;
}

void kn_rt_profile_begin(kn_rt_profile *p, kn_rt_ctx *ctx)
{
    ctx->probe = on_node;
    ctx->probe_user = p;
    p->last = kn_rt_now_ms();
}

void kn_rt_profile_end(kn_rt_profile *p, kn_rt_ctx *ctx)
{
    ctx->probe = NULL;
    ctx->probe_user = NULL;
    p->calls++;
}

static const char *node_name(const kn_rt_phase *ph, int node)
{
    return ph->node_names && node < ph->n_nodes ? ph->node_names[node] : "?";
}

static const kn_rt_profile *sort_ctx;
static int by_time_desc(const void *a, const void *b)
{
    double x = sort_ctx->ms[*(const int *)a], y = sort_ctx->ms[*(const int *)b];
    return x < y ? 1 : x > y ? -1 : 0;
}

void kn_rt_profile_print(const kn_rt_profile *p, FILE *out, int top)
{
    if (p->calls == 0 || p->n_nodes == 0) return;
    int *order = malloc(sizeof *order * (size_t)p->n_nodes);
    if (!order) return;
    double total = 0;
    for (int i = 0; i < p->n_nodes; i++) {
        order[i] = i;
        total += p->ms[i];
    }
    sort_ctx = p;
    qsort(order, (size_t)p->n_nodes, sizeof *order, by_time_desc);
    fprintf(out, "profile of phase '%s' (%d calls, %.4f ms per call; node: ms per call, share)\n",
            p->phase->name, p->calls, total / p->calls);
    for (int k = 0; k < p->n_nodes && k < top; k++) {
        int i = order[k];
        if (p->ms[i] <= 0) break;
        fprintf(out, "  node %3d %-48s %9.4f ms %5.1f%%\n", i, node_name(p->phase, i),
                p->ms[i] / p->calls, total > 0 ? 100.0 * p->ms[i] / total : 0.0);
    }
    free(order);
}

void kn_rt_profile_free(kn_rt_profile *p)
{
    free(p->ms);
    p->ms = NULL;
}

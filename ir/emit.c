/* emit.c — helpers op files use to print readable C (see emit.h). */
#include "emit.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void kn_emit_line(kn_emit *e, const char *fmt, ...)
{
    for (int i = 0; i < e->indent; i++) kn_sb_puts(e->out, "    ");
    va_list ap;
    va_start(ap, fmt);
    kn_sb_vprintf(e->out, fmt, ap);
    va_end(ap);
    kn_sb_puts(e->out, "\n");
}

static void bind(kn_emit *e, const char *cname, int vid, bool is_const)
{
    char addr[256];
    const kn_value *v = e->g->values[vid];
    e->addr(e, vid, addr, sizeof addr);
    const char *ty = v->dtype == KN_I64 ? "int64_t" : "float";
    kn_emit_line(e, "%s%s *restrict %s = %s;", is_const ? "const " : "", ty, cname, addr);
}

void kn_emit_bind_in(kn_emit *e, const char *cname, int vid) { bind(e, cname, vid, true); }
void kn_emit_bind_out(kn_emit *e, const char *cname, int vid) { bind(e, cname, vid, false); }

void kn_emit_numel(kn_emit *e, int vid, char *buf, size_t cap)
{
    const kn_value *v = e->g->values[vid];
    int64_t per = 0;
    kn_shape_numel_per_sample(&v->shape, &per);
    if (kn_shape_is_batched(&v->shape)) snprintf(buf, cap, "((size_t)n * %lld)", (long long)per);
    else snprintf(buf, cap, "%lld", (long long)per);
}

void kn_emit_dim(kn_emit *e, int vid, int i, char *buf, size_t cap)
{
    const kn_value *v = e->g->values[vid];
    if (i < 0) i += v->shape.rank;
    if (i < 0 || i >= v->shape.rank) snprintf(buf, cap, "1");
    else if (v->shape.d[i] == KN_DIM_N) snprintf(buf, cap, "n");
    else snprintf(buf, cap, "%lld", (long long)v->shape.d[i]);
}

void kn_emit_open(kn_emit *e)
{
    kn_emit_line(e, "{");
    e->indent++;
}

void kn_emit_close(kn_emit *e)
{
    if (e->indent > 0) e->indent--;
    kn_emit_line(e, "}");
}

void kn_emit_float_lit(double v, char *buf, size_t cap)
{
    float f = (float)v;
    if (isnan(f)) snprintf(buf, cap, "NAN");
    else if (isinf(f)) snprintf(buf, cap, f > 0 ? "INFINITY" : "(-INFINITY)");
    else snprintf(buf, cap, "%.9gf", (double)f);
    /* "%.9g" of an integral value prints "1f", which is not a C literal. */
    if (!strpbrk(buf, ".eENI")) {
        size_t l = strlen(buf);
        if (l >= 1 && l + 2 < cap) {
            buf[l - 1] = 0;
            strcat(buf, ".0f");
        }
    }
}

void kn_emit_cuda_kernel(kn_emit *e, const char *work)
{
    if (e->kernel_begin) e->kernel_begin(e, work);
}

void kn_emit_cuda_end(kn_emit *e)
{
    if (e->kernel_end) e->kernel_end(e);
}

bool kn_emit_is_cuda(const kn_emit *e) { return e->kernel_begin != NULL; }

static void for_header(kn_emit *e, const char *var, const char *count, kn_strbuf *line)
{
    if (kn_emit_is_cuda(e)) kn_sb_printf(line, "KN_FOR(%s, %s)", var, count);
    else kn_sb_printf(line, "for (size_t %s = 0; %s < %s; %s++)", var, var, count, var);
}

void kn_emit_for(kn_emit *e, const char *var, const char *count, const char *body, ...)
{
    kn_strbuf line, text;
    kn_sb_init(&line);
    kn_sb_init(&text);
    va_list ap;
    va_start(ap, body);
    kn_sb_vprintf(&text, body, ap);
    va_end(ap);
    for_header(e, var, count, &line);
    if (text.len) kn_sb_printf(&line, " %s", text.s); /* empty: the body follows on its own lines */
    kn_emit_line(e, "%s", line.s);
    kn_sb_free(&line);
    kn_sb_free(&text);
}

void kn_emit_for_open(kn_emit *e, const char *var, const char *count)
{
    kn_strbuf line;
    kn_sb_init(&line);
    for_header(e, var, count, &line);
    kn_emit_line(e, "%s {", line.s);
    kn_sb_free(&line);
    e->indent++;
}

void kn_emit_cuda_one_thread(kn_emit *e)
{
    if (kn_emit_is_cuda(e)) kn_emit_line(e, "if (blockIdx.x != 0 || threadIdx.x != 0) return;");
}

/* The lane sums of accumulator `acc`: shared memory in a kernel. */
static void lanes_array(kn_emit *e, const char *acc)
{
    kn_emit_line(e, "%sdouble kn_lane_%s[%d];", kn_emit_is_cuda(e) ? "__shared__ " : "", acc, KN_EMIT_LANES);
}

void kn_emit_lanes_open(kn_emit *e, const char *var, const char *count, int n_acc, const char *const *acc)
{
    for (int k = 0; k < n_acc; k++) lanes_array(e, acc[k]);
    if (kn_emit_is_cuda(e)) {
        /* One block: any other block of a larger launch has nothing to do. */
        kn_emit_line(e, "if (blockIdx.x != 0) return;");
        kn_emit_line(e, "for (size_t kn_lane = threadIdx.x; kn_lane < %d; kn_lane += blockDim.x) {", KN_EMIT_LANES);
    } else {
        kn_emit_line(e, "for (size_t kn_lane = 0; kn_lane < %d; kn_lane++) {", KN_EMIT_LANES);
    }
    e->indent++;
    for (int k = 0; k < n_acc; k++) kn_emit_line(e, "double %s = 0.0;", acc[k]);
    kn_emit_line(e, "for (size_t %s = kn_lane; %s < %s; %s += %d) {", var, var, count, var, KN_EMIT_LANES);
    e->indent++;
}

void kn_emit_lanes_close(kn_emit *e, int n_acc, const char *const *acc)
{
    kn_emit_close(e); /* the items of one lane */
    for (int k = 0; k < n_acc; k++) kn_emit_line(e, "kn_lane_%s[kn_lane] = %s;", acc[k], acc[k]);
    kn_emit_close(e); /* the lanes */
    if (kn_emit_is_cuda(e)) {
        kn_emit_line(e, "__syncthreads();");
        kn_emit_line(e, "if (threadIdx.x == 0) {");
    } else {
        kn_emit_line(e, "{");
    }
    e->indent++;
    for (int k = 0; k < n_acc; k++) {
        kn_emit_line(e, "double %s = 0.0;", acc[k]);
        kn_emit_line(e, "for (size_t kn_lane = 0; kn_lane < %d; kn_lane++) %s += kn_lane_%s[kn_lane];", KN_EMIT_LANES,
                     acc[k], acc[k]);
    }
}

void kn_emit_block_for_open(kn_emit *e, const char *var, const char *count)
{
    if (kn_emit_is_cuda(e))
        kn_emit_line(e, "for (size_t %s = threadIdx.x; %s < %s; %s += blockDim.x) {", var, var, count, var);
    else
        kn_emit_line(e, "for (size_t %s = 0; %s < %s; %s++) {", var, var, count, var);
    e->indent++;
}

void kn_emit_block_sync(kn_emit *e)
{
    if (kn_emit_is_cuda(e)) kn_emit_line(e, "__syncthreads();");
}

void kn_emit_block_shared(kn_emit *e, const char *decl)
{
    kn_emit_line(e, "%s%s;", kn_emit_is_cuda(e) ? "__shared__ " : "", decl);
}

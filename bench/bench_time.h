/* bench_time.h — the clock and the sort the bench/ measuring sticks share
 * (sgemm.c, gemm_sources.c); header-only so each stays one cc command. */
#ifndef KILN_BENCH_TIME_H
#define KILN_BENCH_TIME_H

#include <time.h>

static inline double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* qsort comparator for doubles, ascending. */
static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#endif

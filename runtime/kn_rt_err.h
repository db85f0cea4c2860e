/* kn_rt_err.h — errors as values: every fallible runtime call fills a
 * caller-owned buffer with one line naming the thing at fault. */
#ifndef KN_RT_ERR_H
#define KN_RT_ERR_H

#include <stddef.h>

/* Formats into err (if non-NULL) and returns -1 so callers can write
 * `return kn_rt_errf(err, cap, "...")`. */
int kn_rt_errf(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

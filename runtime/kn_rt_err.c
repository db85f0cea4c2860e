/* kn_rt_err.c — see kn_rt_err.h. */
#include "kn_rt_err.h"

#include <stdarg.h>
#include <stdio.h>

int kn_rt_errf(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* kn_rt_opt.c — see kn_rt_opt.h. */
#include "kn_rt_opt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kn_opt_int(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno) return -1;
    *out = v;
    return 0;
}

static int set_value(const char *cmd, const kn_opt *o, const char *val)
{
    long long v;
    char *end;
    switch (o->kind) {
    case KN_OPT_INT:
        if (kn_opt_int(val, &v) || v < o->min || v > 2147483647LL) {
            fprintf(stderr, "%s: %s '%s': expected an integer >= %d\n", cmd, o->name, val, o->min);
            return KN_OPT_USAGE;
        }
        *(int *)o->dst = (int)v;
        return 0;
    case KN_OPT_U64: {
        errno = 0;
        unsigned long long u = strtoull(val, &end, 10);
        if (!*val || *end || errno || *val == '-') {
            fprintf(stderr, "%s: %s '%s': expected a non-negative integer\n", cmd, o->name, val);
            return KN_OPT_USAGE;
        }
        *(uint64_t *)o->dst = u;
        return 0;
    }
    case KN_OPT_FLOAT: {
        errno = 0;
        float f = strtof(val, &end);
        if (!*val || *end || errno) {
            fprintf(stderr, "%s: %s '%s': expected a number\n", cmd, o->name, val);
            return KN_OPT_USAGE;
        }
        *(float *)o->dst = f;
        return 0;
    }
    case KN_OPT_STR:
        *(const char **)o->dst = val;
        return 0;
    case KN_OPT_LIST: {
        kn_opt_list *l = o->dst;
        if (l->n == KN_OPT_LIST_MAX) {
            fprintf(stderr, "%s: %s given more than %d times\n", cmd, o->name, KN_OPT_LIST_MAX);
            return KN_OPT_USAGE;
        }
        l->v[l->n++] = val;
        return 0;
    }
    case KN_OPT_FLAG:
        break;
    }
    return 0;
}

int kn_opt_parse(const char *cmd, int argc, char **argv, const kn_opt *opts, int n_opts,
                 kn_opt_list *pos)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return KN_OPT_HELP;
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            if (!pos || pos->n == KN_OPT_LIST_MAX) {
                fprintf(stderr, "%s: unexpected argument '%s' (see %s --help)\n", cmd, a, cmd);
                return KN_OPT_USAGE;
            }
            pos->v[pos->n++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        const kn_opt *o = NULL;
        for (int k = 0; k < n_opts; k++)
            if (strlen(opts[k].name) == nl && strncmp(opts[k].name, a, nl) == 0) o = &opts[k];
        if (!o) {
            fprintf(stderr, "%s: unknown option '%.*s' (see %s --help)\n", cmd, (int)nl, a, cmd);
            return KN_OPT_USAGE;
        }
        if (o->kind == KN_OPT_FLAG) {
            if (eq) {
                fprintf(stderr, "%s: %s takes no value\n", cmd, o->name);
                return KN_OPT_USAGE;
            }
            *(int *)o->dst = 1;
            continue;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: %s needs a value\n", cmd, o->name);
                return KN_OPT_USAGE;
            }
            val = argv[++i];
        }
        int rc = set_value(cmd, o, val);
        if (rc) return rc;
    }
    return KN_OPT_OK;
}

/* kn_rt_opt.h — a tiny table-driven option parser for the executable's
 * subcommands: `--name value` and `--name=value`, usage errors reported as
 * one line naming the option. */
#ifndef KN_RT_OPT_H
#define KN_RT_OPT_H

#include <stdint.h>

typedef enum {
    KN_OPT_FLAG,   /* int*, set to 1 */
    KN_OPT_INT,    /* int*, >= min */
    KN_OPT_U64,    /* uint64_t* */
    KN_OPT_FLOAT,  /* float* */
    KN_OPT_STR,    /* const char** */
    KN_OPT_LIST    /* kn_opt_list*, repeatable */
} kn_opt_kind;

#define KN_OPT_LIST_MAX 256
typedef struct {
    int n;
    const char *v[KN_OPT_LIST_MAX];
} kn_opt_list;

typedef struct {
    const char *name;  /* "--batch" */
    kn_opt_kind kind;
    void *dst;
    int min;           /* KN_OPT_INT lower bound */
} kn_opt;

enum { KN_OPT_OK = 0, KN_OPT_USAGE = 2, KN_OPT_HELP = 3 };

/* Parses argv[0..argc) (argv[0] is the first argument after the
 * subcommand).  Non-option words go to `pos` (an error if pos is NULL).
 * Prints usage errors to stderr prefixed by `cmd`. */
int kn_opt_parse(const char *cmd, int argc, char **argv, const kn_opt *opts, int n_opts,
                 kn_opt_list *pos);

/* Strict integer parsing shared with positional arguments. */
int kn_opt_int(const char *s, long long *out);

#endif

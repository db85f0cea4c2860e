/* kn_rt_cli.c — kn_rt_main: the generated executable's command line.  The
 * only place that dispatches on the subcommand; each one is its own file. */
#include "kn_rt_cli.h"

#include <string.h>

static void usage(const kn_rt_model *m, const char *prog, FILE *f)
{
    fprintf(f,
            "%s — kiln-compiled model '%s' (target %s)\n"
            "\n"
            "usage: %s COMMAND [OPTIONS]   (%s COMMAND --help for details)\n"
            "\n"
            "commands:\n"
            "  info      model summary, parameter counts, arena size, phases\n"
            "  eval      loss and accuracy over a dataset split\n"
            "  predict   top-K class probabilities for test images or .npy inputs\n"
            "  bench     time inference or a train step on random inputs\n"
            "  run       feed .npy inputs, write every output as .npy\n"
            "  train     train the model (needs a train phase)\n"
            "  gradcheck compiled gradients vs finite differences, per parameter\n"
            "  sweep     train once per learning rate / batch size, table of results\n"
            "\n"
            "datasets: Fashion-MNIST/MNIST: train = first 55000 images of the train file,\n"
            "val = its last 5000, test = the 10000-image t10k file; image folders:\n"
            "train/, validation/, test/ with one sub-folder per class.\n"
            "exit codes: 0 success, 1 runtime failure, 2 usage error.\n",
            prog, m->name, m->target && *m->target ? m->target : "cpu", prog, prog);
}

int kn_rt_main(const kn_rt_model *m, int argc, char **argv)
{
    const char *prog = argc > 0 && argv[0] ? argv[0] : m->name;
    const char *slash = strrchr(prog, '/');
    if (slash) prog = slash + 1;
    if (argc < 2) {
        usage(m, prog, stderr);
        return KN_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(m, prog, stdout);
        return KN_EXIT_OK;
    }
    static const struct {
        const char *name;
        int (*fn)(const kn_rt_model *, int, char **);
    } cmds[] = {
        {"info", kn_cmd_info}, {"eval", kn_cmd_eval}, {"predict", kn_cmd_predict},
        {"bench", kn_cmd_bench}, {"run", kn_cmd_run}, {"train", kn_cmd_train},
        {"gradcheck", kn_cmd_gradcheck}, {"sweep", kn_cmd_sweep},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmd, cmds[i].name)) {
            int rc = cmds[i].fn(m, argc - 2, argv + 2);
            fflush(stdout);
            fflush(stderr);
            return rc;
        }
    fprintf(stderr, "%s: unknown command '%s' (info, eval, predict, bench, run, train; see --help)\n", prog, cmd);
    return KN_EXIT_USAGE;
}

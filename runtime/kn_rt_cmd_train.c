/* kn_rt_cmd_train.c — `train`.  Placeholder until training lands: reports
 * a model without a train phase cleanly. */
#include "kn_rt_cli.h"
#include "kn_rt_opt.h"

int kn_cmd_train(const kn_rt_model *m, int argc, char **argv)
{
    kn_cli c;
    kn_cli_begin(&c, m, "train", 0);
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: train [--data DIR] [--epochs N] [--batch B] [--lr X] [--seed S] "
                   "[--device cpu] [--save CKPT] [--resume CKPT] [--weights CKPT] [--json]\n");
            return KN_EXIT_OK;
        }
    if (!m->train) return kn_cli_fail(&c, "this model was compiled without a train phase");
    return kn_cli_fail(&c, "training is not supported by this runtime yet");
}

/* optimizers.c — the vocabulary of a model's `optimizer` setting: which
 * optimizers exist and which options they take.  The frontend checks model
 * files against it (with locations); the optimizer-lowering pass implements
 * exactly these. */
#include "ir.h"

#include <string.h>

const char *const kn_optimizer_names[] = {"sgd", "adam", "adamw", NULL};

const char *const kn_optimizer_options[] = {
    "lr", "momentum", "dampening", "nesterov", "weight_decay", "betas", "beta1", "beta2", "eps", NULL};

static bool in_list(const char *const *list, const char *name)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], name) == 0) return true;
    return false;
}

bool kn_optimizer_known(const char *name) { return in_list(kn_optimizer_names, name); }
bool kn_optimizer_option_known(const char *name) { return in_list(kn_optimizer_options, name); }

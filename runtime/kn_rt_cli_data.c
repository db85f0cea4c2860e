/* kn_rt_cli_data.c — see kn_cli_class_ios / kn_cli_dataset in kn_rt_cli.h. */
#include "kn_rt_arena.h"
#include "kn_rt_cli.h"

int kn_cli_class_ios(const kn_cli *c, kn_cli_ios *io)
{
    memset(io, 0, sizeof *io);
    const kn_rt_phase *ph = c->m->infer;
    io->ph = ph;
    int n_in = 0;
    for (int i = 0; i < ph->n_io; i++) n_in += ph->io_role[i] == KN_RT_IO_INPUT;
    io->input = kn_rt_io_find(ph, KN_RT_IO_INPUT, NULL);
    io->label = kn_rt_io_find(ph, KN_RT_IO_LABEL, NULL);
    io->output = kn_rt_io_find(ph, KN_RT_IO_OUTPUT, NULL);
    io->loss = kn_rt_io_find(ph, KN_RT_IO_LOSS, NULL);
    char s[128];
    if (n_in != 1)
        return kn_cli_fail(c, "model %s has %d inputs; %s feeds exactly one (use run)", c->m->name, n_in, c->cmd);
    if (!io->output || !io->output->batched || io->output->dtype != KN_RT_F32)
        return kn_cli_fail(c, "model %s has no batched f32 output to classify%s%s", c->m->name,
                           io->output ? ": output is " : "",
                           io->output ? kn_rt_io_shape(io->output, s, sizeof s) : "");
    if (io->label && (io->label->dtype != KN_RT_I64 || !io->label->batched || io->label->sample_numel != 1))
        return kn_cli_fail(c, "label '%s' is %s, expected i64[N]", io->label->name,
                           kn_rt_io_shape(io->label, s, sizeof s));
    if (io->loss && (io->loss->dtype != KN_RT_F32 || io->loss->batched || io->loss->sample_numel != 1))
        return kn_cli_fail(c, "loss '%s' is %s, expected a f32 scalar", io->loss->name,
                           kn_rt_io_shape(io->loss, s, sizeof s));
    io->classes = (int)io->output->sample_numel;
    return 0;
}

int kn_cli_dataset(const kn_cli *c, const kn_cli_ios *io, const char *dir, const char *split,
                   kn_dataset *d)
{
    const char *kind = c->m->data_kind;
    char err[1024];
    if (!kind || !*kind)
        return kn_cli_fail(c, "model %s declares no dataset (use run with .npy inputs)", c->m->name);
    if (kn_data_open(kind, dir, split, d, err, sizeof err)) return kn_cli_fail(c, "%s", err);
    int ncls = kn_data_n_classes(kind);
    if (kn_data_check_input(d, io->input, err, sizeof err) ||
        (io->classes != ncls &&
         snprintf(err, sizeof err, "output '%s' has %d values per sample but %s has %d classes",
                  io->output->name, io->classes, kind, ncls) > 0)) {
        kn_data_close(d);
        return kn_cli_fail(c, "%s", err);
    }
    return 0;
}

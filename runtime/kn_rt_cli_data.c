/* kn_rt_cli_data.c — see kn_cli_class_ios / kn_cli_dataset in kn_rt_cli.h. */
#include "kn_rt_arena.h"
#include "kn_rt_cli.h"

int kn_cli_class_ios(const kn_cli *c, kn_cli_ios *io) { return kn_cli_phase_ios(c, c->m->infer, io); }

int kn_cli_phase_ios(const kn_cli *c, const kn_rt_phase *ph, kn_cli_ios *io)
{
    memset(io, 0, sizeof *io);
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

/* "classes: dress=0, hat=1, ..." and what --skip-bad left out. */
static void say_images(kn_cli *c, const kn_dataset *d)
{
    if (!c->said_classes) {
        c->said_classes = 1;
        fprintf(c->out, "classes:");
        for (int i = 0; i < d->classes; i++)
            fprintf(c->out, "%s %s=%d", i ? "," : "", kn_imgset_class(d->imgs, i), i);
        fputc('\n', c->out);
    }
    int sk = kn_imgset_skipped(d->imgs);
    fprintf(c->out, "data: %s: %d images%s", d->dir, d->count, sk ? "" : "\n");
    if (sk) fprintf(c->out, ", %d unreadable skipped (--skip-bad)\n", sk);
}

int kn_cli_dataset(kn_cli *c, const kn_cli_ios *io, const char *dir, const char *split, kn_dataset *d)
{
    const char *kind = c->m->data_kind;
    char err[1024];
    if (!kind || !*kind)
        return kn_cli_fail(c, "model %s declares no dataset (use run with .npy inputs)", c->m->name);
    if (kn_data_open_model(c->m, &c->data, dir, split, d, err, sizeof err)) return kn_cli_fail(c, "%s", err);
    if (d->imgs) say_images(c, d);
    int ncls = d->classes;
    if (kn_data_check_input(d, io->input, err, sizeof err) ||
        (io->classes != ncls &&
         snprintf(err, sizeof err, "output '%s' has %d values per sample but %s has %d classes",
                  io->output->name, io->classes, kind, ncls) > 0)) {
        kn_data_close(d);
        return kn_cli_fail(c, "%s", err);
    }
    return 0;
}

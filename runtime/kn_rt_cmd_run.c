/* kn_rt_cmd_run.c — `run`: any model as a function of .npy files, so op
 * golden tests can drive single-op models without a dataset. */
#include "kn_rt_arena.h"
#include "kn_rt_afile.h"
#include "kn_rt_cli.h"
#include "kn_rt_inspect.h"
#include "kn_rt_opt.h"
#include "kn_safetensors.h"
#include "npy.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

static const char HELP[] =
    "usage: run [--weights CKPT] [--seed S] [--device cpu|cuda] --in NAME=FILE.npy... --out DIR\n"
    "  every input and label of the model needs an --in; batched tensors take any\n"
    "  leading size >= 1 (the same for all), other dims must match exactly.\n"
    "  writes each output (and the loss, if any) as DIR/NAME.npy.\n";

static int fits(const kn_rt_io *io, const kn_npy *a)
{
    if (a->dtype != (int)io->dtype || a->rank != io->rank) return 0;
    for (int d = 0; d < io->rank; d++) {
        if (d == 0 && io->batched) {
            if (a->dims[0] < 1) return 0;
        } else if (a->dims[d] != io->dims[d]) {
            return 0;
        }
    }
    return 1;
}

int kn_cmd_run(const kn_rt_model *m, int argc, char **argv)
{
    uint64_t seed = (uint64_t)m->seed;
    const char *weights = NULL, *outdir = NULL, *device = NULL;
    static kn_opt_list ins;
    ins.n = 0;
    kn_opt opts[] = {
        {"--weights", KN_OPT_STR, &weights, 0}, {"--seed", KN_OPT_U64, &seed, 0},
        {"--device", KN_OPT_STR, &device, 0},   {"--in", KN_OPT_LIST, &ins, 0},
        {"--out", KN_OPT_STR, &outdir, 0},
    };
    int rc = kn_opt_parse("run", argc, argv, opts, sizeof opts / sizeof opts[0], NULL);
    if (rc == KN_OPT_HELP) return printf("%s", HELP), KN_EXIT_OK;
    if (rc) return KN_EXIT_USAGE;
    kn_cli c;
    kn_cli_begin(&c, m, "run", 0);
    if ((rc = kn_cli_device(&c, device))) return rc;
    if (!outdir) return kn_cli_usage(&c, "--out DIR is required");
    const kn_rt_phase *ph = m->infer;
    const char *file[64] = {0};
    if (ph->n_io > 64) return kn_cli_fail(&c, "model has more than 64 phase tensors");
    for (int i = 0; i < ins.n; i++) {
        const char *eq = strchr(ins.v[i], '=');
        if (!eq || eq == ins.v[i] || !eq[1]) return kn_cli_usage(&c, "--in '%s': expected NAME=FILE.npy", ins.v[i]);
        int found = -1;
        for (int k = 0; k < ph->n_io; k++)
            if ((ph->io_role[k] == KN_RT_IO_INPUT || ph->io_role[k] == KN_RT_IO_LABEL) &&
                strlen(ph->io[k].name) == (size_t)(eq - ins.v[i]) &&
                !strncmp(ph->io[k].name, ins.v[i], (size_t)(eq - ins.v[i])))
                found = k;
        if (found < 0) return kn_cli_usage(&c, "--in '%.*s': model %s has no input of that name",
                                           (int)(eq - ins.v[i]), ins.v[i], m->name);
        file[found] = eq + 1;
    }
    kn_npy arr[64];
    memset(arr, 0, sizeof arr);
    char err[1024], s1[128], s2[128];
    int n = -1;
    const char *n_from = NULL;
    rc = 0;
    for (int k = 0; k < ph->n_io && !rc; k++) {
        if (ph->io_role[k] != KN_RT_IO_INPUT && ph->io_role[k] != KN_RT_IO_LABEL) continue;
        const kn_rt_io *io = &ph->io[k];
        if (!file[k]) {
            rc = kn_cli_usage(&c, "missing --in %s=FILE.npy (%s %s)", io->name,
                              ph->io_role[k] == KN_RT_IO_LABEL ? "label" : "input",
                              kn_rt_io_shape(io, s1, sizeof s1));
            break;
        }
        if (kn_npy_read(file[k], &arr[k], err, sizeof err)) {
            rc = kn_cli_fail(&c, "%s", err);
            break;
        }
        if (!fits(io, &arr[k])) {
            rc = kn_cli_fail(&c, "--in %s: %s has shape %s, expected %s", io->name, file[k],
                             kn_st_shape_str(arr[k].dtype, arr[k].rank, arr[k].dims, s1, sizeof s1),
                             kn_rt_io_shape(io, s2, sizeof s2));
            break;
        }
        if (io->batched) {
            if (n >= 0 && arr[k].dims[0] != n) {
                rc = kn_cli_fail(&c, "--in %s: batch %lld differs from batch %d of %s", io->name,
                                 (long long)arr[k].dims[0], n, n_from);
                break;
            }
            n = (int)arr[k].dims[0];
            n_from = io->name;
        }
    }
    kn_rt_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    if (n < 0) n = 1;
    if (!rc && kn_rt_ctx_open(&ctx, m, n, err, sizeof err)) rc = kn_cli_fail(&c, "%s", err);
    if (!rc) rc = kn_cli_weights(&c, &ctx, weights, seed);
    if (!rc && kn_rt_mkdir_p(outdir)) rc = kn_cli_fail(&c, "--out %s: cannot create directory: %s", outdir, strerror(errno));
    if (!rc) {
        for (int k = 0; k < ph->n_io; k++)
            if (arr[k].data)
                memcpy(kn_rt_io_ptr(&ctx, ph, &ph->io[k], n), arr[k].data,
                       arr[k].numel * kn_rt_dtype_size(arr[k].dtype));
        ph->run(&ctx, n);
        for (int k = 0; k < ph->n_io && !rc; k++) {
            if (ph->io_role[k] != KN_RT_IO_OUTPUT && ph->io_role[k] != KN_RT_IO_LOSS) continue;
            const kn_rt_io *io = &ph->io[k];
            int64_t dims[KN_RT_MAX_RANK];
            memcpy(dims, io->dims, sizeof dims);
            if (io->batched) dims[0] = n;
            char path[4096];
            kn_rt_npy_path(path, sizeof path, outdir, io->name, "");
            if (kn_npy_write(path, io->dtype, io->rank, dims, kn_rt_io_ptr(&ctx, ph, io, n), err, sizeof err))
                rc = kn_cli_fail(&c, "%s", err);
            else
                printf("wrote %s %s\n", path, kn_st_shape_str(io->dtype, io->rank, dims, s1, sizeof s1));
        }
    }
    for (int k = 0; k < 64; k++) kn_npy_free(&arr[k]);
    kn_rt_ctx_close(&ctx);
    return rc;
}

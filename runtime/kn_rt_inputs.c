/* kn_rt_inputs.c — see kn_rt_inputs.h. */
#include "kn_rt_inputs.h"
#include "kn_rt_arena.h"

#include <stdlib.h>

#define KN_RT_INPUT_STREAM 0x696e707574ull /* "input" */

void kn_rt_inputs_random(kn_rt_inputs *in, const kn_rt_phase *ph, int n, uint64_t seed, int normal)
{
    const kn_rt_io *out = kn_rt_io_find(ph, KN_RT_IO_OUTPUT, NULL);
    int64_t classes = out && out->sample_numel ? (int64_t)out->sample_numel : 1;
    in->ph = ph;
    in->n = n;
    in->data = calloc((size_t)ph->n_io + 1, sizeof(void *));
    in->bytes = calloc((size_t)ph->n_io + 1, sizeof(size_t));
    for (int i = 0; i < ph->n_io; i++) {
        if (ph->io_role[i] != KN_RT_IO_INPUT && ph->io_role[i] != KN_RT_IO_LABEL) continue;
        const kn_rt_io *io = &ph->io[i];
        uint64_t stream = KN_RT_INPUT_STREAM + (uint64_t)i;
        size_t numel = io->batched ? io->sample_numel * (size_t)n : io->sample_numel;
        in->bytes[i] = numel * kn_rt_dtype_size(io->dtype);
        in->data[i] = malloc(in->bytes[i] ? in->bytes[i] : 1);
        for (size_t k = 0; k < numel; k++) {
            if (io->dtype == KN_RT_I64)
                ((int64_t *)in->data[i])[k] = (int64_t)(kn_rt_uniform(seed, stream, k) * (float)classes) % classes;
            else
                ((float *)in->data[i])[k] = normal ? kn_rt_normal(seed, stream, k) : kn_rt_uniform(seed, stream, k);
        }
    }
}

void kn_rt_inputs_restore(const kn_rt_inputs *in, kn_rt_ctx *ctx)
{
    for (int i = 0; i < in->ph->n_io; i++)
        if (in->data[i]) memcpy(kn_rt_io_ptr(ctx, in->ph, &in->ph->io[i], in->n), in->data[i], in->bytes[i]);
}

void kn_rt_inputs_free(kn_rt_inputs *in)
{
    for (int i = 0; in->data && i < in->ph->n_io; i++) free(in->data[i]);
    free(in->data);
    free(in->bytes);
    in->data = NULL;
    in->bytes = NULL;
}

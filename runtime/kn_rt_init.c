/* kn_rt_init.c — see kn_rt_init.h.  Bounds follow torch.nn.init as used by
 * nn.Linear/nn.Conv2d reset_parameters(): kaiming_uniform_(a=sqrt(5))
 * reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in)), same for the bias. */
#include "kn_rt_init.h"

#include <math.h>

double kn_rt_init_scale(const kn_rt_param *p)
{
    double fi = (double)p->fan_in, fo = (double)p->fan_out;
    switch (p->init) {
    case KN_RT_INIT_KAIMING_UNIFORM:
    case KN_RT_INIT_BIAS_UNIFORM: return fi > 0 ? 1.0 / sqrt(fi) : 0.0;
    case KN_RT_INIT_XAVIER_UNIFORM: return fi + fo > 0 ? sqrt(6.0 / (fi + fo)) : 0.0;
    case KN_RT_INIT_XAVIER_NORMAL: return fi + fo > 0 ? sqrt(2.0 / (fi + fo)) : 0.0;
    case KN_RT_INIT_KAIMING_NORMAL: return fi > 0 ? sqrt(2.0 / fi) : 0.0;
    default: return 0.0;
    }
}

void kn_rt_init_param(const kn_rt_param *p, float *dst, uint64_t seed, uint64_t stream)
{
    double s = kn_rt_init_scale(p);
    size_t n = p->numel;
    switch (p->init) {
    case KN_RT_INIT_ZEROS:
        for (size_t i = 0; i < n; i++) dst[i] = 0.0f;
        break;
    case KN_RT_INIT_ONES:
        for (size_t i = 0; i < n; i++) dst[i] = 1.0f;
        break;
    case KN_RT_INIT_KAIMING_UNIFORM:
    case KN_RT_INIT_BIAS_UNIFORM:
    case KN_RT_INIT_XAVIER_UNIFORM:
        for (size_t i = 0; i < n; i++) {
            /* u in [0,1) maps to [-s, s); the float rounding keeps it in range. */
            double u = kn_rt_uniform(seed, stream, i);
            dst[i] = (float)((2.0 * u - 1.0) * s);
        }
        break;
    case KN_RT_INIT_XAVIER_NORMAL:
    case KN_RT_INIT_KAIMING_NORMAL:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(s * kn_rt_normal(seed, stream, i));
        break;
    case KN_RT_INIT_DATA:
        if (p->data) memcpy(dst, p->data, n * sizeof(float));
        else for (size_t i = 0; i < n; i++) dst[i] = 0.0f;
        break;
    }
}

void kn_rt_init_weights(const kn_rt_model *m, float *weights, uint64_t seed)
{
    for (int i = 0; i < m->n_params; i++)
        kn_rt_init_param(&m->params[i], weights + m->params[i].offset, seed, (uint64_t)i);
}

/* kn_rt_cli_util.c — see kn_rt_cli.h. */
#include "kn_rt_arena.h" /* kn_rt_use_cuda, kn_rt_ctx_host_wrote */
#include "kn_rt_cli.h"
#include "kn_rt_ckpt.h"
#include "kn_rt_init.h"

#include <stdarg.h>
#include <stdlib.h>

void kn_cli_begin(kn_cli *c, const kn_rt_model *m, const char *cmd, int json)
{
    c->m = m;
    c->cmd = cmd;
    c->json = json;
    memset(&c->data, 0, sizeof c->data);
    c->said_classes = 0;
    /* Under --json stdout carries only JSON lines so it can be piped to a parser. */
    c->out = json ? stderr : stdout;
}

static int vfail(const kn_cli *c, int code, const char *fmt, va_list ap)
{
    fflush(stdout);
    fprintf(stderr, "%s: ", c->cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    return code;
}

int kn_cli_fail(const kn_cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(c, KN_EXIT_FAIL, fmt, ap);
    va_end(ap);
    return rc;
}

int kn_cli_usage(const kn_cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(c, KN_EXIT_USAGE, fmt, ap);
    va_end(ap);
    return rc;
}

int kn_cli_device(const kn_cli *c, const char *device)
{
    const char *target = c->m->target && *c->m->target ? c->m->target : "cpu";
    kn_rt_use_cuda(c->m, 0);
    /* A cuda executable holds the CPU phases too: it runs on either. */
    if (!device || strcmp(device, "cpu") == 0) return 0;
    if (strcmp(device, "cuda") != 0 || !c->m->cuda)
        return kn_cli_usage(c, "--device %s: this executable was built for target %s", device, target);
    char why[256] = "";
    if (c->m->cuda->backend->probe(why, sizeof why) <= 0) return kn_cli_fail(c, "no CUDA device (%s)", why);
    kn_rt_use_cuda(c->m, 1);
    return 0;
}

int kn_cli_weights(const kn_cli *c, kn_rt_ctx *ctx, const char *weights, uint64_t seed)
{
    ctx->seed = seed;
    kn_rt_ctx_host_wrote(ctx, KN_RT_BLOB_WEIGHTS); /* a GPU's copy is stale from here */
    if (!weights) {
        kn_rt_init_weights(c->m, ctx->weights, seed);
        return 0;
    }
    char err[1024];
    /* Optimizer state is optional here: absent tensors keep their init. */
    kn_rt_ckpt_init_state(c->m, ctx->weights, seed);
    if (kn_rt_ckpt_load(c->m, ctx->weights, weights, err, sizeof err))
        return kn_cli_fail(c, "%s", err);
    return 0;
}

const float *kn_cli_norm(const kn_rt_model *m)
{
    return m->n_normalize > 0 && m->normalize ? m->normalize : NULL;
}

void kn_cli_json(cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(s);
    }
    cJSON_Delete(obj);
}

const char *kn_cli_thousands(unsigned long long v, char *buf, size_t cap)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", v), k = 0;
    for (int i = 0; i < n && (size_t)k + 2 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = tmp[i];
    }
    buf[k] = 0;
    return buf;
}

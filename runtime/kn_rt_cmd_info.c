/* kn_rt_cmd_info.c — `info`: what this executable is. */
#include "kn_rt_arena.h"
#include "kn_rt_blas.h"
#include "kn_rt_cli.h"
#include "kn_rt_opt.h"

static const char HELP[] =
    "usage: info [--batch B] [--kernels] [--json]\n"
    "  model name, target, layer summary, parameter counts (trainable, frozen,\n"
    "  buffers), arena bytes at batch B (default: the model's batch) and phases.\n"
    "  --kernels   (target cuda) list every GPU kernel and the IR node it runs\n";

int kn_cmd_info(const kn_rt_model *m, int argc, char **argv)
{
    int json = 0, batch = m->batch > 0 ? m->batch : 1, kernels = 0;
    kn_opt opts[] = {{"--json", KN_OPT_FLAG, &json, 0}, {"--batch", KN_OPT_INT, &batch, 1},
                     {"--kernels", KN_OPT_FLAG, &kernels, 0}};
    kn_cli c;
    kn_cli_begin(&c, m, "info", 0);
    int rc = kn_opt_parse("info", argc, argv, opts, 3, NULL);
    if (rc == KN_OPT_HELP) return printf("%s", HELP), KN_EXIT_OK;
    if (rc) return KN_EXIT_USAGE;
    kn_cli_begin(&c, m, "info", json);

    unsigned long long count[3] = {0, 0, 0};
    for (int i = 0; i < m->n_params; i++)
        if ((unsigned)m->params[i].role < 3) count[m->params[i].role] += m->params[i].numel;
    size_t arena = kn_rt_arena_bytes(m, batch);
    const char *target = m->target && *m->target ? m->target : "cpu";
    char a[32], b[32], d[32], e[32];
    FILE *o = c.out;
    fprintf(o, "model    %s\n", m->name);
    if (m->hash && *m->hash) fprintf(o, "hash     %s\n", m->hash);
    fprintf(o, "target   %s (GEMM %s, OpenBLAS %s kernels, %d threads)\n", target, kn_rt_gemm_library(),
            kn_rt_blas_core(), kn_rt_get_threads());
    if (m->data_kind && *m->data_kind) {
        fprintf(o, "data     %s", m->data_kind);
        const float *n = kn_cli_norm(m);
        if (n) fprintf(o, " normalize (%.4f, %.4f)", n[0], n[1]);
        fputc('\n', o);
    }
    if (m->summary && *m->summary) {
        fputs(m->summary, o);
        if (m->summary[strlen(m->summary) - 1] != '\n') fputc('\n', o);
    }
    fprintf(o, "params   trainable %s · frozen %s · buffers %s (%s weight bytes)\n",
            kn_cli_thousands(count[0], a, sizeof a), kn_cli_thousands(count[1], b, sizeof b),
            kn_cli_thousands(count[2], d, sizeof d),
            kn_cli_thousands((unsigned long long)m->weights_numel * 4, e, sizeof e));
    fprintf(o, "arena    %s bytes at batch %d\n", kn_cli_thousands(arena, a, sizeof a), batch);
    fprintf(o, "phases   infer%s%s%s\n", m->train ? ", train" : "", m->train && m->update ? ", update" : "",
            m->features ? ", features, head_train, head_infer (frozen prefix cached while training)" : "");
    if (m->cuda) {
        fprintf(o, "kernels  %d CUDA kernels, PTX for %s (source embedded: re-JIT for other GPUs)%s\n",
                m->cuda->n_kernels, m->cuda->arch, kernels ? ":" : "; list them with --kernels");
        for (int k = 0; kernels && k < m->cuda->n_kernels; k++)
            fprintf(o, "  %-24s %s\n", m->cuda->kernel_names[k], m->cuda->kernel_nodes[k]);
    }
    if (!json) return KN_EXIT_OK;

    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "event", "info");
    cJSON_AddStringToObject(j, "model", m->name);
    cJSON_AddStringToObject(j, "target", target);
    cJSON_AddNumberToObject(j, "trainable", (double)count[0]);
    cJSON_AddNumberToObject(j, "frozen", (double)count[1]);
    cJSON_AddNumberToObject(j, "buffers", (double)count[2]);
    cJSON_AddNumberToObject(j, "batch", batch);
    cJSON_AddNumberToObject(j, "arena_bytes", (double)arena);
    if (m->cuda) {
        cJSON_AddStringToObject(j, "cuda_arch", m->cuda->arch);
        cJSON *ks = cJSON_AddArrayToObject(j, "kernels");
        for (int k = 0; k < m->cuda->n_kernels; k++) cJSON_AddItemToArray(ks, cJSON_CreateString(m->cuda->kernel_names[k]));
    }
    cJSON *ph = cJSON_AddArrayToObject(j, "phases");
    cJSON_AddItemToArray(ph, cJSON_CreateString("infer"));
    if (m->train) cJSON_AddItemToArray(ph, cJSON_CreateString("train"));
    if (m->train && m->update) cJSON_AddItemToArray(ph, cJSON_CreateString("update"));
    if (m->features) {
        cJSON_AddItemToArray(ph, cJSON_CreateString("features"));
        cJSON_AddItemToArray(ph, cJSON_CreateString("head_train"));
        cJSON_AddItemToArray(ph, cJSON_CreateString("head_infer"));
    }
    kn_cli_json(j);
    return KN_EXIT_OK;
}

/* kn_rt_cmd_eval.c — `eval`: mean loss and argmax accuracy over a split. */
#include "kn_rt_arena.h"
#include "kn_rt_cli.h"
#include "kn_rt_opt.h"

#include <stdlib.h>

static const char HELP[] =
    "usage: eval [--data DIR] [--weights CKPT] [--split train|val|test] [--batch B]\n"
    "            [--seed S] [--device cpu|cuda] [--json] [--skip-bad]\n"
    "  --data DIR      directory with the four *-idx?-ubyte.gz files, or for image\n"
    "                  folders the data root holding the model's data path (default:\n"
    "                  the model's dataset location, $KILN_DATA, ../shared/data)\n"
    "  --skip-bad      image folders: leave unreadable images out (counted)\n"
    "  --weights CKPT  safetensors checkpoint (default: fresh init from --seed)\n"
    "  --split         train = first 55000 train images, val = last 5000, test =\n"
    "                  the 10000 t10k images (default test)\n"
    "  --batch B       samples per call (default 256)\n"
    "  --seed S        init seed when no --weights (default: the model's seed)\n"
    "  --json          one {\"event\":\"eval\",...} line on stdout\n";

/* First maximum, like torch.argmax. */
static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

int kn_cmd_eval(const kn_rt_model *m, int argc, char **argv)
{
    int json = 0, batch = KN_CLI_EVAL_BATCH, skip_bad = 0;
    uint64_t seed = (uint64_t)m->seed;
    const char *data = NULL, *weights = NULL, *split = "test", *device = NULL;
    kn_opt opts[] = {
        {"--data", KN_OPT_STR, &data, 0},       {"--weights", KN_OPT_STR, &weights, 0},
        {"--split", KN_OPT_STR, &split, 0},     {"--batch", KN_OPT_INT, &batch, 1},
        {"--seed", KN_OPT_U64, &seed, 0},       {"--device", KN_OPT_STR, &device, 0},
        {"--json", KN_OPT_FLAG, &json, 0},      {"--skip-bad", KN_OPT_FLAG, &skip_bad, 0},
    };
    int rc = kn_opt_parse("eval", argc, argv, opts, sizeof opts / sizeof opts[0], NULL);
    if (rc == KN_OPT_HELP) return printf("%s", HELP), KN_EXIT_OK;
    if (rc) return KN_EXIT_USAGE;
    kn_cli c;
    kn_cli_begin(&c, m, "eval", json);
    c.data.skip_bad = skip_bad;
    if (strcmp(split, "train") && strcmp(split, "val") && strcmp(split, "test"))
        return kn_cli_usage(&c, "--split '%s': expected train, val or test", split);
    if ((rc = kn_cli_device(&c, device))) return rc;

    kn_cli_ios io;
    if ((rc = kn_cli_class_ios(&c, &io))) return rc;
    kn_dataset d;
    if ((rc = kn_cli_dataset(&c, &io, data, split, &d))) return rc;
    kn_rt_ctx ctx;
    char err[1024];
    if (batch > d.count) batch = d.count;
    if (kn_rt_ctx_open(&ctx, m, batch, err, sizeof err)) {
        kn_data_close(&d);
        return kn_cli_fail(&c, "%s", err);
    }
    if ((rc = kn_cli_weights(&c, &ctx, weights, seed))) goto out;

    const float *norm = kn_cli_norm(m);
    double loss_sum = 0;
    long long correct = 0;
    kn_data_prefetch(&d, NULL, 0, batch);
    for (int start = 0; start < d.count; start += batch) {
        int n = d.count - start < batch ? d.count - start : batch;
        if (kn_data_features(&d, norm, NULL, start, n, kn_rt_io_ptr(&ctx, io.ph, io.input, n))) {
            rc = kn_cli_fail(&c, "%s", d.err);
            goto out;
        }
        /* The next batch decodes (image folders) while this one computes. */
        int next = start + batch;
        if (next < d.count) kn_data_prefetch(&d, NULL, next, d.count - next < batch ? d.count - next : batch);
        if (io.label) kn_data_labels(&d, NULL, start, n, kn_rt_io_ptr(&ctx, io.ph, io.label, n));
        io.ph->run(&ctx, n);
        const float *logits = kn_rt_io_ptr(&ctx, io.ph, io.output, n);
        for (int i = 0; i < n; i++)
            correct += argmax(logits + (size_t)i * io.classes, io.classes) == d.labels[start + i];
        if (io.loss && io.label) loss_sum += (double)*(const float *)kn_rt_io_ptr(&ctx, io.ph, io.loss, n) * n;
    }
    double acc = (double)correct / d.count, loss = loss_sum / d.count;
    if (d.imgs && kn_imgset_skipped(d.imgs))
        fprintf(c.out, "%s: %d unreadable images skipped (--skip-bad)\n", split, kn_imgset_skipped(d.imgs));
    int has_loss = io.loss && io.label;
    if (has_loss)
        fprintf(c.out, "%s: loss %.4f  accuracy %.4f  (%d samples, %lld correct)\n", split, loss, acc,
                d.count, correct);
    else
        fprintf(c.out, "%s: accuracy %.4f  (%d samples, %lld correct)\n", split, acc, d.count, correct);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "event", "eval");
        cJSON_AddStringToObject(j, "split", split);
        if (has_loss) cJSON_AddNumberToObject(j, "loss", loss);
        cJSON_AddNumberToObject(j, "accuracy", acc);
        cJSON_AddNumberToObject(j, "correct", (double)correct);
        cJSON_AddNumberToObject(j, "n", d.count);
        if (d.imgs) cJSON_AddNumberToObject(j, "skipped", kn_imgset_skipped(d.imgs));
        kn_cli_json(j);
    }
out:
    kn_rt_ctx_close(&ctx);
    kn_data_close(&d);
    return rc;
}

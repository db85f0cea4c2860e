/* kn_rt_cli.h — pieces shared by the generated executable's subcommands.
 * Each subcommand lives in kn_rt_cmd_NAME.c and returns an exit code:
 * 0 success, 1 runtime failure (bad data or checkpoint), 2 usage error. */
#ifndef KN_RT_CLI_H
#define KN_RT_CLI_H

#include "kn_data.h"
#include "kn_rt.h"

#include <cJSON.h>
#include <stdio.h>

enum { KN_EXIT_OK = 0, KN_EXIT_FAIL = 1, KN_EXIT_USAGE = 2 };

/* Eval/predict batch when --batch is absent: large enough to amortise the
 * per-call overhead, small enough to keep the arena modest. */
#define KN_CLI_EVAL_BATCH 256

typedef struct {
    const kn_rt_model *m;
    const char *cmd;         /* subcommand, prefixes every message */
    int json;                /* results as JSON lines on stdout */
    FILE *out;               /* human output: stdout, or stderr under --json */
    kn_data_opts data;       /* --skip-bad, --augment (image folders) */
    int said_classes;        /* the "classes:" line is printed once */
} kn_cli;

void kn_cli_begin(kn_cli *c, const kn_rt_model *m, const char *cmd, int json);
/* Print "cmd: message" on stderr and return KN_EXIT_FAIL / KN_EXIT_USAGE. */
int kn_cli_fail(const kn_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int kn_cli_usage(const kn_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --device must name this executable's target. */
int kn_cli_device(const kn_cli *c, const char *device);
/* Fill ctx->weights from --weights CKPT, or fresh init from seed. */
int kn_cli_weights(const kn_cli *c, kn_rt_ctx *ctx, const char *weights, uint64_t seed);
/* The model's (mean, std) pair or NULL when it declares no normalisation. */
const float *kn_cli_norm(const kn_rt_model *m);
/* One JSON object per line on stdout; takes ownership of obj. */
void kn_cli_json(cJSON *obj);
/* 1234567 -> "1,234,567". */
const char *kn_cli_thousands(unsigned long long v, char *buf, size_t cap);

int kn_cmd_info(const kn_rt_model *m, int argc, char **argv);
int kn_cmd_eval(const kn_rt_model *m, int argc, char **argv);
int kn_cmd_predict(const kn_rt_model *m, int argc, char **argv);
int kn_cmd_bench(const kn_rt_model *m, int argc, char **argv);
int kn_cmd_run(const kn_rt_model *m, int argc, char **argv);
int kn_cmd_train(const kn_rt_model *m, int argc, char **argv);
int kn_cmd_sweep(const kn_rt_model *m, int argc, char **argv);

/* One train run as a sweep sees it. */
typedef struct {
    double best_val_acc;
    int best_epoch, epochs_run;
    double test_acc;         /* with the best-val weights */
    double seconds;          /* whole run, caching included */
} kn_train_result;
struct kn_fcache_pool;
/* `train` with a cache pool shared across runs (may be NULL) and the
 * result of the run (may be NULL). */
int kn_cmd_train_ex(const kn_rt_model *m, int argc, char **argv, struct kn_fcache_pool *pool,
                    kn_train_result *res);
int kn_cmd_gradcheck(const kn_rt_model *m, int argc, char **argv);



/* Dataset glue shared by eval and predict. */
typedef struct {
    const kn_rt_phase *ph;
    const kn_rt_io *input, *label, *output, *loss;
    int classes;
} kn_cli_ios;
/* Finds the infer phase's ios and checks they fit a classification
 * dataset: one f32 input, optional i64 label, a batched f32 output. */
int kn_cli_class_ios(const kn_cli *c, kn_cli_ios *io);
/* The same checks on another phase (head_infer when caching features). */
int kn_cli_phase_ios(const kn_cli *c, const kn_rt_phase *ph, kn_cli_ios *io);
/* Opens split of the model's dataset (with c->data) and checks the input
 * takes it; image folders print their classes once and any skipped files. */
int kn_cli_dataset(kn_cli *c, const kn_cli_ios *io, const char *dir, const char *split,
                   kn_dataset *d);
#endif

/* sweep.c — see sweep.h.  Each executable runs `EXE sweep ... --json`; its
 * human output streams to stderr, its JSON lines come back through a pipe
 * and make the combined table. */
#define _GNU_SOURCE
#include "sweep.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_VALUES 16
#define MAX_SETS 16

static const char HELP[] =
    "usage: kiln sweep MODEL [--set P=V1,V2,...] [--set Q=V]... [EXE sweep options]\n"
    "\n"
    "Trains MODEL once per setting and prints one table.  A --set with several\n"
    "comma-separated values (at most one such) builds one executable per value\n"
    "(layer sizes are compile-time: --set inner=10,100,1000); the EXE sweep options\n"
    "(--lr 0.0001,0.001,0.01 --batch ... --epochs N --out DIR, see EXE sweep --help)\n"
    "vary run-time settings inside each executable.  With --out DIR each value of\n"
    "the --set writes DIR/P=V/sweep.{csv,jsonl,svg}.\n"
    "example: kiln sweep models/clothing_transfer_inner.kiln --set inner=10,100,1000 --lr 0.001\n";

typedef struct {
    char tag[128];
    cJSON *rows[64];
    int n;
} value_result;

/* Runs `exe sweep ARGS --tag TAG --json`, collecting its JSON lines. */
static int run_exe(const char *exe, char **args, int n_args, const char *tag, const char *out_dir, value_result *r)
{
    int fd[2];
    if (pipe(fd) != 0) return fprintf(stderr, "kiln: pipe: %s\n", strerror(errno)), 1;
    char out_sub[4400];
    if (out_dir) snprintf(out_sub, sizeof out_sub, "%s/%s", out_dir, tag);
    pid_t pid = fork();
    if (pid < 0) return fprintf(stderr, "kiln: fork: %s\n", strerror(errno)), 1;
    if (pid == 0) {
        char **av = calloc((size_t)n_args + 10, sizeof *av);
        int k = 0;
        av[k++] = (char *)exe;
        av[k++] = "sweep";
        for (int i = 0; i < n_args; i++) av[k++] = args[i];
        av[k++] = "--tag";
        av[k++] = (char *)tag;
        if (out_dir) {
            av[k++] = "--out";
            av[k++] = out_sub;
        }
        av[k++] = "--json";
        av[k] = NULL;
        close(fd[0]);
        dup2(fd[1], 1);
        close(fd[1]);
        execv(exe, av);
        fprintf(stderr, "kiln: cannot run %s: %s\n", exe, strerror(errno));
        _exit(1);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char *line = NULL;
    size_t cap = 0;
    while (f && getline(&line, &cap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *ev = j ? cJSON_GetObjectItem(j, "event") : NULL;
        if (ev && cJSON_IsString(ev) && !strcmp(ev->valuestring, "sweep") && r->n < 64) r->rows[r->n++] = j;
        else cJSON_Delete(j);
    }
    free(line);
    if (f) fclose(f);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static double num(const cJSON *j, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* Mean best-val accuracy of the runs of (tag, lr, batch) over seeds. */
static double setting_mean(const value_result *r, const cJSON *like, int *count)
{
    double sum = 0;
    *count = 0;
    for (int i = 0; i < r->n; i++) {
        const cJSON *j = r->rows[i];
        if (num(j, "lr") != num(like, "lr") || num(j, "batch") != num(like, "batch") || num(j, "best_val_acc") < 0)
            continue;
        sum += num(j, "best_val_acc");
        (*count)++;
    }
    return *count ? sum / *count : -1;
}

/* Seeds in the runs: the best setting by its mean over them; else the
 * best run. */
static void print_means_or_best(const value_result *res, int n, const cJSON *best, const char *best_tag)
{
    double best_mean = -1;
    const cJSON *arg = NULL;
    const char *arg_tag = "";
    int seeds = 0;
    for (int v = 0; v < n; v++)
        for (int i = 0; i < res[v].n; i++) {
            int cnt;
            double m = setting_mean(&res[v], res[v].rows[i], &cnt);
            if (cnt > 1 && m > best_mean) best_mean = m, arg = res[v].rows[i], arg_tag = res[v].tag, seeds = cnt;
        }
    if (arg)
        printf("best: %s lr %g (mean best val %.4f over %d seeds)\n", arg_tag, num(arg, "lr"), best_mean, seeds);
    else
        printf("best: %s lr %g (val %.4f at epoch %.0f, test %.4f)\n", best_tag, num(best, "lr"),
               num(best, "best_val_acc"), num(best, "best_epoch"), num(best, "test_acc"));
}

static void print_table(value_result *res, int n)
{
    printf("\n| setting | best val acc | epoch of best | test acc | seconds |\n|---|---|---|---|---|\n");
    const cJSON *best = NULL;
    const char *best_tag = "";
    for (int v = 0; v < n; v++)
        for (int i = 0; i < res[v].n; i++) {
            const cJSON *j = res[v].rows[i];
            char batch[64] = "";
            int w = 0;
            if (num(j, "batch") > 0) w = snprintf(batch, sizeof batch, " batch %.0f", num(j, "batch"));
            if (num(j, "seed") >= 0) snprintf(batch + w, sizeof batch - (size_t)w, " seed %.0f", num(j, "seed"));
            if (num(j, "best_val_acc") < 0) {
                printf("| %s lr %g%s | failed | | | |\n", res[v].tag, num(j, "lr"), batch);
                continue;
            }
            printf("| %s lr %g%s | %.4f | %.0f | %.4f | %.1f |\n", res[v].tag, num(j, "lr"), batch,
                   num(j, "best_val_acc"), num(j, "best_epoch"), num(j, "test_acc"), num(j, "seconds"));
            if (!best || num(j, "best_val_acc") > num(best, "best_val_acc")) {
                best = j;
                best_tag = res[v].tag;
            }
        }
    if (best) print_means_or_best(res, n, best, best_tag);
}

int kn_cli_sweep(int argc, char **argv, kn_cli_exe_fn exe_for)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(HELP, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *model = argv[1];
    const char *sets[MAX_SETS], *multi = NULL, *out_dir = NULL;
    int n_sets = 0, multi_at = -1, n_args = 0;
    char **args = calloc((size_t)argc + 1, sizeof *args);
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strchr(v, '=') || n_sets == MAX_SETS) {
                free(args);
                return fprintf(stderr, "kiln: sweep: --set '%s': expected NAME=VALUE[,VALUE...]\n", v), 2;
            }
            if (strchr(v, ',')) {
                if (multi) {
                    free(args);
                    return fprintf(stderr, "kiln: sweep: only one --set may list several values\n"), 2;
                }
                multi = v;
                multi_at = n_sets;
            }
            sets[n_sets++] = v;
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out_dir = argv[++i];
        } else if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "--tag")) {
            free(args);
            return fprintf(stderr, "kiln: sweep: %s is set by kiln sweep itself\n", argv[i]), 2;
        } else {
            args[n_args++] = argv[i];
        }
    }
    /* One value list: P=a,b,c -> "P=a", "P=b", "P=c". */
    char values[MAX_VALUES][128];
    int n_values = 0;
    if (multi) {
        const char *eq = strchr(multi, '=');
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", eq + 1);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && n_values < MAX_VALUES;
             t = strtok_r(NULL, ",", &save))
            snprintf(values[n_values++], sizeof values[0], "%.*s=%s", (int)(eq - multi), multi, t);
    } else {
        snprintf(values[n_values++], sizeof values[0], "%s", "default");
    }
    value_result *res = calloc((size_t)n_values, sizeof *res);
    int rc = 0;
    for (int v = 0; v < n_values && rc == 0; v++) {
        if (multi) sets[multi_at] = values[v];
        snprintf(res[v].tag, sizeof res[v].tag, "%s", values[v]);
        fprintf(stderr, "kiln sweep: %s\n", values[v]);
        char exe[4400];
        if ((rc = exe_for(model, sets, n_sets, exe, sizeof exe)) != 0) break;
        int r = run_exe(exe, args, n_args, values[v], out_dir, &res[v]);
        if (r == 2) rc = 2; /* usage errors repeat for every value */
    }
    if (rc == 0) print_table(res, n_values);
    for (int v = 0; v < n_values; v++)
        for (int i = 0; i < res[v].n; i++) cJSON_Delete(res[v].rows[i]);
    free(res);
    free(args);
    return rc;
}

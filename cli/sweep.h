/* sweep.h — `kiln sweep`: a hyper-parameter sweep over compile-time model
 * parameters (--set P=a,b,c, one executable each) and, inside each
 * executable, its run-time ones (EXE sweep --lr ...). */
#ifndef KN_CLI_SWEEP_H
#define KN_CLI_SWEEP_H

#include <stddef.h>

/* How the driver gets a built executable for MODEL with these --set values. */
typedef int (*kn_cli_exe_fn)(const char *model, const char *const *sets, int n_sets, char *exe, size_t cap);

int kn_cli_sweep(int argc, char **argv, kn_cli_exe_fn exe_for);

#endif

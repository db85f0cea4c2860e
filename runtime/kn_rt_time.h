/* kn_rt_time.h — wall clock, CPU time and memory figures for bench and progress. */
#ifndef KN_RT_TIME_H
#define KN_RT_TIME_H

double kn_rt_now_ms(void);       /* monotonic milliseconds */
double kn_rt_peak_rss_mb(void);  /* peak resident set of this process */
double kn_rt_cpu_ms(void);       /* CPU time of this process (no waits for a core) */
/* Sorts v[0..n) ascending and returns its median (mean of the middle two
 * for an even n); n > 0. */
double kn_rt_median(double *v, int n);

#endif

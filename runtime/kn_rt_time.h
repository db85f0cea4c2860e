/* kn_rt_time.h — wall clock and memory figures for bench and progress. */
#ifndef KN_RT_TIME_H
#define KN_RT_TIME_H

double kn_rt_now_ms(void);       /* monotonic milliseconds */
double kn_rt_peak_rss_mb(void);  /* peak resident set of this process */

#endif

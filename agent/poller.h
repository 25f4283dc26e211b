/* poller.h — schedules every device's polls on the loop (one timer per device, random
 * phase) and turns each poll's outcome into the device's health samples: up,
 * poll_duration_seconds and poll_errors_total{reason}. */
#ifndef AG_POLLER_H
#define AG_POLLER_H

#include <stddef.h>
#include <uv.h>

#include "config.h"
#include "driver.h"
#include "profile.h"

typedef struct ag_poller ag_poller;

/* Open a driver for every device of cfg and start polling. once: poll each device exactly
 * one time, immediately, and no timers. Readings, inventory and health samples go to sink
 * (sink->done is called after the health samples of each poll). 0 or -1 with err. */
int ag_poller_open(ag_poller **out, uv_loop_t *loop, const ag_config *cfg,
                   const ag_profile_set *profiles, const ag_sink *sink, int once, char *err,
                   size_t errlen);
/* Stop the timers and close the drivers; frees the poller once its handles are closed. */
void ag_poller_close(ag_poller *p);

#endif

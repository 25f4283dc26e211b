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

/* How the poller starts polls. */
typedef enum {
    AG_POLL_TIMERS = 0, /* every device on its own interval timer, random phase (the daemon) */
    AG_POLL_ONCE,       /* every device exactly one time, immediately (--once) */
    AG_POLL_MANUAL,     /* no timers: the caller starts rounds with ag_poller_poll_all */
} ag_poll_mode;

/* Open a driver for every device of cfg and start polling as mode says. Readings, inventory
 * and health samples go to sink (sink->done is called after the health samples of each
 * poll). 0 or -1 with err. */
int ag_poller_open(ag_poller **out, uv_loop_t *loop, const ag_config *cfg,
                   const ag_profile_set *profiles, const ag_sink *sink, ag_poll_mode mode,
                   char *err, size_t errlen);
/* Called once every poll of a round ended (after their sink->done calls). */
typedef void (*ag_round_cb)(void *ud);

/* A round: poll every device now (one still polling is left out), at most max_in_flight at a
 * time (0 = all at once; the next starts as one ends: the requests a thousand devices keep
 * in flight are the agent's peak memory otherwise). Returns how many devices the round
 * polls; done(ud) follows their last sink->done (also when that is 0, from the loop).
 * -1 when a round is still running. */
long ag_poller_poll_all(ag_poller *p, size_t max_in_flight, ag_round_cb done, void *ud);
/* Stop the timers and close the drivers; frees the poller once its handles are closed. */
void ag_poller_close(ag_poller *p);

#endif

/* driver.h — the one small interface between the poller and each protocol driver.
 *
 * A driver polls one device at a time per instance. It reports what it read through the
 * sink and ends every poll with exactly one sink->done call (never from inside poll()). */
#ifndef AG_DRIVER_H
#define AG_DRIVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "batch.h"
#include "config.h"
#include "profile.h"

/* Why a poll failed: the `reason` label of poll_errors_total. */
typedef enum {
    AG_POLL_OK = 0,
    AG_POLL_TIMEOUT,  /* no answer within timeout × (retries + 1) */
    AG_POLL_REFUSED,  /* ICMP unreachable, connection refused, DNS failure */
    AG_POLL_AUTH,     /* wrong community/user/password */
    AG_POLL_PROTOCOL, /* malformed or error answer */
    AG_POLL_CONFIG,   /* no profile matches, bad address */
} ag_poll_status;

/* "timeout", "refused", ... ("ok" for AG_POLL_OK). */
const char *ag_poll_status_name(ag_poll_status s);

typedef struct ag_sink {
    void *ud;
    /* One reading. labels are not sorted; everything is copied by the receiver. */
    void (*point)(void *ud, const ag_device *dev, const char *metric, const char *unit,
                  const cm_label *labels, size_t nlabels, int64_t ts_ms, double value);
    /* Device inventory read during the poll (model, serial, firmware, profile). */
    void (*inventory)(void *ud, const ag_device *dev, const cm_device_info *info);
    /* The poll ended; detail is a human-readable reason for logs (NULL when ok). */
    void (*done)(void *ud, const ag_device *dev, ag_poll_status status, const char *detail);
} ag_sink;

typedef struct ag_driver_ops {
    const char *name;
    /* Prepare polling of dev on loop. profiles: every loaded profile (for auto-selection).
     * Returns 0 and an opaque state, or -1 with err. */
    int (*open)(uv_loop_t *loop, const ag_device *dev, const ag_profile_set *profiles,
                const ag_sink *sink, void **state, char *err, size_t errlen);
    /* Start one poll. Returns 0, or -1 when a poll is already in flight (nothing started). */
    int (*poll)(void *state);
    /* Cancel what is in flight (no done callback afterwards) and release the state once the
     * loop has closed its handles. */
    void (*close)(void *state);
} ag_driver_ops;

extern const ag_driver_ops ag_snmp_driver;
extern const ag_driver_ops ag_pjlink_driver;
extern const ag_driver_ops ag_http_driver;
extern const ag_driver_ops ag_text_driver;

/* The driver for a protocol name ("snmp", ...), or NULL when none is built in. */
const ag_driver_ops *ag_driver_find(const char *protocol);
/* What every driver's open checks first: a device with an id and an address, a sink with both
 * callbacks, and (when check_port) a port 1..65535. 0, or -1 with "<proto>: ..." in err. */
int ag_driver_check_device(const char *proto, const ag_device *dev, const ag_sink *sink,
                           int check_port, char *err, size_t errlen);
/* The profile dev names, which must exist and be of protocol proto (any protocol when proto
 * is NULL); without one, the profile named fallback, or an error when fallback is NULL.
 * *out may be NULL for a fallback that is not loaded. 0, or -1 with err naming the device. */
int ag_driver_profile(const char *proto, const ag_device *dev, const ag_profile_set *profiles,
                      const char *fallback, const ag_profile **out, char *err, size_t errlen);

#endif

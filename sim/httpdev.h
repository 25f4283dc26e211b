/* httpdev.h — the simulator's HTTP devices: an LED cinema screen controller (JSON at
 * GET /api/status), a light-and-sound sensor (JSON at GET /api/measurements) and a Dolby
 * IMS-like media server (SOAP 1.1 at POST /dc/dcp/ws/v1/{SessionManagement,SystemInformation}),
 * each on its own TCP port of the hall, served by a small HTTP/1.1 server on the libuv loop. */
#ifndef SIM_HTTPDEV_H
#define SIM_HTTPDEV_H

#include <stdint.h>
#include <uv.h>

#include "model.h"

typedef enum {
    SIM_HTTP_LED = 0,    /* slot 4: LED screen controller, profile led-screen-http */
    SIM_HTTP_SENSOR = 1, /* slot 5: light and sound sensor, profile light-sound-sensor-http */
    SIM_HTTP_IMS = 2,    /* slot 6: Dolby IMS-like SOAP server, profile dolby-ims-soap */
    SIM_HTTP_NKINDS
} sim_http_kind;

typedef struct sim_httpdev sim_httpdev;

typedef struct sim_httpdev_opts {
    sim_http_kind kind;
    int hall;                        /* 1-based */
    uint64_t seed;                   /* run seed */
    int64_t start_ms;                /* loop time at start */
    double speed;                    /* simulated seconds per real second */
    double fault_rate;               /* per request, 0..1 (slow, garble, close, silent) */
    const sim_device *projector;     /* the hall's SNMP projector (lamp age drives luminance) */
    const char *ims_user, *ims_pass; /* IMS login (NULL = any login accepted) */
} sim_httpdev_opts;

typedef struct sim_httpdev_stats {
    uint64_t connections, requests, responses, bad_requests, faults;
} sim_httpdev_stats;

/* Listen on addr and serve one device as described by opts. 0, or a negative libuv error
 * (err filled). *out is owned by the caller and freed by sim_httpdev_free. */
int sim_httpdev_start(sim_httpdev **out, uv_loop_t *loop, const struct sockaddr *addr,
                      const sim_httpdev_opts *opts, char *err, size_t errlen);
/* Close the listener and every connection; the handles close on the loop's next run. */
void sim_httpdev_stop(sim_httpdev *d);
/* Free the device after the loop has run its close callbacks. NULL is fine. */
void sim_httpdev_free(sim_httpdev *d);
/* Counters of one device. */
void sim_httpdev_get_stats(const sim_httpdev *d, sim_httpdev_stats *st);
/* The TCP port the device listens on (useful after binding port 0), or a negative libuv error. */
int sim_httpdev_port(const sim_httpdev *d);
/* The agent's profile name for a kind ("led-screen-http", ...). */
const char *sim_httpdev_profile(sim_http_kind kind);
/* The device's role name in the hall ("led-screen", "sensor", "ims-soap"). */
const char *sim_httpdev_role(sim_http_kind kind);

#endif

/* pjlink.h — a simulated PJLink Class 1 + 2 projector (devices.md §3): greeting, optional
 * MD5 authentication, POWR/INPT/AVMT/ERST/LAMP/INST/NAME/INF1/INF2/INFO/CLSS and the
 * Class 2 queries SNUM/SVER/INNM/IRES/RRES/FILT/RLMP/RFIL/FREZ. */
#ifndef SIM_PJLINK_H
#define SIM_PJLINK_H

#include <stddef.h>
#include <stdint.h>

#include "lineproto.h"

typedef struct sim_pjlink {
    int hall;
    uint64_t seed;
    int64_t start_ms;
    double speed;
    double lamp_hours0;
    char password[33]; /* "" = no authentication */
    int power_on;      /* requested state */
    int64_t power_changed_ms;
    char input[3];     /* "31" */
    int avmt;          /* 30, 11, 21, 31 ... */
    int freeze;
} sim_pjlink;

/* Set up the projector of hall from the run seed; password may be NULL or "". */
void sim_pjlink_init(sim_pjlink *p, int hall, uint64_t seed, int64_t start_ms, double speed,
                     const char *password);

extern const sim_line_proto sim_pjlink_proto;

#endif

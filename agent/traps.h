/* traps.h — the SNMP trap receiver: a UDP socket on the agent's loop that turns SNMPv1 and
 * SNMPv2c traps from the configured devices into events (source "snmp-trap").
 *
 * The community must match [traps] community; the sender's address must be a configured
 * device's address (a literal IP); anything else is counted (and logged, rate-limited), never
 * an event. A v1 trap's OID is built as RFC 3584 says (enterprise.0.specific, or
 * 1.3.6.1.6.3.1.1.5.(generic+1)); a v2c trap carries it in snmpTrapOID.0. The device's profile
 * "traps" table maps the OID to code, severity and text; an unmapped OID becomes an info
 * event whose code is the OID. Informs and SNMPv3 are not supported (counted). */
#ifndef AG_TRAPS_H
#define AG_TRAPS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "batch.h"
#include "config.h"
#include "profile.h"

typedef struct ag_traps ag_traps;

/* Called for every accepted trap; e and its strings live only during the call. */
typedef void (*ag_trap_event_cb)(void *ud, const cm_event *e);

typedef struct ag_traps_stats {
    uint64_t datagrams;      /* received */
    uint64_t events;         /* handed to the callback */
    uint64_t malformed;      /* not a parsable SNMP message, or a trap without its OID */
    uint64_t bad_community;  /* community did not match */
    uint64_t unknown_sender; /* not from a configured device's address */
    uint64_t unsupported;    /* SNMPv3, informs, other PDU types */
} ag_traps_stats;

/* Listen on cfg->traps_host:cfg->traps_port (port 0 = any free port, see ag_traps_port) and
 * match senders against cfg's devices and their profiles (neither copied: both must outlive
 * the receiver). 0, or -1 with err. */
int ag_traps_open(ag_traps **out, uv_loop_t *loop, const ag_config *cfg,
                  const ag_profile_set *profiles, ag_trap_event_cb cb, void *ud, char *err,
                  size_t errlen);
/* The UDP port the receiver is bound to. */
int ag_traps_port(const ag_traps *t);
/* Counters so far. */
void ag_traps_stats_get(const ag_traps *t, ag_traps_stats *out);
/* Stop receiving; `t` is freed once its handle is closed (run the loop). */
void ag_traps_close(ag_traps *t);

#endif

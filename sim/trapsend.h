/* trapsend.h — SNMPv2c traps of the simulated projectors: which vendor trap a fault episode
 * or a temperature crossing raises, the generic linkDown/linkUp pair around a silent episode,
 * the encoded datagram, and a per-device rate limit. The caller sends the datagram from the
 * device's own socket. No sockets here (unit-tested). */
#ifndef SIM_TRAPSEND_H
#define SIM_TRAPSEND_H

#include <stddef.h>
#include <stdint.h>

#include "fault.h"
#include "model.h"

#define SIM_TRAP_MIN_GAP_MS 10000 /* at most one trap per device per 10 s (real time) */
#define SIM_TRAP_REARM_C 2.0      /* a temperature trap re-arms this far below its limit */

/* A silent episode is the device's network link going down: SIM_TRAP_FAULT with
 * SIM_FAULT_SILENT means SIM_TRAP_LINK_DOWN (SNMPv2-MIB linkDown, RFC 3418), and the episode's
 * end SIM_TRAP_LINK_UP. Link traps are state changes: the rate limit never holds them back nor
 * counts them (at most one linkDown and one linkUp per episode of at least 5 s), so every
 * linkDown is followed by its linkUp. */
typedef enum {
    SIM_TRAP_FAULT = 0,     /* a fault episode starts: the vendor trap of its kind */
    SIM_TRAP_TEMP = 1,      /* the hottest temperature passed its limit upward */
    SIM_TRAP_LINK_DOWN = 2, /* linkDown 1.3.6.1.6.3.1.1.5.3, ifIndex 1 */
    SIM_TRAP_LINK_UP = 3,   /* linkUp 1.3.6.1.6.3.1.1.5.4, ifIndex 1 */
} sim_trap_cause;

typedef struct sim_trap_state {
    int64_t last_ms; /* when the last trap was sent; 0 = never */
    int hot;         /* the temperature is above its limit (no new trap until it re-arms) */
    int primed;      /* the first sample only sets hot: a device hot at start sends nothing */
    int link_down;   /* a linkDown was sent and its linkUp is still due */
    int32_t next_id; /* request-id of the next trap */
    uint64_t sent, suppressed;
} sim_trap_state;

/* 1 when devices of d's model send traps (the SNMP projectors). */
int sim_trap_capable(const sim_device *d);
/* The trap OID for cause (and fault f when cause is SIM_TRAP_FAULT) of d. 0 or -1. */
int sim_trap_oid(const sim_device *d, sim_trap_cause cause, sim_fault f, sim_oid *oid);
/* Sample d's hottest temperature at now_ms: 1 when it has just passed its warning limit
 * upward (a temperature trap is due), else 0. */
int sim_trap_temp_check(sim_trap_state *ts, const sim_device *d, int64_t now_ms);
/* 1 when d's linkUp is due at now_ms: a linkDown is outstanding and the silent episode has
 * ended (now_ms >= d->fault.silent_until_ms); else 0. Check before sim_fault_decide, which
 * may start the next episode. */
int sim_trap_link_up_due(const sim_trap_state *ts, const sim_device *d, int64_t now_ms);
/* Encode the SNMPv2c trap (sysUpTime.0, snmpTrapOID.0, then ifIndex.1, ifAdminStatus.1 and
 * ifOperStatus.1 for link traps, sysName.0, and the temperature cell for SIM_TRAP_TEMP) into
 * out. A linkDown sets ts->link_down, a linkUp clears it. Returns its length, or 0 when the
 * device sends no traps, the rate limit holds a vendor or temperature trap back (counted in
 * ts->suppressed) or cap is too small. */
size_t sim_trap_build(sim_trap_state *ts, const sim_device *d, sim_trap_cause cause, sim_fault f,
                      const char *community, int64_t now_ms, uint8_t *out, size_t cap);

#endif

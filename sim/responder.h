/* responder.h — answers one SNMP v1/v2c request datagram for one simulated device:
 * GET, GETNEXT, GETBULK with the v1/v2c error semantics. A pure function of its inputs
 * (no sockets), so the unit tests drive it directly. */
#ifndef SIM_RESPONDER_H
#define SIM_RESPONDER_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

#define SIM_MAX_RESPONSE 1472 /* one Ethernet frame of UDP payload */

typedef struct sim_snmp_stats {
    uint64_t requests, responses, malformed, bad_community, unsupported, too_big;
} sim_snmp_stats;

/* Answer req[0..len) for device d with community (NUL-terminated) at now_ms. Writes the
 * response into out (cap bytes, at most SIM_MAX_RESPONSE are used) and returns its length,
 * or 0 when nothing is to be sent (malformed, wrong community, unsupported PDU). */
size_t sim_snmp_respond(const sim_device *d, const char *community, const uint8_t *req,
                        size_t len, uint8_t *out, size_t cap, int64_t now_ms,
                        sim_snmp_stats *st);

#endif

/* traps.h — the SNMP trap and inform receiver: a net-snmp session whose UDP socket is polled on
 * the agent's loop; it turns SNMPv1/v2c traps, v2c informs and SNMPv3 traps and informs from the
 * configured devices into events (source "snmp-trap").
 *
 * The sender's address must be a configured device's address (a literal IP). v1/v2c: the
 * community must match [traps] community. v3: the USM user [traps] v3_user at v3_level or
 * above. An inform is answered with a Response once its event is handed on; the receiver is
 * the authoritative engine for informs: its engine ID is [traps] v3_engine_id, or one made
 * once and kept (with the boot counter) in state_dir/traps-engine. A v3 trap is authenticated
 * against the sender's engine ID, learnt from the first trap of a configured device (at most
 * AG_TRAPS_MAX_ENGINES). Anything else is counted (and logged, rate-limited), never an event.
 *
 * A v1 trap's OID is built as RFC 3584 says (enterprise.0.specific, or
 * 1.3.6.1.6.3.1.1.5.(generic+1)); a v2c/v3 trap carries it in snmpTrapOID.0. The device's
 * profile "traps" table maps the OID to code, severity and text; an unmapped OID becomes an
 * info event whose code is the OID. */
#ifndef AG_TRAPS_H
#define AG_TRAPS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "batch.h"
#include "config.h"
#include "profile.h"

#define AG_TRAPS_MAX_ENGINES 64 /* v3 trap senders' engine IDs learnt per receiver */

struct snmp_pdu; /* net-snmp's netsnmp_pdu */

typedef struct ag_traps ag_traps;

/* Called for every accepted trap; e and its strings live only during the call. */
typedef void (*ag_trap_event_cb)(void *ud, const cm_event *e);

typedef struct ag_traps_stats {
    uint64_t datagrams;      /* received */
    uint64_t events;         /* handed to the callback */
    uint64_t informs_acked;  /* informs answered with a Response */
    uint64_t malformed;      /* not a parsable SNMP message, or a trap without its OID */
    uint64_t bad_community;  /* v1/v2c community did not match */
    uint64_t unknown_sender; /* not from a configured device's address */
    uint64_t unsupported;    /* other PDU types; SNMPv3 when no v3_user is configured */
    /* SNMPv3 (USM) refusals, by reason */
    uint64_t v3_probes;         /* engine-ID discovery probes (answered with a report) */
    uint64_t v3_unknown_engine; /* informs for another engine ID */
    uint64_t v3_unknown_user;   /* a user name that is not [traps] v3_user */
    uint64_t v3_wrong_digest;   /* authentication failed: wrong v3_auth_password or forged */
    uint64_t v3_decrypt_error;  /* decryption failed: wrong v3_priv_password */
    uint64_t v3_not_in_time;    /* outside the time window (a sender's first inform, to sync) */
    uint64_t v3_bad_level;      /* security level below [traps] v3_level */
    uint64_t v3_engines_learnt; /* trap senders' engine IDs learnt */
} ag_traps_stats;

/* An event made from one trap: e's strings point into the profile, the device, or here. */
typedef struct ag_trap_event {
    cm_event e;
    char code[CM_MAX_NAME];
    char text[CM_MAX_TEXT];
} ag_trap_event;

/* Listen on cfg->traps_host:cfg->traps_port (port 0 = any free port, see ag_traps_port) and
 * match senders against cfg's devices and their profiles (neither copied: both must outlive
 * the receiver). With cfg->traps_v3_user, set up the process's SNMPv3 engine ID and USM user.
 * 0, or -1 with err. */
int ag_traps_open(ag_traps **out, uv_loop_t *loop, const ag_config *cfg,
                  const ag_profile_set *profiles, ag_trap_event_cb cb, void *ud, char *err,
                  size_t errlen);
/* The UDP port the receiver is bound to. */
int ag_traps_port(const ag_traps *t);
/* The receiver's SNMPv3 engine ID in hex ("" without v3) into buf; its length. */
size_t ag_traps_engine_id(const ag_traps *t, char *buf, size_t len);
/* Counters so far. */
void ag_traps_stats_get(const ag_traps *t, ag_traps_stats *out);
/* Stop receiving; `t` is freed once its handle is closed (run the loop). */
void ag_traps_close(ag_traps *t);

/* Map one decoded trap or inform PDU of device `dev` to an event: `profile` is the device's
 * named profile (NULL: the first of `all` that maps the OID, when dev names none). Pure: no
 * I/O, no state. 0, or -1 when the PDU is no trap or carries no usable trap OID. */
int ag_traps_map(const struct snmp_pdu *pdu, const ag_device *dev, const ag_profile *profile,
                 const ag_profile_set *all, int64_t ts_ms, ag_trap_event *out);

#endif

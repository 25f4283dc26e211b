/* ber.h — a minimal, strictly bounded BER codec for SNMP v1/v2c messages (the simulator's
 * responder). Decoding never reads outside the given buffer; anything malformed is rejected. */
#ifndef SIM_BER_H
#define SIM_BER_H

#include <stddef.h>
#include <stdint.h>

#define SIM_MAX_OID 128    /* sub-identifiers per OID (RFC 3416 limit) */
#define SIM_MAX_VARBINDS 64 /* varbinds decoded from one request */

/* BER tags used by SNMP. */
enum {
    SIM_TAG_INT = 0x02,
    SIM_TAG_OCTETS = 0x04,
    SIM_TAG_NULL = 0x05,
    SIM_TAG_OID = 0x06,
    SIM_TAG_SEQ = 0x30,
    SIM_TAG_IPADDR = 0x40,
    SIM_TAG_COUNTER32 = 0x41,
    SIM_TAG_GAUGE32 = 0x42,
    SIM_TAG_TIMETICKS = 0x43,
    SIM_TAG_COUNTER64 = 0x46,
    SIM_TAG_NOSUCHOBJECT = 0x80,
    SIM_TAG_NOSUCHINSTANCE = 0x81,
    SIM_TAG_ENDOFMIBVIEW = 0x82,
    SIM_PDU_GET = 0xA0,
    SIM_PDU_GETNEXT = 0xA1,
    SIM_PDU_RESPONSE = 0xA2,
    SIM_PDU_SET = 0xA3,
    SIM_PDU_GETBULK = 0xA5,
};

/* SNMP error-status values. */
enum { SIM_ERR_NONE = 0, SIM_ERR_TOOBIG = 1, SIM_ERR_NOSUCHNAME = 2, SIM_ERR_GENERR = 5 };

typedef struct sim_oid {
    uint32_t sub[SIM_MAX_OID];
    uint8_t len;
} sim_oid;

/* A decoded request: the varbinds' values are ignored (they are NULL in GET requests). */
typedef struct sim_request {
    int version; /* 0 = v1, 1 = v2c */
    const uint8_t *community;
    size_t community_len;
    int pdu; /* SIM_PDU_* */
    int32_t request_id;
    int32_t field2; /* error-status, or non-repeaters (GETBULK) */
    int32_t field3; /* error-index, or max-repetitions (GETBULK) */
    sim_oid oids[SIM_MAX_VARBINDS];
    size_t noids;
} sim_request;

/* A value to encode. */
typedef struct sim_value {
    uint8_t tag;      /* SIM_TAG_* (INT, OCTETS, OID, COUNTER32, GAUGE32, TIMETICKS, NULL, exceptions) */
    int64_t num;      /* INT (int32 range) or unsigned 32-bit types */
    const char *str;  /* OCTETS */
    size_t len;       /* OCTETS */
    const sim_oid *oid; /* OID */
} sim_value;

/* Decode an SNMP v1/v2c message (any PDU type listed above; varbind values are skipped). Returns 0, or a negative code (-1 malformed, -2 more
 * varbinds than SIM_MAX_VARBINDS, -3 unsupported version). */
int sim_ber_decode_request(const uint8_t *buf, size_t len, sim_request *req);

/* Encoded size of one varbind (SEQUENCE {oid, value}). */
size_t sim_ber_varbind_size(const sim_oid *oid, const sim_value *v);
/* Append one varbind at out[*pos]; returns 0, or -1 (nothing written) when it does not fit. */
int sim_ber_put_varbind(uint8_t *out, size_t cap, size_t *pos, const sim_oid *oid,
                        const sim_value *v);
/* Write a message (version, community, PDU tag pdu with request-id, f2, f3) around the
 * encoded varbinds vb[0..vblen) into out. Returns its length, or 0 when it does not fit. */
size_t sim_ber_encode_message(uint8_t *out, size_t cap, int version, const uint8_t *community,
                              size_t community_len, int pdu, int32_t request_id, int32_t f2,
                              int32_t f3, const uint8_t *vb, size_t vblen);

/* Compare two OIDs lexicographically (<0, 0, >0). */
int sim_oid_cmp(const sim_oid *a, const sim_oid *b);
/* Parse "1.3.6.1..." (leading '.' allowed) into o. 0 or -1. */
int sim_oid_parse(const char *s, sim_oid *o);

#endif

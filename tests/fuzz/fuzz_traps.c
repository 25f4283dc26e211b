/* fuzz_traps.c — libFuzzer target for the trap → event mapping (ag_traps_map in
 * agent/traps.c): the part of the trap receiver that reads a decoded trap's varbinds.
 *
 * The first input byte picks how the rest becomes a decoded PDU:
 *   even: the bytes are a datagram, decoded by net-snmp's snmp_parse as the receiver does;
 *   odd:  the bytes describe a PDU directly (command, v1 fields, then varbinds of
 *         [type][name length][name sub-ids][value length][value]), with values shaped as the
 *         decoder makes them, snmpTrapOID.0 often first, so the mapping sees odd trap OIDs,
 *         odd value types and many varbinds.
 * Each PDU is mapped for a device with the Christie profile named, one naming none (any
 * profile's table) and one naming a profile that is not loaded. Nothing may crash, leak,
 * hang or read out of bounds, and an event's strings must be bounded.
 * (make fuzz builds it from the line below; it runs from the repository root.) */
// fuzz-sources: agent/traps.c agent/snmplib.c agent/profile.c agent/http_profile.c agent/xml_find.c agent/text_profile.c agent/profile_json.c common/wire.c common/batch.c common/arena.c common/log.c common/timeutil.c
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snmplib.h"
#include "traps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ag_profile_set g_set;
static int g_ready;

static void init(void)
{
    if (g_ready) return;
    g_ready = 1;
    ag_snmp_lib_init();
    static ag_profile p;
    char err[256];
    if (ag_profile_load("profiles/christie-cp-series2.json", &p, err, sizeof err) == 0) {
        g_set.profiles = &p;
        g_set.nprofiles = 1;
    }
}

static void map_all(const netsnmp_pdu *pdu)
{
    static const ag_device named = {.id = "h1/p", .profile = "christie-cp-series2"};
    static const ag_device unnamed = {.id = "h2/p"};
    static const ag_device missing = {.id = "h3/p", .profile = "not-loaded"};
    const ag_profile *prof = g_set.nprofiles ? &g_set.profiles[0] : NULL;
    ag_trap_event ev;
    if (ag_traps_map(pdu, &named, prof, &g_set, 1, &ev) == 0 &&
        (strlen(ev.e.code) >= CM_MAX_NAME || !ev.e.text || strlen(ev.e.text) >= CM_MAX_TEXT ||
         !ev.e.severity || strcmp(ev.e.device, "h1/p") != 0))
        abort();
    (void)ag_traps_map(pdu, &unnamed, NULL, &g_set, 1, &ev);
    (void)ag_traps_map(pdu, &missing, NULL, &g_set, 1, &ev);
}

/* A byte reader over the input. */
typedef struct rd {
    const uint8_t *p;
    size_t n;
} rd;

static int take(rd *r, uint8_t *b)
{
    if (r->n == 0) return 0;
    *b = *r->p++;
    r->n--;
    return 1;
}

static const oid TRAP_OID0[] = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};

/* One varbind from the input: 0 when the input ran out. */
static int add_varbind(netsnmp_pdu *pdu, rd *r, int first)
{
    uint8_t t, nl, vl;
    if (!take(r, &t) || !take(r, &nl)) return 0;
    oid name[MAX_OID_LEN];
    size_t namelen = 0;
    if (first && (t & 0x80)) { /* snmpTrapOID.0 */
        memcpy(name, TRAP_OID0, sizeof TRAP_OID0);
        namelen = OID_LENGTH(TRAP_OID0);
    } else {
        nl = (uint8_t)(nl % MAX_OID_LEN);
        for (; namelen < nl; namelen++) {
            uint8_t b;
            if (!take(r, &b)) return 0;
            name[namelen] = b & 0x80 ? 4294967295u - b : b;
        }
        if (namelen == 0) name[namelen++] = 0;
    }
    if (!take(r, &vl)) return 0;
    uint8_t val[256 + 4]; /* + room to pad an IpAddress */
    size_t n = 0;
    for (; n < vl; n++)
        if (!take(r, &val[n])) return 0;
    static const u_char types[] = {ASN_INTEGER,   ASN_OCTET_STR,  ASN_OBJECT_ID,
                                   ASN_IPADDRESS, ASN_COUNTER,    ASN_GAUGE,
                                   ASN_TIMETICKS, ASN_COUNTER64,  ASN_NULL,
                                   ASN_OPAQUE,    SNMP_NOSUCHOBJECT, SNMP_ENDOFMIBVIEW};
    u_char type = types[(t & 0x7f) % sizeof types];
    /* shape the value as the decoder would */
    long l = 0;
    struct counter64 c64 = {0, 0};
    oid ov[MAX_OID_LEN];
    switch (type) {
    case ASN_INTEGER:
    case ASN_COUNTER:
    case ASN_GAUGE:
    case ASN_TIMETICKS:
        memcpy(&l, val, n < sizeof l ? n : sizeof l);
        if (type != ASN_INTEGER) l = (long)(unsigned long)(uint32_t)l;
        snmp_pdu_add_variable(pdu, name, namelen, type, &l, sizeof l);
        break;
    case ASN_COUNTER64:
        memcpy(&c64, val, n < sizeof c64 ? n : sizeof c64);
        c64.high &= 0xffffffffu;
        c64.low &= 0xffffffffu;
        snmp_pdu_add_variable(pdu, name, namelen, type, &c64, sizeof c64);
        break;
    case ASN_OBJECT_ID: {
        size_t k = 0;
        for (; k < n && k < MAX_OID_LEN; k++) ov[k] = val[k] & 0x80 ? 4294967295u - val[k] : val[k];
        snmp_pdu_add_variable(pdu, name, namelen, type, ov, k * sizeof(oid));
        break;
    }
    case ASN_IPADDRESS:
        memset(val + n, 0, 4);
        snmp_pdu_add_variable(pdu, name, namelen, type, val, 4);
        break;
    case ASN_NULL:
    case SNMP_NOSUCHOBJECT:
    case SNMP_ENDOFMIBVIEW:
        snmp_pdu_add_variable(pdu, name, namelen, type, NULL, 0);
        break;
    default:
        snmp_pdu_add_variable(pdu, name, namelen, type, val, n);
        break;
    }
    return 1;
}

static void structured(const uint8_t *data, size_t size)
{
    rd r = {data, size};
    uint8_t cmd, tt, st;
    if (!take(&r, &cmd) || !take(&r, &tt) || !take(&r, &st)) return;
    static const int cmds[] = {SNMP_MSG_TRAP2, SNMP_MSG_INFORM, SNMP_MSG_TRAP, SNMP_MSG_GET};
    netsnmp_pdu *pdu = snmp_pdu_create(cmds[cmd % 4]);
    if (!pdu) return;
    if (pdu->command == SNMP_MSG_TRAP) {
        pdu->trap_type = (long)(int8_t)tt % 8;
        pdu->specific_type = (int8_t)st;
        uint8_t el;
        if (take(&r, &el)) {
            el = (uint8_t)(el % 140);
            oid ent[140];
            size_t k = 0;
            uint8_t b;
            for (; k < el && take(&r, &b); k++) ent[k] = b & 0x80 ? 4294967295u - b : b;
            if (k) {
                pdu->enterprise = snmp_duplicate_objid(ent, k);
                pdu->enterprise_length = pdu->enterprise ? k : 0;
            }
        }
    }
    for (int i = 0; i < 64 && add_varbind(pdu, &r, i == 0); i++) {
    }
    map_all(pdu);
    snmp_free_pdu(pdu);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    if (size < 1) return 0;
    if (data[0] & 1) {
        structured(data + 1, size - 1);
        return 0;
    }
    /* as the receiver decodes a v1/v2c datagram (no session: no SNMPv3 keys) */
    u_char *copy = malloc(size - 1 ? size - 1 : 1);
    if (!copy) return 0;
    memcpy(copy, data + 1, size - 1);
    /* SNMPv3 needs the receiver's session and USM users; without them net-snmp only files
     * each new engine ID in its global list, which would grow over a long run */
    size_t left = size - 1;
    u_char type;
    long ver = -1;
    u_char *p = asn_parse_sequence(copy, &left, &type, ASN_SEQUENCE | ASN_CONSTRUCTOR, "msg");
    if (!p || !asn_parse_int(p, &left, &type, &ver, sizeof ver) || ver == SNMP_VERSION_3) {
        free(copy);
        return 0;
    }
    netsnmp_session sess;
    snmp_sess_init(&sess);
    netsnmp_pdu *pdu = calloc(1, sizeof *pdu);
    if (pdu && snmp_parse(NULL, &sess, pdu, copy, size - 1) == SNMPERR_SUCCESS) map_all(pdu);
    if (pdu) snmp_free_pdu(pdu);
    free(copy);
    return 0;
}

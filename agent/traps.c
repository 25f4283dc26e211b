/* traps.c — the SNMP trap and inform receiver (v1, v2c, v3 USM); see traps.h.
 *
 * net-snmp does the protocol: a session added on our own UDP transport (snmp_sess_add_ex)
 * parses every message, answers SNMPv3 discovery and time-window probes and USM failures with
 * reports, and sends our inform Responses. Its socket is polled with a uv_poll_t, so all of it
 * runs on the agent's loop. Three hooks keep the decisions here: pre-parse drops senders that
 * are no configured device, the parse hook classifies what net-snmp refuses (and learns a v3
 * trap sender's engine ID first), the callback checks community / user and level, maps the
 * PDU (ag_traps_map) and acknowledges informs. One datagram is read at a time, so the hooks
 * share the "current datagram" fields of ag_traps. */
#include "traps.h"

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/library/large_fd_set.h>
#include <net-snmp/library/snmpIPBaseDomain.h>
#include <net-snmp/library/snmpUDPDomain.h>
#include <net-snmp/library/snmpUDPIPv6Domain.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "snmplib.h"
#include "timeutil.h"

#define ENGINE_FILE "traps-engine"
#define MAX_ENGINE 32 /* octets, RFC 3411 */

/* A device's address, parsed once. */
typedef struct peer {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    const ag_device *dev;
    const ag_profile *profile; /* the device's named profile, NULL = none named */
} peer;

/* An engine ID and the USM user we created for it. */
typedef struct engine {
    u_char id[MAX_ENGINE];
    size_t len;
    int ours; /* we created its user (marked ST_VOLATILE: the poller's are ST_READONLY) */
} engine;

struct ag_traps {
    uv_poll_t poll;
    void *sp; /* the net-snmp single session; owns the socket */
    int fd;
    const ag_config *cfg;
    const ag_profile_set *profiles;
    ag_trap_event_cb cb;
    void *ud;
    peer *peers;
    size_t npeers;
    int port;
    ag_traps_stats st;
    /* the datagram being handled */
    const peer *cur;
    int cur_ok; /* net-snmp parsed (and, v3, authenticated) it */
    char from[64];
    /* SNMPv3 */
    int v3;
    int v3_level;  /* SNMP_SEC_LEVEL_* the lowest accepted */
    engine local;  /* our engine ID, authoritative for informs */
    engine learnt[AG_TRAPS_MAX_ENGINES];
    size_t nlearnt;
    const oid *auth_proto, *priv_proto;
    size_t auth_proto_len, priv_proto_len;
    u_char auth_ku[USM_AUTH_KU_LEN], priv_ku[USM_PRIV_KU_LEN]; /* master keys, never logged */
    size_t auth_ku_len, priv_ku_len;
};

static const oid SNMP_TRAP_OID0[] = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};
static const oid SYS_UPTIME0[] = {1, 3, 6, 1, 2, 1, 1, 3, 0};
static const oid GENERIC_TRAPS[] = {1, 3, 6, 1, 6, 3, 1, 1, 5}; /* snmpTraps */

/* The sender's address as family + bytes (an IPv4-mapped IPv6 address counts as IPv4). */
static int sender_key(const struct sockaddr *sa, int *family, unsigned char addr[16])
{
    if (sa->sa_family == AF_INET) {
        *family = AF_INET;
        memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            *family = AF_INET;
            memcpy(addr, a->s6_addr + 12, 4);
        } else {
            *family = AF_INET6;
            memcpy(addr, a->s6_addr, 16);
        }
        return 0;
    }
    return -1;
}

static const peer *find_peer(const ag_traps *t, const struct sockaddr *sa)
{
    int fam;
    unsigned char a[16];
    if (!sa || sender_key(sa, &fam, a) != 0) return NULL;
    for (size_t i = 0; i < t->npeers; i++)
        if (t->peers[i].family == fam && memcmp(t->peers[i].addr, a, fam == AF_INET ? 4 : 16) == 0)
            return &t->peers[i];
    return NULL;
}

static void sender_text(const struct sockaddr *sa, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!sa) return;
    if (sa->sa_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)sa, buf, len);
    else if (sa->sa_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)sa, buf, len);
}

/* The message's version field (0 v1, 1 v2c, 3 v3) without parsing the rest; -1 = not SNMP. */
static long peek_version(unsigned char *data, size_t len)
{
    size_t left = len;
    u_char type;
    long ver = -1;
    u_char *p = asn_parse_sequence(data, &left, &type, ASN_SEQUENCE | ASN_CONSTRUCTOR, "message");
    if (!p) return -1;
    if (!asn_parse_int(p, &left, &type, &ver, sizeof ver) || type != ASN_INTEGER) return -1;
    return ver;
}

/* netsnmp OID → ag_oid; -1 when it does not fit. */
static int to_ag_oid(const oid *o, size_t n, ag_oid *out)
{
    if (n == 0 || n > AG_MAX_OID) return -1;
    for (size_t i = 0; i < n; i++) {
        if (o[i] > UINT32_MAX) return -1;
        out->sub[i] = (uint32_t)o[i];
    }
    out->len = n;
    return 0;
}

/* The trap's OID: snmpTrapOID.0 (v2c) or as RFC 3584 §3.1 builds it from a v1 trap. */
static int trap_oid(const netsnmp_pdu *pdu, ag_oid *out)
{
    if (pdu->command == SNMP_MSG_TRAP) {
        if (pdu->trap_type < 0 || pdu->trap_type > 6) return -1;
        if (pdu->trap_type != 6) {
            oid g[OID_LENGTH(GENERIC_TRAPS) + 1];
            memcpy(g, GENERIC_TRAPS, sizeof GENERIC_TRAPS);
            g[OID_LENGTH(GENERIC_TRAPS)] = (oid)pdu->trap_type + 1;
            return to_ag_oid(g, OID_LENGTH(g), out);
        }
        if (!pdu->enterprise || pdu->enterprise_length == 0 ||
            pdu->enterprise_length + 2 > AG_MAX_OID || pdu->specific_type < 0)
            return -1;
        if (to_ag_oid(pdu->enterprise, pdu->enterprise_length, out) != 0) return -1;
        out->sub[out->len++] = 0;
        if ((unsigned long)pdu->specific_type > UINT32_MAX) return -1;
        out->sub[out->len++] = (uint32_t)pdu->specific_type;
        return 0;
    }
    for (const netsnmp_variable_list *vb = pdu->variables; vb; vb = vb->next_variable)
        if (netsnmp_oid_equals(vb->name, vb->name_length, SNMP_TRAP_OID0,
                               OID_LENGTH(SNMP_TRAP_OID0)) == 0) {
            if (vb->type != ASN_OBJECT_ID || !vb->val.objid) return -1;
            return to_ag_oid(vb->val.objid, vb->val_len / sizeof(oid), out);
        }
    return -1;
}

/* "oid = value; ..." of the varbinds that are not sysUpTime.0 or snmpTrapOID.0. */
static void varbinds_text(const netsnmp_pdu *pdu, char *out, size_t len)
{
    size_t n = 0;
    out[0] = '\0';
    for (const netsnmp_variable_list *vb = pdu->variables; vb && n + 1 < len;
         vb = vb->next_variable) {
        if (netsnmp_oid_equals(vb->name, vb->name_length, SNMP_TRAP_OID0,
                               OID_LENGTH(SNMP_TRAP_OID0)) == 0 ||
            netsnmp_oid_equals(vb->name, vb->name_length, SYS_UPTIME0, OID_LENGTH(SYS_UPTIME0)) ==
                0)
            continue;
        char name[512], val[512];
        if (snprint_objid(name, sizeof name, vb->name, vb->name_length) < 0) name[0] = '\0';
        if (snprint_value(val, sizeof val, vb->name, vb->name_length, vb) < 0) val[0] = '\0';
        int w = snprintf(out + n, len - n, "%s%s = %s", n ? "; " : "", name, val);
        if (w < 0) break;
        n += (size_t)w;
        if (n >= len) {
            n = len - 1;
            break;
        }
    }
}

static const ag_trap_map *lookup(const ag_device *dev, const ag_profile *profile,
                                 const ag_profile_set *all, const ag_oid *o)
{
    if (profile) return ag_profile_trap(profile, o);
    if (dev->profile) return NULL;
    /* The profile is chosen by sysObjectID at poll time: any loaded profile that knows the
     * OID (trap OIDs live under the vendor's enterprise). */
    for (size_t i = 0; all && i < all->nprofiles; i++) {
        const ag_trap_map *m = ag_profile_trap(&all->profiles[i], o);
        if (m) return m;
    }
    return NULL;
}

int ag_traps_map(const struct snmp_pdu *pdu, const ag_device *dev, const ag_profile *profile,
                 const ag_profile_set *all, int64_t ts_ms, ag_trap_event *out)
{
    if (!pdu || !dev || !out) return -1;
    if (pdu->command != SNMP_MSG_TRAP && pdu->command != SNMP_MSG_TRAP2 &&
        pdu->command != SNMP_MSG_INFORM)
        return -1;
    ag_oid o;
    if (trap_oid(pdu, &o) != 0) return -1;
    char oid_s[AG_MAX_OID * 11 + 2];
    ag_oid_format(&o, oid_s, sizeof oid_s);
    const ag_trap_map *m = lookup(dev, profile, all, &o);
    memset(&out->e, 0, sizeof out->e);
    out->e.device = dev->id;
    out->e.ts_ms = ts_ms;
    out->e.source = "snmp-trap";
    if (m) {
        out->e.code = m->code;
        out->e.severity = m->severity;
        if (m->text)
            out->e.text = m->text;
        else {
            snprintf(out->text, sizeof out->text, "trap %s", m->code);
            out->e.text = out->text;
        }
        return 0;
    }
    char vbs[CM_MAX_TEXT];
    varbinds_text(pdu, vbs, sizeof vbs);
    snprintf(out->text, sizeof out->text, "unmapped trap %.400s%s%.600s", oid_s,
             vbs[0] ? ": " : "", vbs);
    size_t ol = strlen(oid_s);
    if (ol < sizeof out->code)
        memcpy(out->code, oid_s, ol + 1);
    else
        memcpy(out->code, "unknown_trap", sizeof "unknown_trap");
    out->e.code = out->code;
    out->e.severity = "info";
    out->e.text = out->text;
    return 0;
}

/* ---- SNMPv3: engine ID, users ---- */

static void hex(const u_char *b, size_t n, char *out, size_t len)
{
    size_t k = 0;
    if (len == 0) return;
    for (size_t i = 0; i < n && k + 2 < len; i++, k += 2)
        snprintf(out + k, len - k, "%02x", b[i]);
    out[k < len ? k : len - 1] = '\0';
}

/* Hex (optional 0x) → bytes; 0, or -1 when not 5..32 octets of hex. */
static int unhex(const char *s, u_char *out, size_t *len)
{
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ')) n--;
    if (n % 2 || n / 2 < 5 || n / 2 > MAX_ENGINE) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        char pair[3] = {s[2 * i], s[2 * i + 1], 0};
        char *end;
        v = (unsigned)strtoul(pair, &end, 16);
        if (*end) return -1;
        out[i] = (u_char)v;
    }
    *len = n / 2;
    return 0;
}

/* The engine ID (configured, or kept in state_dir, or made now) and the boot counter, which
 * goes up by one at every start (RFC 3414 §2.2) and is written back. 0, or -1 with err. */
static int setup_engine(ag_traps *t, char *err, size_t errlen)
{
    const ag_config *cfg = t->cfg;
    u_char stored[MAX_ENGINE];
    size_t slen = 0;
    unsigned long boots = 0;
    char path[4096] = "";
    if (cfg->state_dir) {
        snprintf(path, sizeof path, "%s/%s", cfg->state_dir, ENGINE_FILE);
        FILE *fp = fopen(path, "r");
        if (fp) {
            char line[160] = "", idhex[100] = "";
            if (fgets(line, sizeof line, fp) && sscanf(line, "%99s %lu", idhex, &boots) >= 1 &&
                unhex(idhex, stored, &slen) == 0) {
                if (boots > 2147483646UL) boots = 2147483646UL;
            } else {
                cm_warn("traps: %s is not 'engine-id-hex boots': ignored", path);
                slen = 0;
                boots = 0;
            }
            fclose(fp);
        }
    }
    engine *e = &t->local;
    if (cfg->traps_v3_engine_id) {
        if (unhex(cfg->traps_v3_engine_id, e->id, &e->len) != 0) {
            snprintf(err, errlen, "traps: v3_engine_id is not 5-32 octets of hex");
            return -1;
        }
        if (slen != e->len || memcmp(stored, e->id, slen) != 0) boots = 0;
    } else if (slen) {
        memcpy(e->id, stored, slen);
        e->len = slen;
    } else {
        if (!path[0]) {
            snprintf(err, errlen, "traps: SNMPv3 needs state_dir or [traps] v3_engine_id");
            return -1;
        }
        /* RFC 3411 SnmpEngineID: net-snmp's enterprise 8072 with the high bit, format 5
         * (administratively assigned octets), 12 random octets. */
        static const u_char head[] = {0x80, 0x00, 0x1f, 0x88, 0x05};
        memcpy(e->id, head, sizeof head);
        if (getrandom(e->id + sizeof head, 12, 0) != 12) {
            snprintf(err, errlen, "traps: no random bytes for the engine ID: %s", strerror(errno));
            return -1;
        }
        e->len = sizeof head + 12;
        boots = 0;
    }
    boots++;
    if (path[0]) {
        char tmp[4200], idhex[2 * MAX_ENGINE + 1];
        hex(e->id, e->len, idhex, sizeof idhex);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        (void)mkdir(cfg->state_dir, 0700); /* one level; an error shows at fopen */
        FILE *fp = fopen(tmp, "w");
        int ok = fp && fprintf(fp, "%s %lu\n", idhex, boots) > 0;
        if (fp && fflush(fp) != 0) ok = 0;
        if (fp && fsync(fileno(fp)) != 0) ok = 0;
        if (fp && fclose(fp) != 0) ok = 0;
        if (ok && rename(tmp, path) != 0) ok = 0;
        if (!ok) {
            unlink(tmp);
            if (!cfg->traps_v3_engine_id) {
                snprintf(err, errlen, "traps: cannot keep the SNMPv3 engine ID in %s: %s", path,
                         strerror(errno));
                return -1;
            }
            cm_warn("traps: cannot write %s (%s): the engine boot counter restarts at 1", path,
                    strerror(errno));
        }
    }
    char b[24];
    snprintf(b, sizeof b, "%lu", boots - 1); /* engineBoots_conf sets it to this + 1 */
    engineBoots_conf("engineBoots", b);
    if (set_exact_engineID(e->id, e->len) != SNMPERR_SUCCESS) {
        snprintf(err, errlen, "traps: net-snmp refused the engine ID");
        return -1;
    }
    set_enginetime(e->id, (u_int)e->len, (u_int)snmpv3_local_snmpEngineBoots(),
                   (u_int)snmpv3_local_snmpEngineTime(), TRUE);
    return 0;
}

/* The protocols and master keys (Ku) of [traps] v3_*; passwords only go to generate_Ku. */
static int setup_keys(ag_traps *t, char *err, size_t errlen)
{
    const ag_config *c = t->cfg;
    t->v3_level = c->traps_v3_level == 2   ? SNMP_SEC_LEVEL_AUTHPRIV
                  : c->traps_v3_level == 1 ? SNMP_SEC_LEVEL_AUTHNOPRIV
                                           : SNMP_SEC_LEVEL_NOAUTH;
    if (!c->traps_v3_auth_password) return 0; /* noAuthNoPriv only */
    const char *ap = c->traps_v3_auth_protocol ? c->traps_v3_auth_protocol : "SHA";
    if (strcasecmp(ap, "SHA") == 0) {
        t->auth_proto = usmHMACSHA1AuthProtocol;
        t->auth_proto_len = OID_LENGTH(usmHMACSHA1AuthProtocol);
    } else if (strcasecmp(ap, "SHA-256") == 0) {
        t->auth_proto = usmHMAC192SHA256AuthProtocol;
        t->auth_proto_len = OID_LENGTH(usmHMAC192SHA256AuthProtocol);
#ifndef NETSNMP_DISABLE_MD5
    } else if (strcasecmp(ap, "MD5") == 0) {
        t->auth_proto = usmHMACMD5AuthProtocol;
        t->auth_proto_len = OID_LENGTH(usmHMACMD5AuthProtocol);
#endif
    } else {
        snprintf(err, errlen, "traps: unsupported v3_auth_protocol '%s'", ap);
        return -1;
    }
    const char *apw = c->traps_v3_auth_password;
    t->auth_ku_len = sizeof t->auth_ku;
    if (generate_Ku(t->auth_proto, (u_int)t->auth_proto_len, (const u_char *)apw, strlen(apw),
                    t->auth_ku, &t->auth_ku_len) != SNMPERR_SUCCESS) {
        snprintf(err, errlen, "traps: cannot derive the SNMPv3 auth key");
        return -1;
    }
    if (!c->traps_v3_priv_password) return 0;
    const char *pp = c->traps_v3_priv_protocol ? c->traps_v3_priv_protocol : "AES";
    if (strcasecmp(pp, "AES") == 0) {
        t->priv_proto = usmAESPrivProtocol;
        t->priv_proto_len = OID_LENGTH(usmAESPrivProtocol);
#ifndef NETSNMP_DISABLE_DES
    } else if (strcasecmp(pp, "DES") == 0) {
        t->priv_proto = usmDESPrivProtocol;
        t->priv_proto_len = OID_LENGTH(usmDESPrivProtocol);
#endif
    } else {
        snprintf(err, errlen, "traps: unsupported v3_priv_protocol '%s'", pp);
        return -1;
    }
    const char *ppw = c->traps_v3_priv_password;
    t->priv_ku_len = sizeof t->priv_ku;
    if (generate_Ku(t->auth_proto, (u_int)t->auth_proto_len, (const u_char *)ppw, strlen(ppw),
                    t->priv_ku, &t->priv_ku_len) != SNMPERR_SUCCESS) {
        snprintf(err, errlen, "traps: cannot derive the SNMPv3 privacy key");
        return -1;
    }
    return 0;
}

/* Create [traps] v3_user for engine e (keys localized to it). 0, or -1. */
static int add_user(ag_traps *t, engine *e)
{
    netsnmp_session s;
    memset(&s, 0, sizeof s);
    s.version = SNMP_VERSION_3;
    s.securityModel = SNMP_SEC_MODEL_USM;
    s.securityName = t->cfg->traps_v3_user;
    s.securityNameLen = strlen(s.securityName);
    s.securityEngineID = e->id;
    s.securityEngineIDLen = e->len;
    s.securityLevel = t->v3_level;
    s.securityAuthProto = (oid *)usmNoAuthProtocol;
    s.securityAuthProtoLen = OID_LENGTH(usmNoAuthProtocol);
    s.securityPrivProto = (oid *)usmNoPrivProtocol;
    s.securityPrivProtoLen = OID_LENGTH(usmNoPrivProtocol);
    if (t->auth_proto) {
        s.securityAuthProto = (oid *)t->auth_proto;
        s.securityAuthProtoLen = t->auth_proto_len;
        memcpy(s.securityAuthKey, t->auth_ku, t->auth_ku_len);
        s.securityAuthKeyLen = t->auth_ku_len;
    }
    if (t->priv_proto) {
        s.securityPrivProto = (oid *)t->priv_proto;
        s.securityPrivProtoLen = t->priv_proto_len;
        memcpy(s.securityPrivKey, t->priv_ku, t->priv_ku_len);
        s.securityPrivKeyLen = t->priv_ku_len;
    }
    e->ours = 0;
    if (usm_get_user(e->id, e->len, s.securityName))
        return 0; /* the poller's user for this device: its keys stay (it owns it) */
    int rc = usm_create_user_from_session(&s);
    memset(s.securityAuthKey, 0, sizeof s.securityAuthKey);
    memset(s.securityPrivKey, 0, sizeof s.securityPrivKey);
    struct usmUser *u = rc == SNMPERR_SUCCESS ? usm_get_user(e->id, e->len, s.securityName) : NULL;
    if (!u) return -1;
    /* The poller replaces the user of a device whose (engine ID, name) it shares: ours are
     * told apart by their storage type, not by a pointer it may have freed. */
    u->userStorageType = ST_VOLATILE;
    e->ours = 1;
    return 0;
}

/* Remove the user we created for engine e, if it is still ours. */
static void drop_user(ag_traps *t, engine *e)
{
    if (!e->ours) return;
    e->ours = 0;
    struct usmUser *u = usm_get_user(e->id, e->len, t->cfg->traps_v3_user);
    if (u && u->userStorageType == ST_VOLATILE) {
        usm_remove_user(u); /* returns the list head, not u */
        usm_free_user(u);
    }
}

/* What the v3 message header says, read before net-snmp parses it. */
typedef struct v3_head {
    int flags; /* msgFlags: 1 auth, 2 priv, 4 reportable */
    long model;
    u_char engine[MAX_ENGINE];
    size_t engine_len;
    char user[33];
} v3_head;

/* Read msgGlobalData and the USM security parameters. 0, or -1 when malformed.
 * (asn_parse_sequence leaves the length of the sequence's contents in its length argument,
 * so the bytes left are counted from the end of the datagram.) */
static int peek_v3(u_char *data, size_t len, v3_head *h)
{
    u_char *end = data + len, type;
    size_t left = len;
    long v;
    memset(h, 0, sizeof *h);
    u_char *p = asn_parse_sequence(data, &left, &type, ASN_SEQUENCE | ASN_CONSTRUCTOR, "msg");
    if (!p || (left = (size_t)(end - p), !(p = asn_parse_int(p, &left, &type, &v, sizeof v))))
        return -1;
    left = (size_t)(end - p);
    if (!(p = asn_parse_sequence(p, &left, &type, ASN_SEQUENCE | ASN_CONSTRUCTOR, "global")))
        return -1;
    left = (size_t)(end - p);
    if (!(p = asn_parse_int(p, &left, &type, &v, sizeof v)) || /* msgID */
        !(p = asn_parse_int(p, &left, &type, &v, sizeof v)))   /* msgMaxSize */
        return -1;
    u_char flags[4];
    size_t fl = sizeof flags;
    if (!(p = asn_parse_string(p, &left, &type, flags, &fl)) || fl != 1) return -1;
    h->flags = flags[0];
    if (!(p = asn_parse_int(p, &left, &type, &h->model, sizeof h->model))) return -1;
    if (h->model != SNMP_SEC_MODEL_USM) return 0;
    u_char sp[512];
    size_t spl = sizeof sp;
    if (!(p = asn_parse_string(p, &left, &type, sp, &spl))) return -1;
    size_t sl = spl;
    u_char *q = asn_parse_sequence(sp, &sl, &type, ASN_SEQUENCE | ASN_CONSTRUCTOR, "usm");
    if (!q) return -1;
    sl = (size_t)(sp + spl - q);
    h->engine_len = sizeof h->engine;
    if (!(q = asn_parse_string(q, &sl, &type, h->engine, &h->engine_len))) return -1;
    if (!(q = asn_parse_int(q, &sl, &type, &v, sizeof v)) ||
        !(q = asn_parse_int(q, &sl, &type, &v, sizeof v)))
        return -1;
    size_t ul = sizeof h->user - 1;
    if (!(q = asn_parse_string(q, &sl, &type, (u_char *)h->user, &ul))) return -1;
    h->user[ul] = '\0';
    for (size_t i = 0; i < ul; i++) /* it goes into log lines */
        if ((unsigned char)h->user[i] < 0x20 || (unsigned char)h->user[i] > 0x7e) h->user[i] = '?';
    return 0;
}

/* A v3 trap (not an inform: its sender is the authoritative engine) from a configured device,
 * for our user, with an engine ID we have no user for yet: create the user for that engine
 * ID, so net-snmp can authenticate it (the password still has to match). The new user is
 * provisional: commit_engine keeps it once the trap authenticated, else it is dropped. NULL =
 * nothing created. */
static engine *learn_engine(ag_traps *t, const v3_head *h)
{
    if ((h->flags & 4) || h->model != SNMP_SEC_MODEL_USM || h->engine_len < 5 ||
        strcmp(h->user, t->cfg->traps_v3_user) != 0)
        return NULL;
    if (h->engine_len == t->local.len && memcmp(h->engine, t->local.id, h->engine_len) == 0)
        return NULL;
    if (usm_get_user((u_char *)h->engine, h->engine_len, (char *)h->user)) return NULL;
    if (t->nlearnt >= AG_TRAPS_MAX_ENGINES) {
        cm_log_limited("trap-v3-engines", 60, CM_LOG_WARN,
                       "traps: v3 trap from %s (device %s) with a new engine ID ignored: "
                       "already %d engine IDs learnt",
                       t->from, t->cur->dev->id, AG_TRAPS_MAX_ENGINES);
        return NULL;
    }
    engine *e = &t->learnt[t->nlearnt];
    memcpy(e->id, h->engine, h->engine_len);
    e->len = h->engine_len;
    if (add_user(t, e) != 0 || !e->ours) {
        drop_user(t, e);
        cm_log_limited("trap-v3-engines", 60, CM_LOG_WARN,
                       "traps: cannot create the SNMPv3 user for a new engine ID");
        return NULL;
    }
    return e;
}

/* After parsing with a provisional user: keep it (ok) or drop it again. */
static void commit_engine(ag_traps *t, engine *e, int ok)
{
    if (!ok) {
        drop_user(t, e);
        return;
    }
    char idhex[2 * MAX_ENGINE + 1];
    hex(e->id, e->len, idhex, sizeof idhex);
    t->nlearnt++;
    t->st.v3_engines_learnt++;
    cm_info("traps: device %s (%s) sends v3 traps as engine ID %s", t->cur->dev->id, t->from,
            idhex);
}

/* ---- receiving ---- */

/* net-snmp hook before parsing: only configured devices' addresses get further. */
static int pre_parse(netsnmp_session *sess, netsnmp_transport *tr, void *tdata, int tlen)
{
    ag_traps *t = sess->callback_magic;
    (void)tr;
    t->st.datagrams++;
    t->cur = NULL;
    t->cur_ok = 0;
    const struct sockaddr *sa = tdata;
    if (sa && !((sa->sa_family == AF_INET && tlen >= (int)sizeof(struct sockaddr_in)) ||
                (sa->sa_family == AF_INET6 && tlen >= (int)sizeof(struct sockaddr_in6))))
        sa = NULL;
    sender_text(sa, t->from, sizeof t->from);
    const peer *p = find_peer(t, sa);
    if (!p) {
        t->st.unknown_sender++;
        cm_log_limited("trap-unknown-sender", 60, CM_LOG_WARN,
                       "traps: datagram from %s ignored: not a configured device's address",
                       t->from[0] ? t->from : "?");
        return 0;
    }
    t->cur = p;
    return 1;
}

/* Count and log why net-snmp refused a message (rc from snmp_parse). */
static void refused(ag_traps *t, int rc, long ver, const v3_head *h)
{
    const char *dev = t->cur->dev->id;
    const char *user = h && h->user[0] ? h->user : "(none)";
    switch (ver == SNMP_VERSION_3 ? rc : 0) {
    case SNMPERR_USM_UNKNOWNENGINEID:
        if (h && !h->user[0] && !(h->flags & 3)) {
            t->st.v3_probes++;
            cm_log(CM_LOG_DEBUG, "traps: engine-ID discovery from %s (device %s) answered",
                   t->from, dev);
            return;
        }
        t->st.v3_unknown_engine++;
        cm_log_limited("trap-v3-engine", 60, CM_LOG_WARN,
                       "traps: v3 message from %s (device %s, user %s) for an unknown engine ID: "
                       "refused (the sender must use this receiver's engine ID for informs)",
                       t->from, dev, user);
        return;
    case SNMPERR_USM_UNKNOWNSECURITYNAME:
        t->st.v3_unknown_user++;
        cm_log_limited("trap-v3-user", 60, CM_LOG_WARN,
                       "traps: v3 message from %s (device %s): unknown user %s: refused", t->from,
                       dev, user);
        return;
    case SNMPERR_USM_AUTHENTICATIONFAILURE:
        t->st.v3_wrong_digest++;
        cm_log_limited("trap-v3-auth", 60, CM_LOG_WARN,
                       "traps: v3 message from %s (device %s, user %s): authentication failed "
                       "(wrong auth password?): refused",
                       t->from, dev, user);
        return;
    case SNMPERR_USM_DECRYPTIONERROR:
        t->st.v3_decrypt_error++;
        cm_log_limited("trap-v3-priv", 60, CM_LOG_WARN,
                       "traps: v3 message from %s (device %s, user %s): cannot decrypt (wrong "
                       "privacy password or protocol?): refused",
                       t->from, dev, user);
        return;
    case SNMPERR_USM_NOTINTIMEWINDOW:
        t->st.v3_not_in_time++;
        cm_log(CM_LOG_DEBUG, "traps: v3 message from %s (device %s) not in the time window",
               t->from, dev);
        return;
    case SNMPERR_USM_UNSUPPORTEDSECURITYLEVEL:
        t->st.v3_bad_level++;
        cm_log_limited("trap-v3-level", 60, CM_LOG_WARN,
                       "traps: v3 message from %s (device %s, user %s): security level not "
                       "supported for the user: refused",
                       t->from, dev, user);
        return;
    default:
        break;
    }
    if (ver == SNMP_VERSION_3 && h && (h->flags & 2)) {
        /* authenticated, but the plaintext does not parse: the privacy key is wrong */
        t->st.v3_decrypt_error++;
        cm_log_limited("trap-v3-priv", 60, CM_LOG_WARN,
                       "traps: v3 message from %s (device %s, user %s): decrypted PDU does not "
                       "parse (wrong privacy password or protocol?): refused",
                       t->from, dev, user);
        return;
    }
    t->st.malformed++;
    cm_log_limited("trap-malformed", 60, CM_LOG_WARN,
                   "traps: malformed SNMP message from %s (device %s): %s", t->from, dev,
                   snmp_api_errstring(rc));
}

/* net-snmp hook in place of its parser: classify, learn a v3 trap engine, then parse. */
static int parse_hook(netsnmp_session *sess, netsnmp_pdu *pdu, u_char *data, size_t len)
{
    ag_traps *t = sess->callback_magic;
    t->cur_ok = 0;
    if (!t->cur) return SNMPERR_GENERR;
    long ver = peek_version(data, len);
    if (ver < 0) {
        t->st.malformed++;
        cm_log_limited("trap-malformed", 60, CM_LOG_WARN,
                       "traps: malformed datagram (%zu bytes) from %s (device %s)", len, t->from,
                       t->cur->dev->id);
        return SNMPERR_ASN_PARSE_ERR;
    }
    if ((ver != SNMP_VERSION_1 && ver != SNMP_VERSION_2c && ver != SNMP_VERSION_3) ||
        (ver == SNMP_VERSION_3 && !t->v3)) {
        t->st.unsupported++;
        cm_log_limited("trap-unsupported", 60, CM_LOG_WARN,
                       "traps: SNMP version field %ld from %s (device %s) ignored: %s", ver,
                       t->from, t->cur->dev->id,
                       ver == SNMP_VERSION_3 ? "SNMPv3 needs [traps] v3_user"
                                             : "only v1, v2c and v3 are accepted");
        return SNMPERR_BAD_VERSION;
    }
    v3_head h;
    engine *fresh = NULL;
    int had_record = 1;
    if (ver == SNMP_VERSION_3) {
        if (peek_v3(data, len, &h) != 0) {
            t->st.malformed++;
            cm_log_limited("trap-malformed", 60, CM_LOG_WARN,
                           "traps: malformed SNMPv3 header (%zu bytes) from %s (device %s)", len,
                           t->from, t->cur->dev->id);
            return SNMPERR_ASN_PARSE_ERR;
        }
        had_record = h.engine_len == 0 || search_enginetime_list(h.engine, (u_int)h.engine_len);
        fresh = learn_engine(t, &h);
    }
    int rc = snmp_parse(t->sp, sess, pdu, data, len);
    if (fresh) commit_engine(t, fresh, rc == SNMPERR_SUCCESS);
    if (rc == SNMPERR_SUCCESS) {
        t->cur_ok = 1;
        return rc;
    }
    /* net-snmp keeps a time record for every engine ID a trap names: forget those of refused
     * messages, so forged engine IDs cost nothing lasting */
    if (!had_record) free_enginetime(h.engine, h.engine_len);
    refused(t, rc, ver, ver == SNMP_VERSION_3 ? &h : NULL);
    return rc ? rc : SNMPERR_GENERR;
}

/* Who may send this PDU: v1/v2c by community, v3 by user and level. 0 = accepted. */
static int authorised(ag_traps *t, const netsnmp_pdu *pdu)
{
    const char *dev = t->cur->dev->id;
    if (pdu->version == SNMP_VERSION_3) {
        if (pdu->securityModel != SNMP_SEC_MODEL_USM || !pdu->securityName ||
            strcmp(pdu->securityName, t->cfg->traps_v3_user) != 0) {
            t->st.v3_unknown_user++;
            cm_log_limited("trap-v3-user", 60, CM_LOG_WARN,
                           "traps: v3 message from %s (device %s): not [traps] v3_user: refused",
                           t->from, dev);
            return -1;
        }
        if (pdu->securityLevel < t->v3_level) {
            t->st.v3_bad_level++;
            cm_log_limited("trap-v3-level", 60, CM_LOG_WARN,
                           "traps: v3 message from %s (device %s) below [traps] v3_level: "
                           "refused",
                           t->from, dev);
            return -1;
        }
        return 0;
    }
    const char *want = t->cfg->traps_community ? t->cfg->traps_community : "public";
    size_t wl = strlen(want);
    if (!pdu->community || pdu->community_len != wl || memcmp(pdu->community, want, wl) != 0) {
        t->st.bad_community++;
        cm_log_limited("trap-community", 60, CM_LOG_WARN,
                       "traps: trap from %s (device %s) ignored: wrong community", t->from, dev);
        return -1;
    }
    return 0;
}

/* Answer an inform with a Response carrying its varbinds (RFC 3416 §4.2.7). */
static void acknowledge(ag_traps *t, netsnmp_pdu *pdu)
{
    netsnmp_pdu *reply = snmp_clone_pdu(pdu);
    if (!reply) return;
    reply->command = SNMP_MSG_RESPONSE;
    reply->errstat = 0;
    reply->errindex = 0;
    if (snmp_sess_send(t->sp, reply) == 0) {
        int e1 = 0, e2 = 0;
        char *msg = NULL;
        snmp_sess_error(t->sp, &e1, &e2, &msg);
        cm_log_limited("trap-ack", 60, CM_LOG_WARN,
                       "traps: cannot answer the inform from %s (device %s): %s", t->from,
                       t->cur->dev->id, msg ? msg : "?");
        free(msg);
        snmp_free_pdu(reply);
        return;
    }
    t->st.informs_acked++;
}

static int on_pdu(int op, netsnmp_session *sess, int reqid, netsnmp_pdu *pdu, void *magic)
{
    ag_traps *t = magic;
    (void)sess;
    (void)reqid;
    /* net-snmp also calls here for a v3 authentication failure (not authenticated: cur_ok 0) */
    if (op != NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE || !t->cur || !t->cur_ok || !pdu) return 1;
    t->cur_ok = 0;
    if (authorised(t, pdu) != 0) return 1;
    if (pdu->command != SNMP_MSG_TRAP && pdu->command != SNMP_MSG_TRAP2 &&
        pdu->command != SNMP_MSG_INFORM) {
        t->st.unsupported++;
        cm_log_limited("trap-unsupported", 60, CM_LOG_WARN,
                       "traps: PDU type 0x%x from %s (device %s) ignored: only traps and "
                       "informs are accepted",
                       (unsigned)pdu->command, t->from, t->cur->dev->id);
        return 1;
    }
    ag_trap_event ev;
    if (ag_traps_map(pdu, t->cur->dev, t->cur->profile, t->profiles, cm_now_ms(), &ev) != 0) {
        t->st.malformed++;
        cm_log_limited("trap-malformed", 60, CM_LOG_WARN,
                       "traps: trap from %s (device %s) without a usable trap OID", t->from,
                       t->cur->dev->id);
        return 1;
    }
    t->st.events++;
    cm_log(CM_LOG_DEBUG, "traps: %s from device %s", ev.e.code, t->cur->dev->id);
    t->cb(t->ud, &ev.e);
    if (pdu->command == SNMP_MSG_INFORM) acknowledge(t, pdu);
    return 1;
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    ag_traps *t = h->data;
    if (status < 0) {
        cm_log_limited("trap-recv", 60, CM_LOG_WARN, "traps: poll error: %s", uv_strerror(status));
        return;
    }
    if (!(events & UV_READABLE)) return;
    for (int i = 0; i < 64; i++) { /* a burst, then give the loop back */
        char b;
        ssize_t r = recv(t->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r < 0) return; /* nothing more (or an error net-snmp would hit too) */
        if (r == 0) {      /* an empty datagram: net-snmp would take it for nothing */
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            (void)recvfrom(t->fd, &b, 1, MSG_DONTWAIT, (struct sockaddr *)&ss, &sl);
            t->st.datagrams++;
            char from[64];
            sender_text((struct sockaddr *)&ss, from, sizeof from);
            if (!find_peer(t, (struct sockaddr *)&ss)) {
                t->st.unknown_sender++;
                continue;
            }
            t->st.malformed++;
            cm_log_limited("trap-malformed", 60, CM_LOG_WARN,
                           "traps: empty datagram from %s", from);
            continue;
        }
        netsnmp_large_fd_set fds;
        netsnmp_large_fd_set_init(&fds, t->fd + 1);
        netsnmp_large_fd_setfd(t->fd, &fds);
        snmp_sess_read2(t->sp, &fds);
        netsnmp_large_fd_set_cleanup(&fds);
        t->cur = NULL;
        t->cur_ok = 0;
    }
}

static int add_peers(ag_traps *t, char *err, size_t errlen)
{
    const ag_config *cfg = t->cfg;
    t->peers = calloc(cfg->ndevices ? cfg->ndevices : 1, sizeof *t->peers);
    if (!t->peers) {
        snprintf(err, errlen, "traps: out of memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->ndevices; i++) {
        const ag_device *d = &cfg->devices[i];
        if (!d->address) continue;
        peer *p = &t->peers[t->npeers];
        struct sockaddr_in s4;
        struct sockaddr_in6 s6;
        if (uv_ip4_addr(d->address, 0, &s4) == 0) {
            p->family = AF_INET;
            memcpy(p->addr, &s4.sin_addr, 4);
        } else if (uv_ip6_addr(d->address, 0, &s6) == 0) {
            if (sender_key((const struct sockaddr *)&s6, &p->family, p->addr) != 0) continue;
        } else {
            cm_log(CM_LOG_DEBUG,
                   "traps: device %s: address %s is not an IP literal; its traps "
                   "are not accepted",
                   d->id, d->address);
            continue;
        }
        /* The first SNMP device at an address owns it; a non-SNMP one only when no SNMP one. */
        int dup = 0;
        for (size_t k = 0; k < t->npeers; k++)
            if (t->peers[k].family == p->family &&
                memcmp(t->peers[k].addr, p->addr, p->family == AF_INET ? 4 : 16) == 0) {
                dup = 1;
                if (strcmp(t->peers[k].dev->protocol, "snmp") != 0 &&
                    strcmp(d->protocol, "snmp") == 0) {
                    t->peers[k].dev = d;
                    t->peers[k].profile =
                        d->profile ? ag_profile_find(t->profiles, d->profile) : NULL;
                }
                break;
            }
        if (dup) continue;
        p->dev = d;
        p->profile = d->profile && t->profiles ? ag_profile_find(t->profiles, d->profile) : NULL;
        t->npeers++;
    }
    return 0;
}

static void free_traps(ag_traps *t)
{
    if (t->sp) snmp_sess_close(t->sp);
    for (size_t i = 0; i < t->nlearnt; i++) drop_user(t, &t->learnt[i]);
    drop_user(t, &t->local);
    memset(t->auth_ku, 0, sizeof t->auth_ku);
    memset(t->priv_ku, 0, sizeof t->priv_ku);
    free(t->peers);
    free(t);
}

/* The net-snmp session on a UDP transport bound to the listen address. 0, or -1 with err. */
static int open_session(ag_traps *t, char *err, size_t errlen)
{
    const ag_config *cfg = t->cfg;
    struct netsnmp_ep ep;
    memset(&ep, 0, sizeof ep);
    netsnmp_transport *tr = NULL;
    if (uv_ip4_addr(cfg->traps_host, cfg->traps_port, &ep.a.sin) == 0)
        tr = netsnmp_udp_transport(&ep, 1);
    else if (uv_ip6_addr(cfg->traps_host, cfg->traps_port, &ep.a.sin6) == 0)
        tr = netsnmp_udp6_transport(&ep, 1);
    else {
        snprintf(err, errlen, "%s: [traps] listen: '%s' is not an IPv4 or IPv6 address",
                 cfg->path ? cfg->path : "config", cfg->traps_host);
        return -1;
    }
    if (!tr) {
        snprintf(err, errlen, "traps: cannot listen on %s port %d: %s", cfg->traps_host,
                 cfg->traps_port, strerror(errno));
        return -1;
    }
    netsnmp_session s;
    snmp_sess_init(&s);
    s.version = SNMP_DEFAULT_VERSION;
    s.callback = on_pdu;
    s.callback_magic = t;
    s.isAuthoritative = SNMP_SESS_UNKNOWNAUTH; /* authoritative for informs only */
    s.flags |= SNMP_FLAGS_DONT_PROBE;
    int fd = tr->sock;
    t->sp = snmp_sess_add_ex(&s, tr, pre_parse, parse_hook, NULL, NULL, NULL, NULL, NULL);
    if (!t->sp) { /* the transport is closed with it */
        snprintf(err, errlen, "traps: cannot set up the SNMP session");
        return -1;
    }
    t->fd = fd;
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
        t->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

int ag_traps_open(ag_traps **out, uv_loop_t *loop, const ag_config *cfg,
                  const ag_profile_set *profiles, ag_trap_event_cb cb, void *ud, char *err,
                  size_t errlen)
{
    *out = NULL;
    if (!cfg->traps_host || cfg->traps_port < 0 || cfg->traps_port > 65535 || !cb) {
        snprintf(err, errlen, "traps: no listen address");
        return -1;
    }
    ag_snmp_lib_init();
    ag_traps *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "traps: out of memory");
        return -1;
    }
    t->cfg = cfg;
    t->profiles = profiles;
    t->cb = cb;
    t->ud = ud;
    t->fd = -1;
    if (add_peers(t, err, errlen) != 0) {
        free_traps(t);
        return -1;
    }
    if (cfg->traps_v3_user) {
        t->v3 = 1;
        if (setup_keys(t, err, errlen) != 0 || setup_engine(t, err, errlen) != 0) {
            free_traps(t);
            return -1;
        }
        if (add_user(t, &t->local) != 0) {
            snprintf(err, errlen, "traps: cannot create the SNMPv3 user");
            free_traps(t);
            return -1;
        }
    }
    if (open_session(t, err, errlen) != 0) {
        free_traps(t);
        return -1;
    }
    int r = uv_poll_init_socket(loop, &t->poll, t->fd);
    if (r != 0) {
        snprintf(err, errlen, "traps: %s", uv_strerror(r));
        free_traps(t);
        return -1;
    }
    t->poll.data = t;
    if ((r = uv_poll_start(&t->poll, UV_READABLE, on_readable)) != 0) {
        snprintf(err, errlen, "traps: cannot poll the socket: %s", uv_strerror(r));
        ag_traps_close(t);
        return -1;
    }
    if (t->v3) {
        char idhex[2 * MAX_ENGINE + 1];
        hex(t->local.id, t->local.len, idhex, sizeof idhex);
        cm_info("traps: SNMPv3 engine ID %s (boots %lu), user %s", idhex,
                (unsigned long)snmpv3_local_snmpEngineBoots(), cfg->traps_v3_user);
    }
    if (t->npeers < cfg->ndevices)
        cm_log(CM_LOG_DEBUG, "traps: %zu of %zu devices have an IP literal address", t->npeers,
               cfg->ndevices);
    *out = t;
    return 0;
}

int ag_traps_port(const ag_traps *t)
{
    return t->port;
}

size_t ag_traps_engine_id(const ag_traps *t, char *buf, size_t len)
{
    if (len == 0) return 0;
    buf[0] = '\0';
    if (!t->v3) return 0;
    hex(t->local.id, t->local.len, buf, len);
    return strlen(buf);
}

void ag_traps_stats_get(const ag_traps *t, ag_traps_stats *out)
{
    *out = t->st;
}

static void on_closed(uv_handle_t *h)
{
    free_traps(h->data);
}

void ag_traps_close(ag_traps *t)
{
    if (!t) return;
    uv_poll_stop(&t->poll);
    uv_close((uv_handle_t *)&t->poll, on_closed);
}

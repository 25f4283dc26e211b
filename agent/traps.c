/* traps.c — the SNMP trap receiver (v1, v2c) on a uv_udp socket; see traps.h. */
#include "traps.h"

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "snmplib.h"
#include "timeutil.h"

#define MAX_DATAGRAM 65536
#define MAX_PEERS_TEXT 64

/* A device's address, parsed once. */
typedef struct peer {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    const ag_device *dev;
    const ag_profile *profile; /* the device's named profile, NULL = none named */
} peer;

struct ag_traps {
    uv_udp_t udp;
    const ag_config *cfg;
    const ag_profile_set *profiles;
    ag_trap_event_cb cb;
    void *ud;
    peer *peers;
    size_t npeers;
    int port;
    int receiving;
    ag_traps_stats st;
    unsigned char buf[MAX_DATAGRAM];
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

static const ag_trap_map *lookup(const ag_traps *t, const peer *p, const ag_oid *o)
{
    if (p->profile) return ag_profile_trap(p->profile, o);
    if (p->dev->profile) return NULL;
    /* The profile is chosen by sysObjectID at poll time: any loaded profile that knows the
     * OID (trap OIDs live under the vendor's enterprise). */
    for (size_t i = 0; t->profiles && i < t->profiles->nprofiles; i++) {
        const ag_trap_map *m = ag_profile_trap(&t->profiles->profiles[i], o);
        if (m) return m;
    }
    return NULL;
}

static void handle_pdu(ag_traps *t, const peer *p, netsnmp_pdu *pdu, const char *from)
{
    if (pdu->command != SNMP_MSG_TRAP && pdu->command != SNMP_MSG_TRAP2) {
        t->st.unsupported++;
        cm_log_limited("trap-unsupported", 60, CM_LOG_WARN,
                       "traps: PDU type 0x%x from %s (device %s) ignored: only traps are "
                       "accepted (no informs)",
                       (unsigned)pdu->command, from, p->dev->id);
        return;
    }
    ag_oid o;
    if (trap_oid(pdu, &o) != 0) {
        t->st.malformed++;
        cm_log_limited("trap-malformed", 60, CM_LOG_WARN,
                       "traps: trap from %s (device %s) without a usable trap OID", from,
                       p->dev->id);
        return;
    }
    char oid_s[AG_MAX_OID * 11 + 2];
    ag_oid_format(&o, oid_s, sizeof oid_s);
    const ag_trap_map *m = lookup(t, p, &o);
    char text[CM_MAX_TEXT];
    cm_event e = {.device = p->dev->id, .ts_ms = cm_now_ms(), .source = "snmp-trap"};
    if (m) {
        e.code = m->code;
        e.severity = m->severity;
        if (m->text)
            e.text = m->text;
        else {
            snprintf(text, sizeof text, "trap %s", m->code);
            e.text = text;
        }
    } else {
        char vbs[CM_MAX_TEXT];
        varbinds_text(pdu, vbs, sizeof vbs);
        snprintf(text, sizeof text, "unmapped trap %.400s%s%.600s", oid_s, vbs[0] ? ": " : "", vbs);
        e.code = strlen(oid_s) < CM_MAX_NAME ? oid_s : "unknown_trap";
        e.severity = "info";
        e.text = text;
    }
    t->st.events++;
    cm_log(CM_LOG_DEBUG, "traps: %s from device %s: %s", oid_s, p->dev->id, e.code);
    t->cb(t->ud, &e);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    ag_traps *t = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)t->buf, sizeof t->buf);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *sa,
                    unsigned flags)
{
    ag_traps *t = h->data;
    (void)buf;
    if (nread < 0) {
        cm_log_limited("trap-recv", 60, CM_LOG_WARN, "traps: receive error: %s",
                       uv_strerror((int)nread));
        return;
    }
    if (!sa) return; /* nothing more to read */
    t->st.datagrams++;
    char from[64];
    sender_text(sa, from, sizeof from);
    const peer *p = find_peer(t, sa);
    if (!p) {
        t->st.unknown_sender++;
        cm_log_limited("trap-unknown-sender", 60, CM_LOG_WARN,
                       "traps: datagram from %s ignored: not a configured device's address", from);
        return;
    }
    size_t len = (size_t)nread;
    long ver = (flags & UV_UDP_PARTIAL) || len == 0 ? -1 : peek_version(t->buf, len);
    if (ver < 0) {
        t->st.malformed++;
        cm_log_limited("trap-malformed", 60, CM_LOG_WARN,
                       "traps: malformed datagram (%zu bytes) from %s (device %s)", len, from,
                       p->dev->id);
        return;
    }
    if (ver != SNMP_VERSION_1 && ver != SNMP_VERSION_2c) {
        t->st.unsupported++;
        cm_log_limited("trap-unsupported", 60, CM_LOG_WARN,
                       "traps: SNMP version field %ld from %s (device %s) ignored: only v1 and "
                       "v2c traps are accepted",
                       ver, from, p->dev->id);
        return;
    }
    netsnmp_session sess;
    snmp_sess_init(&sess);
    netsnmp_pdu *pdu = calloc(1, sizeof *pdu);
    if (!pdu) return;
    if (snmp_parse(NULL, &sess, pdu, t->buf, len) != SNMPERR_SUCCESS) {
        t->st.malformed++;
        cm_log_limited("trap-malformed", 60, CM_LOG_WARN,
                       "traps: malformed SNMP message (%zu bytes) from %s (device %s)", len, from,
                       p->dev->id);
        snmp_free_pdu(pdu);
        return;
    }
    const char *want = t->cfg->traps_community ? t->cfg->traps_community : "public";
    size_t wl = strlen(want);
    if (!pdu->community || pdu->community_len != wl || memcmp(pdu->community, want, wl) != 0) {
        t->st.bad_community++;
        cm_log_limited("trap-community", 60, CM_LOG_WARN,
                       "traps: trap from %s (device %s) ignored: wrong community", from,
                       p->dev->id);
    } else {
        handle_pdu(t, p, pdu, from);
    }
    snmp_free_pdu(pdu);
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

int ag_traps_open(ag_traps **out, uv_loop_t *loop, const ag_config *cfg,
                  const ag_profile_set *profiles, ag_trap_event_cb cb, void *ud, char *err,
                  size_t errlen)
{
    *out = NULL;
    if (!cfg->traps_host || cfg->traps_port < 0 || cfg->traps_port > 65535 || !cb) {
        snprintf(err, errlen, "traps: no listen address");
        return -1;
    }
    struct sockaddr_storage ss;
    if (uv_ip4_addr(cfg->traps_host, cfg->traps_port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(cfg->traps_host, cfg->traps_port, (struct sockaddr_in6 *)&ss) != 0) {
        snprintf(err, errlen, "%s: [traps] listen: '%s' is not an IPv4 or IPv6 address",
                 cfg->path ? cfg->path : "config", cfg->traps_host);
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
    if (add_peers(t, err, errlen) != 0) {
        free(t->peers);
        free(t);
        return -1;
    }
    int r = uv_udp_init(loop, &t->udp);
    if (r != 0) {
        snprintf(err, errlen, "traps: %s", uv_strerror(r));
        free(t->peers);
        free(t);
        return -1;
    }
    t->udp.data = t;
    if ((r = uv_udp_bind(&t->udp, (const struct sockaddr *)&ss, 0)) != 0 ||
        (r = uv_udp_recv_start(&t->udp, on_alloc, on_recv)) != 0) {
        snprintf(err, errlen, "traps: cannot listen on %s port %d: %s", cfg->traps_host,
                 cfg->traps_port, uv_strerror(r));
        ag_traps_close(t);
        return -1;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    if (uv_udp_getsockname(&t->udp, (struct sockaddr *)&bound, &blen) == 0)
        t->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
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

void ag_traps_stats_get(const ag_traps *t, ag_traps_stats *out)
{
    *out = t->st;
}

static void on_closed(uv_handle_t *h)
{
    ag_traps *t = h->data;
    free(t->peers);
    free(t);
}

void ag_traps_close(ag_traps *t)
{
    if (!t) return;
    uv_udp_recv_stop(&t->udp);
    uv_close((uv_handle_t *)&t->udp, on_closed);
}

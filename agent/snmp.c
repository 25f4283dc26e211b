/* snmp.c — the SNMP v1/v2c/v3 driver: net-snmp's single-session API on the agent's libuv loop.
 *
 * One state per device holds one net-snmp session (opened at the first poll, after an
 * asynchronous DNS lookup when the address is a name). Its socket is watched with uv_poll;
 * net-snmp's own retransmissions and timeouts are driven by a uv_timer armed from
 * snmp_sess_select_info2_flags(). A poll is a chain of requests, one in flight at a time:
 *   [GET sysObjectID → choose profile] → GET identity + scalars (≤ 32 varbinds per PDU)
 *   → for each table: GETBULK (v2c) / GETNEXT (v1) walks of the wanted columns → done.
 * Every answer is handled in net-snmp's callback; the next request is sent from there.
 * done() is always delivered from a zero-delay timer, never from inside poll().
 *
 * SNMPv3 (USM): net-snmp discovers the engine ID inside snmp_sess_open with a synchronous
 * request (usm_discover_engineid → snmp_sess_synch_response), which would stall the loop for
 * timeout × tries on a dead device. So the session is opened with SNMP_FLAGS_DONT_PROBE and
 * the discovery is an ordinary asynchronous request: the first poll sends the RFC 3414 probe
 * (an empty noAuthNoPriv GET with an empty user); the agent's usmStatsUnknownEngineIDs report
 * carries its engine ID, which goes into the session before the USM user is created
 * (usm_create_user_from_session localizes the keys). The engine boots/time are then learnt
 * by net-snmp itself from the notInTimeWindow report to the first authenticated request,
 * which it resends on its own (asynchronously). Report PDUs for unknown user, wrong digest,
 * decryption error and unsupported level end the poll as AG_POLL_AUTH. net-snmp keeps one
 * USM user per (engine ID, user name) in the process: devices sharing both must share the
 * passwords too (the last opened wins). */
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/library/large_fd_set.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "log.h"
#include "snmplib.h"
#include "timeutil.h"

/* Varbinds per GET PDU. Large enough for a whole profile's scalars in one request; a device
 * that answers tooBig gets half as many, and the device keeps that limit for later polls. */
#define MAX_VARBINDS 64
/* Varbinds asked for in one GETBULK (columns x max-repetitions): a table of up to this many
 * values is asked for in one request. Agents cut a GETBULK answer to what fits in their
 * message (RFC 3416 §4.2.3); the walk goes on from where the answer stopped. A device that
 * answers tooBig instead gets half, and keeps that limit. */
#define BULK_VARBINDS 128
#define BULK_FIRST_VARBINDS 48 /* before a table's row count is known */
#define MAP_LOG_EVERY_S 600
#define SYSOBJECTID_OID "1.3.6.1.2.1.1.2.0"

/* v3: the engine ID a session holds until discovery. With none at all, net-snmp runs its own
 * synchronous probe inside the first send ("delayed probe for engineID"), blocking the loop.
 * An ID no device has (RFC 3411 format, enterprise 0, text) gets the answer we want from the
 * agent: a usmStatsUnknownEngineIDs report that names its real engine ID. */
static const u_char placeholder_engine[] = {0x80, 0x00, 0x00, 0x00, 0x04, 'c', 'i', 'n', 'e', '?'};

typedef enum { PH_IDLE, PH_PROBE, PH_SYSOID, PH_GET, PH_WALK, PH_DONE } phase;

enum { INV_VENDOR, INV_MODEL, INV_SERIAL, INV_FIRMWARE, INV_N };
static const char *const inv_fields[INV_N] = {"vendor", "model", "serial", "firmware"};

typedef struct get_item {
    const ag_oid *oid;
    const ag_scalar *scalar; /* NULL: identity field inv */
    int inv;
    int excluded; /* v1: the agent said noSuchName, leave it out of the retry */
} get_item;

typedef struct walk_col {
    uint32_t column;
    oid last[MAX_OID_LEN];
    size_t last_len;
    uint32_t rows;
    int done;
} walk_col;

typedef struct row {
    uint32_t *idx; /* index part of the OID after entry.column */
    size_t idxlen, idx_cap;
    char **labels; /* one per table label column, NULL = not seen */
    size_t nlabels, labels_cap;
    double *vals; /* one per table value column */
    unsigned char *has;
    size_t vals_cap, has_cap;
} row;

typedef struct snmp_state {
    uv_loop_t *loop;
    const ag_device *dev;
    const ag_profile_set *profiles;
    ag_sink sink;
    const ag_profile *fixed; /* the device's configured profile, or NULL */
    const ag_profile *prof;  /* the profile of the poll in progress */

    void *sessp;
    uv_poll_t poll_h;
    uv_timer_t timer_h; /* net-snmp retransmissions and timeouts */
    uv_timer_t done_h;  /* deferred done() */
    uv_getaddrinfo_t gai;
    int poll_inited, gai_pending, busy, closing, refs;
    int reqid;           /* of the request in flight: other answers are stale */
    int v3_engine_known; /* v3: the engine ID was discovered and the USM user created */

    phase ph;
    int64_t ts_ms;
    ag_poll_status status;
    char detail[256];

    get_item *items;
    size_t items_cap; /* kept from poll to poll: no allocation per poll */
    size_t nitems, pos, batch_max, cur_n;
    size_t bulk_max;             /* varbinds per GETBULK (learnt from tooBig answers) */
    const ag_profile *seen_prof; /* the profile seen_rows belongs to */
    uint32_t *seen_rows;         /* rows each table had at the last poll (0 = unknown) */
    size_t cur_idx[MAX_VARBINDS];
    char inv[INV_N][CM_MAX_VALUE];

    size_t table;
    walk_col *cols;
    size_t ncols, cols_cap;
    size_t cur_cols[MAX_VARBINDS];
    size_t ncur;
    int maxrep;
    row *rows; /* rows_cap rows keep their buffers from poll to poll */
    size_t nrows, rows_cap, rows_init, hint;
} snmp_state;


/* ---- small conversions ------------------------------------------------------------ */

static void to_netsnmp(const ag_oid *in, oid *out, size_t *len)
{
    size_t n = in->len < MAX_OID_LEN ? in->len : MAX_OID_LEN;
    for (size_t i = 0; i < n; i++)
        out[i] = in->sub[i];
    *len = n;
}

static void format_netsnmp_oid(const oid *o, size_t len, char *buf, size_t blen)
{
    ag_oid a;
    a.len = len < AG_MAX_OID ? len : AG_MAX_OID;
    for (size_t i = 0; i < a.len; i++)
        a.sub[i] = (uint32_t)o[i];
    ag_oid_format(&a, buf, blen);
}

/* Bytes as label/inventory text: trailing NULs and spaces dropped, printable ASCII and
 * valid UTF-8 kept, anything else becomes '?'. */
static void text_from_bytes(const unsigned char *s, size_t len, char *out, size_t outlen)
{
    while (len > 0 && (s[len - 1] == '\0' || s[len - 1] == ' '))
        len--;
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < outlen;) {
        unsigned char ch = s[i];
        size_t n = ch < 0x80             ? 1
                   : (ch & 0xE0) == 0xC0 ? 2
                   : (ch & 0xF0) == 0xE0 ? 3
                   : (ch & 0xF8) == 0xF0 ? 4
                                         : 0;
        int ok = n > 0 && i + n <= len && (n > 1 || (ch >= 0x20 && ch < 0x7f));
        for (size_t k = 1; ok && k < n; k++)
            ok = (s[i + k] & 0xC0) == 0x80;
        if (ok && n > 1 && ch < 0xC2) ok = 0; /* overlong */
        if (ok) {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        } else {
            out[o++] = '?';
            i++;
        }
    }
    out[o] = '\0';
}

/* Convert a varbind to a raw value. 0 ok; 1 no such object/instance (skip); 2 end of MIB
 * view; -1 a type we cannot use. tmp holds text for OIDs and addresses. */
static int vb_raw(const netsnmp_variable_list *vb, ag_raw *raw, char *tmp, size_t tmplen)
{
    memset(raw, 0, sizeof *raw);
    switch (vb->type) {
    case ASN_INTEGER:
        if (!vb->val.integer) return -1;
        raw->kind = AG_RAW_NUM;
        raw->num = (double)*vb->val.integer;
        return 0;
    case ASN_COUNTER:
    case ASN_GAUGE:
    case ASN_TIMETICKS:
    case ASN_UINTEGER:
        if (!vb->val.integer) return -1;
        raw->kind = AG_RAW_NUM;
        raw->num = (double)(uint32_t)(unsigned long)*vb->val.integer; /* unsigned 32-bit */
        return 0;
    case ASN_COUNTER64:
#ifdef NETSNMP_WITH_OPAQUE_SPECIAL_TYPES
    case ASN_OPAQUE_COUNTER64:
    case ASN_OPAQUE_U64:
#endif
        if (!vb->val.counter64) return -1;
        raw->kind = AG_RAW_NUM;
        raw->num = (double)(((uint64_t)(uint32_t)vb->val.counter64->high << 32) |
                            (uint32_t)vb->val.counter64->low);
        return 0;
#ifdef NETSNMP_WITH_OPAQUE_SPECIAL_TYPES
    case ASN_OPAQUE_I64:
        if (!vb->val.counter64) return -1;
        raw->kind = AG_RAW_NUM;
        raw->num = (double)(int64_t)(((uint64_t)(uint32_t)vb->val.counter64->high << 32) |
                                     (uint32_t)vb->val.counter64->low);
        return 0;
    case ASN_OPAQUE_FLOAT:
        if (!vb->val.floatVal) return -1;
        raw->kind = AG_RAW_NUM;
        raw->num = *vb->val.floatVal;
        return 0;
    case ASN_OPAQUE_DOUBLE:
        if (!vb->val.doubleVal) return -1;
        raw->kind = AG_RAW_NUM;
        raw->num = *vb->val.doubleVal;
        return 0;
#endif
    case ASN_OCTET_STR:
    case ASN_OPAQUE:
    case ASN_BIT_STR:
        raw->kind = AG_RAW_STR;
        raw->str = (const char *)vb->val.string;
        raw->len = vb->val.string ? vb->val_len : 0;
        return 0;
    case ASN_IPADDRESS:
        if (!vb->val.string || vb->val_len != 4) return -1;
        snprintf(tmp, tmplen, "%u.%u.%u.%u", vb->val.string[0], vb->val.string[1],
                 vb->val.string[2], vb->val.string[3]);
        raw->kind = AG_RAW_STR;
        raw->str = tmp;
        raw->len = strlen(tmp);
        return 0;
    case ASN_OBJECT_ID:
        if (!vb->val.objid) return -1;
        format_netsnmp_oid(vb->val.objid, vb->val_len / sizeof(oid), tmp, tmplen);
        raw->kind = AG_RAW_STR;
        raw->str = tmp;
        raw->len = strlen(tmp);
        return 0;
    case ASN_NULL:
        raw->kind = AG_RAW_NULL;
        return 0;
    case SNMP_NOSUCHOBJECT:
    case SNMP_NOSUCHINSTANCE:
        return 1;
    case SNMP_ENDOFMIBVIEW:
        return 2;
    default:
        return -1;
    }
}

/* A raw value as label text ("" when there is none). */
static void raw_text(const ag_raw *raw, char *out, size_t outlen)
{
    out[0] = '\0';
    if (raw->kind == AG_RAW_NUM) {
        if (raw->num == (double)(int64_t)raw->num)
            snprintf(out, outlen, "%lld", (long long)raw->num);
        else
            snprintf(out, outlen, "%.17g", raw->num);
    } else if (raw->kind == AG_RAW_STR) {
        text_from_bytes((const unsigned char *)raw->str, raw->len, out, outlen);
    }
}

/* Map a varbind through m: 0 with *out, 1 no sample (Null, no such object), -1 logged.
 * The log is rate-limited per device and the first keylen sub-identifiers of the OID (a
 * table column, not each row). */
static int map_vb(snmp_state *st, const netsnmp_variable_list *vb, const ag_value_map *m,
                  size_t keylen, double *out)
{
    char tmp[AG_MAX_OID * 11 + 1], why[160], oidtxt[AG_MAX_OID * 11 + 1];
    ag_raw raw;
    int r = vb_raw(vb, &raw, tmp, sizeof tmp);
    if (r == 1 || r == 2) return 1;
    if (r == 0) {
        r = ag_value_map_apply(m, &raw, out, why, sizeof why);
        if (r >= 0) return r;
    } else {
        snprintf(why, sizeof why, "unsupported value type 0x%02x", (unsigned)vb->type);
    }
    format_netsnmp_oid(vb->name, keylen < vb->name_length ? keylen : vb->name_length, oidtxt,
                       sizeof oidtxt);
    char key[CM_MAX_NAME + sizeof oidtxt + 16];
    snprintf(key, sizeof key, "snmp-map %s %s", st->dev->id, oidtxt);
    format_netsnmp_oid(vb->name, vb->name_length, oidtxt, sizeof oidtxt);
    cm_log_limited(key, MAP_LOG_EVERY_S, CM_LOG_WARN, "snmp: device %s: OID %s: %s (no sample)",
                   st->dev->id, oidtxt, why);
    return -1;
}

/* ---- timers, sending, finishing --------------------------------------------------- */

static void on_snmp_timer(uv_timer_t *t);

/* Arm the timer for net-snmp's next retransmission or timeout (or stop it). */
static void schedule_timer(snmp_state *st)
{
    if (!st->sessp || st->closing) return;
    netsnmp_large_fd_set fds;
    netsnmp_large_fd_set_init(&fds, FD_SETSIZE);
    int numfds = 0, block = 1;
    struct timeval tv = {0, 0};
    snmp_sess_select_info2_flags(st->sessp, &numfds, &fds, &tv, &block, NETSNMP_SELECT_NOALARMS);
    netsnmp_large_fd_set_cleanup(&fds);
    if (block) {
        uv_timer_stop(&st->timer_h);
        return;
    }
    uint64_t ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)(tv.tv_usec + 999) / 1000;
    uv_timer_start(&st->timer_h, on_snmp_timer, ms, 0);
}

/* Forget the rows of a table; their buffers stay for the next table or poll. */
static void reset_rows(snmp_state *st)
{
    for (size_t i = 0; i < st->nrows; i++) {
        row *r = &st->rows[i];
        for (size_t k = 0; k < r->nlabels; k++) {
            free(r->labels[k]);
            r->labels[k] = NULL;
        }
        r->nlabels = r->idxlen = 0;
    }
    st->nrows = st->hint = 0;
}

/* End of a poll: nothing of it is kept but the row and item buffers (a poll allocates only
 * what the previous ones did not). */
static void end_poll(snmp_state *st)
{
    reset_rows(st);
    free(st->cols); /* 1 KB a column: not worth keeping for a thousand idle devices */
    st->cols = NULL;
    st->ncols = st->cols_cap = 0;
    st->nitems = 0;
}

static void free_poll(snmp_state *st)
{
    reset_rows(st);
    for (size_t i = 0; i < st->rows_init; i++) {
        row *r = &st->rows[i];
        free(r->labels);
        free(r->idx);
        free(r->vals);
        free(r->has);
    }
    free(st->rows);
    st->rows = NULL;
    st->rows_cap = st->rows_init = 0;
    free(st->cols);
    st->cols = NULL;
    st->ncols = st->cols_cap = 0;
    free(st->items);
    st->items = NULL;
    st->nitems = st->items_cap = 0;
    free(st->seen_rows);
    st->seen_rows = NULL;
    st->seen_prof = NULL;
}

/* Make *p hold at least need elements of size elem (contents kept). 0 or -1. */
static int ensure(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 4;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

static void on_done_timer(uv_timer_t *t)
{
    snmp_state *st = t->data;
    if (st->closing || !st->busy) return;
    end_poll(st);
    st->busy = 0;
    st->ph = PH_IDLE;
    /* The sink may call poll() or close() from here: nothing of st is touched after. */
    st->sink.done(st->sink.ud, st->dev, st->status, st->status == AG_POLL_OK ? NULL : st->detail);
}

static void finish(snmp_state *st, ag_poll_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(snmp_state *st, ag_poll_status status, const char *fmt, ...)
{
    if (st->ph == PH_DONE) return;
    st->ph = PH_DONE;
    st->status = status;
    st->detail[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->detail, sizeof st->detail, fmt, ap);
        va_end(ap);
    }
    uv_timer_start(&st->done_h, on_done_timer, 0, 0);
}

static int on_response(int op, netsnmp_session *sess, int reqid, netsnmp_pdu *pdu, void *magic);

/* Send pdu (ownership taken). 0, or -1 after finishing the poll as refused. */
static int send_pdu(snmp_state *st, netsnmp_pdu *pdu)
{
    if (!pdu) {
        finish(st, AG_POLL_PROTOCOL, "out of memory building a request");
        return -1;
    }
    int reqid = snmp_sess_async_send(st->sessp, pdu, on_response, st);
    if (!reqid) {
        int liberr = 0, syserr = 0;
        char *msg = NULL;
        snmp_sess_error(st->sessp, &liberr, &syserr, &msg);
        snmp_free_pdu(pdu);
        finish(st, AG_POLL_REFUSED, "cannot send to %s:%d: %s", st->dev->address, st->dev->port,
               msg ? msg : "send failed");
        free(msg);
        return -1;
    }
    st->reqid = reqid;
    schedule_timer(st);
    return 0;
}

static void on_snmp_timer(uv_timer_t *t)
{
    snmp_state *st = t->data;
    if (st->closing || !st->sessp) return;
    snmp_sess_timeout(st->sessp);
    schedule_timer(st);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    snmp_state *st = h->data;
    (void)events;
    if (st->closing || !st->sessp) return;
    if (status < 0) {
        cm_log_limited("snmp-poll", 60, CM_LOG_WARN, "snmp: device %s: socket error: %s",
                       st->dev->id, uv_strerror(status));
        return;
    }
    netsnmp_transport *tr = snmp_sess_transport(st->sessp);
    if (!tr) return;
    netsnmp_large_fd_set fds;
    netsnmp_large_fd_set_init(&fds, FD_SETSIZE);
    netsnmp_large_fd_setfd(tr->sock, &fds);
    snmp_sess_read2(st->sessp, &fds);
    netsnmp_large_fd_set_cleanup(&fds);
    if (!st->closing) schedule_timer(st);
}

/* ---- the poll: sysObjectID, GETs, walks ------------------------------------------- */

static void start_get(snmp_state *st);
static void send_get_batch(snmp_state *st);
static void start_table(snmp_state *st);

static int set_engine(netsnmp_session *sess, const u_char *id, size_t len);

/* v3: the engine-ID discovery probe of RFC 3414 §4, sent like any other request. */
static void send_probe(snmp_state *st)
{
    st->ph = PH_PROBE;
    netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GET);
    if (pdu) {
        pdu->version = SNMP_VERSION_3;
        pdu->securityModel = SNMP_SEC_MODEL_USM;
        pdu->securityLevel = SNMP_SEC_LEVEL_NOAUTH;
        pdu->securityName = strdup("");
        pdu->securityNameLen = 0;
        if (!pdu->securityName) {
            snmp_free_pdu(pdu);
            pdu = NULL;
        }
    }
    send_pdu(st, pdu);
}

static void start_requests(snmp_state *st)
{
    if (st->dev->snmp_version == 3 && !st->v3_engine_known) {
        netsnmp_session *sess = snmp_sess_session(st->sessp);
        if (!sess || set_engine(sess, placeholder_engine, sizeof placeholder_engine) != 0) {
            finish(st, AG_POLL_PROTOCOL, "out of memory");
            return;
        }
        send_probe(st);
        return;
    }
    if (st->fixed) {
        st->prof = st->fixed;
        start_get(st);
        return;
    }
    st->ph = PH_SYSOID;
    netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GET);
    oid name[MAX_OID_LEN];
    size_t len = MAX_OID_LEN;
    ag_oid so;
    ag_oid_parse(SYSOBJECTID_OID, &so);
    to_netsnmp(&so, name, &len);
    if (pdu) snmp_add_null_var(pdu, name, len);
    send_pdu(st, pdu);
}

static void handle_sysoid(snmp_state *st, netsnmp_pdu *pdu)
{
    netsnmp_variable_list *vb = pdu->variables;
    if (pdu->errstat != SNMP_ERR_NOERROR || !vb || vb->type != ASN_OBJECT_ID || !vb->val.objid) {
        finish(st, AG_POLL_CONFIG, "no profile configured and the device has no sysObjectID");
        return;
    }
    ag_oid so;
    size_t n = vb->val_len / sizeof(oid);
    so.len = n < AG_MAX_OID ? n : AG_MAX_OID;
    for (size_t i = 0; i < so.len; i++)
        so.sub[i] = (uint32_t)vb->val.objid[i];
    st->prof = ag_profile_match(st->profiles, &so);
    if (!st->prof) {
        char txt[AG_MAX_OID * 11 + 1];
        ag_oid_format(&so, txt, sizeof txt);
        finish(st, AG_POLL_CONFIG, "no profile matches sysObjectID %s", txt);
        return;
    }
    start_get(st);
}

static void start_get(snmp_state *st)
{
    const ag_profile *p = st->prof;
    st->ph = PH_GET;
    memset(st->inv, 0, sizeof st->inv);
    st->nitems = p->nidentity + p->nscalars;
    if (ensure((void **)&st->items, &st->items_cap, st->nitems, sizeof *st->items) != 0) {
        finish(st, AG_POLL_PROTOCOL, "out of memory");
        return;
    }
    if (st->nitems) memset(st->items, 0, st->nitems * sizeof *st->items);
    size_t k = 0;
    for (size_t i = 0; i < p->nidentity; i++) {
        int inv = -1;
        for (int f = 0; f < INV_N; f++)
            if (strcmp(p->identity[i].field, inv_fields[f]) == 0) inv = f;
        if (inv < 0) continue;
        st->items[k].oid = &p->identity[i].oid;
        st->items[k].inv = inv;
        k++;
    }
    for (size_t i = 0; i < p->nscalars; i++) {
        st->items[k].oid = &p->scalars[i].oid;
        st->items[k].scalar = &p->scalars[i];
        k++;
    }
    st->nitems = k;
    st->pos = 0;
    if (st->seen_prof != p) { /* row counts learnt for another profile mean nothing here */
        free(st->seen_rows);
        st->seen_rows = p->ntables ? calloc(p->ntables, sizeof *st->seen_rows) : NULL;
        st->seen_prof = st->seen_rows || !p->ntables ? p : NULL;
    }
    send_get_batch(st);
}

static void send_inventory(snmp_state *st)
{
    if (!st->sink.inventory) return;
    const ag_profile *p = st->prof;
    cm_device_info info = {0};
    info.id = st->dev->id;
    info.screen = st->dev->screen;
    info.kind = st->dev->kind ? st->dev->kind : p->kind;
    info.vendor = st->inv[INV_VENDOR][0] ? st->inv[INV_VENDOR] : p->vendor;
    info.model = st->inv[INV_MODEL][0] ? st->inv[INV_MODEL] : NULL;
    info.serial = st->inv[INV_SERIAL][0] ? st->inv[INV_SERIAL] : NULL;
    info.firmware = st->inv[INV_FIRMWARE][0] ? st->inv[INV_FIRMWARE] : NULL;
    info.profile = p->name;
    st->sink.inventory(st->sink.ud, st->dev, &info);
}

static void send_get_batch(snmp_state *st)
{
    size_t n = 0;
    for (size_t i = st->pos; i < st->nitems && n < st->batch_max; i++)
        if (!st->items[i].excluded) st->cur_idx[n++] = i;
    st->cur_n = n;
    if (n == 0) {
        send_inventory(st);
        st->table = 0;
        start_table(st);
        return;
    }
    netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GET);
    for (size_t i = 0; pdu && i < n; i++) {
        oid name[MAX_OID_LEN];
        size_t len;
        to_netsnmp(st->items[st->cur_idx[i]].oid, name, &len);
        snmp_add_null_var(pdu, name, len);
    }
    send_pdu(st, pdu);
}

static int same_oid(const netsnmp_variable_list *vb, const ag_oid *o)
{
    if (vb->name_length != o->len) return 0;
    for (size_t i = 0; i < o->len; i++)
        if (vb->name[i] != o->sub[i]) return 0;
    return 1;
}

static void get_value(snmp_state *st, const get_item *it, const netsnmp_variable_list *vb)
{
    if (!it->scalar) {
        char tmp[AG_MAX_OID * 11 + 1];
        ag_raw raw;
        if (vb_raw(vb, &raw, tmp, sizeof tmp) == 0)
            raw_text(&raw, st->inv[it->inv], sizeof st->inv[it->inv]);
        return;
    }
    const ag_scalar *s = it->scalar;
    double v;
    if (map_vb(st, vb, &s->map, vb->name_length, &v) == 0)
        st->sink.point(st->sink.ud, st->dev, s->metric, s->unit, s->labels, s->nlabels, st->ts_ms,
                       v);
}

/* An error-status answer. Returns 1 when handled by a retry, 0 when the poll finished. */
static int error_status(snmp_state *st, netsnmp_pdu *pdu, size_t nsent, int *skip_index)
{
    long es = pdu->errstat, ei = pdu->errindex;
    *skip_index = -1;
    if ((es == SNMP_ERR_NOSUCHNAME || es == SNMP_ERR_NOACCESS) && ei >= 1 && (size_t)ei <= nsent) {
        *skip_index = (int)ei - 1;
        return 1;
    }
    if (es == SNMP_ERR_AUTHORIZATIONERROR) {
        finish(st, AG_POLL_AUTH, "device refused the request: %s", snmp_errstring((int)es));
        return 0;
    }
    finish(st, AG_POLL_PROTOCOL, "device answered error-status %ld (%s) at index %ld", es,
           snmp_errstring((int)es), ei);
    return 0;
}

static void handle_get(snmp_state *st, netsnmp_pdu *pdu)
{
    if (pdu->errstat == SNMP_ERR_TOOBIG) {
        if (st->batch_max > 1) {
            st->batch_max /= 2;
            send_get_batch(st);
        } else {
            finish(st, AG_POLL_PROTOCOL, "device answered tooBig to a single-varbind GET");
        }
        return;
    }
    if (pdu->errstat != SNMP_ERR_NOERROR) {
        int skip;
        if (error_status(st, pdu, st->cur_n, &skip)) {
            st->items[st->cur_idx[skip]].excluded = 1; /* v1: retry the batch without it */
            send_get_batch(st);
        }
        return;
    }
    size_t i = 0;
    for (netsnmp_variable_list *vb = pdu->variables; vb; vb = vb->next_variable, i++) {
        if (i >= st->cur_n || !same_oid(vb, st->items[st->cur_idx[i]].oid)) {
            char txt[AG_MAX_OID * 11 + 1];
            format_netsnmp_oid(vb->name, vb->name_length, txt, sizeof txt);
            finish(st, AG_POLL_PROTOCOL, "malformed answer: unexpected varbind %zu (OID %s)", i,
                   txt);
            return;
        }
    }
    if (i != st->cur_n) {
        finish(st, AG_POLL_PROTOCOL, "malformed answer: %zu varbinds for %zu requested", i,
               st->cur_n);
        return;
    }
    i = 0;
    for (netsnmp_variable_list *vb = pdu->variables; vb; vb = vb->next_variable, i++)
        get_value(st, &st->items[st->cur_idx[i]], vb);
    st->pos = st->cur_idx[st->cur_n - 1] + 1;
    send_get_batch(st);
}

/* ---- tables ----------------------------------------------------------------------- */

static void send_walk(snmp_state *st);

static void start_table(snmp_state *st)
{
    const ag_profile *p = st->prof;
    reset_rows(st);
    st->ncols = 0;
    if (st->table >= p->ntables) {
        finish(st, AG_POLL_OK, NULL);
        return;
    }
    st->ph = PH_WALK;
    const ag_table *t = &p->tables[st->table];
    size_t max = t->ncolumns + t->nlabel_columns;
    if (ensure((void **)&st->cols, &st->cols_cap, max, sizeof *st->cols) != 0) {
        finish(st, AG_POLL_PROTOCOL, "out of memory");
        return;
    }
    memset(st->cols, 0, max * sizeof *st->cols);
    for (size_t i = 0; i < max; i++) {
        uint32_t c = i < t->nlabel_columns ? t->label_columns[i].column
                                           : t->columns[i - t->nlabel_columns].column;
        int seen = 0;
        for (size_t j = 0; j < st->ncols && !seen; j++)
            seen = st->cols[j].column == c;
        if (seen) continue;
        walk_col *w = &st->cols[st->ncols++];
        w->column = c;
        to_netsnmp(&t->entry, w->last, &w->last_len);
        w->last[w->last_len++] = c;
    }
    st->maxrep = 0;
    send_walk(st);
}

static row *find_row(snmp_state *st, const oid *idx, size_t len)
{
    for (size_t k = 0; k < st->nrows; k++) {
        size_t i = (st->hint + k) % st->nrows;
        row *r = &st->rows[i];
        if (r->idxlen != len) continue;
        size_t j = 0;
        while (j < len && r->idx[j] == idx[j])
            j++;
        if (j == len) {
            st->hint = i + 1;
            return r;
        }
    }
    const ag_table *t = &st->prof->tables[st->table];
    if (st->nrows == st->rows_init) { /* a row never used before: room for it */
        if (ensure((void **)&st->rows, &st->rows_cap, st->nrows + 1, sizeof *st->rows) != 0)
            return NULL;
        memset(&st->rows[st->nrows], 0, sizeof *st->rows);
        st->rows_init++;
    }
    row *r = &st->rows[st->nrows];
    size_t ncol = t->ncolumns ? t->ncolumns : 1;
    if (ensure((void **)&r->idx, &r->idx_cap, len ? len : 1, sizeof *r->idx) != 0 ||
        ensure((void **)&r->labels, &r->labels_cap, t->nlabel_columns ? t->nlabel_columns : 1,
               sizeof *r->labels) != 0)
        return NULL;
    if (ensure((void **)&r->vals, &r->vals_cap, ncol, sizeof *r->vals) != 0 ||
        ensure((void **)&r->has, &r->has_cap, ncol, 1) != 0)
        return NULL;
    memset(r->has, 0, ncol);
    memset(r->labels, 0, (t->nlabel_columns ? t->nlabel_columns : 1) * sizeof *r->labels);
    for (size_t j = 0; j < len; j++)
        r->idx[j] = (uint32_t)idx[j];
    r->idxlen = len;
    r->nlabels = t->nlabel_columns;
    st->nrows++;
    st->hint = st->nrows;
    return r;
}

static void emit_table(snmp_state *st)
{
    const ag_table *t = &st->prof->tables[st->table];
    for (size_t i = 0; i < st->nrows; i++) {
        row *r = &st->rows[i];
        char index[AG_MAX_OID * 11 + 1];
        ag_oid io;
        io.len = r->idxlen;
        memcpy(io.sub, r->idx, r->idxlen * sizeof *r->idx);
        ag_oid_format(&io, index, sizeof index);
        for (size_t c = 0; c < t->ncolumns; c++) {
            if (!r->has[c]) continue;
            const ag_column *col = &t->columns[c];
            cm_label labels[CM_MAX_LABELS];
            size_t n = 0;
            for (size_t k = 0; k < col->nlabels && n < CM_MAX_LABELS; k++)
                labels[n++] = col->labels[k];
            if (t->index_label && n < CM_MAX_LABELS)
                labels[n++] = (cm_label){t->index_label, index};
            for (size_t k = 0; k < t->nlabel_columns && n < CM_MAX_LABELS; k++)
                if (r->labels[k] && r->labels[k][0])
                    labels[n++] = (cm_label){t->label_columns[k].label, r->labels[k]};
            st->sink.point(st->sink.ud, st->dev, col->metric, col->unit, labels, n, st->ts_ms,
                           r->vals[c]);
        }
    }
}

static void walk_value(snmp_state *st, walk_col *w, const netsnmp_variable_list *vb)
{
    const ag_table *t = &st->prof->tables[st->table];
    size_t plen = t->entry.len + 1;
    row *r = find_row(st, vb->name + plen, vb->name_length - plen);
    if (!r) {
        cm_log_limited("snmp-oom", 60, CM_LOG_ERROR,
                       "snmp: device %s: out of memory in a table walk", st->dev->id);
        w->done = 1;
        return;
    }
    for (size_t k = 0; k < t->nlabel_columns; k++) {
        if (t->label_columns[k].column != w->column || r->labels[k]) continue;
        char tmp[AG_MAX_OID * 11 + 1], text[CM_MAX_VALUE];
        ag_raw raw;
        if (vb_raw(vb, &raw, tmp, sizeof tmp) == 0) {
            raw_text(&raw, text, sizeof text);
            r->labels[k] = strdup(text);
        }
    }
    for (size_t c = 0; c < t->ncolumns; c++) {
        if (t->columns[c].column != w->column) continue;
        double v;
        if (map_vb(st, vb, &t->columns[c].map, plen, &v) == 0) {
            r->vals[c] = v;
            r->has[c] = 1;
        }
    }
}

static void send_walk(snmp_state *st)
{
    const ag_table *t = &st->prof->tables[st->table];
    size_t n = 0;
    for (size_t i = 0; i < st->ncols && n < MAX_VARBINDS; i++)
        if (!st->cols[i].done) st->cur_cols[n++] = i;
    st->ncur = n;
    if (n == 0) {
        if (st->seen_rows) st->seen_rows[st->table] = (uint32_t)st->nrows;
        emit_table(st);
        st->table++;
        start_table(st);
        return;
    }
    netsnmp_pdu *pdu;
    if (st->dev->snmp_version == 1) {
        pdu = snmp_pdu_create(SNMP_MSG_GETNEXT);
    } else {
        pdu = snmp_pdu_create(SNMP_MSG_GETBULK);
        if (st->maxrep == 0) {
            /* As many rows as the table had last time and one more to see its end: usually
             * the whole table in one request (or as many as the answers can carry). */
            uint32_t seen = st->seen_rows ? st->seen_rows[st->table] : 0;
            long rep = seen ? (long)seen + 1 : (long)(BULK_FIRST_VARBINDS / n);
            long cap = (long)(st->bulk_max / n);
            if (rep > cap) rep = cap;
            if (rep < 1) rep = 1;
            if (rep > (long)t->max_rows + 1) rep = (long)t->max_rows + 1;
            st->maxrep = (int)rep;
        }
        if (pdu) {
            pdu->non_repeaters = 0;
            pdu->max_repetitions = st->maxrep;
        }
    }
    for (size_t i = 0; pdu && i < n; i++) {
        walk_col *w = &st->cols[st->cur_cols[i]];
        snmp_add_null_var(pdu, w->last, w->last_len);
    }
    send_pdu(st, pdu);
}

static void handle_walk(snmp_state *st, netsnmp_pdu *pdu)
{
    const ag_table *t = &st->prof->tables[st->table];
    if (pdu->errstat == SNMP_ERR_TOOBIG) {
        if (st->maxrep > 1) {
            st->maxrep /= 2;
            size_t cap = (size_t)st->maxrep * st->ncur; /* the device's limit, kept */
            if (cap < st->bulk_max) st->bulk_max = cap;
            send_walk(st);
        } else {
            finish(st, AG_POLL_PROTOCOL, "device answered tooBig to a one-row table request");
        }
        return;
    }
    if (pdu->errstat != SNMP_ERR_NOERROR) {
        int skip;
        if (error_status(st, pdu, st->ncur, &skip)) {
            st->cols[st->cur_cols[skip]].done = 1; /* v1: end of the MIB for that column */
            send_walk(st);
        }
        return;
    }
    size_t j = 0;
    for (netsnmp_variable_list *vb = pdu->variables; vb; vb = vb->next_variable, j++) {
        walk_col *w = &st->cols[st->cur_cols[j % st->ncur]];
        if (w->done) continue;
        size_t plen = t->entry.len + 1;
        if (vb->type == SNMP_ENDOFMIBVIEW || vb->name_length <= plen ||
            snmp_oid_compare(vb->name, plen, w->last, plen) != 0) {
            w->done = 1; /* left the column: its end */
            continue;
        }
        if (snmp_oid_compare(vb->name, vb->name_length, w->last, w->last_len) <= 0) {
            char txt[AG_MAX_OID * 11 + 1];
            format_netsnmp_oid(vb->name, vb->name_length, txt, sizeof txt);
            cm_log_limited("snmp-order", MAP_LOG_EVERY_S, CM_LOG_WARN,
                           "snmp: device %s: OID %s not increasing in a walk; column ends",
                           st->dev->id, txt);
            w->done = 1;
            continue;
        }
        memcpy(w->last, vb->name, vb->name_length * sizeof(oid));
        w->last_len = vb->name_length;
        walk_value(st, w, vb);
        if (++w->rows >= t->max_rows) w->done = 1;
    }
    if (j == 0) /* an empty answer would loop forever */
        for (size_t i = 0; i < st->ncur; i++)
            st->cols[st->cur_cols[i]].done = 1;
    send_walk(st);
}

/* Set the security and context engine IDs of a v3 session. 0, or -1 out of memory. */
static int set_engine(netsnmp_session *sess, const u_char *id, size_t len)
{
    u_char *a = netsnmp_memdup(id, len), *b = netsnmp_memdup(id, len);
    if (!a || !b) {
        free(a);
        free(b);
        return -1;
    }
    free(sess->securityEngineID);
    free(sess->contextEngineID);
    sess->securityEngineID = a;
    sess->securityEngineIDLen = len;
    sess->contextEngineID = b;
    sess->contextEngineIDLen = len;
    return 0;
}

/* Forget net-snmp's USM user (engine ID, name), if there is one. */
static void drop_user(const u_char *engine, size_t len, const char *name)
{
    struct usmUser *u = usm_get_user(engine, len, name);
    if (!u) return;
    usm_remove_user(u); /* returns the list head, not u */
    usm_free_user(u);
}

/* The report answering the probe: take the engine ID, create the USM user, go on. */
static void handle_probe_report(snmp_state *st, netsnmp_session *sess, netsnmp_pdu *pdu)
{
    if (!pdu->securityEngineID || pdu->securityEngineIDLen == 0 ||
        snmpv3_get_report_type(pdu) != SNMPERR_UNKNOWN_ENG_ID) {
        finish(st, AG_POLL_PROTOCOL, "SNMPv3 engine-ID discovery: unexpected report (%s)",
               snmp_api_errstring(snmpv3_get_report_type(pdu)));
        return;
    }
    drop_user(placeholder_engine, sizeof placeholder_engine, sess->securityName);
    if (set_engine(sess, pdu->securityEngineID, pdu->securityEngineIDLen) != 0) {
        finish(st, AG_POLL_PROTOCOL, "out of memory");
        return;
    }
    /* One USM user per (engine ID, name) in the process: replace an older one so that this
     * session's keys are the ones used. */
    drop_user(sess->securityEngineID, sess->securityEngineIDLen, sess->securityName);
    sess->flags &= ~SNMP_FLAGS_USER_CREATED;
    if (usm_create_user_from_session(sess) != SNMPERR_SUCCESS) {
        finish(st, AG_POLL_CONFIG, "cannot create the SNMPv3 user for %s", st->dev->id);
        return;
    }
    st->v3_engine_known = 1;
    st->ph = PH_IDLE;
    start_requests(st);
}

/* A report PDU to a request (v3): why the device would not answer. */
static void handle_report(snmp_state *st, netsnmp_pdu *pdu)
{
    int type = snmpv3_get_report_type(pdu);
    switch (type) {
    case SNMPERR_UNKNOWN_USER_NAME:
        finish(st, AG_POLL_AUTH, "SNMPv3: device does not know the user (usmStatsUnknownUserNames)");
        break;
    case SNMPERR_AUTHENTICATION_FAILURE:
        finish(st, AG_POLL_AUTH, "SNMPv3: wrong authentication password or protocol "
                                 "(usmStatsWrongDigests)");
        break;
    case SNMPERR_DECRYPTION_ERR:
        finish(st, AG_POLL_AUTH, "SNMPv3: wrong privacy password or protocol "
                                 "(usmStatsDecryptionErrors)");
        break;
    case SNMPERR_UNSUPPORTED_SEC_LEVEL:
        finish(st, AG_POLL_AUTH, "SNMPv3: security level not supported for the user "
                                 "(usmStatsUnsupportedSecLevels)");
        break;
    case SNMPERR_UNKNOWN_ENG_ID:
        st->v3_engine_known = 0; /* the device changed its engine ID: discover it again */
        finish(st, AG_POLL_AUTH, "SNMPv3: device does not know the engine ID "
                                 "(usmStatsUnknownEngineIDs); rediscovering at the next poll");
        break;
    case SNMPERR_NOT_IN_TIME_WINDOW:
        finish(st, AG_POLL_AUTH, "SNMPv3: not in the time window (usmStatsNotInTimeWindows)");
        break;
    default:
        finish(st, AG_POLL_PROTOCOL, "SNMPv3: device answered a report (%s)",
               snmp_api_errstring(type));
        break;
    }
}

static int on_response(int op, netsnmp_session *sess, int reqid, netsnmp_pdu *pdu, void *magic)
{
    snmp_state *st = magic;
    if (st->closing || !st->busy || st->ph == PH_DONE) return 1;
    /* An answer to an earlier request is stale. v3 reports to a PDU the agent could not
     * authenticate or decrypt carry request-id 0; net-snmp matched them by msgID. */
    if (reqid != st->reqid && reqid != 0) return 1;
    switch (op) {
    case NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE:
        if (pdu && pdu->command == SNMP_MSG_REPORT) {
            if (st->ph == PH_PROBE)
                handle_probe_report(st, sess, pdu);
            else
                handle_report(st, pdu);
            break;
        }
        if (st->ph == PH_PROBE) {
            finish(st, AG_POLL_PROTOCOL, "SNMPv3 engine-ID discovery: answer is not a report");
            break;
        }
        if (!pdu || pdu->command != SNMP_MSG_RESPONSE) {
            finish(st, AG_POLL_PROTOCOL, "malformed answer (not a response PDU)");
            break;
        }
        if (st->ph == PH_SYSOID)
            handle_sysoid(st, pdu);
        else if (st->ph == PH_GET)
            handle_get(st, pdu);
        else if (st->ph == PH_WALK)
            handle_walk(st, pdu);
        break;
    case NETSNMP_CALLBACK_OP_TIMED_OUT:
        finish(st, AG_POLL_TIMEOUT, "no answer from %s:%d within %lld ms x %d tries",
               st->dev->address, st->dev->port, (long long)st->dev->timeout_ms,
               st->dev->retries + 1);
        break;
    case NETSNMP_CALLBACK_OP_SEND_FAILED:
        finish(st, AG_POLL_REFUSED, "sending to %s:%d failed", st->dev->address, st->dev->port);
        break;
    case NETSNMP_CALLBACK_OP_SEC_ERROR:
        if (pdu && pdu->command == SNMP_MSG_REPORT) {
            if (st->ph == PH_PROBE)
                handle_probe_report(st, sess, pdu);
            else
                handle_report(st, pdu);
            break;
        }
        finish(st, AG_POLL_AUTH, "security error from %s:%d", st->dev->address, st->dev->port);
        break;
    default: /* RESEND, CONNECT: nothing to do */
        break;
    }
    return 1;
}

/* ---- session, DNS, driver ops ----------------------------------------------------- */

/* Wipe the key material of a session template. */
static void wipe_keys(netsnmp_session *s)
{
    volatile u_char *a = s->securityAuthKey, *p = s->securityPrivKey;
    for (size_t i = 0; i < sizeof s->securityAuthKey; i++)
        a[i] = 0;
    for (size_t i = 0; i < sizeof s->securityPrivKey; i++)
        p[i] = 0;
}

/* v3: the USM part of the session. 0, or -1 with err. Passwords only go to generate_Ku. */
static int setup_usm(const ag_device *d, netsnmp_session *s, char *err, size_t errlen)
{
    s->version = SNMP_VERSION_3;
    s->securityModel = SNMP_SEC_MODEL_USM;
    s->securityName = d->v3_user;
    s->securityNameLen = d->v3_user ? strlen(d->v3_user) : 0;
    s->securityLevel = d->v3_level == 2   ? SNMP_SEC_LEVEL_AUTHPRIV
                       : d->v3_level == 1 ? SNMP_SEC_LEVEL_AUTHNOPRIV
                                          : SNMP_SEC_LEVEL_NOAUTH;
    s->flags |= SNMP_FLAGS_DONT_PROBE; /* discovery is our own async probe (see the top) */
    if (d->v3_level < 1) return 0;
    const char *ap = d->v3_auth_protocol ? d->v3_auth_protocol : "SHA";
    if (strcasecmp(ap, "SHA") == 0 || strcasecmp(ap, "SHA-1") == 0) {
        s->securityAuthProto = usmHMACSHA1AuthProtocol;
        s->securityAuthProtoLen = OID_LENGTH(usmHMACSHA1AuthProtocol);
    } else if (strcasecmp(ap, "SHA-256") == 0 || strcasecmp(ap, "SHA256") == 0) {
        s->securityAuthProto = usmHMAC192SHA256AuthProtocol;
        s->securityAuthProtoLen = OID_LENGTH(usmHMAC192SHA256AuthProtocol);
#ifndef NETSNMP_DISABLE_MD5
    } else if (strcasecmp(ap, "MD5") == 0) {
        s->securityAuthProto = usmHMACMD5AuthProtocol;
        s->securityAuthProtoLen = OID_LENGTH(usmHMACMD5AuthProtocol);
#endif
    } else {
        snprintf(err, errlen, "unsupported SNMPv3 auth protocol '%s'", ap);
        return -1;
    }
    const char *apw = d->v3_auth_password ? d->v3_auth_password : "";
    s->securityAuthKeyLen = USM_AUTH_KU_LEN;
    if (generate_Ku(s->securityAuthProto, (u_int)s->securityAuthProtoLen, (const u_char *)apw,
                    strlen(apw), s->securityAuthKey, &s->securityAuthKeyLen) != SNMPERR_SUCCESS) {
        snprintf(err, errlen, "cannot derive the SNMPv3 auth key (password too short?)");
        return -1;
    }
    if (d->v3_level < 2) return 0;
    const char *pp = d->v3_priv_protocol ? d->v3_priv_protocol : "AES";
    if (strcasecmp(pp, "AES") == 0 || strcasecmp(pp, "AES-128") == 0 ||
        strcasecmp(pp, "AES128") == 0) {
        s->securityPrivProto = usmAESPrivProtocol;
        s->securityPrivProtoLen = OID_LENGTH(usmAESPrivProtocol);
#ifndef NETSNMP_DISABLE_DES
    } else if (strcasecmp(pp, "DES") == 0) {
        s->securityPrivProto = usmDESPrivProtocol;
        s->securityPrivProtoLen = OID_LENGTH(usmDESPrivProtocol);
#endif
    } else {
        snprintf(err, errlen, "unsupported SNMPv3 privacy protocol '%s'", pp);
        return -1;
    }
    const char *ppw = d->v3_priv_password ? d->v3_priv_password : "";
    s->securityPrivKeyLen = USM_PRIV_KU_LEN;
    if (generate_Ku(s->securityAuthProto, (u_int)s->securityAuthProtoLen, (const u_char *)ppw,
                    strlen(ppw), s->securityPrivKey, &s->securityPrivKeyLen) != SNMPERR_SUCCESS) {
        snprintf(err, errlen, "cannot derive the SNMPv3 privacy key (password too short?)");
        return -1;
    }
    return 0;
}

static int open_session(snmp_state *st, const char *numeric, int v6)
{
    char peer[INET6_ADDRSTRLEN + 32];
    snprintf(peer, sizeof peer, v6 ? "udp6:[%s]:%d" : "udp:%s:%d", numeric, st->dev->port);
    netsnmp_session s;
    snmp_sess_init(&s);
    s.version = st->dev->snmp_version == 1 ? SNMP_VERSION_1 : SNMP_VERSION_2c;
    s.peername = peer;
    const char *community = st->dev->community ? st->dev->community : "public";
    s.community = (u_char *)community;
    s.community_len = strlen(community);
    s.timeout = (long)(st->dev->timeout_ms > 0 ? st->dev->timeout_ms : 1000) * 1000L;
    s.retries = st->dev->retries >= 0 ? st->dev->retries : 0;
    if (st->dev->snmp_version == 3) {
        s.community = NULL;
        s.community_len = 0;
        char uerr[160];
        int rc = setup_usm(st->dev, &s, uerr, sizeof uerr);
        if (rc != 0) {
            wipe_keys(&s);
            finish(st, AG_POLL_CONFIG, "device %s: %s", st->dev->id, uerr);
            return -1;
        }
    }
    void *sp = snmp_sess_open(&s);
    wipe_keys(&s); /* the session holds its own copy */
    if (!sp) {
        finish(st, AG_POLL_CONFIG, "cannot open an SNMP session to %s:%d", st->dev->address,
               st->dev->port);
        return -1;
    }
    netsnmp_transport *tr = snmp_sess_transport(sp);
    if (!tr || tr->sock < 0 || uv_poll_init_socket(st->loop, &st->poll_h, tr->sock) != 0) {
        snmp_sess_close(sp);
        finish(st, AG_POLL_CONFIG, "cannot watch the SNMP socket for %s", st->dev->address);
        return -1;
    }
    st->poll_h.data = st;
    st->poll_inited = 1;
    st->sessp = sp;
    uv_poll_start(&st->poll_h, UV_READABLE, on_readable);
    return 0;
}

static void final_free(snmp_state *st)
{
    if (st->sessp) snmp_sess_close(st->sessp); /* its callbacks see closing and do nothing */
    st->sessp = NULL;
    free_poll(st);
    free(st);
}

static void on_gai(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    snmp_state *st = req->data;
    st->gai_pending = 0;
    if (st->closing) {
        if (res) uv_freeaddrinfo(res);
        if (--st->refs == 0) final_free(st);
        return;
    }
    if (status < 0 || !res) {
        finish(st, AG_POLL_REFUSED, "cannot resolve %s: %s", st->dev->address, uv_strerror(status));
        if (res) uv_freeaddrinfo(res);
        return;
    }
    const struct addrinfo *ai = res; /* prefer IPv4: most cinema devices speak only IPv4 */
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            ai = a;
            break;
        }
    char numeric[INET6_ADDRSTRLEN];
    int v6 = ai->ai_family == AF_INET6;
    int rc = v6 ? uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, numeric, sizeof numeric)
                : uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, numeric, sizeof numeric);
    uv_freeaddrinfo(res);
    if (rc != 0) {
        finish(st, AG_POLL_REFUSED, "cannot resolve %s", st->dev->address);
        return;
    }
    if (open_session(st, numeric, v6) == 0) start_requests(st);
}

static int drv_open(uv_loop_t *loop, const ag_device *dev, const ag_profile_set *profiles,
                    const ag_sink *sink, void **state, char *err, size_t errlen)
{
    *state = NULL;
    if (ag_driver_check_device("snmp", dev, sink, 0, err, errlen) < 0) return -1;
    if (dev->snmp_version != 1 && dev->snmp_version != 2 && dev->snmp_version != 3) {
        snprintf(err, errlen, "device %s: snmp version %d is not supported (1, 2 or 3)", dev->id,
                 dev->snmp_version);
        return -1;
    }
    if (dev->snmp_version == 3 && (!dev->v3_user || !dev->v3_user[0])) {
        snprintf(err, errlen, "device %s: SNMPv3 without a user", dev->id);
        return -1;
    }
    if (dev->snmp_version == 3) { /* check protocols and passwords now, not at the first poll */
        netsnmp_session s;
        memset(&s, 0, sizeof s);
        char uerr[160];
        ag_snmp_lib_init();
        int rc = setup_usm(dev, &s, uerr, sizeof uerr);
        wipe_keys(&s);
        if (rc != 0) {
            snprintf(err, errlen, "device %s: %s", dev->id, uerr);
            return -1;
        }
    }
    if (dev->port < 1 || dev->port > 65535) {
        snprintf(err, errlen, "device %s: port %d out of range", dev->id, dev->port);
        return -1;
    }
    /* no profile: chosen by sysObjectID at the first poll */
    const ag_profile *fixed = NULL;
    if (dev->profile && ag_driver_profile(NULL, dev, profiles, NULL, &fixed, err, errlen) < 0)
        return -1;
    ag_snmp_lib_init();
    snmp_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->loop = loop;
    st->dev = dev;
    st->profiles = profiles;
    st->sink = *sink;
    st->fixed = fixed;
    st->batch_max = MAX_VARBINDS;
    st->bulk_max = BULK_VARBINDS;
    uv_timer_init(loop, &st->timer_h);
    uv_timer_init(loop, &st->done_h);
    st->timer_h.data = st;
    st->done_h.data = st;
    st->gai.data = st;
    *state = st;
    return 0;
}

static int is_literal(const char *addr, char *out, size_t outlen, int *v6)
{
    unsigned char buf[sizeof(struct in6_addr)];
    size_t len = strlen(addr);
    if (len >= outlen) return 0;
    if (inet_pton(AF_INET, addr, buf) == 1) {
        memcpy(out, addr, len + 1);
        *v6 = 0;
        return 1;
    }
    if (len > 2 && addr[0] == '[' && addr[len - 1] == ']') {
        memcpy(out, addr + 1, len - 2);
        out[len - 2] = '\0';
    } else {
        memcpy(out, addr, len + 1);
    }
    if (inet_pton(AF_INET6, out, buf) == 1) {
        *v6 = 1;
        return 1;
    }
    return 0;
}

static int drv_poll(void *state)
{
    snmp_state *st = state;
    if (!st || st->busy || st->closing) return -1;
    st->busy = 1;
    st->ph = PH_IDLE;
    st->prof = NULL;
    st->status = AG_POLL_OK;
    st->ts_ms = cm_now_ms();
    if (st->sessp) {
        start_requests(st);
        return 0;
    }
    char numeric[INET6_ADDRSTRLEN + 2];
    int v6 = 0;
    if (is_literal(st->dev->address, numeric, sizeof numeric, &v6)) {
        if (open_session(st, numeric, v6) == 0) start_requests(st);
        return 0;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    int rc = uv_getaddrinfo(st->loop, &st->gai, on_gai, st->dev->address, NULL, &hints);
    if (rc != 0) {
        finish(st, AG_POLL_REFUSED, "cannot resolve %s: %s", st->dev->address, uv_strerror(rc));
        return 0;
    }
    st->gai_pending = 1;
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    snmp_state *st = h->data;
    if (--st->refs == 0) final_free(st);
}

static void drv_close(void *state)
{
    snmp_state *st = state;
    if (!st || st->closing) return;
    st->closing = 1;
    st->refs = 0;
    if (st->gai_pending) {
        st->refs++;
        uv_cancel((uv_req_t *)&st->gai); /* on_gai still runs, with UV_ECANCELED */
    }
    uv_timer_stop(&st->timer_h);
    uv_timer_stop(&st->done_h);
    st->refs += 2;
    uv_close((uv_handle_t *)&st->timer_h, on_handle_closed);
    uv_close((uv_handle_t *)&st->done_h, on_handle_closed);
    if (st->poll_inited) {
        uv_poll_stop(&st->poll_h);
        st->refs++;
        uv_close((uv_handle_t *)&st->poll_h, on_handle_closed);
    }
}

const ag_driver_ops ag_snmp_driver = {
    .name = "snmp",
    .open = drv_open,
    .poll = drv_poll,
    .close = drv_close,
};

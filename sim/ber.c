/* ber.c — minimal bounded BER codec for SNMP v1/v2c (see ber.h). */
#include "ber.h"

#include <stdlib.h>
#include <string.h>

/* ---- decoding: a cursor over [p, end) ---- */

typedef struct cur {
    const uint8_t *p, *end;
} cur;

/* Read a tag and a definite length; the content must lie inside the cursor. */
static int get_tlv(cur *c, uint8_t *tag, cur *content)
{
    if (c->end - c->p < 2) return -1;
    uint8_t t = *c->p++;
    if ((t & 0x1f) == 0x1f) return -1; /* multi-byte tags are never used by SNMP */
    uint8_t l0 = *c->p++;
    size_t len;
    if (l0 < 0x80) {
        len = l0;
    } else {
        size_t n = l0 & 0x7f;
        if (n == 0 || n > 4) return -1; /* indefinite or absurd */
        if ((size_t)(c->end - c->p) < n) return -1;
        len = 0;
        for (size_t i = 0; i < n; i++) len = (len << 8) | *c->p++;
    }
    if (len > (size_t)(c->end - c->p)) return -1;
    *tag = t;
    content->p = c->p;
    content->end = c->p + len;
    c->p += len;
    return 0;
}

static int expect(cur *c, uint8_t want, cur *content)
{
    uint8_t t;
    if (get_tlv(c, &t, content) != 0 || t != want) return -1;
    return 0;
}

/* A signed INTEGER of at most 4 content octets (Integer32). */
static int get_int32(cur *c, int32_t *out)
{
    cur v;
    if (expect(c, SIM_TAG_INT, &v) != 0) return -1;
    size_t n = (size_t)(v.end - v.p);
    if (n == 0 || n > 4) return -1;
    uint32_t u = (v.p[0] & 0x80) ? 0xffffffffu : 0;
    for (size_t i = 0; i < n; i++) u = (u << 8) | v.p[i];
    *out = (int32_t)u;
    return 0;
}

static int decode_oid(const uint8_t *p, size_t n, sim_oid *o)
{
    if (n == 0) return -1;
    size_t k = 0;
    uint64_t acc = 0;
    int in_sub = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_sub && p[i] == 0x80) return -1; /* non-minimal encoding */
        acc = (acc << 7) | (p[i] & 0x7f);
        if (acc > 0xffffffffull) return -1;
        in_sub = 1;
        if (p[i] & 0x80) continue;
        in_sub = 0;
        if (k == 0) {
            /* the first octets hold two sub-identifiers: 40 * x + y */
            uint32_t x = acc < 40 ? 0 : acc < 80 ? 1 : 2;
            o->sub[0] = x;
            o->sub[1] = (uint32_t)(acc - 40u * x);
            k = 2;
        } else {
            if (k >= SIM_MAX_OID) return -1;
            o->sub[k++] = (uint32_t)acc;
        }
        acc = 0;
    }
    if (in_sub) return -1; /* last octet had its continuation bit set */
    o->len = (uint8_t)k;
    return 0;
}

int sim_ber_decode_request(const uint8_t *buf, size_t len, sim_request *req)
{
    cur c = {buf, buf + len}, msg, s;
    if (!buf || expect(&c, SIM_TAG_SEQ, &msg) != 0) return -1;
    int32_t version;
    if (get_int32(&msg, &version) != 0) return -1;
    if (version != 0 && version != 1) return -3;
    req->version = version;
    if (expect(&msg, SIM_TAG_OCTETS, &s) != 0) return -1;
    req->community = s.p;
    req->community_len = (size_t)(s.end - s.p);
    uint8_t tag;
    cur pdu;
    if (get_tlv(&msg, &tag, &pdu) != 0) return -1;
    if (tag != SIM_PDU_GET && tag != SIM_PDU_GETNEXT && tag != SIM_PDU_RESPONSE &&
        tag != SIM_PDU_SET && tag != SIM_PDU_GETBULK)
        return -1;
    req->pdu = tag;
    if (get_int32(&pdu, &req->request_id) != 0 || get_int32(&pdu, &req->field2) != 0 ||
        get_int32(&pdu, &req->field3) != 0)
        return -1;
    cur vbl;
    if (expect(&pdu, SIM_TAG_SEQ, &vbl) != 0) return -1;
    req->noids = 0;
    while (vbl.p < vbl.end) {
        cur vb, o, val;
        uint8_t vt;
        if (expect(&vbl, SIM_TAG_SEQ, &vb) != 0) return -1;
        if (expect(&vb, SIM_TAG_OID, &o) != 0) return -1;
        if (get_tlv(&vb, &vt, &val) != 0) return -1;
        if (vb.p != vb.end) return -1;
        if (req->noids >= SIM_MAX_VARBINDS) return -2;
        if (decode_oid(o.p, (size_t)(o.end - o.p), &req->oids[req->noids]) != 0) return -1;
        req->noids++;
    }
    if (pdu.p != pdu.end || msg.p != msg.end) return -1; /* trailing garbage */
    return 0;
}

/* ---- encoding ---- */

static size_t len_size(size_t n)
{
    return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 4;
}

static size_t put_len(uint8_t *o, size_t n)
{
    if (n < 0x80) {
        o[0] = (uint8_t)n;
        return 1;
    }
    if (n < 0x100) {
        o[0] = 0x81;
        o[1] = (uint8_t)n;
        return 2;
    }
    if (n < 0x10000) {
        o[0] = 0x82;
        o[1] = (uint8_t)(n >> 8);
        o[2] = (uint8_t)n;
        return 3;
    }
    o[0] = 0x83;
    o[1] = (uint8_t)(n >> 16);
    o[2] = (uint8_t)(n >> 8);
    o[3] = (uint8_t)n;
    return 4;
}

static size_t sint_size(int64_t v)
{
    size_t n = 1;
    while (n < 8) {
        int64_t lo = -((int64_t)1 << (8 * n - 1)), hi = ((int64_t)1 << (8 * n - 1)) - 1;
        if (v >= lo && v <= hi) break;
        n++;
    }
    return n;
}

/* Unsigned 32-bit types: minimal two's complement, a leading 0 when the top bit is set. */
static size_t uint_size(uint32_t v)
{
    return sint_size((int64_t)v);
}

static size_t put_int(uint8_t *o, int64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++) o[i] = (uint8_t)((uint64_t)v >> (8 * (n - 1 - i)));
    return n;
}

static size_t subid_size(uint32_t v)
{
    size_t n = 1;
    while (v >>= 7) n++;
    return n;
}

static size_t oid_content_size(const sim_oid *o)
{
    if (o->len < 2) return 1; /* encoded as 0.0 */
    size_t n = subid_size(o->sub[0] * 40u + o->sub[1]);
    for (size_t i = 2; i < o->len; i++) n += subid_size(o->sub[i]);
    return n;
}

static size_t put_subid(uint8_t *o, uint32_t v)
{
    size_t n = subid_size(v);
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)((v >> (7 * (n - 1 - i))) & 0x7f);
        o[i] = i + 1 < n ? (uint8_t)(b | 0x80) : b;
    }
    return n;
}

static size_t put_oid_content(uint8_t *o, const sim_oid *oid)
{
    if (oid->len < 2) {
        o[0] = 0;
        return 1;
    }
    size_t n = put_subid(o, oid->sub[0] * 40u + oid->sub[1]);
    for (size_t i = 2; i < oid->len; i++) n += put_subid(o + n, oid->sub[i]);
    return n;
}

static size_t value_content_size(const sim_value *v)
{
    switch (v->tag) {
    case SIM_TAG_INT: return sint_size(v->num);
    case SIM_TAG_COUNTER32:
    case SIM_TAG_GAUGE32:
    case SIM_TAG_TIMETICKS: return uint_size((uint32_t)v->num);
    case SIM_TAG_OCTETS: return v->len;
    case SIM_TAG_OID: return oid_content_size(v->oid);
    default: return 0; /* NULL and the v2c exceptions */
    }
}

size_t sim_ber_varbind_size(const sim_oid *oid, const sim_value *v)
{
    size_t on = oid_content_size(oid), vn = value_content_size(v);
    size_t body = 1 + len_size(on) + on + 1 + len_size(vn) + vn;
    return 1 + len_size(body) + body;
}

int sim_ber_put_varbind(uint8_t *out, size_t cap, size_t *pos, const sim_oid *oid,
                        const sim_value *v)
{
    size_t need = sim_ber_varbind_size(oid, v);
    if (*pos > cap || cap - *pos < need) return -1;
    size_t on = oid_content_size(oid), vn = value_content_size(v);
    size_t body = 1 + len_size(on) + on + 1 + len_size(vn) + vn;
    uint8_t *o = out + *pos;
    size_t k = 0;
    o[k++] = SIM_TAG_SEQ;
    k += put_len(o + k, body);
    o[k++] = SIM_TAG_OID;
    k += put_len(o + k, on);
    k += put_oid_content(o + k, oid);
    o[k++] = v->tag;
    k += put_len(o + k, vn);
    switch (v->tag) {
    case SIM_TAG_INT: k += put_int(o + k, v->num, vn); break;
    case SIM_TAG_COUNTER32:
    case SIM_TAG_GAUGE32:
    case SIM_TAG_TIMETICKS: k += put_int(o + k, (int64_t)(uint32_t)v->num, vn); break;
    case SIM_TAG_OCTETS:
        if (vn) memcpy(o + k, v->str, vn);
        k += vn;
        break;
    case SIM_TAG_OID: k += put_oid_content(o + k, v->oid); break;
    default: break;
    }
    *pos += k;
    return 0;
}

size_t sim_ber_encode_message(uint8_t *out, size_t cap, int version, const uint8_t *community,
                              size_t community_len, int pdu, int32_t request_id, int32_t f2,
                              int32_t f3, const uint8_t *vb, size_t vblen)
{
    size_t ri = sint_size(request_id), e2 = sint_size(f2), e3 = sint_size(f3);
    size_t pdu_body = (2 + ri) + (2 + e2) + (2 + e3) + 1 + len_size(vblen) + vblen;
    size_t msg_body = 3 + 1 + len_size(community_len) + community_len + 1 + len_size(pdu_body) +
                      pdu_body;
    size_t total = 1 + len_size(msg_body) + msg_body;
    if (total > cap) return 0;
    size_t k = 0;
    out[k++] = SIM_TAG_SEQ;
    k += put_len(out + k, msg_body);
    out[k++] = SIM_TAG_INT;
    out[k++] = 1;
    out[k++] = (uint8_t)version;
    out[k++] = SIM_TAG_OCTETS;
    k += put_len(out + k, community_len);
    if (community_len) memcpy(out + k, community, community_len);
    k += community_len;
    out[k++] = (uint8_t)pdu;
    k += put_len(out + k, pdu_body);
    out[k++] = SIM_TAG_INT;
    out[k++] = (uint8_t)ri;
    k += put_int(out + k, request_id, ri);
    out[k++] = SIM_TAG_INT;
    out[k++] = (uint8_t)e2;
    k += put_int(out + k, f2, e2);
    out[k++] = SIM_TAG_INT;
    out[k++] = (uint8_t)e3;
    k += put_int(out + k, f3, e3);
    out[k++] = SIM_TAG_SEQ;
    k += put_len(out + k, vblen);
    if (vblen) memmove(out + k, vb, vblen);
    k += vblen;
    return k;
}

/* ---- OIDs ---- */

int sim_oid_cmp(const sim_oid *a, const sim_oid *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    for (size_t i = 0; i < n; i++)
        if (a->sub[i] != b->sub[i]) return a->sub[i] < b->sub[i] ? -1 : 1;
    return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

int sim_oid_parse(const char *s, sim_oid *o)
{
    if (!s) return -1;
    if (*s == '.') s++;
    size_t k = 0;
    while (*s) {
        if (*s < '0' || *s > '9' || k >= SIM_MAX_OID) return -1;
        char *e;
        unsigned long v = strtoul(s, &e, 10);
        if (v > 0xfffffffful) return -1;
        o->sub[k++] = (uint32_t)v;
        s = e;
        if (*s == '.') {
            s++;
            if (!*s) return -1;
        } else if (*s) {
            return -1;
        }
    }
    if (k < 2) return -1;
    o->len = (uint8_t)k;
    return 0;
}

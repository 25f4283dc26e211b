/* responder.c — SNMP GET/GETNEXT/GETBULK semantics over the model's OID table. */
#include "responder.h"

#include <string.h>

typedef struct ctx {
    const sim_device *d;
    const sim_mib *mib;
    int64_t now;
    uint8_t *vb;
    size_t cap, pos;
    char scratch[128];
} ctx;

static int put_exc(ctx *c, const sim_oid *oid, uint8_t tag)
{
    sim_value v = {.tag = tag};
    return sim_ber_put_varbind(c->vb, c->cap, &c->pos, oid, &v);
}

/* Append one varbind; a Counter64 (which ber.c does not encode) is written as an OCTET
 * STRING holding its content bytes, then the value's tag is patched. */
static int put_value(ctx *c, const sim_oid *oid, const sim_value *v)
{
    if (v->tag != SIM_TAG_COUNTER64) return sim_ber_put_varbind(c->vb, c->cap, &c->pos, oid, v);
    uint64_t u = (uint64_t)v->num;
    uint8_t b[9];
    size_t n = 0;
    int k = 8;
    while (k > 1 && ((u >> (8 * (k - 1))) & 0xff) == 0)
        k--;
    if ((u >> (8 * (k - 1))) & 0x80) b[n++] = 0; /* unsigned: keep the top bit clear */
    for (int i = k - 1; i >= 0; i--)
        b[n++] = (uint8_t)(u >> (8 * i));
    sim_value s = {.tag = SIM_TAG_OCTETS, .str = (const char *)b, .len = n};
    if (sim_ber_put_varbind(c->vb, c->cap, &c->pos, oid, &s) != 0) return -1;
    c->vb[c->pos - n - 2] = SIM_TAG_COUNTER64; /* tag, 1-byte length, n content bytes */
    return 0;
}

static void entry_value(ctx *c, long i, sim_value *v)
{
    sim_device_value(c->d, &c->mib->e[i], c->now, v, c->scratch, sizeof c->scratch);
}

static int put_entry(ctx *c, long i)
{
    sim_value v;
    entry_value(c, i, &v);
    return put_value(c, &c->mib->e[i].oid, &v);
}

static size_t finish(uint8_t *out, size_t cap, const sim_request *r, int32_t es, int32_t ei,
                     const uint8_t *vb, size_t vblen)
{
    return sim_ber_encode_message(out, cap, r->version, r->community, r->community_len,
                                  SIM_PDU_RESPONSE, r->request_id, es, ei, vb, vblen);
}

/* An error answer: v1 echoes the request's varbinds with NULL values; tooBig has none. */
static size_t error_reply(ctx *c, uint8_t *out, size_t cap, const sim_request *r, int32_t es,
                          int32_t ei)
{
    c->pos = 0;
    if (es != SIM_ERR_TOOBIG)
        for (size_t i = 0; i < r->noids; i++)
            if (put_exc(c, &r->oids[i], SIM_TAG_NULL) != 0) {
                c->pos = 0;
                es = SIM_ERR_TOOBIG;
                ei = 0;
                break;
            }
    return finish(out, cap, r, es, ei, c->vb, c->pos);
}

size_t sim_snmp_respond(const sim_device *d, const char *community, const uint8_t *req, size_t len,
                        uint8_t *out, size_t cap, int64_t now_ms, sim_snmp_stats *st)
{
    static sim_request r; /* 66 KB: kept off the stack; the simulator is single-threaded */
    sim_snmp_stats dummy;
    if (!st) st = &dummy;
    st->requests++;
    if (sim_ber_decode_request(req, len, &r) != 0) {
        st->malformed++;
        return 0;
    }
    size_t clen = strlen(community);
    if (r.community_len != clen || memcmp(r.community, community, clen) != 0) {
        st->bad_community++;
        return 0;
    }
    if (r.pdu != SIM_PDU_GET && r.pdu != SIM_PDU_GETNEXT &&
        !(r.pdu == SIM_PDU_GETBULK && r.version == 1)) {
        st->unsupported++;
        return 0;
    }
    if (cap > SIM_MAX_RESPONSE) cap = SIM_MAX_RESPONSE;
    /* Varbinds are encoded after room for the message header, then moved down. */
    size_t head = 40 + clen;
    if (cap <= head) return 0;
    ctx c = {.d = d,
             .mib = &sim_model_get(d->model)->mib,
             .now = now_ms,
             .vb = out + head,
             .cap = cap - head};
    int v1 = r.version == 0;
    size_t n;

    if (r.pdu == SIM_PDU_GET || r.pdu == SIM_PDU_GETNEXT) {
        for (size_t i = 0; i < r.noids; i++) {
            const sim_oid *o = &r.oids[i];
            long k = r.pdu == SIM_PDU_GET ? sim_mib_find(c.mib, o) : sim_mib_next(c.mib, o);
            int rc;
            sim_value v;
            if (v1) /* SNMPv1 has no Counter64 (RFC 3584 4.2.2.1): GET misses, GETNEXT skips */
                for (; k >= 0; k = r.pdu == SIM_PDU_GET       ? -1
                                   : (size_t)k + 1 < c.mib->n ? k + 1
                                                              : -1) {
                    entry_value(&c, k, &v);
                    if (v.tag != SIM_TAG_COUNTER64) break;
                }
            if (k >= 0 && v1)
                rc = put_value(&c, &c.mib->e[k].oid, &v);
            else if (k >= 0)
                rc = put_entry(&c, k);
            else if (v1)
                return st->responses++,
                       error_reply(&c, out, cap, &r, SIM_ERR_NOSUCHNAME, (int32_t)i + 1);
            else if (r.pdu == SIM_PDU_GETNEXT)
                rc = put_exc(&c, o, SIM_TAG_ENDOFMIBVIEW);
            else
                rc = put_exc(&c, o,
                             sim_mib_has_object(c.mib, o) ? SIM_TAG_NOSUCHINSTANCE
                                                          : SIM_TAG_NOSUCHOBJECT);
            if (rc != 0) {
                st->too_big++;
                st->responses++;
                return error_reply(&c, out, cap, &r, SIM_ERR_TOOBIG, 0);
            }
        }
    } else { /* GETBULK (RFC 3416 4.2.3) */
        size_t nonrep = r.field2 < 0 ? 0 : (size_t)r.field2;
        if (nonrep > r.noids) nonrep = r.noids;
        size_t maxrep = r.field3 < 0 ? 0 : (size_t)r.field3;
        size_t rep = r.noids - nonrep;
        for (size_t i = 0; i < nonrep; i++) {
            long k = sim_mib_next(c.mib, &r.oids[i]);
            int rc = k >= 0 ? put_entry(&c, k) : put_exc(&c, &r.oids[i], SIM_TAG_ENDOFMIBVIEW);
            if (rc != 0) goto full;
        }
        /* cursor per repeater: the index of its last entry, or -1 past the end */
        long cursor[SIM_MAX_VARBINDS];
        for (size_t j = 0; j < rep; j++)
            cursor[j] = -2; /* -2: not started */
        for (size_t m = 0; m < maxrep && rep > 0; m++) {
            int all_end = 1;
            for (size_t j = 0; j < rep; j++) {
                const sim_oid *o = &r.oids[nonrep + j];
                long k;
                if (cursor[j] == -2)
                    k = sim_mib_next(c.mib, o);
                else if (cursor[j] >= 0)
                    k = (size_t)cursor[j] + 1 < c.mib->n ? cursor[j] + 1 : -1;
                else
                    k = -1;
                int rc;
                if (k >= 0) {
                    all_end = 0;
                    rc = put_entry(&c, k);
                } else {
                    rc = put_exc(&c, o, SIM_TAG_ENDOFMIBVIEW);
                }
                if (rc != 0) goto full;
                cursor[j] = k;
            }
            if (all_end) break;
        }
        goto done;
    full:
        /* a GETBULK answer is cut at the size limit (RFC 3416 4.2.3); tooBig only when
         * not even one varbind fits */
        if (c.pos == 0) {
            st->too_big++;
            st->responses++;
            return error_reply(&c, out, cap, &r, SIM_ERR_TOOBIG, 0);
        }
    }
done:
    n = finish(out, cap, &r, SIM_ERR_NONE, 0, c.vb, c.pos);
    if (n) st->responses++;
    return n;
}

/* test_sim_ber.c — the simulator's BER codec and SNMP responder: round trips, GET/GETNEXT/
 * GETBULK semantics, and a table of malformed packets that must be rejected in bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/ber.h"
#include "sim/model.h"
#include "sim/responder.h"
#include "sim/trapsend.h"

static size_t make_req(uint8_t *out, size_t cap, int version, const char *comm, int pdu,
                       int32_t reqid, int32_t f2, int32_t f3, const char *const *oids, size_t n)
{
    uint8_t vb[4096];
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        sim_oid o;
        assert_int_equal(sim_oid_parse(oids[i], &o), 0);
        sim_value v = {.tag = SIM_TAG_NULL};
        assert_int_equal(sim_ber_put_varbind(vb, sizeof vb, &pos, &o, &v), 0);
    }
    return sim_ber_encode_message(out, cap, version, (const uint8_t *)comm, strlen(comm), pdu,
                                  reqid, f2, f3, vb, pos);
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *oids[] = {"1.3.6.1.2.1.1.3.0", "1.3.6.1.4.1.25766.1.12.1.1.3.5.1.6.1",
                          "2.999.4294967295"};
    uint8_t buf[512];
    static const int32_t ids[] = {0, 1, -1, 127, 128, -129, 0x7fffffff, INT32_MIN};
    for (size_t k = 0; k < sizeof ids / sizeof *ids; k++) {
        size_t n = make_req(buf, sizeof buf, 1, "public", SIM_PDU_GETBULK, ids[k], 1, 25, oids, 3);
        assert_true(n > 0);
        static sim_request r;
        assert_int_equal(sim_ber_decode_request(buf, n, &r), 0);
        assert_int_equal(r.version, 1);
        assert_int_equal(r.pdu, SIM_PDU_GETBULK);
        assert_int_equal(r.request_id, ids[k]);
        assert_int_equal(r.field2, 1);
        assert_int_equal(r.field3, 25);
        assert_int_equal(r.community_len, 6);
        assert_memory_equal(r.community, "public", 6);
        assert_int_equal(r.noids, 3);
        sim_oid o;
        for (size_t i = 0; i < 3; i++) {
            assert_int_equal(sim_oid_parse(oids[i], &o), 0);
            assert_int_equal(sim_oid_cmp(&o, &r.oids[i]), 0);
        }
    }
}

static void test_oid_128(void **state)
{
    (void)state;
    /* 128 sub-identifiers decode; 129 are rejected */
    for (int subs = 128; subs <= 129; subs++) {
        uint8_t pkt[1024];
        uint8_t vb[600];
        size_t k = 0;
        size_t ol = (size_t)subs - 1; /* first octet holds two */
        vb[k++] = 0x30;
        vb[k++] = 0x82;
        vb[k++] = (uint8_t)((ol + 3 + 2) >> 8);
        vb[k++] = (uint8_t)(ol + 3 + 2);
        vb[k++] = 0x06;
        vb[k++] = 0x81;
        vb[k++] = (uint8_t)ol;
        vb[k++] = 0x2b;
        for (size_t i = 1; i < ol; i++)
            vb[k++] = 5;
        vb[k++] = 0x05;
        vb[k++] = 0x00;
        size_t n = sim_ber_encode_message(pkt, sizeof pkt, 1, (const uint8_t *)"public", 6,
                                          SIM_PDU_GET, 7, 0, 0, vb, k);
        assert_true(n > 0);
        static sim_request r;
        int rc = sim_ber_decode_request(pkt, n, &r);
        if (subs == 128) {
            assert_int_equal(rc, 0);
            assert_int_equal(r.oids[0].len, 128);
        } else {
            assert_int_equal(rc, -1);
        }
    }
}

/* Every malformed packet is copied into a heap buffer of exactly its size, so ASan catches
 * any read beyond it. */
typedef struct bad {
    const char *what;
    const uint8_t *b;
    size_t n;
} bad;

#define B(what, ...)                                                                               \
    {                                                                                              \
        what, (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})               \
    }

static void test_malformed(void **state)
{
    (void)state;
    const bad cases[] = {
        B("empty sequence", 0x30, 0x00),
        B("truncated length", 0x30),
        B("long length without octets", 0x30, 0x82, 0x01),
        B("length beyond buffer", 0x30, 0x10, 0x02, 0x01, 0x01),
        B("huge length", 0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x01),
        B("5-octet length", 0x30, 0x85, 0x00, 0x00, 0x00, 0x00, 0x05),
        B("indefinite length", 0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00),
        B("wrong outer tag", 0x31, 0x03, 0x02, 0x01, 0x01),
        B("version not integer", 0x30, 0x03, 0x04, 0x01, 0x01),
        B("version 3", 0x30, 0x03, 0x02, 0x01, 0x03),
        B("negative version", 0x30, 0x03, 0x02, 0x01, 0xff),
        B("empty integer", 0x30, 0x02, 0x02, 0x00),
        B("oversized integer", 0x30, 0x07, 0x02, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01),
        B("missing community", 0x30, 0x03, 0x02, 0x01, 0x01),
        B("community length beyond", 0x30, 0x06, 0x02, 0x01, 0x01, 0x04, 0x7f, 0x61),
        B("bad pdu tag", 0x30, 0x0b, 0x02, 0x01, 0x01, 0x04, 0x01, 0x61, 0xa7, 0x03, 0x02, 0x01,
          0x01),
        B("pdu truncated", 0x30, 0x0b, 0x02, 0x01, 0x01, 0x04, 0x01, 0x61, 0xa0, 0x03, 0x02, 0x01,
          0x01),
        B("reqid oversized", 0x30, 0x1a, 0x02, 0x01, 0x01, 0x04, 0x01, 0x61, 0xa0, 0x12, 0x02, 0x06,
          1, 2, 3, 4, 5, 6, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x00),
        B("varbind list wrong tag", 0x30, 0x14, 0x02, 0x01, 0x01, 0x04, 0x01, 0x61, 0xa0, 0x0c,
          0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x31, 0x00),
        B("varbind without value", 0x30, 0x19, 0x02, 0x01, 0x01, 0x04, 0x01, 0x61, 0xa0, 0x11, 0x02,
          0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x06, 0x30, 0x04, 0x06, 0x02, 0x2b,
          0x06),
        B("empty oid", 0x30, 0x19, 0x02, 0x01, 0x01, 0x04, 0x01, 0x61, 0xa0, 0x11, 0x02, 0x01, 0x01,
          0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x06, 0x30, 0x04, 0x06, 0x00, 0x05, 0x00),
        B("oid continuation at end", 0x30, 0x1b, 0x02, 0x01, 0x01, 0x04, 0x01, 0x61, 0xa0, 0x13,
          0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x08, 0x30, 0x06, 0x06, 0x02,
          0x2b, 0x86, 0x05, 0x00),
        B("oid subid over 32 bits", 0x30, 0x20, 0x02, 0x01, 0x01, 0x04, 0x01, 0x61, 0xa0, 0x18,
          0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x0d, 0x30, 0x0b, 0x06, 0x07,
          0x2b, 0x90, 0x80, 0x80, 0x80, 0x80, 0x00, 0x05, 0x00),
        B("oid non-minimal subid", 0x30, 0x1c, 0x02, 0x01, 0x01, 0x04, 0x01, 0x61, 0xa0, 0x14, 0x02,
          0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x09, 0x30, 0x07, 0x06, 0x03, 0x2b,
          0x80, 0x01, 0x05, 0x00),
        B("value length beyond varbind", 0x30, 0x19, 0x02, 0x01, 0x01, 0x04, 0x01, 0x61, 0xa0, 0x11,
          0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x06, 0x30, 0x04, 0x06, 0x01,
          0x2b, 0x05, 0x09),
        B("multi-byte tag", 0x30, 0x05, 0x1f, 0x81, 0x01, 0x01, 0x00),
        B("trailing garbage", 0x30, 0x18, 0x02, 0x01, 0x01, 0x04, 0x01, 0x61, 0xa0, 0x0c, 0x02,
          0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
    };
    static sim_request r;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint8_t *p = malloc(cases[i].n);
        assert_non_null(p);
        memcpy(p, cases[i].b, cases[i].n);
        int rc = sim_ber_decode_request(p, cases[i].n, &r);
        if (rc == 0) fail_msg("accepted malformed packet: %s", cases[i].what);
        /* every prefix of it is rejected too, in bounds */
        for (size_t k = 0; k < cases[i].n; k++) {
            uint8_t *q = malloc(k ? k : 1);
            memcpy(q, p, k);
            assert_true(sim_ber_decode_request(q, k, &r) != 0);
            free(q);
        }
        free(p);
    }
}

static void test_truncations_of_valid(void **state)
{
    (void)state;
    const char *oids[] = {"1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.2.2.1.10.2"};
    uint8_t buf[512];
    size_t n = make_req(buf, sizeof buf, 1, "public", SIM_PDU_GET, 42, 0, 0, oids, 2);
    static sim_request r;
    for (size_t k = 0; k < n; k++) {
        uint8_t *q = malloc(k ? k : 1);
        memcpy(q, buf, k);
        assert_int_not_equal(sim_ber_decode_request(q, k, &r), 0);
        free(q);
    }
    assert_int_equal(sim_ber_decode_request(buf, n, &r), 0);
}

/* ---- responder ---- */

static sim_device DEV;
static const sim_device *CUR = &DEV; /* the device respond() asks */

static int setup(void **state)
{
    (void)state;
    char err[128];
    if (sim_models_init(err, sizeof err) != 0) return -1;
    sim_device_init(&DEV, SIM_MODEL_CHRISTIE, 1, 1, 0, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sim_models_free();
    return 0;
}

/* Decode a response; returns error-status, fills r. Value tags are found by re-walking. */
static int respond(int version, const char *comm, int pdu, int32_t f2, int32_t f3,
                   const char *const *oids, size_t n, sim_request *r, size_t *outlen, uint8_t *out)
{
    uint8_t req[1024];
    size_t rl = make_req(req, sizeof req, version, comm, pdu, 0x1234567, f2, f3, oids, n);
    sim_snmp_stats st = {0};
    size_t m = sim_snmp_respond(CUR, "public", req, rl, out, SIM_MAX_RESPONSE, 1000, &st);
    *outlen = m;
    if (m == 0) return -100;
    assert_int_equal(sim_ber_decode_request(out, m, r), 0);
    assert_int_equal(r->pdu, SIM_PDU_RESPONSE);
    assert_int_equal(r->request_id, 0x1234567);
    return r->field2;
}

static int has_byte_seq(const uint8_t *b, size_t n, const uint8_t *s, size_t k)
{
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(b + i, s, k) == 0) return 1;
    return 0;
}

static void test_get_semantics(void **state)
{
    (void)state;
    static sim_request r;
    uint8_t out[SIM_MAX_RESPONSE];
    size_t n;
    const char *ok[] = {"1.3.6.1.4.1.25766.1.12.1.1.3.5.1.6.1"};
    assert_int_equal(respond(1, "public", SIM_PDU_GET, 0, 0, ok, 1, &r, &n, out), 0);
    assert_int_equal(r.noids, 1);
    /* v2c: missing instance of an existing object, and a missing object */
    const char *miss[] = {"1.3.6.1.2.1.1.3.5", "1.3.6.1.2.1.99.1.0"};
    assert_int_equal(respond(1, "public", SIM_PDU_GET, 0, 0, miss, 2, &r, &n, out), 0);
    assert_true(has_byte_seq(out, n, (const uint8_t[]){0x81, 0x00}, 2));
    assert_true(has_byte_seq(out, n, (const uint8_t[]){0x80, 0x00}, 2));
    /* v1: noSuchName with the index of the first missing varbind */
    const char *v1[] = {"1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.99.1.0"};
    assert_int_equal(respond(0, "public", SIM_PDU_GET, 0, 0, v1, 2, &r, &n, out),
                     SIM_ERR_NOSUCHNAME);
    assert_int_equal(r.field3, 2);
    /* wrong community: no answer */
    assert_int_equal(respond(1, "private", SIM_PDU_GET, 0, 0, ok, 1, &r, &n, out), -100);
    /* GETNEXT past the end: endOfMibView (v2c), noSuchName (v1) */
    const char *end[] = {"1.3.6.1.4.1.99999"};
    assert_int_equal(respond(1, "public", SIM_PDU_GETNEXT, 0, 0, end, 1, &r, &n, out), 0);
    assert_true(has_byte_seq(out, n, (const uint8_t[]){0x82, 0x00}, 2));
    assert_int_equal(respond(0, "public", SIM_PDU_GETNEXT, 0, 0, end, 1, &r, &n, out),
                     SIM_ERR_NOSUCHNAME);
    /* GETBULK in v1 is not answered */
    assert_int_equal(respond(0, "public", SIM_PDU_GETBULK, 0, 5, ok, 1, &r, &n, out), -100);
}

static void test_getbulk(void **state)
{
    (void)state;
    static sim_request r;
    uint8_t out[SIM_MAX_RESPONSE];
    size_t n;
    /* one non-repeater + the temperature value column, 5 repetitions */
    const char *oids[] = {"1.3.6.1.2.1.1.3", "1.3.6.1.4.1.25766.1.12.1.4.2.2.1.1.6"};
    assert_int_equal(respond(1, "public", SIM_PDU_GETBULK, 1, 5, oids, 2, &r, &n, out), 0);
    assert_int_equal(r.noids, 6);
    sim_oid want;
    assert_int_equal(sim_oid_parse("1.3.6.1.2.1.1.3.0", &want), 0);
    assert_int_equal(sim_oid_cmp(&r.oids[0], &want), 0);
    assert_int_equal(sim_oid_parse("1.3.6.1.4.1.25766.1.12.1.4.2.2.1.1.6.5", &want), 0);
    assert_int_equal(sim_oid_cmp(&r.oids[5], &want), 0);
    /* max-repetitions 0: only the non-repeater */
    assert_int_equal(respond(1, "public", SIM_PDU_GETBULK, 1, 0, oids, 2, &r, &n, out), 0);
    assert_int_equal(r.noids, 1);
    /* a huge max-repetitions is cut at the size limit, never beyond */
    assert_int_equal(respond(1, "public", SIM_PDU_GETBULK, 0, 100000, oids + 1, 1, &r, &n, out), 0);
    assert_true(n <= SIM_MAX_RESPONSE);
    assert_true(r.noids > 10);
}

static void test_lamp_hours_grow(void **state)
{
    (void)state;
    const sim_model *m = sim_model_get(SIM_MODEL_CHRISTIE);
    sim_oid o;
    assert_int_equal(sim_oid_parse("1.3.6.1.4.1.25766.1.12.1.1.3.5.1.6.1", &o), 0);
    long i = sim_mib_find(&m->mib, &o);
    assert_true(i >= 0);
    sim_value a, b;
    char s[64];
    sim_device_value(&DEV, &m->mib.e[i], 0, &a, s, sizeof s);
    sim_device_value(&DEV, &m->mib.e[i], 100LL * 3600 * 1000, &b, s, sizeof s);
    assert_true(b.num > a.num + 50);
}

/* The benchmark device serves exactly 40 scalars + 20x5 cells, Counter64 included. */
static void test_bench_model(void **state)
{
    (void)state;
    const sim_model *m = sim_model_get(SIM_MODEL_BENCH);
    assert_non_null(m);
    assert_int_equal(m->mib.n, 140);
    sim_device dev;
    sim_device_init(&dev, SIM_MODEL_BENCH, 1, 1, 0, 1);
    CUR = &dev;
    static sim_request r;
    uint8_t out[SIM_MAX_RESPONSE];
    size_t n;
    /* walk everything with GETNEXT from the root: 140 OIDs, then endOfMibView */
    sim_oid at;
    assert_int_equal(sim_oid_parse(SIM_BENCH_ROOT, &at), 0);
    int count = 0, types[256] = {0};
    char oid[512], scratch[128];
    for (;;) {
        size_t k = 0;
        for (size_t i = 0; i < at.len; i++)
            k += (size_t)snprintf(oid + k, sizeof oid - k, i ? ".%u" : "%u", at.sub[i]);
        const char *q[] = {oid};
        assert_int_equal(respond(1, "public", SIM_PDU_GETNEXT, 0, 0, q, 1, &r, &n, out), 0);
        if (has_byte_seq(out + n - 2, 2, (const uint8_t[]){0x82, 0x00}, 2)) break;
        at = r.oids[0];
        long e = sim_mib_find(&m->mib, &at);
        assert_true(e >= 0);
        sim_value v;
        sim_device_value(&dev, &m->mib.e[e], 1000, &v, scratch, sizeof scratch);
        types[v.tag]++;
        count++;
        assert_true(count <= 140);
    }
    assert_int_equal(count, 140);
    assert_int_equal(types[SIM_TAG_INT], 7 + 20);
    assert_int_equal(types[SIM_TAG_GAUGE32], 7 + 20);
    assert_int_equal(types[SIM_TAG_COUNTER32], 7 + 20);
    assert_int_equal(types[SIM_TAG_COUNTER64], 7 + 20);
    assert_int_equal(types[SIM_TAG_OCTETS], 6 + 20);
    assert_int_equal(types[SIM_TAG_TIMETICKS], 6);
    /* a Counter64 above 2^32 goes out as tag 0x46 with its 6 content bytes */
    const char *c64[] = {SIM_BENCH_ROOT ".1.4.0"};
    assert_int_equal(respond(1, "public", SIM_PDU_GET, 0, 0, c64, 1, &r, &n, out), 0);
    uint64_t want = (uint64_t)(5e12 + 1e9 * 4 + 1e6 * 4 * 1.0);
    uint8_t enc[8] = {0x46, 6};
    for (int i = 0; i < 6; i++)
        enc[2 + i] = (uint8_t)(want >> (8 * (5 - i)));
    assert_true(has_byte_seq(out, n, enc, 8));
    /* SNMPv1 has no Counter64: GET answers noSuchName, GETNEXT skips it */
    assert_int_equal(respond(0, "public", SIM_PDU_GET, 0, 0, c64, 1, &r, &n, out),
                     SIM_ERR_NOSUCHNAME);
    const char *before[] = {SIM_BENCH_ROOT ".1.3.0"};
    assert_int_equal(respond(0, "public", SIM_PDU_GETNEXT, 0, 0, before, 1, &r, &n, out), 0);
    sim_oid next;
    assert_int_equal(sim_oid_parse(SIM_BENCH_ROOT ".1.5.0", &next), 0);
    assert_int_equal(sim_oid_cmp(&r.oids[0], &next), 0);
    CUR = &DEV;
}

/* The Barco-like projector serves every OID of devices.md §1.4 / §6 item 4. */
static void test_barco_oids(void **state)
{
    (void)state;
    sim_device dev;
    sim_device_init(&dev, SIM_MODEL_BARCO, 2, 1, 0, 1);
    CUR = &dev;
    static sim_request r;
    uint8_t out[SIM_MAX_RESPONSE];
    size_t n;
    const char *oids[] = {
        "1.3.6.1.2.1.1.1.0",
        "1.3.6.1.4.1.12612.220.11.2.2.1.0",
        "1.3.6.1.4.1.12612.220.11.1.2.12.0",
        "1.3.6.1.4.1.12612.220.11.1.2.18.0",
        "1.3.6.1.4.1.12612.220.11.2.2.4.1.0",
        "1.3.6.1.4.1.12612.220.11.2.2.4.2.0",
        "1.3.6.1.4.1.12612.220.11.2.2.4.8.1.2.0",
        "1.3.6.1.4.1.12612.220.11.2.2.4.8.1.2.1",
        "1.3.6.1.4.1.12612.220.11.2.2.4.6.0",
        "1.3.6.1.4.1.12612.220.11.2.2.5.0",
        "1.3.6.1.4.1.12612.220.11.4.2.1.1.1.2.1",
        "1.3.6.1.4.1.12612.220.11.4.2.1.1.1.8.2",
        "1.3.6.1.4.1.12612.220.11.4.2.1.2.1.2.1",
        "1.3.6.1.4.1.12612.220.11.4.2.1.3.1.2.1",
    };
    size_t k = sizeof oids / sizeof *oids;
    assert_int_equal(respond(0, "public", SIM_PDU_GET, 0, 0, oids, k, &r, &n, out), 0);
    assert_int_equal(r.noids, k);
    const uint8_t lamp[] = "\x04\x0aLamp House";
    assert_true(has_byte_seq(out, n, lamp, 12));
    /* sysObjectID under 12612.220.11 */
    const char *soid[] = {"1.3.6.1.2.1.1.2.0"};
    assert_int_equal(respond(1, "public", SIM_PDU_GET, 0, 0, soid, 1, &r, &n, out), 0);
    const uint8_t pen[] = {0x2b, 6, 1, 4, 1, 0xe2, 0x44, 0x81, 0x5c, 0x0b};
    assert_true(has_byte_seq(out, n, pen, sizeof pen));
    /* runtime minutes .0 follow the lamp hours */
    const sim_model *m = sim_model_get(SIM_MODEL_BARCO);
    sim_oid o;
    assert_int_equal(sim_oid_parse("1.3.6.1.4.1.12612.220.11.2.2.4.8.1.2.0", &o), 0);
    long i = sim_mib_find(&m->mib, &o);
    assert_true(i >= 0);
    sim_value v;
    char s[64];
    int64_t at = 10LL * 3600 * 1000;
    sim_device_value(&dev, &m->mib.e[i], at, &v, s, sizeof s);
    assert_int_equal(v.num, (int64_t)(sim_device_lamp_hours(&dev, at) * 60));
    CUR = &DEV;
}

/* Traps: vendor OIDs, the encoded datagram, the rate limit, the temperature hysteresis. */
static void test_traps(void **state)
{
    (void)state;
    sim_device barco, host;
    sim_device_init(&barco, SIM_MODEL_BARCO, 2, 1, 0, 3600);
    sim_device_init(&host, SIM_MODEL_HOST, 1, 1, 0, 1);
    sim_oid o, want;
    assert_int_equal(sim_trap_oid(&DEV, SIM_TRAP_TEMP, SIM_FAULT_NONE, &o), 0);
    assert_int_equal(sim_oid_parse("1.3.6.1.4.1.25766.1.11.100.3.0.3", &want), 0);
    assert_int_equal(sim_oid_cmp(&o, &want), 0);
    assert_int_equal(sim_trap_oid(&barco, SIM_TRAP_FAULT, SIM_FAULT_SLOW, &o), 0);
    assert_int_equal(sim_oid_parse("1.3.6.1.4.1.12612.220.11.1.3.0.1", &want), 0);
    assert_int_equal(sim_oid_cmp(&o, &want), 0);
    assert_int_equal(sim_trap_oid(&host, SIM_TRAP_FAULT, SIM_FAULT_SLOW, &o), -1);

    sim_trap_state ts = {.next_id = 7};
    uint8_t out[SIM_MAX_RESPONSE];
    size_t n =
        sim_trap_build(&ts, &DEV, SIM_TRAP_FAULT, SIM_FAULT_CLOSE, "public", 5000, out, sizeof out);
    assert_true(n > 0);
    /* the decoder takes a Response: relabel the SNMPv2-Trap PDU and check the varbinds */
    static sim_request r;
    uint8_t copy[SIM_MAX_RESPONSE];
    memcpy(copy, out, n);
    size_t at = 2 + 3 + 2 + 6; /* SEQ hdr, version, community "public" */
    assert_int_equal(copy[at], 0xA7);
    copy[at] = SIM_PDU_RESPONSE;
    assert_int_equal(sim_ber_decode_request(copy, n, &r), 0);
    assert_int_equal(r.version, 1);
    assert_int_equal(r.request_id, 7);
    assert_int_equal(r.noids, 3);
    assert_int_equal(sim_oid_parse("1.3.6.1.2.1.1.3.0", &want), 0);
    assert_int_equal(sim_oid_cmp(&r.oids[0], &want), 0);
    assert_int_equal(sim_oid_parse("1.3.6.1.6.3.1.1.4.1.0", &want), 0);
    assert_int_equal(sim_oid_cmp(&r.oids[1], &want), 0);
    /* Christie interlock trap .0.2 as the value of snmpTrapOID.0 */
    const uint8_t ilk[] = {0x06, 0x0e, 0x2b, 6, 1, 4, 1, 0x81, 0xc9, 0x26, 1, 0x0b, 0x64, 3, 0, 2};
    assert_true(has_byte_seq(out, n, ilk, sizeof ilk));
    /* rate limit: a second trap within 10 s is held back, one after it goes out */
    assert_int_equal(sim_trap_build(&ts, &DEV, SIM_TRAP_FAULT, SIM_FAULT_SLOW, "public",
                                    5000 + SIM_TRAP_MIN_GAP_MS - 1, out, sizeof out),
                     0);
    assert_int_equal(ts.suppressed, 1);
    assert_true(sim_trap_build(&ts, &DEV, SIM_TRAP_FAULT, SIM_FAULT_SLOW, "public",
                               5000 + SIM_TRAP_MIN_GAP_MS, out, sizeof out) > 0);
    assert_int_equal(ts.sent, 2);
    assert_int_equal(sim_trap_build(&ts, &host, SIM_TRAP_FAULT, SIM_FAULT_SLOW, "public", 100000,
                                    out, sizeof out),
                     0);
    /* temperature: at 3600x speed the lamp house passes 86 C during some show; one trap per
     * crossing (hysteresis), re-armed below the limit */
    sim_trap_state th = {0};
    int crossings = 0, rearmed = 0;
    for (int64_t t = 0; t < 3600 * 1000; t += 100) {
        int was = th.hot;
        crossings += sim_trap_temp_check(&th, &barco, t);
        if (was && !th.hot) rearmed++;
        double limit, v = sim_device_hot_temp(&barco, t, NULL, &limit);
        assert_true(limit == 86.0);
        if (!was && th.hot) assert_true(v >= limit);
    }
    assert_true(crossings >= 1);
    assert_true(crossings <= rearmed + 1);
    n = sim_trap_build(&ts, &barco, SIM_TRAP_TEMP, SIM_FAULT_NONE, "public", 10000000, out,
                       sizeof out);
    assert_true(n > 0);
    memcpy(copy, out, n);
    copy[at] = SIM_PDU_RESPONSE;
    assert_int_equal(sim_ber_decode_request(copy, n, &r), 0);
    assert_int_equal(r.noids, 4);
    assert_int_equal(sim_oid_parse("1.3.6.1.4.1.12612.220.11.4.2.1.1.1.2.2", &want), 0);
    assert_int_equal(sim_oid_cmp(&r.oids[3], &want), 0);
}

/* linkDown / linkUp encoded as the value of snmpTrapOID.0 */
static const uint8_t LINK_DOWN_OID[] = {0x06, 0x09, 0x2b, 6, 1, 6, 3, 1, 1, 5, 3};
static const uint8_t LINK_UP_OID[] = {0x06, 0x09, 0x2b, 6, 1, 6, 3, 1, 1, 5, 4};

/* Decode a trap (relabelled as a Response) into r; returns the number of varbinds. */
static size_t decode_trap(const uint8_t *out, size_t n, sim_request *r)
{
    static uint8_t copy[SIM_MAX_RESPONSE];
    assert_true(n > 0 && n <= sizeof copy);
    memcpy(copy, out, n);
    assert_true(n > 2 && copy[0] == 0x30);
    size_t hdr = copy[1] < 0x80 ? 2 : 2 + (size_t)(copy[1] & 0x7f); /* SEQ header */
    size_t at = hdr + 3 + 2 + 6; /* version, community "public" */
    assert_true(at < n);
    assert_int_equal(copy[at], 0xA7);
    copy[at] = SIM_PDU_RESPONSE;
    assert_int_equal(sim_ber_decode_request(copy, n, r), 0);
    return r->noids;
}

/* 1 when the encoded varbind (oid = INTEGER v) is in b[0..n). */
static int has_int_varbind(const uint8_t *b, size_t n, const char *oid, int64_t v)
{
    sim_oid o;
    assert_int_equal(sim_oid_parse(oid, &o), 0);
    sim_value val = {.tag = SIM_TAG_INT, .num = v};
    uint8_t vb[64];
    size_t pos = 0;
    assert_int_equal(sim_ber_put_varbind(vb, sizeof vb, &pos, &o, &val), 0);
    return has_byte_seq(b, n, vb, pos);
}

/* A silent episode is linkDown (SNMPv2-MIB, with ifIndex/ifAdminStatus/ifOperStatus of
 * interface 1), its end linkUp; both bypass the rate limit and leave it to vendor traps. */
static void test_link_traps(void **state)
{
    (void)state;
    sim_device barco, host;
    sim_device_init(&barco, SIM_MODEL_BARCO, 2, 1, 0, 1);
    sim_device_init(&host, SIM_MODEL_HOST, 1, 1, 0, 1);
    sim_oid o, want;
    assert_int_equal(sim_trap_oid(&DEV, SIM_TRAP_FAULT, SIM_FAULT_SILENT, &o), 0);
    assert_int_equal(sim_oid_parse("1.3.6.1.6.3.1.1.5.3", &want), 0);
    assert_int_equal(sim_oid_cmp(&o, &want), 0);
    assert_int_equal(sim_trap_oid(&barco, SIM_TRAP_LINK_DOWN, SIM_FAULT_NONE, &o), 0);
    assert_int_equal(sim_oid_cmp(&o, &want), 0);
    assert_int_equal(sim_trap_oid(&barco, SIM_TRAP_LINK_UP, SIM_FAULT_NONE, &o), 0);
    assert_int_equal(sim_oid_parse("1.3.6.1.6.3.1.1.5.4", &want), 0);
    assert_int_equal(sim_oid_cmp(&o, &want), 0);
    assert_int_equal(sim_trap_oid(&host, SIM_TRAP_LINK_DOWN, SIM_FAULT_NONE, &o), -1);

    /* a vendor trap, then a silent episode right after it: the linkDown is not held back */
    sim_trap_state ts = {.next_id = 1};
    uint8_t out[SIM_MAX_RESPONSE];
    static sim_request r;
    assert_true(sim_trap_build(&ts, &DEV, SIM_TRAP_FAULT, SIM_FAULT_SLOW, "public", 1000, out,
                               sizeof out) > 0);
    DEV.fault.silent_until_ms = 1100 + 5000;
    assert_int_equal(sim_trap_link_up_due(&ts, &DEV, 1100), 0);
    size_t n = sim_trap_build(&ts, &DEV, SIM_TRAP_FAULT, SIM_FAULT_SILENT, "public", 1100, out,
                              sizeof out);
    assert_int_equal(ts.suppressed, 0);
    assert_int_equal(ts.link_down, 1);
    assert_int_equal(decode_trap(out, n, &r), 6);
    const char *order[] = {"1.3.6.1.2.1.1.3.0",     "1.3.6.1.6.3.1.1.4.1.0",
                           "1.3.6.1.2.1.2.2.1.1.1", "1.3.6.1.2.1.2.2.1.7.1",
                           "1.3.6.1.2.1.2.2.1.8.1", "1.3.6.1.2.1.1.5.0"};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(sim_oid_parse(order[i], &want), 0);
        assert_int_equal(sim_oid_cmp(&r.oids[i], &want), 0);
    }
    /* snmpTrapOID.0 = linkDown; ifIndex.1 = 1, ifAdminStatus.1 = up(1), ifOperStatus.1 = down(2) */
    assert_true(has_byte_seq(out, n, LINK_DOWN_OID, sizeof LINK_DOWN_OID));
    assert_true(has_int_varbind(out, n, "1.3.6.1.2.1.2.2.1.1.1", 1));
    assert_true(has_int_varbind(out, n, "1.3.6.1.2.1.2.2.1.7.1", 1));
    assert_true(has_int_varbind(out, n, "1.3.6.1.2.1.2.2.1.8.1", 2));
    /* the episode runs: no linkUp yet; it ends: linkUp is due, even inside the 10 s gap */
    assert_int_equal(sim_trap_link_up_due(&ts, &DEV, 6099), 0);
    assert_int_equal(sim_trap_link_up_due(&ts, &DEV, 6100), 1);
    n = sim_trap_build(&ts, &DEV, SIM_TRAP_LINK_UP, SIM_FAULT_NONE, "public", 6100, out,
                       sizeof out);
    assert_int_equal(decode_trap(out, n, &r), 6);
    assert_true(has_byte_seq(out, n, LINK_UP_OID, sizeof LINK_UP_OID));
    assert_true(has_int_varbind(out, n, "1.3.6.1.2.1.2.2.1.8.1", 1));
    assert_int_equal(r.request_id, 3);
    assert_int_equal(ts.link_down, 0);
    assert_int_equal(sim_trap_link_up_due(&ts, &DEV, 6200), 0);
    assert_int_equal(ts.sent, 3);
    /* link traps did not consume the rate limit: it still counts from the vendor trap */
    assert_int_equal(sim_trap_build(&ts, &DEV, SIM_TRAP_FAULT, SIM_FAULT_GARBLE, "public", 6200,
                                    out, sizeof out),
                     0);
    assert_int_equal(ts.suppressed, 1);
    assert_true(sim_trap_build(&ts, &DEV, SIM_TRAP_FAULT, SIM_FAULT_GARBLE, "public", 11000, out,
                               sizeof out) > 0);
    DEV.fault.silent_until_ms = 0;
}

/* The pairing as cinemon-sim drives it (sim/main.c): a request (every 50 ms, none in every
 * other 10 s stretch) may start a fault episode, after sending the linkUp that is due; a 1 s
 * timer sends the linkUp of an episode that has ended. Over an hour, link traps alternate
 * down, up, down, ...; each linkUp comes at or after its episode's end, within the timer
 * period; linkUps go out from both paths; none is lost. */
static void test_link_pairing(void **state)
{
    (void)state;
    sim_device d;
    sim_device_init(&d, SIM_MODEL_CHRISTIE, 3, 42, 0, 1);
    sim_trap_state ts = {.next_id = 1};
    uint8_t out[SIM_MAX_RESPONSE];
    sim_oid down, o;
    assert_int_equal(sim_oid_parse("1.3.6.1.6.3.1.1.5.3", &down), 0);
    static sim_request r;
    int downs = 0, last = 0, ups_timer = 0, ups_request = 0; /* last: 1 down, 2 up */
    int64_t episode_end = 0;
    for (int64_t t = 50; t < 3600 * 1000; t += 50) {
        int timer = t % 1000 == 0, request = (t / 10000) % 2 == 0;
        if (!timer && !request) continue;
        if (sim_trap_link_up_due(&ts, &d, t)) {
            size_t n = sim_trap_build(&ts, &d, SIM_TRAP_LINK_UP, SIM_FAULT_NONE, "public", t, out,
                                      sizeof out);
            assert_true(n > 0);
            assert_int_equal(decode_trap(out, n, &r), 6);
            assert_true(has_byte_seq(out, n, LINK_UP_OID, sizeof LINK_UP_OID));
            assert_int_equal(last, 1);
            assert_true(t >= episode_end && t < episode_end + 1000);
            last = 2;
            if (timer)
                ups_timer++;
            else
                ups_request++;
        }
        if (!request) continue;
        int was_silent = t < d.fault.silent_until_ms;
        sim_fault f = sim_fault_decide(&d.fault, 0.002, t);
        if (f == SIM_FAULT_NONE || was_silent) continue;
        size_t n = sim_trap_build(&ts, &d, SIM_TRAP_FAULT, f, "public", t, out, sizeof out);
        if (f != SIM_FAULT_SILENT) continue; /* vendor traps may be rate-limited */
        assert_true(n > 0);
        assert_int_equal(decode_trap(out, n, &r), 6);
        assert_true(has_byte_seq(out, n, LINK_DOWN_OID, sizeof LINK_DOWN_OID));
        assert_int_equal(sim_trap_oid(&d, SIM_TRAP_FAULT, f, &o), 0);
        assert_int_equal(sim_oid_cmp(&o, &down), 0);
        assert_int_not_equal(last, 1);
        assert_int_equal(ts.link_down, 1);
        last = 1;
        downs++;
        episode_end = d.fault.silent_until_ms;
        assert_true(episode_end - t >= 5000 && episode_end - t < 20000);
    }
    assert_true(downs >= 10);
    assert_true(ups_timer > 0 && ups_request > 0);
    assert_true(ups_timer + ups_request == downs || ups_timer + ups_request == downs - 1);
    assert_true(ts.sent >= (uint64_t)(downs + ups_timer + ups_request)); /* all went out */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_oid_128),
        cmocka_unit_test(test_malformed),       cmocka_unit_test(test_truncations_of_valid),
        cmocka_unit_test(test_get_semantics),   cmocka_unit_test(test_getbulk),
        cmocka_unit_test(test_lamp_hours_grow), cmocka_unit_test(test_bench_model),
        cmocka_unit_test(test_barco_oids),      cmocka_unit_test(test_traps),
        cmocka_unit_test(test_link_traps),      cmocka_unit_test(test_link_pairing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* fuzz_nec.c — libFuzzer target for the binary reply decoder of the text driver
 * (agent/text_profile.c: ag_bin_frame_len, ag_bin_check, ag_bin_value_get) and the binary keys
 * of text profiles. The first input byte % 3 picks the mode. 0: the rest is a byte stream from
 * a device, cut into frames exactly as agent/text.c does, each checked and decoded against
 * every command of a fixed NEC NC-series-like profile (header-length, fixed-length, int, ascii
 * values). 1: the rest is a profile document, parsed (never a crash, a leak or an error without
 * a "$" JSON path) and, when valid, its commands decode a fixed NEC status reply. 2: the rest
 * picks keys and values from a pool to build binary commands, checked the same way.
 * (make fuzz builds it from the lines below.) */
// fuzz-sources: agent/text_profile.c agent/profile.c agent/http_profile.c agent/profile_json.c
// fuzz-sources: agent/xml_find.c common/wire.c common/batch.c common/arena.c common/errbuf.c
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text_profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fixed =
    "{\"commands\": ["
    "{\"send_hex\": \"00 85 00 00 01 01 87\","
    " \"reply\": {\"prefix\": \"20 85\", \"length_at\": 4, \"length_add\": 6,"
    "  \"checksum\": \"sum8\", \"error_mask\": 128},"
    " \"values\": [{\"at\": 10, \"size\": 1, \"metric\": \"power_state\", \"enum\": {\"0\": 4, "
    "\"4\": 1}},"
    "  {\"at\": 19, \"size\": 2, \"endian\": \"little\", \"metric\": \"h\", \"labels\": {\"lamp\": "
    "\"1\"}},"
    "  {\"at\": 5, \"size\": 4, \"type\": \"int\", \"endian\": \"big\", \"metric\": \"i\"},"
    "  {\"at\": 6, \"size\": 16, \"type\": \"ascii\", \"identity\": \"serial\"},"
    "  {\"at\": 5, \"size\": 3, \"type\": \"ascii\", \"metric\": \"t\"}]},"
    "{\"send_hex\": \"03 94\","
    " \"reply\": {\"length\": 11, \"checksum\": \"none\", \"error_mask\": 64},"
    " \"values\": [{\"at\": 5, \"size\": 4, \"endian\": \"little\", \"metric\": \"s\", \"scale\": "
    "0.5},"
    "  {\"at\": 7, \"size\": 3, \"endian\": \"big\", \"metric\": \"u\"}]}]}";

static ag_text_profile g_fixed;
static int g_ready;

/* One frame through what text.c does with it. */
static void decode(const ag_text_cmd *c, const unsigned char *f, size_t len)
{
    char why[192], str[AG_TEXT_MAX_LINE + 1];
    int rc = ag_bin_check(&c->reply, f, len, why, sizeof why);
    if (rc < -1 || rc > AG_BIN_DEVICE_ERROR || strlen(why) >= sizeof why) __builtin_trap();
    if (rc != 0) return;
    size_t body = len - (c->reply.sum8 && len > 0 ? 1 : 0);
    for (size_t i = 0; i < c->nvalues; i++) {
        const ag_bin_value *v = &c->values[i];
        double x = 0;
        if (ag_bin_value_get(v, f, body, &x, str, sizeof str, why, sizeof why) < 0) {
            if (v->at + v->size <= body) __builtin_trap(); /* it was there */
            continue;
        }
        if (v->at + v->size > body) __builtin_trap();
        if (v->type == AG_BIN_ASCII) {
            if (strlen(str) > v->size) __builtin_trap();
            if (v->metric) {
                ag_raw raw = {AG_RAW_STR, 0, str, strlen(str)};
                (void)ag_value_map_apply(&v->map, &raw, &x, why, sizeof why);
            }
        } else {
            if (v->type == AG_BIN_UINT && (x < 0 || x > 4294967295.0)) __builtin_trap();
            ag_raw raw = {AG_RAW_NUM, x, NULL, 0};
            (void)ag_value_map_apply(&v->map, &raw, &x, why, sizeof why);
        }
    }
}

/* A device's byte stream cut into frames as text.c does, for command k. */
static void stream(const ag_text_cmd *c, const unsigned char *d, size_t n)
{
    unsigned char buf[AG_BIN_MAX_REPLY];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        buf[len++] = d[i];
        size_t need = ag_bin_frame_len(&c->reply, buf, len);
        if (need > AG_BIN_MAX_REPLY) __builtin_trap();
        if (need && len >= need) {
            if (len != need) __builtin_trap();
            decode(c, buf, len);
            len = 0;
            continue;
        }
        if (len >= sizeof buf) __builtin_trap(); /* frames are bounded */
    }
}

static void check_doc(json_t *doc)
{
    static const unsigned char status[22] = {0x20, 0x85, 0x00, 0xC0, 0x10, 0, 0, 1, 0,    0,   4,
                                             0,    0,    0,    1,    0,    0, 0, 0, 0xD2, 0x04};
    char err[512];
    ag_text_profile tp;
    if (ag_text_profile_parse(doc, "fuzz", &tp, err, sizeof err) == 0) {
        for (size_t i = 0; i < tp.ncmds; i++) {
            if (!tp.cmds[i].bin) continue;
            if (tp.cmds[i].binlen == 0 || tp.cmds[i].binlen > AG_BIN_MAX_SEND) __builtin_trap();
            stream(&tp.cmds[i], status, sizeof status);
            decode(&tp.cmds[i], status, sizeof status);
        }
        ag_text_profile_free(&tp);
    } else if (!strstr(err, "fuzz: $")) {
        __builtin_trap();
    }
}

static const char *const cmd_pool[] = {"send_hex", "reply", "values", "note", "send"};
static const char *const reply_pool[] = {"prefix",   "length",     "length_at", "length_add",
                                         "checksum", "error_mask", "x"};
static const char *const value_pool[] = {"at",   "size",  "type",   "endian", "metric", "identity",
                                         "unit", "scale", "offset", "enum",   "labels"};

static json_t *pool_value(uint8_t b)
{
    static const char *const strs[] = {"00 85 00 00 01 01 87",
                                       "20 85",
                                       "A0",
                                       "0",
                                       "sum8",
                                       "none",
                                       "little",
                                       "big",
                                       "ascii",
                                       "int",
                                       "uint",
                                       "serial",
                                       "x",
                                       "Bad Name",
                                       "",
                                       "zz"};
    size_t ns = sizeof strs / sizeof *strs;
    if (b < ns) return json_string(strs[b]);
    switch (b % 8) {
    case 0:
        return json_integer(b % 5);
    case 1:
        return json_integer((b * 7) % 600 - 40);
    case 2:
        return json_pack("{s:i,s:i}", "1", 1, "4", 2);
    case 3:
        return json_pack("{s:s}", "lamp", "1");
    case 4:
        return json_real(0.25);
    case 5:
        return json_array();
    case 6:
        return json_null();
    default:
        return json_integer(128);
    }
}

static json_t *build_obj(const uint8_t *d, size_t n, size_t *i, const char *const *keys,
                         size_t nkeys)
{
    json_t *o = json_object();
    size_t pairs = *i < n ? d[(*i)++] % 8 : 0;
    for (size_t k = 0; k < pairs && *i + 1 < n; k++, *i += 2)
        json_object_set_new(o, keys[d[*i] % nkeys], pool_value(d[*i + 1] % 32));
    return o;
}

static json_t *build_doc(const uint8_t *d, size_t n)
{
    json_t *doc = json_object(), *cmds = json_array();
    json_object_set_new(doc, "commands", cmds);
    size_t i = 0;
    while (i < n && json_array_size(cmds) < 8) {
        json_t *c = build_obj(d, n, &i, cmd_pool, sizeof cmd_pool / sizeof *cmd_pool);
        json_object_set_new(c, "send_hex", json_string("00 85 00 00 01 01 87"));
        json_object_set_new(
            c, "reply", build_obj(d, n, &i, reply_pool, sizeof reply_pool / sizeof *reply_pool));
        json_t *vals = json_array();
        size_t nv = i < n ? d[i++] % 4 : 0;
        for (size_t k = 0; k < nv; k++)
            json_array_append_new(
                vals, build_obj(d, n, &i, value_pool, sizeof value_pool / sizeof *value_pool));
        json_object_set_new(c, "values", vals);
        json_array_append_new(cmds, c);
    }
    return doc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    if (!g_ready) {
        json_t *doc = json_loads(fixed, 0, NULL);
        if (!doc || ag_text_profile_parse(doc, "fixed", &g_fixed, err, sizeof err) != 0)
            __builtin_trap();
        json_decref(doc);
        g_ready = 1;
    }
    if (size == 0) return 0;
    const uint8_t *rest = data + 1;
    size_t len = size - 1;
    if (data[0] % 3 == 0) {
        for (size_t i = 0; i < g_fixed.ncmds; i++) {
            stream(&g_fixed.cmds[i], rest, len);
            decode(&g_fixed.cmds[i], rest, len); /* also as one frame of any length */
        }
        return 0;
    }
    json_t *doc = data[0] % 3 == 1
                      ? json_loadb((const char *)rest, len, JSON_REJECT_DUPLICATES, NULL)
                      : build_doc(rest, len);
    if (!doc) return 0;
    check_doc(doc);
    json_decref(doc);
    return 0;
}

/* fuzz_text.c — libFuzzer target for the text-protocol profile parser and reply matcher
 * (agent/text_profile.c): the first input byte % 3 picks the mode. 0: the rest is a reply
 * line, matched against every command of a fixed CP750-like profile, and what matches is
 * mapped through the command's value map. 1: the rest is a profile document, parsed and
 * checked (never a crash, a leak or an error without a "$" JSON path), and its commands match
 * a fixed line. 2: the rest picks keys and values from a pool to build commands (reaches the
 * checks that random JSON rarely does), checked the same way.
 * (make fuzz builds it from the line below.) */
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
    "{\"send\": \"cp750.sys.fader ?\", \"expect\": \"^cp750\\\\.sys\\\\.fader ([0-9]+)$\","
    " \"metric\": \"audio_fader_level\", \"scale\": 0.1},"
    "{\"send\": \"cp750.sys.mute ?\", \"expect\": \"^cp750\\\\.sys\\\\.mute ([01])$\","
    " \"metric\": \"audio_mute\"},"
    "{\"send\": \"m ?\", \"expect\": \"^cp750\\\\.sys\\\\.input_mode ([a-z0-9_]+)$\","
    " \"metric\": \"audio_input_mode\", \"enum\": {\"analog\": 0, \"dig_1\": 1}},"
    "{\"send\": \"v ?\", \"expect\": \"^([^ ]*) ?(.*)$\", \"metric\": \"any_number\"},"
    "{\"send\": \"s ?\", \"expect\": \"^cp750\\\\.sys\\\\.serial_number (.+)$\","
    " \"identity\": \"serial\"}]}";

static ag_text_profile g_fixed;
static int g_ready;

static void check_matches(const ag_text_profile *tp, const char *line, size_t len)
{
    char val[AG_TEXT_MAX_LINE + 1];
    for (size_t i = 0; i < tp->ncmds; i++) {
        const ag_text_cmd *c = &tp->cmds[i];
        if (!ag_text_match(c, line, len, val, sizeof val)) continue;
        size_t vl = strlen(val);
        if (vl > len) __builtin_trap();
        if (c->metric) {
            ag_raw raw = {AG_RAW_STR, 0, val, vl};
            double x;
            char err[128];
            (void)ag_value_map_apply(&c->map, &raw, &x, err, sizeof err);
        }
    }
}

static void check_doc(json_t *doc)
{
    char err[512];
    ag_text_profile tp;
    if (ag_text_profile_parse(doc, "fuzz", &tp, err, sizeof err) == 0) {
        check_matches(&tp, "cp750.sys.fader 70", 18);
        check_matches(&tp, "a 1", 3);
        ag_text_profile_free(&tp);
    } else if (!strstr(err, "fuzz: $")) {
        __builtin_trap();
    }
}

static const char *const pool_keys[] = {"send",  "expect", "metric", "identity", "unit",
                                        "scale", "offset", "enum",   "note",     "oid"};

static json_t *pool_value(uint8_t b)
{
    static const char *const strs[] = {
        "a ?",    "^a (.*)$", "^a [0-9]+$", "(", "((a{200}){200})", "audio_mute", "Bad Name",
        "serial", "colour",   "a\r",        "",  "^a ([0-9]{1,3})$"};
    size_t ns = sizeof strs / sizeof *strs;
    if (b < ns) return json_string(strs[b]);
    switch (b % 8) {
    case 0:
        return json_real(0.1);
    case 1:
        return json_integer(7);
    case 2:
        return json_pack("{s:i,s:i}", "1", 1, "a 1", 2);
    case 3:
        return json_object();
    case 4:
        return json_pack("{s:s}", "x", "1");
    case 5:
        return json_array();
    case 6:
        return json_null();
    default:
        return json_true();
    }
}

static json_t *build_doc(const uint8_t *d, size_t n)
{
    json_t *doc = json_object(), *cmds = json_array();
    json_object_set_new(doc, "commands", cmds);
    size_t i = 0;
    if (n > 0 && d[0] & 1) json_object_set_new(doc, "port", pool_value(d[0] >> 1));
    if (n > 0 && d[0] & 0x80)
        json_object_set_new(doc, "line_end", json_string(d[0] & 2 ? "\n" : "x"));
    if (n > 0) i = 1;
    while (i < n && json_array_size(cmds) < 70) {
        size_t pairs = d[i++] % 7;
        json_t *c = json_object();
        for (size_t k = 0; k < pairs && i + 1 < n; k++, i += 2)
            json_object_set_new(c, pool_keys[d[i] % (sizeof pool_keys / sizeof *pool_keys)],
                                pool_value(d[i + 1] % 24));
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
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] % 3 == 0) {
        check_matches(&g_fixed, rest, len);
        return 0;
    }
    json_t *doc = data[0] % 3 == 1 ? json_loadb(rest, len, JSON_REJECT_DUPLICATES, NULL)
                                   : build_doc((const uint8_t *)rest, len);
    if (!doc) return 0;
    check_doc(doc);
    if (ag_text_profile_check(doc, "fuzz", err, sizeof err) > 0) __builtin_trap();
    json_decref(doc);
    return 0;
}

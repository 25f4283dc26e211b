/* fuzz_http_map.c — libFuzzer target for the HTTP/JSON profile parser, the RFC 6901 resolver
 * and the answer → sample mapper (agent/http_profile.c).
 *
 * The input is used three ways: as a device's JSON answer mapped through a fixed LED-screen
 * request (each, labels, enum, scale, identity); as a JSON pointer resolved against that same
 * answer and a fixed document; and as a profile document given to ag_http_profile_parse.
 * Nothing may crash, leak, hang or read out of bounds.
 * (make fuzz builds it from the line below.) */
// fuzz-sources: agent/http_profile.c agent/xml_find.c agent/profile.c agent/text_profile.c agent/profile_json.c common/wire.c common/batch.c common/arena.c common/log.c common/timeutil.c
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const profile =
    "{\"requests\": [{\"path\": \"/s\", \"identity\": {\"model\": \"/d/m\", \"serial\": \"/d/s\"},"
    " \"values\": [{\"pointer\": \"/n\", \"metric\": \"screen_luminance_nits\","
    " \"labels\": {\"mode\": \"2d\"}},"
    " {\"pointer\": \"/st\", \"metric\": \"power_state\", \"enum\": {\"on\": 1, \"1\": 2}},"
    " {\"pointer\": \"/a~1b/~0\", \"metric\": \"white_x\", \"scale\": 0.001, \"offset\": 1},"
    " {\"each\": \"/c\", \"label\": {\"cabinet\": \"/id\"}, \"values\": ["
    "  {\"pointer\": \"/t\", \"metric\": \"led_cabinet_temperature_celsius\"},"
    "  {\"each\": \"/cards\", \"label\": {\"card\": \"/0\"}, \"values\": ["
    "   {\"pointer\": \"/1\", \"metric\": \"led_receiving_card_voltage_volts\"}]}]}]}]}";

static ag_http_profile g_hp;
static json_t *g_fixed;
static size_t g_count;

static void emit(void *ud, const char *metric, const char *unit, const cm_label *labels,
                 size_t nlabels, double value)
{
    (void)ud;
    (void)unit;
    (void)value;
    size_t n = strlen(metric);
    for (size_t i = 0; i < nlabels; i++)
        n += strlen(labels[i].key) + strlen(labels[i].value);
    g_count += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_fixed) {
        char err[512];
        json_error_t je;
        json_t *doc = json_loads(profile, 0, &je);
        if (!doc || ag_http_profile_parse("fuzz", doc, &g_hp, err, sizeof err) != 0) abort();
        json_decref(doc);
        g_fixed = json_loads("{\"foo\": [\"bar\", {\"a/b\": [1, 2]}], \"\": 0, \"m~n\": 8}", 0,
                             &je);
        if (!g_fixed) abort();
    }
    /* 1: the input as a device's answer */
    json_error_t je;
    json_t *ans = json_loadb((const char *)data, size, JSON_DECODE_ANY, &je);
    if (ans) {
        char err[256];
        ag_http_identity id;
        memset(&id, 0, sizeof id);
        ag_http_map(&g_hp.reqs[0], ans, emit, NULL, &id, err, sizeof err);
    }
    /* 2: the input as a pointer */
    char ptr[512];
    size_t n = size < sizeof ptr - 1 ? size : sizeof ptr - 1;
    memcpy(ptr, data, n);
    ptr[n] = '\0';
    (void)ag_json_pointer_check(ptr);
    (void)ag_json_pointer_get(g_fixed, ptr);
    if (ans) (void)ag_json_pointer_get(ans, ptr);
    json_decref(ans);
    /* 3: the input as a profile document */
    json_t *doc = json_loadb((const char *)data, size, 0, &je);
    if (doc) {
        char err[512];
        ag_http_profile hp;
        if (ag_http_profile_parse("fuzz", doc, &hp, err, sizeof err) == 0) ag_http_profile_free(&hp);
        json_decref(doc);
    }
    return 0;
}

/* fuzz_xml.c — libFuzzer target for the XML element finder (agent/xml_find.c) and the SOAP
 * answer → sample mapper and session reader (agent/http_profile.c).
 *
 * The input is a device's XML answer: checked by ag_xml_check; searched with ag_xml_find for
 * fixed names (prefixed, "*:" and nested, walking siblings) with ag_xml_text on each element
 * found; mapped through a fixed IMS-like request (each with labels, enum, identity) whether
 * or not it passed the check; read as a login answer. The input is also escaped with
 * ag_xml_escape and the result must check as text. Nothing may crash, leak, hang or read out
 * of bounds. (make fuzz builds it from the line below.) */
// clang-format off
// fuzz-sources: agent/xml_find.c agent/http_profile.c agent/profile.c agent/text_profile.c agent/profile_json.c common/wire.c common/batch.c common/arena.c common/log.c common/timeutil.c
// clang-format on
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_profile.h"
#include "xml_find.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const profile =
    "{\"requests\": [{\"method\": \"POST\", \"path\": \"/l\", \"format\": \"xml\","
    " \"template\": \"<u>${username}</u>\", \"session\": {\"element\": \"sessionId\"},"
    " \"session_error\": {\"status\": [500], \"element\": \"*:Fault\"}},"
    " {\"method\": \"POST\", \"path\": \"/s\", \"format\": \"xml\","
    " \"template\": \"<s>${session}</s>\","
    " \"identity\": {\"model\": \"sys:productName\", \"firmware\": [\"*:v\", \"sys:w\"]},"
    " \"values\": [{\"element\": \"n\", \"metric\": \"white_x\", \"scale\": 0.5},"
    "  {\"each\": \"sys:hardwarePart\", \"label\": {\"part\": \"sys:title\"}, \"values\": ["
    "   {\"element\": \"sys:status\", \"metric\": \"hardware_part_ok\", \"enum\": {\"OK\": 1}},"
    "   {\"each\": \"*:sub\", \"label\": {\"sub\": \"id\"}, \"values\": ["
    "    {\"element\": \"t\", \"metric\": \"temperature_celsius\"}]}]}]}]}";

static ag_http_profile g_hp;
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
    if (!g_hp.nreqs) {
        char err[512];
        json_error_t je;
        json_t *doc = json_loads(profile, 0, &je);
        if (!doc || ag_http_profile_parse("fuzz", doc, &g_hp, err, sizeof err) != 0) abort();
        json_decref(doc);
    }
    /* an exact-size copy, not NUL-terminated, so reads past the end are caught */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    char err[256];
    int ok = ag_xml_check(buf, size, err, sizeof err) == 0;
    static const char *const names[] = {"a", "sys:title", "*:Fault", "*:x", "b:c"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        size_t from = 0;
        for (int i = 0; i < 64; i++) {
            ag_xml_elem e;
            if (ag_xml_find(buf, size, from, names[k], &e) != 1) break;
            if (e.start > e.end || e.end > size || e.next > size || e.next < from) abort();
            char text[64];
            (void)ag_xml_text(buf + e.start, e.end - e.start, text, sizeof text, err, sizeof err);
            if (e.next == from) break;
            from = e.next;
        }
    }
    ag_http_identity id;
    memset(&id, 0, sizeof id);
    int rc = ag_http_map_xml(&g_hp.reqs[1], buf, size, emit, NULL, &id, err, sizeof err);
    if (ok && rc < 0) abort(); /* a checked document never breaks the mapper */
    (void)ag_http_session_lost(&g_hp.reqs[0], &g_hp.reqs[1], 200, buf, size);
    /* as a login answer (needs a NUL-terminated copy) */
    char *z = malloc(size + 1);
    if (z) {
        memcpy(z, data, size);
        z[size] = '\0';
        char sess[AG_HTTP_MAX_SESSION + 1];
        (void)ag_http_session(&g_hp.reqs[0], z, size, sess, sizeof sess, err, sizeof err);
        /* escaped text inside an element is always well-formed */
        size_t need = ag_xml_escape(z, NULL, 0);
        char *esc = malloc(need + 8);
        if (esc) {
            memcpy(esc, "<a>", 3);
            ag_xml_escape(z, esc + 3, need + 1);
            memcpy(esc + 3 + need, "</a>", 4);
            /* NULs and control characters in the input may still make it fail; only a clean
             * input must pass */
            int clean = strlen(z) == size;
            for (size_t i = 0; clean && i < size; i++)
                clean = (unsigned char)z[i] >= 0x20 || z[i] == '\t' || z[i] == '\n' || z[i] == '\r';
            if (clean && need <= AG_XML_MAX_TEXT &&
                ag_xml_check(esc, need + 7, err, sizeof err) != 0)
                abort();
            free(esc);
        }
        free(z);
    }
    free(buf);
    return 0;
}

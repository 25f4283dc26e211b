/* fuzz_pjlink.c — libFuzzer target for the PJLink line parser (agent/pjlink_parse.c).
 *
 * The first input byte picks the command the line is parsed as a reply to; the rest is the
 * line (as received, without its CR). Every value parser runs on whatever value comes out,
 * and the greeting parser on the whole line. Nothing may crash, hang or read out of bounds.
 *   clang -fsanitize=fuzzer,address,undefined -I. -Icommon -Iagent \
 *       tests/fuzz/fuzz_pjlink.c agent/pjlink_parse.c -o build/fuzz_pjlink
 * (make fuzz builds it from the line below.) */
// fuzz-sources: agent/pjlink_parse.c
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pjlink_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const cmds[][2] = {{"1", "CLSS"}, {"1", "POWR"}, {"1", "ERST"}, {"1", "LAMP"},
                                      {"1", "INPT"}, {"1", "AVMT"}, {"1", "INF1"}, {"1", "NAME"},
                                      {"2", "SNUM"}, {"2", "SVER"}, {"2", "FILT"}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    size_t which = data[0] % (sizeof cmds / sizeof *cmds);
    const char *line = (const char *)data + 1;
    size_t len = size - 1;

    pj_greeting g;
    const char *why = NULL;
    int grc = pj_parse_greeting(line, len, &g, &why);
    if (grc == 0 && g.auth && strlen(g.random) > PJ_MAX_RANDOM) __builtin_trap();

    pj_reply r;
    pj_kind k = pj_parse_reply(line, len, cmds[which][0][0], cmds[which][1], &r);
    if (k != PJ_VALUE) return 0;
    if (r.value < line || r.value + r.len > line + len) __builtin_trap();

    int i, a, b, e[6];
    long l;
    pj_lamp lamps[PJ_MAX_LAMPS];
    size_t n = 0;
    char text[64];
    (void)pj_value_class(r.value, r.len, &i);
    (void)pj_value_power(r.value, r.len, &i);
    (void)pj_value_errors(r.value, r.len, e);
    if (pj_value_lamps(r.value, r.len, lamps, PJ_MAX_LAMPS, &n) == 0 &&
        (n == 0 || n > PJ_MAX_LAMPS))
        __builtin_trap();
    (void)pj_value_input(r.value, r.len, &i);
    (void)pj_value_mute(r.value, r.len, &a, &b);
    (void)pj_value_uint(r.value, r.len, &l);
    size_t tl = pj_value_text(r.value, r.len, text, sizeof text);
    if (tl >= sizeof text || text[tl] != '\0') __builtin_trap();
    return 0;
}

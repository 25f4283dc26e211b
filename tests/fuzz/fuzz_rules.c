/* fuzz_rules.c — libFuzzer target for the rule loader (collector/rules.c) and, on what loads,
 * the judge (collector/judge.c).
 *
 * The input is a rules file; after a first NUL byte, the rest is an overrides file for those
 * rules. Whatever loads judges a few samples and events and ticks, so every rule kind,
 * choice and override is evaluated. Nothing may crash, leak, hang or read out of bounds, and
 * a refused file must say why.
 *   clang -fsanitize=fuzzer,address,undefined -I. -Icommon -Icollector tests/fuzz/fuzz_rules.c \
 *       collector/rules.c collector/judge.c common/wire.c common/batch.c common/arena.c \
 *       common/errbuf.c common/timeutil.c -ljansson -lpthread -lm -o build-fuzz/fuzz_rules
 * (make fuzz builds it from the lines below.) */
// fuzz-sources: collector/rules.c collector/judge.c common/wire.c common/batch.c common/arena.c
// fuzz-sources: common/errbuf.c common/timeutil.c common/log.c
// fuzz-seeds: collector/rules/*.json
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "judge.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int screen_cb(void *ud, const char *site, const char *screen, co_screen_settings *out)
{
    (void)ud;
    (void)site;
    out->cls = screen[0] == 'r' ? CO_CLASS_REVIEW : CO_CLASS_THEATRE;
    out->display = screen[0] == 'l' ? CO_DISPLAY_LED : CO_DISPLAY_PROJECTION;
    return 1;
}

static int ref_cb(void *ud, const char *site, const char *screen, const char *device,
                  const char *metric, const cm_label *labels, size_t nlabels, double *out)
{
    (void)ud;
    (void)site;
    (void)screen;
    (void)device;
    (void)labels;
    *out = (double)(strlen(metric) + nlabels);
    return 1;
}

static void judge_some(const co_rules *r, co_overrides *ov)
{
    co_judge_callbacks cb = {screen_cb, ref_cb, NULL};
    co_judge *j = co_judge_new(r, &cb);
    if (!j) {
        co_overrides_free(ov);
        return;
    }
    co_judge_set_overrides(j, ov);
    co_transitions out = {0};
    static const double values[] = {0, 1, -1, 5, 48, 30, 1e300, -1e300, 0.5, 100};
    static const char *const modes[] = {"2d", "3d", "hdr", "x"};
    for (size_t i = 0; i < co_rules_count(r) && i < 16; i++) {
        const co_rule *ru = co_rules_at(r, i);
        const char *metric = ru->metric && strcmp(ru->metric, "*") != 0 ? ru->metric : "m";
        for (int k = 0; k < 12; k++) {
            cm_label l[2] = {{"mode", modes[k % 4]}, {"channel", k & 1 ? "L" : "LFE"}};
            const char *screen = k % 3 == 0 ? "review" : k % 3 == 1 ? "led" : "theatre";
            if (ru->percent_of)
                co_judge_sample(j, "S", screen, "d", ru->percent_of, l, 2, k * 1000, 100, &out);
            if (ru->while_metric)
                co_judge_sample(j, "S", screen, "d", ru->while_metric, NULL, 0, k * 1000,
                                ru->nwhile_in ? ru->while_in[0] : 0, &out);
            co_judge_sample(j, "S", screen, "d", metric, l, (size_t)(k % 3), (int64_t)k * 60000,
                            values[k % 10], &out);
            if (ru->code)
                co_judge_event(j, "S", screen, "d",
                               k & 1 && ru->clear_code ? ru->clear_code : ru->code,
                               ru->source ? ru->source : "x", "critical", k * 1000, "t", &out);
        }
        co_judge_tick(j, 1000000000, &out);
        co_transitions_clear(&out);
    }
    co_transitions_free(&out);
    co_judge_free(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    const char *nul = memchr(buf, '\0', size);
    size_t rlen = nul ? (size_t)(nul - buf) : size;
    char err[512];
    err[0] = '\0';
    co_rules *r = co_rules_load_buf("fuzz.json", buf, rlen, err, sizeof err);
    if (!r) {
        if (!err[0]) abort(); /* a refusal always says why */
        return 0;
    }
    co_overrides *ov = NULL;
    if (nul) {
        ov = co_overrides_parse(r, "ov.json", nul + 1, size - rlen - 1, err, sizeof err);
        if (!ov && !err[0]) abort();
    }
    judge_some(r, ov);
    co_rules_free(r);
    return 0;
}

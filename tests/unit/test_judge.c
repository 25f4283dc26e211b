/* test_judge.c — the alert state machine with the shipped rules (collector/rules) and a few
 * rule files of its own: holds, hysteresis, screen classes, references, absence, events,
 * overrides, escalation, export and restore. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#include "collector/judge.h"

#define T0 1764082800000LL /* 2025-11-25 15:00 UTC */
#define SEC 1000LL

/* Screens of site S1: hall1 theatre projection, hall2 review projection, hall3 LED theatre. */
static int screen_cb(void *ud, const char *site, const char *screen, co_screen_settings *out)
{
    (void)ud;
    if (strcmp(site, "S1") != 0) return 0;
    if (strcmp(screen, "hall1") == 0) {
        out->cls = CO_CLASS_THEATRE;
        out->display = CO_DISPLAY_PROJECTION;
    } else if (strcmp(screen, "hall2") == 0) {
        out->cls = CO_CLASS_REVIEW;
        out->display = CO_DISPLAY_PROJECTION;
    } else if (strcmp(screen, "hall3") == 0) {
        out->cls = CO_CLASS_THEATRE;
        out->display = CO_DISPLAY_LED;
    } else {
        return 0;
    }
    return 1;
}

/* SPL references of hall1: L, C, R 85 dBC, LFE 88; nothing else. */
static int ref_cb(void *ud, const char *site, const char *screen, const char *device,
                  const char *metric, const cm_label *labels, size_t nlabels, double *out)
{
    (void)ud;
    (void)device;
    if (strcmp(site, "S1") || strcmp(screen, "hall1") || strcmp(metric, "spl_dbc")) return 0;
    for (size_t i = 0; i < nlabels; i++) {
        if (strcmp(labels[i].key, "channel")) continue;
        const char *c = labels[i].value;
        if (!strcmp(c, "L") || !strcmp(c, "C") || !strcmp(c, "R"))
            *out = 85;
        else if (!strcmp(c, "LFE"))
            *out = 88;
        else
            return 0;
        return 1;
    }
    return 0;
}

typedef struct fx {
    co_rules *rules;
    co_judge *j;
    co_transitions out;
} fx;

static int setup_shipped(void **st)
{
    fx *f = calloc(1, sizeof *f);
    char err[512] = "";
    f->rules = co_rules_load_dir("collector/rules", err, sizeof err);
    if (!f->rules) {
        fprintf(stderr, "%s\n", err);
        free(f);
        return -1;
    }
    co_judge_callbacks cb = {screen_cb, ref_cb, NULL};
    f->j = co_judge_new(f->rules, &cb);
    *st = f;
    return f->j ? 0 : -1;
}

static int teardown(void **st)
{
    fx *f = *st;
    co_transitions_free(&f->out);
    co_judge_free(f->j);
    co_rules_free(f->rules);
    free(f);
    return 0;
}

static fx *fx_buf(const char *json)
{
    fx *f = calloc(1, sizeof *f);
    char err[512] = "";
    f->rules = co_rules_load_buf("test.json", json, strlen(json), err, sizeof err);
    if (!f->rules) fail_msg("%s", err);
    co_judge_callbacks cb = {screen_cb, ref_cb, NULL};
    f->j = co_judge_new(f->rules, &cb);
    assert_non_null(f->j);
    return f;
}

static void fx_free(fx *f)
{
    void *p = f;
    teardown(&p);
}

static const cm_label MODE_2D[] = {{"mode", "2d"}};

/* One luminance sample of the light sensor in screen `screen`; returns transitions added. */
static size_t lum(fx *f, const char *screen, int64_t ts, double v)
{
    size_t before = f->out.n;
    char dev[64];
    snprintf(dev, sizeof dev, "%s/light", screen);
    assert_int_equal(co_judge_sample(f->j, "S1", screen, dev, "screen_luminance_nits", MODE_2D, 1,
                                     ts, v, &f->out),
                     0);
    return f->out.n - before;
}

static const co_transition *last(fx *f)
{
    assert_true(f->out.n > 0);
    return &f->out.v[f->out.n - 1];
}

static size_t count_to(fx *f, co_alert_state to)
{
    size_t n = 0;
    for (size_t i = 0; i < f->out.n; i++)
        n += f->out.v[i].to == to;
    return n;
}

static void test_single_spike_raises_nothing(void **st)
{
    fx *f = *st;
    lum(f, "hall1", T0, 48);
    lum(f, "hall1", T0 + 15 * SEC, 20); /* one bad reading */
    lum(f, "hall1", T0 + 30 * SEC, 48);
    lum(f, "hall1", T0 + 45 * SEC, 47);
    assert_int_equal(count_to(f, CO_ALERT_FIRING), 0);
    /* It went pending and cleared before its hold; nothing is left. */
    assert_int_equal(f->out.n, 2);
    assert_int_equal(f->out.v[0].to, CO_ALERT_PENDING);
    assert_int_equal(f->out.v[1].from, CO_ALERT_PENDING);
    assert_int_equal(f->out.v[1].to, CO_ALERT_INACTIVE);
    assert_int_equal(co_judge_active(f->j), 0);
    /* A metric no rule judges costs nothing and says nothing. */
    assert_int_equal(co_judge_sample(f->j, "S1", "hall1", "hall1/light", "no_rule_metric", NULL, 0,
                                     T0, 1, &f->out),
                     0);
    assert_int_equal(f->out.n, 2);
}

static void test_theatre_drop_fires_after_hold_and_resolves_past_hysteresis(void **st)
{
    fx *f = *st;
    int64_t t = T0;
    assert_int_equal(lum(f, "hall1", t, 44.0), 0); /* inside 48 ± 10.2 in a theatre */
    assert_int_equal(lum(f, "hall1", t += 15 * SEC, 37.5), 1);
    assert_int_equal(last(f)->to, CO_ALERT_PENDING);
    assert_int_equal(lum(f, "hall1", t += 15 * SEC, 37.2), 0);
    assert_int_equal(lum(f, "hall1", t += 15 * SEC, 37.0), 1); /* third sample: the hold is over */
    const co_transition *x = last(f);
    assert_int_equal(x->from, CO_ALERT_PENDING);
    assert_int_equal(x->to, CO_ALERT_FIRING);
    assert_string_equal(x->rule_id, "screen_luminance");
    assert_string_equal(x->site, "S1");
    assert_string_equal(x->screen, "hall1");
    assert_string_equal(x->device, "hall1/light");
    assert_string_equal(x->labels, "{\"mode\":\"2d\"}");
    assert_int_equal(x->severity, CO_SEV_WARNING);
    assert_true(x->threshold == 37.8);
    assert_true(x->value == 37.0);
    assert_int_equal(x->ts_ms, t);
    assert_non_null(strstr(x->text, "SMPTE ST 431-1"));
    /* Still low: no duplicate. */
    assert_int_equal(lum(f, "hall1", t += 15 * SEC, 36.0), 0);
    assert_int_equal(co_judge_active(f->j), 1);
    /* Back inside the band but within the 1 nit hysteresis: still firing. */
    assert_int_equal(lum(f, "hall1", t += 15 * SEC, 38.0), 0);
    assert_int_equal(lum(f, "hall1", t += 15 * SEC, 38.7), 0);
    /* Past 37.8 + 1.0: resolved, once. */
    assert_int_equal(lum(f, "hall1", t += 15 * SEC, 39.0), 1);
    x = last(f);
    assert_int_equal(x->from, CO_ALERT_FIRING);
    assert_int_equal(x->to, CO_ALERT_RESOLVED);
    assert_true(x->threshold > 38.79 && x->threshold < 38.81);
    assert_int_equal(lum(f, "hall1", t += 15 * SEC, 48), 0);
    assert_int_equal(co_judge_active(f->j), 0);
    assert_int_equal(count_to(f, CO_ALERT_FIRING), 1);
}

static void test_review_room_fires_at_44_5(void **st)
{
    fx *f = *st;
    int64_t t = T0;
    /* 44.0 is fine in a theatre ... */
    for (int i = 0; i < 5; i++)
        assert_int_equal(lum(f, "hall1", t + i * 15 * SEC, 44.0), 0);
    /* ... and out of standard in a review room (48 − 3.5 = 44.5). */
    lum(f, "hall2", t, 44.0);
    lum(f, "hall2", t + 15 * SEC, 44.0);
    lum(f, "hall2", t + 30 * SEC, 44.0);
    assert_int_equal(count_to(f, CO_ALERT_FIRING), 1);
    assert_string_equal(last(f)->screen, "hall2");
    assert_true(last(f)->threshold == 44.5);
    /* An unknown screen is judged as a theatre (the catch-all choice). */
    for (int i = 0; i < 4; i++)
        lum(f, "hall9", t + i * 15 * SEC, 44.0);
    assert_int_equal(count_to(f, CO_ALERT_FIRING), 1);
}

static void test_duration_hold(void **st)
{
    fx *f = *st;
    /* Slow samples: the 2 minute half of the default hold fires on the second one. */
    lum(f, "hall1", T0, 30);
    assert_int_equal(last(f)->to, CO_ALERT_PENDING);
    lum(f, "hall1", T0 + 60 * SEC, 30);
    assert_int_equal(last(f)->to, CO_ALERT_PENDING);
    lum(f, "hall1", T0 + 121 * SEC, 30);
    assert_int_equal(last(f)->to, CO_ALERT_FIRING);
}

static void test_modes_and_displays(void **st)
{
    fx *f = *st;
    static const cm_label hdr[] = {{"mode", "hdr"}};
    static const cm_label m3d[] = {{"mode", "3d"}};
    /* HDR on LED: 299.6 ± 9; 285 is out there but fine on a projector theatre (± 30). */
    for (int i = 0; i < 3; i++) {
        co_judge_sample(f->j, "S1", "hall3", "hall3/led", "screen_luminance_nits", hdr, 1,
                        T0 + i * 15 * SEC, 285, &f->out);
        co_judge_sample(f->j, "S1", "hall1", "hall1/light", "screen_luminance_nits", hdr, 1,
                        T0 + i * 15 * SEC, 285, &f->out);
    }
    assert_int_equal(count_to(f, CO_ALERT_FIRING), 1);
    assert_string_equal(last(f)->screen, "hall3");
    assert_true(last(f)->threshold > 290.59 && last(f)->threshold < 290.61);
    /* 3D projection: at least 15.4 nits. */
    for (int i = 0; i < 3; i++)
        co_judge_sample(f->j, "S1", "hall1", "hall1/light", "screen_luminance_nits", m3d, 1,
                        T0 + i * 15 * SEC, 14, &f->out);
    assert_int_equal(count_to(f, CO_ALERT_FIRING), 2);
    assert_true(last(f)->threshold == 15.4);
    assert_string_equal(last(f)->labels, "{\"mode\":\"3d\"}");
    /* No mode label: no choice applies. */
    size_t n = f->out.n;
    for (int i = 0; i < 4; i++)
        co_judge_sample(f->j, "S1", "hall1", "hall1/light", "screen_luminance_nits", NULL, 0,
                        T0 + i * 15 * SEC, 5, &f->out);
    assert_int_equal(f->out.n, n);
}

static void spl(fx *f, const char *ch, int64_t ts, double v)
{
    cm_label l[] = {{"channel", ch}};
    assert_int_equal(
        co_judge_sample(f->j, "S1", "hall1", "hall1/cp950", "spl_dbc", l, 1, ts, v, &f->out), 0);
}

static void test_spl_deviation_from_reference(void **st)
{
    fx *f = *st;
    for (int i = 0; i < 3; i++) {
        spl(f, "L", T0 + i * SEC, 82.5);   /* −2.5 dB: fine */
        spl(f, "LFE", T0 + i * SEC, 84.0); /* −4 dB on the subwoofer: fine (± 5) */
        spl(f, "Ls", T0 + i * SEC, 60);    /* no reference: not judged */
    }
    assert_int_equal(f->out.n, 0);
    for (int i = 0; i < 3; i++)
        spl(f, "C", T0 + i * SEC, 81.5); /* −3.5 dB */
    assert_int_equal(count_to(f, CO_ALERT_FIRING), 1);
    assert_string_equal(last(f)->rule_id, "spl_deviation");
    assert_string_equal(last(f)->labels, "{\"channel\":\"C\"}");
    assert_true(last(f)->value == -3.5);
    assert_true(last(f)->threshold == -3);
    for (int i = 0; i < 3; i++)
        spl(f, "LFE", T0 + i * SEC, 94); /* +6 dB on the subwoofer */
    assert_int_equal(count_to(f, CO_ALERT_FIRING), 2);
    assert_string_equal(last(f)->rule_id, "spl_deviation_subwoofer");
    assert_true(last(f)->threshold == 5);
    /* The same screen in a site without references: nothing. */
    cm_label l[] = {{"channel", "C"}};
    size_t n = f->out.n;
    for (int i = 0; i < 4; i++)
        co_judge_sample(f->j, "S2", "hall1", "hall1/cp950", "spl_dbc", l, 1, T0 + i * SEC, 70,
                        &f->out);
    assert_int_equal(f->out.n, n);
}

static void test_device_silent_once_and_resolves(void **st)
{
    fx *f = *st;
    const char *dev = "hall1/projector";
    for (int i = 0; i < 3; i++)
        co_judge_sample(f->j, "S1", "hall1", dev, "lamp_hours", NULL, 0, T0 + i * 60 * SEC, 100 + i,
                        &f->out);
    /* Interval 60 s learnt; silent after 3 × 60 s. */
    assert_int_equal(co_judge_tick(f->j, T0 + 120 * SEC + 180 * SEC, &f->out), 0);
    assert_int_equal(f->out.n, 0);
    assert_int_equal(co_judge_tick(f->j, T0 + 120 * SEC + 181 * SEC, &f->out), 0);
    assert_int_equal(f->out.n, 1);
    const co_transition *x = last(f);
    assert_string_equal(x->rule_id, "device_silent");
    assert_string_equal(x->device, dev);
    assert_string_equal(x->screen, "hall1");
    assert_string_equal(x->labels, "{}");
    assert_int_equal(x->to, CO_ALERT_FIRING);
    assert_true(x->threshold == 180);
    /* Once, not per tick. */
    for (int i = 0; i < 10; i++)
        co_judge_tick(f->j, T0 + (400 + i * 10) * SEC, &f->out);
    assert_int_equal(f->out.n, 1);
    /* The agent's own "up = 0" is no sign of life. */
    co_judge_sample(f->j, "S1", "hall1", dev, "up", NULL, 0, T0 + 500 * SEC, 0, &f->out);
    assert_int_equal(f->out.n, 1);
    /* A real sample resolves it. */
    cm_label s[] = {{"sensor", "dmd"}};
    co_judge_sample(f->j, "S1", "hall1", dev, "temperature_celsius", s, 1, T0 + 600 * SEC, 40,
                    &f->out);
    assert_int_equal(f->out.n, 2);
    assert_int_equal(last(f)->from, CO_ALERT_FIRING);
    assert_int_equal(last(f)->to, CO_ALERT_RESOLVED);
    assert_int_equal(co_judge_active(f->j), 0);
    /* A device seen once uses the rule's interval (60 s). */
    co_judge_sample(f->j, "S1", "hall2", "hall2/ups", "ups_load_percent", NULL, 0, T0, 10, &f->out);
    co_judge_tick(f->j, T0 + 179 * SEC, &f->out);
    assert_int_equal(f->out.n, 2);
    co_judge_tick(f->j, T0 + 1000 * SEC, &f->out);
    assert_int_equal(f->out.n, 4); /* hall2/ups, and hall1/projector again */
    /* Seeded at start-up from the store: silent without a sample since. */
    assert_int_equal(co_judge_device_seen(f->j, "S1", "hall3", "hall3/led", T0 + 1000 * SEC), 0);
    co_judge_tick(f->j, T0 + 1180 * SEC, &f->out);
    assert_int_equal(f->out.n, 4);
    co_judge_tick(f->j, T0 + 1181 * SEC, &f->out);
    assert_int_equal(f->out.n, 5);
    assert_string_equal(last(f)->device, "hall3/led");
}

/* Polled every 10 s, uploaded every 30 s, judged on arrival: never silent while uploads come;
 * a backlog of old samples arriving now is no silence either; silent once uploads stop. */
static void test_device_silent_upload_interval_and_backlog(void **st)
{
    fx *f = *st;
    const char *dev = "hall1/projector";
    cm_label l[] = {{"sensor", "dmd"}};
    int64_t now = T0;
    for (int up = 0; up < 10; up++) {
        now += 30 * SEC;
        co_judge_tick(f->j, now, &f->out);
        for (int k = 3; k >= 1; k--)
            co_judge_sample(f->j, "S1", "hall1", dev, "temperature_celsius", l, 1,
                            now - k * 10 * SEC, 40, &f->out);
        co_judge_tick(f->j, now + 5 * SEC, &f->out);
        co_judge_tick(f->j, now + 25 * SEC, &f->out);
    }
    assert_int_equal(f->out.n, 0);
    /* a day-old backlog drains now: samples 60 s apart, all arriving within a minute */
    const char *old = "hall2/projector";
    for (int i = 0; i < 120; i++) {
        if (i % 20 == 0) co_judge_tick(f->j, now + i * SEC, &f->out);
        co_judge_sample(f->j, "S1", "hall2", old, "temperature_celsius", l, 1,
                        now - 86400 * SEC + i * 60 * SEC, 40, &f->out);
    }
    co_judge_tick(f->j, now + 121 * SEC, &f->out);
    for (size_t i = 0; i < f->out.n; i++)
        assert_string_not_equal(f->out.v[i].device, old);
    /* hall1's uploads stopped at `now`: silent after 3 x its 30 s arrival interval, not after
     * 3 x its 10 s sample interval */
    int found = 0;
    for (size_t i = 0; i < f->out.n; i++)
        found += !strcmp(f->out.v[i].device, dev) && f->out.v[i].to == CO_ALERT_FIRING;
    assert_int_equal(found, 1);
    assert_true(f->out.v[0].threshold == 90);
}

static void test_event_raises_and_clear_resolves(void **st)
{
    (void)st;
    fx *f =
        fx_buf("{\"rules\":[{\"id\":\"fan_failure\",\"kind\":\"event\",\"code\":\"fan_fail\","
               "\"clear_code\":\"fan_ok\",\"severity\":\"critical\",\"standard\":\"vendor MIB\","
               "\"description\":\"d\"}]}");
    const char *dev = "hall1/projector";
    assert_int_equal(
        co_judge_event(f->j, "S1", "hall1", dev, "fan_ok", "snmp-trap", "info", T0, NULL, &f->out),
        0);
    assert_int_equal(f->out.n, 0); /* nothing to clear */
    co_judge_event(f->j, "S1", "hall1", dev, "fan_fail", "snmp-trap", "warning", T0 + SEC,
                   "Fan 2 stopped", &f->out);
    assert_int_equal(f->out.n, 1);
    assert_int_equal(last(f)->to, CO_ALERT_FIRING);
    assert_int_equal(last(f)->severity, CO_SEV_CRITICAL); /* the rule's, not the event's */
    assert_string_equal(last(f)->labels, "{\"code\":\"fan_fail\"}");
    assert_non_null(strstr(last(f)->text, "Fan 2 stopped"));
    co_judge_event(f->j, "S1", "hall1", dev, "fan_fail", "snmp-trap", "warning", T0 + 2 * SEC, NULL,
                   &f->out);
    assert_int_equal(f->out.n, 1); /* repeated trap: no duplicate */
    co_judge_event(f->j, "S1", "hall1", "hall2/projector", "fan_ok", "snmp-trap", "info",
                   T0 + 3 * SEC, NULL, &f->out);
    assert_int_equal(f->out.n, 1); /* another device's clear */
    co_judge_event(f->j, "S1", "hall1", dev, "fan_ok", "snmp-trap", "info", T0 + 4 * SEC, NULL,
                   &f->out);
    assert_int_equal(f->out.n, 2);
    assert_int_equal(last(f)->from, CO_ALERT_FIRING);
    assert_int_equal(last(f)->to, CO_ALERT_RESOLVED);
    assert_string_equal(last(f)->labels, "{\"code\":\"fan_fail\"}");
    co_judge_event(f->j, "S1", "hall1", dev, "fan_ok", "snmp-trap", "info", T0 + 5 * SEC, NULL,
                   &f->out);
    assert_int_equal(f->out.n, 2);
    assert_int_equal(co_judge_active(f->j), 0);
    fx_free(f);
}

static void test_shipped_trap_rule_resolves_after_quiet_hour(void **st)
{
    fx *f = *st;
    co_judge_event(f->j, "S1", "hall1", "hall1/projector", "lamp_strike", "snmp-trap", "critical",
                   T0, "Lamp failed to strike", &f->out);
    co_judge_event(f->j, "S1", "hall1", "hall1/projector", "lamp_strike", "agent", "critical", T0,
                   NULL, &f->out); /* not a trap: the rule has source snmp-trap */
    assert_int_equal(f->out.n, 1);
    assert_int_equal(last(f)->severity, CO_SEV_CRITICAL); /* the event's own */
    co_judge_tick(f->j, T0 + 3599 * SEC, &f->out);
    assert_int_equal(f->out.n, 1);
    co_judge_tick(f->j, T0 + 3600 * SEC, &f->out);
    assert_int_equal(f->out.n, 2);
    assert_int_equal(last(f)->to, CO_ALERT_RESOLVED);
}

static void test_overrides_change_threshold(void **st)
{
    fx *f = *st;
    const char *ov =
        "{\"overrides\":[{\"site\":\"S1\",\"screen\":\"hall1\",\"rule\":\"screen_luminance\","
        "\"when\":{\"mode\":\"2d\"},\"set\":{\"target\":50,\"tolerance\":5,\"hold\":1}},"
        "{\"site\":\"S1\",\"screen\":\"hall2\",\"rule\":\"screen_luminance\","
        "\"set\":{\"enabled\":false}}]}";
    char err[512] = "";
    co_overrides *o = co_overrides_parse(f->rules, "ov.json", ov, strlen(ov), err, sizeof err);
    if (!o) fail_msg("%s", err);
    co_judge_set_overrides(f->j, o);
    /* hall1: 50 ± 5, one sample is enough. */
    lum(f, "hall1", T0, 44.0);
    assert_int_equal(f->out.n, 1);
    assert_int_equal(last(f)->to, CO_ALERT_FIRING);
    assert_true(last(f)->threshold == 45);
    /* hall2 (review room) has the rule switched off. */
    for (int i = 0; i < 4; i++)
        lum(f, "hall2", T0 + i * 15 * SEC, 30);
    assert_int_equal(f->out.n, 1);
    /* Without overrides hall2 judges again. */
    co_judge_set_overrides(f->j, NULL);
    for (int i = 0; i < 3; i++)
        lum(f, "hall2", T0 + i * 15 * SEC, 30);
    assert_int_equal(count_to(f, CO_ALERT_FIRING), 2);
}

static void sync(fx *f, int64_t ts, double v)
{
    assert_int_equal(co_judge_sample(f->j, "S1", "hall1", "hall1/lss", "av_sync_offset_ms", NULL, 0,
                                     ts, v, &f->out),
                     0);
}

static void test_escalation_and_easing(void **st)
{
    fx *f = *st;
    int64_t t = T0;
    for (int i = 0; i < 3; i++)
        sync(f, t += SEC, 20); /* warning band −45..+15 */
    assert_int_equal(last(f)->to, CO_ALERT_FIRING);
    assert_int_equal(last(f)->severity, CO_SEV_WARNING);
    assert_true(last(f)->threshold == 15);
    size_t n = f->out.n;
    sync(f, t += SEC, 50); /* beyond the critical +45 */
    assert_int_equal(f->out.n, n + 1);
    assert_int_equal(last(f)->from, CO_ALERT_FIRING);
    assert_int_equal(last(f)->to, CO_ALERT_FIRING);
    assert_int_equal(last(f)->severity, CO_SEV_CRITICAL);
    sync(f, t += SEC, 42); /* inside critical but within its 5 ms hysteresis */
    assert_int_equal(f->out.n, n + 1);
    sync(f, t += SEC, 30); /* past it: back to warning */
    assert_int_equal(f->out.n, n + 2);
    assert_int_equal(last(f)->severity, CO_SEV_WARNING);
    assert_int_equal(last(f)->to, CO_ALERT_FIRING);
    sync(f, t += SEC, 12); /* within the warning hysteresis */
    assert_int_equal(f->out.n, n + 2);
    sync(f, t += SEC, 5);
    assert_int_equal(f->out.n, n + 3);
    assert_int_equal(last(f)->to, CO_ALERT_RESOLVED);
    assert_true(last(f)->threshold == 10);
}

static void test_percent_of_and_while(void **st)
{
    fx *f = *st;
    const char *p = "hall1/projector";
    cm_label lamp[] = {{"lamp", "1"}};
    /* No rated hours yet: not judged. */
    co_judge_sample(f->j, "S1", "hall1", p, "light_source_hours", lamp, 1, T0, 19000, &f->out);
    assert_int_equal(f->out.n, 0);
    co_judge_sample(f->j, "S1", "hall1", p, "light_source_rated_hours", lamp, 1, T0, 20000,
                    &f->out);
    co_judge_sample(f->j, "S1", "hall1", p, "light_source_hours", lamp, 1, T0 + SEC, 18500,
                    &f->out);
    assert_int_equal(f->out.n, 1); /* 92.5 % of rated, hold 1 */
    assert_int_equal(last(f)->severity, CO_SEV_WARNING);
    assert_true(last(f)->value == 92.5);
    co_judge_sample(f->j, "S1", "hall1", p, "light_source_hours", lamp, 1, T0 + 2 * SEC, 20100,
                    &f->out);
    assert_int_equal(f->out.n, 2);
    assert_int_equal(last(f)->severity, CO_SEV_CRITICAL);

    /* A stopped fan matters only while the projector is on. */
    cm_label fan[] = {{"fan", "2"}};
    size_t n = f->out.n;
    for (int i = 0; i < 3; i++)
        co_judge_sample(f->j, "S1", "hall1", p, "fan_speed_rpm", fan, 1, T0 + i * SEC, 0, &f->out);
    assert_int_equal(f->out.n, n); /* power state unknown */
    co_judge_sample(f->j, "S1", "hall1", p, "power_state", NULL, 0, T0 + 10 * SEC, 4, &f->out);
    for (int i = 0; i < 3; i++)
        co_judge_sample(f->j, "S1", "hall1", p, "fan_speed_rpm", fan, 1, T0 + (11 + i) * SEC, 0,
                        &f->out);
    assert_int_equal(f->out.n, n); /* standby */
    co_judge_sample(f->j, "S1", "hall1", p, "power_state", NULL, 0, T0 + 20 * SEC, 1, &f->out);
    for (int i = 0; i < 3; i++)
        co_judge_sample(f->j, "S1", "hall1", p, "fan_speed_rpm", fan, 1, T0 + (21 + i) * SEC, 0,
                        &f->out);
    assert_int_equal(count_to(f, CO_ALERT_FIRING), 3);
    assert_string_equal(last(f)->rule_id, "fan_stopped");
    assert_int_equal(last(f)->severity, CO_SEV_CRITICAL);
    /* Switched off: the alert no longer applies. */
    co_judge_sample(f->j, "S1", "hall1", p, "power_state", NULL, 0, T0 + 30 * SEC, 0, &f->out);
    co_judge_sample(f->j, "S1", "hall1", p, "fan_speed_rpm", fan, 1, T0 + 31 * SEC, 0, &f->out);
    assert_int_equal(last(f)->to, CO_ALERT_RESOLVED);
    assert_string_equal(last(f)->rule_id, "fan_stopped");
}

static void test_rate_rule(void **st)
{
    (void)st;
    fx *f = fx_buf("{\"rules\":[{\"id\":\"fast_rise\",\"kind\":\"rate\",\"metric\":\"m\",\"max\":2,"
                   "\"window\":\"1h\",\"hold\":1,\"standard\":\"s\",\"description\":\"d\"}]}");
    int64_t h = 3600 * SEC;
    co_judge_sample(f->j, "S1", NULL, "d", "m", NULL, 0, T0, 10, &f->out);
    co_judge_sample(f->j, "S1", NULL, "d", "m", NULL, 0, T0 + h / 2, 40, &f->out);
    assert_int_equal(f->out.n, 0); /* no span of a window yet */
    co_judge_sample(f->j, "S1", NULL, "d", "m", NULL, 0, T0 + h, 11, &f->out);
    assert_int_equal(f->out.n, 0); /* +1 per hour */
    co_judge_sample(f->j, "S1", NULL, "d", "m", NULL, 0, T0 + h + h / 2, 15, &f->out);
    assert_int_equal(f->out.n, 1); /* +5 over 1.5 h */
    assert_int_equal(last(f)->to, CO_ALERT_FIRING);
    assert_true(last(f)->value > 3.3 && last(f)->value < 3.4);
    co_judge_sample(f->j, "S1", NULL, "d", "m", NULL, 0, T0 + 3 * h, 15, &f->out);
    assert_int_equal(f->out.n, 2);
    assert_int_equal(last(f)->to, CO_ALERT_RESOLVED);
    fx_free(f);
}

typedef struct saved {
    co_alert_info a[8];
    char buf[8][5][128];
    int n;
} saved;

static int save_cb(void *ud, const co_alert_info *a)
{
    saved *s = ud;
    if (s->n >= 8) return 1;
    s->a[s->n] = *a;
    const char *src[5] = {a->rule_id, a->site, a->screen, a->device, a->labels};
    for (int i = 0; i < 5; i++)
        snprintf(s->buf[s->n][i], 128, "%s", src[i]);
    s->a[s->n].rule_id = s->buf[s->n][0];
    s->a[s->n].site = s->buf[s->n][1];
    s->a[s->n].screen = s->buf[s->n][2];
    s->a[s->n].device = s->buf[s->n][3];
    s->a[s->n].labels = s->buf[s->n][4];
    s->n++;
    return 0;
}

static int save_cb_count(void *ud, const co_alert_info *a)
{
    (void)ud;
    return a->rule_id == NULL;
}

static void test_export_and_restore(void **st)
{
    fx *f = *st;
    for (int i = 0; i < 3; i++)
        lum(f, "hall1", T0 + i * 15 * SEC, 30);
    lum(f, "hall2", T0, 40); /* pending */
    co_judge_sample(f->j, "S1", "hall1", "hall1/projector", "lamp_hours", NULL, 0, T0, 1, &f->out);
    co_judge_tick(f->j, T0 + 3600 * SEC,
                  &f->out); /* hall1/light and hall2/light and projector silent */
    assert_int_equal(co_judge_active(f->j), 5);
    saved s = {0};
    assert_int_equal(co_judge_foreach(f->j, save_cb, &s), 0);
    assert_int_equal(s.n, 5);

    /* A new judge (after a restart) takes them back without transitions. */
    co_judge_callbacks cb = {screen_cb, ref_cb, NULL};
    co_judge *j2 = co_judge_new(f->rules, &cb);
    char err[256];
    for (int i = 0; i < s.n; i++)
        assert_int_equal(co_judge_restore(j2, &s.a[i], err, sizeof err), 0);
    assert_int_equal(co_judge_active(j2), 5);
    co_transitions out = {0};
    /* The firing luminance alert resolves on a good sample; nothing fires twice. */
    assert_int_equal(co_judge_sample(j2, "S1", "hall1", "hall1/light", "screen_luminance_nits",
                                     MODE_2D, 1, T0 + 3700 * SEC, 48, &out),
                     0);
    int resolved_lum = 0, resolved_silent = 0;
    for (size_t i = 0; i < out.n; i++) {
        assert_int_equal(out.v[i].to, CO_ALERT_RESOLVED);
        if (!strcmp(out.v[i].rule_id, "screen_luminance")) resolved_lum++;
        if (!strcmp(out.v[i].rule_id, "device_silent")) resolved_silent++;
    }
    assert_int_equal(resolved_lum, 1);
    assert_int_equal(resolved_silent, 1);
    co_transitions_clear(&out);
    co_judge_tick(j2, T0 + 3790 * SEC, &out);
    assert_int_equal(out.n, 0); /* the restored silent devices do not fire again */

    /* Bad restores. */
    co_alert_info bad = s.a[0];
    bad.rule_id = "nope";
    assert_int_equal(co_judge_restore(j2, &bad, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown rule"));
    bad = s.a[0];
    bad.labels = "[1]";
    assert_int_equal(co_judge_restore(j2, &bad, err, sizeof err), -1);
    assert_non_null(strstr(err, "labels"));
    bad = s.a[0];
    bad.state = CO_ALERT_RESOLVED;
    assert_int_equal(co_judge_restore(j2, &bad, err, sizeof err), -1);
    /* Labels are made canonical. */
    co_alert_info odd = {.rule_id = "spl_deviation",
                         .site = "S1",
                         .screen = "hall1",
                         .device = "d",
                         .labels = "{ \"z\": \"1\", \"channel\" : \"L\" }",
                         .state = CO_ALERT_FIRING,
                         .severity = CO_SEV_WARNING};
    assert_int_equal(co_judge_restore(j2, &odd, err, sizeof err), 0);
    saved s2 = {0};
    co_judge_foreach(j2, save_cb, &s2);
    int found = 0;
    for (int i = 0; i < s2.n; i++)
        found += strcmp(s2.a[i].labels, "{\"channel\":\"L\",\"z\":\"1\"}") == 0;
    assert_int_equal(found, 1);
    co_transitions_free(&out);
    co_judge_free(j2);
}

static void test_labels_canonical_and_escaped(void **st)
{
    fx *f = *st;
    cm_label l[] = {{"mode", "2d"}, {"cabinet", "a\"b\\c\n"}};
    for (int i = 0; i < 3; i++)
        co_judge_sample(f->j, "S1", "hall3", "hall3/led", "led_cabinet_online", l, 2, T0 + i * SEC,
                        0, &f->out);
    assert_int_equal(count_to(f, CO_ALERT_FIRING), 1);
    assert_string_equal(last(f)->labels, "{\"cabinet\":\"a\\\"b\\\\c\\u000a\",\"mode\":\"2d\"}");
    /* The same labels in another order are the same alert. */
    cm_label l2[] = {{"cabinet", "a\"b\\c\n"}, {"mode", "2d"}};
    co_judge_sample(f->j, "S1", "hall3", "hall3/led", "led_cabinet_online", l2, 2, T0 + 5 * SEC, 1,
                    &f->out);
    assert_int_equal(last(f)->to, CO_ALERT_RESOLVED);
    assert_int_equal(co_judge_active(f->j), 0);
    /* Not finite values are ignored. */
    assert_int_equal(co_judge_sample(f->j, "S1", "hall3", "hall3/led", "led_cabinet_online", l, 2,
                                     T0 + 6 * SEC, 0.0 / 0.0, &f->out),
                     0);
}

typedef struct worker {
    co_judge *j;
    int id;
    size_t fired;
} worker;

static void *work(void *p)
{
    worker *w = p;
    co_transitions out = {0};
    char dev[32];
    snprintf(dev, sizeof dev, "hall1/light%d", w->id);
    for (int i = 0; i < 2000; i++) {
        /* each device: 10 bad, 10 good, ... → fires and resolves 100 times */
        double v = (i / 10) % 2 ? 48 : 30;
        co_judge_sample(w->j, "S1", "hall1", dev, "screen_luminance_nits", MODE_2D, 1, T0 + i * SEC,
                        v, &out);
        if (i % 100 == 0) co_judge_active(w->j);
    }
    for (size_t i = 0; i < out.n; i++)
        w->fired += out.v[i].to == CO_ALERT_FIRING;
    co_transitions_free(&out);
    return NULL;
}

static void test_threads_share_one_judge(void **st)
{
    fx *f = *st;
    pthread_t t[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){f->j, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        co_judge_tick(f->j, T0, &f->out);
        co_judge_foreach(f->j, save_cb_count, NULL);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].fired, 100);
    }
    assert_int_equal(co_judge_active(f->j), 0);
}

/* An alert ended elsewhere (another collector resolved it) is forgotten without a transition;
 * the next low sample starts a new pending alert; transitions can be removed in order. */
static void test_forget_and_transitions_remove(void **st)
{
    fx *f = *st;
    int64_t t = T0;
    lum(f, "hall1", t, 37.5);
    lum(f, "hall1", t += 15 * SEC, 37.2);
    lum(f, "hall1", t += 15 * SEC, 37.0);
    assert_int_equal(last(f)->to, CO_ALERT_FIRING);
    assert_int_equal(co_judge_active(f->j), 1);
    size_t n = f->out.n;
    assert_int_equal(
        co_judge_forget(f->j, "screen_luminance", "S1", "hall1/light", "{\"mode\":\"2d\"}"), 1);
    assert_int_equal(f->out.n, n); /* no transition */
    assert_int_equal(co_judge_active(f->j), 0);
    assert_int_equal(
        co_judge_forget(f->j, "screen_luminance", "S1", "hall1/light", "{\"mode\":\"2d\"}"), 0);
    assert_int_equal(co_judge_forget(f->j, "no_such_rule", "S1", "hall1/light", "{}"), -1);
    assert_int_equal(co_judge_forget(f->j, "screen_luminance", "S1", "hall1/light", "not json"),
                     -1);
    /* still low: it starts again from pending */
    assert_int_equal(lum(f, "hall1", t += 15 * SEC, 36.0), 1);
    assert_int_equal(last(f)->from, CO_ALERT_INACTIVE);
    assert_int_equal(last(f)->to, CO_ALERT_PENDING);
    /* remove the first transition: the others keep their order */
    size_t before = f->out.n;
    co_alert_state second_to = f->out.v[1].to;
    co_transitions_remove(&f->out, 0);
    assert_int_equal(f->out.n, before - 1);
    assert_int_equal(f->out.v[0].to, second_to);
    assert_int_equal(f->out.v[f->out.n - 1].to, CO_ALERT_PENDING);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_shipped, teardown)
    const struct CMUnitTest tests[] = {
        T(test_single_spike_raises_nothing),
        T(test_theatre_drop_fires_after_hold_and_resolves_past_hysteresis),
        T(test_review_room_fires_at_44_5),
        T(test_duration_hold),
        T(test_modes_and_displays),
        T(test_spl_deviation_from_reference),
        T(test_device_silent_once_and_resolves),
        T(test_device_silent_upload_interval_and_backlog),
        cmocka_unit_test(test_event_raises_and_clear_resolves),
        T(test_shipped_trap_rule_resolves_after_quiet_hour),
        T(test_overrides_change_threshold),
        T(test_escalation_and_easing),
        T(test_percent_of_and_while),
        cmocka_unit_test(test_rate_rule),
        T(test_export_and_restore),
        T(test_labels_canonical_and_escaped),
        T(test_threads_share_one_judge),
        T(test_forget_and_transitions_remove),
    };
#undef T
    return cmocka_run_group_tests_name("judge", tests, NULL, NULL);
}

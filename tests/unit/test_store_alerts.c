/* test_store_alerts.c — alerts in the SQLite store: the lifecycle pending → firing → resolved
 * (one open row per rule, device and labels), a pending alert that clears disappears,
 * notifications due on firing / severity change / resolve, silences, acknowledgement scoped by
 * site, history, restore of active alerts, and the notification log with pending deliveries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_fixture.h"

#define T0 1764082800000LL

typedef store_fx fx;

static co_alert_change chg(const char *from, const char *to, const char *sev, double v, int64_t ts)
{
    return (co_alert_change){.rule = "luminance_2d",
                             .site = "S1",
                             .screen = "hall1",
                             .device = "hall1/sensor",
                             .labels = "{\"mode\":\"2d\"}",
                             .from = from,
                             .to = to,
                             .severity = sev,
                             .value = v,
                             .threshold = 37.8,
                             .ts_ms = ts,
                             .text = "luminance low"};
}

static co_alert_outcome apply1(fx *f, co_alert_change c)
{
    co_alert_outcome o = {.id = -1};
    char err[256] = "";
    if (co_store_alerts_apply(f->s, &c, 1, c.ts_ms, &o, err, sizeof err) < 0)
        fail_msg("apply: %s", err);
    return o;
}

static json_t *alerts(fx *f, const char *state, const char *site)
{
    co_alert_filter flt = {.state = state, .site = site};
    char err[256] = "";
    json_t *j = co_store_alerts(f->s, &flt, NULL, err, sizeof err);
    if (!j) fail_msg("alerts: %s", err);
    return j;
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void test_lifecycle(void **state)
{
    fx *f = *state;
    /* a pending alert that clears before its hold is gone without a trace */
    co_alert_outcome o = apply1(f, chg("inactive", "pending", "warning", 30, T0));
    assert_true(o.id > 0);
    assert_int_equal(o.notify, 0);
    o = apply1(f, chg("pending", "inactive", "warning", 47, T0 + 60000));
    assert_int_equal(o.id, 0);
    json_t *j = alerts(f, NULL, NULL);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);

    /* pending → firing (notified) → firing critical (notified) → resolved (notified) */
    co_alert_outcome p = apply1(f, chg("inactive", "pending", "warning", 30, T0 + 120000));
    co_alert_outcome fi = apply1(f, chg("pending", "firing", "warning", 30, T0 + 240000));
    assert_int_equal(fi.id, p.id);
    assert_int_equal(fi.notify, 1);
    co_alert_outcome again = apply1(f, chg("firing", "firing", "warning", 29, T0 + 300000));
    assert_int_equal(again.notify, 0); /* same severity: no new notification */
    co_alert_outcome crit = apply1(f, chg("firing", "firing", "critical", 20, T0 + 360000));
    assert_int_equal(crit.id, p.id);
    assert_int_equal(crit.notify, 1);
    j = alerts(f, "active", "S1");
    assert_int_equal(json_array_size(j), 1);
    json_t *a = json_array_get(j, 0);
    assert_string_equal(str(a, "state"), "firing");
    assert_string_equal(str(a, "severity"), "critical");
    assert_string_equal(str(json_object_get(a, "labels"), "mode"), "2d");
    assert_int_equal(json_integer_value(json_object_get(a, "firing_ms")), T0 + 240000);
    assert_true(json_is_null(json_object_get(a, "ack")));
    json_decref(j);
    co_alert_outcome r = apply1(f, chg("firing", "resolved", "critical", 47, T0 + 420000));
    assert_int_equal(r.id, p.id);
    assert_int_equal(r.notify, 1);
    j = alerts(f, "active", NULL);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
    /* a new episode is a new alert; the resolved one stays in history */
    co_alert_outcome p2 = apply1(f, chg("inactive", "firing", "warning", 30, T0 + 480000));
    assert_true(p2.id != p.id);
    j = alerts(f, NULL, NULL);
    assert_int_equal(json_array_size(j), 2);
    json_decref(j);
    j = alerts(f, "resolved", NULL);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
    char err[256] = "";
    j = co_store_alert(f->s, p.id, NULL, err, sizeof err);
    assert_non_null(j);
    json_t *h = json_object_get(j, "history");
    assert_int_equal(json_array_size(h), 5);
    assert_string_equal(str(json_array_get(h, 0), "state"), "pending");
    assert_string_equal(str(json_array_get(h, 4), "state"), "resolved");
    json_decref(j);
    assert_null(co_store_alert(f->s, 999999, NULL, err, sizeof err));
    assert_string_equal(err, "");
    /* filters */
    co_alert_filter flt = {.min_severity = "critical"};
    j = co_store_alerts(f->s, &flt, NULL, err, sizeof err);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
    j = alerts(f, NULL, "other");
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
    /* bad change */
    co_alert_change bad = chg("inactive", "exploded", "warning", 1, T0);
    co_alert_outcome bo;
    assert_int_equal(co_store_alerts_apply(f->s, &bad, 1, T0, &bo, err, sizeof err), -1);
    assert_non_null(strstr(err, "exploded"));
}

static void test_ack_and_silence(void **state)
{
    fx *f = *state;
    char err[256] = "";
    co_silence sl = {.site = "S1",
                     .screen = "hall1",
                     .from_ms = T0,
                     .until_ms = T0 + 3600000,
                     .by = "anna",
                     .comment = "lamp change"};
    int64_t sid = 0;
    assert_int_equal(co_store_silence_add(f->s, &sl, &sid, err, sizeof err), 0);
    assert_true(sid > 0);
    co_alert_outcome o = apply1(f, chg("inactive", "firing", "critical", 10, T0 + 60000));
    assert_int_equal(o.notify, 0);
    assert_int_equal(o.silenced, 1);
    /* after the window: notified */
    o = apply1(f, chg("firing", "resolved", "critical", 48, T0 + 3600000 + 1));
    assert_int_equal(o.notify, 1);
    co_silence bad = {.site = "S1", .from_ms = T0, .until_ms = T0, .by = "x"};
    assert_int_equal(co_store_silence_add(f->s, &bad, &sid, err, sizeof err), -1);
    json_t *j = co_store_silences(f->s, "S1", 0, NULL, err, sizeof err);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
    j = co_store_silences(f->s, "S1", T0 + 7200000, NULL, err, sizeof err);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
    /* acknowledgement: scope by site */
    co_scope s1 = {CO_SCOPE_SITE, "S1"}, s2 = {CO_SCOPE_SITE, "S2"};
    assert_int_equal(
        co_store_alert_ack(f->s, o.id, "bob", "seen", &s2, T0 + 4000000, err, sizeof err), 0);
    assert_int_equal(
        co_store_alert_ack(f->s, o.id, "bob", "seen", &s1, T0 + 4000000, err, sizeof err), 1);
    assert_int_equal(co_store_alert_ack(f->s, 424242, "bob", NULL, NULL, T0, err, sizeof err), 0);
    j = co_store_alert(f->s, o.id, NULL, err, sizeof err);
    json_t *ack = json_object_get(j, "ack");
    assert_string_equal(str(ack, "by"), "bob");
    assert_string_equal(str(ack, "comment"), "seen");
    json_t *h = json_object_get(j, "history");
    assert_string_equal(str(json_array_get(h, json_array_size(h) - 1), "state"), "acknowledged");
    json_decref(j);
}

static int count_active(void *ud, const co_alert_row *a)
{
    int *n = ud;
    assert_string_equal(a->rule, "luminance_2d");
    assert_string_equal(a->state, "firing");
    (*n)++;
    return 0;
}

typedef struct pend {
    int n;
    char id[64], target[32];
    unsigned attempts;
} pend;

static int on_pending(void *ud, const char *id, const char *target, const char *payload,
                      unsigned attempts, int64_t created_ms)
{
    pend *p = ud;
    assert_non_null(strstr(payload, "\"rule\""));
    assert_true(created_ms >= T0);
    snprintf(p->id, sizeof p->id, "%s", id);
    snprintf(p->target, sizeof p->target, "%s", target);
    p->attempts = attempts;
    p->n++;
    return 0;
}

static void test_restore_and_notifications(void **state)
{
    fx *f = *state;
    char err[256] = "";
    co_alert_outcome o = apply1(f, chg("inactive", "firing", "warning", 30, T0));
    int n = 0;
    assert_int_equal(co_store_alerts_active(f->s, count_active, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    const char *targets[] = {"ops", "ncc"};
    const char *payload = "{\"id\":\"1-1\",\"rule\":\"luminance_2d\"}";
    assert_int_equal(co_store_notification_add(f->s, "1-1", o.id, "firing", "S1", payload, targets,
                                               2, T0, err, sizeof err),
                     1);
    assert_int_equal(co_store_notification_add(f->s, "1-1", o.id, "firing", "S1", payload, targets,
                                               2, T0, err, sizeof err),
                     0);
    assert_int_equal(co_store_delivery_update(f->s, "1-1", "ops", 2, 200, NULL, "delivered",
                                              T0 + 5000, err, sizeof err),
                     0);
    assert_int_equal(co_store_delivery_update(f->s, "1-1", "ncc", 3, 503, "http 503", "pending",
                                              T0 + 5000, err, sizeof err),
                     0);
    /* a late report does not undo a delivery */
    assert_int_equal(co_store_delivery_update(f->s, "1-1", "ops", 1, 0, "shutdown", "pending",
                                              T0 + 6000, err, sizeof err),
                     0);
    pend p = {0};
    assert_int_equal(co_store_deliveries_pending(f->s, T0 - 1000, on_pending, &p, err, sizeof err),
                     0);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.target, "ncc");
    assert_int_equal(p.attempts, 3);
    p = (pend){0};
    assert_int_equal(co_store_deliveries_pending(f->s, T0 + 1, on_pending, &p, err, sizeof err), 0);
    assert_int_equal(p.n, 0); /* too old */
    json_t *j = co_store_notifications(f->s, "S1", 0, 10, NULL, err, sizeof err);
    assert_int_equal(json_array_size(j), 1);
    json_t *nt = json_array_get(j, 0);
    assert_string_equal(str(json_object_get(nt, "payload"), "rule"), "luminance_2d");
    json_t *dl = json_object_get(nt, "deliveries");
    assert_int_equal(json_array_size(dl), 2);
    assert_string_equal(str(json_array_get(dl, 0), "target"), "ncc");
    assert_string_equal(str(json_array_get(dl, 1), "state"), "delivered");
    json_decref(j);
    j = co_store_notifications(f->s, NULL, o.id + 1000, 10, NULL, err, sizeof err);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
}

/* Another collector sharing the store fired an alert this judge has not learnt of yet: its
 * "inactive → pending" leaves the stored alert firing, unchanged and not notified again; its
 * later "pending → firing" is no new notification either. */
static void test_pending_does_not_demote_firing(void **state)
{
    fx *f = *state;
    co_alert_outcome p = apply1(f, chg("inactive", "pending", "warning", 30, T0));
    co_alert_outcome fi = apply1(f, chg("pending", "firing", "warning", 30, T0 + 120000));
    assert_int_equal(fi.id, p.id);
    assert_int_equal(fi.notify, 1);
    co_alert_outcome late = apply1(f, chg("inactive", "pending", "warning", 31, T0 + 180000));
    assert_int_equal(late.id, p.id);
    assert_int_equal(late.notify, 0);
    json_t *j = alerts(f, NULL, NULL);
    assert_int_equal(json_array_size(j), 1);
    json_t *a = json_array_get(j, 0);
    assert_string_equal(str(a, "state"), "firing");
    assert_int_equal(json_integer_value(json_object_get(a, "firing_ms")), T0 + 120000);
    json_decref(j);
    co_alert_outcome again = apply1(f, chg("pending", "firing", "warning", 31, T0 + 300000));
    assert_int_equal(again.id, p.id);
    assert_int_equal(again.notify, 0);
    j = alerts(f, "firing", NULL);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lifecycle, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_pending_does_not_demote_firing, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_ack_and_silence, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_restore_and_notifications, store_fx_setup,
                                        store_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

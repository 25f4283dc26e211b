/* test_scope.c — the caller's scope limits every read of the store and of the query API, and
 * every write of an operator: a store with four cinemas in two provinces and two chains (one
 * without a chain), each with a screen, a device, a series with samples, an agent with a gap,
 * events, an alert, a silence, a notification and compliance figures; for every read and every
 * kind of scope exactly the sites within it come back, limits count only those, and a foreign
 * site's alert, device, series or agent reads as absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/compliance.h"
#include "collector/query.h"
#include "collector/settings.h"
#include "store_fixture.h"

#define T0 1764082800000LL /* 2025-11-25T15:00:00Z */
#define DAY "2025-11-25"
#define DEV "hall1/projector"
#define NSITES 4

typedef store_fx fx;

/* Newest data first: the Beijing sites' events, alerts and notifications are newer than the
 * Guangdong ones, so a limit applied before the scope would find nothing for Guangdong. */
static const struct {
    const char *code, *province, *city, *chain;
} SITES[NSITES] = {
    {"BJ1", "Beijing", "Beijing", "Wanda"},
    {"BJ2", "Beijing", "Beijing", "Capital"},
    {"GD1", "Guangdong", "Guangzhou", "Wanda"},
    {"GD2", "Guangdong", "Shenzhen", NULL},
};

static int64_t alert_id[NSITES];

/* A site's data time: BJ1 newest. */
static int64_t ts_of(int i)
{
    return T0 - (int64_t)i * 60000;
}

static void load(fx *f)
{
    char err[256] = "";
    co_site sites[NSITES];
    co_screen screens[NSITES];
    for (int i = 0; i < NSITES; i++) {
        sites[i] = (co_site){.code = SITES[i].code,
                             .name = SITES[i].code,
                             .province = SITES[i].province,
                             .city = SITES[i].city,
                             .chain = SITES[i].chain};
        screens[i] = (co_screen){.site = SITES[i].code, .screen = "hall1"};
    }
    if (co_store_import(f->s, sites, NSITES, screens, NSITES, "import", err, sizeof err) < 0)
        fail_msg("import: %s", err);
    for (int i = 0; i < NSITES; i++) {
        const char *site = SITES[i].code;
        char agent[32];
        snprintf(agent, sizeof agent, "ag-%s", site);
        cm_batch b;
        cm_batch_init(&b);
        assert_int_equal(cm_batch_set_agent(&b, agent, "1.0.0", site), 0);
        b.seq = 3; /* records 1..2 never arrived: a gap */
        b.sent_ms = T0;
        cm_device_info d = {.id = DEV, .screen = "hall1", .kind = "projector"};
        assert_int_equal(cm_batch_add_device(&b, &d), 0);
        for (int k = 0; k < 3; k++)
            assert_int_equal(cm_batch_add_point(&b, DEV, "lamp_hours", "h", NULL, 0,
                                                ts_of(i) - k * 1000, 100.0 * i + k),
                             0);
        cm_event e = {.device = DEV,
                      .ts_ms = ts_of(i),
                      .severity = "warning",
                      .code = "lamp_strike",
                      .text = site,
                      .source = "agent"};
        assert_int_equal(cm_batch_add_event(&b, &e), 0);
        cm_batch *bp = &b;
        co_batch_result r = 99;
        if (co_store_write(f->s, &bp, 1, &r, err, sizeof err) < 0) fail_msg("write: %s", err);
        assert_int_equal(r, CO_BATCH_STORED);
        cm_batch_free(&b);

        co_alert_change c = {.rule = "luminance_2d",
                             .site = site,
                             .screen = "hall1",
                             .device = DEV,
                             .labels = "{}",
                             .from = "inactive",
                             .to = "firing",
                             .severity = "warning",
                             .value = 30,
                             .threshold = 37.8,
                             .ts_ms = ts_of(i),
                             .text = "luminance low"};
        co_alert_outcome o;
        if (co_store_alerts_apply(f->s, &c, 1, ts_of(i), &o, err, sizeof err) < 0)
            fail_msg("alert: %s", err);
        assert_true(o.id > 0);
        alert_id[i] = o.id;

        co_silence sl = {.site = site,
                         .from_ms = ts_of(i),
                         .until_ms = T0 + 86400000,
                         .by = "ops",
                         .comment = "maintenance"};
        int64_t sid = 0;
        if (co_store_silence_add(f->s, &sl, &sid, err, sizeof err) < 0)
            fail_msg("silence: %s", err);

        char nid[32];
        snprintf(nid, sizeof nid, "n-%s", site);
        const char *targets[] = {"http://127.0.0.1:9/hook"};
        assert_int_equal(co_store_notification_add(f->s, nid, o.id, "firing", site, "{}", targets,
                                                   1, ts_of(i), err, sizeof err),
                         1);
    }
    co_compliance_row rows[NSITES];
    for (int i = 0; i < NSITES; i++)
        rows[i] = (co_compliance_row){.site = SITES[i].code,
                                      .screen = "hall1",
                                      .quantity = "luminance",
                                      .in_ms = 1000 * (i + 1),
                                      .measured_ms = 10000};
    if (co_store_compliance_put(f->s, DAY, rows, NSITES, T0, err, sizeof err) < 0)
        fail_msg("compliance: %s", err);
}

static int setup(void **state)
{
    if (store_fx_setup(state) != 0) return -1;
    load(*state);
    return 0;
}

/* The distinct values of member key of the objects of arr, sorted, joined by ','. Takes arr. */
static char *values(json_t *arr, const char *key)
{
    if (!arr) fail_msg("read failed");
    const char *v[64];
    size_t n = 0, i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        const char *s = json_string_value(json_object_get(o, key));
        if (!s) fail_msg("row %zu without a string '%s'", i, key);
        size_t k = 0;
        while (k < n && strcmp(v[k], s))
            k++;
        if (k == n && n < 64) v[n++] = s;
    }
    for (size_t a = 0; a < n; a++) /* insertion sort */
        for (size_t b = a; b > 0 && strcmp(v[b - 1], v[b]) > 0; b--) {
            const char *t = v[b];
            v[b] = v[b - 1];
            v[b - 1] = t;
        }
    char *out = calloc(1, 512);
    for (size_t a = 0; a < n; a++) {
        size_t l = strlen(out);
        snprintf(out + l, 512 - l, "%s%s", a ? "," : "", v[a]);
    }
    json_decref(arr);
    return out;
}

#define expect(arr, key, want) expect_at(arr, key, want, #arr, __LINE__)
static void expect_at(json_t *arr, const char *key, const char *want, const char *what, int line)
{
    char *got = values(arr, key);
    if (strcmp(got, want)) {
        char msg[600];
        snprintf(msg, sizeof msg, "line %d: %s: got [%s], want [%s]", line, what, got, want);
        free(got);
        fail_msg("%s", msg);
    }
    free(got);
}

typedef struct scope_case {
    co_scope sc;
    const char *sites;     /* the sites within it */
    const char *provinces; /* their provinces */
} scope_case;

static const scope_case CASES[] = {
    {{CO_SCOPE_ALL, ""}, "BJ1,BJ2,GD1,GD2", "Beijing,Guangdong"},
    {{CO_SCOPE_PROVINCE, "Beijing"}, "BJ1,BJ2", "Beijing"},
    {{CO_SCOPE_PROVINCE, "Guangdong"}, "GD1,GD2", "Guangdong"},
    {{CO_SCOPE_PROVINCE, "Tibet"}, "", ""},
    {{CO_SCOPE_CHAIN, "Wanda"}, "BJ1,GD1", "Beijing,Guangdong"},
    {{CO_SCOPE_CHAIN, "Capital"}, "BJ2", "Beijing"},
    {{CO_SCOPE_SITE, "GD2"}, "GD2", "Guangdong"},
    {{CO_SCOPE_SITE, "XX9"}, "", ""},
};
#define NCASES (sizeof CASES / sizeof CASES[0])

/* 1 when site is one of the comma-separated list. */
static int listed(const char *list, const char *site)
{
    size_t n = strlen(site);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, site, n)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static void test_store_reads(void **state)
{
    fx *f = *state;
    char err[256] = "";
    co_range all = {.from_ms = T0 - 3600000, .to_ms = T0 + 3600000, .limit = 100};
    for (size_t c = 0; c < NCASES; c++) {
        const co_scope *sc = &CASES[c].sc;
        const char *want = CASES[c].sites;
        print_message("scope %s %s\n", co_scope_kind_name(sc->kind), sc->value);
        expect(co_store_sites(f->s, sc, err, sizeof err), "code", want);
        expect(co_store_devices(f->s, NULL, sc, err, sizeof err), "site", want);
        expect(co_store_latest(f->s, NULL, DEV, NULL, sc, err, sizeof err), "site", want);
        expect(co_store_series(f->s, NULL, DEV, "lamp_hours", &all, sc, err, sizeof err), "site",
               want);
        co_range hours = all;
        hours.step_ms = 3600000;
        expect(co_store_series(f->s, NULL, DEV, "lamp_hours", &hours, sc, err, sizeof err), "site",
               want);
        expect(co_store_agents(f->s, sc, err, sizeof err), "site", want);
        expect(co_store_events(f->s, NULL, NULL, NULL, &all, sc, err, sizeof err), "site", want);
        expect(co_store_screens(f->s, NULL, NULL, sc, err, sizeof err), "site", want);
        co_alert_filter flt = {.limit = 100};
        expect(co_store_alerts(f->s, &flt, sc, err, sizeof err), "site", want);
        expect(co_store_silences(f->s, NULL, 0, sc, err, sizeof err), "site", want);
        expect(co_store_silences(f->s, NULL, T0, sc, err, sizeof err), "site", want);
        expect(co_store_notifications(f->s, NULL, 0, 100, sc, err, sizeof err), "site", want);
        for (int i = 0; i < NSITES; i++) {
            const char *site = SITES[i].code;
            int in = listed(want, site);
            /* one object of a site: present exactly when the site is within the scope */
            json_t *a = co_store_alert(f->s, alert_id[i], sc, err, sizeof err);
            assert_int_equal(a != NULL, in);
            if (!a) assert_string_equal(err, "");
            json_decref(a);
            json_t *j = co_store_latest(f->s, site, DEV, "lamp_hours", sc, err, sizeof err);
            assert_int_equal(json_array_size(j), (size_t)in);
            json_decref(j);
            j = co_store_series(f->s, site, DEV, "lamp_hours", &all, sc, err, sizeof err);
            assert_int_equal(json_array_size(j), (size_t)in);
            json_decref(j);
            j = co_store_devices(f->s, site, sc, err, sizeof err);
            assert_int_equal(json_array_size(j), (size_t)in);
            json_decref(j);
            j = co_store_screens(f->s, site, "hall1", sc, err, sizeof err);
            assert_int_equal(json_array_size(j), (size_t)in);
            json_decref(j);
            j = co_store_events(f->s, site, DEV, NULL, &all, sc, err, sizeof err);
            assert_int_equal(json_array_size(j), (size_t)in);
            json_decref(j);
            char agent[32];
            snprintf(agent, sizeof agent, "ag-%s", site);
            j = co_store_gaps(f->s, agent, sc, err, sizeof err);
            assert_non_null(j);
            assert_int_equal(json_array_size(j), (size_t)in); /* the gap 1..2 */
            json_decref(j);
            j = co_store_notifications(f->s, NULL, alert_id[i], 10, sc, err, sizeof err);
            assert_int_equal(json_array_size(j), (size_t)in);
            json_decref(j);
            assert_int_equal(co_store_site_in_scope(f->s, site, sc, err, sizeof err), in);
        }
        /* a limit counts only the rows within the scope (filtered before LIMIT): the newest
         * row of the scope, whatever newer rows other sites have */
        char first[8]; /* the codes sort newest first: the first site of the list */
        snprintf(first, sizeof first, "%.*s", (int)strcspn(want, ","), want);
        co_range one = all;
        one.limit = 1;
        expect(co_store_events(f->s, NULL, NULL, NULL, &one, sc, err, sizeof err), "site", first);
        co_alert_filter lim = {.limit = 1};
        expect(co_store_alerts(f->s, &lim, sc, err, sizeof err), "site", first);
        expect(co_store_notifications(f->s, NULL, 0, 1, sc, err, sizeof err), "site", first);
    }
    /* NULL = every site */
    expect(co_store_sites(f->s, NULL, err, sizeof err), "code", "BJ1,BJ2,GD1,GD2");
    assert_int_equal(co_store_site_in_scope(f->s, "anything", NULL, err, sizeof err), 1);
    /* a site scope does not need the site to be stored; a province scope does */
    co_scope bj = {CO_SCOPE_PROVINCE, "Beijing"}, nw = {CO_SCOPE_SITE, "NEW1"};
    assert_int_equal(co_store_site_in_scope(f->s, "NEW1", &nw, err, sizeof err), 1);
    assert_int_equal(co_store_site_in_scope(f->s, "NEW1", &bj, err, sizeof err), 0);
}

static void test_compliance(void **state)
{
    fx *f = *state;
    char err[256] = "";
    int64_t day;
    assert_int_equal(co_compliance_day_parse(DAY, &day), 0);
    for (size_t c = 0; c < NCASES; c++) {
        const co_scope *sc = &CASES[c].sc;
        expect(co_compliance_report(f->s, NULL, CO_LEVEL_SCREEN, day, NULL, NULL, NULL, sc, T0, err,
                                    sizeof err),
               "site", CASES[c].sites);
        expect(co_compliance_report(f->s, NULL, CO_LEVEL_PROVINCE, day, NULL, NULL, NULL, sc, T0,
                                    err, sizeof err),
               "province", CASES[c].provinces);
        /* the national figure sums only the screens within the scope */
        json_t *j = co_compliance_report(f->s, NULL, CO_LEVEL_NATION, day, NULL, NULL, NULL, sc, T0,
                                         err, sizeof err);
        assert_non_null(j);
        json_int_t screens = 0, in = 0;
        for (int i = 0; i < NSITES; i++)
            if (listed(CASES[c].sites, SITES[i].code)) {
                screens++;
                in += 1000 * (i + 1);
            }
        if (!screens) {
            assert_int_equal(json_array_size(j), 0);
        } else {
            json_t *n = json_array_get(j, 0);
            assert_int_equal(json_integer_value(json_object_get(n, "screens")), screens);
            double share =
                json_real_value(json_object_get(json_object_get(n, "luminance"), "in_tolerance"));
            assert_true(share > (double)in / (screens * 10000.0) - 1e-9 &&
                        share < (double)in / (screens * 10000.0) + 1e-9);
        }
        json_decref(j);
    }
    /* the Beijing province row of a Wanda viewer holds BJ1 only (not BJ2) */
    co_scope wanda = {CO_SCOPE_CHAIN, "Wanda"};
    json_t *j = co_compliance_report(f->s, NULL, CO_LEVEL_PROVINCE, day, NULL, "Beijing", NULL,
                                     &wanda, T0, err, sizeof err);
    assert_int_equal(json_array_size(j), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "screens")), 1);
    json_decref(j);
}

/* Run a query handler with "k=v" arguments (NULL-terminated); returns the status. */
static unsigned call(co_query_fn fn, co_query *q, const co_scope *sc, json_t **body, ...)
{
    co_query_arg args[8];
    size_t n = 0;
    va_list ap;
    va_start(ap, body);
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL && n < 8) {
        args[n].key = k;
        args[n].value = va_arg(ap, const char *);
        n++;
    }
    va_end(ap);
    *body = NULL;
    return fn(q, sc, args, n, body);
}

static json_t *data(json_t *body)
{
    json_t *d = json_incref(json_object_get(body, "data"));
    json_decref(body);
    return d;
}

static void test_query_api(void **state)
{
    fx *f = *state;
    co_query *q = co_query_new(f->s);
    assert_non_null(q);
    co_scope bj = {CO_SCOPE_PROVINCE, "Beijing"};
    json_t *b;
    assert_int_equal(call(co_query_sites, q, &bj, &b, NULL), 200);
    expect(data(b), "code", "BJ1,BJ2");
    assert_int_equal(call(co_query_devices, q, &bj, &b, NULL), 200);
    expect(data(b), "site", "BJ1,BJ2");
    assert_int_equal(call(co_query_latest, q, &bj, &b, "device", DEV, NULL), 200);
    expect(data(b), "site", "BJ1,BJ2");
    /* a foreign device named exactly: an empty answer, as for an unknown one */
    assert_int_equal(call(co_query_latest, q, &bj, &b, "device", DEV, "site", "GD1", NULL), 200);
    expect(data(b), "site", "");
    char from[24], to[24];
    snprintf(from, sizeof from, "%lld", (long long)(T0 - 3600000));
    snprintf(to, sizeof to, "%lld", (long long)(T0 + 3600000));
    assert_int_equal(call(co_query_series, q, &bj, &b, "device", DEV, "metric", "lamp_hours",
                          "site", "GD1", "from", from, "to", to, NULL),
                     200);
    expect(data(b), "site", "");
    assert_int_equal(call(co_query_series, q, &bj, &b, "device", DEV, "metric", "lamp_hours",
                          "from", from, "to", to, NULL),
                     200);
    expect(data(b), "site", "BJ1,BJ2");
    assert_int_equal(call(co_query_agents, q, &bj, &b, NULL), 200);
    expect(data(b), "site", "BJ1,BJ2");
    assert_int_equal(call(co_query_gaps, q, &bj, &b, "agent", "ag-GD1", NULL), 200);
    expect(data(b), "agent", "");
    assert_int_equal(call(co_query_gaps, q, &bj, &b, "agent", "ag-BJ2", NULL), 200);
    expect(data(b), "agent", "ag-BJ2");
    assert_int_equal(call(co_query_events, q, &bj, &b, "from", from, "to", to, NULL), 200);
    expect(data(b), "site", "BJ1,BJ2");
    assert_int_equal(call(co_query_screens, q, &bj, &b, NULL), 200);
    expect(data(b), "site", "BJ1,BJ2");
    assert_int_equal(call(co_query_alerts, q, &bj, &b, NULL), 200);
    expect(data(b), "site", "BJ1,BJ2");
    assert_int_equal(call(co_query_silences, q, &bj, &b, "all", "1", NULL), 200);
    expect(data(b), "site", "BJ1,BJ2");
    assert_int_equal(call(co_query_notifications, q, &bj, &b, NULL), 200);
    expect(data(b), "site", "BJ1,BJ2");
    assert_int_equal(call(co_query_compliance, q, &bj, &b, "level", "site", "day", DAY, NULL), 200);
    expect(data(b), "site", "BJ1,BJ2");
    /* one alert: 200 within the scope; outside it exactly the answer for an unknown id */
    char id[24], unknown[24] = "999999";
    snprintf(id, sizeof id, "%lld", (long long)alert_id[1]);
    assert_int_equal(call(co_query_alert, q, &bj, &b, "_path", id, NULL), 200);
    assert_string_equal(json_string_value(json_object_get(b, "site")), "BJ2");
    json_decref(b);
    snprintf(id, sizeof id, "%lld", (long long)alert_id[2]);
    json_t *unk;
    assert_int_equal(call(co_query_alert, q, &bj, &b, "_path", id, NULL), 404);
    assert_int_equal(call(co_query_alert, q, &bj, &unk, "_path", unknown, NULL), 404);
    /* same shape and wording, the id aside */
    assert_string_equal(json_string_value(json_object_get(b, "at")),
                        json_string_value(json_object_get(unk, "at")));
    assert_true(strstr(json_string_value(json_object_get(b, "error")), "no alert") != NULL);
    assert_true(strstr(json_string_value(json_object_get(unk, "error")), "no alert") != NULL);
    json_decref(b);
    json_decref(unk);
    co_query_free(q);
}

static unsigned write_req(fx *f, const co_operator *who, const char *route, const char *rest,
                          const char *method, const char *body, json_t **out)
{
    co_write_req w = {route, rest, method, body, body ? strlen(body) : 0};
    *out = NULL;
    return co_settings_write(f->s, who, &w, out);
}

static void test_operator_writes(void **state)
{
    fx *f = *state;
    char err[256] = "";
    co_operator bj = {.name = "bj-ops", .site = "*"}; /* site is no longer read */
    bj.scope = (co_scope){CO_SCOPE_PROVINCE, "Beijing"};
    co_operator wanda = {.name = "wanda-ops"};
    wanda.scope = (co_scope){CO_SCOPE_CHAIN, "Wanda"};
    co_operator one = {.name = "new-ops"};
    one.scope = (co_scope){CO_SCOPE_SITE, "NEW1"};
    json_t *out;
    /* screens */
    assert_int_equal(
        write_req(f, &bj, "/api/v1/screens/", "GD1/hall1", "PUT", "{\"class\":\"review\"}", &out),
        403);
    json_decref(out);
    assert_int_equal(
        write_req(f, &bj, "/api/v1/screens/", "BJ2/hall2", "PUT", "{\"class\":\"review\"}", &out),
        200);
    assert_string_equal(json_string_value(json_object_get(out, "class")), "review");
    json_decref(out);
    assert_int_equal(
        write_req(f, &wanda, "/api/v1/screens/", "BJ2/hall1", "PUT", "{\"format\":\"3D\"}", &out),
        403);
    json_decref(out);
    assert_int_equal(
        write_req(f, &wanda, "/api/v1/screens/", "GD1/hall1", "PUT", "{\"format\":\"3D\"}", &out),
        200);
    json_decref(out);
    /* a province operator cannot create a cinema; a site operator may name its own */
    assert_int_equal(write_req(f, &bj, "/api/v1/screens/", "NEW1/hall1", "PUT", "{}", &out), 403);
    json_decref(out);
    assert_int_equal(write_req(f, &one, "/api/v1/screens/", "NEW1/hall1", "PUT", "{}", &out), 200);
    json_decref(out);
    json_t *j = co_store_screens(f->s, "GD1", "hall1", NULL, err, sizeof err);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "format")), "3D");
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "class")),
                        "theatre");
    json_decref(j);
    /* acknowledgements: a foreign alert is not found */
    char rest[40];
    snprintf(rest, sizeof rest, "%lld/ack", (long long)alert_id[2]);
    assert_int_equal(write_req(f, &bj, "/api/v1/alerts/", rest, "POST", "{}", &out), 404);
    json_decref(out);
    assert_int_equal(
        write_req(f, &wanda, "/api/v1/alerts/", rest, "POST", "{\"comment\":\"ok\"}", &out), 200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "ack"), "by")),
                        "wanda-ops");
    json_decref(out);
    snprintf(rest, sizeof rest, "%lld/ack", (long long)alert_id[1]);
    assert_int_equal(write_req(f, &bj, "/api/v1/alerts/", rest, "POST", "", &out), 200);
    json_decref(out);
    j = co_store_alert(f->s, alert_id[0], NULL, err, sizeof err);
    assert_true(json_is_null(json_object_get(j, "ack")));
    json_decref(j);
    /* silences */
    assert_int_equal(write_req(f, &bj, "/api/v1/silences", "", "POST",
                               "{\"site\":\"GD2\",\"until\":\"2099-11-26T00:00:00Z\","
                               "\"from\":\"2099-11-25T00:00:00Z\"}",
                               &out),
                     403);
    assert_string_equal(json_string_value(json_object_get(out, "at")), "site");
    json_decref(out);
    assert_int_equal(write_req(f, &bj, "/api/v1/silences", "", "POST",
                               "{\"site\":\"BJ1\",\"until\":\"2099-11-26T00:00:00Z\","
                               "\"from\":\"2099-11-25T00:00:00Z\"}",
                               &out),
                     201);
    json_decref(out);
    j = co_store_silences(f->s, "BJ1", 0, NULL, err, sizeof err);
    assert_int_equal(json_array_size(j), 2);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_reads, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_compliance, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_query_api, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_operator_writes, setup, store_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

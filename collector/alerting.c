/* alerting.c — see alerting.h. */
#include "alerting.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errbuf.h"
#include "judge.h"
#include "log.h"
#include "notify.h"
#include "timeutil.h"

#define MAX_TARGETS 64

struct co_alerting {
    co_store *store;
    co_rules *rules;
    co_judge *judge;
    co_notify *notify;
    co_compliance *compliance;
    int64_t tick_ms;
    int64_t max_age_ms;

    pthread_mutex_t mu; /* guards screens, stats, stop */
    json_t *screens;    /* "site\x1fscreen" -> {"class","display","spl_ref"} */
    co_alerting_stats st;
    int stop;
    pthread_cond_t cv;
    pthread_t timer;
    int timer_started;

    /* Judging and storing this collector's transitions (writer thread, timer) and bringing
     * the judge in line with the store (timer) take turns under jmu, so the store read by
     * a reconciliation holds every transition this judge made before it. */
    pthread_mutex_t jmu;
    json_t *heard;    /* device key -> wall ms its latest stored batch was judged here */
    json_t *counted;  /* (absence rule, device) key -> the same for a batch with a sample
                         that rule counts as life */
    json_t *released; /* device keys whose absence alert was held back once (elsewhere) */

    co_transitions tr; /* writer thread only */

    co_alerting_hook hook; /* guarded by jmu: called from apply */
    void *hook_ud;
};

/* ---------------------------------------------------------------- screen settings */

static void screen_key(char *out, size_t n, const char *site, const char *screen)
{
    snprintf(out, n, "%s\x1f%s", site ? site : "", screen ? screen : "");
}

/* An unambiguous key of n strings (each length-prefixed; NULL as ""): malloc'ed, NULL on OOM. */
static char *key_of(const char *const *parts, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += 24 + (parts[i] ? strlen(parts[i]) : 0);
    char *k = malloc(len), *p = k;
    if (!k) return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *v = parts[i] ? parts[i] : "";
        p += snprintf(p, len - (size_t)(p - k), "%zu:%s", strlen(v), v);
    }
    return k;
}

static char *device_key(const char *site, const char *device)
{
    const char *parts[2] = {site, device};
    return key_of(parts, 2);
}

static char *alert_key(const char *rule, const char *site, const char *device, const char *labels)
{
    const char *parts[4] = {rule, site, device, labels};
    return key_of(parts, 4);
}

static int refresh_screens(co_alerting *a)
{
    char err[256] = "";
    json_t *rows = co_store_screens(a->store, NULL, NULL, NULL, err, sizeof err);
    if (!rows) {
        cm_log_limited("alerting-screens", 60, CM_LOG_WARN, "alerting: screen settings: %s", err);
        return -1;
    }
    json_t *map = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        char key[2 * CM_MAX_NAME + 4];
        screen_key(key, sizeof key, json_string_value(json_object_get(r, "site")),
                   json_string_value(json_object_get(r, "screen")));
        json_object_set(map, key, r);
    }
    json_decref(rows);
    pthread_mutex_lock(&a->mu);
    json_t *old = a->screens;
    a->screens = map;
    pthread_mutex_unlock(&a->mu);
    json_decref(old);
    return 0;
}

/* Judge callback (judge mutex held): the screen's class and display. */
static int cb_screen(void *ud, const char *site, const char *screen, co_screen_settings *out)
{
    co_alerting *a = ud;
    char key[2 * CM_MAX_NAME + 4];
    screen_key(key, sizeof key, site, screen);
    int found = 0;
    pthread_mutex_lock(&a->mu);
    json_t *r = json_object_get(a->screens, key);
    if (r) {
        co_screen_class c = CO_CLASS_ANY;
        co_display d = CO_DISPLAY_ANY;
        co_screen_class_parse(json_string_value(json_object_get(r, "class")), &c);
        co_display_parse(json_string_value(json_object_get(r, "display")), &d);
        out->cls = c;
        out->display = d;
        found = 1;
    }
    pthread_mutex_unlock(&a->mu);
    return found;
}

/* Judge callback: the commissioning reference of a sample (SPL per channel). */
static int cb_reference(void *ud, const char *site, const char *screen, const char *device,
                        const char *metric, const cm_label *labels, size_t nlabels, double *out)
{
    (void)device;
    co_alerting *a = ud;
    if (strcmp(metric, "spl_dbc") != 0) return 0;
    const char *channel = NULL;
    for (size_t i = 0; i < nlabels; i++)
        if (!strcmp(labels[i].key, "channel")) channel = labels[i].value;
    if (!channel) return 0;
    char key[2 * CM_MAX_NAME + 4];
    screen_key(key, sizeof key, site, screen);
    int found = 0;
    pthread_mutex_lock(&a->mu);
    json_t *v =
        json_object_get(json_object_get(json_object_get(a->screens, key), "spl_ref"), channel);
    if (json_is_number(v)) {
        *out = json_number_value(v);
        found = 1;
    }
    pthread_mutex_unlock(&a->mu);
    return found;
}

/* ---------------------------------------------------------------- transitions */

static const char *sev_name(co_severity s)
{
    return co_severity_name(s);
}

/* The payload kept in the notification log: everything needed to send it again. */
static json_t *payload_of(const char *id, const char *kind, const co_transition *t)
{
    json_t *labels = json_loads(t->labels ? t->labels : "{}", 0, NULL);
    if (!labels) labels = json_object();
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:I}", "id", id,
                     "kind", kind, "rule", t->rule_id, "severity", sev_name(t->severity), "site",
                     t->site, "screen", t->screen ? t->screen : "", "device", t->device, "labels",
                     labels, "value", isfinite(t->value) ? json_real(t->value) : json_null(),
                     "threshold", isfinite(t->threshold) ? json_real(t->threshold) : json_null(),
                     "text", t->text ? t->text : "", "ts_ms", (json_int_t)t->ts_ms);
}

/* A co_notification viewing a stored payload (strings point into it). -1 when malformed. */
static int notification_of(json_t *p, co_notification *nt, char *labels_buf, size_t buflen)
{
    const char *kind = json_string_value(json_object_get(p, "kind"));
    co_severity sev;
    if (!kind || co_severity_parse(json_string_value(json_object_get(p, "severity")), &sev) < 0)
        return -1;
    char *labels = json_dumps(json_object_get(p, "labels"), JSON_COMPACT | JSON_SORT_KEYS);
    if (!labels) return -1;
    snprintf(labels_buf, buflen, "%s", labels);
    free(labels);
    json_t *v = json_object_get(p, "value"), *th = json_object_get(p, "threshold");
    const char *screen = json_string_value(json_object_get(p, "screen"));
    *nt = (co_notification){
        .id = json_string_value(json_object_get(p, "id")),
        .kind = !strcmp(kind, "resolved") ? CO_NOTIFY_RESOLVED : CO_NOTIFY_FIRING,
        .rule = json_string_value(json_object_get(p, "rule")),
        .severity = sev,
        .site = json_string_value(json_object_get(p, "site")),
        .screen = screen && *screen ? screen : NULL,
        .device = json_string_value(json_object_get(p, "device")),
        .labels_json = labels_buf,
        .value = json_is_number(v) ? json_number_value(v) : NAN,
        .threshold = json_is_number(th) ? json_number_value(th) : NAN,
        .text = json_string_value(json_object_get(p, "text")),
        .ts_ms = json_integer_value(json_object_get(p, "ts_ms")),
    };
    return nt->id && nt->rule && nt->site ? 0 : -1;
}

/* Log and queue the notification of transition t of alert id. */
static void notify_one(co_alerting *a, int64_t alert_id, const co_transition *t)
{
    const char *kind =
        t->to == CO_ALERT_RESOLVED || t->to == CO_ALERT_INACTIVE ? "resolved" : "firing";
    char id[96];
    snprintf(id, sizeof id, "%lld-%lld-%s-%s", (long long)alert_id, (long long)t->ts_ms, kind,
             sev_name(t->severity));
    json_t *p = payload_of(id, kind, t);
    char *text = p ? json_dumps(p, JSON_COMPACT) : NULL;
    co_notification nt;
    char labels[4096], err[256] = "";
    if (!text || notification_of(p, &nt, labels, sizeof labels) < 0) {
        cm_log_limited("alerting-notify", 10, CM_LOG_ERROR,
                       "alerting: notification %s: out of "
                       "memory",
                       id);
        goto out;
    }
    const char *targets[MAX_TARGETS];
    size_t nt_count = co_notify_targets_for(a->notify, &nt, targets, MAX_TARGETS);
    if (nt_count == 0) goto out; /* no webhook wants it */
    int stored = co_store_notification_add(a->store, id, alert_id, kind, t->site, text, targets,
                                           nt_count, cm_now_ms(), err, sizeof err);
    if (stored < 0) {
        cm_log_limited("alerting-notify", 10, CM_LOG_ERROR, "alerting: notification %s: %s", id,
                       err);
        goto out;
    }
    if (stored == 0) goto out; /* logged (and queued) before */
    if (co_notify_enqueue(a->notify, &nt, err, sizeof err) < 0)
        cm_log_limited("alerting-notify", 10, CM_LOG_ERROR, "alerting: notification %s: %s", id,
                       err);
    pthread_mutex_lock(&a->mu);
    a->st.notifications++;
    pthread_mutex_unlock(&a->mu);
out:
    free(text);
    json_decref(p);
}

/* Store every transition of a->tr (or tr) as alert changes, then notify. */
static void apply(co_alerting *a, co_transitions *tr)
{
    if (tr->n == 0) return;
    co_alert_change *c = calloc(tr->n, sizeof *c);
    co_alert_outcome *o = calloc(tr->n, sizeof *o);
    char err[256] = "";
    if (!c || !o) {
        cm_log_limited("alerting-apply", 10, CM_LOG_ERROR, "alerting: out of memory");
        goto out;
    }
    for (size_t i = 0; i < tr->n; i++) {
        const co_transition *t = &tr->v[i];
        c[i] = (co_alert_change){.rule = t->rule_id,
                                 .site = t->site,
                                 .screen = t->screen,
                                 .device = t->device,
                                 .labels = t->labels,
                                 .from = co_alert_state_name(t->from),
                                 .to = co_alert_state_name(t->to),
                                 .severity = sev_name(t->severity),
                                 .value = t->value,
                                 .threshold = t->threshold,
                                 .ts_ms = t->ts_ms,
                                 .text = t->text};
    }
    if (co_store_alerts_apply(a->store, c, tr->n, cm_now_ms(), o, err, sizeof err) < 0) {
        cm_log_limited("alerting-apply", 10, CM_LOG_ERROR,
                       "alerting: storing %zu alert "
                       "change(s): %s",
                       tr->n, err);
        pthread_mutex_lock(&a->mu);
        a->st.errors++;
        pthread_mutex_unlock(&a->mu);
        goto out;
    }
    if (a->hook) a->hook(a->hook_ud, c, o, tr->n);
    for (size_t i = 0; i < tr->n; i++) {
        const co_transition *t = &tr->v[i];
        if (t->to == CO_ALERT_FIRING && t->from != CO_ALERT_FIRING)
            cm_info("alert %lld firing: %s %s %s (%s)", (long long)o[i].id, t->rule_id, t->site,
                    t->device, sev_name(t->severity));
        else if (t->to == CO_ALERT_RESOLVED && o[i].id)
            cm_info("alert %lld resolved: %s %s %s", (long long)o[i].id, t->rule_id, t->site,
                    t->device);
        if (o[i].notify && a->notify) notify_one(a, o[i].id, t);
    }
    pthread_mutex_lock(&a->mu);
    a->st.transitions += tr->n;
    pthread_mutex_unlock(&a->mu);
out:
    free(c);
    free(o);
    co_transitions_clear(tr);
}

/* The screen of a device of batch b: its inventory's, else the part of its id before '/'. */
static const char *screen_of(const cm_batch *b, const char *device, char *buf, size_t n)
{
    for (size_t i = 0; i < b->ndevices; i++)
        if (b->devices[i].screen && !strcmp(b->devices[i].id, device)) return b->devices[i].screen;
    const char *slash = strchr(device, '/');
    if (!slash || (size_t)(slash - device) >= n) return NULL;
    memcpy(buf, device, (size_t)(slash - device));
    buf[slash - device] = '\0';
    return buf;
}

#define MAX_ANY 64 /* absence rules over every metric whose life this file tracks */

/* The absence rules over every metric (co_rules_any_metric order, a bit each) that count a
 * sample of metric as life. */
static uint64_t life_of(const co_alerting *a, const char *metric)
{
    size_t nany;
    const co_rule *const *any = co_rules_any_metric(a->rules, &nany);
    uint64_t bits = 0;
    for (size_t r = 0; r < nany && r < MAX_ANY; r++) {
        int out = 0;
        for (size_t x = 0; x < any[r]->nexclude && !out; x++)
            out = strcmp(any[r]->exclude[x], metric) == 0;
        if (!out) bits |= 1ull << r;
    }
    return bits;
}

static char *counted_key(const char *rule, const char *site, const char *device)
{
    const char *parts[3] = {rule, site, device};
    return key_of(parts, 3);
}

/* Remember that a stored batch brought (site, device) here at now, with life for the
 * absence rules of the bits (jmu held). */
static void hear(co_alerting *a, const char *site, const char *device, uint64_t life, int64_t now)
{
    char *k = device_key(site, device);
    if (k) json_object_set_new(a->heard, k, json_integer(now));
    free(k);
    size_t nany;
    const co_rule *const *any = co_rules_any_metric(a->rules, &nany);
    for (size_t r = 0; r < nany && r < MAX_ANY; r++) {
        if (!(life & (1ull << r))) continue;
        char *ck = counted_key(any[r]->id, site, device);
        if (ck) json_object_set_new(a->counted, ck, json_integer(now));
        free(ck);
    }
}

void co_alerting_judge(void *ud, cm_batch *const *batches, const co_batch_result *results, size_t n)
{
    co_alerting *a = ud;
    if (!a->judge) return;
    unsigned long long ns = 0, ne = 0, nerr = 0;
    int64_t now = cm_now_ms();
    pthread_mutex_lock(&a->jmu);
    for (size_t i = 0; i < n; i++) {
        if (results[i] != CO_BATCH_STORED) continue; /* judged when it was stored */
        const cm_batch *b = batches[i];
        for (size_t k = 0; k < b->ndevices; k++)
            hear(a, b->site, b->devices[k].id, 0, now);
        /* a device's series come together in a batch: look its screen up once per run */
        char sbuf[CM_MAX_NAME + 1];
        const char *dev = NULL, *screen = NULL;
        uint64_t life = 0;
        for (size_t k = 0; k < b->nseries; k++) {
            const cm_series *se = &b->series[k];
            if (!dev || strcmp(dev, se->device) != 0) {
                if (dev) hear(a, b->site, dev, life, now);
                dev = se->device;
                screen = screen_of(b, dev, sbuf, sizeof sbuf);
                life = 0;
            }
            if (se->npoints > 0) life |= life_of(a, se->metric);
            for (size_t p = 0; p < se->npoints; p++) {
                if (co_judge_sample(a->judge, b->site, screen, se->device, se->metric, se->labels,
                                    se->nlabels, se->points[p].ts_ms, se->points[p].value,
                                    &a->tr) < 0)
                    nerr++;
                ns++;
            }
        }
        if (dev) hear(a, b->site, dev, life, now);
        for (size_t k = 0; k < b->nevents; k++) {
            const cm_event *e = &b->events[k];
            char ebuf[CM_MAX_NAME + 1];
            const char *escreen = screen_of(b, e->device, ebuf, sizeof ebuf);
            hear(a, b->site, e->device, 0, now);
            if (co_judge_event(a->judge, b->site, escreen, e->device, e->code, e->source,
                               e->severity, e->ts_ms, e->text, &a->tr) < 0)
                nerr++;
            ne++;
        }
    }
    apply(a, &a->tr);
    pthread_mutex_unlock(&a->jmu);
    pthread_mutex_lock(&a->mu);
    a->st.samples += ns;
    a->st.events += ne;
    a->st.errors += nerr;
    pthread_mutex_unlock(&a->mu);
}

/* ---------------------------------------------------------------- the store's alerts */

static int restore_one(co_alerting *a, const co_alert_row *r, char *err, size_t errlen);

typedef struct sync_ctx {
    co_alerting *a;
    json_t *judged; /* alert key -> [rule, site, device, labels, state, severity]: active in
                       the judge */
    size_t restored, failed;
} sync_ctx;

/* co_judge_foreach callback: note one active alert of the judge. */
static int on_judged(void *ud, const co_alert_info *in)
{
    sync_ctx *c = ud;
    char *k = alert_key(in->rule_id, in->site, in->device, in->labels);
    json_t *v = json_pack("[s,s,s,s,s,s]", in->rule_id, in->site, in->device, in->labels,
                          co_alert_state_name(in->state), co_severity_name(in->severity));
    int rc = k && v ? json_object_set_new(c->judged, k, v) : -1;
    if (!k || !v) json_decref(v);
    free(k);
    return rc;
}

/* co_store_alerts_active callback: an open alert the judge holds in the same state and
 * severity is kept; one it lacks or holds otherwise is taken in as stored (opened, fired or
 * changed by another collector sharing the store). */
static int on_stored(void *ud, const co_alert_row *r)
{
    sync_ctx *c = ud;
    char *k = alert_key(r->rule, r->site, r->device, r->labels);
    if (!k) return -1;
    json_t *j = json_object_get(c->judged, k);
    int same = j && !strcmp(json_string_value(json_array_get(j, 4)), r->state) &&
               !strcmp(json_string_value(json_array_get(j, 5)), r->severity);
    if (j) json_object_del(c->judged, k);
    if (!same) {
        char err[256] = "";
        if (restore_one(c->a, r, err, sizeof err) < 0) {
            c->failed++;
            cm_log_limited("alerting-sync", 600, CM_LOG_WARN,
                           "alerting: alert %s %s %s of the store not taken into the judge: %s",
                           r->rule, r->site, r->device, err);
        } else {
            c->restored++;
        }
    }
    free(k);
    return 0;
}

/* Bring the judge in line with the store's open alerts (docs/cluster.md): collectors sharing
 * one store each judge the agents routed to them, and after a failover one judges series
 * whose alerts another opened; an alert ended elsewhere must not live on here. Open alerts
 * the judge lacks (or holds in another state or severity) are restored as stored, alerts it
 * holds that the store has ended are forgotten. jmu held. */
static void reconcile(co_alerting *a)
{
    sync_ctx c = {.a = a, .judged = json_object()};
    char err[256] = "";
    if (!c.judged || co_judge_foreach(a->judge, on_judged, &c) != 0) {
        cm_log_limited("alerting-sync", 60, CM_LOG_ERROR, "alerting: sync: out of memory");
        goto out;
    }
    if (co_store_alerts_active(a->store, on_stored, &c, err, sizeof err) < 0) {
        cm_log_limited("alerting-sync", 60, CM_LOG_WARN, "alerting: sync with the store: %s", err);
        goto out;
    }
    size_t forgotten = 0;
    const char *k;
    json_t *v;
    json_object_foreach(c.judged, k, v)
    {
        if (co_judge_forget(a->judge, json_string_value(json_array_get(v, 0)),
                            json_string_value(json_array_get(v, 1)),
                            json_string_value(json_array_get(v, 2)),
                            json_string_value(json_array_get(v, 3))) > 0)
            forgotten++;
    }
    if (c.restored || forgotten)
        cm_debug("alerting: %zu alert(s) opened elsewhere taken in, %zu ended elsewhere dropped",
                 c.restored, forgotten);
out:
    json_decref(c.judged);
}

/* The store's last_seen_ms of (site, device) from devs (site -> {device -> ms}), reading the
 * store once per site (or all sites at once: all). -1 when unknown or unreadable. */
static int64_t stored_seen(co_alerting *a, json_t *devs, int all, const char *site,
                           const char *device)
{
    json_t *m = json_object_get(devs, all ? "" : site);
    if (!m) {
        char err[256] = "";
        json_t *rows = co_store_devices(a->store, all ? NULL : site, NULL, err, sizeof err);
        if (!rows) {
            cm_log_limited("alerting-seen", 60, CM_LOG_WARN, "alerting: devices: %s", err);
            return -1;
        }
        m = json_object();
        size_t i;
        json_t *d;
        json_array_foreach(rows, i, d)
        {
            char *k = device_key(json_string_value(json_object_get(d, "site")),
                                 json_string_value(json_object_get(d, "id")));
            json_t *seen = json_object_get(d, "last_seen_ms");
            if (k && json_is_integer(seen)) json_object_set(m, k, seen);
            free(k);
        }
        json_decref(rows);
        json_object_set_new(devs, all ? "" : site, m);
    }
    char *k = device_key(site, device);
    json_t *seen = k ? json_object_get(m, k) : NULL;
    free(k);
    return json_is_integer(seen) ? json_integer_value(seen) : -1;
}

/* Absence alerts the tick raised for devices whose data reaches the store through another
 * collector are not this judge's to raise (its agent is routed elsewhere; docs/cluster.md).
 * An alert stands when a batch of the device came here after the last one with life in it
 * (its agent uploads here: the device itself is silent), or when the store has not seen the
 * device within the allowed silence either (its agent is silent). Otherwise it is held back:
 * the first time the device is treated as seen now (a batch of ours may be committed but not
 * judged yet), the second time in a row its watch here ends (its samples restart it). jmu
 * held. */
static void hold_back_elsewhere(co_alerting *a, co_transitions *tr, int64_t now)
{
    size_t nsites = 0;
    json_t *sites = json_object();
    for (size_t i = 0; i < tr->n && sites; i++) {
        const co_rule *r = co_rules_find(a->rules, tr->v[i].rule_id);
        if (r && r->kind == CO_RULE_ABSENCE && tr->v[i].to == CO_ALERT_FIRING &&
            !json_object_get(sites, tr->v[i].site)) {
            json_object_set_new(sites, tr->v[i].site, json_true());
            nsites++;
        }
    }
    json_decref(sites);
    if (nsites == 0) return;
    int all = nsites > 8; /* many sites: one read of every device instead of one per site */
    json_t *devs = json_object();
    for (size_t i = 0; i < tr->n && devs;) {
        const co_transition *t = &tr->v[i];
        const co_rule *r = co_rules_find(a->rules, t->rule_id);
        if (!r || r->kind != CO_RULE_ABSENCE || t->to != CO_ALERT_FIRING) {
            i++;
            continue;
        }
        int64_t limit = isfinite(t->threshold) ? (int64_t)(t->threshold * 1000.0) : 0;
        char *k = device_key(t->site, t->device), *ck = counted_key(t->rule_id, t->site, t->device);
        json_t *h = k ? json_object_get(a->heard, k) : NULL;
        json_t *c = ck ? json_object_get(a->counted, ck) : NULL;
        free(ck);
        int here = json_is_integer(h) &&
                   (!json_is_integer(c) || json_integer_value(h) > json_integer_value(c));
        int64_t seen = -1;
        if (k && !here) seen = stored_seen(a, devs, all, t->site, t->device);
        if (!k || seen < 0 || now - seen > limit) { /* heard here, or silent everywhere */
            if (k) json_object_del(a->released, k);
            free(k);
            i++;
            continue;
        }
        if (json_object_get(a->released, k)) {
            co_judge_forget(a->judge, t->rule_id, t->site, t->device, t->labels);
            json_object_del(a->released, k);
        } else {
            co_judge_device_seen(a->judge, t->site, t->screen && *t->screen ? t->screen : NULL,
                                 t->device, now);
            json_object_set_new(a->released, k, json_true());
        }
        cm_debug("alerting: %s of %s %s not raised here: stored through another collector %lld ms "
                 "ago",
                 t->rule_id, t->site, t->device, (long long)(now - seen));
        free(k);
        co_transitions_remove(tr, i);
    }
    json_decref(devs);
}

/* ---------------------------------------------------------------- timer */

static void *timer_main(void *arg)
{
    co_alerting *a = arg;
    co_transitions tr = {0};
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (a->tick_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(a->tick_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&a->cv, &a->mu, &ts);
        if (a->stop) break;
        pthread_mutex_unlock(&a->mu);
        refresh_screens(a);
        pthread_mutex_lock(&a->jmu);
        reconcile(a);
        int64_t now = cm_now_ms();
        if (co_judge_tick(a->judge, now, &tr) < 0)
            cm_log_limited("alerting-tick", 60, CM_LOG_ERROR, "alerting: tick: out of memory");
        hold_back_elsewhere(a, &tr, now);
        apply(a, &tr);
        pthread_mutex_unlock(&a->jmu);
        char err[256] = "";
        if (co_compliance_tick(a->compliance, cm_now_ms(), err, sizeof err) < 0)
            cm_log_limited("alerting-compliance", 600, CM_LOG_ERROR, "compliance: %s", err);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    co_transitions_free(&tr);
    return NULL;
}

/* ---------------------------------------------------------------- start and restore */

/* Take stored alert r into the judge (no transition). 0 or -1 with err. */
static int restore_one(co_alerting *a, const co_alert_row *r, char *err, size_t errlen)
{
    co_alert_info in = {.rule_id = r->rule,
                        .site = r->site,
                        .screen = r->screen,
                        .device = r->device,
                        .labels = r->labels,
                        .state = !strcmp(r->state, "firing") ? CO_ALERT_FIRING : CO_ALERT_PENDING,
                        .value = r->value,
                        .threshold = r->threshold,
                        .since_ms = !strcmp(r->state, "firing") && r->firing_ms ? r->firing_ms
                                                                                : r->started_ms,
                        .last_ms = r->updated_ms,
                        .count = 1};
    co_severity sev = CO_SEV_WARNING;
    co_severity_parse(r->severity, &sev);
    in.severity = sev;
    return co_judge_restore(a->judge, &in, err, errlen);
}

/* co_store_alerts_active callback at start: every active alert into the judge. */
static int restore_alert(void *ud, const co_alert_row *r)
{
    co_alerting *a = ud;
    char err[256] = "";
    if (restore_one(a, r, err, sizeof err) < 0)
        cm_warn("alerting: alert %s %s %s not restored: %s", r->rule, r->site, r->device, err);
    return 0;
}

static int on_pending(void *ud, const char *id, const char *target, const char *payload,
                      unsigned attempts, int64_t created_ms)
{
    co_alerting *a = ud;
    json_t *p = json_loads(payload, 0, NULL);
    co_notification nt;
    char labels[4096], err[256] = "";
    if (!p || notification_of(p, &nt, labels, sizeof labels) < 0)
        cm_warn("alerting: notification %s: stored payload unreadable, not resent", id);
    else if (co_notify_restore(a->notify, &nt, target, attempts, created_ms, err, sizeof err) < 0)
        cm_warn("alerting: notification %s to '%s' not resent: %s", id, target, err);
    json_decref(p);
    return 0;
}

/* Notifier callback (worker thread): the delivery log. */
static void on_attempt(void *ud, const co_notify_attempt *at)
{
    co_alerting *a = ud;
    const char *state = at->delivered ? "delivered" : at->final ? "failed" : "pending";
    char err[256] = "";
    if (co_store_delivery_update(a->store, at->id, at->target, at->attempt, at->http_status,
                                 at->error, state, cm_now_ms(), err, sizeof err) < 0)
        cm_log_limited("alerting-delivery", 10, CM_LOG_ERROR,
                       "alerting: delivery log of %s to '%s': %s", at->id, at->target, err);
}

int co_alerting_start(co_alerting **out, co_store *s, const co_config *cfg, char *err,
                      size_t errlen)
{
    co_alerting *a = calloc(1, sizeof *a);
    if (!a) {
        cm_seterr(err, errlen, "out of memory");
        return -1;
    }
    a->store = s;
    a->tick_ms = cfg->tick_ms > 0 ? cfg->tick_ms : 5000;
    a->max_age_ms = cfg->notify.max_age_ms;
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->jmu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->heard = json_object();
    a->counted = json_object();
    a->released = json_object();
    *out = a;
    if (!a->heard || !a->counted || !a->released) {
        cm_seterr(err, errlen, "out of memory");
        goto fail;
    }
    if (!cfg->rules_enabled) {
        cm_info("alerting: rules disabled ([rules] enabled = false)");
        return 0;
    }
    a->rules = co_rules_load_dir(cfg->rules_dir, err, errlen);
    if (!a->rules) goto fail;
    co_judge_callbacks cb = {.screen = cb_screen, .reference = cb_reference, .ud = a};
    if (!(a->judge = co_judge_new(a->rules, &cb))) {
        cm_seterr(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->overrides_path) {
        co_overrides *ov = co_overrides_load(a->rules, cfg->overrides_path, err, errlen);
        if (!ov) goto fail;
        co_judge_set_overrides(a->judge, ov);
    }
    if (!(a->compliance = co_compliance_new(s, a->rules, a->judge, cfg->compliance_interval_ms))) {
        cm_seterr(err, errlen, "out of memory");
        goto fail;
    }
    if (refresh_screens(a) < 0) {
        cm_seterr(err, errlen, "cannot read the screen settings from the store");
        goto fail;
    }
    if (co_store_alerts_active(s, restore_alert, a, err, errlen) < 0) goto fail;
    json_t *devs = co_store_devices(s, NULL, NULL, err, errlen);
    if (!devs) goto fail;
    size_t i;
    json_t *d;
    json_array_foreach(devs, i, d)
    {
        json_t *seen = json_object_get(d, "last_seen_ms");
        if (json_is_integer(seen))
            co_judge_device_seen(a->judge, json_string_value(json_object_get(d, "site")),
                                 json_string_value(json_object_get(d, "screen")),
                                 json_string_value(json_object_get(d, "id")),
                                 json_integer_value(seen));
    }
    json_decref(devs);
    if (cfg->notify.ntargets > 0) {
        if (co_notify_start(&a->notify, &cfg->notify, on_attempt, a, err, errlen) < 0) goto fail;
        if (co_store_deliveries_pending(s, cm_now_ms() - a->max_age_ms, on_pending, a, err,
                                        errlen) < 0)
            goto fail;
    }
    /* Start the judge's clock now: samples judged from here on count as arrived at this
     * time at the earliest, so the first batches after a restart (a backlog, say) are not
     * taken for silence at the first tick. Devices silent since before the restart fire. */
    co_transitions first = {0};
    if (co_judge_tick(a->judge, cm_now_ms(), &first) < 0)
        cm_warn("alerting: first tick: out of memory");
    apply(a, &first);
    co_transitions_free(&first);
    if (pthread_create(&a->timer, NULL, timer_main, a) != 0) {
        cm_seterr(err, errlen, "cannot start the alerting timer");
        goto fail;
    }
    a->timer_started = 1;
    cm_info("alerting: %zu rules from %s%s%s, %zu active alerts restored, %zu webhooks",
            co_rules_count(a->rules), cfg->rules_dir, cfg->overrides_path ? ", overrides " : "",
            cfg->overrides_path ? cfg->overrides_path : "", co_judge_active(a->judge),
            cfg->notify.ntargets);
    return 0;
fail:
    co_alerting_stop(a, 0);
    *out = NULL;
    return -1;
}

void co_alerting_set_hook(co_alerting *a, co_alerting_hook fn, void *ud)
{
    if (!a) return;
    pthread_mutex_lock(&a->jmu);
    a->hook = fn;
    a->hook_ud = ud;
    pthread_mutex_unlock(&a->jmu);
}

const co_rules *co_alerting_rules(const co_alerting *a)
{
    return a ? a->rules : NULL;
}

co_compliance *co_alerting_compliance(const co_alerting *a)
{
    return a ? a->compliance : NULL;
}

void co_alerting_stats_get(co_alerting *a, co_alerting_stats *out)
{
    pthread_mutex_lock(&a->mu);
    *out = a->st;
    pthread_mutex_unlock(&a->mu);
    out->active = a->judge ? co_judge_active(a->judge) : 0;
}

void co_alerting_stop(co_alerting *a, int64_t grace_ms)
{
    if (!a) return;
    if (a->timer_started) {
        pthread_mutex_lock(&a->mu);
        a->stop = 1;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->timer, NULL);
    }
    if (a->notify) {
        size_t left = co_notify_stop(a->notify, grace_ms);
        if (left) cm_info("alerting: %zu webhook deliveries left pending (resent at start)", left);
    }
    co_compliance_free(a->compliance);
    co_judge_free(a->judge);
    co_rules_free(a->rules);
    co_transitions_free(&a->tr);
    json_decref(a->screens);
    json_decref(a->heard);
    json_decref(a->counted);
    json_decref(a->released);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->jmu);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

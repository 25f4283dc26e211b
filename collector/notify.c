/* notify.c — webhook delivery: one worker thread drives a libcurl multi handle with one easy
 * handle per target.
 *
 * Each target has a FIFO of deliveries and at most one request in flight; a retryable failure
 * holds the target (head of line) until its backoff ends, so a receiver that is down gets one
 * request per backoff step, not one per queued notification, and order is kept. The rate
 * limit is a sliding window over the start times of the last rate_per_minute attempts.
 * Callbacks run outside the lock; a delivery leaves its queue before it is reported. */
#include "notify.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "timeutil.h"

#define DEFAULT_QUEUE_CAP 10000
#define DEFAULT_MAX_AGE_MS (24LL * 3600 * 1000)
#define DEFAULT_BACKOFF_BASE_MS 1000
#define DEFAULT_BACKOFF_CAP_MS (10LL * 60 * 1000)
#define DEFAULT_RATE_WINDOW_MS 60000
#define DEFAULT_RATE 60
#define DEFAULT_TIMEOUT_MS 10000
#define MAX_RETRY_AFTER_MS (3600LL * 1000)
#define MAX_ID 200
#define RECENT 1024 /* delivered (id, target) hashes remembered against re-sends */
#define MAX_WAIT_MS 1000
#define ERRLEN 192
#define LOG_EVERY_S 60

static const char *const sev_names[] = {"info", "warning", "critical", NULL};

/* ---- configuration ---------------------------------------------------------------------- */

void co_notify_conf_defaults(co_notify_conf *c)
{
    memset(c, 0, sizeof *c);
    c->queue_cap = DEFAULT_QUEUE_CAP;
    c->max_age_ms = DEFAULT_MAX_AGE_MS;
    c->backoff_base_ms = DEFAULT_BACKOFF_BASE_MS;
    c->backoff_cap_ms = DEFAULT_BACKOFF_CAP_MS;
    c->rate_window_ms = DEFAULT_RATE_WINDOW_MS;
}

static void free_secret(char *s)
{
    if (!s) return;
    explicit_bzero(s, strlen(s));
    free(s);
}

static void webhook_free(co_webhook_conf *w)
{
    free(w->name);
    free(w->url);
    free_secret(w->secret);
    free_secret(w->sign_secret);
    for (size_t i = 0; i < w->nsites; i++)
        free(w->sites[i]);
    free(w->sites);
    memset(w, 0, sizeof *w);
}

void co_notify_conf_free(co_notify_conf *c)
{
    for (size_t i = 0; i < c->ntargets; i++)
        webhook_free(&c->targets[i]);
    free(c->targets);
    c->targets = NULL;
    c->ntargets = 0;
}

static int entry_line(const cm_conf_section *s, const char *key)
{
    for (size_t i = 0; i < s->nentries; i++)
        if (strcmp(s->entries[i].key, key) == 0) return s->entries[i].line;
    return s->line;
}

static int valid_url(const char *u)
{
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) return 0;
    CURLU *h = curl_url();
    if (!h) return 0;
    int ok = curl_url_set(h, CURLUPART_URL, u, 0) == CURLUE_OK;
    char *host = NULL;
    if (ok) ok = curl_url_get(h, CURLUPART_HOST, &host, 0) == CURLUE_OK && host && *host;
    curl_free(host);
    curl_url_cleanup(h);
    return ok;
}

/* "a, b,c" → sites; 0 or -1 (empty item or out of memory, message in why). */
static int parse_sites(co_webhook_conf *w, const char *v, char *why, size_t whylen)
{
    const char *p = v;
    while (*p) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (a == b) {
            snprintf(why, whylen, "empty site code in the list");
            return -1;
        }
        char **ns = realloc(w->sites, (w->nsites + 1) * sizeof *ns);
        if (!ns || !(ns[w->nsites] = strndup(a, (size_t)(b - a)))) {
            if (ns) w->sites = ns;
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        w->sites = ns;
        w->nsites++;
        if (!comma) break;
        p = comma + 1;
        if (!*p) {
            snprintf(why, whylen, "empty site code in the list");
            return -1;
        }
    }
    return 0;
}

static int webhook_parse(co_webhook_conf *w, const cm_conf *cf, cm_conf_section *s, char *err,
                         size_t errlen)
{
    const char *str = NULL;
    int r;
    if ((r = cm_conf_str(cf, s, "url", &str, err, errlen)) < 0) return -1;
    if (r == 0) {
        cm_conf_errf(cf, s->line, err, errlen, "[webhook \"%s\"]: key 'url' is required", w->name);
        return -1;
    }
    if (!valid_url(str)) {
        char safe[160];
        co_notify_redact_url(str, safe, sizeof safe);
        cm_conf_errf(cf, entry_line(s, "url"), err, errlen,
                     "key 'url' in [webhook \"%s\"]: '%s' is not an http:// or https:// URL",
                     w->name, safe);
        return -1;
    }
    if (!(w->url = strdup(str))) goto oom;
    const char *keys[2] = {"secret", "sign_secret"};
    char **dst[2] = {&w->secret, &w->sign_secret};
    for (int i = 0; i < 2; i++) {
        str = NULL;
        if ((r = cm_conf_str(cf, s, keys[i], &str, err, errlen)) < 0) return -1;
        if (r == 0) continue;
        if (!*str || strpbrk(str, "\r\n")) {
            cm_conf_errf(cf, entry_line(s, keys[i]), err, errlen,
                         "key '%s' in [webhook \"%s\"]: must be non-empty, on one line", keys[i],
                         w->name);
            return -1;
        }
        if (!(*dst[i] = strdup(str))) goto oom;
    }
    int sev = (int)w->min_severity;
    if (cm_conf_enum(cf, s, "min_severity", sev_names, &sev, err, errlen) < 0) return -1;
    w->min_severity = (co_severity)sev;
    str = NULL;
    if ((r = cm_conf_str(cf, s, "sites", &str, err, errlen)) < 0) return -1;
    if (r == 1) {
        char why[64];
        if (parse_sites(w, str, why, sizeof why) != 0) {
            cm_conf_errf(cf, entry_line(s, "sites"), err, errlen,
                         "key 'sites' in [webhook \"%s\"]: %s", w->name, why);
            return -1;
        }
    }
    int64_t v = w->rate_per_minute;
    if (cm_conf_int(cf, s, "rate_per_minute", 0, 100000, &v, err, errlen) < 0) return -1;
    w->rate_per_minute = (int)v;
    if (cm_conf_duration(cf, s, "timeout", 100, 600000, &w->timeout_ms, err, errlen) < 0) return -1;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

int co_notify_conf_webhook(co_notify_conf *c, const cm_conf *cf, cm_conf_section *s, char *err,
                           size_t errlen)
{
    if (!s->arg || !*s->arg) {
        cm_conf_errf(cf, s->line, err, errlen, "[webhook] needs a name: [webhook \"name\"]");
        return -1;
    }
    for (size_t i = 0; i < c->ntargets; i++)
        if (strcmp(c->targets[i].name, s->arg) == 0) {
            cm_conf_errf(cf, s->line, err, errlen, "[webhook \"%s\"] repeated (first at line %d)",
                         s->arg, c->targets[i].line);
            return -1;
        }
    co_webhook_conf *nt = realloc(c->targets, (c->ntargets + 1) * sizeof *nt);
    if (!nt) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->targets = nt;
    co_webhook_conf *w = &c->targets[c->ntargets];
    memset(w, 0, sizeof *w);
    w->min_severity = CO_SEV_INFO;
    w->rate_per_minute = DEFAULT_RATE;
    w->timeout_ms = DEFAULT_TIMEOUT_MS;
    w->line = s->line;
    if (!(w->name = strdup(s->arg))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (webhook_parse(w, cf, s, err, errlen) != 0) {
        webhook_free(w);
        return -1;
    }
    c->ntargets++;
    return 0;
}

int co_notify_conf_global(co_notify_conf *c, const cm_conf *cf, cm_conf_section *s, char *err,
                          size_t errlen)
{
    int64_t v = (int64_t)c->queue_cap;
    if (cm_conf_int(cf, s, "queue_cap", 1, 10000000, &v, err, errlen) < 0) return -1;
    c->queue_cap = (size_t)v;
    if (cm_conf_duration(cf, s, "max_age", 1000, 30LL * 86400 * 1000, &c->max_age_ms, err, errlen) <
        0)
        return -1;
    if (cm_conf_duration(cf, s, "backoff_base", 10, 3600000, &c->backoff_base_ms, err, errlen) < 0)
        return -1;
    if (cm_conf_duration(cf, s, "backoff_cap", 10, 86400000, &c->backoff_cap_ms, err, errlen) < 0)
        return -1;
    if (c->backoff_cap_ms < c->backoff_base_ms) {
        cm_conf_errf(cf, entry_line(s, "backoff_cap"), err, errlen,
                     "key 'backoff_cap' in [notify]: smaller than backoff_base");
        return -1;
    }
    return 0;
}

int co_notify_conf_load(co_notify_conf *c, const cm_conf *cf, char *err, size_t errlen)
{
    for (size_t i = 0; i < cf->nsections; i++) {
        cm_conf_section *s = &cf->sections[i];
        if (strcmp(s->name, "webhook") == 0) {
            if (co_notify_conf_webhook(c, cf, s, err, errlen) != 0) return -1;
        } else if (strcmp(s->name, "notify") == 0 && !s->arg) {
            if (co_notify_conf_global(c, cf, s, err, errlen) != 0) return -1;
        }
    }
    return 0;
}

void co_notify_redact_url(const char *url, char *out, size_t outlen)
{
    if (!outlen) return;
    snprintf(out, outlen, "(invalid url)");
    CURLU *h = curl_url();
    if (!h) return;
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    if (curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(h, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        curl_url_get(h, CURLUPART_PORT, &port, 0);
        curl_url_get(h, CURLUPART_PATH, &path, 0);
        snprintf(out, outlen, "%s://%s%s%s%s", scheme, host, port ? ":" : "", port ? port : "",
                 path ? path : "/");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(h);
}

/* ---- the notifier ----------------------------------------------------------------------- */

/* One notification's payload, shared by its deliveries (refs under the lock). */
typedef struct note {
    int refs;
    char *id;
    char *body;
    size_t len;
} note;

typedef struct target target;

typedef struct delivery {
    note *nt;
    target *t;
    uint64_t hash;      /* of (id, target) */
    int64_t created_ms; /* wall clock, for max_age */
    unsigned attempts;
    struct delivery *prev, *next;
    /* the report, once it left the queue */
    long status;
    int delivered, final;
    char err[ERRLEN];
} delivery;

struct target {
    char *name, *url, *safe_url, *auth_hdr, *sign_secret;
    co_severity min_sev;
    char **sites;
    size_t nsites;
    int rate;
    int64_t timeout_ms;
    delivery *head, *tail;
    delivery *inflight;
    CURL *easy;
    struct curl_slist *hdrs;
    char errbuf[CURL_ERROR_SIZE];
    int64_t next_mono; /* backoff or Retry-After: no attempt before */
    int64_t *sent;     /* start times (mono) of the last `rate` attempts, ring */
    size_t sent_i;
};

struct co_notify {
    co_notify_conf conf; /* scalars only (targets are copied into tg) */
    target *tg;
    size_t ntg;
    co_notify_attempt_cb cb;
    void *ud;
    CURLM *multi;
    pthread_t thread;
    uint64_t rng; /* worker thread only */

    pthread_mutex_t mu; /* everything below */
    size_t count;       /* deliveries queued, all targets */
    int stopping;
    int64_t stop_deadline; /* mono */
    uint64_t recent[RECENT];
    size_t recent_i;
    co_notify_stats stats;
};

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t pair_hash(const char *id, const char *target_name)
{
    uint64_t h = fnv1a(14695981039346656037ULL, id);
    h ^= 0xff;
    h *= 1099511628211ULL;
    return fnv1a(h, target_name);
}

static void note_unref(note *nt)
{
    if (--nt->refs > 0) return;
    free(nt->id);
    free(nt->body);
    free(nt);
}

static void delivery_free(delivery *d)
{
    note_unref(d->nt);
    free(d);
}

static void unlink_delivery(co_notify *n, delivery *d)
{
    target *t = d->t;
    if (d->prev)
        d->prev->next = d->next;
    else
        t->head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        t->tail = d->prev;
    d->prev = d->next = NULL;
    n->count--;
}

static void append_delivery(co_notify *n, delivery *d)
{
    target *t = d->t;
    d->prev = t->tail;
    d->next = NULL;
    if (t->tail)
        t->tail->next = d;
    else
        t->head = d;
    t->tail = d;
    n->count++;
}

static void report(co_notify *n, delivery *d)
{
    if (!n->cb) return;
    co_notify_attempt a = {.id = d->nt->id,
                           .target = d->t->name,
                           .attempt = d->attempts,
                           .http_status = d->status,
                           .error = d->delivered ? NULL : d->err,
                           .delivered = d->delivered,
                           .final = d->final};
    n->cb(n->ud, &a);
}

static int recent_has(co_notify *n, uint64_t h)
{
    for (size_t i = 0; i < RECENT; i++)
        if (n->recent[i] == h) return 1;
    return 0;
}

static int queued_has(target *t, uint64_t h)
{
    for (delivery *d = t->head; d; d = d->next)
        if (d->hash == h) return 1;
    return 0;
}

/* ---- payload ---------------------------------------------------------------------------- */

static int id_ok(const char *id)
{
    size_t l = strlen(id);
    if (l == 0 || l > MAX_ID) return 0;
    for (const char *p = id; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) return 0;
    return 1;
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* Set o[key] = s (NULL → null); *bad when s is not valid UTF-8. */
static void set_str(json_t *o, const char *key, const char *s, int *bad)
{
    json_t *v = s ? json_string(s) : json_null();
    if (!v) *bad = 1;
    if (v) json_object_set_new(o, key, v);
}

/* The JSON body of nt, or NULL with err. */
static char *build_body(const co_notification *nt, size_t *len, char *err, size_t errlen)
{
    json_t *labels;
    if (nt->labels_json) {
        json_error_t je;
        labels = json_loads(nt->labels_json, JSON_REJECT_DUPLICATES, &je);
        if (!labels || !json_is_object(labels)) {
            snprintf(err, errlen, "notification %s: labels: %s", nt->id,
                     labels ? "not a JSON object" : je.text);
            json_decref(labels);
            return NULL;
        }
    } else {
        labels = json_object();
    }
    char iso[40];
    cm_format_iso_ms(nt->ts_ms, iso, sizeof iso);
    json_t *o = json_object();
    int bad = !o;
    if (o) {
        json_object_set_new(o, "v", json_integer(1));
        set_str(o, "id", nt->id, &bad);
        set_str(o, "kind", nt->kind == CO_NOTIFY_RESOLVED ? "resolved" : "firing", &bad);
        set_str(o, "rule", nt->rule, &bad);
        set_str(o, "severity", sev_names[nt->severity], &bad);
        set_str(o, "site", nt->site, &bad);
        set_str(o, "screen", nt->screen, &bad);
        set_str(o, "device", nt->device, &bad);
        json_object_set(o, "labels", labels);
        json_object_set_new(o, "value", num_or_null(nt->value));
        json_object_set_new(o, "threshold", num_or_null(nt->threshold));
        set_str(o, "text", nt->text, &bad);
        json_object_set_new(o, "ts_ms", json_integer(nt->ts_ms));
        set_str(o, "ts", iso, &bad);
    }
    json_decref(labels);
    char *s = bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) {
        snprintf(err, errlen, "notification %s: cannot encode (invalid UTF-8 in a string?)",
                 nt->id);
        return NULL;
    }
    *len = strlen(s);
    return s;
}

static note *make_note(const co_notification *nt, char *err, size_t errlen)
{
    if (!nt->id || !id_ok(nt->id)) {
        snprintf(err, errlen, "notification id missing, empty, too long or not printable");
        return NULL;
    }
    if (!nt->rule || !nt->site || (unsigned)nt->severity > CO_SEV_CRITICAL ||
        (unsigned)nt->kind > CO_NOTIFY_RESOLVED) {
        snprintf(err, errlen, "notification %s: rule, site, severity or kind missing or invalid",
                 nt->id);
        return NULL;
    }
    note *x = calloc(1, sizeof *x);
    if (!x || !(x->id = strdup(nt->id))) {
        free(x);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    x->body = build_body(nt, &x->len, err, errlen);
    if (!x->body) {
        free(x->id);
        free(x);
        return NULL;
    }
    return x;
}

static int matches(const target *t, const co_notification *nt)
{
    if (nt->severity < t->min_sev) return 0;
    if (!t->nsites) return 1;
    for (size_t i = 0; i < t->nsites; i++)
        if (strcmp(t->sites[i], nt->site) == 0) return 1;
    return 0;
}

/* ---- enqueue ---------------------------------------------------------------------------- */

/* The oldest queued delivery not in flight (lowest created_ms, first in its queue). */
static delivery *oldest_idle(co_notify *n)
{
    delivery *best = NULL;
    for (size_t i = 0; i < n->ntg; i++) {
        delivery *d = n->tg[i].head;
        if (d && d == n->tg[i].inflight) d = d->next;
        if (d && (!best || d->created_ms < best->created_ms)) best = d;
    }
    return best;
}

/* Queue x for targets sel[0..k) (restore: attempts/created given). Returns how many were
 * queued; evicted deliveries go to *evicted for reporting after the unlock. */
static int queue_note(co_notify *n, note *x, target **sel, size_t k, unsigned attempts,
                      int64_t created_ms, delivery **evicted, char *err, size_t errlen)
{
    int queued = 0;
    for (size_t i = 0; i < k; i++) {
        uint64_t h = pair_hash(x->id, sel[i]->name);
        if (recent_has(n, h) || queued_has(sel[i], h)) continue;
        delivery *d = calloc(1, sizeof *d);
        if (!d) {
            snprintf(err, errlen, "out of memory");
            return queued ? queued : -1;
        }
        if (n->count >= n->conf.queue_cap) {
            delivery *old = oldest_idle(n);
            if (!old) { /* everything queued is in flight: the new one cannot wait */
                free(d);
                snprintf(err, errlen, "queue_full");
                n->stats.evicted++;
                n->stats.failed++;
                return queued ? queued : -1;
            }
            unlink_delivery(n, old);
            old->final = 1;
            snprintf(old->err, sizeof old->err, "queue_full");
            n->stats.evicted++;
            n->stats.failed++;
            old->next = *evicted;
            *evicted = old;
        }
        d->nt = x;
        x->refs++;
        d->t = sel[i];
        d->hash = h;
        d->attempts = attempts;
        d->created_ms = created_ms;
        append_delivery(n, d);
        n->stats.queued++;
        queued++;
    }
    return queued;
}

static int enqueue_common(co_notify *n, const co_notification *nt, const char *only,
                          unsigned attempts, int64_t created_ms, char *err, size_t errlen)
{
    note *x = make_note(nt, err, errlen);
    if (!x) return -1;
    target **sel = calloc(n->ntg ? n->ntg : 1, sizeof *sel);
    if (!sel) {
        free(x->id);
        free(x->body);
        free(x);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n->ntg; i++) {
        if (only ? strcmp(n->tg[i].name, only) == 0 : matches(&n->tg[i], nt)) sel[k++] = &n->tg[i];
    }
    int rc;
    delivery *evicted = NULL;
    x->refs = 1; /* ours until the end of this function */
    pthread_mutex_lock(&n->mu);
    if (n->stopping) {
        snprintf(err, errlen, "notifier stopping");
        rc = -1;
    } else if (only && k == 0) {
        snprintf(err, errlen, "notification %s: unknown webhook target '%s'", nt->id, only);
        rc = -1;
    } else {
        rc = queue_note(n, x, sel, k, attempts, created_ms, &evicted, err, errlen);
    }
    pthread_mutex_unlock(&n->mu);
    free(sel);
    if (rc > 0) curl_multi_wakeup(n->multi);
    while (evicted) {
        delivery *d = evicted;
        evicted = d->next;
        cm_log_limited("notify-queue-full", LOG_EVERY_S, CM_LOG_WARN,
                       "notify: queue full (%zu): notification %s to '%s' dropped as failed",
                       n->conf.queue_cap, d->nt->id, d->t->name);
        report(n, d);
        pthread_mutex_lock(&n->mu);
        delivery_free(d);
        pthread_mutex_unlock(&n->mu);
    }
    pthread_mutex_lock(&n->mu);
    note_unref(x);
    pthread_mutex_unlock(&n->mu);
    return rc;
}

size_t co_notify_targets_for(co_notify *n, const co_notification *nt, const char **names,
                             size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n->ntg && k < max; i++)
        if (matches(&n->tg[i], nt)) names[k++] = n->tg[i].name;
    return k;
}

int co_notify_enqueue(co_notify *n, const co_notification *nt, char *err, size_t errlen)
{
    return enqueue_common(n, nt, NULL, 0, cm_now_ms(), err, errlen);
}

int co_notify_restore(co_notify *n, const co_notification *nt, const char *target_name,
                      unsigned attempts_done, int64_t created_ms, char *err, size_t errlen)
{
    if (!target_name) {
        snprintf(err, errlen, "restore: no target named");
        return -1;
    }
    return enqueue_common(n, nt, target_name, attempts_done, created_ms, err, errlen);
}

/* ---- the worker ------------------------------------------------------------------------- */

static uint64_t rnd(co_notify *n)
{
    uint64_t x = n->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    n->rng = x;
    return x * 2685821657736338717ULL;
}

/* Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]. */
static int64_t backoff_ms(co_notify *n, unsigned attempt)
{
    int64_t bound = n->conf.backoff_base_ms;
    for (unsigned i = 1; i < attempt && bound < n->conf.backoff_cap_ms; i++)
        bound *= 2;
    if (bound > n->conf.backoff_cap_ms) bound = n->conf.backoff_cap_ms;
    return (int64_t)(rnd(n) % (uint64_t)(bound + 1));
}

/* When t may start its next attempt by its rate limit (mono ms). */
static int64_t rate_ready(const co_notify *n, const target *t)
{
    if (!t->rate) return 0;
    int64_t oldest = t->sent[t->sent_i]; /* the attempt `rate` attempts ago, or 0 */
    return oldest ? oldest + n->conf.rate_window_ms : 0;
}

static struct curl_slist *add_header(struct curl_slist *l, int *bad, const char *name,
                                     const char *value)
{
    if (*bad) return l;
    size_t len = strlen(name) + strlen(value) + 3;
    char *h = malloc(len);
    if (!h) {
        *bad = 1;
        return l;
    }
    snprintf(h, len, "%s: %s", name, value);
    struct curl_slist *nl = curl_slist_append(l, h);
    explicit_bzero(h, len);
    free(h);
    if (!nl) {
        *bad = 1;
        return l;
    }
    return nl;
}

static void hex(const unsigned char *in, unsigned len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* Start d's next attempt on t. 0, or -1 with the reason in d->err. */
static int start_attempt(co_notify *n, target *t, delivery *d)
{
    int bad = 0;
    struct curl_slist *h = NULL;
    h = add_header(h, &bad, "Content-Type", "application/json");
    h = add_header(h, &bad, "Idempotency-Key", d->nt->id);
    h = add_header(h, &bad, "Expect", ""); /* no 100-continue round trip */
    if (t->auth_hdr) h = add_header(h, &bad, "Authorization", t->auth_hdr);
    if (t->sign_secret) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        char sig[7 + 2 * EVP_MAX_MD_SIZE + 1];
        if (!HMAC(EVP_sha256(), t->sign_secret, (int)strlen(t->sign_secret),
                  (const unsigned char *)d->nt->body, d->nt->len, md, &mdlen)) {
            bad = 1;
        } else {
            memcpy(sig, "sha256=", 7);
            hex(md, mdlen, sig + 7);
            h = add_header(h, &bad, "X-Cinemon-Signature", sig);
        }
    }
    CURL *e = t->easy;
    t->errbuf[0] = '\0';
    if (!bad) {
        bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, h) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->nt->len) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->nt->body) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, t) != CURLE_OK;
    }
    if (bad || curl_multi_add_handle(n->multi, e) != CURLM_OK) {
        curl_slist_free_all(h);
        snprintf(d->err, sizeof d->err, "cannot prepare the request");
        return -1;
    }
    t->hdrs = h;
    t->inflight = d;
    d->attempts++;
    if (t->rate) {
        t->sent[t->sent_i] = cm_mono_ms();
        t->sent_i = (t->sent_i + 1) % (size_t)t->rate;
    }
    return 0;
}

static void push(delivery **list, delivery *d)
{
    d->next = *list;
    *list = d;
}

static void log_failed(const target *t, const delivery *d)
{
    char key[96];
    snprintf(key, sizeof key, "notify-fail:%.80s", t->name);
    cm_log_limited(key, LOG_EVERY_S, CM_LOG_ERROR,
                   "notify: webhook '%s' (%s): notification %s failed for good after %u "
                   "attempts: %s",
                   t->name, t->safe_url, d->nt->id, d->attempts, d->err);
}

/* Deliveries past max_age (not in flight) leave their queues into *out. Returns the earliest
 * expiry of those left (INT64_MAX when none). Locked. */
static int64_t expire(co_notify *n, int64_t now_wall, delivery **out)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < n->ntg; i++) {
        target *t = &n->tg[i];
        delivery *d = t->head;
        while (d) {
            delivery *nx = d->next;
            int64_t due = d->created_ms + n->conf.max_age_ms;
            if (d != t->inflight && due <= now_wall) {
                unlink_delivery(n, d);
                d->final = 1;
                d->status = 0;
                snprintf(d->err, sizeof d->err, "expired");
                n->stats.expired++;
                n->stats.failed++;
                log_failed(t, d);
                push(out, d);
            } else if (d != t->inflight && due < next) {
                next = due;
            }
            d = nx;
        }
    }
    return next;
}

/* Start what is due; returns ms until the next thing might be due. Locked. */
static int64_t start_due(co_notify *n, delivery **out)
{
    int64_t now = cm_mono_ms(), wait = MAX_WAIT_MS;
    for (size_t i = 0; i < n->ntg; i++) {
        target *t = &n->tg[i];
        if (t->inflight || !t->head) continue;
        int64_t ready = t->next_mono;
        int64_t rr = rate_ready(n, t);
        if (rr > ready) ready = rr;
        if (ready > now) {
            if (ready - now < wait) wait = ready - now;
            continue;
        }
        delivery *d = t->head;
        if (start_attempt(n, t, d) != 0) { /* cannot even build it: fail it, not loop */
            unlink_delivery(n, d);
            d->final = 1;
            n->stats.failed++;
            push(out, d);
            wait = 0;
        }
    }
    return wait;
}

static int retryable(long status)
{
    return status == 408 || status == 429 || status >= 500;
}

/* Classify the finished request of t. Locked. The delivery goes to *out (a copy is reported
 * while it stays queued for a retry: see finish_report). */
static void finish(co_notify *n, target *t, CURLcode cc, delivery **out, delivery **retry_copy)
{
    delivery *d = t->inflight;
    long status = 0;
    curl_off_t ra = -1;
    curl_multi_remove_handle(n->multi, t->easy);
    curl_slist_free_all(t->hdrs);
    t->hdrs = NULL;
    t->inflight = NULL;
    if (cc == CURLE_OK) {
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &ra);
    }
    d->status = status;
    int retry = 0;
    if (cc != CURLE_OK) {
        snprintf(d->err, sizeof d->err, "%.*s", ERRLEN - 1,
                 t->errbuf[0] ? t->errbuf : curl_easy_strerror(cc));
        retry = 1;
    } else if (status >= 200 && status < 300) {
        d->delivered = 1;
        d->err[0] = '\0';
    } else {
        snprintf(d->err, sizeof d->err, "http %ld", status);
        retry = retryable(status);
    }
    if (!d->delivered && retry && d->created_ms + n->conf.max_age_ms > cm_now_ms()) {
        int64_t delay = backoff_ms(n, d->attempts);
        if (ra >= 0) {
            delay = (int64_t)ra * 1000;
            if (delay > MAX_RETRY_AFTER_MS) delay = MAX_RETRY_AFTER_MS;
        }
        t->next_mono = cm_mono_ms() + delay;
        n->stats.retries++;
        char key[96];
        snprintf(key, sizeof key, "notify-retry:%.80s", t->name);
        cm_log_limited(key, LOG_EVERY_S, CM_LOG_WARN,
                       "notify: webhook '%s' (%s): %s; retry of %s in %lld ms (attempt %u)",
                       t->name, t->safe_url, d->err, d->nt->id, (long long)delay, d->attempts);
        /* stays at the head; report a snapshot */
        delivery *c = calloc(1, sizeof *c);
        if (c) {
            *c = *d;
            c->nt->refs++;
            c->final = 0;
            c->next = *retry_copy;
            *retry_copy = c;
        }
        return;
    }
    t->next_mono = 0;
    unlink_delivery(n, d);
    d->final = 1;
    if (d->delivered) {
        n->stats.delivered++;
        n->recent[n->recent_i] = d->hash;
        n->recent_i = (n->recent_i + 1) % RECENT;
    } else {
        if (retry) { /* retryable, but too old */
            char last[ERRLEN];
            snprintf(last, sizeof last, "%s", d->err);
            snprintf(d->err, sizeof d->err, "expired (last: %.*s)", ERRLEN - 20, last);
            n->stats.expired++;
        }
        n->stats.failed++;
        log_failed(t, d);
    }
    push(out, d);
}

/* Abort what is in flight (stop timed out). Locked. */
static void abort_inflight(co_notify *n, delivery **retry_copy)
{
    for (size_t i = 0; i < n->ntg; i++) {
        target *t = &n->tg[i];
        delivery *d = t->inflight;
        if (!d) continue;
        curl_multi_remove_handle(n->multi, t->easy);
        curl_slist_free_all(t->hdrs);
        t->hdrs = NULL;
        t->inflight = NULL;
        delivery *c = calloc(1, sizeof *c);
        if (c) {
            *c = *d;
            c->nt->refs++;
            c->status = 0;
            c->final = 0;
            snprintf(c->err, sizeof c->err, "shutdown");
            c->next = *retry_copy;
            *retry_copy = c;
        }
    }
}

/* Report and free a list (unlocked), reversing it first so reports keep their order. */
static void flush(co_notify *n, delivery *list)
{
    delivery *rev = NULL;
    while (list) {
        delivery *d = list;
        list = d->next;
        d->next = rev;
        rev = d;
    }
    for (delivery *d = rev; d; d = d->next)
        report(n, d);
    if (!rev) return;
    pthread_mutex_lock(&n->mu);
    while (rev) {
        delivery *d = rev;
        rev = d->next;
        delivery_free(d);
    }
    pthread_mutex_unlock(&n->mu);
}

static int any_inflight(co_notify *n)
{
    for (size_t i = 0; i < n->ntg; i++)
        if (n->tg[i].inflight) return 1;
    return 0;
}

static void *worker_main(void *arg)
{
    co_notify *n = arg;
    for (;;) {
        delivery *out = NULL;
        int64_t wait;
        int done = 0;
        pthread_mutex_lock(&n->mu);
        int64_t next_exp = expire(n, cm_now_ms(), &out);
        if (n->stopping) {
            wait = n->stop_deadline - cm_mono_ms();
            if (!any_inflight(n)) {
                done = 1;
            } else if (wait <= 0) {
                abort_inflight(n, &out);
                done = 1;
            }
        } else {
            wait = start_due(n, &out);
            if (next_exp != INT64_MAX) {
                int64_t w2 = next_exp - cm_now_ms();
                if (w2 < wait) wait = w2;
            }
        }
        pthread_mutex_unlock(&n->mu);
        flush(n, out);
        if (done) break;
        if (wait > MAX_WAIT_MS) wait = MAX_WAIT_MS;
        if (wait < 0) wait = 0;
        int running = 0;
        curl_multi_poll(n->multi, NULL, 0, (int)wait, NULL);
        curl_multi_perform(n->multi, &running);

        out = NULL;
        delivery *copies = NULL;
        CURLMsg *m;
        int left;
        pthread_mutex_lock(&n->mu);
        while ((m = curl_multi_info_read(n->multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            char *priv = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
            target *t = (target *)priv;
            CURLcode cc = m->data.result;
            if (t && t->inflight) finish(n, t, cc, &out, &copies);
        }
        pthread_mutex_unlock(&n->mu);
        /* copies (retries) and finals, in the order they happened within this round */
        flush(n, copies);
        flush(n, out);
    }
    return NULL;
}

/* ---- start / stop ----------------------------------------------------------------------- */

static size_t discard(char *p, size_t sz, size_t nm, void *ud)
{
    (void)p;
    (void)ud;
    return sz * nm;
}

static void target_free(target *t)
{
    while (t->head) {
        delivery *d = t->head;
        t->head = d->next;
        delivery_free(d);
    }
    free(t->name);
    free(t->url);
    free(t->safe_url);
    free_secret(t->auth_hdr);
    free_secret(t->sign_secret);
    for (size_t i = 0; i < t->nsites; i++)
        free(t->sites[i]);
    free(t->sites);
    free(t->sent);
    curl_slist_free_all(t->hdrs);
    if (t->easy) curl_easy_cleanup(t->easy);
}

static int target_init(target *t, const co_webhook_conf *w)
{
    char safe[256];
    co_notify_redact_url(w->url, safe, sizeof safe);
    t->name = strdup(w->name);
    t->url = strdup(w->url);
    t->safe_url = strdup(safe);
    if (!t->name || !t->url || !t->safe_url) return -1;
    if (w->secret) {
        size_t l = strlen(w->secret) + 8;
        if (!(t->auth_hdr = malloc(l))) return -1;
        snprintf(t->auth_hdr, l, "Bearer %s", w->secret);
    }
    if (w->sign_secret && !(t->sign_secret = strdup(w->sign_secret))) return -1;
    t->min_sev = w->min_severity;
    if (w->nsites) {
        if (!(t->sites = calloc(w->nsites, sizeof *t->sites))) return -1;
        for (size_t i = 0; i < w->nsites; i++, t->nsites++)
            if (!(t->sites[i] = strdup(w->sites[i]))) return -1;
    }
    t->rate = w->rate_per_minute;
    if (t->rate && !(t->sent = calloc((size_t)t->rate, sizeof *t->sent))) return -1;
    t->timeout_ms = w->timeout_ms > 0 ? w->timeout_ms : DEFAULT_TIMEOUT_MS;
    CURL *e = t->easy = curl_easy_init();
    if (!e) return -1;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, t->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "cinemon-collector") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard) != CURLE_OK; /* body unused */
    return bad ? -1 : 0;
}

static void notify_free(co_notify *n)
{
    for (size_t i = 0; i < n->ntg; i++)
        target_free(&n->tg[i]);
    free(n->tg);
    if (n->multi) curl_multi_cleanup(n->multi);
    free(n);
}

int co_notify_start(co_notify **out, const co_notify_conf *c, co_notify_attempt_cb cb, void *ud,
                    char *err, size_t errlen)
{
    *out = NULL;
    co_notify *n = calloc(1, sizeof *n);
    if (!n) goto oom;
    n->conf = *c;
    n->conf.targets = NULL;
    n->conf.ntargets = 0;
    if (!n->conf.queue_cap) n->conf.queue_cap = DEFAULT_QUEUE_CAP;
    if (n->conf.max_age_ms <= 0) n->conf.max_age_ms = DEFAULT_MAX_AGE_MS;
    if (n->conf.backoff_base_ms <= 0) n->conf.backoff_base_ms = DEFAULT_BACKOFF_BASE_MS;
    if (n->conf.backoff_cap_ms < n->conf.backoff_base_ms)
        n->conf.backoff_cap_ms = n->conf.backoff_base_ms;
    if (n->conf.rate_window_ms <= 0) n->conf.rate_window_ms = DEFAULT_RATE_WINDOW_MS;
    n->cb = cb;
    n->ud = ud;
    if (getrandom(&n->rng, sizeof n->rng, 0) != (ssize_t)sizeof n->rng || !n->rng)
        n->rng = (uint64_t)cm_mono_ms() | 1;
    if (!(n->multi = curl_multi_init())) goto oom;
    if (c->ntargets && !(n->tg = calloc(c->ntargets, sizeof *n->tg))) goto oom;
    for (size_t i = 0; i < c->ntargets; i++) {
        n->ntg++;
        if (target_init(&n->tg[i], &c->targets[i]) != 0) {
            snprintf(err, errlen, "webhook '%s': cannot set up (out of memory?)",
                     c->targets[i].name);
            notify_free(n);
            return -1;
        }
    }
    /* more room than requests in flight, so a full queue always has an idle oldest */
    if (n->conf.queue_cap < n->ntg + 1) n->conf.queue_cap = n->ntg + 1;
    pthread_mutex_init(&n->mu, NULL);
    int rc = pthread_create(&n->thread, NULL, worker_main, n);
    if (rc) {
        snprintf(err, errlen, "notify: cannot start thread: %s", strerror(rc));
        pthread_mutex_destroy(&n->mu);
        notify_free(n);
        return -1;
    }
    for (size_t i = 0; i < n->ntg; i++) {
        char rate[32] = "no rate limit";
        if (n->tg[i].rate)
            snprintf(rate, sizeof rate, "%d per %llds", n->tg[i].rate,
                     (long long)(n->conf.rate_window_ms / 1000));
        cm_info("notify: webhook '%s' -> %s (min severity %s, %s)", n->tg[i].name,
                n->tg[i].safe_url, sev_names[n->tg[i].min_sev], rate);
    }
    *out = n;
    return 0;
oom:
    if (n) notify_free(n);
    snprintf(err, errlen, "notify: out of memory");
    return -1;
}

void co_notify_stats_get(co_notify *n, co_notify_stats *out)
{
    pthread_mutex_lock(&n->mu);
    *out = n->stats;
    out->pending = n->count;
    pthread_mutex_unlock(&n->mu);
}

size_t co_notify_stop(co_notify *n, int64_t timeout_ms)
{
    if (!n) return 0;
    pthread_mutex_lock(&n->mu);
    n->stopping = 1;
    n->stop_deadline = cm_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_unlock(&n->mu);
    curl_multi_wakeup(n->multi);
    pthread_join(n->thread, NULL);
    size_t left = n->count;
    if (left) cm_info("notify: %zu deliveries left pending for the next start", left);
    pthread_mutex_destroy(&n->mu);
    notify_free(n);
    return left;
}

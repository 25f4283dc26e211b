/* forward_summary.c — an upstream's summary mode (forward_summary.h): the (hour, site) pairs
 * marked by the writer's journal hooks, the alerting and compliance hooks' queues, the state
 * file, and the records built from the store's reads, one site each. */
#include "forward_summary.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errbuf.h"
#include "log.h"
#include "spool.h"
#include "timeutil.h"
#include "wire.h"

#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
#define STATE_VERSION 1
#define PAIRS_PER_RUN 64      /* (hour, site) pairs read in one run at most */
#define REC_ENTRIES 200       /* roll-up, alert or figure entries in one record at most */
#define CATCHUP_DAYS 3        /* compliance figures sent again at start: today and 2 days back */
#define CATCHUP_ALERTS 100000 /* firing alerts sent again at start, at most */
#define KEY_ALERTS 50         /* rows read to find an alert by its key */
#define LOG_EVERY_S 60

/* An (hour, site) with samples stored since its roll-ups were last sent. */
typedef struct pair {
    int64_t hour;
    char *site;
    int64_t touched_ms; /* wall clock of the last mark */
    uint64_t gen;       /* bumped by every mark and release */
    int inflight;       /* groups that marked it and are not settled yet */
} pair;

/* A queued compliance figure. */
typedef struct qrow {
    char *site, *screen, *day, *quantity;
    int64_t in_ms, measured_ms, updated_ms;
} qrow;

struct co_fsum {
    const co_upstream_conf *conf;
    co_store *store;
    char *version;
    char path[4096], tmp[4096];
    void (*wake)(void *ud);
    void *wake_ud;

    pthread_mutex_t mu; /* guards everything below */
    pair *pairs;
    size_t npairs, pcap;
    json_t *index;         /* "hour|site" -> index into pairs */
    json_t *open;          /* [[rule, site, device, labels], ...]: firing upstream, as last told */
    int64_t compliance_ms; /* updated_ms of the newest figures sent */
    int64_t *aq;           /* alert ids queued by the hook */
    size_t naq, aqcap;
    qrow *cq; /* figures queued by the hook */
    size_t ncq, cqcap;
    int fresh;     /* there was no state file at open */
    int caught_up; /* the start's catch-up is in the spool */
    json_t *group; /* writer thread: the keys prepare marked (set) */
};

/* ---------------------------------------------------------------- the state file */

/* Write the state (mu held): temp file, fsync, rename, fsync of the folder. 0 or -1 with err. */
static int save_locked(co_fsum *s, char *err, size_t errlen)
{
    json_t *hours = json_array();
    for (size_t i = 0; hours && i < s->npairs; i++)
        json_array_append_new(hours,
                              json_pack("[I,s]", (json_int_t)s->pairs[i].hour, s->pairs[i].site));
    json_t *st =
        json_pack("{s:i, s:o, s:O, s:I}", "v", STATE_VERSION, "hours", hours ? hours : json_array(),
                  "open", s->open, "compliance_ms", (json_int_t)s->compliance_ms);
    char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
    json_decref(st);
    if (!text) {
        cm_seterr(err, errlen, "out of memory");
        return -1;
    }
    int sync = s->conf->fsync != CM_FSYNC_NONE;
    int fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    size_t len = strlen(text), off = 0;
    while (fd >= 0 && off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    free(text);
    int ok = fd >= 0 && off == len && (!sync || fdatasync(fd) == 0);
    int e = errno;
    if (fd >= 0 && close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (ok && rename(s->tmp, s->path) != 0) {
        ok = 0;
        e = errno;
    }
    if (ok && sync) {
        int dfd = open(s->conf->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    if (!ok) {
        cm_seterr(err, errlen, "%s: %s", s->path, strerror(e));
        return -1;
    }
    return 0;
}

static void save_or_log(co_fsum *s)
{
    char err[512];
    if (save_locked(s, err, sizeof err) != 0)
        cm_log_limited("forward-summary-state", LOG_EVERY_S, CM_LOG_ERROR,
                       "forward %s: summary state: %s", s->conf->name, err);
}

static void pair_key(char *buf, size_t n, int64_t hour, const char *site)
{
    snprintf(buf, n, "%lld|%s", (long long)hour, site);
}

/* Mark (hour, site) as touched at now (mu held); inflight: held back until settled. 1 when the
 * pair is new, 0 when known, -1 out of memory. */
static int mark_locked(co_fsum *s, int64_t hour, const char *site, int64_t now, int inflight)
{
    char key[CM_MAX_NAME + 32];
    pair_key(key, sizeof key, hour, site);
    json_t *ix = json_object_get(s->index, key);
    if (ix) {
        pair *p = &s->pairs[json_integer_value(ix)];
        p->gen++;
        p->touched_ms = now;
        p->inflight += inflight;
        return 0;
    }
    if (s->npairs == s->pcap) {
        size_t nc = s->pcap ? s->pcap * 2 : 64;
        pair *np = realloc(s->pairs, nc * sizeof *np);
        if (!np) return -1;
        s->pairs = np;
        s->pcap = nc;
    }
    char *sc = strdup(site);
    if (!sc || json_object_set_new(s->index, key, json_integer((json_int_t)s->npairs)) != 0) {
        free(sc);
        return -1;
    }
    s->pairs[s->npairs++] =
        (pair){.hour = hour, .site = sc, .touched_ms = now, .gen = 1, .inflight = inflight};
    return 1;
}

/* Remove pair i (mu held): the last one takes its place. */
static void remove_locked(co_fsum *s, size_t i)
{
    char key[CM_MAX_NAME + 32];
    pair_key(key, sizeof key, s->pairs[i].hour, s->pairs[i].site);
    json_object_del(s->index, key);
    free(s->pairs[i].site);
    if (i != s->npairs - 1) {
        s->pairs[i] = s->pairs[s->npairs - 1];
        pair_key(key, sizeof key, s->pairs[i].hour, s->pairs[i].site);
        json_object_set_new(s->index, key, json_integer((json_int_t)i));
    }
    s->npairs--;
}

/* Read the state file; none: a first start. A file that cannot be read is logged and ignored
 * (its hours are then sent when samples arrive in them again). */
static void load(co_fsum *s, int64_t now)
{
    json_error_t je;
    json_t *st = json_load_file(s->path, 0, &je);
    if (!st) {
        if (access(s->path, F_OK) == 0)
            cm_error("forward %s: summary state %s unreadable (%s, line %d); starting afresh",
                     s->conf->name, s->path, je.text, je.line);
        s->fresh = 1;
        return;
    }
    json_t *hours = json_object_get(st, "hours"), *open = json_object_get(st, "open");
    json_t *cms = json_object_get(st, "compliance_ms");
    if (json_integer_value(json_object_get(st, "v")) != STATE_VERSION || !json_is_array(hours) ||
        !json_is_array(open) || !json_is_integer(cms)) {
        cm_error("forward %s: summary state %s is not version %d; starting afresh", s->conf->name,
                 s->path, STATE_VERSION);
        s->fresh = 1;
        json_decref(st);
        return;
    }
    size_t i;
    json_t *h;
    json_array_foreach(hours, i, h)
    {
        json_t *ms = json_array_get(h, 0);
        const char *site = json_string_value(json_array_get(h, 1));
        if (json_is_integer(ms) && site && mark_locked(s, json_integer_value(ms), site, now, 0) < 0)
            cm_error("forward %s: out of memory loading the summary state", s->conf->name);
    }
    json_array_foreach(open, i, h)
    {
        if (json_is_string(json_array_get(h, 0)) && json_is_string(json_array_get(h, 1)) &&
            json_is_string(json_array_get(h, 2)) && json_is_object(json_array_get(h, 3)))
            json_array_append(s->open, h);
    }
    s->compliance_ms = json_integer_value(cms);
    json_decref(st);
}

/* ---------------------------------------------------------------- open, close */

int co_fsum_open(co_fsum **out, const co_upstream_conf *c, co_store *store, const char *version,
                 void (*wake)(void *ud), void *wake_ud, char *err, size_t errlen)
{
    *out = NULL;
    co_fsum *s = calloc(1, sizeof *s);
    if (!s) {
        cm_seterr(err, errlen, "out of memory");
        return -1;
    }
    s->conf = c;
    s->store = store;
    s->wake = wake;
    s->wake_ud = wake_ud;
    pthread_mutex_init(&s->mu, NULL);
    snprintf(s->path, sizeof s->path, "%s/summary.state", c->spool_dir);
    snprintf(s->tmp, sizeof s->tmp, "%s/summary.state.tmp", c->spool_dir);
    s->version = strdup(version ? version : "unknown");
    s->index = json_object();
    s->open = json_array();
    s->group = json_object();
    if (!s->version || !s->index || !s->open || !s->group) {
        co_fsum_close(s);
        cm_seterr(err, errlen, "out of memory");
        return -1;
    }
    load(s, cm_now_ms());
    if (s->fresh && save_locked(s, err, errlen) != 0) {
        co_fsum_close(s);
        return -1;
    }
    cm_info("forward %s: summary mode, %zu hour(s) of site(s) waiting, %zu alert(s) firing "
            "upstream, compliance sent up to %lld%s",
            c->name, s->npairs, json_array_size(s->open), (long long)s->compliance_ms,
            s->fresh ? " (first start: no history is sent)" : "");
    *out = s;
    return 0;
}

static void qrow_free(qrow *r)
{
    free(r->site);
    free(r->screen);
    free(r->day);
    free(r->quantity);
}

void co_fsum_close(co_fsum *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->npairs; i++)
        free(s->pairs[i].site);
    free(s->pairs);
    for (size_t i = 0; i < s->ncq; i++)
        qrow_free(&s->cq[i]);
    free(s->cq);
    free(s->aq);
    json_decref(s->index);
    json_decref(s->open);
    json_decref(s->group);
    free(s->version);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---------------------------------------------------------------- the hooks */

/* Mark (hour, site) for the group being prepared (mu held); 1 new, 0 known, -1 OOM. */
static int mark_group(co_fsum *s, int64_t hour, const char *site, int64_t now)
{
    char key[CM_MAX_NAME + 32];
    pair_key(key, sizeof key, hour, site);
    if (json_object_get(s->group, key)) return 0;
    if (json_object_set_new(s->group, key, json_true()) != 0) return -1;
    return mark_locked(s, hour, site, now, 1);
}

static int64_t hour_of(int64_t ts)
{
    int64_t q = ts / HOUR_MS;
    if (ts % HOUR_MS != 0 && ts < 0) q--;
    return q * HOUR_MS;
}

/* The distinct hours of one batch, gathered before they are marked (a batch's points mostly
 * fall in one or two hours: one mark each instead of one per series). */
typedef struct hours {
    int64_t h[16];
    size_t n;
    int added, oom;
} hours;

/* Mark every hour gathered for site (mu held), and forget them. */
static void hours_mark(co_fsum *s, hours *hs, const char *site, int64_t now)
{
    for (size_t i = 0; i < hs->n; i++) {
        int r = mark_group(s, hs->h[i], site, now);
        if (r < 0) hs->oom = 1;
        if (r > 0) hs->added = 1;
    }
    hs->n = 0;
}

static void hours_add(co_fsum *s, hours *hs, int64_t h, const char *site, int64_t now)
{
    for (size_t i = 0; i < hs->n; i++)
        if (hs->h[i] == h) return;
    if (hs->n == sizeof hs->h / sizeof hs->h[0]) hours_mark(s, hs, site, now);
    hs->h[hs->n++] = h;
}

void co_fsum_prepare(co_fsum *s, cm_batch *const *batches, size_t n)
{
    int64_t now = cm_now_ms();
    hours hs = {.n = 0};
    pthread_mutex_lock(&s->mu);
    json_object_clear(s->group);
    for (size_t i = 0; i < n; i++) {
        const cm_batch *b = batches[i];
        if (!b->site) continue;
        for (size_t k = 0; k < b->nseries; k++) {
            const cm_series *se = &b->series[k];
            int64_t last = INT64_MIN;
            for (size_t p = 0; p < se->npoints; p++) {
                int64_t h = hour_of(se->points[p].ts_ms);
                if (h != last) hours_add(s, &hs, h, b->site, now);
                last = h;
            }
        }
        for (size_t k = 0; k < b->nrollups; k++) /* a tier below's summary: forwarded on */
            for (size_t p = 0; p < b->rollups[k].nbuckets; p++)
                hours_add(s, &hs, b->rollups[k].buckets[p].bucket_ms, b->site, now);
        hours_mark(s, &hs, b->site, now);
    }
    int added = hs.added, oom = hs.oom;
    if (added) save_or_log(s);
    pthread_mutex_unlock(&s->mu);
    if (oom)
        cm_log_limited("forward-summary-oom", LOG_EVERY_S, CM_LOG_ERROR,
                       "forward %s: out of memory: hours of this commit not marked for upstream",
                       s->conf->name);
}

void co_fsum_settle(co_fsum *s)
{
    int64_t now = cm_now_ms();
    pthread_mutex_lock(&s->mu);
    const char *key;
    json_t *v;
    json_object_foreach(s->group, key, v)
    {
        json_t *ix = json_object_get(s->index, key);
        if (!ix) continue;
        pair *p = &s->pairs[json_integer_value(ix)];
        if (p->inflight > 0) p->inflight--;
        p->gen++;
        p->touched_ms = now;
    }
    json_object_clear(s->group);
    pthread_mutex_unlock(&s->mu);
}

void co_fsum_alerts(co_fsum *s, const co_alert_change *c, const co_alert_outcome *o, size_t n)
{
    int queued = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        /* pending alerts are not alerts yet; inactive is a pending one dropped (id 0) or a
         * firing one resolved */
        if (!o[i].id || !c[i].to || !strcmp(c[i].to, "pending")) continue;
        if (s->naq == s->aqcap) {
            size_t nc = s->aqcap ? s->aqcap * 2 : 64;
            int64_t *na = realloc(s->aq, nc * sizeof *na);
            if (!na) {
                cm_log_limited("forward-summary-oom", LOG_EVERY_S, CM_LOG_ERROR,
                               "forward %s: out of memory: alert %lld not queued (sent at the "
                               "next start)",
                               s->conf->name, (long long)o[i].id);
                continue;
            }
            s->aq = na;
            s->aqcap = nc;
        }
        s->aq[s->naq++] = o[i].id;
        queued = 1;
    }
    pthread_mutex_unlock(&s->mu);
    if (queued && s->wake) s->wake(s->wake_ud);
}

/* Queue one figure (mu held). 0 or -1 (out of memory). */
static int queue_row(co_fsum *s, const char *site, const char *screen, const char *day,
                     const char *quantity, int64_t in_ms, int64_t measured_ms, int64_t updated_ms)
{
    if (s->ncq == s->cqcap) {
        size_t nc = s->cqcap ? s->cqcap * 2 : 64;
        qrow *nq = realloc(s->cq, nc * sizeof *nq);
        if (!nq) return -1;
        s->cq = nq;
        s->cqcap = nc;
    }
    qrow r = {strdup(site), strdup(screen), strdup(day), strdup(quantity),
              in_ms,        measured_ms,    updated_ms};
    if (!r.site || !r.screen || !r.day || !r.quantity) {
        qrow_free(&r);
        return -1;
    }
    s->cq[s->ncq++] = r;
    return 0;
}

void co_fsum_compliance(co_fsum *s, const char *day, const co_compliance_row *rows, size_t n,
                        int64_t updated_ms)
{
    int oom = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++)
        if (queue_row(s, rows[i].site, rows[i].screen, day, rows[i].quantity, rows[i].in_ms,
                      rows[i].measured_ms, updated_ms) < 0)
            oom = 1;
    pthread_mutex_unlock(&s->mu);
    if (oom)
        cm_log_limited("forward-summary-oom", LOG_EVERY_S, CM_LOG_ERROR,
                       "forward %s: out of memory: figures of %s not all queued", s->conf->name,
                       day);
    if (n && s->wake) s->wake(s->wake_ud);
}

/* ---------------------------------------------------------------- when */

/* Pair p may be read at now: its hour ended and nothing touched it for the delay. */
static int pair_due(const co_fsum *s, const pair *p, int64_t now)
{
    int64_t d = s->conf->summary_delay_ms;
    return p->inflight == 0 && p->hour + HOUR_MS + d <= now && p->touched_ms + d <= now;
}

int co_fsum_due(co_fsum *s, int64_t now_ms)
{
    pthread_mutex_lock(&s->mu);
    int due = !s->caught_up || s->naq > 0 || s->ncq > 0;
    for (size_t i = 0; !due && i < s->npairs; i++)
        due = pair_due(s, &s->pairs[i], now_ms);
    pthread_mutex_unlock(&s->mu);
    return due;
}

/* ---------------------------------------------------------------- records */

/* The records of one run: one batch per site being filled, appended when full and at the
 * end. */
typedef struct builder {
    co_fsum *s;
    const co_fsum_sink *sink;
    int64_t now;
    json_t *sites;   /* site -> index into b */
    cm_batch **b;    /* the batches being filled */
    size_t *entries; /* entries in each */
    size_t nb, cap;
    json_t *inventory; /* site -> {device id -> devices row} (read once per site and run) */
    size_t records;
    char *err;
    size_t errlen;
    int failed;
} builder;

static int b_fail(builder *w, const char *what)
{
    if (!w->failed) cm_seterr(w->err, w->errlen, "%s", what);
    w->failed = 1;
    return -1;
}

/* Encode batch i and append it to the spool, then empty it. */
static int b_flush(builder *w, size_t i)
{
    cm_batch *b = w->b[i];
    if (w->entries[i] == 0 || w->failed) return w->failed ? -1 : 0;
    b->seq = 1; /* the uploader numbers the request by the spool's seqs */
    b->sent_ms = w->now;
    size_t len;
    char *json = cm_wire_encode(b, &len);
    if (!json) return b_fail(w, "out of memory (encoding a summary record)");
    int rc = w->sink->append(w->sink->ud, json, len, w->err, w->errlen);
    free(json);
    if (rc != 0) {
        w->failed = 1;
        return -1;
    }
    w->records++;
    const char *site = b->site;
    char keep[CM_MAX_NAME + 1];
    snprintf(keep, sizeof keep, "%s", site);
    cm_batch_free(b);
    w->entries[i] = 0;
    if (cm_batch_set_agent(b, w->s->conf->agent_id, w->s->version, keep) != 0)
        return b_fail(w, "out of memory");
    b->v = CM_WIRE_VERSION_SUMMARY;
    return 0;
}

/* The batch of site being filled (a new one when none); NULL on failure. *ix its index. */
static cm_batch *b_site(builder *w, const char *site, size_t *ix)
{
    json_t *j = json_object_get(w->sites, site);
    if (j) {
        *ix = (size_t)json_integer_value(j);
        return w->b[*ix];
    }
    if (w->nb == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 16;
        cm_batch **nb = realloc(w->b, nc * sizeof *nb);
        if (nb) w->b = nb;
        size_t *ne = realloc(w->entries, nc * sizeof *ne);
        if (ne) w->entries = ne;
        if (!nb || !ne) {
            b_fail(w, "out of memory");
            return NULL;
        }
        w->cap = nc;
    }
    cm_batch *b = malloc(sizeof *b);
    if (!b) {
        b_fail(w, "out of memory");
        return NULL;
    }
    cm_batch_init(b);
    b->v = CM_WIRE_VERSION_SUMMARY;
    if (cm_batch_set_agent(b, w->s->conf->agent_id, w->s->version, site) != 0 ||
        json_object_set_new(w->sites, site, json_integer((json_int_t)w->nb)) != 0) {
        cm_batch_free(b);
        free(b);
        b_fail(w, "out of memory");
        return NULL;
    }
    w->b[w->nb] = b;
    w->entries[w->nb] = 0;
    *ix = w->nb++;
    return b;
}

/* One more entry went into batch ix: appended when full. */
static int b_added(builder *w, size_t ix)
{
    return ++w->entries[ix] >= REC_ENTRIES ? b_flush(w, ix) : 0;
}

static int b_finish(builder *w)
{
    for (size_t i = 0; i < w->nb; i++)
        if (b_flush(w, i) != 0) return -1;
    return 0;
}

static void b_free(builder *w)
{
    for (size_t i = 0; i < w->nb; i++) {
        cm_batch_free(w->b[i]);
        free(w->b[i]);
    }
    free(w->b);
    free(w->entries);
    json_decref(w->sites);
    json_decref(w->inventory);
}

/* Labels of a JSON object of strings into l (pointing into it). -1 when not such an object. */
static int labels_from(json_t *o, cm_label *l, size_t *n)
{
    *n = 0;
    if (!json_is_object(o) || json_object_size(o) > CM_MAX_LABELS) return -1;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (!json_is_string(v)) return -1;
        l[*n].key = k;
        l[(*n)++].value = json_string_value(v);
    }
    return 0;
}

/* Read the inventory of site's devices from the store once per run (before its hours are
 * read: no store read runs inside another's callback). */
static int load_inventory(builder *w, const char *site)
{
    if (json_object_get(w->inventory, site)) return 0;
    char err[256] = "";
    json_t *rows = co_store_devices(w->s->store, site, NULL, err, sizeof err);
    if (!rows) return b_fail(w, err);
    json_t *m = json_object();
    size_t i;
    json_t *d;
    json_array_foreach(rows, i, d)
    {
        const char *id = json_string_value(json_object_get(d, "id"));
        if (m && id) json_object_set(m, id, d);
    }
    json_decref(rows);
    if (!m || json_object_set_new(w->inventory, site, m) != 0) return b_fail(w, "out of memory");
    return 0;
}

/* The device's inventory (load_inventory's) into batch b once. */
static int add_inventory(builder *w, cm_batch *b, const char *site, const char *device)
{
    for (size_t i = 0; i < b->ndevices; i++)
        if (!strcmp(b->devices[i].id, device)) return 0;
    json_t *d = json_object_get(json_object_get(w->inventory, site), device);
    if (!d) return 0;
#define INV(k) json_string_value(json_object_get(d, k))
    cm_device_info info = {.id = device,
                           .screen = INV("screen"),
                           .kind = INV("kind"),
                           .vendor = INV("vendor"),
                           .model = INV("model"),
                           .serial = INV("serial"),
                           .firmware = INV("firmware"),
                           .profile = INV("profile")};
#undef INV
    if (!info.screen && !info.kind && !info.vendor && !info.model && !info.serial &&
        !info.firmware && !info.profile)
        return 0; /* nothing to tell */
    return cm_batch_add_device(b, &info) == 0 ? 0 : b_fail(w, "out of memory");
}

/* co_store_hour_rollups callback: one series' hour into its site's record. */
typedef struct hour_ctx {
    builder *w;
    int64_t hour;
} hour_ctx;

static int on_hour(void *ud, const co_hour_rollup *r)
{
    hour_ctx *h = ud;
    builder *w = h->w;
    size_t ix;
    cm_batch *b = b_site(w, r->site, &ix);
    if (!b) return 1;
    if (add_inventory(w, b, r->site, r->device) != 0) return 1;
    json_t *lj = json_loads(r->labels_json ? r->labels_json : "{}", 0, NULL);
    cm_label l[CM_MAX_LABELS];
    size_t nl = 0;
    if (labels_from(lj, l, &nl) != 0) {
        json_decref(lj);
        cm_log_limited("forward-summary-labels", LOG_EVERY_S, CM_LOG_WARN,
                       "forward %s: series %s %s %s: stored labels unreadable; not sent",
                       w->s->conf->name, r->site, r->device, r->metric);
        return 0;
    }
    cm_bucket k = {.bucket_ms = h->hour, .n = r->n, .sum = r->sum, .min = r->min, .max = r->max};
    cm_rollup ru = {.device = r->device,
                    .metric = r->metric,
                    .unit = r->unit,
                    .labels = l,
                    .nlabels = nl,
                    .buckets = &k,
                    .nbuckets = 1,
                    .has_latest = r->has_latest && isfinite(r->latest_value),
                    .latest = {r->latest_ts, r->latest_value}};
    int rc = cm_batch_add_rollup(b, &ru);
    json_decref(lj);
    if (rc != 0) {
        cm_log_limited("forward-summary-rollup", LOG_EVERY_S, CM_LOG_WARN,
                       "forward %s: series %s %s %s: roll-up of %lld cannot be sent",
                       w->s->conf->name, r->site, r->device, r->metric, (long long)h->hour);
        return 0;
    }
    return b_added(w, ix) != 0;
}

/* An alert row of the store (co_store_alert / co_store_alerts) into its site's record, when
 * it is an alert upstream (firing, or resolved after firing). 1 added, 0 not, -1 failure. */
static int add_alert(builder *w, json_t *row)
{
    const char *state = json_string_value(json_object_get(row, "state"));
    const char *site = json_string_value(json_object_get(row, "site"));
    json_t *firing = json_object_get(row, "firing_ms");
    if (!state || !site || !json_is_integer(firing) ||
        (strcmp(state, "firing") && strcmp(state, "resolved")))
        return 0;
    cm_label l[CM_MAX_LABELS];
    size_t nl = 0;
    if (labels_from(json_object_get(row, "labels"), l, &nl) != 0) return 0;
    json_t *v = json_object_get(row, "value"), *t = json_object_get(row, "threshold");
    json_t *res = json_object_get(row, "resolved_ms");
    const char *screen = json_string_value(json_object_get(row, "screen"));
    cm_alert_entry a = {
        .rule = json_string_value(json_object_get(row, "rule")),
        .screen = screen,
        .device = json_string_value(json_object_get(row, "device")),
        .labels = l,
        .nlabels = nl,
        .severity = json_string_value(json_object_get(row, "severity")),
        .state = state,
        .value = json_is_number(v) ? json_number_value(v) : NAN,
        .threshold = json_is_number(t) ? json_number_value(t) : NAN,
        .text = json_string_value(json_object_get(row, "text")),
        .started_ms = json_integer_value(json_object_get(row, "started_ms")),
        .firing_ms = json_integer_value(firing),
        .resolved_ms = json_is_integer(res) ? json_integer_value(res) : 0,
        .updated_ms = json_integer_value(json_object_get(row, "updated_ms")),
    };
    size_t ix;
    cm_batch *b = b_site(w, site, &ix);
    if (!b) return -1;
    if (!a.rule || !a.device || cm_batch_add_alert(b, &a) != 0) {
        cm_log_limited("forward-summary-alert", LOG_EVERY_S, CM_LOG_WARN,
                       "forward %s: alert %lld cannot be sent", w->s->conf->name,
                       (long long)json_integer_value(json_object_get(row, "id")));
        return 0;
    }
    return b_added(w, ix) == 0 ? 1 : -1;
}

/* The index in `open` of the alert key of row (rule, site, device, labels), or -1. */
static long open_find(json_t *open, const char *rule, const char *site, const char *device,
                      json_t *labels)
{
    size_t i;
    json_t *k;
    json_array_foreach(open, i, k)
    {
        if (!strcmp(json_string_value(json_array_get(k, 0)), rule) &&
            !strcmp(json_string_value(json_array_get(k, 1)), site) &&
            !strcmp(json_string_value(json_array_get(k, 2)), device) &&
            json_equal(json_array_get(k, 3), labels))
            return (long)i;
    }
    return -1;
}

/* After sending row: `open` holds its key while it fires upstream. */
static void open_note(json_t *open, json_t *row)
{
    const char *rule = json_string_value(json_object_get(row, "rule"));
    const char *site = json_string_value(json_object_get(row, "site"));
    const char *device = json_string_value(json_object_get(row, "device"));
    const char *state = json_string_value(json_object_get(row, "state"));
    json_t *labels = json_object_get(row, "labels");
    if (!rule || !site || !device || !state || !json_is_object(labels)) return;
    long i = open_find(open, rule, site, device, labels);
    if (!strcmp(state, "firing")) {
        if (i < 0) json_array_append_new(open, json_pack("[s,s,s,O]", rule, site, device, labels));
    } else if (i >= 0) {
        json_array_remove(open, (size_t)i);
    }
}

/* The newest stored alert of key k = [rule, site, device, labels] (a new reference), or NULL. */
static json_t *alert_by_key(co_fsum *s, json_t *k, char *err, size_t errlen)
{
    co_alert_filter f = {.site = json_string_value(json_array_get(k, 1)),
                         .device = json_string_value(json_array_get(k, 2)),
                         .rule = json_string_value(json_array_get(k, 0)),
                         .limit = KEY_ALERTS};
    json_t *rows = co_store_alerts(s->store, &f, NULL, err, errlen);
    if (!rows) return NULL;
    json_t *best = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        if (!json_equal(json_object_get(r, "labels"), json_array_get(k, 3))) continue;
        if (!best || json_integer_value(json_object_get(r, "started_ms")) >
                         json_integer_value(json_object_get(best, "started_ms")))
            best = r;
    }
    json_incref(best);
    json_decref(rows);
    if (!best) err[0] = '\0';
    return best;
}

/* The start's alerts: every firing alert, and the newest of each that the upstream holds as
 * firing (resolved meanwhile, perhaps while this collector was down). open: updated. */
static int catch_up_alerts(co_fsum *s, builder *w, json_t *open)
{
    char err[256] = "";
    co_alert_filter f = {.state = "firing", .limit = CATCHUP_ALERTS};
    json_t *rows = co_store_alerts(s->store, &f, NULL, err, sizeof err);
    if (!rows) return b_fail(w, err);
    json_t *before = json_deep_copy(open);
    size_t i;
    json_t *r;
    int rc = before ? 0 : b_fail(w, "out of memory");
    json_array_foreach(rows, i, r)
    {
        if (rc == 0 && add_alert(w, r) < 0) rc = -1;
        if (rc == 0) open_note(open, r);
    }
    json_decref(rows);
    json_t *k;
    json_array_foreach(before, i, k)
    {
        if (rc != 0) break;
        json_t *row = alert_by_key(s, k, err, sizeof err);
        if (!row && err[0]) {
            rc = b_fail(w, err);
            break;
        }
        if (!row) { /* gone from the store: nothing to tell */
            long j = open_find(open, json_string_value(json_array_get(k, 0)),
                               json_string_value(json_array_get(k, 1)),
                               json_string_value(json_array_get(k, 2)), json_array_get(k, 3));
            if (j >= 0) json_array_remove(open, (size_t)j);
            continue;
        }
        if (strcmp(json_string_value(json_object_get(row, "state")), "firing") != 0) {
            if (add_alert(w, row) < 0) rc = -1;
            open_note(open, row);
        }
        json_decref(row);
    }
    json_decref(before);
    return rc;
}

/* co_store_compliance_rows callback of the catch-up: the day's figures queued. */
typedef struct cu_ctx {
    co_fsum *s;
    const char *day;
    int64_t updated;
    int oom;
} cu_ctx;

static int on_day_row(void *ud, const co_compliance_row *r, const char *province, const char *city)
{
    (void)province;
    (void)city;
    cu_ctx *c = ud;
    pthread_mutex_lock(&c->s->mu);
    int rc = queue_row(c->s, r->site, r->screen, c->day, r->quantity, r->in_ms, r->measured_ms,
                       c->updated);
    pthread_mutex_unlock(&c->s->mu);
    if (rc != 0) c->oom = 1;
    return rc != 0;
}

/* The start's compliance: the figures of the last CATCHUP_DAYS days stored after the newest
 * sent, queued. */
static int catch_up_compliance(co_fsum *s, builder *w, int64_t now)
{
    int64_t today = now / DAY_MS;
    for (int64_t d = today - CATCHUP_DAYS + 1; d <= today; d++) {
        char day[16], err[256] = "";
        time_t t = (time_t)(d * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(day, sizeof day, "%Y-%m-%d", &tm);
        int64_t updated = 0;
        if (co_store_compliance_rows(s->store, day, NULL, NULL, NULL, NULL, NULL, NULL, &updated,
                                     err, sizeof err) != 0)
            return b_fail(w, err);
        if (updated <= s->compliance_ms) continue;
        cu_ctx c = {s, day, updated, 0};
        if (co_store_compliance_rows(s->store, day, NULL, NULL, NULL, NULL, on_day_row, &c, NULL,
                                     err, sizeof err) != 0)
            return b_fail(w, c.oom ? "out of memory" : err);
    }
    return 0;
}

/* ---------------------------------------------------------------- a run */

/* A due pair as taken by a run. */
typedef struct taken {
    int64_t hour;
    char *site;
    uint64_t gen;
} taken;

int co_fsum_run(co_fsum *s, int64_t now_ms, const co_fsum_sink *sink, size_t *records, char *err,
                size_t errlen)
{
    *records = 0;
    builder w = {.s = s,
                 .sink = sink,
                 .now = now_ms,
                 .sites = json_object(),
                 .inventory = json_object(),
                 .err = err,
                 .errlen = errlen};
    json_t *open = NULL;
    int64_t *ids = NULL;
    qrow *rows = NULL;
    taken *pairs = NULL;
    size_t nids = 0, nrows = 0, npairs = 0;
    int catching_up = 0;
    if (!w.sites || !w.inventory) b_fail(&w, "out of memory");

    /* the start's catch-up first (its figures join the queue) */
    pthread_mutex_lock(&s->mu);
    catching_up = !s->caught_up;
    open = json_deep_copy(s->open);
    pthread_mutex_unlock(&s->mu);
    if (!open) b_fail(&w, "out of memory");
    if (catching_up && !w.failed && catch_up_compliance(s, &w, now_ms) == 0)
        catch_up_alerts(s, &w, open);

    /* take what the hooks queued and the pairs due */
    pthread_mutex_lock(&s->mu);
    nids = s->naq;
    ids = s->aq;
    s->aq = NULL;
    s->naq = s->aqcap = 0;
    nrows = s->ncq;
    rows = s->cq;
    s->cq = NULL;
    s->ncq = s->cqcap = 0;
    pairs = calloc(PAIRS_PER_RUN, sizeof *pairs);
    for (size_t i = 0; pairs && i < s->npairs && npairs < PAIRS_PER_RUN; i++) {
        const pair *p = &s->pairs[i];
        if (!pair_due(s, p, now_ms)) continue;
        char *site = strdup(p->site);
        if (!site) break;
        pairs[npairs++] = (taken){p->hour, site, p->gen};
    }
    pthread_mutex_unlock(&s->mu);
    if (!pairs) b_fail(&w, "out of memory");

    for (size_t i = 0; i < nids && !w.failed; i++) {
        char e[256] = "";
        json_t *row = co_store_alert(s->store, ids[i], NULL, e, sizeof e);
        if (!row && e[0]) {
            b_fail(&w, e);
            break;
        }
        if (!row) continue; /* gone (a pending alert dropped) */
        if (add_alert(&w, row) > 0) open_note(open, row);
        json_decref(row);
    }
    int64_t newest = 0;
    for (size_t i = 0; i < nrows && !w.failed; i++) {
        const qrow *r = &rows[i];
        size_t ix;
        cm_batch *b = b_site(&w, r->site, &ix);
        cm_compliance_entry e = {r->screen, r->day, r->quantity, r->in_ms, r->measured_ms};
        if (!b) break;
        if (cm_batch_add_compliance(b, &e) != 0) {
            cm_log_limited("forward-summary-figure", LOG_EVERY_S, CM_LOG_WARN,
                           "forward %s: compliance figure %s %s %s %s cannot be sent",
                           s->conf->name, r->site, r->screen, r->day, r->quantity);
        } else if (b_added(&w, ix) != 0) {
            break;
        }
        if (r->updated_ms > newest) newest = r->updated_ms;
    }
    for (size_t i = 0; i < npairs && !w.failed; i++) {
        hour_ctx h = {&w, pairs[i].hour};
        char e[256] = "";
        if (load_inventory(&w, pairs[i].site) != 0) break;
        int rc =
            co_store_hour_rollups(s->store, pairs[i].hour, pairs[i].site, on_hour, &h, e, sizeof e);
        if (rc < 0) b_fail(&w, e);
        if (rc != 0) break;
    }
    if (!w.failed) b_finish(&w);
    if (!w.failed && w.records && sink->sync(sink->ud, err, errlen) != 0) w.failed = 1;

    pthread_mutex_lock(&s->mu);
    if (w.failed) { /* put back what was taken: tried again at the next run */
        for (size_t i = 0; i < nids; i++) {
            if (s->naq == s->aqcap) {
                size_t nc = s->aqcap ? s->aqcap * 2 : 64;
                int64_t *na = realloc(s->aq, nc * sizeof *na);
                if (!na) break;
                s->aq = na;
                s->aqcap = nc;
            }
            s->aq[s->naq++] = ids[i];
        }
        for (size_t i = 0; i < nrows; i++) {
            if (queue_row(s, rows[i].site, rows[i].screen, rows[i].day, rows[i].quantity,
                          rows[i].in_ms, rows[i].measured_ms, rows[i].updated_ms) != 0)
                break;
        }
    } else {
        for (size_t i = 0; i < npairs; i++) {
            char key[CM_MAX_NAME + 32];
            pair_key(key, sizeof key, pairs[i].hour, pairs[i].site);
            json_t *ix = json_object_get(s->index, key);
            if (!ix) continue;
            size_t k = (size_t)json_integer_value(ix);
            if (s->pairs[k].gen == pairs[i].gen && s->pairs[k].inflight == 0)
                remove_locked(s, k); /* else: touched while it was read: read again later */
        }
        json_decref(s->open);
        s->open = open;
        open = NULL;
        if (newest > s->compliance_ms) s->compliance_ms = newest;
        s->caught_up = 1;
        if (npairs || nids || nrows || catching_up) save_or_log(s);
    }
    pthread_mutex_unlock(&s->mu);

    *records = w.records;
    int rc = w.failed ? -1 : 0;
    json_decref(open);
    free(ids);
    for (size_t i = 0; i < nrows; i++)
        qrow_free(&rows[i]);
    free(rows);
    for (size_t i = 0; i < npairs; i++)
        free(pairs[i].site);
    free(pairs);
    b_free(&w);
    return rc;
}

/* forward.c — the forwarders of forward.h: per upstream a spool, an intent journal, a thread
 * running a libuv loop with the agent's uploader; the writer's journal hooks turn stored
 * batches into spool records; start-up finishes what a crash interrupted; the counters of each
 * upstream copied for /metrics after every loop iteration. */
#include "forward.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "agent/uploader.h"
#include "errbuf.h"
#include "forward_journal.h"
#include "forward_summary.h"
#include "gzip.h"
#include "log.h"
#include "tokenfile.h"
#include "spool.h"
#include "timeutil.h"
#include "wire.h"

#define PLAIN_SPOOL_FRACTION 16 /* records gzipped once the spool holds max_bytes / 16 (agent) */
#define SPOOL_GZIP_LEVEL 1
#define SEQMAP_MAX (1u << 20) /* agents remembered; the map is cleared beyond */
#define STOP_TICK_MS 50
#define SUMMARY_TICK_MS 1000 /* summary mode: how often closed hours are looked for */
#define LOG_EVERY_S 60

/* ---- each agent's last_seq, as the writer last left it (writer thread only) ------------- */

typedef struct seqmap {
    char **key; /* NULL = empty slot */
    uint64_t *val;
    size_t cap, n; /* cap: a power of two */
} seqmap;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void seqmap_clear(seqmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->key[i]);
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}

static size_t seqmap_slot(const seqmap *m, const char *k)
{
    size_t i = (size_t)fnv1a(k) & (m->cap - 1);
    while (m->key[i] && strcmp(m->key[i], k) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

/* 1 and *v when known, else 0. */
static int seqmap_get(const seqmap *m, const char *k, uint64_t *v)
{
    if (!m->cap) return 0;
    size_t i = seqmap_slot(m, k);
    if (!m->key[i]) return 0;
    *v = m->val[i];
    return 1;
}

/* Remember k -> v (CO_FJ_UNKNOWN: read it from the store next time). Out of memory only
 * forgets, which costs a store read later. */
static void seqmap_set(seqmap *m, const char *k, uint64_t v)
{
    if (m->n >= SEQMAP_MAX) seqmap_clear(m);
    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 256;
        seqmap bigger = {calloc(nc, sizeof(char *)), calloc(nc, sizeof(uint64_t)), nc, 0};
        if (!bigger.key || !bigger.val) {
            free(bigger.key);
            free(bigger.val);
            return;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->key[i]) continue;
            size_t j = seqmap_slot(&bigger, m->key[i]);
            bigger.key[j] = m->key[i];
            bigger.val[j] = m->val[i];
            bigger.n++;
        }
        free(m->key);
        free(m->val);
        *m = bigger;
    }
    size_t i = seqmap_slot(m, k);
    if (!m->key[i]) {
        if (!(m->key[i] = strdup(k))) return;
        m->n++;
    }
    m->val[i] = v;
}

/* ---- types ------------------------------------------------------------------------------ */

/* What settle hands an upstream's thread: records to append, then the spool's state. */
typedef struct job {
    const co_fj_entry *e;
    size_t n;
    int done;
    uint64_t next_low;    /* the spool's next seq afterwards */
    uint64_t spool_bytes; /* ... and its size */
} job;

typedef struct upstream {
    co_forward *f;
    const co_upstream_conf *conf;
    char *token; /* wiped on free; never logged */
    char url[1024];
    cm_spool *spool;
    co_fjournal *journal;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t stop_timer;
    uv_check_t check;     /* after every loop iteration: the counters copied into stats */
    uv_timer_t sum_timer; /* summary mode: what is due looked for every SUMMARY_TICK_MS */
    co_fsum *fs;          /* summary mode (forward_summary.h); NULL in full mode */
    int sum_timer_ready;  /* sum_timer initialised on the loop */
    size_t sum_bytes;     /* record bytes the summary run being done appended */
    int loop_ready, thread_started, stopping;
    ag_uploader *up;
    pthread_t thread;
    pthread_mutex_t mu; /* guards job and stop */
    pthread_cond_t cv;
    job *job;
    int stop;
    int64_t grace_ms, stop_deadline_ms;
    /* writer thread only (and start-up) */
    uint64_t low_seq;     /* the spool's next seq after the last settle */
    uint64_t spool_bytes; /* its size then */
    char **payload;       /* per batch of the group: its record (NULL = none) */
    size_t *plen;
    uint32_t *ptype;
    co_fj_entry *ents;
    job job_slot;
    /* loop thread */
    uint64_t appended, lost;
    ag_uploader_stats up_stats; /* the uploader's, as last read (kept once it is closed) */
    pthread_mutex_t stats_mu;   /* guards stats */
    co_forward_stats stats;     /* for any thread (co_forward_stats_get) */
} upstream;

struct co_forward {
    co_store *store;
    char *version;
    upstream *ups;
    size_t n;
    /* writer thread only */
    seqmap last;
    size_t gcap;
    int group_ok;          /* prepare had the memory for this group */
    uint64_t *last_before; /* per batch of the group */
    int *expected;         /* per batch: expected to be stored */
};

/* ---- the upstream's thread -------------------------------------------------------------- */

/* Copy the counters of the spool, the uploader and the appends into u->stats (the loop
 * thread, or start-up before it runs). */
static void snapshot(upstream *u)
{
    cm_spool_stats sp;
    cm_spool_stats_get(u->spool, &sp);
    if (u->up) ag_uploader_stats_get(u->up, &u->up_stats);
    const ag_uploader_stats *a = &u->up_stats;
    co_forward_stats s = {.name = u->conf->name,
                          .spooled = u->appended,
                          .lost = u->lost,
                          .attempts = a->attempts,
                          .acked = a->acked,
                          .records_acked = a->records_acked,
                          .retried = a->failures,
                          .rejected = a->rejected,
                          .conflicts = a->conflicts,
                          .splits = a->splits,
                          .last_ack_ms = a->last_ack_ms,
                          .spool_bytes = sp.bytes,
                          .spool_records = sp.records,
                          .oldest_ms = sp.records ? sp.oldest_ms : 0,
                          .dropped_records = sp.dropped_records,
                          .disk_ok = sp.disk_ok};
    pthread_mutex_lock(&u->stats_mu);
    u->stats = s;
    pthread_mutex_unlock(&u->stats_mu);
}

static void on_check(uv_check_t *c)
{
    snapshot(c->data);
}

/* Append a group's records (in order), sync, empty the journal, wake the uploader: all in one
 * loop callback, so the uploader never sees a record while the journal still names it. */
static void run_job(upstream *u, job *j)
{
    char err[256];
    size_t bytes = 0;
    for (size_t i = 0; i < j->n; i++) {
        uint64_t seq;
        if (cm_spool_append(u->spool, j->e[i].type, j->e[i].payload, j->e[i].len, &seq, err,
                            sizeof err) != 0) {
            u->lost++;
            cm_log_limited("forward-append", LOG_EVERY_S, CM_LOG_ERROR,
                           "forward %s: batch %llu of agent %s is lost for upstream: %s",
                           u->conf->name, (unsigned long long)j->e[i].seq, j->e[i].agent, err);
            continue;
        }
        u->appended++;
        bytes += j->e[i].len;
    }
    if (u->conf->fsync == CM_FSYNC_CYCLE && cm_spool_sync(u->spool, err, sizeof err) != 0)
        cm_log_limited("forward-sync", LOG_EVERY_S, CM_LOG_ERROR, "forward %s: %s", u->conf->name,
                       err);
    if (co_fj_clear(u->journal, err, sizeof err) != 0)
        cm_log_limited("forward-journal", LOG_EVERY_S, CM_LOG_ERROR, "forward %s: %s",
                       u->conf->name, err);
    if (u->up) ag_uploader_notify(u->up, bytes);
    cm_spool_stats st;
    cm_spool_stats_get(u->spool, &st);
    j->next_low = st.next_seq;
    j->spool_bytes = st.bytes;
}

/* ---- summary mode: records built by forward_summary.c, appended on this thread --------- */

/* The summary's sink: one record appended (gzipped once the spool holds a backlog). */
static int sum_append(void *ud, const char *json, size_t len, char *err, size_t errlen)
{
    upstream *u = ud;
    uint32_t type = CM_REC_BATCH;
    const void *data = json;
    char *gz = NULL;
    size_t gzl = 0;
    cm_spool_stats st;
    cm_spool_stats_get(u->spool, &st);
    if (st.bytes >= u->conf->max_bytes / PLAIN_SPOOL_FRACTION &&
        cm_gzip(json, len, SPOOL_GZIP_LEVEL, &gz, &gzl) == 0) {
        type = CM_REC_BATCH_GZ;
        data = gz;
        len = gzl;
    }
    uint64_t seq;
    int rc = cm_spool_append(u->spool, type, data, len, &seq, err, errlen);
    free(gz);
    if (rc != 0) {
        u->lost++;
        return -1;
    }
    u->appended++;
    u->sum_bytes += len;
    return 0;
}

static int sum_sync(void *ud, char *err, size_t errlen)
{
    upstream *u = ud;
    return u->conf->fsync == CM_FSYNC_CYCLE ? cm_spool_sync(u->spool, err, errlen) : 0;
}

/* What is due in summary mode into the spool (forward_summary.h). */
static void summary_run(upstream *u)
{
    int64_t now = cm_now_ms();
    if (!u->fs || !co_fsum_due(u->fs, now)) return;
    co_fsum_sink sink = {sum_append, sum_sync, u};
    size_t n = 0;
    char err[512];
    u->sum_bytes = 0;
    if (co_fsum_run(u->fs, now, &sink, &n, err, sizeof err) != 0)
        cm_log_limited("forward-summary", LOG_EVERY_S, CM_LOG_ERROR,
                       "forward %s: summary records: %s (tried again)", u->conf->name, err);
    /* the uploader looks at the records once they are synced, as after a group's job */
    if (u->sum_bytes && u->up) ag_uploader_notify(u->up, u->sum_bytes);
}

static void on_sum_tick(uv_timer_t *t)
{
    summary_run(t->data);
}

/* co_fsum wake: something was queued (any thread). */
static void sum_wake(void *ud)
{
    upstream *u = ud;
    uv_async_send(&u->wake);
}

static void on_stop_tick(uv_timer_t *t)
{
    upstream *u = t->data;
    cm_spool_stats st;
    cm_spool_stats_get(u->spool, &st);
    int pending = st.records > 0 || ag_uploader_busy(u->up);
    if (pending && cm_mono_ms() < u->stop_deadline_ms) return;
    if (pending)
        cm_info("forward %s: stopping with %llu record(s) not yet acknowledged by %s; they "
                "stay in %s and are sent after the next start",
                u->conf->name, (unsigned long long)st.records, u->url, u->conf->spool_dir);
    snapshot(u);
    ag_uploader_close(u->up);
    u->up = NULL;
    if (u->sum_timer_ready) uv_close((uv_handle_t *)&u->sum_timer, NULL);
    uv_close((uv_handle_t *)&u->check, NULL);
    uv_close((uv_handle_t *)&u->stop_timer, NULL);
    uv_close((uv_handle_t *)&u->wake, NULL);
}

static void on_wake(uv_async_t *a)
{
    upstream *u = a->data;
    pthread_mutex_lock(&u->mu);
    job *j = u->job;
    u->job = NULL;
    int stop = u->stop;
    pthread_mutex_unlock(&u->mu);
    if (j) {
        run_job(u, j);
        pthread_mutex_lock(&u->mu);
        j->done = 1;
        pthread_cond_broadcast(&u->cv);
        pthread_mutex_unlock(&u->mu);
    }
    if (u->fs && !u->stopping) summary_run(u); /* what a hook queued (or the last of it) */
    if (stop && !u->stopping) {
        u->stopping = 1;
        u->stop_deadline_ms = cm_mono_ms() + u->grace_ms;
        ag_uploader_flush(u->up);
        uv_timer_start(&u->stop_timer, on_stop_tick, 0, STOP_TICK_MS);
    }
}

static void *thread_main(void *arg)
{
    upstream *u = arg;
    uv_run(&u->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- the writer's hooks ----------------------------------------------------------------- */

static int grow_group(co_forward *f, size_t n)
{
    if (n <= f->gcap) return 0;
    size_t c = f->gcap ? f->gcap : 64;
    while (c < n)
        c *= 2;
    uint64_t *lb = realloc(f->last_before, c * sizeof *lb);
    if (lb) f->last_before = lb;
    int *ex = realloc(f->expected, c * sizeof *ex);
    if (ex) f->expected = ex;
    if (!lb || !ex) return -1;
    for (size_t i = 0; i < f->n; i++) {
        upstream *u = &f->ups[i];
        char **p = realloc(u->payload, c * sizeof *p);
        if (p) u->payload = p;
        size_t *pl = realloc(u->plen, c * sizeof *pl);
        if (pl) u->plen = pl;
        uint32_t *pt = realloc(u->ptype, c * sizeof *pt);
        if (pt) u->ptype = pt;
        co_fj_entry *en = realloc(u->ents, c * sizeof *en);
        if (en) u->ents = en;
        if (!p || !pl || !pt || !en) return -1;
        for (size_t k = f->gcap; k < c; k++)
            u->payload[k] = NULL;
    }
    f->gcap = c;
    return 0;
}

/* The agent's last_seq as the writer will find it (CO_FJ_UNKNOWN when the store fails). */
static uint64_t last_seq_of(co_forward *f, const char *agent)
{
    uint64_t v;
    if (seqmap_get(&f->last, agent, &v) && v != CO_FJ_UNKNOWN) return v;
    char err[256];
    if (co_store_last_seq(f->store, agent, &v, err, sizeof err) < 0) {
        cm_log_limited("forward-last-seq", LOG_EVERY_S, CM_LOG_ERROR,
                       "forward: last_seq of agent %s: %s (a crash now could lose its batch "
                       "upstream)",
                       agent, err);
        return CO_FJ_UNKNOWN;
    }
    seqmap_set(&f->last, agent, v);
    return v;
}

/* Does the batch carry anything for upstream? (Its own gap reports are about its agent's
 * seqs, which mean nothing there.) */
static int forwardable(const cm_batch *b)
{
    return b->ndevices || b->nseries || b->nevents;
}

/* b as a record of u's spool: u's identity, b's site, devices, series and events. NULL on
 * out of memory. seq: the seq it will get at the earliest (the payload's own "seq" is not
 * what the uploader sends). */
static char *encode(upstream *u, const cm_batch *b, uint64_t seq, size_t *len, uint32_t *type)
{
    cm_batch view = *b; /* a shallow copy that is only read */
    view.agent_id = u->conf->agent_id;
    view.agent_version = u->f->version;
    view.seq = seq ? seq : 1;
    view.first_seq = 0;
    view.gaps = NULL;
    view.ngaps = 0;
    size_t jl;
    char *json = cm_wire_encode(&view, &jl);
    if (!json) return NULL;
    *type = CM_REC_BATCH;
    *len = jl;
    char *gz;
    size_t gzl;
    if (u->spool_bytes >= u->conf->max_bytes / PLAIN_SPOOL_FRACTION &&
        cm_gzip(json, jl, SPOOL_GZIP_LEVEL, &gz, &gzl) == 0) {
        free(json);
        *type = CM_REC_BATCH_GZ;
        *len = gzl;
        return gz;
    }
    return json;
}

static void free_payloads(upstream *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(u->payload[i]);
        u->payload[i] = NULL;
    }
}

void co_forward_prepare(void *ud, cm_batch *const *batches, size_t n)
{
    co_forward *f = ud;
    char err[256];
    for (size_t k = 0; k < f->n; k++) /* summary mode: the hours and sites the group touches */
        if (f->ups[k].fs) co_fsum_prepare(f->ups[k].fs, batches, n);
    f->group_ok = grow_group(f, n) == 0;
    if (!f->group_ok) {
        cm_log_limited("forward-oom", LOG_EVERY_S, CM_LOG_ERROR,
                       "forward: out of memory: %zu batches not forwarded", n);
        return;
    }
    /* What the store will decide for each batch, in order (writer.h): a crash after the
     * commit is finished from the journal with these expectations. */
    for (size_t i = 0; i < n; i++) {
        const cm_batch *b = batches[i];
        uint64_t l = last_seq_of(f, b->agent_id);
        uint64_t first = b->first_seq ? b->first_seq : b->seq;
        f->last_before[i] = l;
        f->expected[i] = l != CO_FJ_UNKNOWN && first > l;
        if (f->expected[i]) seqmap_set(&f->last, b->agent_id, b->seq);
    }
    for (size_t k = 0; k < f->n; k++) {
        upstream *u = &f->ups[k];
        size_t ne = 0;
        for (size_t i = 0; i < n; i++)
            u->payload[i] = NULL;
        if (u->fs) continue; /* summary mode: no batch goes up as it is */
        for (size_t i = 0; i < n; i++) {
            const cm_batch *b = batches[i];
            if (!forwardable(b)) continue;
            u->payload[i] = encode(u, b, u->low_seq, &u->plen[i], &u->ptype[i]);
            if (!u->payload[i]) {
                cm_log_limited("forward-oom", LOG_EVERY_S, CM_LOG_ERROR,
                               "forward %s: out of memory: batch %llu of agent %s not forwarded",
                               u->conf->name, (unsigned long long)b->seq, b->agent_id);
                continue;
            }
            u->ents[ne++] = (co_fj_entry){.agent = b->agent_id,
                                          .first_seq = b->first_seq ? b->first_seq : b->seq,
                                          .seq = b->seq,
                                          .last_before = f->last_before[i],
                                          .type = u->ptype[i],
                                          .payload = u->payload[i],
                                          .len = u->plen[i]};
        }
        int rc = ne ? co_fj_write(u->journal, u->low_seq, u->ents, ne, err, sizeof err)
                    : co_fj_clear(u->journal, err, sizeof err);
        if (rc != 0)
            cm_log_limited("forward-journal", LOG_EVERY_S, CM_LOG_ERROR,
                           "forward %s: %s (a crash before the next commit could lose its "
                           "batches upstream)",
                           u->conf->name, err);
    }
}

void co_forward_settle(void *ud, cm_batch *const *batches, const co_batch_result *results, size_t n,
                       int committed)
{
    co_forward *f = ud;
    char err[256];
    for (size_t k = 0; k < f->n; k++) /* summary mode: the group's hours may be read now */
        if (f->ups[k].fs) co_fsum_settle(f->ups[k].fs);
    if (!f->group_ok) { /* prepare ran out of memory: what the map holds may be wrong */
        seqmap_clear(&f->last);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *a = batches[i]->agent_id;
        if (committed && results[i] == CO_BATCH_STORED)
            seqmap_set(&f->last, a, batches[i]->seq);
        else if (f->expected[i]) /* not as expected (or not committed at all): re-read */
            seqmap_set(&f->last, a, CO_FJ_UNKNOWN);
    }
    /* hand each upstream its records; they work in parallel */
    for (size_t k = 0; k < f->n; k++) {
        upstream *u = &f->ups[k];
        size_t ne = 0;
        for (size_t i = 0; committed && i < n; i++) {
            if (!u->payload[i] || results[i] != CO_BATCH_STORED) continue;
            const cm_batch *b = batches[i];
            u->ents[ne++] = (co_fj_entry){.agent = b->agent_id,
                                          .seq = b->seq,
                                          .type = u->ptype[i],
                                          .payload = u->payload[i],
                                          .len = u->plen[i]};
        }
        u->job_slot = (job){.e = u->ents, .n = ne};
        if (u->fs) { /* summary mode: no journal, nothing to append now */
            u->job_slot.done = 1;
            continue;
        }
        if (ne == 0) { /* nothing for the spool: the journal is simply emptied */
            if (co_fj_clear(u->journal, err, sizeof err) != 0)
                cm_log_limited("forward-journal", LOG_EVERY_S, CM_LOG_ERROR, "forward %s: %s",
                               u->conf->name, err);
            u->job_slot.done = 1;
            continue;
        }
        pthread_mutex_lock(&u->mu);
        u->job = &u->job_slot;
        pthread_mutex_unlock(&u->mu);
        uv_async_send(&u->wake);
    }
    for (size_t k = 0; k < f->n; k++) {
        upstream *u = &f->ups[k];
        pthread_mutex_lock(&u->mu);
        while (!u->job_slot.done)
            pthread_cond_wait(&u->cv, &u->mu);
        pthread_mutex_unlock(&u->mu);
        if (u->job_slot.n) {
            u->low_seq = u->job_slot.next_low;
            u->spool_bytes = u->job_slot.spool_bytes;
        }
        free_payloads(u, n);
    }
}

/* ---- start-up --------------------------------------------------------------------------- */

/* Finish the group a crash interrupted: when its commit happened (the store's last_seq of an
 * agent it expected to store reached that batch), append the records of its stored batches
 * that the spool does not hold yet (its BATCH records from the journal's low_seq on are the
 * first ones of them, in order). 0 or -1 with err. */
static int recover(upstream *u, co_store *store, char *err, size_t errlen)
{
    uint64_t low;
    const co_fj_entry *e;
    size_t n;
    int r = co_fj_read(u->journal, &low, &e, &n, err, errlen);
    if (r < 0) return -1;
    if (r == 0) return co_fj_clear(u->journal, err, errlen);
    int committed = 0;
    size_t expected = 0;
    for (size_t i = 0; i < n; i++) {
        if (!co_fj_expected_stored(&e[i])) continue;
        if (expected++ == 0) {
            uint64_t l;
            if (co_store_last_seq(store, e[i].agent, &l, err, errlen) < 0) return -1;
            committed = l >= e[i].seq;
        }
    }
    if (!committed || expected == 0) {
        cm_info("forward %s: the last group in the intent journal was not committed; nothing "
                "to forward from it",
                u->conf->name);
        return co_fj_clear(u->journal, err, errlen);
    }
    size_t have = 0;
    for (uint64_t from = low;;) {
        cm_spool_record rec;
        r = cm_spool_read(u->spool, from, &rec, err, errlen);
        if (r < 0) return -1;
        if (r == 0) break;
        if (rec.type == CM_REC_BATCH || rec.type == CM_REC_BATCH_GZ) have++;
        from = rec.seq + 1;
    }
    if (have > expected) {
        cm_warn("forward %s: the spool holds %zu records from seq %llu on, the intent journal "
                "only %zu; appending none",
                u->conf->name, have, (unsigned long long)low, expected);
        return co_fj_clear(u->journal, err, errlen);
    }
    size_t skip = have, added = 0;
    for (size_t i = 0; i < n; i++) {
        if (!co_fj_expected_stored(&e[i])) continue;
        if (skip) {
            skip--;
            continue;
        }
        uint64_t seq;
        if (cm_spool_append(u->spool, e[i].type, e[i].payload, e[i].len, &seq, err, errlen) != 0)
            return -1;
        added++;
    }
    if (u->conf->fsync != CM_FSYNC_NONE && cm_spool_sync(u->spool, err, errlen) != 0) return -1;
    cm_warn("forward %s: the last run ended between the commit of %zu batch(es) and their "
            "spooling; %zu were in the spool, %zu appended from the intent journal",
            u->conf->name, expected, have, added);
    return co_fj_clear(u->journal, err, errlen);
}

static int start_one(co_forward *f, upstream *u, const co_upstream_conf *c, char *err,
                     size_t errlen)
{
    u->f = f;
    u->conf = c;
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    pthread_mutex_init(&u->stats_mu, NULL);
    size_t ul = strlen(c->url);
    while (ul && c->url[ul - 1] == '/')
        ul--;
    snprintf(u->url, sizeof u->url, "%.*s/api/v1/ingest", (int)ul, c->url);
    if (!(u->token = cm_token_file_read(c->token_file, err, errlen))) return -1;
    cm_spool_opts so = {.dir = c->spool_dir,
                        .segment_bytes = c->segment_bytes,
                        .max_bytes = c->max_bytes,
                        .min_free_bytes = c->min_free_bytes,
                        .fsync = (cm_fsync_policy)c->fsync};
    cm_spool_recovery rep;
    if (cm_spool_open(&u->spool, &so, &rep, err, errlen) != 0) return -1;
    if (rep.truncated_bytes || rep.corrupt_records)
        cm_warn("forward %s: spool recovery cut %llu torn byte(s) and skipped %llu corrupt "
                "record(s)",
                c->name, (unsigned long long)rep.truncated_bytes,
                (unsigned long long)rep.corrupt_records);
    char path[4096];
    snprintf(path, sizeof path, "%s/forward.journal", c->spool_dir);
    if (co_fj_open(&u->journal, path, c->fsync != CM_FSYNC_NONE, err, errlen) != 0 ||
        recover(u, f->store, err, errlen) != 0)
        return -1;
    cm_spool_stats st;
    cm_spool_stats_get(u->spool, &st);
    u->low_seq = st.next_seq;
    u->spool_bytes = st.bytes;
    snapshot(u);

    if (uv_loop_init(&u->loop) != 0) {
        cm_seterr(err, errlen, "forward %s: cannot start an event loop", c->name);
        return -1;
    }
    u->loop_ready = 1;
    uv_async_init(&u->loop, &u->wake, on_wake);
    u->wake.data = u;
    uv_timer_init(&u->loop, &u->stop_timer);
    u->stop_timer.data = u;
    uv_check_init(&u->loop, &u->check);
    u->check.data = u;
    uv_check_start(&u->check, on_check);
    if (c->mode == CO_FWD_SUMMARY) {
        uv_timer_init(&u->loop, &u->sum_timer);
        u->sum_timer.data = u;
        u->sum_timer_ready = 1;
        if (co_fsum_open(&u->fs, c, f->store, f->version, sum_wake, u, err, errlen) != 0) return -1;
        uv_timer_start(&u->sum_timer, on_sum_tick, 0, SUMMARY_TICK_MS);
    }
    ag_uploader_opts uo = {.url = u->url,
                           .token = u->token,
                           .agent_id = c->agent_id,
                           .agent_version = f->version,
                           .site = NULL,
                           .record_sites = 1,
                           .spool = u->spool,
                           .interval_ms = c->interval_ms,
                           .max_batch_bytes = c->max_batch_bytes,
                           .timeout_ms = c->timeout_ms,
                           .backoff_base_ms = c->backoff_base_ms,
                           .backoff_cap_ms = c->backoff_cap_ms};
    if (ag_uploader_open(&u->up, &u->loop, &uo, err, errlen) != 0) return -1;
    int rc = pthread_create(&u->thread, NULL, thread_main, u);
    if (rc) {
        cm_seterr(err, errlen, "forward %s: cannot start its thread: %s", c->name, strerror(rc));
        return -1;
    }
    u->thread_started = 1;
    cm_info("forward %s: to %s as agent %s (mode %s), spool %s, %llu record(s) waiting", c->name,
            u->url, c->agent_id, u->fs ? "summary" : "full", c->spool_dir,
            (unsigned long long)st.records);
    return 0;
}

/* Close what start_one opened, after its thread ended (or never started). */
static void free_one(upstream *u)
{
    if (u->loop_ready) {
        if (!u->thread_started) { /* start failed after the loop: close its handles here */
            if (u->up) ag_uploader_close(u->up);
            uv_close((uv_handle_t *)&u->wake, NULL);
            uv_close((uv_handle_t *)&u->stop_timer, NULL);
            uv_close((uv_handle_t *)&u->check, NULL);
            if (u->sum_timer_ready) uv_close((uv_handle_t *)&u->sum_timer, NULL);
            uv_run(&u->loop, UV_RUN_DEFAULT);
        }
        if (uv_loop_close(&u->loop) != 0)
            cm_warn("forward %s: event loop closed with handles open", u->conf->name);
    }
    if (u->spool) cm_spool_close(u->spool); /* syncs and saves the acknowledged position */
    co_fj_close(u->journal);
    co_fsum_close(u->fs);
    if (u->token) {
        explicit_bzero(u->token, strlen(u->token));
        free(u->token);
    }
    if (u->payload) free_payloads(u, u->f->gcap);
    free(u->payload);
    free(u->plen);
    free(u->ptype);
    free(u->ents);
    if (u->conf) {
        pthread_mutex_destroy(&u->mu);
        pthread_cond_destroy(&u->cv);
        pthread_mutex_destroy(&u->stats_mu);
    }
}

static void forward_free(co_forward *f)
{
    for (size_t i = 0; i < f->n; i++)
        free_one(&f->ups[i]);
    free(f->ups);
    seqmap_clear(&f->last);
    free(f->last_before);
    free(f->expected);
    free(f->version);
    free(f);
}

int co_forward_start(co_forward **out, const co_forward_conf *conf, co_store *store,
                     const char *version, char *err, size_t errlen)
{
    *out = NULL;
    if (!conf || conf->n == 0) return 0;
    co_forward *f = calloc(1, sizeof *f);
    if (!f || !(f->ups = calloc(conf->n, sizeof *f->ups)) ||
        !(f->version = strdup(version ? version : "unknown"))) {
        if (f) free(f->ups);
        free(f);
        cm_seterr(err, errlen, "out of memory");
        return -1;
    }
    f->store = store;
    for (size_t i = 0; i < conf->n; i++) {
        f->n = i + 1;
        char e[512];
        if (start_one(f, &f->ups[i], &conf->ups[i], e, sizeof e) != 0) {
            cm_seterr(err, errlen, "[upstream \"%s\"]: %s", conf->ups[i].name, e);
            co_forward_stop(f, 0);
            return -1;
        }
    }
    if (grow_group(f, 64) != 0) {
        cm_seterr(err, errlen, "out of memory");
        co_forward_stop(f, 0);
        return -1;
    }
    *out = f;
    return 0;
}

void co_forward_alerts(void *ud, const co_alert_change *c, const co_alert_outcome *o, size_t n)
{
    co_forward *f = ud;
    for (size_t k = 0; f && k < f->n; k++)
        if (f->ups[k].fs) co_fsum_alerts(f->ups[k].fs, c, o, n);
}

void co_forward_compliance(void *ud, const char *day, const co_compliance_row *rows, size_t n,
                           int64_t updated_ms)
{
    co_forward *f = ud;
    for (size_t k = 0; f && k < f->n; k++)
        if (f->ups[k].fs) co_fsum_compliance(f->ups[k].fs, day, rows, n, updated_ms);
}

int co_forward_summary(const co_forward *f)
{
    for (size_t k = 0; f && k < f->n; k++)
        if (f->ups[k].conf->mode == CO_FWD_SUMMARY) return 1;
    return 0;
}

size_t co_forward_count(const co_forward *f)
{
    return f ? f->n : 0;
}

int co_forward_stats_get(co_forward *f, size_t i, co_forward_stats *out)
{
    if (!f || i >= f->n) return -1;
    upstream *u = &f->ups[i];
    pthread_mutex_lock(&u->stats_mu);
    *out = u->stats;
    pthread_mutex_unlock(&u->stats_mu);
    return 0;
}

void co_forward_stop(co_forward *f, int64_t grace_ms)
{
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) {
        upstream *u = &f->ups[i];
        if (!u->thread_started) continue;
        pthread_mutex_lock(&u->mu);
        u->stop = 1;
        u->grace_ms = grace_ms;
        pthread_mutex_unlock(&u->mu);
        uv_async_send(&u->wake);
    }
    for (size_t i = 0; i < f->n; i++) {
        upstream *u = &f->ups[i];
        if (!u->thread_started) continue;
        pthread_join(u->thread, NULL);
        u->thread_started = 0;
        u->loop_ready = u->loop_ready ? 2 : 0; /* its handles are closed */
    }
    for (size_t i = 0; i < f->n; i++) {
        upstream *u = &f->ups[i];
        if (u->loop_ready == 2) {
            if (uv_loop_close(&u->loop) != 0)
                cm_warn("forward %s: event loop closed with handles open", u->conf->name);
            u->loop_ready = 0;
        }
        if (u->conf)
            cm_info("forward %s: stopped (%llu record(s) spooled this run, %llu lost)",
                    u->conf->name, (unsigned long long)u->appended, (unsigned long long)u->lost);
    }
    forward_free(f);
}

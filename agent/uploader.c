/* uploader.c — reads the spool's records oldest first, merges them into one batch per request
 * and POSTs it to the collector: libcurl multi on the libuv loop.
 *
 * The libcurl ↔ libuv glue is curl_uv.h. One easy handle, one request in flight. The request's body
 * is kept (JSON and gzip) until the collector answered it for good; 409 and 413 build a new one
 * from the spool. */
#include "uploader.h"

#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "batch.h"
#include "curl_uv.h"
#include "gzip.h"
#include "log.h"
#include "timeutil.h"
#include "wire.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_BACKOFF_BASE_MS 1000
#define DEFAULT_BACKOFF_CAP_MS 60000
#define DEFAULT_MAX_BATCH_BYTES (1u << 20)
#define MAX_RETRY_AFTER_S 3600 /* a collector asking for more is clamped to this */
#define MAX_RESPONSE 65536     /* bytes of answer kept; the rest is ignored */
#define LOG_EVERY_S 60
#define MAX_RECORD_JSON (256u << 20) /* a record inflating beyond this is corrupt */

/* IDLE: nothing in flight (the timer may wait for the oldest record to be due);
 * SENDING: a request in flight; WAITING: the timer runs the backoff before a retry. */
enum state { IDLE, SENDING, WAITING };

/* The request being sent: records first..last of the spool. */
typedef struct outgoing {
    int have;
    uint64_t first, last;
    size_t nrecs;
    int only_gaps; /* no record carried samples, devices or events: only gap reports */
    char *json;    /* the merged batch (kept for rejected/) */
    size_t json_len;
    char *data; /* gzip of json, or json itself when compression failed */
    size_t len;
    int gzipped;
} outgoing;

struct ag_uploader {
    uv_loop_t *loop;
    ag_curl_uv *cu;
    CURL *easy;
    uv_timer_t timer; /* backoff between attempts, or the oldest record coming due */
    struct curl_slist *hdr_gzip, *hdr_plain;
    char *url;
    char *auth; /* "Authorization: Bearer <token>", wiped on free */
    char *agent_id, *agent_version, *site;
    int record_sites;                /* each record carries its own site (see uploader.h) */
    char last_site[CM_MAX_NAME + 1]; /* record_sites: the site of the last request ("" none) */
    cm_spool *spool;
    int64_t timeout_ms, base_ms, cap_ms, interval_ms;
    uint64_t max_bytes;
    enum state state;
    outgoing out;
    uint64_t cursor;        /* highest seq the collector is known to hold */
    uint64_t pending_bytes; /* appended since the last batch was built */
    size_t rec_limit;       /* records per request after a 413 (0 = no limit) */
    uint64_t missing_from;  /* a 409 said the collector lacks seqs from here: declare a gap */
    int draining;           /* the last batch left records behind: send the next at once */
    int flushing;           /* shutdown: everything is due now */
    int due_armed;          /* IDLE and the timer waits for the oldest record */
    unsigned attempt;       /* consecutive failures of this request */
    uint64_t rng;
    char *resp;
    size_t resp_len;
    char curl_err[CURL_ERROR_SIZE];
    int handles_open; /* the timer and cu, until closed */
    int closing;
    ag_uploader_stats stats;
};

static void pump(ag_uploader *u);

/* ---- helpers ---------------------------------------------------------------------------- */

static uint64_t rng_next(ag_uploader *u)
{
    /* xorshift64*: jitter only, no secrecy needed */
    u->rng ^= u->rng >> 12;
    u->rng ^= u->rng << 25;
    u->rng ^= u->rng >> 27;
    return u->rng * 0x2545F4914F6CDD1DULL;
}

/* Full jitter: uniform in [0, min(cap, base * 2^attempt)]. */
static int64_t backoff_ms(ag_uploader *u)
{
    int64_t ceil = u->base_ms;
    for (unsigned i = 0; i < u->attempt && ceil < u->cap_ms; i++)
        ceil *= 2;
    if (ceil > u->cap_ms) ceil = u->cap_ms;
    return (int64_t)(rng_next(u) % ((uint64_t)ceil + 1));
}

/* Copy an untrusted string for a log line: printable ASCII only, bounded. */
static void sanitize(const char *s, char *out, size_t outlen)
{
    size_t j = 0;
    for (size_t i = 0; s && s[i] && j + 1 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[j] = '\0';
}

static void outgoing_free(outgoing *o)
{
    if (o->data != o->json) free(o->data);
    free(o->json);
    memset(o, 0, sizeof *o);
}

static void part_closed(ag_uploader *u)
{
    if (--u->handles_open == 0 && u->closing) free(u);
}

static void timer_closed(uv_handle_t *h)
{
    part_closed(h->data);
}

static void curl_closed(void *ud)
{
    part_closed(ud);
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userp)
{
    ag_uploader *u = userp;
    size_t n = size * nmemb;
    size_t room = MAX_RESPONSE - u->resp_len;
    size_t take = n < room ? n : room;
    if (take) {
        char *r = realloc(u->resp, u->resp_len + take + 1);
        if (!r) return n; /* keep what we have; the answer will look malformed */
        memcpy(r + u->resp_len, ptr, take);
        u->resp = r;
        u->resp_len += take;
        r[u->resp_len] = '\0';
    }
    return n;
}

/* ---- spool records → one batch ---------------------------------------------------------- */

/* Append everything of `in` (one decoded record) to `out`, its summary sections too (a
 * collector's summary forwarding, docs/forwarding.md). 0 or -1 (out of memory). */
static int merge_batch(cm_batch *out, const cm_batch *in)
{
    for (size_t i = 0; i < in->ndevices; i++)
        if (cm_batch_add_device(out, &in->devices[i]) != 0) return -1;
    for (size_t i = 0; i < in->nseries; i++) {
        const cm_series *se = &in->series[i];
        cm_series *s =
            cm_batch_series(out, se->device, se->metric, se->unit, se->labels, se->nlabels);
        if (!s) return -1;
        if (!se->npoints) continue;
        cm_point *p = cm_batch_extend_points(out, s, se->npoints);
        if (!p) return -1;
        memcpy(p, se->points, se->npoints * sizeof *p);
    }
    for (size_t i = 0; i < in->nevents; i++)
        if (cm_batch_add_event(out, &in->events[i]) != 0) return -1;
    for (size_t i = 0; i < in->ngaps; i++)
        if (cm_batch_add_gap(out, in->gaps[i].from_seq, in->gaps[i].to_seq, in->gaps[i].reason))
            return -1;
    return cm_batch_merge_summary(out, in);
}

/* Parse a GAP record {"from_seq": n, "to_seq": n, "reason": "..."}. 0 or -1. */
static int parse_gap(const void *data, size_t len, uint64_t *from, uint64_t *to, char *reason,
                     size_t rlen)
{
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *f = json_object_get(root, "from_seq"), *t = json_object_get(root, "to_seq");
    const char *r = json_string_value(json_object_get(root, "reason"));
    int ok = json_is_integer(f) && json_is_integer(t) && r && json_integer_value(f) > 0 &&
             json_integer_value(t) >= json_integer_value(f) && strlen(r) < rlen &&
             cm_wire_valid_name(r);
    if (ok) {
        *from = (uint64_t)json_integer_value(f);
        *to = (uint64_t)json_integer_value(t);
        snprintf(reason, rlen, "%s", r);
    }
    json_decref(root);
    return ok ? 0 : -1;
}

/* A record that cannot be sent as it is (bad JSON, unknown type): keep it in rejected/ for
 * people and tell the collector its seq is lost. The caller merges the gap. */
static void set_aside_corrupt(ag_uploader *u, const cm_spool_record *rec, const char *why)
{
    u->stats.rejected++;
    cm_log_limited("upload-corrupt", LOG_EVERY_S, CM_LOG_ERROR,
                   "upload: spool record %llu cannot be sent (%s); set aside in rejected/",
                   (unsigned long long)rec->seq, why);
    /* rec->data belongs to the spool and is valid until the next call on it: copy first */
    void *copy = malloc(rec->len ? rec->len : 1);
    char err[256];
    if (copy) {
        memcpy(copy, rec->data, rec->len);
        if (cm_spool_reject(u->spool, rec->seq, rec->seq, copy, rec->len, err, sizeof err) != 0)
            cm_log_limited("upload-reject", LOG_EVERY_S, CM_LOG_ERROR, "upload: %s", err);
        free(copy);
    }
}

/* record_sites: does a record of `site` belong in `out`? The first one with a site names the
 * request's site (*have_site set); later ones must name the same. */
static int site_fits(cm_batch *out, int *have_site, const char *site)
{
    if (*have_site)
        return (!site && !out->site) || (site && out->site && strcmp(site, out->site) == 0);
    if (cm_batch_set_agent(out, out->agent_id, out->agent_version, site) != 0) return -1;
    *have_site = 1;
    return 1;
}

/* Add one record to the batch being built. 0, 1 when it is of another site than the batch
 * (record_sites: it starts the next request; nothing added), or -1 when out of memory. */
static int add_record(ag_uploader *u, cm_batch *out, const cm_spool_record *rec, int *have_site)
{
    if (rec->type == CM_REC_GAP) {
        uint64_t from, to;
        char reason[64];
        if (parse_gap(rec->data, rec->len, &from, &to, reason, sizeof reason) == 0)
            return cm_batch_add_gap(out, from, to, reason);
        set_aside_corrupt(u, rec, "malformed gap record");
        return cm_batch_add_gap(out, rec->seq, rec->seq, "corrupt");
    }
    if (rec->type != CM_REC_BATCH && rec->type != CM_REC_BATCH_GZ) {
        set_aside_corrupt(u, rec, "unknown record type");
        return cm_batch_add_gap(out, rec->seq, rec->seq, "corrupt");
    }
    cm_batch in;
    cm_batch_init(&in);
    char err[256], at[128] = "";
    const char *json = rec->data;
    size_t json_len = rec->len;
    char *plain = NULL;
    int rc = 0, ok;
    if (rec->type == CM_REC_BATCH_GZ)
        ok = cm_gunzip(rec->data, rec->len, MAX_RECORD_JSON, &plain, &json_len, err, sizeof err) ==
             0;
    else
        ok = 1;
    if (plain) json = plain;
    if (ok && cm_wire_decode(json, json_len, NULL, &in, err, sizeof err, at, sizeof at) == 0) {
        int fits = u->record_sites ? site_fits(out, have_site, in.site) : 1;
        rc = fits < 0 ? -1 : fits == 0 ? 1 : merge_batch(out, &in);
    } else {
        char why[400];
        snprintf(why, sizeof why, "%s%s%s", err, *at ? " at " : "", at);
        set_aside_corrupt(u, rec, why);
        rc = cm_batch_add_gap(out, rec->seq, rec->seq, "corrupt");
    }
    free(plain);
    cm_batch_free(&in);
    return rc;
}

/* The JSON bytes a record holds (what max_batch_bytes counts), without inflating it. */
static size_t record_json_len(const cm_spool_record *rec)
{
    if (rec->type != CM_REC_BATCH_GZ) return rec->len;
    size_t n = cm_gzip_stated_size(rec->data, rec->len);
    return n ? n : rec->len;
}

static uint64_t read_from(ag_uploader *u)
{
    cm_spool_stats st;
    cm_spool_stats_get(u->spool, &st);
    if (st.acked_seq > u->cursor) u->cursor = st.acked_seq;
    return u->cursor + 1;
}

/* Build the next request from the spool: contiguous records after the cursor, up to
 * max_bytes of payload (at least one record) and rec_limit records. 1 = built, 0 = nothing
 * waiting, -1 = error (logged). */
static int build(ag_uploader *u)
{
    uint64_t from = read_from(u);
    cm_batch b;
    cm_batch_init(&b);
    if (cm_batch_set_agent(&b, u->agent_id, u->agent_version, u->record_sites ? NULL : u->site) !=
        0)
        goto oom;
    uint64_t first = 0, last = 0, bytes = 0;
    size_t n = 0;
    int more = 0, only_gaps = 1, have_site = 0;
    char err[256];
    for (;;) {
        cm_spool_record rec;
        int r = cm_spool_read(u->spool, from, &rec, err, sizeof err);
        if (r < 0) {
            cm_log_limited("upload-read", LOG_EVERY_S, CM_LOG_ERROR,
                           "upload: cannot read the spool: %s", err);
            if (n == 0) goto fail;
            more = 1;
            break;
        }
        if (r == 0) break;
        size_t json_len = record_json_len(&rec);
        if (n > 0 && (rec.seq != last + 1 || bytes + json_len > u->max_bytes ||
                      (u->rec_limit && n >= u->rec_limit))) {
            more = 1;
            break;
        }
        int added = add_record(u, &b, &rec, &have_site);
        if (added < 0) goto oom;
        if (added > 0) { /* record_sites: another site's record starts the next request */
            more = 1;
            break;
        }
        if (rec.type != CM_REC_GAP) only_gaps = 0;
        if (n == 0) first = rec.seq;
        last = rec.seq;
        bytes += json_len;
        n++;
        from = rec.seq + 1;
    }
    if (n == 0) {
        cm_batch_free(&b);
        u->draining = 0;
        u->rec_limit = 0;
        u->pending_bytes = 0;
        return 0;
    }
    if (u->missing_from && u->missing_from < first &&
        cm_batch_add_gap(&b, u->missing_from, first - 1, "missing") != 0)
        goto oom;
    u->missing_from = 0;
    if (u->record_sites) {
        /* gap records only: the site of the last request (the collector wants one) */
        const char *site = have_site ? b.site : u->last_site[0] ? u->last_site : u->site;
        if (!have_site && cm_batch_set_agent(&b, u->agent_id, u->agent_version, site) != 0)
            goto oom;
        snprintf(u->last_site, sizeof u->last_site, "%s", b.site ? b.site : "");
    }
    b.first_seq = first;
    b.seq = last;
    b.sent_ms = cm_now_ms();
    outgoing *o = &u->out;
    o->json = cm_wire_encode(&b, &o->json_len);
    cm_batch_free(&b);
    if (!o->json) {
        cm_log_limited("upload-oom", LOG_EVERY_S, CM_LOG_ERROR,
                       "upload: out of memory encoding records %llu..%llu",
                       (unsigned long long)first, (unsigned long long)last);
        return -1;
    }
    if (cm_gzip(o->json, o->json_len, -1, &o->data, &o->len) == 0) {
        o->gzipped = 1;
    } else {
        o->data = o->json;
        o->len = o->json_len;
        o->gzipped = 0;
    }
    o->have = 1;
    o->first = first;
    o->last = last;
    o->nrecs = n;
    o->only_gaps = only_gaps;
    u->draining = more;
    if (!more) u->rec_limit = 0;
    u->pending_bytes = 0;
    u->attempt = 0;
    return 1;
oom:
    cm_log_limited("upload-oom", LOG_EVERY_S, CM_LOG_ERROR,
                   "upload: out of memory merging spool records");
fail:
    cm_batch_free(&b);
    return -1;
}

/* ---- the upload state machine ----------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
    ag_uploader *u = t->data;
    u->due_armed = 0;
    if (u->state == WAITING) u->state = IDLE;
    pump(u);
}

/* This attempt failed: wait delay_ms, then send the same request again. */
static void retry_later(ag_uploader *u, int64_t delay_ms)
{
    u->stats.failures++;
    u->attempt++;
    u->state = WAITING;
    u->due_armed = 0;
    uv_timer_start(&u->timer, on_timer, (uint64_t)(delay_ms > 0 ? delay_ms : 0), 0);
}

/* Wait before trying again without counting a failed request (spool errors, 409 without
 * progress already counted). */
static void wait_then_pump(ag_uploader *u, int64_t delay_ms)
{
    u->state = WAITING;
    u->due_armed = 0;
    uv_timer_start(&u->timer, on_timer, (uint64_t)(delay_ms > 0 ? delay_ms : 0), 0);
}

/* Acknowledge every record up to seq in the spool (and in our cursor, should the spool's
 * cursor fail to persist: the collector would answer a resend with a duplicate ack anyway). */
static void ack_upto(ag_uploader *u, uint64_t seq)
{
    char err[256];
    if (seq > u->cursor) {
        u->stats.records_acked += seq - (u->cursor < u->out.first ? u->out.first - 1 : u->cursor);
        u->cursor = seq;
    }
    if (cm_spool_ack(u->spool, seq, err, sizeof err) != 0)
        cm_log_limited("upload-ack-persist", LOG_EVERY_S, CM_LOG_ERROR,
                       "upload: cannot persist the acknowledged position %llu: %s",
                       (unsigned long long)seq, err);
}

/* The request is answered for good: the next one is built from the spool. */
static void finish(ag_uploader *u)
{
    outgoing_free(&u->out);
    u->attempt = 0;
    u->state = IDLE;
}

/* Read an unsigned integer member of the JSON answer; 0 or -1. */
static int resp_u64(ag_uploader *u, const char *key, uint64_t *out)
{
    json_t *root = u->resp ? json_loadb(u->resp, u->resp_len, 0, NULL) : NULL;
    json_t *v = json_object_get(root, key);
    int ok = json_is_integer(v) && json_integer_value(v) >= 0;
    if (ok) *out = (uint64_t)json_integer_value(v);
    json_decref(root);
    return ok ? 0 : -1;
}

/* 400 or 413 of one record: keep the body for people, say which seqs are lost, move on. */
static void reject(ag_uploader *u, long code)
{
    outgoing *o = &u->out;
    char msg[256] = "", at[128] = "", err[256];
    json_t *root = u->resp ? json_loadb(u->resp, u->resp_len, 0, NULL) : NULL;
    if (json_is_object(root)) {
        sanitize(json_string_value(json_object_get(root, "error")), msg, sizeof msg);
        sanitize(json_string_value(json_object_get(root, "at")), at, sizeof at);
    }
    json_decref(root);
    cm_error("upload: collector rejected records %llu..%llu (HTTP %ld%s): %s%s%s; set aside in "
             "the spool's rejected/",
             (unsigned long long)o->first, (unsigned long long)o->last, code,
             code == 413 ? ", too large" : "", *msg ? msg : "no error message", *at ? " at " : "",
             at);
    u->stats.rejected++;
    if (cm_spool_reject(u->spool, o->first, o->last, o->json, o->json_len, err, sizeof err) != 0)
        cm_log_limited("upload-reject", LOG_EVERY_S, CM_LOG_ERROR, "upload: %s", err);
    if (o->only_gaps) {
        /* A gap report about refused gap reports would be refused again, forever. */
        cm_log_limited("upload-gap-refused", LOG_EVERY_S, CM_LOG_ERROR,
                       "upload: the collector refuses our gap reports; records %llu..%llu "
                       "acknowledged without telling it",
                       (unsigned long long)o->first, (unsigned long long)o->last);
    } else {
        char gap[128];
        int n =
            snprintf(gap, sizeof gap, "{\"from_seq\":%llu,\"to_seq\":%llu,\"reason\":\"rejected\"}",
                     (unsigned long long)o->first, (unsigned long long)o->last);
        uint64_t seq;
        if (cm_spool_append(u->spool, CM_REC_GAP, gap, (size_t)n, &seq, err, sizeof err) != 0)
            cm_log_limited("upload-gap", LOG_EVERY_S, CM_LOG_ERROR,
                           "upload: cannot record the gap %llu..%llu: %s",
                           (unsigned long long)o->first, (unsigned long long)o->last, err);
        else
            u->pending_bytes += (uint64_t)n;
    }
    ack_upto(u, o->last);
    finish(u);
}

/* 409 {"last_seq": L}: the collector holds everything up to L. */
static void conflict(ag_uploader *u)
{
    outgoing *o = &u->out;
    uint64_t l;
    u->stats.conflicts++;
    if (resp_u64(u, "last_seq", &l) != 0) {
        cm_log_limited("upload-409", LOG_EVERY_S, CM_LOG_WARN,
                       "upload: records %llu..%llu: collector answered 409 without "
                       "{\"last_seq\": n}; will retry",
                       (unsigned long long)o->first, (unsigned long long)o->last);
        retry_later(u, backoff_ms(u));
        return;
    }
    cm_spool_stats st;
    cm_spool_stats_get(u->spool, &st);
    uint64_t highest = st.next_seq ? st.next_seq - 1 : 0;
    if (l >= o->first) {
        /* those are stored already: acknowledge them and send the rest at once */
        cm_info("upload: collector already holds records up to %llu; resuming after it",
                (unsigned long long)l);
        ack_upto(u, l < highest ? l : highest);
        finish(u);
        return;
    }
    /* No progress: the collector lacks records we no longer have. Declare them missing in
     * the next request (a gap), and do not hammer the collector meanwhile. */
    cm_log_limited("upload-409-behind", LOG_EVERY_S, CM_LOG_ERROR,
                   "upload: collector holds records only up to %llu but %llu..%llu were "
                   "acknowledged before; declaring them missing",
                   (unsigned long long)l, (unsigned long long)(l + 1),
                   (unsigned long long)(o->first - 1));
    if (l + 1 < o->first) u->missing_from = l + 1;
    outgoing_free(&u->out);
    retry_later(u, backoff_ms(u));
}

static void on_done(ag_uploader *u, CURLcode res)
{
    outgoing *o = &u->out;
    if (res != CURLE_OK) {
        cm_log_limited("upload-net", LOG_EVERY_S, CM_LOG_WARN,
                       "upload: records %llu..%llu to %s: %s", (unsigned long long)o->first,
                       (unsigned long long)o->last, u->url,
                       u->curl_err[0] ? u->curl_err : curl_easy_strerror(res));
        retry_later(u, backoff_ms(u));
        return;
    }
    long code = 0;
    curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code == 200) {
        uint64_t ack;
        if (resp_u64(u, "ack", &ack) == 0 && ack == o->last) {
            u->stats.acked++;
            u->stats.last_ack_ms = cm_now_ms();
            ack_upto(u, o->last);
            finish(u);
        } else {
            cm_log_limited("upload-ack", LOG_EVERY_S, CM_LOG_ERROR,
                           "upload: records %llu..%llu: collector answered 200 without "
                           "{\"ack\": %llu}; will retry",
                           (unsigned long long)o->first, (unsigned long long)o->last,
                           (unsigned long long)o->last);
            retry_later(u, backoff_ms(u));
        }
        return;
    }
    if (code == 409) {
        conflict(u);
        return;
    }
    /* Too large, or refused: halve the request until the one record at fault is found, so a
     * poison record costs only itself, never the good records sent with it. */
    if ((code == 413 || (code == 400 && !o->only_gaps)) && o->nrecs > 1) {
        u->stats.splits++;
        u->rec_limit = o->nrecs / 2;
        cm_log_limited(code == 413 ? "upload-413" : "upload-400", LOG_EVERY_S, CM_LOG_WARN,
                       "upload: records %llu..%llu %s (HTTP %ld); sending at most %zu records "
                       "per request",
                       (unsigned long long)o->first, (unsigned long long)o->last,
                       code == 413 ? "too large for the collector" : "refused by the collector",
                       code, u->rec_limit);
        finish(u);
        return;
    }
    if (code == 400 || code == 413) {
        reject(u, code);
        return;
    }
    if (code == 401 || code == 403) {
        cm_log_limited("upload-auth", LOG_EVERY_S, CM_LOG_ERROR,
                       "upload: collector %s refused our credentials (HTTP %ld): check the "
                       "token file; records are kept and retried",
                       u->url, code);
        retry_later(u, u->cap_ms);
        return;
    }
    int64_t delay = backoff_ms(u);
    curl_off_t ra = -1;
    if (curl_easy_getinfo(u->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0) {
        if (ra > MAX_RETRY_AFTER_S) ra = MAX_RETRY_AFTER_S;
        if (ra * 1000 > delay) delay = (int64_t)ra * 1000;
    }
    cm_log_limited("upload-http", LOG_EVERY_S, CM_LOG_WARN,
                   "upload: records %llu..%llu: collector answered HTTP %ld; retrying in %lld ms",
                   (unsigned long long)o->first, (unsigned long long)o->last, code,
                   (long long)delay);
    retry_later(u, delay);
}

/* curl_uv: a transfer ended. */
static void transfer_done(void *ud, CURL *easy, CURLcode res)
{
    ag_uploader *u = ud;
    if (easy != u->easy || u->state != SENDING || !u->out.have) return;
    u->state = IDLE;
    on_done(u, res);
    pump(u);
}

static void send_out(ag_uploader *u)
{
    outgoing *o = &u->out;
    free(u->resp);
    u->resp = NULL;
    u->resp_len = 0;
    u->curl_err[0] = '\0';
    curl_easy_setopt(u->easy, CURLOPT_HTTPHEADER, o->gzipped ? u->hdr_gzip : u->hdr_plain);
    curl_easy_setopt(u->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->len);
    curl_easy_setopt(u->easy, CURLOPT_POSTFIELDS, o->data);
    CURLMcode mc = ag_curl_uv_add(u->cu, u->easy);
    u->stats.attempts++;
    if (mc != CURLM_OK) {
        cm_log_limited("upload-multi", LOG_EVERY_S, CM_LOG_ERROR, "upload: cannot start: %s",
                       curl_multi_strerror(mc));
        retry_later(u, backoff_ms(u));
        return;
    }
    u->state = SENDING;
}

/* Is the oldest unsent record due? If not, arm the timer for when it is. */
static int due(ag_uploader *u)
{
    if (u->draining || u->flushing || u->pending_bytes >= u->max_bytes) return 1;
    cm_spool_record rec;
    char err[256];
    int r = cm_spool_read(u->spool, read_from(u), &rec, err, sizeof err);
    if (r < 0) {
        cm_log_limited("upload-read", LOG_EVERY_S, CM_LOG_ERROR,
                       "upload: cannot read the spool: %s", err);
        wait_then_pump(u, u->base_ms);
        return 0;
    }
    if (r == 0) {
        u->pending_bytes = 0;
        u->rec_limit = 0;
        return 0; /* nothing waiting: ag_uploader_notify wakes us */
    }
    int64_t age = rec.appended_ms ? cm_now_ms() - rec.appended_ms : INT64_MAX;
    if (age >= u->interval_ms) return 1;
    int64_t wait = u->interval_ms - (age > 0 ? age : 0);
    u->due_armed = 1;
    uv_timer_start(&u->timer, on_timer, (uint64_t)(wait > 0 ? wait : 1), 0);
    return 0;
}

/* Send what is due: the kept request, or a new one built from the spool. */
/* True when the spool dropped (spool full, disk error) some of the records of the request
 * kept for a retry: those are reported lost by a gap record, so they must not be sent too. */
static int out_outdated(ag_uploader *u)
{
    cm_spool_stats st;
    cm_spool_stats_get(u->spool, &st);
    return st.first_seq == 0 || st.first_seq > u->out.first;
}

static void pump(ag_uploader *u)
{
    if (u->closing || u->state != IDLE) return;
    if (u->out.have && out_outdated(u)) {
        cm_log_limited("upload-dropped", LOG_EVERY_S, CM_LOG_WARN,
                       "upload: records %llu..%llu were dropped from the full spool before the "
                       "collector took them; rebuilding the request",
                       (unsigned long long)u->out.first, (unsigned long long)u->out.last);
        outgoing_free(&u->out);
        int r = build(u);
        if (r < 0) wait_then_pump(u, u->base_ms);
        if (r <= 0) return;
    }
    if (!u->out.have) {
        if (!due(u)) return;
        if (u->due_armed) {
            uv_timer_stop(&u->timer);
            u->due_armed = 0;
        }
        int r = build(u);
        if (r < 0) {
            wait_then_pump(u, u->base_ms);
            return;
        }
        if (r == 0) return;
    }
    send_out(u);
}

/* ---- public interface ------------------------------------------------------------------- */

static int setup_easy(ag_uploader *u)
{
    CURL *e = u->easy;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, u->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)u->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, u) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, u->curl_err) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "cinemon-agent") != CURLE_OK;
    return bad ? -1 : 0;
}

static void free_strings(ag_uploader *u)
{
    curl_slist_free_all(u->hdr_gzip);
    curl_slist_free_all(u->hdr_plain);
    u->hdr_gzip = u->hdr_plain = NULL;
    if (u->auth) explicit_bzero(u->auth, strlen(u->auth));
    free(u->auth);
    free(u->url);
    free(u->resp);
    free(u->agent_id);
    free(u->agent_version);
    free(u->site);
    u->auth = u->url = u->resp = u->agent_id = u->agent_version = u->site = NULL;
}

int ag_uploader_open(ag_uploader **out, uv_loop_t *loop, const ag_uploader_opts *opts, char *err,
                     size_t errlen)
{
    *out = NULL;
    if (!opts->url || !*opts->url || !opts->token || !opts->spool || !opts->agent_id ||
        (!opts->site && !opts->record_sites)) {
        snprintf(err, errlen, "uploader: url, token, spool, agent id and site are required");
        return -1;
    }
    if (strpbrk(opts->token, "\r\n")) {
        snprintf(err, errlen, "uploader: the token contains a line break");
        return -1;
    }
    ag_uploader *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    u->loop = loop;
    u->spool = opts->spool;
    u->interval_ms = opts->interval_ms > 0 ? opts->interval_ms : 0;
    u->max_bytes = opts->max_batch_bytes ? opts->max_batch_bytes : DEFAULT_MAX_BATCH_BYTES;
    u->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    u->base_ms = opts->backoff_base_ms > 0 ? opts->backoff_base_ms : DEFAULT_BACKOFF_BASE_MS;
    u->cap_ms = opts->backoff_cap_ms > 0 ? opts->backoff_cap_ms : DEFAULT_BACKOFF_CAP_MS;
    if (u->cap_ms < u->base_ms) u->cap_ms = u->base_ms;
    if (getrandom(&u->rng, sizeof u->rng, GRND_NONBLOCK) != (ssize_t)sizeof u->rng)
        u->rng = (uint64_t)cm_mono_ms() ^ ((uint64_t)getpid() << 32);
    if (!u->rng) u->rng = 0x9E3779B97F4A7C15ULL;

    u->url = strdup(opts->url);
    u->agent_id = strdup(opts->agent_id);
    u->agent_version = strdup(opts->agent_version ? opts->agent_version : "unknown");
    u->record_sites = opts->record_sites != 0;
    u->site = opts->site ? strdup(opts->site) : NULL;
    size_t alen = strlen(opts->token) + sizeof "Authorization: Bearer ";
    u->auth = malloc(alen);
    if (!u->url || !u->auth || !u->agent_id || !u->agent_version || (opts->site && !u->site))
        goto oom;
    snprintf(u->auth, alen, "Authorization: Bearer %s", opts->token);
    const char *common[] = {"Content-Type: application/json", "Expect:", u->auth};
    for (size_t i = 0; i < sizeof common / sizeof *common; i++) {
        struct curl_slist *a = curl_slist_append(u->hdr_plain, common[i]);
        if (!a) goto oom;
        u->hdr_plain = a;
        a = curl_slist_append(u->hdr_gzip, common[i]);
        if (!a) goto oom;
        u->hdr_gzip = a;
    }
    struct curl_slist *a = curl_slist_append(u->hdr_gzip, "Content-Encoding: gzip");
    if (!a) goto oom;
    u->hdr_gzip = a;

    u->easy = curl_easy_init();
    if (!u->easy) goto oom;
    if (setup_easy(u) != 0) {
        snprintf(err, errlen, "uploader: libcurl refused an option (url %s)", u->url);
        goto fail;
    }
    /* last: on failure nothing of ours is on the loop */
    u->cu = ag_curl_uv_new(loop, transfer_done, u);
    if (!u->cu) goto oom;

    /* uv_timer_init cannot fail on Linux */
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    u->handles_open = 2;
    /* Look at the spool on the next iteration: a backlog from an earlier run goes at once. */
    u->due_armed = 1;
    uv_timer_start(&u->timer, on_timer, 0, 0);
    *out = u;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    if (u->easy) curl_easy_cleanup(u->easy);
    free_strings(u);
    free(u);
    return -1;
}

void ag_uploader_notify(ag_uploader *u, size_t len)
{
    if (u->closing) return;
    u->pending_bytes += len;
    /* The timer already waits for the oldest record: only a full batch wakes us early. */
    if (u->due_armed && u->pending_bytes < u->max_bytes && !u->flushing) return;
    pump(u);
}

void ag_uploader_flush(ag_uploader *u)
{
    if (u->closing) return;
    u->flushing = 1;
    pump(u);
}

int ag_uploader_busy(const ag_uploader *u)
{
    return u->state != IDLE || u->out.have;
}

void ag_uploader_stats_get(const ag_uploader *u, ag_uploader_stats *out)
{
    *out = u->stats;
}

void ag_uploader_close(ag_uploader *u)
{
    if (!u || u->closing) return;
    u->closing = 1;
    if (u->state == SENDING) ag_curl_uv_remove(u->cu, u->easy);
    curl_easy_cleanup(u->easy);
    u->easy = NULL;
    outgoing_free(&u->out);
    free_strings(u);
    ag_curl_uv_close(u->cu, curl_closed);
    u->cu = NULL;
    uv_close((uv_handle_t *)&u->timer, timer_closed);
}

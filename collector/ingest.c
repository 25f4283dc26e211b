/* ingest.c — token check (with a small TTL cache in front of the store), strict decode in a
 * per-request arena, site authorisation, group commit through the writer. */
#include "ingest.h"

#include "apierror.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "log.h"
#include "timeutil.h"
#include "token.h"

#define CACHE_SLOTS 1024 /* direct-mapped by the token hash: SHA-256 spreads evenly */

typedef struct cache_slot {
    char hash[CO_HASH_HEX_LEN + 1]; /* "" = empty */
    int found;                      /* 1 known token, 0 unknown (negative entries too) */
    int64_t expires_ms;             /* monotonic */
    co_principal who;
} cache_slot;

struct co_ingest {
    co_store *store;
    co_writer *writer;
    co_metrics *metrics;
    cm_wire_limits limits;
    long ttl_ms;
    pthread_mutex_t lock;
    cache_slot cache[CACHE_SLOTS];
};

co_ingest *co_ingest_new(co_store *s, co_writer *w, co_metrics *m, const cm_wire_limits *limits,
                         long token_ttl_ms)
{
    co_ingest *ing = calloc(1, sizeof *ing);
    if (!ing) return NULL;
    ing->store = s;
    ing->writer = w;
    ing->metrics = m;
    if (limits)
        ing->limits = *limits;
    else
        ing->limits = (cm_wire_limits){.max_depth = 8, .max_series = 100000, .max_points = 1000000};
    ing->ttl_ms = token_ttl_ms > 0 ? token_ttl_ms : 10000;
    pthread_mutex_init(&ing->lock, NULL);
    return ing;
}

void co_ingest_free(co_ingest *ing)
{
    if (!ing) return;
    pthread_mutex_destroy(&ing->lock);
    free(ing);
}

static size_t slot_of(const char *hash)
{
    unsigned v = 0;
    for (int i = 0; i < 8; i++)
        v = v * 16 + (unsigned)(hash[i] <= '9' ? hash[i] - '0' : hash[i] - 'a' + 10);
    return v % CACHE_SLOTS;
}

/* 1 known, 0 unknown, -1 store error (err filled). */
static int lookup(co_ingest *ing, const char *hash, co_principal *who, char *err, size_t errlen)
{
    cache_slot *sl = &ing->cache[slot_of(hash)];
    int64_t now = cm_mono_ms();
    int found = -2;
    pthread_mutex_lock(&ing->lock);
    if (sl->hash[0] && now < sl->expires_ms && co_token_equal(sl->hash, hash, CO_HASH_HEX_LEN)) {
        found = sl->found;
        *who = sl->who;
    }
    pthread_mutex_unlock(&ing->lock);
    if (found != -2) return found;

    co_principal p = {0};
    found = co_store_token_lookup(ing->store, hash, p.agent_id, sizeof p.agent_id, p.site,
                                  sizeof p.site, err, errlen);
    if (found < 0) return -1;
    pthread_mutex_lock(&ing->lock);
    memcpy(sl->hash, hash, CO_HASH_HEX_LEN + 1);
    sl->found = found;
    sl->who = p;
    /* Unknown tokens are remembered briefly only: a token added meanwhile works soon. */
    sl->expires_ms = now + (found ? ing->ttl_ms : (ing->ttl_ms < 2000 ? ing->ttl_ms : 2000));
    pthread_mutex_unlock(&ing->lock);
    *who = p;
    return found;
}

unsigned co_ingest_auth(co_ingest *ing, const char *authz, co_principal *who, json_t **body)
{
    const char *tok;
    size_t len;
    if (co_token_from_header(authz, &tok, &len) != 0) {
        co_metrics_ingest(ing->metrics, CO_INGEST_UNAUTHORIZED, 0);
        *body = co_api_error("Authorization", "missing or malformed Authorization header");
        return 401;
    }
    char hash[CO_HASH_HEX_LEN + 1];
    if (co_token_hash(tok, len, hash) != 0) {
        *body = co_api_error("", "cannot hash the token");
        co_metrics_ingest(ing->metrics, CO_INGEST_FAILED, 0);
        return 503;
    }
    char err[256];
    int r = lookup(ing, hash, who, err, sizeof err);
    if (r < 0) {
        cm_log_limited("ingest-token-store", 10, CM_LOG_ERROR, "ingest: token lookup: %s", err);
        co_metrics_ingest(ing->metrics, CO_INGEST_FAILED, 0);
        *body = co_api_error("", "store unavailable, retry later");
        return 503;
    }
    if (r == 0) {
        co_metrics_ingest(ing->metrics, CO_INGEST_UNAUTHORIZED, 0);
        *body = co_api_error("Authorization", "unknown token");
        return 401;
    }
    return 0;
}

int co_ingest_forward_scope(const char *token_site, co_scope *sc)
{
    char e[64];
    if (strcmp(token_site, "*") == 0) {
        *sc = co_scope_all;
        return 1;
    }
    if (!strncmp(token_site, "province:", 9))
        return co_scope_set(sc, CO_SCOPE_PROVINCE, token_site + 9, e, sizeof e) == 0;
    if (!strncmp(token_site, "chain:", 6))
        return co_scope_set(sc, CO_SCOPE_CHAIN, token_site + 6, e, sizeof e) == 0;
    return 0;
}

/* May who's batch carry site? 1 yes, 0 no, -1 the store failed (err). */
static int site_allowed(co_ingest *ing, const co_principal *who, const char *site, char *err,
                        size_t errlen)
{
    co_scope sc;
    if (!co_ingest_forward_scope(who->site, &sc)) return strcmp(site, who->site) == 0;
    if (strcmp(site, who->site) == 0) return 0; /* "*" or "province:P" is no site code */
    if (co_scope_is_all(&sc)) return 1;
    return co_store_site_in_scope(ing->store, site, &sc, err, errlen);
}

/* A summary batch (wire version 2, docs/forwarding.md "mode = summary"): its sections are
 * upserted before the writer stores its seqs (the store's upserts are idempotent, so a crash
 * in between only means they are upserted again when the batch is retried), unless its seqs
 * are stored already (a duplicate or an overlap: the writer answers it). Its devices are an
 * inventory, not a sign of life: taken out of what the writer stores. 0, or the status to
 * answer with (*body set). */
static unsigned summary_first(co_ingest *ing, cm_batch *b, json_t **body)
{
    char err[512];
    uint64_t last = 0;
    if (co_store_last_seq(ing->store, b->agent_id, &last, err, sizeof err) < 0) {
        cm_log_limited("ingest-last-seq", 10, CM_LOG_ERROR, "ingest: last_seq of agent %s: %s",
                       b->agent_id, err);
        co_metrics_ingest(ing->metrics, CO_INGEST_FAILED, 0);
        *body = co_api_error("", "store unavailable, retry later");
        return 503;
    }
    uint64_t first = b->first_seq ? b->first_seq : b->seq;
    if (first > last && co_store_summary_put(ing->store, b, cm_now_ms(), err, sizeof err) < 0) {
        cm_log_limited("ingest-summary", 10, CM_LOG_ERROR,
                       "ingest: summary batch %llu of agent %s (site %s): %s",
                       (unsigned long long)b->seq, b->agent_id, b->site, err);
        co_metrics_ingest(ing->metrics, CO_INGEST_FAILED, 0);
        *body = co_api_error("", "store unavailable, retry later");
        return 503;
    }
    b->ndevices = 0;
    return 0;
}

unsigned co_ingest_batch(co_ingest *ing, const co_principal *who, const char *buf, size_t len,
                         json_t **body)
{
    cm_batch b;
    cm_batch_init(&b);
    char err[512], at[256];
    err[0] = at[0] = '\0';
    unsigned status;
    if (cm_wire_decode(buf, len, &ing->limits, &b, err, sizeof err, at, sizeof at) != 0) {
        co_metrics_ingest(ing->metrics, CO_INGEST_REJECTED, 0);
        *body = co_api_error(at, "%s", err[0] ? err : "invalid batch");
        status = 400;
        goto out;
    }
    if (!b.agent_id || strcmp(b.agent_id, who->agent_id) != 0) {
        co_metrics_ingest(ing->metrics, CO_INGEST_REJECTED, 0);
        *body = co_api_error("agent.id", "token of agent %s may not write as agent %s",
                             who->agent_id, b.agent_id ? b.agent_id : "(none)");
        status = 403;
        goto out;
    }
    co_scope fsc;
    int allowed;
    if (!b.site && co_ingest_forward_scope(who->site, &fsc)) {
        co_metrics_ingest(ing->metrics, CO_INGEST_REJECTED, 0);
        *body = co_api_error("agent.site", "a forwarding token's batches must name their site");
        status = 400;
        goto out;
    } else if (!b.site) {
        b.site = cm_arena_strdup(&b.arena, who->site);
        if (!b.site) {
            *body = co_api_error("", "out of memory");
            co_metrics_ingest(ing->metrics, CO_INGEST_FAILED, 0);
            status = 503;
            goto out;
        }
    } else if ((allowed = site_allowed(ing, who, b.site, err, sizeof err)) < 0) {
        cm_log_limited("ingest-scope-store", 10, CM_LOG_ERROR, "ingest: scope of agent %s: %s",
                       who->agent_id, err);
        co_metrics_ingest(ing->metrics, CO_INGEST_FAILED, 0);
        *body = co_api_error("", "store unavailable, retry later");
        status = 503;
        goto out;
    } else if (!allowed) {
        co_metrics_ingest(ing->metrics, CO_INGEST_REJECTED, 0);
        *body = co_api_error("agent.site", "token of agent %s may not write site %s", who->agent_id,
                             b.site);
        status = 403;
        goto out;
    }

    if (b.v == CM_WIRE_VERSION_SUMMARY && (status = summary_first(ing, &b, body)) != 0) goto out;
    co_batch_result result;
    if (co_writer_submit(ing->writer, &b, &result, err, sizeof err) != 0) {
        cm_log_limited("ingest-commit", 10, CM_LOG_ERROR,
                       "ingest: commit of batch %llu of agent %s failed: %s",
                       (unsigned long long)b.seq, b.agent_id, err);
        co_metrics_ingest(ing->metrics, CO_INGEST_FAILED, 0);
        *body = co_api_error("", "store unavailable, retry later");
        status = 503;
        goto out;
    }
    if (result == CO_BATCH_OVERLAP) {
        /* Tell the agent where we are: it moves its cursor to L and re-batches from L + 1.
         * L is read after the commit, so it is at least the value that caused the overlap. */
        uint64_t last = 0;
        if (co_store_last_seq(ing->store, b.agent_id, &last, err, sizeof err) < 0) {
            cm_log_limited("ingest-last-seq", 10, CM_LOG_ERROR, "ingest: last_seq of agent %s: %s",
                           b.agent_id, err);
            co_metrics_ingest(ing->metrics, CO_INGEST_FAILED, 0);
            *body = co_api_error("", "store unavailable, retry later");
            status = 503;
            goto out;
        }
        co_metrics_ingest(ing->metrics, CO_INGEST_OVERLAP, 0);
        cm_debug("ingest: batch %llu..%llu of agent %s overlaps last_seq %llu",
                 (unsigned long long)b.first_seq, (unsigned long long)b.seq, b.agent_id,
                 (unsigned long long)last);
        *body = json_pack("{s:s, s:s, s:I}", "error", "batch overlaps records already stored", "at",
                          "first_seq", "last_seq", (json_int_t)last);
        status = 409;
        goto out;
    }
    if (result == CO_BATCH_DUPLICATE) {
        co_metrics_ingest(ing->metrics, CO_INGEST_DUPLICATE, 0);
        cm_debug("ingest: batch %llu of agent %s already stored", (unsigned long long)b.seq,
                 b.agent_id);
    } else {
        co_metrics_ingest(ing->metrics, CO_INGEST_STORED, cm_batch_points(&b));
    }
    if (result == CO_BATCH_DUPLICATE)
        *body = json_pack("{s:I, s:b}", "ack", (json_int_t)b.seq, "duplicate", 1);
    else
        *body = json_pack("{s:I}", "ack", (json_int_t)b.seq);
    status = 200;
out:
    cm_batch_free(&b);
    return status;
}

/* ingest.h — POST /api/v1/ingest: authenticate the agent's token, decode and validate the
 * batch, check the agent may write its site, hand it to the writer. HTTP-agnostic: each step
 * returns the status code and the JSON body to answer with. */
#ifndef CO_INGEST_H
#define CO_INGEST_H

#include <jansson.h>
#include <stddef.h>

#include "batch.h"
#include "metrics.h"
#include "scope.h"
#include "store.h"
#include "wire.h"
#include "writer.h"

typedef struct co_ingest co_ingest;

/* Who a valid token belongs to. */
typedef struct co_principal {
    char agent_id[CM_MAX_NAME + 1];
    char site[CM_MAX_NAME + 1]; /* a site code, or a forwarding token's scope (below) */
} co_principal;

/* The site of a forwarding token (a collector forwarding upstream, docs/forwarding.md) says
 * which sites its batches may carry: "*" every site, "province:P" or "chain:C" the stored
 * sites of that province or chain (sites.province / sites.chain). 1 (and *sc) for such a
 * value, 0 for an ordinary agent's site code (which holds neither '*' nor ':'). */
int co_ingest_forward_scope(const char *token_site, co_scope *sc);

/* New ingest on store s (token lookups) and writer w; neither owned. Token lookups are cached
 * in memory for token_ttl_ms (0 = 10 s). limits are copied. NULL on OOM. */
co_ingest *co_ingest_new(co_store *s, co_writer *w, co_metrics *m, const cm_wire_limits *limits,
                         long token_ttl_ms);
void co_ingest_free(co_ingest *ing);

/* Check an Authorization header value (NULL when absent). Returns 0 with *who filled, or the
 * status to answer (401, or 503 when the store failed) with *body set (caller decrefs).
 * Counts unauthorized attempts. Thread-safe. */
unsigned co_ingest_auth(co_ingest *ing, const char *authz, co_principal *who, json_t **body);
/* Decode, validate and commit the (inflated) body for who: an agent's token writes its own
 * site (agent.site absent = that site), a forwarding token any site of its scope (agent.site
 * required). Returns the status (200, 400, 403, 409, 503) and sets *body: {"ack": seq},
 * {"ack": seq, "duplicate": true} for a batch stored before, {"error", "at": "first_seq",
 * "last_seq": L} (409) for a batch that overlaps what is stored, or {"error": ..., "at": ...}
 * (caller decrefs). Blocks until the writer committed the batch. A summary batch (wire version
 * 2: roll-ups, alerts, compliance of a tier below) has its sections upserted first
 * (co_store_summary_put; its devices are an inventory, not seen), then its seqs stored by the
 * writer as any batch's. Thread-safe. */
unsigned co_ingest_batch(co_ingest *ing, const co_principal *who, const char *buf, size_t len,
                         json_t **body);

#endif

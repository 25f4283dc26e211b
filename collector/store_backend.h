/* store_backend.h — how a storage backend plugs in behind store.h: a table of its functions,
 * reached through the first member of its store. For the backends' files only. */
#ifndef CO_STORE_BACKEND_H
#define CO_STORE_BACKEND_H

#include "store.h"

/* One entry per function of store.h (co_store_<name>), with the same arguments and meaning. */
typedef struct co_store_ops {
    const char *name; /* "sqlite", "postgresql" */
    void (*close)(co_store *s);
    int (*write)(co_store *s, cm_batch *const *batches, size_t n, co_batch_result *result,
                 char *err, size_t errlen);
    int (*last_seq)(co_store *s, const char *agent, uint64_t *last_seq, char *err, size_t errlen);
    int (*token_add)(co_store *s, const char *hash_hex, const char *agent_id, const char *site,
                     char *err, size_t errlen);
    int (*token_lookup)(co_store *s, const char *hash_hex, char *agent_id, size_t agent_len,
                        char *site, size_t site_len, char *err, size_t errlen);
    json_t *(*sites)(co_store *s, const co_scope *sc, char *err, size_t errlen);
    json_t *(*devices)(co_store *s, const char *site /* NULL = all */, const co_scope *sc,
                       char *err, size_t errlen);
    json_t *(*latest)(co_store *s, const char *site, const char *device, const char *metric,
                      const co_scope *sc, char *err, size_t errlen);
    json_t *(*series)(co_store *s, const char *site, const char *device, const char *metric,
                      const co_range *r, const co_scope *sc, char *err, size_t errlen);
    json_t *(*agents)(co_store *s, const co_scope *sc, char *err, size_t errlen);
    json_t *(*gaps)(co_store *s, const char *agent, const co_scope *sc, char *err, size_t errlen);
    json_t *(*events)(co_store *s, const char *site, const char *device, const char *min_severity,
                      const co_range *r, const co_scope *sc, char *err, size_t errlen);
    int (*site_in_scope)(co_store *s, const char *site, const co_scope *sc, char *err,
                         size_t errlen);
    int (*import)(co_store *s, const co_site *sites, size_t nsites, const co_screen *screens,
                  size_t nscreens, const char *by, char *err, size_t errlen);
    json_t *(*screens)(co_store *s, const char *site, const char *screen, const co_scope *sc,
                       char *err, size_t errlen);
    int (*operator_add)(co_store *s, const char *hash_hex, const char *name, const char *site,
                        char *err, size_t errlen);
    int (*operator_lookup)(co_store *s, const char *hash_hex, char *name, size_t name_len,
                           char *site, size_t site_len, char *err, size_t errlen);
    int (*alerts_apply)(co_store *s, const co_alert_change *c, size_t n, int64_t now_ms,
                        co_alert_outcome *out, char *err, size_t errlen);
    json_t *(*alerts)(co_store *s, const co_alert_filter *f, const co_scope *sc, char *err,
                      size_t errlen);
    json_t *(*alert)(co_store *s, int64_t id, const co_scope *sc, char *err, size_t errlen);
    int (*alert_ack)(co_store *s, int64_t id, const char *by, const char *comment,
                     const co_scope *sc, int64_t now_ms, char *err, size_t errlen);
    int (*silence_add)(co_store *s, const co_silence *sl, int64_t *id, char *err, size_t errlen);
    json_t *(*silences)(co_store *s, const char *site, int64_t now_ms, const co_scope *sc,
                        char *err, size_t errlen);
    int (*alerts_active)(co_store *s, int (*fn)(void *ud, const co_alert_row *a), void *ud,
                         char *err, size_t errlen);
    int (*notification_add)(co_store *s, const char *id, int64_t alert_id, const char *kind,
                            const char *site, const char *payload, const char *const *targets,
                            size_t ntargets, int64_t now_ms, char *err, size_t errlen);
    int (*delivery_update)(co_store *s, const char *id, const char *target, unsigned attempts,
                           long http_status, const char *error, const char *state, int64_t now_ms,
                           char *err, size_t errlen);
    json_t *(*notifications)(co_store *s, const char *site, int64_t alert_id, size_t limit,
                             const co_scope *sc, char *err, size_t errlen);
    int (*deliveries_pending)(co_store *s, int64_t since_ms,
                              int (*fn)(void *ud, const char *id, const char *target,
                                        const char *payload, unsigned attempts, int64_t created_ms),
                              void *ud, char *err, size_t errlen);
    int (*day_series)(co_store *s, int64_t day, const char *const *metrics, size_t nmetrics,
                      int (*fn)(void *ud, const co_day_series *se), void *ud, char *err,
                      size_t errlen);
    int (*compliance_put)(co_store *s, const char *day, const co_compliance_row *rows, size_t n,
                          int64_t now_ms, char *err, size_t errlen);
    int (*compliance_rows)(co_store *s, const char *day, const char *site, const char *province,
                           const char *city, const co_scope *sc,
                           int (*fn)(void *ud, const co_compliance_row *r, const char *province,
                                     const char *city),
                           void *ud, int64_t *updated_ms, char *err, size_t errlen);
    int (*ping)(co_store *s, char *err, size_t errlen);
    int (*counts)(co_store *s, int64_t *samples, int64_t *series, int64_t *devices, char *err,
                  size_t errlen);
    int (*viewer_add)(co_store *s, const co_viewer_row *v, const char *pwhash, int64_t now_ms,
                      char *err, size_t errlen);
    int (*viewer_get)(co_store *s, const char *name, co_viewer_row *v, char *pwhash, size_t pwlen,
                      char *err, size_t errlen);
    int (*viewers)(co_store *s, int (*fn)(void *ud, const co_viewer_row *v), void *ud, char *err,
                   size_t errlen);
    int (*viewer_passwd)(co_store *s, const char *name, const char *pwhash, int64_t now_ms,
                         char *err, size_t errlen);
    int (*viewer_remove)(co_store *s, const char *name, char *err, size_t errlen);
    int (*session_add)(co_store *s, const char *hash_hex, const char *viewer, int64_t now_ms,
                       int64_t expires_ms, char *err, size_t errlen);
    int (*session_lookup)(co_store *s, const char *hash_hex, int64_t now_ms, co_viewer_row *v,
                          int64_t *expires_ms, int64_t *last_seen_ms, char *err, size_t errlen);
    int (*session_touch)(co_store *s, const char *hash_hex, int64_t now_ms, int64_t expires_ms,
                         char *err, size_t errlen);
    int (*session_remove)(co_store *s, const char *hash_hex, char *err, size_t errlen);
    int (*sessions_expire)(co_store *s, int64_t now_ms, int64_t *removed, char *err, size_t errlen);
    int (*retention)(co_store *s, const co_retention_cut *cut, co_retention_stats *out, char *err,
                     size_t errlen);
    json_t *(*dash_overview)(co_store *s, const co_scope *sc, co_dash_level level,
                             const char *province, const char *city, const char *day,
                             int64_t seen_since_ms, char *err, size_t errlen);
    json_t *(*dash_cinema)(co_store *s, const co_scope *sc, const char *site,
                           const char *const *metrics, size_t nmetrics, char *err, size_t errlen);
    json_t *(*dash_hall)(co_store *s, const co_scope *sc, const char *site, const char *screen,
                         char *err, size_t errlen);
    /* NULL in a backend that writes every sample through (no head) */
    int (*set_head)(co_store *s, size_t max_points, int64_t max_age_ms);
    int (*flush)(co_store *s, char *err, size_t errlen);
    int (*maintain)(co_store *s, int64_t now_ms, char *err, size_t errlen);
    co_head *(*head)(co_store *s);
    /* NULL in a backend without checkpoints of its own */
    int (*wal_stats)(co_store *s, co_walckpt_stats *out);
    /* summaries of tiered forwarding (store_summary.c, store_pg_summary.c) */
    int (*hour_rollups)(co_store *s, int64_t hour_ms, const char *site,
                        int (*fn)(void *ud, const co_hour_rollup *r), void *ud, char *err,
                        size_t errlen);
    int (*summary_put)(co_store *s, const cm_batch *b, int64_t now_ms, char *err, size_t errlen);
    int (*compliance_received)(co_store *s, const char *day,
                               int (*fn)(void *ud, const co_compliance_row *r), void *ud, char *err,
                               size_t errlen);
} co_store_ops;

/* The first member of every backend's struct co_store. */
typedef struct co_store_head {
    const co_store_ops *ops;
} co_store_head;

#endif

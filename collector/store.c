/* store.c — the store interface (store.h) dispatched to the backend that opened the store. */
#include <stddef.h>

#include "store.h"
#include "store_backend.h"

static const co_store_ops *ops(const co_store *s)
{
    return ((const co_store_head *)(const void *)s)->ops;
}

const char *co_store_backend(const co_store *s)
{
    return ops(s)->name;
}

void co_store_close(co_store *s)
{
    if (s) ops(s)->close(s);
}

int co_store_write(co_store *s, cm_batch *const *batches, size_t n, co_batch_result *result,
                   char *err, size_t errlen)
{
    return ops(s)->write(s, batches, n, result, err, errlen);
}

int co_store_last_seq(co_store *s, const char *agent, uint64_t *last_seq, char *err, size_t errlen)
{
    return ops(s)->last_seq(s, agent, last_seq, err, errlen);
}

int co_store_token_add(co_store *s, const char *hash_hex, const char *agent_id, const char *site,
                       char *err, size_t errlen)
{
    return ops(s)->token_add(s, hash_hex, agent_id, site, err, errlen);
}

int co_store_token_lookup(co_store *s, const char *hash_hex, char *agent_id, size_t agent_len,
                          char *site, size_t site_len, char *err, size_t errlen)
{
    return ops(s)->token_lookup(s, hash_hex, agent_id, agent_len, site, site_len, err, errlen);
}

json_t *co_store_sites(co_store *s, const co_scope *sc, char *err, size_t errlen)
{
    return ops(s)->sites(s, sc, err, errlen);
}

json_t *co_store_devices(co_store *s, const char *site /* NULL = all */, const co_scope *sc,
                         char *err, size_t errlen)
{
    return ops(s)->devices(s, site, sc, err, errlen);
}

json_t *co_store_latest(co_store *s, const char *site, const char *device, const char *metric,
                        const co_scope *sc, char *err, size_t errlen)
{
    return ops(s)->latest(s, site, device, metric, sc, err, errlen);
}

json_t *co_store_series(co_store *s, const char *site, const char *device, const char *metric,
                        const co_range *r, const co_scope *sc, char *err, size_t errlen)
{
    return ops(s)->series(s, site, device, metric, r, sc, err, errlen);
}

json_t *co_store_agents(co_store *s, const co_scope *sc, char *err, size_t errlen)
{
    return ops(s)->agents(s, sc, err, errlen);
}

json_t *co_store_gaps(co_store *s, const char *agent, const co_scope *sc, char *err, size_t errlen)
{
    return ops(s)->gaps(s, agent, sc, err, errlen);
}

json_t *co_store_events(co_store *s, const char *site, const char *device, const char *min_severity,
                        const co_range *r, const co_scope *sc, char *err, size_t errlen)
{
    return ops(s)->events(s, site, device, min_severity, r, sc, err, errlen);
}

int co_store_site_in_scope(co_store *s, const char *site, const co_scope *sc, char *err,
                           size_t errlen)
{
    return ops(s)->site_in_scope(s, site, sc, err, errlen);
}

int co_store_import(co_store *s, const co_site *sites, size_t nsites, const co_screen *screens,
                    size_t nscreens, const char *by, char *err, size_t errlen)
{
    return ops(s)->import(s, sites, nsites, screens, nscreens, by, err, errlen);
}

json_t *co_store_screens(co_store *s, const char *site, const char *screen, const co_scope *sc,
                         char *err, size_t errlen)
{
    return ops(s)->screens(s, site, screen, sc, err, errlen);
}

int co_store_operator_add(co_store *s, const char *hash_hex, const char *name, const char *site,
                          char *err, size_t errlen)
{
    return ops(s)->operator_add(s, hash_hex, name, site, err, errlen);
}

int co_store_operator_lookup(co_store *s, const char *hash_hex, char *name, size_t name_len,
                             char *site, size_t site_len, char *err, size_t errlen)
{
    return ops(s)->operator_lookup(s, hash_hex, name, name_len, site, site_len, err, errlen);
}

int co_store_alerts_apply(co_store *s, const co_alert_change *c, size_t n, int64_t now_ms,
                          co_alert_outcome *out, char *err, size_t errlen)
{
    return ops(s)->alerts_apply(s, c, n, now_ms, out, err, errlen);
}

json_t *co_store_alerts(co_store *s, const co_alert_filter *f, const co_scope *sc, char *err,
                        size_t errlen)
{
    return ops(s)->alerts(s, f, sc, err, errlen);
}

json_t *co_store_alert(co_store *s, int64_t id, const co_scope *sc, char *err, size_t errlen)
{
    return ops(s)->alert(s, id, sc, err, errlen);
}

int co_store_alert_ack(co_store *s, int64_t id, const char *by, const char *comment,
                       const co_scope *sc, int64_t now_ms, char *err, size_t errlen)
{
    return ops(s)->alert_ack(s, id, by, comment, sc, now_ms, err, errlen);
}

int co_store_silence_add(co_store *s, const co_silence *sl, int64_t *id, char *err, size_t errlen)
{
    return ops(s)->silence_add(s, sl, id, err, errlen);
}

json_t *co_store_silences(co_store *s, const char *site, int64_t now_ms, const co_scope *sc,
                          char *err, size_t errlen)
{
    return ops(s)->silences(s, site, now_ms, sc, err, errlen);
}

int co_store_alerts_active(co_store *s, int (*fn)(void *ud, const co_alert_row *a), void *ud,
                           char *err, size_t errlen)
{
    return ops(s)->alerts_active(s, fn, ud, err, errlen);
}

int co_store_notification_add(co_store *s, const char *id, int64_t alert_id, const char *kind,
                              const char *site, const char *payload, const char *const *targets,
                              size_t ntargets, int64_t now_ms, char *err, size_t errlen)
{
    return ops(s)->notification_add(s, id, alert_id, kind, site, payload, targets, ntargets, now_ms,
                                    err, errlen);
}

int co_store_delivery_update(co_store *s, const char *id, const char *target, unsigned attempts,
                             long http_status, const char *error, const char *state, int64_t now_ms,
                             char *err, size_t errlen)
{
    return ops(s)->delivery_update(s, id, target, attempts, http_status, error, state, now_ms, err,
                                   errlen);
}

json_t *co_store_notifications(co_store *s, const char *site, int64_t alert_id, size_t limit,
                               const co_scope *sc, char *err, size_t errlen)
{
    return ops(s)->notifications(s, site, alert_id, limit, sc, err, errlen);
}

int co_store_deliveries_pending(co_store *s, int64_t since_ms,
                                int (*fn)(void *ud, const char *id, const char *target,
                                          const char *payload, unsigned attempts,
                                          int64_t created_ms),
                                void *ud, char *err, size_t errlen)
{
    return ops(s)->deliveries_pending(s, since_ms, fn, ud, err, errlen);
}

int co_store_day_series(co_store *s, int64_t day, const char *const *metrics, size_t nmetrics,
                        int (*fn)(void *ud, const co_day_series *se), void *ud, char *err,
                        size_t errlen)
{
    return ops(s)->day_series(s, day, metrics, nmetrics, fn, ud, err, errlen);
}

int co_store_compliance_put(co_store *s, const char *day, const co_compliance_row *rows, size_t n,
                            int64_t now_ms, char *err, size_t errlen)
{
    return ops(s)->compliance_put(s, day, rows, n, now_ms, err, errlen);
}

int co_store_compliance_rows(co_store *s, const char *day, const char *site, const char *province,
                             const char *city, const co_scope *sc,
                             int (*fn)(void *ud, const co_compliance_row *r, const char *province,
                                       const char *city),
                             void *ud, int64_t *updated_ms, char *err, size_t errlen)
{
    return ops(s)->compliance_rows(s, day, site, province, city, sc, fn, ud, updated_ms, err,
                                   errlen);
}

int co_store_ping(co_store *s, char *err, size_t errlen)
{
    return ops(s)->ping(s, err, errlen);
}

int co_store_counts(co_store *s, int64_t *samples, int64_t *series, int64_t *devices, char *err,
                    size_t errlen)
{
    return ops(s)->counts(s, samples, series, devices, err, errlen);
}

int co_store_viewer_add(co_store *s, const co_viewer_row *v, const char *pwhash, int64_t now_ms,
                        char *err, size_t errlen)
{
    return ops(s)->viewer_add(s, v, pwhash, now_ms, err, errlen);
}

int co_store_viewer_get(co_store *s, const char *name, co_viewer_row *v, char *pwhash, size_t pwlen,
                        char *err, size_t errlen)
{
    return ops(s)->viewer_get(s, name, v, pwhash, pwlen, err, errlen);
}

int co_store_viewers(co_store *s, int (*fn)(void *ud, const co_viewer_row *v), void *ud, char *err,
                     size_t errlen)
{
    return ops(s)->viewers(s, fn, ud, err, errlen);
}

int co_store_viewer_passwd(co_store *s, const char *name, const char *pwhash, int64_t now_ms,
                           char *err, size_t errlen)
{
    return ops(s)->viewer_passwd(s, name, pwhash, now_ms, err, errlen);
}

int co_store_viewer_remove(co_store *s, const char *name, char *err, size_t errlen)
{
    return ops(s)->viewer_remove(s, name, err, errlen);
}

int co_store_session_add(co_store *s, const char *hash_hex, const char *viewer, int64_t now_ms,
                         int64_t expires_ms, char *err, size_t errlen)
{
    return ops(s)->session_add(s, hash_hex, viewer, now_ms, expires_ms, err, errlen);
}

int co_store_session_lookup(co_store *s, const char *hash_hex, int64_t now_ms, co_viewer_row *v,
                            int64_t *expires_ms, int64_t *last_seen_ms, char *err, size_t errlen)
{
    return ops(s)->session_lookup(s, hash_hex, now_ms, v, expires_ms, last_seen_ms, err, errlen);
}

int co_store_session_touch(co_store *s, const char *hash_hex, int64_t now_ms, int64_t expires_ms,
                           char *err, size_t errlen)
{
    return ops(s)->session_touch(s, hash_hex, now_ms, expires_ms, err, errlen);
}

int co_store_session_remove(co_store *s, const char *hash_hex, char *err, size_t errlen)
{
    return ops(s)->session_remove(s, hash_hex, err, errlen);
}

int co_store_sessions_expire(co_store *s, int64_t now_ms, int64_t *removed, char *err,
                             size_t errlen)
{
    return ops(s)->sessions_expire(s, now_ms, removed, err, errlen);
}

int co_store_retention(co_store *s, const co_retention_cut *cut, co_retention_stats *out, char *err,
                       size_t errlen)
{
    return ops(s)->retention(s, cut, out, err, errlen);
}

json_t *co_store_dash_overview(co_store *s, const co_scope *sc, co_dash_level level,
                               const char *province, const char *city, const char *day,
                               int64_t seen_since_ms, char *err, size_t errlen)
{
    return ops(s)->dash_overview(s, sc, level, province, city, day, seen_since_ms, err, errlen);
}

json_t *co_store_dash_cinema(co_store *s, const co_scope *sc, const char *site,
                             const char *const *metrics, size_t nmetrics, char *err, size_t errlen)
{
    return ops(s)->dash_cinema(s, sc, site, metrics, nmetrics, err, errlen);
}

json_t *co_store_dash_hall(co_store *s, const co_scope *sc, const char *site, const char *screen,
                           char *err, size_t errlen)
{
    return ops(s)->dash_hall(s, sc, site, screen, err, errlen);
}

int co_store_set_head(co_store *s, size_t max_points, int64_t max_age_ms)
{
    return ops(s)->set_head ? ops(s)->set_head(s, max_points, max_age_ms) : 0;
}

int co_store_flush(co_store *s, char *err, size_t errlen)
{
    return ops(s)->flush ? ops(s)->flush(s, err, errlen) : 0;
}

int co_store_maintain(co_store *s, int64_t now_ms, char *err, size_t errlen)
{
    return ops(s)->maintain ? ops(s)->maintain(s, now_ms, err, errlen) : 0;
}

int co_store_head_usage(co_store *s, co_head_usage *u)
{
    co_head *h = ops(s)->head ? ops(s)->head(s) : NULL;
    if (!h) return 1;
    co_head_get_usage(h, u);
    return 0;
}

int co_store_wal_stats(co_store *s, co_walckpt_stats *out)
{
    return ops(s)->wal_stats ? ops(s)->wal_stats(s, out) : 1;
}

/* ---- summaries of tiered forwarding (store_summary.c, store_pg_summary.c) ---- */

int co_store_hour_rollups(co_store *s, int64_t hour_ms, const char *site,
                          int (*fn)(void *ud, const co_hour_rollup *r), void *ud, char *err,
                          size_t errlen)
{
    return ops(s)->hour_rollups(s, hour_ms, site, fn, ud, err, errlen);
}

int co_store_summary_put(co_store *s, const cm_batch *b, int64_t now_ms, char *err, size_t errlen)
{
    return ops(s)->summary_put(s, b, now_ms, err, errlen);
}

int co_store_compliance_received(co_store *s, const char *day,
                                 int (*fn)(void *ud, const co_compliance_row *r), void *ud,
                                 char *err, size_t errlen)
{
    return ops(s)->compliance_received(s, day, fn, ud, err, errlen);
}

/* notify.h — webhook notifications of alert transitions: per-target filter, rate limit, HMAC
 * signature; one worker thread delivers with retry (exponential backoff, full jitter,
 * Retry-After) until a 2xx, a permanent 4xx or the maximum age.
 *
 * Exactly-once intent: every attempt of one notification carries the same
 * `Idempotency-Key: <id>` and the id in the payload; after a 2xx it is never sent again by this
 * process. Durability is the caller's: it stores a notification before co_notify_enqueue,
 * records each outcome reported through on_attempt, and hands back the still pending ones with
 * co_notify_restore at start-up. Memory is bounded by queue_cap; when full, the oldest queued
 * delivery is failed with error "queue_full" (reported, never silently lost).
 * libcurl must have been initialised once (curl_global_init) by main. */
#ifndef CO_NOTIFY_H
#define CO_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "severity.h"

typedef enum { CO_NOTIFY_FIRING = 0, CO_NOTIFY_RESOLVED } co_notify_kind;

/* One [webhook "name"] section. Strings are owned by the enclosing co_notify_conf. */
typedef struct co_webhook_conf {
    char *name;
    char *url;         /* http:// or https:// */
    char *secret;      /* sent as "Authorization: Bearer <secret>", or NULL */
    char *sign_secret; /* HMAC-SHA256 key for X-Cinemon-Signature, or NULL */
    co_severity min_severity;
    char **sites; /* only these site codes (nsites == 0: every site) */
    size_t nsites;
    int rate_per_minute; /* attempts per rate window at most; 0 = unlimited */
    int64_t timeout_ms;  /* one HTTP attempt */
    int line;            /* the section header's line, for messages */
} co_webhook_conf;

typedef struct co_notify_conf {
    co_webhook_conf *targets;
    size_t ntargets;
    size_t queue_cap;        /* deliveries queued at most (all targets), default 10000 */
    int64_t max_age_ms;      /* give up this long after enqueue, default 24 h */
    int64_t backoff_base_ms; /* first retry delay bound, default 1 s */
    int64_t backoff_cap_ms;  /* largest retry delay bound, default 10 min */
    int64_t rate_window_ms;  /* window of rate_per_minute, default 60 s (shorter in tests) */
} co_notify_conf;

/* A transition to notify. Every field is copied by co_notify_enqueue. */
typedef struct co_notification {
    const char *id; /* unique per transition, e.g. "<alert id>-<seq>"; printable, <= 200 bytes */
    co_notify_kind kind;
    const char *rule;
    co_severity severity;
    const char *site, *screen, *device; /* screen and device may be NULL */
    const char *labels_json;            /* a JSON object, or NULL for {} */
    double value, threshold;            /* NaN is sent as null */
    const char *text;
    int64_t ts_ms; /* when the transition happened */
} co_notification;

/* One attempt's outcome, or a failure without an attempt (queue_full, expired). */
typedef struct co_notify_attempt {
    const char *id;
    const char *target;
    unsigned attempt;  /* this request's number (1 = first); for failures without a request
                          (queue_full, expired) the attempts made so far, maybe 0 */
    long http_status;  /* 0 when no HTTP answer */
    const char *error; /* NULL when delivered; "http 503", curl's message, "queue_full",
                          "expired", "shutdown" (stopped mid-request: still pending) */
    int delivered;     /* 1: a 2xx; this delivery is done */
    int final;         /* 1: done (delivered or failed for good); 0: will be retried */
} co_notify_attempt;

/* Called from the worker thread (from co_notify_enqueue's thread for "queue_full"); must be
 * thread-safe and must not call back into the notifier. Strings live for the call only. */
typedef void (*co_notify_attempt_cb)(void *ud, const co_notify_attempt *a);

typedef struct co_notify_stats {
    unsigned long long queued, delivered, failed, retries, evicted, expired;
    size_t pending; /* deliveries queued now */
} co_notify_stats;

typedef struct co_notify co_notify;

/* Defaults, no targets (no allocation; co_notify_conf_free is still safe). */
void co_notify_conf_defaults(co_notify_conf *c);
/* Append the target of one [webhook "name"] section of cf (keys url, secret, sign_secret,
 * min_severity, sites, rate_per_minute, timeout). 0, or -1 with "file:line: what" in err. */
int co_notify_conf_webhook(co_notify_conf *c, const cm_conf *cf, cm_conf_section *s, char *err,
                           size_t errlen);
/* Apply the optional [notify] section (queue_cap, max_age, backoff_base, backoff_cap). */
int co_notify_conf_global(co_notify_conf *c, const cm_conf *cf, cm_conf_section *s, char *err,
                          size_t errlen);
/* Every [webhook "..."] section and [notify] of cf, in order; 0 or -1 with err. */
int co_notify_conf_load(co_notify_conf *c, const cm_conf *cf, char *err, size_t errlen);
/* Free the targets (secrets wiped). */
void co_notify_conf_free(co_notify_conf *c);

/* "scheme://host[:port]/path" of url: no user info, query or fragment (for logs). */
void co_notify_redact_url(const char *url, char *out, size_t outlen);

/* Start the worker; c is copied (free it when you like). cb may be NULL. 0 or -1 with err. */
int co_notify_start(co_notify **out, const co_notify_conf *c, co_notify_attempt_cb cb, void *ud,
                    char *err, size_t errlen);
/* Queue nt for every target whose filter matches. Returns the number of targets it was queued
 * for (0: no target matches, or this id was already queued/delivered), or -1 with err
 * (malformed notification, stopping, out of memory). Thread-safe. */
int co_notify_enqueue(co_notify *n, const co_notification *nt, char *err, size_t errlen);
/* Re-queue a pending delivery at start-up: to the named target only, attempts_done already
 * made, created_ms (wall clock) its original enqueue time for the age limit. 1 queued, 0
 * duplicate, -1 with err (unknown target, ...). Thread-safe. */
int co_notify_restore(co_notify *n, const co_notification *nt, const char *target,
                      unsigned attempts_done, int64_t created_ms, char *err, size_t errlen);
/* The names of the targets whose filter matches nt (at most max; pointers valid while n
 * lives). Returns how many. Thread-safe. */
size_t co_notify_targets_for(co_notify *n, const co_notification *nt, const char **names,
                             size_t max);
/* Counters so far. Thread-safe. */
void co_notify_stats_get(co_notify *n, co_notify_stats *out);
/* Stop taking work, wait up to timeout_ms for requests in flight (then abort them, reported
 * as "shutdown"), stop the thread and free n. Returns the number of deliveries left pending. */
size_t co_notify_stop(co_notify *n, int64_t timeout_ms);

#endif

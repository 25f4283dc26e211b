/* config.h — collector.ini: the [collector] daemon settings (with trusted_proxies, proxy.h),
 * the [store] backend, [rules], [notify], [upstream], [retention] and [access]. */
#ifndef CO_CONFIG_H
#define CO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "forward_conf.h"
#include "log.h"
#include "notify.h"
#include "proxy.h"

typedef struct co_store co_store;

/* [store] backend: SQLite (path) or PostgreSQL (conninfo). */
typedef enum { CO_BACKEND_SQLITE = 0, CO_BACKEND_POSTGRESQL = 1 } co_backend;

/* [retention] (docs/retention.md): how long each kind of data is kept, 0 = forever. */
typedef struct co_retention_conf {
    int64_t raw_ms;       /* raw samples, by whole UTC days (default 90 d) */
    int64_t rollup_1m_ms; /* minute roll-ups (default 180 d); never shorter than raw */
    int64_t rollup_1h_ms; /* hour roll-ups (default 10 y); never shorter than raw or 1m */
    int64_t audit_ms;     /* audit rows of stored batches (default 1 y) */
    int64_t interval_ms;  /* between retention passes (default 1 h) */
} co_retention_conf;

typedef struct co_config {
    char *path;                   /* the ini file as given */
    char listen[80];              /* listen address as written, e.g. "127.0.0.1:8080" */
    struct sockaddr_storage addr; /* ... and parsed */
    socklen_t addrlen;
    int threads;              /* HTTP thread pool size */
    unsigned max_connections; /* open connections at most */
    int64_t timeout_ms;       /* idle connection timeout */
    size_t max_body_bytes;    /* request body limit, compressed and inflated */
    size_t max_json_depth;    /* JSON nesting depth of a batch */
    cm_log_level log_level;
    co_proxies trusted_proxies; /* peers whose X-Forwarded-For names the client (empty: none) */
    co_backend backend;
    char *store_path;        /* SQLite: the database file, resolved against the ini file's folder */
    char *conninfo;          /* PostgreSQL: the libpq connection string; may hold a password, so it
                              * is never logged nor printed (co_config_store_desc says where instead) */
    int64_t head_max_points; /* samples held in memory before they are written out (0: the
                              * backend's default; store.h co_store_set_head) */
    int64_t head_max_age_ms; /* ... or once the oldest of them is this old (0: default) */
    /* [rules] */
    bool rules_enabled;   /* judge samples at all (default true) */
    char *rules_dir;      /* resolved; default CINEMON_RULES_DIR */
    char *overrides_path; /* resolved; NULL = none */
    int64_t tick_ms;      /* absence rules and screen settings refresh period (default 5 s) */
    int64_t compliance_interval_ms; /* compliance of today and yesterday recomputed (10 min) */
    /* [notify] and [webhook "name"] */
    co_notify_conf notify;
    /* [upstream "name"] (docs/forwarding.md) */
    co_forward_conf forward;
    /* [retention] */
    co_retention_conf retention;
    /* [access] (docs/access.md) */
    bool anonymous_read;         /* API reads without a principal (default false) */
    int64_t session_ttl_ms;      /* a login session lives this long after its last use (12 h) */
    bool secure_cookie;          /* the session cookie carries Secure (behind TLS) */
    unsigned login_max_failures; /* failed logins of one user or address before a lockout */
    int64_t login_lockout_ms;    /* failures counted over, and lockout lasting, this long */
} co_config;

/* Fill c with the defaults (no allocation; co_config_free is still safe). */
void co_config_defaults(co_config *c);
/* Load and validate path into c (defaults first). Returns 0, or -1 with "file:line: what" in
 * err. c is to be freed with co_config_free either way. */
int co_config_load(co_config *c, const char *path, char *err, size_t errlen);
void co_config_free(co_config *c);

/* Parse "host:port", "[v6addr]:port", "*:port" or ":port" (all IPv4 interfaces); host is a
 * numeric address or "localhost". Returns 0, or -1 with the reason in err. */
int co_config_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, char *err,
                           size_t errlen);
/* Open the store of c's [store] backend (SQLite file or PostgreSQL conninfo). 0 or -1 with err
 * (never containing the conninfo's password). */
int co_config_open_store(const co_config *c, co_store **out, char *err, size_t errlen);
/* Where the store is, for messages: "sqlite /path/to/db" or "postgresql host=... port=...
 * dbname=... user=..." (the conninfo's host, port, dbname and user only: no password nor other
 * options). */
void co_config_store_desc(const co_config *c, char *buf, size_t len);

/* p unchanged when absolute (or ":memory:"), else joined to the folder of ini_path.
 * Returns a new string (caller frees) or NULL when out of memory. */
char *co_config_resolve_path(const char *ini_path, const char *p);

#endif

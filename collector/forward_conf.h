/* forward_conf.h — the [upstream "name"] sections of collector.ini (docs/forwarding.md): where a
 * collector forwards what it stores (a cinema chain's collector to its province's, a
 * province's to the nation's), as whom, and the keys of the agent's [upload] and [spool]
 * sections for its spool and uploader, with the agent's bounds; every error names file:line. */
#ifndef CO_FORWARD_CONF_H
#define CO_FORWARD_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/* What goes upstream: every stored batch as it is (full), or only alerts, daily compliance
 * and hourly roll-ups with each series' latest value (summary, docs/forwarding.md). */
typedef enum { CO_FWD_FULL = 0, CO_FWD_SUMMARY = 1 } co_forward_mode;

typedef struct co_upstream_conf {
    char *name;       /* [upstream "name"]: [A-Za-z0-9_.-]{1,64} */
    int line;         /* of the section header */
    char *url;        /* the upstream collector's base URL (http:// or https://) */
    char *token_file; /* resolved against the ini's folder; read at start (0600 wanted) */
    char *agent_id;   /* the identity this collector uses upstream (its agent id there) */
    co_forward_mode mode;
    int64_t summary_delay_ms; /* summary: an hour is sent once it ended this long ago and no
                               * batch touched it for as long (default 1 min) */
    /* the agent's [upload] keys */
    int64_t interval_ms, timeout_ms, backoff_base_ms, backoff_cap_ms;
    uint64_t max_batch_bytes;
    /* the agent's [spool] keys */
    char *spool_dir; /* resolved; default: next to the SQLite database (<db>.forward-<name>),
                      * else forward-<name> next to the ini file */
    int fsync;       /* cm_fsync_policy: 0 always, 1 cycle (default), 2 none */
    uint64_t max_bytes, min_free_bytes, segment_bytes;
} co_upstream_conf;

typedef struct co_forward_conf {
    co_upstream_conf *ups;
    size_t n;
} co_forward_conf;

/* Every [upstream "name"] section of cf into c (zeroed by the caller). ini_path: the file (for
 * relative paths); db_path: the SQLite database (NULL for PostgreSQL or ":memory:"), next to
 * which each spool goes by default. 0, or -1 with "file:line: what" in err. */
int co_forward_conf_load(co_forward_conf *c, cm_conf *cf, const char *ini_path, const char *db_path,
                         char *err, size_t errlen);
/* Free what c holds (a zeroed c is fine). */
void co_forward_conf_free(co_forward_conf *c);

#endif

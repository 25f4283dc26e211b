/* forward_conf.c — parse and check the [upstream "name"] sections of collector.ini. The
 * [upload] and [spool] keys take the agent's names, defaults and bounds (agent/config.c). */
#include "forward_conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "config.h"

#define MAX_UPSTREAMS 16

static const char *const POLICIES[] = {"always", "cycle", "none", NULL};
static const char *const MODES[] = {"full", "summary", NULL};

static int entry_line(const cm_conf_section *s, const char *key)
{
    for (size_t i = 0; i < s->nentries; i++)
        if (strcmp(s->entries[i].key, key) == 0) return s->entries[i].line;
    return s->line;
}

/* [A-Za-z0-9_.-]{1,64}: the name becomes part of a folder name. */
static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return 0;
    return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* 1..CM_MAX_NAME printable bytes without spaces (as `token add --agent` takes it). */
static int valid_ident(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CM_MAX_NAME) return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f) return 0;
    return 1;
}

static void upstream_free(co_upstream_conf *u)
{
    free(u->name);
    free(u->url);
    free(u->token_file);
    free(u->agent_id);
    free(u->spool_dir);
    memset(u, 0, sizeof *u);
}

void co_forward_conf_free(co_forward_conf *c)
{
    for (size_t i = 0; i < c->n; i++)
        upstream_free(&c->ups[i]);
    free(c->ups);
    c->ups = NULL;
    c->n = 0;
}

/* A required string key; 0 or -1 (missing or empty: an error naming the section). */
static int required(const cm_conf *cf, cm_conf_section *s, const char *key, const char **out,
                    char *err, size_t errlen)
{
    int r = cm_conf_str(cf, s, key, out, err, errlen);
    if (r < 0) return -1;
    if (r == 0 || !**out) {
        cm_conf_errf(cf, s->line, err, errlen, "[upstream \"%s\"]: key '%s' is required", s->arg,
                     key);
        return -1;
    }
    return 0;
}

/* The default spool folder: <db>.forward-<name>, or forward-<name> next to the ini file. */
static char *default_spool(const char *ini_path, const char *db_path, const char *name)
{
    char rel[96];
    snprintf(rel, sizeof rel, "forward-%s", name);
    if (!db_path || strcmp(db_path, ":memory:") == 0) return co_config_resolve_path(ini_path, rel);
    size_t n = strlen(db_path) + sizeof ".forward-" + strlen(name);
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s.forward-%s", db_path, name);
    return p;
}

static int upstream_parse(co_upstream_conf *u, cm_conf *cf, cm_conf_section *s,
                          const char *ini_path, const char *db_path, char *err, size_t errlen)
{
    const char *url, *token_file, *agent_id, *dir = NULL;
    if (required(cf, s, "url", &url, err, errlen) < 0) return -1;
    if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        strpbrk(url, " \t\r\n")) {
        cm_conf_errf(cf, entry_line(s, "url"), err, errlen,
                     "key 'url' in [upstream \"%s\"]: must be an http:// or https:// URL (the "
                     "upstream collector's base URL)",
                     u->name);
        return -1;
    }
    if (required(cf, s, "token_file", &token_file, err, errlen) < 0 ||
        required(cf, s, "agent_id", &agent_id, err, errlen) < 0)
        return -1;
    if (!valid_ident(agent_id)) {
        cm_conf_errf(cf, entry_line(s, "agent_id"), err, errlen,
                     "key 'agent_id' in [upstream \"%s\"]: 1..%d printable bytes without spaces",
                     u->name, CM_MAX_NAME);
        return -1;
    }
    int mode = (int)u->mode;
    if (cm_conf_enum(cf, s, "mode", MODES, &mode, err, errlen) < 0) return -1;
    u->mode = (co_forward_mode)mode;
    if (cm_conf_duration(cf, s, "summary_delay", 0, 3600000, &u->summary_delay_ms, err, errlen) < 0)
        return -1;
    /* [upload] */
    if (cm_conf_duration(cf, s, "interval", 100, 3600000, &u->interval_ms, err, errlen) < 0 ||
        cm_conf_duration(cf, s, "timeout", 100, 600000, &u->timeout_ms, err, errlen) < 0 ||
        cm_conf_duration(cf, s, "backoff_base", 10, 3600000, &u->backoff_base_ms, err, errlen) <
            0 ||
        cm_conf_duration(cf, s, "backoff_cap", 10, 86400000, &u->backoff_cap_ms, err, errlen) < 0 ||
        cm_conf_size(cf, s, "max_batch_bytes", 4096, 64ull << 20, &u->max_batch_bytes, err,
                     errlen) < 0)
        return -1;
    if (u->backoff_cap_ms < u->backoff_base_ms) {
        cm_conf_errf(cf, entry_line(s, "backoff_cap"), err, errlen,
                     "key 'backoff_cap' in [upstream \"%s\"]: must not be below backoff_base",
                     u->name);
        return -1;
    }
    /* [spool] */
    if (cm_conf_str(cf, s, "spool_dir", &dir, err, errlen) < 0 ||
        cm_conf_enum(cf, s, "fsync", POLICIES, &u->fsync, err, errlen) < 0 ||
        cm_conf_size(cf, s, "max_bytes", 64 << 10, 1ull << 40, &u->max_bytes, err, errlen) < 0 ||
        cm_conf_size(cf, s, "min_free_bytes", 0, 1ull << 40, &u->min_free_bytes, err, errlen) < 0 ||
        cm_conf_size(cf, s, "segment_bytes", 16 << 10, 1ull << 30, &u->segment_bytes, err, errlen) <
            0)
        return -1;
    if (u->segment_bytes > u->max_bytes / 2) {
        cm_conf_errf(cf, entry_line(s, "segment_bytes"), err, errlen,
                     "key 'segment_bytes' in [upstream \"%s\"]: must be at most half of "
                     "max_bytes",
                     u->name);
        return -1;
    }
    if (dir && !*dir) {
        cm_conf_errf(cf, entry_line(s, "spool_dir"), err, errlen,
                     "key 'spool_dir' in [upstream \"%s\"]: must not be empty", u->name);
        return -1;
    }
    u->url = strdup(url);
    u->token_file = co_config_resolve_path(ini_path, token_file);
    u->agent_id = strdup(agent_id);
    u->spool_dir =
        dir ? co_config_resolve_path(ini_path, dir) : default_spool(ini_path, db_path, u->name);
    if (!u->url || !u->token_file || !u->agent_id || !u->spool_dir) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int co_forward_conf_load(co_forward_conf *c, cm_conf *cf, const char *ini_path, const char *db_path,
                         char *err, size_t errlen)
{
    for (size_t i = 0; i < cf->nsections; i++) {
        cm_conf_section *s = &cf->sections[i];
        if (strcmp(s->name, "upstream") != 0) continue;
        if (!s->arg || !valid_name(s->arg)) {
            cm_conf_errf(cf, s->line, err, errlen,
                         "[upstream] needs a name of 1..64 letters, digits, _ - . : "
                         "[upstream \"name\"]");
            return -1;
        }
        for (size_t k = 0; k < c->n; k++)
            if (strcmp(c->ups[k].name, s->arg) == 0) {
                cm_conf_errf(cf, s->line, err, errlen,
                             "[upstream \"%s\"] repeated (first at line %d)", s->arg,
                             c->ups[k].line);
                return -1;
            }
        if (c->n == MAX_UPSTREAMS) {
            cm_conf_errf(cf, s->line, err, errlen, "at most %d [upstream] sections", MAX_UPSTREAMS);
            return -1;
        }
        co_upstream_conf *nu = realloc(c->ups, (c->n + 1) * sizeof *nu);
        if (!nu) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        c->ups = nu;
        co_upstream_conf *u = &c->ups[c->n];
        *u = (co_upstream_conf){.line = s->line,
                                .mode = CO_FWD_FULL,
                                .summary_delay_ms = 60000,
                                .interval_ms = 30000,
                                .timeout_ms = 30000,
                                .backoff_base_ms = 1000,
                                .backoff_cap_ms = 300000,
                                .max_batch_bytes = 1u << 20,
                                .fsync = 1,
                                .max_bytes = 1ull << 30,
                                .min_free_bytes = 64ull << 20,
                                .segment_bytes = 4ull << 20};
        if (!(u->name = strdup(s->arg))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (upstream_parse(u, cf, s, ini_path, db_path, err, errlen) != 0) {
            upstream_free(u);
            return -1;
        }
        c->n++;
    }
    /* two upstreams on one spool folder would fight over its lock at start */
    for (size_t i = 0; i < c->n; i++)
        for (size_t k = 0; k < i; k++)
            if (strcmp(c->ups[i].spool_dir, c->ups[k].spool_dir) == 0) {
                cm_conf_errf(cf, c->ups[i].line, err, errlen,
                             "[upstream \"%s\"]: spool_dir %s is also [upstream \"%s\"]'s",
                             c->ups[i].name, c->ups[i].spool_dir, c->ups[k].name);
                return -1;
            }
    return 0;
}

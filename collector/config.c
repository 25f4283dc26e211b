/* config.c — collector.ini through common/conf.h (every error names file:line), and the store
 * of its [store] backend opened and described without the PostgreSQL password. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "store.h"
#include "timeutil.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_STORE_PATH "./cinemon.db"
#define DAY_MS (86400LL * 1000)
#ifndef CINEMON_RULES_DIR
#define CINEMON_RULES_DIR "/usr/local/share/cinemon/rules" /* the Makefile sets it from PREFIX */
#endif

void co_config_defaults(co_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "%s", DEFAULT_LISTEN);
    char e[8];
    co_config_parse_listen(c->listen, &c->addr, &c->addrlen, e, sizeof e);
    c->threads = 4;
    c->max_connections = 1024;
    c->timeout_ms = 30000;
    c->max_body_bytes = 16u << 20;
    c->max_json_depth = 8;
    c->log_level = CM_LOG_INFO;
    c->backend = CO_BACKEND_SQLITE;
    c->rules_enabled = true;
    c->tick_ms = 5000;
    c->compliance_interval_ms = 10 * 60 * 1000;
    co_notify_conf_defaults(&c->notify);
    c->retention = (co_retention_conf){.raw_ms = 90 * DAY_MS,
                                       .rollup_1m_ms = 180 * DAY_MS,
                                       .rollup_1h_ms = 3650 * DAY_MS,
                                       .audit_ms = 365 * DAY_MS,
                                       .interval_ms = 3600 * 1000};
    c->session_ttl_ms = 12 * 3600 * 1000;
    c->login_max_failures = 5;
    c->login_lockout_ms = 5 * 60 * 1000;
}

void co_config_free(co_config *c)
{
    free(c->path);
    free(c->store_path);
    if (c->conninfo) { /* may hold a password: wiped before it is freed */
        memset(c->conninfo, 0, strlen(c->conninfo));
        free(c->conninfo);
    }
    free(c->rules_dir);
    free(c->overrides_path);
    c->path = c->store_path = c->conninfo = c->rules_dir = c->overrides_path = NULL;
    co_notify_conf_free(&c->notify);
    co_forward_conf_free(&c->forward);
}

static int parse_port(const char *s, unsigned *port)
{
    if (*s == '\0') return -1;
    unsigned v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || p - s > 5) return -1;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > 65535) return -1;
    *port = v;
    return 0;
}

int co_config_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, char *err,
                           size_t errlen)
{
    char host[64];
    const char *port_s;
    memset(ss, 0, sizeof *ss);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "'%s': expected [ipv6-address]:port", s);
            return -1;
        }
        size_t n = (size_t)(close - s - 1);
        if (n == 0 || n >= sizeof host) {
            snprintf(err, errlen, "'%s': bad IPv6 address", s);
            return -1;
        }
        memcpy(host, s + 1, n);
        host[n] = '\0';
        port_s = close + 2;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) {
            snprintf(err, errlen, "'%s': '%s' is not an IPv6 address", s, host);
            return -1;
        }
        a6->sin6_family = AF_INET6;
        *len = sizeof *a6;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            snprintf(err, errlen, "'%s': expected host:port (e.g. 127.0.0.1:8080)", s);
            return -1;
        }
        size_t n = (size_t)(colon - s);
        if (n >= sizeof host || memchr(s, ':', n)) {
            snprintf(err, errlen, "'%s': expected host:port (IPv6 as [addr]:port)", s);
            return -1;
        }
        memcpy(host, s, n);
        host[n] = '\0';
        port_s = colon + 1;
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
        const char *h = host;
        if (n == 0 || strcmp(host, "*") == 0)
            h = "0.0.0.0";
        else if (strcmp(host, "localhost") == 0)
            h = "127.0.0.1";
        if (inet_pton(AF_INET, h, &a4->sin_addr) != 1) {
            snprintf(err, errlen, "'%s': '%s' is not an IPv4 address", s, host);
            return -1;
        }
        a4->sin_family = AF_INET;
        *len = sizeof *a4;
    }
    unsigned port;
    if (parse_port(port_s, &port) != 0) {
        snprintf(err, errlen, "'%s': port must be a number 0..65535", s);
        return -1;
    }
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    return 0;
}

char *co_config_resolve_path(const char *ini_path, const char *p)
{
    if (p[0] == '/' || strcmp(p, ":memory:") == 0) return strdup(p);
    const char *slash = strrchr(ini_path, '/');
    if (!slash) return strdup(p);
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    size_t dl = (size_t)(slash - ini_path) + 1; /* keep the slash ("/x.ini" → "/") */
    size_t pl = strlen(p);
    char *r = malloc(dl + pl + 1);
    if (!r) return NULL;
    memcpy(r, ini_path, dl);
    memcpy(r + dl, p, pl + 1);
    return r;
}

static cm_conf_entry *find_entry(cm_conf_section *s, const char *key)
{
    for (size_t i = 0; s && i < s->nentries; i++)
        if (strcmp(s->entries[i].key, key) == 0) return &s->entries[i];
    return NULL;
}

/* Sections: [collector], [store], [rules], [notify] at most once (conf.c rejects repeats)
 * and any number of [webhook "name"]. */
static int check_sections(const cm_conf *cf, char *err, size_t errlen)
{
    static const char *const plain[] = {"collector", "store",     "rules", "notify",
                                        "access",    "retention", NULL};
    for (size_t i = 0; i < cf->nsections; i++) {
        const cm_conf_section *s = &cf->sections[i];
        int ok = !strcmp(s->name, "webhook") || !strcmp(s->name, "upstream");
        for (size_t k = 0; !ok && plain[k]; k++)
            ok = !strcmp(s->name, plain[k]) && !s->arg;
        if (!ok) {
            cm_conf_errf(cf, s->line, err, errlen,
                         "unknown section [%s%s%s%s] (expected [collector], [store], [rules], "
                         "[notify], [access], [retention], [webhook \"name\"] or "
                         "[upstream \"name\"])",
                         s->name, s->arg ? " \"" : "", s->arg ? s->arg : "", s->arg ? "\"" : "");
            return -1;
        }
    }
    return 0;
}

static int load_rules(co_config *c, cm_conf *cf, char *err, size_t errlen)
{
    cm_conf_section *s = cm_conf_find(cf, "rules", NULL);
    if (cm_conf_bool(cf, s, "enabled", &c->rules_enabled, err, errlen) < 0) return -1;
    const char *p = CINEMON_RULES_DIR;
    if (cm_conf_str(cf, s, "dir", &p, err, errlen) < 0) return -1;
    c->rules_dir = co_config_resolve_path(cf->path, p);
    const char *o = NULL;
    if (cm_conf_str(cf, s, "overrides", &o, err, errlen) < 0) return -1;
    if (o) c->overrides_path = co_config_resolve_path(cf->path, o);
    if (!c->rules_dir || (o && !c->overrides_path)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (cm_conf_duration(cf, s, "tick", 100, 600000, &c->tick_ms, err, errlen) < 0) return -1;
    if (cm_conf_duration(cf, s, "compliance_interval", 1000, 86400000, &c->compliance_interval_ms,
                         err, errlen) < 0)
        return -1;
    return 0;
}

/* [access]: who may read without logging in, sessions, login throttling. */
static int load_access(co_config *c, cm_conf *cf, char *err, size_t errlen)
{
    cm_conf_section *s = cm_conf_find(cf, "access", NULL);
    if (cm_conf_bool(cf, s, "anonymous_read", &c->anonymous_read, err, errlen) < 0 ||
        cm_conf_bool(cf, s, "secure_cookie", &c->secure_cookie, err, errlen) < 0 ||
        cm_conf_duration(cf, s, "session_ttl", 60 * 1000, 90LL * 86400 * 1000, &c->session_ttl_ms,
                         err, errlen) < 0 ||
        cm_conf_duration(cf, s, "lockout", 1000, 86400 * 1000, &c->login_lockout_ms, err, errlen) <
            0)
        return -1;
    int64_t v = c->login_max_failures;
    if (cm_conf_int(cf, s, "login_max_failures", 1, 1000, &v, err, errlen) < 0) return -1;
    c->login_max_failures = (unsigned)v;
    return 0;
}

/* One [retention] period: "0" or "forever" (0 = keep forever), or a duration (common/timeutil.h,
 * also "2w" weeks and "1y" = 365 days) of at least min_ms. 1 set, 0 absent, -1 error. */
static int retention_period(const cm_conf *cf, cm_conf_section *s, const char *key, int64_t min_ms,
                            int64_t *out, char *err, size_t errlen)
{
    const char *v = NULL;
    int r = cm_conf_str(cf, s, key, &v, err, errlen);
    if (r <= 0) return r;
    int line = find_entry(s, key)->line;
    if (strcmp(v, "forever") == 0) {
        *out = 0;
        return 1;
    }
    int64_t ms = -1;
    size_t n = strlen(v);
    if (n > 1 && (v[n - 1] == 'y' || v[n - 1] == 'w') && n < 32) {
        char num[32];
        memcpy(num, v, n - 1);
        num[n - 1] = 'd';
        num[n] = '\0';
        if (cm_parse_duration_ms(num, &ms) == 0)
            ms = ms * (v[n - 1] == 'y' ? 365 : 7);
        else
            ms = -1;
        if (ms > 10000LL * 365 * DAY_MS) ms = -1;
    } else if (cm_parse_duration_ms(v, &ms) != 0) {
        ms = -1;
    }
    if (ms < 0) {
        cm_conf_errf(cf, line, err, errlen,
                     "key '%s' in [retention]: expected a duration such as 90d, 26w, 10y, or "
                     "0 / forever to keep forever",
                     key);
        return -1;
    }
    if (ms != 0 && ms < min_ms) {
        cm_conf_errf(cf, line, err, errlen,
                     "key '%s' in [retention]: must be 0 / forever or at least %lld%s", key,
                     (long long)(min_ms % DAY_MS ? min_ms / 3600000 : min_ms / DAY_MS),
                     min_ms % DAY_MS ? "h" : "d");
        return -1;
    }
    *out = ms;
    return 1;
}

/* "forever", "90d" or "36h" (rounded down). */
static void period_str(int64_t ms, char *buf, size_t len)
{
    if (ms == 0)
        snprintf(buf, len, "forever");
    else if (ms % DAY_MS == 0)
        snprintf(buf, len, "%lldd", (long long)(ms / DAY_MS));
    else
        snprintf(buf, len, "%lldh", (long long)(ms / 3600000));
}

/* 1 when a kept for ka (0 = forever) is shorter than b kept for kb. */
static int kept_shorter(int64_t ka, int64_t kb)
{
    return ka != 0 && (kb == 0 || ka < kb);
}

/* [retention]: raw, rollup_1m, rollup_1h, audit, interval; a roll-up is never kept shorter
 * than what it summarises (it would be the only copy of nothing). */
static int load_retention(co_config *c, cm_conf *cf, char *err, size_t errlen)
{
    cm_conf_section *s = cm_conf_find(cf, "retention", NULL);
    co_retention_conf *r = &c->retention;
    if (retention_period(cf, s, "raw", DAY_MS, &r->raw_ms, err, errlen) < 0 ||
        retention_period(cf, s, "rollup_1m", DAY_MS, &r->rollup_1m_ms, err, errlen) < 0 ||
        retention_period(cf, s, "rollup_1h", DAY_MS, &r->rollup_1h_ms, err, errlen) < 0 ||
        retention_period(cf, s, "audit", DAY_MS, &r->audit_ms, err, errlen) < 0 ||
        cm_conf_duration(cf, s, "interval", 60 * 1000, 7 * DAY_MS, &r->interval_ms, err, errlen) <
            0)
        return -1;
    static const char *const names[] = {"raw", "rollup_1m", "rollup_1h"};
    const int64_t kept[] = {r->raw_ms, r->rollup_1m_ms, r->rollup_1h_ms};
    for (int hi = 1; hi < 3; hi++)
        for (int lo = 0; lo < hi; lo++) {
            if (!kept_shorter(kept[hi], kept[lo])) continue;
            /* name the roll-up's line, or the finer setting's when only that one was written */
            cm_conf_entry *e = find_entry(s, names[hi]);
            if (!e) e = find_entry(s, names[lo]);
            char a[32], b[32];
            period_str(kept[hi], a, sizeof a);
            period_str(kept[lo], b, sizeof b);
            cm_conf_errf(cf, e ? e->line : (s ? s->line : 0), err, errlen,
                         "[retention]: %s (%s) would be kept shorter than %s (%s): a roll-up "
                         "must be kept at least as long as the data it summarises",
                         names[hi], a, names[lo], b);
            return -1;
        }
    return 0;
}

/* [collector] trusted_proxies: addresses and networks (proxy.h); absent or empty = none. */
static int load_trusted_proxies(co_config *c, cm_conf *cf, cm_conf_section *s, char *err,
                                size_t errlen)
{
    cm_conf_entry *e = find_entry(s, "trusted_proxies");
    if (!e) return 0;
    e->used = true; /* an empty value is allowed: the explicit default, trust no one */
    char why[256];
    if (co_proxies_parse(e->value, &c->trusted_proxies, why, sizeof why) != 0) {
        cm_conf_errf(cf, e->line, err, errlen, "key 'trusted_proxies' in [collector]: %s", why);
        return -1;
    }
    return 0;
}

static int load_collector(co_config *c, cm_conf *cf, char *err, size_t errlen)
{
    cm_conf_section *s = cm_conf_find(cf, "collector", NULL);
    const char *str = NULL;
    int64_t v;
    int r;

    if ((r = cm_conf_str(cf, s, "listen", &str, err, errlen)) < 0) return -1;
    if (r == 1) {
        char why[200];
        if (strlen(str) >= sizeof c->listen ||
            co_config_parse_listen(str, &c->addr, &c->addrlen, why, sizeof why) != 0) {
            if (strlen(str) >= sizeof c->listen) snprintf(why, sizeof why, "address too long");
            cm_conf_errf(cf, find_entry(s, "listen")->line, err, errlen,
                         "key 'listen' in [collector]: %s", why);
            return -1;
        }
        snprintf(c->listen, sizeof c->listen, "%s", str);
    }
    v = c->threads;
    if (cm_conf_int(cf, s, "threads", 1, 256, &v, err, errlen) < 0) return -1;
    c->threads = (int)v;
    v = c->max_connections;
    if (cm_conf_int(cf, s, "max_connections", 1, 65536, &v, err, errlen) < 0) return -1;
    c->max_connections = (unsigned)v;
    if (cm_conf_duration(cf, s, "timeout", 1000, 3600000, &c->timeout_ms, err, errlen) < 0)
        return -1;

    uint64_t body = c->max_body_bytes;
    if (cm_conf_size(cf, s, "max_body_bytes", 1024, 1ull << 30, &body, err, errlen) < 0) return -1;
    c->max_body_bytes = (size_t)body;
    v = (int64_t)c->max_json_depth;
    if (cm_conf_int(cf, s, "max_json_depth", 4, 64, &v, err, errlen) < 0) return -1;
    c->max_json_depth = (size_t)v;

    if (load_trusted_proxies(c, cf, s, err, errlen) < 0) return -1;

    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    int lvl = (int)c->log_level;
    if (cm_conf_enum(cf, s, "log_level", levels, &lvl, err, errlen) < 0) return -1;
    c->log_level = (cm_log_level)lvl;
    return 0;
}

/* libpq's message about a connection string without what it quotes (a piece of the string,
 * which may be the password) and without its newline. */
static void conninfo_why(const char *msg, char *out, size_t len)
{
    size_t o = 0;
    int quoted = 0;
    for (const char *p = msg ? msg : ""; *p && o + 6 < len; p++) {
        if (*p == '"') {
            if (!quoted) {
                memcpy(out + o, "\"...\"", 5);
                o += 5;
            }
            quoted = !quoted;
        } else if (!quoted && *p != '\n') {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* The PostgreSQL half of [store]: conninfo required and well-formed, no path. */
static int load_store_pg(co_config *c, cm_conf *cf, cm_conf_section *s, const char *path,
                         const char *ci, char *err, size_t errlen)
{
    if (path) {
        cm_conf_errf(cf, find_entry(s, "path")->line, err, errlen,
                     "key 'path' in [store]: only for backend = sqlite (PostgreSQL is reached "
                     "through conninfo)");
        return -1;
    }
    if (!ci || !*ci) {
        cm_conf_entry *e = ci ? find_entry(s, "conninfo") : find_entry(s, "backend");
        cm_conf_errf(cf, e->line, err, errlen,
                     "[store]: backend = postgresql needs conninfo = a libpq connection string "
                     "(e.g. host=db.example.net dbname=cinemon user=cinemon; the password in "
                     "~/.pgpass or PGPASSWORD)");
        return -1;
    }
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(ci, &msg);
    if (!opts) {
        char why[256];
        conninfo_why(msg ? msg : "out of memory", why, sizeof why);
        PQfreemem(msg);
        cm_conf_errf(cf, find_entry(s, "conninfo")->line, err, errlen,
                     "key 'conninfo' in [store]: not a libpq connection string: %s", why);
        return -1;
    }
    PQconninfoFree(opts);
    if (!(c->conninfo = strdup(ci))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* [store]: backend = sqlite with path (default ./cinemon.db), or backend = postgresql with
 * conninfo; a key of the other backend is an error naming its line. */
static int load_store(co_config *c, cm_conf *cf, char *err, size_t errlen)
{
    cm_conf_section *s = cm_conf_find(cf, "store", NULL);
    static const char *const backends[] = {"sqlite", "postgresql", NULL};
    int b = (int)c->backend;
    if (cm_conf_enum(cf, s, "backend", backends, &b, err, errlen) < 0) return -1;
    c->backend = (co_backend)b;
    const char *p = NULL, *ci = NULL;
    if (cm_conf_str(cf, s, "path", &p, err, errlen) < 0 ||
        cm_conf_str(cf, s, "conninfo", &ci, err, errlen) < 0 ||
        cm_conf_int(cf, s, "head_max_points", 1000, 100000000, &c->head_max_points, err, errlen) <
            0 ||
        cm_conf_duration(cf, s, "head_max_age", 100, 3600000, &c->head_max_age_ms, err, errlen) < 0)
        return -1;
    if (c->backend == CO_BACKEND_POSTGRESQL) return load_store_pg(c, cf, s, p, ci, err, errlen);
    if (ci) {
        cm_conf_errf(cf, find_entry(s, "conninfo")->line, err, errlen,
                     "key 'conninfo' in [store]: only for backend = postgresql");
        return -1;
    }
    c->store_path = co_config_resolve_path(cf->path, p ? p : DEFAULT_STORE_PATH);
    if (!c->store_path) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int co_config_open_store(const co_config *c, co_store **out, char *err, size_t errlen)
{
    int rc = c->backend == CO_BACKEND_POSTGRESQL
                 ? co_store_open_pg(out, c->conninfo, err, errlen)
                 : co_store_open_sqlite(out, c->store_path, err, errlen);
    if (rc == 0) co_store_set_head(*out, (size_t)c->head_max_points, c->head_max_age_ms);
    return rc;
}

void co_config_store_desc(const co_config *c, char *buf, size_t len)
{
    if (c->backend != CO_BACKEND_POSTGRESQL) {
        snprintf(buf, len, "sqlite %s", c->store_path ? c->store_path : "?");
        return;
    }
    size_t o = (size_t)snprintf(buf, len, "postgresql");
    PQconninfoOption *opts = c->conninfo ? PQconninfoParse(c->conninfo, NULL) : NULL;
    static const char *const shown[] = {"host", "hostaddr", "port", "dbname", "user", NULL};
    for (size_t i = 0; opts && shown[i]; i++) {
        const PQconninfoOption *op = opts;
        while (op->keyword && strcmp(op->keyword, shown[i]))
            op++;
        if (!op->keyword || !op->val || !*op->val || o >= len) continue;
        /* a dbname may itself be a connection string (with a password): not shown */
        int nested = strchr(op->val, '=') || strstr(op->val, "://");
        o += (size_t)snprintf(buf + o, len - o, " %s=%s", op->keyword,
                              nested ? "(connection string)" : op->val);
    }
    PQconninfoFree(opts);
}

int co_config_load(co_config *c, const char *path, char *err, size_t errlen)
{
    co_config_defaults(c);
    c->path = strdup(path);
    if (!c->path) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cm_conf cf;
    if (cm_conf_load(&cf, path, err, errlen) != 0) {
        cm_conf_free(&cf);
        return -1;
    }
    int rc = -1;
    if (check_sections(&cf, err, errlen) == 0 && load_collector(c, &cf, err, errlen) == 0 &&
        load_store(c, &cf, err, errlen) == 0 && load_rules(c, &cf, err, errlen) == 0 &&
        load_retention(c, &cf, err, errlen) == 0 && load_access(c, &cf, err, errlen) == 0 &&
        co_notify_conf_load(&c->notify, &cf, err, errlen) == 0 &&
        co_forward_conf_load(&c->forward, &cf, c->path,
                             c->backend == CO_BACKEND_SQLITE ? c->store_path : NULL, err,
                             errlen) == 0 &&
        cm_conf_check_unused(&cf, err, errlen) == 0)
        rc = 0;
    cm_conf_free(&cf);
    return rc;
}

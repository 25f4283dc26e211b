/* config.c — load and validate agent.ini. */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

#ifndef CINEMON_PROFILES_DIR
#define CINEMON_PROFILES_DIR "/usr/local/share/cinemon/profiles"
#endif

static const char *const KINDS[] = {"projector",   "led_screen",   "media_block", "audio_processor",
                                    "light_sensor", "sound_sensor", "ups",         "server",
                                    "agent",       "other",        NULL};
static const char *const SNMP_VERSIONS[] = {"1", "2c", "3", NULL};
static const char *const PROTOCOLS[] = {"snmp", "pjlink", "http", "text", NULL};
static const int DEFAULT_PORTS[] = {161, 4352, 80, 0};
static const char *const V3_LEVELS[] = {"noAuthNoPriv", "authNoPriv", "authPriv", NULL};
static const char *const V3_AUTH[] = {"SHA", "SHA-256", "MD5", NULL};
static const char *const V3_PRIV[] = {"AES", "DES", NULL};

/* Resolve p against the folder of the config file unless it is absolute. */
static char *resolve(const char *cfg_path, const char *p)
{
    if (p[0] == '/') return strdup(p);
    const char *slash = strrchr(cfg_path, '/');
    if (!slash) return strdup(p);
    size_t dl = (size_t)(slash - cfg_path);
    char *out = malloc(dl + 1 + strlen(p) + 1);
    if (!out) return NULL;
    memcpy(out, cfg_path, dl);
    out[dl] = '/';
    strcpy(out + dl + 1, p);
    return out;
}

static int valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.' || *p == '/'))
            return 0;
    return s[0] != '/' && s[n - 1] != '/';
}

/* Copy an optional string key into *dst (resolved as a path when is_path). */
static int get_str(cm_conf *cf, cm_conf_section *s, const char *key, char **dst, int is_path,
                   char *err, size_t errlen)
{
    const char *v;
    int r = cm_conf_str(cf, s, key, &v, err, errlen);
    if (r <= 0) return r;
    char *copy = is_path ? resolve(cf->path, v) : strdup(v);
    if (!copy) return -1;
    free(*dst);
    *dst = copy;
    return 1;
}

static int load_agent(ag_config *c, cm_conf *cf, char *err, size_t errlen)
{
    cm_conf_section *s = cm_conf_find(cf, "agent", NULL);
    if (!s) {
        snprintf(err, errlen, "%s: missing [agent] section", cf->path);
        return -1;
    }
    if (get_str(cf, s, "site", &c->site, 0, err, errlen) < 0) return -1;
    if (!c->site) {
        cm_conf_errf(cf, s->line, err, errlen, "[agent] needs 'site' (the cinema's code)");
        return -1;
    }
    if (!valid_id(c->site) || strchr(c->site, '/')) {
        cm_conf_errf(cf, s->line, err, errlen,
                     "site '%s' must be 1-128 characters of letters, digits, _ - .", c->site);
        return -1;
    }
    if (get_str(cf, s, "id", &c->agent_id, 0, err, errlen) < 0) return -1;
    if (!c->agent_id && !(c->agent_id = strdup(c->site))) return -1;
    if (get_str(cf, s, "collector_url", &c->collector_url, 0, err, errlen) < 0) return -1;
    if (c->collector_url && strncmp(c->collector_url, "http://", 7) != 0 &&
        strncmp(c->collector_url, "https://", 8) != 0) {
        cm_conf_errf(cf, s->line, err, errlen, "collector_url must start with http:// or https://");
        return -1;
    }
    if (get_str(cf, s, "token_file", &c->token_file, 1, err, errlen) < 0) return -1;
    if (get_str(cf, s, "state_dir", &c->state_dir, 1, err, errlen) < 0) return -1;
    if (!c->state_dir && !(c->state_dir = resolve(cf->path, "state"))) return -1;
    if (get_str(cf, s, "profiles_dir", &c->profiles_dir, 1, err, errlen) < 0) return -1;
    if (!c->profiles_dir) {
        const char *def = access(CINEMON_PROFILES_DIR, R_OK) == 0 ? CINEMON_PROFILES_DIR : "profiles";
        if (!(c->profiles_dir = strdup(def))) return -1;
    }
    if (get_str(cf, s, "log_level", &c->log_level, 0, err, errlen) < 0) return -1;

    int64_t v;
    c->interval_ms = 60000;
    c->timeout_ms = 2000;
    c->retries = 1;
    if (cm_conf_duration(cf, s, "interval", 100, 86400000, &c->interval_ms, err, errlen) < 0 ||
        cm_conf_duration(cf, s, "timeout", 10, 600000, &c->timeout_ms, err, errlen) < 0)
        return -1;
    int r = cm_conf_int(cf, s, "retries", 0, 10, &v, err, errlen);
    if (r < 0) return -1;
    if (r > 0) c->retries = (int)v;
    return 0;
}

static int load_upload(ag_config *c, cm_conf *cf, char *err, size_t errlen)
{
    c->upload_interval_ms = 30000;
    c->upload_timeout_ms = 30000;
    c->backoff_base_ms = 1000;
    c->backoff_cap_ms = 300000;
    c->max_batch_bytes = 1 << 20;
    cm_conf_section *s = cm_conf_find(cf, "upload", NULL);
    if (!s) return 0;
    if (cm_conf_duration(cf, s, "interval", 100, 3600000, &c->upload_interval_ms, err, errlen) < 0 ||
        cm_conf_duration(cf, s, "timeout", 100, 600000, &c->upload_timeout_ms, err, errlen) < 0 ||
        cm_conf_duration(cf, s, "backoff_base", 10, 3600000, &c->backoff_base_ms, err, errlen) < 0 ||
        cm_conf_duration(cf, s, "backoff_cap", 10, 86400000, &c->backoff_cap_ms, err, errlen) < 0 ||
        cm_conf_size(cf, s, "max_batch_bytes", 4096, 64ull << 20, &c->max_batch_bytes, err,
                     errlen) < 0)
        return -1;
    if (c->backoff_cap_ms < c->backoff_base_ms) {
        cm_conf_errf(cf, s->line, err, errlen, "backoff_cap must not be below backoff_base");
        return -1;
    }
    return 0;
}

static int load_spool(ag_config *c, cm_conf *cf, char *err, size_t errlen)
{
    c->spool_fsync = 1;
    c->spool_max_bytes = 1ull << 30;
    c->spool_min_free_bytes = 64ull << 20;
    c->spool_segment_bytes = 4ull << 20;
    cm_conf_section *s = cm_conf_find(cf, "spool", NULL);
    static const char *const POLICIES[] = {"always", "cycle", "none", NULL};
    if (s) {
        if (get_str(cf, s, "dir", &c->spool_dir, 1, err, errlen) < 0 ||
            get_str(cf, s, "ledger", &c->ledger_path, 1, err, errlen) < 0 ||
            cm_conf_enum(cf, s, "fsync", POLICIES, &c->spool_fsync, err, errlen) < 0 ||
            cm_conf_size(cf, s, "max_bytes", 64 << 10, 1ull << 40, &c->spool_max_bytes, err,
                         errlen) < 0 ||
            cm_conf_size(cf, s, "min_free_bytes", 0, 1ull << 40, &c->spool_min_free_bytes, err,
                         errlen) < 0 ||
            cm_conf_size(cf, s, "segment_bytes", 16 << 10, 1ull << 30, &c->spool_segment_bytes,
                         err, errlen) < 0)
            return -1;
        if (c->spool_segment_bytes > c->spool_max_bytes / 2) {
            cm_conf_errf(cf, s->line, err, errlen,
                         "[spool] segment_bytes must be at most half of max_bytes");
            return -1;
        }
    }
    if (!c->spool_dir) {
        size_t n = strlen(c->state_dir) + sizeof "/spool";
        if (!(c->spool_dir = malloc(n))) return -1;
        snprintf(c->spool_dir, n, "%s/spool", c->state_dir);
    }
    return 0;
}

/* True when s is an SNMP engine ID in hex: optional 0x, 5 to 32 octets (RFC 3411). */
static int valid_engine_id(const char *s)
{
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
    size_t n = strlen(s);
    if (n % 2 || n < 10 || n > 64) return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
            return 0;
    return 1;
}

/* [traps] v3_user, v3_level, v3_auth_protocol, v3_auth_password, v3_priv_protocol,
 * v3_priv_password (as in [device]), v3_engine_id. */
static int load_traps_v3(ag_config *c, cm_conf *cf, cm_conf_section *s, char *err, size_t errlen)
{
    int level = 2, auth = 0, priv = 0;
    if (get_str(cf, s, "v3_user", &c->traps_v3_user, 0, err, errlen) < 0 ||
        cm_conf_enum(cf, s, "v3_level", V3_LEVELS, &level, err, errlen) < 0 ||
        cm_conf_enum(cf, s, "v3_auth_protocol", V3_AUTH, &auth, err, errlen) < 0 ||
        get_str(cf, s, "v3_auth_password", &c->traps_v3_auth_password, 0, err, errlen) < 0 ||
        cm_conf_enum(cf, s, "v3_priv_protocol", V3_PRIV, &priv, err, errlen) < 0 ||
        get_str(cf, s, "v3_priv_password", &c->traps_v3_priv_password, 0, err, errlen) < 0 ||
        get_str(cf, s, "v3_engine_id", &c->traps_v3_engine_id, 0, err, errlen) < 0)
        return -1;
    c->traps_v3_level = level;
    if (!(c->traps_v3_auth_protocol = strdup(V3_AUTH[auth])) ||
        !(c->traps_v3_priv_protocol = strdup(V3_PRIV[priv])))
        return -1;
    if (c->traps_v3_engine_id && !valid_engine_id(c->traps_v3_engine_id)) {
        cm_conf_errf(cf, s->line, err, errlen,
                     "[traps] v3_engine_id '%s' must be 5 to 32 octets in hex (e.g. "
                     "0x80001f8804636e6d6f6e31)",
                     c->traps_v3_engine_id);
        return -1;
    }
    if (!c->traps_v3_user) {
        const char *orphan = c->traps_v3_auth_password ? "v3_auth_password"
                             : c->traps_v3_priv_password ? "v3_priv_password"
                             : c->traps_v3_engine_id     ? "v3_engine_id"
                                                         : NULL;
        if (orphan) {
            cm_conf_errf(cf, s->line, err, errlen, "[traps] %s needs 'v3_user'", orphan);
            return -1;
        }
        return 0;
    }
    if (strlen(c->traps_v3_user) > 32) {
        cm_conf_errf(cf, s->line, err, errlen, "[traps] v3_user must be at most 32 characters");
        return -1;
    }
    const char *missing = level >= 1 && !c->traps_v3_auth_password ? "v3_auth_password"
                          : level == 2 && !c->traps_v3_priv_password ? "v3_priv_password"
                                                                      : NULL;
    if (missing) {
        cm_conf_errf(cf, s->line, err, errlen, "[traps] with v3_user needs '%s'", missing);
        return -1;
    }
    const char *shortpw =
        c->traps_v3_auth_password && strlen(c->traps_v3_auth_password) < 8 ? "v3_auth_password"
        : c->traps_v3_priv_password && strlen(c->traps_v3_priv_password) < 8 ? "v3_priv_password"
                                                                              : NULL;
    if (shortpw) {
        cm_conf_errf(cf, s->line, err, errlen,
                     "[traps]: %s must have at least 8 characters (RFC 3414)", shortpw);
        return -1;
    }
    return 0;
}

/* [traps] listen = host:port ("[v6]:port" for IPv6), community = public. */
static int load_traps(ag_config *c, cm_conf *cf, char *err, size_t errlen)
{
    cm_conf_section *s = cm_conf_find(cf, "traps", NULL);
    if (!s) return 0;
    if (get_str(cf, s, "listen", &c->traps_listen, 0, err, errlen) < 0 ||
        get_str(cf, s, "community", &c->traps_community, 0, err, errlen) < 0)
        return -1;
    if (!c->traps_listen) {
        cm_conf_errf(cf, s->line, err, errlen, "[traps] needs 'listen' (host:port)");
        return -1;
    }
    if (!c->traps_community && !(c->traps_community = strdup("public"))) return -1;
    const char *l = c->traps_listen, *colon, *hs = l;
    size_t hl;
    if (l[0] == '[') {
        const char *rb = strchr(l, ']');
        colon = rb ? rb + 1 : NULL;
        if (!colon || *colon != ':') colon = NULL;
        hs = l + 1;
        hl = rb ? (size_t)(rb - hs) : 0;
    } else {
        colon = strrchr(l, ':');
        hl = colon ? (size_t)(colon - l) : 0;
        if (colon && memchr(l, ':', hl)) colon = NULL; /* bare IPv6 needs brackets */
    }
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || hl == 0 || !end || *end || end == colon + 1 || port < 1 || port > 65535) {
        cm_conf_errf(cf, s->line, err, errlen,
                     "[traps] listen '%s' must be host:port (e.g. 127.0.0.1:1162, [::1]:1162)", l);
        return -1;
    }
    if (!(c->traps_host = strndup(hs, hl))) return -1;
    c->traps_port = (int)port;
    return load_traps_v3(c, cf, s, err, errlen);
}

static int load_device(ag_config *c, cm_conf *cf, cm_conf_section *s, ag_device *d, char *err,
                       size_t errlen)
{
    d->line = s->line;
    if (!s->arg || !valid_id(s->arg)) {
        cm_conf_errf(cf, s->line, err, errlen,
                     "[device \"ID\"] needs an id of 1-128 letters, digits, _ - . / "
                     "such as \"hall1/projector\"");
        return -1;
    }
    if (!(d->id = strdup(s->arg))) return -1;
    int kind = (int)(sizeof KINDS / sizeof *KINDS) - 2; /* other */
    if (cm_conf_enum(cf, s, "kind", KINDS, &kind, err, errlen) < 0) return -1;
    if (!(d->kind = strdup(KINDS[kind]))) return -1;
    if (get_str(cf, s, "screen", &d->screen, 0, err, errlen) < 0) return -1;
    if (!d->screen) {
        const char *slash = strchr(d->id, '/');
        if (slash && !(d->screen = strndup(d->id, (size_t)(slash - d->id)))) return -1;
    }
    if (get_str(cf, s, "profile", &d->profile, 0, err, errlen) < 0) return -1;
    int proto = 0;
    if (cm_conf_enum(cf, s, "protocol", PROTOCOLS, &proto, err, errlen) < 0) return -1;
    if (!(d->protocol = strdup(PROTOCOLS[proto]))) return -1;
    if (get_str(cf, s, "address", &d->address, 0, err, errlen) < 0) return -1;
    if (!d->address) {
        cm_conf_errf(cf, s->line, err, errlen, "[device \"%s\"] needs 'address'", d->id);
        return -1;
    }
    bool tls = false;
    d->tls_verify = 1;
    bool verify = true;
    if (cm_conf_bool(cf, s, "tls", &tls, err, errlen) < 0 ||
        cm_conf_bool(cf, s, "tls_verify", &verify, err, errlen) < 0)
        return -1;
    d->tls = tls;
    d->tls_verify = verify;
    int64_t v;
    d->port = tls && proto == 2 ? 443 : DEFAULT_PORTS[proto];
    int r = cm_conf_int(cf, s, "port", 1, 65535, &v, err, errlen);
    if (r < 0) return -1;
    if (r > 0) d->port = (int)v;
    /* port 0 (text protocols): the profile's "port" is used */
    if (d->port == 0 && !d->profile) {
        cm_conf_errf(cf, s->line, err, errlen,
                     "[device \"%s\"] needs 'profile' (or 'port') for protocol %s", d->id,
                     d->protocol);
        return -1;
    }
    int ver = 1;
    if (cm_conf_enum(cf, s, "snmp_version", SNMP_VERSIONS, &ver, err, errlen) < 0) return -1;
    d->snmp_version = ver + 1; /* "1", "2c", "3" */
    if (get_str(cf, s, "community", &d->community, 0, err, errlen) < 0) return -1;
    if (!d->community && !(d->community = strdup("public"))) return -1;
    int level = 2, auth = 0, priv = 0;
    if (get_str(cf, s, "v3_user", &d->v3_user, 0, err, errlen) < 0 ||
        cm_conf_enum(cf, s, "v3_level", V3_LEVELS, &level, err, errlen) < 0 ||
        cm_conf_enum(cf, s, "v3_auth_protocol", V3_AUTH, &auth, err, errlen) < 0 ||
        get_str(cf, s, "v3_auth_password", &d->v3_auth_password, 0, err, errlen) < 0 ||
        cm_conf_enum(cf, s, "v3_priv_protocol", V3_PRIV, &priv, err, errlen) < 0 ||
        get_str(cf, s, "v3_priv_password", &d->v3_priv_password, 0, err, errlen) < 0 ||
        get_str(cf, s, "username", &d->username, 0, err, errlen) < 0 ||
        get_str(cf, s, "password", &d->password, 0, err, errlen) < 0)
        return -1;
    d->v3_level = level;
    if (!(d->v3_auth_protocol = strdup(V3_AUTH[auth])) ||
        !(d->v3_priv_protocol = strdup(V3_PRIV[priv])))
        return -1;
    if (d->snmp_version == 3) {
        const char *missing = !d->v3_user                                ? "v3_user"
                              : level >= 1 && !d->v3_auth_password       ? "v3_auth_password"
                              : level == 2 && !d->v3_priv_password       ? "v3_priv_password"
                                                                          : NULL;
        if (missing) {
            cm_conf_errf(cf, s->line, err, errlen, "[device \"%s\"] with snmp_version 3 needs '%s'",
                         d->id, missing);
            return -1;
        }
        const char *shortpw = level >= 1 && strlen(d->v3_auth_password) < 8 ? "v3_auth_password"
                              : level == 2 && strlen(d->v3_priv_password) < 8 ? "v3_priv_password"
                                                                               : NULL;
        if (shortpw) {
            cm_conf_errf(cf, s->line, err, errlen,
                         "[device \"%s\"]: %s must have at least 8 characters (RFC 3414)",
                         d->id, shortpw);
            return -1;
        }
    }
    d->interval_ms = c->interval_ms;
    d->timeout_ms = c->timeout_ms;
    d->retries = c->retries;
    if (cm_conf_duration(cf, s, "interval", 100, 86400000, &d->interval_ms, err, errlen) < 0 ||
        cm_conf_duration(cf, s, "timeout", 10, 600000, &d->timeout_ms, err, errlen) < 0)
        return -1;
    r = cm_conf_int(cf, s, "retries", 0, 10, &v, err, errlen);
    if (r < 0) return -1;
    if (r > 0) d->retries = (int)v;
    return 0;
}

int ag_config_load(ag_config *c, const char *path, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    cm_conf cf;
    if (cm_conf_load(&cf, path, err, errlen) != 0) {
        cm_conf_free(&cf);
        return -1;
    }
    int rc = -1;
    if (!(c->path = strdup(path))) goto out;
    if (load_agent(c, &cf, err, errlen) != 0 || load_upload(c, &cf, err, errlen) != 0 ||
        load_spool(c, &cf, err, errlen) != 0 || load_traps(c, &cf, err, errlen) != 0)
        goto out;
    for (size_t i = 0; i < cf.nsections; i++) {
        cm_conf_section *s = &cf.sections[i];
        if (!s->arg && (strcmp(s->name, "agent") == 0 || strcmp(s->name, "upload") == 0 ||
                        strcmp(s->name, "spool") == 0 || strcmp(s->name, "traps") == 0))
            continue;
        if (strcmp(s->name, "device") != 0) {
            cm_conf_errf(&cf, s->line, err, errlen,
                         "unknown section [%s] (expected [agent], [upload], [spool], [traps] or [device \"id\"])", s->name);
            goto out;
        }
        ag_device *nd = realloc(c->devices, (c->ndevices + 1) * sizeof *nd);
        if (!nd) goto out;
        c->devices = nd;
        ag_device *d = &c->devices[c->ndevices++];
        memset(d, 0, sizeof *d);
        if (load_device(c, &cf, s, d, err, errlen) != 0) goto out;
    }
    if (cm_conf_check_unused(&cf, err, errlen) != 0) goto out;
    rc = 0;
out:
    cm_conf_free(&cf);
    if (rc != 0) ag_config_free(c);
    return rc;
}

void ag_config_free(ag_config *c)
{
    for (size_t i = 0; i < c->ndevices; i++) {
        ag_device *d = &c->devices[i];
        free(d->id);
        free(d->screen);
        free(d->kind);
        free(d->profile);
        free(d->protocol);
        free(d->address);
        free(d->community);
        free(d->v3_user);
        free(d->v3_auth_protocol);
        free(d->v3_auth_password);
        free(d->v3_priv_protocol);
        free(d->v3_priv_password);
        free(d->username);
        free(d->password);
    }
    free(c->devices);
    free(c->path);
    free(c->site);
    free(c->agent_id);
    free(c->collector_url);
    free(c->token_file);
    free(c->state_dir);
    free(c->profiles_dir);
    free(c->log_level);
    free(c->spool_dir);
    free(c->ledger_path);
    free(c->traps_listen);
    free(c->traps_host);
    free(c->traps_community);
    free(c->traps_v3_user);
    free(c->traps_v3_auth_protocol);
    free(c->traps_v3_auth_password);
    free(c->traps_v3_priv_protocol);
    free(c->traps_v3_priv_password);
    free(c->traps_v3_engine_id);
    memset(c, 0, sizeof *c);
}

/* http.c — libmicrohttpd access handler: per-request state, the client's address (the peer,
 * or X-Forwarded-For of a trusted proxy: proxy.h), bounded body accumulation with streaming
 * gzip inflation, routing, JSON responses, request metrics and boundary logging. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "access.h"
#include "apierror.h"
#include "dashboard.h"
#include "log.h"
#include "proxy.h"
#include "settings.h"
#include "timeutil.h"
#include "webui.h"
#include "workpool.h"

#define JSON_TYPE "application/json"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define GET_ALLOW "GET, HEAD"
#define XFF_HEADER "X-Forwarded-For"
#define NET_THREADS_MAX 8 /* libmicrohttpd's network threads, at most */
#define XFF_LINES_MAX 16  /* X-Forwarded-For header lines read; more is malformed */

/* H_WEB: the dashboard's pages and static files (webui.c), open to anyone: they hold no data,
 * which the pages fetch from the API with the viewer's session.
 * H_API: GET/HEAD read through fn (prefix routes pass the rest of the path as parameter
 * "_path") by a principal (access.c) within its scope; the route's `write` method, if any, is
 * an operator's change (settings.c). H_LOGIN / H_LOGOUT / H_ME: the session endpoints. */
typedef enum { H_INGEST, H_API, H_METRICS, H_LOGIN, H_LOGOUT, H_ME, H_WEB } handler_kind;

/* Who may call a route: R_AUTH = a principal (viewer session or operator token; anyone under
 * [access] anonymous_read) for reads, an operator for writes; R_OPEN = anyone (holds no data
 * of cinemas); R_AGENT = an agent token (ingest checks it). */
typedef enum { R_AUTH, R_OPEN, R_AGENT } route_access;

typedef struct route {
    const char *path; /* exact, or a prefix when it ends in '/' (except "/" itself) */
    handler_kind kind;
    co_query_fn fn;    /* H_API reads; NULL = no GET */
    const char *write; /* H_API: "PUT" or "POST" by an operator; NULL = read-only */
    route_access who;
    const char *name; /* the path as /metrics counts it; NULL = path */
} route;

static const route routes[] = {
    {"/api/v1/ingest", H_INGEST, NULL, NULL, R_AGENT, NULL},
    {"/api/v1/sites", H_API, co_query_sites, NULL, R_AUTH, NULL},
    {"/api/v1/devices", H_API, co_query_devices, NULL, R_AUTH, NULL},
    {"/api/v1/latest", H_API, co_query_latest, NULL, R_AUTH, NULL},
    {"/api/v1/series", H_API, co_query_series, NULL, R_AUTH, NULL},
    {"/api/v1/agents", H_API, co_query_agents, NULL, R_AUTH, NULL},
    {"/api/v1/gaps", H_API, co_query_gaps, NULL, R_AUTH, NULL},
    {"/api/v1/events", H_API, co_query_events, NULL, R_AUTH, NULL},
    {"/api/v1/screens", H_API, co_query_screens, NULL, R_AUTH, NULL},
    {"/api/v1/screens/", H_API, NULL, "PUT", R_AUTH, "/api/v1/screens/{site}/{screen}"},
    {"/api/v1/alerts", H_API, co_query_alerts, NULL, R_AUTH, NULL},
    {"/api/v1/alerts/", H_API, co_query_alert, "POST", R_AUTH, "/api/v1/alerts/{id}"},
    {"/api/v1/silences", H_API, co_query_silences, "POST", R_AUTH, NULL},
    {"/api/v1/notifications", H_API, co_query_notifications, NULL, R_AUTH, NULL},
    {"/api/v1/rules", H_API, co_query_rules, NULL, R_AUTH, NULL},
    {"/api/v1/compliance", H_API, co_query_compliance, NULL, R_AUTH, NULL},
    {"/api/v1/overview", H_API, co_dash_overview, NULL, R_AUTH, NULL},
    {"/api/v1/cinema", H_API, co_dash_cinema, NULL, R_AUTH, NULL},
    {"/api/v1/hall", H_API, co_dash_hall, NULL, R_AUTH, NULL},
    {"/api/v1/login", H_LOGIN, NULL, "POST", R_OPEN, NULL},
    {"/api/v1/logout", H_LOGOUT, NULL, "POST", R_OPEN, NULL},
    {"/api/v1/me", H_ME, NULL, NULL, R_OPEN, NULL},
    {"/healthz", H_API, co_query_health, NULL, R_OPEN, NULL},
    {"/metrics", H_METRICS, NULL, NULL, R_OPEN, NULL},
    {"/", H_WEB, NULL, NULL, R_OPEN, NULL},
    {"/login", H_WEB, NULL, NULL, R_OPEN, NULL},
    {"/cinema", H_WEB, NULL, NULL, R_OPEN, NULL},
    {"/hall", H_WEB, NULL, NULL, R_OPEN, NULL},
    {"/alerts", H_WEB, NULL, NULL, R_OPEN, NULL},
    {"/static/", H_WEB, NULL, NULL, R_OPEN, "/static/{file}"},
};
#define NROUTES (sizeof routes / sizeof routes[0])

struct co_http {
    struct MHD_Daemon *d;
    co_workpool *pool; /* runs the requests' work (finish → run_work) off the network threads */
    co_http_deps deps;
    size_t max_body;
    co_proxies proxies; /* [collector] trusted_proxies */
    unsigned port;
    atomic_long inflight;
    atomic_int stopping; /* co_http_stop: new requests are answered 503 */
};

typedef struct argv_ctx {
    co_query_arg args[CO_QUERY_MAX_ARGS];
    size_t n;
    bool overflow;
} argv_ctx;

/* One request's state, from the first call of the access handler to completion. */
typedef struct req {
    const route *rt; /* NULL: unknown path */
    size_t route_idx;
    int64_t t0;
    char peer[INET6_ADDRSTRLEN + 8];
    char addr[INET6_ADDRSTRLEN]; /* the peer's address without the port */
    char client[CO_ADDR_MAX];    /* the client's address (login throttling, logs): the peer's,
                                  * or from X-Forwarded-For when the peer is a trusted proxy */
    bool forwarded;              /* client came from X-Forwarded-For */
    bool answered;               /* a response is queued */
    unsigned pending;            /* error status decided mid-upload, answered at the end */
    json_t *pending_body;
    size_t discarded; /* bytes thrown away after the decision */
    co_principal who;
    co_scope scope;                     /* what the caller may read */
    co_operator op;                     /* an operator's write */
    co_caller caller;                   /* who reads (or writes) */
    bool write;                         /* this request is the route's write method */
    bool want_body;                     /* the body is read (ingest, writes, login) */
    size_t max_body;                    /* ... up to this many bytes */
    unsigned retry_after;               /* seconds for Retry-After (429, 503); 0 = default */
    char set_cookie[CO_SET_COOKIE_MAX]; /* a Set-Cookie to send, or "" */
    size_t wire_bytes;                  /* body bytes as received */
    char *buf;                          /* the (inflated) body */
    size_t len, cap;
    bool gzip, z_init, z_end;
    z_stream z;
    /* The work handed to the pool: the connection is suspended meanwhile, and its header
     * values, method and URL (MHD's, valid until the request completes) are read before. */
    co_work work;
    struct MHD_Connection *conn;
    co_http *h;
    const char *method, *url;
    argv_ctx args;   /* reads: the query parameters */
    const char *hdr; /* login: Content-Type; logout: Cookie */
    bool ran;        /* the work is done: answer with out_* when MHD calls again */
    unsigned out_status;
    json_t *out_body; /* taken by respond() */
    char *out_text;   /* /metrics (NULL: out of memory) */
    size_t out_len;
} req;

const char *const *co_http_paths(size_t *n)
{
    static const char *paths[NROUTES];
    for (size_t i = 0; i < NROUTES; i++)
        paths[i] = routes[i].name ? routes[i].name : routes[i].path;
    *n = NROUTES;
    return paths;
}

/* json_dump_callback sink into a malloc'ed buffer that MHD will free(). */
typedef struct outbuf {
    char *p;
    size_t len, cap;
} outbuf;

static int out_append(const char *s, size_t n, void *data)
{
    outbuf *o = data;
    if (o->len + n + 1 > o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 4096;
        while (nc < o->len + n + 1)
            nc *= 2;
        char *np = realloc(o->p, nc);
        if (!np) return -1;
        o->p = np;
        o->cap = nc;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
    return 0;
}

static void log_request(const req *r, const char *method, const char *url, unsigned status,
                        const json_t *body)
{
    double ms = (double)(cm_mono_ms() - r->t0);
    char from[sizeof r->client + sizeof r->peer + 8];
    if (r->forwarded)
        snprintf(from, sizeof from, "%s via %s", r->client, r->peer);
    else
        snprintf(from, sizeof from, "%s", r->peer);
    cm_debug("%s %s %u %.0fms %s", method, url, status, ms, from);
    if (status >= 400 && status < 500) {
        const char *msg = json_string_value(json_object_get(body, "error"));
        const char *at = json_string_value(json_object_get(body, "at"));
        char key[32];
        snprintf(key, sizeof key, "http-%u", status);
        cm_log_limited(key, 10, CM_LOG_WARN, "%s %s from %s: %u %s%s%s", method, url, from, status,
                       msg ? msg : "", at && at[0] ? " at " : "", at && at[0] ? at : "");
    }
}

static const char *allowed_methods(const route *rt)
{
    if (rt && (rt->kind == H_INGEST || rt->kind == H_LOGIN || rt->kind == H_LOGOUT)) return "POST";
    if (rt && rt->write && !rt->fn) return rt->write;
    if (rt && rt->write) return !strcmp(rt->write, "PUT") ? "GET, HEAD, PUT" : "GET, HEAD, POST";
    return GET_ALLOW;
}

/* Headers every answer carries: no content sniffing, no framing, nothing loaded from elsewhere,
 * no referrer leaving the collector. */
static void add_common_headers(struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "same-origin");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                            "base-uri 'none'; form-action 'self'");
}

/* Queue text (taken: malloc'ed, freed by MHD) with content type and the headers status needs. */
static enum MHD_Result queue_text(struct MHD_Connection *c, req *r, unsigned status, char *text,
                                  size_t len, const char *type)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    add_common_headers(resp);
    if (status == 405) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allowed_methods(r->rt));
    if (status == 503 || status == 429) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", r->retry_after ? r->retry_after : 1);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (r->set_cookie[0]) MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, r->set_cookie);
    enum MHD_Result ok = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ok;
}

/* 1 when the If-None-Match list inm names etag (or is "*"), weak or strong. */
static int etag_listed(const char *inm, const char *etag)
{
    size_t el = strlen(etag);
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (*p == '*') return 1;
        if (!strncmp(p, "W/", 2)) p += 2;
        size_t n = strcspn(p, ",");
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == el && !memcmp(p, etag, el)) return 1;
        p += strcspn(p, ",");
    }
    return 0;
}

/* Answer with body (taken; NULL means out of memory → 500). */
static enum MHD_Result respond(struct MHD_Connection *c, co_http *h, req *r, const char *method,
                               const char *url, unsigned status, json_t *body)
{
    outbuf o = {0};
    /* 15 significant digits: every device reading exactly, without binary noise (0.013, not
     * 0.012999999999999999). */
    if (!body ||
        json_dump_callback(body, out_append, &o, JSON_COMPACT | JSON_REAL_PRECISION(15)) != 0 ||
        out_append("\n", 1, &o) != 0) {
        free(o.p);
        o = (outbuf){0};
        status = 500;
        static const char oom[] = "{\"error\":\"out of memory\",\"at\":\"\"}\n";
        o.p = strdup(oom);
        o.len = o.p ? sizeof oom - 1 : 0;
        if (!o.p) {
            json_decref(body);
            return MHD_NO;
        }
    }
    log_request(r, method, url, status, body);
    json_decref(body);
    co_metrics_request(h->deps.metrics, r->route_idx, status);
    enum MHD_Result ok = queue_text(c, r, status, o.p, o.len, JSON_TYPE);
    if (ok == MHD_YES) r->answered = true;
    return ok;
}

static void peer_of(struct MHD_Connection *c, char *out, size_t len, char *addr, size_t alen)
{
    snprintf(addr, alen, "?");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, len, "?");
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    char a[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, a, sizeof a);
        snprintf(out, len, "%s:%u", a, ntohs(s4->sin_port));
        snprintf(addr, alen, "%s", a);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof a);
        snprintf(out, len, "[%s]:%u", a, ntohs(s6->sin6_port));
        snprintf(addr, alen, "%s", a);
    }
}

/* X-Forwarded-For header lines in the order received. */
typedef struct xff_lines {
    const char *v[XFF_LINES_MAX];
    size_t n;
    bool overflow;
} xff_lines;

static enum MHD_Result collect_xff(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    xff_lines *x = cls;
    if (!key || strcasecmp(key, XFF_HEADER) != 0) return MHD_YES;
    if (x->n == XFF_LINES_MAX) {
        x->overflow = true;
        return MHD_NO;
    }
    x->v[x->n++] = value ? value : "";
    return MHD_YES;
}

/* The client's address into r->client: the peer's, or from X-Forwarded-For when the peer is a
 * trusted proxy (proxy.h); a header that cannot be read is counted and logged, and the peer's
 * address used. */
static void client_of(struct MHD_Connection *c, co_http *h, req *r)
{
    xff_lines x = {0};
    if (h->proxies.n && co_proxies_contains(&h->proxies, r->addr) == 1)
        MHD_get_connection_values(c, MHD_HEADER_KIND, collect_xff, &x);
    co_client_source src = co_proxy_client(&h->proxies, r->addr, x.v, x.overflow ? 0 : x.n,
                                           r->client, sizeof r->client);
    if (x.overflow) src = CO_CLIENT_MALFORMED;
    r->forwarded = src == CO_CLIENT_FORWARDED;
    if (src != CO_CLIENT_MALFORMED) return;
    co_metrics_forwarded_invalid(h->deps.metrics);
    cm_log_limited("http-xff", 60, CM_LOG_WARN,
                   "http: trusted proxy %s sent an X-Forwarded-For that cannot be read (an "
                   "element that is not an address, or more than %d header lines); the request "
                   "counts as coming from the proxy",
                   r->addr, XFF_LINES_MAX);
}

/* Make room for at least `need` more bytes, never beyond max + 1 in total. 0 or -1. */
static int grow(req *r, size_t need, size_t max)
{
    if (r->len + need <= r->cap) return 0;
    if (r->len + need > max + 1) return -1;
    size_t nc = r->cap ? r->cap * 2 : 65536;
    if (nc < r->len + need) nc = r->len + need;
    if (nc > max + 1) nc = max + 1;
    char *np = realloc(r->buf, nc);
    if (!np) return -1;
    r->buf = np;
    r->cap = nc;
    return 0;
}

/* Take n body bytes. Returns 0, or an error status with *body set. */
static unsigned feed(req *r, const char *data, size_t n, json_t **body)
{
    size_t max = r->max_body;
    r->wire_bytes += n;
    if (r->wire_bytes > max) {
        *body = co_api_error("", "request body larger than %zu bytes", max);
        return 413;
    }
    if (!r->gzip) {
        if (grow(r, n, max) != 0) {
            *body = co_api_error("", "out of memory for the request body");
            return 503;
        }
        memcpy(r->buf + r->len, data, n);
        r->len += n;
        return 0;
    }
    if (r->z_end) {
        *body = co_api_error("", "data after the end of the gzip stream");
        return 400;
    }
    r->z.next_in = (Bytef *)(uintptr_t)data;
    r->z.avail_in = (uInt)n;
    while (r->z.avail_in > 0) {
        if (r->len == r->cap && grow(r, 1, max) != 0) {
            if (r->len > max) {
                *body = co_api_error("", "inflated request body larger than %zu bytes", max);
                return 413;
            }
            *body = co_api_error("", "out of memory for the request body");
            return 503;
        }
        r->z.next_out = (Bytef *)r->buf + r->len;
        r->z.avail_out = (uInt)(r->cap - r->len);
        int zr = inflate(&r->z, Z_NO_FLUSH);
        r->len = r->cap - r->z.avail_out;
        if (r->len > max) {
            *body = co_api_error("", "inflated request body larger than %zu bytes", max);
            return 413;
        }
        if (zr == Z_STREAM_END) {
            r->z_end = true;
            if (r->z.avail_in > 0) {
                *body = co_api_error("", "data after the end of the gzip stream");
                return 400;
            }
            break;
        }
        if (zr == Z_MEM_ERROR) {
            *body = co_api_error("", "out of memory while inflating");
            return 503;
        }
        if (zr != Z_OK && !(zr == Z_BUF_ERROR && r->z.avail_out == 0)) {
            *body =
                co_api_error("", "body is not valid gzip (%s)", r->z.msg ? r->z.msg : "corrupt");
            return 400;
        }
    }
    return 0;
}

/* First call: route, method, headers and credentials. 0 to go on, else answered/failed. */
static int begin(struct MHD_Connection *c, co_http *h, req *r, const char *method, unsigned *status,
                 json_t **body)
{
    if (atomic_load(&h->stopping)) {
        r->retry_after = 5;
        *status = co_api_fail(body, 503, "", "the collector is stopping: try again shortly");
        return 1;
    }
    if (!r->rt) {
        *status = 404;
        *body = co_api_error("", "no such endpoint (see /api/v1/sites, /api/v1/screens, "
                                 "/api/v1/latest, /api/v1/series, /api/v1/alerts, "
                                 "/api/v1/events, /api/v1/compliance, /api/v1/login, "
                                 "/api/v1/me, /api/v1/overview, /healthz, /metrics)");
        return 1;
    }
    bool is_get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
    bool is_post = !strcmp(method, MHD_HTTP_METHOD_POST);
    r->write = r->rt->kind == H_API && r->rt->write && !strcmp(method, r->rt->write);
    bool ok;
    switch (r->rt->kind) {
    case H_INGEST:
    case H_LOGIN:
    case H_LOGOUT:
        ok = is_post;
        break;
    case H_API:
        ok = r->write || (is_get && r->rt->fn);
        break;
    default:
        ok = is_get;
    }
    if (!ok) {
        *status = 405;
        *body = co_api_error("", "method %s not allowed here (allowed: %s)", method,
                             allowed_methods(r->rt));
        return 1;
    }
    const char *authz =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *cookie = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE);
    const char *ctype =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    r->max_body = CO_SETTINGS_MAX_BODY;
    r->want_body = r->write || r->rt->kind == H_LOGIN;
    if (r->write) {
        unsigned st =
            co_access_write(h->deps.access, authz, cookie, ctype, &r->op, &r->caller, body);
        if (st) {
            *status = st;
            return 1;
        }
        return 0;
    }
    if (r->rt->kind == H_ME) {
        unsigned st = co_access_identify(h->deps.access, authz, cookie, &r->caller, NULL, body);
        if (st) {
            *status = st;
            return 1;
        }
        return 0;
    }
    if (r->rt->kind == H_API && r->rt->who == R_AUTH) {
        unsigned st = co_access_read(h->deps.access, authz, cookie, &r->caller, body);
        if (st) {
            *status = st;
            return 1;
        }
        r->scope = r->caller.scope;
        return 0;
    }
    if (r->rt->kind != H_INGEST) return 0;
    r->want_body = true;
    r->max_body = h->max_body;

    co_ingest *ing = h->deps.ingest;
    const char *enc =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (enc && (!strcasecmp(enc, "gzip") || !strcasecmp(enc, "x-gzip"))) {
        r->gzip = true;
        if (inflateInit2(&r->z, 16 + MAX_WBITS) != Z_OK) {
            *status = 503;
            *body = co_api_error("", "cannot start inflating");
            co_metrics_ingest(h->deps.metrics, CO_INGEST_FAILED, 0);
            return 1;
        }
        r->z_init = true;
    } else if (enc && strcasecmp(enc, "identity") != 0) {
        *status = 415;
        *body = co_api_error("Content-Encoding",
                             "unsupported Content-Encoding '%.40s' (use gzip or none)", enc);
        co_metrics_ingest(h->deps.metrics, CO_INGEST_REJECTED, 0);
        return 1;
    }
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        errno = 0;
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == 0 && *end == '\0' && n > h->max_body) {
            *status = 413;
            *body = co_api_error("", "request body of %llu bytes is larger than %zu bytes", n,
                                 h->max_body);
            co_metrics_ingest(h->deps.metrics, CO_INGEST_REJECTED, 0);
            return 1;
        }
        if (errno == 0 && *end == '\0' && !r->gzip && n > 0 &&
            grow(r, (size_t)n + 1, h->max_body) != 0) {
            *status = 503;
            *body = co_api_error("", "out of memory for the request body");
            return 1;
        }
    }
    unsigned st = co_ingest_auth(ing, authz, &r->who, body);
    if (st) {
        *status = st;
        return 1;
    }
    return 0;
}

static bool has_body(struct MHD_Connection *c)
{
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    return te || (cl && strcmp(cl, "0") != 0);
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    argv_ctx *a = cls;
    if (a->n == CO_QUERY_MAX_ARGS) {
        a->overflow = true;
        return MHD_NO;
    }
    a->args[a->n++] = (co_query_arg){key, value ? value : ""};
    return MHD_YES;
}

/* An embedded page or asset, or 304 when the client's copy (If-None-Match) is current. */
static enum MHD_Result serve_web(struct MHD_Connection *c, co_http *h, req *r, const char *method,
                                 const char *url)
{
    co_webui_file f;
    if (co_webui_find(url, &f) != 0)
        return respond(c, h, r, method, url, 404, co_api_error("", "no such page or file"));
    const char *inm =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    unsigned status = inm && etag_listed(inm, f.etag) ? 304 : 200;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        status == 304 ? 0 : f.len, (void *)(uintptr_t)f.data, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f.type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, f.etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, f.cache_control);
    add_common_headers(resp);
    log_request(r, method, url, status, NULL);
    co_metrics_request(h->deps.metrics, r->route_idx, status);
    enum MHD_Result ok = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    r->answered = ok == MHD_YES;
    return ok;
}

/* The request's work, on a pool thread: fills out_* and resumes the connection (MHD then
 * calls on_request again, which answers). Touches no MHD state but the resume. */
static void run_work(co_work *w)
{
    req *r = (req *)(void *)((char *)w - offsetof(req, work));
    co_http *h = r->h;
    json_t *body = NULL;
    unsigned status = 500;
    switch (r->rt->kind) {
    case H_INGEST:
        status = co_ingest_batch(h->deps.ingest, &r->who, r->buf ? r->buf : "", r->len, &body);
        break;
    case H_API:
        if (r->write) {
            co_write_req wr = {.route = r->rt->path,
                               .rest = r->url + strlen(r->rt->path),
                               .method = r->method,
                               .body = r->buf,
                               .len = r->len};
            status = co_settings_write(h->deps.store, &r->op, &wr, &body);
        } else {
            status = r->rt->fn(h->deps.query, &r->scope, r->args.args, r->args.n, &body);
        }
        break;
    case H_LOGIN:
        status = co_access_login(h->deps.access, r->client, r->hdr, r->buf, r->len, r->set_cookie,
                                 &r->retry_after, &body);
        if (r->buf) explicit_bzero(r->buf, r->cap); /* the password */
        break;
    case H_LOGOUT:
        status = co_access_logout(h->deps.access, r->hdr, r->set_cookie, &body);
        break;
    case H_METRICS:
        r->out_text = co_metrics_render(h->deps.metrics, h->deps.writer, h->deps.store,
                                        h->deps.forward, &r->out_len);
        status = 200;
        break;
    case H_ME:
    case H_WEB:
        break; /* answered on the network thread */
    }
    r->out_status = status;
    r->out_body = body;
    r->ran = true;
    MHD_resume_connection(r->conn);
}

/* Suspend the connection and queue its work; the answer comes when MHD calls again. */
static enum MHD_Result dispatch(struct MHD_Connection *c, co_http *h, req *r, const char *method,
                                const char *url)
{
    r->conn = c;
    r->h = h;
    r->method = method;
    r->url = url;
    r->work.fn = run_work;
    MHD_suspend_connection(c);
    if (co_workpool_submit(h->pool, &r->work) != 0) { /* the server is stopping */
        r->retry_after = 1;
        r->out_status = 503;
        r->out_body = co_api_error("", "the collector is stopping, retry later");
        r->ran = true;
        MHD_resume_connection(c);
    }
    return MHD_YES;
}

/* The work's answer, back on the network thread. */
static enum MHD_Result deliver(struct MHD_Connection *c, co_http *h, req *r, const char *method,
                               const char *url)
{
    r->ran = false;
    if (r->rt->kind == H_METRICS && r->out_status == 200) {
        char *text = r->out_text;
        r->out_text = NULL;
        if (!text) return respond(c, h, r, method, url, 500, co_api_error("", "out of memory"));
        log_request(r, method, url, 200, NULL);
        co_metrics_request(h->deps.metrics, r->route_idx, 200);
        enum MHD_Result ok = queue_text(c, r, 200, text, r->out_len, METRICS_TYPE);
        r->answered = ok == MHD_YES;
        return ok;
    }
    json_t *body = r->out_body;
    r->out_body = NULL;
    return respond(c, h, r, method, url, r->out_status, body);
}

/* Final call: the whole request is here. What needs the connection is read here; the work
 * (decode and commit, a query, a login) runs on the pool. */
static enum MHD_Result finish(struct MHD_Connection *c, co_http *h, req *r, const char *method,
                              const char *url)
{
    switch (r->rt->kind) {
    case H_INGEST:
        co_metrics_ingest_bytes(h->deps.metrics, r->wire_bytes);
        if (r->gzip && !r->z_end) {
            co_metrics_ingest(h->deps.metrics, CO_INGEST_REJECTED, 0);
            return respond(c, h, r, method, url, 400, co_api_error("", "truncated gzip body"));
        }
        break;
    case H_API:
        if (r->write) {
            if (r->len > CO_SETTINGS_MAX_BODY)
                return respond(c, h, r, method, url, 413,
                               co_api_error("", "body larger than %d bytes", CO_SETTINGS_MAX_BODY));
            break;
        }
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &r->args);
        if (r->args.overflow)
            return respond(c, h, r, method, url, 400,
                           co_api_error("", "more than %d query parameters", CO_QUERY_MAX_ARGS));
        size_t plen = strlen(r->rt->path);
        if (r->rt->path[plen - 1] == '/') {
            if (r->args.n == CO_QUERY_MAX_ARGS)
                return respond(
                    c, h, r, method, url, 400,
                    co_api_error("", "more than %d query parameters", CO_QUERY_MAX_ARGS - 1));
            r->args.args[r->args.n++] = (co_query_arg){"_path", url + plen};
        }
        break;
    case H_LOGIN:
        r->hdr = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        break;
    case H_LOGOUT:
        r->hdr = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE);
        break;
    case H_ME: {
        json_t *body = NULL;
        unsigned status = co_access_me(&r->caller, &body);
        return respond(c, h, r, method, url, status, body);
    }
    case H_WEB:
        return serve_web(c, h, r, method, url);
    case H_METRICS:
        break;
    }
    return dispatch(c, h, r, method, url);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    co_http *h = cls;
    req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *con_cls = r;
        atomic_fetch_add(&h->inflight, 1);
        r->t0 = cm_mono_ms();
        r->scope = co_scope_all;
        r->route_idx = NROUTES;
        for (size_t i = 0; i < NROUTES; i++) {
            size_t n = strlen(routes[i].path);
            bool prefix = n > 1 && routes[i].path[n - 1] == '/';
            if (prefix ? strncmp(url, routes[i].path, n) == 0 : strcmp(url, routes[i].path) == 0) {
                r->rt = &routes[i];
                r->route_idx = i;
            }
        }
        peer_of(c, r->peer, sizeof r->peer, r->addr, sizeof r->addr);
        client_of(c, h, r);
        unsigned status = 0;
        json_t *body = NULL;
        int b = begin(c, h, r, method, &status, &body);
        if (r->caller.set_cookie[0]) /* the session's expiry slid: so does the cookie's */
            snprintf(r->set_cookie, sizeof r->set_cookie, "%s", r->caller.set_cookie);
        if (b != 0) {
            /* With a body to come, answer now (MHD then closes the connection instead of
             * reading it); without one, answer at the final call and keep the connection. */
            if (has_body(c)) return respond(c, h, r, method, url, status, body);
            r->pending = status;
            r->pending_body = body;
        }
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->answered || r->pending || !r->rt || !r->want_body) {
            /* Discard what follows a decision, but do not read an endless body for it. */
            r->discarded += n;
            return r->discarded > h->max_body ? MHD_NO : MHD_YES;
        }
        json_t *body = NULL;
        unsigned st = feed(r, upload_data, n, &body);
        if (st) {
            co_metrics_ingest(h->deps.metrics, st == 503 ? CO_INGEST_FAILED : CO_INGEST_REJECTED,
                              0);
            co_metrics_ingest_bytes(h->deps.metrics, r->wire_bytes);
            /* Free the body now: never hold more than the limit. */
            free(r->buf);
            r->buf = NULL;
            r->len = r->cap = 0;
            r->pending = st;
            r->pending_body = body;
        }
        return MHD_YES;
    }
    if (r->ran) return deliver(c, h, r, method, url);
    if (r->answered) return MHD_YES;
    if (r->pending) {
        json_t *body = r->pending_body;
        r->pending_body = NULL;
        return respond(c, h, r, method, url, r->pending, body);
    }
    return finish(c, h, r, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    co_http *h = cls;
    req *r = *con_cls;
    if (!r) return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && toe != MHD_REQUEST_TERMINATED_CLIENT_ABORT)
        cm_debug("http: request from %s ended early (%d)", r->peer, (int)toe);
    if (r->z_init) inflateEnd(&r->z);
    json_decref(r->pending_body);
    json_decref(r->out_body);
    free(r->out_text);
    free(r->buf);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&h->inflight, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == '\r'))
        msg[--l] = '\0';
    cm_log_limited("mhd", 10, CM_LOG_WARN, "http: %s", msg);
}

int co_http_start(co_http **out, const co_config *cfg, const co_http_deps *deps, char *err,
                  size_t errlen)
{
    co_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->deps = *deps;
    h->max_body = cfg->max_body_bytes;
    h->proxies = cfg->trusted_proxies;
    atomic_init(&h->inflight, 0);
    atomic_init(&h->stopping, 0);
    if (co_workpool_start(&h->pool, (unsigned)cfg->threads, err, errlen) != 0) {
        free(h);
        return -1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    /* Network threads read, inflate and answer; the pool's threads do the work. */
    unsigned io_threads = cfg->threads < 2 ? 1 : (unsigned)cfg->threads / 2;
    if (io_threads > NET_THREADS_MAX) io_threads = NET_THREADS_MAX;
    if (cfg->addr.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    uint16_t port =
        ntohs(cfg->addr.ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)&cfg->addr)->sin6_port
                                              : ((const struct sockaddr_in *)&cfg->addr)->sin_port);
    unsigned timeout_s = (unsigned)((cfg->timeout_ms + 999) / 1000);
    h->d = MHD_start_daemon(
        flags, port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&cfg->addr, MHD_OPTION_THREAD_POOL_SIZE,
        io_threads, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_CONNECTION_LIMIT,
        cfg->max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "cannot listen on %s (address in use, or not permitted?)",
                 cfg->listen);
        co_workpool_stop(h->pool);
        free(h);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : 0;
    *out = h;
    return 0;
}

unsigned co_http_port(const co_http *h)
{
    return h->port;
}

void co_http_stop(co_http *h, long grace_ms)
{
    if (!h) return;
    /* New requests are answered 503 (Retry-After) while those in flight finish. Not
     * MHD_quiesce_daemon: with a thread pool on epoll, libmicrohttpd 0.9.75 races its workers
     * removing the listen socket from their epoll sets and aborts ("Failed to remove listen
     * FD from epoll set"). */
    atomic_store(&h->stopping, 1);
    int64_t deadline = cm_mono_ms() + grace_ms;
    while (atomic_load(&h->inflight) > 0 && cm_mono_ms() < deadline)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    long left = atomic_load(&h->inflight);
    if (left > 0) cm_warn("http: stopping with %ld request(s) still in flight", left);
    /* Queued work finishes and resumes its connection before MHD stops: it must not stop
     * with a connection suspended. */
    co_workpool_stop(h->pool);
    MHD_stop_daemon(h->d);
    free(h);
}

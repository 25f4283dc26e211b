/* http.c — the HTTP driver (JSON, and SOAP/XML): the profile's "requests" (http_profile.h) one
 * after another over libcurl multi on the libuv loop, each answer mapped to samples by
 * ag_http_map or ag_http_map_xml.
 *
 * Sessions: when the first request carries "session" it is a login, run when the driver holds
 * no session id (the first poll, or after a session error); its answer yields the id that
 * ${session} stands for in the later requests' templates. A request whose answer is a session
 * error (login's "session_error": HTTP 500 by default, or a fault element) triggers one new
 * login and is sent again, once per poll; the login refused (401, 403 or a session-error
 * status) is auth. Bodies from templates carry ${username}/${password} XML- or JSON-escaped.
 *
 * libcurl runs on the loop through curl_uv.h (shared with the uploader): one multi and one
 * easy handle per device. done is delivered from a zero-delay timer, never from inside poll().
 * TLS certificates are verified unless tls_verify = no; basic auth from username/password
 * (never logged); each request is bounded by the device timeout and answers by 1 MiB.
 * Status: curl timeout → timeout; cannot connect/resolve → refused; 401/403 → auth; other
 * non-2xx, invalid JSON, answers too large → protocol (logged, rate-limited, naming the device
 * and the path). Values the profile cannot map are logged (rate-limited); the poll stays ok. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curl_uv.h"
#include "driver.h"
#include "http_profile.h"
#include "log.h"
#include "timeutil.h"
#include "xml_find.h"

#define MAX_ANSWER (1u << 20)
#define LOG_EVERY_S 600
#define DEFAULT_TIMEOUT_MS 5000

typedef struct http_state {
    uv_loop_t *loop;
    const ag_device *dev;
    const ag_profile *prof;
    ag_sink sink;
    ag_http_profile hp;
    char *base_url; /* "https://host:port" */
    char *bearer;   /* "Authorization: Bearer <password>"; wiped on free */
    char *session;  /* from the login answer; wiped on free; NULL = log in first */
    char *body;     /* the expanded template of the request in flight; wiped on free */
    size_t resume;  /* the request to run once the login is done */
    int logged_in;  /* a login ran in this poll: a session error now is final */

    ag_curl_uv *cu;
    CURL *easy;
    struct curl_slist *hdr; /* for the current request */
    uv_timer_t done_h;
    int handles_open; /* done_h and cu, until closed */
    int closing, busy, in_flight;

    size_t req;    /* index of the request in flight */
    int attempts;  /* of this request */
    int64_t ts_ms; /* of the poll: every sample carries it */
    ag_poll_status status;
    char detail[256];
    char *resp;
    size_t resp_len;
    int too_large;
    char curl_err[CURL_ERROR_SIZE];
    ag_http_identity id;
} http_state;

static void start_request(http_state *st);

/* A string that may hold a secret: zeroed, then freed. */
static void wipe_free(char **s)
{
    if (!*s) return;
    memset(*s, 0, strlen(*s));
    free(*s);
    *s = NULL;
}

/* The request in flight for messages: its "name", else its path. */
static const char *what(const http_state *st)
{
    const ag_http_request *r = &st->hp.reqs[st->req];
    return r->name ? r->name : r->path;
}

/* ---- finishing ---------------------------------------------------------------------- */

static void deliver_done(uv_timer_t *t)
{
    http_state *st = t->data;
    if (st->closing || !st->busy) return;
    st->busy = 0;
    /* The sink may call poll() or close() from here: nothing of st is touched after. */
    st->sink.done(st->sink.ud, st->dev, st->status, st->status == AG_POLL_OK ? NULL : st->detail);
}

static void finish(http_state *st, ag_poll_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(http_state *st, ag_poll_status status, const char *fmt, ...)
{
    st->status = status;
    st->detail[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->detail, sizeof st->detail, fmt, ap);
        va_end(ap);
    }
    uv_timer_start(&st->done_h, deliver_done, 0, 0);
}

static void send_inventory(http_state *st)
{
    if (!st->sink.inventory) return;
    cm_device_info info = {0};
    info.id = st->dev->id;
    info.screen = st->dev->screen;
    info.kind = st->dev->kind ? st->dev->kind : st->prof->kind;
    info.vendor = st->id.vendor[0] ? st->id.vendor : st->prof->vendor;
    info.model = st->id.model[0] ? st->id.model : NULL;
    info.serial = st->id.serial[0] ? st->id.serial : NULL;
    info.firmware = st->id.firmware[0] ? st->id.firmware : NULL;
    info.profile = st->prof->name;
    st->sink.inventory(st->sink.ud, st->dev, &info);
}

/* ---- one answer --------------------------------------------------------------------- */

static void emit(void *ud, const char *metric, const char *unit, const cm_label *labels,
                 size_t nlabels, double value)
{
    http_state *st = ud;
    st->sink.point(st->sink.ud, st->dev, metric, unit, labels, nlabels, st->ts_ms, value);
}

static void protocol_error(http_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void protocol_error(http_state *st, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *path = what(st);
    char key[CM_MAX_NAME + 64];
    snprintf(key, sizeof key, "http-proto %s %zu", st->dev->id, st->req);
    cm_log_limited(key, LOG_EVERY_S, CM_LOG_WARN, "http: device %s: %s: %s", st->dev->id, path,
                   why);
    finish(st, AG_POLL_PROTOCOL, "%s: %s", path, why);
}

/* Classify a failed transfer. */
static void transfer_failed(http_state *st, CURLcode res)
{
    const char *path = what(st);
    const char *why = st->curl_err[0] ? st->curl_err : curl_easy_strerror(res);
    switch (res) {
    case CURLE_OPERATION_TIMEDOUT:
        if (st->attempts <= st->dev->retries) {
            start_request(st);
            return;
        }
        finish(st, AG_POLL_TIMEOUT, "%s: no answer within %lld ms", path,
               (long long)(st->dev->timeout_ms > 0 ? st->dev->timeout_ms : DEFAULT_TIMEOUT_MS));
        return;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        finish(st, AG_POLL_REFUSED, "%s: %s", path, why);
        return;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (st->too_large || res == CURLE_FILESIZE_EXCEEDED) {
            protocol_error(st, "answer larger than %u bytes", MAX_ANSWER);
            return;
        }
        break;
    default:
        break;
    }
    protocol_error(st, "%s", why);
}

/* Start request i of this poll (a fresh attempt count). */
static void run(http_state *st, size_t i)
{
    st->req = i;
    st->attempts = 0;
    start_request(st);
}

/* The login request answered. */
static void login_done(http_state *st, long code)
{
    const ag_http_request *login = &st->hp.reqs[0];
    int refused = code == 401 || code == 403;
    for (size_t i = 0; i < login->nerror_status; i++)
        refused |= code == login->error_status[i];
    if (refused) {
        finish(st, AG_POLL_AUTH, "%s: login refused (HTTP %ld): check username/password", what(st),
               code);
        return;
    }
    if (code < 200 || code > 299) {
        protocol_error(st, "login: HTTP %ld", code);
        return;
    }
    char sess[AG_HTTP_MAX_SESSION + 1], why[256];
    if (ag_http_session(login, st->resp ? st->resp : "", st->resp_len, sess, sizeof sess, why,
                        sizeof why) < 0) {
        protocol_error(st, "%s", why);
        return;
    }
    wipe_free(&st->session);
    st->session = strdup(sess);
    memset(sess, 0, sizeof sess);
    if (!st->session) {
        finish(st, AG_POLL_CONFIG, "%s: out of memory", what(st));
        return;
    }
    st->logged_in = 1;
    run(st, st->resume);
}

static void request_done(http_state *st, CURLcode res)
{
    if (res != CURLE_OK) {
        transfer_failed(st, res);
        return;
    }
    const ag_http_request *r = &st->hp.reqs[st->req];
    long code = 0;
    curl_easy_getinfo(st->easy, CURLINFO_RESPONSE_CODE, &code);
    if (r->login) {
        login_done(st, code);
        return;
    }
    const char *resp = st->resp ? st->resp : "";
    if (st->hp.has_login && ag_http_session_lost(&st->hp.reqs[0], r, code, resp, st->resp_len)) {
        if (st->logged_in) {
            protocol_error(st, "session error (HTTP %ld) right after a login", code);
            return;
        }
        wipe_free(&st->session);
        st->resume = st->req;
        run(st, 0);
        return;
    }
    if (code == 401 || code == 403) {
        finish(st, AG_POLL_AUTH, "%s: HTTP %ld (check username/password)", what(st), code);
        return;
    }
    if (code < 200 || code > 299) {
        protocol_error(st, "HTTP %ld", code);
        return;
    }
    char why[256];
    int bad;
    if (r->format == AG_HTTP_XML) {
        if (ag_xml_check(resp, st->resp_len, why, sizeof why) < 0) {
            protocol_error(st, "malformed XML: %s", why);
            return;
        }
        bad = ag_http_map_xml(r, resp, st->resp_len, emit, st, &st->id, why, sizeof why);
        if (bad < 0) {
            protocol_error(st, "malformed XML: %s", why);
            return;
        }
    } else {
        json_error_t jerr;
        json_t *doc = json_loadb(resp, st->resp_len, JSON_DECODE_ANY, &jerr);
        if (!doc) {
            protocol_error(st, "invalid JSON at %d:%d: %s", jerr.line, jerr.column, jerr.text);
            return;
        }
        bad = ag_http_map(r, doc, emit, st, &st->id, why, sizeof why);
        json_decref(doc);
    }
    if (bad > 0) {
        char key[CM_MAX_NAME + 64];
        snprintf(key, sizeof key, "http-map %s %zu", st->dev->id, st->req);
        cm_log_limited(key, LOG_EVERY_S, CM_LOG_WARN,
                       "http: device %s: %s: %d value(s) not mapped (profile %s), first: %s",
                       st->dev->id, what(st), bad, st->prof->name, why);
    }
    st->req++;
    if (st->req < st->hp.nreqs) {
        st->attempts = 0;
        start_request(st);
        return;
    }
    send_inventory(st);
    finish(st, AG_POLL_OK, NULL);
}

/* ---- libcurl ↔ libuv glue (curl_uv.h) ------------------------------------------------ */

static void part_closed(http_state *st)
{
    if (--st->handles_open == 0 && st->closing) free(st);
}

static void timer_closed(uv_handle_t *h)
{
    part_closed(h->data);
}

static void curl_closed(void *ud)
{
    part_closed(ud);
}

static void transfer_done(void *ud, CURL *easy, CURLcode res)
{
    http_state *st = ud;
    if (easy != st->easy || !st->in_flight || st->closing) return;
    st->in_flight = 0;
    request_done(st, res);
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userp)
{
    http_state *st = userp;
    size_t n = size * nmemb;
    if (n > MAX_ANSWER - st->resp_len) {
        st->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    char *r = realloc(st->resp, st->resp_len + n + 1);
    if (!r) return 0;
    memcpy(r + st->resp_len, ptr, n);
    st->resp = r;
    st->resp_len += n;
    r[st->resp_len] = '\0';
    return n;
}

/* ---- requests ------------------------------------------------------------------------ */

/* Append one header line; 0 or -1 (out of memory: the list so far stays in st->hdr). */
static int add_header(http_state *st, const char *line)
{
    struct curl_slist *l = curl_slist_append(st->hdr, line);
    if (!l) return -1;
    st->hdr = l;
    return 0;
}

/* The headers and body of the request in flight. 0, or -1 after finish(). */
static int build_request(http_state *st, const ag_http_request *r)
{
    curl_slist_free_all(st->hdr);
    st->hdr = NULL;
    wipe_free(&st->body);
    int bad = add_header(st, r->format == AG_HTTP_XML
                                 ? "Accept: text/xml, application/xml, application/soap+xml"
                                 : "Accept: application/json");
    bad |= add_header(st, "Expect:"); /* no 100-continue round trip for larger bodies */
    if (r->content_type) {
        char line[160];
        snprintf(line, sizeof line, "Content-Type: %s", r->content_type);
        bad |= add_header(st, line);
    }
    if (r->bearer_token && st->bearer) bad |= add_header(st, st->bearer);
    ag_http_vars vars = {st->dev->username, st->dev->password, st->session};
    char err[160];
    for (size_t i = 0; i < r->nheaders && !bad; i++) {
        char *val = NULL;
        if (ag_http_expand(r->headers[i].value, &vars, 0, 1, &val, err, sizeof err) < 0) {
            finish(st, AG_POLL_CONFIG, "%s: header %s: %s", what(st), r->headers[i].key, err);
            return -1;
        }
        size_t n = strlen(r->headers[i].key) + strlen(val) + 3;
        char *line = malloc(n);
        if (line) {
            snprintf(line, n, "%s: %s", r->headers[i].key, val);
            bad |= add_header(st, line);
            wipe_free(&line);
        } else {
            bad = 1;
        }
        wipe_free(&val);
    }
    if (!bad && r->tmpl) {
        int xml = !r->content_type || !strstr(r->content_type, "json");
        if (ag_http_expand(r->tmpl, &vars, xml, 0, &st->body, err, sizeof err) < 0) {
            finish(st, AG_POLL_CONFIG, "%s: %s", what(st), err);
            return -1;
        }
    }
    if (bad) {
        finish(st, AG_POLL_CONFIG, "%s: cannot build the request (out of memory)", what(st));
        return -1;
    }
    return 0;
}

static void start_request(http_state *st)
{
    const ag_http_request *r = &st->hp.reqs[st->req];
    st->attempts++;
    free(st->resp);
    st->resp = NULL;
    st->resp_len = 0;
    st->too_large = 0;
    st->curl_err[0] = '\0';
    if (build_request(st, r) < 0) return;
    char url[2048];
    int n = snprintf(url, sizeof url, "%s%s", st->base_url, r->path);
    if (n < 0 || (size_t)n >= sizeof url) {
        finish(st, AG_POLL_CONFIG, "%s: cannot build the request", what(st));
        return;
    }
    CURL *e = st->easy;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, st->hdr) != CURLE_OK;
    if (r->post) {
        const char *body = st->body ? st->body : r->body ? r->body : "";
        bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
        bad |=
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body)) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, body) != CURLE_OK;
    } else {
        bad |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) != CURLE_OK;
    }
    /* basic auth unless this request sends the password as a bearer token, or the profile
     * logs in with its own request */
    int basic = st->dev->username && st->dev->username[0] && !r->bearer_token && !st->hp.has_login;
    bad |=
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, basic ? CURLAUTH_BASIC : CURLAUTH_NONE) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERNAME, basic ? st->dev->username : NULL) != CURLE_OK;
    bad |=
        curl_easy_setopt(e, CURLOPT_PASSWORD,
                         basic ? (st->dev->password ? st->dev->password : "") : NULL) != CURLE_OK;
    if (bad) {
        finish(st, AG_POLL_CONFIG, "%s: libcurl refused an option", what(st));
        return;
    }
    CURLMcode mc = ag_curl_uv_add(st->cu, e);
    if (mc != CURLM_OK) {
        finish(st, AG_POLL_PROTOCOL, "%s: cannot start: %s", what(st), curl_multi_strerror(mc));
        return;
    }
    st->in_flight = 1;
}

/* ---- the driver interface ------------------------------------------------------------ */

static void free_state_strings(http_state *st)
{
    ag_http_profile_free(&st->hp);
    free(st->base_url);
    st->base_url = NULL;
    wipe_free(&st->bearer);
    curl_slist_free_all(st->hdr);
    st->hdr = NULL;
    free(st->resp);
    st->resp = NULL;
    wipe_free(&st->session);
    wipe_free(&st->body);
}

static int setup_easy(http_state *st)
{
    CURL *e = st->easy;
    int64_t to = st->dev->timeout_ms > 0 ? st->dev->timeout_ms : DEFAULT_TIMEOUT_MS;
    int verify = !st->dev->tls || st->dev->tls_verify;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)to) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, st) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, st->curl_err) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_ANSWER) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "cinemon-agent") != CURLE_OK;
    return bad ? -1 : 0;
}

static int drv_open(uv_loop_t *loop, const ag_device *dev, const ag_profile_set *profiles,
                    const ag_sink *sink, void **state, char *err, size_t errlen)
{
    *state = NULL;
    const ag_profile *prof;
    if (ag_driver_check_device("http", dev, sink, 1, err, errlen) < 0 ||
        ag_driver_profile("http", dev, profiles, NULL, &prof, err, errlen) < 0)
        return -1;
    if (!prof->doc) {
        snprintf(err, errlen, "device %s: profile '%s' has no http section", dev->id,
                 dev->profile);
        return -1;
    }
    for (const char *p = dev->address; *p; p++)
        if (*p == '/' || *p == '@' || *p == '?' || *p == '#' || (unsigned char)*p <= 0x20) {
            snprintf(err, errlen, "device %s: address must be a host name or IP address", dev->id);
            return -1;
        }
    http_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->loop = loop;
    st->dev = dev;
    st->prof = prof;
    st->sink = *sink;
    if (ag_http_profile_parse(prof->path ? prof->path : prof->name, prof->doc, &st->hp, err,
                              errlen) < 0) {
        free(st);
        return -1;
    }
    int v6 = strchr(dev->address, ':') != NULL && dev->address[0] != '[';
    size_t ulen = strlen(dev->address) + 32;
    st->base_url = malloc(ulen);
    if (st->base_url)
        snprintf(st->base_url, ulen, "%s://%s%s%s:%d", dev->tls ? "https" : "http", v6 ? "[" : "",
                 dev->address, v6 ? "]" : "", dev->port);
    if (dev->password && dev->password[0]) {
        size_t blen = strlen(dev->password) + 32;
        st->bearer = malloc(blen);
        if (st->bearer) snprintf(st->bearer, blen, "Authorization: Bearer %s", dev->password);
    }
    st->easy = curl_easy_init();
    if (!st->base_url || (dev->password && dev->password[0] && !st->bearer) || !st->easy ||
        setup_easy(st) < 0 || !(st->cu = ag_curl_uv_new(loop, transfer_done, st))) {
        snprintf(err, errlen, "device %s: cannot set up libcurl", dev->id);
        if (st->easy) curl_easy_cleanup(st->easy);
        free_state_strings(st);
        free(st);
        return -1;
    }
    uv_timer_init(loop, &st->done_h);
    st->done_h.data = st;
    st->handles_open = 2;
    *state = st;
    return 0;
}

static int drv_poll(void *state)
{
    http_state *st = state;
    if (!st || st->busy || st->closing) return -1;
    st->busy = 1;
    st->status = AG_POLL_OK;
    st->ts_ms = cm_now_ms();
    st->logged_in = 0;
    memset(&st->id, 0, sizeof st->id);
    /* curl starts from its timer callback: never done from here */
    size_t first = st->hp.has_login ? 1 : 0;
    st->resume = first;
    run(st, st->hp.has_login && !st->session ? 0 : first);
    return 0;
}

static void drv_close(void *state)
{
    http_state *st = state;
    if (!st || st->closing) return;
    st->closing = 1;
    if (st->in_flight) ag_curl_uv_remove(st->cu, st->easy);
    st->in_flight = 0;
    curl_easy_cleanup(st->easy);
    st->easy = NULL;
    ag_curl_uv_close(st->cu, curl_closed);
    st->cu = NULL;
    free_state_strings(st);
    uv_timer_stop(&st->done_h);
    uv_close((uv_handle_t *)&st->done_h, timer_closed);
}

const ag_driver_ops ag_http_driver = {
    .name = "http",
    .open = drv_open,
    .poll = drv_poll,
    .close = drv_close,
};

/* uploader.c — POSTs sealed batches to the collector: libcurl multi on the libuv loop.
 *
 * The socket/timer glue follows curl's docs/examples/multi-uv.c: curl tells us which sockets
 * to watch (CURLMOPT_SOCKETFUNCTION → one uv_poll_t per socket) and when to call it back
 * (CURLMOPT_TIMERFUNCTION → one uv_timer_t); we report readiness with curl_multi_socket_action.
 * One easy handle, one batch in flight, the queue's head first. */
#include "uploader.h"

#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"
#include "timeutil.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_BACKOFF_BASE_MS 1000
#define DEFAULT_BACKOFF_CAP_MS 60000
#define MAX_RETRY_AFTER_S 3600 /* a collector asking for more is clamped to this */
#define MAX_RESPONSE 65536     /* bytes of answer kept; the rest is ignored */
#define LOG_EVERY_S 60

typedef struct job {
    struct job *next;
    uint64_t seq;
    char *data; /* gzip of the body, or the raw body when compression failed */
    size_t len;
    int gzipped;
} job;

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    ag_uploader *u;
    struct sock_ctx *prev, *next;
} sock_ctx;

enum state { IDLE, SENDING, WAITING };

struct ag_uploader {
    uv_loop_t *loop;
    CURLM *multi;
    CURL *easy;
    uv_timer_t curl_timer;  /* CURLMOPT_TIMERFUNCTION */
    uv_timer_t retry_timer; /* backoff between attempts */
    struct curl_slist *hdr_gzip, *hdr_plain;
    char *url;
    char *auth; /* "Authorization: Bearer <token>", wiped on free */
    int64_t timeout_ms, base_ms, cap_ms;
    job *head, *tail;
    size_t njobs;
    enum state state;
    unsigned attempt; /* consecutive failures of the head batch */
    uint64_t rng;
    char *resp;
    size_t resp_len;
    char curl_err[CURL_ERROR_SIZE];
    sock_ctx *socks;
    int handles_open; /* uv handles not yet closed */
    int closing;
    ag_uploader_stats stats;
};

static void start_next(ag_uploader *u);

/* ---- helpers ---------------------------------------------------------------------------- */

static uint64_t rng_next(ag_uploader *u)
{
    /* xorshift64*: jitter only, no secrecy needed */
    u->rng ^= u->rng >> 12;
    u->rng ^= u->rng << 25;
    u->rng ^= u->rng >> 27;
    return u->rng * 0x2545F4914F6CDD1DULL;
}

/* Full jitter: uniform in [0, min(cap, base * 2^attempt)]. */
static int64_t backoff_ms(ag_uploader *u)
{
    int64_t ceil = u->base_ms;
    for (unsigned i = 0; i < u->attempt && ceil < u->cap_ms; i++)
        ceil *= 2;
    if (ceil > u->cap_ms) ceil = u->cap_ms;
    return (int64_t)(rng_next(u) % ((uint64_t)ceil + 1));
}

static int gzip_body(const char *in, size_t len, char **out, size_t *outlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return -1;
    uLong bound = deflateBound(&zs, (uLong)len);
    char *buf = len <= UINT_MAX && bound <= UINT_MAX ? malloc(bound ? bound : 1) : NULL;
    if (!buf) {
        free(buf);
        deflateEnd(&zs);
        return -1;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)buf;
    zs.avail_out = (uInt)bound;
    int rc = deflate(&zs, Z_FINISH);
    size_t n = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = n;
    return 0;
}

/* Copy an untrusted string for a log line: printable ASCII only, bounded. */
static void sanitize(const char *s, char *out, size_t outlen)
{
    size_t j = 0;
    for (size_t i = 0; s && s[i] && j + 1 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[j] = '\0';
}

static void job_free(job *j)
{
    if (!j) return;
    free(j->data);
    free(j);
}

static job *pop_head(ag_uploader *u)
{
    job *j = u->head;
    if (!j) return NULL;
    u->head = j->next;
    if (!u->head) u->tail = NULL;
    u->njobs--;
    return j;
}

static void handle_closed(uv_handle_t *h)
{
    ag_uploader *u = h->data;
    if (h->type == UV_POLL) {
        sock_ctx *c = (sock_ctx *)h;
        if (c->prev)
            c->prev->next = c->next;
        else
            u->socks = c->next;
        if (c->next) c->next->prev = c->prev;
        free(c);
    }
    if (--u->handles_open == 0 && u->closing) free(u);
}

/* ---- libcurl ↔ libuv glue ------------------------------------------------------------- */

static void check_done(ag_uploader *u);

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_ctx *c = (sock_ctx *)p;
    ag_uploader *u = c->u;
    int flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (!status && (events & UV_READABLE)) flags |= CURL_CSELECT_IN;
    if (!status && (events & UV_WRITABLE)) flags |= CURL_CSELECT_OUT;
    int running = 0;
    curl_multi_socket_action(u->multi, c->fd, flags, &running);
    check_done(u);
}

static void on_curl_timer(uv_timer_t *t)
{
    ag_uploader *u = t->data;
    int running = 0;
    curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(u);
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    ag_uploader *u = userp;
    if (u->closing) return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&u->curl_timer);
    else
        uv_timer_start(&u->curl_timer, on_curl_timer, timeout_ms ? (uint64_t)timeout_ms : 1, 0);
    return 0;
}

static int curl_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    ag_uploader *u = userp;
    sock_ctx *c = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (c) {
            uv_poll_stop(&c->poll);
            uv_close((uv_handle_t *)&c->poll, handle_closed);
        }
        return 0;
    }
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) return -1;
        if (uv_poll_init_socket(u->loop, &c->poll, s) != 0) {
            free(c);
            return -1;
        }
        c->fd = s;
        c->u = u;
        c->poll.data = u;
        c->next = u->socks;
        if (u->socks) u->socks->prev = c;
        u->socks = c;
        u->handles_open++;
        curl_multi_assign(u->multi, s, c);
    }
    int ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev |= UV_WRITABLE;
    uv_poll_start(&c->poll, ev, on_poll);
    return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userp)
{
    ag_uploader *u = userp;
    size_t n = size * nmemb;
    size_t room = MAX_RESPONSE - u->resp_len;
    size_t take = n < room ? n : room;
    if (take) {
        char *r = realloc(u->resp, u->resp_len + take + 1);
        if (!r) return n; /* keep what we have; the answer will look malformed */
        memcpy(r + u->resp_len, ptr, take);
        u->resp = r;
        u->resp_len += take;
        r[u->resp_len] = '\0';
    }
    return n;
}

/* ---- the upload state machine ----------------------------------------------------------- */

static void on_retry(uv_timer_t *t)
{
    ag_uploader *u = t->data;
    u->state = IDLE;
    start_next(u);
}

/* The head batch failed this attempt: wait delay_ms, then send it again. */
static void retry_later(ag_uploader *u, int64_t delay_ms)
{
    u->stats.failures++;
    u->attempt++;
    u->state = WAITING;
    uv_timer_start(&u->retry_timer, on_retry, (uint64_t)delay_ms, 0);
}

static void finish_head(ag_uploader *u)
{
    job_free(pop_head(u));
    u->attempt = 0;
    u->state = IDLE;
}

/* Parse {"error": "...", "at": "..."} for the log line. */
static void log_rejected(ag_uploader *u, uint64_t seq, long code)
{
    char msg[256] = "", at[128] = "";
    json_t *root = u->resp ? json_loadb(u->resp, u->resp_len, 0, NULL) : NULL;
    if (json_is_object(root)) {
        sanitize(json_string_value(json_object_get(root, "error")), msg, sizeof msg);
        sanitize(json_string_value(json_object_get(root, "at")), at, sizeof at);
    }
    json_decref(root);
    cm_error("upload: collector rejected batch %llu (HTTP %ld%s): %s%s%s; set aside",
             (unsigned long long)seq, code, code == 413 ? ", too large" : "",
             *msg ? msg : "no error message", *at ? " at " : "", at);
}

static int ack_matches(ag_uploader *u, uint64_t seq)
{
    json_t *root = u->resp ? json_loadb(u->resp, u->resp_len, 0, NULL) : NULL;
    json_t *ack = json_object_get(root, "ack");
    int ok = json_is_integer(ack) && json_integer_value(ack) >= 0 &&
             (uint64_t)json_integer_value(ack) == seq;
    json_decref(root);
    return ok;
}

static void on_done(ag_uploader *u, CURLcode res)
{
    job *j = u->head;
    uint64_t seq = j->seq;
    if (res != CURLE_OK) {
        cm_log_limited("upload-net", LOG_EVERY_S, CM_LOG_WARN, "upload: batch %llu to %s: %s",
                       (unsigned long long)seq, u->url,
                       u->curl_err[0] ? u->curl_err : curl_easy_strerror(res));
        retry_later(u, backoff_ms(u));
        return;
    }
    long code = 0;
    curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code == 200) {
        if (ack_matches(u, seq)) {
            u->stats.acked++;
            u->stats.last_ack_ms = cm_now_ms();
            finish_head(u);
        } else {
            cm_log_limited("upload-ack", LOG_EVERY_S, CM_LOG_ERROR,
                           "upload: batch %llu: collector answered 200 without "
                           "{\"ack\": %llu}; will retry",
                           (unsigned long long)seq, (unsigned long long)seq);
            retry_later(u, backoff_ms(u));
        }
        return;
    }
    if (code == 400 || code == 413) {
        log_rejected(u, seq, code);
        u->stats.rejected++;
        finish_head(u);
        return;
    }
    if (code == 401 || code == 403) {
        cm_log_limited("upload-auth", LOG_EVERY_S, CM_LOG_ERROR,
                       "upload: collector %s refused our credentials (HTTP %ld): check the "
                       "token file; batches are kept and retried",
                       u->url, code);
        retry_later(u, u->cap_ms);
        return;
    }
    int64_t delay = backoff_ms(u);
    curl_off_t ra = -1;
    if (curl_easy_getinfo(u->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0) {
        if (ra > MAX_RETRY_AFTER_S) ra = MAX_RETRY_AFTER_S;
        if (ra * 1000 > delay) delay = (int64_t)ra * 1000;
    }
    cm_log_limited("upload-http", LOG_EVERY_S, CM_LOG_WARN,
                   "upload: batch %llu: collector answered HTTP %ld; retrying in %lld ms",
                   (unsigned long long)seq, code, (long long)delay);
    retry_later(u, delay);
}

static void check_done(ag_uploader *u)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(u->multi, &left))) {
        if (m->msg != CURLMSG_DONE || m->easy_handle != u->easy) continue;
        CURLcode res = m->data.result;
        curl_multi_remove_handle(u->multi, u->easy);
        if (u->state != SENDING || !u->head) continue;
        on_done(u, res);
        start_next(u);
    }
}

static void start_next(ag_uploader *u)
{
    if (u->closing || u->state != IDLE || !u->head) return;
    job *j = u->head;
    free(u->resp);
    u->resp = NULL;
    u->resp_len = 0;
    u->curl_err[0] = '\0';
    curl_easy_setopt(u->easy, CURLOPT_HTTPHEADER, j->gzipped ? u->hdr_gzip : u->hdr_plain);
    curl_easy_setopt(u->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->len);
    curl_easy_setopt(u->easy, CURLOPT_POSTFIELDS, j->data);
    CURLMcode mc = curl_multi_add_handle(u->multi, u->easy);
    u->stats.attempts++;
    if (mc != CURLM_OK) {
        cm_log_limited("upload-multi", LOG_EVERY_S, CM_LOG_ERROR, "upload: cannot start: %s",
                       curl_multi_strerror(mc));
        retry_later(u, backoff_ms(u));
        return;
    }
    u->state = SENDING;
}

/* ---- public interface ------------------------------------------------------------------- */

static int setup_easy(ag_uploader *u)
{
    CURL *e = u->easy;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, u->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)u->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, u) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, u->curl_err) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "cinemon-agent") != CURLE_OK;
    return bad ? -1 : 0;
}

int ag_uploader_open(ag_uploader **out, uv_loop_t *loop, const ag_uploader_opts *opts, char *err,
                     size_t errlen)
{
    *out = NULL;
    if (!opts->url || !*opts->url || !opts->token) {
        snprintf(err, errlen, "uploader: url and token are required");
        return -1;
    }
    if (strpbrk(opts->token, "\r\n")) {
        snprintf(err, errlen, "uploader: the token contains a line break");
        return -1;
    }
    ag_uploader *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    u->loop = loop;
    u->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    u->base_ms = opts->backoff_base_ms > 0 ? opts->backoff_base_ms : DEFAULT_BACKOFF_BASE_MS;
    u->cap_ms = opts->backoff_cap_ms > 0 ? opts->backoff_cap_ms : DEFAULT_BACKOFF_CAP_MS;
    if (u->cap_ms < u->base_ms) u->cap_ms = u->base_ms;
    if (getrandom(&u->rng, sizeof u->rng, GRND_NONBLOCK) != (ssize_t)sizeof u->rng)
        u->rng = (uint64_t)cm_mono_ms() ^ ((uint64_t)getpid() << 32);
    if (!u->rng) u->rng = 0x9E3779B97F4A7C15ULL;

    u->url = strdup(opts->url);
    size_t alen = strlen(opts->token) + sizeof "Authorization: Bearer ";
    u->auth = malloc(alen);
    if (!u->url || !u->auth) goto oom;
    snprintf(u->auth, alen, "Authorization: Bearer %s", opts->token);
    const char *common[] = {"Content-Type: application/json", "Expect:", u->auth};
    for (size_t i = 0; i < sizeof common / sizeof *common; i++) {
        struct curl_slist *a = curl_slist_append(u->hdr_plain, common[i]);
        if (!a) goto oom;
        u->hdr_plain = a;
        a = curl_slist_append(u->hdr_gzip, common[i]);
        if (!a) goto oom;
        u->hdr_gzip = a;
    }
    struct curl_slist *a = curl_slist_append(u->hdr_gzip, "Content-Encoding: gzip");
    if (!a) goto oom;
    u->hdr_gzip = a;

    u->multi = curl_multi_init();
    u->easy = curl_easy_init();
    if (!u->multi || !u->easy) goto oom;
    if (setup_easy(u) != 0) {
        snprintf(err, errlen, "uploader: libcurl refused an option (url %s)", u->url);
        goto fail;
    }
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);

    if (uv_timer_init(loop, &u->curl_timer) != 0 || uv_timer_init(loop, &u->retry_timer) != 0) {
        snprintf(err, errlen, "uploader: cannot create loop timers");
        goto fail; /* uv_timer_init cannot fail on Linux; nothing to close */
    }
    u->curl_timer.data = u;
    u->retry_timer.data = u;
    u->handles_open = 2;
    *out = u;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    if (u->easy) curl_easy_cleanup(u->easy);
    if (u->multi) curl_multi_cleanup(u->multi);
    curl_slist_free_all(u->hdr_gzip);
    curl_slist_free_all(u->hdr_plain);
    if (u->auth) explicit_bzero(u->auth, strlen(u->auth));
    free(u->auth);
    free(u->url);
    free(u);
    return -1;
}

void ag_uploader_enqueue(ag_uploader *u, uint64_t seq, char *body, size_t len)
{
    job *j = calloc(1, sizeof *j);
    if (!j) {
        /* Out of memory: the batch is lost from memory (the spool will keep it later). */
        cm_error("upload: out of memory queueing batch %llu", (unsigned long long)seq);
        free(body);
        return;
    }
    j->seq = seq;
    if (gzip_body(body, len, &j->data, &j->len) == 0) {
        j->gzipped = 1;
        free(body);
    } else {
        j->data = body;
        j->len = len;
    }
    if (u->tail)
        u->tail->next = j;
    else
        u->head = j;
    u->tail = j;
    u->njobs++;
    start_next(u);
}

size_t ag_uploader_pending(const ag_uploader *u)
{
    return u->njobs;
}

void ag_uploader_stats_get(const ag_uploader *u, ag_uploader_stats *out)
{
    *out = u->stats;
}

void ag_uploader_close(ag_uploader *u)
{
    if (!u || u->closing) return;
    u->closing = 1;
    if (u->state == SENDING) curl_multi_remove_handle(u->multi, u->easy);
    curl_easy_cleanup(u->easy);
    curl_multi_cleanup(u->multi); /* may still call curl_socket_cb with CURL_POLL_REMOVE */
    u->easy = NULL;
    u->multi = NULL;
    for (sock_ctx *c = u->socks; c; c = c->next)
        if (!uv_is_closing((uv_handle_t *)&c->poll)) {
            uv_poll_stop(&c->poll);
            uv_close((uv_handle_t *)&c->poll, handle_closed);
        }
    while (u->head)
        job_free(pop_head(u));
    curl_slist_free_all(u->hdr_gzip);
    curl_slist_free_all(u->hdr_plain);
    u->hdr_gzip = u->hdr_plain = NULL;
    explicit_bzero(u->auth, strlen(u->auth));
    free(u->auth);
    free(u->url);
    free(u->resp);
    u->auth = u->url = u->resp = NULL;
    uv_close((uv_handle_t *)&u->curl_timer, handle_closed);
    uv_close((uv_handle_t *)&u->retry_timer, handle_closed);
}

/* test_notify.c — webhook notifications against a real HTTP receiver (libmicrohttpd on
 * 127.0.0.1, free port): retries with one Idempotency-Key and exactly one 2xx, Retry-After,
 * HMAC signature, rate limit, permanent 4xx, max age, queue_full, filters, restore, shutdown
 * in flight, the [webhook] config parser and URL redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "collector/notify.h"
#include "conf.h"
#include "timeutil.h"

/* ---- the receiver ----------------------------------------------------------------------- */

enum mode { MODE_SCRIPT, MODE_OK, MODE_400, MODE_SLOW };

#define MAXREQ 256

typedef struct req {
    char key[256], sig[160], auth[160];
    char *body;
    int64_t t_ms;
    int status;
} req;

typedef struct rx {
    struct MHD_Daemon *d;
    unsigned port;
    enum mode mode;
    pthread_mutex_t mu;
    req reqs[MAXREQ];
    int n;
    atomic_int started, release;
} rx;

typedef struct conn {
    char *buf;
    size_t len;
} conn;

static int attempts_for(rx *r, const char *key)
{
    int k = 0;
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->reqs[i].key, key) == 0) k++;
    return k;
}

static void copy_hdr(struct MHD_Connection *c, const char *name, char *out, size_t len)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    snprintf(out, len, "%s", v ? v : "");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)url;
    (void)method;
    (void)version;
    rx *r = cls;
    conn *cn = *con_cls;
    if (!cn) {
        cn = calloc(1, sizeof *cn);
        *con_cls = cn;
        r->started = 1;
        return MHD_YES;
    }
    if (*upload_size) {
        cn->buf = realloc(cn->buf, cn->len + *upload_size + 1);
        memcpy(cn->buf + cn->len, upload, *upload_size);
        cn->len += *upload_size;
        cn->buf[cn->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->mode == MODE_SLOW)
        for (int i = 0; i < 300 && !r->release; i++)
            usleep(10000);
    pthread_mutex_lock(&r->mu);
    int status = 200;
    const char *retry_after = NULL;
    char key[256];
    copy_hdr(c, "Idempotency-Key", key, sizeof key);
    if (r->mode == MODE_400) status = 400;
    if (r->mode == MODE_SCRIPT) {
        int k = attempts_for(r, key);
        if (k == 0) status = 503;
        if (k == 1) {
            status = 500;
            retry_after = "1";
        }
    }
    if (r->n < MAXREQ) {
        req *q = &r->reqs[r->n++];
        snprintf(q->key, sizeof q->key, "%s", key);
        copy_hdr(c, "X-Cinemon-Signature", q->sig, sizeof q->sig);
        copy_hdr(c, "Authorization", q->auth, sizeof q->auth);
        q->body = cn->buf ? cn->buf : strdup("");
        cn->buf = NULL;
        q->t_ms = cm_mono_ms();
        q->status = status;
    }
    pthread_mutex_unlock(&r->mu);
    static const char answer[] = "{}";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof answer - 1, (void *)answer, MHD_RESPMEM_PERSISTENT);
    if (retry_after) MHD_add_response_header(resp, "Retry-After", retry_after);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    conn *cn = *con_cls;
    if (cn) {
        free(cn->buf);
        free(cn);
    }
    *con_cls = NULL;
}

static rx *rx_start(enum mode m)
{
    rx *r = calloc(1, sizeof *r);
    r->mode = m;
    pthread_mutex_init(&r->mu, NULL);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                            NULL, NULL, handler, r, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, r, MHD_OPTION_END);
    assert_non_null(r->d);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(di);
    r->port = di->port;
    assert_true(r->port > 0);
    return r;
}

static int rx_count(rx *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void rx_stop(rx *r)
{
    r->release = 1;
    MHD_stop_daemon(r->d);
    for (int i = 0; i < r->n; i++)
        free(r->reqs[i].body);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ---- the callback recorder -------------------------------------------------------------- */

#define MAXEV 256

typedef struct event {
    char id[64], target[32], error[200];
    unsigned attempt;
    long status;
    int delivered, final;
    int64_t t_ms;
} event;

typedef struct rec {
    pthread_mutex_t mu;
    event evs[MAXEV];
    int n;
} rec;

static void on_attempt(void *ud, const co_notify_attempt *a)
{
    rec *r = ud;
    pthread_mutex_lock(&r->mu);
    if (r->n < MAXEV) {
        event *e = &r->evs[r->n++];
        snprintf(e->id, sizeof e->id, "%s", a->id);
        snprintf(e->target, sizeof e->target, "%s", a->target);
        snprintf(e->error, sizeof e->error, "%s", a->error ? a->error : "");
        e->attempt = a->attempt;
        e->status = a->http_status;
        e->delivered = a->delivered;
        e->final = a->final;
        e->t_ms = cm_mono_ms();
    }
    pthread_mutex_unlock(&r->mu);
}

static int finals(rec *r)
{
    pthread_mutex_lock(&r->mu);
    int k = 0;
    for (int i = 0; i < r->n; i++)
        k += r->evs[i].final;
    pthread_mutex_unlock(&r->mu);
    return k;
}

/* Wait up to ms for at least want final events. */
static void wait_finals(rec *r, int want, int ms)
{
    int64_t end = cm_mono_ms() + ms;
    while (finals(r) < want && cm_mono_ms() < end)
        usleep(5000);
    assert_true(finals(r) >= want);
}

static rec *rec_new(void)
{
    rec *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

static void rec_free(rec *r)
{
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ---- helpers ---------------------------------------------------------------------------- */

/* A conf with one target "t1" to url (strings owned by the conf). */
static void one_target(co_notify_conf *c, const char *url)
{
    co_notify_conf_defaults(c);
    c->backoff_base_ms = 50;
    c->backoff_cap_ms = 400;
    c->targets = calloc(1, sizeof *c->targets);
    c->ntargets = 1;
    c->targets[0].name = strdup("t1");
    c->targets[0].url = strdup(url);
    c->targets[0].timeout_ms = 5000;
}

static co_notification note(const char *id)
{
    co_notification nt = {.id = id,
                          .kind = CO_NOTIFY_FIRING,
                          .rule = "luminance_low",
                          .severity = CO_SEV_CRITICAL,
                          .site = "S1",
                          .screen = "hall3",
                          .device = "hall3/projector",
                          .labels_json = "{\"sensor\":\"center\"}",
                          .value = 35.2,
                          .threshold = 37.8,
                          .text = "luminance 35.2 cd/m2 below 37.8",
                          .ts_ms = 1764082800123LL};
    return nt;
}

static void url_of(char *buf, size_t len, rx *r, const char *path)
{
    snprintf(buf, len, "http://127.0.0.1:%u%s", r->port, path);
}

static int enqueue(co_notify *n, const char *id)
{
    co_notification nt = note(id);
    char err[256] = "";
    int rc = co_notify_enqueue(n, &nt, err, sizeof err);
    if (rc < 0) fail_msg("enqueue %s: %s", id, err);
    return rc;
}

/* ---- tests ------------------------------------------------------------------------------ */

/* stderr into a temp file while the notifier logs, to check that no secret is printed */
static int g_saved_stderr = -1;
static char g_log_path[64];

static void capture_stderr(void)
{
    snprintf(g_log_path, sizeof g_log_path, "/tmp/cinemon-test-notify-log-XXXXXX");
    int fd = mkstemp(g_log_path);
    assert_true(fd >= 0);
    fflush(stderr);
    g_saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
}

/* Restore stderr; returns the captured text (caller frees). */
static char *release_stderr(void)
{
    fflush(stderr);
    dup2(g_saved_stderr, 2);
    close(g_saved_stderr);
    FILE *f = fopen(g_log_path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    size_t got = fread(buf, 1, 65535, f);
    buf[got] = '\0';
    fclose(f);
    unlink(g_log_path);
    fputs(buf, stderr);
    return buf;
}

static void test_retry_then_accept(void **st)
{
    (void)st;
    capture_stderr();
    rx *r = rx_start(MODE_SCRIPT);
    rec *ev = rec_new();
    char url[128];
    url_of(url, sizeof url, r, "/hook?token=querysecret");
    co_notify_conf c;
    one_target(&c, url);
    c.targets[0].secret = strdup("bearer-token");
    c.targets[0].sign_secret = strdup("sign-key");
    co_notify *n;
    char err[256] = "";
    assert_int_equal(co_notify_start(&n, &c, on_attempt, ev, err, sizeof err), 0);
    co_notify_conf_free(&c);

    assert_int_equal(enqueue(n, "a1-1"), 1);
    assert_int_equal(enqueue(n, "a2-1"), 1);
    assert_int_equal(enqueue(n, "a1-1"), 0); /* already queued */
    wait_finals(ev, 2, 8000);
    usleep(300 * 1000); /* nothing more may arrive */
    assert_int_equal(rx_count(r), 6);
    assert_int_equal(enqueue(n, "a1-1"), 0); /* delivered: never again */

    const char *ids[2] = {"a1-1", "a2-1"};
    for (int k = 0; k < 2; k++) {
        int seen = 0, ok = 0;
        int64_t t[3] = {0};
        for (int i = 0; i < r->n; i++) {
            req *q = &r->reqs[i];
            json_error_t je;
            json_t *o = json_loads(q->body, 0, &je);
            assert_non_null(o);
            const char *id = json_string_value(json_object_get(o, "id"));
            assert_non_null(id);
            /* the key on every attempt is the payload's id */
            assert_string_equal(q->key, id);
            if (strcmp(id, ids[k]) == 0) {
                t[seen < 3 ? seen : 2] = q->t_ms;
                seen++;
                if (q->status == 200) ok++;
                assert_string_equal(json_string_value(json_object_get(o, "kind")), "firing");
                assert_string_equal(json_string_value(json_object_get(o, "severity")), "critical");
                assert_string_equal(
                    json_string_value(json_object_get(json_object_get(o, "labels"), "sensor")),
                    "center");
                assert_true(fabs(json_real_value(json_object_get(o, "threshold")) - 37.8) < 1e-9);
            }
            json_decref(o);
            /* signature over the exact body; bearer token */
            unsigned char md[EVP_MAX_MD_SIZE];
            unsigned mdlen = 0;
            HMAC(EVP_sha256(), "sign-key", 8, (const unsigned char *)q->body, strlen(q->body), md,
                 &mdlen);
            char want[160] = "sha256=";
            for (unsigned j = 0; j < mdlen; j++)
                snprintf(want + 7 + 2 * j, 3, "%02x", md[j]);
            assert_string_equal(q->sig, want);
            assert_string_equal(q->auth, "Bearer bearer-token");
        }
        assert_int_equal(seen, 3);
        assert_int_equal(ok, 1);
        /* Retry-After: 1 after the 500 was honoured */
        assert_true(t[2] - t[1] >= 950);
    }
    /* the callback saw 503, 500, then delivered, for each */
    pthread_mutex_lock(&ev->mu);
    assert_int_equal(ev->n, 6);
    for (int k = 0; k < 2; k++) {
        int j = 0;
        for (int i = 0; i < ev->n; i++) {
            event *e = &ev->evs[i];
            if (strcmp(e->id, ids[k]) != 0) continue;
            assert_string_equal(e->target, "t1");
            assert_int_equal(e->attempt, (unsigned)j + 1);
            long want_status[3] = {503, 500, 200};
            assert_int_equal(e->status, want_status[j]);
            assert_int_equal(e->delivered, j == 2);
            assert_int_equal(e->final, j == 2);
            if (j < 2) assert_string_equal(e->error, j == 0 ? "http 503" : "http 500");
            j++;
        }
        assert_int_equal(j, 3);
    }
    pthread_mutex_unlock(&ev->mu);
    co_notify_stats s;
    co_notify_stats_get(n, &s);
    assert_int_equal(s.delivered, 2);
    assert_int_equal(s.retries, 4);
    assert_int_equal(s.failed, 0);
    assert_int_equal(s.pending, 0);
    assert_int_equal(co_notify_stop(n, 1000), 0);
    rx_stop(r);
    rec_free(ev);
    char *log = release_stderr();
    assert_non_null(strstr(log, "/hook"));   /* the target was logged ... */
    assert_null(strstr(log, "querysecret")); /* ... but no secret */
    assert_null(strstr(log, "bearer-token"));
    assert_null(strstr(log, "sign-key"));
    free(log);
}

static void test_rate_limit(void **st)
{
    (void)st;
    rx *r = rx_start(MODE_OK);
    rec *ev = rec_new();
    char url[128];
    url_of(url, sizeof url, r, "/rate");
    co_notify_conf c;
    one_target(&c, url);
    c.targets[0].rate_per_minute = 3;
    c.rate_window_ms = 1000;
    co_notify *n;
    char err[256] = "";
    assert_int_equal(co_notify_start(&n, &c, on_attempt, ev, err, sizeof err), 0);
    co_notify_conf_free(&c);
    char ids[7][16];
    for (int i = 0; i < 7; i++) {
        snprintf(ids[i], sizeof ids[i], "r-%d", i);
        assert_int_equal(enqueue(n, ids[i]), 1);
    }
    wait_finals(ev, 7, 8000);
    assert_int_equal(rx_count(r), 7);
    for (int i = 0; i < 7; i++) {
        assert_string_equal(r->reqs[i].key, ids[i]); /* in order, once each */
        if (i >= 3) {
            int64_t gap = r->reqs[i].t_ms - r->reqs[i - 3].t_ms;
            if (gap < 900)
                fail_msg("requests %d and %d only %lld ms apart", i - 3, i, (long long)gap);
        }
    }
    assert_true(r->reqs[6].t_ms - r->reqs[0].t_ms >= 1900);
    assert_int_equal(co_notify_stop(n, 1000), 0);
    rx_stop(r);
    rec_free(ev);
}

static void test_permanent_400(void **st)
{
    (void)st;
    rx *r = rx_start(MODE_400);
    rec *ev = rec_new();
    char url[128];
    url_of(url, sizeof url, r, "/bad");
    co_notify_conf c;
    one_target(&c, url);
    co_notify *n;
    char err[256] = "";
    assert_int_equal(co_notify_start(&n, &c, on_attempt, ev, err, sizeof err), 0);
    co_notify_conf_free(&c);
    assert_int_equal(enqueue(n, "p-1"), 1);
    wait_finals(ev, 1, 5000);
    usleep(300 * 1000);
    assert_int_equal(rx_count(r), 1);
    assert_int_equal(ev->n, 1);
    assert_string_equal(ev->evs[0].id, "p-1");
    assert_int_equal(ev->evs[0].attempt, 1);
    assert_int_equal(ev->evs[0].status, 400);
    assert_int_equal(ev->evs[0].delivered, 0);
    assert_int_equal(ev->evs[0].final, 1);
    assert_string_equal(ev->evs[0].error, "http 400");
    co_notify_stats s;
    co_notify_stats_get(n, &s);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.retries, 0);
    assert_int_equal(co_notify_stop(n, 1000), 0);
    rx_stop(r);
    rec_free(ev);
}

/* A loopback port with nobody listening. */
static unsigned closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_unreachable_expires(void **st)
{
    (void)st;
    rec *ev = rec_new();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/nobody", closed_port());
    co_notify_conf c;
    one_target(&c, url);
    c.max_age_ms = 800;
    c.backoff_base_ms = 20;
    c.backoff_cap_ms = 200;
    co_notify *n;
    char err[256] = "";
    assert_int_equal(co_notify_start(&n, &c, on_attempt, ev, err, sizeof err), 0);
    co_notify_conf_free(&c);
    int64_t t0 = cm_mono_ms();
    assert_int_equal(enqueue(n, "u-1"), 1);
    wait_finals(ev, 1, 4000);
    pthread_mutex_lock(&ev->mu);
    int last = ev->n - 1;
    assert_true(ev->n >= 3); /* at least two retried attempts, then the failure */
    for (int i = 0; i < last; i++) {
        assert_int_equal(ev->evs[i].final, 0);
        assert_int_equal(ev->evs[i].attempt, (unsigned)i + 1);
        assert_int_equal(ev->evs[i].status, 0);
        assert_true(ev->evs[i].error[0] != '\0');
    }
    event *f = &ev->evs[last];
    assert_int_equal(f->final, 1);
    assert_int_equal(f->delivered, 0);
    assert_true(strncmp(f->error, "expired", 7) == 0);
    int64_t age = f->t_ms - t0;
    if (age < 790 || age > 2500) fail_msg("failed after %lld ms, max age 800", (long long)age);
    /* backoff: not a busy loop */
    assert_true(ev->n < 60);
    pthread_mutex_unlock(&ev->mu);
    co_notify_stats s;
    co_notify_stats_get(n, &s);
    assert_int_equal(s.expired, 1);
    assert_int_equal(s.failed, 1);
    assert_int_equal(co_notify_stop(n, 1000), 0);
    rec_free(ev);
}

static void test_queue_full(void **st)
{
    (void)st;
    rx *r = rx_start(MODE_OK);
    rec *ev = rec_new();
    char url[128];
    url_of(url, sizeof url, r, "/q");
    co_notify_conf c;
    one_target(&c, url);
    c.targets[0].rate_per_minute = 1; /* one per minute: the rest waits in the queue */
    c.queue_cap = 3;
    co_notify *n;
    char err[256] = "";
    assert_int_equal(co_notify_start(&n, &c, on_attempt, ev, err, sizeof err), 0);
    co_notify_conf_free(&c);
    assert_int_equal(enqueue(n, "q-a"), 1);
    wait_finals(ev, 1, 3000);
    assert_int_equal(enqueue(n, "q-b"), 1);
    assert_int_equal(enqueue(n, "q-c"), 1);
    assert_int_equal(enqueue(n, "q-d"), 1);
    assert_int_equal(enqueue(n, "q-e"), 1); /* the oldest undelivered (b) is failed */
    wait_finals(ev, 2, 1000);
    pthread_mutex_lock(&ev->mu);
    assert_int_equal(ev->n, 2);
    assert_string_equal(ev->evs[0].id, "q-a");
    assert_int_equal(ev->evs[0].delivered, 1);
    assert_string_equal(ev->evs[1].id, "q-b");
    assert_string_equal(ev->evs[1].error, "queue_full");
    assert_int_equal(ev->evs[1].final, 1);
    assert_int_equal(ev->evs[1].delivered, 0);
    assert_int_equal(ev->evs[1].attempt, 0);
    pthread_mutex_unlock(&ev->mu);
    co_notify_stats s;
    co_notify_stats_get(n, &s);
    assert_int_equal(s.evicted, 1);
    assert_int_equal(s.pending, 3);
    assert_int_equal(co_notify_stop(n, 200), 3); /* c, d, e stay pending (the store has them) */
    assert_int_equal(rx_count(r), 1);
    rx_stop(r);
    rec_free(ev);
}

static void test_filter_and_restore(void **st)
{
    (void)st;
    rx *r = rx_start(MODE_OK);
    rec *ev = rec_new();
    char url[128];
    url_of(url, sizeof url, r, "/f");
    co_notify_conf c;
    one_target(&c, url);
    c.targets = realloc(c.targets, 2 * sizeof *c.targets);
    c.ntargets = 2;
    co_webhook_conf *w = &c.targets[1];
    memset(w, 0, sizeof *w);
    w->name = strdup("crit");
    w->url = strdup(url);
    w->min_severity = CO_SEV_CRITICAL;
    w->sites = calloc(1, sizeof *w->sites);
    w->sites[0] = strdup("S1");
    w->nsites = 1;
    co_notify *n;
    char err[256] = "";
    assert_int_equal(co_notify_start(&n, &c, on_attempt, ev, err, sizeof err), 0);
    co_notify_conf_free(&c);

    co_notification nt = note("f-1");
    nt.severity = CO_SEV_WARNING;
    assert_int_equal(co_notify_enqueue(n, &nt, err, sizeof err), 1); /* t1 only */
    nt = note("f-2");
    nt.site = "S2";
    assert_int_equal(co_notify_enqueue(n, &nt, err, sizeof err), 1); /* t1 only */
    nt = note("f-3");
    assert_int_equal(co_notify_enqueue(n, &nt, err, sizeof err), 2);
    nt.labels_json = NULL;
    nt.value = NAN;
    nt.id = "f-4";
    assert_int_equal(co_notify_restore(n, &nt, "crit", 4, cm_now_ms(), err, sizeof err), 1);
    nt.id = "f-5";
    assert_int_equal(co_notify_restore(n, &nt, "nosuch", 0, cm_now_ms(), err, sizeof err), -1);
    assert_non_null(strstr(err, "nosuch"));
    nt.id = "f-6";
    assert_int_equal(
        co_notify_restore(n, &nt, "t1", 7, cm_now_ms() - 2 * 86400000LL, err, sizeof err), 1);
    /* malformed ones are refused */
    nt.id = "bad\r\nX-Injected: 1";
    assert_int_equal(co_notify_enqueue(n, &nt, err, sizeof err), -1);
    nt.id = "f-7";
    nt.labels_json = "[1,2]";
    assert_int_equal(co_notify_enqueue(n, &nt, err, sizeof err), -1);
    assert_non_null(strstr(err, "labels"));
    nt.labels_json = NULL;
    nt.text = "bad utf-8 \xff";
    assert_int_equal(co_notify_enqueue(n, &nt, err, sizeof err), -1);
    assert_non_null(strstr(err, "UTF-8"));

    wait_finals(ev, 6, 5000);
    usleep(100 * 1000);
    assert_int_equal(rx_count(r), 5);
    pthread_mutex_lock(&ev->mu);
    int restored = 0, expired = 0;
    for (int i = 0; i < ev->n; i++) {
        event *e = &ev->evs[i];
        if (strcmp(e->id, "f-4") == 0) {
            assert_string_equal(e->target, "crit");
            assert_int_equal(e->attempt, 5);
            assert_int_equal(e->delivered, 1);
            restored++;
        }
        if (strcmp(e->id, "f-6") == 0) {
            assert_string_equal(e->error, "expired");
            assert_int_equal(e->attempt, 7);
            assert_int_equal(e->final, 1);
            expired++;
        }
    }
    assert_int_equal(restored, 1);
    assert_int_equal(expired, 1);
    pthread_mutex_unlock(&ev->mu);
    /* f-4 had no labels and a NaN value: {} and null */
    int found = 0;
    for (int i = 0; i < r->n; i++) {
        if (strcmp(r->reqs[i].key, "f-4") != 0) continue;
        json_t *o = json_loads(r->reqs[i].body, 0, NULL);
        assert_non_null(o);
        assert_true(json_is_null(json_object_get(o, "value")));
        assert_int_equal(json_object_size(json_object_get(o, "labels")), 0);
        assert_string_equal(r->reqs[i].auth, "");
        assert_string_equal(r->reqs[i].sig, "");
        json_decref(o);
        found++;
    }
    assert_int_equal(found, 1);
    assert_int_equal(co_notify_stop(n, 1000), 0);
    rx_stop(r);
    rec_free(ev);
}

static void test_stop_in_flight(void **st)
{
    (void)st;
    rx *r = rx_start(MODE_SLOW);
    rec *ev = rec_new();
    char url[128];
    url_of(url, sizeof url, r, "/slow");
    co_notify_conf c;
    one_target(&c, url);
    co_notify *n;
    char err[256] = "";
    assert_int_equal(co_notify_start(&n, &c, on_attempt, ev, err, sizeof err), 0);
    co_notify_conf_free(&c);
    assert_int_equal(enqueue(n, "s-1"), 1);
    for (int i = 0; i < 300 && !r->started; i++)
        usleep(10000);
    assert_true(r->started);
    usleep(50 * 1000);
    int64_t t0 = cm_mono_ms();
    assert_int_equal(co_notify_stop(n, 200), 1); /* aborted: still pending */
    int64_t took = cm_mono_ms() - t0;
    if (took < 190 || took > 1500) fail_msg("stop took %lld ms (timeout 200)", (long long)took);
    assert_int_equal(ev->n, 1);
    assert_string_equal(ev->evs[0].error, "shutdown");
    assert_int_equal(ev->evs[0].final, 0);
    assert_int_equal(ev->evs[0].attempt, 1);
    rx_stop(r);
    rec_free(ev);
}

static char g_path[256];

static const char *write_tmp(const char *text)
{
    snprintf(g_path, sizeof g_path, "/tmp/cinemon-test-notify-XXXXXX.ini");
    int fd = mkstemps(g_path, 4);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return g_path;
}

/* Load text as a collector.ini's notify part; returns the loader's rc, err filled. */
static int load_conf(const char *text, co_notify_conf *c, char *err, size_t errlen)
{
    cm_conf cf;
    const char *p = write_tmp(text);
    co_notify_conf_defaults(c);
    int rc = cm_conf_load(&cf, p, err, errlen);
    if (rc == 0) rc = co_notify_conf_load(c, &cf, err, errlen);
    if (rc == 0) rc = cm_conf_check_unused(&cf, err, errlen);
    cm_conf_free(&cf);
    unlink(p);
    return rc;
}

static void expect_conf_error(const char *text, const char *want)
{
    co_notify_conf c;
    char err[512] = "";
    assert_int_equal(load_conf(text, &c, err, sizeof err), -1);
    co_notify_conf_free(&c);
    if (!strstr(err, want)) fail_msg("error '%s' does not contain '%s'", err, want);
    if (strstr(err, "SECRET")) fail_msg("error '%s' shows a secret", err);
}

static void test_config(void **st)
{
    (void)st;
    co_notify_conf c;
    char err[512] = "";
    const char *ok = "[notify]\n"
                     "queue_cap = 500\n"
                     "max_age = 1h\n"
                     "backoff_base = 2s\n"
                     "[webhook \"ops\"]\n"
                     "url = https://hooks.example.com/x?token=SECRET\n"
                     "secret = abc\n"
                     "sign_secret = def\n"
                     "min_severity = warning\n"
                     "sites = S1, S2\n"
                     "rate_per_minute = 10\n"
                     "timeout = 5s\n"
                     "[webhook \"all\"]\n"
                     "url = http://127.0.0.1:9000/\n";
    if (load_conf(ok, &c, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(c.queue_cap, 500);
    assert_int_equal(c.max_age_ms, 3600000);
    assert_int_equal(c.backoff_base_ms, 2000);
    assert_int_equal(c.ntargets, 2);
    co_webhook_conf *w = &c.targets[0];
    assert_string_equal(w->name, "ops");
    assert_string_equal(w->url, "https://hooks.example.com/x?token=SECRET");
    assert_string_equal(w->secret, "abc");
    assert_string_equal(w->sign_secret, "def");
    assert_int_equal(w->min_severity, CO_SEV_WARNING);
    assert_int_equal(w->nsites, 2);
    assert_string_equal(w->sites[0], "S1");
    assert_string_equal(w->sites[1], "S2");
    assert_int_equal(w->rate_per_minute, 10);
    assert_int_equal(w->timeout_ms, 5000);
    assert_int_equal(w->line, 5);
    w = &c.targets[1];
    assert_null(w->secret);
    assert_int_equal(w->min_severity, CO_SEV_INFO);
    assert_int_equal(w->nsites, 0);
    assert_int_equal(w->rate_per_minute, 60);
    assert_int_equal(w->timeout_ms, 10000);
    co_notify_conf_free(&c);

    expect_conf_error("[webhook \"a\"]\nurl = ftp://h/x?token=SECRET\n", ":2: key 'url'");
    expect_conf_error("[webhook \"a\"]\nsecret = x\n",
                      ":1: [webhook \"a\"]: key 'url' is required");
    expect_conf_error("[webhook \"a\"]\nurl = http://h/\nmin_severity = loud\n", ":3:");
    expect_conf_error("[webhook \"a\"]\nurl = http://h/\nsites = S1,,S2\n", ":3: key 'sites'");
    expect_conf_error("[webhook \"a\"]\nurl = http://h/\nrate_per_minute = -1\n", ":3:");
    expect_conf_error("[webhook \"a\"]\nurl = http://h/\ncolour = red\n",
                      ":3: unknown key 'colour'");
    expect_conf_error("[webhook]\nurl = http://h/\n", ":1: [webhook] needs a name");
    expect_conf_error("[notify]\nbackoff_base = 10s\nbackoff_cap = 1s\n", ":3:");
}

static void test_redact(void **st)
{
    (void)st;
    char out[256];
    co_notify_redact_url("https://user:pw@h.example:8443/a/b?token=x#frag", out, sizeof out);
    assert_string_equal(out, "https://h.example:8443/a/b");
    co_notify_redact_url("http://h/?k=v", out, sizeof out);
    assert_string_equal(out, "http://h/");
    co_notify_redact_url("not a url", out, sizeof out);
    assert_string_equal(out, "(invalid url)");
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_then_accept),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_permanent_400),
        cmocka_unit_test(test_unreachable_expires),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_filter_and_restore),
        cmocka_unit_test(test_stop_in_flight),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_redact),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}

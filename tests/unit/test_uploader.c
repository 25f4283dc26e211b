/* test_uploader.c — the uploader against a scripted HTTP server on 127.0.0.1 (one thread,
 * blocking accept loop, one request per connection). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "agent/uploader.h"
#include "log.h"
#include "timeutil.h"

#define TOKEN "s3cret-token-0123456789"
#define BASE_MS 20
#define CAP_MS 200
#define SLACK_MS 250 /* scheduling slack for timing assertions (ASan, loaded CI) */
#define MAX_RECS 32

/* ---- the scripted server ---------------------------------------------------------------- */

enum kind { ACK, ACK_WRONG, ERR, HANG, STATUS };

typedef struct step {
    int status;
    int retry_after; /* seconds, 0 = no header */
    enum kind kind;
    const char *text; /* ERR: the JSON error body */
} step;

typedef struct rec {
    int64_t t_req, t_resp; /* monotonic ms: request fully read, answer sent */
    char auth[256], ctype[128], cenc[64];
    char *body; /* decompressed */
    size_t body_len;
    long long seq;
    int status; /* what we answered, 0 = hung up */
} rec;

typedef struct srv {
    int lfd, port;
    const step *script;
    size_t nsteps;
    rec recs[MAX_RECS];
    size_t nrecs;
    pthread_t th;
    int started;
} srv;

/* Bind 127.0.0.1:0 without listening (connections are refused until srv_start). */
static void srv_bind(srv *s, const step *script, size_t nsteps)
{
    memset(s, 0, sizeof *s);
    s->script = script;
    s->nsteps = nsteps;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
}

static void hdr_value(const char *head, const char *name, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t n = e ? (size_t)(e - v) : strlen(v);
            if (n >= outlen) n = outlen - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return;
        }
    }
}

static char *gunzip(const char *in, size_t len, size_t *outlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK) return NULL;
    size_t cap = len * 4 + 1024, n = 0;
    char *out = malloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    int rc;
    do {
        if (n + 1 >= cap) out = realloc(out, cap *= 2);
        zs.next_out = (Bytef *)out + n;
        zs.avail_out = (uInt)(cap - n - 1);
        rc = inflate(&zs, Z_NO_FLUSH);
        n = zs.total_out;
    } while (rc == Z_OK);
    inflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    out[n] = '\0';
    *outlen = n;
    return out;
}

/* Read one request (head + Content-Length body) into r; 0 or -1. */
static int read_request(int fd, rec *r)
{
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap + 1);
    char *eoh = NULL;
    while (!eoh) {
        ssize_t k = recv(fd, buf + n, cap - n, 0);
        if (k <= 0) goto fail;
        n += (size_t)k;
        buf[n] = '\0';
        eoh = strstr(buf, "\r\n\r\n");
    }
    *eoh = '\0';
    char clen[32];
    hdr_value(buf, "Content-Length", clen, sizeof clen);
    hdr_value(buf, "Authorization", r->auth, sizeof r->auth);
    hdr_value(buf, "Content-Type", r->ctype, sizeof r->ctype);
    hdr_value(buf, "Content-Encoding", r->cenc, sizeof r->cenc);
    size_t body_off = (size_t)(eoh + 4 - buf), want = (size_t)atol(clen);
    if (want > cap - body_off) goto fail;
    while (n < body_off + want) {
        ssize_t k = recv(fd, buf + n, body_off + want - n, 0);
        if (k <= 0) goto fail;
        n += (size_t)k;
    }
    if (strcmp(r->cenc, "gzip") == 0) {
        r->body = gunzip(buf + body_off, want, &r->body_len);
    } else {
        r->body = malloc(want + 1);
        memcpy(r->body, buf + body_off, want);
        r->body[want] = '\0';
        r->body_len = want;
    }
    free(buf);
    r->seq = -1;
    if (r->body) {
        json_t *root = json_loadb(r->body, r->body_len, 0, NULL);
        json_t *seq = json_object_get(root, "seq");
        if (json_is_integer(seq)) r->seq = json_integer_value(seq);
        json_decref(root);
    }
    return 0;
fail:
    free(buf);
    return -1;
}

static void answer(int fd, const step *st, rec *r)
{
    char body[512], head[512];
    const char *reason = "Whatever";
    switch (st->kind) {
    case ACK:
        snprintf(body, sizeof body, "{\"ack\": %lld}", r->seq);
        break;
    case ACK_WRONG:
        snprintf(body, sizeof body, "{\"ack\": %lld}", r->seq + 1000);
        break;
    case ERR:
        snprintf(body, sizeof body, "%s", st->text);
        break;
    default:
        snprintf(body, sizeof body, "{\"error\": \"status %d\"}", st->status);
        break;
    }
    char ra[64] = "";
    if (st->retry_after) snprintf(ra, sizeof ra, "Retry-After: %d\r\n", st->retry_after);
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%s"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      st->status, reason, ra, strlen(body));
    (void)!write(fd, head, (size_t)hn);
    (void)!write(fd, body, strlen(body));
    r->status = st->status;
}

static void *srv_main(void *arg)
{
    srv *s = arg;
    for (size_t i = 0; i < s->nsteps && s->nrecs < MAX_RECS; i++) {
        struct pollfd pf = {.fd = s->lfd, .events = POLLIN};
        if (poll(&pf, 1, 15000) <= 0) break; /* the test failed; give up */
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) break;
        rec *r = &s->recs[s->nrecs];
        if (read_request(fd, r) != 0) {
            close(fd);
            i--; /* not a request: do not consume the step */
            continue;
        }
        r->t_req = cm_mono_ms();
        __atomic_store_n(&s->nrecs, s->nrecs + 1, __ATOMIC_RELEASE);
        const step *st = &s->script[i];
        if (st->kind == HANG) {
            /* keep the connection open until the client gives up */
            char c;
            struct pollfd cf = {.fd = fd, .events = POLLIN};
            while (poll(&cf, 1, 15000) > 0 && recv(fd, &c, 1, 0) > 0) {
            }
            r->t_resp = cm_mono_ms();
        } else {
            r->t_resp = cm_mono_ms(); /* before the client can see the answer */
            answer(fd, st, r);
        }
        close(fd);
    }
    return NULL;
}

static void srv_start(srv *s)
{
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
    s->started = 1;
}

static void srv_join(srv *s)
{
    if (s->started) pthread_join(s->th, NULL);
    s->started = 0;
}

static void srv_free(srv *s)
{
    close(s->lfd);
    for (size_t i = 0; i < s->nrecs; i++)
        free(s->recs[i].body);
}

/* ---- driving the loop ------------------------------------------------------------------- */

typedef struct fixture {
    uv_loop_t loop;
    ag_uploader *u;
    srv s;
    char *bodies[8]; /* originals by seq */
    size_t lens[8];
    uint64_t want_done; /* acked + rejected to wait for */
    uint64_t want_failures;
    int64_t deadline;
} fixture;

static char *make_body(uint64_t seq, size_t *len)
{
    size_t cap = 4096;
    char *b = malloc(cap);
    int n = snprintf(b, cap, "{\"v\":1,\"seq\":%llu,\"pad\":\"", (unsigned long long)seq);
    while ((size_t)n < cap - 64)
        n += snprintf(b + n, cap - (size_t)n, "hall%llu-", (unsigned long long)seq);
    n += snprintf(b + n, cap - (size_t)n, "\"}");
    *len = (size_t)n;
    return b;
}

static void open_uploader(fixture *f, int port, int64_t timeout_ms)
{
    char url[128], err[256] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/ingest", port);
    ag_uploader_opts o = {.url = url,
                          .token = TOKEN,
                          .timeout_ms = timeout_ms,
                          .backoff_base_ms = BASE_MS,
                          .backoff_cap_ms = CAP_MS};
    assert_int_equal(ag_uploader_open(&f->u, &f->loop, &o, err, sizeof err), 0);
}

static void enqueue(fixture *f, uint64_t seq)
{
    size_t len;
    char *b = make_body(seq, &len);
    f->bodies[seq] = strdup(b);
    f->lens[seq] = len;
    ag_uploader_enqueue(f->u, seq, b, len);
}

static void on_tick(uv_timer_t *t)
{
    fixture *f = t->data;
    ag_uploader_stats st;
    ag_uploader_stats_get(f->u, &st);
    int done = f->want_done
                   ? (st.acked + st.rejected >= f->want_done && ag_uploader_pending(f->u) == 0)
                   : st.failures >= f->want_failures;
    if (done || cm_mono_ms() > f->deadline) uv_stop(t->loop);
}

/* Run the loop until the uploader reached the wanted state (or 15 s passed). */
static void run_until(fixture *f, uint64_t want_done, uint64_t want_failures)
{
    f->want_done = want_done;
    f->want_failures = want_failures;
    f->deadline = cm_mono_ms() + 15000;
    uv_timer_t tick;
    uv_timer_init(&f->loop, &tick);
    tick.data = f;
    uv_timer_start(&tick, on_tick, 5, 5);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void fixture_begin(fixture *f, const step *script, size_t n, int listen_now,
                          int64_t timeout_ms)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    srv_bind(&f->s, script, n);
    if (listen_now) srv_start(&f->s);
    open_uploader(f, f->s.port, timeout_ms);
}

static void fixture_end(fixture *f)
{
    ag_uploader_close(f->u);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    srv_join(&f->s);
}

/* After the checks: free what the server recorded and the original bodies. */
static void fixture_free(fixture *f)
{
    srv_free(&f->s);
    for (size_t i = 0; i < 8; i++)
        free(f->bodies[i]);
}

/* Every request is well-formed: token, content type, gzip body equal to the original. */
static void check_requests(fixture *f)
{
    for (size_t i = 0; i < f->s.nrecs; i++) {
        rec *r = &f->s.recs[i];
        assert_string_equal(r->auth, "Bearer " TOKEN);
        assert_string_equal(r->ctype, "application/json");
        assert_string_equal(r->cenc, "gzip");
        assert_non_null(r->body);
        assert_true(r->seq > 0 && r->seq < 8);
        assert_int_equal(r->body_len, f->lens[r->seq]);
        assert_memory_equal(r->body, f->bodies[r->seq], r->body_len);
        if (i > 0) assert_true(r->seq >= f->s.recs[i - 1].seq); /* oldest first */
    }
}

/* Seqs acknowledged with 200, in order; each exactly once. */
static void check_acked_once(fixture *f, const long long *want, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < f->s.nrecs; i++) {
        rec *r = &f->s.recs[i];
        if (r->status != 200 || f->s.script[i].kind != ACK) continue;
        assert_true(k < n);
        assert_int_equal(r->seq, want[k]);
        k++;
    }
    assert_int_equal(k, n);
}

/* ---- capturing the log ------------------------------------------------------------------ */

typedef struct capture {
    int saved;
    FILE *f;
} capture;

static void capture_begin(capture *c)
{
    fflush(stderr);
    c->f = tmpfile();
    assert_non_null(c->f);
    c->saved = dup(2);
    dup2(fileno(c->f), 2);
}

static char *capture_end(capture *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    long n = ftell(c->f);
    char *s = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    rewind(c->f);
    if (n > 0) (void)!fread(s, 1, (size_t)n, c->f);
    fclose(c->f);
    fputs(s, stderr); /* keep the lines visible in the test output */
    return s;
}

/* ---- tests ------------------------------------------------------------------------------ */

/* 503 + Retry-After: 1, then 500, then 200 for batch 1; then 2 and 3 at once. */
static void test_retry_after_then_ack(void **state)
{
    (void)state;
    static const step script[] = {
        {503, 1, STATUS, NULL}, {500, 0, STATUS, NULL}, {200, 0, ACK, NULL},
        {200, 0, ACK, NULL},    {200, 0, ACK, NULL},
    };
    fixture f;
    fixture_begin(&f, script, 5, 1, 5000);
    enqueue(&f, 1);
    enqueue(&f, 2);
    enqueue(&f, 3);
    assert_int_equal(ag_uploader_pending(f.u), 3);
    run_until(&f, 3, 0);
    ag_uploader_stats st;
    ag_uploader_stats_get(f.u, &st);
    assert_int_equal(st.acked, 3);
    assert_int_equal(st.failures, 2);
    assert_int_equal(st.attempts, 5);
    assert_int_equal(st.rejected, 0);
    assert_true(st.last_ack_ms > 0);
    assert_int_equal(ag_uploader_pending(f.u), 0);
    fixture_end(&f);

    assert_int_equal(f.s.nrecs, 5);
    check_requests(&f);
    const long long want[] = {1, 2, 3};
    check_acked_once(&f, want, 3);
    assert_int_equal(f.s.recs[0].seq, 1);
    assert_int_equal(f.s.recs[1].seq, 1);
    assert_int_equal(f.s.recs[2].seq, 1);
    /* Retry-After: 1 honoured, the plain 500 retried within the cap */
    assert_true(f.s.recs[1].t_req - f.s.recs[0].t_resp >= 1000);
    assert_true(f.s.recs[2].t_req - f.s.recs[1].t_resp <= CAP_MS + SLACK_MS);
    fixture_free(&f);
}

/* A run of 5xx/429: every wait stays within the cap. */
static void test_backoff_capped(void **state)
{
    (void)state;
    static const step script[] = {
        {500, 0, STATUS, NULL}, {502, 0, STATUS, NULL}, {503, 0, STATUS, NULL},
        {429, 0, STATUS, NULL}, {500, 0, STATUS, NULL}, {500, 0, STATUS, NULL},
        {500, 0, STATUS, NULL}, {200, 0, ACK, NULL},
    };
    fixture f;
    fixture_begin(&f, script, 8, 1, 5000);
    enqueue(&f, 1);
    run_until(&f, 1, 0);
    ag_uploader_stats st;
    ag_uploader_stats_get(f.u, &st);
    assert_int_equal(st.acked, 1);
    assert_int_equal(st.failures, 7);
    assert_int_equal(st.attempts, 8);
    fixture_end(&f);
    assert_int_equal(f.s.nrecs, 8);
    check_requests(&f);
    int64_t total = 0;
    for (size_t i = 1; i < f.s.nrecs; i++) {
        int64_t gap = f.s.recs[i].t_req - f.s.recs[i - 1].t_resp;
        assert_true(gap >= 0 && gap <= CAP_MS + SLACK_MS);
        total += gap;
    }
    /* the sum of 7 capped waits cannot exceed 7 caps (plus slack) */
    assert_true(total <= 7 * CAP_MS + SLACK_MS);
    fixture_free(&f);
}

/* 400 sets batch 1 aside (logged with its path, not retried); 413 likewise; 3 goes through. */
static void test_rejected_not_retried(void **state)
{
    (void)state;
    static const step script[] = {
        {400, 0, ERR, "{\"error\": \"expected a number\", \"at\": \"series[0].points[0][1]\"}"},
        {413, 0, ERR, "{\"error\": \"body too large\"}"},
        {200, 0, ACK, NULL},
    };
    fixture f;
    capture c;
    capture_begin(&c);
    fixture_begin(&f, script, 3, 1, 5000);
    enqueue(&f, 1);
    enqueue(&f, 2);
    enqueue(&f, 3);
    run_until(&f, 3, 0);
    ag_uploader_stats st;
    ag_uploader_stats_get(f.u, &st);
    fixture_end(&f);
    char *log = capture_end(&c);
    assert_int_equal(st.rejected, 2);
    assert_int_equal(st.acked, 1);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.attempts, 3);
    assert_int_equal(f.s.nrecs, 3);
    check_requests(&f);
    assert_int_equal(f.s.recs[0].seq, 1);
    assert_int_equal(f.s.recs[1].seq, 2);
    assert_int_equal(f.s.recs[2].seq, 3);
    const long long want[] = {3};
    check_acked_once(&f, want, 1);
    assert_non_null(strstr(log, "expected a number at series[0].points[0][1]"));
    assert_non_null(strstr(log, "body too large"));
    assert_null(strstr(log, TOKEN));
    free(log);
    fixture_free(&f);
}

/* 401 and 403 keep the batch and retry at the cap; the token never reaches the log. */
static void test_auth_failure_retries_at_cap(void **state)
{
    (void)state;
    static const step script[] = {
        {401, 0, STATUS, NULL}, {403, 0, STATUS, NULL}, {200, 0, ACK, NULL}};
    fixture f;
    capture c;
    capture_begin(&c);
    fixture_begin(&f, script, 3, 1, 5000);
    enqueue(&f, 1);
    run_until(&f, 1, 0);
    ag_uploader_stats st;
    ag_uploader_stats_get(f.u, &st);
    fixture_end(&f);
    char *log = capture_end(&c);
    assert_int_equal(st.acked, 1);
    assert_int_equal(st.failures, 2);
    assert_int_equal(f.s.nrecs, 3);
    check_requests(&f);
    for (size_t i = 1; i < 3; i++) {
        int64_t gap = f.s.recs[i].t_req - f.s.recs[i - 1].t_resp;
        assert_true(gap >= CAP_MS - 5 && gap <= CAP_MS + SLACK_MS);
    }
    assert_non_null(strstr(log, "credentials"));
    assert_null(strstr(log, TOKEN));
    free(log);
    fixture_free(&f);
}

/* 200 with the wrong ack is a protocol error: the same batch is sent again. */
static void test_wrong_ack_retried(void **state)
{
    (void)state;
    static const step script[] = {{200, 0, ACK_WRONG, NULL}, {200, 0, ACK, NULL}};
    fixture f;
    fixture_begin(&f, script, 2, 1, 5000);
    enqueue(&f, 1);
    run_until(&f, 1, 0);
    ag_uploader_stats st;
    ag_uploader_stats_get(f.u, &st);
    fixture_end(&f);
    assert_int_equal(st.acked, 1);
    assert_int_equal(st.failures, 1);
    assert_int_equal(f.s.nrecs, 2);
    assert_int_equal(f.s.recs[0].seq, 1);
    assert_int_equal(f.s.recs[1].seq, 1);
    check_requests(&f);
    fixture_free(&f);
}

/* Nothing listens at first: connection refused is retried until the server comes up. */
static void test_connection_refused_then_up(void **state)
{
    (void)state;
    static const step script[] = {{200, 0, ACK, NULL}, {200, 0, ACK, NULL}};
    fixture f;
    fixture_begin(&f, script, 2, 0, 5000);
    enqueue(&f, 1);
    enqueue(&f, 2);
    run_until(&f, 0, 3);
    ag_uploader_stats st;
    ag_uploader_stats_get(f.u, &st);
    assert_true(st.failures >= 3);
    assert_int_equal(st.acked, 0);
    assert_int_equal(ag_uploader_pending(f.u), 2);
    srv_start(&f.s);
    run_until(&f, 2, 0);
    ag_uploader_stats_get(f.u, &st);
    assert_int_equal(st.acked, 2);
    assert_int_equal(st.attempts, st.failures + 2);
    fixture_end(&f);
    assert_int_equal(f.s.nrecs, 2);
    check_requests(&f);
    const long long want[] = {1, 2};
    check_acked_once(&f, want, 2);
    fixture_free(&f);
}

/* A collector that never answers: the request times out and is retried. */
static void test_timeout_retried(void **state)
{
    (void)state;
    static const step script[] = {{0, 0, HANG, NULL}, {200, 0, ACK, NULL}};
    fixture f;
    fixture_begin(&f, script, 2, 1, 300);
    enqueue(&f, 1);
    int64_t t0 = cm_mono_ms();
    run_until(&f, 1, 0);
    ag_uploader_stats st;
    ag_uploader_stats_get(f.u, &st);
    fixture_end(&f);
    assert_int_equal(st.acked, 1);
    assert_int_equal(st.failures, 1);
    assert_true(cm_mono_ms() - t0 >= 300);
    assert_int_equal(f.s.nrecs, 2);
    assert_int_equal(f.s.recs[1].seq, 1);
    check_requests(&f);
    fixture_free(&f);
}

/* Closing with a request in flight and batches queued frees everything (ASan checks). */
static void test_close_in_flight(void **state)
{
    (void)state;
    static const step script[] = {{0, 0, HANG, NULL}};
    fixture f;
    fixture_begin(&f, script, 1, 1, 10000);
    enqueue(&f, 1);
    enqueue(&f, 2);
    /* run until the server holds the request */
    int64_t end = cm_mono_ms() + 5000;
    while (__atomic_load_n(&f.s.nrecs, __ATOMIC_ACQUIRE) == 0 && cm_mono_ms() < end)
        uv_run(&f.loop, UV_RUN_NOWAIT), usleep(1000);
    assert_int_equal(ag_uploader_pending(f.u), 2);
    fixture_end(&f); /* closes the connection, so the server thread ends */
    assert_int_equal(f.s.nrecs, 1);
    fixture_free(&f);
}

static void test_open_rejects_bad_opts(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    ag_uploader *u = NULL;
    char err[256] = "";
    ag_uploader_opts o = {.url = "http://127.0.0.1:1/x", .token = "a\r\nX-Evil: 1"};
    assert_int_equal(ag_uploader_open(&u, &loop, &o, err, sizeof err), -1);
    assert_null(u);
    assert_non_null(strstr(err, "token"));
    assert_null(strstr(err, "Evil"));
    o.url = NULL;
    o.token = TOKEN;
    assert_int_equal(ag_uploader_open(&u, &loop, &o, err, sizeof err), -1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cm_log_init("test_uploader", CM_LOG_INFO);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_then_ack),
        cmocka_unit_test(test_backoff_capped),
        cmocka_unit_test(test_rejected_not_retried),
        cmocka_unit_test(test_auth_failure_retries_at_cap),
        cmocka_unit_test(test_wrong_ack_retried),
        cmocka_unit_test(test_connection_refused_then_up),
        cmocka_unit_test(test_timeout_retried),
        cmocka_unit_test(test_close_in_flight),
        cmocka_unit_test(test_open_rejects_bad_opts),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}

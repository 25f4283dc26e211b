/* test_uploader.c — the uploader reading a real spool and sending to a scripted HTTP server on
 * 127.0.0.1 (one thread, blocking accept loop, one request per connection). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "agent/uploader.h"
#include "batch.h"
#include "log.h"
#include "gzip.h"
#include "spool.h"
#include "timeutil.h"
#include "wire.h"

#define TOKEN "s3cret-token-0123456789"
#define BASE_MS 20
#define CAP_MS 200
#define SLACK_MS 250 /* scheduling slack for timing assertions (ASan, loaded CI) */
#define MAX_RECS 32
#define MAX_VALUES 64

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
    long long seq, first_seq; /* first_seq: as sent, or seq when absent */
    size_t npoints;
    double values[MAX_VALUES]; /* lamp_hours points in the order sent */
    size_t ngaps;
    long long gap_from, gap_to; /* the first gap */
    char gap_reason[32];
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
        json_t *seq = json_object_get(root, "seq"), *fs = json_object_get(root, "first_seq");
        if (json_is_integer(seq)) r->seq = json_integer_value(seq);
        r->first_seq = json_is_integer(fs) ? json_integer_value(fs) : r->seq;
        size_t i, j;
        json_t *se, *pt;
        json_array_foreach(json_object_get(root, "series"), i, se)
        {
            json_t *pts = json_object_get(se, "points");
            int lamp = strcmp(json_string_value(json_object_get(se, "metric")), "lamp_hours") == 0;
            json_array_foreach(pts, j, pt)
            {
                if (lamp && r->npoints < MAX_VALUES)
                    r->values[r->npoints] = json_number_value(json_array_get(pt, 1));
                if (lamp) r->npoints++;
            }
        }
        json_t *gaps = json_object_get(root, "gaps");
        r->ngaps = json_array_size(gaps);
        if (r->ngaps) {
            json_t *g = json_array_get(gaps, 0);
            r->gap_from = json_integer_value(json_object_get(g, "from_seq"));
            r->gap_to = json_integer_value(json_object_get(g, "to_seq"));
            snprintf(r->gap_reason, sizeof r->gap_reason, "%s",
                     json_string_value(json_object_get(g, "reason")));
        }
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

/* ---- the spool and the loop ------------------------------------------------------------- */

typedef struct fixture {
    uv_loop_t loop;
    ag_uploader *u;
    cm_spool *spool;
    char dir[64];
    srv s;
    uint64_t want_acked;    /* spool cursor to wait for */
    uint64_t want_failures; /* or this many failed attempts */
    int64_t deadline;
} fixture;

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void spool_open(fixture *f)
{
    cm_spool_opts o = {.dir = f->dir,
                       .segment_bytes = 64 << 10,
                       .max_bytes = 16 << 20,
                       .min_free_bytes = 1 << 20,
                       .fsync = CM_FSYNC_CYCLE};
    char err[256] = "";
    if (cm_spool_open(&f->spool, &o, NULL, err, sizeof err) != 0) fail_msg("spool: %s", err);
}

/* Append one batch record: n lamp_hours points of value `value` (ts distinct); returns its
 * seq and, in *len, its payload bytes. */
static uint64_t put_record(fixture *f, double value, size_t n, size_t *len)
{
    cm_batch b;
    cm_batch_init(&b);
    assert_int_equal(cm_batch_set_agent(&b, "agent-7", "0.1.0", "1101001"), 0);
    static int64_t ts = 1764082790000;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(
            cm_batch_add_point(&b, "hall1/projector", "lamp_hours", "h", NULL, 0, ts++, value), 0);
    b.seq = cm_spool_next_seq(f->spool);
    b.sent_ms = cm_now_ms();
    size_t l = 0;
    char *json = cm_wire_encode(&b, &l);
    assert_non_null(json);
    cm_batch_free(&b);
    uint64_t seq = 0;
    char err[256] = "";
    /* even seqs gzip-compressed as the batcher writes them, odd ones plain: both are read */
    char *gz = NULL;
    size_t gzlen = 0;
    if (b.seq % 2 == 0) assert_int_equal(cm_gzip(json, l, 6, &gz, &gzlen), 0);
    int rc = gz ? cm_spool_append(f->spool, CM_REC_BATCH_GZ, gz, gzlen, &seq, err, sizeof err)
                : cm_spool_append(f->spool, CM_REC_BATCH, json, l, &seq, err, sizeof err);
    free(gz);
    if (rc != 0) fail_msg("append: %s", err);
    assert_int_equal(cm_spool_sync(f->spool, err, sizeof err), 0);
    free(json);
    if (len) *len = l;
    return seq;
}

/* A record appended while the uploader runs: tell it, as the batcher does. */
static uint64_t put_and_notify(fixture *f, double value)
{
    size_t len;
    uint64_t seq = put_record(f, value, 1, &len);
    ag_uploader_notify(f->u, len);
    return seq;
}

static void open_uploader(fixture *f, int64_t timeout_ms, int64_t interval_ms, uint64_t max_bytes)
{
    char url[128], err[256] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/ingest", f->s.port);
    ag_uploader_opts o = {.url = url,
                          .token = TOKEN,
                          .agent_id = "agent-7",
                          .agent_version = "0.1.0",
                          .site = "1101001",
                          .spool = f->spool,
                          .interval_ms = interval_ms,
                          .max_batch_bytes = max_bytes,
                          .timeout_ms = timeout_ms,
                          .backoff_base_ms = BASE_MS,
                          .backoff_cap_ms = CAP_MS};
    assert_int_equal(ag_uploader_open(&f->u, &f->loop, &o, err, sizeof err), 0);
}

static uint64_t acked_seq(fixture *f)
{
    cm_spool_stats st;
    cm_spool_stats_get(f->spool, &st);
    return st.acked_seq;
}

static void on_tick(uv_timer_t *t)
{
    fixture *f = t->data;
    ag_uploader_stats st;
    ag_uploader_stats_get(f->u, &st);
    int done = f->want_acked ? acked_seq(f) >= f->want_acked && !ag_uploader_busy(f->u)
                             : st.failures >= f->want_failures;
    if (done || cm_mono_ms() > f->deadline) uv_stop(t->loop);
}

/* Run the loop until the spool's cursor reached want_acked (or, when 0, until want_failures
 * attempts failed), at most 15 s. */
static void run_until(fixture *f, uint64_t want_acked, uint64_t want_failures)
{
    f->want_acked = want_acked;
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

/* Run the loop for ms milliseconds. */
static void run_for(fixture *f, int64_t ms)
{
    f->want_acked = UINT64_MAX;
    f->deadline = cm_mono_ms() + ms;
    uv_timer_t tick;
    uv_timer_init(&f->loop, &tick);
    tick.data = f;
    uv_timer_start(&tick, on_tick, 5, 5);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Loop, spool in a fresh folder, server bound (listening when listen_now). The uploader is
 * opened by the test (after it put the records it wants found at start). */
static void fixture_begin(fixture *f, const step *script, size_t n, int listen_now)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    snprintf(f->dir, sizeof f->dir, "/tmp/cinemon-upl-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    spool_open(f);
    srv_bind(&f->s, script, n);
    if (listen_now) srv_start(&f->s);
}

static void uploader_close(fixture *f)
{
    ag_uploader_close(f->u);
    f->u = NULL;
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
}

static void fixture_end(fixture *f)
{
    if (f->u) uploader_close(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    srv_join(&f->s);
    cm_spool_close(f->spool);
    f->spool = NULL;
}

/* After the checks: free what the server recorded and remove the spool folder. */
static void fixture_free(fixture *f)
{
    srv_free(&f->s);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Every request is well-formed: token, content type, gzip, a batch of this agent. */
static void check_requests(fixture *f)
{
    for (size_t i = 0; i < f->s.nrecs; i++) {
        rec *r = &f->s.recs[i];
        assert_string_equal(r->auth, "Bearer " TOKEN);
        assert_string_equal(r->ctype, "application/json");
        assert_string_equal(r->cenc, "gzip");
        assert_non_null(r->body);
        assert_non_null(strstr(r->body, "\"agent-7\""));
        assert_true(r->seq > 0 && r->first_seq > 0 && r->first_seq <= r->seq);
        if (i > 0) assert_true(r->first_seq >= f->s.recs[i - 1].first_seq); /* oldest first */
    }
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

/* Three records waiting at start go out as ONE request: first_seq 1, seq 3, points in order;
 * the 200 acknowledges all three in the spool. */
static void test_merges_contiguous_records(void **state)
{
    (void)state;
    static const step script[] = {{200, 0, ACK, NULL}};
    fixture f;
    fixture_begin(&f, script, 1, 1);
    put_record(&f, 1, 2, NULL);
    put_record(&f, 2, 1, NULL);
    put_record(&f, 3, 3, NULL);
    open_uploader(&f, 5000, 0, 0);
    run_until(&f, 3, 0);
    ag_uploader_stats st;
    ag_uploader_stats_get(f.u, &st);
    assert_int_equal(st.attempts, 1);
    assert_int_equal(st.acked, 1);
    assert_int_equal(st.records_acked, 3);
    assert_true(st.last_ack_ms > 0);
    cm_spool_stats sp;
    cm_spool_stats_get(f.spool, &sp);
    assert_int_equal(sp.acked_seq, 3);
    assert_int_equal(sp.records, 0);
    fixture_end(&f);
    assert_int_equal(f.s.nrecs, 1);
    check_requests(&f);
    rec *r = &f.s.recs[0];
    assert_int_equal(r->first_seq, 1);
    assert_int_equal(r->seq, 3);
    assert_int_equal(r->npoints, 6);
    const double want[] = {1, 1, 2, 3, 3, 3};
    for (size_t i = 0; i < 6; i++)
        assert_true(r->values[i] == want[i]);
    assert_int_equal(r->ngaps, 0);
    fixture_free(&f);
}

/* A record waits for the upload interval; a full max_batch_bytes goes at once, and what does
 * not fit follows back to back. */
static void test_interval_and_max_bytes(void **state)
{
    (void)state;
    static const step script[] = {{200, 0, ACK, NULL}, {200, 0, ACK, NULL}, {200, 0, ACK, NULL}};
    fixture f;
    fixture_begin(&f, script, 3, 1);
    size_t len;
    put_record(&f, 7, 1, &len);       /* to learn a record's size */
    uint64_t max = 2 * len + len / 2; /* two records fit, three do not */
    cm_spool_close(f.spool);
    nftw(f.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(mkdir(f.dir, 0700), 0);
    spool_open(&f);

    open_uploader(&f, 5000, 400, max);
    run_for(&f, 30); /* nothing waiting: nothing sent */
    int64_t t0 = cm_mono_ms();
    put_and_notify(&f, 1);
    run_until(&f, 1, 0);
    int64_t waited = cm_mono_ms() - t0;
    assert_true(waited >= 400 - 20);
    assert_int_equal(f.s.nrecs, 1);

    /* three records at once: more than max_batch_bytes is waiting, so no interval wait */
    t0 = cm_mono_ms();
    put_and_notify(&f, 2);
    put_and_notify(&f, 3);
    put_and_notify(&f, 4);
    run_until(&f, 4, 0);
    assert_true(cm_mono_ms() - t0 < 400);
    fixture_end(&f);
    assert_int_equal(f.s.nrecs, 3);
    check_requests(&f);
    assert_int_equal(f.s.recs[1].first_seq, 2);
    assert_int_equal(f.s.recs[1].seq, 3);
    assert_int_equal(f.s.recs[2].first_seq, 4);
    assert_int_equal(f.s.recs[2].seq, 4);
    fixture_free(&f);
}

/* 409 {"last_seq": 2}: records 1..2 are stored already; 3..4 go at once. */
static void test_conflict_moves_cursor(void **state)
{
    (void)state;
    static const step script[] = {{409, 0, ERR, "{\"error\": \"overlap\", \"last_seq\": 2}"},
                                  {200, 0, ACK, NULL}};
    fixture f;
    fixture_begin(&f, script, 2, 1);
    for (int i = 1; i <= 4; i++)
        put_record(&f, i, 1, NULL);
    open_uploader(&f, 5000, 0, 0);
    run_until(&f, 4, 0);
    ag_uploader_stats st;
    ag_uploader_stats_get(f.u, &st);
    assert_int_equal(st.conflicts, 1);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.acked, 1);
    assert_int_equal(st.records_acked, 4);
    fixture_end(&f);
    assert_int_equal(f.s.nrecs, 2);
    check_requests(&f);
    assert_int_equal(f.s.recs[0].first_seq, 1);
    assert_int_equal(f.s.recs[0].seq, 4);
    assert_int_equal(f.s.recs[1].first_seq, 3);
    assert_int_equal(f.s.recs[1].seq, 4);
    assert_int_equal(f.s.recs[1].npoints, 2);
    assert_true(f.s.recs[1].values[0] == 3 && f.s.recs[1].values[1] == 4);
    /* the 409 came back at once, without a backoff */
    assert_true(f.s.recs[1].t_req - f.s.recs[0].t_resp < BASE_MS * 8);
    fixture_free(&f);
}

/* 413 halves the records per request until they pass; then the rest drains one by one. */
static void test_too_large_halves(void **state)
{
    (void)state;
    static const step script[] = {
        {413, 0, ERR, "{\"error\": \"body too large\"}"},
        {413, 0, ERR, "{\"error\": \"body too large\"}"},
        {200, 0, ACK, NULL},
        {200, 0, ACK, NULL},
        {200, 0, ACK, NULL},
        {200, 0, ACK, NULL},
    };
    fixture f;
    fixture_begin(&f, script, 6, 1);
    for (int i = 1; i <= 4; i++)
        put_record(&f, i, 1, NULL);
    open_uploader(&f, 5000, 0, 0);
    run_until(&f, 4, 0);
    ag_uploader_stats st;
    ag_uploader_stats_get(f.u, &st);
    assert_int_equal(st.splits, 2);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(st.acked, 4);
    fixture_end(&f);
    assert_int_equal(f.s.nrecs, 6);
    check_requests(&f);
    const long long first[] = {1, 1, 1, 2, 3, 4}, last[] = {4, 2, 1, 2, 3, 4};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(f.s.recs[i].first_seq, first[i]);
        assert_int_equal(f.s.recs[i].seq, last[i]);
    }
    fixture_free(&f);
}

static int file_exists(const char *dir, const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* 400: the request is halved until the one refused record is found; it is set aside in
 * rejected/, logged with the collector's "at", a GAP record tells the collector, the good
 * record sent with it and the next batch go on. A single record still 413 is a 400 too. */
static void test_rejected_gap_and_go_on(void **state)
{
    (void)state;
    static const step script[] = {
        {400, 0, ERR, "{\"error\": \"expected a number\", \"at\": \"series[0].points[0][1]\"}"},
        {200, 0, ACK, NULL},
        {400, 0, ERR, "{\"error\": \"expected a number\", \"at\": \"series[0].points[0][1]\"}"},
        {200, 0, ACK, NULL},
        {413, 0, ERR, "{\"error\": \"body too large\"}"},
        {200, 0, ACK, NULL},
    };
    fixture f;
    capture c;
    capture_begin(&c);
    fixture_begin(&f, script, 6, 1);
    put_record(&f, 1, 1, NULL);
    put_record(&f, 2, 1, NULL);
    open_uploader(&f, 5000, 0, 0);
    run_until(&f, 3, 0); /* 1..2 refused; 1 alone stored; 2 alone rejected; its gap (3) goes */
    put_and_notify(&f, 4);
    run_until(&f, 5, 0); /* 4 refused as too large on its own: its gap (5) goes */
    ag_uploader_stats st;
    ag_uploader_stats_get(f.u, &st);
    fixture_end(&f);
    char *log = capture_end(&c);
    assert_int_equal(st.rejected, 2);
    assert_int_equal(st.acked, 3);
    assert_int_equal(st.splits, 1);
    assert_int_equal(st.failures, 0);
    assert_int_equal(f.s.nrecs, 6);
    check_requests(&f);
    assert_int_equal(f.s.recs[0].first_seq, 1);
    assert_int_equal(f.s.recs[0].seq, 2);
    assert_int_equal(f.s.recs[1].first_seq, 1);
    assert_int_equal(f.s.recs[1].seq, 1);
    assert_int_equal(f.s.recs[2].first_seq, 2);
    assert_int_equal(f.s.recs[2].seq, 2);
    /* the gap record */
    assert_int_equal(f.s.recs[3].first_seq, 3);
    assert_int_equal(f.s.recs[3].seq, 3);
    assert_int_equal(f.s.recs[3].npoints, 0);
    assert_int_equal(f.s.recs[3].ngaps, 1);
    assert_int_equal(f.s.recs[3].gap_from, 2);
    assert_int_equal(f.s.recs[3].gap_to, 2);
    assert_string_equal(f.s.recs[3].gap_reason, "rejected");
    assert_int_equal(f.s.recs[4].seq, 4);
    assert_int_equal(f.s.recs[5].seq, 5);
    assert_int_equal(f.s.recs[5].gap_from, 4);
    assert_int_equal(f.s.recs[5].gap_to, 4);
    char rej[128];
    snprintf(rej, sizeof rej, "%s/rejected", f.dir);
    assert_false(file_exists(rej, "1-2.json"));
    assert_true(file_exists(rej, "2-2.json"));
    assert_true(file_exists(rej, "4-4.json"));
    assert_non_null(strstr(log, "expected a number at series[0].points[0][1]"));
    assert_non_null(strstr(log, "body too large"));
    assert_null(strstr(log, TOKEN));
    free(log);
    fixture_free(&f);
}

/* A collector that refuses the gap report itself: no report about the report (that would loop
 * forever); the next records go on. */
static void test_refused_gap_report_not_repeated(void **state)
{
    (void)state;
    static const step script[] = {
        {400, 0, ERR, "{\"error\": \"bad value\", \"at\": \"series[0]\"}"},
        {400, 0, ERR, "{\"error\": \"unknown key 'gaps'\", \"at\": \"gaps\"}"},
        {200, 0, ACK, NULL},
    };
    fixture f;
    capture c;
    capture_begin(&c);
    fixture_begin(&f, script, 3, 1);
    put_record(&f, 1, 1, NULL);
    open_uploader(&f, 5000, 0, 0);
    run_until(&f, 2, 0); /* 1 rejected, its gap record 2 rejected */
    run_for(&f, 100);    /* nothing more is sent */
    assert_int_equal(f.s.nrecs, 2);
    cm_spool_stats sp;
    cm_spool_stats_get(f.spool, &sp);
    assert_int_equal(sp.records, 0);
    assert_int_equal(sp.next_seq, 3);
    assert_int_equal(put_and_notify(&f, 3), 3);
    run_until(&f, 3, 0);
    ag_uploader_stats st;
    ag_uploader_stats_get(f.u, &st);
    fixture_end(&f);
    char *log = capture_end(&c);
    assert_int_equal(st.rejected, 2);
    assert_int_equal(st.acked, 1);
    assert_int_equal(f.s.nrecs, 3);
    assert_int_equal(f.s.recs[1].ngaps, 1);
    assert_int_equal(f.s.recs[1].npoints, 0);
    assert_int_equal(f.s.recs[2].first_seq, 3);
    assert_int_equal(f.s.recs[2].ngaps, 0);
    assert_non_null(strstr(log, "refuses our gap reports"));
    free(log);
    fixture_free(&f);
}

/* A record the spool holds but that is not a valid batch goes as a "corrupt" gap. */
static void test_corrupt_record_becomes_gap(void **state)
{
    (void)state;
    static const step script[] = {{200, 0, ACK, NULL}};
    fixture f;
    fixture_begin(&f, script, 1, 1);
    put_record(&f, 1, 1, NULL);
    uint64_t seq;
    char err[256];
    assert_int_equal(cm_spool_append(f.spool, CM_REC_BATCH, "{not json", 9, &seq, err, sizeof err),
                     0);
    put_record(&f, 3, 1, NULL);
    capture c;
    capture_begin(&c);
    open_uploader(&f, 5000, 0, 0);
    run_until(&f, 3, 0);
    fixture_end(&f);
    free(capture_end(&c));
    assert_int_equal(f.s.nrecs, 1);
    rec *r = &f.s.recs[0];
    assert_int_equal(r->first_seq, 1);
    assert_int_equal(r->seq, 3);
    assert_int_equal(r->npoints, 2);
    assert_int_equal(r->ngaps, 1);
    assert_int_equal(r->gap_from, 2);
    assert_int_equal(r->gap_to, 2);
    assert_string_equal(r->gap_reason, "corrupt");
    fixture_free(&f);
}

/* 503 + Retry-After: 1, then 500, then 200. */
static void test_retry_after_then_ack(void **state)
{
    (void)state;
    static const step script[] = {
        {503, 1, STATUS, NULL}, {500, 0, STATUS, NULL}, {200, 0, ACK, NULL}};
    fixture f;
    fixture_begin(&f, script, 3, 1);
    put_record(&f, 1, 1, NULL);
    open_uploader(&f, 5000, 0, 0);
    run_until(&f, 1, 0);
    ag_uploader_stats st;
    ag_uploader_stats_get(f.u, &st);
    assert_int_equal(st.acked, 1);
    assert_int_equal(st.failures, 2);
    assert_int_equal(st.attempts, 3);
    fixture_end(&f);
    assert_int_equal(f.s.nrecs, 3);
    check_requests(&f);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(f.s.recs[i].seq, 1);
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
    fixture_begin(&f, script, 8, 1);
    put_record(&f, 1, 1, NULL);
    open_uploader(&f, 5000, 0, 0);
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
    assert_true(total <= 7 * CAP_MS + SLACK_MS);
    fixture_free(&f);
}

/* 401 and 403 keep the records and retry at the cap; the token never reaches the log. */
static void test_auth_failure_retries_at_cap(void **state)
{
    (void)state;
    static const step script[] = {
        {401, 0, STATUS, NULL}, {403, 0, STATUS, NULL}, {200, 0, ACK, NULL}};
    fixture f;
    capture c;
    capture_begin(&c);
    fixture_begin(&f, script, 3, 1);
    put_record(&f, 1, 1, NULL);
    open_uploader(&f, 5000, 0, 0);
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

/* 200 with the wrong ack is a protocol error: the same request is sent again. */
static void test_wrong_ack_retried(void **state)
{
    (void)state;
    static const step script[] = {{200, 0, ACK_WRONG, NULL}, {200, 0, ACK, NULL}};
    fixture f;
    fixture_begin(&f, script, 2, 1);
    put_record(&f, 1, 1, NULL);
    open_uploader(&f, 5000, 0, 0);
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

/* Nothing listens: records pile up (one per request at this max_batch_bytes); once the server
 * is up the backlog drains in order, each record exactly once. */
static void test_backlog_drains_in_order(void **state)
{
    (void)state;
    static const step script[] = {{200, 0, ACK, NULL},
                                  {200, 0, ACK, NULL},
                                  {200, 0, ACK, NULL},
                                  {200, 0, ACK, NULL},
                                  {200, 0, ACK, NULL}};
    fixture f;
    fixture_begin(&f, script, 5, 0);
    open_uploader(&f, 5000, 0, 1);
    put_and_notify(&f, 1);
    run_until(&f, 0, 2);
    put_and_notify(&f, 2);
    put_and_notify(&f, 3);
    run_until(&f, 0, 4);
    put_and_notify(&f, 4);
    put_and_notify(&f, 5);
    ag_uploader_stats st;
    ag_uploader_stats_get(f.u, &st);
    assert_int_equal(st.acked, 0);
    assert_int_equal(acked_seq(&f), 0);
    srv_start(&f.s);
    run_until(&f, 5, 0);
    ag_uploader_stats_get(f.u, &st);
    assert_int_equal(st.acked, 5);
    assert_int_equal(st.attempts, st.failures + 5);
    fixture_end(&f);
    assert_int_equal(f.s.nrecs, 5);
    check_requests(&f);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(f.s.recs[i].first_seq, (long long)i + 1);
        assert_int_equal(f.s.recs[i].seq, (long long)i + 1);
        assert_true(f.s.recs[i].values[0] == (double)(i + 1));
        /* back to back: no interval, no backoff between them */
        if (i) assert_true(f.s.recs[i].t_req - f.s.recs[i - 1].t_resp < CAP_MS);
    }
    fixture_free(&f);
}

/* The acknowledged cursor survives closing and reopening the spool: only what was not
 * acknowledged is sent after the "restart". */
static void test_cursor_survives_reopen(void **state)
{
    (void)state;
    static const step script[] = {{200, 0, ACK, NULL}, {200, 0, ACK, NULL}};
    fixture f;
    fixture_begin(&f, script, 2, 1);
    put_record(&f, 1, 1, NULL);
    put_record(&f, 2, 1, NULL);
    open_uploader(&f, 5000, 0, 0);
    run_until(&f, 2, 0);
    uploader_close(&f);
    cm_spool_close(f.spool);
    spool_open(&f);
    cm_spool_stats sp;
    cm_spool_stats_get(f.spool, &sp);
    assert_int_equal(sp.acked_seq, 2);
    assert_int_equal(sp.records, 0);
    assert_int_equal(sp.next_seq, 3);
    assert_int_equal(put_record(&f, 3, 1, NULL), 3);
    open_uploader(&f, 5000, 0, 0);
    run_until(&f, 3, 0);
    fixture_end(&f);
    assert_int_equal(f.s.nrecs, 2);
    check_requests(&f);
    assert_int_equal(f.s.recs[0].first_seq, 1);
    assert_int_equal(f.s.recs[0].seq, 2);
    assert_int_equal(f.s.recs[1].first_seq, 3);
    assert_int_equal(f.s.recs[1].seq, 3);
    assert_int_equal(f.s.recs[1].npoints, 1);
    fixture_free(&f);
}

/* A collector that never answers: the request times out and is retried. */
static void test_timeout_retried(void **state)
{
    (void)state;
    static const step script[] = {{0, 0, HANG, NULL}, {200, 0, ACK, NULL}};
    fixture f;
    fixture_begin(&f, script, 2, 1);
    put_record(&f, 1, 1, NULL);
    open_uploader(&f, 300, 0, 0);
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

/* Closing with a request in flight frees everything (ASan checks); the records stay. */
static void test_close_in_flight(void **state)
{
    (void)state;
    static const step script[] = {{0, 0, HANG, NULL}};
    fixture f;
    fixture_begin(&f, script, 1, 1);
    put_record(&f, 1, 1, NULL);
    put_record(&f, 2, 1, NULL);
    open_uploader(&f, 10000, 0, 0);
    int64_t end = cm_mono_ms() + 5000;
    while (__atomic_load_n(&f.s.nrecs, __ATOMIC_ACQUIRE) == 0 && cm_mono_ms() < end)
        uv_run(&f.loop, UV_RUN_NOWAIT), usleep(1000);
    assert_true(ag_uploader_busy(f.u));
    uploader_close(&f); /* closes the connection, so the server thread ends */
    cm_spool_stats sp;
    cm_spool_stats_get(f.spool, &sp);
    assert_int_equal(sp.records, 2);
    assert_int_equal(sp.acked_seq, 0);
    fixture_end(&f);
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
    cm_spool *dummy = (cm_spool *)&loop; /* never touched: open fails first */
    ag_uploader_opts o = {.url = "http://127.0.0.1:1/x",
                          .token = "a\r\nX-Evil: 1",
                          .agent_id = "a",
                          .site = "s",
                          .spool = dummy};
    assert_int_equal(ag_uploader_open(&u, &loop, &o, err, sizeof err), -1);
    assert_null(u);
    assert_non_null(strstr(err, "token"));
    assert_null(strstr(err, "Evil"));
    o.token = TOKEN;
    o.url = NULL;
    assert_int_equal(ag_uploader_open(&u, &loop, &o, err, sizeof err), -1);
    o.url = "http://127.0.0.1:1/x";
    o.spool = NULL;
    assert_int_equal(ag_uploader_open(&u, &loop, &o, err, sizeof err), -1);
    assert_non_null(strstr(err, "spool"));
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cm_log_init("test_uploader", CM_LOG_INFO);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merges_contiguous_records),
        cmocka_unit_test(test_interval_and_max_bytes),
        cmocka_unit_test(test_conflict_moves_cursor),
        cmocka_unit_test(test_too_large_halves),
        cmocka_unit_test(test_rejected_gap_and_go_on),
        cmocka_unit_test(test_refused_gap_report_not_repeated),
        cmocka_unit_test(test_corrupt_record_becomes_gap),
        cmocka_unit_test(test_retry_after_then_ack),
        cmocka_unit_test(test_backoff_capped),
        cmocka_unit_test(test_auth_failure_retries_at_cap),
        cmocka_unit_test(test_wrong_ack_retried),
        cmocka_unit_test(test_backlog_drains_in_order),
        cmocka_unit_test(test_cursor_survives_reopen),
        cmocka_unit_test(test_timeout_retried),
        cmocka_unit_test(test_close_in_flight),
        cmocka_unit_test(test_open_rejects_bad_opts),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}

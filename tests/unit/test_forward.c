/* test_forward.c — tiered forwarding (collector/forward.c) on a real store (SQLite, and
 * PostgreSQL in the [pg] runs) against a scripted upstream collector on 127.0.0.1: stored
 * batches go upstream once each, duplicates and gap-only batches not at all, as the
 * forwarder's agent with each batch's site; a crash between the store's commit and the spool
 * is finished from the intent journal at the next start (nothing lost, nothing twice, also
 * when part of the group had reached the spool, and nothing when the commit never happened);
 * the uploader never merges records of two sites; ingest lets a forwarding token write any
 * site of its scope and an agent's token only its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store_fixture.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <zlib.h>

#include "agent/uploader.h"
#include "batch.h"
#include "collector/forward.h"
#include "collector/forward_journal.h"
#include "collector/ingest.h"
#include "collector/metrics.h"
#include "collector/writer.h"
#include "gzip.h"
#include "log.h"
#include "spool.h"
#include "timeutil.h"
#include "wire.h"

typedef store_fx fx;

#define MAX_REQS 64
#define FWD_AGENT "fwd-chain-1"

/* ---- the scripted upstream collector ---------------------------------------------------- */

typedef struct req {
    char agent[64], site[64];
    long long seq, first_seq;
    size_t points, ngaps;
    double sum;
    int one_site; /* every value belongs to the request's site (see value_of) */
} req;

typedef struct upsrv {
    int lfd, port;
    pthread_t th;
    volatile int stop;
    volatile int status; /* answer: 200 {"ack": seq}, or this status */
    pthread_mutex_t mu;
    req reqs[MAX_REQS];
    size_t n;
} upsrv;

/* Values encode their site: site "S<k>" sends k*100 + i. */
static double value_of(const char *site, int i)
{
    return atoi(site + 1) * 100.0 + i;
}

static void hdr(const char *head, const char *name, char *out, size_t len)
{
    out[0] = '\0';
    const char *p = strcasestr(head, name);
    if (!p) return;
    p += strlen(name);
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, "\r\n");
    if (n >= len) n = len - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

static void parse_req(req *r, const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *ag = json_object_get(root, "agent");
    const char *id = json_string_value(json_object_get(ag, "id"));
    const char *site = json_string_value(json_object_get(ag, "site"));
    snprintf(r->agent, sizeof r->agent, "%s", id ? id : "");
    snprintf(r->site, sizeof r->site, "%s", site ? site : "");
    r->seq = json_integer_value(json_object_get(root, "seq"));
    json_t *fs = json_object_get(root, "first_seq");
    r->first_seq = fs ? json_integer_value(fs) : r->seq;
    r->ngaps = json_array_size(json_object_get(root, "gaps"));
    r->one_site = 1;
    size_t i, k;
    json_t *se, *pt;
    json_array_foreach(json_object_get(root, "series"), i, se)
    {
        json_array_foreach(json_object_get(se, "points"), k, pt)
        {
            double v = json_number_value(json_array_get(pt, 1));
            r->points++;
            r->sum += v;
            if (!r->site[0] || (int)(v / 100) != atoi(r->site + 1)) r->one_site = 0;
        }
    }
    json_decref(root);
}

/* Serve one connection: read the request, record it, answer. */
static void serve(upsrv *s, int fd)
{
    size_t cap = 4 << 20, n = 0;
    char *buf = malloc(cap + 1);
    char *eoh = NULL;
    while (!eoh && n < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 3000) <= 0) goto out;
        ssize_t k = recv(fd, buf + n, cap - n, 0);
        if (k <= 0) goto out;
        n += (size_t)k;
        buf[n] = '\0';
        eoh = strstr(buf, "\r\n\r\n");
    }
    if (!eoh) goto out;
    *eoh = '\0';
    char clen[32], cenc[32];
    hdr(buf, "Content-Length:", clen, sizeof clen);
    hdr(buf, "Content-Encoding:", cenc, sizeof cenc);
    size_t off = (size_t)(eoh + 4 - buf), want = (size_t)atol(clen);
    while (n < off + want && n < cap) {
        ssize_t k = recv(fd, buf + n, off + want - n, 0);
        if (k <= 0) goto out;
        n += (size_t)k;
    }
    char *plain = NULL;
    size_t plen = 0;
    char err[128];
    if (strcmp(cenc, "gzip") == 0 &&
        cm_gunzip(buf + off, want, 64 << 20, &plain, &plen, err, sizeof err) != 0)
        goto out;
    req r = {0};
    parse_req(&r, plain ? plain : buf + off, plain ? plen : want);
    free(plain);
    int status = s->status;
    char body[128];
    if (status == 200)
        snprintf(body, sizeof body, "{\"ack\": %lld}", r.seq);
    else
        snprintf(body, sizeof body, "{\"error\": \"status %d\", \"at\": \"\"}", status);
    if (status == 200) {
        pthread_mutex_lock(&s->mu);
        if (s->n < MAX_REQS) s->reqs[s->n++] = r;
        pthread_mutex_unlock(&s->mu);
    }
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: "
                      "%zu\r\nConnection: close\r\n\r\n",
                      status, strlen(body));
    (void)!write(fd, head, (size_t)hn);
    (void)!write(fd, body, strlen(body));
out:
    free(buf);
}

static void *srv_main(void *arg)
{
    upsrv *s = arg;
    while (!s->stop) {
        struct pollfd p = {s->lfd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0) continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) continue;
        serve(s, fd);
        close(fd);
    }
    return NULL;
}

/* Bind 127.0.0.1:0; listen = 0 leaves connections refused (an upstream that is down). */
static void srv_open(upsrv *s, int listen_now)
{
    memset(s, 0, sizeof *s);
    s->status = 200;
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    if (listen_now) {
        assert_int_equal(listen(s->lfd, 16), 0);
        assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
    } else {
        s->stop = 1;
    }
}

static void srv_close(upsrv *s)
{
    if (!s->stop) {
        s->stop = 1;
        pthread_join(s->th, NULL);
    }
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
}

static size_t srv_points(upsrv *s)
{
    pthread_mutex_lock(&s->mu);
    size_t p = 0;
    for (size_t i = 0; i < s->n; i++)
        p += s->reqs[i].points;
    pthread_mutex_unlock(&s->mu);
    return p;
}

/* ---- batches, the forwarder's configuration, folders ------------------------------------ */

/* A batch of agent `agent` at site `site`, records first..seq (first 0 = one record),
 * `npoints` points of temperature_celsius valued after the site (value_of). */
static cm_batch *mk(const char *agent, const char *site, uint64_t first, uint64_t seq, int npoints)
{
    cm_batch *b = calloc(1, sizeof *b);
    cm_batch_init(b);
    assert_int_equal(cm_batch_set_agent(b, agent, "t", site), 0);
    b->seq = seq;
    b->first_seq = first;
    b->sent_ms = cm_now_ms();
    int64_t t0 = 1764082800000LL + (int64_t)seq * 60000;
    for (int i = 0; i < npoints; i++)
        assert_int_equal(cm_batch_add_point(b, "hall1/projector", "temperature_celsius", "C", NULL,
                                            0, t0 + i * 1000, value_of(site, i)),
                         0);
    return b;
}

static void drop(cm_batch *b)
{
    cm_batch_free(b);
    free(b);
}

typedef struct fwd_fixture {
    char dir[64], spool[128], token[128], url[64];
    co_upstream_conf up;
    co_forward_conf conf;
} fwd_fixture;

static void fwd_setup(fwd_fixture *w, int port)
{
    memset(w, 0, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "/tmp/cinemon-test-fwd-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    snprintf(w->spool, sizeof w->spool, "%s/spool", w->dir);
    snprintf(w->token, sizeof w->token, "%s/up.token", w->dir);
    snprintf(w->url, sizeof w->url, "http://127.0.0.1:%d/", port);
    FILE *f = fopen(w->token, "w");
    assert_non_null(f);
    fputs("forward-token-0123456789\n", f);
    fclose(f);
    chmod(w->token, 0600);
    w->up = (co_upstream_conf){.name = "nation",
                               .line = 1,
                               .url = w->url,
                               .token_file = w->token,
                               .agent_id = FWD_AGENT,
                               .mode = CO_FWD_FULL,
                               .interval_ms = 100,
                               .timeout_ms = 2000,
                               .backoff_base_ms = 20,
                               .backoff_cap_ms = 200,
                               .max_batch_bytes = 1 << 20,
                               .spool_dir = w->spool,
                               .fsync = CM_FSYNC_CYCLE,
                               .max_bytes = 16 << 20,
                               .min_free_bytes = 0,
                               .segment_bytes = 64 << 10};
    w->conf = (co_forward_conf){.ups = &w->up, .n = 1};
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void fwd_teardown(fwd_fixture *w)
{
    nftw(w->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static co_forward *fwd_start(fwd_fixture *w, co_store *s)
{
    co_forward *f = NULL;
    char err[512] = "";
    if (co_forward_start(&f, &w->conf, s, "test", err, sizeof err) != 0) fail_msg("%s", err);
    assert_non_null(f);
    return f;
}

/* One record of the upstream spool, decoded. */
typedef struct srec {
    uint64_t seq;
    char agent[64], site[64];
    size_t points;
    double sum;
} srec;

/* Every unacknowledged BATCH record of the spool at dir (the forwarder stopped). */
static size_t spool_batches(const char *dir, srec *out, size_t max)
{
    cm_spool *sp = NULL;
    cm_spool_opts o = {.dir = dir, .segment_bytes = 64 << 10, .max_bytes = 16 << 20};
    char err[256] = "";
    if (cm_spool_open(&sp, &o, NULL, err, sizeof err) != 0) fail_msg("%s", err);
    size_t n = 0;
    for (uint64_t from = 1;;) {
        cm_spool_record rec;
        int r = cm_spool_read(sp, from, &rec, err, sizeof err);
        assert_true(r >= 0);
        if (r == 0) break;
        from = rec.seq + 1;
        if (rec.type == CM_REC_GAP) continue;
        char *plain = NULL;
        size_t plen = rec.len;
        const char *json = rec.data;
        if (rec.type == CM_REC_BATCH_GZ) {
            assert_int_equal(cm_gunzip(rec.data, rec.len, 64 << 20, &plain, &plen, err, sizeof err),
                             0);
            json = plain;
        }
        cm_batch b;
        cm_batch_init(&b);
        char at[64];
        if (cm_wire_decode(json, plen, NULL, &b, err, sizeof err, at, sizeof at) != 0)
            fail_msg("spool record %llu: %s at %s", (unsigned long long)rec.seq, err, at);
        assert_true(n < max);
        srec *s = &out[n++];
        memset(s, 0, sizeof *s);
        s->seq = rec.seq;
        snprintf(s->agent, sizeof s->agent, "%s", b.agent_id);
        snprintf(s->site, sizeof s->site, "%s", b.site ? b.site : "");
        for (size_t i = 0; i < b.nseries; i++)
            for (size_t k = 0; k < b.series[i].npoints; k++) {
                s->points++;
                s->sum += b.series[i].points[k].value;
            }
        cm_batch_free(&b);
        free(plain);
    }
    cm_spool_close(sp);
    return n;
}

static off_t journal_size(const fwd_fixture *w)
{
    char p[256];
    snprintf(p, sizeof p, "%s/forward.journal", w->spool);
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

/* ---- through the writer ----------------------------------------------------------------- */

static void submit(co_writer *wr, cm_batch *b, co_batch_result want)
{
    co_batch_result res;
    char err[256] = "";
    if (co_writer_submit(wr, b, &res, err, sizeof err) != 0) fail_msg("submit: %s", err);
    assert_int_equal(res, want);
}

static void test_stored_batches_go_upstream_once(void **state)
{
    fx *x = *state;
    upsrv srv;
    srv_open(&srv, 1);
    fwd_fixture w;
    fwd_setup(&w, srv.port);
    co_writer *wr = NULL;
    char err[256] = "";
    assert_int_equal(co_writer_start(&wr, x->s, 16, err, sizeof err), 0);
    co_forward *f = fwd_start(&w, x->s);
    co_writer_set_journal(wr, co_forward_prepare, co_forward_settle, f);

    cm_batch *b[7] = {mk("a1", "S1", 0, 1, 3), mk("a1", "S1", 0, 2, 3),
                      mk("a2", "S2", 0, 1, 4), mk("a1", "S1", 0, 2, 3), /* a retry: duplicate */
                      mk("a1", "S1", 2, 3, 3),                          /* overlaps 2 */
                      mk("a1", "S1", 0, 3, 0),                          /* gap reports only */
                      mk("a1", "S1", 0, 4, 2)};
    assert_int_equal(cm_batch_add_gap(b[5], 3, 3, "spool_full"), 0);
    co_batch_result want[7] = {CO_BATCH_STORED,    CO_BATCH_STORED,  CO_BATCH_STORED,
                               CO_BATCH_DUPLICATE, CO_BATCH_OVERLAP, CO_BATCH_STORED,
                               CO_BATCH_STORED};
    for (int i = 0; i < 7; i++)
        submit(wr, b[i], want[i]);
    int64_t until = cm_mono_ms() + 15000;
    while (srv_points(&srv) < 12 && cm_mono_ms() < until)
        usleep(20000);
    usleep(300000); /* anything more (a duplicate) would arrive now */
    co_writer_stop(wr);
    co_forward_stop(f, 2000);

    pthread_mutex_lock(&srv.mu);
    size_t n = srv.n, points = 0, s1 = 0, s2 = 0;
    long long next = 1;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        const req *r = &srv.reqs[i];
        assert_string_equal(r->agent, FWD_AGENT);
        assert_true(r->one_site);             /* never two sites in one request */
        assert_int_equal(r->first_seq, next); /* upstream seqs 1.., contiguous, in order */
        assert_int_equal(r->ngaps, 0);
        next = r->seq + 1;
        points += r->points;
        sum += r->sum;
        if (!strcmp(r->site, "S1")) s1 += r->points;
        if (!strcmp(r->site, "S2")) s2 += r->points;
    }
    pthread_mutex_unlock(&srv.mu);
    /* four stored batches with samples: four upstream records */
    assert_int_equal(next - 1, 4);
    assert_int_equal(points, 12);
    assert_int_equal(s1, 8);
    assert_int_equal(s2, 4);
    assert_true(sum == 303 + 303 + 806 + 201);
    /* everything acknowledged: the spool holds nothing, the journal is empty */
    srec recs[8];
    assert_int_equal(spool_batches(w.spool, recs, 8), 0);
    assert_int_equal(journal_size(&w), 0);
    for (int i = 0; i < 7; i++)
        drop(b[i]);
    srv_close(&srv);
    fwd_teardown(&w);
}

/* ---- a crash between the commit and the spool ------------------------------------------- */

/* Write the group as the writer does, but stop the forwarder before settle (as a SIGKILL
 * would): prepare, commit (when commit), stop. */
static void crash_group(fwd_fixture *w, co_store *s, cm_batch **g, size_t n,
                        const co_batch_result *want, int commit)
{
    co_forward *f = fwd_start(w, s);
    co_forward_prepare(f, g, n);
    if (commit) {
        co_batch_result res[8];
        char err[256] = "";
        assert_int_equal(co_store_write(s, g, n, res, err, sizeof err), 0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(res[i], want[i]);
    }
    assert_true(journal_size(w) > 0);
    co_forward_stop(f, 0);
}

static void test_crash_after_commit_recovered(void **state)
{
    fx *x = *state;
    upsrv down;
    srv_open(&down, 0); /* nothing is acknowledged: the spool keeps every record */
    fwd_fixture w;
    fwd_setup(&w, down.port);
    cm_batch *g[3] = {mk("a1", "S1", 0, 1, 2), mk("a1", "S1", 0, 1, 2) /* same group: dup */,
                      mk("a2", "S2", 0, 5, 3)};
    co_batch_result want[3] = {CO_BATCH_STORED, CO_BATCH_DUPLICATE, CO_BATCH_STORED};
    crash_group(&w, x->s, g, 3, want, 1);
    srec r[8];
    assert_int_equal(spool_batches(w.spool, r, 8), 0); /* the crash: nothing reached the spool */

    co_forward *f = fwd_start(&w, x->s); /* the next start finishes the group */
    co_forward_stop(f, 0);
    assert_int_equal(journal_size(&w), 0);
    assert_int_equal(spool_batches(w.spool, r, 8), 2);
    assert_string_equal(r[0].agent, FWD_AGENT);
    assert_string_equal(r[0].site, "S1");
    assert_int_equal(r[0].points, 2);
    assert_true(r[0].sum == 201);
    assert_string_equal(r[1].site, "S2");
    assert_int_equal(r[1].points, 3);
    assert_true(r[1].sum == 603);
    assert_true(r[1].seq > r[0].seq);

    /* a start after that adds nothing */
    f = fwd_start(&w, x->s);
    co_forward_stop(f, 0);
    assert_int_equal(spool_batches(w.spool, r, 8), 2);
    for (int i = 0; i < 3; i++)
        drop(g[i]);
    srv_close(&down);
    fwd_teardown(&w);
}

static void test_crash_in_the_middle_of_settle(void **state)
{
    fx *x = *state;
    upsrv down;
    srv_open(&down, 0);
    fwd_fixture w;
    fwd_setup(&w, down.port);
    cm_batch *g[3] = {mk("a1", "S1", 0, 1, 1), mk("a2", "S2", 0, 1, 2), mk("a3", "S3", 0, 1, 3)};
    co_batch_result want[3] = {CO_BATCH_STORED, CO_BATCH_STORED, CO_BATCH_STORED};
    crash_group(&w, x->s, g, 3, want, 1);
    /* the settle had appended the first record when it was killed */
    char jp[256], err[256] = "";
    snprintf(jp, sizeof jp, "%s/forward.journal", w.spool);
    co_fjournal *j = NULL;
    assert_int_equal(co_fj_open(&j, jp, 1, err, sizeof err), 0);
    uint64_t low;
    const co_fj_entry *e;
    size_t n;
    assert_int_equal(co_fj_read(j, &low, &e, &n, err, sizeof err), 1);
    assert_int_equal(n, 3);
    cm_spool *sp = NULL;
    cm_spool_opts o = {.dir = w.spool, .segment_bytes = 64 << 10, .max_bytes = 16 << 20};
    assert_int_equal(cm_spool_open(&sp, &o, NULL, err, sizeof err), 0);
    assert_int_equal(cm_spool_next_seq(sp), low);
    uint64_t seq;
    assert_int_equal(cm_spool_append(sp, e[0].type, e[0].payload, e[0].len, &seq, err, sizeof err),
                     0);
    cm_spool_close(sp);
    co_fj_close(j);

    co_forward *f = fwd_start(&w, x->s);
    co_forward_stop(f, 0);
    srec r[8];
    assert_int_equal(spool_batches(w.spool, r, 8), 3); /* each once */
    assert_string_equal(r[0].site, "S1");
    assert_string_equal(r[1].site, "S2");
    assert_string_equal(r[2].site, "S3");
    assert_int_equal(r[0].points + r[1].points + r[2].points, 6);
    for (int i = 0; i < 3; i++)
        drop(g[i]);
    srv_close(&down);
    fwd_teardown(&w);
}

static void test_crash_before_commit_forwards_nothing(void **state)
{
    fx *x = *state;
    upsrv down;
    srv_open(&down, 0);
    fwd_fixture w;
    fwd_setup(&w, down.port);
    cm_batch *g[2] = {mk("a1", "S1", 0, 1, 2), mk("a2", "S2", 0, 1, 2)};
    crash_group(&w, x->s, g, 2, NULL, 0); /* the journal holds the group; no commit */
    co_forward *f = fwd_start(&w, x->s);
    co_forward_stop(f, 0);
    srec r[4];
    assert_int_equal(spool_batches(w.spool, r, 4), 0);
    assert_int_equal(journal_size(&w), 0);
    /* the agents send the batches again: now they are stored and forwarded, once */
    co_writer *wr = NULL;
    char err[256] = "";
    assert_int_equal(co_writer_start(&wr, x->s, 16, err, sizeof err), 0);
    f = fwd_start(&w, x->s);
    co_writer_set_journal(wr, co_forward_prepare, co_forward_settle, f);
    submit(wr, g[0], CO_BATCH_STORED);
    submit(wr, g[1], CO_BATCH_STORED);
    co_writer_stop(wr);
    co_forward_stop(f, 0);
    assert_int_equal(spool_batches(w.spool, r, 4), 2);
    assert_int_equal(journal_size(&w), 0);
    for (int i = 0; i < 2; i++)
        drop(g[i]);
    srv_close(&down);
    fwd_teardown(&w);
}

/* ---- the uploader never merges two sites ------------------------------------------------ */

typedef struct uctx {
    cm_spool *sp;
    uint64_t want;
    int64_t deadline;
} uctx;

static void on_check(uv_timer_t *t)
{
    uctx *c = t->data;
    cm_spool_stats st;
    cm_spool_stats_get(c->sp, &st);
    if (st.acked_seq >= c->want || cm_mono_ms() > c->deadline) uv_stop(t->loop);
}

static void append_batch(cm_spool *sp, const char *site, int npoints)
{
    cm_batch *b = mk("any", site, 0, cm_spool_next_seq(sp), npoints);
    size_t len;
    char *json = cm_wire_encode(b, &len);
    char err[128];
    uint64_t seq;
    assert_int_equal(cm_spool_append(sp, CM_REC_BATCH, json, len, &seq, err, sizeof err), 0);
    free(json);
    drop(b);
}

static void test_uploader_keeps_sites_apart(void **state)
{
    (void)state;
    upsrv srv;
    srv_open(&srv, 1);
    fwd_fixture w;
    fwd_setup(&w, srv.port);
    cm_spool *sp = NULL;
    cm_spool_opts o = {.dir = w.spool, .segment_bytes = 64 << 10, .max_bytes = 16 << 20};
    char err[256] = "";
    assert_int_equal(cm_spool_open(&sp, &o, NULL, err, sizeof err), 0);
    append_batch(sp, "S1", 1);
    append_batch(sp, "S1", 2);
    append_batch(sp, "S2", 3);
    append_batch(sp, "S1", 4);
    const char *gap = "{\"from_seq\":1,\"to_seq\":1,\"reason\":\"spool_full\"}";
    uint64_t seq;
    assert_int_equal(cm_spool_append(sp, CM_REC_GAP, gap, strlen(gap), &seq, err, sizeof err), 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    ag_uploader *u = NULL;
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/ingest", srv.port);
    ag_uploader_opts uo = {.url = url,
                           .token = "t0k",
                           .agent_id = FWD_AGENT,
                           .record_sites = 1,
                           .spool = sp,
                           .interval_ms = 0,
                           .backoff_base_ms = 20,
                           .backoff_cap_ms = 100};
    assert_int_equal(ag_uploader_open(&u, &loop, &uo, err, sizeof err), 0);
    uv_timer_t t;
    uctx c = {sp, 5, cm_mono_ms() + 10000};
    uv_timer_init(&loop, &t);
    t.data = &c;
    uv_timer_start(&t, on_check, 10, 10);
    uv_run(&loop, UV_RUN_DEFAULT);
    ag_uploader_close(u);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    cm_spool_close(sp);

    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.n, 3);
    const req *r = srv.reqs;
    assert_string_equal(r[0].site, "S1");
    assert_int_equal(r[0].first_seq, 1);
    assert_int_equal(r[0].seq, 2);
    assert_int_equal(r[0].points, 3);
    assert_string_equal(r[1].site, "S2");
    assert_int_equal(r[1].first_seq, 3);
    assert_int_equal(r[1].seq, 3);
    assert_string_equal(r[2].site, "S1");
    assert_int_equal(r[2].first_seq, 4);
    assert_int_equal(r[2].seq, 5); /* the gap record goes with the last one */
    assert_int_equal(r[2].ngaps, 1);
    for (size_t i = 0; i < 3; i++)
        assert_true(r[i].one_site);
    pthread_mutex_unlock(&srv.mu);
    srv_close(&srv);
    fwd_teardown(&w);
}

/* ---- ingest: an agent's token and a forwarding token ------------------------------------ */

static unsigned post(co_ingest *ing, const char *agent, const char *tok_site, const char *site,
                     uint64_t seq, char *at, size_t atlen)
{
    co_principal who = {0};
    snprintf(who.agent_id, sizeof who.agent_id, "%s", agent);
    snprintf(who.site, sizeof who.site, "%s", tok_site);
    cm_batch *b = mk(agent, site ? site : "S1", 0, seq, 1);
    if (!site) b->site = NULL;
    size_t len;
    char *json = cm_wire_encode(b, &len);
    drop(b);
    json_t *body = NULL;
    unsigned st = co_ingest_batch(ing, &who, json, len, &body);
    free(json);
    const char *a = json_string_value(json_object_get(body, "at"));
    snprintf(at, atlen, "%s", a ? a : "");
    json_decref(body);
    return st;
}

static void test_ingest_forwarding_scope(void **state)
{
    fx *x = *state;
    char err[256] = "", at[64];
    co_site sites[3] = {{"GD1", "a", "Guangdong", "Guangzhou", "wanda"},
                        {"GD2", "b", "Guangdong", "Shenzhen", "cgv"},
                        {"BJ1", "c", "Beijing", "Beijing", "wanda"}};
    assert_int_equal(co_store_import(x->s, sites, 3, NULL, 0, "test", err, sizeof err), 0);
    co_writer *wr = NULL;
    assert_int_equal(co_writer_start(&wr, x->s, 16, err, sizeof err), 0);
    co_metrics *m = co_metrics_new(NULL, 0);
    co_ingest *ing = co_ingest_new(x->s, wr, m, NULL, 0);
    assert_non_null(ing);

    /* an agent's token: its own site only (absent = its own), unchanged */
    assert_int_equal(post(ing, "ag", "GD1", "GD1", 1, at, sizeof at), 200);
    assert_int_equal(post(ing, "ag", "GD1", NULL, 2, at, sizeof at), 200);
    assert_int_equal(post(ing, "ag", "GD1", "GD2", 3, at, sizeof at), 403);
    assert_string_equal(at, "agent.site");
    assert_int_equal(post(ing, "ag", "GD1", "*", 3, at, sizeof at), 403);
    /* a forwarding token for every site: any site, which must be named */
    assert_int_equal(post(ing, "fw", "*", "GD1", 1, at, sizeof at), 200);
    assert_int_equal(post(ing, "fw", "*", "BJ1", 2, at, sizeof at), 200);
    assert_int_equal(post(ing, "fw", "*", "NEW9", 3, at, sizeof at), 200);
    assert_int_equal(post(ing, "fw", "*", NULL, 4, at, sizeof at), 400);
    assert_string_equal(at, "agent.site");
    assert_int_equal(post(ing, "fw", "*", "*", 4, at, sizeof at), 403);
    /* a province's or a chain's: the stored sites of it */
    assert_int_equal(post(ing, "fp", "province:Guangdong", "GD1", 1, at, sizeof at), 200);
    assert_int_equal(post(ing, "fp", "province:Guangdong", "GD2", 2, at, sizeof at), 200);
    assert_int_equal(post(ing, "fp", "province:Guangdong", "BJ1", 3, at, sizeof at), 403);
    assert_int_equal(post(ing, "fp", "province:Guangdong", "NEW9", 3, at, sizeof at), 403);
    assert_int_equal(post(ing, "fc", "chain:wanda", "BJ1", 1, at, sizeof at), 200);
    assert_int_equal(post(ing, "fc", "chain:wanda", "GD2", 2, at, sizeof at), 403);
    /* exactly once per agent id as for any agent */
    assert_int_equal(post(ing, "fw", "*", "GD2", 2, at, sizeof at), 200); /* duplicate ack */
    uint64_t last = 0;
    assert_int_equal(co_store_last_seq(x->s, "fw", &last, err, sizeof err), 1);
    assert_int_equal(last, 3);
    assert_int_equal(fx_sql_int(x, "SELECT count(*) FROM batches WHERE agent_id = 'fw'"), 3);

    co_scope sc;
    assert_int_equal(co_ingest_forward_scope("*", &sc), 1);
    assert_int_equal(sc.kind, CO_SCOPE_ALL);
    assert_int_equal(co_ingest_forward_scope("province:P", &sc), 1);
    assert_int_equal(sc.kind, CO_SCOPE_PROVINCE);
    assert_string_equal(sc.value, "P");
    assert_int_equal(co_ingest_forward_scope("chain:C", &sc), 1);
    assert_int_equal(sc.kind, CO_SCOPE_CHAIN);
    assert_int_equal(co_ingest_forward_scope("CN-11010101", &sc), 0);
    assert_int_equal(co_ingest_forward_scope("province:", &sc), 0);

    co_ingest_free(ing);
    co_writer_stop(wr);
    co_metrics_free(m);
}

int main(void)
{
    cm_log_init("test_forward", CM_LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stored_batches_go_upstream_once, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_crash_after_commit_recovered, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_crash_in_the_middle_of_settle, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_crash_before_commit_forwards_nothing, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test(test_uploader_keeps_sites_apart),
        cmocka_unit_test_setup_teardown(test_ingest_forwarding_scope, store_fx_setup,
                                        store_fx_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}

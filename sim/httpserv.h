/* httpserv.h — a small, strictly bounds-checked HTTP/1.1 server on the libuv loop for one
 * simulated device: request parsing (a pure function, unit-tested and fuzzed), keep-alive,
 * error answers, a connection cap and the injected faults of fault.h per request. */
#ifndef SIM_HTTPSERV_H
#define SIM_HTTPSERV_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "fault.h"

#define SIM_HTTP_MAX_HEAD 8192    /* request line + headers */
#define SIM_HTTP_MAX_BODY 65536   /* Content-Length above this: 413 */
#define SIM_HTTP_MAX_HEADERS 64   /* more header lines: 431 */
#define SIM_HTTP_MAX_TARGET 255   /* longer request targets: 414 */
#define SIM_HTTP_MAX_CONNS 32     /* per device; one more closes the oldest */
#define SIM_HTTP_EPISODE_MS 30000 /* a fault keeps the device "in an episode" this long */

/* A parsed request. Strings are copied (NUL-terminated); body points into the input. */
typedef struct sim_http_req {
    char method[16];
    char path[SIM_HTTP_MAX_TARGET + 1]; /* target without the query string */
    char query[SIM_HTTP_MAX_TARGET + 1];
    int minor;           /* HTTP/1.minor */
    int keep_alive;      /* from the version and the Connection header */
    int expect_continue; /* "Expect: 100-continue" */
    int head_complete;   /* set even when the body is still incomplete */
    size_t head_len;     /* bytes of request line + headers + blank line */
    size_t content_length;
    const char *body; /* content_length bytes, inside the parsed buffer */
} sim_http_req;

/* Parse one request from buf[0..len). Returns the bytes it occupies (> 0) when complete,
 * 0 when more input is needed, or the negated HTTP status of the error: -400 malformed,
 * -413 body too large, -414 target too long, -431 head too large, -501 Transfer-Encoding,
 * -505 version not HTTP/1.x. Never reads outside buf. */
long sim_http_parse(const char *buf, size_t len, sim_http_req *req);

/* The reason phrase of a status ("Not Found"); "Unknown" for others. */
const char *sim_http_reason(int status);

/* What a device handler answers. body is malloc'd (or NULL); the server takes ownership. */
typedef struct sim_http_resp {
    int status;
    const char *ctype; /* static string; NULL = no Content-Type */
    const char *allow; /* for 405: the Allow header value (static) */
    char *body;
    size_t len;
} sim_http_resp;

/* Answer one well-formed request at loop time now_ms; episode is 1 while the device is in a
 * fault episode (a fault happened in the last SIM_HTTP_EPISODE_MS). */
typedef void (*sim_http_handler)(void *ctx, const sim_http_req *req, int64_t now_ms, int episode,
                                 sim_http_resp *resp);

typedef struct sim_httpserv {
    uv_tcp_t listener;
    uv_loop_t *loop;
    sim_http_handler handler;
    void *ctx;
    double fault_rate;
    sim_fault_state fault;
    int64_t episode_until_ms;
    struct sim_hconn *conns; /* newest first */
    int nconns, max_conns, listening;
    uint64_t connections, requests, responses, bad_requests, faults;
} sim_httpserv;

/* Listen on addr and answer with handler(ctx, ...). 0 or a negative libuv error. */
int sim_httpserv_start(sim_httpserv *s, uv_loop_t *loop, const struct sockaddr *addr,
                       sim_http_handler handler, void *ctx, double fault_rate, uint64_t seed);
/* Close the listener and every connection (handles close on the loop's next run). */
void sim_httpserv_stop(sim_httpserv *s);

#endif

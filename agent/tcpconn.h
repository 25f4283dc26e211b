/* tcpconn.h — one TCP client connection on the agent's libuv loop, the plumbing shared by the
 * TCP drivers (pjlink, text): resolve (skipped for literal addresses), connect with a timeout,
 * read into a buffer of its own, write copies, one wait timer, a deferred call that never runs
 * inside the caller's stack, and a close that outlives its owner.
 *
 * Every callback runs from the loop, never from inside an ag_tcpconn_* call. After an
 * on_connect failure, on_lost and on_closed the socket is fully closed, so a new
 * ag_tcpconn_connect may start at once. After ag_tcpconn_free no callback runs. */
#ifndef AG_TCPCONN_H
#define AG_TCPCONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct ag_tcpconn ag_tcpconn;

/* Why on_lost ran. */
typedef enum { AG_TCP_LOST_READ, AG_TCP_LOST_WRITE } ag_tcp_lost;

typedef struct ag_tcpconn_ops {
    /* Connect finished: 0 = connected and reading; else a libuv error (UV_ETIMEDOUT when the
     * connect timeout passed), the socket already closed; resolving = 1 when the name could not
     * be resolved (status is then a UV_EAI_* error). */
    void (*on_connect)(void *ud, int status, int resolving);
    /* Bytes read (the buffer is the connection's; valid during the call). */
    void (*on_data)(void *ud, const char *buf, size_t len);
    /* A connected socket failed (UV_EOF when the device closed it); already closed. */
    void (*on_lost)(void *ud, int err, ag_tcp_lost how);
    /* The wait armed by ag_tcpconn_wait passed. */
    void (*on_timeout)(void *ud);
    /* The socket closed after ag_tcpconn_disconnect. */
    void (*on_closed)(void *ud);
    /* The call asked for by ag_tcpconn_defer. */
    void (*on_deferred)(void *ud);
} ag_tcpconn_ops;

/* A connection to host (name or literal address, IPv6 optionally in brackets) and port, not yet
 * connected. ops is copied; host is copied. NULL when out of memory. */
ag_tcpconn *ag_tcpconn_new(uv_loop_t *loop, const char *host, int port, const ag_tcpconn_ops *ops,
                           void *ud);
/* Resolve (IPv4 preferred) and connect within timeout_ms (≤ 0: 2000); result via on_connect.
 * -1 when a socket is still open or closing (nothing started). */
int ag_tcpconn_connect(ag_tcpconn *c, int64_t timeout_ms);
/* Queue len bytes (copied). 0, or a negative libuv error when nothing was queued. */
int ag_tcpconn_write(ag_tcpconn *c, const void *buf, size_t len);
/* (Re)arm the wait timer: on_timeout after ms (≤ 0: 2000) unless stopped. */
void ag_tcpconn_wait(ag_tcpconn *c, int64_t ms);
/* Stop the wait timer. */
void ag_tcpconn_stop_wait(ag_tcpconn *c);
/* Close the socket (no more on_data); on_closed follows. Nothing when none is open. */
void ag_tcpconn_disconnect(ag_tcpconn *c);
/* on_deferred from a zero-delay timer (asking again before it ran calls it once). */
void ag_tcpconn_defer(ag_tcpconn *c);
/* Cancel a deferred call not yet made. */
void ag_tcpconn_undefer(ag_tcpconn *c);
/* 1 while connected and reading. */
int ag_tcpconn_connected(const ag_tcpconn *c);
/* 1 while a socket exists (resolving, connecting, connected or closing). */
int ag_tcpconn_busy(const ag_tcpconn *c);
/* Cancel everything and release c once the loop has closed its handles; no callback runs
 * afterwards, so the owner may free its own state at once. Safe on NULL. */
void ag_tcpconn_free(ag_tcpconn *c);

#endif

/* tcpserv.h — a TCP line server on the libuv loop for one text-protocol device: greeting,
 * line framing (CR, LF or CRLF), connection limit, and the injected faults. */
#ifndef SIM_TCPSERV_H
#define SIM_TCPSERV_H

#include <stdint.h>
#include <uv.h>

#include "fault.h"
#include "lineproto.h"

typedef struct sim_tcpserv {
    uv_tcp_t listener;
    uv_loop_t *loop;
    const sim_line_proto *proto;
    void *dev;
    double fault_rate;
    sim_fault_state fault;
    struct sim_tconn *conns; /* newest first */
    int nconns;
    uint64_t connections, lines, faults[5];
} sim_tcpserv;

/* Listen on addr for dev speaking proto. 0 or a negative libuv error. */
int sim_tcpserv_start(sim_tcpserv *s, uv_loop_t *loop, const struct sockaddr *addr,
                      const sim_line_proto *proto, void *dev, double fault_rate, uint64_t seed);
/* Close the listener and every connection (handles close on the loop's next run). */
void sim_tcpserv_stop(sim_tcpserv *s);

#endif

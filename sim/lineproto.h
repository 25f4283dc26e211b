/* lineproto.h — the interface between the TCP line server and a text protocol device
 * (PJLink, Dolby CP750): a greeting on connect, then one reply per input line. */
#ifndef SIM_LINEPROTO_H
#define SIM_LINEPROTO_H

#include <stddef.h>
#include <stdint.h>

/* Per-connection state a protocol may use (PJLink: the authentication nonce). */
typedef struct sim_conn_state {
    char nonce[9];
    int authed;
} sim_conn_state;

typedef struct sim_line_proto {
    const char *name;
    size_t max_line; /* longer input lines close the connection */
    int max_conns;   /* more connections close the oldest one (0 = no limit) */
    /* Greeting written into out on connect (may be empty); returns its length. */
    size_t (*greet)(void *dev, sim_conn_state *cs, uint64_t random, char *out, size_t cap);
    /* Reply to one line (without CR/LF) at now_ms into out, its length in *outlen (0 = no
     * reply). Returns 0, or -1 to close the connection after sending the reply. */
    long (*line)(void *dev, sim_conn_state *cs, const char *line, size_t len, int64_t now_ms,
                 char *out, size_t cap, size_t *outlen);
} sim_line_proto;

#endif

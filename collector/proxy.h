/* proxy.h — the client's address behind reverse proxies (docs/access.md, "Behind a proxy"):
 * [collector] trusted_proxies, a list of addresses and CIDR networks (IPv4 and IPv6), and the
 * standard right-to-left walk of X-Forwarded-For. A request whose peer is a trusted proxy comes
 * from the right-most address of its X-Forwarded-For that is not itself a trusted proxy; any
 * other request comes from its peer, whatever header it carries. Pure: no I/O, no allocation. */
#ifndef CO_PROXY_H
#define CO_PROXY_H

#include <stddef.h>

#define CO_PROXIES_MAX 64 /* entries of trusted_proxies */
#define CO_ADDR_MAX 46    /* an address as text with its NUL (INET6_ADDRSTRLEN) */

/* One trusted network: an address (IPv4 in the first 4 bytes) and its prefix length. */
typedef struct co_proxy_net {
    unsigned char addr[16];
    unsigned char family; /* 4 or 6 */
    unsigned char prefix; /* 0..32 or 0..128 */
} co_proxy_net;

/* The trusted proxies; n == 0: no peer is trusted and X-Forwarded-For is never read. */
typedef struct co_proxies {
    co_proxy_net nets[CO_PROXIES_MAX];
    size_t n;
} co_proxies;

/* Where co_proxy_client found the client's address. */
typedef enum {
    CO_CLIENT_PEER = 0,      /* the peer is not a trusted proxy, or sent no X-Forwarded-For */
    CO_CLIENT_FORWARDED = 1, /* from X-Forwarded-For of a trusted proxy */
    CO_CLIENT_MALFORMED = 2  /* a trusted proxy sent an X-Forwarded-For that cannot be read
                              * where it matters: the peer's address is used */
} co_client_source;

/* Parse "127.0.0.1, ::1, 10.0.0.0/8" (comma-separated addresses or networks; a network's host
 * bits must be 0; an IPv4-mapped IPv6 entry counts as IPv4) into out (replaced). "" or only
 * blanks is the empty list. 0, or -1 with the offending entry and why in err. */
int co_proxies_parse(const char *list, co_proxies *out, char *err, size_t errlen);
/* 1 when the address addr (IPv4, IPv6 or IPv4-mapped IPv6 text) is within p, 0 when it is
 * not, -1 when addr is not an address. */
int co_proxies_contains(const co_proxies *p, const char *addr);
/* The client address of a request from peer (its address as text) that carries the
 * X-Forwarded-For header lines xff[0..nxff) in the order received (one list, as if joined by
 * commas), written canonically (IPv4-mapped as IPv4, IPv6 compressed lower case) into
 * out[outlen]: peer unless peer is within p; else walking the list from the right, the first
 * address not within p (elements left of it are never read: a client may write anything
 * there), or the left-most when all are trusted. An element on that walk that is not an
 * address ("[v6]", "[v6]:port" and "v4:port" are addresses) makes it CO_CLIENT_MALFORMED and
 * the answer is peer. outlen should be CO_ADDR_MAX (a longer peer text is cut). */
co_client_source co_proxy_client(const co_proxies *p, const char *peer, const char *const *xff,
                                 size_t nxff, char *out, size_t outlen);

#endif

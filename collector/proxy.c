/* proxy.c — trusted_proxies (addresses and CIDR networks) and the client address chosen from
 * X-Forwarded-For by the right-to-left walk of proxy.h. */
#include "proxy.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "errbuf.h"

#define ITEM_MAX 64 /* longest entry or element looked at, in bytes */

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* 1 for the blanks allowed around list elements (HTTP's OWS). */
static int blank(char c)
{
    return c == ' ' || c == '\t';
}

/* s[0..n) without leading and trailing blanks. */
static void trim(const char **s, size_t *n)
{
    while (*n && blank(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && blank((*s)[*n - 1]))
        (*n)--;
}

/* A bare IPv4 or IPv6 address s[0..n) into a (prefix set to the full length; IPv4-mapped
 * IPv6 becomes IPv4). 0 or -1. */
static int parse_ip(const char *s, size_t n, co_proxy_net *a)
{
    char buf[ITEM_MAX];
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(a, 0, sizeof *a);
    if (memchr(buf, ':', n)) {
        if (inet_pton(AF_INET6, buf, a->addr) != 1) return -1;
        if (memcmp(a->addr, v4_mapped, sizeof v4_mapped) == 0) {
            memmove(a->addr, a->addr + 12, 4);
            memset(a->addr + 4, 0, 12);
            a->family = 4;
            a->prefix = 32;
            return 0;
        }
        a->family = 6;
        a->prefix = 128;
        return 0;
    }
    if (inet_pton(AF_INET, buf, a->addr) != 1) return -1;
    a->family = 4;
    a->prefix = 32;
    return 0;
}

/* 1 when s[0..n) is a port: 1..5 digits. */
static int is_port(const char *s, size_t n)
{
    if (n == 0 || n > 5) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* One X-Forwarded-For element: "v4", "v6", "[v6]", "[v6]:port" or "v4:port". 0 or -1. */
static int parse_element(const char *s, size_t n, co_proxy_net *a)
{
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) return -1;
        size_t rest = n - (size_t)(close - s) - 1;
        if (rest && (close[1] != ':' || !is_port(close + 2, rest - 1))) return -1;
        size_t in = (size_t)(close - s) - 1;
        if (!memchr(s + 1, ':', in)) return -1; /* brackets hold IPv6 only */
        return parse_ip(s + 1, in, a);
    }
    const char *colon = memchr(s, ':', n);
    if (colon && !memchr(colon + 1, ':', n - (size_t)(colon - s) - 1)) { /* one colon: v4:port */
        if (!is_port(colon + 1, n - (size_t)(colon - s) - 1)) return -1;
        return parse_ip(s, (size_t)(colon - s), a) == 0 && a->family == 4 ? 0 : -1;
    }
    return parse_ip(s, n, a);
}

/* 1 when the first prefix bits of x and y agree. */
static int same_prefix(const unsigned char *x, const unsigned char *y, unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;
    if (memcmp(x, y, whole) != 0) return 0;
    if (!rest) return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (x[whole] & mask) == (y[whole] & mask);
}

/* 1 when a (a single address) is within one of p's networks. */
static int within(const co_proxies *p, const co_proxy_net *a)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->nets[i].family == a->family &&
            same_prefix(p->nets[i].addr, a->addr, p->nets[i].prefix))
            return 1;
    return 0;
}

/* a as canonical text into out[len]. */
static void format(const co_proxy_net *a, char *out, size_t len)
{
    char buf[CO_ADDR_MAX];
    if (!inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->addr, buf, sizeof buf))
        snprintf(buf, sizeof buf, "?");
    snprintf(out, len, "%s", buf);
}

/* One trusted_proxies entry s[0..n): "addr" or "addr/prefix". 0 or -1 with err. */
static int parse_entry(const char *s, size_t n, co_proxy_net *net, char *err, size_t errlen)
{
    int shown = n > ITEM_MAX ? ITEM_MAX : (int)n;
    const char *slash = memchr(s, '/', n);
    size_t al = slash ? (size_t)(slash - s) : n;
    if (parse_ip(s, al, net) != 0) {
        cm_seterr(err, errlen,
                  "'%.*s' is not an IPv4 or IPv6 address or network (a host name is not "
                  "resolved; write 10.0.0.0/8 or fd00::/8)",
                  shown, s);
        return -1;
    }
    if (!slash) return 0;
    int mapped = memchr(s, ':', al) && net->family == 4; /* ::ffff:a.b.c.d/len */
    unsigned max = net->family == 4 && !mapped ? 32 : 128, v = 0;
    size_t pl = n - al - 1;
    if (pl == 0 || pl > 3) v = 999;
    for (size_t i = 0; i < pl && v != 999; i++) {
        if (slash[1 + i] < '0' || slash[1 + i] > '9')
            v = 999;
        else
            v = v * 10 + (unsigned)(slash[1 + i] - '0');
    }
    if (v > max || (mapped && v < 96)) {
        cm_seterr(err, errlen, "'%.*s': the prefix length must be %s", shown, s,
                  mapped ? "96..128 (an IPv4-mapped network)"
                         : (max == 32 ? "0..32 (IPv4)" : "0..128 (IPv6)"));
        return -1;
    }
    net->prefix = (unsigned char)(mapped ? v - 96 : v);
    co_proxy_net host = *net;
    for (unsigned bit = net->prefix; bit < (net->family == 4 ? 32u : 128u); bit++)
        net->addr[bit / 8] &= (unsigned char)~(0x80 >> (bit % 8));
    if (memcmp(host.addr, net->addr, sizeof net->addr) != 0) {
        char base[CO_ADDR_MAX];
        format(net, base, sizeof base);
        cm_seterr(err, errlen, "'%.*s' has host bits set (the network is %s/%u)", shown, s, base,
                  (unsigned)net->prefix);
        return -1;
    }
    return 0;
}

int co_proxies_parse(const char *list, co_proxies *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *p = list ? list : "";
    size_t all = strlen(p);
    trim(&p, &all);
    if (all == 0) return 0;
    const char *end = p + all;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        const char *s = p;
        size_t n = (size_t)(stop - p);
        trim(&s, &n);
        if (n == 0) {
            cm_seterr(err, errlen, "an empty entry (two commas, or one at an end?)");
            return -1;
        }
        if (out->n == CO_PROXIES_MAX) {
            cm_seterr(err, errlen, "more than %d entries (use networks: 10.0.0.0/8)",
                      CO_PROXIES_MAX);
            return -1;
        }
        if (parse_entry(s, n, &out->nets[out->n], err, errlen) != 0) return -1;
        out->n++;
        if (!comma) return 0;
        p = comma + 1;
    }
}

int co_proxies_contains(const co_proxies *p, const char *addr)
{
    co_proxy_net a;
    if (!addr || parse_ip(addr, strlen(addr), &a) != 0) return -1;
    return within(p, &a);
}

co_client_source co_proxy_client(const co_proxies *p, const char *peer, const char *const *xff,
                                 size_t nxff, char *out, size_t outlen)
{
    co_proxy_net pa;
    if (!peer || parse_ip(peer, strlen(peer), &pa) != 0) {
        snprintf(out, outlen, "%s", peer ? peer : "?");
        return CO_CLIENT_PEER;
    }
    format(&pa, out, outlen);
    if (!p || p->n == 0 || !within(p, &pa)) return CO_CLIENT_PEER;
    co_proxy_net left = {{0}}; /* the left-most address seen so far: every one of them trusted */
    int seen = 0;
    for (size_t line = nxff; line-- > 0;) {
        const char *s = xff[line] ? xff[line] : "";
        const char *end = s + strlen(s);
        for (;;) { /* the elements of this line, right to left */
            const char *start = end;
            while (start > s && start[-1] != ',')
                start--;
            const char *e = start;
            size_t n = (size_t)(end - start);
            trim(&e, &n);
            co_proxy_net a;
            if (n == 0 || parse_element(e, n, &a) != 0) return CO_CLIENT_MALFORMED;
            if (!within(p, &a)) {
                format(&a, out, outlen);
                return CO_CLIENT_FORWARDED;
            }
            left = a;
            seen = 1;
            if (start == s) break;
            end = start - 1; /* before the comma */
        }
    }
    if (!seen) return CO_CLIENT_PEER;
    format(&left, out, outlen);
    return CO_CLIENT_FORWARDED;
}

/* ptcodec.c — the point encoding of ptcodec.h, and the varints it and the head's log use. */
#include "ptcodec.h"

#include <math.h>
#include <string.h>

#define FORM_SAME 0      /* the previous value's bits */
#define FORM_XOR 1       /* 1 + (leading zero bytes << 3 | trailing zero bytes), then the rest */
#define FORM_CENTS 65    /* then the zigzag varint of the change of value x 100 */
#define CENTS_MAX 9.0e13 /* |value x 100| below 2^53: every such integer is a double */

size_t co_varint_put(unsigned char *o, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        o[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    o[n++] = (unsigned char)v;
    return n;
}

int co_varint_get(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
        unsigned char c = *(*p)++;
        if (shift == 63 && c > 1) return 0;
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return 1;
        }
    }
    return 0;
}

uint64_t co_zigzag(int64_t d)
{
    return ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
}

int64_t co_unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

int64_t co_delta(int64_t a, int64_t prev)
{
    return (int64_t)((uint64_t)a - (uint64_t)prev);
}

/* 1 and *c when v is exactly c / 100 for an integer c (bit for bit, so -0.0 is not), else 0. */
static int cents_of(double v, int64_t *c)
{
    double x = v * 100.0;
    if (!(fabs(x) < CENTS_MAX)) return 0;
    int64_t n = llround(x);
    double back = (double)n / 100.0;
    if (memcmp(&back, &v, sizeof v) != 0) return 0;
    *c = n;
    return 1;
}

size_t co_pt_encode(unsigned char *out, co_pt_state *st, int64_t ts, double v)
{
    int64_t step = co_delta(ts, st->ts);
    size_t n = co_varint_put(out, co_zigzag(co_delta(step, st->step)));
    st->ts = ts;
    st->step = step;
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    int64_t cents = 0;
    int exact = cents_of(v, &cents);
    int64_t dc = co_delta(cents, st->cents);
    if (bits == st->bits) {
        out[n++] = FORM_SAME;
    } else if (exact && dc > -8192 && dc < 8192) { /* two varint bytes at most */
        out[n++] = FORM_CENTS;
        n += co_varint_put(out + n, co_zigzag(dc));
    } else {
        uint64_t x = bits ^ st->bits;
        unsigned lz = (unsigned)__builtin_clzll(x) / 8, tz = (unsigned)__builtin_ctzll(x) / 8;
        out[n++] = (unsigned char)(FORM_XOR + (lz << 3 | tz));
        x >>= tz * 8;
        for (unsigned i = 0; i < 8 - lz - tz; i++, x >>= 8)
            out[n++] = (unsigned char)x;
    }
    st->bits = bits;
    st->cents = exact ? cents : 0;
    return n;
}

int co_pt_decode(const unsigned char *in, size_t len, size_t *pos, co_pt_state *st, int64_t *ts,
                 double *v)
{
    const unsigned char *p = in + *pos, *end = in + len;
    uint64_t u;
    if (!co_varint_get(&p, end, &u) || p >= end) return -1;
    int64_t step = (int64_t)((uint64_t)st->step + (uint64_t)co_unzigzag(u));
    int64_t t = (int64_t)((uint64_t)st->ts + (uint64_t)step);
    unsigned form = *p++;
    uint64_t bits = st->bits;
    if (form == FORM_CENTS) {
        if (!co_varint_get(&p, end, &u)) return -1;
        int64_t c = (int64_t)((uint64_t)st->cents + (uint64_t)co_unzigzag(u));
        double d = (double)c / 100.0;
        memcpy(&bits, &d, sizeof bits);
    } else if (form != FORM_SAME) {
        if (form > FORM_XOR + 63) return -1;
        unsigned lz = (form - FORM_XOR) >> 3, tz = (form - FORM_XOR) & 7;
        if (lz + tz >= 8 || (size_t)(end - p) < 8 - lz - tz) return -1;
        uint64_t x = 0;
        for (unsigned i = 0; i < 8 - lz - tz; i++)
            x |= (uint64_t)p[i] << (8 * i);
        p += 8 - lz - tz;
        bits ^= x << (tz * 8);
    }
    memcpy(v, &bits, sizeof bits);
    int64_t c = 0;
    st->cents = cents_of(*v, &c) ? c : 0;
    st->ts = t;
    st->step = step;
    st->bits = bits;
    *ts = t;
    *pos = (size_t)(p - in);
    return 0;
}

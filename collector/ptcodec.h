/* ptcodec.h — a compact, lossless encoding of one series' points in time order (the head keeps
 * its points in it).
 *
 * Each point is its timestamp as the zigzag varint of the change of the step since the
 * previous point (one byte for a steady poll), then its value in the shortest of three forms:
 * the same bits as the previous value (one byte); a decimal with at most two places, as the
 * zigzag varint of the change of value x 100 (two or three bytes for a reading that moves a
 * little); or the XOR with the previous value's bits without its leading and trailing zero
 * bytes (after Gorilla, byte-aligned). Every form reproduces the value's bits exactly. */
#ifndef CO_PTCODEC_H
#define CO_PTCODEC_H

#include <stddef.h>
#include <stdint.h>

#define CO_PT_MAX 20 /* bytes one point can take */

/* What the encoder and the decoder carry from one point to the next; zero it to start. */
typedef struct co_pt_state {
    int64_t ts, step;
    uint64_t bits;
    int64_t cents; /* the previous value x 100 when that is exact, else 0 */
} co_pt_state;

/* Write v as a varint (7 bits a byte, low first) at o (room for 10 bytes); the bytes written. */
size_t co_varint_put(unsigned char *o, uint64_t v);
/* Read a varint at *p (not past end) and advance *p: 1 and *v, or 0 when it runs past end or
 * over 10 bytes. */
int co_varint_get(const unsigned char **p, const unsigned char *end, uint64_t *v);
/* d with its sign in the low bit (small magnitudes, small numbers). */
uint64_t co_zigzag(int64_t d);
/* The inverse of co_zigzag. */
int64_t co_unzigzag(uint64_t u);
/* a - prev in unsigned arithmetic (wrap-around is defined and undone by adding it back). */
int64_t co_delta(int64_t a, int64_t prev);

/* Append the point (ts, v) to out (room for CO_PT_MAX bytes); the bytes written. */
size_t co_pt_encode(unsigned char *out, co_pt_state *st, int64_t ts, double v);
/* Read the point at in[*pos] (len bytes in all) and advance *pos. 0, or -1 when the bytes end
 * early or are not a point. */
int co_pt_decode(const unsigned char *in, size_t len, size_t *pos, co_pt_state *st, int64_t *ts,
                 double *v);

#endif

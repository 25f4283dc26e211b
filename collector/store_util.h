/* store_util.h — what both store backends compute the same way, without a database: cache
 * keys, canonical labels, bucket arithmetic, token-hash checks. For the backends' files. */
#ifndef CO_STORE_UTIL_H
#define CO_STORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"

/* Canonical labels JSON (compact, sorted keys), bytes at most, terminator included. */
#define CO_LABELS_MAX 16384

/* a / b rounded towards minus infinity (b > 0). */
int64_t co_floor_div(int64_t a, int64_t b);
/* 1 when h is 64 lowercase hex digits (a SHA-256 as the stores keep it), else 0. */
int co_valid_hash(const char *h);
/* An unambiguous key of length-prefixed parts into *buf (grown as needed, *cap its size);
 * *len = its length. 0 or -1 (out of memory). */
int co_key_build(char **buf, size_t *cap, size_t *len, const char *const *parts, size_t nparts);
/* The series' labels as canonical JSON into out (CO_LABELS_MAX bytes); "{}" for none. 0, or -1
 * with err naming the series (a label not UTF-8, too long, out of memory). */
int co_labels_json(const cm_series *se, char *out, char *err, size_t errlen);

/* Growable points (timestamps and values) of a series being read. */
typedef struct co_points {
    int64_t *ts;
    double *v;
    size_t n, cap;
} co_points;

/* Append one point. 0 or -1 on out of memory. */
int co_points_push(co_points *p, int64_t ts, double v);
/* Free the arrays (the struct is the caller's). */
void co_points_free(co_points *p);

#endif

/* store_util.h — what both store backends compute the same way, without a database: cache
 * keys, canonical labels, bucket arithmetic, token-hash checks. For the backends' files. */
#ifndef CO_STORE_UTIL_H
#define CO_STORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "batch.h"
#include "head.h"

/* Canonical labels JSON (compact, sorted keys), bytes at most, terminator included. */
#define CO_LABELS_MAX 16384

/* a / b rounded towards minus infinity (b > 0). */
int64_t co_floor_div(int64_t a, int64_t b);
/* 1 when h is 64 lowercase hex digits (a SHA-256 as the stores keep it), else 0. */
int co_valid_hash(const char *h);
/* An unambiguous key of length-prefixed parts into *buf (grown as needed, *cap its size);
 * *len = its length. 0 or -1 (out of memory). */
int co_key_build(char **buf, size_t *cap, size_t *len, const char *const *parts, size_t nparts);
/* The cache key of a series without JSON: site, device, metric, then its labels' keys and
 * values sorted by key, each length-prefixed (labels given in any order give one key). 0, or
 * -1 (out of memory, a label without key or value, too many labels: the caller reports it
 * through co_labels_json). */
int co_series_key(char **buf, size_t *cap, size_t *len, const char *site, const cm_series *se);
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

/* Roll-up buckets of a series being read, newest first: the tables' rows, then the head's
 * points added. */
typedef struct co_bucket {
    int64_t bucket, n;
    double sum, min, max;
} co_bucket;
typedef struct co_buckets {
    co_bucket *b;
    size_t n, cap;
} co_buckets;

/* Append a bucket (older than those held). 0 or -1 on out of memory. */
int co_buckets_push(co_buckets *b, int64_t bucket, int64_t n, double sum, double min, double max);
/* Add points (in time order) by buckets of step ms: into a bucket held or as new ones; then
 * keep the newest `limit` (0 = all). 0 or -1 on out of memory. */
int co_buckets_add_points(co_buckets *b, const co_head_point *p, size_t n, int64_t step,
                          size_t limit);
/* Append the buckets oldest first to arr as [bucket_ms, avg, min, max, count]. 0 or -1. */
int co_buckets_json(const co_buckets *b, json_t *arr);
/* Free the array (the struct is the caller's). */
void co_buckets_free(co_buckets *b);

/* Merge points held in the head (n, in time order) into p (in time order): one point per
 * timestamp, the head's value where both hold one. 0 or -1 (out of memory). */
int co_points_merge(co_points *p, const co_head_point *h, size_t n);

/* Order the objects of arr by their "ts_ms" (stable: equal times keep their order). 0 or -1
 * (out of memory). */
int co_json_sort_by_ts(json_t *arr);

#endif

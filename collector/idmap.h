/* idmap.h — a string → id map (open addressing, FNV-1a), the stores' cache of device and
 * series ids by their key. Only a cache: when it holds `max` entries it is simply cleared. */
#ifndef CO_IDMAP_H
#define CO_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct co_idmap_entry {
    char *key; /* NULL = empty slot */
    size_t len;
    uint64_t hash;
    int64_t id;
} co_idmap_entry;

typedef struct co_idmap {
    co_idmap_entry *slot;
    size_t cap, n; /* cap is a power of two */
} co_idmap;

/* FNV-1a hash of n bytes (the h of get and put). */
uint64_t co_idmap_hash(const char *p, size_t n);
/* Empty the map and free its memory (a zeroed map is empty). */
void co_idmap_clear(co_idmap *m);
/* 1 (and *id) when key (len bytes, hash h) is in the map, else 0. */
int co_idmap_get(const co_idmap *m, const char *key, size_t len, uint64_t h, int64_t *id);
/* Add key -> id (key not present); a map of max entries is cleared first. 0 or -1 (OOM). */
int co_idmap_put(co_idmap *m, const char *key, size_t len, uint64_t h, int64_t id, size_t max);

#endif

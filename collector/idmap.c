/* idmap.c — a string → id map with open addressing (the stores' id cache). */
#include "idmap.h"

#include <stdlib.h>
#include <string.h>

uint64_t co_idmap_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void co_idmap_clear(co_idmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slot[i].key);
    free(m->slot);
    m->slot = NULL;
    m->cap = m->n = 0;
}

int co_idmap_get(const co_idmap *m, const char *key, size_t len, uint64_t h, int64_t *id)
{
    if (!m->cap) return 0;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const co_idmap_entry *e = &m->slot[i];
        if (!e->key) return 0;
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0) {
            *id = e->id;
            return 1;
        }
    }
}

static void place(co_idmap_entry *slot, size_t cap, co_idmap_entry e)
{
    size_t i = e.hash & (cap - 1);
    while (slot[i].key)
        i = (i + 1) & (cap - 1);
    slot[i] = e;
}

/* Add key -> id (key not present). A full cache is simply cleared: it is only a cache. */
int co_idmap_put(co_idmap *m, const char *key, size_t len, uint64_t h, int64_t id, size_t max)
{
    if (m->n >= max) co_idmap_clear(m);
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 1024;
        co_idmap_entry *ns = calloc(ncap, sizeof *ns);
        if (!ns) return -1;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slot[i].key) place(ns, ncap, m->slot[i]);
        free(m->slot);
        m->slot = ns;
        m->cap = ncap;
    }
    char *k = malloc(len ? len : 1);
    if (!k) return -1;
    memcpy(k, key, len);
    place(m->slot, m->cap, (co_idmap_entry){k, len, h, id});
    m->n++;
    return 0;
}

/* mib.c — sorted OID table (see mib.h). */
#include "mib.h"

#include <stdlib.h>
#include <string.h>

int sim_mib_add(sim_mib *m, const char *prefix, const uint32_t *suffix, size_t nsuffix,
                uint16_t var, uint16_t row)
{
    sim_oid o;
    if (sim_oid_parse(prefix, &o) != 0 || o.len + nsuffix > SIM_MAX_OID) return -1;
    for (size_t i = 0; i < nsuffix; i++) o.sub[o.len++] = suffix[i];
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        sim_entry *ne = realloc(m->e, nc * sizeof *ne);
        if (!ne) return -1;
        m->e = ne;
        m->cap = nc;
    }
    m->e[m->n++] = (sim_entry){.oid = o, .var = var, .row = row};
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    return sim_oid_cmp(&((const sim_entry *)a)->oid, &((const sim_entry *)b)->oid);
}

int sim_mib_seal(sim_mib *m)
{
    if (m->n) qsort(m->e, m->n, sizeof *m->e, entry_cmp);
    for (size_t i = 1; i < m->n; i++)
        if (sim_oid_cmp(&m->e[i - 1].oid, &m->e[i].oid) == 0) return -1;
    return 0;
}

void sim_mib_free(sim_mib *m)
{
    free(m->e);
    memset(m, 0, sizeof *m);
}

/* First index whose OID is >= oid (n when none). */
static size_t lower_bound(const sim_mib *m, const sim_oid *oid)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sim_oid_cmp(&m->e[mid].oid, oid) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

long sim_mib_find(const sim_mib *m, const sim_oid *oid)
{
    size_t i = lower_bound(m, oid);
    return i < m->n && sim_oid_cmp(&m->e[i].oid, oid) == 0 ? (long)i : -1;
}

long sim_mib_next(const sim_mib *m, const sim_oid *oid)
{
    size_t i = lower_bound(m, oid);
    if (i < m->n && sim_oid_cmp(&m->e[i].oid, oid) == 0) i++;
    return i < m->n ? (long)i : -1;
}

int sim_mib_has_object(const sim_mib *m, const sim_oid *oid)
{
    if (oid->len < 2) return 0;
    sim_oid p = *oid;
    p.len--;
    size_t i = lower_bound(m, &p);
    if (i >= m->n) return 0;
    const sim_oid *e = &m->e[i].oid;
    if (e->len <= p.len) return 0;
    return memcmp(e->sub, p.sub, p.len * sizeof *p.sub) == 0;
}

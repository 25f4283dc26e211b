/* mib.h — a device model's sorted OID table: exact lookup and GETNEXT by binary search. */
#ifndef SIM_MIB_H
#define SIM_MIB_H

#include <stddef.h>
#include <stdint.h>

#include "ber.h"

typedef struct sim_entry {
    sim_oid oid;
    uint16_t var; /* which value (model-specific) */
    uint16_t row; /* row number for table cells (model-specific meaning) */
} sim_entry;

typedef struct sim_mib {
    sim_entry *e;
    size_t n, cap;
} sim_mib;

/* Add the entry "prefix.suffix..." (nsuffix sub-identifiers). 0 or -1 (no memory, too long). */
int sim_mib_add(sim_mib *m, const char *prefix, const uint32_t *suffix, size_t nsuffix,
                uint16_t var, uint16_t row);
/* Sort the table; -1 when an OID occurs twice. Call once after the last add. */
int sim_mib_seal(sim_mib *m);
void sim_mib_free(sim_mib *m);
/* Index of the entry equal to oid, or -1. */
long sim_mib_find(const sim_mib *m, const sim_oid *oid);
/* Index of the first entry greater than oid, or -1 at the end of the MIB. */
long sim_mib_next(const sim_mib *m, const sim_oid *oid);
/* 1 when oid without its last sub-identifier is a prefix of some entry (an object exists:
 * a GET for a missing instance answers noSuchInstance rather than noSuchObject). */
int sim_mib_has_object(const sim_mib *m, const sim_oid *oid);

#endif

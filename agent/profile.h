/* profile.h — device profiles: JSON data that maps a device model's OIDs to metrics.
 *
 * Format (docs/profiles.md): name, description, vendor, kind, protocol ("snmp"),
 * match.sysObjectID (prefixes), sources, identity {field: oid}, scalars [...], tables [...].
 * Unknown keys are errors; errors name the file and the JSON path ("$.tables[0].columns[2].scale"). */
#ifndef AG_PROFILE_H
#define AG_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"

#define AG_MAX_OID 128

typedef struct ag_oid {
    uint32_t sub[AG_MAX_OID]; /* net-snmp's oid is unsigned long; converted by the driver */
    size_t len;
} ag_oid;

typedef struct ag_enum_entry {
    char *raw;    /* raw value as text: "1", "onLine" */
    double value; /* number stored in the sample */
} ag_enum_entry;

/* How a raw device value becomes a sample value: enum first, else number × scale + offset. */
typedef struct ag_value_map {
    double scale;  /* default 1 */
    double offset; /* default 0 */
    ag_enum_entry *enums;
    size_t nenums;
} ag_value_map;

typedef struct ag_scalar {
    ag_oid oid;
    char *metric;
    char *unit;       /* may be NULL */
    cm_label *labels; /* static labels */
    size_t nlabels;
    ag_value_map map;
} ag_scalar;

typedef struct ag_column {
    uint32_t column; /* sub-identifier after the table entry OID */
    char *metric;
    char *unit;
    cm_label *labels;
    size_t nlabels;
    ag_value_map map;
} ag_column;

typedef struct ag_label_column {
    uint32_t column; /* its text becomes the label's value */
    char *label;
} ag_label_column;

typedef struct ag_table {
    ag_oid entry;      /* the table's entry OID, e.g. 1.3.6.1.2.1.2.2.1 */
    char *index_label; /* label that takes the row index ("1" or "1.2"); NULL = none */
    ag_label_column *label_columns;
    size_t nlabel_columns;
    ag_column *columns;
    size_t ncolumns;
    uint32_t max_rows; /* default 256 */
} ag_table;

typedef struct ag_identity {
    char *field; /* vendor, model, serial, firmware */
    ag_oid oid;
} ag_identity;

/* One entry of an SNMP profile's "traps": the trap OID and the event it becomes. */
typedef struct ag_trap_map {
    ag_oid oid;     /* snmpTrapOID (v1 traps converted as RFC 3584 says) */
    char *code;     /* event code, a name like "fan" */
    char *severity; /* info, warning, critical */
    char *text;     /* event text; NULL = "trap <code>" */
} ag_trap_map;

typedef struct ag_profile {
    char *name, *path, *description, *vendor, *kind, *protocol;
    ag_oid *match; /* sysObjectID prefixes */
    size_t nmatch;
    ag_identity *identity;
    size_t nidentity;
    ag_scalar *scalars;
    size_t nscalars;
    ag_table *tables;
    size_t ntables;
    ag_trap_map *traps; /* optional "traps" {oid: {code, severity, text}} */
    size_t ntraps;
    /* The whole document (owned). Drivers of other protocols read their own keys from it at
     * open(); their parsers check it when the profile is loaded (ag_profile_load). */
    struct json_t *doc;
} ag_profile;

typedef struct ag_profile_set {
    ag_profile *profiles;
    size_t nprofiles;
} ag_profile_set;

/* A raw value as the device sent it. */
typedef enum { AG_RAW_NUM, AG_RAW_STR, AG_RAW_NULL } ag_raw_kind;
typedef struct ag_raw {
    ag_raw_kind kind;
    double num;      /* AG_RAW_NUM: the integer/unsigned/counter value as a double */
    const char *str; /* AG_RAW_STR: bytes, not NUL-terminated; trailing NULs are ignored */
    size_t len;
} ag_raw;

/* Load one profile file. Returns 0, or -1 with "file: $.json.path: what" in err. */
int ag_profile_load(const char *path, ag_profile *out, char *err, size_t errlen);
void ag_profile_free(ag_profile *p);
/* Load every *.json of dir (sorted by name); names must be unique. 0 or -1 with err. */
int ag_profiles_load_dir(const char *dir, ag_profile_set *set, char *err, size_t errlen);
void ag_profiles_free(ag_profile_set *set);
/* Profile by name, or NULL. */
const ag_profile *ag_profile_find(const ag_profile_set *set, const char *name);
/* Profile whose match prefix is the longest prefix of sysObjectID, or NULL. */
const ag_profile *ag_profile_match(const ag_profile_set *set, const ag_oid *sysobjectid);

/* The trap mapping of p for this trap OID, or NULL. */
const ag_trap_map *ag_profile_trap(const ag_profile *p, const ag_oid *trap_oid);

/* Parse "1.3.6.1.2.1.1.3.0" (a leading '.' is allowed). 0 or -1. */
int ag_oid_parse(const char *s, ag_oid *out);
/* Format as "1.3.6.1..." into buf. */
void ag_oid_format(const ag_oid *o, char *buf, size_t len);
/* Map a raw value to a sample value. Returns 0 with *out set; 1 when there is no value
 * (Null varbind, empty string); -1 when the value cannot be mapped (text that is not a
 * number, a raw value missing from the enum), with the reason in err. */
int ag_value_map_apply(const ag_value_map *m, const ag_raw *raw, double *out, char *err,
                       size_t errlen);
/* Parse obj's "scale", "offset" and "enum" into m (errors "file: path.key: what"); for drivers
 * whose profiles carry their own value maps. 0, or -1 with m empty. */
int ag_value_map_parse(struct json_t *obj, const char *file, const char *path, ag_value_map *m,
                       char *err, size_t errlen);
/* Free what ag_value_map_parse allocated. */
void ag_value_map_free(ag_value_map *m);

#endif

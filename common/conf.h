/* conf.h — INI files (inih) with typed getters whose errors name file:line. */
#ifndef CM_CONF_H
#define CM_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cm_conf_entry {
    char *key;
    char *value;
    int line;
    bool used; /* set by getters; cm_conf_check_unused reports the rest */
} cm_conf_entry;

typedef struct cm_conf_section {
    char *name; /* "agent", or "device" for [device "hall1/projector"] */
    char *arg;  /* "hall1/projector", or NULL when the header has no quoted argument */
    int line;
    cm_conf_entry *entries;
    size_t nentries;
} cm_conf_section;

typedef struct cm_conf {
    char *path;
    cm_conf_section *sections;
    size_t nsections;
} cm_conf;

/* Load path. Returns 0, or -1 with "file:line: what" in err. Caller frees with cm_conf_free,
 * also after a failure. */
int cm_conf_load(cm_conf *c, const char *path, char *err, size_t errlen);
void cm_conf_free(cm_conf *c);

/* First section with this name (and arg, when arg != NULL), or NULL. */
cm_conf_section *cm_conf_find(cm_conf *c, const char *name, const char *arg);

/* Typed getters. Each returns 1 when the key was present and valid (value stored), 0 when
 * absent (*out left untouched, so set defaults first), -1 when present but invalid: err then
 * holds "file:line: key 'k' in [section]: why". Each marks the entry used. */
int cm_conf_str(const cm_conf *c, cm_conf_section *s, const char *key, const char **out,
                char *err, size_t errlen);
int cm_conf_int(const cm_conf *c, cm_conf_section *s, const char *key, int64_t min, int64_t max,
                int64_t *out, char *err, size_t errlen);
int cm_conf_bool(const cm_conf *c, cm_conf_section *s, const char *key, bool *out, char *err,
                 size_t errlen);
/* Durations as accepted by cm_parse_duration_ms, bounded by [min_ms, max_ms]. */
int cm_conf_duration(const cm_conf *c, cm_conf_section *s, const char *key, int64_t min_ms,
                     int64_t max_ms, int64_t *out_ms, char *err, size_t errlen);
/* Sizes in bytes: "4096", "64k", "16M", "1G" (binary units; "MiB"/"MB" spellings too),
 * bounded by [min, max]. */
int cm_conf_size(const cm_conf *c, cm_conf_section *s, const char *key, uint64_t min, uint64_t max,
                 uint64_t *out, char *err, size_t errlen);
/* Parse a size as cm_conf_size does; 0 or -1. */
int cm_parse_size(const char *s, uint64_t *out);
/* One of the NULL-terminated choices; stores its index. */
int cm_conf_enum(const cm_conf *c, cm_conf_section *s, const char *key, const char *const *choices,
                 int *out, char *err, size_t errlen);

/* After all getters ran: -1 with "file:line: unknown key 'k' in [section]" for the first
 * entry no getter asked for, else 0. */
int cm_conf_check_unused(const cm_conf *c, char *err, size_t errlen);
/* Format "file:line: " + message into err (helper for callers validating sections). */
void cm_conf_errf(const cm_conf *c, int line, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif

/* http_profile.h — the "requests" section of an HTTP/JSON profile (docs/profiles.md "HTTP/JSON"):
 * parsing and checking it, RFC 6901 JSON pointers, and the pure mapping of one JSON answer to
 * samples and inventory (no I/O, so it is unit- and fuzz-tested on its own). */
#ifndef AG_HTTP_PROFILE_H
#define AG_HTTP_PROFILE_H

#include <jansson.h>
#include <stddef.h>

#include "batch.h"
#include "profile.h"

#define AG_HTTP_MAX_POINTER 256 /* bytes of one JSON pointer */
#define AG_HTTP_MAX_EACH 1024   /* array elements read per "each" */

/* One entry of "values": a leaf (pointer → metric) or an "each" over an array. */
typedef struct ag_http_value {
    char *pointer; /* leaf: the value; each: the array (relative to the enclosing element) */
    int each;      /* 1: "each" entry with label pointers and nested values */
    /* leaf */
    char *metric;
    char *unit;       /* may be NULL */
    cm_label *labels; /* static labels */
    size_t nlabels;
    ag_value_map map;
    /* each */
    cm_label *label_ptrs; /* key = label name, value = pointer inside the element */
    size_t nlabel_ptrs;
    struct ag_http_value *values;
    size_t nvalues;
} ag_http_value;

typedef struct ag_http_request {
    int post;         /* 0 GET, 1 POST */
    char *path;       /* "/api/status" */
    char *body;       /* compact JSON sent as application/json; NULL = none */
    int bearer_token; /* send the device password as "Authorization: Bearer" */
    ag_http_value *values;
    size_t nvalues;
    /* identity pointers into the answer; NULL = not read from this request */
    char *id_vendor, *id_model, *id_serial, *id_firmware;
} ag_http_request;

typedef struct ag_http_profile {
    ag_http_request *reqs;
    size_t nreqs;
} ag_http_profile;

/* Parse doc's "requests" (the other top-level keys are profile.c's). file names the profile in
 * errors: "file: $.requests[0].values[2].pointer: what". 0, or -1 with err. */
int ag_http_profile_parse(const char *file, json_t *doc, ag_http_profile *out, char *err,
                          size_t errlen);
/* Free what ag_http_profile_parse filled (safe on a partly filled or zeroed struct). */
void ag_http_profile_free(ag_http_profile *p);
/* Parse and discard: the check profile.c runs when an http profile is loaded. 0 or -1. */
int ag_http_profile_check(const char *file, json_t *doc, char *err, size_t errlen);

/* 0 when s is a syntactically valid RFC 6901 pointer ("" or "/a/b~1c~0"), else -1. */
int ag_json_pointer_check(const char *s);
/* The value ptr points to inside root, or NULL (missing, bad syntax, "-" index). */
json_t *ag_json_pointer_get(json_t *root, const char *ptr);

/* Where mapped samples go. labels are only valid during the call. */
typedef void (*ag_http_emit_fn)(void *ud, const char *metric, const char *unit,
                                const cm_label *labels, size_t nlabels, double value);

/* Identity read from an answer: strings cut to CM_MAX_VALUE - 1 bytes, "" = not read. */
typedef struct ag_http_identity {
    char vendor[CM_MAX_VALUE], model[CM_MAX_VALUE], serial[CM_MAX_VALUE],
        firmware[CM_MAX_VALUE];
} ag_http_identity;

/* Map one JSON answer of req to samples (through emit) and identity (into id, which may be
 * NULL). Missing or null values give no sample. Returns the number of values that could not
 * be mapped (wrong type, not in the enum, bad label); the first reason is in err. */
int ag_http_map(const ag_http_request *req, json_t *answer, ag_http_emit_fn emit, void *ud,
                ag_http_identity *id, char *err, size_t errlen);

#endif

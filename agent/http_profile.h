/* http_profile.h — the "requests" section of an HTTP profile (docs/profiles.md "HTTP/JSON" and
 * "SOAP/XML"): parsing and checking it, RFC 6901 JSON pointers, body templates with ${username},
 * ${password} and ${session}, and the pure mapping of one JSON or XML answer to samples and
 * inventory (no I/O, so it is unit- and fuzz-tested on its own). */
#ifndef AG_HTTP_PROFILE_H
#define AG_HTTP_PROFILE_H

#include <jansson.h>
#include <regex.h>
#include <stddef.h>

#include "batch.h"
#include "profile.h"

#define AG_HTTP_MAX_POINTER 256 /* bytes of one JSON pointer */
#define AG_HTTP_MAX_EACH 1024   /* array elements (XML: elements) read per "each" */
#define AG_HTTP_MAX_SESSION 512 /* bytes of a session id */
#define AG_HTTP_ID_PARTS 4      /* selectors joined into one identity field */

/* How an answer is read: JSON with pointers, or XML with element names (xml_find.h). */
typedef enum { AG_HTTP_JSON = 0, AG_HTTP_XML = 1 } ag_http_format;

/* The identity fields a request may read. */
enum {
    AG_HTTP_ID_VENDOR,
    AG_HTTP_ID_MODEL,
    AG_HTTP_ID_SERIAL,
    AG_HTTP_ID_FIRMWARE,
    AG_HTTP_ID_HOSTNAME,
    AG_HTTP_NID
};

/* One entry of "values": a leaf (pointer → metric) or an "each" over an array. */
typedef struct ag_http_value {
    char *pointer; /* leaf: the value; each: the array (relative to the enclosing element);
                      XML: the element name ("sys:status", "*:status") */
    int each;      /* 1: "each" entry with label pointers and nested values */
    /* leaf */
    char *metric;
    char *unit;       /* may be NULL */
    cm_label *labels; /* static labels */
    size_t nlabels;
    ag_value_map map;
    /* each */
    cm_label *label_ptrs; /* key = label name, value = pointer (XML: element) inside it */
    size_t nlabel_ptrs;
    struct ag_http_value *values;
    size_t nvalues;
} ag_http_value;

/* Where one identity field comes from: 1..AG_HTTP_ID_PARTS selectors (pointers or element
 * names) whose texts are joined with " / "; n = 0: not read by this request. */
typedef struct ag_http_idsel {
    char *sel[AG_HTTP_ID_PARTS];
    size_t n;
} ag_http_idsel;

typedef struct ag_http_request {
    char *name;         /* "name" for log lines; NULL = "requests[i]" */
    int post;           /* 0 GET, 1 POST */
    char *path;         /* "/api/status" */
    char *body;         /* compact JSON sent as application/json; NULL = none */
    char *tmpl;         /* "template": body text with ${...} variables; NULL = none */
    char *content_type; /* of body/template: the profile's, or the format's default */
    cm_label *headers;  /* extra request headers: name → template */
    size_t nheaders;
    int bearer_token; /* send the device password as "Authorization: Bearer" */
    ag_http_format format;
    ag_http_value *values;
    size_t nvalues;
    ag_http_idsel id[AG_HTTP_NID]; /* identity selectors into the answer */
    /* the login request (the first one, with "session"): how its answer yields the session */
    int login;
    char *session_sel;   /* element name (XML) or JSON pointer; NULL with session_re */
    regex_t *session_re; /* POSIX ERE over the raw answer, group 1 = the session */
    int error_status[8]; /* "session_error": HTTP statuses of a lost session (default 500) */
    size_t nerror_status;
    char *error_element; /* or an element in an XML answer ("*:Fault"); NULL = none */
} ag_http_request;

typedef struct ag_http_profile {
    ag_http_request *reqs;
    size_t nreqs;
    int has_login;    /* reqs[0] is the login request */
    int uses_session; /* some template or header holds ${session} */
} ag_http_profile;

/* The values of template variables; NULL = the device has none. */
typedef struct ag_http_vars {
    const char *username, *password, *session;
} ag_http_vars;

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

/* Identity read from an answer: strings cut to CM_MAX_VALUE - 1 bytes, "" = not read.
 * hostname has no place in the inventory yet (cm_device_info): read, kept, not sent. */
typedef struct ag_http_identity {
    char vendor[CM_MAX_VALUE], model[CM_MAX_VALUE], serial[CM_MAX_VALUE], firmware[CM_MAX_VALUE],
        hostname[CM_MAX_VALUE];
} ag_http_identity;

/* Map one JSON answer of req to samples (through emit) and identity (into id, which may be
 * NULL). Missing or null values give no sample. Returns the number of values that could not
 * be mapped (wrong type, not in the enum, bad label); the first reason is in err. */
int ag_http_map(const ag_http_request *req, json_t *answer, ag_http_emit_fn emit, void *ud,
                ag_http_identity *id, char *err, size_t errlen);
/* The same for an XML answer buf[0..len) already passed by ag_xml_check: elements instead of
 * pointers, text through the value maps. Unmapped count as above, or -1 when the markup is
 * broken (err). */
int ag_http_map_xml(const ag_http_request *req, const char *buf, size_t len, ag_http_emit_fn emit,
                    void *ud, ag_http_identity *id, char *err, size_t errlen);

/* The request body or header value tmpl with its ${username}, ${password} and ${session}
 * replaced; xml: values XML-escaped, else JSON-string-escaped; header: values must hold no
 * control characters and are not escaped. *out is malloc'd (caller frees). 0, or -1 with err
 * (a variable the device lacks, out of memory). */
int ag_http_expand(const char *tmpl, const ag_http_vars *v, int xml, int header, char **out,
                   char *err, size_t errlen);
/* The session id in a login answer (NUL-terminated resp of len bytes) into out. 0, or -1 with
 * the reason in err (absent, empty, too long, control characters, malformed answer). */
int ag_http_session(const ag_http_request *login, const char *resp, size_t len, char *out,
                    size_t outlen, char *err, size_t errlen);
/* True when the answer (HTTP status, NUL-terminated resp) of req means the session is gone,
 * by login's "session_error". */
int ag_http_session_lost(const ag_http_request *login, const ag_http_request *req, long status,
                         const char *resp, size_t len);

#endif

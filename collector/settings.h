/* settings.h — the write side of the API for people: operator tokens (Bearer, kept hashed,
 * scoped to a site or to every site), PUT /api/v1/screens/{site}/{screen},
 * POST /api/v1/alerts/{id}/ack and POST /api/v1/silences. */
#ifndef CO_SETTINGS_H
#define CO_SETTINGS_H

#include <jansson.h>
#include <stddef.h>

#include "batch.h"
#include "scope.h"
#include "store.h"

#define CO_SETTINGS_MAX_BODY 65536

/* Who is calling: an operator's name and its scope (what it may read and change: PUT screens,
 * ack and silences are allowed only for sites within it). `site` ('*' = every site) is the
 * old form, still filled by co_settings_auth but read by nothing here; to be removed. */
typedef struct co_operator {
    char name[CM_MAX_NAME + 1];
    char site[CM_MAX_NAME + 1];
    co_scope scope;
} co_operator;

/* One write request as routed by http.c. */
typedef struct co_write_req {
    const char *route;  /* the route's path, e.g. "/api/v1/alerts/" */
    const char *rest;   /* the path after a prefix route ("" otherwise) */
    const char *method; /* "PUT", "POST" */
    const char *body;
    size_t len;
} co_write_req;

/* Route an operator's write to its handler. Returns the status and sets *out. */
unsigned co_settings_write(co_store *s, const co_operator *who, const co_write_req *w,
                           json_t **out);

/* Check an Authorization header against the operator tokens. 0 with *who filled, or the
 * status (401, 503) with *body set. */
unsigned co_settings_auth(co_store *s, const char *authz, co_operator *who, json_t **body);
/* PUT /api/v1/screens/{site}/{screen}: rest = "{site}/{screen}", body = JSON object with any
 * of name, class, display, format, spl_ref {channel: dBC}. Returns the status and *out: the
 * stored screen (200), or {"error","at"} (400 with the JSON path, 403, 404, 413, 500). */
unsigned co_settings_put_screen(co_store *s, const co_operator *who, const char *rest,
                                const char *body, size_t len, json_t **out);

#endif

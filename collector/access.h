/* access.h — who is calling the API: viewer passwords (scrypt, self-describing hash strings),
 * login sessions in the cookie cinemon_session (only the token's SHA-256 is stored, expiry
 * slides with use), operator Bearer tokens (settings.c), login throttling, and the principal and
 * scope of every read and write. docs/access.md describes the model. */
#ifndef CO_ACCESS_H
#define CO_ACCESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "scope.h"
#include "settings.h"
#include "store.h"
#include "token.h"

#define CO_SESSION_COOKIE "cinemon_session"
#define CO_PASSWORD_MAX 1024  /* longest password accepted, in bytes */
#define CO_SET_COOKIE_MAX 192 /* room for a Set-Cookie value */
#define CO_PWHASH_LN 15       /* scrypt cost of new hashes: N = 2^15, r = 8, p = 1 (32 MiB) */

/* ---- passwords */

/* Hash a password for storage: "$scrypt$ln=15,r=8,p=1$<salt b64>$<hash b64>" (16-byte salt from
 * getrandom, 32-byte hash) into out[outlen] (at least CO_PWHASH_MAX + 1). 0 or -1 with err. */
int co_password_hash(const char *pw, size_t len, char *out, size_t outlen, char *err,
                     size_t errlen);
/* Check a password against a stored hash string (its own parameters; constant-time compare).
 * 1 match, 0 mismatch, -1 the stored string is malformed or its parameters out of bounds. */
int co_password_verify(const char *pw, size_t len, const char *stored);

/* ---- cookies */

/* The session token in a Cookie header ("a=1; cinemon_session=<64 hex>; b=2"): 0 with *tok
 * and *len pointing into header (the first well-formed cinemon_session), -1 when none. */
int co_cookie_session(const char *header, const char **tok, size_t *len);
/* Format a Set-Cookie value: the session token (NULL: clear the cookie, Max-Age=0) with
 * Path=/; Max-Age; HttpOnly; SameSite=Strict and Secure when secure. 0, -1 when too long. */
int co_cookie_format(char *out, size_t outlen, const char *token, int64_t max_age_s, bool secure);

/* ---- callers */

typedef enum {
    CO_CALLER_NONE = 0,    /* no credentials (anonymous) */
    CO_CALLER_SESSION = 1, /* a viewer's login session */
    CO_CALLER_TOKEN = 2    /* an operator Bearer token */
} co_caller_kind;

/* Who is calling and what it may see. */
typedef struct co_caller {
    co_caller_kind kind;
    char name[CM_MAX_NAME + 1];         /* the viewer's or the token's operator name */
    bool operator_role;                 /* may write (role operator, or an operator token) */
    co_scope scope;                     /* what it may read and change */
    char session[CO_HASH_HEX_LEN + 1];  /* the session's hash (kind SESSION) */
    char set_cookie[CO_SET_COOKIE_MAX]; /* a refreshed cookie to send back, or "" */
} co_caller;

typedef struct co_access co_access;

/* The access service over store with cfg's [access] settings: a user name is locked for
 * login_lockout_ms after login_max_failures failures within that time, a client address after
 * four times as many; at most max_hashing password hashes run at once (others are refused with
 * 503). NULL when out of memory. */
co_access *co_access_new(co_store *s, const co_config *cfg, unsigned max_hashing);
void co_access_free(co_access *a);

/* Identify a caller from its Authorization and Cookie headers (either may be NULL). A Bearer
 * header must be an operator token; else a live session cookie. 0 with who filled (kind NONE
 * when neither names a principal; *stale set when a cookie named no live session), or a status
 * (401, 503) with *body. */
unsigned co_access_identify(co_access *a, const char *authz, const char *cookie, co_caller *who,
                            bool *stale, json_t **body);
/* An API read: 0 with who filled (who->scope is what may be read; national for an anonymous
 * read under anonymous_read), or 401 / 503 with *body. */
unsigned co_access_read(co_access *a, const char *authz, const char *cookie, co_caller *who,
                        json_t **body);
/* An API write (ack, silence, screen settings): an operator token, or a session of role
 * operator whose request carries Content-Type application/json. 0 with op filled (name,
 * scope; site "*" national, the site for a site scope, "" for province and chain scopes), or
 * 401 / 403 / 415 / 503 with *body. who (may be NULL) receives the caller. */
unsigned co_access_write(co_access *a, const char *authz, const char *cookie,
                         const char *content_type, co_operator *op, co_caller *who, json_t **body);
/* POST /api/v1/login, body {"user","password"} from client_addr (throttled and logged under
 * it: the peer's address, or the one a trusted proxy forwarded, proxy.h). 200 with *out =
 * {"data":{user,role,scope}} and set_cookie filled; 400, 401 (same message for an unknown user
 * and a wrong password), 415, 429 / 503 with *retry_after_s, or 500 with *out. */
unsigned co_access_login(co_access *a, const char *client_addr, const char *content_type,
                         const char *body, size_t len, char set_cookie[CO_SET_COOKIE_MAX],
                         unsigned *retry_after_s, json_t **out);
/* POST /api/v1/logout: end the cookie's session (if any) and clear the cookie. 200 or 503. */
unsigned co_access_logout(co_access *a, const char *cookie, char set_cookie[CO_SET_COOKIE_MAX],
                          json_t **out);
/* GET /api/v1/me: the caller as login answers it; 401 without a principal. */
unsigned co_access_me(const co_caller *who, json_t **out);
/* 1 when [access] anonymous_read is on. */
bool co_access_anonymous_read(const co_access *a);

#endif

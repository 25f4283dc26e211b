/* access.c — viewer passwords (OpenSSL EVP_PBE_scrypt), session cookies, login throttling and
 * the principal of every API request. Secrets (passwords, tokens, cookies) are never logged. */
#include "access.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "apierror.h"
#include "log.h"
#include "timeutil.h"

#define SALT_BYTES 16
#define HASH_BYTES 32
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SCRYPT_MAX_MEM (256ull << 20) /* a stored hash asking for more is refused */
#define TOUCH_EVERY_MS 60000          /* a session's expiry slides at most once a minute */
#define THROTTLE_SLOTS 1024           /* user names and addresses remembered */
#define THROTTLE_KEY 160
#define ADDRESS_FACTOR 4 /* an address (maybe a whole office behind NAT) may fail 4x as often */

/* Verified against when the user is unknown (or disabled), so that such a login costs what a
 * wrong password costs; its password is random and was thrown away. */
static const char dummy_hash[] = "$scrypt$ln=15,r=8,p=1$emABaIFR3eT6JFXBbnHVNw==$"
                                 "JOMzUKN5iy31rsxDpS5HiNow3LqMz95yvmvy+6taSUE=";

/* ---------------------------------------------------------------- passwords */

static int fill_random(unsigned char *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static int scrypt(const char *pw, size_t len, const unsigned char *salt, size_t saltlen,
                  unsigned ln, unsigned r, unsigned p, unsigned char *out, size_t outlen)
{
    uint64_t n = 1ull << ln;
    uint64_t mem = 128ull * r * (n + 2) + 128ull * r * p + (1u << 20);
    if (mem > SCRYPT_MAX_MEM) return -1;
    return EVP_PBE_scrypt(pw ? pw : "", len, salt, saltlen, n, r, p, mem, out, outlen) == 1 ? 0
                                                                                            : -1;
}

int co_password_hash(const char *pw, size_t len, char *out, size_t outlen, char *err, size_t errlen)
{
    unsigned char salt[SALT_BYTES], h[HASH_BYTES];
    char salt64[4 * ((SALT_BYTES + 2) / 3) + 1], h64[4 * ((HASH_BYTES + 2) / 3) + 1];
    if (len > CO_PASSWORD_MAX) {
        snprintf(err, errlen, "password longer than %d bytes", CO_PASSWORD_MAX);
        return -1;
    }
    if (fill_random(salt, sizeof salt) != 0) {
        snprintf(err, errlen, "getrandom: %s", strerror(errno));
        return -1;
    }
    if (scrypt(pw, len, salt, sizeof salt, CO_PWHASH_LN, SCRYPT_R, SCRYPT_P, h, sizeof h) != 0) {
        snprintf(err, errlen, "scrypt failed (out of memory?)");
        return -1;
    }
    EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof salt);
    EVP_EncodeBlock((unsigned char *)h64, h, sizeof h);
    OPENSSL_cleanse(h, sizeof h);
    int n = snprintf(out, outlen, "$scrypt$ln=%u,r=%u,p=%u$%s$%s", CO_PWHASH_LN, SCRYPT_R, SCRYPT_P,
                     salt64, h64);
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "password hash buffer too small");
        return -1;
    }
    return 0;
}

/* Decode base64 (padded, standard alphabet) of s[0..n) into out[cap]; the byte count or -1. */
static int b64_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap) return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/' || (c == '=' && i >= n - 2);
        if (!ok || (s[i] == '=' && i == n - 2 && s[n - 1] != '=')) return -1;
    }
    int m = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (m < 0) return -1;
    m -= (s[n - 1] == '=') + (s[n - 2] == '=');
    return m;
}

/* A decimal in [lo, hi] at *p followed by `end`; advances *p past end. 0 or -1. */
static int param(const char **p, const char *name, unsigned lo, unsigned hi, char end, unsigned *v)
{
    size_t nl = strlen(name);
    if (strncmp(*p, name, nl) != 0 || (*p)[nl] != '=') return -1;
    const char *q = *p + nl + 1;
    unsigned x = 0;
    int digits = 0;
    while (*q >= '0' && *q <= '9' && digits < 4) {
        x = x * 10 + (unsigned)(*q++ - '0');
        digits++;
    }
    if (!digits || *q != end || x < lo || x > hi) return -1;
    *p = q + 1;
    *v = x;
    return 0;
}

int co_password_verify(const char *pw, size_t len, const char *stored)
{
    static const char prefix[] = "$scrypt$";
    if (!stored || strncmp(stored, prefix, sizeof prefix - 1) != 0 || len > CO_PASSWORD_MAX)
        return -1;
    const char *p = stored + sizeof prefix - 1;
    unsigned ln, r, par;
    if (param(&p, "ln", 1, 20, ',', &ln) < 0 || param(&p, "r", 1, 32, ',', &r) < 0 ||
        param(&p, "p", 1, 16, '$', &par) < 0)
        return -1;
    const char *dollar = strchr(p, '$');
    if (!dollar) return -1;
    unsigned char salt[64], want[96], got[96];
    int sl = b64_decode(p, (size_t)(dollar - p), salt, sizeof salt);
    int hl = b64_decode(dollar + 1, strlen(dollar + 1), want, sizeof want);
    if (sl < 8 || hl < 16 || hl > 64) return -1;
    if (scrypt(pw, len, salt, (size_t)sl, ln, r, par, got, (size_t)hl) != 0) return -1;
    int eq = CRYPTO_memcmp(got, want, (size_t)hl) == 0;
    OPENSSL_cleanse(got, sizeof got);
    return eq;
}

/* ---------------------------------------------------------------- cookies */

static int is_hex_lower(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

int co_cookie_session(const char *header, const char **tok, size_t *len)
{
    static const char name[] = CO_SESSION_COOKIE;
    const size_t nl = sizeof name - 1;
    if (!header) return -1;
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *start = p;
        while (*p && *p != ';')
            p++;
        /* one pair: start..p */
        const char *eq = memchr(start, '=', (size_t)(p - start));
        if (!eq) continue;
        const char *ne = eq;
        while (ne > start && (ne[-1] == ' ' || ne[-1] == '\t'))
            ne--;
        if ((size_t)(ne - start) != nl || memcmp(start, name, nl) != 0) continue;
        const char *v = eq + 1, *ve = p;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
            v++;
            ve--;
        }
        if ((size_t)(ve - v) == CO_TOKEN_HEX_LEN && is_hex_lower(v, CO_TOKEN_HEX_LEN)) {
            *tok = v;
            *len = CO_TOKEN_HEX_LEN;
            return 0;
        }
    }
    return -1;
}

int co_cookie_format(char *out, size_t outlen, const char *token, int64_t max_age_s, bool secure)
{
    int n = snprintf(out, outlen, "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
                     CO_SESSION_COOKIE, token ? token : "",
                     token ? (long long)(max_age_s > 0 ? max_age_s : 0) : 0LL,
                     secure ? "; Secure" : "");
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* ---------------------------------------------------------------- throttling */

typedef struct throttle {
    char key[THROTTLE_KEY]; /* "u:<user>" or "a:<address>"; "" = free */
    unsigned failures;
    int64_t first_ms, last_ms, locked_until_ms;
} throttle;

struct co_access {
    co_store *store;
    bool anonymous_read, secure_cookie;
    int64_t ttl_ms, lockout_ms;
    unsigned max_failures, max_hashing;
    atomic_uint hashing;
    pthread_mutex_t mu; /* guards slots */
    throttle slots[THROTTLE_SLOTS];
};

static throttle *slot_find(co_access *a, const char *key, bool create, int64_t now)
{
    throttle *oldest = NULL;
    for (size_t i = 0; i < THROTTLE_SLOTS; i++) {
        throttle *t = &a->slots[i];
        if (t->key[0] && !strcmp(t->key, key)) return t;
        if (!oldest || !t->key[0] || (oldest->key[0] && t->last_ms < oldest->last_ms)) oldest = t;
    }
    if (!create) return NULL;
    memset(oldest, 0, sizeof *oldest);
    snprintf(oldest->key, sizeof oldest->key, "%s", key);
    oldest->first_ms = oldest->last_ms = now;
    return oldest;
}

/* Seconds the key stays locked (0: not locked). */
static unsigned throttle_locked(co_access *a, const char *key, int64_t now)
{
    pthread_mutex_lock(&a->mu);
    throttle *t = slot_find(a, key, false, now);
    int64_t left = t ? t->locked_until_ms - now : 0;
    pthread_mutex_unlock(&a->mu);
    return left > 0 ? (unsigned)((left + 999) / 1000) : 0;
}

static void throttle_fail(co_access *a, const char *key, unsigned max, int64_t now)
{
    pthread_mutex_lock(&a->mu);
    throttle *t = slot_find(a, key, true, now);
    if (now - t->first_ms > a->lockout_ms) {
        t->failures = 0;
        t->first_ms = now;
    }
    t->last_ms = now;
    if (++t->failures >= max) {
        t->locked_until_ms = now + a->lockout_ms;
        t->failures = 0;
        t->first_ms = now;
    }
    pthread_mutex_unlock(&a->mu);
}

static void throttle_clear(co_access *a, const char *key)
{
    pthread_mutex_lock(&a->mu);
    throttle *t = slot_find(a, key, false, 0);
    if (t && t->locked_until_ms == 0)
        t->key[0] = '\0';
    else if (t)
        t->failures = 0;
    pthread_mutex_unlock(&a->mu);
}

/* ---------------------------------------------------------------- the service */

co_access *co_access_new(co_store *s, const co_config *cfg, unsigned max_hashing)
{
    co_access *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->store = s;
    a->anonymous_read = cfg->anonymous_read;
    a->secure_cookie = cfg->secure_cookie;
    a->ttl_ms = cfg->session_ttl_ms > 0 ? cfg->session_ttl_ms : 12 * 3600 * 1000;
    a->lockout_ms = cfg->login_lockout_ms > 0 ? cfg->login_lockout_ms : 300000;
    a->max_failures = cfg->login_max_failures ? cfg->login_max_failures : 5;
    a->max_hashing = max_hashing ? max_hashing : 1;
    atomic_init(&a->hashing, 0);
    pthread_mutex_init(&a->mu, NULL);
    return a;
}

void co_access_free(co_access *a)
{
    if (!a) return;
    pthread_mutex_destroy(&a->mu);
    free(a);
}

bool co_access_anonymous_read(const co_access *a)
{
    return a->anonymous_read;
}

/* A viewer row's scope as a co_scope. 0 or -1. */
static int row_scope(const co_viewer_row *v, co_scope *sc)
{
    co_scope_kind k;
    char e[128];
    if (co_scope_kind_parse(v->scope_kind, &k) != 0) return -1;
    return co_scope_set(sc, k, v->scope_value, e, sizeof e);
}

static json_t *caller_json(const co_caller *who)
{
    return json_pack("{s:{s:s, s:s, s:{s:s, s:s}}}", "data", "user", who->name, "role",
                     who->operator_role ? "operator" : "viewer", "scope", "kind",
                     co_scope_kind_name(who->scope.kind), "value", who->scope.value);
}

/* The session named by a cookie header: 1 found (who filled, expiry slid when due), 0 none,
 * -1 store error (logged). */
static int session_of(co_access *a, const char *cookie, co_caller *who)
{
    const char *tok;
    size_t len;
    if (co_cookie_session(cookie, &tok, &len) != 0) return 0;
    char hash[CO_HASH_HEX_LEN + 1], err[256] = "";
    if (co_token_hash(tok, len, hash) != 0) return -1;
    int64_t now = cm_now_ms(), expires = 0, last = 0;
    co_viewer_row v;
    int found = co_store_session_lookup(a->store, hash, now, &v, &expires, &last, err, sizeof err);
    if (found < 0) {
        cm_log_limited("access-session", 10, CM_LOG_ERROR, "session lookup: %s", err);
        return -1;
    }
    if (!found) return 0;
    if (row_scope(&v, &who->scope) != 0) {
        cm_log_limited("access-scope", 10, CM_LOG_ERROR,
                       "viewer %s has a bad scope (%s '%s'); refused", v.name, v.scope_kind,
                       v.scope_value);
        return 0;
    }
    who->kind = CO_CALLER_SESSION;
    snprintf(who->name, sizeof who->name, "%s", v.name);
    who->operator_role = !strcmp(v.role, "operator");
    memcpy(who->session, hash, sizeof hash);
    if (now - last >= TOUCH_EVERY_MS) {
        int64_t nexp = now + a->ttl_ms;
        if (co_store_session_touch(a->store, hash, now, nexp, err, sizeof err) != 0) {
            cm_log_limited("access-touch", 10, CM_LOG_WARN, "session touch: %s", err);
        } else {
            char t[CO_TOKEN_HEX_LEN + 1];
            memcpy(t, tok, CO_TOKEN_HEX_LEN);
            t[CO_TOKEN_HEX_LEN] = '\0';
            co_cookie_format(who->set_cookie, sizeof who->set_cookie, t, a->ttl_ms / 1000,
                             a->secure_cookie);
            OPENSSL_cleanse(t, sizeof t);
        }
    }
    return 1;
}

unsigned co_access_identify(co_access *a, const char *authz, const char *cookie, co_caller *who,
                            bool *stale, json_t **body)
{
    memset(who, 0, sizeof *who);
    who->scope = co_scope_all;
    if (stale) *stale = false;
    if (authz && *authz) {
        co_operator op;
        memset(&op, 0, sizeof op);
        unsigned st = co_settings_auth(a->store, authz, &op, body);
        if (st) return st;
        who->kind = CO_CALLER_TOKEN;
        snprintf(who->name, sizeof who->name, "%s", op.name);
        who->operator_role = true;
        who->scope = op.scope;
        return 0;
    }
    int r = session_of(a, cookie, who);
    if (r < 0) {
        *body = co_api_error("", "store unavailable");
        return 503;
    }
    if (r == 0) {
        memset(who, 0, sizeof *who);
        who->scope = co_scope_all;
        if (stale) *stale = cookie && strstr(cookie, CO_SESSION_COOKIE) != NULL;
    }
    return 0;
}

unsigned co_access_read(co_access *a, const char *authz, const char *cookie, co_caller *who,
                        json_t **body)
{
    bool stale = false;
    unsigned st = co_access_identify(a, authz, cookie, who, &stale, body);
    if (st) return st;
    if (who->kind != CO_CALLER_NONE || a->anonymous_read) return 0;
    *body = co_api_error(stale ? "Cookie" : "Authorization",
                         stale ? "the session has expired or ended; log in again"
                               : "log in (POST /api/v1/login) or send an operator token "
                                 "(Authorization: Bearer TOKEN)");
    return 401;
}

/* 1 when a Content-Type header is application/json (parameters allowed). */
static int is_json_type(const char *ct)
{
    static const char j[] = "application/json";
    if (!ct) return 0;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, j, sizeof j - 1) != 0) return 0;
    ct += sizeof j - 1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

unsigned co_access_write(co_access *a, const char *authz, const char *cookie,
                         const char *content_type, co_operator *op, co_caller *who_out,
                         json_t **body)
{
    co_caller who;
    memset(op, 0, sizeof *op);
    if (authz && *authz) {
        unsigned st = co_settings_auth(a->store, authz, op, body);
        if (st) return st;
        if (who_out) {
            memset(who_out, 0, sizeof *who_out);
            who_out->kind = CO_CALLER_TOKEN;
            snprintf(who_out->name, sizeof who_out->name, "%s", op->name);
            who_out->operator_role = true;
            who_out->scope = op->scope;
        }
        return 0;
    }
    bool stale = false;
    unsigned st = co_access_identify(a, NULL, cookie, &who, &stale, body);
    if (st) return st;
    if (who.kind == CO_CALLER_NONE) {
        *body = co_api_error(stale ? "Cookie" : "Authorization",
                             stale ? "the session has expired or ended; log in again"
                                   : "an operator token (Authorization: Bearer TOKEN) or the "
                                     "session of an operator is required");
        return 401;
    }
    if (who_out) *who_out = who;
    if (!who.operator_role) {
        *body = co_api_error("", "viewer %s may only read (role viewer)", who.name);
        return 403;
    }
    if (!is_json_type(content_type)) {
        *body = co_api_error("Content-Type", "a change made with a session cookie must be sent "
                                             "as Content-Type: application/json");
        return 415;
    }
    snprintf(op->name, sizeof op->name, "%s", who.name);
    op->scope = who.scope;
    /* site: "*" national, the site of a site scope; province and chain scopes are checked
     * through op->scope only (site "" matches no site in a site-based check). */
    if (who.scope.kind == CO_SCOPE_ALL)
        snprintf(op->site, sizeof op->site, "*");
    else if (who.scope.kind == CO_SCOPE_SITE)
        snprintf(op->site, sizeof op->site, "%s", who.scope.value);
    return 0;
}

/* Take a hashing slot; false when max_hashing are running. */
static bool hashing_enter(co_access *a)
{
    unsigned n = atomic_load(&a->hashing);
    do {
        if (n >= a->max_hashing) return false;
    } while (!atomic_compare_exchange_weak(&a->hashing, &n, n + 1));
    return true;
}

static void hashing_leave(co_access *a)
{
    atomic_fetch_sub(&a->hashing, 1);
}

/* The login body's {"user","password"}: 0, or 400 with *out. */
static unsigned login_body(const char *body, size_t len, json_t **doc, const char **user,
                           const char **pw, size_t *pwlen, json_t **out)
{
    json_error_t je;
    *doc = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(*doc)) {
        *out = co_api_error("", "body must be a JSON object {\"user\": ..., \"password\": ...}");
        return 400;
    }
    const char *k;
    json_t *v;
    json_object_foreach(*doc, k, v)
    {
        if (strcmp(k, "user") != 0 && strcmp(k, "password") != 0) {
            *out = co_api_error(k, "unknown key '%.64s' (known: user, password)", k);
            return 400;
        }
    }
    json_t *u = json_object_get(*doc, "user"), *p = json_object_get(*doc, "password");
    if (!json_is_string(u) || json_string_length(u) == 0) {
        *out = co_api_error("user", "'user' must be a non-empty string");
        return 400;
    }
    if (!json_is_string(p) || json_string_length(p) == 0 ||
        json_string_length(p) > CO_PASSWORD_MAX) {
        *out =
            co_api_error("password", "'password' must be a string of 1..%d bytes", CO_PASSWORD_MAX);
        return 400;
    }
    *user = json_string_value(u);
    *pw = json_string_value(p);
    *pwlen = json_string_length(p);
    return 0;
}

unsigned co_access_login(co_access *a, const char *client_addr, const char *content_type,
                         const char *body, size_t len, char set_cookie[CO_SET_COOKIE_MAX],
                         unsigned *retry_after_s, json_t **out)
{
    set_cookie[0] = '\0';
    *retry_after_s = 0;
    if (!is_json_type(content_type)) {
        *out = co_api_error("Content-Type", "log in with Content-Type: application/json");
        return 415;
    }
    json_t *doc = NULL;
    const char *user = NULL, *pw = NULL;
    size_t pwlen = 0;
    unsigned st = login_body(body, len, &doc, &user, &pw, &pwlen, out);
    if (st) {
        json_decref(doc);
        return st;
    }
    int64_t now = cm_now_ms();
    char ukey[THROTTLE_KEY], akey[THROTTLE_KEY];
    snprintf(ukey, sizeof ukey, "u:%.*s", CM_MAX_NAME, user);
    snprintf(akey, sizeof akey, "a:%s", client_addr ? client_addr : "?");
    unsigned wait_u = throttle_locked(a, ukey, now), wait_a = throttle_locked(a, akey, now);
    if (wait_u || wait_a) {
        *retry_after_s = wait_u > wait_a ? wait_u : wait_a;
        cm_log_limited("login-locked", 10, CM_LOG_WARN,
                       "login of %.64s from %s refused: too many failures", user,
                       client_addr ? client_addr : "?");
        *out = co_api_error("", "too many failed logins; try again in %u s", *retry_after_s);
        json_decref(doc);
        return 429;
    }
    if (!hashing_enter(a)) {
        *retry_after_s = 1;
        *out = co_api_error("", "too many logins in progress; try again");
        json_decref(doc);
        return 503;
    }
    char err[256] = "", pwhash[CO_PWHASH_MAX + 1] = "";
    co_viewer_row v;
    int found = strlen(user) <= CM_MAX_NAME ? co_store_viewer_get(a->store, user, &v, pwhash,
                                                                  sizeof pwhash, err, sizeof err)
                                            : 0;
    int ok = 0;
    if (found < 0) {
        hashing_leave(a);
        cm_log_limited("login-store", 10, CM_LOG_ERROR, "login: viewer lookup: %s", err);
        *out = co_api_error("", "store unavailable");
        json_decref(doc);
        return 503;
    }
    if (found && !v.disabled) {
        ok = co_password_verify(pw, pwlen, pwhash);
        if (ok < 0) {
            cm_log_limited("login-hash", 10, CM_LOG_ERROR,
                           "viewer %s: stored password hash is malformed (set it again with "
                           "`viewer passwd`)",
                           v.name);
            ok = 0;
        }
    } else {
        (void)co_password_verify(pw, pwlen, dummy_hash); /* the same cost as a wrong password */
    }
    hashing_leave(a);
    co_caller who;
    memset(&who, 0, sizeof who);
    if (ok && row_scope(&v, &who.scope) != 0) {
        cm_log_limited("access-scope", 10, CM_LOG_ERROR, "viewer %s has a bad scope; refused",
                       v.name);
        ok = 0;
    }
    if (!ok) {
        throttle_fail(a, ukey, a->max_failures, now);
        throttle_fail(a, akey, a->max_failures * ADDRESS_FACTOR, now);
        cm_log_limited("login-failed", 10, CM_LOG_WARN, "failed login of %.64s from %s", user,
                       client_addr ? client_addr : "?");
        *out = co_api_error("", "wrong user name or password");
        json_decref(doc);
        return 401;
    }
    json_decref(doc); /* the password goes with it */
    throttle_clear(a, ukey);
    int64_t removed = 0;
    if (co_store_sessions_expire(a->store, now, &removed, err, sizeof err) != 0)
        cm_log_limited("access-expire", 10, CM_LOG_WARN, "expiring sessions: %s", err);
    char tok[CO_TOKEN_HEX_LEN + 1], hash[CO_HASH_HEX_LEN + 1];
    if (co_token_generate(tok, err, sizeof err) != 0 ||
        co_token_hash(tok, strlen(tok), hash) != 0 ||
        co_store_session_add(a->store, hash, v.name, now, now + a->ttl_ms, err, sizeof err) != 0) {
        OPENSSL_cleanse(tok, sizeof tok);
        cm_log_limited("login-session", 10, CM_LOG_ERROR, "login: cannot create a session: %s",
                       err);
        *out = co_api_error("", "cannot create a session");
        return 503;
    }
    co_cookie_format(set_cookie, CO_SET_COOKIE_MAX, tok, a->ttl_ms / 1000, a->secure_cookie);
    OPENSSL_cleanse(tok, sizeof tok);
    who.kind = CO_CALLER_SESSION;
    snprintf(who.name, sizeof who.name, "%s", v.name);
    who.operator_role = !strcmp(v.role, "operator");
    cm_info("viewer %s logged in from %s", v.name, client_addr ? client_addr : "?");
    *out = caller_json(&who);
    return *out ? 200 : 500;
}

unsigned co_access_logout(co_access *a, const char *cookie, char set_cookie[CO_SET_COOKIE_MAX],
                          json_t **out)
{
    const char *tok;
    size_t len;
    co_cookie_format(set_cookie, CO_SET_COOKIE_MAX, NULL, 0, a->secure_cookie);
    if (co_cookie_session(cookie, &tok, &len) == 0) {
        char hash[CO_HASH_HEX_LEN + 1], err[256] = "";
        if (co_token_hash(tok, len, hash) != 0 ||
            co_store_session_remove(a->store, hash, err, sizeof err) < 0) {
            cm_log_limited("logout", 10, CM_LOG_ERROR, "logout: %s", err);
            *out = co_api_error("", "store unavailable");
            return 503;
        }
    }
    *out = json_pack("{s:{s:b}}", "data", "logged_out", 1);
    return *out ? 200 : 500;
}

unsigned co_access_me(const co_caller *who, json_t **out)
{
    if (who->kind == CO_CALLER_NONE) {
        *out = co_api_error("Cookie", "not logged in");
        return 401;
    }
    *out = caller_json(who);
    return *out ? 200 : 500;
}

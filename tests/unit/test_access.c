/* test_access.c — viewer passwords (scrypt strings, wrong passwords, tampering), the session
 * cookie (parsing among other cookies, Set-Cookie flags), viewers and sessions in a real store
 * (creation, lookup, expiry, passwd and remove ending sessions), and the access service: login,
 * same answer for an unknown user and a wrong password, throttling, reads and writes by role. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "collector/access.h"
#include "collector/store.h"
#include "store_fixture.h"
#include "timeutil.h"

/* ---------------------------------------------------------------- passwords */

static void test_hash_verify(void **st)
{
    (void)st;
    char h1[CO_PWHASH_MAX + 1], h2[CO_PWHASH_MAX + 1], err[256] = "";
    assert_int_equal(co_password_hash("correct horse", 13, h1, sizeof h1, err, sizeof err), 0);
    assert_int_equal(co_password_hash("correct horse", 13, h2, sizeof h2, err, sizeof err), 0);
    assert_true(strncmp(h1, "$scrypt$ln=15,r=8,p=1$", 22) == 0);
    assert_string_not_equal(h1, h2); /* a fresh salt each time */
    assert_int_equal(co_password_verify("correct horse", 13, h1), 1);
    assert_int_equal(co_password_verify("correct horse", 13, h2), 1);
    assert_int_equal(co_password_verify("correct hors", 12, h1), 0);
    assert_int_equal(co_password_verify("correct horsE", 13, h1), 0);
    assert_int_equal(co_password_verify("", 0, h1), 0);

    /* one character of the hash changed: a mismatch, not a crash */
    char t[CO_PWHASH_MAX + 1];
    strcpy(t, h1);
    size_t n = strlen(t);
    t[n - 3] = t[n - 3] == 'A' ? 'B' : 'A';
    assert_int_equal(co_password_verify("correct horse", 13, t), 0);
    /* the salt changed */
    strcpy(t, h1);
    t[23] = t[23] == 'A' ? 'B' : 'A';
    assert_int_equal(co_password_verify("correct horse", 13, t), 0);

    /* malformed strings and parameters out of bounds */
    const char *bad[] = {
        "",
        "plain",
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g",
        "$scrypt$ln=15,r=8$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "$scrypt$ln=99,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "$scrypt$ln=0,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "$scrypt$ln=20,r=32,p=16$AAAAAAAAAAAAAAAAAAAAAA==$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==",
        "$scrypt$ln=15,r=8,p=1$AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
        "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAA*AAAAAAAAAA==$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        "A",
        "$scrypt$ln=15x,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=$",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (co_password_verify("x", 1, bad[i]) != -1) fail_msg("accepted bad hash #%zu", i);
    assert_int_equal(co_password_verify("x", 1, NULL), -1);
    /* a password longer than the limit is neither hashed nor checked */
    static char longpw[CO_PASSWORD_MAX + 2];
    memset(longpw, 'a', sizeof longpw - 1);
    assert_int_equal(co_password_hash(longpw, sizeof longpw - 1, t, sizeof t, err, sizeof err), -1);
    assert_int_equal(co_password_verify(longpw, sizeof longpw - 1, h1), -1);
    /* too small an output buffer */
    assert_int_equal(co_password_hash("x", 1, t, 20, err, sizeof err), -1);
}

/* ---------------------------------------------------------------- cookies */

#define TOK "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define TOK2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static void expect_cookie(const char *header, const char *want)
{
    const char *tok = NULL;
    size_t len = 0;
    int r = co_cookie_session(header, &tok, &len);
    if (!want) {
        if (r != -1) fail_msg("found a session in '%s'", header ? header : "(null)");
        return;
    }
    if (r != 0) fail_msg("no session found in '%s'", header);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(tok, want, len);
}

static void test_cookie_parse(void **st)
{
    (void)st;
    expect_cookie("cinemon_session=" TOK, TOK);
    expect_cookie("a=1; cinemon_session=" TOK "; b=2", TOK);
    expect_cookie("a=1;cinemon_session=" TOK, TOK);
    expect_cookie("  cinemon_session = " TOK " ;x=y", TOK);
    expect_cookie("cinemon_session=\"" TOK "\"", TOK);
    expect_cookie("lang=zh; theme=dark; cinemon_session=" TOK, TOK);
    /* a malformed one first, then a good one */
    expect_cookie("cinemon_session=short; cinemon_session=" TOK2, TOK2);
    expect_cookie("cinemon_session=" TOK "; cinemon_session=" TOK2, TOK);
    /* none, or not well-formed */
    expect_cookie(NULL, NULL);
    expect_cookie("", NULL);
    expect_cookie(";;;", NULL);
    expect_cookie("cinemon_session", NULL);
    expect_cookie("cinemon_session=", NULL);
    expect_cookie("cinemon_session=" TOK "0", NULL); /* 65 digits */
    expect_cookie(
        "cinemon_session=0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        NULL); /* upper case */
    expect_cookie("cinemon_session=" TOK "x", NULL);
    expect_cookie("xcinemon_session=" TOK, NULL);
    expect_cookie("cinemon_sessionx=" TOK, NULL);
    expect_cookie("cinemon_session=\"" TOK, NULL);
    expect_cookie("other=cinemon_session=" TOK, NULL);
}

static void test_cookie_format(void **st)
{
    (void)st;
    char c[CO_SET_COOKIE_MAX];
    assert_int_equal(co_cookie_format(c, sizeof c, TOK, 3600, false), 0);
    assert_string_equal(c,
                        "cinemon_session=" TOK "; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict");
    assert_int_equal(co_cookie_format(c, sizeof c, TOK, 60, true), 0);
    assert_non_null(strstr(c, "; Secure"));
    assert_non_null(strstr(c, "HttpOnly"));
    assert_int_equal(co_cookie_format(c, sizeof c, NULL, 3600, false), 0);
    assert_string_equal(c, "cinemon_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    assert_int_equal(co_cookie_format(c, 40, TOK, 60, false), -1);
}

/* ---------------------------------------------------------------- store */

static void add_viewer(co_store *s, const char *name, const char *role, const char *kind,
                       const char *value, const char *pw)
{
    co_viewer_row v;
    memset(&v, 0, sizeof v);
    snprintf(v.name, sizeof v.name, "%s", name);
    snprintf(v.role, sizeof v.role, "%s", role);
    snprintf(v.scope_kind, sizeof v.scope_kind, "%s", kind);
    snprintf(v.scope_value, sizeof v.scope_value, "%s", value);
    char h[CO_PWHASH_MAX + 1], err[256] = "";
    assert_int_equal(co_password_hash(pw, strlen(pw), h, sizeof h, err, sizeof err), 0);
    int r = co_store_viewer_add(s, &v, h, cm_now_ms(), err, sizeof err);
    if (r != 1) fail_msg("viewer add %s: %d %s", name, r, err);
}

static int count_row(void *ud, const co_viewer_row *v)
{
    (void)v;
    ++*(int *)ud;
    return 0;
}

static void test_store_viewers_sessions(void **state)
{
    store_fx *f = *state;
    co_store *s = f->s;
    char err[256] = "", pw[CO_PWHASH_MAX + 1];
    co_viewer_row v;
    int64_t now = cm_now_ms(), exp = 0, seen = 0;

    /* viewers */
    co_viewer_row a;
    memset(&a, 0, sizeof a);
    strcpy(a.name, "ann");
    strcpy(a.role, "viewer");
    strcpy(a.scope_kind, "province");
    strcpy(a.scope_value, "Guangdong");
    assert_int_equal(co_store_viewer_add(s, &a, "$scrypt$x", now, err, sizeof err), 1);
    assert_int_equal(co_store_viewer_add(s, &a, "$scrypt$y", now, err, sizeof err), 0);
    strcpy(a.role, "admin");
    assert_int_equal(co_store_viewer_add(s, &a, "$scrypt$y", now, err, sizeof err), -1);
    assert_int_equal(co_store_viewer_get(s, "ann", &v, pw, sizeof pw, err, sizeof err), 1);
    assert_string_equal(v.role, "viewer");
    assert_string_equal(v.scope_kind, "province");
    assert_string_equal(v.scope_value, "Guangdong");
    assert_string_equal(pw, "$scrypt$x");
    assert_int_equal(v.disabled, 0);
    assert_int_equal(co_store_viewer_get(s, "nobody", &v, NULL, 0, err, sizeof err), 0);
    strcpy(a.name, "bea");
    strcpy(a.role, "operator");
    strcpy(a.scope_kind, "all");
    a.scope_value[0] = '\0';
    assert_int_equal(co_store_viewer_add(s, &a, "$scrypt$z", now, err, sizeof err), 1);
    int n = 0;
    assert_int_equal(co_store_viewers(s, count_row, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);

    /* sessions: live, expired, bad hash */
    const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111";
    const char *h2 = "2222222222222222222222222222222222222222222222222222222222222222";
    const char *h3 = "3333333333333333333333333333333333333333333333333333333333333333";
    assert_int_equal(co_store_session_add(s, h1, "ann", now, now + 60000, err, sizeof err), 0);
    assert_int_equal(co_store_session_add(s, h2, "ann", now - 10000, now - 1, err, sizeof err), 0);
    assert_int_equal(co_store_session_add(s, h3, "bea", now, now + 60000, err, sizeof err), 0);
    assert_int_equal(co_store_session_add(s, "XYZ", "ann", now, now + 1, err, sizeof err), -1);
    assert_int_equal(co_store_session_lookup(s, h1, now, &v, &exp, &seen, err, sizeof err), 1);
    assert_string_equal(v.name, "ann");
    assert_int_equal(exp, now + 60000);
    assert_int_equal(seen, now);
    assert_int_equal(co_store_session_lookup(s, h2, now, &v, &exp, &seen, err, sizeof err), 0);
    assert_int_equal(co_store_session_lookup(s, "nothex", now, &v, &exp, &seen, err, sizeof err),
                     0);
    /* sliding expiry */
    assert_int_equal(co_store_session_touch(s, h1, now + 30000, now + 90000, err, sizeof err), 0);
    assert_int_equal(co_store_session_lookup(s, h1, now + 70000, &v, &exp, &seen, err, sizeof err),
                     1);
    assert_int_equal(exp, now + 90000);
    assert_int_equal(seen, now + 30000);
    assert_int_equal(co_store_session_lookup(s, h1, now + 90000, &v, &exp, &seen, err, sizeof err),
                     0);
    /* expired ones are deleted */
    int64_t removed = -1;
    assert_int_equal(co_store_sessions_expire(s, now, &removed, err, sizeof err), 0);
    assert_int_equal(removed, 1);
    assert_int_equal(co_store_sessions_expire(s, now, &removed, err, sizeof err), 0);
    assert_int_equal(removed, 0);

    /* passwd ends the viewer's sessions; remove ends the viewer and its sessions */
    assert_int_equal(co_store_viewer_passwd(s, "ann", "$scrypt$new", now, err, sizeof err), 1);
    assert_int_equal(co_store_viewer_passwd(s, "nobody", "$scrypt$new", now, err, sizeof err), 0);
    assert_int_equal(co_store_session_lookup(s, h1, now, &v, &exp, &seen, err, sizeof err), 0);
    assert_int_equal(co_store_viewer_get(s, "ann", &v, pw, sizeof pw, err, sizeof err), 1);
    assert_string_equal(pw, "$scrypt$new");
    assert_int_equal(co_store_session_lookup(s, h3, now, &v, &exp, &seen, err, sizeof err), 1);
    assert_int_equal(co_store_viewer_remove(s, "bea", err, sizeof err), 1);
    assert_int_equal(co_store_viewer_remove(s, "bea", err, sizeof err), 0);
    assert_int_equal(co_store_session_lookup(s, h3, now, &v, &exp, &seen, err, sizeof err), 0);
    assert_int_equal(co_store_session_remove(s, h3, err, sizeof err), 0);
}

/* ---------------------------------------------------------------- the access service */

static co_access *new_access(co_store *s, unsigned max_failures)
{
    co_config c;
    co_config_defaults(&c);
    c.login_max_failures = max_failures;
    c.login_lockout_ms = 60000;
    co_access *a = co_access_new(s, &c, 2);
    assert_non_null(a);
    return a;
}

static unsigned login(co_access *a, const char *addr, const char *user, const char *pw,
                      char *cookie, size_t cookielen, json_t **out, unsigned *retry)
{
    char body[512], sc[CO_SET_COOKIE_MAX];
    snprintf(body, sizeof body, "{\"user\": \"%s\", \"password\": \"%s\"}", user, pw);
    unsigned st = co_access_login(a, addr, "application/json", body, strlen(body), sc, retry, out);
    if (st == 200) {
        assert_non_null(strstr(sc, "HttpOnly"));
        assert_non_null(strstr(sc, "SameSite=Strict"));
        assert_non_null(strstr(sc, "Path=/"));
        assert_null(strstr(sc, "Secure"));
        /* "cinemon_session=<tok>; ..." as a request's Cookie header */
        const char *semi = strchr(sc, ';');
        snprintf(cookie, cookielen, "theme=dark; %.*s", (int)(semi - sc), sc);
    }
    return st;
}

static void test_login_read_write(void **state)
{
    store_fx *f = *state;
    co_access *a = new_access(f->s, 5);
    add_viewer(f->s, "gd", "viewer", "province", "Guangdong", "pw-gd");
    add_viewer(f->s, "boss", "operator", "all", "", "pw-boss");
    add_viewer(f->s, "chainop", "operator", "chain", "Wanda", "pw-chain");
    char cookie[256], c2[256], c3[256];
    json_t *out = NULL, *body = NULL;
    unsigned retry = 0;

    /* a province viewer logs in and reads within its province */
    assert_int_equal(login(a, "10.0.0.1", "gd", "pw-gd", cookie, sizeof cookie, &out, &retry), 200);
    json_t *d = json_object_get(out, "data");
    assert_string_equal(json_string_value(json_object_get(d, "user")), "gd");
    assert_string_equal(json_string_value(json_object_get(d, "role")), "viewer");
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "scope"), "kind")),
                        "province");
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "scope"), "value")),
                        "Guangdong");
    json_decref(out);
    co_caller who;
    assert_int_equal(co_access_read(a, NULL, cookie, &who, &body), 0);
    assert_int_equal(who.kind, CO_CALLER_SESSION);
    assert_int_equal(who.scope.kind, CO_SCOPE_PROVINCE);
    assert_string_equal(who.scope.value, "Guangdong");
    assert_false(who.operator_role);
    assert_int_equal(co_access_me(&who, &out), 200);
    json_decref(out);

    /* ... but may not write */
    co_operator op;
    assert_int_equal(co_access_write(a, NULL, cookie, "application/json", &op, NULL, &body), 403);
    json_decref(body);

    /* no credentials: 401; a bad Bearer: 401; nothing read anonymously by default */
    assert_int_equal(co_access_read(a, NULL, NULL, &who, &body), 401);
    json_decref(body);
    assert_int_equal(co_access_read(a, "Bearer nope", NULL, &who, &body), 401);
    json_decref(body);
    assert_int_equal(co_access_read(a, NULL, "cinemon_session=" TOK, &who, &body), 401);
    assert_string_equal(json_string_value(json_object_get(body, "at")), "Cookie");
    json_decref(body);
    assert_int_equal(co_access_me(&(co_caller){0}, &out), 401);
    json_decref(out);

    /* an operator session writes, with JSON only (CSRF guard) */
    assert_int_equal(login(a, "10.0.0.1", "boss", "pw-boss", c2, sizeof c2, &out, &retry), 200);
    json_decref(out);
    assert_int_equal(co_access_write(a, NULL, c2, NULL, &op, NULL, &body), 415);
    json_decref(body);
    assert_int_equal(co_access_write(a, NULL, c2, "text/plain", &op, NULL, &body), 415);
    json_decref(body);
    assert_int_equal(co_access_write(a, NULL, c2, "application/jsonx", &op, NULL, &body), 415);
    json_decref(body);
    assert_int_equal(
        co_access_write(a, NULL, c2, "Application/JSON; charset=utf-8", &op, NULL, &body), 0);
    assert_string_equal(op.name, "boss");
    assert_string_equal(op.site, "*");
    assert_int_equal(op.scope.kind, CO_SCOPE_ALL);
    /* a chain operator: the scope decides, site stays "" */
    assert_int_equal(login(a, "10.0.0.2", "chainop", "pw-chain", c3, sizeof c3, &out, &retry), 200);
    json_decref(out);
    assert_int_equal(co_access_write(a, NULL, c3, "application/json", &op, NULL, &body), 0);
    assert_int_equal(op.scope.kind, CO_SCOPE_CHAIN);
    assert_string_equal(op.scope.value, "Wanda");
    assert_string_equal(op.site, "");
    assert_int_equal(co_access_write(a, NULL, NULL, "application/json", &op, NULL, &body), 401);
    json_decref(body);

    /* logout ends the session: the same cookie no longer reads */
    char sc[CO_SET_COOKIE_MAX];
    assert_int_equal(co_access_logout(a, cookie, sc, &out), 200);
    json_decref(out);
    assert_non_null(strstr(sc, "Max-Age=0"));
    assert_int_equal(co_access_read(a, NULL, cookie, &who, &body), 401);
    json_decref(body);
    assert_int_equal(co_access_logout(a, NULL, sc, &out), 200); /* no session: still fine */
    json_decref(out);
    co_access_free(a);

    /* anonymous_read: a read without credentials is national */
    co_config c;
    co_config_defaults(&c);
    c.anonymous_read = true;
    a = co_access_new(f->s, &c, 1);
    assert_int_equal(co_access_read(a, NULL, "cinemon_session=" TOK, &who, &body), 0);
    assert_int_equal(who.kind, CO_CALLER_NONE);
    assert_int_equal(who.scope.kind, CO_SCOPE_ALL);
    co_access_free(a);
}

/* A session used more than a minute after its last use slides: expiry and cookie renewed. */
static void test_sliding_expiry(void **state)
{
    store_fx *f = *state;
    co_access *a = new_access(f->s, 5); /* session_ttl 12 h */
    add_viewer(f->s, "gd", "viewer", "province", "Guangdong", "pw-gd");
    char hash[CO_HASH_HEX_LEN + 1], err[256] = "";
    assert_int_equal(co_token_hash(TOK, strlen(TOK), hash), 0);
    int64_t now = cm_now_ms(), exp = 0, seen = 0;
    assert_int_equal(
        co_store_session_add(f->s, hash, "gd", now - 120000, now + 5000, err, sizeof err), 0);
    co_caller who;
    json_t *body = NULL;
    assert_int_equal(co_access_read(a, NULL, "cinemon_session=" TOK, &who, &body), 0);
    assert_non_null(strstr(who.set_cookie, "cinemon_session=" TOK "; Path=/; Max-Age=43200"));
    co_viewer_row v;
    assert_int_equal(co_store_session_lookup(f->s, hash, now, &v, &exp, &seen, err, sizeof err), 1);
    assert_true(exp >= now + 12 * 3600000 - 5000);
    assert_true(seen >= now);
    /* used again at once: no write, no new cookie */
    assert_int_equal(co_access_read(a, NULL, "cinemon_session=" TOK, &who, &body), 0);
    assert_string_equal(who.set_cookie, "");
    /* an expired session is refused with the cookie named as the culprit */
    assert_int_equal(co_token_hash(TOK2, strlen(TOK2), hash), 0);
    assert_int_equal(co_store_session_add(f->s, hash, "gd", now - 10000, now - 1, err, sizeof err),
                     0);
    assert_int_equal(co_access_read(a, NULL, "cinemon_session=" TOK2, &who, &body), 401);
    assert_string_equal(json_string_value(json_object_get(body, "at")), "Cookie");
    json_decref(body);
    co_access_free(a);
}

static void test_login_failures(void **state)
{
    store_fx *f = *state;
    co_access *a = new_access(f->s, 3);
    add_viewer(f->s, "gd", "viewer", "province", "Guangdong", "pw-gd");
    char cookie[256];
    json_t *out = NULL;
    unsigned retry = 0;
    char sc[CO_SET_COOKIE_MAX];

    /* the same message for a wrong password and an unknown user */
    assert_int_equal(login(a, "10.0.0.9", "gd", "wrong", cookie, sizeof cookie, &out, &retry), 401);
    char msg[200];
    snprintf(msg, sizeof msg, "%s", json_string_value(json_object_get(out, "error")));
    json_decref(out);
    assert_int_equal(login(a, "10.0.0.8", "ghost", "wrong", cookie, sizeof cookie, &out, &retry),
                     401);
    assert_string_equal(json_string_value(json_object_get(out, "error")), msg);
    json_decref(out);

    /* malformed bodies: 400 / 415, no throttling effect */
    const char *bad[] = {"",
                         "[]",
                         "{\"user\": 1, \"password\": \"x\"}",
                         "{\"user\": \"gd\"}",
                         "{\"user\": \"gd\", \"password\": \"\"}",
                         "{\"user\": \"gd\", \"password\": \"x\", \"remember\": true}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned st = co_access_login(a, "10.0.0.9", "application/json", bad[i], strlen(bad[i]), sc,
                                      &retry, &out);
        if (st != 400) fail_msg("body #%zu: status %u", i, st);
        json_decref(out);
    }
    const char *ok = "{\"user\": \"gd\", \"password\": \"pw-gd\"}";
    assert_int_equal(co_access_login(a, "10.0.0.9", "text/plain", ok, strlen(ok), sc, &retry, &out),
                     415);
    json_decref(out);

    /* two more failures of gd (3 in all): gd is locked, even with the right password */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(login(a, "10.0.1.1", "gd", "wrong", cookie, sizeof cookie, &out, &retry),
                         401);
        json_decref(out);
    }
    assert_int_equal(login(a, "10.0.1.2", "gd", "pw-gd", cookie, sizeof cookie, &out, &retry), 429);
    assert_true(retry >= 1 && retry <= 60);
    json_decref(out);

    /* an address with too many failures (4 x 3) is locked for every user */
    add_viewer(f->s, "other", "viewer", "all", "", "pw-other");
    for (int i = 0; i < 12; i++) {
        char u[32];
        snprintf(u, sizeof u, "guess%d", i);
        assert_int_equal(login(a, "10.6.6.6", u, "x", cookie, sizeof cookie, &out, &retry), 401);
        json_decref(out);
    }
    assert_int_equal(login(a, "10.6.6.6", "other", "pw-other", cookie, sizeof cookie, &out, &retry),
                     429);
    json_decref(out);
    assert_int_equal(login(a, "10.0.0.7", "other", "pw-other", cookie, sizeof cookie, &out, &retry),
                     200);
    json_decref(out);
    co_access_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_verify),
        cmocka_unit_test(test_cookie_parse),
        cmocka_unit_test(test_cookie_format),
        cmocka_unit_test_setup_teardown(test_store_viewers_sessions, store_fx_setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_login_read_write, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_login_failures, store_fx_setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_sliding_expiry, store_fx_setup, store_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

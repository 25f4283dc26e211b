/* settings.c — operator authentication and screen settings updates. */
#include "settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apierror.h"
#include "log.h"
#include "query.h"
#include "timeutil.h"
#include "token.h"

unsigned co_settings_auth(co_store *s, const char *authz, co_operator *who, json_t **body)
{
    const char *tok;
    size_t len;
    if (co_token_from_header(authz, &tok, &len) != 0) {
        *body = co_api_error("Authorization", "an operator token is required "
                                              "(Authorization: Bearer TOKEN)");
        return 401;
    }
    char hash[CO_HASH_HEX_LEN + 1], err[256] = "", site[CM_MAX_NAME + 1] = "";
    if (co_token_hash(tok, len, hash) != 0) {
        *body = co_api_error("", "cannot hash the token");
        return 503;
    }
    int found = co_store_operator_lookup(s, hash, who->name, sizeof who->name, site, sizeof site,
                                         err, sizeof err);
    if (found < 0) {
        cm_log_limited("settings-auth", 10, CM_LOG_ERROR, "operator lookup: %s", err);
        *body = co_api_error("", "store unavailable");
        return 503;
    }
    if (!found) {
        *body = co_api_error("Authorization", "unknown operator token");
        return 401;
    }
    /* who->site is still filled for callers that have not moved to the scope; nothing here
     * reads it any more */
    snprintf(who->site, sizeof who->site, "%s", site);
    if (strcmp(site, "*") == 0)
        who->scope = co_scope_all;
    else if (co_scope_set(&who->scope, CO_SCOPE_SITE, site, err, sizeof err) != 0) {
        *body = co_api_error("", "bad operator scope");
        return 503;
    }
    return 0;
}

/* One path segment: 1..CM_MAX_NAME printable bytes without '/' or spaces. */
static int segment(const char *p, size_t n)
{
    if (n == 0 || n > CM_MAX_NAME) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c == 0x7f || c == '/') return 0;
    }
    return 1;
}

/* A string member (may be absent; null = absent); *bad set on a wrong type. */
static const char *member_str(json_t *o, const char *key, size_t max, json_t **out, int *bad)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return NULL;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max) {
        *out = co_api_error(key, "'%s' must be a string of 1..%zu bytes", key, max);
        *bad = 1;
        return NULL;
    }
    const char *s = json_string_value(v);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20 || *c == 0x7f) {
            *out = co_api_error(key, "'%s' contains a control character", key);
            *bad = 1;
            return NULL;
        }
    return s;
}

/* Whether the operator may change site: 0 yes, else the status (403, 500) with *out set. */
static unsigned site_allowed(co_store *s, const co_operator *who, const char *site, const char *at,
                             const char *what, json_t **out)
{
    char err[256] = "";
    int in = co_store_site_in_scope(s, site, &who->scope, err, sizeof err);
    if (in < 0) {
        cm_log_limited("settings-scope", 10, CM_LOG_ERROR, "scope of operator %s: %s", who->name,
                       err);
        *out = co_api_error("", "store error while checking the operator's scope");
        return 500;
    }
    if (!in) {
        *out = co_api_error(at, "operator %s may not %s site %s", who->name, what, site);
        return 403;
    }
    return 0;
}

/* The body as a JSON object with only the known keys; NULL with *out set (400). */
static json_t *body_object(const char *body, size_t len, const char *const *keys, json_t **out)
{
    json_error_t je;
    json_t *doc = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(doc)) {
        json_decref(doc);
        *out = co_api_error("", "body is not a JSON object (%s at line %d)",
                            doc ? "not an object" : je.text, je.line);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v)
    {
        size_t i = 0;
        while (keys[i] && strcmp(keys[i], k))
            i++;
        if (!keys[i]) {
            char known[200] = "";
            for (size_t j = 0; keys[j]; j++) {
                size_t l = strlen(known);
                snprintf(known + l, sizeof known - l, "%s%s", j ? ", " : "", keys[j]);
            }
            *out = co_api_error(k, "unknown key '%.64s' (known: %s)", k, known);
            json_decref(doc);
            return NULL;
        }
    }
    return doc;
}

unsigned co_settings_put_screen(co_store *s, const co_operator *who, const char *rest,
                                const char *body, size_t len, json_t **out)
{
    const char *slash = rest ? strchr(rest, '/') : NULL;
    if (!slash || !segment(rest, (size_t)(slash - rest)) ||
        !segment(slash + 1, strlen(slash + 1))) {
        *out = co_api_error("", "expected /api/v1/screens/{site}/{screen}");
        return 404;
    }
    char site[CM_MAX_NAME + 1], screen[CM_MAX_NAME + 1];
    memcpy(site, rest, (size_t)(slash - rest));
    site[slash - rest] = '\0';
    strcpy(screen, slash + 1);
    unsigned denied = site_allowed(s, who, site, "", "change", out);
    if (denied) return denied;
    if (len > CO_SETTINGS_MAX_BODY) {
        *out = co_api_error("", "body larger than %d bytes", CO_SETTINGS_MAX_BODY);
        return 413;
    }
    static const char *const keys[] = {"name", "class", "display", "format", "spl_ref", NULL};
    json_t *doc = body_object(body, len, keys, out);
    if (!doc) return 400;
    int bad = 0;
    co_screen sc = {.site = site, .screen = screen};
    sc.name = member_str(doc, "name", 256, out, &bad);
    if (!bad) sc.class_ = member_str(doc, "class", 16, out, &bad);
    if (!bad && sc.class_ && !co_screen_class_valid(sc.class_)) {
        *out = co_api_error("class", "'class' must be theatre or review");
        bad = 1;
    }
    if (!bad) sc.display = member_str(doc, "display", 16, out, &bad);
    if (!bad && sc.display && !co_screen_display_valid(sc.display)) {
        *out = co_api_error("display", "'display' must be projection or led");
        bad = 1;
    }
    if (!bad) sc.format = member_str(doc, "format", 32, out, &bad);
    char *spl = NULL;
    json_t *ref = json_object_get(doc, "spl_ref");
    if (!bad && ref && !json_is_null(ref)) {
        if (!json_is_object(ref) || json_object_size(ref) > 32) {
            *out = co_api_error("spl_ref", "'spl_ref' must be an object of at most 32 channels");
            bad = 1;
        } else {
            const char *k;
            json_t *v;
            json_object_foreach(ref, k, v)
            {
                char at[64];
                snprintf(at, sizeof at, "spl_ref.%.40s", k);
                double d = json_number_value(v);
                if (!segment(k, strlen(k)) || strlen(k) > 16) {
                    *out = co_api_error(at, "channel names are 1..16 printable bytes");
                    bad = 1;
                } else if (!json_is_number(v) || d < 40 || d > 130) {
                    *out = co_api_error(at, "a reference level in dBC (40-130) is expected");
                    bad = 1;
                }
                if (bad) break;
            }
            if (!bad) spl = json_dumps(ref, JSON_COMPACT | JSON_SORT_KEYS);
        }
    }
    if (bad) {
        json_decref(doc);
        return 400;
    }
    sc.spl_ref_json = spl;
    char err[256] = "";
    unsigned st = 200;
    if (co_store_import(s, NULL, 0, &sc, 1, who->name, err, sizeof err) != 0) {
        cm_log_limited("settings-put", 10, CM_LOG_ERROR, "screen %s/%s: %s", site, screen, err);
        *out = co_api_error("", "store error while saving the screen");
        st = 500;
    } else {
        json_t *rows = co_store_screens(s, site, screen, &who->scope, err, sizeof err);
        json_t *row = json_array_get(rows, 0);
        if (row) {
            *out = json_incref(row);
            cm_info("screen %s/%s settings changed by operator %s", site, screen, who->name);
        } else {
            *out = co_api_error("", "store error while reading the screen back");
            st = 500;
        }
        json_decref(rows);
    }
    free(spl);
    json_decref(doc);
    return st;
}

/* POST /api/v1/alerts/{id}/ack {"comment"} */
static unsigned ack(co_store *s, const co_operator *who, const char *rest, const char *body,
                    size_t len, json_t **out)
{
    char *end;
    long long id = (rest[0] >= '1' && rest[0] <= '9') ? strtoll(rest, &end, 10) : 0;
    if (id <= 0 || strcmp(end, "/ack") != 0) {
        *out = co_api_error("", "expected POST /api/v1/alerts/{id}/ack");
        return 404;
    }
    static const char *const keys[] = {"comment", NULL};
    json_t *doc = len ? body_object(body, len, keys, out) : json_object();
    if (!doc) return 400;
    int bad = 0;
    const char *comment = member_str(doc, "comment", 1000, out, &bad);
    if (bad) {
        json_decref(doc);
        return 400;
    }
    char err[256] = "";
    int rc =
        co_store_alert_ack(s, id, who->name, comment, &who->scope, cm_now_ms(), err, sizeof err);
    json_decref(doc);
    if (rc < 0) {
        cm_log_limited("settings-ack", 10, CM_LOG_ERROR, "ack alert %lld: %s", id, err);
        *out = co_api_error("", "store error while acknowledging");
        return 500;
    }
    if (rc == 0) {
        /* an alert outside the scope reads as an unknown one */
        *out = co_api_error("", "no alert %lld%s", id,
                            co_scope_is_all(&who->scope) ? "" : " within the operator's scope");
        return 404;
    }
    cm_info("alert %lld acknowledged by operator %s", id, who->name);
    *out = co_store_alert(s, id, &who->scope, err, sizeof err);
    if (!*out) {
        *out = co_api_error("", "store error while reading the alert back");
        return 500;
    }
    return 200;
}

/* A time member: ms since the epoch (number) or an ISO-8601 string. 0 absent, 1 set, -1 bad. */
static int member_time(json_t *doc, const char *key, int64_t *ms, json_t **out)
{
    json_t *v = json_object_get(doc, key);
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *ms = json_integer_value(v);
        return 1;
    }
    if (json_is_string(v) && co_query_parse_time(json_string_value(v), ms) == 0) return 1;
    *out = co_api_error(key,
                        "'%s' must be ms since the epoch or ISO-8601 "
                        "(2026-11-25T10:00:00Z)",
                        key);
    return -1;
}

/* POST /api/v1/silences {"site","screen","device","rule","from","until","comment"} */
static unsigned silence(co_store *s, const co_operator *who, const char *body, size_t len,
                        json_t **out)
{
    static const char *const keys[] = {"site", "screen", "device",  "rule",
                                       "from", "until",  "comment", NULL};
    json_t *doc = body_object(body, len, keys, out);
    if (!doc) return 400;
    int bad = 0;
    co_silence sl = {.by = who->name};
    sl.site = member_str(doc, "site", CM_MAX_NAME, out, &bad);
    if (!bad && !sl.site) {
        *out = co_api_error("site", "'site' is required");
        bad = 1;
    }
    if (!bad) sl.screen = member_str(doc, "screen", CM_MAX_NAME, out, &bad);
    if (!bad) sl.device = member_str(doc, "device", CM_MAX_NAME, out, &bad);
    if (!bad) sl.rule = member_str(doc, "rule", CM_MAX_NAME, out, &bad);
    if (!bad) sl.comment = member_str(doc, "comment", 1000, out, &bad);
    int64_t now = cm_now_ms();
    sl.from_ms = now;
    if (!bad && member_time(doc, "from", &sl.from_ms, out) < 0) bad = 1;
    int got = 0;
    if (!bad && (got = member_time(doc, "until", &sl.until_ms, out)) < 0) bad = 1;
    if (!bad && !got) {
        *out = co_api_error("until", "'until' is required (the end of the maintenance window)");
        bad = 1;
    }
    if (!bad && sl.until_ms <= sl.from_ms) {
        *out = co_api_error("until", "'until' must be after 'from'");
        bad = 1;
    }
    if (!bad && sl.until_ms - sl.from_ms > 31LL * 86400000) {
        *out = co_api_error("until", "a silence lasts at most 31 days");
        bad = 1;
    }
    if (bad) {
        json_decref(doc);
        return 400;
    }
    unsigned denied = site_allowed(s, who, sl.site, "site", "silence", out);
    if (denied) {
        json_decref(doc);
        return denied;
    }
    char err[256] = "";
    int64_t id = 0;
    unsigned st = 201;
    if (co_store_silence_add(s, &sl, &id, err, sizeof err) < 0) {
        cm_log_limited("settings-silence", 10, CM_LOG_ERROR, "silence: %s", err);
        *out = co_api_error("", "store error while saving the silence");
        st = 500;
    } else {
        cm_info("silence %lld for site %s added by operator %s", (long long)id, sl.site, who->name);
        *out = json_pack("{s:I, s:s, s:s?, s:s?, s:s?, s:I, s:I, s:s, s:s?}", "id", (json_int_t)id,
                         "site", sl.site, "screen", sl.screen, "device", sl.device, "rule", sl.rule,
                         "from_ms", (json_int_t)sl.from_ms, "until_ms", (json_int_t)sl.until_ms,
                         "by", sl.by, "comment", sl.comment);
    }
    json_decref(doc);
    return st;
}

unsigned co_settings_write(co_store *s, const co_operator *who, const co_write_req *w, json_t **out)
{
    if (!strcmp(w->route, "/api/v1/screens/"))
        return co_settings_put_screen(s, who, w->rest, w->body, w->len, out);
    if (!strcmp(w->route, "/api/v1/alerts/")) return ack(s, who, w->rest, w->body, w->len, out);
    if (!strcmp(w->route, "/api/v1/silences")) return silence(s, who, w->body, w->len, out);
    *out = co_api_error("", "no such write");
    return 404;
}

/* settings.c — operator authentication and screen settings updates. */
#include "settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apierror.h"
#include "log.h"
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
    char hash[CO_HASH_HEX_LEN + 1], err[256] = "";
    if (co_token_hash(tok, len, hash) != 0) {
        *body = co_api_error("", "cannot hash the token");
        return 503;
    }
    int found = co_store_operator_lookup(s, hash, who->name, sizeof who->name, who->site,
                                         sizeof who->site, err, sizeof err);
    if (found < 0) {
        cm_log_limited("settings-auth", 10, CM_LOG_ERROR, "operator lookup: %s", err);
        *body = co_api_error("", "store unavailable");
        return 503;
    }
    if (!found) {
        *body = co_api_error("Authorization", "unknown operator token");
        return 401;
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

unsigned co_settings_put_screen(co_store *s, const co_operator *who, const char *rest,
                                const char *body, size_t len, json_t **out)
{
    const char *slash = rest ? strchr(rest, '/') : NULL;
    if (!slash || !segment(rest, (size_t)(slash - rest)) || !segment(slash + 1, strlen(slash + 1))) {
        *out = co_api_error("", "expected /api/v1/screens/{site}/{screen}");
        return 404;
    }
    char site[CM_MAX_NAME + 1], screen[CM_MAX_NAME + 1];
    memcpy(site, rest, (size_t)(slash - rest));
    site[slash - rest] = '\0';
    strcpy(screen, slash + 1);
    if (strcmp(who->site, "*") != 0 && strcmp(who->site, site) != 0) {
        *out = co_api_error("", "operator %s may not change site %s", who->name, site);
        return 403;
    }
    if (len > CO_SETTINGS_MAX_BODY) {
        *out = co_api_error("", "body larger than %d bytes", CO_SETTINGS_MAX_BODY);
        return 413;
    }
    json_error_t je;
    json_t *doc = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(doc)) {
        json_decref(doc);
        *out = co_api_error("", "body is not a JSON object (%s at line %d)",
                            doc ? "not an object" : je.text, je.line);
        return 400;
    }
    static const char *const keys[] = {"name", "class", "display", "format", "spl_ref", NULL};
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v)
    {
        size_t i = 0;
        while (keys[i] && strcmp(keys[i], k))
            i++;
        if (!keys[i]) {
            *out = co_api_error(k, "unknown key '%.64s' (known: name, class, display, format, "
                                   "spl_ref)", k);
            json_decref(doc);
            return 400;
        }
    }
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
        json_t *rows = co_store_screens(s, site, screen, err, sizeof err);
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

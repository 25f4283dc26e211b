/* profile_json.c — reading profile JSON with file and JSON-path errors. */
#include "profile_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ag_pj_fail(ag_pj *c, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->err && c->errlen) snprintf(c->err, c->errlen, "%s: %s: %s", c->file, path, msg);
    return -1;
}

void ag_pj_key(char *out, const char *base, const char *key)
{
    int plain = (*key != '\0');
    for (const char *p = key; *p; p++) {
        char ch = *p;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
                 (p != key && ch >= '0' && ch <= '9');
        if (!ok) {
            plain = 0;
            break;
        }
    }
    int n = plain ? snprintf(out, AG_PJ_PATH, "%s.%.64s", base, key)
                  : snprintf(out, AG_PJ_PATH, "%s['%.64s']", base, key);
    if (n >= AG_PJ_PATH) out[AG_PJ_PATH - 1] = '\0'; /* truncated path, still readable */
}

void ag_pj_idx(char *out, const char *base, const char *key, size_t i)
{
    if (snprintf(out, AG_PJ_PATH, "%s.%s[%zu]", base, key, i) >= AG_PJ_PATH)
        out[AG_PJ_PATH - 1] = '\0'; /* truncated path, still readable */
}

int ag_pj_in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0) return 1;
    return 0;
}

int ag_pj_check_keys(ag_pj *c, json_t *v, const char *path, const char *const *allowed)
{
    if (!json_is_object(v)) return ag_pj_fail(c, path, "expected an object");
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        if (!ag_pj_in_list(key, allowed)) {
            char p[AG_PJ_PATH];
            ag_pj_key(p, path, key);
            return ag_pj_fail(c, p, "unknown key");
        }
    }
    return 0;
}

int ag_pj_get_str(ag_pj *c, json_t *obj, const char *key, const char *path, int required,
                  size_t maxlen, char **out)
{
    char p[AG_PJ_PATH];
    ag_pj_key(p, path, key);
    json_t *v = json_object_get(obj, key);
    if (!v) return required ? ag_pj_fail(c, p, "missing") : 0;
    if (!json_is_string(v)) return ag_pj_fail(c, p, "expected a string");
    size_t len = json_string_length(v);
    if (maxlen == 0) maxlen = 4096;
    if (len == 0) return ag_pj_fail(c, p, "must not be empty");
    if (len > maxlen) return ag_pj_fail(c, p, "longer than %zu bytes", maxlen);
    if (strlen(json_string_value(v)) != len) return ag_pj_fail(c, p, "contains a NUL byte");
    *out = strdup(json_string_value(v));
    return *out ? 0 : ag_pj_fail(c, p, "out of memory");
}

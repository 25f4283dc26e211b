/* profile_json.h — reading profile JSON with errors that name the file and the JSON path
 * ("profiles/x.json: $.tables[0].columns[2].scale: expected a number"); shared by the
 * profile loader and the protocol-specific profile sections (http, text). */
#ifndef AG_PROFILE_JSON_H
#define AG_PROFILE_JSON_H

#include <jansson.h>
#include <stddef.h>

#define AG_PJ_PATH 256 /* room for one JSON path */

/* Where we are: the file for messages and the caller's error buffer. */
typedef struct ag_pj {
    const char *file;
    char *err;
    size_t errlen;
} ag_pj;

/* Fill err with "file: path: message"; returns -1. */
int ag_pj_fail(ag_pj *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* out = base + ".key" (or "['key']" when key is not a plain identifier); out has AG_PJ_PATH. */
void ag_pj_key(char *out, const char *base, const char *key);
/* out = base + ".key[i]". */
void ag_pj_idx(char *out, const char *base, const char *key, size_t i);
/* True when s is one of the NULL-terminated list. */
int ag_pj_in_list(const char *s, const char *const *list);
/* v must be an object whose keys are all in allowed; else -1 naming the first other key. */
int ag_pj_check_keys(ag_pj *c, json_t *v, const char *path, const char *const *allowed);
/* String member `key` of obj: absent is an error only when required (0, *out untouched);
 * else non-empty, at most maxlen bytes (0 = 4096), no NUL; copied into *out. 0 or -1. */
int ag_pj_get_str(ag_pj *c, json_t *obj, const char *key, const char *path, int required,
                  size_t maxlen, char **out);

#endif

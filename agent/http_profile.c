/* http_profile.c — the "requests" section of HTTP profiles, RFC 6901 pointers, templates and
 * the mapping of a JSON or XML answer to samples (see http_profile.h). */
#include "http_profile.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "profile_json.h"
#include "wire.h"
#include "xml_find.h"

#define MAX_DEPTH 4 /* nested "each" */
#define MAX_BODY 65536

static const char *const request_keys[] = {"name",          "method",       "path",     "body",
                                           "template",      "content_type", "headers",  "format",
                                           "bearer_token",  "values",       "identity", "session",
                                           "session_error", "note",         NULL};
static const char *const leaf_keys[] = {"pointer", "metric", "labels", "unit", "scale",
                                        "offset",  "enum",   "note",   NULL};
static const char *const xml_leaf_keys[] = {"element", "metric", "labels", "unit", "scale",
                                            "offset",  "enum",   "note",   NULL};
static const char *const each_keys[] = {"each", "label", "values", "note", NULL};
/* in the order of AG_HTTP_ID_* */
static const char *const identity_keys[] = {"vendor",   "model",    "serial",
                                            "firmware", "hostname", NULL};
static const char *const session_keys[] = {"element", "pointer", "regex", NULL};
static const char *const session_error_keys[] = {"status", "element", NULL};
static const char *const template_vars[] = {"username", "password", "session", NULL};

typedef ag_pj pctx;

int ag_json_pointer_check(const char *s)
{
    if (!s) return -1;
    if (strlen(s) > AG_HTTP_MAX_POINTER) return -1;
    if (*s == '\0') return 0;
    if (*s != '/') return -1;
    for (const char *p = s; *p; p++)
        if (*p == '~' && p[1] != '0' && p[1] != '1') return -1;
    return 0;
}

/* An XML element name member ("sys:productName", "*:Fault"). */
static int get_element(pctx *c, json_t *v, const char *p, char **out)
{
    if (!json_is_string(v)) return ag_pj_fail(c, p, "expected an element name string");
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || !ag_xml_name_ok(s))
        return ag_pj_fail(c, p,
                          "'%.80s' is not an element name (as written with its prefix, "
                          "\"sys:productName\", or \"*:name\" for any prefix; at most %d bytes)",
                          s, AG_XML_MAX_NAME);
    *out = strdup(s);
    return *out ? 0 : ag_pj_fail(c, p, "out of memory");
}

/* A pointer member: must be a valid RFC 6901 pointer. */
static int get_pointer(pctx *c, json_t *v, const char *p, char **out)
{
    if (!json_is_string(v)) return ag_pj_fail(c, p, "expected a JSON pointer string (\"/a/b\")");
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v)) return ag_pj_fail(c, p, "contains a NUL byte");
    if (ag_json_pointer_check(s) < 0)
        return ag_pj_fail(
            c, p,
            "'%.80s' is not a JSON pointer (RFC 6901: \"\" or \"/a/0/b\", '~' only as "
            "~0 or ~1, at most %d bytes)",
            s, AG_HTTP_MAX_POINTER);
    *out = strdup(s);
    return *out ? 0 : ag_pj_fail(c, p, "out of memory");
}

static void free_labels(cm_label *l, size_t n)
{
    for (size_t i = 0; l && i < n; i++) {
        free((char *)l[i].key);
        free((char *)l[i].value);
    }
    free(l);
}

/* A JSON pointer, or an element name when xml. */
static int get_sel(pctx *c, json_t *v, const char *p, int xml, char **out)
{
    return xml ? get_element(c, v, p, out) : get_pointer(c, v, p, out);
}

/* An object of label name → string; ptrs: the strings are JSON pointers (XML: elements). */
static int get_label_obj(pctx *c, json_t *v, const char *p, int ptrs, int xml, cm_label **out,
                         size_t *nout)
{
    if (!json_is_object(v)) return ag_pj_fail(c, p, "expected an object");
    size_t n = json_object_size(v);
    if (n > CM_MAX_LABELS) return ag_pj_fail(c, p, "more than %d labels", CM_MAX_LABELS);
    if (n == 0) return ptrs ? ag_pj_fail(c, p, "must not be empty") : 0;
    *out = calloc(n, sizeof **out);
    if (!*out) return ag_pj_fail(c, p, "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        char kp[AG_PJ_PATH];
        ag_pj_key(kp, p, key);
        if (!cm_wire_valid_name(key))
            return ag_pj_fail(c, kp, "'%.64s' is not a valid label name ([a-z_][a-z0-9_]*)", key);
        char *s = NULL;
        if (ptrs) {
            if (get_sel(c, val, kp, xml, &s) < 0) return -1;
        } else {
            if (!json_is_string(val)) return ag_pj_fail(c, kp, "expected a string");
            size_t len = json_string_length(val);
            if (len == 0 || len >= CM_MAX_VALUE || strlen(json_string_value(val)) != len)
                return ag_pj_fail(c, kp, "label value must be 1..%d bytes without NUL",
                                  CM_MAX_VALUE - 1);
            s = strdup(json_string_value(val));
        }
        (*out)[*nout].key = strdup(key);
        (*out)[*nout].value = s;
        (*nout)++;
        if (!(*out)[*nout - 1].key || !s) return ag_pj_fail(c, kp, "out of memory");
    }
    return 0;
}

static void free_values(ag_http_value *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].pointer);
        free(v[i].metric);
        free(v[i].unit);
        free_labels(v[i].labels, v[i].nlabels);
        ag_value_map_free(&v[i].map);
        free_labels(v[i].label_ptrs, v[i].nlabel_ptrs);
        free_values(v[i].values, v[i].nvalues);
    }
    free(v);
}

static int parse_values(pctx *c, json_t *obj, const char *path, size_t nlabels_above, int depth,
                        int xml, ag_http_value **out, size_t *nout);

static int parse_value(pctx *c, json_t *v, const char *path, size_t nlabels_above, int depth,
                       int xml, ag_http_value *out)
{
    if (!json_is_object(v)) return ag_pj_fail(c, path, "expected an object");
    char p[AG_PJ_PATH];
    if (json_object_get(v, "each")) {
        out->each = 1;
        if (depth >= MAX_DEPTH)
            return ag_pj_fail(c, path, "\"each\" nested deeper than %d", MAX_DEPTH);
        if (ag_pj_check_keys(c, v, path, each_keys) < 0) return -1;
        ag_pj_key(p, path, "each");
        if (get_sel(c, json_object_get(v, "each"), p, xml, &out->pointer) < 0) return -1;
        json_t *l = json_object_get(v, "label");
        if (l) {
            ag_pj_key(p, path, "label");
            if (get_label_obj(c, l, p, 1, xml, &out->label_ptrs, &out->nlabel_ptrs) < 0) return -1;
        }
        return parse_values(c, v, path, nlabels_above + out->nlabel_ptrs, depth + 1, xml,
                            &out->values, &out->nvalues);
    }
    if (ag_pj_check_keys(c, v, path, xml ? xml_leaf_keys : leaf_keys) < 0) return -1;
    const char *selkey = xml ? "element" : "pointer";
    ag_pj_key(p, path, selkey);
    json_t *ptr = json_object_get(v, selkey);
    if (!ptr) return ag_pj_fail(c, p, "missing");
    if (get_sel(c, ptr, p, xml, &out->pointer) < 0) return -1;
    if (ag_pj_get_str(c, v, "metric", path, 1, CM_MAX_NAME, &out->metric) < 0) return -1;
    if (!cm_wire_valid_name(out->metric)) {
        ag_pj_key(p, path, "metric");
        return ag_pj_fail(c, p, "'%s' is not a valid name ([a-z_][a-z0-9_]*)", out->metric);
    }
    if (ag_pj_get_str(c, v, "unit", path, 0, 32, &out->unit) < 0) return -1;
    json_t *l = json_object_get(v, "labels");
    if (l) {
        ag_pj_key(p, path, "labels");
        if (get_label_obj(c, l, p, 0, 0, &out->labels, &out->nlabels) < 0) return -1;
    }
    if (out->nlabels + nlabels_above > CM_MAX_LABELS)
        return ag_pj_fail(c, path, "more than %d labels with those of the enclosing \"each\"",
                          CM_MAX_LABELS);
    json_t *note = json_object_get(v, "note");
    if (note && !json_is_string(note)) {
        ag_pj_key(p, path, "note");
        return ag_pj_fail(c, p, "expected a string");
    }
    /* scale, offset or enum: parsed exactly as in SNMP profiles */
    return ag_value_map_parse(v, c->file, path, &out->map, c->err, c->errlen);
}

static int parse_values(pctx *c, json_t *obj, const char *path, size_t nlabels_above, int depth,
                        int xml, ag_http_value **out, size_t *nout)
{
    char p[AG_PJ_PATH];
    ag_pj_key(p, path, "values");
    json_t *a = json_object_get(obj, "values");
    if (!a) return 0;
    if (!json_is_array(a)) return ag_pj_fail(c, p, "expected an array");
    size_t n = json_array_size(a);
    if (n == 0) return 0;
    *out = calloc(n, sizeof **out);
    if (!*out) return ag_pj_fail(c, p, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char ip[AG_PJ_PATH];
        ag_pj_idx(ip, path, "values", i);
        (*nout)++;
        if (parse_value(c, json_array_get(a, i), ip, nlabels_above, depth, xml, &(*out)[i]) < 0)
            return -1;
    }
    return 0;
}

/* The path of a request: '/' then printable ASCII without spaces. */
static int valid_path(const char *s)
{
    if (s[0] != '/') return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f) return 0;
    return 1;
}

/* The variables of a template: every "${" starts ${username}, ${password} or ${session}.
 * 0, or -1 naming the bad one. *session: 1 when ${session} appears. */
static int check_template(pctx *c, const char *p, const char *s, int *session)
{
    for (const char *q = strstr(s, "${"); q; q = strstr(q + 2, "${")) {
        const char *e = strchr(q + 2, '}');
        size_t n = e ? (size_t)(e - q - 2) : 0;
        int ok = 0;
        for (size_t i = 0; e && template_vars[i]; i++)
            if (n == strlen(template_vars[i]) && memcmp(q + 2, template_vars[i], n) == 0) {
                ok = 1;
                if (i == 2) *session = 1;
            }
        if (!ok)
            return ag_pj_fail(c, p,
                              "'%.24s' is not a variable (${username}, ${password} or "
                              "${session}; a literal \"${\" cannot be written)",
                              q);
    }
    return 0;
}

/* "session": how the login answer yields the session id. */
static int parse_session(pctx *c, json_t *v, const char *path, ag_http_request *r)
{
    char p[AG_PJ_PATH];
    if (ag_pj_check_keys(c, v, path, session_keys) < 0) return -1;
    if (json_object_size(v) != 1)
        return ag_pj_fail(c, path,
                          "expected exactly one of \"element\" (XML), \"pointer\" "
                          "(JSON) or \"regex\"");
    json_t *x;
    if ((x = json_object_get(v, "element"))) {
        ag_pj_key(p, path, "element");
        if (r->format != AG_HTTP_XML) return ag_pj_fail(c, p, "needs \"format\": \"xml\"");
        return get_element(c, x, p, &r->session_sel);
    }
    if ((x = json_object_get(v, "pointer"))) {
        ag_pj_key(p, path, "pointer");
        if (r->format != AG_HTTP_JSON) return ag_pj_fail(c, p, "needs \"format\": \"json\"");
        return get_pointer(c, x, p, &r->session_sel);
    }
    ag_pj_key(p, path, "regex");
    char *re = NULL;
    if (ag_pj_get_str(c, v, "regex", path, 1, 512, &re) < 0) return -1;
    r->session_re = calloc(1, sizeof *r->session_re);
    if (!r->session_re) {
        free(re);
        return ag_pj_fail(c, p, "out of memory");
    }
    int rc = regcomp(r->session_re, re, REG_EXTENDED);
    if (rc != 0) {
        char why[128];
        regerror(rc, r->session_re, why, sizeof why);
        free(r->session_re);
        r->session_re = NULL;
        rc = ag_pj_fail(c, p, "'%.80s' does not compile: %s", re, why);
        free(re);
        return rc;
    }
    free(re);
    if (r->session_re->re_nsub < 1)
        return ag_pj_fail(c, p, "regular expression has no group (group 1 is the session id)");
    return 0;
}

/* "session_error": {"status": [500], "element": "*:Fault"} */
static int parse_session_error(pctx *c, json_t *v, const char *path, ag_http_request *r)
{
    char p[AG_PJ_PATH];
    if (ag_pj_check_keys(c, v, path, session_error_keys) < 0) return -1;
    json_t *st = json_object_get(v, "status");
    r->nerror_status = 0;
    if (st) {
        ag_pj_key(p, path, "status");
        size_t n = json_array_size(st);
        if (!json_is_array(st) || n > sizeof r->error_status / sizeof *r->error_status)
            return ag_pj_fail(c, p, "expected an array of at most 8 HTTP statuses");
        for (size_t i = 0; i < n; i++) {
            json_t *x = json_array_get(st, i);
            if (!json_is_integer(x) || json_integer_value(x) < 300 || json_integer_value(x) > 599) {
                char ip[AG_PJ_PATH];
                ag_pj_idx(ip, path, "status", i);
                return ag_pj_fail(c, ip, "expected an HTTP status 300..599");
            }
            r->error_status[r->nerror_status++] = (int)json_integer_value(x);
        }
    }
    json_t *el = json_object_get(v, "element");
    if (el) {
        ag_pj_key(p, path, "element");
        if (get_element(c, el, p, &r->error_element) < 0) return -1;
    }
    return 0;
}

/* "identity": field → selector or array of 1..AG_HTTP_ID_PARTS selectors. */
static int parse_identity(pctx *c, json_t *id, const char *p, ag_http_request *r)
{
    if (ag_pj_check_keys(c, id, p, identity_keys) < 0) return -1;
    for (size_t k = 0; identity_keys[k]; k++) {
        json_t *x = json_object_get(id, identity_keys[k]);
        if (!x) continue;
        char kp[AG_PJ_PATH];
        ag_pj_key(kp, p, identity_keys[k]);
        ag_http_idsel *sel = &r->id[k];
        if (!json_is_array(x)) {
            if (get_sel(c, x, kp, r->format == AG_HTTP_XML, &sel->sel[0]) < 0) return -1;
            sel->n = 1;
            continue;
        }
        size_t n = json_array_size(x);
        if (n == 0 || n > AG_HTTP_ID_PARTS)
            return ag_pj_fail(c, kp, "expected 1..%d selectors (their texts are joined)",
                              AG_HTTP_ID_PARTS);
        for (size_t i = 0; i < n; i++) {
            char ip[AG_PJ_PATH];
            ag_pj_idx(ip, p, identity_keys[k], i);
            if (get_sel(c, json_array_get(x, i), ip, r->format == AG_HTTP_XML, &sel->sel[i]) < 0)
                return -1;
            sel->n++;
        }
    }
    return 0;
}

/* "headers": {"SOAPAction": "\"urn:x\""}: token names, printable values (templates). */
static int parse_headers(pctx *c, json_t *h, const char *p, ag_http_request *r, int *session)
{
    if (!json_is_object(h)) return ag_pj_fail(c, p, "expected an object");
    size_t n = json_object_size(h);
    if (n == 0 || n > 16) return ag_pj_fail(c, p, "expected 1..16 headers");
    r->headers = calloc(n, sizeof *r->headers);
    if (!r->headers) return ag_pj_fail(c, p, "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(h, key, val)
    {
        char kp[AG_PJ_PATH];
        ag_pj_key(kp, p, key);
        size_t kl = strlen(key);
        int ok = kl > 0 && kl <= 64;
        for (size_t i = 0; ok && i < kl; i++)
            ok = (key[i] >= 'a' && key[i] <= 'z') || (key[i] >= 'A' && key[i] <= 'Z') ||
                 (key[i] >= '0' && key[i] <= '9') || key[i] == '-' || key[i] == '_';
        static const char *const reserved[] = {"host",          "content-length",    "content-type",
                                               "authorization", "transfer-encoding", NULL};
        for (size_t i = 0; ok && reserved[i]; i++)
            ok = strcasecmp(key, reserved[i]) != 0;
        if (!ok)
            return ag_pj_fail(c, kp,
                              "'%.64s' is not a header name we may set (letters, digits, '-', "
                              "'_'; not Host, Content-Length, Content-Type, Authorization, "
                              "Transfer-Encoding)",
                              key);
        if (!json_is_string(val)) return ag_pj_fail(c, kp, "expected a string");
        const char *s = json_string_value(val);
        size_t len = json_string_length(val);
        if (len == 0 || len > 1024 || strlen(s) != len)
            return ag_pj_fail(c, kp, "must be 1..1024 bytes");
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                return ag_pj_fail(c, kp, "control character in a header value");
        if (check_template(c, kp, s, session) < 0) return -1;
        r->headers[r->nheaders].key = strdup(key);
        r->headers[r->nheaders].value = strdup(s);
        r->nheaders++;
        if (!r->headers[r->nheaders - 1].key || !r->headers[r->nheaders - 1].value)
            return ag_pj_fail(c, kp, "out of memory");
    }
    return 0;
}

static int parse_request(pctx *c, json_t *v, const char *path, ag_http_request *r, int *session)
{
    char p[AG_PJ_PATH];
    if (ag_pj_check_keys(c, v, path, request_keys) < 0) return -1;
    if (ag_pj_get_str(c, v, "name", path, 0, 64, &r->name) < 0) return -1;
    char *method = NULL;
    if (ag_pj_get_str(c, v, "method", path, 0, 8, &method) < 0) return -1;
    if (method) {
        int get = strcmp(method, "GET") == 0;
        r->post = strcmp(method, "POST") == 0;
        free(method);
        if (!get && !r->post) {
            ag_pj_key(p, path, "method");
            return ag_pj_fail(c, p, "expected \"GET\" or \"POST\"");
        }
    }
    if (ag_pj_get_str(c, v, "path", path, 1, 1024, &r->path) < 0) return -1;
    if (!valid_path(r->path)) {
        ag_pj_key(p, path, "path");
        return ag_pj_fail(
            c, p, "'%.80s' must start with '/' and hold printable ASCII without spaces", r->path);
    }
    char *format = NULL;
    if (ag_pj_get_str(c, v, "format", path, 0, 8, &format) < 0) return -1;
    if (format) {
        int json = strcmp(format, "json") == 0;
        r->format = strcmp(format, "xml") == 0 ? AG_HTTP_XML : AG_HTTP_JSON;
        int xml = r->format == AG_HTTP_XML;
        free(format);
        if (!json && !xml) {
            ag_pj_key(p, path, "format");
            return ag_pj_fail(c, p, "expected \"json\" or \"xml\"");
        }
    }
    json_t *body = json_object_get(v, "body");
    if (body) {
        ag_pj_key(p, path, "body");
        if (!r->post) return ag_pj_fail(c, p, "a body needs \"method\": \"POST\"");
        r->body = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!r->body) return ag_pj_fail(c, p, "cannot be encoded");
        if (strlen(r->body) > MAX_BODY) return ag_pj_fail(c, p, "longer than %d bytes", MAX_BODY);
    }
    if (ag_pj_get_str(c, v, "template", path, 0, MAX_BODY, &r->tmpl) < 0) return -1;
    if (r->tmpl) {
        ag_pj_key(p, path, "template");
        if (!r->post) return ag_pj_fail(c, p, "a template needs \"method\": \"POST\"");
        if (r->body) return ag_pj_fail(c, p, "\"body\" and \"template\" exclude each other");
        if (check_template(c, p, r->tmpl, session) < 0) return -1;
    }
    if (ag_pj_get_str(c, v, "content_type", path, 0, 128, &r->content_type) < 0) return -1;
    ag_pj_key(p, path, "content_type");
    if (r->content_type) {
        if (!r->body && !r->tmpl) return ag_pj_fail(c, p, "only with \"body\" or \"template\"");
        for (const char *q = r->content_type; *q; q++)
            if ((unsigned char)*q < 0x20 || *q == 0x7f)
                return ag_pj_fail(c, p, "control character in the content type");
    } else if (r->body || r->tmpl) {
        r->content_type = strdup(r->tmpl && r->format == AG_HTTP_XML ? "text/xml; charset=utf-8"
                                                                     : "application/json");
        if (!r->content_type) return ag_pj_fail(c, p, "out of memory");
    }
    json_t *h = json_object_get(v, "headers");
    if (h) {
        ag_pj_key(p, path, "headers");
        if (parse_headers(c, h, p, r, session) < 0) return -1;
    }
    json_t *bt = json_object_get(v, "bearer_token");
    if (bt) {
        ag_pj_key(p, path, "bearer_token");
        if (!json_is_boolean(bt)) return ag_pj_fail(c, p, "expected true or false");
        r->bearer_token = json_is_true(bt);
    }
    json_t *note = json_object_get(v, "note");
    if (note && !json_is_string(note)) {
        ag_pj_key(p, path, "note");
        return ag_pj_fail(c, p, "expected a string");
    }
    json_t *sess = json_object_get(v, "session");
    json_t *serr = json_object_get(v, "session_error");
    if (sess) {
        r->login = 1;
        ag_pj_key(p, path, "session");
        if (!json_is_object(sess)) return ag_pj_fail(c, p, "expected an object");
        if (parse_session(c, sess, p, r) < 0) return -1;
        r->error_status[0] = 500; /* default: the Doremi/IMS answer to an unknown session */
        r->nerror_status = 1;
        if (serr) {
            ag_pj_key(p, path, "session_error");
            if (!json_is_object(serr)) return ag_pj_fail(c, p, "expected an object");
            if (parse_session_error(c, serr, p, r) < 0) return -1;
        }
        if (json_object_get(v, "values") || json_object_get(v, "identity"))
            return ag_pj_fail(c, path,
                              "a login request (with \"session\") reads only the "
                              "session: no values or identity");
        return 0;
    }
    if (serr) {
        ag_pj_key(p, path, "session_error");
        return ag_pj_fail(c, p, "only in the login request (the one with \"session\")");
    }
    json_t *id = json_object_get(v, "identity");
    if (id) {
        ag_pj_key(p, path, "identity");
        if (parse_identity(c, id, p, r) < 0) return -1;
    }
    if (parse_values(c, v, path, 0, 0, r->format == AG_HTTP_XML, &r->values, &r->nvalues) < 0)
        return -1;
    int reads_id = 0;
    for (size_t k = 0; k < AG_HTTP_NID; k++)
        reads_id |= r->id[k].n > 0;
    if (r->nvalues == 0 && !reads_id)
        return ag_pj_fail(c, path, "request reads nothing (no values, no identity)");
    return 0;
}

int ag_http_profile_parse(const char *file, json_t *doc, ag_http_profile *out, char *err,
                          size_t errlen)
{
    pctx c = {file ? file : "profile", err, errlen};
    memset(out, 0, sizeof *out);
    json_t *a = json_object_get(doc, "requests");
    if (!a) return ag_pj_fail(&c, "$.requests", "missing (an http profile lists its requests)");
    if (!json_is_array(a) || json_array_size(a) == 0)
        return ag_pj_fail(&c, "$.requests", "expected a non-empty array");
    size_t n = json_array_size(a);
    if (n > 64) return ag_pj_fail(&c, "$.requests", "more than 64 requests");
    out->reqs = calloc(n, sizeof *out->reqs);
    if (!out->reqs) return ag_pj_fail(&c, "$.requests", "out of memory");
    for (size_t i = 0; i < n; i++) {
        char ip[AG_PJ_PATH];
        ag_pj_idx(ip, "$", "requests", i);
        out->nreqs++;
        int session = 0;
        if (parse_request(&c, json_array_get(a, i), ip, &out->reqs[i], &session) < 0) goto fail;
        if (out->reqs[i].login) {
            if (i != 0) {
                ag_pj_fail(&c, ip, "the login request (with \"session\") must be the first");
                goto fail;
            }
            if (session) {
                ag_pj_fail(&c, ip, "the login request cannot use ${session}");
                goto fail;
            }
            out->has_login = 1;
        }
        out->uses_session |= session;
    }
    if (out->uses_session && !out->has_login) {
        ag_pj_fail(&c, "$.requests",
                   "${session} is used but no request has \"session\" (the "
                   "login request, first)");
        goto fail;
    }
    if (out->has_login && n < 2) {
        ag_pj_fail(&c, "$.requests", "a login request alone reads nothing");
        goto fail;
    }
    return 0;
fail:
    ag_http_profile_free(out);
    return -1;
}

void ag_http_profile_free(ag_http_profile *p)
{
    if (!p) return;
    for (size_t i = 0; p->reqs && i < p->nreqs; i++) {
        ag_http_request *r = &p->reqs[i];
        free(r->name);
        free(r->path);
        free(r->body);
        free(r->tmpl);
        free(r->content_type);
        free_labels(r->headers, r->nheaders);
        for (size_t k = 0; k < AG_HTTP_NID; k++)
            for (size_t j = 0; j < AG_HTTP_ID_PARTS; j++)
                free(r->id[k].sel[j]);
        free(r->session_sel);
        if (r->session_re) {
            regfree(r->session_re);
            free(r->session_re);
        }
        free(r->error_element);
        free_values(r->values, r->nvalues);
    }
    free(p->reqs);
    memset(p, 0, sizeof *p);
}

/* ---- RFC 6901 ------------------------------------------------------------------------- */

json_t *ag_json_pointer_get(json_t *root, const char *ptr)
{
    if (!root || !ptr) return NULL;
    if (*ptr == '\0') return root;
    if (*ptr != '/') return NULL;
    json_t *cur = root;
    const char *p = ptr + 1;
    char tok[AG_HTTP_MAX_POINTER + 1];
    for (;;) {
        size_t n = 0;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~') {
                if (*p == '0')
                    ch = '~';
                else if (*p == '1')
                    ch = '/';
                else
                    return NULL;
                p++;
            }
            if (n >= AG_HTTP_MAX_POINTER) return NULL;
            tok[n++] = ch;
        }
        tok[n] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_getn(cur, tok, n);
        } else if (json_is_array(cur)) {
            /* "0" or [1-9][0-9]*; "-" (past the end) and anything else: no value */
            if (n == 0 || (n > 1 && tok[0] == '0') || n > 9) return NULL;
            size_t idx = 0;
            for (size_t i = 0; i < n; i++) {
                if (tok[i] < '0' || tok[i] > '9') return NULL;
                idx = idx * 10 + (size_t)(tok[i] - '0');
            }
            cur = json_array_get(cur, idx);
        } else {
            return NULL;
        }
        if (!cur) return NULL;
        if (*p == '\0') return cur;
        p++; /* the '/' */
    }
}

/* ---- mapping -------------------------------------------------------------------------- */

typedef struct mctx {
    ag_http_emit_fn emit;
    void *ud;
    int errors;
    char *err;
    size_t errlen;
    cm_label labels[CM_MAX_LABELS];
    char values[CM_MAX_LABELS][CM_MAX_VALUE];
    size_t nlabels;
    int broken; /* XML: markup broken (the answer is a protocol error) */
} mctx;

static void merr(mctx *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void merr(mctx *m, const char *fmt, ...)
{
    if (m->errors++ == 0 && m->err && m->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->err, m->errlen, fmt, ap);
        va_end(ap);
    }
}

/* A scalar JSON value as label text into buf (CM_MAX_VALUE). 0 or -1. */
static int label_text(json_t *v, char *buf)
{
    if (json_is_string(v)) {
        size_t len = json_string_length(v);
        const char *s = json_string_value(v);
        if (len == 0 || len >= CM_MAX_VALUE || strlen(s) != len) return -1;
        memcpy(buf, s, len + 1);
        return 0;
    }
    if (json_is_integer(v)) {
        snprintf(buf, CM_MAX_VALUE, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return 0;
    }
    if (json_is_real(v) && isfinite(json_real_value(v))) {
        snprintf(buf, CM_MAX_VALUE, "%.15g", json_real_value(v));
        return 0;
    }
    if (json_is_boolean(v)) {
        snprintf(buf, CM_MAX_VALUE, "%s", json_is_true(v) ? "true" : "false");
        return 0;
    }
    return -1;
}

static void map_leaf(mctx *m, const ag_http_value *hv, json_t *ctx)
{
    json_t *v = ag_json_pointer_get(ctx, hv->pointer);
    if (!v || json_is_null(v)) return;
    ag_raw raw = {AG_RAW_NULL, 0, NULL, 0};
    if (json_is_boolean(v)) {
        raw.kind = AG_RAW_NUM;
        raw.num = json_is_true(v) ? 1 : 0;
    } else if (json_is_number(v)) {
        raw.kind = AG_RAW_NUM;
        raw.num = json_number_value(v);
    } else if (json_is_string(v)) {
        raw.kind = AG_RAW_STR;
        raw.str = json_string_value(v);
        raw.len = json_string_length(v);
    } else {
        merr(m, "%s at %.80s: expected a number, boolean or string, got %s", hv->metric,
             hv->pointer, json_is_object(v) ? "an object" : "an array");
        return;
    }
    double out;
    char why[160];
    int rc = ag_value_map_apply(&hv->map, &raw, &out, why, sizeof why);
    if (rc < 0) {
        merr(m, "%s at %.80s: %s", hv->metric, hv->pointer, why);
        return;
    }
    if (rc > 0) return;
    size_t base = m->nlabels, n = base;
    for (size_t i = 0; i < hv->nlabels && n < CM_MAX_LABELS; i++)
        m->labels[n++] = hv->labels[i];
    m->emit(m->ud, hv->metric, hv->unit, m->labels, n, out);
    m->nlabels = base;
}

static void map_values(mctx *m, const ag_http_value *vals, size_t n, json_t *ctx);

static void map_each(mctx *m, const ag_http_value *hv, json_t *ctx)
{
    json_t *a = ag_json_pointer_get(ctx, hv->pointer);
    if (!a || json_is_null(a)) return;
    if (!json_is_array(a)) {
        merr(m, "each %.80s: expected an array", hv->pointer);
        return;
    }
    size_t n = json_array_size(a);
    if (n > AG_HTTP_MAX_EACH) {
        merr(m, "each %.80s: %zu elements, only the first %d read", hv->pointer, n,
             AG_HTTP_MAX_EACH);
        n = AG_HTTP_MAX_EACH;
    }
    size_t base = m->nlabels;
    for (size_t i = 0; i < n; i++) {
        json_t *el = json_array_get(a, i);
        int ok = 1;
        m->nlabels = base;
        for (size_t l = 0; l < hv->nlabel_ptrs && ok; l++) {
            json_t *lv = ag_json_pointer_get(el, hv->label_ptrs[l].value);
            if (m->nlabels >= CM_MAX_LABELS || !lv || label_text(lv, m->values[m->nlabels]) < 0) {
                merr(m, "each %.80s[%zu]: label %s at %.80s missing or not a short scalar",
                     hv->pointer, i, hv->label_ptrs[l].key, hv->label_ptrs[l].value);
                ok = 0;
                break;
            }
            m->labels[m->nlabels].key = hv->label_ptrs[l].key;
            m->labels[m->nlabels].value = m->values[m->nlabels];
            m->nlabels++;
        }
        if (ok) map_values(m, hv->values, hv->nvalues, el);
    }
    m->nlabels = base;
}

static void map_values(mctx *m, const ag_http_value *vals, size_t n, json_t *ctx)
{
    for (size_t i = 0; i < n; i++) {
        if (vals[i].each)
            map_each(m, &vals[i], ctx);
        else
            map_leaf(m, &vals[i], ctx);
    }
}

/* Append text to an identity field: parts joined with " / ", cut to CM_MAX_VALUE - 1. */
static void id_append(char *out, size_t *n, const char *text)
{
    if (!*text) return;
    int k = snprintf(out + *n, CM_MAX_VALUE - *n, "%s%s", *n ? " / " : "", text);
    if (k < 0) return;
    *n += (size_t)k < CM_MAX_VALUE - *n ? (size_t)k : CM_MAX_VALUE - 1 - *n;
}

static char *id_field(ag_http_identity *id, size_t k)
{
    switch (k) {
    case AG_HTTP_ID_VENDOR:
        return id->vendor;
    case AG_HTTP_ID_MODEL:
        return id->model;
    case AG_HTTP_ID_SERIAL:
        return id->serial;
    case AG_HTTP_ID_FIRMWARE:
        return id->firmware;
    default:
        return id->hostname;
    }
}

static void read_id(mctx *m, json_t *root, const ag_http_idsel *sel, const char *field, char *out)
{
    if (!sel->n) return;
    char joined[CM_MAX_VALUE] = "";
    size_t n = 0;
    for (size_t i = 0; i < sel->n; i++) {
        json_t *v = ag_json_pointer_get(root, sel->sel[i]);
        if (!v || json_is_null(v)) continue;
        char buf[CM_MAX_VALUE];
        if (label_text(v, buf) < 0) {
            merr(m, "identity %s at %.80s: not a short string or number", field, sel->sel[i]);
            continue;
        }
        id_append(joined, &n, buf);
    }
    if (n) memcpy(out, joined, n + 1);
}

int ag_http_map(const ag_http_request *req, json_t *answer, ag_http_emit_fn emit, void *ud,
                ag_http_identity *id, char *err, size_t errlen)
{
    mctx m;
    memset(&m, 0, sizeof m);
    m.emit = emit;
    m.ud = ud;
    m.err = err;
    m.errlen = errlen;
    if (err && errlen) err[0] = '\0';
    if (!req || !answer || !emit) return 0;
    map_values(&m, req->values, req->nvalues, answer);
    if (id)
        for (size_t k = 0; k < AG_HTTP_NID; k++)
            read_id(&m, answer, &req->id[k], identity_keys[k], id_field(id, k));
    return m.errors;
}

/* ---- mapping an XML answer -------------------------------------------------------------- */

/* Text of the first element `name` in buf[a..b): 1 found (text in out), 0 absent, -1 broken
 * markup (m->broken set), -2 not text (reason in why). */
static int xml_value(mctx *m, const char *buf, size_t a, size_t b, const char *name, char *out,
                     size_t outlen, char *why, size_t whylen)
{
    ag_xml_elem e;
    int rc = ag_xml_find(buf + a, b - a, 0, name, &e);
    if (rc < 0) {
        m->broken = 1;
        return -1;
    }
    if (rc == 0) return 0;
    if (ag_xml_text(buf + a + e.start, e.end - e.start, out, outlen, why, whylen) < 0) return -2;
    return 1;
}

static void xml_values(mctx *m, const ag_http_value *vals, size_t n, const char *buf, size_t a,
                       size_t b, int depth);

static void xml_leaf(mctx *m, const ag_http_value *hv, const char *buf, size_t a, size_t b)
{
    char text[1024], why[128];
    int rc = xml_value(m, buf, a, b, hv->pointer, text, sizeof text, why, sizeof why);
    if (rc == -2) merr(m, "%s at <%.80s>: %s", hv->metric, hv->pointer, why);
    if (rc != 1) return;
    ag_raw raw = {AG_RAW_STR, 0, text, strlen(text)};
    double out;
    char mwhy[160];
    rc = ag_value_map_apply(&hv->map, &raw, &out, mwhy, sizeof mwhy);
    if (rc < 0) {
        merr(m, "%s at <%.80s>: %s", hv->metric, hv->pointer, mwhy);
        return;
    }
    if (rc > 0) return;
    size_t base = m->nlabels, k = base;
    for (size_t i = 0; i < hv->nlabels && k < CM_MAX_LABELS; i++)
        m->labels[k++] = hv->labels[i];
    m->emit(m->ud, hv->metric, hv->unit, m->labels, k, out);
    m->nlabels = base;
}

static void xml_each(mctx *m, const ag_http_value *hv, const char *buf, size_t a, size_t b,
                     int depth)
{
    size_t base = m->nlabels, from = 0, count = 0;
    for (;;) {
        ag_xml_elem e;
        int rc = ag_xml_find(buf + a, b - a, from, hv->pointer, &e);
        if (rc < 0) {
            m->broken = 1;
            break;
        }
        if (rc == 0) break;
        if (count++ >= AG_HTTP_MAX_EACH) {
            merr(m, "each <%.80s>: more than %d elements, only the first read", hv->pointer,
                 AG_HTTP_MAX_EACH);
            break;
        }
        from = e.next;
        size_t ea = a + e.start, eb = a + e.end;
        int ok = 1;
        m->nlabels = base;
        for (size_t l = 0; l < hv->nlabel_ptrs && ok; l++) {
            char why[128];
            char *dst = m->values[m->nlabels];
            int lr = m->nlabels >= CM_MAX_LABELS
                         ? 0
                         : xml_value(m, buf, ea, eb, hv->label_ptrs[l].value, dst, CM_MAX_VALUE,
                                     why, sizeof why);
            if (lr < 0 && m->broken) break;
            if (lr != 1 || !dst[0]) {
                merr(m, "each <%.80s> #%zu: label %s at <%.80s> missing, empty or not short text",
                     hv->pointer, count, hv->label_ptrs[l].key, hv->label_ptrs[l].value);
                ok = 0;
                break;
            }
            m->labels[m->nlabels].key = hv->label_ptrs[l].key;
            m->labels[m->nlabels].value = dst;
            m->nlabels++;
        }
        if (m->broken) break;
        if (ok) xml_values(m, hv->values, hv->nvalues, buf, ea, eb, depth + 1);
        if (m->broken) break;
    }
    m->nlabels = base;
}

static void xml_values(mctx *m, const ag_http_value *vals, size_t n, const char *buf, size_t a,
                       size_t b, int depth)
{
    for (size_t i = 0; i < n && !m->broken && depth <= MAX_DEPTH; i++) {
        if (vals[i].each)
            xml_each(m, &vals[i], buf, a, b, depth);
        else
            xml_leaf(m, &vals[i], buf, a, b);
    }
}

int ag_http_map_xml(const ag_http_request *req, const char *buf, size_t len, ag_http_emit_fn emit,
                    void *ud, ag_http_identity *id, char *err, size_t errlen)
{
    mctx m;
    memset(&m, 0, sizeof m);
    m.emit = emit;
    m.ud = ud;
    m.err = err;
    m.errlen = errlen;
    if (err && errlen) err[0] = '\0';
    if (!req || !buf || !emit) return 0;
    xml_values(&m, req->values, req->nvalues, buf, 0, len, 0);
    for (size_t k = 0; id && !m.broken && k < AG_HTTP_NID; k++) {
        const ag_http_idsel *sel = &req->id[k];
        char joined[CM_MAX_VALUE] = "";
        size_t n = 0;
        for (size_t i = 0; i < sel->n && !m.broken; i++) {
            char text[CM_MAX_VALUE], why[128];
            int rc = xml_value(&m, buf, 0, len, sel->sel[i], text, sizeof text, why, sizeof why);
            if (rc == -2)
                merr(&m, "identity %s at <%.80s>: %s", identity_keys[k], sel->sel[i], why);
            if (rc == 1) id_append(joined, &n, text);
        }
        if (n) memcpy(id_field(id, k), joined, n + 1);
    }
    if (m.broken) {
        if (err && errlen) snprintf(err, errlen, "broken XML markup");
        return -1;
    }
    return m.errors;
}

/* ---- templates and sessions ------------------------------------------------------------- */

/* The escaped form of s for a template: XML entities, JSON string escapes, or (headers) as it
 * is. Like snprintf: returns the length needed; -1 when a header value holds a control char. */
static long escape_into(const char *s, int xml, int header, char *out, size_t cap)
{
    if (xml && !header) return (long)ag_xml_escape(s, out, cap);
    size_t n = 0;
    for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
        char tmp[8];
        const char *piece = tmp;
        size_t k;
        if (header) {
            if (*q < 0x20 || *q == 0x7f) return -1;
            tmp[0] = (char)*q;
            k = 1;
        } else if (*q == '"' || *q == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)*q;
            k = 2;
        } else if (*q < 0x20) {
            k = (size_t)snprintf(tmp, sizeof tmp, "\\u%04x", *q);
        } else {
            tmp[0] = (char)*q;
            k = 1;
        }
        if (out && n + k < cap) memcpy(out + n, piece, k);
        n += k;
    }
    return (long)n;
}

int ag_http_expand(const char *tmpl, const ag_http_vars *v, int xml, int header, char **out,
                   char *err, size_t errlen)
{
    *out = NULL;
    /* two passes: measure, then write */
    for (int pass = 0; pass < 2; pass++) {
        size_t n = 0;
        char *buf = pass ? *out : NULL;
        for (const char *q = tmpl; *q;) {
            const char *val = NULL, *name = NULL;
            size_t skip = 0;
            if (q[0] == '$' && q[1] == '{') {
                if (strncmp(q, "${username}", 11) == 0) {
                    name = "username";
                    val = v ? v->username : NULL;
                    skip = 11;
                } else if (strncmp(q, "${password}", 11) == 0) {
                    name = "password";
                    val = v ? v->password : NULL;
                    skip = 11;
                } else if (strncmp(q, "${session}", 10) == 0) {
                    name = "session";
                    val = v ? v->session : NULL;
                    skip = 10;
                }
            }
            if (!name) {
                if (buf) buf[n] = *q;
                n++;
                q++;
                continue;
            }
            if (!val) {
                snprintf(err, errlen, "the template needs ${%s} and the device has none", name);
                free(*out);
                *out = NULL;
                return -1;
            }
            long k = escape_into(val, xml, header, buf ? buf + n : NULL, buf ? (size_t)-1 : 0);
            if (k < 0) {
                snprintf(err, errlen, "${%s} holds a control character (not allowed in a header)",
                         name);
                free(*out);
                *out = NULL;
                return -1;
            }
            n += (size_t)k;
            q += skip;
        }
        if (buf) {
            buf[n] = '\0';
            return 0;
        }
        *out = malloc(n + 1);
        if (!*out) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* A session id: 1..outlen-1 bytes of printable ASCII/UTF-8, no control characters. */
static int session_ok(const char *s, size_t n, size_t outlen)
{
    if (n == 0 || n >= outlen) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 0;
    return 1;
}

int ag_http_session(const ag_http_request *login, const char *resp, size_t len, char *out,
                    size_t outlen, char *err, size_t errlen)
{
    if (!login || !resp || !out || outlen < 2) return -1;
    out[0] = '\0';
    if (login->session_re) {
        regmatch_t mt[2];
        if (strlen(resp) != len) {
            snprintf(err, errlen, "login answer holds a NUL byte");
            return -1;
        }
        if (regexec(login->session_re, resp, 2, mt, 0) != 0 || mt[1].rm_so < 0) {
            snprintf(err, errlen, "no session id in the login answer (regex did not match)");
            return -1;
        }
        size_t n = (size_t)(mt[1].rm_eo - mt[1].rm_so);
        if (!session_ok(resp + mt[1].rm_so, n, outlen)) {
            snprintf(err, errlen, "session id empty, longer than %zu bytes or not printable",
                     outlen - 1);
            return -1;
        }
        memcpy(out, resp + mt[1].rm_so, n);
        out[n] = '\0';
        return 0;
    }
    if (login->format == AG_HTTP_XML) {
        char why[160];
        if (ag_xml_check(resp, len, why, sizeof why) < 0) {
            snprintf(err, errlen, "malformed XML in the login answer: %s", why);
            return -1;
        }
        ag_xml_elem e;
        int rc = ag_xml_find(resp, len, 0, login->session_sel, &e);
        if (rc <= 0) {
            snprintf(err, errlen, "no <%.80s> in the login answer", login->session_sel);
            return -1;
        }
        if (ag_xml_text(resp + e.start, e.end - e.start, out, outlen, why, sizeof why) < 0 ||
            !session_ok(out, strlen(out), outlen)) {
            out[0] = '\0';
            snprintf(err, errlen, "<%.80s> in the login answer is not a session id",
                     login->session_sel);
            return -1;
        }
        return 0;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(resp, len, JSON_DECODE_ANY, &jerr);
    if (!doc) {
        snprintf(err, errlen, "login answer is not JSON (%d:%d: %s)", jerr.line, jerr.column,
                 jerr.text);
        return -1;
    }
    json_t *v = ag_json_pointer_get(doc, login->session_sel);
    char buf[CM_MAX_VALUE];
    int rc = -1;
    if (json_is_string(v) && session_ok(json_string_value(v), json_string_length(v), outlen) &&
        strlen(json_string_value(v)) == json_string_length(v)) {
        memcpy(out, json_string_value(v), json_string_length(v) + 1);
        rc = 0;
    } else if (v && !json_is_string(v) && label_text(v, buf) == 0 && strlen(buf) < outlen) {
        memcpy(out, buf, strlen(buf) + 1);
        rc = 0;
    }
    json_decref(doc);
    if (rc < 0)
        snprintf(err, errlen, "no usable session id at %.80s in the login answer",
                 login->session_sel);
    return rc;
}

int ag_http_session_lost(const ag_http_request *login, const ag_http_request *req, long status,
                         const char *resp, size_t len)
{
    if (!login || !login->login) return 0;
    for (size_t i = 0; i < login->nerror_status; i++)
        if (status == login->error_status[i]) return 1;
    if (login->error_element && req && req->format == AG_HTTP_XML && resp &&
        ag_xml_check(resp, len, NULL, 0) == 0) {
        ag_xml_elem e;
        return ag_xml_find(resp, len, 0, login->error_element, &e) == 1;
    }
    return 0;
}

int ag_http_profile_check(const char *file, json_t *doc, char *err, size_t errlen)
{
    ag_http_profile p;
    int rc = ag_http_profile_parse(file, doc, &p, err, errlen);
    ag_http_profile_free(&p);
    return rc;
}

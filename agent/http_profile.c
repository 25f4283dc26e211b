/* http_profile.c — the "requests" section of HTTP/JSON profiles, RFC 6901 pointers and the
 * mapping of a JSON answer to samples (see http_profile.h). */
#include "http_profile.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile_json.h"
#include "wire.h"

#define MAX_DEPTH 4 /* nested "each" */
#define MAX_BODY 65536

static const char *const request_keys[] = {"method", "path",     "body", "bearer_token",
                                           "values", "identity", "note", NULL};
static const char *const leaf_keys[] = {"pointer", "metric", "labels", "unit", "scale",
                                        "offset",  "enum",   "note",   NULL};
static const char *const each_keys[] = {"each", "label", "values", "note", NULL};
static const char *const identity_keys[] = {"vendor", "model", "serial", "firmware", NULL};

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

/* A pointer member: must be a valid RFC 6901 pointer. */
static int get_pointer(pctx *c, json_t *v, const char *p, char **out)
{
    if (!json_is_string(v)) return ag_pj_fail(c, p, "expected a JSON pointer string (\"/a/b\")");
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v)) return ag_pj_fail(c, p, "contains a NUL byte");
    if (ag_json_pointer_check(s) < 0)
        return ag_pj_fail(c, p,
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

/* An object of label name → string; ptrs: the strings are JSON pointers. */
static int get_label_obj(pctx *c, json_t *v, const char *p, int ptrs, cm_label **out,
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
            if (get_pointer(c, val, kp, &s) < 0) return -1;
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
                        ag_http_value **out, size_t *nout);

static int parse_value(pctx *c, json_t *v, const char *path, size_t nlabels_above, int depth,
                       ag_http_value *out)
{
    if (!json_is_object(v)) return ag_pj_fail(c, path, "expected an object");
    char p[AG_PJ_PATH];
    if (json_object_get(v, "each")) {
        out->each = 1;
        if (depth >= MAX_DEPTH) return ag_pj_fail(c, path, "\"each\" nested deeper than %d", MAX_DEPTH);
        if (ag_pj_check_keys(c, v, path, each_keys) < 0) return -1;
        ag_pj_key(p, path, "each");
        if (get_pointer(c, json_object_get(v, "each"), p, &out->pointer) < 0) return -1;
        json_t *l = json_object_get(v, "label");
        if (l) {
            ag_pj_key(p, path, "label");
            if (get_label_obj(c, l, p, 1, &out->label_ptrs, &out->nlabel_ptrs) < 0) return -1;
        }
        return parse_values(c, v, path, nlabels_above + out->nlabel_ptrs, depth + 1, &out->values,
                            &out->nvalues);
    }
    if (ag_pj_check_keys(c, v, path, leaf_keys) < 0) return -1;
    ag_pj_key(p, path, "pointer");
    json_t *ptr = json_object_get(v, "pointer");
    if (!ptr) return ag_pj_fail(c, p, "missing");
    if (get_pointer(c, ptr, p, &out->pointer) < 0) return -1;
    if (ag_pj_get_str(c, v, "metric", path, 1, CM_MAX_NAME, &out->metric) < 0) return -1;
    if (!cm_wire_valid_name(out->metric)) {
        ag_pj_key(p, path, "metric");
        return ag_pj_fail(c, p, "'%s' is not a valid name ([a-z_][a-z0-9_]*)", out->metric);
    }
    if (ag_pj_get_str(c, v, "unit", path, 0, 32, &out->unit) < 0) return -1;
    json_t *l = json_object_get(v, "labels");
    if (l) {
        ag_pj_key(p, path, "labels");
        if (get_label_obj(c, l, p, 0, &out->labels, &out->nlabels) < 0) return -1;
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
                        ag_http_value **out, size_t *nout)
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
        if (parse_value(c, json_array_get(a, i), ip, nlabels_above, depth, &(*out)[i]) < 0)
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

static int parse_request(pctx *c, json_t *v, const char *path, ag_http_request *r)
{
    char p[AG_PJ_PATH];
    if (ag_pj_check_keys(c, v, path, request_keys) < 0) return -1;
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
        return ag_pj_fail(c, p, "'%.80s' must start with '/' and hold printable ASCII without spaces",
                    r->path);
    }
    json_t *body = json_object_get(v, "body");
    if (body) {
        ag_pj_key(p, path, "body");
        if (!r->post) return ag_pj_fail(c, p, "a body needs \"method\": \"POST\"");
        r->body = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!r->body) return ag_pj_fail(c, p, "cannot be encoded");
        if (strlen(r->body) > MAX_BODY) return ag_pj_fail(c, p, "longer than %d bytes", MAX_BODY);
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
    json_t *id = json_object_get(v, "identity");
    if (id) {
        ag_pj_key(p, path, "identity");
        if (ag_pj_check_keys(c, id, p, identity_keys) < 0) return -1;
        char *const *dst[4] = {&r->id_vendor, &r->id_model, &r->id_serial, &r->id_firmware};
        for (size_t k = 0; identity_keys[k]; k++) {
            json_t *x = json_object_get(id, identity_keys[k]);
            if (!x) continue;
            char kp[AG_PJ_PATH];
            ag_pj_key(kp, p, identity_keys[k]);
            if (get_pointer(c, x, kp, (char **)dst[k]) < 0) return -1;
        }
    }
    if (parse_values(c, v, path, 0, 0, &r->values, &r->nvalues) < 0) return -1;
    if (r->nvalues == 0 && !r->id_vendor && !r->id_model && !r->id_serial && !r->id_firmware)
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
        if (parse_request(&c, json_array_get(a, i), ip, &out->reqs[i]) < 0) {
            ag_http_profile_free(out);
            return -1;
        }
    }
    return 0;
}

void ag_http_profile_free(ag_http_profile *p)
{
    if (!p) return;
    for (size_t i = 0; p->reqs && i < p->nreqs; i++) {
        ag_http_request *r = &p->reqs[i];
        free(r->path);
        free(r->body);
        free(r->id_vendor);
        free(r->id_model);
        free(r->id_serial);
        free(r->id_firmware);
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

static void read_id(mctx *m, json_t *root, const char *ptr, const char *field, char *out)
{
    if (!ptr) return;
    json_t *v = ag_json_pointer_get(root, ptr);
    if (!v || json_is_null(v)) return;
    char buf[CM_MAX_VALUE];
    if (label_text(v, buf) < 0) {
        merr(m, "identity %s at %.80s: not a short string or number", field, ptr);
        return;
    }
    memcpy(out, buf, strlen(buf) + 1);
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
    if (id) {
        read_id(&m, answer, req->id_vendor, "vendor", id->vendor);
        read_id(&m, answer, req->id_model, "model", id->model);
        read_id(&m, answer, req->id_serial, "serial", id->serial);
        read_id(&m, answer, req->id_firmware, "firmware", id->firmware);
    }
    return m.errors;
}

int ag_http_profile_check(const char *file, json_t *doc, char *err, size_t errlen)
{
    ag_http_profile p;
    int rc = ag_http_profile_parse(file, doc, &p, err, errlen);
    ag_http_profile_free(&p);
    return rc;
}

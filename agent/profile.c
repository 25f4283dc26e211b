/* profile.c — load, validate and apply device profiles (JSON data, see profile.h). */
#include "profile.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_profile.h"
#include "profile_json.h"
#include "text_profile.h"
#include "wire.h"

#define MAX_PROFILE_NAME 64
#define DEFAULT_MAX_ROWS 256
#define MAX_MAX_ROWS 65535

static const char *const kinds[] = {
    "projector",    "led_screen", "media_block", "audio_processor", "light_sensor",
    "sound_sensor", "ups",        "server",      "other",           NULL};
static const char *const top_keys[] = {"name",     "description", "vendor",  "kind",
                                       "protocol", "match",       "sources", "confidence",
                                       "identity", "scalars",     "tables",  "traps", NULL};
/* A pjlink profile only names and documents the device family: the driver knows the commands. */
static const char *const pjlink_top_keys[] = {"name",    "description", "vendor",     "kind",
                                              "protocol", "sources",    "confidence", "note",
                                              NULL};
/* A text profile also carries its commands (checked by text_profile.c). */
static const char *const text_top_keys[] = {"name",    "description", "vendor",   "kind",
                                            "protocol", "sources",    "confidence", "note",
                                            "port",    "line_end",    "commands", NULL};
/* An http profile also carries its requests (checked by http_profile.c). */
static const char *const http_top_keys[] = {"name",     "description", "vendor",     "kind",
                                            "protocol", "sources",     "confidence", "note",
                                            "requests", NULL};
static const char *const match_keys[] = {"sysObjectID", NULL};
static const char *const identity_keys[] = {"model", "serial", "firmware", "vendor", NULL};
static const char *const scalar_keys[] = {"oid",    "metric", "unit", "labels", "scale",
                                          "offset", "enum",   "note", NULL};
static const char *const column_keys[] = {"column", "metric", "unit", "labels", "scale",
                                          "offset", "enum",   "note", NULL};
static const char *const table_keys[] = {
    "oid", "index_label", "label_columns", "columns", "max_rows", "note", NULL};
static const char *const label_column_keys[] = {"column", "label", NULL};
static const char *const trap_keys[] = {"code", "severity", "text", "note", NULL};
static const char *const severities[] = {"info", "warning", "critical", NULL};

typedef ag_pj pctx;
/* Optional string member; required ones fail when absent. maxlen 0 = no limit but 4096. */
static int get_name(pctx *c, json_t *obj, const char *key, const char *path, int required,
                    char **out)
{
    if (ag_pj_get_str(c, obj, key, path, required, CM_MAX_NAME, out) < 0) return -1;
    if (*out && !cm_wire_valid_name(*out)) {
        char p[AG_PJ_PATH];
        ag_pj_key(p, path, key);
        return ag_pj_fail(c, p, "'%s' is not a valid name ([a-z_][a-z0-9_]*)", *out);
    }
    return 0;
}

static int get_number(pctx *c, json_t *obj, const char *key, const char *path, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    char p[AG_PJ_PATH];
    ag_pj_key(p, path, key);
    if (!json_is_number(v)) return ag_pj_fail(c, p, "expected a number");
    double d = json_number_value(v);
    if (!isfinite(d)) return ag_pj_fail(c, p, "expected a finite number");
    *out = d;
    return 0;
}

static int get_uint(pctx *c, json_t *obj, const char *key, const char *path, int required,
                    uint32_t min, uint32_t max, uint32_t *out)
{
    char p[AG_PJ_PATH];
    ag_pj_key(p, path, key);
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required) return ag_pj_fail(c, p, "missing");
        return 0;
    }
    if (!json_is_integer(v)) return ag_pj_fail(c, p, "expected an integer");
    json_int_t i = json_integer_value(v);
    if (i < (json_int_t)min || i > (json_int_t)max)
        return ag_pj_fail(c, p, "out of range %u..%u", (unsigned)min, (unsigned)max);
    *out = (uint32_t)i;
    return 0;
}

int ag_oid_parse(const char *s, ag_oid *out)
{
    if (!s || !out) return -1;
    out->len = 0;
    const char *p = s;
    if (*p == '.') p++;
    if (*p == '\0') return -1;
    for (;;) {
        if (*p < '0' || *p > '9') return -1;
        uint64_t v = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (uint64_t)(*p - '0');
            if (v > UINT32_MAX) return -1;
            p++;
        }
        if (out->len >= AG_MAX_OID) return -1;
        out->sub[out->len++] = (uint32_t)v;
        if (*p == '\0') return 0;
        if (*p != '.') return -1;
        p++;
    }
}

void ag_oid_format(const ag_oid *o, char *buf, size_t len)
{
    if (!buf || len == 0) return;
    buf[0] = '\0';
    size_t off = 0;
    for (size_t i = 0; o && i < o->len; i++) {
        int n = snprintf(buf + off, len - off, i ? ".%u" : "%u", (unsigned)o->sub[i]);
        if (n < 0 || (size_t)n >= len - off) return; /* truncated, still NUL-terminated */
        off += (size_t)n;
    }
}

/* Parse an OID string value v at path p. trailing_dot: "1.3.6.1.4.1.25766." allowed. */
static int parse_oid_value(pctx *c, json_t *v, const char *p, int trailing_dot, ag_oid *out)
{
    if (!json_is_string(v)) return ag_pj_fail(c, p, "expected an OID string");
    char buf[AG_MAX_OID * 11 + 2];
    size_t len = json_string_length(v);
    if (len >= sizeof buf) return ag_pj_fail(c, p, "OID too long");
    memcpy(buf, json_string_value(v), len + 1);
    if (trailing_dot && len > 1 && buf[len - 1] == '.') buf[len - 1] = '\0';
    if (ag_oid_parse(buf, out) < 0)
        return ag_pj_fail(c, p, "'%s' is not a numeric OID (like 1.3.6.1.2.1.1.3.0)",
                    json_string_value(v));
    if (out->len < 2) return ag_pj_fail(c, p, "OID '%s' is too short", json_string_value(v));
    return 0;
}

static int get_oid_member(pctx *c, json_t *obj, const char *key, const char *path, ag_oid *out)
{
    char p[AG_PJ_PATH];
    ag_pj_key(p, path, key);
    json_t *v = json_object_get(obj, key);
    if (!v) return ag_pj_fail(c, p, "missing");
    return parse_oid_value(c, v, p, 0, out);
}

static void free_labels(cm_label *l, size_t n)
{
    for (size_t i = 0; l && i < n; i++) {
        free((char *)l[i].key);
        free((char *)l[i].value);
    }
    free(l);
}

static int get_labels(pctx *c, json_t *obj, const char *path, cm_label **out, size_t *nout)
{
    json_t *v = json_object_get(obj, "labels");
    if (!v) return 0;
    char p[AG_PJ_PATH];
    ag_pj_key(p, path, "labels");
    if (!json_is_object(v)) return ag_pj_fail(c, p, "expected an object");
    size_t n = json_object_size(v);
    if (n > CM_MAX_LABELS) return ag_pj_fail(c, p, "more than %d labels", CM_MAX_LABELS);
    if (n == 0) return 0;
    *out = calloc(n, sizeof **out);
    if (!*out) return ag_pj_fail(c, p, "out of memory");
    *nout = n;
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        char kp[AG_PJ_PATH];
        ag_pj_key(kp, p, key);
        if (!cm_wire_valid_name(key))
            return ag_pj_fail(c, kp, "'%s' is not a valid label name ([a-z_][a-z0-9_]*)", key);
        if (!json_is_string(val)) return ag_pj_fail(c, kp, "expected a string");
        size_t len = json_string_length(val);
        if (len == 0 || len >= CM_MAX_VALUE || strlen(json_string_value(val)) != len)
            return ag_pj_fail(c, kp, "label value must be 1..%d bytes without NUL", CM_MAX_VALUE - 1);
        (*out)[i].key = strdup(key);
        (*out)[i].value = strdup(json_string_value(val));
        if (!(*out)[i].key || !(*out)[i].value) return ag_pj_fail(c, kp, "out of memory");
        i++;
    }
    return 0;
}

static void free_map(ag_value_map *m)
{
    for (size_t i = 0; m->enums && i < m->nenums; i++)
        free(m->enums[i].raw);
    free(m->enums);
    m->enums = NULL;
    m->nenums = 0;
}

static int get_map(pctx *c, json_t *obj, const char *path, ag_value_map *m)
{
    m->scale = 1;
    m->offset = 0;
    if (get_number(c, obj, "scale", path, &m->scale) < 0 ||
        get_number(c, obj, "offset", path, &m->offset) < 0)
        return -1;
    json_t *e = json_object_get(obj, "enum");
    if (!e) return 0;
    char p[AG_PJ_PATH];
    ag_pj_key(p, path, "enum");
    if (!json_is_object(e)) return ag_pj_fail(c, p, "expected an object of raw value -> number");
    size_t n = json_object_size(e);
    if (n == 0) return ag_pj_fail(c, p, "must not be empty");
    if (json_object_get(obj, "scale") || json_object_get(obj, "offset"))
        return ag_pj_fail(c, p, "enum and scale/offset exclude each other");
    m->enums = calloc(n, sizeof *m->enums);
    if (!m->enums) return ag_pj_fail(c, p, "out of memory");
    m->nenums = n;
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach(e, key, val)
    {
        char kp[AG_PJ_PATH];
        ag_pj_key(kp, p, key);
        if (*key == '\0') return ag_pj_fail(c, kp, "empty raw value");
        if (!json_is_number(val) || !isfinite(json_number_value(val)))
            return ag_pj_fail(c, kp, "expected a number");
        m->enums[i].raw = strdup(key);
        if (!m->enums[i].raw) return ag_pj_fail(c, kp, "out of memory");
        m->enums[i].value = json_number_value(val);
        i++;
    }
    return 0;
}

int ag_value_map_parse(struct json_t *obj, const char *file, const char *path, ag_value_map *m,
                       char *err, size_t errlen)
{
    pctx c = {file, err, errlen};
    memset(m, 0, sizeof *m);
    if (get_map(&c, obj, path, m) == 0) return 0;
    free_map(m);
    return -1;
}

void ag_value_map_free(ag_value_map *m)
{
    if (m) free_map(m);
}

static int get_note(pctx *c, json_t *obj, const char *path)
{
    json_t *v = json_object_get(obj, "note");
    if (v && !json_is_string(v)) {
        char p[AG_PJ_PATH];
        ag_pj_key(p, path, "note");
        return ag_pj_fail(c, p, "expected a string");
    }
    return 0;
}

static void free_scalar(ag_scalar *s)
{
    free(s->metric);
    free(s->unit);
    free_labels(s->labels, s->nlabels);
    free_map(&s->map);
}

static void free_column(ag_column *col)
{
    free(col->metric);
    free(col->unit);
    free_labels(col->labels, col->nlabels);
    free_map(&col->map);
}

static void free_table(ag_table *t)
{
    free(t->index_label);
    for (size_t i = 0; t->label_columns && i < t->nlabel_columns; i++)
        free(t->label_columns[i].label);
    free(t->label_columns);
    for (size_t i = 0; t->columns && i < t->ncolumns; i++)
        free_column(&t->columns[i]);
    free(t->columns);
}

static int parse_scalar(pctx *c, json_t *v, const char *path, ag_scalar *s)
{
    s->map.scale = 1;
    if (ag_pj_check_keys(c, v, path, scalar_keys) < 0 ||
        get_oid_member(c, v, "oid", path, &s->oid) < 0 ||
        get_name(c, v, "metric", path, 1, &s->metric) < 0 ||
        ag_pj_get_str(c, v, "unit", path, 0, 32, &s->unit) < 0 ||
        get_labels(c, v, path, &s->labels, &s->nlabels) < 0 || get_map(c, v, path, &s->map) < 0 ||
        get_note(c, v, path) < 0)
        return -1;
    return 0;
}

static int parse_column(pctx *c, json_t *v, const char *path, ag_column *col)
{
    col->map.scale = 1;
    if (ag_pj_check_keys(c, v, path, column_keys) < 0 ||
        get_uint(c, v, "column", path, 1, 1, UINT32_MAX, &col->column) < 0 ||
        get_name(c, v, "metric", path, 1, &col->metric) < 0 ||
        ag_pj_get_str(c, v, "unit", path, 0, 32, &col->unit) < 0 ||
        get_labels(c, v, path, &col->labels, &col->nlabels) < 0 ||
        get_map(c, v, path, &col->map) < 0 || get_note(c, v, path) < 0)
        return -1;
    return 0;
}

/* The labels a table row carries besides a column's own must not collide with them. */
static int check_table_labels(pctx *c, const ag_table *t, const char *path)
{
    for (size_t i = 0; i < t->ncolumns; i++) {
        const ag_column *col = &t->columns[i];
        char p[AG_PJ_PATH];
        ag_pj_idx(p, path, "columns", i);
        size_t total = col->nlabels + t->nlabel_columns + (t->index_label ? 1 : 0);
        if (total > CM_MAX_LABELS)
            return ag_pj_fail(c, p, "more than %d labels with the table's labels", CM_MAX_LABELS);
        for (size_t j = 0; j < col->nlabels; j++) {
            const char *k = col->labels[j].key;
            int dup = t->index_label && strcmp(k, t->index_label) == 0;
            for (size_t l = 0; !dup && l < t->nlabel_columns; l++)
                dup = strcmp(k, t->label_columns[l].label) == 0;
            if (dup) return ag_pj_fail(c, p, "label '%s' is also a table label", k);
        }
    }
    for (size_t i = 0; i < t->nlabel_columns; i++) {
        char p[AG_PJ_PATH];
        ag_pj_idx(p, path, "label_columns", i);
        if (t->index_label && strcmp(t->index_label, t->label_columns[i].label) == 0)
            return ag_pj_fail(c, p, "label '%s' is also the index_label", t->index_label);
        for (size_t j = 0; j < i; j++)
            if (strcmp(t->label_columns[j].label, t->label_columns[i].label) == 0)
                return ag_pj_fail(c, p, "label '%s' appears twice", t->label_columns[i].label);
    }
    return 0;
}

static int parse_table(pctx *c, json_t *v, const char *path, ag_table *t)
{
    t->max_rows = DEFAULT_MAX_ROWS;
    if (ag_pj_check_keys(c, v, path, table_keys) < 0 ||
        get_oid_member(c, v, "oid", path, &t->entry) < 0 ||
        get_name(c, v, "index_label", path, 0, &t->index_label) < 0 ||
        get_uint(c, v, "max_rows", path, 0, 1, MAX_MAX_ROWS, &t->max_rows) < 0 ||
        get_note(c, v, path) < 0)
        return -1;
    if (t->entry.len + 1 > AG_MAX_OID) {
        char p[AG_PJ_PATH];
        ag_pj_key(p, path, "oid");
        return ag_pj_fail(c, p, "OID too long for a table entry");
    }
    char p[AG_PJ_PATH];
    json_t *lc = json_object_get(v, "label_columns");
    if (lc) {
        ag_pj_key(p, path, "label_columns");
        if (!json_is_array(lc)) return ag_pj_fail(c, p, "expected an array");
        size_t n = json_array_size(lc);
        if (n) {
            t->label_columns = calloc(n, sizeof *t->label_columns);
            if (!t->label_columns) return ag_pj_fail(c, p, "out of memory");
            t->nlabel_columns = n;
        }
        for (size_t i = 0; i < n; i++) {
            char ip[AG_PJ_PATH];
            ag_pj_idx(ip, path, "label_columns", i);
            json_t *e = json_array_get(lc, i);
            if (ag_pj_check_keys(c, e, ip, label_column_keys) < 0 ||
                get_uint(c, e, "column", ip, 1, 1, UINT32_MAX, &t->label_columns[i].column) < 0 ||
                get_name(c, e, "label", ip, 1, &t->label_columns[i].label) < 0)
                return -1;
        }
    }
    json_t *cols = json_object_get(v, "columns");
    ag_pj_key(p, path, "columns");
    if (!cols) return ag_pj_fail(c, p, "missing");
    if (!json_is_array(cols)) return ag_pj_fail(c, p, "expected an array");
    size_t n = json_array_size(cols);
    if (n == 0) return ag_pj_fail(c, p, "must not be empty");
    t->columns = calloc(n, sizeof *t->columns);
    if (!t->columns) return ag_pj_fail(c, p, "out of memory");
    t->ncolumns = n;
    for (size_t i = 0; i < n; i++) {
        char ip[AG_PJ_PATH];
        ag_pj_idx(ip, path, "columns", i);
        if (parse_column(c, json_array_get(cols, i), ip, &t->columns[i]) < 0) return -1;
    }
    return check_table_labels(c, t, path);
}

static int parse_sources(pctx *c, json_t *root)
{
    json_t *v = json_object_get(root, "sources");
    if (!v) return ag_pj_fail(c, "$.sources", "missing (every profile cites where its facts come from)");
    if (!json_is_array(v) || json_array_size(v) == 0)
        return ag_pj_fail(c, "$.sources", "expected a non-empty array of strings");
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *s = json_array_get(v, i);
        if (!json_is_string(s) || json_string_length(s) == 0) {
            char p[AG_PJ_PATH];
            ag_pj_idx(p, "$", "sources", i);
            return ag_pj_fail(c, p, "expected a non-empty string");
        }
    }
    return 0;
}

static int parse_confidence(pctx *c, json_t *root)
{
    json_t *v = json_object_get(root, "confidence");
    if (!v || json_is_string(v)) return 0;
    if (!json_is_object(v))
        return ag_pj_fail(c, "$.confidence", "expected a string or an object of strings");
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        if (!json_is_string(val)) {
            char p[AG_PJ_PATH];
            ag_pj_key(p, "$.confidence", key);
            return ag_pj_fail(c, p, "expected a string");
        }
    }
    return 0;
}

static int parse_match(pctx *c, json_t *root, ag_profile *p)
{
    json_t *m = json_object_get(root, "match");
    if (!m) return 0;
    if (ag_pj_check_keys(c, m, "$.match", match_keys) < 0) return -1;
    json_t *a = json_object_get(m, "sysObjectID");
    if (!a) return ag_pj_fail(c, "$.match.sysObjectID", "missing");
    if (!json_is_array(a) || json_array_size(a) == 0)
        return ag_pj_fail(c, "$.match.sysObjectID", "expected a non-empty array of OID prefixes");
    size_t n = json_array_size(a);
    p->match = calloc(n, sizeof *p->match);
    if (!p->match) return ag_pj_fail(c, "$.match.sysObjectID", "out of memory");
    p->nmatch = n;
    for (size_t i = 0; i < n; i++) {
        char ip[AG_PJ_PATH];
        ag_pj_idx(ip, "$.match", "sysObjectID", i);
        if (parse_oid_value(c, json_array_get(a, i), ip, 1, &p->match[i]) < 0) return -1;
    }
    return 0;
}

static int parse_identity(pctx *c, json_t *root, ag_profile *p)
{
    json_t *id = json_object_get(root, "identity");
    if (!id) return 0;
    if (ag_pj_check_keys(c, id, "$.identity", identity_keys) < 0) return -1;
    size_t n = json_object_size(id);
    if (n == 0) return 0;
    p->identity = calloc(n, sizeof *p->identity);
    if (!p->identity) return ag_pj_fail(c, "$.identity", "out of memory");
    /* Keep the fixed order of identity_keys so polls read them predictably. */
    for (size_t k = 0; identity_keys[k]; k++) {
        json_t *v = json_object_get(id, identity_keys[k]);
        if (!v) continue;
        char ip[AG_PJ_PATH];
        ag_pj_key(ip, "$.identity", identity_keys[k]);
        ag_identity *e = &p->identity[p->nidentity];
        e->field = strdup(identity_keys[k]);
        if (!e->field) return ag_pj_fail(c, ip, "out of memory");
        p->nidentity++;
        if (parse_oid_value(c, v, ip, 0, &e->oid) < 0) return -1;
    }
    return 0;
}

/* "traps": {"<trap OID>": {"code": "fan", "severity": "critical", "text": "..."}} */
static int parse_traps(pctx *c, json_t *root, ag_profile *p)
{
    json_t *t = json_object_get(root, "traps");
    if (!t) return 0;
    if (!json_is_object(t)) return ag_pj_fail(c, "$.traps", "expected an object");
    size_t n = json_object_size(t);
    if (n == 0) return 0;
    p->traps = calloc(n, sizeof *p->traps);
    if (!p->traps) return ag_pj_fail(c, "$.traps", "out of memory");
    const char *key;
    json_t *v;
    json_object_foreach(t, key, v)
    {
        char ip[AG_PJ_PATH];
        ag_pj_key(ip, "$.traps", key);
        ag_trap_map *m = &p->traps[p->ntraps++];
        json_t *ks = json_string(key);
        int r = ks ? parse_oid_value(c, ks, ip, 0, &m->oid) : ag_pj_fail(c, ip, "out of memory");
        json_decref(ks);
        if (r < 0) return -1;
        for (size_t i = 0; i + 1 < p->ntraps; i++)
            if (p->traps[i].oid.len == m->oid.len &&
                memcmp(p->traps[i].oid.sub, m->oid.sub, m->oid.len * sizeof m->oid.sub[0]) == 0)
                return ag_pj_fail(c, ip, "the same trap OID appears twice");
        if (ag_pj_check_keys(c, v, ip, trap_keys) < 0 ||
            get_name(c, v, "code", ip, 1, &m->code) < 0 ||
            ag_pj_get_str(c, v, "severity", ip, 1, 16, &m->severity) < 0 ||
            ag_pj_get_str(c, v, "text", ip, 0, CM_MAX_TEXT, &m->text) < 0 || get_note(c, v, ip) < 0)
            return -1;
        if (!ag_pj_in_list(m->severity, severities)) {
            char sp[AG_PJ_PATH];
            ag_pj_key(sp, ip, "severity");
            return ag_pj_fail(c, sp, "'%s' must be info, warning or critical", m->severity);
        }
    }
    return 0;
}

const ag_trap_map *ag_profile_trap(const ag_profile *p, const ag_oid *trap_oid)
{
    for (size_t i = 0; p && i < p->ntraps; i++)
        if (p->traps[i].oid.len == trap_oid->len &&
            memcmp(p->traps[i].oid.sub, trap_oid->sub, trap_oid->len * sizeof trap_oid->sub[0]) ==
                0)
            return &p->traps[i];
    return NULL;
}

static int parse_array_of(pctx *c, json_t *root, const char *key, size_t elem, void **arr,
                          size_t *n)
{
    json_t *a = json_object_get(root, key);
    if (!a) return 0;
    char p[AG_PJ_PATH];
    ag_pj_key(p, "$", key);
    if (!json_is_array(a)) return ag_pj_fail(c, p, "expected an array");
    size_t cnt = json_array_size(a);
    if (cnt == 0) return 0;
    *arr = calloc(cnt, elem);
    if (!*arr) return ag_pj_fail(c, p, "out of memory");
    *n = cnt;
    return 0;
}

/* "dir/christie-cp-series2.json" → "christie-cp-series2" into buf. */
static void base_name(const char *path, char *buf, size_t len)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 5 && strcmp(b + n - 5, ".json") == 0) n -= 5;
    if (n >= len) n = len - 1;
    memcpy(buf, b, n);
    buf[n] = '\0';
}

static int valid_profile_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_PROFILE_NAME) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 (i > 0 && (ch == '-' || ch == '_' || ch == '.'));
        if (!ok) return 0;
    }
    return 1;
}

static int parse_profile(pctx *c, json_t *root, ag_profile *p)
{
    json_t *proto = json_object_get(root, "protocol");
    int pjlink = json_is_string(proto) && strcmp(json_string_value(proto), "pjlink") == 0;
    int text = json_is_string(proto) && strcmp(json_string_value(proto), "text") == 0;
    int http = json_is_string(proto) && strcmp(json_string_value(proto), "http") == 0;
    if (ag_pj_check_keys(c, root, "$",
                     pjlink ? pjlink_top_keys
                     : text ? text_top_keys
                     : http ? http_top_keys
                            : top_keys) < 0 ||
        ag_pj_get_str(c, root, "name", "$", 1, MAX_PROFILE_NAME, &p->name) < 0 ||
        ag_pj_get_str(c, root, "description", "$", 0, 1024, &p->description) < 0 ||
        ag_pj_get_str(c, root, "vendor", "$", 0, CM_MAX_VALUE - 1, &p->vendor) < 0 ||
        ag_pj_get_str(c, root, "kind", "$", 1, 32, &p->kind) < 0 ||
        ag_pj_get_str(c, root, "protocol", "$", 1, 16, &p->protocol) < 0)
        return -1;
    if (!valid_profile_name(p->name))
        return ag_pj_fail(c, "$.name", "'%s' is not a valid profile name ([a-z0-9][a-z0-9_.-]*)",
                    p->name);
    char base[MAX_PROFILE_NAME + 8];
    base_name(c->file, base, sizeof base);
    if (strcmp(base, p->name) != 0)
        return ag_pj_fail(c, "$.name", "'%s' differs from the file name '%s'", p->name, base);
    if (!ag_pj_in_list(p->kind, kinds)) return ag_pj_fail(c, "$.kind", "unknown kind '%s'", p->kind);
    if (pjlink) return parse_sources(c, root) < 0 || parse_confidence(c, root) < 0 ||
                       get_note(c, root, "$") < 0
                           ? -1
                           : 0;
    if (text) return parse_sources(c, root) < 0 || parse_confidence(c, root) < 0 ||
                     get_note(c, root, "$") < 0 ||
                     ag_text_profile_check(root, c->file, c->err, c->errlen) < 0
                         ? -1
                         : 0;
    if (http) return parse_sources(c, root) < 0 || parse_confidence(c, root) < 0 ||
                     get_note(c, root, "$") < 0 ||
                     ag_http_profile_check(c->file, root, c->err, c->errlen) < 0
                         ? -1
                         : 0;
    if (strcmp(p->protocol, "snmp") != 0)
        return ag_pj_fail(c, "$.protocol", "unsupported protocol '%s' (snmp, pjlink, text or http)",
                    p->protocol);
    if (parse_sources(c, root) < 0 || parse_confidence(c, root) < 0 ||
        parse_match(c, root, p) < 0 || parse_identity(c, root, p) < 0 ||
        parse_traps(c, root, p) < 0)
        return -1;

    if (parse_array_of(c, root, "scalars", sizeof *p->scalars, (void **)&p->scalars, &p->nscalars) <
        0)
        return -1;
    json_t *sc = json_object_get(root, "scalars");
    for (size_t i = 0; i < p->nscalars; i++) {
        char ip[AG_PJ_PATH];
        ag_pj_idx(ip, "$", "scalars", i);
        if (parse_scalar(c, json_array_get(sc, i), ip, &p->scalars[i]) < 0) return -1;
    }
    if (parse_array_of(c, root, "tables", sizeof *p->tables, (void **)&p->tables, &p->ntables) < 0)
        return -1;
    json_t *tb = json_object_get(root, "tables");
    for (size_t i = 0; i < p->ntables; i++) {
        char ip[AG_PJ_PATH];
        ag_pj_idx(ip, "$", "tables", i);
        if (parse_table(c, json_array_get(tb, i), ip, &p->tables[i]) < 0) return -1;
    }
    if (p->nidentity + p->nscalars + p->ntables == 0)
        return ag_pj_fail(c, "$", "profile reads nothing (no identity, scalars or tables)");
    return 0;
}

int ag_profile_load(const char *path, ag_profile *out, char *err, size_t errlen)
{
    pctx c = {path, err, errlen};
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (err && errlen) {
            if (jerr.line > 0)
                snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
            else
                snprintf(err, errlen, "%s: %s", path, jerr.text);
        }
        return -1;
    }
    int rc = parse_profile(&c, root, out);
    out->doc = root; /* kept: freed by ag_profile_free */
    if (rc == 0) {
        out->path = strdup(path);
        if (!out->path) rc = ag_pj_fail(&c, "$", "out of memory");
    }
    if (rc < 0) ag_profile_free(out);
    return rc;
}

void ag_profile_free(ag_profile *p)
{
    if (!p) return;
    json_decref(p->doc);
    free(p->name);
    free(p->path);
    free(p->description);
    free(p->vendor);
    free(p->kind);
    free(p->protocol);
    free(p->match);
    for (size_t i = 0; p->identity && i < p->nidentity; i++)
        free(p->identity[i].field);
    free(p->identity);
    for (size_t i = 0; p->scalars && i < p->nscalars; i++)
        free_scalar(&p->scalars[i]);
    free(p->scalars);
    for (size_t i = 0; p->tables && i < p->ntables; i++)
        free_table(&p->tables[i]);
    free(p->tables);
    for (size_t i = 0; p->traps && i < p->ntraps; i++) {
        free(p->traps[i].code);
        free(p->traps[i].severity);
        free(p->traps[i].text);
    }
    free(p->traps);
    memset(p, 0, sizeof *p);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ag_profiles_load_dir(const char *dir, ag_profile_set *set, char *err, size_t errlen)
{
    memset(set, 0, sizeof *set);
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot open profiles folder: %s", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len <= 5 || strcmp(e->d_name + len - 5, ".json") != 0) continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn) {
                rc = -1;
                break;
            }
            names = nn;
            cap = nc;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc < 0) snprintf(err, errlen, "%s: out of memory", dir);
    if (rc == 0 && n > 0) {
        qsort(names, n, sizeof *names, cmp_str);
        set->profiles = calloc(n, sizeof *set->profiles);
        if (!set->profiles) {
            snprintf(err, errlen, "%s: out of memory", dir);
            rc = -1;
        }
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (ag_profile_load(path, &set->profiles[set->nprofiles], err, errlen) < 0) {
            rc = -1;
            break;
        }
        set->nprofiles++;
        for (size_t j = 0; j + 1 < set->nprofiles; j++) {
            if (strcmp(set->profiles[j].name, set->profiles[set->nprofiles - 1].name) == 0) {
                snprintf(err, errlen, "%s: $.name: profile '%s' is defined twice", path,
                         set->profiles[j].name);
                rc = -1;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc < 0) ag_profiles_free(set);
    return rc;
}

void ag_profiles_free(ag_profile_set *set)
{
    if (!set) return;
    for (size_t i = 0; set->profiles && i < set->nprofiles; i++)
        ag_profile_free(&set->profiles[i]);
    free(set->profiles);
    set->profiles = NULL;
    set->nprofiles = 0;
}

const ag_profile *ag_profile_find(const ag_profile_set *set, const char *name)
{
    for (size_t i = 0; set && name && i < set->nprofiles; i++)
        if (strcmp(set->profiles[i].name, name) == 0) return &set->profiles[i];
    return NULL;
}

const ag_profile *ag_profile_match(const ag_profile_set *set, const ag_oid *sysobjectid)
{
    const ag_profile *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; set && sysobjectid && i < set->nprofiles; i++) {
        const ag_profile *p = &set->profiles[i];
        for (size_t m = 0; m < p->nmatch; m++) {
            const ag_oid *pre = &p->match[m];
            if (pre->len > sysobjectid->len || pre->len <= best_len) continue;
            if (memcmp(pre->sub, sysobjectid->sub, pre->len * sizeof pre->sub[0]) == 0) {
                best = p;
                best_len = pre->len;
            }
        }
    }
    return best;
}

/* Parse the whole of s[0..len) as a finite number ("55.652", " -4 ", "1e3"). */
static int parse_number(const char *s, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    const char *p = buf;
    while (*p == ' ' || *p == '\t')
        p++;
    /* strtod also takes "nan", "inf" and hex: only plain decimal numbers are numbers here. */
    const char *q = (*p == '+' || *p == '-') ? p + 1 : p;
    if (!((*q >= '0' && *q <= '9') || (*q == '.' && q[1] >= '0' && q[1] <= '9'))) return -1;
    if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X')) return -1;
    char *end;
    errno = 0;
    double d = strtod(p, &end);
    if (end == p || errno == ERANGE) return -1;
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end != '\0' || !isfinite(d)) return -1;
    *out = d;
    return 0;
}

int ag_value_map_apply(const ag_value_map *m, const ag_raw *raw, double *out, char *err,
                       size_t errlen)
{
    if (!err) errlen = 0;
    if (errlen) err[0] = '\0';
    if (!raw || raw->kind == AG_RAW_NULL) return 1;
    char text[64];
    const char *key = NULL;
    size_t keylen = 0;
    double num = 0;
    int have_num = 0;

    if (raw->kind == AG_RAW_STR) {
        size_t len = raw->str ? raw->len : 0;
        while (len > 0 && (raw->str[len - 1] == '\0' || raw->str[len - 1] == ' '))
            len--;
        if (len == 0) return 1;
        key = raw->str;
        keylen = len;
        have_num = parse_number(raw->str, len, &num) == 0;
    } else {
        num = raw->num;
        if (!isfinite(num)) {
            snprintf(err, errlen, "value is not a finite number");
            return -1;
        }
        have_num = 1;
        if (m && m->nenums > 0) { /* the text form is only the enum's key */
            if (num == floor(num) && fabs(num) < 1e18)
                snprintf(text, sizeof text, "%.0f", num);
            else
                snprintf(text, sizeof text, "%.17g", num);
            key = text;
            keylen = strlen(text);
        }
    }

    if (m && m->nenums > 0) {
        for (size_t i = 0; i < m->nenums; i++) {
            const char *r = m->enums[i].raw;
            if (strlen(r) == keylen && memcmp(r, key, keylen) == 0) {
                *out = m->enums[i].value;
                return 0;
            }
        }
        snprintf(err, errlen, "raw value '%.*s' is not in the enum",
                 (int)(keylen > 64 ? 64 : keylen), key);
        return -1;
    }
    if (!have_num) {
        char shown[40];
        size_t n = keylen < sizeof shown - 1 ? keylen : sizeof shown - 1;
        for (size_t i = 0; i < n; i++)
            shown[i] = (key[i] >= 0x20 && key[i] < 0x7f) ? key[i] : '?';
        shown[n] = '\0';
        snprintf(err, errlen, "text '%s%s' is not a number", shown, keylen > n ? "..." : "");
        return -1;
    }
    double v = m ? num * m->scale + m->offset : num;
    if (!isfinite(v)) {
        snprintf(err, errlen, "scaled value is not finite");
        return -1;
    }
    *out = v;
    return 0;
}

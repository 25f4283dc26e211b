/* text_profile.c — parse and check a text profile's commands; match reply lines and decode
 * binary reply frames (see .h). */
#include "text_profile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile_json.h"
#include "wire.h"

#define MAX_REPEAT 255 /* sum of the interval counts of one regex */

static const char *const cmd_keys[] = {"send",  "expect", "metric", "identity", "unit",
                                       "scale", "offset", "enum",   "note",     NULL};
static const char *const bin_cmd_keys[] = {"send_hex", "reply", "values", "note", NULL};
static const char *const reply_keys[] = {"prefix",   "length",     "length_at", "length_add",
                                         "checksum", "error_mask", "note",      NULL};
static const char *const value_keys[] = {"at",       "size", "type",  "endian", "metric",
                                         "identity", "unit", "scale", "offset", "enum",
                                         "labels",   "note", NULL};
static const char *const identity_fields[] = {"model", "serial", "firmware", "vendor", NULL};

typedef ag_pj tctx;

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* The sum of the numbers in every {m} / {m,n} of a regex (a bound on what regcomp expands:
 * nested intervals multiply, so "(a{1000}){1000}" would build a million states). */
static long repetitions(const char *re)
{
    long sum = 0;
    for (const char *q = re; *q; q++) {
        if (*q != '{') continue;
        while (*++q && (*q == ',' || (*q >= '0' && *q <= '9'))) {
            if (*q == ',') continue;
            long n = 0;
            while (*q >= '0' && *q <= '9' && n <= MAX_REPEAT)
                n = n * 10 + (*q++ - '0');
            sum += n;
            if (sum > MAX_REPEAT) return sum;
            q--;
        }
        if (!*q) break;
    }
    return sum;
}

static void free_value(ag_bin_value *v)
{
    free(v->metric);
    free(v->unit);
    free(v->identity);
    for (size_t i = 0; i < v->nlabels; i++) {
        free((char *)v->labels[i].key);
        free((char *)v->labels[i].value);
    }
    ag_value_map_free(&v->map);
    memset(v, 0, sizeof *v);
}

static void free_cmd(ag_text_cmd *t)
{
    for (size_t i = 0; t->values && i < t->nvalues; i++)
        free_value(&t->values[i]);
    free(t->values);
    free(t->bin);
    free(t->hex);
    free(t->send);
    free(t->expect);
    free(t->metric);
    free(t->unit);
    free(t->identity);
    if (t->re_ok) regfree(&t->re);
    ag_value_map_free(&t->map);
    memset(t, 0, sizeof *t);
}

static int parse_bin_cmd(tctx *c, json_t *v, const char *path, ag_text_cmd *t);

static int parse_cmd(tctx *c, json_t *v, const char *path, ag_text_cmd *t)
{
    t->map.scale = 1;
    if (!json_is_object(v)) return ag_pj_fail(c, path, "expected an object");
    if (json_object_get(v, "send_hex")) return parse_bin_cmd(c, v, path, t);
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        if (!ag_pj_in_list(key, cmd_keys)) {
            char p[AG_PJ_PATH];
            snprintf(p, sizeof p, "%.160s['%.64s']", path, key);
            return ag_pj_fail(c, p, "unknown key");
        }
    }
    char p[AG_PJ_PATH];
    if (ag_pj_get_str(c, v, "send", path, 1, AG_TEXT_MAX_SEND, &t->send) < 0 ||
        ag_pj_get_str(c, v, "expect", path, 1, 512, &t->expect) < 0 ||
        ag_pj_get_str(c, v, "metric", path, 0, CM_MAX_NAME, &t->metric) < 0 ||
        ag_pj_get_str(c, v, "identity", path, 0, 16, &t->identity) < 0 ||
        ag_pj_get_str(c, v, "unit", path, 0, 32, &t->unit) < 0)
        return -1;
    if (strpbrk(t->send, "\r\n")) {
        snprintf(p, sizeof p, "%.160s.send", path);
        return ag_pj_fail(c, p, "must not contain CR or LF (the line end is added)");
    }
    snprintf(p, sizeof p, "%.160s.expect", path);
    if (repetitions(t->expect) > MAX_REPEAT)
        return ag_pj_fail(c, p, "interval counts {m,n} add up to more than %d", MAX_REPEAT);
    int rc = regcomp(&t->re, t->expect, REG_EXTENDED);
    if (rc != 0) {
        char why[128];
        regerror(rc, &t->re, why, sizeof why);
        return ag_pj_fail(c, p, "bad regular expression: %s", why);
    }
    t->re_ok = 1;
    if (t->re.re_nsub < 1)
        return ag_pj_fail(c, p, "regular expression has no group (group 1 is the value)");
    if (!t->metric == !t->identity)
        return ag_pj_fail(c, path, "needs exactly one of metric or identity");
    if (t->metric && !cm_wire_valid_name(t->metric)) {
        snprintf(p, sizeof p, "%.160s.metric", path);
        return ag_pj_fail(c, p, "'%s' is not a valid name ([a-z_][a-z0-9_]*)", t->metric);
    }
    if (t->identity) {
        if (!ag_pj_in_list(t->identity, identity_fields)) {
            snprintf(p, sizeof p, "%.160s.identity", path);
            return ag_pj_fail(c, p, "'%s' is not one of model, serial, firmware, vendor",
                              t->identity);
        }
        static const char *const metric_only[] = {"unit", "scale", "offset", "enum", NULL};
        for (size_t i = 0; metric_only[i]; i++)
            if (json_object_get(v, metric_only[i])) {
                snprintf(p, sizeof p, "%.160s.%s", path, metric_only[i]);
                return ag_pj_fail(c, p, "only for a metric command");
            }
        return 0;
    }
    return ag_value_map_parse(v, c->file, path, &t->map, c->err, c->errlen);
}

/* ---- binary commands ---------------------------------------------------------------- */

/* Hex bytes "00 85 0a" (spaces optional between bytes) into out; the count, or -1. */
static long parse_hex(const char *s, unsigned char *out, size_t cap)
{
    size_t n = 0;
    for (const char *q = s; *q;) {
        if (*q == ' ') {
            q++;
            continue;
        }
        int hi = hexval(q[0]), lo = q[1] ? hexval(q[1]) : -1;
        if (hi < 0 || lo < 0 || n >= cap) return -1;
        out[n++] = (unsigned char)(hi * 16 + lo);
        q += 2;
    }
    return (long)n;
}

/* Integer member key of obj in lo..hi into *out; absent: required → error, else untouched. */
static int get_uint(tctx *c, json_t *obj, const char *key, const char *path, int required, long lo,
                    long hi, size_t *out)
{
    char p[AG_PJ_PATH];
    ag_pj_key(p, path, key);
    json_t *v = json_object_get(obj, key);
    if (!v) return required ? ag_pj_fail(c, p, "missing") : 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return ag_pj_fail(c, p, "expected an integer %ld..%ld", lo, hi);
    *out = (size_t)json_integer_value(v);
    return 0;
}

static int parse_reply(tctx *c, json_t *v, const char *path, ag_bin_reply *r)
{
    if (!json_is_object(v)) return ag_pj_fail(c, path, "expected an object");
    if (ag_pj_check_keys(c, v, path, reply_keys) < 0) return -1;
    char p[AG_PJ_PATH];
    char *str = NULL;
    if (ag_pj_get_str(c, v, "prefix", path, 0, 3 * AG_BIN_MAX_PREFIX, &str) < 0) return -1;
    if (str) {
        long n = parse_hex(str, r->prefix, sizeof r->prefix);
        free(str);
        str = NULL;
        ag_pj_key(p, path, "prefix");
        if (n < 1)
            return ag_pj_fail(c, p, "expected 1..%d hex bytes (\"20 85\")", AG_BIN_MAX_PREFIX);
        r->nprefix = (size_t)n;
    }
    int fixed = json_object_get(v, "length") != NULL;
    int header = json_object_get(v, "length_at") != NULL;
    if (fixed == header)
        return ag_pj_fail(c, path,
                          "needs exactly one of length (fixed) or length_at (header byte)");
    if (get_uint(c, v, "length", path, 0, 1, AG_BIN_MAX_REPLY, &r->length) < 0 ||
        get_uint(c, v, "length_at", path, 0, 0, 64, &r->length_at) < 0 ||
        get_uint(c, v, "length_add", path, header, 1, AG_BIN_MAX_REPLY - 255, &r->length_add) < 0)
        return -1;
    if (fixed && json_object_get(v, "length_add")) {
        ag_pj_key(p, path, "length_add");
        return ag_pj_fail(c, p, "only with length_at");
    }
    if (header && r->length_add <= r->length_at) {
        ag_pj_key(p, path, "length_add");
        return ag_pj_fail(c, p, "must be more than length_at (the header is part of the frame)");
    }
    if (ag_pj_get_str(c, v, "checksum", path, 1, 16, &str) < 0) return -1;
    int ok = strcmp(str, "sum8") == 0 || strcmp(str, "none") == 0;
    r->sum8 = strcmp(str, "sum8") == 0;
    free(str);
    str = NULL;
    ag_pj_key(p, path, "checksum");
    if (!ok) return ag_pj_fail(c, p, "expected \"sum8\" (sum of the bytes mod 256) or \"none\"");
    if (r->sum8 && fixed && r->length < 2)
        return ag_pj_fail(c, p, "a checksummed frame has at least 2 bytes");
    size_t mask = 0;
    if (get_uint(c, v, "error_mask", path, 0, 0, 255, &mask) < 0) return -1;
    r->error_mask = (unsigned)mask;
    if (r->nprefix && (r->prefix[0] & r->error_mask)) {
        ag_pj_key(p, path, "prefix");
        return ag_pj_fail(c, p, "its first byte has error_mask bits set");
    }
    if (fixed && r->nprefix > r->length) {
        ag_pj_key(p, path, "prefix");
        return ag_pj_fail(c, p, "longer than the reply");
    }
    return 0;
}

static int parse_labels(tctx *c, json_t *obj, const char *path, ag_bin_value *bv)
{
    json_t *l = json_object_get(obj, "labels");
    if (!l) return 0;
    char p[AG_PJ_PATH];
    ag_pj_key(p, path, "labels");
    if (!json_is_object(l) || json_object_size(l) > AG_BIN_MAX_LABELS)
        return ag_pj_fail(c, p, "expected an object of at most %d labels", AG_BIN_MAX_LABELS);
    const char *k;
    json_t *lv;
    json_object_foreach(l, k, lv)
    {
        char lp[AG_PJ_PATH];
        ag_pj_key(lp, p, k);
        if (!cm_wire_valid_name(k)) return ag_pj_fail(c, lp, "not a valid label name");
        if (!json_is_string(lv) || json_string_length(lv) == 0 ||
            json_string_length(lv) >= CM_MAX_VALUE ||
            strlen(json_string_value(lv)) != json_string_length(lv))
            return ag_pj_fail(c, lp, "expected a non-empty string");
        cm_label *dst = &bv->labels[bv->nlabels];
        dst->key = strdup(k);
        dst->value = strdup(json_string_value(lv));
        bv->nlabels++;
        if (!dst->key || !dst->value) return ag_pj_fail(c, lp, "out of memory");
    }
    return 0;
}

static int parse_value(tctx *c, json_t *v, const char *path, const ag_bin_reply *r,
                       ag_bin_value *bv)
{
    bv->map.scale = 1;
    if (!json_is_object(v)) return ag_pj_fail(c, path, "expected an object");
    if (ag_pj_check_keys(c, v, path, value_keys) < 0) return -1;
    char p[AG_PJ_PATH];
    char *str = NULL;
    if (ag_pj_get_str(c, v, "type", path, 0, 16, &str) < 0) return -1;
    bv->type = AG_BIN_UINT;
    if (str) {
        int ok = 1;
        if (strcmp(str, "int") == 0)
            bv->type = AG_BIN_INT;
        else if (strcmp(str, "ascii") == 0)
            bv->type = AG_BIN_ASCII;
        else if (strcmp(str, "uint") != 0)
            ok = 0;
        free(str);
        str = NULL;
        ag_pj_key(p, path, "type");
        if (!ok) return ag_pj_fail(c, p, "expected uint, int or ascii");
    }
    long maxsize = bv->type == AG_BIN_ASCII ? AG_BIN_MAX_TEXT : 4;
    if (get_uint(c, v, "at", path, 1, 0, AG_BIN_MAX_REPLY - 1, &bv->at) < 0 ||
        get_uint(c, v, "size", path, 1, 1, maxsize, &bv->size) < 0)
        return -1;
    ag_pj_key(p, path, "size");
    if (bv->type == AG_BIN_INT && bv->size == 3)
        return ag_pj_fail(c, p, "an int has 1, 2 or 4 bytes");
    size_t end = bv->at + bv->size; /* one past its last byte */
    size_t body_end = r->length ? r->length - (r->sum8 ? 1 : 0) : 0;
    if (r->length && end > body_end) {
        ag_pj_key(p, path, "at");
        return ag_pj_fail(c, p, "bytes %zu..%zu lie outside the %zu-byte reply%s", bv->at, end - 1,
                          r->length, r->sum8 ? " (before its checksum)" : "");
    }
    if (ag_pj_get_str(c, v, "endian", path, 0, 8, &str) < 0) return -1;
    ag_pj_key(p, path, "endian");
    if (str) {
        int ok = strcmp(str, "big") == 0 || strcmp(str, "little") == 0;
        bv->big_endian = strcmp(str, "big") == 0;
        free(str);
        str = NULL;
        if (!ok) return ag_pj_fail(c, p, "expected \"big\" or \"little\"");
        if (bv->type == AG_BIN_ASCII || bv->size == 1)
            return ag_pj_fail(c, p, "only for numbers of 2 or more bytes");
    } else if (bv->type != AG_BIN_ASCII && bv->size > 1) {
        return ag_pj_fail(c, p, "missing (a %zu-byte number needs \"big\" or \"little\")",
                          bv->size);
    }
    if (ag_pj_get_str(c, v, "metric", path, 0, CM_MAX_NAME, &bv->metric) < 0 ||
        ag_pj_get_str(c, v, "identity", path, 0, 16, &bv->identity) < 0 ||
        ag_pj_get_str(c, v, "unit", path, 0, 32, &bv->unit) < 0)
        return -1;
    if (!bv->metric == !bv->identity)
        return ag_pj_fail(c, path, "needs exactly one of metric or identity");
    if (bv->metric && !cm_wire_valid_name(bv->metric)) {
        ag_pj_key(p, path, "metric");
        return ag_pj_fail(c, p, "'%s' is not a valid name ([a-z_][a-z0-9_]*)", bv->metric);
    }
    if (bv->identity) {
        ag_pj_key(p, path, "identity");
        if (!ag_pj_in_list(bv->identity, identity_fields))
            return ag_pj_fail(c, p, "'%s' is not one of model, serial, firmware, vendor",
                              bv->identity);
        if (bv->type != AG_BIN_ASCII)
            return ag_pj_fail(c, p, "an identity is read from an ascii value");
        static const char *const metric_only[] = {"unit", "scale",  "offset",
                                                  "enum", "labels", NULL};
        for (size_t i = 0; metric_only[i]; i++)
            if (json_object_get(v, metric_only[i])) {
                ag_pj_key(p, path, metric_only[i]);
                return ag_pj_fail(c, p, "only for a metric");
            }
        return 0;
    }
    if (parse_labels(c, v, path, bv) < 0) return -1;
    return ag_value_map_parse(v, c->file, path, &bv->map, c->err, c->errlen);
}

static int parse_bin_cmd(tctx *c, json_t *v, const char *path, ag_text_cmd *t)
{
    if (ag_pj_check_keys(c, v, path, bin_cmd_keys) < 0) return -1;
    char p[AG_PJ_PATH];
    if (ag_pj_get_str(c, v, "send_hex", path, 1, 3 * AG_BIN_MAX_SEND, &t->hex) < 0) return -1;
    ag_pj_key(p, path, "send_hex");
    t->bin = malloc(AG_BIN_MAX_SEND);
    if (!t->bin) return ag_pj_fail(c, p, "out of memory");
    long n = parse_hex(t->hex, t->bin, AG_BIN_MAX_SEND);
    if (n < 1)
        return ag_pj_fail(c, p, "expected 1..%d hex bytes such as \"00 85 00 00 01 01 87\"",
                          AG_BIN_MAX_SEND);
    t->binlen = (size_t)n;
    json_t *r = json_object_get(v, "reply");
    ag_pj_key(p, path, "reply");
    if (!r) return ag_pj_fail(c, p, "missing");
    if (parse_reply(c, r, p, &t->reply) < 0) return -1;
    if (t->reply.sum8 && t->binlen >= 2) {
        unsigned sum = 0;
        for (size_t i = 0; i + 1 < t->binlen; i++)
            sum += t->bin[i];
        if ((sum & 0xff) != t->bin[t->binlen - 1]) {
            ag_pj_key(p, path, "send_hex");
            return ag_pj_fail(c, p, "last byte %02X is not the checksum of the others (%02X)",
                              t->bin[t->binlen - 1], sum & 0xff);
        }
    }
    json_t *vals = json_object_get(v, "values");
    ag_pj_key(p, path, "values");
    if (!vals) return ag_pj_fail(c, p, "missing");
    if (!json_is_array(vals) || json_array_size(vals) == 0 ||
        json_array_size(vals) > AG_BIN_MAX_VALUES)
        return ag_pj_fail(c, p, "expected an array of 1..%d values", AG_BIN_MAX_VALUES);
    t->nvalues = json_array_size(vals);
    t->values = calloc(t->nvalues, sizeof *t->values);
    if (!t->values) {
        t->nvalues = 0;
        return ag_pj_fail(c, p, "out of memory");
    }
    for (size_t i = 0; i < t->nvalues; i++) {
        char vp[AG_PJ_PATH];
        ag_pj_idx(vp, path, "values", i);
        if (parse_value(c, json_array_get(vals, i), vp, &t->reply, &t->values[i]) < 0) return -1;
    }
    return 0;
}

static int parse_line_end(tctx *c, json_t *doc, ag_text_profile *out)
{
    strcpy(out->line_end, "\r\n");
    json_t *v = json_object_get(doc, "line_end");
    if (!v) return 0;
    if (!json_is_string(v)) return ag_pj_fail(c, "$.line_end", "expected a string");
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0 || len > 2 || strspn(s, "\r\n") != len)
        return ag_pj_fail(c, "$.line_end", "expected \"\\r\\n\", \"\\n\" or \"\\r\"");
    memcpy(out->line_end, s, len);
    out->line_end[len] = '\0';
    return 0;
}

int ag_text_profile_parse(json_t *doc, const char *file, ag_text_profile *out, char *err,
                          size_t errlen)
{
    tctx c = {file ? file : "profile", err, errlen};
    memset(out, 0, sizeof *out);
    if (!json_is_object(doc)) return ag_pj_fail(&c, "$", "expected an object");
    json_t *port = json_object_get(doc, "port");
    if (port) {
        if (!json_is_integer(port) || json_integer_value(port) < 1 ||
            json_integer_value(port) > 65535)
            return ag_pj_fail(&c, "$.port", "expected an integer 1..65535");
        out->port = (int)json_integer_value(port);
    }
    if (parse_line_end(&c, doc, out) < 0) return -1;
    json_t *cmds = json_object_get(doc, "commands");
    if (!cmds) return ag_pj_fail(&c, "$.commands", "missing");
    if (!json_is_array(cmds) || json_array_size(cmds) == 0)
        return ag_pj_fail(&c, "$.commands", "expected a non-empty array of commands");
    size_t n = json_array_size(cmds);
    if (n > AG_TEXT_MAX_COMMANDS)
        return ag_pj_fail(&c, "$.commands", "more than %d commands", AG_TEXT_MAX_COMMANDS);
    out->cmds = calloc(n, sizeof *out->cmds);
    if (!out->cmds) return ag_pj_fail(&c, "$.commands", "out of memory");
    out->ncmds = n;
    for (size_t i = 0; i < n; i++) {
        char p[AG_PJ_PATH];
        snprintf(p, sizeof p, "$.commands[%zu]", i);
        json_t *cv = json_array_get(cmds, i);
        int bin = json_is_object(cv) && json_object_get(cv, "send_hex") != NULL;
        if (i == 0) out->binary = bin;
        if (bin != out->binary) {
            ag_pj_fail(&c, p, "%s command in a profile whose first command is %s: one kind only",
                       bin ? "a binary (send_hex)" : "a line (send)", bin ? "a line" : "binary");
            ag_text_profile_free(out);
            return -1;
        }
        if (parse_cmd(&c, cv, p, &out->cmds[i]) < 0) {
            ag_text_profile_free(out);
            return -1;
        }
    }
    if (out->binary && json_object_get(doc, "line_end")) {
        ag_text_profile_free(out);
        return ag_pj_fail(&c, "$.line_end", "not for binary commands");
    }
    return 0;
}

int ag_text_profile_check(json_t *doc, const char *file, char *err, size_t errlen)
{
    ag_text_profile p;
    int rc = ag_text_profile_parse(doc, file, &p, err, errlen);
    ag_text_profile_free(&p);
    return rc;
}

void ag_text_profile_free(ag_text_profile *p)
{
    if (!p) return;
    for (size_t i = 0; p->cmds && i < p->ncmds; i++)
        free_cmd(&p->cmds[i]);
    free(p->cmds);
    memset(p, 0, sizeof *p);
}

int ag_text_match(const ag_text_cmd *cmd, const char *line, size_t len, char *val, size_t vallen)
{
    if (vallen) val[0] = '\0';
    if (!cmd || !cmd->re_ok || (!line && len)) return 0;
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    if (len > AG_TEXT_MAX_LINE || (len && memchr(line, '\0', len))) return 0;
    char buf[AG_TEXT_MAX_LINE + 1];
    if (len) memcpy(buf, line, len);
    buf[len] = '\0';
    regmatch_t m[2];
    if (regexec(&cmd->re, buf, 2, m, 0) != 0) return 0;
    if (vallen && m[1].rm_so >= 0 && m[1].rm_eo >= m[1].rm_so) {
        size_t n = (size_t)(m[1].rm_eo - m[1].rm_so);
        if (n >= vallen) n = vallen - 1;
        memcpy(val, buf + m[1].rm_so, n);
        val[n] = '\0';
    }
    return 1;
}

/* ---- binary replies ----------------------------------------------------------------- */

void ag_bin_hex(const unsigned char *b, size_t len, size_t max, char *out, size_t outlen)
{
    if (!outlen) return;
    out[0] = '\0';
    size_t o = 0;
    for (size_t i = 0; b && i < len && i < max && o + 4 < outlen; i++)
        o += (size_t)snprintf(out + o, outlen - o, "%s%02X", i ? " " : "", b[i]);
    if (len > max && o + 4 < outlen) snprintf(out + o, outlen - o, " ...");
}

size_t ag_bin_frame_len(const ag_bin_reply *r, const unsigned char *buf, size_t len)
{
    if (!r || !buf || len == 0) return 0;
    if (r->length) return (r->error_mask && (buf[0] & r->error_mask)) ? 1 : r->length;
    if (len <= r->length_at) return 0;
    return (size_t)buf[r->length_at] + r->length_add;
}

int ag_bin_check(const ag_bin_reply *r, const unsigned char *frame, size_t len, char *why,
                 size_t whylen)
{
    char hex[64];
    if (whylen) why[0] = '\0';
    if (!r || !frame || len == 0) {
        snprintf(why, whylen, "empty reply");
        return -1;
    }
    ag_bin_hex(frame, len, 12, hex, sizeof hex);
    int err = r->error_mask && (frame[0] & r->error_mask);
    if (r->sum8 && len >= 2 && !(err && r->length)) {
        unsigned sum = 0;
        for (size_t i = 0; i + 1 < len; i++)
            sum += frame[i];
        if ((sum & 0xff) != frame[len - 1]) {
            snprintf(why, whylen, "bad checksum %02X (expected %02X) in reply %s", frame[len - 1],
                     sum & 0xff, hex);
            return -1;
        }
    }
    if (err) {
        snprintf(why, whylen, "error reply %s", hex);
        return AG_BIN_DEVICE_ERROR;
    }
    if (len < r->nprefix || memcmp(frame, r->prefix, r->nprefix) != 0) {
        char want[3 * AG_BIN_MAX_PREFIX + 4];
        ag_bin_hex(r->prefix, r->nprefix, AG_BIN_MAX_PREFIX, want, sizeof want);
        snprintf(why, whylen, "reply %s does not start with %s", hex, want);
        return -1;
    }
    return 0;
}

int ag_bin_value_get(const ag_bin_value *v, const unsigned char *frame, size_t len, double *num,
                     char *str, size_t strcap, char *why, size_t whylen)
{
    if (whylen) why[0] = '\0';
    if (str && strcap) str[0] = '\0';
    if (!v || !frame || v->size == 0 || v->at >= len || v->size > len - v->at) {
        snprintf(why, whylen, "the reply has no bytes %zu..%zu (only %zu)", v ? v->at : 0,
                 v ? v->at + v->size - 1 : 0, len);
        return -1;
    }
    const unsigned char *b = frame + v->at;
    if (v->type == AG_BIN_ASCII) {
        size_t o = 0;
        for (size_t i = 0; i < v->size && str && o + 1 < strcap; i++) {
            if (b[i] == 0) continue;
            str[o++] = (b[i] >= 0x20 && b[i] < 0x7f) ? (char)b[i] : '?';
        }
        while (o > 0 && str[o - 1] == ' ')
            o--;
        if (str && strcap) str[o] = '\0';
        return 0;
    }
    uint32_t u = 0;
    for (size_t i = 0; i < v->size; i++) {
        size_t k = v->big_endian ? i : v->size - 1 - i;
        u = (u << 8) | b[k];
    }
    double d = (double)u;
    if (v->type == AG_BIN_INT && (u >> (8 * v->size - 1)) & 1u)
        d -= (double)(1ull << (8 * v->size)); /* two's complement */
    if (num) *num = d;
    return 0;
}

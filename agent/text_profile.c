/* text_profile.c — parse and check a text profile's commands; match reply lines (see .h). */
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
static const char *const identity_fields[] = {"model", "serial", "firmware", "vendor", NULL};

typedef ag_pj tctx;
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

static void free_cmd(ag_text_cmd *t)
{
    free(t->send);
    free(t->expect);
    free(t->metric);
    free(t->unit);
    free(t->identity);
    if (t->re_ok) regfree(&t->re);
    ag_value_map_free(&t->map);
    memset(t, 0, sizeof *t);
}

static int parse_cmd(tctx *c, json_t *v, const char *path, ag_text_cmd *t)
{
    t->map.scale = 1;
    if (!json_is_object(v)) return ag_pj_fail(c, path, "expected an object");
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
    if (!t->metric == !t->identity) return ag_pj_fail(c, path, "needs exactly one of metric or identity");
    if (t->metric && !cm_wire_valid_name(t->metric)) {
        snprintf(p, sizeof p, "%.160s.metric", path);
        return ag_pj_fail(c, p, "'%s' is not a valid name ([a-z_][a-z0-9_]*)", t->metric);
    }
    if (t->identity) {
        if (!ag_pj_in_list(t->identity, identity_fields)) {
            snprintf(p, sizeof p, "%.160s.identity", path);
            return ag_pj_fail(c, p, "'%s' is not one of model, serial, firmware, vendor", t->identity);
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
        if (parse_cmd(&c, json_array_get(cmds, i), p, &out->cmds[i]) < 0) {
            ag_text_profile_free(out);
            return -1;
        }
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

/* conf.c — INI files through inih, remembering the line of every section and key. */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"

typedef struct parse_ctx {
    cm_conf *c;
    FILE *f;
    int line;          /* line most recently handed to inih */
    int mid_line;      /* the last chunk did not end with a newline (over-long line) */
    char *err;
    size_t errlen;
    int failed;
} parse_ctx;

void cm_conf_errf(const cm_conf *c, int line, char *err, size_t errlen, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s:%d: %s", c->path ? c->path : "?", line, msg);
}

/* Split a header "device \"hall1/projector\"" into name and arg. 0 or -1. */
static int split_header(const char *hdr, char **name, char **arg)
{
    const char *p = hdr;
    while (*p && !isspace((unsigned char)*p) && *p != '"') p++;
    if (p == hdr) return -1;
    *name = strndup(hdr, (size_t)(p - hdr));
    *arg = NULL;
    while (isspace((unsigned char)*p)) p++;
    if (*p == '\0') return *name ? 0 : -1;
    if (*p != '"') goto bad;
    const char *q = strchr(p + 1, '"');
    if (!q || q[1] != '\0' || q == p + 1) goto bad;
    *arg = strndup(p + 1, (size_t)(q - p - 1));
    return (*name && *arg) ? 0 : -1;
bad:
    free(*name);
    *name = NULL;
    return -1;
}

/* Record a section header seen by the reader. */
static int add_section(parse_ctx *x, const char *hdr, int line)
{
    cm_conf *c = x->c;
    char *name, *arg;
    if (split_header(hdr, &name, &arg) != 0) {
        cm_conf_errf(c, line, x->err, x->errlen,
                     "malformed section header [%s] (expected [name] or [name \"argument\"])", hdr);
        return -1;
    }
    for (size_t i = 0; i < c->nsections; i++) {
        cm_conf_section *s = &c->sections[i];
        int same_arg = (!s->arg && !arg) || (s->arg && arg && strcmp(s->arg, arg) == 0);
        if (strcmp(s->name, name) == 0 && same_arg) {
            cm_conf_errf(c, line, x->err, x->errlen, "section [%s] repeated (first at line %d)",
                         hdr, s->line);
            free(name);
            free(arg);
            return -1;
        }
    }
    cm_conf_section *ns = realloc(c->sections, (c->nsections + 1) * sizeof *ns);
    if (!ns) {
        free(name);
        free(arg);
        return -1;
    }
    c->sections = ns;
    c->sections[c->nsections++] = (cm_conf_section){.name = name, .arg = arg, .line = line};
    return 0;
}

/* inih reader: fgets that counts lines and records section headers with their line. */
static char *reader(char *str, int num, void *stream)
{
    parse_ctx *x = stream;
    if (x->failed) return NULL;
    char *r = fgets(str, num, x->f);
    if (!r) return NULL;
    int continued = x->mid_line;
    size_t rl = strlen(r);
    x->mid_line = rl > 0 && r[rl - 1] != '\n';
    if (continued) return r;
    x->line++;
    const char *p = str;
    while (isspace((unsigned char)*p)) p++;
    if (*p == '[') {
        const char *end = strrchr(p, ']');
        if (end) {
            char hdr[256];
            size_t n = (size_t)(end - p - 1);
            if (n >= sizeof hdr) n = sizeof hdr - 1;
            memcpy(hdr, p + 1, n);
            hdr[n] = '\0';
            /* trim */
            char *h = hdr;
            while (isspace((unsigned char)*h)) h++;
            size_t hl = strlen(h);
            while (hl && isspace((unsigned char)h[hl - 1])) h[--hl] = '\0';
            if (add_section(x, h, x->line) != 0) {
                x->failed = 1;
                return NULL;
            }
        } else {
            cm_conf_errf(x->c, x->line, x->err, x->errlen,
                         "malformed section header (missing ']')");
            x->failed = 1;
            return NULL;
        }
    }
    return r;
}

static int handler(void *user, const char *section, const char *key, const char *value)
{
    parse_ctx *x = user;
    cm_conf *c = x->c;
    if (!key) return 1;
    if (c->nsections == 0 || section[0] == '\0') {
        cm_conf_errf(c, x->line, x->err, x->errlen, "key '%s' outside of any section", key);
        x->failed = 1;
        return 0;
    }
    cm_conf_section *s = &c->sections[c->nsections - 1];
    for (size_t i = 0; i < s->nentries; i++)
        if (strcmp(s->entries[i].key, key) == 0) {
            cm_conf_errf(c, x->line, x->err, x->errlen, "key '%s' repeated (first at line %d)",
                         key, s->entries[i].line);
            x->failed = 1;
            return 0;
        }
    cm_conf_entry *ne = realloc(s->entries, (s->nentries + 1) * sizeof *ne);
    if (!ne) return 0;
    s->entries = ne;
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return 0;
    }
    s->entries[s->nentries++] = (cm_conf_entry){.key = k, .value = v, .line = x->line};
    return 1;
}

int cm_conf_load(cm_conf *c, const char *path, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->path = strdup(path);
    if (!c->path) return -1;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* Continuation lines would silently glue values together: an on-site technician's
     * indented line is an error instead. */
    ini_allow_multiline = false;
    parse_ctx x = {.c = c, .f = f, .err = err, .errlen = errlen};
    if (err && errlen) err[0] = '\0';
    int rc = ini_parse_stream(reader, &x, handler, &x);
    fclose(f);
    if (x.failed) return -1;
    if (rc > 0) {
        cm_conf_errf(c, rc, err, errlen, "malformed line (expected 'key = value', a [section] "
                                          "or a comment starting with ';' or '#')");
        return -1;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot read (%s)", path, rc == -2 ? "out of memory" : "I/O");
        return -1;
    }
    return 0;
}

void cm_conf_free(cm_conf *c)
{
    for (size_t i = 0; i < c->nsections; i++) {
        cm_conf_section *s = &c->sections[i];
        for (size_t j = 0; j < s->nentries; j++) {
            free(s->entries[j].key);
            free(s->entries[j].value);
        }
        free(s->entries);
        free(s->name);
        free(s->arg);
    }
    free(c->sections);
    free(c->path);
    memset(c, 0, sizeof *c);
}

cm_conf_section *cm_conf_find(cm_conf *c, const char *name, const char *arg)
{
    for (size_t i = 0; i < c->nsections; i++) {
        cm_conf_section *s = &c->sections[i];
        if (strcmp(s->name, name) != 0) continue;
        if (arg && (!s->arg || strcmp(s->arg, arg) != 0)) continue;
        return s;
    }
    return NULL;
}

/* Find and mark an entry; NULL when absent. */
static cm_conf_entry *entry(cm_conf_section *s, const char *key)
{
    if (!s) return NULL;
    for (size_t i = 0; i < s->nentries; i++)
        if (strcmp(s->entries[i].key, key) == 0) {
            s->entries[i].used = true;
            return &s->entries[i];
        }
    return NULL;
}

/* "[device \"x\"]" or "[agent]" for messages. */
static void section_label(const cm_conf_section *s, char *buf, size_t len)
{
    if (s->arg) snprintf(buf, len, "[%s \"%s\"]", s->name, s->arg);
    else snprintf(buf, len, "[%s]", s->name);
}

static int bad(const cm_conf *c, cm_conf_section *s, const cm_conf_entry *e, char *err,
               size_t errlen, const char *why)
{
    char sl[200];
    section_label(s, sl, sizeof sl);
    cm_conf_errf(c, e->line, err, errlen, "key '%s' in %s: %s", e->key, sl, why);
    return -1;
}

int cm_conf_str(const cm_conf *c, cm_conf_section *s, const char *key, const char **out,
                char *err, size_t errlen)
{
    cm_conf_entry *e = entry(s, key);
    if (!e) return 0;
    if (e->value[0] == '\0') return bad(c, s, e, err, errlen, "empty value");
    *out = e->value;
    return 1;
}

int cm_conf_int(const cm_conf *c, cm_conf_section *s, const char *key, int64_t min, int64_t max,
                int64_t *out, char *err, size_t errlen)
{
    cm_conf_entry *e = entry(s, key);
    if (!e) return 0;
    errno = 0;
    char *end;
    long long v = strtoll(e->value, &end, 10);
    if (errno || end == e->value || *end != '\0')
        return bad(c, s, e, err, errlen, "expected a whole number");
    if (v < min || v > max) {
        char why[128];
        snprintf(why, sizeof why, "%lld is out of range %lld..%lld", v, (long long)min,
                 (long long)max);
        return bad(c, s, e, err, errlen, why);
    }
    *out = v;
    return 1;
}

int cm_conf_bool(const cm_conf *c, cm_conf_section *s, const char *key, bool *out, char *err,
                 size_t errlen)
{
    cm_conf_entry *e = entry(s, key);
    if (!e) return 0;
    const char *v = e->value;
    if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1")) *out = true;
    else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
        *out = false;
    else return bad(c, s, e, err, errlen, "expected yes or no");
    return 1;
}

int cm_conf_duration(const cm_conf *c, cm_conf_section *s, const char *key, int64_t min_ms,
                     int64_t max_ms, int64_t *out_ms, char *err, size_t errlen)
{
    cm_conf_entry *e = entry(s, key);
    if (!e) return 0;
    int64_t v;
    if (cm_parse_duration_ms(e->value, &v) != 0)
        return bad(c, s, e, err, errlen, "expected a duration such as 500ms, 30s, 5m, 2h");
    if (v < min_ms || v > max_ms) {
        char why[128];
        snprintf(why, sizeof why, "must be between %lldms and %lldms", (long long)min_ms,
                 (long long)max_ms);
        return bad(c, s, e, err, errlen, why);
    }
    *out_ms = v;
    return 1;
}

int cm_parse_size(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9') return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return -1;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: return -1;
    }
    if (shift && (*end == 'i' || *end == 'I')) end++;
    if (shift && (*end == 'b' || *end == 'B')) end++;
    if (*end != '\0') return -1;
    if (shift && v > (UINT64_MAX >> shift)) return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int cm_conf_size(const cm_conf *c, cm_conf_section *s, const char *key, uint64_t min, uint64_t max,
                 uint64_t *out, char *err, size_t errlen)
{
    cm_conf_entry *e = entry(s, key);
    if (!e) return 0;
    uint64_t v;
    if (cm_parse_size(e->value, &v) != 0)
        return bad(c, s, e, err, errlen, "expected a size such as 4096, 64k, 16M or 1G");
    if (v < min || v > max) {
        char why[128];
        snprintf(why, sizeof why, "must be between %llu and %llu bytes", (unsigned long long)min,
                 (unsigned long long)max);
        return bad(c, s, e, err, errlen, why);
    }
    *out = v;
    return 1;
}

int cm_conf_enum(const cm_conf *c, cm_conf_section *s, const char *key, const char *const *choices,
                 int *out, char *err, size_t errlen)
{
    cm_conf_entry *e = entry(s, key);
    if (!e) return 0;
    char why[256] = "expected one of:";
    for (int i = 0; choices[i]; i++) {
        if (strcmp(e->value, choices[i]) == 0) {
            *out = i;
            return 1;
        }
        size_t l = strlen(why);
        snprintf(why + l, sizeof why - l, " %s", choices[i]);
    }
    return bad(c, s, e, err, errlen, why);
}

int cm_conf_check_unused(const cm_conf *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->nsections; i++) {
        cm_conf_section *s = &c->sections[i];
        for (size_t j = 0; j < s->nentries; j++)
            if (!s->entries[j].used) {
                char sl[200];
                section_label(s, sl, sizeof sl);
                cm_conf_errf(c, s->entries[j].line, err, errlen, "unknown key '%s' in %s",
                             s->entries[j].key, sl);
                return -1;
            }
    }
    return 0;
}

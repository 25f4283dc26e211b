/* csvimport.c — RFC 4180 reader for the sites-and-screens register, and its import. */
#include "csvimport.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "batch.h"
#include "errbuf.h"

#define MAX_COLS 64

enum {
    C_CODE,
    C_NAME,
    C_PROVINCE,
    C_CITY,
    C_HALL,
    C_HALL_NAME,
    C_CLASS,
    C_DISPLAY,
    C_FORMAT,
    C_CHAIN,
    C_NKNOWN,
    C_SPL = 100
};

static const char *const COLS[C_NKNOWN] = {"cinema_code", "cinema_name", "province", "city",
                                           "hall_code",   "hall_name",   "class",    "display",
                                           "format",      "chain"};

/* One parsed record: fields point into the reader's buffer (unescaped in place). */
typedef struct record {
    char *f[MAX_COLS];
    size_t n;
    long line; /* first line of the record */
} record;

typedef struct reader {
    char *p, *end;
    long line;
} reader;

/* Read one record; quoted fields may hold commas, CR/LF and "" (a quote). Returns 1 with a
 * record, 0 at the end, -1 on a syntax error (err filled). */
static int next_record(reader *r, record *rec, const char *name, char *err, size_t errlen)
{
    if (r->p >= r->end) return 0;
    rec->n = 0;
    rec->line = r->line;
    for (;;) {
        if (rec->n == MAX_COLS) {
            cm_seterr(err, errlen, "%s:%ld: more than %d columns", name, r->line, MAX_COLS);
            return -1;
        }
        char *out = r->p, *start = r->p;
        if (r->p < r->end && *r->p == '"') {
            r->p++;
            for (;;) {
                if (r->p >= r->end) {
                    cm_seterr(err, errlen, "%s:%ld: unterminated quoted field", name, rec->line);
                    return -1;
                }
                char c = *r->p++;
                if (c == '"') {
                    if (r->p < r->end && *r->p == '"') {
                        *out++ = '"';
                        r->p++;
                        continue;
                    }
                    break;
                }
                if (c == '\n') r->line++;
                *out++ = c;
            }
            if (r->p < r->end && *r->p != ',' && *r->p != '\n' && *r->p != '\r') {
                cm_seterr(err, errlen, "%s:%ld: text after a closing quote", name, r->line);
                return -1;
            }
        } else {
            while (r->p < r->end && *r->p != ',' && *r->p != '\n' && *r->p != '\r') {
                if (*r->p == '"') {
                    cm_seterr(err, errlen, "%s:%ld: a quote inside an unquoted field", name,
                              r->line);
                    return -1;
                }
                r->p++;
            }
            out = r->p;
        }
        char sep = r->p < r->end ? *r->p : '\n';
        if (r->p < r->end) r->p++; /* past the separator */
        if (sep == '\r' && r->p < r->end && *r->p == '\n') r->p++;
        *out = '\0'; /* on the separator or a byte already consumed */
        rec->f[rec->n++] = start;
        if (sep == ',') continue;
        r->line++;
        return 1;
    }
}

/* A cell: trimmed of spaces; NULL when empty. */
static const char *cell(record *rec, int col)
{
    if (col < 0 || (size_t)col >= rec->n) return NULL;
    char *s = rec->f[col];
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return n ? s : NULL;
}

static int check_text(const char *v, const char *col, const char *name, long line, size_t max,
                      char *err, size_t errlen)
{
    if (!v) return 0;
    if (strlen(v) > max) {
        cm_seterr(err, errlen, "%s:%ld: column '%s' is longer than %zu bytes", name, line, col,
                  max);
        return -1;
    }
    for (const unsigned char *c = (const unsigned char *)v; *c; c++)
        if (*c < 0x20 || *c == 0x7f) {
            cm_seterr(err, errlen, "%s:%ld: column '%s' contains a control character", name, line,
                      col);
            return -1;
        }
    return 0;
}

int co_csv_import(co_store *s, const char *name, const char *buf, size_t len, size_t *nsites,
                  size_t *nscreens, char *err, size_t errlen)
{
    int rc = -1;
    char *text = malloc(len + 1);
    co_site *sites = NULL;
    co_screen *screens = NULL;
    char **spl = NULL; /* owned JSON texts, one per screen */
    size_t ns = 0, nc = 0, cap = 0;
    if (!text) {
        cm_seterr(err, errlen, "%s: out of memory", name);
        return -1;
    }
    memcpy(text, buf, len);
    text[len] = '\0';
    reader r = {text, text + len, 1};
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) r.p += 3; /* a spreadsheet's BOM */
    record hdr, rec;
    int got = next_record(&r, &hdr, name, err, errlen);
    if (got <= 0) {
        if (got == 0) cm_seterr(err, errlen, "%s:1: empty file (a header row is required)", name);
        goto out;
    }
    int col[MAX_COLS];
    const char *spl_ch[MAX_COLS] = {0};
    int have_code = 0;
    for (size_t i = 0; i < hdr.n; i++) {
        const char *h = cell(&hdr, (int)i);
        col[i] = -1;
        if (!h) {
            cm_seterr(err, errlen, "%s:1: column %zu has no name", name, i + 1);
            goto out;
        }
        for (int k = 0; k < C_NKNOWN; k++)
            if (!strcasecmp(h, COLS[k])) col[i] = k;
        if (col[i] < 0 && !strncasecmp(h, "spl_", 4) && h[4]) {
            col[i] = C_SPL;
            spl_ch[i] = h + 4;
            if (check_text(spl_ch[i], h, name, 1, 16, err, errlen) < 0) goto out;
        }
        if (col[i] < 0) {
            cm_seterr(err, errlen,
                      "%s:1: unknown column '%.64s' (known: cinema_code, cinema_name, province, "
                      "city, chain, hall_code, hall_name, class, display, format, "
                      "spl_<channel>)",
                      name, h);
            goto out;
        }
        for (size_t j = 0; j < i; j++)
            if (col[j] == col[i] && (col[i] != C_SPL || !strcasecmp(spl_ch[i], spl_ch[j]))) {
                cm_seterr(err, errlen, "%s:1: column '%.64s' appears twice", name, h);
                goto out;
            }
        if (col[i] == C_CODE) have_code = 1;
    }
    if (!have_code) {
        cm_seterr(err, errlen, "%s:1: the column cinema_code is required", name);
        goto out;
    }
    while ((got = next_record(&r, &rec, name, err, errlen)) == 1) {
        if (rec.n == 1 && !cell(&rec, 0)) continue; /* a blank line */
        if (rec.n != hdr.n) {
            cm_seterr(err, errlen, "%s:%ld: %zu columns where the header has %zu", name, rec.line,
                      rec.n, hdr.n);
            goto out;
        }
        if (ns == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            co_site *a = realloc(sites, ncap * sizeof *a);
            if (a) sites = a;
            co_screen *b = realloc(screens, ncap * sizeof *b);
            if (b) screens = b;
            char **c = realloc(spl, ncap * sizeof *c);
            if (c) spl = c;
            if (!a || !b || !c) {
                cm_seterr(err, errlen, "%s: out of memory", name);
                goto out;
            }
            cap = ncap;
        }
        co_site st = {0};
        co_screen sc = {0};
        json_t *ref = NULL;
        for (size_t i = 0; i < rec.n; i++) {
            const char *v = cell(&rec, (int)i);
            const char *cname = col[i] == C_SPL ? "spl" : COLS[col[i]];
            if (check_text(v, cname, name, rec.line,
                           col[i] == C_CODE || col[i] == C_HALL ? CM_MAX_NAME : 256, err,
                           errlen) < 0) {
                json_decref(ref);
                goto out;
            }
            switch (col[i]) {
            case C_CODE:
                st.code = sc.site = v;
                break;
            case C_NAME:
                st.name = v;
                break;
            case C_PROVINCE:
                st.province = v;
                break;
            case C_CITY:
                st.city = v;
                break;
            case C_CHAIN:
                st.chain = v;
                break;
            case C_HALL:
                sc.screen = v;
                break;
            case C_HALL_NAME:
                sc.name = v;
                break;
            case C_CLASS:
                sc.class_ = v;
                break;
            case C_DISPLAY:
                sc.display = v;
                break;
            case C_FORMAT:
                sc.format = v;
                break;
            case C_SPL: {
                if (!v) break;
                char *end;
                errno = 0;
                double d = strtod(v, &end);
                if (errno || *end || d < 40 || d > 130) {
                    cm_seterr(err, errlen,
                              "%s:%ld: column 'spl_%s': '%.32s' is not a level in dBC (40-130)",
                              name, rec.line, spl_ch[i], v);
                    json_decref(ref);
                    goto out;
                }
                if (!ref) ref = json_object();
                if (!ref || json_object_set_new(ref, spl_ch[i], json_real(d)) < 0) {
                    json_decref(ref);
                    cm_seterr(err, errlen, "%s: out of memory", name);
                    goto out;
                }
                break;
            }
            }
        }
        if (!st.code) {
            json_decref(ref);
            cm_seterr(err, errlen, "%s:%ld: cinema_code is empty", name, rec.line);
            goto out;
        }
        if (sc.class_ && !co_screen_class_valid(sc.class_)) {
            json_decref(ref);
            cm_seterr(err, errlen, "%s:%ld: column 'class': '%.32s' is not theatre or review", name,
                      rec.line, sc.class_);
            goto out;
        }
        if (sc.display && !co_screen_display_valid(sc.display)) {
            json_decref(ref);
            cm_seterr(err, errlen, "%s:%ld: column 'display': '%.32s' is not projection or led",
                      name, rec.line, sc.display);
            goto out;
        }
        if (!sc.screen && (sc.name || sc.class_ || sc.display || sc.format || ref)) {
            json_decref(ref);
            cm_seterr(err, errlen, "%s:%ld: hall settings without a hall_code", name, rec.line);
            goto out;
        }
        spl[nc] = ref ? json_dumps(ref, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(ref);
        sites[ns++] = st;
        if (sc.screen) {
            sc.spl_ref_json = spl[nc];
            screens[nc++] = sc;
        } else {
            free(spl[nc]);
        }
    }
    if (got < 0) goto out;
    rc = co_store_import(s, sites, ns, screens, nc, "import", err, errlen);
    if (rc == 0) {
        if (nsites) *nsites = ns;
        if (nscreens) *nscreens = nc;
    }
out:
    for (size_t i = 0; i < nc; i++)
        free(spl[i]);
    free(spl);
    free(sites);
    free(screens);
    free(text);
    return rc;
}

int co_csv_import_file(co_store *s, const char *path, size_t *nsites, size_t *nscreens, char *err,
                       size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cm_seterr(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > CO_CSV_MAX_BYTES) {
        cm_seterr(err, errlen, "%s: not a regular file of at most %u bytes", path,
                  CO_CSV_MAX_BYTES);
        fclose(f);
        return -1;
    }
    size_t len = (size_t)sb.st_size;
    char *buf = malloc(len ? len : 1);
    if (!buf || fread(buf, 1, len, f) != len) {
        cm_seterr(err, errlen, "%s: cannot read", path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    int rc = co_csv_import(s, path, buf, len, nsites, nscreens, err, errlen);
    free(buf);
    return rc;
}

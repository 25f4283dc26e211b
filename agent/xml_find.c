/* xml_find.c — tokens of an XML answer, checked against the buffer's end at every step
 * (see xml_find.h). */
#include "xml_find.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef enum { T_EOF, T_TEXT, T_CDATA, T_START, T_END, T_OTHER } tok_kind;

typedef struct tok {
    tok_kind kind;
    size_t at;       /* offset of the token */
    size_t a, b;     /* T_TEXT/T_CDATA: content; T_START/T_END: the name */
    int empty;       /* T_START: <x/> */
    const char *why; /* when next_tok fails */
} tok;

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int name_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || c >= 0x80;
}

static int name_char(unsigned char c)
{
    return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* Does buf[pos..len) start with s? */
static int starts(const char *buf, size_t len, size_t pos, const char *s)
{
    size_t n = strlen(s);
    return pos <= len && len - pos >= n && memcmp(buf + pos, s, n) == 0;
}

/* Offset of s in buf[pos..len), or len when absent. */
static size_t find_str(const char *buf, size_t len, size_t pos, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = pos; i < len && len - i >= n; i++)
        if (buf[i] == s[0] && memcmp(buf + i, s, n) == 0) return i;
    return len;
}

/* A name at *pos: advances past it. 0, or -1. */
static int read_name(const char *buf, size_t len, size_t *pos)
{
    size_t p = *pos;
    if (p >= len || !name_start((unsigned char)buf[p])) return -1;
    while (p < len && name_char((unsigned char)buf[p]))
        p++;
    if (p - *pos > AG_XML_MAX_NAME) return -1;
    *pos = p;
    return 0;
}

/* An entity reference at buf[pos] == '&': its code point and length. 0, or -1. */
static int entity(const char *buf, size_t len, size_t pos, unsigned long *cp, size_t *n)
{
    size_t semi = pos + 1;
    while (semi < len && semi - pos <= 10 && buf[semi] != ';')
        semi++;
    if (semi >= len || buf[semi] != ';') return -1;
    const char *e = buf + pos + 1;
    size_t el = semi - pos - 1;
    *n = semi - pos + 1;
    static const struct {
        const char *name;
        char ch;
    } named[] = {{"lt", '<'}, {"gt", '>'}, {"amp", '&'}, {"quot", '"'}, {"apos", '\''}};
    for (size_t i = 0; i < sizeof named / sizeof *named; i++)
        if (el == strlen(named[i].name) && memcmp(e, named[i].name, el) == 0) {
            *cp = (unsigned char)named[i].ch;
            return 0;
        }
    if (el < 2 || e[0] != '#') return -1;
    int hex = e[1] == 'x';
    size_t i = hex ? 2 : 1;
    if (i >= el) return -1;
    unsigned long v = 0;
    for (; i < el; i++) {
        char c = e[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (hex && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (hex && c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * (hex ? 16u : 10u) + (unsigned long)d;
        if (v > 0x10FFFF) return -1;
    }
    /* XML 1.0 Char */
    if (!(v == 0x9 || v == 0xA || v == 0xD || (v >= 0x20 && v <= 0xD7FF) ||
          (v >= 0xE000 && v <= 0xFFFD) || (v >= 0x10000 && v <= 0x10FFFF)))
        return -1;
    *cp = v;
    return 0;
}

/* Every '&' in buf[a..b) starts a valid entity. Offset of the first bad one, or b. */
static size_t check_entities(const char *buf, size_t a, size_t b)
{
    for (size_t i = a; i < b; i++)
        if (buf[i] == '&') {
            unsigned long cp;
            size_t n;
            if (entity(buf, b, i, &cp, &n) < 0) return i;
            i += n - 1;
        }
    return b;
}

/* The token at *pos; advances past it. 0, or -1 with t->why and t->at. */
static int next_tok(const char *buf, size_t len, size_t *pos, tok *t)
{
    size_t p = *pos;
    memset(t, 0, sizeof *t);
    t->at = p;
    if (p >= len) {
        t->kind = T_EOF;
        return 0;
    }
    if (buf[p] != '<') {
        size_t e = p;
        while (e < len && buf[e] != '<')
            e++;
        t->kind = T_TEXT;
        t->a = p;
        t->b = e;
        *pos = e;
        return 0;
    }
    if (starts(buf, len, p, "<!--")) {
        size_t e = find_str(buf, len, p + 4, "-->");
        if (e >= len) return t->why = "unterminated comment", -1;
        t->kind = T_OTHER;
        *pos = e + 3;
        return 0;
    }
    if (starts(buf, len, p, "<![CDATA[")) {
        size_t e = find_str(buf, len, p + 9, "]]>");
        if (e >= len) return t->why = "unterminated CDATA section", -1;
        t->kind = T_CDATA;
        t->a = p + 9;
        t->b = e;
        *pos = e + 3;
        return 0;
    }
    if (starts(buf, len, p, "<!")) return t->why = "DOCTYPE or declaration not supported", -1;
    if (starts(buf, len, p, "<?")) {
        size_t e = find_str(buf, len, p + 2, "?>");
        if (e >= len) return t->why = "unterminated processing instruction", -1;
        t->kind = T_OTHER;
        *pos = e + 2;
        return 0;
    }
    int end = starts(buf, len, p, "</");
    p += end ? 2 : 1;
    t->a = p;
    if (read_name(buf, len, &p) < 0) return t->why = "bad or overlong element name", -1;
    t->b = p;
    if (end) {
        while (p < len && is_space(buf[p]))
            p++;
        if (p >= len || buf[p] != '>') return t->why = "unterminated end tag", -1;
        t->kind = T_END;
        *pos = p + 1;
        return 0;
    }
    for (;;) {
        size_t sp = p;
        while (p < len && is_space(buf[p]))
            p++;
        if (p >= len) return t->why = "unterminated start tag", -1;
        if (buf[p] == '>') {
            p++;
            break;
        }
        if (buf[p] == '/') {
            if (p + 1 >= len || buf[p + 1] != '>') return t->why = "'/' without '>' in a tag", -1;
            t->empty = 1;
            p += 2;
            break;
        }
        if (sp == p) return t->why = "attribute without white space before it", -1;
        if (read_name(buf, len, &p) < 0) return t->why = "bad attribute name", -1;
        while (p < len && is_space(buf[p]))
            p++;
        if (p >= len || buf[p] != '=') return t->why = "attribute without '='", -1;
        p++;
        while (p < len && is_space(buf[p]))
            p++;
        if (p >= len || (buf[p] != '"' && buf[p] != '\'')) return t->why = "unquoted attribute", -1;
        char q = buf[p++];
        size_t vs = p;
        while (p < len && buf[p] != q && buf[p] != '<')
            p++;
        if (p >= len || buf[p] != q) return t->why = "unterminated attribute value", -1;
        if (check_entities(buf, vs, p) != p) return t->why = "bad entity in an attribute", -1;
        p++;
    }
    t->kind = T_START;
    *pos = p;
    return 0;
}

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int only_space(const char *buf, size_t a, size_t b)
{
    for (size_t i = a; i < b; i++)
        if (!is_space(buf[i])) return 0;
    return 1;
}

int ag_xml_check(const char *buf, size_t len, char *err, size_t errlen)
{
    struct {
        size_t a, b;
    } stack[AG_XML_MAX_DEPTH];
    size_t depth = 0, pos = 0;
    int roots = 0;
    if (!buf) len = 0;
    /* a UTF-8 byte order mark */
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) pos = 3;
    for (;;) {
        tok t;
        if (next_tok(buf, len, &pos, &t) < 0) {
            fail(err, errlen, "%s at byte %zu", t.why, t.at);
            return -1;
        }
        switch (t.kind) {
        case T_EOF:
            if (depth > 0) {
                fail(err, errlen, "element <%.*s> not closed at the end (byte %zu)",
                     (int)(stack[depth - 1].b - stack[depth - 1].a), buf + stack[depth - 1].a, len);
                return -1;
            }
            if (!roots) {
                fail(err, errlen, "no element at all");
                return -1;
            }
            return 0;
        case T_TEXT:
        case T_CDATA:
            if (t.b - t.a > AG_XML_MAX_TEXT) {
                fail(err, errlen, "text longer than %d bytes at byte %zu", AG_XML_MAX_TEXT, t.at);
                return -1;
            }
            if (depth == 0 && (t.kind == T_CDATA || !only_space(buf, t.a, t.b))) {
                fail(err, errlen, "text outside the root element at byte %zu", t.at);
                return -1;
            }
            if (t.kind == T_TEXT) {
                size_t bad = check_entities(buf, t.a, t.b);
                if (bad != t.b) {
                    fail(err, errlen, "bad entity at byte %zu", bad);
                    return -1;
                }
            }
            break;
        case T_OTHER:
            break;
        case T_START:
            if (depth == 0 && roots++) {
                fail(err, errlen, "a second root element at byte %zu", t.at);
                return -1;
            }
            if (t.empty) break;
            if (depth >= AG_XML_MAX_DEPTH) {
                fail(err, errlen, "elements nested deeper than %d at byte %zu", AG_XML_MAX_DEPTH,
                     t.at);
                return -1;
            }
            stack[depth].a = t.a;
            stack[depth].b = t.b;
            depth++;
            break;
        case T_END:
            if (depth == 0) {
                fail(err, errlen, "end tag without a start tag at byte %zu", t.at);
                return -1;
            }
            depth--;
            if (t.b - t.a != stack[depth].b - stack[depth].a ||
                memcmp(buf + t.a, buf + stack[depth].a, t.b - t.a) != 0) {
                fail(err, errlen, "</%.*s> closes <%.*s> at byte %zu", (int)(t.b - t.a), buf + t.a,
                     (int)(stack[depth].b - stack[depth].a), buf + stack[depth].a, t.at);
                return -1;
            }
            break;
        }
    }
}

int ag_xml_name_ok(const char *s)
{
    if (!s) return 0;
    size_t n = strlen(s);
    if (n == 0 || n > AG_XML_MAX_NAME) return 0;
    size_t p = 0;
    if (n > 2 && s[0] == '*' && s[1] == ':') {
        p = 2;
        if (strchr(s + 2, ':')) return 0;
    }
    if (read_name(s, n, &p) < 0 || p != n) return 0;
    return 1;
}

/* Does the tag name buf[a..b) match the wanted name? */
static int name_matches(const char *buf, size_t a, size_t b, const char *name, size_t nlen)
{
    if (nlen > 2 && name[0] == '*' && name[1] == ':') {
        size_t l = a;
        for (size_t i = a; i < b; i++)
            if (buf[i] == ':') l = i + 1;
        return b - l == nlen - 2 && memcmp(buf + l, name + 2, nlen - 2) == 0;
    }
    return b - a == nlen && memcmp(buf + a, name, nlen) == 0;
}

int ag_xml_find(const char *buf, size_t len, size_t from, const char *name, ag_xml_elem *out)
{
    if (!buf || !name || from > len) return 0;
    size_t nlen = strlen(name), pos = from;
    for (;;) {
        tok t;
        if (next_tok(buf, len, &pos, &t) < 0) return -1;
        if (t.kind == T_EOF) return 0;
        if (t.kind != T_START || !name_matches(buf, t.a, t.b, name, nlen)) continue;
        size_t na = t.a, nb = t.b;
        out->start = pos;
        if (t.empty) {
            out->end = out->next = pos;
            return 1;
        }
        size_t depth = 1;
        for (;;) {
            size_t at = pos;
            if (next_tok(buf, len, &pos, &t) < 0 || t.kind == T_EOF) return -1;
            if (t.kind == T_START && !t.empty) {
                if (++depth > AG_XML_MAX_DEPTH) return -1;
            } else if (t.kind == T_END && --depth == 0) {
                if (t.b - t.a != nb - na || memcmp(buf + t.a, buf + na, nb - na) != 0) return -1;
                out->end = at;
                out->next = pos;
                return 1;
            }
        }
    }
}

/* Append the UTF-8 of cp to out[*n..cap - 1). 0 or -1. */
static int put_utf8(unsigned long cp, char *out, size_t cap, size_t *n)
{
    char u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    if (cap - 1 - *n < k) return -1;
    memcpy(out + *n, u, k);
    *n += k;
    return 0;
}

int ag_xml_text(const char *buf, size_t len, char *out, size_t outlen, char *err, size_t errlen)
{
    if (!out || !outlen) return -1;
    out[0] = '\0';
    size_t pos = 0, n = 0;
    if (!buf) len = 0;
    for (;;) {
        tok t;
        if (next_tok(buf, len, &pos, &t) < 0) {
            fail(err, errlen, "%s", t.why);
            return -1;
        }
        if (t.kind == T_EOF) break;
        if (t.kind == T_OTHER) continue;
        if (t.kind == T_START || t.kind == T_END) {
            fail(err, errlen, "holds elements, not text");
            return -1;
        }
        for (size_t i = t.a; i < t.b; i++) {
            unsigned long cp = (unsigned char)buf[i];
            if (t.kind == T_TEXT && buf[i] == '&') {
                size_t k;
                if (entity(buf, t.b, i, &cp, &k) < 0) {
                    fail(err, errlen, "bad entity");
                    return -1;
                }
                i += k - 1;
                if (put_utf8(cp, out, outlen, &n) < 0) goto too_long;
                continue;
            }
            if (n + 1 >= outlen) goto too_long;
            out[n++] = buf[i];
        }
    }
    out[n] = '\0';
    /* trim */
    size_t a = 0;
    while (a < n && is_space(out[a]))
        a++;
    while (n > a && is_space(out[n - 1]))
        n--;
    memmove(out, out + a, n - a);
    out[n - a] = '\0';
    return 0;
too_long:
    out[0] = '\0';
    fail(err, errlen, "text longer than %zu bytes", outlen - 1);
    return -1;
}

size_t ag_xml_escape(const char *s, char *out, size_t cap)
{
    size_t n = 0, written = 0; /* written stops growing at the first piece that does not fit */
    for (; s && *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        default:
            break;
        }
        size_t k = rep ? strlen(rep) : 1;
        if (out && n == written && n + k < cap) {
            memcpy(out + n, rep ? rep : s, k);
            written += k;
        }
        n += k;
    }
    if (out && cap) out[written] = '\0';
    return n;
}

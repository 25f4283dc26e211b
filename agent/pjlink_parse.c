/* pjlink_parse.c — PJLink greeting, reply and value parsing (no I/O, no allocation). */
#include "pjlink_parse.h"

#include <string.h>

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Bytes a line may hold: everything but control characters (non-ASCII is allowed for
 * Class 2 UTF-8 names and turned into '?' by pj_value_text). */
static int line_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) return 0;
    }
    return 1;
}

static int eq(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(s, lit, n) == 0;
}

int pj_parse_greeting(const char *line, size_t len, pj_greeting *out, const char **why)
{
    const char *w = NULL;
    memset(out, 0, sizeof *out);
    if (len + 1 > PJ_MAX_PACKET) {
        w = "greeting too long";
    } else if (!line_ok(line, len)) {
        w = "control characters in greeting";
    } else if (eq(line, len, "PJLINK ERRA")) {
        return PJ_ERRA;
    } else if (eq(line, len, "PJLINK 0")) {
        return 0;
    } else if (len > 9 && memcmp(line, "PJLINK 1 ", 9) == 0) {
        size_t n = len - 9;
        if (n > PJ_MAX_RANDOM) {
            w = "authentication random too long";
        } else {
            for (size_t i = 0; i < n; i++)
                if (line[9 + i] == ' ') w = "space in authentication random";
            if (!w) {
                out->auth = 1;
                memcpy(out->random, line + 9, n);
                out->random[n] = '\0';
                return 0;
            }
        }
    } else if (len >= 8 && memcmp(line, "PJLINK ", 7) == 0) {
        w = "unsupported authentication scheme";
    } else {
        w = "not a PJLink greeting";
    }
    if (why) *why = w;
    return -1;
}

pj_kind pj_parse_reply(const char *line, size_t len, char cls, const char *cmd, pj_reply *out)
{
    out->value = NULL;
    out->len = 0;
    out->why = NULL;
    if (len + 1 > PJ_MAX_PACKET) {
        out->why = "reply too long";
        return PJ_BAD;
    }
    if (!line_ok(line, len)) {
        out->why = "control characters in reply";
        return PJ_BAD;
    }
    if (eq(line, len, "PJLINK ERRA")) return PJ_ERRA;
    if (len < 7 || line[0] != '%' || line[6] != '=') {
        out->why = "not a PJLink reply";
        return PJ_BAD;
    }
    if (line[1] != cls || memcmp(line + 2, cmd, 4) != 0) {
        out->why = "reply to another command";
        return PJ_BAD;
    }
    const char *v = line + 7;
    size_t n = len - 7;
    if (eq(v, n, "ERR1")) return PJ_ERR1;
    if (eq(v, n, "ERR2")) return PJ_ERR2;
    if (eq(v, n, "ERR3")) return PJ_ERR3;
    if (eq(v, n, "ERR4")) return PJ_ERR4;
    if (eq(v, n, "ERRA")) return PJ_ERRA;
    out->value = v;
    out->len = n;
    return PJ_VALUE;
}

int pj_value_class(const char *v, size_t len, int *cls)
{
    if (len != 1 || v[0] < '1' || v[0] > '9') return -1;
    *cls = v[0] - '0';
    return 0;
}

int pj_value_power(const char *v, size_t len, int *code)
{
    if (len != 1 || v[0] < '0' || v[0] > '3') return -1;
    *code = v[0] - '0';
    return 0;
}

int pj_value_errors(const char *v, size_t len, int out[6])
{
    if (len != 6) return -1;
    for (size_t i = 0; i < 6; i++) {
        if (v[i] < '0' || v[i] > '2') return -1;
        out[i] = v[i] - '0';
    }
    return 0;
}

int pj_value_uint(const char *v, size_t len, long *out)
{
    if (len == 0 || len > 9) return -1;
    long x = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(v[i])) return -1;
        x = x * 10 + (v[i] - '0');
    }
    *out = x;
    return 0;
}

int pj_value_lamps(const char *v, size_t len, pj_lamp *out, size_t max, size_t *n)
{
    size_t count = 0, i = 0;
    int field = 0; /* 0: hours next, 1: on/off next */
    long hours = 0;
    for (;;) {
        while (i < len && v[i] == ' ')
            i++;
        if (i >= len) break;
        size_t start = i;
        while (i < len && v[i] != ' ')
            i++;
        long x;
        if (pj_value_uint(v + start, i - start, &x) < 0) return -1;
        if (field == 0) {
            hours = x;
            field = 1;
            continue;
        }
        if (x > 1 || i - start != 1) return -1;
        if (count >= max) return -1;
        out[count].hours = hours;
        out[count].on = (int)x;
        count++;
        field = 0;
    }
    if (field != 0 || count == 0) return -1;
    *n = count;
    return 0;
}

int pj_value_input(const char *v, size_t len, int *input)
{
    if (len != 2 || v[0] < '1' || v[0] > '6') return -1;
    int type = v[0] - '0';
    if (v[1] >= '1' && v[1] <= '9') {
        *input = type * 10 + (v[1] - '0');
        return 0;
    }
    if (v[1] >= 'A' && v[1] <= 'Z') {
        *input = type * 100 + 10 + (v[1] - 'A');
        return 0;
    }
    return -1;
}

int pj_value_mute(const char *v, size_t len, int *audio, int *video)
{
    if (len != 2 || (v[1] != '0' && v[1] != '1')) return -1;
    int on = v[1] == '1';
    switch (v[0]) {
    case '1':
        *video = on;
        *audio = 0;
        return 0;
    case '2':
        *audio = on;
        *video = 0;
        return 0;
    case '3':
        *audio = *video = on;
        return 0;
    default:
        return -1;
    }
}

size_t pj_value_text(const char *v, size_t len, char *out, size_t outlen)
{
    while (len > 0 && v[len - 1] == ' ')
        len--;
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < outlen; i++) {
        unsigned char c = (unsigned char)v[i];
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[o] = '\0';
    return o;
}

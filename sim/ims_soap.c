/* ims_soap.c — the simulated Dolby IMS-like SOAP server (see ims_soap.h). */
#include "ims_soap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define OUT_MAX 65536

/* ---- a bounded output buffer -------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int bad; /* out of memory or over OUT_MAX */
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->bad) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = cap <= OUT_MAX ? realloc(b->p, cap) : NULL;
        if (!q) {
            b->bad = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* Text content or attribute value, XML-escaped. */
static void sb_esc(sbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            sb_str(b, "&amp;");
            break;
        case '<':
            sb_str(b, "&lt;");
            break;
        case '>':
            sb_str(b, "&gt;");
            break;
        case '"':
            sb_str(b, "&quot;");
            break;
        case '\'':
            sb_str(b, "&apos;");
            break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r') break;
            sb_put(b, s, 1);
        }
    }
}

/* <prefix:name>escaped value</prefix:name> */
static void sb_elem(sbuf *b, const char *name, const char *value)
{
    sb_str(b, "<");
    sb_str(b, name);
    sb_str(b, ">");
    sb_esc(b, value);
    sb_str(b, "</");
    sb_str(b, name);
    sb_str(b, ">");
}

static void env_open(sbuf *b)
{
    sb_str(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
              "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" "
              "xmlns:ns1=\"" SIM_IMS_NS "\" xmlns:sys=\"" SIM_IMS_NS "\">"
              "<SOAP-ENV:Body>");
}

static void env_close(sbuf *b)
{
    sb_str(b, "</SOAP-ENV:Body></SOAP-ENV:Envelope>\n");
}

/* ---- reading the request -------------------------------------------------------------------- */

static int is_name(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

/* Find the element <local ...> or <prefix:local ...> in b[0..n): 1 with its content span
 * (up to the next "</"; empty for <x/>), 0 when absent. */
static int find_elem(const char *b, size_t n, const char *local, const char **cs, size_t *cl)
{
    size_t ln = strlen(local), from = 0;
    while (from < n) {
        const char *p = memmem(b + from, n - from, local, ln);
        if (!p) return 0;
        size_t i = (size_t)(p - b), after = i + ln;
        from = i + 1;
        if (after >= n) return 0;
        char a = b[after];
        if (a != '>' && a != '/' && a != ' ' && a != '\t' && a != '\r' && a != '\n') continue;
        size_t k = i;
        if (k > 0 && b[k - 1] == ':') {
            k--;
            size_t colon = k;
            while (k > 0 && is_name(b[k - 1]))
                k--;
            if (k == colon) continue; /* an empty prefix */
        }
        if (k == 0 || b[k - 1] != '<') continue;
        const char *gt = memchr(b + after, '>', n - after);
        if (!gt) return 0;
        size_t c0 = (size_t)(gt - b) + 1;
        if (gt[-1] == '/') { /* <x/> */
            *cs = b + c0;
            *cl = 0;
            return 1;
        }
        const char *end = memmem(b + c0, n - c0, "</", 2);
        if (!end) return 0;
        *cs = b + c0;
        *cl = (size_t)(end - (b + c0));
        return 1;
    }
    return 0;
}

/* XML text s[0..n) unescaped (the five predefined entities) into dst; -1 when it does not
 * fit or has another entity. Leading and trailing white space is dropped. */
static int unescape(const char *s, size_t n, char *dst, size_t cap)
{
    while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (o + 1 >= cap) return -1;
        if (s[i] != '&') {
            dst[o++] = s[i++];
            continue;
        }
        size_t e = 0;
        while (e < sizeof ents / sizeof *ents) {
            size_t el = strlen(ents[e].ent);
            if (n - i >= el && memcmp(s + i, ents[e].ent, el) == 0) break;
            e++;
        }
        if (e == sizeof ents / sizeof *ents) return -1;
        dst[o++] = ents[e].c;
        i += strlen(ents[e].ent);
    }
    if (cap == 0) return -1;
    dst[o] = '\0';
    return 0;
}

/* ---- the device ---------------------------------------------------------------------------- */

int sim_ims_init(sim_ims *m, int hall, uint64_t seed, const char *user, const char *pass)
{
    memset(m, 0, sizeof *m);
    m->hall = hall;
    uint64_t s = seed ^ ((uint64_t)hall << 32) ^ 0x1335a9ull;
    m->rng = sim_rng_next(&s);
    if (user || pass) {
        if ((user && strlen(user) > SIM_IMS_CRED_MAX) || (pass && strlen(pass) > SIM_IMS_CRED_MAX))
            return -1;
        m->check_login = 1;
        snprintf(m->user, sizeof m->user, "%s", user ? user : "");
        snprintf(m->pass, sizeof m->pass, "%s", pass ? pass : "");
    }
    return 0;
}

int sim_ims_known_path(const char *path)
{
    return strcmp(path, SIM_IMS_PATH_SESSION) == 0 || strcmp(path, SIM_IMS_PATH_SYSINFO) == 0;
}

static int fault(sbuf *b, const char *code, const char *msg)
{
    env_open(b);
    sb_str(b, "<SOAP-ENV:Fault><faultcode>");
    sb_esc(b, code);
    sb_str(b, "</faultcode><faultstring>");
    sb_esc(b, msg);
    sb_str(b, "</faultstring></SOAP-ENV:Fault>");
    env_close(b);
    return 500;
}

/* The session slot of the request's <sessionId>, or -1. */
static int session_of(const sim_ims *m, const char *body, size_t len)
{
    const char *cs;
    size_t cl;
    char id[40];
    if (!find_elem(body, len, "sessionId", &cs, &cl) || unescape(cs, cl, id, sizeof id) != 0)
        return -1;
    if (strlen(id) != 32) return -1;
    for (int i = 0; i < SIM_IMS_MAX_SESSIONS; i++)
        if (m->sessions[i][0] && strcmp(m->sessions[i], id) == 0) return i;
    return -1;
}

static int login(sim_ims *m, const char *body, size_t len, sbuf *b)
{
    if (m->check_login) {
        const char *cs;
        size_t cl;
        char u[SIM_IMS_CRED_MAX + 2], p[SIM_IMS_CRED_MAX + 2];
        if (!find_elem(body, len, "username", &cs, &cl) || unescape(cs, cl, u, sizeof u) != 0 ||
            !find_elem(body, len, "password", &cs, &cl) || unescape(cs, cl, p, sizeof p) != 0 ||
            strcmp(u, m->user) != 0 || strcmp(p, m->pass) != 0)
            return fault(b, "SOAP-ENV:Client", "Login failed: invalid username or password");
    }
    char *slot = m->sessions[m->next % SIM_IMS_MAX_SESSIONS]; /* the oldest is evicted */
    m->next++;
    uint64_t a = sim_rng_next(&m->rng), c = sim_rng_next(&m->rng);
    snprintf(slot, 33, "%016llx%016llx", (unsigned long long)a, (unsigned long long)c);
    env_open(b);
    sb_str(b, "<ns1:LoginResponse>");
    sb_elem(b, "sessionId", slot);
    sb_str(b, "</ns1:LoginResponse>");
    env_close(b);
    return 200;
}

static void part(sbuf *b, const char *title, const char *type, const char *vendor,
                 const char *version, const char *model, const char *serial, const char *status)
{
    sb_str(b, "<sys:hardwarePart>");
    sb_elem(b, "sys:title", title);
    sb_elem(b, "sys:type", type);
    sb_elem(b, "sys:vendor", vendor);
    sb_elem(b, "sys:version", version);
    sb_elem(b, "sys:model", model);
    sb_elem(b, "sys:serial", serial);
    sb_elem(b, "sys:status", status);
    sb_str(b, "</sys:hardwarePart>");
}

static int sysinfo(sim_ims *m, const char *body, size_t len, int episode, sbuf *b)
{
    const char *cs;
    size_t cl;
    const char *op =
        find_elem(body, len, "GetHostname", &cs, &cl)                ? "GetHostname"
        : find_elem(body, len, "GetProductInformation", &cs, &cl)    ? "GetProductInformation"
        : find_elem(body, len, "GetHardwareInventoryList", &cs, &cl) ? "GetHardwareInventoryList"
                                                                     : NULL;
    if (!op) return fault(b, "SOAP-ENV:Client", "Unknown operation");
    if (session_of(m, body, len) < 0) return fault(b, "SOAP-ENV:Client", "Invalid session id");
    char s1[48], s2[48], s3[48];
    env_open(b);
    sb_str(b, "<ns1:");
    sb_str(b, op);
    sb_str(b, "Response>");
    if (strcmp(op, "GetHostname") == 0) {
        snprintf(s1, sizeof s1, "hall%d-ims", m->hall);
        snprintf(s2, sizeof s2, "Screen %d", m->hall);
        sb_elem(b, "hostname", s1);
        sb_elem(b, "screenName", s2);
    } else if (strcmp(op, "GetProductInformation") == 0) {
        snprintf(s1, sizeof s1, "SIMIMS%04d", m->hall);
        sb_elem(b, "sys:productName", "IMS3000");
        sb_elem(b, "sys:serialNumber", s1);
        sb_elem(b, "sys:mainSoftwareVersion", "3.2.4-0");
        sb_elem(b, "sys:mainFirmwareVersion", "2.8.14");
    } else {
        snprintf(s1, sizeof s1, "SIMRAID%04d", m->hall);
        snprintf(s2, sizeof s2, "SIMFAN%04d", m->hall);
        snprintf(s3, sizeof s3, "SIMPSU%04d", m->hall);
        part(b, "Storage RAID", "storage", "Dolby", "1.2", "RAID5 3x4TB", s1,
             episode ? "Degraded" : "OK");
        part(b, "Fan 1", "fan", "Dolby", "1.0", "FAN-80", s2, "OK");
        part(b, "PSU", "psu", "Dolby", "1.1", "PSU-450", s3, "OK");
    }
    sb_str(b, "</ns1:");
    sb_str(b, op);
    sb_str(b, "Response>");
    env_close(b);
    return 200;
}

int sim_ims_handle(sim_ims *m, const char *path, const char *body, size_t len, int episode,
                   char **out, size_t *outlen)
{
    sbuf b = {0};
    int status;
    const char *cs;
    size_t cl;
    if (!body) len = 0;
    if (!body) body = "";
    if (strcmp(path, SIM_IMS_PATH_SESSION) == 0) {
        if (find_elem(body, len, "Login", &cs, &cl)) {
            status = login(m, body, len, &b);
        } else if (find_elem(body, len, "Logout", &cs, &cl)) {
            int i = session_of(m, body, len);
            if (i < 0) {
                status = fault(&b, "SOAP-ENV:Client", "Invalid session id");
            } else {
                m->sessions[i][0] = '\0';
                env_open(&b);
                sb_str(&b, "<ns1:LogoutResponse/>");
                env_close(&b);
                status = 200;
            }
        } else {
            status = fault(&b, "SOAP-ENV:Client", "Unknown operation");
        }
    } else if (strcmp(path, SIM_IMS_PATH_SYSINFO) == 0) {
        status = sysinfo(m, body, len, episode, &b);
    } else {
        sb_str(&b, "not found\n");
        status = 404;
    }
    if (b.bad) {
        free(b.p);
        b.p = NULL;
        b.len = 0;
    }
    *out = b.p;
    *outlen = b.len;
    return status;
}

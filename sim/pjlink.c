/* pjlink.c — simulated PJLink projector (see pjlink.h). */
#include "pjlink.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "rng.h"

#define PJ_MAX_LINE 136
#define PJ_TRANSITION_MS 20000 /* warm-up and cooling take 20 simulated seconds */

void sim_pjlink_init(sim_pjlink *p, int hall, uint64_t seed, int64_t start_ms, double speed,
                     const char *password)
{
    memset(p, 0, sizeof *p);
    uint64_t s = seed ^ ((uint64_t)hall << 32) ^ 0x706a6c696e6bull;
    p->hall = hall;
    p->seed = sim_rng_next(&s);
    p->start_ms = start_ms;
    p->speed = speed > 0 ? speed : 1;
    p->lamp_hours0 = 100 + (double)(sim_rng_next(&s) % 3000);
    if (password) snprintf(p->password, sizeof p->password, "%s", password);
    p->power_on = 1;
    p->power_changed_ms = start_ms - 10LL * 60 * 1000;
    memcpy(p->input, "31", 3);
    p->avmt = 30;
}

/* Simulated ms since t0. */
static double sim_ms(const sim_pjlink *p, int64_t t0, int64_t now)
{
    double e = (double)(now - t0);
    return (e < 0 ? 0 : e) * p->speed;
}

/* 0 off, 1 on, 2 cooling, 3 warm-up */
static int power_state(const sim_pjlink *p, int64_t now)
{
    int transition = sim_ms(p, p->power_changed_ms, now) < PJ_TRANSITION_MS;
    if (p->power_on) return transition ? 3 : 1;
    return transition ? 2 : 0;
}

static double lamp_hours(const sim_pjlink *p, int64_t now)
{
    return p->lamp_hours0 + sim_ms(p, p->start_ms, now) / 3.6e6;
}

static size_t greet(void *dev, sim_conn_state *cs, uint64_t random, char *out, size_t cap)
{
    sim_pjlink *p = dev;
    if (!p->password[0]) {
        cs->authed = 1;
        return (size_t)snprintf(out, cap, "PJLINK 0\r");
    }
    snprintf(cs->nonce, sizeof cs->nonce, "%08llx", (unsigned long long)(random & 0xffffffffu));
    cs->authed = 0;
    return (size_t)snprintf(out, cap, "PJLINK 1 %s\r", cs->nonce);
}

static void md5_hex(const char *a, const char *b, char hex[33])
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%s%s", a, b);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (n < 0 || EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_md5(), NULL) != 1 || mdlen != 16) {
        hex[0] = 0;
        return;
    }
    for (unsigned i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static int is_class2(const char *cmd)
{
    static const char *const C2[] = {"SNUM", "SVER", "INNM", "IRES", "RRES", "FILT",
                                     "RLMP", "RFIL", "FREZ", "SVOL", "MVOL", NULL};
    for (int i = 0; C2[i]; i++)
        if (memcmp(cmd, C2[i], 4) == 0) return 1;
    return 0;
}

static int valid_input(const char *v)
{
    static const char *const INST[] = {"11", "31", "32", "33", "51", NULL};
    for (int i = 0; INST[i]; i++)
        if (strcmp(v, INST[i]) == 0) return 1;
    return 0;
}

/* The value part of the reply to %<cls><cmd> <param>, into val. */
static void answer(sim_pjlink *p, char cls, const char *cmd, const char *param, int64_t now,
                   char *val, size_t cap)
{
    int q = strcmp(param, "?") == 0;
    int st = power_state(p, now);
    if (cls == '1' && is_class2(cmd)) {
        snprintf(val, cap, "ERR1");
    } else if (!memcmp(cmd, "POWR", 4)) {
        if (q) {
            snprintf(val, cap, "%d", st);
        } else if (strcmp(param, "0") == 0 || strcmp(param, "1") == 0) {
            int want = param[0] == '1';
            if (st >= 2) {
                snprintf(val, cap, "ERR3"); /* busy warming up or cooling */
            } else {
                if (want != p->power_on) {
                    p->power_on = want;
                    p->power_changed_ms = now;
                }
                snprintf(val, cap, "OK");
            }
        } else {
            snprintf(val, cap, "ERR2");
        }
    } else if (!memcmp(cmd, "INPT", 4)) {
        if (q)
            snprintf(val, cap, "%s", p->input);
        else if (!valid_input(param))
            snprintf(val, cap, "ERR2");
        else if (st != 1)
            snprintf(val, cap, "ERR3");
        else {
            memcpy(p->input, param, 3);
            snprintf(val, cap, "OK");
        }
    } else if (!memcmp(cmd, "AVMT", 4)) {
        if (q) {
            snprintf(val, cap, "%d", p->avmt);
        } else {
            static const char *const OK[] = {"10", "11", "20", "21", "30", "31", NULL};
            int ok = 0;
            for (int i = 0; OK[i]; i++) ok |= strcmp(param, OK[i]) == 0;
            if (!ok) {
                snprintf(val, cap, "ERR2");
            } else {
                p->avmt = (param[0] - '0') * 10 + (param[1] - '0');
                snprintf(val, cap, "OK");
            }
        }
    } else if (!q) {
        /* everything else is a query (FREZ 0/1 aside) */
        if (!memcmp(cmd, "FREZ", 4) && (strcmp(param, "0") == 0 || strcmp(param, "1") == 0)) {
            p->freeze = param[0] == '1';
            snprintf(val, cap, "OK");
        } else {
            snprintf(val, cap, "ERR2");
        }
    } else if (!memcmp(cmd, "ERST", 4)) {
        double h = lamp_hours(p, now);
        /* fan, lamp, temperature, cover, filter, other: lamp warning past 20000 h */
        snprintf(val, cap, "0%c0000", h > 20000 ? '1' : '0');
    } else if (!memcmp(cmd, "LAMP", 4)) {
        snprintf(val, cap, "%lld %d", (long long)lamp_hours(p, now), st == 1 || st == 3);
    } else if (!memcmp(cmd, "INST", 4)) {
        snprintf(val, cap, "11 31 32 33 51");
    } else if (!memcmp(cmd, "NAME", 4)) {
        snprintf(val, cap, "Hall %d lobby projector", p->hall);
    } else if (!memcmp(cmd, "INF1", 4)) {
        snprintf(val, cap, "SIMVISION");
    } else if (!memcmp(cmd, "INF2", 4)) {
        snprintf(val, cap, "PJ-5000 (cinemon-sim)");
    } else if (!memcmp(cmd, "INFO", 4)) {
        snprintf(val, cap, "cinemon-sim PJLink projector");
    } else if (!memcmp(cmd, "CLSS", 4)) {
        snprintf(val, cap, "2");
    } else if (!memcmp(cmd, "SNUM", 4)) {
        snprintf(val, cap, "PJ%08llu", (unsigned long long)(p->seed % 100000000ull));
    } else if (!memcmp(cmd, "SVER", 4)) {
        snprintf(val, cap, "1.2.0");
    } else if (!memcmp(cmd, "IRES", 4) || !memcmp(cmd, "RRES", 4)) {
        snprintf(val, cap, "1920x1080");
    } else if (!memcmp(cmd, "FILT", 4)) {
        snprintf(val, cap, "%lld", (long long)(sim_ms(p, p->start_ms, now) / 3.6e6) + 120);
    } else if (!memcmp(cmd, "RLMP", 4)) {
        snprintf(val, cap, "ELPLP99");
    } else if (!memcmp(cmd, "RFIL", 4)) {
        snprintf(val, cap, "ELPAF99");
    } else if (!memcmp(cmd, "FREZ", 4)) {
        snprintf(val, cap, "%d", p->freeze);
    } else {
        snprintf(val, cap, "ERR1");
    }
}

static long line(void *dev, sim_conn_state *cs, const char *ln, size_t len, int64_t now,
                 char *out, size_t cap, size_t *outlen)
{
    sim_pjlink *p = dev;
    *outlen = 0;
    if (!cs->authed) {
        char want[33];
        md5_hex(cs->nonce, p->password, want);
        if (len < 32 || !want[0] || memcmp(ln, want, 32) != 0) {
            *outlen = (size_t)snprintf(out, cap, "PJLINK ERRA\r");
            return -1;
        }
        cs->authed = 1;
        ln += 32;
        len -= 32;
    }
    /* %<class><CMD> <param> */
    if (len < 7 || ln[0] != '%' || (ln[1] != '1' && ln[1] != '2') || ln[6] != ' ') {
        if (len >= 6 && ln[0] == '%') {
            *outlen = (size_t)snprintf(out, cap, "%.6s=ERR1\r", ln);
            return 0;
        }
        return 0; /* not PJLink: ignored */
    }
    char cmd[5], param[PJ_MAX_LINE + 1];
    memcpy(cmd, ln + 2, 4);
    cmd[4] = 0;
    for (int i = 0; i < 4; i++)
        if (!((cmd[i] >= 'A' && cmd[i] <= 'Z') || (cmd[i] >= '0' && cmd[i] <= '9'))) {
            *outlen = (size_t)snprintf(out, cap, "%%%c%s=ERR1\r", ln[1], "????");
            return 0;
        }
    size_t pl = len - 7 < PJ_MAX_LINE ? len - 7 : PJ_MAX_LINE;
    memcpy(param, ln + 7, pl);
    param[pl] = 0;
    char val[PJ_MAX_LINE];
    answer(p, ln[1], cmd, param, now, val, sizeof val);
    int n = snprintf(out, cap, "%%%c%s=%s\r", ln[1], cmd, val);
    *outlen = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    return 0;
}

const sim_line_proto sim_pjlink_proto = {
    .name = "pjlink", .max_line = PJ_MAX_LINE + 32, .max_conns = 0, .greet = greet, .line = line};

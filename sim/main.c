/* main.c — cinemon-sim: a virtual multiplex on one libuv loop (see sim/README.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cp750.h"
#include "fault.h"
#include "model.h"
#include "pjlink.h"
#include "responder.h"
#include "tcpserv.h"

#define SLOTS_PER_HALL 8 /* port = base + (hall - 1) * 8 + slot */
#define MAX_HALLS 1000

typedef struct sim_snmp_dev {
    uv_udp_t udp;
    sim_device dev;
    int port;
    struct sim *sim;
} sim_snmp_dev;

typedef struct sim {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    sim_snmp_dev *devs;
    size_t ndevs;
    const char *community;
    double fault_rate;
    sim_snmp_stats st;
    uint64_t faults[5], send_fail;
    size_t pending; /* slow replies in flight */
    int halls, base;
    const char *pj_password; /* PJLink password, NULL = no authentication */
    sim_pjlink *pj;     /* one per hall, slot 2 */
    sim_cp750 *cp;      /* one per hall, slot 3 */
    sim_tcpserv *tcp;   /* 2 per hall: PJLink, CP750 */
    size_t ntcp;        /* servers started */
} sim;

typedef struct slow_reply {
    uv_timer_t timer;
    sim_snmp_dev *sd;
    struct sockaddr_storage addr;
    size_t len;
    uint8_t buf[];
} slow_reply;

static uint8_t RXBUF[65536];
static uint8_t TXBUF[SIM_MAX_RESPONSE];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init((char *)RXBUF, sizeof RXBUF);
}

static void slow_closed(uv_handle_t *h)
{
    slow_reply *s = h->data;
    s->sd->sim->pending--;
    free(s);
}

static void slow_fire(uv_timer_t *t)
{
    slow_reply *s = t->data;
    uv_buf_t b = uv_buf_init((char *)s->buf, (unsigned)s->len);
    if (uv_udp_try_send(&s->sd->udp, &b, 1, (const struct sockaddr *)&s->addr) < 0)
        s->sd->sim->send_fail++;
    uv_close((uv_handle_t *)t, slow_closed);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags)
{
    sim_snmp_dev *sd = h->data;
    sim *s = sd->sim;
    if (nread <= 0 || !addr || (flags & UV_UDP_PARTIAL)) return;
    int64_t now = (int64_t)uv_now(&s->loop);
    sd->dev.requests++;
    sim_fault f = sim_fault_decide(&sd->dev.fault, s->fault_rate, now);
    if (f == SIM_FAULT_SILENT || f == SIM_FAULT_CLOSE) {
        s->faults[f]++;
        sd->dev.dropped++;
        return;
    }
    size_t n = sim_snmp_respond(&sd->dev, s->community, (const uint8_t *)buf->base,
                                (size_t)nread, TXBUF, sizeof TXBUF, now, &s->st);
    if (n == 0) return;
    if (f != SIM_FAULT_NONE) s->faults[f]++;
    if (f == SIM_FAULT_GARBLE) sim_fault_garble(&sd->dev.fault, TXBUF, n);
    if (f == SIM_FAULT_SLOW) {
        slow_reply *r = malloc(sizeof *r + n);
        if (!r) return;
        r->sd = sd;
        r->len = n;
        memcpy(r->buf, TXBUF, n);
        memcpy(&r->addr, addr,
               addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                           : sizeof(struct sockaddr_in));
        uv_timer_init(&s->loop, &r->timer);
        r->timer.data = r;
        s->pending++;
        uv_timer_start(&r->timer, slow_fire, SIM_FAULT_SLOW_MS, 0);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)TXBUF, (unsigned)n);
    if (uv_udp_try_send(h, &b, 1, addr) < 0)
        s->send_fail++;
    else
        sd->dev.answered++;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h)) return;
    if (h->type == UV_TIMER) {
        uv_timer_stop((uv_timer_t *)h);
        uv_close(h, slow_closed);
    } else {
        uv_close(h, NULL);
    }
}

static void close_all(sim *s)
{
    for (size_t i = 0; i < s->ntcp; i++) sim_tcpserv_stop(&s->tcp[i]);
    uv_walk(&s->loop, close_walk, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    close_all(h->data);
}

static int make_addr(const char *listen, int port, struct sockaddr_storage *sa)
{
    return strchr(listen, ':') ? uv_ip6_addr(listen, port, (struct sockaddr_in6 *)sa)
                               : uv_ip4_addr(listen, port, (struct sockaddr_in *)sa);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cinemon-sim --halls N [--base-port P] [--listen ADDR] [--community C]\n"
            "                   [--fault-rate R] [--seed S] [--speed X] [--print-config FILE]\n"
            "  --halls N          halls to simulate (1-%d)\n"
            "  --base-port P      first port (default 16100); hall h (1-based), device slot d:\n"
            "                     port = P + (h-1)*%d + d  (d 0: SNMP projector, 1: SNMP media\n"
            "                     server, 2: PJLink projector, 3: CP750 processor)\n"
            "  --pjlink-password W  PJLink authentication (MD5) with this password (default none)\n"
            "  --listen ADDR      IPv4/IPv6 address to bind (default 127.0.0.1)\n"
            "  --community C      SNMP community (default public)\n"
            "  --fault-rate R     chance per request (0-1) that a fault episode starts (default 0)\n"
            "  --seed S           random seed (default 1)\n"
            "  --speed X          simulated seconds per real second (default 1)\n"
            "  --print-config F   write the agent's [device] sections to F ('-' = stdout)\n",
            MAX_HALLS, SLOTS_PER_HALL);
}

static int write_config(const sim *s, const char *path, const char *listen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    fprintf(f, "; cinemon-sim: %zu SNMP devices, %d PJLink projectors, %d CP750-like processors\n",
            s->ndevs, s->halls, s->halls);
    for (size_t i = 0; i < s->ndevs; i++) {
        const sim_snmp_dev *sd = &s->devs[i];
        const sim_model *m = sim_model_get(sd->dev.model);
        fprintf(f,
                "\n[device \"hall%d/%s\"]\nkind = %s\nprofile = %s\naddress = %s\nport = %d\n"
                "snmp_version = 2c\ncommunity = %s\n",
                sd->dev.hall, m->role, m->kind, m->profile, listen, sd->port, s->community);
    }
    for (int h = 1; h <= s->halls; h++) {
        fprintf(f,
                "\n[device \"hall%d/lobby-projector\"]\nkind = projector\nprotocol = pjlink\n"
                "profile = pjlink-class1-2\naddress = %s\nport = %d\n",
                h, listen, s->base + (h - 1) * SLOTS_PER_HALL + 2);
        if (s->pj_password) fprintf(f, "password = %s\n", s->pj_password);
        fprintf(f,
                "\n[device \"hall%d/audio\"]\nkind = audio_processor\nprotocol = text\n"
                "profile = dolby-cp750\naddress = %s\nport = %d\n",
                h, listen, s->base + (h - 1) * SLOTS_PER_HALL + 3);
    }
    int rc = fflush(f) == 0 ? 0 : -1;
    if (f != stdout && fclose(f) != 0) rc = -1;
    return rc;
}

int main(int argc, char **argv)
{
    long halls = 0, base = 16100;
    const char *listen = "127.0.0.1", *print_config = NULL, *pj_password = NULL;
    double rate = 0, speed = 1;
    unsigned long long seed = 1;
    sim s = {.community = "public"};
    static const struct option opts[] = {
        {"halls", required_argument, 0, 'n'},     {"base-port", required_argument, 0, 'p'},
        {"listen", required_argument, 0, 'l'},    {"fault-rate", required_argument, 0, 'f'},
        {"seed", required_argument, 0, 's'},      {"speed", required_argument, 0, 'x'},
        {"community", required_argument, 0, 'c'}, {"print-config", required_argument, 0, 'o'},
        {"pjlink-password", required_argument, 0, 'w'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n': halls = strtol(optarg, &end, 10); if (*end) halls = -1; break;
        case 'p': base = strtol(optarg, &end, 10); if (*end) base = -1; break;
        case 'l': listen = optarg; break;
        case 'f': rate = strtod(optarg, &end); if (*end) rate = -1; break;
        case 's': seed = strtoull(optarg, &end, 10); break;
        case 'x': speed = strtod(optarg, &end); if (*end) speed = -1; break;
        case 'c': s.community = optarg; break;
        case 'o': print_config = optarg; break;
        case 'w': pj_password = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || halls < 1 || halls > MAX_HALLS || base < 1 ||
        base + halls * SLOTS_PER_HALL > 65536 || rate < 0 || rate > 1 || speed <= 0 ||
        !*s.community || (pj_password && strlen(pj_password) > 32)) {
        fprintf(stderr, "cinemon-sim: bad arguments (halls 1-%d, ports must fit below 65536, "
                        "fault-rate 0-1, speed > 0, PJLink password at most 32 characters)\n", MAX_HALLS);
        usage(stderr);
        return 2;
    }
    s.fault_rate = rate;
    char err[256];
    if (sim_models_init(err, sizeof err) != 0) {
        fprintf(stderr, "cinemon-sim: %s\n", err);
        return 1;
    }
    int rc = 1;
    uv_loop_init(&s.loop);
    s.ndevs = (size_t)halls * 2;
    s.halls = (int)halls;
    s.base = (int)base;
    s.devs = calloc(s.ndevs, sizeof *s.devs);
    s.pj = calloc((size_t)halls, sizeof *s.pj);
    s.cp = calloc((size_t)halls, sizeof *s.cp);
    s.tcp = calloc((size_t)halls * 2, sizeof *s.tcp);
    if (!s.devs || !s.pj || !s.cp || !s.tcp) goto out;
    int64_t now = (int64_t)uv_now(&s.loop);
    for (size_t i = 0; i < s.ndevs; i++) {
        sim_snmp_dev *sd = &s.devs[i];
        int hall = (int)(i / 2) + 1, slot = (int)(i % 2);
        sd->sim = &s;
        sd->port = (int)base + (hall - 1) * SLOTS_PER_HALL + slot;
        sim_device_init(&sd->dev, slot == 0 ? SIM_MODEL_CHRISTIE : SIM_MODEL_HOST, hall, seed,
                        now, speed);
        struct sockaddr_storage sa;
        int r = make_addr(listen, sd->port, &sa);
        if (r == 0) r = uv_udp_init(&s.loop, &sd->udp);
        sd->udp.data = sd;
        if (r == 0) r = uv_udp_bind(&sd->udp, (const struct sockaddr *)&sa, 0);
        if (r == 0) r = uv_udp_recv_start(&sd->udp, on_alloc, on_recv);
        if (r != 0) {
            fprintf(stderr, "cinemon-sim: udp %s:%d: %s\n", listen, sd->port, uv_strerror(r));
            goto out;
        }
    }
    for (int h = 1; h <= halls; h++) {
        sim_pjlink_init(&s.pj[h - 1], h, seed, now, speed, pj_password);
        s.pj_password = pj_password;
        sim_cp750_init(&s.cp[h - 1], h, seed);
        for (int k = 0; k < 2; k++) {
            int port = (int)base + (h - 1) * SLOTS_PER_HALL + 2 + k;
            struct sockaddr_storage sa;
            int r = make_addr(listen, port, &sa);
            if (r == 0)
                r = sim_tcpserv_start(&s.tcp[s.ntcp], &s.loop, (const struct sockaddr *)&sa,
                                      k ? &sim_cp750_proto : &sim_pjlink_proto,
                                      k ? (void *)&s.cp[h - 1] : (void *)&s.pj[h - 1], rate,
                                      seed * 31 + (uint64_t)port);
            if (r == 0) s.ntcp++;
            if (r != 0) {
                fprintf(stderr, "cinemon-sim: tcp %s:%d: %s\n", listen, port, uv_strerror(r));
                goto out;
            }
        }
    }
    if (print_config && write_config(&s, print_config, listen) != 0) goto out;
    uv_signal_init(&s.loop, &s.sigterm);
    uv_signal_init(&s.loop, &s.sigint);
    s.sigterm.data = s.sigint.data = &s;
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    fprintf(stderr, "cinemon-sim: %ld halls, %zu SNMP + %zu TCP devices on %s:%ld-%ld, fault rate %g, "
                    "seed %llu\n", halls, s.ndevs, s.ntcp, listen, base,
            base + (halls - 1) * SLOTS_PER_HALL + 3, rate, seed);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    rc = 0;
    fprintf(stderr,
            "cinemon-sim: %llu requests, %llu responses, %llu malformed, %llu wrong community, "
            "%llu unsupported, %llu tooBig, faults: slow %llu garble %llu silent %llu drop %llu\n",
            (unsigned long long)s.st.requests, (unsigned long long)s.st.responses,
            (unsigned long long)s.st.malformed, (unsigned long long)s.st.bad_community,
            (unsigned long long)s.st.unsupported, (unsigned long long)s.st.too_big,
            (unsigned long long)s.faults[SIM_FAULT_SLOW], (unsigned long long)s.faults[SIM_FAULT_GARBLE],
            (unsigned long long)s.faults[SIM_FAULT_SILENT], (unsigned long long)s.faults[SIM_FAULT_CLOSE]);
out:
    close_all(&s);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    uv_loop_close(&s.loop);
    free(s.devs);
    free(s.pj);
    free(s.cp);
    free(s.tcp);
    sim_models_free();
    return rc;
}

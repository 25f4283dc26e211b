/* main.c — cinemon-sim: a virtual multiplex on one libuv loop (see sim/README.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "cp750.h"
#include "fault.h"
#include "httpdev.h"
#include "model.h"
#include "pjlink.h"
#include "responder.h"
#include "tcpserv.h"
#include "trapsend.h"

#define SLOTS_PER_HALL 8 /* port = base + (hall - 1) * 8 + slot */
#define MAX_HALLS 1000
#define MAX_BENCH 5000

typedef struct sim_snmp_dev {
    uv_udp_t udp;
    sim_device dev;
    int port;
    struct sim *sim;
    sim_trap_state trap;
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
    size_t pending;          /* slow replies in flight */
    struct slow_reply *slow; /* their list */
    int halls, base;
    int bench;               /* --bench-devices: SNMP-only benchmark devices, no halls */
    const char *pj_password; /* PJLink password, NULL = no authentication */
    sim_pjlink *pj;          /* one per hall, slot 2 */
    sim_cp750 *cp;           /* one per hall, slot 3 */
    sim_tcpserv *tcp;        /* 2 per hall: PJLink, CP750 */
    size_t ntcp;             /* servers started */
    sim_httpdev **http;      /* 3 per hall: LED screen, sensor, IMS SOAP (slots 4-6) */
    size_t nhttp;            /* started */
    const char *ims_user, *ims_pass;
    int trap_on; /* --trap-target given */
    struct sockaddr_storage trap_addr;
    uv_timer_t trap_timer; /* samples the projectors' temperatures once a second */
    uint64_t traps_sent, traps_limited, traps_fail;
} sim;

typedef struct slow_reply {
    uv_timer_t timer;
    struct slow_reply *prev, *next; /* in sim.slow */
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
    sim *sm = s->sd->sim;
    sm->pending--;
    if (s->prev)
        s->prev->next = s->next;
    else
        sm->slow = s->next;
    if (s->next) s->next->prev = s->prev;
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

static uint8_t TRAPBUF[SIM_MAX_RESPONSE];

/* Send a trap of device sd to the trap target from the device's own socket (rate-limited). */
static void send_trap(sim_snmp_dev *sd, sim_trap_cause cause, sim_fault f, int64_t now)
{
    sim *s = sd->sim;
    uint64_t limited = sd->trap.suppressed;
    size_t n =
        sim_trap_build(&sd->trap, &sd->dev, cause, f, s->community, now, TRAPBUF, sizeof TRAPBUF);
    s->traps_limited += sd->trap.suppressed - limited;
    if (n == 0) return;
    uv_buf_t b = uv_buf_init((char *)TRAPBUF, (unsigned)n);
    if (uv_udp_try_send(&sd->udp, &b, 1, (const struct sockaddr *)&s->trap_addr) < 0)
        s->traps_fail++;
    else
        s->traps_sent++;
}

/* Once a second: temperature crossings, and the linkUp of silent episodes that have ended. */
static void on_trap_timer(uv_timer_t *t)
{
    sim *s = t->data;
    int64_t now = (int64_t)uv_now(&s->loop);
    for (size_t i = 0; i < s->ndevs; i++) {
        if (sim_trap_link_up_due(&s->devs[i].trap, &s->devs[i].dev, now))
            send_trap(&s->devs[i], SIM_TRAP_LINK_UP, SIM_FAULT_NONE, now);
        if (sim_trap_temp_check(&s->devs[i].trap, &s->devs[i].dev, now))
            send_trap(&s->devs[i], SIM_TRAP_TEMP, SIM_FAULT_NONE, now);
    }
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags)
{
    sim_snmp_dev *sd = h->data;
    sim *s = sd->sim;
    if (nread <= 0 || !addr || (flags & UV_UDP_PARTIAL)) return;
    int64_t now = (int64_t)uv_now(&s->loop);
    sd->dev.requests++;
    /* a silent episode that ended before the timer noticed: its linkUp goes first, before
     * the next episode's linkDown */
    if (s->trap_on && sim_trap_link_up_due(&sd->trap, &sd->dev, now))
        send_trap(sd, SIM_TRAP_LINK_UP, SIM_FAULT_NONE, now);
    int was_silent = now < sd->dev.fault.silent_until_ms;
    sim_fault f = sim_fault_decide(&sd->dev.fault, s->fault_rate, now);
    if (f != SIM_FAULT_NONE && !was_silent && s->trap_on && sim_trap_capable(&sd->dev))
        send_trap(sd, SIM_TRAP_FAULT, f, now); /* an episode starts (silent: linkDown) */
    if (f == SIM_FAULT_SILENT || f == SIM_FAULT_CLOSE) {
        s->faults[f]++;
        sd->dev.dropped++;
        return;
    }
    size_t n = sim_snmp_respond(&sd->dev, s->community, (const uint8_t *)buf->base, (size_t)nread,
                                TXBUF, sizeof TXBUF, now, &s->st);
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
        r->prev = NULL;
        r->next = s->slow;
        if (s->slow) s->slow->prev = r;
        s->slow = r;
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

/* Close what is still open (our sockets, signals, the trap timer). */
static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void close_all(sim *s)
{
    for (size_t i = 0; i < s->ntcp; i++)
        sim_tcpserv_stop(&s->tcp[i]);
    for (size_t i = 0; i < s->nhttp; i++)
        sim_httpdev_stop(s->http[i]);
    for (slow_reply *r = s->slow; r; r = r->next)
        if (!uv_is_closing((uv_handle_t *)&r->timer)) {
            uv_timer_stop(&r->timer);
            uv_close((uv_handle_t *)&r->timer, slow_closed);
        }
    uv_walk(&s->loop, close_walk, s);
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

/* "127.0.0.1:162" or "[::1]:162" into sa. 0 or -1. */
static int parse_hostport(const char *hp, struct sockaddr_storage *sa)
{
    const char *colon = strrchr(hp, ':');
    if (!colon || colon == hp) return -1;
    char host[64];
    size_t hl = (size_t)(colon - hp);
    const char *h = hp;
    if (hp[0] == '[') {
        if (hl < 3 || hp[hl - 1] != ']') return -1;
        h = hp + 1;
        hl -= 2;
    }
    if (hl >= sizeof host) return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 1 || port > 65535) return -1;
    return hp[0] == '[' ? uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)sa)
                        : uv_ip4_addr(host, (int)port, (struct sockaddr_in *)sa);
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: cinemon-sim --halls N [--base-port P] [--listen ADDR] [--community C]\n"
        "                   [--fault-rate R] [--seed S] [--speed X] [--print-config FILE]\n"
        "       cinemon-sim --bench-devices N [--base-port P] [--print-config FILE] ...\n"
        "  --halls N          halls to simulate (1-%d)\n"
        "  --bench-devices N  instead of halls: N SNMP benchmark devices (1-%d) on ports\n"
        "                     P..P+N-1, 40 scalars + a 20x5 table each (profile sim-bench)\n"
        "  --base-port P      first port (default 16100); hall h (1-based), device slot d:\n"
        "                     port = P + (h-1)*%d + d  (d 0: SNMP projector, 1: SNMP media\n"
        "                     server, 2: PJLink projector, 3: CP750 processor, 4: LED screen\n"
        "                     (HTTP), 5: light and sound sensor (HTTP), 6: IMS (SOAP))\n"
        "  --pjlink-password W  PJLink authentication (MD5) with this password (default none)\n"
        "  --listen ADDR      IPv4/IPv6 address to bind (default 127.0.0.1)\n"
        "  --community C      SNMP community (default public)\n"
        "  --fault-rate R     chance per request (0-1) that a fault episode starts (default 0)\n"
        "  --seed S           random seed (default 1)\n"
        "  --speed X          simulated seconds per real second (default 1)\n"
        "  --print-config F   write the agent's [device] sections to F ('-' = stdout)\n"
        "  --ims-user U, --ims-password W  login of the IMS SOAP servers (manager, password)\n"
        "  --trap-target H:P  SNMP projectors send SNMPv2c traps there when a fault episode\n"
        "                     starts or a temperature passes its limit, linkDown/linkUp\n"
        "                     around silent episodes (default: no traps)\n",
        MAX_HALLS, MAX_BENCH, SLOTS_PER_HALL);
}

static int write_config(const sim *s, const char *path, const char *listen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    if (s->bench)
        fprintf(f,
                "; cinemon-sim: %zu benchmark SNMP devices (profile sim-bench, 140 values each)\n",
                s->ndevs);
    else
        fprintf(f,
                "; cinemon-sim: %zu SNMP devices, %d PJLink projectors, %d CP750-like processors, "
                "%d LED screens, %d light and sound sensors, %d IMS SOAP servers\n",
                s->ndevs, s->halls, s->halls, s->halls, s->halls, s->halls);
    for (size_t i = 0; i < s->ndevs; i++) {
        const sim_snmp_dev *sd = &s->devs[i];
        const sim_model *m = sim_model_get(sd->dev.model);
        if (s->bench)
            fprintf(f, "\n[device \"bench/dev%04d\"]\n", sd->dev.hall);
        else
            fprintf(f, "\n[device \"hall%d/%s\"]\n", sd->dev.hall, m->role);
        fprintf(f,
                "kind = %s\nprofile = %s\naddress = %s\nport = %d\n"
                "snmp_version = 2c\ncommunity = %s\n",
                m->kind, m->profile, listen, sd->port, s->community);
    }
    for (int h = 1; h <= s->halls && !s->bench; h++) {
        fprintf(f,
                "\n[device \"hall%d/lobby-projector\"]\nkind = projector\nprotocol = pjlink\n"
                "profile = pjlink-class1-2\naddress = %s\nport = %d\n",
                h, listen, s->base + (h - 1) * SLOTS_PER_HALL + 2);
        if (s->pj_password) fprintf(f, "password = %s\n", s->pj_password);
        fprintf(f,
                "\n[device \"hall%d/audio\"]\nkind = audio_processor\nprotocol = text\n"
                "profile = dolby-cp750\naddress = %s\nport = %d\n",
                h, listen, s->base + (h - 1) * SLOTS_PER_HALL + 3);
        static const char *const HTTP_KINDS[SIM_HTTP_NKINDS] = {"led_screen", "light_sensor",
                                                                "media_block"};
        for (int k = 0; k < SIM_HTTP_NKINDS; k++) {
            fprintf(f,
                    "\n[device \"hall%d/%s\"]\nkind = %s\nprotocol = http\nprofile = %s\n"
                    "address = %s\nport = %d\n",
                    h, sim_httpdev_role((sim_http_kind)k), HTTP_KINDS[k],
                    sim_httpdev_profile((sim_http_kind)k), listen,
                    s->base + (h - 1) * SLOTS_PER_HALL + 4 + k);
            if (k == SIM_HTTP_IMS)
                fprintf(f, "username = %s\npassword = %s\n", s->ims_user, s->ims_pass);
        }
    }
    int rc = fflush(f) == 0 ? 0 : -1;
    if (f != stdout && fclose(f) != 0) rc = -1;
    return rc;
}

/* A thousand halls need several thousand sockets: raise the soft descriptor limit to the
 * hard one. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) perror("cinemon-sim: setrlimit(RLIMIT_NOFILE)");
    }
}

int main(int argc, char **argv)
{
    long halls = 0, base = 16100, bench = 0;
    const char *listen = "127.0.0.1", *print_config = NULL, *pj_password = NULL;
    const char *trap_target = NULL;
    double rate = 0, speed = 1;
    unsigned long long seed = 1;
    sim s = {.community = "public", .ims_user = "manager", .ims_pass = "password"};
    static const struct option opts[] = {{"halls", required_argument, 0, 'n'},
                                         {"base-port", required_argument, 0, 'p'},
                                         {"listen", required_argument, 0, 'l'},
                                         {"fault-rate", required_argument, 0, 'f'},
                                         {"seed", required_argument, 0, 's'},
                                         {"speed", required_argument, 0, 'x'},
                                         {"community", required_argument, 0, 'c'},
                                         {"print-config", required_argument, 0, 'o'},
                                         {"pjlink-password", required_argument, 0, 'w'},
                                         {"bench-devices", required_argument, 0, 'b'},
                                         {"trap-target", required_argument, 0, 't'},
                                         {"ims-user", required_argument, 0, 'u'},
                                         {"ims-password", required_argument, 0, 'P'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            halls = strtol(optarg, &end, 10);
            if (*end) halls = -1;
            break;
        case 'p':
            base = strtol(optarg, &end, 10);
            if (*end) base = -1;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'f':
            rate = strtod(optarg, &end);
            if (*end) rate = -1;
            break;
        case 's':
            seed = strtoull(optarg, &end, 10);
            break;
        case 'x':
            speed = strtod(optarg, &end);
            if (*end) speed = -1;
            break;
        case 'c':
            s.community = optarg;
            break;
        case 'o':
            print_config = optarg;
            break;
        case 'w':
            pj_password = optarg;
            break;
        case 't':
            trap_target = optarg;
            break;
        case 'u':
            s.ims_user = optarg;
            break;
        case 'P':
            s.ims_pass = optarg;
            break;
        case 'b':
            bench = strtol(optarg, &end, 10);
            if (*end || bench < 1) bench = -1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (bench != 0 &&
        (halls != 0 || bench < 0 || bench > MAX_BENCH || base < 1 || base + bench > 65536)) {
        fprintf(stderr,
                "cinemon-sim: --bench-devices takes 1-%d devices, ports must fit below "
                "65536, and excludes --halls\n",
                MAX_BENCH);
        return 2;
    }
    if (bench) halls = 1; /* only for the checks below */
    if (optind != argc || halls < 1 || halls > MAX_HALLS || base < 1 ||
        base + halls * SLOTS_PER_HALL > 65536 || rate < 0 || rate > 1 || speed <= 0 ||
        !*s.community || (pj_password && strlen(pj_password) > 32) || !*s.ims_user ||
        !*s.ims_pass || strpbrk(s.ims_user, "\r\n") || strpbrk(s.ims_pass, "\r\n")) {
        fprintf(stderr,
                "cinemon-sim: bad arguments (halls 1-%d, ports must fit below 65536, "
                "fault-rate 0-1, speed > 0, PJLink password at most 32 characters)\n",
                MAX_HALLS);
        usage(stderr);
        return 2;
    }
    s.fault_rate = rate;
    if (trap_target) {
        struct sockaddr_storage la;
        if (parse_hostport(trap_target, &s.trap_addr) != 0 || make_addr(listen, 0, &la) != 0 ||
            la.ss_family != s.trap_addr.ss_family) {
            fprintf(stderr,
                    "cinemon-sim: --trap-target '%s' must be HOST:PORT or [HOST6]:PORT, "
                    "an address of the same family as --listen %s\n",
                    trap_target, listen);
            return 2;
        }
        s.trap_on = 1;
    }
    raise_nofile();
    char err[256];
    if (sim_models_init(err, sizeof err) != 0) {
        fprintf(stderr, "cinemon-sim: %s\n", err);
        return 1;
    }
    int rc = 1;
    uv_loop_init(&s.loop);
    s.bench = bench > 0;
    if (s.bench) halls = 0;
    s.ndevs = s.bench ? (size_t)bench : (size_t)halls * 2;
    s.halls = (int)halls;
    s.base = (int)base;
    s.devs = calloc(s.ndevs, sizeof *s.devs);
    s.pj = calloc((size_t)halls + 1, sizeof *s.pj);
    s.cp = calloc((size_t)halls + 1, sizeof *s.cp);
    s.tcp = calloc((size_t)halls * 2 + 1, sizeof *s.tcp);
    s.http = calloc((size_t)halls * SIM_HTTP_NKINDS + 1, sizeof *s.http);
    if (!s.devs || !s.pj || !s.cp || !s.tcp || !s.http) goto out;
    int64_t now = (int64_t)uv_now(&s.loop);
    for (size_t i = 0; i < s.ndevs; i++) {
        sim_snmp_dev *sd = &s.devs[i];
        int hall = (int)(i / 2) + 1, slot = (int)(i % 2);
        sim_model_id model = slot == 1       ? SIM_MODEL_HOST
                             : hall % 2 == 0 ? SIM_MODEL_BARCO
                                             : SIM_MODEL_CHRISTIE;
        sd->sim = &s;
        sd->port = (int)base + (hall - 1) * SLOTS_PER_HALL + slot;
        if (s.bench) { /* device i on port base + i; "hall" numbers the device */
            hall = (int)i + 1;
            model = SIM_MODEL_BENCH;
            sd->port = (int)base + (int)i;
        }
        sim_device_init(&sd->dev, model, hall, seed, now, speed);
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
        for (int k = 0; k < SIM_HTTP_NKINDS; k++) {
            int port = (int)base + (h - 1) * SLOTS_PER_HALL + 4 + k;
            sim_httpdev_opts ho = {.kind = (sim_http_kind)k,
                                   .hall = h,
                                   .seed = seed,
                                   .start_ms = now,
                                   .speed = speed,
                                   .fault_rate = rate,
                                   .projector = &s.devs[(size_t)(h - 1) * 2].dev,
                                   .ims_user = s.ims_user,
                                   .ims_pass = s.ims_pass};
            struct sockaddr_storage sa;
            int r = make_addr(listen, port, &sa);
            if (r == 0)
                r = sim_httpdev_start(&s.http[s.nhttp], &s.loop, (const struct sockaddr *)&sa, &ho,
                                      err, sizeof err);
            else
                snprintf(err, sizeof err, "%s", uv_strerror(r));
            if (r != 0) {
                fprintf(stderr, "cinemon-sim: http %s:%d: %s\n", listen, port, err);
                goto out;
            }
            s.nhttp++;
        }
    }
    if (print_config && write_config(&s, print_config, listen) != 0) goto out;
    if (s.trap_on) {
        uv_timer_init(&s.loop, &s.trap_timer);
        s.trap_timer.data = &s;
        uv_timer_start(&s.trap_timer, on_trap_timer, 1000, 1000);
    }
    uv_signal_init(&s.loop, &s.sigterm);
    uv_signal_init(&s.loop, &s.sigint);
    s.sigterm.data = s.sigint.data = &s;
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    if (s.bench)
        fprintf(stderr,
                "cinemon-sim: %zu benchmark SNMP devices on %s:%ld-%ld, fault rate %g, "
                "seed %llu\n",
                s.ndevs, listen, base, base + (long)s.ndevs - 1, rate, seed);
    else
        fprintf(stderr,
                "cinemon-sim: %ld halls, %zu SNMP + %zu TCP + %zu HTTP devices on %s:%ld-%ld, "
                "fault rate %g, seed %llu\n",
                halls, s.ndevs, s.ntcp, s.nhttp, listen, base,
                base + (halls - 1) * SLOTS_PER_HALL + 4 + SIM_HTTP_NKINDS - 1, rate, seed);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    rc = 0;
    fprintf(stderr,
            "cinemon-sim: %llu requests, %llu responses, %llu malformed, %llu wrong community, "
            "%llu unsupported, %llu tooBig, faults: slow %llu garble %llu silent %llu drop %llu\n",
            (unsigned long long)s.st.requests, (unsigned long long)s.st.responses,
            (unsigned long long)s.st.malformed, (unsigned long long)s.st.bad_community,
            (unsigned long long)s.st.unsupported, (unsigned long long)s.st.too_big,
            (unsigned long long)s.faults[SIM_FAULT_SLOW],
            (unsigned long long)s.faults[SIM_FAULT_GARBLE],
            (unsigned long long)s.faults[SIM_FAULT_SILENT],
            (unsigned long long)s.faults[SIM_FAULT_CLOSE]);
    for (int k = 0; k < SIM_HTTP_NKINDS && s.nhttp; k++) {
        sim_httpdev_stats sum = {0}, one;
        for (size_t i = (size_t)k; i < s.nhttp; i += SIM_HTTP_NKINDS) {
            sim_httpdev_get_stats(s.http[i], &one);
            sum.connections += one.connections;
            sum.requests += one.requests;
            sum.responses += one.responses;
            sum.bad_requests += one.bad_requests;
            sum.faults += one.faults;
        }
        fprintf(stderr,
                "cinemon-sim: http %s: %llu connections, %llu requests, %llu responses, "
                "%llu bad requests, %llu faults\n",
                sim_httpdev_role((sim_http_kind)k), (unsigned long long)sum.connections,
                (unsigned long long)sum.requests, (unsigned long long)sum.responses,
                (unsigned long long)sum.bad_requests, (unsigned long long)sum.faults);
    }
    if (s.trap_on)
        fprintf(stderr, "cinemon-sim: traps: %llu sent, %llu rate-limited, %llu send failures\n",
                (unsigned long long)s.traps_sent, (unsigned long long)s.traps_limited,
                (unsigned long long)s.traps_fail);
out:
    close_all(&s);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    uv_loop_close(&s.loop);
    for (size_t i = 0; i < s.nhttp; i++)
        sim_httpdev_free(s.http[i]);
    free(s.http);
    free(s.devs);
    free(s.pj);
    free(s.cp);
    free(s.tcp);
    sim_models_free();
    return rc;
}

/* httpdev.c — the simulator's HTTP devices on the HTTP server (see httpdev.h). */
#include "httpdev.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpserv.h"
#include "ims_soap.h"
#include "ledscreen.h"
#include "rng.h"
#include "sensor.h"

struct sim_httpdev {
    sim_httpserv srv;
    sim_http_kind kind;
    union {
        sim_led led;
        sim_sensor sensor;
        sim_ims ims;
    } u;
};

static const char *const PROFILES[SIM_HTTP_NKINDS] = {"led-screen-http", "light-sound-sensor-http",
                                                      "dolby-ims-soap"};
static const char *const ROLES[SIM_HTTP_NKINDS] = {"led-screen", "sensor", "ims-soap"};

const char *sim_httpdev_profile(sim_http_kind kind)
{
    return (unsigned)kind < SIM_HTTP_NKINDS ? PROFILES[kind] : NULL;
}

const char *sim_httpdev_role(sim_http_kind kind)
{
    return (unsigned)kind < SIM_HTTP_NKINDS ? ROLES[kind] : NULL;
}

/* A short text answer (404, 405, 500). */
static void text(sim_http_resp *r, int status, const char *allow)
{
    char msg[64];
    int n = snprintf(msg, sizeof msg, "%d %s\n", status, sim_http_reason(status));
    r->status = status;
    r->ctype = "text/plain";
    r->allow = allow;
    r->body = n > 0 ? strdup(msg) : NULL;
    r->len = r->body ? strlen(r->body) : 0;
}

static void json_answer(sim_http_resp *r, char *json)
{
    if (!json) {
        text(r, 500, NULL);
        return;
    }
    r->status = 200;
    r->ctype = "application/json";
    r->body = json;
    r->len = strlen(json);
}

static void handle(void *ctx, const sim_http_req *req, int64_t now_ms, int episode,
                   sim_http_resp *r)
{
    sim_httpdev *d = ctx;
    switch (d->kind) {
    case SIM_HTTP_LED:
    case SIM_HTTP_SENSOR: {
        const char *path = d->kind == SIM_HTTP_LED ? "/api/status" : "/api/measurements";
        if (strcmp(req->path, path) != 0) {
            text(r, 404, NULL);
            return;
        }
        if (strcmp(req->method, "GET") != 0) {
            text(r, 405, "GET");
            return;
        }
        json_answer(r, d->kind == SIM_HTTP_LED ? sim_led_status_json(&d->u.led, now_ms, episode)
                                               : sim_sensor_json(&d->u.sensor, now_ms));
        return;
    }
    case SIM_HTTP_IMS: {
        if (!sim_ims_known_path(req->path)) {
            text(r, 404, NULL);
            return;
        }
        if (strcmp(req->method, "POST") != 0) {
            text(r, 405, "POST");
            return;
        }
        char *out = NULL;
        size_t n = 0;
        int st =
            sim_ims_handle(&d->u.ims, req->path, req->body, req->content_length, episode, &out, &n);
        if (!out) {
            text(r, 500, NULL);
            return;
        }
        r->status = st;
        r->ctype = "text/xml; charset=utf-8";
        r->body = out;
        r->len = n;
        return;
    }
    default:
        text(r, 500, NULL);
    }
}

static void dev_closed(uv_handle_t *h)
{
    free(h->data);
}

int sim_httpdev_start(sim_httpdev **out, uv_loop_t *loop, const struct sockaddr *addr,
                      const sim_httpdev_opts *o, char *err, size_t errlen)
{
    *out = NULL;
    if ((unsigned)o->kind >= SIM_HTTP_NKINDS) {
        snprintf(err, errlen, "http device: unknown kind %d", (int)o->kind);
        return UV_EINVAL;
    }
    sim_httpdev *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "http device: out of memory");
        return UV_ENOMEM;
    }
    d->kind = o->kind;
    switch (o->kind) {
    case SIM_HTTP_LED:
        sim_led_init(&d->u.led, o->hall, o->seed, o->start_ms, o->speed, o->projector);
        break;
    case SIM_HTTP_SENSOR:
        sim_sensor_init(&d->u.sensor, o->hall, o->seed, o->start_ms, o->speed, o->projector);
        break;
    default:
        if (sim_ims_init(&d->u.ims, o->hall, o->seed, o->ims_user, o->ims_pass) != 0) {
            snprintf(err, errlen, "hall%d/%s: IMS user name or password longer than %d bytes",
                     o->hall, ROLES[o->kind], SIM_IMS_CRED_MAX);
            free(d);
            return UV_EINVAL;
        }
    }
    uint64_t fs = o->seed ^ ((uint64_t)o->hall << 40) ^ (0x7a11ull + (uint64_t)o->kind);
    int r = sim_httpserv_start(&d->srv, loop, addr, handle, d, o->fault_rate, sim_rng_next(&fs));
    if (r != 0) {
        snprintf(err, errlen, "hall%d/%s: listen: %s", o->hall, ROLES[o->kind], uv_strerror(r));
        if (d->srv.listening) { /* the listener frees the device once closed */
            d->srv.listener.data = d;
            uv_close((uv_handle_t *)&d->srv.listener, dev_closed);
        } else {
            free(d);
        }
        return r;
    }
    *out = d;
    return 0;
}

void sim_httpdev_stop(sim_httpdev *d)
{
    if (d) sim_httpserv_stop(&d->srv);
}

void sim_httpdev_free(sim_httpdev *d)
{
    free(d);
}

void sim_httpdev_get_stats(const sim_httpdev *d, sim_httpdev_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!d) return;
    st->connections = d->srv.connections;
    st->requests = d->srv.requests;
    st->responses = d->srv.responses;
    st->bad_requests = d->srv.bad_requests;
    st->faults = d->srv.faults;
}

int sim_httpdev_port(const sim_httpdev *d)
{
    struct sockaddr_storage ss;
    int n = (int)sizeof ss;
    int r = uv_tcp_getsockname(&d->srv.listener, (struct sockaddr *)&ss, &n);
    if (r != 0) return r;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return UV_EAFNOSUPPORT;
}

/* poller.c — per-device timers and health samples around the protocol drivers. */
#include "poller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "timeutil.h"

#define NREASONS (AG_POLL_CONFIG + 1)

typedef struct dev_slot {
    struct ag_poller *p;
    const ag_device *dev;
    const ag_driver_ops *ops;
    void *state;
    uv_timer_t timer;
    int timer_init;
    int64_t started_mono_ms;
    int in_flight;
    unsigned long long errors[NREASONS];
} dev_slot;

struct ag_poller {
    uv_loop_t *loop;
    ag_sink outer;
    ag_sink inner;
    dev_slot *slots;
    size_t nslots;
    size_t open_handles;
    int closing;
    /* the round of ag_poller_poll_all */
    int round_active;
    size_t round_next, round_pending, round_in_flight, round_max;
    unsigned char *round_member; /* per slot: polled by the round */
    ag_round_cb round_done;
    void *round_ud;
    uv_timer_t round_timer;
    int round_timer_init;
};

static void round_fill(ag_poller *p);
static void round_poll_ended(ag_poller *p, dev_slot *s);


/* Devices are the elements of cfg->devices, in the order of the slots: O(1), not a search
 * (a thousand devices' polls end every round). */
static dev_slot *slot_of(ag_poller *p, const ag_device *dev)
{
    if (p->nslots == 0 || dev < p->slots[0].dev) return NULL;
    size_t i = (size_t)(dev - p->slots[0].dev);
    return i < p->nslots && p->slots[i].dev == dev ? &p->slots[i] : NULL;
}

static void on_point(void *ud, const ag_device *dev, const char *metric, const char *unit,
                     const cm_label *labels, size_t nlabels, int64_t ts_ms, double value)
{
    ag_poller *p = ud;
    p->outer.point(p->outer.ud, dev, metric, unit, labels, nlabels, ts_ms, value);
}

static void on_inventory(void *ud, const ag_device *dev, const cm_device_info *info)
{
    ag_poller *p = ud;
    if (p->outer.inventory) p->outer.inventory(p->outer.ud, dev, info);
}

/* A poll ended: write the health samples, then tell the outer sink. */
static void on_done(void *ud, const ag_device *dev, ag_poll_status status, const char *detail)
{
    ag_poller *p = ud;
    dev_slot *s = slot_of(p, dev);
    if (!s) return;
    s->in_flight = 0;
    int64_t now = cm_now_ms();
    double dur = (double)(cm_mono_ms() - s->started_mono_ms) / 1000.0;
    p->outer.point(p->outer.ud, dev, "up", NULL, NULL, 0, now, status == AG_POLL_OK ? 1 : 0);
    p->outer.point(p->outer.ud, dev, "poll_duration_seconds", "s", NULL, 0, now, dur);
    if (status != AG_POLL_OK) {
        s->errors[status]++;
        char key[200];
        snprintf(key, sizeof key, "poll:%s:%d", dev->id, (int)status);
        cm_log_limited(key, 300, CM_LOG_WARN, "device %s (%s:%d): poll failed: %s%s%s", dev->id,
                       dev->address, dev->port, ag_poll_status_name(status), detail ? ": " : "",
                       detail ? detail : "");
    }
    for (int r = 1; r < NREASONS; r++) {
        if (!s->errors[r]) continue;
        cm_label l = {"reason", ag_poll_status_name((ag_poll_status)r)};
        p->outer.point(p->outer.ud, dev, "poll_errors_total", NULL, &l, 1, now,
                       (double)s->errors[r]);
    }
    if (p->outer.done) p->outer.done(p->outer.ud, dev, status, detail);
    round_poll_ended(p, s);
}

static void start_poll(dev_slot *s)
{
    if (s->in_flight) {
        char key[200];
        snprintf(key, sizeof key, "overrun:%s", s->dev->id);
        cm_log_limited(key, 300, CM_LOG_WARN,
                       "device %s: previous poll still running at the next interval; skipped",
                       s->dev->id);
        return;
    }
    s->started_mono_ms = cm_mono_ms();
    if (s->ops->poll(s->state) == 0) s->in_flight = 1;
}

static void on_timer(uv_timer_t *t)
{
    start_poll(t->data);
}

/* The loop runs this once: polls for --once start here, never inside open(). */
static void on_once_timer(uv_timer_t *t)
{
    start_poll(t->data);
    uv_timer_stop(t);
}

int ag_poller_open(ag_poller **out, uv_loop_t *loop, const ag_config *cfg,
                   const ag_profile_set *profiles, const ag_sink *sink, ag_poll_mode mode,
                   char *err, size_t errlen)
{
    ag_poller *p = calloc(1, sizeof *p);
    if (!p) return -1;
    p->loop = loop;
    p->outer = *sink;
    p->inner = (ag_sink){.ud = p, .point = on_point, .inventory = on_inventory, .done = on_done};
    p->slots = calloc(cfg->ndevices ? cfg->ndevices : 1, sizeof *p->slots);
    if (!p->slots) {
        free(p);
        return -1;
    }
    srandom((unsigned)(cm_now_ms() ^ (getpid() << 16)));
    for (size_t i = 0; i < cfg->ndevices; i++) {
        dev_slot *s = &p->slots[i];
        s->p = p;
        s->dev = &cfg->devices[i];
        s->ops = ag_driver_find(s->dev->protocol);
        if (!s->ops) {
            snprintf(err, errlen, "device %s: no driver for protocol '%s'", s->dev->id,
                     s->dev->protocol);
            p->nslots = i;
            ag_poller_close(p);
            return -1;
        }
        if (s->ops->open(loop, s->dev, profiles, &p->inner, &s->state, err, errlen) != 0) {
            p->nslots = i;
            ag_poller_close(p);
            return -1;
        }
        p->nslots = i + 1;
        uv_timer_init(loop, &s->timer);
        s->timer.data = s;
        s->timer_init = 1;
        if (mode == AG_POLL_ONCE) {
            uv_timer_start(&s->timer, on_once_timer, 0, 0);
        } else if (mode == AG_POLL_TIMERS) {
            /* A random phase so a thousand devices do not fire in the same millisecond. */
            uint64_t phase = (uint64_t)(random() % (s->dev->interval_ms > 0 ? s->dev->interval_ms : 1));
            uv_timer_start(&s->timer, on_timer, phase, (uint64_t)s->dev->interval_ms);
        }
    }
    *out = p;
    return 0;
}

/* ---- rounds --------------------------------------------------------------------- */

static void round_finish(ag_poller *p)
{
    p->round_active = 0;
    if (p->round_done) p->round_done(p->round_ud);
}

static void on_round_timer(uv_timer_t *t)
{
    ag_poller *p = t->data;
    if (p->round_active && p->round_pending == 0) round_finish(p);
}

/* Start members of the round until max_in_flight are polling. */
static void round_fill(ag_poller *p)
{
    while (p->round_active && !p->closing && p->round_next < p->nslots &&
           (p->round_max == 0 || p->round_in_flight < p->round_max)) {
        size_t i = p->round_next++;
        dev_slot *s = &p->slots[i];
        if (!p->round_member[i]) continue;
        start_poll(s);
        if (s->in_flight) {
            p->round_in_flight++;
        } else { /* could not start: it ends the round's wait for it at once */
            p->round_member[i] = 0;
            p->round_pending--;
        }
    }
    if (p->round_active && p->round_pending == 0)
        uv_timer_start(&p->round_timer, on_round_timer, 0, 0); /* never from inside the call */
}

static void round_poll_ended(ag_poller *p, dev_slot *s)
{
    size_t i = (size_t)(s - p->slots);
    if (!p->round_active || p->closing || !p->round_member[i]) return;
    p->round_member[i] = 0;
    p->round_in_flight--;
    if (--p->round_pending == 0) {
        round_finish(p);
        return;
    }
    round_fill(p);
}

long ag_poller_poll_all(ag_poller *p, size_t max_in_flight, ag_round_cb done, void *ud)
{
    if (!p || p->closing || p->round_active) return -1;
    if (!p->round_member && !(p->round_member = calloc(p->nslots ? p->nslots : 1, 1))) return -1;
    if (!p->round_timer_init) {
        uv_timer_init(p->loop, &p->round_timer);
        p->round_timer.data = p;
        p->round_timer_init = 1;
    }
    p->round_pending = p->round_in_flight = p->round_next = 0;
    for (size_t i = 0; i < p->nslots; i++) {
        p->round_member[i] = !p->slots[i].in_flight;
        p->round_pending += p->round_member[i];
    }
    p->round_max = max_in_flight;
    p->round_done = done;
    p->round_ud = ud;
    p->round_active = 1;
    long n = (long)p->round_pending;
    round_fill(p);
    return n;
}

static void free_poller(ag_poller *p)
{
    free(p->round_member);
    free(p->slots);
    free(p);
}

static void on_timer_closed(uv_handle_t *h)
{
    dev_slot *s = h->data;
    ag_poller *p = s->p;
    if (--p->open_handles == 0) free_poller(p);
}

static void on_round_timer_closed(uv_handle_t *h)
{
    ag_poller *p = h->data;
    if (--p->open_handles == 0) free_poller(p);
}

void ag_poller_close(ag_poller *p)
{
    if (!p || p->closing) return;
    p->closing = 1;
    if (p->round_timer_init) {
        p->open_handles++;
        uv_timer_stop(&p->round_timer);
        uv_close((uv_handle_t *)&p->round_timer, on_round_timer_closed);
    }
    for (size_t i = 0; i < p->nslots; i++) {
        dev_slot *s = &p->slots[i];
        if (s->state) s->ops->close(s->state);
        s->state = NULL;
        if (s->timer_init) {
            p->open_handles++;
            uv_timer_stop(&s->timer);
            uv_close((uv_handle_t *)&s->timer, on_timer_closed);
        }
    }
    if (p->open_handles == 0) free_poller(p);
}

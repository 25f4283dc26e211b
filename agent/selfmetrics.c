/* selfmetrics.c — spool and upload counters as samples of device "agent". */
#include "selfmetrics.h"

#include <stdio.h>

void ag_selfmetrics_init(ag_selfmetrics *m, const char *version)
{
    m->version = version;
    m->disk_ok_prev = -1;
    m->seen_seq = 0;
    m->seen_ms = 0;
}

/* Seconds the oldest unacknowledged record has waited (0 when none). Records found at
 * start-up have no append time: they count from when we first saw them. */
static double oldest_age_s(ag_selfmetrics *m, const cm_spool_stats *sp, int64_t now_ms)
{
    if (!sp->records) return 0;
    int64_t since = sp->oldest_ms;
    if (!since) {
        if (m->seen_seq != sp->first_seq) {
            m->seen_seq = sp->first_seq;
            m->seen_ms = now_ms;
        }
        since = m->seen_ms;
    }
    return since < now_ms ? (double)(now_ms - since) / 1000.0 : 0;
}

static int disk_event(ag_selfmetrics *m, cm_batch *b, const cm_spool_stats *sp, int64_t now_ms)
{
    int ok = sp->disk_ok ? 1 : 0;
    int prev = m->disk_ok_prev;
    m->disk_ok_prev = ok;
    if (prev == ok || (prev < 0 && ok)) return 0;
    char text[256];
    cm_event e = {.device = AG_SELF_DEVICE, .ts_ms = now_ms, .source = "agent", .text = text};
    if (!ok) {
        e.severity = "critical";
        e.code = "spool_disk_error";
        snprintf(text, sizeof text,
                 "the spool cannot write to its disk (%llu errors so far); records are kept in "
                 "memory until it can",
                 (unsigned long long)sp->disk_errors);
    } else {
        e.severity = "info";
        e.code = "spool_disk_recovered";
        snprintf(text, sizeof text, "the spool writes to its disk again");
    }
    return cm_batch_add_event(b, &e);
}

int ag_selfmetrics_write(ag_selfmetrics *m, cm_batch *b, const cm_spool_stats *sp,
                         const ag_uploader_stats *up, int64_t now_ms)
{
    static const ag_uploader_stats none;
    if (!up) up = &none;
    cm_device_info inv = {
        .id = AG_SELF_DEVICE, .kind = "agent", .model = "cinemon-agent", .firmware = m->version};
    struct {
        const char *metric, *unit;
        double value;
    } s[] = {
        {"agent_spool_bytes", "bytes", (double)sp->bytes},
        {"agent_spool_records", NULL, (double)sp->records},
        {"agent_spool_oldest_age_seconds", "s", oldest_age_s(m, sp, now_ms)},
        {"agent_upload_attempts_total", NULL, (double)up->attempts},
        {"agent_upload_failures_total", NULL, (double)up->failures},
        {"agent_upload_rejected_total", NULL, (double)up->rejected},
        {"agent_spool_dropped_records_total", NULL, (double)sp->dropped_records},
        {"agent_spool_corrupt_records_total", NULL, (double)sp->corrupt_records},
        {"agent_spool_disk_ok", NULL, sp->disk_ok ? 1.0 : 0.0},
        {"agent_last_upload_timestamp_seconds", "s", (double)up->last_ack_ms / 1000.0},
    };
    int rc = cm_batch_add_device(b, &inv);
    for (size_t i = 0; i < sizeof s / sizeof *s; i++)
        if (cm_batch_add_point(b, AG_SELF_DEVICE, s[i].metric, s[i].unit, NULL, 0, now_ms,
                               s[i].value) != 0)
            rc = -1;
    if (disk_event(m, b, sp, now_ms) != 0) rc = -1;
    return rc;
}

int ag_selfmetrics_write_traps(cm_batch *b, const ag_traps_stats *t, int64_t now_ms)
{
    const struct {
        const char *metric, *reason;
        uint64_t v;
    } s[] = {
        {"agent_traps_received_total", NULL, t->datagrams},
        {"agent_trap_events_total", NULL, t->events},
        {"agent_informs_acked_total", NULL, t->informs_acked},
        {"agent_traps_refused_total", "malformed", t->malformed},
        {"agent_traps_refused_total", "bad_community", t->bad_community},
        {"agent_traps_refused_total", "unknown_sender", t->unknown_sender},
        {"agent_traps_refused_total", "unsupported", t->unsupported},
        {"agent_traps_refused_total", "v3_unknown_engine", t->v3_unknown_engine},
        {"agent_traps_refused_total", "v3_unknown_user", t->v3_unknown_user},
        {"agent_traps_refused_total", "v3_wrong_digest", t->v3_wrong_digest},
        {"agent_traps_refused_total", "v3_decrypt_error", t->v3_decrypt_error},
        {"agent_traps_refused_total", "v3_not_in_time", t->v3_not_in_time},
        {"agent_traps_refused_total", "v3_bad_level", t->v3_bad_level},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof s / sizeof *s; i++) {
        cm_label l = {"reason", s[i].reason};
        if (cm_batch_add_point(b, AG_SELF_DEVICE, s[i].metric, NULL, s[i].reason ? &l : NULL,
                               s[i].reason ? 1 : 0, now_ms, (double)s[i].v) != 0)
            rc = -1;
    }
    return rc;
}

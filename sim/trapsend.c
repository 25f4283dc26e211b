/* trapsend.c — SNMPv2c traps of the simulated projectors (see trapsend.h). */
#include "trapsend.h"

#include <stdio.h>
#include <string.h>

#define SNMPV2_TRAP_PDU 0xA7

/* Vendor trap OIDs (shared/docs/devices.md §5). */
#define CHRISTIE_TRAP "1.3.6.1.4.1.25766.1.11.100.3.0."
#define BARCO_TRAP "1.3.6.1.4.1.12612.220.11."
/* SNMPv2-MIB snmpTraps (RFC 3418): linkDown .3, linkUp .4, for the projector's one network
 * interface, ifIndex 1 (RFC 2863). */
#define LINK_DOWN "1.3.6.1.6.3.1.1.5.3"
#define LINK_UP "1.3.6.1.6.3.1.1.5.4"
#define LINK_IFINDEX 1

/* A silent fault episode is the link going down. */
static sim_trap_cause effective_cause(sim_trap_cause cause, sim_fault f)
{
    return cause == SIM_TRAP_FAULT && f == SIM_FAULT_SILENT ? SIM_TRAP_LINK_DOWN : cause;
}

int sim_trap_capable(const sim_device *d)
{
    return d->model == SIM_MODEL_CHRISTIE || d->model == SIM_MODEL_BARCO;
}

int sim_trap_oid(const sim_device *d, sim_trap_cause cause, sim_fault f, sim_oid *oid)
{
    const char *s;
    cause = effective_cause(cause, f);
    if (!sim_trap_capable(d)) return -1;
    if (cause == SIM_TRAP_LINK_DOWN || cause == SIM_TRAP_LINK_UP)
        return sim_oid_parse(cause == SIM_TRAP_LINK_DOWN ? LINK_DOWN : LINK_UP, oid);
    if (d->model == SIM_MODEL_CHRISTIE) {
        /* 2 Interlock, 3 Temperature, 4 SystemComm (1 Fan is no longer sent) */
        s = cause == SIM_TRAP_TEMP ? CHRISTIE_TRAP "3"
            : f == SIM_FAULT_CLOSE ? CHRISTIE_TRAP "2"
                                   : CHRISTIE_TRAP "4";
    } else if (d->model == SIM_MODEL_BARCO) {
        /* temperatureWarning, globalFailure, systemFail */
        s = cause == SIM_TRAP_TEMP ? BARCO_TRAP "4.3.0.10"
            : f == SIM_FAULT_CLOSE ? BARCO_TRAP "2.3.0.9"
                                   : BARCO_TRAP "1.3.0.1";
    } else {
        return -1;
    }
    return sim_oid_parse(s, oid);
}

int sim_trap_link_up_due(const sim_trap_state *ts, const sim_device *d, int64_t now_ms)
{
    return ts->link_down && now_ms >= d->fault.silent_until_ms;
}

int sim_trap_temp_check(sim_trap_state *ts, const sim_device *d, int64_t now_ms)
{
    if (!sim_trap_capable(d)) return 0;
    double limit, v = sim_device_hot_temp(d, now_ms, NULL, &limit);
    if (!ts->primed) {
        ts->primed = 1;
        ts->hot = v >= limit;
        return 0;
    }
    if (ts->hot) {
        if (v < limit - SIM_TRAP_REARM_C) ts->hot = 0;
        return 0;
    }
    if (v < limit) return 0;
    ts->hot = 1;
    return 1;
}

size_t sim_trap_build(sim_trap_state *ts, const sim_device *d, sim_trap_cause cause, sim_fault f,
                      const char *community, int64_t now_ms, uint8_t *out, size_t cap)
{
    sim_oid trap, cell;
    cause = effective_cause(cause, f);
    int link = cause == SIM_TRAP_LINK_DOWN || cause == SIM_TRAP_LINK_UP;
    if (sim_trap_oid(d, cause, f, &trap) != 0) return 0;
    if (!link && ts->last_ms && now_ms - ts->last_ms < SIM_TRAP_MIN_GAP_MS) {
        ts->suppressed++;
        return 0;
    }
    static const sim_oid UPTIME = {.sub = {1, 3, 6, 1, 2, 1, 1, 3, 0}, .len = 9};
    static const sim_oid TRAPOID = {.sub = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0}, .len = 11};
    static const sim_oid SYSNAME = {.sub = {1, 3, 6, 1, 2, 1, 1, 5, 0}, .len = 9};
    /* ifIndex, ifAdminStatus, ifOperStatus of interface 1: linkDown/linkUp OBJECTS */
    static const sim_oid IFINDEX = {.sub = {1, 3, 6, 1, 2, 1, 2, 2, 1, 1, LINK_IFINDEX}, .len = 11};
    static const sim_oid IFADMIN = {.sub = {1, 3, 6, 1, 2, 1, 2, 2, 1, 7, LINK_IFINDEX}, .len = 11};
    static const sim_oid IFOPER = {.sub = {1, 3, 6, 1, 2, 1, 2, 2, 1, 8, LINK_IFINDEX}, .len = 11};
    uint8_t vb[512];
    size_t pos = 0;
    char name[64];
    int k = snprintf(name, sizeof name, "hall%d-projector", d->hall);
    sim_value up = {.tag = SIM_TAG_TIMETICKS, .num = sim_device_uptime_ticks(d, now_ms)};
    sim_value to = {.tag = SIM_TAG_OID, .oid = &trap};
    sim_value nm = {.tag = SIM_TAG_OCTETS, .str = name, .len = k < 0 ? 0 : (size_t)k};
    int rc = sim_ber_put_varbind(vb, sizeof vb, &pos, &UPTIME, &up) |
             sim_ber_put_varbind(vb, sizeof vb, &pos, &TRAPOID, &to);
    if (link) {
        /* admin status up (1); operational status down (2) or up (1) */
        sim_value idx = {.tag = SIM_TAG_INT, .num = LINK_IFINDEX};
        sim_value admin = {.tag = SIM_TAG_INT, .num = 1};
        sim_value oper = {.tag = SIM_TAG_INT, .num = cause == SIM_TRAP_LINK_DOWN ? 2 : 1};
        rc |= sim_ber_put_varbind(vb, sizeof vb, &pos, &IFINDEX, &idx) |
              sim_ber_put_varbind(vb, sizeof vb, &pos, &IFADMIN, &admin) |
              sim_ber_put_varbind(vb, sizeof vb, &pos, &IFOPER, &oper);
    }
    rc |= sim_ber_put_varbind(vb, sizeof vb, &pos, &SYSNAME, &nm);
    if (cause == SIM_TRAP_TEMP) {
        double v = sim_device_hot_temp(d, now_ms, &cell, NULL);
        sim_value t = {.tag = SIM_TAG_INT, .num = (int64_t)(v + (v < 0 ? -0.5 : 0.5))};
        rc |= sim_ber_put_varbind(vb, sizeof vb, &pos, &cell, &t);
    }
    if (rc != 0) return 0;
    size_t n = sim_ber_encode_message(out, cap, 1, (const uint8_t *)community, strlen(community),
                                      SNMPV2_TRAP_PDU, ts->next_id, 0, 0, vb, pos);
    if (n == 0) return 0;
    ts->next_id = ts->next_id == INT32_MAX ? 1 : ts->next_id + 1;
    if (link)
        ts->link_down = cause == SIM_TRAP_LINK_DOWN; /* outside the rate limit */
    else
        ts->last_ms = now_ms ? now_ms : 1;
    ts->sent++;
    return n;
}

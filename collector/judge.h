/* judge.h — turns samples and events into alert transitions with the rules of rules.h
 * (docs/rules.md): hold before firing, hysteresis before resolving, one alert per
 * (rule, site, device, labels).
 *
 * No database, no HTTP: the caller stores and notifies what comes out. State is kept only
 * for what needs it (pending and firing alerts, rate anchors, devices watched by absence
 * rules, latest values of metrics other rules refer to), so a sample of a metric no rule
 * judges costs one hash lookup.
 *
 * Thread-safety: every function below may be called from any thread; a mutex inside the
 * judge serialises them (the writer thread judges, the API thread may export). The screen
 * callbacks are called with that mutex held and must not call back into the judge. */
#ifndef CO_JUDGE_H
#define CO_JUDGE_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "rules.h"

typedef enum {
    CO_ALERT_INACTIVE = 0, /* no alert (a pending one that cleared before its hold ends here) */
    CO_ALERT_PENDING,
    CO_ALERT_FIRING,
    CO_ALERT_RESOLVED
} co_alert_state;

/* A screen's settings (from the screens table). */
typedef struct co_screen_settings {
    co_screen_class cls; /* CO_CLASS_ANY = unknown */
    co_display display;  /* CO_DISPLAY_ANY = unknown */
} co_screen_settings;

typedef struct co_judge_callbacks {
    /* Fill *out for (site, screen): 1 known, 0 unknown (then class and display are unknown).
     * May be NULL. */
    int (*screen)(void *ud, const char *site, const char *screen, co_screen_settings *out);
    /* The screen's commissioning reference for a deviation rule's sample (e.g. spl_dbc with
     * channel "L" → 85.0): 1 found (*out set), 0 none (the sample is not judged). May be NULL. */
    int (*reference)(void *ud, const char *site, const char *screen, const char *device,
                     const char *metric, const cm_label *labels, size_t nlabels, double *out);
    void *ud;
} co_judge_callbacks;

/* One change of one alert. Strings are owned by the list (freed by co_transitions_clear);
 * rule_id points into the rule set. */
typedef struct co_transition {
    const char *rule_id;
    char *site, *screen, *device; /* screen "" when unknown */
    char *labels;                 /* canonical: compact JSON object, keys sorted */
    co_alert_state from, to;      /* firing → firing: the severity changed */
    co_severity severity;
    double value;     /* the judged value (deviation: the difference; rate: per hour; absence:
                         seconds silent; event: occurrences) */
    double threshold; /* the bound crossed (resolved: the bound passed, hysteresis included) */
    int64_t ts_ms;
    char *text; /* one human line, naming the standard */
} co_transition;

typedef struct co_transitions {
    co_transition *v;
    size_t n, cap;
} co_transitions;

/* Empty the list (keeps its memory); free it. */
void co_transitions_clear(co_transitions *t);
void co_transitions_free(co_transitions *t);
/* Remove transition i (its strings freed), keeping the order of the others. */
void co_transitions_remove(co_transitions *t, size_t i);

typedef struct co_judge co_judge;

/* A judge over rules (not owned; must outlive the judge). cb is copied; NULL = no callbacks. */
co_judge *co_judge_new(const co_rules *rules, const co_judge_callbacks *cb);
void co_judge_free(co_judge *j);
/* Replace the overrides (the judge takes ownership of o, frees the previous; NULL = none). */
void co_judge_set_overrides(co_judge *j, co_overrides *o);

/* Judge one sample; transitions are appended to out. labels need not be sorted; screen may be
 * NULL. 0, or -1 on out of memory (state unchanged for the failing rule). */
int co_judge_sample(co_judge *j, const char *site, const char *screen, const char *device,
                    const char *metric, const cm_label *labels, size_t nlabels, int64_t ts_ms,
                    double value, co_transitions *out);
/* Start watching a device for the absence rules with metric "*" as if a sample came at ts_ms
 * (at start-up, from the store's latest sample of every device, so a device that never
 * reports again after a restart still raises device_silent). Nothing else is judged. */
int co_judge_device_seen(co_judge *j, const char *site, const char *screen, const char *device,
                         int64_t ts_ms);
/* Judge one event (code, source, severity "info"|"warning"|"critical", text may be NULL). */
int co_judge_event(co_judge *j, const char *site, const char *screen, const char *device,
                   const char *code, const char *source, const char *severity, int64_t ts_ms,
                   const char *text, co_transitions *out);
/* Time passes: absence rules fire for devices silent too long, event alerts with
 * resolve_after resolve. Call every few seconds. */
int co_judge_tick(co_judge *j, int64_t now_ms, co_transitions *out);

/* An active (pending or firing) alert, for export and restore. */
typedef struct co_alert_info {
    const char *rule_id, *site, *screen, *device, *labels; /* labels canonical, as above */
    co_alert_state state;
    co_severity severity;
    double value, threshold;
    int64_t since_ms; /* first violating sample (pending) or when it fired (firing) */
    int64_t last_ms;  /* last sample or event that touched it */
    int count;        /* consecutive violating samples / occurrences */
} co_alert_info;

/* Call fn for every pending and firing alert (strings valid during the call); fn returns 0 to
 * go on, non-zero to stop (returned). */
int co_judge_foreach(co_judge *j, int (*fn)(void *ud, const co_alert_info *a), void *ud);
/* Restore one alert exported before a restart (no transition is produced). 0, or -1 with err
 * (unknown rule, bad state, labels not canonical JSON, out of memory). */
int co_judge_restore(co_judge *j, const co_alert_info *a, char *err, size_t errlen);
/* Drop the pending or firing alert (rule_id, site, device, labels as a JSON object) without
 * producing a transition: it was ended elsewhere (another collector sharing the store
 * resolved it), or an absence alert is not this judge's to raise. Its state (hold count,
 * rate anchors, absence watch) goes with it; the next sample starts afresh. 1 dropped, 0 no
 * such active alert, -1 bad arguments (unknown rule, labels not a JSON object of strings). */
int co_judge_forget(co_judge *j, const char *rule_id, const char *site, const char *device,
                    const char *labels);
/* Number of pending + firing alerts. */
size_t co_judge_active(co_judge *j);

/* Whether value is within the tolerance of threshold or deviation rule `rule` for a sample
 * of (site, screen) with these labels and screen settings st (NULL = unknown), by the same
 * choice, override and band logic as co_judge_sample but without touching any alert state
 * (hold and hysteresis play no part): *in = 1 inside every band, 0 outside one. reference:
 * the screen's reference for a deviation rule (NULL = none). ov: overrides (may be NULL).
 * Returns 1 judged, 0 the rule does not judge this sample (labels do not match, no choice,
 * disabled by an override, no reference, or it needs live values: percent_of, while), -1 bad
 * arguments. Pure: safe from any thread. */
int co_rules_in_tolerance(const co_overrides *ov, const co_rule *rule, const char *site,
                          const char *screen, const co_screen_settings *st, const cm_label *labels,
                          size_t nlabels, double value, const double *reference, int *in);
/* The same with the judge's current overrides (under its mutex). */
int co_judge_in_tolerance(co_judge *j, const co_rule *rule, const char *site, const char *screen,
                          const co_screen_settings *st, const cm_label *labels, size_t nlabels,
                          double value, const double *reference, int *in);

/* "inactive", "pending", "firing", "resolved". */
const char *co_alert_state_name(co_alert_state s);

#endif

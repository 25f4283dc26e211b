/* rules.h — quality rules as data (docs/rules.md): loading and validating the *.json files
 * of collector/rules/
 * and the per-site / per-screen overrides applied on top of them.
 *
 * A rule set is read-only once loaded and may be shared by any number of threads. Every error
 * names the file and the JSON path: `rules/picture.json: rules[3].hold: expected ...`.
 * The structures below are public so the judge (judge.c) and the rules API can read them;
 * nothing outside rules.c creates or changes them. */
#ifndef CO_RULES_H
#define CO_RULES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "severity.h"

typedef enum {
    CO_RULE_THRESHOLD = 0, /* value outside [min, max] or target ± tolerance */
    CO_RULE_DEVIATION,     /* value − the screen's reference (or % of it) outside the band */
    CO_RULE_RATE,          /* change per hour (over a window) outside the band */
    CO_RULE_ABSENCE,       /* no sample of a device for N × its interval */
    CO_RULE_EVENT          /* an event code raises, an optional clearing code resolves */
} co_rule_kind;

/* Screen class, presentation mode (the sample's "mode" label) and display type. 0 = any/unknown. */
typedef enum { CO_CLASS_ANY = 0, CO_CLASS_THEATRE, CO_CLASS_REVIEW } co_screen_class;
typedef enum { CO_MODE_ANY = 0, CO_MODE_2D, CO_MODE_3D, CO_MODE_HDR } co_mode;
typedef enum { CO_DISPLAY_ANY = 0, CO_DISPLAY_PROJECTION, CO_DISPLAY_LED } co_display;

/* An allowed range: ok iff lo <= v <= hi (a missing side is open). target ± tol sets both
 * (deviation and rate bands have the implicit target 0). */
typedef struct co_band {
    unsigned char set, has_lo, has_hi, has_target, has_tol;
    double lo, hi, target, tol;
} co_band;

/* Band values of a rule (or of one "targets" choice), by severity. */
typedef struct co_limits {
    co_band band[CO_NSEV];
    double hysteresis; /* resolve only once inside each bound by this much */
    int has_hysteresis;
} co_limits;

/* One choice of a threshold rule's "targets": the first whose `when` matches is used. */
typedef struct co_choice {
    co_screen_class cls;
    co_mode mode;
    co_display display;
    co_limits lim;
    char *standard; /* NULL = the rule's */
} co_choice;

/* A label matcher: key = one of vals (negate: none of vals, or the label absent). */
typedef struct co_matcher {
    char *key;
    char **vals;
    size_t nvals;
    int negate;
} co_matcher;

/* Hold before firing: N consecutive violating samples or a duration, whichever comes first
 * (0 = that half unused; both 0 = fire on the first violating sample). */
typedef struct co_hold {
    int samples;
    int64_t ms;
} co_hold;

typedef struct co_rule {
    char *id, *metric, *standard, *description, *file;
    co_rule_kind kind;
    co_severity severity; /* the severity of the plain band keys; event rules: see has_severity */
    int has_severity;     /* event rules without "severity" take the event's */
    co_matcher *match;
    size_t nmatch;
    co_hold hold;
    co_choice *choices; /* threshold: >= 1 (a rule without "targets" has one catch-all) */
    size_t nchoices;
    co_limits lim;      /* deviation, rate */
    int needs_screen;   /* some choice depends on class or display */
    int percent;        /* deviation: difference in % of the reference */
    char *percent_of;   /* threshold: value as % of this metric (same device and labels) */
    char *while_metric; /* only judged while this device-level metric is one of while_in */
    double *while_in;
    size_t nwhile_in;
    int64_t window_ms;   /* rate: span the change is measured over (default 1h) */
    int intervals;       /* absence: N intervals of silence (default 3) */
    int64_t interval_ms; /* absence: interval assumed until two samples showed it (60s) */
    char **exclude;      /* absence with metric "*": metrics that do not count as life */
    size_t nexclude;
    char *code, *clear_code, *source; /* event: code ("*" = any), clearing code, source */
    int64_t resolve_after_ms;         /* event: resolve when quiet this long (0 = never) */
    json_t *json;                     /* the rule as written (for the rules API) */
} co_rule;

typedef struct co_rules co_rules;

/* Load every *.json of dir (sorted by name) into a new rule set; NULL with err (file: path:
 * message). Rule ids are unique across the files. */
co_rules *co_rules_load_dir(const char *dir, char *err, size_t errlen);
/* Parse one rules file held in memory; name is used in messages. NULL with err. */
co_rules *co_rules_load_buf(const char *name, const char *buf, size_t len, char *err,
                            size_t errlen);
/* Add the rules of one more file (in memory) to r; ids must stay unique. 0 or -1 with err
 * (r unchanged, except after out of memory: then free r). Not while a judge uses r. */
int co_rules_add_buf(co_rules *r, const char *name, const char *buf, size_t len, char *err,
                     size_t errlen);
void co_rules_free(co_rules *r);

/* Number of rules and the i-th (in file order). */
size_t co_rules_count(const co_rules *r);
const co_rule *co_rules_at(const co_rules *r, size_t i);
/* The rule with this id, or NULL. */
const co_rule *co_rules_find(const co_rules *r, const char *id);
/* Rules judging samples of metric (one hash lookup); *n = 0 and NULL when none. *referenced =
 * 1 when some rule reads this metric's latest value (percent_of, while). */
const co_rule *const *co_rules_for_metric(const co_rules *r, const char *metric, size_t *n,
                                          int *referenced);
/* Absence rules with metric "*" (judging every sample). */
const co_rule *const *co_rules_any_metric(const co_rules *r, size_t *n);
/* Event rules. */
const co_rule *const *co_rules_events(const co_rules *r, size_t *n);

/* Names: "info"/"warning"/"critical", "threshold"/..., and parsing of the screen words
 * ("theatre"|"review", "2d"|"3d"|"hdr", "projection"|"led"); parsers return 0 or -1. */
const char *co_severity_name(co_severity s);
int co_severity_parse(const char *s, co_severity *out);
const char *co_rule_kind_name(co_rule_kind k);
int co_screen_class_parse(const char *s, co_screen_class *out);
int co_mode_parse(const char *s, co_mode *out);
int co_display_parse(const char *s, co_display *out);

/* Overrides: {"overrides": [{"site": "...", "screen": "..." (optional), "rule": "<id>",
 * "when": {class, mode, display} (optional, threshold rules: the choices it changes),
 * "set": {"enabled", "hold", "hysteresis", "min", "max", "target", "tolerance",
 * "info"|"warning"|"critical": {band}, "intervals"}}]}, validated against the rule set. */
typedef struct co_overrides co_overrides;

typedef struct co_override {
    co_screen_class cls; /* "when": the threshold choices it applies to (0 = any) */
    co_mode mode;
    co_display display;
    struct co_override *next; /* the next override of the same (rule, site, screen) */
    int has_enabled, enabled;
    int has_hold;
    co_hold hold;
    int has_hysteresis;
    double hysteresis;
    co_band band[CO_NSEV]; /* set = this severity's band has overridden values */
    int has_intervals, intervals;
} co_override;

/* Parse overrides for rule set r (r must outlive them); NULL with err naming name and path. */
co_overrides *co_overrides_parse(const co_rules *r, const char *name, const char *buf, size_t len,
                                 char *err, size_t errlen);
/* Read and parse an overrides file. */
co_overrides *co_overrides_load(const co_rules *r, const char *path, char *err, size_t errlen);
void co_overrides_free(co_overrides *o);
/* The override of rule for (site, screen) that applies to choice ch (NULL: a rule without
 * choices): the screen's, else the site's, else NULL. o may be NULL. */
const co_override *co_overrides_find(const co_overrides *o, const co_rule *rule, const char *site,
                                     const char *screen, const co_choice *ch);

/* 1 when override ov (its "when") applies to threshold choice ch (NULL = always). */
int co_override_applies(const co_override *ov, const co_choice *ch);
/* Apply an override's values to the limits of a rule (band by band, hysteresis). */
void co_limits_apply(co_limits *lim, const co_override *ov);

#endif

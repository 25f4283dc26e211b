/* batch.h — the sample/batch model of the wire protocol (DESIGN.md "Wire protocol").
 *
 * A batch owns every string and array in it through its arena: nothing inside is freed on
 * its own, cm_batch_free releases all of it. Series are found by (device, metric, labels)
 * through a hash index so an agent can add points from many polls to the same series. */
#ifndef CM_BATCH_H
#define CM_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

#define CM_WIRE_VERSION 1
#define CM_WIRE_VERSION_SUMMARY 2 /* a batch with summary sections (below) */
#define CM_MAX_LABELS 16
#define CM_MAX_NAME 128  /* metric, label key, device id, agent id, site code */
#define CM_MAX_VALUE 256 /* label value, device inventory strings */
#define CM_MAX_TEXT 1024 /* event text */

typedef struct cm_label {
    const char *key;
    const char *value;
} cm_label;

typedef struct cm_point {
    int64_t ts_ms;
    double value;
} cm_point;

typedef struct cm_series {
    const char *device;
    const char *metric;
    const char *unit; /* may be NULL */
    cm_label *labels; /* sorted by key */
    size_t nlabels;
    cm_point *points;
    size_t npoints, cap;
} cm_series;

typedef struct cm_device_info {
    const char *id, *screen, *kind, *vendor, *model, *serial, *firmware,
        *profile; /* NULL = absent */
} cm_device_info;

typedef struct cm_event {
    const char *device;
    int64_t ts_ms;
    const char *severity; /* info, warning, critical */
    const char *code;
    const char *text;
    const char *source; /* snmp-trap, agent, pjlink, ... */
} cm_event;

/* Records of the agent's spool that are lost for good, and why (spool_full, corrupt,
 * rejected, disk_error, missing). */
typedef struct cm_gap {
    uint64_t from_seq, to_seq; /* inclusive */
    const char *reason;
} cm_gap;

/* ---- summary sections (wire version 2, docs/forwarding.md "mode = summary"): what a
 * collector forwarding in summary mode sends instead of samples. */

/* One UTC hour of a series: count, sum, min and max of its samples. */
typedef struct cm_bucket {
    int64_t bucket_ms; /* the hour's first ms (a multiple of 3600000) */
    int64_t n;         /* >= 1 */
    double sum, min, max;
} cm_bucket;

/* Hourly roll-ups of one series (rollups_1h[]), ascending by hour, and its latest point. */
typedef struct cm_rollup {
    const char *device, *metric;
    const char *unit; /* may be NULL */
    cm_label *labels; /* sorted by key */
    size_t nlabels;
    cm_bucket *buckets;
    size_t nbuckets;
    int has_latest;
    cm_point latest;
} cm_rollup;

/* One alert as the tier below stores it (alerts[]); its site is the batch's. */
typedef struct cm_alert_entry {
    const char *rule, *screen, *device; /* screen may be NULL (none) */
    cm_label *labels;                   /* sorted by key */
    size_t nlabels;
    const char *severity;    /* info, warning, critical */
    const char *state;       /* pending, firing, resolved */
    double value, threshold; /* NaN = none */
    const char *text;        /* may be NULL */
    int64_t started_ms, updated_ms;
    int64_t firing_ms, resolved_ms; /* 0 = none */
} cm_alert_entry;

/* One day's compliance figure of a screen of the batch's site (compliance[]). */
typedef struct cm_compliance_entry {
    const char *screen;
    const char *day;      /* YYYY-MM-DD (UTC) */
    const char *quantity; /* luminance, white, spl */
    int64_t in_ms, measured_ms;
} cm_compliance_entry;

typedef struct cm_batch {
    cm_arena arena;
    int v;
    const char *agent_id, *agent_version, *site;
    uint64_t seq;       /* the last spool record this batch carries */
    uint64_t first_seq; /* the first one (0 on the wire = absent = seq) */
    int64_t sent_ms;
    cm_gap *gaps;
    size_t ngaps, gaps_cap;
    cm_device_info *devices;
    size_t ndevices, devices_cap;
    cm_series *series;
    size_t nseries, series_cap;
    cm_event *events;
    size_t nevents, events_cap;
    /* summary sections (v 2) */
    cm_rollup *rollups;
    size_t nrollups, rollups_cap;
    cm_alert_entry *alerts;
    size_t nalerts, alerts_cap;
    cm_compliance_entry *compliance;
    size_t ncompliance, compliance_cap;
    size_t nbuckets_total;
    /* private: open-addressing index of series by (device, metric, labels) */
    uint32_t *index;
    size_t index_cap;
    size_t npoints_total;
} cm_batch;

/* Initialise an empty batch (v = 1). */
void cm_batch_init(cm_batch *b);
/* Free everything the batch owns; the batch may be initialised again. */
void cm_batch_free(cm_batch *b);
/* Set the agent identity; strings are copied. */
int cm_batch_set_agent(cm_batch *b, const char *id, const char *version, const char *site);
/* Add or replace a device's inventory record (matched by id); strings are copied, inventory
 * strings cut to CM_MAX_VALUE bytes (on a UTF-8 boundary). */
int cm_batch_add_device(cm_batch *b, const cm_device_info *d);
/* Append one point to the series (device, metric, labels), creating it when new. Labels need
 * not be sorted; strings are copied. Returns 0 or -1 (out of memory / too many labels /
 * duplicate label key / name or value too long / value not finite: NaN and inf have no JSON). */
int cm_batch_add_point(cm_batch *b, const char *device, const char *metric, const char *unit,
                       const cm_label *labels, size_t nlabels, int64_t ts_ms, double value);
/* Append an event; strings are copied. -1 when severity is not info|warning|critical or
 * device, code, source are missing/too long; text is cut to CM_MAX_TEXT. */
int cm_batch_add_event(cm_batch *b, const cm_event *e);
/* Append a gap report (reason copied; from_seq <= to_seq). 0 or -1. */
int cm_batch_add_gap(cm_batch *b, uint64_t from_seq, uint64_t to_seq, const char *reason);
/* Make room for this many more devices, series and events (for decoders that know counts). */
int cm_batch_reserve(cm_batch *b, size_t ndevices, size_t nseries, size_t nevents);
/* Find or create the series (device, metric, labels) as cm_batch_add_point does; NULL on
 * error. The pointer is valid until the next call that may add a series. */
cm_series *cm_batch_series(cm_batch *b, const char *device, const char *metric, const char *unit,
                           const cm_label *labels, size_t nlabels);
/* Append n points to s (a series of b) for the caller to fill in; NULL on out of memory. */
cm_point *cm_batch_extend_points(cm_batch *b, cm_series *s, size_t n);
/* Number of points across all series. */
size_t cm_batch_points(const cm_batch *b);
/* True when the batch holds no series, events, devices, gaps or summary sections. */
int cm_batch_empty(const cm_batch *b);

/* ---- summary sections */

/* Append the roll-ups of a series (strings, labels and buckets copied; labels need not be
 * sorted). -1 when out of memory, a name is missing, too long or not a metric name, a label
 * is repeated, there is neither a bucket nor a latest point, a bucket is not on the hour, has
 * n < 1 or min > max, the buckets are not ascending, or a value is not finite. */
int cm_batch_add_rollup(cm_batch *b, const cm_rollup *r);
/* Append an alert (strings and labels copied; text cut to CM_MAX_TEXT). -1 when out of memory,
 * rule is not a name, device is missing, severity or state unknown, a firing alert has no
 * firing_ms or a resolved one no resolved_ms, or a label is repeated. */
int cm_batch_add_alert(cm_batch *b, const cm_alert_entry *a);
/* Append a compliance figure (strings copied). -1 when out of memory, the day is not a real
 * YYYY-MM-DD date, the quantity unknown, the screen missing, or not 0 <= in <= measured. */
int cm_batch_add_compliance(cm_batch *b, const cm_compliance_entry *c);
/* True when the batch carries a summary section. */
int cm_batch_has_summary(const cm_batch *b);
/* Append in's summary sections to out, and raise out->v to in->v (a merge of spool records:
 * the uploader merges devices, series, events and gaps itself). 0 or -1 (out of memory). */
int cm_batch_merge_summary(cm_batch *out, const cm_batch *in);
/* 1 when s is a real date YYYY-MM-DD between 2000-01-01 and 2099-12-31, else 0. */
int cm_batch_valid_day(const char *s);

#endif

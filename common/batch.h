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
/* True when the batch holds no series, events, devices or gaps. */
int cm_batch_empty(const cm_batch *b);

#endif

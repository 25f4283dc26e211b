/* wire.h — versioned JSON encoding of a batch and its strict decoder.
 *
 * The decoder refuses anything DESIGN.md does not describe: unknown keys, wrong types,
 * out-of-range numbers, names that are not snake_case, more than CM_MAX_LABELS labels,
 * timestamps outside 2000..2100, strings longer than the limits in batch.h. On the first
 * error it fills `at` with the JSON path of the offending value, e.g. "series[3].points[0][1]",
 * and `err` with what is wrong.
 *
 * Exactly-once additions (still version 1; both keys optional, so older agents and
 * collectors interoperate):
 *   "first_seq": integer, 1 <= first_seq <= seq. The batch carries the agent's spool records
 *       first_seq..seq. Absent means first_seq = seq (one record); cm_batch.first_seq is then 0.
 *       Encoded only when first_seq != 0 && first_seq != seq.
 *   "gaps": [{"from_seq": int >= 1, "to_seq": int >= from_seq, "reason": "spool_full"}, ...]
 *       at most CM_WIRE_MAX_GAPS entries: records the agent lost for good. reason is
 *       snake_case, at most CM_WIRE_MAX_REASON bytes; agents use spool_full, corrupt, rejected,
 *       disk_error (the collector itself records "missing" for seqs that never arrived).
 *       Encoded only when the batch has gaps. Unknown keys are refused ("gaps[0].until").
 * Summary sections (version 2, docs/forwarding.md "mode = summary"): a batch with any of
 *   "rollups_1h": [{"device", "metric", "labels", "unit", "buckets": [[bucket_ms, n, sum, min,
 *       max], ...] (hours ascending, each once), "latest": [ts_ms, value]}] (buckets may be
 *       empty when latest is given; buckets count against max_points, entries max_series),
 *   "alerts": [{"rule", "screen", "device", "labels", "severity", "state" (pending | firing |
 *       resolved), "value", "threshold" (number or null), "text", "started_ms", "firing_ms",
 *       "resolved_ms" (null when none; required by the state firing / resolved),
 *       "updated_ms"}] (at most CM_WIRE_MAX_ALERTS),
 *   "compliance": [{"screen", "day": "YYYY-MM-DD", "quantity" (luminance | white | spl),
 *       "in_ms", "measured_ms" (0 <= in_ms <= measured_ms)}] (at most CM_WIRE_MAX_COMPLIANCE)
 *   says "v": 2 (a section in a version 1 batch is refused at its key, and a version 2 batch
 *   carries no series and no events: refused at "series" / "events"). The alerts and figures
 *   are of the batch's agent.site. The encoder writes "v": 2 whenever a section is present; a
 *   decoder of version 1 only refuses such a batch at "v".
 * The collector answers a batch with seq <= its last_seq L as a duplicate (200, nothing
 * stored), one with first_seq <= L < seq with 409 {"error", "at": "first_seq", "last_seq": L}
 * (the agent moves its cursor to L and re-batches from L + 1), and stores any other. */
#ifndef CM_WIRE_H
#define CM_WIRE_H

#include <stddef.h>

#include "batch.h"

#define CM_WIRE_MAX_GAPS 1000         /* gap reports per batch */
#define CM_WIRE_MAX_REASON 64         /* bytes of a gap reason */
#define CM_WIRE_MAX_ALERTS 10000      /* alerts[] entries per batch */
#define CM_WIRE_MAX_COMPLIANCE 100000 /* compliance[] entries per batch */

typedef struct cm_wire_limits {
    size_t max_depth;  /* JSON nesting depth (default 8) */
    size_t max_series; /* per batch (default 100000) */
    size_t max_points; /* per batch (default 1000000) */
} cm_wire_limits;

/* Encode to a NUL-terminated compact JSON string (malloc'ed, caller frees); NULL on OOM. */
char *cm_wire_encode(const cm_batch *b, size_t *len_out);
/* Decode and validate buf[0..len) into an initialised batch `out`. Returns 0, or -1 with
 * err ("expected a number") and at ("series[3].points[0][1]", "" for the whole body).
 * limits may be NULL (or fields 0) for the defaults. On error `out` may hold part of the
 * batch: cm_batch_free it either way. Series repeated in the body are merged. jansson's tree
 * goes to a per-thread scratch arena (when cm_arena_json_install() ran) that is reused by
 * the next call on the thread and freed when the thread exits. */
int cm_wire_decode(const char *buf, size_t len, const cm_wire_limits *limits, cm_batch *out,
                   char *err, size_t errlen, char *at, size_t atlen);
/* True when s is a valid metric or label name: [a-z_][a-z0-9_]*, 1..CM_MAX_NAME bytes. */
int cm_wire_valid_name(const char *s);

#endif

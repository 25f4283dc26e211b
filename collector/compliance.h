/* compliance.h — per screen and UTC day, the share of measured time within tolerance for
 * luminance, white point and SPL (docs/compliance.md), and its roll-ups per site, city,
 * province and nation.
 *
 * Whether a sample is within tolerance comes from the judge's own rules and overrides
 * (co_judge_in_tolerance): screen_luminance (luminance), white_point_x and white_point_y
 * (white), spl_deviation and spl_deviation_subwoofer (spl). Each sample counts for the time
 * until the next sample of its series, capped at 3 x the series' typical interval and never
 * past the end of its day. Figures are computed from the stored samples and stored per
 * (site, screen, day, quantity); a group's share is sum(in) / sum(measured) over its screens.
 * The figures a tier below forwarded (co_store_compliance_received) are kept in each
 * recomputation for the screens and quantities this collector measured nothing of itself.
 *
 * Thread-safety: every function may be called from any thread; runs are serialised. */
#ifndef CO_COMPLIANCE_H
#define CO_COMPLIANCE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "judge.h"
#include "rules.h"
#include "store.h"

#define CO_COMPLIANCE_DEFAULT_INTERVAL_MS (10 * 60 * 1000LL)

typedef enum {
    CO_LEVEL_SCREEN = 0,
    CO_LEVEL_SITE,
    CO_LEVEL_CITY,
    CO_LEVEL_PROVINCE,
    CO_LEVEL_NATION
} co_compliance_level;

typedef struct co_compliance co_compliance;

/* A compliance engine over store s and rules (neither owned; both must outlive it); judge
 * (may be NULL = no overrides) supplies the overrides in force. interval_ms: how often the
 * figures of today and yesterday are recomputed (<= 0: the default, 10 min). NULL on OOM. */
co_compliance *co_compliance_new(co_store *s, const co_rules *rules, co_judge *judge,
                                 int64_t interval_ms);
void co_compliance_free(co_compliance *c);
/* Called after the figures of a day were stored (by a run, the tick or a report's refresh),
 * with every figure of that day ('YYYY-MM-DD') and the time they were stored (their
 * updated_ms), while the engine's lock is held: the hook must not call back into c. For the
 * forwarder's summary mode (forward.h); data flows one way, compliance → forward. */
typedef void (*co_compliance_hook)(void *ud, const char *day, const co_compliance_row *rows,
                                   size_t n, int64_t updated_ms);
/* Set (fn NULL: clear) the hook; when this returns, no call of the previous hook is running. */
void co_compliance_set_hook(co_compliance *c, co_compliance_hook fn, void *ud);
/* Compute and store the figures of UTC day `day` (days since the epoch) from its samples.
 * 0 or -1 with err. */
int co_compliance_run_day(co_compliance *c, int64_t day, int64_t now_ms, char *err, size_t errlen);
/* Timer: once interval_ms has passed since the last tick run, recompute today and yesterday.
 * 0 (also when not yet due) or -1 with err. */
int co_compliance_tick(co_compliance *c, int64_t now_ms, char *err, size_t errlen);

/* The roll-up of day at level, filtered by site, province and city (NULL = any) and by the
 * caller's scope sc (NULL = every site; a group sums only the sites within it):
 * [{level key fields, "day", "screens": n, "luminance"|"white"|"spl": {"in_tolerance":
 * 0..1 | null, "measured_hours"}}] sorted by key. With c (may be NULL), the figures are
 * recomputed first when they are older than the interval (today) or were computed before the
 * day ended (past days). NULL with err. */
json_t *co_compliance_report(co_store *s, co_compliance *c, co_compliance_level level, int64_t day,
                             const char *site, const char *province, const char *city,
                             const co_scope *sc, int64_t now_ms, char *err, size_t errlen);

/* "screen", "site", "city", "province", "nation". 0 or -1. */
int co_compliance_level_parse(const char *s, co_compliance_level *out);
/* "YYYY-MM-DD" (a real date) to days since the epoch. 0 or -1. */
int co_compliance_day_parse(const char *s, int64_t *day);
/* Days since the epoch to "YYYY-MM-DD" (buf of at least 11 bytes). */
void co_compliance_day_format(int64_t day, char *buf, size_t len);
/* The UTC day (days since the epoch) of a time in ms. */
int64_t co_compliance_day_of(int64_t ts_ms);

#endif

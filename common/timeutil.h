/* timeutil.h — clocks and duration parsing. */
#ifndef CM_TIMEUTIL_H
#define CM_TIMEUTIL_H

#include <stdint.h>

/* Wall-clock time in milliseconds since the Unix epoch. */
int64_t cm_now_ms(void);
/* Monotonic time in milliseconds (for intervals, never for timestamps). */
int64_t cm_mono_ms(void);
/* Parse a duration "250ms", "30s", "5m", "2h", "1d" or a bare number of seconds into
 * milliseconds; returns 0, or -1 on a malformed or negative value. */
int cm_parse_duration_ms(const char *s, int64_t *out_ms);
/* Format ms since epoch as ISO-8601 UTC "2026-11-25T16:14:00.123Z" into buf. */
void cm_format_iso_ms(int64_t ms, char *buf, unsigned len);

#endif

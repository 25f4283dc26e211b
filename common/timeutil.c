/* timeutil.c — clocks and duration parsing. */
#include "timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t cm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cm_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cm_parse_duration_ms(const char *s, int64_t *out_ms)
{
    if (!s || !*s) return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0 || v != v) return -1;
    double mult;
    if (*end == '\0' || strcmp(end, "s") == 0) mult = 1000;
    else if (strcmp(end, "ms") == 0) mult = 1;
    else if (strcmp(end, "m") == 0) mult = 60e3;
    else if (strcmp(end, "h") == 0) mult = 3600e3;
    else if (strcmp(end, "d") == 0) mult = 86400e3;
    else return -1;
    double ms = v * mult;
    if (ms > 9.2e15) return -1;
    *out_ms = (int64_t)(ms + 0.5);
    return 0;
}

void cm_format_iso_ms(int64_t ms, char *buf, unsigned len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

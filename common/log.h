/* log.h — levelled logging to stderr with rate limiting of repeated errors. */
#ifndef CM_LOG_H
#define CM_LOG_H

#include <stdarg.h>

typedef enum { CM_LOG_DEBUG = 0, CM_LOG_INFO, CM_LOG_WARN, CM_LOG_ERROR } cm_log_level;

/* Set the lowest level printed (default INFO) and the program name shown on each line. */
void cm_log_init(const char *prog, cm_log_level min);
/* Parse "debug|info|warn|error"; returns 0 and fills *out, or -1. */
int cm_log_level_parse(const char *s, cm_log_level *out);
/* Print one line: "<iso time> <prog> <LEVEL> <message>". Thread-safe. */
void cm_log(cm_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like cm_log, but a message with the same key is printed at most once per `every_s`
 * seconds; the next print says how many were suppressed. Thread-safe. */
void cm_log_limited(const char *key, int every_s, cm_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define cm_debug(...) cm_log(CM_LOG_DEBUG, __VA_ARGS__)
#define cm_info(...) cm_log(CM_LOG_INFO, __VA_ARGS__)
#define cm_warn(...) cm_log(CM_LOG_WARN, __VA_ARGS__)
#define cm_error(...) cm_log(CM_LOG_ERROR, __VA_ARGS__)

#endif

/* apierror.h — the JSON body of every API error: {"error": "...", "at": "..."}. */
#ifndef CO_APIERROR_H
#define CO_APIERROR_H

#include <jansson.h>

/* A new {"error": <formatted message>, "at": at or ""} (caller decrefs); NULL on OOM. `at` is
 * the JSON path, the query parameter or the header at fault. */
json_t *co_api_error(const char *at, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

/* apierror.h — the JSON body of every API answer: {"data": ...} or {"error": "...", "at": "..."}.
 */
#ifndef CO_APIERROR_H
#define CO_APIERROR_H

#include <jansson.h>

/* A new {"error": <formatted message>, "at": at or ""} (caller decrefs); NULL on OOM. `at` is
 * the JSON path, the query parameter or the header at fault. */
json_t *co_api_error(const char *at, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* *body = co_api_error(at, fmt, ...); returns status (for `return co_api_fail(...)`). */
unsigned co_api_fail(json_t **body, unsigned status, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* *body = {"data": data} (data taken) and 200; for NULL data (the store failed with err) log
 * "what: err" once per burst and answer 500 without the detail. */
unsigned co_api_answer(json_t *data, const char *what, const char *err, json_t **body);

#endif

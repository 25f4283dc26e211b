/* apierror.c — the JSON body of every API error. */
#include "apierror.h"

#include <stdarg.h>
#include <stdio.h>

#include "log.h"

json_t *co_api_error(const char *at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return json_pack("{s:s, s:s}", "error", msg, "at", at ? at : "");
}

unsigned co_api_fail(json_t **body, unsigned status, const char *at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    *body = json_pack("{s:s, s:s}", "error", msg, "at", at ? at : "");
    return status;
}

unsigned co_api_answer(json_t *data, const char *what, const char *err, json_t **body)
{
    if (!data) {
        cm_log_limited("api-store", 10, CM_LOG_ERROR, "reading %s: %s", what, err);
        return co_api_fail(body, 500, "", "store error while reading %s", what);
    }
    *body = json_pack("{s:o}", "data", data);
    return *body ? 200 : co_api_fail(body, 500, "", "out of memory");
}

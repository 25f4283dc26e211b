/* apierror.c — the JSON body of every API error. */
#include "apierror.h"

#include <stdarg.h>
#include <stdio.h>

json_t *co_api_error(const char *at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return json_pack("{s:s, s:s}", "error", msg, "at", at ? at : "");
}

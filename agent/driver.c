/* driver.c — what the driver interface shares between drivers: status names. */
#include "driver.h"

const char *ag_poll_status_name(ag_poll_status s)
{
    switch (s) {
    case AG_POLL_OK:
        return "ok";
    case AG_POLL_TIMEOUT:
        return "timeout";
    case AG_POLL_REFUSED:
        return "refused";
    case AG_POLL_AUTH:
        return "auth";
    case AG_POLL_PROTOCOL:
        return "protocol";
    case AG_POLL_CONFIG:
        return "config";
    }
    return "unknown";
}

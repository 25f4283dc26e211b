/* driver.c — what the driver interface shares between drivers: the registry, status names. */
#include "driver.h"

#include <string.h>

/* Every protocol driver, by the name a device's `protocol` and a profile's "protocol" use. */
static const ag_driver_ops *const drivers[] = {&ag_snmp_driver, &ag_pjlink_driver,
                                                &ag_http_driver, &ag_text_driver};

const ag_driver_ops *ag_driver_find(const char *protocol)
{
    for (size_t i = 0; i < sizeof drivers / sizeof *drivers; i++)
        if (protocol && strcmp(drivers[i]->name, protocol) == 0) return drivers[i];
    return NULL;
}

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

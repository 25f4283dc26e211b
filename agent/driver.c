/* driver.c — what the driver interface shares between drivers: the registry, status names. */
#include "driver.h"

#include <stdio.h>
#include <string.h>

/* Every protocol driver, by the name a device's `protocol` and a profile's "protocol" use. */
static const ag_driver_ops *const drivers[] = {&ag_snmp_driver, &ag_pjlink_driver, &ag_http_driver,
                                               &ag_text_driver};

const ag_driver_ops *ag_driver_find(const char *protocol)
{
    for (size_t i = 0; i < sizeof drivers / sizeof *drivers; i++)
        if (protocol && strcmp(drivers[i]->name, protocol) == 0) return drivers[i];
    return NULL;
}

int ag_driver_check_device(const char *proto, const ag_device *dev, const ag_sink *sink,
                           int check_port, char *err, size_t errlen)
{
    if (!dev || !dev->id || !dev->address || !dev->address[0] || !sink || !sink->point ||
        !sink->done) {
        snprintf(err, errlen, "%s: device without id, address or sink", proto);
        return -1;
    }
    if (check_port && (dev->port < 1 || dev->port > 65535)) {
        snprintf(err, errlen, "device %s: port %d out of range", dev->id, dev->port);
        return -1;
    }
    return 0;
}

int ag_driver_profile(const char *proto, const ag_device *dev, const ag_profile_set *profiles,
                      const char *fallback, const ag_profile **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!dev->profile) {
        if (fallback) {
            *out = profiles ? ag_profile_find(profiles, fallback) : NULL;
            return 0;
        }
        snprintf(err, errlen, "device %s: protocol %s needs a profile", dev->id, proto);
        return -1;
    }
    const ag_profile *p = profiles ? ag_profile_find(profiles, dev->profile) : NULL;
    if (!p) {
        snprintf(err, errlen, "device %s: profile '%s' not found", dev->id, dev->profile);
        return -1;
    }
    if (proto && (!p->protocol || strcmp(p->protocol, proto) != 0)) {
        snprintf(err, errlen, "device %s: profile '%s' is for protocol %s, not %s", dev->id,
                 dev->profile, p->protocol ? p->protocol : "snmp", proto);
        return -1;
    }
    *out = p;
    return 0;
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

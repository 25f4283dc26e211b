/* snmplib.c — net-snmp set up once per process. */
#include "snmplib.h"

#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include "log.h"

/* net-snmp's own messages ("Authentication failed for ...", parse errors of a garbage
 * datagram): anyone who can send a packet can cause them, so they go to our log at debug
 * level, rate-limited, never straight to stderr. */
static int on_snmp_log(netsnmp_log_handler *h, int pri, const char *str)
{
    (void)h;
    (void)pri;
    if (!str) return 1;
    size_t n = strlen(str);
    while (n && (str[n - 1] == '\n' || str[n - 1] == '\r'))
        n--;
    if (n)
        cm_log_limited("netsnmp", 60, CM_LOG_DEBUG, "net-snmp: %.*s", (int)(n > 300 ? 300 : n),
                       str);
    return 1;
}

void ag_snmp_lib_init(void)
{
    static int inited;
    if (inited) return;
    inited = 1;
    setenv("MIBS", "", 1);
    setenv("MIBDIRS", "", 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_LOAD_HOST_FILES, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_ALARM_DONT_USE_SIG, 1);
    netsnmp_ds_set_int(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_MIB_WARNINGS, 0);
    snmp_disable_stderrlog();
    netsnmp_log_handler *lh = netsnmp_register_loghandler(NETSNMP_LOGHANDLER_CALLBACK, LOG_DEBUG);
    if (lh) lh->handler = on_snmp_log;
    init_snmp("cinemon");
}

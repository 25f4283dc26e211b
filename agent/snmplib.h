/* snmplib.h — net-snmp set up once per process for everything SNMP in the agent (polling,
 * traps): no MIB files, no config files, no persistent state, no SIGALRM. */
#ifndef AG_SNMPLIB_H
#define AG_SNMPLIB_H

/* Initialise net-snmp the first time it is called; later calls do nothing. Loop thread only. */
void ag_snmp_lib_init(void);

#endif

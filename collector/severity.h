/* severity.h — the three severities of events, rules, alerts and notifications. */
#ifndef CO_SEVERITY_H
#define CO_SEVERITY_H

typedef enum { CO_SEV_INFO = 0, CO_SEV_WARNING = 1, CO_SEV_CRITICAL = 2 } co_severity;
#define CO_NSEV 3

#endif

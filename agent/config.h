/* config.h — the agent's INI configuration: [agent] and one [device "id"] per device. */
#ifndef AG_CONFIG_H
#define AG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct ag_device {
    char *id;        /* "hall1/projector": unique, [A-Za-z0-9_.-/]{1,128} */
    char *screen;    /* "hall1"; default: the part of id before the first '/' */
    char *kind;      /* projector, led_screen, media_block, audio_processor, light_sensor,
                        sound_sensor, ups, server, other */
    char *profile;   /* profile name; NULL = choose by sysObjectID */
    char *protocol;  /* snmp (default), pjlink, http, text */
    char *address;   /* host name or IPv4/IPv6 literal */
    int port;        /* default by protocol: snmp 161, pjlink 4352, http 80 (443 with tls),
                        text 0 = the profile's "port" */
    int snmp_version; /* 1, 2 (v2c) or 3 */
    char *community; /* v1/v2c; never logged */
    /* SNMPv3 USM (snmp_version 3); passwords never logged */
    char *v3_user;
    int v3_level;          /* 0 noAuthNoPriv, 1 authNoPriv, 2 authPriv */
    char *v3_auth_protocol; /* SHA (default), SHA-256, MD5 */
    char *v3_auth_password;
    char *v3_priv_protocol; /* AES (default, AES-128), DES */
    char *v3_priv_password;
    /* other protocols */
    char *username;   /* http basic auth */
    char *password;   /* pjlink password, http basic auth; never logged */
    int tls;          /* http: 1 = https */
    int tls_verify;   /* http: verify the certificate (default 1) */
    int64_t interval_ms, timeout_ms;
    int retries;
    int line; /* line of the section header, for errors */
} ag_device;

typedef struct ag_config {
    char *path;
    char *site;          /* site (cinema) code */
    char *agent_id;      /* default: site code */
    char *collector_url; /* base URL, e.g. http://127.0.0.1:8080 */
    char *token_file;    /* file holding the bearer token; relative to the config's folder */
    char *state_dir;     /* the spool (by default) and the ledger live here */
    char *profiles_dir;  /* default: the installed profiles folder or ./profiles */
    char *log_level;
    int64_t interval_ms, timeout_ms; /* device defaults */
    int retries;
    /* [upload] */
    int64_t upload_interval_ms;  /* a batch is sent once its oldest record is this old */
    int64_t upload_timeout_ms;   /* one request */
    int64_t backoff_base_ms, backoff_cap_ms;
    uint64_t max_batch_bytes;    /* JSON bytes of the records merged into one request */
    /* [spool] */
    char *spool_dir;             /* default state_dir/spool */
    int spool_fsync;             /* cm_fsync_policy: 0 always, 1 cycle, 2 none */
    uint64_t spool_max_bytes, spool_min_free_bytes, spool_segment_bytes;
    char *ledger_path;           /* optional audit ledger: "seq samples" per record, NULL = none */
    ag_device *devices;
    size_t ndevices;
    /* [traps]: the SNMP trap receiver; traps_listen NULL = no receiver */
    char *traps_listen;    /* "host:port" as written, e.g. "127.0.0.1:1162" or "[::1]:1162" */
    char *traps_host;      /* the host part (IPv4/IPv6 literal) */
    int traps_port;
    char *traps_community; /* default "public"; never logged */
    /* [traps] SNMPv3 USM (v3_user NULL = SNMPv3 not accepted); the keys mirror [device]'s;
     * passwords never logged */
    char *traps_v3_user;
    int traps_v3_level;           /* the lowest accepted: 0 noAuthNoPriv, 1 authNoPriv,
                                     2 authPriv (default) */
    char *traps_v3_auth_protocol; /* SHA (default), SHA-256, MD5 */
    char *traps_v3_auth_password;
    char *traps_v3_priv_protocol; /* AES (default, AES-128), DES */
    char *traps_v3_priv_password;
    char *traps_v3_engine_id;     /* the receiver's engine ID in hex as written (informs);
                                     NULL = made once and kept in state_dir */
} ag_config;

/* Load and validate the file. Returns 0, or -1 with "file:line: what" in err.
 * Relative paths in the file are resolved against the file's folder. */
int ag_config_load(ag_config *c, const char *path, char *err, size_t errlen);
/* Free everything the config owns. */
void ag_config_free(ag_config *c);

#endif

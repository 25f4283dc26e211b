/* ims_soap.h — a simulated Dolby IMS-like media server speaking SOAP 1.1 (devices.md §4.5):
 * SessionManagement Login/Logout, SystemInformation GetHostname / GetProductInformation /
 * GetHardwareInventoryList with a session id. Facts: notes/ims-soap.md. */
#ifndef SIM_IMS_SOAP_H
#define SIM_IMS_SOAP_H

#include <stddef.h>
#include <stdint.h>

#define SIM_IMS_MAX_SESSIONS 64 /* one more login evicts the oldest session */
#define SIM_IMS_CRED_MAX 127    /* longest configured user name or password */
#define SIM_IMS_PATH_SESSION "/dc/dcp/ws/v1/SessionManagement"
#define SIM_IMS_PATH_SYSINFO "/dc/dcp/ws/v1/SystemInformation"
#define SIM_IMS_NS "http://www.doremilabs.com/dc/dcp/ws/v1_0"

typedef struct sim_ims {
    int hall;
    uint64_t rng;    /* session ids */
    int check_login; /* 0: any login is accepted */
    char user[SIM_IMS_CRED_MAX + 1], pass[SIM_IMS_CRED_MAX + 1];
    char sessions[SIM_IMS_MAX_SESSIONS][33]; /* ring of 32-hex ids; "" = free */
    unsigned next;                           /* the slot the next login takes (the oldest) */
} sim_ims;

/* Set up the IMS of hall (1-based). user/pass NULL: any login is accepted. 0, or -1 when a
 * credential is longer than SIM_IMS_CRED_MAX. */
int sim_ims_init(sim_ims *m, int hall, uint64_t seed, const char *user, const char *pass);
/* 1 when path is one of the two SOAP endpoints. */
int sim_ims_known_path(const char *path);
/* Answer a POST of body[0..len) to path: returns the HTTP status (200, 404, or 500 with a
 * SOAP Fault) and a malloc'd XML answer in *out (*outlen bytes; NULL when out of memory).
 * episode: a fault episode (the RAID reports Degraded). */
int sim_ims_handle(sim_ims *m, const char *path, const char *body, size_t len, int episode,
                   char **out, size_t *outlen);

#endif

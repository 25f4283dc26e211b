/* fuzz_sim_http.c — libFuzzer target for the simulator's HTTP request parser (sim/httpserv.c)
 * and the IMS SOAP reader (sim/ims_soap.c): any input parses to a request, an error or
 * "need more" without crashing or reading out of bounds; the consumed length never exceeds
 * the input; a complete request's body is handed to the SOAP device. */
// fuzz-sources: sim/httpserv.c sim/netwrite.c sim/ims_soap.c sim/fault.c sim/rng.c
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpserv.h"
#include "ims_soap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size heap copy, so ASan sees any read past the input */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    size_t off = 0;
    static sim_ims ims;
    static int inited;
    if (!inited) {
        sim_ims_init(&ims, 1, 1, "manager", "password");
        inited = 1;
    }
    while (off < size) { /* a pipelined stream: parse request after request */
        sim_http_req req;
        long r = sim_http_parse(buf + off, size - off, &req);
        if (r <= 0) break;
        if ((size_t)r > size - off || strlen(req.method) >= sizeof req.method ||
            strlen(req.path) >= sizeof req.path || req.content_length > SIM_HTTP_MAX_BODY)
            abort();
        if (req.body && (req.body < buf + off || req.body + req.content_length > buf + size))
            abort();
        char *out = NULL;
        size_t n = 0;
        const char *path = (req.path[1] & 1) ? SIM_IMS_PATH_SYSINFO : SIM_IMS_PATH_SESSION;
        sim_ims_handle(&ims, path, req.body, req.content_length, 0, &out, &n);
        if (out && strlen(out) != n) abort();
        free(out);
        off += (size_t)r;
    }
    free(buf);
    return 0;
}

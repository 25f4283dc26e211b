/* fuzz_sim_ber.c — libFuzzer target for the simulator's SNMP BER decoder (sim/ber.c): any
 * UDP datagram is decoded without crashing or reading out of bounds, and what decodes is
 * encoded back as a response. */
// fuzz-sources: sim/ber.c
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ber.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size heap copy, so ASan sees any read past the datagram */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    sim_request req;
    if (sim_ber_decode_request(buf, size, &req) == 0) {
        uint8_t vb[1500];
        size_t pos = 0;
        sim_value null = {.tag = SIM_TAG_NULL};
        for (size_t i = 0; i < req.noids; i++)
            if (sim_ber_put_varbind(vb, sizeof vb, &pos, &req.oids[i], &null) != 0) break;
    }
    free(buf);
    return 0;
}

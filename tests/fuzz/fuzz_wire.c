/* fuzz_wire.c — libFuzzer target for the collector's batch decoder (common/wire.c): any body
 * an agent (or anyone) posts is refused with a JSON path or decoded, never a crash; what
 * decodes is encoded again and must decode again. */
// fuzz-sources: common/wire.c common/batch.c common/arena.c common/errbuf.c
// fuzz-seeds: tests/fuzz/wire-seeds/*.json
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cm_batch b;
    cm_batch_init(&b);
    char err[256], at[256];
    if (cm_wire_decode((const char *)data, size, NULL, &b, err, sizeof err, at, sizeof at) == 0) {
        size_t len;
        char *json = cm_wire_encode(&b, &len);
        if (json) {
            cm_batch again;
            cm_batch_init(&again);
            if (cm_wire_decode(json, len, NULL, &again, err, sizeof err, at, sizeof at) != 0)
                abort(); /* what we encode, we must accept */
            cm_batch_free(&again);
            free(json);
        }
    }
    cm_batch_free(&b);
    return 0;
}

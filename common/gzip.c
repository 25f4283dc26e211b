/* gzip.c — whole-buffer gzip compression and bounded decompression. */
#include "gzip.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "errbuf.h"

int cm_gzip(const void *in, size_t len, int level, char **out, size_t *outlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (len > UINT_MAX ||
        deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    uLong bound = deflateBound(&zs, (uLong)len);
    char *buf = bound <= UINT_MAX ? malloc(bound ? bound : 1) : NULL;
    if (!buf) {
        deflateEnd(&zs);
        return -1;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)buf;
    zs.avail_out = (uInt)bound;
    int rc = deflate(&zs, Z_FINISH);
    size_t n = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = n;
    return 0;
}

size_t cm_gzip_stated_size(const void *in, size_t len)
{
    const unsigned char *p = in;
    if (len < 18) return 0;
    p += len - 4;
    return (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
}

int cm_gunzip(const void *in, size_t len, size_t max, char **out, size_t *outlen, char *err,
              size_t errlen)
{
    if (len > UINT_MAX) {
        cm_seterr(err, errlen, "gzip: input too large");
        return -1;
    }
    size_t cap = cm_gzip_stated_size(in, len);
    if (cap == 0 || cap > max) cap = len * 4 < max ? len * 4 : max;
    char *buf = malloc(cap + 1);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (!buf || inflateInit2(&zs, 15 + 16) != Z_OK) {
        free(buf);
        cm_seterr(err, errlen, "gzip: out of memory");
        return -1;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    int rc;
    for (;;) {
        zs.next_out = (Bytef *)buf + zs.total_out;
        zs.avail_out = (uInt)(cap - zs.total_out);
        rc = inflate(&zs, Z_FINISH);
        if (rc == Z_STREAM_END) break;
        if ((rc == Z_BUF_ERROR || rc == Z_OK) && zs.avail_out == 0 && cap < max) {
            size_t ncap = cap * 2 < max ? cap * 2 : max;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) break;
            buf = nb;
            cap = ncap;
            continue;
        }
        break;
    }
    size_t n = zs.total_out;
    inflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(buf);
        cm_seterr(err, errlen, "gzip: %s",
                  n >= max ? "larger than the limit"
                  : rc == Z_DATA_ERROR ? "corrupt data"
                                       : "truncated");
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
}

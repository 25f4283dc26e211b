/* gzip.h — whole-buffer gzip compression and bounded decompression (zlib). */
#ifndef CM_GZIP_H
#define CM_GZIP_H

#include <stddef.h>

/* Compress in[0..len) into a new gzip buffer (*out malloc'ed, caller frees). level 1..9, or -1
 * for zlib's default. 0, or -1 on OOM / zlib error. */
int cm_gzip(const void *in, size_t len, int level, char **out, size_t *outlen);
/* Decompress a whole gzip buffer into a new NUL-terminated buffer of at most max bytes
 * (*out malloc'ed, caller frees). 0, or -1 with err (corrupt, truncated, larger than max). */
int cm_gunzip(const void *in, size_t len, size_t max, char **out, size_t *outlen, char *err,
              size_t errlen);
/* The uncompressed size a gzip buffer states in its trailer (mod 2^32), 0 when too short. */
size_t cm_gzip_stated_size(const void *in, size_t len);

#endif

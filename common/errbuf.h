/* errbuf.h — filling a caller-provided error buffer, the project's way of reporting errors. */
#ifndef CM_ERRBUF_H
#define CM_ERRBUF_H

#include <stddef.h>

/* printf into err[errlen] (nothing when err is NULL or errlen 0); always NUL-terminated. */
void cm_seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

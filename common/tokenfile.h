/* tokenfile.h — a bearer token read from its file (the agent's token_file, a collector's
 * upstream token_file). */
#ifndef CM_TOKENFILE_H
#define CM_TOKENFILE_H

#include <stddef.h>

/* The token in path: one line, surrounding white space removed; a warning is logged when the
 * file is readable by group or others. A new string (caller frees), or NULL with err (which
 * never holds the token). */
char *cm_token_file_read(const char *path, char *err, size_t errlen);

#endif

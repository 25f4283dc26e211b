/* viewer_cmd.h — `cinemon-collector -c INI viewer add|list|remove|passwd`: viewer accounts
 * from the command line (passwords from stdin or a file, never from argv). */
#ifndef CO_VIEWER_CMD_H
#define CO_VIEWER_CMD_H

#include <stdio.h>

#include "config.h"

/* Run the viewer command argv[0..argc) (the words after "viewer") on the store of cfg's
 * [store] backend; passwords are read from in (one line) unless --password-file is given; results
 * go to out, errors to errf. Returns the exit status: 0 ok, 1 runtime error, 2 usage. */
int co_viewer_cmd(const co_config *cfg, int argc, char **argv, FILE *in, FILE *out, FILE *errf);

#endif

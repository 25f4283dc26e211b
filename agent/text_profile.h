/* text_profile.h — the text section of a "protocol": "text" profile (port, line_end, commands)
 * and the pure reply matcher, apart from the socket so both can be unit- and fuzz-tested.
 *
 * A command is sent as `send` + line_end; the first reply line that matches `expect` (POSIX
 * extended regex, capture group 1 = the value) answers it; other lines are skipped. */
#ifndef AG_TEXT_PROFILE_H
#define AG_TEXT_PROFILE_H

#include <jansson.h>
#include <regex.h>
#include <stddef.h>

#include "profile.h"

#define AG_TEXT_MAX_LINE 1024   /* longer reply lines are discarded */
#define AG_TEXT_MAX_COMMANDS 64 /* per profile */
#define AG_TEXT_MAX_SEND 256    /* bytes of one command */

typedef struct ag_text_cmd {
    char *send;     /* the command without its line end */
    char *expect;   /* the regex as written, for messages */
    regex_t re;     /* compiled with REG_EXTENDED; re_nsub >= 1 */
    int re_ok;      /* re is compiled (and must be freed) */
    char *metric;   /* the sample's metric, or NULL for an identity command */
    char *unit;     /* may be NULL */
    char *identity; /* model, serial, firmware or vendor; NULL for a metric command */
    ag_value_map map;
} ag_text_cmd;

typedef struct ag_text_profile {
    int port;         /* default TCP port; 0 when the profile gives none */
    char line_end[8]; /* appended to every command; default "\r\n" */
    ag_text_cmd *cmds;
    size_t ncmds;
} ag_text_profile;

/* Parse the text keys of a profile document (the common keys are the caller's). Returns 0,
 * or -1 with "file: $.json.path: what" in err; *out is empty after a failure. */
int ag_text_profile_parse(json_t *doc, const char *file, ag_text_profile *out, char *err,
                          size_t errlen);
/* Parse and free: what profile.c calls when it loads a text profile. 0 or -1 with err. */
int ag_text_profile_check(json_t *doc, const char *file, char *err, size_t errlen);
/* Free what ag_text_profile_parse filled (safe on a zeroed struct). */
void ag_text_profile_free(ag_text_profile *p);

/* Match one reply line (trailing CR/LF ignored; at most AG_TEXT_MAX_LINE bytes, no NUL) against
 * cmd's regex. Returns 1 with capture group 1 copied NUL-terminated into val (cut to vallen - 1;
 * "" when the group did not take part), or 0 when the line does not answer cmd. */
int ag_text_match(const ag_text_cmd *cmd, const char *line, size_t len, char *val, size_t vallen);

#endif

/* text_profile.h — the text section of a "protocol": "text" profile (port, line_end, commands)
 * and the pure reply decoders, apart from the socket so all can be unit- and fuzz-tested.
 *
 * Line commands: `send` + line_end goes out; the first reply line that matches `expect` (POSIX
 * extended regex, capture group 1 = the value) answers it; other lines are skipped.
 * Binary commands (NEC NC-series style): `send_hex` bytes go out; the reply is one frame whose
 * length is fixed or read from a header byte, whose last byte may be a sum-of-bytes checksum,
 * whose first byte flags an error reply, and whose `values` sit at byte offsets. A profile's
 * commands are all of one kind. */
#ifndef AG_TEXT_PROFILE_H
#define AG_TEXT_PROFILE_H

#include <jansson.h>
#include <regex.h>
#include <stddef.h>

#include "profile.h"

#define AG_TEXT_MAX_LINE 1024   /* longer reply lines are discarded */
#define AG_TEXT_MAX_COMMANDS 64 /* per profile */
#define AG_TEXT_MAX_SEND 256    /* bytes of one command */
#define AG_BIN_MAX_SEND 64      /* bytes of one binary request */
#define AG_BIN_MAX_REPLY 512    /* bytes of one binary reply frame */
#define AG_BIN_MAX_PREFIX 16    /* bytes a good reply must start with */
#define AG_BIN_MAX_VALUES 32    /* per binary command */
#define AG_BIN_MAX_TEXT 64      /* bytes of one ascii value */
#define AG_BIN_MAX_LABELS 4     /* static labels of one binary value */

/* How the bytes of a binary value are read. */
typedef enum { AG_BIN_UINT, AG_BIN_INT, AG_BIN_ASCII } ag_bin_type;

/* One value inside a binary reply frame. */
typedef struct ag_bin_value {
    size_t at;   /* offset of its first byte in the frame (byte 0 = the frame's first) */
    size_t size; /* uint 1..4, int 1/2/4, ascii 1..AG_BIN_MAX_TEXT */
    ag_bin_type type;
    int big_endian; /* numbers of more than one byte */
    char *metric;   /* the sample's metric, or NULL for an identity */
    char *unit;     /* may be NULL */
    char *identity; /* model, serial, firmware or vendor (ascii only); NULL for a metric */
    cm_label labels[AG_BIN_MAX_LABELS]; /* static labels (owned strings) */
    size_t nlabels;
    ag_value_map map;
} ag_bin_value;

/* How a binary reply is framed and checked. */
typedef struct ag_bin_reply {
    unsigned char prefix[AG_BIN_MAX_PREFIX]; /* a good reply starts with these bytes */
    size_t nprefix;
    size_t length;       /* fixed total length; 0 when the header byte at length_at gives it */
    size_t length_at;    /* offset of the data-length byte */
    size_t length_add;   /* total length = that byte + length_add */
    int sum8;            /* the last byte is the sum of all the others mod 256 */
    unsigned error_mask; /* first byte & error_mask != 0: the device's error reply; 0 = none */
} ag_bin_reply;

typedef struct ag_text_cmd {
    char *send;     /* the command without its line end */
    char *expect;   /* the regex as written, for messages */
    regex_t re;     /* compiled with REG_EXTENDED; re_nsub >= 1 */
    int re_ok;      /* re is compiled (and must be freed) */
    char *metric;   /* the sample's metric, or NULL for an identity command */
    char *unit;     /* may be NULL */
    char *identity; /* model, serial, firmware or vendor; NULL for a metric command */
    ag_value_map map;
    /* binary commands (send and expect NULL, re_ok 0, metric and identity NULL): */
    unsigned char *bin; /* the request bytes */
    size_t binlen;
    char *hex; /* the request as written, for messages */
    ag_bin_reply reply;
    ag_bin_value *values;
    size_t nvalues;
} ag_text_cmd;

typedef struct ag_text_profile {
    int port;         /* default TCP port; 0 when the profile gives none */
    char line_end[8]; /* appended to every command; default "\r\n" */
    ag_text_cmd *cmds;
    size_t ncmds;
    int binary; /* the commands are binary (send_hex) rather than lines (send) */
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

/* Binary replies: the decoder is pure and safe on arbitrary bytes. */
#define AG_BIN_DEVICE_ERROR 1 /* ag_bin_check: the device answered with its error reply */

/* Total length of the frame that starts buf[0..len): > 0 once known (it may exceed len), 0 while
 * more bytes are needed to tell. An error reply of a fixed-length reply is 1 byte long as far
 * as framing goes (its length is unknown), so it is reported at once. */
size_t ag_bin_frame_len(const ag_bin_reply *r, const unsigned char *buf, size_t len);
/* Check one whole frame (len as ag_bin_frame_len said): 0 = a good reply; AG_BIN_DEVICE_ERROR
 * = the device's error reply; -1 = bad checksum or wrong first bytes. why says which. */
int ag_bin_check(const ag_bin_reply *r, const unsigned char *frame, size_t len, char *why,
                 size_t whylen);
/* Read v from a checked frame (len: without its checksum byte): 0 with *num (uint, int) or the text
 * in str (ascii: printable bytes, NULs skipped, trailing spaces dropped; always NUL-terminated); -1
 * with why when the frame is too short for it. */
int ag_bin_value_get(const ag_bin_value *v, const unsigned char *frame, size_t len, double *num,
                     char *str, size_t strcap, char *why, size_t whylen);
/* Bytes as "20 85 00 C0" (at most max bytes, then "..."), always NUL-terminated. */
void ag_bin_hex(const unsigned char *b, size_t len, size_t max, char *out, size_t outlen);

#endif

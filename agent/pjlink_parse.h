/* pjlink_parse.h — pure parsing of PJLink (Class 1 and 2) lines: greeting, replies, values.
 *
 * Lines are passed without their CR. Nothing here allocates or does I/O, so every function
 * is safe on arbitrary bytes (unit- and fuzz-tested). */
#ifndef AG_PJLINK_PARSE_H
#define AG_PJLINK_PARSE_H

#include <stddef.h>

#define PJ_MAX_PACKET 136 /* bytes of one line including its CR */
#define PJ_MAX_RANDOM 32  /* longest authentication random we accept (the spec sends 8) */
#define PJ_MAX_LAMPS 8

/* What a reply line is. */
typedef enum {
    PJ_BAD = -1,  /* malformed: wrong prefix/echo, too long, control characters */
    PJ_VALUE = 0, /* "%1POWR=1": value in pj_reply */
    PJ_ERR1,      /* undefined command */
    PJ_ERR2,      /* out of parameter */
    PJ_ERR3,      /* unavailable at this time */
    PJ_ERR4,      /* projector/display failure */
    PJ_ERRA,      /* authentication error ("PJLINK ERRA" or "=ERRA") */
} pj_kind;

typedef struct pj_reply {
    const char *value; /* points into the line; not NUL-terminated */
    size_t len;
    const char *why; /* PJ_BAD: static reason text */
} pj_reply;

typedef struct pj_greeting {
    int auth;                       /* 0: "PJLINK 0", 1: "PJLINK 1 <random>" */
    char random[PJ_MAX_RANDOM + 1]; /* NUL-terminated when auth */
} pj_greeting;

typedef struct pj_lamp {
    long hours;
    int on;
} pj_lamp;

/* Greeting line. 0 with *out filled; PJ_ERRA for "PJLINK ERRA"; -1 with *why otherwise. */
int pj_parse_greeting(const char *line, size_t len, pj_greeting *out, const char **why);
/* Reply line to the query "%<cls><cmd> ?" (cmd: 4 upper-case letters). Returns a pj_kind. */
pj_kind pj_parse_reply(const char *line, size_t len, char cls, const char *cmd, pj_reply *out);

/* Value parsers: 0 with the result, or -1 when the value is malformed. */
/* CLSS: one digit 1..9. */
int pj_value_class(const char *v, size_t len, int *cls);
/* POWR: 0 standby, 1 on, 2 cooling, 3 warming (the PJLink codes). */
int pj_value_power(const char *v, size_t len, int *code);
/* ERST: six digits 0..2: fan, lamp, temperature, cover, filter, other. */
int pj_value_errors(const char *v, size_t len, int out[6]);
/* LAMP: "<hours> <0|1>" pairs separated by spaces; up to max lamps, at least one. */
int pj_value_lamps(const char *v, size_t len, pj_lamp *out, size_t max, size_t *n);
/* INPT: type 1..6 and number 1..9 → type*10+n ("31" → 31); number A..Z → type*100+10+k
 * ("3A" → 310, "3Z" → 335). */
int pj_value_input(const char *v, size_t len, int *input);
/* AVMT: 11/10/21/20/31/30 → audio and video mute 0/1. */
int pj_value_mute(const char *v, size_t len, int *audio, int *video);
/* FILT and other counters: 1..9 decimal digits. */
int pj_value_uint(const char *v, size_t len, long *out);
/* Text (INF1, INF2, NAME, SNUM, SVER): printable ASCII kept, other bytes become '?',
 * trailing spaces dropped; always NUL-terminates out (outlen ≥ 1). Returns the length. */
size_t pj_value_text(const char *v, size_t len, char *out, size_t outlen);

#endif

/* tokenfile.c — a bearer token read from its file. */
#include "tokenfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "errbuf.h"
#include "log.h"

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

char *cm_token_file_read(const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        cm_seterr(err, errlen, "token_file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) == 0 && (st.st_mode & 077))
        cm_warn("token_file %s is readable by other users; chmod 600 it", path);
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    char *s = buf;
    while (blank(*s))
        s++;
    size_t l = strlen(s);
    while (l && blank(s[l - 1]))
        s[--l] = '\0';
    char *tok = NULL;
    if (l == 0 || strpbrk(s, " \t\r\n"))
        cm_seterr(err, errlen, "token_file %s: expected the token on one line", path);
    else if (!(tok = strdup(s)))
        cm_seterr(err, errlen, "out of memory");
    explicit_bzero(buf, sizeof buf);
    return tok;
}

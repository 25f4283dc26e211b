/* viewer_cmd.c — the `viewer` command line: add (role, scope, password), list (never the
 * hash), remove (with its sessions), passwd (ends its sessions). */
#include "viewer_cmd.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "store.h"
#include "timeutil.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

#define USAGE                                                                                      \
    "viewer add NAME [--role viewer|operator] [--province P | --chain C | --site S] "              \
    "[--password-file F], viewer list, viewer remove NAME, viewer passwd NAME [--password-file F]"

/* 0 when name is 1..CM_MAX_NAME printable bytes without spaces, else -1 (reported). */
static int check_name(const char *name, FILE *errf)
{
    size_t n = strlen(name);
    if (n == 0 || n > CM_MAX_NAME) {
        fprintf(errf, "cinemon-collector: viewer: name %s (1..%d bytes)\n",
                n ? "too long" : "empty", CM_MAX_NAME);
        return -1;
    }
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p <= 0x20 || *p == 0x7f) {
            fprintf(errf, "cinemon-collector: viewer: name must not contain spaces or control "
                          "characters\n");
            return -1;
        }
    return 0;
}

/* Read the password (first line of path, or of in) into pw[CO_PASSWORD_MAX + 1]. Its length,
 * or -1 (reported). */
static long read_password(const char *path, FILE *in, char *pw, FILE *errf)
{
    FILE *f = in;
    if (path && !(f = fopen(path, "r"))) {
        fprintf(errf, "cinemon-collector: viewer: cannot read the password file %s\n", path);
        return -1;
    }
    if (!path && isatty(fileno(in))) fprintf(errf, "password (one line): ");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    if (path) fclose(f);
    long rc = -1;
    if (n < 0) {
        fprintf(errf, "cinemon-collector: viewer: no password given (one line on stdin, or "
                      "--password-file F)\n");
    } else {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            fprintf(errf, "cinemon-collector: viewer: the password is empty\n");
        else if (n > CO_PASSWORD_MAX)
            fprintf(errf, "cinemon-collector: viewer: the password is longer than %d bytes\n",
                    CO_PASSWORD_MAX);
        else if (memchr(line, '\0', (size_t)n))
            fprintf(errf, "cinemon-collector: viewer: the password contains a NUL byte\n");
        else {
            memcpy(pw, line, (size_t)n + 1);
            rc = n;
        }
    }
    if (line) OPENSSL_cleanse(line, cap);
    free(line);
    return rc;
}

typedef struct opts {
    const char *name, *role, *pwfile;
    const char *scope_kind, *scope_value;
} opts;

/* Parse NAME and options; allowed: bit 1 role and scope, bit 2 password file. 0 or -1. */
static int parse(int argc, char **argv, int allowed, opts *o, FILE *errf)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] != '-') {
            if (o->name) {
                fprintf(errf, "cinemon-collector: viewer %s: one NAME only ('%s' is extra)\n",
                        argv[0], a);
                return -1;
            }
            o->name = a;
            continue;
        }
        const char *key = a + 2, *val = strchr(key, '=');
        size_t kl = val ? (size_t)(val - key) : strlen(key);
        if (val)
            val++;
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            fprintf(errf, "cinemon-collector: viewer %s: %s needs a value\n", argv[0], a);
            return -1;
        }
#define IS(k) (kl == sizeof k - 1 && !strncmp(key, k, kl))
        if ((allowed & 1) && IS("role")) {
            if (strcmp(val, "viewer") != 0 && strcmp(val, "operator") != 0) {
                fprintf(errf,
                        "cinemon-collector: viewer add: unknown role '%s' (viewer or "
                        "operator)\n",
                        val);
                return -1;
            }
            o->role = val;
        } else if ((allowed & 1) && (IS("province") || IS("chain") || IS("site"))) {
            if (o->scope_kind) {
                fprintf(errf, "cinemon-collector: viewer add: give at most one of --province, "
                              "--chain, --site (none = national)\n");
                return -1;
            }
            o->scope_kind = IS("province") ? "province" : IS("chain") ? "chain" : "site";
            o->scope_value = val;
            if (!*val || strlen(val) > CM_MAX_NAME) {
                fprintf(errf, "cinemon-collector: viewer add: --%s needs 1..%d bytes\n",
                        o->scope_kind, CM_MAX_NAME);
                return -1;
            }
        } else if ((allowed & 2) && IS("password-file")) {
            o->pwfile = val;
        } else {
            fprintf(errf, "cinemon-collector: viewer %s: unknown option '%s'\n", argv[0], a);
            return -1;
        }
#undef IS
    }
    if (!o->name) {
        fprintf(errf, "cinemon-collector: viewer %s needs a NAME\n", argv[0]);
        return -1;
    }
    return check_name(o->name, errf);
}

static int list_row(void *ud, const co_viewer_row *v)
{
    FILE *out = ud;
    fprintf(out, "%s\t%s\t%s%s%s\t%s\n", v->name, v->role, v->scope_kind,
            v->scope_value[0] ? ":" : "", v->scope_value, v->disabled ? "disabled" : "enabled");
    return 0;
}

int co_viewer_cmd(const co_config *cfg, int argc, char **argv, FILE *in, FILE *out, FILE *errf)
{
    const char *cmd = argc > 0 ? argv[0] : "";
    int add = !strcmp(cmd, "add"), list = !strcmp(cmd, "list"), rm = !strcmp(cmd, "remove"),
        pw = !strcmp(cmd, "passwd");
    if (!add && !list && !rm && !pw) {
        fprintf(errf, "cinemon-collector: unknown viewer command '%s' (expected: %s)\n", cmd,
                USAGE);
        return EXIT_USAGE;
    }
    opts o;
    if (list && argc != 1) {
        fprintf(errf, "cinemon-collector: viewer list takes no arguments\n");
        return EXIT_USAGE;
    }
    if (!list && parse(argc, argv, add ? 3 : pw ? 2 : 0, &o, errf) != 0) return EXIT_USAGE;

    char pwbuf[CO_PASSWORD_MAX + 1], hash[CO_PWHASH_MAX + 1], err[512] = "";
    long pwlen = 0;
    if (add || pw) {
        pwlen = read_password(o.pwfile, in, pwbuf, errf);
        if (pwlen < 0) return EXIT_USAGE;
        int hr = co_password_hash(pwbuf, (size_t)pwlen, hash, sizeof hash, err, sizeof err);
        OPENSSL_cleanse(pwbuf, sizeof pwbuf);
        if (hr != 0) {
            fprintf(errf, "cinemon-collector: viewer: %s\n", err);
            return EXIT_RUNTIME;
        }
    }
    co_store *s = NULL;
    if (co_config_open_store(cfg, &s, err, sizeof err) != 0) {
        char where[256];
        co_config_store_desc(cfg, where, sizeof where); /* never the conninfo itself */
        fprintf(errf, "cinemon-collector: store %s: %s\n", where, err);
        OPENSSL_cleanse(hash, sizeof hash);
        return EXIT_RUNTIME;
    }
    int rc = EXIT_RUNTIME, r;
    int64_t now = cm_now_ms();
    if (add) {
        co_viewer_row v;
        memset(&v, 0, sizeof v);
        snprintf(v.name, sizeof v.name, "%s", o.name);
        snprintf(v.role, sizeof v.role, "%s", o.role ? o.role : "viewer");
        snprintf(v.scope_kind, sizeof v.scope_kind, "%s", o.scope_kind ? o.scope_kind : "all");
        snprintf(v.scope_value, sizeof v.scope_value, "%s", o.scope_value ? o.scope_value : "");
        r = co_store_viewer_add(s, &v, hash, now, err, sizeof err);
        if (r < 0)
            fprintf(errf, "cinemon-collector: viewer add: %s\n", err);
        else if (r == 0)
            fprintf(errf,
                    "cinemon-collector: viewer add: viewer %s already exists (viewer passwd "
                    "changes its password; viewer remove, then add, changes its role or "
                    "scope)\n",
                    o.name);
        else {
            fprintf(out, "viewer %s added (role %s, scope %s%s%s)\n", v.name, v.role, v.scope_kind,
                    v.scope_value[0] ? " " : "", v.scope_value);
            rc = 0;
        }
    } else if (list) {
        fprintf(out, "NAME\tROLE\tSCOPE\tSTATE\n");
        if (co_store_viewers(s, list_row, out, err, sizeof err) != 0)
            fprintf(errf, "cinemon-collector: viewer list: %s\n", err);
        else
            rc = 0;
    } else {
        r = rm ? co_store_viewer_remove(s, o.name, err, sizeof err)
               : co_store_viewer_passwd(s, o.name, hash, now, err, sizeof err);
        if (r < 0)
            fprintf(errf, "cinemon-collector: viewer %s: %s\n", cmd, err);
        else if (r == 0)
            fprintf(errf, "cinemon-collector: viewer %s: no viewer named %s\n", cmd, o.name);
        else {
            fprintf(out,
                    rm ? "viewer %s removed (its sessions ended)\n"
                       : "password of viewer %s changed (its sessions ended)\n",
                    o.name);
            rc = 0;
        }
    }
    OPENSSL_cleanse(hash, sizeof hash);
    co_store_close(s);
    return rc;
}

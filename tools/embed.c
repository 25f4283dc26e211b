/* embed.c — build tool: turn the dashboard files into a C source of byte arrays and a table.
 *   embed OUT.c FILE...
 * Each FILE is stored under its base name with a strong ETag (64-bit FNV-1a of the content,
 * and its length). Names must be unique; a missing or unreadable file is an error.
 * In a .html file, a line `<!--#include NAME-->` is replaced by the file NAME of the same
 * folder (the parts every page shares); files whose name starts with '_' are such parts only
 * and are not served themselves. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Read a whole file into a new buffer; NULL on error (message printed). */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return NULL;
    }
    size_t cap = 65536, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char *nb = realloc(buf, cap *= 2);
        if (!nb) {
            free(buf);
            buf = NULL;
        } else
            buf = nb;
    }
    if (!buf || ferror(f)) {
        fprintf(stderr, "embed: cannot read %s\n", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* The folder part of path ("" or ending in '/') into dir. */
static void dir_of(const char *path, char *dir, size_t n)
{
    size_t l = (size_t)(base_name(path) - path);
    snprintf(dir, n, "%.*s", (int)l, path);
}

/* d (len bytes, taken) with its include lines replaced; NULL on error (message printed). */
static unsigned char *expand(const char *path, unsigned char *d, size_t *len)
{
    static const char MARK[] = "<!--#include ";
    size_t cap = *len + 1, n = 0, line = 1;
    unsigned char *out = malloc(cap);
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    for (size_t i = 0; out && i < *len;) {
        size_t e = i;
        while (e < *len && d[e] != '\n')
            e++;
        size_t b = i, t = e;
        while (b < t && (d[b] == ' ' || d[b] == '\t'))
            b++;
        while (t > b && (d[t - 1] == ' ' || d[t - 1] == '\t' || d[t - 1] == '\r'))
            t--;
        const unsigned char *piece = d + i;
        size_t plen = e < *len ? e - i + 1 : e - i;
        unsigned char *inc = NULL;
        if (t - b > sizeof MARK + 2 && !memcmp(d + b, MARK, sizeof MARK - 1) &&
            !memcmp(d + t - 3, "-->", 3)) {
            char name[256], ipath[4352];
            int nl = (int)(t - 3 - b - (sizeof MARK - 1));
            snprintf(name, sizeof name, "%.*s", nl, (const char *)d + b + sizeof MARK - 1);
            if (name[0] != '_' || strchr(name, '/')) {
                fprintf(stderr, "%s:%zu: include names a part of this folder ('_name')\n", path,
                        line);
                free(out);
                out = NULL;
                break;
            }
            snprintf(ipath, sizeof ipath, "%s%s", dir, name);
            size_t ilen = 0;
            if (!(inc = slurp(ipath, &ilen))) {
                fprintf(stderr, "%s:%zu: cannot include %s\n", path, line, name);
                free(out);
                out = NULL;
                break;
            }
            piece = inc;
            plen = ilen;
        }
        if (n + plen + 1 > cap) {
            while (n + plen + 1 > cap)
                cap *= 2;
            unsigned char *no = realloc(out, cap);
            if (!no) {
                free(out);
                out = NULL;
                free(inc);
                break;
            }
            out = no;
        }
        memcpy(out + n, piece, plen);
        n += plen;
        free(inc);
        i = e < *len ? e + 1 : e;
        line++;
    }
    free(d);
    if (!out) return NULL;
    *len = n;
    return out;
}

static int is_part(const char *path)
{
    return base_name(path)[0] == '_';
}

static int is_html(const char *path)
{
    size_t l = strlen(path);
    return l > 5 && !strcmp(path + l - 5, ".html");
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: embed OUT.c FILE...\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *b = base_name(argv[i]);
        if (!*b || strspn(b, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
                       strlen(b)) {
            fprintf(stderr, "embed: %s: file names are [A-Za-z0-9._-]\n", argv[i]);
            return 1;
        }
    }
    for (int i = 2; i < argc; i++)
        for (int j = 2; j < i; j++)
            if (!strcmp(base_name(argv[i]), base_name(argv[j]))) {
                fprintf(stderr, "embed: two files named %s\n", base_name(argv[i]));
                return 1;
            }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]) >= (int)sizeof tmp) return 1;
    FILE *out = fopen(tmp, "w");
    if (!out) {
        perror(tmp);
        return 1;
    }
    fprintf(out, "/* Generated by tools/embed.c from collector/web/: do not edit. */\n"
                 "#include \"collector/webui.h\"\n\n");
    char(*etags)[40] = calloc((size_t)argc, sizeof *etags);
    int rc = etags ? 0 : 1;
    int nserved = 0;
    for (int i = 2; i < argc && rc == 0; i++) {
        if (is_part(argv[i])) continue;
        nserved++;
        size_t len = 0;
        unsigned char *d = slurp(argv[i], &len);
        if (d && is_html(argv[i])) d = expand(argv[i], d, &len);
        if (!d) {
            rc = 1;
            break;
        }
        uint64_t h = 1469598103934665603ull;
        for (size_t k = 0; k < len; k++)
            h = (h ^ d[k]) * 1099511628211ull;
        snprintf(etags[i], sizeof etags[i], "%016llx-%zx", (unsigned long long)h, len);
        fprintf(out, "static const unsigned char f%d[%zu] = {", i - 2, len + 1);
        for (size_t k = 0; k < len; k++)
            fprintf(out, "%s%u,", k % 24 ? "" : "\n    ", d[k]);
        fprintf(out, "0};\n");
        free(d);
    }
    if (rc == 0) {
        fprintf(out, "\nconst co_webui_asset co_webui_assets[] = {\n");
        for (int i = 2; i < argc; i++) /* len: the array minus its terminating 0 */
            if (!is_part(argv[i]))
                fprintf(out, "    {\"%s\", f%d, sizeof f%d - 1, \"\\\"%s\\\"\"},\n",
                        base_name(argv[i]), i - 2, i - 2, etags[i]);
        fprintf(out, "};\nconst size_t co_webui_nassets = %d;\n", nserved);
    }
    free(etags);
    if (fclose(out) != 0) rc = 1;
    if (rc == 0 && rename(tmp, argv[1]) != 0) {
        perror(argv[1]);
        rc = 1;
    }
    if (rc) remove(tmp);
    return rc;
}

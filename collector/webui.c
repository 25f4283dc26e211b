/* webui.c — request paths to the embedded dashboard files (tools/embed.c makes the table). */
#include "webui.h"

#include <string.h>

/* The pages: request path → file name. */
static const struct {
    const char *path;
    const char *file;
} PAGES[] = {
    {"/", "index.html"},    {"/login", "login.html"},   {"/cinema", "cinema.html"},
    {"/hall", "hall.html"}, {"/alerts", "alerts.html"},
};

/* Content type by file name extension; NULL for a kind we do not serve. */
static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } TYPES[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    if (!dot) return NULL;
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (!strcmp(dot, TYPES[i].ext)) return TYPES[i].type;
    return NULL;
}

/* A plain file name of n bytes: [A-Za-z0-9._-], 1..64 bytes, not starting with '.'. */
static int plain_name(const char *p, size_t n)
{
    if (n == 0 || n > 64 || p[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int by_name(const char *name, size_t n, co_webui_file *out)
{
    for (size_t i = 0; i < co_webui_nassets; i++) {
        const co_webui_asset *a = &co_webui_assets[i];
        if (strlen(a->name) != n || memcmp(a->name, name, n) != 0) continue;
        const char *type = content_type(a->name);
        if (!type) return -1;
        *out = (co_webui_file){.name = a->name,
                               .data = a->data,
                               .len = a->len,
                               .type = type,
                               .etag = a->etag,
                               .cache_control = "no-cache"};
        return 0;
    }
    return -1;
}

int co_webui_find(const char *url_path, co_webui_file *out)
{
    if (!url_path || !out) return -1;
    size_t n = strcspn(url_path, "?#");
    static const char STATIC[] = "/static/";
    if (n > sizeof STATIC - 1 && !memcmp(url_path, STATIC, sizeof STATIC - 1)) {
        const char *name = url_path + sizeof STATIC - 1;
        size_t len = n - (sizeof STATIC - 1);
        if (!plain_name(name, len)) return -1;
        return by_name(name, len, out);
    }
    for (size_t i = 0; i < sizeof PAGES / sizeof PAGES[0]; i++)
        if (strlen(PAGES[i].path) == n && !memcmp(PAGES[i].path, url_path, n))
            return by_name(PAGES[i].file, strlen(PAGES[i].file), out);
    return -1;
}

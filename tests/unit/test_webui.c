/* test_webui.c — the embedded dashboard: every page and asset is found with the right content
 * type, a strong ETag and its real content; unknown paths and traversal are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/webui.h"

/* The file under collector/web/ (NULL when absent: tests run elsewhere). */
static char *read_file(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "collector/web/%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 20);
    *len = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    return buf;
}

/* The file as the build embedded it: in a page, each line "<!--#include _part.html-->"
 * replaced by that part (tools/embed.c). */
static char *read_source(const char *name, size_t *len)
{
    char *src = read_file(name, len);
    size_t nl = strlen(name);
    if (!src || nl < 5 || strcmp(name + nl - 5, ".html") != 0) return src;
    char *out = calloc(1, 1 << 21);
    size_t n = 0;
    for (char *line = src; out && *line;) {
        char *end = strchr(line, '\n');
        size_t ll = end ? (size_t)(end - line) + 1 : strlen(line);
        char part[64];
        if (sscanf(line, "<!--#include %63[^- ]-->", part) == 1) {
            size_t pl = 0;
            char *p = read_file(part, &pl);
            assert_non_null(p);
            memcpy(out + n, p, pl);
            n += pl;
            free(p);
        } else {
            memcpy(out + n, line, ll);
            n += ll;
        }
        line += ll;
    }
    free(src);
    *len = n;
    return out;
}

static void check(const char *url, const char *name, const char *type)
{
    co_webui_file f;
    assert_int_equal(co_webui_find(url, &f), 0);
    assert_string_equal(f.name, name);
    assert_string_equal(f.type, type);
    assert_non_null(f.data);
    assert_true(f.len > 0);
    assert_int_equal(f.data[f.len], 0); /* NUL after the content: safe to print */
    assert_non_null(f.etag);
    assert_true(strlen(f.etag) > 4);
    assert_int_equal(f.etag[0], '"'); /* strong: quoted, no W/ */
    assert_int_equal(f.etag[strlen(f.etag) - 1], '"');
    assert_string_equal(f.cache_control, "no-cache");
    size_t n = 0;
    char *src = read_source(name, &n);
    if (src) { /* the embedded bytes are the file's (skipped when run elsewhere) */
        assert_int_equal(f.len, n);
        assert_memory_equal(f.data, src, n);
        free(src);
    }
}

static void test_pages(void **st)
{
    (void)st;
    const char *html = "text/html; charset=utf-8";
    check("/", "index.html", html);
    check("/login", "login.html", html);
    check("/cinema", "cinema.html", html);
    check("/hall", "hall.html", html);
    check("/alerts", "alerts.html", html);
    /* the query string is not part of the path */
    check("/cinema?site=x", "cinema.html", html);
    check("/login?next=%2Fhall", "login.html", html);
}

static void test_assets(void **st)
{
    (void)st;
    const char *js = "text/javascript; charset=utf-8";
    check("/static/app.css", "app.css", "text/css; charset=utf-8");
    const char *scripts[] = {"app.js",      "i18n.js",   "units.js", "chart.js", "login.js",
                             "overview.js", "cinema.js", "hall.js",  "alerts.js"};
    for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
        char url[64];
        snprintf(url, sizeof url, "/static/%s", scripts[i]);
        check(url, scripts[i], js);
    }
    check("/static/favicon.svg", "favicon.svg", "image/svg+xml");
    check("/static/index.html", "index.html", "text/html; charset=utf-8");
}

static void test_page_ids(void **st)
{
    (void)st;
    /* the element ids the browser tests rely on are in the embedded pages */
    static const struct {
        const char *url, *ids[6];
    } P[] = {
        {"/",
         {"id=\"overview-table\"", "id=\"compliance-chart\"", "id=\"crumbs\"", "id=\"lang-switch\"",
          "id=\"last-updated\"", "id=\"logout\""}},
        {"/login",
         {"id=\"login-user\"", "id=\"login-password\"", "id=\"login-submit\"", "id=\"login-error\"",
          "id=\"lang-switch\"", NULL}},
        {"/cinema", {"id=\"cinema-alerts\"", "id=\"user-name\"", NULL}},
        {"/hall",
         {"id=\"devices\"", "id=\"hall-timeline\"", "data-range=\"1y\"", "data-range=\"24h\"",
          NULL}},
        {"/alerts",
         {"id=\"alerts-table\"", "id=\"filter-state\"", "id=\"filter-severity\"",
          "id=\"filter-site\"", "id=\"ack-dialog\"", "id=\"silence-form\""}},
    };
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++) {
        co_webui_file f;
        assert_int_equal(co_webui_find(P[i].url, &f), 0);
        for (size_t j = 0; j < 6 && P[i].ids[j]; j++)
            if (!strstr((const char *)f.data, P[i].ids[j]))
                fail_msg("%s lacks %s", P[i].url, P[i].ids[j]);
    }
}

static void test_etags_differ(void **st)
{
    (void)st;
    co_webui_file a, b, c;
    assert_int_equal(co_webui_find("/static/app.js", &a), 0);
    assert_int_equal(co_webui_find("/static/chart.js", &b), 0);
    assert_int_equal(co_webui_find("/static/app.js", &c), 0);
    assert_string_not_equal(a.etag, b.etag);
    assert_string_equal(a.etag, c.etag);
    assert_ptr_equal(a.data, c.data);
}

static void test_not_found(void **st)
{
    (void)st;
    co_webui_file f = {0};
    const char *bad[] = {
        "",
        "/index.html",
        "/login/",
        "/alerts/x",
        "/api/v1/sites",
        "/static/",
        "/static",
        "/static/nope.js",
        "/static/../x",
        "/static/_head.html", /* a part of pages, not served itself */
        "/static/../collector/webui.c",
        "/static/..",
        "/static/.hidden",
        "/static/a/b.js",
        "/static/%2e%2e/x",
        "/static/app.js/",
        "/static//app.js",
        "/static/app.js\\..",
        "/Static/app.js",
        "//static/app.js",
        "/hallx",
        "hall",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (co_webui_find(bad[i], &f) != -1) fail_msg("'%s' was served", bad[i]);
    assert_int_equal(co_webui_find(NULL, &f), -1);
    assert_int_equal(co_webui_find("/", NULL), -1);
    /* a long name is refused, not overrun */
    char longp[600] = "/static/";
    memset(longp + 8, 'a', sizeof longp - 9);
    longp[sizeof longp - 1] = '\0';
    assert_int_equal(co_webui_find(longp, &f), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pages),     cmocka_unit_test(test_assets),
        cmocka_unit_test(test_page_ids),  cmocka_unit_test(test_etags_differ),
        cmocka_unit_test(test_not_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

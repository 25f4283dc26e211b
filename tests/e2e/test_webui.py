"""The dashboard's pages and assets as the collector serves them (collector/webui.c, http.c):
open without credentials, content types, revalidation with ETag / If-None-Match (304), the
security headers on pages and on API answers, and no way out of /static/."""

import harness


def _coll(env):
    return harness.module_cache("coll", harness.collector)


def test_pages_are_served_open_with_type_and_etag(env):
    coll = _coll(env)
    for path, marker in (("/", b'data-page="overview"'), ("/login", b"password"),
                         ("/cinema", b"<html"), ("/hall", b"<html"), ("/alerts", b"<html")):
        st, _, raw, h = harness.request("GET", coll.url(path))
        assert st == 200, (path, st, raw[:200])
        assert h["content-type"] == "text/html; charset=utf-8", (path, h)
        assert marker in raw, (path, raw[:300])
        # the shared parts are included at build time (tools/embed.c), not left as directives
        assert b"<!--#include" not in raw and b'<link rel="stylesheet" href="/static/app.css">' in raw
        if path != "/login":
            assert b'id="lang-switch"' in raw and b'id="logout"' in raw, path
        assert h["etag"].startswith('"') and h["etag"].endswith('"') and len(h["etag"]) > 8, h
        assert h["cache-control"] == "no-cache", h
    for name, ctype in (("app.js", "text/javascript; charset=utf-8"),
                        ("app.css", "text/css; charset=utf-8"),
                        ("favicon.svg", "image/svg+xml")):
        st, _, raw, h = harness.request("GET", coll.url("/static/" + name))
        assert st == 200 and h["content-type"] == ctype and len(raw) > 100, (name, st, h)
    # a page's query string does not change what is served
    st, _, _, _ = harness.request("GET", coll.url("/hall") + "?site=x&screen=hall1&range=1y")
    assert st == 200


def test_if_none_match_answers_304_until_the_content_changes(env):
    coll = _coll(env)
    st, _, raw, h = harness.request("GET", coll.url("/static/app.js"))
    assert st == 200 and raw
    etag = h["etag"]
    st, _, raw, h2 = harness.request("GET", coll.url("/static/app.js"),
                                     headers={"If-None-Match": etag})
    assert st == 304 and raw == b"", (st, raw[:100])
    assert h2["etag"] == etag
    st, _, _, _ = harness.request("GET", coll.url("/static/app.js"),
                                  headers={"If-None-Match": f'"other", W/{etag}'})
    assert st == 304, "a weak or listed ETag also matches"
    st, _, raw, _ = harness.request("GET", coll.url("/static/app.js"),
                                    headers={"If-None-Match": '"not-this-one"'})
    assert st == 200 and raw, st
    # another file's ETag is not this file's
    _, _, _, hc = harness.request("GET", coll.url("/static/app.css"))
    assert hc["etag"] != etag
    st, _, _, _ = harness.request("HEAD", coll.url("/"))
    assert st == 200


def test_security_headers_on_pages_and_api(env):
    coll = _coll(env)
    for path in ("/", "/static/app.js", "/api/v1/sites", "/healthz"):
        st, _, _, h = harness.request("GET", coll.url(path))
        assert st in (200, 401), (path, st)
        assert h.get("x-content-type-options") == "nosniff", (path, h)
        assert h.get("x-frame-options") == "DENY", (path, h)
        csp = h.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, (path, csp)


def test_nothing_outside_the_embedded_files(env):
    coll = _coll(env)
    for path in ("/static/../collector.ini", "/static/%2e%2e/collector.ini", "/static/",
                 "/static/.hidden", "/static/nope.js", "/static/_head.html", "/static/_topbar.html", "/index.html", "/hall/x", "/cinemon.db",
                 "/static/app.js/x"):
        st, j, raw, h = harness.request("GET", coll.url(path))
        assert st == 404, (path, st, raw[:200])
        assert b"[collector]" not in raw and b"SQLite" not in raw
    st, j, _, h = harness.request("POST", coll.url("/"), body={"x": 1})
    assert st == 405 and "GET" in h.get("allow", ""), (st, h)
    # the collector still serves
    assert coll.healthy()

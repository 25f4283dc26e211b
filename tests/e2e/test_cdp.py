"""The browser-test client itself (tests/e2e/cdp.py) against static pages served by Python's
http.server on a free loopback port: headless Chromium starts and stops (nothing left
running), pages load, real mouse clicks and typed text reach the page's handlers, links
navigate, JavaScript values come back, screenshots are PNGs of the page's size, HttpOnly
cookies are readable over the protocol (not from the page), console errors and uncaught
exceptions are caught and clean pages report none. Skips only when chromium is absent."""

import functools
import http.server
import os
import struct
import threading
import time

import cdp
import harness

INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cdp self-test</title>
<style>body{font:16px sans-serif;margin:20px} #cover{position:absolute;left:0;top:300px;
width:400px;height:60px;background:#eee} #under{position:absolute;left:10px;top:310px}</style>
</head><body>
<h1 id="title">Hello</h1>
<label>Name <input id="name" value="old"></label>
<button id="go">Go</button>
<p id="out"></p>
<p id="clicks">0</p>
<a id="next" href="/page2.html?x=1">next page</a>
<div style="width:70px"><a id="wrapped" href="/page2.html?w=1">a link over two lines</a></div>
<button id="under">hidden under the cover</button><div id="cover"></div>
<div id="late-host"></div>
<script>
  let n = 0;
  document.getElementById('go').addEventListener('click', (ev) => {
    n++;
    document.getElementById('clicks').textContent = String(n);
    document.getElementById('out').textContent = 'Hi ' + document.getElementById('name').value
      + (ev.isTrusted ? ' (trusted)' : ' (synthetic)');
  });
  document.getElementById('name').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') document.getElementById('out').textContent = 'enter pressed';
  });
  setTimeout(() => {
    const d = document.createElement('div'); d.id = 'late'; d.textContent = 'late';
    document.getElementById('late-host').appendChild(d);
  }, 400);
</script></body></html>
"""

PAGE2 = """<!doctype html><html><head><meta charset="utf-8"><title>two</title></head>
<body><p id="where">page two</p>
<script>document.cookie = "visible=yes; path=/; SameSite=Strict";</script></body></html>
"""

BROKEN = """<!doctype html><html><head><meta charset="utf-8"><title>broken</title></head>
<body><p>broken</p>
<script>console.log('just a log'); console.warn('a warning');
console.error('something failed', 42);
setTimeout(() => { null.boom(); }, 50);
Promise.reject(new Error('rejected promise'));</script></body></html>
"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        if self.path.startswith("/page2.html"):
            self.send_header("Set-Cookie", "sid=s3cret; Path=/; HttpOnly; SameSite=Strict")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *a):
        pass


class _Server:
    def __init__(self, root):
        self.port = harness.free_port("tcp")
        h = functools.partial(_Handler, directory=str(root))
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), h)
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def _browser(env, **kw):
    if not cdp.find_chromium():
        raise harness.Skip("chromium is not installed")
    return cdp.Browser.start(log_path=env.path("chromium.log"), **kw)


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of ours counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_navigate_click_type_evaluate_screenshot_cookies(env):
    www = env.path("www")
    www.mkdir()
    (www / "index.html").write_text(INDEX)
    (www / "page2.html").write_text(PAGE2)
    srv = _Server(www)
    b = _browser(env)
    try:
        p = b.new_page()
        p.navigate(srv.url + "/index.html")
        assert p.evaluate("document.title") == "cdp self-test"
        assert p.text("#title") == "Hello"
        assert p.evaluate("1 + 2") == 3
        assert p.evaluate("Promise.resolve({a: [1, 'x']})") == {"a": [1, "x"]}
        try:
            p.evaluate("nosuchthing.x")
            raise AssertionError("a throwing expression did not raise")
        except cdp.JSError as e:
            assert "nosuchthing" in str(e), e

        # typed text replaces the value; a real click is a trusted event
        p.type("#name", "Zhang Wei 张伟")
        assert p.evaluate("document.getElementById('name').value") == "Zhang Wei 张伟"
        p.click("#go")
        p.wait_for(js="document.getElementById('out').textContent.length > 0", timeout=5)
        assert p.text("#out") == "Hi Zhang Wei 张伟 (trusted)", p.text("#out")
        p.click("#go")
        p.wait_for(js="document.getElementById('clicks').textContent === '2'", timeout=5)
        p.focus("#name")
        p.press("Enter")
        p.wait_for(js="document.getElementById('out').textContent === 'enter pressed'", timeout=5)

        # waiting for an element that appears later; a missing one times out naming it
        p.wait_for("#late", timeout=5)
        try:
            p.wait_for("#never", timeout=0.5)
            raise AssertionError("wait_for of a missing element did not time out")
        except AssertionError as e:
            assert "#never" in str(e), e
        # a covered element is not clicked through
        try:
            p.click("#under")
            raise AssertionError("clicking a covered element did not fail")
        except AssertionError as e:
            assert "covered" in str(e), e

        shot = p.screenshot(env.path("shots", "index.png"))
        w, h = _png_size(shot)
        assert w == 1280 and h >= 300, (w, h)
        t = p.timing()
        assert t["load"] > 0 and t["dom_content_loaded"] > 0 and t["ttfb"] >= 0, t
        assert t["load"] >= t["dom_content_loaded"], t

        # a link click navigates; the HttpOnly cookie is seen over the protocol only
        with p.expect_navigation():
            p.click("#next")
        assert p.text("#where") == "page two"
        assert p.location() == srv.url + "/page2.html?x=1"
        sid = p.cookie("sid")
        assert sid and sid["value"] == "s3cret" and sid["httpOnly"], p.cookies()
        assert sid["sameSite"] == "Strict", sid
        assert p.cookie("visible")["value"] == "yes", p.cookies()
        assert "sid=" not in p.evaluate("document.cookie"), "HttpOnly cookie readable by JS"
        assert any(c["name"] == "sid" for c in b.cookies())
        assert not p.errors(), p.errors()
        assert (srv.url + "/index.html", 200, "text/html") in p.responses, p.responses

        # a link wrapped over lines is clicked on its first line, not between them
        p.navigate(srv.url + "/index.html")
        assert p.evaluate("document.getElementById('wrapped').getClientRects().length") > 1
        with p.expect_navigation():
            p.click("#wrapped")
        assert p.location() == srv.url + "/page2.html?w=1"

        # a second tab is independent
        q = b.new_page()
        q.navigate(srv.url + "/index.html")
        assert q.text("#clicks") == "0"
        q.close()
        assert p.text("#where") == "page two"
    finally:
        b.stop()
        srv.close()


def test_console_errors_and_exceptions_are_caught(env):
    www = env.path("www")
    www.mkdir()
    (www / "broken.html").write_text(BROKEN)
    (www / "clean.html").write_text(PAGE2)
    srv = _Server(www)
    b = _browser(env)
    try:
        p = b.new_page()
        p.navigate(srv.url + "/clean.html")
        p.navigate(srv.url + "/missing.css")  # a 404 is a network error, not a console one
        assert not p.errors(), p.errors()
        assert p.network_errors() or p.responses[-1][1] == 404, p.log_entries
        p.navigate(srv.url + "/broken.html")
        harness.wait_until(lambda: len(p.errors()) >= 3, 5, 0.05, "three errors")
        errs = "\n".join(p.errors())
        assert "console.error: something failed 42" in errs, errs
        assert "boom" in errs and "rejected promise" in errs, errs
        assert "just a log" not in errs and "a warning" not in errs, errs
        assert any(c["type"] == "log" and c["text"] == "just a log" for c in p.console)
        p.clear_errors()
        assert p.errors() == []
    finally:
        b.stop()
        srv.close()


def test_start_and_stop_leave_nothing(env):
    fds = len(os.listdir("/proc/self/fd"))
    b = _browser(env, lang="zh-CN")
    pid, profile = b.proc.pid, b.user_data_dir
    assert b.version.startswith(("Chrome/", "HeadlessChrome/")), b.version
    p = b.new_page()
    p.navigate("data:text/html,<p id=x>x</p>")
    assert p.evaluate("navigator.language") == "zh-CN"
    t0 = time.monotonic()
    b.stop()
    assert time.monotonic() - t0 < 15
    assert not _alive(pid), f"chromium {pid} still running after stop()"
    assert not os.path.exists(profile), f"{profile} left behind"
    b.stop()  # twice is harmless
    assert len(os.listdir("/proc/self/fd")) == fds, "file descriptors leaked"
    try:
        p.evaluate("1")
        raise AssertionError("a stopped browser answered")
    except cdp.CDPError:
        pass
    # an unknown executable is reported as missing, not as a crash
    try:
        cdp.Browser.start(exe="/nonexistent/chromium")
        raise AssertionError("a missing executable started")
    except cdp.BrowserMissing as e:
        assert "/nonexistent/chromium" in str(e), e

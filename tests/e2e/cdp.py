"""cdp.py - a small Chrome DevTools Protocol client for the browser tests (standard library
only). It starts Debian's headless Chromium with --remote-debugging-pipe (CDP messages are
JSON texts ended by a NUL byte, on file descriptor 3 into the browser and 4 out of it) and
drives pages the way a person would: navigate, click at an element's centre with real mouse
events, type with real text input, read the DOM with JavaScript, take screenshots, read
cookies. Console errors and uncaught exceptions of every page are collected so a test can
assert that none happened.

    b = Browser.start()                 # raises BrowserMissing when chromium is absent
    try:
        p = b.new_page()
        p.navigate("http://127.0.0.1:8080/")
        p.type("#login-user", "anna"); p.click("#login-submit")
        p.wait_for("#overview-table tr[data-province]")
        p.screenshot("overview.png")
        assert not p.errors(), p.errors()
    finally:
        b.stop()
"""

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "chromium",
              "chromium-browser", "google-chrome")
BASE_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
              "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars",
              "--remote-debugging-pipe")
STOP_GRACE_S = 5.0


class BrowserMissing(Exception):
    """No Chromium executable on this machine."""


class CDPError(Exception):
    """The browser answered a command with an error, died, or did not answer in time."""


class JSError(Exception):
    """A Runtime.evaluate threw; the message carries the exception text."""


def find_chromium():
    """Path of the Chromium executable, or None. $CINEMON_CHROMIUM overrides."""
    env = os.environ.get("CINEMON_CHROMIUM")
    for c in ((env,) if env else ()) + CANDIDATES:
        p = c if os.path.isabs(c) else shutil.which(c)
        if p and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def _child_setup(fd_in, fd_out):
    """preexec_fn: the browser's end of each pipe becomes fd 3 (commands in) and fd 4
    (answers out); the child dies with the test process (PR_SET_PDEATHSIG)."""
    def setup():
        os.dup2(fd_in, 3)
        os.dup2(fd_out, 4)
        try:
            import ctypes
            ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)
        except (ImportError, OSError, AttributeError):
            pass
    return setup


def _high_fd(fd):
    """A close-on-exec copy of fd numbered 10 or more (so dup2 onto 3 and 4 cannot clobber
    it); the original is closed."""
    import fcntl
    hi = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return hi


class Browser:
    """One headless Chromium process and its DevTools pipe."""

    def __init__(self):
        self.proc = None
        self.user_data_dir = None
        self.own_user_data_dir = False
        self.log_path = None
        self._w = self._r = None
        self._ids = itertools.count(1)
        self._cv = threading.Condition()
        self._answers = {}
        self._sessions = {}  # sessionId -> Page
        self._closed = None  # reason text once the pipe closed
        self._reader = None
        self._write_lock = threading.Lock()
        self.pages = []
        self.lang = "en-US"
        self.version = "?"

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def start(cls, exe=None, user_data_dir=None, log_path=None, lang="en-US",
              window=(1280, 900), extra_args=(), timeout=30):
        """Start Chromium. lang: the browser's UI language (navigator.language, and the
        Accept-Language header). log_path: where its stderr goes (default: the profile
        folder). Raises BrowserMissing when there is no Chromium, CDPError when it does not
        answer within timeout."""
        exe = exe or find_chromium()
        if not exe:
            raise BrowserMissing("chromium is not installed (apt-get install chromium)")
        b = cls()
        b.lang = lang
        if user_data_dir is None:
            b.user_data_dir = tempfile.mkdtemp(prefix="cinemon-chromium-")
            b.own_user_data_dir = True
        else:
            b.user_data_dir = str(user_data_dir)
            os.makedirs(b.user_data_dir, exist_ok=True)
        b.log_path = str(log_path or os.path.join(b.user_data_dir, "chromium.log"))
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        to_r, to_w, from_r, from_w = (_high_fd(f) for f in (to_r, to_w, from_r, from_w))
        argv = [exe, *BASE_FLAGS, f"--user-data-dir={b.user_data_dir}",
                f"--window-size={window[0]},{window[1]}", f"--lang={lang}",
                f"--accept-lang={lang}", *extra_args, "about:blank"]
        env = dict(os.environ, LANG=lang.replace("-", "_") + ".UTF-8", LANGUAGE=lang)
        try:
            with open(b.log_path, "ab") as log:
                b.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                          env=env, close_fds=False, start_new_session=True,
                                          preexec_fn=_child_setup(to_r, from_w))
        except OSError as e:
            os.close(to_w)
            os.close(from_r)
            if b.own_user_data_dir:
                shutil.rmtree(b.user_data_dir, ignore_errors=True)
            raise BrowserMissing(f"cannot start {exe}: {e}") from e
        finally:
            os.close(to_r)
            os.close(from_w)
        b._w, b._r = to_w, from_r
        b._reader = threading.Thread(target=b._read_loop, name="cdp-reader", daemon=True)
        b._reader.start()
        try:
            v = b.send("Browser.getVersion", timeout=timeout)
        except Exception:
            b.stop()
            raise
        b.version = v.get("product", "?")
        return b

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Close the browser: Browser.close, then SIGTERM / SIGKILL to its process group
        after STOP_GRACE_S. Removes the profile folder it made. Safe to call twice."""
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        if p.poll() is None and self._closed is None:
            try:
                self.send("Browser.close", timeout=3)
            except Exception:  # noqa: BLE001 - it may close the pipe before answering
                pass
        try:
            p.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            _killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                _killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        _killpg(p.pid, signal.SIGKILL)  # helpers (zygote, renderers) left in the group
        for fd in (self._w, self._r):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._w = self._r = None
        if self._reader is not None:
            self._reader.join(5)
        if self.own_user_data_dir:
            # keep the log next to nothing: copy it out first if someone wants it
            shutil.rmtree(self.user_data_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def log(self):
        """Chromium's own stderr so far (for failure reports)."""
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""

    # ------------------------------------------------------------------ protocol

    def _read_loop(self):
        buf = b""
        reason = "browser closed the DevTools pipe"
        try:
            while True:
                chunk = os.read(self._r, 1 << 16)
                if not chunk:
                    break
                buf += chunk
                while True:
                    i = buf.find(b"\0")
                    if i < 0:
                        break
                    raw, buf = buf[:i], buf[i + 1:]
                    try:
                        msg = json.loads(raw)
                    except ValueError:
                        continue
                    self._dispatch(msg)
        except OSError as e:
            reason = f"DevTools pipe: {e}"
        with self._cv:
            self._closed = reason
            self._cv.notify_all()

    def _dispatch(self, msg):
        if "id" in msg:
            with self._cv:
                self._answers[msg["id"]] = msg
                self._cv.notify_all()
            return
        sid = msg.get("sessionId")
        page = self._sessions.get(sid) if sid else None
        if page is not None:
            page._on_event(msg.get("method", ""), msg.get("params") or {})
        elif msg.get("method") == "Target.detachedFromTarget":
            p = self._sessions.get((msg.get("params") or {}).get("sessionId"))
            if p is not None:
                p.detached = True
        with self._cv:
            self._cv.notify_all()

    def post(self, method, params=None, session_id=None):
        """Send a command without waiting; returns its id."""
        mid = next(self._ids)
        msg = {"id": mid, "method": method, "params": params or {}}
        if session_id:
            msg["sessionId"] = session_id
        data = json.dumps(msg).encode() + b"\0"
        with self._write_lock:
            if self._w is None:
                raise CDPError(f"{method}: browser is stopped")
            try:
                view = memoryview(data)
                while view:
                    n = os.write(self._w, view)
                    view = view[n:]
            except OSError as e:
                raise CDPError(f"{method}: cannot write to the DevTools pipe: {e}") from e
        return mid

    def send(self, method, params=None, session_id=None, timeout=30):
        """Send a command and wait for its answer; returns the result object. Raises
        CDPError on an error answer, a closed pipe or after timeout seconds."""
        mid = self.post(method, params, session_id)
        deadline = time.monotonic() + timeout
        with self._cv:
            while mid not in self._answers:
                if self._closed is not None:
                    raise CDPError(f"{method}: {self._closed}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CDPError(f"{method}: no answer within {timeout:.0f}s")
                self._cv.wait(min(left, 0.5))
            msg = self._answers.pop(mid)
        if "error" in msg:
            e = msg["error"]
            raise CDPError(f"{method}: {e.get('message')} ({e.get('code')}) {e.get('data', '')}"
                           .rstrip())
        return msg.get("result") or {}

    def wait_event(self, predicate, timeout):
        """Wait until predicate() is true (checked whenever a message arrives)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while not predicate():
                if self._closed is not None:
                    raise CDPError(self._closed)
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.5))
        return True

    # ------------------------------------------------------------------ pages

    def new_page(self, url="about:blank", width=1280, height=900):
        """A new tab (Target.createTarget) attached with flatten=true; domains enabled."""
        tid = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = self.send("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
        page = Page(self, tid, sid)
        self._sessions[sid] = page
        for m in ("Page.enable", "Runtime.enable", "Network.enable", "Log.enable"):
            page.send(m)
        page.send("Page.setLifecycleEventsEnabled", {"enabled": True})
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        try:  # Intl follows the browser's language too
            page.send("Emulation.setLocaleOverride", {"locale": self.lang.replace("-", "_")})
        except CDPError:
            pass
        self.pages.append(page)
        if url and url != "about:blank":
            page.navigate(url)
        return page

    def cookies(self):
        """Every cookie of the browser (Storage.getCookies)."""
        return self.send("Storage.getCookies").get("cookies", [])


def _killpg(pid, sig):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Page:
    """One attached tab. Every method raises CDPError/JSError/AssertionError on failure."""

    def __init__(self, browser, target_id, session_id):
        self.browser, self.target_id, self.session_id = browser, target_id, session_id
        self.console = []     # every console message: {"type", "text", "url", "ts"}
        self.exceptions = []  # uncaught exceptions: text with the stack's first frame
        self.log_entries = []  # Log.entryAdded (network failures, interventions, ...)
        self.dialogs = []     # alert/confirm/prompt texts (accepted automatically)
        self.responses = []   # (url, status, mimeType) of every response
        self.loads = 0        # Page.loadEventFired count
        self.frame_navigations = 0  # main-frame Page.frameNavigated count
        self.crashed = False
        self.detached = False
        self.main_frame = None
        self.url = "about:blank"

    # ------------------------------------------------------------------ plumbing

    def send(self, method, params=None, timeout=30):
        return self.browser.send(method, params, self.session_id, timeout)

    def _on_event(self, method, params):
        if method == "Runtime.consoleAPICalled":
            parts = []
            for a in params.get("args", []):
                if "value" in a:
                    v = a["value"]
                    parts.append(v if isinstance(v, str) else json.dumps(v))
                else:
                    parts.append(a.get("description") or a.get("type", "?"))
            st = (params.get("stackTrace") or {}).get("callFrames") or [{}]
            self.console.append({"type": params.get("type"), "text": " ".join(parts),
                                 "url": st[0].get("url", ""), "line": st[0].get("lineNumber"),
                                 "ts": params.get("timestamp")})
        elif method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails") or {}
            ex = d.get("exception") or {}
            self.exceptions.append(f"{ex.get('description') or d.get('text')} "
                                   f"at {d.get('url', '?')}:{d.get('lineNumber')}")
        elif method == "Log.entryAdded":
            e = params.get("entry") or {}
            self.log_entries.append({"level": e.get("level"), "source": e.get("source"),
                                     "text": e.get("text"), "url": e.get("url", "")})
        elif method == "Network.responseReceived":
            r = params.get("response") or {}
            self.responses.append((r.get("url"), r.get("status"), r.get("mimeType")))
        elif method == "Page.loadEventFired":
            self.loads += 1
        elif method == "Page.frameNavigated":
            f = params.get("frame") or {}
            if not f.get("parentId"):
                self.main_frame = f.get("id")
                self.url = f.get("url", self.url)
                self.frame_navigations += 1
        elif method == "Page.navigatedWithinDocument":
            if params.get("frameId") == self.main_frame:
                self.url = params.get("url", self.url)
        elif method == "Page.javascriptDialogOpening":
            self.dialogs.append(params.get("message"))
            self.browser.post("Page.handleJavaScriptDialog", {"accept": True},
                              self.session_id)
        elif method in ("Inspector.targetCrashed", "Target.targetCrashed"):
            self.crashed = True

    # ------------------------------------------------------------------ navigation

    def navigate(self, url, timeout=30):
        """Load url and wait for its load event. Raises CDPError when the load fails
        (errorText: no server, ...)."""
        before = self.loads
        r = self.send("Page.navigate", {"url": url}, timeout)
        if r.get("errorText"):
            raise CDPError(f"navigate {url}: {r['errorText']}")
        if r.get("loaderId"):  # a new document (not a same-document fragment change)
            self._wait_loads(before, timeout, f"load of {url}")
        return self

    def _wait_loads(self, before, timeout, what):
        if not self.browser.wait_event(lambda: self.loads > before or self.crashed, timeout):
            raise CDPError(f"timed out after {timeout:.0f}s waiting for {what}")
        if self.crashed:
            raise CDPError(f"the page crashed during {what}")

    def expect_navigation(self, timeout=30):
        """with page.expect_navigation(): page.click("a") - waits for the next load event
        of a new document started inside the block."""
        page = self

        class _Nav:
            def __enter__(self_):
                self_.before = page.loads
                return self_

            def __exit__(self_, et, ev, tb):
                if et is None:
                    page._wait_loads(self_.before, timeout, "navigation")
                return False
        return _Nav()

    def reload(self, timeout=30):
        before = self.loads
        self.send("Page.reload", {"ignoreCache": True})
        self._wait_loads(before, timeout, "reload")

    def location(self):
        return self.evaluate("location.href")

    # ------------------------------------------------------------------ JavaScript

    def evaluate(self, expression, await_promise=True, timeout=30):
        """Value of a JavaScript expression in the page (returnByValue: JSON-able values;
        a Promise is awaited). Raises JSError when it throws."""
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": await_promise,
                                           "userGesture": True}, timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            ex = d.get("exception") or {}
            raise JSError(f"{ex.get('description') or d.get('text')} (in: {expression[:200]})")
        res = r.get("result") or {}
        return res.get("value")

    def call(self, fn_source, *args, timeout=30):
        """Value of (fn_source)(...args): args are passed as JSON."""
        return self.evaluate(f"({fn_source})(...{json.dumps(list(args))})", timeout=timeout)

    def wait_for(self, selector=None, js=None, timeout=10.0, interval=0.1, visible=False):
        """Poll until document.querySelector(selector) exists (visible=True: and has a
        non-empty box), or until the JavaScript expression js is truthy; returns js's value
        (or True). Raises AssertionError naming what was awaited on timeout."""
        if (selector is None) == (js is None):
            raise ValueError("wait_for: give exactly one of selector or js")
        if selector is not None:
            sel = json.dumps(selector)
            if visible:
                js = (f"(() => {{ const e = document.querySelector({sel}); if (!e) return false;"
                      " const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0;"
                      " })()")
            else:
                js = f"!!document.querySelector({sel})"
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                v = self.evaluate(js, timeout=max(1.0, deadline - time.monotonic()))
                if v:
                    return v
                last = v
            except (JSError, CDPError) as e:  # e.g. the context is being replaced
                if self.crashed or not self.browser.alive():
                    raise
                last = e
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for "
                                     f"{selector or js} on {self.url}; last: {last!r}")
            time.sleep(interval)

    def exists(self, selector):
        return bool(self.evaluate(f"!!document.querySelector({json.dumps(selector)})"))

    def count(self, selector):
        return self.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length")

    def text(self, selector):
        """textContent (trimmed) of the first match, or None."""
        return self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                             " return e ? e.textContent.trim() : null; })()")

    def texts(self, selector):
        return self.evaluate(f"Array.from(document.querySelectorAll({json.dumps(selector)}),"
                             " e => e.textContent.trim())")

    def attr(self, selector, name):
        return self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                             f" return e ? e.getAttribute({json.dumps(name)}) : null; }})()")

    def attrs(self, selector, name):
        return self.evaluate(f"Array.from(document.querySelectorAll({json.dumps(selector)}),"
                             f" e => e.getAttribute({json.dumps(name)}))")

    # ------------------------------------------------------------------ input

    def box(self, selector, scroll=True):
        """Centre (x, y) in CSS pixels of the viewport of the first match's first box (a
        wrapped inline element has one per line), scrolled into view; AssertionError when
        there is none or it has no size."""
        into_view = "e.scrollIntoView({block: 'center', inline: 'nearest'});" if scroll else ""
        r = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            f" if (!e) return null; {into_view}"
            # the first box with a size: a link wrapped over two lines is clicked on its
            # first line, where a person would click, not between the lines
            " const r = Array.from(e.getClientRects()).find(b => b.width > 0 && b.height > 0)"
            "   || e.getBoundingClientRect();"
            " return {x: r.left + r.width / 2, y: r.top + r.height / 2, w: r.width, h: r.height};"
            " })()")
        if r is None:
            raise AssertionError(f"no element {selector} on {self.url}")
        if r["w"] <= 0 or r["h"] <= 0:
            raise AssertionError(f"element {selector} has no size (hidden?) on {self.url}")
        return r["x"], r["y"]

    def click(self, selector, check_target=True):
        """Click the centre of the first match with real mouse events (moved, pressed,
        released). check_target: fail when another element covers that point."""
        x, y = self.box(selector)
        if check_target:
            ok = self.evaluate(
                f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                f" const t = document.elementFromPoint({x}, {y});"
                " return !!t && (t === e || e.contains(t)); })()")
            if not ok:
                top = self.evaluate(f"(() => {{ const t = document.elementFromPoint({x}, {y});"
                                    " return t ? t.outerHTML.slice(0, 160) : null; })()")
                raise AssertionError(f"{selector} is covered at its centre by {top}")
        self.mouse_click(x, y)

    def mouse_click(self, x, y, button="left"):
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for t in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": t, "x": x, "y": y, "button": button,
                                                   "buttons": 1 if t == "mousePressed" else 0,
                                                   "clickCount": 1})

    def focus(self, selector):
        ok = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                           " if (!e) return false; e.focus(); return document.activeElement === e;"
                           " })()")
        if not ok:
            raise AssertionError(f"cannot focus {selector} on {self.url}")

    def type(self, selector, text, clear=True):
        """Focus the field and enter text as typed input (Input.insertText: input events
        fire as for a person's typing). clear: select and replace what is there."""
        self.focus(selector)
        if clear:
            self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                          " if (e.select) e.select(); })()")
        self.send("Input.insertText", {"text": text})

    def press(self, key="Enter"):
        """One key press on the focused element (Enter, Tab, Escape)."""
        codes = {"Enter": (13, "\r"), "Tab": (9, ""), "Escape": (27, "")}
        vk, text = codes[key]
        down = {"type": "keyDown", "key": key, "code": key, "windowsVirtualKeyCode": vk,
                "nativeVirtualKeyCode": vk}
        if text:
            down["text"] = text
        self.send("Input.dispatchKeyEvent", down)
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": key,
                                             "windowsVirtualKeyCode": vk,
                                             "nativeVirtualKeyCode": vk})

    def select(self, selector, value):
        """Choose an option of a <select> as a person's choice would: focus, set the value,
        fire input and change events."""
        ok = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return 'missing';"
            f" if (![...e.options].some(o => o.value === {json.dumps(value)})) return 'no option';"
            f" e.focus(); e.value = {json.dumps(value)};"
            " e.dispatchEvent(new Event('input', {bubbles: true}));"
            " e.dispatchEvent(new Event('change', {bubbles: true})); return 'ok'; })()")
        if ok != "ok":
            raise AssertionError(f"select {selector} = {value!r}: {ok} on {self.url}")

    # ------------------------------------------------------------------ output

    def screenshot(self, path, full_page=True):
        """A PNG of the page (full_page: the whole document, not only the viewport).
        Returns the path."""
        params = {"format": "png"}
        if full_page:
            # from the top: sticky headers stay where a reader sees them
            self.evaluate("window.scrollTo(0, 0)")
            m = self.send("Page.getLayoutMetrics")
            cs = m.get("cssContentSize") or m.get("contentSize") or {}
            w, h = max(1, int(cs.get("width", 1280))), max(1, int(cs.get("height", 900)))
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": w, "height": min(h, 16000), "scale": 1})
        data = self.send("Page.captureScreenshot", params, timeout=60)["data"]
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(base64.b64decode(data))
        return p

    def cookies(self, urls=None):
        """Cookies visible to this page (Network.getCookies), for urls or the page's URL."""
        params = {"urls": list(urls)} if urls else {}
        return self.send("Network.getCookies", params).get("cookies", [])

    def cookie(self, name, urls=None):
        for c in self.cookies(urls):
            if c["name"] == name:
                return c
        return None

    def timing(self):
        """Load figures of the current document in ms from the navigation start
        (PerformanceNavigationTiming): ttfb, dom_content_loaded, load, plus the transfer
        size; falls back on performance.timing."""
        return self.evaluate("""(() => {
          const n = performance.getEntriesByType('navigation')[0];
          if (n) return {ttfb: n.responseStart, response_end: n.responseEnd,
                         dom_interactive: n.domInteractive,
                         dom_content_loaded: n.domContentLoadedEventEnd,
                         load: n.loadEventEnd, transfer_size: n.transferSize,
                         duration: n.duration};
          const t = performance.timing, s = t.navigationStart;
          return {ttfb: t.responseStart - s, response_end: t.responseEnd - s,
                  dom_interactive: t.domInteractive - s,
                  dom_content_loaded: t.domContentLoadedEventEnd - s,
                  load: t.loadEventEnd - s, transfer_size: null,
                  duration: t.loadEventEnd - s};
        })()""")

    def errors(self):
        """Console errors (console.error / console.assert) and uncaught exceptions seen so
        far, as texts: a test asserts this is empty."""
        out = [f"console.{c['type']}: {c['text']} ({c['url']}:{c['line']})"
               for c in self.console if c["type"] in ("error", "assert")]
        return out + [f"uncaught: {e}" for e in self.exceptions]

    def network_errors(self, ignore_status=()):
        """Log.entryAdded errors (a failed resource load, a blocked request), leaving out
        'status of N' failures whose N is in ignore_status."""
        out = []
        for e in self.log_entries:
            if e["level"] != "error":
                continue
            if any(f"status of {s} " in (e["text"] or "") for s in ignore_status):
                continue
            out.append(f"{e['source']}: {e['text']} ({e['url']})")
        return out

    def clear_errors(self):
        self.console.clear()
        self.exceptions.clear()
        self.log_entries.clear()

    def close(self):
        try:
            self.browser.send("Target.closeTarget", {"targetId": self.target_id}, timeout=5)
        except CDPError:
            pass
        self.browser._sessions.pop(self.session_id, None)

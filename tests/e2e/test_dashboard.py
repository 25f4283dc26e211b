"""The dashboard in a real browser (issue 6): headless Chromium driven over the DevTools
protocol (tests/e2e/cdp.py) against a collector holding cinemas in two provinces:

  11010001 Beijing  fed by cinemon-sim (2 halls) + a cinemon-agent daemon
  11010002 Beijing  fed by batches ingested directly (deterministic): hall1 reads 30 nits (a
                    luminance alert to acknowledge, 0 % within tolerance), hall2 48 nits
  31010001 Shanghai fed by a second cinemon-sim + cinemon-agent

Viewers are created with the CLI (`viewer add`, password on stdin). A national operator logs
in through the login form, reads the overview (provinces with the simulator's numbers, the
compliance bar chart, sorting), clicks through province → city → cinema → hall tile, sees a
chart with its tolerance band, switches the range to 7 d, acknowledges the alert with a
comment on /alerts (checked through the API), switches the language, watches the page refresh
itself (?refresh=1) and logs out. A viewer limited to Shanghai sees only Shanghai in the pages
and gets "not found" / 404 / nothing for Beijing, in the pages and from the API with its own
session cookie. No page logs a console error or throws. A screenshot of every page is kept:
<case env>/screenshots/ and build/test-artifacts/dashboard/ (paths printed). Page-load figures
(PerformanceNavigationTiming) are printed too. Skips only when chromium is absent."""

import configparser
import json
import os
import re
import shutil
import sys
import time
import urllib.parse

import cdp
import harness
from harness import wait_until

BJ1, BJ2, SH1 = "11010001", "11010002", "31010001"
OP, OP_PW = "anna", "anna-Passw0rd!"
LIM, LIM_PW = "li", "li-Passw0rd!"
COMMENT = "lamp ordered / 灯泡已订购"
LUM = "screen_luminance_nits"
COOKIE = "cinemon_session"
SLOTS = 8
CJK = re.compile(r"[\u4e00-\u9fff]")
NOT_FOUND = re.compile(r"not found|不存在|404", re.I)

CSV = ("cinema_code,cinema_name,province,city,chain,hall_code,hall_name,class,display\n"
       f"{BJ1},Capital Cinema,Beijing,Beijing,Wanda,hall1,Hall 1,theatre,projection\n"
       f"{BJ1},Capital Cinema,Beijing,Beijing,Wanda,hall2,Hall 2,theatre,projection\n"
       f"{BJ2},Haidian Cinema,Beijing,Beijing,Bona,hall1,Hall 1,theatre,projection\n"
       f"{BJ2},Haidian Cinema,Beijing,Beijing,Bona,hall2,Hall 2,theatre,projection\n"
       f"{SH1},Bund Cinema,Shanghai,Shanghai,Wanda,hall1,Hall 1,theatre,projection\n"
       f"{SH1},Bund Cinema,Shanghai,Shanghai,Wanda,hall2,Hall 2,theatre,projection\n")

# Sends site 11010002's meter readings: 20 minutes of history at once, then one reading of
# each hall every 2 s (so the devices stay "reporting" and never fall silent).
FEEDER = r'''
import json, sys, time, urllib.request
url, token_file, site, agent = sys.argv[1:5]
token = open(token_file).read().strip()
VALUES = {"hall1/meter": 30.0, "hall2/meter": 48.0}
def batch(seq, points):
    return {"v": 1, "agent": {"id": agent, "version": "e2e-feeder", "site": site}, "seq": seq,
            "sent_ms": int(time.time() * 1000),
            "devices": [{"id": d, "screen": d.split("/")[0], "kind": "light_sensor",
                         "vendor": "Test", "model": "Meter"} for d in VALUES],
            "series": [{"device": d, "metric": "screen_luminance_nits", "labels": {"mode": "2d"},
                        "unit": "nits", "points": [[t, v] for t in points]}
                       for d, v in VALUES.items()], "events": []}
now = int(time.time() * 1000)
day0 = now // 86400000 * 86400000
first = max(day0, now - 20 * 60000)
pending = [batch(1, list(range(first, now, 30000)) + [now])]
seq = 1
while True:
    b = pending[0]
    req = urllib.request.Request(url + "/api/v1/ingest", data=json.dumps(b).encode(),
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=10).read()
        pending.pop(0)
        if b["seq"] == 1:
            print("history sent", flush=True)
    except Exception as e:
        print("retry", b["seq"], e, file=sys.stderr, flush=True)
    time.sleep(2)
    if not pending:
        seq += 1
        pending.append(batch(seq, [int(time.time() * 1000)]))
'''


# ---------------------------------------------------------------- helpers

def _artifacts_dir():
    d = harness.REPO / "build" / "test-artifacts" / "dashboard"
    return d / "asan" if harness.ASAN else d


def _shot(page, env, name):
    """Screenshot into <env>/screenshots/NAME.png and build/test-artifacts/dashboard/."""
    p = page.screenshot(env.path("screenshots", f"{name}.png"))
    art = _artifacts_dir()
    art.mkdir(parents=True, exist_ok=True)
    shutil.copy(p, art / p.name)
    print(f"  screenshot {name}: {p} -> {art / p.name}", flush=True)
    return p


def _clean(page, ignore_status=()):
    """No console error, no uncaught exception, no failed load other than ignore_status."""
    errs = page.errors()
    net = [e for e in page.network_errors(ignore_status) if "favicon" not in e]
    assert not errs and not net, f"errors on {page.url}:\n" + "\n".join(errs + net)


def _timing(page, what, t0):
    """Print the page-load figures of the current document; t0: monotonic time of the
    navigation start (for the time until its data was on the page)."""
    t = page.timing() or {}
    shown = (time.monotonic() - t0) * 1000
    print(f"  page load {what}: ttfb {t.get('ttfb', 0):.0f} ms, DOMContentLoaded "
          f"{t.get('dom_content_loaded', 0):.0f} ms, load {t.get('load', 0):.0f} ms, "
          f"data shown after {shown:.0f} ms", flush=True)


def _path(page):
    u = urllib.parse.urlsplit(page.location())
    return u.path, dict(urllib.parse.parse_qsl(u.query))


def _api(coll, path, cookie=None, bearer=None, method="GET", body=None, **q):
    """(status, json) of an API request with a session cookie or a Bearer token."""
    h = {}
    if cookie:
        h["Cookie"] = f"{COOKIE}={cookie}"
    if bearer:
        h["Authorization"] = f"Bearer {bearer}"
    s, j, _, _ = harness.request(method, coll.url(path, **q), body=body, headers=h)
    return s, j


def _data(coll, path, cookie=None, bearer=None, **q):
    s, j = _api(coll, path, cookie, bearer, **q)
    assert s == 200 and isinstance(j, dict) and "data" in j, (path, q, s, j)
    return j["data"]


def _pct(share):
    """Texts a page may show for a share (0..1): 50, 50.0, 50.00; '—'-like for null."""
    if share is None:
        return None
    v = share * 100
    return {f"{v:.0f}", f"{v:.1f}", f"{v:.2f}"}


def _click_through(page, target, then=None, js=None, tries=3):
    """Click target and wait for what it leads to (a selector, or a JavaScript condition). The
    page redraws what it shows as data arrives and every 15 s (live refresh): a click landing
    on an element being replaced is lost, as it would be for a person, who clicks again — so
    does this, at most `tries` times (never once the first click has led somewhere)."""
    for i in range(tries):
        page.click(target)
        try:
            page.wait_for(then, js=js, timeout=5 if i < tries - 1 else 10)
            return
        except AssertionError:
            if i == tries - 1:
                raise
        try:  # the page may have moved on after all: then target is gone
            page.wait_for(then, js=js, timeout=1)
            return
        except AssertionError:
            pass


def _row_cells(page, row_sel):
    """{column key: cell text} of a table row: the key is the column header's data-sort (or
    its position)."""
    return page.evaluate(f"""(() => {{
      const row = document.querySelector({json.dumps(row_sel)});
      if (!row) return null;
      const table = row.closest('table');
      const heads = table ? Array.from(table.querySelectorAll('thead th')) : [];
      const out = {{}};
      let col = 0;
      for (const td of row.children) {{
        const th = heads[col];
        out[(th && th.getAttribute('data-sort')) || String(col)] = td.textContent.trim();
        col += td.colSpan || 1;
      }}
      out._text = row.textContent;
      return out;
    }})()""")


def _sim_binary():
    try:
        return harness.binary("cinemon-sim")
    except AssertionError:
        return os.path.join(str(harness.BUILD), "cinemon-sim")


def _sim_devices(path):
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.read(path)
    out = []
    for sec in cp.sections():
        if sec.startswith("device "):
            out.append(dict(cp[sec], id=sec.split('"')[1]))
    return out


class _BrowserProc:
    """Lets harness.Env stop a browser like one of its processes."""

    def __init__(self, name, browser, log_path):
        self.name, self.browser = name, browser
        # Chromium's own log (log_path) is mostly D-Bus noise: kept in the folder, left out
        # of the failure tails
        self.log_path = log_path
        self.stdout_path = self.stderr_path = os.devnull
        self.stop_problem = None

    def alive(self):
        return self.browser.alive()

    def stop(self):
        self.browser.stop()
        return None


def _browser(env, name, lang="en-US"):
    if not cdp.find_chromium():
        raise harness.Skip("chromium is not installed")
    log = env.path(f"{name}.log")
    b = cdp.Browser.start(log_path=log, lang=lang)
    env.procs.append(_BrowserProc(name, b, log))
    return b


def _start_site(env, coll, tag, site, seed):
    """cinemon-sim --halls 2 and a cinemon-agent daemon for site, uploading to coll."""
    base = harness.free_port_range(2 * SLOTS)
    frag = env.path(f"devices-{tag}.ini")
    sim = env.start(f"sim-{tag}", [_sim_binary(), "--halls", "2", "--base-port", base,
                                   "--seed", seed, "--print-config", frag], check_exit=True)

    def ready():
        if not sim.alive():
            raise harness.ProcessDied(f"cinemon-sim exited: {sim.stderr()}")
        return frag.exists() and "hall2/sensor" in frag.read_text() and \
            harness._snmp_answers(base, "public")
    wait_until(ready, 20, 0.1, f"cinemon-sim for {site}")
    agent_id = f"agent-{tag}"
    token = coll.tokens[(agent_id, site)]
    ini = harness.write_agent_ini(env, _sim_devices(frag), coll.base_url, token, site, agent_id,
                                  name=f"agent-{tag}.ini",
                                  extra={"token_file": f"token-{tag}", "state_dir": f"state-{tag}",
                                         "interval": "2s", "upload.interval": "2s",
                                         "timeout": "2s"})
    env.write(f"token-{tag}", token + "\n", mode=0o600)
    proc = env.start(f"agent-{tag}", [harness.binary("cinemon-agent"), "-c", ini],
                     check_exit=True)
    time.sleep(0.2)
    assert proc.alive(), f"agent {tag} exited: {proc.stderr()}"


def _world(env):
    """Everything the cases share (started once per module): collector, simulators, agents,
    the feeder, viewers, an operator token, the alert to acknowledge, the operator's browser."""
    if not cdp.find_chromium():
        raise harness.Skip("chromium is not installed")
    coll = harness.collector(env, tokens=[("agent-bj", BJ1), ("agent-sh", SH1),
                                          ("feeder", BJ2)],
                             extra={"rules": {"compliance_interval": "1s"}})
    exe = harness.binary("cinemon-collector")
    r = env.run([exe, "-c", coll.ini, "import", env.write("halls.csv", CSV)])
    assert r.returncode == 0, f"import: {r.stderr}"
    for name, pw, opts in ((OP, OP_PW, ["--role", "operator"]),
                           (LIM, LIM_PW, ["--role", "viewer", "--province", "Shanghai"])):
        r = env.run([exe, "-c", coll.ini, "viewer", "add", name, *opts], input=pw + "\n")
        assert r.returncode == 0, f"viewer add {name}: rc {r.returncode} {r.stderr}"
        assert pw not in r.stdout + r.stderr, "the password was echoed"
    r = env.run([exe, "-c", coll.ini, "token", "add", "--operator", "ncc"])
    assert r.returncode == 0, r.stderr
    bearer = r.stdout.strip()

    env.write("token-feeder", coll.tokens[("feeder", BJ2)] + "\n", mode=0o600)
    env.write("feeder.py", FEEDER)
    env.start("feeder", [sys.executable, env.path("feeder.py"), coll.base_url,
                         env.path("token-feeder"), BJ2, "feeder"])
    _start_site(env, coll, "bj", BJ1, 3)
    _start_site(env, coll, "sh", SH1, 5)

    def firing():
        a = _data(coll, "/api/v1/alerts", bearer=bearer, site=BJ2, rule="screen_luminance",
                  state="firing")
        return a if len(a) == 1 and a[0]["device"] == "hall1/meter" else None
    alert = wait_until(firing, 40, 0.3, "the luminance alert of 11010002 hall1")[0]

    def reporting():  # every hall of every cinema has devices that report
        scr = _data(coll, "/api/v1/screens", bearer=bearer)
        got = {(s["site"], s["screen"]): s.get("devices", 0) for s in scr}
        return len(got) == 6 and all(v > 0 for v in got.values())
    wait_until(reporting, 40, 0.5, "devices reporting in all six halls")

    def sim_luminance():  # a few samples of the simulator's sensor (chart data)
        pts = _data(coll, "/api/v1/series", bearer=bearer, site=BJ1, device="hall1/sensor",
                    metric=LUM)
        return sum(len(s.get("points", [])) for s in pts) >= 3 if pts else False
    wait_until(sim_luminance, 40, 0.5, "luminance samples of the simulator")
    browser = _browser(env, "chromium-operator")
    return {"coll": coll, "bearer": bearer, "alert": alert, "browser": browser, "env": env}


def _w():
    return harness.module_cache("world", _world)


def _login(page, coll, user, pw, start="/"):
    """Open start without a session: the page sends us to /login; log in there (one wrong
    password first), land back on start. Returns the session cookie's value."""
    t0 = time.monotonic()
    page.navigate(coll.base_url + start)
    page.wait_for("#login-user", visible=True, timeout=15)
    page.wait_for(js="document.readyState === 'complete'", timeout=10)
    path, q = _path(page)
    assert path == "/login", (path, q)
    # a wrong password: an error, no cookie, still on the login page
    page.type("#login-user", user)
    page.type("#login-password", pw + "-wrong")
    page.click("#login-submit")
    page.wait_for(js="(document.getElementById('login-error') || {}).textContent"
                     " && document.getElementById('login-error').textContent.trim().length > 0",
                  timeout=10)
    assert page.cookie(COOKIE) is None, page.cookies()
    assert _path(page)[0] == "/login"
    page.type("#login-password", pw)
    page.click("#login-submit")
    page.wait_for(js="location.pathname !== '/login' && document.readyState === 'complete'",
                  timeout=15)
    assert _path(page)[0] == urllib.parse.urlsplit(start).path, page.location()
    c = page.cookie(COOKIE)
    assert c and c["httpOnly"] and c["sameSite"] == "Strict" and c["path"] == "/", c
    page.wait_for(js=f"(document.getElementById('user-name') || {{}}).textContent"
                     f" && document.getElementById('user-name').textContent.includes("
                     f"{json.dumps(user)})", timeout=10)
    _timing(page, f"login flow (a wrong password first) → {start}", t0)
    return c["value"]


def _page(w):
    """A new tab of the operator's browser, logged in."""
    p = w["browser"].new_page()
    if p.cookie(COOKIE, [w["coll"].base_url + "/"]) is None:
        w["cookie"] = _login(p, w["coll"], OP, OP_PW)
        p.clear_errors()  # the 401s before the login are expected
    else:
        w["cookie"] = p.cookie(COOKIE, [w["coll"].base_url + "/"])["value"]
    return p


def _open(page, coll, path, ready, what, timeout=15):
    """Navigate to path and wait until the selector ready is on the page; print timings."""
    t0 = time.monotonic()
    page.navigate(coll.base_url + path)
    page.wait_for(ready, timeout=timeout)
    _timing(page, what, t0)


def _wait_refreshed(page, timeout=15):
    """The page's data arrived: #last-updated carries a data-ts."""
    page.wait_for(js="/^[0-9]+$/.test((document.getElementById('last-updated') || {"
                     " getAttribute: () => '' }).getAttribute('data-ts') || '')",
                  timeout=timeout)


# ---------------------------------------------------------------- cases

def test_login_overview_and_click_through_to_a_hall(env):
    w = _w()
    coll = w["coll"]
    p = w["browser"].new_page()
    try:
        w["cookie"] = cookie = _login(p, coll, OP, OP_PW)
        _clean(p, ignore_status=(401,))
        p.clear_errors()
        assert p.text("#user-name").find(OP) >= 0

        # the overview: one row per province, with the API's (the simulator's) numbers
        def provinces():
            rows = _data(coll, "/api/v1/overview", cookie=cookie, level="province")
            by = {r["province"]: r for r in rows}
            ok = set(by) == {"Beijing", "Shanghai"} and by["Beijing"]["screens_reporting"] == 4 \
                and by["Shanghai"]["screens_reporting"] == 2
            return by if ok else None
        api = wait_until(provinces, 30, 0.5, "the overview API with both provinces reporting")
        assert api["Beijing"]["cinemas"] == 2 and api["Beijing"]["screens"] == 4, api
        assert api["Shanghai"]["cinemas"] == 1 and api["Shanghai"]["screens"] == 2, api
        assert api["Beijing"]["alerts"]["warning"] >= 1, api
        # 11010002's compliance is deterministic: hall1 at 30 nits never within tolerance,
        # hall2 at 48 always, over the same times: half of the measured time
        def half():
            rows = _data(coll, "/api/v1/overview", cookie=cookie, level="cinema",
                         province="Beijing")
            r = next((x for x in rows if x["site"] == BJ2), None)
            v = r and r["compliance"]["luminance"]
            return r if v is not None and abs(v - 0.5) < 0.02 else None
        bj2 = wait_until(half, 20, 0.5, "11010002's luminance share of 0.5")
        assert bj2["screens"] == 2 and bj2["screens_reporting"] == 2, bj2
        assert bj2["worst"] == "warning" and bj2["chain"] == "Bona", bj2
        _open(p, coll, "/", "#overview-table tr[data-province='Shanghai']", "overview")
        _wait_refreshed(p)
        assert sorted(p.attrs("#overview-table tr[data-province]", "data-province")) == \
            ["Beijing", "Shanghai"]
        for prov, row in api.items():
            cells = _row_cells(p, f"#overview-table tr[data-province='{prov}']")
            assert cells, prov
            keyed = 0
            # (counts only: the shares move while the simulators run)
            for key, col in (("cinemas", "cinemas"), ("screens", "screens"),
                             ("screens_reporting", "reporting")):
                col = key if key in cells else col
                if col in cells:
                    keyed += 1
                    assert cells[col].split()[0].startswith(str(row[key])), \
                        (prov, key, cells, row)
            if not keyed:  # headers without those keys: the numbers are in the row
                for key in ("cinemas", "screens", "screens_reporting"):
                    assert str(row[key]) in cells["_text"], (prov, key, cells, row)
        bars = p.attrs("#compliance-chart rect.bar[data-province]", "data-province")
        assert sorted(bars) == ["Beijing", "Shanghai"], bars
        _shot(p, env, "01-overview")

        # sorting: a numeric column, twice, gives both orders
        heads = p.attrs("#overview-table th[data-sort]", "data-sort")
        assert heads, "no sortable column"
        key = next((k for k in ("screens", "cinemas", "screens_reporting") if k in heads),
                   heads[-1])
        orders = set()
        for _ in range(2):
            p.click(f"#overview-table th[data-sort='{key}']")
            time.sleep(0.2)
            orders.add(tuple(p.attrs("#overview-table tr[data-province]", "data-province")))
        assert len(orders) == 2, (key, orders)

        # province → city → cinema → hall tile
        _click_through(p, "#overview-table tr[data-province='Beijing']", "tr[data-city='Beijing']")
        assert "Beijing" in (p.text("#crumbs") or ""), p.text("#crumbs")
        _shot(p, env, "02-overview-beijing")
        _click_through(p, "tr[data-city='Beijing']", f"tr[data-site='{BJ2}'] a.cinema-link")
        assert sorted(p.attrs("tr[data-site]", "data-site")) == [BJ1, BJ2]
        cells = _row_cells(p, f"tr[data-site='{BJ2}']")
        lum = cells.get("luminance", cells["_text"])
        assert any(t in lum for t in _pct(0.5)), cells
        assert "Haidian Cinema" in cells["_text"], cells
        _shot(p, env, "03-overview-beijing-cinemas")
        _clean(p)
        t0 = time.monotonic()
        _click_through(p, f"tr[data-site='{BJ2}'] a.cinema-link",
                       js="location.pathname === '/cinema'")
        assert _path(p) == ("/cinema", {"site": BJ2}), p.location()

        # the cinema: a tile per hall coloured by its worst alert, the cinema's alerts
        p.wait_for(".hall-tile[data-screen='hall2'][data-worst]", timeout=15)
        _timing(p, "cinema", t0)
        assert sorted(p.attrs(".hall-tile[data-screen]", "data-screen")) == ["hall1", "hall2"]
        assert p.attr(".hall-tile[data-screen='hall1']", "data-worst") == "warning"
        assert p.attr(".hall-tile[data-screen='hall2']", "data-worst") == "ok"
        assert "30" in p.text(".hall-tile[data-screen='hall1']"), \
            p.text(".hall-tile[data-screen='hall1']")
        aid = str(w["alert"]["id"])
        p.wait_for(f"#cinema-alerts tr[data-alert-id='{aid}']", timeout=10)
        _shot(p, env, "04-cinema")
        _clean(p)
        t0 = time.monotonic()
        _click_through(p, ".hall-tile[data-screen='hall1']", js="location.pathname === '/hall'")
        assert _path(p) == ("/hall", {"site": BJ2, "screen": "hall1"}), p.location()

        # the hall: the meter out of its band, a luminance chart with its band and the data
        # (30 nits: the whole line below the 37.8..58.2 band)
        metric = f".device[data-device='hall1/meter'] .metric[data-metric='{LUM}']"
        p.wait_for(metric, timeout=15)
        _timing(p, "hall", t0)
        cls = p.attr(metric, "class") or ""
        assert "out-of-band" in cls.split(), cls
        chart = f"svg.chart[data-metric='{LUM}']"
        _wait_chart(p, chart)
        geo = p.evaluate(f"""(() => {{
          const s = document.querySelector({json.dumps(chart)});
          const b = s.querySelector('.band').getBoundingClientRect();
          const l = s.querySelector('path.line').getBoundingClientRect();
          return {{band_bottom: b.bottom, band_h: b.height, line_top: l.top}};
        }})()""")
        assert geo["band_h"] > 0, geo
        assert geo["line_top"] >= geo["band_bottom"] - 1, f"30 nits drawn inside the band: {geo}"
        assert p.exists("#hall-timeline"), "no #hall-timeline"
        _shot(p, env, "05-hall-24h")
        _clean(p)

        # range 7 d: the chart is drawn again from a series request over 7 days
        n = len(p.responses)
        p.click("button[data-range='7d']")

        def series_7d():
            for url, status, _ in p.responses[n:]:
                if "/api/v1/series" in url and status == 200:
                    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
                    if q.get("metric") in (None, LUM):
                        return url, q
            return None
        url, q = wait_until(series_7d, 10, 0.1, "a series request after choosing 7d")
        if q.get("from", "").isdigit():
            to = int(q["to"]) if q.get("to", "").isdigit() else int(time.time() * 1000)
            assert to - int(q["from"]) >= 6.5 * 86400000, q
        # (a line needs two points: a 7-day chart of 1-hour buckets may have only one yet)
        _wait_chart(p, chart, need_line=_points(w, url) >= 2)
        _shot(p, env, "06-hall-7d")
        _clean(p)

        # a simulator-fed hall: its luminance chart has a band and data (one 1-minute
        # bucket or more: the simulator has not run for long)
        _open(p, coll, f"/hall?site={BJ1}&screen=hall1",
              f".device[data-device='hall1/sensor'] .metric[data-metric='{LUM}']", "hall (sim)")
        _wait_chart(p, chart, min_points=1)
        _shot(p, env, "07-hall-sim")
        _clean(p)
    finally:
        p.close()


def _points(w, url):
    """How many points the series answer at url (fetched with the operator's cookie) holds
    in its longest series."""
    u = urllib.parse.urlsplit(url)
    s, j, _, _ = harness.request("GET", w["coll"].base_url + u.path + "?" + u.query,
                                 headers={"Cookie": f"{COOKIE}={w['cookie']}"})
    if s != 200 or not isinstance(j, dict) or not isinstance(j.get("data"), list):
        return 0
    return max((len(x.get("points") or []) for x in j["data"] if isinstance(x, dict)),
               default=0)


def _wait_chart(p, chart, need_line=True, min_points=2, timeout=15):
    """The chart has a sized .band and (need_line) a path.line through at least min_points
    points."""
    line = ("(() => { const l = s.querySelector('path.line'); if (!l) return false;"
            " const d = l.getAttribute('d') || '';"
            f" return (d.match(/[ML]/g) || []).length >= {min_points}"
            f" && ({min_points} < 2 || l.getTotalLength() > 0); }})()") if need_line else "true"
    p.wait_for(js=f"""(() => {{
      const s = document.querySelector({json.dumps(chart)});
      if (!s) return false;
      const b = s.querySelector('.band');
      if (!b || b.getBoundingClientRect().height <= 0) return false;
      return {line};
    }})()""", timeout=timeout)


def test_acknowledge_an_alert_with_a_comment(env):
    w = _w()
    coll = w["coll"]
    aid = str(w["alert"]["id"])
    p = _page(w)
    try:
        row = f"#alerts-table tr[data-alert-id='{aid}']"
        _open(p, coll, "/alerts", row, "alerts")
        assert p.attr(row, "data-state") == "firing", p.attr(row, "data-state")
        for f in ("#filter-state", "#filter-severity", "#filter-site", "#silence-form",
                  "#silence-submit"):
            assert p.exists(f), f"no {f} on /alerts"
        _shot(p, env, "08-alerts")
        p.click(f"{row} .ack-btn")
        p.wait_for("#ack-dialog #ack-comment", visible=True, timeout=5)
        p.type("#ack-comment", COMMENT)
        _shot(p, env, "09-alerts-ack-dialog")
        p.click("#ack-submit")
        p.wait_for(js=f"(() => {{ const c = document.querySelector({json.dumps(row + ' td.ack')});"
                      f" return !!c && c.textContent.includes({json.dumps(OP)}); }})()",
                   timeout=10)
        s, j = _api(coll, f"/api/v1/alerts/{aid}", cookie=w["cookie"])
        assert s == 200, (s, j)
        a = j.get("data", j)
        assert a["ack"]["comment"] == COMMENT and a["ack"]["by"] == OP, a
        _shot(p, env, "10-alerts-acknowledged")
        _clean(p)
    finally:
        p.close()


def test_language_switch(env):
    w = _w()
    p = _page(w)
    try:
        _open(p, w["coll"], "/", "#overview-table th[data-sort]", "overview")
        labels = "Array.from(document.querySelectorAll('#overview-table th')," \
                 " e => e.textContent.trim()).join('|')"
        p.select("#lang-switch", "en")
        p.wait_for(js="document.documentElement.lang.startsWith('en')", timeout=5)
        en = p.evaluate(labels)
        assert not CJK.search(en), en
        p.select("#lang-switch", "zh")
        p.wait_for(js="document.documentElement.lang.startsWith('zh')", timeout=5)
        p.wait_for(js=f"{labels} !== {json.dumps(en)}", timeout=5)
        zh = p.evaluate(labels)
        assert CJK.search(zh), zh
        _shot(p, env, "11-overview-zh")
        p.reload()  # the choice is kept
        p.wait_for("#overview-table th[data-sort]", timeout=10)
        assert p.evaluate("document.documentElement.lang").startswith("zh")
        assert p.evaluate("document.getElementById('lang-switch').value") == "zh"
        p.select("#lang-switch", "en")
        p.wait_for(js=f"{labels} === {json.dumps(en)}", timeout=5)
        assert p.evaluate("document.documentElement.lang").startswith("en")
        _clean(p)
    finally:
        p.close()
    # Chinese by default for a Chinese browser (nothing chosen yet: a fresh profile)
    b = cdp.Browser.start(log_path=env.path("chromium-zh.log"), lang="zh-CN")
    try:
        q = b.new_page()
        q.navigate(w["coll"].base_url + "/login")
        q.wait_for("#login-submit", timeout=10)
        q.wait_for(js="document.documentElement.lang.startsWith('zh')", timeout=5)
        assert q.evaluate("document.getElementById('lang-switch').value") == "zh"
        assert CJK.search(q.evaluate("document.body.innerText")), "no Chinese on /login"
        _shot(q, env, "12-login-zh")
        _clean(q)
    finally:
        b.stop()


def test_live_refresh_without_reload(env):
    w = _w()
    p = _page(w)
    try:
        _open(p, w["coll"], "/?refresh=1", "#overview-table tr[data-province]", "overview")
        _wait_refreshed(p)
        ts1 = int(p.attr("#last-updated", "data-ts"))
        p.evaluate("window.__cinemonMarker = 42")
        loads, navs = p.loads, p.frame_navigations
        wait_until(lambda: int(p.attr("#last-updated", "data-ts")) > ts1, 10, 0.2,
                   "#last-updated[data-ts] to advance")
        ts2 = int(p.attr("#last-updated", "data-ts"))
        wait_until(lambda: int(p.attr("#last-updated", "data-ts")) > ts2, 10, 0.2,
                   "a second refresh")
        assert p.evaluate("window.__cinemonMarker") == 42, "the page was reloaded"
        assert (p.loads, p.frame_navigations) == (loads, navs), "the page navigated"
        assert abs(ts2 - time.time() * 1000) < 60000, ts2
        _clean(p)
    finally:
        p.close()


def test_province_limited_viewer_sees_only_its_province(env):
    w = _w()
    coll = w["coll"]
    aid = str(w["alert"]["id"])
    b = _browser(env, "chromium-limited")
    p = b.new_page()
    cookie = _login(p, coll, LIM, LIM_PW)
    p.clear_errors()

    # pages
    _open(p, coll, "/", "#overview-table tr[data-province]", "overview (limited)")
    _wait_refreshed(p)
    assert p.attrs("#overview-table tr[data-province]", "data-province") == ["Shanghai"]
    assert p.attrs("#compliance-chart rect.bar[data-province]", "data-province") == ["Shanghai"]
    assert "Beijing" not in p.evaluate("document.body.innerText")
    _shot(p, env, "13-limited-overview")
    _clean(p)
    _open(p, coll, f"/cinema?site={SH1}", ".hall-tile[data-screen='hall2']", "cinema (limited)")
    _clean(p)
    for path, name in ((f"/cinema?site={BJ2}", "14-limited-cinema-other-province"),
                       (f"/hall?site={BJ2}&screen=hall1", "15-limited-hall-other-province"),
                       (f"/cinema?site={BJ1}", None)):
        p.navigate(coll.base_url + path)
        p.wait_for(js=f"new RegExp({json.dumps(NOT_FOUND.pattern)}, 'i')"
                      ".test(document.body.innerText)", timeout=10)
        assert p.count(".hall-tile") == 0 and p.count(".device[data-device]") == 0, path
        assert "Haidian" not in p.evaluate("document.body.innerText"), path
        if name:
            _shot(p, env, name)
        _clean(p, ignore_status=(404,))
        p.clear_errors()
    _open(p, coll, "/alerts", "#alerts-table", "alerts (limited)")
    _wait_refreshed(p)
    assert not p.exists(f"tr[data-alert-id='{aid}']"), "a Beijing alert on the limited /alerts"
    _shot(p, env, "16-limited-alerts")
    _clean(p)

    # the API with the viewer's own session cookie
    me = _data(coll, "/api/v1/me", cookie=cookie)
    assert me["user"] == LIM and me["role"] == "viewer", me
    assert me["scope"] == {"kind": "province", "value": "Shanghai"}, me
    rows = _data(coll, "/api/v1/overview", cookie=cookie, level="province")
    assert [r["province"] for r in rows] == ["Shanghai"], rows
    rows = _data(coll, "/api/v1/overview", cookie=cookie, level="cinema")
    assert [r["site"] for r in rows] == [SH1], rows
    s, j = _api(coll, "/api/v1/overview", cookie=cookie, level="cinema", province="Beijing")
    assert s == 404 or (s == 200 and j["data"] == []), (s, j)
    for path, q in (("/api/v1/cinema", {"site": BJ2}), ("/api/v1/cinema", {"site": BJ1}),
                    ("/api/v1/hall", {"site": BJ2, "screen": "hall1"}),
                    (f"/api/v1/alerts/{aid}", {})):
        s, j = _api(coll, path, cookie=cookie, **q)
        assert s == 404, (path, q, s, j)
    for path, q in (("/api/v1/alerts", {"site": BJ2}),
                    ("/api/v1/series", {"site": BJ2, "device": "hall1/meter", "metric": LUM}),
                    ("/api/v1/screens", {"site": BJ1}), ("/api/v1/events", {"site": BJ1})):
        s, j = _api(coll, path, cookie=cookie, **q)
        assert s == 404 or (s == 200 and j["data"] == []), (path, q, s, j)
    al = _data(coll, "/api/v1/alerts", cookie=cookie)
    assert all(a["site"] == SH1 for a in al), al
    assert _api(coll, f"/api/v1/cinema", cookie=cookie, site=SH1)[0] == 200
    # a viewer cannot write, least of all outside its scope
    s, j = _api(coll, f"/api/v1/alerts/{aid}/ack", cookie=cookie, method="POST",
                body={"comment": "not mine"})
    assert s in (403, 404), (s, j)
    # without the cookie: 401
    assert _api(coll, "/api/v1/overview", level="province")[0] == 401


def test_logout(env):
    w = _w()
    p = _page(w)
    try:
        old = w["cookie"]
        _open(p, w["coll"], "/", "#logout", "overview")
        _wait_refreshed(p)
        p.click("#logout")
        p.wait_for(js="location.pathname === '/login'", timeout=10)
        p.wait_for("#login-user", timeout=10)
        _shot(p, env, "17-logged-out")
        assert p.cookie(COOKIE) is None, p.cookies()
        assert _api(w["coll"], "/api/v1/me", cookie=old)[0] == 401
        _clean(p, ignore_status=(401,))
    finally:
        p.close()
        w.pop("cookie", None)

#!/usr/bin/env python3
"""dashboard_bench.py — the dashboard benchmark (issue 6): "with 10,000 screens and a year of
hourly roll-ups generated into the database: API latency (median and p99) for the overview,
a cinema page and a one-year hall chart; page load time in Chromium."

1. Generate (bench/dashgen.c, built by make as build/bench/dashgen): a fresh
   database at the current schema is made by `cinemon-collector -c INI token add --operator
   bench` (which also prints the national read token used below), then dashgen fills it:
   ~2,000 cinemas x 5 screens over 31 provinces, their cities and 8 chains; 4 devices and 16
   series per screen with latest values; active alerts on ~3 % of the screens; today's
   compliance figures; and `--days` of hourly roll-ups. A year of every series of every
   screen would be 1.4 billion rows (~70 GB): by default every screen gets its luminance
   year and every `--full-every`-th cinema all 16 series (its halls are the ones the hall
   page set uses); `--year-series lum,spl` gives every screen luminance and the six SPL
   channels (613 M rows, ~30 GB, ~30 min). Time and file size are reported.
2. Start cinemon-collector on it (rules off: the compliance engine would recompute today's
   figures from samples, and the generated database holds roll-ups, not samples; with
   `[access] anonymous_read = true` when the collector knows the key, for the browser).
3. API latency from a client of --concurrency threads with keep-alive connections, each
   request timed to its last byte: the overview (province level), a cinema page, a hall's
   one-year luminance chart (step 1h), and the hall page's full set of requests for its 1 y
   range fetched 6 at a time as a browser does (hall, every chart's series, events, alerts).
4. Page load in headless Chromium (tests/e2e/cdp.py): the overview until its province rows
   are shown, a hall page until its charts are drawn, and its switch to the 1 y range.
Endpoints or pages that do not exist yet are reported as such, not as failures.

usage: dashboard_bench.py [--build build] [--db FILE] [--keep] [--screens N] [--days D]
                          [--year-series lum|lum,spl|all] [--full-every K] [--threads T]
                          [--concurrency C] [--scale X] [--no-browser] [--quick]
--db FILE: use (or create, then keep) the generated database FILE; a database that already
holds sites is reused as it is (generation takes minutes).
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402  (free_port)

YEAR_MS = 365 * 86400 * 1000
BROWSER_PARALLEL = 6  # connections per host in Chromium
CHART_METRICS = ("screen_luminance_nits", "white_x", "white_y", "spl_dbc", "light_source_hours",
                 "temperature_celsius")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def pct(xs, p):
    """The p-th percentile (nearest rank) of xs."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


# ---------------------------------------------------------------- generation

def dashgen_binary(build):
    """build/bench/dashgen, made by `make` (bench/*.c)."""
    exe = os.path.join(build, "bench", "dashgen")
    if not os.path.isfile(exe):
        raise SystemExit(f"{exe} is missing: run make first")
    return exe


def write_ini(path, db, port, threads, anonymous):
    text = (f"[collector]\nlisten = 127.0.0.1:{port}\nthreads = {threads}\n"
            f"max_connections = 4096\nlog_level = warn\n\n[store]\npath = {db}\n\n"
            f"[rules]\nenabled = false\n")
    if anonymous:
        text += "\n[access]\nanonymous_read = true\n"
    with open(path, "w") as f:
        f.write(text)


def collector_cmd(exe, ini, *args, stdin=None, timeout=120):
    return subprocess.run([exe, "-c", ini, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def has_sites(db):
    import sqlite3
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return c.execute("SELECT count(*) FROM sites").fetchone()[0] > 0
        finally:
            c.close()
    except sqlite3.Error:
        return False


def generate(args, exe, workdir, db):
    """Create db (schema + operator token) and fill it. Returns (token, generation figures)."""
    ini = os.path.join(workdir, "gen.ini")
    write_ini(ini, db, 0, 1, False)
    r = collector_cmd(exe, ini, "token", "add", "--operator", "bench")
    if r.returncode != 0:
        raise SystemExit(f"token add: {r.stderr.strip()}")
    token = r.stdout.strip()
    cmd = [dashgen_binary(args.build), "--db", db, "--screens", str(args.screens), "--days",
           str(args.days), "--year-series", args.year_series, "--full-every", str(args.full_every)]
    log("generating: " + " ".join(cmd))
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"dashgen failed: {r.stderr.strip()}")
    gen = json.loads(r.stdout)
    gen["wall_s"] = time.monotonic() - t0
    return token, gen


def db_facts(db):
    """Sites, halls and figures of an existing generated database."""
    import sqlite3
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        q = lambda sql: c.execute(sql).fetchone()[0]  # noqa: E731
        facts = {"sites": q("SELECT count(*) FROM sites"),
                 "screens": q("SELECT count(*) FROM screens"),
                 "series": q("SELECT count(*) FROM series"),
                 "rollup_1h": q("SELECT count(*) FROM rollup_1h"),
                 "bytes": os.path.getsize(db)}
        sites = [r[0] for r in c.execute("SELECT code FROM sites ORDER BY code")]
        # halls with every series a year: the series of their sensor's white_x have roll-ups
        full = [(r[0], r[1]) for r in c.execute(
            "SELECT d.site, d.screen FROM devices d JOIN series s ON s.device_ref = d.id"
            " WHERE s.metric = 'white_x' AND EXISTS (SELECT 1 FROM rollup_1h r"
            " WHERE r.series_id = s.id) LIMIT 500")]
        halls = [(r[0], r[1]) for r in c.execute("SELECT site, screen FROM screens")]
        now = q("SELECT max(bucket_ms) FROM rollup_1h") or int(time.time() * 1000)
        facts["hours"] = q("SELECT count(*) FROM rollup_1h WHERE series_id = 1")
    finally:
        c.close()
    return facts, sites, halls, full, now


# ---------------------------------------------------------------- the collector

class Collector:
    def __init__(self, exe, ini, port, logpath):
        self.port = port
        self.log = open(logpath, "ab")
        self.proc = subprocess.Popen([exe, "-c", ini], stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"collector exited ({self.proc.returncode}); see {logpath}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    c.close()
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise SystemExit("collector did not answer /healthz within 120 s")

    def rss_mb(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------- the HTTP client

class Client:
    """One keep-alive connection per thread; get() returns (status, body bytes, seconds)."""

    def __init__(self, port, token):
        self.port, self.token = port, token
        self.local = threading.local()

    def get(self, path):
        for attempt in (0, 1):
            c = getattr(self.local, "conn", None)
            if c is None:
                c = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                                 timeout=120)
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            t0 = time.perf_counter()
            try:
                c.request("GET", path, headers=headers)
                r = c.getresponse()
                body = r.read()
                dt = time.perf_counter() - t0
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    self.local.conn = None
                return r.status, body, dt
            except (http.client.HTTPException, OSError):
                c.close()
                self.local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, path):
        s, b, _ = self.get(path)
        try:
            return s, json.loads(b)
        except ValueError:
            return s, None


def q(path, **params):
    return path + "?" + urllib.parse.urlencode(params)


def run_load(client, paths, concurrency):
    """GET every path (in this order, spread over the threads); (latencies s, statuses)."""
    lat, statuses = [], {}
    lock = threading.Lock()
    it = iter(paths)

    def worker():
        while True:
            with lock:
                p = next(it, None)
            if p is None:
                return
            s, body, dt = client.get(p)
            with lock:
                lat.append(dt)
                statuses[s] = statuses.get(s, 0) + 1

    ts = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat, statuses, time.perf_counter() - t0


def hall_set_paths(client, site, screen, now):
    """The requests of a hall page at its 1 y range, after its first /api/v1/hall answer:
    every chart's series (step 1h over a year), the events and the alerts of the hall."""
    s, j = client.json(q("/api/v1/hall", site=site, screen=screen))
    frm, to = now - YEAR_MS, now
    paths = []
    charts, where = [], {}
    if s == 200 and j and isinstance(j.get("data"), dict):
        d = j["data"]
        charts = [c.get("metric") for c in d.get("charts") or [] if c.get("metric")]
        for dev in d.get("devices") or []:
            for m in dev.get("metrics") or []:
                where.setdefault(m.get("metric"), dev.get("device"))
    if not charts:  # no hall endpoint yet: the charts the contract names
        charts = list(CHART_METRICS)
    for m in charts:
        dev = where.get(m) or (f"{screen}/projector" if m in ("light_source_hours",
                                                               "temperature_celsius")
                               else f"{screen}/sensor")
        paths.append(q("/api/v1/series", site=site, device=dev, metric=m, step="1h", **{
            "from": frm, "to": to}))
    devices = sorted(set(where.values())) or [f"{screen}/sensor", f"{screen}/projector"]
    for dev in devices:
        paths.append(q("/api/v1/events", site=site, device=dev, **{"from": frm, "to": to}))
    paths.append(q("/api/v1/alerts", site=site, screen=screen))
    return s, paths


def measure_hall_sets(client, halls, now, n, concurrency):
    """Wall time of n hall pages' full request sets, each fetched BROWSER_PARALLEL at a time
    (the first /api/v1/hall request, then the rest in parallel); `concurrency` pages at once."""
    times, statuses, lock = [], {}, threading.Lock()
    picks = [random.choice(halls) for _ in range(n)]
    it = iter(picks)

    def one(ex, site, screen):
        t0 = time.perf_counter()
        s0, paths = hall_set_paths(client, site, screen, now)
        res = list(ex.map(client.get, paths))
        dt = time.perf_counter() - t0
        with lock:
            times.append(dt)
            for s in [s0] + [r[0] for r in res]:
                statuses[s] = statuses.get(s, 0) + 1
        return len(paths) + 1

    def worker():
        # a page's parallel requests reuse their keep-alive connections, as a browser's do
        with concurrent.futures.ThreadPoolExecutor(BROWSER_PARALLEL) as ex:
            while True:
                with lock:
                    h = next(it, None)
                if h is None:
                    return
                one(ex, *h)

    ts = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    nreq = len(hall_set_paths(client, *picks[0], now)[1]) + 1 if picks else 0
    return times, statuses, nreq


# ---------------------------------------------------------------- the browser

def browser_figures(base, halls, user, password, runs):
    """Page loads in Chromium: {name: (times ms, note)}."""
    try:
        import cdp
    except ImportError as e:
        return {"browser": ([], f"tests/e2e/cdp.py not importable: {e}")}
    out = {}
    try:
        b = cdp.Browser.start()
    except Exception as e:  # BrowserMissing, CDPError
        return {"browser": ([], f"no browser: {e}")}
    try:
        p = b.new_page()
        if user:
            p.navigate(base + "/login")
            if p.exists("#login-user"):
                p.type("#login-user", user)
                p.type("#login-password", password)
                with p.expect_navigation():
                    p.click("#login-submit")

        def load(url, ready_js, what):
            times, note = [], ""
            u = urllib.parse.urlsplit(url)
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            c.request("GET", u.path + ("?" + u.query if u.query else ""))
            status = c.getresponse().status
            c.close()
            if status != 200:
                return [], f"{what}: GET {u.path} answers {status}"
            for i in range(runs + 1):
                t0 = time.perf_counter()
                try:
                    p.navigate(url)
                    p.wait_for(js=ready_js, timeout=30, interval=0.01)
                except Exception as e:  # page missing or never ready
                    note = f"{what}: {str(e)[:120]}"
                    break
                if i:  # the first load warms the cache (static assets)
                    times.append((time.perf_counter() - t0) * 1000)
            return times, note

        out["overview page (until province rows)"] = load(
            base + "/", "document.querySelectorAll('#overview-table tr[data-province]').length"
            " > 0", "overview")
        site, screen = halls[0]
        hall_url = base + "/hall?" + urllib.parse.urlencode({"site": site, "screen": screen})
        charts_ready = ("(() => { const c = document.querySelectorAll('svg.chart[data-metric]');"
                        " return c.length > 0 && [...c].every(s => { const l ="
                        " s.querySelector('path.line'); return l && (l.getAttribute('d') ||"
                        " '').length > 0; }); })()")
        out["hall page (until charts drawn)"] = load(hall_url, charts_ready, "hall")
        times, note = [], ""
        for i in range(runs if out["hall page (until charts drawn)"][0] else 0):
            try:
                p.navigate(hall_url)
                p.wait_for(js=charts_ready, timeout=60, interval=0.01)
                before = p.attr("#last-updated", "data-ts")
                t0 = time.perf_counter()
                p.click("button[data-range='1y']")
                p.wait_for(js=f"(() => {{ const e = document.querySelector('#last-updated');"
                           f" return !!e && e.getAttribute('data-ts') !== {json.dumps(before)}"
                           f" && {charts_ready}; }})()", timeout=60, interval=0.01)
                times.append((time.perf_counter() - t0) * 1000)
            except Exception as e:
                note = f"1y switch: {str(e)[:120]}"
                break
        out["hall page: switch to 1 y"] = (times, note)
        errs = p.errors()
        if errs:
            out["browser console errors"] = ([], "; ".join(errs[:3])[:300])
    finally:
        b.stop()
    return out


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--db", help="generated database to use or create (kept)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--screens", type=int, default=10000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--year-series", default="lum", choices=("lum", "lum,spl", "all"))
    ap.add_argument("--full-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=4, help="collector HTTP threads")
    ap.add_argument("--concurrency", type=int, default=4, help="client threads")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--browser-runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="1,000 screens, 30 days, fewer requests")
    args = ap.parse_args()
    if args.quick:
        args.screens, args.days, args.scale, args.full_every = 1000, 30, 0.2, 10
    args.build = os.path.abspath(args.build)
    exe = os.path.join(args.build, "cinemon-collector")
    if not os.access(exe, os.X_OK):
        raise SystemExit(f"{exe} is not built (run make)")
    random.seed(1)

    workdir = tempfile.mkdtemp(prefix="cinemon-dashbench-")
    db = os.path.abspath(args.db) if args.db else os.path.join(workdir, "dash.db")
    coll = None
    try:
        gen = None
        if has_sites(db):
            log(f"reusing {db}")
            ini = os.path.join(workdir, "tok.ini")
            write_ini(ini, db, 0, 1, False)
            r = collector_cmd(exe, ini, "token", "add", "--operator", "bench")
            if r.returncode != 0:
                raise SystemExit(f"token add: {r.stderr.strip()}")
            token = r.stdout.strip()
        else:
            token, gen = generate(args, exe, workdir, db)
        facts, sites, halls, full, now = db_facts(db)
        now = max(now, int(time.time() * 1000))

        # [access] anonymous_read exists? (for the browser; the API is read with the token)
        port = harness.free_port()
        ini = os.path.join(workdir, "collector.ini")
        write_ini(ini, db, port, args.threads, True)
        anonymous = collector_cmd(exe, ini, "--check-config").returncode == 0
        if not anonymous:
            write_ini(ini, db, port, args.threads, False)
        viewer = None
        r = collector_cmd(exe, ini, "viewer", "add", "benchviewer", stdin="bench-password-1\n")
        if r.returncode == 0:
            viewer = ("benchviewer", "bench-password-1")
        t0 = time.monotonic()
        coll = Collector(exe, ini, port, os.path.join(workdir, "collector.log"))
        start_s = time.monotonic() - t0
        client = Client(port, token)
        rows = []  # (what, n, median ms, p99 ms, req/s, note)

        def api(what, paths, note=""):
            # warm-up: a few requests not counted
            for p_ in paths[:min(5, len(paths))]:
                client.get(p_)
            lat, st, wall = run_load(client, paths, args.concurrency)
            ok = st.get(200, 0)
            if ok == 0:
                code = ",".join(f"{k}x{v}" for k, v in sorted(st.items()))
                rows.append((what, len(paths), None, None, None, f"not available ({code})"))
                return
            bad = {k: v for k, v in st.items() if k != 200}
            ms = [x * 1000 for x in lat]
            rows.append((what, len(paths), statistics.median(ms), pct(ms, 99),
                         len(paths) / wall,
                         (note + (f" non-200: {bad}" if bad else "")).strip()))

        n = lambda k: max(10, int(k * args.scale))  # noqa: E731
        api("GET /api/v1/overview?level=province", [q("/api/v1/overview", level="province")]
            * n(200))
        api("GET /api/v1/overview?level=city (all)", [q("/api/v1/overview", level="city")]
            * n(100))
        api("GET /api/v1/cinema?site=S (random S)",
            [q("/api/v1/cinema", site=random.choice(sites)) for _ in range(n(1000))])
        api("GET /api/v1/hall?site=S&screen=H", [q("/api/v1/hall", site=s, screen=h) for s, h in
                                                  (random.choice(halls) for _ in range(n(500)))])
        year = [q("/api/v1/series", site=s, device=f"{h}/sensor", metric="screen_luminance_nits",
                  step="1h", **{"from": now - YEAR_MS, "to": now})
                for s, h in (random.choice(halls) for _ in range(n(500)))]
        api("GET /api/v1/series 1 y of luminance, step 1h", year, f"{facts['hours']:,} points")
        api("GET /api/v1/alerts?state=active", [q("/api/v1/alerts", state="active")] * n(100))

        hs = full or halls
        times, st, nreq = measure_hall_sets(client, hs, now, n(100), args.concurrency)
        ms = [x * 1000 for x in times]
        bad = {k: v for k, v in st.items() if k != 200}
        rows.append((f"hall page set, 1 y ({nreq} requests, {BROWSER_PARALLEL} at a time)",
                     len(times), statistics.median(ms), pct(ms, 99), None,
                     f"statuses {dict(sorted(st.items()))}" if bad else ""))
        rss = coll.rss_mb()

        browser = {}
        if not args.no_browser:
            browser = browser_figures(f"http://127.0.0.1:{port}", hs,
                                      *(viewer or (None, None)), args.browser_runs)

        # ------------------------------------------------------------ report
        print()
        print("Dashboard benchmark")
        print(f"  data: {facts['sites']} cinemas, {facts['screens']} screens, {facts['series']} "
              f"series, {facts['rollup_1h']:,} hourly roll-up rows; database "
              f"{facts['bytes'] / 2**30:.2f} GiB")
        if gen:
            print(f"  generated in {gen['wall_s']:.0f} s (inventory {gen['inventory_s']:.1f} s, "
                  f"roll-ups {gen['rollup_s']:.0f} s = {gen['rollup_1h'] / max(gen['rollup_s'], 1e-9):,.0f} rows/s); "
                  f"year of roll-ups for: {gen['year_series']} of every screen, all series of "
                  f"every {gen['full_every']}th cinema")
        print(f"  collector: {args.threads} HTTP threads, started in {start_s:.1f} s, RSS "
              f"{rss:.0f} MB after the API runs; client: {args.concurrency} threads on the same "
              f"host ({os.cpu_count()} CPUs)")
        print()
        w = max(len(r[0]) for r in rows) + 2
        print(f"{'API request':<{w}}{'n':>6}{'median ms':>11}{'p99 ms':>9}{'req/s':>8}  note")
        for what, cnt, med, p99, rps, note in rows:
            if med is None:
                print(f"{what:<{w}}{cnt:>6}{'-':>11}{'-':>9}{'-':>8}  {note}")
            else:
                print(f"{what:<{w}}{cnt:>6}{med:>11.1f}{p99:>9.1f}"
                      f"{(f'{rps:.0f}' if rps else '-'):>8}  {note}")
        if browser:
            print()
            wb = max(len(k) for k in browser) + 2
            print(f"{'Chromium (headless)':<{wb}}{'runs':>6}{'median ms':>11}{'max ms':>9}  note")
            for what, (times, note) in browser.items():
                if times:
                    print(f"{what:<{wb}}{len(times):>6}{statistics.median(times):>11.0f}"
                          f"{max(times):>9.0f}  {note}")
                else:
                    print(f"{what:<{wb}}{0:>6}{'-':>11}{'-':>9}  {note or 'not available'}")
        print()
    finally:
        if coll:
            coll.stop()
        if args.keep:
            log(f"kept {workdir}")
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

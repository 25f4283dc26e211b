#!/usr/bin/env python3
"""dashboard_bench.py — the dashboard benchmark (issue 6, and issue 7 item 5): "with 10,000
screens and a year of hourly roll-ups generated into the database: API latency (median and p99)
for the overview, a cinema page and a one-year hall chart; page load time in Chromium", and
"the dashboard queries on PostgreSQL with 90,000 screens". --backend sqlite | postgresql | both
(default both: SQLite with 10,000 screens, then PostgreSQL with 90,000).

1. Generate the fleet (bench/dashgen_fleet.h, the same model for both): ~screens/5 cinemas of
   5 screens over 31 provinces, their cities and 8 chains; 4 devices and 16 series per screen
   with latest values; active alerts on ~3 % of the screens; today's compliance figures; and
   hourly roll-ups. The store is made at the current schema by `cinemon-collector -c INI token
   add --operator bench` (which also prints the national read token used below), then filled:
   - SQLite (bench/dashgen.c, writes the file directly): every screen gets `--days` (365) of
     roll-ups for `--year-series` (lum: its luminance; lum,spl: + the six SPL channels; all)
     and every `--full-every`-th (100th) cinema all 16 series. A year of every series of every
     screen would be 1.4 billion rows (~70 GB).
   - PostgreSQL (bench/dashgen_pg.c, by COPY; roll-up rows written hour after hour, as a
     collector leaves them, unless --pg-layout series): a server of its own
     (tests/pgserver.py; fsync off: this benchmark only reads), then every screen gets the
     last `--pg-lum-days` (30) days of its luminance, every `--pg-year-every`-th (20th) cinema
     `--days` of luminance and every `--full-every`-th (500th) cinema `--days` of all 16
     series: 124.6 M rows, 13 GiB, loaded in ~6 minutes with 90,000 screens (a year of
     luminance alone for 90,000 screens would be 788 M rows, ~85 GB in PostgreSQL).
   Time and size are reported.
2. Start cinemon-collector on it (rules off: the compliance engine would recompute today's
   figures from samples, and the generated store holds roll-ups, not samples; retention off:
   nothing to remove, and its pass at start would run beside the first requests; with
   `[access] anonymous_read = true` when the collector knows the key, for the browser).
3. API latency from a client of --concurrency threads with keep-alive connections, each
   request timed to its last byte: the overview (province and city level), a cinema page, a
   hall, a hall's one-year luminance chart (step 1h; halls that have a year of it), the active
   alerts, and the hall page's full set of requests for its 1 y range fetched 6 at a time as a
   browser does (hall, every chart's series, events, alerts; halls with all series a year).
4. Page load in headless Chromium (tests/e2e/cdp.py): the overview until its province rows
   are shown, a hall page until its charts are drawn, and its switch to the 1 y range.
Endpoints or pages that do not exist yet are reported as such, not as failures.

usage: dashboard_bench.py [--build build] [--backend sqlite|postgresql|both] [--json FILE]
                          [--db FILE] [--pg-dir DIR] [--keep] [--screens N] [--days D]
                          [--year-series lum|lum,spl|all] [--full-every K]
                          [--pg-lum-days D] [--pg-year-every K] [--pg-layout time|series]
                          [--pg-shared-buffers SIZE] [--threads T] [--concurrency C]
                          [--scale X] [--no-browser] [--quick]
--db FILE: use (or create, then keep) the generated SQLite database FILE; a database that
already holds sites is reused as it is (generation takes minutes). --pg-dir DIR: the same for
the PostgreSQL server's folder (DIR/pg; started again when stopped). Without them the stores
live in a temporary folder, removed at the end unless --keep. --screens, --full-every: both
backends (default 10,000 and 100 for SQLite, 90,000 and 500 for PostgreSQL). --json FILE: the
figures as cinemon-bench/1 rows (bench/report.py).
"""
import argparse
import concurrent.futures
import datetime
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
sys.path.insert(0, os.path.join(ROOT, "tests"))
import harness  # noqa: E402  (free_port)
import pgserver  # noqa: E402

YEAR_MS = 365 * 86400 * 1000
BROWSER_PARALLEL = 6  # connections per host in Chromium
CHART_METRICS = ("screen_luminance_nits", "white_x", "white_y", "spl_dbc", "light_source_hours",
                 "temperature_celsius")
DEFAULTS = {"sqlite": {"screens": 10000, "full_every": 100},
            "postgresql": {"screens": 90000, "full_every": 500}}
SYSTEM = {"sqlite": "cinemon SQLite", "postgresql": "cinemon PG"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def pct(xs, p):
    """The p-th percentile (nearest rank) of xs."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def nth(k):
    """1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def load1():
    return round(os.getloadavg()[0], 2)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- the stores

def bench_binary(build, name):
    """build/bench/NAME, made by `make` (bench/*.c)."""
    exe = os.path.join(build, "bench", name)
    if not os.path.isfile(exe):
        raise SystemExit(f"{exe} is missing: run make first")
    return exe


def write_ini(path, store, port, threads, anonymous):
    """collector.ini with `store` as the body of its [store] section. Retention keeps
    everything: the generated store has nothing to remove, and its pass at start (an index probe
    per series and roll-up table: ~10 s with 1.44 M series on PostgreSQL) would run beside the
    first measurements."""
    text = (f"[collector]\nlisten = 127.0.0.1:{port}\nthreads = {threads}\n"
            f"max_connections = 4096\nlog_level = warn\n\n[store]\n{store}\n"
            f"[rules]\nenabled = false\n\n[retention]\nraw = forever\nrollup_1m = forever\n"
            f"rollup_1h = forever\naudit = forever\n")
    if anonymous:
        text += "\n[access]\nanonymous_read = true\n"
    with open(path, "w") as f:
        f.write(text)


def collector_cmd(exe, ini, *args, stdin=None, timeout=120):
    return subprocess.run([exe, "-c", ini, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def run_generator(cmd, what):
    """Run a generator; its JSON figures plus wall_s."""
    log(f"generating ({what}): " + " ".join(c if not c.startswith("host=") else "'<conninfo>'"
                                             for c in cmd))
    t0 = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{os.path.basename(cmd[0])} failed (status {r.returncode})")
    gen = json.loads(r.stdout)
    gen["wall_s"] = time.monotonic() - t0
    return gen


# The facts the measurements need, as SQL that SQLite and PostgreSQL both run. Series 1 (the
# luminance of the first cinema's first hall) always has the longest roll-up history; the halls
# whose luminance starts at the same hour are the ones with a year of it.
FACTS_SQL = {
    "sites": "SELECT code FROM sites ORDER BY code",
    "halls": "SELECT site, screen FROM screens ORDER BY site, screen",
    "counts": "SELECT (SELECT count(*) FROM sites), (SELECT count(*) FROM screens),"
              " (SELECT count(*) FROM series)",
    "series1": "SELECT min(bucket_ms), max(bucket_ms), count(*) FROM rollup_1h WHERE series_id = 1",
    "year_halls": "SELECT d.site, d.screen FROM devices d JOIN series s ON s.device_ref = d.id"
                  " WHERE s.metric = 'screen_luminance_nits' AND EXISTS (SELECT 1 FROM rollup_1h r"
                  " WHERE r.series_id = s.id AND r.bucket_ms = (SELECT min(bucket_ms) FROM"
                  " rollup_1h WHERE series_id = 1)) ORDER BY d.site, d.screen",
    # halls with every series a year: the series of their sensor's white_x have roll-ups
    "full_halls": "SELECT d.site, d.screen FROM devices d JOIN series s ON s.device_ref = d.id"
                  " WHERE s.metric = 'white_x' AND EXISTS (SELECT 1 FROM rollup_1h r"
                  " WHERE r.series_id = s.id) ORDER BY d.site, d.screen LIMIT 500",
}


class Store:
    """A generated store of one backend: prepare() (generate or reuse), facts(), the [store]
    section for the collector, close()."""
    backend = ""

    def __init__(self, args, exe, workdir):
        self.args, self.exe, self.workdir = args, exe, workdir
        self.screens = args.screens or DEFAULTS[self.backend]["screens"]
        self.full_every = (args.full_every if args.full_every is not None
                           else DEFAULTS[self.backend]["full_every"])
        self.gen = None
        self.token = None

    @property
    def system(self):
        return f"{SYSTEM[self.backend]}, {self.screens:,} screens"

    def add_token(self):
        ini = os.path.join(self.workdir, "tok.ini")
        write_ini(ini, self.store_section(), 0, 1, False)
        r = collector_cmd(self.exe, ini, "token", "add", "--operator", "bench")
        if r.returncode != 0:
            raise SystemExit(f"token add: {r.stderr.strip()}")
        self.token = r.stdout.strip()

    def facts(self):
        """(facts, sites, halls, year halls, full halls, now)."""
        sites = [r[0] for r in self.query(FACTS_SQL["sites"])]
        halls = [(r[0], r[1]) for r in self.query(FACTS_SQL["halls"])]
        n_sites, n_screens, n_series = (int(x) for x in self.query(FACTS_SQL["counts"])[0])
        first, last, hours = self.query(FACTS_SQL["series1"])[0]
        year = [(r[0], r[1]) for r in self.query(FACTS_SQL["year_halls"])] if hours else []
        full = [(r[0], r[1]) for r in self.query(FACTS_SQL["full_halls"])]
        facts = {"sites": n_sites, "screens": n_screens, "series": n_series,
                 "rollup_1h": self.rollup_rows(), "bytes": self.size(),
                 "hours": int(hours or 0), "year_halls": len(year)}
        now = int(last) + 3600 * 1000 if last is not None else int(time.time() * 1000)
        return facts, sites, halls, year, full, now

    def extra_mem(self):
        """(MB, note) of the database server's processes, or None."""
        return None


class SqliteStore(Store):
    backend = "sqlite"

    def __init__(self, args, exe, workdir):
        super().__init__(args, exe, workdir)
        self.db = os.path.abspath(args.db) if args.db else os.path.join(workdir, "dash.db")

    def store_section(self):
        return f"path = {self.db}\n"

    def query(self, sql):
        import sqlite3
        c = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return c.execute(sql).fetchall()
        finally:
            c.close()

    def has_sites(self):
        import sqlite3
        try:
            return self.query("SELECT count(*) FROM sites")[0][0] > 0
        except sqlite3.Error:
            return False

    def prepare(self):
        if self.has_sites():
            log(f"reusing {self.db}")
            self.add_token()
            return
        self.add_token()  # creates the database at the current schema
        a = self.args
        self.gen = run_generator(
            [bench_binary(a.build, "dashgen"), "--db", self.db, "--screens", str(self.screens),
             "--days", str(a.days), "--year-series", a.year_series, "--full-every",
             str(self.full_every)], "SQLite")

    def rollup_rows(self):
        return self.gen["rollup_1h"] if self.gen else self.query(
            "SELECT count(*) FROM rollup_1h")[0][0]

    def size(self):
        return os.path.getsize(self.db)

    def history(self):
        g = self.gen
        if not g:
            return "reused database"
        what = {"lum": "the luminance", "lum,spl": "the luminance and SPL"}.get(
            g["year_series"], "all series")
        return (f"{g['rollup_days']} days of roll-ups for {what} of every screen, "
                f"all 16 series of every {nth(g['full_every'])} cinema")

    def close(self):
        pass


class PgStore(Store):
    backend = "postgresql"

    def __init__(self, args, exe, workdir):
        super().__init__(args, exe, workdir)
        self.base = os.path.abspath(args.pg_dir) if args.pg_dir else os.path.join(workdir, "pgb")
        self.srv = None
        self.started = False
        self.settings = {"shared_buffers": args.pg_shared_buffers, "wal_level": "minimal",
                         "max_wal_senders": "0", "max_wal_size": "4GB",
                         "maintenance_work_mem": "1GB"}

    def store_section(self):
        return f"backend = postgresql\nconninfo = {self.srv.conninfo}\n"

    def psql(self):
        return os.path.join(str(self.srv.bindir), "psql")

    def query(self, sql):
        """Rows of sql as tuples of strings (None for NULL) through psql."""
        r = subprocess.run([self.psql(), "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-F", "\t",
                            "-P", "null=\\N", "-d", self.srv.conninfo, "-c", sql],
                           capture_output=True, text=True, timeout=1800,
                           env={k: v for k, v in os.environ.items() if not k.startswith("PG")})
        if r.returncode != 0:
            raise SystemExit(f"psql: {r.stderr.strip()[:500]}")
        return [tuple(None if f == "\\N" else f for f in line.split("\t"))
                for line in r.stdout.splitlines()]

    def start_server(self):
        """The server of self.base: running already, started again, or made (initdb)."""
        if pgserver.bindir() is None:
            raise SystemExit("PostgreSQL server binaries not installed (apt-get install "
                             "postgresql)")
        srv = pgserver.PgServer.load(self.base)
        if srv and srv.alive():
            log(f"  postgres: reusing the running server (PID {srv.pid}, port {srv.port})")
            self.srv = srv
            return
        data = os.path.join(self.base, "pg", "data")
        if os.path.isfile(os.path.join(data, "PG_VERSION")):
            self.srv = start_existing(self.base, self.settings)
        else:
            self.srv = pgserver.start(self.base, fsync=False, settings=self.settings)
        self.started = True
        log(f"  postgres: PID {self.srv.pid}, port {self.srv.port}, data {self.base}/pg, "
            f"shared_buffers {self.settings['shared_buffers']}, fsync off")

    def has_sites(self):
        try:
            return int(self.query("SELECT count(*) FROM sites")[0][0]) > 0
        except SystemExit:  # no schema yet
            return False

    def prepare(self):
        self.start_server()
        genfile = os.path.join(self.base, "dashgen.json")
        if self.has_sites():
            log(f"reusing the fleet in {self.base}")
            try:
                with open(genfile) as f:
                    self.reused_gen = json.load(f)
            except (OSError, ValueError):
                self.reused_gen = None
            self.add_token()
            return
        self.add_token()  # creates the schema
        a = self.args
        self.gen = run_generator(
            [bench_binary(a.build, "dashgen_pg"), "--pg", self.srv.conninfo, "--screens",
             str(self.screens), "--days", str(a.days), "--lum-days", str(a.pg_lum_days),
             "--year-every", str(a.pg_year_every), "--full-every", str(self.full_every),
             "--layout", a.pg_layout], "PostgreSQL")
        with open(genfile, "w") as f:
            json.dump(self.gen, f)

    def rollup_rows(self):
        g = self.gen or getattr(self, "reused_gen", None)
        if g:
            return g["rollup_1h"]
        return int(self.query("SELECT reltuples::bigint FROM pg_class WHERE relname ="
                              " 'rollup_1h'")[0][0])

    def size(self):
        return int(self.query("SELECT pg_database_size(current_database())")[0][0])

    def history(self):
        g = self.gen or getattr(self, "reused_gen", None)
        if not g:
            return "reused database"
        return (f"{g['lum_days']} days of luminance for every screen, {g['rollup_days']} days "
                f"of luminance for every {nth(g['year_every'])} cinema and of all 16 series "
                f"for every {nth(g['full_every'])} cinema; roll-up rows written "
                f"{'hour after hour' if g['layout'] == 'time' else 'series after series'}")

    def pids(self):
        out = [self.srv.pid]
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == self.srv.pid:
                            out.append(int(d))
                except (OSError, ValueError, IndexError):
                    pass
        return out

    def extra_mem(self):
        kb = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            kb += int(line.split()[1])
            except OSError:
                pass
        return kb / 1024, "PostgreSQL's processes (PSS)"

    def close(self):
        if self.srv and self.started:
            try:
                self.srv.stop(remove=not (self.args.keep or self.args.pg_dir))
            except pgserver.PgServerError as e:
                log(f"  {e}")
        if self.srv and (self.args.keep or self.args.pg_dir):
            log(f"kept the PostgreSQL fleet in {self.base} (--pg-dir {self.base} reuses it)")
        self.srv = None


def start_existing(base, settings):
    """Start the server of an existing base/pg/data (a kept --pg-dir) on a free port, as
    tests/pgserver.py starts a new one (as the postgres user when we are root)."""
    bd = pgserver.bindir()
    root = os.path.join(base, "pg")
    opts = {"listen_addresses": "127.0.0.1", "unix_socket_directories": os.path.join(root, "sock"),
            "fsync": "off", "full_page_writes": "off", "max_connections": "200",
            "logging_collector": "off"}
    opts.update(settings)
    port = pgserver.free_port()
    o = " ".join(["-p", str(port)] + [f"-c {k}={v}" for k, v in opts.items()])
    argv = [os.path.join(str(bd), "pg_ctl"), "start", "-D", os.path.join(root, "data"), "-l",
            os.path.join(root, "postgres.log"), "-w", "-t", "300", "-o", o]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", pgserver.PG_USER, "--"] + argv
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    r = subprocess.run(argv, cwd=root, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=320, env=dict(env, LC_ALL="C", LANG="C"))
    try:
        with open(os.path.join(root, "data", "postmaster.pid")) as f:
            pid = int(f.readline())
    except (OSError, ValueError):
        pid = None
    if r.returncode != 0 or not pid:
        raise SystemExit(f"pg_ctl start {root}/data failed: {(r.stdout + r.stderr)[-1500:]}")
    return pgserver.PgServer(root, port, pid, bd, False)


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


# ---------------------------------------------------------------- one backend's measurements

def measure(args, exe, store):
    """Start a collector on the prepared store and measure; a result dict for report()."""
    workdir = store.workdir
    facts, sites, halls, year_halls, full, now = store.facts()
    now = max(now, int(time.time() * 1000))
    if not year_halls:
        log("  no hall has a year of luminance: the 1 y chart uses any hall")
    res = {"store": store, "facts": facts, "gen": store.gen, "load": [load1()]}

    # [access] anonymous_read exists? (for the browser; the API is read with the token)
    port = harness.free_port()
    ini = os.path.join(workdir, "collector.ini")
    write_ini(ini, store.store_section(), port, args.threads, True)
    anonymous = collector_cmd(exe, ini, "--check-config").returncode == 0
    if not anonymous:
        write_ini(ini, store.store_section(), port, args.threads, False)
    viewer = None
    collector_cmd(exe, ini, "viewer", "remove", "benchviewer")  # a reused store has it
    r = collector_cmd(exe, ini, "viewer", "add", "benchviewer", stdin="bench-password-1\n")
    if r.returncode == 0:
        viewer = ("benchviewer", "bench-password-1")
    t0 = time.monotonic()
    coll = Collector(exe, ini, port, os.path.join(workdir, "collector.log"))
    try:
        res["start_s"] = time.monotonic() - t0
        client = Client(port, store.token)
        rows = []  # (key, what, n, median ms, p99 ms, req/s, note)

        def api(key, what, paths, note=""):
            # warm-up: a few requests not counted
            for p_ in paths[:min(5, len(paths))]:
                client.get(p_)
            lat, st, wall = run_load(client, paths, args.concurrency)
            ok = st.get(200, 0)
            if ok == 0:
                code = ",".join(f"{k}x{v}" for k, v in sorted(st.items()))
                rows.append((key, what, len(paths), None, None, None, f"not available ({code})"))
                return
            bad = {k: v for k, v in st.items() if k != 200}
            ms = [x * 1000 for x in lat]
            rows.append((key, what, len(paths), statistics.median(ms), pct(ms, 99),
                         len(paths) / wall,
                         (note + (f" non-200: {bad}" if bad else "")).strip()))

        n = lambda k: max(10, int(k * args.scale))  # noqa: E731
        api("overview_province", "GET /api/v1/overview?level=province",
            [q("/api/v1/overview", level="province")] * n(200))
        api("overview_city", "GET /api/v1/overview?level=city (all)",
            [q("/api/v1/overview", level="city")] * n(100))
        api("cinema", "GET /api/v1/cinema?site=S (random S)",
            [q("/api/v1/cinema", site=random.choice(sites)) for _ in range(n(1000))])
        api("hall", "GET /api/v1/hall?site=S&screen=H",
            [q("/api/v1/hall", site=s, screen=h)
             for s, h in (random.choice(halls) for _ in range(n(500)))])
        yh = year_halls or halls
        year = [q("/api/v1/series", site=s, device=f"{h}/sensor", metric="screen_luminance_nits",
                  step="1h", **{"from": now - YEAR_MS, "to": now})
                for s, h in (random.choice(yh) for _ in range(n(500)))]
        api("series_1y", "GET /api/v1/series 1 y of luminance, step 1h", year,
            f"{facts['hours']:,} points")
        api("alerts", "GET /api/v1/alerts?state=active",
            [q("/api/v1/alerts", state="active")] * n(100))

        hs = full or halls
        times, st, nreq = measure_hall_sets(client, hs, now, n(100), args.concurrency)
        ms = [x * 1000 for x in times]
        bad = {k: v for k, v in st.items() if k != 200}
        rows.append(("hall_set_1y",
                     f"hall page set, 1 y ({nreq} requests, {BROWSER_PARALLEL} at a time)",
                     len(times), statistics.median(ms), pct(ms, 99), None,
                     f"statuses {dict(sorted(st.items()))}" if bad else ""))
        res["rss"] = coll.rss_mb()
        res["extra_mem"] = store.extra_mem()
        res["rows"] = rows
        res["load"].append(load1())

        res["browser"] = {}
        if not args.no_browser:
            res["browser"] = browser_figures(f"http://127.0.0.1:{port}", hs,
                                             *(viewer or (None, None)), args.browser_runs)
        res["load"].append(load1())
    finally:
        coll.stop()
    return res


# ---------------------------------------------------------------- report

def report(args, res):
    store, facts, gen = res["store"], res["facts"], res["gen"]
    print()
    print(f"Dashboard benchmark — {store.system}")
    print(f"  data: {facts['sites']:,} cinemas, {facts['screens']:,} screens, "
          f"{facts['series']:,} series, {facts['rollup_1h']:,} hourly roll-up rows "
          f"({store.history()}); {facts['year_halls']:,} halls with {facts['hours']:,} hours "
          f"of luminance; store {facts['bytes'] / 2**30:.2f} GiB")
    if gen and store.backend == "sqlite":
        print(f"  generated in {gen['wall_s']:.0f} s (inventory {gen['inventory_s']:.1f} s, "
              f"roll-ups {gen['rollup_s']:.0f} s = "
              f"{gen['rollup_1h'] / max(gen['rollup_s'], 1e-9):,.0f} rows/s)")
    elif gen:
        print(f"  generated and loaded in {gen['wall_s']:.0f} s (inventory "
              f"{gen['inventory_s']:.1f} s; roll-ups COPY {gen['rollup_s']:.0f} s = "
              f"{gen['rollup_1h'] / max(gen['rollup_s'], 1e-9):,.0f} rows/s; primary key "
              f"{gen['index_s']:.0f} s; VACUUM ANALYZE {gen['vacuum_s']:.0f} s); rollup_1h "
              f"{gen['rollup_bytes'] / 2**30:.2f} GiB with its index")
    extra = res.get("extra_mem")
    print(f"  collector: {args.threads} HTTP threads, started in {res['start_s']:.1f} s, RSS "
          f"{res['rss']:.0f} MB after the API runs"
          + (f"; {extra[1]} {extra[0]:.0f} MB" if extra else "")
          + f"; client: {args.concurrency} thread{'s' if args.concurrency != 1 else ''} on "
          f"the same host ({os.cpu_count()} CPUs); "
          f"load average {' / '.join(f'{x:.1f}' for x in res['load'])} (start / after API / "
          f"after browser)")
    print()
    rows = res["rows"]
    w = max(len(r[1]) for r in rows) + 2
    print(f"{'API request':<{w}}{'n':>6}{'median ms':>11}{'p99 ms':>9}{'req/s':>8}  note")
    for _, what, cnt, med, p99, rps, note in rows:
        if med is None:
            print(f"{what:<{w}}{cnt:>6}{'-':>11}{'-':>9}{'-':>8}  {note}")
        else:
            print(f"{what:<{w}}{cnt:>6}{med:>11.1f}{p99:>9.1f}"
                  f"{(f'{rps:.0f}' if rps else '-'):>8}  {note}")
    browser = res["browser"]
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
    print(flush=True)


# ---------------------------------------------------------------- --json (cinemon-bench/1)

# per request: the metric's name in the table, and whether its work is the same whatever the
# fleet's size (then PostgreSQL is compared with SQLite even when their fleets differ)
JSON_METRICS = {
    "overview_province": ("GET /api/v1/overview?level=province", False),
    "overview_city": ("GET /api/v1/overview?level=city", False),
    "cinema": ("GET /api/v1/cinema", True),
    "hall": ("GET /api/v1/hall", True),
    "series_1y": ("GET /api/v1/series 1 y, step 1h", True),
    "alerts": ("GET /api/v1/alerts?state=active", False),
    "hall_set_1y": ("hall page's requests for 1 y", True),
}
JSON_PAGES = {
    "overview page (until province rows)": ("Chromium: overview page", False),
    "hall page (until charts drawn)": ("Chromium: hall page", True),
    "hall page: switch to 1 y": ("Chromium: hall page, switch to 1 y", True),
}


def num(x, nd=1):
    return None if x is None or x != x else round(float(x), nd)


def json_rows(args, results):
    """The rows of every backend's results; PG rows compared with SQLite's where the request's
    work does not grow with the fleet (or the fleets are equal)."""
    sq_system = f"{SYSTEM['sqlite']}, {(args.screens or DEFAULTS['sqlite']['screens']):,} screens"
    case = f"{args.concurrency} client{'s' if args.concurrency != 1 else ''}"
    out = []
    for res in results:
        store = res["store"]
        same_fleet = (args.screens or 0) > 0  # --screens given: both backends have it

        def row(metric, value, unit, note="", ratio=True, better="lower"):
            r = {"case": case, "system": store.system, "metric": metric, "value": value,
                 "unit": unit, "better": better}
            if ratio:
                r["ratio_vs"] = sq_system
            if note:
                r["note"] = note
            out.append(r)

        for key, _, _, med, p99, _, note in res["rows"]:
            name, per_item = JSON_METRICS[key]
            ratio = per_item or same_fleet
            if med is not None:  # the note of a measured row: only the chart's points
                note = f"{res['facts']['hours']:,} points" if key == "series_1y" else ""
            row(f"{name} median", num(med), "ms", note, ratio)
            row(f"{name} p99", num(p99), "ms", "", ratio)
        for key, (times, note) in res["browser"].items():
            if key not in JSON_PAGES:
                continue
            name, per_item = JSON_PAGES[key]
            row(f"{name} median", num(statistics.median(times), 0) if times else None, "ms",
                "" if times else (note or "not available"), per_item or same_fleet)
        g, f = res["gen"], res["facts"]
        if g:
            row("fleet generated and loaded", num(g["wall_s"], 0), "s",
                f"{f['rollup_1h']:,} roll-up rows", ratio=False)
        row("store size", num(f["bytes"] / 2**30, 2), "GiB", store.history(), ratio=False)
        row("collector RSS", num(res["rss"], 0), "MB", ratio=False)
        if res.get("extra_mem"):
            row("database server PSS", num(res["extra_mem"][0], 0), "MB",
                f"shared_buffers {args.pg_shared_buffers}", ratio=False)
    return out


def write_json(path, args, results, started, loads):
    screens = " and ".join(f"{r['store'].system}" for r in results)
    notes = [f"{r['store'].system}: {r['facts']['rollup_1h']:,} hourly roll-up rows "
             f"({r['store'].history()}); load average {r['load'][0]:.1f} at the start of its "
             f"API runs, {r['load'][1]:.1f} at their end" for r in results]
    notes.append("Ratios compare PG with SQLite only for requests whose work does not grow with "
                 "the fleet (a cinema, a hall, its charts), unless both fleets have the same size.")
    doc = {"format": "cinemon-bench/1", "bench": "dashboard",
           "title": f"Dashboard API and pages: {screens}",
           "command": "python3 " + " ".join(sys.argv), "started": started,
           "finished": utc_now(), "load": loads + [load1()], "notes": notes,
           "rows": json_rows(args, results)}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)
    log(f"wrote {path}")


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--backend", default="both", choices=("sqlite", "postgresql", "both"))
    ap.add_argument("--json", help="write the figures as cinemon-bench/1 rows to FILE")
    ap.add_argument("--db", help="SQLite: generated database to use or create (kept)")
    ap.add_argument("--pg-dir", help="PostgreSQL: server folder to use or create (kept)")
    ap.add_argument("--keep", action="store_true", help="keep the work folders")
    ap.add_argument("--screens", type=int, help="default 10,000 (SQLite), 90,000 (PostgreSQL)")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--year-series", default="lum", choices=("lum", "lum,spl", "all"),
                    help="SQLite: series of every screen with --days of roll-ups")
    ap.add_argument("--full-every", type=int, help="default 100 (SQLite), 500 (PostgreSQL)")
    ap.add_argument("--pg-lum-days", type=int, default=30,
                    help="PostgreSQL: days of luminance of every screen")
    ap.add_argument("--pg-year-every", type=int, default=20,
                    help="PostgreSQL: every K-th cinema has --days of luminance")
    ap.add_argument("--pg-layout", default="time", choices=("time", "series"))
    ap.add_argument("--pg-shared-buffers", default="1GB")
    ap.add_argument("--threads", type=int, default=4, help="collector HTTP threads")
    ap.add_argument("--concurrency", type=int, default=4, help="client threads")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--browser-runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true",
                    help="1,000 screens, 30 days, fewer requests (PostgreSQL: 7 days for all)")
    args = ap.parse_args()
    if args.quick:
        args.screens, args.days, args.scale, args.full_every = 1000, 30, 0.2, 10
        args.pg_lum_days, args.pg_year_every = 7, 2
    args.build = os.path.abspath(args.build)
    exe = os.path.join(args.build, "cinemon-collector")
    if not os.access(exe, os.X_OK):
        raise SystemExit(f"{exe} is not built (run make)")
    started, loads = utc_now(), [load1()]
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results = []
    for backend in backends:
        random.seed(1)
        workdir = tempfile.mkdtemp(prefix=f"cinemon-dashbench-{backend[:2]}-")
        os.chmod(workdir, 0o755)  # PostgreSQL runs as its own user beneath it
        store = (SqliteStore if backend == "sqlite" else PgStore)(args, exe, workdir)
        try:
            store.prepare()
            res = measure(args, exe, store)
            results.append(res)
            report(args, res)
        finally:
            store.close()
            if args.keep:
                log(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        write_json(args.json, args, results, started, loads)


if __name__ == "__main__":
    main()

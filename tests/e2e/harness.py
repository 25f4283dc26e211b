"""harness.py - what every end-to-end test needs: free loopback ports, a temporary
folder per test, processes that are always stopped, polling with a deadline, small
HTTP/JSON helpers, and starters for snmpsim, snmpd, the collector and the agent.

PostgreSQL and nginx (tests of several collectors on one store behind a load balancer):
postgres() starts a throw-away server for the module (tests/pgserver.py), pg_database() a
fresh database on it per test, collector(env, store=conninfo) a collector on it, and
nginx(env, collectors) a load balancer in front of them (docs/cluster.md).

Standard library only; runs under Debian's /usr/bin/python3.

A test function is `def test_x(env)` (env: a fresh Env, closed by the runner) or
`def test_x()`. Expensive set-ups shared by the cases of one module go through
module_cache(key, factory): factory(module_env) runs once per module and build.
Raise Skip("why") when something the test needs is absent.
"""

import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))
import pgserver  # noqa: E402
SHARED = Path(os.environ.get("CINEMON_SHARED") or (REPO.parent / "shared")).resolve()
FIXTURES = SHARED / "fixtures" / "snmprec"
PROFILES = REPO / "profiles"

# Set by the runner (configure); CINEMON_BUILD lets a module run on its own.
BUILD = Path(os.environ.get("CINEMON_BUILD") or (REPO / "build")).resolve()
ASAN = False
# The runner's PostgreSQL pass (tests/run.py, " [pg]"): collectors started without an explicit
# store get a fresh PostgreSQL database instead of their SQLite file.
STORE_PG = os.environ.get("CINEMON_E2E_STORE") == "postgresql"

STOP_GRACE_S = 5.0
SAN_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
               "ERROR: UndefinedBehaviorSanitizer")


class Skip(Exception):
    """The case cannot run here (a tool or the recordings are missing)."""


class ProcessDied(AssertionError):
    """A process a test waits for has exited: wait_until gives up at once."""


def configure(build, asan=False, store_pg=False):
    """Point the starters at a build folder (build/ or build-asan/); store_pg: collectors
    store in PostgreSQL unless a case chooses (the runner's " [pg]" pass)."""
    global BUILD, ASAN, STORE_PG
    BUILD = Path(build).resolve()
    ASAN = asan
    STORE_PG = store_pg
    _module_cache.clear()


def sqlite_only(why):
    """Skip the case in the PostgreSQL pass: it looks at what is SQLite's by nature."""
    if STORE_PG:
        raise Skip(f"SQLite only: {why}")


def binary(name):
    """Path of build/<name>; raises AssertionError when it was not built."""
    p = BUILD / name
    if not (p.is_file() and os.access(p, os.X_OK)):
        raise AssertionError(f"{p} is not built (run make)")
    return p


def need_tool(path_or_name):
    p = shutil.which(path_or_name)
    if not p:
        raise Skip(f"{path_or_name} is not installed")
    return p


def need_fixtures():
    if not FIXTURES.is_dir():
        raise Skip(f"{FIXTURES} is absent (../shared not present)")
    return FIXTURES


# ---------------------------------------------------------------- ports, waiting

def free_port(kind="tcp"):
    """A port on 127.0.0.1 that is free right now (kind "tcp" or "udp")."""
    st = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, st) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(n, tcp=True, tries=200):
    """A base port whose n consecutive ports are all free on 127.0.0.1 right now, for UDP and
    (tcp=True) TCP — for cinemon-sim, which takes base + k. Bases are drawn below the kernel's
    ephemeral range (32768+), where connections in TIME_WAIT do not come and go."""
    import random
    kinds = (socket.SOCK_DGRAM, socket.SOCK_STREAM) if tcp else (socket.SOCK_DGRAM,)
    hi = 32700 - n if n < 12000 else 65000 - n
    for _ in range(tries):
        base = random.randint(20000, max(20000, hi))
        socks = []
        try:
            for p in range(base, base + n):
                for kind in kinds:
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError(f"no {n} free consecutive ports")


def free_udp_port():
    return free_port("udp")


def wait_until(predicate, timeout=30.0, interval=0.2, what=None):
    """Call predicate() until it returns something truthy; return that value. Exceptions
    count as "not yet". On timeout raise AssertionError naming what was awaited and the
    last value or exception seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = predicate()
            if v:
                return v
            last = v
        except (Skip, ProcessDied, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - "not yet"
            last = e
        if time.monotonic() >= deadline:
            name = what or getattr(predicate, "__name__", "condition")
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {name}; "
                                 f"last: {last!r}")
        time.sleep(interval)


# ---------------------------------------------------------------- processes

class Proc:
    """A started process: popen, name and the files its output goes to."""

    def __init__(self, name, popen, stdout_path, stderr_path, check_exit):
        self.name, self.popen = name, popen
        self.stdout_path, self.stderr_path = stdout_path, stderr_path
        self.check_exit = check_exit  # our own binaries: a bad exit after SIGTERM fails
        self.stop_problem = None

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def stdout(self):
        return _read(self.stdout_path)

    def stderr(self):
        return _read(self.stderr_path)

    def stop(self):
        """SIGTERM to the process group, SIGKILL after STOP_GRACE_S. Returns a problem text
        (bad exit status or a sanitizer report) for our own binaries, else None."""
        p = self.popen
        killed = False
        if p.poll() is None:
            _signal_group(p.pid, signal.SIGTERM)
            try:
                p.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                killed = True
                _signal_group(p.pid, signal.SIGKILL)
                p.wait(10)
        # children left in the group (e.g. snmpsimd's workers)
        _signal_group(p.pid, signal.SIGKILL)
        problem = None
        if self.check_exit:
            err = self.stderr()
            if any(m in err for m in SAN_MARKERS):
                problem = f"{self.name}: sanitizer report in {self.stderr_path}"
            elif killed:
                problem = f"{self.name}: did not exit within {STOP_GRACE_S:.0f}s of SIGTERM"
            elif p.returncode not in (0, -signal.SIGTERM):
                problem = f"{self.name}: exit status {p.returncode} after SIGTERM"
        self.stop_problem = problem
        return problem


try:
    import ctypes
    _LIBC = ctypes.CDLL(None, use_errno=True)
except (ImportError, OSError):
    _LIBC = None


def _die_with_parent():
    """preexec_fn: SIGKILL this child when the test process dies (a runner killed from
    outside leaves nothing behind). Linux prctl(PR_SET_PDEATHSIG)."""
    if _LIBC is not None:
        _LIBC.prctl(1, int(signal.SIGKILL), 0, 0, 0)


def _signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _read(path):
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _tail(text, n=40):
    lines = text.splitlines()
    return "\n".join(lines[-n:])


class Env:
    """One temporary folder and every process started in it. close() stops them all."""

    def __init__(self, name="case", dir=None, keep=None, detach=False):
        if dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix=f"cinemon-{_safe(name)}-"))
        else:
            self.dir = Path(dir)
            self.dir.mkdir(parents=True, exist_ok=True)
        self.keep = (os.environ.get("CINEMON_KEEP") == "1") if keep is None else keep
        self.procs = []
        self.deferred = []  # clean-ups run by close() after the processes are stopped
        self.closed = False
        self.detach = detach  # True: processes outlive this Python process (the demo)

    def path(self, *parts):
        return self.dir.joinpath(*parts)

    def write(self, name, text, mode=None):
        p = self.path(name)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        if mode is not None:
            os.chmod(p, mode)
        return p

    def start(self, name, argv, env=None, cwd=None, check_exit=False):
        """Start argv in its own process group, output to <dir>/<name>.out/.err."""
        n = sum(1 for p in self.procs if getattr(p, "label", p.name) == name)
        base = name if n == 0 else f"{name}.{n}"
        out, err = self.path(f"{base}.out"), self.path(f"{base}.err")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        with open(out, "wb") as fo, open(err, "wb") as fe:
            popen = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                                     stdout=fo, stderr=fe, env=full_env,
                                     cwd=str(cwd or self.dir), start_new_session=True,
                                     preexec_fn=None if self.detach else _die_with_parent)
        proc = Proc(base, popen, out, err, check_exit)
        proc.label = name  # the name asked for: a restart gets the next free suffix
        self.procs.append(proc)
        return proc

    def run(self, argv, timeout=60, env=None, cwd=None, input=None):
        """Run to completion; returns CompletedProcess with text stdout/stderr."""
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                              timeout=timeout, env=full_env, cwd=str(cwd or self.dir),
                              input=input, stdin=None if input is not None else subprocess.DEVNULL)

    def stop(self, proc):
        """Stop one process now; returns its problem text or None."""
        return proc.stop()

    def defer(self, fn):
        """Call fn() when the case ends, after every process is stopped (newest first); an
        exception it raises is reported as a problem of the case."""
        self.deferred.append(fn)

    def logs(self, n=40):
        """Tails of every process's output, for a failure report."""
        parts = []
        for p in self.procs:
            for label, path in (("stdout", p.stdout_path), ("stderr", p.stderr_path)):
                t = _tail(_read(path), n)
                if t.strip():
                    parts.append(f"--- {p.name} {label} ({path}) ---\n{t}")
        return "\n".join(parts)

    def close(self):
        """Stop every process (newest first), remove the folder unless kept. Returns the
        list of problems (bad exits, sanitizer reports) of our own binaries."""
        if self.closed:
            return []
        self.closed = True
        problems = []
        for p in reversed(self.procs):
            try:
                prob = p.stop()
            except Exception as e:  # noqa: BLE001 - keep stopping the others
                prob = f"{p.name}: stop failed: {e!r}"
            if prob:
                problems.append(prob)
        for fn in reversed(self.deferred):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - keep cleaning up
                problems.append(f"clean-up {getattr(fn, '__name__', fn)} failed: {e!r}")
        if problems:
            problems.append(self.logs())
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        return problems


def _safe(s):
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in s)[:40]


# module-scoped set-ups (one per module and build), closed by the runner
_module_cache = {}
_module_env = None
_module_name = "module"


def begin_module(name):
    """Runner: start the module scope."""
    global _module_env, _module_name
    _module_cache.clear()
    _module_env, _module_name = None, name


def end_module():
    """Runner: close the module scope; returns problems like Env.close()."""
    global _module_env
    _module_cache.clear()
    env, _module_env = _module_env, None
    return env.close() if env else []


def module_env():
    global _module_env
    if _module_env is None:
        _module_env = Env(_module_name)
    return _module_env


def module_cache(key, factory):
    """factory(module_env()) once per module; an exception it raised is raised again for
    every later case (a failed set-up is not retried)."""
    if key not in _module_cache:
        try:
            _module_cache[key] = ("ok", factory(module_env()))
        except BaseException as e:  # noqa: BLE001
            _module_cache[key] = ("err", e)
    kind, v = _module_cache[key]
    if kind == "err":
        raise v
    return v


# ---------------------------------------------------------------- HTTP

def head_log_points(records):
    """Samples in head_log records (collector/head.c: "CH1", a varint count, the points): the
    samples a store has committed and not yet written out to its tables."""
    n = 0
    for rec in records:
        rec = bytes(rec)
        assert rec[:3] == b"CH1", f"not a head record: {rec[:8]!r}"
        count, shift = 0, 0
        for byte in rec[3:13]:
            count |= (byte & 0x7f) << shift
            shift += 7
            if not byte & 0x80:
                break
        n += count
    return n


def sqlite_stored_samples(db):
    """Samples an open SQLite connection's store holds: its day tables' rows plus those
    committed to the head's log and not yet written out (exactly one of the two holds each)."""
    rows = db.execute("SELECT coalesce(sum(rows), 0) FROM chunks").fetchone()[0]
    return rows + head_log_points(r[0] for r in db.execute("SELECT data FROM head_log"))


def store_rows(coll, sql_sqlite, sql_pg=None, **params):
    """Rows of a query on collector coll's store, read directly (SQLite file read-only, or
    psql); params bound by name (:name in SQLite, :'name' in the PostgreSQL text). Values as
    the driver gives them (psql: strings)."""
    if coll.store:
        return psql(coll.store, sql_pg or sql_sqlite, **params)
    import sqlite3
    db = sqlite3.connect(f"file:{coll.env.path('cinemon.db')}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql_sqlite, params).fetchall()
    finally:
        db.close()


def stored_samples(coll):
    """Samples collector coll's store holds, in its tables or in its head's log."""
    if not coll.store:
        import sqlite3
        db = sqlite3.connect(f"file:{coll.env.path('cinemon.db')}?mode=ro", uri=True, timeout=10)
        try:
            return sqlite_stored_samples(db)
        finally:
            db.close()
    n = int(psql(coll.store, "SELECT count(*) FROM samples")[0][0])
    has_log = psql(coll.store, "SELECT to_regclass('head_log') IS NOT NULL")[0][0] == "t"
    if has_log:
        recs = psql(coll.store, "SELECT encode(data, 'hex') FROM head_log")
        n += head_log_points(bytes.fromhex(r[0]) for r in recs)
    return n


def request(method, url, body=None, headers=None, timeout=15):
    """One HTTP request. body: bytes, str or a JSON-able object. Returns
    (status, parsed JSON or None, raw bytes, headers dict with lower-case keys)."""
    u = urllib.parse.urlsplit(url)
    hdrs = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, bytearray)):
        if not isinstance(body, str):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        body = body.encode()
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        try:
            conn.request(method, path, body=body, headers=hdrs)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (413) before reading everything
        resp = conn.getresponse()
        raw = resp.read()
        rh = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return resp.status, parsed, raw, rh


def http_get(url, timeout=15, token=None):
    """GET → (status, json or None); token: an operator token sent as Bearer."""
    h = {"Authorization": f"Bearer {token}"} if token else None
    s, j, _, _ = request("GET", url, headers=h, timeout=timeout)
    return s, j


def http_post(url, body, token=None, headers=None, timeout=15):
    """POST → (status, json or None)."""
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    if isinstance(body, (dict, list)):
        h.setdefault("Content-Type", "application/json")
    s, j, _, _ = request("POST", url, body=body, headers=h, timeout=timeout)
    return s, j


def gzip_bytes(data):
    return gzip.compress(data if isinstance(data, bytes) else data.encode())


def make_batch(agent, site, seq, device="hall1/projector", metric="lamp_hours", value=1.0,
               ts_ms=None, nseries=1):
    """A valid wire batch (DESIGN.md "Wire protocol")."""
    ts = int(time.time() * 1000) if ts_ms is None else ts_ms
    return {
        "v": 1,
        "agent": {"id": agent, "version": "e2e", "site": site},
        "seq": seq,
        "sent_ms": ts,
        "devices": [{"id": device, "screen": device.split("/")[0], "kind": "projector",
                     "vendor": "Test", "model": "T1", "serial": "S1", "profile": "none"}],
        "series": [{"device": device, "metric": metric if i == 0 else f"{metric}_{i}",
                    "labels": {}, "unit": "h", "points": [[ts, value]]}
                   for i in range(nseries)],
        "events": [],
    }


# ---------------------------------------------------------------- snmpsim / snmpd

def snmpget(port, community, *oids, timeout=1.0, retries=1, opts="-Oqv"):
    """Values (-Oqv) of oids from 127.0.0.1:port, as strings; raises on failure."""
    tool = need_tool("snmpget")
    r = subprocess.run([tool, "-v2c", "-c", community, opts, "-t", str(timeout),
                        "-r", str(retries), "-m", "", f"127.0.0.1:{port}", *oids],
                       capture_output=True, text=True, timeout=timeout * (retries + 1) + 10,
                       env=dict(os.environ, MIBS=""))
    if r.returncode != 0:
        raise RuntimeError(f"snmpget {port} {oids}: rc={r.returncode} {r.stderr.strip()}")
    return [ln.strip().strip('"') for ln in r.stdout.splitlines()]


def _snmp_answers(port, community):
    try:
        snmpget(port, community, "1.3.6.1.2.1.1.2.0", timeout=0.5, retries=0)
        return True
    except RuntimeError:
        return False


def snmpsim(env, data_dir=None, timeout=60):
    """Start snmpsimd serving every recording of data_dir (default: the shared fixtures);
    community = recording file base name. Returns the UDP port."""
    data_dir = Path(data_dir) if data_dir else need_fixtures()
    if not data_dir.is_dir():
        raise Skip(f"{data_dir} is absent")
    tool = need_tool("snmpsimd")
    need_tool("snmpget")
    cache = env.path("snmpsim-cache")
    cache.mkdir(exist_ok=True)
    os.chmod(cache, 0o777)
    os.chmod(env.dir, 0o711)  # snmpsimd runs as nobody: it must reach its cache
    port = free_port("udp")
    argv = [tool, f"--data-dir={data_dir}", f"--cache-dir={cache}",
            f"--agent-udpv4-endpoint=127.0.0.1:{port}", "--logging-method=null"]
    if os.geteuid() == 0:
        argv += ["--process-user=nobody", "--process-group=nogroup"]
    proc = env.start("snmpsim", argv)
    community = "linux" if (data_dir / "linux.snmprec").exists() else \
        sorted(data_dir.glob("*.snmprec"))[0].stem

    def ready():
        if not proc.alive():
            raise ProcessDied(f"snmpsimd exited ({proc.popen.returncode}):\n"
                                 f"{_tail(proc.stderr())}")
        return _snmp_answers(port, community)
    wait_until(ready, timeout, 0.25, "snmpsimd to answer")
    return port


SNMPD_COMMUNITY = "cinemon-test"


def snmpd(env, timeout=20):
    """Start Debian's snmpd on a loopback UDP port with its own configuration (community
    cinemon-test, no system config, persistent state inside env). Returns the port."""
    tool = "/usr/sbin/snmpd" if os.path.exists("/usr/sbin/snmpd") else need_tool("snmpd")
    need_tool("snmpget")
    port = free_port("udp")
    persist = env.path("snmpd-state")
    persist.mkdir(exist_ok=True)
    conf = env.write("snmpd.conf", "\n".join([
        "# written by tests/e2e/harness.py",
        f"rocommunity {SNMPD_COMMUNITY} 127.0.0.1",
        "sysLocation cinemon test hall",
        "sysContact cinemon-e2e@example.invalid",
        "sysName cinemon-e2e",
        "dontLogTCPWrappersConnects yes",
        f"[snmp] persistentDir {persist}",
        ""]))
    # The listening address is given on the command line (with agentAddress in the file as
    # well snmpd tries to bind the port twice). -m "" -M /dev/null: no MIB files are parsed.
    proc = env.start("snmpd", [tool, "-f", "-Lo", "-C", "-c", conf, "-m", "", "-M", "/dev/null",
                               "-p", env.path("snmpd.pid"), f"udp:127.0.0.1:{port}"],
                     env={"SNMP_PERSISTENT_DIR": str(persist), "MIBS": ""})

    def ready():
        if not proc.alive():
            raise ProcessDied(f"snmpd exited ({proc.popen.returncode}):\n"
                                 f"{_tail(proc.stdout() + proc.stderr())}")
        return _snmp_answers(port, SNMPD_COMMUNITY)
    wait_until(ready, timeout, 0.2, "snmpd to answer")
    return port


# ---------------------------------------------------------------- collector

class Collector:
    """A running collector: base_url, proc, ini path, port."""

    def __init__(self, env, ini, port, proc):
        self.env, self.ini, self.port, self.proc = env, ini, port, proc
        self.op_token = None
        self.base_url = f"http://127.0.0.1:{port}"

    def __iter__(self):  # base_url, proc = collector(env)
        return iter((self.base_url, self.proc))

    def url(self, path, **query):
        q = {k: v for k, v in query.items() if v is not None}
        return self.base_url + path + ("?" + urllib.parse.urlencode(q) if q else "")

    def get(self, path, **query):
        """GET base_url+path?query → (status, json), as the national operator (reads need a
        principal, docs/access.md)."""
        return http_get(self.url(path, **query), token=self.op_token)

    def data(self, path, **query):
        """GET an API list; asserts 200 and returns the "data" list."""
        s, j = self.get(path, **query)
        assert s == 200, f"GET {path} {query}: status {s}, body {j}"
        assert isinstance(j, dict) and isinstance(j.get("data"), list), \
            f"GET {path}: not {{\"data\": [...]}}: {j!r}"
        return j["data"]

    def ingest(self, body, token, headers=None):
        return http_post(self.base_url + "/api/v1/ingest", body, token=token, headers=headers)

    def add_token(self, agent, site):
        return token_add(self.env, self.ini, agent, site)

    def add_operator(self, name, site=None):
        return operator_add(self.env, self.ini, name, site)

    def healthy(self):
        try:
            return self.get("/healthz")[0] == 200
        except OSError:
            return False

    def start(self, timeout=30):
        """(Re)start the collector on its ini (same port and store); wait for /healthz."""
        assert self.proc is None or not self.proc.alive(), "collector already running"
        proc = self.env.start("collector", [binary("cinemon-collector"), "-c", self.ini],
                              check_exit=True)
        self.proc = proc

        def ready():
            if not proc.alive():
                raise ProcessDied(f"collector exited ({proc.popen.returncode}):\n"
                                  f"{_tail(proc.stderr())}")
            return self.healthy()
        wait_until(ready, timeout * (2.5 if ASAN else 1), 0.1, f"collector :{self.port} /healthz")
        return proc

    def kill(self):
        """SIGKILL the collector's process group (its exit status is then expected); a
        sanitizer report it wrote before is an AssertionError."""
        p = self.proc
        p.check_exit = False
        if p.popen.poll() is not None:
            raise AssertionError(f"{p.name} had exited by itself ({p.popen.returncode}):\n"
                                 f"{_tail(p.stderr())}")
        _signal_group(p.pid, signal.SIGKILL)
        p.popen.wait(10)
        san = sanitizer_problem(p.stderr())
        assert not san, f"{p.name}: {san} ({p.stderr_path})"

    def metric(self, name):
        """The value of one unlabelled-or-labelled sample line of /metrics ("name" or
        'name{label="v"}'), 0 when absent."""
        s, _, raw, _ = request("GET", self.base_url + "/metrics", timeout=5)
        assert s == 200, f"GET /metrics: {s}"
        for ln in raw.decode(errors="replace").splitlines():
            if ln.startswith(name + " "):
                return float(ln.split()[-1])
        return 0.0


def write_collector_ini(env, port, extra=None, name="collector.ini", db="cinemon.db",
                        conninfo=None):
    """collector.ini on 127.0.0.1:port with SQLite, or with PostgreSQL when conninfo (a libpq
    connection string) is given. extra: {section: {key: value}} merged in."""
    store = ({"backend": "postgresql", "conninfo": conninfo} if conninfo else
             {"backend": "sqlite", "path": db})
    sections = {
        "collector": {"listen": f"127.0.0.1:{port}", "threads": "4", "log_level": "info"},
        "store": store,
        "rules": {"dir": str(REPO / "collector" / "rules"), "tick": "1s"},
    }
    for sec, kv in (extra or {}).items():
        sections.setdefault(sec, {}).update({k: str(v) for k, v in kv.items()})
    text = "".join(f"[{sec}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items())
                   for sec, kv in sections.items())
    return env.write(name, text)


def token_add(env, ini, agent, site):
    """`cinemon-collector -c ini token add --agent A --site S`; returns the token."""
    r = env.run([binary("cinemon-collector"), "-c", ini, "token", "add", "--agent", agent,
                 "--site", site], timeout=60, cwd=Path(ini).parent)
    assert r.returncode == 0, f"token add failed ({r.returncode}): {r.stderr.strip()}"
    lines = [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, f"token add: expected one line on stdout, got {r.stdout!r}"
    return lines[0]


def operator_add(env, ini, name, site=None):
    """`cinemon-collector -c ini token add --operator NAME [--site S]`; returns the token."""
    argv = [binary("cinemon-collector"), "-c", ini, "token", "add", "--operator", name]
    if site:
        argv += ["--site", site]
    r = env.run(argv, timeout=60, cwd=Path(ini).parent)
    assert r.returncode == 0, f"token add --operator failed ({r.returncode}): {r.stderr.strip()}"
    lines = [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, f"token add --operator: expected one line, got {r.stdout!r}"
    return lines[0]


def viewer_add(env, ini, name, password, role=None, scope=None):
    """`cinemon-collector -c ini viewer add NAME [--role R] [--province|--chain|--site V]`
    with the password on stdin. scope: ("province", "Guangdong") or None (national)."""
    argv = [binary("cinemon-collector"), "-c", ini, "viewer", "add", name]
    if role:
        argv += ["--role", role]
    if scope:
        argv += [f"--{scope[0]}", scope[1]]
    r = env.run(argv, timeout=60, cwd=Path(ini).parent, input=password + "\n")
    assert r.returncode == 0, f"viewer add failed ({r.returncode}): {r.stderr.strip()}"
    return r


def collector(env, tokens=(), extra=None, port=None, timeout=30, store=None, name=None):
    """Write collector.ini, create tokens [(agent, site)] and a national operator token
    (.op_token, sent by Collector.get/data), start the collector and wait for GET /healthz ==
    200. Returns a Collector with .tokens {(agent, site): token}.
    store: a PostgreSQL conninfo (pg_database()) instead of the SQLite file cinemon.db;
    several collectors may share one. name: the ini file's name (default collector.ini, or
    collector-<port>.ini with store, so that collectors of one case do not share a file)."""
    port = port or free_port("tcp")
    if store is None and STORE_PG:
        # one database per case, as the SQLite file cinemon.db is one per case's folder: a
        # collector started again in the case finds what the first one stored
        if getattr(env, "default_pg", None) is None:
            env.default_pg = pg_database(env)
        store = env.default_pg
        name = name or "collector.ini"
    name = name or (f"collector-{port}.ini" if store else "collector.ini")
    ini = write_collector_ini(env, port, extra, name=name, conninfo=store)
    toks = {}
    for agent_id, site in tokens:
        toks[(agent_id, site)] = token_add(env, ini, agent_id, site)
    op = operator_add(env, ini, "e2e-national")
    c = Collector(env, ini, port, None)
    c.tokens = toks
    c.op_token = op
    c.store = store  # None: SQLite file cinemon.db in the case's folder
    c.start(timeout)
    return c


# ---------------------------------------------------------------- PostgreSQL

def postgres():
    """A throw-away PostgreSQL server (tests/pgserver.py, fsync off) shared by the cases of
    the current module and stopped by PID when the module ends. Skip when PostgreSQL's
    server binaries are not installed."""
    if pgserver.bindir() is None:
        raise Skip("PostgreSQL server binaries are not installed (apt-get install postgresql)")

    def start(menv):
        if os.geteuid() == 0:
            os.chmod(menv.dir, 0o711)  # the server runs as postgres: it must reach its folder
        srv = pgserver.start(menv.path("pgsrv"), fsync=False)
        menv.defer(srv.stop)
        return srv
    return module_cache("postgres", start)


def psql(conninfo, sql, **params):
    """Run sql through psql on conninfo; params are psql variables (use :'name' in sql: psql
    quotes them). Returns the rows of the last statement as tuples of strings."""
    bd = pgserver.bindir()
    exe = (bd / "psql") if bd and (bd / "psql").exists() else need_tool("psql")
    argv = [str(exe), "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d",
            conninfo]
    for k, v in params.items():
        argv += ["-v", f"{k}={v}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    r = subprocess.run(argv + ["-f", "-"], input=sql, capture_output=True, text=True,
                       timeout=60, env=env)
    if r.returncode != 0:
        raise AssertionError(f"psql failed ({r.returncode}): {r.stderr.strip()}\nSQL: {sql}")
    return [tuple(ln.split("\t")) for ln in r.stdout.splitlines() if ln]


def pg_database(env, srv=None):
    """A fresh database on srv (default: postgres()) for this case, dropped (WITH (FORCE))
    when the case ends. Returns its conninfo."""
    import secrets
    srv = srv or postgres()
    name = "cinemon_" + secrets.token_hex(6)
    psql(srv.conninfo, "CREATE DATABASE " + name)  # a name of our own making: not a value
    env.defer(lambda: psql(srv.conninfo, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    return srv.conninfo.replace("dbname=postgres", "dbname=" + name)


# ---------------------------------------------------------------- nginx

NGINX_FAIL_TIMEOUT = "2s"


class Nginx:
    """A running nginx in front of collectors: base_url, port, proc, conf (its folder holds
    its pid file, logs and temporary files)."""

    def __init__(self, port, proc, conf, prefix):
        self.port, self.proc, self.conf, self.prefix = port, proc, conf, prefix
        self.base_url = f"http://127.0.0.1:{port}"

    def url(self, path):
        return self.base_url + path

    def access_log(self):
        return _read(self.prefix / "access.log")


def nginx_conf(prefix, port, backends, max_body="16m"):
    """The text of an nginx.conf for collectors at backends [port] (docs/cluster.md): every
    path inside prefix; POST /api/v1/ingest by a consistent hash of the agent's token (one
    judge sees an agent's batches in order), everything else round robin; a request that
    fails at one collector (connection refused or reset, timeout, 502/503) is sent to the
    next — for ingest even after the first one may have received it (non_idempotent): a batch
    stored twice is impossible (exactly-once by seq); other POSTs (a silence, say) only when
    they never reached a collector."""
    servers = "".join(f"        server 127.0.0.1:{p} max_fails=1 "
                      f"fail_timeout={NGINX_FAIL_TIMEOUT};\n" for p in backends)
    return f"""# written by tests/e2e/harness.py (see docs/cluster.md)
worker_processes 1;
master_process on;
pid {prefix}/nginx.pid;
lock_file {prefix}/nginx.lock;
error_log {prefix}/error.log info;

events {{
    worker_connections 512;
}}

http {{
    log_format cluster '$remote_addr "$request" $status upstream=$upstream_addr '
                       'upstream_status=$upstream_status rt=$request_time';
    access_log {prefix}/access.log cluster;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;

    client_max_body_size {max_body};
    client_body_buffer_size 1m;

    upstream cinemon_ingest {{
        hash $http_authorization consistent;
{servers}        keepalive 16;
        keepalive_timeout 20s;
    }}
    upstream cinemon_api {{
{servers}        keepalive 16;
        keepalive_timeout 20s;
    }}

    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_connect_timeout 2s;
        proxy_send_timeout 60s;
        proxy_read_timeout 60s;
        proxy_next_upstream error timeout http_502 http_503;
        proxy_next_upstream_timeout 30s;

        location = /api/v1/ingest {{
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_pass http://cinemon_ingest;
        }}
        location / {{
            proxy_pass http://cinemon_api;
        }}
    }}
}}
"""


def nginx_binary():
    """Path of nginx; Skip when it is not installed."""
    if os.access("/usr/sbin/nginx", os.X_OK):
        return "/usr/sbin/nginx"
    return need_tool("nginx")


def nginx(env, collectors, timeout=20):
    """Start nginx (`nginx -c CONF -p PREFIX -g 'daemon off;'`, its own process group,
    stopped by PID when the case ends) on a free loopback port in front of collectors
    (Collector objects or ports); pid, logs and temporary files in env's nginx/ folder, so a
    system nginx is neither used nor disturbed. Returns an Nginx once GET /healthz answers 200
    through it. Skip when nginx is not installed."""
    exe = nginx_binary()
    prefix = env.path("nginx")
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        # the worker runs as nobody: it must reach its temporary folders
        for d in (env.dir, prefix, prefix / "tmp"):
            os.chmod(d, 0o711)
    ports = [c if isinstance(c, int) else c.port for c in collectors]
    port = free_port("tcp")
    conf = env.write("nginx/nginx.conf", nginx_conf(prefix, port, ports))
    proc = env.start("nginx", [exe, "-c", conf, "-p", prefix, "-e", prefix / "error.log",
                               "-g", "daemon off;"])
    n = Nginx(port, proc, conf, prefix)

    def ready():
        if not proc.alive():
            raise ProcessDied(f"nginx exited ({proc.popen.returncode}):\n"
                              f"{_tail(proc.stderr() + _read(prefix / 'error.log'))}")
        try:
            return http_get(n.url("/healthz"), timeout=2)[0] == 200
        except OSError:
            return False
    wait_until(ready, timeout, 0.1, "nginx to answer /healthz")
    return n


# ---------------------------------------------------------------- agent

def device(id, port, community, kind="other", profile=None, address="127.0.0.1",
           snmp_version="2c", **extra):
    """A device section for write_agent_ini."""
    d = {"kind": kind}
    if profile:
        d["profile"] = profile
    d.update({"address": address, "port": port, "snmp_version": snmp_version,
              "community": community})
    d.update(extra)
    d["id"] = id
    return d


def write_agent_ini(env, devices, collector_url=None, token="no-token", site="site1",
                    agent_id="agent1", profiles_dir=None, name="agent.ini", extra=None):
    """agent.ini (+ its token file, mode 0600) in env. devices: dicts from device().
    extra: {key: value} added to or replacing [agent] keys (None removes a key); keys
    written "upload.interval" or "spool.fsync" go to the [upload] or [spool] section."""
    if collector_url is None:
        collector_url = f"http://127.0.0.1:{free_port('tcp')}"
    env.write("token", token + "\n", mode=0o600)
    agent = {"site": site, "id": agent_id, "collector_url": collector_url,
             "token_file": "token", "state_dir": "state",
             "profiles_dir": str(profiles_dir or PROFILES), "interval": "2s",
             "timeout": "1s", "retries": "1", "upload.interval": "2s", "log_level": "info"}
    for k, v in (extra or {}).items():
        if k == "upload_interval":
            k = "upload.interval"
        if v is None:
            agent.pop(k, None)
        else:
            agent[k] = str(v)
    # "upload.interval" / "spool.fsync" style keys go to their own [upload] / [spool] sections.
    sections = {"agent": {}}
    for k, v in agent.items():
        sec, _, key = k.rpartition(".")
        sections.setdefault(sec or "agent", {})[key] = v
    lines = []
    for sec, keys in sections.items():
        if lines:
            lines.append("")
        lines.append(f"[{sec}]")
        lines += [f"{k} = {v}" for k, v in keys.items()]
    for d in devices:
        lines.append("")
        lines.append(f'[device "{d["id"]}"]')
        lines += [f"{k} = {v}" for k, v in d.items() if k != "id"]
    return env.write(name, "\n".join(lines) + "\n")


def agent(env, devices, coll=None, token=None, site="site1", agent_id="agent1", extra=None,
          profiles_dir=None):
    """Write agent.ini and start the agent daemon. Returns its Proc."""
    exe = binary("cinemon-agent")
    url = coll.base_url if coll else None
    if token is None and coll is not None:
        token = coll.tokens.get((agent_id, site)) or coll.add_token(agent_id, site)
    ini = write_agent_ini(env, devices, url, token or "no-token", site, agent_id,
                          profiles_dir, extra=extra)
    proc = env.start("agent", [exe, "-c", ini], check_exit=True)
    time.sleep(0.2)
    if not proc.alive():
        raise AssertionError(f"agent exited at once ({proc.popen.returncode}):\n"
                             f"{_tail(proc.stderr())}")
    return proc


def agent_once(env, ini, timeout=60):
    """`cinemon-agent -c ini --once` → CompletedProcess."""
    return env.run([binary("cinemon-agent"), "-c", ini, "--once"], timeout=timeout)


def check_config(env, ini, timeout=30):
    """`cinemon-agent -c ini --check-config` → CompletedProcess."""
    return env.run([binary("cinemon-agent"), "-c", ini, "--check-config"], timeout=timeout)


def sanitizer_problem(text):
    """The first sanitizer report line in text, or None."""
    for ln in text.splitlines():
        if any(m in ln for m in SAN_MARKERS):
            return ln.strip()
    return None


# ---------------------------------------------------------------- profiles

def load_profile(name, profiles_dir=None):
    """The parsed JSON of profiles/<name>.json (the file whose "name" is name)."""
    d = Path(profiles_dir or PROFILES)
    p = d / f"{name}.json"
    if p.exists():
        return json.loads(p.read_text())
    for f in sorted(d.glob("*.json")):
        try:
            j = json.loads(f.read_text())
        except ValueError:
            continue
        if j.get("name") == name:
            return j
    raise AssertionError(f"no profile named {name} in {d}")


def _norm_oid(s):
    return str(s).strip().lstrip(".")


def profile_scalar(profile, oid):
    """The scalars[] entry of profile reading oid, or None."""
    for s in profile.get("scalars", []) or []:
        if _norm_oid(s.get("oid", "")) == _norm_oid(oid):
            return s
    return None

#!/usr/bin/env python3
"""ingest_bench.py — durable ingest into cinemon (SQLite and PostgreSQL) against the stores a
user would pick instead: InfluxDB 1.x (line protocol over HTTP, fsync on every write) and
Prometheus's remote-write receiver (issue 7 item 5, the ingest part).

Every server is started here, on free loopback ports with its data in a temporary folder, and
stopped by its PID:
  cinemon SQLite   cinemon-collector, [store] backend = sqlite (WAL, synchronous=FULL)
  cinemon PG       cinemon-collector, backend = postgresql, on a PostgreSQL server of its own
                   (tests/pgserver.py: fsync on, synchronous_commit on)
  InfluxDB         influxd (Debian's influxdb 1.6) with wal-fsync-delay = "0s": each write is
                   fsynced before it is answered; reporting and the _internal monitor off, the
                   HTTP access log off, only loopback listeners
  Prometheus       prometheus --web.enable-remote-write-receiver, an empty scrape config
                   (durability: see --help-durability / docs/performance.md)
A missing peer (package not installed) is reported as such, not as a failure.

The same samples for all: 2 writers (one agent each, for cinemon: its own token and its own
increasing seq), each owning 5,000 series of a multiplex (20 halls x 5 devices x 50 series:
site, device, metric, a label); every request carries 5,000 samples, and a writer sends its
next request when the previous one is acknowledged. Two shapes: 1 point per series per
request (a poll round), and 10 (500 series x 10 rounds). bench/ingestgen (built by make from
bench/ingestgen.c) encodes the requests before they are sent: the agent's gzip'd batch JSON
(common/wire.c), InfluxDB line protocol (gzip, as Telegraf sends it), Prometheus remote-write
protobuf (snappy).

Per store: (1) preload through the same HTTP path, not timed, in the 10-points shape, until
the store holds --preload samples (default 20 million); (2) a short untimed run of the
1-point shape to size the next files; (3) for each shape, the requests of about 3x
--duration seconds are encoded to a file, then sent for --duration seconds (default 30). A
request counts when it is acknowledged (cinemon: 200 {"ack"} after the commit; InfluxDB and
Prometheus: 204). Measured per phase: samples/s; CPU seconds of the server per million
samples (utime + stime of its process from /proc; for cinemon PG the collector plus every
PostgreSQL process); peak RSS (VmHWM from /proc/PID/status, reset at the start of the phase
through /proc/PID/clear_refs; for PostgreSQL the largest sum of its processes' PSS sampled
every second, added to the collector's); bytes written toward the disk per sample
(write_bytes of /proc/PID/io: the write amplification). After the phases, bytes on disk per
sample: du of the store's data (SQLite after the collector closed it, which checkpoints the
WAL; PostgreSQL after CHECKPOINT, its data directory without pg_wal, whose recycled segments
do not grow with the data; InfluxDB and Prometheus after a clean stop, WAL included),
divided by the samples it holds (checked against the store's own count).

usage: ingest_bench.py [--build build] [--quick] [--preload N] [--duration S]
                       [--only sqlite,pg,influx,prom] [--rules] [--keep] [--json FILE]
                       [--store-opt KEY=VALUE ...]
--json FILE: also write the figures in bench/report.py's format (make bench).
--quick: 1 million samples preloaded, 8 s per phase (a smoke test); --rules: run the
collector with the shipped rules on (default off: the peers judge nothing either).
--store-opt KEY=VALUE: an extra line of cinemon's [store] section (e.g. head_max_points =
2000000), for tuning runs; the table's note names it.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
import pgserver  # noqa: E402

WRITERS = 2
SERIES = 5000  # per writer
SAMPLES = 5000  # per request
STEP_MS = 10000  # poll interval of the generated fleet
CLK_TCK = os.sysconf("SC_CLK_TCK")
GOAL_RATE = {1: 1.0, 10: 2.0}  # cinemon / InfluxDB samples/s, per shape
GOAL_RSS = 1.0 / 3.0  # cinemon / InfluxDB peak RSS

PROM_DURABILITY = (
    "Prometheus answers a remote write once its WAL record is written to the page cache "
    "(tsdb/wlog: Log() writes the page with write(2); fsync only when a 128 MiB segment is "
    "completed and at shutdown): an acknowledged sample survives a crash of the process, "
    "not a power cut or kernel crash")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    """A store could not be started or refused a request; the message says why."""


# ---------------------------------------------------------------- processes and /proc

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid, children=False):
    """utime + stime of pid in seconds (with children=True also its reaped children's)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    t = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    if children:
        t += int(fields[13]) + int(fields[14])  # cutime, cstime
    return t / CLK_TCK


def child_pids(ppid):
    """PIDs whose parent is ppid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                if int(f.read().rsplit(b")", 1)[1].split()[1]) == ppid:
                    out.append(int(d))
        except (OSError, IndexError, ValueError):
            pass
    return out


def status_kb(pid, key):
    """A "key: N kB" line of /proc/PID/status, in kB (0 when gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def io_written(pid):
    """write_bytes of /proc/PID/io: bytes the process sent (or dirtied) toward storage."""
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_hwm(pid):
    """Reset VmHWM to the current RSS (Linux 4.0+)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def foreign_servers():
    """Stores running on this machine that this benchmark did not start (a package's own
    service, another run): they take CPU from the measured one."""
    mine = os.getpid()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == mine:
            continue
        try:
            with open(f"/proc/{d}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in ("influxd", "prometheus", "cinemon-collect", "postgres"):
            found.append(f"{comm} (PID {d})")
    return found


def du(*paths):
    """Bytes allocated on disk under the paths (st_blocks, as du counts)."""
    total = 0
    for p in paths:
        if os.path.isfile(p):
            total += os.stat(p).st_blocks * 512
            continue
        for d, _, files in os.walk(p):
            for n in files:
                try:
                    total += os.lstat(os.path.join(d, n)).st_blocks * 512
                except OSError:
                    pass
    return total


def http_call(port, method, path, body=None, headers=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def wait_http(proc, port, path, ok, what, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode} while starting")
        try:
            if http_call(port, "GET", path, timeout=2)[0] in ok:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise BenchError(f"{what} did not answer GET {path} within {timeout} s")


def stop_pid(proc, timeout=60):
    """SIGTERM to the process we started, SIGKILL after timeout."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- the stores

class Store:
    """One server under test. Subclasses set name, path, headers, fmt and implement start,
    stop, samples_held and disk_bytes."""
    name = ""
    fmt = ""  # ingestgen --format
    path = ""
    headers = {}

    def __init__(self, work, args):
        self.work = os.path.join(work, self.key)
        os.makedirs(self.work)
        self.args = args
        self.port = None
        self.proc = None
        self.logf = None

    def spawn(self, argv, what):
        self.logf = open(os.path.join(self.work, "server.log"), "ab")
        self.proc = subprocess.Popen(argv, stdout=self.logf, stderr=self.logf,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log(f"  {what}: PID {self.proc.pid}, port {self.port}")

    def cpu(self):
        """Server CPU seconds so far."""
        return proc_cpu(self.proc.pid)

    def written(self):
        """Bytes the server wrote toward storage so far."""
        return io_written(self.proc.pid)

    def mem_begin(self):
        reset_hwm(self.proc.pid)

    def mem_sample(self):
        """Called every second during a phase (for stores whose peak is not one VmHWM)."""

    def mem_peak_kb(self):
        return status_kb(self.proc.pid, "VmHWM")

    def mem_note(self):
        return ""

    def check(self, status, body):
        """None when the answer acknowledges the request, else what is wrong."""
        return None if status == 204 else f"HTTP {status}: {body[:200]!r}"

    def stop(self):
        stop_pid(self.proc)
        if self.logf:
            self.logf.close()
            self.logf = None

    def log_tail(self, n=15):
        try:
            with open(os.path.join(self.work, "server.log"), errors="replace") as f:
                return "\n".join(f.read().splitlines()[-n:])
        except OSError:
            return ""


class Cinemon(Store):
    fmt = "cinemon"
    path = "/api/v1/ingest"

    def __init__(self, work, args, backend):
        self.key = "cinemon-" + backend
        self.backend = backend
        self.name = "cinemon SQLite" if backend == "sqlite" else "cinemon PG"
        super().__init__(work, args)
        self.exe = os.path.join(args.build, "cinemon-collector")
        self.pg = None
        self.tokens = []
        self.pg_peak = 0
        self.coll_peak = 0
        self.disk_note = "SQLite file after the collector closed it (WAL checkpointed)" \
            if backend == "sqlite" else ""

    @staticmethod
    def missing(args, backend):
        if not os.access(os.path.join(args.build, "cinemon-collector"), os.X_OK):
            return f"{args.build}/cinemon-collector is not built (make)"
        if backend == "pg" and pgserver.bindir() is None:
            return "PostgreSQL server binaries not installed (apt-get install postgresql)"
        return None

    def start(self):
        self.port = free_port()
        if self.backend == "pg":
            self.pg = pgserver.start(self.work, fsync=True,
                                     settings={"synchronous_commit": "on"})
            log(f"  postgres: PID {self.pg.pid}, port {self.pg.port}, fsync on, "
                f"synchronous_commit on")
            store = f"backend = postgresql\nconninfo = {self.pg.conninfo}\n"
        else:
            self.db = os.path.join(self.work, "cinemon.db")
            store = f"backend = sqlite\npath = {self.db}\n"
        store += "".join(f"{kv}\n" for kv in self.args.store_opt)
        rules = (f"enabled = true\ndir = {os.path.join(ROOT, 'collector', 'rules')}\n"
                 if self.args.rules else "enabled = false\n")
        self.ini = os.path.join(self.work, "collector.ini")
        with open(self.ini, "w") as f:
            f.write(f"[collector]\nlisten = 127.0.0.1:{self.port}\nthreads = 4\n"
                    f"log_level = warn\n\n[store]\n{store}\n[rules]\n{rules}\n"
                    f"[access]\nanonymous_read = true\n")
        for w in range(WRITERS):
            agent = f"CN-9900000{w}"
            r = subprocess.run([self.exe, "-c", self.ini, "token", "add", "--agent", agent,
                                "--site", agent], capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                raise BenchError(f"token add: {r.stderr.strip()}")
            self.tokens.append(r.stdout.strip())
        self.spawn([self.exe, "-c", self.ini], "cinemon-collector")
        wait_http(self.proc, self.port, "/healthz", (200,), "cinemon-collector")

    def writer_headers(self, w):
        return {"Authorization": f"Bearer {self.tokens[w]}", "Content-Type": "application/json",
                "Content-Encoding": "gzip"}

    def check(self, status, body):
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        if b'"duplicate"' in body or b'"ack"' not in body:
            return f"not a fresh acknowledgement: {body[:200]!r}"
        return None

    def pg_pids(self):
        return [self.pg.pid] + child_pids(self.pg.pid) if self.pg else []

    def cpu(self):
        t = proc_cpu(self.proc.pid)
        self.cpu_collector = t
        if self.pg:
            t += proc_cpu(self.pg.pid, children=True)
            t += sum(proc_cpu(p) for p in child_pids(self.pg.pid))
        return t

    def written(self):
        return io_written(self.proc.pid) + sum(io_written(p) for p in self.pg_pids())

    def mem_begin(self):
        reset_hwm(self.proc.pid)
        self.pg_peak = 0
        self.mem_sample()

    def mem_sample(self):
        if self.pg:
            self.pg_peak = max(self.pg_peak, sum(pss_kb(p) for p in self.pg_pids()))

    def mem_peak_kb(self):
        self.coll_peak = status_kb(self.proc.pid, "VmHWM")
        return self.coll_peak + self.pg_peak

    def mem_note(self):
        if not self.pg:
            return ""
        return (f"collector {self.coll_peak / 1024:.0f} MB + PostgreSQL "
                f"{self.pg_peak / 1024:.0f} MB (PSS of its processes, shared_buffers 32MB)")

    def samples_held(self):
        st, body = http_call(self.port, "GET", "/api/v1/agents")
        if st != 200:
            raise BenchError(f"GET /api/v1/agents: HTTP {st}")
        rows = json.loads(body)["data"]
        return sum(int(a.get("samples", 0)) for a in rows if a.get("id", "").startswith("CN-99"))

    def disk_bytes(self):
        """SQLite: stop the collector (closing the store checkpoints the WAL), then the files.
        PostgreSQL: CHECKPOINT, then the data directory without pg_wal (recycled segments up
        to max_wal_size, not proportional to the data held; its size goes into the notes)."""
        if self.backend == "sqlite":
            self.stop()
            return du(*(p for p in (self.db, self.db + "-wal", self.db + "-shm")
                        if os.path.exists(p)))
        psql = os.path.join(str(self.pg.bindir), "psql")
        r = subprocess.run([psql, self.pg.conninfo, "-qAtc", "CHECKPOINT"], capture_output=True,
                           text=True, timeout=600)
        if r.returncode != 0:
            raise BenchError(f"CHECKPOINT: {r.stderr.strip()}")
        data = str(self.pg.datadir)
        wal = du(os.path.join(data, "pg_wal"))
        self.disk_note = f"PostgreSQL data directory without pg_wal; pg_wal {wal / 2**20:,.0f} MiB"
        return du(data) - wal

    def stop(self):
        super().stop()
        if self.pg:
            try:
                self.pg.stop()
            except pgserver.PgServerError as e:
                log(f"  {e}")
            self.pg = None


class Influx(Store):
    key = "influxdb"
    name = "InfluxDB 1.x"
    fmt = "influx"
    path = "/write?db=bench&precision=ms"

    @staticmethod
    def missing(args):
        return None if shutil.which("influxd") else "not installed (apt-get install influxdb)"

    def start(self):
        self.port = free_port()
        rpc = free_port()
        d = self.work
        conf = os.path.join(d, "influxdb.conf")
        with open(conf, "w") as f:
            f.write(f'''reporting-enabled = false
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  pprof-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
  suppress-logo = true
''')
        self.spawn(["influxd", "-config", conf], "influxd")
        wait_http(self.proc, self.port, "/ping", (204,), "influxd")
        st, body = http_call(self.port, "POST", "/query?q=CREATE+DATABASE+bench")
        if st != 200:
            raise BenchError(f"CREATE DATABASE: HTTP {st} {body[:200]!r}")
        self.version = influx_version()

    def writer_headers(self, w):
        return {"Content-Type": "text/plain; charset=utf-8", "Content-Encoding": "gzip"}

    def samples_held(self):
        st, body = http_call(self.port, "GET", "/debug/vars")
        for k, v in json.loads(body).items():
            if k.startswith("write") and isinstance(v, dict) and v.get("name") == "write":
                return int(v["values"].get("pointReq", 0))
        raise BenchError("/debug/vars has no write statistics")

    def disk_bytes(self):
        """After a clean stop: data, WAL and meta (compactions of the last minutes may
        still have shrunk it later)."""
        self.stop()
        return du(self.work + "/data", self.work + "/wal", self.work + "/meta")


class Prometheus(Store):
    key = "prometheus"
    name = "Prometheus"
    fmt = "prom"
    path = "/api/v1/write"

    @staticmethod
    def missing(args):
        return None if shutil.which("prometheus") else "not installed (apt-get install prometheus)"

    def start(self):
        self.port = free_port()
        conf = os.path.join(self.work, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1m\nscrape_configs: []\n")
        self.tsdb = os.path.join(self.work, "tsdb")
        self.spawn(["prometheus", f"--config.file={conf}", f"--storage.tsdb.path={self.tsdb}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-remote-write-receiver", "--log.level=warn"], "prometheus")
        wait_http(self.proc, self.port, "/-/ready", (200,), "prometheus")

    def writer_headers(self, w):
        return {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                "X-Prometheus-Remote-Write-Version": "0.1.0"}

    def samples_held(self):
        st, body = http_call(self.port, "GET", "/metrics")
        n = 0
        for line in body.decode().splitlines():
            if line.startswith("prometheus_tsdb_head_samples_appended_total"):
                n += int(float(line.rsplit(None, 1)[1]))
        return n

    def disk_bytes(self):
        """After a clean stop: blocks, head chunks and WAL."""
        self.stop()
        return du(self.tsdb)


def influx_version():
    try:
        return subprocess.run(["influxd", "version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except OSError:
        return ""


def tool_version(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return ""


# ---------------------------------------------------------------- the requests

class Stream:
    """What one writer sends in one phase: (body, samples) pairs from ingestgen, either read as
    they come through a pipe (preload) or all read into memory before the phase (measured)."""

    def __init__(self, args, fmt, points, w, batches, rnd, seq, t0, into_file=None):
        self.argv = [args.ingestgen, "--format", fmt, "--points", str(points), "--writer",
                     str(w), "--batches", str(batches), "--round", str(rnd), "--seq", str(seq),
                     "--t0", str(t0), "--step", str(STEP_MS), "--series", str(SERIES)]
        self.proc = None
        self.items = None
        if into_file:
            with open(into_file, "wb") as f:
                r = subprocess.run(self.argv, stdout=f, stderr=subprocess.PIPE)
            if r.returncode != 0:
                raise BenchError(f"ingestgen: {r.stderr.decode().strip()}")
            with open(into_file, "rb") as f:
                data = f.read()
            os.unlink(into_file)
            self.items, o = [], 0
            while o < len(data):
                n, s = struct.unpack_from("<II", data, o)
                self.items.append((data[o + 8:o + 8 + n], s))
                o += 8 + n
            self.bytes = len(data)
        else:
            self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)

    def __iter__(self):
        if self.items is not None:
            yield from self.items
            return
        f = self.proc.stdout
        while True:
            h = f.read(8)
            if len(h) < 8:
                break
            n, s = struct.unpack("<II", h)
            yield f.read(n), s

    def close(self):
        if self.proc:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()
            self.proc.stderr.close()


def send(store, streams, duration=None):
    """Each writer sends its stream, one request at a time, until it ends or duration seconds
    have passed. Returns (acknowledged samples, requests, seconds, per-writer request counts,
    client CPU seconds); raises BenchError on the first refused request."""
    acked = [0] * len(streams)
    reqs = [0] * len(streams)
    errors = []
    t_end = [0.0] * len(streams)
    barrier = threading.Barrier(len(streams) + 1)
    deadline = [None]

    def run(w):
        c = http.client.HTTPConnection("127.0.0.1", store.port, timeout=600)
        hdrs = store.writer_headers(w)
        try:
            c.connect()
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            barrier.wait()
            for body, n in streams[w]:
                if deadline[0] and time.monotonic() >= deadline[0]:
                    break
                c.request("POST", store.path, body=body, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                why = store.check(r.status, data)
                if why:
                    errors.append(f"writer {w}, request {reqs[w] + 1}: {why}")
                    break
                acked[w] += n
                reqs[w] += 1
                if errors:
                    break
        except (OSError, http.client.HTTPException, threading.BrokenBarrierError) as e:
            errors.append(f"writer {w}: {type(e).__name__}: {e}")
            try:
                barrier.abort()
            except threading.BrokenBarrierError:
                pass
        finally:
            t_end[w] = time.monotonic()
            c.close()

    ts = [threading.Thread(target=run, args=(w,), daemon=True) for w in range(len(streams))]
    for t in ts:
        t.start()
    cpu0 = time.process_time()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    t0 = time.monotonic()
    if duration:
        deadline[0] = t0 + duration
    while any(t.is_alive() for t in ts):
        store.mem_sample()
        for t in ts:
            t.join(1.0 / len(ts))
    client_cpu = time.process_time() - cpu0
    if errors:
        raise BenchError("; ".join(errors))
    return sum(acked), sum(reqs), max(t_end) - t0, reqs, client_cpu


# ---------------------------------------------------------------- one store

class Run:
    """The phases of one store; the figures go into self.rows."""

    def __init__(self, store, args, t0):
        self.s = store
        self.args = args
        self.t0 = t0
        self.rnd = [0] * WRITERS  # next round per writer
        self.seq = [1] * WRITERS  # next cinemon seq per writer
        self.total = 0  # acknowledged samples
        self.rows = {}  # points -> figures
        self.notes = []

    def advance(self, points, reqs):
        groups = SERIES * points // SAMPLES
        for w in range(WRITERS):
            self.seq[w] += reqs[w]
            rounds = reqs[w] if points == 1 else -(-reqs[w] // groups) * points
            self.rnd[w] += rounds

    def align(self, points):
        for w in range(WRITERS):
            self.rnd[w] = -(-self.rnd[w] // points) * points

    def streamed(self, points, batches, what):
        """An untimed phase through pipes from ingestgen; returns samples/s."""
        self.align(points)
        streams = [Stream(self.args, self.s.fmt, points, w, batches, self.rnd[w], self.seq[w],
                          self.t0) for w in range(WRITERS)]
        try:
            n, _, secs, reqs, _ = send(self.s, streams)
        finally:
            for st in streams:
                st.close()
        for w, st in enumerate(streams):
            if st.proc.returncode not in (0, None) and reqs[w] < batches:
                raise BenchError(f"ingestgen: {st.proc.stderr.read().decode().strip()}")
        self.advance(points, reqs)
        self.total += n
        rate = n / secs if secs > 0 else 0
        log(f"  {what}: {n:,} samples in {secs:.1f} s ({rate:,.0f}/s, encoding at the same "
            f"time)")
        return rate

    def measured(self, points, rate_hint):
        """Encode about 3 x duration of requests per writer (the sizing rate was measured while
        encoding), then send for duration s."""
        self.align(points)
        groups = SERIES * points // SAMPLES
        want = rate_hint * self.args.duration * 3.0 / (WRITERS * SAMPLES)
        batches = int(min(max(want, 4 * groups), self.args.max_batches))
        batches = -(-batches // groups) * groups
        t = time.monotonic()
        streams = [Stream(self.args, self.s.fmt, points, w, batches, self.rnd[w], self.seq[w],
                          self.t0, into_file=os.path.join(self.s.work, f"req-{w}.bin"))
                   for w in range(WRITERS)]
        mb = sum(st.bytes for st in streams) / 1e6
        log(f"  encoded {WRITERS} x {batches} requests ({mb:.0f} MB) in "
            f"{time.monotonic() - t:.0f} s")
        load0 = os.getloadavg()[0]
        self.s.mem_begin()
        cpu0, wr0 = self.s.cpu(), self.s.written()
        coll0 = getattr(self.s, "cpu_collector", 0.0)
        n, nreq, secs, reqs, ccpu = send(self.s, streams, self.args.duration)
        cpu, wr = self.s.cpu() - cpu0, self.s.written() - wr0
        coll = getattr(self.s, "cpu_collector", 0.0) - coll0
        peak = self.s.mem_peak_kb()
        self.advance(points, reqs)
        self.total += n
        if min(reqs) >= batches:
            self.notes.append(f"{points} pt: ran out of encoded requests after {secs:.1f} s")
        row = {"rate": n / secs, "samples": n, "secs": secs, "cpu_per_m": cpu / (n / 1e6),
               "rss_mb": peak / 1024, "written": wr / n,
               "cpu_note": (f"collector {coll / (n / 1e6):.2f} + PostgreSQL "
                            f"{(cpu - coll) / (n / 1e6):.2f}") if getattr(self.s, "pg", None)
               else "", "mem_note": self.s.mem_note(), "requests": nreq,
               "client_cpu_per_m": ccpu / (n / 1e6), "load": (load0, os.getloadavg()[0])}
        self.rows[points] = row
        log(f"  {points} point(s)/series: {n:,} samples in {secs:.1f} s = {row['rate']:,.0f}/s, "
            f"CPU {row['cpu_per_m']:.2f} s/M, written {row['written']:.0f} B/sample, "
            f"peak RSS {row['rss_mb']:.0f} MB"
            f"{' (' + row['mem_note'] + ')' if row['mem_note'] else ''}, load "
            f"{load0:.1f}->{row['load'][1]:.1f}")
        del streams
        return row["rate"]

    def run(self):
        a = self.args
        log(f"== {self.s.name}")
        self.s.start()
        pre_rounds = -(-a.preload // (WRITERS * SERIES) // 10) * 10
        rate10 = self.streamed(10, pre_rounds, "preload (10 points/series)")
        rate1 = self.streamed(1, a.calib_rounds, "sizing run (1 point/series)")
        self.measured(1, rate1)
        self.measured(10, rate10)
        held = self.s.samples_held()
        if held != self.total:
            self.notes.append(f"store counts {held:,} samples, {self.total:,} acknowledged")
        self.held = self.total
        self.disk = self.s.disk_bytes()
        self.bytes_per_sample = self.disk / self.total
        log(f"  holds {self.total:,} samples (store's own count {held:,}); "
            f"{self.disk / 2**20:,.0f} MiB on disk = {self.bytes_per_sample:.1f} bytes/sample")


# ---------------------------------------------------------------- report

def fmt_ratio(x):
    return "-" if x is None else f"{x:.2f}x"


def report(args, runs, missing, failed, versions, others):
    print()
    print("Ingest benchmark (bench/ingest_bench.py" + (" --quick" if args.quick else "") + ")")
    print(f"  {WRITERS} writers, one request of {SAMPLES:,} samples in flight each, acknowledged "
          f"only when durable; {WRITERS * SERIES:,} series (per writer 20 halls x 5 devices x "
          f"50); each store preloaded with >= {args.preload:,} samples through its own HTTP "
          f"path before measuring; {args.duration:g} s per phase; CPU {os.cpu_count()} cores, "
          f"client on the same host")
    for k, v in versions.items():
        if v:
            print(f"  {k}: {v}")
    print()
    influx = runs.get("influx")
    hdr = (f"{'store':<16}{'points/series':>14}{'samples/s':>12}{'x Influx':>10}{'CPU s/M':>9}"
           f"{'peak RSS MB':>13}{'x Influx':>10}{'bytes/sample':>14}{'written/sample':>16}")
    print(hdr)
    print("-" * len(hdr))
    order = [("sqlite", "cinemon SQLite"), ("pg", "cinemon PG"), ("influx", "InfluxDB 1.x"),
             ("prom", "Prometheus")]
    for key, name in order:
        if key in missing:
            print(f"{name:<16}  {missing[key]}")
            continue
        if key in failed:
            print(f"{name:<16}  FAILED: {failed[key][:300]}")
            continue
        r = runs.get(key)
        if not r:
            continue
        for pts in (1, 10):
            row = r.rows.get(pts)
            if not row:
                continue
            ir = influx.rows.get(pts) if influx else None
            rr = row["rate"] / ir["rate"] if ir else None
            mr = row["rss_mb"] / ir["rss_mb"] if ir else None
            print(f"{name:<16}{pts:>14}{row['rate']:>12,.0f}{fmt_ratio(rr):>10}"
                  f"{row['cpu_per_m']:>9.2f}{row['rss_mb']:>13.0f}{fmt_ratio(mr):>10}"
                  f"{r.bytes_per_sample:>14.1f}{row['written']:>16.0f}")
    print()
    print("Notes:")
    for key, name in order:
        r = runs.get(key)
        if not r:
            continue
        for pts in (1, 10):
            row = r.rows.get(pts)
            if row and row["mem_note"]:
                print(f"  {name}, {pts} pt: CPU s/M = {row['cpu_note']}; peak RSS = "
                      f"{row['mem_note']}")
        for n in r.notes:
            print(f"  {name}: {n}")
        if getattr(r.s, "disk_note", ""):
            print(f"  {name}: on disk = {r.s.disk_note}")
        if key.startswith("cinemon") and args.store_opt:
            print(f"  {name}: [store] " + "; ".join(args.store_opt))
        cc = [f"{r.rows[p]['client_cpu_per_m']:.2f}" for p in (1, 10) if p in r.rows]
        print(f"  {name}: {r.held:,} samples held, {r.disk / 2**20:,.0f} MiB on disk; client "
              f"CPU {'/'.join(cc)} s/M; load average during the phases "
              + ", ".join(f"{r.rows[p]['load'][0]:.1f}->{r.rows[p]['load'][1]:.1f}"
                          for p in (1, 10) if p in r.rows))
    if "prom" in runs:
        print(f"  Prometheus durability: {PROM_DURABILITY}.")
    if others:
        print(f"  Running beside the benchmark (not started by it): {', '.join(others[:8])}")
    print("  cinemon: 200 {\"ack\"} after the commit (SQLite synchronous=FULL; PostgreSQL "
          "fsync on, synchronous_commit on); InfluxDB: 204 after the WAL fsync "
          "(wal-fsync-delay 0s).")
    print()
    print("Goals (cinemon against InfluxDB: rate >= 1.0x with 1 point per series and >= 2.0x "
          "with 10, on both backends, peak RSS <= 1/3):")
    if not influx:
        why = missing.get("influx") or failed.get("influx", "not run")
        print(f"  cannot be judged: InfluxDB {why}")
        return
    for key, name in order[:2]:
        r = runs.get(key)
        if not r:
            why = missing.get(key) or failed.get(key, "not run")
            print(f"  {name}: not judged ({why})")
            continue
        for pts in (1, 10):
            row, ir = r.rows.get(pts), influx.rows.get(pts)
            if not row or not ir:
                continue
            rr, mr = row["rate"] / ir["rate"], row["rss_mb"] / ir["rss_mb"]
            print(f"  {name}, {pts:>2} point(s)/series: rate {rr:.2f}x (goal "
                  f"{GOAL_RATE[pts]:.1f}x) {'met' if rr >= GOAL_RATE[pts] else 'NOT MET'}; "
                  f"memory {mr:.2f}x (goal <= 0.33x) {'met' if mr <= GOAL_RSS else 'NOT MET'}")


def json_report(path, args, runs, missing, failed, versions, others, started, load0):
    """--json FILE: the table's figures in bench/report.py's format, ratios against InfluxDB."""
    import re
    sys.path.insert(0, HERE)
    import report as rep  # noqa: E402  (the format and its writer)

    def short(v):
        m = re.search(r"\d+\.\d+", v or "")
        return f" {m.group(0)}" if m else ""
    names = {"sqlite": "cinemon SQLite", "pg": "cinemon PG",
             "influx": "InfluxDB" + short(versions.get("InfluxDB")),
             "prom": "Prometheus" + short(versions.get("Prometheus"))}
    influx = runs.get("influx")
    rows, notes = [], []
    for key in ("sqlite", "pg", "influx", "prom"):
        if key in missing or key in failed:
            why = missing.get(key) or f"FAILED: {failed[key][:200]}"
            rows.append({"case": "1 point per series", "system": names[key],
                         "metric": "samples/s", "value": None, "unit": "samples/s",
                         "better": "higher", "note": why})
            continue
        r = runs.get(key)
        if not r:
            continue
        for pts in (1, 10):
            row = r.rows.get(pts)
            if not row:
                continue
            case = f"{pts} point{'s' if pts > 1 else ''} per series"
            for metric, v, unit, better in (
                    ("samples/s", row["rate"], "samples/s", "higher"),
                    ("CPU per million samples", row["cpu_per_m"], "CPU-s", "lower"),
                    ("peak RSS", row["rss_mb"], "MB", "lower"),
                    ("bytes on disk per sample", r.bytes_per_sample, "B", "lower"),
                    ("bytes written per sample", row["written"], "B", "lower")):
                out = {"case": case, "system": names[key], "metric": metric,
                       "value": round(v, 3), "unit": unit, "better": better}
                if influx and influx.rows.get(pts):
                    out["ratio_vs"] = names["influx"]
                if key == "prom":
                    out["note"] = "not durable: no fsync before the answer"
                rows.append(out)
            if row["mem_note"]:
                notes.append(f"{names[key]}, {pts} pt: CPU s/M = {row['cpu_note']}; peak RSS = "
                             f"{row['mem_note']}")
        for n in r.notes:
            notes.append(f"{names[key]}: {n}")
        notes.append(f"{names[key]}: {r.held:,} samples held; load average during the phases "
                     + ", ".join(f"{r.rows[p]['load'][0]:.1f}->{r.rows[p]['load'][1]:.1f}"
                                 for p in (1, 10) if p in r.rows))
    # one block per shape, then per metric, the stores side by side
    cases = ["1 point per series", "10 points per series"]
    metrics = ["samples/s", "CPU per million samples", "peak RSS", "bytes on disk per sample",
               "bytes written per sample"]
    rows.sort(key=lambda r: (cases.index(r["case"]), metrics.index(r["metric"])))
    if "prom" in runs:
        notes.append(f"Prometheus durability: {PROM_DURABILITY}.")
    if others:
        notes.append(f"Running beside the benchmark (not started by it): {', '.join(others[:8])}")
    notes.append(f"{WRITERS} writers, {SAMPLES:,} samples per request, each store preloaded with "
                 f">= {args.preload:,} samples, {args.duration:g} s per phase; "
                 + "; ".join(f"{k} {v}" for k, v in versions.items() if v))
    rep.write_results(path, "ingest", rows, started=started, load=[load0, os.getloadavg()[0]],
                      notes=notes, title="Durable ingest (SQLite, PostgreSQL) against "
                                         "InfluxDB and Prometheus")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--quick", action="store_true", help="1 M samples preloaded, 8 s phases")
    ap.add_argument("--store-opt", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra [store] line of cinemon's collector.ini (tuning runs)")
    ap.add_argument("--preload", type=int, default=20_000_000, help="samples in each store first")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per measured phase")
    ap.add_argument("--only", default="sqlite,pg,influx,prom")
    ap.add_argument("--rules", action="store_true", help="collector with the shipped rules on")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--max-batches", type=int, default=6000, help=argparse.SUPPRESS)
    ap.add_argument("--json", metavar="FILE", help="also write the figures to FILE "
                    "(bench/report.py's format)")
    args = ap.parse_args()
    started, load0 = time.time(), os.getloadavg()[0]
    if args.quick:
        args.preload, args.duration = 1_000_000, 8.0
    args.calib_rounds = 20 if args.quick else 30
    args.build = os.path.abspath(args.build)
    args.ingestgen = os.path.join(args.build, "bench", "ingestgen")
    if not os.access(args.ingestgen, os.X_OK):
        raise SystemExit(f"{args.ingestgen} is not built (make)")
    only = [k.strip() for k in args.only.split(",") if k.strip()]

    missing, failed, runs = {}, {}, {}
    versions = {}
    stores = []
    for key in ("influx", "prom", "sqlite", "pg"):  # InfluxDB first: the reference
        if key not in only:
            continue
        if key == "influx":
            why = Influx.missing(args)
            if not why:
                versions["InfluxDB"] = influx_version()
        elif key == "prom":
            why = Prometheus.missing(args)
            if not why:
                versions["Prometheus"] = tool_version(["prometheus", "--version"])
        else:
            why = Cinemon.missing(args, key)
        if why:
            missing[key] = why
        else:
            stores.append(key)
    if "pg" in stores:
        versions["PostgreSQL"] = tool_version([str(pgserver.bindir() / "postgres"), "--version"])
    import sqlite3
    versions["SQLite"] = sqlite3.sqlite_version

    # timestamps: the preload ends about now; the measured phases run on into the next hours
    t0 = int(time.time() * 1000) - (args.preload // (WRITERS * SERIES) + 10) * STEP_MS
    others = foreign_servers()
    if others:
        log("warning: already running, and taking CPU from the measured store: "
            + ", ".join(others[:8]))
    work = tempfile.mkdtemp(prefix="cinemon-ingestbench-")
    os.chmod(work, 0o755)  # PostgreSQL runs as its own user beneath it
    log(f"work folder {work}")
    try:
        for key in stores:
            store = {"influx": lambda: Influx(work, args), "prom": lambda: Prometheus(work, args),
                     "sqlite": lambda: Cinemon(work, args, "sqlite"),
                     "pg": lambda: Cinemon(work, args, "pg")}[key]()
            r = Run(store, args, t0)
            try:
                r.run()
                runs[key] = r
            except (BenchError, pgserver.PgServerError, OSError) as e:
                failed[key] = str(e)
                log(f"  FAILED: {e}\n{store.log_tail()}")
            finally:
                store.stop()
                if not args.keep:
                    shutil.rmtree(store.work, ignore_errors=True)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(args, runs, missing, failed, versions, others)
    if args.json:
        json_report(args.json, args, runs, missing, failed, versions, others, started, load0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

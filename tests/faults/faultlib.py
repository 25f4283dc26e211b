"""faultlib.py - what the fault suite (issue 3, "Nothing lost, nothing twice") needs on top of
tests/e2e/harness.py: one agent + collector stack whose processes can be stopped, killed and
restarted on the same state, the agent's ledger, the collector's view of what it stored
(/api/v1/agents, /api/v1/gaps, the audit table of its SQLite database), the exact-count
verdict, a spool segment reader for corrupting files, a fault-injecting HTTP proxy and a tiny
tmpfs.

Counting rules
  produced  the agent's ledger: one line "seq samples" per spooled batch record, written
            before the record; for each seq the LAST complete line is the truth.
  stored    the collector's audit table: one row per stored request (agent, first_seq,
            last_seq, samples); ranges of one agent never overlap; /api/v1/agents gives
            last_seq, batches and samples per agent.
  lost      /api/v1/gaps?agent=: ranges the agent reported as lost, with a reason.
Every ledger seq must be stored exactly once or (where the scenario allows it) lie inside a
reported gap, never both; the samples must add up exactly.

Standard library only; runs under /usr/bin/python3.
"""

import http.client
import http.server
import json
import os
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

_E2E = Path(__file__).resolve().parents[1] / "e2e"
if str(_E2E) not in sys.path:
    sys.path.insert(0, str(_E2E))

import harness  # noqa: E402
from harness import ProcessDied, Skip, wait_until  # noqa: E402,F401

SITE = "cinema-faults"
AGENT = "agent-faults"


def slow():
    """Time factor: sanitizer builds run slower."""
    return 2.5 if harness.ASAN else 1.0


def note(msg):
    """Print msg (indented) when the runner was given -v (CINEMON_FAULT_VERBOSE=1)."""
    if os.environ.get("CINEMON_FAULT_VERBOSE") == "1":
        print("    " + msg, flush=True)


def seed_rng(label):
    """A random.Random seeded from CINEMON_FAULT_SEED (or the clock); the seed is returned
    too so a failure message can name it and the run can be repeated."""
    seed = int(os.environ.get("CINEMON_FAULT_SEED") or (time.time_ns() % 1_000_000_007))
    return random.Random(f"{seed}:{label}"), seed


# ---------------------------------------------------------------- devices

# (device id, kind, profile, snmpsim community = recording name)
RECORDED = [
    ("hall1/projector", "projector", "christie-cp-series2", "christie-projector_cp"),
    ("hall2/projector", "projector", "epson-projector", "epson-projector_eb-4770w"),
    ("booth/ups", "ups", "ups-apc", "apc_smt750x-nmc2"),
]


def devices(env=None):
    """A few devices: the real recordings served by snmpsim (when ../shared is present) and
    the machine's snmpd on a loopback port. Started once per test module."""
    devs = []
    if harness.FIXTURES.is_dir():
        port = harness.module_cache("snmpsim", harness.snmpsim)
        devs += [harness.device(i, port, comm, kind=k, profile=p) for i, k, p, comm in RECORDED]
    port = harness.module_cache("snmpd", harness.snmpd)
    devs.append(harness.device("booth/server", port, harness.SNMPD_COMMUNITY, kind="server",
                               profile="generic-snmp-host"))
    return devs


# ---------------------------------------------------------------- ranges

def ranges_text(seqs, limit=12):
    """"1-5, 8, 10-12" for a set of ints (cut after `limit` ranges)."""
    seqs = sorted(seqs)
    out, i = [], 0
    while i < len(seqs):
        j = i
        while j + 1 < len(seqs) and seqs[j + 1] == seqs[j] + 1:
            j += 1
        out.append(str(seqs[i]) if i == j else f"{seqs[i]}-{seqs[j]}")
        i = j + 1
    if len(out) > limit:
        out = out[:limit] + [f"... ({len(out) - limit} more ranges)"]
    return ", ".join(out) or "(none)"


def in_ranges(seq, ranges):
    return any(a <= seq <= b for a, b in ranges)


# ---------------------------------------------------------------- ledger

def read_ledger(path):
    """{seq: samples} from the agent's ledger; the last complete line for a seq wins. A line
    without its newline (torn by SIGKILL) is ignored: its record was never appended."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return {}
    led = {}
    lines = data.split(b"\n")
    for n, ln in enumerate(lines[:-1], 1):  # lines[-1]: after the last newline (torn or "")
        parts = ln.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[0].isdigit() or not parts[1].isdigit():
            raise AssertionError(f"{path}:{n}: not a ledger line 'seq samples': {ln!r}")
        led[int(parts[0])] = int(parts[1])
    return led


# ---------------------------------------------------------------- spool segments

REC_HDR = struct.Struct("<4sIIIQ")  # magic, payload length, crc32c, type, seq
MAGICS = (b"CMR1", b"1RMC")         # "CMR1" as bytes, or as a u32 'CMR1' little-endian
REC_BATCH, REC_GAP, REC_BATCH_GZ = 1, 2, 3  # record types of common/spool.h
BATCH_TYPES = (REC_BATCH, REC_BATCH_GZ)


class SpoolRecord:
    def __init__(self, path, offset, length, crc, rtype, seq):
        self.path, self.offset, self.length = path, offset, length
        self.crc, self.type, self.seq = crc, rtype, seq

    @property
    def payload_offset(self):
        return self.offset + REC_HDR.size

    @property
    def end(self):
        return self.offset + REC_HDR.size + self.length

    def __repr__(self):
        return f"<record seq {self.seq} type {self.type} at {self.path.name}+{self.offset}>"


def segments(spool_dir):
    """Segment files seg-<20 digits>.log of a spool folder, oldest first."""
    d = Path(spool_dir)
    segs = [p for p in d.glob("seg-*.log") if p.stem[4:].isdigit()]
    return sorted(segs, key=lambda p: int(p.stem[4:]))


def read_segment(path):
    """The records of one segment file, in order, up to the zero magic of the pre-allocated
    end, the end of the file or the first header that does not parse."""
    data = Path(path).read_bytes()
    recs, off = [], 0
    while off + REC_HDR.size <= len(data):
        magic, length, crc, rtype, seq = REC_HDR.unpack_from(data, off)
        if magic == b"\0\0\0\0" or magic not in MAGICS:
            break
        if off + REC_HDR.size + length > len(data):
            break
        recs.append(SpoolRecord(Path(path), off, length, crc, rtype, seq))
        off += REC_HDR.size + length
    return recs


def spool_records(spool_dir):
    """Every readable record of every segment, oldest first."""
    out = []
    for seg in segments(spool_dir):
        out += read_segment(seg)
    return out


def spool_ack(spool_dir):
    """The acknowledged seq in the spool's ack file (0 when absent or unreadable)."""
    try:
        txt = (Path(spool_dir) / "ack").read_bytes()
    except OSError:
        return 0
    s = txt.strip()
    if s.isdigit():
        return int(s)
    if len(txt) == 8:
        return struct.unpack("<Q", txt)[0]
    return 0


# ---------------------------------------------------------------- the stack

class Stack:
    """One collector (fixed port, one SQLite database) and one agent (one state folder,
    spool and ledger) that can each be stopped, killed and started again on the same state.
    Everything started is registered in env, which stops it when the case ends."""

    def __init__(self, env, devs=None, interval="300ms", upload_interval="300ms",
                 collector_url=None, spool_dir=None, spool=None, upload=None):
        self.env = env
        self.port = harness.free_port("tcp")
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.db = env.path("cinemon.db")
        self.ini = harness.write_collector_ini(env, self.port, db=str(self.db))
        self.token = harness.token_add(env, self.ini, AGENT, SITE)
        self.op_token = harness.operator_add(env, self.ini, "faults-national")  # API reads
        self.coll = None
        self.agent = None
        self.problems = []
        self.devices = devs if devs is not None else devices(env)
        self.ledger_path = env.path("ledger.txt")
        self.spool_dir = Path(spool_dir) if spool_dir else env.path("state", "spool")
        extra = {"interval": interval, "timeout": "400ms", "retries": "0",
                 "upload.interval": upload_interval, "upload.timeout": "5s",
                 "upload.backoff_base": "50ms", "upload.backoff_cap": "1s",
                 "spool.dir": str(self.spool_dir), "spool.ledger": str(self.ledger_path),
                 "spool.fsync": "cycle", "spool.segment_bytes": "64k",
                 "spool.max_bytes": "256M", "spool.min_free_bytes": "0"}
        for k, v in (spool or {}).items():
            extra["spool." + k] = v
        for k, v in (upload or {}).items():
            extra["upload." + k] = v
        self.agent_extra = extra
        self.retarget_agent(collector_url or self.base_url)

    def retarget_agent(self, url):
        """(Re)write agent.ini with collector_url = url (takes effect at the next start)."""
        self.agent_url = url
        self.agent_ini = harness.write_agent_ini(self.env, self.devices, url, self.token, SITE,
                                                 AGENT, extra=self.agent_extra)

    # ---- collector

    def start_collector(self, timeout=30):
        """Start the collector on the same port and database; wait for /healthz."""
        assert self.coll is None or not self.coll.alive(), "collector already running"
        exe = harness.binary("cinemon-collector")
        proc = self.env.start("collector", [exe, "-c", self.ini], check_exit=True)
        self.coll = proc

        def ready():
            if not proc.alive():
                raise ProcessDied(f"collector exited ({proc.popen.returncode}) at start-up:\n"
                                  f"{harness._tail(proc.stderr())}")
            try:
                return harness.http_get(self.base_url + "/healthz", timeout=2)[0] == 200
            except OSError:
                return False
        wait_until(ready, timeout * slow(), 0.05, "collector /healthz after (re)start")
        return proc

    def stop_collector(self):
        """SIGTERM; a bad exit or a sanitizer report fails the case."""
        if self.coll is not None:
            prob = self.coll.stop()
            assert not prob, f"stopping the collector: {prob}\n{harness._tail(self.coll.stderr())}"

    def kill_collector(self):
        if self.coll is not None:
            self._kill(self.coll)

    def collector_up(self):
        return self.coll is not None and self.coll.alive()

    # ---- agent

    def start_agent(self):
        """Start the agent on the same config, state, spool and ledger."""
        assert self.agent is None or not self.agent.alive(), "agent already running"
        exe = harness.binary("cinemon-agent")
        self.agent = self.env.start("agent", [exe, "-c", self.agent_ini], check_exit=True)
        return self.agent

    def check_agent_alive(self, what=""):
        if self.agent is None or not self.agent.alive():
            rc = self.agent.popen.returncode if self.agent else None
            raise AssertionError(f"the agent is not running{(' ' + what) if what else ''} "
                                 f"(exit {rc}):\n"
                                 f"{harness._tail(self.agent.stderr()) if self.agent else ''}")

    def stop_agent(self, grace=20):
        """SIGTERM and wait (the agent may upload what is left first); exit must be clean."""
        p = self.agent
        if p is None or not p.alive():
            if p is not None and p.check_exit and p.popen.returncode not in (0, -signal.SIGTERM):
                raise AssertionError(f"the agent had exited with {p.popen.returncode}:\n"
                                     f"{harness._tail(p.stderr())}")
            return
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.popen.wait(grace * slow())
        except subprocess.TimeoutExpired:
            self._kill(p)
            raise AssertionError(f"the agent did not exit within {grace}s of SIGTERM:\n"
                                 f"{harness._tail(p.stderr())}")
        prob = p.stop()
        assert not prob, f"stopping the agent: {prob}\n{harness._tail(p.stderr())}"

    def kill_agent(self):
        if self.agent is not None:
            self._kill(self.agent)

    def _kill(self, proc):
        """SIGKILL the process group; a killed process's exit status is expected."""
        proc.check_exit = False
        rc = proc.popen.poll()
        if rc is not None:
            raise AssertionError(f"{proc.name} had exited by itself ({rc}) before it was "
                                 f"killed:\n{harness._tail(proc.stderr())}")
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.popen.wait(10)
        except subprocess.TimeoutExpired:
            pass
        san = harness.sanitizer_problem(proc.stderr())
        if san:
            self.problems.append(f"{proc.name}: {san} ({proc.stderr_path})")
        assert not self.problems, "\n".join(self.problems)

    # ---- what the agent produced

    def ledger(self):
        return read_ledger(self.ledger_path)

    def ledger_max(self):
        led = self.ledger()
        return max(led) if led else 0

    def wait_ledger(self, more, timeout=20, since=None, what="the agent to spool records"):
        """Wait until the ledger holds `more` seqs above `since` (default: its current max);
        the agent must stay alive. Returns the new max seq."""
        base = self.ledger_max() if since is None else since

        def grown():
            self.check_agent_alive(f"while waiting for {what}")
            m = self.ledger_max()
            return m if m >= base + more else None
        return wait_until(grown, timeout * slow(), 0.05,
                          f"{what} ({more} ledger seqs above {base}; ledger {self.ledger_path})")

    # ---- what the collector stored

    def agent_row(self):
        """The collector's /api/v1/agents entry of our agent, or None."""
        s, j = harness.http_get(self.base_url + "/api/v1/agents", timeout=5,
                                token=self.op_token)
        assert s == 200, f"GET /api/v1/agents: status {s}: {j!r}"
        data = j.get("data") if isinstance(j, dict) else j
        assert isinstance(data, list), f"GET /api/v1/agents: no data list: {j!r}"
        for a in data:
            if a.get("id") == AGENT:
                return a
        return None

    def last_seq(self):
        a = self.agent_row()
        return int(a.get("last_seq") or 0) if a else 0

    def gaps(self):
        """[(from_seq, to_seq, reason)] the collector recorded for our agent."""
        s, j = harness.http_get(self.base_url + "/api/v1/gaps?agent=" +
                                urllib.parse.quote(AGENT), timeout=5, token=self.op_token)
        assert s == 200, f"GET /api/v1/gaps?agent={AGENT}: status {s}: {j!r}"
        data = j.get("data") if isinstance(j, dict) else j
        assert isinstance(data, list), f"GET /api/v1/gaps: no data list: {j!r}"
        return sorted((int(g["from_seq"]), int(g["to_seq"]), g.get("reason")) for g in data)

    def wait_stored(self, seq, timeout=30, what=None):
        """Wait until the collector's last_seq >= seq (the collector must be up)."""
        def caught_up():
            if self.coll is not None and not self.coll.alive():
                raise ProcessDied(f"collector exited ({self.coll.popen.returncode}):\n"
                                  f"{harness._tail(self.coll.stderr())}")
            return self.last_seq() >= seq
        wait_until(caught_up, timeout * slow(), 0.1,
                   what or f"the collector's last_seq to reach {seq}")

    def audit(self):
        """Rows of the collector's audit table for our agent, in commit order:
        [(first_seq, last_seq, samples or None)]. The table is found by its columns."""
        return read_audit(self.db)

    # ---- the end of a scenario

    def drain(self, timeout=30):
        """Stop the agent with SIGTERM and wait until the collector holds everything the
        ledger lists. Returns the ledger."""
        self.stop_agent()
        led = self.ledger()
        want = max(led) if led else 0

        def caught_up():
            return self.last_seq() >= want
        try:
            wait_until(caught_up, timeout * slow(), 0.1, "drain")
        except AssertionError:
            raise AssertionError(
                f"after the agent stopped, the collector's last_seq is {self.last_seq()} but "
                f"the ledger's last seq is {want}: seqs "
                f"{ranges_text(s for s in led if s > self.last_seq())} never arrived; spool "
                f"holds {ranges_text(r.seq for r in spool_records(self.spool_dir))} "
                f"(ack {spool_ack(self.spool_dir)})") from None
        return led

    def verify(self, gaps_allowed=False, gap_reasons=None, exactly_lost=None):
        """The exact-count verdict (see the module doc). Returns a one-line summary."""
        summary = verify(self.ledger(), self.agent_row(), self.audit(), self.gaps(),
                      gaps_allowed=gaps_allowed, gap_reasons=gap_reasons,
                      exactly_lost=exactly_lost)
        note(summary)
        return summary


# ---------------------------------------------------------------- audit table

AGENT_COLS = ("agent_id", "agent")
LAST_COLS = ("last_seq", "seq", "to_seq")
SAMPLE_COLS = ("samples", "nsamples", "points", "npoints")


TIME_COLS = ("received_ms", "stored_ms", "committed_ms", "created_ms")


def _audit_schema(conn):
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    for t in tables:
        cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')]
        if "first_seq" not in cols or "reason" in cols:
            continue
        last = next((c for c in LAST_COLS if c in cols), None)
        agent = next((c for c in AGENT_COLS if c in cols), None)
        if last and agent:
            return (t, agent, last, next((c for c in SAMPLE_COLS if c in cols), None),
                    next((c for c in TIME_COLS if c in cols), None))
    raise AssertionError(f"no audit table (columns agent_id/agent, first_seq, last_seq) in "
                         f"the collector's database; tables: {', '.join(tables)}")


def read_audit(db):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        t, agent, last, samples, when = _audit_schema(conn)
        sel = f'"{samples}"' if samples else "NULL"
        q = f'SELECT first_seq, "{last}", {sel} FROM "{t}" WHERE "{agent}" = ? ORDER BY '
        # commit order: rowid, else the time it was stored (then first_seq within one ms)
        try:
            rows = conn.execute(q + "rowid", (AGENT,)).fetchall()
        except sqlite3.OperationalError:  # WITHOUT ROWID
            order = f'"{when}", first_seq' if when else "first_seq"
            rows = conn.execute(q + order, (AGENT,)).fetchall()
        return [(int(a), int(b), None if c is None else int(c)) for a, b, c in rows]
    finally:
        conn.close()


# ---------------------------------------------------------------- the verdict

def verify(led, row, audit, gaps, gaps_allowed=False, gap_reasons=None, exactly_lost=None):
    """Exact counts. led {seq: samples}; row the /api/v1/agents entry; audit [(first, last,
    samples)] in commit order; gaps [(from, to, reason)]; exactly_lost: the ledger seqs that
    must be reported lost (None: any). Raises AssertionError listing every discrepancy;
    returns a summary line."""
    problems = []
    assert led, "the ledger is empty: the agent spooled nothing"
    assert row is not None, f"/api/v1/agents has no entry for {AGENT}"
    # 1. stored ranges: in commit order, ascending, never overlapping (none twice, in order)
    stored = set()
    prev = 0
    for i, (a, b, _) in enumerate(audit):
        if a > b:
            problems.append(f"audit row {i}: first_seq {a} > last_seq {b}")
        if a <= prev:
            problems.append(f"audit row {i}: range {a}-{b} is not above the previous "
                            f"last_seq {prev} (stored twice or out of order)")
        prev = max(prev, b)
        stored.update(range(a, b + 1))
    lost = set()
    for a, b, _ in gaps:
        lost.update(range(a, b + 1))
    seqs = set(led)
    both = seqs & stored & lost
    neither = seqs - stored - lost
    if neither:
        problems.append(f"ledger seqs neither stored nor reported lost: {ranges_text(neither)}")
    if both:
        problems.append(f"ledger seqs both stored and reported lost: {ranges_text(both)}")
    if lost & stored:
        problems.append(f"gap ranges overlap stored ranges at seqs {ranges_text(lost & stored)}")
    if not gaps_allowed and gaps:
        problems.append(f"gaps reported where none may be: {gaps}")
    if gap_reasons is not None:
        bad = [g for g in gaps if g[2] not in gap_reasons]
        if bad:
            problems.append(f"gaps with a reason other than {sorted(gap_reasons)}: {bad}")
    if exactly_lost is not None:
        want, got = set(exactly_lost), (seqs & lost) - stored
        if want - got:
            problems.append(f"seqs that were destroyed but are not inside a reported gap: "
                            f"{ranges_text(want - got)} (gaps: {gaps})")
        if got - want:
            problems.append(f"intact seqs reported lost: {ranges_text(got - want)} "
                            f"(gaps: {gaps})")
    # 2. samples: per stored range and in total
    for a, b, n in audit:
        if n is None:
            continue
        want = sum(led.get(s, 0) for s in range(a, b + 1))
        if n != want:
            problems.append(f"audit range {a}-{b}: {n} samples stored, the ledger says {want}")
    produced_stored = sum(n for s, n in led.items() if s in stored)
    produced_lost = sum(n for s, n in led.items() if s in lost and s not in stored)
    api_samples = int(row.get("samples") or 0)
    if api_samples != produced_stored:
        problems.append(f"/api/v1/agents samples = {api_samples}, the ledger's stored seqs "
                        f"hold {produced_stored} (difference {api_samples - produced_stored})")
    audit_samples = [n for _, _, n in audit if n is not None]
    if len(audit_samples) == len(audit) and sum(audit_samples) != api_samples:
        problems.append(f"audit samples {sum(audit_samples)} != /api/v1/agents samples "
                        f"{api_samples}")
    # 3. the agent row agrees with the audit
    top = max(stored) if stored else 0
    if int(row.get("last_seq") or 0) != top:
        problems.append(f"/api/v1/agents last_seq {row.get('last_seq')} != the highest stored "
                        f"seq {top}")
    if "batches" in row and int(row["batches"]) != len(audit):
        problems.append(f"/api/v1/agents batches {row['batches']} != {len(audit)} audit rows")
    extra = stored - seqs
    summary = (f"{len(seqs)} ledger seqs (max {max(seqs)}), {sum(led.values())} samples "
               f"produced; {len(audit)} stored ranges, {api_samples} samples stored; "
               f"{len(gaps)} gaps ({produced_lost} samples in them); "
               f"{len(extra)} stored seqs not in the ledger (gap records)")
    if problems:
        raise AssertionError("exact-count check failed: " + summary + "\n  " +
                             "\n  ".join(problems))
    return summary


# ---------------------------------------------------------------- fault-injecting proxy

class FaultProxy:
    """An HTTP proxy in a thread (ThreadingHTTPServer on a free loopback port) forwarding to
    target; while faults are on, each POST may instead be answered
      "error"  500, 503 or 429 (the last two with Retry-After: 1) without forwarding, or
      "after"  forwarded and then answered 503 (Retry-After: 1) anyway, so the agent sends
               again a batch the collector already stored.
    The first requests follow a fixed plan so both kinds always happen; then p_error /
    p_after decide. Counters: forwarded, errors, after, after_stored (the collector had
    answered 200 to a request we then failed)."""

    PLAN = ["forward", "after", "error", "forward", "error", "after"]

    def __init__(self, target, rng, p_error=0.3, p_after=0.2):
        self.target = urllib.parse.urlsplit(target)
        self.rng, self.p_error, self.p_after = rng, p_error, p_after
        self.lock = threading.Lock()
        self.faults = True
        self.n = 0
        self.stats = {"requests": 0, "forwarded": 0, "errors": 0, "after": 0,
                      "after_stored": 0, "upstream_down": 0}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # answers Expect: 100-continue at once

            def log_message(self, *a):
                pass

            def do_GET(self):
                proxy._handle(self)

            def do_POST(self):
                proxy._handle(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="fault-proxy")
        self.thread.start()

    def _decide(self):
        with self.lock:
            self.stats["requests"] += 1
            if not self.faults:
                return "forward", None
            i = self.n
            self.n += 1
            if i < len(self.PLAN):
                kind = self.PLAN[i]
            else:
                r = self.rng.random()
                kind = ("error" if r < self.p_error else
                        "after" if r < self.p_error + self.p_after else "forward")
            code = self.rng.choice((500, 503, 429)) if kind == "error" else 503
            return kind, code

    def _count(self, key):
        with self.lock:
            self.stats[key] += 1

    def _handle(self, h):
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else b""
        kind, code = self._decide() if h.command == "POST" else ("forward", None)
        if kind == "error":
            self._count("errors")
            return self._answer(h, code, b'{"error":"injected"}', retry_after=code != 500)
        try:
            status, headers, rbody = self._forward(h, body)
        except OSError as e:
            self._count("upstream_down")
            return self._answer(h, 502, json.dumps({"error": f"proxy: {e}"}).encode())
        self._count("forwarded")
        if kind == "after":
            self._count("after")
            if status == 200:
                self._count("after_stored")
            return self._answer(h, 503, b'{"error":"injected after forwarding"}',
                                retry_after=True)
        return self._answer(h, status, rbody, headers)

    def _forward(self, h, body):
        conn = http.client.HTTPConnection(self.target.hostname, self.target.port, timeout=30)
        try:
            hdrs = {k: v for k, v in h.headers.items()
                    if k.lower() not in ("host", "connection", "expect", "content-length",
                                         "transfer-encoding", "keep-alive")}
            conn.request(h.command, h.path, body=body if h.command == "POST" else None,
                         headers=hdrs)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def _answer(self, h, status, body, headers=(), retry_after=False):
        h.send_response(status)
        for k, v in headers:
            if k.lower() not in ("content-length", "connection", "transfer-encoding", "date",
                                 "server"):
                h.send_header(k, v)
        if not any(k.lower() == "content-type" for k, _ in headers):
            h.send_header("Content-Type", "application/json")
        if retry_after:
            h.send_header("Retry-After", "1")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(body)
        h.close_connection = True

    def faults_off(self):
        with self.lock:
            self.faults = False

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- tiny filesystem

class Tmpfs:
    """`mount -t tmpfs -o size=SIZE tmpfs DIR` (root only; Skip when it cannot mount).
    Use as a context manager: always unmounted on the way out."""

    def __init__(self, path, size="512k"):
        self.path, self.size, self.mounted = Path(path), size, False

    def __enter__(self):
        self.path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            raise Skip("mounting a tmpfs needs root")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0750",
                            "tmpfs", str(self.path)], capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            raise Skip(f"cannot mount a tmpfs on {self.path}: {r.stderr.strip()}")
        self.mounted = True
        return self

    def free_bytes(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def umount(self):
        if not self.mounted:
            return
        r = subprocess.run(["umount", str(self.path)], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=30)
        self.mounted = False

    def __exit__(self, *exc):
        self.umount()
        return False

#!/usr/bin/env python3
"""poll_bench.py — the polling benchmark of `make bench` (issue 4).

Polls `cinemon-sim --bench-devices N` (N SNMP devices, 40 scalars + a 20x5 table = 140
values each, profile profiles/sim-bench.json) at N = 100, 500, 1000 with every poller below and
prints their figures side by side, then the ratios against the goals at 1000 devices
(and, with --json FILE, writes them for bench/report.py):

  cinemon-agent   `cinemon-agent -c agent.ini --rounds K`: the real daemon path (drivers,
                  batcher, JSON encoding, spool with its fsync policy), every device polled
                  together, K rounds back to back; wall and CPU per round as the agent
                  reports them (getrusage deltas), the median of rounds 2..K. --rounds does
                  not upload; its spool is given room (max_bytes 4G) so that it stays, like
                  the spool of an agent whose uplink keeps up, below the size (1/16 of
                  max_bytes) from which records are gzipped.
  agent backlog   the same with a small spool (max_bytes 16M): every record gzipped, as
                  during an uplink outage.
  agent daemon    (largest size only) the plain daemon as deployed: interval 5 s with its
                  random phases, uploading every 5 s to a real cinemon-collector on SQLite;
                  CPU and RSS of the agent process over several intervals (/proc), per
                  interval = per round. No round wall time (the phases spread a round over
                  the interval by design).
  snmp_exporter   Debian's prometheus-snmp-exporter with a hand-written snmp.yml module of
                  the same OIDs (walks of the scalar subtree and the table); all N targets
                  scraped in parallel (curl --parallel); CPU from /proc/PID/stat deltas.
  collectd        Debian's collectd-core 5.12, `collectd -f -C conf`, only its snmp plugin
                  (+ the logfile plugin for warnings): one Data block of type bench_scalars
                  (a types.db of our own: 40 data sources, so the 40 scalars are one GET of
                  40 varbinds) and one table Data block of type bench_row (5 columns, walked
                  with GETBULK: BulkSize 125 = 25 repetitions per column, collectd divides it
                  by the columns), Version 2, Timeout 2, Retries 1 (as the agent), Interval 5.
                  ReadThreads 16: collectd polls synchronously (net-snmp's
                  snmp_sess_synch_response), one device per read thread at a time, so the
                  threads bound the polls in flight; collectd's default of 5 lets 1000
                  devices answering in ~10 ms after 3 requests each take ~6 s, more than
                  the interval, and 16 keep a round within ~2 s; more threads cost CPU and
                  memory (docs/performance.md, "Polling").
                  Write plugin (--collectd-sink): network (default; the cheapest that still
                  handles every value: serialised in collectd's binary protocol and sent by
                  UDP to a receiver thread of this script, which decodes every value list
                  and checks the 40 numbers) or csv (a file per device and row, opened and
                  closed for every value list: more CPU). CPU from /proc/PID/stat
                  over several intervals (edges half an interval after the rounds start),
                  divided by the intervals; peak RSS VmHWM; the receiver checks that every
                  device was polled in every measured interval.
  net-snmp CLI    per device `snmpget` of the 40 scalars + `snmpbulkwalk` of the table,
                  16 devices at a time; CPU from the children's rusage.

Requests per device come from the simulator's own counters (printed when it stops): one
simulator per poller and size. Peak RSS is VmHWM (the agent: ru_maxrss). Every port is a
free loopback port chosen at run time; every process is stopped by its PID.

usage: poll_bench.py [--build build] [--sizes 100,500,1000] [--rounds K] [--intervals I]
                     [--quick] [--collectd-sink network|csv] [--json FILE]
--json FILE: also write the figures in bench/report.py's format (make bench).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness  # noqa: E402  (free_port_range: the same port search as the tests)
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
CLI_PARALLEL = 16
GOALS_AT = 1000
GOAL_ROUND_S, GOAL_CPU_S, GOAL_RSS_MB, GOAL_REQ, GOAL_CPU_RATIO = 0.2, 0.2, 64, 6, 4.0


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- ports and processes -------------------------------------------------------------

def free_tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc, sig=signal.SIGTERM, timeout=10):
    """Stop one process we started, by its PID; returns its stderr text when piped."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    return err.decode(errors="replace") if isinstance(err, bytes) else (err or "")


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Sim:
    """cinemon-sim --bench-devices n on free loopback ports; counts the requests it served."""

    def __init__(self, build, n, work):
        self.n = n
        for attempt in range(5):
            self.base = harness.free_port_range(n, tcp=False)
            self.config = os.path.join(work, "devices.ini")
            if os.path.exists(self.config):
                os.unlink(self.config)
            self.proc = subprocess.Popen(
                [os.path.join(build, "cinemon-sim"), "--bench-devices", str(n), "--base-port",
                 str(self.base), "--print-config", self.config],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            banner = self.proc.stderr.readline().decode(errors="replace")
            if self.proc.poll() is None and "benchmark SNMP devices" in banner:
                return
            err = banner + stop(self.proc)
            if "address already in use" not in err.lower():
                raise RuntimeError(f"cinemon-sim did not start: {err.strip()}")
        raise RuntimeError("cinemon-sim: no free ports after 5 tries")

    def ports(self):
        return range(self.base, self.base + self.n)

    def stop(self):
        err = stop(self.proc)
        m = re.search(r"(\d+) requests, (\d+) responses", err)
        if not m:
            raise RuntimeError(f"cinemon-sim printed no counters: {err.strip()}")
        return int(m.group(1)), int(m.group(2))


# ---- the OIDs of profiles/sim-bench.json ----------------------------------------------

def bench_oids():
    with open(os.path.join(ROOT, "profiles", "sim-bench.json")) as f:
        prof = json.load(f)
    scalars = [s["oid"] for s in prof["scalars"]]
    table = prof["tables"][0]
    return prof, scalars, table["oid"], [c["column"] for c in table["columns"]]


def common_prefix(oids):
    parts = [o.split(".") for o in oids]
    out = []
    for xs in zip(*parts):
        if len(set(xs)) != 1:
            break
        out.append(xs[0])
    return ".".join(out)


# ---- cinemon-agent ---------------------------------------------------------------------

def run_agent(build, sim, work, rounds, spool_max="4G"):
    state = os.path.join(work, "agent-state")
    shutil.rmtree(state, ignore_errors=True)
    ini = os.path.join(work, "agent.ini")
    with open(ini, "w") as f:
        f.write("[agent]\nsite = bench\nstate_dir = %s\nprofiles_dir = %s\ntimeout = 2s\n"
                "retries = 1\nlog_level = warn\n\n[spool]\nfsync = cycle\nmax_bytes = %s\n"
                "min_free_bytes = 0\n\n" % (state, os.path.join(ROOT, "profiles"), spool_max))
        with open(sim.config) as d:
            f.write(d.read())
    t0 = time.monotonic()
    out = subprocess.run([os.path.join(build, "cinemon-agent"), "-c", ini, "--rounds",
                          str(rounds)], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"cinemon-agent --rounds failed ({out.returncode}): {out.stderr}")
    lines = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    per = [l for l in lines if "round" in l]
    summ = [l for l in lines if l.get("summary")][0]
    bad = [r for r in per if r["ok"] != r["devices"]]
    if bad:
        raise RuntimeError(f"cinemon-agent: devices did not answer: {bad[0]}")
    use = per[1:] if len(per) > 1 else per
    spool_bytes = sum(os.path.getsize(os.path.join(dp, fn))
                      for dp, _, fns in os.walk(state) for fn in fns)
    return {"wall": statistics.median(r["wall_s"] for r in use),
            "cpu": statistics.median(r["cpu_s"] for r in use),
            "rss_mb": summ["max_rss_kb"] / 1024.0,
            "rounds": len(per),
            "samples": per[-1]["samples"],
            "spool_mb": spool_bytes / 1e6,
            "elapsed": time.monotonic() - t0}


def run_daemon(build, sim, work, interval_s=5, measure_intervals=4):
    """The daemon with its timers and uploader against a real collector: CPU per interval."""
    d = os.path.join(work, "daemon")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    port = free_tcp_port()
    cini = os.path.join(d, "collector.ini")
    with open(cini, "w") as f:
        f.write(f"[collector]\nlisten = 127.0.0.1:{port}\nthreads = 2\nlog_level = warn\n"
                f"[store]\nbackend = sqlite\npath = {d}/collector.db\n"
                f"[rules]\nenabled = false\n")  # quality rules are not what this measures
    col = os.path.join(build, "cinemon-collector")
    tok = subprocess.run([col, "-c", cini, "token", "add", "--agent", "bench", "--site", "bench"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()[0]
    tokf = os.path.join(d, "token")
    with open(os.open(tokf, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(tok + "\n")
    cproc = subprocess.Popen([col, "-c", cini], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    aproc = None
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if cproc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"collector did not start: {stop(cproc)}")
                time.sleep(0.05)
        ini = os.path.join(d, "agent.ini")
        with open(ini, "w") as f:
            f.write(f"[agent]\nsite = bench\nid = bench\ncollector_url = http://127.0.0.1:{port}\n"
                    f"token_file = {tokf}\nstate_dir = {d}/state\nprofiles_dir = "
                    f"{os.path.join(ROOT, 'profiles')}\ninterval = {interval_s}s\ntimeout = 2s\n"
                    f"log_level = warn\n\n[upload]\ninterval = {interval_s}s\n\n")
            with open(sim.config) as dev:
                f.write(dev.read())
        aproc = subprocess.Popen([os.path.join(build, "cinemon-agent"), "-c", ini],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(2 * interval_s)  # sessions open, the first uploads done
        if aproc.poll() is not None:
            raise RuntimeError(f"agent exited: {stop(aproc)}")
        c0, t0 = proc_cpu_s(aproc.pid), time.monotonic()
        time.sleep(measure_intervals * interval_s)
        c1, t1 = proc_cpu_s(aproc.pid), time.monotonic()
        rss = proc_hwm_kb(aproc.pid) / 1024.0
    finally:
        if aproc:
            stop(aproc)
        stop(cproc)
    rounds = (t1 - t0) / interval_s
    return {"wall": float("nan"), "cpu": (c1 - c0) / rounds, "rss_mb": rss,
            "rounds": (t1 - t0 + 2 * interval_s) / interval_s}


# ---- prometheus-snmp-exporter ----------------------------------------------------------

def exporter_yaml(prof, table_oid):
    """A v0.21 snmp.yml module of the same OIDs: walk the scalar subtree and the table."""
    types = {"bench_counter32_total": "counter", "bench_counter64_total": "counter",
             "bench_row_counter32_total": "counter", "bench_row_counter64_total": "counter"}
    scal_root = common_prefix([s["oid"][:-2] for s in prof["scalars"]])
    # v0.21: module names at the top level (the "modules:"/"auths:" split came in 0.23).
    lines = ["bench:", "  version: 2", "  auth:", "    community: public",
             "  max_repetitions: 25", "  retries: 1", "  timeout: 5s", "  walk:",
             f"    - {scal_root}", f"    - {table_oid}", "  metrics:"]
    for s in prof["scalars"]:
        name = "%s_%s" % (s["metric"], s.get("labels", {}).get("n", "x"))
        if s["metric"].endswith("_text_value"):
            lines += [f"    - name: {name}", f"      oid: {s['oid'][:-2]}",
                      "      type: DisplayString", "      regex_extracts:",
                      "        '':", "        - regex: '^(.+)$'", "          value: '$1'"]
        else:
            lines += [f"    - name: {name}", f"      oid: {s['oid'][:-2]}",
                      f"      type: {types.get(s['metric'], 'gauge')}"]
    for c in prof["tables"][0]["columns"]:
        lines += [f"    - name: {c['metric']}", f"      oid: {table_oid}.{c['column']}"]
        if c["metric"].endswith("_text_value"):
            lines += ["      type: DisplayString", "      regex_extracts:", "        '':",
                      "        - regex: '^(.+)$'", "          value: '$1'"]
        else:
            lines += [f"      type: {types.get(c['metric'], 'gauge')}"]
        lines += ["      indexes:", "        - labelname: row", "          type: gauge"]
    return "\n".join(lines) + "\n"


def run_exporter(exe, sim, work, rounds):
    prof, _, table_oid, _ = bench_oids()
    yml = os.path.join(work, "snmp.yml")
    with open(yml, "w") as f:
        f.write(exporter_yaml(prof, table_oid))
    port = free_tcp_port()
    proc = subprocess.Popen([exe, f"--config.file={yml}", f"--web.listen-address=127.0.0.1:{port}",
                             "--log.level=warn"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"snmp_exporter exited: {stop(proc)}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("snmp_exporter did not listen within 20 s")
                time.sleep(0.05)
        cfg = os.path.join(work, "curl.cfg")
        outdir = os.path.join(work, "scrapes")
        os.makedirs(outdir, exist_ok=True)
        with open(cfg, "w") as f:
            for i, p in enumerate(sim.ports()):
                f.write(f'url = "http://127.0.0.1:{port}/snmp?target=127.0.0.1:{p}&module=bench"\n'
                        f'output = "{outdir}/{i}.txt"\n')
        walls, cpus = [], []
        for r in range(rounds + 1):  # round 0 warms up (connections, goroutines)
            c0 = proc_cpu_s(proc.pid)
            t0 = time.monotonic()
            subprocess.run(["curl", "-sS", "--no-progress-meter", "--fail", "--parallel", "--parallel-immediate",
                            "--parallel-max", str(min(sim.n, 1000)), "-K", cfg],
                           check=True, timeout=300, stdout=subprocess.DEVNULL)
            walls.append(time.monotonic() - t0)
            cpus.append(proc_cpu_s(proc.pid) - c0)
            if r == 0:
                check_scrape(os.path.join(outdir, "0.txt"), prof)
        rss = proc_hwm_kb(proc.pid) / 1024.0
    finally:
        stop(proc)
    return {"wall": statistics.median(walls[1:]), "cpu": statistics.mean(cpus[1:]),
            "rss_mb": rss, "rounds": rounds + 1}


def check_scrape(path, prof):
    with open(path) as f:
        vals = [l for l in f if l.startswith("bench_")]
    want = len(prof["scalars"]) + 20 * len(prof["tables"][0]["columns"])
    if len(vals) < want:
        raise RuntimeError(f"snmp_exporter returned {len(vals)} bench values, expected {want} "
                           f"({path})")


# ---- collectd (snmp plugin) --------------------------------------------------------------

COLLECTD_READ_THREADS = 16  # collectd's default is 5; see the module docstring
COLLECTD_BULK = 125  # BulkSize: varbinds per GETBULK answer over all columns (25 per column)
# collectd data-source kind per scalar type in the rotation Integer32, Gauge32, Counter32,
# Counter64, OCTET STRING (a decimal number), TimeTicks (sim/model.c bench_val)
COLLECTD_DS = ("GAUGE", "GAUGE", "COUNTER", "COUNTER", "GAUGE", "GAUGE")


def collectd_conf(sim, d, interval_s, sink, port=0):
    """collectd.conf + types.db: the snmp plugin with the OIDs of profiles/sim-bench.json."""
    _, scalars, table_oid, columns = bench_oids()
    # one type of 40 data sources, so the 40 scalars are one GET (as the other pollers ask),
    # and one of 5 for a table row: collectd dispatches a value list per type instance
    types = os.path.join(d, "types.db")
    with open(types, "w") as f:
        f.write("bench_scalars " + ", ".join(f"s{i + 1}:{COLLECTD_DS[i % 6]}:U:U"
                                            for i in range(len(scalars))) + "\n")
        f.write("bench_row " + ", ".join(f"c{c}:{COLLECTD_DS[(c - 1) % 6]}:U:U"
                                        for c in columns) + "\n")
    if sink == "csv":  # a file per host and type instance, opened and closed per value list
        sink_conf = (f'LoadPlugin csv\n<Plugin csv>\n  DataDir "{d}/csv"\n'
                     f'  StoreRates false\n</Plugin>\n')
    else:  # network: collectd's binary protocol in UDP packets to our receiver
        sink_conf = (f'LoadPlugin network\n<Plugin network>\n  Server "127.0.0.1" "{port}"\n'
                     f'</Plugin>\n')
    hosts = "".join(
        f'  <Host "dev{i:04d}">\n    Address "udp:127.0.0.1:{p}"\n    Version 2\n'
        f'    Community "public"\n    Collect "scalars" "table"\n    Timeout 2\n'
        f'    Retries 1\n    BulkSize {COLLECTD_BULK}\n  </Host>\n'
        for i, p in enumerate(sim.ports()))
    conf = os.path.join(d, "collectd.conf")
    with open(conf, "w") as f:
        f.write(f'Hostname "bench"\nFQDNLookup false\nAutoLoadPlugin false\n'
                f'BaseDir "{d}"\nPIDFile "{d}/collectd.pid"\nPluginDir "/usr/lib/collectd"\n'
                f'TypesDB "/usr/share/collectd/types.db" "{types}"\n'
                f"Interval {interval_s}\nReadThreads {COLLECTD_READ_THREADS}\nWriteThreads 1\n"
                f'LoadPlugin logfile\n<Plugin logfile>\n  LogLevel warning\n'
                f'  File stdout\n</Plugin>\n'
                f"LoadPlugin snmp\n{sink_conf}<Plugin snmp>\n"
                f'  <Data "scalars">\n    Type "bench_scalars"\n    Table false\n    Values '
                + " ".join(f'"{o}"' for o in scalars) + "\n  </Data>\n"
                f'  <Data "table">\n    Type "bench_row"\n    Table true\n    Values '
                + " ".join(f'"{table_oid}.{c}"' for c in columns) + "\n  </Data>\n"
                + hosts + "</Plugin>\n")
    return conf


class CollectdReceiver:
    """Receives what collectd's network plugin sends (binary protocol, one UDP socket on a
    free loopback port, a thread of ours) and keeps the time of every value list of type
    bench_scalars, checking that it holds n_cols numbers."""

    def __init__(self, n_cols):
        self.n_cols, self.times, self.rows, self.bad = n_cols, [], 0, []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while self.running:
            try:
                pkt = self.sock.recv(65536)
            except socket.timeout:
                continue
            self.parse(pkt)

    def parse(self, pkt):
        """Parts: u16 type, u16 length (header included); a values part ends a value list."""
        off, typ, tm = 0, "", 0.0
        while off + 4 <= len(pkt):
            ptype, plen = struct.unpack_from(">HH", pkt, off)
            if plen < 4 or off + plen > len(pkt):
                self.bad.append(f"part {ptype} length {plen}")
                return
            body = pkt[off + 4:off + plen]
            if ptype == 0x0004:  # type
                typ = body.rstrip(b"\0").decode()
            elif ptype == 0x0008:  # time_hr: 2^-30 s
                tm = struct.unpack(">Q", body)[0] / 2**30
            elif ptype == 0x0006:  # values: u16 n, n kinds, n x 8 bytes
                n = struct.unpack_from(">H", body)[0]
                if typ == "bench_row":
                    self.rows += 1
                elif typ == "bench_scalars":
                    kinds = body[2:2 + n]
                    vals = [struct.unpack_from("<d" if k == 1 else ">Q", body, 2 + n + 8 * i)[0]
                            for i, k in enumerate(kinds)]  # 1 = GAUGE (little-endian double)
                    if n != self.n_cols or any(v != v for v in vals):
                        self.bad.append(f"bench_scalars with {n} values: {vals[:6]}")
                    self.times.append(tm)
            off += plen

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def csv_scalar_times(d, n_cols):
    """Times of every bench_scalars row the csv plugin wrote, each checked for n_cols numbers."""
    times = []
    for dp, _, fns in os.walk(os.path.join(d, "csv")):
        for fn in fns:
            if not fn.startswith("bench_scalars-"):
                continue
            with open(os.path.join(dp, fn)) as f:
                for line in f:
                    if line.startswith("epoch"):
                        continue
                    xs = line.strip().split(",")
                    if len(xs) != n_cols + 1 or any(x in ("nan", "") for x in xs):
                        raise RuntimeError(f"collectd csv: bad row in {fn}: {line[:200]}")
                    times.append(float(xs[0]))
    return times


def run_collectd(exe, sim, work, sink="network", interval_s=5, warm_intervals=2,
                 measure_intervals=6):
    """collectd -f with the snmp plugin: CPU per interval (= per round) from /proc over
    several intervals; every device's value lists counted and checked in the sink."""
    d = os.path.join(work, "collectd")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    _, scalars, _, _ = bench_oids()
    recv = CollectdReceiver(len(scalars)) if sink == "network" else None
    try:
        conf = collectd_conf(sim, d, interval_s, sink, recv.port if recv else 0)
        with open(os.path.join(d, "stdout"), "w") as out:
            proc = subprocess.Popen([exe, "-f", "-C", conf], stdout=out,
                                    stderr=subprocess.STDOUT)
        try:
            # sessions open, a first round or two done; every host's read is due at the start
            # plus a whole number of intervals, so half an interval off those instants the
            # window's edges fall where collectd idles
            time.sleep((warm_intervals + 0.5) * interval_s)
            if proc.poll() is not None:
                raise RuntimeError(f"collectd exited ({proc.returncode}): {collectd_log(d)}")
            c0, t0, w0 = proc_cpu_s(proc.pid), time.monotonic(), time.time()
            time.sleep(measure_intervals * interval_s)
            c1, t1, w1 = proc_cpu_s(proc.pid), time.monotonic(), time.time()
            rss = proc_hwm_kb(proc.pid) / 1024.0
        finally:
            stop(proc, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"collectd exited {proc.returncode}: {collectd_log(d)}")
        if recv:
            time.sleep(0.5)  # the last packets, sent at shutdown
    finally:
        if recv:
            recv.close()
    if recv:
        if recv.bad:
            raise RuntimeError(f"collectd sent bad value lists: {recv.bad[:3]}")
        times, rows = recv.times, recv.rows
    else:
        times = csv_scalar_times(d, len(scalars))
        rows = sum(1 for dp, _, fns in os.walk(os.path.join(d, "csv")) for fn in fns
                   if fn.startswith("bench_row-") for _ in open(os.path.join(dp, fn))) \
            - 20 * sim.n  # the header lines
    in_window = sum(1 for t in times if w0 <= t < w1)
    rounds = (t1 - t0) / interval_s
    # every device polled every interval: the sink got a value list per device and round
    if in_window < 0.9 * sim.n * round(rounds):
        raise RuntimeError(f"collectd: {in_window} device-rounds in {rounds:.1f} intervals of "
                           f"{sim.n} devices (rounds longer than the interval?) "
                           f"{collectd_log(d)}")
    if abs(rows - 20 * len(times)) > 20 * sim.n:  # a round cut by the stop at most
        raise RuntimeError(f"collectd: {rows} table rows for {len(times)} scalar lists")
    log(f"  collectd ({sink}): {len(times)} scalar value lists of {len(scalars)} numbers and "
        f"{rows} table rows received, {in_window / sim.n:.1f} rounds in the "
        f"{rounds:.1f} measured intervals")
    return {"wall": float("nan"), "cpu": (c1 - c0) / rounds, "rss_mb": rss,
            "rounds": len(times) / sim.n}


def collectd_log(d):
    try:
        with open(os.path.join(d, "stdout")) as f:
            return "".join(l for l in f if ".snmp.bench_" not in l)[-2000:]
    except OSError:
        return ""


# ---- net-snmp command-line tools --------------------------------------------------------

def run_cli(sim, rounds):
    _, scalars, table_oid, _ = bench_oids()
    env = dict(os.environ, MIBS="", MIBDIRS="/nonexistent")  # no MIB parsing: the cheapest way
    walls, cpus, rss_kb = [], [], 0
    for _ in range(rounds):
        t0 = time.monotonic()
        cpu = 0.0
        jobs = []
        for p in sim.ports():
            jobs.append(["snmpget", "-v2c", "-c", "public", "-On", "-Oq", "-r", "1", "-t", "5",
                         f"127.0.0.1:{p}"] + scalars)
            jobs.append(["snmpbulkwalk", "-v2c", "-c", "public", "-On", "-Oq", "-Cr25", "-r", "1",
                         "-t", "5", f"127.0.0.1:{p}", table_oid])
        running, failed = {}, 0
        while jobs or running:
            while jobs and len(running) < CLI_PARALLEL * 2:  # 16 devices = 32 tools at a time
                pr = subprocess.Popen(jobs.pop(), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, env=env)
                running[pr.pid] = pr
            pid, status, ru = os.wait4(-1, 0)
            pr = running.pop(pid, None)
            if pr is None:
                continue
            pr.returncode = os.waitstatus_to_exitcode(status)
            failed += pr.returncode != 0
            cpu += ru.ru_utime + ru.ru_stime
            rss_kb = max(rss_kb, ru.ru_maxrss)
        walls.append(time.monotonic() - t0)
        cpus.append(cpu)
        if failed:
            raise RuntimeError(f"net-snmp tools: {failed} runs failed")
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus),
            "rss_mb": rss_kb / 1024.0, "rounds": rounds}


# ---- main ------------------------------------------------------------------------------

def fmt_wall(v, width):
    return f"{v:{width}.3f}" if v == v else f"{'-':>{width}}"


def measure(build, exporter, collectd, n, rounds, cli_rounds, work, daemon, intervals, sink):
    res = {}
    for name, fn in (("cinemon-agent", lambda s: run_agent(build, s, work, rounds)),
                     ("agent backlog", lambda s: run_agent(build, s, work, rounds, "16M")),
                     ("agent daemon", lambda s: run_daemon(build, s, work,
                                                           measure_intervals=intervals)),
                     ("snmp_exporter", lambda s: run_exporter(exporter, s, work, rounds)),
                     ("collectd", lambda s: run_collectd(collectd, s, work, sink,
                                                         measure_intervals=intervals)),
                     ("net-snmp CLI", lambda s: run_cli(s, cli_rounds))):
        if ((name == "snmp_exporter" and not exporter) or (name == "agent daemon" and not daemon)
                or (name == "collectd" and not collectd)):
            continue
        sim = Sim(build, n, work)
        try:
            r = fn(sim)
        finally:
            reqs, _ = sim.stop()
        r["req"] = reqs / (n * r["rounds"])
        res[name] = r
        log(f"  {n:5d} devices  {name:14s} round {fmt_wall(r['wall'], 0)} s  cpu {r['cpu']:.3f} s  "
            f"rss {r['rss_mb']:.0f} MB  {r['req']:.2f} req/device")
    return res


def deb_version(pkg):
    """The upstream version (major.minor) of an installed Debian package, or ''."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                         text=True)
    m = re.match(r"(?:\d+:)?(\d+\.\d+)", out.stdout)
    return m.group(1) if m else ""


def json_rows(results, names):
    """The rows of report.py's format: per size and poller CPU per round, peak RSS, round wall
    time and requests per device; the agent's rows name snmp_exporter and collectd as peers."""
    metrics = (("CPU per round", "cpu", "CPU-s"), ("peak RSS", "rss_mb", "MB"),
               ("round wall time", "wall", "s"), ("requests per device", "req", ""))
    rows = []
    for n in sorted(results):
        for metric, key, unit in metrics:
            for name, r in results[n].items():
                v = r[key]
                row = {"case": f"{n} devices", "system": names.get(name, name), "metric": metric,
                       "value": round(v, 4) if v == v else None, "unit": unit,
                       "better": "lower"}
                present = [names[p] for p in ("snmp_exporter", "collectd")
                           if p in results[n] and results[n][p][key] == results[n][p][key]]
                if name.startswith(("cinemon-agent", "agent ")) and present and v == v:
                    row["ratio_vs"] = present
                if v != v:
                    row["note"] = ("the timers spread a round over the interval"
                                   if name in ("agent daemon", "collectd") else "not measured")
                rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--sizes", default="100,500,1000")
    ap.add_argument("--rounds", type=int, default=8, help="timed rounds per poller and size")
    ap.add_argument("--cli-rounds", type=int, default=2)
    ap.add_argument("--intervals", type=int, default=6,
                    help="measured 5-s intervals of the daemons (agent daemon, collectd)")
    ap.add_argument("--quick", action="store_true", help="3 rounds, 1 CLI round, 3 intervals")
    ap.add_argument("--no-daemon", dest="daemon", action="store_false",
                    help="leave out the daemon-with-upload measurement")
    ap.add_argument("--collectd-sink", choices=("network", "csv"), default="network",
                    help="collectd's write plugin (default network: the cheapest)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures to FILE "
                    "(bench/report.py's format)")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.cli_rounds, args.intervals = 3, 1, 3
    sizes = [int(x) for x in args.sizes.split(",")]
    started = time.time()
    exporter = shutil.which("prometheus-snmp-exporter")
    if not exporter:
        log("poll_bench: prometheus-snmp-exporter is not installed (make deps): skipped")
    collectd = shutil.which("collectd") or shutil.which("collectd", path="/usr/sbin")
    if collectd and not os.path.exists("/usr/lib/collectd/snmp.so"):
        collectd = None
    if not collectd:
        log("poll_bench: collectd with its snmp plugin is not installed (collectd-core, "
            "make deps): skipped")
    for tool in ("snmpget", "snmpbulkwalk", "curl"):
        if not shutil.which(tool):
            sys.exit(f"poll_bench: {tool} is missing (make deps)")
    work = tempfile.mkdtemp(prefix="cinemon-pollbench-")
    load0 = os.getloadavg()[0]
    results = {}
    try:
        for n in sizes:
            results[n] = measure(args.build, exporter, collectd, n, args.rounds, args.cli_rounds,
                                 work, args.daemon and n == max(sizes), args.intervals,
                                 args.collectd_sink)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()[0]

    head = (f"polling benchmark: cinemon-sim --bench-devices N (140 values per device); "
            f"agent/exporter median of {args.rounds} rounds, CLI {args.cli_rounds}, daemons "
            f"{args.intervals} intervals of 5 s; {os.cpu_count()} CPUs, load average "
            f"{load0:.1f} at the start, {load1:.1f} at the end (wall times suffer first on a "
            f"busy machine)")
    print(head)
    print(f"{'devices':>7}  {'poller':14}  {'round s':>8}  {'CPU s/round':>11}  "
          f"{'peak RSS MB':>11}  {'req/device':>10}")
    # net-snmp CLI: peak RSS is that of the largest single tool process
    for n in sizes:
        for name, r in results[n].items():
            print(f"{n:7d}  {name:14}  {fmt_wall(r['wall'], 8)}  {r['cpu']:11.3f}  {r['rss_mb']:11.1f}  "
                  f"{r['req']:10.2f}")
    n = GOALS_AT if GOALS_AT in results else max(results)
    a = results[n]["cinemon-agent"]
    notes = []
    print(f"\ngoals at {n} devices (figure / goal; <= 1.00 meets it):")
    rows = [("round wall time", a["wall"], GOAL_ROUND_S, "s"),
            ("CPU per round", a["cpu"], GOAL_CPU_S, "CPU-s"),
            ("peak RSS", a["rss_mb"], GOAL_RSS_MB, "MB"),
            ("requests per device", a["req"], GOAL_REQ, "")]
    ok = True
    for what, v, goal, unit in rows:
        ok &= v <= goal
        line = (f"  {what:28} {v:8.3f} {unit:5} goal <= {goal:<6} ratio {v / goal:5.2f}  "
                f"{'met' if v <= goal else 'NOT MET'}")
        print(line)
        notes.append(f"goal at {n} devices: {' '.join(line.split())}")
    e = results[n].get("snmp_exporter")
    if e:
        ratio = e["cpu"] / a["cpu"] if a["cpu"] > 0 else float("inf")
        ok &= ratio >= GOAL_CPU_RATIO
        line = (f"  {'CPU less than snmp_exporter':28} {ratio:8.2f} x     goal >= "
                f"{GOAL_CPU_RATIO:<6} ratio {GOAL_CPU_RATIO / ratio:5.2f}  "
                f"{'met' if ratio >= GOAL_CPU_RATIO else 'NOT MET'}")
        print(line)
        notes.append(f"goal at {n} devices: {' '.join(line.split())}")
        print(f"  {'round vs snmp_exporter':28} {e['wall'] / a['wall']:8.2f} x faster")
    cd = results[n].get("collectd")
    if cd:
        print(f"  {'CPU less than collectd':28} {cd['cpu'] / a['cpu']:8.2f} x  (info; collectd "
              f"with the {args.collectd_sink} sink, {COLLECTD_READ_THREADS} read threads)")
        notes.append(f"collectd: snmp plugin, {COLLECTD_READ_THREADS} ReadThreads, BulkSize "
                     f"{COLLECTD_BULK}, Timeout 2 Retries 1, Interval 5, write plugin "
                     f"{args.collectd_sink}; CPU and RSS of the collectd process from /proc")
    dm = results[n].get("agent daemon")
    if dm:
        print(f"  {'daemon incl. upload (info)':28} {dm['cpu']:8.3f} CPU-s per 5-s interval, peak RSS "
              f"{dm['rss_mb']:.0f} MB (not a goal: the goals exclude uploading)")
    c = results[n].get("net-snmp CLI")
    if c:
        print(f"  {'CPU less than net-snmp CLI':28} {c['cpu'] / a['cpu']:8.2f} x")
    print(f"\n(agent: spool {a['spool_mb']:.1f} MB after {a['rounds']} rounds, "
          f"{a['samples']} samples per round; figures drift between runs, ratios hold better)")
    print("goals: all met" if ok else "goals: NOT all met")
    notes.append("goals: all met" if ok else "goals: NOT all met")
    notes.append("net-snmp CLI: peak RSS of the largest single tool process; agent daemon: "
                 "interval 5 s, uploading to a collector on SQLite")
    if args.json:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import report  # noqa: E402  (the format and its writer)
        names = {"cinemon-agent": "cinemon-agent", "agent backlog": "cinemon-agent backlog",
                 "agent daemon": "cinemon-agent daemon",
                 "snmp_exporter": f"snmp_exporter {deb_version('prometheus-snmp-exporter')}",
                 "collectd": f"collectd {deb_version('collectd-core')}",
                 "net-snmp CLI": f"net-snmp CLI {deb_version('snmp')}"}
        report.write_results(args.json, "poll", json_rows(results, names), started=started,
                             load=[load0, load1], notes=notes,
                             title="Polling SNMP devices (140 values each): CPU per round, "
                                   "peak RSS, requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())

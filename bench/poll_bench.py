#!/usr/bin/env python3
"""poll_bench.py — the polling benchmark of `make bench` (issue 4).

Polls `cinemon-sim --bench-devices N` (N SNMP devices, 40 scalars + a 20x5 table = 140
values each, profile profiles/sim-bench.json) at N = 100, 500, 1000 with three pollers and
prints their figures side by side, then the ratios against the goals at 1000 devices:

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
  net-snmp CLI    per device `snmpget` of the 40 scalars + `snmpbulkwalk` of the table,
                  16 devices at a time; CPU from the children's rusage.

Requests per device come from the simulator's own counters (printed when it stops): one
simulator per poller and size. Peak RSS is VmHWM (the agent: ru_maxrss). Every port is a
free loopback port chosen at run time; every process is stopped by its PID.

usage: poll_bench.py [--build build] [--sizes 100,500,1000] [--rounds K] [--quick]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys

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


def measure(build, exporter, n, rounds, cli_rounds, work, daemon):
    res = {}
    for name, fn in (("cinemon-agent", lambda s: run_agent(build, s, work, rounds)),
                     ("agent backlog", lambda s: run_agent(build, s, work, rounds, "16M")),
                     ("agent daemon", lambda s: run_daemon(build, s, work)),
                     ("snmp_exporter", lambda s: run_exporter(exporter, s, work, rounds)),
                     ("net-snmp CLI", lambda s: run_cli(s, cli_rounds))):
        if (name == "snmp_exporter" and not exporter) or (name == "agent daemon" and not daemon):
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--sizes", default="100,500,1000")
    ap.add_argument("--rounds", type=int, default=8, help="timed rounds per poller and size")
    ap.add_argument("--cli-rounds", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="3 rounds, 1 CLI round")
    ap.add_argument("--no-daemon", dest="daemon", action="store_false",
                    help="leave out the daemon-with-upload measurement")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.cli_rounds = 3, 1
    sizes = [int(x) for x in args.sizes.split(",")]
    exporter = shutil.which("prometheus-snmp-exporter")
    if not exporter:
        log("poll_bench: prometheus-snmp-exporter is not installed (make deps): skipped")
    for tool in ("snmpget", "snmpbulkwalk", "curl"):
        if not shutil.which(tool):
            sys.exit(f"poll_bench: {tool} is missing (make deps)")
    work = tempfile.mkdtemp(prefix="cinemon-pollbench-")
    load0 = os.getloadavg()[0]
    results = {}
    try:
        for n in sizes:
            results[n] = measure(args.build, exporter, n, args.rounds, args.cli_rounds, work,
                                 daemon=args.daemon and n == max(sizes))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"polling benchmark: cinemon-sim --bench-devices N (140 values per device); "
          f"agent/exporter median of {args.rounds} rounds, CLI {args.cli_rounds}; "
          f"{os.cpu_count()} CPUs, load average {load0:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end (wall times suffer first on a busy machine)")
    print(f"{'devices':>7}  {'poller':14}  {'round s':>8}  {'CPU s/round':>11}  "
          f"{'peak RSS MB':>11}  {'req/device':>10}")
    # net-snmp CLI: peak RSS is that of the largest single tool process
    for n in sizes:
        for name, r in results[n].items():
            print(f"{n:7d}  {name:14}  {fmt_wall(r['wall'], 8)}  {r['cpu']:11.3f}  {r['rss_mb']:11.1f}  "
                  f"{r['req']:10.2f}")
    n = GOALS_AT if GOALS_AT in results else max(results)
    a = results[n]["cinemon-agent"]
    print(f"\ngoals at {n} devices (figure / goal; <= 1.00 meets it):")
    rows = [("round wall time", a["wall"], GOAL_ROUND_S, "s"),
            ("CPU per round", a["cpu"], GOAL_CPU_S, "CPU-s"),
            ("peak RSS", a["rss_mb"], GOAL_RSS_MB, "MB"),
            ("requests per device", a["req"], GOAL_REQ, "")]
    ok = True
    for what, v, goal, unit in rows:
        ok &= v <= goal
        print(f"  {what:28} {v:8.3f} {unit:5} goal <= {goal:<6} ratio {v / goal:5.2f}  "
              f"{'met' if v <= goal else 'NOT MET'}")
    e = results[n].get("snmp_exporter")
    if e:
        ratio = e["cpu"] / a["cpu"] if a["cpu"] > 0 else float("inf")
        ok &= ratio >= GOAL_CPU_RATIO
        print(f"  {'CPU less than snmp_exporter':28} {ratio:8.2f} x     goal >= {GOAL_CPU_RATIO:<6} "
              f"ratio {GOAL_CPU_RATIO / ratio:5.2f}  {'met' if ratio >= GOAL_CPU_RATIO else 'NOT MET'}")
        print(f"  {'round vs snmp_exporter':28} {e['wall'] / a['wall']:8.2f} x faster")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""demo.py - a running cinemon on this machine, with live data, in one command.

  tests/demo.py --build build     (make demo)       start, wait for data, print the URLs
  tests/demo.py --stop            (make demo-stop)  stop what the last start recorded

Starts in the background: snmpsimd serving the recorded devices of ../shared/fixtures
(when present), a local net-snmp snmpd, a collector on SQLite at 127.0.0.1:8080 (or the
next free port) and an agent polling every device each 10 s (site demo-cinema); and
cinemon-sim, a virtual 12-hall multiplex (SNMP projectors and media servers, PJLink
projectors), with its own agent (site demo-multiplex). Everything lives under
./demo-run/ (logs *.out/*.err, configs, database); the PIDs are in demo-run/pids.
Started again while running, it stops the old demo first.
"""

import argparse
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "demo-run"
PIDS = RUN / "pids"
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import harness  # noqa: E402

SITE = "demo-cinema"
AGENT = "demo-agent"
SIM_SITE = "demo-multiplex"
SIM_AGENT = "demo-multiplex-agent"
SIM_HALLS = 12
SIM_SLOTS = 8  # ports per hall (sim/README.md)
VIEWER = "demo"
HALLS_CSV = ("cinema_code,cinema_name,province,city,chain,hall_code,hall_name,class,display,"
             "format\n"
             f"{SITE},Demo Cinema,Beijing,Beijing,Demo Pictures,hall1,Hall 1,theatre,projection,2D\n"
             f"{SITE},Demo Cinema,Beijing,Beijing,Demo Pictures,hall2,Hall 2,review,projection,2D\n"
             + "".join(f"{SIM_SITE},Demo Multiplex,Guangdong,Shenzhen,Demo Circuit,hall{n},"
                       f"Hall {n},theatre,{'led' if n == 12 else 'projection'},"
                       f"{'3D' if n % 4 == 0 else '2D'}\n" for n in range(1, SIM_HALLS + 1)))
RECORDED = [  # device id, kind, profile (None = by sysObjectID), recording
    ("hall1/projector", "projector", "christie-cp-series2", "christie-projector_cp"),
    ("hall2/projector", "projector", "epson-projector", "epson-projector_eb-4770w"),
    ("booth/ups-apc", "ups", "ups-apc", "apc_smt750x-nmc2"),
    ("booth/ups-generex", "ups", "ups-rfc1628", "generex-ups_cs141"),
    ("booth/ups-delta", "ups", "ups-delta-rfc1628", "deltaups_rfc1628string"),
    ("booth/tms", "server", None, "linux_icecast"),
]


def _ours(pid):
    """True when pid is alive and is one of the demo's processes (its command line names
    demo-run), so a recycled PID is never signalled."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return str(RUN) in cmd


def stop(quiet=False):
    if not PIDS.exists():
        if not quiet:
            print("demo: nothing recorded in demo-run/pids; not running")
        return
    entries = []
    for line in PIDS.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            entries.append((parts[0], int(parts[1])))
    for name, pid in reversed(entries):  # agent first, snmpsim last
        if not _ours(pid):
            continue
        try:
            os.killpg(pid, signal.SIGTERM)  # each was started as its own group leader
        except (ProcessLookupError, PermissionError):
            continue
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not quiet:
            print(f"demo: stopped {name} (pid {pid})")
    PIDS.unlink(missing_ok=True)


def _alive(pid):
    try:
        # a zombie still "exists": look at its state
        st = Path(f"/proc/{pid}/stat").read_text()
        return st.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _port_from(start, n=20):
    for p in range(start, start + n):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
    return harness.free_port("tcp")


def _start_multiplex(env, coll):
    """cinemon-sim --halls 12 and an agent of its own polling everything it prints."""
    base = harness.free_port_range(SIM_HALLS * SIM_SLOTS)
    frag = env.path("multiplex-devices.ini")
    env.start("cinemon-sim", [harness.binary("cinemon-sim"), "--halls", str(SIM_HALLS),
                              "--base-port", str(base), "--print-config", str(frag)])
    harness.wait_until(lambda: frag.exists() and frag.stat().st_size > 0, 20, 0.1,
                       "cinemon-sim's device list")
    token = coll.add_token(SIM_AGENT, SIM_SITE)
    env.write("multiplex-token", token + "\n", mode=0o600)
    ini = env.write("multiplex-agent.ini",
                    f"[agent]\nsite = {SIM_SITE}\nid = {SIM_AGENT}\n"
                    f"collector_url = {coll.base_url}\ntoken_file = multiplex-token\n"
                    f"state_dir = multiplex-state\nprofiles_dir = {harness.PROFILES}\n"
                    "interval = 10s\ntimeout = 2s\n\n[upload]\ninterval = 5s\n\n"
                    + frag.read_text())
    env.start("multiplex-agent", [harness.binary("cinemon-agent"), "-c", str(ini)])
    return base


def _record(env):
    PIDS.write_text("".join(f"{p.name} {p.pid}\n" for p in env.procs))


def start(build):
    stop(quiet=True)
    if RUN.exists():
        for f in RUN.iterdir():  # a fresh demo: old logs, configs and database go
            if f.is_dir():
                shutil.rmtree(f, ignore_errors=True)
            else:
                f.unlink(missing_ok=True)
    harness.configure(build)
    env = harness.Env(dir=RUN, keep=True, detach=True)
    try:
        devices = []
        if harness.FIXTURES.is_dir():
            sim = harness.snmpsim(env)
            _record(env)
            devices += [harness.device(i, sim, comm, kind=k, profile=p)
                        for i, k, p, comm in RECORDED]
        else:
            print(f"demo: {harness.FIXTURES} is absent: polling only the local snmpd")
        live = harness.snmpd(env)
        _record(env)
        hosts = 1 if devices else 4  # without recordings: 4 devices at the one snmpd
        for n in range(hosts):
            devices.append(harness.device(f"hall{n + 1}/server" if hosts > 1 else "booth/server",
                                          live, harness.SNMPD_COMMUNITY, kind="server",
                                          profile="generic-snmp-host"))
        coll = harness.collector(env, tokens=[(AGENT, SITE)], port=_port_from(8080))
        _record(env)
        # Where the halls are (the overview groups by province and city) and a viewer.
        r = env.run([harness.binary("cinemon-collector"), "-c", str(coll.ini), "import",
                     str(env.write("halls.csv", HALLS_CSV))], timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"import halls.csv: {r.stderr.strip()}")
        password = secrets.token_urlsafe(12)
        harness.viewer_add(env, coll.ini, VIEWER, password, role="operator")
        env.write("operator-token", coll.op_token + "\n", mode=0o600)
        harness.agent(env, devices, coll, site=SITE, agent_id=AGENT,
                      extra={"interval": "10s", "upload_interval": "5s", "timeout": "2s"})
        _record(env)
        sim_base = _start_multiplex(env, coll)
        _record(env)
        want = min(4, len(devices))
        print(f"demo: collector at {coll.base_url}; waiting for data from {want} devices ...",
              flush=True)

        def with_data():
            n = sum(1 for d in devices
                    if coll.data("/api/v1/latest", device=d["id"], site=SITE))
            return n if n >= want else None
        harness.wait_until(with_data, 120, 1.0, f"data from {want} devices in the API")
        harness.wait_until(lambda: len(coll.data("/api/v1/devices", site=SIM_SITE)) >= 4, 120,
                           1.0, f"data from the {SIM_HALLS}-hall multiplex in the API")
    except BaseException as e:
        print(f"demo: failed: {e}", file=sys.stderr)
        logs = env.logs(20)
        if logs:
            print(logs, file=sys.stderr)
        for p in reversed(env.procs):
            p.stop()
        PIDS.unlink(missing_ok=True)
        return 1
    u = coll.base_url
    first = devices[0]["id"]
    metric = "light_source_hours" if first == "hall1/projector" else "uptime_seconds"
    q = f"site={SITE}&device={first}"
    print(f"""
cinemon demo is running: {len(devices)} recorded and live devices (site {SITE}) and a
{SIM_HALLS}-hall virtual multiplex from cinemon-sim on ports {sim_base}.. (site {SIM_SITE}),
all polled every 10 s.
  dashboard  {u}/   log in as {VIEWER!r} with password {password!r} (an operator: may
             acknowledge and silence; more accounts: cinemon-collector -c {coll.ini} viewer add)
The API below needs the session of the dashboard or an operator token:
  curl -H "Authorization: Bearer $(cat {RUN}/operator-token)" {u}/api/v1/sites
  sites    {u}/api/v1/sites
  devices  {u}/api/v1/devices?site={SITE}
           {u}/api/v1/devices?site={SIM_SITE}
  latest   {u}/api/v1/latest?{q}
           {u}/api/v1/latest?site={SIM_SITE}&device=hall7/lobby-projector
  series   {u}/api/v1/series?{q}&metric={metric}
  metrics  {u}/metrics
  health   {u}/healthz
State and logs: {RUN}/ (collector.err, agent.err, ...). PIDs: {PIDS}
Stop it with: make demo-stop""")
    return 0


def main():
    ap = argparse.ArgumentParser(description="start or stop the cinemon demo")
    ap.add_argument("--build", default="build")
    ap.add_argument("--stop", action="store_true")
    args = ap.parse_args()
    if args.stop:
        stop()
        return 0
    return start(Path(args.build).resolve())


if __name__ == "__main__":
    sys.exit(main())

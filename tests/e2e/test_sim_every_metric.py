"""The acceptance check of issue 4: `cinemon-agent --once` against `cinemon-sim --halls 12`
returns, for every device the simulator announces (`--print-config`), every metric its
profile declares — SNMP scalars and table columns, text commands, HTTP/XML values, and the
PJLink driver's fixed set — and `up` 1 for each."""

import collections
import configparser
import json
import os

import harness
from harness import wait_until

HALLS = 12

# The PJLink driver's metrics (profiles/pjlink-class1-2.json "note"; the sim is Class 2).
PJLINK = {"power_state", "error_status", "light_source_hours", "light_source_on",
          "input_source", "audio_mute", "video_mute", "filter_hours"}


def _sim_binary():
    try:
        return harness.binary("cinemon-sim")
    except AssertionError:
        return os.path.join(str(harness.BUILD), "cinemon-sim")


def declared_metrics(profile):
    """Every metric name a profile declares (traps excluded: they make events)."""
    out = set()

    def walk(v):
        if isinstance(v, dict):
            if isinstance(v.get("metric"), str):
                out.add(v["metric"])
            for k, x in v.items():
                if k != "traps":
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    for k in ("scalars", "tables", "commands", "requests", "values", "login"):
        walk(profile.get(k))
    if profile.get("protocol") == "pjlink":
        out |= PJLINK
    return out


def test_once_returns_every_metric_of_every_profile(env):
    base = harness.free_port_range(HALLS * 8)
    devices_ini = env.path("devices.ini")
    env.start("sim", [_sim_binary(), "--halls", HALLS, "--base-port", base,
                      "--print-config", devices_ini], check_exit=True)
    wait_until(lambda: os.path.exists(devices_ini) and os.path.getsize(devices_ini) > 0
               and harness._snmp_answers(base, "public"), 20, 0.1, "cinemon-sim")
    cfg = configparser.ConfigParser(strict=False, interpolation=None)
    cfg.read(devices_ini)
    devices = {}
    for sec in cfg.sections():
        if sec.startswith("device"):
            devices[sec.split('"')[1]] = cfg[sec]["profile"]
    assert len(devices) >= HALLS * 4, f"the sim announced only {len(devices)} devices"
    ini = env.write("agent.ini",
                    "[agent]\nsite = sim\nstate_dir = state\n"
                    f"profiles_dir = {harness.PROFILES}\ntimeout = 3s\nretries = 1\n\n"
                    + open(devices_ini).read())
    r = harness.agent_once(env, ini, timeout=120)
    assert r.returncode == 0, f"--once failed ({r.returncode}): {r.stderr[-2000:]}"
    got = collections.defaultdict(set)
    up = {}
    for line in r.stdout.splitlines():
        j = json.loads(line)
        if "metric" in j:
            got[j["device"]].add(j["metric"])
            if j["metric"] == "up":
                up[j["device"]] = j["value"]
    problems = []
    profiles = {}
    for dev, prof in sorted(devices.items()):
        if prof not in profiles:
            profiles[prof] = harness.load_profile(prof)
        want = declared_metrics(profiles[prof])
        assert want, f"profile {prof} declares no metric"
        missing = want - got[dev]
        if missing:
            problems.append(f"{dev} ({prof}): missing {sorted(missing)}")
        if up.get(dev) != 1:
            problems.append(f"{dev} ({prof}): up = {up.get(dev)}")
    assert not problems, "\n".join(problems[:40])
    # every kind of device of a hall is there, for every hall
    kinds = {p for p in devices.values()}
    assert {"christie-cp-series2", "generic-snmp-host", "pjlink-class1-2",
            "dolby-cp750"} <= kinds, kinds

"""SNMP → agent → collector → JSON API, end to end, against real SNMP agents: snmpsimd
serving the recorded walks of ../shared/fixtures/snmprec and a live net-snmp snmpd.

One stack per build (module_cache): snmpsim, snmpd, a collector on SQLite, and an agent
polling every 2 s the recorded devices, the live snmpd and a dead address. Each case waits
(with a deadline) for its values to show in the API. Expected values come from the
recordings (shared/docs/devices.md, section 2.1); metric names from shared/docs/metrics.md
and profiles/*.json.
"""

import json
import math
import time

import harness
from harness import wait_until

SITE = "cinema-e2e"
AGENT = "agent-e2e"
DEADLINE_S = 60 if not harness.ASAN else 90

# (device id, kind, profile or None = by sysObjectID, snmpsim community = recording name)
RECORDED = [
    ("hall1/projector", "projector", "christie-cp-series2", "christie-projector_cp"),
    ("hall2/projector", "projector", "epson-projector", "epson-projector_eb-4770w"),
    ("booth/ups-apc", "ups", "ups-apc", "apc_smt750x-nmc2"),
    ("booth/ups-generex", "ups", "ups-rfc1628", "generex-ups_cs141"),
    ("booth/ups-delta", "ups", None, "deltaups_rfc1628string"),
    ("booth/server", "server", None, "linux_icecast"),
]
LIVE = "booth/live-host"
DEAD = "hall9/projector"


class Stack:
    pass


def _start_stack(env):
    st = Stack()
    st.sim_port = harness.module_cache("snmpsim", harness.snmpsim)
    st.snmpd_port = harness.snmpd(env)
    st.dead_port = harness.free_port("udp")
    st.coll = harness.collector(env, tokens=[(AGENT, SITE)])
    devices = [harness.device(i, st.sim_port, comm, kind=k, profile=p)
               for i, k, p, comm in RECORDED]
    devices.append(harness.device(LIVE, st.snmpd_port, harness.SNMPD_COMMUNITY, kind="server",
                                  profile="generic-snmp-host"))
    devices.append(harness.device(DEAD, st.dead_port, "public", kind="projector",
                                  profile="christie-cp-series2"))
    st.agent = harness.agent(env, devices, st.coll, site=SITE, agent_id=AGENT)
    st.started = time.monotonic()
    return st


def stack():
    return harness.module_cache("stack", _start_stack)


# ---------------------------------------------------------------- helpers

def _latest(st, dev):
    return st.coll.data("/api/v1/latest", device=dev, site=SITE)


def _find(items, metric, labels):
    want = labels or {}
    for it in items:
        if it.get("metric") == metric and (it.get("labels") or {}) == want:
            return it
    return None


def _describe(items):
    return ", ".join(sorted(f"{it.get('metric')}{json.dumps(it.get('labels') or {})}="
                            f"{it.get('value')}" for it in items)) or "(nothing)"


def _agent_alive(st):
    if not st.agent.alive():
        raise AssertionError(f"agent exited ({st.agent.popen.returncode}):\n"
                             f"{harness._tail(st.agent.stderr())}")


def wait_value(st, dev, metric, expected=None, labels=None, check=None, tol=1e-6):
    """Wait until latest(dev) has metric{labels} equal to expected (or check(value) true);
    returns the item. On timeout the error lists what the device has."""
    seen = {"items": []}

    def ok():
        _agent_alive(st)
        items = _latest(st, dev)
        seen["items"] = items
        it = _find(items, metric, labels)
        if it is None or not isinstance(it.get("value"), (int, float)):
            return None
        v = it["value"]
        if check is not None:
            return it if check(v) else None
        return it if math.isclose(v, expected, rel_tol=1e-9, abs_tol=tol) else None
    try:
        return wait_until(ok, DEADLINE_S, 0.5, f"{dev} {metric}{labels or {}}")
    except AssertionError as e:
        want = f"== {expected}" if check is None else "to pass its check"
        raise AssertionError(f"{e}\n{dev}: expected {metric}{json.dumps(labels or {})} {want}; "
                             f"the API has: {_describe(seen['items'])}") from None


def _profile_labels(profile, metric):
    """Static labels the profile gives metric (its first scalar of that name), else {}."""
    for sc in harness.load_profile(profile).get("scalars", []) or []:
        if sc.get("metric") == metric:
            return sc.get("labels") or {}
    return {}


# ---------------------------------------------------------------- cases

def test_christie_lamp_hours():
    st = stack()
    wait_value(st, "hall1/projector", "light_source_hours", 3475, labels={"lamp": "1"})


def test_epson_lamp_hours_and_uptime():
    st = stack()
    wait_value(st, "hall2/projector", "light_source_hours", 79,
               labels=_profile_labels("epson-projector", "light_source_hours"))
    # sysUpTime 3397390769 ticks: above 2^31, must not turn negative
    wait_value(st, "hall2/projector", "uptime_seconds", 33973907.69, tol=1e-3)


def test_apc_battery():
    st = stack()
    wait_value(st, "booth/ups-apc", "ups_battery_temperature_celsius", 23.4, tol=1e-6)
    wait_value(st, "booth/ups-apc", "ups_battery_charge_percent", 100)


def test_generex_rfc1628():
    st = stack()
    wait_value(st, "booth/ups-generex", "ups_battery_charge_percent", 100)
    wait_value(st, "booth/ups-generex", "ups_runtime_seconds", 544 * 60)


def test_delta_rfc1628_with_null_varbinds():
    st = stack()
    # upsBatteryCurrent is a Null varbind in this recording: the rest must still arrive
    wait_value(st, "booth/ups-delta", "ups_battery_charge_percent", 29)
    wait_value(st, "booth/ups-delta", "up", 1)
    # chosen by its sysObjectID (1.3.6.1.4.1.2254.2.5): the Delta profile's 0.1 V scaling makes
    # the recording's upsInputVoltage.1 = 2360 read 236.0 V, not 2360 V
    wait_value(st, "booth/ups-delta", "ups_input_voltage_volts", 236.0, labels={"line": "1"})


def test_linux_host_profile_chosen_by_sysobjectid():
    st = stack()

    def chosen():
        for d in st.coll.data("/api/v1/devices", site=SITE):
            if (d.get("id") or d.get("device")) == "booth/server":
                return d if d.get("profile") == "generic-snmp-host" else None
        return None
    try:
        wait_until(chosen, DEADLINE_S, 0.5, "booth/server in /api/v1/devices")
    except AssertionError as e:
        devs = st.coll.data("/api/v1/devices", site=SITE)
        raise AssertionError(f"{e}\n/api/v1/devices: {json.dumps(devs)[:2000]}") from None
    wait_value(st, "booth/server", "up", 1)


# OIDs of the live snmpd the generic-snmp-host profile may read, stable first:
# hrMemorySize, memTotalReal, hrSystemNumUsers.
STABLE_OIDS = ["1.3.6.1.2.1.25.2.2.0", "1.3.6.1.4.1.2021.4.5.0", "1.3.6.1.2.1.25.1.5.0"]


def test_live_snmpd_matches_snmpget():
    st = stack()
    prof = harness.load_profile("generic-snmp-host")
    for oid in STABLE_OIDS:
        sc = harness.profile_scalar(prof, oid)
        if sc and not sc.get("enum") and not sc.get("enums"):
            raw = float(harness.snmpget(st.snmpd_port, harness.SNMPD_COMMUNITY, oid)[0].split()[0])
            expected = raw * float(sc.get("scale", 1)) + float(sc.get("offset", 0))
            labels = sc.get("labels") or {}
            wait_value(st, LIVE, sc["metric"], expected, labels=labels,
                       tol=max(1e-6, abs(expected) * 1e-9))
            return
    # no stable scalar in the profile: compare the uptime, which moves with time
    ticks = float(harness.snmpget(st.snmpd_port, harness.SNMPD_COMMUNITY, "1.3.6.1.2.1.1.3.0",
                                  opts="-Oqvt")[0])
    now = ticks / 100.0
    slack = 5 + DEADLINE_S
    wait_value(st, LIVE, "uptime_seconds", labels={},
               check=lambda v: now - slack <= v <= now + slack)


def test_dead_device_is_visible_and_does_not_stall_others():
    st = stack()
    wait_value(st, DEAD, "up", 0)
    wait_value(st, DEAD, "poll_errors_total", labels={"reason": "timeout"},
               check=lambda v: v >= 1)
    for dev, *_ in RECORDED + [(LIVE,)]:
        wait_value(st, dev, "up", 1)


def test_series_and_metrics_endpoints():
    st = stack()
    wait_value(st, "hall1/projector", "light_source_hours", 3475, labels={"lamp": "1"})
    now = int(time.time() * 1000)
    data = st.coll.data("/api/v1/series", device="hall1/projector", metric="light_source_hours",
                        site=SITE, **{"from": now - 3600_000, "to": now + 60_000})
    assert data, "series of hall1/projector light_source_hours is empty"
    sites = st.coll.data("/api/v1/sites")
    assert any(SITE in json.dumps(s) for s in sites), f"{SITE} not in /api/v1/sites: {sites}"
    s, _, raw, _ = harness.request("GET", st.coll.base_url + "/metrics")
    assert s == 200, f"/metrics status {s}"
    text = raw.decode(errors="replace")
    assert any(ln and not ln.startswith("#") for ln in text.splitlines()), \
        f"/metrics has no samples: {text[:500]!r}"


# ---------------------------------------------------------------- --once

ONCE_KEYS = {"device", "metric", "labels", "value", "ts_ms"}


def _once_lines(stdout):
    out = []
    for n, line in enumerate(stdout.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError(f"--once stdout line {n} is not JSON: {line!r}") from None
        assert isinstance(obj, dict), f"line {n} is not an object: {line!r}"
        missing = ONCE_KEYS - obj.keys()
        assert not missing, f"line {n} lacks {sorted(missing)}: {line!r}"
        assert isinstance(obj["device"], str) and isinstance(obj["metric"], str), line
        assert isinstance(obj["labels"], dict), f"line {n}: labels not an object: {line!r}"
        assert all(isinstance(v, str) for v in obj["labels"].values()), line
        assert isinstance(obj["value"], (int, float)) and not isinstance(obj["value"], bool), line
        assert isinstance(obj["ts_ms"], int), f"line {n}: ts_ms not an integer: {line!r}"
        assert abs(obj["ts_ms"] - time.time() * 1000) < 3600_000, f"line {n}: ts_ms off: {line!r}"
        out.append(obj)
    return out


def test_once_prints_json_lines(env):
    port = harness.module_cache("snmpsim", harness.snmpsim)
    devices = [harness.device(i, port, comm, kind=k, profile=p) for i, k, p, comm in RECORDED]
    devices.append(harness.device(DEAD, harness.free_port("udp"), "public", kind="projector",
                                  profile="christie-cp-series2"))
    ini = harness.write_agent_ini(env, devices, site=SITE, agent_id=AGENT)
    r = harness.agent_once(env, ini)
    assert not harness.sanitizer_problem(r.stderr), r.stderr[-4000:]
    assert r.returncode == 0, f"--once exit {r.returncode}; stderr:\n{r.stderr[-3000:]}"
    lines = _once_lines(r.stdout)
    assert any(o["device"] == "hall1/projector" and o["metric"] == "light_source_hours"
               and o["labels"] == {"lamp": "1"} and o["value"] == 3475 for o in lines), \
        "no light_source_hours{lamp=\"1\"} 3475 for hall1/projector in --once output:\n" + \
        "\n".join(json.dumps(o) for o in lines if o["device"] == "hall1/projector")
    devs = {o["device"] for o in lines}
    missing = {d for d, *_ in RECORDED} - devs
    assert not missing, f"--once printed nothing for {sorted(missing)}"


def test_once_only_dead_device_fails(env):
    devices = [harness.device(DEAD, harness.free_port("udp"), "public", kind="projector",
                              profile="christie-cp-series2")]
    harness.load_profile("christie-cp-series2")  # a missing profile is another failure
    ini = harness.write_agent_ini(env, devices, site=SITE, agent_id=AGENT)
    r = harness.agent_once(env, ini)
    assert not harness.sanitizer_problem(r.stderr), r.stderr[-4000:]
    assert r.returncode not in (0,) and r.returncode > 0, \
        f"--once with only a dead device: exit {r.returncode} (want non-zero, no crash); " \
        f"stderr:\n{r.stderr[-2000:]}"

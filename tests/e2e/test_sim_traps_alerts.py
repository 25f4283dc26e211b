"""A trap from the simulator raises an alert and its clear trap resolves it (issue 5), end to
end: cinemon-sim's projector goes silent (a fault episode) and sends SNMPv2-MIB linkDown; the
agent's trap receiver maps it with the projector profile to the event link_down; the batch
reaches the collector, whose event rule network_link fires; when the episode ends the
simulator sends linkUp, mapped to link_up, which resolves the same alert."""

import configparser
import os
import time

import harness
from harness import wait_until

SLOTS = 8  # port = base + (hall - 1) * 8 + slot (sim/README.md)
DEVICE = "hall1/projector"
# With this seed and rate, hall 1's projector starts a silent episode of about 9 s at about
# its 13th request (the agent's first polls, interval 1 s), so the test takes ~15 s; a later
# episode would do as well (a quarter of fault episodes are silent; they last 5-20 s).
SEED, FAULT_RATE = 11, 0.05


def _sim_binary():
    try:
        return harness.binary("cinemon-sim")
    except AssertionError:
        return os.path.join(str(harness.BUILD), "cinemon-sim")


def _projector_section(path):
    """The [device "hall1/projector"] section cinemon-sim printed (port, profile, ...)."""
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(path)
    return cp[f'device "{DEVICE}"']


def test_silent_projector_link_down_raises_and_link_up_resolves(env):
    t_start = time.monotonic()
    coll = harness.collector(env, tokens=[("agent1", "site1")])
    trap_port = harness.free_port("udp")
    base = harness.free_port_range(SLOTS)
    frag = env.path("devices.ini")
    sim = env.start("sim", [_sim_binary(), "--halls", "1", "--base-port", str(base),
                            "--seed", str(SEED), "--fault-rate", str(FAULT_RATE),
                            "--trap-target", f"127.0.0.1:{trap_port}", "--print-config", frag],
                    check_exit=True)

    def printed():
        if not sim.alive():
            raise harness.ProcessDied(f"cinemon-sim exited: {sim.stderr()}")
        return os.path.exists(frag) and "projector" in open(frag).read()
    wait_until(printed, 20, 0.1, "cinemon-sim --print-config")
    sec = _projector_section(frag)
    assert int(sec["port"]) == base, dict(sec)
    assert sec["profile"] == "christie-cp-series2", dict(sec)  # odd halls: Christie-like
    # only the projector: the trap receiver knows a sender by its address (all on 127.0.0.1)
    dev = harness.device(DEVICE, int(sec["port"]), sec["community"], kind=sec["kind"],
                         profile=sec["profile"])
    harness.agent(env, [dev], coll, extra={"traps.listen": f"127.0.0.1:{trap_port}",
                                          "traps.community": "public", "interval": "1s",
                                          "upload.interval": "1s"})

    def firing():
        return [a for a in coll.data("/api/v1/alerts", rule="network_link", state="firing")
                if a["device"] == DEVICE]
    fired = wait_until(firing, 30, 0.3, "network_link firing for hall1/projector")
    assert len(fired) == 1, fired  # one alert per (rule, device, labels)
    a = fired[0]
    assert a["site"] == "site1" and a["labels"] == {"code": "link_down"}, a
    assert a["severity"] == "warning", a
    assert "RFC 3418" in a["text"], a

    # the episode ends (5-20 s): linkUp resolves the same alert
    def resolved():
        for r in coll.data("/api/v1/alerts", rule="network_link", device=DEVICE):
            if r["id"] == a["id"] and r["state"] == "resolved":
                return r
        return None
    res = wait_until(resolved, 25, 0.3, f"alert {a['id']} resolved by link_up")
    assert res["resolved_ms"] >= res["firing_ms"], res

    # the events behind it: link_down (warning) then link_up (info), from the trap receiver
    evs = coll.data("/api/v1/events", device=DEVICE)
    downs = [e for e in evs if e["code"] == "link_down"]
    ups = [e for e in evs if e["code"] == "link_up"]
    assert downs and ups, evs
    assert all(e["source"] == "snmp-trap" for e in downs + ups), evs
    assert downs[-1]["severity"] == "warning" and downs[-1]["text"] == "Network link down", downs
    assert ups[-1]["severity"] == "info", ups
    assert min(u["ts_ms"] for u in ups) >= min(d["ts_ms"] for d in downs), evs
    # the catch-all trap rule leaves the codes network_link owns alone
    caught = [x for x in coll.data("/api/v1/alerts", rule="device_trap", device=DEVICE)
              if x["labels"].get("code") in ("link_down", "link_up")]
    assert caught == [], caught
    # the alert's history: fired, then resolved
    s, one = coll.get(f"/api/v1/alerts/{a['id']}")
    assert s == 200, (s, one)
    states = [h["state"] for h in one.get("history", [])]
    assert "firing" in states and "resolved" in states, one

    assert env.stop(sim) is None
    assert "traps:" in sim.stderr(), sim.stderr()
    assert time.monotonic() - t_start < 60

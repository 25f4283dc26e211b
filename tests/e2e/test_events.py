"""Events end to end: an SNMP trap sent with net-snmp's snmptrap to the agent's trap receiver
becomes an event of the profile's traps table, travels in a batch to the collector and is
served by GET /api/v1/events with its filters; bad parameters get a 400 naming the parameter."""

import subprocess

import harness
from harness import wait_until

CHRISTIE_FAN = "1.3.6.1.4.1.25766.1.11.100.3.0.1"
CHRISTIE_LAMP_EXPIRE = "1.3.6.1.4.1.25766.1.11.100.3.0.5"
CHRISTIE_LAMP_STRIKE = "1.3.6.1.4.1.25766.1.11.100.3.0.6"
CHRISTIE_COOLANT = "1.3.6.1.4.1.25766.1.11.100.3.0.8"


def _snmptrap(port, oid, community="public"):
    harness.need_tool("/usr/bin/snmptrap")
    r = subprocess.run(["/usr/bin/snmptrap", "-v", "2c", "-c", community,
                        f"udp:127.0.0.1:{port}", "", oid,
                        "1.3.6.1.2.1.1.5.0", "s", "hall1-projector"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, f"snmptrap failed: {r.stderr}"


def test_trap_becomes_event_in_api(env):
    coll = harness.collector(env, tokens=[("agent1", "site1")])
    trap_port = harness.free_port("udp")
    dead = harness.free_port("udp")  # the projector itself need not answer polls
    dev = harness.device("hall1/projector", dead, "public", kind="projector",
                         profile="christie-cp-series2")
    harness.agent(env, [dev], coll, extra={"traps.listen": f"127.0.0.1:{trap_port}",
                                          "traps.community": "public",
                                          "upload.interval": "1s"})
    # the receiver is up once a trap is accepted; resend until the event shows
    def arrived():
        _snmptrap(trap_port, CHRISTIE_FAN)
        return coll.data("/api/v1/events", site="site1")
    events = wait_until(arrived, 30, 1.0, "trap event in /api/v1/events")
    ev = events[0]
    assert ev["device"] == "hall1/projector", ev
    assert ev["site"] == "site1", ev
    assert ev["severity"] in ("warning", "critical"), ev
    assert ev["source"] == "snmp-trap", ev
    assert isinstance(ev["ts_ms"], int) and ev["ts_ms"] > 1_700_000_000_000, ev
    fan_code = ev["code"]

    # a second, different trap: newest first
    _snmptrap(trap_port, CHRISTIE_LAMP_EXPIRE)
    def two_codes():
        evs = coll.data("/api/v1/events", device="hall1/projector")
        return evs if len({e["code"] for e in evs}) >= 2 else None
    evs = wait_until(two_codes, 30, 0.5, "second trap event")
    assert evs[0]["ts_ms"] >= evs[-1]["ts_ms"], evs
    assert fan_code in {e["code"] for e in evs}

    # filters
    assert coll.data("/api/v1/events", device="hall9/nothing") == []
    assert coll.data("/api/v1/events", site="other-site") == []
    assert len(coll.data("/api/v1/events", limit=1)) == 1
    crit = coll.data("/api/v1/events", severity="critical")
    assert all(e["severity"] == "critical" for e in crit), crit
    assert coll.data("/api/v1/events", to="1000") == []  # range in 1970

    assert ev["code"] == "fan" and ev["severity"] == "critical", ev
    assert {e["code"] for e in evs} >= {"fan", "lamp_expire"}, evs

    # a trap with the wrong community is not believed: a lamp-strike trap sent with it never
    # becomes an event, while a good one sent after it does
    _snmptrap(trap_port, CHRISTIE_LAMP_STRIKE, community="wrong")
    _snmptrap(trap_port, CHRISTIE_COOLANT)
    wait_until(lambda: any(e["code"] == "coolant" for e in coll.data("/api/v1/events")), 30,
               0.5, "coolant event after the wrong-community trap")
    codes = {e["code"] for e in coll.data("/api/v1/events")}
    assert "lamp_strike" not in codes, codes


def test_events_bad_parameters(env):
    coll = harness.collector(env)
    for q, at in (({"severity": "fatal"}, "severity"), ({"limit": "0"}, "limit"),
                  ({"limit": "x"}, "limit"), ({"from": "yesterday"}, "from"),
                  ({"from": "2000", "to": "1000"}, "from"), ({"colour": "red"}, "colour")):
        s, j = coll.get("/api/v1/events", **q)
        assert s == 400, (q, s, j)
        assert j.get("at") == at, (q, j)
    assert coll.data("/api/v1/events") == []
    assert coll.healthy()

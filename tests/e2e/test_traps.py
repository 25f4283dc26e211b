"""SNMP informs and v3 traps end to end, sent with net-snmp's own snmpinform / snmptrap to the
real agent: a v3 authPriv inform (SHA + AES) is acknowledged (snmpinform exits 0) and its
event, mapped by the Christie profile's traps table, reaches /api/v1/events; so does one sent
without -e (the sender discovers the agent's engine ID), a v2c inform and a v3 trap. A wrong
auth or privacy password makes snmpinform fail and never becomes an event. The agent's engine
ID is kept in state_dir and is the same after a restart; the passwords are never logged."""

import subprocess

import harness
from harness import wait_until

SNMPINFORM = "/usr/bin/snmpinform"
SNMPTRAP = "/usr/bin/snmptrap"
USER, AUTHPW, PRIVPW = "cinemon", "auth-secret-e2e", "priv-secret-e2e"
FAN = "1.3.6.1.4.1.25766.1.11.100.3.0.1"
LAMP_EXPIRE = "1.3.6.1.4.1.25766.1.11.100.3.0.5"
LAMP_STRIKE = "1.3.6.1.4.1.25766.1.11.100.3.0.6"
COOLANT = "1.3.6.1.4.1.25766.1.11.100.3.0.8"
TEMPERATURE = "1.3.6.1.4.1.25766.1.11.100.3.0.3"
TAMPER = "1.3.6.1.4.1.25766.1.11.100.3.0.10"
TOOL_ENV = {"MIBS": "", "MIBDIRS": "/dev/null", "SNMPCONFPATH": "/nonexistent",
            "PATH": "/usr/bin:/bin"}


def _send(tool, port, args, oid, timeout=20):
    harness.need_tool(tool)
    env = dict(TOOL_ENV, SNMP_PERSISTENT_DIR="/tmp")
    r = subprocess.run([tool, "-M", "/dev/null"] + args + [f"udp:127.0.0.1:{port}", "", oid],
                       capture_output=True, text=True, timeout=timeout, env=env)
    return r


def _v3(auth=AUTHPW, priv=PRIVPW, engine=None):
    a = ["-v", "3", "-u", USER, "-l", "authPriv", "-a", "SHA", "-A", auth, "-x", "AES",
         "-X", priv]
    return a + (["-e", "0x" + engine] if engine else [])


def _engine(env):
    line = open(env.path("state", "traps-engine")).read().split()
    return line[0], int(line[1])


def _start(env, coll, trap_port):
    dead = harness.free_port("udp")  # the projector itself need not answer polls
    dev = harness.device("hall1/projector", dead, "public", kind="projector",
                         profile="christie-cp-series2")
    return harness.agent(env, [dev], coll, extra={
        "traps.listen": f"127.0.0.1:{trap_port}", "traps.community": "public",
        "traps.v3_user": USER, "traps.v3_auth_password": AUTHPW,
        "traps.v3_priv_password": PRIVPW, "upload.interval": "1s"})


def _codes(coll):
    return {e["code"] for e in coll.data("/api/v1/events", site="site1")}


def test_v3_informs_and_traps(env):
    harness.need_tool(SNMPINFORM)
    coll = harness.collector(env, tokens=[("agent1", "site1")])
    trap_port = harness.free_port("udp")
    agent = _start(env, coll, trap_port)
    wait_until(lambda: env.path("state", "traps-engine").exists(), 15, 0.2, "engine file")
    engine, boots = _engine(env)
    assert boots == 1 and engine.startswith("80001f8805") and len(engine) == 34, (engine, boots)

    # a v3 authPriv inform to the agent's engine ID: acknowledged, then in the API
    def acked():
        r = _send(SNMPINFORM, trap_port, ["-t", "2", "-r", "1"] + _v3(engine=engine), FAN)
        return r.returncode == 0
    wait_until(acked, 30, 0.5, "v3 inform acknowledged")
    evs = wait_until(lambda: [e for e in coll.data("/api/v1/events", site="site1")
                              if e["code"] == "fan"], 30, 0.5, "fan event")
    assert evs[0]["severity"] == "critical" and evs[0]["source"] == "snmp-trap", evs
    assert evs[0]["device"] == "hall1/projector", evs

    # without -e: snmpinform discovers the engine ID first
    r = _send(SNMPINFORM, trap_port, ["-t", "2", "-r", "1"] + _v3(), LAMP_EXPIRE)
    assert r.returncode == 0, r.stderr
    # a v2c inform is acknowledged too
    r = _send(SNMPINFORM, trap_port, ["-t", "2", "-r", "1", "-v", "2c", "-c", "public"],
              TEMPERATURE)
    assert r.returncode == 0, r.stderr
    # a v3 trap from the device's own engine ID
    r = _send(SNMPTRAP, trap_port, _v3(engine="80001f8805aabbccdd01"), TAMPER)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: _codes(coll) >= {"fan", "lamp_expire", "temperature", "security_tamper"},
               30, 0.5, "inform and trap events")

    # wrong passwords: snmpinform fails, nothing arrives; a good inform after them does
    r = _send(SNMPINFORM, trap_port, ["-t", "1", "-r", "0"] + _v3(auth="wrong-auth-pw",
                                                                   engine=engine), LAMP_STRIKE)
    assert r.returncode != 0, "an inform with a wrong auth password was acknowledged"
    r = _send(SNMPINFORM, trap_port, ["-t", "1", "-r", "0"] + _v3(priv="wrong-priv-pw",
                                                                   engine=engine), LAMP_STRIKE)
    assert r.returncode != 0, "an inform with a wrong privacy password was acknowledged"
    r = _send(SNMPINFORM, trap_port, ["-t", "2", "-r", "1"] + _v3(engine=engine), COOLANT)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: "coolant" in _codes(coll), 30, 0.5, "coolant after the refused ones")
    assert "lamp_strike" not in _codes(coll)

    # restart: the same engine ID, one more boot; informs to it still work
    problem = env.stop(agent)
    assert problem is None, problem
    log = agent.stderr() + agent.stdout()
    assert engine in log, "the engine ID is logged at start-up"
    for secret in (AUTHPW, PRIVPW, "wrong-auth-pw", "wrong-priv-pw"):
        assert secret not in log, f"a password is in the log"
    agent = _start(env, coll, trap_port)
    wait_until(lambda: _engine(env)[1] == 2, 15, 0.2, "boots 2 after the restart")
    assert _engine(env)[0] == engine
    wait_until(acked, 30, 0.5, "v3 inform acknowledged after the restart")

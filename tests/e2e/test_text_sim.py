"""cinemon-sim's CP750-like processor (port base + 3, sim/README.md) polled by the agent's
text-protocol driver: `cinemon-agent --once` with a [device] of protocol = text and
profile = dolby-cp750 reports audio_fader_level and audio_mute."""

import json
import os
import socket

import harness
from harness import wait_until


def _sim_binary():
    try:
        return harness.binary("cinemon-sim")
    except AssertionError:
        return os.path.join(str(harness.BUILD), "cinemon-sim")


def _send(port, line):
    """Send one command and read its CRLF-terminated reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(line.encode() + b"\r\n")
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
        return data.decode()


def test_agent_polls_cp750(env):
    base = harness.free_port_range(8)
    proc = env.start("sim", [_sim_binary(), "--halls", 1, "--base-port", base], check_exit=True)
    wait_until(lambda: harness._snmp_answers(base, "public"), 20, 0.1, "cinemon-sim")
    port = base + 3
    assert _send(port, "cp750.sys.fader 70") == "cp750.sys.fader 70\r\n"
    assert _send(port, "cp750.sys.mute 0") == "cp750.sys.mute 0\r\n"
    ini = env.write("agent.ini", "[agent]\nsite = sim\nstate_dir = state\n"
                    f"profiles_dir = {harness.PROFILES}\ntimeout = 2s\nretries = 1\n\n"
                    "[device \"hall1/audio\"]\nprotocol = text\nprofile = dolby-cp750\n"
                    f"address = 127.0.0.1\nport = {port}\nkind = audio_processor\n")
    r = harness.agent_once(env, ini)
    assert r.returncode == 0, f"agent --once failed ({r.returncode}): {r.stderr}"
    got = {}
    for ln in r.stdout.splitlines():
        j = json.loads(ln)
        if j.get("device") == "hall1/audio":
            got[j["metric"]] = j["value"]
    assert abs(got.get("audio_fader_level", -1) - 7.0) < 1e-9, got
    assert got.get("audio_mute") == 0, got
    assert got.get("audio_input_mode") in range(8), got
    assert env.stop(proc) is None

"""cinemon-sim end to end: start `cinemon-sim --halls 2` on a free port range, read values
and walk tables with net-snmp's snmpget/snmpbulkwalk, then poll every simulated SNMP device
once with `cinemon-agent --once` using the config the simulator printed."""

import json
import os
import socket
import subprocess

import harness
from harness import wait_until

HALLS = 2
SLOTS = 8  # port = base + (hall - 1) * 8 + slot (sim/README.md)


def _sim_binary():
    try:
        return harness.binary("cinemon-sim")
    except AssertionError:
        return os.path.join(str(harness.BUILD), "cinemon-sim")


def _free_base():
    """A base port whose whole range (HALLS * SLOTS) is free for UDP right now."""
    for _ in range(50):
        base = harness.free_port("udp")
        if base + HALLS * SLOTS > 65535:
            continue
        socks = []
        try:
            for p in range(base, base + HALLS * SLOTS):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free UDP port range")


def _start(env):
    base = _free_base()
    frag = env.path("devices.ini")
    proc = env.start("sim", [_sim_binary(), "--halls", HALLS, "--base-port", base,
                             "--seed", "7", "--print-config", frag], check_exit=True)

    def ready():
        if not proc.alive():
            raise harness.ProcessDied(f"cinemon-sim exited: {proc.stderr()}")
        return frag.exists() and harness._snmp_answers(base, "public")
    wait_until(ready, 20, 0.1, "cinemon-sim answering SNMP")
    return base, frag, proc


def _walk(port, oid):
    tool = harness.need_tool("snmpbulkwalk")
    r = subprocess.run([tool, "-v2c", "-c", "public", "-On", "-Oq", "-m", "", "-t", "1",
                        "-r", "1", f"127.0.0.1:{port}", oid], capture_output=True, text=True,
                       timeout=30, env=dict(os.environ, MIBS=""))
    assert r.returncode == 0, f"snmpbulkwalk {port} {oid}: {r.stderr}"
    rows = {}
    for ln in r.stdout.splitlines():
        k, _, v = ln.partition(" ")
        rows[k.lstrip(".")] = v.strip().strip('"')
    return rows


def test_snmp_values_and_tables(env):
    harness.need_tool("snmpget")
    base, _, proc = _start(env)
    for hall in range(1, HALLS + 1):
        proj = base + (hall - 1) * SLOTS
        ims = proj + 1
        vals = harness.snmpget(proj, "public", "1.3.6.1.2.1.1.2.0",
                               "1.3.6.1.4.1.25766.1.12.1.1.3.5.1.6.1",
                               "1.3.6.1.4.1.25766.1.12.1.1.2.1.0", opts="-Oqvn")
        assert vals[0].lstrip(".").startswith("1.3.6.1.4.1.25766."), vals
        assert int(vals[1]) > 0, vals
        assert vals[2].startswith("CP22"), vals
        temps = _walk(proj, "1.3.6.1.4.1.25766.1.12.1.4.2.2.1.1.6")
        assert len(temps) == 17, temps
        assert all(10 <= int(v) <= 120 for v in temps.values()), temps
        names = _walk(proj, "1.3.6.1.4.1.25766.1.12.1.4.2.2.1.1.2")
        assert names.get("1.3.6.1.4.1.25766.1.12.1.4.2.2.1.1.2.1") == "Lamp House", names
        cpus = _walk(ims, "1.3.6.1.2.1.25.3.3.1.2")
        assert len(cpus) == 4, cpus
        ifs = _walk(ims, "1.3.6.1.2.1.2.2.1.2")
        assert sorted(ifs.values()) == ["eth0", "eth1", "lo"], ifs
        # the whole MIB walks to its end
        everything = _walk(ims, "1.3.6.1")
        assert len(everything) > 50, len(everything)
    # a wrong community gets no answer
    try:
        harness.snmpget(base, "wrong", "1.3.6.1.2.1.1.3.0", timeout=0.3, retries=0)
        raise AssertionError("answered a wrong community")
    except RuntimeError:
        pass
    # garbage does not hurt it
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for junk in (b"", b"\x30", b"\x30\x84\xff\xff\xff\xff", os.urandom(300)):
            s.sendto(junk, ("127.0.0.1", base))
    assert harness.snmpget(base, "public", "1.3.6.1.2.1.1.3.0")
    assert proc.alive()
    assert env.stop(proc) is None
    assert "malformed" in proc.stderr()


def test_agent_once_reads_every_metric(env):
    base, frag, proc = _start(env)
    ini = env.write("agent.ini", "[agent]\nsite = sim\nstate_dir = state\n"
                    f"profiles_dir = {harness.PROFILES}\ntimeout = 2s\nretries = 1\n\n"
                    + frag.read_text())
    r = harness.agent_once(env, ini)
    assert r.returncode == 0, f"agent --once failed ({r.returncode}): {r.stderr}"
    got = {}
    for ln in r.stdout.splitlines():
        j = json.loads(ln)
        got.setdefault(j["device"], set()).add(j["metric"])
    prof = harness.load_profile("christie-cp-series2")
    want = {s["metric"] for s in prof["scalars"]}
    want |= {c["metric"] for t in prof["tables"] for c in t["columns"]}
    host = harness.load_profile("generic-snmp-host")
    want_host = {s["metric"] for s in host["scalars"]}
    want_host |= {c["metric"] for t in host["tables"] for c in t["columns"]}
    for hall in range(1, HALLS + 1):
        missing = want - got.get(f"hall{hall}/projector", set())
        assert not missing, f"hall{hall}/projector lacks {sorted(missing)}"
        missing = want_host - got.get(f"hall{hall}/ims", set())
        assert not missing, f"hall{hall}/ims lacks {sorted(missing)}"
        # the PJLink lobby projector, polled by the agent's PJLink driver
        want_pj = {"power_state", "error_status", "light_source_hours", "input_source"}
        missing = want_pj - got.get(f"hall{hall}/lobby-projector", set())
        assert not missing, f"hall{hall}/lobby-projector lacks {sorted(missing)}"
        # the CP750-like processor, polled by the text-protocol driver
        missing = {"audio_fader_level", "audio_mute"} - got.get(f"hall{hall}/audio", set())
        assert not missing, f"hall{hall}/audio lacks {sorted(missing)}"
    assert env.stop(proc) is None


def _recv_line(sock, end=b"\r"):
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(256)
        if not chunk:
            break
        data += chunk
    return data.decode()


def test_pjlink_auth_and_commands(env):
    import hashlib
    base = _free_base()
    frag = env.path("devices.ini")
    proc = env.start("sim", [_sim_binary(), "--halls", 1, "--base-port", base,
                             "--pjlink-password", "JBMIAProjectorLink", "--print-config", frag],
                     check_exit=True)
    wait_until(lambda: harness._snmp_answers(base, "public"), 20, 0.1, "cinemon-sim")
    with socket.create_connection(("127.0.0.1", base + 2), timeout=5) as s:
        greet = _recv_line(s)
        assert greet.startswith("PJLINK 1 ") and len(greet.split()[2]) == 8, greet
        digest = hashlib.md5((greet.split()[2] + "JBMIAProjectorLink").encode()).hexdigest()
        s.sendall((digest + "%1POWR ?\r").encode())
        assert _recv_line(s) == "%1POWR=1\r"
        s.sendall(b"%1LAMP ?\r")
        hours, on = _recv_line(s)[len("%1LAMP="):-1].split()
        assert int(hours) > 0 and on == "1"
        s.sendall(b"%2CLSS ?\r")
        assert _recv_line(s) == "%2CLSS=2\r"
        s.sendall(b"%1SNUM ?\r")
        assert _recv_line(s) == "%1SNUM=ERR1\r"  # a Class 2 command with %1
        s.sendall(b"%2SNUM ?\r")
        assert _recv_line(s).startswith("%2SNUM=PJ")
    with socket.create_connection(("127.0.0.1", base + 2), timeout=5) as s:
        _recv_line(s)
        s.sendall(b"0" * 32 + b"%1POWR ?\r")
        assert _recv_line(s) == "PJLINK ERRA\r"
        assert s.recv(16) == b""  # closed after a wrong password
    assert env.stop(proc) is None


def test_cp750_text_protocol(env):
    base = _free_base()
    proc = env.start("sim", [_sim_binary(), "--halls", 1, "--base-port", base], check_exit=True)
    wait_until(lambda: harness._snmp_answers(base, "public"), 20, 0.1, "cinemon-sim")
    with socket.create_connection(("127.0.0.1", base + 3), timeout=5) as s:
        s.sendall(b"cp750.sys.fader ?\r\n")
        line = _recv_line(s, b"\r\n")
        assert line.startswith("cp750.sys.fader ") and 0 <= int(line.split()[1]) <= 100, line
        s.sendall(b"cp750.sys.fader 70\r\n")
        assert _recv_line(s, b"\r\n") == "cp750.sys.fader 70\r\n"
        s.sendall(b"cp750.sys.mute 1\r\ncp750.sys.mute ?\r\n")
        got = _recv_line(s, b"\r\n")
        if got.count("\r\n") < 2:
            got += _recv_line(s, b"\r\n")
        assert got == "cp750.sys.mute 1\r\ncp750.sys.mute 1\r\n", got
        s.sendall(b"cp750.sys.input_mode ?\r\n")
        assert _recv_line(s, b"\r\n") == "cp750.sys.input_mode dig_1\r\n"
    assert env.stop(proc) is None

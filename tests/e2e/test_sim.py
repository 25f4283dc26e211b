"""cinemon-sim end to end: start `cinemon-sim --halls 2` on a free port range, read values
and walk tables with net-snmp's snmpget/snmpbulkwalk (hall 1 Christie-like, hall 2
Barco-like), poll every simulated device once with `cinemon-agent --once` using the config
the simulator printed, poll the benchmark devices (`--bench-devices`), and receive the traps
the projectors send on faults (`--trap-target`) with a Python UDP socket and snmptrapd."""

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


def _start(env, *extra):
    base = harness.free_port_range(HALLS * SLOTS)
    frag = env.path("devices.ini")
    proc = env.start("sim", [_sim_binary(), "--halls", HALLS, "--base-port", base,
                             "--seed", "7", "--print-config", frag, *extra], check_exit=True)

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
        if hall % 2 == 0:
            _check_barco(proj)
        else:
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


B = "1.3.6.1.4.1.12612.220.11"


def _check_barco(port):
    """The Barco-like projector answers the OIDs of shared/docs/devices.md §1.4 / §6 item 4."""
    vals = harness.snmpget(port, "public", "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0",
                           f"{B}.2.2.1.0", f"{B}.1.2.12.0", f"{B}.1.2.18.0", f"{B}.2.2.4.1.0",
                           f"{B}.2.2.4.2.0", f"{B}.2.2.4.8.1.2.0", f"{B}.2.2.4.8.1.2.1",
                           f"{B}.2.2.4.6.0", f"{B}.2.2.5.0", opts="-Oqvn")
    assert vals[0].startswith("DP"), vals
    assert vals[1].lstrip(".").startswith(B + "."), vals
    assert vals[2].isdigit() and vals[3] == "4.5.454" and vals[4] == "P1.8(24)", vals
    assert "OSRAM" in vals[6], vals
    assert int(vals[7]) > 200 * 60 and int(vals[8]) > int(vals[7]), vals
    assert 0 <= int(vals[9]) <= 100 and vals[10] == "1", vals
    for table, lo, hi in ((1, 10, 120), (2, 3000, 30000), (3, 500, 6000)):
        values = _walk(port, f"{B}.4.2.1.{table}.1.2")
        # the fan names are the last column of the MIB: drop the endOfMibView line
        names = {k: v for k, v in _walk(port, f"{B}.4.2.1.{table}.1.8").items()
                 if not v.startswith("No more variables")}
        assert values and len(values) == len(names), (values, names)
        assert all(lo <= int(v) <= hi for v in values.values()), values
    names = _walk(port, f"{B}.4.2.1.1.1.8")
    assert names[f"{B}.4.2.1.1.1.8.2"] == "Lamp House", names


def _read_ini_devices(text):
    """{id: {key: value}} of the [device "ID"] sections the simulator printed."""
    devs, cur = {}, None
    for ln in text.splitlines():
        ln = ln.strip()
        if ln.startswith("[device "):
            cur = devs.setdefault(ln.split('"')[1], {})
        elif cur is not None and "=" in ln and not ln.startswith(";"):
            k, _, v = ln.partition("=")
            cur[k.strip()] = v.strip()
    return devs


def _profile_metrics(name):
    prof = harness.load_profile(name)
    want = {s["metric"] for s in prof.get("scalars", [])}
    want |= {c["metric"] for t in prof.get("tables", []) for c in t["columns"]}
    return want


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
    devs = _read_ini_devices(frag.read_text())
    # every SNMP device (Christie-like, Barco-like, media server) yields its profile's metrics
    for dev, keys in devs.items():
        if keys.get("protocol", "snmp") == "snmp":
            missing = _profile_metrics(keys["profile"]) - got.get(dev, set())
            assert not missing, f"{dev} ({keys['profile']}) lacks {sorted(missing)}"
        # every device answered (HTTP ones included)
        assert dev in got, f"{dev} gave no samples: {r.stderr[-2000:]}"
    for hall in range(1, HALLS + 1):
        assert devs[f"hall{hall}/projector"]["profile"] == (
            "barco-dcinema-s2" if hall % 2 == 0 else "christie-cp-series2")
        for role in ("led-screen", "sensor", "ims-soap"):
            assert devs[f"hall{hall}/{role}"]["protocol"] == "http"
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
    base = harness.free_port_range(HALLS * SLOTS)
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
    base = harness.free_port_range(HALLS * SLOTS)
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


def test_bench_devices_140_values(env):
    """`--bench-devices 3`: the agent reads exactly 140 values from each (profile sim-bench)."""
    n = 3
    base = harness.free_port_range(n)
    frag = env.path("bench.ini")
    proc = env.start("sim", [_sim_binary(), "--bench-devices", n, "--base-port", base,
                             "--print-config", frag], check_exit=True)

    def ready():
        if not proc.alive():
            raise harness.ProcessDied(f"cinemon-sim exited: {proc.stderr()}")
        try:
            harness.snmpget(base + n - 1, "public", "1.3.6.1.4.1.99999.1.1.1.0", timeout=0.5,
                            retries=0)
            return frag.exists()
        except RuntimeError:
            return False
    wait_until(ready, 20, 0.1, "cinemon-sim bench devices answering")
    ini = env.write("agent.ini", "[agent]\nsite = bench\nstate_dir = state\n"
                    f"profiles_dir = {harness.PROFILES}\ntimeout = 2s\nretries = 1\n\n"
                    + frag.read_text())
    r = harness.agent_once(env, ini)
    assert r.returncode == 0, f"agent --once failed ({r.returncode}): {r.stderr}"
    per_dev = {}
    for ln in r.stdout.splitlines():
        j = json.loads(ln)
        if j["metric"].startswith("bench_"):
            key = (j["metric"], tuple(sorted(j["labels"].items())))
            per_dev.setdefault(j["device"], set()).add(key)
    assert sorted(per_dev) == [f"bench/dev{i:04d}" for i in range(1, n + 1)], per_dev.keys()
    for dev, series in per_dev.items():
        assert len(series) == 140, (dev, len(series))
    # Counter64 values above 2^32 arrive intact
    c64 = [json.loads(ln)["value"] for ln in r.stdout.splitlines()
           if '"bench_counter64_total"' in ln]
    assert c64 and all(v > 2 ** 32 for v in c64), c64[:3]
    assert env.stop(proc) is None


def _ber_tlv(b, i):
    """(tag, content start, content end) of the TLV at b[i]."""
    tag, ln = b[i], b[i + 1]
    i += 2
    if ln & 0x80:
        k = ln & 0x7F
        ln = int.from_bytes(b[i:i + k], "big")
        i += k
    assert i + ln <= len(b), "truncated"
    return tag, i, i + ln


def _ber_oid(c):
    out = [c[0] // 40, c[0] % 40]
    v = 0
    for x in c[1:]:
        v = (v << 7) | (x & 0x7F)
        if not x & 0x80:
            out.append(v)
            v = 0
    return ".".join(map(str, out))


def _decode_v2_trap(b):
    """(community, [(oid, tag, raw value)]) of an SNMPv2c trap datagram."""
    tag, i, end = _ber_tlv(b, 0)
    assert tag == 0x30 and end == len(b)
    tag, s, e = _ber_tlv(b, i)
    assert tag == 0x02 and b[s:e] == b"\x01", "not SNMPv2c"
    tag, s, e = _ber_tlv(b, e)
    community = b[s:e].decode()
    tag, i, end = _ber_tlv(b, e)
    assert tag == 0xA7, f"PDU {tag:#x} is not an SNMPv2-Trap"
    for _ in range(3):  # request-id, error-status, error-index
        _, _, i = _ber_tlv(b, i)
    tag, i, end = _ber_tlv(b, i)
    vbs = []
    while i < end:
        _, s, i = _ber_tlv(b, i)
        _, os_, oe = _ber_tlv(b, s)
        vt, vs, ve = _ber_tlv(b, oe)
        vbs.append((_ber_oid(b[os_:oe]), vt, b[vs:ve]))
    return community, vbs


LINK_DOWN, LINK_UP = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4"  # SNMPv2-MIB (RFC 3418)


def test_traps_on_faults(env):
    """With --fault-rate 1 every projector request starts a fault episode: the projector sends
    an SNMPv2c trap from its own port, its vendor OID (at most one per 10 s) or, for a silent
    episode, linkDown (link traps are outside the rate limit)."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.2)
    base = harness.free_port_range(HALLS * SLOTS)
    proc = env.start("sim", [_sim_binary(), "--halls", HALLS, "--base-port", base, "--seed", "3",
                             "--fault-rate", "1", "--trap-target",
                             f"127.0.0.1:{rx.getsockname()[1]}"], check_exit=True)
    ports = {base: "christie", base + SLOTS: "barco"}
    got = {}
    deadline = __import__("time").time() + 10
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        while len(got) < 2 and __import__("time").time() < deadline:
            for p in ports:  # any request starts an episode (the answer may never come)
                tx.sendto(_get_request(), ("127.0.0.1", p))
            try:
                data, addr = rx.recvfrom(2000)
            except socket.timeout:
                continue
            got.setdefault(addr[1], []).append(data)
    assert set(got) == set(ports), f"traps from ports {sorted(got)}, want {sorted(ports)}"
    for port, datagrams in got.items():
        community, vbs = _decode_v2_trap(datagrams[0])
        assert community == "public"
        assert vbs[0][0] == "1.3.6.1.2.1.1.3.0" and vbs[0][1] == 0x43, vbs
        assert vbs[1][0] == "1.3.6.1.6.3.1.1.4.1.0" and vbs[1][1] == 0x06, vbs
        trap = _ber_oid(vbs[1][2])
        if trap == LINK_DOWN:  # a silent episode: ifIndex.1 = 1 follows snmpTrapOID.0
            assert vbs[2][0] == "1.3.6.1.2.1.2.2.1.1.1" and vbs[2][2] == b"\x01", vbs
        elif ports[port] == "christie":
            assert trap.startswith("1.3.6.1.4.1.25766.1.11.100.3.0."), trap
        else:
            assert trap.startswith("1.3.6.1.4.1.12612.220.11."), trap
        assert any(o == "1.3.6.1.2.1.1.5.0" for o, _, _ in vbs), vbs
    # rate limit: more requests within 10 s bring no second vendor trap from the same device
    # (a device may start a silent episode: linkDown, outside the limit)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for _ in range(20):
            for p in ports:
                tx.sendto(_get_request(), ("127.0.0.1", p))
    extra = 0
    try:
        while True:
            data, _ = rx.recvfrom(2000)
            if _ber_oid(_decode_v2_trap(data)[1][1][2]) not in (LINK_DOWN, LINK_UP):
                extra += 1
    except socket.timeout:
        pass
    assert extra == 0, f"{extra} vendor traps within the rate limit"
    rx.close()
    assert env.stop(proc) is None
    assert "traps:" in proc.stderr() and "rate-limited" in proc.stderr()


def _get_request():
    """SNMPv2c GET sysUpTime.0, community public."""
    oid = bytes([0x2B, 6, 1, 2, 1, 1, 3, 0])
    vb = b"\x30" + bytes([len(oid) + 4]) + b"\x06" + bytes([len(oid)]) + oid + b"\x05\x00"
    vbl = b"\x30" + bytes([len(vb)]) + vb
    pdu_body = b"\x02\x01\x01\x02\x01\x00\x02\x01\x00" + vbl
    pdu = b"\xa0" + bytes([len(pdu_body)]) + pdu_body
    body = b"\x02\x01\x01\x04\x06public" + pdu
    return b"\x30" + bytes([len(body)]) + body


def test_traps_reach_snmptrapd(env):
    """net-snmp's snmptrapd accepts and decodes the simulator's traps."""
    tool = harness.need_tool("snmptrapd")
    port = harness.free_port("udp")
    log = env.path("traps.log")
    conf = env.write("snmptrapd.conf", "disableAuthorization yes\n")
    trapd = env.start("snmptrapd", [tool, "-f", "-n", "-C", "-c", conf, "-Lf", log, "-m", "",
                                    f"udp:127.0.0.1:{port}"])
    __import__("time").sleep(0.5)
    base = harness.free_port_range(HALLS * SLOTS)
    proc = env.start("sim", [_sim_binary(), "--halls", HALLS, "--base-port", base, "--seed", "3",
                             "--fault-rate", "1", "--trap-target", f"127.0.0.1:{port}"],
                     check_exit=True)

    def seen():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(_get_request(), ("127.0.0.1", base))
            tx.sendto(_get_request(), ("127.0.0.1", base + SLOTS))
        t = log.read_text() if log.exists() else ""
        # one record per trap: "... UDP: [127.0.0.1]:<sender port>->..." then its varbinds;
        # a device's trap is its vendor's or, for a silent episode, linkDown (iso.3.6.1.6...)
        recs = t.split(" UDP: [127.0.0.1]:")[1:]
        def got(port, vendor):
            return any(r.startswith(f"{port}->") and (vendor in r or "6.3.1.1.5.3" in r)
                       for r in recs)
        return got(base, "25766.1.11.100.3.0.") and got(base + SLOTS, "12612.220.11.")
    wait_until(seen, 15, 0.3, "snmptrapd logging both projectors' traps")
    assert env.stop(proc) is None
    env.stop(trapd)

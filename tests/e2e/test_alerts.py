"""Alerts end to end (issue 5): synthetic series sent through the real ingest path are judged
by the shipped rules as they are committed, and produce exactly the expected alerts; webhooks
get each notification once although the receiver fails the first attempts; operators
acknowledge and silence; bad rule files stop the collector at start-up naming file and path."""

import http.server
import json
import os
import shutil
import threading
import time

import harness
from harness import wait_until

SITE = "11010001"
AGENT = "agent1"
MIN = 60000


class Receiver:
    """A webhook receiver on a free loopback port: answers 503 twice per notification id,
    then 200, and records every request."""

    def __init__(self, fail_first=2):
        self.requests = []  # (idempotency key, body)
        self.accepted = []
        self.fail_first = fail_first
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n))
                key = self.headers.get("Idempotency-Key")
                with outer.lock:
                    outer.requests.append((key, body))
                    tries = sum(1 for k, _ in outer.requests if k == key)
                    ok = tries > outer.fail_first
                    if ok:
                        outer.accepted.append(body)
                self.send_response(200 if ok else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.port = harness.free_port("tcp")
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class Sender:
    def __init__(self, coll):
        self.coll, self.seq = coll, 0
        self.token = coll.tokens[(AGENT, SITE)]

    def send(self, series=(), events=()):
        self.seq += 1
        devs = sorted({s[0] for s in series} | {e["device"] for e in events})
        b = {"v": 1, "agent": {"id": AGENT, "version": "e2e", "site": SITE}, "seq": self.seq,
             "sent_ms": int(time.time() * 1000),
             "devices": [{"id": d, "screen": d.split("/")[0], "kind": "light_sensor"}
                         for d in devs],
             "series": [{"device": d, "metric": m, "labels": lab, "points": pts}
                        for d, m, lab, pts in series],
             "events": list(events)}
        s, j = self.coll.ingest(b, self.token)
        assert s == 200, (s, j)


def _alerts(coll, **q):
    return coll.data("/api/v1/alerts", site=SITE, **q)


def _csv(env, coll):
    path = env.write("halls.csv", "cinema_code,hall_code,class,display,spl_L,spl_C\n"
                     f"{SITE},hall1,theatre,projection,85,85\n"
                     f"{SITE},hall2,review,projection,,\n")
    r = env.run([harness.binary("cinemon-collector"), "-c", coll.ini, "import", path])
    assert r.returncode == 0, r.stderr


def _rules_dir(env):
    """The shipped rules plus one event rule with a clearing code (a vendor fault/clear pair)."""
    d = env.path("rules")
    shutil.copytree(harness.REPO / "collector" / "rules", d)
    with open(os.path.join(d, "zz_test.json"), "w") as f:
        json.dump({"rules": [{"id": "lamp_fault_pair", "kind": "event", "code": "lamp_fault",
                              "clear_code": "lamp_ok", "source": "snmp-trap",
                              "severity": "critical", "standard": "test vendor MIB",
                              "description": "fault/clear trap pair"}]}, f)
    return d


def test_luminance_spl_silence_traps_and_webhooks(env):
    rx = Receiver()
    try:
        coll = harness.collector(env, tokens=[(AGENT, SITE)], extra={
            "rules": {"dir": _rules_dir(env)},
            "notify": {"backoff_base": "200ms", "backoff_cap": "1s"},
            'webhook "ops"': {"url": f"http://127.0.0.1:{rx.port}/hook",
                              "sign_secret": "s3cret", "min_severity": "warning"}})
        _csv(env, coll)
        # screen settings are read at start and every tick (1 s in the harness)
        time.sleep(1.5)
        tx = Sender(coll)
        t0 = int(time.time() * 1000) - 30 * MIN
        lum = ("screen_luminance_nits", {"mode": "2d"})

        # a single spike raises nothing
        tx.send([("hall1/sensor", *lum, [[t0, 48.0], [t0 + MIN, 30.0], [t0 + 2 * MIN, 48.1]])])
        assert _alerts(coll) == []

        # a sustained drop below 37.8 in a theatre fires after the hold (3 samples) ...
        tx.send([("hall1/sensor", *lum, [[t0 + 3 * MIN, 37.0]])])
        tx.send([("hall1/sensor", *lum, [[t0 + 4 * MIN, 36.9]])])
        a = _alerts(coll)
        assert len(a) == 1 and a[0]["state"] == "pending", a
        tx.send([("hall1/sensor", *lum, [[t0 + 5 * MIN, 37.1]])])
        a = _alerts(coll, state="firing")
        assert len(a) == 1, a
        fire = a[0]
        assert fire["rule"] == "screen_luminance" and fire["device"] == "hall1/sensor", fire
        assert fire["screen"] == "hall1" and fire["labels"] == {"mode": "2d"}, fire
        assert abs(fire["threshold"] - 37.8) < 1e-9, fire
        assert "431-1" in fire["text"], fire
        # ... stays firing inside the hysteresis band, resolves past it
        tx.send([("hall1/sensor", *lum, [[t0 + 6 * MIN, 38.0], [t0 + 7 * MIN, 38.7]])])
        assert len(_alerts(coll, state="firing")) == 1
        tx.send([("hall1/sensor", *lum, [[t0 + 8 * MIN, 39.0]])])
        assert _alerts(coll, state="firing") == []
        res = _alerts(coll, state="resolved")
        assert len(res) == 1 and res[0]["id"] == fire["id"], res

        # the same reading in the review room fires at 44.5
        tx.send([("hall2/sensor", *lum, [[t0 + 10 * MIN + i * MIN, 44.0] for i in range(3)])])
        rv = _alerts(coll, screen="hall2", state="firing")
        assert len(rv) == 1 and abs(rv[0]["threshold"] - 44.5) < 1e-9, rv
        # ... and 44.0 in the theatre raised nothing
        assert _alerts(coll, screen="hall1", state="active") == []

        # SPL deviation from the hall's commissioning reference (85 dBC on C)
        tx.send([("hall1/sound", "spl_dbc", {"channel": "C"},
                  [[t0 + 12 * MIN + i * MIN, 81.0] for i in range(3)])])
        spl = _alerts(coll, rule="spl_deviation", state="firing")
        assert len(spl) == 1 and spl[0]["labels"] == {"channel": "C"}, spl

        # a trap and its clearing trap
        ev = {"device": "hall1/projector", "severity": "critical", "source": "snmp-trap",
              "text": "lamp failed"}
        tx.send(events=[dict(ev, code="lamp_fault", ts_ms=t0 + 20 * MIN)])
        tr = _alerts(coll, rule="lamp_fault_pair", state="firing")
        assert len(tr) == 1 and tr[0]["severity"] == "critical", tr
        tx.send(events=[dict(ev, code="lamp_ok", severity="info", ts_ms=t0 + 21 * MIN)])
        assert _alerts(coll, rule="lamp_fault_pair", state="firing") == []
        assert _alerts(coll, rule="lamp_fault_pair", state="resolved")[0]["id"] == tr[0]["id"]
        # the catch-all trap rule leaves codes a specific rule owns alone
        assert _alerts(coll, rule="device_trap") == []
        tx.send(events=[dict(ev, code="fan", ts_ms=t0 + 22 * MIN)])
        assert len(_alerts(coll, rule="device_trap", state="firing")) == 1

        # a device that stops answering raises device_silent once
        now = int(time.time() * 1000)
        tx.send([("hall1/projector", "temperature_celsius", {"sensor": "dmd"},
                  [[now - 2000, 40.0], [now - 1000, 40.0], [now, 40.0]])])
        silent = wait_until(lambda: _alerts(coll, rule="device_silent", state="firing"), 20, 0.5,
                            "device_silent")
        # (the back-dated synthetic devices above are silent too: their last samples are
        # minutes old) — one alert per device, not one per tick
        wait_until(lambda: any(s["device"] == "hall1/projector" for s in
                               _alerts(coll, rule="device_silent", state="firing")), 20, 0.5,
                   "device_silent of hall1/projector")
        time.sleep(3)
        silent = _alerts(coll, rule="device_silent")
        devs = [s["device"] for s in silent]
        assert sorted(devs) == sorted(set(devs)), silent
        assert "hall1/projector" in devs, silent

        # acknowledgement by an operator
        op = env.run([harness.binary("cinemon-collector"), "-c", coll.ini, "token", "add",
                      "--operator", "anna", "--site", SITE]).stdout.strip()
        s, j, _, _ = harness.request("POST", coll.url(f"/api/v1/alerts/{rv[0]['id']}/ack"),
                                     {"comment": "lamp ordered"},
                                     {"Authorization": f"Bearer {op}"})
        assert s == 200 and j["ack"]["by"] == "anna", (s, j)
        assert j["history"][-1]["state"] == "acknowledged", j
        s, j, _, _ = harness.request("POST", coll.url(f"/api/v1/alerts/{rv[0]['id']}/ack"),
                                     {"comment": "x"})
        assert s == 401, j
        s, j = coll.get(f"/api/v1/alerts/{rv[0]['id']}")
        assert s == 200 and j["ack"]["comment"] == "lamp ordered", j
        assert coll.get("/api/v1/alerts/999999")[0] == 404

        # a silence: hall2 alerts are kept but not notified
        s, j, _, _ = harness.request("POST", coll.url("/api/v1/silences"),
                                     {"site": SITE, "screen": "hall2", "until": now + 3600000,
                                      "comment": "maintenance"},
                                     {"Authorization": f"Bearer {op}"})
        assert s == 201, j
        assert len(coll.data("/api/v1/silences", site=SITE)) == 1
        tx.send([("hall2/sensor", *lum, [[t0 + 25 * MIN, 48.0]])])  # resolves, silenced
        tx.send([("hall2/sensor", "white_x", {}, [[t0 + 26 * MIN + i * MIN, 0.330]
                                                  for i in range(3)])])
        wx = _alerts(coll, rule="white_point_x", state="firing")
        assert len(wx) == 1 and wx[0]["silenced"] is True, wx

        # webhooks: each notification accepted exactly once after two failures, signed
        notes = coll.data("/api/v1/notifications", site=SITE)
        want_ids = {n["id"] for n in notes}
        # luminance fire + resolve, review room, SPL, trap pair fire + resolve, catch-all trap,
        # device_silent ...
        assert len(want_ids) >= 7, notes
        def all_delivered():
            return len({b["id"] for b in rx.accepted}) >= len(want_ids)
        wait_until(all_delivered, 30, 0.3, "webhook deliveries")
        time.sleep(1.5)
        ids = [b["id"] for b in rx.accepted]
        assert sorted(ids) == sorted(set(ids)), "a notification was accepted twice"
        assert set(ids) == want_ids
        for key, body in rx.requests:
            assert key == body["id"], (key, body)
        assert not any(b["device"] == "hall2/sensor" and b["kind"] == "resolved"
                       for b in rx.accepted), "a silenced resolve was notified"
        kinds = {(b["rule"], b["kind"]) for b in rx.accepted}
        assert ("screen_luminance", "firing") in kinds and ("screen_luminance", "resolved") in kinds
        notes = wait_until(lambda: [n for n in coll.data("/api/v1/notifications", site=SITE)
                                    if n["deliveries"][0]["state"] == "delivered"] or None, 10, 0.3)
        for n in coll.data("/api/v1/notifications", site=SITE):
            d = n["deliveries"]
            assert len(d) == 1 and d[0]["target"] == "ops", n
            assert d[0]["state"] == "delivered" and d[0]["attempts"] == 3, n
        assert len(coll.data("/api/v1/rules")) >= 40
    finally:
        rx.close()


def test_alerts_survive_a_restart(env):
    coll = harness.collector(env, tokens=[(AGENT, SITE)])
    tx = Sender(coll)
    t0 = int(time.time() * 1000) - 10 * MIN
    tx.send([("hall1/sensor", "screen_luminance_nits", {"mode": "2d"},
              [[t0 + i * MIN, 30.0] for i in range(3)])])
    a = _alerts(coll, state="firing")
    assert len(a) == 1, a
    env.stop(coll.proc)
    coll2 = harness.collector(env, port=coll.port)
    coll2.tokens = coll.tokens
    tx.coll = coll2
    # still firing after the restart: a further low reading is not a new alert
    tx.send([("hall1/sensor", "screen_luminance_nits", {"mode": "2d"}, [[t0 + 4 * MIN, 30.0]])])
    b = _alerts(coll2)
    assert len(b) == 1 and b[0]["id"] == a[0]["id"] and b[0]["state"] == "firing", b
    tx.send([("hall1/sensor", "screen_luminance_nits", {"mode": "2d"}, [[t0 + 5 * MIN, 48.0]])])
    assert _alerts(coll2, state="resolved")[0]["id"] == a[0]["id"]


def test_bad_rule_file_refused_at_start(env):
    d = env.path("badrules")
    os.makedirs(d)
    with open(os.path.join(d, "mine.json"), "w") as f:
        f.write('{"rules": [{"id": "x", "kind": "threshold", "metric": "up", "hold": "soon",'
                ' "max": 1, "standard": "s", "severity": "warning", "description": "d"}]}')
    port = harness.free_port("tcp")
    ini = harness.write_collector_ini(env, port, {"rules": {"dir": d}})
    r = env.run([harness.binary("cinemon-collector"), "-c", ini, "--check-config"])
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "mine.json" in r.stderr and "rules[0].hold" in r.stderr, r.stderr
    r = env.run([harness.binary("cinemon-collector"), "-c", ini], timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "mine.json" in r.stderr and "rules[0].hold" in r.stderr, r.stderr

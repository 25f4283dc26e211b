"""Tiered forwarding in summary mode (issue 7 item 3, docs/forwarding.md "mode = summary"): a
feeder posting two cinemas' batches of the previous hours -> a chain collector (SQLite) ->
a national collector (SQLite), the chain forwarding with [upstream "national"] mode = summary
as agent chain-1. The chain collector is killed with SIGKILL twice while batches stream in and
the national one once. At the end the national tier holds, for the closed hours, exactly the
chain's hourly roll-ups (GET /api/v1/series?step=1h) and latest values, the chain's firing and
resolved alerts (each once), the chain's daily compliance figures, and no raw sample at all;
and no absence alert of its own for the devices it only knows from summaries."""

import sqlite3
import threading
import http.client
import time

import harness
from harness import wait_until

BACKENDS_EXPLICIT = True  # both collectors on SQLite files of their own

H = 3600000
FWD = "chain-1"
AGENTS = [("a1", "S1"), ("a2", "S2")]
DEV = "hall1/projector"
SENSOR = "hall1/sensor"
BATCHES = 120  # per agent
POINTS = 6     # per series and batch, 10 s apart: a batch is a minute, 120 batches two hours
METRICS = [(DEV, "temperature_celsius"), (DEV, "light_source_hours"),
           (SENSOR, "screen_luminance_nits")]


def slow():
    return 2.5 if harness.ASAN else 1.0


def intake(site, k):
    """Intake temperature of batch k: a warm spell at S1 (37: warning), a hot one at S2 (42:
    critical), both over by the end."""
    if site == "S1" and 30 <= k < 40:
        return 37.0
    if site == "S2" and 70 <= k < 75:
        return 42.0
    return 25.0 + (k % 7) * 0.5


def luminance(site, k):
    """Screen luminance (2D, theatre: 48 nits, +-10.2): S2 drifts out of tolerance for a while."""
    return 30.0 if site == "S2" and 40 <= k < 80 else 47.0 + (k % 3)


def batch(agent, site, seq, t0):
    k = seq - 1
    ts = [t0 + (k * POINTS + i) * 10000 for i in range(POINTS)]
    return {"v": 1, "agent": {"id": agent, "version": "e2e", "site": site}, "seq": seq,
            "sent_ms": int(time.time() * 1000),
            "devices": [{"id": DEV, "screen": "hall1", "kind": "projector", "vendor": "Test",
                         "model": "T1"},
                        {"id": SENSOR, "screen": "hall1", "kind": "light_sensor"}],
            "series": [
                {"device": DEV, "metric": "temperature_celsius", "labels": {"sensor": "Intake"},
                 "unit": "C", "points": [[t, intake(site, k)] for t in ts]},
                {"device": DEV, "metric": "light_source_hours", "labels": {}, "unit": "h",
                 "points": [[t, 1000.0 + k * 0.1 + i * 0.01] for i, t in enumerate(ts)]},
                {"device": SENSOR, "metric": "screen_luminance_nits", "labels": {"mode": "2d"},
                 "unit": "nits", "points": [[t, luminance(site, k)] for t in ts]}],
            "events": []}


class Feeder(threading.Thread):
    """Sends every batch of both agents to the chain collector, each until it is answered 200
    (stored or a duplicate), whatever the collector is going through."""

    def __init__(self, url, tokens, t0):
        super().__init__(daemon=True)
        self.url, self.tokens, self.t0 = url, tokens, t0
        self.sent = 0
        self.error = None

    def post(self, agent, site, seq):
        body = batch(agent, site, seq, self.t0)
        deadline = time.monotonic() + 120 * slow()
        while True:
            try:
                s, j = harness.http_post(self.url, body, token=self.tokens[agent], timeout=10)
                if s == 200:
                    return
                if s not in (502, 503):
                    raise AssertionError(f"batch {seq} of {agent}: HTTP {s}: {j}")
            except (OSError, http.client.HTTPException, AttributeError):
                # the chain collector was killed mid-request: retry, as an agent does
                # (http.client raises AttributeError when the socket closed under it)
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"batch {seq} of {agent}: no answer for 120 s")
            time.sleep(0.05)

    def run(self):
        try:
            for seq in range(1, BATCHES + 1):
                for agent, site in AGENTS:
                    self.post(agent, site, seq)
                    self.sent += 1
                time.sleep(0.01)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e


def import_halls(env, coll):
    path = env.write("halls.csv", "cinema_code,province,city,hall_code,class,display\n"
                                  "S1,Guangdong,Guangzhou,hall1,theatre,projection\n"
                                  "S2,Beijing,Beijing,hall1,theatre,projection\n")
    r = env.run([harness.binary("cinemon-collector"), "-c", coll.ini, "import", path])
    assert r.returncode == 0, r.stderr


def national(env):
    port = harness.free_port()
    ini = harness.write_collector_ini(env, port, name="national.ini", db="national.db",
                                      extra={"rules": {"compliance_interval": "1s"}})
    r = env.run([harness.binary("cinemon-collector"), "-c", ini, "token", "add", "--agent", FWD,
                 "--site", "*"])
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    c = harness.Collector(env, ini, port, None)
    c.op_token = harness.operator_add(env, ini, "national-op")
    import_halls(env, c)
    c.start(30)
    return c, token


def chain(env, national_port, token):
    env.write("up.token", token + "\n", mode=0o600)
    port = harness.free_port()
    ini = harness.write_collector_ini(
        env, port, name="chain.ini", db="chain.db",
        extra={"rules": {"compliance_interval": "1s"},
               'upstream "national"': {
                   "url": f"http://127.0.0.1:{national_port}", "token_file": "up.token",
                   "agent_id": FWD, "mode": "summary", "summary_delay": "1s",
                   "interval": "200ms", "timeout": "5s", "backoff_base": "50ms",
                   "backoff_cap": "1s", "max_batch_bytes": "64k", "segment_bytes": "64k"}})
    c = harness.Collector(env, ini, port, None)
    c.op_token = harness.operator_add(env, ini, "chain-op")
    c.tokens = {a: harness.token_add(env, ini, a, s) for a, s in AGENTS}
    import_halls(env, c)
    c.start(30)
    return c


def labels_key(labels):
    return tuple(sorted(labels.items()))


def rollups(coll, site, device, metric, t0):
    """{labels: [[bucket_ms, avg, min, max, count], ...]} of the closed hours."""
    q = {"site": site, "device": device, "metric": metric, "from": str(t0 - H),
         "to": str(t0 + 3 * H - 1), "limit": "100000", "step": "1h"}
    return {labels_key(s["labels"]): s["points"] for s in coll.data("/api/v1/series", **q)}


def same_rollups(a, b):
    if a.keys() != b.keys():
        return False
    for k in a:
        if len(a[k]) != len(b[k]):
            return False
        for x, y in zip(a[k], b[k]):
            if x[0] != y[0] or x[2] != y[2] or x[3] != y[3] or x[4] != y[4] or \
                    abs(x[1] - y[1]) > 1e-9:
                return False
    return True


def latest(coll, site, device):
    return sorted((r["metric"], labels_key(r["labels"]), r["ts_ms"], r["value"])
                  for r in coll.data("/api/v1/latest", site=site, device=device))


def alerts(coll):
    """The alerts as the national tier gets them: firing, or resolved after firing."""
    keep = ("rule", "site", "screen", "device", "severity", "state", "value", "threshold",
            "started_ms", "firing_ms", "resolved_ms")
    rows = coll.data("/api/v1/alerts", limit="1000")
    return sorted((tuple(a[k] for k in keep) + (labels_key(a["labels"]),) for a in rows
                   if a["firing_ms"] is not None), key=repr)


def compliance(coll, day):
    return sorted((r["site"], r["screen"], r["day"],
                   tuple((q, r[q]["in_tolerance"], r[q]["measured_hours"])
                         for q in ("luminance", "white", "spl")))
                  for r in coll.data("/api/v1/compliance", level="screen", day=day))


def raw_samples(env, db):
    conn = sqlite3.connect(f"file:{env.path(db)}?mode=ro", uri=True, timeout=10)
    try:
        return harness.sqlite_stored_samples(conn)
    finally:
        conn.close()


def test_summary_tier_through_kills(env):
    nat, ftoken = national(env)
    ch = chain(env, nat.port, ftoken)
    t0 = (int(time.time() * 1000) // H - 3) * H  # three hours ago, on the hour: all closed
    days = sorted({time.strftime("%Y-%m-%d", time.gmtime(t / 1000)) for t in (t0, t0 + 2 * H - 1)})
    feeder = Feeder(ch.url("/api/v1/ingest"), ch.tokens, t0)
    feeder.start()
    total = BATCHES * len(AGENTS)

    def at(frac):
        wait_until(lambda: feeder.sent >= frac * total or not feeder.is_alive(), 120 * slow(),
                   0.02, f"the feeder to pass {frac:.0%}")

    at(0.3)
    ch.kill()  # the chain collector, SIGKILL mid-stream
    time.sleep(0.2)
    ch.start(30)
    at(0.5)
    nat.kill()  # the national collector, while the chain forwards
    time.sleep(0.5)
    nat.start(30)
    at(0.7)
    ch.kill()
    time.sleep(0.2)
    ch.start(30)
    feeder.join(180 * slow())
    assert not feeder.is_alive(), "the feeder did not finish"
    if feeder.error:
        raise feeder.error
    # once more at once, before the last hour is due (summary_delay): only the state file
    # remembers that it is still to be sent, no batch comes to touch it again
    ch.kill()
    ch.start(30)
    assert "forward national: summary mode, 0 hour(s)" not in ch.proc.stderr()

    # the closed hours' roll-ups: the national tier's equal the chain's
    for _, site in AGENTS:
        for device, metric in METRICS:
            want = rollups(ch, site, device, metric, t0)
            assert want and all(len(p) == 2 for p in want.values()), (site, metric, want)
            for pts in want.values():
                assert sum(p[4] for p in pts) == BATCHES * POINTS, (site, metric, pts)
            wait_until(lambda: same_rollups(want, rollups(nat, site, device, metric, t0)),
                       60 * slow(), 0.5, f"the national roll-ups of {site} {metric}")
        # ... and the latest values the hall tiles show
        for device in (DEV, SENSOR):
            want = latest(ch, site, device)
            assert len(want) == (2 if device == DEV else 1), want
            wait_until(lambda: latest(nat, site, device) == want, 30 * slow(), 0.5,
                       f"the national latest values of {site} {device}")
    # no raw sample reached the national tier, and its forwarder stored summaries only
    assert raw_samples(env, "national.db") == 0
    pts = nat.data("/api/v1/series", site="S1", device=DEV, metric="temperature_celsius",
                   **{"from": str(t0 - H), "to": str(t0 + 3 * H), "limit": "10"})
    assert pts and all(s["points"] == [] for s in pts), pts
    row = [a for a in nat.data("/api/v1/agents") if a["id"] == FWD][0]
    assert row["samples"] == 0 and row["batches"] >= 1, row
    assert nat.data("/api/v1/gaps", agent=FWD) == [], "the forwarder lost records"
    # the devices are known upstream (their halls), but not as seen: no absence watch
    devs = {(d["site"], d["id"]): d for d in nat.data("/api/v1/devices")}
    assert devs[("S1", DEV)]["screen"] == "hall1" and devs[("S1", DEV)]["kind"] == "projector"
    assert all(d["last_seen_ms"] == 0 for d in devs.values()), devs

    # the alerts: the chain's firing and resolved ones, each once
    def agree():
        a, b = alerts(ch), alerts(nat)
        return a if a == b else None
    got = wait_until(agree, 60 * slow(), 0.5, "the alerts of both tiers to agree")
    rules = {(x[0], x[1], x[4], x[5]) for x in got}
    assert ("projector_temperature_ambient", "S1", "warning", "resolved") in rules, got
    assert any(x[0] == "projector_temperature_ambient" and x[1] == "S2" and x[4] == "critical"
               for x in got), got
    keys = [(x[0], x[1], x[3], x[-1], x[8]) for x in alerts(nat)]
    assert len(keys) == len(set(keys)), "an alert stored twice upstream"

    # the compliance figures of the days fed
    for day in days:
        want = compliance(ch, day)
        assert want, f"no compliance figures of {day} on the chain"
        wait_until(lambda: compliance(nat, day) == want, 30 * slow(), 0.5,
                   f"the national compliance figures of {day}")
    s2 = [r for d in days for r in compliance(nat, d) if r[0] == "S2"]
    assert any(q[1] is not None and q[1] < 1.0 for r in s2 for q in r[3] if q[0] == "luminance")

    # the national tier restarted once more: still no absence alert of its own (its devices
    # were never seen), the figures kept although it recomputes the days from its samples
    assert nat.proc.stop() is None
    nat.start(30)
    time.sleep(4 * slow())  # several ticks of its judge and of its compliance recomputation
    wait_until(agree, 30 * slow(), 0.5, "the alerts of both tiers to agree after a restart")
    silent = {(b["site"], b["device"], b["started_ms"])
              for b in ch.data("/api/v1/alerts", rule="device_silent")}
    assert all((a["site"], a["device"], a["started_ms"]) in silent
               for a in nat.data("/api/v1/alerts", rule="device_silent")), "an absence alert"
    for day in days:
        assert compliance(nat, day) == compliance(ch, day), day

"""Tiered forwarding (issue 7, docs/forwarding.md): a feeder with a ledger (two cinemas' agents)
-> a chain collector (SQLite) -> a national collector (SQLite), the chain collector forwarding
with [upstream "national"] as agent chain-1 under a forwarding token (`token add --site '*'`).
The chain collector is killed with SIGKILL three times while batches stream in and the
national one once; at the end the chain holds exactly the ledger, the national collector
exactly what the chain stored (per series, point for point; its audit of chain-1 adds up to
the chain's samples: nothing twice, no gaps), and the alerts and hourly roll-ups it computes
itself from the forwarded samples agree with the chain's. A bad upstream token: 401 logged
loudly, everything kept in the chain's spool, delivered once the token is fixed; the chain's
/metrics follow it (records spooled and pending, failed uploads, then acknowledged requests
equal to the batches the national collector stored). A chain collector on PostgreSQL, killed
twice, forwards exactly what it stored too."""

import sqlite3
import threading
import time

import harness
from harness import wait_until

BACKENDS_EXPLICIT = True  # every collector's store is chosen here (one chain on PostgreSQL)

H = 3600000
FWD = "chain-1"
AGENTS = [("a1", "S1"), ("a2", "S2")]
DEV = "hall1/projector"
BATCHES = 120  # per agent
POINTS = 6     # per series and batch, 10 s apart: a batch is a minute, 120 batches two hours


def slow():
    return 2.5 if harness.ASAN else 1.0


def intake(site, k):
    """Intake temperature of batch k: 25 °C, with a warm spell (S1: 37, a warning) and a hot
    one (S2: 42, critical) that the projector_temperature_ambient rule judges."""
    if site == "S1" and 30 <= k < 40:
        return 37.0
    if site == "S2" and 70 <= k < 75:
        return 42.0
    return 25.0 + (k % 7) * 0.5


def batch(agent, site, seq, t0):
    """Batch seq (1..) of agent: two series of POINTS points each, one device."""
    k = seq - 1
    ts = [t0 + (k * POINTS + i) * 10000 for i in range(POINTS)]
    return {"v": 1, "agent": {"id": agent, "version": "e2e", "site": site}, "seq": seq,
            "sent_ms": int(time.time() * 1000),
            "devices": [{"id": DEV, "screen": "hall1", "kind": "projector", "vendor": "Test",
                         "model": "T1"}],
            "series": [
                {"device": DEV, "metric": "temperature_celsius", "labels": {"sensor": "Intake"},
                 "unit": "C", "points": [[t, intake(site, k)] for t in ts]},
                {"device": DEV, "metric": "light_source_hours", "labels": {}, "unit": "h",
                 "points": [[t, 1000.0 + k * 0.1 + i * 0.01] for i, t in enumerate(ts)]}],
            "events": []}


class Feeder(threading.Thread):
    """Sends every batch of both agents to the chain collector, each until it is answered
    200 (stored or a duplicate), whatever the collector is going through; the ledger holds the
    samples of every acknowledged seq."""

    def __init__(self, url, tokens, t0, pause=0.01, batches=BATCHES):
        super().__init__(daemon=True)
        self.url, self.tokens, self.t0, self.pause = url, tokens, t0, pause
        self.batches = batches
        self.ledger = {a: {} for a, _ in AGENTS}
        self.sent = 0
        self.retries = 0
        self.error = None

    def post(self, agent, site, seq):
        body = batch(agent, site, seq, self.t0)
        deadline = time.monotonic() + 120 * slow()
        while True:
            try:
                s, j = harness.http_post(self.url, body, token=self.tokens[agent], timeout=10)
                if s == 200:
                    return sum(len(x["points"]) for x in body["series"])
                if s not in (502, 503):
                    raise AssertionError(f"batch {seq} of {agent}: HTTP {s}: {j}")
            except OSError:
                pass
            self.retries += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"batch {seq} of {agent}: no answer for 120 s")
            time.sleep(0.05)

    def run(self):
        try:
            for seq in range(1, self.batches + 1):
                for agent, site in AGENTS:
                    self.ledger[agent][seq] = self.post(agent, site, seq)
                    self.sent += 1
                time.sleep(self.pause)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e


def national(env, forward_token_scope=("--site", "*")):
    """The national collector and the forwarding token of chain-1 (written to up.token)."""
    port = harness.free_port()
    ini = harness.write_collector_ini(env, port, name="national.ini", db="national.db")
    r = env.run([harness.binary("cinemon-collector"), "-c", ini, "token", "add", "--agent", FWD,
                 *forward_token_scope])
    assert r.returncode == 0, r.stderr
    assert "forwarding" in r.stderr, r.stderr
    token = r.stdout.strip()
    c = harness.Collector(env, ini, port, None)
    c.op_token = harness.operator_add(env, ini, "national-op")
    c.start(30)
    return c, token


def chain(env, national_port, token, conninfo=None):
    """The chain collector forwarding to national_port with token (in up.token, 0600); on
    PostgreSQL when conninfo is given (its spool then next to chain.ini)."""
    env.write("up.token", token + "\n", mode=0o600)
    port = harness.free_port()
    ini = harness.write_collector_ini(
        env, port, name="chain.ini", db="chain.db", conninfo=conninfo,
        extra={'upstream "national"': {
            "url": f"http://127.0.0.1:{national_port}", "token_file": "up.token",
            "agent_id": FWD, "interval": "200ms", "timeout": "5s", "backoff_base": "50ms",
            "backoff_cap": "1s", "max_batch_bytes": "64k", "segment_bytes": "64k"}})
    c = harness.Collector(env, ini, port, None)
    c.op_token = harness.operator_add(env, ini, "chain-op")
    c.tokens = {a: harness.token_add(env, ini, a, s) for a, s in AGENTS}
    c.start(30)
    return c


def agent_row(coll, agent):
    for a in coll.data("/api/v1/agents"):
        if a["id"] == agent:
            return a
    return None


def audit(db, agent):
    """[(first_seq, last_seq, samples)] of agent in commit order, from a collector's SQLite."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute("SELECT first_seq, last_seq, samples FROM batches WHERE agent_id = ? "
                            "ORDER BY first_seq", (agent,)).fetchall()
    finally:
        conn.close()


def check_audit(rows, what):
    prev = 0
    for a, b, _ in rows:
        assert a <= b and a > prev, f"{what}: audit range {a}-{b} after {prev}: stored twice"
        prev = b


def series(coll, site, metric, t0, step=None):
    q = {"site": site, "device": DEV, "metric": metric, "from": str(t0 - H),
         "to": str(t0 + 4 * H), "limit": "100000"}
    if step:
        q["step"] = step
    return {json_key(s["labels"]): s["points"] for s in coll.data("/api/v1/series", **q)}


def json_key(labels):
    return tuple(sorted(labels.items()))


def alerts(coll, site):
    keep = ("rule", "site", "device", "severity", "state", "value", "threshold", "started_ms",
            "firing_ms", "resolved_ms")
    rows = coll.data("/api/v1/alerts", site=site, rule="projector_temperature_ambient")
    return sorted((tuple(a[k] for k in keep) + (json_key(a["labels"]),) for a in rows),
                  key=repr)


def test_three_tiers_exactly_once_through_kills(env):
    nat, ftoken = national(env)
    ch = chain(env, nat.port, ftoken)
    t0 = (int(time.time() * 1000) // H - 3) * H  # three hours ago, on the hour
    feeder = Feeder(ch.url("/api/v1/ingest"), ch.tokens, t0)
    feeder.start()
    total = BATCHES * len(AGENTS)

    def at(frac):
        wait_until(lambda: feeder.sent >= frac * total or not feeder.is_alive(), 120 * slow(),
                   0.02, f"the feeder to pass {frac:.0%}")

    kills = []
    for frac in (0.2, 0.45, 0.75):  # the chain collector, SIGKILL mid-stream
        at(frac)
        kills.append(("chain", feeder.sent))
        ch.kill()
        time.sleep(0.2)
        ch.start(30)
        if frac == 0.45:  # the national collector once, while the chain forwards
            at(0.6)
            kills.append(("national", feeder.sent))
            nat.kill()
            time.sleep(0.5)
            nat.start(30)
    feeder.join(180 * slow())
    assert not feeder.is_alive(), "the feeder did not finish"
    if feeder.error:
        raise feeder.error

    # the chain stored exactly the ledger
    stored = 0
    for agent, _ in AGENTS:
        led = feeder.ledger[agent]
        assert sorted(led) == list(range(1, BATCHES + 1))
        row = agent_row(ch, agent)
        assert row["last_seq"] == BATCHES and row["samples"] == sum(led.values()), row
        check_audit(audit(ch.env.path("chain.db"), agent), f"chain {agent}")
        stored += row["samples"]
    assert stored == total * 2 * POINTS

    # ... and forwarded it all, once
    def caught_up():
        r = agent_row(nat, FWD)
        return r and r["samples"] >= stored and r
    row = wait_until(caught_up, 60 * slow(), 0.2, "the national collector to hold the chain's "
                                                  "samples")
    time.sleep(1.0)  # anything sent twice would arrive now
    row = agent_row(nat, FWD)
    nat_audit = audit(nat.env.path("national.db"), FWD)
    check_audit(nat_audit, "national chain-1")
    assert row["samples"] == stored, (row, stored, kills)
    assert sum(n for _, _, n in nat_audit) == stored
    assert nat.data("/api/v1/gaps", agent=FWD) == [], "the forwarder lost records"
    assert {s["code"] for s in nat.data("/api/v1/sites")} >= {"S1", "S2"}

    for _, site in AGENTS:
        for metric in ("temperature_celsius", "light_source_hours"):
            # the same samples, point for point
            a, b = series(ch, site, metric, t0), series(nat, site, metric, t0)
            assert a.keys() == b.keys() and a, (site, metric, a.keys(), b.keys())
            for k in a:
                assert len(a[k]) == BATCHES * POINTS, (site, metric, len(a[k]))
                assert a[k] == b[k], f"{site} {metric} {k}: the tiers differ"
            # the national tier's own hourly roll-ups agree with the chain's
            ra, rb = series(ch, site, metric, t0, "1h"), series(nat, site, metric, t0, "1h")
            for k in ra:
                assert len(ra[k]) >= 2
                assert len(ra[k]) == len(rb[k])
                for x, y in zip(ra[k], rb[k]):
                    assert x[0] == y[0] and x[4] == y[4] and x[2] == y[2] and x[3] == y[3], (x, y)
                    assert abs(x[1] - y[1]) < 1e-9, (site, metric, x, y)
    # ... and so do the alerts it judged itself
    for _, site in AGENTS:
        a = wait_until(lambda: alerts(ch, site) if alerts(ch, site) == alerts(nat, site) else None,
                       20 * slow(), 0.5, f"the alerts of {site} to agree")
        assert a, f"no alert at {site} on either tier"
    assert alerts(ch, "S1")[0][2:5] == (DEV, "warning", "resolved")
    assert {x[3] for x in alerts(nat, "S2")} >= {"critical"}
    # both restarted from their state: the chain resumed its spool after each kill
    assert "forward national: to " in ch.proc.stderr()


def fwd_metric(coll, name, reason=None):
    """A forwarding counter of /metrics for upstream "national" (docs/forwarding.md)."""
    labels = 'upstream="national"' + (f',reason="{reason}"' if reason else "")
    return coll.metric(f"cinemon_forward_{name}{{{labels}}}")


def test_bad_upstream_token_kept_then_delivered(env):
    nat, good = national(env, ("--scope", "all"))
    ch = chain(env, nat.port, "not-the-token-" + "0" * 20)
    t0 = (int(time.time() * 1000) // H - 2) * H
    feeder = Feeder(ch.url("/api/v1/ingest"), ch.tokens, t0, pause=0, batches=10)
    feeder.run()
    if feeder.error:
        raise feeder.error
    stored = sum(agent_row(ch, a)["samples"] for a, _ in AGENTS)
    assert stored == 10 * len(AGENTS) * 2 * POINTS
    wait_until(lambda: "refused our credentials (HTTP 401)" in ch.proc.stderr(), 20 * slow(),
               0.2, "the chain collector to log the 401")
    assert agent_row(nat, FWD) is None  # nothing got through
    # /metrics: every stored batch spooled, none acknowledged, the 401s counted as retried
    records = 10 * len(AGENTS)
    wait_until(lambda: fwd_metric(ch, "upload_failures_total", "retried") >= 1, 20 * slow(), 0.2,
               "a failed upload in /metrics")
    assert fwd_metric(ch, "records_spooled_total") == records
    assert fwd_metric(ch, "spool_records") == records
    assert fwd_metric(ch, "spool_bytes") > 0
    assert fwd_metric(ch, "spool_oldest_age_seconds") > 0
    assert fwd_metric(ch, "upload_attempts_total") >= 1
    assert fwd_metric(ch, "batches_acked_total") == 0
    assert fwd_metric(ch, "records_acked_total") == 0
    assert fwd_metric(ch, "last_upload_timestamp_seconds") == 0
    assert fwd_metric(ch, "upload_failures_total", "rejected") == 0
    assert fwd_metric(ch, "spool_disk_ok") == 1
    spool = env.path("chain.db.forward-national")
    assert any(p.name.startswith("seg-") for p in spool.iterdir()), "no spool segment"
    # the token is fixed; a clean restart reads it
    assert ch.proc.stop() is None
    env.write("up.token", good + "\n", mode=0o600)
    restarted = time.time()
    ch.start(30)
    row = wait_until(lambda: (r := agent_row(nat, FWD)) and r["samples"] >= stored and r,
                     30 * slow(), 0.2, "the spool to be delivered")
    time.sleep(0.5)
    assert agent_row(nat, FWD)["samples"] == stored, row
    check_audit(audit(env.path("national.db"), FWD), "national chain-1")
    # /metrics of this run: nothing new spooled, the backlog acknowledged, one acknowledged
    # request per batch the national collector stored (its audit rows)
    wait_until(lambda: fwd_metric(ch, "spool_records") == 0, 20 * slow(), 0.2,
               "the chain's spool to be empty in /metrics")
    forwarded = len(audit(env.path("national.db"), FWD))
    assert agent_row(nat, FWD)["batches"] == forwarded
    assert forwarded >= 1
    assert fwd_metric(ch, "batches_acked_total") == forwarded
    assert fwd_metric(ch, "records_acked_total") == records
    assert fwd_metric(ch, "records_spooled_total") == 0
    assert fwd_metric(ch, "spool_oldest_age_seconds") == 0
    assert fwd_metric(ch, "upload_attempts_total") >= forwarded
    assert fwd_metric(ch, "last_upload_timestamp_seconds") >= restarted - 1


def test_chain_on_postgresql_killed_twice(env):
    conninfo = harness.pg_database(env)
    nat, ftoken = national(env, ("--scope", "chain:wanda"))
    sites = env.write("sites.csv", "cinema_code,cinema_name,province,city,chain,hall_code\n"
                                   "S1,One,Guangdong,Guangzhou,wanda,hall1\n"
                                   "S2,Two,Beijing,Beijing,wanda,hall1\n")
    r = env.run([harness.binary("cinemon-collector"), "-c", nat.ini, "import", sites])
    assert r.returncode == 0, r.stderr
    ch = chain(env, nat.port, ftoken, conninfo=conninfo)
    t0 = (int(time.time() * 1000) // H - 2) * H
    feeder = Feeder(ch.url("/api/v1/ingest"), ch.tokens, t0, batches=60)
    feeder.start()
    for frac in (0.3, 0.7):
        wait_until(lambda: feeder.sent >= frac * 120 or not feeder.is_alive(), 120 * slow(),
                   0.02, f"the feeder to pass {frac:.0%}")
        ch.kill()
        time.sleep(0.2)
        ch.start(30)
    feeder.join(180 * slow())
    if feeder.error:
        raise feeder.error
    stored = sum(agent_row(ch, a)["samples"] for a, _ in AGENTS)
    assert stored == 120 * 2 * POINTS
    assert env.path("forward-national").is_dir()  # no database file: next to chain.ini
    wait_until(lambda: (r := agent_row(nat, FWD)) and r["samples"] >= stored, 60 * slow(), 0.2,
               "the national collector to hold the chain's samples")
    time.sleep(1.0)
    assert agent_row(nat, FWD)["samples"] == stored
    check_audit(audit(env.path("national.db"), FWD), "national chain-1")
    for _, site in AGENTS:
        a = series(ch, site, "temperature_celsius", t0)
        assert a == series(nat, site, "temperature_celsius", t0) and a, site

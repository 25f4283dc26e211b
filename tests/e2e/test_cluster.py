"""Stateless collectors (issue 7, docs/cluster.md): several cinemon-collector processes on one
PostgreSQL database behind nginx.

test_failover_sigkill_exact_counts: a real agent (polling snmpsim recordings and snmpd)
uploads through nginx, which routes its batches to one collector by a consistent hash of its
token; that collector is killed with SIGKILL mid-stream (several times) and started again,
nginx sends the agent's requests (POST included) to the other one meanwhile and back
afterwards. At the end every seq of the agent's ledger is stored exactly once (audit rows,
agents.last_seq / batches / samples, the sample rows and the roll-ups' counts all equal the
ledger), no gap, and the collector that judged the agent only during a failover raised no
device_silent alert for devices whose data went on arriving through the other one.

test_shared_state_across_collectors: what one collector changes, the others use at once: an
agent token created through collector B works at A on the first request, a viewer session
opened at A works at B (and through nginx at either) and a logout at B ends it at A, an
operator's acknowledgement and a screen's settings written through A read back through B, and
alerts follow the series from one collector's judge to another's (an alert fired at A is not
demoted by a judge that has not learnt of it, is resolved by B, and A starts a new one).

Skipped only when nginx or PostgreSQL's server binaries are not installed.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import harness
from harness import ProcessDied, wait_until

BACKENDS_EXPLICIT = True  # the collectors share a PostgreSQL database of their own

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))
import faultlib  # noqa: E402  (the ledger, the exact-count verdict, the device set)

SITE = "cinema-cluster"
AGENT = "agent-cluster"
STORED = 'cinemon_ingest_batches_total{result="stored"}'
KILLS = 3


def slow():
    return 2.5 if harness.ASAN else 1.0


def cluster(env, n=2, extra=None):
    """n collectors on one fresh PostgreSQL database, nginx in front of them."""
    harness.nginx_binary()  # Skip before starting anything when nginx is absent
    conninfo = harness.pg_database(env)
    colls = [harness.collector(env, store=conninfo, extra=extra) for _ in range(n)]
    lb = harness.nginx(env, colls)
    return conninfo, colls, lb


def stored(c):
    """Batches collector c stored since its start (0 while it is down)."""
    if not c.proc.alive():
        return 0
    try:
        return int(c.metric(STORED))
    except OSError:
        return 0


def owner(colls, window=1.5):
    """The collector that stores the agent's batches right now (exactly one of colls
    stores during a window)."""
    def one():
        before = [stored(c) for c in colls]
        time.sleep(window)
        grew = [c for c, b in zip(colls, before) if stored(c) > b]
        return grew[0] if len(grew) == 1 else None
    return wait_until(one, 30 * slow(), 0.1, "exactly one collector to store the agent's batches")


def wait_stores(c, more, what):
    """Wait until collector c has stored `more` batches above what it has now."""
    base = stored(c)

    def grown():
        if not c.proc.alive():
            raise ProcessDied(f"collector :{c.port} exited:\n{harness._tail(c.proc.stderr())}")
        return stored(c) >= base + more
    wait_until(grown, 30 * slow(), 0.1, what)


def api(lb, op, path, **q):
    """GET path through nginx as the national operator → the "data" list."""
    url = lb.url(path) + ("?" + urllib.parse.urlencode(q) if q else "")
    s, j = harness.http_get(url, token=op, timeout=10)
    assert s == 200 and isinstance(j, dict), f"GET {path} {q}: {s} {j}"
    return j["data"]


def audit(conninfo):
    """The audit rows of our agent: [(first_seq, last_seq, samples)] by first_seq (each
    stored range once; commit order is seq order, the agent row being locked)."""
    rows = harness.psql(conninfo, "SELECT first_seq, last_seq, samples FROM batches"
                        " WHERE agent_id = :'agent' ORDER BY first_seq", agent=AGENT)
    return [(int(a), int(b), int(n)) for a, b, n in rows]


def stored_sample_rows(conninfo):
    """(sample rows, sum of the minute roll-ups' counts) of our site's series."""
    q = ("SELECT (SELECT count(*) FROM samples s JOIN series x ON x.id = s.series_id"
         " JOIN devices d ON d.id = x.device_ref WHERE d.site = :'site'),"
         " (SELECT coalesce(sum(r.n), 0) FROM rollup_1m r JOIN series x ON x.id = r.series_id"
         " JOIN devices d ON d.id = x.device_ref WHERE d.site = :'site')")
    (n, r), = harness.psql(conninfo, q, site=SITE)
    return int(n), int(r)


def test_failover_sigkill_exact_counts(env):
    rng, seed = faultlib.seed_rng("cluster-sigkill")
    conninfo, colls, lb = cluster(env)
    op = colls[0].op_token
    token = harness.token_add(env, colls[0].ini, AGENT, SITE)
    ledger = env.path("ledger.txt")
    # polls every second (the absence rule learns a 1 s interval: 3 s of silence raise
    # device_silent), uploads every 300 ms, retries quickly
    extra = {"interval": "1s", "timeout": "400ms", "retries": "0",
             "upload.interval": "300ms", "upload.timeout": "20s",
             "upload.backoff_base": "50ms", "upload.backoff_cap": "1s",
             "spool.ledger": str(ledger), "spool.fsync": "cycle", "spool.segment_bytes": "64k"}
    ini = harness.write_agent_ini(env, faultlib.devices(), lb.base_url, token, SITE, AGENT,
                                  extra=extra)
    agent = env.start("agent", [harness.binary("cinemon-agent"), "-c", ini], check_exit=True)

    moments = []
    home = owner(colls)
    for i in range(KILLS):
        other = colls[1] if home is colls[0] else colls[0]
        wait_stores(home, 2, f"the agent's batches at :{home.port} before kill {i + 1}")
        t = rng.uniform(0.0, 0.6)
        time.sleep(t)
        home.kill()
        # nginx sends the agent's requests to the other collector meanwhile
        wait_stores(other, 3, f"failover to :{other.port} after kill {i + 1} (seed {seed})")
        down = rng.uniform(0.0, 1.5)
        time.sleep(down)
        moments.append((round(t, 2), round(down, 2)))
        home.start()
        # and back to the restarted one (the same place on the hash ring)
        wait_stores(home, 3, f"failback to :{home.port} after kill {i + 1} (seed {seed})")
        assert agent.alive(), f"the agent died:\n{harness._tail(agent.stderr())}"
        if i == 1:  # the idle one may go too: nothing changes for the agent
            other.kill()
            other.start()
    # The collector that judged the agent during the failovers has learnt its devices'
    # 1 s interval; their data goes on arriving through the other one. It must not take them
    # for silent (it would after 3 s): give it several times that.
    time.sleep(10 * slow())
    silent = api(lb, op, "/api/v1/alerts", site=SITE, rule="device_silent")
    assert not silent, (f"device_silent raised while the devices reported through the other "
                        f"collector: {silent}")

    # drain: the agent uploads what it has left on SIGTERM
    os.killpg(agent.pid, signal.SIGTERM)
    try:
        agent.popen.wait(30 * slow())
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the agent did not exit on SIGTERM:\n{harness._tail(agent.stderr())}")
    assert agent.popen.returncode in (0, -signal.SIGTERM), agent.stderr()
    led = faultlib.read_ledger(ledger)
    want = max(led)

    def row():
        return next((a for a in api(lb, op, "/api/v1/agents") if a["id"] == AGENT), None)

    wait_until(lambda: (row() or {}).get("last_seq", 0) >= want, 30 * slow(), 0.2,
               f"last_seq to reach the ledger's {want}")
    gaps = sorted((int(g["from_seq"]), int(g["to_seq"]), g.get("reason"))
                  for g in api(lb, op, "/api/v1/gaps", agent=AGENT))
    rows = audit(conninfo)
    try:
        summary = faultlib.verify(led, row(), rows, gaps)
    except AssertionError as e:
        raise AssertionError(f"{e}\n  (seed {seed}, kill/down moments {moments})") from None
    # every stored sample is one row, counted once by the roll-ups (no retry stored twice).
    # Samples reach these tables when a collector writes its head out (head_max_age, 2 s on
    # PostgreSQL) or adopts the log of one that was killed: wait for that, then exact.
    produced = sum(led.values())
    wait_until(lambda: stored_sample_rows(conninfo)[0] >= produced, 30 * slow(), 0.3,
               f"the {produced} samples in the tables")
    nrows, nroll = stored_sample_rows(conninfo)
    assert nrows == produced, f"{nrows} sample rows stored, the ledger holds {produced} ({summary})"
    assert nroll == produced, f"the minute roll-ups count {nroll} samples, stored {produced}"
    # both collectors took part, and nginx retried on the other one
    log = lb.access_log()
    assert all(f"127.0.0.1:{c.port}" in log for c in colls), "nginx used only one collector"
    faultlib.note(summary)


# ---------------------------------------------------------------- shared state

F_SITE = "cinema-shared"
F_AGENT = "feeder-1"
DEVICE = "booth/sensor"
RULE = "booth_temperature"  # site.json: 10..35 °C, hold 3 samples, hysteresis 1


class Feeder:
    """An agent of our own: one booth temperature sample per batch, to a chosen collector."""

    def __init__(self, token):
        self.token, self.seq = token, 0
        self.ts = int(time.time() * 1000) - 600000

    def send(self, coll, value):
        self.seq += 1
        self.ts += 1000
        b = {"v": 1, "agent": {"id": F_AGENT, "version": "e2e", "site": F_SITE},
             "seq": self.seq, "sent_ms": int(time.time() * 1000),
             "devices": [{"id": DEVICE, "screen": "booth", "kind": "sensor"}],
             "series": [{"device": DEVICE, "metric": "booth_temperature_celsius", "labels": {},
                         "unit": "Cel", "points": [[self.ts, value]]}],
             "events": []}
        s, j = coll.ingest(b, self.token)
        assert s == 200 and not j.get("duplicate"), (coll.port, s, j)


def alerts(coll, **q):
    return coll.data("/api/v1/alerts", site=F_SITE, rule=RULE, **q)


def _cookie(headers):
    sc = headers.get("set-cookie", "")
    assert sc.startswith("cinemon_session="), headers
    return sc.split(";")[0]


def me(url, cookie):
    s, j, _, _ = harness.request("GET", url + "/api/v1/me", headers={"Cookie": cookie})
    return s, j


def test_shared_state_across_collectors(env):
    # A and B judge every second; C's tick is 10 minutes, so its judge never learns of
    # alerts opened after its start (what a collector sees between two ticks)
    harness.nginx_binary()
    conninfo = harness.pg_database(env)
    a = harness.collector(env, store=conninfo)
    b = harness.collector(env, store=conninfo)
    c = harness.collector(env, store=conninfo, extra={"rules": {"tick": "10m"}})
    lb = harness.nginx(env, [a, b])

    # an agent token made through B's configuration works at A on the first request
    token = harness.token_add(env, b.ini, F_AGENT, F_SITE)
    feed = Feeder(token)
    feed.send(a, 20.0)
    feed.send(b, 20.0)

    # a viewer session opened at A works at B, through nginx too; a logout at B ends it at A
    harness.viewer_add(env, a.ini, "vera", "vera-pw-1")
    s, j, _, hdrs = harness.request("POST", a.url("/api/v1/login"),
                                    {"user": "vera", "password": "vera-pw-1"})
    assert s == 200, (s, j)
    vera = _cookie(hdrs)
    s, j = me(b.base_url, vera)
    assert s == 200 and j["data"]["user"] == "vera", (s, j)
    for _ in range(4):
        s, j = me(lb.base_url, vera)
        assert s == 200 and j["data"]["user"] == "vera", (s, j)
    log = lb.access_log()
    assert f"127.0.0.1:{a.port}" in log and f"127.0.0.1:{b.port}" in log, log
    s, j, _, _ = harness.request("POST", b.url("/api/v1/logout"), headers={"Cookie": vera})
    assert s == 200, (s, j)
    assert me(a.base_url, vera)[0] == 401

    # screen settings written through A read back through B
    s, j, _, _ = harness.request(
        "PUT", a.url(f"/api/v1/screens/{F_SITE}/booth"), {"class": "review"},
        {"Authorization": f"Bearer {a.op_token}"})
    assert s == 200, (s, j)
    scr = [x for x in b.data("/api/v1/screens", site=F_SITE) if x["screen"] == "booth"]
    assert scr and scr[0]["class"] == "review", scr

    # an alert fired by A's judge ...
    for _ in range(3):
        feed.send(a, 45.0)
    fired = wait_until(lambda: alerts(b, state="firing"), 10 * slow(), 0.1,
                       "the alert fired at A, read through B")
    assert len(fired) == 1, fired
    first = fired[0]["id"]
    # ... acknowledged through A, seen so through B
    s, j, _, _ = harness.request("POST", a.url(f"/api/v1/alerts/{first}/ack"),
                                 {"comment": "fan ordered"},
                                 {"Authorization": f"Bearer {a.op_token}"})
    assert s == 200, (s, j)
    s, j = b.get(f"/api/v1/alerts/{first}")
    assert s == 200 and j["ack"] and j["ack"]["comment"] == "fan ordered", j

    # C's judge has not learnt of it: its first violating sample starts a pending alert,
    # which must not demote the firing one (nor notify it again when C's hold is reached)
    feed.send(c, 46.0)
    s, j = b.get(f"/api/v1/alerts/{first}")
    assert s == 200 and j["state"] == "firing", j
    assert [h["state"] for h in j["history"]].count("pending") == 1, j["history"]

    # B takes A's alert into its judge at its next tick and resolves it when the value is
    # back (without that it would stay firing: B's judge never saw it fire)
    def resolved_at_b():
        feed.send(b, 20.0)
        s2, j2 = a.get(f"/api/v1/alerts/{first}")
        return j2 if s2 == 200 and j2["state"] == "resolved" else None
    wait_until(resolved_at_b, 15 * slow(), 0.3, "B to resolve the alert A fired")

    # A drops the alert B ended at its next tick: the next violation is a new alert (without
    # that A's judge would think it still firing and raise nothing)
    def new_alert_at_a():
        feed.send(a, 45.0)
        return [x for x in alerts(b, state="firing") if x["id"] != first]
    again = wait_until(new_alert_at_a, 15 * slow(), 0.3, "a new alert at A after B resolved")
    assert len(again) == 1, again
    everything = alerts(a)
    assert len([x for x in everything if x["state"] != "resolved"]) == 1, everything

"""Nothing lost, nothing twice: the collector's side of exactly-once delivery.

Raw HTTP posts (plain and gzip) against the real collector binary:
- seq 1..3 stored; 2 again is acknowledged as a duplicate and nothing is doubled (the
  sample rows, the audit rows and /api/v1/agents' totals stay exact);
- a batch first_seq=3 seq=5 after last_seq 3 is refused with 409 and last_seq 3, nothing
  of it stored; re-batched from 4 it is stored;
- first_seq=7 seq=8 after last_seq 5 is stored and /api/v1/gaps shows 6..6 "missing"; a later
  report of the gap 6..6 "spool_full" replaces the reason;
- SIGKILL right after an ack: after the restart last_seq and every acknowledged sample are
  there, and the acknowledged batch is a duplicate;
- the same batch posted concurrently many times is stored once.
After each case the audit rows (batches table) are checked: ranges never overlap, and their
sums equal /api/v1/agents' totals and the sample rows.
"""

import json
import os
import signal
import threading
import time

import harness

AGENT, SITE = "eo-agent", "eo-site"
DEVICE, METRIC = "hall1/projector", "lamp_hours"
# Every record r has its point at T0 + r s; T0 is the start of the hour a day ago, well within
# the raw retention the collector applies when it starts again.
T0 = (int(time.time()) // 3600 - 24) * 3600 * 1000


def batch(seq, first_seq=None, gaps=None, agent=AGENT, site=SITE):
    """A wire batch carrying records first_seq..seq, one point per record."""
    first = seq if first_seq is None else first_seq
    b = {"v": 1, "agent": {"id": agent, "version": "e2e", "site": site}, "seq": seq,
         "sent_ms": int(time.time() * 1000),
         "devices": [{"id": DEVICE, "screen": "hall1", "kind": "projector"}],
         "series": [{"device": DEVICE, "metric": METRIC, "labels": {}, "unit": "h",
                     "points": [[T0 + r * 1000, float(r)] for r in range(first, seq + 1)]}],
         "events": []}
    if first_seq is not None:
        b["first_seq"] = first_seq
    if gaps is not None:
        b["gaps"] = [{"from_seq": f, "to_seq": t, "reason": r} for f, t, r in gaps]
    return b


def post(coll, body, token, gz=False):
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if gz:
        raw = harness.gzip_bytes(raw)
        headers["Content-Encoding"] = "gzip"
    return coll.ingest(raw, token, headers=headers)


def agent_row(coll, agent=AGENT):
    rows = [a for a in coll.data("/api/v1/agents") if a.get("id") == agent]
    assert len(rows) == 1, f"/api/v1/agents has {len(rows)} rows for {agent}"
    return rows[0]


def stored_points(coll):
    data = coll.data("/api/v1/series", device=DEVICE, metric=METRIC, site=SITE,
                     **{"from": T0, "to": T0 + 10**7})
    assert len(data) <= 1, f"more than one series: {data}"
    return [p[0] for p in data[0]["points"]] if data else []


def metric_value(coll, name):
    s, _, raw, _ = harness.request("GET", coll.base_url + "/metrics")
    assert s == 200, f"/metrics: {s}"
    for ln in raw.decode().splitlines():
        if ln.startswith(name + " "):
            return float(ln.split()[-1])
    raise AssertionError(f"/metrics has no {name}")


def audit(env, coll, records):
    """The database and the API agree that exactly `records` (a set of seqs) are stored, once."""
    rows = [tuple(int(x) for x in r) for r in harness.store_rows(
        coll, "SELECT first_seq, last_seq, samples FROM batches WHERE agent_id = :agent"
        " ORDER BY first_seq",
        "SELECT first_seq, last_seq, samples FROM batches WHERE agent_id = :'agent'"
        " ORDER BY first_seq", agent=AGENT)]
    samples_rows = harness.stored_samples(coll)
    covered = []
    for i, (first, last, samples) in enumerate(rows):
        assert first <= last, f"audit row {first}..{last} upside down"
        assert samples == last - first + 1, f"audit row {first}..{last}: {samples} samples"
        if i:
            assert first > rows[i - 1][1], f"audit rows overlap: {rows[i - 1]} and {rows[i]}"
        covered += range(first, last + 1)
    assert sorted(covered) == sorted(records), f"audit covers {covered}, want {sorted(records)}"
    a = agent_row(coll)
    assert a["batches"] == len(rows), f"/api/v1/agents batches {a['batches']}, audit {len(rows)}"
    assert a["samples"] == len(records), f"/api/v1/agents samples {a['samples']}, " \
                                         f"want {len(records)}"
    assert a["last_seq"] == max(records), f"last_seq {a['last_seq']}, want {max(records)}"
    assert samples_rows == len(records), f"{samples_rows} sample rows, want {len(records)}"
    assert metric_value(coll, "cinemon_store_samples") == len(records)
    assert stored_points(coll) == [T0 + r * 1000 for r in sorted(records)]


def start(env):
    coll = harness.collector(env, tokens=[(AGENT, SITE)])
    return coll, coll.tokens[(AGENT, SITE)]


def test_duplicates_overlaps_and_gaps(env):
    coll, tok = start(env)
    for seq in (1, 2, 3):
        s, j = post(coll, batch(seq), tok, gz=(seq == 2))
        assert (s, j) == (200, {"ack": seq}), f"seq {seq}: {s} {j}"
    audit(env, coll, {1, 2, 3})
    # what the head holds (committed, not yet written out to the tables) is among them
    held = metric_value(coll, "cinemon_store_head_points")
    assert 0 <= held <= 3, f"/metrics: the head holds {held} samples of 3"
    assert metric_value(coll, "cinemon_store_head_series") <= 1
    assert metric_value(coll, "cinemon_store_head_writeout_seconds_count") >= 0

    # the same seq again (plain and gzip): acknowledged, nothing doubled
    for gz in (False, True):
        s, j = post(coll, batch(2), tok, gz=gz)
        assert (s, j) == (200, {"ack": 2, "duplicate": True}), f"seq 2 again: {s} {j}"
    audit(env, coll, {1, 2, 3})

    # records 3..5 after last_seq 3: refused whole, with where the collector is
    s, j = post(coll, batch(5, first_seq=3), tok)
    assert s == 409, f"overlapping batch: {s} {j}"
    assert j.get("at") == "first_seq" and j.get("last_seq") == 3 and j.get("error"), j
    s, j = post(coll, batch(5, first_seq=2), tok, gz=True)
    assert (s, j.get("last_seq")) == (409, 3), f"overlapping gzip batch: {s} {j}"
    audit(env, coll, {1, 2, 3})

    # re-batched from last_seq + 1: stored
    s, j = post(coll, batch(5, first_seq=4), tok)
    assert (s, j) == (200, {"ack": 5}), f"re-batched 4..5: {s} {j}"
    audit(env, coll, {1, 2, 3, 4, 5})
    assert coll.data("/api/v1/gaps", agent=AGENT) == []

    # 6 never arrives: an implicit gap
    s, j = post(coll, batch(8, first_seq=7), tok)
    assert (s, j) == (200, {"ack": 8}), f"7..8: {s} {j}"
    gaps = coll.data("/api/v1/gaps", agent=AGENT)
    assert [(g["agent"], g["from_seq"], g["to_seq"], g["reason"]) for g in gaps] == \
        [(AGENT, 6, 6, "missing")], gaps
    assert isinstance(gaps[0]["reported_ms"], int) and gaps[0]["reported_ms"] > T0, gaps

    # the agent explains it: the reason is replaced, the gap not doubled
    s, j = post(coll, batch(9, gaps=[(6, 6, "spool_full")]), tok, gz=True)
    assert (s, j) == (200, {"ack": 9}), f"9 with a gap report: {s} {j}"
    gaps = coll.data("/api/v1/gaps", agent=AGENT)
    assert [(g["from_seq"], g["to_seq"], g["reason"]) for g in gaps] == [(6, 6, "spool_full")], \
        gaps
    audit(env, coll, {1, 2, 3, 4, 5, 7, 8, 9})

    # a malformed gap report is refused with its path, and changes nothing
    bad = batch(10, gaps=[(6, 6, "spool_full")])
    bad["gaps"][0]["until"] = 7
    s, j = post(coll, bad, tok)
    assert (s, j.get("at")) == (400, "gaps[0].until"), f"bad gap: {s} {j}"
    s, j = post(coll, batch(10, first_seq=11), tok)
    assert (s, j.get("at")) == (400, "first_seq"), f"first_seq > seq: {s} {j}"
    audit(env, coll, {1, 2, 3, 4, 5, 7, 8, 9})

    # the query endpoints' parameters are checked
    s, j = coll.get("/api/v1/gaps")
    assert (s, j.get("at")) == (400, "agent"), f"gaps without agent: {s} {j}"
    s, j = coll.get("/api/v1/gaps", agent=AGENT, site=SITE)
    assert (s, j.get("at")) == (400, "site"), f"gaps with an unknown parameter: {s} {j}"
    assert coll.data("/api/v1/gaps", agent="nobody") == []
    s, j = coll.get("/api/v1/agents", x="1")
    assert s == 400, f"agents with a parameter: {s} {j}"
    a = agent_row(coll)
    assert (a["site"], a["version"]) == (SITE, "e2e"), a
    assert isinstance(a["last_seen_ms"], int) and a["last_seen_ms"] > T0, a

    assert metric_value(coll, 'cinemon_ingest_batches_total{result="overlap"}') == 2
    assert metric_value(coll, 'cinemon_ingest_batches_total{result="duplicate"}') == 2
    assert metric_value(coll, 'cinemon_ingest_batches_total{result="stored"}') == 6


def _restart(env, coll):
    proc = env.start("collector", [harness.binary("cinemon-collector"), "-c", coll.ini],
                     check_exit=True)
    coll.proc = proc

    def ready():
        if not proc.alive():
            raise harness.ProcessDied(f"collector exited ({proc.popen.returncode}):\n"
                                      f"{harness._tail(proc.stderr())}")
        return coll.healthy()
    harness.wait_until(ready, 30, 0.1, "the restarted collector's /healthz")


def test_sigkill_right_after_ack(env):
    coll, tok = start(env)
    stored = set()
    seq = 0
    for round_ in range(3):
        for _ in range(3):
            seq += 1
            s, j = post(coll, batch(seq), tok, gz=bool(seq % 2))
            assert (s, j) == (200, {"ack": seq}), f"seq {seq}: {s} {j}"
            stored.add(seq)
        # the moment the last ack is read: SIGKILL, no chance to flush or checkpoint
        coll.proc.check_exit = False
        os.kill(coll.proc.pid, signal.SIGKILL)
        coll.proc.popen.wait(10)
        _restart(env, coll)
        audit(env, coll, stored)
        s, j = post(coll, batch(seq), tok)
        assert (s, j) == (200, {"ack": seq, "duplicate": True}), \
            f"round {round_}: acknowledged seq {seq} after the restart: {s} {j}"
    # a multi-record batch acknowledged just before the kill is whole afterwards
    s, j = post(coll, batch(seq + 4, first_seq=seq + 1), tok)
    assert (s, j) == (200, {"ack": seq + 4}), f"{seq + 1}..{seq + 4}: {s} {j}"
    coll.proc.check_exit = False
    os.kill(coll.proc.pid, signal.SIGKILL)
    coll.proc.popen.wait(10)
    _restart(env, coll)
    stored |= set(range(seq + 1, seq + 5))
    audit(env, coll, stored)
    s, j = post(coll, batch(seq + 5, first_seq=seq + 4), tok)
    assert (s, j.get("last_seq")) == (409, seq + 4), f"overlap after the restart: {s} {j}"


def test_concurrent_posts_of_one_batch(env):
    coll, tok = start(env)
    n = 12
    stored = set()
    for seq, first in ((1, 1), (4, 2), (5, 5)):
        body = batch(seq, first_seq=first)
        barrier = threading.Barrier(n)
        results = [None] * n

        def send(i):
            barrier.wait()
            try:
                results[i] = post(coll, body, tok, gz=bool(i % 2))
            except Exception as e:  # noqa: BLE001 - reported below
                results[i] = (None, repr(e))
        threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(r and r[0] == 200 for r in results), f"seq {seq}: {results}"
        fresh = [r for r in results if r[1] == {"ack": seq}]
        dups = [r for r in results if r[1] == {"ack": seq, "duplicate": True}]
        assert (len(fresh), len(dups)) == (1, n - 1), f"seq {seq}: {results}"
        stored |= set(range(first, seq + 1))
        audit(env, coll, stored)

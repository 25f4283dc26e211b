"""Roll-ups through the API: samples sent through ingest, then GET /api/v1/series with
step=1h and step=1m — each hour's avg, min, max and count equal those of the raw samples of
that hour as the same API returns them; a bad step is refused naming the parameter."""

import statistics
import time

import harness

SITE, AGENT = "S1", "agent1"
H = 3600000


def test_hourly_rollup_equals_raw(env):
    coll = harness.collector(env, tokens=[(AGENT, SITE)])
    token = coll.tokens[(AGENT, SITE)]
    t0 = (int(time.time() * 1000) // H - 5) * H  # five hours ago, on the hour
    seq = 0
    values = {}
    for b in range(12):  # 12 batches of 25 samples, 30 s apart: 2.5 hours
        pts = []
        for k in range(25):
            i = b * 25 + k
            ts = t0 + i * 30000
            v = round(40 + (i * 7 % 23) * 0.25, 2)
            pts.append([ts, v])
            values[ts] = v
        seq += 1
        body = {"v": 1, "agent": {"id": AGENT, "version": "e2e", "site": SITE}, "seq": seq,
                "sent_ms": int(time.time() * 1000), "devices": [],
                "series": [{"device": "hall1/sensor", "metric": "temperature_celsius",
                            "labels": {"sensor": "booth"}, "points": pts}], "events": []}
        s, j = coll.ingest(body, token)
        assert s == 200, j
    q = dict(device="hall1/sensor", metric="temperature_celsius", site=SITE, **{"from": str(t0)},
             to=str(t0 + 3 * H))
    raw = coll.data("/api/v1/series", **q)[0]["points"]
    assert len(raw) == 300
    hourly = coll.data("/api/v1/series", step="1h", **q)
    assert hourly[0]["step_ms"] == H
    rows = hourly[0]["points"]
    assert [r[0] for r in rows] == [t0, t0 + H, t0 + 2 * H]
    for bucket, avg, mn, mx, n in rows:
        vs = [v for ts, v in raw if bucket <= ts < bucket + H]
        assert n == len(vs)
        assert abs(avg - statistics.fmean(vs)) < 1e-9, (bucket, avg, statistics.fmean(vs))
        assert mn == min(vs) and mx == max(vs)
    minutes = coll.data("/api/v1/series", step="1m", **q)[0]["points"]
    assert len(minutes) == 150 and all(r[4] == 2 for r in minutes)
    s, j = coll.get("/api/v1/series", step="5m", **q)
    assert s == 400 and j["at"] == "step", j

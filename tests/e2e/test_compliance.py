"""Compliance end to end (issue 5 item 6): sites and screens imported from CSV, synthetic
samples of yesterday sent through the real ingest path for three cinemas in three cities of
two provinces, then GET /api/v1/compliance at every level: the time-weighted share within
tolerance of luminance and SPL per screen, site, city, province and nation."""

import time

import harness
from harness import wait_until

A, B, C = "11010001", "44010001", "44030001"  # Beijing; Guangzhou and Shenzhen (Guangdong)
STEP = 10 * 60000
HOUR = 3600000


def _csv(env, coll):
    path = env.write("halls.csv",
                     "cinema_code,province,city,hall_code,class,display,spl_L,spl_LFE\n"
                     f"{A},Beijing,Beijing,hall1,theatre,projection,85,\n"
                     f"{A},Beijing,Beijing,hall2,review,projection,,\n"
                     f"{B},Guangdong,Guangzhou,hall1,theatre,projection,,\n"
                     f"{C},Guangdong,Shenzhen,hall1,theatre,projection,85,85\n")
    r = env.run([harness.binary("cinemon-collector"), "-c", coll.ini, "import", path])
    assert r.returncode == 0, r.stderr


def _send(coll, site, series):
    """One batch of agent-<site>: series = [(device, metric, labels, [(ts, v), ...])]."""
    devs = sorted({s[0] for s in series})
    b = {"v": 1, "agent": {"id": "agent-" + site, "version": "e2e", "site": site}, "seq": 1,
         "sent_ms": int(time.time() * 1000),
         "devices": [{"id": d, "screen": d.split("/")[0], "kind": "light_sensor"} for d in devs],
         "series": [{"device": d, "metric": m, "labels": lab, "points": [list(p) for p in pts]}
                    for d, m, lab, pts in series],
         "events": []}
    s, j = coll.ingest(b, coll.tokens[("agent-" + site, site)])
    assert s == 200, (s, j)


def _run(t0, hours, value):
    return [(t0 + i * STEP, value) for i in range(int(hours * HOUR / STEP))]


def _near(a, b):
    return a is not None and abs(a - b) < 1e-6


def test_compliance_rollups(env):
    coll = harness.collector(env, tokens=[("agent-" + s, s) for s in (A, B, C)],
                             extra={"rules": {"compliance_interval": "1s"}})
    _csv(env, coll)
    now = int(time.time() * 1000)
    d0 = (now // 86400000 - 1) * 86400000  # yesterday 00:00 UTC: whole hours, all one day
    day = time.strftime("%Y-%m-%d", time.gmtime(d0 / 1000))
    lum = ("screen_luminance_nits", {"mode": "2d"})
    # A/hall1 (theatre): 48 nits for 6 h, then 30 for 2 h; A/hall2 (review): 44 for 4 h
    _send(coll, A, [("hall1/sensor", *lum, _run(d0, 6, 48.0) + _run(d0 + 6 * HOUR, 2, 30.0)),
                    ("hall2/sensor", *lum, _run(d0, 4, 44.0))])
    # B/hall1: 48 for 2 h
    _send(coll, B, [("hall1/sensor", *lum, _run(d0, 2, 48.0))])
    # C/hall1: luminance in for 4 h; SPL L (ref 85, ±3) 85 for 2 h then 90 for 2 h,
    # LFE (ref 85, ±5) 89 for 4 h, R (no reference) not judged
    _send(coll, C, [("hall1/sensor", *lum, _run(d0, 4, 48.0)),
                    ("hall1/cp950", "spl_dbc", {"channel": "L"},
                     _run(d0, 2, 85.0) + _run(d0 + 2 * HOUR, 2, 90.0)),
                    ("hall1/cp950", "spl_dbc", {"channel": "LFE"}, _run(d0, 4, 89.0)),
                    ("hall1/cp950", "spl_dbc", {"channel": "R"}, _run(d0, 4, 60.0))])

    def nation():
        rows = coll.data("/api/v1/compliance", level="nation", day=day)
        return rows if rows and rows[0]["screens"] == 4 and \
            _near(rows[0]["luminance"]["measured_hours"], 18.0) else None
    rows = wait_until(nation, 20, 0.3, "compliance figures of yesterday")
    n = rows[0]
    assert _near(n["luminance"]["in_tolerance"], 12.0 / 18.0), n  # time-weighted
    assert _near(n["spl"]["in_tolerance"], 0.75) and _near(n["spl"]["measured_hours"], 8.0), n
    assert n["white"]["in_tolerance"] is None and n["day"] == day, n

    scr = {(r["site"], r["screen"]): r
           for r in coll.data("/api/v1/compliance", level="screen", day=day)}
    assert len(scr) == 4, scr
    assert _near(scr[(A, "hall1")]["luminance"]["in_tolerance"], 0.75), scr
    assert _near(scr[(A, "hall1")]["luminance"]["measured_hours"], 8.0), scr
    assert scr[(A, "hall2")]["luminance"]["in_tolerance"] == 0, scr  # 44 in a review room
    assert _near(scr[(B, "hall1")]["luminance"]["in_tolerance"], 1.0), scr
    assert _near(scr[(C, "hall1")]["spl"]["in_tolerance"], 0.75), scr
    assert scr[(C, "hall1")]["city"] == "Shenzhen", scr

    site = coll.data("/api/v1/compliance", level="site", day=day, site=A)
    assert len(site) == 1 and site[0]["screens"] == 2, site
    assert _near(site[0]["luminance"]["in_tolerance"], 0.5), site  # 6 h of 12

    city = {r["city"]: r for r in coll.data("/api/v1/compliance", level="city", day=day)}
    assert set(city) == {"Beijing", "Guangzhou", "Shenzhen"}, city
    assert city["Guangzhou"]["province"] == "Guangdong", city
    assert _near(city["Beijing"]["luminance"]["in_tolerance"], 0.5), city

    prov = coll.data("/api/v1/compliance", level="province", day=day)
    assert [p["province"] for p in prov] == ["Beijing", "Guangdong"], prov
    assert _near(prov[0]["luminance"]["in_tolerance"], 0.5), prov
    assert _near(prov[1]["luminance"]["in_tolerance"], 1.0), prov
    assert _near(prov[1]["luminance"]["measured_hours"], 6.0), prov
    assert _near(prov[1]["spl"]["in_tolerance"], 0.75) and prov[1]["screens"] == 2, prov
    only = coll.data("/api/v1/compliance", level="city", day=day, province="Guangdong")
    assert [c["city"] for c in only] == ["Guangzhou", "Shenzhen"], only

    # a day without data, and bad parameters named
    assert coll.data("/api/v1/compliance", level="nation", day="2001-01-01") == []
    for q, at in (({"level": "planet"}, "level"), ({"day": "2025-02-30"}, "day"),
                  ({"day": "yesterday"}, "day"), ({"colour": "x"}, "colour"),
                  ({"site": ""}, "site")):
        s, j = coll.get("/api/v1/compliance", **q)
        assert s == 400 and j["at"] == at, (q, s, j)
    # today by default (no samples today: an empty list or figures without data)
    s, j = coll.get("/api/v1/compliance")
    assert s == 200 and isinstance(j["data"], list), j

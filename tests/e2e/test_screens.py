"""Sites and screens: `cinemon-collector import FILE.csv` (all or nothing, errors with
file:line), GET /api/v1/screens, and PUT /api/v1/screens/{site}/{screen} with operator tokens
(`token add --operator`): scoped to a site or national, agent tokens refused, bad bodies
refused with the JSON path, partial updates."""

import json

import harness

CSV = """cinema_code,cinema_name,province,city,hall_code,hall_name,class,display,format,spl_L,spl_C,spl_R
11010001,"Capital Cinema, Wangfujing",Beijing,Beijing,hall1,Hall 1,theatre,projection,2D,85,85,85
11010001,"Capital Cinema, Wangfujing",Beijing,Beijing,hall2,Review room,review,led,HDR,,,
31010002,Bund Screens,Shanghai,Shanghai,hall1,IMAX,theatre,projection,3D,,,
"""


def _import(env, coll, text, name="halls.csv"):
    path = env.write(name, text)
    return env.run([harness.binary("cinemon-collector"), "-c", coll.ini, "import", path],
                   timeout=60)


def _operator(env, coll, name, site=None):
    argv = [harness.binary("cinemon-collector"), "-c", coll.ini, "token", "add",
            "--operator", name]
    if site:
        argv += ["--site", site]
    r = env.run(argv, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _put(coll, site, screen, body, token):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    hdrs = {"Content-Type": "application/json"}
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    status, parsed, _, _ = harness.request("PUT", coll.url(f"/api/v1/screens/{site}/{screen}"),
                                           data, hdrs)
    return status, parsed


def test_import_list_and_update(env):
    coll = harness.collector(env, tokens=[("agent1", "11010001")])
    r = _import(env, coll, CSV)
    assert r.returncode == 0, r.stderr
    assert "3 rows, 3 screens" in r.stdout, r.stdout
    screens = coll.data("/api/v1/screens")
    assert [(s["site"], s["screen"]) for s in screens] == [
        ("11010001", "hall1"), ("11010001", "hall2"), ("31010002", "hall1")]
    assert screens[0]["spl_ref"] == {"C": 85.0, "L": 85.0, "R": 85.0}
    assert screens[1]["class"] == "review" and screens[1]["display"] == "led"
    sites = {s["code"]: s for s in coll.data("/api/v1/sites")}
    assert sites["11010001"]["name"] == "Capital Cinema, Wangfujing"
    assert sites["31010002"]["province"] == "Shanghai"
    assert len(coll.data("/api/v1/screens", site="31010002")) == 1

    # a bad file is refused with file:line and nothing of it is imported
    r = _import(env, coll, "cinema_code,hall_code,class\n99,h1,theatre\n99,h2,cinema\n", "bad.csv")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "bad.csv:3: column 'class'" in r.stderr, r.stderr
    assert coll.data("/api/v1/screens", site="99") == []

    national = _operator(env, coll, "ncc-duty")
    local = _operator(env, coll, "beijing-ops", "11010001")
    # partial update by the national operator
    s, j = _put(coll, "11010001", "hall2", {"class": "theatre",
                                             "spl_ref": {"L": 85, "Ls": 82}}, national)
    assert s == 200, j
    assert j["class"] == "theatre" and j["display"] == "led", j
    assert j["spl_ref"] == {"L": 85.0, "Ls": 82.0}, j
    assert j["updated_by"] == "ncc-duty", j
    # the site's own operator; a new screen is created with defaults
    s, j = _put(coll, "11010001", "hall3", {"name": "Hall 3"}, local)
    assert s == 200 and j["class"] == "theatre" and j["display"] == "projection", j
    # ... but not another site's
    s, j = _put(coll, "31010002", "hall1", {"class": "review"}, local)
    assert s == 403, j
    # no token, an unknown token, an agent token
    assert _put(coll, "11010001", "hall1", {"class": "review"}, None)[0] == 401
    assert _put(coll, "11010001", "hall1", {"class": "review"}, "f" * 64)[0] == 401
    agent_tok = coll.tokens[("agent1", "11010001")]
    assert _put(coll, "11010001", "hall1", {"class": "review"}, agent_tok)[0] == 401
    # bad bodies: the JSON path of the problem
    for body, at in (({"class": "cinema"}, "class"), ({"colour": "red"}, "colour"),
                     ({"spl_ref": {"L": "loud"}}, "spl_ref.L"),
                     ({"spl_ref": {"L": 300}}, "spl_ref.L"), ({"display": 3}, "display"),
                     (b"{not json", ""), (b"[1,2]", "")):
        s, j = _put(coll, "11010001", "hall1", body, national)
        assert s == 400, (body, s, j)
        assert j.get("at") == at, (body, j)
    # wrong method, wrong path shape
    s, j, _, hdrs = harness.request("DELETE", coll.url("/api/v1/screens/11010001/hall1"), None,
                                    {"Authorization": f"Bearer {national}"})
    assert s == 405 and hdrs.get("allow") == "PUT", (s, j, hdrs)
    assert _put(coll, "11010001", "a/b", {"class": "review"}, national)[0] == 404
    # nothing above changed hall1
    h1 = coll.data("/api/v1/screens", site="11010001", screen="hall1")[0]
    assert h1["class"] == "theatre" and h1["spl_ref"] == {"C": 85.0, "L": 85.0, "R": 85.0}, h1
    assert coll.healthy()

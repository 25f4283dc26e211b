"""Access end to end (issue 6): viewer accounts made with the CLI log in to a real collector and
get a session cookie (HttpOnly, SameSite=Strict); API reads need a principal (a session or an
operator token, never an agent token) while /healthz and /metrics stay open; a viewer cannot
acknowledge an alert, an operator can; logout ends the session; a wrong password and an
unknown user get the same answer; repeated failures are throttled (429 + Retry-After); the CLI
refuses bad input and never shows a hash; secrets never reach the log. Behind nginx with
[collector] trusted_proxies, logins are throttled per client address taken from
X-Forwarded-For, and a forged header is ignored."""

import http.client
import json
import time
import urllib.parse

import harness

SITE = "11010001"
AGENT = "agent1"
MIN = 60000


def _cookie(headers):
    """The cinemon_session=... pair of a Set-Cookie header."""
    sc = headers.get("set-cookie", "")
    assert sc.startswith("cinemon_session="), headers
    return sc.split(";")[0]


def _login(coll, user, password):
    return harness.request("POST", coll.url("/api/v1/login"),
                           {"user": user, "password": password})


def _get(coll, path, cookie=None, token=None):
    h = {}
    if cookie:
        h["Cookie"] = f"lang=zh; {cookie}; theme=dark"
    if token:
        h["Authorization"] = f"Bearer {token}"
    s, j, _, hdrs = harness.request("GET", coll.url(path), headers=h)
    return s, j, hdrs


def _firing_alert(env, coll):
    """One firing luminance alert on SITE/hall1 (the shipped rules, a theatre screen)."""
    path = env.write("halls.csv", "cinema_code,hall_code,class,display\n"
                     f"{SITE},hall1,theatre,projection\n")
    r = env.run([harness.binary("cinemon-collector"), "-c", coll.ini, "import", path])
    assert r.returncode == 0, r.stderr
    time.sleep(1.5)  # screen settings are re-read every tick (1 s)
    t0 = int(time.time() * 1000) - 30 * MIN
    for i in range(5):
        b = {"v": 1, "agent": {"id": AGENT, "version": "e2e", "site": SITE}, "seq": i + 1,
             "sent_ms": int(time.time() * 1000),
             "devices": [{"id": "hall1/sensor", "screen": "hall1", "kind": "light_sensor"}],
             "series": [{"device": "hall1/sensor", "metric": "screen_luminance_nits",
                         "labels": {"mode": "2d"}, "points": [[t0 + i * MIN, 30.0]]}],
             "events": []}
        s, j = coll.ingest(b, coll.tokens[(AGENT, SITE)])
        assert s == 200, (s, j)
    a = harness.wait_until(lambda: coll.data("/api/v1/alerts", site=SITE, state="firing"),
                           10, 0.2, "a firing alert")
    return a[0]["id"]


def test_login_roles_logout_throttle(env):
    coll = harness.collector(env, tokens=[(AGENT, SITE)],
                             extra={"access": {"login_max_failures": 3, "lockout": "1m"}})
    harness.viewer_add(env, coll.ini, "vera", "vera-pw-1")
    harness.viewer_add(env, coll.ini, "otto", "otto pw 2", role="operator")
    harness.viewer_add(env, coll.ini, "gina", "gina-pw-3", scope=("province", "Guangdong"))

    # reads need a principal; the open endpoints do not
    s, j, hdrs = _get(coll, "/api/v1/sites")
    assert s == 401 and set(j) == {"error", "at"}, (s, j)
    assert _get(coll, "/api/v1/alerts")[0] == 401
    assert _get(coll, "/api/v1/me")[0] == 401
    assert _get(coll, "/healthz")[0] == 200
    s, _, raw, _ = harness.request("GET", coll.url("/metrics"))
    assert s == 200 and b"cinemon" in raw
    # an operator token reads; an agent token never does
    assert _get(coll, "/api/v1/sites", token=coll.op_token)[0] == 200
    assert _get(coll, "/api/v1/sites", token=coll.tokens[(AGENT, SITE)])[0] == 401
    assert _get(coll, "/api/v1/sites", token="0" * 64)[0] == 401

    # login: a session cookie with its flags
    s, j, _, hdrs = _login(coll, "vera", "vera-pw-1")
    assert s == 200, (s, j)
    assert j["data"] == {"user": "vera", "role": "viewer", "scope": {"kind": "all", "value": ""}}
    sc = hdrs["set-cookie"]
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"):
        assert flag in sc, sc
    assert "Secure" not in sc, sc
    vera = _cookie(hdrs)
    s, j, _ = _get(coll, "/api/v1/me", cookie=vera)
    assert s == 200 and j["data"]["user"] == "vera", j
    assert _get(coll, "/api/v1/sites", cookie=vera)[0] == 200
    s, j, _, _ = harness.request("GET", coll.url("/api/v1/sites"),
                                 headers={"Cookie": "cinemon_session=" + "ab" * 32})
    assert s == 401 and j["at"] == "Cookie", j

    # a province viewer's scope
    s, j, _, _ = _login(coll, "gina", "gina-pw-3")
    assert s == 200 and j["data"]["scope"] == {"kind": "province", "value": "Guangdong"}, j

    # a viewer cannot acknowledge; an operator can (with JSON only)
    aid = _firing_alert(env, coll)
    ack = coll.url(f"/api/v1/alerts/{aid}/ack")
    s, j, _, _ = harness.request("POST", ack, {"comment": "seen"}, {"Cookie": vera})
    assert s == 403, (s, j)
    s, j, _, hdrs = _login(coll, "otto", "otto pw 2")
    assert s == 200 and j["data"]["role"] == "operator", j
    otto = _cookie(hdrs)
    s, j, _, _ = harness.request("POST", ack, '{"comment": "x"}',
                                 {"Cookie": otto, "Content-Type": "text/plain"})
    assert s == 415 and j["at"] == "Content-Type", (s, j)
    s, j, _, _ = harness.request("POST", ack, {"comment": "lamp ordered"}, {"Cookie": otto})
    assert s == 200 and j["ack"]["by"] == "otto", (s, j)
    s, j, _, _ = harness.request("POST", ack, {"comment": "again"})
    assert s == 401, (s, j)

    # logout ends the session; the old cookie reads nothing
    s, j, _, hdrs = harness.request("POST", coll.url("/api/v1/logout"), None, {"Cookie": vera})
    assert s == 200 and "Max-Age=0" in hdrs.get("set-cookie", ""), (s, hdrs)
    assert _get(coll, "/api/v1/me", cookie=vera)[0] == 401
    assert _get(coll, "/api/v1/sites", cookie=vera)[0] == 401
    assert _get(coll, "/api/v1/sites", cookie=otto)[0] == 200

    # a wrong password and an unknown user: the same answer
    s1, j1, _, _ = _login(coll, "vera", "wrong")
    s2, j2, _, _ = _login(coll, "nobody", "wrong")
    assert s1 == s2 == 401 and j1 == j2, (j1, j2)
    # bad bodies
    assert harness.request("POST", coll.url("/api/v1/login"), {"user": "vera"})[0] == 400
    assert harness.request("POST", coll.url("/api/v1/login"), '{"user":"vera","password":"x"}',
                           {"Content-Type": "text/plain"})[0] == 415
    assert _get(coll, "/api/v1/login")[0] == 405

    # throttling: after 3 failures vera is refused, even with the right password
    for _ in range(2):
        assert _login(coll, "vera", "wrong")[0] == 401
    s, j, _, hdrs = _login(coll, "vera", "vera-pw-1")
    assert s == 429, (s, j)
    assert 1 <= int(hdrs["retry-after"]) <= 60, hdrs

    # nothing secret in the log
    log = coll.proc.stderr()
    for secret in ("vera-pw-1", "otto pw 2", "gina-pw-3", vera.split("=")[1],
                   otto.split("=")[1], coll.op_token):
        assert secret not in log, f"secret found in the collector's log: {secret[:6]}..."
    assert "failed login of vera" in log


def test_anonymous_read(env):
    coll = harness.collector(env, extra={"access": {"anonymous_read": "true",
                                                    "secure_cookie": "true"}})
    assert _get(coll, "/api/v1/sites")[0] == 200
    assert _get(coll, "/api/v1/me")[0] == 401
    harness.viewer_add(env, coll.ini, "vera", "pw")
    s, _, _, hdrs = _login(coll, "vera", "pw")
    assert s == 200 and "; Secure" in hdrs["set-cookie"], hdrs
    # writes still need an operator
    s, j, _, _ = harness.request("POST", coll.url("/api/v1/silences"),
                                 {"site": SITE, "until": int(time.time() * 1000) + 60000})
    assert s == 401, (s, j)


def test_viewer_cli(env):
    coll = harness.collector(env)
    exe = harness.binary("cinemon-collector")

    def cli(*args, stdin="pw-1\n"):
        return env.run([exe, "-c", coll.ini, "viewer", *args], input=stdin)

    for args, stdin, want in [
        (("add", "x", "--role", "admin"), "pw\n", "unknown role 'admin'"),
        (("add", "x", "--province", "P", "--site", "S"), "pw\n", "at most one of"),
        (("add", "x"), "\n", "password is empty"),
        (("add", "x"), "", "no password given"),
        (("add", "n" * 200), "pw\n", "name too long"),
        (("add",), "pw\n", "needs a NAME"),
        (("add", "x", "--password", "pw"), "", "unknown option '--password'"),
        (("frobnicate",), "", "unknown viewer command"),
    ]:
        r = cli(*args, stdin=stdin)
        assert r.returncode == 2 and want in r.stderr, (args, r.returncode, r.stderr)

    assert cli("add", "ann", "--chain", "Wanda", "--role", "operator").returncode == 0
    pwf = env.write("pw.txt", "from a file\n", mode=0o600)
    assert cli("add", "bob", "--site", SITE, "--password-file", str(pwf)).returncode == 0
    r = cli("add", "ann")
    assert r.returncode == 1 and "already exists" in r.stderr, r.stderr
    r = cli("list", stdin="")
    assert r.returncode == 0, r.stderr
    assert "ann\toperator\tchain:Wanda\tenabled" in r.stdout, r.stdout
    assert f"bob\tviewer\tsite:{SITE}\tenabled" in r.stdout, r.stdout
    assert "$scrypt" not in r.stdout and "pw-1" not in r.stdout

    s, j, _, hdrs = _login(coll, "bob", "from a file")
    assert s == 200 and j["data"]["scope"] == {"kind": "site", "value": SITE}, j
    bob = _cookie(hdrs)
    s, j, _, hdrs = _login(coll, "ann", "pw-1")
    assert s == 200, j
    ann = _cookie(hdrs)

    # passwd ends the sessions and changes the password
    assert cli("passwd", "bob", stdin="new pw\n").returncode == 0
    assert _get(coll, "/api/v1/me", cookie=bob)[0] == 401
    assert _login(coll, "bob", "from a file")[0] == 401
    assert _login(coll, "bob", "new pw")[0] == 200
    r = cli("passwd", "nobody", stdin="x\n")
    assert r.returncode == 1 and "no viewer named nobody" in r.stderr, r.stderr

    # remove deletes the viewer and its sessions
    assert _get(coll, "/api/v1/me", cookie=ann)[0] == 200
    assert cli("remove", "ann", stdin="").returncode == 0
    assert _get(coll, "/api/v1/me", cookie=ann)[0] == 401
    assert _login(coll, "ann", "pw-1")[0] == 401
    assert cli("remove", "ann", stdin="").returncode == 1
    assert "ann\t" not in cli("list", stdin="").stdout


def _login_from(base_url, source, user, password="wrong", xff=None):
    """POST /api/v1/login to base_url from the loopback address source (every 127.x.y.z is
    this machine: each stands for another client), with an X-Forwarded-For header of its own
    when xff is given. Returns the status."""
    u = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60 if harness.ASAN else 30,
                                      source_address=(source, 0))
    h = {"Content-Type": "application/json"}
    if xff:
        h["X-Forwarded-For"] = xff
    try:
        conn.request("POST", "/api/v1/login", body=json.dumps({"user": user,
                                                               "password": password}),
                     headers=h)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def _lock_address(base_url, source, prefix, xff=None, done=0):
    """Four failed logins (done of them made already) of different user names from source:
    its address is locked (login_max_failures 1, addresses 4x); another user name is then
    refused with 429."""
    for i in range(4 - done):
        x = xff(i) if callable(xff) else xff
        s = _login_from(base_url, source, f"{prefix}{i}", xff=x)
        assert s == 401, (source, i, x, s)
    x = xff(4) if callable(xff) else xff
    s = _login_from(base_url, source, f"{prefix}4", xff=x)
    assert s == 429, (source, x, s)


def test_throttling_behind_nginx_per_forwarded_client(env):
    """nginx (on 127.0.0.1, trusted) sets X-Forwarded-For with $proxy_add_x_forwarded_for:
    clients at 127.0.0.2 and 127.0.0.3 are throttled separately; a header a client forges,
    through nginx or straight to the collector, is ignored; without trusted_proxies every
    client is nginx and one client's failures lock out the other."""
    extra = {"collector": {"trusted_proxies": "127.0.0.1, ::1"},
             "access": {"login_max_failures": 1, "lockout": "5m"}}
    coll = harness.collector(env, extra=extra)
    harness.viewer_add(env, coll.ini, "vera", "vera-pw-1")
    ng = harness.nginx(env, [coll])
    A, B, C, D = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"

    # client A locks its own address through nginx ...
    _lock_address(ng.base_url, A, "a")
    # ... and client B, through the same nginx, is not affected
    assert _login_from(ng.base_url, B, "b0") == 401
    assert _login_from(ng.base_url, B, "vera", "vera-pw-1") == 200
    # C forges A's address through nginx: nginx appends C's own, the right-most is believed
    assert _login_from(ng.base_url, C, "c0", xff=A) == 401
    # D forges A's address straight to the collector (D is no trusted proxy): ignored ...
    assert _login_from(coll.base_url, D, "d0", xff=A) == 401
    # ... and a new address in every request does not dodge D's own lock
    _lock_address(coll.base_url, D, "e", xff=lambda i: f"198.51.100.{i + 1}", done=1)
    assert _login_from(ng.base_url, B, "b1") == 401
    # a trusted peer sending a header that cannot be read counts as itself, and is counted
    assert _login_from(coll.base_url, "127.0.0.1", "p0", xff="203.0.113.5, bogus") == 401
    assert coll.metric("cinemon_http_forwarded_for_invalid_total") == 1
    log = coll.proc.stderr()
    assert f"failed login of a0 from {A}" in log, harness._tail(log)
    assert f"login of a4 from {A} refused" in log, harness._tail(log)
    assert "cannot be read" in log

    # the same without trusted_proxies: every login comes from nginx's address
    assert coll.proc.stop() is None
    harness.write_collector_ini(env, coll.port, extra={"access": extra["access"]})
    coll.start(30)
    harness.wait_until(lambda: harness.http_get(ng.url("/healthz"), timeout=2)[0] == 200, 20,
                       0.2, "nginx to reach the restarted collector")
    _lock_address(ng.base_url, A, "a")
    assert _login_from(ng.base_url, B, "b0") == 429
    assert "failed login of a0 from 127.0.0.1" in coll.proc.stderr()

"""Bad input never crashes and is named precisely.

Agent: --check-config on broken INI files (exit 2, "agent.ini:LINE: ...") and on a profile
with an unknown key (error names the JSON path). Collector: malformed, foreign, oversized
and compressed-bomb ingest requests get 400/401/403/413 - and after each one the same
process still answers /healthz and still accepts a valid batch.
"""

import itertools
import json
import time

import harness

# ---------------------------------------------------------------- agent --check-config


def _device(port=16100):
    return harness.device("hall1/projector", port, "public", kind="projector",
                          profile="christie-cp-series2")


def _ini_lines(env, **kw):
    ini = harness.write_agent_ini(env, [_device()], **kw)
    return ini, ini.read_text().splitlines()


def _insert(ini, lines, after_prefix, new_line):
    """Insert new_line after the first line starting with after_prefix; returns its number."""
    idx = next(i for i, ln in enumerate(lines) if ln.startswith(after_prefix)) + 1
    lines = lines[:idx] + [new_line] + lines[idx:]
    ini.write_text("\n".join(lines) + "\n")
    return idx + 1


def _assert_config_error(r, where, also=()):
    assert not harness.sanitizer_problem(r.stderr), r.stderr[-4000:]
    assert r.returncode == 2, f"--check-config exit {r.returncode}, want 2; stderr:\n{r.stderr}"
    assert where in r.stderr, f"stderr does not name {where!r}:\n{r.stderr}"
    for s in also:
        assert s in r.stderr, f"stderr does not mention {s!r}:\n{r.stderr}"


def test_check_config_accepts_a_good_file(env):
    harness.load_profile("christie-cp-series2")
    ini, _ = _ini_lines(env)
    r = harness.check_config(env, ini)
    assert not harness.sanitizer_problem(r.stderr), r.stderr[-4000:]
    assert r.returncode == 0, f"--check-config on a good file: exit {r.returncode}\n{r.stderr}"


def test_check_config_malformed_line(env):
    ini, lines = _ini_lines(env)
    n = _insert(ini, lines, "id = ", "this line has no equals sign")
    _assert_config_error(harness.check_config(env, ini), f"agent.ini:{n}")


def test_check_config_unknown_key(env):
    ini, lines = _ini_lines(env)
    n = _insert(ini, lines, "site = ", "bogus_key = 1")
    _assert_config_error(harness.check_config(env, ini), f"agent.ini:{n}", ("bogus_key",))


def test_check_config_unknown_device_key(env):
    ini, lines = _ini_lines(env)
    n = _insert(ini, lines, "[device ", "colour = blue")
    _assert_config_error(harness.check_config(env, ini), f"agent.ini:{n}", ("colour",))


def test_check_config_out_of_range_port(env):
    ini, lines = _ini_lines(env)
    n = next(i for i, ln in enumerate(lines) if ln.startswith("port = ")) + 1
    lines[n - 1] = "port = 70000"
    ini.write_text("\n".join(lines) + "\n")
    _assert_config_error(harness.check_config(env, ini), f"agent.ini:{n}")


def test_check_config_unknown_profile_key(env):
    prof = harness.load_profile("christie-cp-series2")
    assert prof.get("scalars"), "christie-cp-series2 has no scalars[] to break"
    prof["scalars"][0]["bogus"] = 1
    pdir = env.path("profiles")
    pdir.mkdir()
    (pdir / "christie-cp-series2.json").write_text(json.dumps(prof, indent=2))
    ini, _ = _ini_lines(env, profiles_dir=pdir)
    r = harness.check_config(env, ini)
    assert not harness.sanitizer_problem(r.stderr), r.stderr[-4000:]
    assert r.returncode != 0 and r.returncode > 0, \
        f"--check-config with a bad profile: exit {r.returncode}; stderr:\n{r.stderr}"
    assert "$.scalars[0].bogus" in r.stderr, f"error does not name the JSON path:\n{r.stderr}"
    assert "christie-cp-series2.json" in r.stderr, f"error does not name the file:\n{r.stderr}"


# ---------------------------------------------------------------- collector ingest

MAX_BODY = 65536
A, SITE_A = "agent-a", "site-a"
B, SITE_B = "agent-b", "site-b"


class Ingest:
    pass


def _start_collector(env):
    st = Ingest()
    st.coll = harness.collector(env, tokens=[(A, SITE_A), (B, SITE_B)],
                                extra={"collector": {"max_body_bytes": MAX_BODY}})
    st.tok_a = st.coll.tokens[(A, SITE_A)]
    st.tok_b = st.coll.tokens[(B, SITE_B)]
    st.seq = itertools.count(1)
    return st


def ingest():
    return harness.module_cache("collector", _start_collector)


def _still_serving(st, after):
    assert st.coll.proc.alive(), f"collector died after {after}:\n" + \
        harness._tail(st.coll.proc.stderr())
    s, _ = st.coll.get("/healthz")
    assert s == 200, f"/healthz {s} after {after}"
    seq = next(st.seq)
    s, j = st.coll.ingest(harness.make_batch(A, SITE_A, seq, value=float(seq)), st.tok_a)
    assert s == 200 and j == {"ack": seq}, \
        f"a valid batch after {after}: status {s}, body {j} (want 200 {{'ack': {seq}}})"


def test_ingest_valid_batch_and_duplicate():
    st = ingest()
    seq = next(st.seq)
    b = harness.make_batch(A, SITE_A, seq)
    s, j = st.coll.ingest(b, st.tok_a)
    assert (s, j) == (200, {"ack": seq}), f"valid batch: {s} {j}"
    s, j = st.coll.ingest(b, st.tok_a)
    assert (s, j) == (200, {"ack": seq, "duplicate": True}), f"the same batch again: {s} {j}"
    _still_serving(st, "a duplicate batch")


def test_ingest_wrong_type_deep_inside():
    st = ingest()
    b = harness.make_batch(A, SITE_A, 10**9, nseries=2)
    b["series"][1]["points"][0][1] = "12.5"
    s, j = st.coll.ingest(b, st.tok_a)
    assert s == 400, f"status {s}, body {j}"
    assert isinstance(j, dict) and j.get("error"), f"400 without an error text: {j}"
    assert j.get("at") == "series[1].points[0][1]", f"at = {j.get('at')!r}, body {j}"
    _still_serving(st, "a wrong type deep inside")


def test_ingest_not_json():
    st = ingest()
    for body in (b"this is not json", b"", b'{"v": 1, "agent": ', b"[" * 60000):
        s, j = st.coll.ingest(body, st.tok_a, headers={"Content-Type": "application/json"})
        assert s == 400, f"body {body[:30]!r}...: status {s}, {j}"
        assert isinstance(j, dict) and "error" in j, f"body {body[:30]!r}: no error json: {j}"
        _still_serving(st, f"body {body[:30]!r}")


def test_ingest_wrong_token():
    st = ingest()
    b = harness.make_batch(A, SITE_A, 10**9)
    s, j = st.coll.ingest(b, "not-a-token-" + "x" * 20)
    assert s == 401, f"wrong token: status {s}, {j}"
    s, j = harness.http_post(st.coll.base_url + "/api/v1/ingest", b)
    assert s == 401, f"no Authorization header: status {s}, {j}"
    _still_serving(st, "a wrong token")


def test_ingest_foreign_site():
    st = ingest()
    b = harness.make_batch(A, SITE_B, 10**9)
    s, j = st.coll.ingest(b, st.tok_a)
    assert s == 403, f"agent A's token writing site B: status {s}, {j}"
    b = harness.make_batch(B, SITE_B, 10**9)
    s, j = st.coll.ingest(b, st.tok_a)
    assert s == 403, f"agent A's token posing as agent B: status {s}, {j}"
    _still_serving(st, "a foreign site")


def test_ingest_oversized_body():
    st = ingest()
    b = harness.make_batch(A, SITE_A, 10**9, nseries=2000)
    raw = json.dumps(b).encode()
    assert len(raw) > MAX_BODY * 2
    s, j = st.coll.ingest(raw, st.tok_a, headers={"Content-Type": "application/json"})
    assert s == 413, f"{len(raw)} bytes > max_body_bytes {MAX_BODY}: status {s}, {j}"
    _still_serving(st, "an oversized body")


def test_ingest_gzip_bomb():
    st = ingest()
    bomb = harness.gzip_bytes(b'{"v": 1, "pad": "' + b" " * (32 << 20) + b'"}')
    assert len(bomb) < MAX_BODY, len(bomb)
    t0 = time.monotonic()
    s, j = st.coll.ingest(bomb, st.tok_a, headers={"Content-Type": "application/json",
                                                   "Content-Encoding": "gzip"})
    assert s == 413, f"gzip bomb ({len(bomb)} bytes → 32 MiB): status {s}, {j}"
    assert time.monotonic() - t0 < 10, "the bomb took too long to refuse"
    _still_serving(st, "a gzip bomb")


def test_ingest_gzip_valid():
    st = ingest()
    seq = next(st.seq)
    body = harness.gzip_bytes(json.dumps(harness.make_batch(A, SITE_A, seq)))
    s, j = st.coll.ingest(body, st.tok_a, headers={"Content-Type": "application/json",
                                                   "Content-Encoding": "gzip"})
    assert (s, j) == (200, {"ack": seq}), f"gzip batch: {s} {j}"
    s, j = st.coll.ingest(b"\x1f\x8b\x08\x00garbage", st.tok_a,
                          headers={"Content-Encoding": "gzip"})
    assert s == 400, f"corrupt gzip: status {s}, {j}"
    _still_serving(st, "gzip bodies")

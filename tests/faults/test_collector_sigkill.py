"""Scenario 3: the collector is killed with SIGKILL during ingest, 10 times, and started
again on the same database each time: no batch stored twice, none lost."""

import time

import faultlib

KILLS = 10


def test_collector_killed_10_times(env):
    rng, seed = faultlib.seed_rng("collector-sigkill")
    # uploads every 200 ms so that a kill often lands while a request or a commit is running
    st = faultlib.Stack(env, interval="200ms", upload_interval="200ms")
    st.start_collector()
    st.start_agent()
    st.wait_stored(1, what="the first batch to be stored")
    moments = []
    for i in range(KILLS):
        before = st.last_seq()
        st.wait_stored(before + 1, timeout=20,
                       what=f"ingest to go on before kill {i + 1} (seed {seed})")
        t = rng.uniform(0.0, 0.5)
        time.sleep(t)
        st.kill_collector()
        down = rng.uniform(0.0, 0.8)
        time.sleep(down)
        moments.append((round(t, 2), round(down, 2)))
        st.check_agent_alive(f"after collector kill {i + 1}")
        st.start_collector()
    base = st.ledger_max()
    st.wait_stored(base, what=f"the backlog up to {base} after {KILLS} kills (seed {seed})")
    st.drain()
    try:
        st.verify()
    except AssertionError as e:
        raise AssertionError(f"{e}\n  (seed {seed}, kill/down moments {moments})") from None

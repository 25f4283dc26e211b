"""Scenario 2: the agent is killed with SIGKILL at random moments, 20 times in a row, while
the collector is up; each time it is started again on the same state, spool and ledger. At
the end it is stopped with SIGTERM: every ledger seq is stored exactly once and the samples
add up."""

import time

import faultlib

KILLS = 20


def test_agent_killed_20_times(env):
    rng, seed = faultlib.seed_rng("agent-sigkill")
    st = faultlib.Stack(env)
    st.start_collector()
    moments = []
    for i in range(KILLS):
        st.start_agent()
        # a few kills land during start-up and spool recovery, most while polling/uploading
        t = rng.uniform(0.0, 0.15) if i % 5 == 0 else rng.uniform(0.2, 1.2)
        time.sleep(t * faultlib.slow())
        st.kill_agent()
        moments.append(round(t, 2))
    st.start_agent()
    base = st.ledger_max()
    st.wait_ledger(3, what=f"polling after {KILLS} kills (seed {seed}, kill moments {moments})")
    st.wait_stored(base, what=f"records spooled before the last kill (up to {base}) to be "
                              f"stored (seed {seed})")
    st.drain()
    try:
        st.verify()
    except AssertionError as e:
        raise AssertionError(f"{e}\n  (seed {seed}, kill moments {moments})") from None

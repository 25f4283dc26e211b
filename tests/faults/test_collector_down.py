"""Scenario 1: the collector is stopped for several poll intervals while the agent keeps
polling, then started again on the same database: every sample arrives, in order (stored seq
ranges ascending in commit order), none twice."""

import time

import faultlib


def test_collector_stopped_and_started(env):
    st = faultlib.Stack(env)
    st.start_collector()
    st.start_agent()
    st.wait_stored(3, what="the first batches to be stored")
    st.stop_collector()
    down_at = st.ledger_max()
    # several poll intervals (300 ms) of records spooled while nobody takes them
    time.sleep(2.0)
    st.wait_ledger(10, since=down_at, what="records spooled while the collector is down")
    st.check_agent_alive("while the collector was down")
    st.start_collector()
    up_at = st.ledger_max()
    st.wait_stored(up_at, what=f"the spooled backlog (up to seq {up_at}) after the restart")
    st.wait_ledger(3, what="polling after the collector came back")
    st.drain()
    st.verify()

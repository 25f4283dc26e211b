"""Scenario 4: the collector answers 500/503/429 (Retry-After: 1) at random, through a
fault-injecting proxy, including the nasty case: the proxy forwards a batch, the collector
stores it, and the agent is told 503 anyway, so it sends again a batch already stored.
Counts must still be exact."""

import time

import faultlib

FAULT_SECONDS = 15


def test_injected_http_errors(env):
    rng, seed = faultlib.seed_rng("http-errors")
    st = faultlib.Stack(env)
    proxy = faultlib.FaultProxy(st.base_url, rng, p_error=0.3, p_after=0.2)
    try:
        st.retarget_agent(proxy.url)
        st.start_collector()
        st.start_agent()
        deadline = time.monotonic() + FAULT_SECONDS * faultlib.slow()
        while time.monotonic() < deadline:
            st.check_agent_alive("while the collector's answers were failing")
            time.sleep(0.5)
        stats = dict(proxy.stats)
        assert stats["after_stored"] >= 1 and stats["errors"] >= 1, \
            f"the faults were not exercised: {stats} (seed {seed})"
        proxy.faults_off()
        base = st.ledger_max()
        st.wait_stored(base, what=f"the backlog up to {base} once the faults stopped "
                                  f"(proxy {stats}, seed {seed})")
        st.drain()
        try:
            st.verify()
        except AssertionError as e:
            raise AssertionError(f"{e}\n  (proxy {stats}, seed {seed})") from None
    finally:
        proxy.close()

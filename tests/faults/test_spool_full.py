"""Scenario 5: the agent's spool on a tiny filesystem (a 512 KiB tmpfs) while the collector
is down, so the spool fills. The agent keeps running and polling and drops the oldest
records with a gap record; once the collector is up, the gaps it reports for the agent
exactly cover the ledger seqs that never arrived (every ledger seq is stored or inside a
reported gap, never both) and data flows again."""

import faultlib
from faultlib import wait_until


def _fill(env, spool, need_drop):
    fs = faultlib.Tmpfs(env.path("spoolfs"), "512k")
    with fs:
        st = None
        try:
            st = faultlib.Stack(env, interval="200ms", spool_dir=fs.path, spool=spool)
            st.start_agent()  # the collector is down: nothing is acknowledged
            first = st.wait_ledger(1, since=0, what="the first record")

            def full():
                st.check_agent_alive("while the spool filled")
                segs = faultlib.segments(fs.path)
                oldest = int(segs[0].stem[4:]) if segs else 0
                if need_drop:
                    return oldest > first
                return fs.free_bytes() < 96 * 1024
            wait_until(full, 90 * faultlib.slow(), 0.1,
                       "the spool to fill the 512 KiB filesystem" +
                       (" and drop its oldest segment" if need_drop else "") +
                       f" (free {fs.free_bytes()} bytes, ledger max {st.ledger_max()})")
            # still polling and spooling on a full disk
            st.wait_ledger(10, what="records spooled on the full filesystem")
            st.check_agent_alive("on the full filesystem")
            st.start_collector()
            base = st.ledger_max()
            st.wait_stored(base, timeout=60,
                           what=f"the spool's backlog up to {base} once the collector is up")
            st.wait_ledger(3, what="polling after the backlog went out")
            st.drain()
            return st
        finally:
            if st is not None and st.agent is not None and st.agent.alive():
                st.kill_agent()  # the filesystem must not be busy when it is unmounted


def test_spool_full_drops_oldest_with_gap(env):
    st = _fill(env, {"segment_bytes": "32k", "max_bytes": "4M", "min_free_bytes": "128k"},
               need_drop=True)
    gaps = st.gaps()
    assert gaps, "the spool dropped its oldest segment but the collector has no gap for it"
    st.verify(gaps_allowed=True, gap_reasons={"spool_full", "disk_error"})


def test_spool_enospc_keeps_running(env):
    # min_free_bytes = 0 and max_bytes above the filesystem's size: writes hit ENOSPC
    st = _fill(env, {"segment_bytes": "64k", "max_bytes": "1M", "min_free_bytes": "0"},
               need_drop=False)
    st.verify(gaps_allowed=True, gap_reasons={"spool_full", "disk_error"})

"""Scenario 6: a damaged spool. With the agent stopped, one payload byte of a record in the
middle of the oldest segment is flipped, or a segment is cut mid-record. The agent starts
anyway, reports the lost seqs to the collector (reason corrupt), and everything else
arrives."""

import os

import faultlib
from faultlib import wait_until


def _spooled(env, nsegs=3):
    """A stack whose agent spooled >= nsegs+1 segments with the collector down, then stopped."""
    st = faultlib.Stack(env, interval="200ms", spool={"segment_bytes": "16k"})
    st.start_agent()

    def enough():
        st.check_agent_alive("while spooling")
        segs = faultlib.segments(st.spool_dir)
        return len(segs) > nsegs and len(faultlib.read_segment(segs[0])) >= 3
    wait_until(enough, 60 * faultlib.slow(), 0.1,
               f"{nsegs + 1} spool segments with >= 3 records in the oldest "
               f"({st.spool_dir})")
    st.stop_agent()
    return st


def _restart_and_check(st, lost, why):
    st.start_collector()
    st.start_agent()
    before = st.ledger_max()
    st.wait_ledger(3, what=f"the agent to start and poll on a spool with {why}")
    st.wait_stored(before, what=f"the records spooled before the damage (up to {before})")
    st.drain()
    gaps = st.gaps()
    if lost:
        assert gaps, f"{why}: seqs {faultlib.ranges_text(lost)} were destroyed but the " \
                     f"collector reports no gap"
    st.verify(gaps_allowed=True, gap_reasons={"corrupt"},
              exactly_lost=lost if lost is not None else None)


def _batch_seqs(st, recs):
    led = st.ledger()
    return {r.seq for r in recs if r.type in faultlib.BATCH_TYPES and r.seq in led}


def test_flipped_byte_in_oldest_segment(env):
    st = _spooled(env)
    segs = faultlib.segments(st.spool_dir)
    recs = faultlib.read_segment(segs[0])
    r = recs[len(recs) // 2]
    assert r.length > 0, f"{r}: empty payload"
    with open(r.path, "r+b") as f:
        f.seek(r.payload_offset + r.length // 2)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0x20]))
    _restart_and_check(st, _batch_seqs(st, [r]), f"a flipped byte in {r}")


def test_middle_segment_cut_mid_record(env):
    st = _spooled(env)
    segs = faultlib.segments(st.spool_dir)
    seg = segs[1]  # neither the oldest nor the newest
    recs = faultlib.read_segment(seg)
    k = len(recs) // 2
    cut = recs[k].payload_offset + recs[k].length // 2
    os.truncate(seg, cut)
    _restart_and_check(st, _batch_seqs(st, recs[k:]),
                       f"{seg.name} cut at byte {cut} (inside {recs[k]})")


def test_newest_segment_cut_mid_record(env):
    st = _spooled(env)
    seg = faultlib.segments(st.spool_dir)[-1]
    recs = faultlib.read_segment(seg)
    assert recs, f"{seg}: no records"
    r = recs[-1]
    cut = r.payload_offset + r.length // 2
    os.truncate(seg, cut)
    # A torn tail may be cut off silently (its seq is then used again and the ledger's last
    # line for it wins) or reported as a gap: either way every ledger seq is accounted for.
    _restart_and_check(st, None, f"{seg.name} cut at byte {cut} (inside {r})")

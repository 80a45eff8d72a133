"""Time synchronisation, latest-frame worker and throttled reports (no DDS needed)."""
import threading
import time

import pytest

from depth_nodes.pipelines.worker import LatestFrameWorker
from depth_nodes.ros.sync import TimeSynchronizer
from depth_nodes.ros.throttle import ThrottledReporter

MS = 1_000_000


def collect():
    out = []
    return out, lambda *msgs: out.append(msgs)


def test_approximate_sync_matches_within_slop_only():
    out, cb = collect()
    sync = TimeSynchronizer(2, 5, 10 * MS, cb)
    sync.add(0, "L0", 0)
    sync.add(1, "R0", 8 * MS)  # within 10 ms
    sync.add(0, "L1", 100 * MS)
    sync.add(1, "R1", 115 * MS)  # 15 ms apart: no match
    assert out == [("L0", "R0")]
    sync.add(1, "R1b", 103 * MS)
    assert out[-1] == ("L1", "R1b")
    assert sync.pending() == [0, 1]  # R1 (115 ms) is newer than the set and still waits


def test_sets_come_out_in_time_order_and_stale_messages_are_dropped():
    out, cb = collect()
    sync = TimeSynchronizer(2, 10, 2 * MS, cb)
    sync.add(0, "L1", 10 * MS)
    sync.add(0, "L2", 20 * MS)
    sync.add(1, "R2", 20 * MS)  # matches L2; L1 is stale now
    assert out == [("L2", "R2")]
    sync.add(1, "R1", 10 * MS)  # a late partner of L1 cannot produce an older set
    assert out == [("L2", "R2")]
    assert sync.unmatched == [1, 0]


def test_exact_sync_requires_equal_stamps_and_counts_unmatched():
    out, cb = collect()
    sync = TimeSynchronizer(3, 2, None, cb)
    for k in range(4):
        sync.add(0, f"a{k}", k * 100)
        sync.add(1, f"b{k}", k * 100 + 1)  # never equal
        sync.add(2, f"c{k}", k * 100)
    assert out == []
    assert sync.unmatched == [2, 2, 2]  # queue of 2: the two oldest of each input fell out
    sync.add(1, "b3", 300)
    assert out == [("a3", "b3", "c3")]


def test_sync_picks_a_consistent_set_among_candidates():
    out, cb = collect()
    sync = TimeSynchronizer(3, 5, 10 * MS, cb)
    sync.add(1, "B-8", -8 * MS)
    sync.add(1, "B+6", 6 * MS)
    sync.add(2, "C+9", 9 * MS)
    sync.add(0, "A0", 0)  # nearest B is +6, and {0, 6, 9} spans 9 ms <= 10: ok
    assert out == [("A0", "B+6", "C+9")]


def test_sync_argument_checks():
    with pytest.raises(ValueError):
        TimeSynchronizer(1, 5, 0, print)
    with pytest.raises(ValueError):
        TimeSynchronizer(2, 0, 0, print)


def test_latest_frame_worker_drops_stale_inputs_and_survives_errors():
    release = threading.Event()
    seen, errors = [], []

    def process(item):
        if item == "boom":
            raise RuntimeError("bad frame")
        if item == 0:
            release.wait(5)
        seen.append(item)

    w = LatestFrameWorker(process, lambda exc, item: errors.append((str(exc), item)))
    w.submit(0)
    time.sleep(0.1)  # worker is now blocked on item 0
    for k in range(1, 6):
        w.submit(k)
    release.set()
    assert w.wait_idle(5)
    time.sleep(0.1)
    assert seen == [0, 5]  # 1..4 were replaced by newer inputs
    assert w.dropped == 4
    w.submit("boom")
    time.sleep(0.1)
    w.submit(6)
    assert w.wait_idle(5)
    time.sleep(0.1)
    assert errors == [("bad frame", "boom")] and seen[-1] == 6
    w.stop()


def test_throttled_reporter_per_kind_with_counts():
    now = [0.0]
    lines = []
    r = ThrottledReporter(lines.append, period_s=2.0, clock=lambda: now[0])
    assert r.report("a", "A1")
    assert not r.report("a", "A2")
    assert r.report("b", "B1")  # other kinds are not throttled by "a"
    now[0] = 2.5
    assert r.report("a", "A3")
    assert lines == ["A1", "B1", "A3 (1 more since last report)"]
    assert r.counts == {"a": 3, "b": 1}


def test_stop_gives_up_waiting_for_a_frame_that_does_not_finish():
    import threading

    from depth_nodes.pipelines.worker import LatestFrameWorker

    started, release = threading.Event(), threading.Event()
    worker = LatestFrameWorker(lambda item: (started.set(), release.wait(60.0)), lambda exc, item: None)
    worker.submit(1)
    assert started.wait(30.0)
    stopper = threading.Thread(target=worker.stop, kwargs={"timeout": 0.1})
    stopper.start()
    stopper.join(30.0)
    try:
        assert not stopper.is_alive() and not release.is_set()  # stop returned while the frame still runs
    finally:
        release.set()

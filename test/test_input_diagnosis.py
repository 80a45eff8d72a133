"""Input diagnosis (depth_nodes.ros.input_diagnosis) without DDS (issue 21): stamp offsets of both
signs, the tolerance, the reference input, message texts, and InputDiagnosis fed by fakes of the
graph and the subscriptions."""
import pytest
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from depth_nodes.ros.input_diagnosis import closest_offset_ns, diagnose
from test_qos_auto_and_diagnosis import MS, _FakeGraphNode, _FakeSubs, _st


@pytest.mark.parametrize("shift_ms", [-50, 50, -8, 8])
def test_stamp_offsets_keep_their_sign_and_both_signs_are_checked_against_the_tolerance(shift_ms):
    """A right camera stamped 50 ms early is as unsynchronised as one 50 ms late (and is reported
    with its sign); within the 10 ms tolerance either way the stamps agree."""
    base = [k * 100 * MS for k in range(1, 6)]
    moved = [t + shift_ms * MS for t in base]
    st = [_st("/l/img", 0.1, stamps=base), _st("/l/info", 0.1, stamps=base),
          _st("/r/img", 0.1, stamps=moved), _st("/r/info", 0.1, stamps=moved)]
    problems = dict(diagnose(st, [(0, 1), (2, 3)], 3.0, unmatched_new=3, tolerance_s=0.01))
    kind = "unsynchronised" if abs(shift_ms) > 10 else "incomplete_sets"
    assert problems.keys() == {kind}
    assert f"/r/img {shift_ms:+.1f} ms" in problems[kind] and f"/r/info {shift_ms:+.1f} ms" in problems[kind]
    assert "/l/info +0.0 ms" in problems[kind] and "tolerance 10.0 ms" in problems[kind]
    exact = dict(diagnose(st, [(0, 1), (2, 3)], 3.0, unmatched_new=3))  # exact sync: any offset is too much
    assert exact.keys() == {"unsynchronised"} and " ms (exact stamps required): fix" in exact["unsynchronised"]
    assert closest_offset_ns(base, moved) == shift_ms * MS and closest_offset_ns(moved, base) == -shift_ms * MS


def test_closest_offset_picks_the_nearest_pair_of_either_sign():
    assert closest_offset_ns([1_000, 2_000], [2_900, 1_040]) == 40
    assert closest_offset_ns([1_000, 2_000], [2_900, 960]) == -40
    assert closest_offset_ns([1_000], []) is None


class _Publisher:
    def __init__(self, qos):
        self.qos_profile = qos


def test_input_diagnosis_statuses_and_reports_from_the_graph_and_the_subscriptions():
    """Every field of the statuses comes from its source (graph, subscription, clock), the counts
    since the previous check, the tolerance in the report, and incompatible-QoS notes."""
    from depth_nodes.ros.input_diagnosis import InputDiagnosis

    reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE,
                          history=HistoryPolicy.KEEP_LAST)
    best = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE,
                      history=HistoryPolicy.KEEP_LAST)

    class Graph(_FakeGraphNode):
        def get_publishers_info_by_topic(self, topic):
            return [_Publisher(reliable), _Publisher(best)] if topic == "/in2" else [_Publisher(reliable)]

    now = [10.0]
    reports = []
    subs = _FakeSubs(4)
    subs.qos = [best, reliable, reliable]  # the fourth input has no recorded QoS
    subs.last_size = [None, (640, 480), None, None]
    diag = InputDiagnosis(Graph(), subs, [(2, 3), (0, 1)], 3.0, lambda k, m: reports.append((k, m)),
                          tolerance_s=0.02, clock=lambda: now[0])
    for k in range(3):
        for i in range(4):
            subs.deliver(i, k * 100 * MS + (-30 * MS if i < 2 else 0))
    st = diag.statuses()
    assert [s.topic for s in st] == ["/in0", "/in1", "/in2", "/in3"] and [s.publishers for s in st] == [1, 1, 2, 1]
    assert st[2].offered == "best_effort, volatile, keep_last 1; reliable, volatile, keep_last 5"
    assert [s.requested for s in st] == ["best_effort, volatile, keep_last 1", "reliable, volatile, keep_last 5",
                                         "reliable, volatile, keep_last 5", ""]
    assert st[1].size == (640, 480) and st[0].recent_stamps_ns == (-30 * MS, 70 * MS, 170 * MS)
    assert [s.received_new for s in st] == [3, 3, 3, 3] and all(0 <= s.age_s < 5 for s in st)
    subs.deliver(0, 270 * MS)
    assert [s.received_new for s in diag.statuses()] == [1, 0, 0, 0]  # since the previous look
    subs.unmatched = [2, 0, 1, 0]
    now[0] += 10.0
    problems = diag.check()  # 10 s later: no grace; the reference is the first pair's image, /in2
    assert [k for k, _ in problems] == ["unsynchronised"] and reports == problems
    msg = problems[0][1]
    assert "3 messages dropped" in msg and "relative to /in2" in msg and "/in0 -30.0 ms" in msg
    assert "/in3 +0.0 ms" in msg and "tolerance 20.0 ms" in msg
    assert diag.check() == [] and diag.last_problems == []  # no new drops
    diag.note_incompatible("incompatible_qos:in1", "in1 offers best effort")
    diag.note_incompatible("incompatible_qos:elsewhere", "not an input")
    assert reports[-2:] == [("incompatible_qos:in1", "in1 offers best effort"),
                            ("incompatible_qos:elsewhere", "not an input")]
    subs.last_received_monotonic[1] = None  # /in1 silent: its incompatibility is the problem named
    assert dict(diag.check()) == {"incompatible_qos:/in1": "in1 offers best effort"}
    diag.resubscribed()  # forgets it, and a new grace starts from the clock
    assert diag.check() == []
    now[0] += 10.0
    assert [k for k, _ in diag.check()] == ["no_camera_info:/in1"]  # no longer blamed on the QoS


def test_diagnose_without_pairs_compares_with_the_first_input():
    st = [_st("/a", 0.1, stamps=[0, 100 * MS]), _st("/b", 0.1, stamps=[40 * MS, 140 * MS])]
    problems = dict(diagnose(st, [], 3.0, unmatched_new=1, tolerance_s=0.01))
    assert "relative to /a: /b +40.0 ms" in problems["unsynchronised"]
    st = [_st("/a", 0.1, stamps=[0]), _st("/b", 0.1)]
    assert "relative to /a: /b ? (" in dict(diagnose(st, [], 3.0, unmatched_new=1))["unsynchronised"]


def test_diagnose_messages_name_sizes_and_remedies():
    st = [_st("/l/img", 4.5), _st("/l/info", 0.1), _st("/r/img", 0.1), _st("/r/info", 7.0, pubs=2,
                                                                          offered="best_effort, volatile")]
    problems = dict(diagnose(st, [(0, 1), (2, 3)], 3.0))
    lost = problems["images_lost:/l/img"]
    assert "(no image for 4.5 s) while its camera_info /l/info is" in lost and "camera_info says" not in lost
    assert "1 publisher(s) offering reliable, volatile:" in lost
    assert problems["no_camera_info:/r/info"] == ("images arrive but no /r/info for 3.0 s (2 publisher(s) offering "
                                                  "best_effort, volatile; images on /r/img): cannot compute depth "
                                                  "without calibration")
    st[0].requested = "best_effort, volatile"
    st[0].offered = "reliable, volatile; best_effort, volatile"  # a best-effort publisher among them
    assert "although the publishers are reliable" not in dict(diagnose(st, [(0, 1)], 3.0))["images_lost:/l/img"]


def test_exact_sync_tolerates_no_offset_and_the_tolerance_is_quoted_in_ms():
    base = [k * 100 * MS for k in range(1, 4)]
    st = [_st("/l/img", 0.1, stamps=base), _st("/l/info", 0.1, stamps=base),
          _st("/r/img", 0.1, stamps=[t + 1 for t in base]), _st("/r/info", 0.1, stamps=base)]
    assert dict(diagnose(st, [(0, 1), (2, 3)], 3.0, unmatched_new=2)).keys() == {"unsynchronised"}  # 1 ns off
    agree = dict(diagnose(st, [(0, 1), (2, 3)], 3.0, unmatched_new=2, tolerance_s=0.25))["incomplete_sets"]
    assert "(offsets relative to /l/img: /l/info +0.0 ms, /r/img +0.0 ms, /r/info +0.0 ms; tolerance 250.0 ms)" in agree
    assert agree.endswith("large images are likely lost or delayed in transport (see README, Large images and DDS), "
                          "or a driver skips frames on one camera")


def test_an_incompatible_publisher_whose_messages_arrive_anyway_is_not_reported():
    st = [_st("/l/img", 0.1), _st("/l/info", 0.1), _st("/r/img", 0.1), _st("/r/info", 0.1)]
    assert diagnose(st, [(0, 1), (2, 3)], 3.0, incompatible={0: "incompatible QoS on /l/img"}) == []


def test_size_estimate_in_megabytes_and_the_discovery_grace_ends_at_the_timeout():
    st = [_st("/img", None, size=(350, 1000)), _st("/info", 0.1)]
    msg = dict(diagnose(st, [(0, 1)], 3.0))["images_lost:/img"]
    assert "(camera_info says 350x1000: 1.1 MB per rgb8 image)" in msg  # 1 050 000 bytes
    assert diagnose(st, [(0, 1)], 3.0, elapsed_s=2.99) == []
    assert dict(diagnose(st, [(0, 1)], 3.0, elapsed_s=3.0)).keys() == {"images_lost:/img"}

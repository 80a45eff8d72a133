"""Input QoS ``auto``, the shared-memory set-up decision and the input diagnosis (issue 8, items 1-3).

The decisions are pure functions, tested on their own; :class:`PublisherQosFollower` is tested
against real publishers appearing on the ROS graph.
"""
from __future__ import annotations

import time

import pytest
import rclpy
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from depth_nodes.ros.input_diagnosis import TopicStatus, closest_offset_ns, diagnose
from depth_nodes.ros.qos_auto import PublisherQosFollower, choose_reliability, qos_summary
from depth_nodes.ros.transport import (AUTO_SHM_ENV, ASYNC_PUBLISH_ENV, PUBLICATION_MODE_ENV, setup_publication_mode,
                                      setup_shared_memory, shm_decision)

REL, BE = ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT


def test_choose_reliability_follows_the_publishers():
    assert choose_reliability([REL], BE) == REL
    assert choose_reliability([REL, REL], BE) == REL
    assert choose_reliability([REL, BE], REL) == BE  # a reliable request would not match the best-effort one
    assert choose_reliability([BE], REL) == BE
    assert choose_reliability([], REL) == REL and choose_reliability([], BE) == BE  # nobody: keep


def test_qos_summary():
    q = QoSProfile(depth=2, reliability=REL, durability=DurabilityPolicy.VOLATILE, history=HistoryPolicy.KEEP_LAST)
    assert qos_summary(q) == "reliable, volatile, keep_last 2"


@pytest.mark.parametrize("env, applies, why", [
    ({}, True, "default transports"),
    ({"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}, True, "default transports"),
    ({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}, False, "is not Fast DDS"),
    ({"FASTDDS_DEFAULT_PROFILES_FILE": "/my.xml"}, False, "FASTDDS_DEFAULT_PROFILES_FILE is set"),
    ({"FASTRTPS_DEFAULT_PROFILES_FILE": "/my.xml"}, False, "FASTRTPS_DEFAULT_PROFILES_FILE is set"),
    ({"RMW_FASTRTPS_USE_QOS_FROM_XML": "1"}, False, "RMW_FASTRTPS_USE_QOS_FROM_XML is set"),
    ({"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}, False, "FASTDDS_BUILTIN_TRANSPORTS is set"),
    ({AUTO_SHM_ENV: "0"}, False, f"{AUTO_SHM_ENV}=0"),
    ({AUTO_SHM_ENV: "1"}, True, "default transports"),
])
def test_shm_decision(env, applies, why):
    ok, reason = shm_decision(env)
    assert ok is applies and why in reason


def test_setup_points_fast_dds_at_the_packaged_profile_only_when_allowed(tmp_path):
    env: dict[str, str] = {}
    line = setup_shared_memory(env)
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"].endswith("config/fastdds_shm.xml")
    assert "FASTDDS_DEFAULT_PROFILES_FILE=" in line and f"{AUTO_SHM_ENV}=0" in line
    mine = {"FASTDDS_DEFAULT_PROFILES_FILE": str(tmp_path / "mine.xml")}
    line = setup_shared_memory(mine)
    assert mine == {"FASTDDS_DEFAULT_PROFILES_FILE": str(tmp_path / "mine.xml")} and "skipped" in line
    off = {AUTO_SHM_ENV: "0"}
    assert "skipped" in setup_shared_memory(off) and "FASTDDS_DEFAULT_PROFILES_FILE" not in off
    missing: dict[str, str] = {}
    assert "not found" in setup_shared_memory(missing, profile=tmp_path / "absent.xml") and not missing


@pytest.mark.parametrize("env, applies, why", [
    ({}, True, "asynchronous publishing"),
    ({"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}, True, "asynchronous publishing"),
    ({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}, False, "is not Fast DDS"),
    ({PUBLICATION_MODE_ENV: "SYNCHRONOUS"}, False, f"{PUBLICATION_MODE_ENV} is set"),
    ({"RMW_FASTRTPS_USE_QOS_FROM_XML": "1"}, False, "RMW_FASTRTPS_USE_QOS_FROM_XML is set"),
    ({ASYNC_PUBLISH_ENV: "off"}, False, f"{ASYNC_PUBLISH_ENV}=off"),
])
def test_asynchronous_publishing_only_when_the_user_did_not_choose(env, applies, why):
    before = dict(env)
    line = setup_publication_mode(env)
    assert why in line
    if applies:
        assert env == {**before, PUBLICATION_MODE_ENV: "ASYNCHRONOUS"} and f"{ASYNC_PUBLISH_ENV}=0" in line
    else:
        assert env == before and "left alone" in line


def test_closest_offset():
    left = [1_000, 2_000, 3_000]
    assert closest_offset_ns(left, [1_050, 2_050, 3_050]) == 50
    assert closest_offset_ns(left, [1_970, 2_970]) == -30
    assert closest_offset_ns([], [1]) is None


def _st(topic, age, pubs=1, stamps=(), size=None, offered="reliable, volatile"):
    return TopicStatus(topic, age, pubs, offered, size, stamps)


MS = 1_000_000


def test_diagnose_images_lost_in_transport():
    st = [_st("/l/img", None, offered="best_effort, volatile"), _st("/l/info", 0.1, size=(1920, 1080)),
          _st("/r/img", None), _st("/r/info", 0.1)]
    problems = dict(diagnose(st, [(0, 1), (2, 3)], 3.0, unmatched_new=10))
    msg = problems["images_lost:/l/img"]
    assert "no image has arrived" in msg and "while its camera_info /l/info is" in msg
    assert "1920x1080: 6.2 MB per rgb8 image" in msg and "fastdds_shm.xml" in msg and "input_qos:=auto" in msg
    assert "images_lost:/r/img" in problems
    assert "unsynchronised" not in problems  # camera_info dropped without partners is not the stamps' fault
    assert "although the publishers are reliable" not in msg


def test_diagnose_images_lost_because_this_node_subscribes_best_effort_to_a_reliable_publisher():
    st = [_st("/l/img", None), _st("/l/info", 0.1), _st("/r/img", 0.1), _st("/r/info", 0.1)]
    st[0].requested = "best_effort, volatile, keep_last 2"
    msg = dict(diagnose(st, [(0, 1), (2, 3)], 3.0))["images_lost:/l/img"]
    assert ("this node subscribes best_effort, volatile, keep_last 2 (input_qos) although the publishers are "
            "reliable: set input_qos:=auto (or reliable)") in msg


def test_diagnose_missing_camera_info():
    st = [_st("/l/img", 0.1), _st("/l/info", None, pubs=0), _st("/r/img", 0.1), _st("/r/info", 0.2)]
    problems = dict(diagnose(st, [(0, 1), (2, 3)], 3.0, unmatched_new=4))
    assert problems.keys() == {"no_camera_info:/l/info"}
    assert "images arrive but no /l/info for 3.0 s (no publisher on it" in problems["no_camera_info:/l/info"]


def test_diagnose_unpaired_stamps_gives_the_offsets():
    base = [k * 100 * MS for k in range(5)]
    st = [_st("/l/img", 0.1, stamps=base), _st("/l/info", 0.1, stamps=base),
          _st("/r/img", 0.1, stamps=[t + 50 * MS for t in base]), _st("/r/info", 0.1, stamps=[t + 50 * MS for t in base])]
    problems = dict(diagnose(st, [(0, 1), (2, 3)], 3.0, unmatched_new=6, tolerance_s=0.01))
    msg = problems["unsynchronised"]
    assert "6 messages dropped" in msg and "/r/img +50.0 ms" in msg and "/l/info +0.0 ms" in msg
    assert "tolerance 10.0 ms" in msg
    assert diagnose(st, [(0, 1), (2, 3)], 3.0, unmatched_new=0) == []  # nothing dropped: nothing to say


def test_diagnose_dropped_partners_with_agreeing_stamps_blames_missing_messages():
    base = [k * 100 * MS for k in range(5)]
    st = [_st("/l/img", 0.1, stamps=base[::2]), _st("/l/info", 0.1, stamps=base), _st("/r/img", 0.1, stamps=base),
          _st("/r/info", 0.1, stamps=base)]
    for s, n in zip(st, (2, 10, 9, 10)):
        s.received_new = n
    problems = dict(diagnose(st, [(0, 1), (2, 3)], 3.0, unmatched_new=8, tolerance_s=0.01))
    assert problems.keys() == {"incomplete_sets"}
    msg = problems["incomplete_sets"]
    assert "although the stamps agree" in msg and "/r/img +0.0 ms" in msg
    assert "/l/img 2, /l/info 10, /r/img 9, /r/info 10" in msg and "lost or delayed in transport" in msg


def test_diagnose_incompatible_qos_is_not_blamed_on_transport():
    st = [_st("/l/img", None), _st("/l/info", 0.1), _st("/r/img", None), _st("/r/info", 0.1)]
    problems = dict(diagnose(st, [(0, 1), (2, 3)], 3.0, incompatible={0: "incompatible QoS on /l/img ..."}))
    assert problems["incompatible_qos:/l/img"] == "incompatible QoS on /l/img ..."
    assert "images_lost:/l/img" not in problems and "images_lost:/r/img" in problems


def test_diagnose_waits_for_discovery():
    st = [_st("/l/img", None), _st("/l/info", 0.1), _st("/r/img", None), _st("/r/info", 0.1)]
    assert diagnose(st, [(0, 1), (2, 3)], 3.0, elapsed_s=1.0) == []


def test_follower_tracks_publishers_on_the_graph():
    if not rclpy.ok():
        rclpy.init()
    node = rclpy.create_node("qos_follower_test")
    peer = rclpy.create_node("qos_follower_peer")
    changes, lines = [], []
    try:
        follower = PublisherQosFollower(node, ["a", "b"], 3, on_change=changes.append, log=lines.append)
        assert [p.reliability for p in follower.profiles] == [BE, BE]
        assert "no publishers yet" in lines[0]

        def settle(expected):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                follower.update()
                if [p.reliability for p in follower.profiles] == expected:
                    return
                time.sleep(0.05)
            raise AssertionError(f"{[p.reliability for p in follower.profiles]} != {expected}: {lines}")

        peer.create_publisher(String, "a", QoSProfile(depth=5, reliability=REL))
        settle([REL, BE])
        assert changes and [p.reliability for p in changes[-1]] == [REL, BE] and changes[-1][0].depth == 3
        assert "input QoS auto: a -> reliable (publishers: 1 reliable)" in lines
        peer.create_publisher(String, "a", QoSProfile(depth=5, reliability=BE))  # a second, best-effort one
        settle([BE, BE])
        assert "input QoS auto: a -> best_effort (publishers: 1 reliable, 1 best_effort)" in lines
        n = len(changes)
        follower.update()
        assert len(changes) == n  # no change, no resubscription
    finally:
        peer.destroy_node()
        node.destroy_node()


def test_no_set_up_without_room_in_dev_shm(monkeypatch):
    import depth_nodes.ros.transport as transport

    monkeypatch.setattr(transport, "shm_free_bytes", lambda: 60 * 2**20)  # Docker's default /dev/shm
    env: dict[str, str] = {}
    line = setup_shared_memory(env)
    assert not env and "only 60 MB free in /dev/shm" in line and "--shm-size" in line


def test_subscribe_synchronized_per_input_qos_and_resubscribe():
    """Per-input profiles, and resubscribing keeps the synchroniser: a set still comes out."""
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import CameraInfo

    from depth_nodes.ros.sync import subscribe_synchronized

    if not rclpy.ok():
        rclpy.init()
    node = rclpy.create_node("resubscribe_test")
    peer = rclpy.create_node("resubscribe_peer")
    sets = []
    try:
        be = QoSProfile(depth=2, reliability=BE)
        rel = QoSProfile(depth=2, reliability=REL)
        subs = subscribe_synchronized(node, [(CameraInfo, "a"), (CameraInfo, "b")], [be, rel],
                                      lambda *m: sets.append(m), queue_size=5, slop_s=None,
                                      prefer_message_filters=False)
        assert [q.reliability for q in subs.qos] == [BE, REL] and len(subs.handles) == 2
        subs.resubscribe([rel, rel])
        assert [q.reliability for q in subs.qos] == [REL, REL]
        assert len(subs.handles) == 2 and len(list(node.subscriptions)) == 2  # old ones gone
        pubs = [peer.create_publisher(CameraInfo, t, QoSProfile(depth=5, reliability=REL)) for t in ("a", "b")]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not sets:
            for k, pub in enumerate(pubs):
                msg = CameraInfo()
                msg.header.stamp = Time(sec=7, nanosec=5)
                pub.publish(msg)
            rclpy.spin_once(node, timeout_sec=0.05)
        assert sets and subs.last_stamp_ns[0] == 7_000_000_005 and subs.received[0] >= 1
    finally:
        peer.destroy_node()
        node.destroy_node()


class _FakeGraphNode:
    """What :class:`InputDiagnosis` asks of a node: resolved names and the publishers on them."""

    def resolve_topic_name(self, topic):
        return "/" + topic

    def get_publishers_info_by_topic(self, topic):
        return []


class _FakeSubs:
    def __init__(self, n):
        self.topics = [f"in{i}" for i in range(n)]
        self.received = [0] * n
        self.last_received_monotonic = [None] * n
        self.recent_stamps_ns = [[] for _ in range(n)]
        self.last_size = [None] * n
        self.qos = []
        self.unmatched = [0] * n

    def deliver(self, i, stamp_ns):
        self.received[i] += 1
        self.last_received_monotonic[i] = time.monotonic()
        self.recent_stamps_ns[i].append(stamp_ns)


def test_drops_soon_after_start_up_are_reported_once_every_input_has_arrived():
    """Unpaired messages one second after start-up (within camera_info_timeout_s) are not
    swallowed by the discovery grace once every input has delivered a message."""
    from depth_nodes.ros.input_diagnosis import InputDiagnosis

    now = [100.0]
    reports = []
    subs = _FakeSubs(4)
    diag = InputDiagnosis(_FakeGraphNode(), subs, [(0, 1), (2, 3)], 3.0, lambda k, m: reports.append(k),
                          tolerance_s=0.01, clock=lambda: now[0])
    assert diag.check() == []  # nothing has arrived: still discovering
    now[0] += 1.0
    for k in range(5):
        for i in range(4):
            subs.deliver(i, k * 100 * MS + (50 * MS if i >= 2 else 0))
    subs.unmatched = [5, 5, 5, 5]
    assert [k for k, _ in diag.check()] == ["unsynchronised"] and reports == ["unsynchronised"]
    assert diag.check() == []  # those drops were reported; nothing new


def test_partial_inputs_during_the_grace_are_not_reported():
    from depth_nodes.ros.input_diagnosis import InputDiagnosis

    now = [100.0]
    subs = _FakeSubs(4)
    diag = InputDiagnosis(_FakeGraphNode(), subs, [(0, 1), (2, 3)], 3.0, lambda k, m: None, clock=lambda: now[0])
    now[0] += 1.0
    subs.deliver(0, 0)
    subs.unmatched = [1, 0, 0, 0]
    assert diag.check() == []  # /in1../in3 not heard yet and only 1 s since subscribing


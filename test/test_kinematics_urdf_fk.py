"""URDF forward kinematics (yourdfpy) against hand-computed poses; joint-state interpolation."""
import numpy as np
import pytest

from depth_training.bags.synthetic import SYNTHETIC_URDF, T_WORLD_BASE, fk_world_optical, joint_positions
from depth_training.kinematics.urdf_fk import (
    JointStateExtrapolationError,
    JointStateGapError,
    JointStateTrack,
    UrdfError,
    UrdfKinematics,
)

S = 1_000_000_000

TWO_LINK = """<robot name="two_link">
  <link name="base_link"/><link name="l1"/><link name="l2"/><link name="cam"/><link name="wheel"/>
  <joint name="j1" type="revolute"><parent link="base_link"/><child link="l1"/>
    <origin xyz="0 0 0.5" rpy="0 0 0"/><axis xyz="0 0 1"/><limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
  <joint name="j2" type="revolute"><parent link="l1"/><child link="l2"/>
    <origin xyz="1 0 0" rpy="0 0 0"/><axis xyz="0 0 1"/><limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
  <joint name="jc" type="fixed"><parent link="l2"/><child link="cam"/><origin xyz="0.5 0 0" rpy="0 0 0"/></joint>
  <joint name="jw" type="continuous"><parent link="base_link"/><child link="wheel"/><axis xyz="0 1 0"/></joint>
</robot>"""


def planar_fk(q1, q2):
    """Hand FK of TWO_LINK: cam = (0, 0, 0.5) + Rz(q1) (1, 0, 0) + Rz(q1 + q2) (0.5, 0, 0), yaw q1 + q2."""
    pos = np.array([np.cos(q1) + 0.5 * np.cos(q1 + q2), np.sin(q1) + 0.5 * np.sin(q1 + q2), 0.5])
    c, s = np.cos(q1 + q2), np.sin(q1 + q2)
    return pos, np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


@pytest.mark.parametrize("q1,q2", [(0.0, 0.0), (np.pi / 2, np.pi / 2), (0.3, -1.1), (-2.0, 0.7)])
def test_two_link_fk_matches_hand_computation(q1, q2):
    kin = UrdfKinematics(TWO_LINK, source="two_link.urdf")
    T = kin.link_pose("cam", {"j1": q1, "j2": q2})
    pos, R = planar_fk(q1, q2)
    np.testing.assert_allclose(T[:3, 3], pos, atol=1e-12)
    np.testing.assert_allclose(T[:3, :3], R, atol=1e-12)


def test_required_joints_and_chain():
    kin = UrdfKinematics(TWO_LINK)
    assert kin.root == "base_link"
    assert kin.chain("cam") == ["j1", "j2", "jc"]
    assert kin.required_joints("cam") == ["j1", "j2"]  # the wheel is not on the chain; jc is fixed
    assert kin.joint_type("jw") == "continuous"


def test_missing_joint_and_unknown_link_errors_name_them():
    kin = UrdfKinematics(TWO_LINK, source="bag.mcap: /robot_description")
    with pytest.raises(UrdfError, match=r"bag.mcap: /robot_description: no position for joint\(s\) j2"):
        kin.link_pose("cam", {"j1": 0.0})
    with pytest.raises(UrdfError, match="link 'camera' is not in the URDF"):
        kin.link_pose("camera", {"j1": 0.0, "j2": 0.0})


def test_bad_urdf_text_and_file(tmp_path):
    with pytest.raises(UrdfError, match="x.urdf: cannot parse URDF"):
        UrdfKinematics("<robot name='x'><link name=", source="x.urdf")
    with pytest.raises(UrdfError, match="empty"):
        UrdfKinematics("  ", source="desc")
    with pytest.raises(UrdfError, match="missing.urdf: cannot read URDF"):
        UrdfKinematics.from_file(tmp_path / "missing.urdf")


def test_synthetic_arm_fk_matches_its_analytic_model():
    kin = UrdfKinematics(SYNTHETIC_URDF)
    for t in np.linspace(0, 2, 7):
        q1, q2 = joint_positions(t)
        T = T_WORLD_BASE @ kin.link_pose("camera_color_optical_frame", {"joint1": q1, "joint2": q2})
        np.testing.assert_allclose(T, fk_world_optical(t), atol=1e-12)


def test_joint_track_linear_interpolation_and_split_messages():
    track = JointStateTrack(source="bag: /joint_states", max_gap_ns=None)
    track.add(0, ["a", "b"], [0.0, 1.0])
    track.add(S, ["a"], [1.0])  # a publisher may split joints over messages
    track.add(2 * S, ["b"], [3.0])
    q = track.positions_at(S // 4, ["a", "b"])
    assert q["a"] == pytest.approx(0.25)
    assert q["b"] == pytest.approx(1.0 + 2.0 * 0.125)


def test_joint_track_continuous_joint_wraps_the_short_way():
    track = JointStateTrack(max_gap_ns=None)
    track.add(0, ["w"], [3.0])
    track.add(S, ["w"], [-3.0])  # +0.283 rad across +-pi, not -6 rad
    mid = track.positions_at(S // 2, ["w"], continuous=["w"])["w"]
    assert mid == pytest.approx(3.0 + (2 * np.pi - 6.0) / 2)
    assert track.positions_at(S // 2, ["w"])["w"] == pytest.approx(0.0)  # a revolute joint is not wrapped


def test_joint_track_errors_name_joint_topic_and_time():
    track = JointStateTrack(source="run.bag: /joint_states", max_gap_ns=S // 2)
    track.add(0, ["a"], [0.0])
    track.add(S // 10, ["a"], [0.1])
    track.add(S, ["a"], [1.0])
    with pytest.raises(JointStateExtrapolationError, match=r"run.bag: /joint_states: joint 'a' at 2.000000000 s"):
        track.positions_at(2 * S, ["a"])
    with pytest.raises(JointStateGapError, match=r"no samples between 0.100000000 s and 1.000000000 s"):
        track.positions_at(S // 2, ["a"])
    with pytest.raises(UrdfError, match="joint 'z' never appears"):
        track.positions_at(0, ["z"])
    with pytest.raises(UrdfError, match="non-finite"):
        track.add(2 * S, ["a"], [float("nan")])
    with pytest.raises(UrdfError, match="2 names but 1 positions"):
        track.add(2 * S, ["a", "b"], [0.0])


def test_joint_messages_without_positions_are_counted_not_used():
    track = JointStateTrack(max_gap_ns=None)
    track.add(0, ["a"], [0.0])
    track.add(S // 2, ["a"], [])  # a velocity-only message
    track.add(S, ["a"], [1.0])
    assert track.without_positions == 1
    assert track.positions_at(S // 2, ["a"])["a"] == pytest.approx(0.5)

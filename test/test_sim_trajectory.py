"""Arm trajectories: reachable look-at IK, smooth, within limits, looking at the table, seeded."""
import numpy as np
import pytest

from depth_training.sim.arm import COLOR_OPTICAL_FRAME, default_arm, forward_kinematics
from depth_training.sim.scene import random_scene
from depth_training.sim.trajectory import check_configuration, plan_trajectory, solve_view_ik


@pytest.fixture(scope="module")
def planned():
    arm, scene = default_arm(), random_scene(seed=4, n_objects=3)
    return arm, scene, plan_trajectory(arm, scene, duration=12.0, seed=4)


def test_ik_reaches_a_pose_produced_by_forward_kinematics():
    arm = default_arm()
    q_true = np.array([0.3, 0.2, 1.5, -0.4, 1.0, 0.5])
    goal = forward_kinematics(arm, q_true)[COLOR_OPTICAL_FRAME]
    q, pos_err, axis_err = solve_view_ik(arm, goal, np.zeros(6), np.zeros(6), reg_weight=0.0)
    assert pos_err < 1e-4 and axis_err < 1e-3
    got = forward_kinematics(arm, q)[COLOR_OPTICAL_FRAME]
    np.testing.assert_allclose(got, goal, atol=1e-3)


def test_trajectory_is_long_enough_within_limits_and_looks_at_the_table(planned):
    arm, scene, traj = planned
    assert traj.duration >= 12.0
    t = np.linspace(0.0, traj.duration, 400)
    q = traj.positions(t)
    assert np.all(q >= arm.lower - 1e-9) and np.all(q <= arm.upper + 1e-9)
    for qi in q[::8]:
        assert check_configuration(arm, scene, qi) is None


def test_trajectory_is_smooth_and_starts_and_ends_at_rest(planned):
    _, _, traj = planned
    np.testing.assert_allclose(traj.velocities([0.0, traj.duration]), 0.0, atol=1e-9)
    t = np.linspace(0.0, traj.duration, 2000)
    v = traj.velocities(t)
    assert np.abs(v).max() < 1.2  # rad/s; segments are timed for 0.35 rad/s on average
    # C2: the acceleration of a cubic spline is continuous (no jumps between neighbouring samples).
    acc = traj.accelerations(t)
    assert np.abs(np.diff(acc, axis=0)).max() < 0.05 * max(1.0, np.abs(acc).max())


def test_trajectory_views_the_objects_from_many_directions(planned):
    arm, scene, traj = planned
    az = []
    for q in traj.positions(np.linspace(0.0, traj.duration, 60)):
        cam = (scene.T_world_base @ forward_kinematics(arm, q)[COLOR_OPTICAL_FRAME])[:3, 3]
        az.append(np.degrees(np.arctan2(cam[1], cam[0])) % 360.0)
    assert max(az) - min(az) > 60.0


def test_same_seed_same_trajectory_other_seed_differs():
    arm, scene = default_arm(), random_scene(seed=4, n_objects=3)
    a = plan_trajectory(arm, scene, 4.0, seed=11)
    b = plan_trajectory(arm, scene, 4.0, seed=11)
    c = plan_trajectory(arm, scene, 4.0, seed=12)
    np.testing.assert_array_equal(a.waypoints, b.waypoints)
    assert a.waypoints.shape != c.waypoints.shape or not np.allclose(a.waypoints, c.waypoints)


def test_arm_keeps_clear_of_the_moving_distractor():
    from depth_training.sim.trajectory import distractor_clearance

    arm, scene = default_arm(), random_scene(seed=6, n_objects=2, distractor=True)
    traj = plan_trajectory(arm, scene, duration=8.0, seed=6)
    t = np.arange(0.0, traj.duration, 0.02)
    clearance = [distractor_clearance(arm, scene, q, ti) for q, ti in zip(traj.positions(t), t)]
    assert min(clearance) > 0.05
    assert distractor_clearance(arm, random_scene(seed=6, n_objects=2), traj.positions(0.0), 0.0) == np.inf


def test_quintic_hermite_hits_knots_with_given_velocities_and_zero_acceleration():
    from depth_training.sim.joint_spline import JointTrajectory, waypoint_velocity

    times = np.array([0.0, 1.0, 2.5, 4.0])
    qs = np.array([[0.0, 1.0], [1.0, 0.5], [3.0, 0.0], [2.0, 0.0]])
    # PCHIP rule by hand: knot 1 slopes (1, 2/1.5) -> harmonic mean 2*1*(4/3)/(1+4/3) = 8/7; joint 1
    # slopes (-0.5, -1/3) -> 2*(1/6)/(-5/6) = -0.4; knot 2 joint 0 changes direction -> 0.
    v1 = waypoint_velocity(qs[0], qs[1], qs[2], 1.0, 1.5)
    np.testing.assert_allclose(v1, [8 / 7, -0.4])
    v2 = waypoint_velocity(qs[1], qs[2], qs[3], 1.5, 1.5)
    np.testing.assert_allclose(v2, [0.0, 0.0])
    traj = JointTrajectory(times, qs, np.stack([np.zeros(2), v1, v2, np.zeros(2)]))
    np.testing.assert_allclose(traj.positions(times), qs, atol=1e-12)
    np.testing.assert_allclose(traj.velocities(times), traj.knot_velocities, atol=1e-12)
    np.testing.assert_allclose(traj.accelerations(times), 0.0, atol=1e-12)
    # Derivatives agree with finite differences inside a segment.
    t, h = np.array([0.37, 1.9, 3.3]), 1e-6
    fd = (traj.positions(t + h) - traj.positions(t - h)) / (2 * h)
    np.testing.assert_allclose(traj.velocities(t), fd, atol=1e-6)
    fd2 = (traj.velocities(t + h) - traj.velocities(t - h)) / (2 * h)
    np.testing.assert_allclose(traj.accelerations(t), fd2, atol=1e-5)
    # No overshoot: joint 0 stays within [0, 3] although it turns around at t = 2.5.
    q = traj.positions(np.linspace(0.0, 4.0, 401))
    assert q[:, 0].min() >= -1e-12 and q[:, 0].max() <= 3.0 + 1e-12

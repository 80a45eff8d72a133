"""Quaternion / transform maths against hand-computed values and scipy."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation, Slerp

from depth_training.kinematics.transforms import (
    interpolate_transform,
    invert_transform,
    make_transform,
    matrix_to_quat,
    pose_error,
    quat_slerp,
    quat_to_matrix,
)

S45 = np.sin(np.pi / 4)


def test_quat_to_matrix_hand_values():
    # 90 degrees about z: (x, y, z, w) = (0, 0, sin 45, cos 45)
    R = quat_to_matrix([0, 0, S45, S45])
    np.testing.assert_allclose(R, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    # 180 degrees about x
    np.testing.assert_allclose(quat_to_matrix([1, 0, 0, 0]), np.diag([1, -1, -1]), atol=1e-12)
    # non-unit input is normalised
    np.testing.assert_allclose(quat_to_matrix([0, 0, 2 * S45, 2 * S45]), R, atol=1e-12)


def test_quat_to_matrix_rejects_zero_quaternion():
    with pytest.raises(ValueError, match="zero-norm"):
        quat_to_matrix([0, 0, 0, 0])


def test_matrix_quat_round_trip_matches_scipy():
    rng = np.random.default_rng(1)
    rots = Rotation.random(200, random_state=rng)
    # include the branches of Shepperd's method: 180-degree turns about each axis
    extra = Rotation.from_rotvec([[np.pi, 0, 0], [0, np.pi, 0], [0, 0, np.pi], [0, 0, 0]])
    for rot in list(rots) + list(extra):
        q = matrix_to_quat(rot.as_matrix())
        ref = rot.as_quat()  # scipy is (x, y, z, w) too
        ref = -ref if ref[3] < 0 else ref
        assert q[3] >= 0
        if abs(ref[3]) < 1e-9:  # w == 0: q and -q both valid
            assert min(np.abs(q - ref).max(), np.abs(q + ref).max()) < 1e-9
        else:
            np.testing.assert_allclose(q, ref, atol=1e-9)
        np.testing.assert_allclose(quat_to_matrix(q), rot.as_matrix(), atol=1e-9)


def test_slerp_hand_computed():
    q0 = np.array([0, 0, 0, 1.0])
    q1 = np.array([0, 0, S45, S45])  # 90 deg about z
    for alpha, angle in ((0.0, 0.0), (0.25, 22.5), (0.5, 45.0), (1.0, 90.0)):
        half = np.radians(angle) / 2
        np.testing.assert_allclose(quat_slerp(q0, q1, alpha), [0, 0, np.sin(half), np.cos(half)], atol=1e-12)
    # q1 and -q1 are the same rotation: the shorter arc is taken either way
    np.testing.assert_allclose(quat_slerp(q0, -q1, 0.5), [0, 0, np.sin(np.pi / 8), np.cos(np.pi / 8)], atol=1e-12)


def test_slerp_matches_scipy_on_random_pairs():
    rng = np.random.default_rng(2)
    for _ in range(50):
        pair = Rotation.random(2, random_state=rng)
        alpha = rng.uniform()
        ref = Slerp([0, 1], pair)([alpha]).as_matrix()[0]
        got = quat_to_matrix(quat_slerp(pair[0].as_quat(), pair[1].as_quat(), alpha))
        np.testing.assert_allclose(got, ref, atol=1e-9)


def test_slerp_of_nearly_equal_quaternions_is_stable():
    q0 = np.array([0, 0, 0, 1.0])
    q1 = np.array([0, 0, 1e-9, 1.0])
    out = quat_slerp(q0, q1, 0.5)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(np.linalg.norm(out), 1.0)


def test_interpolate_transform_lerps_translation_and_slerps_rotation():
    T = interpolate_transform([0, 0, 0], [0, 0, 0, 1], [2, -4, 6], [0, 0, S45, S45], 0.25)
    np.testing.assert_allclose(T[:3, 3], [0.5, -1.0, 1.5])
    a = np.radians(22.5)
    np.testing.assert_allclose(T[:3, :3], [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]],
                               atol=1e-12)


def test_invert_and_compose():
    T = make_transform([1, 2, 3], Rotation.from_euler("xyz", [0.1, -0.7, 2.0]).as_quat())
    np.testing.assert_allclose(T @ invert_transform(T), np.eye(4), atol=1e-12)
    # p_a = T_a_b p_b: the origin of b sits at the translation
    np.testing.assert_allclose((T @ [0, 0, 0, 1])[:3], [1, 2, 3])


def test_pose_error_hand_values():
    A = make_transform([0, 0, 0], [0, 0, 0, 1])
    half = np.radians(5) / 2
    B = make_transform([0.006, 0.008, 0], [np.sin(half), 0, 0, np.cos(half)])
    dt, dr = pose_error(A, B)
    assert dt == pytest.approx(0.01)
    assert dr == pytest.approx(5.0)

"""Rigid-body maths in numpy: rotations, quaternions, homogeneous transforms, look-at frames.

Conventions
-----------
* ``T_a_b`` (4x4) maps points from frame ``b`` to frame ``a``: ``p_a = T_a_b @ p_b``.
* URDF ``rpy`` is fixed-axis roll-pitch-yaw: ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``.
* Quaternions are ``(w, x, y, z)`` (MuJoCo's order) unless a name says ``xyzw`` (ROS message order).
* REP 103 optical frames: z forward (viewing direction), x right, y down in the image.
"""
from __future__ import annotations

import numpy as np


def rot_x(angle: float) -> np.ndarray:
    """Rotation about x: ``[[1,0,0],[0,c,-s],[0,s,c]]`` (3x3)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(angle: float) -> np.ndarray:
    """Rotation about y: ``[[c,0,s],[0,1,0],[-s,0,c]]`` (3x3)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(angle: float) -> np.ndarray:
    """Rotation about z: ``[[c,-s,0],[s,c,0],[0,0,1]]`` (3x3)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rpy_to_matrix(rpy) -> np.ndarray:
    """URDF roll-pitch-yaw to a rotation: ``R = Rz(y) Ry(p) Rx(r)`` (3,) -> (3,3)."""
    r, p, y = (float(v) for v in rpy)
    return rot_z(y) @ rot_y(p) @ rot_x(r)


def matrix_to_rpy(rot: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rpy_to_matrix` (3,3) -> (3,) ``(roll, pitch, yaw)``.

    ``pitch = asin(-R[2,0])``, ``roll = atan2(R[2,1], R[2,2])``, ``yaw = atan2(R[1,0], R[0,0])``;
    at gimbal lock (``|R[2,0]| = 1``) roll is set to 0 and yaw absorbs it.
    """
    rot = np.asarray(rot, dtype=np.float64)
    sp = -rot[2, 0]
    if abs(sp) >= 1.0 - 1e-12:
        pitch = np.copysign(np.pi / 2, sp)
        yaw = np.arctan2(-rot[0, 1], rot[1, 1])
        return np.array([0.0, pitch, yaw])
    pitch = np.arcsin(np.clip(sp, -1.0, 1.0))
    roll = np.arctan2(rot[2, 1], rot[2, 2])
    yaw = np.arctan2(rot[1, 0], rot[0, 0])
    return np.array([roll, pitch, yaw])


def axis_angle_to_matrix(axis, angle: float) -> np.ndarray:
    """Rodrigues: ``R = I + sin(a) K + (1 - cos(a)) K^2`` with ``K = [axis]_x`` (unit axis (3,)) -> (3,3)."""
    axis = np.asarray(axis, dtype=np.float64)
    norm = np.linalg.norm(axis)
    if norm == 0.0:
        raise ValueError("axis_angle_to_matrix: zero rotation axis")
    x, y, z = axis / norm
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def quat_wxyz_to_matrix(quat) -> np.ndarray:
    """Unit quaternion ``(w, x, y, z)`` (4,) -> rotation (3,3) (normalised first)."""
    w, x, y, z = np.asarray(quat, dtype=np.float64) / np.linalg.norm(quat)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat_wxyz(rot: np.ndarray) -> np.ndarray:
    """Rotation (3,3) -> unit quaternion ``(w, x, y, z)`` (4,) with ``w >= 0`` (Shepperd's method)."""
    m = np.asarray(rot, dtype=np.float64)
    tr = np.trace(m)
    if tr > 0.0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = np.array([0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s])
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = np.array([(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s])
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = np.array([(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s])
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = np.array([(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s])
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


def make_transform(rot=None, trans=None) -> np.ndarray:
    """``[[R, t], [0, 1]]`` (4,4) from a rotation (3,3) and a translation (3,)."""
    out = np.eye(4)
    if rot is not None:
        out[:3, :3] = rot
    if trans is not None:
        out[:3, 3] = trans
    return out


def invert_transform(tf: np.ndarray) -> np.ndarray:
    """``T^-1 = [[R^T, -R^T t], [0, 1]]`` for a rigid transform (4,4) -> (4,4)."""
    rot, trans = tf[:3, :3], tf[:3, 3]
    return make_transform(rot.T, -rot.T @ trans)


def transform_points(tf: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``p' = R p + t`` for points (..., 3) -> (..., 3)."""
    return points @ tf[:3, :3].T + tf[:3, 3]


def look_at_optical(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """``T_world_optical`` (4,4) of a camera at ``eye`` whose optical z axis points at ``target``.

    ``z = (target - eye)/|target - eye|``, ``x = z x up / |z x up|`` (image right, so the world ``up``
    appears at the top of the image), ``y = z x x`` (image down). Raises ``ValueError`` if ``z`` is
    parallel to ``up``.
    """
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("look_at_optical: viewing direction is parallel to the up vector")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return make_transform(np.stack([x, y, z], axis=1), eye)


# REP 103: body frame (x forward, y left, z up) -> optical frame (z forward, x right, y down).
# The fixed joint every ROS camera driver publishes: rpy = (-pi/2, 0, -pi/2).
OPTICAL_FROM_BODY_RPY = (-np.pi / 2, 0.0, -np.pi / 2)

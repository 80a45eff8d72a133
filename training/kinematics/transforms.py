"""Rigid transforms and quaternions (numpy, float64).

Conventions (the same as ROS / tf2):

* Quaternions are stored as ``(x, y, z, w)`` (ROS ``geometry_msgs/Quaternion`` order), unit norm.
* A transform ``T_a_b`` is a ``(4, 4)`` homogeneous matrix that maps points expressed in frame
  ``b`` into frame ``a``: ``p_a = T_a_b @ p_b``. It is the pose of ``b`` in ``a``. A
  ``geometry_msgs/TransformStamped`` with ``header.frame_id = a`` and ``child_frame_id = b``
  holds ``T_a_b``.
* Composition: ``T_a_c = T_a_b @ T_b_c``.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "quat_normalize",
    "quat_to_matrix",
    "matrix_to_quat",
    "quat_slerp",
    "make_transform",
    "invert_transform",
    "interpolate_transform",
    "pose_error",
]


def quat_normalize(q: np.ndarray) -> np.ndarray:
    """Unit quaternion ``q / |q|`` for ``q`` of shape ``(..., 4)`` in ``(x, y, z, w)`` order.

    Raises:
        ValueError: a quaternion with (near) zero norm or non-finite entries.
    """
    q = np.asarray(q, dtype=np.float64)
    if q.shape[-1] != 4:
        raise ValueError(f"quaternion: expected shape (..., 4) in (x, y, z, w) order, got {q.shape}")
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if not np.all(np.isfinite(q)) or np.any(norm < 1e-9):
        raise ValueError(f"quaternion: zero-norm or non-finite quaternion {q.tolist()}")
    return q / norm


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a quaternion ``(x, y, z, w)``: ``(..., 4) -> (..., 3, 3)``.

    ``R = [[1-2(y²+z²), 2(xy-zw),   2(xz+yw)],
           [2(xy+zw),   1-2(x²+z²), 2(yz-xw)],
           [2(xz-yw),   2(yz+xw),   1-2(x²+y²)]]`` (after normalising ``q``).
    """
    x, y, z, w = np.moveaxis(quat_normalize(q), -1, 0)
    R = np.empty(x.shape + (3, 3), dtype=np.float64)
    R[..., 0, 0] = 1 - 2 * (y * y + z * z)
    R[..., 0, 1] = 2 * (x * y - z * w)
    R[..., 0, 2] = 2 * (x * z + y * w)
    R[..., 1, 0] = 2 * (x * y + z * w)
    R[..., 1, 1] = 1 - 2 * (x * x + z * z)
    R[..., 1, 2] = 2 * (y * z - x * w)
    R[..., 2, 0] = 2 * (x * z - y * w)
    R[..., 2, 1] = 2 * (y * z + x * w)
    R[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return R


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """Quaternion ``(x, y, z, w)`` with ``w >= 0`` of a rotation matrix ``(3, 3)`` (Shepperd's method).

    Picks the numerically largest of ``w, x, y, z`` first: e.g. for ``trace > 0``,
    ``w = sqrt(1 + trace) / 2`` and ``x = (R21 - R12) / (4w)``, ``y = (R02 - R20) / (4w)``,
    ``z = (R10 - R01) / (4w)``.
    """
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (3, 3):
        raise ValueError(f"rotation: expected a (3, 3) matrix, got {R.shape}")
    tr = R[0, 0] + R[1, 1] + R[2, 2]
    if tr > 0:
        s = 2.0 * np.sqrt(1.0 + tr)
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, 0.25 * s]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = [0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s]
    elif R[1, 1] > R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        q = [(R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        q = [(R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s, (R[1, 0] - R[0, 1]) / s]
    q = quat_normalize(np.array(q))
    return -q if q[3] < 0 else q


def quat_slerp(q0: np.ndarray, q1: np.ndarray, alpha: float) -> np.ndarray:
    """Spherical linear interpolation between unit quaternions ``(x, y, z, w)``, shape ``(4,)``.

    Along the shorter arc (``q1 -> -q1`` when ``q0·q1 < 0``), with ``cos(theta) = q0·q1``:

        slerp(q0, q1, a) = sin((1-a) theta) / sin(theta) * q0 + sin(a theta) / sin(theta) * q1

    ``alpha = 0`` gives ``q0``, ``alpha = 1`` gives ``q1`` (up to sign). For ``theta`` below
    1e-6 rad the normalised linear interpolation is used (identical to first order).
    """
    q0 = quat_normalize(q0)
    q1 = quat_normalize(q1)
    dot = float(np.dot(q0, q1))
    if dot < 0.0:
        q1, dot = -q1, -dot
    dot = min(dot, 1.0)
    theta = np.arccos(dot)
    if theta < 1e-6:
        return quat_normalize((1.0 - alpha) * q0 + alpha * q1)
    s = np.sin(theta)
    return np.sin((1.0 - alpha) * theta) / s * q0 + np.sin(alpha * theta) / s * q1


def make_transform(translation: np.ndarray, quaternion: np.ndarray) -> np.ndarray:
    """``(4, 4)`` transform from a translation ``(3,)`` and a quaternion ``(x, y, z, w)``.

    ``T = [[R(q), t], [0, 0, 0, 1]]``.
    """
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(quaternion)
    T[:3, 3] = np.asarray(translation, dtype=np.float64).reshape(3)
    return T


def invert_transform(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid ``(4, 4)`` transform: ``[[R^T, -R^T t], [0, 1]]``."""
    T = np.asarray(T, dtype=np.float64)
    out = np.eye(4)
    Rt = T[:3, :3].T
    out[:3, :3] = Rt
    out[:3, 3] = -Rt @ T[:3, 3]
    return out


def interpolate_transform(t0: np.ndarray, q0: np.ndarray, t1: np.ndarray, q1: np.ndarray,
                          alpha: float) -> np.ndarray:
    """Interpolated ``(4, 4)`` transform between two samples (tf2's scheme).

    Translation by LERP ``t = (1 - a) t0 + a t1``; rotation by :func:`quat_slerp` ``(q0, q1, a)``;
    ``a`` in ``[0, 1]`` is the fraction of the time between the two samples.
    """
    t = (1.0 - alpha) * np.asarray(t0, dtype=np.float64) + alpha * np.asarray(t1, dtype=np.float64)
    return make_transform(t, quat_slerp(q0, q1, alpha))


def pose_error(T_a: np.ndarray, T_b: np.ndarray) -> tuple[float, float]:
    """Distance between two poses: ``(|t_a - t_b|`` in metres, rotation angle of ``R_a^T R_b`` in degrees).

    The angle is ``arccos((trace(R_a^T R_b) - 1) / 2)``, clipped to ``[0, 180]``.
    """
    T_a = np.asarray(T_a, dtype=np.float64)
    T_b = np.asarray(T_b, dtype=np.float64)
    dt = float(np.linalg.norm(T_a[:3, 3] - T_b[:3, 3]))
    c = (np.trace(T_a[:3, :3].T @ T_b[:3, :3]) - 1.0) / 2.0
    return dt, float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))

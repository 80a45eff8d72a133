"""The simulated 6-joint arm with its wrist RGB-D camera: one set of kinematic parameters.

Both the MJCF (:mod:`.mjcf`) and the URDF (:mod:`.urdf`) are written from :func:`default_arm`, so
the two descriptions cannot drift apart (a test holds MuJoCo's body poses against yourdfpy's FK
of the URDF). Semantics are URDF's: a joint's child frame is
``T_parent_child(q) = T_origin(xyz, rpy) @ Rot(axis, q)`` (fixed joints: ``q = 0``).

Frames (REP 103/105): ``base_link`` -> ``link1`` ... ``link6`` (revolute ``joint1`` ..
``joint6``) -> ``camera_link`` (fixed, x forward) -> ``camera_color_optical_frame`` (fixed,
z forward, x right, y down).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .transforms import OPTICAL_FROM_BODY_RPY, axis_angle_to_matrix, make_transform, rpy_to_matrix

JOINT_NAMES = tuple(f"joint{i}" for i in range(1, 7))
LINK_NAMES = ("base_link",) + tuple(f"link{i}" for i in range(1, 7))
CAMERA_LINK = "camera_link"
COLOR_OPTICAL_FRAME = "camera_color_optical_frame"


@dataclass(frozen=True)
class JointSpec:
    """One URDF joint: ``axis is None`` for a fixed joint, else revolute with limits (rad)."""

    name: str
    parent: str
    child: str
    xyz: tuple[float, float, float]
    rpy: tuple[float, float, float]
    axis: tuple[float, float, float] | None = None
    lower: float = 0.0
    upper: float = 0.0
    velocity: float = 2.0
    effort: float = 50.0

    @property
    def is_fixed(self) -> bool:
        return self.axis is None

    @cached_property
    def _origin(self) -> np.ndarray:
        return make_transform(rpy_to_matrix(self.rpy), self.xyz)

    def origin(self) -> np.ndarray:
        """``T_parent_jointframe = [[Rz(y)Ry(p)Rx(r), xyz], [0, 1]]`` (4,4), a fresh copy."""
        return self._origin.copy()

    def transform(self, q: float = 0.0) -> np.ndarray:
        """``T_parent_child(q) = origin @ [[Rot(axis, q), 0], [0, 1]]`` (4,4)."""
        if self.is_fixed:
            return self._origin.copy()
        return self._origin @ make_transform(axis_angle_to_matrix(self.axis, q))


@dataclass(frozen=True)
class Visual:
    """A primitive drawn in a link's frame.

    ``kind``: ``"cylinder"`` (size = (radius, length), along the local z of ``rpy``),
    ``"box"`` (size = full edge lengths (x, y, z)) or ``"sphere"`` (size = (radius,)).
    """

    link: str
    kind: str
    size: tuple[float, ...]
    xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rgba: tuple[float, float, float, float] = (0.6, 0.6, 0.62, 1.0)


def cylinder_between(link: str, p0, p1, radius: float, rgba) -> Visual:
    """A cylinder visual whose axis runs from ``p0`` to ``p1`` (link frame, metres)."""
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    d = p1 - p0
    length = float(np.linalg.norm(d))
    d /= length
    # Rotate local z onto d: pitch about y then yaw about z (rpy = (0, acos(dz), atan2(dy, dx))).
    pitch = float(np.arccos(np.clip(d[2], -1.0, 1.0)))
    yaw = float(np.arctan2(d[1], d[0])) if np.hypot(d[0], d[1]) > 1e-12 else 0.0
    mid = tuple(float(v) for v in (p0 + p1) / 2)
    return Visual(link, "cylinder", (radius, length), mid, (0.0, pitch, yaw), tuple(rgba))


@dataclass(frozen=True)
class ArmSpec:
    """Kinematic tree (joints in topological order) plus link visuals."""

    name: str
    joints: tuple[JointSpec, ...]
    visuals: tuple[Visual, ...]

    @property
    def revolute(self) -> tuple[JointSpec, ...]:
        return tuple(j for j in self.joints if not j.is_fixed)

    @property
    def lower(self) -> np.ndarray:
        return np.array([j.lower for j in self.revolute])

    @property
    def upper(self) -> np.ndarray:
        return np.array([j.upper for j in self.revolute])

    @property
    def links(self) -> tuple[str, ...]:
        return (self.joints[0].parent,) + tuple(j.child for j in self.joints)


def default_arm() -> ArmSpec:
    """The arm used by every recording: 6 revolute joints, 0.40 m upper arm, 0.30 m forearm.

    ``joint1`` base yaw (z), ``joint2`` shoulder pitch (y), ``joint3`` elbow pitch (y), ``joint4``
    forearm roll (z), ``joint5`` wrist pitch (y), ``joint6`` flange roll (z). The wrist camera sits
    on the flange, offset 45 mm along link6 x, looking along link6 z.
    """
    grey, dark, orange = (0.75, 0.75, 0.77, 1.0), (0.2, 0.2, 0.22, 1.0), (0.95, 0.45, 0.1, 1.0)
    j = JointSpec
    joints = (
        j("joint1", "base_link", "link1", (0.0, 0.0, 0.08), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), -3.0, 3.0),
        j("joint2", "link1", "link2", (0.0, 0.0, 0.10), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), -2.2, 2.2),
        j("joint3", "link2", "link3", (0.0, 0.0, 0.40), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), -2.6, 2.6),
        j("joint4", "link3", "link4", (0.0, 0.0, 0.30), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), -3.0, 3.0),
        j("joint5", "link4", "link5", (0.0, 0.0, 0.08), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), -2.2, 2.2),
        j("joint6", "link5", "link6", (0.0, 0.0, 0.08), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), -3.0, 3.0),
        j("camera_joint", "link6", CAMERA_LINK, (0.045, 0.0, 0.02), (0.0, -np.pi / 2, 0.0)),
        j("camera_color_optical_joint", CAMERA_LINK, COLOR_OPTICAL_FRAME, (0.0, 0.015, 0.0),
          OPTICAL_FROM_BODY_RPY),
    )
    c = cylinder_between
    visuals = (
        c("base_link", (0, 0, 0), (0, 0, 0.08), 0.07, dark),
        c("link1", (0, 0, 0), (0, 0, 0.10), 0.055, grey),
        c("link2", (0, -0.06, 0), (0, 0.06, 0), 0.055, orange),
        c("link2", (0, 0, 0), (0, 0, 0.40), 0.042, grey),
        c("link3", (0, -0.05, 0), (0, 0.05, 0), 0.048, orange),
        c("link3", (0, 0, 0), (0, 0, 0.30), 0.036, grey),
        c("link4", (0, 0, 0), (0, 0, 0.06), 0.034, grey),
        c("link5", (0, -0.04, 0), (0, 0.04, 0), 0.036, orange),
        c("link5", (0, 0, 0), (0, 0, 0.07), 0.03, grey),
        c("link6", (0, 0, 0), (0, 0, 0.012), 0.034, dark),
        # Camera housing behind the lens (camera_link x <= 0), so it never enters its own view.
        Visual(CAMERA_LINK, "box", (0.025, 0.09, 0.025), (-0.0125, 0.0, 0.0), (0.0, 0.0, 0.0), dark),
    )
    return ArmSpec("sim_arm6", joints, visuals)


def forward_kinematics(arm: ArmSpec, q) -> dict[str, np.ndarray]:
    """``T_base_link`` (4,4) for every link, from joint positions ``q`` (6,) in ``JOINT_NAMES`` order.

    ``T_base_child = T_base_parent @ joint.transform(q_joint)`` walked along ``arm.joints``.
    """
    q = np.asarray(q, dtype=np.float64)
    revolute = arm.revolute
    if q.shape != (len(revolute),):
        raise ValueError(f"forward_kinematics: expected {len(revolute)} joint positions, got shape {q.shape}")
    qmap = {jt.name: float(v) for jt, v in zip(revolute, q)}
    poses = {arm.joints[0].parent: np.eye(4)}
    for jt in arm.joints:
        poses[jt.child] = poses[jt.parent] @ jt.transform(qmap.get(jt.name, 0.0))
    return poses

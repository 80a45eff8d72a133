"""A small synthetic robot recording with exact ground truth (for tests and the read benchmark).

A two-joint arm (``joint1`` yaw about z, ``joint2`` pitch about y) carries an RGB-D camera; a
fixed stereo pair looks at the scene. Everything is analytic, so the poses and depths written
to the bag have exact values to compare against:

* ``q1(t) = 0.5 sin(pi t)``, ``q2(t) = 0.3 + 0.2 cos(1.4 pi t)`` (radians, ``t`` in seconds
  from the first stamp);
* ``T_world_base`` static; ``T_base_link1 = Trans(0, 0, 0.3) Rz(q1)``;
  ``T_link1_link2 = Trans(0.4, 0, 0) Ry(q2)``; ``T_link2_camera_link = Trans(0.2, 0, 0.05)``;
  ``T_camera_link_optical = Rz(-pi/2) Rx(-pi/2)`` (REP 103 optical frame);
* depth ``z(u, v) = 1 + 0.002 u + 0.001 v + 0.01 i`` metres (frame ``i``), written as 16UC1 mm.

Joint states (and the moving TF edges) are published at ``joint_rate`` with stamps offset from
the image stamps, as a real robot's are. Topic names follow :class:`TopicConfig` defaults.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depth_nodes.geometry.camera import PinholeCamera
from depth_training.bags.writer import BagWriter

__all__ = ["SYNTHETIC_URDF", "SyntheticTruth", "joint_positions", "fk_world_optical", "write_synthetic_bag"]

SYNTHETIC_URDF = """<?xml version="1.0"?>
<robot name="synthetic_arm">
  <link name="base_link"/>
  <link name="link1"/>
  <link name="link2"/>
  <link name="camera_link"/>
  <link name="camera_color_optical_frame"/>
  <joint name="joint1" type="revolute">
    <parent link="base_link"/><child link="link1"/>
    <origin xyz="0 0 0.3" rpy="0 0 0"/><axis xyz="0 0 1"/>
    <limit lower="-3.1" upper="3.1" effort="10" velocity="3"/>
  </joint>
  <joint name="joint2" type="revolute">
    <parent link="link1"/><child link="link2"/>
    <origin xyz="0.4 0 0" rpy="0 0 0"/><axis xyz="0 1 0"/>
    <limit lower="-3.1" upper="3.1" effort="10" velocity="3"/>
  </joint>
  <joint name="camera_joint" type="fixed">
    <parent link="link2"/><child link="camera_link"/>
    <origin xyz="0.2 0 0.05" rpy="0 0 0"/>
  </joint>
  <joint name="camera_optical_joint" type="fixed">
    <parent link="camera_link"/><child link="camera_color_optical_frame"/>
    <origin xyz="0 0 0" rpy="-1.5707963267948966 0 -1.5707963267948966"/>
  </joint>
</robot>
"""

T0_NS = 1_700_000_000_000_000_000


def _rot(axis: str, a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    T = np.eye(4)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    T[i, i], T[i, j], T[j, i], T[j, j] = c, -s, s, c
    return T


def _trans(x: float, y: float, z: float) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = (x, y, z)
    return T


T_WORLD_BASE = _trans(1.0, 2.0, 0.0) @ _rot("z", 0.3)
T_CAMLINK_OPTICAL = _rot("z", -np.pi / 2) @ _rot("x", -np.pi / 2)
T_WORLD_STEREO = _trans(0.0, 0.0, 1.0)
T_STEREO_LEFT = _rot("z", -np.pi / 2) @ _rot("x", -np.pi / 2)


def joint_positions(t_s: float) -> tuple[float, float]:
    """``(q1, q2)`` at ``t_s`` seconds after the first stamp."""
    return 0.5 * np.sin(np.pi * t_s), 0.3 + 0.2 * np.cos(1.4 * np.pi * t_s)


def link_transforms(q1: float, q2: float) -> tuple[np.ndarray, np.ndarray]:
    """``(T_base_link1, T_link1_link2)`` of the synthetic arm."""
    return _trans(0, 0, 0.3) @ _rot("z", q1), _trans(0.4, 0, 0) @ _rot("y", q2)


def fk_world_optical(t_s: float) -> np.ndarray:
    """Exact ``T_world_camera_color_optical_frame`` ``(4, 4)`` at ``t_s``."""
    a, b = link_transforms(*joint_positions(t_s))
    return T_WORLD_BASE @ a @ b @ _trans(0.2, 0, 0.05) @ T_CAMLINK_OPTICAL


def depth_truth(width: int, height: int, i: int) -> np.ndarray:
    """Exact depth of frame ``i`` in metres, ``(H, W)`` float64 (before millimetre rounding)."""
    v, u = np.mgrid[0:height, 0:width]
    return 1.0 + 0.002 * u + 0.001 * v + 0.01 * i


@dataclass(frozen=True)
class SyntheticTruth:
    """Ground truth of a synthetic recording."""

    image_stamps_ns: np.ndarray  # (N,) int64
    T_world_color_optical: np.ndarray  # (N, 4, 4)
    camera: PinholeCamera
    baseline: float
    urdf: str


def write_synthetic_bag(path: str | Path, fmt: str = "mcap", *, frames: int = 10, width: int = 32, height: int = 24,
                        image_rate: float = 30.0, joint_rate: float = 60.0, joint_offset_s: float = 0.004,
                        baseline: float = 0.06, with_stereo: bool = True, with_description: bool = True,
                        compressed_color: bool = False) -> SyntheticTruth:
    """Write the recording (see module doc) and return its ground truth."""
    rng = np.random.default_rng(0)
    f = 0.8 * width
    cam = PinholeCamera(width, height, [[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]],
                        frame_id="camera_color_optical_frame")
    P_right = cam.P.copy()
    P_right[0, 3] = -f * baseline
    right = PinholeCamera(width, height, cam.K, P=P_right, frame_id="stereo_right_optical_frame")
    dt_img = 1.0 / image_rate
    stamps = T0_NS + np.round(np.arange(frames) * dt_img * 1e9).astype(np.int64)
    t_end = (frames - 1) * dt_img
    n_joint = int(np.ceil((t_end + 2 * joint_offset_s) * joint_rate)) + 2
    joint_t = -joint_offset_s + np.arange(n_joint) / joint_rate  # first sample before the first image
    with BagWriter(path, fmt) as w:
        if with_description:
            w.string("/robot_description", SYNTHETIC_URDF, int(stamps[0]) - 50_000_000)
        static = [("world", "base_link", int(stamps[0]), T_WORLD_BASE),
                  ("link2", "camera_link", int(stamps[0]), _trans(0.2, 0, 0.05)),
                  ("camera_link", "camera_color_optical_frame", int(stamps[0]), T_CAMLINK_OPTICAL)]
        if with_stereo:
            static += [("world", "stereo_link", int(stamps[0]), T_WORLD_STEREO),
                       ("stereo_link", "stereo_left_optical_frame", int(stamps[0]), T_STEREO_LEFT),
                       ("stereo_left_optical_frame", "stereo_right_optical_frame", int(stamps[0]),
                        _trans(baseline, 0, 0))]
        w.tf("/tf_static", static, log_ns=int(stamps[0]) - 40_000_000)
        events = [(T0_NS + int(round(t * 1e9)), "joint", None) for t in joint_t]
        events += [(int(s), "image", i) for i, s in enumerate(stamps)]
        for stamp, kind, i in sorted(events, key=lambda e: (e[0], e[1])):
            if kind == "joint":
                q1, q2 = joint_positions((stamp - T0_NS) / 1e9)
                w.joint_state("/joint_states", stamp, ["joint1", "joint2"], [q1, q2])
                a, b = link_transforms(q1, q2)
                w.tf("/tf", [("base_link", "link1", stamp, a), ("link1", "link2", stamp, b)])
                continue
            rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            if compressed_color:
                w.compressed_image("/camera/color/image_raw", stamp, rgb[:, :, ::-1].copy(),
                                   "camera_color_optical_frame", fmt="png")
            else:
                w.image("/camera/color/image_raw", stamp, rgb, "rgb8", "camera_color_optical_frame")
            w.camera_info("/camera/color/camera_info", stamp, cam, "camera_color_optical_frame")
            depth_mm = np.round(depth_truth(width, height, i) * 1000).astype(np.uint16)
            depth_mm[0, :4] = 0  # a few holes
            w.image("/camera/depth/image_rect_raw", stamp + 1_000_000, depth_mm, "16UC1",
                    "camera_color_optical_frame")
            w.camera_info("/camera/depth/camera_info", stamp + 1_000_000, cam, "camera_color_optical_frame")
            if with_stereo:
                for side, c in (("left", cam), ("right", right)):
                    w.image(f"/stereo/{side}/image_rect", stamp, rgb[:, :, 0].copy(), "mono8",
                            f"stereo_{side}_optical_frame")
                    w.camera_info(f"/stereo/{side}/camera_info", stamp, c, f"stereo_{side}_optical_frame")
    poses = np.stack([fk_world_optical((s - T0_NS) / 1e9) for s in stamps])
    return SyntheticTruth(stamps, poses, cam, baseline, SYNTHETIC_URDF)

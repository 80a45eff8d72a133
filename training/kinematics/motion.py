"""How much a camera moves over a recording: the check that recorded poses can teach depth.

Self-supervised depth from recorded poses (``depth-train mono --pose-source tf|fk``) learns from
parallax, i.e. from the camera *translating* between frames. A recording whose camera frame is
fixed in the chosen fixed frame (only ``/tf_static`` recorded, a ``--topics tf=`` typo, poses
expressed in a frame that moves with the camera) gives identical poses for every frame: the
warp is the identity, the loss is minimised by any depth, and a "metric" model is written that
learned nothing. :func:`camera_motion` measures the motion and :func:`motion_problem` turns a
too-small one into a sentence with the numbers and the frames.

For poses ``T_i`` ``(N, 4, 4)`` (camera in the fixed frame), with ``p_i = T_i[:3, 3]`` and
``R_i = T_i[:3, :3]``:

* ``max_translation_m = max_i |p_i - p_0|`` (largest distance from the first pose);
* ``path_length_m = sum_i |p_{i+1} - p_i|``;
* ``max_rotation_deg = max_i angle(R_0^T R_i)`` with ``angle(R) = acos((trace R - 1) / 2)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CameraMotion", "camera_motion", "motion_problem", "MIN_TRANSLATION_M"]

#: below this the camera is treated as not moving (1 cm: a few pixels of parallax at 1 m for common cameras)
MIN_TRANSLATION_M = 0.01


@dataclass(frozen=True)
class CameraMotion:
    """Summary of a camera trajectory (see module docstring for the formulas)."""

    poses: int
    max_translation_m: float
    path_length_m: float
    max_rotation_deg: float


def camera_motion(T: np.ndarray) -> CameraMotion:
    """Motion of the poses ``T`` ``(N, 4, 4)`` (camera in the fixed frame); ``N >= 1``."""
    T = np.asarray(T, dtype=np.float64).reshape(-1, 4, 4)
    if len(T) == 0:
        return CameraMotion(0, 0.0, 0.0, 0.0)
    p = T[:, :3, 3]
    R0t = T[0, :3, :3].T
    rel = np.einsum("ij,njk->nik", R0t, T[:, :3, :3])
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
    return CameraMotion(len(T), float(np.linalg.norm(p - p[0], axis=1).max()),
                        float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum()) if len(T) > 1 else 0.0,
                        float(np.degrees(np.arccos(cos)).max()))


def motion_problem(motion: CameraMotion, frame: str, fixed_frame: str, source: str,
                   min_translation_m: float = MIN_TRANSLATION_M, *, fixed_frame_given: bool = False) -> str | None:
    """``None`` when the camera translates at least ``min_translation_m``; else why poses are useless.

    ``fixed_frame_given``: the user chose ``fixed_frame`` (``--fixed-frame``), so the likely cause
    is that frame moving with the camera rather than a recording without motion.
    """
    if motion.poses >= 2 and motion.max_translation_m >= min_translation_m:
        return None
    if fixed_frame_given:
        hint = (f"--fixed-frame {fixed_frame} seems to move with the camera: choose a frame the camera moves in "
                "(the world, the robot base)")
        return (f"camera frame {frame!r} does not move in {fixed_frame!r} ({source} poses of {motion.poses} image(s): "
                f"at most {motion.max_translation_m:.4f} m from the first pose, path {motion.path_length_m:.4f} m, "
                f"rotation {motion.max_rotation_deg:.2f} deg; at least {min_translation_m:g} m of translation is "
                f"needed for parallax): {hint}")
    hint = ("only static transforms were recorded? check that the bag has the moving TF topic (--topics tf=...)"
            if source == "tf" else "do the recorded joint states change? check --topics joint_states=...")
    return (f"camera frame {frame!r} does not move in {fixed_frame!r} ({source} poses of {motion.poses} image(s): "
            f"at most {motion.max_translation_m:.4f} m from the first pose, path {motion.path_length_m:.4f} m, "
            f"rotation {motion.max_rotation_deg:.2f} deg; at least {min_translation_m:g} m of translation is needed "
            f"for parallax): {hint}, or choose another frame with --fixed-frame")

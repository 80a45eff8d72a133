"""MuJoCo camera model <-> REP 103 optical frame and pinhole intrinsics.

A MuJoCo camera looks along its local -z with +y up and +x right (OpenGL). The REP 103 optical
frame looks along +z with +x right and +y down, so the two differ by a half turn about x:
``R_world_mjcam = R_world_optical @ diag(1, -1, -1)`` (the matrix is its own inverse).

A camera given only ``fovy`` renders a symmetric frustum whose vertical extent ``tan(fovy/2)``
maps to half the image height, with square pixels:
``fy = H / (2 tan(fovy/2))``, ``fx = fy``. OpenGL rasterises pixel ``j`` at its centre
``j + 0.5`` in window coordinates whose frustum edges are 0 and ``W``; in the ROS/OpenCV
convention (pixel ``j``'s centre has coordinate ``j``) the principal point is therefore
``cx = (W - 1)/2``, ``cy = (H - 1)/2``. ``test_sim_camera.py`` confirms this against rendered
depth of tilted planes, where a half-pixel error in ``cx`` is measurable.
"""
from __future__ import annotations

import numpy as np

from .transforms import make_transform, matrix_to_quat_wxyz

# diag(1, -1, -1): optical (z fwd, y down) <-> MuJoCo/OpenGL camera (-z fwd, y up).
R_OPTICAL_MJCAM = np.diag([1.0, -1.0, -1.0])
# The same half turn about x as a MuJoCo quaternion (w, x, y, z).
QUAT_OPTICAL_MJCAM = (0.0, 1.0, 0.0, 0.0)


def intrinsics_from_fovy(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """Pinhole ``K`` (3,3) of a MuJoCo ``fovy`` camera rendered at ``width x height``.

    ``fy = H / (2 tan(fovy/2))``, ``fx = fy``, ``cx = (W - 1)/2``, ``cy = (H - 1)/2``.
    """
    if not 0.0 < fovy_deg < 180.0:
        raise ValueError(f"intrinsics_from_fovy: fovy must be in (0, 180) degrees, got {fovy_deg}")
    if width < 1 or height < 1:
        raise ValueError(f"intrinsics_from_fovy: bad image size {width}x{height}")
    fy = height / (2.0 * np.tan(np.deg2rad(fovy_deg) / 2.0))
    return np.array([[fy, 0.0, (width - 1) / 2.0], [0.0, fy, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def mujoco_camera_quat(R_parent_optical: np.ndarray) -> np.ndarray:
    """MJCF ``quat`` (w, x, y, z) of a camera whose optical frame has rotation ``R_parent_optical`` (3,3)."""
    return matrix_to_quat_wxyz(R_parent_optical @ R_OPTICAL_MJCAM)


def optical_pose_from_mujoco(cam_xpos: np.ndarray, cam_xmat: np.ndarray) -> np.ndarray:
    """``T_world_optical`` (4,4) from MuJoCo's ``data.cam_xpos[i]`` (3,) and ``data.cam_xmat[i]`` (9,)."""
    R_world_mjcam = np.asarray(cam_xmat, dtype=np.float64).reshape(3, 3)
    return make_transform(R_world_mjcam @ R_OPTICAL_MJCAM, cam_xpos)

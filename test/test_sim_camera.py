"""MuJoCo depth is metric optical-z depth, and K = intrinsics_from_fovy (cx = (W-1)/2) is exact.

A camera looks at a large flat box face; per pixel the rendered depth must equal the analytic
ray/plane intersection ``z = c / (n . K^-1 [u, v, 1])``. A tilted plane makes a half-pixel error
in the principal point visible, which pins the pixel-centre convention.
"""
import mujoco
import numpy as np
import pytest

from depth_training.sim.arm import default_arm
from depth_training.sim.camera_model import QUAT_OPTICAL_MJCAM, intrinsics_from_fovy
from depth_training.sim.mjcf import build_model
from depth_training.sim.render import SceneRenderer
from depth_training.sim.scene import OBJECT_AREA_RADIUS, TABLE_X, TABLE_Y, random_scene
from depth_training.sim.transforms import matrix_to_quat_wxyz, rot_x, rot_y

W, H, FOVY = 64, 48, 60.0


def _plane_model(normal: np.ndarray, point: np.ndarray) -> mujoco.MjModel:
    """Camera at the origin with optical frame = world frame; a 4 m box face through ``point``
    with outward normal ``-normal`` (``normal`` points away from the camera)."""
    z = normal / np.linalg.norm(normal)
    x = np.cross([0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z], axis=1)
    centre = point + 0.01 * z
    f = lambda v: " ".join(f"{float(a):.17g}" for a in v)  # noqa: E731
    xml = f"""
    <mujoco>
      <statistic extent="2" center="0 0 0"/>
      <visual><global offwidth="{W}" offheight="{H}"/><map znear="0.005" zfar="10"/></visual>
      <worldbody>
        <light pos="0 0 0" dir="0 0 1"/>
        <camera name="cam" pos="0 0 0" quat="{f(QUAT_OPTICAL_MJCAM)}" fovy="{FOVY}"/>
        <geom type="box" size="2 2 0.01" pos="{f(centre)}" quat="{f(matrix_to_quat_wxyz(R))}"/>
      </worldbody>
    </mujoco>"""
    return mujoco.MjModel.from_xml_string(xml)


def _render_depth(model: mujoco.MjModel) -> np.ndarray:
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    with mujoco.Renderer(model, height=H, width=W) as r:
        r.enable_depth_rendering()
        r.update_scene(data, camera="cam")
        return r.render().astype(np.float64)


def _plane_depth(K: np.ndarray, normal: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Analytic z per pixel centre: ``z = (n . p0) / (n . r)``, ``r = K^-1 [u, v, 1]``."""
    u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
    return (normal @ point) / (rays @ normal)


def test_fronto_parallel_plane_gives_constant_z_not_ray_length():
    depth = _render_depth(_plane_model(np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, 0.5])))
    np.testing.assert_allclose(depth, 0.5, atol=2e-5)  # ray length would be 0.5/cos(~37 deg) at the corners


@pytest.mark.parametrize("tilt_axis", ["y", "x"])
def test_tilted_plane_matches_intrinsics_with_pixel_centre_convention(tilt_axis):
    R = rot_y(np.deg2rad(35)) if tilt_axis == "y" else rot_x(np.deg2rad(-45))
    normal, point = R @ np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, 0.6])
    depth = _render_depth(_plane_model(normal, point))
    K = intrinsics_from_fovy(FOVY, W, H)
    np.testing.assert_allclose(K[1, 1], H / 2 / np.tan(np.deg2rad(FOVY / 2)))
    err = np.abs(depth - _plane_depth(K, normal, point))
    assert err.max() < 1e-4, err.max()
    # The other common guess, cx = W/2 (cy = H/2), is off by half a pixel: clearly worse.
    K_half = K.copy()
    K_half[0, 2], K_half[1, 2] = W / 2, H / 2
    err_half = np.abs(depth - _plane_depth(K_half, normal, point))
    assert err_half.max() > 20 * err.max()


def test_scene_depth_of_table_top_matches_stereo_camera_geometry():
    """Stereo-left depth of the table top equals the ray/plane (z = 0) intersection computed from the
    rig pose and K of the recording code, away from objects and the robot."""
    arm, scene = default_arm(), random_scene(seed=2, n_objects=2)
    w, h = 80, 60
    model, index, _ = build_model(arm, scene, w, h)
    data = mujoco.MjData(model)
    data.qpos[index.qpos_adr] = [0.0, 0.4, 1.4, 0.0, 1.2, 0.0]
    mujoco.mj_forward(model, data)
    with SceneRenderer(model, index, w, h) as ren:
        depth = ren.depth(data, index.stereo_left_camera).astype(np.float64)
    K = intrinsics_from_fovy(scene.stereo.fovy_deg, w, h)
    T = scene.stereo.T_world_left
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    rays_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
    rays_world = rays_cam @ T[:3, :3].T
    z_expected = -T[2, 3] / rays_world[..., 2]  # optical z where the ray meets the plane z = 0
    hit = T[:3, 3] + z_expected[..., None] * rays_world
    r_obj = np.linalg.norm(hit[..., :2], axis=-1)
    r_base = np.linalg.norm(hit[..., :2] - scene.T_world_base[:2, 3], axis=-1)
    table = ((z_expected > 0) & (hit[..., 0] > TABLE_X[0] + 0.02) & (hit[..., 0] < TABLE_X[1] - 0.02)
             & (np.abs(hit[..., 1]) < TABLE_Y[1] - 0.02) & (r_obj > OBJECT_AREA_RADIUS + 0.1) & (r_base > 0.3))
    assert table.sum() > 0.3 * w * h
    rel = np.abs(depth[table] - z_expected[table]) / z_expected[table]
    assert np.quantile(rel, 0.98) < 1e-4, np.quantile(rel, 0.98)  # the arm may hide a few pixels

"""MuJoCo rendering of RGB, metric depth and object-label images for one camera at a time.

Depth from ``mujoco.Renderer`` (mujoco >= 3) is already linear: the renderer inverts the
(reversed-Z) OpenGL projection, giving the distance along the camera's viewing axis, i.e. the
optical-frame ``z`` of the surface point, in metres (not the ray length; ``test_sim_camera.py``
checks both a fronto-parallel and tilted planes). Pixels that hit nothing come back at the far
clip plane; they are NaN here.

Headless: set ``MUJOCO_GL=osmesa`` (CPU) or ``MUJOCO_GL=egl`` (GPU) before importing mujoco.
"""
from __future__ import annotations

import mujoco
import numpy as np

from .mjcf import ModelIndex


class SceneRenderer:
    """One offscreen ``mujoco.Renderer`` of ``width x height`` for any camera of the model.

    Use as a context manager (or call :meth:`close`): the GL context is freed explicitly.
    """

    def __init__(self, model: mujoco.MjModel, index: ModelIndex, width: int, height: int) -> None:
        self.model = model
        self.index = index
        self.width, self.height = width, height
        self._renderer = mujoco.Renderer(model, height=height, width=width)
        self._far = float(model.vis.map.zfar * model.stat.extent)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> "SceneRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _render(self, data: mujoco.MjData, camera: int, mode: str) -> np.ndarray:
        r = self._renderer
        if r is None:
            raise RuntimeError("SceneRenderer: used after close()")
        if mode == "depth":
            r.enable_depth_rendering()
        elif mode == "segmentation":
            r.enable_segmentation_rendering()
        else:
            r.disable_depth_rendering()
            r.disable_segmentation_rendering()
        r.update_scene(data, camera=camera)
        return r.render()

    def rgb(self, data: mujoco.MjData, camera: int) -> np.ndarray:
        """Colour image, uint8 (H, W, 3), RGB order, row 0 at the top."""
        return self._render(data, camera, "rgb")

    def depth(self, data: mujoco.MjData, camera: int) -> np.ndarray:
        """Optical-frame z of the visible surface per pixel, float32 (H, W) metres; NaN where nothing
        is hit (depth at or beyond 99.9 % of the far clip distance)."""
        z = self._render(data, camera, "depth")
        z[~(z < 0.999 * self._far)] = np.nan
        return z

    def labels(self, data: mujoco.MjData, camera: int) -> np.ndarray:
        """Object label per pixel, int16 (H, W): ``index.geom_labels[geom]`` for geoms, 0 elsewhere."""
        seg = self._render(data, camera, "segmentation")
        objid, objtype = seg[..., 0], seg[..., 1]
        is_geom = (objtype == int(mujoco.mjtObj.mjOBJ_GEOM)) & (objid >= 0)
        out = np.zeros(objid.shape, dtype=np.int16)
        out[is_geom] = self.index.geom_labels[objid[is_geom]]
        return out

"""Simulated recording speed (``depth-train sim``) in frames per second vs bare MuJoCo rendering.

For 320x240 and 640x480, in the same run:

* baseline: ``mujoco.Renderer`` alone rendering exactly what one recorded frame needs (wrist camera
  RGB + depth + segmentation, stereo-left RGB + depth, stereo-right RGB) for the same scene and
  the same joint positions, nothing else;
* ``sim_record_fps_<W>x<H>``: :func:`depth_training.sim.record.record_episode` rendering and writing
  (sensor model, message serialisation, MCAP bag, ground-truth sidecar), per-frame loop only;
* ``sim_record_total_fps_<W>x<H>``: the same run including scene set-up, trajectory planning and
  closing the files (what a user waits for).

``ratio = value / baseline`` (1.0 = recording costs nothing beyond rendering). Rendering is on the
CPU (``MUJOCO_GL=osmesa``) unless ``MUJOCO_GL=egl`` is set. ``--quick`` renders fewer frames.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "osmesa")
if os.environ["MUJOCO_GL"] in ("osmesa", "egl"):
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

SEED = 0


def _bare_render_fps(cfg) -> float:
    """Frames per second of the renders alone for ``cfg``'s scene, stamps and trajectory."""
    import mujoco

    from depth_training.sim.arm import default_arm
    from depth_training.sim.mjcf import build_model
    from depth_training.sim.record import episode_stamps
    from depth_training.sim.scene import random_scene
    from depth_training.sim.trajectory import plan_trajectory

    arm = default_arm()
    scene = random_scene(cfg.seed, cfg.n_objects, cfg.distractor, cfg.baseline_m)
    img, joints = episode_stamps(cfg)
    traj = plan_trajectory(arm, scene, (joints[-1] - cfg.start_time_ns) / 1e9, cfg.seed)
    model, index, _ = build_model(arm, scene, cfg.width, cfg.height)
    data = mujoco.MjData(model)
    qs = traj.positions((img - cfg.start_time_ns) / 1e9)
    passes = [(index.wrist_camera, "rgb"), (index.wrist_camera, "depth"), (index.wrist_camera, "seg"),
              (index.stereo_left_camera, "rgb"), (index.stereo_left_camera, "depth"), (index.stereo_right_camera, "rgb")]
    with mujoco.Renderer(model, height=cfg.height, width=cfg.width) as r:
        t0 = time.perf_counter()
        for q in qs:
            data.qpos[index.qpos_adr] = q
            mujoco.mj_forward(model, data)
            for cam, mode in passes:
                if mode == "depth":
                    r.enable_depth_rendering()
                elif mode == "seg":
                    r.enable_segmentation_rendering()
                else:
                    r.disable_depth_rendering()
                    r.disable_segmentation_rendering()
                r.update_scene(data, camera=cam)
                r.render()
        return len(qs) / (time.perf_counter() - t0)


def run(quick: bool) -> list[dict]:
    from depth_training.sim.record import RecordingConfig, record_episode

    frames = 12 if quick else 40
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_sim_"))
    try:
        for width, height in ((320, 240), (640, 480)):
            cfg = RecordingConfig(out=tmp / f"ep_{width}x{height}", frames=frames, width=width, height=height,
                                  seed=SEED, n_objects=3)
            base = _bare_render_fps(cfg)
            result = record_episode(cfg)
            if result.topic_counts["/camera/color/image_raw"] != frames:
                raise RuntimeError(f"recorded {result.topic_counts['/camera/color/image_raw']} of {frames} frames")
            loop_fps = frames / result.render_write_s
            size = f"{width}x{height}"
            rows.append({"name": f"sim_record_fps_{size}", "value": round(loop_fps, 2), "unit": "frames/s",
                         "baseline": round(base, 2), "ratio": round(loop_fps / base, 3)})
            rows.append({"name": f"sim_record_total_fps_{size}", "value": round(result.fps, 2), "unit": "frames/s",
                         "baseline": round(base, 2), "ratio": round(result.fps / base, 3)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv[1:]):
        print(f"{row['name']:<34} {row['value']:>10} {row['unit']:<11} baseline {row['baseline']:>10}  "
              f"ratio {row['ratio']}")

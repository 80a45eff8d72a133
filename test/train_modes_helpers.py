"""Shared data and settings of the ``test_train_modes_*.py`` tests.

* :func:`sim_bags`: two tiny simulator recordings (96x64, 40 frames at 4 Hz, seeds 1 and 2),
  recorded once per test session (both at once, in two processes) under pytest's session
  temporary directory and reused by every module.
* :func:`write_tiny_bag`: a hand-made 64x64 recording (random texture, planar depth) whose
  content the bad-input tests control: missing topics, a size change, invalid depth.
* :data:`FAST`: the options that keep a CPU run to seconds (mobile encoder, small decoder,
  one thread, 64x96 images, no loader workers, fixed seed).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from depth_nodes.geometry.camera import PinholeCamera

SIM_FRAMES, SIM_W, SIM_H, SIM_RATE = 40, 96, 64, 4.0

FAST = ["--height", "64", "--width", "96", "--encoder", "mobile", "--decoder-channels", "8", "16", "32", "64", "128",
        "--batch-size", "4", "--epoch-samples", "64", "--workers", "0", "--threads", "1", "--lr", "1e-3",
        "--lr-drop-at", "1", "--max-depth", "10", "--image-every", "0", "--log-every", "10", "--seed", "0"]


def sim_bags(tmp_path_factory) -> tuple[Path, Path]:
    """The two session recordings ``(a, b)``; each has a ``.groundtruth.npz`` sidecar next to it."""
    root = tmp_path_factory.getbasetemp() / "train_modes_sim"
    bags = (root / "a", root / "b")
    if all((b / "metadata.yaml").is_file() and b.with_name(b.name + ".groundtruth.npz").is_file() for b in bags):
        return bags
    root.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "depth_training.cli", "sim", "--out", str(bag), "--frames",
                               str(SIM_FRAMES), "--width", str(SIM_W), "--height", str(SIM_H), "--rate", str(SIM_RATE),
                               "--seed", str(seed), "--quiet"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for bag, seed in zip(bags, (1, 2))]
    for p in procs:
        out = p.communicate(timeout=300)[0]
        assert p.returncode == 0, out
    return bags


def history(out: Path) -> list[dict]:
    """``<out>/validation.jsonl`` records."""
    return [json.loads(x) for x in (out / "validation.jsonl").read_text().splitlines()]


def first_and_last(out: Path) -> tuple[dict, dict]:
    """Validation before training (step 0) and at the last step."""
    h = history(out)
    assert h[0]["step"] == 0, h
    return h[0], h[-1]


TINY_K = np.array([[50.0, 0.0, 31.5], [0.0, 50.0, 31.5], [0.0, 0.0, 1.0]])


def write_tiny_bag(path: Path, frames: int = 12, *, width: int = 64, height: int = 64, depth: bool = True,
                   stereo: bool = False, invalid_depth_frames: tuple[int, ...] = (), resize_from: int | None = None,
                   right_height: int | None = None, seed: int = 0, camera: str = "/camera") -> Path:
    """A small rosbag2 with ``/camera/color/image_raw`` (+ camera_info), optionally the registered depth
    ``/camera/depth/image_rect_raw`` (16UC1) and a stereo pair (``/stereo/{left,right}/...``, baseline 0.05 m).

    Args:
        invalid_depth_frames: frames whose depth image is all zeros (no reading).
        resize_from: from this frame on, the colour images and their camera_info are ``width x (height - 16)``.
        right_height: the right stereo images (and camera_info) have this height instead.
        camera: the namespace of the colour and depth topics (``/camera/color/image_raw`` ...).
    """
    from depth_training.bags.writer import BagWriter

    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (height // 4, width // 4 + frames, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(texture, 4, axis=0), 4, axis=1)
    t0 = 1_700_000_000_000_000_000
    cam = PinholeCamera(width, height, TINY_K)
    with BagWriter(path) as w:
        for i in range(frames):
            stamp = t0 + i * 100_000_000
            rgb = np.ascontiguousarray(texture[:, i * 2: i * 2 + width])
            c = cam
            if resize_from is not None and i >= resize_from:
                rgb = np.ascontiguousarray(rgb[: height - 16])
                c = PinholeCamera(width, height - 16, TINY_K)
            w.image(f"{camera}/color/image_raw", stamp, rgb, "rgb8", "camera_color_optical_frame")
            w.camera_info(f"{camera}/color/camera_info", stamp, c, "camera_color_optical_frame")
            if depth:
                mm = np.full((height, width), 0 if i in invalid_depth_frames else 1000, np.uint16)
                mm += (np.arange(width, dtype=np.uint16) * 5)[None, :] * (mm > 0)
                w.image(f"{camera}/depth/image_rect_raw", stamp, mm, "16UC1", "camera_color_optical_frame")
            if stereo:
                P_right = np.hstack([TINY_K, [[-TINY_K[0, 0] * 0.05], [0.0], [0.0]]])
                w.image("/stereo/left/image_rect", stamp, rgb, "rgb8", "stereo_left_optical_frame")
                w.camera_info("/stereo/left/camera_info", stamp, c, "stereo_left_optical_frame")
                rh = right_height or c.height
                w.image("/stereo/right/image_rect", stamp, np.ascontiguousarray(rgb[:rh]), "rgb8",
                        "stereo_right_optical_frame")
                w.camera_info("/stereo/right/camera_info", stamp, PinholeCamera(c.width, rh, TINY_K, P=P_right),
                              "stereo_right_optical_frame")
    return path

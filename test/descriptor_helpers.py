"""Shared recordings of the descriptor tests (``test_correspondence*.py``, ``test_descriptors_*.py``).

:func:`descriptor_bags`: three tiny simulator episodes (96x64, 16 frames at 4 Hz), recorded once per
test session under pytest's base temporary directory: ``a`` (seed 5, two objects), ``b`` (seed 6,
one object) and ``d`` (seed 7, two objects and a moving distractor). Each has its
``.groundtruth.npz`` next to it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FRAMES, W, H, RATE = 16, 96, 64, 4.0


def descriptor_bags(tmp_path_factory) -> dict[str, Path]:
    from depth_training.sim.record import RecordingConfig, record_episode

    # DEPTH_NODES_SIM_CACHE: a folder that keeps the episodes between pytest runs (make mutation runs
    # the tests once per mutant; the recordings do not depend on the code under mutation)
    cache = os.environ.get("DEPTH_NODES_SIM_CACHE")
    root = Path(cache) if cache else tmp_path_factory.getbasetemp() / "descriptor_sim"
    spec = {"a": (5, 2, False), "b": (6, 1, False), "d": (7, 2, True)}
    out = {k: root / k for k in spec}
    root.mkdir(parents=True, exist_ok=True)
    for k, (seed, n, dis) in spec.items():
        if not (out[k] / "metadata.yaml").is_file():
            record_episode(RecordingConfig(out=out[k], frames=FRAMES, width=W, height=H, rate_hz=RATE, seed=seed,
                                           n_objects=n, distractor=dis))
    return out


def plan(bag: Path, pose: str = "tf"):
    from depth_training.bags import TopicConfig
    from depth_training.modes.descriptor_scenes import plan_descriptor_recording

    return plan_descriptor_recording(bag, TopicConfig(), pose, None)


def scene(bag: Path, cache: Path, pose: str = "tf", width: int = W, height: int = H, **pair_kw):
    from depth_training.correspondence.pairs import PairRules
    from depth_training.correspondence.scenes import MaskRules, build_scene
    from depth_training.modes.recordings import DecodeOptions

    return build_scene(plan(bag, pose), DecodeOptions(width, height), cache, MaskRules(), PairRules(**pair_kw))


def groundtruth(bag: Path):
    from depth_training.sim.groundtruth import load_groundtruth

    return load_groundtruth(bag.with_name(bag.name + ".groundtruth.npz"))


def scaled_K(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Pixel-centre convention resize of K (as :meth:`PinholeCamera.resized`)."""
    S = np.array([[sx, 0, sx / 2 - 0.5], [0, sy, sy / 2 - 0.5], [0, 0, 1]])
    return S @ K

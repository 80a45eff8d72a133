"""Baselines, evaluated in the same run and by the same protocol as the model.

* ``untrained``: a freshly initialised network of the model's architecture (same encoder, decoder
  widths, input size and depth range), weights drawn with ``torch.manual_seed(seed)`` (default 0),
  run through the same :class:`~.predict.NetworkPredictor`. It shows what the architecture and the
  alignment give without training: a model should beat it by a wide margin.
* ``constant``: the same value ``c`` at every pixel of every frame, with ``c`` the median of all
  evaluated ground-truth pixels of the evaluated set (pooled over frames; finite and inside
  ``(min_depth, max_depth)``; computed by :func:`constant_depth`). What the alignment does with it:

  - ``"none"``: ``c`` metres everywhere - the best "one number for the whole set" in the sense of
    the median, knowing the test set (an optimistic constant);
  - ``"median"``: any constant is rescaled per image by ``median(d*) / c``, so it becomes the
    per-image median of the ground truth;
  - ``"ssi_disparity"``: the prediction is the disparity ``1 / c``; a constant has no spread, so
    the least-squares fit gives ``s = 0, t = mean(1 / d*)`` and the prediction becomes the
    per-image harmonic mean of the ground-truth depth ``1 / mean(1 / d*)``.

  A model that does not beat it has not learnt where things are in the image.

Public API:
    BASELINES = ("untrained", "constant")
    untrained_network(config, seed=0) -> DepthNet (eval mode)
    constant_depth(gt (N,H,W), min_depth, max_depth) -> float
    ConstantPredictor(value, alignment): __call__(rgb (B,H,W,3)) -> (B,H,W) float32
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from depth_training.models.artifact import build_from_config

__all__ = ["BASELINES", "untrained_network", "constant_depth", "ConstantPredictor"]

BASELINES = ("untrained", "constant")


def untrained_network(config: Mapping[str, Any], seed: int = 0) -> torch.nn.Module:
    """A fresh :class:`~depth_training.models.DepthNet` as ``config`` describes, initialised under ``seed``.

    The global torch RNG state is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_from_config(config)
    return net.eval()


def constant_depth(gt: np.ndarray, min_depth: float, max_depth: float) -> float:
    """Median of the evaluated ground-truth pixels: ``median{d* : finite, min_depth < d* < max_depth}``.

    Args:
        gt: ``(N, H, W)`` (or any shape) depth in metres.

    Returns:
        the median (numpy's: mean of the two middle values for an even count); NaN without valid pixels.
    """
    g = np.asarray(gt, dtype=np.float64)
    valid = g[np.isfinite(g) & (g > min_depth) & (g < max_depth)]
    return float(np.median(valid)) if valid.size else float("nan")


class ConstantPredictor:
    """Predicts ``value`` metres everywhere: depth ``value``, or disparity ``1 / value`` for ``"ssi_disparity"``."""

    def __init__(self, value: float, alignment: str):
        if not value > 0:
            raise ValueError(f"constant baseline: the value must be a positive depth, got {value}")
        self.value, self.alignment = float(value), alignment

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        v = 1.0 / self.value if self.alignment == "ssi_disparity" else self.value
        return np.full(np.asarray(rgb).shape[:3], v, dtype=np.float32)

"""``--save-predictions``: one PNG per evaluated frame, ``colour | ground truth | prediction``.

Depth is shown as inverse depth with the Turbo colormap (near = red, far = blue), each panel scaled
between its own 5th and 95th percentiles (:func:`depth_training.engine.colorize.colorize_depth`), so
a relative prediction is comparable by eye with the metric ground truth. Pixels without ground truth
are black in the middle panel. A disparity prediction (``"ssi_disparity"``) is shown as ``1 / disp``.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from depth_training.engine.colorize import colorize_depth

__all__ = ["preview_image", "PreviewWriter"]


def preview_image(rgb: np.ndarray, gt: np.ndarray, pred: np.ndarray, is_disparity: bool = False) -> np.ndarray:
    """``(H, W, 3)`` uint8, ``(H, W)`` depth, ``(H, W)`` prediction -> ``(H, 3W, 3)`` uint8 RGB."""
    with np.errstate(divide="ignore"):
        shown = 1.0 / np.asarray(pred, np.float32) if is_disparity else pred
    return np.concatenate([rgb, colorize_depth(gt), colorize_depth(shown)], axis=1)


class PreviewWriter:
    """A batch hook for :func:`~.evaluate.evaluate_predictor` writing ``DIR/frame_000123.png`` per frame."""

    def __init__(self, directory: str | Path, is_disparity: bool = False):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.is_disparity = is_disparity
        self.written: list[Path] = []

    def __call__(self, indices: np.ndarray, rgb: np.ndarray, gt: np.ndarray, pred: np.ndarray) -> None:
        for i, c, g, p in zip(indices, rgb, gt, pred):
            path = self.directory / f"frame_{int(i):06d}.png"
            if not cv2.imwrite(str(path), preview_image(c, g, p, self.is_disparity)[:, :, ::-1]):
                raise OSError(f"{path}: cannot write PNG")
            self.written.append(path)

"""Backend interfaces: what a pipeline needs from a matcher or a network.

A *stereo matcher* turns a rectified pair into a disparity map. The classical OpenCV matcher
(:mod:`depth_nodes.backends.sgbm`) and the learned stereo networks (ONNX Runtime / TensorRT
engines, later) implement the same interface, so the stereo pipeline and node do not change
when the matcher does.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["StereoMatcher", "BackendError", "MissingRuntimeError"]


class BackendError(RuntimeError):
    """A backend cannot be created or run (bad parameters, missing engine file, runtime failure)."""


class MissingRuntimeError(BackendError):
    """The backend's Python package is not installed; the message names it and the install command."""


@runtime_checkable
class StereoMatcher(Protocol):
    """Rectified stereo pair -> left-image disparity.

    ``compute(left, right)`` takes two ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 RGB images of
    the same size and returns ``(H, W)`` float32 disparity in pixels of the left image
    (``u_right = u_left - d``), NaN where there is no valid match.
    """

    name: str

    def compute(self, left: np.ndarray, right: np.ndarray) -> np.ndarray: ...

    @property
    def disparity_bounds(self) -> tuple[float, float]:
        """``(min_disparity, max_disparity)`` the matcher can report, pixels."""
        ...

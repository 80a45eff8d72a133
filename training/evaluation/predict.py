"""A depth network's predictions at the ground truth's resolution, in the quantity the metrics align.

For a batch of colour images ``(B, H, W, 3)`` uint8 and a network trained at ``h x w``:

1. ``x = resize(rgb / 255, (h, w))``: bilinear, anti-aliased when shrinking -> ``(B, 3, h, w)``;
2. ``disp = net(x)[0]``: the scale-0 sigmoid disparity ``(B, 1, h, w)`` in ``(0, 1)``;
3. ``disp_full = resize(disp, (H, W))``: bilinear (``align_corners=False``), as Monodepth2's
   ``evaluate_depth`` resizes the network's disparity to the ground truth before inverting it;
4. the prediction handed to :func:`depth_training.metrics.compute_depth_metrics`:
   ``disp_full`` itself for ``alignment="ssi_disparity"`` (relative inverse depth), otherwise the
   depth ``disp_to_depth(disp_full, min_depth, max_depth)[1]`` with the model's depth range:
   ``depth = 1 / (1/max_depth + (1/min_depth - 1/max_depth) disp_full)``.

Public API:
    images_to_tensor(rgb (B,H,W,3) uint8, height, width, device) -> (B,3,h,w) float32 in [0, 1]
    resize_to(x (B,1,h,w), height, width) -> (B,H,W)
    disparity_to_prediction(disp (B,H,W), alignment, min_depth, max_depth) -> (B,H,W)
    NetworkPredictor(net, config, alignment, device): __call__(rgb (B,H,W,3) uint8) -> (B,H,W) float32 numpy
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from depth_training.geometry_torch import disp_to_depth

__all__ = ["images_to_tensor", "resize_to", "disparity_to_prediction", "NetworkPredictor"]


def images_to_tensor(rgb: np.ndarray, height: int, width: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 RGB -> ``(B, 3, height, width)`` float32 in ``[0, 1]`` (bilinear, anti-aliased)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb: expected (B, H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    x = torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-2:] != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp_(0.0, 1.0)


def resize_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(B, 1, h, w)`` -> ``(B, height, width)`` by bilinear interpolation (``align_corners=False``)."""
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"x: expected (B, 1, h, w), got {tuple(x.shape)}")
    if x.shape[-2:] != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    return x[:, 0]


def disparity_to_prediction(disp: torch.Tensor, alignment: str, min_depth: float, max_depth: float) -> torch.Tensor:
    """Step 4 of the module docstring: ``disp`` for ``"ssi_disparity"``, else ``disp_to_depth(disp)[1]``."""
    if alignment == "ssi_disparity":
        return disp
    return disp_to_depth(disp, min_depth, max_depth)[1]


class NetworkPredictor:
    """Predictions of a :class:`~depth_training.models.DepthNet` for :func:`~.evaluate.evaluate_predictor`.

    Args:
        net: the network (moved to ``device``, put in eval mode).
        config: its model config (``height``, ``width``, ``min_depth``, ``max_depth``).
        alignment: the evaluation alignment (decides depth or disparity, see module docstring).
    """

    def __init__(self, net: torch.nn.Module, config: Mapping[str, Any], alignment: str,
                 device: str | torch.device = "cpu"):
        self.net = net.to(device).eval()
        self.height, self.width = int(config["height"]), int(config["width"])
        self.min_depth, self.max_depth = float(config["min_depth"]), float(config["max_depth"])
        self.alignment, self.device = alignment, device

    @torch.inference_mode()
    def disparity(self, rgb: np.ndarray) -> torch.Tensor:
        """Steps 1-3: ``(B, H, W, 3)`` uint8 -> ``(B, H, W)`` sigmoid disparity at the input's resolution."""
        x = images_to_tensor(rgb, self.height, self.width, self.device)
        disp = self.net(x)[0]
        return resize_to(disp.float(), rgb.shape[1], rgb.shape[2])

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """``(B, H, W, 3)`` uint8 -> ``(B, H, W)`` float32 prediction (depth or disparity, see module docstring)."""
        disp = self.disparity(rgb)
        pred = disparity_to_prediction(disp, self.alignment, self.min_depth, self.max_depth)
        return pred.cpu().numpy().astype(np.float32, copy=False)

"""What a real colour camera does to the rendered image: exposure, gamma, defocus, noise.

Applied to colour images only (depth stays ground truth). For ``x`` in [0, 1] (rendered ``rgb/255``):

``y = clip((g x)^(1/gamma) * conv G_sigma + n, 0, 1)``, ``n ~ N(0, sigma_r^2 + sigma_s^2 y)`` per pixel and
channel (read noise ``sigma_r``, shot noise ``sigma_s^2 y``), rounded back to uint8.
"""
from __future__ import annotations

import cv2
import numpy as np


def apply_camera_effects(rgb: np.ndarray, rng: np.random.Generator, exposure: float = 1.0, gamma: float = 1.0,
                         blur_sigma: float = 0.0, noise_sigma: float = 0.0, shot_noise: float = 0.0) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (H, W, 3) by the formula in the module docstring; identity with the defaults.

    ``exposure`` g > 0, ``gamma`` > 0, ``blur_sigma`` in pixels (Gaussian, 0 = none), ``noise_sigma`` and
    ``shot_noise`` as fractions of full scale (0 = none). Noise is drawn from ``rng``.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"apply_camera_effects: expected uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if exposure <= 0 or gamma <= 0 or blur_sigma < 0 or noise_sigma < 0 or shot_noise < 0:
        raise ValueError(f"apply_camera_effects: bad parameters exposure={exposure} gamma={gamma} "
                         f"blur={blur_sigma} noise={noise_sigma} shot={shot_noise}")
    x = rgb.astype(np.float32) / 255.0
    x = np.clip(x * np.float32(exposure), 0.0, 1.0) ** np.float32(1.0 / gamma)
    if blur_sigma > 0:
        x = cv2.GaussianBlur(x, (0, 0), sigmaX=float(blur_sigma), borderType=cv2.BORDER_REFLECT)
    if noise_sigma > 0 or shot_noise > 0:
        std = np.sqrt(np.float32(noise_sigma) ** 2 + np.float32(shot_noise) ** 2 * x)
        x = x + std * rng.standard_normal(x.shape, dtype=np.float32)
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)

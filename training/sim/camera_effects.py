"""What a real colour camera does to the rendered image: exposure, vignetting, gamma, defocus, noise, JPEG.

Applied to colour images only (depth stays ground truth). For ``x`` in [0, 1] (rendered ``rgb/255``):

``y = clip(clip(g x (1 - v r^2), 0, 1)^(1/gamma) * conv G_sigma + n, 0, 1)``, with ``r`` the distance from
the image centre over the half diagonal, ``n ~ N(0, sigma_r^2 + sigma_s^2 y)`` per pixel and channel (read
noise ``sigma_r``, shot noise ``sigma_s^2 y``), rounded back to uint8, then optionally JPEG-compressed
and decoded at quality ``q``.
"""
from __future__ import annotations

import cv2
import numpy as np


def apply_camera_effects(rgb: np.ndarray, rng: np.random.Generator, exposure: float = 1.0, gamma: float = 1.0,
                         blur_sigma: float = 0.0, noise_sigma: float = 0.0, shot_noise: float = 0.0,
                         vignette: float = 0.0, jpeg_quality: int = 0) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (H, W, 3) by the formula in the module docstring; identity with the defaults.

    ``exposure`` g > 0, ``gamma`` > 0, ``blur_sigma`` in pixels (Gaussian, 0 = none), ``noise_sigma`` and
    ``shot_noise`` as fractions of full scale (0 = none), ``vignette`` v in [0, 1) (0 = none),
    ``jpeg_quality`` 1..100 (0 = no JPEG). Noise is drawn from ``rng``.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"apply_camera_effects: expected uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if (exposure <= 0 or gamma <= 0 or blur_sigma < 0 or noise_sigma < 0 or shot_noise < 0
            or not 0 <= vignette < 1 or not 0 <= jpeg_quality <= 100):
        raise ValueError(f"apply_camera_effects: bad parameters exposure={exposure} gamma={gamma} "
                         f"blur={blur_sigma} noise={noise_sigma} shot={shot_noise} vignette={vignette} "
                         f"jpeg_quality={jpeg_quality}")
    x = rgb.astype(np.float32) / 255.0
    gain = np.float32(exposure)
    if vignette > 0:
        h, w = x.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - (w - 1) / 2) ** 2 + (yy - (h - 1) / 2) ** 2) / (((w - 1) / 2) ** 2 + ((h - 1) / 2) ** 2)
        gain = gain * (1.0 - np.float32(vignette) * r2)[..., None]
    x = np.clip(x * gain, 0.0, 1.0) ** np.float32(1.0 / gamma)
    if blur_sigma > 0:
        x = cv2.GaussianBlur(x, (0, 0), sigmaX=float(blur_sigma), borderType=cv2.BORDER_REFLECT)
    if noise_sigma > 0 or shot_noise > 0:
        std = np.sqrt(np.float32(noise_sigma) ** 2 + np.float32(shot_noise) ** 2 * x)
        x = x + std * rng.standard_normal(x.shape, dtype=np.float32)
    out = np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
    if jpeg_quality:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)  # channel order is irrelevant: encoded and decoded alike
    return out

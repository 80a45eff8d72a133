"""Batched, differentiable camera maths for training (torch).

The torch twin of :mod:`depth_nodes.geometry.camera` (numpy); ``test/test_warp.py`` holds the two
against each other. Same conventions:

* Pixel ``(u, v)``: integer values at pixel centres, ``u`` right, ``v`` down; the image covers
  ``u in [-0.5, W - 0.5]``, ``v in [-0.5, H - 0.5]``.
* Optical frame: ``x`` right, ``y`` down, ``z`` forward. ``X = z K^-1 [u, v, 1]^T``.
* Resizing by ``s = W'/W`` maps ``u' + 0.5 = s (u + 0.5)``: ``fx' = s fx``, ``cx' = s (cx + 0.5) - 0.5``.

Sampling convention (one, used everywhere): :func:`torch.nn.functional.grid_sample` with
``align_corners=False`` and the pixel-centre normalisation

    x_norm = (2 u + 1) / W - 1,        y_norm = (2 v + 1) / H - 1,

so ``x_norm = -1`` / ``+1`` are the outer edges of the first / last pixel and pixel centre ``u``
samples exactly pixel ``u``. (Monodepth2 normalises with ``2u/(W-1) - 1``, the ``align_corners=True``
formula, but samples with ``align_corners=False``: a position error that grows to half a pixel at the
image border. ``test_warp.py`` shows ours is exact to < 0.05 px and theirs is not.)

Shapes: ``B`` batch, ``H x W`` image; intrinsics ``K`` are ``(3, 3)`` or ``(B, 3, 3)``, poses ``T`` are
``(4, 4)`` or ``(B, 4, 4)`` (broadcast over the batch, so any batch size works, the last smaller one
included). A pose ``T_a_to_b`` maps points expressed in camera ``a`` to camera ``b``: ``X_b = R X_a + t``.

Public API:
    pixel_grid(height, width, dtype, device) -> (3, H, W)
    backproject(depth B1HW, K_inv) -> points B3HW
    transform_points(points B3HW, T) -> B3HW
    project(points B3HW, K, T=None) -> (uv B2HW, z B1HW)
    pixels_to_grid(uv B2HW, height, width) -> BHW2 (grid_sample grid)
    sample_image(image BCHW, uv B2HW, padding_mode) -> (sampled BCHW, inside B1HW bool)
    warp(image_src, depth_tgt, T_tgt_to_src, K, K_inv=None) -> (warped BCHW, valid B1HW bool)
    disp_to_depth(disp, min_depth=0.1, max_depth=100.0) -> (scaled_disp, depth)
    depth_to_disp(depth, min_depth=0.1, max_depth=100.0) -> sigmoid-range disp (inverse of the above)
    resize_intrinsics(K, sx, sy) ; pyramid_intrinsics(K, num_scales=4) -> list of K per scale
    axis_angle_to_matrix(axis_angle B3) -> B33   (Rodrigues)
    pose_vec_to_matrix(axis_angle B3, translation B3, invert=False) -> B44
    stereo_transform(baseline, target="left") -> (4, 4) T_target_to_other for a rectified pair
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "pixel_grid",
    "backproject",
    "transform_points",
    "project",
    "pixels_to_grid",
    "sample_image",
    "warp",
    "disp_to_depth",
    "depth_to_disp",
    "resize_intrinsics",
    "pyramid_intrinsics",
    "axis_angle_to_matrix",
    "pose_vec_to_matrix",
    "stereo_transform",
]

# grid_sample convention used everywhere in depth_training (see module docstring).
ALIGN_CORNERS = False


def _batched(matrix: torch.Tensor, n: int) -> torch.Tensor:
    """``(n, n)`` or ``(B, n, n)`` -> ``(B or 1, n, n)``."""
    if matrix.dim() == 2:
        matrix = matrix.unsqueeze(0)
    if matrix.dim() != 3 or matrix.shape[-2:] != (n, n):
        raise ValueError(f"expected a ({n}, {n}) or (B, {n}, {n}) matrix, got {tuple(matrix.shape)}")
    return matrix


def pixel_grid(height: int, width: int, dtype: torch.dtype = torch.float32,
               device: torch.device | str | None = None) -> torch.Tensor:
    """Homogeneous pixel-centre coordinates ``[u, v, 1]`` for every pixel.

    Returns:
        ``(3, H, W)``: ``out[:, v, u] = (u, v, 1)``.
    """
    v, u = torch.meshgrid(torch.arange(height, dtype=dtype, device=device),
                          torch.arange(width, dtype=dtype, device=device), indexing="ij")
    return torch.stack([u, v, torch.ones_like(u)], dim=0)


def backproject(depth: torch.Tensor, K_inv: torch.Tensor) -> torch.Tensor:
    """Lift every pixel to 3D: ``X(u, v) = depth(u, v) * K^-1 [u, v, 1]^T``.

    Args:
        depth: ``(B, 1, H, W)`` z-depth.
        K_inv: ``(3, 3)`` or ``(B, 3, 3)`` inverse intrinsics.

    Returns:
        ``(B, 3, H, W)`` points in the camera's optical frame.
    """
    b, _, h, w = depth.shape
    K_inv = _batched(K_inv, 3).to(device=depth.device, dtype=depth.dtype)
    rays = torch.matmul(K_inv, pixel_grid(h, w, depth.dtype, depth.device).reshape(1, 3, h * w))
    return rays.reshape(-1, 3, h, w) * depth


def transform_points(points: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """Rigid transform ``X' = R X + t`` of a point image.

    Args:
        points: ``(B, 3, H, W)``.
        T: ``(4, 4)`` or ``(B, 4, 4)``.

    Returns:
        ``(B, 3, H, W)``.
    """
    b, _, h, w = points.shape
    T = _batched(T, 4).to(device=points.device, dtype=points.dtype)
    flat = points.reshape(b, 3, h * w)
    out = torch.matmul(T[:, :3, :3], flat) + T[:, :3, 3:]
    return out.reshape(b, 3, h, w)


def project(points: torch.Tensor, K: torch.Tensor, T: torch.Tensor | None = None,
            eps: float = 1e-7) -> tuple[torch.Tensor, torch.Tensor]:
    """Project points (optionally moved by ``T`` first) to pixels: ``[u, v]^T = (K X')_{xy} / z'``.

    Args:
        points: ``(B, 3, H, W)`` in the source camera frame (or the frame ``T`` maps from).
        K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics of the camera projected into.
        T: optional ``(4, 4)`` / ``(B, 4, 4)`` pose applied before projecting.
        eps: ``|z|`` is clamped to at least ``eps`` (keeping its sign) to avoid division by zero;
            callers mask ``z <= 0`` with the returned ``z``.

    Returns:
        ``uv``: ``(B, 2, H, W)`` pixel coordinates (pixel-centre convention).
        ``z``: ``(B, 1, H, W)`` depth in the projecting camera (``<= 0``: behind it).
    """
    if T is not None:
        points = transform_points(points, T)
    b, _, h, w = points.shape
    K = _batched(K, 3).to(device=points.device, dtype=points.dtype)
    pix = torch.matmul(K, points.reshape(b, 3, h * w)).reshape(b, 3, h, w)
    z = pix[:, 2:3]
    z_safe = torch.where(z >= 0, z.clamp(min=eps), z.clamp(max=-eps))
    return pix[:, :2] / z_safe, points[:, 2:3]


def pixels_to_grid(uv: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pixel coordinates -> ``grid_sample`` grid (``align_corners=False``).

    ``x_norm = (2u + 1)/W - 1``, ``y_norm = (2v + 1)/H - 1``.

    Args:
        uv: ``(B, 2, H', W')`` pixel coordinates into an ``height x width`` image.

    Returns:
        ``(B, H', W', 2)`` normalised grid.
    """
    x = (2.0 * uv[:, 0] + 1.0) / width - 1.0
    y = (2.0 * uv[:, 1] + 1.0) / height - 1.0
    return torch.stack([x, y], dim=-1)


def sample_image(image: torch.Tensor, uv: torch.Tensor,
                 padding_mode: str = "border") -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinearly sample ``image`` at pixel coordinates ``uv`` (pixel-centre convention).

    Args:
        image: ``(B, C, H, W)``.
        uv: ``(B, 2, H', W')``.
        padding_mode: ``grid_sample`` padding outside the image (``"border"`` as in Monodepth2).

    Returns:
        ``sampled``: ``(B, C, H', W')``;
        ``inside``: ``(B, 1, H', W')`` bool, the sample lies on the image
        (``-0.5 <= u <= W - 0.5`` and ``-0.5 <= v <= H - 0.5``; NaN coordinates are outside).
    """
    h, w = image.shape[-2:]
    grid = pixels_to_grid(uv, h, w)
    sampled = F.grid_sample(image, grid, mode="bilinear", padding_mode=padding_mode,
                            align_corners=ALIGN_CORNERS)
    u, v = uv[:, 0:1], uv[:, 1:2]
    inside = (u >= -0.5) & (u <= w - 0.5) & (v >= -0.5) & (v <= h - 0.5)
    return sampled, inside


def warp(image_src: torch.Tensor, depth_tgt: torch.Tensor, T_tgt_to_src: torch.Tensor,
         K: torch.Tensor, K_inv: torch.Tensor | None = None,
         padding_mode: str = "border") -> tuple[torch.Tensor, torch.Tensor]:
    """Synthesise the target view from a source image (inverse warping, differentiable).

    For every target pixel ``p``: ``X = D_t(p) K^-1 p``, ``p_s ~ K (R X + t)``, and
    ``warped(p) = I_s<p_s>`` (bilinear). Both images share the intrinsics ``K``.

    Args:
        image_src: ``(B, C, H, W)`` source image.
        depth_tgt: ``(B, 1, H, W)`` target depth (same ``H x W``).
        T_tgt_to_src: ``(4, 4)`` or ``(B, 4, 4)``, maps target-camera points to the source camera.
        K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics at this resolution.
        K_inv: optional precomputed inverse of ``K``.
        padding_mode: ``grid_sample`` padding for samples off the image.

    Returns:
        ``warped``: ``(B, C, H, W)``;
        ``valid``: ``(B, 1, H, W)`` bool: the point is in front of the source camera and projects
        onto the source image.
    """
    if depth_tgt.shape[-2:] != image_src.shape[-2:]:
        raise ValueError(f"depth {tuple(depth_tgt.shape)} and image {tuple(image_src.shape)} sizes differ")
    if K_inv is None:
        K_inv = torch.linalg.inv(K)
    points = backproject(depth_tgt, K_inv)
    uv, z = project(points, K, T_tgt_to_src)
    warped, inside = sample_image(image_src, uv, padding_mode)
    return warped, inside & (z > 0)


def disp_to_depth(disp: torch.Tensor, min_depth: float = 0.1,
                  max_depth: float = 100.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Sigmoid network output -> depth (Monodepth2).

    ``scaled_disp = 1/max_depth + (1/min_depth - 1/max_depth) * disp``, ``depth = 1 / scaled_disp``,
    so ``disp in [0, 1]`` maps to ``depth in [min_depth, max_depth]``.

    Returns:
        ``(scaled_disp, depth)``, both shaped like ``disp``.
    """
    min_disp, max_disp = 1.0 / max_depth, 1.0 / min_depth
    scaled = min_disp + (max_disp - min_disp) * disp
    return scaled, 1.0 / scaled


def depth_to_disp(depth: torch.Tensor, min_depth: float = 0.1, max_depth: float = 100.0) -> torch.Tensor:
    """Inverse of :func:`disp_to_depth`: ``disp = (1/depth - 1/max_depth) / (1/min_depth - 1/max_depth)``."""
    min_disp, max_disp = 1.0 / max_depth, 1.0 / min_depth
    return (1.0 / depth - min_disp) / (max_disp - min_disp)


def resize_intrinsics(K: torch.Tensor, sx: float, sy: float) -> torch.Tensor:
    """Intrinsics of an image resized by ``sx = W'/W``, ``sy = H'/H`` (pixel-centre convention).

    ``fx' = sx fx``, ``cx' = sx (cx + 0.5) - 0.5`` (same for y), i.e. ``K' = S K`` with
    ``S = [[sx, 0, sx/2 - 1/2], [0, sy, sy/2 - 1/2], [0, 0, 1]]``.

    Args:
        K: ``(..., 3, 3)``.

    Returns:
        ``(..., 3, 3)``.
    """
    S = torch.tensor([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]],
                     dtype=K.dtype, device=K.device)
    return torch.matmul(S, K)


def pyramid_intrinsics(K: torch.Tensor, num_scales: int = 4) -> list[torch.Tensor]:
    """Intrinsics for pyramid scales ``s = 0 .. num_scales-1`` (image size divided by ``2^s``).

    Exact when ``H`` and ``W`` are divisible by ``2^(num_scales-1)`` (the network's inputs are
    multiples of 32).
    """
    return [resize_intrinsics(K, 0.5 ** s, 0.5 ** s) for s in range(num_scales)]


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: rotation vector ``r = theta * a`` (``|a| = 1``) -> rotation matrix.

    ``R = I + A [r]_x + B [r]_x^2`` with ``A = sin(theta)/theta``, ``B = (1 - cos(theta))/theta^2``
    (Taylor series ``A ~ 1 - theta^2/6``, ``B ~ 1/2 - theta^2/24`` below ``theta = 1e-3``, so the
    result and its gradient are finite at ``r = 0``).

    Args:
        axis_angle: ``(..., 3)``.

    Returns:
        ``(..., 3, 3)``.
    """
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True)[..., None]  # (..., 1, 1)
    small = theta2 < 1e-6
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = torch.sqrt(theta2_safe)
    A = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    B = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2_safe)
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    Kx = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*axis_angle.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(Kx)
    return eye + A * Kx + B * torch.matmul(Kx, Kx)


def pose_vec_to_matrix(axis_angle: torch.Tensor, translation: torch.Tensor,
                       invert: bool = False) -> torch.Tensor:
    """6-DoF pose vector -> ``(B, 4, 4)`` rigid transform ``[[R, t], [0, 1]]``.

    With ``invert=True`` returns the exact inverse ``[[R^T, -R^T t], [0, 1]]`` (Monodepth2's
    ``transformation_from_parameters(..., invert=True)``).

    Args:
        axis_angle: ``(B, 3)`` rotation vector.
        translation: ``(B, 3)``.
    """
    R = axis_angle_to_matrix(axis_angle)
    t = translation.unsqueeze(-1)
    if invert:
        R = R.transpose(-1, -2)
        t = -torch.matmul(R, t)
    top = torch.cat([R, t], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def stereo_transform(baseline: float, target: str = "left", dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """``T_{target->other}`` of a rectified stereo pair (the other view as a warp source).

    The right camera sits at ``+B`` along the left camera's ``x`` axis, so ``X_right = X_left - [B, 0, 0]``:
    ``t = (-B, 0, 0)`` for a left target and ``(+B, 0, 0)`` for a right one. With depth ``z`` this makes
    :func:`warp` sample the right image at ``u - f B / z`` for a left target, the disparity convention
    of :mod:`depth_nodes.geometry.stereo`.

    Args:
        baseline: ``B > 0`` in the depth unit (metres, or Monodepth2's 0.1 for KITTI-scaled units).
        target: ``"left"`` or ``"right"``, the view being reconstructed.

    Returns:
        ``(4, 4)``.
    """
    if target not in ("left", "right"):
        raise ValueError(f"target: expected 'left' or 'right', got {target!r}")
    T = torch.eye(4, dtype=dtype, device=device)
    T[0, 3] = -baseline if target == "left" else baseline
    return T

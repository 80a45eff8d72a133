"""Synthetic scenes with known geometry for the loss/warp tests (rendered analytically, no warping).

Not a test module (no ``test_`` prefix); the test files import it from the ``test/`` directory.
"""
from __future__ import annotations

import numpy as np
import torch

from depth_training import geometry_torch as G

# (axis-angle, translation) of T_target_to_source for a few small camera motions
POSES = [([0.02, -0.03, 0.01], [0.15, -0.05, 0.1]),
         ([-0.01, 0.04, -0.02], [-0.2, 0.03, -0.1]),
         ([0.0, 0.0, 0.05], [0.05, 0.1, 0.0])]


def intrinsics(fx=50.0, fy=48.0, cx=31.5, cy=23.5, skew=0.0, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor([[fx, skew, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=dtype)


def rigid(R, t, dtype=torch.float64) -> torch.Tensor:
    T = torch.eye(4, dtype=dtype)
    T[:3, :3] = torch.as_tensor(np.asarray(R), dtype=dtype)
    T[:3, 3] = torch.as_tensor(np.asarray(t), dtype=dtype)
    return T


def _texture(X: torch.Tensor) -> torch.Tensor:
    """Smooth 3-channel pattern on the plane, values in [0.1, 0.9]."""
    a, b = X[0], X[1] + 0.3 * X[2]
    return torch.stack([0.5 + 0.4 * torch.sin(2.1 * a + 0.7 * b),
                        0.5 + 0.4 * torch.cos(1.3 * b - 0.4 * a),
                        0.5 + 0.4 * torch.sin(1.7 * a) * torch.cos(1.1 * b)])


def plane_scene(poses=POSES, h: int = 48, w: int = 64, dtype=torch.float64):
    """A textured slanted plane ``n . X = d0`` in the target camera frame, seen from the target and
    from one source camera per pose.

    Returns:
        ``target (B,3,H,W)``, ``sources (B,3,H,W)``, ``depth (B,1,H,W)`` (true target depth),
        ``T (B,4,4)`` target->source, ``K (3,3)``; ``B = len(poses)``.
    """
    K = intrinsics(fx=45.0, fy=45.0, cx=(w - 1) / 2, cy=(h - 1) / 2)
    n = torch.tensor([0.0, -0.25, 1.0], dtype=torch.float64)
    n = n / n.norm()
    d0 = 3.0
    rays = G.backproject(torch.ones(1, 1, h, w, dtype=torch.float64), torch.linalg.inv(K))[0]  # 3 H W
    z_t = d0 / torch.einsum("c,chw->hw", n, rays)
    target = _texture(rays * z_t)
    sources, transforms = [], []
    for aa, t in poses:
        R = G.axis_angle_to_matrix(torch.tensor(aa, dtype=torch.float64))
        t = torch.tensor(t, dtype=torch.float64)
        n_s = R @ n
        d_s = d0 + n_s @ t
        z_s = d_s / torch.einsum("c,chw->hw", n_s, rays)
        X_t = torch.einsum("ij,jhw->ihw", R.T, rays * z_s - t[:, None, None])
        sources.append(_texture(X_t))
        transforms.append(rigid(R, t))
    b = len(poses)
    targets = target[None].expand(b, -1, -1, -1).to(dtype).contiguous()
    depth = z_t[None, None].expand(b, -1, -1, -1).to(dtype).contiguous()
    return targets, torch.stack(sources).to(dtype), depth, torch.stack(transforms).to(dtype), K.to(dtype)

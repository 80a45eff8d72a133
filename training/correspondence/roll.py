"""Camera roll as augmentation: a frame seen by the same camera turned about its optical axis.

Turning a camera by ``R = Rz(theta)`` about its optical axis (REP 103 optical frame: z forward)
maps a point ``X`` in the old camera frame to ``X' = R X`` in the new one. ``z`` is unchanged, so
the depth image keeps its values and the pixels move by the homography

    p' ~ H p,   H = K R K^-1                                   (exact for any pinhole K)

and the pose becomes ``T_world_cam' = T_world_cam diag(R^T, 1)``. Rolled frames are therefore real
views of the scene: correspondences computed from the rolled image, depth and pose
(:func:`.geometry.find_correspondences`) are as exact as the originals. The rolled colour image is
resampled bilinearly, depth and the object mask by nearest neighbour; pixels that come from
outside the original image get no depth (NaN), are off the mask, and are reported in ``outside``.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["roll_matrix", "roll_homography", "roll_frame"]


def roll_matrix(theta: float) -> np.ndarray:
    """``Rz(theta)`` (3, 3): rotation about the optical axis by ``theta`` radians."""
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def roll_homography(K: np.ndarray, theta: float) -> np.ndarray:
    """``H = K Rz(theta) K^-1`` (3, 3): old pixel -> rolled pixel (module docstring)."""
    K = np.asarray(K, np.float64)
    return K @ roll_matrix(theta) @ np.linalg.inv(K)


def roll_frame(image: np.ndarray, depth: np.ndarray, mask: np.ndarray, K: np.ndarray, pose: np.ndarray,
               theta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One frame as the camera rolled by ``theta`` radians would see it.

    Args:
        image: ``(H, W, 3)`` uint8; depth: ``(H, W)`` float metres (NaN = none); mask: ``(H, W)`` bool;
        K: ``(3, 3)``; pose: ``T_world_cam`` ``(4, 4)``.

    Returns:
        ``(image, depth, mask, pose, outside)``: the rolled frame (same shapes, ``K`` unchanged) and
        ``outside (H, W)`` bool, the pixels with no source in the original image.
    """
    h, w = depth.shape
    H = roll_homography(K, theta)
    flags = cv2.WARP_INVERSE_MAP  # sample the source at H^-1 p' for every rolled pixel p'
    Hinv = np.linalg.inv(H)
    img = cv2.warpPerspective(image, Hinv, (w, h), flags=cv2.INTER_LINEAR | flags, borderMode=cv2.BORDER_CONSTANT)
    dep = cv2.warpPerspective(np.asarray(depth, np.float32), Hinv, (w, h), flags=cv2.INTER_NEAREST | flags,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan"))
    msk = cv2.warpPerspective(mask.astype(np.uint8), Hinv, (w, h), flags=cv2.INTER_NEAREST | flags,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    outside = cv2.warpPerspective(np.ones((h, w), np.uint8), Hinv, (w, h), flags=cv2.INTER_NEAREST | flags,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0) == 0
    T = np.array(pose, np.float64, copy=True)
    T[:3, :3] = T[:3, :3] @ roll_matrix(theta).T
    return img, dep, msk, T, outside

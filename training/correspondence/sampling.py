"""Sampling matches and non-matches for the pixel-contrastive loss.

Non-matches for a match ``(a, b)`` are pixels ``b'`` of image B drawn from a pool (object pixels,
background pixels) with ``|uv(b') - uv(b)| >= min_distance`` pixels. Candidates that land closer are
*redrawn* (up to ``retries`` times); any still too close after that are flagged invalid and carry
no weight - they are never silently used as non-matches (the published Dense Object Nets code
meant to move them and did not).

*Local* non-matches (:func:`sample_local_nonmatches`) are drawn near the true match instead, in the
annulus ``min_distance <= |uv(b') - uv(b)| <= radius`` on the object: uniform non-matches almost
never land a few pixels from the match, so without them nothing in the loss asks neighbouring
pixels for different descriptors, and the best match is only as precise as ``min_distance``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["sample_matches", "sample_nonmatches", "sample_local_nonmatches", "flat_to_uv"]


def flat_to_uv(idx: np.ndarray, width: int) -> np.ndarray:
    """Flat indices ``v * W + u`` -> ``(N, 2)`` float64 ``(u, v)``."""
    v, u = np.divmod(np.asarray(idx, np.int64), width)
    return np.stack([u, v], axis=-1).astype(np.float64)


def sample_matches(count: int, available: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` indices into ``available`` matches: without replacement when there are enough."""
    if available <= 0:
        raise ValueError("no matches to sample from")
    return rng.choice(available, size=count, replace=available < count)


def sample_nonmatches(match_uv_b: np.ndarray, pool: np.ndarray, width: int, per_match: int,
                      rng: np.random.Generator, *, min_distance: float = 5.0,
                      retries: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Non-matches in B for each match (module docstring).

    Args:
        match_uv_b: ``(N, 2)`` the true match of each sample in B (pixel coordinates).
        pool: ``(P,)`` flat indices in B to draw from (P may be 0: everything is invalid).
        width: B's width (flat index -> ``(u, v)``).
        per_match: non-matches per match ``k``.

    Returns:
        ``(idx (N, k) int64 flat indices in B, valid (N, k) bool)``; ``valid`` is False exactly where
        the drawn pixel is nearer than ``min_distance`` to the match (or the pool was empty).
    """
    n = match_uv_b.shape[0]
    pool = np.asarray(pool, np.int64)
    if pool.size == 0 or per_match == 0:
        return np.zeros((n, per_match), np.int64), np.zeros((n, per_match), bool)
    idx = pool[rng.integers(0, pool.size, size=(n, per_match))]
    for _ in range(retries + 1):
        d = np.linalg.norm(flat_to_uv(idx, width) - match_uv_b[:, None, :], axis=-1)
        close = d < min_distance
        if not close.any():
            break
        idx[close] = pool[rng.integers(0, pool.size, size=int(close.sum()))]
    d = np.linalg.norm(flat_to_uv(idx, width) - match_uv_b[:, None, :], axis=-1)
    return idx, d >= min_distance


def sample_local_nonmatches(match_uv_b: np.ndarray, allowed: np.ndarray, per_match: int, rng: np.random.Generator,
                            *, min_distance: float = 5.0, radius: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    """Non-matches in the annulus ``min_distance <= r <= radius`` around each true match.

    ``r = sqrt(U(min_distance^2, radius^2))`` (uniform over the annulus' area) and a uniform angle,
    rounded to the nearest pixel.

    Args:
        match_uv_b: ``(N, 2)`` the true match of each sample in B (pixel coordinates).
        allowed: ``(H, W)`` bool, pixels of B a non-match may land on (the object mask).
        per_match: local non-matches per match ``k``.

    Returns:
        ``(idx (N, k) int64 flat indices in B, valid (N, k) bool)``; ``valid`` is False where the
        rounded pixel is outside B, not ``allowed``, or nearer than ``min_distance`` to the match.
    """
    h, w = allowed.shape
    n = match_uv_b.shape[0]
    if per_match == 0 or n == 0:
        return np.zeros((n, per_match), np.int64), np.zeros((n, per_match), bool)
    if radius < min_distance:
        raise ValueError(f"local non-match radius {radius} is below the minimum distance {min_distance}")
    r = np.sqrt(rng.uniform(min_distance ** 2, radius ** 2, size=(n, per_match)))
    theta = rng.uniform(0.0, 2.0 * np.pi, size=(n, per_match))
    u = np.rint(match_uv_b[:, None, 0] + r * np.cos(theta)).astype(np.int64)
    v = np.rint(match_uv_b[:, None, 1] + r * np.sin(theta)).astype(np.int64)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    u, v = np.clip(u, 0, w - 1), np.clip(v, 0, h - 1)
    d = np.hypot(u - match_uv_b[:, None, 0], v - match_uv_b[:, None, 1])
    valid = inside & allowed[v, u] & (d >= min_distance)
    return v * w + u, valid

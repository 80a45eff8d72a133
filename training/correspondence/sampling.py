"""Sampling matches and non-matches for the pixel-contrastive loss.

Non-matches for a match ``(a, b)`` are pixels ``b'`` of image B drawn from a pool (object pixels,
background pixels) with ``|uv(b') - uv(b)| >= min_distance`` pixels. Candidates that land closer are
*redrawn* (up to ``retries`` times); any still too close after that are flagged invalid and carry
no weight - they are never silently used as non-matches (the published Dense Object Nets code
meant to move them and did not).
"""
from __future__ import annotations

import numpy as np

__all__ = ["sample_matches", "sample_nonmatches", "flat_to_uv"]


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

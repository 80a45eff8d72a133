"""Frame pairs for training: viewpoint diversity, enough matches, a static scene.

A candidate pair ``(i, j)`` of one recording must differ in viewpoint by at least
``min_rotation_deg`` (the angle of ``R_i^T R_j``) **or** ``min_translation_m`` (camera centres);
it is accepted when its object-mask correspondences number at least ``min_matches`` and its
static-scene violation fraction (:func:`.geometry.static_violation_fraction`) is at most
``max_violation``. Everything rejected is counted by reason, so a run can say why it has few pairs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["PairRules", "viewpoint_change", "candidate_pairs", "PairStats"]


@dataclass(frozen=True)
class PairRules:
    min_rotation_deg: float = 8.0
    min_translation_m: float = 0.04
    min_matches: int = 50
    max_violation: float = 0.03
    max_candidates: int = 3000
    abs_tol: float = 0.004
    rel_tol: float = 0.01


@dataclass
class PairStats:
    candidates: int = 0
    accepted: int = 0
    rejected: dict = field(default_factory=lambda: {"too_few_matches": 0, "moving_scene": 0, "no_object": 0})

    def line(self) -> str:
        r = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in self.rejected.items() if v)
        return f"{self.candidates} candidate pairs, {self.accepted} accepted" + (f" (rejected: {r})" if r else "")


def viewpoint_change(T_a: np.ndarray, T_b: np.ndarray) -> tuple[float, float]:
    """``(rotation angle in degrees, distance of the camera centres in metres)`` between two poses.

    ``angle = arccos((trace(R_a^T R_b) - 1) / 2)``.
    """
    R = np.asarray(T_a)[:3, :3].T @ np.asarray(T_b)[:3, :3]
    c = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    return float(np.degrees(np.arccos(c))), float(np.linalg.norm(np.asarray(T_a)[:3, 3] - np.asarray(T_b)[:3, 3]))


def candidate_pairs(poses: np.ndarray, rules: PairRules, seed: int = 0) -> np.ndarray:
    """``(P, 2)`` int64 ordered pairs ``i != j`` far enough apart (module docstring); at most
    ``rules.max_candidates``, drawn at random (seeded) when there are more."""
    n = len(poses)
    out = []
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            ang, dist = viewpoint_change(poses[i], poses[j])
            if ang >= rules.min_rotation_deg or dist >= rules.min_translation_m:
                out.append((i, j))
    pairs = np.array(out, dtype=np.int64).reshape(-1, 2)
    if len(pairs) > rules.max_candidates:
        keep = np.sort(np.random.default_rng(seed).choice(len(pairs), rules.max_candidates, replace=False))
        pairs = pairs[keep]
    return pairs
